/* OpenAI Chat Completions codec: canonical request -> /v1/chat/completions body (written straight into the
 * output buffer, long strings copied as raw escaped slices); chat.completion bodies and chat.completion.chunk
 * payloads -> canonical events; error bodies -> classes. */
#include "providers/openai.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/anthropic.h"

/* ---- models, names, ids ---- */

void wd_openai_model_info(struct wd_str m, struct wd_openai_model *o)
{
    *o = (struct wd_openai_model){0};
    /* routers (OpenRouter, LiteLLM) name models "openai/gpt-4o": the family is in the last segment */
    for (size_t i = m.n; i > 0; i--)
        if (m.p[i - 1] == '/') {
            m.p += i;
            m.n -= i;
            break;
        }
    if (m.n >= 2 && m.p[0] == 'o' && m.p[1] >= '0' && m.p[1] <= '9') {
        *o = (struct wd_openai_model){100000, true};
    } else if (wd_str_has_prefix(m, "gpt-5")) {
        /* the chat variants are the non-reasoning model, with its smaller ceiling */
        if (wd_str_contains(m, "-chat"))
            *o = (struct wd_openai_model){16384, false};
        else
            *o = (struct wd_openai_model){128000, true};
    } else if (wd_str_has_prefix(m, "gpt-4.1")) {
        o->max_output = 32768;
    } else if (wd_str_has_prefix(m, "gpt-4o") || wd_str_has_prefix(m, "chatgpt-4o")) {
        o->max_output = 16384;
    }
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool all_id_chars(struct wd_str s)
{
    for (size_t i = 0; i < s.n; i++)
        if (!id_char(s.p[i]))
            return false;
    return true;
}

bool wd_openai_name_valid(struct wd_str n) { return n.n >= 1 && n.n <= 64 && all_id_chars(n); }

/* FNV-1a: stable across processes and replicas, so a mapped name or id is the same on every request. */
static uint64_t fnv64(const char *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
    return h;
}

size_t wd_openai_name_map(struct wd_str n, char out[65])
{
    if (wd_openai_name_valid(n)) {
        memcpy(out, n.p, n.n);
        out[n.n] = '\0';
        return n.n;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n.n; i++)
        h = (h ^ (uint8_t)n.p[i]) * 16777619u;
    size_t w = 0;
    out[w++] = 'f';
    out[w++] = '_';
    for (size_t i = 0; i < n.n && w < 53; i++)
        out[w++] = id_char(n.p[i]) ? n.p[i] : '_';
    w += (size_t)snprintf(out + w, 65 - w, "_%08x", h);
    return w;
}

size_t wd_openai_call_id(struct wd_str id, char out[41])
{
    if (id.n >= 1 && id.n <= 40 && all_id_chars(id)) {
        memcpy(out, id.p, id.n);
        out[id.n] = '\0';
        return id.n;
    }
    /* two differently seeded 64-bit hashes: 128 bits, so distinct ids of one conversation never meet */
    uint64_t a = fnv64(id.p, id.n, 0xcbf29ce484222325ull);
    uint64_t b = fnv64(id.p, id.n, 0x84222325cbf29ce4ull);
    return (size_t)snprintf(out, 41, "call_%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

/* ---- encode ---- */

static bool name_eq(struct wd_str a, struct wd_str b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0); }

struct enc {
    struct wd_buf *b;
    int nmsgs;          /* messages written */
    int nturns;         /* user, assistant and tool messages written (system ones aside) */
};

static void msg_open(struct enc *e, const char *role)
{
    wd_buf_puts(e->b, e->nmsgs++ ? ",{\"role\":\"" : "{\"role\":\"");
    wd_buf_puts(e->b, role);
    wd_buf_putc(e->b, '"');
}

static void put_call_id(struct wd_buf *b, struct wd_str id)
{
    char m[41];
    size_t n = wd_openai_call_id(id, m);
    wd_buf_putc(b, '"');
    wd_buf_put(b, m, n);
    wd_buf_putc(b, '"');
}

static void put_name(struct wd_buf *b, struct wd_str name)
{
    char m[65];
    size_t n = wd_openai_name_map(name, m);
    wd_buf_putc(b, '"');
    wd_buf_put(b, m, n);
    wd_buf_putc(b, '"');
}

/* The non-empty TEXT parts of a list, joined with sep (escaped), as the content of a JSON string. */
static size_t put_texts(struct wd_buf *b, const struct wd_part *p, size_t n, const char *sep)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].type != WD_PART_TEXT || p[i].text.n == 0)
            continue;
        if (k++)
            wd_buf_puts(b, sep);
        wd_buf_put_str(b, p[i].text);
    }
    return k;
}

static size_t count_texts(const struct wd_part *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i].type == WD_PART_TEXT && p[i].text.n > 0;
    return k;
}

/* A system message; nothing when all its text is empty (Chat Completions refuses empty content). */
static void put_system_msg(struct enc *e, const struct wd_part *p, size_t n)
{
    if (count_texts(p, n) == 0)
        return;
    msg_open(e, "system");
    wd_buf_puts(e->b, ",\"content\":\"");
    put_texts(e->b, p, n, "\\n\\n");
    wd_buf_puts(e->b, "\"}");
}

