/* The governor: the one thread that talks to the governance database (docs/governance.md). It loads keys, teams
 * and limits into snapshots (on LISTEN/NOTIFY, and by version every sync interval), tops leases up when workers ask,
 * flushes charged spend, gives idle leases back, rolls periods over, and runs the admin API's jobs. Workers never
 * wait on it except through the bounded lease wait of a call. */
#include "server/governor.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "audit/db.h"
#include "authz/admin_json.h"
#include "authz/govern.h"
#include "authz/signin.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/log.h"

static struct {
    char *database;               /* the reference (never logged) */
    bool migrate;
    unsigned sync_ms;
    double lease;
    unsigned idle_return_ms;
} S;

static pthread_t thread;
static bool running;
static _Atomic bool stopping;
static int wake_fd = -1;
static PGconn *db;
static int64_t loaded_version = -1;

/* period_start while the governor rolls a lease over: no period a worker computes, so no reservation matches */
#define GOV_ROLLING (INT64_MIN + 1)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int64_t wall_s(void) { return (int64_t)time(NULL); }

static void wake(void)
{
    uint64_t one = 1;
    if (wake_fd >= 0 && write(wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        /* a full counter already wakes the governor */
    }
}

/* ---- database helpers ---- */

static void db_lost(const char *what)
{
    if (db != NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db));
        size_t l = strlen(msg);
        while (l > 0 && msg[l - 1] == '\n')
            msg[--l] = '\0';
        wd_logf(WD_LOG_WARN, "", "governance database: %s failed: %s", what, msg);
        PQfinish(db);
        db = NULL;
    }
    if (wd_gov_db_up())
        wd_log(WD_LOG_WARN, "governance database unreachable: leases held are used, then calls follow governance.mode",
               "");
    wd_gov_set_db_up(false);
    loaded_version = -1;
}

/* A statement with text parameters; NULL (the connection is then dropped) on a transport failure. A statement
 * error (constraint, bad input) comes back as a result with its status for the caller to read. */
static PGresult *q(const char *sql, int n, const char *const *params)
{
    if (db == NULL)
        return NULL;
    wd_gov_count_roundtrip();
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQstatus(db) != CONNECTION_OK) {
        PQclear(r);
        db_lost("a statement");
        return NULL;
    }
    return r;
}

static bool ok(PGresult *r) { return r != NULL && (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK); }

static const char *sqlstate(PGresult *r)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

static void connect_db(void)
{
    char why[400];
    db = wd_audit_db_connect(S.database, why, sizeof(why));
    if (db == NULL) {
        if (wd_gov_db_up())
            wd_logf(WD_LOG_WARN, "", "governance: %s", why);
        wd_gov_set_db_up(false);
        return;
    }
    if (S.migrate && wd_audit_migrate(db, why, sizeof(why)) < 0) {
        wd_logf(WD_LOG_ERROR, "", "governance: migration failed: %s", why);
        PQfinish(db);
        db = NULL;
        wd_gov_set_db_up(false);
        return;
    }
    PGresult *r = PQexec(db, "LISTEN warden_gov");
    bool listening = ok(r);
    PQclear(r);
    if (!listening) {
        db_lost("LISTEN");
        return;
    }
    if (!wd_gov_db_up())
        wd_log(WD_LOG_INFO, "governance database reachable again", "");
    wd_gov_set_db_up(true);
}

/* ---- snapshot ---- */

static char **json_strs(const char *text, size_t *n)
{
    *n = 0;
    struct json_object *a = json_tokener_parse(text);
    if (a == NULL || !json_object_is_type(a, json_type_array)) {
        json_object_put(a);
        return NULL;
    }
    size_t len = json_object_array_length(a);
    char **v = len ? calloc(len, sizeof(*v)) : NULL;
    for (size_t i = 0; v != NULL && i < len; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(a, i));
        v[i] = strdup(s ? s : "");
        if (v[i] != NULL)
            (*n)++;
    }
    json_object_put(a);
    return v;
}

static void strs_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void give_back(struct wd_gov_limit *l, int64_t ps, int64_t spent, int64_t give);

