/* OpenID Connect bearer tokens. Per configured issuer: its signing keys, fetched off the request path by the
 * key fetcher (server/oidc_fetch.c) and published here; verification of a JWT against them (authz/jwt.h); and a
 * per-worker cache of verified tokens, so that a token's signature is checked once, not on every request. */
#ifndef WARDEN_AUTHZ_OIDC_H
#define WARDEN_AUTHZ_OIDC_H

#include <stdbool.h>
#include <stdint.h>

#include "authz/auth.h"
#include "config/config.h"
#include "lib/buf.h"

#define WD_OIDC_MAX_ISSUERS 16
#define WD_OIDC_PENDING (-2)   /* the issuer's keys are being fetched: ask again shortly */

/* ---- the key store (process-wide) ---- */

/* Sets the issuers (at start, and on each reload with the new config). The keys of an issuer whose issuer,
 * jwks_uri and tls_ca did not change are kept; the others are fetched anew. 0, or -1 (more than
 * WD_OIDC_MAX_ISSUERS). */
int wd_oidc_configure(const struct wd_config *cfg);
/* Frees the store (at exit, after the fetcher stopped). */
void wd_oidc_shutdown(void);

/* A fetch the fetcher should do now. */
struct wd_oidc_job {
    int slot;                  /* the issuer's slot in the store */
    uint64_t serial;           /* the store's config serial when it was handed out (a reload voids it) */
    char issuer[512];          /* discovery is {issuer}/.well-known/openid-configuration */
    char jwks_uri[1024];       /* "" when discovery must give it */
    char tls_ca[512];          /* "" for the system trust store */
    unsigned timeout_ms;       /* the whole of one fetch */
};
/* The next fetch due: 1 with *job filled (it is marked in progress), or 0 with *wait_ms until one may be due. */
int wd_oidc_next_job(int64_t now_ms, struct wd_oidc_job *job, int64_t *wait_ms);
/* The result of a job: the JWKS document (and the jwks_uri discovery gave, to keep), or err (a short reason for
 * the log; the issuer keeps its previous keys). */
void wd_oidc_job_done(const struct wd_oidc_job *job, int64_t now_ms, const char *jwks, size_t len,
                      const char *discovered_jwks_uri, const char *err);
/* Reads an OpenID discovery document: its "issuer" must be exactly issuer (OIDC Discovery 4.3), its "jwks_uri" an
 * http(s) URL shorter than cap, copied to jwks_uri. 0, or -1 with *why. */
int wd_oidc_discovery(const char *json, size_t len, const char *issuer, char *jwks_uri, size_t cap, const char **why);
/* Blocks the fetcher until a fetch is asked for or timeout_ms pass; false when the store shuts down. */
bool wd_oidc_wait(int64_t timeout_ms);
/* Wakes the fetcher out of wd_oidc_wait for good (shutdown). */
void wd_oidc_stop(void);

/* Per issuer state for /readyz and the logs: the number of keys held (-1 none yet) and the last error. */
int wd_oidc_status(size_t i, char *name, size_t name_cap, char *err, size_t err_cap);

/* ---- verification (worker threads) ---- */

struct wd_oidc_cache;
struct wd_oidc_cache *wd_oidc_cache_new(void);
void wd_oidc_cache_free(struct wd_oidc_cache *c);

/* Whether a presented credential has the shape of a JWT (three dot-separated base64url parts): only those are
 * looked up as OIDC tokens. */
bool wd_oidc_looks_like_jwt(struct wd_str tok);

/* Authenticates a bearer JWT against the issuers of cfg: 0 with *out filled (subject, e-mail, issuer name, the
 * rbac roles held under cfg, the bound groups held); -1 refused, with *why a short reason for the log (never a
 * token byte beyond a claim name); WD_OIDC_PENDING when the issuer's keys are not there yet or a refresh for an
 * unknown kid has just been asked for (the caller tries again a little later, up to the issuer's wait, then
 * answers 503). now_s is the wall clock in seconds. */
int wd_oidc_authenticate(struct wd_oidc_cache *cache, const struct wd_config *cfg, struct wd_str token, int64_t now_s,
                         struct wd_principal *out, const char **why);
/* The same with the token's tag (wd_siphash128 under wd_process_key) already computed. */
int wd_oidc_authenticate_tag(struct wd_oidc_cache *cache, const struct wd_config *cfg, struct wd_str token,
                             const uint8_t tag[16], int64_t now_s, struct wd_principal *out, const char **why);
/* The wait bound (ms) of the issuer a token names, for a caller that got WD_OIDC_PENDING (3 s when unknown). */
unsigned wd_oidc_wait_ms(const struct wd_config *cfg, struct wd_str token);

#endif
