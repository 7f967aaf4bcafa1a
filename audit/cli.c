/* `warden db migrate`, `warden audit keygen|pubkey|verify|query|export`. See cli.h and docs/audit.md.
 * Reads stream row by row (libpq single-row mode, or an export file a chunk at a time), so memory stays
 * bounded by one record and the checkpoints however long the chains are. Nothing here prints a database
 * URL: it may hold a password. */
#include "audit/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "lib/json.h"
#include "audit/db.h"
#include "audit/record.h"
#include "config/config.h"

#define MAX_MULTI 8
#define SRC_DB 1u     /* audit.checkpoints_v */
#define SRC_FILE 2u   /* a --checkpoints file (the writer's checkpoint export) */
#define SRC_EXPORT 4u /* the `audit export` file being verified */

/* ------------------------------------------------------------------------------------------------ options */

/* One option: takes a value (val), is a flag (flag), or may repeat (multi, at most MAX_MULTI). */
struct opt {
    const char *name;
    const char **val;
    bool *flag;
    const char **multi;
    int *nmulti;
};

/* --name VALUE and --name=VALUE. An argument that is not an option is not echoed when it looks like a
 * URL or a reference: a misplaced --db value would otherwise put a password on the terminal. */
static int parse_opts(const char *cmd, int argc, char **argv, const struct opt *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const struct opt *m = NULL;
        for (const struct opt *p = o; p->name != NULL && m == NULL; p++)
            if (strlen(p->name) == nl && strncmp(p->name, a, nl) == 0)
                m = p;
        if (m == NULL) {
            if (strstr(a, "://") != NULL || strchr(a, '@') != NULL)
                fprintf(stderr, "warden %s: unexpected argument #%d (not shown: it looks like a URL)\n", cmd, i + 1);
            else
                fprintf(stderr, "warden %s: unknown argument '%s'\n", cmd, a);
            return -1;
        }
        if (m->flag != NULL) {
            if (eq != NULL) {
                fprintf(stderr, "warden %s: %s takes no value\n", cmd, m->name);
                return -1;
            }
            *m->flag = true;
            continue;
        }
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (v == NULL || v[0] == '\0') {
            fprintf(stderr, "warden %s: %s needs a value\n", cmd, m->name);
            return -1;
        }
        if (m->multi != NULL) {
            if (*m->nmulti == MAX_MULTI) {
                fprintf(stderr, "warden %s: at most %d %s\n", cmd, MAX_MULTI, m->name);
                return -1;
            }
            m->multi[(*m->nmulti)++] = v;
        } else {
            *m->val = v;
        }
    }
    return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
    if (s == NULL || s[0] == '\0')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* An optional --NAME integer >= min; 0 when absent. */
static int opt_i64(const char *cmd, const char *name, const char *s, int64_t min, int64_t *out)
{
    *out = 0;
    if (s == NULL)
        return 0;
    if (parse_i64(s, out) != 0 || *out < min) {
        fprintf(stderr, "warden %s: %s: expected an integer >= %lld\n", cmd, name, (long long)min);
        return -1;
    }
    return 0;
}

/* --chain: a UUID, stored lowercase as PostgreSQL prints it. */
static int opt_chain(const char *cmd, const char *s, char out[37])
{
    out[0] = '\0';
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < 36 && s[i] != '\0'; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    out[36] = '\0';
    if (strlen(s) != 36 || !wd_audit_uuid_valid(out, 36)) {
        fprintf(stderr, "warden %s: --chain: expected a chain id (a UUID)\n", cmd);
        return -1;
    }
    return 0;
}

static PGconn *connect_db(const char *cmd, const char *ref)
{
    if (ref == NULL) {
        fprintf(stderr, "warden %s: --db URL (or env://NAME, file:///path) is required\n", cmd);
        return NULL;
    }
    char why[512];
    PGconn *db = wd_audit_db_connect(ref, why, sizeof(why));
    if (db == NULL)
        fprintf(stderr, "warden %s: %s\n", cmd, why);
    return db;
}

static void chomp_print(const char *cmd, const char *what, const char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    fprintf(stderr, "warden %s: %s: %.*s\n", cmd, what, (int)n, msg);
}

static bool exec_cmd(PGconn *db, const char *cmd, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        chomp_print(cmd, "database", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* Reads a whole small file (a PEM key) into a NUL-terminated malloc'd buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *p = malloc(65537);
    size_t n = p ? fread(p, 1, 65536, f) : 0;
    bool bad = p == NULL || ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        free(p);
        return NULL;
    }
    p[n] = '\0';
    *len = n;
    return p;
}

/* Hands a file's complete lines to wd_audit_scan a chunk at a time, so memory holds a chunk or the longest
 * line (a record with its bodies), never the whole export. *tail: bytes of an unfinished last line.
 * Returns 0, or -1 with errno. */
#define SCAN_CHUNK (4u << 20)

/* How wd_audit_ckpt_line starts every checkpoint line: lets a pass that wants only checkpoints skip the
 * (far more numerous, far longer) record lines without parsing them. */
static const char ckpt_prefix[] = "{\"type\":\"checkpoint\",";

/* wd_audit_scan on the lines of data (complete lines) that start with prefix. */
static void scan_prefixed(const char *data, size_t len, const char *prefix, wd_audit_line_cb cb, void *ctx)
{
    size_t pl = strlen(prefix);
    for (const char *p = data, *end = data + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(nl - p) >= pl && memcmp(p, prefix, pl) == 0)
            wd_audit_scan(p, (size_t)(nl - p) + 1, cb, ctx, NULL);
        p = nl + 1;
    }
}

static int scan_file(const char *path, const char *prefix, wd_audit_line_cb cb, void *ctx, size_t *tail)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct wd_buf b = {0};
    int rc = 0;
    for (;;) {
        if (!wd_buf_reserve(&b, SCAN_CHUNK)) {
            errno = ENOMEM;
            rc = -1;
            break;
        }
        ssize_t n = read(fd, b.p + b.n, SCAN_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        size_t old = b.n;
        b.n += (size_t)n;
        const char *nl = memrchr(b.p + old, '\n', (size_t)n);
        if (nl == NULL)
            continue; /* inside a long line: read on */
        size_t upto = (size_t)(nl - b.p) + 1;
        if (prefix != NULL)
            scan_prefixed(b.p, upto, prefix, cb, ctx);
        else
            wd_audit_scan(b.p, upto, cb, ctx, NULL);
        wd_buf_consume(&b, upto);
    }
    int e = errno;
    close(fd);
    if (tail != NULL)
        *tail = b.n;
    wd_buf_free(&b);
    errno = e;
    return rc;
}

/* ------------------------------------------------------------------------------------------- db migrate */

static int cmd_migrate(int argc, char **argv)
{
    const char *ref = NULL;
    const struct opt o[] = {{.name = "--db", .val = &ref}, {0}};
    if (parse_opts("db migrate", argc, argv, o) != 0)
        return 2;
    PGconn *db = connect_db("db migrate", ref);
    if (db == NULL)
        return 2;
    char why[512];
    int n = wd_audit_migrate(db, why, sizeof(why));
    int v = n < 0 ? -1 : wd_audit_schema_version(db, why, sizeof(why));
    PQfinish(db);
    if (n < 0 || v < 0) {
        chomp_print("db migrate", "failed", why);
        return 1;
    }
    printf("db migrate: applied %d migration%s, schema version %d\n", n, n == 1 ? "" : "s", v);
    return 0;
}

/* ------------------------------------------------------------------------------------ keygen and pubkey */

