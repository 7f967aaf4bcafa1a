/* The aws-sm:// backend: GetSecretValue signed with lib/sigv4, credentials from env, web identity (STS), the
 * shared file, the container endpoint or IMDSv2, kept in locked memory and replaced ahead of their expiry. Only
 * the secret cache's resolver thread runs it, so its static state needs no lock. */
#include "secrets/aws.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret_ref.h"
#include "lib/sigv4.h"
#include "net/fetch.h"
#include "net/http_form.h"
#include "secrets/backend.h"
#include "secrets/secrets.h"

#define DEFAULT_TTL_MS 300000
#define DEFAULT_TIMEOUT_MS 10000
#define IMDS_TOKEN_TTL_S 21600
#define STATIC_REREAD_MS 300000 /* env and file keys are read again this often: a rotated file is picked up */

/* ---------------------------------------------------------------- pure helpers */

/* A wd_buf that may have held a secret: wiped over its whole capacity before it goes back to the heap. */
static void buf_wipe_free(struct wd_buf *b)
{
    if (b->p != NULL)
        OPENSSL_cleanse(b->p, b->cap);
    wd_buf_free(b);
}

/* Copies s[0..n) into out[cap] keeping printable ASCII only (an API's message goes into a why). */
static void copy_printable(char *out, size_t cap, const char *s, size_t n)
{
    if (cap == 0)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[k] = '\0';
}

/* The decoded string token i of j into out[cap] (NUL-terminated, no NUL inside). Length, -1 not a string or a
 * NUL in it, -2 too long. Escaped strings are decoded in a buffer reserved up front (no realloc copies) and
 * wiped. */
static long json_copy(const struct wd_json *j, int i, char *out, size_t cap)
{
    if (wd_json_type(j, i) != WD_J_STR)
        return -1;
    struct wd_str raw = wd_json_raw(j, i);
    const char *p = raw.p;
    size_t n = raw.n;
    struct wd_buf tmp = {0};
    if (j->t[i].escaped) {
        if (!wd_buf_reserve(&tmp, raw.n + 1) || wd_json_unescape(&tmp, raw.p, raw.n) != 0 || tmp.oom) {
            buf_wipe_free(&tmp);
            return -1;
        }
        p = tmp.p;
        n = tmp.n;
    }
    long rc;
    if (memchr(p, '\0', n) != NULL)
        rc = -1;
    else if (n + 1 > cap)
        rc = -2;
    else {
        memcpy(out, p, n);
        out[n] = '\0';
        rc = (long)n;
    }
    buf_wipe_free(&tmp);
    return rc;
}

int wd_aws_sm_parse_value(const char *body, size_t n, const char *field, char *out, size_t cap, char *why,
                          size_t whycap)
{
    struct wd_json j = {0};
    int rc = -1;
    if (cap < 2) {
        snprintf(why, whycap, "no room for a value");
        return -1;
    }
    if (wd_json_parse(&j, body, n) != 0 || wd_json_type(&j, 0) != WD_J_OBJ) {
        snprintf(why, whycap, "the answer is not a JSON object");
        wd_json_free(&j);
        return -1;
    }
    bool want_field = field != NULL && field[0] != '\0';
    int ss = wd_json_get(&j, 0, "SecretString"), sb = wd_json_get(&j, 0, "SecretBinary");
    if (ss >= 0 && wd_json_type(&j, ss) == WD_J_NULL)
        ss = -1;
    if (sb >= 0 && wd_json_type(&j, sb) == WD_J_NULL)
        sb = -1;
    if (ss >= 0) {
        if (wd_json_type(&j, ss) != WD_J_STR) {
            snprintf(why, whycap, "SecretString is not a string");
            goto out;
        }
        if (!want_field) {
            long m = json_copy(&j, ss, out, cap);
            if (m == -2)
                snprintf(why, whycap, "the value is longer than %zu bytes", cap - 1);
            else if (m < 0)
                snprintf(why, whycap, "SecretString is not a valid string (a NUL byte or a bad escape)");
            else if (m == 0)
                snprintf(why, whycap, "SecretString is empty");
            else
                rc = (int)m;
            goto out;
        }
        /* the SecretString is a JSON document of its own: decode it into a wiped scratch buffer first */
        struct wd_str raw = wd_json_raw(&j, ss);
        struct wd_buf doc = {0};
        if (!wd_buf_reserve(&doc, raw.n + 1) || wd_json_unescape(&doc, raw.p, raw.n) != 0 || doc.oom) {
            snprintf(why, whycap, "SecretString is not a valid string");
            buf_wipe_free(&doc);
            goto out;
        }
        struct wd_json in = {0};
        if (wd_json_parse(&in, doc.p, doc.n) != 0 || wd_json_type(&in, 0) != WD_J_OBJ) {
            snprintf(why, whycap, "SecretString is not a JSON object, so it has no field \"%s\"", field);
        } else {
            int f = wd_json_get(&in, 0, field);
            if (f < 0) {
                snprintf(why, whycap, "SecretString has no field \"%s\"", field);
            } else if (wd_json_type(&in, f) != WD_J_STR) {
                snprintf(why, whycap, "field \"%s\" of SecretString is not a string", field);
            } else {
                long m = json_copy(&in, f, out, cap);
                if (m == -2)
                    snprintf(why, whycap, "field \"%s\" is longer than %zu bytes", field, cap - 1);
                else if (m < 0)
                    snprintf(why, whycap, "field \"%s\" holds a NUL byte", field);
                else if (m == 0)
                    snprintf(why, whycap, "field \"%s\" is empty", field);
                else
                    rc = (int)m;
            }
        }
        wd_json_free(&in);
        buf_wipe_free(&doc);
        goto out;
    }
    if (sb >= 0) {
        if (wd_json_type(&j, sb) != WD_J_STR || j.t[sb].escaped) {
            snprintf(why, whycap, "SecretBinary is not a base64 string");
            goto out;
        }
        if (want_field) {
            snprintf(why, whycap, "the secret is binary (SecretBinary): a #%s field needs a JSON SecretString", field);
            goto out;
        }
        struct wd_str raw = wd_json_raw(&j, sb);
        long m = wd_b64_decode(raw.p, raw.n, (uint8_t *)out, cap - 1, 0);
        if (m == -2)
            snprintf(why, whycap, "the value is longer than %zu bytes", cap - 1);
        else if (m < 0)
            snprintf(why, whycap, "SecretBinary is not valid base64");
        else if (m == 0)
            snprintf(why, whycap, "SecretBinary is empty");
        else if (memchr(out, '\0', (size_t)m) != NULL)
            snprintf(why, whycap, "SecretBinary holds a NUL byte: it cannot be used as a key");
        else {
            out[m] = '\0';
            rc = (int)m;
        }
        if (rc < 0)
            OPENSSL_cleanse(out, cap);
        goto out;
    }
    snprintf(why, whycap, "the answer has neither SecretString nor SecretBinary");
out:
    wd_json_free(&j);
    return rc;
}