static void put_image(struct wd_buf *b, const struct wd_part *p)
{
    wd_buf_puts(b, "{\"type\":\"image_url\",\"image_url\":{\"url\":");
    if (p->media.url.n) {
        wd_json_put_string(b, p->media.url.p, p->media.url.n);
    } else {
        wd_buf_puts(b, "\"data:");
        wd_buf_put_str(b, p->media.media_type);
        wd_buf_puts(b, ";base64,");
        wd_buf_put_str(b, p->media.data);
        wd_buf_putc(b, '"');
    }
    wd_buf_puts(b, "}}");
}

/* Chat Completions `file` parts are refused by most compatible servers (and by the strict fake), so a PDF
 * is refused with the field named rather than silently lost. */
static int check_documents(const struct wd_msg *m, size_t mi, struct wd_error *err)
{
    for (size_t i = 0; i < m->nparts; i++) {
        const struct wd_part *p = &m->parts[i];
        if (p->type == WD_PART_DOCUMENT) {
            wd_error_set(err, WD_ERR_INVALID_REQUEST,
                         "messages.%zu.content.%zu: documents (PDF) cannot be sent to an OpenAI Chat Completions "
                         "provider",
                         mi, i);
            return -1;
        }
        for (size_t k = 0; p->type == WD_PART_TOOL_RESULT && k < p->ncontent; k++)
            if (p->content[k].type == WD_PART_DOCUMENT) {
                wd_error_set(err, WD_ERR_INVALID_REQUEST,
                             "messages.%zu.content.%zu.content.%zu: documents (PDF) cannot be sent to an OpenAI "
                             "Chat Completions provider",
                             mi, i, k);
                return -1;
            }
    }
    return 0;
}

/* Chat Completions refuses two calls with one id in a message, and two answers to one call: said here, with
 * the client's field, rather than by the provider about an id the client may never have seen. */
static int check_unique_ids(const struct wd_msg *m, size_t mi, struct wd_error *err)
{
    for (size_t i = 0; i < m->nparts; i++) {
        const struct wd_part *p = &m->parts[i];
        if (p->type != WD_PART_TOOL_CALL && p->type != WD_PART_TOOL_RESULT)
            continue;
        for (size_t k = 0; k < i; k++)
            if (m->parts[k].type == p->type && name_eq(m->parts[k].id, p->id)) {
                wd_error_set(err, WD_ERR_INVALID_REQUEST, "messages.%zu.content.%zu: %s", mi, i,
                             p->type == WD_PART_TOOL_CALL ? "duplicate tool_use id"
                                                          : "a second tool_result for the same tool_use_id");
                return -1;
            }
    }
    return 0;
}

static bool has_tool_result(const struct wd_msg *m)
{
    for (size_t i = 0; m != NULL && m->role == WD_ROLE_USER && i < m->nparts; i++)
        if (m->parts[i].type == WD_PART_TOOL_RESULT)
            return true;
    return false;
}

/* A user turn: one tool message per result (tool messages must come right after the assistant message that
 * made the calls), then the system messages that stood between the calls and their results, then one user
 * message with the rest. Tool messages carry text only: a result's images go into that user message, in
 * place. An error flag is not expressible and the text goes as it is. */
static void put_user(struct enc *e, const struct wd_request *req, size_t mi)
{
    const struct wd_msg *m = &req->msgs[mi];
    struct wd_buf *b = e->b;
    size_t nimages = 0;
    for (size_t i = 0; i < m->nparts; i++) {
        const struct wd_part *p = &m->parts[i];
        nimages += p->type == WD_PART_IMAGE;
        if (p->type != WD_PART_TOOL_RESULT)
            continue;
        size_t pimages = 0;
        for (size_t k = 0; k < p->ncontent; k++)
            pimages += p->content[k].type == WD_PART_IMAGE;
        nimages += pimages;
        msg_open(e, "tool");
        wd_buf_puts(b, ",\"tool_call_id\":");
        put_call_id(b, p->id);
        wd_buf_puts(b, ",\"content\":\"");
        /* empty content is refused: say what there is instead */
        if (put_texts(b, p->content, p->ncontent, "\\n") == 0)
            wd_buf_puts(b, pimages ? "(image output follows)" : "(no output)");
        wd_buf_puts(b, "\"}");
        e->nturns++;
    }
    if (has_tool_result(m)) {
        size_t first = mi;
        while (first > 0 && req->msgs[first - 1].role == WD_ROLE_SYSTEM)
            first--;
        for (size_t k = first; k < mi; k++)
            put_system_msg(e, req->msgs[k].parts, req->msgs[k].nparts);
    }
    size_t ntexts = count_texts(m->parts, m->nparts);
    if (ntexts == 0 && nimages == 0)
        return;
    msg_open(e, "user");
    e->nturns++;
    if (nimages == 0) {
        /* text only: a string, which every compatible server takes (some take no arrays) */
        wd_buf_puts(b, ",\"content\":\"");
        put_texts(b, m->parts, m->nparts, "\\n\\n");
        wd_buf_puts(b, "\"}");
        return;
    }
    wd_buf_puts(b, ",\"content\":[");
    size_t k = 0;
    for (size_t i = 0; i < m->nparts; i++) {
        const struct wd_part *p = &m->parts[i];
        if (p->type == WD_PART_TEXT && p->text.n) {
            wd_buf_puts(b, k++ ? ",{\"type\":\"text\",\"text\":\"" : "{\"type\":\"text\",\"text\":\"");
            wd_buf_put_str(b, p->text);
            wd_buf_puts(b, "\"}");
        } else if (p->type == WD_PART_IMAGE) {
            if (k++)
                wd_buf_putc(b, ',');
            put_image(b, p);
        } else if (p->type == WD_PART_TOOL_RESULT) {
            for (size_t c = 0; c < p->ncontent; c++)
                if (p->content[c].type == WD_PART_IMAGE) {
                    if (k++)
                        wd_buf_putc(b, ',');
                    put_image(b, &p->content[c]);
                }
        }
    }
    wd_buf_puts(b, "]}");
}