static int cmd_keygen(int argc, char **argv)
{
    const char *out = NULL;
    const struct opt o[] = {{.name = "--out", .val = &out}, {0}};
    if (parse_opts("audit keygen", argc, argv, o) != 0)
        return 2;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (k == NULL) {
        fprintf(stderr, "warden audit keygen: cannot generate an Ed25519 key\n");
        return 1;
    }
    FILE *f = stdout;
    if (out != NULL) {
        /* a private key: never world-readable, never over an existing file */
        int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        f = fd < 0 ? NULL : fdopen(fd, "w");
        if (f == NULL) {
            fprintf(stderr, "warden audit keygen: %s: %s\n", out, strerror(errno));
            if (fd >= 0)
                close(fd);
            EVP_PKEY_free(k);
            return 1;
        }
    }
    bool ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    ok = (f == stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
    if (ok && out != NULL) {
        char kid[17];
        wd_audit_key_id(k, kid);
        printf("wrote %s (key_id %s)\n", out, kid);
    }
    EVP_PKEY_free(k);
    if (!ok)
        fprintf(stderr, "warden audit keygen: cannot write the key\n");
    return ok ? 0 : 1;
}

static int cmd_pubkey(int argc, char **argv)
{
    const char *ref = NULL, *cfgpath = NULL;
    const struct opt o[] = {{.name = "--key", .val = &ref}, {.name = "--config", .val = &cfgpath}, {0}};
    if (parse_opts("audit pubkey", argc, argv, o) != 0)
        return 2;
    if ((ref == NULL) == (cfgpath == NULL)) {
        fprintf(stderr, "warden audit pubkey: give --key REF (file:///path, env://NAME) or --config FILE\n");
        return 2;
    }
    struct wd_config *cfg = NULL;
    if (cfgpath != NULL) {
        struct wd_config_err err;
        if (wd_config_load_file(cfgpath, &cfg, &err) != 0) {
            fprintf(stderr, "warden audit pubkey: %s: %s\n", cfgpath, err.msg);
            return 2;
        }
        ref = cfg->audit.signing_key;
        if (ref == NULL) {
            fprintf(stderr, "warden audit pubkey: %s: audit.checkpoints.signing_key is not set\n", cfgpath);
            wd_config_free(cfg);
            return 2;
        }
    }
    char why[512];
    EVP_PKEY *k = wd_audit_key_load(ref, why, sizeof(why));
    wd_config_free(cfg);
    if (k == NULL) {
        fprintf(stderr, "warden audit pubkey: %s\n", why);
        return 1;
    }
    struct wd_buf pem = {0};
    int rc = wd_audit_pubkey_pem(k, &pem);
    EVP_PKEY_free(k);
    if (rc == 0)
        fwrite(pem.p, 1, pem.n, stdout);
    wd_buf_free(&pem);
    return rc == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------------------- rows of audit.records */

/* The SELECT list that yields each field as the text its canonical form is rebuilt from (ts in the
 * canonical spelling, whatever the session's DateStyle), the hash, and the bodies in hex (base64 from
 * encode() is broken into lines). Columns: the fields in order, then hash, request_body, response_body. */
static void select_list(struct wd_buf *b, bool bodies)
{
    for (int i = 0; i < WD_AF__COUNT; i++) {
        const char *nm = wd_audit_fields[i].name;
        if (wd_audit_fields[i].type == WD_AT_TS)
            wd_buf_printf(b, "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), ", nm);
        else
            wd_buf_printf(b, "%s::text, ", nm);
    }
    wd_buf_puts(b, "encode(hash, 'hex')");
    if (bodies)
        wd_buf_puts(b, ", encode(request_body, 'hex'), encode(response_body, 'hex')");
}
#define COL_HASH WD_AF__COUNT
#define COL_REQ (WD_AF__COUNT + 1)
#define COL_RESP (WD_AF__COUNT + 2)

/* One row rebuilt as a record. Strings point into the PGresult; bodies are decoded into malloc'd
 * buffers (row_free). bad says why the row cannot be written canonically. */
struct row {
    struct wd_audit_rec rec;
    uint8_t hash[32];
    const char *bad;
};

static int unhex_body(PGresult *r, int col, const void **p, size_t *n, bool *has)
{
    if (PQgetisnull(r, 0, col))
        return 0;
    size_t hl = (size_t)PQgetlength(r, 0, col);
    uint8_t *b = malloc(hl / 2 + 1);
    if (b == NULL || wd_unhex(PQgetvalue(r, 0, col), hl, b, hl / 2) < 0) {
        free(b);
        return -1;
    }
    *p = b;
    *n = hl / 2;
    *has = true;
    return 0;
}

static void row_read(PGresult *r, bool bodies, struct row *w)
{
    memset(w, 0, sizeof(*w));
    for (int f = 0; f < WD_AF__COUNT; f++) {
        if (PQgetisnull(r, 0, f))
            continue;
        const char *s = PQgetvalue(r, 0, f);
        size_t n = (size_t)PQgetlength(r, 0, f);
        struct wd_audit_value *v = &w->rec.f[f];
        switch (wd_audit_fields[f].type) {
        case WD_AT_INT:
            if (parse_i64(s, &v->i) == 0)
                v->set = true;
            else
                w->bad = "an integer column is out of range";
            break;
        case WD_AT_TS:
            if (wd_parse_ts(s, n, &v->i) == 0)
                v->set = true;
            else
                w->bad = "ts has no canonical form (before 1970?)";
            break;
        case WD_AT_UUID:
        case WD_AT_STR:
            v->s = s;
            v->n = n;
            v->set = true;
            break;
        }
    }
    if (wd_unhex(PQgetvalue(r, 0, COL_HASH), (size_t)PQgetlength(r, 0, COL_HASH), w->hash, 32) != 32)
        w->bad = "hash is not 32 bytes";
    if (bodies && (unhex_body(r, COL_REQ, &w->rec.request_body, &w->rec.request_body_len, &w->rec.has_request_body) ||
                   unhex_body(r, COL_RESP, &w->rec.response_body, &w->rec.response_body_len,
                              &w->rec.has_response_body)))
        w->bad = "out of memory for a body";
}

static void row_free(struct row *w)
{
    free((void *)w->rec.request_body);
    free((void *)w->rec.response_body);
}

/* Runs a parameterised query and hands each row to cb as its own one-row result (libpq single-row
 * mode: the result set is never held whole). cb returns non-zero to stop handing rows. Returns 0, or -1
 * (message printed); *usage is set when the server rejected a parameter's value (SQLSTATE class 22). */
typedef int (*row_cb)(void *ctx, PGresult *r);

static int stream_rows(PGconn *db, const char *cmd, const char *sql, int n, const char *const *params, row_cb cb,
                       void *ctx, bool *usage)
{
    if (!PQsendQueryParams(db, sql, n, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(db)) {
        chomp_print(cmd, "database", PQerrorMessage(db));
        return -1;
    }
    int rc = 0;
    bool stop = false;
    PGresult *r;
    while ((r = PQgetResult(db)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            if (!stop)
                stop = cb(ctx, r) != 0;
        } else if (st != PGRES_TUPLES_OK && rc == 0) {
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (usage != NULL && state != NULL && strncmp(state, "22", 2) == 0)
                *usage = true;
            chomp_print(cmd, "database", PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    return rc;
}

/* Qualified: a bare "seq" would name the seq::text output column and sort 10 before 9. */
static const char order_by_chain[] = " ORDER BY r.chain_id, r.seq, r.ts";

/* WHERE clause shared by verify and export: $1 chain or NULL, $2 lowest seq, $3 highest seq or NULL. */
static const char range_where[] = " WHERE ($1::uuid IS NULL OR chain_id = $1::uuid) AND seq >= $2::bigint"
                                  " AND ($3::bigint IS NULL OR seq <= $3::bigint)";

/* --------------------------------------------------------------------------------------------- checkpoints */

struct ck {
    struct wd_audit_ckpt c;
    unsigned src;         /* SRC_* bits: more than one when copies agree */
    const char *bad;      /* a database row that is not a well-formed checkpoint */
    const char *conflict; /* another checkpoint for the same (chain, seq) differs from this one */
    bool seen;            /* its chain had records */
};

struct cks {
    struct ck *v;
    size_t n, cap;
    char only[37];        /* --chain: others are not kept */
    int64_t lo, hi;       /* kept seq range; hi 0: no bound */
};

static struct ck *ck_add(struct cks *s, const struct wd_audit_ckpt *c, unsigned src)
{
    if ((s->only[0] != '\0' && strcmp(c->chain_id, s->only) != 0) || c->seq < s->lo || (s->hi > 0 && c->seq > s->hi))
        return NULL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct ck *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            fprintf(stderr, "warden audit: out of memory for checkpoints\n");
            exit(2);
        }
        s->v = v;
        s->cap = cap;
    }
    struct ck *k = &s->v[s->n++];
    memset(k, 0, sizeof(*k));
    k->c = *c;
    k->src = src;
    return k;
}

static int ck_cmp(const void *a, const void *b)
{
    const struct ck *x = a, *y = b;
    int c = strcmp(x->c.chain_id, y->c.chain_id);
    if (c != 0)
        return c;
    if (x->c.seq != y->c.seq)
        return x->c.seq < y->c.seq ? -1 : 1;
    return (int)x->src - (int)y->src; /* the database's first */
}

static bool ck_same(const struct wd_audit_ckpt *a, const struct wd_audit_ckpt *b)
{
    return memcmp(a->head, b->head, 32) == 0 && a->ts_us == b->ts_us && strcmp(a->key_id, b->key_id) == 0 &&
           memcmp(a->sig, b->sig, 64) == 0;
}

/* Sorts by (chain, seq) and folds identical copies (the database's and the export's) into one entry.
 * Differing ones stay, flagged: the database's when the export disagrees with it (the export is the copy
 * outside the attacker's reach), the later one when one source holds two. */
static void ck_merge(struct cks *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), ck_cmp);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct ck *k = &s->v[i], *p = w > 0 ? &s->v[w - 1] : NULL;
        if (p != NULL && strcmp(p->c.chain_id, k->c.chain_id) == 0 && p->c.seq == k->c.seq) {
            if (p->bad == NULL && k->bad == NULL && ck_same(&p->c, &k->c)) {
                p->src |= k->src;
                continue;
            }
            if ((p->src & SRC_DB) && !(k->src & SRC_DB))
                p->conflict = "the database's checkpoint differs from the exported one (replaced)";
            else
                k->conflict = "two different checkpoints for this seq";
        }
        s->v[w++] = *k;
    }
    s->n = w;
}

/* First index of chain id's checkpoints (or where they would be). */
static size_t ck_lower(const struct cks *s, const char *id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->v[mid].c.chain_id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int ck_from_row(void *ctx, PGresult *r)
{
    struct cks *s = ctx;
    struct wd_audit_ckpt c;
    memset(&c, 0, sizeof(c));
    const char *bad = NULL, *id = PQgetvalue(r, 0, 0), *key = PQgetvalue(r, 0, 4);
    snprintf(c.chain_id, sizeof(c.chain_id), "%s", id);
    if (parse_i64(PQgetvalue(r, 0, 1), &c.seq) != 0)
        bad = "bad seq";
    else if (wd_unhex(PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2), c.head, 32) != 32)
        bad = "head is not 32 bytes";
    else if (wd_parse_ts(PQgetvalue(r, 0, 3), (size_t)PQgetlength(r, 0, 3), &c.ts_us) != 0)
        bad = "ts has no canonical form";
    else if (strlen(key) != 16)
        bad = "bad key_id";
    else if (wd_unhex(PQgetvalue(r, 0, 5), (size_t)PQgetlength(r, 0, 5), c.sig, 64) != 64)
        bad = "sig is not 64 bytes";
    memcpy(c.key_id, key, strlen(key) == 16 ? 16 : 0);
    struct ck *k = ck_add(s, &c, SRC_DB);
    if (k != NULL)
        k->bad = bad;
    return 0;
}

static int ck_load_db(PGconn *db, const char *cmd, struct cks *s)
{
    char lo[24], hi[24];
    snprintf(lo, sizeof(lo), "%lld", (long long)s->lo);
    snprintf(hi, sizeof(hi), "%lld", (long long)s->hi);
    const char *params[3] = {s->only[0] ? s->only : NULL, lo, s->hi > 0 ? hi : NULL};
    struct wd_buf sql = {0};
    wd_buf_puts(&sql, "SELECT chain_id::text, seq::text, encode(head, 'hex'),"
                      " to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), key_id, encode(sig, 'hex')"
                      " FROM audit.checkpoints_v");
    wd_buf_puts(&sql, range_where);
    wd_buf_putc(&sql, '\0');
    int rc = sql.oom ? -1 : stream_rows(db, cmd, sql.p, 3, params, ck_from_row, s, NULL);
    wd_buf_free(&sql);
    return rc;
}

/* Checkpoint lines of a file (the writer's export, a spool, or an `audit export`); other lines are
 * skipped. Unreadable lines are reported: a forged or damaged checkpoint file is itself a finding. */
struct ckfile {
    struct cks *s;
    const char *path;
    size_t line;
    int64_t bad_lines;
    bool quiet;           /* an export's first pass: its bad lines are reported by the second */
    unsigned src;
};

static int ck_file_line(void *ctx, int kind, const struct wd_audit_rec *rec, const uint8_t hash[32],
                        const struct wd_audit_ckpt *ckpt, const char *line, size_t len, const char *why)
{
    struct ckfile *f = ctx;
    f->line++;
    if (kind == WD_AUDIT_LINE_CKPT)
        ck_add(f->s, ckpt, f->src);
    else if (kind < 0 && !f->quiet) {
        printf("TAMPERED %s line %zu: %s\n", f->path, f->line, why);
        f->bad_lines++;
    }
    return 0;
}

static int ck_load_file(const char *path, struct cks *s, int64_t *bad_lines)
{
    struct ckfile f = {s, path, 0, 0, false, SRC_FILE};
    size_t tail = 0;
    if (scan_file(path, NULL, ck_file_line, &f, &tail) != 0) {
        fprintf(stderr, "warden audit verify: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (tail > 0)
        printf("note: %s ends with %zu bytes of an unfinished line (a write cut short), ignored\n", path, tail);
    *bad_lines += f.bad_lines;
    return 0;
}

/* ------------------------------------------------------------------------------------------------ verify */

struct chain {
    char id[37];
    bool open;
    int64_t next;          /* the seq the next record must have */
    int64_t first, last;   /* first and last seq read (first: 0 until a record) */
    int64_t anchor;        /* seq whose stored hash started the verification, or 0 */
    int64_t first_ckpt;    /* lowest seq with a valid checkpoint: it vouches for the anchor too */
    uint8_t prev[32];      /* the previous record's stored hash (or the genesis) */
    bool linked;           /* prev is known: false right after a gap */
    int64_t records;
    int64_t last_ckpt;     /* highest seq with a valid checkpoint */
    size_t ck, ck_end;     /* this chain's checkpoints not yet matched */
    int64_t problems, problem_seq;
    char problem[240];
    /* records the writer lost (its system/records_refused records say how many and when) */
    int64_t lost, lost_reports, lost_seq;
    char lost_first[28], lost_last[28];
};

struct verify {
    bool db;               /* records from the database (else from an export file) */
    bool sigs;             /* check signatures */
    EVP_PKEY *pub[MAX_MULTI];
    char pub_id[MAX_MULTI][17];
    int npub;
    int64_t from;          /* --from: 1 or more */
    int64_t to;            /* --to, or 0 */
    struct cks cks;
    struct chain c;
    char (*done)[37];      /* chains closed so far (an export must hold each chain once) */
    size_t ndone, capdone;
    int64_t chains, records, ckpts, bad_chains, problems;
    int64_t lost, loss_chains; /* records lost, as the trail itself reports (system/records_refused) */
    size_t line;           /* export line number */
};

static void problem(struct verify *v, int64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(struct verify *v, int64_t seq, const char *fmt, ...)
{
    struct chain *c = &v->c;
    v->problems++;
    if (c->problems++ > 0)
        return;
    c->problem_seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->problem, sizeof(c->problem), fmt, ap);
    va_end(ap);
}

static bool chain_done_before(struct verify *v, const char *id)
{
    for (size_t i = 0; i < v->ndone; i++)
        if (strcmp(v->done[i], id) == 0)
            return true;
    return false;
}

/* id: 36 bytes, not necessarily NUL-terminated (it may point into an export line). */
static void chain_begin(struct verify *v, const char *id)
{
    struct chain *c = &v->c;
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, 36);
    c->open = true;
    v->chains++;
    /* from the database with --from N, the row at N-1 comes first and anchors the rest */
    c->next = v->from > 1 ? v->from - 1 : 1;
    if (v->from <= 1) {
        wd_audit_genesis(c->id, c->prev);
        c->linked = true;
    }
    c->ck = c->ck_end = ck_lower(&v->cks, c->id);
    while (c->ck_end < v->cks.n && strcmp(v->cks.v[c->ck_end].c.chain_id, c->id) == 0)
        v->cks.v[c->ck_end++].seen = true;
    if (!v->db && chain_done_before(v, c->id))
        problem(v, 0, "the export holds this chain's records in two places (lines out of order)");
}

static EVP_PKEY *find_pub(struct verify *v, const char *key_id)
{
    for (int i = 0; i < v->npub; i++)
        if (strcmp(v->pub_id[i], key_id) == 0)
            return v->pub[i];
    return NULL;
}

/* A checkpoint at the record (or anchor) with this seq and stored hash. */
static void check_ckpt(struct verify *v, struct ck *k, const uint8_t hash[32])
{
    int64_t seq = k->c.seq;
    bool ok = true;
    if (k->bad != NULL) {
        problem(v, seq, "checkpoint at seq %lld unreadable: %s", (long long)seq, k->bad);
        return;
    }
    if (k->conflict != NULL) {
        problem(v, seq, "checkpoint at seq %lld: %s", (long long)seq, k->conflict);
        ok = false;
    }
    if (v->sigs) {
        EVP_PKEY *pub = find_pub(v, k->c.key_id);
        if (pub == NULL) {
            problem(v, seq, "checkpoint signature invalid: seq %lld is signed by key_id %s, not a --pubkey key",
                    (long long)seq, k->c.key_id);
            ok = false;
        } else if (wd_audit_ckpt_verify(&k->c, pub) != 0) {
            problem(v, seq, "checkpoint signature invalid at seq %lld", (long long)seq);
            ok = false;
        }
    }
    if (memcmp(k->c.head, hash, 32) != 0) {
        problem(v, seq, "checkpoint at seq %lld does not match the record's hash (records rewritten)", (long long)seq);
        ok = false;
    }
    if (ok) {
        v->ckpts++;
        v->c.last_ckpt = seq;
        if (v->c.first_ckpt == 0)
            v->c.first_ckpt = seq;
    }
}

/* Matches the chain's checkpoints up to seq: the one at seq against hash, earlier ones lost their record. */
static void match_ckpts(struct verify *v, int64_t seq, const uint8_t hash[32])
{
    struct chain *c = &v->c;
    while (c->ck < c->ck_end && v->cks.v[c->ck].c.seq <= seq) {
        struct ck *k = &v->cks.v[c->ck++];
        if (k->c.seq == seq)
            check_ckpt(v, k, hash);
        else if (k->c.seq > c->anchor)
            problem(v, k->c.seq, "checkpoint at seq %lld has no record (deleted?)", (long long)k->c.seq);
    }
}

static void chain_anchor(struct verify *v, int64_t seq, const uint8_t hash[32])
{
    struct chain *c = &v->c;
    if (c->records > 0 || c->anchor > 0 || seq >= INT64_MAX - 1) {
        problem(v, seq, "an anchor line in the middle of the chain, or out of range");
        return;
    }
    c->anchor = seq;
    memcpy(c->prev, hash, 32);
    c->linked = true;
    c->next = seq + 1;
    c->last = seq;
    while (c->ck < c->ck_end && v->cks.v[c->ck].c.seq < seq)
        c->ck++; /* before the exported range */
    match_ckpts(v, seq, hash);
}

/* A body is covered by the chain only through its digest field: it must be there and match. */
static void check_body(struct verify *v, int64_t seq, const struct wd_audit_rec *r, bool req)
{
    bool has = req ? r->has_request_body : r->has_response_body;
    if (!has)
        return;
    const struct wd_audit_value *d = &r->f[req ? WD_AF_REQUEST_SHA256 : WD_AF_RESPONSE_SHA256];
    const char *what = req ? "request" : "response";
    if (d->s == NULL) {
        problem(v, seq, "%s_body stored but %s_sha256 is null (a body the chain does not cover)", what, what);
        return;
    }
    uint8_t md[32];
    char hx[65];
    SHA256(req ? r->request_body : r->response_body, req ? r->request_body_len : r->response_body_len, md);
    wd_hex(md, 32, hx);
    if (d->n != 64 || memcmp(hx, d->s, 64) != 0)
        problem(v, seq, "%s_body does not match %s_sha256 (body replaced)", what, what);
}

static void chain_end(struct verify *v);

static bool field_is(const struct wd_audit_rec *r, enum wd_audit_field_id f, const char *s)
{
    size_t n = strlen(s);
    return r->f[f].s != NULL && r->f[f].n == n && memcmp(r->f[f].s, s, n) == 0;
}

/* "key":"<27-char ts>" in a records_refused detail, copied to out (else left as is). */
static void detail_ts(const char *d, size_t n, const char *key, char out[28])
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 27 + 1 <= n; i++)
        if (memcmp(d + i, key, kl) == 0 && d[i + kl + 27] == '"') {
            memcpy(out, d + i + kl, 27);
            out[27] = '\0';
            return;
        }
}

