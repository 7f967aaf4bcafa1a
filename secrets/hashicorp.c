/* vault:// references: HashiCorp Vault's KV v2 (or v1) read with a token Warden holds in locked memory,
 * obtained from a token reference, an AppRole login or a Kubernetes service-account login, renewed past 2/3 of
 * its lease and replaced when Vault refuses it. Runs on the secret cache's resolver thread only. */
#include "secrets/hashicorp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/json.h"
#include "lib/log.h"
#include "net/fetch.h"
#include "secrets/backend.h"
#include "secrets/secrets.h"

/* ---- the pure half: Vault's answers and the requests ---- */

size_t wd_vault_read_errors(const char *body, size_t n, char *out, size_t cap)
{
    out[0] = '\0';
    struct wd_json j = {0};
    if (body == NULL || wd_json_parse(&j, body, n) < 0) {
        wd_json_free(&j);
        return 0;
    }
    int arr = wd_json_get(&j, 0, "errors");
    size_t w = 0;
    if (wd_json_type(&j, arr) == WD_J_ARR) {
        WD_JSON_ARR_EACH(&j, arr, e)
        {
            if (j.t[e].type != WD_J_STR)
                continue;
            struct wd_str raw = wd_json_raw(&j, (int)e);
            struct wd_buf b = {0};
            if (wd_json_unescape(&b, raw.p, raw.n) < 0 || b.oom) {
                wd_buf_free(&b);
                continue;
            }
            /* trimmed: Vault's multi-errors read "1 error occurred:\n\t* ...\n\n" */
            size_t s = 0, t = b.n;
            while (s < t && (unsigned char)b.p[s] <= ' ')
                s++;
            while (t > s && (unsigned char)b.p[t - 1] <= ' ')
                t--;
            if (t > s && w + 2 < cap && w > 0) {
                out[w++] = ';';
                out[w++] = ' ';
            }
            for (size_t i = s; i < t && w + 1 < cap; i++) {
                unsigned char c = (unsigned char)b.p[i];
                out[w++] = (char)(c < ' ' || c == 0x7f ? ' ' : c);
            }
            wd_buf_free(&b);
        }
    }
    out[w] = '\0';
    wd_json_free(&j);
    return w;
}

static const char *jtype_name(int t)
{
    switch (t) {
    case WD_J_OBJ: return "an object";
    case WD_J_ARR: return "an array";
    case WD_J_STR: return "a string";
    case WD_J_NUM: return "a number";
    case WD_J_TRUE:
    case WD_J_FALSE: return "a boolean";
    case WD_J_NULL: return "null";
    default: return "missing";
    }
}

/* String token i decoded into out[cap] (NUL-terminated) without a heap copy: the decoded form is never longer
 * than the escaped one, so out itself is the buffer. Returns the length, -1 when it does not fit, -2 when it
 * does not decode. */
static int copy_string(const struct wd_json *j, int i, char *out, size_t cap)
{
    struct wd_str raw = wd_json_raw(j, i);
    if (cap == 0 || raw.n + 1 > cap)
        return -1;
    if (!j->t[i].escaped) {
        memcpy(out, raw.p, raw.n);
        out[raw.n] = '\0';
        return (int)raw.n;
    }
    struct wd_buf b = {.p = out, .n = 0, .cap = cap - 1};
    if (wd_json_unescape(&b, raw.p, raw.n) < 0 || b.oom || b.p != out) {
        OPENSSL_cleanse(out, cap);
        return -2;
    }
    out[b.n] = '\0';
    return (int)b.n;
}

static int parse_answer(struct wd_json *j, const char *body, size_t n, const char *what, char *why, size_t whycap)
{
    if (body == NULL || n == 0 || wd_json_parse(j, body, n) < 0) {
        snprintf(why, whycap, "the %s answer is not JSON", what);
        return -1;
    }
    if (wd_json_type(j, 0) != WD_J_OBJ) {
        snprintf(why, whycap, "the %s answer is not a JSON object", what);
        return -1;
    }
    return 0;
}

