/* Claude Code's gateway sign-in, the routes (docs/claude-gateway-protocol.md): discovery, the device authorization
 * grant with its verification page and the IdP's callback, the token endpoint (device and refresh grants), managed
 * settings by IdP group with ETag, and the OTLP routes Claude Code posts its telemetry to. They live under the
 * Anthropic API's prefix, so the gateway URL Claude Code is given is the same base its requests go to. The IdP is
 * only ever talked to by the sign-in thread (server/signin.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "authz/govern.h"
#include "authz/oidc.h"
#include "authz/rbac.h"
#include "authz/signin.h"
#include "gateway/call.h"
#include "gateway/gateway.h"
#include "lib/buf.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/log.h"

#define PREFIX "/anthropic"
#define FORM_MAX 16384

static bool route_is(h2o_iovec_t path, const char *suffix)
{
    size_t pl = sizeof(PREFIX) - 1, sl = strlen(suffix);
    return path.len == pl + sl && memcmp(path.base, PREFIX, pl) == 0 && memcmp(path.base + pl, suffix, sl) == 0;
}

size_t wd_gateway_open_body_max(struct wd_gateway *g, const char *path, size_t len)
{
    if (!g->rt->cfg->signin.enabled)
        return 0;
    h2o_iovec_t p = h2o_iovec_init(path, len);
    return route_is(p, "/oauth/device_authorization") || route_is(p, "/oauth/token") || route_is(p, "/device") ||
                   route_is(p, "/device/deny")
               ? FORM_MAX
               : 0;
}

static char *with_telemetry_env(const struct wd_config *cfg, const char *settings);

/* ---- small helpers ---- */

static h2o_iovec_t wd_call_header_req(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static void header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, strlen(value));
}

static void no_store(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    header(req, "pragma", "no-cache");
}

static void oauth_error(h2o_req_t *req, int status, const char *error)
{
    char b[96];
    int n = snprintf(b, sizeof(b), "{\"error\":\"%s\"}", error);
    no_store(req);
    wd_respond(req, status, "application/json", b, (size_t)n);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of name in a form or a query (percent- and plus-decoded into out): its length, or -1 absent or too
 * long. */
static int form_get(const char *p, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *end = p + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t k = 0;
            for (const char *q = p + nl + 1; q < e; q++) {
                char c = *q;
                if (c == '+')
                    c = ' ';
                else if (c == '%' && q + 2 < e && hexval(q[1]) >= 0 && hexval(q[2]) >= 0) {
                    c = (char)(hexval(q[1]) * 16 + hexval(q[2]));
                    q += 2;
                }
                if (k + 1 >= cap || c == '\0')
                    return -1;
                out[k++] = c;
            }
            out[k] = '\0';
            return (int)k;
        }
        p = e + (amp != NULL);
    }
    return -1;
}

static void put_url_escaped(struct wd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~')
            wd_buf_putc(b, (char)c);
        else {
            wd_buf_putc(b, '%');
            wd_buf_putc(b, hex[c >> 4]);
            wd_buf_putc(b, hex[c & 15]);
        }
    }
}

static void put_html_escaped(struct wd_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': wd_buf_puts(b, "&lt;"); break;
        case '>': wd_buf_puts(b, "&gt;"); break;
        case '&': wd_buf_puts(b, "&amp;"); break;
        case '"': wd_buf_puts(b, "&quot;"); break;
        case '\'': wd_buf_puts(b, "&#39;"); break;
        default: wd_buf_putc(b, *s);
        }
    }
}

static void page(h2o_req_t *req, const struct wd_config *cfg, const char *user_code, const char *message)
{
    struct wd_buf b = {0};
    wd_buf_puts(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in to Warden</title></head><body>"
                    "<h1>Sign in to Warden</h1>");
    if (message != NULL) {
        wd_buf_puts(&b, "<p><strong>");
        put_html_escaped(&b, message);
        wd_buf_puts(&b, "</strong></p>");
    }
    wd_buf_puts(&b, "<p>Enter the code Claude Code shows.</p><form method=\"post\" action=\"");
    put_html_escaped(&b, cfg->signin.public_url);
    wd_buf_puts(&b, "/device\"><input name=\"user_code\" autocomplete=\"off\" value=\"");
    put_html_escaped(&b, user_code ? user_code : "");
    wd_buf_puts(&b, "\"><button type=\"submit\">Continue</button></form><form method=\"post\" action=\"");
    put_html_escaped(&b, cfg->signin.public_url);
    wd_buf_puts(&b, "/device/deny\"><input type=\"hidden\" name=\"user_code\" value=\"");
    put_html_escaped(&b, user_code ? user_code : "");
    wd_buf_puts(&b, "\"><button type=\"submit\">Deny</button></form></body></html>\n");
    no_store(req);
    header(req, "content-security-policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'");
    header(req, "x-frame-options", "DENY");
    wd_respond(req, 200, "text/html; charset=utf-8", b.p ? b.p : "", b.n);
    wd_buf_free(&b);
}

