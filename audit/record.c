/* Audit records: canonical form, chain hashes, checkpoints and the line format. See record.h and
 * docs/audit.md. */
#include "audit/record.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "lib/clock.h"
#include "lib/hash.h"
#include "secrets/secrets.h"

const struct wd_audit_field_desc wd_audit_fields[WD_AF__COUNT] = {
#define WD_AF_DESC(e, nm, ty) {nm, WD_AT_##ty, ",\"" nm "\":", sizeof(",\"" nm "\":") - 1},
    WD_AUDIT_FIELDS(WD_AF_DESC)
#undef WD_AF_DESC
};

static const char hexdig[] = "0123456789abcdef";
static int b64val(char c);

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* lowercase only, as wd_unhex */
}

static size_t utf8_seq(const unsigned char *s, size_t n);

/* Length of the longest prefix of s that does not end inside a UTF-8 sequence and whose canonical text is
 * at most max bytes: a byte that becomes U+FFFD (invalid UTF-8, NUL) counts as the three bytes it becomes,
 * since the reader holds the decoded string to the same limit. */
static size_t cut_utf8(const char *s, size_t n, size_t max)
{
    if (n <= max / 3)
        return n;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, out = 0;
    while (i < n) {
        size_t k = utf8_seq(p + i, n - i);
        if (out + (k ? k : 3) > max)
            break;
        out += k ? k : 3;
        i += k ? k : 1;
    }
    return i;
}

void wd_audit_set_str(struct wd_audit_rec *r, enum wd_audit_field_id f, const char *s, size_t n)
{
    if (s == NULL) {
        r->f[f] = (struct wd_audit_value){0};
        return;
    }
    r->f[f].s = s;
    r->f[f].n = cut_utf8(s, n, f == WD_AF_DETAIL ? WD_AUDIT_DETAIL_MAX : WD_AUDIT_STR_MAX);
    r->f[f].set = true;
}

void wd_audit_set_cstr(struct wd_audit_rec *r, enum wd_audit_field_id f, const char *s)
{
    wd_audit_set_str(r, f, s, s ? strlen(s) : 0);
}

void wd_audit_set_int(struct wd_audit_rec *r, enum wd_audit_field_id f, int64_t v)
{
    r->f[f].i = v;
    r->f[f].set = true;
}

/* Length of a valid UTF-8 sequence (no overlongs, surrogates or values past U+10FFFF) at s, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return c == 0 ? 0 : 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

/* Length of the leading run of p[0..n) with no control byte, quote or backslash (and, when ascii, no byte
 * from 0x80): eight bytes at a time, then byte by byte. The word test can stop early (a borrow out of a
 * matching byte), never late, so the byte loop decides exactly where the run ends. */
static size_t plain_run(const unsigned char *p, size_t n, bool ascii)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        uint64_t q = v ^ (ones * '"'), bs = v ^ (ones * '\\');
        uint64_t t = ((q - ones) & ~q) | ((bs - ones) & ~bs) | ((v - ones * 0x20) & ~v) | (ascii ? v : 0);
        if (t & highs)
            break;
        i += 8;
    }
    while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && (!ascii || p[i] < 0x80))
        i++;
    return i;
}

static void put_canon_string(struct wd_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    wd_buf_putc(b, '"');
    size_t run = 0; /* start of the current run of bytes copied as they are */
    for (size_t i = 0; i < n;) {
        i += plain_run(p + i, n - i, true);
        if (i >= n)
            break;
        unsigned c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t k = c >= 0x80 ? utf8_seq(p + i, n - i) : 0;
        if (k > 1) {
            i += k;
            continue;
        }
        wd_buf_put(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            wd_buf_putc(b, '\\');
            wd_buf_putc(b, (char)c);
        } else if (c >= 0x01 && c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
            wd_buf_put(b, e, 6);
        } else {
            wd_buf_put(b, "\xEF\xBF\xBD", 3); /* NUL or a byte that starts no valid sequence */
        }
        i++;
        run = i;
    }
    wd_buf_put(b, s + run, n - run);
    wd_buf_putc(b, '"');
}