/* Loads keys, teams and limits when the database's version moved (or force). 0, or -1 (connection lost). */
static int load(bool force)
{
    PGresult *r = q("SELECT version FROM gov.state WHERE id = 1", 0, NULL);
    if (!ok(r) || PQntuples(r) != 1) {
        PQclear(r);
        if (db != NULL)
            db_lost("reading gov.state");
        return -1;
    }
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (!force && v == loaded_version)
        return 0;
    struct wd_gov_snap *s = wd_gov_snap_new();
    if (s == NULL)
        return 0;
    r = q("SELECT id, name, coalesce(team, ''), array_to_json(models), array_to_json(roles), prefix,"
          " encode(salt, 'hex'), encode(hash, 'hex'), coalesce(extract(epoch FROM expires_at)::bigint, 0)"
          " FROM gov.keys WHERE revoked_at IS NULL", 0, NULL);
    bool good = ok(r);
    for (int i = 0; good && i < PQntuples(r); i++) {
        struct wd_gov_key k = {0};
        wd_cstr_copy(k.id, sizeof(k.id), PQgetvalue(r, i, 0));
        wd_cstr_copy(k.name, sizeof(k.name), PQgetvalue(r, i, 1));
        wd_cstr_copy(k.team, sizeof(k.team), PQgetvalue(r, i, 2));
        k.models = json_strs(PQgetvalue(r, i, 3), &k.nmodels);
        k.roles = json_strs(PQgetvalue(r, i, 4), &k.nroles);
        wd_cstr_copy(k.prefix, sizeof(k.prefix), PQgetvalue(r, i, 5));
        bool kok = wd_unhex(PQgetvalue(r, i, 6), 32, k.salt, 16) == 16 &&
                   wd_unhex(PQgetvalue(r, i, 7), 64, k.hash, 32) == 32;
        k.expires_at = strtoll(PQgetvalue(r, i, 8), NULL, 10);
        if (kok)
            wd_gov_snap_add_key(s, &k);
        strs_free(k.models, k.nmodels);
        strs_free(k.roles, k.nroles);
        OPENSSL_cleanse(&k, sizeof(k));
    }
    PQclear(r);
    if (good) {
        r = q("SELECT name, coalesce(org, '') FROM gov.teams", 0, NULL);
        good = ok(r);
        for (int i = 0; good && i < PQntuples(r); i++)
            wd_gov_snap_add_team(s, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        PQclear(r);
    }
    if (good) {
        for (struct wd_gov_limit *l = wd_gov_limits(); l != NULL; l = l->all_next)
            l->next_try_ms = -1; /* marks: not seen in this load */
        r = q("SELECT id, scope, subject, metric, period, lim, coalesce(extract(epoch FROM reset_at)::bigint, 0)"
              " FROM gov.budgets", 0, NULL);
        good = ok(r);
        for (int i = 0; good && i < PQntuples(r); i++) {
            int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10), lim = strtoll(PQgetvalue(r, i, 5), NULL, 10);
            int sc = wd_gov_scope_of(PQgetvalue(r, i, 1)), me = wd_gov_metric_of(PQgetvalue(r, i, 3)),
                pe = wd_gov_period_of(PQgetvalue(r, i, 4));
            if (!sc || !me || !pe)
                continue;
            struct wd_gov_limit *l = NULL;
            for (l = wd_gov_limits(); l != NULL && l->id != id; l = l->all_next)
                ;
            int64_t old_lim = l != NULL ? atomic_load(&l->lim) : 0;
            l = wd_gov_limit_get(id, sc, PQgetvalue(r, i, 2), me, pe, lim, strtoll(PQgetvalue(r, i, 6), NULL, 10));
            if (l == NULL)
                continue;
            l->next_try_ms = 0;
            if (lim < old_lim || lim > old_lim) {
                /* a changed limit: what this replica holds goes back; the next lease is cut from the new one */
                atomic_store(&l->exhausted, false);
                int64_t ps = atomic_load(&l->period_start);
                if (ps != INT64_MIN && lim < old_lim)
                    give_back(l, ps, 0, atomic_exchange(&l->lease, 0));
            }
            wd_gov_snap_add_limit(s, l);
        }
        PQclear(r);
        for (struct wd_gov_limit *l = wd_gov_limits(); l != NULL; l = l->all_next)
            if (l->next_try_ms == -1) {
                atomic_store(&l->dead, true);
                l->next_try_ms = 0;
            }
    }
    if (!good) {
        wd_gov_release(s);
        if (db != NULL)
            db_lost("loading keys, teams and budgets");
        return -1;
    }
    wd_gov_publish(s);
    loaded_version = v;
    return 0;
}

/* ---- leases and spend ---- */

static void i64s(char *out, int64_t v) { snprintf(out, 24, "%lld", (long long)v); }

/* Adds spent to the period's spend and gives lease back; on failure the spend stays to be flushed again. */
static void give_back(struct wd_gov_limit *l, int64_t ps, int64_t spent, int64_t give)
{
    if (give < 0) { /* an overdrawn lease is not given back: the next top-up covers it */
        atomic_fetch_add(&l->lease, give);
        give = 0;
    }
    if (spent == 0 && give == 0)
        return;
    char id[24], p[24], sp[24], gv[24];
    i64s(id, l->id);
    i64s(p, ps);
    i64s(sp, spent);
    i64s(gv, give);
    const char *params[] = {id, p, sp, gv};
    PGresult *r = q("SELECT gov.settle($1, to_timestamp($2), $3, $4)", 4, params);
    if (!ok(r)) {
        atomic_fetch_add(&l->unflushed, spent); /* flushed later (to the then current period) */
        if (db != NULL)
            db_lost("gov.settle");
    }
    PQclear(r);
}

static int64_t take_lease(struct wd_gov_limit *l, int64_t ps, int64_t want)
{
    char id[24], p[24], w[24];
    i64s(id, l->id);
    i64s(p, ps);
    i64s(w, want);
    const char *params[] = {id, p, w};
    PGresult *r = q("SELECT gov.take_lease($1, to_timestamp($2), $3)", 3, params);
    int64_t got = -1;
    if (ok(r) && PQntuples(r) == 1)
        got = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else if (db != NULL)
        db_lost("gov.take_lease");
    PQclear(r);
    return got;
}

