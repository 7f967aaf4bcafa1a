/* Canonical events -> Anthropic Messages responses: SSE events as they come, or one JSON message at the
 * end; and Anthropic-shaped errors. */
#include "api/anthropic.h"

#include <stdio.h>

int wd_anthropic_error_status(enum wd_error_class cls)
{
    switch (cls) {
    case WD_ERR_INVALID_REQUEST: return 400;
    case WD_ERR_AUTHENTICATION: return 401;
    case WD_ERR_PERMISSION: return 403;
    case WD_ERR_NOT_FOUND: return 404;
    case WD_ERR_TOO_LARGE: return 413;
    case WD_ERR_UNSUPPORTED_MEDIA: return 415;
    case WD_ERR_RATE_LIMIT: return 429;
    case WD_ERR_BAD_GATEWAY: return 502;
    case WD_ERR_UNAVAILABLE: return 503;
    case WD_ERR_TIMEOUT: return 504;
    case WD_ERR_OVERLOADED: return 529;
    default: return 500;
    }
}

const char *wd_anthropic_error_type(enum wd_error_class cls)
{
    switch (cls) {
    case WD_ERR_INVALID_REQUEST:
    case WD_ERR_UNSUPPORTED_MEDIA: return "invalid_request_error";
    case WD_ERR_AUTHENTICATION: return "authentication_error";
    case WD_ERR_PERMISSION: return "permission_error";
    case WD_ERR_NOT_FOUND: return "not_found_error";
    case WD_ERR_TOO_LARGE: return "request_too_large";
    case WD_ERR_RATE_LIMIT: return "rate_limit_error";
    case WD_ERR_OVERLOADED: return "overloaded_error";
    case WD_ERR_TIMEOUT: return "timeout_error";
    default: return "api_error";
    }
}

void wd_anthropic_write_error(struct wd_buf *b, enum wd_error_class cls, const char *msg, size_t n)
{
    wd_buf_puts(b, "{\"type\":\"error\",\"error\":{\"type\":\"");
    wd_buf_puts(b, wd_anthropic_error_type(cls));
    wd_buf_puts(b, "\",\"message\":");
    wd_json_put_string(b, msg, n);
    wd_buf_puts(b, "}}");
}

void wd_anthropic_write_ping(struct wd_buf *b) { wd_buf_puts(b, "event: ping\ndata: {\"type\": \"ping\"}\n\n"); }

/* Standard base64 with at most two '=' of padding: what Gemini's signatures are. */
static bool is_base64(struct wd_str s)
{
    size_t n = s.n;
    while (n > 0 && s.n - n < 2 && s.p[n - 1] == '=')
        n--;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return false;
    }
    return true;
}

size_t wd_anthropic_tool_id(char *out, size_t cap, struct wd_str sig)
{
    size_t pre = sizeof(WD_TOOL_ID_PREFIX) - 1;
    if (cap < pre + 21)
        return 0;
    memcpy(out, WD_TOOL_ID_PREFIX, pre);
    wd_rand_id(out + pre, 20);
    size_t w = pre + 20;
    /* Only a base64 signature fits an id (^[a-zA-Z0-9_-]+$, as base64url); anything else cannot be
     * carried and is dropped: the next request then goes without it, as with a call from another model. */
    if (sig.n && w + 1 + sig.n < cap && is_base64(sig)) {
        out[w++] = '_';
        for (size_t i = 0; i < sig.n; i++) {
            char c = sig.p[i];
            if (c == '=')
                break;
            out[w++] = c == '+' ? '-' : c == '/' ? '_' : c;
        }
    }
    out[w] = '\0';
    return w;
}

static void put_usage(struct wd_buf *b, const struct wd_usage *u, bool with_input)
{
    wd_buf_putc(b, '{');
    if (with_input) {
        wd_buf_puts(b, "\"input_tokens\":");
        wd_buf_put_i64(b, u->input_tokens);
        wd_buf_puts(b, ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":");
        wd_buf_put_i64(b, u->cache_read_tokens);
        wd_buf_putc(b, ',');
    }
    wd_buf_puts(b, "\"output_tokens\":");
    wd_buf_put_i64(b, u->output_tokens);
    wd_buf_putc(b, '}');
}

static const char *stop_name(enum wd_stop_reason r)
{
    switch (r) {
    case WD_STOP_MAX_TOKENS: return "max_tokens";
    case WD_STOP_STOP_SEQUENCE: return "stop_sequence";
    case WD_STOP_TOOL_USE: return "tool_use";
    case WD_STOP_REFUSAL: return "refusal";
    default: return "end_turn";
    }
}

