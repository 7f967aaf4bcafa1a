/* Builds a realistic audit chain for the audit integration tests, the way the writer does: records of
 * kinds auth, authz and call (nulls, non-ASCII, control characters, bodies with their digests), hashed
 * with wd_audit_canonical/wd_audit_chain_hash, inserted as wd_audit_line batches through
 * wd_audit_insert_sql(), and checkpoints every K records signed, inserted with wd_audit_ckpt_insert_sql
 * and appended to an export file. The chain is a pure function of (chain id, t0, alterations), so a test
 * can rebuild any part of it: a forged rewrite of the tail, or checkpoints signed with another key.
 *
 * audit_seed_check --records N [--chain ID] [--t0 US] [--step-us US] [--db REF] [--from SEQ] [--to SEQ]
 *                  [--alter SEQ] [--key REF --every K] [--ckpt-out FILE] [--lines-out FILE] [--ckpt-only]
 * Prints "chain <id> t0 <us>". --from/--to bound what is inserted and written (records and checkpoints);
 * --alter SEQ changes that record's event and re-chains everything after it with valid hashes. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/sha.h>

#include "audit/db.h"
#include "audit/record.h"

#define BATCH 200

static struct {
    const char *chain, *db, *key, *ckpt_out, *lines_out;
    long long records, t0, step, from, to, alter, every;
    bool ckpt_only;
} A = {.step = 1000};

static void die(const char *what)
{
    fprintf(stderr, "audit_seed_check: %s\n", what);
    exit(2);
}

static void args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **sv = strcmp(a, "--chain") == 0       ? &A.chain
                          : strcmp(a, "--db") == 0        ? &A.db
                          : strcmp(a, "--key") == 0       ? &A.key
                          : strcmp(a, "--ckpt-out") == 0  ? &A.ckpt_out
                          : strcmp(a, "--lines-out") == 0 ? &A.lines_out
                                                          : NULL;
        long long *iv = strcmp(a, "--records") == 0 ? &A.records
                        : strcmp(a, "--t0") == 0    ? &A.t0
                        : strcmp(a, "--step-us") == 0 ? &A.step
                        : strcmp(a, "--from") == 0  ? &A.from
                        : strcmp(a, "--to") == 0    ? &A.to
                        : strcmp(a, "--alter") == 0 ? &A.alter
                        : strcmp(a, "--every") == 0 ? &A.every
                                                    : NULL;
        if (strcmp(a, "--ckpt-only") == 0) {
            A.ckpt_only = true;
            continue;
        }
        if ((sv == NULL && iv == NULL) || v == NULL)
            die("bad arguments (see the comment at the top of audit_seed_check.c)");
        if (sv != NULL)
            *sv = v;
        else
            *iv = atoll(v);
        i++;
    }
    if (A.records < 1)
        die("--records N is required");
    if (A.to == 0 || A.to > A.records)
        A.to = A.records;
    if (A.from < 1)
        A.from = 1;
    if (A.chain != NULL && !wd_audit_uuid_valid(A.chain, strlen(A.chain)))
        die("--chain: a lowercase UUID");
}

/* Record i's fields. Every string is a literal or lives in *scratch until the record is serialised. */
struct scratch {
    char rid[32], trace[40], detail[160], req[256], resp[256], reqsha[65], respsha[65];
};

static void sha_hex(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    SHA256(p, n, d);
    wd_hex(d, 32, out);
}

