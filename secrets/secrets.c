/* The process-wide secret cache: resolver threads (one per backend) run every backend call and refreshes used values at
 * 80% of their TTL; workers read values without a lock and wait for a first resolution through a callback
 * on their own loop. See secrets.h for the contract and the comment above struct entry for what guards what. */
#include "secrets/secrets.h"
#include "secrets/backend.h"
#include "secrets/secrets_test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config/config.h"
#include "lib/log.h"

#define TABLE_SLOTS 1024 /* a power of two; entries are never removed before wd_secrets_stop */
#define TABLE_MAX 768    /* distinct references; beyond, a reference cannot be resolved (logged) */
#define REF_MAX 1024
#define SYNC_WAIT_MS 30000
#define RETIRED_POLL_MS 20 /* how soon a value still being copied by a reader is looked at again */
#define IDLE_WAKE_MS 1000
#define WARN_EVERY_MS 60000
#define MIN_REFRESH_MS 10 /* a tiny TTL from a backend does not turn the resolver into a loop */

#define TOO_SMALL (-3) /* try_read: the value does not fit the caller's buffer */
#define MISS (-1)

/* Memory ordering, what guards what:
 * - g_mu guards every field of an entry not marked atomic, the job queue, the retired list, waits and the
 *   loops' ready lists. It is never held across a backend call (the resolver drops it around resolve), so the
 *   request path's slow branch, which takes it, never waits for I/O.
 * - slots[i] goes once from NULL to an entry (release, under g_mu) and stays until wd_secrets_stop; an
 *   entry's ref, hash and backend are written before that store and never change, so a reader that loaded
 *   the pointer (acquire) may read them without a lock.
 * - e->cur, the value served, is stored under g_mu (seq_cst). A value is immutable once published. A reader
 *   pins the entry: fetch_add(readers) then load(cur), both seq_cst, copies, then fetch_sub(readers). The
 *   writer stores the new cur, puts the old value on the retired list, and wipes it only after a seq_cst load
 *   of readers returned 0: in the single total order of seq_cst operations, a reader whose increment comes
 *   after that load loads cur after the store, so it sees the new value; a reader whose increment came
 *   before it also decremented before it (the count was 0), and its release decrement synchronises with the
 *   writer's load (all changes of readers are read-modify-writes, one release sequence), so its copy
 *   happens before the wipe.
 * - e->used is a relaxed hint (a read happened since the last fetch was queued): losing a race with the
 *   resolver's reset costs at most one refresh done at expiry instead of at 80% of the TTL. */
struct val {                     /* a value's own mapping: mlock'ed, left out of core dumps */
    struct val *next_retired;    /* on the retired list (g_mu) */
    struct entry *owner;         /* whose readers count guards it */
    size_t maplen;               /* bytes mapped, the header included */
    int64_t expires;             /* monotonic ms: end of the TTL (INT64_MAX: never) */
    int64_t serve_until;         /* expires + stale_max: never served from then on */
    uint64_t epoch;              /* reload_epoch when its fetch started */
    size_t len;
    char bytes[];                /* len bytes and a NUL */
};

struct entry {
    char *ref;
    uint64_t hash;
    const struct wd_secret_backend *be;
    _Atomic(struct val *) cur;
    atomic_int readers;
    atomic_bool used;
    /* under g_mu */
    bool inflight;               /* queued or being fetched */
    struct entry *next_job;
    uint64_t start_epoch;        /* reload_epoch when the running fetch started */
    uint64_t done_seq;           /* fetches completed */
    uint64_t last_done_epoch;    /* start_epoch of the last completed fetch */
    int64_t fetched_at;          /* last successful fetch */
    int64_t next_try;            /* when the resolver looks at the value again (refresh or expiry) */
    int64_t err_at;              /* last failure with no value to serve, 0 when none */
    bool failing;                /* a refresh failed; a stale value is served */
    int64_t warned_at;           /* last failure logged: a failing reference logs once a minute, not per try */
    char why[160];               /* the last failure's reason (names no value), "" after a success */
    unsigned long fetch_ok, fetch_failed, stale_starts; /* for /metrics */
    struct wd_secret_wait *waits;
};

