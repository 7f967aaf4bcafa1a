/* Unit tests for api/stop.c, the stop-sequence filter: a sequence inside one delta, split across deltas,
 * a near-miss prefix that must be released, escapes, several sequences, what is not scanned, and the whole
 * path Gemini SSE -> decoder -> filter -> Anthropic SSE / JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "api/stop.h"
#include "providers/gemini.h"
#include "providers/sse.h"

/* What reaches the client encoder: events, the concatenated (escaped) text deltas, the stop. */
struct rec {
    struct wd_sink sink;
    enum wd_event_type types[64];
    int n;
    struct wd_buf text;          /* text deltas joined with '|' */
    const char *last_text_p;
    enum wd_stop_reason reason;
    char seq[64];
    struct wd_usage usage;
};

static void rec_emit(struct wd_sink *s, const struct wd_event *ev)
{
    struct rec *r = (struct rec *)s;
    if (r->n < 64)
        r->types[r->n++] = ev->type;
    if (ev->type == WD_EV_DELTA && ev->part_type == WD_PART_TEXT) {
        wd_buf_put_str(&r->text, ev->text);
        wd_buf_putc(&r->text, '|');
        r->last_text_p = ev->text.p;
    }
    if (ev->type == WD_EV_MESSAGE_STOP) {
        r->reason = ev->stop_reason;
        snprintf(r->seq, sizeof(r->seq), "%.*s", (int)ev->stop_sequence.n, ev->stop_sequence.p ? ev->stop_sequence.p : "");
        r->usage = ev->usage;
    }
}

struct fx {
    struct rec r;
    struct wd_stop_filter f;
    struct wd_str seqs[4];
};

static void fx_init(struct fx *x, const char *const *seqs, size_t n)
{
    memset(x, 0, sizeof(*x));
    x->r.sink.emit = rec_emit;
    for (size_t i = 0; i < n; i++)
        x->seqs[i] = (struct wd_str){seqs[i], strlen(seqs[i])};
    wd_stop_filter_init(&x->f, &x->r.sink, x->seqs, n);
}

static void fx_free(struct fx *x)
{
    wd_stop_filter_free(&x->f);
    wd_buf_free(&x->r.text);
}

static void send(struct fx *x, enum wd_event_type t, enum wd_part_type pt, int index, const char *text)
{
    struct wd_event ev = {.type = t, .part_type = pt, .index = index};
    if (text)
        ev.text = (struct wd_str){text, strlen(text)};
    x->f.sink.emit(&x->f.sink, &ev);
}

/* A message with one text block made of the given (escaped) deltas, then a natural end. */
static void text_message(struct fx *x, const char *const *deltas, size_t n)
{
    send(x, WD_EV_MESSAGE_START, 0, 0, NULL);
    send(x, WD_EV_PART_START, WD_PART_TEXT, 0, NULL);
    for (size_t i = 0; i < n; i++) {
        struct wd_event ev = {.type = WD_EV_DELTA, .part_type = WD_PART_TEXT, .index = 0,
                              .text = {deltas[i], strlen(deltas[i])},
                              .usage = {.input_tokens = 10, .output_tokens = (int64_t)i + 1}};
        x->f.sink.emit(&x->f.sink, &ev);
    }
    send(x, WD_EV_PART_STOP, WD_PART_TEXT, 0, NULL);
    struct wd_event stop = {.type = WD_EV_MESSAGE_STOP, .stop_reason = WD_STOP_END_TURN};
    x->f.sink.emit(&x->f.sink, &stop);
}

static void assert_text(const struct fx *x, const char *want)
{
    size_t n = strlen(want);
    if (x->r.text.n != n || memcmp(x->r.text.p ? x->r.text.p : "", want, n) != 0)
        print_error("got  \"%.*s\"\nwant \"%s\"\n", (int)x->r.text.n, x->r.text.p ? x->r.text.p : "", want);
    assert_int_equal(x->r.text.n, n);
    assert_memory_equal(x->r.text.p ? x->r.text.p : "", want, n);
}

/* The message ended on a stop sequence: ... PART_STOP, MESSAGE_STOP, nothing after. */
static void assert_stopped(const struct fx *x, const char *seq)
{
    assert_true(x->f.stopped);
    assert_int_equal(x->r.reason, WD_STOP_STOP_SEQUENCE);
    assert_string_equal(x->r.seq, seq);
    assert_int_equal(x->r.types[x->r.n - 1], WD_EV_MESSAGE_STOP);
    assert_int_equal(x->r.types[x->r.n - 2], WD_EV_PART_STOP);
}

