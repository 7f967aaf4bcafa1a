/* The audit writer (see writer.h). States: connecting (a blocking connect on libuv's thread pool, as
 * it is rare and may run migrations), ready (non-blocking queries on the loop), down (reconnect timer).
 * Durable means committed to PostgreSQL, or written and fdatasync'd to the spool file. */
#include "audit/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "audit/db.h"
#include "secrets/secrets.h"
#include "lib/log.h"

#define BATCH_RECORDS 2000
#define BATCH_BYTES (4u << 20)
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000
/* With nobody waiting on durability, a batch of fewer than LINGER_RECORDS waits up to audit.batch_wait
 * for company: one transaction (and one WAL flush) for several requests instead of one each. */
#define LINGER_RECORDS 256
#define QUEUE_MAX_BYTES (64u << 20) /* per worker, besides audit.queue_records */
/* fail_open: a full queue spills to the spool; records are refused only past this many times the bound
 * (the spool not keeping up either, or no spool to write to) */
#define QUEUE_HARD_FACTOR 2
/* a spool that cannot be written (a full disk, an I/O error) is tried again after a backoff, not on every
 * loop turn, and its failures are logged at most once per SPOOL_LOG_MS */
#define SPOOL_RETRY_MIN_MS 100
#define SPOOL_RETRY_MAX_MS 2000
#define SPOOL_LOG_MS 10000
#define STMT_RECORDS "wd_audit_ins"
#define STMT_CKPTS "wd_audit_ckpt"

static struct {
    bool enabled;
    enum wd_audit_mode mode;
    enum wd_audit_content content;
    bool migrate;
    atomic_bool migrated;
    unsigned queue_records, every_records, every_ms, batch_wait_ms;
    bool durable_answers;
    unsigned durable_answers_timeout_ms;
    char *spool_dir;
    char *export_path;
    char *db_ref;
    EVP_PKEY *key;
    char config_sha256[65];
    bool config_from_file;
} G;

bool wd_audit_enabled(void) { return G.enabled; }
enum wd_audit_content wd_audit_content(void) { return G.content; }
bool wd_audit_fail_closed(void) { return G.mode == WD_AUDIT_FAIL_CLOSED; }
bool wd_audit_durable_answers(void) { return G.enabled && G.durable_answers; }
unsigned wd_audit_durable_answers_timeout_ms(void) { return G.durable_answers_timeout_ms; }

struct qent {
    size_t end;          /* offset in q just past this record's line and its '\n' */
    int64_t seq;
    uint8_t hash[32];
};

struct waiter {
    int64_t seq;
    wd_audit_durable_cb cb;
    void *ctx;
};

struct replay {
    int fd;
    char path[PATH_MAX];
    off_t off;           /* next byte to send */
    bool own;            /* this writer's spool (still being appended to) */
};

enum db_state { DB_DOWN, DB_CONNECTING, DB_READY };

struct wd_audit_writer {
    uv_loop_t *loop;
    int worker;
    char chain_id[37];
    int64_t next_seq;
    uint8_t prev[32];
    /* queue: record lines, each ending in '\n', from q_head */
    struct wd_buf q;
    size_t q_head;
    struct qent *ents;
    size_t nents, ent_head, ents_cap;
    struct waiter *waiters;
    size_t nwaiters, waiters_cap;
    int64_t durable_seq;
    uint8_t durable_hash[32];
    uint64_t refused_unreported;
    int64_t refused_first_us, refused_last_us; /* wall clock span of the unreported refusals */
    /* database */
    enum db_state state;
    PGconn *db;
    uv_poll_t poll;
    bool poll_live;
    uv_work_t connect_work;
    bool connect_ok;
    char connect_err[256];
    uv_timer_t retry_timer;
    unsigned retry_ms;
    bool inflight;
    enum { SEND_RECORDS, SEND_REPLAY, SEND_CKPTS, SEND_RCKPTS } inflight_kind;
    size_t inflight_n;       /* records (queue) */
    size_t inflight_bytes;   /* bytes of the replay file covered */
    bool inflight_failed;
    bool inflight_copy;      /* a COPY waiting for the server to take the rows in w->batch */
    bool inflight_insert;    /* the records in flight went with the idempotent insert, not COPY */
    /* the connection went away with records in flight: they may have been committed, so the queue is
     * sent with the idempotent JSON insert until one batch of it is through */
    bool q_maybe_sent;
    struct wd_buf canon;         /* append_now's scratch: the record's canonical form */
    struct wd_buf batch;
    /* checkpoints waiting for the database */
    struct wd_buf ckpts;     /* lines joined by ',' */
    struct wd_buf rckpts;    /* checkpoint lines read back from a spool: for the database only */
    size_t inflight_rckpts;
    int export_pending;      /* export writes in flight */
    size_t nckpts;
    size_t inflight_ckpts;
    int64_t ckpt_seq;        /* last checkpointed seq */
    int64_t ckpt_record_seq; /* seq of the system record announcing that checkpoint */
    uint64_t since_ckpt;
    uv_timer_t ckpt_timer;
    uv_timer_t linger_timer;
    uv_timer_t stall_timer;  /* a batch in flight for too long (stall_ms): given up like a lost connection */
    uint64_t q_first_ms;     /* when the oldest queued record was queued (loop time) */
    /* spool */
    bool spooling;           /* records go to the spool, not the database */
    /* the own spool may hold records the database already has (a batch in flight when the connection
     * went, a spool write or fdatasync that failed and goes again, an own replay that failed): its
     * replay uses the idempotent insert instead of COPY until the spool is emptied */
    bool spool_maybe_sent;
    int spool_fd;
    char spool_path[PATH_MAX];
    off_t spool_size;
    uv_fs_t spool_req;
    bool spool_busy;
    struct wd_buf spool_buf;
    size_t spool_n;          /* queue records in spool_buf */
    int64_t spool_first_seq; /* seq of the first queue record in spool_buf */
    int64_t spool_last_seq;  /* seq of the last queue record in spool_buf */
    /* queued records up to this seq may be in the database already: a spool write of them reached the file
     * (the replay reads it) but failed its fdatasync, and with the spool failing (backoff) they may go to
     * the database directly: with the idempotent insert, never COPY */
    int64_t q_sent_upto;
    size_t spool_ckpts;      /* checkpoint bytes in spool_buf taken from ckpts */
    /* the spool failed (a write, its fdatasync, or opening it): no spool write before spool_retry_at
     * (loop time), then one try; spool_timer kicks the loop then */
    bool spool_broken;
    uint64_t spool_retry_at;
    unsigned spool_retry_ms;
    uint64_t spool_failures;     /* failed spool operations since the spool last worked */
    uint64_t spool_fail_unlogged; /* of those, failures not logged yet (rate limit) */
    uint64_t spool_fail_log_ms;  /* loop time of the last failure logged */
    uint64_t spool_ok_log_ms;    /* loop time of the last recovery logged */
    uv_timer_t spool_timer;
    struct replay *replays;  /* orphans and our own spool, replayed in order */
    size_t nreplays;
    /* export */
    int export_fd;
    /* the loop hook that sends what accumulated during one loop turn */
    uv_check_t check;
    bool stopping, final_ckpt_done, freeing;
    bool quiet;              /* the worker's handles are being closed: waiters are dropped, never called */
    int64_t cut_seq;         /* the last record taken out of the queue into the spool behind a batch in flight */
    uint8_t cut_hash[32];
    /* counters read by /metrics from another thread: relaxed atomics, written by this loop only */
    struct {
        _Atomic uint64_t records, written, spooled, refused, batches, checkpoints, queue_depth, spool_bytes;
        _Atomic uint64_t insert_batches, answers_held, answers_early, stalls;
        atomic_bool connected;
    } st;
};

#define STAT_ADD(w, f, n) atomic_fetch_add_explicit(&(w)->st.f, (uint64_t)(n), memory_order_relaxed)
#define STAT_SET(w, f, v) atomic_store_explicit(&(w)->st.f, (v), memory_order_relaxed)

/* ---- global ----------------------------------------------------------------------------------- */

