/* Unit tests for lib/json.c: RFC 8259 accept/reject tables (grammar, numbers, escapes, UTF-8, depth,
 * trailing garbage), the token tree, string decoding including surrogates, numbers, and the writers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

struct doc {
    const char *s;
    size_t n; /* 0: strlen */
};
#define D(lit) {lit, sizeof(lit) - 1}

static int parse(struct wd_json *j, const struct doc *d)
{
    return wd_json_parse(j, d->s, d->n ? d->n : strlen(d->s));
}

static void test_accept(void **state)
{
    static const struct doc ok[] = {
        D("{}"), D("[]"), D(" \t\r\n{ } \n"), D("0"), D("-0"), D("1"), D("-12.5e+3"), D("1E-2"), D("0.0001"),
        D("123456789012345678901234567890"), D("true"), D("false"), D("null"), D("\"\""), D("\"x\""),
        D("[1,\"a\",true,false,null,{},[]]"), D("{\"a\":{\"b\":{\"c\":[[[]]]}}}"), D("{\"\":0}"),
        D("{\"a\" : 1 , \"b\" :[ 1 , 2 ] }"),
        /* escapes */
        D("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""), D("\"\\u0000\""), D("\"\\u00e9\\u20AC\""),
        D("\"\\ud83d\\ude00\""),
        /* raw UTF-8: 2, 3, 4 bytes, the largest code point, DEL */
        D("\"\xc3\xa9\""), D("\"\xe2\x82\xac\""), D("\"\xf0\x9f\x98\x80\""), D("\"\xf4\x8f\xbf\xbf\""),
        D("\"\xef\xbb\xbf\""), D("\"\x7f\""),
        /* long ASCII runs take the 8-byte scan; a special byte at each offset of a word */
        D("\"abcdefghijklmnopqrstuvwxyz0123456789\""), D("\"abcdefg\\n\""), D("\"abcdefgh\xc3\xa9\""),
        D("\"a\xc3\xa9 bcdefghijklmnop\""),
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct wd_json j = {0};
        int rc = parse(&j, &ok[i]);
        if (rc != 0)
            print_error("rejected #%zu %s: %s at %zu\n", i, ok[i].s, j.err, j.err_off);
        assert_int_equal(rc, 0);
        wd_json_free(&j);
    }
}

struct bad {
    struct doc d;
    const char *err;
    size_t off;
};

