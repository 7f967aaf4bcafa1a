/* Session tokens, managed-settings canonical JSON and device grants for Claude Code's gateway sign-in. See
 * signin.h. Everything here is computation on memory: the routes that call it do the I/O, and the grant store's
 * mutex is only ever held for a table scan. */
#include "authz/signin.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "authz/jwks.h"
#include "lib/hash.h"
#include "lib/json.h"

/* ---- keys ---- */

struct wd_signin_key {
    uint8_t *secret;
    size_t len;
    char kid[17];        /* hex of the first 8 bytes of SHA-256(secret) */
};

struct wd_signin_keys {
    size_t n;
    struct wd_signin_key k[];
};

struct wd_signin_keys *wd_signin_keys_new(const char *const *secrets, const size_t *lens, size_t n)
{
    if (secrets == NULL || lens == NULL || n == 0 || n > 64)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (secrets[i] == NULL || lens[i] < WD_SIGNIN_MIN_SECRET)
            return NULL;
    struct wd_signin_keys *ks = calloc(1, sizeof *ks + n * sizeof ks->k[0]);
    if (ks == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        ks->k[i].secret = malloc(lens[i]);
        if (ks->k[i].secret == NULL) {
            ks->n = i;
            wd_signin_keys_free(ks);
            return NULL;
        }
        memcpy(ks->k[i].secret, secrets[i], lens[i]);
        ks->k[i].len = lens[i];
        uint8_t h[32];
        wd_sha256(secrets[i], lens[i], h);
        wd_hex(h, 8, ks->k[i].kid);
    }
    ks->n = n;
    return ks;
}

void wd_signin_keys_free(struct wd_signin_keys *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        OPENSSL_cleanse(ks->k[i].secret, ks->k[i].len);
        free(ks->k[i].secret);
    }
    free(ks);
}

static bool hs256(const struct wd_signin_key *key, const char *p, size_t n, uint8_t mac[32])
{
    unsigned int ml = 0;
    return HMAC(EVP_sha256(), key->secret, (int)key->len, (const unsigned char *)p, n, mac, &ml) != NULL && ml == 32;
}

/* ---- minting ---- */

