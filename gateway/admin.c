/* The admin API (/admin/v1, docs/governance.md and docs/admin-openapi.json): keys, teams, budgets. The worker
 * authenticates, checks the permission, parses the body and hands a job to the governor thread, which runs it
 * against the database; the answer comes back on this worker's loop. Every call leaves an audit record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "authz/admin_json.h"
#include "authz/govern.h"
#include "authz/oidc.h"
#include "authz/rbac.h"
#include "gateway/call.h"
#include "gateway/gateway.h"
#include "lib/json.h"
#include "lib/log.h"

#define ADMIN_PREFIX "/admin/v1"

/* A wait until everything appended so far on the worker's chain is durable (audit.durable_answers), at most the
 * timeout; then go(ctx) runs once. An answer that goes before its record is durable is counted. */
struct durable_wait {
    struct wd_gateway *g;
    uv_timer_t *timer;               /* NULL: not waiting */
    void (*go)(void *ctx);
    void *ctx;
};

struct admin_job;
struct admin_ref {
    struct admin_job *aj;            /* NULL once answered */
};

struct admin_job {
    struct wd_gov_job j;             /* first: the governor hands back &j */
    struct wd_gateway *g;
    h2o_req_t *req;
    struct admin_ref *ref;           /* in the request's pool; NULL once the request is gone */
    struct wd_principal who;
    struct durable_wait hold;        /* audit.durable_answers: the answer waits for its record (at most the timeout) */
    const char *event;               /* "keys.create", ... (audit) */
    char rule[160];                  /* the grant that allowed it (audit) */
    char rid[32];
};

static void dw_timer_closed(uv_handle_t *h) { free(h); }

static void dw_stop(struct durable_wait *d)
{
    if (d->timer == NULL)
        return;
    wd_audit_cancel(d->g->audit, d);
    uv_timer_stop(d->timer);
    uv_close((uv_handle_t *)d->timer, dw_timer_closed);
    d->timer = NULL;
}

static void dw_fire(struct durable_wait *d, bool early)
{
    if (early)
        wd_audit_note_early(d->g->audit);
    dw_stop(d);
    d->go(d->ctx);
}

static void dw_durable(void *ctx, int ok) { dw_fire(ctx, !ok); }

static void dw_timeout(uv_timer_t *t) { dw_fire(t->data, true); }

/* true: go runs later; false: nothing to wait for (or no way to), the caller goes on now */
static bool dw_start(struct durable_wait *d, struct wd_gateway *g, void (*go)(void *ctx), void *ctx)
{
    *d = (struct durable_wait){.g = g, .go = go, .ctx = ctx};
    if (g->audit == NULL || !wd_audit_durable_answers() || (d->timer = malloc(sizeof(*d->timer))) == NULL)
        return false;
    if (wd_audit_barrier(g->audit, dw_durable, d) != 1) {
        free(d->timer);
        d->timer = NULL;
        return false;
    }
    uv_timer_init(g->loop, d->timer);
    d->timer->data = d;
    uv_timer_start(d->timer, dw_timeout, wd_audit_durable_answers_timeout_ms(), 0);
    return true;
}

/* An error answer that waits for the audit record just appended for it. It lives in the request's pool: the
 * request going away first ends the wait. */
struct held_answer {
    struct durable_wait wait;
    h2o_req_t *req;
    int status;
    h2o_iovec_t body;                /* in the request's pool */
};

static void held_send(void *ctx)
{
    struct held_answer *h = ctx;
    wd_respond(h->req, h->status, "application/json", h->body.base, h->body.len);
}

static void held_dispose(void *p) { dw_stop(&((struct held_answer *)p)->wait); }

static void respond_durable(struct wd_gateway *g, h2o_req_t *req, int status, const char *body, size_t len)
{
    if (g->audit != NULL && wd_audit_durable_answers()) {
        struct held_answer *h = h2o_mem_alloc_shared(&req->pool, sizeof(*h), held_dispose);
        *h = (struct held_answer){.req = req, .status = status, .body = h2o_strdup(&req->pool, body, len)};
        if (dw_start(&h->wait, g, held_send, h))
            return;
    }
    wd_respond(req, status, "application/json", body, len);
}

static void error_body(struct wd_buf *b, const char *type, const char *msg)
{
    wd_buf_puts(b, "{\"error\":{\"type\":\"");
    wd_buf_puts(b, type);
    wd_buf_puts(b, "\",\"message\":");
    wd_json_put_string(b, msg, strlen(msg));
    wd_buf_puts(b, "}}");
}

