/* gcp-sm:// references: GCP Secret Manager's `versions/V:access`, with an access token from a service-account
 * key (an RS256 JWT assertion exchanged at the token endpoint) or from the metadata server (GCE, GKE Workload
 * Identity). Runs on the secret cache's resolver thread only, so the cached token needs no lock. */
#include "secrets/gcp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lib/hash.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret_ref.h"
#include "net/fetch.h"
#include "secrets/backend.h"

#define ACCESS_MAX (128u << 10) /* a version holds at most 64 KiB: its base64 and the JSON around it */
#define TOKEN_ANSWER_MAX (16u << 10)
#define KEY_FILE_MAX (64u << 10)
#define ASSERTION_MAX 8192
#define DEFAULT_TTL_MS 300000
#define DEFAULT_TIMEOUT_MS 10000

/* ---- pure parts ---- */

uint32_t wd_gcp_crc32c(const void *p, size_t n)
{
    static uint32_t table[256];
    static bool ready;
    if (!ready) { /* resolver thread, fuzzer and tests: single-threaded users, and an idempotent fill */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    const uint8_t *b = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* Text from the service into why: printable ASCII only (a log line, a /readyz body), cut at max bytes. */
static void put_clean(char *dst, size_t cap, const char *s, size_t n, size_t max)
{
    if (cap == 0)
        return;
    size_t w = 0;
    for (size_t i = 0; i < n && i < max && w + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[w++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
    }
    dst[w] = '\0';
}

/* A decoded JSON string member of obj, cleaned, into dst; "" when absent or not a string. */
static void member_text(const struct wd_json *j, int obj, const char *key, char *dst, size_t cap, size_t max)
{
    dst[0] = '\0';
    int v = wd_json_get(j, obj, key);
    if (wd_json_type(j, v) != WD_J_STR)
        return;
    struct wd_arena a = {0};
    struct wd_str s;
    if (wd_json_str_decode(j, v, &a, &s) == 0)
        put_clean(dst, cap, s.p, s.n, max);
    wd_arena_free(&a);
}

/* A failed answer into why: Google's {"error":{"code","message","status"}}, OAuth's {"error","error_description"},
 * or the first line of a text body (the metadata server's). */
static void answer_error(const char *what, long status, const char *body, size_t n, char *why, size_t whycap)
{
    struct wd_json j = {0};
    char code[64] = "", msg[128] = "";
    if (n > 0 && wd_json_parse(&j, body, n) == 0 && wd_json_type(&j, 0) == WD_J_OBJ) {
        int e = wd_json_get(&j, 0, "error");
        if (wd_json_type(&j, e) == WD_J_OBJ) {
            member_text(&j, e, "status", code, sizeof(code), 48);
            member_text(&j, e, "message", msg, sizeof(msg), 120);
        } else if (wd_json_type(&j, e) == WD_J_STR) {
            member_text(&j, 0, "error", code, sizeof(code), 48);
            member_text(&j, 0, "error_description", msg, sizeof(msg), 120);
        }
        wd_json_free(&j);
    } else {
        wd_json_free(&j);
        if (status != 200 && n > 0 && body[0] != '<' && body[0] != '{') {
            size_t line = 0;
            while (line < n && body[line] != '\r' && body[line] != '\n')
                line++;
            put_clean(msg, sizeof(msg), body, line, 100);
        }
    }
    snprintf(why, whycap, "%s: HTTP %ld%s%s%s%s", what, status, code[0] ? " " : "", code, msg[0] ? ": " : "",
                 msg);
}

int wd_gcp_parse_access(long status, const char *body, size_t n, char *out, size_t cap, char *why, size_t whycap)
{
    if (cap > 0)
        out[0] = '\0';
    if (status != 200) {
        answer_error("access", status, body, n, why, whycap);
        return -1;
    }
    struct wd_json j = {0};
    int rc = -1;
    if (wd_json_parse(&j, body, n) != 0 || wd_json_type(&j, 0) != WD_J_OBJ) {
        snprintf(why, whycap, "access: the answer is not a JSON object");
        goto out;
    }
    int payload = wd_json_get(&j, 0, "payload");
    if (wd_json_type(&j, payload) != WD_J_OBJ) {
        snprintf(why, whycap, "access: the answer has no payload object");
        goto out;
    }
    int data = wd_json_get(&j, payload, "data");
    if (data < 0) {
        snprintf(why, whycap, "access: the secret version is empty");
        goto out;
    }
    if (wd_json_type(&j, data) != WD_J_STR) {
        snprintf(why, whycap, "access: payload.data is not a string");
        goto out;
    }
    int crc_tok = wd_json_get(&j, payload, "dataCrc32c");
    bool have_crc = false;
    uint64_t want = 0;
    if (crc_tok >= 0) {
        struct wd_str raw = wd_json_raw(&j, crc_tok);
        int t = wd_json_type(&j, crc_tok);
        bool ok = (t == WD_J_STR || t == WD_J_NUM) && raw.n > 0 && raw.n <= 10;
        for (size_t i = 0; ok && i < raw.n; i++)
            ok = raw.p[i] >= '0' && raw.p[i] <= '9';
        for (size_t i = 0; ok && i < raw.n; i++)
            want = want * 10 + (uint64_t)(raw.p[i] - '0');
        if (!ok || want > 0xFFFFFFFFu) {
            snprintf(why, whycap, "access: payload.dataCrc32c is not a CRC32C (a decimal string)");
            goto out;
        }
        have_crc = true;
    }
    if (cap < 2) {
        snprintf(why, whycap, "access: no room for the value");
        goto out;
    }
    struct wd_str raw = wd_json_raw(&j, data);
    /* the proto3 JSON forms of bytes: either alphabet, padding optional, and "\\/" for '/' */
    long len = wd_b64_decode(raw.p, raw.n, (uint8_t *)out, cap - 1,
                             WD_B64_URL | WD_B64_PAD_OPTIONAL | WD_B64_JSON_SLASH);
    if (len == -2) {
        snprintf(why, whycap, "access: the secret is longer than %zu bytes", cap - 1);
        goto wipe;
    }
    if (len < 0) {
        snprintf(why, whycap, "access: payload.data is not base64");
        goto wipe;
    }
    if (have_crc && wd_gcp_crc32c(out, (size_t)len) != (uint32_t)want) {
        snprintf(why, whycap, "access: payload.dataCrc32c does not match the data (corrupted on the way): refused");
        goto wipe;
    }
    size_t m = (size_t)len;
    while (m > 0 && (out[m - 1] == '\n' || out[m - 1] == '\r'))
        m--;
    if (m == 0) {
        snprintf(why, whycap, "access: the secret version is empty");
        goto wipe;
    }
    if (memchr(out, '\0', m) != NULL) {
        snprintf(why, whycap, "access: the secret holds a NUL byte, which no API key does");
        goto wipe;
    }
    OPENSSL_cleanse(out + m, (size_t)len - m);
    out[m] = '\0';
    rc = (int)m;
    goto out;
wipe:
    OPENSSL_cleanse(out, cap);
out:
    wd_json_free(&j);
    return rc;
}

int wd_gcp_parse_token(const char *what, long status, const char *body, size_t n, char *tok, size_t cap,
                       int64_t *expires_in, char *why, size_t whycap)
{
    *expires_in = 0;
    if (cap > 0)
        tok[0] = '\0';
    if (status != 200) {
        answer_error(what, status, body, n, why, whycap);
        return -1;
    }
    struct wd_json j = {0};
    int rc = -1;
    if (wd_json_parse(&j, body, n) != 0 || wd_json_type(&j, 0) != WD_J_OBJ) {
        snprintf(why, whycap, "%s: the answer is not a JSON object", what);
        goto out;
    }
    int at = wd_json_get(&j, 0, "access_token");
    if (wd_json_type(&j, at) != WD_J_STR) {
        snprintf(why, whycap, "%s: the answer has no access_token string", what);
        goto out;
    }
    struct wd_str t = wd_json_raw(&j, at);
    bool ok = t.n > 0 && !j.t[at].escaped;
    for (size_t i = 0; ok && i < t.n; i++)
        ok = t.p[i] > 0x20 && t.p[i] < 0x7F; /* it goes into a header line */
    if (!ok) {
        snprintf(why, whycap, "%s: the access_token is empty or not a plain token", what);
        goto out;
    }
    if (t.n + 1 > cap) {
        snprintf(why, whycap, "%s: the access_token is longer than %zu bytes", what, cap ? cap - 1 : 0);
        goto out;
    }
    int tt = wd_json_get(&j, 0, "token_type");
    if (tt >= 0) {
        struct wd_str v = wd_json_raw(&j, tt);
        if (wd_json_type(&j, tt) != WD_J_STR || v.n != 6 || strncasecmp(v.p, "Bearer", 6) != 0) {
            snprintf(why, whycap, "%s: token_type is not Bearer", what);
            goto out;
        }
    }
    int ex = wd_json_get(&j, 0, "expires_in");
    int64_t e = 0;
    if (wd_json_type(&j, ex) != WD_J_NUM || wd_json_i64(&j, ex, &e) != 0 || e <= 0) {
        snprintf(why, whycap, "%s: the answer has no positive integer expires_in", what);
        goto out;
    }
    *expires_in = e > 86400 ? 86400 : e;
    memcpy(tok, t.p, t.n);
    tok[t.n] = '\0';
    rc = (int)t.n;
out:
    wd_json_free(&j);
    return rc;
}

/* A string member decoded and copied whole into dst, or -1 (absent, not a string, too long, empty). */
static int member_copy(const struct wd_json *j, int obj, const char *key, char *dst, size_t cap)
{
    int v = wd_json_get(j, obj, key);
    if (wd_json_type(j, v) != WD_J_STR)
        return -1;
    struct wd_arena a = {0};
    struct wd_str s;
    int rc = -1;
    if (wd_json_str_decode(j, v, &a, &s) == 0 && s.n > 0 && s.n < cap && memchr(s.p, '\0', s.n) == NULL) {
        memcpy(dst, s.p, s.n);
        dst[s.n] = '\0';
        rc = 0;
    }
    wd_arena_free(&a);
    return rc;
}

int wd_gcp_parse_key(const char *json, size_t n, struct wd_gcp_key *key, char *pem, size_t pemcap, char *why,
                     size_t whycap)
{
    memset(key, 0, sizeof(*key));
    struct wd_json j = {0};
    int rc = -1;
    if (wd_json_parse(&j, json, n) != 0 || wd_json_type(&j, 0) != WD_J_OBJ) {
        snprintf(why, whycap, "the key file is not a JSON object");
        goto out;
    }
    char type[64];
    if (member_copy(&j, 0, "type", type, sizeof(type)) != 0) {
        snprintf(why, whycap, "the key file has no type (a service-account key has \"type\": \"service_account\")");
        goto out;
    }
    if (strcmp(type, "service_account") != 0) {
        char t[48];
        put_clean(t, sizeof(t), type, strlen(type), 40);
        snprintf(why, whycap, "the key file is of type %s; only service_account keys are supported", t);
        goto out;
    }
    if (member_copy(&j, 0, "client_email", key->client_email, sizeof(key->client_email)) != 0 ||
        strchr(key->client_email, '@') == NULL) {
        snprintf(why, whycap, "the key file has no client_email");
        goto out;
    }
    if (member_copy(&j, 0, "private_key_id", key->private_key_id, sizeof(key->private_key_id)) != 0) {
        snprintf(why, whycap, "the key file has no private_key_id");
        goto out;
    }
    int tu = wd_json_get(&j, 0, "token_uri");
    if (tu < 0) {
        snprintf(key->token_uri, sizeof(key->token_uri), "%s", WD_GCP_TOKEN_URI);
    } else if (member_copy(&j, 0, "token_uri", key->token_uri, sizeof(key->token_uri)) != 0 ||
               (strncmp(key->token_uri, "https://", 8) != 0 && strncmp(key->token_uri, "http://", 7) != 0)) {
        snprintf(why, whycap, "the key file's token_uri is not a URL");
        goto out;
    }
    int pk = wd_json_get(&j, 0, "private_key");
    struct wd_str raw = wd_json_type(&j, pk) == WD_J_STR ? wd_json_raw(&j, pk) : WD_STR_NULL;
    if (raw.n == 0) {
        snprintf(why, whycap, "the key file has no private_key");
        goto out;
    }
    if (raw.n + 1 > pemcap) {
        snprintf(why, whycap, "the key file's private_key is longer than %zu bytes", pemcap);
        goto out;
    }
    /* a buffer over pem that never grows (the unescaped form is no longer than the raw one): the key stays in
     * the caller's locked memory */
    struct wd_buf b = {pem, 0, pemcap, false};
    if (wd_json_unescape(&b, raw.p, raw.n) != 0 || b.p != pem) {
        OPENSSL_cleanse(pem, pemcap);
        snprintf(why, whycap, "the key file's private_key is not a valid string");
        goto out;
    }
    pem[b.n] = '\0';
    key->pem = pem;
    key->pem_len = b.n;
    rc = 0;
out:
    wd_json_free(&j);
    return rc;
}

int wd_gcp_jwt_unsigned(const struct wd_gcp_key *key, int64_t now, char *out, size_t cap)
{
    struct wd_buf h = {0}, c = {0};
    wd_buf_puts(&h, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":");
    wd_json_put_string(&h, key->private_key_id, strlen(key->private_key_id));
    wd_buf_putc(&h, '}');
    wd_buf_puts(&c, "{\"iss\":");
    wd_json_put_string(&c, key->client_email, strlen(key->client_email));
    wd_buf_puts(&c, ",\"scope\":\"" WD_GCP_SCOPE "\",\"aud\":");
    wd_json_put_string(&c, key->token_uri, strlen(key->token_uri));
    wd_buf_printf(&c, ",\"iat\":%lld,\"exp\":%lld}", (long long)now, (long long)now + 3600);
    int rc = -1;
    if (!h.oom && !c.oom && WD_B64URL_LEN(h.n) + 1 + WD_B64URL_LEN(c.n) + 1 <= cap) {
        size_t w = wd_b64url_encode((const uint8_t *)h.p, h.n, out);
        out[w++] = '.';
        w += wd_b64url_encode((const uint8_t *)c.p, c.n, out + w);
        rc = (int)w;
    }
    wd_buf_free(&h);
    wd_buf_free(&c);
    return rc;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0; /* an encrypted key is refused, never prompted for */
}

int wd_gcp_jwt_sign(const struct wd_gcp_key *key, int64_t now, char *out, size_t cap, char *why, size_t whycap)
{
    int n = wd_gcp_jwt_unsigned(key, now, out, cap);
    if (n < 0) {
        snprintf(why, whycap, "the assertion does not fit in %zu bytes", cap);
        return -1;
    }
    BIO *bio = key->pem ? BIO_new_mem_buf(key->pem, (int)key->pem_len) : NULL;
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    int rc = -1;
    if (pk == NULL) {
        snprintf(why, whycap, "the key file's private_key is not a PEM private key");
        return -1;
    }
    EVP_MD_CTX *ctx = NULL;
    if (!EVP_PKEY_is_a(pk, "RSA")) {
        snprintf(why, whycap, "the key file's private_key is not an RSA key (RS256 needs one)");
        goto out;
    }
    if (EVP_PKEY_get_bits(pk) < 2048 || EVP_PKEY_get_size(pk) > 1024) {
        snprintf(why, whycap, "the key file's RSA key is not between 2048 and 8192 bits");
        goto out;
    }
    uint8_t sig[1024];
    size_t sl = sizeof(sig);
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, wd_sha256_md(), NULL, pk) != 1 ||
        EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)out, (size_t)n) != 1) {
        snprintf(why, whycap, "signing the assertion failed");
        goto out;
    }
    if ((size_t)n + 1 + WD_B64URL_LEN(sl) + 1 > cap) {
        snprintf(why, whycap, "the assertion does not fit in %zu bytes", cap);
        goto out;
    }
    out[n] = '.';
    rc = n + 1 + (int)wd_b64url_encode(sig, sl, out + n + 1);
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

