/* The secret backends behind the cache: one table per reference scheme. The cache's resolver thread of a backend is
 * the only caller of its resolve (it may block on a file, or on the network for the vault and cloud schemes);
 * nothing here is called on a request path. */
#ifndef WARDEN_SECRETS_BACKEND_H
#define WARDEN_SECRETS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* A TTL meaning the value never expires (env://: the environment does not change under a running process). */
#define WD_SECRET_TTL_NEVER INT64_MAX

struct wd_secret_backend {
    const char *scheme;     /* the reference prefix, scheme and "://", e.g. "file://" */
    size_t scheme_len;      /* strlen(scheme) */
    /* Resolves ref into out (NUL-terminated, at most cap bytes with the NUL) and sets *ttl_ms (default_ttl_ms
     * unless the source says otherwise). Returns the length (> 0), or -1 with a reason in why that names no
     * value. NULL when this build has no such backend: the scheme is known but "not available in this build". */
    int (*resolve)(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms,
                   char *why, size_t whycap);
    int64_t default_ttl_ms; /* how long a value is good for; WD_SECRET_TTL_NEVER for no expiry */
    bool no_io;             /* resolve reads only process memory (env://): a cold-path caller may run it inline */
    void (*shutdown)(void); /* or NULL: wipes what the backend keeps (its own tokens); on the resolver's stop */
};

/* The backends' configuration in force (wd_secrets_configure), or a zeroed one: never NULL. A zero number in
 * it means the backend's default. Read on the resolver thread. */
const struct wd_secrets_config *wd_secrets_config_get(void);

/* Memory for a backend's own credentials (a Vault token, AWS session keys, an access token): page-backed,
 * locked from swap where the limit allows, left out of core dumps; wd_secret_mem_free wipes it. n bytes are
 * usable; NULL on failure. */
void *wd_secret_mem_alloc(size_t n);
void wd_secret_mem_free(void *p, size_t n);

/* The backends of the vault and cloud schemes (secrets/hashicorp.c, aws.c, gcp.c, azure.c). */
int wd_vault_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms,
                     char *why, size_t whycap);
void wd_vault_shutdown(void);
int wd_aws_sm_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms,
                      char *why, size_t whycap);
void wd_aws_sm_shutdown(void);
int wd_gcp_sm_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms,
                      char *why, size_t whycap);
void wd_gcp_sm_shutdown(void);
int wd_azure_kv_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap,
                        int64_t *ttl_ms, char *why, size_t whycap);
void wd_azure_kv_shutdown(void);

/* The number of backends, and a backend's index among them: its resolver thread (secrets.c runs one per backend,
 * so one backend's calls never overlap and a slow one holds up only its own references). */
#define WD_SECRET_LANES 6
size_t wd_secret_backend_lane(const struct wd_secret_backend *be);

/* The backend whose scheme ref starts with, or NULL for an unknown scheme. */
const struct wd_secret_backend *wd_secret_backend_find(const char *ref);
/* Every backend's shutdown (their own tokens wiped): the resolver's stop calls it, once nothing resolves. */
void wd_secret_backends_shutdown(void);

#endif
