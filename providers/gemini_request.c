/* Canonical request -> Gemini generateContent / countTokens body. Written straight into the output
 * buffer; long strings (system prompt, tool descriptions, schemas, history) are copied as raw slices. */
#include "providers/gemini.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void wd_gemini_model_info(struct wd_str m, struct wd_gemini_model *o)
{
    *o = (struct wd_gemini_model){.max_output = 8192};
    o->flash = wd_str_contains(m, "flash");
    if (wd_str_has_prefix(m, "gemini-3")) {
        o->family = 30;
        o->max_output = 65536;
    } else if (wd_str_has_prefix(m, "gemini-2.5-pro")) {
        *o = (struct wd_gemini_model){65536, 25, 128, 32768, false, false};
    } else if (wd_str_has_prefix(m, "gemini-2.5-flash-lite")) {
        *o = (struct wd_gemini_model){65536, 25, 512, 24576, true, true};
    } else if (wd_str_has_prefix(m, "gemini-2.5-flash")) {
        *o = (struct wd_gemini_model){65536, 25, 1, 24576, true, true};
    }
}

bool wd_gemini_name_valid(struct wd_str n)
{
    if (n.n == 0 || n.n > 64)
        return false;
    char c0 = n.p[0];
    if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 == '_'))
        return false;
    for (size_t i = 1; i < n.n; i++) {
        char c = n.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == ':' || c == '-'))
            return false;
    }
    return true;
}

size_t wd_gemini_name_map(struct wd_str n, char out[65])
{
    if (wd_gemini_name_valid(n)) {
        memcpy(out, n.p, n.n);
        out[n.n] = '\0';
        return n.n;
    }
    uint32_t h = 2166136261u; /* FNV-1a: stable across processes and replicas */
    for (size_t i = 0; i < n.n; i++)
        h = (h ^ (uint8_t)n.p[i]) * 16777619u;
    size_t w = 0;
    out[w++] = 'f';
    out[w++] = '_';
    for (size_t i = 0; i < n.n && w < 53; i++) {
        char c = n.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        out[w++] = ok ? c : '_';
    }
    w += (size_t)snprintf(out + w, 65 - w, "_%08x", h);
    return w;
}

static void put_name(struct wd_buf *b, struct wd_str name)
{
    char m[65];
    size_t n = wd_gemini_name_map(name, m);
    wd_buf_putc(b, '"');
    wd_buf_put(b, m, n);
    wd_buf_putc(b, '"');
}

static const char *mime_from_url(struct wd_str url, enum wd_part_type t)
{
    static const struct {
        const char *ext, *mime;
    } map[] = {{".png", "image/png"},   {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
               {".gif", "image/gif"},   {".webp", "image/webp"}, {".pdf", "application/pdf"}};
    size_t end = url.n;
    for (size_t i = 0; i < url.n; i++)
        if (url.p[i] == '?' || url.p[i] == '#') {
            end = i;
            break;
        }
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t l = strlen(map[i].ext);
        if (end >= l && strncasecmp(url.p + end - l, map[i].ext, l) == 0)
            return map[i].mime;
    }
    return t == WD_PART_DOCUMENT ? "application/pdf" : "image/jpeg";
}

/* Writes parts of one turn; merges consecutive turns of the same role, defers each part's closing brace
 * so that a signature that follows can still be attached to it. */
struct turns {
    struct wd_buf *b;
    const char *role;       /* open turn's role, NULL if none */
    bool part_open;         /* a part's '{' is written, '}' is not */
    bool part_signed;       /* the open part has its thoughtSignature (a part holds at most one) */
    int nturns;
    struct wd_str pending_sig; /* a signature waiting for the next part of this model turn */
};

static void part_close(struct turns *t)
{
    if (t->part_open) {
        wd_buf_putc(t->b, '}');
        t->part_open = false;
        t->part_signed = false;
    }
}

static void turn_close(struct turns *t)
{
    part_close(t);
    if (t->role != NULL)
        wd_buf_puts(t->b, "]}");
    t->role = NULL;
    t->pending_sig = WD_STR_NULL;
}