struct wd_secrets_loop {
    uv_loop_t *loop;
    uv_async_t async;
    struct wd_secret_wait *ready_head, *ready_tail; /* g_mu: resolved, cb not yet run */
    struct wd_secrets_loop *prev, *next;            /* g_mu: in the loops list */
    unsigned pending;                               /* waits linked (loop thread only): the async is ref'ed */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
/* One resolver thread per backend (a lane): a slow or hung vault delays only the references of its own scheme, and
 * each backend's own state (its tokens) is only ever touched by its lane's thread. Lane 0 (env://) also sweeps:
 * it runs the timers of every entry and queues their refreshes on their lanes. */
#define LANES WD_SECRET_LANES
static pthread_cond_t work_cv[LANES], done_cv; /* CLOCK_MONOTONIC, set up once */
static pthread_once_t cv_once = PTHREAD_ONCE_INIT;
static _Atomic(struct entry *) slots[TABLE_SLOTS];
static size_t nentries;
static struct entry *jobs_head[LANES], *jobs_tail[LANES];
static struct val *retired;
static struct wd_secrets_loop *loops;
static bool running;
static uint64_t run_id; /* g_mu: bumped by stop, so a cold-path waiter knows its entry is gone */
static _Atomic uint64_t reload_epoch = 1;

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool started;
static pthread_t resolvers[LANES];
static size_t nresolvers;
static _Thread_local bool on_resolver;
static char *scratch[LANES]; /* each lane's: a backend writes here, then the value is copied to its own mapping */
static size_t scratch_len;

static _Atomic int64_t t_ttl_ms, t_stale_max_ms = 600000, t_error_hold_ms = 1000, t_retry_ms = 5000,
                       t_invalidate_holdoff_ms = 1000, t_backend_delay_ms;
static atomic_long backend_calls, wiped_count;
static atomic_bool keep_wiped;
struct kept {
    void *p;
    size_t n;
    struct kept *next;
};
static struct kept *kept_list; /* g_mu */

/* A log line made under g_mu and written after it is released: stderr may block, g_mu must not. */
struct note {
    enum wd_log_level lvl;
    char msg[400]; /* "" when there is nothing to say; names a reference and a reason, never a value */
};

static void note_set(struct note *n, enum wd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note_set(struct note *n, enum wd_log_level lvl, const char *fmt, ...)
{
    if (n->msg[0] != '\0')
        wd_log(n->lvl, n->msg, ""); /* only the rare second line of one turn goes out under the lock */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->msg, sizeof(n->msg), fmt, ap);
    va_end(ap);
    n->lvl = lvl;
}

static void note_flush(struct note *n)
{
    if (n->msg[0] != '\0')
        wd_log(n->lvl, n->msg, "");
    n->msg[0] = '\0';
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t ref_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void cv_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    for (size_t i = 0; i < LANES; i++)
        pthread_cond_init(&work_cv[i], &a);
    pthread_cond_init(&done_cv, &a);
    pthread_condattr_destroy(&a);
}

static int cv_wait_until(pthread_cond_t *cv, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    return pthread_cond_timedwait(cv, &g_mu, &ts);
}

/* ---- value memory ---- */

static void *secure_map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    (void)mlock(p, n);                    /* best effort: RLIMIT_MEMLOCK may be small */
    (void)madvise(p, n, MADV_DONTDUMP);   /* best effort: kernels without it still wipe on free */
    return p;
}

static void secure_unmap(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
    if (atomic_load_explicit(&keep_wiped, memory_order_relaxed)) {
        struct kept *k = malloc(sizeof(*k));
        if (k != NULL) {
            *k = (struct kept){p, n, kept_list};
            kept_list = k;
            atomic_fetch_add(&wiped_count, 1);
            return;
        }
    }
    munlock(p, n);
    munmap(p, n);
    atomic_fetch_add(&wiped_count, 1);
}

/* ---- the backends' configuration and memory ---- */

static struct wd_secrets_config *g_cfg; /* set once (restart-only), freed by wd_secrets_stop */
static const struct wd_secrets_config zero_cfg;

const struct wd_secrets_config *wd_secrets_config_get(void)
{
    struct wd_secrets_config *c = __atomic_load_n(&g_cfg, __ATOMIC_ACQUIRE);
    return c != NULL ? c : &zero_cfg;
}

int wd_secrets_configure(const struct wd_config *cfg)
{
    if (__atomic_load_n(&g_cfg, __ATOMIC_ACQUIRE) != NULL)
        return 0; /* the section takes effect on restart: a reload keeps the first */
    struct wd_secrets_config *c = wd_config_secrets_dup(cfg);
    if (c == NULL)
        return -1;
    struct wd_secrets_config *expect = NULL;
    if (!__atomic_compare_exchange_n(&g_cfg, &expect, c, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        wd_config_secrets_free(c);
        return 0;
    }
    atomic_store(&t_stale_max_ms, (int64_t)c->stale_max_ms);
    return 0;
}

static size_t page_round(size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t ps = page > 0 ? (size_t)page : 4096;
    return (n + ps - 1) / ps * ps;
}

void *wd_secret_mem_alloc(size_t n)
{
    return n == 0 ? NULL : secure_map(page_round(n));
}

void wd_secret_mem_free(void *p, size_t n)
{
    if (p != NULL)
        secure_unmap(p, page_round(n));
}

static struct val *val_new(const char *bytes, size_t len, int64_t now, int64_t ttl, uint64_t epoch)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t ps = page > 0 ? (size_t)page : 4096;
    size_t n = (sizeof(struct val) + len + 1 + ps - 1) / ps * ps;
    struct val *v = secure_map(n);
    if (v == NULL)
        return NULL;
    v->maplen = n;
    v->expires = ttl == WD_SECRET_TTL_NEVER ? INT64_MAX : now + ttl;
    int64_t stale = atomic_load(&t_stale_max_ms);
    v->serve_until = v->expires == INT64_MAX ? INT64_MAX : v->expires + stale;
    v->epoch = epoch;
    v->len = len;
    memcpy(v->bytes, bytes, len);
    v->bytes[len] = '\0';
    return v;
}

/* g_mu held; v is no longer reachable through e->cur */
static void retire(struct entry *e, struct val *v)
{
    v->owner = e;
    v->next_retired = retired;
    retired = v;
}