void wd_audit_new_uuid(char out[37])
{
    uint8_t b[16];
    for (int i = 0; i < 2; i++) {
        uint64_t v = wd_rand_u64();
        memcpy(b + 8 * i, &v, 8);
    }
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    char h[33];
    wd_hex(b, 16, h);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

bool wd_audit_uuid_valid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (hexval(s[i]) < 0) {
            return false;
        }
    }
    return true;
}

int wd_audit_canonical(const struct wd_audit_rec *r, struct wd_buf *out)
{
    static const enum wd_audit_field_id required[] = {WD_AF_CHAIN_ID, WD_AF_SEQ, WD_AF_TS, WD_AF_KIND, WD_AF_EVENT};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const struct wd_audit_value *v = &r->f[required[i]];
        if (wd_audit_fields[required[i]].type == WD_AT_INT || wd_audit_fields[required[i]].type == WD_AT_TS
                ? !v->set
                : v->s == NULL)
            return -1;
    }
    if (!wd_audit_uuid_valid(r->f[WD_AF_CHAIN_ID].s, r->f[WD_AF_CHAIN_ID].n))
        return -1;
    /* seq from 1; ts between 1970 and 9999 (the canonical spelling has four year digits, the reader takes
     * no earlier year): anything else could be written but never read back */
    if (r->f[WD_AF_SEQ].i < 1 || r->f[WD_AF_TS].i < 0 || r->f[WD_AF_TS].i >= INT64_C(253402300800000000))
        return -1;
    wd_buf_puts(out, "{\"v\":1");
    for (int i = 0; i < WD_AF__COUNT; i++) {
        const struct wd_audit_value *v = &r->f[i];
        wd_buf_put(out, wd_audit_fields[i].key, wd_audit_fields[i].keylen);
        switch (wd_audit_fields[i].type) {
        case WD_AT_INT:
            if (v->set)
                wd_buf_put_i64(out, v->i);
            else
                wd_buf_puts(out, "null");
            break;
        case WD_AT_TS:
            if (v->set) {
                char ts[28];
                wd_format_ts(v->i, ts);
                wd_buf_putc(out, '"');
                wd_buf_put(out, ts, 27);
                wd_buf_putc(out, '"');
            } else {
                wd_buf_puts(out, "null");
            }
            break;
        case WD_AT_UUID:
        case WD_AT_STR:
            if (v->s != NULL)
                put_canon_string(out, v->s, v->n);
            else
                wd_buf_puts(out, "null");
            break;
        }
    }
    wd_buf_putc(out, '}');
    return out->oom ? -1 : 0;
}

void wd_audit_genesis(const char *chain_id, uint8_t out[32])
{
    wd_sha256_2("warden-audit-v1 genesis ", 24, chain_id, strlen(chain_id), out);
}

void wd_audit_chain_hash(const uint8_t prev[32], const char *canon, size_t n, uint8_t out[32])
{
    wd_sha256_2(prev, 32, canon, n, out);
}

static void put_b64(struct wd_buf *b, const void *p, size_t n)
{
    wd_buf_putc(b, '"');
    size_t enc = 4 * ((n + 2) / 3);
    if (wd_buf_reserve(b, enc + 1)) {
        EVP_EncodeBlock((unsigned char *)b->p + b->n, p, (int)n);
        b->n += enc;
    }
    wd_buf_putc(b, '"');
}

void wd_audit_line(const struct wd_audit_rec *r, const char *canon, size_t canon_len, const uint8_t hash[32],
                   struct wd_buf *out)
{
    char hx[65];
    wd_hex(hash, 32, hx);
    wd_buf_put(out, canon, canon_len - 1); /* without the closing brace */
    wd_buf_puts(out, ",\"hash\":\"");
    wd_buf_put(out, hx, 64);
    wd_buf_puts(out, "\",\"request_body\":");
    if (r->has_request_body)
        put_b64(out, r->request_body, r->request_body_len);
    else
        wd_buf_puts(out, "null");
    wd_buf_puts(out, ",\"response_body\":");
    if (r->has_response_body)
        put_b64(out, r->response_body, r->response_body_len);
    else
        wd_buf_puts(out, "null");
    wd_buf_putc(out, '}');
}