/* A system/records_refused record: the writer lost records (its queue full, neither the database nor the
 * spool taking them). The chain is intact, but the trail is incomplete, and the auditor is told. Detail:
 * {"refused":N} (older writers) or {"refused":N,"first_ts":"..","last_ts":".."}. */
static void note_loss(struct verify *v, const struct wd_audit_rec *r, int64_t seq)
{
    struct chain *c = &v->c;
    const char *d = r->f[WD_AF_DETAIL].s;
    size_t n = r->f[WD_AF_DETAIL].n;
    static const char key[] = "\"refused\":";
    long long k = 0;
    for (size_t i = 0; d != NULL && i + sizeof(key) - 1 < n; i++)
        if (memcmp(d + i, key, sizeof(key) - 1) == 0) {
            for (size_t j = i + sizeof(key) - 1; j < n && d[j] >= '0' && d[j] <= '9' && k < INT64_MAX / 10 - 10; j++)
                k = k * 10 + (d[j] - '0');
            break;
        }
    if (k <= 0)
        k = 1; /* unreadable count: at least one record was lost */
    char first[28] = "", last[28] = "";
    if (d != NULL) {
        detail_ts(d, n, "\"first_ts\":\"", first);
        detail_ts(d, n, "\"last_ts\":\"", last);
    }
    if (first[0] == '\0' && r->f[WD_AF_TS].set)
        wd_format_ts(r->f[WD_AF_TS].i, first); /* older writers: no span, only when it was said */
    if (last[0] == '\0')
        memcpy(last, first, sizeof(last));
    if (c->lost_reports++ == 0) {
        c->lost_seq = seq;
        memcpy(c->lost_first, first, sizeof(first));
    }
    if (strcmp(last, c->lost_last) > 0)
        memcpy(c->lost_last, last, sizeof(last));
    if (first[0] != '\0' && strcmp(first, c->lost_first) < 0)
        memcpy(c->lost_first, first, sizeof(first));
    c->lost += k;
    v->lost += k;
}

