/* Gemini GenerateContentResponse (whole, or one SSE chunk at a time) -> canonical events. Blocks are
 * opened and closed as part kinds change, so each client block has one type; signatures ride on the
 * block they arrived with. */
#include "providers/gemini.h"

#include <stdio.h>
#include <stdlib.h>

void wd_gemini_stream_init(struct wd_gemini_stream *s, struct wd_sink *sink, const struct wd_request *req,
                           struct wd_arena *a)
{
    *s = (struct wd_gemini_stream){.out = {.sink = sink}, .req = req, .arena = a};
}

void wd_gemini_stream_free(struct wd_gemini_stream *s) { wd_json_free(&s->json); }

static void close_open(struct wd_gemini_stream *s)
{
    if (!s->open)
        return;
    struct wd_event ev = {.type = WD_EV_PART_STOP, .index = s->nparts - 1, .part_type = s->open};
    wd_emit(&s->out, &ev);
    s->open = 0;
}

static void open_block(struct wd_gemini_stream *s, enum wd_part_type t, struct wd_event *ev)
{
    wd_emit_start(&s->out);
    close_open(s);
    ev->type = WD_EV_PART_START;
    ev->part_type = t;
    ev->index = s->nparts++;
    wd_emit(&s->out, ev);
    s->open = t;
    s->open_has_content = false;
}

/* The client-side name of a function Gemini called: the tool whose mapped name matches. */
static struct wd_str client_name(struct wd_gemini_stream *s, struct wd_str gname)
{
    char m[65];
    if (s->req != NULL)
        for (size_t i = 0; i < s->req->ntools; i++) {
            size_t n = wd_gemini_name_map(s->req->tools[i].name, m);
            if (n == gname.n && memcmp(m, gname.p, n) == 0)
                return s->req->tools[i].name;
        }
    return gname;
}

static int decode(struct wd_gemini_stream *s, int i, struct wd_str *out)
{
    if (wd_json_str_decode(&s->json, i, s->arena, out) < 0) {
        wd_emit_error(&s->out, WD_ERR_API, false, "out of memory");
        return -1;
    }
    return 0;
}

/* A token count from the provider; out-of-range values (negative, absurd) count as 0 so sums cannot
 * overflow. */
static int64_t count_of(const struct wd_json *j, int u, const char *key)
{
    int64_t v = 0;
    if (wd_json_i64(j, wd_json_get(j, u, key), &v) < 0 || v < 0 || v > ((int64_t)1 << 48))
        return 0;
    return v;
}

static void read_usage(struct wd_gemini_stream *s, int u)
{
    const struct wd_json *j = &s->json;
    if (wd_json_type(j, wd_json_get(j, u, "promptTokenCount")) != WD_J_NUM)
        return; /* partial usage in early chunks: keep what we have */
    int64_t prompt = count_of(j, u, "promptTokenCount");
    int64_t cached = count_of(j, u, "cachedContentTokenCount");
    int64_t tool_prompt = count_of(j, u, "toolUsePromptTokenCount");
    /* Anthropic counts cache reads apart from input tokens; Gemini's prompt count includes them */
    s->out.usage.input_tokens = prompt + tool_prompt - cached;
    if (s->out.usage.input_tokens < 0)
        s->out.usage.input_tokens = 0;
    s->out.usage.cache_read_tokens = cached;
    s->out.usage.output_tokens = count_of(j, u, "candidatesTokenCount") + count_of(j, u, "thoughtsTokenCount");
}