static void respond_error_audited(struct wd_gateway *g, h2o_req_t *req, int status, const char *type, const char *msg)
{
    struct wd_buf b = {0};
    error_body(&b, type, msg);
    respond_durable(g, req, status, b.p ? b.p : "", b.n);
    wd_buf_free(&b);
}

static void respond_error(h2o_req_t *req, int status, const char *type, const char *msg)
{
    struct wd_buf b = {0};
    error_body(&b, type, msg);
    wd_respond(req, status, "application/json", b.p ? b.p : "", b.n);
    wd_buf_free(&b);
}

static void audit_admin(struct wd_gateway *g, const struct wd_principal *who, const char *rid, const char *event,
                        const char *decision, const char *rule, int status, const char *made_id)
{
    if (g->audit == NULL)
        return;
    struct wd_audit_rec r = {0};
    char detail[200]; /* an id is at most 128 name characters */
    wd_audit_set_cstr(&r, WD_AF_KIND, "admin");
    wd_audit_set_cstr(&r, WD_AF_EVENT, event);
    wd_audit_set_cstr(&r, WD_AF_REQUEST_ID, rid);
    if (who != NULL && who->subject[0] != '\0') {
        wd_audit_set_cstr(&r, WD_AF_SUBJECT, who->subject);
        wd_audit_set_cstr(&r, WD_AF_AUTH_METHOD, who->method);
        if (strcmp(who->method, "api_key") == 0 || strcmp(who->method, "virtual_key") == 0)
            wd_audit_set_cstr(&r, WD_AF_KEY_NAME, who->subject);
        if (who->team[0])
            wd_audit_set_cstr(&r, WD_AF_TEAM, who->team);
        if (who->org[0])
            wd_audit_set_cstr(&r, WD_AF_ORG, who->org);
    }
    wd_audit_set_cstr(&r, WD_AF_ROUTE, event);
    wd_audit_set_cstr(&r, WD_AF_DECISION, decision);
    wd_audit_set_cstr(&r, WD_AF_RULE, rule);
    snprintf(detail, sizeof(detail), "{\"status\":%d%s%s%s}", status, made_id && made_id[0] ? ",\"id\":\"" : "",
             made_id && made_id[0] ? made_id : "", made_id && made_id[0] ? "\"" : "");
    wd_audit_set_cstr(&r, WD_AF_DETAIL, detail);
    wd_audit_append(g->audit, &r, NULL, NULL);
}

void wd_gateway_admin_free_job(struct wd_gov_job *j)
{
    struct admin_job *aj = (struct admin_job *)j;
    if (aj->ref != NULL)
        aj->ref->aj = NULL; /* the request outlives the job: its dispose must not reach freed memory */
    if (j->kind == WD_GOV_KEY_CREATE && j->out.p != NULL)
        OPENSSL_cleanse(j->out.p, j->out.n); /* the new key, shown once, does not stay in freed memory */
    if (j->key != NULL) {
        wd_admin_key_req_free(j->key);
        free(j->key);
    }
    free(j->team);
    free(j->budget);
    free(j->raw);
    if (j->ext != NULL)
        OPENSSL_cleanse(j->ext, j->ext_len);
    free(j->ext);
    if (j->raw_answer && j->out.p != NULL)
        OPENSSL_cleanse(j->out.p, j->out.n); /* tokens */
    wd_buf_free(&j->out);
    free(aj);
}

static void answer_now(struct admin_job *aj);

static void answer_go(void *ctx) { answer_now(ctx); }

/* The answer of one finished job, on the worker's loop: its audit record first, and with audit.durable_answers
 * the answer once that record is durable (a key shown to its maker is never missing from the trail). */
static void answer(struct admin_job *aj)
{
    struct wd_gov_job *j = &aj->j;
    /* the object acted on: the one made, else the path's (name characters only: safe inside the JSON detail) */
    if (j->subject[0] != '\0' && aj->who.subject[0] == '\0') { /* a sign-in: the developer it was for */
        wd_cstr_copy(aj->who.subject, sizeof(aj->who.subject), j->subject);
        aj->who.method = "session";
    }
    audit_admin(aj->g, &aj->who, aj->rid, aj->event, j->decision ? j->decision : j->status < 400 ? "allow" : "error",
                aj->rule, j->status, j->made_id[0] ? j->made_id : j->id);
    if (!dw_start(&aj->hold, aj->g, answer_go, aj))
        answer_now(aj);
}