/* One record in (chain, seq) order: bad is set when it could not be rebuilt from its row. */
static void verify_record(struct verify *v, const struct wd_audit_rec *r, const uint8_t stored[32], const char *bad)
{
    struct chain *c = &v->c;
    const char *id = r->f[WD_AF_CHAIN_ID].s;
    int64_t seq = r->f[WD_AF_SEQ].i;
    if (!c->open || memcmp(c->id, id, 36) != 0) {
        chain_end(v);
        chain_begin(v, id);
    }
    if (seq >= INT64_MAX - 1) {
        problem(v, seq, "seq %lld out of range", (long long)seq); /* seq + 1 must not overflow */
        return;
    }
    if (v->db && v->from > 1 && c->records == 0 && c->anchor == 0 && seq == v->from - 1) {
        chain_anchor(v, seq, stored);
        return;
    }
    v->records++;
    c->records++;
    if (c->first == 0)
        c->first = seq;
    if (seq < c->next) {
        if (seq == c->last)
            problem(v, seq, "duplicate seq %lld", (long long)seq);
        else
            problem(v, seq, "seq %lld out of order (after seq %lld)", (long long)seq, (long long)c->last);
        return;
    }
    if (seq > c->next) {
        if (seq == c->next + 1)
            problem(v, c->next, "gap: seq %lld missing (deleted?)", (long long)c->next);
        else
            problem(v, c->next, "gap: seqs %lld..%lld missing (deleted?)", (long long)c->next, (long long)seq - 1);
        c->linked = false; /* this record's predecessor is unknown: its link cannot be checked */
    }
    if (bad != NULL) {
        problem(v, seq, "record unreadable: %s", bad);
    } else {
        struct wd_buf canon = {0};
        uint8_t h[32];
        if (wd_audit_canonical(r, &canon) != 0) {
            problem(v, seq, "record has no canonical form (a required field is null)");
        } else if (c->linked) {
            wd_audit_chain_hash(c->prev, canon.p, canon.n, h);
            if (memcmp(h, stored, 32) != 0)
                problem(v, seq, "hash mismatch: record content or order changed");
        }
        wd_buf_free(&canon);
        check_body(v, seq, r, true);
        check_body(v, seq, r, false);
        if (field_is(r, WD_AF_KIND, "system") && field_is(r, WD_AF_EVENT, "records_refused"))
            note_loss(v, r, seq);
    }
    memcpy(c->prev, stored, 32);
    c->linked = true;
    c->next = seq + 1;
    c->last = seq;
    match_ckpts(v, seq, stored);
}