/* A browser form post from this site (RFC 8628 5.4: the verification page is a CSRF target). */
static bool same_site(h2o_req_t *req, const struct wd_config *cfg)
{
    h2o_iovec_t site = wd_call_header_req(req, "sec-fetch-site");
    if (site.base != NULL)
        return h2o_memis(site.base, site.len, H2O_STRLIT("same-origin")) || h2o_memis(site.base, site.len, H2O_STRLIT("none"));
    h2o_iovec_t origin = wd_call_header_req(req, "origin");
    if (origin.base == NULL)
        return false;
    const char *pu = cfg->signin.public_url, *slash = strchr(strstr(pu, "://") ? strstr(pu, "://") + 3 : pu, '/');
    size_t ol = slash ? (size_t)(slash - pu) : strlen(pu);
    return origin.len == ol && memcmp(origin.base, pu, ol) == 0;
}

/* ---- device grants in the governance database (several replicas: any may take any step) ---- */

static void device_answer(h2o_req_t *req, const struct wd_config *cfg, const char *dc, const char *uc);
static int redirect_to_idp(h2o_req_t *req, const struct wd_config *cfg, const char *auth_ep, const char *state,
                           const char *nonce, const char *verifier);

static bool shared_store(const struct wd_config *cfg) { return cfg->governance.enabled; }

/* Hands a sign-in step to a queue (the governor's, or the sign-in thread's): ext (malloc'd) goes with the job and is
 * wiped with it; finish (optional) turns the job's result into the answer. On failure ext is wiped and freed and
 * fallback answers. */
static void submit_step(struct wd_gateway *g, h2o_req_t *req, enum wd_gov_job_kind kind, void *ext, size_t ext_len,
                        int (*finish)(struct wd_gov_job *, void *, void *), const char *event,
                        int (*queue)(struct wd_gov_job *), void (*fallback)(h2o_req_t *req))
{
    struct wd_gov_job *j = wd_gateway_job_new();
    if (j == NULL) {
        OPENSSL_cleanse(ext, ext_len);
        free(ext);
        fallback(req);
        return;
    }
    j->kind = kind;
    j->ext = ext;
    j->ext_len = ext_len;
    j->finish = finish;
    char rid[32] = "req_";
    wd_rand_id(rid + 4, 24);
    rid[28] = '\0';
    if (wd_gateway_job_submit(g, req, j, NULL, event, rid, queue) < 0)
        fallback(req);
}

static void unavailable(h2o_req_t *req) { oauth_error(req, 503, "temporarily_unavailable"); }

/* A grant job for the governor (the shared store), answered through finish. */
static void grant_submit(struct wd_gateway *g, h2o_req_t *req, enum wd_gov_job_kind kind, struct wd_signin_exchange *x,
                         int (*finish)(struct wd_gov_job *, void *, void *), const char *event)
{
    x->shared = true;
    submit_step(g, req, kind, x, sizeof(*x), finish, event, wd_gov_submit, unavailable);
}

static struct wd_signin_exchange *new_x(h2o_req_t *req)
{
    struct wd_signin_exchange *x = calloc(1, sizeof(*x));
    if (x == NULL)
        oauth_error(req, 503, "temporarily_unavailable");
    return x;
}

static int finish_new(struct wd_gov_job *j, void *r, void *gw)
{
    h2o_req_t *req = r;
    struct wd_gateway *g = gw;
    struct wd_signin_exchange *x = j->ext;
    if (!x->ok) {
        oauth_error(req, 503, "temporarily_unavailable");
        return 1;
    }
    device_answer(req, g->rt->cfg, x->device_code, x->user_code);
    return 1;
}

