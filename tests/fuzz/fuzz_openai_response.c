/* libFuzzer driver for the OpenAI Chat Completions response decoder. The input is split on '\n' into
 * payloads (as SSE data payloads of a stream) and also fed whole (a chat.completion body). A checking sink
 * right behind the decoder traps on any break of the event contract (order, indexes, one open block,
 * tool ids, arguments that are not an object, thinking after text, anything after the end); the events
 * then go through the stop-sequence filter and the Anthropic writer, whose output must be well formed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "api/stop.h"
#include "providers/openai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                \
    do {                        \
        if (!(c))               \
            __builtin_trap();   \
    } while (0)

struct checker {
    struct wd_sink sink;
    struct wd_sink *next;
    bool started, ended, text_seen;
    int open;                   /* part type of the open block, 0 if none */
    int nblocks, ntools;
    struct wd_buf args;         /* the open tool call's arguments */
    struct wd_buf ids;          /* tool ids so far, NUL-terminated each */
};

static bool valid_json(const char *p, size_t n, int want_type)
{
    struct wd_json j = {0};
    bool ok = wd_json_parse(&j, p, n) == 0 && (want_type == 0 || j.t[0].type == want_type);
    wd_json_free(&j);
    return ok;
}

/* Escaped text must be JSON string content as it is. */
static void check_escaped(struct wd_str s)
{
    struct wd_buf b = {0};
    wd_buf_putc(&b, '"');
    wd_buf_put_str(&b, s);
    wd_buf_putc(&b, '"');
    if (!b.oom)
        CHECK(valid_json(b.p, b.n, WD_J_STR));
    wd_buf_free(&b);
}