static void chain_end(struct verify *v)
{
    struct chain *c = &v->c;
    if (!c->open)
        return;
    c->open = false;
    int64_t beyond = 0;
    for (; c->ck < c->ck_end; c->ck++) {
        const struct ck *k = &v->cks.v[c->ck];
        if (!v->db && v->to == 0 && !(k->src & SRC_EXPORT)) {
            beyond = k->c.seq; /* the checkpoint file may simply be newer than the export */
            continue;
        }
        problem(v, k->c.seq, "truncated: checkpoint at seq %lld but chain ends at %lld", (long long)k->c.seq,
                (long long)c->last);
    }
    if (c->problems > 0) {
        v->bad_chains++;
        printf("TAMPERED chain %s seq %lld: %s", c->id, (long long)c->problem_seq, c->problem);
        if (c->problems > 1)
            printf(" (and %lld more problem%s in this chain)", (long long)c->problems - 1, c->problems > 2 ? "s" : "");
        putchar('\n');
    } else {
        printf("ok chain %s: %lld records", c->id, (long long)c->records);
        if (c->records > 0)
            printf(", seq %lld..%lld", (long long)c->first, (long long)c->last);
        /* the hashes from the anchor on lead to a signed head only if the anchor's value was the real one */
        if (c->anchor > 0 && c->first_ckpt > 0)
            printf(", anchored on the stored hash of seq %lld (vouched for by the signed checkpoint at seq %lld)",
                   (long long)c->anchor, (long long)c->first_ckpt);
        else if (c->anchor > 0)
            printf(", anchored on the stored hash of seq %lld (taken on trust: no signed checkpoint after it)",
                   (long long)c->anchor);
        if (c->last_ckpt > 0)
            printf(", last checkpoint at seq %lld\n", (long long)c->last_ckpt);
        else
            printf(", no checkpoint\n");
    }
    if (c->lost > 0) {
        v->loss_chains++;
        printf("LOST chain %s: %lld record%s lost between %s and %s: the writer could not queue them (neither the "
               "database nor the spool took records); the trail says so in %lld system/records_refused record%s, the "
               "first at seq %lld\n",
               c->id, (long long)c->lost, c->lost == 1 ? "" : "s", c->lost_first, c->lost_last,
               (long long)c->lost_reports, c->lost_reports == 1 ? "" : "s", (long long)c->lost_seq);
    }
    if (beyond > 0)
        printf("note chain %s: the checkpoint file goes on to seq %lld, past this export's last record (seq %lld):"
               " an export taken earlier, or cut; --to SEQ requires the export to reach SEQ\n",
               c->id, (long long)beyond, (long long)c->last);
    int64_t base = c->last_ckpt > c->first - 1 ? c->last_ckpt : c->first - 1;
    if (c->records > 0 && c->last > base)
        printf("warning chain %s: %lld record%s after the last checkpoint (seq %lld..%lld) %s covered only by %s\n",
               c->id, (long long)(c->last - base), c->last - base > 1 ? "s" : "", (long long)base + 1,
               (long long)c->last, c->last - base > 1 ? "are" : "is",
               v->db ? "database access control" : "this file's integrity");
    if (!v->db) {
        if (v->ndone == v->capdone) {
            size_t cap = v->capdone ? v->capdone * 2 : 16;
            void *p = realloc(v->done, cap * sizeof(*v->done));
            if (p == NULL) {
                fprintf(stderr, "warden audit verify: out of memory\n");
                exit(2);
            }
            v->done = p;
            v->capdone = cap;
        }
        memcpy(v->done[v->ndone++], c->id, 37);
    }
}

/* Chains that have checkpoints but no record at all: deleted (or, with --from, cut before the range). */
static void report_missing_chains(struct verify *v)
{
    for (size_t i = 0; i < v->cks.n;) {
        size_t j = i;
        int64_t top = 0;
        unsigned src = 0;
        for (; j < v->cks.n && strcmp(v->cks.v[j].c.chain_id, v->cks.v[i].c.chain_id) == 0; j++) {
            top = v->cks.v[j].c.seq > top ? v->cks.v[j].c.seq : top;
            src |= v->cks.v[j].src;
        }
        if (!v->cks.v[i].seen && !v->db && !(src & SRC_EXPORT)) {
            /* an export of some chains, checked against the checkpoints of all */
            printf("note chain %s: has checkpoints in the checkpoint file (up to seq %lld) but is not in this export\n",
                   v->cks.v[i].c.chain_id, (long long)top);
        } else if (!v->cks.v[i].seen) {
            v->problems++;
            v->bad_chains++;
            v->chains++;
            const char *where = src == SRC_DB       ? "the database"
                                : src == SRC_FILE   ? "the checkpoint export"
                                : src == SRC_EXPORT ? "the export file"
                                                    : "the database and the checkpoint export";
            if (v->db && v->from > 1)
                printf("TAMPERED chain %s seq %lld: chain deleted or truncated: %s has checkpoints up to seq %lld"
                       " but there are no records from seq %lld on\n",
                       v->cks.v[i].c.chain_id, (long long)top, where, (long long)top, (long long)v->from - 1);
            else
                printf("TAMPERED chain %s seq %lld: chain deleted: %s has checkpoints up to seq %lld but there are"
                       " no records\n",
                       v->cks.v[i].c.chain_id, (long long)top, where, (long long)top);
        }
        i = j;
    }
}

static int verify_row(void *ctx, PGresult *r)
{
    struct row w;
    row_read(r, true, &w);
    verify_record(ctx, &w.rec, w.hash, w.bad);
    row_free(&w);
    return 0;
}