static int finish_verify(struct wd_gov_job *j, void *r, void *gw)
{
    h2o_req_t *req = r;
    const struct wd_config *cfg = ((struct wd_gateway *)gw)->rt->cfg;
    struct wd_signin_exchange *x = j->ext;
    char auth_ep[1024];
    if (!x->ok)
        page(req, cfg, x->user_code, j->status == 503 ? "The sign-in store cannot be reached. Try again shortly."
                                                     : "That code is unknown or has expired.");
    else if (wd_gov_signin_auth_endpoint(auth_ep, sizeof(auth_ep)) < 0)
        page(req, cfg, x->user_code, "The identity provider cannot be reached. Try again shortly.");
    else if (redirect_to_idp(req, cfg, auth_ep, x->state, x->nonce, x->verifier) < 0)
        page(req, cfg, x->user_code, "Out of memory.");
    return 1;
}

static int finish_deny(struct wd_gov_job *j, void *r, void *gw)
{
    page(r, ((struct wd_gateway *)gw)->rt->cfg, "", "The sign-in was denied. You can close this page.");
    return 1;
}

/* The callback's grant found: on to the sign-in thread, which trades the code and has the governor record it. */
static int finish_state(struct wd_gov_job *j, void *r, void *gw)
{
    struct wd_signin_exchange *x = j->ext;
    const struct wd_config *cfg = ((struct wd_gateway *)gw)->rt->cfg;
    if (j->kind == WD_GOV_GRANT_STATE) {
        if (!x->ok) {
            page(r, cfg, "", "This sign-in is unknown or has expired. Run /login in Claude Code again.");
            return 1;
        }
        j->kind = WD_GOV_SIGNIN_EXCHANGE;
        j->status = 0;
        if (wd_gov_signin_submit(j) == 0)
            return 2;
        page(r, cfg, "", "Sign-in is not running.");
        return 1;
    }
    if (j->kind == WD_GOV_GRANT_APPROVE && !x->ok) {
        page(r, cfg, "", "This sign-in expired before it completed. Run /login in Claude Code again.");
        return 1;
    }
    return 0; /* the sign-in thread's page */
}

/* A poll: the grant's state, or, approved, the session minted here from the claims the approval recorded. */
static int finish_poll(struct wd_gov_job *j, void *r, void *gw)
{
    h2o_req_t *req = r;
    const struct wd_config *cfg = ((struct wd_gateway *)gw)->rt->cfg;
    struct wd_signin_exchange *x = j->ext;
    if (!x->ok) {
        oauth_error(req, 503, "temporarily_unavailable");
        return 1;
    }
    if (x->error != NULL) {
        oauth_error(req, strcmp(x->error, "slow_down") == 0 ? 429 : 400, x->error);
        return 1;
    }
    const struct wd_signin_keys *sk = wd_gov_signin_keys();
    struct wd_signin_claims c = {0};
    struct json_object *o = json_tokener_parse(x->claims), *v;
    const char *sub = o && json_object_object_get_ex(o, "sub", &v) ? json_object_get_string(v) : NULL;
    if (sk == NULL || sub == NULL || sub[0] == '\0') {
        json_object_put(o);
        oauth_error(req, 503, "temporarily_unavailable");
        return 1;
    }
    wd_cstr_copy(c.sub, sizeof(c.sub), sub);
    if (json_object_object_get_ex(o, "email", &v))
        wd_cstr_copy(c.email, sizeof(c.email), json_object_get_string(v));
    if (json_object_object_get_ex(o, "name", &v))
        wd_cstr_copy(c.name, sizeof(c.name), json_object_get_string(v));
    if (json_object_object_get_ex(o, "groups", &v) && json_object_is_type(v, json_type_array))
        for (size_t i = 0; i < json_object_array_length(v) && c.ngroups < 16; i++)
            wd_cstr_copy(c.groups[c.ngroups++], sizeof(c.groups[0]), json_object_get_string(json_object_array_get_idx(v, i)));
    json_object_put(o);
    int64_t ttl = cfg->signin.session_ttl_ms / 1000;
    c.iat = (int64_t)time(NULL);
    c.exp = c.iat + ttl;
    char *tok = malloc(WD_SIGNIN_MAX_TOKEN), *rt = malloc(4097);
    int n = tok && rt ? wd_signin_mint(sk, cfg->signin.public_url, &c, tok, WD_SIGNIN_MAX_TOKEN) : -1;
    int rn = n >= 0 && x->sealed[0] ? wd_signin_open(sk, x->sealed, strlen(x->sealed), rt, 4097) : 0;
    if (n < 0 || rn < 0) {
        oauth_error(req, 503, "temporarily_unavailable");
    } else {
        struct wd_buf b = {0};
        wd_buf_puts(&b, "{\"access_token\":");
        wd_json_put_string(&b, tok, (size_t)n);
        if (rn > 0) {
            wd_buf_puts(&b, ",\"refresh_token\":");
            wd_json_put_string(&b, rt, (size_t)rn);
        }
        wd_buf_printf(&b, ",\"token_type\":\"Bearer\",\"expires_in\":%lld}", (long long)ttl);
        no_store(req);
        wd_respond(req, 200, "application/json", b.p ? b.p : "", b.n);
        if (b.p != NULL)
            OPENSSL_cleanse(b.p, b.n);
        wd_buf_free(&b);
    }
    if (tok != NULL)
        OPENSSL_cleanse(tok, WD_SIGNIN_MAX_TOKEN);
    if (rt != NULL)
        OPENSSL_cleanse(rt, 4097);
    free(tok);
    free(rt);
    return 1;
}