/* g_mu held */
static void free_retired(void)
{
    for (struct val **pp = &retired; *pp;) {
        struct val *v = *pp;
        if (atomic_load(&v->owner->readers) == 0) {
            *pp = v->next_retired;
            secure_unmap(v, v->maplen);
        } else {
            pp = &v->next_retired;
        }
    }
}

/* ---- the table ---- */

static struct entry *lookup(const char *ref, uint64_t h)
{
    size_t i = h & (TABLE_SLOTS - 1);
    for (size_t n = 0; n < TABLE_SLOTS; n++, i = (i + 1) & (TABLE_SLOTS - 1)) {
        struct entry *e = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (e == NULL)
            return NULL;
        if (e->hash == h && strcmp(e->ref, ref) == 0)
            return e;
    }
    return NULL;
}

/* g_mu held */
static struct entry *lookup_or_add(const char *ref, uint64_t h, const struct wd_secret_backend *be)
{
    struct entry *e = lookup(ref, h);
    if (e != NULL)
        return e;
    if (nentries >= TABLE_MAX || strlen(ref) >= REF_MAX) {
        wd_logf(WD_LOG_ERROR, "", "secret cache: no room for %.200s (%d references at most, %d bytes each)", ref,
                TABLE_MAX, REF_MAX);
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->ref = strdup(ref)) == NULL) {
        free(e);
        return NULL;
    }
    e->hash = h;
    e->be = be;
    size_t i = h & (TABLE_SLOTS - 1);
    while (atomic_load_explicit(&slots[i], memory_order_relaxed) != NULL)
        i = (i + 1) & (TABLE_SLOTS - 1);
    atomic_store_explicit(&slots[i], e, memory_order_release);
    nentries++;
    return e;
}

/* The read of the request path: a pinned copy of the value when it may still be served and is not older
 * than min_epoch. MISS, TOO_SMALL or the length. */
static int try_read(struct entry *e, int64_t now, uint64_t min_epoch, char *out, size_t cap)
{
    int rc = MISS;
    atomic_fetch_add(&e->readers, 1);
    struct val *v = atomic_load(&e->cur);
    if (v != NULL && now < v->serve_until && v->epoch >= min_epoch) {
        if (v->len + 1 > cap) {
            rc = TOO_SMALL;
        } else {
            memcpy(out, v->bytes, v->len + 1);
            rc = (int)v->len;
        }
    }
    atomic_fetch_sub(&e->readers, 1);
    if (rc >= 0 && !atomic_load_explicit(&e->used, memory_order_relaxed))
        atomic_store_explicit(&e->used, true, memory_order_relaxed);
    return rc;
}

/* ---- waits ---- */

/* g_mu held */
static void wait_unlink(struct wd_secret_wait *w)
{
    if (w->where == 1) {
        struct entry *e = w->entry;
        if (w->prev)
            w->prev->next = w->next;
        else
            e->waits = w->next;
        if (w->next)
            w->next->prev = w->prev;
    } else if (w->where == 2) {
        struct wd_secrets_loop *l = w->loop;
        if (w->prev)
            w->prev->next = w->next;
        else
            l->ready_head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        else
            l->ready_tail = w->prev;
    }
    w->prev = w->next = NULL;
    w->entry = NULL;
    w->where = 0;
}

/* g_mu held: every wait of e moves to its loop's ready list, and the loop is woken. */
static void wake_waits(struct entry *e)
{
    while (e->waits != NULL) {
        struct wd_secret_wait *w = e->waits;
        wait_unlink(w);
        struct wd_secrets_loop *l = w->loop;
        w->prev = l->ready_tail;
        if (l->ready_tail)
            l->ready_tail->next = w;
        else
            l->ready_head = w;
        l->ready_tail = w;
        w->where = 2;
        /* under g_mu, so the loop cannot be freed in between (wd_secrets_loop_free takes g_mu first) */
        uv_async_send(&l->async);
    }
    pthread_cond_broadcast(&done_cv);
}

/* On the loop's thread: the async handle keeps the loop running while one of its waits is linked. */
static void loop_pending(struct wd_secrets_loop *l, int delta)
{
    unsigned before = l->pending;
    l->pending = (unsigned)((int)l->pending + delta);
    if (before == 0 && l->pending > 0)
        uv_ref((uv_handle_t *)&l->async);
    else if (before > 0 && l->pending == 0)
        uv_unref((uv_handle_t *)&l->async);
}

static void on_async(uv_async_t *a)
{
    struct wd_secrets_loop *l = a->data;
    for (;;) {
        /* one at a time: a cb may cancel another wait of this loop */
        pthread_mutex_lock(&g_mu);
        struct wd_secret_wait *w = l->ready_head;
        if (w != NULL)
            wait_unlink(w);
        pthread_mutex_unlock(&g_mu);
        if (w == NULL)
            return;
        loop_pending(l, -1);
        w->cb(w);
    }
}