/* An assistant turn: text joined into content, calls as tool_calls (arguments: the JSON text of the input,
 * as a string). Thinking and signatures have no place in Chat Completions and are dropped. */
static void put_assistant(struct enc *e, const struct wd_msg *m)
{
    struct wd_buf *b = e->b;
    size_t ntexts = count_texts(m->parts, m->nparts), ncalls = 0;
    for (size_t i = 0; i < m->nparts; i++)
        ncalls += m->parts[i].type == WD_PART_TOOL_CALL;
    if (ntexts == 0 && ncalls == 0)
        return;
    msg_open(e, "assistant");
    e->nturns++;
    if (ntexts) {
        wd_buf_puts(b, ",\"content\":\"");
        put_texts(b, m->parts, m->nparts, "\\n\\n");
        wd_buf_putc(b, '"');
    }
    if (ncalls) {
        wd_buf_puts(b, ",\"tool_calls\":[");
        size_t k = 0;
        for (size_t i = 0; i < m->nparts; i++) {
            const struct wd_part *p = &m->parts[i];
            if (p->type != WD_PART_TOOL_CALL)
                continue;
            wd_buf_puts(b, k++ ? ",{\"id\":" : "{\"id\":");
            put_call_id(b, p->id);
            wd_buf_puts(b, ",\"type\":\"function\",\"function\":{\"name\":");
            put_name(b, p->name);
            wd_buf_puts(b, ",\"arguments\":");
            if (p->args.n)
                wd_json_put_string(b, p->args.p, p->args.n);
            else
                wd_buf_puts(b, "\"{}\"");
            wd_buf_puts(b, "}}");
        }
        wd_buf_putc(b, ']');
    }
    wd_buf_putc(b, '}');
}

static int put_messages(const struct wd_request *req, struct wd_buf *b, struct wd_error *err)
{
    struct enc e = {.b = b};
    wd_buf_puts(b, ",\"messages\":[");
    put_system_msg(&e, req->system, req->nsystem);
    for (size_t mi = 0; mi < req->nmsgs; mi++) {
        const struct wd_msg *m = &req->msgs[mi];
        if (check_documents(m, mi, err) < 0 || check_unique_ids(m, mi, err) < 0)
            return -1;
        if (m->role == WD_ROLE_SYSTEM) {
            /* Claude Code puts one between a tool call and its results; tool messages must follow the
             * calls directly, so such a system message goes after them (put_user writes it). */
            size_t next = mi + 1;
            while (next < req->nmsgs && req->msgs[next].role == WD_ROLE_SYSTEM)
                next++;
            if (!has_tool_result(next < req->nmsgs ? &req->msgs[next] : NULL))
                put_system_msg(&e, m->parts, m->nparts);
        } else if (m->role == WD_ROLE_USER) {
            put_user(&e, req, mi);
        } else {
            put_assistant(&e, m);
        }
    }
    wd_buf_putc(b, ']');
    if (e.nturns == 0) {
        wd_error_set(err, WD_ERR_INVALID_REQUEST, "messages: no content to send (all messages are empty)");
        return -1;
    }
    return 0;
}


/* The schema as parameters. Chat Completions wants an object schema: one that names no type (an empty {}
 * for a tool without input) gets "type":"object". */
static void put_schema(struct wd_buf *b, struct wd_str schema, struct wd_json *j)
{
    if (schema.n == 0) {
        wd_buf_puts(b, "{\"type\":\"object\",\"properties\":{}}");
        return;
    }
    if (wd_json_parse(j, schema.p, schema.n) == 0 && j->t[0].type == WD_J_OBJ && wd_json_get(j, 0, "type") < 0) {
        size_t in = j->t[0].start + 1; /* just inside the object's brace */
        wd_buf_puts(b, j->t[0].size ? "{\"type\":\"object\"," : "{\"type\":\"object\",\"properties\":{}");
        wd_buf_put(b, schema.p + in, j->t[0].end - in);
        return;
    }
    wd_buf_put_str(b, schema);
}