/* Opens a new part in a turn of the given role. */
static void part_begin(struct turns *t, const char *role)
{
    if (t->role != role) {
        turn_close(t);
        wd_buf_puts(t->b, t->nturns++ ? ",{\"role\":\"" : "{\"role\":\"");
        wd_buf_puts(t->b, role);
        wd_buf_puts(t->b, "\",\"parts\":[{");
        t->role = role;
    } else {
        part_close(t);
        wd_buf_puts(t->b, ",{");
    }
    t->part_open = true;
}

/* Signs the open part. */
static void put_sig(struct turns *t, struct wd_str sig)
{
    /* base64: nothing to escape, but it came from a client: escape anyway */
    wd_buf_puts(t->b, ",\"thoughtSignature\":");
    wd_json_put_string(t->b, sig.p, sig.n);
    t->part_signed = true;
}

static void part_end(struct turns *t)
{
    if (t->pending_sig.n) {
        put_sig(t, t->pending_sig);
        t->pending_sig = WD_STR_NULL;
    }
}

static void put_media(struct turns *t, const char *role, const struct wd_part *p)
{
    part_begin(t, role);
    if (p->media.url.n) {
        wd_buf_puts(t->b, "\"fileData\":{\"mimeType\":\"");
        wd_buf_puts(t->b, mime_from_url(p->media.url, p->type));
        wd_buf_puts(t->b, "\",\"fileUri\":");
        wd_json_put_string(t->b, p->media.url.p, p->media.url.n);
        wd_buf_putc(t->b, '}');
    } else {
        wd_buf_puts(t->b, "\"inlineData\":{\"mimeType\":\"");
        wd_buf_put_str(t->b, p->media.media_type);
        wd_buf_puts(t->b, "\",\"data\":\"");
        wd_buf_put_str(t->b, p->media.data);
        wd_buf_puts(t->b, "\"}");
    }
    part_end(t);
}

static void put_text(struct turns *t, const char *role, struct wd_str text, bool thought, struct wd_str sig)
{
    part_begin(t, role);
    wd_buf_puts(t->b, "\"text\":\"");
    wd_buf_put_str(t->b, text);
    wd_buf_putc(t->b, '"');
    if (thought)
        wd_buf_puts(t->b, ",\"thought\":true");
    if (sig.n) {
        put_sig(t, sig);
        t->pending_sig = WD_STR_NULL;
    }
    part_end(t);
}

static void put_tool_result(struct turns *t, const struct wd_part *p)
{
    part_begin(t, "user");
    wd_buf_puts(t->b, "\"functionResponse\":{\"name\":");
    put_name(t->b, p->name);
    wd_buf_puts(t->b, p->is_error ? ",\"response\":{\"error\":\"" : ",\"response\":{\"output\":\"");
    bool first = true;
    for (size_t i = 0; i < p->ncontent; i++) {
        if (p->content[i].type != WD_PART_TEXT)
            continue;
        if (!first)
            wd_buf_puts(t->b, "\\n");
        wd_buf_put_str(t->b, p->content[i].text);
        first = false;
    }
    wd_buf_puts(t->b, "\"}}");
}

/* Mid-conversation system text becomes a reminder inside the user turn: the system instruction, and so
 * the cached prefix, stays the same from turn to turn. */
static void put_reminder(struct turns *t, const struct wd_msg *m)
{
    bool any = false;
    for (size_t i = 0; i < m->nparts; i++)
        any |= m->parts[i].text.n > 0;
    if (!any)
        return;
    part_begin(t, "user");
    wd_buf_puts(t->b, "\"text\":\"<system-reminder>\\n");
    bool first = true;
    for (size_t i = 0; i < m->nparts; i++) {
        if (m->parts[i].text.n == 0)
            continue;
        if (!first)
            wd_buf_puts(t->b, "\\n");
        wd_buf_put_str(t->b, m->parts[i].text);
        first = false;
    }
    wd_buf_puts(t->b, "\\n</system-reminder>\"");
}