struct wd_secrets_loop *wd_secrets_loop_new(uv_loop_t *loop)
{
    struct wd_secrets_loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->loop = loop;
    if (uv_async_init(loop, &l->async, on_async) != 0) {
        free(l);
        return NULL;
    }
    l->async.data = l;
    uv_unref((uv_handle_t *)&l->async);
    pthread_mutex_lock(&g_mu);
    l->next = loops;
    if (loops)
        loops->prev = l;
    loops = l;
    pthread_mutex_unlock(&g_mu);
    return l;
}

static void loop_closed(uv_handle_t *h) { free(h->data); }

void wd_secrets_loop_free(struct wd_secrets_loop *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < TABLE_SLOTS; i++) {
        struct entry *e = atomic_load_explicit(&slots[i], memory_order_relaxed);
        if (e == NULL)
            continue;
        for (struct wd_secret_wait *w = e->waits, *next; w; w = next) {
            next = w->next;
            if (w->loop == l)
                wait_unlink(w);
        }
    }
    while (l->ready_head)
        wait_unlink(l->ready_head);
    if (l->prev)
        l->prev->next = l->next;
    else if (loops == l)
        loops = l->next;
    if (l->next)
        l->next->prev = l->prev;
    pthread_mutex_unlock(&g_mu);
    if (l->pending > 0)
        uv_unref((uv_handle_t *)&l->async);
    uv_close((uv_handle_t *)&l->async, loop_closed);
}

void wd_secret_wait_cancel(struct wd_secret_wait *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&g_mu);
    int where = w->where;
    struct wd_secrets_loop *l = w->loop;
    wait_unlink(w);
    pthread_mutex_unlock(&g_mu);
    if (where != 0 && l != NULL)
        loop_pending(l, -1);
}

/* ---- the resolver ---- */

/* g_mu held */
static void queue(struct entry *e)
{
    if (e->inflight)
        return;
    e->inflight = true;
    atomic_store_explicit(&e->used, false, memory_order_relaxed);
    e->next_job = NULL;
    size_t l = wd_secret_backend_lane(e->be);
    if (jobs_tail[l])
        jobs_tail[l]->next_job = e;
    else
        jobs_head[l] = e;
    jobs_tail[l] = e;
    pthread_cond_signal(&work_cv[l]);
}

/* g_mu held: v replaces e's value (NULL: e has none any more); the old one is wiped once no reader holds it */
static void set_value(struct entry *e, struct val *v)
{
    struct val *old = atomic_load_explicit(&e->cur, memory_order_relaxed);
    atomic_store(&e->cur, v);
    if (old != NULL)
        retire(e, old);
    free_retired();
}

/* g_mu held: the end of a fetch of e, successful (v) or not (why). */
static void complete(struct entry *e, struct val *v, int64_t ttl, const char *why, int64_t now, struct note *note)
{
    e->inflight = false;
    e->done_seq++;
    e->last_done_epoch = e->start_epoch;
    struct val *old = atomic_load_explicit(&e->cur, memory_order_relaxed);
    if (v != NULL)
        e->fetch_ok++, e->why[0] = '\0';
    else
        e->fetch_failed++, snprintf(e->why, sizeof(e->why), "%s", why);
    if (v != NULL) {
        set_value(e, v);
        e->fetched_at = now;
        e->err_at = 0;
        int64_t ahead = ttl / 10 * 8; /* refreshed at 80% of the TTL */
        e->next_try = ttl == WD_SECRET_TTL_NEVER ? INT64_MAX : now + (ahead > MIN_REFRESH_MS ? ahead : MIN_REFRESH_MS);
        if (e->failing)
            note_set(note, WD_LOG_INFO, "secret %.200s: resolved again after failed refreshes", e->ref);
        e->failing = false;
    } else if (old != NULL && now < old->serve_until) {
        /* the stale value stays served, up to its bound (stale_max past its expiry) */
        int64_t left = old->serve_until == INT64_MAX ? -1 : (old->serve_until - now + 999) / 1000;
        if (!e->failing || now - e->warned_at >= WARN_EVERY_MS) {
            e->warned_at = now;
            note_set(note, WD_LOG_WARN, "secret %.200s: refresh failed (%.150s); the previous value is served for %lld s more",
                     e->ref, why, (long long)left);
        }
        if (!e->failing)
            e->stale_starts++;
        e->failing = true;
        int64_t retry = now + atomic_load(&t_retry_ms);
        e->next_try = retry < old->serve_until ? retry : old->serve_until;
    } else {
        if (old != NULL)
            set_value(e, NULL);
        if (e->err_at == 0 || now - e->warned_at >= WARN_EVERY_MS) {
            e->warned_at = now;
            note_set(note, WD_LOG_WARN, "secret %.200s cannot be resolved: %.150s", e->ref, why);
        }
        e->err_at = now;
        e->failing = false;
    }
    if (e->start_epoch < atomic_load(&reload_epoch))
        queue(e); /* a reload came while it was fetched: the file may have changed since */
    wake_waits(e);
}