int wd_gcp_access_url(const char *endpoint, const char *ref, char *out, size_t cap, char *why, size_t whycap)
{
    struct wd_ref_gcp r;
    if (wd_ref_gcp_parse(ref, &r, why, whycap) != 0)
        return -1;
    size_t el = strlen(endpoint);
    if (el > 0 && endpoint[el - 1] == '/')
        el--;
    int n = snprintf(out, cap, "%.*s/v1/projects/%s/secrets/%s/versions/%s:access", (int)el, endpoint, r.project,
                     r.secret, r.version);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(why, whycap, "the endpoint is too long");
        return -1;
    }
    return n;
}

int wd_gcp_metadata_url(const char *host, char *out, size_t cap, char *why, size_t whycap)
{
    size_t n = strlen(host);
    bool ok = n > 0 && n < 256;
    for (size_t i = 0; ok && i < n; i++) {
        char c = host[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
             c == ':' || c == '[' || c == ']';
    }
    if (!ok) {
        snprintf(why, whycap, "the metadata host is not host[:port]");
        return -1;
    }
    int w = snprintf(out, cap, "http://%s/computeMetadata/v1/instance/service-accounts/default/token", host);
    if (w < 0 || (size_t)w >= cap) {
        snprintf(why, whycap, "the metadata host is too long");
        return -1;
    }
    return w;
}

int wd_gcp_metadata_flavor_ok(const char *h, size_t n)
{
    static const char name[] = "metadata-flavor:";
    size_t i = 0;
    while (i < n) {
        const char *eol = memchr(h + i, '\n', n - i);
        size_t end = eol ? (size_t)(eol - h) : n;
        size_t len = end - i;
        if (len >= sizeof(name) - 1 && strncasecmp(h + i, name, sizeof(name) - 1) == 0) {
            const char *v = h + i + sizeof(name) - 1, *e = h + end;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e - v == 6 && memcmp(v, "Google", 6) == 0)
                return 1;
        }
        i = end + 1;
    }
    return 0;
}