static int verify_db(struct verify *v, const char *ref, const char *chain, int64_t to)
{
    PGconn *db = connect_db("audit verify", ref);
    if (db == NULL)
        return 2;
    /* one snapshot for checkpoints and records: a writer appending meanwhile is not a truncation */
    int rc = exec_cmd(db, "audit verify", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") ? 0 : 2;
    if (rc == 0 && ck_load_db(db, "audit verify", &v->cks) != 0)
        rc = 2;
    if (rc == 0) {
        ck_merge(&v->cks);
        struct wd_buf sql = {0};
        char lo[24], hi[24];
        snprintf(lo, sizeof(lo), "%lld", (long long)(v->from > 1 ? v->from - 1 : 1));
        snprintf(hi, sizeof(hi), "%lld", (long long)to);
        const char *params[3] = {chain[0] ? chain : NULL, lo, to > 0 ? hi : NULL};
        wd_buf_puts(&sql, "SELECT ");
        select_list(&sql, true);
        wd_buf_puts(&sql, " FROM audit.records_v r");
        wd_buf_puts(&sql, range_where);
        wd_buf_puts(&sql, order_by_chain);
        wd_buf_putc(&sql, '\0');
        if (sql.oom || stream_rows(db, "audit verify", sql.p, 3, params, verify_row, v, NULL) != 0)
            rc = 2;
        wd_buf_free(&sql);
        chain_end(v);
    }
    PQclear(PQexec(db, "ROLLBACK"));
    PQfinish(db);
    return rc;
}

/* Export lines: pass 1 took the checkpoints (ck_file_line); this is pass 2. */
struct vfile {
    struct verify *v;
    const char *path, *only;
    int64_t to;
};

static int verify_file_line(void *ctx, int kind, const struct wd_audit_rec *rec, const uint8_t hash[32],
                            const struct wd_audit_ckpt *ckpt, const char *line, size_t len, const char *why)
{
    struct vfile *f = ctx;
    struct verify *v = f->v;
    v->line++;
    if (kind < 0) {
        printf("TAMPERED %s line %zu: %s\n", f->path, v->line, why);
        v->problems++;
        return 0;
    }
    if (kind == WD_AUDIT_LINE_CKPT) {
        if (len < sizeof(ckpt_prefix) - 1 || memcmp(line, ckpt_prefix, sizeof(ckpt_prefix) - 1) != 0) {
            /* the first pass took only lines written the canonical way */
            printf("TAMPERED %s line %zu: a checkpoint line not in the form wd_audit_ckpt_line writes\n", f->path,
                   v->line);
            v->problems++;
        }
        return 0;
    }
    if ((f->only[0] != '\0' && memcmp(rec->f[WD_AF_CHAIN_ID].s, f->only, 36) != 0) ||
        (f->to > 0 && rec->f[WD_AF_SEQ].i > f->to))
        return 0;
    if (kind == WD_AUDIT_LINE_ANCHOR) {
        if (!v->c.open || memcmp(v->c.id, rec->f[WD_AF_CHAIN_ID].s, 36) != 0) {
            chain_end(v);
            chain_begin(v, rec->f[WD_AF_CHAIN_ID].s);
        }
        chain_anchor(v, rec->f[WD_AF_SEQ].i, hash);
        return 0;
    }
    verify_record(v, rec, hash, NULL);
    return 0;
}

static int verify_file(struct verify *v, const char *path, const char *chain, int64_t to)
{
    /* two passes: the checkpoints first, so each is matched when its record goes by */
    struct ckfile cf = {&v->cks, path, 0, 0, true, SRC_EXPORT};
    struct vfile f = {v, path, chain, to};
    size_t tail = 0;
    if (scan_file(path, ckpt_prefix, ck_file_line, &cf, NULL) != 0) {
        fprintf(stderr, "warden audit verify: %s: %s\n", path, strerror(errno));
        return 2;
    }
    ck_merge(&v->cks);
    if (scan_file(path, NULL, verify_file_line, &f, &tail) != 0) {
        fprintf(stderr, "warden audit verify: %s: %s\n", path, strerror(errno));
        return 2;
    }
    chain_end(v);
    if (tail > 0) {
        printf("TAMPERED %s: ends inside a line (%zu bytes without a newline: the file was cut)\n", path, tail);
        v->problems++;
    }
    return 0;
}

static int load_pubkeys(struct verify *v, const char *const *paths, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len;
        char *pem = slurp(paths[i], &len);
        EVP_PKEY *k = pem ? wd_audit_pubkey_parse(pem, len) : NULL;
        free(pem);
        if (k == NULL) {
            fprintf(stderr, "warden audit verify: --pubkey %s: not a readable PEM Ed25519 public key\n", paths[i]);
            return -1;
        }
        v->pub[v->npub] = k;
        wd_audit_key_id(k, v->pub_id[v->npub++]);
    }
    v->sigs = n > 0;
    return 0;
}

static void verify_free(struct verify *v)
{
    for (int i = 0; i < v->npub; i++)
        EVP_PKEY_free(v->pub[i]);
    free(v->cks.v);
    free(v->done);
}

static int verify_summary(struct verify *v, bool nosig, bool accept_loss)
{
    if (v->problems > 0 && v->chains == 0)
        printf("audit verify: FAILED: %lld problem%s, no chain verified\n", (long long)v->problems,
               v->problems == 1 ? "" : "s");
    else if (v->problems > 0)
        printf("audit verify: TAMPERING FOUND: %lld problem%s, %lld of %lld chains affected; read %lld records,"
               " %lld valid checkpoints\n",
               (long long)v->problems, v->problems == 1 ? "" : "s", (long long)v->bad_chains, (long long)v->chains,
               (long long)v->records, (long long)v->ckpts);
    else if (v->lost > 0 && !accept_loss)
        printf("audit verify: RECORDS LOST: %lld record%s lost in %lld of %lld chains, as the trail itself records; "
               "no tampering: %lld chain%s, %lld records, %lld checkpoints verified (--accept-loss: exit 0)\n",
               (long long)v->lost, v->lost == 1 ? "" : "s", (long long)v->loss_chains, (long long)v->chains,
               (long long)v->chains, v->chains == 1 ? "" : "s", (long long)v->records, (long long)v->ckpts);
    else
        printf("audit verify: ok: %lld chain%s, %lld records, %lld checkpoints verified\n", (long long)v->chains,
               v->chains == 1 ? "" : "s", (long long)v->records, (long long)v->ckpts);
    if (v->problems == 0 && v->lost > 0 && accept_loss)
        printf("audit verify: %lld record%s lost in %lld chain%s (accepted with --accept-loss)\n", (long long)v->lost,
               v->lost == 1 ? "" : "s", (long long)v->loss_chains, v->loss_chains == 1 ? "" : "s");
    if (!v->sigs)
        printf("audit verify: checkpoint signatures were NOT checked (no --pubkey)%s\n",
               nosig ? "" : "; give --pubkey FILE, or --no-signatures to accept that");
    return v->problems > 0 ? 1 : !v->sigs && !nosig ? 2 : v->lost > 0 && !accept_loss ? 3 : 0;
}