/* ---- the routes ---- */

static void discovery(h2o_req_t *req, const struct wd_config *cfg)
{
    struct wd_buf b = {0};
    const char *u = cfg->signin.public_url;
    wd_buf_puts(&b, "{\"issuer\":");
    wd_json_put_string(&b, u, strlen(u));
    wd_buf_puts(&b, ",\"device_authorization_endpoint\":\"");
    wd_json_put_escaped(&b, u, strlen(u));
    wd_buf_puts(&b, "/oauth/device_authorization\",\"token_endpoint\":\"");
    wd_json_put_escaped(&b, u, strlen(u));
    wd_buf_puts(&b, "/oauth/token\",\"grant_types_supported\":[\"urn:ietf:params:oauth:grant-type:device_code\","
                    "\"refresh_token\"],\"response_types_supported\":[],\"token_endpoint_auth_methods_supported\":"
                    "[\"none\"],\"scopes_supported\":[\"openid\",\"profile\",\"email\"],\"gateway_protocol_version\":1}");
    wd_respond(req, 200, "application/json", b.p, b.n);
    wd_buf_free(&b);
}

static void device_answer(h2o_req_t *req, const struct wd_config *cfg, const char *dc, const char *uc)
{
    struct wd_buf b = {0};
    const char *u = cfg->signin.public_url;
    wd_buf_printf(&b, "{\"device_code\":\"%s\",\"user_code\":\"%s\",\"verification_uri\":\"", dc, uc);
    wd_json_put_escaped(&b, u, strlen(u));
    wd_buf_puts(&b, "/device\",\"verification_uri_complete\":\"");
    wd_json_put_escaped(&b, u, strlen(u));
    wd_buf_printf(&b, "/device?user_code=%s\",\"expires_in\":600,\"interval\":5}", uc);
    no_store(req);
    wd_respond(req, 200, "application/json", b.p, b.n);
    if (b.p != NULL)
        OPENSSL_cleanse(b.p, b.n);
    wd_buf_free(&b);
}

static void device_authorization(struct wd_gateway *g, h2o_req_t *req, const struct wd_config *cfg)
{
    if (shared_store(cfg)) {
        struct wd_signin_exchange *x = new_x(req);
        if (x != NULL)
            grant_submit(g, req, WD_GOV_GRANT_NEW, x, finish_new, "signin.device_authorization");
        return;
    }
    char dc[44], uc[10];
    if (wd_signin_grant_new((int64_t)time(NULL), dc, uc) < 0) {
        oauth_error(req, 429, "slow_down");
        return;
    }
    device_answer(req, cfg, dc, uc);
    OPENSSL_cleanse(dc, sizeof(dc));
}

/* 302 to the IdP's authorization endpoint: the code flow with PKCE (S256), state and nonce. 0 or -1 (memory). */
static int redirect_to_idp(h2o_req_t *req, const struct wd_config *cfg, const char *auth_ep, const char *state,
                           const char *nonce, const char *verifier)
{
    uint8_t d[32];
    char challenge[48];
    wd_sha256(verifier, strlen(verifier), d);
    wd_b64url_encode(d, sizeof(d), challenge);
    struct wd_buf b = {0};
    wd_buf_puts(&b, auth_ep);
    wd_buf_putc(&b, strchr(auth_ep, '?') ? '&' : '?');
    wd_buf_puts(&b, "client_id=");
    put_url_escaped(&b, cfg->signin.client_id);
    wd_buf_puts(&b, "&scope=");
    if (cfg->signin.nscopes == 0)
        wd_buf_puts(&b, "openid%20profile%20email%20offline_access");
    for (size_t i = 0; i < cfg->signin.nscopes; i++) {
        if (i)
            wd_buf_puts(&b, "%20");
        put_url_escaped(&b, cfg->signin.scopes[i]);
    }
    wd_buf_puts(&b, "&response_type=code&redirect_uri=");
    char redirect[1100];
    snprintf(redirect, sizeof(redirect), "%s/oauth/callback", cfg->signin.public_url);
    put_url_escaped(&b, redirect);
    wd_buf_puts(&b, "&state=");
    put_url_escaped(&b, state);
    wd_buf_puts(&b, "&nonce=");
    put_url_escaped(&b, nonce);
    wd_buf_puts(&b, "&code_challenge=");
    wd_buf_puts(&b, challenge);
    wd_buf_puts(&b, "&code_challenge_method=S256&response_mode=query");
    if (cfg->signin.prompt != NULL) {
        wd_buf_puts(&b, "&prompt=");
        put_url_escaped(&b, cfg->signin.prompt);
    }
    wd_buf_putc(&b, '\0');
    if (b.oom) {
        wd_buf_free(&b);
        return -1;
    }
    no_store(req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, h2o_strdup(&req->pool, b.p, b.n - 1).base,
                   b.n - 1);
    wd_respond(req, 302, "text/plain", "", 0);
    wd_buf_free(&b);
    return 0;
}