/* A bytea value in COPY text: "\\x" (the backslash doubled by COPY's own escaping) then hex. */
static void put_copy_bytea(struct wd_buf *out, const unsigned char *p, size_t n)
{
    wd_buf_put(out, "\\\\x", 3);
    if (!wd_buf_reserve(out, 2 * n + 1))
        return;
    wd_hex(p, n, out->p + out->n);
    out->n += 2 * n;
}

/* A JSON base64 string of a record line (exactly EVP_EncodeBlock's spelling) as a bytea, or null. */
static int copy_b64(const char **pp, const char *end, struct wd_buf *out)
{
    const char *p = *pp;
    if ((size_t)(end - p) >= 4 && memcmp(p, "null", 4) == 0) {
        wd_buf_put(out, "\\N", 2);
        *pp = p + 4;
        return 0;
    }
    if (p >= end || *p != '"')
        return -1;
    const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (q == NULL)
        return -1;
    size_t n = (size_t)(q - p - 1);
    if (n % 4 != 0 || n / 4 * 3 > WD_AUDIT_BODY_MAX)
        return -1;
    size_t pad = n >= 1 && q[-1] == '=' ? (n >= 2 && q[-2] == '=' ? 2 : 1) : 0;
    for (size_t k = 0; k < n - pad; k++)
        if (b64val(p[1 + k]) < 0)
            return -1;
    unsigned char *raw = malloc(n / 4 * 3 + 1);
    if (raw == NULL)
        return -1;
    int len = n ? EVP_DecodeBlock(raw, (const unsigned char *)p + 1, (int)n) : 0;
    if (len >= 0)
        put_copy_bytea(out, raw, (size_t)len - pad);
    free(raw);
    *pp = q + 1;
    return len < 0 ? -1 : 0;
}

int wd_audit_line_copy(const char *line, size_t n, struct wd_buf *out)
{
    const char *p = line, *end = line + n;
    size_t mark = out->n;
#define EXPECT(lit)                                                                                         \
    do {                                                                                                    \
        size_t l_ = sizeof(lit) - 1;                                                                        \
        if ((size_t)(end - p) < l_ || memcmp(p, lit, l_) != 0)                                              \
            goto bad;                                                                                       \
        p += l_;                                                                                            \
    } while (0)
    EXPECT("{\"v\":1");
    for (int i = 0; i < WD_AF__COUNT; i++) {
        size_t kl = wd_audit_fields[i].keylen;
        if ((size_t)(end - p) < kl || memcmp(p, wd_audit_fields[i].key, kl) != 0)
            goto bad;
        p += kl;
        if (i > 0)
            wd_buf_putc(out, '\t');
        if ((size_t)(end - p) >= 4 && memcmp(p, "null", 4) == 0) {
            wd_buf_put(out, "\\N", 2);
            p += 4;
            continue;
        }
        if (wd_audit_fields[i].type == WD_AT_INT) {
            const char *d = p;
            if (p < end && *p == '-')
                p++;
            const char *digits0 = p;
            while (p < end && *p >= '0' && *p <= '9')
                p++;
            if (p == digits0 || p - d > 20)
                goto bad;
            wd_buf_put(out, d, (size_t)(p - d));
            continue;
        }
        /* a canonical string: only \" \\ and \u00xx escapes; the bytes between are valid UTF-8 already */
        if (p >= end || *p++ != '"')
            goto bad;
        for (;;) {
            const char *run = p;
            p += plain_run((const unsigned char *)p, (size_t)(end - p), false);
            wd_buf_put(out, run, (size_t)(p - run));
            if (p >= end || (unsigned char)*p < 0x20)
                goto bad; /* the canonical form escapes every control byte */
            if (*p == '"') {
                p++;
                break;
            }
            if (end - p < 2)
                goto bad;
            if (p[1] == '"') {
                wd_buf_putc(out, '"');
                p += 2;
            } else if (p[1] == '\\') {
                wd_buf_put(out, "\\\\", 2);
                p += 2;
            } else if (p[1] == 'u' && end - p >= 6 && p[2] == '0' && p[3] == '0' && hexval(p[4]) >= 0 &&
                       hexval(p[5]) >= 0) {
                int c = hexval(p[4]) * 16 + hexval(p[5]);
                if (c == 0 || c >= 0x20)
                    goto bad;
                /* COPY's octal escape: tab, newline and carriage return must not appear raw */
                char e[4] = {'\\', (char)('0' + (c >> 6)), (char)('0' + ((c >> 3) & 7)), (char)('0' + (c & 7))};
                wd_buf_put(out, e, 4);
                p += 6;
            } else {
                goto bad;
            }
        }
    }
    EXPECT(",\"hash\":\"");
    {
        uint8_t h[32];
        if (end - p < 65 || p[64] != '"' || wd_unhex(p, 64, h, sizeof(h)) != 32)
            goto bad;
        wd_buf_putc(out, '\t');
        put_copy_bytea(out, h, 32);
        p += 65;
    }
    EXPECT(",\"request_body\":");
    wd_buf_putc(out, '\t');
    if (copy_b64(&p, end, out) != 0)
        goto bad;
    EXPECT(",\"response_body\":");
    wd_buf_putc(out, '\t');
    if (copy_b64(&p, end, out) != 0)
        goto bad;
    EXPECT("}");
    if (p != end)
        goto bad;
#undef EXPECT
    wd_buf_putc(out, '\n');
    if (!out->oom)
        return 0;
bad:
    out->n = mark;
    return -1;
}

