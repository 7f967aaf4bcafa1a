/* Unit tests for audit/record.c: the canonical form byte for byte (the golden files are the spec example of
 * docs/audit.md), string escaping and replacement, truncation, timestamps, genesis and chain hashes
 * (recomputed here with OpenSSL and checked against vectors from sha256sum), the line format in both
 * directions, what the line reader refuses, signed checkpoints, the file scanner and signing keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "audit/record.h"
#include "unit.h"

static const char CHAIN[] = "0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e";

/* Known values, computed outside this code:
 *   printf '%s' 'warden-audit-v1 genesis 0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e' | sha256sum
 *   { printf '%s' $GENESIS | xxd -r -p; cat tests/unit/golden/audit_canonical_minimal.json; } | sha256sum
 *   { printf '%s' $H1 | xxd -r -p; cat tests/unit/golden/audit_canonical_full.json; } | sha256sum */
static const char GENESIS_HEX[] = "6fdc7b967536c729e4abcaf406c74a91654c0312c1e70f308ecb2c5facd21893";
static const char H1_HEX[] = "fa3f60339da5c8159c14ab873147c3ab12913a0378aee135fa9ebda7238e71aa";
static const char H2_HEX[] = "47d879ffc0db56b8e93c5e3be5eac3e6506af8f0b27510fc4d0fe8696706fb94";

/* A fixed Ed25519 test key (openssl genpkey -algorithm ed25519). Its key id, from
 *   openssl pkey -in k.pem -pubout -outform DER | tail -c 32 | sha256sum | cut -c1-16
 * and the signature of CKPT_MESSAGE, from openssl pkeyutl -sign -rawin, are below. */
static const char TEST_KEY_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                                   "MC4CAQAwBQYDK2VwBCIEIHh7dT0+G+sr6XmoDUk1o6t8CVWyMZpbgsS4z35hj0UP\n"
                                   "-----END PRIVATE KEY-----\n";
static const char TEST_PUB_PEM[] = "-----BEGIN PUBLIC KEY-----\n"
                                   "MCowBQYDK2VwAyEAJCU8r7GQmZmicWqRu9AyhBCfbniQhAovPWZz4/glV0A=\n"
                                   "-----END PUBLIC KEY-----\n";
static const char TEST_KEY_ID[] = "8ec3659a0730ee73";
static const char CKPT_MESSAGE[] = "warden-audit-checkpoint-v1\n"
                                   "0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\n"
                                   "42\n"
                                   "47d879ffc0db56b8e93c5e3be5eac3e6506af8f0b27510fc4d0fe8696706fb94\n"
                                   "2026-03-14T15:09:27.000001Z\n";
static const char CKPT_SIG_B64[] =
    "uBQkXsmtYrihUtkMq/aeaZcRvoYM/OD3WPQUUHIhn0lv9u+SNIfPzT97J+KAlr2MuRyqXzyhYdjVbgpQQ7cnDQ==";
#define CKPT_TS 1773500967000001LL /* 2026-03-14T15:09:27.000001Z */

/* ---- helpers ---- */

static void from_hex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(wd_unhex(hex, strlen(hex), out, n), (int)n);
}

static void assert_bytes(const char *what, const void *got, size_t gn, const void *want, size_t wn)
{
    if (gn != wn || memcmp(got, want, gn) != 0)
        print_error("%s:\n got  (%zu) %.*s\n want (%zu) %.*s\n", what, gn, (int)gn, (const char *)got, wn, (int)wn,
                    (const char *)want);
    assert_int_equal(gn, wn);
    assert_memory_equal(got, want, gn);
}

static void assert_hash_hex(const uint8_t h[32], const char *hex)
{
    char got[65];
    wd_hex(h, 32, got);
    assert_string_equal(got, hex);
}

/* SHA-256(a || b) computed here, not through record.c. */
static void sha256_evp(const void *a, size_t an, const void *b, size_t bn, uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned len = 0;
    assert_non_null(c);
    assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(c, a, an), 1);
    assert_int_equal(EVP_DigestUpdate(c, b, bn), 1);
    assert_int_equal(EVP_DigestFinal_ex(c, out, &len), 1);
    assert_int_equal(len, 32);
    EVP_MD_CTX_free(c);
}

static void rec_minimal(struct wd_audit_rec *r)
{
    memset(r, 0, sizeof(*r));
    wd_audit_set_cstr(r, WD_AF_CHAIN_ID, CHAIN);
    wd_audit_set_int(r, WD_AF_SEQ, 1);
    wd_audit_set_int(r, WD_AF_TS, 1767225600000000LL); /* 2026-01-01T00:00:00Z */
    wd_audit_set_cstr(r, WD_AF_KIND, "system");
    wd_audit_set_cstr(r, WD_AF_EVENT, "chain_start");
}

static const char REQ_BODY[] = "{\"model\":\"claude-sonnet-4\",\"max_tokens\":1024}";
static const char RESP_BODY[] = "{\"type\":\"message\",\"stop_reason\":\"end_turn\"}";

static void rec_full(struct wd_audit_rec *r)
{
    memset(r, 0, sizeof(*r));
    wd_audit_set_cstr(r, WD_AF_CHAIN_ID, CHAIN);
    wd_audit_set_int(r, WD_AF_SEQ, 42);
    wd_audit_set_int(r, WD_AF_TS, 1773500966535897LL); /* 2026-03-14T15:09:26.535897Z */
    wd_audit_set_cstr(r, WD_AF_KIND, "request");
    wd_audit_set_cstr(r, WD_AF_EVENT, "completed");
    wd_audit_set_cstr(r, WD_AF_REQUEST_ID, "req_7f3a9c");
    wd_audit_set_cstr(r, WD_AF_TRACE_ID, "4bf92f3577b34da6a3ce929d0e0e4736");
    wd_audit_set_cstr(r, WD_AF_SUBJECT, "alice@example.com");
    wd_audit_set_cstr(r, WD_AF_KEY_NAME, "ci-bot");
    wd_audit_set_cstr(r, WD_AF_TEAM, "platform");
    wd_audit_set_cstr(r, WD_AF_ORG, "acme");
    wd_audit_set_cstr(r, WD_AF_AUTH_METHOD, "api_key");
    wd_audit_set_cstr(r, WD_AF_CLIENT_ADDR, "203.0.113.7");
    wd_audit_set_cstr(r, WD_AF_USER_AGENT, "curl/8.5 (caf\xE9)"); /* Latin-1 byte: U+FFFD */
    wd_audit_set_cstr(r, WD_AF_API, "anthropic.messages");
    wd_audit_set_cstr(r, WD_AF_ROUTE, "default");
    wd_audit_set_cstr(r, WD_AF_MODEL_REQUESTED, "claude-sonnet-4");
    wd_audit_set_cstr(r, WD_AF_MODEL_RESOLVED, "gemini-2.5-pro");
    wd_audit_set_cstr(r, WD_AF_PROVIDER, "gemini");
    wd_audit_set_cstr(r, WD_AF_DECISION, "allow");
    wd_audit_set_cstr(r, WD_AF_RULE, "teams.platform");
    wd_audit_set_cstr(r, WD_AF_REASON, "matched \"platform\"");
    wd_audit_set_int(r, WD_AF_UPSTREAM_STATUS, 200);
    wd_audit_set_cstr(r, WD_AF_STOP_REASON, "end_turn");
    wd_audit_set_int(r, WD_AF_INPUT_TOKENS, 1234);
    wd_audit_set_int(r, WD_AF_OUTPUT_TOKENS, 567);
    wd_audit_set_int(r, WD_AF_CACHED_TOKENS, 0);
    wd_audit_set_int(r, WD_AF_TTFB_US, 412345);
    wd_audit_set_int(r, WD_AF_TOTAL_US, 2876543);
    wd_audit_set_cstr(r, WD_AF_ERROR_CLASS, ""); /* empty, not null */
    /* printf '%s' "$REQ_BODY" | sha256sum, and the same for RESP_BODY */
    wd_audit_set_cstr(r, WD_AF_REQUEST_SHA256, "d236a8b82630404fd166959508f796ca82d7932ce961bf7403b38b8b116aca52");
    wd_audit_set_cstr(r, WD_AF_RESPONSE_SHA256, "bf225484f7a29394131c73ad2cf52ec0a647916c9a9408dbdb857f4387f611a4");
    wd_audit_set_cstr(r, WD_AF_DETAIL, "path C:\\tmp\nline2\ttab \x01 na\xC3\xAFve \xE2\x86\x92 \xF0\x9F\x94\x92");
}

/* The expected canonical bytes, written out by hand from the rules in record.h. */
static const char CANON_FULL[] =
    "{\"v\":1,\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\",\"seq\":42,\"ts\":\"2026-03-14T15:09:26.535897Z\","
    "\"kind\":\"request\",\"event\":\"completed\",\"request_id\":\"req_7f3a9c\","
    "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"subject\":\"alice@example.com\",\"key_name\":\"ci-bot\","
    "\"team\":\"platform\",\"org\":\"acme\",\"auth_method\":\"api_key\",\"client_addr\":\"203.0.113.7\","
    "\"user_agent\":\"curl/8.5 (caf\xEF\xBF\xBD)\",\"api\":\"anthropic.messages\",\"route\":\"default\","
    "\"model_requested\":\"claude-sonnet-4\",\"model_resolved\":\"gemini-2.5-pro\",\"provider\":\"gemini\","
    "\"decision\":\"allow\",\"rule\":\"teams.platform\",\"reason\":\"matched \\\"platform\\\"\","
    "\"upstream_status\":200,\"stop_reason\":\"end_turn\",\"input_tokens\":1234,\"output_tokens\":567,"
    "\"cached_tokens\":0,\"ttfb_us\":412345,\"total_us\":2876543,\"error_class\":\"\","
    "\"request_sha256\":\"d236a8b82630404fd166959508f796ca82d7932ce961bf7403b38b8b116aca52\","
    "\"response_sha256\":\"bf225484f7a29394131c73ad2cf52ec0a647916c9a9408dbdb857f4387f611a4\","
    "\"detail\":\"path C:\\\\tmp\\u000aline2\\u0009tab \\u0001 na\xC3\xAFve \xE2\x86\x92 \xF0\x9F\x94\x92\"}";