static void device_submit(struct wd_gateway *g, h2o_req_t *req, const struct wd_config *cfg, bool deny)
{
    char uc[32] = "";
    if (form_get(req->entity.base ? req->entity.base : "", req->entity.len, "user_code", uc, sizeof(uc)) < 0)
        uc[0] = '\0';
    if (!same_site(req, cfg)) {
        page(req, cfg, uc, "This form must be sent from Warden's own page.");
        return;
    }
    if (shared_store(cfg)) {
        struct wd_signin_exchange *x = new_x(req);
        if (x == NULL)
            return;
        wd_cstr_copy(x->user_code, sizeof(x->user_code), uc);
        grant_submit(g, req, deny ? WD_GOV_GRANT_DENY_CODE : WD_GOV_GRANT_VERIFY, x, deny ? finish_deny : finish_verify,
                     deny ? "signin.deny" : "signin.verify");
        return;
    }
    if (deny) {
        wd_signin_grant_deny_user_code(uc, strlen(uc), (int64_t)time(NULL));
        page(req, cfg, "", "The sign-in was denied. You can close this page.");
        return;
    }
    char auth_ep[1024];
    struct wd_signin_grant_view *v = calloc(1, sizeof(*v));
    if (v == NULL || wd_gov_signin_auth_endpoint(auth_ep, sizeof(auth_ep)) < 0) {
        free(v);
        page(req, cfg, uc, "The identity provider cannot be reached. Try again shortly.");
        return;
    }
    if (wd_signin_grant_verify(uc, strlen(uc), (int64_t)time(NULL), v) < 0) {
        OPENSSL_cleanse(v, sizeof(*v));
        free(v);
        page(req, cfg, uc, "That code is unknown or has expired.");
        return;
    }
    if (redirect_to_idp(req, cfg, auth_ep, v->state_param, v->nonce, v->pkce_verifier) < 0)
        page(req, cfg, uc, "Out of memory.");
    OPENSSL_cleanse(v, sizeof(*v));
    free(v);
}

static void not_running(h2o_req_t *req)
{
    static const char m[] = "<!doctype html><html><body><h1>Sign-in is not running</h1></body></html>\n";
    no_store(req);
    wd_respond(req, 503, "text/html; charset=utf-8", m, sizeof(m) - 1);
}

static void callback(struct wd_gateway *g, h2o_req_t *req, const struct wd_config *cfg, h2o_iovec_t query)
{
    char state[64], err[64];
    struct wd_signin_exchange *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        page(req, cfg, "", "Out of memory.");
        return;
    }
    bool have_state = form_get(query.base, query.len, "state", state, sizeof(state)) > 0;
    if (form_get(query.base, query.len, "error", err, sizeof(err)) > 0 || !have_state ||
        form_get(query.base, query.len, "code", x->code, sizeof(x->code)) <= 0) {
        if (have_state)
            wd_signin_grant_deny_state(state, strlen(state));
        free(x);
        page(req, cfg, "", "The sign-in did not complete. Run /login in Claude Code again.");
        return;
    }
    if (shared_store(cfg)) {
        wd_cstr_copy(x->state, sizeof(x->state), state);
        grant_submit(g, req, WD_GOV_GRANT_STATE, x, finish_state, "signin.callback");
        return;
    }
    struct wd_signin_grant_view *v = calloc(1, sizeof(*v));
    if (v == NULL || wd_signin_grant_by_state(state, strlen(state), (int64_t)time(NULL), v) < 0) {
        if (v != NULL)
            OPENSSL_cleanse(v, sizeof(*v));
        free(v);
        OPENSSL_cleanse(x, sizeof(*x));
        free(x);
        page(req, cfg, "", "This sign-in is unknown or has expired. Run /login in Claude Code again.");
        return;
    }
    wd_cstr_copy(x->state, sizeof(x->state), state);
    wd_cstr_copy(x->nonce, sizeof(x->nonce), v->nonce);
    wd_cstr_copy(x->verifier, sizeof(x->verifier), v->pkce_verifier);
    OPENSSL_cleanse(v, sizeof(*v));
    free(v);
    submit_step(g, req, WD_GOV_SIGNIN_EXCHANGE, x, sizeof(*x), NULL, "signin.callback", wd_gov_signin_submit,
                not_running);
}