static void answer_now(struct admin_job *aj)
{
    struct wd_gov_job *j = &aj->j;
    if (aj->ref != NULL && j->finish != NULL) {
        int f = j->finish(j, aj->req, aj->g);
        if (f == 2)
            return; /* on its way again: the request stays bound to it */
        if (f == 1) {
            aj->ref->aj = NULL;
            aj->ref = NULL;
            wd_gateway_admin_free_job(j);
            return;
        }
    }
    if (aj->ref != NULL) {
        aj->ref->aj = NULL;
        aj->ref = NULL; /* the response may end the request, and its pool, before the job is freed */
        if (j->raw_answer) {
            h2o_req_t *req = aj->req;
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("pragma"), 0, NULL, H2O_STRLIT("no-cache"));
            wd_respond(req, j->status, j->content_type ? j->content_type : "application/json",
                       j->out.p ? j->out.p : "", j->out.n);
        } else if (j->status >= 400)
            respond_error(aj->req, j->status, j->err_type ? j->err_type : "api_error",
                          j->out.p ? (wd_buf_putc(&j->out, '\0'), j->out.p) : "error");
        else
            wd_respond(aj->req, j->status, "application/json", j->out.p ? j->out.p : "", j->out.n);
    }
    wd_gateway_admin_free_job(j);
}

static void on_admin_wake(uv_async_t *a)
{
    struct wd_gateway *g = a->data;
    pthread_mutex_lock(&g->admin_lock);
    struct wd_gov_job *list = g->admin_done;
    g->admin_done = NULL;
    pthread_mutex_unlock(&g->admin_lock);
    while (list != NULL) {
        struct wd_gov_job *j = list;
        list = j->next;
        answer((struct admin_job *)j);
    }
}

/* The governor's thread: the job goes back to its worker. */
static void job_done(struct wd_gov_job *j)
{
    struct wd_gateway *g = ((struct admin_job *)j)->g;
    pthread_mutex_lock(&g->admin_lock);
    bool closed = g->admin_closed;
    if (!closed) {
        j->next = g->admin_done;
        g->admin_done = j;
        uv_async_send(&g->admin_wake);
    }
    pthread_mutex_unlock(&g->admin_lock);
    if (closed)
        wd_gateway_admin_free_job(j);
}

void wd_gateway_admin_close(struct wd_gateway *g)
{
    if (!g->admin_init)
        return;
    pthread_mutex_lock(&g->admin_lock);
    g->admin_closed = true;
    pthread_mutex_unlock(&g->admin_lock);
}

static void ref_dispose(void *p)
{
    struct admin_ref *r = p;
    if (r->aj != NULL)
        r->aj->ref = NULL; /* the client went away: the answer is dropped */
}

/* ---- routing ---- */

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* Reads the query: only the names in allowed (NULL-terminated), each at most once, values of name characters. */
static int read_query(h2o_iovec_t q, const char *const *allowed, char (*vals)[WD_GOV_NAME_MAX], char *why, size_t cap)
{
    const char *p = q.base, *end = q.base + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (eq == NULL) {
            snprintf(why, cap, "query: a parameter without a value");
            return -1;
        }
        size_t kn = (size_t)(eq - p), vn = (size_t)(e - eq - 1);
        int k = -1;
        for (int i = 0; allowed[i] != NULL; i++)
            if (strlen(allowed[i]) == kn && memcmp(allowed[i], p, kn) == 0)
                k = i;
        if (k < 0) {
            snprintf(why, cap, "query: unknown parameter (allowed: %s%s%s)", allowed[0] ? allowed[0] : "none",
                     allowed[0] && allowed[1] ? ", " : "", allowed[0] && allowed[1] ? allowed[1] : "");
            return -1;
        }
        if (vals[k][0] != '\0' || !name_ok(eq + 1, vn)) {
            snprintf(why, cap, "query: %s must appear once, 1-128 characters of A-Z a-z 0-9 . _ @ -", allowed[k]);
            return -1;
        }
        memcpy(vals[k], eq + 1, vn);
        vals[k][vn] = '\0';
        p = e + (amp != NULL);
    }
    return 0;
}

