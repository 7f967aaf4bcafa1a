/* libFuzzer driver for the audit export reader, in two directions.
 *
 * Reading (any input not starting with a NUL byte): the bytes as one line of an export file through
 * wd_audit_read_line; a checkpoint, record or anchor it returns must pass the checks of audit_check.h
 * (written again and read back, it is the same; a checkpoint's signature is checked against the fixed test
 * key, which must not crash and can only pass for that key's id).
 *
 * Writing (a NUL byte first): the rest of the bytes fill a record through the setters (any bytes in any
 * text field, at any length, bodies, any integers) and a checkpoint; each is written as a line and must
 * read back the same. Strings must be cut on a character boundary, and the cut must keep the record
 * readable. The checkpoint is also signed with the test key and must verify. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reading ---- */

static void read_one(const char *line, size_t n)
{
    struct wd_arena a = {0};
    struct wd_json j = {0};
    struct wd_audit_rec rec;
    struct wd_audit_ckpt ck;
    uint8_t hash[32];
    const char *why = NULL;
    memset(&rec, 0, sizeof(rec));
    memset(&ck, 0, sizeof(ck));
    int kind = wd_audit_read_line(line, n, &a, &j, &rec, hash, &ck, &why);
    audit_check_result(kind, &rec, hash, &ck, why);
    /* base64 has one spelling: what was accepted is what EVP_EncodeBlock writes for the bytes read
     * (j still holds the line's tokens) */
    const struct {
        const char *key;
        const void *p;
        size_t n;
        bool has;
    } b64[] = {
        {"request_body", rec.request_body, rec.request_body_len, kind == WD_AUDIT_LINE_RECORD && rec.has_request_body},
        {"response_body", rec.response_body, rec.response_body_len,
         kind == WD_AUDIT_LINE_RECORD && rec.has_response_body},
        {"sig", ck.sig, 64, kind == WD_AUDIT_LINE_CKPT},
    };
    for (size_t i = 0; i < 3; i++) {
        if (!b64[i].has)
            continue;
        struct wd_str raw = wd_json_raw(&j, wd_json_get(&j, 0, b64[i].key));
        unsigned char *enc = malloc(4 * ((b64[i].n + 2) / 3) + 1);
        MUST(enc != NULL);
        int en = EVP_EncodeBlock(enc, b64[i].p, (int)b64[i].n);
        MUST(raw.n == (size_t)en && memcmp(raw.p, enc, raw.n) == 0);
        free(enc);
    }
    wd_arena_free(&a);
    wd_json_free(&j);
}

/* ---- writing ---- */

struct src {
    const uint8_t *p;
    size_t n;
};

static uint64_t take_u(struct src *s, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++) {
        v = v << 8 | (s->n ? *s->p : 0);
        if (s->n) {
            s->p++;
            s->n--;
        }
    }
    return v;
}

static const uint8_t *take(struct src *s, size_t *n)
{
    if (*n > s->n)
        *n = s->n;
    const uint8_t *p = s->p;
    s->p += *n;
    s->n -= *n;
    return p;
}

