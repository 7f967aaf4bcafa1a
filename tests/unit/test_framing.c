/* Unit tests for server/framing.c: a request head's body framing (RFC 9112 section 6: smuggling shapes
 * refused), chunked framing (section 7.1: CRLF only, whatever the split), HTTP/2 frame headers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "server/framing.h"

#define F(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static int framing(const struct wd_field *f, size_t n, int minor, struct wd_h1_body *b, const char **why)
{
    *why = NULL;
    return wd_h1_body_framing(f, n, minor, b, why);
}

static void test_body_framing(void **state)
{
    (void)state;
    struct wd_h1_body b;
    const char *why;
    struct wd_field cl[] = {F("Host", "x"), F("content-length", " 42 "), F("X-Api-Key", " k1 ")};
    assert_int_equal(framing(cl, 3, 1, &b, &why), 0);
    assert_false(b.chunked);
    assert_int_equal(b.length, 42);
    assert_int_equal(b.api_key_len, 2);
    assert_memory_equal(b.api_key, "k1", 2);
    struct wd_field te[] = {F("Transfer-Encoding", "Chunked"), F("Authorization", "Bearer t")};
    assert_int_equal(framing(te, 2, 1, &b, &why), 0);
    assert_true(b.chunked);
    assert_int_equal(b.authorization_len, 8);
    struct wd_field same[] = {F("Content-Length", "5"), F("content-length", "5")};
    assert_int_equal(framing(same, 2, 1, &b, &why), 0);
    assert_int_equal(b.length, 5);

    struct wd_field both[] = {F("Content-Length", "5"), F("Transfer-Encoding", "chunked")};
    assert_int_equal(framing(both, 2, 1, &b, &why), -1);
    assert_string_equal(why, "request has both Content-Length and Transfer-Encoding");
    struct wd_field both2[] = {F("Transfer-Encoding", "chunked"), F("Content-Length", "5")};
    assert_int_equal(framing(both2, 2, 1, &b, &why), -1);
    struct wd_field differ[] = {F("Content-Length", "2"), F("Content-Length", "5")};
    assert_int_equal(framing(differ, 2, 1, &b, &why), -1);
    assert_string_equal(why, "request has conflicting Content-Length values");
    const char *bad_cl[] = {"", "-1", "+5", "5 5", "5,5", "0x10", "1234567890123456789"};
    for (size_t i = 0; i < sizeof(bad_cl) / sizeof(bad_cl[0]); i++) {
        struct wd_field f1[] = {{"Content-Length", 14, bad_cl[i], strlen(bad_cl[i])}};
        assert_int_equal(framing(f1, 1, 1, &b, &why), -1);
    }
    const char *bad_te[] = {"gzip", "gzip, chunked", "chunked, gzip", "identity", "chunkedx"};
    for (size_t i = 0; i < sizeof(bad_te) / sizeof(bad_te[0]); i++) {
        struct wd_field f1[] = {{"Transfer-Encoding", 17, bad_te[i], strlen(bad_te[i])}};
        assert_int_equal(framing(f1, 1, 1, &b, &why), -1);
    }
    struct wd_field two_te[] = {F("Transfer-Encoding", "chunked"), F("Transfer-Encoding", "chunked")};
    assert_int_equal(framing(two_te, 2, 1, &b, &why), -1);
    struct wd_field http10[] = {F("Transfer-Encoding", "chunked")};
    assert_int_equal(framing(http10, 1, 0, &b, &why), -1);
}

/* feeds s in pieces of `step` bytes (0: whole) and returns the outcome; *used: bytes consumed in all */
static int feed(const char *s, size_t step, size_t *used)
{
    struct wd_chunked c = {0};
    size_t n = strlen(s), off = 0;
    int r = WD_CHUNKED_MORE;
    while (off < n && r == WD_CHUNKED_MORE) {
        size_t k = step == 0 || n - off < step ? n - off : step, u;
        r = wd_chunked_feed(&c, s + off, k, &u);
        off += u;
    }
    *used = off;
    return r;
}

static void test_chunked(void **state)
{
    (void)state;
    struct {
        const char *in;
        int rc;
        size_t used; /* for DONE */
    } cases[] = {
        {"5\r\nhello\r\n0\r\n\r\n", WD_CHUNKED_DONE, 15},
        {"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", WD_CHUNKED_DONE, 15},
        {"A;name=v\r\n0123456789\r\n0\r\n\r\n", WD_CHUNKED_DONE, 27},
        {"3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n", WD_CHUNKED_DONE, 21},
        {"5\r\nhel", WD_CHUNKED_MORE, 0},
        {"2\nab\r\n0\r\n\r\n", WD_CHUNKED_BAD, 0},
        {"2\r\nab\n0\r\n\r\n", WD_CHUNKED_BAD, 0},
        {"2\r\nab\r\n0\r\n\n", WD_CHUNKED_BAD, 0},
        {"2;x\nab\r\n0\r\n\r\n", WD_CHUNKED_BAD, 0},
        {"2\r\nab\r\n0\r\nx-t: 1\n\r\n", WD_CHUNKED_BAD, 0},
        {"\r\n", WD_CHUNKED_BAD, 0},
        {"g\r\n", WD_CHUNKED_BAD, 0},
        {"2\r\nabX\r\n", WD_CHUNKED_BAD, 0},
        {"1000000000000000\r\n", WD_CHUNKED_BAD, 0}, /* 16 hex digits: more than a body may hold */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t step = 0; step <= 3; step++) {
            size_t used;
            int r = feed(cases[i].in, step, &used);
            assert_int_equal(r, cases[i].rc);
            if (r == WD_CHUNKED_DONE)
                assert_int_equal(used, cases[i].used);
        }
    }
}

struct seen {
    int n;
    uint8_t types[8];
    uint32_t ids[8], lens[8];
};

static void on_frame(void *ctx, const struct wd_h2_frame *f)
{
    struct seen *s = ctx;
    s->types[s->n] = f->type;
    s->ids[s->n] = f->stream_id;
    s->lens[s->n++] = f->length;
}

static void test_h2_frames(void **state)
{
    (void)state;
    /* SETTINGS (empty), HEADERS sid 1 len 5, RST_STREAM sid 1 len 4 with the reserved bit set, then half a frame */
    static const uint8_t b[] = {0, 0, 0, 4, 0, 0, 0, 0, 0,          0, 0, 5, 1, 4, 0, 0, 0, 1, 'a', 'b', 'c', 'd', 'e',
                                0, 0, 4, 3, 0, 0x80, 0, 0, 1, 0, 0, 0, 8, 0, 0, 9, 0, 0, 0, 0};
    struct seen s = {0};
    size_t end = wd_h2_frames(b, sizeof(b), on_frame, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(end, 9 + 14 + 13);
    assert_int_equal(s.types[1], 1);
    assert_int_equal(s.lens[1], 5);
    assert_int_equal(s.types[2], 3);
    assert_int_equal(s.ids[2], 1);
    s.n = 0;
    assert_int_equal(wd_h2_frames(b, 8, on_frame, &s), 0);
    assert_int_equal(s.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_framing),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_h2_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