/* A key's roles must be rbac.roles, and a caller may hand out only roles it holds itself (static keys, the
 * break-glass admins, excepted): keys:manage alone does not make budgets:manage. -1 with *status and msg. */
static int roles_refused(const struct wd_config *cfg, const struct wd_principal *who, const struct wd_admin_key_req *k,
                         char *msg, size_t cap, int *status)
{
    for (size_t i = 0; i < k->nroles; i++) {
        size_t r = 0;
        while (r < cfg->nroles && r < WD_RBAC_MAX_ROLES && strcmp(cfg->roles[r].name, k->roles[i]) != 0)
            r++;
        if (r == cfg->nroles || r >= WD_RBAC_MAX_ROLES) {
            snprintf(msg, cap, "roles: %.128s is not a role of rbac.roles", k->roles[i]);
            *status = 400;
            return -1;
        }
        if (strcmp(who->method, "api_key") != 0 && !(who->roles & (1ull << r))) {
            snprintf(msg, cap, "roles: you may grant only roles you hold (not %.128s)", k->roles[i]);
            *status = 403;
            return -1;
        }
    }
    return 0;
}

/* "{}" with any whitespace: what a client sends for "no fields" (budget reset). */
static bool empty_object(const char *p, size_t n)
{
    char seen[3] = "";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')
            continue;
        if (k == 2)
            return false;
        seen[k++] = p[i];
    }
    return k == 2 && seen[0] == '{' && seen[1] == '}';
}

static bool method_is(h2o_req_t *req, const char *m) { return h2o_memis(req->method.base, req->method.len, m, strlen(m)); }

bool wd_gateway_admin_takes_body(const char *path, size_t len)
{
    return len > sizeof(ADMIN_PREFIX) - 1 && memcmp(path, ADMIN_PREFIX "/", sizeof(ADMIN_PREFIX)) == 0;
}

int wd_gateway_admin(struct wd_gateway *g, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    size_t pl = sizeof(ADMIN_PREFIX) - 1;
    if (path.len < pl || memcmp(path.base, ADMIN_PREFIX, pl) != 0 || (path.len > pl && path.base[pl] != '/'))
        return -1;
    char rid[32];
    memcpy(rid, "req_", 4);
    wd_rand_id(rid + 4, 24);
    rid[28] = '\0';
    /* who first: an unauthenticated caller learns nothing of the routes */
    struct wd_str presented = wd_gateway_presented(req);
    struct wd_principal who = {0};
    const struct wd_gov_key *vkey;
    const char *why = "missing_key";
    int ar = presented.n ? wd_gateway_principal(g, presented, &who, &vkey, &why) : -1;
    if (ar == WD_OIDC_PENDING) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        respond_error(req, 503, "unavailable_error", "the identity provider's signing keys are not available yet");
        return 0;
    }
    if (ar != 0) {
        audit_admin(g, NULL, rid, "admin.auth", "deny", why, 401, NULL);
        respond_error_audited(g, req, 401, "authentication_error", presented.n ? "invalid credential" : "missing credential: send "
                      "Authorization: Bearer or x-api-key");
        return 0;
    }

    /* the route: resource, optional {id}, optional action */
    const char *p = path.base + pl, *end = path.base + path.len;
    const char *seg[4];
    size_t segn[4];
    int ns = 0;
    while (p < end && ns < 4) {
        if (*p == '/')
            p++;
        const char *s = p;
        while (p < end && *p != '/')
            p++;
        seg[ns] = s;
        segn[ns++] = (size_t)(p - s);
    }
    h2o_iovec_t query = req->query_at != SIZE_MAX ? h2o_iovec_init(req->path.base + req->query_at + 1,
                                                                   req->path.len - req->query_at - 1)
                                                  : h2o_iovec_init(NULL, 0);
    enum wd_gov_job_kind kind = 0;
    const char *event = NULL, *perm = NULL;
    static const char *const no_query[] = {NULL}, *const team_query[] = {"team", NULL},
                             *const budget_query[] = {"scope", "subject", NULL};
    const char *const *allowed_q = no_query;
    bool get = method_is(req, "GET"), post = method_is(req, "POST"), patch = method_is(req, "PATCH"),
         del = method_is(req, "DELETE");
    bool known = p == end && ns >= 1;