int wd_audit_init(const struct wd_audit_config *cfg, const char *config_sha256, bool from_file, char *why,
                  size_t why_cap)
{
    if (!cfg->enabled)
        return 0;
    G.mode = cfg->mode;
    G.content = cfg->content;
    G.migrate = cfg->migrate;
    G.queue_records = cfg->queue_records;
    G.batch_wait_ms = cfg->batch_wait_ms;
    G.durable_answers = cfg->durable_answers;
    G.durable_answers_timeout_ms = cfg->durable_answers_timeout_ms;
    G.every_records = cfg->every_records;
    G.every_ms = cfg->every_ms;
    G.spool_dir = strdup(cfg->spool);
    G.db_ref = strdup(cfg->database);
    G.export_path = cfg->export_path ? strdup(cfg->export_path) : NULL;
    snprintf(G.config_sha256, sizeof(G.config_sha256), "%s", config_sha256);
    G.config_from_file = from_file;
    if (G.spool_dir == NULL || G.db_ref == NULL || (cfg->export_path && G.export_path == NULL)) {
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    if (cfg->signing_key != NULL) {
        G.key = wd_audit_key_load(cfg->signing_key, why, why_cap);
        if (G.key == NULL)
            return -1;
    } else {
        wd_log(WD_LOG_WARN, "audit.checkpoints.signing_key is not set: no signed checkpoints will be made", "");
    }
    if (G.mode == WD_AUDIT_FAIL_OPEN) {
        /* mkdir -p, one level at a time */
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s", G.spool_dir);
        for (char *s = p + 1; *s; s++)
            if (*s == '/') {
                *s = '\0';
                mkdir(p, 0700);
                *s = '/';
            }
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            snprintf(why, why_cap, "audit.spool: cannot create %s: %s", G.spool_dir, strerror(errno));
            return -1;
        }
        if (access(p, W_OK) != 0) {
            snprintf(why, why_cap, "audit.spool: %s is not writable", G.spool_dir);
            return -1;
        }
    }
    if (G.export_path != NULL && strcmp(G.export_path, "stdout") != 0) {
        int fd = open(G.export_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(why, why_cap, "audit.checkpoints.export: cannot open %s: %s", G.export_path, strerror(errno));
            return -1;
        }
        close(fd);
    }
    G.enabled = true;
    (void)wd_audit_insert_sql(); /* built once here: writers prepare it from the thread pool */
    /* one attempt now, so a wrong URL or a missing migration shows at start; writers retry on their own */
    char err[300];
    PGconn *db = wd_audit_db_connect(G.db_ref, err, sizeof(err));
    if (db == NULL) {
        wd_logf(WD_LOG_WARN, "", "audit database not reachable at start (%s): %s", err,
                G.mode == WD_AUDIT_FAIL_OPEN ? "records go to the spool until it is" : "requests get 503 until it is");
        return 0;
    }
    if (G.migrate) {
        int n = wd_audit_migrate(db, err, sizeof(err));
        if (n < 0)
            wd_logf(WD_LOG_ERROR, "", "audit migrations failed: %s (run: warden db migrate --db URL)", err);
        else {
            atomic_store(&G.migrated, true);
            if (n > 0)
                wd_logf(WD_LOG_INFO, "", "audit: applied %d migration(s)", n);
        }
    }
    PQfinish(db);
    return 0;
}

void wd_audit_global_free(void)
{
    free(G.spool_dir);
    free(G.export_path);
    if (G.db_ref)
        OPENSSL_cleanse(G.db_ref, strlen(G.db_ref));
    free(G.db_ref);
    EVP_PKEY_free(G.key);
    memset(&G, 0, sizeof(G));
}

/* ---- queue ------------------------------------------------------------------------------------ */

static size_t q_count(const struct wd_audit_writer *w) { return w->nents - w->ent_head; }

/* Records cut into the spool behind a batch (q_cut) are durable once the batch is: the durable prefix moves past
 * them when nothing queued lies between the batch and them. */
static void past_cut(struct wd_audit_writer *w)
{
    if (w->cut_seq <= w->durable_seq)
        return;
    if (w->ent_head < w->nents && w->ents[w->ent_head].seq < w->cut_seq)
        return;
    w->durable_seq = w->cut_seq;
    memcpy(w->durable_hash, w->cut_hash, 32);
}

/* Drops the first n queued records (they are durable). */
static void q_consume(struct wd_audit_writer *w, size_t n)
{
    if (n == 0) {
        past_cut(w);
        return;
    }
    struct qent *last = &w->ents[w->ent_head + n - 1];
    w->q_head = last->end;
    w->durable_seq = last->seq;
    memcpy(w->durable_hash, last->hash, 32);
    w->ent_head += n;
    w->since_ckpt += n;
    w->q_first_ms = uv_now(w->loop); /* the rest waited at least this long already: good enough */
    STAT_SET(w, queue_depth, (uint64_t)(w->nents - w->ent_head));
    past_cut(w);
    if (w->ent_head == w->nents) {
        w->ent_head = w->nents = 0;
        w->q.n = w->q_head = 0;
    } else if (w->q_head > (1u << 20) && w->q_head > w->q.n / 2) {
        /* compact: offsets shift down by q_head */
        size_t cut = w->q_head;
        memmove(w->q.p, w->q.p + cut, w->q.n - cut);
        w->q.n -= cut;
        w->q_head = 0;
        for (size_t i = w->ent_head; i < w->nents; i++)
            w->ents[i].end -= cut;
        memmove(w->ents, w->ents + w->ent_head, (w->nents - w->ent_head) * sizeof(*w->ents));
        w->nents -= w->ent_head;
        w->ent_head = 0;
    }
}

/* Takes out n queued records from the at-th on, durable in the spool behind a batch still in flight (the
 * queue's head): the chain's durable prefix (durable_seq) moves on once that batch is through. */
static void q_cut(struct wd_audit_writer *w, size_t at, size_t n)
{
    size_t i0 = w->ent_head + at, i1 = i0 + n;
    if (n > 0 && w->ents[i1 - 1].seq > w->cut_seq) {
        w->cut_seq = w->ents[i1 - 1].seq;
        memcpy(w->cut_hash, w->ents[i1 - 1].hash, 32);
    }
    size_t from = w->ents[i0 - 1].end, to = w->ents[i1 - 1].end, cut = to - from;
    memmove(w->q.p + from, w->q.p + to, w->q.n - to);
    w->q.n -= cut;
    for (size_t i = i1; i < w->nents; i++)
        w->ents[i].end -= cut;
    memmove(w->ents + i0, w->ents + i1, (w->nents - i1) * sizeof(*w->ents));
    w->nents -= n;
    w->since_ckpt += n;
    STAT_SET(w, queue_depth, (uint64_t)q_count(w));
}

/* A callback may append (a call refused by its admission answers, and its answer's end waits on a barrier) or
 * cancel: entries are copied out before the call, a cancelled one is only marked (cb NULL), and the array is
 * compacted at the end. */
static void fire_waiters(struct wd_audit_writer *w, bool all_fail)
{
    if (w->quiet) {
        w->nwaiters = 0;
        return;
    }
    size_t n = w->nwaiters;
    for (size_t i = 0; i < n; i++) {
        struct waiter x = w->waiters[i];
        if (x.cb == NULL || (!all_fail && x.seq > w->durable_seq))
            continue;
        w->waiters[i].cb = NULL;
        x.cb(x.ctx, !all_fail);
    }
    size_t k = 0;
    for (size_t i = 0; i < w->nwaiters; i++)
        if (w->waiters[i].cb != NULL)
            w->waiters[k++] = w->waiters[i];
    w->nwaiters = k;
}

void wd_audit_cancel(struct wd_audit_writer *w, void *ctx)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->nwaiters; i++)
        if (w->waiters[i].ctx == ctx)
            w->waiters[i].cb = NULL;
}

static void on_check(uv_check_t *h);

static void kick(struct wd_audit_writer *w)
{
    if (!w->freeing)
        uv_check_start(&w->check, on_check);
}

static void connect_start(struct wd_audit_writer *w);
static int spill(struct wd_audit_writer *w);

static int append_now(struct wd_audit_writer *w, struct wd_audit_rec *rec)
{
    wd_audit_set_str(rec, WD_AF_CHAIN_ID, w->chain_id, 36);
    wd_audit_set_int(rec, WD_AF_SEQ, w->next_seq);
    if (!rec->f[WD_AF_TS].set)
        wd_audit_set_int(rec, WD_AF_TS, wd_now_us());
    struct wd_buf *canon = &w->canon; /* reused: a record's canonical form is built on every append */
    canon->n = 0;
    canon->oom = false;
    if (wd_audit_canonical(rec, canon) != 0)
        return -1;
    uint8_t h[32];
    wd_audit_chain_hash(w->prev, canon->p, canon->n, h);
    size_t before = w->q.n;
    wd_audit_line(rec, canon->p, canon->n, h, &w->q);
    wd_buf_putc(&w->q, '\n');
    if (w->nents == w->ents_cap) {
        size_t cap = w->ents_cap ? w->ents_cap * 2 : 256;
        struct qent *e = realloc(w->ents, cap * sizeof(*e));
        if (e == NULL)
            w->q.oom = true;
        else {
            w->ents = e;
            w->ents_cap = cap;
        }
    }
    if (w->q.oom) {
        w->q.oom = false;
        w->q.n = before;
        return -1;
    }
    if (q_count(w) == 0)
        w->q_first_ms = uv_now(w->loop);
    struct qent *e = &w->ents[w->nents++];
    STAT_SET(w, queue_depth, (uint64_t)q_count(w));
    e->end = w->q.n;
    e->seq = w->next_seq++;
    memcpy(e->hash, h, 32);
    memcpy(w->prev, h, 32);
    STAT_ADD(w, records, 1);
    kick(w);
    return 0;
}

static int append_system(struct wd_audit_writer *w, const char *event, const char *detail)
{
    struct wd_audit_rec r = {0};
    wd_audit_set_cstr(&r, WD_AF_KIND, "system");
    wd_audit_set_cstr(&r, WD_AF_EVENT, event);
    wd_audit_set_cstr(&r, WD_AF_DETAIL, detail);
    return append_now(w, &r);
}