static const char CANON_MINIMAL[] =
    "{\"v\":1,\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\",\"seq\":1,\"ts\":\"2026-01-01T00:00:00.000000Z\","
    "\"kind\":\"system\",\"event\":\"chain_start\",\"request_id\":null,\"trace_id\":null,\"subject\":null,"
    "\"key_name\":null,\"team\":null,\"org\":null,\"auth_method\":null,\"client_addr\":null,\"user_agent\":null,"
    "\"api\":null,\"route\":null,\"model_requested\":null,\"model_resolved\":null,\"provider\":null,"
    "\"decision\":null,\"rule\":null,\"reason\":null,\"upstream_status\":null,\"stop_reason\":null,"
    "\"input_tokens\":null,\"output_tokens\":null,\"cached_tokens\":null,\"ttfb_us\":null,\"total_us\":null,"
    "\"error_class\":null,\"request_sha256\":null,\"response_sha256\":null,\"detail\":null}";

/* The minimal record's line (no bodies), with its chain hash H1. */
static const char LINE_MINIMAL[] =
    "{\"v\":1,\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\",\"seq\":1,\"ts\":\"2026-01-01T00:00:00.000000Z\","
    "\"kind\":\"system\",\"event\":\"chain_start\",\"request_id\":null,\"trace_id\":null,\"subject\":null,"
    "\"key_name\":null,\"team\":null,\"org\":null,\"auth_method\":null,\"client_addr\":null,\"user_agent\":null,"
    "\"api\":null,\"route\":null,\"model_requested\":null,\"model_resolved\":null,\"provider\":null,"
    "\"decision\":null,\"rule\":null,\"reason\":null,\"upstream_status\":null,\"stop_reason\":null,"
    "\"input_tokens\":null,\"output_tokens\":null,\"cached_tokens\":null,\"ttfb_us\":null,\"total_us\":null,"
    "\"error_class\":null,\"request_sha256\":null,\"response_sha256\":null,\"detail\":null,"
    "\"hash\":\"fa3f60339da5c8159c14ab873147c3ab12913a0378aee135fa9ebda7238e71aa\","
    "\"request_body\":null,\"response_body\":null}";

static void canon(const struct wd_audit_rec *r, struct wd_buf *out)
{
    wd_buf_reset(out);
    assert_int_equal(wd_audit_canonical(r, out), 0);
}

/* The result of reading one line. */
struct got {
    struct wd_arena a;
    struct wd_json j;
    struct wd_audit_rec rec;
    struct wd_audit_ckpt ck;
    uint8_t hash[32];
    const char *why;
    int kind;
};

static int read_line(struct got *g, const char *line, size_t n)
{
    memset(g, 0, sizeof(*g));
    g->kind = wd_audit_read_line(line, n, &g->a, &g->j, &g->rec, g->hash, &g->ck, &g->why);
    return g->kind;
}

static void got_free(struct got *g)
{
    wd_arena_free(&g->a);
    wd_json_free(&g->j);
}

/* out = s with the first occurrence of from replaced by to (which must occur). */
static void subst(const char *s, const char *from, const char *to, struct wd_buf *out)
{
    const char *p = strstr(s, from);
    if (p == NULL)
        fail_msg("\"%s\" not found", from);
    wd_buf_reset(out);
    wd_buf_put(out, s, (size_t)(p - s));
    wd_buf_puts(out, to);
    wd_buf_puts(out, p + strlen(from));
}

/* ---- canonical form ---- */

static void test_canonical_full(void **state)
{
    struct wd_audit_rec r;
    struct wd_buf b = {0};
    rec_full(&r);
    canon(&r, &b);
    assert_bytes("full canonical", b.p, b.n, CANON_FULL, sizeof(CANON_FULL) - 1);
    size_t gn;
    char *golden = slurp(GOLDEN "audit_canonical_full.json", &gn);
    assert_bytes("golden audit_canonical_full.json", b.p, b.n, golden, gn);
    free(golden);
    wd_buf_free(&b);
}

static void test_canonical_minimal(void **state)
{
    struct wd_audit_rec r;
    struct wd_buf b = {0};
    rec_minimal(&r);
    canon(&r, &b);
    assert_bytes("minimal canonical", b.p, b.n, CANON_MINIMAL, sizeof(CANON_MINIMAL) - 1);
    size_t gn;
    char *golden = slurp(GOLDEN "audit_canonical_minimal.json", &gn);
    assert_bytes("golden audit_canonical_minimal.json", b.p, b.n, golden, gn);
    free(golden);

    /* each required field, unset, makes the record unwritable */
    static const enum wd_audit_field_id required[] = {WD_AF_CHAIN_ID, WD_AF_SEQ, WD_AF_TS, WD_AF_KIND, WD_AF_EVENT};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        rec_minimal(&r);
        r.f[required[i]] = (struct wd_audit_value){0};
        wd_buf_reset(&b);
        assert_int_equal(wd_audit_canonical(&r, &b), -1);
    }
    /* setting a string to NULL clears it */
    rec_minimal(&r);
    wd_audit_set_str(&r, WD_AF_KIND, NULL, 5);
    assert_int_equal(wd_audit_canonical(&r, &b), -1);
    /* the chain id must be a lowercase UUID */
    static const char *const bad_ids[] = {"0192A4E8-7C1F-4B3A-9D2E-5F6A7B8C9D0E", "0192a4e87c1f4b3a9d2e5f6a7b8c9d0e",
                                          "0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0", "", "0192a4e8_7c1f-4b3a-9d2e-5f6a7b8c9d0e",
                                          "0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0g"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        rec_minimal(&r);
        wd_audit_set_cstr(&r, WD_AF_CHAIN_ID, bad_ids[i]);
        wd_buf_reset(&b);
        assert_int_equal(wd_audit_canonical(&r, &b), -1);
    }
    wd_buf_free(&b);
}

/* The value of one field in a record's canonical form. */
static void field_value(const struct wd_audit_rec *r, const char *name, struct wd_buf *b, struct wd_str *v)
{
    canon(r, b);
    wd_buf_putc(b, '\0');
    char key[64];
    snprintf(key, sizeof(key), ",\"%s\":", name);
    const char *p = strstr(b->p, key);
    assert_non_null(p);
    p += strlen(key);
    /* up to the next ",\"<field>\":" or the closing brace; the values tested here hold no such text */
    const char *end = b->p + b->n - 2; /* the closing brace */
    for (int f = 0; f < WD_AF__COUNT; f++) {
        snprintf(key, sizeof(key), ",\"%s\":", wd_audit_fields[f].name);
        const char *q = strstr(p, key);
        if (q != NULL && q < end)
            end = q;
    }
    *v = (struct wd_str){p, (size_t)(end - p)};
}

static void test_canonical_ints(void **state)
{
    static const struct {
        int64_t v;
        const char *want;
    } cases[] = {
        {0, "0"}, {1, "1"}, {-1, "-1"}, {200, "200"}, {1000000, "1000000"},
        {INT64_MAX, "9223372036854775807"}, {INT64_MIN, "-9223372036854775808"},
    };
    struct wd_buf b = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wd_audit_rec r;
        rec_minimal(&r);
        wd_audit_set_int(&r, WD_AF_INPUT_TOKENS, cases[i].v);
        struct wd_str v;
        field_value(&r, "input_tokens", &b, &v);
        assert_bytes("int", v.p, v.n, cases[i].want, strlen(cases[i].want));
    }
    wd_buf_free(&b);
}

/* ---- escaping ---- */

struct esc {
    const char *in;
    size_t n;
    const char *want; /* the JSON string, with quotes */
};
#define E(in, want) {in, sizeof(in) - 1, want}
#define FFFD "\xEF\xBF\xBD"

static void check_escape(const struct esc *e)
{
    struct wd_audit_rec r;
    struct wd_buf b = {0};
    rec_minimal(&r);
    wd_audit_set_str(&r, WD_AF_DETAIL, e->in, e->n);
    struct wd_str v;
    field_value(&r, "detail", &b, &v);
    assert_bytes("escaped", v.p, v.n, e->want, strlen(e->want));
    wd_buf_free(&b);
}