int wd_aws_json_error(const char *body, size_t n, char *type, size_t tcap, char *msg, size_t mcap)
{
    if (tcap > 0)
        type[0] = '\0';
    if (mcap > 0)
        msg[0] = '\0';
    struct wd_json j = {0};
    int rc = -1;
    if (wd_json_parse(&j, body, n) != 0 || wd_json_type(&j, 0) != WD_J_OBJ)
        goto out;
    int t = wd_json_get(&j, 0, "__type");
    if (t < 0 || wd_json_type(&j, t) != WD_J_STR)
        t = wd_json_get(&j, 0, "code"); /* some AWS JSON services spell it so */
    if (t < 0 || wd_json_type(&j, t) != WD_J_STR)
        goto out;
    struct wd_str raw = wd_json_raw(&j, t);
    /* "com.amazonaws.secretsmanager#ResourceNotFoundException", or "Name:http://internal..." */
    const char *h = memchr(raw.p, '#', raw.n);
    if (h != NULL) {
        raw.n -= (size_t)(h + 1 - raw.p);
        raw.p = h + 1;
    }
    const char *c = memchr(raw.p, ':', raw.n);
    if (c != NULL)
        raw.n = (size_t)(c - raw.p);
    if (raw.n == 0)
        goto out;
    copy_printable(type, tcap, raw.p, raw.n);
    int m = wd_json_get(&j, 0, "message");
    if (m < 0)
        m = wd_json_get(&j, 0, "Message");
    if (m >= 0 && wd_json_type(&j, m) == WD_J_STR) {
        struct wd_str mr = wd_json_raw(&j, m);
        copy_printable(msg, mcap, mr.p, mr.n);
    }
    rc = 0;
out:
    wd_json_free(&j);
    return rc;
}

bool wd_aws_error_is_credential(const char *type)
{
    static const char *const names[] = {
        "UnrecognizedClientException", "UnrecognizedClient", "ExpiredTokenException", "ExpiredToken",
        "InvalidSignatureException", "SignatureDoesNotMatch", "InvalidClientTokenId", "InvalidToken",
        "RequestExpired", "AuthFailure"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(type, names[i]) == 0)
            return true;
    return false;
}

/* ---- XML, the subset AWS's query APIs answer with */

static bool xml_name_start(unsigned char c) { return isalpha(c) || c == '_' || c == ':'; }
static bool xml_name_char(unsigned char c) { return isalnum(c) || c == '_' || c == ':' || c == '-' || c == '.'; }
static bool xml_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static const char *find_seq(const char *p, const char *end, const char *seq)
{
    size_t m = strlen(seq);
    for (; p + m <= end; p++)
        if (memcmp(p, seq, m) == 0)
            return p;
    return NULL;
}

/* Appends text x[0..n) with its entities decoded to out (when out is not NULL) at *k. 0, -1 malformed, -4
 * does not fit. */
static int xml_text_append(const char *x, size_t n, char *out, size_t cap, size_t *k)
{
    for (size_t i = 0; i < n;) {
        char tmp[4];
        size_t tn = 1;
        tmp[0] = x[i];
        if (x[i] == '&') {
            const char *semi = memchr(x + i, ';', n - i);
            if (semi == NULL || semi - (x + i) > 12)
                return -1;
            const char *e = x + i + 1;
            size_t en = (size_t)(semi - e);
            if (en == 2 && memcmp(e, "lt", 2) == 0)
                tmp[0] = '<';
            else if (en == 2 && memcmp(e, "gt", 2) == 0)
                tmp[0] = '>';
            else if (en == 3 && memcmp(e, "amp", 3) == 0)
                tmp[0] = '&';
            else if (en == 4 && memcmp(e, "quot", 4) == 0)
                tmp[0] = '"';
            else if (en == 4 && memcmp(e, "apos", 4) == 0)
                tmp[0] = '\'';
            else if (en >= 2 && e[0] == '#') {
                unsigned long cp = 0;
                bool hex = e[1] == 'x';
                size_t d0 = hex ? 2 : 1;
                if (d0 >= en)
                    return -1;
                for (size_t q = d0; q < en; q++) {
                    int v = isdigit((unsigned char)e[q]) ? e[q] - '0'
                            : hex && isxdigit((unsigned char)e[q]) ? (tolower((unsigned char)e[q]) - 'a' + 10)
                                                                   : -1;
                    if (v < 0)
                        return -1;
                    cp = cp * (hex ? 16 : 10) + (unsigned long)v;
                    if (cp > 0x10ffff)
                        return -1;
                }
                if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                    return -1;
                if (cp < 0x80) {
                    tmp[0] = (char)cp;
                } else if (cp < 0x800) {
                    tmp[0] = (char)(0xc0 | (cp >> 6));
                    tmp[1] = (char)(0x80 | (cp & 0x3f));
                    tn = 2;
                } else if (cp < 0x10000) {
                    tmp[0] = (char)(0xe0 | (cp >> 12));
                    tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    tmp[2] = (char)(0x80 | (cp & 0x3f));
                    tn = 3;
                } else {
                    tmp[0] = (char)(0xf0 | (cp >> 18));
                    tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    tmp[3] = (char)(0x80 | (cp & 0x3f));
                    tn = 4;
                }
            } else {
                return -1; /* no DTD, so no other entity exists */
            }
            i = (size_t)(semi - x) + 1;
        } else {
            if (x[i] == '\0')
                return -1;
            i++;
        }
        if (out != NULL) {
            if (*k + tn + 1 > cap)
                return -4;
            memcpy(out + *k, tmp, tn);
        }
        *k += tn;
    }
    return 0;
}

#define XML_MAX_DEPTH 32