static void test_no_sequences_pass_through(void **state)
{
    struct fx x;
    fx_init(&x, NULL, 0);
    const char *d[] = {"END of ", "story"};
    text_message(&x, d, 2);
    assert_text(&x, "END of |story|");
    assert_ptr_equal(x.r.last_text_p, d[1]); /* untouched, not copied */
    assert_false(x.f.stopped);
    assert_int_equal(x.r.reason, WD_STOP_END_TURN);
    assert_int_equal(x.r.n, 6);
    fx_free(&x);
}

static void test_match_in_one_delta(void **state)
{
    const char *seqs[] = {"END"};
    struct fx x;
    fx_init(&x, seqs, 1);
    const char *d[] = {"Hello END world", "more text"};
    text_message(&x, d, 2);
    assert_text(&x, "Hello |");
    assert_stopped(&x, "END");
    /* the usage the decoder last reported rides on the stop */
    assert_int_equal(x.r.usage.input_tokens, 10);
    assert_int_equal(x.r.usage.output_tokens, 1);
    /* MESSAGE_START, PART_START, DELTA, PART_STOP, MESSAGE_STOP: the natural end was dropped */
    assert_int_equal(x.r.n, 5);
    fx_free(&x);

    /* at the very start of the text: no delta at all */
    fx_init(&x, seqs, 1);
    const char *d2[] = {"END"};
    text_message(&x, d2, 1);
    assert_text(&x, "");
    assert_stopped(&x, "END");
    assert_int_equal(x.r.n, 4);
    fx_free(&x);
}

static void test_match_split_across_deltas(void **state)
{
    const char *seqs[] = {"END"};
    struct fx x;
    fx_init(&x, seqs, 1);
    const char *d[] = {"Hel", "lo E", "N", "D more"};
    text_message(&x, d, 4);
    /* "E" and then "EN" are held back, then the match completes */
    assert_text(&x, "Hel|lo |");
    assert_stopped(&x, "END");
    assert_int_equal(x.r.usage.output_tokens, 4);
    fx_free(&x);

    /* one byte per delta */
    fx_init(&x, seqs, 1);
    const char *d2[] = {"a", "E", "N", "E", "N", "D", "z"};
    text_message(&x, d2, 7);
    assert_text(&x, "a|EN|");
    assert_stopped(&x, "END");
    fx_free(&x);
}

static void test_near_miss_released(void **state)
{
    const char *seqs[] = {"END"};
    struct fx x;
    fx_init(&x, seqs, 1);
    const char *d[] = {"The EN", "ding is near"};
    text_message(&x, d, 2);
    /* "EN" is held, then released with what proved it no match; nothing is lost or repeated */
    assert_text(&x, "The |ENding is near|");
    assert_false(x.f.stopped);
    assert_int_equal(x.r.reason, WD_STOP_END_TURN);
    fx_free(&x);

    /* a prefix still pending when the block ends is released before the block's end */
    fx_init(&x, seqs, 1);
    const char *d2[] = {"almost E", "N"};
    text_message(&x, d2, 2);
    assert_text(&x, "almost |EN|");
    assert_false(x.f.stopped);
    assert_int_equal(x.r.types[x.r.n - 2], WD_EV_PART_STOP);
    fx_free(&x);
}

static void test_escapes(void **state)
{
    /* sequences are decoded text; deltas are escaped JSON content: "\n\n" across two deltas */
    const char *seqs[] = {"\n\n"};
    struct fx x;
    fx_init(&x, seqs, 1);
    const char *d[] = {"para \\\"one\\\"\\n", "\\npara two"};
    text_message(&x, d, 2);
    assert_text(&x, "para \\\"one\\\"|");
    assert_stopped(&x, "\n\n");
    fx_free(&x);
    /* a non-ASCII sequence written as a \u escape in the stream */
    const char *seqs2[] = {"\xc3\xa9!"};
    fx_init(&x, seqs2, 1);
    const char *d2[] = {"caf", "\\u00e9", "! au lait"};
    text_message(&x, d2, 3);
    assert_text(&x, "caf|");
    assert_stopped(&x, "\xc3\xa9!");
    fx_free(&x);
    /* released text is escaped again */
    const char *seqs3[] = {"\"}"};
    fx_init(&x, seqs3, 1);
    const char *d3[] = {"a\\tb \\\"", "x"};
    text_message(&x, d3, 2);
    assert_text(&x, "a\\tb |\\\"x|");
    assert_false(x.f.stopped);
    fx_free(&x);
}