/* Period roll-over and top-ups, every turn; flush and idle return when sync is due. */
static void leases(bool sync)
{
    int64_t now_s = wall_s(), now_ms = mono_ms();
    /* last_use_ms is the workers' loop time (uv_now: CLOCK_MONOTONIC in ms, as mono_ms) */
    int64_t use_now = now_ms;
    for (struct wd_gov_limit *l = wd_gov_limits(); l != NULL && db != NULL; l = l->all_next) {
        if (atomic_load(&l->dead))
            continue;
        int64_t ps = wd_gov_period_start(l, now_s, NULL);
        int64_t cur = atomic_load(&l->period_start);
        if (cur != ps) {
            /* rolling first: a worker's refund that still saw the old period, and lands after the lease is taken,
             * sees the period move on its second look and takes itself back (authz/govern.c, refund) */
            atomic_store(&l->period_start, GOV_ROLLING);
            int64_t give = atomic_exchange(&l->lease, 0);
            int64_t spent = atomic_exchange(&l->unflushed, 0);
            atomic_store(&l->exhausted, false);
            atomic_store(&l->period_start, ps);
            if (cur != INT64_MIN)
                give_back(l, cur, spent, give > 0 ? give : 0);
            else
                atomic_fetch_add(&l->unflushed, spent);
        }
        int64_t want = atomic_exchange(&l->want, 0);
        if (want > 0 && !(atomic_load(&l->exhausted) && now_ms < l->next_try_ms)) {
            int64_t lim = atomic_load(&l->lim);
            int64_t slice = (int64_t)(S.lease * (double)lim);
            if (slice < want)
                slice = want;
            int64_t have = atomic_load(&l->lease);
            if (have < 0)
                slice += -have; /* cover the overdraft first */
            int64_t got = take_lease(l, ps, slice);
            if (got < 0) {
                atomic_fetch_add(&l->want, want);
                break;
            }
            wd_gov_count_lease();
            int64_t after = atomic_fetch_add(&l->lease, got) + got;
            bool short_ = after < want;
            atomic_store(&l->exhausted, short_);
            l->next_try_ms = short_ ? now_ms + S.sync_ms : 0;
        } else if (want > 0) {
            /* exhausted and asked again too soon: keep the demand for the next try */
            int64_t w = atomic_load(&l->want);
            while (w < want && !atomic_compare_exchange_weak(&l->want, &w, want))
                ;
        }
        if (!sync)
            continue;
        int64_t spent = atomic_exchange(&l->unflushed, 0);
        int64_t give = 0;
        int64_t last = atomic_load(&l->last_use_ms);
        if (atomic_load(&l->lease) > 0 && use_now - last > (int64_t)S.idle_return_ms)
            give = atomic_exchange(&l->lease, 0);
        give_back(l, ps, spent, give);
    }
}

/* ---- admin jobs ---- */

static void err(struct wd_gov_job *j, int status, const char *type, const char *msg)
{
    j->status = status;
    j->err_type = type;
    wd_buf_reset(&j->out);
    wd_buf_puts(&j->out, msg);
}

/* A statement's failure as an answer: constraint violations are the caller's, the rest is ours. */
static void sql_err(struct wd_gov_job *j, PGresult *r, const char *conflict, const char *missing)
{
    const char *st = sqlstate(r);
    if (strcmp(st, "23505") == 0)
        err(j, 409, "conflict_error", conflict);
    else if (strcmp(st, "23503") == 0 && missing != NULL)
        err(j, 400, "invalid_request_error", missing);
    else if (r == NULL)
        err(j, 503, "unavailable_error", "the governance database is unreachable");
    else {
        /* the primary message and the SQLSTATE only: a DETAIL quotes the failing row (a key's salt and hash,
         * owners, names) */
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        wd_logf(WD_LOG_WARN, "", "governance: admin statement failed (%s): %s", st, m ? m : "?");
        err(j, 500, "api_error", "the governance database refused the statement");
    }
}

static void one_json(struct wd_gov_job *j, const char *sql, const char *id, int status, const char *what)
{
    const char *params[] = {id};
    PGresult *r = q(sql, 1, params);
    if (!ok(r))
        sql_err(j, r, "conflict", NULL);
    else if (PQntuples(r) == 0) {
        char m[200];
        snprintf(m, sizeof(m), "no such %s", what);
        err(j, 404, "not_found_error", m);
    } else {
        j->status = status;
        wd_buf_reset(&j->out);
        wd_buf_puts(&j->out, PQgetvalue(r, 0, 0));
    }
    PQclear(r);
}

static void list_json(struct wd_gov_job *j, PGresult *r)
{
    if (!ok(r)) {
        sql_err(j, r, "conflict", NULL);
        return;
    }
    j->status = 200;
    wd_buf_reset(&j->out);
    wd_buf_puts(&j->out, "{\"data\":");
    wd_buf_puts(&j->out, PQntuples(r) ? PQgetvalue(r, 0, 0) : "[]");
    wd_buf_putc(&j->out, '}');
}

static char *strs_json(char **v, size_t n)
{
    struct wd_buf b = {0};
    wd_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            wd_buf_putc(&b, ',');
        wd_json_put_string(&b, v[i], strlen(v[i]));
    }
    wd_buf_putc(&b, ']');
    wd_buf_putc(&b, '\0');
    return b.p;
}

static const char KEY_SQL[] = "SELECT j FROM gov.keys_json WHERE id = $1";