/* g_mu held: e's timers. */
static void sweep(struct entry *e, int64_t now, int64_t *next, struct note *note)
{
    struct val *v = atomic_load_explicit(&e->cur, memory_order_relaxed);
    if (e->inflight || v == NULL)
        return;
    if (now >= v->serve_until) {
        set_value(e, NULL);
        if (e->failing) {
            note_set(note, WD_LOG_ERROR, "secret %.200s: no fresh value since it expired; requests that need it fail",
                     e->ref);
            e->err_at = now;
            e->failing = false;
        }
        return;
    }
    /* a value older than the last reload needs nothing here: wd_secret_cache_clear queued it, and complete()
     * queues again a fetch that started before it; a failed one is retried at next_try like any refresh */
    if (now >= e->next_try) {
        if (atomic_load_explicit(&e->used, memory_order_relaxed)) {
            queue(e); /* used during this TTL: refreshed ahead of expiry, the old value served meanwhile */
            return;
        }
        if (now >= v->expires) {
            set_value(e, NULL); /* unused for a whole TTL: wiped, not refreshed */
            e->failing = false;
            return;
        }
        e->next_try = v->expires;
    }
    if (e->next_try < *next)
        *next = e->next_try;
    if (v->serve_until < *next)
        *next = v->serve_until;
}

static void *resolver_main(void *arg)
{
    size_t lane = (size_t)(uintptr_t)arg;
    on_resolver = true;
    pthread_setname_np(pthread_self(), "wd-secrets");
    struct note note = {.msg = ""};
    pthread_mutex_lock(&g_mu);
    while (running) {
        int64_t now = mono_ms();
        int64_t next = now + IDLE_WAKE_MS;
        if (lane == 0) {
            for (size_t i = 0; i < TABLE_SLOTS; i++) {
                struct entry *e = atomic_load_explicit(&slots[i], memory_order_relaxed);
                if (e != NULL)
                    sweep(e, now, &next, &note);
            }
            free_retired();
            if (retired != NULL && now + RETIRED_POLL_MS < next)
                next = now + RETIRED_POLL_MS;
        } else {
            next = now + 60000; /* only its queue: woken by queue() and stop */
        }
        struct entry *e = jobs_head[lane];
        if (e == NULL) {
            if (note.msg[0] != '\0') {
                pthread_mutex_unlock(&g_mu);
                note_flush(&note);
                pthread_mutex_lock(&g_mu);
                continue;
            }
            cv_wait_until(&work_cv[lane], next > now ? next : now + 1);
            continue;
        }
        jobs_head[lane] = e->next_job;
        if (jobs_head[lane] == NULL)
            jobs_tail[lane] = NULL;
        e->start_epoch = atomic_load(&reload_epoch);
        pthread_mutex_unlock(&g_mu);
        note_flush(&note);

        /* the only place a backend runs: no lock held */
        int64_t delay = atomic_load(&t_backend_delay_ms);
        if (delay > 0)
            nanosleep(&(struct timespec){delay / 1000, (delay % 1000) * 1000000}, NULL);
        char why[256] = "";
        int64_t ttl = e->be->default_ttl_ms;
        int n = e->be->resolve(wd_secrets_config_get(), e->ref, scratch[lane], scratch_len, &ttl, why, sizeof(why));
        atomic_fetch_add(&backend_calls, 1);
        if (ttl <= 0)
            ttl = e->be->default_ttl_ms;
        int64_t t_override = atomic_load(&t_ttl_ms);
        if (t_override > 0 && ttl != WD_SECRET_TTL_NEVER)
            ttl = t_override;
        int64_t done = mono_ms();
        struct val *v = NULL;
        if (n > 0) {
            v = val_new(scratch[lane], (size_t)n, done, ttl, e->start_epoch);
            if (v == NULL)
                snprintf(why, sizeof(why), "out of memory");
        }
        OPENSSL_cleanse(scratch[lane], scratch_len);

        pthread_mutex_lock(&g_mu);
        complete(e, v, ttl, why[0] ? why : "no reason given", done, &note);
        if (lane != 0)
            pthread_cond_signal(&work_cv[0]); /* the sweeper: a new timer, perhaps an old value to wipe */
    }
    pthread_mutex_unlock(&g_mu);
    note_flush(&note);
    return NULL;
}

/* start_mu held: every resolver thread told to stop and joined */
static void stop_resolvers(void)
{
    pthread_mutex_lock(&g_mu);
    running = false;
    for (size_t i = 0; i < LANES; i++)
        pthread_cond_signal(&work_cv[i]);
    pthread_mutex_unlock(&g_mu);
    for (size_t i = 0; i < nresolvers; i++)
        pthread_join(resolvers[i], NULL);
    nresolvers = 0;
}

int wd_secrets_start(void)
{
    if (atomic_load(&started))
        return 0;
    pthread_mutex_lock(&start_mu);
    if (atomic_load(&started)) {
        pthread_mutex_unlock(&start_mu);
        return 0;
    }
    pthread_once(&cv_once, cv_init);
    scratch_len = WD_SECRET_MAX;
    int rc = 0;
    for (size_t i = 0; i < LANES && rc == 0; i++)
        rc = (scratch[i] = secure_map(scratch_len)) == NULL ? -1 : 0;
    pthread_mutex_lock(&g_mu);
    running = true;
    pthread_mutex_unlock(&g_mu);
    /* the resolvers take no signal: the server's main loop handles them */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    nresolvers = 0;
    for (size_t i = 0; i < LANES && rc == 0; i++) {
        rc = pthread_create(&resolvers[i], NULL, resolver_main, (void *)(uintptr_t)i);
        nresolvers += rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        stop_resolvers();
        for (size_t i = 0; i < LANES; i++) {
            if (scratch[i] != NULL)
                secure_unmap(scratch[i], scratch_len);
            scratch[i] = NULL;
        }
        pthread_mutex_unlock(&start_mu);
        return -1;
    }
    atomic_store(&started, true);
    pthread_mutex_unlock(&start_mu);
    return 0;
}

