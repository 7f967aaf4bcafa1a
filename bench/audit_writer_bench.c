/* Audit writer throughput (`make bench`, bench/run.sh): one writer (audit/writer.c, the one each Warden worker
 * runs) on one libuv loop, fed realistic call records as fast as its bounded queue takes them, written to a
 * PostgreSQL database; prints how many records per second became durable, as one JSON line.
 *
 * audit_writer_bench --db URL --spool DIR [--key REF] [--records N] [--high N] [--chunk N] [--verify-db URL]
 *
 * --db: the writer's database (the `warden` role). --spool: a scratch directory (mode fail_open). --key: the
 * checkpoint signing key (file://PEM); checkpoints every 1000 records or 10 s, as the default config.
 * --records: call records to append (200000). The queue is bounded (audit.queue_records, 65536): records are
 * appended from a uv_idle callback, at most --chunk (256) per loop turn (a busy worker appends a few records
 * per request, many requests per turn), while the queue holds fewer than --high (16384); above that the idle
 * handle stops and a uv_prepare handle restarts it once the writer has taken records off, so the loop sleeps
 * in epoll while PostgreSQL works. Timing runs from the first append
 * until every record is durable (stats: written == records). Then the writer drains (writer_stop and the last
 * checkpoint), and --verify-db (default --db) counts the chain's rows: the call records must equal --records,
 * the chain's rows must equal its last seq (no gap) and what the writer says it wrote. Exit 0 only then. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "lib/buf.h"
#include "audit/record.h"
#include "audit/writer.h"
#include "config/config.h"

static struct {
    const char *db, *spool, *key, *verify_db;
    long long records, high, chunk;
} A = {.records = 200000, .high = 16384, .chunk = 256};

static struct wd_audit_writer *W;
static uv_idle_t idle_h;
static uv_prepare_t prepare_h;
static long long appended, refused_here;
static double append_s; /* wall time inside wd_audit_append: the request path's share (canonical form, hash, queue) */
static uint64_t base_written, base_records, base_batches;
static double t_start, t_end;

static void die(const char *what)
{
    fprintf(stderr, "audit_writer_bench: %s\n", what);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **sv = strcmp(a, "--db") == 0          ? &A.db
                          : strcmp(a, "--spool") == 0     ? &A.spool
                          : strcmp(a, "--key") == 0       ? &A.key
                          : strcmp(a, "--verify-db") == 0 ? &A.verify_db
                                                          : NULL;
        long long *iv = strcmp(a, "--records") == 0 ? &A.records
                        : strcmp(a, "--high") == 0  ? &A.high
                        : strcmp(a, "--chunk") == 0 ? &A.chunk
                                                    : NULL;
        if ((sv == NULL && iv == NULL) || v == NULL)
            die("bad arguments (see the comment at the top of bench/audit_writer_bench.c)");
        if (sv != NULL)
            *sv = v;
        else
            *iv = atoll(v);
        i++;
    }
    if (A.db == NULL || A.spool == NULL || A.records < 1 || A.high < 1 || A.chunk < 1)
        die("--db URL and --spool DIR are required; --records, --high, --chunk must be positive");
    if (A.verify_db == NULL)
        A.verify_db = A.db;
}

/* Cheap deterministic "random" hex for the digests and trace ids (the request path computes the real
 * digests while the bytes stream; the writer only carries them). */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void hex_of(uint64_t seed, char *out, size_t nhex)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < nhex; i += 16) {
        uint64_t v = mix(seed + i);
        for (size_t k = 0; k < 16 && i + k < nhex; k++, v >>= 4)
            out[i + k] = hx[v & 15];
    }
    out[nhex] = '\0';
}

/* One call record as server/anthropic_route.c's audit_call_record makes it for a completed call
 * (audit_common's fields, then the call's own): content hash, so both digests and no bodies. */
