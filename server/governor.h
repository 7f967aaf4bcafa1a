/* The governor thread (docs/governance.md): the governance database's only client. Started before the workers
 * when the config has a governance section; stopped after they joined. */
#ifndef WARDEN_SERVER_GOVERNOR_H
#define WARDEN_SERVER_GOVERNOR_H

#include "config/config.h"

/* Connects, migrates (governance.migrate), loads the first snapshot and starts the thread. An unreachable
 * database is not fatal: the thread keeps trying. 0, or -1 (no thread). */
int wd_governor_start(const struct wd_config *cfg);
/* Flushes spend, gives leases back, answers queued jobs with 503, joins, frees the snapshot and the limits. */
void wd_governor_stop(void);

#endif
