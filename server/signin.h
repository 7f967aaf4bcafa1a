/* The sign-in thread (docs/claude-gateway-protocol.md): Warden as the IdP's OIDC client for Claude Code's gateway
 * sign-in. It reads the IdP's discovery document, trades authorization codes for tokens, refreshes them, and mints
 * Warden's session tokens; the workers hand it jobs and never wait on the IdP. */
#ifndef WARDEN_SERVER_SIGNIN_H
#define WARDEN_SERVER_SIGNIN_H

#include "config/config.h"

/* Resolves the client and session secrets, starts the thread. 0 (also when signin is not configured), or -1 with
 * the reason logged. */
int wd_signin_start(const struct wd_config *cfg);
/* Answers queued jobs with 503, joins, wipes the secrets. */
void wd_signin_stop(void);
/* The session token keys, last (after the worker loops are closed). */
void wd_signin_free_keys(void);

#endif