int64_t wd_gcp_token_renew_at(int64_t obtained_ms, int64_t expires_in)
{
    int64_t life = expires_in * 1000;
    int64_t margin = life / 5 < 300000 ? life / 5 : 300000;
    return obtained_ms + life - margin;
}

/* ---- I/O: the resolver thread's ---- */

/* The cached access token, in locked memory: "Bearer " and the token, ready for the Authorization header. */
static struct {
    char *mem;         /* wd_secret_mem_alloc(TOKEN_MEM), or NULL before the first login */
    size_t len;        /* the token's length after "Bearer "; 0: none cached */
    int64_t renew_at;  /* monotonic ms: log in again from then on */
    int64_t expires_at; /* monotonic ms: the token's end, up to which it is used while renewals fail */
    char who[600];     /* where it came from ("key:PATH", "metadata:HOST"): another source drops it */
} g_tok;
#define TOKEN_MEM (WD_GCP_TOKEN_MAX + 16)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void token_drop(void)
{
    if (g_tok.mem != NULL)
        OPENSSL_cleanse(g_tok.mem, TOKEN_MEM);
    g_tok.len = 0;
    g_tok.renew_at = g_tok.expires_at = 0;
}

/* A body buffer over locked memory that never grows (wd_fetch stops at max_bytes, below its capacity). */
static int sbuf_new(struct wd_buf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->p = wd_secret_mem_alloc(cap + 1);
    b->cap = cap + 1;
    return b->p ? 0 : -1;
}
static void sbuf_free(struct wd_buf *b)
{
    wd_secret_mem_free(b->p, b->cap); /* wipes */
    memset(b, 0, sizeof(*b));
}

