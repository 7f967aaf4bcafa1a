/* Azure Key Vault behind azure-kv://vault/name[/version]: answers Key Vault's bearer challenge once per vault, gets
 * an Entra token (workload identity, client secret or managed identity) for the challenge's resource and tenant,
 * caches it in locked memory and renews it ahead of expiry. Runs on the secret cache's resolver thread only. */
#include "secrets/azure.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/json.h"
#include "lib/log.h"
#include "net/fetch.h"
#include "net/http_form.h"
#include "secrets/backend.h"
#include "secrets/secrets.h"

#define AZ_DEFAULT_VAULT_URL "https://{vault}.vault.azure.net"
#define AZ_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define AZ_DEFAULT_IMDS "http://169.254.169.254"
#define AZ_DEFAULT_TTL_MS 300000
#define AZ_DEFAULT_TIMEOUT_MS 10000
#define AZ_TOKEN_MAX 16384        /* an access token (a JWT of a few KiB), "Bearer " included */
#define AZ_ANSWER_MAX 65536       /* any answer's body: a secret value is at most 25 KiB */
#define AZ_ASSERTION_MAX 16384    /* the projected service-account token */
#define AZ_RENEW_AHEAD_MS 300000  /* a token is renewed 5 min before it expires (half its life when shorter) */
#define AZ_SLOTS 8                /* vaults whose challenge and token are remembered */

/* ---- pure part ------------------------------------------------------------------------------------------ */

static void set_why(char *why, size_t whycap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whycap, const char *fmt, ...)
{
    if (why == NULL || whycap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whycap, fmt, ap);
    va_end(ap);
}

/* A service's message, cut to a printable first part: why lines go to logs and /readyz. */
static void clean_copy(char *dst, size_t cap, const char *s, size_t n, bool first_sentence)
{
    size_t o = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; i < n && o + 1 < cap && o < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (first_sentence && c == '.' && (i + 1 == n || s[i + 1] == ' ' || s[i + 1] == '\r' || s[i + 1] == '\n')) {
            dst[o++] = '.';
            break;
        }
        dst[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    dst[o] = '\0';
}

static bool is_tenant_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

/* Copies a challenge parameter's value (quoted or a token) from p; returns the position after it. */
static const char *param_value(const char *p, const char *end, char *dst, size_t cap, bool *ok)
{
    size_t o = 0;
    *ok = true;
    if (p < end && *p == '"') {
        p++;
        while (p < end && *p != '"') {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (o + 1 >= cap)
                *ok = false;
            else
                dst[o++] = *p;
            p++;
        }
        if (p >= end)
            *ok = false;
        else
            p++;
    } else {
        while (p < end && *p != ',' && *p != ' ' && *p != '\t') {
            if (o + 1 >= cap)
                *ok = false;
            else
                dst[o++] = *p;
            p++;
        }
    }
    dst[o] = '\0';
    return p;
}

/* The authorization URL's tenant: https://host/{tenant}[/...]. */
static int tenant_of(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return -1;
    p = strchr(p + 3, '/');
    if (p == NULL)
        return -1;
    p++;
    size_t n = 0;
    while (p[n] != '\0' && p[n] != '/' && p[n] != '?' && p[n] != '#') {
        if (!is_tenant_char(p[n]))
            return -1;
        n++;
    }
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* One challenge: "Bearer k=v, k=v" in [p, end). 1 when read, 0 when not a Bearer one, -1 with why. */
static int parse_bearer(const char *p, const char *end, struct wd_azure_challenge *out, char *why, size_t whycap)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (end - p < 6 || strncasecmp(p, "Bearer", 6) != 0 || (end - p > 6 && p[6] != ' ' && p[6] != '\t'))
        return 0;
    p += 6;
    char auth[256] = "", res[256] = "", val[256];
    bool bad = false;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *k = p;
        while (p < end && *p != '=' && *p != ' ' && *p != ',')
            p++;
        size_t kn = (size_t)(p - k);
        if (p >= end || *p != '=') {
            if (kn == 0)
                break;
            continue; /* a bare token (another scheme's start): not ours */
        }
        p++;
        bool ok;
        p = param_value(p, end, val, sizeof val, &ok);
        if (!ok) {
            bad = true;
            continue;
        }
        if ((kn == 13 && strncasecmp(k, "authorization", 13) == 0) ||
            (kn == 17 && strncasecmp(k, "authorization_uri", 17) == 0))
            snprintf(auth, sizeof auth, "%s", val);
        else if ((kn == 8 && strncasecmp(k, "resource", 8) == 0) ||
                 (kn == 5 && strncasecmp(k, "scope", 5) == 0 && res[0] == '\0'))
            snprintf(res, sizeof res, "%s", val);
    }
    if (auth[0] == '\0') {
        set_why(why, whycap, "the challenge has no authorization%s", bad ? " (a malformed parameter)" : "");
        return -1;
    }
    if (tenant_of(auth, out->tenant, sizeof out->tenant) != 0) {
        set_why(why, whycap, "the challenge's authorization names no tenant");
        return -1;
    }
    size_t rn = strlen(res);
    if (rn >= 9 && strcmp(res + rn - 9, "/.default") == 0)
        res[rn -= 9] = '\0';
    while (rn > 0 && res[rn - 1] == '/')
        res[--rn] = '\0';
    if (rn == 0) {
        set_why(why, whycap, "the challenge has no resource");
        return -1;
    }
    if (rn >= sizeof out->resource || strncmp(res, "https://", 8) != 0) {
        set_why(why, whycap, "the challenge's resource is not an https URL");
        return -1;
    }
    memcpy(out->resource, res, rn + 1);
    return 1;
}

