/* AWS Signature Version 4: canonical request, string to sign, signing key and Authorization header, as AWS's
 * "Create a signed AWS API request" documents them. Proven against AWS's published test-suite vectors
 * (tests/unit/test_sigv4.c) and against AWS's own JS signer on random requests (tests/sigv4/check.mjs). */
#include "lib/sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "lib/hash.h"

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

void wd_sigv4_uri_encode(struct wd_buf *out, const char *p, size_t n, bool keep_slash)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            wd_buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', hx[c >> 4], hx[c & 15]};
            wd_buf_put(out, e, 3);
        }
    }
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return true;
    return false;
}

/* RFC 9110 token characters: a header name outside them would be refused or rewritten by the HTTP layer, so
 * the signature would cover something other than what was sent. */
static bool token_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("!#$%&'*+-.^_`|~", c))
            continue;
        return false;
    }
    return true;
}

static const char *const reserved_headers[] = {"host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
                                               "authorization"};

static bool is_s3(const struct wd_sigv4_req *r) { return strcmp(r->service, "s3") == 0; }
static bool sends_content_sha(const struct wd_sigv4_req *r) { return is_s3(r) || r->unsigned_payload; }

static int validate(const struct wd_sigv4_req *r)
{
    if (!r || !r->method || !*r->method || !r->host || !*r->host || !r->path || r->path[0] != '/' || !r->region ||
        !*r->region || !r->service || !*r->service || !r->access_key || !*r->access_key || !r->secret_key ||
        (r->nheaders && !r->headers) || (r->body_len && !r->body && !r->unsigned_payload))
        return -1;
    if (!token_name(r->method) || has_ctl(r->host) || (r->query && has_ctl(r->query)) || has_ctl(r->region) ||
        has_ctl(r->service) || has_ctl(r->access_key) || strchr(r->region, '/') || strchr(r->service, '/') ||
        strchr(r->access_key, '/') || (r->session_token && (!*r->session_token || has_ctl(r->session_token))))
        return -1;
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct wd_sigv4_header *h = &r->headers[i];
        if (!h->name || !h->value || !token_name(h->name) || has_ctl(h->value))
            return -1;
        for (size_t k = 0; k < sizeof reserved_headers / sizeof *reserved_headers; k++)
            if (strcasecmp(h->name, reserved_headers[k]) == 0)
                return -1;
    }
    return 0;
}

static void amz_date(int64_t now, char out[17])
{
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Non-S3 services want the RFC 3986 normalised path (no empty, "." or ".." segments) with each segment encoded
 * twice; S3 object keys may legitimately hold "//" or "..", so S3 signs the path as sent, encoded once. */
static void canonical_path(struct wd_buf *out, const char *path, bool s3)
{
    if (s3) {
        wd_sigv4_uri_encode(out, path, strlen(path), true);
        return;
    }
    size_t len = strlen(path);
    /* segment offsets kept, so ".." can drop the last one */
    size_t cap = len / 2 + 2, nseg = 0;
    size_t *seg_off = malloc(cap * sizeof *seg_off), *seg_len = malloc(cap * sizeof *seg_len);
    if (!seg_off || !seg_len) {
        free(seg_off);
        free(seg_len);
        out->oom = true;
        return;
    }
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t n = j - i;
        if (n == 0 || (n == 1 && path[i] == '.')) {
            /* skipped */
        } else if (n == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg)
                nseg--;
        } else {
            seg_off[nseg] = i;
            seg_len[nseg++] = n;
        }
        i = j + 1;
    }
    struct wd_buf once = {0};
    wd_buf_putc(out, '/');
    for (size_t k = 0; k < nseg; k++) {
        if (k)
            wd_buf_putc(out, '/');
        once.n = 0;
        wd_sigv4_uri_encode(&once, path + seg_off[k], seg_len[k], false);
        if (once.oom)
            out->oom = true;
        else
            wd_sigv4_uri_encode(out, once.p, once.n, false);
    }
    if (nseg && path[len - 1] == '/')
        wd_buf_putc(out, '/');
    wd_buf_free(&once);
    free(seg_off);
    free(seg_len);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes p[0..n) and re-encodes it the AWS way into out; -1 on a malformed escape. */
