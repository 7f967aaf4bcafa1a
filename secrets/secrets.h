/* Secret references (env://NAME, file:///path; the vault schemes later) resolved through one process-wide
 * cache: filled lazily by a resolver thread that owns all backend I/O, refreshed in the background ahead of
 * expiry, read on the request path without a lock, a syscall or a wait. Values never leave this module except
 * to the caller that needs them for one upstream request, and never reach a log. */
#ifndef WARDEN_SECRETS_SECRETS_H
#define WARDEN_SECRETS_SECRETS_H

#include <stddef.h>

#include <uv.h>

#include "lib/buf.h"

#define WD_SECRET_MAX 8192

/* wd_secret_get: a resolution is under way; the wait's cb runs when it ends. */
#define WD_SECRET_PENDING (-2)

/* The resolver thread. Start before the first use (wd_secret_get and wd_secret_resolve start it themselves
 * if nobody did); stop once nothing uses the cache any more (workers joined, every wd_secrets_loop freed):
 * it joins the thread and wipes every value. Start returns 0, or -1 when the thread cannot be created. */
int wd_secrets_start(void);
void wd_secrets_stop(void);

struct wd_config;
/* The vault and cloud backends' settings (cfg->secrets, copied): call once before the first resolution; later
 * calls (a reload) change nothing, the section takes effect on restart. 0, or -1 on OOM. */
int wd_secrets_configure(const struct wd_config *cfg);

/* A worker loop's link to the cache: waits on it are called back on that loop. */
struct wd_secrets_loop;
struct wd_secrets_loop *wd_secrets_loop_new(uv_loop_t *loop);
/* Before the loop closes, on its thread: cancels its waits (their cb never runs). The handle it holds on the
 * loop closes on the loop's next turn, which frees the rest. */
void wd_secrets_loop_free(struct wd_secrets_loop *l);

/* A request waiting for a resolution. The caller owns it (typically inside its call object), zeroes it and
 * sets cb and ctx; the other fields belong to the cache and are guarded by its lock. One wait waits for one
 * reference at a time, on one loop. Once linked (wd_secret_get returned WD_SECRET_PENDING) it stays linked
 * until its cb runs or wd_secret_wait_cancel: a caller that goes away first must cancel it. */
struct wd_secret_wait {
    void (*cb)(struct wd_secret_wait *w); /* on the wd_secrets_loop's loop, once the resolution ended */
    void *ctx;                            /* the caller's */
    struct wd_secrets_loop *loop;         /* internal: where cb runs */
    void *entry;                          /* internal: the cache entry waited for, while linked to it */
    struct wd_secret_wait *prev, *next;   /* internal: links in the entry's waits, then in the loop's ready list */
    int where;                            /* internal: 0 idle, 1 waiting on the entry, 2 ready to be called */
};

/* The request path. >= 0: the cached value's length, copied NUL-terminated into out. -1: the reference cannot
 * be resolved now (a recent failure, an unsupported scheme, or out too small): the caller answers 503 naming
 * the reference. WD_SECRET_PENDING: a resolution is under way (started now if nobody had asked before);
 * wait->cb will run on l's loop when it ends (when wait is not NULL); then call wd_secret_get again. Never
 * blocks, never does I/O, takes no lock held during I/O; on a hit, takes no lock at all. Call it on l's loop. */
int wd_secret_get(struct wd_secrets_loop *l, const char *ref, char *out, size_t cap, struct wd_secret_wait *wait);
/* The wait goes away before its cb ran (its request ended). On the wait's loop; harmless on an idle wait. */
void wd_secret_wait_cancel(struct wd_secret_wait *wait);
/* The provider refused the cached value (401/403): fetch it again, once, in the background; the value in hand
 * stays served until the new one arrives. A value fetched less than a second ago is not fetched again. */
void wd_secret_invalidate(const char *ref);
/* What the cache knows of ref, for /readyz: one of these, and for FAILED and STALE the last failure's reason
 * (names the backend's error, never a value) in why. Takes the cache's lock briefly; never resolves. */
enum { WD_SECRET_UNUSED = 0, WD_SECRET_RESOLVING, WD_SECRET_CACHED, WD_SECRET_STALE, WD_SECRET_FAILED };
int wd_secret_state(const char *ref, char *why, size_t whycap);

/* Counters per scheme for /metrics (a scrape, under the cache's lock): references cached, the ones served
 * stale because their refresh fails, the ones that failed with nothing to serve, fetches by result, and how
 * often a reference went stale. Returns the number of schemes filled. */
struct wd_secrets_scheme_stats {
    const char *scheme; /* "vault://", ... (static) */
    unsigned long references, stale, failed, fetches_ok, fetches_failed, stale_episodes;
};
size_t wd_secrets_stats(struct wd_secrets_scheme_stats *out, size_t cap);

/* Starts resolving ref now, so that its first use finds the value ready (start-up, reload). */
void wd_secrets_prefetch(const char *ref);

/* The cold path (start-up checks, audit DSN and signing key, OTLP headers): resolves ref into out
 * (NUL-terminated) through the same cache, waiting for the resolver thread when the value is not cached or
 * predates the last wd_secret_cache_clear. It may block (up to 30 s): never call it on a worker loop once the
 * loop has a wd_secrets_loop. env:// is read again on each call (no I/O), so a changed variable is seen.
 * Returns the length, or -1 when the reference cannot be resolved now (unset variable, unreadable file,
 * unsupported scheme): the caller names the reference, never a value. */
int wd_secret_resolve(const char *ref, char *out, size_t cap);
/* True when ref has a scheme this build can resolve. */
int wd_secret_scheme_supported(const char *ref);
/* Config reload: every cached value is fetched again in the background (values in use stay served until the
 * new ones arrive; wd_secret_resolve waits for them), and recent failures are forgotten. */
void wd_secret_cache_clear(void);

#endif