/* A record whose event happened but which will not be in the trail (the queue is full: neither the
 * database nor the spool takes records): counted, with the wall-clock span, for report_refused. */
static void note_lost(struct wd_audit_writer *w)
{
    int64_t now = wd_now_us();
    if (w->refused_unreported++ == 0)
        w->refused_first_us = now;
    w->refused_last_us = now;
}

/* The trail itself says how many records it lost and when: a system/records_refused record, queued
 * before the next accepted record, or as soon as the queue has room again (on_check), or at drain. */
static void report_refused(struct wd_audit_writer *w)
{
    if (w->refused_unreported == 0)
        return;
    char a[28], b[28], d[160];
    wd_format_ts(w->refused_first_us, a);
    wd_format_ts(w->refused_last_us, b);
    snprintf(d, sizeof(d), "{\"refused\":%llu,\"first_ts\":\"%s\",\"last_ts\":\"%s\"}",
             (unsigned long long)w->refused_unreported, a, b);
    if (append_system(w, "records_refused", d) == 0)
        w->refused_unreported = 0; /* else (out of memory) the count stays and goes with a later one */
}

int wd_audit_append(struct wd_audit_writer *w, struct wd_audit_rec *rec, wd_audit_durable_cb cb, void *ctx)
{
    if (w == NULL)
        return 0;
    size_t qn = q_count(w), qb = w->q.n - w->q_head;
    bool full = qn >= G.queue_records || qb >= QUEUE_MAX_BYTES;
    /* fail_open: the queue goes to the spool (durable, replayed in order) rather than refusing, up to
     * the hard bound; the queue drains into the spool every loop turn */
    /* (a spool that just failed is not spilled to again: the queue holds them until it is retried) */
    if (full && G.mode == WD_AUDIT_FAIL_OPEN && qn < (size_t)G.queue_records * QUEUE_HARD_FACTOR &&
        qb < (size_t)QUEUE_MAX_BYTES * QUEUE_HARD_FACTOR && (w->spool_broken || spill(w) == 0))
        full = false;
    bool closed_down = G.mode == WD_AUDIT_FAIL_CLOSED && cb != NULL && w->state != DB_READY;
    if (full || closed_down) {
        STAT_ADD(w, refused, 1);
        /* fail_closed with the database away: the request is refused (503) and its own call/failed record
         * says so; no event goes unrecorded. A full queue loses the record of an event that happened. */
        if (full)
            note_lost(w);
        static _Thread_local uint64_t last_log_ms;
        uint64_t now = uv_now(w->loop);
        if (now - last_log_ms >= 1000) {
            last_log_ms = now;
            wd_logf(WD_LOG_ERROR, "", "audit: record refused (%s); %llu refused so far on worker %d",
                    full ? "queue full" : "database unreachable and audit.mode is fail_closed",
                    (unsigned long long)atomic_load_explicit(&w->st.refused, memory_order_relaxed), w->worker);
        }
        return -1;
    }
    report_refused(w);
    if (append_now(w, rec) != 0) {
        STAT_ADD(w, refused, 1);
        note_lost(w);
        return -1;
    }
    if (cb != NULL) {
        if (w->nwaiters == w->waiters_cap) {
            size_t cap = w->waiters_cap ? w->waiters_cap * 2 : 64;
            struct waiter *x = realloc(w->waiters, cap * sizeof(*x));
            if (x == NULL)
                return -1; /* queued but nobody will be told: the caller answers 503 */
            w->waiters = x;
            w->waiters_cap = cap;
        }
        w->waiters[w->nwaiters++] = (struct waiter){w->next_seq - 1, cb, ctx};
    }
    return 0;
}

int wd_audit_barrier(struct wd_audit_writer *w, wd_audit_durable_cb cb, void *ctx)
{
    if (w == NULL)
        return 0;
    int64_t last = w->next_seq - 1;
    if (last <= w->durable_seq)
        return 0;
    /* the database away and nowhere else to make them durable now (fail_closed has no spool; fail_open's
     * failed and waits for its retry): they wait in memory, and the answer does not */
    if (w->state != DB_READY && (G.mode == WD_AUDIT_FAIL_CLOSED || w->spool_broken)) {
        STAT_ADD(w, answers_early, 1);
        return 0;
    }
    if (w->nwaiters == w->waiters_cap) {
        size_t cap = w->waiters_cap ? w->waiters_cap * 2 : 64;
        struct waiter *x = realloc(w->waiters, cap * sizeof(*x));
        if (x == NULL)
            return 0;
        w->waiters = x;
        w->waiters_cap = cap;
    }
    w->waiters[w->nwaiters++] = (struct waiter){last, cb, ctx};
    STAT_ADD(w, answers_held, 1);
    kick(w); /* somebody waits: no lingering for company */
    return 1;
}