static int reencode(struct wd_buf *out, const char *p, size_t n)
{
    struct wd_buf raw = {0};
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            int hi, lo;
            if (i + 2 >= n) {
                wd_buf_free(&raw);
                return -1;
            }
            hi = hexval(p[i + 1]);
            lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0) {
                wd_buf_free(&raw);
                return -1;
            }
            wd_buf_putc(&raw, (char)(hi << 4 | lo));
            i += 2;
        } else {
            wd_buf_putc(&raw, p[i]);
        }
    }
    if (raw.oom) {
        wd_buf_free(&raw);
        out->oom = true;
        return 0;
    }
    wd_sigv4_uri_encode(out, raw.p, raw.n, false);
    wd_buf_free(&raw);
    return 0;
}

/* One query parameter, re-encoded: name and value as offsets into a shared buffer. */
struct qparam {
    size_t name, name_len, value, value_len;
};

static _Thread_local const char *qsort_base;

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int cmp_qparam(const void *x, const void *y)
{
    const struct qparam *a = x, *b = y;
    int c = cmp_bytes(qsort_base + a->name, a->name_len, qsort_base + b->name, b->name_len);
    return c ? c : cmp_bytes(qsort_base + a->value, a->value_len, qsort_base + b->value, b->value_len);
}

static int canonical_query(struct wd_buf *out, const char *q)
{
    if (!q || !*q)
        return 0;
    size_t len = strlen(q), np = 1;
    for (size_t i = 0; i < len; i++)
        np += q[i] == '&';
    struct qparam *ps = calloc(np, sizeof *ps);
    struct wd_buf enc = {0};
    int rc = 0;
    size_t n = 0;
    if (!ps) {
        out->oom = true;
        return 0;
    }
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        if (j > i) { /* "a&&b": an empty pair names no parameter */
            size_t eq = i;
            while (eq < j && q[eq] != '=')
                eq++;
            struct qparam *p = &ps[n++];
            p->name = enc.n;
            if (reencode(&enc, q + i, eq - i) < 0) {
                rc = -1;
                break;
            }
            p->name_len = enc.n - p->name;
            p->value = enc.n;
            if (eq < j && reencode(&enc, q + eq + 1, j - eq - 1) < 0) {
                rc = -1;
                break;
            }
            p->value_len = enc.n - p->value;
        }
        i = j + 1;
    }
    if (rc == 0 && enc.oom)
        out->oom = true;
    if (rc == 0 && !enc.oom) {
        /* qsort's comparator has no context argument: the base is thread-local, as backends sign on their
         * own threads. */
        qsort_base = enc.p;
        qsort(ps, n, sizeof *ps, cmp_qparam);
        for (size_t k = 0; k < n; k++) {
            if (k)
                wd_buf_putc(out, '&');
            wd_buf_put(out, enc.p + ps[k].name, ps[k].name_len);
            wd_buf_putc(out, '=');
            wd_buf_put(out, enc.p + ps[k].value, ps[k].value_len);
        }
    }
    wd_buf_free(&enc);
    free(ps);
    return rc;
}

/* One header in canonical form: lower-cased name, trimmed and collapsed value; ord keeps duplicates in the
 * order given, since AWS joins their values in that order. */
struct chdr {
    char *name;
    char *value;
    size_t ord;
};

static int cmp_chdr(const void *x, const void *y)
{
    const struct chdr *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->ord > b->ord) - (a->ord < b->ord);
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    if (d)
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return d;
}