static void build(struct wd_audit_rec *r, struct scratch *s, long long i)
{
    static const char *const subjects[] = {"alice@example.com", "bob@example.com", "ci-bot"};
    memset(r, 0, sizeof(*r));
    wd_audit_set_cstr(r, WD_AF_CHAIN_ID, A.chain);
    wd_audit_set_int(r, WD_AF_SEQ, i);
    wd_audit_set_int(r, WD_AF_TS, A.t0 + i * A.step);
    snprintf(s->rid, sizeof(s->rid), "req_%08lld", (i + 2) / 3);
    wd_audit_set_cstr(r, WD_AF_REQUEST_ID, s->rid);
    if (i % 4 != 0) { /* some requests carry no trace context */
        snprintf(s->trace, sizeof(s->trace), "4bf92f3577b34da6a3ce%012llx", i);
        wd_audit_set_cstr(r, WD_AF_TRACE_ID, s->trace);
    }
    wd_audit_set_cstr(r, WD_AF_SUBJECT, subjects[i % 3]);
    wd_audit_set_cstr(r, WD_AF_KEY_NAME, i % 3 == 2 ? "ci" : "dev");
    if (i % 5 != 0)
        wd_audit_set_cstr(r, WD_AF_TEAM, i % 2 ? "platform" : "research");
    wd_audit_set_cstr(r, WD_AF_ORG, "acme");
    wd_audit_set_cstr(r, WD_AF_AUTH_METHOD, "api_key");
    wd_audit_set_cstr(r, WD_AF_CLIENT_ADDR, i % 2 ? "203.0.113.7" : "2001:db8::17");
    wd_audit_set_cstr(r, WD_AF_USER_AGENT, "claude-cli/2.0.14 (external, cli) München \xE2\x9C\x93 \xF0\x9F\x94\x92");
    wd_audit_set_cstr(r, WD_AF_API, "anthropic.messages");
    wd_audit_set_cstr(r, WD_AF_ROUTE, "/anthropic/v1/messages");
    switch (i % 3) {
    case 1: /* authentication */
        wd_audit_set_cstr(r, WD_AF_KIND, "auth");
        wd_audit_set_cstr(r, WD_AF_EVENT, i % 7 == 1 ? "failure" : "success");
        if (i % 7 == 1)
            wd_audit_set_cstr(r, WD_AF_REASON, "unknown key");
        break;
    case 2: /* authorisation */
        wd_audit_set_cstr(r, WD_AF_KIND, "authz");
        wd_audit_set_cstr(r, WD_AF_MODEL_REQUESTED, "claude-sonnet-4-5");
        wd_audit_set_cstr(r, WD_AF_DECISION, i % 5 == 2 ? "deny" : "allow");
        wd_audit_set_cstr(r, WD_AF_EVENT, i % 5 == 2 ? "deny" : "allow");
        wd_audit_set_cstr(r, WD_AF_RULE, "teams.platform");
        wd_audit_set_cstr(r, WD_AF_REASON, i % 5 == 2 ? "model \"opus\" not allowed for team" : "matched");
        break;
    default: /* a model call, with bodies */
        wd_audit_set_cstr(r, WD_AF_KIND, "call");
        wd_audit_set_cstr(r, WD_AF_EVENT, i % 11 == 0 ? "failed" : "completed");
        wd_audit_set_cstr(r, WD_AF_MODEL_REQUESTED, "claude-sonnet-4-5");
        wd_audit_set_cstr(r, WD_AF_MODEL_RESOLVED, "gemini-2.5-flash");
        wd_audit_set_cstr(r, WD_AF_PROVIDER, "gemini");
        wd_audit_set_cstr(r, WD_AF_DECISION, "allow");
        wd_audit_set_int(r, WD_AF_UPSTREAM_STATUS, i % 11 == 0 ? 429 : 200);
        if (i % 11 == 0) {
            wd_audit_set_cstr(r, WD_AF_ERROR_CLASS, "rate_limit_error");
        } else {
            wd_audit_set_cstr(r, WD_AF_STOP_REASON, "end_turn");
            wd_audit_set_int(r, WD_AF_INPUT_TOKENS, 1000 + i);
            wd_audit_set_int(r, WD_AF_OUTPUT_TOKENS, 10 * i);
            wd_audit_set_int(r, WD_AF_CACHED_TOKENS, 0);
        }
        wd_audit_set_int(r, WD_AF_TTFB_US, 400000 + i);
        wd_audit_set_int(r, WD_AF_TOTAL_US, 2000000 + 3 * i);
        int n = snprintf(s->req, sizeof(s->req),
                         "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\","
                         "\"content\":\"caf\xC3\xA9 #%lld\"}]}",
                         i);
        r->request_body = s->req;
        r->request_body_len = (size_t)n;
        r->has_request_body = true;
        sha_hex(s->req, (size_t)n, s->reqsha);
        wd_audit_set_cstr(r, WD_AF_REQUEST_SHA256, s->reqsha);
        n = snprintf(s->resp, sizeof(s->resp), "event: message_stop\ndata: {\"type\":\"message_stop\",\"i\":%lld}\n\n",
                     i);
        r->response_body = s->resp;
        r->response_body_len = (size_t)n;
        r->has_response_body = true;
        sha_hex(s->resp, (size_t)n, s->respsha);
        wd_audit_set_cstr(r, WD_AF_RESPONSE_SHA256, s->respsha);
        snprintf(s->detail, sizeof(s->detail), "path C:\\tmp\nline2\ttab \x01 \"quoted\" #%lld", i);
        wd_audit_set_cstr(r, WD_AF_DETAIL, s->detail);
        break;
    }
    if (i == A.alter)
        wd_audit_set_cstr(r, WD_AF_EVENT, "forged");
}