static void test_reject(void **state)
{
    static const struct bad bad[] = {
        {D(""), "unexpected end of input", 0},
        {D("  "), "unexpected end of input", 2},
        {D("{"), "unexpected end of input", 1},
        {D("["), "unexpected end of input", 1},
        {D("[1"), "unexpected end of input", 2},
        {D("{\"a\""), "expected ':'", 4},
        {D("{\"a\":"), "unexpected end of input", 5},
        {D("[1,]"), "trailing comma", 3},
        {D("{\"a\":1,}"), "expected object key", 7},
        {D("[,1]"), "bad number", 1},
        {D("{,}"), "expected object key", 1},
        {D("{1:2}"), "expected object key", 1},
        {D("{'a':1}"), "expected object key", 1},
        {D("{\"a\" 1}"), "expected ':'", 5},
        {D("[1 2]"), "expected ',' or closing bracket", 3},
        {D("[1}"), "expected ',' or closing bracket", 2},
        {D("{\"a\":1]"), "expected ',' or closing bracket", 6},
        {D("]"), "unexpected ']'", 0},
        {D("01"), "unexpected character after value", 1},
        {D("1."), "bad number", 2},
        {D(".5"), "bad number", 0},
        {D("+1"), "bad number", 0},
        {D("1e"), "bad number", 2},
        {D("1e+"), "bad number", 3},
        {D("-"), "bad number", 1},
        {D("-a"), "bad number", 1},
        {D("NaN"), "bad number", 0},
        {D("Infinity"), "bad number", 0},
        {D("tru"), "invalid literal", 0},
        {D("nul"), "invalid literal", 0},
        {D("True"), "bad number", 0},
        {D("truex"), "unexpected character after value", 4},
        {D("\"abc"), "unterminated string", 4},
        {D("\"abc\\"), "unterminated string", 4},
        {D("\"\\x\""), "bad escape", 1},
        {D("\"\\U0041\""), "bad escape", 1},
        {D("\"\\u12\""), "bad \\u escape", 1},
        {D("\"\\u12g4\""), "bad \\u escape", 1},
        /* lone or mismatched surrogate escapes (issue 14 item 8): refused, where they start */
        {D("\"\\ud83d\""), "lone surrogate escape", 1},
        {D("\"\\ude00x\""), "lone surrogate escape", 1},
        {D("\"ab\\ud800\\u0041\""), "lone surrogate escape", 3},
        {D("\"\\ud83d\\ud83d\\ude00\""), "lone surrogate escape", 1},
        {D("\"\\ud83d\\n\""), "lone surrogate escape", 1},
        {D("\"\\ud83d\\ude0\""), "lone surrogate escape", 1},
        {D("{\"\\udfff\":1}"), "lone surrogate escape", 2},
        {D("\"a\tb\""), "control character in string", 2},
        {D("\"a\nb\""), "control character in string", 2},
        {{"\"a\0b\"", 5}, "control character in string", 2},
        /* UTF-8: overlong, surrogate, beyond U+10FFFF, bad lead, lone continuation, truncated */
        {D("\"\xc0\x80\""), "invalid UTF-8", 1},
        {D("\"\xc1\xbf\""), "invalid UTF-8", 1},
        {D("\"\xe0\x80\xaf\""), "invalid UTF-8", 1},
        {D("\"\xf0\x80\x80\xaf\""), "invalid UTF-8", 1},
        {D("\"\xed\xa0\x80\""), "invalid UTF-8", 1},
        {D("\"\xf4\x90\x80\x80\""), "invalid UTF-8", 1},
        {D("\"\xf5\x80\x80\x80\""), "invalid UTF-8", 1},
        {D("\"\xff\""), "invalid UTF-8", 1},
        {D("\"\x80\""), "invalid UTF-8", 1},
        {D("\"\xe2\x82\""), "invalid UTF-8", 1},
        {D("\"abcdefgh\xe2\x82"), "invalid UTF-8", 9},
        {D("\xef\xbb\xbf{}"), "bad number", 0}, /* a byte order mark is not JSON */
        /* trailing garbage */
        {D("{}x"), "trailing characters", 2},
        {D("{} {}"), "trailing characters", 3},
        {D("1 2"), "trailing characters", 2},
        {D("{\"a\":1}}"), "trailing characters", 7},
        {D("[]]"), "trailing characters", 2},
        {D("\"a\"\"b\""), "unexpected character after value", 3},
        {D("{} /* comment */"), "trailing characters", 3},
        {{"{}\0", 3}, "trailing characters", 2},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct wd_json j = {0};
        int rc = parse(&j, &bad[i].d);
        if (rc == 0 || j.err == NULL || strcmp(j.err, bad[i].err) != 0 || j.err_off != bad[i].off)
            print_error("#%zu %s: rc %d err %s at %zu\n", i, bad[i].d.s, rc, j.err ? j.err : "-", j.err_off);
        assert_int_equal(rc, -1);
        assert_string_equal(j.err, bad[i].err);
        assert_int_equal(j.err_off, bad[i].off);
        wd_json_free(&j);
    }
}

static void test_depth_limit(void **state)
{
    char doc[2 * (WD_JSON_MAX_DEPTH + 1) + 1];
    struct wd_json j = {0};
    /* exactly the limit: accepted */
    memset(doc, '[', WD_JSON_MAX_DEPTH);
    memset(doc + WD_JSON_MAX_DEPTH, ']', WD_JSON_MAX_DEPTH);
    assert_int_equal(wd_json_parse(&j, doc, 2 * WD_JSON_MAX_DEPTH), 0);
    assert_int_equal(j.n, WD_JSON_MAX_DEPTH);
    /* one deeper: rejected at the opening bracket that goes too deep */
    memset(doc, '[', WD_JSON_MAX_DEPTH + 1);
    memset(doc + WD_JSON_MAX_DEPTH + 1, ']', WD_JSON_MAX_DEPTH + 1);
    assert_int_equal(wd_json_parse(&j, doc, 2 * (WD_JSON_MAX_DEPTH + 1)), -1);
    assert_string_equal(j.err, "nesting too deep");
    assert_int_equal(j.err_off, WD_JSON_MAX_DEPTH);
    /* objects count too */
    struct wd_buf b = {0};
    for (int i = 0; i <= WD_JSON_MAX_DEPTH; i++)
        wd_buf_puts(&b, "{\"a\":");
    wd_buf_puts(&b, "1");
    for (int i = 0; i <= WD_JSON_MAX_DEPTH; i++)
        wd_buf_putc(&b, '}');
    assert_int_equal(wd_json_parse(&j, b.p, b.n), -1);
    assert_string_equal(j.err, "nesting too deep");
    wd_buf_free(&b);
    wd_json_free(&j);
}