void wd_audit_note_early(struct wd_audit_writer *w)
{
    if (w != NULL)
        STAT_ADD(w, answers_early, 1);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

struct export_req {
    uv_fs_t fs;
    struct wd_audit_writer *w;
    char line[];
};

static void export_done(uv_fs_t *req)
{
    struct export_req *x = (struct export_req *)req;
    x->w->export_pending--;
    if (req->result < 0)
        wd_logf(WD_LOG_ERROR, "", "audit: checkpoint export write failed: %s", uv_strerror((int)req->result));
    uv_fs_req_cleanup(req);
    free(x);
}

static void export_line(struct wd_audit_writer *w, const char *line, size_t n)
{
    if (G.export_path == NULL)
        return;
    if (strcmp(G.export_path, "stdout") == 0) {
        /* one write() per line: lines from several workers never interleave */
        char *b = malloc(n + 1);
        if (b == NULL)
            return;
        memcpy(b, line, n);
        b[n] = '\n';
        ssize_t r = write(STDOUT_FILENO, b, n + 1);
        (void)r;
        free(b);
        return;
    }
    if (w->export_fd < 0)
        return;
    struct export_req *x = malloc(sizeof(*x) + n + 1);
    if (x == NULL)
        return;
    x->w = w;
    memcpy(x->line, line, n);
    x->line[n] = '\n';
    uv_buf_t buf = uv_buf_init(x->line, (unsigned)(n + 1));
    /* O_APPEND: every process and worker appends whole lines to the one file */
    if (uv_fs_write(w->loop, &x->fs, w->export_fd, &buf, 1, -1, export_done) != 0)
        free(x);
    else
        w->export_pending++;
}

static void checkpoint(struct wd_audit_writer *w)
{
    if (G.key == NULL || w->durable_seq <= w->ckpt_seq)
        return;
    struct wd_audit_ckpt ck = {0};
    memcpy(ck.chain_id, w->chain_id, 37);
    ck.seq = w->durable_seq;
    memcpy(ck.head, w->durable_hash, 32);
    ck.ts_us = wd_now_us();
    if (wd_audit_ckpt_sign(&ck, G.key) != 0) {
        wd_log(WD_LOG_ERROR, "audit: signing a checkpoint failed", "");
        return;
    }
    struct wd_buf line = {0};
    wd_audit_ckpt_line(&ck, &line);
    if (line.oom) {
        wd_buf_free(&line);
        return;
    }
    export_line(w, line.p, line.n);
    if (w->ckpts.n > 0)
        wd_buf_putc(&w->ckpts, ',');
    wd_buf_put(&w->ckpts, line.p, line.n);
    w->nckpts++;
    wd_buf_free(&line);
    w->ckpt_seq = ck.seq;
    w->since_ckpt = 0;
    STAT_ADD(w, checkpoints, 1);
    char hx[65], d[160];
    wd_hex(ck.head, 32, hx);
    snprintf(d, sizeof(d), "{\"seq\":%lld,\"head\":\"%s\"}", (long long)ck.seq, hx);
    append_system(w, "checkpoint", d);
    w->ckpt_record_seq = w->next_seq - 1;
    kick(w);
}

static void on_ckpt_timer(uv_timer_t *t)
{
    struct wd_audit_writer *w = t->data;
    /* nothing but the last checkpoint's own record since then: nothing new to vouch for */
    if (w->durable_seq > w->ckpt_seq && w->durable_seq != w->ckpt_record_seq)
        checkpoint(w);
}

static void after_durable(struct wd_audit_writer *w)
{
    fire_waiters(w, false);
    if (w->since_ckpt >= G.every_records)
        checkpoint(w);
}

/* ---- spool ------------------------------------------------------------------------------------ */

static void on_spool_timer(uv_timer_t *t) { kick(t->data); }

/* A spool operation failed (a full disk, an I/O error, no spool file): the records stay queued. The
 * spool is tried again after a backoff (SPOOL_RETRY_MIN_MS doubling to SPOOL_RETRY_MAX_MS), not on every
 * loop turn, and meanwhile the database (once back) takes the queue directly. Logged at most once per
 * SPOOL_LOG_MS, with the count of failures since the last line. */
static void spool_failed(struct wd_audit_writer *w, const char *what, const char *err)
{
    uint64_t now = uv_now(w->loop);
    w->spool_failures++;
    w->spool_fail_unlogged++;
    if (!w->spool_broken) {
        w->spool_broken = true;
        w->spool_retry_ms = SPOOL_RETRY_MIN_MS;
    } else {
        w->spool_retry_ms = w->spool_retry_ms * 2 > SPOOL_RETRY_MAX_MS ? SPOOL_RETRY_MAX_MS : w->spool_retry_ms * 2;
    }
    w->spool_retry_at = now + w->spool_retry_ms;
    if (!w->freeing)
        uv_timer_start(&w->spool_timer, on_spool_timer, w->spool_retry_ms, 0);
    if (w->state != DB_READY)
        fire_waiters(w, true); /* nothing can make them durable now: the answers held for them go */
    if (w->spool_fail_log_ms == 0 || now - w->spool_fail_log_ms >= SPOOL_LOG_MS) {
        w->spool_fail_log_ms = now ? now : 1;
        wd_logf(WD_LOG_ERROR, "", "audit: worker %d: spool %s failed: %s (%llu failure%s since the last report); the "
                "records stay queued, the spool is tried again every %u ms at most and the database takes them "
                "when it can", w->worker, what, err, (unsigned long long)w->spool_fail_unlogged,
                w->spool_fail_unlogged == 1 ? "" : "s", SPOOL_RETRY_MAX_MS);
        w->spool_fail_unlogged = 0;
    }
}

/* A spool write and its fdatasync went through: the spool works (again). Logged at the same bounded rate
 * as the failures, so a flapping disk cannot flood the log either. */
static void spool_ok(struct wd_audit_writer *w)
{
    if (!w->spool_broken)
        return;
    w->spool_broken = false;
    uv_timer_stop(&w->spool_timer);
    uint64_t now = uv_now(w->loop);
    if (w->spool_ok_log_ms == 0 || now - w->spool_ok_log_ms >= SPOOL_LOG_MS) {
        w->spool_ok_log_ms = now ? now : 1;
        wd_logf(WD_LOG_INFO, "", "audit: worker %d: the spool is writable again after %llu failed operation%s",
                w->worker, (unsigned long long)w->spool_failures, w->spool_failures == 1 ? "" : "s");
    }
    w->spool_failures = 0;
}

/* Returns 0, or -1 with errno set (the caller reports it: spool_failed). */
static int spool_open(struct wd_audit_writer *w)
{
    if (w->spool_fd >= 0)
        return 0;
    snprintf(w->spool_path, sizeof(w->spool_path), "%s/%s.spool", G.spool_dir, w->chain_id);
    w->spool_fd = open(w->spool_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (w->spool_fd < 0)
        return -1;
    /* a live writer holds its spool locked: whoever can lock a spool file knows its writer is gone */
    flock(w->spool_fd, LOCK_EX | LOCK_NB);
    return 0;
}

static void spool_synced(uv_fs_t *req);

static void spool_written(uv_fs_t *req)
{
    struct wd_audit_writer *w = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (r < 0 || (size_t)r != w->spool_buf.n) {
        /* the records stay queued and go to the spool again, after a backoff */
        spool_failed(w, "write", r < 0 ? uv_strerror((int)r) : "short write (the disk is full?)");
        if (r > 0 && ftruncate(w->spool_fd, w->spool_size) != 0) {
            /* the torn line cannot be cut off: end it, so the next write starts a line of its own; the
             * replay stops at it (a damaged line), which the log names */
            w->spool_size += r;
            ssize_t k = write(w->spool_fd, "\n", 1);
            (void)k;
            w->spool_size += 1;
            if (w->spool_last_seq > w->q_sent_upto)
                w->q_sent_upto = w->spool_last_seq; /* a whole line of it may be in the file */
        }
        /* a replay may have read part of it already: what goes again goes with the idempotent insert */
        w->spool_maybe_sent = true;
        w->spool_busy = false;
        kick(w);
        return;
    }
    w->spool_size += r;
    STAT_SET(w, spool_bytes, (uint64_t)w->spool_size);
    uv_fs_fdatasync(w->loop, &w->spool_req, w->spool_fd, spool_synced);
}

static void spool_synced(uv_fs_t *req)
{
    struct wd_audit_writer *w = req->data;
    int r = (int)req->result;
    uv_fs_req_cleanup(req);
    w->spool_busy = false;
    if (r < 0) {
        /* the records stay queued and are written again; the replay may have sent this copy already */
        spool_failed(w, "fdatasync", uv_strerror(r));
        w->spool_maybe_sent = true;
        if (w->spool_last_seq > w->q_sent_upto)
            w->q_sent_upto = w->spool_last_seq;
        kick(w);
        return;
    }
    spool_ok(w);
    size_t qn = q_count(w);
    if (w->spool_n > 0 && qn >= w->spool_n) {
        /* where the records just made durable stand in the queue now */
        size_t k = w->inflight && w->inflight_kind == SEND_RECORDS ? w->inflight_n : 0;
        if (w->ents[w->ent_head].seq == w->spool_first_seq) {
            STAT_ADD(w, spooled, w->spool_n);
            q_consume(w, w->spool_n);
            w->q_maybe_sent = false; /* the head of the queue went to the spool whole */
        } else if (k > 0 && k + w->spool_n <= qn && w->ents[w->ent_head + k].seq == w->spool_first_seq) {
            STAT_ADD(w, spooled, w->spool_n);
            q_cut(w, k, w->spool_n); /* behind the batch in flight */
        } else {
            /* the batch ahead of them was lost with the connection: the queue goes to the spool again
             * from its head, so these are there twice, which the replay's idempotent insert absorbs */
            w->spool_maybe_sent = true;
        }
    }
    if (w->spool_ckpts > 0) {
        wd_buf_consume(&w->ckpts, w->spool_ckpts < w->ckpts.n ? w->spool_ckpts + 1 : w->ckpts.n);
        w->nckpts = w->ckpts.n ? w->nckpts : 0;
    }
    w->spool_n = w->spool_ckpts = 0;
    after_durable(w);
    kick(w);
}

/* Appends queued records (and checkpoint lines) to the spool. */
static void spool_flush(struct wd_audit_writer *w)
{
    if (w->spool_busy || (q_count(w) == 0 && w->ckpts.n == 0))
        return;
    if (w->spool_broken && uv_now(w->loop) < w->spool_retry_at)
        return; /* spool_timer kicks the loop when it is time to try again */
    if (spool_open(w) != 0) {
        spool_failed(w, "open", strerror(errno));
        return;
    }
    /* when the queue started going to the spool (spill) while a batch of its head was on its way to the
     * database, the spool takes what is behind that batch */
    size_t skip = w->inflight && w->inflight_kind == SEND_RECORDS ? w->inflight_n : 0;
    /* checkpoint lines on their way to the database stay where they are (batch_done consumes them) */
    size_t ck = w->inflight && w->inflight_kind == SEND_CKPTS ? 0 : w->ckpts.n;
    size_t qn = q_count(w);
    if (skip >= qn && ck == 0)
        return;
    if (skip > qn)
        skip = qn;
    if (w->q_maybe_sent)
        w->spool_maybe_sent = true;
    size_t n = qn - skip;
    size_t from = skip == 0 ? w->q_head : w->ents[w->ent_head + skip - 1].end;
    w->spool_first_seq = n > 0 ? w->ents[w->ent_head + skip].seq : 0;
    w->spool_last_seq = n > 0 ? w->ents[w->nents - 1].seq : 0;
    if (n > 0 && w->spool_first_seq <= w->q_sent_upto)
        w->spool_maybe_sent = true;
    w->spool_buf.n = 0;
    wd_buf_put(&w->spool_buf, w->q.p + from, w->q.n - from);
    /* checkpoint lines: ckpts holds them joined by ',', between '}' and '{' */
    for (size_t i = 0; i < ck; i++) {
        char c = w->ckpts.p[i];
        if (c == ',' && i > 0 && w->ckpts.p[i - 1] == '}' && i + 1 < ck && w->ckpts.p[i + 1] == '{')
            c = '\n';
        wd_buf_putc(&w->spool_buf, c);
    }
    if (ck > 0)
        wd_buf_putc(&w->spool_buf, '\n');
    if (w->spool_buf.oom) {
        w->spool_buf.oom = false;
        return;
    }
    w->spool_n = n;
    w->spool_ckpts = ck;
    w->nckpts = 0;
    w->spool_busy = true;
    w->spool_req.data = w;
    uv_buf_t b = uv_buf_init(w->spool_buf.p, (unsigned)w->spool_buf.n);
    if (uv_fs_write(w->loop, &w->spool_req, w->spool_fd, &b, 1, -1, spool_written) != 0) {
        w->spool_busy = false;
        spool_failed(w, "write", "cannot queue the write");
    }
}

static void replay_add(struct wd_audit_writer *w, int fd, const char *path, bool own)
{
    struct replay *r = realloc(w->replays, (w->nreplays + 1) * sizeof(*r));
    if (r == NULL) {
        close(fd);
        return;
    }
    w->replays = r;
    r = &w->replays[w->nreplays++];
    r->fd = fd;
    r->off = 0;
    r->own = own;
    snprintf(r->path, sizeof(r->path), "%s", path);
}

/* Spool files whose writer is gone (a killed process): claimed by locking them. */
static void find_orphans(struct wd_audit_writer *w)
{
    if (G.mode != WD_AUDIT_FAIL_OPEN)
        return;
    DIR *d = opendir(G.spool_dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l != 36 + 6 || strcmp(e->d_name + 36, ".spool") != 0 || strncmp(e->d_name, w->chain_id, 36) == 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < w->nreplays; i++)
            if (strstr(w->replays[i].path, e->d_name) != NULL)
                known = true;
        if (known)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", G.spool_dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd); /* its writer is alive, or another writer is replaying it */
            continue;
        }
        wd_logf(WD_LOG_INFO, "", "audit: replaying the spool %s left by a stopped writer", e->d_name);
        replay_add(w, fd, path, false);
    }
    closedir(d);
}