static int put_contents(const struct wd_request *req, struct wd_str model, struct wd_buf *b, struct wd_error *err)
{
    struct wd_gemini_model mi;
    wd_gemini_model_info(model, &mi);
    struct turns t = {.b = b};
    const struct wd_msg *deferred = NULL; /* a system message waiting for the function responses */
    wd_buf_puts(b, "\"contents\":[");
    for (size_t mi_ = 0; mi_ < req->nmsgs; mi_++) {
        const struct wd_msg *m = &req->msgs[mi_];
        if (m->role == WD_ROLE_SYSTEM) {
            /* Claude Code puts one between a tool call and its results; the reminder then goes after the
             * function responses, which Gemini pairs with the calls just before them. */
            const struct wd_msg *next = mi_ + 1 < req->nmsgs ? &req->msgs[mi_ + 1] : NULL;
            bool defer = false;
            for (size_t i = 0; next != NULL && next->role == WD_ROLE_USER && i < next->nparts; i++)
                defer |= next->parts[i].type == WD_PART_TOOL_RESULT;
            if (!defer)
                put_reminder(&t, m);
            else
                deferred = m;
            continue;
        }
        if (m->role == WD_ROLE_USER) {
            /* function responses first, as Gemini pairs them with the preceding calls */
            for (size_t i = 0; i < m->nparts; i++)
                if (m->parts[i].type == WD_PART_TOOL_RESULT)
                    put_tool_result(&t, &m->parts[i]);
            if (deferred != NULL) {
                put_reminder(&t, deferred);
                deferred = NULL;
            }
            for (size_t i = 0; i < m->nparts; i++) {
                const struct wd_part *p = &m->parts[i];
                if (p->type == WD_PART_TOOL_RESULT) {
                    for (size_t k = 0; k < p->ncontent; k++)
                        if (p->content[k].type == WD_PART_IMAGE || p->content[k].type == WD_PART_DOCUMENT)
                            put_media(&t, "user", &p->content[k]);
                } else if (p->type == WD_PART_TEXT) {
                    if (p->text.n)
                        put_text(&t, "user", p->text, false, WD_STR_NULL);
                } else if (p->type == WD_PART_IMAGE || p->type == WD_PART_DOCUMENT) {
                    put_media(&t, "user", p);
                }
            }
            continue;
        }
        /* assistant */
        bool first_call = true;
        for (size_t i = 0; i < m->nparts; i++) {
            const struct wd_part *p = &m->parts[i];
            switch (p->type) {
            case WD_PART_TEXT:
                if (p->text.n)
                    put_text(&t, "model", p->text, false, t.pending_sig);
                break;
            case WD_PART_THINKING:
                if (p->text.n)
                    put_text(&t, "model", p->text, true, p->signature.n ? p->signature : t.pending_sig);
                else if (p->signature.n)
                    t.pending_sig = p->signature;
                break;
            case WD_PART_SIGNATURE:
                /* belongs to the part before it; with none in this turn (or one already signed, which
                 * would give the part two thoughtSignature keys), to the next one */
                if (t.part_open && !t.part_signed && t.role != NULL && strcmp(t.role, "model") == 0)
                    put_sig(&t, p->signature);
                else
                    t.pending_sig = p->signature;
                break;
            case WD_PART_TOOL_CALL: {
                part_begin(&t, "model");
                wd_buf_puts(b, "\"functionCall\":{\"name\":");
                put_name(b, p->name);
                wd_buf_puts(b, ",\"args\":");
                wd_buf_put_str(b, p->args);
                wd_buf_putc(b, '}');
                struct wd_str sig = p->signature.n ? p->signature : t.pending_sig;
                t.pending_sig = WD_STR_NULL;
                /* Gemini 3 requires a signature on the first call of a step; history from another model
                 * has none, and Gemini documents this value for exactly that case. */
                if (sig.n == 0 && first_call && mi.family == 30)
                    sig = WD_STR("skip_thought_signature_validator");
                if (sig.n)
                    put_sig(&t, sig);
                first_call = false;
                break;
            }
            default:
                break;
            }
        }
    }
    turn_close(&t);
    wd_buf_putc(b, ']');
    if (t.nturns == 0) {
        wd_error_set(err, WD_ERR_INVALID_REQUEST, "messages: no content to send (all messages are empty)");
        return -1;
    }
    return 0;
}