/* The string scanner reads 16 and 8 bytes at a time: every special byte at every offset of a block must
 * stop it, with the error (or the escape flag) at the right byte, and a string that runs into the end of the
 * input must never be read past it (ASan checks that: the document is copied to a buffer of its own size). */
static void test_string_scan_offsets(void **state)
{
    (void)state;
    static const struct {
        const char *ins;       /* bytes put at offset k inside a string of a's */
        const char *err;       /* NULL: accepted */
        int escaped;
    } specials[] = {
        {"\\n", NULL, 1},    {"\\u00e9", NULL, 1}, {"\xc3\xa9", NULL, 0}, {"\xe2\x82\xac", NULL, 0},
        {"\x01", "control character in string", 0}, {"\x1f", "control character in string", 0},
        {"\xff", "invalid UTF-8", 0},  {"\xc3", "invalid UTF-8", 0},  {"\\q", "bad escape", 0},
        {"\x7f", NULL, 0},  {"\xf0\x9f\x98\x80", NULL, 0}, {"\\\"", NULL, 1}, {"\\\\", NULL, 1},
        {"\\\\\\\"", NULL, 1}, {"\xed\xa0\x80", "invalid UTF-8", 0}, {"\\u00g0", "bad \\u escape", 0},
    };
    struct wd_json j = {0};
    struct wd_buf b = {0};
    for (size_t c = 0; c < sizeof(specials) / sizeof(specials[0]); c++) {
        /* The scanner works on 64-byte blocks: offsets past 128 put the byte, and the closing quote, on
         * every side of two block edges. */
        for (size_t k = 0; k < 140; k++) {
            b.n = 0;
            wd_buf_puts(&b, "[\"");
            for (size_t i = 0; i < k; i++)
                wd_buf_putc(&b, 'a');
            wd_buf_puts(&b, specials[c].ins);
            for (size_t i = 0; i < 37 - k % 17 + k % 67; i++)
                wd_buf_putc(&b, 'b');
            wd_buf_puts(&b, "\"]");
            char *doc = malloc(b.n);
            assert_non_null(doc);
            memcpy(doc, b.p, b.n);
            int r = wd_json_parse(&j, doc, b.n);
            if (specials[c].err == NULL) {
                assert_int_equal(r, 0);
                assert_int_equal(j.n, 2);
                assert_int_equal(j.t[1].escaped, specials[c].escaped);
                assert_int_equal(j.t[1].end, b.n - 2); /* the closing quote, not an escaped one */
            } else {
                assert_int_equal(r, -1);
                assert_string_equal(j.err, specials[c].err);
                assert_int_equal(j.err_off, 2 + k);
            }
            free(doc);
        }
    }
    /* unterminated, every length: the scanner stops at the end of the input */
    for (size_t k = 0; k < 140; k++) {
        char *doc = malloc(k + 1);
        assert_non_null(doc);
        doc[0] = '"';
        memset(doc + 1, 'a', k);
        assert_int_equal(wd_json_parse(&j, doc, k + 1), -1);
        assert_string_equal(j.err, "unterminated string");
        assert_int_equal(j.err_off, k + 1);
        if (k > 0) { /* the input ends inside an escape */
            doc[k] = '\\';
            assert_int_equal(wd_json_parse(&j, doc, k + 1), -1);
            assert_string_equal(j.err, "unterminated string");
            assert_int_equal(j.err_off, k);
        }
        free(doc);
    }
    wd_buf_free(&b);
    wd_json_free(&j);
}