static void insert(PGconn *db, const char *sql, struct wd_buf *batch)
{
    if (batch->n == 0)
        return;
    batch->p[0] = '[';
    wd_buf_puts(batch, "]");
    wd_buf_putc(batch, '\0');
    if (batch->oom)
        die("out of memory");
    const char *params[1] = {batch->p};
    PGresult *r = PQexecParams(db, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "audit_seed_check: insert: %s", PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
    wd_buf_reset(batch);
}

/* Adds a line to a JSON-array batch: ",line" (the first comma becomes '[' when sent). */
static void batch_add(struct wd_buf *b, const struct wd_buf *line)
{
    wd_buf_putc(b, ',');
    wd_buf_put(b, line->p, line->n);
}

int main(int argc, char **argv)
{
    args(argc, argv);
    char chain[37];
    if (A.chain == NULL) {
        wd_audit_new_uuid(chain);
        A.chain = chain;
    }
    if (A.t0 == 0)
        A.t0 = wd_now_us() - (A.records + 1) * A.step;
    char why[512];
    PGconn *db = NULL;
    if (A.db != NULL && (db = wd_audit_db_connect(A.db, why, sizeof(why))) == NULL)
        die(why);
    EVP_PKEY *key = NULL;
    if (A.key != NULL && (key = wd_audit_key_load(A.key, why, sizeof(why))) == NULL)
        die(why);
    FILE *ck_out = A.ckpt_out ? fopen(A.ckpt_out, "a") : NULL;
    FILE *lines_out = A.lines_out ? fopen(A.lines_out, "w") : NULL;
    if ((A.ckpt_out && ck_out == NULL) || (A.lines_out && lines_out == NULL))
        die("cannot open an output file");

    uint8_t prev[32], h[32];
    wd_audit_genesis(A.chain, prev);
    struct wd_buf recs = {0}, cks = {0}, canon = {0}, line = {0};
    for (long long i = 1; i <= A.to; i++) {
        struct wd_audit_rec r;
        struct scratch s;
        build(&r, &s, i);
        wd_buf_reset(&canon);
        if (wd_audit_canonical(&r, &canon) != 0)
            die("wd_audit_canonical failed");
        wd_audit_chain_hash(prev, canon.p, canon.n, h);
        memcpy(prev, h, 32);
        if (i < A.from)
            continue;
        if (!A.ckpt_only) {
            wd_buf_reset(&line);
            wd_audit_line(&r, canon.p, canon.n, h, &line);
            batch_add(&recs, &line);
            if (lines_out != NULL)
                fprintf(lines_out, "%.*s\n", (int)line.n, line.p);
            if (db != NULL && recs.n > 0 && (i - A.from + 1) % BATCH == 0)
                insert(db, wd_audit_insert_sql(), &recs);
        }
        if (key != NULL && A.every > 0 && i % A.every == 0) {
            struct wd_audit_ckpt c = {.seq = i, .ts_us = A.t0 + i * A.step + 1};
            memcpy(c.chain_id, A.chain, 37);
            memcpy(c.head, h, 32);
            if (wd_audit_ckpt_sign(&c, key) != 0)
                die("signing failed");
            wd_buf_reset(&line);
            wd_audit_ckpt_line(&c, &line);
            batch_add(&cks, &line);
            if (ck_out != NULL)
                fprintf(ck_out, "%.*s\n", (int)line.n, line.p);
        }
    }
    if (db != NULL) {
        insert(db, wd_audit_insert_sql(), &recs); /* records before the checkpoints that cover them */
        insert(db, wd_audit_ckpt_insert_sql, &cks);
    }
    printf("chain %s t0 %lld\n", A.chain, A.t0);
    wd_buf_free(&recs);
    wd_buf_free(&cks);
    wd_buf_free(&canon);
    wd_buf_free(&line);
    EVP_PKEY_free(key);
    if (ck_out != NULL && fclose(ck_out) != 0)
        die("writing the checkpoint file failed");
    if (lines_out != NULL && fclose(lines_out) != 0)
        die("writing the lines file failed");
    PQfinish(db);
    return 0;
}
