/* The sign-in thread: Warden as a confidential OIDC client of one auth.oidc issuer, for Claude Code's gateway
 * sign-in (docs/claude-gateway-protocol.md). Jobs come from the workers (gateway/signin.c): the IdP's callback code
 * traded for tokens, and Claude Code's refresh grants; each ends with Warden's own session token. The ID token is
 * read from the IdP's token endpoint directly, over the connection Warden opened (OpenID Connect Core 3.1.3.7 lets
 * TLS stand for its signature there); its issuer, audience, nonce and expiry are still checked. */
#include "server/signin.h"

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
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authz/govern.h"
#include "authz/signin.h"
#include "lib/buf.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/log.h"
#include "net/fetch.h"
#include "net/http_form.h"
#include "secrets/secrets.h"

static struct {
    char issuer[512], tls_ca[512], client_id[256], redirect[1100], public_iss[1024];
    char claim_sub[64], claim_email[64], claim_name[64], claim_groups[64];
    char *basic;                      /* "Basic base64(id:secret)": the client's credentials */
    char token_ep[1024];
    bool discovered;
    int64_t ttl_s;
    struct wd_signin_keys *keys;
} S;

static pthread_t thread;
static bool running;
static _Atomic bool stopping;
static int wake_fd = -1;

static void wake(void)
{
    uint64_t one = 1;
    if (wake_fd >= 0 && write(wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        /* a full counter wakes the thread anyway */
    }
}

/* ---- the IdP ---- */

static void discover(void)
{
    char url[600], err[200];
    snprintf(url, sizeof(url), "%s/.well-known/openid-configuration", S.issuer);
    struct wd_buf b = {0};
    struct wd_fetch f = {.url = url, .tls_ca = S.tls_ca, .timeout_ms = 5000, .max_bytes = 256 * 1024};
    if (wd_fetch_get(&f, &b, err, sizeof(err)) < 0) {
        wd_logf(WD_LOG_WARN, "", "signin: the IdP's discovery document: %s", err);
        wd_buf_free(&b);
        return;
    }
    wd_buf_putc(&b, '\0');
    struct json_object *o = b.oom ? NULL : json_tokener_parse(b.p), *v;
    const char *iss = o && json_object_object_get_ex(o, "issuer", &v) ? json_object_get_string(v) : NULL;
    const char *ae = o && json_object_object_get_ex(o, "authorization_endpoint", &v) ? json_object_get_string(v) : NULL;
    const char *te = o && json_object_object_get_ex(o, "token_endpoint", &v) ? json_object_get_string(v) : NULL;
    if (iss == NULL || strcmp(iss, S.issuer) != 0 || ae == NULL || te == NULL || strlen(te) >= sizeof(S.token_ep) ||
        (strncmp(ae, "https://", 8) && strncmp(ae, "http://", 7)) || (strncmp(te, "https://", 8) && strncmp(te, "http://", 7))) {
        wd_log(WD_LOG_WARN, "signin: the IdP's discovery document lacks a matching issuer or its endpoints", "");
    } else {
        strcpy(S.token_ep, te);
        wd_gov_signin_set_auth_endpoint(ae);
        S.discovered = true;
        wd_log(WD_LOG_INFO, "signin: IdP endpoints discovered", "");
    }
    json_object_put(o);
    wd_buf_free(&b);
}

/* POSTs a form to the token endpoint with the client's credentials: the answer's body into body (wiped by the
 * caller) and its status. 0, or -1 (no answer). */
static int token_call(const char *const *fields, struct wd_buf *body, long *status)
{
    struct wd_buf form = {0};
    char err[200];
    *status = 0;
    if (wd_http_form_encode(fields, &form) < 0) {
        wd_buf_free(&form);
        return -1;
    }
    struct wd_fetch f = {.url = S.token_ep, .tls_ca = S.tls_ca, .timeout_ms = 10000, .max_bytes = 256 * 1024,
                         .post = form.p, .post_len = form.n, .method = "POST", .accept = "application/json",
                         .authorization = S.basic};
    int rc = wd_fetch_request(&f, body, status, err, sizeof(err));
    OPENSSL_cleanse(form.p, form.n);
    wd_buf_free(&form);
    if (rc != 0)
        wd_logf(WD_LOG_WARN, "", "signin: the IdP's token endpoint: %s", err);
    return rc;
}

static void body_free(struct wd_buf *b)
{
    if (b->p != NULL)
        OPENSSL_cleanse(b->p, b->n);
    wd_buf_free(b);
}

static struct wd_signin_idp idp_of(void)
{
    return (struct wd_signin_idp){.issuer = S.issuer, .client_id = S.client_id, .claim_sub = S.claim_sub,
                                  .claim_email = S.claim_email, .claim_name = S.claim_name,
                                  .claim_groups = S.claim_groups, .ttl_s = S.ttl_s};
}

/* ---- jobs ---- */

static void html(struct wd_gov_job *j, const char *title, const char *text)
{
    j->raw_answer = true;
    j->content_type = "text/html; charset=utf-8";
    j->status = 200;
    wd_buf_reset(&j->out);
    wd_buf_printf(&j->out,
                  "<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head>"
                  "<body><h1>%s</h1><p>%s</p></body></html>\n",
                  title, title, text);
}

static void oauth(struct wd_gov_job *j, int status, const char *error)
{
    j->raw_answer = true;
    j->content_type = "application/json";
    j->status = status;
    wd_buf_reset(&j->out);
    wd_buf_printf(&j->out, "{\"error\":\"%s\"}", error);
}

/* The session claims as the grant store keeps them (JSON: sub, email, name, groups). */
static int claims_json(const struct wd_signin_claims *c, char *out, size_t cap)
{
    struct wd_buf b = {0};
    wd_buf_puts(&b, "{\"sub\":");
    wd_json_put_string(&b, c->sub, strlen(c->sub));
    wd_buf_puts(&b, ",\"email\":");
    wd_json_put_string(&b, c->email, strlen(c->email));
    wd_buf_puts(&b, ",\"name\":");
    wd_json_put_string(&b, c->name, strlen(c->name));
    wd_buf_puts(&b, ",\"groups\":[");
    for (int i = 0; i < c->ngroups; i++) {
        if (i)
            wd_buf_putc(&b, ',');
        wd_json_put_string(&b, c->groups[i], strlen(c->groups[i]));
    }
    wd_buf_puts(&b, "]}");
    int r = !b.oom && b.n < cap ? (int)b.n : -1;
    if (r >= 0) {
        memcpy(out, b.p, b.n);
        out[b.n] = '\0';
    }
    wd_buf_free(&b);
    return r;
}

static void exchange(struct wd_gov_job *j, bool *handed_on)
{
    struct wd_signin_exchange *x = j->ext;
    const char *fields[] = {"grant_type", "authorization_code", "code", x->code, "redirect_uri", S.redirect,
                            "code_verifier", x->verifier, "client_id", S.client_id, NULL};
    long status;
    struct wd_buf body = {0};
    const char *why = NULL;
    struct wd_signin_claims c;
    struct wd_signin_idp idp = idp_of();
    char *rt = malloc(4096);
    if (rt == NULL)
        why = "out of memory";
    else if (token_call(fields, &body, &status) < 0)
        why = "the IdP's token endpoint did not answer";
    else if (status != 200)
        why = "the IdP refused the code";
    else if (wd_signin_read_token_answer(body.p, body.n, &idp, x->nonce, false, (int64_t)time(NULL), &c, rt, 4096,
                                         &why) == 0) {
        if (x->shared) {
            /* the grant is in the database: the governor records the approval (the claims, the IdP's refresh token
             * sealed), and any replica the developer's Claude Code polls mints the session */
            if (claims_json(&c, x->claims, sizeof(x->claims)) < 0 ||
                (rt[0] && wd_signin_seal(S.keys, rt, strlen(rt), x->sealed, sizeof(x->sealed)) < 0)) {
                why = "the IdP's answer is too large";
            } else {
                if (!rt[0])
                    x->sealed[0] = '\0';
                wd_logf(WD_LOG_INFO, "", "signin: %s signed in", c.sub);
                wd_cstr_copy(j->subject, sizeof(j->subject), c.sub);
                j->decision = "allow";
                j->kind = WD_GOV_GRANT_APPROVE;
                html(j, "Signed in", "You are signed in to Warden. Return to Claude Code.");
                if (wd_gov_submit(j) == 0)
                    *handed_on = true;
                else
                    html(j, "Sign-in failed", "Warden could not record the sign-in. Run /login in Claude Code again.");
            }
        } else {
            char *tok = malloc(8192);
            int n = tok ? wd_signin_mint(S.keys, S.public_iss, &c, tok, 8192) : -1;
            if (n < 0 || wd_signin_grant_approve(x->state, strlen(x->state), tok, rt, S.ttl_s, c.email) < 0)
                why = "the sign-in expired";
            else {
                wd_logf(WD_LOG_INFO, "", "signin: %s signed in", c.sub);
                wd_cstr_copy(j->subject, sizeof(j->subject), c.sub);
                j->decision = "allow";
                html(j, "Signed in", "You are signed in to Warden. Return to Claude Code.");
            }
            if (tok != NULL)
                OPENSSL_cleanse(tok, 8192);
            free(tok);
        }
    }
    body_free(&body);
    if (rt != NULL)
        OPENSSL_cleanse(rt, 4096);
    free(rt);
    if (why == NULL)
        return;
    wd_logf(WD_LOG_WARN, "", "signin: a sign-in failed: %s", why);
    j->decision = "deny";
    html(j, "Sign-in failed", "Warden could not complete the sign-in. Run /login in Claude Code again.");
    if (x->shared) {
        j->kind = WD_GOV_GRANT_DENY_STATE; /* the next poll gets access_denied */
        if (wd_gov_submit(j) == 0)
            *handed_on = true;
    } else {
        wd_signin_grant_deny_state(x->state, strlen(x->state));
    }
}

static void refresh(struct wd_gov_job *j)
{
    const struct wd_signin_refresh *r = j->ext;
    const char *fields[] = {"grant_type", "refresh_token", "refresh_token", r->refresh_token, "client_id",
                            S.client_id, NULL};
    long status;
    struct wd_buf body = {0};
    struct wd_signin_claims c;
    struct wd_signin_idp idp = idp_of();
    const char *why = "no answer";
    char *rt = malloc(4096), *tok = malloc(8192);
    if (rt == NULL || tok == NULL || token_call(fields, &body, &status) < 0) {
        oauth(j, 503, "temporarily_unavailable");
        j->decision = "error";
    } else if (status != 200) {
        bool dead = wd_signin_answer_error_is(body.p, body.n, "invalid_grant");
        oauth(j, dead ? 401 : 503, dead ? "invalid_grant" : "temporarily_unavailable");
        j->decision = dead ? "deny" : "error";
    } else if (wd_signin_read_token_answer(body.p, body.n, &idp, NULL, true, (int64_t)time(NULL), &c, rt, 4096, &why) <
               0) {
        wd_logf(WD_LOG_WARN, "", "signin: a refresh failed: %s", why);
        oauth(j, 503, "temporarily_unavailable");
        j->decision = "error";
    } else {
        int n = wd_signin_mint(S.keys, S.public_iss, &c, tok, 8192);
        if (n < 0) {
            oauth(j, 503, "temporarily_unavailable");
        } else {
            j->raw_answer = true;
            j->content_type = "application/json";
            j->status = 200;
            wd_buf_reset(&j->out);
            wd_buf_puts(&j->out, "{\"access_token\":");
            wd_json_put_string(&j->out, tok, (size_t)n);
            wd_buf_puts(&j->out, ",\"refresh_token\":");
            const char *keep = rt[0] ? rt : r->refresh_token; /* rotated by the IdP, or the one presented */
            wd_json_put_string(&j->out, keep, strlen(keep));
            wd_buf_printf(&j->out, ",\"token_type\":\"Bearer\",\"expires_in\":%lld}", (long long)S.ttl_s);
            wd_logf(WD_LOG_INFO, "", "signin: %s's session refreshed at the IdP", c.sub);
            wd_cstr_copy(j->subject, sizeof(j->subject), c.sub);
            j->decision = "allow";
        }
    }
    body_free(&body);
    if (rt != NULL)
        OPENSSL_cleanse(rt, 4096);
    if (tok != NULL)
        OPENSSL_cleanse(tok, 8192);
    free(rt);
    free(tok);
}

static void *signin_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "wd-signin");
    int64_t next_discovery = 0;
    while (!atomic_load(&stopping)) {
        int64_t now = (int64_t)time(NULL);
        if (!S.discovered && now >= next_discovery) {
            discover();
            next_discovery = now + 5;
        }
        struct wd_gov_job *jobs = wd_gov_signin_take();
        while (jobs != NULL) {
            struct wd_gov_job *j = jobs;
            jobs = j->next;
            if (!S.discovered)
                discover();
            if (!S.discovered) {
                if (j->kind == WD_GOV_SIGNIN_REFRESH)
                    oauth(j, 503, "temporarily_unavailable");
                else
                    html(j, "Sign-in unavailable", "The identity provider cannot be reached. Try again shortly.");
            } else if (j->kind == WD_GOV_SIGNIN_EXCHANGE) {
                bool handed_on = false;
                exchange(j, &handed_on);
                if (handed_on)
                    continue; /* the governor records it and answers */
            } else {
                refresh(j);
            }
            j->done(j);
        }
        wd_signin_grant_sweep(now);
        struct pollfd p = {.fd = wake_fd, .events = POLLIN};
        poll(&p, 1, S.discovered ? 1000 : 500);
        uint64_t c;
        if (read(wake_fd, &c, sizeof(c)) < 0) {
            /* the timeout woke us */
        }
    }
    struct wd_gov_job *jobs = wd_gov_signin_take();
    while (jobs != NULL) {
        struct wd_gov_job *j = jobs;
        jobs = j->next;
        oauth(j, 503, "temporarily_unavailable");
        j->done(j);
    }
    return NULL;
}