static void test_escaping(void **state)
{
    static const struct esc cases[] = {
        E("", "\"\""),
        E("plain text", "\"plain text\""),
        E("a\"b", "\"a\\\"b\""),
        E("a\\b", "\"a\\\\b\""),
        E("\\\"", "\"\\\\\\\"\""),
        E("/", "\"/\""), /* not escaped */
        E("\x7f", "\"\x7f\""), /* DEL as is */
        E("\x1f\x20", "\"\\u001f \""),
        E("\n\r\t\b\f", "\"\\u000a\\u000d\\u0009\\u0008\\u000c\""), /* no short escapes */
        E("\x1b[0m", "\"\\u001b[0m\""),
        /* valid UTF-8 as is: 2, 3 and 4 bytes, the edges of each length */
        E("\xC2\x80", "\"\xC2\x80\""), E("\xC3\xA9", "\"\xC3\xA9\""), E("\xDF\xBF", "\"\xDF\xBF\""),
        E("\xE0\xA0\x80", "\"\xE0\xA0\x80\""), E("\xE2\x82\xAC", "\"\xE2\x82\xAC\""),
        E("\xED\x9F\xBF", "\"\xED\x9F\xBF\""), E("\xEE\x80\x80", "\"\xEE\x80\x80\""),
        E("\xEF\xBF\xBF", "\"\xEF\xBF\xBF\""), E(FFFD, "\"" FFFD "\""),
        E("\xF0\x90\x80\x80", "\"\xF0\x90\x80\x80\""), E("\xF0\x9F\x98\x80", "\"\xF0\x9F\x98\x80\""),
        E("\xF4\x8F\xBF\xBF", "\"\xF4\x8F\xBF\xBF\""),
        E("a\xC3\xA9\"\xE2\x82\xAC\\", "\"a\xC3\xA9\\\"\xE2\x82\xAC\\\\\""),
        /* NUL */
        E("\0", "\"" FFFD "\""),
        E("a\0b", "\"a" FFFD "b\""),
        E("\0\0", "\"" FFFD FFFD "\""),
        /* bytes that start no valid sequence: one U+FFFD each */
        E("\x80", "\"" FFFD "\""),
        E("\xBF", "\"" FFFD "\""),
        E("\xFF", "\"" FFFD "\""),
        E("\xFE", "\"" FFFD "\""),
        E("\xF5\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""),
        E("caf\xE9!", "\"caf" FFFD "!\""),
        /* overlong forms */
        E("\xC0\xAF", "\"" FFFD FFFD "\""),
        E("\xC1\xBF", "\"" FFFD FFFD "\""),
        E("\xE0\x80\xAF", "\"" FFFD FFFD FFFD "\""),
        E("\xE0\x9F\xBF", "\"" FFFD FFFD FFFD "\""),
        E("\xF0\x80\x80\xAF", "\"" FFFD FFFD FFFD FFFD "\""),
        E("\xF0\x8F\xBF\xBF", "\"" FFFD FFFD FFFD FFFD "\""),
        /* UTF-16 surrogates, alone and as a CESU-8 pair */
        E("\xED\xA0\x80", "\"" FFFD FFFD FFFD "\""),
        E("\xED\xBF\xBF", "\"" FFFD FFFD FFFD "\""),
        E("\xED\xA0\xBD\xED\xB8\x80", "\"" FFFD FFFD FFFD FFFD FFFD FFFD "\""),
        /* past U+10FFFF */
        E("\xF4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""),
        /* cut short: at the end, and before other text */
        E("\xE2\x82", "\"" FFFD FFFD "\""),
        E("\xE2\x82x", "\"" FFFD FFFD "x\""),
        E("\xF0\x9F\x98", "\"" FFFD FFFD FFFD "\""),
        E("\xC3", "\"" FFFD "\""),
        E("\xC3\"", "\"" FFFD "\\\"\""),
        E("\xC3\x01", "\"" FFFD "\\u0001\""),
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("escape case %zu\n", i);
        check_escape(&cases[i]);
    }
    /* every control character, by table */
    for (unsigned c = 1; c < 0x20; c++) {
        char in[1] = {(char)c}, want[9];
        snprintf(want, sizeof(want), "\"\\u00%02x\"", c);
        struct esc e = {in, 1, want};
        check_escape(&e);
    }
    /* and every other ASCII byte as is, except the two escaped ones */
    for (unsigned c = 0x20; c < 0x80; c++) {
        char in[1] = {(char)c}, want[5];
        if (c == '"' || c == '\\')
            snprintf(want, sizeof(want), "\"\\%c\"", c);
        else
            snprintf(want, sizeof(want), "\"%c\"", c);
        struct esc e = {in, 1, want};
        check_escape(&e);
    }
}

/* ---- truncation ---- */

static void test_set_str_truncation(void **state)
{
    static char s[WD_AUDIT_DETAIL_MAX + 16];
    struct wd_audit_rec r;
    rec_minimal(&r);

    /* ASCII: cut at the limit exactly */
    memset(s, 'a', sizeof(s));
    wd_audit_set_str(&r, WD_AF_USER_AGENT, s, WD_AUDIT_STR_MAX);
    assert_int_equal(r.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX);
    wd_audit_set_str(&r, WD_AF_USER_AGENT, s, WD_AUDIT_STR_MAX + 1);
    assert_int_equal(r.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX);
    assert_ptr_equal(r.f[WD_AF_USER_AGENT].s, s);

    /* a 3-byte character ending at the limit stays; one straddling it goes whole */
    for (size_t start = WD_AUDIT_STR_MAX - 4; start <= WD_AUDIT_STR_MAX; start++) {
        memset(s, 'a', sizeof(s));
        memcpy(s + start, "\xE2\x82\xAC", 3);
        wd_audit_set_str(&r, WD_AF_USER_AGENT, s, start + 3 + 5);
        size_t want = start + 3 <= WD_AUDIT_STR_MAX ? WD_AUDIT_STR_MAX : start;
        print_message("euro at %zu\n", start);
        assert_int_equal(r.f[WD_AF_USER_AGENT].n, want);
    }
    /* the same with a 4-byte character, in detail (its own limit) */
    memset(s, 'a', sizeof(s));
    memcpy(s + WD_AUDIT_DETAIL_MAX - 2, "\xF0\x9F\x98\x80", 4);
    wd_audit_set_str(&r, WD_AF_DETAIL, s, WD_AUDIT_DETAIL_MAX + 10);
    assert_int_equal(r.f[WD_AF_DETAIL].n, WD_AUDIT_DETAIL_MAX - 2);
    wd_audit_set_str(&r, WD_AF_USER_AGENT, s, WD_AUDIT_DETAIL_MAX + 10);
    assert_int_equal(r.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX);

    /* the limit is on the canonical text: bytes that become U+FFFD count three each, so that the record
     * reads back (the reader checks the decoded string against the same limit) */
    memset(s, 0xFF, sizeof(s));
    wd_audit_set_str(&r, WD_AF_USER_AGENT, s, 1100);
    assert_int_equal(r.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX / 3);
    memset(s, 0, sizeof(s));
    wd_audit_set_str(&r, WD_AF_USER_AGENT, s, WD_AUDIT_STR_MAX);
    assert_int_equal(r.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX / 3);
    memset(s, 'a', sizeof(s));
    s[WD_AUDIT_STR_MAX - 3] = (char)0xFF; /* a U+FFFD that just fits: 1021 + 3 bytes */
    wd_audit_set_str(&r, WD_AF_USER_AGENT, s, WD_AUDIT_STR_MAX);
    assert_int_equal(r.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX - 2);
    memset(s, 'a', sizeof(s));
    s[WD_AUDIT_STR_MAX - 2] = (char)0xFF; /* one that does not: 1022 + 3 */
    wd_audit_set_str(&r, WD_AF_USER_AGENT, s, WD_AUDIT_STR_MAX);
    assert_int_equal(r.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX - 2);
    /* a character cut short by the end of the input is no character: its bytes count three each */
    memset(s, 'a', sizeof(s));
    memcpy(s + WD_AUDIT_STR_MAX - 4, "\xE2\x82", 2);
    wd_audit_set_str(&r, WD_AF_USER_AGENT, s, WD_AUDIT_STR_MAX - 2);
    assert_int_equal(r.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX - 3);

    /* whatever was cut, the line reads back with the same canonical bytes */
    static const unsigned char fills[] = {'a', 0xFF, 0x00, 0x80, 0xE2};
    struct wd_buf c = {0}, l = {0}, c2 = {0};
    for (size_t k = 0; k < sizeof(fills); k++) {
        memset(s, fills[k], sizeof(s));
        rec_minimal(&r);
        wd_audit_set_str(&r, WD_AF_USER_AGENT, s, sizeof(s));
        wd_audit_set_str(&r, WD_AF_DETAIL, s, sizeof(s));
        canon(&r, &c);
        uint8_t h[32] = {0};
        wd_buf_reset(&l);
        wd_audit_line(&r, c.p, c.n, h, &l);
        struct got g;
        if (read_line(&g, l.p, l.n) != WD_AUDIT_LINE_RECORD)
            fail_msg("fill 0x%02x: %s", fills[k], g.why);
        canon(&g.rec, &c2);
        assert_bytes("re-read", c2.p, c2.n, c.p, c.n);
        got_free(&g);
    }
    wd_buf_free(&c);
    wd_buf_free(&l);
    wd_buf_free(&c2);

    /* set_cstr, and NULL */
    wd_audit_set_cstr(&r, WD_AF_ROUTE, "r1");
    assert_int_equal(r.f[WD_AF_ROUTE].n, 2);
    assert_true(r.f[WD_AF_ROUTE].set);
    wd_audit_set_cstr(&r, WD_AF_ROUTE, NULL);
    assert_null(r.f[WD_AF_ROUTE].s);
    assert_false(r.f[WD_AF_ROUTE].set);
}

/* ---- timestamps ---- */

static void test_ts(void **state)
{
    static const struct {
        int64_t us;
        const char *s;
    } ok[] = {
        {0, "1970-01-01T00:00:00.000000Z"},
        {1, "1970-01-01T00:00:00.000001Z"},
        {999999, "1970-01-01T00:00:00.999999Z"},
        {1000000, "1970-01-01T00:00:01.000000Z"},
        {1767225600000000LL, "2026-01-01T00:00:00.000000Z"},
        {1773500966535897LL, "2026-03-14T15:09:26.535897Z"},
        {951782400000000LL, "2000-02-29T00:00:00.000000Z"},
        {1709164800123456LL, "2024-02-29T00:00:00.123456Z"},
        {4102444800000000LL, "2100-01-01T00:00:00.000000Z"},
        {4133980799999999LL, "2100-12-31T23:59:59.999999Z"},
        {253402300799999999LL, "9999-12-31T23:59:59.999999Z"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char s[28];
        memset(s, 'x', sizeof(s));
        wd_format_ts(ok[i].us, s);
        assert_string_equal(s, ok[i].s);
        int64_t us = -7;
        assert_int_equal(wd_parse_ts(ok[i].s, 27, &us), 0);
        assert_int_equal(us, ok[i].us);
    }
    static const char *const bad[] = {
        "2026-02-31T00:00:00.000000Z", /* no such day */
        "2026-02-29T00:00:00.000000Z", "2100-02-29T00:00:00.000000Z", /* not leap years */
        "2026-04-31T00:00:00.000000Z", "2026-13-01T00:00:00.000000Z", "2026-00-01T00:00:00.000000Z",
        "2026-01-00T00:00:00.000000Z", "2026-01-32T00:00:00.000000Z",
        "2026-01-01T24:00:00.000000Z", "2026-01-01T00:60:00.000000Z", "2026-01-01T23:59:60.000000Z",
        "2026-03-14T15:09:26.535897", /* no Z */
        "2026-03-14T15:09:26.535897z", "2026-03-14t15:09:26.535897Z", "2026-03-14 15:09:26.535897Z",
        "2026-03-14T15:09:26.53589Z",  /* five digits */
        "2026-03-14T15:09:26.5358970Z", "2026-03-14T15:09:26Z", "2026-03-14T15:09:26.535897+00:00",
        "2026-03-14T15:09:26,535897Z", "2026/03/14T15:09:26.535897Z", "2026-3-14T15:09:26.5358970Z",
        "+026-03-14T15:09:26.535897Z", "2026-03-14T15:09:26.-35897Z", "2026-03-14T15:09:26.53589 Z",
        "2026-0a-14T15:09:26.535897Z", " 2026-03-14T15:09:26.535897", "1969-12-31T23:59:59.999999Z",
        "0000-01-01T00:00:00.000000Z", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us = 0;
        if (wd_parse_ts(bad[i], strlen(bad[i]), &us) == 0)
            fail_msg("accepted %s", bad[i]);
    }
    /* a prefix of a good one is not good */
    int64_t us;
    assert_int_equal(wd_parse_ts("2026-03-14T15:09:26.535897Z", 26, &us), -1);
    /* now is after the code was written and in range */
    int64_t now = wd_now_us();
    assert_true(now > 1767225600000000LL);
    char s[28];
    wd_format_ts(now, s);
    assert_int_equal(wd_parse_ts(s, 27, &us), 0);
    assert_int_equal(us, now);
}

/* ---- hashes ---- */

static void test_genesis_and_chain(void **state)
{
    uint8_t g[32], want[32];
    wd_audit_genesis(CHAIN, g);
    assert_hash_hex(g, GENESIS_HEX);
    sha256_evp("warden-audit-v1 genesis ", 24, CHAIN, strlen(CHAIN), want);
    assert_memory_equal(g, want, 32);

    /* two records: h1 = H(genesis || minimal), h2 = H(h1 || full) */
    struct wd_audit_rec r;
    struct wd_buf b = {0};
    uint8_t h1[32], h2[32];
    rec_minimal(&r);
    canon(&r, &b);
    wd_audit_chain_hash(g, b.p, b.n, h1);
    sha256_evp(g, 32, b.p, b.n, want);
    assert_memory_equal(h1, want, 32);
    assert_hash_hex(h1, H1_HEX);
    rec_full(&r);
    canon(&r, &b);
    wd_audit_chain_hash(h1, b.p, b.n, h2);
    sha256_evp(h1, 32, b.p, b.n, want);
    assert_memory_equal(h2, want, 32);
    assert_hash_hex(h2, H2_HEX);

    /* another chain, another genesis; one changed byte, another hash */
    uint8_t g2[32];
    wd_audit_genesis("0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0f", g2);
    assert_memory_not_equal(g, g2, 32);
    b.p[b.n - 3] ^= 1;
    wd_audit_chain_hash(h1, b.p, b.n, want);
    assert_memory_not_equal(h2, want, 32);
    wd_buf_free(&b);

    /* hex helpers */
    char hx[65];
    uint8_t back[32];
    wd_hex(h2, 32, hx);
    assert_int_equal(wd_unhex(hx, 64, back, 32), 32);
    assert_memory_equal(back, h2, 32);
    assert_int_equal(wd_unhex(hx, 63, back, 32), -1);
    assert_int_equal(wd_unhex(hx, 64, back, 31), -1);
    assert_int_equal(wd_unhex("0A", 2, back, 32), -1); /* lowercase only */
    assert_int_equal(wd_unhex("0g", 2, back, 32), -1);
    assert_int_equal(wd_unhex("", 0, back, 32), 0);
}

/* ---- the line format ---- */

/* ---- COPY rows (wd_audit_line_copy), decoded here by PostgreSQL's documented COPY text rules ---- */

/* One field of a COPY text row, unescaped; *null for \N. Returns the position after the field's
 * separator (tab or the final newline). */
static const char *copy_field(const char *p, const char *end, struct wd_buf *out, bool *null)
{
    wd_buf_reset(out);
    *null = false;
    if (end - p >= 3 && p[0] == '\\' && p[1] == 'N' && (p[2] == '\t' || p[2] == '\n')) {
        *null = true;
        return p + 3;
    }
    while (p < end && *p != '\t' && *p != '\n') {
        if (*p != '\\') {
            wd_buf_putc(out, *p++);
            continue;
        }
        assert_true(end - p >= 2);
        char c = p[1];
        p += 2;
        if (c >= '0' && c <= '7') {
            int v = c - '0';
            for (int k = 0; k < 2 && p < end && *p >= '0' && *p <= '7'; k++)
                v = v * 8 + (*p++ - '0');
            wd_buf_putc(out, (char)v);
        } else {
            static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
            const char *f = strchr(from, c);
            assert_true(c != 'x' && c != 'N'); /* the writer never needs these */
            wd_buf_putc(out, f != NULL && c != '\0' ? to[f - from] : c);
        }
    }
    assert_true(p < end);
    return p + 1;
}

/* A bytea field in hex input format, compared with the bytes it should hold. */
static void check_copy_bytea(const struct wd_buf *f, bool null, bool want_set, const void *want, size_t wn)
{
    assert_int_equal(null, !want_set);
    if (null)
        return;
    assert_true(f->n >= 2 && f->p[0] == '\\' && f->p[1] == 'x');
    uint8_t *raw = malloc(wn + 1);
    assert_non_null(raw);
    assert_int_equal(wd_unhex(f->p + 2, f->n - 2, raw, wn + 1), (int)wn);
    if (wn)
        assert_memory_equal(raw, want, wn);
    free(raw);
}

/* The COPY row of a line holds what the line reader read from it, field by field. */
static void check_copy_row(const char *line, size_t n, const struct wd_audit_rec *rec, const uint8_t hash[32])
{
    struct wd_buf row = {0}, f = {0};
    wd_buf_puts(&row, "prefix\n"); /* the row is appended */
    assert_int_equal(wd_audit_line_copy(line, n, &row), 0);
    assert_memory_equal(row.p, "prefix\n", 7);
    const char *p = row.p + 7, *end = row.p + row.n;
    assert_int_equal(end[-1], '\n');
    assert_null(memchr(p, '\n', (size_t)(end - p - 1))); /* one line: newlines inside values are escaped */
    bool null;
    for (int i = 0; i < WD_AF__COUNT; i++) {
        p = copy_field(p, end, &f, &null);
        const struct wd_audit_value *v = &rec->f[i];
        char num[32];
        switch (wd_audit_fields[i].type) {
        case WD_AT_INT:
            assert_int_equal(null, !v->set);
            if (v->set) {
                snprintf(num, sizeof(num), "%lld", (long long)v->i);
                assert_bytes(wd_audit_fields[i].name, f.p, f.n, num, strlen(num));
            }
            break;
        case WD_AT_TS:
            assert_int_equal(null, !v->set);
            if (v->set) {
                wd_format_ts(v->i, num);
                assert_bytes(wd_audit_fields[i].name, f.p, f.n, num, 27);
            }
            break;
        default:
            assert_int_equal(null, v->s == NULL);
            if (v->s != NULL)
                assert_bytes(wd_audit_fields[i].name, f.p, f.n, v->s, v->n);
        }
    }
    p = copy_field(p, end, &f, &null);
    check_copy_bytea(&f, null, true, hash, 32);
    p = copy_field(p, end, &f, &null);
    check_copy_bytea(&f, null, rec->has_request_body, rec->request_body, rec->request_body_len);
    p = copy_field(p, end, &f, &null);
    check_copy_bytea(&f, null, rec->has_response_body, rec->response_body, rec->response_body_len);
    assert_ptr_equal(p, end);
    wd_buf_free(&row);
    wd_buf_free(&f);
}

static void check_roundtrip(const struct wd_audit_rec *r, const uint8_t prev[32])
{
    struct wd_buf c = {0}, l = {0}, c2 = {0}, l2 = {0};
    uint8_t h[32];
    canon(r, &c);
    wd_audit_chain_hash(prev, c.p, c.n, h);
    wd_audit_line(r, c.p, c.n, h, &l);
    assert_false(l.oom);
    /* the line starts with the canonical form, less its brace */
    assert_true(l.n > c.n);
    assert_memory_equal(l.p, c.p, c.n - 1);
    assert_int_equal(l.p[l.n - 1], '}');
    assert_null(memchr(l.p, '\n', l.n));

    struct got g;
    if (read_line(&g, l.p, l.n) != WD_AUDIT_LINE_RECORD)
        fail_msg("read_line: %s", g.why);
    assert_memory_equal(g.hash, h, 32);
    canon(&g.rec, &c2);
    assert_bytes("re-canonicalised", c2.p, c2.n, c.p, c.n);
    assert_int_equal(g.rec.has_request_body, r->has_request_body);
    assert_int_equal(g.rec.has_response_body, r->has_response_body);
    if (r->has_request_body) {
        assert_int_equal(g.rec.request_body_len, r->request_body_len);
        if (r->request_body_len)
            assert_memory_equal(g.rec.request_body, r->request_body, r->request_body_len);
    }
    if (r->has_response_body) {
        assert_int_equal(g.rec.response_body_len, r->response_body_len);
        if (r->response_body_len)
            assert_memory_equal(g.rec.response_body, r->response_body, r->response_body_len);
    }
    /* and writing what was read gives the same line */
    wd_audit_line(&g.rec, c2.p, c2.n, g.hash, &l2);
    assert_bytes("re-written line", l2.p, l2.n, l.p, l.n);
    /* the database gets the same values through COPY */
    check_copy_row(l.p, l.n, &g.rec, h);
    got_free(&g);
    wd_buf_free(&c);
    wd_buf_free(&l);
    wd_buf_free(&c2);
    wd_buf_free(&l2);
}

static void test_line_roundtrip(void **state)
{
    uint8_t g[32];
    wd_audit_genesis(CHAIN, g);
    struct wd_audit_rec r;

    /* the minimal line, byte for byte */
    struct wd_buf c = {0}, l = {0};
    uint8_t h[32];
    rec_minimal(&r);
    canon(&r, &c);
    wd_audit_chain_hash(g, c.p, c.n, h);
    wd_audit_line(&r, c.p, c.n, h, &l);
    assert_bytes("minimal line", l.p, l.n, LINE_MINIMAL, sizeof(LINE_MINIMAL) - 1);
    check_roundtrip(&r, g);

    /* the full record: no bodies, text bodies, then binary ones of every padding length */
    rec_full(&r);
    check_roundtrip(&r, g);
    r.request_body = REQ_BODY;
    r.request_body_len = strlen(REQ_BODY);
    r.has_request_body = true;
    check_roundtrip(&r, g);
    r.response_body = RESP_BODY;
    r.response_body_len = strlen(RESP_BODY);
    r.has_response_body = true;
    check_roundtrip(&r, g);
    /* the bodies go base64 after the hash */
    canon(&r, &c);
    wd_buf_reset(&l);
    wd_audit_line(&r, c.p, c.n, h, &l);
    wd_buf_putc(&l, '\0');
    assert_non_null(strstr(l.p, "\",\"request_body\":\"eyJtb2RlbCI6ImNsYXVkZS1zb25uZXQtNCIsIm1heF90b2tlbnMiOjEwMjR9\","
                                "\"response_body\":\"eyJ0eXBlIjoibWVzc2FnZSIsInN0b3BfcmVhc29uIjoiZW5kX3R1cm4ifQ==\"}"));

    static const uint8_t bin[] = {0x00, 0xFF, 0x00, '\n', '"', '\\', 0x80, 0x00, 0xC3, 0x00, 0x7F};
    for (size_t n = 0; n <= sizeof(bin); n++) {
        rec_full(&r);
        r.request_body = bin;
        r.request_body_len = n;
        r.has_request_body = true;
        r.response_body = bin + sizeof(bin) - n;
        r.response_body_len = n;
        r.has_response_body = true;
        check_roundtrip(&r, g);
        r.has_request_body = false; /* only one of them */
        check_roundtrip(&r, g);
    }
    /* a bigger binary body */
    size_t big = 100003;
    uint8_t *p = malloc(big);
    assert_non_null(p);
    for (size_t i = 0; i < big; i++)
        p[i] = (uint8_t)(i * 131 + (i >> 8));
    rec_minimal(&r);
    r.response_body = p;
    r.response_body_len = big;
    r.has_response_body = true;
    check_roundtrip(&r, g);
    free(p);

    /* text fields at their limits, and text that needed escaping and replacing */
    static char s[WD_AUDIT_DETAIL_MAX];
    memset(s, 'x', sizeof(s));
    rec_full(&r);
    wd_audit_set_str(&r, WD_AF_DETAIL, s, sizeof(s));
    wd_audit_set_str(&r, WD_AF_SUBJECT, s, WD_AUDIT_STR_MAX);
    static const char odd[] = "\0\x01\x1f\"\\\xC0\xAF\xED\xA0\x80\xF0\x9F\x98\x80\x7f";
    wd_audit_set_str(&r, WD_AF_REASON, odd, sizeof(odd) - 1);
    wd_audit_set_int(&r, WD_AF_TS, 0);
    wd_audit_set_int(&r, WD_AF_SEQ, INT64_MAX);
    wd_audit_set_int(&r, WD_AF_INPUT_TOKENS, INT64_MIN);
    check_roundtrip(&r, g);

    wd_buf_free(&c);
    wd_buf_free(&l);
}

/* The minimal line's COPY row byte for byte, the full record's escapes, and every malformed line refused
 * with the output untouched. */
static void test_copy_row(void **state)
{
    (void)state;
    struct wd_buf row = {0}, c = {0}, l = {0}, bad = {0};
    assert_int_equal(wd_audit_line_copy(LINE_MINIMAL, sizeof(LINE_MINIMAL) - 1, &row), 0);
    static const char want_min[] =
        "0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\t1\t2026-01-01T00:00:00.000000Z\tsystem\tchain_start"
        "\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N"
        "\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N"
        "\t\\\\xfa3f60339da5c8159c14ab873147c3ab12913a0378aee135fa9ebda7238e71aa\t\\N\t\\N\n";
    assert_bytes("minimal row", row.p, row.n, want_min, sizeof(want_min) - 1);

    /* the full record: a quote stays as is, a backslash doubles, control bytes go octal, an empty string
     * stays empty (not null), UTF-8 as is, bodies as hex */
    struct wd_audit_rec r;
    rec_full(&r);
    r.request_body = "\x00\xff";
    r.request_body_len = 2;
    r.has_request_body = true;
    uint8_t h[32] = {0};
    canon(&r, &c);
    wd_audit_line(&r, c.p, c.n, h, &l);
    wd_buf_reset(&row);
    assert_int_equal(wd_audit_line_copy(l.p, l.n, &row), 0);
    wd_buf_putc(&row, '\0');
    assert_non_null(strstr(row.p, "\tmatched \"platform\"\t200\t"));
    assert_non_null(strstr(row.p, "\t2876543\t\td236a8b8"));
    assert_non_null(strstr(row.p, "\tpath C:\\\\tmp\\012line2\\011tab \\001 na\xC3\xAFve \xE2\x86\x92 \xF0\x9F\x94\x92\t"));
    assert_non_null(strstr(row.p, "\tcurl/8.5 (caf\xEF\xBF\xBD)\t"));
    assert_non_null(strstr(row.p, "\t\\\\x0000000000000000000000000000000000000000000000000000000000000000\t\\\\x00ff\t\\N\n"));

    /* every cut of a valid line, and lines that are not exactly what wd_audit_line writes */
    wd_buf_reset(&row);
    wd_buf_puts(&row, "kept");
    for (size_t n = 0; n < l.n; n++)
        assert_int_equal(wd_audit_line_copy(l.p, n, &row), -1);
    static const char *const swaps[][2] = {
        {"\"seq\":42", "\"seq\":\"42\""},          {"\"seq\":42", "\"seq\":4.2"},
        {"\"seq\":42", "\"seq\":-"},               {"\"kind\":\"request\"", "\"kind\":7"},
        {"\\u000a", "\\n"},                        {"\\u0009", "\\u0000"},
        {"\\u0001", "\\u0020"},                    {"\\u0001", "\\u00zz"},
        {"\\u0009", "\t"},                        {"\\u000a", "\r"},
        {"\\\\tmp", "\\/tmp"},                     {"\"team\"", "\"org\""},
        {"{\"v\":1", "{\"v\":2"},                  {"\"hash\":\"00", "\"hash\":\"0g"},
        {"\"request_body\":\"AP8=\"", "\"request_body\":\"AP8\""},
        {"\"request_body\":\"AP8=\"", "\"request_body\":\"A*8=\""},
        {"\"response_body\":null}", "\"response_body\":null} "},
        {"\"response_body\":null}", "\"response_body\":nul}"},
    };
    wd_buf_putc(&l, '\0');
    for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
        subst(l.p, swaps[i][0], swaps[i][1], &bad);
        if (wd_audit_line_copy(bad.p, bad.n, &row) != -1)
            fail_msg("accepted a line with %s -> %s", swaps[i][0], swaps[i][1]);
    }
    assert_bytes("output after refusals", row.p, row.n, "kept", 4);
    wd_buf_free(&row);
    wd_buf_free(&c);
    wd_buf_free(&l);
    wd_buf_free(&bad);
}

static void test_read_line_rejects(void **state)
{
    struct got g;
    /* the line the cases below change is good */
    assert_int_equal(read_line(&g, LINE_MINIMAL, strlen(LINE_MINIMAL)), WD_AUDIT_LINE_RECORD);
    assert_hash_hex(g.hash, H1_HEX);
    got_free(&g);

    static const struct {
        const char *from, *to;
    } cases[] = {
        /* a field missing */
        {",\"detail\":null", ""},
        {"\"v\":1,", ""},
        {",\"response_body\":null", ""},
        {",\"hash\":\"fa3f60339da5c8159c14ab873147c3ab12913a0378aee135fa9ebda7238e71aa\"", ""},
        {"\"hash\":", "\"hash_\":"},
        /* a field twice, in place of another */
        {"\"trace_id\":null", "\"request_id\":null"},
        {"\"detail\":null", "\"kind\":\"system\""},
        {"\"response_body\":null", "\"request_body\":null"},
        {"{\"v\":1", "{\"seq\":1"},
        {"\"team\":null", "\"detail\":null"},
        /* a field too many */
        {"\"detail\":null", "\"detail\":null,\"extra\":null"},
        {"\"detail\":null", "\"detail\":null,\"v\":1"},
        {"\"detail\":null", "\"detail\":null,\"detail\":null"},
        {"\"response_body\":null", "\"response_body\":null,\"type\":null"},
        /* a field of the wrong type */
        {"\"seq\":1", "\"seq\":\"1\""},
        {"\"seq\":1", "\"seq\":1.0"},
        {"\"seq\":1", "\"seq\":1e0"},
        {"\"seq\":1", "\"seq\":true"},
        {"\"seq\":1", "\"seq\":[1]"},
        {"\"seq\":1", "\"seq\":9223372036854775808"},
        {"\"input_tokens\":null", "\"input_tokens\":\"5\""},
        {"\"input_tokens\":null", "\"input_tokens\":-9223372036854775809"},
        {"\"user_agent\":null", "\"user_agent\":5"},
        {"\"user_agent\":null", "\"user_agent\":false"},
        {"\"user_agent\":null", "\"user_agent\":[\"a\"]"},
        {"\"user_agent\":null", "\"user_agent\":{}"},
        {"\"ts\":\"2026-01-01T00:00:00.000000Z\"", "\"ts\":1767225600000000"},
        {"\"ts\":\"2026-01-01T00:00:00.000000Z\"", "\"ts\":\"2026-01-01T00:00:00Z\""},
        {"\"ts\":\"2026-01-01T00:00:00.000000Z\"", "\"ts\":\"2026-01-01T00:00:00.000000+00:00\""},
        {"\"ts\":\"2026-01-01T00:00:00.000000Z\"", "\"ts\":\"2026-02-30T00:00:00.000000Z\""},
        {"\"chain_id\":\"0192a4e8", "\"chain_id\":\"0192A4E8"},
        {"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e", "0192a4e87c1f4b3a9d2e5f6a7b8c9d0e"},
        {"\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\"", "\"chain_id\":42"},
        {"\"request_body\":null", "\"request_body\":5"},
        {"\"request_body\":null", "\"request_body\":false"},
        {"\"response_body\":null", "\"response_body\":[]"},
        /* a required field null */
        {"\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\"", "\"chain_id\":null"},
        {"\"seq\":1", "\"seq\":null"},
        {"\"ts\":\"2026-01-01T00:00:00.000000Z\"", "\"ts\":null"},
        {"\"kind\":\"system\"", "\"kind\":null"},
        {"\"event\":\"chain_start\"", "\"event\":null"},
        /* a bad hash */
        {"fa3f60339da5", "FA3F60339DA5"},
        {"e71aa\"", "e71AA\""},
        {"e71aa\"", "e71a\""},
        {"e71aa\"", "e71aa0\""},
        {"e71aa\"", "e71aa00\""},
        {"e71aa\"", "e71ag\""},
        {"\"fa3f60339da5c8159c14ab873147c3ab12913a0378aee135fa9ebda7238e71aa\"", "\"\""},
        {"\"fa3f60339da5c8159c14ab873147c3ab12913a0378aee135fa9ebda7238e71aa\"", "null"},
        {"\"fa3f60339da5c8159c14ab873147c3ab12913a0378aee135fa9ebda7238e71aa\"", "5"},
        /* bad base64 */
        {"\"request_body\":null", "\"request_body\":\"QQ=\""},
        {"\"request_body\":null", "\"request_body\":\"QUE\""},
        {"\"request_body\":null", "\"request_body\":\"Q===\""},
        {"\"request_body\":null", "\"request_body\":\"====\""},
        {"\"request_body\":null", "\"request_body\":\"QU=B\""},
        {"\"request_body\":null", "\"request_body\":\"=QUE\""},
        {"\"request_body\":null", "\"request_body\":\"QUFB=QUF\""},
        {"\"request_body\":null", "\"request_body\":\"QR==\""}, /* bits after the last byte set */
        {"\"request_body\":null", "\"request_body\":\"QUF=\""},
        {"\"request_body\":null", "\"request_body\":\"QUFB    \""},
        {"\"request_body\":null", "\"request_body\":\"    \""},
        {"\"request_body\":null", "\"request_body\":\"QU B\""},
        {"\"request_body\":null", "\"request_body\":\"QU-B\""},
        {"\"request_body\":null", "\"request_body\":\"QU_B\""},
        {"\"request_body\":null", "\"request_body\":\"QU*B\""},
        {"\"request_body\":null", "\"request_body\":\"QU\\/B\""}, /* escapes are not base64 */
        {"\"request_body\":null", "\"request_body\":\"QU\\u0042\""},
        {"\"response_body\":null", "\"response_body\":\"QUF\xC3\xA9\""},
        /* not version 1 */
        {"\"v\":1", "\"v\":2"},
        {"\"v\":1", "\"v\":0"},
        {"\"v\":1", "\"v\":\"1\""},
        {"\"v\":1", "\"v\":1.0"},
        {"\"v\":1", "\"v\":null"},
        /* a type, but not a known one */
        {"{\"v\":1", "{\"type\":\"record\",\"v\":1"},
        {"{\"v\":1", "{\"type\":\"Checkpoint\",\"v\":1"},
        {"{\"v\":1", "{\"type\":\"checkpoint \",\"v\":1"},
        {"{\"v\":1", "{\"type\":null,\"v\":1"},
        {"{\"v\":1", "{\"type\":1,\"v\":1"},
        {"{\"v\":1", "{\"type\":\"checkpoint\",\"v\":1"}, /* a record is no checkpoint */
        /* text the writer never makes: NUL (the canonical form has U+FFFD there) */
        {"\"user_agent\":null", "\"user_agent\":\"a\\u0000b\""},
        {"\"kind\":\"system\"", "\"kind\":\"\\u0000\""},
        /* not one JSON object */
        {"\"response_body\":null}", "\"response_body\":null}}"},
        {"\"response_body\":null}", "\"response_body\":null} x"},
        {"\"response_body\":null}", "\"response_body\":null}{}"},
        {"\"response_body\":null}", "\"response_body\":null"},
        {"\"response_body\":null}", "\"response_body\":null,}"},
        {"{\"v\":1", "[{\"v\":1"},
        {"\"user_agent\":null", "\"user_agent\":\"\xC3\""},
        {"\"user_agent\":null", "\"user_agent\":\"\t\""},
    };
    struct wd_buf b = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        subst(LINE_MINIMAL, cases[i].from, cases[i].to, &b);
        int k = read_line(&g, b.p, b.n);
        if (k != -1)
            fail_msg("case %zu accepted: %.*s", i, (int)b.n, b.p);
        assert_non_null(g.why);
        got_free(&g);
    }
    static const char *const not_lines[] = {"", " ", "{}", "[]", "null", "1", "\"x\"", "{", "}", "{\"v\":1}"};
    for (size_t i = 0; i < sizeof(not_lines) / sizeof(not_lines[0]); i++) {
        assert_int_equal(read_line(&g, not_lines[i], strlen(not_lines[i])), -1);
        assert_non_null(g.why);
        got_free(&g);
    }

    /* the limits, on both sides */
    static const struct {
        const char *field;
        size_t n;
        int want;
    } lim[] = {
        {"user_agent", WD_AUDIT_STR_MAX, WD_AUDIT_LINE_RECORD},  {"user_agent", WD_AUDIT_STR_MAX + 1, -1},
        {"detail", WD_AUDIT_DETAIL_MAX, WD_AUDIT_LINE_RECORD},   {"detail", WD_AUDIT_DETAIL_MAX + 1, -1},
        {"kind", WD_AUDIT_STR_MAX + 1, -1},
    };
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        struct wd_buf v = {0}, from = {0};
        wd_buf_printf(&from, "\"%s\":%s", lim[i].field, strcmp(lim[i].field, "kind") == 0 ? "\"system\"" : "null");
        wd_buf_printf(&v, "\"%s\":\"", lim[i].field);
        for (size_t k = 0; k < lim[i].n; k++)
            wd_buf_putc(&v, 'y');
        wd_buf_putc(&v, '"');
        wd_buf_putc(&v, '\0');
        wd_buf_putc(&from, '\0');
        subst(LINE_MINIMAL, from.p, v.p, &b);
        assert_int_equal(read_line(&g, b.p, b.n), lim[i].want);
        got_free(&g);
        wd_buf_free(&v);
        wd_buf_free(&from);
    }
    /* the limit counts decoded bytes: 1024 characters written as escapes are fine */
    {
        struct wd_buf v = {0};
        wd_buf_puts(&v, "\"user_agent\":\"");
        for (size_t k = 0; k < WD_AUDIT_STR_MAX; k++)
            wd_buf_puts(&v, "\\u0001");
        wd_buf_puts(&v, "\"");
        wd_buf_putc(&v, '\0');
        subst(LINE_MINIMAL, "\"user_agent\":null", v.p, &b);
        assert_int_equal(read_line(&g, b.p, b.n), WD_AUDIT_LINE_RECORD);
        assert_int_equal(g.rec.f[WD_AF_USER_AGENT].n, WD_AUDIT_STR_MAX);
        got_free(&g);
        wd_buf_free(&v);
    }
    /* good base64 of every padding length */
    static const struct {
        const char *b64;
        const char *want;
        size_t wn;
    } good[] = {{"", "", 0},         {"QQ==", "A", 1},  {"QUE=", "AA", 2},          {"QUFB", "AAA", 3},
                {"AA==", "\0", 1}, {"AAA=", "\0\0", 2}, {"/+8=", "\xFF\xEF", 2}, {"QUFBQg==", "AAAB", 4}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char to[64];
        snprintf(to, sizeof(to), "\"request_body\":\"%s\"", good[i].b64);
        subst(LINE_MINIMAL, "\"request_body\":null", to, &b);
        assert_int_equal(read_line(&g, b.p, b.n), WD_AUDIT_LINE_RECORD);
        assert_true(g.rec.has_request_body);
        assert_false(g.rec.has_response_body);
        size_t wn = good[i].wn;
        assert_int_equal(g.rec.request_body_len, wn);
        if (wn)
            assert_memory_equal(g.rec.request_body, good[i].want, wn);
        got_free(&g);
    }
    wd_buf_free(&b);
}