int wd_aws_xml_text(const char *x, size_t n, const char *const *path, size_t depth, char *out, size_t cap)
{
    struct {
        const char *p;
        size_t n;
    } st[XML_MAX_DEPTH];
    size_t sp = 0, k = 0;
    int found = 0;
    bool capturing = false, root_seen = false, root_done = false;
    const char *end = x + n;
    const char *p = x;
    if (cap > 0)
        out[0] = '\0';
    if (depth == 0 || depth > XML_MAX_DEPTH)
        return -2;
    while (p < end) {
        if (*p != '<') {
            const char *lt = memchr(p, '<', (size_t)(end - p));
            const char *te = lt ? lt : end;
            if (sp == 0) {
                for (const char *q = p; q < te; q++)
                    if (!xml_space(*q))
                        return -1;
            } else {
                size_t skipped = 0; /* text outside the element is checked, not counted */
                int r = xml_text_append(p, (size_t)(te - p), capturing ? out : NULL, cap, capturing ? &k : &skipped);
                if (r != 0)
                    return r;
            }
            p = te;
            continue;
        }
        size_t left = (size_t)(end - p);
        if (left >= 2 && p[1] == '?') {
            if (root_seen && !root_done)
                return -1;
            const char *e = find_seq(p + 2, end, "?>");
            if (e == NULL)
                return -1;
            p = e + 2;
            continue;
        }
        if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *e = find_seq(p + 4, end, "-->");
            if (e == NULL)
                return -1;
            p = e + 3;
            continue;
        }
        if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            const char *e = find_seq(p + 9, end, "]]>");
            if (e == NULL || sp == 0)
                return -1;
            if (capturing) {
                size_t m = (size_t)(e - (p + 9));
                if (memchr(p + 9, '\0', m) != NULL)
                    return -1;
                if (k + m + 1 > cap)
                    return -4;
                memcpy(out + k, p + 9, m);
                k += m;
            }
            p = e + 3;
            continue;
        }
        if (left >= 2 && p[1] == '!')
            return -1; /* a DOCTYPE: no entity declarations are taken */
        bool closing = left >= 2 && p[1] == '/';
        const char *q = p + (closing ? 2 : 1);
        const char *nm = q;
        if (q >= end || !xml_name_start((unsigned char)*q))
            return -1;
        while (q < end && xml_name_char((unsigned char)*q))
            q++;
        size_t nl = (size_t)(q - nm);
        if (closing) {
            while (q < end && xml_space(*q))
                q++;
            if (q >= end || *q != '>' || sp == 0 || st[sp - 1].n != nl || memcmp(st[sp - 1].p, nm, nl) != 0)
                return -1;
            if (capturing && sp == depth)
                capturing = false;
            sp--;
            if (sp == 0)
                root_done = true;
            p = q + 1;
            continue;
        }
        /* attributes, then > or /> */
        bool self = false;
        for (;;) {
            bool sp_before = false;
            while (q < end && xml_space(*q)) {
                q++;
                sp_before = true;
            }
            if (q >= end)
                return -1;
            if (*q == '>') {
                q++;
                break;
            }
            if (*q == '/' && q + 1 < end && q[1] == '>') {
                q += 2;
                self = true;
                break;
            }
            if (!sp_before || !xml_name_start((unsigned char)*q))
                return -1;
            while (q < end && xml_name_char((unsigned char)*q))
                q++;
            while (q < end && xml_space(*q))
                q++;
            if (q >= end || *q != '=')
                return -1;
            q++;
            while (q < end && xml_space(*q))
                q++;
            if (q >= end || (*q != '"' && *q != '\''))
                return -1;
            char quote = *q++;
            const char *qe = memchr(q, quote, (size_t)(end - q));
            if (qe == NULL || memchr(q, '<', (size_t)(qe - q)) != NULL)
                return -1;
            if (xml_text_append(q, (size_t)(qe - q), NULL, 0, &(size_t){0}) != 0)
                return -1;
            q = qe + 1;
        }
        if (root_done || (sp == 0 && root_seen))
            return -1; /* a second root element */
        root_seen = true;
        if (capturing)
            return -5;
        if (sp >= XML_MAX_DEPTH)
            return -1;
        st[sp].p = nm;
        st[sp].n = nl;
        sp++;
        if (sp == depth) {
            bool match = true;
            for (size_t i = 0; i < depth && match; i++)
                match = strlen(path[i]) == st[i].n && memcmp(path[i], st[i].p, st[i].n) == 0;
            if (match) {
                if (++found > 1)
                    return -3;
                capturing = true;
                k = 0;
            }
        }
        if (self) {
            if (capturing && sp == depth)
                capturing = false;
            sp--;
            if (sp == 0)
                root_done = true;
        }
        p = q;
    }
    if (sp != 0 || !root_seen)
        return -1;
    if (found == 0)
        return -2;
    if (cap > 0)
        out[k] = '\0';
    return (int)k;
}

/* Printable ASCII without blanks: what an access key, a secret key and a session token are made of (and no
 * CR/LF can reach a header line). */
static bool cred_chars_ok(const char *s)
{
    if (s[0] == '\0')
        return false;
    for (; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    return true;
}

static int creds_check(const struct wd_aws_creds *c, bool need_token, char *why, size_t whycap)
{
    if (!cred_chars_ok(c->access_key)) {
        snprintf(why, whycap, "the access key id is empty or has characters outside printable ASCII");
        return -1;
    }
    if (!cred_chars_ok(c->secret_key)) {
        snprintf(why, whycap, "the secret access key is empty or has characters outside printable ASCII");
        return -1;
    }
    if ((need_token || c->token[0] != '\0') && !cred_chars_ok(c->token)) {
        snprintf(why, whycap, "the session token is empty or has characters outside printable ASCII");
        return -1;
    }
    return 0;
}

static const char *xml_err(int r)
{
    switch (r) {
    case -1: return "is not well-formed XML";
    case -2: return "is missing";
    case -3: return "appears more than once";
    case -4: return "is too long";
    default: return "has child elements";
    }
}

int wd_aws_sts_parse_credentials(const char *body, size_t n, struct wd_aws_creds *out, char *why, size_t whycap)
{
    static const char *const names[] = {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"};
    char when[64];
    char *dst[] = {out->access_key, out->secret_key, out->token, when};
    size_t caps[] = {sizeof(out->access_key), sizeof(out->secret_key), sizeof(out->token), sizeof(when)};
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < 4; i++) {
        const char *path[] = {"AssumeRoleWithWebIdentityResponse", "AssumeRoleWithWebIdentityResult", "Credentials",
                              names[i]};
        int r = wd_aws_xml_text(body, n, path, 4, dst[i], caps[i]);
        if (r < 0) {
            if (r == -1)
                snprintf(why, whycap, "the STS answer is not well-formed XML");
            else
                snprintf(why, whycap, "the STS answer's Credentials/%s %s", names[i], xml_err(r));
            OPENSSL_cleanse(out, sizeof(*out));
            return -1;
        }
    }
    if (creds_check(out, true, why, whycap) != 0) {
        OPENSSL_cleanse(out, sizeof(*out));
        return -1;
    }
    if (wd_aws_parse_time(when, &out->expires_ms) != 0) {
        snprintf(why, whycap, "the STS answer's Credentials/Expiration is not an ISO 8601 time");
        OPENSSL_cleanse(out, sizeof(*out));
        return -1;
    }
    return 0;
}

int wd_aws_sts_parse_error(const char *body, size_t n, char *code, size_t ccap, char *msg, size_t mcap)
{
    const char *pc[] = {"ErrorResponse", "Error", "Code"}, *pm[] = {"ErrorResponse", "Error", "Message"};
    char tmp[512];
    if (mcap > 0)
        msg[0] = '\0';
    int r = wd_aws_xml_text(body, n, pc, 3, tmp, sizeof(tmp));
    if (r <= 0) {
        if (ccap > 0)
            code[0] = '\0';
        return -1;
    }
    copy_printable(code, ccap, tmp, (size_t)r);
    r = wd_aws_xml_text(body, n, pm, 3, tmp, sizeof(tmp));
    if (r > 0)
        copy_printable(msg, mcap, tmp, (size_t)r);
    return 0;
}

int wd_aws_parse_json_credentials(const char *body, size_t n, bool require_code, struct wd_aws_creds *out,
                                  char *why, size_t whycap)
{
    memset(out, 0, sizeof(*out));
    struct wd_json j = {0};
    int rc = -1;
    if (wd_json_parse(&j, body, n) != 0 || wd_json_type(&j, 0) != WD_J_OBJ) {
        snprintf(why, whycap, "the credentials answer is not a JSON object");
        goto out;
    }
    if (require_code) {
        int c = wd_json_get(&j, 0, "Code");
        if (wd_json_type(&j, c) != WD_J_STR) {
            snprintf(why, whycap, "the credentials answer has no Code");
            goto out;
        }
        if (!wd_json_str_eq(&j, c, "Success")) {
            struct wd_str raw = wd_json_raw(&j, c);
            char code[64];
            copy_printable(code, sizeof(code), raw.p, raw.n);
            snprintf(why, whycap, "the credentials answer's Code is \"%s\", not Success", code);
            goto out;
        }
    }
    static const char *const names[] = {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"};
    char when[64];
    char *dst[] = {out->access_key, out->secret_key, out->token, when};
    size_t caps[] = {sizeof(out->access_key), sizeof(out->secret_key), sizeof(out->token), sizeof(when)};
    for (size_t i = 0; i < 4; i++) {
        int v = wd_json_get(&j, 0, names[i]);
        if (v < 0) {
            snprintf(why, whycap, "the credentials answer has no %s", names[i]);
            goto out;
        }
        long m = json_copy(&j, v, dst[i], caps[i]);
        if (m < 0) {
            snprintf(why, whycap, "the credentials answer's %s %s", names[i],
                     m == -2 ? "is too long" : "is not a string");
            goto out;
        }
    }
    if (creds_check(out, true, why, whycap) != 0)
        goto out;
    if (wd_aws_parse_time(when, &out->expires_ms) != 0) {
        snprintf(why, whycap, "the credentials answer's Expiration is not an ISO 8601 time");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        OPENSSL_cleanse(out, sizeof(*out));
    wd_json_free(&j);
    return rc;
}

static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

int wd_aws_parse_shared_file(const char *text, size_t n, const char *profile, struct wd_aws_creds *out, char *why,
                             size_t whycap)
{
    memset(out, 0, sizeof(*out));
    const char *p = text, *end = text + n;
    bool in = false, seen = false;
    unsigned line = 0;
    if (memchr(text, '\0', n) != NULL) {
        snprintf(why, whycap, "the shared credentials file holds a NUL byte");
        return -1;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p, *e = le;
        line++;
        p = nl ? nl + 1 : end;
        trim(&s, &e);
        if (s == e || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            if (e[-1] != ']') {
                snprintf(why, whycap, "line %u of the shared credentials file is a section without its ']'", line);
                goto fail;
            }
            const char *ns = s + 1, *ne = e - 1;
            trim(&ns, &ne);
            in = strlen(profile) == (size_t)(ne - ns) && memcmp(ns, profile, (size_t)(ne - ns)) == 0;
            seen |= in;
            continue;
        }
        if (!in)
            continue;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (eq == NULL) {
            snprintf(why, whycap, "line %u of the shared credentials file is not \"key = value\"", line);
            goto fail;
        }
        const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
        trim(&ks, &ke);
        trim(&vs, &ve);
        char *dst = NULL;
        size_t cap = 0;
        size_t kl = (size_t)(ke - ks);
#define KEY_IS(lit) (kl == sizeof(lit) - 1 && memcmp(ks, lit, kl) == 0)
        if (KEY_IS("aws_access_key_id")) {
            dst = out->access_key;
            cap = sizeof(out->access_key);
        } else if (KEY_IS("aws_secret_access_key")) {
            dst = out->secret_key;
            cap = sizeof(out->secret_key);
        } else if (KEY_IS("aws_session_token") || KEY_IS("aws_security_token")) {
            dst = out->token;
            cap = sizeof(out->token);
        }
#undef KEY_IS
        if (dst == NULL)
            continue; /* region, role_arn, ...: other keys of a profile are not credentials */
        size_t vl = (size_t)(ve - vs);
        if (vl + 1 > cap) {
            snprintf(why, whycap, "line %u of the shared credentials file: the value is too long", line);
            goto fail;
        }
        memcpy(dst, vs, vl);
        dst[vl] = '\0';
    }
    if (!seen)
        return -2;
    if (out->access_key[0] == '\0' || out->secret_key[0] == '\0') {
        snprintf(why, whycap, "profile [%s] of the shared credentials file has no %s", profile,
                 out->access_key[0] == '\0' ? "aws_access_key_id" : "aws_secret_access_key");
        goto fail;
    }
    if (creds_check(out, false, why, whycap) != 0)
        goto fail;
    return 0;
fail:
    OPENSSL_cleanse(out, sizeof(*out));
    return -1;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int wd_aws_parse_time(const char *s, int64_t *ms)
{
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 60)
        return -1;
    const char *p = s + 19;
    int frac = 0, fd = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (fd < 3)
                frac = frac * 10 + (*p - '0');
            fd++;
            p++;
        }
        if (fd == 0 || fd > 9)
            return -1;
        for (int i = fd; i < 3; i++)
            frac *= 10;
    }
    if (!(strcmp(p, "Z") == 0 || strcmp(p, "+00:00") == 0))
        return -1;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 86400) + h * 3600 + mi * 60 + se) * 1000 + frac;
    return 0;
}

