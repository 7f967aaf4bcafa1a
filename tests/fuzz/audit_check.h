/* Invariants shared by the audit fuzz targets (fuzz_audit_spool, fuzz_audit_export). Whatever
 * wd_audit_read_line accepts, written again with the library's writers and read back, must give the same
 * thing: for a record the same canonical bytes, hash and bodies; for a checkpoint the same struct; for an
 * anchor the same chain, seq and hash. A failed check aborts. */
#ifndef WARDEN_TESTS_FUZZ_AUDIT_CHECK_H
#define WARDEN_TESTS_FUZZ_AUDIT_CHECK_H

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "audit/record.h"

#define MUST(c)                                                                                                    \
    do {                                                                                                           \
        if (!(c))                                                                                                  \
            abort();                                                                                               \
    } while (0)

/* The fixed Ed25519 test key of tests/unit/test_audit.c, and its key id. The seed corpora hold checkpoints
 * it signed, so the fuzzers start from signatures that verify. */
static const char AUDIT_TEST_KEY_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                                         "MC4CAQAwBQYDK2VwBCIEIHh7dT0+G+sr6XmoDUk1o6t8CVWyMZpbgsS4z35hj0UP\n"
                                         "-----END PRIVATE KEY-----\n";
static const char AUDIT_TEST_KEY_ID[] = "8ec3659a0730ee73";

static EVP_PKEY *audit_test_key(void)
{
    static EVP_PKEY *key;
    if (key == NULL) {
        BIO *bio = BIO_new_mem_buf(AUDIT_TEST_KEY_PEM, -1);
        key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        MUST(key != NULL);
    }
    return key;
}

static bool audit_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void audit_check_ckpt(const struct wd_audit_ckpt *c)
{
    /* what the reader promises about the struct */
    MUST(memchr(c->chain_id, '\0', sizeof(c->chain_id)) == c->chain_id + 36);
    MUST(wd_audit_uuid_valid(c->chain_id, 36));
    MUST(c->seq >= 1);
    MUST(c->key_id[16] == '\0' && audit_lower_hex(c->key_id, 16));
    char ts[28];
    wd_format_ts(c->ts_us, ts);
    int64_t us;
    MUST(wd_parse_ts(ts, 27, &us) == 0 && us == c->ts_us);

    /* written again and read back: the same struct, and the same line when written once more */
    struct wd_buf l = {0}, l2 = {0};
    wd_audit_ckpt_line(c, &l);
    MUST(!l.oom && memchr(l.p, '\n', l.n) == NULL);
    struct wd_arena a = {0};
    struct wd_json j = {0};
    struct wd_audit_rec rec;
    struct wd_audit_ckpt back;
    uint8_t hash[32];
    const char *why = NULL;
    MUST(wd_audit_read_line(l.p, l.n, &a, &j, &rec, hash, &back, &why) == WD_AUDIT_LINE_CKPT);
    MUST(memcmp(&back, c, sizeof(back)) == 0);
    wd_audit_ckpt_line(&back, &l2);
    MUST(l2.n == l.n && memcmp(l2.p, l.p, l.n) == 0);

    /* verification against the test key must not crash; it can only succeed under that key's id */
    EVP_PKEY *key = audit_test_key();
    if (wd_audit_ckpt_verify(c, key) == 0) {
        MUST(strcmp(c->key_id, AUDIT_TEST_KEY_ID) == 0);
        /* and then it is a real signature: any change to what it covers breaks it */
        struct wd_audit_ckpt t = *c;
        t.head[c->sig[0] % 32] ^= (uint8_t)(1u << (c->sig[1] % 8));
        MUST(wd_audit_ckpt_verify(&t, key) != 0);
        t = *c;
        t.seq ^= 1;
        MUST(wd_audit_ckpt_verify(&t, key) != 0);
    }
    wd_arena_free(&a);
    wd_json_free(&j);
    wd_buf_free(&l);
    wd_buf_free(&l2);
}

/* A line through wd_audit_line_copy: refused with the output untouched, or one COPY text row of every column
 * (fields of WD_AUDIT_FIELDS, hash, both bodies): tab-separated, one final newline, no raw newline or
 * carriage return in a value. Returns whether it converted. */
static bool audit_check_copy(const char *line, size_t n)
{
    struct wd_buf row = {0};
    wd_buf_puts(&row, "x");
    int rc = wd_audit_line_copy(line, n, &row);
    if (rc != 0) {
        MUST(row.n == 1 && row.p[0] == 'x');
    } else {
        MUST(row.n >= 2 && row.p[row.n - 1] == '\n');
        size_t tabs = 0;
        for (size_t i = 1; i + 1 < row.n; i++) {
            MUST(row.p[i] != '\n' && row.p[i] != '\r');
            tabs += row.p[i] == '\t';
        }
        MUST(tabs == WD_AF__COUNT + 2);
    }
    wd_buf_free(&row);
    return rc == 0;
}

