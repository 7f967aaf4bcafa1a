/* Unit tests for providers/sse.c: the same events whatever the split (every split point, byte by byte),
 * every line ending (\n, \r\n, \r, and \r\n torn across reads), comments and other fields, multi-line
 * data, limits, and a callback that stops the parse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/sse.h"

/* Events recorded as "<data>|" so that a sequence compares as one string. */
struct rec {
    struct wd_buf b;
    int n;
    int stop_after; /* return 1 from the callback after this many events (0: never) */
};

static int on_event(void *ctx, const char *d, size_t n)
{
    struct rec *r = ctx;
    wd_buf_put(&r->b, d, n);
    wd_buf_putc(&r->b, '|');
    r->n++;
    return r->stop_after && r->n >= r->stop_after ? 1 : 0;
}

static void assert_events(const struct rec *r, const char *want)
{
    size_t n = strlen(want);
    if (r->b.n != n || memcmp(r->b.p ? r->b.p : "", want, n) != 0)
        print_error("got  \"%.*s\"\nwant \"%s\"\n", (int)r->b.n, r->b.p ? r->b.p : "", want);
    assert_int_equal(r->b.n, n);
    assert_memory_equal(r->b.p ? r->b.p : "", want, n);
}

/* Feeds src in pieces of the given sizes (the last repeats). */
static int feed_pieces(struct wd_sse *s, const char *src, size_t n, size_t step, struct rec *r)
{
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        int rc = wd_sse_feed(s, src + off, k, on_event, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The stream must give `want` when fed whole, split in two at every point, split in three at every
 * pair of points, and byte by byte. */
static void check_all_splits(const char *src, const char *want, bool pending)
{
    size_t n = strlen(src);
    for (size_t i = 0; i <= n; i++) {
        for (size_t k = i; k <= n; k++) {
            struct wd_sse s = {0};
            struct rec r = {0};
            assert_int_equal(wd_sse_feed(&s, src, i, on_event, &r), 0);
            assert_int_equal(wd_sse_feed(&s, src + i, k - i, on_event, &r), 0);
            assert_int_equal(wd_sse_feed(&s, src + k, n - k, on_event, &r), 0);
            if (r.b.n != strlen(want) || memcmp(r.b.p ? r.b.p : "", want, r.b.n) != 0)
                print_error("split at %zu and %zu\n", i, k);
            assert_events(&r, want);
            assert_int_equal(wd_sse_pending(&s), pending);
            wd_sse_free(&s);
            wd_buf_free(&r.b);
        }
    }
    struct wd_sse s = {0};
    struct rec r = {0};
    assert_int_equal(feed_pieces(&s, src, n, 1, &r), 0);
    assert_events(&r, want);
    assert_int_equal(wd_sse_pending(&s), pending);
    wd_sse_free(&s);
    wd_buf_free(&r.b);
}

static void test_line_endings(void **state)
{
    check_all_splits("data: a\n\ndata: b\n\n", "a|b|", false);
    check_all_splits("data: a\r\n\r\ndata: b\r\n\r\n", "a|b|", false);
    check_all_splits("data: a\r\rdata: b\r\r", "a|b|", false);
    /* mixed in one stream */
    check_all_splits("data: a\r\n\ndata: b\r\rdata: c\n\r\n", "a|b|c|", false);
    /* a CR LF torn across reads is one line end, not a line end and a blank line */
    check_all_splits("data: a\r\ndata: b\r\n\r\n", "a\nb|", false);
    /* a CR-only blank line as the very last byte dispatches at once (nothing more will come) */
    check_all_splits("data: x\r\r", "x|", false);
}

static void test_fields(void **state)
{
    /* comments, event/id/retry and unknown fields are ignored; data lines join with \n */
    check_all_splits(": keep-alive\n"
                     "event: message\n"
                     "id: 7\n"
                     "retry: 1000\n"
                     "data: line one\n"
                     "foo: bar\n"
                     "data:line two\n"
                     "data:  two spaces\n"
                     "data\n"
                     "data:\n"
                     "\n",
                     "line one\nline two\n two spaces\n\n|", false);
    /* a blank line without data dispatches nothing; "data :" is another field; "datax:" too */
    check_all_splits("event: ping\n\ndata : x\ndatax: y\n\n:\n\ndata: z\n\n", "z|", false);
    /* empty data is an event with empty data */
    check_all_splits("data:\n\n", "|", false);
    /* a byte order mark at the start of the stream is skipped, elsewhere it is data */
    check_all_splits("\xef\xbb\xbf" "data: a\n\ndata: \xef\xbb\xbf" "b\n\n", "a|\xef\xbb\xbf" "b|", false);
    /* JSON payloads with colons are kept whole */
    check_all_splits("data: {\"a\":\"b:c\"}\r\n\r\n", "{\"a\":\"b:c\"}|", false);
}

static bool skip_x(const char *name, size_t n) { return n > 0 && name[0] == 'x'; }

/* check_all_splits with events named x... skipped */
static void check_skip_splits(const char *src, const char *want)
{
    size_t n = strlen(src);
    for (size_t i = 0; i <= n; i++) {
        struct wd_sse s = {.skip = skip_x};
        struct rec r = {0};
        assert_int_equal(wd_sse_feed(&s, src, i, on_event, &r), 0);
        assert_int_equal(wd_sse_feed(&s, src + i, n - i, on_event, &r), 0);
        if (r.b.n != strlen(want) || memcmp(r.b.p ? r.b.p : "", want, r.b.n) != 0)
            print_error("split at %zu\n", i);
        assert_events(&r, want);
        wd_sse_free(&s);
        wd_buf_free(&r.b);
    }
}

static void test_skip(void **state)
{
    (void)state;
    /* named events the caller skips are not dispatched, their data is not kept; the name holds for one event */
    check_skip_splits("event: xdelta\ndata: a\n\nevent: keep\ndata: b\n\ndata: c\n\n", "b|c|");
    check_skip_splits("event:xping\r\ndata: a\r\ndata: a2\r\n\r\nevent: y\rdata: d\r\r", "d|");
    /* data before the name: the event is still skipped when its name comes */
    check_skip_splits("data: a\nevent: xx\n\ndata: e\n\n", "e|");
    /* without a skip function every event is dispatched */
    check_all_splits("event: xdelta\ndata: a\n\n", "a|", false);
}

/* Streams longer than one 64-byte block: lines across block edges, lines longer than a block, a CR that comes
 * after lines ended by LF alone in the same read (the block scan hands over to the general loop there). */
static void test_blocks(void **state)
{
    (void)state;
    char a[81], b[71], src[512], want[256];
    memset(a, 'a', 80), a[80] = '\0';
    memset(b, 'b', 70), b[70] = '\0';
    snprintf(src, sizeof(src),
             "event: xdelta\ndata: %s\n\ndata: %s\n\nevent: keep\ndata: c\n\n: a comment line to pass a block edge\n"
             "data: d1\r\ndata: d2\r\n\r\ndata: e\n\n",
             a, b);
    snprintf(want, sizeof(want), "%s|c|d1\nd2|e|", b);
    check_skip_splits(src, want);
    snprintf(want, sizeof(want), "%s|%s|c|d1\nd2|e|", a, b);
    check_all_splits(src, want, false);
    /* LF only, several blocks, a cut inside the last line */
    snprintf(src, sizeof(src), "data: %s\ndata: %s\n\ndata: %s\n\ndata: tail", a, b, a);
    snprintf(want, sizeof(want), "%s\n%s|%s|", a, b, a);
    check_all_splits(src, want, true);
}

static void test_pending(void **state)
{
    /* cut after a data line, before the blank line */
    check_all_splits("data: a\n\ndata: b\n", "a|", true);
    /* cut inside a line */
    check_all_splits("data: a\n\ndata: b", "a|", true);
    /* cut in the middle of a CR LF: the data line is complete, its event is not */
    check_all_splits("data: a\r", "", true);
    check_all_splits("", "", false);
    check_all_splits("\n\n\r\n", "", false);
}

static void test_limits(void **state)
{
    /* a line longer than max_event fails, whether it comes whole or in pieces */
    struct wd_sse s = {.max_event = 64};
    struct rec r = {0};
    char line[200];
    memset(line, 'x', sizeof(line));
    memcpy(line, "data: ", 6);
    assert_int_equal(wd_sse_feed(&s, line, sizeof(line), on_event, &r), -1);
    wd_sse_free(&s);
    assert_int_equal(s.max_event, 64); /* kept for reuse */
    assert_int_equal(feed_pieces(&s, line, sizeof(line), 7, &r), -1);
    wd_sse_free(&s);
    /* an event of many lines that together exceed it fails too */
    struct wd_buf b = {0};
    for (int i = 0; i < 20; i++)
        wd_buf_puts(&b, "data: 0123456789\n");
    assert_int_equal(wd_sse_feed(&s, b.p, b.n, on_event, &r), -1);
    assert_int_equal(r.n, 0);
    wd_sse_free(&s);
    wd_buf_free(&b);
    /* a large event in many small reads is parsed (each byte is scanned once: no quadratic rescans) */
    struct wd_sse big = {0};
    size_t n = 4u << 20;
    char *p = malloc(n);
    assert_non_null(p);
    memset(p, 'y', n);
    memcpy(p, "data: ", 6);
    memcpy(p + n - 2, "\n\n", 2);
    assert_int_equal(feed_pieces(&big, p, n, 1024, &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.b.n, n - 8 + 1);
    wd_sse_free(&big);
    free(p);
    wd_buf_free(&r.b);
}

static void test_callback_stops(void **state)
{
    const char *src = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    struct wd_sse s = {0};
    struct rec r = {.stop_after = 2};
    assert_int_equal(wd_sse_feed(&s, src, strlen(src), on_event, &r), 1);
    assert_events(&r, "1|2|");
    wd_sse_free(&s);
    wd_buf_free(&r.b);
}

/* A realistic Gemini stream: every event arrives once, in order, whatever the split. */
static void test_gemini_stream(void **state)
{
    const char *src =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"},\"index\":0}]}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\\r\\n\"}],\"role\":\"model\"},"
        "\"finishReason\":\"STOP\",\"index\":0}]}\r\n\r\n";
    check_all_splits(src,
                     "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"},\"index\":0}]}|"
                     "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\\r\\n\"}],\"role\":\"model\"},"
                     "\"finishReason\":\"STOP\",\"index\":0}]}|",
                     false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_endings), cmocka_unit_test(test_fields),          cmocka_unit_test(test_pending),
        cmocka_unit_test(test_skip),         cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_callback_stops), cmocka_unit_test(test_gemini_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
