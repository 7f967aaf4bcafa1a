/* The OIDC key fetcher thread (server/oidc_fetch.c). */
#ifndef WARDEN_SERVER_OIDC_FETCH_H
#define WARDEN_SERVER_OIDC_FETCH_H

/* Starts the thread (once); the issuers come from wd_oidc_configure. 0, or -1. */
int wd_oidc_fetch_start(void);
/* Stops and joins it (a fetch under way ends within its timeout), then frees the key store. */
void wd_oidc_fetch_stop(void);

#endif