void wd_secrets_stop(void)
{
    pthread_mutex_lock(&start_mu);
    if (!atomic_load(&started)) {
        pthread_mutex_unlock(&start_mu);
        return;
    }
    stop_resolvers();

    pthread_mutex_lock(&g_mu);
    run_id++;
    for (struct wd_secrets_loop *l = loops; l; l = l->next)
        while (l->ready_head)
            wait_unlink(l->ready_head);
    struct entry *dead = NULL;
    for (size_t i = 0; i < TABLE_SLOTS; i++) {
        struct entry *e = atomic_load_explicit(&slots[i], memory_order_relaxed);
        if (e == NULL)
            continue;
        while (e->waits)
            wait_unlink(e->waits);
        set_value(e, NULL);
        atomic_store_explicit(&slots[i], NULL, memory_order_relaxed);
        e->next_job = dead;
        dead = e;
    }
    /* nobody reads any more (the contract of stop): every value goes, pinned or not */
    while (retired != NULL) {
        struct val *v = retired;
        retired = v->next_retired;
        secure_unmap(v, v->maplen);
    }
    while (dead != NULL) {
        struct entry *e = dead;
        dead = e->next_job;
        free(e->ref);
        free(e);
    }
    pthread_cond_broadcast(&done_cv);
    for (size_t i = 0; i < LANES; i++)
        jobs_head[i] = jobs_tail[i] = NULL;
    nentries = 0;
    while (kept_list) {
        struct kept *k = kept_list;
        kept_list = k->next;
        munlock(k->p, k->n);
        munmap(k->p, k->n);
        free(k);
    }
    pthread_mutex_unlock(&g_mu);
    for (size_t i = 0; i < LANES; i++) {
        secure_unmap(scratch[i], scratch_len);
        scratch[i] = NULL;
    }
    wd_secret_backends_shutdown(); /* the backends' own tokens wiped */
    wd_config_secrets_free(__atomic_exchange_n(&g_cfg, NULL, __ATOMIC_ACQ_REL));
    atomic_store(&started, false);
    pthread_mutex_unlock(&start_mu);
}

/* ---- the API ---- */

int wd_secret_scheme_supported(const char *ref)
{
    const struct wd_secret_backend *be = wd_secret_backend_find(ref);
    return be != NULL && be->resolve != NULL;
}

int wd_secret_get(struct wd_secrets_loop *l, const char *ref, char *out, size_t cap, struct wd_secret_wait *wait)
{
    uint64_t h = ref_hash(ref);
    int64_t now = l != NULL ? (int64_t)uv_now(l->loop) : mono_ms();
    struct entry *e = lookup(ref, h);
    if (e != NULL) { /* the hot path: no lock, no syscall */
        int n = try_read(e, now, 0, out, cap);
        if (n >= 0)
            return n;
        if (n == TOO_SMALL)
            return -1;
    }
    /* the slow branch: first use, expired or failed; g_mu is never held across I/O */
    const struct wd_secret_backend *be = wd_secret_backend_find(ref);
    if (be == NULL || be->resolve == NULL || wd_secrets_start() != 0)
        return -1;
    pthread_mutex_lock(&g_mu);
    if (e == NULL && (e = lookup_or_add(ref, h, be)) == NULL) {
        pthread_mutex_unlock(&g_mu);
        return -1;
    }
    int n = try_read(e, now, 0, out, cap); /* published since the first look */
    if (n >= 0 || n == TOO_SMALL) {
        pthread_mutex_unlock(&g_mu);
        return n >= 0 ? n : -1;
    }
    if (e->failing || (!e->inflight && e->err_at != 0 && now < e->err_at + atomic_load(&t_error_hold_ms))) {
        /* failing: its value is past the stale bound and the refreshes fail (the resolver drops it soon);
         * or it failed a moment ago */
        pthread_mutex_unlock(&g_mu);
        return -1;
    }
    queue(e);
    bool counted = false;
    if (wait != NULL && l != NULL) {
        counted = wait->where != 0; /* linked already (on this loop: one wait stays on one loop) */
        wait_unlink(wait);
        wait->loop = l;
        wait->entry = e;
        wait->prev = NULL;
        wait->next = e->waits;
        if (e->waits)
            e->waits->prev = wait;
        e->waits = wait;
        wait->where = 1;
    }
    pthread_mutex_unlock(&g_mu);
    if (wait != NULL && l != NULL && !counted)
        loop_pending(l, +1);
    return WD_SECRET_PENDING;
}