static int handle_part(struct wd_gemini_stream *s, int p)
{
    const struct wd_json *j = &s->json;
    if (wd_json_type(j, p) != WD_J_OBJ)
        return 0;
    struct wd_str sig = WD_STR_NULL;
    int sig_i = wd_json_get(j, p, "thoughtSignature");
    if (sig_i >= 0 && decode(s, sig_i, &sig) < 0)
        return -1;
    int fc = wd_json_get(j, p, "functionCall");
    if (wd_json_type(j, fc) == WD_J_OBJ) {
        struct wd_str gname;
        int ni = wd_json_get(j, fc, "name");
        if (wd_json_type(j, ni) != WD_J_STR || decode(s, ni, &gname) < 0) {
            wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, false, "provider sent a function call without a name");
            return -1;
        }
        struct wd_event ev = {.name = client_name(s, gname), .signature = sig};
        open_block(s, WD_PART_TOOL_CALL, &ev);
        int args = wd_json_get(j, fc, "args");
        struct wd_event d = {.type = WD_EV_DELTA, .index = s->nparts - 1, .part_type = WD_PART_TOOL_CALL};
        d.args = wd_json_type(j, args) == WD_J_OBJ ? wd_json_raw(j, args) : WD_STR("{}");
        wd_emit(&s->out, &d);
        close_open(s);
        s->ncalls++;
        return 0;
    }
    int ti = wd_json_get(j, p, "text");
    bool thought = wd_json_type(j, ti) == WD_J_STR && wd_json_type(j, wd_json_get(j, p, "thought")) == WD_J_TRUE;
    if (sig.n && !thought) {
        /* A signature on answer text (or alone). The Anthropic API never puts a thinking block after text in
         * a message, and Claude Code prints the message's last text block: before any answer text it is
         * carried in a redacted_thinking block ahead of the text (Gemini 2.5 signs the first part); after
         * answer text it is dropped (Gemini 3 signs the last part, in a stream an empty-text part of the
         * last chunk). Gemini validates only function-call signatures, so nothing Gemini needs is lost. */
        if (!s->text_seen) {
            struct wd_event ev = {.signature = sig};
            open_block(s, WD_PART_SIGNATURE, &ev);
            close_open(s);
        }
        sig = WD_STR_NULL;
    }
    if (wd_json_type(j, ti) != WD_J_STR)
        return 0; /* executableCode, inlineData output...: nothing the client API carries */
    struct wd_str text = wd_json_raw(j, ti);
    enum wd_part_type kind = thought ? WD_PART_THINKING : WD_PART_TEXT;
    if (text.n > 0 || (thought && sig.n)) {
        if (s->open != (int)kind) {
            struct wd_event ev = {0};
            open_block(s, kind, &ev);
        }
        if (text.n > 0) {
            struct wd_event d = {.type = WD_EV_DELTA, .index = s->nparts - 1, .part_type = kind, .text = text};
            wd_emit(&s->out, &d);
            s->open_has_content = true;
            s->text_seen |= !thought;
        }
    }
    if (sig.n) { /* on a thought only, by now */
        struct wd_event d = {.type = WD_EV_DELTA, .index = s->nparts - 1, .part_type = kind, .signature = sig};
        wd_emit(&s->out, &d);
        close_open(s); /* a signature ends a thought */
    }
    return 0;
}

int wd_gemini_stream_chunk(struct wd_gemini_stream *s, const char *body, size_t len)
{
    if (s->out.failed)
        return -1;
    struct wd_json *j = &s->json;
    if (wd_json_parse(j, body, len) < 0 || j->t[0].type != WD_J_OBJ) {
        wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, false, "provider sent a malformed response chunk");
        return -1;
    }
    int err = wd_json_get(j, 0, "error");
    if (err >= 0) {
        struct wd_error e;
        int64_t code = 500;
        if (wd_json_i64(j, wd_json_get(j, err, "code"), &code) < 0 || code < 100 || code > 599)
            code = 500;
        wd_gemini_error((int)code, body, len, &e);
        /* e.msg lives on this stack frame: the sink copies what it writes */
        wd_emit_error(&s->out, e.cls, false, e.msg);
        return -1;
    }
    int usage = wd_json_get(j, 0, "usageMetadata");
    if (usage >= 0)
        read_usage(s, usage);
    int cands = wd_json_get(j, 0, "candidates");
    int cand = -1;
    if (wd_json_type(j, cands) == WD_J_ARR && j->t[cands].size > 0)
        cand = cands + 1;
    if (cand < 0) {
        int pf = wd_json_get(j, 0, "promptFeedback");
        if (pf >= 0 && wd_json_get(j, pf, "blockReason") >= 0) {
            s->finish_reason = WD_STR("SAFETY"); /* the prompt itself was blocked */
        }
        return 0;
    }
    int content = wd_json_get(j, cand, "content");
    int parts = wd_json_get(j, content, "parts");
    if (wd_json_type(j, parts) == WD_J_ARR) {
        WD_JSON_ARR_EACH(j, parts, e)
        {
            if (handle_part(s, (int)e) < 0)
                return -1;
        }
    }
    int fr = wd_json_get(j, cand, "finishReason");
    if (wd_json_type(j, fr) == WD_J_STR) {
        struct wd_str f;
        if (decode(s, fr, &f) < 0)
            return -1;
        char *copy = wd_arena_strndup(s->arena, f.p, f.n);
        if (copy == NULL) {
            wd_emit_error(&s->out, WD_ERR_API, false, "out of memory");
            return -1;
        }
        s->finish_reason = (struct wd_str){copy, f.n};
    }
    return 0;
}