#define SEG(i, lit) (segn[i] == sizeof(lit) - 1 && memcmp(seg[i], lit, sizeof(lit) - 1) == 0)
    if (known && SEG(0, "keys")) {
        perm = "keys:manage";
        if (ns == 1 && get) { kind = WD_GOV_KEY_LIST; event = "keys.list"; allowed_q = team_query; }
        else if (ns == 1 && post) { kind = WD_GOV_KEY_CREATE; event = "keys.create"; }
        else if (ns == 2 && get) { kind = WD_GOV_KEY_GET; event = "keys.get"; }
        else if (ns == 2 && patch) { kind = WD_GOV_KEY_PATCH; event = "keys.update"; }
        else if (ns == 2 && del) { kind = WD_GOV_KEY_REVOKE; event = "keys.revoke"; }
        else known = ns <= 2 ? (event = "keys", true) : false;
    } else if (known && SEG(0, "teams")) {
        perm = "budgets:manage";
        if (ns == 1 && get) { kind = WD_GOV_TEAM_LIST; event = "teams.list"; }
        else if (ns == 1 && post) { kind = WD_GOV_TEAM_CREATE; event = "teams.create"; }
        else if (ns == 2 && get) { kind = WD_GOV_TEAM_GET; event = "teams.get"; }
        else if (ns == 2 && del) { kind = WD_GOV_TEAM_DELETE; event = "teams.delete"; }
        else known = ns <= 2 ? (event = "teams", true) : false;
    } else if (known && SEG(0, "budgets")) {
        perm = "budgets:manage";
        if (ns == 1 && get) { kind = WD_GOV_BUDGET_LIST; event = "budgets.list"; allowed_q = budget_query; }
        else if (ns == 1 && post) { kind = WD_GOV_BUDGET_CREATE; event = "budgets.create"; }
        else if (ns == 2 && get) { kind = WD_GOV_BUDGET_GET; event = "budgets.get"; }
        else if (ns == 2 && patch) { kind = WD_GOV_BUDGET_PATCH; event = "budgets.update"; }
        else if (ns == 2 && del) { kind = WD_GOV_BUDGET_DELETE; event = "budgets.delete"; }
        else if (ns == 3 && SEG(2, "reset") && post) { kind = WD_GOV_BUDGET_RESET; event = "budgets.reset"; }
        else known = ns <= 2 || (ns == 3 && SEG(2, "reset")) ? (event = "budgets", true) : false;
    } else {
        known = false;
    }