int wd_secret_state(const char *ref, char *why, size_t whycap)
{
    if (whycap > 0)
        why[0] = '\0';
    struct entry *e = lookup(ref, ref_hash(ref));
    if (e == NULL)
        return WD_SECRET_UNUSED;
    int st;
    int64_t now = mono_ms();
    pthread_mutex_lock(&g_mu);
    struct val *v = atomic_load_explicit(&e->cur, memory_order_relaxed);
    if (v != NULL && now < v->serve_until)
        st = e->failing || now >= v->expires ? WD_SECRET_STALE : WD_SECRET_CACHED;
    else if (e->inflight && e->err_at == 0)
        st = WD_SECRET_RESOLVING;
    else if (e->err_at != 0 || e->why[0] != '\0')
        st = WD_SECRET_FAILED;
    else
        st = WD_SECRET_UNUSED; /* resolved once, unused for a TTL, wiped: fetched again on its next use */
    if (st == WD_SECRET_FAILED || st == WD_SECRET_STALE)
        snprintf(why, whycap, "%s", e->why);
    pthread_mutex_unlock(&g_mu);
    return st;
}

size_t wd_secrets_stats(struct wd_secrets_scheme_stats *out, size_t cap)
{
    size_t n = 0;
    int64_t now = mono_ms();
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < TABLE_SLOTS; i++) {
        struct entry *e = atomic_load_explicit(&slots[i], memory_order_relaxed);
        if (e == NULL)
            continue;
        size_t k = 0;
        while (k < n && out[k].scheme != e->be->scheme)
            k++;
        if (k == n) {
            if (n == cap)
                continue;
            out[n++] = (struct wd_secrets_scheme_stats){.scheme = e->be->scheme};
        }
        struct wd_secrets_scheme_stats *o = &out[k];
        struct val *v = atomic_load_explicit(&e->cur, memory_order_relaxed);
        o->references++;
        if (v != NULL && now < v->serve_until && (e->failing || now >= v->expires))
            o->stale++;
        else if (v == NULL && e->err_at != 0)
            o->failed++;
        o->fetches_ok += e->fetch_ok;
        o->fetches_failed += e->fetch_failed;
        o->stale_episodes += e->stale_starts;
    }
    pthread_mutex_unlock(&g_mu);
    return n;
}

void wd_secret_invalidate(const char *ref)
{
    struct entry *e = lookup(ref, ref_hash(ref));
    if (e == NULL)
        return;
    int64_t now = mono_ms();
    bool again = false;
    pthread_mutex_lock(&g_mu);
    if (!e->inflight && atomic_load_explicit(&e->cur, memory_order_relaxed) != NULL &&
        now - e->fetched_at >= atomic_load(&t_invalidate_holdoff_ms)) {
        queue(e);
        again = true;
    }
    pthread_mutex_unlock(&g_mu);
    if (again)
        wd_logf(WD_LOG_INFO, "", "secret %.200s: the provider refused the cached value; fetching it again", ref);
}

void wd_secrets_prefetch(const char *ref)
{
    const struct wd_secret_backend *be = wd_secret_backend_find(ref);
    if (be == NULL || be->resolve == NULL || wd_secrets_start() != 0)
        return;
    int64_t now = mono_ms();
    pthread_mutex_lock(&g_mu);
    struct entry *e = lookup_or_add(ref, ref_hash(ref), be);
    if (e != NULL) {
        struct val *v = atomic_load_explicit(&e->cur, memory_order_relaxed);
        if (v == NULL || now >= v->expires || v->epoch < atomic_load(&reload_epoch))
            queue(e);
    }
    pthread_mutex_unlock(&g_mu);
}

void wd_secret_cache_clear(void)
{
    if (!atomic_load(&started))
        return;
    pthread_mutex_lock(&g_mu);
    atomic_fetch_add(&reload_epoch, 1);
    for (size_t i = 0; i < TABLE_SLOTS; i++) {
        struct entry *e = atomic_load_explicit(&slots[i], memory_order_relaxed);
        if (e == NULL)
            continue;
        e->err_at = 0;
        if (atomic_load_explicit(&e->cur, memory_order_relaxed) != NULL)
            queue(e); /* when in flight already, complete() queues it again: the fetch may predate the change */
    }
    pthread_mutex_unlock(&g_mu);
}

/* A pinned comparison of e's value with p[0..n), for the lock-free branch of resolve_inline. */
static bool same_value(struct entry *e, const char *p, size_t n, uint64_t min_epoch)
{
    atomic_fetch_add(&e->readers, 1);
    struct val *v = atomic_load(&e->cur);
    bool same = v != NULL && v->epoch >= min_epoch && v->len == n && memcmp(v->bytes, p, n) == 0;
    atomic_fetch_sub(&e->readers, 1);
    return same;
}

/* env:// on the cold path: read again (memory only, so it runs here, not on the resolver) and the cache
 * brought in line, so a variable the process itself changed is seen by the request path too. */