void wd_audit_ckpt_message(const struct wd_audit_ckpt *c, struct wd_buf *out)
{
    char hx[65], ts[28];
    wd_hex(c->head, 32, hx);
    wd_format_ts(c->ts_us, ts);
    wd_buf_printf(out, "warden-audit-checkpoint-v1\n%s\n%lld\n%s\n%s\n", c->chain_id, (long long)c->seq, hx, ts);
}

void wd_audit_key_id(EVP_PKEY *key, char out[17])
{
    uint8_t raw[64], d[32];
    size_t n = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(key, raw, &n) != 1)
        n = 0;
    SHA256(raw, n, d);
    wd_hex(d, 8, out);
}

int wd_audit_ckpt_sign(struct wd_audit_ckpt *c, EVP_PKEY *key)
{
    wd_audit_key_id(key, c->key_id);
    struct wd_buf m = {0};
    wd_audit_ckpt_message(c, &m);
    int rc = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sl = sizeof(c->sig);
    if (ctx != NULL && !m.oom && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
        EVP_DigestSign(ctx, c->sig, &sl, (const unsigned char *)m.p, m.n) == 1 && sl == 64)
        rc = 0;
    EVP_MD_CTX_free(ctx);
    wd_buf_free(&m);
    return rc;
}

int wd_audit_ckpt_verify(const struct wd_audit_ckpt *c, EVP_PKEY *pub)
{
    if (EVP_PKEY_id(pub) != EVP_PKEY_ED25519)
        return -1; /* the algorithm is pinned by the key */
    char kid[17];
    wd_audit_key_id(pub, kid);
    if (strcmp(kid, c->key_id) != 0)
        return -1;
    struct wd_buf m = {0};
    wd_audit_ckpt_message(c, &m);
    int rc = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx != NULL && !m.oom && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
        EVP_DigestVerify(ctx, c->sig, 64, (const unsigned char *)m.p, m.n) == 1)
        rc = 0;
    EVP_MD_CTX_free(ctx);
    wd_buf_free(&m);
    return rc;
}

void wd_audit_ckpt_line(const struct wd_audit_ckpt *c, struct wd_buf *out)
{
    char hx[65], ts[28];
    wd_hex(c->head, 32, hx);
    wd_format_ts(c->ts_us, ts);
    wd_buf_printf(out, "{\"type\":\"checkpoint\",\"v\":1,\"chain_id\":\"%s\",\"seq\":%lld,\"head\":\"%s\",\"ts\":\"%s\","
                       "\"key_id\":\"%s\",\"sig\":",
                  c->chain_id, (long long)c->seq, hx, ts, c->key_id);
    put_b64(out, c->sig, 64);
    wd_buf_putc(out, '}');
}