int wd_azure_parse_challenge(const char *hdrs, size_t n, struct wd_azure_challenge *out, char *why, size_t whycap)
{
    memset(out, 0, sizeof *out);
    const char *p = hdrs, *end = hdrs + n;
    static const char name[] = "www-authenticate:";
    int r = 0;
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) >= sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
            const char *v = p + sizeof name - 1, *ve = le;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            r = parse_bearer(v, ve, out, why, whycap);
            if (r != 0)
                break;
        }
        p = eol ? eol + 1 : end;
    }
    if (r == 1)
        return 0;
    if (r == 0)
        set_why(why, whycap, "no Bearer challenge (WWW-Authenticate) in the 401");
    memset(out, 0, sizeof *out);
    return -1;
}

/* Key Vault's DNS suffix per cloud, and the resource its tokens are for. */
static const char *const kv_clouds[] = {"vault.azure.net", "vault.azure.cn", "vault.usgovcloudapi.net",
                                        "vault.microsoftazure.de"};

static bool host_under(const char *host, size_t hn, const char *suffix)
{
    size_t sn = strlen(suffix);
    return hn > sn && host[hn - sn - 1] == '.' && strncasecmp(host + hn - sn, suffix, sn) == 0;
}

int wd_azure_check_resource(const char *resource, const char *vault_base, char *why, size_t whycap)
{
    const char *rh = NULL;
    size_t nclouds = sizeof kv_clouds / sizeof kv_clouds[0];
    for (size_t i = 0; i < nclouds; i++) {
        if (strncmp(resource, "https://", 8) == 0 && strcasecmp(resource + 8, kv_clouds[i]) == 0)
            rh = kv_clouds[i];
    }
    if (rh == NULL) {
        set_why(why, whycap, "the challenge asks a token for %.120s, not Key Vault", resource);
        return -1;
    }
    const char *h = strstr(vault_base, "://");
    h = h ? h + 3 : vault_base;
    size_t hn = strcspn(h, ":/?#");
    for (size_t i = 0; i < nclouds; i++) {
        if (host_under(h, hn, kv_clouds[i]) && kv_clouds[i] != rh) {
            set_why(why, whycap, "the challenge asks a token for %.120s, the vault is in %s", resource, kv_clouds[i]);
            return -1;
        }
    }
    return 0;
}

/* A string member's raw (still escaped) bytes, or -1 when absent or not a string. */
static int str_member(const struct wd_json *j, int obj, const char *key, struct wd_str *out)
{
    int i = wd_json_get(j, obj, key);
    if (wd_json_type(j, i) != WD_J_STR)
        return -1;
    *out = wd_json_raw(j, i);
    return 0;
}

/* Decodes string token i into out (cap with the NUL); the decoded length, or -1 when it does not fit. Decoding
 * never lengthens a JSON string, so the buffer never grows and no copy lands outside out. */
static int decode_into(const struct wd_json *j, int i, char *out, size_t cap)
{
    struct wd_str raw = wd_json_raw(j, i);
    if (raw.n + 1 > cap)
        return -1;
    struct wd_buf b = {out, 0, cap, false};
    if (wd_json_unescape(&b, raw.p, raw.n) != 0 || b.p != out || b.n >= cap) {
        OPENSSL_cleanse(out, cap);
        return -1;
    }
    out[b.n] = '\0';
    return (int)b.n;
}