static void check_id(struct checker *c, struct wd_str id)
{
    CHECK(id.n > 0);
    for (size_t i = 0; i < id.n; i++) {
        char ch = id.p[i];
        CHECK((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-');
    }
    for (size_t i = 0; i < c->ids.n;) {
        size_t l = strlen(c->ids.p + i);
        CHECK(!(l == id.n && memcmp(c->ids.p + i, id.p, l) == 0));
        i += l + 1;
    }
    wd_buf_put_str(&c->ids, id);
    wd_buf_putc(&c->ids, '\0');
}

static void check_emit(struct wd_sink *s, const struct wd_event *ev)
{
    struct checker *c = (struct checker *)s;
    CHECK(!c->ended);
    CHECK(ev->usage.input_tokens >= 0 && ev->usage.output_tokens >= 0 && ev->usage.cache_read_tokens >= 0);
    switch (ev->type) {
    case WD_EV_MESSAGE_START:
        CHECK(!c->started);
        c->started = true;
        break;
    case WD_EV_PART_START:
        CHECK(c->started && c->open == 0 && ev->index == c->nblocks);
        CHECK(ev->part_type == WD_PART_TEXT || ev->part_type == WD_PART_THINKING || ev->part_type == WD_PART_TOOL_CALL);
        /* the Anthropic API never puts a thinking block after the answer */
        CHECK(ev->part_type != WD_PART_THINKING || (!c->text_seen && c->ntools == 0));
        if (ev->part_type == WD_PART_TOOL_CALL) {
            CHECK(ev->name.n > 0);
            check_id(c, ev->id);
            c->ntools++;
        }
        c->text_seen |= ev->part_type == WD_PART_TEXT;
        c->nblocks++;
        c->open = ev->part_type;
        c->args.n = 0;
        break;
    case WD_EV_DELTA:
        CHECK(c->open != 0 && ev->index == c->nblocks - 1 && (int)ev->part_type == c->open);
        if (ev->part_type == WD_PART_TOOL_CALL) {
            CHECK(ev->args.n > 0);
            wd_buf_put_str(&c->args, ev->args);
        } else {
            CHECK(ev->text.n > 0);
            check_escaped(ev->text);
        }
        break;
    case WD_EV_PART_STOP:
        CHECK(c->open != 0 && ev->index == c->nblocks - 1);
        if (c->open == WD_PART_TOOL_CALL && c->args.n && !c->args.oom)
            CHECK(valid_json(c->args.p, c->args.n, WD_J_OBJ));
        c->open = 0;
        break;
    case WD_EV_MESSAGE_STOP:
        CHECK(c->started && c->open == 0);
        CHECK(ev->stop_reason >= WD_STOP_END_TURN && ev->stop_reason <= WD_STOP_REFUSAL);
        CHECK(ev->stop_reason != WD_STOP_TOOL_USE || c->ntools > 0);
        c->ended = true;
        break;
    case WD_EV_ERROR:
        CHECK(ev->error_class != WD_ERR_NONE && ev->message.n > 0);
        CHECK(!ev->retryable || !c->started); /* retried unchanged only when the client saw nothing */
        c->ended = true;
        break;
    default: CHECK(0);
    }
    c->next->emit(c->next, ev);
}

static void checker_init(struct checker *c, struct wd_sink *next)
{
    memset(c, 0, sizeof(*c));
    c->sink.emit = check_emit;
    c->next = next;
}

static void checker_free(struct checker *c)
{
    wd_buf_free(&c->args);
    wd_buf_free(&c->ids);
}

static void check_json(const char *p, size_t n) { CHECK(valid_json(p, n, WD_J_OBJ)); }

/* Every event is "event: NAME\ndata: JSON\n\n". */
static void check_sse(const struct wd_buf *b)
{
    size_t i = 0;
    while (i < b->n) {
        const char *e = b->p + i;
        size_t left = b->n - i;
        CHECK(left >= 7 && memcmp(e, "event: ", 7) == 0);
        const char *nl = memchr(e, '\n', left);
        CHECK(nl != NULL);
        const char *d = nl + 1;
        size_t dleft = b->n - (size_t)(d - b->p);
        CHECK(dleft >= 6 && memcmp(d, "data: ", 6) == 0);
        const char *end = memmem(d, dleft, "\n\n", 2);
        CHECK(end != NULL);
        check_json(d + 6, (size_t)(end - d - 6));
        i = (size_t)(end + 2 - b->p);
    }
}

static const struct wd_tool tools[] = {
    {.name = WD_STR("Read"), .schema = WD_STR("{}")},
    {.name = WD_STR("mcp__srv__a tool with spaces"), .schema = WD_STR("{}")},
};

static const struct wd_str stops[] = {WD_STR("lo"), WD_STR("\n\n"), WD_STR("\xc3\xb6r")};

/* The request options the decoder reads, varied by the input's length. */
static struct wd_request request_for(size_t size, bool stream)
{
    struct wd_request req = {.tools = (struct wd_tool *)tools, .ntools = 2, .stream = stream};
    req.thinking = size & 2 ? WD_THINKING_ADAPTIVE : WD_THINKING_UNSET;
    return req;
}

static void run_stream(const uint8_t *data, size_t size)
{
    struct wd_request req = request_for(size, true);
    struct wd_arena a = {0};
    struct wd_buf out = {0};
    struct wd_anthropic_out enc;
    struct wd_stop_filter stop;
    struct checker chk;
    struct wd_openai_stream dec;
    wd_anthropic_out_init(&enc, &out, true, WD_STR("claude-sonnet-4-5"));
    wd_stop_filter_init(&stop, &enc.sink, stops, size & 1 ? 3 : 0);
    checker_init(&chk, &stop.sink);
    wd_openai_stream_init(&dec, &chk.sink, &req, &a);
    const char *p = (const char *)data, *end = p + size;
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        /* an SSE parser hands over no empty payloads worth exploring: skip them, go deeper */
        if (n > 0 && wd_openai_stream_chunk(&dec, p, n) < 0)
            CHECK(dec.out.failed && chk.ended);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    wd_openai_stream_finish(&dec);
    /* finish always ends the message one way or the other */
    CHECK(chk.ended && enc.finished);
    if (!out.oom)
        check_sse(&out);
    wd_openai_stream_free(&dec);
    checker_free(&chk);
    wd_stop_filter_free(&stop);
    wd_anthropic_out_free(&enc);
    wd_buf_free(&out);
    wd_arena_free(&a);
}

static void run_whole(const uint8_t *data, size_t size)
{
    struct wd_request req = request_for(size, false);
    struct wd_arena a = {0};
    struct wd_buf out = {0};
    struct wd_anthropic_out enc;
    struct checker chk;
    struct wd_openai_stream dec;
    wd_anthropic_out_init(&enc, &out, false, WD_STR("claude-sonnet-4-5"));
    checker_init(&chk, &enc.sink);
    wd_openai_stream_init(&dec, &chk.sink, &req, &a);
    wd_openai_stream_chunk(&dec, (const char *)data, size);
    wd_openai_stream_finish(&dec);
    CHECK(chk.ended && enc.finished);
    if (enc.failed)
        CHECK(enc.error.cls != WD_ERR_NONE && memchr(enc.error.msg, '\0', sizeof enc.error.msg) != NULL);
    else if (!out.oom)
        check_json(out.p, out.n);
    wd_openai_stream_free(&dec);
    checker_free(&chk);
    wd_anthropic_out_free(&enc);
    wd_buf_free(&out);
    wd_arena_free(&a);
}

/* The error mapper on the same bytes: any status, a bounded NUL-terminated message without control bytes. */
static void run_error(const uint8_t *data, size_t size)
{
    struct wd_error e;
    int status = size ? 400 + data[0] % 200 : 500;
    wd_openai_error(status, (const char *)data, size, &e);
    size_t n = strnlen(e.msg, sizeof e.msg);
    CHECK(n < sizeof e.msg && e.cls != WD_ERR_NONE);
    for (size_t i = 0; i < n; i++)
        CHECK((uint8_t)e.msg[i] >= 0x20 && (uint8_t)e.msg[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_stream(data, size);
    run_whole(data, size);
    run_error(data, size);
    return 0;
}