void wd_audit_anchor_line(const char *chain_id, int64_t seq, const uint8_t hash[32], struct wd_buf *out)
{
    char hx[65];
    wd_hex(hash, 32, hx);
    wd_buf_printf(out, "{\"type\":\"anchor\",\"v\":1,\"chain_id\":\"%s\",\"seq\":%lld,\"hash\":\"%s\"}", chain_id,
                  (long long)seq, hx);
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes a base64 JSON string value (no escapes allowed) into the arena. Only the one spelling
 * EVP_EncodeBlock writes is accepted: EVP_DecodeBlock alone takes '=' anywhere as zero bits, skips
 * blanks at either end and ignores bits past the last byte. */
static int get_b64(const struct wd_json *j, int i, struct wd_arena *a, const void **p, size_t *n, size_t max)
{
    if (wd_json_type(j, i) != WD_J_STR || j->t[i].escaped)
        return -1;
    struct wd_str s = wd_json_raw(j, i);
    if (s.n % 4 != 0)
        return -1;
    size_t pad = 0;
    if (s.n >= 1 && s.p[s.n - 1] == '=')
        pad++;
    if (pad && s.p[s.n - 2] == '=')
        pad++;
    if (s.n / 4 * 3 - pad > max)
        return -1;
    for (size_t k = 0; k < s.n - pad; k++)
        if (b64val(s.p[k]) < 0)
            return -1;
    if (pad && (b64val(s.p[s.n - pad - 1]) & (pad == 1 ? 3 : 15)) != 0)
        return -1;
    unsigned char *out = wd_arena_alloc(a, s.n / 4 * 3 + 1);
    if (out == NULL)
        return -1;
    int len = s.n ? EVP_DecodeBlock(out, (const unsigned char *)s.p, (int)s.n) : 0;
    if (len < 0)
        return -1;
    *p = out;
    *n = (size_t)len - pad;
    return 0;
}

static int get_str(const struct wd_json *j, int i, struct wd_arena *a, struct wd_str *out)
{
    if (wd_json_type(j, i) != WD_J_STR)
        return -1;
    return wd_json_str_decode(j, i, a, out);
}

static int read_ckpt(const struct wd_json *j, struct wd_arena *a, struct wd_audit_ckpt *c, const char **why)
{
    static const char *const keys[] = {"type", "v", "chain_id", "seq", "head", "ts", "key_id", "sig"};
    if (j->t[0].size != sizeof(keys) / sizeof(keys[0])) {
        *why = "checkpoint: wrong number of fields";
        return -1;
    }
    int iv = wd_json_get(j, 0, "v"), ic = wd_json_get(j, 0, "chain_id"), is = wd_json_get(j, 0, "seq"),
        ih = wd_json_get(j, 0, "head"), it = wd_json_get(j, 0, "ts"), ik = wd_json_get(j, 0, "key_id"),
        ig = wd_json_get(j, 0, "sig");
    int64_t v;
    struct wd_str s;
    memset(c, 0, sizeof(*c));
    if (wd_json_i64(j, iv, &v) != 0 || v != 1) {
        *why = "checkpoint: unknown version";
        return -1;
    }
    if (get_str(j, ic, a, &s) != 0 || !wd_audit_uuid_valid(s.p, s.n)) {
        *why = "checkpoint: bad chain_id";
        return -1;
    }
    memcpy(c->chain_id, s.p, 36);
    if (wd_json_i64(j, is, &c->seq) != 0 || c->seq < 1) {
        *why = "checkpoint: bad seq";
        return -1;
    }
    if (get_str(j, ih, a, &s) != 0 || wd_unhex(s.p, s.n, c->head, 32) != 32) {
        *why = "checkpoint: bad head";
        return -1;
    }
    if (get_str(j, it, a, &s) != 0 || wd_parse_ts(s.p, s.n, &c->ts_us) != 0) {
        *why = "checkpoint: bad ts";
        return -1;
    }
    uint8_t kid[8];
    if (get_str(j, ik, a, &s) != 0 || wd_unhex(s.p, s.n, kid, 8) != 8) {
        *why = "checkpoint: bad key_id";
        return -1;
    }
    memcpy(c->key_id, s.p, 16);
    const void *sig;
    size_t sl;
    if (get_b64(j, ig, a, &sig, &sl, 64) != 0 || sl != 64) {
        *why = "checkpoint: bad sig";
        return -1;
    }
    memcpy(c->sig, sig, 64);
    return WD_AUDIT_LINE_CKPT;
}

static int read_anchor(const struct wd_json *j, struct wd_arena *a, struct wd_audit_rec *rec, uint8_t hash[32],
                       const char **why)
{
    if (j->t[0].size != 5) {
        *why = "anchor: wrong number of fields";
        return -1;
    }
    int64_t v;
    struct wd_str s;
    memset(rec, 0, sizeof(*rec));
    if (wd_json_i64(j, wd_json_get(j, 0, "v"), &v) != 0 || v != 1) {
        *why = "anchor: unknown version";
        return -1;
    }
    if (get_str(j, wd_json_get(j, 0, "chain_id"), a, &s) != 0 || !wd_audit_uuid_valid(s.p, s.n)) {
        *why = "anchor: bad chain_id";
        return -1;
    }
    wd_audit_set_str(rec, WD_AF_CHAIN_ID, s.p, s.n);
    if (wd_json_i64(j, wd_json_get(j, 0, "seq"), &v) != 0 || v < 1) {
        *why = "anchor: bad seq";
        return -1;
    }
    wd_audit_set_int(rec, WD_AF_SEQ, v);
    if (get_str(j, wd_json_get(j, 0, "hash"), a, &s) != 0 || wd_unhex(s.p, s.n, hash, 32) != 32) {
        *why = "anchor: bad hash";
        return -1;
    }
    return WD_AUDIT_LINE_ANCHOR;
}

int wd_audit_read_line(const char *line, size_t len, struct wd_arena *a, struct wd_json *j, struct wd_audit_rec *rec,
                       uint8_t hash[32], struct wd_audit_ckpt *ckpt, const char **why)
{
    if (wd_json_parse(j, line, len) != 0) {
        *why = "not valid JSON";
        return -1;
    }
    if (wd_json_type(j, 0) != WD_J_OBJ) {
        *why = "not a JSON object";
        return -1;
    }
    int ty = wd_json_get(j, 0, "type");
    if (ty >= 0) {
        if (wd_json_str_eq(j, ty, "checkpoint"))
            return read_ckpt(j, a, ckpt, why);
        if (wd_json_str_eq(j, ty, "anchor"))
            return read_anchor(j, a, rec, hash, why);
        *why = "unknown line type";
        return -1;
    }
    /* v + the fields + hash + two bodies, each exactly once */
    if (j->t[0].size != WD_AF__COUNT + 4) {
        *why = "record: wrong number of fields";
        return -1;
    }
    memset(rec, 0, sizeof(*rec));
    int64_t v;
    if (wd_json_i64(j, wd_json_get(j, 0, "v"), &v) != 0 || v != 1) {
        *why = "record: unknown version";
        return -1;
    }
    for (int f = 0; f < WD_AF__COUNT; f++) {
        int i = wd_json_get(j, 0, wd_audit_fields[f].name);
        if (i < 0) {
            *why = "record: a field is missing";
            return -1;
        }
        if (wd_json_type(j, i) == WD_J_NULL)
            continue;
        struct wd_str s;
        switch (wd_audit_fields[f].type) {
        case WD_AT_INT:
            if (wd_json_i64(j, i, &rec->f[f].i) != 0) {
                *why = "record: an integer field is not an integer";
                return -1;
            }
            rec->f[f].set = true;
            break;
        case WD_AT_TS:
            if (get_str(j, i, a, &s) != 0 || wd_parse_ts(s.p, s.n, &rec->f[f].i) != 0) {
                *why = "record: bad ts";
                return -1;
            }
            rec->f[f].set = true;
            break;
        case WD_AT_UUID:
        case WD_AT_STR:
            if (get_str(j, i, a, &s) != 0) {
                *why = "record: a text field is not a string";
                return -1;
            }
            /* NUL: canonical text has U+FFFD there, which is three bytes and might pass the limit */
            if (s.n > (f == WD_AF_DETAIL ? WD_AUDIT_DETAIL_MAX : WD_AUDIT_STR_MAX) || memchr(s.p, '\0', s.n) != NULL ||
                (wd_audit_fields[f].type == WD_AT_UUID && !wd_audit_uuid_valid(s.p, s.n))) {
                *why = "record: a text field is too long or malformed";
                return -1;
            }
            rec->f[f].s = s.p;
            rec->f[f].n = s.n;
            rec->f[f].set = true;
            break;
        }
    }
    struct wd_str hs;
    if (get_str(j, wd_json_get(j, 0, "hash"), a, &hs) != 0 || wd_unhex(hs.p, hs.n, hash, 32) != 32) {
        *why = "record: bad hash";
        return -1;
    }
    int ib = wd_json_get(j, 0, "request_body"), ob = wd_json_get(j, 0, "response_body");
    if (ib < 0 || ob < 0) {
        *why = "record: a field is missing";
        return -1;
    }
    if (wd_json_type(j, ib) != WD_J_NULL) {
        if (get_b64(j, ib, a, &rec->request_body, &rec->request_body_len, WD_AUDIT_BODY_MAX) != 0) {
            *why = "record: bad request_body";
            return -1;
        }
        rec->has_request_body = true;
    }
    if (wd_json_type(j, ob) != WD_J_NULL) {
        if (get_b64(j, ob, a, &rec->response_body, &rec->response_body_len, WD_AUDIT_BODY_MAX) != 0) {
            *why = "record: bad response_body";
            return -1;
        }
        rec->has_response_body = true;
    }
    struct wd_buf probe = {0};
    int rc = wd_audit_canonical(rec, &probe);
    wd_buf_free(&probe);
    if (rc != 0) {
        *why = "record: a required field is null";
        return -1;
    }
    return WD_AUDIT_LINE_RECORD;
}

size_t wd_audit_scan(const char *data, size_t len, wd_audit_line_cb cb, void *ctx, size_t *tail_len)
{
    size_t lines = 0, off = 0;
    struct wd_json j = {0};
    while (off < len) {
        const char *nl = memchr(data + off, '\n', len - off);
        if (nl == NULL)
            break;
        size_t n = (size_t)(nl - (data + off));
        struct wd_arena a = {0};
        struct wd_audit_rec rec;
        struct wd_audit_ckpt ck;
        uint8_t hash[32];
        const char *why = NULL;
        int kind = n == 0 ? -1 : wd_audit_read_line(data + off, n, &a, &j, &rec, hash, &ck, &why);
        if (n == 0)
            why = "empty line";
        bool has_rec = kind == WD_AUDIT_LINE_RECORD || kind == WD_AUDIT_LINE_ANCHOR;
        int stop = cb(ctx, kind, has_rec ? &rec : NULL, has_rec ? hash : NULL,
                      kind == WD_AUDIT_LINE_CKPT ? &ck : NULL, data + off, n, kind < 0 ? why : NULL);
        wd_arena_free(&a);
        lines++;
        off += n + 1;
        if (stop)
            break;
    }
    wd_json_free(&j);
    if (tail_len != NULL)
        *tail_len = off < len && memchr(data + off, '\n', len - off) == NULL ? len - off : 0;
    return lines;
}

/* An encrypted key is refused: with no callback OpenSSL asks for its pass phrase on the terminal, or reads
 * it from standard input when there is none. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

EVP_PKEY *wd_audit_key_load(const char *ref, char *why, size_t why_cap)
{
    char *pem = malloc(WD_SECRET_MAX);
    if (pem == NULL) {
        snprintf(why, why_cap, "out of memory");
        return NULL;
    }
    int n = wd_secret_resolve(ref, pem, WD_SECRET_MAX);
    EVP_PKEY *k = NULL;
    if (n <= 0) {
        snprintf(why, why_cap, "cannot resolve the signing key reference %s", ref);
    } else {
        BIO *bio = BIO_new_mem_buf(pem, n);
        k = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
        BIO_free(bio);
        if (k != NULL && EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
            EVP_PKEY_free(k);
            k = NULL;
        }
        if (k == NULL)
            snprintf(why, why_cap, "%s is not a PEM Ed25519 private key", ref);
    }
    OPENSSL_cleanse(pem, WD_SECRET_MAX);
    free(pem);
    return k;
}

EVP_PKEY *wd_audit_pubkey_parse(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (k != NULL && EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

int wd_audit_pubkey_pem(EVP_PKEY *key, struct wd_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, key) != 1) {
        BIO_free(bio);
        return -1;
    }
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    wd_buf_put(out, p, (size_t)n);
    BIO_free(bio);
    return out->oom ? -1 : 0;
}