static void test_several_sequences(void **state)
{
    /* the match that completes first wins, as the generation would have stopped there */
    const char *seqs[] = {"abcd", "bc"};
    struct fx x;
    fx_init(&x, seqs, 2);
    const char *d[] = {"xab", "cd"};
    text_message(&x, d, 2);
    assert_text(&x, "x|a|");
    assert_stopped(&x, "bc");
    fx_free(&x);
    /* two ending at the same byte: the longer */
    const char *seqs2[] = {"bc", "abc"};
    fx_init(&x, seqs2, 2);
    const char *d2[] = {"zabc"};
    text_message(&x, d2, 1);
    assert_text(&x, "z|");
    assert_stopped(&x, "abc");
    fx_free(&x);
    /* holding back covers the longest pending prefix of any sequence */
    const char *seqs3[] = {"STOP", "###"};
    fx_init(&x, seqs3, 2);
    const char *d3[] = {"a ##", "#"};
    text_message(&x, d3, 2);
    assert_text(&x, "a |");
    assert_stopped(&x, "###");
    fx_free(&x);
}

static void test_not_scanned(void **state)
{
    /* thinking and tool input are not text; blocks after a stop are dropped */
    const char *seqs[] = {"END"};
    struct fx x;
    fx_init(&x, seqs, 1);
    send(&x, WD_EV_MESSAGE_START, 0, 0, NULL);
    send(&x, WD_EV_PART_START, WD_PART_THINKING, 0, NULL);
    send(&x, WD_EV_DELTA, WD_PART_THINKING, 0, "I will say END");
    send(&x, WD_EV_PART_STOP, WD_PART_THINKING, 0, NULL);
    send(&x, WD_EV_PART_START, WD_PART_TOOL_CALL, 1, NULL);
    struct wd_event args = {.type = WD_EV_DELTA, .part_type = WD_PART_TOOL_CALL, .index = 1,
                            .args = WD_STR("{\"s\":\"END\"}")};
    x.f.sink.emit(&x.f.sink, &args);
    send(&x, WD_EV_PART_STOP, WD_PART_TOOL_CALL, 1, NULL);
    assert_false(x.f.stopped);
    assert_int_equal(x.r.n, 7);
    send(&x, WD_EV_PART_START, WD_PART_TEXT, 2, NULL);
    send(&x, WD_EV_DELTA, WD_PART_TEXT, 2, "Done. END");
    assert_stopped(&x, "END");
    send(&x, WD_EV_PART_START, WD_PART_TOOL_CALL, 3, NULL);
    send(&x, WD_EV_PART_STOP, WD_PART_TOOL_CALL, 3, NULL);
    struct wd_event err = {.type = WD_EV_ERROR, .error_class = WD_ERR_API, .message = WD_STR("late")};
    x.f.sink.emit(&x.f.sink, &err);
    assert_int_equal(x.r.types[x.r.n - 1], WD_EV_MESSAGE_STOP);
    assert_text(&x, "Done. |");
    fx_free(&x);
    /* an error passes through (held text with it is dropped) */
    fx_init(&x, seqs, 1);
    send(&x, WD_EV_MESSAGE_START, 0, 0, NULL);
    send(&x, WD_EV_PART_START, WD_PART_TEXT, 0, NULL);
    send(&x, WD_EV_DELTA, WD_PART_TEXT, 0, "text E");
    x.f.sink.emit(&x.f.sink, &err);
    assert_int_equal(x.r.types[x.r.n - 1], WD_EV_ERROR);
    assert_false(x.f.stopped);
    assert_text(&x, "text |");
    fx_free(&x);
}

/* ---- the whole path, as server/anthropic_route.c wires it ---- */

static int on_sse(void *ctx, const char *d, size_t n)
{
    wd_gemini_stream_chunk(ctx, d, n);
    return 0;
}

#define CHUNK(t) "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"" t "\"}],\"role\":\"model\"},\"index\":0}]," \
                 "\"usageMetadata\":{\"promptTokenCount\":50,\"candidatesTokenCount\":3}}\r\n\r\n"

static const char gemini_stream[] = CHUNK("Step 1: ok\\nSTO") CHUNK("P\\nStep 2") CHUNK("never sent")
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"!\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":50,\"candidatesTokenCount\":9}}\r\n\r\n";

static void normalise_ids(struct wd_buf *b)
{
    for (size_t i = 0; i + 6 + 24 <= b->n; i++)
        if (memcmp(b->p + i, "msg_wd", 6) == 0)
            memset(b->p + i + 6, 'X', 24);
}