static int cmd_verify(int argc, char **argv)
{
    const char *ref = NULL, *file = NULL, *chain_s = NULL, *from_s = NULL, *to_s = NULL;
    const char *ckfiles[MAX_MULTI], *pubs[MAX_MULTI];
    int nckf = 0, npub = 0;
    bool nosig = false, accept_loss = false;
    const struct opt o[] = {{.name = "--db", .val = &ref},
                            {.name = "--file", .val = &file},
                            {.name = "--chain", .val = &chain_s},
                            {.name = "--from", .val = &from_s},
                            {.name = "--to", .val = &to_s},
                            {.name = "--checkpoints", .multi = ckfiles, .nmulti = &nckf},
                            {.name = "--pubkey", .multi = pubs, .nmulti = &npub},
                            {.name = "--no-signatures", .flag = &nosig},
                            {.name = "--accept-loss", .flag = &accept_loss},
                            {0}};
    const char *cmd = "audit verify";
    struct verify v;
    memset(&v, 0, sizeof(v));
    int64_t from, to;
    if (parse_opts(cmd, argc, argv, o) != 0 || opt_chain(cmd, chain_s, v.cks.only) != 0 ||
        opt_i64(cmd, "--from", from_s, 1, &from) != 0 || opt_i64(cmd, "--to", to_s, 1, &to) != 0)
        return 2;
    if ((ref == NULL) == (file == NULL)) {
        fprintf(stderr, "warden %s: give --db URL (the database) or --file EXPORT (an `audit export` file)\n", cmd);
        return 2;
    }
    if (file != NULL && from_s != NULL) {
        fprintf(stderr, "warden %s: --from applies to --db (an export's anchor line says where it starts)\n", cmd);
        return 2;
    }
    if (to > 0 && to < from) {
        fprintf(stderr, "warden %s: --to is before --from\n", cmd);
        return 2;
    }
    v.db = ref != NULL;
    v.from = from > 1 ? from : 1;
    v.to = to;
    v.cks.lo = v.from > 1 ? v.from - 1 : 1;
    v.cks.hi = to;
    int rc = load_pubkeys(&v, pubs, npub) == 0 ? 0 : 2;
    int64_t bad_lines = 0;
    for (int i = 0; rc == 0 && i < nckf; i++)
        if (ck_load_file(ckfiles[i], &v.cks, &bad_lines) != 0)
            rc = 2;
    v.problems += bad_lines;
    if (rc == 0 && v.from > 1)
        printf("note: verifying from seq %lld: each chain starts from the stored hash of seq %lld, which only a"
               " checkpoint at that seq vouches for\n",
               (long long)v.from, (long long)v.from - 1);
    if (rc == 0)
        rc = v.db ? verify_db(&v, ref, v.cks.only, to) : verify_file(&v, file, v.cks.only, to);
    if (rc == 0) {
        report_missing_chains(&v);
        if (v.cks.only[0] != '\0' && v.chains == 0) {
            /* a typo, or a chain deleted with its checkpoints and never exported: either way not verified */
            printf("chain %s: not found (no records, no checkpoints)\n", v.cks.only);
            v.problems++;
        }
        rc = verify_summary(&v, nosig, accept_loss);
    } else if (v.chains > 0) {
        printf("audit verify: incomplete (see the error above)\n");
    }
    verify_free(&v);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ export */

struct exporter {
    FILE *f;
    struct cks cks;
    int64_t from;
    char cur[37];
    bool open, first;
    size_t ck, ck_end;
    struct wd_buf line;
    int64_t records, ckpts, anchors;
    bool failed;
};

static void exp_put(struct exporter *e)
{
    wd_buf_putc(&e->line, '\n');
    if (e->line.oom || fwrite(e->line.p, 1, e->line.n, e->f) != e->line.n)
        e->failed = true;
    wd_buf_reset(&e->line);
}

static void exp_ckpt(struct exporter *e, const struct ck *k)
{
    if (k->bad != NULL) {
        /* a line cannot carry it; the verifier of the database reports it */
        fprintf(stderr, "warden audit export: warning: chain %s seq %lld: checkpoint row unreadable (%s), skipped\n",
                k->c.chain_id, (long long)k->c.seq, k->bad);
        return;
    }
    wd_audit_ckpt_line(&k->c, &e->line);
    exp_put(e);
    e->ckpts++;
}

/* The current chain's checkpoints up to seq (a checkpoint follows the record it covers). */
static void exp_ckpts(struct exporter *e, int64_t upto)
{
    while (e->ck < e->ck_end && e->cks.v[e->ck].c.seq <= upto)
        exp_ckpt(e, &e->cks.v[e->ck++]);
}

static int export_row(void *ctx, PGresult *r)
{
    struct exporter *e = ctx;
    struct row w;
    row_read(r, true, &w);
    const char *id = w.rec.f[WD_AF_CHAIN_ID].s;
    int64_t seq = w.rec.f[WD_AF_SEQ].i;
    if (!e->open || strcmp(e->cur, id) != 0) {
        exp_ckpts(e, INT64_MAX); /* past the previous chain's last record: a truncation stays visible */
        snprintf(e->cur, sizeof(e->cur), "%s", id);
        e->open = e->first = true;
        e->ck = e->ck_end = ck_lower(&e->cks, id);
        while (e->ck_end < e->cks.n && strcmp(e->cks.v[e->ck_end].c.chain_id, id) == 0)
            e->cks.v[e->ck_end++].seen = true;
    }
    bool first = e->first;
    e->first = false;
    if (first && e->from > 1 && seq == e->from - 1) {
        wd_audit_anchor_line(id, seq, w.hash, &e->line);
        e->anchors++;
    } else {
        struct wd_buf canon = {0};
        if (first && e->from > 1)
            fprintf(stderr, "warden audit export: warning: chain %s has no record at seq %lld: no anchor line\n", id,
                    (long long)e->from - 1);
        if (w.bad != NULL || wd_audit_canonical(&w.rec, &canon) != 0) {
            fprintf(stderr, "warden audit export: chain %s seq %lld cannot be exported: %s\n", id, (long long)seq,
                    w.bad ? w.bad : "a required field is null");
            e->failed = true;
        } else {
            wd_audit_line(&w.rec, canon.p, canon.n, w.hash, &e->line);
            e->records++;
        }
        wd_buf_free(&canon);
    }
    if (!e->failed) {
        exp_put(e);
        exp_ckpts(e, seq);
    }
    row_free(&w);
    return e->failed;
}

static int export_db(struct exporter *e, PGconn *db, const char *chain, int64_t to)
{
    const char *cmd = "audit export";
    if (!exec_cmd(db, cmd, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") || ck_load_db(db, cmd, &e->cks) != 0)
        return 2;
    ck_merge(&e->cks);
    char lo[24], hi[24];
    snprintf(lo, sizeof(lo), "%lld", (long long)(e->from > 1 ? e->from - 1 : 1));
    snprintf(hi, sizeof(hi), "%lld", (long long)to);
    const char *params[3] = {chain[0] ? chain : NULL, lo, to > 0 ? hi : NULL};
    struct wd_buf sql = {0};
    wd_buf_puts(&sql, "SELECT ");
    select_list(&sql, true);
    wd_buf_puts(&sql, " FROM audit.records_v r");
    wd_buf_puts(&sql, range_where);
    wd_buf_puts(&sql, order_by_chain);
    wd_buf_putc(&sql, '\0');
    int rc = sql.oom || stream_rows(db, cmd, sql.p, 3, params, export_row, e, NULL) != 0 ? 2 : 0;
    wd_buf_free(&sql);
    if (rc == 0 && !e->failed) {
        exp_ckpts(e, INT64_MAX);
        /* checkpoints of chains without records: the verifier of the export reports them deleted */
        for (size_t i = 0; i < e->cks.n; i++)
            if (!e->cks.v[i].seen)
                exp_ckpt(e, &e->cks.v[i]);
    }
    return rc != 0 ? rc : e->failed ? 1 : 0;
}

static int cmd_export(int argc, char **argv)
{
    const char *ref = NULL, *chain_s = NULL, *from_s = NULL, *to_s = NULL, *out = NULL;
    const struct opt o[] = {{.name = "--db", .val = &ref},     {.name = "--chain", .val = &chain_s},
                            {.name = "--from", .val = &from_s}, {.name = "--to", .val = &to_s},
                            {.name = "--out", .val = &out},     {0}};
    const char *cmd = "audit export";
    struct exporter e;
    memset(&e, 0, sizeof(e));
    int64_t from, to;
    if (parse_opts(cmd, argc, argv, o) != 0 || opt_chain(cmd, chain_s, e.cks.only) != 0 ||
        opt_i64(cmd, "--from", from_s, 1, &from) != 0 || opt_i64(cmd, "--to", to_s, 1, &to) != 0)
        return 2;
    if (to > 0 && to < from) {
        fprintf(stderr, "warden %s: --to is before --from\n", cmd);
        return 2;
    }
    e.from = from > 1 ? from : 1;
    e.cks.lo = e.from > 1 ? e.from - 1 : 1;
    e.cks.hi = to;
    PGconn *db = connect_db(cmd, ref);
    if (db == NULL)
        return 2;
    e.f = stdout;
    if (out != NULL) {
        /* an export holds request and response bodies: readable by its owner only */
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        e.f = fd < 0 ? NULL : fdopen(fd, "w");
        if (e.f == NULL) {
            fprintf(stderr, "warden %s: %s: %s\n", cmd, out, strerror(errno));
            if (fd >= 0)
                close(fd);
            PQfinish(db);
            return 2;
        }
    }
    int rc = export_db(&e, db, e.cks.only, to);
    PQclear(PQexec(db, "ROLLBACK"));
    PQfinish(db);
    bool werr = out != NULL ? fclose(e.f) != 0 : fflush(e.f) != 0 || ferror(e.f);
    if (rc == 0 && (werr || e.failed)) {
        fprintf(stderr, "warden %s: writing %s failed\n", cmd, out ? out : "stdout");
        rc = 1;
    }
    if (rc == 0)
        fprintf(stderr, "audit export: %lld records, %lld checkpoints, %lld anchor lines%s%s\n", (long long)e.records,
                (long long)e.ckpts, (long long)e.anchors, out ? " written to " : "", out ? out : "");
    wd_buf_free(&e.line);
    free(e.cks.v);
    return rc;
}

/* ------------------------------------------------------------------------------------------------- query */

struct query_out {
    bool csv;
    struct wd_buf b;
    int64_t rows;
    bool failed;
};

/* RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled. */
static void csv_field(struct wd_buf *b, const char *s, size_t n)
{
    if (strcspn(s, ",\"\r\n") >= n) {
        wd_buf_put(b, s, n);
        return;
    }
    wd_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            wd_buf_putc(b, '"');
        wd_buf_putc(b, s[i]);
    }
    wd_buf_putc(b, '"');
}

static int query_row(void *ctx, PGresult *r)
{
    struct query_out *q = ctx;
    struct wd_buf *b = &q->b;
    if (!q->csv)
        wd_buf_putc(b, '{');
    for (int c = 0; c <= COL_HASH; c++) {
        const char *name = c < WD_AF__COUNT ? wd_audit_fields[c].name : "hash";
        const char *s = PQgetvalue(r, 0, c);
        size_t n = (size_t)PQgetlength(r, 0, c);
        bool null = PQgetisnull(r, 0, c);
        if (c > 0)
            wd_buf_putc(b, ',');
        if (q->csv) {
            if (!null)
                csv_field(b, s, n);
            continue;
        }
        wd_buf_printf(b, "\"%s\":", name);
        if (null)
            wd_buf_puts(b, "null");
        else if (c < WD_AF__COUNT && wd_audit_fields[c].type == WD_AT_INT)
            wd_buf_put(b, s, n);
        else
            wd_json_put_string(b, s, n);
    }
    wd_buf_puts(b, q->csv ? "\r\n" : "}\n");
    if (b->oom || fwrite(b->p, 1, b->n, stdout) != b->n)
        q->failed = true;
    wd_buf_reset(b);
    q->rows++;
    return q->failed;
}

/* Every filter is a fixed SQL fragment; the user's value only ever travels as a parameter. */
struct filter {
    const char *opt, *sql; /* sql: "%d" is the parameter's number */
    const char *val;
};

static int cmd_query(int argc, char **argv)
{
    const char *cmd = "audit query";
    const char *ref = NULL, *limit_s = NULL, *format = "jsonl", *chain_s = NULL;
    struct filter fl[] = {
        {"--from", "ts >= $%d::timestamptz", NULL},
        {"--to", "ts < $%d::timestamptz", NULL},
        {"--principal", "subject = $%d", NULL},
        {"--team", "team = $%d", NULL},
        {"--model", "(model_requested = $%1$d OR model_resolved = $%1$d)", NULL},
        {"--provider", "provider = $%d", NULL},
        {"--decision", "decision = $%d", NULL},
        {"--status", "upstream_status = $%d::bigint", NULL},
        {"--kind", "kind = $%d", NULL},
        {"--chain", "chain_id = $%d::uuid", NULL},
    };
    enum { NF = sizeof(fl) / sizeof(fl[0]) };
    struct opt o[NF + 4];
    memset(o, 0, sizeof(o));
    for (int i = 0; i < NF; i++)
        o[i] = (struct opt){.name = fl[i].opt, .val = &fl[i].val};
    o[NF] = (struct opt){.name = "--db", .val = &ref};
    o[NF + 1] = (struct opt){.name = "--limit", .val = &limit_s};
    o[NF + 2] = (struct opt){.name = "--format", .val = &format};
    int64_t limit, status;
    char chain[37];
    if (parse_opts(cmd, argc, argv, o) != 0 || opt_i64(cmd, "--limit", limit_s, 1, &limit) != 0 ||
        opt_i64(cmd, "--status", fl[7].val, 0, &status) != 0 || opt_chain(cmd, fl[9].val, chain) != 0)
        return 2;
    if (fl[9].val != NULL)
        fl[9].val = chain;
    if (fl[6].val != NULL && strcmp(fl[6].val, "allow") != 0 && strcmp(fl[6].val, "deny") != 0) {
        fprintf(stderr, "warden %s: --decision: allow or deny\n", cmd);
        return 2;
    }
    bool csv = strcmp(format, "csv") == 0;
    if (!csv && strcmp(format, "jsonl") != 0) {
        fprintf(stderr, "warden %s: --format: jsonl or csv\n", cmd);
        return 2;
    }
    (void)chain_s;
    const char *params[NF + 1];
    int np = 0;
    struct wd_buf sql = {0};
    wd_buf_puts(&sql, "SELECT ");
    select_list(&sql, false);
    wd_buf_puts(&sql, " FROM audit.records_v r WHERE true");
    for (int i = 0; i < NF; i++) {
        if (fl[i].val == NULL)
            continue;
        params[np++] = fl[i].val;
        wd_buf_puts(&sql, " AND ");
        wd_buf_printf(&sql, fl[i].sql, np);
    }
    wd_buf_puts(&sql, " ORDER BY r.ts, r.chain_id, r.seq");
    if (limit_s != NULL) {
        params[np++] = limit_s;
        wd_buf_printf(&sql, " LIMIT $%d::bigint", np);
    }
    wd_buf_putc(&sql, '\0');
    PGconn *db = sql.oom ? NULL : connect_db(cmd, ref);
    if (db == NULL) {
        wd_buf_free(&sql);
        return 2;
    }
    struct query_out q = {.csv = csv};
    if (csv) {
        for (int c = 0; c < WD_AF__COUNT; c++)
            wd_buf_printf(&q.b, "%s,", wd_audit_fields[c].name);
        wd_buf_puts(&q.b, "hash\r\n");
        fwrite(q.b.p, 1, q.b.n, stdout);
        wd_buf_reset(&q.b);
    }
    bool usage = false;
    int rc = stream_rows(db, cmd, sql.p, np, params, query_row, &q, &usage) != 0 ? (usage ? 2 : 1) : 0;
    PQfinish(db);
    wd_buf_free(&sql);
    wd_buf_free(&q.b);
    if (rc == 0 && (q.failed || fflush(stdout) != 0)) {
        fprintf(stderr, "warden %s: writing stdout failed\n", cmd);
        rc = 1;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------- dispatch */

void wd_cli_usage(FILE *f)
{
    fputs("  warden db migrate --db URL     apply pending audit schema migrations; URL may be a secret\n"
          "                                 reference (env://NAME, file:///path)\n"
          "  warden audit keygen [--out FILE]\n"
          "                                 a new PEM Ed25519 checkpoint signing key (--out: mode 0600)\n"
          "  warden audit pubkey --key REF | --config FILE\n"
          "                                 the signing key's PEM public key (REF: file:///path, env://NAME;\n"
          "                                 FILE: a config's audit.checkpoints.signing_key)\n"
          "  warden audit verify --db URL [--chain ID] [--from SEQ] [--to SEQ]\n"
          "                      [--checkpoints FILE]... [--pubkey FILE]... [--no-signatures] [--accept-loss]\n"
          "  warden audit verify --file EXPORT [--checkpoints FILE]... [--pubkey FILE]... [--chain ID] [--to SEQ]\n"
          "                      [--accept-loss]\n"
          "                                 check chains, seq continuity, body digests and signed checkpoints\n"
          "                                 (--file --to SEQ: the export must reach SEQ);\n"
          "                                 exit 0 intact, 1 tampering found, 2 usage or connection error\n"
          "                                 (also when signatures went unchecked without --no-signatures),\n"
          "                                 3 intact but the trail records lost records (0 with --accept-loss)\n"
          "  warden audit query --db URL [--from TIME] [--to TIME] [--principal S] [--team T] [--model M]\n"
          "                     [--provider P] [--decision allow|deny] [--status N] [--kind K] [--chain ID]\n"
          "                     [--limit N] [--format jsonl|csv]\n"
          "                                 records without bodies, by time; --to is exclusive\n"
          "  warden audit export --db URL [--chain ID] [--from SEQ] [--to SEQ] [--out FILE]\n"
          "                                 record, checkpoint and anchor lines for `audit verify --file`\n",
          f);
}

int wd_cli_db(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "migrate") == 0)
        return cmd_migrate(argc - 1, argv + 1);
    fprintf(stderr, "usage:\n");
    wd_cli_usage(stderr);
    return 2;
}

int wd_cli_audit(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"verify", cmd_verify}, {"query", cmd_query},   {"export", cmd_export},
                {"keygen", cmd_keygen}, {"pubkey", cmd_pubkey}};
    for (size_t i = 0; argc >= 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[0], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    if (argc == 1 && strcmp(argv[0], "fields") == 0) {
        /* not in the usage: the field list in canonical (and column) order, for tests and tooling */
        for (int i = 0; i < WD_AF__COUNT; i++)
            puts(wd_audit_fields[i].name);
        return 0;
    }
    fprintf(stderr, "usage:\n");
    wd_cli_usage(stderr);
    return 2;
}