#undef SEG
    if (!known) {
        respond_error(req, 404, "not_found_error", "no such route");
        return 0;
    }
    if (kind == 0) {
        respond_error(req, 405, "method_not_allowed", "this route does not take that method");
        return 0;
    }
    /* the permission: from roles with an rbac section; without one, static keys are the break-glass admins */
    const struct wd_config *cfg = g->rt->cfg;
    bool allowed = cfg->rbac ? wd_rbac_permitted(cfg, who.roles, perm) : strcmp(who.method, "api_key") == 0;
    char rule[160];
    snprintf(rule, sizeof(rule), cfg->rbac ? "rbac: %s" : "no rbac section: static keys only (%s)", perm);
    if (!allowed) {
        audit_admin(g, &who, rid, event, "deny", rule, 403, NULL);
        char m[200];
        snprintf(m, sizeof(m), "%s needs the %s permission", event, perm);
        respond_error_audited(g, req, 403, "permission_error", m);
        return 0;
    }
    if (!cfg->governance.enabled) {
        respond_error(req, 503, "unavailable_error", "governance is not configured (no governance.database)");
        return 0;
    }

    struct wd_gov_job *j = wd_gateway_job_new();
    if (j == NULL) {
        respond_error(req, 503, "unavailable_error", "out of memory");
        return 0;
    }
    j->kind = kind;
    char msg[300] = "";
    int bad = 0;
    if (ns >= 2) {
        if (!name_ok(seg[1], segn[1])) {
            wd_gateway_admin_free_job(j);
            respond_error(req, 404, "not_found_error", "no such object");
            return 0;
        }
        memcpy(j->id, seg[1], segn[1]);
        j->id[segn[1]] = '\0';
    }
    char qv[2][WD_GOV_NAME_MAX] = {"", ""};
    if (query.len > 0 && read_query(query, allowed_q, qv, msg, sizeof(msg)) < 0)
        bad = 400;
    memcpy(j->filter1, qv[0], sizeof(qv[0]));
    memcpy(j->filter2, qv[1], sizeof(qv[1]));
    bool takes_body = kind == WD_GOV_KEY_CREATE || kind == WD_GOV_KEY_PATCH || kind == WD_GOV_TEAM_CREATE ||
                      kind == WD_GOV_BUDGET_CREATE || kind == WD_GOV_BUDGET_PATCH;
    const char *body = req->entity.base ? req->entity.base : "";
    size_t blen = req->entity.len;
    if (!bad && takes_body && blen > WD_ADMIN_MAX_BODY) {
        bad = 413;
        snprintf(msg, sizeof(msg), "body: at most %d bytes", WD_ADMIN_MAX_BODY);
    } else if (!bad && takes_body) {
        int rc = -1;
        if (kind == WD_GOV_KEY_CREATE || kind == WD_GOV_KEY_PATCH) {
            if ((j->key = calloc(1, sizeof(*j->key))) != NULL)
                rc = wd_admin_parse_key(body, blen, kind == WD_GOV_KEY_PATCH, (int64_t)time(NULL), j->key, msg,
                                        sizeof(msg));
        } else if (kind == WD_GOV_TEAM_CREATE) {
            if ((j->team = calloc(1, sizeof(*j->team))) != NULL)
                rc = wd_admin_parse_team(body, blen, j->team, msg, sizeof(msg));
        } else if (kind == WD_GOV_BUDGET_CREATE) {
            if ((j->budget = calloc(1, sizeof(*j->budget))) != NULL)
                rc = wd_admin_parse_budget(body, blen, false, j->budget, msg, sizeof(msg));
        } else { /* the governor parses it once it knows the budget's metric */
            if ((j->raw = malloc(blen + 1)) != NULL) {
                memcpy(j->raw, body, blen);
                j->raw[blen] = '\0';
                j->raw_len = blen;
                rc = 0;
            }
        }
        if (rc < 0) {
            bad = 400;
            if (msg[0] == '\0')
                snprintf(msg, sizeof(msg), "out of memory");
        }
        if (rc == 0 && j->key != NULL && j->key->roles_set && roles_refused(cfg, &who, j->key, msg, sizeof(msg), &bad) < 0)
            rc = -1;
    } else if (!bad && !takes_body && blen > 0 && !(kind == WD_GOV_BUDGET_RESET && empty_object(body, blen))) {
        bad = 400;
        snprintf(msg, sizeof(msg), "body: this route takes none");
    }
    if (bad) {
        audit_admin(g, &who, rid, event, bad == 403 ? "deny" : "error", rule, bad, NULL);
        wd_gateway_admin_free_job(j);
        respond_error_audited(g, req, bad,
                              bad == 413 ? "request_too_large" : bad == 403 ? "permission_error" : "invalid_request_error",
                              msg);
        return 0;
    }
    memcpy(((struct admin_job *)j)->rule, rule, sizeof(((struct admin_job *)j)->rule));
    if (wd_gateway_job_submit(g, req, j, &who, event, rid, wd_gov_submit) < 0)
        respond_error(req, 503, "unavailable_error", "governance is not running");
    return 0;
}

struct wd_gov_job *wd_gateway_job_new(void)
{
    struct admin_job *aj = calloc(1, sizeof(*aj));
    return aj != NULL ? &aj->j : NULL;
}

int wd_gateway_job_submit(struct wd_gateway *g, h2o_req_t *req, struct wd_gov_job *j, const struct wd_principal *who,
                          const char *event, const char *rid, int (*submit)(struct wd_gov_job *))
{
    struct admin_job *aj = (struct admin_job *)j;
    aj->g = g;
    aj->req = req;
    if (who != NULL)
        aj->who = *who;
    aj->event = event;
    wd_cstr_copy(aj->rid, sizeof(aj->rid), rid);
    j->done = job_done;
    if (!g->admin_init) {
        pthread_mutex_init(&g->admin_lock, NULL);
        uv_async_init(g->loop, &g->admin_wake, on_admin_wake);
        g->admin_wake.data = g;
        g->admin_init = true;
    }
    struct admin_ref *ref = h2o_mem_alloc_shared(&req->pool, sizeof(*ref), ref_dispose);
    ref->aj = aj;
    aj->ref = ref;
    if (submit(j) < 0) {
        ref->aj = NULL;
        aj->ref = NULL;
        wd_gateway_admin_free_job(j);
        return -1;
    }
    return 0;
}