int64_t wd_aws_refresh_at(int64_t got_ms, int64_t expires_ms)
{
    if (expires_ms == 0)
        return INT64_MAX;
    int64_t life = expires_ms - got_ms;
    int64_t margin = life > 0 ? life / 5 : 0;
    if (margin > 300000)
        margin = 300000;
    return expires_ms - margin;
}

int wd_aws_url_split(const char *url, char *host, size_t hcap, char *path, size_t pcap)
{
    const char *a;
    const char *defport;
    if (strncmp(url, "https://", 8) == 0) {
        a = url + 8;
        defport = ":443";
    } else if (strncmp(url, "http://", 7) == 0) {
        a = url + 7;
        defport = ":80";
    } else {
        return -1;
    }
    if (strpbrk(a, "@?# \t\r\n") != NULL)
        return -1;
    const char *slash = strchr(a, '/');
    size_t hl = slash ? (size_t)(slash - a) : strlen(a);
    if (hl == 0)
        return -1;
    for (size_t i = 0; i < hl; i++)
        if (!(isalnum((unsigned char)a[i]) || strchr(".-:[]_", a[i]) != NULL))
            return -1;
    size_t dl = strlen(defport);
    if (hl > dl && memcmp(a + hl - dl, defport, dl) == 0)
        hl -= dl; /* the Host header (and so the signature) leaves the scheme's default port out */
    const char *pp = slash ? slash : "/";
    if (hl + 1 > hcap || strlen(pp) + 1 > pcap)
        return -1;
    memcpy(host, a, hl);
    host[hl] = '\0';
    strcpy(path, pp);
    return 0;
}

int wd_aws_sm_build_request(const struct wd_aws_creds *c, const char *region, const char *endpoint,
                            const char *secret_id, int64_t now, struct wd_buf *body, char *hdrs, size_t cap,
                            size_t *nhdrs, char *why, size_t whycap)
{
    char host[256], path[512];
    *nhdrs = 0;
    if (wd_aws_url_split(endpoint, host, sizeof(host), path, sizeof(path)) != 0) {
        snprintf(why, whycap, "the Secrets Manager endpoint is not an http(s) URL with a host");
        return -1;
    }
    size_t body_at = body->n;
    wd_buf_puts(body, "{\"SecretId\":");
    wd_json_put_string(body, secret_id, strlen(secret_id));
    wd_buf_putc(body, '}');
    if (body->oom) {
        snprintf(why, whycap, "out of memory");
        return -1;
    }
    static const char ctype[] = "application/x-amz-json-1.1", target[] = "secretsmanager.GetSecretValue";
    struct wd_sigv4_header sh[] = {{"content-type", ctype}, {"x-amz-target", target}};
    struct wd_sigv4_req r = {
        .method = "POST", .host = host, .path = path, .headers = sh, .nheaders = 2,
        .body = body->p + body_at, .body_len = body->n - body_at, .region = region,
        .service = "secretsmanager", .access_key = c->access_key, .secret_key = c->secret_key,
        .session_token = c->token[0] ? c->token : NULL, .now = now};
    char signed_lines[WD_SECRET_MAX];
    if (wd_sigv4_sign(&r, signed_lines, sizeof(signed_lines)) != 0) {
        OPENSSL_cleanse(signed_lines, sizeof(signed_lines));
        snprintf(why, whycap, "the request cannot be signed (a bad region, key or endpoint)");
        return -1;
    }
    size_t k = 0;
    int bad = 0;
#define PUT_LINE(...)                                                                                            \
    do {                                                                                                         \
        int w_ = snprintf(hdrs + k, k < cap ? cap - k : 0, __VA_ARGS__);                                         \
        if (w_ < 0 || k + (size_t)w_ + 1 > cap)                                                                  \
            bad = 1;                                                                                             \
        else {                                                                                                   \
            k += (size_t)w_ + 1;                                                                                 \
            (*nhdrs)++;                                                                                          \
        }                                                                                                        \
    } while (0)
    PUT_LINE("Host: %s", host);
    PUT_LINE("Content-Type: %s", ctype);
    PUT_LINE("X-Amz-Target: %s", target);
    for (char *l = signed_lines; !bad && *l != '\0';) {
        char *crlf = strstr(l, "\r\n");
        if (crlf == NULL)
            break;
        *crlf = '\0';
        PUT_LINE("%s", l);
        l = crlf + 2;
    }
#undef PUT_LINE
    OPENSSL_cleanse(signed_lines, sizeof(signed_lines));
    if (bad) {
        OPENSSL_cleanse(hdrs, cap);
        *nhdrs = 0;
        snprintf(why, whycap, "the signed headers do not fit");
        return -1;
    }
    return 0;
}