/* An integer member >= 0 of obj (a missing one is 0 when optional). */
static int read_seconds(const struct wd_json *j, int obj, const char *key, bool optional, int64_t *out,
                        const char *what, char *why, size_t whycap)
{
    int v = wd_json_get(j, obj, key);
    *out = 0;
    if (v < 0 && optional)
        return 0;
    if (wd_json_i64(j, v, out) < 0 || *out < 0) {
        snprintf(why, whycap, "the %s answer's %s is %s, not a whole number of seconds", what, key,
                 v < 0 ? "missing" : jtype_name(wd_json_type(j, v)));
        *out = 0;
        return -1;
    }
    return 0;
}

static int read_bool(const struct wd_json *j, int obj, const char *key, bool *out, const char *what, char *why,
                     size_t whycap)
{
    int v = wd_json_get(j, obj, key);
    int t = wd_json_type(j, v);
    if (t != WD_J_TRUE && t != WD_J_FALSE) {
        snprintf(why, whycap, "the %s answer's %s is %s, not a boolean", what, key, v < 0 ? "missing" : jtype_name(t));
        return -1;
    }
    *out = t == WD_J_TRUE;
    return 0;
}

int wd_vault_read_kv(const char *body, size_t n, unsigned kv_version, const char *field, char *out, size_t cap,
                     int64_t *lease_s, char *why, size_t whycap)
{
    struct wd_json j = {0};
    int rc = -1;
    *lease_s = 0;
    if (cap > 0)
        out[0] = '\0';
    if (parse_answer(&j, body, n, "KV read", why, whycap) < 0)
        goto done;
    if (read_seconds(&j, 0, "lease_duration", true, lease_s, "KV read", why, whycap) < 0)
        goto done;
    int data = wd_json_get(&j, 0, "data");
    if (wd_json_type(&j, data) != WD_J_OBJ) {
        snprintf(why, whycap, "the KV read answer's data is %s, not an object", jtype_name(wd_json_type(&j, data)));
        goto done;
    }
    if (kv_version != 1) {
        int inner = wd_json_get(&j, data, "data");
        int t = wd_json_type(&j, inner);
        if (t == WD_J_NULL) {
            snprintf(why, whycap, "the secret's latest version is deleted or destroyed");
            goto done;
        }
        if (t != WD_J_OBJ) {
            snprintf(why, whycap, "the KV v2 answer's data.data is %s, not an object (is the mount KV v1? set "
                                  "secrets.vault.kv_version: 1)", jtype_name(t));
            goto done;
        }
        data = inner;
    }
    int val = -1;
    if (field != NULL && field[0] != '\0') {
        val = wd_json_get(&j, data, field);
        if (val < 0) {
            snprintf(why, whycap, "the secret has no key \"%.100s\"", field);
            goto done;
        }
    } else {
        if (j.t[data].size != 1) {
            snprintf(why, whycap, "the secret has %u keys: name one with #field", j.t[data].size);
            goto done;
        }
        val = data + 2;
    }
    int t = wd_json_type(&j, val);
    int len;
    if (t == WD_J_STR) {
        len = copy_string(&j, val, out, cap);
        if (len == -2) {
            snprintf(why, whycap, "the key's value does not decode");
            goto done;
        }
    } else if (t == WD_J_NUM) {
        struct wd_str raw = wd_json_raw(&j, val);
        len = raw.n + 1 <= cap ? (int)raw.n : -1;
        if (len >= 0) {
            memcpy(out, raw.p, raw.n);
            out[raw.n] = '\0';
        }
    } else {
        snprintf(why, whycap, "the key's value is %s, not a string", jtype_name(t));
        goto done;
    }
    if (len < 0) {
        snprintf(why, whycap, "the value is longer than %zu bytes", cap > 0 ? cap - 1 : 0);
        goto done;
    }
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    if (len == 0) {
        snprintf(why, whycap, "the value is empty");
        goto done;
    }
    if (memchr(out, '\0', (size_t)len) != NULL) {
        OPENSSL_cleanse(out, (size_t)len);
        out[0] = '\0';
        snprintf(why, whycap, "the value holds a NUL character");
        goto done;
    }
    rc = len;
done:
    wd_json_free(&j);
    return rc;
}