int wd_signin_start(const struct wd_config *cfg)
{
    const struct wd_signin_config *si = &cfg->signin;
    if (!si->enabled || running)
        return 0;
    const struct wd_oidc_issuer *is = NULL;
    for (size_t i = 0; i < cfg->noidc; i++)
        if (strcmp(cfg->oidc[i].name, si->issuer) == 0)
            is = &cfg->oidc[i];
    if (is == NULL)
        return -1;
    wd_cstr_copy(S.issuer, sizeof(S.issuer), is->issuer);
    wd_cstr_copy(S.tls_ca, sizeof(S.tls_ca), is->tls_ca ? is->tls_ca : "");
    wd_cstr_copy(S.client_id, sizeof(S.client_id), si->client_id);
    wd_cstr_copy(S.claim_sub, sizeof(S.claim_sub), is->claim_subject ? is->claim_subject : "sub");
    wd_cstr_copy(S.claim_email, sizeof(S.claim_email), is->claim_email ? is->claim_email : "email");
    wd_cstr_copy(S.claim_name, sizeof(S.claim_name), is->claim_name ? is->claim_name : "name");
    wd_cstr_copy(S.claim_groups, sizeof(S.claim_groups), is->claim_groups ? is->claim_groups : "groups");
    snprintf(S.redirect, sizeof(S.redirect), "%s/oauth/callback", si->public_url);
    wd_cstr_copy(S.public_iss, sizeof(S.public_iss), si->public_url);
    S.ttl_s = si->session_ttl_ms / 1000;

    /* the client's credentials (RFC 6749 2.3.1: each form-encoded, then Basic) */
    char *secret = malloc(WD_SECRET_MAX);
    int sn = secret ? wd_secret_resolve(si->client_secret, secret, WD_SECRET_MAX) : -1;
    if (sn <= 0) {
        wd_logf(WD_LOG_ERROR, "", "signin: cannot resolve client_secret (%s)", si->client_secret);
        free(secret);
        return -1;
    }
    struct wd_buf pair = {0};
    const char *f1[] = {"a", si->client_id, NULL}, *f2[] = {"a", secret, NULL};
    wd_http_form_encode(f1, &pair);
    wd_buf_putc(&pair, ':');
    size_t mark = pair.n;
    wd_http_form_encode(f2, &pair);
    /* drop the "a=" the encoder wrote before each value */
    memmove(pair.p, pair.p + 2, pair.n - 2);
    pair.n -= 2;
    memmove(pair.p + mark - 2, pair.p + mark, pair.n - mark + 2 - 2);
    pair.n -= 2;
    S.basic = malloc(6 + 4 * ((pair.n + 2) / 3) + 1);
    if (S.basic != NULL && !pair.oom) {
        memcpy(S.basic, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)S.basic + 6, (const unsigned char *)pair.p, (int)pair.n);
    }
    OPENSSL_cleanse(secret, WD_SECRET_MAX);
    free(secret);
    if (pair.p != NULL)
        OPENSSL_cleanse(pair.p, pair.n);
    wd_buf_free(&pair);
    if (S.basic == NULL)
        return -1;

    /* the session keys */
    const char *secs[8];
    size_t lens[8], n = 0;
    char *bufs[8] = {0};
    for (size_t i = 0; i < si->nsession_secrets && n < 8; i++) {
        bufs[n] = malloc(WD_SECRET_MAX);
        int l = bufs[n] ? wd_secret_resolve(si->session_secrets[i], bufs[n], WD_SECRET_MAX) : -1;
        if (l < 32) {
            wd_logf(WD_LOG_ERROR, "", "signin: session_secret %s cannot be resolved or is shorter than 32 bytes",
                    si->session_secrets[i]);
            for (size_t k = 0; k <= n; k++) {
                if (bufs[k] != NULL)
                    OPENSSL_cleanse(bufs[k], WD_SECRET_MAX);
                free(bufs[k]);
            }
            return -1;
        }
        secs[n] = bufs[n];
        lens[n++] = (size_t)l;
    }
    S.keys = wd_signin_keys_new(secs, lens, n);
    for (size_t k = 0; k < n; k++) {
        OPENSSL_cleanse(bufs[k], WD_SECRET_MAX);
        free(bufs[k]);
    }
    if (S.keys == NULL)
        return -1;
    wd_gov_signin_set_keys(S.keys);
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0)
        return -1;
    atomic_store(&stopping, false);
    wd_gov_signin_enable(true, wake);
    if (pthread_create(&thread, NULL, signin_main, NULL) != 0) {
        wd_gov_signin_enable(false, NULL);
        return -1;
    }
    running = true;
    return 0;
}

void wd_signin_stop(void)
{
    if (!running)
        return;
    wd_gov_signin_enable(false, NULL);
    atomic_store(&stopping, true);
    wake();
    pthread_join(thread, NULL);
    running = false;
    close(wake_fd);
    wake_fd = -1;
    if (S.basic != NULL) {
        OPENSSL_cleanse(S.basic, strlen(S.basic));
        free(S.basic);
        S.basic = NULL;
    }
    wd_gov_signin_set_auth_endpoint(NULL);
    wd_signin_grants_free();
    /* the keys outlive the workers' last verification: freed last (wd_signin_free_keys) */
}

void wd_signin_free_keys(void)
{
    wd_gov_signin_set_keys(NULL);
    wd_signin_keys_free(S.keys);
    S.keys = NULL;
}