static void put_message_head(struct wd_anthropic_out *o, struct wd_buf *b)
{
    if (o->msg_id[0] == '\0') { /* drawn when first written: a relayed answer never needs one */
        memcpy(o->msg_id, "msg_wd", 6);
        wd_rand_id(o->msg_id + 6, 24);
        o->msg_id[30] = '\0';
    }
    wd_buf_puts(b, "{\"id\":\"");
    wd_buf_puts(b, o->msg_id);
    wd_buf_puts(b, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    wd_json_put_string(b, o->model.p, o->model.n);
}

/* A provider's own call id that is also a valid Anthropic tool_use id (^[a-zA-Z0-9_-]+$), kept so the provider
 * sees its ids again in the history (OpenAI's call_...). */
static bool id_usable(struct wd_str id)
{
    if (id.n == 0 || id.n > 64)
        return false;
    for (size_t i = 0; i < id.n; i++) {
        char c = id.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A tool_use block's opening, shared by both modes: the provider's id when it has a usable one and no signature
 * to carry, else ours carrying the signature; name as the client knows it. */
static void put_tool_use_open(struct wd_buf *b, const struct wd_event *ev)
{
    size_t cap = sizeof(WD_TOOL_ID_PREFIX) + 22 + ev->signature.n;
    wd_buf_puts(b, "{\"type\":\"tool_use\",\"id\":\"");
    if (ev->signature.n == 0 && id_usable(ev->id))
        wd_buf_put(b, ev->id.p, ev->id.n);
    else if (wd_buf_reserve(b, cap))
        b->n += wd_anthropic_tool_id(b->p + b->n, cap, ev->signature);
    wd_buf_puts(b, "\",\"name\":");
    wd_json_put_string(b, ev->name.p, ev->name.n);
    wd_buf_puts(b, ",\"input\":");
}

static void sse(struct wd_buf *b, const char *event)
{
    wd_buf_puts(b, "event: ");
    wd_buf_puts(b, event);
    wd_buf_puts(b, "\ndata: ");
}

static void emit_stream(struct wd_anthropic_out *o, const struct wd_event *ev)
{
    struct wd_buf *b = o->out;
    switch (ev->type) {
    case WD_EV_MESSAGE_START:
        sse(b, "message_start");
        wd_buf_puts(b, "{\"type\":\"message_start\",\"message\":");
        put_message_head(o, b);
        wd_buf_puts(b, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
        put_usage(b, &ev->usage, true);
        wd_buf_puts(b, "}}\n\n");
        o->started = true;
        break;
    case WD_EV_PART_START:
        sse(b, "content_block_start");
        wd_buf_puts(b, "{\"type\":\"content_block_start\",\"index\":");
        wd_buf_put_i64(b, o->nblocks);
        wd_buf_puts(b, ",\"content_block\":");
        switch (ev->part_type) {
        case WD_PART_THINKING: wd_buf_puts(b, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}"); break;
        case WD_PART_TOOL_CALL:
            put_tool_use_open(b, ev);
            wd_buf_puts(b, "{}}");
            break;
        case WD_PART_SIGNATURE:
            wd_buf_puts(b, "{\"type\":\"redacted_thinking\",\"data\":\"" WD_SIG_PREFIX);
            wd_json_put_escaped(b, ev->signature.p, ev->signature.n);
            wd_buf_puts(b, "\"}");
            break;
        default: wd_buf_puts(b, "{\"type\":\"text\",\"text\":\"\"}"); break;
        }
        wd_buf_puts(b, "}\n\n");
        o->nblocks++;
        break;
    case WD_EV_DELTA:
        sse(b, "content_block_delta");
        wd_buf_puts(b, "{\"type\":\"content_block_delta\",\"index\":");
        wd_buf_put_i64(b, o->nblocks - 1);
        wd_buf_puts(b, ",\"delta\":");
        if (ev->part_type == WD_PART_TOOL_CALL) {
            wd_buf_puts(b, "{\"type\":\"input_json_delta\",\"partial_json\":");
            wd_json_put_string(b, ev->args.p, ev->args.n);
            wd_buf_putc(b, '}');
        } else if (ev->part_type == WD_PART_THINKING && ev->signature.n) {
            wd_buf_puts(b, "{\"type\":\"signature_delta\",\"signature\":\"" WD_SIG_PREFIX);
            wd_json_put_escaped(b, ev->signature.p, ev->signature.n);
            wd_buf_puts(b, "\"}");
        } else if (ev->part_type == WD_PART_THINKING) {
            wd_buf_puts(b, "{\"type\":\"thinking_delta\",\"thinking\":\"");
            wd_buf_put_str(b, ev->text);
            wd_buf_puts(b, "\"}");
        } else {
            wd_buf_puts(b, "{\"type\":\"text_delta\",\"text\":\"");
            wd_buf_put_str(b, ev->text);
            wd_buf_puts(b, "\"}");
        }
        wd_buf_puts(b, "}\n\n");
        break;
    case WD_EV_PART_STOP:
        sse(b, "content_block_stop");
        wd_buf_puts(b, "{\"type\":\"content_block_stop\",\"index\":");
        wd_buf_put_i64(b, o->nblocks - 1);
        wd_buf_puts(b, "}\n\n");
        break;
    case WD_EV_MESSAGE_STOP:
        sse(b, "message_delta");
        wd_buf_puts(b, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
        wd_buf_puts(b, stop_name(ev->stop_reason));
        wd_buf_puts(b, "\",\"stop_sequence\":");
        if (ev->stop_reason == WD_STOP_STOP_SEQUENCE)
            wd_json_put_string(b, ev->stop_sequence.p, ev->stop_sequence.n);
        else
            wd_buf_puts(b, "null");
        wd_buf_puts(b, "},\"usage\":");
        put_usage(b, &ev->usage, true);
        wd_buf_puts(b, "}\n\n");
        sse(b, "message_stop");
        wd_buf_puts(b, "{\"type\":\"message_stop\"}\n\n");
        o->finished = true;
        break;
    case WD_EV_ERROR:
        sse(b, "error");
        wd_anthropic_write_error(b, ev->error_class, ev->message.p, ev->message.n);
        wd_buf_puts(b, "\n\n");
        o->finished = true;
        o->failed = true;
        break;
    }
}

static void emit_whole(struct wd_anthropic_out *o, const struct wd_event *ev)
{
    struct wd_buf *c = &o->content;
    switch (ev->type) {
    case WD_EV_MESSAGE_START:
        o->started = true;
        break;
    case WD_EV_PART_START:
        if (o->nblocks++)
            wd_buf_putc(c, ',');
        o->block_type = ev->part_type;
        o->block.n = 0;
        o->block_sig.n = 0;
        switch (ev->part_type) {
        case WD_PART_THINKING: wd_buf_puts(c, "{\"type\":\"thinking\",\"thinking\":\""); break;
        case WD_PART_TOOL_CALL: put_tool_use_open(c, ev); break;
        case WD_PART_SIGNATURE:
            wd_buf_puts(c, "{\"type\":\"redacted_thinking\",\"data\":\"" WD_SIG_PREFIX);
            wd_json_put_escaped(c, ev->signature.p, ev->signature.n);
            wd_buf_puts(c, "\"");
            break;
        default: wd_buf_puts(c, "{\"type\":\"text\",\"text\":\""); break;
        }
        break;
    case WD_EV_DELTA:
        if (ev->part_type == WD_PART_TOOL_CALL)
            wd_buf_put_str(&o->block, ev->args);
        else if (ev->signature.n)
            wd_json_put_escaped(&o->block_sig, ev->signature.p, ev->signature.n);
        else
            wd_buf_put_str(&o->block, ev->text);
        break;
    case WD_EV_PART_STOP:
        switch (o->block_type) {
        case WD_PART_THINKING:
            wd_buf_put(c, o->block.p, o->block.n);
            wd_buf_puts(c, "\",\"signature\":\"");
            if (o->block_sig.n) {
                wd_buf_puts(c, WD_SIG_PREFIX);
                wd_buf_put(c, o->block_sig.p, o->block_sig.n);
            }
            wd_buf_puts(c, "\"}");
            break;
        case WD_PART_TOOL_CALL:
            if (o->block.n)
                wd_buf_put(c, o->block.p, o->block.n);
            else
                wd_buf_puts(c, "{}");
            wd_buf_putc(c, '}');
            break;
        case WD_PART_SIGNATURE: wd_buf_putc(c, '}'); break;
        default:
            wd_buf_put(c, o->block.p, o->block.n);
            wd_buf_puts(c, "\"}");
            break;
        }
        break;
    case WD_EV_MESSAGE_STOP: {
        struct wd_buf *b = o->out;
        put_message_head(o, b);
        wd_buf_puts(b, ",\"content\":[");
        wd_buf_put(b, c->p, c->n);
        wd_buf_puts(b, "],\"stop_reason\":\"");
        wd_buf_puts(b, stop_name(ev->stop_reason));
        wd_buf_puts(b, "\",\"stop_sequence\":");
        if (ev->stop_reason == WD_STOP_STOP_SEQUENCE)
            wd_json_put_string(b, ev->stop_sequence.p, ev->stop_sequence.n);
        else
            wd_buf_puts(b, "null");
        wd_buf_puts(b, ",\"usage\":");
        put_usage(b, &ev->usage, true);
        wd_buf_putc(b, '}');
        o->finished = true;
        break;
    }
    case WD_EV_ERROR:
        o->failed = true;
        o->finished = true;
        o->error.cls = ev->error_class;
        snprintf(o->error.msg, sizeof(o->error.msg), "%.*s", (int)ev->message.n, ev->message.p);
        break;
    }
}

static void out_emit(struct wd_sink *sink, const struct wd_event *ev)
{
    struct wd_anthropic_out *o = (struct wd_anthropic_out *)sink;
    if (o->finished)
        return;
    if (o->stream)
        emit_stream(o, ev);
    else
        emit_whole(o, ev);
}

void wd_anthropic_out_init(struct wd_anthropic_out *o, struct wd_buf *out, bool stream, struct wd_str model)
{
    *o = (struct wd_anthropic_out){.sink = {out_emit}, .out = out, .stream = stream, .model = model};
}

void wd_anthropic_out_free(struct wd_anthropic_out *o)
{
    wd_buf_free(&o->content);
    wd_buf_free(&o->block);
    wd_buf_free(&o->block_sig);
}