/* The same tables and offsets through the baseline scanner (SSE2, or the portable words), which a machine
 * with AVX2 would otherwise never run. */
static void test_baseline_scanner(void **state)
{
    wd_json_force_baseline = true;
    test_accept(state);
    test_reject(state);
    test_string_scan_offsets(state);
    wd_json_force_baseline = false;
}

static int reset_baseline(void **state)
{
    (void)state;
    wd_json_force_baseline = false;
    return 0;
}

static void test_tree(void **state)
{
    const char *src = "{\"a\":[1,{\"b\":null}],\"c\":\"x\\ny\",\"d\":{},\"\\u0065\":true}";
    struct wd_json j = {0};
    assert_int_equal(wd_json_parse(&j, src, strlen(src)), 0);
    /* obj a [ 1 { b null } ] c "x\ny" d {} e true */
    assert_int_equal(j.n, 13);
    assert_int_equal(j.t[0].type, WD_J_OBJ);
    assert_int_equal(j.t[0].size, 4);
    assert_int_equal(j.t[0].next, 13);
    int a = wd_json_get(&j, 0, "a");
    assert_int_equal(a, 2);
    assert_int_equal(j.t[a].type, WD_J_ARR);
    assert_int_equal(j.t[a].size, 2);
    assert_int_equal(j.t[a].next, 7);
    struct wd_str raw = wd_json_raw(&j, a);
    assert_int_equal(raw.n, strlen("[1,{\"b\":null}]"));
    assert_memory_equal(raw.p, "[1,{\"b\":null}]", raw.n);
    int c = wd_json_get(&j, 0, "c");
    assert_int_equal(j.t[c].type, WD_J_STR);
    assert_true(j.t[c].escaped);
    raw = wd_json_raw(&j, c);
    assert_int_equal(raw.n, 4); /* still escaped: x \ n y */
    assert_memory_equal(raw.p, "x\\ny", 4);
    assert_false(j.t[a - 1].escaped);
    /* an escaped key matches its decoded form */
    int e = wd_json_get(&j, 0, "e");
    assert_int_equal(wd_json_type(&j, e), WD_J_TRUE);
    assert_int_equal(wd_json_get(&j, 0, "missing"), -1);
    assert_int_equal(wd_json_get(&j, a, "b"), -1);   /* not an object */
    assert_int_equal(wd_json_get(&j, -1, "a"), -1);
    assert_int_equal(wd_json_type(&j, -1), 0);
    assert_int_equal(wd_json_type(&j, 99), 0);        /* out of range */
    int d = wd_json_get(&j, 0, "d");
    assert_int_equal(j.t[d].size, 0);
    assert_int_equal(j.t[d].next, (uint32_t)d + 1);
    int n = 0;
    WD_JSON_ARR_EACH(&j, a, el) n++;
    assert_int_equal(n, 2);
    n = 0;
    WD_JSON_OBJ_EACH(&j, 0, k) n++;
    assert_int_equal(n, 4);
    assert_true(wd_json_str_eq(&j, c - 1, "c"));
    assert_false(wd_json_str_eq(&j, c, "c"));
    wd_json_free(&j);
}

struct dec_case {
    const char *in;     /* a JSON string literal */
    const char *out;
    size_t n;
};