/* ---- checkpoints ---- */

static EVP_PKEY *test_key(void)
{
    BIO *bio = BIO_new_mem_buf(TEST_KEY_PEM, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(k);
    return k;
}

static void ckpt_fixed(struct wd_audit_ckpt *c)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->chain_id, CHAIN, 37);
    c->seq = 42;
    from_hex(H2_HEX, c->head, 32);
    c->ts_us = CKPT_TS;
}

static void test_ckpt_known_answer(void **state)
{
    struct wd_audit_ckpt c;
    ckpt_fixed(&c);
    struct wd_buf m = {0};
    wd_audit_ckpt_message(&c, &m);
    assert_bytes("checkpoint message", m.p, m.n, CKPT_MESSAGE, strlen(CKPT_MESSAGE));
    wd_buf_free(&m);

    /* Ed25519 is deterministic: the signature openssl pkeyutl made over the same message */
    EVP_PKEY *k = test_key();
    assert_int_equal(wd_audit_ckpt_sign(&c, k), 0);
    assert_string_equal(c.key_id, TEST_KEY_ID);
    struct wd_buf l = {0};
    wd_audit_ckpt_line(&c, &l);
    static const char want[] = "{\"type\":\"checkpoint\",\"v\":1,\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\","
                               "\"seq\":42,\"head\":\"47d879ffc0db56b8e93c5e3be5eac3e6506af8f0b27510fc4d0fe8696706fb94\","
                               "\"ts\":\"2026-03-14T15:09:27.000001Z\",\"key_id\":\"8ec3659a0730ee73\",\"sig\":\"";
    assert_true(l.n == strlen(want) + strlen(CKPT_SIG_B64) + 2);
    assert_bytes("checkpoint line", l.p, strlen(want), want, strlen(want));
    assert_bytes("signature", l.p + strlen(want), strlen(CKPT_SIG_B64), CKPT_SIG_B64, strlen(CKPT_SIG_B64));
    assert_memory_equal(l.p + l.n - 2, "\"}", 2);
    assert_int_equal(wd_audit_ckpt_verify(&c, k), 0);
    wd_buf_free(&l);
    EVP_PKEY_free(k);
}