struct replay_scan {
    struct wd_buf *batch;
    struct wd_buf *ckpts;
    bool copy; /* records as COPY rows, not as the insert's JSON array */
    size_t records, ckpt_lines, bytes, bad, nocopy;
};

static int replay_line(void *ctx, int kind, const struct wd_audit_rec *rec, const uint8_t hash[32],
                       const struct wd_audit_ckpt *ckpt, const char *line, size_t len, const char *why)
{
    struct replay_scan *s = ctx;
    if (kind < 0) {
        s->bad++;
        return 1;
    }
    if (kind != WD_AUDIT_LINE_RECORD && kind != WD_AUDIT_LINE_CKPT) {
        s->bad++;
        return 1;
    }
    struct wd_buf *b = kind == WD_AUDIT_LINE_RECORD ? s->batch : s->ckpts;
    if (kind == WD_AUDIT_LINE_RECORD && s->copy) {
        if (wd_audit_line_copy(line, len, b) != 0 && !b->oom) {
            s->nocopy++;
            return 1;
        }
    } else {
        wd_buf_putc(b, b->n == 0 ? '[' : ',');
        wd_buf_put(b, line, len);
    }
    if (kind == WD_AUDIT_LINE_RECORD)
        s->records++;
    else
        s->ckpt_lines++;
    s->bytes += len + 1;
    return s->records >= BATCH_RECORDS || s->batch->n >= BATCH_BYTES;
}

/* The own spool's lines for a COPY replay. A record line goes straight to wd_audit_line_copy, which
 * checks the line's whole shape as it converts it (wd_audit_scan's full read of every line cost more than
 * the conversion); other lines (checkpoints) go through wd_audit_scan one at a time. */
static void scan_for_copy(const char *data, size_t len, struct replay_scan *s)
{
    static const char rec_prefix[] = "{\"v\":1,";
    size_t off = 0;
    while (off < len) {
        const char *line = data + off;
        const char *nl = memchr(line, '\n', len - off);
        if (nl == NULL)
            break; /* a line cut by the end of the chunk: read again with the next one */
        size_t n = (size_t)(nl - line);
        off += n + 1;
        if (n >= sizeof(rec_prefix) - 1 && memcmp(line, rec_prefix, sizeof(rec_prefix) - 1) == 0) {
            if (replay_line(s, WD_AUDIT_LINE_RECORD, NULL, NULL, NULL, line, n, NULL))
                return;
        } else {
            wd_audit_scan(line, n + 1, replay_line, s, NULL);
            if (s->bad > 0 || s->nocopy > 0 || s->records >= BATCH_RECORDS || s->batch->n >= BATCH_BYTES)
                return;
        }
    }
}

/* ---- database --------------------------------------------------------------------------------- */

static void db_close(struct wd_audit_writer *w);
static int copy_rows(struct wd_audit_writer *w);
static void db_send(struct wd_audit_writer *w);

static void on_retry(uv_timer_t *t) { connect_start(t->data); }

static void retry_later(struct wd_audit_writer *w)
{
    w->state = DB_DOWN;
    if (w->freeing)
        return;
    if (w->stopping && G.mode == WD_AUDIT_FAIL_CLOSED)
        return;
    uv_timer_start(&w->retry_timer, on_retry, w->retry_ms, 0);
    w->retry_ms = w->retry_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : w->retry_ms * 2;
}

/* fail_open: from now on records go to the spool; the trail says so in its own next record. */
static void start_spooling(struct wd_audit_writer *w, const char *reason)
{
    if (w->spooling)
        return;
    w->spooling = true;
    wd_logf(WD_LOG_WARN, "", "audit: worker %d writes records to the spool %s/%s.spool (%s)", w->worker,
            G.spool_dir, w->chain_id, reason);
    char d[64];
    snprintf(d, sizeof(d), "{\"reason\":\"%s\"}", reason);
    append_system(w, "spool_start", d);
}

static bool own_replay_queued(const struct wd_audit_writer *w)
{
    for (size_t i = 0; i < w->nreplays; i++)
        if (w->replays[i].own)
            return true;
    return false;
}

/* fail_open, the queue full while the database is reachable (it takes records more slowly than they
 * come): the queue goes to the spool like in an outage, and the spool is replayed at once, behind it,
 * with COPY; once the replay catches up, records go to the database directly again. Returns -1 when
 * there is no spool to write to. */
static int spill(struct wd_audit_writer *w)
{
    if (w->spooling)
        return 0;
    if (spool_open(w) != 0) {
        spool_failed(w, "open", strerror(errno));
        return -1;
    }
    start_spooling(w, "queue_full");
    if (w->state == DB_READY && !own_replay_queued(w))
        replay_add(w, -1, w->spool_path, true);
    return 0;
}

/* How long a batch may wait for the database while answers may be held for it: half of
 * audit.durable_answers_timeout, so that the answers waiting for its records can still go with them durable. */
static unsigned stall_ms(void)
{
    unsigned ms = G.durable_answers_timeout_ms / 2;
    return ms < 50 ? 50 : ms;
}

/* The writer's session's lock_timeout (0: none, PostgreSQL's default). fail_open with durable answers: twice
 * stall_ms, so that a statement waiting on a lock fails on the server on its own: a batch the writer gave up
 * (on_stall) does not keep a backend waiting for as long as the lock lasts, and a spool replay waiting on a lock
 * fails, is kept, and goes again after a reconnect. */
static unsigned session_lock_timeout_ms(void)
{
    return G.mode == WD_AUDIT_FAIL_OPEN && G.durable_answers ? 2 * stall_ms() : 0;
}

static void db_lost(struct wd_audit_writer *w, const char *why);

/* fail_open with audit.durable_answers: a batch of the queue (records, or the checkpoints the queue waits behind)
 * that the database has not finished within stall_ms (another session's lock, a stuck disk, a server that stopped
 * answering without closing) while answers wait is given up as if the connection had gone: the records it carried
 * are still queued, and they go to the spool with the rest of the queue, where they are durable; answers held for
 * them go with their records safe, not early, and a SIGKILL during the stall loses nothing answered. The database
 * may still commit the batch it was given: the spool's replay goes with the idempotent insert (db_lost marks the
 * queue as maybe sent). A slow batch nobody waits for is left alone (looked at again every stall_ms), as is one
 * whose records could not go to the spool (it is failing); so are replays, which no answer waits on (records go to
 * the spool while one runs): the writer never gives up twice before the database has taken the spool back. */
static bool answers_wait(const struct wd_audit_writer *w)
{
    for (size_t i = 0; i < w->nwaiters; i++)
        if (w->waiters[i].cb != NULL)
            return true;
    return false;
}

static void on_stall(uv_timer_t *t)
{
    struct wd_audit_writer *w = t->data;
    if (!w->inflight || w->freeing)
        return;
    if (!answers_wait(w) || w->spool_broken) {
        uv_timer_start(&w->stall_timer, on_stall, stall_ms(), 0);
        return;
    }
    STAT_ADD(w, stalls, 1);
    char why[96];
    snprintf(why, sizeof(why), "a batch waited %u ms for the database; given up", stall_ms());
    db_lost(w, why);
}

static void stall_arm(struct wd_audit_writer *w)
{
    if (G.mode == WD_AUDIT_FAIL_OPEN && G.durable_answers && !w->freeing &&
        (w->inflight_kind == SEND_RECORDS || w->inflight_kind == SEND_CKPTS))
        uv_timer_start(&w->stall_timer, on_stall, stall_ms(), 0);
}

static void db_lost(struct wd_audit_writer *w, const char *why)
{
    uv_timer_stop(&w->stall_timer);
    static _Thread_local uint64_t last_log_ms;
    uint64_t now = uv_now(w->loop);
    if (now - last_log_ms >= 1000) {
        last_log_ms = now;
        wd_logf(WD_LOG_WARN, "", "audit: database connection lost on worker %d (%s); %s", w->worker, why,
                G.mode == WD_AUDIT_FAIL_OPEN ? "spooling records" : "refusing requests until it is back");
    }
    db_close(w);
    if (w->inflight && w->inflight_kind == SEND_RECORDS)
        w->q_maybe_sent = true;
    if (w->inflight && w->inflight_kind == SEND_REPLAY && w->nreplays > 0 && w->replays[0].own)
        w->spool_maybe_sent = true;
    w->inflight = false;
    w->inflight_failed = false;
    w->inflight_copy = false;
    w->inflight_insert = false;
    if (G.mode == WD_AUDIT_FAIL_OPEN) {
        start_spooling(w, "database_unreachable");
    } else {
        fire_waiters(w, true);
    }
    retry_later(w);
    kick(w);
}