static void test_str_decode(void **state)
{
    static const struct dec_case cases[] = {
        {"\"plain\"", "plain", 5},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
        {"\"\\u0041\\u00e9\\u20ac\"", "A\xc3\xa9\xe2\x82\xac", 6},
        {"\"\\u0000\"", "\0", 1},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},
        {"\"\\uD83D\\uDE00!\"", "\xf0\x9f\x98\x80!", 5},
        {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4},
        {"\"a\xc3\xa9\\n\"", "a\xc3\xa9\n", 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wd_json j = {0};
        struct wd_arena a = {0};
        struct wd_str out;
        assert_int_equal(wd_json_parse(&j, cases[i].in, strlen(cases[i].in)), 0);
        assert_int_equal(wd_json_str_decode(&j, 0, &a, &out), 0);
        if (out.n != cases[i].n || memcmp(out.p, cases[i].out, out.n) != 0)
            print_error("case %zu: %s\n", i, cases[i].in);
        assert_int_equal(out.n, cases[i].n);
        assert_memory_equal(out.p, cases[i].out, out.n);
        if (j.t[0].escaped)
            assert_int_equal(out.p[out.n], '\0');
        else
            assert_ptr_equal(out.p, cases[i].in + 1); /* unescaped strings are not copied */
        wd_arena_free(&a);
        wd_json_free(&j);
    }
    /* not a string */
    struct wd_json j = {0};
    struct wd_arena a = {0};
    struct wd_str out;
    assert_int_equal(wd_json_parse(&j, "[1]", 3), 0);
    assert_int_equal(wd_json_str_decode(&j, 1, &a, &out), -1);
    assert_int_equal(wd_json_str_decode(&j, 5, &a, &out), -1);
    wd_json_free(&j);
}

static void test_unescape(void **state)
{
    struct wd_buf b = {0};
    assert_int_equal(wd_json_unescape(&b, "a\\u00e9\\n", 9), 0);
    assert_int_equal(b.n, 4);
    assert_memory_equal(b.p, "a\xc3\xa9\n", 4);
    assert_int_equal(wd_json_unescape(&b, "", 0), 0);
    assert_int_equal(b.n, 4);
    /* lone or mismatched surrogates (the tokenizer refuses them; other content may hold them): U+FFFD, and
     * what follows is kept */
    static const struct dec_case lone[] = {
        {"\\ud83d", "\xef\xbf\xbd", 3},
        {"\\ude00", "\xef\xbf\xbd", 3},
        {"\\ud83dx", "\xef\xbf\xbdx", 4},
        {"\\ud83d\\u0041", "\xef\xbf\xbd" "A", 4},
        {"\\ud83d\\ud83d\\ude00", "\xef\xbf\xbd\xf0\x9f\x98\x80", 7},
    };
    for (size_t i = 0; i < sizeof(lone) / sizeof(lone[0]); i++) {
        struct wd_buf l = {0};
        assert_int_equal(wd_json_unescape(&l, lone[i].in, strlen(lone[i].in)), 0);
        assert_int_equal(l.n, lone[i].n);
        assert_memory_equal(l.p, lone[i].out, l.n);
        wd_buf_free(&l);
    }
    /* content that did not come from the tokenizer is bounds-checked, and b is left as it was */
    static const char *bad[] = {"\\", "ab\\", "\\u12", "\\u12x4", "\\x", "\\ud83d\\u12"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(wd_json_unescape(&b, bad[i], strlen(bad[i])), -1);
        assert_int_equal(b.n, 4);
    }
    wd_buf_free(&b);
}