static int put_tools(const struct wd_request *req, struct wd_buf *b, struct wd_error *err)
{
    if (req->ntools == 0)
        return 0;
    char mi[65], mk[65];
    for (size_t i = 0; i < req->ntools; i++) {
        size_t ni = wd_openai_name_map(req->tools[i].name, mi);
        for (size_t k = 0; k < i; k++) {
            size_t nk = wd_openai_name_map(req->tools[k].name, mk);
            if (nk == ni && memcmp(mk, mi, ni) == 0) {
                wd_error_set(err, WD_ERR_INVALID_REQUEST, "tools.%zu.name: duplicate tool name", i);
                return -1;
            }
        }
    }
    struct wd_json j = {0};
    wd_buf_puts(b, ",\"tools\":[");
    for (size_t i = 0; i < req->ntools; i++) {
        const struct wd_tool *t = &req->tools[i];
        wd_buf_puts(b, i ? ",{\"type\":\"function\",\"function\":{\"name\":" : "{\"type\":\"function\",\"function\":{\"name\":");
        put_name(b, t->name);
        if (t->description.n) {
            wd_buf_puts(b, ",\"description\":\"");
            wd_buf_put_str(b, t->description);
            wd_buf_putc(b, '"');
        }
        wd_buf_puts(b, ",\"parameters\":");
        put_schema(b, t->schema, &j);
        wd_buf_puts(b, "}}");
    }
    wd_json_free(&j);
    wd_buf_putc(b, ']');
    switch (req->tool_choice) {
    case WD_TOOL_CHOICE_AUTO: wd_buf_puts(b, ",\"tool_choice\":\"auto\""); break;
    case WD_TOOL_CHOICE_ANY: wd_buf_puts(b, ",\"tool_choice\":\"required\""); break;
    case WD_TOOL_CHOICE_NONE: wd_buf_puts(b, ",\"tool_choice\":\"none\""); break;
    case WD_TOOL_CHOICE_TOOL: {
        bool found = false;
        for (size_t i = 0; i < req->ntools && !found; i++)
            found = name_eq(req->tools[i].name, req->tool_choice_name);
        if (!found) {
            wd_error_set(err, WD_ERR_INVALID_REQUEST, "tool_choice.name: no tool of that name in tools");
            return -1;
        }
        wd_buf_puts(b, ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":");
        put_name(b, req->tool_choice_name);
        wd_buf_puts(b, "}}");
        break;
    }
    default: break;
    }
    return 0;
}

static const char *effort_name(const struct wd_request *req)
{
    if (req->thinking == WD_THINKING_ENABLED) {
        if (req->thinking_budget < 0)
            return NULL;
        return req->thinking_budget <= 4096 ? "low" : req->thinking_budget <= 16384 ? "medium" : "high";
    }
    if (req->thinking == WD_THINKING_DISABLED)
        return NULL; /* "minimal" exists on gpt-5 only; the model's default is the safe choice */
    switch (req->effort) {
    case WD_EFFORT_LOW: return "low";
    case WD_EFFORT_MEDIUM: return "medium";
    case WD_EFFORT_HIGH:
    case WD_EFFORT_MAX: return "high";
    default: return NULL;
    }
}