static void test_ckpt_sign_verify(void **state)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    assert_non_null(other);
    struct wd_audit_ckpt c, t;
    ckpt_fixed(&c);
    assert_int_equal(wd_audit_ckpt_sign(&c, k), 0);
    assert_int_equal(wd_audit_ckpt_verify(&c, k), 0);

    /* the key id: the first 8 bytes of SHA-256 of the raw public key */
    uint8_t raw[32], d[32];
    size_t rn = sizeof(raw);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &rn), 1);
    assert_int_equal(rn, 32);
    SHA256(raw, rn, d);
    char kid[17];
    wd_hex(d, 8, kid);
    assert_string_equal(c.key_id, kid);

    /* any one bit changed in what is signed, or in the signature */
    for (int bit = 0; bit < 256; bit++) {
        t = c;
        t.head[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(wd_audit_ckpt_verify(&t, k), -1);
    }
    for (int bit = 0; bit < 512; bit++) {
        t = c;
        t.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(wd_audit_ckpt_verify(&t, k), -1);
    }
    for (int bit = 0; bit < 63; bit++) {
        t = c;
        t.seq ^= (int64_t)1 << bit;
        assert_int_equal(wd_audit_ckpt_verify(&t, k), -1);
        t = c;
        t.ts_us ^= (int64_t)1 << bit;
        assert_int_equal(wd_audit_ckpt_verify(&t, k), -1);
    }
    t = c;
    t.chain_id[35] = t.chain_id[35] == 'e' ? 'f' : 'e';
    assert_int_equal(wd_audit_ckpt_verify(&t, k), -1);
    t = c;
    t.key_id[0] = t.key_id[0] == '0' ? '1' : '0';
    assert_int_equal(wd_audit_ckpt_verify(&t, k), -1);

    /* another Ed25519 key: its id does not match; nor does its signature once the id is made to */
    assert_int_equal(wd_audit_ckpt_verify(&c, other), -1);
    t = c;
    wd_audit_key_id(other, t.key_id);
    assert_int_equal(wd_audit_ckpt_verify(&t, other), -1);
    /* signed by the other key, checked against the first */
    t = c;
    assert_int_equal(wd_audit_ckpt_sign(&t, other), 0);
    assert_int_equal(wd_audit_ckpt_verify(&t, other), 0);
    assert_int_equal(wd_audit_ckpt_verify(&t, k), -1);
    memcpy(t.key_id, c.key_id, sizeof(t.key_id));
    assert_int_equal(wd_audit_ckpt_verify(&t, k), -1);

    /* the public half alone verifies, through its PEM */
    struct wd_buf pem = {0};
    assert_int_equal(wd_audit_pubkey_pem(k, &pem), 0);
    EVP_PKEY *pub = wd_audit_pubkey_parse(pem.p, pem.n);
    assert_non_null(pub);
    assert_int_equal(wd_audit_ckpt_verify(&c, pub), 0);
    char pid[17];
    wd_audit_key_id(pub, pid);
    assert_string_equal(pid, c.key_id);
    EVP_PKEY_free(pub);
    wd_buf_free(&pem);

    /* the algorithm is pinned by the key: RSA and EC keys are refused, even with a matching id */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(rsa);
    assert_non_null(ec);
    EVP_PKEY *alien[] = {rsa, ec};
    for (size_t i = 0; i < 2; i++) {
        t = c;
        assert_int_not_equal(wd_audit_ckpt_sign(&t, alien[i]), 0);
        t = c;
        wd_audit_key_id(alien[i], t.key_id);
        assert_int_equal(wd_audit_ckpt_verify(&t, alien[i]), -1);
        assert_int_equal(wd_audit_ckpt_verify(&c, alien[i]), -1);
        /* nor does their public PEM parse as a checkpoint key */
        struct wd_buf p = {0};
        assert_int_equal(wd_audit_pubkey_pem(alien[i], &p), 0);
        assert_null(wd_audit_pubkey_parse(p.p, p.n));
        wd_buf_free(&p);
    }
    assert_null(wd_audit_pubkey_parse("not a key", 9));
    assert_null(wd_audit_pubkey_parse(TEST_KEY_PEM, strlen(TEST_KEY_PEM))); /* a private key is no public PEM */
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void test_ckpt_line(void **state)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    static const int64_t seqs[] = {1, 42, INT64_MAX};
    static const int64_t tss[] = {0, CKPT_TS, 253402300799999999LL};
    struct wd_buf l = {0}, l2 = {0};
    for (size_t i = 0; i < 3; i++) {
        struct wd_audit_ckpt c;
        ckpt_fixed(&c);
        c.seq = seqs[i];
        c.ts_us = tss[i];
        memset(c.head, (int)(i * 0x55), 32);
        assert_int_equal(wd_audit_ckpt_sign(&c, k), 0);
        wd_buf_reset(&l);
        wd_audit_ckpt_line(&c, &l);
        assert_null(memchr(l.p, '\n', l.n));
        struct got g;
        if (read_line(&g, l.p, l.n) != WD_AUDIT_LINE_CKPT)
            fail_msg("read_line: %s", g.why);
        assert_memory_equal(&g.ck, &c, sizeof(c));
        assert_int_equal(wd_audit_ckpt_verify(&g.ck, k), 0);
        wd_buf_reset(&l2);
        wd_audit_ckpt_line(&g.ck, &l2);
        assert_bytes("re-written checkpoint", l2.p, l2.n, l.p, l.n);
        got_free(&g);
    }

    /* what the reader refuses in a checkpoint line */
    struct wd_audit_ckpt c;
    ckpt_fixed(&c);
    assert_int_equal(wd_audit_ckpt_sign(&c, k), 0);
    wd_buf_reset(&l);
    wd_audit_ckpt_line(&c, &l);
    wd_buf_putc(&l, '\0');
    char sigb64[89];
    EVP_EncodeBlock((unsigned char *)sigb64, c.sig, 64);
    char sig_from[100], kid_from[40];
    snprintf(sig_from, sizeof(sig_from), "\"sig\":\"%s\"", sigb64);
    snprintf(kid_from, sizeof(kid_from), "\"key_id\":\"%s\"", c.key_id);
    /* signatures of 63 and 65 bytes; 64 with a '=' inside; 64 with bits set past the last byte */
    char sig63[100], sig65[100], sig_eq_inside[100], sig_bits[100], zero_sig[100];
    uint8_t zeros[65] = {0};
    char b64[92];
    EVP_EncodeBlock((unsigned char *)b64, zeros, 63);
    snprintf(sig63, sizeof(sig63), "\"sig\":\"%s\"", b64);
    EVP_EncodeBlock((unsigned char *)b64, zeros, 65);
    snprintf(sig65, sizeof(sig65), "\"sig\":\"%s\"", b64);
    EVP_EncodeBlock((unsigned char *)b64, zeros, 64);
    assert_int_equal(strlen(b64), 88);
    snprintf(zero_sig, sizeof(zero_sig), "\"sig\":\"%s\"", b64);
    b64[40] = '=';
    snprintf(sig_eq_inside, sizeof(sig_eq_inside), "\"sig\":\"%s\"", b64);
    b64[40] = 'A';
    b64[85] = 'B';
    snprintf(sig_bits, sizeof(sig_bits), "\"sig\":\"%s\"", b64);
    static const char HEAD[] = "\"head\":\"47d879ffc0db56b8e93c5e3be5eac3e6506af8f0b27510fc4d0fe8696706fb94\"";
    static const char TS[] = "\"ts\":\"2026-03-14T15:09:27.000001Z\"";
    const struct {
        const char *from, *to;
    } cases[] = {
        {"\"v\":1", "\"v\":2"},
        {"\"v\":1", "\"v\":\"1\""},
        {"\"v\":1,", ""},
        {"\"v\":1", "\"seq\":1"},
        {"\"seq\":42", "\"seq\":0"},
        {"\"seq\":42", "\"seq\":-1"},
        {"\"seq\":42", "\"seq\":\"42\""},
        {"\"seq\":42", "\"seq\":42.0"},
        {"\"seq\":42", "\"seq\":null"},
        {"\"chain_id\":\"0192a4e8", "\"chain_id\":\"0192A4E8"},
        {"\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\"", "\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0\""},
        {"\"chain_id\":\"0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0e\"", "\"chain_id\":null"},
        {HEAD, "\"head\":\"47D879FFC0DB56B8E93C5E3BE5EAC3E6506AF8F0B27510FC4D0FE8696706FB94\""},
        {HEAD, "\"head\":\"47d879ffc0db56b8e93c5e3be5eac3e6506af8f0b27510fc4d0fe8696706fb\""},
        {HEAD, "\"head\":\"47d879ffc0db56b8e93c5e3be5eac3e6506af8f0b27510fc4d0fe8696706fb9400\""},
        {HEAD, "\"head\":null"},
        {TS, "\"ts\":\"2026-03-14T15:09:27Z\""},
        {TS, "\"ts\":1773500967000001"},
        {TS, "\"ts\":\"2026-03-14t15:09:27.000001Z\""},
        {kid_from, "\"key_id\":\"0123456789abcde\""},
        {kid_from, "\"key_id\":\"0123456789abcdef0\""},
        {kid_from, "\"key_id\":\"0123456789ABCDEF\""},
        {kid_from, "\"key_id\":null"},
        {sig_from, "\"sig\":\"AAAA\""},
        {sig_from, "\"sig\":null"},
        {sig_from, "\"sig\":\"\""},
        {sig_from, sig63},
        {sig_from, sig65},
        {sig_from, sig_eq_inside},
        {sig_from, sig_bits},
        {"\"type\":\"checkpoint\"", "\"type\":\"checkpoint2\""},
        {"\"type\":\"checkpoint\",", ""},
        {"\"type\":\"checkpoint\",", "\"type\":\"checkpoint\",\"extra\":1,"},
        {"\"type\":\"checkpoint\",", "\"type\":\"checkpoint\",\"type\":\"checkpoint\","},
        {"\"v\":1", "\"type\":\"checkpoint\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        subst(l.p, cases[i].from, cases[i].to, &l2);
        struct got g;
        if (read_line(&g, l2.p, l2.n) != -1)
            fail_msg("checkpoint case %zu accepted: %.*s", i, (int)l2.n, l2.p);
        assert_non_null(g.why);
        got_free(&g);
    }
    /* the sig of 64 zero bytes is well formed (and does not verify) */
    subst(l.p, sig_from, zero_sig, &l2);
    struct got g;
    assert_int_equal(read_line(&g, l2.p, l2.n), WD_AUDIT_LINE_CKPT);
    assert_int_equal(wd_audit_ckpt_verify(&g.ck, k), -1);
    got_free(&g);
    wd_buf_free(&l);
    wd_buf_free(&l2);
    EVP_PKEY_free(k);
}

/* ---- the file scanner ---- */

struct seen {
    int kinds[16];
    char lines[16][8];
    const char *whys[16];
    int n;
    int stop_after;
    uint8_t hash[32];
};

static int on_line(void *ctx, int kind, const struct wd_audit_rec *rec, const uint8_t hash[32],
                   const struct wd_audit_ckpt *ckpt, const char *line, size_t len, const char *why)
{
    struct seen *s = ctx;
    assert_true(s->n < 16);
    s->kinds[s->n] = kind;
    snprintf(s->lines[s->n], sizeof(s->lines[0]), "%.*s", (int)len, line);
    s->whys[s->n] = why;
    /* exactly the parts for the kind */
    assert_int_equal(rec != NULL, kind == WD_AUDIT_LINE_RECORD);
    assert_int_equal(hash != NULL, kind == WD_AUDIT_LINE_RECORD);
    assert_int_equal(ckpt != NULL, kind == WD_AUDIT_LINE_CKPT);
    assert_int_equal(why != NULL, kind < 0);
    if (kind == WD_AUDIT_LINE_RECORD)
        memcpy(s->hash, hash, 32);
    assert_null(memchr(line, '\n', len));
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static void test_scan(void **state)
{
    EVP_PKEY *k = test_key();
    struct wd_audit_ckpt c;
    ckpt_fixed(&c);
    assert_int_equal(wd_audit_ckpt_sign(&c, k), 0);
    struct wd_buf ck = {0}, data = {0};
    wd_audit_ckpt_line(&c, &ck);

    /* record, checkpoint, garbage, empty line, record, then a torn record */
    wd_buf_puts(&data, LINE_MINIMAL);
    wd_buf_putc(&data, '\n');
    wd_buf_put(&data, ck.p, ck.n);
    wd_buf_putc(&data, '\n');
    wd_buf_puts(&data, "{\"v\":1}\n\n");
    wd_buf_puts(&data, LINE_MINIMAL);
    wd_buf_putc(&data, '\n');
    size_t full = data.n;
    wd_buf_put(&data, LINE_MINIMAL, 100);

    struct seen s = {0};
    size_t tail = 12345;
    assert_int_equal(wd_audit_scan(data.p, data.n, on_line, &s, &tail), 5);
    assert_int_equal(s.n, 5);
    assert_int_equal(tail, 100);
    int want[] = {WD_AUDIT_LINE_RECORD, WD_AUDIT_LINE_CKPT, -1, -1, WD_AUDIT_LINE_RECORD};
    for (int i = 0; i < 5; i++)
        assert_int_equal(s.kinds[i], want[i]);
    assert_string_equal(s.whys[3], "empty line");
    assert_string_equal(s.lines[3], "");
    assert_string_equal(s.lines[2], "{\"v\":1}");
    assert_hash_hex(s.hash, H1_HEX);

    /* a whole line without its newline is torn all the same */
    struct wd_buf d2 = {0};
    wd_buf_puts(&d2, LINE_MINIMAL);
    wd_buf_putc(&d2, '\n');
    wd_buf_puts(&d2, LINE_MINIMAL);
    memset(&s, 0, sizeof(s));
    assert_int_equal(wd_audit_scan(d2.p, d2.n, on_line, &s, &tail), 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(tail, strlen(LINE_MINIMAL));

    /* ending on a newline: no tail */
    memset(&s, 0, sizeof(s));
    assert_int_equal(wd_audit_scan(data.p, full, on_line, &s, &tail), 5);
    assert_int_equal(tail, 0);
    /* nothing; only a tail; only newlines */
    memset(&s, 0, sizeof(s));
    assert_int_equal(wd_audit_scan("", 0, on_line, &s, &tail), 0);
    assert_int_equal(tail, 0);
    assert_int_equal(wd_audit_scan("{\"v\"", 4, on_line, &s, &tail), 0);
    assert_int_equal(tail, 4);
    assert_int_equal(s.n, 0);
    assert_int_equal(wd_audit_scan("\n\n", 2, on_line, &s, &tail), 2);
    assert_int_equal(tail, 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.kinds[0], -1);
    assert_int_equal(s.kinds[1], -1);
    /* a NULL tail_len is allowed */
    memset(&s, 0, sizeof(s));
    assert_int_equal(wd_audit_scan(data.p, data.n, on_line, &s, NULL), 5);

    /* the callback stops the scan: the line it stopped on counts, nothing after is read */
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;
    tail = 12345;
    assert_int_equal(wd_audit_scan(data.p, data.n, on_line, &s, &tail), 2);
    assert_int_equal(s.n, 2);
    assert_int_equal(tail, 0);
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(wd_audit_scan(d2.p, d2.n, on_line, &s, &tail), 1);
    assert_int_equal(tail, strlen(LINE_MINIMAL)); /* what is left is a tail */

    wd_buf_free(&ck);
    wd_buf_free(&data);
    wd_buf_free(&d2);
    EVP_PKEY_free(k);
}

/* ---- signing keys ---- */

static void pem_of(EVP_PKEY *k, const EVP_CIPHER *enc, struct wd_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, k, enc, enc ? (unsigned char *)"secret" : NULL, enc ? 6 : 0,
                                              NULL, NULL),
                     1);
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    wd_buf_reset(out);
    wd_buf_put(out, p, (size_t)n);
    wd_buf_putc(out, '\0');
    BIO_free(bio);
}

static void test_key_load(void **state)
{
    char why[256];
    /* the fixed key, from an env:// reference: its id is known */
    setenv("WD_TEST_AUDIT_KEY", TEST_KEY_PEM, 1);
    EVP_PKEY *k = wd_audit_key_load("env://WD_TEST_AUDIT_KEY", why, sizeof(why));
    assert_non_null(k);
    char kid[17];
    wd_audit_key_id(k, kid);
    assert_string_equal(kid, TEST_KEY_ID);
    struct wd_buf pem = {0};
    assert_int_equal(wd_audit_pubkey_pem(k, &pem), 0);
    assert_bytes("public PEM", pem.p, pem.n, TEST_PUB_PEM, strlen(TEST_PUB_PEM));
    EVP_PKEY *pub = wd_audit_pubkey_parse(pem.p, pem.n);
    assert_non_null(pub);
    wd_audit_key_id(pub, kid);
    assert_string_equal(kid, TEST_KEY_ID);
    /* loading again gives the same key */
    EVP_PKEY *again = wd_audit_key_load("env://WD_TEST_AUDIT_KEY", why, sizeof(why));
    assert_non_null(again);
    assert_int_equal(EVP_PKEY_eq(k, again), 1);
    wd_audit_key_id(again, kid);
    assert_string_equal(kid, TEST_KEY_ID);
    /* and a checkpoint signed with it verifies with the public PEM */
    struct wd_audit_ckpt c;
    ckpt_fixed(&c);
    assert_int_equal(wd_audit_ckpt_sign(&c, again), 0);
    assert_int_equal(wd_audit_ckpt_verify(&c, pub), 0);
    EVP_PKEY_free(k);
    EVP_PKEY_free(again);
    EVP_PKEY_free(pub);

    /* a fresh key round-trips through its PEM with the same id */
    EVP_PKEY *fresh = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(fresh);
    pem_of(fresh, NULL, &pem);
    setenv("WD_TEST_AUDIT_KEY", pem.p, 1);
    k = wd_audit_key_load("env://WD_TEST_AUDIT_KEY", why, sizeof(why));
    assert_non_null(k);
    char kid2[17];
    wd_audit_key_id(fresh, kid);
    wd_audit_key_id(k, kid2);
    assert_string_equal(kid, kid2);
    assert_int_equal(EVP_PKEY_eq(k, fresh), 1);
    EVP_PKEY_free(k);

    /* refused: RSA, EC, Ed448 and X25519 private keys, an encrypted key (never a pass phrase prompt), a public
     * key, garbage, an unset variable, an unsupported scheme */
    EVP_PKEY *others[] = {EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
                          EVP_PKEY_Q_keygen(NULL, NULL, "ED448"), EVP_PKEY_Q_keygen(NULL, NULL, "X25519")};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_non_null(others[i]);
        pem_of(others[i], NULL, &pem);
        setenv("WD_TEST_AUDIT_KEY", pem.p, 1);
        why[0] = '\0';
        assert_null(wd_audit_key_load("env://WD_TEST_AUDIT_KEY", why, sizeof(why)));
        assert_string_equal(why, "env://WD_TEST_AUDIT_KEY is not a PEM Ed25519 private key");
        EVP_PKEY_free(others[i]);
    }
    pem_of(fresh, EVP_aes_256_cbc(), &pem);
    assert_non_null(strstr(pem.p, "ENCRYPTED"));
    setenv("WD_TEST_AUDIT_KEY", pem.p, 1);
    why[0] = '\0';
    /* OpenSSL's default pass phrase prompt reads standard input when there is no terminal: offer it the
     * pass phrase there, which must not be read */
    char tmp[] = "/tmp/wd_test_audit_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "secret\nsecret\n", 14), 14);
    close(fd);
    assert_non_null(freopen(tmp, "r", stdin));
    unlink(tmp);
    assert_null(wd_audit_key_load("env://WD_TEST_AUDIT_KEY", why, sizeof(why)));
    assert_string_equal(why, "env://WD_TEST_AUDIT_KEY is not a PEM Ed25519 private key");
    EVP_PKEY_free(fresh);

    setenv("WD_TEST_AUDIT_KEY", TEST_PUB_PEM, 1);
    assert_null(wd_audit_key_load("env://WD_TEST_AUDIT_KEY", why, sizeof(why)));
    setenv("WD_TEST_AUDIT_KEY", "not a key", 1);
    assert_null(wd_audit_key_load("env://WD_TEST_AUDIT_KEY", why, sizeof(why)));
    unsetenv("WD_TEST_AUDIT_KEY");
    why[0] = '\0';
    assert_null(wd_audit_key_load("env://WD_TEST_AUDIT_KEY", why, sizeof(why)));
    assert_string_equal(why, "cannot resolve the signing key reference env://WD_TEST_AUDIT_KEY");
    assert_null(wd_audit_key_load("vault://x", why, sizeof(why)));
    wd_buf_free(&pem);
}