static void key_create(struct wd_gov_job *j)
{
    const struct wd_admin_key_req *k = j->key;
    char key[WD_GOV_KEY_LEN + 1], prefix[12], salt_hex[33], hash_hex[65], id[24];
    uint8_t salt[16], hash[32], rid[8];
    if (wd_gov_key_make(key, salt, hash, prefix) < 0 || RAND_bytes(rid, sizeof(rid)) != 1) {
        err(j, 500, "api_error", "no randomness for a key");
        return;
    }
    memcpy(id, "key_", 4);
    wd_hex(rid, sizeof(rid), id + 4);
    wd_hex(salt, 16, salt_hex);
    wd_hex(hash, 32, hash_hex);
    char *models = strs_json(k->models, k->nmodels), *roles = strs_json(k->roles, k->nroles);
    char exp[24] = "";
    if (k->expires_set == WD_ADMIN_SET)
        i64s(exp, k->expires_at);
    const char *params[] = {id,
                            k->name,
                            k->owner_set == WD_ADMIN_SET ? k->owner : NULL,
                            k->team_set == WD_ADMIN_SET ? k->team : NULL,
                            models ? models : "[]",
                            roles ? roles : "[]",
                            prefix,
                            salt_hex,
                            hash_hex,
                            exp[0] ? exp : NULL};
    PGresult *r = q("INSERT INTO gov.keys (id, name, owner, team, models, roles, prefix, salt, hash, expires_at)"
                    " VALUES ($1, $2, $3, $4, ARRAY(SELECT json_array_elements_text($5::json)),"
                    " ARRAY(SELECT json_array_elements_text($6::json)), $7, decode($8, 'hex'), decode($9, 'hex'),"
                    " to_timestamp($10::bigint))", 10, params);
    free(models);
    free(roles);
    if (!ok(r)) {
        sql_err(j, r, "a key not revoked already has this name", "team: no such team");
        PQclear(r);
        OPENSSL_cleanse(key, sizeof(key));
        return;
    }
    PQclear(r);
    one_json(j, KEY_SQL, id, 201, "key");
    if (j->status == 201 && j->out.n > 0 && j->out.p[j->out.n - 1] == '}') {
        j->out.n--; /* the key goes in once, at the end of the object */
        wd_buf_puts(&j->out, ",\"key\":\"");
        wd_buf_put(&j->out, key, WD_GOV_KEY_LEN);
        wd_buf_puts(&j->out, "\"}");
    }
    wd_cstr_copy(j->made_id, sizeof(j->made_id), id);
    OPENSSL_cleanse(key, sizeof(key));
}

static void key_patch(struct wd_gov_job *j)
{
    const struct wd_admin_key_req *k = j->key;
    char *models = k->models_set ? strs_json(k->models, k->nmodels) : NULL;
    char *roles = k->roles_set ? strs_json(k->roles, k->nroles) : NULL;
    char exp[24] = "";
    if (k->expires_set == WD_ADMIN_SET)
        i64s(exp, k->expires_at);
    const char *params[] = {j->id,
                            k->owner_set ? "t" : "f", k->owner_set == WD_ADMIN_SET ? k->owner : NULL,
                            k->team_set ? "t" : "f", k->team_set == WD_ADMIN_SET ? k->team : NULL,
                            models, roles,
                            k->expires_set ? "t" : "f", exp[0] ? exp : NULL};
    PGresult *r = q("UPDATE gov.keys SET"
                    " owner = CASE WHEN $2::bool THEN $3 ELSE owner END,"
                    " team = CASE WHEN $4::bool THEN $5 ELSE team END,"
                    " models = CASE WHEN $6::json IS NULL THEN models ELSE ARRAY(SELECT json_array_elements_text($6::json)) END,"
                    " roles = CASE WHEN $7::json IS NULL THEN roles ELSE ARRAY(SELECT json_array_elements_text($7::json)) END,"
                    " expires_at = CASE WHEN $8::bool THEN to_timestamp($9::bigint) ELSE expires_at END"
                    " WHERE id = $1 AND revoked_at IS NULL", 9, params);
    free(models);
    free(roles);
    if (!ok(r)) {
        sql_err(j, r, "conflict", "team: no such team");
    } else if (strcmp(PQcmdTuples(r), "0") == 0) {
        one_json(j, KEY_SQL, j->id, 409, "key"); /* 404 when there is none; a revoked key cannot change */
        if (j->status == 409)
            err(j, 409, "conflict_error", "the key is revoked");
    } else {
        one_json(j, KEY_SQL, j->id, 200, "key");
    }
    PQclear(r);
}

static void key_revoke(struct wd_gov_job *j)
{
    const char *params[] = {j->id};
    PGresult *r = q("UPDATE gov.keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", 1, params);
    if (!ok(r))
        sql_err(j, r, "conflict", NULL);
    else
        one_json(j, KEY_SQL, j->id, 200, "key");
    PQclear(r);
}

/* A budget as the admin API shows it (docs/governance.md), from a row of BUDGET_COLS. */
#define BUDGET_COLS                                                                                                \
    "b.id, b.scope, b.subject, b.metric, b.period, b.lim, coalesce(extract(epoch FROM b.reset_at)::bigint, 0),"    \
    " coalesce((SELECT json_object_agg(extract(epoch FROM u.period_start)::bigint, u.spent) FROM gov.usage u"      \
    " WHERE u.budget_id = b.id), '{}')"

static void put_amount(struct wd_buf *b, enum wd_gov_metric m, int64_t v)
{
    if (m == WD_GOV_USD)
        wd_buf_printf(b, "%s%lld.%06lld", v < 0 ? "-" : "", (long long)(llabs(v) / 1000000),
                      (long long)(llabs(v) % 1000000));
    else
        wd_buf_put_i64(b, v);
}

static void put_ts(struct wd_buf *b, int64_t s)
{
    char ts[28];
    wd_format_ts(s * 1000000, ts);
    ts[19] = 'Z';
    ts[20] = '\0';
    wd_buf_putc(b, '"');
    wd_buf_puts(b, ts);
    wd_buf_putc(b, '"');
}