static char *trim_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1), *w = d;
    if (!d)
        return NULL;
    while (*s == ' ' || *s == '\t')
        s++;
    bool blank = false;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t') {
            blank = true;
            continue;
        }
        if (blank)
            *w++ = ' ';
        blank = false;
        *w++ = *s;
    }
    *w = 0;
    return d;
}

/* Everything the signature needs, computed once per request. */
struct parts {
    char date[17];              /* x-amz-date */
    char payload_hash[65];      /* hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
    struct wd_buf signed_names; /* "a;b;c" */
};

static int canonical(const struct wd_sigv4_req *r, struct wd_buf *out, struct parts *pt)
{
    if (validate(r) < 0)
        return -1;
    amz_date(r->now, pt->date);
    if (r->unsigned_payload) {
        wd_cstr_copy(pt->payload_hash, sizeof pt->payload_hash, "UNSIGNED-PAYLOAD");
    } else {
        uint8_t h[32];
        wd_sha256(r->body ? r->body : "", r->body_len, h);
        wd_hex(h, 32, pt->payload_hash);
    }
    pt->signed_names = (struct wd_buf){0};

    size_t nh = r->nheaders + 4, k = 0;
    struct chdr *hs = calloc(nh, sizeof *hs);
    if (!hs)
        return -1;
    int rc = 0;
    struct wd_sigv4_header fixed[4] = {{"host", r->host}, {"x-amz-date", pt->date}};
    size_t nfixed = 2;
    if (sends_content_sha(r))
        fixed[nfixed++] = (struct wd_sigv4_header){"x-amz-content-sha256", pt->payload_hash};
    if (r->session_token)
        fixed[nfixed++] = (struct wd_sigv4_header){"x-amz-security-token", r->session_token};
    for (size_t i = 0; i < nfixed; i++, k++) {
        hs[k] = (struct chdr){lower_dup(fixed[i].name), trim_dup(fixed[i].value), k};
        if (!hs[k].name || !hs[k].value)
            rc = -1;
    }
    for (size_t i = 0; i < r->nheaders; i++, k++) {
        hs[k] = (struct chdr){lower_dup(r->headers[i].name), trim_dup(r->headers[i].value), k};
        if (!hs[k].name || !hs[k].value)
            rc = -1;
    }
    if (rc == 0) {
        qsort(hs, k, sizeof *hs, cmp_chdr);
        wd_buf_puts(out, r->method);
        wd_buf_putc(out, '\n');
        canonical_path(out, r->path, is_s3(r));
        wd_buf_putc(out, '\n');
        if (canonical_query(out, r->query) < 0)
            rc = -1;
        wd_buf_putc(out, '\n');
        for (size_t i = 0; i < k && rc == 0; i++) {
            if (i && strcmp(hs[i].name, hs[i - 1].name) == 0) {
                wd_buf_putc(out, ',');
                wd_buf_puts(out, hs[i].value);
                continue;
            }
            if (i) {
                wd_buf_putc(out, '\n');
                wd_buf_putc(&pt->signed_names, ';');
            }
            wd_buf_puts(out, hs[i].name);
            wd_buf_putc(out, ':');
            wd_buf_puts(out, hs[i].value);
            wd_buf_puts(&pt->signed_names, hs[i].name);
        }
        wd_buf_puts(out, "\n\n");
        wd_buf_put(out, pt->signed_names.p, pt->signed_names.n);
        wd_buf_putc(out, '\n');
        wd_buf_puts(out, pt->payload_hash);
        if (out->oom || pt->signed_names.oom)
            rc = -1;
    }
    for (size_t i = 0; i < k; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    free(hs);
    if (rc < 0)
        wd_buf_free(&pt->signed_names);
    return rc;
}

int wd_sigv4_canonical_request(const struct wd_sigv4_req *r, struct wd_buf *out)
{
    struct parts pt;
    if (canonical(r, out, &pt) < 0)
        return -1;
    wd_buf_free(&pt.signed_names);
    return 0;
}

/* The string to sign into out, the parts into pt (pt->signed_names owned by the caller on success). */
static int string_to_sign(const struct wd_sigv4_req *r, struct wd_buf *out, struct parts *pt)
{
    struct wd_buf creq = {0};
    if (canonical(r, &creq, pt) < 0) {
        wd_buf_free(&creq);
        return -1;
    }
    uint8_t h[32];
    char hex[65];
    wd_sha256(creq.p, creq.n, h);
    wd_hex(h, 32, hex);
    wd_buf_free(&creq);
    wd_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", pt->date, pt->date, r->region,
                  r->service, hex);
    if (out->oom) {
        wd_buf_free(&pt->signed_names);
        return -1;
    }
    return 0;
}