static void poll_closed(uv_handle_t *h) { (void)h; }

static void db_close(struct wd_audit_writer *w)
{
    if (w->poll_live) {
        if (!uv_is_closing((uv_handle_t *)&w->poll)) {
            uv_poll_stop(&w->poll);
            uv_close((uv_handle_t *)&w->poll, poll_closed);
        }
        w->poll_live = false;
    }
    if (w->db != NULL) {
        PQfinish(w->db);
        w->db = NULL;
    }
    STAT_SET(w, connected, false);
}

static void batch_done(struct wd_audit_writer *w)
{
    uv_timer_stop(&w->stall_timer);
    w->inflight = false;
    if (w->inflight_failed) {
        /* an SQL error (not a lost connection): treat the database as unusable for now; an own-spool
         * replay goes again with the idempotent insert (a COPY fails whole on one duplicate) */
        w->inflight_failed = false;
        if (w->inflight_kind == SEND_REPLAY && w->nreplays > 0 && w->replays[0].own)
            w->spool_maybe_sent = true;
        db_lost(w, "the batch insert failed");
        return;
    }
    STAT_ADD(w, batches, 1);
    if (w->inflight_insert && (w->inflight_kind == SEND_RECORDS || w->inflight_kind == SEND_REPLAY))
        STAT_ADD(w, insert_batches, 1);
    w->inflight_insert = false;
    switch (w->inflight_kind) {
    case SEND_RECORDS:
        w->q_maybe_sent = false;
        STAT_ADD(w, written, w->inflight_n);
        q_consume(w, w->inflight_n);
        after_durable(w);
        break;
    case SEND_CKPTS:
        wd_buf_consume(&w->ckpts, w->inflight_ckpts < w->ckpts.n ? w->inflight_ckpts + 1 : w->ckpts.n);
        if (w->ckpts.n == 0)
            w->nckpts = 0;
        break;
    case SEND_RCKPTS:
        wd_buf_consume(&w->rckpts, w->inflight_rckpts < w->rckpts.n ? w->inflight_rckpts + 1 : w->rckpts.n);
        break;
    case SEND_REPLAY: {
        struct replay *r = &w->replays[0];
        r->off += (off_t)w->inflight_bytes;
        STAT_ADD(w, written, w->inflight_n);
        break;
    }
    }
    kick(w);
}

static void on_db_poll(uv_poll_t *p, int status, int events)
{
    struct wd_audit_writer *w = p->data;
    if (status < 0) {
        db_lost(w, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        int r = PQflush(w->db);
        if (r < 0) {
            db_lost(w, "write failed");
            return;
        }
        if (r == 0)
            uv_poll_start(&w->poll, UV_READABLE, on_db_poll);
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(w->db)) {
            db_lost(w, "read failed");
            return;
        }
        while (w->db != NULL && !PQisBusy(w->db)) {
            PGresult *res = PQgetResult(w->db);
            if (res == NULL) {
                if (w->inflight)
                    batch_done(w);
                break;
            }
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_COPY_IN) {
                PQclear(res);
                if (copy_rows(w) != 0)
                    return;
                continue;
            }
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                static _Thread_local uint64_t last_ms;
                if (uv_now(w->loop) - last_ms >= 1000) {
                    last_ms = uv_now(w->loop);
                    char m[300];
                    snprintf(m, sizeof(m), "%s", PQresultErrorMessage(res));
                    m[strcspn(m, "\n")] = '\0';
                    wd_logf(WD_LOG_ERROR, "", "audit: insert failed: %s", m);
                }
                w->inflight_failed = true;
            }
            PQclear(res);
        }
        if (w->db != NULL && PQstatus(w->db) == CONNECTION_BAD)
            db_lost(w, "connection closed");
    }
}

/* Pushes what libpq holds towards the server and watches the socket: for writing too while some is left
 * (on_db_poll flushes the rest), for the result in any case. */
static int flush_and_watch(struct wd_audit_writer *w)
{
    int r = PQflush(w->db);
    if (r < 0) {
        db_lost(w, "send failed");
        return -1;
    }
    uv_poll_start(&w->poll, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, on_db_poll);
    return 0;
}

/* Sends the batch with a statement prepared when the connection was made (no parse and plan per batch). */
static int send_json(struct wd_audit_writer *w, const char *stmt)
{
    const char *params[1] = {w->batch.p};
    if (!PQsendQueryPrepared(w->db, stmt, 1, params, NULL, NULL, 0)) {
        db_lost(w, "send failed");
        return -1;
    }
    w->inflight = true;
    w->inflight_insert = true;
    stall_arm(w);
    return flush_and_watch(w);
}

/* The server is ready for the rows of a COPY: they go in one piece (libpq buffers what the socket does
 * not take yet and on_db_poll flushes it), then the end of the data. */
static int copy_rows(struct wd_audit_writer *w)
{
    if (!w->inflight_copy) {
        db_lost(w, "unexpected COPY");
        return -1;
    }
    w->inflight_copy = false;
    if (PQputCopyData(w->db, w->batch.p, (int)w->batch.n) != 1 || PQputCopyEnd(w->db, NULL) != 1) {
        db_lost(w, "send failed");
        return -1;
    }
    return flush_and_watch(w);
}

/* New records: COPY ... FROM STDIN, with the rows built now and sent when the server asks for them. */
static int send_copy(struct wd_audit_writer *w)
{
    if (!PQsendQuery(w->db, wd_audit_copy_sql())) {
        db_lost(w, "send failed");
        return -1;
    }
    w->inflight = true;
    w->inflight_copy = true;
    stall_arm(w);
    return flush_and_watch(w);
}

/* Next replay chunk: reads whole lines from the oldest spool file. Returns 1 when a batch was sent, 0
 * when there is nothing to replay. */
static int replay_next(struct wd_audit_writer *w)
{
    while (w->nreplays > 0) {
        struct replay *r = &w->replays[0];
        /* the own spool is read up to its last completed write; a write in flight is read back later */
        off_t end = r->own ? w->spool_size : lseek(r->fd, 0, SEEK_END);
        if (r->off >= end) {
            if (r->own) {
                if (w->spool_busy)
                    return 0; /* not caught up until the write in flight is read back too */
                /* caught up: the database has everything; back to writing directly */
                char d[64];
                snprintf(d, sizeof(d), "{\"bytes\":%lld}", (long long)w->spool_size);
                if (ftruncate(w->spool_fd, 0) == 0) {
                    w->spool_size = 0;
                    w->spool_maybe_sent = false;
                } else {
                    /* the next replay of this file starts from its beginning again: idempotently */
                    w->spool_maybe_sent = true;
                }
                STAT_SET(w, spool_bytes, 0);
                w->spooling = false;
                wd_logf(WD_LOG_INFO, "", "audit: worker %d replayed its spool; writing to the database again",
                        w->worker);
                append_system(w, "spool_replayed", d);
            } else {
                wd_logf(WD_LOG_INFO, "", "audit: replayed and removed %s", r->path);
                unlink(r->path);
                close(r->fd);
            }
            memmove(w->replays, w->replays + 1, (w->nreplays - 1) * sizeof(*r));
            w->nreplays--;
            continue;
        }
        size_t want = BATCH_BYTES + 65536;
        for (;;) {
            char *buf = malloc(want);
            if (buf == NULL)
                return 0;
            int fd = r->own ? open(w->spool_path, O_RDONLY | O_CLOEXEC) : r->fd;
            size_t avail = (size_t)(end - r->off);
            ssize_t n = fd >= 0 ? pread(fd, buf, want < avail ? want : avail, r->off) : -1;
            if (r->own && fd >= 0)
                close(fd);
            if (n <= 0) {
                free(buf);
                return 0;
            }
            struct wd_buf ck = {0};
            w->batch.n = 0;
            /* records that cannot be in the database yet go in with COPY (half the server's CPU) */
            bool copy = r->own && !w->spool_maybe_sent;
            struct replay_scan s = {.batch = &w->batch, .ckpts = &ck, .copy = copy};
            if (copy)
                scan_for_copy(buf, (size_t)n, &s);
            else
                wd_audit_scan(buf, (size_t)n, replay_line, &s, NULL);
            free(buf);
            if (s.nocopy > 0 || w->batch.oom || ck.oom) {
                wd_buf_free(&ck);
                if (s.nocopy == 0) {
                    w->batch.oom = false;
                    return 0; /* out of memory: the next loop turn tries again */
                }
                /* cannot happen (the lines are ours, and the queue sends the same lines with COPY); the
                 * insert checks them and names what is wrong */
                wd_logf(WD_LOG_ERROR, "", "audit: worker %d: a spooled record does not convert to a COPY row; "
                        "replaying with the insert", w->worker);
                w->spool_maybe_sent = true;
                continue;
            }
            if (s.bad > 0 || (s.records == 0 && s.ckpt_lines == 0 && (size_t)n == want)) {
                if (s.bad == 0 && want < WD_AUDIT_BODY_MAX * 2u) {
                    want *= 2; /* one line longer than the chunk (full bodies) */
                    wd_buf_free(&ck);
                    continue;
                }
                wd_logf(WD_LOG_ERROR, "", "audit: the spool %s has a damaged line at byte %lld; kept for inspection",
                        r->path, (long long)(r->off + (off_t)s.bytes));
                wd_buf_free(&ck);
                if (!r->own) {
                    char bad[PATH_MAX + 8];
                    snprintf(bad, sizeof(bad), "%s.bad", r->path);
                    rename(r->path, bad);
                    close(r->fd);
                    memmove(w->replays, w->replays + 1, (w->nreplays - 1) * sizeof(*r));
                    w->nreplays--;
                    break;
                }
                return 0;
            }
            if (s.records == 0 && s.ckpt_lines == 0) {
                /* only a torn tail is left */
                r->off = end;
                wd_buf_free(&ck);
                break;
            }
            if (s.ckpt_lines > 0) {
                /* checkpoints follow the records they cover, in their own statement */
                if (w->rckpts.n > 0)
                    wd_buf_putc(&w->rckpts, ',');
                wd_buf_put(&w->rckpts, ck.p + 1, ck.n - 1);
            }
            wd_buf_free(&ck);
            if (s.records == 0) {
                r->off += (off_t)s.bytes;
                break;
            }
            w->inflight_kind = SEND_REPLAY;
            w->inflight_n = s.records;
            w->inflight_bytes = s.bytes;
            if (copy)
                return send_copy(w) == 0 ? 1 : 0;
            wd_buf_putc(&w->batch, ']');
            wd_buf_putc(&w->batch, '\0');
            return send_json(w, STMT_RECORDS) == 0 ? 1 : 0;
        }
    }
    return 0;
}