static bool region_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)r[i]) || isdigit((unsigned char)r[i]) || r[i] == '-'))
            return false;
    return true;
}

const char *wd_aws_pick_region(const char *ref_region, const char *cfg_region, const char *(*env)(const char *))
{
    const char *c[] = {ref_region, cfg_region, env ? env("AWS_REGION") : NULL,
                       env ? env("AWS_DEFAULT_REGION") : NULL};
    for (size_t i = 0; i < 4; i++)
        if (c[i] != NULL && c[i][0] != '\0')
            return region_ok(c[i]) ? c[i] : NULL;
    return NULL;
}

int wd_aws_container_url(const char *relative, const char *full, char *out, size_t cap, char *why, size_t whycap)
{
    if (relative != NULL && relative[0] != '\0') {
        if (relative[0] != '/' || strpbrk(relative, " \t\r\n@#") != NULL) {
            snprintf(why, whycap, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a path");
            return -1;
        }
        if ((size_t)snprintf(out, cap, "http://169.254.170.2%s", relative) >= cap) {
            snprintf(why, whycap, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is too long");
            return -1;
        }
        return 0;
    }
    if (full == NULL || full[0] == '\0')
        return -2;
    char host[256], path[1024];
    if (wd_aws_url_split(full, host, sizeof(host), path, sizeof(path)) != 0 || strlen(full) + 1 > cap) {
        snprintf(why, whycap, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
        return -1;
    }
    if (strncmp(full, "http://", 7) == 0) {
        /* plain HTTP carries the authorization token: only to this host or the ECS / EKS Pod Identity agents */
        char h[256];
        snprintf(h, sizeof(h), "%s", host);
        char *colon = h[0] == '[' ? strstr(h, "]:") : strchr(h, ':');
        if (colon != NULL)
            colon[h[0] == '[' ? 1 : 0] = '\0';
        bool ok = strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "[::1]") == 0 ||
                  strcmp(h, "169.254.170.2") == 0 || strcmp(h, "169.254.170.23") == 0 ||
                  strcmp(h, "[fd00:ec2::23]") == 0;
        if (!ok) {
            snprintf(why, whycap, "AWS_CONTAINER_CREDENTIALS_FULL_URI over http must name a loopback or the "
                                  "container agent's address");
            return -1;
        }
    }
    strcpy(out, full);
    return 0;
}

/* ---------------------------------------------------------------- I/O, on the resolver thread */

enum src { SRC_NONE = 0, SRC_ENV, SRC_WEB, SRC_FILE, SRC_CONTAINER, SRC_IMDS };
static const char *const src_names[] = {"none", "env", "web identity", "shared file", "container", "imds"};

/* Everything the backend keeps between calls, in one locked, non-dumped mapping. */
struct aws_state {
    struct wd_aws_creds c;        /* the credentials in use */
    int src;                      /* where they came from (SRC_NONE: none) */
    int64_t refresh_ms;           /* when to replace them (wall clock ms) */
    char imds_token[256];         /* the IMDSv2 session token, "" when none */
    int64_t imds_token_exp_ms;    /* its expiry */
};
static struct aws_state *g;

/* The China regions are a partition of their own, with their own domain. */
static const char *dns_suffix(const char *region)
{
    return strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

static int64_t now_ms(void) { return wd_now_us() / 1000; }

static const char *env_get(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static const char *first(const char *a, const char *env_name)
{
    return a != NULL && a[0] != '\0' ? a : env_name ? env_get(env_name) : NULL;
}

struct ctx {
    const struct wd_aws_config *cfg;
    const char *region; /* for STS, may be NULL */
    const char *tls_ca;
    unsigned timeout_ms;
    bool chain;
};

/* Reads a whole file (at most max bytes) into locked memory; *buf and *mapn to free with
 * wd_secret_mem_free. Returns the length, or -1 with errno. */
static long read_secure(const char *path, size_t max, char **buf, size_t *mapn)
{
    *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char *b = wd_secret_mem_alloc(max + 1);
    if (b == NULL) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, b + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            wd_secret_mem_free(b, max + 1);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            close(fd);
            wd_secret_mem_free(b, max + 1);
            errno = EFBIG;
            return -1;
        }
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *mapn = max + 1;
    return (long)n;
}

/* A response body buffer, reserved whole up front so that no realloc leaves a copy of its bytes behind. */
static bool body_init(struct wd_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    return wd_buf_reserve(b, max + 1);
}

static int creds_env(struct wd_aws_creds *out, char *why, size_t whycap)
{
    if (env_get("AWS_ACCESS_KEY_ID") == NULL)
        return -2;
    if (env_get("AWS_SECRET_ACCESS_KEY") == NULL) {
        snprintf(why, whycap, "env: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        return -1;
    }
    if (wd_secret_resolve("env://AWS_ACCESS_KEY_ID", out->access_key, sizeof(out->access_key)) <= 0 ||
        wd_secret_resolve("env://AWS_SECRET_ACCESS_KEY", out->secret_key, sizeof(out->secret_key)) <= 0 ||
        (env_get("AWS_SESSION_TOKEN") != NULL &&
         wd_secret_resolve("env://AWS_SESSION_TOKEN", out->token, sizeof(out->token)) <= 0)) {
        snprintf(why, whycap, "env: a key variable is too long");
        return -1;
    }
    char w[160];
    if (creds_check(out, false, w, sizeof(w)) != 0) {
        snprintf(why, whycap, "env: %s", w);
        return -1;
    }
    out->expires_ms = 0;
    return 0;
}

static int creds_file(const struct ctx *x, struct wd_aws_creds *out, char *why, size_t whycap)
{
    char def[1024];
    const char *path = first(x->cfg->credentials_file, "AWS_SHARED_CREDENTIALS_FILE");
    if (path == NULL) {
        const char *home = env_get("HOME");
        if (home == NULL)
            return -2;
        snprintf(def, sizeof(def), "%s/.aws/credentials", home);
        path = def;
    }
    const char *profile = first(x->cfg->profile, "AWS_PROFILE");
    if (profile == NULL)
        profile = "default";
    char *buf;
    size_t mapn;
    long n = read_secure(path, WD_AWS_SHARED_FILE_MAX, &buf, &mapn);
    if (n < 0) {
        if (errno == ENOENT && x->chain)
            return -2;
        snprintf(why, whycap, "shared file: cannot read %.120s: %s", path,
                 errno == EFBIG ? "too large" : strerror(errno));
        return -1;
    }
    char w[200];
    int r = wd_aws_parse_shared_file(buf, (size_t)n, profile, out, w, sizeof(w));
    wd_secret_mem_free(buf, mapn);
    if (r == -2) {
        if (x->chain)
            return -2;
        snprintf(why, whycap, "shared file: %.120s has no profile [%.64s]", path, profile);
        return -1;
    }
    if (r != 0) {
        snprintf(why, whycap, "shared file: %s", w);
        return -1;
    }
    out->expires_ms = 0;
    return 0;
}

static int creds_web(const struct ctx *x, struct wd_aws_creds *out, char *why, size_t whycap)
{
    const char *role = first(x->cfg->role_arn, "AWS_ROLE_ARN");
    const char *tokfile = first(x->cfg->web_identity_token_file, "AWS_WEB_IDENTITY_TOKEN_FILE");
    if (role == NULL && tokfile == NULL && x->chain)
        return -2;
    if (role == NULL || tokfile == NULL) {
        snprintf(why, whycap, "web identity: %s", role == NULL ? "no role ARN (secrets.aws.role_arn, AWS_ROLE_ARN)"
                                                                : "no token file (AWS_WEB_IDENTITY_TOKEN_FILE)");
        return -1;
    }
    const char *session = first(x->cfg->session_name, "AWS_ROLE_SESSION_NAME");
    if (session == NULL)
        session = "warden";
    char *jwt;
    size_t mapn;
    long n = read_secure(tokfile, 64 * 1024, &jwt, &mapn);
    if (n < 0) {
        snprintf(why, whycap, "web identity: cannot read the token file %.120s: %s", tokfile, strerror(errno));
        return -1;
    }
    while (n > 0 && (jwt[n - 1] == '\n' || jwt[n - 1] == '\r' || jwt[n - 1] == ' '))
        jwt[--n] = '\0';
    if (n == 0) {
        wd_secret_mem_free(jwt, mapn);
        snprintf(why, whycap, "web identity: the token file %.120s is empty", tokfile);
        return -1;
    }
    char url[512];
    if (x->cfg->sts_endpoint != NULL && x->cfg->sts_endpoint[0] != '\0')
        snprintf(url, sizeof(url), "%s", x->cfg->sts_endpoint);
    else if (x->region != NULL)
        snprintf(url, sizeof(url), "https://sts.%s.%s/", x->region, dns_suffix(x->region));
    else
        snprintf(url, sizeof(url), "https://sts.amazonaws.com/");
    const char *fields[] = {"Action", "AssumeRoleWithWebIdentity", "Version", "2011-06-15", "RoleArn", role,
                            "RoleSessionName", session, "WebIdentityToken", jwt, NULL};
    struct wd_buf form = {0}, body;
    int rc = -1;
    if (!wd_buf_reserve(&form, (size_t)n * 3 + 1024) || wd_http_form_encode(fields, &form) != 0 ||
        !body_init(&body, WD_AWS_CRED_MAX_ANSWER)) {
        buf_wipe_free(&form);
        wd_secret_mem_free(jwt, mapn);
        snprintf(why, whycap, "web identity: out of memory");
        return -1;
    }
    wd_secret_mem_free(jwt, mapn);
    struct wd_fetch f = {.url = url, .tls_ca = x->tls_ca, .timeout_ms = x->timeout_ms,
                         .max_bytes = WD_AWS_CRED_MAX_ANSWER, .post = form.p, .post_len = form.n,
                         .content_type = "application/x-www-form-urlencoded"};
    long status;
    char err[200];
    if (wd_fetch_request(&f, &body, &status, err, sizeof(err)) != 0) {
        snprintf(why, whycap, "web identity: STS AssumeRoleWithWebIdentity: %.150s", err);
    } else if (status != 200) {
        char code[96], msg[200];
        if (wd_aws_sts_parse_error(body.p, body.n, code, sizeof(code), msg, sizeof(msg)) == 0)
            snprintf(why, whycap, "web identity: STS AssumeRoleWithWebIdentity: HTTP %ld %.64s: %.100s", status, code,
                     msg);
        else
            snprintf(why, whycap, "web identity: STS AssumeRoleWithWebIdentity: HTTP %ld", status);
    } else {
        char w[200];
        if (wd_aws_sts_parse_credentials(body.p, body.n, out, w, sizeof(w)) == 0)
            rc = 0;
        else
            snprintf(why, whycap, "web identity: %s", w);
    }
    buf_wipe_free(&form);
    buf_wipe_free(&body);
    return rc;
}

static int creds_container(const struct ctx *x, struct wd_aws_creds *out, char *why, size_t whycap)
{
    char url[1200], w[200];
    int r = wd_aws_container_url(env_get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
                                 env_get("AWS_CONTAINER_CREDENTIALS_FULL_URI"), url, sizeof(url), w, sizeof(w));
    if (r == -2) {
        if (x->chain)
            return -2;
        snprintf(why, whycap, "container: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor _FULL_URI is set");
        return -1;
    }
    if (r != 0) {
        snprintf(why, whycap, "container: %s", w);
        return -1;
    }
    char *tok = NULL;
    size_t mapn = 0;
    const char *tokfile = env_get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (tokfile != NULL) {
        long n = read_secure(tokfile, 16 * 1024, &tok, &mapn);
        if (n < 0) {
            snprintf(why, whycap, "container: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %.100s: %s", tokfile,
                     strerror(errno));
            return -1;
        }
        while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
            tok[--n] = '\0';
    } else if (env_get("AWS_CONTAINER_AUTHORIZATION_TOKEN") != NULL) {
        mapn = 16 * 1024;
        tok = wd_secret_mem_alloc(mapn);
        if (tok == NULL || wd_secret_resolve("env://AWS_CONTAINER_AUTHORIZATION_TOKEN", tok, mapn) <= 0) {
            wd_secret_mem_free(tok, mapn);
            snprintf(why, whycap, "container: AWS_CONTAINER_AUTHORIZATION_TOKEN cannot be read");
            return -1;
        }
    }
    if (tok != NULL && strpbrk(tok, "\r\n") != NULL) {
        wd_secret_mem_free(tok, mapn);
        snprintf(why, whycap, "container: the authorization token holds a line break");
        return -1;
    }
    struct wd_buf body;
    if (!body_init(&body, WD_AWS_CRED_MAX_ANSWER)) {
        wd_secret_mem_free(tok, mapn);
        snprintf(why, whycap, "container: out of memory");
        return -1;
    }
    struct wd_fetch f = {.url = url, .tls_ca = x->tls_ca, .timeout_ms = x->timeout_ms,
                         .max_bytes = WD_AWS_CRED_MAX_ANSWER, .accept = "application/json",
                         .authorization = tok != NULL && tok[0] ? tok : NULL};
    long status;
    char err[200];
    int rc = -1;
    if (wd_fetch_request(&f, &body, &status, err, sizeof(err)) != 0)
        snprintf(why, whycap, "container: %s", err);
    else if (status != 200)
        snprintf(why, whycap, "container: the credentials endpoint answered HTTP %ld", status);
    else if (wd_aws_parse_json_credentials(body.p, body.n, false, out, w, sizeof(w)) != 0)
        snprintf(why, whycap, "container: %s", w);
    else
        rc = 0;
    wd_secret_mem_free(tok, mapn);
    buf_wipe_free(&body);
    return rc;
}

/* One IMDS call with the session token (when tok): the body into b, the status into *status. */
static int imds_call(const struct ctx *x, const char *url, const char *method, const char *hdr, struct wd_buf *b,
                     long *status, char *err, size_t errcap, unsigned tmo)
{
    const char *headers[] = {hdr, NULL};
    struct wd_fetch f = {.url = url, .timeout_ms = tmo, .max_bytes = WD_AWS_CRED_MAX_ANSWER, .method = method,
                         .headers = hdr ? headers : NULL, .direct = true};
    (void)x;
    return wd_fetch_request(&f, b, status, err, errcap);
}

static int creds_imds(const struct ctx *x, struct wd_aws_creds *out, char *why, size_t whycap)
{
    const char *dis = env_get("AWS_EC2_METADATA_DISABLED");
    if (x->chain && dis != NULL && strcasecmp(dis, "true") == 0)
        return -2;
    const char *base = first(x->cfg->imds_endpoint, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (base == NULL)
        base = "http://169.254.169.254";
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    /* outside EC2 the address does not answer: in the chain, give up sooner than a whole request timeout */
    unsigned tmo = x->chain && x->timeout_ms > 3000 ? 3000 : x->timeout_ms;
    char url[1200], hdr[320], err[200], role[160];
    struct wd_buf b;
    int rc = -1;
    long status = 0;
    if (!body_init(&b, WD_AWS_CRED_MAX_ANSWER)) {
        snprintf(why, whycap, "imds: out of memory");
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (g->imds_token[0] == '\0' || now_ms() + 60000 >= g->imds_token_exp_ms) {
            snprintf(url, sizeof(url), "%.*s/latest/api/token", (int)bl, base);
            snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token-ttl-seconds: %d", IMDS_TOKEN_TTL_S);
            wd_buf_reset(&b);
            if (imds_call(x, url, "PUT", hdr, &b, &status, err, sizeof(err), tmo) != 0) {
                snprintf(why, whycap, "imds: PUT /latest/api/token: %s", err);
                goto out;
            }
            if (status != 200) {
                snprintf(why, whycap, "imds: PUT /latest/api/token: HTTP %ld", status);
                goto out;
            }
            while (b.n > 0 && (b.p[b.n - 1] == '\n' || b.p[b.n - 1] == '\r'))
                b.n--;
            if (b.n == 0 || b.n >= sizeof(g->imds_token)) {
                snprintf(why, whycap, "imds: the session token is empty or too long");
                goto out;
            }
            memcpy(g->imds_token, b.p, b.n);
            g->imds_token[b.n] = '\0';
            if (!cred_chars_ok(g->imds_token)) {
                OPENSSL_cleanse(g->imds_token, sizeof(g->imds_token));
                snprintf(why, whycap, "imds: the session token has characters outside printable ASCII");
                goto out;
            }
            g->imds_token_exp_ms = now_ms() + IMDS_TOKEN_TTL_S * 1000LL;
        }
        snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", g->imds_token);
        snprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/security-credentials/", (int)bl, base);
        wd_buf_reset(&b);
        int fr = imds_call(x, url, "GET", hdr, &b, &status, err, sizeof(err), tmo);
        if (fr == 0 && status == 401 && attempt == 0) {
            OPENSSL_cleanse(g->imds_token, sizeof(g->imds_token)); /* an expired or revoked session: a new one */
            continue;
        }
        if (fr != 0) {
            snprintf(why, whycap, "imds: GET the role name: %s", err);
            goto out;
        }
        if (status == 404) {
            snprintf(why, whycap, "imds: no instance profile is attached to this instance (HTTP 404)");
            goto out;
        }
        if (status != 200) {
            snprintf(why, whycap, "imds: GET the role name: HTTP %ld", status);
            goto out;
        }
        size_t rl = 0;
        while (rl < b.n && b.p[rl] != '\n' && b.p[rl] != '\r')
            rl++;
        if (rl == 0 || rl >= sizeof(role)) {
            snprintf(why, whycap, "imds: the role name is empty or too long");
            goto out;
        }
        for (size_t i = 0; i < rl; i++) {
            if (!(isalnum((unsigned char)b.p[i]) || strchr("+=,.@_-", b.p[i]) != NULL)) {
                snprintf(why, whycap, "imds: the role name has characters a role name cannot have");
                goto out;
            }
        }
        memcpy(role, b.p, rl);
        role[rl] = '\0';
        snprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/security-credentials/%s", (int)bl, base, role);
        wd_buf_reset(&b);
        fr = imds_call(x, url, "GET", hdr, &b, &status, err, sizeof(err), tmo);
        if (fr == 0 && status == 401 && attempt == 0) {
            OPENSSL_cleanse(g->imds_token, sizeof(g->imds_token));
            continue;
        }
        if (fr != 0) {
            snprintf(why, whycap, "imds: GET the credentials of role %.64s: %.100s", role, err);
            goto out;
        }
        if (status != 200) {
            snprintf(why, whycap, "imds: GET the credentials of role %.64s: HTTP %ld", role, status);
            goto out;
        }
        char w[200];
        if (wd_aws_parse_json_credentials(b.p, b.n, true, out, w, sizeof(w)) != 0) {
            snprintf(why, whycap, "imds: %s", w);
            goto out;
        }
        rc = 0;
        goto out;
    }
    snprintf(why, whycap, "imds: HTTP 401 with a fresh session token");
out:
    OPENSSL_cleanse(hdr, sizeof(hdr));
    buf_wipe_free(&b);
    return rc;
}

/* Fresh credentials from the configured source, or the default chain: 0 with *src, or -1 with why. */
static int creds_load(const struct ctx *x, struct wd_aws_creds *out, int *src, char *why, size_t whycap)
{
    int which[5], nw = 0;
    switch (x->cfg->credentials) {
    case WD_AWS_SRC_ENV: which[nw++] = SRC_ENV; break;
    case WD_AWS_SRC_FILE: which[nw++] = SRC_FILE; break;
    case WD_AWS_SRC_WEB_IDENTITY: which[nw++] = SRC_WEB; break;
    case WD_AWS_SRC_CONTAINER: which[nw++] = SRC_CONTAINER; break;
    case WD_AWS_SRC_IMDS: which[nw++] = SRC_IMDS; break;
    default:
        which[nw++] = SRC_ENV;
        which[nw++] = SRC_WEB;
        which[nw++] = SRC_FILE;
        which[nw++] = SRC_CONTAINER;
        which[nw++] = SRC_IMDS;
    }
    for (int i = 0; i < nw; i++) {
        int r;
        memset(out, 0, sizeof(*out));
        switch (which[i]) {
        case SRC_ENV: r = creds_env(out, why, whycap); break;
        case SRC_WEB: r = creds_web(x, out, why, whycap); break;
        case SRC_FILE: r = creds_file(x, out, why, whycap); break;
        case SRC_CONTAINER: r = creds_container(x, out, why, whycap); break;
        default: r = creds_imds(x, out, why, whycap); break;
        }
        if (r == 0) {
            *src = which[i];
            return 0;
        }
        OPENSSL_cleanse(out, sizeof(*out));
        if (r == -1)
            return -1;
        if (!x->chain) {
            snprintf(why, whycap, "%s", which[i] == SRC_ENV ? "env: AWS_ACCESS_KEY_ID is not set"
                                        : which[i] == SRC_FILE ? "shared file: no path (HOME is not set)"
                                                               : "imds: AWS_EC2_METADATA_DISABLED is true");
            return -1;
        }
    }
    snprintf(why, whycap, "no credentials in the chain (env, web identity, shared file, container, imds)");
    return -1;
}

/* The credentials to sign with, fetched or replaced when due. A failed replacement keeps credentials that
 * still work (the next resolve tries again). */
static int creds_get(const struct ctx *x, char *why, size_t whycap)
{
    int64_t now = now_ms();
    if (g->src != SRC_NONE && now < g->refresh_ms)
        return 0;
    struct wd_aws_creds *tmp = wd_secret_mem_alloc(sizeof(*tmp));
    if (tmp == NULL) {
        snprintf(why, whycap, "out of memory");
        return -1;
    }
    int src = SRC_NONE;
    int rc = creds_load(x, tmp, &src, why, whycap);
    if (rc == 0) {
        memcpy(&g->c, tmp, sizeof(*tmp));
        g->src = src;
        g->refresh_ms = tmp->expires_ms ? wd_aws_refresh_at(now, tmp->expires_ms) : now + STATIC_REREAD_MS;
        if (tmp->expires_ms)
            wd_logf(WD_LOG_INFO, NULL, "aws-sm: credentials from %s, valid for %lld s", src_names[src],
                    (long long)((tmp->expires_ms - now) / 1000));
    } else if (g->src != SRC_NONE && (g->c.expires_ms == 0 || now < g->c.expires_ms)) {
        wd_logf(WD_LOG_WARN, NULL, "aws-sm: replacing the credentials failed, the current ones still work: %s", why);
        g->refresh_ms = now + 5000;
        rc = 0;
    }
    wd_secret_mem_free(tmp, sizeof(*tmp));
    return rc;
}

static void creds_drop(void)
{
    OPENSSL_cleanse(&g->c, sizeof(g->c));
    g->src = SRC_NONE;
    g->refresh_ms = 0;
}

int wd_aws_sm_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms,
                      char *why, size_t whycap)
{
    const struct wd_aws_config *ac = &cfg->aws;
    *ttl_ms = ac->ttl_ms ? ac->ttl_ms : DEFAULT_TTL_MS;
    struct wd_ref_aws r;
    char w[300];
    if (wd_ref_aws_parse(ref, &r, w, sizeof(w)) != 0) {
        snprintf(why, whycap, "aws-sm: %s", w);
        return -1;
    }
    const char *region = wd_aws_pick_region(r.region, ac->region, env_get);
    if (region == NULL) {
        snprintf(why, whycap, "aws-sm: no region (secrets.aws.region, AWS_REGION or an ARN reference), or an "
                              "invalid one");
        return -1;
    }
    if (g == NULL && (g = wd_secret_mem_alloc(sizeof(*g))) == NULL) {
        snprintf(why, whycap, "aws-sm: out of memory");
        return -1;
    }
    const char *sts_region = wd_aws_pick_region(NULL, ac->region, env_get);
    struct ctx x = {.cfg = ac, .region = sts_region ? sts_region : region, .tls_ca = first(ac->tls_ca, "AWS_CA_BUNDLE"),
                    .timeout_ms = ac->timeout_ms ? ac->timeout_ms : DEFAULT_TIMEOUT_MS,
                    .chain = ac->credentials == WD_AWS_SRC_CHAIN};
    char endpoint[512];
    if (ac->endpoint != NULL && ac->endpoint[0] != '\0')
        snprintf(endpoint, sizeof(endpoint), "%s", ac->endpoint);
    else
        snprintf(endpoint, sizeof(endpoint), "https://secretsmanager.%s.%s/", region, dns_suffix(region));
    char hdrs[WD_SECRET_MAX];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (creds_get(&x, w, sizeof(w)) != 0) {
            snprintf(why, whycap, "aws-sm: credentials: %s", w);
            return -1;
        }
        struct wd_buf req = {0}, body;
        size_t nh = 0;
        if (wd_aws_sm_build_request(&g->c, region, endpoint, r.id, (int64_t)(now_ms() / 1000), &req, hdrs,
                                    sizeof(hdrs), &nh, w, sizeof(w)) != 0) {
            wd_buf_free(&req);
            snprintf(why, whycap, "aws-sm: %s", w);
            return -1;
        }
        const char *lines[12];
        size_t off = 0;
        for (size_t i = 0; i < nh && i < 11; i++) {
            lines[i] = hdrs + off;
            off += strlen(hdrs + off) + 1;
        }
        lines[nh < 11 ? nh : 11] = NULL;
        if (!body_init(&body, WD_AWS_SM_MAX_ANSWER)) {
            OPENSSL_cleanse(hdrs, sizeof(hdrs));
            wd_buf_free(&req);
            snprintf(why, whycap, "aws-sm: out of memory");
            return -1;
        }
        struct wd_fetch f = {.url = endpoint, .tls_ca = x.tls_ca, .timeout_ms = x.timeout_ms,
                             .max_bytes = WD_AWS_SM_MAX_ANSWER, .post = req.p, .post_len = req.n,
                             .headers = lines};
        long status;
        char err[200];
        int fr = wd_fetch_request(&f, &body, &status, err, sizeof(err));
        OPENSSL_cleanse(hdrs, sizeof(hdrs));
        wd_buf_free(&req);
        if (fr != 0) {
            buf_wipe_free(&body);
            snprintf(why, whycap, "aws-sm: GetSecretValue %s: %s", r.id, err);
            return -1;
        }
        if (status == 200) {
            int n = wd_aws_sm_parse_value(body.p, body.n, r.field, out, cap, w, sizeof(w));
            buf_wipe_free(&body);
            if (n < 0)
                snprintf(why, whycap, "aws-sm: GetSecretValue %s: %s", r.id, w);
            return n;
        }
        char type[96], msg[200];
        int er = wd_aws_json_error(body.p, body.n, type, sizeof(type), msg, sizeof(msg));
        buf_wipe_free(&body);
        if (attempt == 0 && (status == 401 || status == 403 || (er == 0 && wd_aws_error_is_credential(type)))) {
            /* credentials revoked or expired early: a fresh set, once */
            wd_logf(WD_LOG_INFO, NULL, "aws-sm: GetSecretValue refused the credentials from %s (HTTP %ld %s): "
                    "fetching new ones", src_names[g->src], status, er == 0 ? type : "");
            creds_drop();
            continue;
        }
        if (er == 0)
            snprintf(why, whycap, "aws-sm: GetSecretValue %s: HTTP %ld %s: %s", r.id, status, type, msg);
        else
            snprintf(why, whycap, "aws-sm: GetSecretValue %s: HTTP %ld", r.id, status);
        return -1;
    }
    return -1; /* not reached: the second attempt returns */
}

void wd_aws_sm_shutdown(void)
{
    if (g != NULL) {
        wd_secret_mem_free(g, sizeof(*g));
        g = NULL;
    }
}