/* A token goes into a header line: printable ASCII without spaces only. */
static bool token_chars_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

int wd_vault_read_auth(const char *body, size_t n, char *token, size_t cap, struct wd_vault_token_info *ti,
                       char *why, size_t whycap)
{
    struct wd_json j = {0};
    int rc = -1;
    memset(ti, 0, sizeof(*ti));
    if (parse_answer(&j, body, n, "login", why, whycap) < 0)
        goto done;
    int auth = wd_json_get(&j, 0, "auth");
    if (wd_json_type(&j, auth) != WD_J_OBJ) {
        snprintf(why, whycap, "the login answer's auth is %s, not an object", jtype_name(wd_json_type(&j, auth)));
        goto done;
    }
    if (read_seconds(&j, auth, "lease_duration", false, &ti->lease_s, "login", why, whycap) < 0 ||
        read_bool(&j, auth, "renewable", &ti->renewable, "login", why, whycap) < 0)
        goto done;
    if (token != NULL) {
        int tk = wd_json_get(&j, auth, "client_token");
        if (wd_json_type(&j, tk) != WD_J_STR) {
            snprintf(why, whycap, "the login answer's auth.client_token is %s, not a string",
                     tk < 0 ? "missing" : jtype_name(wd_json_type(&j, tk)));
            goto done;
        }
        int len = copy_string(&j, tk, token, cap);
        if (len <= 0 || !token_chars_ok(token, (size_t)len)) {
            OPENSSL_cleanse(token, cap);
            snprintf(why, whycap, "the login answer's auth.client_token is %s",
                     len == 0 ? "empty" : len == -1 ? "too long" : "not a usable token");
            goto done;
        }
    }
    rc = 0;
done:
    wd_json_free(&j);
    return rc;
}

int wd_vault_read_lookup(const char *body, size_t n, struct wd_vault_token_info *ti, char *why, size_t whycap)
{
    struct wd_json j = {0};
    int rc = -1;
    memset(ti, 0, sizeof(*ti));
    if (parse_answer(&j, body, n, "lookup-self", why, whycap) < 0)
        goto done;
    int data = wd_json_get(&j, 0, "data");
    if (wd_json_type(&j, data) != WD_J_OBJ) {
        snprintf(why, whycap, "the lookup-self answer's data is %s, not an object", jtype_name(wd_json_type(&j, data)));
        goto done;
    }
    if (read_seconds(&j, data, "ttl", false, &ti->lease_s, "lookup-self", why, whycap) < 0 ||
        read_bool(&j, data, "renewable", &ti->renewable, "lookup-self", why, whycap) < 0 ||
        read_seconds(&j, data, "creation_ttl", true, &ti->creation_s, "lookup-self", why, whycap) < 0)
        goto done;
    rc = 0;
done:
    wd_json_free(&j);
    return rc;
}

int wd_vault_kv_url(const char *address, const struct wd_ref_vault *r, unsigned kv_version, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/v1/%s/%s%s", address, r->mount, kv_version == 1 ? "" : "data/", r->path);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* s as a JSON string literal at out[w], or -1 when it does not fit */
static int put_json_string(char *out, size_t cap, size_t w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (w >= cap)
        return -1;
    out[w++] = '"';
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)c;
        } else if (c < ' ' || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        } else {
            esc[k++] = (char)c;
        }
        if (w + k >= cap)
            return -1;
        memcpy(out + w, esc, k);
        w += k;
        OPENSSL_cleanse(esc, sizeof(esc));
    }
    if (w + 1 >= cap)
        return -1;
    out[w++] = '"';
    out[w] = '\0';
    return (int)w;
}

