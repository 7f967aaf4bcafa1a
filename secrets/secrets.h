/* Secret references (env://NAME, file:///path) resolved to values on first use and cached per thread.
 * Values never leave this module except to the caller that needs them for one upstream request. */
#ifndef WARDEN_SECRETS_SECRETS_H
#define WARDEN_SECRETS_SECRETS_H

#include <stddef.h>

#include "lib/buf.h"

#define WD_SECRET_MAX 8192

/* Resolves ref into out (NUL-terminated). Returns the length, or -1 when the reference cannot be
 * resolved now (unset variable, unreadable file, unsupported scheme): the caller answers 503 naming the
 * reference, never a value. */
int wd_secret_resolve(const char *ref, char *out, size_t cap);
/* True when ref has a scheme this build can resolve. */
int wd_secret_scheme_supported(const char *ref);
/* Drops this thread's cache (config reload). */
void wd_secret_cache_clear(void);

#endif