struct src {
    bool metadata;           /* the metadata server, else the key file */
    const char *key_file;    /* the key file's path */
    const char *md_host;     /* the metadata server's host[:port] */
};

static int pick_source(const struct wd_gcp_config *c, struct src *s, char *why, size_t whycap)
{
    memset(s, 0, sizeof(*s));
    const char *kf = c->credentials_file && c->credentials_file[0] ? c->credentials_file
                                                                   : getenv("GOOGLE_APPLICATION_CREDENTIALS");
    if (kf != NULL && kf[0] == '\0')
        kf = NULL;
    const char *mh = c->metadata_host && c->metadata_host[0] ? c->metadata_host : getenv("GCE_METADATA_HOST");
    if (mh == NULL || mh[0] == '\0')
        mh = "metadata.google.internal";
    if (c->credentials == WD_GCP_SRC_KEY && kf == NULL) {
        snprintf(why, whycap, "credentials: key, but no key file (secrets.gcp.credentials_file or "
                              "GOOGLE_APPLICATION_CREDENTIALS)");
        return -1;
    }
    s->metadata = c->credentials == WD_GCP_SRC_METADATA || (c->credentials == WD_GCP_SRC_AUTO && kf == NULL);
    s->key_file = kf;
    s->md_host = mh;
    return 0;
}