int wd_vault_login_body(enum wd_vault_auth auth, const char *a, const char *b, char *out, size_t cap)
{
    const char *ka, *kb;
    if (auth == WD_VAULT_AUTH_APPROLE)
        ka = "{\"role_id\":", kb = ",\"secret_id\":";
    else if (auth == WD_VAULT_AUTH_KUBERNETES)
        ka = "{\"role\":", kb = ",\"jwt\":";
    else
        return -1;
    size_t w = strlen(ka);
    if (w + 1 > cap)
        return -1;
    memcpy(out, ka, w);
    int r = put_json_string(out, cap, w, a);
    if (r < 0 || (size_t)r + strlen(kb) + 1 > cap)
        goto fail;
    w = (size_t)r;
    memcpy(out + w, kb, strlen(kb));
    w += strlen(kb);
    r = put_json_string(out, cap, w, b);
    if (r < 0 || (size_t)r + 2 > cap)
        goto fail;
    w = (size_t)r;
    out[w++] = '}';
    out[w] = '\0';
    return (int)w;
fail:
    OPENSSL_cleanse(out, cap);
    return -1;
}

enum wd_vault_step wd_vault_plan(const struct wd_vault_token_state *s, int64_t now_ms)
{
    if (!s->have)
        return WD_VAULT_LOGIN;
    if (s->lease_ms <= 0)
        return WD_VAULT_USE;
    int64_t age = now_ms - s->got_ms;
    if (age >= s->lease_ms)
        return WD_VAULT_LOGIN; /* expired: Vault renews no dead token */
    if (age * 3 >= s->lease_ms * 2)
        return s->renewable && !s->capped ? WD_VAULT_RENEW : WD_VAULT_LOGIN;
    return WD_VAULT_USE;
}

int64_t wd_vault_value_ttl(const struct wd_vault_token_state *s, int64_t now_ms, int64_t ttl_ms)
{
    if (s->have && s->lease_ms > 0) {
        int64_t due = s->got_ms + s->lease_ms / 4 * 3;
        int64_t cap = (due - now_ms) / 8 * 10;
        if (cap < ttl_ms)
            ttl_ms = cap;
    }
    return ttl_ms < 500 ? 500 : ttl_ms;
}

/* ---- the backend: its token and the HTTP calls ---- */

#define DEFAULT_TTL_MS 300000
#define DEFAULT_TIMEOUT_MS 10000
#define JWT_MAX 16384
#define CRED_MAX 1024
#define BODY_MAX (2 * CRED_MAX + JWT_MAX + 64)
#define DEFAULT_JWT_FILE "/var/run/secrets/kubernetes.io/serviceaccount/token"

static struct {
    char *token;                       /* locked memory, WD_VAULT_TOKEN_MAX bytes; NULL until the first use */
    struct wd_vault_token_state st;    /* where the token stands */
    int64_t lease0_s;                  /* its lease when obtained: what a renewal asks for again */
} g;