static void put_options(const struct wd_request *req, const struct wd_openai_model *mi, const struct wd_openai_opts *o,
                        struct wd_buf *b)
{
    if (req->max_tokens >= 0) {
        /* Claude Code asks for 32000+ output tokens; OpenAI rejects more than the model's ceiling. */
        int64_t ceiling = o != NULL && o->max_output_tokens > 0 ? o->max_output_tokens : mi->max_output;
        int64_t max = req->max_tokens;
        if (ceiling > 0 && max > ceiling)
            max = ceiling;
        if (max < 1)
            max = 1;
        enum wd_tokens_field f = o != NULL ? o->tokens_field : WD_TOKENS_FIELD_AUTO;
        bool completion = f == WD_TOKENS_FIELD_MAX_COMPLETION_TOKENS || (f == WD_TOKENS_FIELD_AUTO && mi->reasoning);
        wd_buf_puts(b, completion ? ",\"max_completion_tokens\":" : ",\"max_tokens\":");
        wd_buf_put_i64(b, max);
    }
    /* Reasoning models take only the default sampling values: the client's are dropped. */
    if (!mi->reasoning && !isnan(req->temperature)) {
        wd_buf_puts(b, ",\"temperature\":");
        wd_buf_put_double(b, req->temperature);
    }
    if (!mi->reasoning && !isnan(req->top_p)) {
        wd_buf_puts(b, ",\"top_p\":");
        wd_buf_put_double(b, req->top_p);
    }
    /* top_k has no Chat Completions field. stop is not sent: finish_reason "stop" cannot tell a stop sequence
     * from a natural end and the text leaves the sequence out, so Warden matches stop sequences itself
     * (api/stop.h), as for Gemini; this also lifts OpenAI's limit of 4. */
    const char *effort = mi->reasoning ? effort_name(req) : NULL;
    if (effort != NULL) {
        wd_buf_puts(b, ",\"reasoning_effort\":\"");
        wd_buf_puts(b, effort);
        wd_buf_putc(b, '"');
    }
    if (req->stream)
        wd_buf_puts(b, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
}

int wd_openai_encode_request(const struct wd_request *req, struct wd_str model, const struct wd_openai_opts *o,
                             struct wd_buf *b, struct wd_error *err)
{
    struct wd_openai_model mi;
    wd_openai_model_info(model, &mi);
    wd_buf_puts(b, "{\"model\":");
    wd_json_put_string(b, model.p, model.n);
    if (put_messages(req, b, err) < 0 || put_tools(req, b, err) < 0)
        return -1;
    put_options(req, &mi, o, b);
    wd_buf_putc(b, '}');
    if (b->oom) {
        wd_error_set(err, WD_ERR_API, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- errors ---- */

static enum wd_error_class class_of_status(int status)
{
    switch (status) {
    case 400:
    case 422: return WD_ERR_INVALID_REQUEST; /* 422: vLLM's validation errors */
    case 401: return WD_ERR_AUTHENTICATION;
    case 403: return WD_ERR_PERMISSION;
    case 404: return WD_ERR_NOT_FOUND;
    case 408:
    case 504: return WD_ERR_TIMEOUT;
    case 413: return WD_ERR_TOO_LARGE;
    case 402: /* OpenRouter: out of credits, like insufficient_quota */
    case 429: return WD_ERR_RATE_LIMIT; /* insufficient_quota too: the provider refuses work for now */
    case 503:
    case 529: return WD_ERR_OVERLOADED; /* as for Gemini: an upstream that sheds load */
    default: return status >= 400 && status < 500 ? WD_ERR_INVALID_REQUEST : WD_ERR_API;
    }
}

/* An error object without an HTTP status (inside a 200 stream): its type or code names the class. */
static enum wd_error_class class_of_object(const struct wd_json *j, int e)
{
    int64_t code;
    int c = wd_json_get(j, e, "code");
    if (wd_json_i64(j, c, &code) == 0 && code >= 400 && code <= 599)
        return class_of_status((int)code);
    static const struct {
        const char *name;
        enum wd_error_class cls;
    } names[] = {
        {"rate_limit_exceeded", WD_ERR_RATE_LIMIT}, {"insufficient_quota", WD_ERR_RATE_LIMIT},
        {"tokens", WD_ERR_RATE_LIMIT},              {"requests", WD_ERR_RATE_LIMIT},
        {"context_length_exceeded", WD_ERR_INVALID_REQUEST},
        {"invalid_request_error", WD_ERR_INVALID_REQUEST},
        {"server_overloaded", WD_ERR_OVERLOADED},   {"overloaded_error", WD_ERR_OVERLOADED},
        {"timeout", WD_ERR_TIMEOUT},
    };
    int t = wd_json_get(j, e, "type");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (wd_json_str_eq(j, c, names[i].name) || wd_json_str_eq(j, t, names[i].name))
            return names[i].cls;
    return WD_ERR_API;
}

/* The provider's message, bounded and without control characters (it ends up in logs and in the client's
 * error), cut on a character boundary. */
static void put_message(struct wd_error *err, enum wd_error_class cls, int status, struct wd_str msg)
{
    char clean[201];
    size_t n = msg.n > 200 ? 200 : msg.n;
    if (n < msg.n)
        while (n > 0 && ((uint8_t)msg.p[n] & 0xC0) == 0x80)
            n--;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)msg.p[i];
        clean[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    clean[n] = '\0';
    if (status > 0)
        wd_error_set(err, cls, "provider error (HTTP %d): %s", status, n ? clean : "no message");
    else
        wd_error_set(err, cls, "provider error: %s", n ? clean : "no message");
}

/* The message of an error document: {"error":{"message"}} (OpenAI), {"error":"..."} (Ollama),
 * {"message":...} (vLLM). Empty when there is none. */
static struct wd_str message_of(const struct wd_json *j, int root, struct wd_arena *a)
{
    struct wd_str msg = WD_STR_NULL;
    int e = wd_json_get(j, root, "error");
    int m = wd_json_type(j, e) == WD_J_STR ? e : wd_json_get(j, e, "message");
    if (wd_json_type(j, m) != WD_J_STR)
        m = wd_json_get(j, root, "message");
    if (wd_json_type(j, m) != WD_J_STR || wd_json_str_decode(j, m, a, &msg) < 0)
        return WD_STR_NULL;
    return msg;
}

void wd_openai_error(int status, const char *body, size_t len, struct wd_error *err)
{
    enum wd_error_class cls = class_of_status(status);
    struct wd_json j = {0};
    struct wd_arena a = {0};
    struct wd_str msg = WD_STR_NULL;
    if (body != NULL && wd_json_parse(&j, body, len) == 0 && j.t[0].type == WD_J_OBJ)
        msg = message_of(&j, 0, &a);
    if (status == 401)
        /* OpenAI's message quotes part of the key: never passed on */
        wd_error_set(err, cls, "the provider rejected Warden's credential (HTTP 401)");
    else
        put_message(err, cls, status, msg);
    wd_json_free(&j);
    wd_arena_free(&a);
}

/* ---- decode ---- */

void wd_openai_stream_init(struct wd_openai_stream *s, struct wd_sink *sink, const struct wd_request *req,
                           struct wd_arena *a)
{
    *s = (struct wd_openai_stream){.out = {.sink = sink}, .req = req, .arena = a, .open_tool = -1, .last_tool = -1};
}

void wd_openai_stream_free(struct wd_openai_stream *s)
{
    wd_json_free(&s->json);
    wd_buf_free(&s->args);
    wd_buf_free(&s->ids);
}

/* Closes the open block. A tool call's arguments must by then be a JSON object (or nothing): the client
 * gets them as its input, and a non-stream answer embeds them as they are. */
static int close_open(struct wd_openai_stream *s)
{
    if (!s->open)
        return 0;
    if (s->open == WD_PART_TOOL_CALL && s->args.n) {
        struct wd_json j = {0};
        bool ok = wd_json_parse(&j, s->args.p, s->args.n) == 0 && j.t[0].type == WD_J_OBJ;
        wd_json_free(&j);
        if (!ok) {
            wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, !s->out.started, "provider sent malformed tool arguments");
            return -1;
        }
    }
    struct wd_event ev = {.type = WD_EV_PART_STOP, .index = s->nparts - 1, .part_type = s->open};
    wd_emit(&s->out, &ev);
    s->open = 0;
    s->open_tool = -1;
    return 0;
}

static int open_block(struct wd_openai_stream *s, enum wd_part_type t, struct wd_event *ev)
{
    wd_emit_start(&s->out);
    if (close_open(s) < 0)
        return -1;
    ev->type = WD_EV_PART_START;
    ev->part_type = t;
    ev->index = s->nparts++;
    wd_emit(&s->out, ev);
    s->open = t;
    return 0;
}

/* Reasoning text (DeepSeek's reasoning_content, vLLM's and Ollama's reasoning) becomes a thinking block
 * without a signature, when the client asked for visible thinking; otherwise it is dropped. */
static bool want_thinking(const struct wd_openai_stream *s)
{
    return s->req != NULL && (s->req->thinking == WD_THINKING_ENABLED || s->req->thinking == WD_THINKING_ADAPTIVE) &&
           !s->req->thinking_hidden;
}

/* A piece of text (escaped JSON string content) of the given kind. */
static int put_text(struct wd_openai_stream *s, enum wd_part_type kind, struct wd_str text)
{
    if (text.n == 0)
        return 0;
    /* a client's thinking block never follows its answer */
    if (kind == WD_PART_THINKING && (!want_thinking(s) || s->text_seen || s->ntools_seen))
        return 0;
    if (s->open != (int)kind) {
        struct wd_event ev = {0};
        if (open_block(s, kind, &ev) < 0)
            return -1;
    }
    struct wd_event d = {.type = WD_EV_DELTA, .index = s->nparts - 1, .part_type = kind, .text = text};
    wd_emit(&s->out, &d);
    s->text_seen |= kind == WD_PART_TEXT;
    return 0;
}

static int put_text_tok(struct wd_openai_stream *s, enum wd_part_type kind, int tok)
{
    if (wd_json_type(&s->json, tok) != WD_J_STR)
        return 0;
    return put_text(s, kind, wd_json_raw(&s->json, tok));
}

static bool id_seen(const struct wd_openai_stream *s, struct wd_str id)
{
    for (size_t i = 0; i < s->ids.n;) {
        size_t l = strlen(s->ids.p + i);
        if (l == id.n && memcmp(s->ids.p + i, id.p, l) == 0)
            return true;
        i += l + 1;
    }
    return false;
}

/* The client-visible id of a call: the provider's when it is a valid Anthropic id (and new in this
 * answer), else a generated one. */
static int call_id(struct wd_openai_stream *s, int tok, struct wd_str *out)
{
    struct wd_str id = WD_STR_NULL;
    if (wd_json_type(&s->json, tok) == WD_J_STR && wd_json_str_decode(&s->json, tok, s->arena, &id) < 0)
        return -1;
    if (id.n == 0 || id.n > 256 || !all_id_chars(id) || id_seen(s, id)) {
        char gen[64];
        size_t n = wd_anthropic_tool_id(gen, sizeof(gen), WD_STR_NULL);
        char *c = wd_arena_strndup(s->arena, gen, n);
        if (c == NULL)
            return -1;
        id = (struct wd_str){c, n};
    }
    wd_buf_put(&s->ids, id.p, id.n);
    wd_buf_putc(&s->ids, '\0');
    *out = id;
    return s->ids.oom ? -1 : 0;
}

/* The client-side name of a function the provider called: the tool whose mapped name matches. */
static struct wd_str client_name(const struct wd_openai_stream *s, struct wd_str name)
{
    char m[65];
    if (s->req != NULL)
        for (size_t i = 0; i < s->req->ntools; i++) {
            size_t n = wd_openai_name_map(s->req->tools[i].name, m);
            if (n == name.n && memcmp(m, name.p, n) == 0)
                return s->req->tools[i].name;
        }
    return name;
}

/* One piece of a tool call: a stream's delta.tool_calls[k] (index from the piece), or a whole message's
 * tool_calls[k] (index given). A new index opens a block (id and name come with its first piece); the
 * arguments text is passed on as it comes and kept to be checked when the block closes. */
static int tool_piece(struct wd_openai_stream *s, int tc, int64_t idx)
{
    const struct wd_json *j = &s->json;
    if (wd_json_type(j, tc) != WD_J_OBJ)
        return 0;
    int id_t = wd_json_get(j, tc, "id");
    int fn = wd_json_get(j, tc, "function");
    int name_t = wd_json_get(j, fn, "name");
    int args_t = wd_json_get(j, fn, "arguments");
    if (idx < 0) {
        int64_t v;
        if (wd_json_i64(j, wd_json_get(j, tc, "index"), &v) == 0 && v >= 0 && v < (1 << 20))
            idx = v;
        else if (s->open == WD_PART_TOOL_CALL && wd_json_type(j, name_t) != WD_J_STR)
            idx = s->open_tool; /* no index (some compatible servers): a piece without a name continues */
        else
            idx = s->last_tool + 1;
    }
    if (s->open != WD_PART_TOOL_CALL || idx != s->open_tool) {
        if (idx <= s->last_tool) {
            wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, !s->out.started, "provider sent tool call pieces out of order");
            return -1;
        }
        struct wd_str name;
        if (wd_json_type(j, name_t) != WD_J_STR || j->t[name_t].end == j->t[name_t].start) {
            wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, !s->out.started, "provider sent a tool call without a name");
            return -1;
        }
        struct wd_event ev = {0};
        if (wd_json_str_decode(j, name_t, s->arena, &name) < 0 || call_id(s, id_t, &ev.id) < 0) {
            wd_emit_error(&s->out, WD_ERR_API, false, "out of memory");
            return -1;
        }
        ev.name = client_name(s, name);
        if (open_block(s, WD_PART_TOOL_CALL, &ev) < 0)
            return -1;
        s->open_tool = (int)idx;
        s->last_tool = (int)idx;
        s->ntools_seen++;
        s->args.n = 0;
    }
    size_t old = s->args.n;
    if (wd_json_type(j, args_t) == WD_J_STR) {
        if (wd_json_unescape(&s->args, j->src + j->t[args_t].start, j->t[args_t].end - j->t[args_t].start) < 0) {
            wd_emit_error(&s->out, WD_ERR_API, false, "out of memory");
            return -1;
        }
    } else if (wd_json_type(j, args_t) == WD_J_OBJ) {
        wd_buf_put_str(&s->args, wd_json_raw(j, args_t)); /* some servers send the object itself */
    }
    if (s->args.oom) {
        wd_emit_error(&s->out, WD_ERR_API, false, "out of memory");
        return -1;
    }
    if (s->args.n > old) {
        struct wd_event d = {.type = WD_EV_DELTA, .index = s->nparts - 1, .part_type = WD_PART_TOOL_CALL};
        d.args = (struct wd_str){s->args.p + old, s->args.n - old};
        wd_emit(&s->out, &d);
    }
    return 0;
}

/* A token count from the provider; out-of-range values count as 0 so sums cannot overflow. */
static int64_t count_of(const struct wd_json *j, int u, const char *key)
{
    int64_t v = 0;
    if (wd_json_i64(j, wd_json_get(j, u, key), &v) < 0 || v < 0 || v > ((int64_t)1 << 48))
        return 0;
    return v;
}

static void read_usage(struct wd_openai_stream *s, int u)
{
    const struct wd_json *j = &s->json;
    if (wd_json_type(j, wd_json_get(j, u, "prompt_tokens")) != WD_J_NUM)
        return;
    int64_t prompt = count_of(j, u, "prompt_tokens");
    int details = wd_json_get(j, u, "prompt_tokens_details");
    int64_t cached = wd_json_type(j, wd_json_get(j, details, "cached_tokens")) == WD_J_NUM
                         ? count_of(j, details, "cached_tokens")
                         : count_of(j, u, "prompt_cache_hit_tokens"); /* DeepSeek */
    if (cached > prompt)
        cached = prompt;
    /* Anthropic counts cache reads apart from input tokens; OpenAI's prompt count includes them */
    s->out.usage.input_tokens = prompt - cached;
    s->out.usage.cache_read_tokens = cached;
    s->out.usage.output_tokens = count_of(j, u, "completion_tokens");
}

static void read_finish(struct wd_openai_stream *s, int fr)
{
    const struct wd_json *j = &s->json;
    if (wd_json_type(j, fr) != WD_J_STR)
        return;
    if (wd_json_str_eq(j, fr, "length"))
        s->stop = WD_STOP_MAX_TOKENS;
    else if (wd_json_str_eq(j, fr, "tool_calls") || wd_json_str_eq(j, fr, "function_call"))
        s->stop = WD_STOP_TOOL_USE;
    else if (wd_json_str_eq(j, fr, "content_filter"))
        s->stop = WD_STOP_REFUSAL;
    else
        s->stop = WD_STOP_END_TURN; /* stop, and what compatible servers invent (eos, end_turn...) */
    s->have_finish = true;
    s->done = true;
}

/* Checks a whole message's tool calls before anything is emitted, so a bad one fails a request that can
 * still be retried as it is. */
static int check_calls(struct wd_openai_stream *s, int calls)
{
    const struct wd_json *j = &s->json;
    if (wd_json_type(j, calls) != WD_J_ARR)
        return 0;
    WD_JSON_ARR_EACH(j, calls, c)
    {
        int fn = wd_json_get(j, (int)c, "function");
        int name = wd_json_get(j, fn, "name");
        int args = wd_json_get(j, fn, "arguments");
        if (wd_json_type(j, name) != WD_J_STR || j->t[name].end == j->t[name].start) {
            wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, !s->out.started, "provider sent a tool call without a name");
            return -1;
        }
        if (wd_json_type(j, args) == WD_J_OBJ || (wd_json_type(j, args) == WD_J_STR && j->t[args].end == j->t[args].start))
            continue;
        bool ok = false;
        if (wd_json_type(j, args) == WD_J_STR) {
            struct wd_buf b = {0};
            struct wd_json aj = {0};
            ok = wd_json_unescape(&b, j->src + j->t[args].start, j->t[args].end - j->t[args].start) == 0 &&
                 wd_json_parse(&aj, b.p, b.n) == 0 && aj.t[0].type == WD_J_OBJ;
            wd_json_free(&aj);
            wd_buf_free(&b);
        }
        if (!ok) {
            wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, !s->out.started, "provider sent malformed tool arguments");
            return -1;
        }
    }
    return 0;
}