static int read_file(const char *path, char *buf, size_t cap, size_t *n, char *why, size_t whycap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whycap, "key file: cannot open %.100s: %s", path, strerror(errno));
        return -1;
    }
    *n = 0;
    for (;;) {
        if (*n + 1 >= cap) {
            close(fd);
            snprintf(why, whycap, "key file: %.100s is longer than %zu bytes", path, cap - 2);
            return -1;
        }
        ssize_t r = read(fd, buf + *n, cap - 1 - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whycap, "key file: cannot read %.100s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        *n += (size_t)r;
    }
    close(fd);
    buf[*n] = '\0';
    return 0;
}

static unsigned timeout_of(const struct wd_gcp_config *c) { return c->timeout_ms ? c->timeout_ms : DEFAULT_TIMEOUT_MS; }

/* Exchanges a signed assertion for a token: the answer's body into ans (locked). */
static int login_key(const struct wd_gcp_config *c, const struct src *s, struct wd_buf *ans, long *status,
                     char *why, size_t whycap)
{
    static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    char *file = wd_secret_mem_alloc(KEY_FILE_MAX), *pem = wd_secret_mem_alloc(KEY_FILE_MAX);
    char *form = wd_secret_mem_alloc(sizeof(grant) + ASSERTION_MAX);
    struct wd_gcp_key *key = wd_secret_mem_alloc(sizeof(*key));
    int rc = -1;
    size_t n = 0;
    char err[512];
    if (file == NULL || pem == NULL || form == NULL || key == NULL) {
        snprintf(why, whycap, "out of locked memory");
        goto out;
    }
    if (read_file(s->key_file, file, KEY_FILE_MAX, &n, why, whycap) != 0)
        goto out;
    if (wd_gcp_parse_key(file, n, key, pem, KEY_FILE_MAX, err, sizeof(err)) != 0) {
        snprintf(why, whycap, "key file %.100s: %.200s", s->key_file, err);
        goto out;
    }
    memcpy(form, grant, sizeof(grant) - 1);
    /* the assertion is base64url and dots: nothing in it needs percent-encoding */
    int an = wd_gcp_jwt_sign(key, (int64_t)time(NULL), form + sizeof(grant) - 1, ASSERTION_MAX, err, sizeof(err));
    if (an < 0) {
        snprintf(why, whycap, "key file %.100s: %.200s", s->key_file, err);
        goto out;
    }
    const char *url = c->token_endpoint && c->token_endpoint[0] ? c->token_endpoint : key->token_uri;
    struct wd_fetch f = {.url = url, .tls_ca = c->tls_ca, .timeout_ms = timeout_of(c), .max_bytes = TOKEN_ANSWER_MAX,
                         .post = form, .post_len = sizeof(grant) - 1 + (size_t)an, .accept = "application/json",
                         .content_type = "application/x-www-form-urlencoded"};
    if (wd_fetch_request(&f, ans, status, err, sizeof(err)) != 0) {
        snprintf(why, whycap, "token endpoint: %.200s", err);
        goto out;
    }
    rc = 0;
out:
    wd_secret_mem_free(file, KEY_FILE_MAX);
    wd_secret_mem_free(pem, KEY_FILE_MAX);
    wd_secret_mem_free(form, sizeof(grant) + ASSERTION_MAX);
    wd_secret_mem_free(key, sizeof(*key));
    return rc;
}