static void budget_json(struct wd_buf *b, PGresult *r, int i)
{
    struct wd_gov_limit l = {.period = wd_gov_period_of(PQgetvalue(r, i, 4))};
    atomic_store(&l.reset_at, strtoll(PQgetvalue(r, i, 6), NULL, 10));
    enum wd_gov_metric m = wd_gov_metric_of(PQgetvalue(r, i, 3));
    int64_t end, ps = wd_gov_period_start(&l, wall_s(), &end);
    int64_t spent = 0;
    struct json_object *u = json_tokener_parse(PQgetvalue(r, i, 7)), *v;
    char k[24];
    i64s(k, ps);
    if (u != NULL && json_object_object_get_ex(u, k, &v))
        spent = json_object_get_int64(v);
    json_object_put(u);
    wd_buf_puts(b, "{\"id\":\"bud_");
    wd_buf_puts(b, PQgetvalue(r, i, 0));
    wd_buf_printf(b, "\",\"scope\":\"%s\",\"subject\":", PQgetvalue(r, i, 1));
    wd_json_put_string(b, PQgetvalue(r, i, 2), strlen(PQgetvalue(r, i, 2)));
    wd_buf_printf(b, ",\"metric\":\"%s\",\"period\":\"%s\",\"limit\":", PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
    put_amount(b, m, strtoll(PQgetvalue(r, i, 5), NULL, 10));
    wd_buf_puts(b, ",\"spent\":");
    put_amount(b, m, spent);
    wd_buf_puts(b, ",\"period_start\":");
    put_ts(b, ps);
    wd_buf_puts(b, ",\"resets_at\":");
    if (end)
        put_ts(b, end);
    else
        wd_buf_puts(b, "null");
    wd_buf_putc(b, '}');
}

/* The budget id of a path ("bud_12" -> "12"), or NULL. */
static const char *budget_id(const char *s)
{
    if (strncmp(s, "bud_", 4) != 0 || s[4] == '\0' || strlen(s) > 22)
        return NULL;
    for (const char *p = s + 4; *p; p++)
        if (*p < '0' || *p > '9')
            return NULL;
    return s + 4;
}

static void budget_get(struct wd_gov_job *j, int status)
{
    const char *id = budget_id(j->id);
    if (id == NULL) {
        err(j, 404, "not_found_error", "no such budget");
        return;
    }
    const char *params[] = {id};
    PGresult *r = q("SELECT " BUDGET_COLS " FROM gov.budgets b WHERE b.id = $1::bigint", 1, params);
    if (!ok(r))
        sql_err(j, r, "conflict", NULL);
    else if (PQntuples(r) == 0)
        err(j, 404, "not_found_error", "no such budget");
    else {
        j->status = status;
        wd_buf_reset(&j->out);
        budget_json(&j->out, r, 0);
    }
    PQclear(r);
}

static void budget_create(struct wd_gov_job *j)
{
    const struct wd_admin_budget_req *b = j->budget;
    const char *scope = wd_admin_scope_name(b->scope);
    /* the subject must exist, except an org (a label teams carry) */
    const char *check = b->scope == WD_ADMIN_SCOPE_KEY ? "SELECT 1 FROM gov.keys WHERE id = $1 AND revoked_at IS NULL"
                        : b->scope == WD_ADMIN_SCOPE_TEAM ? "SELECT 1 FROM gov.teams WHERE name = $1"
                                                          : NULL;
    if (check != NULL) {
        const char *p1[] = {b->subject};
        PGresult *r = q(check, 1, p1);
        bool found = ok(r) && PQntuples(r) == 1, failed = !ok(r);
        PQclear(r);
        if (failed) {
            sql_err(j, NULL, "", NULL);
            return;
        }
        if (!found) {
            err(j, 400, "invalid_request_error",
                b->scope == WD_ADMIN_SCOPE_KEY ? "subject: no such key (or it is revoked)" : "subject: no such team");
            return;
        }
    }
    char lim[24];
    i64s(lim, b->limit);
    const char *params[] = {scope, b->subject, wd_admin_metric_name(b->metric), wd_admin_period_name(b->period), lim};
    PGresult *r = q("INSERT INTO gov.budgets (scope, subject, metric, period, lim) VALUES ($1, $2, $3, $4, $5)"
                    " RETURNING id", 5, params);
    if (!ok(r) || PQntuples(r) != 1) {
        sql_err(j, r, "this subject already has a budget of this metric and period", NULL);
        PQclear(r);
        return;
    }
    snprintf(j->id, sizeof(j->id), "bud_%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    wd_cstr_copy(j->made_id, sizeof(j->made_id), j->id);
    budget_get(j, 201);
}

static void budget_list(struct wd_gov_job *j)
{
    const char *params[] = {j->filter1, j->filter2};
    PGresult *r = q("SELECT " BUDGET_COLS " FROM gov.budgets b WHERE ($1 = '' OR b.scope = $1)"
                    " AND ($2 = '' OR b.subject = $2) ORDER BY b.id LIMIT 1000", 2, params);
    if (!ok(r)) {
        sql_err(j, r, "conflict", NULL);
        PQclear(r);
        return;
    }
    j->status = 200;
    wd_buf_reset(&j->out);
    wd_buf_puts(&j->out, "{\"data\":[");
    for (int i = 0; i < PQntuples(r); i++) {
        if (i)
            wd_buf_putc(&j->out, ',');
        budget_json(&j->out, r, i);
    }
    wd_buf_puts(&j->out, "]}");
    PQclear(r);
}

static void budget_change(struct wd_gov_job *j, const char *sql, const char *arg)
{
    const char *id = budget_id(j->id);
    if (id == NULL) {
        err(j, 404, "not_found_error", "no such budget");
        return;
    }
    if (j->kind == WD_GOV_BUDGET_DELETE)
        budget_get(j, 200); /* the answer is the budget as it was */
    const char *params[] = {id, arg};
    PGresult *r = q(sql, arg ? 2 : 1, params);
    if (!ok(r))
        sql_err(j, r, "conflict", NULL);
    else if (strcmp(PQcmdTuples(r), "0") == 0)
        err(j, 404, "not_found_error", "no such budget");
    else if (j->kind != WD_GOV_BUDGET_DELETE)
        budget_get(j, 200);
    PQclear(r);
}

/* A PATCH's limit is in the budget's unit: the body is read once its metric is known. */
static void budget_patch(struct wd_gov_job *j)
{
    const char *id = budget_id(j->id);
    const char *params[] = {id};
    PGresult *r = id ? q("SELECT metric FROM gov.budgets WHERE id = $1::bigint", 1, params) : NULL;
    if (id == NULL || (ok(r) && PQntuples(r) == 0)) {
        PQclear(r);
        err(j, 404, "not_found_error", "no such budget");
        return;
    }
    if (!ok(r)) {
        sql_err(j, r, "conflict", NULL);
        PQclear(r);
        return;
    }
    struct wd_admin_budget_req b = {0};
    const char *m = PQgetvalue(r, 0, 0);
    b.metric = wd_admin_metric_from(m, strlen(m));
    PQclear(r);
    char msg[300];
    if (wd_admin_parse_budget(j->raw ? j->raw : "", j->raw_len, true, &b, msg, sizeof(msg)) < 0) {
        err(j, 400, "invalid_request_error", msg);
        return;
    }
    char lim[24];
    i64s(lim, b.limit);
    budget_change(j, "UPDATE gov.budgets SET lim = $2::bigint WHERE id = $1::bigint", lim);
}

static void team_delete(struct wd_gov_job *j)
{
    const char *params[] = {j->id};
    PGresult *r = q("SELECT 1 FROM gov.keys WHERE team = $1 AND revoked_at IS NULL LIMIT 1", 1, params);
    bool busy = ok(r) && PQntuples(r) > 0, failed = !ok(r);
    PQclear(r);
    if (failed) {
        sql_err(j, NULL, "", NULL);
        return;
    }
    if (busy) {
        err(j, 409, "conflict_error", "the team still has keys that are not revoked");
        return;
    }
    one_json(j, "SELECT j FROM gov.teams_json WHERE name = $1", j->id, 200, "team");
    if (j->status != 200)
        return;
    r = q("WITH d AS (DELETE FROM gov.budgets WHERE scope = 'team' AND subject = $1)"
          " DELETE FROM gov.teams WHERE name = $1", 1, params);
    if (!ok(r))
        sql_err(j, r, "conflict", NULL);
    PQclear(r);
}

static void grant_job(struct wd_gov_job *j);

static void run_job(struct wd_gov_job *j)
{
    j->status = 0;
    j->err_type = NULL;
    if (db == NULL) {
        err(j, 503, "unavailable_error", "the governance database is unreachable");
        return;
    }
    switch (j->kind) {
    case WD_GOV_KEY_CREATE: key_create(j); break;
    case WD_GOV_KEY_LIST: {
        const char *params[] = {j->filter1};
        PGresult *r = q("SELECT json_agg(j ORDER BY created_at DESC) FROM (SELECT j, created_at FROM gov.keys_json"
                        " WHERE $1 = '' OR team = $1 ORDER BY created_at DESC LIMIT 1000) s", 1, params);
        if (ok(r) && PQntuples(r) == 1 && PQgetisnull(r, 0, 0)) {
            PQclear(r);
            r = q("SELECT '[]'", 0, NULL);
        }
        list_json(j, r);
        PQclear(r);
        break;
    }
    case WD_GOV_KEY_GET: one_json(j, KEY_SQL, j->id, 200, "key"); break;
    case WD_GOV_KEY_PATCH: key_patch(j); break;
    case WD_GOV_KEY_REVOKE: key_revoke(j); break;
    case WD_GOV_TEAM_CREATE: {
        const char *params[] = {j->team->name, j->team->has_org ? j->team->org : NULL};
        PGresult *r = q("INSERT INTO gov.teams (name, org) VALUES ($1, $2)", 2, params);
        if (!ok(r))
            sql_err(j, r, "a team with this name exists", NULL);
        else
            one_json(j, "SELECT j FROM gov.teams_json WHERE name = $1", j->team->name, 201, "team");
        PQclear(r);
        break;
    }
    case WD_GOV_TEAM_LIST: {
        PGresult *r = q("SELECT coalesce(json_agg(j ORDER BY name), '[]') FROM gov.teams_json", 0, NULL);
        list_json(j, r);
        PQclear(r);
        break;
    }
    case WD_GOV_TEAM_GET: one_json(j, "SELECT j FROM gov.teams_json WHERE name = $1", j->id, 200, "team"); break;
    case WD_GOV_TEAM_DELETE: team_delete(j); break;
    case WD_GOV_BUDGET_CREATE: budget_create(j); break;
    case WD_GOV_BUDGET_LIST: budget_list(j); break;
    case WD_GOV_BUDGET_GET: budget_get(j, 200); break;
    case WD_GOV_BUDGET_PATCH: budget_patch(j); break;
    case WD_GOV_BUDGET_DELETE: budget_change(j, "DELETE FROM gov.budgets WHERE id = $1::bigint", NULL); break;
    case WD_GOV_BUDGET_RESET:
        budget_change(j, "UPDATE gov.budgets SET reset_at = now() WHERE id = $1::bigint", NULL);
        break;
    case WD_GOV_SIGNIN_EXCHANGE:
    case WD_GOV_SIGNIN_REFRESH: break; /* the sign-in thread's, never queued here */
    case WD_GOV_GRANT_NEW:
    case WD_GOV_GRANT_VERIFY:
    case WD_GOV_GRANT_STATE:
    case WD_GOV_GRANT_APPROVE:
    case WD_GOV_GRANT_DENY_STATE:
    case WD_GOV_GRANT_DENY_CODE:
    case WD_GOV_GRANT_POLL: grant_job(j); break;
    }
    if (j->status == 0)
        err(j, 503, "unavailable_error", "the governance database is unreachable");
}

/* ---- device grants (Claude Code's gateway sign-in, shared by the replicas) ---- */

static void grant_job(struct wd_gov_job *j)
{
    struct wd_signin_exchange *x = j->ext;
    x->ok = 0;
    j->status = 200;
    PGresult *r = NULL;
    switch (j->kind) {
    case WD_GOV_GRANT_NEW: {
        uint8_t h[32];
        char hex[65], uc[9];
        if (wd_signin_new_codes(x->device_code, x->user_code) < 0)
            break;
        wd_sha256(x->device_code, strlen(x->device_code), h);
        wd_hex(h, 32, hex);
        wd_signin_user_code_norm(x->user_code, strlen(x->user_code), uc);
        const char *p[] = {hex, uc};
        r = q("INSERT INTO gov.device_grants (device_hash, user_code, expires_at)"
              " VALUES (decode($1, 'hex'), $2, now() + interval '600 seconds')", 2, p);
        x->ok = ok(r);
        break;
    }
    case WD_GOV_GRANT_VERIFY: {
        char uc[9];
        if (!wd_signin_user_code_norm(x->user_code, strlen(x->user_code), uc) ||
            wd_signin_new_secrets(x->state, x->nonce, x->verifier) < 0)
            break;
        const char *p[] = {uc, x->state, x->nonce, x->verifier};
        r = q("UPDATE gov.device_grants SET status = 'verifying', state = $2, nonce = $3, verifier = $4"
              " WHERE user_code = $1 AND status IN ('pending', 'verifying') AND expires_at > now()", 4, p);
        x->ok = ok(r) && strcmp(PQcmdTuples(r), "1") == 0;
        break;
    }
    case WD_GOV_GRANT_STATE: {
        const char *p[] = {x->state};
        r = q("SELECT nonce, verifier FROM gov.device_grants WHERE state = $1 AND status = 'verifying'"
              " AND expires_at > now()", 1, p);
        if (ok(r) && PQntuples(r) == 1) {
            wd_cstr_copy(x->nonce, sizeof(x->nonce), PQgetvalue(r, 0, 0));
            wd_cstr_copy(x->verifier, sizeof(x->verifier), PQgetvalue(r, 0, 1));
            x->ok = 1;
        }
        break;
    }
    case WD_GOV_GRANT_APPROVE: {
        const char *p[] = {x->state, x->claims, x->sealed[0] ? x->sealed : NULL};
        r = q("UPDATE gov.device_grants SET status = 'approved', claims = $2, sealed = $3, nonce = NULL, verifier = NULL"
              " WHERE state = $1 AND status = 'verifying' AND expires_at > now()", 3, p);
        x->ok = ok(r) && strcmp(PQcmdTuples(r), "1") == 0;
        break;
    }
    case WD_GOV_GRANT_DENY_STATE:
    case WD_GOV_GRANT_DENY_CODE: {
        char uc[9] = "";
        if (j->kind == WD_GOV_GRANT_DENY_CODE && !wd_signin_user_code_norm(x->user_code, strlen(x->user_code), uc))
            break;
        const char *p[] = {j->kind == WD_GOV_GRANT_DENY_CODE ? uc : x->state};
        r = q(j->kind == WD_GOV_GRANT_DENY_CODE
                  ? "UPDATE gov.device_grants SET status = 'denied' WHERE user_code = $1 AND status IN ('pending', 'verifying')"
                  : "UPDATE gov.device_grants SET status = 'denied' WHERE state = $1 AND status = 'verifying'",
              1, p);
        x->ok = ok(r) && strcmp(PQcmdTuples(r), "1") == 0;
        break;
    }
    case WD_GOV_GRANT_POLL: {
        uint8_t h[32];
        char hex[65];
        wd_sha256(x->device_code, strlen(x->device_code), h);
        wd_hex(h, 32, hex);
        const char *p[] = {hex};
        /* one statement: the grant's state, and its removal when it is over (approved: single use) */
        r = q("WITH g AS (SELECT device_hash, status, expires_at <= now() AS expired,"
              "   last_poll IS NOT NULL AND last_poll > now() - interval '4 seconds' AS fast, claims, sealed"
              "   FROM gov.device_grants WHERE device_hash = decode($1, 'hex') FOR UPDATE),"
              " d AS (DELETE FROM gov.device_grants USING g WHERE gov.device_grants.device_hash = g.device_hash"
              "   AND (g.expired OR g.status IN ('approved', 'denied'))),"
              " u AS (UPDATE gov.device_grants SET last_poll = now() FROM g"
              "   WHERE gov.device_grants.device_hash = g.device_hash AND NOT g.expired"
              "   AND g.status IN ('pending', 'verifying'))"
              " SELECT status, expired, fast, claims, sealed FROM g", 1, p);
        if (!ok(r))
            break;
        x->ok = 1;
        if (PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 1), "t") == 0) {
            x->error = "expired_token";
        } else if (strcmp(PQgetvalue(r, 0, 0), "denied") == 0) {
            x->error = "access_denied";
        } else if (strcmp(PQgetvalue(r, 0, 0), "approved") == 0) {
            x->error = NULL;
            wd_cstr_copy(x->claims, sizeof(x->claims), PQgetvalue(r, 0, 3));
            wd_cstr_copy(x->sealed, sizeof(x->sealed), PQgetisnull(r, 0, 4) ? "" : PQgetvalue(r, 0, 4));
        } else {
            x->error = strcmp(PQgetvalue(r, 0, 2), "t") == 0 ? "slow_down" : "authorization_pending";
        }
        break;
    }
    default: break;
    }
    if (r == NULL && db == NULL)
        j->status = 503;
    PQclear(r);
}