/* Checkpoint lines (joined by ',') as one statement. */
static void send_ckpts(struct wd_audit_writer *w, const struct wd_buf *lines, int kind)
{
    w->batch.n = 0;
    wd_buf_putc(&w->batch, '[');
    wd_buf_put(&w->batch, lines->p, lines->n);
    wd_buf_putc(&w->batch, ']');
    wd_buf_putc(&w->batch, '\0');
    if (w->batch.oom) {
        w->batch.oom = false;
        return;
    }
    w->inflight_kind = kind;
    send_json(w, STMT_CKPTS);
}

/* Puts up to n queued records in w->batch, as COPY rows or as the insert's JSON array (NUL-terminated),
 * stopping past BATCH_BYTES. Returns how many it took; 0 when a line did not convert to a row. */
static size_t fill_batch(struct wd_audit_writer *w, size_t n, bool copy)
{
    w->batch.n = 0;
    if (!copy)
        wd_buf_putc(&w->batch, '[');
    size_t start = w->q_head, i = 0;
    while (i < n && w->batch.n < BATCH_BYTES) {
        size_t end = w->ents[w->ent_head + i].end;
        if (copy) {
            if (wd_audit_line_copy(w->q.p + start, end - 1 - start, &w->batch) != 0 && !w->batch.oom)
                return 0;
        } else {
            if (i > 0)
                wd_buf_putc(&w->batch, ',');
            wd_buf_put(&w->batch, w->q.p + start, end - 1 - start);
        }
        start = end;
        i++;
    }
    if (!copy) {
        wd_buf_putc(&w->batch, ']');
        wd_buf_putc(&w->batch, '\0');
    }
    return i;
}

static void on_linger(uv_timer_t *t) { kick(t->data); }

static void db_send(struct wd_audit_writer *w)
{
    if (w->state != DB_READY || w->inflight)
        return;
    if (replay_next(w))
        return;
    if (w->state != DB_READY || w->inflight)
        return;
    if (w->rckpts.n > 0) {
        w->inflight_rckpts = w->rckpts.n;
        send_ckpts(w, &w->rckpts, SEND_RCKPTS);
        return;
    }
    if (w->spooling)
        return;
    size_t n = q_count(w);
    if (n > 0 && n < LINGER_RECORDS && n < G.queue_records / 2 && w->nwaiters == 0 && !w->stopping) {
        uint64_t age = uv_now(w->loop) - w->q_first_ms;
        if (age < G.batch_wait_ms) {
            if (!uv_is_active((uv_handle_t *)&w->linger_timer))
                uv_timer_start(&w->linger_timer, on_linger, G.batch_wait_ms - age, 0);
            return;
        }
    }
    if (n > 0) {
        size_t want = n > BATCH_RECORDS ? BATCH_RECORDS : n;
        /* COPY rows, unless these records may be in the database already (then the idempotent insert), or
         * a line does not convert (it cannot happen: the lines are ours; the insert checks them anyway) */
        bool copy = !w->q_maybe_sent && w->ents[w->ent_head].seq > w->q_sent_upto;
        if (!w->q_maybe_sent && !copy) {
            /* only those the replay may have sent go with the insert; the ones after them with COPY */
            size_t k = 0;
            while (k < want && w->ents[w->ent_head + k].seq <= w->q_sent_upto)
                k++;
            want = k;
        }
        n = fill_batch(w, want, copy);
        if (n == 0 && copy) {
            wd_logf(WD_LOG_ERROR, "", "audit: worker %d: a queued record does not convert to a COPY row; sending "
                    "the batch as an insert", w->worker);
            copy = false;
            n = fill_batch(w, want, false);
        }
        if (w->batch.oom) {
            w->batch.oom = false;
            return;
        }
        w->inflight_kind = SEND_RECORDS;
        w->inflight_n = n;
        if (copy)
            send_copy(w);
        else
            send_json(w, STMT_RECORDS);
        return;
    }
    if (w->ckpts.n > 0) {
        w->inflight_ckpts = w->ckpts.n;
        send_ckpts(w, &w->ckpts, SEND_CKPTS);
    }
}

/* One set-up statement on a fresh connection; false with connect_err filled when it failed. */
static bool setup_ok(struct wd_audit_writer *w, PGresult *r, ExecStatusType want, const char *what)
{
    bool ok = PQresultStatus(r) == want;
    if (!ok) {
        snprintf(w->connect_err, sizeof(w->connect_err), "%s: %s", what, PQresultErrorMessage(r));
        w->connect_err[strcspn(w->connect_err, "\n")] = '\0';
    }
    PQclear(r);
    return ok;
}

static void connect_work(uv_work_t *req)
{
    struct wd_audit_writer *w = req->data;
    PGconn *db = wd_audit_db_connect(G.db_ref, w->connect_err, sizeof(w->connect_err));
    w->connect_ok = false;
    w->db = NULL;
    if (db == NULL)
        return;
    if (G.migrate && !atomic_load(&G.migrated)) {
        if (wd_audit_migrate(db, w->connect_err, sizeof(w->connect_err)) < 0) {
            PQfinish(db);
            return;
        }
        atomic_store(&G.migrated, true);
    }
    /* A lock on the audit tables (maintenance, another session's LOCK TABLE) must not hold this thread-pool thread,
     * which the spool's writes share, for as long as it lasts: the set-up waits at most 5 s for one, then the
     * connection fails and is tried again later. Past the set-up, see session_lock_timeout_ms. */
    char session_lt[64];
    snprintf(session_lt, sizeof(session_lt), "SET lock_timeout = %u", session_lock_timeout_ms());
    /* this month's and next month's partitions, then the batch statements, prepared once */
    if (!setup_ok(w, PQexec(db, "SET lock_timeout = 5000"), PGRES_COMMAND_OK, "setting lock_timeout") ||
        !setup_ok(w, PQexec(db, "SELECT audit.ensure_partition(now()), audit.ensure_partition(now() + interval '1 month')"),
                  PGRES_TUPLES_OK, "creating partitions") ||
        !setup_ok(w, PQprepare(db, STMT_RECORDS, wd_audit_insert_sql(), 1, NULL), PGRES_COMMAND_OK,
                  "preparing the record insert") ||
        !setup_ok(w, PQprepare(db, STMT_CKPTS, wd_audit_ckpt_insert_sql, 1, NULL), PGRES_COMMAND_OK,
                  "preparing the checkpoint insert") ||
        !setup_ok(w, PQexec(db, session_lt), PGRES_COMMAND_OK, "setting lock_timeout")) {
        PQfinish(db);
        return;
    }
    PQsetnonblocking(db, 1);
    w->db = db;
    w->connect_ok = true;
}

static void connect_after(uv_work_t *req, int status)
{
    struct wd_audit_writer *w = req->data;
    if (w->freeing) {
        if (w->db != NULL)
            PQfinish(w->db);
        w->db = NULL;
        w->state = DB_DOWN;
        return;
    }
    if (!w->connect_ok || status != 0) {
        static _Thread_local uint64_t last_ms;
        if (uv_now(w->loop) - last_ms >= 5000) {
            last_ms = uv_now(w->loop);
            wd_logf(WD_LOG_WARN, "", "audit: worker %d cannot reach the database: %s", w->worker, w->connect_err);
        }
        if (G.mode == WD_AUDIT_FAIL_OPEN)
            start_spooling(w, "database_unreachable");
        if (G.mode == WD_AUDIT_FAIL_CLOSED)
            fire_waiters(w, true);
        retry_later(w);
        kick(w);
        return;
    }
    w->state = DB_READY;
    STAT_SET(w, connected, true);
    w->retry_ms = RECONNECT_MIN_MS;
    if (uv_poll_init(w->loop, &w->poll, PQsocket(w->db)) != 0) {
        PQfinish(w->db);
        w->db = NULL;
        retry_later(w);
        return;
    }
    w->poll.data = w;
    w->poll_live = true;
    uv_poll_start(&w->poll, UV_READABLE, on_db_poll);
    if (w->spooling) {
        /* replay what went to our spool while the database was away, after any orphans */
        bool have = own_replay_queued(w);
        if (!have && w->spool_fd >= 0)
            replay_add(w, -1, w->spool_path, true);
        else if (!have)
            w->spooling = false;
    }
    find_orphans(w);
    kick(w);
}