int wd_sigv4_string_to_sign(const struct wd_sigv4_req *r, struct wd_buf *out)
{
    struct parts pt;
    if (string_to_sign(r, out, &pt) < 0)
        return -1;
    wd_buf_free(&pt.signed_names);
    return 0;
}

static int hmac(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
    unsigned int n = 32;
    return HMAC(wd_sha256_md(), key, (int)klen, msg, mlen, out, &n) && n == 32 ? 0 : -1;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"), then the
 * signature is HMAC(kSigning, string to sign). */
static int signature(const struct wd_sigv4_req *r, const struct wd_buf *sts, const char *date, char hex[65])
{
    size_t slen = strlen(r->secret_key);
    char *k0 = malloc(slen + 4);
    uint8_t k[32], sig[32];
    int rc = -1;
    if (!k0)
        return -1;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, r->secret_key, slen);
    if (hmac(k0, slen + 4, date, 8, k) == 0 && hmac(k, 32, r->region, strlen(r->region), k) == 0 &&
        hmac(k, 32, r->service, strlen(r->service), k) == 0 && hmac(k, 32, "aws4_request", 12, k) == 0 &&
        hmac(k, 32, sts->p, sts->n, sig) == 0) {
        wd_hex(sig, 32, hex);
        rc = 0;
    }
    /* the derived keys are as good as the secret for a day: wiped like it */
    OPENSSL_cleanse(k0, slen + 4);
    OPENSSL_cleanse(k, sizeof k);
    free(k0);
    return rc;
}

int wd_sigv4_signature(const struct wd_sigv4_req *r, char hex[65])
{
    struct parts pt;
    struct wd_buf sts = {0};
    int rc = string_to_sign(r, &sts, &pt);
    if (rc == 0) {
        rc = signature(r, &sts, pt.date, hex);
        wd_buf_free(&pt.signed_names);
    }
    wd_buf_free(&sts);
    return rc;
}

int wd_sigv4_sign(const struct wd_sigv4_req *r, char *out, size_t cap)
{
    struct parts pt;
    struct wd_buf sts = {0}, o = {0};
    char hex[65];
    int rc = string_to_sign(r, &sts, &pt);
    if (rc == 0) {
        rc = signature(r, &sts, pt.date, hex);
        if (rc == 0) {
            wd_buf_printf(&o, "x-amz-date: %s\r\n", pt.date);
            if (sends_content_sha(r))
                wd_buf_printf(&o, "x-amz-content-sha256: %s\r\n", pt.payload_hash);
            if (r->session_token)
                wd_buf_printf(&o, "x-amz-security-token: %s\r\n", r->session_token);
            wd_buf_printf(&o,
                          "authorization: AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
                          "SignedHeaders=%.*s, Signature=%s\r\n",
                          r->access_key, pt.date, r->region, r->service, (int)pt.signed_names.n,
                          pt.signed_names.p, hex);
            if (o.oom || !out || o.n + 1 > cap)
                rc = -1;
            else {
                memcpy(out, o.p, o.n);
                out[o.n] = 0;
            }
        }
        wd_buf_free(&pt.signed_names);
    }
    wd_buf_free(&sts);
    wd_buf_free(&o);
    return rc;
}