static bool is_write(enum wd_gov_job_kind k)
{
    return k != WD_GOV_KEY_LIST && k != WD_GOV_KEY_GET && k != WD_GOV_TEAM_LIST && k != WD_GOV_TEAM_GET &&
           k != WD_GOV_BUDGET_LIST && k != WD_GOV_BUDGET_GET && k < WD_GOV_GRANT_NEW;
}

/* ---- the thread ---- */

static void *governor_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "wd-govern");
    int64_t next_sync = 0, next_connect = 0, next_grant_sweep = 0;
    while (!atomic_load(&stopping)) {
        int64_t now = mono_ms();
        if (db == NULL && now >= next_connect) {
            connect_db();
            next_connect = now + 1000;
            if (db != NULL)
                load(true);
        }
        bool reload = false;
        if (db != NULL) {
            if (PQconsumeInput(db) == 0)
                db_lost("reading notifications");
            PGnotify *n;
            while (db != NULL && (n = PQnotifies(db)) != NULL) {
                reload = true;
                PQfreemem(n);
            }
        }
        struct wd_gov_job *jobs = wd_gov_jobs_take();
        bool wrote = false;
        while (jobs != NULL) {
            struct wd_gov_job *j = jobs;
            jobs = j->next;
            run_job(j);
            wrote |= is_write(j->kind) && j->status < 300;
            j->done(j); /* j belongs to its submitter from here */
        }
        bool sync = now >= next_sync;
        if (db != NULL && (reload || wrote || sync))
            load(false);
        if (db != NULL)
            leases(sync);
        if (db != NULL && sync && now >= next_grant_sweep) {
            PQclear(q("DELETE FROM gov.device_grants WHERE expires_at < now() - interval '60 seconds'", 0, NULL));
            next_grant_sweep = now + 30000;
        }
        if (sync)
            next_sync = now + S.sync_ms;
        struct pollfd fds[2] = {{.fd = wake_fd, .events = POLLIN}, {.fd = db ? PQsocket(db) : -1, .events = POLLIN}};
        int64_t wait = next_sync - mono_ms();
        if (db == NULL && next_connect - mono_ms() < wait)
            wait = next_connect - mono_ms();
        if (wait > 0)
            poll(fds, db ? 2 : 1, (int)wait);
        uint64_t c;
        if (read(wake_fd, &c, sizeof(c)) < 0) {
            /* nothing to read: the timeout or the socket woke us */
        }
    }
    /* the last flush: spend charged and leases held go back */
    if (db != NULL) {
        int64_t now_s = wall_s();
        for (struct wd_gov_limit *l = wd_gov_limits(); l != NULL && db != NULL; l = l->all_next) {
            int64_t cur = atomic_load(&l->period_start);
            int64_t spent = atomic_exchange(&l->unflushed, 0), give = atomic_exchange(&l->lease, 0);
            if (cur == INT64_MIN)
                cur = wd_gov_period_start(l, now_s, NULL);
            give_back(l, cur, spent, give > 0 ? give : 0);
        }
    }
    struct wd_gov_job *jobs = wd_gov_jobs_take();
    while (jobs != NULL) {
        struct wd_gov_job *j = jobs;
        jobs = j->next;
        err(j, 503, "unavailable_error", "the server is shutting down");
        j->done(j);
    }
    if (db != NULL)
        PQfinish(db);
    db = NULL;
    return NULL;
}