/* A string member decoded into a small buffer for a why (codes, messages): "" when absent. */
static void why_member(const struct wd_json *j, int obj, const char *key, char *dst, size_t cap, bool first)
{
    dst[0] = '\0';
    int i = wd_json_get(j, obj, key);
    if (wd_json_type(j, i) != WD_J_STR)
        return;
    char tmp[512];
    struct wd_str raw = wd_json_raw(j, i);
    if (raw.n > 480)
        raw.n = 480;
    /* a cut may split an escape: decode what decodes, else show nothing rather than garbage */
    struct wd_buf b = {tmp, 0, sizeof tmp, false};
    size_t n = raw.n;
    while (n > 0 && wd_json_unescape(&b, raw.p, n) != 0) {
        b.n = 0;
        n--;
    }
    clean_copy(dst, cap, tmp, b.n, first);
}

int wd_azure_parse_secret(const char *body, size_t n, long status, char *out, size_t cap, const char **inner,
                          char *why, size_t whycap)
{
    struct wd_json j = {0};
    int ret = -1;
    if (inner)
        *inner = "";
    if (cap > 0)
        out[0] = '\0';
    bool parsed = n > 0 && wd_json_parse(&j, body, n) == 0 && wd_json_type(&j, 0) == WD_J_OBJ;
    if (status != 200) {
        char code[64] = "", msg[200] = "", icode[64] = "";
        int e = parsed ? wd_json_get(&j, 0, "error") : -1;
        if (wd_json_type(&j, e) == WD_J_OBJ) {
            why_member(&j, e, "code", code, sizeof code, false);
            why_member(&j, e, "message", msg, sizeof msg, true);
            int ie = wd_json_get(&j, e, "innererror");
            if (wd_json_type(&j, ie) == WD_J_OBJ)
                why_member(&j, ie, "code", icode, sizeof icode, false);
        }
        bool disabled = strcmp(icode, "SecretDisabled") == 0;
        if (inner)
            *inner = disabled ? "SecretDisabled" : (status == 401 || status == 403) ? "auth" : "";
        if (code[0] != '\0')
            set_why(why, whycap, "HTTP %ld %s%s%s%s%s%s", status, code, icode[0] ? " (" : "", icode,
                    icode[0] ? ")" : "", msg[0] ? ": " : "", msg);
        else
            set_why(why, whycap, "HTTP %ld%s", status, parsed || n == 0 ? "" : " (not JSON)");
        goto out;
    }
    if (!parsed) {
        set_why(why, whycap, "the answer is not a JSON object");
        goto out;
    }
    int v = wd_json_get(&j, 0, "value");
    if (v < 0) {
        set_why(why, whycap, "the answer has no value");
        goto out;
    }
    if (wd_json_type(&j, v) != WD_J_STR) {
        set_why(why, whycap, "the answer's value is not a string");
        goto out;
    }
    int len = decode_into(&j, v, out, cap);
    if (len < 0) {
        set_why(why, whycap, "the value is longer than %zu bytes", cap ? cap - 1 : 0);
        goto out;
    }
    if (len == 0) {
        set_why(why, whycap, "the secret's value is empty");
        goto out;
    }
    if (memchr(out, '\0', (size_t)len) != NULL) {
        OPENSSL_cleanse(out, (size_t)len);
        out[0] = '\0';
        set_why(why, whycap, "the value holds a NUL byte");
        goto out;
    }
    ret = len;
out:
    wd_json_free(&j);
    return ret;
}

/* A number that may come as a JSON number or as a string of digits (IMDS). */
static int num_member(const struct wd_json *j, int obj, const char *key, int64_t *out)
{
    int i = wd_json_get(j, obj, key);
    if (i < 0)
        return 1;
    if (wd_json_type(j, i) == WD_J_NUM)
        return wd_json_i64(j, i, out);
    if (wd_json_type(j, i) == WD_J_STR) {
        struct wd_str raw = wd_json_raw(j, i);
        if (raw.n == 0 || raw.n > 18)
            return -1;
        for (size_t k = 0; k < raw.n; k++)
            if (raw.p[k] < '0' || raw.p[k] > '9')
                return -1;
        return wd_json_num_i64(raw, out);
    }
    return -1;
}