static void token(struct wd_gateway *g, h2o_req_t *req)
{
    const char *body = req->entity.base ? req->entity.base : "";
    size_t n = req->entity.len;
    char gt[64];
    h2o_iovec_t ct = wd_call_header_req(req, "content-type");
    if (ct.base == NULL || ct.len < 33 || strncasecmp(ct.base, "application/x-www-form-urlencoded", 33) != 0 ||
        form_get(body, n, "grant_type", gt, sizeof(gt)) <= 0) {
        oauth_error(req, 400, "invalid_request");
        return;
    }
    if (strcmp(gt, "urn:ietf:params:oauth:grant-type:device_code") == 0) {
        char dc[64];
        if (form_get(body, n, "device_code", dc, sizeof(dc)) <= 0) {
            oauth_error(req, 400, "invalid_request");
            return;
        }
        if (shared_store(g->rt->cfg)) {
            struct wd_signin_exchange *x = new_x(req);
            if (x != NULL) {
                wd_cstr_copy(x->device_code, sizeof(x->device_code), dc);
                grant_submit(g, req, WD_GOV_GRANT_POLL, x, finish_poll, "signin.token");
            }
            OPENSSL_cleanse(dc, sizeof(dc));
            return;
        }
        struct wd_signin_grant_view *v = calloc(1, sizeof(*v));
        const char *err = "expired_token";
        int r = v ? wd_signin_grant_poll(dc, strlen(dc), (int64_t)time(NULL), v, &err) : 1;
        OPENSSL_cleanse(dc, sizeof(dc));
        if (r != 0) {
            free(v);
            oauth_error(req, strcmp(err, "slow_down") == 0 ? 429 : 400, err);
            return;
        }
        struct wd_buf b = {0};
        wd_buf_puts(&b, "{\"access_token\":");
        wd_json_put_string(&b, v->access_token, strlen(v->access_token));
        if (v->refresh_token[0] != '\0') {
            wd_buf_puts(&b, ",\"refresh_token\":");
            wd_json_put_string(&b, v->refresh_token, strlen(v->refresh_token));
        }
        wd_buf_printf(&b, ",\"token_type\":\"Bearer\",\"expires_in\":%lld}", (long long)v->expires_in);
        OPENSSL_cleanse(v, sizeof(*v));
        free(v);
        no_store(req);
        wd_respond(req, 200, "application/json", b.p ? b.p : "", b.n);
        if (b.p != NULL)
            OPENSSL_cleanse(b.p, b.n);
        wd_buf_free(&b);
        return;
    }
    if (strcmp(gt, "refresh_token") == 0) {
        struct wd_signin_refresh *r = calloc(1, sizeof(*r));
        if (r == NULL || form_get(body, n, "refresh_token", r->refresh_token, sizeof(r->refresh_token)) <= 0) {
            free(r);
            oauth_error(req, 400, "invalid_request");
            return;
        }
        submit_step(g, req, WD_GOV_SIGNIN_REFRESH, r, sizeof(*r), NULL, "signin.refresh", wd_gov_signin_submit,
                    unavailable);
        return;
    }
    oauth_error(req, 400, "unsupported_grant_type");
}

/* The caller behind a bearer (a session token, or any credential Warden takes): 0, else answered 401. */
static int bearer(struct wd_gateway *g, h2o_req_t *req, struct wd_principal *who)
{
    struct wd_str p = wd_gateway_presented(req);
    const struct wd_gov_key *k;
    const char *why;
    if (p.n > 0 && wd_gateway_principal(g, p, who, &k, &why) == 0)
        return 0;
    static const char m[] = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid token\"}}";
    header(req, "x-should-retry", "false");
    wd_respond(req, 401, "application/json", m, sizeof(m) - 1);
    return -1;
}