static int login_metadata(const struct wd_gcp_config *c, const struct src *s, struct wd_buf *ans, long *status,
                          char *why, size_t whycap)
{
    char url[400], err[512];
    if (wd_gcp_metadata_url(s->md_host, url, sizeof(url), err, sizeof(err)) < 0) {
        snprintf(why, whycap, "metadata server: %.200s", err);
        return -1;
    }
    static const char *const hdrs[] = {"Metadata-Flavor: Google", NULL};
    struct wd_buf rh = {0};
    struct wd_fetch f = {.url = url, .timeout_ms = timeout_of(c), .max_bytes = TOKEN_ANSWER_MAX,
                         .accept = "application/json", .headers = hdrs, .resp_headers = &rh, .direct = true};
    int rc = -1;
    if (wd_fetch_request(&f, ans, status, err, sizeof(err)) != 0)
        snprintf(why, whycap, "metadata server %.100s: %.200s", s->md_host, err);
    else if (*status == 200 && !wd_gcp_metadata_flavor_ok(rh.p ? rh.p : "", rh.n))
        snprintf(why, whycap, "metadata server %.100s: the answer lacks Metadata-Flavor: Google (not a metadata "
                              "server)", s->md_host);
    else
        rc = 0;
    wd_buf_free(&rh);
    return rc;
}

