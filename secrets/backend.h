/* The secret backends behind the cache: one table per reference scheme. The cache's resolver thread is the
 * only caller of resolve (it may block on a file or, for the vault schemes of a later issue, the network);
 * nothing here is called on a request path. */
#ifndef WARDEN_SECRETS_BACKEND_H
#define WARDEN_SECRETS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A TTL meaning the value never expires (env://: the environment does not change under a running process). */
#define WD_SECRET_TTL_NEVER INT64_MAX

struct wd_secret_backend {
    const char *scheme;     /* the reference prefix, scheme and "://", e.g. "file://" */
    size_t scheme_len;      /* strlen(scheme) */
    /* Resolves ref into out (NUL-terminated, at most cap bytes with the NUL) and sets *ttl_ms (default_ttl_ms
     * unless the source says otherwise). Returns the length (> 0), or -1 with a reason in why that names no
     * value. NULL when this build has no such backend: the scheme is known but "not available in this build". */
    int (*resolve)(const char *ref, char *out, size_t cap, int64_t *ttl_ms, char *why, size_t whycap);
    int64_t default_ttl_ms; /* how long a value is good for; WD_SECRET_TTL_NEVER for no expiry */
    bool no_io;             /* resolve reads only process memory (env://): a cold-path caller may run it inline */
};

/* The backend whose scheme ref starts with, or NULL for an unknown scheme. */
const struct wd_secret_backend *wd_secret_backend_find(const char *ref);

#endif