static int resolve_inline(const struct wd_secret_backend *be, const char *ref, char *out, size_t cap)
{
    char buf[WD_SECRET_MAX], why[256] = "";
    int64_t ttl = be->default_ttl_ms;
    int n = be->resolve(wd_secrets_config_get(), ref, buf, sizeof(buf), &ttl, why, sizeof(why));
    atomic_fetch_add(&backend_calls, 1);
    uint64_t h = ref_hash(ref), ep = atomic_load(&reload_epoch);
    struct entry *e = lookup(ref, h);
    bool in_line = n > 0 ? e != NULL && same_value(e, buf, (size_t)n, ep)
                         : e == NULL || atomic_load(&e->cur) == NULL;
    if (!in_line && wd_secrets_start() == 0) {
        struct note note = {.msg = ""};
        pthread_mutex_lock(&g_mu);
        if (e == NULL)
            e = lookup_or_add(ref, h, be);
        if (e != NULL && !e->inflight) { /* in flight: the resolver brings it in line itself */
            int64_t now = mono_ms();
            struct val *v = n > 0 ? val_new(buf, (size_t)n, now, ttl, ep) : NULL;
            if (n <= 0 || v != NULL) {
                e->inflight = true; /* what complete() ends */
                e->start_epoch = ep;
                if (v == NULL)
                    set_value(e, NULL);
                complete(e, v, ttl, why, now, &note);
            }
        }
        pthread_mutex_unlock(&g_mu);
        note_flush(&note);
    }
    int rc = -1;
    if (n > 0 && (size_t)n + 1 <= cap) {
        memcpy(out, buf, (size_t)n + 1);
        rc = n;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int wd_secret_resolve(const char *ref, char *out, size_t cap)
{
    const struct wd_secret_backend *be = wd_secret_backend_find(ref);
    if (be == NULL || be->resolve == NULL)
        return -1;
    if (on_resolver) {
        /* a backend that needs a secret of its own (a vault token in a file): no cache, no wait on itself */
        char why[256];
        int64_t ttl;
        return be->resolve(wd_secrets_config_get(), ref, out, cap, &ttl, why, sizeof(why));
    }
    if (be->no_io)
        return resolve_inline(be, ref, out, cap);
    uint64_t h = ref_hash(ref);
    uint64_t ep = atomic_load(&reload_epoch);
    struct entry *e = lookup(ref, h);
    if (e != NULL) {
        int n = try_read(e, mono_ms(), ep, out, cap);
        if (n >= 0)
            return n;
        if (n == TOO_SMALL)
            return -1;
    }
    if (wd_secrets_start() != 0)
        return -1;
    pthread_mutex_lock(&g_mu);
    if (e == NULL && (e = lookup_or_add(ref, h, be)) == NULL) {
        pthread_mutex_unlock(&g_mu);
        return -1;
    }
    uint64_t run = run_id, seq0 = e->done_seq;
    int64_t deadline = mono_ms() + SYNC_WAIT_MS;
    int n;
    bool timed_out = false;
    for (;;) {
        int64_t now = mono_ms();
        n = try_read(e, now, ep, out, cap);
        if (n != MISS)
            break;
        if (e->done_seq > seq0 && e->last_done_epoch >= ep) {
            n = try_read(e, now, 0, out, cap); /* what that fetch left: a stale value when it failed */
            break;
        }
        if (!e->inflight) {
            if (e->done_seq == seq0 && e->err_at != 0 && now < e->err_at + atomic_load(&t_error_hold_ms))
                break; /* it failed a moment ago */
            queue(e);
        }
        if (cv_wait_until(&done_cv, deadline) == ETIMEDOUT) {
            timed_out = true;
            n = MISS;
            break;
        }
        if (run != run_id) { /* stopped: e is gone */
            pthread_mutex_unlock(&g_mu);
            return -1;
        }
    }
    pthread_mutex_unlock(&g_mu);
    if (timed_out)
        wd_logf(WD_LOG_WARN, "", "secret %.200s: no answer from its backend in %d s", ref, SYNC_WAIT_MS / 1000);
    return n >= 0 ? n : -1;
}

/* ---- test hooks ---- */

void wd_secrets_test_set_timing(const struct wd_secrets_timing *t)
{
    static const struct wd_secrets_timing defaults = {0, 600000, 1000, 5000, 1000, 0};
    if (t == NULL)
        t = &defaults;
    atomic_store(&t_ttl_ms, t->ttl_ms);
    atomic_store(&t_stale_max_ms, t->stale_max_ms);
    atomic_store(&t_error_hold_ms, t->error_hold_ms);
    atomic_store(&t_retry_ms, t->retry_ms);
    atomic_store(&t_invalidate_holdoff_ms, t->invalidate_holdoff_ms);
    atomic_store(&t_backend_delay_ms, t->backend_delay_ms);
    if (atomic_load(&started)) {
        pthread_mutex_lock(&g_mu);
        pthread_cond_signal(&work_cv[0]); /* the sweeper */
        pthread_mutex_unlock(&g_mu);
    }
}

long wd_secrets_test_backend_calls(void) { return atomic_load(&backend_calls); }
void wd_secrets_test_keep_wiped(bool on) { atomic_store(&keep_wiped, on); }
long wd_secrets_test_wiped(void) { return atomic_load(&wiped_count); }

const void *wd_secrets_test_value_buf(const char *ref, size_t *maplen)
{
    const void *p = NULL;
    pthread_mutex_lock(&g_mu);
    struct entry *e = lookup(ref, ref_hash(ref));
    struct val *v = e ? atomic_load(&e->cur) : NULL;
    if (v != NULL) {
        p = v;
        *maplen = v->maplen;
    }
    pthread_mutex_unlock(&g_mu);
    return p;
}