/* ---- identifiers ---- */

static void test_uuid(void **state)
{
    for (int i = 0; i < 100; i++) {
        char u[37];
        wd_audit_new_uuid(u);
        assert_int_equal(strlen(u), 36);
        assert_true(wd_audit_uuid_valid(u, 36));
        assert_int_equal(u[14], '4');
        assert_non_null(strchr("89ab", u[19]));
    }
    assert_true(wd_audit_uuid_valid(CHAIN, 36));
    assert_false(wd_audit_uuid_valid(CHAIN, 35));
    assert_false(wd_audit_uuid_valid("0192a4e8-7c1f-4b3a-9d2e-5f6a7b8c9d0E", 36));
    assert_false(wd_audit_uuid_valid("0192a4e8-7c1f-4b3a-9d2e+5f6a7b8c9d0e", 36));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_full),    cmocka_unit_test(test_canonical_minimal),
        cmocka_unit_test(test_canonical_ints),    cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_set_str_truncation), cmocka_unit_test(test_ts),
        cmocka_unit_test(test_genesis_and_chain), cmocka_unit_test(test_line_roundtrip),
        cmocka_unit_test(test_read_line_rejects), cmocka_unit_test(test_ckpt_known_answer),
        cmocka_unit_test(test_ckpt_sign_verify),  cmocka_unit_test(test_ckpt_line),
        cmocka_unit_test(test_scan),              cmocka_unit_test(test_key_load),
        cmocka_unit_test(test_uuid),              cmocka_unit_test(test_copy_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