static int handle_message(struct wd_openai_stream *s, int msg)
{
    const struct wd_json *j = &s->json;
    int calls = wd_json_get(j, msg, "tool_calls");
    if (check_calls(s, calls) < 0)
        return -1;
    int reasoning = wd_json_get(j, msg, "reasoning_content");
    if (wd_json_type(j, reasoning) != WD_J_STR)
        reasoning = wd_json_get(j, msg, "reasoning");
    if (put_text_tok(s, WD_PART_THINKING, reasoning) < 0 || put_text_tok(s, WD_PART_TEXT, wd_json_get(j, msg, "content")) < 0)
        return -1;
    int refusal = wd_json_get(j, msg, "refusal");
    if (wd_json_type(j, refusal) == WD_J_STR && j->t[refusal].end > j->t[refusal].start) {
        s->refusal = true;
        if (put_text_tok(s, WD_PART_TEXT, refusal) < 0)
            return -1;
    }
    if (wd_json_type(j, calls) == WD_J_ARR) {
        int64_t k = s->last_tool + 1;
        WD_JSON_ARR_EACH(j, calls, c)
        {
            if (tool_piece(s, (int)c, k++) < 0)
                return -1;
        }
    }
    return 0;
}

static int handle_delta(struct wd_openai_stream *s, int delta)
{
    const struct wd_json *j = &s->json;
    int reasoning = wd_json_get(j, delta, "reasoning_content");
    if (wd_json_type(j, reasoning) != WD_J_STR)
        reasoning = wd_json_get(j, delta, "reasoning");
    if (put_text_tok(s, WD_PART_THINKING, reasoning) < 0 || put_text_tok(s, WD_PART_TEXT, wd_json_get(j, delta, "content")) < 0)
        return -1;
    int refusal = wd_json_get(j, delta, "refusal");
    if (wd_json_type(j, refusal) == WD_J_STR && j->t[refusal].end > j->t[refusal].start) {
        s->refusal = true;
        if (put_text_tok(s, WD_PART_TEXT, refusal) < 0)
            return -1;
    }
    int calls = wd_json_get(j, delta, "tool_calls");
    if (wd_json_type(j, calls) == WD_J_ARR) {
        WD_JSON_ARR_EACH(j, calls, c)
        {
            if (tool_piece(s, (int)c, -1) < 0)
                return -1;
        }
    }
    return 0;
}