void wd_gemini_stream_finish(struct wd_gemini_stream *s)
{
    if (s->out.failed)
        return;
    struct wd_str f = s->finish_reason;
    if (f.n == 0) {
        wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, false, "provider stream ended before the response was complete");
        return;
    }
    enum wd_stop_reason stop;
    if (wd_str_eq(f, "STOP") || wd_str_eq(f, "FINISH_REASON_UNSPECIFIED") || wd_str_eq(f, "OTHER"))
        stop = s->ncalls ? WD_STOP_TOOL_USE : WD_STOP_END_TURN;
    else if (wd_str_eq(f, "MAX_TOKENS"))
        stop = WD_STOP_MAX_TOKENS;
    else if (wd_str_eq(f, "MALFORMED_FUNCTION_CALL") || wd_str_eq(f, "UNEXPECTED_TOOL_CALL") ||
             wd_str_eq(f, "TOO_MANY_TOOL_CALLS")) {
        /* never a clean end_turn: the model failed to produce a usable call */
        wd_emit_error(&s->out, WD_ERR_API, s->nparts == 0 && wd_str_eq(f, "MALFORMED_FUNCTION_CALL"),
             "the model produced a malformed function call");
        return;
    } else
        stop = WD_STOP_REFUSAL; /* SAFETY, RECITATION, LANGUAGE, BLOCKLIST, PROHIBITED_CONTENT, SPII, ... */
    wd_emit_start(&s->out);
    close_open(s);
    struct wd_event ev = {.type = WD_EV_MESSAGE_STOP, .stop_reason = stop};
    wd_emit(&s->out, &ev);
}

void wd_gemini_error(int status, const char *body, size_t len, struct wd_error *err)
{
    enum wd_error_class cls;
    switch (status) {
    case 400: cls = WD_ERR_INVALID_REQUEST; break;
    case 401:
    case 403: cls = WD_ERR_API; break; /* Warden's provider credential was refused: not the client's fault */
    case 404: cls = WD_ERR_NOT_FOUND; break;
    case 413: cls = WD_ERR_TOO_LARGE; break;
    case 429: cls = WD_ERR_RATE_LIMIT; break;
    case 503: cls = WD_ERR_OVERLOADED; break;
    case 504: cls = WD_ERR_TIMEOUT; break;
    default: cls = WD_ERR_API; break;
    }
    struct wd_json j = {0};
    struct wd_arena a = {0};
    struct wd_str msg = WD_STR("no message");
    if (body != NULL && wd_json_parse(&j, body, len) == 0 && j.t[0].type == WD_J_OBJ) {
        int e = wd_json_get(&j, 0, "error");
        int m = wd_json_get(&j, e, "message");
        if (wd_json_type(&j, m) == WD_J_STR)
            wd_json_str_decode(&j, m, &a, &msg);
    }
    /* a revoked or rotated Gemini key is a 400 with the reason API_KEY_INVALID, not a 401 */
    bool bad_key = status == 400 && body != NULL && memmem(body, len, "\"API_KEY_INVALID\"", 17) != NULL;
    if (bad_key)
        cls = WD_ERR_API;
    if (status == 401 || status == 403 || bad_key)
        wd_error_set(err, cls, "the provider rejected Warden's credential (HTTP %d)", status);
    else
        wd_error_set(err, cls, "provider error (HTTP %d): %.*s", status, (int)(msg.n > 200 ? 200 : msg.n), msg.p);
    err->credential_refused = status == 401 || status == 403 || bad_key;
    wd_json_free(&j);
    wd_arena_free(&a);
}

int wd_gemini_count_tokens(const char *body, size_t len, int64_t *out)
{
    struct wd_json j = {0};
    int r = -1;
    if (wd_json_parse(&j, body, len) == 0 && j.t[0].type == WD_J_OBJ &&
        wd_json_i64(&j, wd_json_get(&j, 0, "totalTokens"), out) == 0)
        r = 0;
    wd_json_free(&j);
    return r;
}