/* A usable token in g_tok: the cached one unless force or due, else a fresh login (*fresh set). */
static int token_get(const struct wd_gcp_config *c, bool force, bool *fresh, char *why, size_t whycap)
{
    *fresh = false;
    struct src s;
    if (pick_source(c, &s, why, whycap) != 0)
        return -1;
    char who[600];
    snprintf(who, sizeof(who), "%s:%s", s.metadata ? "metadata" : "key", s.metadata ? s.md_host : s.key_file);
    int64_t now = mono_ms();
    bool have = g_tok.len > 0 && strcmp(who, g_tok.who) == 0;
    if (!force && have && now < g_tok.renew_at)
        return 0;
    if (g_tok.mem == NULL && (g_tok.mem = wd_secret_mem_alloc(TOKEN_MEM)) == NULL) {
        snprintf(why, whycap, "out of locked memory");
        return -1;
    }
    struct wd_buf ans;
    char *nt = wd_secret_mem_alloc(TOKEN_MEM);
    if (nt == NULL || sbuf_new(&ans, TOKEN_ANSWER_MAX) != 0) {
        wd_secret_mem_free(nt, TOKEN_MEM);
        snprintf(why, whycap, "out of locked memory");
        return -1;
    }
    long status = 0;
    char err[512];
    int64_t life = 0;
    int rc = s.metadata ? login_metadata(c, &s, &ans, &status, why, whycap)
                        : login_key(c, &s, &ans, &status, why, whycap);
    if (rc == 0) {
        memcpy(nt, "Bearer ", 7);
        int n = wd_gcp_parse_token(s.metadata ? "metadata server" : "token endpoint", status, ans.p, ans.n, nt + 7,
                                   WD_GCP_TOKEN_MAX, &life, err, sizeof(err));
        if (n < 0) {
            snprintf(why, whycap, "%.300s", err);
            rc = -1;
        } else {
            memcpy(g_tok.mem, nt, TOKEN_MEM);
            g_tok.len = (size_t)n;
            g_tok.renew_at = wd_gcp_token_renew_at(now, life);
            g_tok.expires_at = now + life * 1000;
            snprintf(g_tok.who, sizeof(g_tok.who), "%s", who);
            *fresh = true;
            wd_logf(WD_LOG_INFO, "", "gcp-sm: access token from the %s %.200s, valid %lld s",
                    s.metadata ? "metadata server" : "service-account key", s.metadata ? s.md_host : s.key_file,
                    (long long)life);
        }
    }
    if (rc != 0 && !force && have && now < g_tok.expires_at - 10000) {
        /* a renewal ahead of expiry failed: the token in hand still works, the next read tries again */
        wd_logf(WD_LOG_WARN, "", "gcp-sm: renewing the access token failed (%.200s); the current one is used until "
                "it expires", why);
        rc = 0;
    } else if (rc != 0) {
        token_drop();
    }
    wd_secret_mem_free(nt, TOKEN_MEM);
    sbuf_free(&ans);
    return rc;
}