static int append_call(long long i)
{
    static const char *const models[][2] = {{"claude-sonnet-4-5", "gemini-2.5-flash"},
                                            {"claude-opus-4-1", "gemini-2.5-pro"},
                                            {"claude-haiku-4-5", "gemini-2.5-flash-lite"}};
    char rid[32], trace[33], reqsha[65], respsha[65];
    memcpy(rid, "req_", 4);
    wd_rand_id(rid + 4, 24);
    rid[28] = '\0';
    hex_of((uint64_t)i * 3 + 1, trace, 32);
    hex_of((uint64_t)i * 3 + 2, reqsha, 64);
    hex_of((uint64_t)i * 3 + 3, respsha, 64);
    struct wd_audit_rec r = {0};
    wd_audit_set_cstr(&r, WD_AF_REQUEST_ID, rid);
    wd_audit_set_cstr(&r, WD_AF_TRACE_ID, trace);
    wd_audit_set_cstr(&r, WD_AF_SUBJECT, "dev");
    wd_audit_set_cstr(&r, WD_AF_KEY_NAME, "dev");
    wd_audit_set_cstr(&r, WD_AF_AUTH_METHOD, "api_key");
    wd_audit_set_cstr(&r, WD_AF_CLIENT_ADDR, "127.0.0.1");
    wd_audit_set_cstr(&r, WD_AF_USER_AGENT, "claude-cli/2.0.14 (external, cli)");
    wd_audit_set_cstr(&r, WD_AF_API, "anthropic");
    wd_audit_set_cstr(&r, WD_AF_ROUTE, "/v1/messages");
    wd_audit_set_cstr(&r, WD_AF_MODEL_REQUESTED, models[i % 3][0]);
    wd_audit_set_cstr(&r, WD_AF_MODEL_RESOLVED, models[i % 3][1]);
    wd_audit_set_cstr(&r, WD_AF_PROVIDER, "gemini");
    wd_audit_set_cstr(&r, WD_AF_KIND, "call");
    wd_audit_set_cstr(&r, WD_AF_EVENT, "completed");
    wd_audit_set_int(&r, WD_AF_UPSTREAM_STATUS, 200);
    wd_audit_set_cstr(&r, WD_AF_STOP_REASON, i % 4 == 0 ? "tool_use" : "end_turn");
    wd_audit_set_int(&r, WD_AF_INPUT_TOKENS, 12000 + (int64_t)(mix((uint64_t)i) % 40000));
    wd_audit_set_int(&r, WD_AF_OUTPUT_TOKENS, 20 + (int64_t)(mix((uint64_t)i + 7) % 2000));
    wd_audit_set_int(&r, WD_AF_CACHED_TOKENS, 0);
    wd_audit_set_int(&r, WD_AF_TTFB_US, 300000 + (int64_t)(mix((uint64_t)i + 9) % 900000));
    wd_audit_set_int(&r, WD_AF_TOTAL_US, 1500000 + (int64_t)(mix((uint64_t)i + 11) % 9000000));
    wd_audit_set_cstr(&r, WD_AF_RESPONSE_SHA256, respsha);
    wd_audit_set_cstr(&r, WD_AF_REQUEST_SHA256, reqsha);
    double t0 = now_s();
    int rc = wd_audit_append(W, &r, NULL, NULL);
    append_s += now_s() - t0;
    return rc;
}

static void on_prepare(uv_prepare_t *h);

static void on_idle(uv_idle_t *h)
{
    struct wd_audit_stats st;
    for (long long k = 0; k < A.chunk && appended < A.records; k++) {
        wd_audit_writer_stats(W, &st);
        if ((long long)st.queue_depth >= A.high)
            break;
        if (append_call(appended) != 0)
            refused_here++; /* queue full: not counted as appended; tried again */
        else
            appended++;
    }
    if (appended >= A.records) {
        uv_idle_stop(h);
        return;
    }
    wd_audit_writer_stats(W, &st);
    if ((long long)st.queue_depth >= A.high) {
        /* let the loop sleep until the writer has moved a batch */
        uv_idle_stop(h);
        uv_prepare_start(&prepare_h, on_prepare);
    }
}

static void on_prepare(uv_prepare_t *h)
{
    struct wd_audit_stats st;
    wd_audit_writer_stats(W, &st);
    if ((long long)st.queue_depth < A.high) {
        uv_prepare_stop(h);
        uv_idle_start(&idle_h, on_idle);
    }
}

/* Runs the loop one turn at a time until done() or the deadline. */
static bool run_until(uv_loop_t *loop, bool (*done)(void), double secs)
{
    double until = now_s() + secs;
    while (!done()) {
        if (now_s() > until)
            return false;
        uv_run(loop, UV_RUN_ONCE);
    }
    return true;
}

static bool connected_and_idle(void)
{
    struct wd_audit_stats st;
    wd_audit_writer_stats(W, &st);
    return st.connected && st.queue_depth == 0;
}

static bool all_durable(void)
{
    struct wd_audit_stats st;
    wd_audit_writer_stats(W, &st);
    if (appended < A.records || st.written + st.spooled < st.records)
        return false;
    if (t_end == 0)
        t_end = now_s();
    return true;
}

static bool drained(void) { return wd_audit_writer_drain(W); }