/* The settings in force: the config, else the variables Vault's own tools read. */
struct eff {
    char address[512];
    const char *ns;
    const char *tls_ca;
    unsigned kv_version;
    int64_t ttl_ms;
    unsigned timeout_ms;
    enum wd_vault_auth auth;
    const struct wd_vault_config *c;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *or_env(const char *v, const char *env)
{
    if (v != NULL && v[0] != '\0')
        return v;
    v = getenv(env);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int eff_load(const struct wd_secrets_config *cfg, struct eff *e, char *why, size_t whycap)
{
    const struct wd_vault_config *c = &cfg->vault;
    memset(e, 0, sizeof(*e));
    e->c = c;
    const char *addr = or_env(c->address, "VAULT_ADDR");
    if (addr == NULL) {
        snprintf(why, whycap, "vault: no address (secrets.vault.address or VAULT_ADDR)");
        return -1;
    }
    size_t n = strlen(addr);
    while (n > 0 && addr[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof(e->address) || (strncmp(addr, "https://", 8) && strncmp(addr, "http://", 7))) {
        snprintf(why, whycap, "vault: the address is not an http(s) URL of at most %zu bytes", sizeof(e->address) - 1);
        return -1;
    }
    memcpy(e->address, addr, n);
    e->address[n] = '\0';
    e->ns = or_env(c->vault_namespace, "VAULT_NAMESPACE");
    if (e->ns != NULL && (strlen(e->ns) > 256 || !token_chars_ok(e->ns, strlen(e->ns)))) {
        snprintf(why, whycap, "vault: the namespace is longer than 256 bytes or has a space or control character");
        return -1;
    }
    e->tls_ca = or_env(c->tls_ca, "VAULT_CACERT");
    e->kv_version = c->kv_version == 1 ? 1 : 2;
    e->ttl_ms = c->ttl_ms ? (int64_t)c->ttl_ms : DEFAULT_TTL_MS;
    e->timeout_ms = c->timeout_ms ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    e->auth = c->auth;
    return 0;
}

static const char *auth_name(enum wd_vault_auth a)
{
    return a == WD_VAULT_AUTH_APPROLE ? "approle" : a == WD_VAULT_AUTH_KUBERNETES ? "kubernetes" : "token";
}

/* An answer lives in locked memory of a fixed size, so neither curl's writes nor a realloc leave pieces of a
 * secret or a token in the heap. */
struct answer {
    struct wd_buf b;
    long status;
};

static void answer_free(struct answer *a)
{
    if (a->b.p != NULL)
        wd_secret_mem_free(a->b.p, WD_VAULT_ANSWER_MAX + 1);
    memset(a, 0, sizeof(*a));
}

/* One request to Vault: path below /v1/, with the held token when with_token. 0 with a->status set (any
 * status), or -1 with why ("vault: STEP: transport error"). */
static int call(const struct eff *e, const char *step, const char *method, const char *url, const char *body,
                size_t body_len, const char *token, struct answer *a, char *why, size_t whycap)
{
    memset(a, 0, sizeof(*a));
    a->b.p = wd_secret_mem_alloc(WD_VAULT_ANSWER_MAX + 1);
    if (a->b.p == NULL) {
        snprintf(why, whycap, "vault: %s: out of memory", step);
        return -1;
    }
    a->b.cap = WD_VAULT_ANSWER_MAX;
    char *tok_hdr = NULL;
    size_t tok_hdr_len = 0;
    const char *hdrs[4];
    size_t nh = 0;
    char ns_hdr[300];
    if (token != NULL) {
        tok_hdr_len = strlen(token) + sizeof("X-Vault-Token: ");
        tok_hdr = wd_secret_mem_alloc(tok_hdr_len);
        if (tok_hdr == NULL) {
            answer_free(a);
            snprintf(why, whycap, "vault: %s: out of memory", step);
            return -1;
        }
        snprintf(tok_hdr, tok_hdr_len, "X-Vault-Token: %s", token);
        hdrs[nh++] = tok_hdr;
    }
    if (e->ns != NULL) {
        snprintf(ns_hdr, sizeof(ns_hdr), "X-Vault-Namespace: %s", e->ns);
        hdrs[nh++] = ns_hdr;
    }
    hdrs[nh++] = "X-Vault-Request: true"; /* what Vault's own clients send (CSRF guard on the UI's API) */
    hdrs[nh] = NULL;
    struct wd_fetch f = {
        .url = url,
        .tls_ca = e->tls_ca,
        .timeout_ms = e->timeout_ms,
        .max_bytes = WD_VAULT_ANSWER_MAX,
        .post = body,
        .post_len = body_len,
        .method = method,
        .accept = "application/json",
        .content_type = body != NULL ? "application/json" : NULL,
        .headers = hdrs,
    };
    char err[200];
    int rc = wd_fetch_request(&f, &a->b, &a->status, err, sizeof(err));
    if (tok_hdr != NULL)
        wd_secret_mem_free(tok_hdr, tok_hdr_len);
    if (rc < 0 || a->b.oom) {
        snprintf(why, whycap, "vault: %s: %s", step, rc < 0 ? err : "out of memory");
        answer_free(a);
        return -1;
    }
    a->b.p[a->b.n] = '\0';
    return 0;
}

/* why for a non-2xx answer: the status and Vault's errors */
static void http_why(const char *step, const struct answer *a, char *why, size_t whycap)
{
    char errs[160];
    size_t n = wd_vault_read_errors(a->b.p, a->b.n, errs, sizeof(errs));
    if (n > 0)
        snprintf(why, whycap, "vault: %s: HTTP %ld %s", step, a->status, errs);
    else if (a->status == 404)
        snprintf(why, whycap, "vault: %s: HTTP 404 (no such secret, or no such mount)", step);
    else
        snprintf(why, whycap, "vault: %s: HTTP %ld", step, a->status);
}

static void token_drop(void)
{
    if (g.token != NULL)
        OPENSSL_cleanse(g.token, WD_VAULT_TOKEN_MAX);
    memset(&g.st, 0, sizeof(g.st));
    g.lease0_s = 0;
}

static void token_set(const struct wd_vault_token_info *ti)
{
    g.st.have = true;
    g.st.got_ms = mono_ms();
    g.st.lease_ms = ti->lease_s * 1000;
    g.st.renewable = ti->renewable;
    g.st.capped = false;
    g.lease0_s = ti->lease_s;
}

/* A credential reference (env:// or file://) into locked memory buf[cap]: its length, or -1 with why. */
static int read_cred(const char *what, const char *ref, char *buf, size_t cap, char *why, size_t whycap)
{
    if (ref == NULL || ref[0] == '\0') {
        snprintf(why, whycap, "vault: auth: no %s configured", what);
        return -1;
    }
    if (strncmp(ref, "env://", 6) != 0 && strncmp(ref, "file://", 7) != 0) {
        snprintf(why, whycap, "vault: auth: the %s must be an env:// or file:// reference", what);
        return -1;
    }
    int n = wd_secret_resolve(ref, buf, cap);
    if (n <= 0) {
        OPENSSL_cleanse(buf, cap);
        snprintf(why, whycap, "vault: auth: cannot read the %s from %.200s", what, ref);
        return -1;
    }
    return n;
}

/* The service-account token, read again at each login (the kubelet rotates it). */
static int read_jwt(const char *path, char *buf, size_t cap, char *why, size_t whycap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whycap, "vault: login kubernetes: cannot open %.200s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            close(fd);
            OPENSSL_cleanse(buf, cap);
            snprintf(why, whycap, "vault: login kubernetes: %.200s is longer than %zu bytes", path, cap - 2);
            return -1;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            close(fd);
            OPENSSL_cleanse(buf, cap);
            snprintf(why, whycap, "vault: login kubernetes: cannot read %.200s: %s", path, strerror(err));
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    while (n > 0 && (unsigned char)buf[n - 1] <= ' ')
        n--;
    buf[n] = '\0';
    if (n == 0) {
        snprintf(why, whycap, "vault: login kubernetes: %.200s is empty", path);
        return -1;
    }
    return (int)n;
}

/* auth token: the token from its reference, checked (and its TTL learnt) with lookup-self. */
static int load_token(const struct eff *e, char *why, size_t whycap)
{
    const char *ref = e->c->token != NULL && e->c->token[0] != '\0' ? e->c->token : "env://VAULT_TOKEN";
    int n = read_cred("token", ref, g.token, WD_VAULT_TOKEN_MAX, why, whycap);
    if (n < 0)
        return -1;
    if (!token_chars_ok(g.token, (size_t)n)) {
        token_drop();
        snprintf(why, whycap, "vault: auth: the token from %.200s has a space or control character", ref);
        return -1;
    }
    char url[600];
    snprintf(url, sizeof(url), "%s/v1/auth/token/lookup-self", e->address);
    struct answer a;
    if (call(e, "token lookup-self", "GET", url, NULL, 0, g.token, &a, why, whycap) < 0) {
        token_drop();
        return -1;
    }
    int rc = -1;
    struct wd_vault_token_info ti;
    char w2[200];
    if (a.status != 200) {
        http_why("token lookup-self", &a, why, whycap);
    } else if (wd_vault_read_lookup(a.b.p, a.b.n, &ti, w2, sizeof(w2)) < 0) {
        snprintf(why, whycap, "vault: token lookup-self: %s", w2);
    } else {
        token_set(&ti);
        if (ti.creation_s > ti.lease_s)
            g.lease0_s = ti.creation_s; /* a renewal asks for the TTL the token was made with, not what is left */
        wd_logf(WD_LOG_INFO, "", "vault: token from %.200s accepted (%s, %lld s left)", ref,
                ti.renewable ? "renewable" : "not renewable", (long long)ti.lease_s);
        rc = 0;
    }
    answer_free(&a);
    if (rc < 0)
        token_drop();
    return rc;
}

/* auth approle / kubernetes: a login, its token kept. */
static int login(const struct eff *e, char *why, size_t whycap)
{
    const char *name = auth_name(e->auth);
    const char *mount = e->c->auth_mount != NULL && e->c->auth_mount[0] != '\0' ? e->c->auth_mount : name;
    char step[80];
    snprintf(step, sizeof(step), "login %s", name);
    /* the credentials and the body in one locked block: role_id/role, secret_id/jwt, the body */
    size_t blk = 2 * CRED_MAX + JWT_MAX + BODY_MAX;
    char *m = wd_secret_mem_alloc(blk);
    if (m == NULL) {
        snprintf(why, whycap, "vault: %s: out of memory", step);
        return -1;
    }
    char *a = m, *b = m + CRED_MAX, *body = m + CRED_MAX + JWT_MAX + CRED_MAX;
    int rc = -1;
    if (e->auth == WD_VAULT_AUTH_APPROLE) {
        if (read_cred("role_id", e->c->role_id, a, CRED_MAX, why, whycap) < 0 ||
            read_cred("secret_id", e->c->secret_id, b, CRED_MAX + JWT_MAX, why, whycap) < 0)
            goto out;
    } else {
        if (e->c->role == NULL || e->c->role[0] == '\0' || strlen(e->c->role) >= CRED_MAX) {
            snprintf(why, whycap, "vault: %s: no role configured (secrets.vault.role)", step);
            goto out;
        }
        memcpy(a, e->c->role, strlen(e->c->role) + 1);
        const char *jf = e->c->jwt_file != NULL && e->c->jwt_file[0] != '\0' ? e->c->jwt_file : DEFAULT_JWT_FILE;
        if (read_jwt(jf, b, CRED_MAX + JWT_MAX, why, whycap) < 0)
            goto out;
    }
    int bn = wd_vault_login_body(e->auth, a, b, body, BODY_MAX);
    if (bn < 0) {
        snprintf(why, whycap, "vault: %s: the credentials are too long", step);
        goto out;
    }
    char url[700];
    if ((size_t)snprintf(url, sizeof(url), "%s/v1/auth/%s/login", e->address, mount) >= sizeof(url)) {
        snprintf(why, whycap, "vault: %s: the auth mount is too long", step);
        goto out;
    }
    struct answer ans;
    if (call(e, step, "POST", url, body, (size_t)bn, NULL, &ans, why, whycap) < 0)
        goto out;
    struct wd_vault_token_info ti;
    char w2[200];
    token_drop();
    if (ans.status != 200) {
        http_why(step, &ans, why, whycap);
    } else if (wd_vault_read_auth(ans.b.p, ans.b.n, g.token, WD_VAULT_TOKEN_MAX, &ti, w2, sizeof(w2)) < 0) {
        snprintf(why, whycap, "vault: %s: %s", step, w2);
    } else {
        token_set(&ti);
        wd_logf(WD_LOG_INFO, "", "vault: logged in (%s at auth/%.100s), token lease %lld s, %s", name, mount,
                (long long)ti.lease_s, ti.renewable ? "renewable" : "not renewable");
        rc = 0;
    }
    answer_free(&ans);
out:
    wd_secret_mem_free(m, blk);
    return rc;
}

/* renew-self for the lease it had when obtained; a shorter answer means its max TTL is near. */
static int renew(const struct eff *e, char *why, size_t whycap)
{
    char url[600], body[64];
    snprintf(url, sizeof(url), "%s/v1/auth/token/renew-self", e->address);
    int bn = snprintf(body, sizeof(body), "{\"increment\":%lld}", (long long)g.lease0_s);
    struct answer a;
    if (call(e, "token renew-self", "POST", url, body, (size_t)bn, g.token, &a, why, whycap) < 0)
        return -1;
    struct wd_vault_token_info ti;
    char w2[200];
    int rc = -1;
    if (a.status != 200) {
        http_why("token renew-self", &a, why, whycap);
    } else if (wd_vault_read_auth(a.b.p, a.b.n, NULL, 0, &ti, w2, sizeof(w2)) < 0) {
        snprintf(why, whycap, "vault: token renew-self: %s", w2);
    } else {
        int64_t asked = g.lease0_s;
        g.st.got_ms = mono_ms();
        g.st.lease_ms = ti.lease_s * 1000;
        g.st.renewable = ti.renewable;
        g.st.capped = ti.lease_s < asked;
        wd_logf(WD_LOG_INFO, "", "vault: token renewed, lease %lld s%s", (long long)ti.lease_s,
                g.st.capped ? " (its max TTL is near: the next time, a new login)" : "");
        rc = 0;
    }
    answer_free(&a);
    return rc;
}

/* A token good to use now: *fresh when it was obtained by this call (a refusal then is not its age). */
static int ensure_token(const struct eff *e, bool *fresh, char *why, size_t whycap)
{
    *fresh = false;
    if (g.token == NULL) {
        g.token = wd_secret_mem_alloc(WD_VAULT_TOKEN_MAX);
        if (g.token == NULL) {
            snprintf(why, whycap, "vault: out of memory");
            return -1;
        }
    }
    enum wd_vault_step step = wd_vault_plan(&g.st, mono_ms());
    if (step == WD_VAULT_USE)
        return 0;
    if (step == WD_VAULT_RENEW) {
        char w2[256];
        if (renew(e, w2, sizeof(w2)) == 0)
            return 0;
        wd_logf(WD_LOG_WARN, "", "%s; a new token is fetched", w2);
    }
    token_drop();
    *fresh = true;
    return e->auth == WD_VAULT_AUTH_TOKEN ? load_token(e, why, whycap) : login(e, why, whycap);
}

int wd_vault_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms,
                     char *why, size_t whycap)
{
    struct wd_ref_vault r;
    char w2[256];
    if (wd_ref_vault_parse(ref, &r, w2, sizeof(w2)) < 0) {
        snprintf(why, whycap, "vault: bad reference: %s", w2);
        return -1;
    }
    struct eff e;
    if (eff_load(cfg, &e, why, whycap) < 0)
        return -1;
    char url[1200], step[720];
    if (wd_vault_kv_url(e.address, &r, e.kv_version, url, sizeof(url)) < 0) {
        snprintf(why, whycap, "vault: the secret's URL is too long");
        return -1;
    }
    snprintf(step, sizeof(step), "read %s", url + strlen(e.address) + 4);
    for (int attempt = 0;; attempt++) {
        bool fresh;
        if (ensure_token(&e, &fresh, why, whycap) < 0)
            return -1;
        struct answer a;
        if (call(&e, step, "GET", url, NULL, 0, g.token, &a, why, whycap) < 0)
            return -1;
        if ((a.status == 401 || a.status == 403) && attempt == 0 && !fresh) {
            /* its lease ended early, or it was revoked: a new token, one more try */
            wd_logf(WD_LOG_INFO, "", "vault: the token was refused (HTTP %ld) reading %.300s; a new one is fetched",
                    a.status, step + 5);
            answer_free(&a);
            token_drop();
            continue;
        }
        if (a.status != 200) {
            http_why(step, &a, why, whycap);
            answer_free(&a);
            return -1;
        }
        int64_t lease_s = 0;
        int n = wd_vault_read_kv(a.b.p, a.b.n, e.kv_version, r.field, out, cap, &lease_s, w2, sizeof(w2));
        answer_free(&a);
        if (n < 0) {
            snprintf(why, whycap, "vault: %s: %s", step, w2);
            return -1;
        }
        /* a lease is the longest a value may be used: a shorter one shortens the TTL, a longer one (KV v1's
         * 768 h default) leaves it alone */
        int64_t ttl = e.ttl_ms;
        if (lease_s > 0 && lease_s < ttl / 1000)
            ttl = lease_s * 1000;
        *ttl_ms = wd_vault_value_ttl(&g.st, mono_ms(), ttl);
        return n;
    }
}

void wd_vault_shutdown(void)
{
    if (g.token != NULL) {
        wd_secret_mem_free(g.token, WD_VAULT_TOKEN_MAX);
        g.token = NULL;
    }
    memset(&g, 0, sizeof(g));
}
