/* libFuzzer driver for the Gemini response decoder: bytes as an SSE stream (streamGenerateContent) and as
 * a whole body (generateContent) through the decoder, the stop-sequence filter and the Anthropic writer.
 * Whatever the provider sends, the client must get well-formed SSE whose every data line is valid JSON,
 * or one valid JSON message / error. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "api/stop.h"
#include "providers/gemini.h"
#include "providers/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(void *ctx, const char *d, size_t n)
{
    wd_gemini_stream_chunk(ctx, d, n);
    return 0;
}

static void check_json(const char *p, size_t n)
{
    struct wd_json j = {0};
    if (wd_json_parse(&j, p, n) != 0 || j.t[0].type != WD_J_OBJ)
        __builtin_trap();
    wd_json_free(&j);
}

/* The Anthropic API never puts a thinking block after text in a message, and Claude Code prints the last
 * text block (issue 14): no redacted_thinking block may follow a text block. The markers cannot occur
 * inside a string value, whose quotes are escaped. */
static void check_no_sig_after_text(const char *p, size_t n, const char *text, const char *sig)
{
    const char *t = memmem(p, n, text, strlen(text));
    if (t != NULL && memmem(t, n - (size_t)(t - p), sig, strlen(sig)) != NULL)
        __builtin_trap();
}

/* Every event is "event: NAME\ndata: JSON\n\n". */
static void check_sse(const struct wd_buf *b)
{
    check_no_sig_after_text(b->p, b->n, "\"content_block\":{\"type\":\"text\"",
                            "\"content_block\":{\"type\":\"redacted_thinking\"");
    size_t i = 0;
    while (i < b->n) {
        const char *e = b->p + i;
        size_t left = b->n - i;
        if (left < 7 || memcmp(e, "event: ", 7) != 0)
            __builtin_trap();
        const char *nl = memchr(e, '\n', left);
        if (nl == NULL)
            __builtin_trap();
        const char *d = nl + 1;
        size_t dleft = b->n - (size_t)(d - b->p);
        if (dleft < 6 || memcmp(d, "data: ", 6) != 0)
            __builtin_trap();
        const char *end = memmem(d, dleft, "\n\n", 2);
        if (end == NULL)
            __builtin_trap();
        check_json(d + 6, (size_t)(end - d - 6));
        i = (size_t)(end + 2 - b->p);
    }
}

static const struct wd_tool tools[] = {
    {.name = WD_STR("Write"), .schema = WD_STR("{}")},
    {.name = WD_STR("mcp__srv__a tool with spaces"), .schema = WD_STR("{}")},
};

/* Odd-sized inputs also go through the stop-sequence filter, as the server wires it. */
static const struct wd_str stops[] = {WD_STR("lo"), WD_STR("\n\n"), WD_STR("\xc3\xb6r")};

static void run_stream(const uint8_t *data, size_t size, size_t split)
{
    struct wd_request req = {.tools = (struct wd_tool *)tools, .ntools = 2, .stream = true};
    struct wd_arena a = {0};
    struct wd_buf out = {0};
    struct wd_anthropic_out enc;
    struct wd_stop_filter stop;
    struct wd_gemini_stream dec;
    struct wd_sse sse = {0};
    wd_anthropic_out_init(&enc, &out, true, WD_STR("claude-sonnet-4-5"));
    wd_stop_filter_init(&stop, &enc.sink, stops, size & 1 ? 3 : 0);
    wd_gemini_stream_init(&dec, &stop.sink, &req, &a);
    if (split > size)
        split = size;
    int r = wd_sse_feed(&sse, (const char *)data, split, on_event, &dec);
    if (r == 0)
        r = wd_sse_feed(&sse, (const char *)data + split, size - split, on_event, &dec);
    if (r == 0)
        wd_gemini_stream_finish(&dec);
    if (!out.oom)
        check_sse(&out);
    /* after finish the client has a terminal event (or a decode error stopped the feed) */
    if (r == 0 && !enc.finished)
        __builtin_trap();
    wd_sse_free(&sse);
    wd_gemini_stream_free(&dec);
    wd_stop_filter_free(&stop);
    wd_anthropic_out_free(&enc);
    wd_buf_free(&out);
    wd_arena_free(&a);
}

static void run_whole(const uint8_t *data, size_t size)
{
    struct wd_request req = {.tools = (struct wd_tool *)tools, .ntools = 2};
    struct wd_arena a = {0};
    struct wd_buf out = {0};
    struct wd_anthropic_out enc;
    struct wd_gemini_stream dec;
    wd_anthropic_out_init(&enc, &out, false, WD_STR("claude-sonnet-4-5"));
    wd_gemini_stream_init(&dec, &enc.sink, &req, &a);
    wd_gemini_stream_chunk(&dec, (const char *)data, size);
    wd_gemini_stream_finish(&dec);
    if (!enc.finished)
        __builtin_trap();
    if (enc.failed) {
        if (enc.error.cls == WD_ERR_NONE || memchr(enc.error.msg, '\0', sizeof enc.error.msg) == NULL)
            __builtin_trap();
    } else {
        check_json(out.p, out.n);
        check_no_sig_after_text(out.p, out.n, "{\"type\":\"text\"", "{\"type\":\"redacted_thinking\"");
    }
    wd_gemini_stream_free(&dec);
    wd_anthropic_out_free(&enc);
    wd_buf_free(&out);
    wd_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_stream(data, size, size / 2 + (size ? data[0] % 7 : 0));
    run_whole(data, size);
    return 0;
}