int wd_azure_parse_token(const char *body, size_t n, long status, int64_t now_s, char *tok, size_t cap,
                         int64_t *expires_in, char *why, size_t whycap)
{
    struct wd_json j = {0};
    int ret = -1;
    if (cap > 0)
        tok[0] = '\0';
    *expires_in = 0;
    bool parsed = n > 0 && wd_json_parse(&j, body, n) == 0 && wd_json_type(&j, 0) == WD_J_OBJ;
    if (status != 200) {
        char err[64] = "", desc[200] = "";
        if (parsed) {
            why_member(&j, 0, "error", err, sizeof err, false);
            why_member(&j, 0, "error_description", desc, sizeof desc, true);
        }
        if (err[0] != '\0')
            set_why(why, whycap, "HTTP %ld %s%s%s", status, err, desc[0] ? ": " : "", desc);
        else
            set_why(why, whycap, "HTTP %ld%s", status, parsed || n == 0 ? "" : " (not JSON)");
        goto out;
    }
    if (!parsed) {
        set_why(why, whycap, "the token answer is not a JSON object");
        goto out;
    }
    int tt = wd_json_get(&j, 0, "token_type");
    if (tt >= 0) {
        struct wd_str s;
        if (str_member(&j, 0, "token_type", &s) != 0 || s.n != 6 || strncasecmp(s.p, "Bearer", 6) != 0) {
            set_why(why, whycap, "the token answer's token_type is not Bearer");
            goto out;
        }
    }
    int at = wd_json_get(&j, 0, "access_token");
    if (at < 0 || wd_json_type(&j, at) != WD_J_STR) {
        set_why(why, whycap, "%s", at < 0 ? "the token answer has no access_token"
                                          : "the token answer's access_token is not a string");
        goto out;
    }
    int64_t ein = 0, eon = 0;
    int r1 = num_member(&j, 0, "expires_in", &ein), r2 = num_member(&j, 0, "expires_on", &eon);
    if (r1 < 0 || r2 < 0) {
        set_why(why, whycap, "the token answer's %s is not a number", r1 < 0 ? "expires_in" : "expires_on");
        goto out;
    }
    if (r1 != 0 && r2 == 0)
        ein = eon - now_s;
    if (r1 != 0 && r2 != 0) {
        set_why(why, whycap, "the token answer has no expires_in");
        goto out;
    }
    if (ein < 1 || ein > 604800) {
        set_why(why, whycap, "the token's lifetime (%lld s) is out of range", (long long)ein);
        goto out;
    }
    int len = decode_into(&j, at, tok, cap);
    if (len <= 0) {
        set_why(why, whycap, len < 0 ? "the access token is too long" : "the access token is empty");
        goto out;
    }
    for (int k = 0; k < len; k++) {
        unsigned char c = (unsigned char)tok[k];
        if (c <= 0x20 || c >= 0x7f) {
            OPENSSL_cleanse(tok, (size_t)len);
            tok[0] = '\0';
            set_why(why, whycap, "the access token has a character a header cannot carry");
            goto out;
        }
    }
    *expires_in = ein;
    ret = len;
out:
    wd_json_free(&j);
    return ret;
}

static size_t trim_slash(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    return n;
}