static void pipeline(bool stream, struct wd_buf *out, bool *stopped)
{
    struct wd_str seqs[] = {WD_STR("STOP\n"), WD_STR("never")};
    struct wd_request req = {.stop = seqs, .nstop = 2, .stream = stream};
    struct wd_arena a = {0};
    struct wd_anthropic_out enc;
    struct wd_stop_filter f;
    struct wd_gemini_stream dec;
    struct wd_sse sse = {0};
    wd_anthropic_out_init(&enc, out, stream, WD_STR("claude-haiku-4-5"));
    wd_stop_filter_init(&f, &enc.sink, req.stop, req.nstop);
    wd_gemini_stream_init(&dec, &f.sink, &req, &a);
    /* byte by byte: the match is found whatever the network split */
    for (size_t i = 0; i < sizeof(gemini_stream) - 1; i++)
        assert_int_equal(wd_sse_feed(&sse, gemini_stream + i, 1, on_sse, &dec), 0);
    wd_gemini_stream_finish(&dec);
    assert_true(enc.finished);
    assert_false(enc.failed);
    *stopped = f.stopped;
    normalise_ids(out);
    wd_sse_free(&sse);
    wd_gemini_stream_free(&dec);
    wd_stop_filter_free(&f);
    wd_anthropic_out_free(&enc);
    wd_arena_free(&a);
}

static void test_pipeline(void **state)
{
    struct wd_buf out = {0};
    bool stopped;
    pipeline(true, &out, &stopped);
    assert_true(stopped);
    const char *want =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_wdXXXXXXXXXXXXXXXXXXXXXXXX\",\"type\":\"message\","
        "\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
        "\"usage\":{\"input_tokens\":50,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
        "\"output_tokens\":3}}}\n\n"
        "event: content_block_start\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
        "\"Step 1: ok\\n\"}}\n\n"
        "event: content_block_stop\n"
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"STOP\\n\"},"
        "\"usage\":{\"input_tokens\":50,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
        "\"output_tokens\":3}}\n\n"
        "event: message_stop\n"
        "data: {\"type\":\"message_stop\"}\n\n";
    if (out.n != strlen(want) || memcmp(out.p, want, out.n) != 0)
        print_error("got:\n%.*s\n", (int)out.n, out.p);
    assert_int_equal(out.n, strlen(want));
    assert_memory_equal(out.p, want, out.n);

    out.n = 0;
    pipeline(false, &out, &stopped);
    assert_true(stopped);
    want = "{\"id\":\"msg_wdXXXXXXXXXXXXXXXXXXXXXXXX\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
           "\"claude-haiku-4-5\",\"content\":[{\"type\":\"text\",\"text\":\"Step 1: ok\\n\"}],\"stop_reason\":"
           "\"stop_sequence\",\"stop_sequence\":\"STOP\\n\",\"usage\":{\"input_tokens\":50,"
           "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":3}}";
    if (out.n != strlen(want) || memcmp(out.p, want, out.n) != 0)
        print_error("got:\n%.*s\n", (int)out.n, out.p);
    assert_int_equal(out.n, strlen(want));
    assert_memory_equal(out.p, want, out.n);
    wd_buf_free(&out);
}

/* Re-initialising (a retried upstream call) starts clean. */
static void test_reinit(void **state)
{
    const char *seqs[] = {"END"};
    struct fx x;
    fx_init(&x, seqs, 1);
    const char *d[] = {"a EN"};
    send(&x, WD_EV_MESSAGE_START, 0, 0, NULL);
    send(&x, WD_EV_PART_START, WD_PART_TEXT, 0, NULL);
    send(&x, WD_EV_DELTA, WD_PART_TEXT, 0, d[0]);
    wd_stop_filter_free(&x.f);
    wd_stop_filter_init(&x.f, &x.r.sink, x.seqs, 1);
    x.r.text.n = 0;
    const char *d2[] = {"fresh"};
    text_message(&x, d2, 1);
    assert_text(&x, "fresh|");
    fx_free(&x);
    /* an empty sequence (rejected by the decoder) is ignored rather than matching everywhere */
    const char *empty[] = {""};
    fx_init(&x, empty, 1);
    text_message(&x, d2, 1);
    assert_text(&x, "fresh|");
    assert_false(x.f.stopped);
    fx_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_sequences_pass_through),
        cmocka_unit_test(test_match_in_one_delta),
        cmocka_unit_test(test_match_split_across_deltas),
        cmocka_unit_test(test_near_miss_released),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_several_sequences),
        cmocka_unit_test(test_not_scanned),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_reinit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