/* Independent of record.c: the length of a well-formed UTF-8 sequence at s (by code point), or 0. */
static size_t seq_len(const uint8_t *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (len == 0 || len > n || s[0] > 0xF4)
        return 0;
    uint32_t cp = len == 1 ? s[0] : (uint32_t)(s[0] & (0x7F >> len));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A cut string is a prefix that does not split a well-formed character. */
static void check_cut(const uint8_t *s, size_t n, size_t cut)
{
    MUST(cut <= n);
    if (cut == n)
        return;
    for (size_t back = 1; back <= 3 && back <= cut; back++) {
        size_t k = seq_len(s + cut - back, n - (cut - back));
        MUST(k <= back); /* a character starting before the cut ends at or before it */
    }
}

static const char CHAIN[] = "0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e";
#define TS_END 253402300800000000LL /* 10000-01-01: the canonical form has four year digits */

static void write_one(const uint8_t *data, size_t size)
{
    struct src s = {data, size};
    struct wd_audit_rec r;
    memset(&r, 0, sizeof(r));
    wd_audit_set_cstr(&r, WD_AF_CHAIN_ID, CHAIN);
    for (int f = 0; f < WD_AF__COUNT; f++) {
        if (f == WD_AF_CHAIN_ID)
            continue;
        uint8_t how = (uint8_t)take_u(&s, 1);
        bool required = f == WD_AF_SEQ || f == WD_AF_TS || f == WD_AF_KIND || f == WD_AF_EVENT;
        if ((how & 1) && !required)
            continue; /* null */
        switch (wd_audit_fields[f].type) {
        case WD_AT_INT:
            if (f == WD_AF_SEQ) /* a chain counts from 1: the canonical form refuses anything else */
                wd_audit_set_int(&r, WD_AF_SEQ, (int64_t)(take_u(&s, 8) % (uint64_t)INT64_MAX) + 1);
            else
                wd_audit_set_int(&r, (enum wd_audit_field_id)f, (int64_t)take_u(&s, 8));
            break;
        case WD_AT_TS:
            wd_audit_set_int(&r, (enum wd_audit_field_id)f, (int64_t)(take_u(&s, 8) % TS_END));
            break;
        default: {
            /* lengths around the limits, often */
            size_t max = f == WD_AF_DETAIL ? WD_AUDIT_DETAIL_MAX : WD_AUDIT_STR_MAX;
            size_t want = (how >> 1) < 96 ? (size_t)take_u(&s, 1) : (how >> 1) < 112 ? max / 3 - 2 + (how & 7)
                                                                                     : max - 4 + (size_t)take_u(&s, 1);
            size_t n = want;
            const uint8_t *p = take(&s, &n);
            wd_audit_set_str(&r, (enum wd_audit_field_id)f, (const char *)p, n);
            check_cut(p, n, r.f[f].n);
            MUST(r.f[f].s == (const char *)p);
            break;
        }
        }
    }
    uint8_t hash[32];
    size_t hn = 32;
    const uint8_t *hp = take(&s, &hn);
    memset(hash, 0, 32);
    memcpy(hash, hp, hn);
    uint8_t bodies = (uint8_t)take_u(&s, 1);
    size_t half = s.n / 2;
    if (bodies & 1) {
        size_t n = half;
        r.request_body = take(&s, &n);
        r.request_body_len = n;
        r.has_request_body = true;
    }
    if (bodies & 2) {
        size_t n = s.n;
        r.response_body = take(&s, &n);
        r.response_body_len = n;
        r.has_response_body = true;
    }
    /* every field the setters took reads back, whatever the bytes */
    audit_check_record(&r, hash);

    /* a checkpoint from the same bytes */
    struct src t = {data, size};
    struct wd_audit_ckpt c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < 36; i++)
        c.chain_id[i] = i == 8 || i == 13 || i == 18 || i == 23 ? '-' : "0123456789abcdef"[take_u(&t, 1) & 15];
    c.seq = (int64_t)(take_u(&t, 8) % INT64_MAX) + 1;
    for (int i = 0; i < 32; i++)
        c.head[i] = (uint8_t)take_u(&t, 1);
    c.ts_us = (int64_t)(take_u(&t, 8) % TS_END);
    for (int i = 0; i < 16; i++)
        c.key_id[i] = "0123456789abcdef"[take_u(&t, 1) & 15];
    for (int i = 0; i < 64; i++)
        c.sig[i] = (uint8_t)take_u(&t, 1);
    audit_check_ckpt(&c);
    MUST(wd_audit_ckpt_sign(&c, audit_test_key()) == 0);
    MUST(strcmp(c.key_id, AUDIT_TEST_KEY_ID) == 0);
    MUST(wd_audit_ckpt_verify(&c, audit_test_key()) == 0);
    audit_check_ckpt(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 0)
        write_one(data + 1, size - 1);
    else
        read_one((const char *)data, size);
    return 0;
}