int wd_azure_vault_base(const char *vault_url, const struct wd_ref_azure *r, char *out, size_t cap)
{
    const char *t = (vault_url && *vault_url) ? vault_url : AZ_DEFAULT_VAULT_URL;
    if (strncmp(t, "https://", 8) != 0 && strncmp(t, "http://", 7) != 0)
        return -1;
    size_t o = 0, vn = strlen(r->vault), tn = trim_slash(t);
    for (size_t i = 0; i < tn;) {
        if (strncmp(t + i, "{vault}", 7) == 0) {
            if (o + vn >= cap)
                return -1;
            memcpy(out + o, r->vault, vn);
            o += vn;
            i += 7;
        } else {
            if (o + 1 >= cap)
                return -1;
            out[o++] = t[i++];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return 0;
}

int wd_azure_secret_url(const char *base, const struct wd_ref_azure *r, char *out, size_t cap)
{
    int n = r->version[0] ? snprintf(out, cap, "%s/secrets/%s/%s?api-version=" WD_AZURE_API_VERSION, base, r->name,
                                     r->version)
                          : snprintf(out, cap, "%s/secrets/%s?api-version=" WD_AZURE_API_VERSION, base, r->name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int wd_azure_token_url(const char *authority_host, const char *tenant, char *out, size_t cap)
{
    const char *a = (authority_host && *authority_host) ? authority_host : AZ_DEFAULT_AUTHORITY;
    int n = snprintf(out, cap, "%.*s/%s/oauth2/v2.0/token", (int)trim_slash(a), a, tenant);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void pct_encode(struct wd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            wd_buf_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            wd_buf_put(b, e, 3);
        }
    }
}

int wd_azure_imds_url(const char *imds_endpoint, const char *resource, const char *client_id, char *out, size_t cap)
{
    const char *e = (imds_endpoint && *imds_endpoint) ? imds_endpoint : AZ_DEFAULT_IMDS;
    struct wd_buf b = {0};
    wd_buf_put(&b, e, trim_slash(e));
    wd_buf_puts(&b, "/metadata/identity/oauth2/token?api-version=" WD_AZURE_IMDS_API_VERSION "&resource=");
    pct_encode(&b, resource);
    if (client_id && *client_id) {
        wd_buf_puts(&b, "&client_id=");
        pct_encode(&b, client_id);
    }
    int ret = -1;
    if (!b.oom && b.n < cap) {
        memcpy(out, b.p, b.n);
        out[b.n] = '\0';
        ret = 0;
    }
    wd_buf_free(&b);
    return ret;
}

int wd_azure_token_form(const char *client_id, const char *resource, const char *client_secret,
                        const char *assertion, struct wd_buf *out)
{
    if (!client_id || !*client_id || !resource || !*resource || (!assertion && !client_secret))
        return -1;
    char scope[160];
    int sn = snprintf(scope, sizeof scope, "%s/.default", resource);
    if (sn < 0 || (size_t)sn >= sizeof scope)
        return -1;
    const char *fields[] = {"grant_type", "client_credentials", "client_id", client_id, "scope", scope,
                            assertion ? "client_assertion_type" : "client_secret",
                            assertion ? "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" : client_secret,
                            "client_assertion", assertion, NULL};
    return wd_http_form_encode(fields, out);
}

/* ---- I/O part: the resolver thread's state -------------------------------------------------------------- */

/* One vault's challenge (tenant, resource) and token. The token lives in locked memory as "Bearer <token>". */
struct az_slot {
    char base[256];                 /* the vault's base URL; "" for a free slot */
    struct wd_azure_challenge ch;   /* what its challenge asked for; resource "" until it challenged */
    char *auth;                     /* AZ_TOKEN_MAX bytes of wd_secret_mem, or NULL: "Bearer ..." */
    int64_t expires_ms, renew_ms;   /* monotonic: when the token expires and when it is renewed */
    int64_t used_ms;                /* last use, for eviction */
};

static struct az_slot slots[AZ_SLOTS];

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void slot_drop_token(struct az_slot *s)
{
    if (s->auth) {
        wd_secret_mem_free(s->auth, AZ_TOKEN_MAX);
        s->auth = NULL;
    }
    s->expires_ms = s->renew_ms = 0;
}

static void slot_clear(struct az_slot *s)
{
    slot_drop_token(s);
    memset(s, 0, sizeof *s);
}

static struct az_slot *slot_for(const char *base)
{
    struct az_slot *free_s = NULL, *old = &slots[0];
    for (size_t i = 0; i < AZ_SLOTS; i++) {
        if (strcmp(slots[i].base, base) == 0)
            return &slots[i];
        if (slots[i].base[0] == '\0' && free_s == NULL)
            free_s = &slots[i];
        if (slots[i].used_ms < old->used_ms)
            old = &slots[i];
    }
    struct az_slot *s = free_s ? free_s : old;
    slot_clear(s);
    snprintf(s->base, sizeof s->base, "%s", base);
    return s;
}

static const char *cfg_or_env(const char *v, const char *env)
{
    if (v && *v)
        return v;
    const char *e = getenv(env);
    return e && *e ? e : NULL;
}

struct az_ctx {
    const struct wd_azure_config *c;
    unsigned timeout_ms;
    const char *tls_ca;
};

/* Body buffer reserved up front to its bound: curl's appends never reallocate, so no copy of a secret is left
 * behind in freed heap; az_body_free wipes it. */
static int az_body_init(struct wd_buf *b)
{
    memset(b, 0, sizeof *b);
    return wd_buf_reserve(b, AZ_ANSWER_MAX + 1) ? 0 : -1;
}

static void az_body_free(struct wd_buf *b)
{
    if (b->p)
        OPENSSL_cleanse(b->p, b->cap);
    wd_buf_free(b);
}

/* Reads the federated token file (read again at each token request: the kubelet rotates it). */
static int read_assertion(const char *path, char *buf, size_t cap, char *why, size_t whycap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_why(why, whycap, "workload identity: cannot open the federated token file %.200s: %s", path,
                strerror(errno));
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n >= cap - 1)
            break;
    }
    close(fd);
    if (n >= cap - 1) {
        set_why(why, whycap, "workload identity: the federated token file is larger than %zu bytes", cap - 2);
        return -1;
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = '\0';
    if (n == 0) {
        set_why(why, whycap, "workload identity: the federated token file %.200s is empty", path);
        return -1;
    }
    return 0;
}

enum az_cred { AZ_WI, AZ_SECRET, AZ_MI };

static enum az_cred pick_cred(const struct wd_azure_config *c)
{
    switch (c->credentials) {
    case WD_AZ_SRC_CLIENT_SECRET: return AZ_SECRET;
    case WD_AZ_SRC_WORKLOAD_IDENTITY: return AZ_WI;
    case WD_AZ_SRC_MANAGED_IDENTITY: return AZ_MI;
    default: break;
    }
    const char *cid = cfg_or_env(c->client_id, "AZURE_CLIENT_ID");
    if (cfg_or_env(c->federated_token_file, "AZURE_FEDERATED_TOKEN_FILE") && cid)
        return AZ_WI;
    if (cid && ((c->client_secret && *c->client_secret) || getenv("AZURE_CLIENT_SECRET")))
        return AZ_SECRET;
    return AZ_MI;
}

static const char *cred_name(enum az_cred k)
{
    return k == AZ_WI ? "workload identity" : k == AZ_SECRET ? "client secret" : "managed identity";
}

/* A token for s's challenge into s->auth. 0, or -1 with why (s's old token, if any, is left as it was). */
static int az_login(const struct az_ctx *x, struct az_slot *s, char *why, size_t whycap)
{
    const struct wd_azure_config *c = x->c;
    enum az_cred kind = pick_cred(c);
    const char *cid = cfg_or_env(c->client_id, "AZURE_CLIENT_ID");
    char url[1024], e[256], sub[300];
    struct wd_buf body, form = {0};
    char *cred = NULL, *tok = NULL;
    size_t cred_cap = AZ_ASSERTION_MAX;
    long status = 0;
    int ret = -1;
    if (az_body_init(&body) != 0) {
        set_why(why, whycap, "token: out of memory");
        return -1;
    }
    tok = wd_secret_mem_alloc(AZ_TOKEN_MAX);
    if (tok == NULL) {
        set_why(why, whycap, "token: out of locked memory");
        goto out;
    }
    struct wd_fetch f = {.tls_ca = x->tls_ca, .timeout_ms = x->timeout_ms, .max_bytes = AZ_ANSWER_MAX,
                         .accept = "application/json"};
    if (kind == AZ_MI) {
        static const char *const mi_headers[] = {"Metadata: true", NULL};
        if (wd_azure_imds_url(c->imds_endpoint, s->ch.resource, cid, url, sizeof url) != 0) {
            set_why(why, whycap, "managed identity: the IMDS URL is too long");
            goto out;
        }
        f.url = url;
        f.headers = mi_headers;
        f.direct = true; /* IMDS is link-local: never through a proxy */
    } else {
        const char *cfg_tenant = cfg_or_env(c->tenant_id, "AZURE_TENANT_ID");
        if (cfg_tenant && strcasecmp(cfg_tenant, s->ch.tenant) != 0) {
            set_why(why, whycap, "%s: the vault's challenge names tenant %s, the configured tenant is %.80s",
                    cred_name(kind), s->ch.tenant, cfg_tenant);
            goto out;
        }
        if (cid == NULL) {
            set_why(why, whycap, "%s: no client id (secrets.azure.client_id or AZURE_CLIENT_ID)", cred_name(kind));
            goto out;
        }
        if (wd_azure_token_url(cfg_or_env(c->authority_host, "AZURE_AUTHORITY_HOST"), s->ch.tenant, url,
                               sizeof url) != 0) {
            set_why(why, whycap, "%s: the token URL is too long", cred_name(kind));
            goto out;
        }
        cred = wd_secret_mem_alloc(cred_cap);
        if (cred == NULL) {
            set_why(why, whycap, "%s: out of locked memory", cred_name(kind));
            goto out;
        }
        if (kind == AZ_WI) {
            const char *path = cfg_or_env(c->federated_token_file, "AZURE_FEDERATED_TOKEN_FILE");
            if (path == NULL) {
                set_why(why, whycap, "workload identity: no federated token file (AZURE_FEDERATED_TOKEN_FILE)");
                goto out;
            }
            if (read_assertion(path, cred, cred_cap, why, whycap) != 0)
                goto out;
        } else {
            const char *ref = (c->client_secret && *c->client_secret) ? c->client_secret : "env://AZURE_CLIENT_SECRET";
            if (strncmp(ref, "env://", 6) != 0 && strncmp(ref, "file://", 7) != 0) {
                set_why(why, whycap, "client secret: secrets.azure.client_secret must be an env:// or file:// "
                                     "reference");
                goto out;
            }
            int n = wd_secret_resolve(ref, cred, cred_cap);
            while (n > 0 && isspace((unsigned char)cred[n - 1]))
                cred[--n] = '\0';
            if (n <= 0) {
                set_why(why, whycap, "client secret: %.200s cannot be read", ref);
                goto out;
            }
        }
        /* worst case: every byte percent-encoded, reserved so that encoding never reallocates */
        if (!wd_buf_reserve(&form, 3 * (strlen(cred) + strlen(cid) + sizeof s->ch.resource) + 256) ||
            wd_azure_token_form(cid, s->ch.resource, kind == AZ_SECRET ? cred : NULL, kind == AZ_WI ? cred : NULL,
                                &form) != 0 || form.oom) {
            set_why(why, whycap, "%s: cannot build the token request", cred_name(kind));
            goto out;
        }
        f.url = url;
        f.post = form.p;
        f.post_len = form.n;
    }
    if (wd_fetch_request(&f, &body, &status, e, sizeof e) != 0) {
        set_why(why, whycap, "%s: token request: %s", cred_name(kind), e);
        goto out;
    }
    int64_t exp_s = 0;
    memcpy(tok, "Bearer ", 7);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (wd_azure_parse_token(body.p, body.n, status, now.tv_sec, tok + 7, AZ_TOKEN_MAX - 7, &exp_s, sub,
                             sizeof sub) < 0) {
        set_why(why, whycap, "%s: token: %s", cred_name(kind), sub);
        goto out;
    }
    slot_drop_token(s);
    s->auth = tok;
    tok = NULL;
    int64_t now_ms = mono_ms(), life = exp_s * 1000;
    s->expires_ms = now_ms + life;
    s->renew_ms = s->expires_ms - (life / 2 < AZ_RENEW_AHEAD_MS ? life / 2 : AZ_RENEW_AHEAD_MS);
    ret = 0;
out:
    if (tok)
        wd_secret_mem_free(tok, AZ_TOKEN_MAX);
    if (cred)
        wd_secret_mem_free(cred, cred_cap);
    if (form.p)
        OPENSSL_cleanse(form.p, form.cap);
    wd_buf_free(&form);
    az_body_free(&body);
    return ret;
}

/* One GET of url with s's token (none when s->auth is NULL): body and headers replaced. */
static int az_get(const struct az_ctx *x, const struct az_slot *s, const char *url, struct wd_buf *body,
                  struct wd_buf *hdrs, long *status, char *e, size_t ecap)
{
    body->n = 0;
    hdrs->n = 0;
    struct wd_fetch f = {.url = url, .tls_ca = x->tls_ca, .timeout_ms = x->timeout_ms, .max_bytes = AZ_ANSWER_MAX,
                         .accept = "application/json", .authorization = s->auth, .resp_headers = hdrs};
    return wd_fetch_request(&f, body, status, e, ecap);
}

/* The challenge in a 401's headers into s (its resource checked against the vault). */
static int take_challenge(struct az_slot *s, const struct wd_buf *hdrs, char *why, size_t whycap)
{
    struct wd_azure_challenge ch;
    char sub[200];
    if (wd_azure_parse_challenge(hdrs->p ? hdrs->p : "", hdrs->n, &ch, sub, sizeof sub) != 0 ||
        wd_azure_check_resource(ch.resource, s->base, sub, sizeof sub) != 0) {
        set_why(why, whycap, "challenge: %s", sub);
        return -1;
    }
    s->ch = ch;
    return 0;
}

int wd_azure_kv_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap,
                        int64_t *ttl_ms, char *why, size_t whycap)
{
    const struct wd_azure_config *c = &cfg->azure;
    struct az_ctx x = {c, c->timeout_ms ? c->timeout_ms : AZ_DEFAULT_TIMEOUT_MS,
                       (c->tls_ca && *c->tls_ca) ? c->tls_ca : NULL};
    *ttl_ms = c->ttl_ms ? c->ttl_ms : AZ_DEFAULT_TTL_MS;
    struct wd_ref_azure r;
    char base[256], url[1024], sub[300], e[256];
    if (wd_ref_azure_parse(ref, &r, sub, sizeof sub) != 0) {
        set_why(why, whycap, "azure-kv: %s", sub);
        return -1;
    }
    if (wd_azure_vault_base(c->vault_url, &r, base, sizeof base) != 0 ||
        wd_azure_secret_url(base, &r, url, sizeof url) != 0) {
        set_why(why, whycap, "azure-kv: secrets.azure.vault_url does not make an http(s) URL that fits");
        return -1;
    }
    struct az_slot *s = slot_for(base);
    s->used_ms = mono_ms();
    struct wd_buf body, hdrs = {0};
    if (az_body_init(&body) != 0) {
        set_why(why, whycap, "azure-kv: out of memory");
        return -1;
    }
    int ret = -1;
    long status = 0;
    bool relogged = false;
    /* A token near its renewal is renewed first; when that fails, the old one is used while it lasts. */
    if (s->auth && mono_ms() >= s->renew_ms && s->ch.resource[0]) {
        if (az_login(&x, s, sub, sizeof sub) != 0) {
            if (mono_ms() >= s->expires_ms - 5000) {
                slot_drop_token(s);
                set_why(why, whycap, "azure-kv: %s", sub);
                goto out;
            }
            wd_logf(WD_LOG_WARN, "", "azure-kv: renewing the token for %.120s failed (%.200s); the current one is used "
                    "for %lld s more", s->base, sub, (long long)((s->expires_ms - mono_ms()) / 1000));
        }
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        if (s->auth == NULL && s->ch.resource[0]) {
            if (az_login(&x, s, sub, sizeof sub) != 0) {
                set_why(why, whycap, "azure-kv: %s", sub);
                goto out;
            }
            relogged = true;
        }
        if (az_get(&x, s, url, &body, &hdrs, &status, e, sizeof e) != 0) {
            set_why(why, whycap, "azure-kv: read %s: %s", r.name, e);
            goto out;
        }
        if (status == 401) {
            /* no token yet (the challenge that names tenant and resource), or one Key Vault refused */
            bool had = s->auth != NULL;
            slot_drop_token(s);
            if (take_challenge(s, &hdrs, sub, sizeof sub) != 0) {
                set_why(why, whycap, "azure-kv: read %s: HTTP 401, %s", r.name, sub);
                goto out;
            }
            if (had && relogged)
                break; /* a fresh token refused: reported below */
            continue;
        }
        const char *inner = "";
        int n = wd_azure_parse_secret(body.p, body.n, status, out, cap, &inner, sub, sizeof sub);
        if (n > 0) {
            ret = n;
            goto out;
        }
        if (strcmp(inner, "auth") == 0 && s->auth && !relogged) {
            slot_drop_token(s); /* a 403 on a token that predates a role change: one fresh token */
            continue;
        }
        set_why(why, whycap, "azure-kv: read %s%s%s: %s", r.name, r.version[0] ? "/" : "", r.version, sub);
        goto out;
    }
    /* only a fresh token refused gets here: Key Vault's words for it */
    if (wd_azure_parse_secret(body.p, body.n, status, out, cap, NULL, sub, sizeof sub) < 0)
        set_why(why, whycap, "azure-kv: read %s: a fresh token was refused: %s", r.name, sub);
    else
        set_why(why, whycap, "azure-kv: read %s: a fresh token was refused", r.name);
    OPENSSL_cleanse(out, cap);
out:
    if (hdrs.p)
        OPENSSL_cleanse(hdrs.p, hdrs.cap);
    wd_buf_free(&hdrs);
    az_body_free(&body);
    return ret;
}

void wd_azure_kv_shutdown(void)
{
    for (size_t i = 0; i < AZ_SLOTS; i++)
        slot_clear(&slots[i]);
}