static void connect_start(struct wd_audit_writer *w)
{
    if (w->state != DB_DOWN)
        return;
    w->state = DB_CONNECTING;
    w->connect_work.data = w;
    if (uv_queue_work(w->loop, &w->connect_work, connect_work, connect_after) != 0)
        retry_later(w);
}

/* ---- loop hook, life cycle --------------------------------------------------------------------- */

/* Runs once per loop turn after I/O while there is work: everything queued during the turn leaves
 * together, to the database or to the spool. */
static void on_check(uv_check_t *h)
{
    struct wd_audit_writer *w = h->data;
    /* records were lost while the queue was full: the trail says so as soon as it has room again */
    if (w->refused_unreported > 0 && q_count(w) < G.queue_records)
        report_refused(w);
    if (w->spooling && G.mode == WD_AUDIT_FAIL_OPEN)
        spool_flush(w);
    db_send(w);
    bool more = (q_count(w) > 0 && !w->spooling) || w->nreplays > 0 || w->ckpts.n > 0 || w->rckpts.n > 0;
    /* stop polling when nothing can move until an I/O event or a timer says so */
    if (!more || w->inflight || w->state != DB_READY || w->spool_busy)
        uv_check_stop(h);
}

struct wd_audit_writer *wd_audit_writer_new(uv_loop_t *loop, int worker_id)
{
    if (!G.enabled)
        return NULL;
    struct wd_audit_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->loop = loop;
    w->worker = worker_id;
    w->spool_fd = -1;
    w->export_fd = -1;
    w->next_seq = 1;
    w->retry_ms = RECONNECT_MIN_MS;
    wd_audit_new_uuid(w->chain_id);
    wd_audit_genesis(w->chain_id, w->prev);
    if (G.export_path != NULL && strcmp(G.export_path, "stdout") != 0)
        w->export_fd = open(G.export_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    uv_check_init(loop, &w->check);
    w->check.data = w;
    uv_timer_init(loop, &w->retry_timer);
    w->retry_timer.data = w;
    uv_timer_init(loop, &w->ckpt_timer);
    uv_timer_init(loop, &w->linger_timer);
    w->linger_timer.data = w;
    uv_timer_init(loop, &w->spool_timer);
    w->spool_timer.data = w;
    uv_timer_init(loop, &w->stall_timer);
    w->stall_timer.data = w;
    w->ckpt_timer.data = w;
    uv_timer_start(&w->ckpt_timer, on_ckpt_timer, G.every_ms, G.every_ms);
    if (G.mode == WD_AUDIT_FAIL_OPEN && spool_open(w) != 0) /* claims the name now; an empty spool is removed at exit */
        wd_logf(WD_LOG_ERROR, "", "audit: worker %d cannot open its spool in %s: %s", worker_id, G.spool_dir,
                strerror(errno));
    char host[128] = "";
    gethostname(host, sizeof(host) - 1);
    char d[512];
    struct wd_buf hb = {0};
    wd_json_put_string(&hb, host, strlen(host));
    snprintf(d, sizeof(d),
             "{\"worker\":%d,\"pid\":%d,\"host\":%.*s,\"version\":\"%s\",\"mode\":\"%s\",\"content\":\"%s\"}",
             worker_id, (int)getpid(), (int)(hb.n < 300 ? hb.n : 2), hb.n < 300 ? hb.p : "\"\"", WARDEN_VERSION,
             G.mode == WD_AUDIT_FAIL_OPEN ? "fail_open" : "fail_closed",
             G.content == WD_AUDIT_CONTENT_NONE ? "none" : G.content == WD_AUDIT_CONTENT_HASH ? "hash" : "full");
    wd_buf_free(&hb);
    append_system(w, "writer_start", d);
    if (worker_id == 0) {
        struct wd_audit_rec r = {0};
        char cd[160];
        snprintf(cd, sizeof(cd), "{\"sha256\":\"%s\",\"source\":\"%s\"}", G.config_sha256,
                 G.config_from_file ? "file" : "embedded");
        wd_audit_set_cstr(&r, WD_AF_KIND, "config");
        wd_audit_set_cstr(&r, WD_AF_EVENT, "load");
        wd_audit_set_cstr(&r, WD_AF_DETAIL, cd);
        append_now(w, &r);
    }
    w->state = DB_DOWN;
    connect_start(w);
    return w;
}

bool wd_audit_writer_drain(struct wd_audit_writer *w)
{
    if (w == NULL)
        return true;
    if (!w->stopping) {
        w->stopping = true;
        report_refused(w); /* the last word on what was lost, before the chain's last record */
        append_system(w, "writer_stop", "{}");
    }
    bool empty = q_count(w) == 0 && !w->inflight && !w->spool_busy && w->export_pending == 0 &&
                 (w->nreplays == 0 || w->state != DB_READY) && w->state != DB_CONNECTING;
    if (empty && !w->final_ckpt_done) {
        w->final_ckpt_done = true;
        checkpoint(w);
        /* the checkpoint's own record and line still have to go out */
        return false;
    }
    if (!empty || ((w->ckpts.n > 0 || w->rckpts.n > 0) && w->state == DB_READY) || (w->ckpts.n > 0 && w->spooling))
        return false;
    return true;
}

static void handle_noop(uv_handle_t *h) { (void)h; }

void wd_audit_writer_quiesce(struct wd_audit_writer *w)
{
    if (w != NULL)
        w->quiet = true;
}

void wd_audit_writer_free(struct wd_audit_writer *w)
{
    if (w == NULL)
        return;
    if (q_count(w) > 0)
        wd_logf(WD_LOG_ERROR, "", "audit: worker %d exits with %zu records not durable", w->worker, q_count(w));
    /* a connect or a file write on the thread pool still points at w */
    w->freeing = true;
    while (w->state == DB_CONNECTING || w->spool_busy || w->export_pending > 0)
        uv_run(w->loop, UV_RUN_ONCE);
    db_close(w);
    if (!uv_is_closing((uv_handle_t *)&w->check))
        uv_close((uv_handle_t *)&w->check, handle_noop);
    if (!uv_is_closing((uv_handle_t *)&w->retry_timer))
        uv_close((uv_handle_t *)&w->retry_timer, handle_noop);
    if (!uv_is_closing((uv_handle_t *)&w->linger_timer))
        uv_close((uv_handle_t *)&w->linger_timer, handle_noop);
    if (!uv_is_closing((uv_handle_t *)&w->spool_timer))
        uv_close((uv_handle_t *)&w->spool_timer, handle_noop);
    if (!uv_is_closing((uv_handle_t *)&w->stall_timer))
        uv_close((uv_handle_t *)&w->stall_timer, handle_noop);
    if (!uv_is_closing((uv_handle_t *)&w->ckpt_timer))
        uv_close((uv_handle_t *)&w->ckpt_timer, handle_noop);
    uv_run(w->loop, UV_RUN_NOWAIT);
    if (w->spool_fd >= 0) {
        if (w->spool_size == 0 && q_count(w) == 0)
            unlink(w->spool_path);
        close(w->spool_fd);
    }
    for (size_t i = 0; i < w->nreplays; i++)
        if (w->replays[i].fd >= 0)
            close(w->replays[i].fd);
    if (w->export_fd >= 0)
        close(w->export_fd);
    free(w->replays);
    wd_buf_free(&w->q);
    free(w->ents);
    free(w->waiters);
    wd_buf_free(&w->batch);
    wd_buf_free(&w->canon);
    wd_buf_free(&w->ckpts);
    wd_buf_free(&w->rckpts);
    wd_buf_free(&w->spool_buf);
    free(w);
}

void wd_audit_writer_stats(const struct wd_audit_writer *w, struct wd_audit_stats *out)
{
#define STAT_GET(f) atomic_load_explicit(&w->st.f, memory_order_relaxed)
    out->records = STAT_GET(records);
    out->written = STAT_GET(written);
    out->spooled = STAT_GET(spooled);
    out->refused = STAT_GET(refused);
    out->batches = STAT_GET(batches);
    out->checkpoints = STAT_GET(checkpoints);
    out->insert_batches = STAT_GET(insert_batches);
    out->answers_held = STAT_GET(answers_held);
    out->answers_early = STAT_GET(answers_early);
    out->stalls = STAT_GET(stalls);
    out->queue_depth = STAT_GET(queue_depth);
    out->spool_bytes = STAT_GET(spool_bytes);
    out->connected = atomic_load_explicit(&w->st.connected, memory_order_relaxed);
#undef STAT_GET
}