static void put_system(const struct wd_request *req, struct wd_buf *b)
{
    bool any = false;
    for (size_t i = 0; i < req->nsystem; i++) {
        if (req->system[i].text.n == 0)
            continue;
        wd_buf_puts(b, any ? ",{\"text\":\"" : ",\"systemInstruction\":{\"parts\":[{\"text\":\"");
        wd_buf_put_str(b, req->system[i].text);
        wd_buf_puts(b, "\"}");
        any = true;
    }
    if (any)
        wd_buf_puts(b, "]}");
}

static int put_tools(const struct wd_request *req, struct wd_buf *b, struct wd_error *err)
{
    if (req->ntools == 0)
        return 0;
    /* Each tool's Gemini name is mapped once; two tools whose names map to the same one are refused. */
    char stack_names[16][65], (*names)[65] = stack_names;
    uint8_t stack_lens[16], *lens = stack_lens;
    if (req->ntools > 16) {
        names = malloc(req->ntools * sizeof(*names));
        lens = malloc(req->ntools);
        if (names == NULL || lens == NULL) {
            free(names);
            free(lens);
            wd_error_set(err, WD_ERR_API, "out of memory");
            return -1;
        }
    }
    int rc = 0;
    wd_buf_puts(b, ",\"tools\":[{\"functionDeclarations\":[");
    for (size_t i = 0; i < req->ntools; i++) {
        const struct wd_tool *t = &req->tools[i];
        lens[i] = (uint8_t)wd_gemini_name_map(t->name, names[i]);
        for (size_t k = 0; k < i && rc == 0; k++)
            if (lens[k] == lens[i] && memcmp(names[k], names[i], lens[i]) == 0) {
                wd_error_set(err, WD_ERR_INVALID_REQUEST, "tools.%zu.name: duplicate tool name", i);
                rc = -1;
            }
        if (rc < 0)
            break;
        wd_buf_puts(b, i ? ",{\"name\":\"" : "{\"name\":\"");
        wd_buf_put(b, names[i], lens[i]);
        wd_buf_putc(b, '"');
        if (t->description.n) {
            wd_buf_puts(b, ",\"description\":\"");
            wd_buf_put_str(b, t->description);
            wd_buf_putc(b, '"');
        }
        wd_buf_puts(b, ",\"parametersJsonSchema\":");
        wd_buf_put_str(b, t->schema);
        wd_buf_putc(b, '}');
    }
    if (names != stack_names) {
        free(names);
        free(lens);
    }
    if (rc < 0)
        return -1;
    wd_buf_puts(b, "]}]");
    switch (req->tool_choice) {
    case WD_TOOL_CHOICE_AUTO:
        wd_buf_puts(b, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}");
        break;
    case WD_TOOL_CHOICE_ANY:
        wd_buf_puts(b, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}}");
        break;
    case WD_TOOL_CHOICE_NONE:
        wd_buf_puts(b, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}}");
        break;
    case WD_TOOL_CHOICE_TOOL: {
        bool found = false;
        for (size_t i = 0; i < req->ntools && !found; i++)
            found = req->tools[i].name.n == req->tool_choice_name.n &&
                    memcmp(req->tools[i].name.p, req->tool_choice_name.p, req->tool_choice_name.n) == 0;
        if (!found) {
            wd_error_set(err, WD_ERR_INVALID_REQUEST, "tool_choice.name: no tool of that name in tools");
            return -1;
        }
        wd_buf_puts(b, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[");
        put_name(b, req->tool_choice_name);
        wd_buf_puts(b, "]}}");
        break;
    }
    default:
        break;
    }
    return 0;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static void put_thinking(const struct wd_request *req, const struct wd_gemini_model *mi, struct wd_buf *b)
{
    if (req->thinking == WD_THINKING_UNSET || mi->family == 0)
        return;
    bool show = req->thinking != WD_THINKING_DISABLED && !req->thinking_hidden;
    wd_buf_puts(b, ",\"thinkingConfig\":{");
    if (mi->family == 30) {
        const char *level = "high";
        if (req->thinking == WD_THINKING_DISABLED)
            level = mi->flash ? "minimal" : "low";
        else if (req->thinking == WD_THINKING_ENABLED)
            level = req->thinking_budget <= 2048 ? "low" : "high";
        else if (req->effort == WD_EFFORT_LOW)
            level = "low";
        else if (req->effort == WD_EFFORT_MEDIUM)
            level = mi->flash ? "medium" : "high";
        wd_buf_puts(b, "\"thinkingLevel\":\"");
        wd_buf_puts(b, level);
        wd_buf_putc(b, '"');
    } else {
        int64_t budget;
        if (req->thinking == WD_THINKING_DISABLED)
            budget = mi->can_disable ? 0 : mi->budget_min; /* 2.5 Pro cannot think less than its minimum */
        else if (req->thinking == WD_THINKING_ENABLED)
            budget = clamp64(req->thinking_budget, mi->budget_min, mi->budget_max);
        else if (req->effort == WD_EFFORT_LOW)
            budget = clamp64(1024, mi->budget_min, mi->budget_max);
        else if (req->effort == WD_EFFORT_MEDIUM)
            budget = clamp64(8192, mi->budget_min, mi->budget_max);
        else if (req->effort == WD_EFFORT_HIGH || req->effort == WD_EFFORT_MAX)
            budget = mi->budget_max;
        else
            budget = -1; /* dynamic: the model decides, which is what adaptive asks for */
        wd_buf_puts(b, "\"thinkingBudget\":");
        wd_buf_put_i64(b, budget);
    }
    if (show)
        wd_buf_puts(b, ",\"includeThoughts\":true");
    wd_buf_putc(b, '}');
}

static int put_generation_config(const struct wd_request *req, struct wd_str model, struct wd_buf *b,
                                 struct wd_error *err)
{
    struct wd_gemini_model mi;
    wd_gemini_model_info(model, &mi);
    /* Claude Code asks for 128000 output tokens; Gemini rejects more than the model's ceiling. */
    int64_t max = req->max_tokens > mi.max_output ? mi.max_output : req->max_tokens;
    wd_buf_puts(b, ",\"generationConfig\":{\"maxOutputTokens\":");
    wd_buf_put_i64(b, max);
    if (!isnan(req->temperature)) {
        wd_buf_puts(b, ",\"temperature\":");
        wd_buf_put_double(b, req->temperature);
    }
    if (!isnan(req->top_p)) {
        wd_buf_puts(b, ",\"topP\":");
        wd_buf_put_double(b, req->top_p);
    }
    if (req->top_k >= 0) {
        wd_buf_puts(b, ",\"topK\":");
        wd_buf_put_i64(b, req->top_k);
    }
    /* stop_sequences are not sent: Gemini's finishReason cannot tell a stop sequence from a natural stop
     * and its text omits the sequence, so Warden matches them itself (api/stop.h) and cancels the
     * generation when one matches. */
    put_thinking(req, &mi, b);
    wd_buf_putc(b, '}');
    return 0;
}

int wd_gemini_encode_request(const struct wd_request *req, struct wd_str model, bool count_tokens, struct wd_buf *b,
                             struct wd_error *err)
{
    if (count_tokens) {
        wd_buf_puts(b, "{\"generateContentRequest\":{\"model\":\"models/");
        wd_json_put_escaped(b, model.p, model.n);
        wd_buf_puts(b, "\",");
    } else {
        wd_buf_putc(b, '{');
    }
    if (put_contents(req, model, b, err) < 0)
        return -1;
    put_system(req, b);
    if (put_tools(req, b, err) < 0)
        return -1;
    if (put_generation_config(req, model, b, err) < 0)
        return -1;
    wd_buf_puts(b, count_tokens ? "}}" : "}");
    if (b->oom) {
        wd_error_set(err, WD_ERR_API, "out of memory");
        return -1;
    }
    return 0;
}