static bool in_groups(const struct wd_principal *who, char *const *groups, size_t n)
{
    /* who->groups holds the groups some binding named; the session principal keeps all of its groups there */
    const char *p = who->groups;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        for (size_t i = 0; i < n; i++)
            if (strlen(groups[i]) == l && memcmp(groups[i], p, l) == 0)
                return true;
        p += l + (c != NULL);
    }
    return false;
}

static void managed_settings(struct wd_gateway *g, h2o_req_t *req, const struct wd_config *cfg)
{
    struct wd_principal who;
    if (bearer(g, req, &who) < 0)
        return;
    header(req, "vary", "User-Agent");
    header(req, "x-cc-gateway-version", WARDEN_VERSION);
    const struct wd_signin_policy *pol = NULL;
    for (size_t i = 0; i < cfg->signin.npolicies && pol == NULL; i++) {
        const struct wd_signin_policy *p = &cfg->signin.policies[i];
        bool any = p->ngroups == 0 && p->email_domain == NULL;
        const char *at = strrchr(who.email, '@');
        if (any || (p->ngroups && in_groups(&who, p->groups, p->ngroups)) ||
            (p->email_domain && at && strcasecmp(at + 1, p->email_domain) == 0))
            pol = p;
    }
    if (pol == NULL) {
        no_store(req);
        wd_respond(req, 404, "text/plain", "no policy matched\n", 18);
        return;
    }
    struct wd_buf canon = {0};
    char *with_env = cfg->signin.telemetry_forward != NULL ? with_telemetry_env(cfg, pol->settings) : NULL;
    const char *settings = with_env != NULL ? with_env : pol->settings;
    int cr = wd_signin_canonical(settings, strlen(settings), &canon);
    free(with_env);
    if (cr < 0 || canon.oom) {
        wd_buf_free(&canon);
        wd_respond(req, 500, "text/plain", "settings\n", 9);
        return;
    }
    char cs[72], etag[80];
    wd_signin_checksum(canon.p, canon.n, cs);
    snprintf(etag, sizeof(etag), "\"%s\"", cs);
    h2o_iovec_t inm = wd_call_header_req(req, "if-none-match");
    if (inm.base != NULL && inm.len == strlen(etag) && memcmp(inm.base, etag, inm.len) == 0) {
        wd_buf_free(&canon);
        wd_respond(req, 304, NULL, "", 0);
        return;
    }
    struct wd_buf b = {0};
    wd_buf_printf(&b, "{\"uuid\":\"%s\",\"checksum\":\"%s\",\"settings\":", cs, cs);
    wd_buf_put(&b, canon.p, canon.n);
    wd_buf_putc(&b, '}');
    header(req, "etag", etag);
    wd_respond(req, 200, "application/json", b.p ? b.p : "", b.n);
    wd_buf_free(&b);
    wd_buf_free(&canon);
}

/* ---- the OTLP relay ---- */

#define RELAY_MAX_INFLIGHT 64     /* per worker: past it an export is dropped (and counted), never queued */
static _Thread_local int relay_inflight;
static _Atomic unsigned long long relay_dropped;

struct relay {
    char *body;
    struct wd_upstream_header hdrs[2];
    char ct[128], ce[32];
};

static void relay_done(void *ctx, enum wd_upstream_result res, const char *detail)
{
    struct relay *r = ctx;
    if (res != WD_UP_OK)
        atomic_fetch_add(&relay_dropped, 1);
    relay_inflight--;
    free(r->body);
    free(r);
}
static void relay_response(void *ctx, int status, long retry_after_s, const char *content_type) {}
static void relay_data(void *ctx, const char *p, size_t n) {}

/* Claude Code's telemetry, sent on to the configured collector without waiting for it: the client gets 200 at once
 * (a 404 would make it log an error at every flush). */