static bool is_done_marker(const char *p, size_t n)
{
    while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    return n == 6 && memcmp(p, "[DONE]", 6) == 0;
}

int wd_openai_stream_chunk(struct wd_openai_stream *s, const char *body, size_t len)
{
    if (s->out.failed)
        return -1;
    if (s->done_marker)
        return 0;
    if (is_done_marker(body, len)) {
        s->done_marker = true;
        return 0;
    }
    struct wd_json *j = &s->json;
    if (wd_json_parse(j, body, len) < 0 || j->t[0].type != WD_J_OBJ) {
        wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, !s->out.started, "provider sent a malformed response chunk");
        return -1;
    }
    int err = wd_json_get(j, 0, "error");
    if (wd_json_str_eq(j, wd_json_get(j, 0, "object"), "error"))
        err = 0; /* vLLM: the document itself is the error */
    if (err >= 0 && wd_json_type(j, err) != WD_J_NULL) {
        struct wd_error e;
        enum wd_error_class cls = wd_json_type(j, err) == WD_J_OBJ ? class_of_object(j, err) : WD_ERR_API;
        put_message(&e, cls, 0, message_of(j, 0, s->arena));
        bool client_fault = cls == WD_ERR_INVALID_REQUEST || cls == WD_ERR_TOO_LARGE || cls == WD_ERR_NOT_FOUND;
        /* e.msg lives on this stack frame: the sink copies what it keeps */
        wd_emit_error(&s->out, cls, !s->out.started && !client_fault, e.msg);
        return -1;
    }
    int usage = wd_json_get(j, 0, "usage");
    if (wd_json_type(j, usage) == WD_J_OBJ)
        read_usage(s, usage);
    int choices = wd_json_get(j, 0, "choices");
    if (wd_json_type(j, choices) != WD_J_ARR || j->t[choices].size == 0)
        return 0; /* the usage-only last chunk */
    int ch = choices + 1;
    int msg = wd_json_get(j, ch, "message");
    int delta = wd_json_get(j, ch, "delta");
    if (wd_json_type(j, msg) == WD_J_OBJ) {
        if (handle_message(s, msg) < 0)
            return -1;
    } else if (wd_json_type(j, delta) == WD_J_OBJ) {
        if (handle_delta(s, delta) < 0)
            return -1;
    }
    int fr = wd_json_get(j, ch, "finish_reason");
    if (wd_json_type(j, fr) == WD_J_STR) {
        read_finish(s, fr);
        if (close_open(s) < 0) /* a truncated call fails here, before the stop */
            return -1;
    }
    return 0;
}

void wd_openai_stream_finish(struct wd_openai_stream *s)
{
    if (s->out.failed)
        return;
    if (!s->have_finish) {
        wd_emit_error(&s->out, WD_ERR_BAD_GATEWAY, !s->out.started, "provider stream ended early");
        return;
    }
    if (close_open(s) < 0)
        return;
    enum wd_stop_reason stop = s->stop;
    if (s->refusal)
        stop = WD_STOP_REFUSAL;
    else if (stop == WD_STOP_END_TURN && s->ntools_seen)
        stop = WD_STOP_TOOL_USE; /* Ollama and others say "stop" after calls */
    else if (stop == WD_STOP_TOOL_USE && s->ntools_seen == 0)
        stop = WD_STOP_END_TURN; /* tool_use without a call would leave the client waiting for one */
    wd_emit_start(&s->out);
    struct wd_event ev = {.type = WD_EV_MESSAGE_STOP, .stop_reason = stop};
    wd_emit(&s->out, &ev);
}