static void audit_check_record(const struct wd_audit_rec *r, const uint8_t hash[32])
{
    /* a record from the reader or the setters: the writer can write it */
    struct wd_buf c = {0}, l = {0}, c2 = {0}, l2 = {0};
    MUST(wd_audit_canonical(r, &c) == 0);
    MUST(c.n >= 2 && c.p[0] == '{' && c.p[c.n - 1] == '}');
    for (int f = 0; f < WD_AF__COUNT; f++) {
        const struct wd_audit_value *v = &r->f[f];
        if (wd_audit_fields[f].type == WD_AT_STR || wd_audit_fields[f].type == WD_AT_UUID)
            MUST(v->s == NULL || v->n <= (f == WD_AF_DETAIL ? WD_AUDIT_DETAIL_MAX : WD_AUDIT_STR_MAX));
    }
    /* the canonical form is one JSON object with v and every field, in order */
    struct wd_json j = {0};
    MUST(wd_json_parse(&j, c.p, c.n) == 0 && wd_json_type(&j, 0) == WD_J_OBJ);
    MUST(j.t[0].size == WD_AF__COUNT + 1);
    uint32_t k = 1;
    MUST(wd_json_str_eq(&j, (int)k, "v"));
    k = j.t[k + 1].next;
    for (int f = 0; f < WD_AF__COUNT; f++) {
        MUST(wd_json_str_eq(&j, (int)k, wd_audit_fields[f].name));
        k = j.t[k + 1].next;
    }
    MUST(memchr(c.p, '\n', c.n) == NULL);

    wd_audit_line(r, c.p, c.n, hash, &l);
    MUST(!l.oom && memcmp(l.p, c.p, c.n - 1) == 0 && memchr(l.p, '\n', l.n) == NULL);
    MUST(audit_check_copy(l.p, l.n)); /* every line the writer writes goes to the database by COPY */
    struct wd_arena a = {0};
    struct wd_audit_rec back;
    struct wd_audit_ckpt ck;
    uint8_t h2[32];
    const char *why = NULL;
    MUST(wd_audit_read_line(l.p, l.n, &a, &j, &back, h2, &ck, &why) == WD_AUDIT_LINE_RECORD);
    MUST(memcmp(h2, hash, 32) == 0);
    MUST(wd_audit_canonical(&back, &c2) == 0);
    MUST(c2.n == c.n && memcmp(c2.p, c.p, c.n) == 0);
    MUST(back.has_request_body == r->has_request_body && back.has_response_body == r->has_response_body);
    if (r->has_request_body)
        MUST(back.request_body_len == r->request_body_len &&
             (r->request_body_len == 0 || memcmp(back.request_body, r->request_body, r->request_body_len) == 0));
    if (r->has_response_body)
        MUST(back.response_body_len == r->response_body_len &&
             (r->response_body_len == 0 || memcmp(back.response_body, r->response_body, r->response_body_len) == 0));
    wd_audit_line(&back, c2.p, c2.n, h2, &l2);
    MUST(l2.n == l.n && memcmp(l2.p, l.p, l.n) == 0);
    wd_arena_free(&a);
    wd_json_free(&j);
    wd_buf_free(&c);
    wd_buf_free(&l);
    wd_buf_free(&c2);
    wd_buf_free(&l2);
}

static void audit_check_anchor(const struct wd_audit_rec *r, const uint8_t hash[32])
{
    const struct wd_audit_value *id = &r->f[WD_AF_CHAIN_ID], *seq = &r->f[WD_AF_SEQ];
    MUST(id->s != NULL && wd_audit_uuid_valid(id->s, id->n) && seq->set && seq->i >= 1);
    char chain[37];
    memcpy(chain, id->s, 36);
    chain[36] = '\0';
    struct wd_buf l = {0};
    wd_audit_anchor_line(chain, seq->i, hash, &l);
    struct wd_arena a = {0};
    struct wd_json j = {0};
    struct wd_audit_rec back;
    struct wd_audit_ckpt ck;
    uint8_t h2[32];
    const char *why = NULL;
    MUST(wd_audit_read_line(l.p, l.n, &a, &j, &back, h2, &ck, &why) == WD_AUDIT_LINE_ANCHOR);
    MUST(memcmp(h2, hash, 32) == 0 && back.f[WD_AF_SEQ].i == seq->i && back.f[WD_AF_CHAIN_ID].n == 36 &&
         memcmp(back.f[WD_AF_CHAIN_ID].s, chain, 36) == 0);
    wd_arena_free(&a);
    wd_json_free(&j);
    wd_buf_free(&l);
}

/* One result of wd_audit_read_line (or one line of wd_audit_scan). */
static void audit_check_result(int kind, const struct wd_audit_rec *rec, const uint8_t hash[32],
                               const struct wd_audit_ckpt *ck, const char *why)
{
    switch (kind) {
    case WD_AUDIT_LINE_RECORD:
        /* text as the canonical form decodes: no NUL (it would come back as three bytes of U+FFFD) */
        for (int f = 0; f < WD_AF__COUNT; f++)
            MUST(rec->f[f].s == NULL || memchr(rec->f[f].s, '\0', rec->f[f].n) == NULL);
        audit_check_record(rec, hash);
        break;
    case WD_AUDIT_LINE_CKPT:
        audit_check_ckpt(ck);
        break;
    case WD_AUDIT_LINE_ANCHOR:
        audit_check_anchor(rec, hash);
        break;
    case -1:
        MUST(why != NULL && why[0] != '\0');
        break;
    default:
        abort();
    }
}

#endif