int wd_governor_start(const struct wd_config *cfg)
{
    if (!cfg->governance.enabled || running)
        return 0;
    S.database = strdup(cfg->governance.database);
    S.migrate = cfg->governance.migrate;
    S.sync_ms = cfg->governance.sync_ms ? cfg->governance.sync_ms : 1000;
    S.lease = cfg->governance.lease > 0 ? cfg->governance.lease : 0.1;
    S.idle_return_ms = cfg->governance.idle_return_ms;
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (S.database == NULL || wake_fd < 0)
        return -1;
    /* the first load before the workers start: keys work from the first request */
    connect_db();
    if (db != NULL)
        load(true);
    else
        wd_log(WD_LOG_WARN, "governance database unreachable at start: virtual keys and limits wait for it", "");
    wd_gov_set_wake(wake);
    wd_gov_jobs_enable(true);
    wd_gov_stats_on();
    atomic_store(&stopping, false);
    if (pthread_create(&thread, NULL, governor_main, NULL) != 0) {
        wd_gov_jobs_enable(false);
        return -1;
    }
    running = true;
    return 0;
}

void wd_governor_stop(void)
{
    if (!running)
        return;
    wd_gov_jobs_enable(false);
    atomic_store(&stopping, true);
    wake();
    pthread_join(thread, NULL);
    running = false;
    wd_gov_set_wake(NULL);
    close(wake_fd);
    wake_fd = -1;
    free(S.database);
    S.database = NULL;
    /* the snapshot and the limits are freed by the server once the worker loops are closed (a call disposed in
     * their last turn still settles against its limits): wd_gov_shutdown */
}