static PGresult *q1(PGconn *db, const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *r = PQexecParams(db, sql, param ? 1 : 0, NULL, param ? params : NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fprintf(stderr, "audit_writer_bench: %s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    return r;
}

int main(int argc, char **argv)
{
    args(argc, argv);
    struct wd_audit_config cfg = {
        .enabled = true,
        .database = (char *)A.db,
        .mode = WD_AUDIT_FAIL_OPEN,
        .content = WD_AUDIT_CONTENT_HASH,
        .spool = (char *)A.spool,
        .migrate = false, /* `warden db migrate` ran as the owner; this is the writer role */
        .queue_records = 65536,
        .batch_wait_ms = 20,
        .every_records = 1000,
        .every_ms = 10000,
        .signing_key = (char *)A.key,
        .export_path = NULL,
    };
    char why[512];
    if (wd_audit_init(&cfg, "0000000000000000000000000000000000000000000000000000000000000000", false, why,
                      sizeof(why)) != 0) {
        fprintf(stderr, "audit_writer_bench: wd_audit_init: %s\n", why);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    W = wd_audit_writer_new(&loop, 0);
    if (W == NULL)
        die("wd_audit_writer_new failed");
    if (!run_until(&loop, connected_and_idle, 30))
        die("the writer did not connect to the database within 30 s");
    struct wd_audit_stats st;
    wd_audit_writer_stats(W, &st);
    base_written = st.written;
    base_records = st.records;
    base_batches = st.batches;

    uv_idle_init(&loop, &idle_h);
    uv_prepare_init(&loop, &prepare_h);
    double cpu0 = cpu_s();
    t_start = now_s();
    uv_idle_start(&idle_h, on_idle);
    if (!run_until(&loop, all_durable, 600))
        die("the records did not become durable within 600 s");
    double cpu1 = cpu_s();
    wd_audit_writer_stats(W, &st);
    uint64_t written = st.written - base_written, records = st.records - base_records;
    uint64_t batches = st.batches - base_batches, spooled = st.spooled, refused = st.refused;
    double secs = t_end - t_start;

    if (!run_until(&loop, drained, 60))
        die("the writer did not drain within 60 s");
    wd_audit_writer_stats(W, &st);
    uint64_t chain_written = st.written, chain_records = st.records, checkpoints = st.checkpoints;
    uv_close((uv_handle_t *)&idle_h, NULL);
    uv_close((uv_handle_t *)&prepare_h, NULL);
    wd_audit_writer_free(W);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    wd_audit_global_free();

    /* what the database holds for this chain (found by its writer_start record, which names our pid) */
    PGconn *db = PQconnectdb(A.verify_db);
    if (PQstatus(db) != CONNECTION_OK)
        die("cannot connect to --verify-db");
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    PGresult *r = q1(db,
                     "SELECT chain_id::text FROM audit.records WHERE kind = 'system' AND event = 'writer_start' "
                     "AND (detail::json->>'pid') = $1 ORDER BY ts DESC LIMIT 1",
                     pid);
    char chain[37];
    snprintf(chain, sizeof(chain), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = q1(db,
           "SELECT count(*) FILTER (WHERE kind = 'call'), count(*), coalesce(max(seq), 0), "
           "(SELECT count(*) FROM audit.checkpoints WHERE chain_id = $1::uuid) "
           "FROM audit.records WHERE chain_id = $1::uuid",
           chain);
    long long db_calls = atoll(PQgetvalue(r, 0, 0)), db_rows = atoll(PQgetvalue(r, 0, 1));
    long long db_maxseq = atoll(PQgetvalue(r, 0, 2)), db_ckpts = atoll(PQgetvalue(r, 0, 3));
    PQclear(r);
    r = q1(db, "SELECT pg_total_relation_size('audit.records_default') + coalesce((SELECT sum(pg_total_relation_size(c.oid)) "
               "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit.records'::regclass), 0)",
           NULL);
    long long db_bytes = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(db);

    bool ok = db_calls == A.records && db_rows == db_maxseq && (uint64_t)db_rows == chain_written &&
              chain_written == chain_records && spooled == 0;
    printf("{\"records\":%lld,\"durable\":%" PRIu64 ",\"appended_total\":%" PRIu64 ",\"seconds\":%.4f,"
           "\"records_per_s\":%.1f,\"calls_per_s\":%.1f,\"batches\":%" PRIu64 ",\"records_per_batch\":%.1f,"
           "\"spooled\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"queue_full_retries\":%lld,\"checkpoints\":%" PRIu64 ","
           "\"cpu_s\":%.3f,\"cpu_us_per_record\":%.2f,\"append_us_per_record\":%.3f,\"high\":%lld,\"chunk\":%lld,\"chain\":\"%s\","
           "\"db_calls\":%lld,\"db_rows\":%lld,\"db_max_seq\":%lld,\"db_checkpoints\":%lld,\"chain_written\":%" PRIu64
           ",\"db_total_bytes\":%lld,\"ok\":%s}\n",
           A.records, written, records, secs, (double)written / secs, (double)A.records / secs, batches,
           batches ? (double)written / (double)batches : 0.0, spooled, refused, refused_here, checkpoints,
           cpu1 - cpu0, (cpu1 - cpu0) * 1e6 / (double)(written ? written : 1), append_s * 1e6 / (double)A.records, A.high, A.chunk, chain, db_calls,
           db_rows, db_maxseq, db_ckpts, chain_written, db_bytes, ok ? "true" : "false");
    if (!ok)
        fprintf(stderr, "audit_writer_bench: the database does not hold what the writer wrote (calls %lld of %lld, "
                        "rows %lld, max seq %lld, writer %" PRIu64 "/%" PRIu64 ", spooled %" PRIu64 ")\n",
                db_calls, A.records, db_rows, db_maxseq, chain_written, chain_records, spooled);
    return ok ? 0 : 1;
}