static void relay(struct wd_gateway *g, h2o_req_t *req, const struct wd_config *cfg, const char *signal)
{
    const char *fwd = cfg->signin.telemetry_forward;
    if (fwd != NULL && req->entity.len > 0 && relay_inflight < RELAY_MAX_INFLIGHT) {
        struct relay *r = calloc(1, sizeof(*r));
        char url[1200];
        size_t fl = strlen(fwd);
        while (fl > 0 && fwd[fl - 1] == '/')
            fl--;
        snprintf(url, sizeof(url), "%.*s/v1/%s", (int)fl, fwd, signal);
        if (r != NULL && (r->body = malloc(req->entity.len)) != NULL) {
            memcpy(r->body, req->entity.base, req->entity.len);
            h2o_iovec_t ct = wd_call_header_req(req, "content-type"), ce = wd_call_header_req(req, "content-encoding");
            size_t nh = 0;
            if (ct.base != NULL && ct.len < sizeof(r->ct) && !memchr(ct.base, '\r', ct.len) && !memchr(ct.base, '\n', ct.len)) {
                memcpy(r->ct, ct.base, ct.len);
                r->hdrs[nh++] = (struct wd_upstream_header){"content-type", r->ct};
            }
            if (ce.base != NULL && ce.len < sizeof(r->ce) && !memchr(ce.base, '\r', ce.len) && !memchr(ce.base, '\n', ce.len)) {
                memcpy(r->ce, ce.base, ce.len);
                r->hdrs[nh++] = (struct wd_upstream_header){"content-encoding", r->ce};
            }
            struct wd_upstream_req u = {.method = "POST", .url = url, .headers = r->hdrs, .nheaders = nh,
                                        .body = r->body, .body_len = req->entity.len, .connect_timeout_ms = 5000,
                                        .first_byte_timeout_ms = 10000, .idle_timeout_ms = 10000,
                                        .max_response_bytes = 65536, .max_error_bytes = 65536, .ctx = r,
                                        .on_response = relay_response, .on_data = relay_data, .on_done = relay_done};
            if (wd_upstream_start(g->up, &u) != NULL) {
                relay_inflight++;
                r = NULL;
            }
        }
        if (r != NULL) {
            free(r->body);
            free(r);
            atomic_fetch_add(&relay_dropped, 1);
        }
    } else if (fwd != NULL) {
        atomic_fetch_add(&relay_dropped, 1);
    }
    wd_respond(req, 200, "application/json", "", 0);
}

/* With a collector to relay to, the settings point Claude Code's exporter at Warden (an operator's own values of
 * these variables are kept). */
static char *with_telemetry_env(const struct wd_config *cfg, const char *settings)
{
    static const char *const names[] = {"CLAUDE_CODE_ENABLE_TELEMETRY", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
                                        "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                                        "OTEL_EXPORTER_OTLP_PROTOCOL"};
    const char *values[] = {"1", "otlp", "otlp", "otlp", cfg->signin.public_url, "http/protobuf"};
    struct json_object *o = json_tokener_parse(settings), *env = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    if (!json_object_object_get_ex(o, "env", &env) || !json_object_is_type(env, json_type_object)) {
        env = json_object_new_object();
        json_object_object_add(o, "env", env);
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!json_object_object_get_ex(env, names[i], NULL))
            json_object_object_add(env, names[i], json_object_new_string(values[i]));
    char *out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return out;
}

int wd_gateway_signin(struct wd_gateway *g, h2o_req_t *req)
{
    const struct wd_config *cfg = g->rt->cfg;
    if (!cfg->signin.enabled)
        return -1;
    h2o_iovec_t path = req->path_normalized;
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    h2o_iovec_t query = req->query_at != SIZE_MAX
                            ? h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1)
                            : h2o_iovec_init("", 0);
    if (get && route_is(path, "/.well-known/oauth-authorization-server"))
        discovery(req, cfg);
    else if (post && route_is(path, "/oauth/device_authorization"))
        device_authorization(g, req, cfg);
    else if (route_is(path, "/oauth/token") && post)
        token(g, req);
    else if (get && route_is(path, "/device")) {
        char uc[32] = "";
        if (form_get(query.base, query.len, "user_code", uc, sizeof(uc)) < 0)
            uc[0] = '\0';
        page(req, cfg, uc, NULL);
    } else if (post && route_is(path, "/device"))
        device_submit(g, req, cfg, false);
    else if (post && route_is(path, "/device/deny"))
        device_submit(g, req, cfg, true);
    else if (get && route_is(path, "/oauth/callback"))
        callback(g, req, cfg, query);
    else if (get && route_is(path, "/managed/settings"))
        managed_settings(g, req, cfg);
    else if (post && (route_is(path, "/v1/metrics") || route_is(path, "/v1/logs") || route_is(path, "/v1/traces"))) {
        /* Claude Code's telemetry: relayed to signin.telemetry_forward, or accepted and dropped */
        struct wd_principal who;
        if (bearer(g, req, &who) == 0)
            relay(g, req, cfg, path.base + path.len - (route_is(path, "/v1/logs") ? 4 : route_is(path, "/v1/traces") ? 6 : 7));
    } else
        return -1;
    return 0;
}