static void test_numbers(void **state)
{
    struct wd_json j = {0};
    const char *src = "[123,-5,1.0,9223372036854775807,9223372036854775808,-9223372036854775808,1e3,0.5,1e999,\"7\"]";
    assert_int_equal(wd_json_parse(&j, src, strlen(src)), 0);
    int64_t v;
    double d;
    assert_int_equal(wd_json_i64(&j, 1, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(wd_json_i64(&j, 2, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(wd_json_i64(&j, 3, &v), -1); /* 1.0 is not an integer */
    assert_int_equal(wd_json_i64(&j, 4, &v), 0);
    assert_int_equal(v, INT64_MAX);
    assert_int_equal(wd_json_i64(&j, 5, &v), -1); /* overflow */
    assert_int_equal(wd_json_i64(&j, 6, &v), 0);
    assert_int_equal(v, INT64_MIN);
    assert_int_equal(wd_json_i64(&j, 7, &v), -1);
    assert_int_equal(wd_json_double(&j, 7, &d), 0);
    assert_true(d == 1000.0);
    assert_int_equal(wd_json_double(&j, 8, &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(wd_json_double(&j, 9, &d), -1); /* not finite */
    assert_int_equal(wd_json_i64(&j, 10, &v), -1);   /* a string */
    assert_int_equal(wd_json_double(&j, 10, &d), -1);
    assert_int_equal(wd_json_i64(&j, -1, &v), -1);
    wd_json_free(&j);
}

static void test_put_escaped(void **state)
{
    struct wd_buf b = {0};
    wd_json_put_string(&b, "a\"b\\c\nd\re\tf\x01g\x1f\x7fh", 16);
    const char *want = "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001f\x7fh\"";
    assert_int_equal(b.n, strlen(want));
    assert_memory_equal(b.p, want, b.n);
    /* valid UTF-8 passes untouched; invalid bytes (a message cut inside a character) become U+FFFD */
    b.n = 0;
    wd_json_put_escaped(&b, "\xc3\xa9\xf0\x9f\x98\x80", 6);
    assert_int_equal(b.n, 6);
    assert_memory_equal(b.p, "\xc3\xa9\xf0\x9f\x98\x80", 6);
    b.n = 0;
    wd_json_put_escaped(&b, "ab\xe2\x82", 4);
    assert_int_equal(b.n, 14);
    assert_memory_equal(b.p, "ab\\ufffd\\ufffd", 14);
    b.n = 0;
    wd_json_put_escaped(&b, "\xff" "x\xc0\xaf" "\xed\xa0\x80", 7);
    assert_memory_equal(b.p, "\\ufffdx\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd", b.n);
    /* whatever the bytes, the result parses as a JSON string and decodes to valid UTF-8 */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    b.n = 0;
    wd_json_put_string(&b, (const char *)all, sizeof(all));
    struct wd_json j = {0};
    assert_int_equal(wd_json_parse(&j, b.p, b.n), 0);
    assert_int_equal(j.t[0].type, WD_J_STR);
    wd_json_free(&j);
    wd_buf_free(&b);
}

/* The tokenizer is strict but must also be exact about where strings end: a raw slice written between
 * quotes reproduces the same string. */
static void test_raw_roundtrip(void **state)
{
    const char *src = "{\"k\":\"line\\u2028 \\\"q\\\" \xe2\x82\xac \\\\\"}";
    struct wd_json j = {0};
    assert_int_equal(wd_json_parse(&j, src, strlen(src)), 0);
    struct wd_buf b = {0};
    wd_buf_putc(&b, '"');
    wd_buf_put_str(&b, wd_json_raw(&j, 2));
    wd_buf_putc(&b, '"');
    struct wd_json j2 = {0};
    assert_int_equal(wd_json_parse(&j2, b.p, b.n), 0);
    struct wd_arena a = {0};
    struct wd_str s1, s2;
    assert_int_equal(wd_json_str_decode(&j, 2, &a, &s1), 0);
    assert_int_equal(wd_json_str_decode(&j2, 0, &a, &s2), 0);
    assert_int_equal(s1.n, s2.n);
    assert_memory_equal(s1.p, s2.p, s1.n);
    wd_arena_free(&a);
    wd_buf_free(&b);
    wd_json_free(&j);
    wd_json_free(&j2);
}

/* wd_buf_put_i64 against printf's own digits, and wd_buf_printf when the text fits the room there is, when it
 * does not (a second pass after growing), and appended after what the buffer held. */
static void test_buf_numbers(void **state)
{
    (void)state;
    static const int64_t vals[] = {0, 1, -1, 9, 10, -10, 99, 100, 12345, -987654321, INT64_MAX, INT64_MIN,
                                   INT64_MIN + 1, 1000000000000000000LL};
    struct wd_buf b = {0};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char want[32];
        snprintf(want, sizeof(want), "[%lld]", (long long)vals[i]);
        b.n = 0;
        wd_buf_putc(&b, '[');
        wd_buf_put_i64(&b, vals[i]);
        wd_buf_putc(&b, ']');
        assert_int_equal(b.n, strlen(want));
        assert_memory_equal(b.p, want, b.n);
    }
    char big[3000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (size_t len = 0; len < sizeof(big); len += 97) {
        b.n = 0;
        wd_buf_puts(&b, "head:");
        wd_buf_printf(&b, "%d<%s>%s", 42, big + sizeof(big) - 1 - len, "tail");
        assert_int_equal(b.n, 5 + 2 + 1 + len + 1 + 4);
        assert_memory_equal(b.p, "head:42<", 8);
        assert_memory_equal(b.p + 8 + len, ">tail", 5);
        for (size_t k = 0; k < len; k++)
            assert_int_equal(b.p[8 + k], 'z');
    }
    wd_buf_free(&b);
}

/* ---- wd_json_each_member: the members of an object read without tokens ---- */

struct members {
    int n;
    char keys[8][32];
    int types[8];
    char vals[8][96];
};

static int collect(void *ctx, int depth, struct wd_str k, int type, struct wd_str v)
{
    struct members *m = ctx;
    if (m->n >= 8)
        return 7;
    if (depth != 0)
        return 9;
    snprintf(m->keys[m->n], sizeof(m->keys[0]), "%.*s", (int)k.n, k.p);
    snprintf(m->vals[m->n], sizeof(m->vals[0]), "%.*s", (int)v.n, v.p);
    m->types[m->n++] = type;
    return 0;
}

static int descend_all(void *ctx, int depth, struct wd_str k, int type, struct wd_str v)
{
    (void)v;
    struct {
        int n;
        char seen[16][40];
    } *p = ctx;
    if (p->n < 16)
        snprintf(p->seen[p->n++], sizeof(p->seen[0]), "%d%.*s", depth, (int)k.n, k.p);
    return type == WD_J_OBJ ? WD_JSON_DESCEND : 0;
}

static void test_each_member(void **state)
{
    (void)state;
    struct members m = {0};
    const char *doc = " { \"a\" : \"x\\\"}y\\\\\" , \"b\":{\"c\":[1,\"]}\",{\"d\":\"\\\\\"}]}, \"n\":-12,\"t\":true,"
                      "\"z\":null, \"arr\" :[ ] , \"k\\\"q\":1.5e3}";
    assert_int_equal(wd_json_each_member(doc, strlen(doc), collect, &m), 0);
    assert_int_equal(m.n, 7);
    assert_string_equal(m.keys[0], "a");
    assert_int_equal(m.types[0], WD_J_STR);
    assert_string_equal(m.vals[0], "x\\\"}y\\\\"); /* raw: an escaped quote and an escaped backslash */
    assert_string_equal(m.keys[1], "b");
    assert_int_equal(m.types[1], WD_J_OBJ); /* skipped: brackets inside its strings too (the next key is right) */
    assert_string_equal(m.vals[1], "");
    assert_int_equal(m.types[2], WD_J_NUM);
    assert_string_equal(m.vals[2], "-12");
    assert_int_equal(m.types[3], WD_J_TRUE);
    assert_int_equal(m.types[4], WD_J_NULL);
    assert_int_equal(m.types[5], WD_J_ARR);
    assert_string_equal(m.vals[5], "[ ]");
    assert_string_equal(m.keys[6], "k\\\"q");
    assert_string_equal(m.vals[6], "1.5e3");
    int64_t v;
    assert_int_equal(wd_json_num_i64(WD_STR("-12"), &v), 0);
    assert_int_equal(v, -12);
    assert_int_equal(wd_json_num_i64(WD_STR("9223372036854775807"), &v), 0);
    assert_int_equal(wd_json_num_i64(WD_STR("-9223372036854775808"), &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(wd_json_num_i64(WD_STR("9223372036854775808"), &v), -1); /* overflow */
    assert_int_equal(wd_json_num_i64(WD_STR("1.5"), &v), -1);
    assert_int_equal(wd_json_num_i64(WD_STR("-"), &v), -1);
    assert_int_equal(wd_json_num_i64(WD_STR(""), &v), -1);

    /* a descent: depths and keys in document order, empty and nested objects, the walk going on after them */
    struct path {
        int n;
        char seen[16][40];
    };
    memset(&m, 0, sizeof(m));
    const char *nested = "{\"a\":{\"b\":{},\"c\":{\"d\":[{\"x\":1}],\"e\":\"}\"},\"f\":2},\"g\":{\"h\":3},\"i\":4}";
    static struct path pth;
    memset(&pth, 0, sizeof(pth));
    assert_int_equal(wd_json_each_member(nested, strlen(nested), descend_all, &pth), 0);
    const char *want[] = {"0a", "1b", "1c", "2d", "2e", "1f", "0g", "1h", "0i"};
    assert_int_equal(pth.n, 9);
    for (int i = 0; i < 9; i++)
        assert_string_equal(pth.seen[i], want[i]);
    /* the same with whitespace at every place it may stand */
    const char *spaced = " {\t\"a\" :\n{ \"b\" : { } ,\"c\":{ \"d\" :[{\"x\":1}] , \"e\":\"}\"\r} , \"f\": 2 } ,"
                         " \"g\" : {\"h\":3 } , \"i\" :4 } ";
    memset(&pth, 0, sizeof(pth));
    assert_int_equal(wd_json_each_member(spaced, strlen(spaced), descend_all, &pth), 0);
    assert_int_equal(pth.n, 9);
    for (int i = 0; i < 9; i++)
        assert_string_equal(pth.seen[i], want[i]);
    /* a control byte where whitespace may stand is no whitespace: the walk fails there (and ends) */
    const char *ctl[] = {"{\"a\":\"x\"\x01}", "{\"a\":{}\x01}", "{\"a\"\x01:1}", "{\"a\":1,\x01\"b\":2}"};
    for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
        memset(&pth, 0, sizeof(pth));
        assert_int_equal(wd_json_each_member(ctl[i], strlen(ctl[i]), descend_all, &pth), -1);
    }

    /* an empty object; a callback's stop; malformed shapes, each cut at every length */
    memset(&m, 0, sizeof(m));
    assert_int_equal(wd_json_each_member("{}", 2, collect, &m), 0);
    assert_int_equal(m.n, 0);
    const char *bad[] = {"", "[]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{a:1}", "{\"a\":\"x}",
                         "{\"a\":{\"b\":1}", "{\"a\":1]", "\"a\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&m, 0, sizeof(m));
        assert_int_equal(wd_json_each_member(bad[i], strlen(bad[i]), collect, &m), -1);
    }
    for (size_t cut = 0; cut < strlen(doc); cut++) {
        memset(&m, 0, sizeof(m));
        char *p = malloc(cut + 1); /* exactly cut bytes: ASan sees a read past them */
        memcpy(p, doc, cut);
        int r = wd_json_each_member(p, cut, collect, &m);
        assert_true(r == -1 || (r == 0 && cut == strlen(doc)));
        free(p);
    }
}

/* ---- lib/hash.h: SipHash-2-4-128, against the reference's vectors and OpenSSL's SIPHASH MAC ---- */

static void test_siphash128(void **state)
{
    (void)state;
    uint8_t key[16], msg[64], out[16], ref[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    static const uint8_t v0[16] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                   0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93};
    static const uint8_t v1[16] = {0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44,
                                   0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45};
    wd_siphash128(key, msg, 0, out);
    assert_memory_equal(out, v0, 16);
    wd_siphash128(key, msg, 1, out);
    assert_memory_equal(out, v1, 16);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    assert_non_null(mac);
    size_t size = 16;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t("size", &size), OSSL_PARAM_construct_end()};
    for (size_t n = 0; n < 64; n++) { /* every tail length, several whole blocks */
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
        size_t got = 0;
        assert_int_equal(EVP_MAC_init(ctx, key, 16, params), 1);
        assert_int_equal(EVP_MAC_update(ctx, msg, n), 1);
        assert_int_equal(EVP_MAC_final(ctx, ref, &got, sizeof(ref)), 1);
        assert_int_equal(got, 16);
        EVP_MAC_CTX_free(ctx);
        wd_siphash128(key, msg, n, out);
        assert_memory_equal(out, ref, 16);
    }
    EVP_MAC_free(mac);
    assert_non_null(wd_process_key());
    assert_ptr_equal(wd_process_key(), wd_process_key());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_numbers),
        cmocka_unit_test(test_each_member),
        cmocka_unit_test(test_siphash128),
        cmocka_unit_test(test_accept),       cmocka_unit_test(test_reject),    cmocka_unit_test(test_depth_limit), cmocka_unit_test(test_string_scan_offsets),
        cmocka_unit_test_teardown(test_baseline_scanner, reset_baseline),
        cmocka_unit_test(test_tree),         cmocka_unit_test(test_str_decode), cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_numbers),      cmocka_unit_test(test_put_escaped), cmocka_unit_test(test_raw_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