int wd_gcp_sm_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms,
                      char *why, size_t whycap)
{
    const struct wd_gcp_config *c = &cfg->gcp;
    *ttl_ms = c->ttl_ms ? c->ttl_ms : DEFAULT_TTL_MS;
    char url[1024], err[512];
    const char *ep = c->endpoint && c->endpoint[0] ? c->endpoint : "https://secretmanager.googleapis.com";
    if (wd_gcp_access_url(ep, ref, url, sizeof(url), err, sizeof(err)) < 0) {
        snprintf(why, whycap, "gcp-sm: %.200s", err);
        return -1;
    }
    struct wd_buf body;
    if (sbuf_new(&body, ACCESS_MAX) != 0) {
        snprintf(why, whycap, "gcp-sm: out of locked memory");
        return -1;
    }
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh;
        if (token_get(c, attempt > 0, &fresh, err, sizeof(err)) != 0) {
            snprintf(why, whycap, "gcp-sm: %.200s", err);
            break;
        }
        body.n = 0;
        long status = 0;
        struct wd_fetch f = {.url = url, .tls_ca = c->tls_ca, .timeout_ms = timeout_of(c), .max_bytes = ACCESS_MAX,
                             .accept = "application/json", .authorization = g_tok.mem};
        if (wd_fetch_request(&f, &body, &status, err, sizeof(err)) != 0) {
            snprintf(why, whycap, "gcp-sm: access: %.200s", err);
            break;
        }
        /* a token revoked or expired early (401), or one that predates a grant (403): once, with a new one */
        if ((status == 401 || status == 403) && !fresh && attempt == 0) {
            token_drop();
            continue;
        }
        rc = wd_gcp_parse_access(status, body.p, body.n, out, cap, err, sizeof(err));
        if (rc < 0)
            snprintf(why, whycap, "gcp-sm: %.200s", err);
        if (status == 401)
            token_drop();
        break;
    }
    sbuf_free(&body);
    return rc;
}

void wd_gcp_sm_shutdown(void)
{
    if (g_tok.mem != NULL)
        wd_secret_mem_free(g_tok.mem, TOKEN_MEM);
    memset(&g_tok, 0, sizeof(g_tok));
}