int wd_signin_mint(const struct wd_signin_keys *ks, const char *iss, const struct wd_signin_claims *c, char *out,
                   size_t cap)
{
    if (ks == NULL || c == NULL || out == NULL || c->sub[0] == '\0')
        return -1;
    const struct wd_signin_key *key = &ks->k[0];
    struct wd_buf h = {0}, p = {0};
    wd_buf_printf(&h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", key->kid);
    wd_buf_puts(&p, "{\"sub\":");
    wd_json_put_string(&p, c->sub, strnlen(c->sub, sizeof c->sub));
    if (c->email[0]) {
        wd_buf_puts(&p, ",\"email\":");
        wd_json_put_string(&p, c->email, strnlen(c->email, sizeof c->email));
    }
    if (c->name[0]) {
        wd_buf_puts(&p, ",\"name\":");
        wd_json_put_string(&p, c->name, strnlen(c->name, sizeof c->name));
    }
    int ng = c->ngroups < 0 ? 0 : c->ngroups > 16 ? 16 : c->ngroups;
    if (ng > 0) {
        wd_buf_puts(&p, ",\"groups\":[");
        for (int i = 0; i < ng; i++) {
            if (i)
                wd_buf_putc(&p, ',');
            wd_json_put_string(&p, c->groups[i], strnlen(c->groups[i], sizeof c->groups[i]));
        }
        wd_buf_putc(&p, ']');
    }
    wd_buf_puts(&p, ",\"aud\":\"" WD_SIGNIN_AUD "\",\"iss\":");
    const char *is = iss ? iss : "";
    wd_json_put_string(&p, is, strlen(is));
    wd_buf_printf(&p, ",\"iat\":%lld,\"exp\":%lld}", (long long)c->iat, (long long)c->exp);
    int rc = -1;
    if (h.oom || p.oom)
        goto done;
    size_t hl = WD_B64URL_LEN(h.n), pl = WD_B64URL_LEN(p.n), sl = WD_B64URL_LEN(32);
    size_t total = hl + 1 + pl + 1 + sl;
    if (total >= cap || total > INT32_MAX)
        goto done;
    wd_b64url_encode((const uint8_t *)h.p, h.n, out);
    out[hl] = '.';
    wd_b64url_encode((const uint8_t *)p.p, p.n, out + hl + 1);
    out[hl + 1 + pl] = '.';
    uint8_t mac[32];
    if (!hs256(key, out, hl + 1 + pl, mac))
        goto done;
    wd_b64url_encode(mac, 32, out + hl + 1 + pl + 1);
    out[total] = '\0';
    rc = (int)total;
done:
    OPENSSL_cleanse(p.p, p.n);
    wd_buf_free(&h);
    wd_buf_free(&p);
    return rc;
}

/* ---- verifying ---- */

/* A base64url part decoded into a new NUL-terminated allocation, or NULL. */
static char *part_decode(const char *s, size_t n, size_t *out_n)
{
    if (n == 0)
        return NULL;
    size_t cap = WD_B64URL_DECODED_MAX(n);
    char *p = malloc(cap + 1);
    if (p == NULL)
        return NULL;
    long w = wd_b64url_decode(s, n, (uint8_t *)p, cap);
    if (w < 0) {
        free(p);
        return NULL;
    }
    p[w] = '\0';
    *out_n = (size_t)w;
    return p;
}

/* The key named by the header's kid, or NULL with *why. Also refuses what a session token never carries. */
static const struct wd_signin_key *header_key(const struct wd_signin_keys *ks, const char *h, size_t hn,
                                              const char **why)
{
    struct wd_json j = {0};
    const struct wd_signin_key *found = NULL;
    char dup[64];
    if (wd_json_parse(&j, h, hn) != 0 || wd_json_type(&j, 0) != WD_J_OBJ) {
        *why = "header is not a JSON object";
        goto done;
    }
    if (wd_jose_no_dup_keys(&j, 0, dup, sizeof dup) != 0) {
        *why = "header repeats a member";
        goto done;
    }
    static const char *const refused[] = {"crit", "jku", "x5u", "jwk", "x5c"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (wd_json_get(&j, 0, refused[i]) >= 0) {
            *why = "header has a refused member";
            goto done;
        }
    int alg = wd_json_get(&j, 0, "alg");
    if (alg < 0 || !wd_json_str_eq(&j, alg, "HS256")) {
        *why = "alg is not HS256";
        goto done;
    }
    int typ = wd_json_get(&j, 0, "typ");
    if (typ >= 0 && !wd_json_str_eq(&j, typ, "JWT")) {
        *why = "typ is not JWT";
        goto done;
    }
    int kid = wd_json_get(&j, 0, "kid");
    if (kid < 0 || wd_json_type(&j, kid) != WD_J_STR) {
        *why = "no kid";
        goto done;
    }
    for (size_t i = 0; i < ks->n && found == NULL; i++)
        if (wd_json_str_eq(&j, kid, ks->k[i].kid))
            found = &ks->k[i];
    if (found == NULL)
        *why = "unknown kid";
done:
    wd_json_free(&j);
    return found;
}

/* Splits a compact JWS into its three parts' lengths; false unless exactly two dots. */
static bool split3(const char *tok, size_t n, size_t *d1, size_t *d2)
{
    const char *a = memchr(tok, '.', n);
    if (a == NULL)
        return false;
    const char *b = memchr(a + 1, '.', n - (size_t)(a + 1 - tok));
    if (b == NULL || memchr(b + 1, '.', n - (size_t)(b + 1 - tok)) != NULL)
        return false;
    *d1 = (size_t)(a - tok);
    *d2 = (size_t)(b - tok);
    return true;
}

/* A string claim into dst (cut UTF-8 safe); absent leaves "". -1 when present but not a string. */
static int claim_str(const struct wd_json *j, struct wd_arena *a, const char *name, char *dst, size_t cap,
                     bool *present)
{
    dst[0] = '\0';
    int i = wd_json_get(j, 0, name);
    if (present)
        *present = i >= 0;
    if (i < 0)
        return 0;
    struct wd_str s;
    if (wd_json_type(j, i) != WD_J_STR || wd_json_str_decode(j, i, a, &s) != 0)
        return -1;
    wd_str_copy(dst, cap, s);
    return 0;
}

static int claims_read(const struct wd_json *j, const char *iss, int64_t now, int64_t skew,
                       struct wd_signin_claims *c, const char **why)
{
    struct wd_arena a = {0};
    int rc = -1;
    char dup[64];
    memset(c, 0, sizeof *c);
    if (wd_jose_no_dup_keys(j, 0, dup, sizeof dup) != 0) {
        *why = "claims repeat a member";
        goto done;
    }
    int aud = wd_json_get(j, 0, "aud");
    if (aud < 0 || !wd_json_str_eq(j, aud, WD_SIGNIN_AUD)) {
        *why = "wrong aud";
        goto done;
    }
    int is = wd_json_get(j, 0, "iss");
    if (is < 0 || !wd_json_str_eq(j, is, iss ? iss : "")) {
        *why = "wrong iss";
        goto done;
    }
    int e = wd_json_get(j, 0, "exp"), t = wd_json_get(j, 0, "iat");
    if (e < 0 || wd_json_type(j, e) != WD_J_NUM || wd_json_i64(j, e, &c->exp) != 0) {
        *why = "exp missing or not an integer";
        goto done;
    }
    if (t < 0 || wd_json_type(j, t) != WD_J_NUM || wd_json_i64(j, t, &c->iat) != 0) {
        *why = "iat missing or not an integer";
        goto done;
    }
    if (skew < 0)
        skew = 0;
    /* bounded so the arithmetic below cannot overflow whatever the token says */
    if (c->exp > INT64_C(253402300799) || c->iat > INT64_C(253402300799) || c->exp < 0 || c->iat < 0 ||
        skew > 86400) {
        *why = "date out of range";
        goto done;
    }
    if (c->exp <= now - skew) {
        *why = "expired";
        goto done;
    }
    if (c->iat > now + skew) {
        *why = "issued in the future";
        goto done;
    }
    bool has_sub = false;
    if (claim_str(j, &a, "sub", c->sub, sizeof c->sub, &has_sub) != 0 || c->sub[0] == '\0') {
        *why = "sub missing or empty";
        goto done;
    }
    if (claim_str(j, &a, "email", c->email, sizeof c->email, NULL) != 0 ||
        claim_str(j, &a, "name", c->name, sizeof c->name, NULL) != 0) {
        *why = "email or name is not a string";
        goto done;
    }
    int g = wd_json_get(j, 0, "groups");
    if (g >= 0) {
        if (wd_json_type(j, g) != WD_J_ARR) {
            *why = "groups is not an array";
            goto done;
        }
        WD_JSON_ARR_EACH(j, g, el)
        {
            struct wd_str s;
            if (wd_json_type(j, (int)el) != WD_J_STR || wd_json_str_decode(j, (int)el, &a, &s) != 0) {
                *why = "groups holds a non-string";
                goto done;
            }
            if (c->ngroups < 16)
                wd_str_copy(c->groups[c->ngroups++], sizeof c->groups[0], s);
        }
    }
    rc = 0;
done:
    wd_arena_free(&a);
    if (rc != 0)
        memset(c, 0, sizeof *c);
    return rc;
}

int wd_signin_verify(const struct wd_signin_keys *ks, const char *iss, const char *tok, size_t n, int64_t now,
                     int64_t skew, struct wd_signin_claims *out, const char **why)
{
    const char *ignored;
    if (why == NULL)
        why = &ignored;
    *why = "malformed token";
    if (ks == NULL || tok == NULL || out == NULL)
        return -1;
    if (n > WD_SIGNIN_MAX_TOKEN) {
        *why = "token too long";
        return -1;
    }
    size_t d1, d2;
    if (!split3(tok, n, &d1, &d2)) {
        *why = "not three parts";
        return -1;
    }
    size_t hn = 0, pn = 0, sn = 0;
    char *h = NULL, *p = NULL, *sig = NULL;
    int rc = -1;
    struct wd_json j = {0};
    h = part_decode(tok, d1, &hn);
    if (h == NULL) {
        *why = "malformed base64url in header";
        goto done;
    }
    const struct wd_signin_key *key = header_key(ks, h, hn, why);
    if (key == NULL)
        goto done;
    sig = part_decode(tok + d2 + 1, n - d2 - 1, &sn);
    if (sig == NULL || sn != 32) {
        *why = "malformed signature";
        goto done;
    }
    uint8_t mac[32];
    if (!hs256(key, tok, d2, mac) || CRYPTO_memcmp(mac, sig, 32) != 0) {
        *why = "bad signature";
        goto done;
    }
    p = part_decode(tok + d1 + 1, d2 - d1 - 1, &pn);
    if (p == NULL) {
        *why = "malformed base64url in claims";
        goto done;
    }
    if (wd_json_parse(&j, p, pn) != 0 || wd_json_type(&j, 0) != WD_J_OBJ) {
        *why = "claims are not a JSON object";
        goto done;
    }
    rc = claims_read(&j, iss, now, skew, out, why);
    if (rc == 0)
        *why = NULL;
done:
    wd_json_free(&j);
    free(h);
    if (p != NULL) {
        OPENSSL_cleanse(p, pn);
        free(p);
    }
    free(sig);
    return rc;
}

bool wd_signin_is_session(const struct wd_signin_keys *ks, const char *tok, size_t n)
{
    size_t d1, d2;
    if (ks == NULL || tok == NULL || n > WD_SIGNIN_MAX_TOKEN || !split3(tok, n, &d1, &d2))
        return false;
    size_t hn;
    char *h = part_decode(tok, d1, &hn);
    if (h == NULL)
        return false;
    const char *why;
    bool ok = header_key(ks, h, hn, &why) != NULL;
    free(h);
    return ok;
}

/* ---- canonical JSON ---- */

/* ECMAScript Number::toString (ECMA-262 section 6.1.6.1.20), which JSON.stringify uses: the shortest digits that
 * read back to the same double, placed as fixed notation for 1e-7 < |x| < 1e21, else as d.ddde+n. */
static void put_es_number(struct wd_buf *b, double x)
{
    if (!isfinite(x)) {
        wd_buf_puts(b, "null");
        return;
    }
    if (x == 0) {
        wd_buf_putc(b, '0');
        return;
    }
    if (x < 0) {
        wd_buf_putc(b, '-');
        x = -x;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, x);
        if (strtod(e, NULL) == x)
            break;
    }
    char digits[20];
    int k = 0;
    const char *q = e;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9')
            digits[k++] = *q;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = atoi(q + 1) + 1;   /* x = 0.digits * 10^n */
    if (k <= n && n <= 21) {
        wd_buf_put(b, digits, (size_t)k);
        for (int i = k; i < n; i++)
            wd_buf_putc(b, '0');
    } else if (0 < n && n <= 21) {
        wd_buf_put(b, digits, (size_t)n);
        wd_buf_putc(b, '.');
        wd_buf_put(b, digits + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        wd_buf_puts(b, "0.");
        for (int i = n; i < 0; i++)
            wd_buf_putc(b, '0');
        wd_buf_put(b, digits, (size_t)k);
    } else {
        wd_buf_putc(b, digits[0]);
        if (k > 1) {
            wd_buf_putc(b, '.');
            wd_buf_put(b, digits + 1, (size_t)(k - 1));
        }
        wd_buf_printf(b, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
}

/* A decoded string as JSON.stringify writes it (well-formed input: the parser refused lone surrogates). */
static void put_es_string(struct wd_buf *b, struct wd_str s)
{
    static const char hex[] = "0123456789abcdef";
    wd_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        wd_buf_put(b, s.p + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': wd_buf_puts(b, "\\\""); break;
        case '\\': wd_buf_puts(b, "\\\\"); break;
        case '\b': wd_buf_puts(b, "\\b"); break;
        case '\f': wd_buf_puts(b, "\\f"); break;
        case '\n': wd_buf_puts(b, "\\n"); break;
        case '\r': wd_buf_puts(b, "\\r"); break;
        case '\t': wd_buf_puts(b, "\\t"); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            wd_buf_put(b, u, 6);
        }
        }
    }
    wd_buf_put(b, s.p + run, s.n - run);
    wd_buf_putc(b, '"');
}

struct canon_member {
    struct wd_str key;
    int val;
};

static int member_cmp(const void *x, const void *y)
{
    const struct canon_member *a = x, *b = y;
    size_t n = a->key.n < b->key.n ? a->key.n : b->key.n;
    int c = n ? memcmp(a->key.p, b->key.p, n) : 0;
    if (c != 0)
        return c;
    return a->key.n < b->key.n ? -1 : a->key.n > b->key.n;
}

static int canon_value(const struct wd_json *j, int i, struct wd_arena *a, struct wd_buf *out)
{
    switch (wd_json_type(j, i)) {
    case WD_J_OBJ: {
        uint32_t m = j->t[i].size, c = 0;
        struct canon_member *ms = m ? wd_arena_alloc(a, m * sizeof *ms) : NULL;
        if (m && ms == NULL)
            return -1;
        WD_JSON_OBJ_EACH(j, i, k)
        {
            if (c >= m || wd_json_str_decode(j, (int)k, a, &ms[c].key) != 0)
                return -1;
            ms[c++].val = (int)k + 1;
        }
        if (c > 1)
            qsort(ms, c, sizeof *ms, member_cmp);
        wd_buf_putc(out, '{');
        for (uint32_t x = 0; x < c; x++) {
            if (x > 0 && member_cmp(&ms[x - 1], &ms[x]) == 0)
                return -1;
            if (x)
                wd_buf_putc(out, ',');
            put_es_string(out, ms[x].key);
            wd_buf_putc(out, ':');
            if (canon_value(j, ms[x].val, a, out) != 0)
                return -1;
        }
        wd_buf_putc(out, '}');
        return 0;
    }
    case WD_J_ARR: {
        wd_buf_putc(out, '[');
        bool first = true;
        WD_JSON_ARR_EACH(j, i, e)
        {
            if (!first)
                wd_buf_putc(out, ',');
            first = false;
            if (canon_value(j, (int)e, a, out) != 0)
                return -1;
        }
        wd_buf_putc(out, ']');
        return 0;
    }
    case WD_J_STR: {
        struct wd_str s;
        if (wd_json_str_decode(j, i, a, &s) != 0)
            return -1;
        put_es_string(out, s);
        return 0;
    }
    case WD_J_NUM: {
        struct wd_str raw = wd_json_raw(j, i);
        char tmp[400];
        if (raw.n >= sizeof tmp) {
            /* a long literal: strtod needs a terminated copy */
            char *big = wd_arena_strndup(a, raw.p, raw.n);
            if (big == NULL)
                return -1;
            put_es_number(out, strtod(big, NULL));
            return 0;
        }
        memcpy(tmp, raw.p, raw.n);
        tmp[raw.n] = '\0';
        put_es_number(out, strtod(tmp, NULL));
        return 0;
    }
    case WD_J_TRUE: wd_buf_puts(out, "true"); return 0;
    case WD_J_FALSE: wd_buf_puts(out, "false"); return 0;
    case WD_J_NULL: wd_buf_puts(out, "null"); return 0;
    default: return -1;
    }
}

int wd_signin_canonical(const char *json, size_t n, struct wd_buf *out)
{
    if (json == NULL || out == NULL)
        return -1;
    struct wd_json j = {0};
    struct wd_arena a = {0};
    size_t start = out->n;
    int rc = -1;
    if (wd_json_parse(&j, json, n) == 0 && j.n > 0)
        rc = canon_value(&j, 0, &a, out);
    if (out->oom)
        rc = -1;
    if (rc != 0 && !out->oom)
        out->n = start;
    wd_arena_free(&a);
    wd_json_free(&j);
    return rc;
}

void wd_signin_checksum(const char *canon, size_t n, char out[72])
{
    uint8_t h[32];
    wd_sha256(canon, n, h);
    memcpy(out, "sha256:", 7);
    wd_hex(h, 32, out + 7);
}

/* ---- device grants ---- */

struct grant {
    enum wd_signin_state state;
    uint8_t dc_hash[32];         /* SHA-256 of the device code: the code itself is never stored */
    char user_code[9];           /* the 8 letters, no dash */
    int64_t created;
    int64_t last_poll;           /* 0: never polled */
    struct wd_signin_grant_view v;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct grant *g_tab[WD_SIGNIN_MAX_GRANTS];
static size_t g_n;

static const char user_alpha[] = "BCDFGHJKLMNPQRSTVWXZ";

static void grant_drop(size_t i)
{
    OPENSSL_cleanse(g_tab[i], sizeof *g_tab[i]);
    free(g_tab[i]);
    g_tab[i] = g_tab[--g_n];
    g_tab[g_n] = NULL;
}

static bool grant_live(const struct grant *g, int64_t now)
{
    return now < g->created + WD_SIGNIN_GRANT_TTL;
}

static void sweep_locked(int64_t now)
{
    for (size_t i = 0; i < g_n;)
        if (!grant_live(g_tab[i], now))
            grant_drop(i);
        else
            i++;
}

static bool rand_b64(char out[44])
{
    uint8_t r[32];
    if (RAND_bytes(r, sizeof r) != 1)
        return false;
    wd_b64url_encode(r, sizeof r, out);
    OPENSSL_cleanse(r, sizeof r);
    return true;
}

static bool rand_user_code(char out[9])
{
    for (int k = 0; k < 8;) {
        uint8_t r[16];
        if (RAND_bytes(r, sizeof r) != 1)
            return false;
        /* 240 = 12 * 20: bytes above it would favour the first letters */
        for (size_t i = 0; i < sizeof r && k < 8; i++)
            if (r[i] < 240)
                out[k++] = user_alpha[r[i] % 20];
    }
    out[8] = '\0';
    return true;
}

/* The letters of a submitted code, upper-cased; false unless exactly 8. */
static bool user_code_norm(const char *s, size_t n, char out[9])
{
    int k = 0;
    for (size_t i = 0; s != NULL && i < n; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c < 'A' || c > 'Z')
            continue;
        if (k == 8)
            return false;
        out[k++] = c;
    }
    out[k] = '\0';
    return k == 8;
}

static struct grant *find_user_code_locked(const char code[9], int64_t now)
{
    for (size_t i = 0; i < g_n; i++)
        if (grant_live(g_tab[i], now) && CRYPTO_memcmp(g_tab[i]->user_code, code, 8) == 0)
            return g_tab[i];
    return NULL;
}

static struct grant *find_state_locked(const char *state, size_t n)
{
    if (state == NULL || n != 43)
        return NULL;
    struct grant *found = NULL;
    for (size_t i = 0; i < g_n; i++)
        if (g_tab[i]->state == WD_SG_VERIFYING && CRYPTO_memcmp(g_tab[i]->v.state_param, state, 43) == 0)
            found = g_tab[i];
    return found;
}

int wd_signin_grant_new(int64_t now, char device_code[44], char user_code[10])
{
    struct grant *g = calloc(1, sizeof *g);
    if (g == NULL)
        return -1;
    if (!rand_b64(device_code)) {
        free(g);
        return -1;
    }
    wd_sha256(device_code, 43, g->dc_hash);
    g->state = WD_SG_PENDING;
    g->created = now;
    pthread_mutex_lock(&g_mu);
    if (g_n == WD_SIGNIN_MAX_GRANTS)
        sweep_locked(now);
    int rc = -1;
    if (g_n < WD_SIGNIN_MAX_GRANTS) {
        /* 20^8 codes: a collision with a live one is rare, but two grants must never share a code */
        for (int tries = 0; tries < 8 && rc != 0; tries++)
            if (rand_user_code(g->user_code) && find_user_code_locked(g->user_code, now) == NULL)
                rc = 0;
    }
    if (rc == 0) {
        snprintf(g->v.user_code, sizeof g->v.user_code, "%.4s-%.4s", g->user_code, g->user_code + 4);
        memcpy(user_code, g->v.user_code, 10);
        g->v.state = WD_SG_PENDING;
        g_tab[g_n++] = g;
    }
    pthread_mutex_unlock(&g_mu);
    if (rc != 0) {
        OPENSSL_cleanse(device_code, 44);
        OPENSSL_cleanse(g, sizeof *g);
        free(g);
    }
    return rc;
}

int wd_signin_grant_verify(const char *user_code, size_t n, int64_t now, struct wd_signin_grant_view *v)
{
    char code[9];
    if (!user_code_norm(user_code, n, code))
        return -1;
    char st[44], nonce[44], ver[44];
    if (!rand_b64(st) || !rand_b64(nonce) || !rand_b64(ver))
        return -1;
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    struct grant *g = find_user_code_locked(code, now);
    if (g != NULL && g->state == WD_SG_PENDING) {
        g->state = g->v.state = WD_SG_VERIFYING;
        memcpy(g->v.state_param, st, 44);
        memcpy(g->v.nonce, nonce, 44);
        memcpy(g->v.pkce_verifier, ver, 44);
        if (v != NULL)
            *v = g->v;
        rc = 0;
    }
    pthread_mutex_unlock(&g_mu);
    OPENSSL_cleanse(ver, sizeof ver);
    return rc;
}

int wd_signin_grant_by_state(const char *state, size_t n, int64_t now, struct wd_signin_grant_view *v)
{
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    struct grant *g = find_state_locked(state, n);
    if (g != NULL && grant_live(g, now)) {
        if (v != NULL)
            *v = g->v;
        rc = 0;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

int wd_signin_grant_approve(const char *state, size_t n, const char *access, const char *refresh, int64_t expires_in,
                            const char *email)
{
    const struct wd_signin_grant_view *shape = NULL;
    if (access == NULL || access[0] == '\0' || strlen(access) >= sizeof shape->access_token ||
        (refresh != NULL && strlen(refresh) >= sizeof shape->refresh_token))
        return -1;
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    struct grant *g = find_state_locked(state, n);
    if (g != NULL) {
        g->state = g->v.state = WD_SG_APPROVED;
        wd_cstr_copy(g->v.access_token, sizeof g->v.access_token, access);
        wd_cstr_copy(g->v.refresh_token, sizeof g->v.refresh_token, refresh ? refresh : "");
        wd_str_copy(g->v.email, sizeof g->v.email,
                    email ? (struct wd_str){email, strlen(email)} : (struct wd_str){"", 0});
        g->v.expires_in = expires_in;
        rc = 0;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

int wd_signin_grant_deny_state(const char *state, size_t n)
{
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    struct grant *g = find_state_locked(state, n);
    if (g != NULL) {
        g->state = g->v.state = WD_SG_DENIED;
        rc = 0;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

int wd_signin_grant_deny_user_code(const char *user_code, size_t n, int64_t now)
{
    char code[9];
    if (!user_code_norm(user_code, n, code))
        return -1;
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    struct grant *g = find_user_code_locked(code, now);
    if (g != NULL && (g->state == WD_SG_PENDING || g->state == WD_SG_VERIFYING)) {
        g->state = g->v.state = WD_SG_DENIED;
        rc = 0;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

int wd_signin_grant_poll(const char *device_code, size_t n, int64_t now, struct wd_signin_grant_view *v,
                         const char **err)
{
    const char *ignored;
    if (err == NULL)
        err = &ignored;
    *err = "expired_token";
    if (device_code == NULL || n != 43)
        return 1;
    uint8_t h[32];
    wd_sha256(device_code, n, h);
    int rc = 1;
    pthread_mutex_lock(&g_mu);
    size_t at = g_n;
    for (size_t i = 0; i < g_n; i++)
        if (CRYPTO_memcmp(g_tab[i]->dc_hash, h, 32) == 0)
            at = i;
    if (at == g_n) {
        /* unknown or redeemed */
    } else if (!grant_live(g_tab[at], now)) {
        grant_drop(at);
    } else {
        struct grant *g = g_tab[at];
        switch (g->state) {
        case WD_SG_APPROVED:
            if (v != NULL)
                *v = g->v;
            grant_drop(at);
            *err = NULL;
            rc = 0;
            break;
        case WD_SG_DENIED:
            grant_drop(at);
            *err = "access_denied";
            break;
        default:
            *err = g->last_poll != 0 && now - g->last_poll < WD_SIGNIN_POLL_INTERVAL - 1 ? "slow_down"
                                                                                       : "authorization_pending";
            g->last_poll = now;
            break;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void wd_signin_grant_sweep(int64_t now)
{
    pthread_mutex_lock(&g_mu);
    sweep_locked(now);
    pthread_mutex_unlock(&g_mu);
}

void wd_signin_grants_free(void)
{
    pthread_mutex_lock(&g_mu);
    while (g_n > 0)
        grant_drop(g_n - 1);
    pthread_mutex_unlock(&g_mu);
}

/* ---- shared store helpers ---- */

int wd_signin_new_codes(char device_code[44], char user_code[10])
{
    char uc[9];
    if (!rand_b64(device_code) || !rand_user_code(uc))
        return -1;
    memcpy(user_code, uc, 4);
    user_code[4] = '-';
    memcpy(user_code + 5, uc + 4, 4);
    user_code[9] = '\0';
    return 0;
}

int wd_signin_new_secrets(char state[44], char nonce[44], char verifier[44])
{
    return rand_b64(state) && rand_b64(nonce) && rand_b64(verifier) ? 0 : -1;
}

bool wd_signin_user_code_norm(const char *s, size_t n, char out[9]) { return user_code_norm(s, n, out); }

/* The sealing key of key i: HMAC-SHA256(secret, a label), so that it is never the token signing key itself. */
static bool seal_key(const struct wd_signin_keys *ks, size_t i, uint8_t out[32])
{
    static const char label[] = "warden signin grant seal v1";
    return hs256(&ks->k[i], label, sizeof(label) - 1, out);
}

int wd_signin_seal(const struct wd_signin_keys *ks, const char *in, size_t n, char *out, size_t cap)
{
    uint8_t key[32], buf[12 + 4096 + 16];
    if (ks == NULL || ks->n == 0 || n > 4096 || WD_B64URL_LEN(12 + n + 16) + 1 > cap || !seal_key(ks, 0, key))
        return -1;
    int len = 0, fin = 0, ok = RAND_bytes(buf, 12) == 1;
    EVP_CIPHER_CTX *c = ok ? EVP_CIPHER_CTX_new() : NULL;
    ok = c != NULL && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
         EVP_EncryptUpdate(c, buf + 12, &len, (const unsigned char *)in, (int)n) == 1 &&
         EVP_EncryptFinal_ex(c, buf + 12 + len, &fin) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, buf + 12 + len + fin) == 1;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof key);
    size_t total = 12 + (size_t)len + (size_t)fin + 16;
    int r = ok ? (int)wd_b64url_encode(buf, total, out) : -1;
    OPENSSL_cleanse(buf, sizeof buf);
    return r;
}

int wd_signin_open(const struct wd_signin_keys *ks, const char *in, size_t n, char *out, size_t cap)
{
    uint8_t buf[12 + 4096 + 16 + 2];
    long m = ks != NULL && n <= WD_B64URL_LEN(sizeof buf - 2) ? wd_b64url_decode(in, n, buf, sizeof buf) : -1;
    if (m < 12 + 16 || (size_t)(m - 28) + 1 > cap)
        return -1;
    size_t clen = (size_t)m - 28;
    for (size_t i = 0; i < ks->n; i++) {
        uint8_t key[32];
        int len = 0, fin = 0;
        if (!seal_key(ks, i, key))
            continue;
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        bool ok = c != NULL && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
                  EVP_DecryptUpdate(c, (unsigned char *)out, &len, buf + 12, (int)clen) == 1 &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, buf + 12 + clen) == 1 &&
                  EVP_DecryptFinal_ex(c, (unsigned char *)out + len, &fin) == 1;
        EVP_CIPHER_CTX_free(c);
        OPENSSL_cleanse(key, sizeof key);
        if (ok) {
            out[len + fin] = '\0';
            OPENSSL_cleanse(buf, sizeof buf);
            return len + fin;
        }
    }
    OPENSSL_cleanse(out, cap < clen ? cap : clen);
    OPENSSL_cleanse(buf, sizeof buf);
    return -1;
}

/* ---- the IdP's token endpoint answer ---- */

static const char *jstr_of(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o != NULL && k != NULL && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* A JWT's claims, decoded without its signature (see the file's head). */
static struct json_object *jwt_claims(const char *jwt)
{
    const char *d1 = jwt ? strchr(jwt, '.') : NULL, *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL || d2 - d1 - 1 > 16384)
        return NULL;
    size_t n = (size_t)(d2 - d1 - 1);
    uint8_t *raw = malloc(WD_B64URL_DECODED_MAX(n) + 1);
    long m = raw ? wd_b64url_decode(d1 + 1, n, raw, WD_B64URL_DECODED_MAX(n)) : -1;
    struct json_object *o = NULL;
    if (m > 0) {
        raw[m] = '\0';
        o = json_tokener_parse((const char *)raw);
        if (o != NULL && !json_object_is_type(o, json_type_object)) {
            json_object_put(o);
            o = NULL;
        }
    }
    free(raw);
    return o;
}

/* The session claims from the IdP's claims: 0, or -1 with why. */
static int claims_of(struct json_object *c, const struct wd_signin_idp *idp, const char *nonce, int64_t now,
                     struct wd_signin_claims *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    const char *iss = jstr_of(c, "iss"), *sub = jstr_of(c, idp->claim_sub);
    if (iss == NULL || strcmp(iss, idp->issuer) != 0) {
        *why = "id token: iss is not the issuer";
        return -1;
    }
    struct json_object *aud, *v;
    bool aud_ok = false;
    if (json_object_object_get_ex(c, "aud", &aud)) {
        if (json_object_is_type(aud, json_type_string))
            aud_ok = strcmp(json_object_get_string(aud), idp->client_id) == 0;
        else if (json_object_is_type(aud, json_type_array))
            for (size_t i = 0; i < json_object_array_length(aud); i++)
                aud_ok |= json_object_is_type(json_object_array_get_idx(aud, i), json_type_string) &&
                          strcmp(json_object_get_string(json_object_array_get_idx(aud, i)), idp->client_id) == 0;
    }
    if (!aud_ok) {
        *why = "id token: aud does not name the client";
        return -1;
    }
    if (nonce != NULL && (jstr_of(c, "nonce") == NULL || strcmp(jstr_of(c, "nonce"), nonce) != 0)) {
        *why = "id token: nonce does not match";
        return -1;
    }
    if (!json_object_object_get_ex(c, "exp", &v) || json_object_get_int64(v) + 60 < now) {
        *why = "id token: expired";
        return -1;
    }
    if (sub == NULL || sub[0] == '\0') {
        *why = "id token: no subject";
        return -1;
    }
    wd_cstr_copy(out->sub, sizeof(out->sub), sub);
    if (jstr_of(c, idp->claim_email))
        wd_cstr_copy(out->email, sizeof(out->email), jstr_of(c, idp->claim_email));
    if (jstr_of(c, idp->claim_name))
        wd_cstr_copy(out->name, sizeof(out->name), jstr_of(c, idp->claim_name));
    if (json_object_object_get_ex(c, idp->claim_groups, &v)) {
        if (json_object_is_type(v, json_type_string)) {
            wd_cstr_copy(out->groups[0], sizeof(out->groups[0]), json_object_get_string(v));
            out->ngroups = 1;
        } else if (json_object_is_type(v, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(v) && out->ngroups < 16; i++) {
                struct json_object *g = json_object_array_get_idx(v, i);
                if (json_object_is_type(g, json_type_string))
                    wd_cstr_copy(out->groups[out->ngroups++], sizeof(out->groups[0]), json_object_get_string(g));
            }
        }
    }
    out->iat = now;
    out->exp = now + idp->ttl_s;
    return 0;
}

int wd_signin_read_token_answer(const char *json, size_t n, const struct wd_signin_idp *idp, const char *nonce,
                                bool use_access_token, int64_t now, struct wd_signin_claims *out, char *refresh,
                                size_t rcap, const char **why)
{
    *why = "not a JSON object";
    if (refresh != NULL && rcap > 0)
        refresh[0] = '\0';
    if (json == NULL || n == 0 || n > 256 * 1024 || memchr(json, '\0', n) != NULL)
        return -1;
    struct json_tokener *t = json_tokener_new();
    struct json_object *o = t ? json_tokener_parse_ex(t, json, (int)n) : NULL;
    bool whole = t != NULL && json_tokener_get_error(t) == json_tokener_success &&
                 json_tokener_get_parse_end(t) == n;
    json_tokener_free(t);
    if (o == NULL || !whole || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return -1;
    }
    struct json_object *c = jwt_claims(jstr_of(o, "id_token"));
    if (c == NULL && use_access_token)
        c = jwt_claims(jstr_of(o, "access_token")); /* an IdP that sends no new ID token on a refresh */
    int rc = -1;
    *why = "no ID token";
    if (c != NULL && claims_of(c, idp, nonce, now, out, why) == 0) {
        const char *rt = jstr_of(o, "refresh_token");
        if (rt != NULL && refresh != NULL && strlen(rt) >= rcap)
            *why = "refresh token too long";
        else {
            if (rt != NULL && refresh != NULL)
                memcpy(refresh, rt, strlen(rt) + 1);
            *why = NULL;
            rc = 0;
        }
    }
    json_object_put(c);
    json_object_put(o);
    return rc;
}

bool wd_signin_answer_error_is(const char *json, size_t n, const char *code)
{
    if (json == NULL || n == 0 || n > 256 * 1024 || memchr(json, '\0', n) != NULL)
        return false;
    struct json_tokener *t = json_tokener_new();
    struct json_object *o = t ? json_tokener_parse_ex(t, json, (int)n) : NULL;
    json_tokener_free(t);
    const char *e = jstr_of(o, "error");
    bool is = e != NULL && strcmp(e, code) == 0;
    json_object_put(o);
    return is;
}
