/* Anthropic Messages API as a provider when the client speaks it too: the client's body is rewritten by
 * splicing a few edits into the original bytes (everything else goes upstream as the client wrote it), and
 * the answer, relayed untouched, is watched for usage, stop reason and errors. */
#include "providers/anthropic.h"

#include "api/anthropic.h"
#include "lib/json_walk.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- model ceilings ---- */

/* Output ceilings per model family, as the Messages API enforces them (max_tokens above is a 400). Longest
 * names first where one is a prefix of another; a name matches when followed by its end, '-' (a date) or
 * '@' (Vertex's version separator). */
#define CEIL(prefix, max) {prefix, sizeof(prefix) - 1, max}
static const struct {
    const char *prefix;
    size_t n; /* the prefix's length: no strlen a row on every request */
    int64_t max_output;
} model_ceilings[] = {
    CEIL("claude-opus-4-7", 128000),
    CEIL("claude-opus-4-6", 128000),
    CEIL("claude-sonnet-4-6", 64000),
    CEIL("claude-opus-4-5", 64000),
    CEIL("claude-sonnet-4-5", 64000),
    CEIL("claude-haiku-4-5", 64000),
    CEIL("claude-opus-4-1", 32000),
    CEIL("claude-opus-4-0", 32000),
    CEIL("claude-opus-4-20250514", 32000),
    CEIL("claude-sonnet-4-0", 64000),
    CEIL("claude-sonnet-4-20250514", 64000),
    CEIL("claude-3-7-sonnet", 64000),
    CEIL("claude-3-5-sonnet", 8192),
    CEIL("claude-3-5-haiku", 8192),
    CEIL("claude-3-haiku", 4096),
    CEIL("claude-3-opus", 4096),
};
#undef CEIL

int64_t wd_anthropic_up_max_output(struct wd_str model)
{
    for (size_t i = 0; i < sizeof(model_ceilings) / sizeof(model_ceilings[0]); i++) {
        size_t n = model_ceilings[i].n;
        /* every prefix is longer than "claude-": the byte after it tells most rows apart without a memcmp */
        if (model.n >= n && model.p[7] == model_ceilings[i].prefix[7] &&
            memcmp(model.p, model_ceilings[i].prefix, n) == 0 &&
            (model.n == n || model.p[n] == '-' || model.p[n] == '@'))
            return model_ceilings[i].max_output;
    }
    return 0;
}

/* ---- rewrite ---- */

/* One splice on the original bytes: [off, off + len) becomes reps[rep_off, rep_off + rep_n). */
struct edit {
    uint32_t off;
    uint32_t len;
    size_t rep_off;
    size_t rep_n;
};

struct rw {
    const struct wd_json *j;
    struct edit *e;
    size_t n, cap;
    struct wd_buf reps;
    bool oom;
};

static void add_edit(struct rw *w, uint32_t off, uint32_t len, const char *rep, size_t rep_n)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct edit *e = realloc(w->e, cap * sizeof(*e));
        if (e == NULL) {
            w->oom = true;
            return;
        }
        w->e = e;
        w->cap = cap;
    }
    w->e[w->n++] = (struct edit){.off = off, .len = len, .rep_off = w->reps.n, .rep_n = rep_n};
    wd_buf_put(&w->reps, rep, rep_n);
}

/* The bytes a token covers: strings with their quotes. */
static uint32_t tok_begin(const struct wd_json *j, int i)
{
    return j->t[i].type == WD_J_STR ? j->t[i].start - 1 : j->t[i].start;
}
static uint32_t tok_end(const struct wd_json *j, int i)
{
    return j->t[i].type == WD_J_STR ? j->t[i].end + 1 : j->t[i].end;
}

/* Items of a container: array elements, or object members (key token; the value is the next token). */
static uint32_t item_next(const struct wd_json *j, bool obj, uint32_t it)
{
    return obj ? j->t[it + 1].next : j->t[it].next;
}
static uint32_t item_end(const struct wd_json *j, bool obj, uint32_t it)
{
    return tok_end(j, obj ? (int)it + 1 : (int)it);
}

typedef bool (*drop_fn)(const struct wd_json *j, int item, const void *ctx);

static size_t count_drops(const struct wd_json *j, int c, drop_fn drop, const void *ctx)
{
    bool obj = j->t[c].type == WD_J_OBJ;
    size_t n = 0;
    for (uint32_t it = (uint32_t)c + 1, end = j->t[c].next; it < end; it = item_next(j, obj, it))
        n += drop(j, (int)it, ctx);
    return n;
}

/* Removes the items drop() picks, with their separating commas, so the container stays valid JSON: a run
 * of dropped items goes from its first item to the next kept item, or, at the end, from the previous kept
 * item's end. The ranges of two runs never meet, since a kept item lies between them. When every item
 * goes, the whole container becomes if_empty. */
static void drop_items(struct rw *w, int c, drop_fn drop, const void *ctx, const char *if_empty)
{
    const struct wd_json *j = w->j;
    bool obj = j->t[c].type == WD_J_OBJ;
    int64_t kept = -1, run_first = -1, run_last = -1;
    for (uint32_t it = (uint32_t)c + 1, end = j->t[c].next; it < end; it = item_next(j, obj, it)) {
        if (drop(j, (int)it, ctx)) {
            if (run_first < 0)
                run_first = it;
            run_last = it;
            continue;
        }
        if (run_first >= 0) {
            uint32_t a = tok_begin(j, (int)run_first), b = tok_begin(j, (int)it);
            add_edit(w, a, b - a, "", 0);
            run_first = -1;
        }
        kept = it;
    }
    if (run_first < 0)
        return;
    if (kept >= 0) {
        uint32_t a = item_end(j, obj, (uint32_t)kept), b = item_end(j, obj, (uint32_t)run_last);
        add_edit(w, a, b - a, "", 0);
    } else {
        add_edit(w, j->t[c].start, j->t[c].end - j->t[c].start, if_empty, strlen(if_empty));
    }
}

static bool raw_has_prefix(const struct wd_json *j, int i, const char *lit)
{
    return wd_json_type(j, i) == WD_J_STR && wd_str_has_prefix(wd_json_raw(j, i), lit);
}

/* A thinking or redacted_thinking block whose opaque data Warden issued for another family. */
static bool is_foreign_thinking(const struct wd_json *j, int blk)
{
    int type = wd_json_get(j, blk, "type");
    if (wd_json_str_eq(j, type, "thinking"))
        return raw_has_prefix(j, wd_json_get(j, blk, "signature"), WD_SIG_PREFIX);
    if (wd_json_str_eq(j, type, "redacted_thinking"))
        return raw_has_prefix(j, wd_json_get(j, blk, "data"), WD_SIG_PREFIX);
    return false;
}

static bool is_thinking(const struct wd_json *j, int blk)
{
    int type = wd_json_get(j, blk, "type");
    return wd_json_str_eq(j, type, "thinking") || wd_json_str_eq(j, type, "redacted_thinking");
}

static bool drop_foreign(const struct wd_json *j, int blk, const void *ctx)
{
    (void)ctx;
    return is_foreign_thinking(j, blk);
}

static bool drop_any_thinking(const struct wd_json *j, int blk, const void *ctx)
{
    (void)ctx;
    return is_thinking(j, blk);
}

static bool drop_clear_thinking(const struct wd_json *j, int e, const void *ctx)
{
    (void)ctx;
    return raw_has_prefix(j, wd_json_get(j, e, "type"), "clear_thinking_");
}

/* Top-level members by key token: ctx is a NULL-terminated list of keys to drop. */
static bool drop_keys(const struct wd_json *j, int k, const void *ctx)
{
    for (const char *const *key = ctx; *key != NULL; key++)
        if (wd_json_key_eq(j, k, *key, strlen(*key)))
            return true;
    return false;
}

/* Length of the Warden part of a tool id that carries a signature ("toolu_wd" + 20 alphanumerics, then
 * "_" + base64url), or 0 when the id is anything else. Ids are matched on their raw bytes: an id holds
 * [A-Za-z0-9_-] only, so an escaped one is not one of ours. */
#define WD_TOOL_ID_BASE (sizeof(WD_TOOL_ID_PREFIX) - 1 + 20)
static size_t signed_tool_id(struct wd_str id)
{
    if (!wd_str_has_prefix(id, WD_TOOL_ID_PREFIX) || id.n <= WD_TOOL_ID_BASE + 1 || id.p[WD_TOOL_ID_BASE] != '_')
        return 0;
    for (size_t i = sizeof(WD_TOOL_ID_PREFIX) - 1; i < id.n; i++) {
        char c = id.p[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i < WD_TOOL_ID_BASE ? !alnum : !(alnum || c == '-' || c == '_'))
            return 0;
    }
    return WD_TOOL_ID_BASE;
}

/* Whether a tool id is one Warden issued (for a call that another family made). */
static bool warden_tool_id(struct wd_str id)
{
    if (!wd_str_has_prefix(id, WD_TOOL_ID_PREFIX) || id.n < WD_TOOL_ID_BASE)
        return false;
    for (size_t i = sizeof(WD_TOOL_ID_PREFIX) - 1; i < WD_TOOL_ID_BASE; i++) {
        char c = id.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* Cuts the signature suffix of the id string token i, if it has one. */
static void cut_tool_id(struct rw *w, int i, int *count)
{
    if (wd_json_type(w->j, i) != WD_J_STR)
        return;
    struct wd_str id = wd_json_raw(w->j, i);
    size_t keep = signed_tool_id(id);
    if (keep == 0)
        return;
    add_edit(w, w->j->t[i].start + (uint32_t)keep, (uint32_t)(id.n - keep), "", 0);
    (*count)++;
}

static int cmp_edit(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* What the last assistant turn looks like once foreign thinking is gone. */
struct last_turn {
    int msg;                    /* token of the message, -1 when there is no assistant message */
    bool final;                 /* it is the last message (a prefill) */
    bool tool_use;              /* it holds a tool_use block */
    bool starts_thinking;       /* its first remaining block is thinking / redacted_thinking */
    bool warden;                /* it came through Warden from another family (our tool ids, foreign data) */
};

static void inspect_last_turn(const struct wd_json *j, int msgs, struct last_turn *lt)
{
    *lt = (struct last_turn){.msg = -1};
    int last = -1;
    WD_JSON_ARR_EACH(j, msgs, m)
    {
        last = (int)m;
        if (wd_json_str_eq(j, wd_json_get(j, (int)m, "role"), "assistant"))
            lt->msg = (int)m;
    }
    if (lt->msg < 0)
        return;
    lt->final = lt->msg == last;
    int c = wd_json_get(j, lt->msg, "content");
    if (wd_json_type(j, c) != WD_J_ARR)
        return;
    bool first = true;
    WD_JSON_ARR_EACH(j, c, b)
    {
        if (is_foreign_thinking(j, (int)b)) {
            lt->warden = true;
            continue;
        }
        if (first)
            lt->starts_thinking = is_thinking(j, (int)b);
        first = false;
        if (wd_json_str_eq(j, wd_json_get(j, (int)b, "type"), "tool_use")) {
            lt->tool_use = true;
            int id = wd_json_get(j, (int)b, "id");
            if (wd_json_type(j, id) == WD_J_STR && warden_tool_id(wd_json_raw(j, id)))
                lt->warden = true;
        }
    }
}

/* An assistant message left with no block would be refused ("all messages must have non-empty content
 * except for the optional final assistant message"). Dropping the message would break the user/assistant
 * alternation, so a short text stands in for the thinking that cannot be replayed; a final assistant
 * message (a prefill) may be empty, and a text there would become the start of the answer. */
#define OMITTED_CONTENT "[{\"type\":\"text\",\"text\":\"(thinking omitted)\"}]"

static int fail(struct wd_error *err, enum wd_error_class cls, const char *msg)
{
    wd_error_set(err, cls, "%s", msg);
    return -1;
}

int wd_anthropic_up_rewrite(const char *body, size_t len, struct wd_str model, int64_t max_output, bool count_tokens,
                            struct wd_buf *out, struct wd_anthropic_up_edits *edits, struct wd_error *err)
{
    return wd_anthropic_up_rewrite_parsed(body, len, NULL, model, max_output, count_tokens, out, edits, err);
}

int wd_anthropic_up_rewrite_parsed(const char *body, size_t len, const struct wd_json *parsed, struct wd_str model,
                                   int64_t max_output, bool count_tokens, struct wd_buf *out,
                                   struct wd_anthropic_up_edits *edits, struct wd_error *err)
{
    *edits = (struct wd_anthropic_up_edits){0};
    struct wd_json j = {0};
    /* the inbound decode's tokens of the same bytes, when the caller has them: the body is not tokenized twice
     * (the lookups below only read them) */
    bool borrowed = parsed != NULL && parsed->src == body && parsed->len == len && parsed->n > 0;
    if (borrowed)
        j = *parsed;
    else if (wd_json_parse(&j, body, len) != 0) {
        wd_error_set(err, WD_ERR_INVALID_REQUEST, "request body is not valid JSON: %s at byte %zu",
                     j.err ? j.err : "parse error", j.err_off);
        wd_json_free(&j);
        return -1;
    }
    struct rw w = {.j = &j};
    int rc = -1;
    if (model.n == 0) {
        fail(err, WD_ERR_API, "no target model");
        goto out;
    }
    if (j.t[0].type != WD_J_OBJ) {
        fail(err, WD_ERR_INVALID_REQUEST, "request body: expected a JSON object");
        goto out;
    }
    int mdl = wd_json_get(&j, 0, "model");
    int msgs = wd_json_get(&j, 0, "messages");
    if (mdl < 0 || msgs < 0) {
        fail(err, WD_ERR_INVALID_REQUEST, mdl < 0 ? "model: Field required" : "messages: Field required");
        goto out;
    }
    if (wd_json_type(&j, mdl) != WD_J_STR) {
        fail(err, WD_ERR_INVALID_REQUEST, "model: Input should be a valid string");
        goto out;
    }
    if (wd_json_type(&j, msgs) != WD_J_ARR) {
        fail(err, WD_ERR_INVALID_REQUEST, "messages: Input should be a valid list");
        goto out;
    }

    /* 1. the model */
    if (!wd_json_key_eq(&j, mdl, model.p, model.n)) {
        struct wd_buf s = {0};
        wd_json_put_string(&s, model.p, model.n);
        add_edit(&w, tok_begin(&j, mdl), tok_end(&j, mdl) - tok_begin(&j, mdl), s.p, s.n);
        edits->model = !s.oom;
        w.oom |= s.oom;
        wd_buf_free(&s);
    }

    int th = wd_json_get(&j, 0, "thinking");
    int th_type = wd_json_get(&j, th, "type");
    bool enabled = wd_json_str_eq(&j, th_type, "enabled");
    bool thinking_on = enabled || wd_json_str_eq(&j, th_type, "adaptive");
    bool drop_thinking = false;

    /* 5. The thinking rule: with thinking on, the last assistant turn must start with a thinking block when
     * it holds tool_use. A turn another family answered through Warden has no Anthropic thinking to replay
     * (its own is removed below, or it never had any), so this request runs without extended thinking.
     * With thinking of type enabled the same holds for a turn with no trace of Warden: it was answered without
     * thinking (a request of this conversation that Warden ran without it, after a failover), and the API would
     * refuse it. Under adaptive thinking a client's own turn is left as it is: the model may skip thinking on a
     * turn, and Claude Code sends such turns. */
    struct last_turn lt;
    inspect_last_turn(&j, msgs, &lt);
    if (thinking_on && lt.tool_use && !lt.starts_thinking && (lt.warden || enabled))
        drop_thinking = true;

    /* 2. max_tokens over the target's ceiling, and a budget that no longer fits under it (the API wants
     * max_tokens > budget_tokens >= 1024) */
    int mt = wd_json_get(&j, 0, "max_tokens");
    int64_t max_tokens;
    if (!count_tokens && max_output > 0 && wd_json_i64(&j, mt, &max_tokens) == 0 && max_tokens > max_output) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%lld", (long long)max_output);
        add_edit(&w, j.t[mt].start, j.t[mt].end - j.t[mt].start, num, (size_t)n);
        edits->max_tokens_clamped = true;
        int bt = wd_json_get(&j, th, "budget_tokens");
        int64_t budget;
        if (enabled && !drop_thinking && wd_json_i64(&j, bt, &budget) == 0 && budget >= max_output) {
            if (max_output - 1 >= 1024) {
                n = snprintf(num, sizeof(num), "%lld", (long long)(max_output - 1));
                add_edit(&w, j.t[bt].start, j.t[bt].end - j.t[bt].start, num, (size_t)n);
            } else {
                drop_thinking = true;
            }
        }
    }

    if (drop_thinking) {
        edits->thinking_dropped = true;
        /* clear_thinking_* context edits are refused without thinking ("`clear_thinking_20251015` strategy
         * requires `thinking` to be enabled or adaptive"); output_config.effort is valid without it. */
        int cm = wd_json_get(&j, 0, "context_management");
        int ce = wd_json_get(&j, cm, "edits");
        bool drop_cm = false;
        if (wd_json_type(&j, ce) == WD_J_ARR) {
            size_t nd = count_drops(&j, ce, drop_clear_thinking, NULL);
            if (nd > 0 && nd == j.t[ce].size)
                drop_cm = true;
            else if (nd > 0)
                drop_items(&w, ce, drop_clear_thinking, NULL, "[]");
        }
        static const char *const keys_th[] = {"thinking", NULL}, *const keys_th_cm[] = {"thinking",
                                                                                          "context_management", NULL};
        drop_items(&w, 0, drop_keys, drop_cm ? keys_th_cm : keys_th, "{}");
    }

    /* 3 and 4: foreign thinking out of assistant turns, signature suffixes off tool ids. Without thinking, a
     * final assistant message may hold no thinking block at all. */
    WD_JSON_ARR_EACH(&j, msgs, m)
    {
        int c = wd_json_get(&j, (int)m, "content");
        if (wd_json_type(&j, c) != WD_J_ARR)
            continue;
        bool assistant = wd_json_str_eq(&j, wd_json_get(&j, (int)m, "role"), "assistant");
        if (assistant) {
            bool strip_all = drop_thinking && lt.final && (int)m == lt.msg;
            drop_fn drop = strip_all ? drop_any_thinking : drop_foreign;
            size_t nd = count_drops(&j, c, drop, NULL);
            edits->foreign_thinking += (int)count_drops(&j, c, drop_foreign, NULL);
            if (nd > 0)
                drop_items(&w, c, drop, NULL, (int)m == lt.msg && lt.final ? "[]" : OMITTED_CONTENT);
        }
        WD_JSON_ARR_EACH(&j, c, b)
        {
            int type = wd_json_get(&j, (int)b, "type");
            if (wd_json_str_eq(&j, type, "tool_use"))
                cut_tool_id(&w, wd_json_get(&j, (int)b, "id"), &edits->foreign_ids);
            else if (wd_json_str_eq(&j, type, "tool_result"))
                cut_tool_id(&w, wd_json_get(&j, (int)b, "tool_use_id"), &edits->foreign_ids);
        }
    }

    if (w.oom || w.reps.oom) {
        fail(err, WD_ERR_API, "out of memory");
        goto out;
    }

    edits->unchanged = w.n == 0;
    if (out == NULL) { /* the caller only asks what would change */
        rc = 0;
        goto out;
    }
    /* 6. one pass: the original bytes between the edits, the replacements in their place */
    if (w.n > 1)
        qsort(w.e, w.n, sizeof(*w.e), cmp_edit);
    size_t at = 0;
    if (!wd_buf_reserve(out, len + w.reps.n)) {
        fail(err, WD_ERR_API, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < w.n; i++) {
        const struct edit *e = &w.e[i];
        if (e->off < at) {
            fail(err, WD_ERR_API, "internal: overlapping request edits");
            goto out;
        }
        wd_buf_put(out, body + at, e->off - at);
        if (e->rep_n > 0) /* a removal has no replacement bytes (and reps may hold none at all) */
            wd_buf_put(out, w.reps.p + e->rep_off, e->rep_n);
        at = (size_t)e->off + e->len;
    }
    wd_buf_put(out, body + at, len - at);
    if (out->oom) {
        fail(err, WD_ERR_API, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(w.e);
    wd_buf_free(&w.reps);
    if (!borrowed)
        wd_json_free(&j);
    return rc;
}

/* ---- the watcher ---- */

/* It reads a few members of the answer's events (or of a whole message) with wd_json_each_member: no token
 * array for bytes that pass through untouched. Keys are matched on their raw bytes (the API never escapes
 * one). */

static bool raw_is(struct wd_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static enum wd_stop_reason stop_reason_of(struct wd_str v)
{
    if (v.p == NULL)
        return WD_STOP_NONE; /* absent, or not a string (null before the end) */
    if (raw_is(v, "max_tokens") || raw_is(v, "model_context_window_exceeded"))
        return WD_STOP_MAX_TOKENS; /* the answer was cut by a limit, as with max_tokens */
    if (raw_is(v, "stop_sequence"))
        return WD_STOP_STOP_SEQUENCE;
    if (raw_is(v, "tool_use"))
        return WD_STOP_TOOL_USE;
    if (raw_is(v, "refusal"))
        return WD_STOP_REFUSAL;
    /* end_turn; pause_turn (a server tool loop paused: the turn is over for this request, the client sends
     * the answer back to continue); a reason newer than this code: the message did end */
    return WD_STOP_END_TURN;
}

/* A usage object's counts as read (has: which were present). */
struct usage_counts {
    int64_t input, cache_creation, cache_read, output;
    bool has_input, has_cache_creation, has_cache_read, has_output, present;
};

/* Takes the counts a usage object holds; the others keep their values. Anthropic's input_tokens counts
 * neither cache reads nor cache writes; canon's input is everything but cache reads, so cache writes are
 * added in (they are billed as input), and also kept apart. */
static void take_usage(struct wd_anthropic_up_watch *w, const struct usage_counts *u)
{
    if (!u->present)
        return;
    int64_t input = u->has_input ? u->input : w->usage.input_tokens - w->cache_creation_tokens;
    if (u->has_cache_creation)
        w->cache_creation_tokens = u->cache_creation;
    if (u->has_cache_read)
        w->usage.cache_read_tokens = u->cache_read;
    if (u->has_output)
        w->usage.output_tokens = u->output; /* cumulative in message_delta */
    w->usage.input_tokens = input + w->cache_creation_tokens;
}

static void take_model(struct wd_anthropic_up_watch *w, struct wd_str m)
{
    if (m.p == NULL || memchr(m.p, '\\', m.n) != NULL)
        return; /* absent, or escaped: a model name has no escapes */
    size_t n = m.n < sizeof(w->model) - 1 ? m.n : sizeof(w->model) - 1;
    memcpy(w->model, m.p, n);
    w->model[n] = '\0';
}

static enum wd_error_class class_of_type(struct wd_str t)
{
    static const struct {
        const char *type;
        enum wd_error_class cls;
    } types[] = {
        {"invalid_request_error", WD_ERR_INVALID_REQUEST}, {"authentication_error", WD_ERR_AUTHENTICATION},
        {"permission_error", WD_ERR_PERMISSION},           {"not_found_error", WD_ERR_NOT_FOUND},
        {"request_too_large", WD_ERR_TOO_LARGE},           {"rate_limit_error", WD_ERR_RATE_LIMIT},
        {"api_error", WD_ERR_API},                         {"overloaded_error", WD_ERR_OVERLOADED},
        {"timeout_error", WD_ERR_TIMEOUT},
    };
    if (t.p == NULL)
        return WD_ERR_NONE;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (raw_is(t, types[i].type))
            return types[i].cls;
    return WD_ERR_NONE;
}

/* What the watcher reads of one payload, in one walk: the top-level type, model and stop_reason (a whole
 * message), message.{model, usage} (message_start), delta.stop_reason (message_delta), the top-level usage
 * (message_delta, a whole message) and error.type. String members hold raw bytes (p NULL: absent). */
enum parent { P_TOP, P_MESSAGE, P_DELTA, P_USAGE, P_MSG_USAGE, P_ERROR, P_OTHER };

struct fields {
    enum parent path[WD_JSON_WALK_DEPTH];
    struct wd_str type, model, stop, msg_model, delta_stop, etype;
    struct usage_counts usage, msg_usage;
};

static void count(struct usage_counts *u, struct wd_str k, int type, struct wd_str v)
{
    if (type != WD_J_NUM)
        return;
    /* the four names differ in length: one comparison of bytes at most, and none for another member */
    int64_t *dst;
    bool *has;
    switch (k.n) {
    case sizeof("input_tokens") - 1:
        if (!raw_is(k, "input_tokens"))
            return;
        dst = &u->input, has = &u->has_input;
        break;
    case sizeof("cache_creation_input_tokens") - 1:
        if (!raw_is(k, "cache_creation_input_tokens"))
            return;
        dst = &u->cache_creation, has = &u->has_cache_creation;
        break;
    case sizeof("cache_read_input_tokens") - 1:
        if (!raw_is(k, "cache_read_input_tokens"))
            return;
        dst = &u->cache_read, has = &u->has_cache_read;
        break;
    case sizeof("output_tokens") - 1:
        if (!raw_is(k, "output_tokens"))
            return;
        dst = &u->output, has = &u->has_output;
        break;
    default:
        return;
    }
    /* a count is a few plain digits: read here; anything else (a sign, a fraction, many digits) is left to
     * wd_json_num_i64, which takes only an integer within int64 */
    int64_t x = 0;
    size_t i = 0;
    if (v.n <= 18)
        for (; i < v.n && (unsigned char)(v.p[i] - '0') <= 9; i++)
            x = x * 10 + (v.p[i] - '0');
    if ((i > 0 && i == v.n) || wd_json_num_i64(v, &x) == 0)
        *dst = x, *has = true;
}

/* A string member, the first of its name only (a repeated key does not overwrite). */
static void take_str(struct wd_str *dst, int type, struct wd_str v)
{
    if (type == WD_J_STR && dst->p == NULL)
        *dst = v;
}

static inline __attribute__((always_inline)) int on_member(void *ctx, int depth, struct wd_str k, int type,
                                                            struct wd_str v)
{
    struct fields *f = ctx;
    enum parent in = depth == 0 ? P_TOP : f->path[depth - 1];
    enum parent into = P_OTHER;
    switch (in) {
    case P_TOP:
        /* by length first: most members of an event are none of these */
        switch (k.n) {
        case 4:
            if (raw_is(k, "type"))
                take_str(&f->type, type, v);
            break;
        case 5:
            if (raw_is(k, "model"))
                take_str(&f->model, type, v);
            else if (raw_is(k, "delta"))
                into = P_DELTA;
            else if (raw_is(k, "usage"))
                into = P_USAGE;
            else if (raw_is(k, "error"))
                into = P_ERROR;
            break;
        case 7:
            if (raw_is(k, "message"))
                into = P_MESSAGE;
            break;
        case 11:
            if (raw_is(k, "stop_reason"))
                take_str(&f->stop, type, v);
            break;
        }
        break;
    case P_MESSAGE:
        if (k.n != 5)
            break;
        if (raw_is(k, "model"))
            take_str(&f->msg_model, type, v);
        else if (raw_is(k, "usage"))
            into = P_MSG_USAGE;
        break;
    case P_DELTA:
        if (raw_is(k, "stop_reason"))
            take_str(&f->delta_stop, type, v);
        break;
    case P_ERROR:
        if (raw_is(k, "type"))
            take_str(&f->etype, type, v);
        break;
    case P_USAGE:
        count(&f->usage, k, type, v);
        break;
    case P_MSG_USAGE:
        count(&f->msg_usage, k, type, v);
        break;
    case P_OTHER:
        break;
    }
    if (into == P_OTHER || type != WD_J_OBJ)
        return 0; /* skipped, nested values included */
    if (into == P_USAGE)
        f->usage.present = true;
    if (into == P_MSG_USAGE)
        f->msg_usage.present = true;
    f->path[depth] = into;
    return WD_JSON_DESCEND;
}

void wd_anthropic_up_watch(struct wd_anthropic_up_watch *w, const char *data, size_t len)
{
    /* the events as the API writes them, told apart by their first bytes: content blocks (most of a stream) and
     * pings carry nothing to watch; any other payload (or one written another way) is walked */
    static const char pre[] = "{\"type\":\"";
    const size_t np = sizeof(pre) - 1;
    if (len > np && memcmp(data, pre, np) == 0) {
        const char *t = data + np;
        size_t tn = len - np;
        if ((tn > 14 && memcmp(t, "content_block_", 14) == 0) || (tn > 5 && memcmp(t, "ping\"", 5) == 0))
            return;
        if (tn > 13 && memcmp(t, "message_stop\"", 13) == 0) {
            w->done = true;
            return;
        }
    }
    struct fields f = {0};
    if (wd_json_walk(data, len, on_member, &f) != 0 || f.type.p == NULL)
        return;
    if (raw_is(f.type, "message_start")) {
        w->started = true;
        take_usage(w, &f.msg_usage);
        take_model(w, f.msg_model);
    } else if (raw_is(f.type, "message_delta")) {
        enum wd_stop_reason r = stop_reason_of(f.delta_stop);
        if (r != WD_STOP_NONE)
            w->stop_reason = r;
        take_usage(w, &f.usage);
    } else if (raw_is(f.type, "message_stop")) {
        w->done = true;
    } else if (raw_is(f.type, "error")) {
        enum wd_error_class cls = class_of_type(f.etype);
        w->error = cls != WD_ERR_NONE ? cls : WD_ERR_API;
    } else if (raw_is(f.type, "message")) {
        w->started = w->done = true;
        take_usage(w, &f.usage);
        take_model(w, f.model);
        enum wd_stop_reason r = stop_reason_of(f.stop);
        if (r != WD_STOP_NONE)
            w->stop_reason = r;
    }
}

void wd_anthropic_up_watch_free(struct wd_anthropic_up_watch *w) { (void)w; }

/* ---- errors and token counts ---- */

static enum wd_error_class class_of_status(int status)
{
    switch (status) {
    case 400: return WD_ERR_INVALID_REQUEST;
    case 401: return WD_ERR_AUTHENTICATION;
    case 403: return WD_ERR_PERMISSION;
    case 404: return WD_ERR_NOT_FOUND;
    case 413: return WD_ERR_TOO_LARGE;
    case 415: return WD_ERR_UNSUPPORTED_MEDIA;
    case 429: return WD_ERR_RATE_LIMIT;
    case 502: return WD_ERR_BAD_GATEWAY;
    /* WD_ERR_UNAVAILABLE is Warden's own 503 (no credential, draining); an upstream 503 is the provider
     * unable to serve now, which is what overloaded means for retries and fallback */
    case 503:
    case 529: return WD_ERR_OVERLOADED;
    case 504: return WD_ERR_TIMEOUT;
    default: return status >= 400 && status < 500 ? WD_ERR_INVALID_REQUEST : WD_ERR_API;
    }
}

void wd_anthropic_up_error(int http_status, const char *body, size_t len, struct wd_error *err)
{
    struct wd_json j = {0};
    struct wd_arena a = {0};
    struct wd_str msg = WD_STR("no message");
    enum wd_error_class cls = WD_ERR_NONE;
    if (body != NULL && wd_json_parse(&j, body, len) == 0 && j.t[0].type == WD_J_OBJ) {
        int e = wd_json_get(&j, 0, "error"), t = wd_json_get(&j, e, "type");
        if (wd_json_type(&j, t) == WD_J_STR)
            cls = class_of_type(wd_json_raw(&j, t));
        int m = wd_json_get(&j, e, "message");
        if (wd_json_type(&j, m) == WD_J_STR)
            wd_json_str_decode(&j, m, &a, &msg);
    }
    /* The type names the cause; api_error is the generic one, and with 503 / 529 the status says more */
    if (cls == WD_ERR_NONE || (cls == WD_ERR_API && (http_status == 503 || http_status == 529)))
        cls = class_of_status(http_status);
    wd_error_set(err, cls, "provider error (HTTP %d): %.*s", http_status, (int)(msg.n > 200 ? 200 : msg.n), msg.p);
    wd_json_free(&j);
    wd_arena_free(&a);
}

int wd_anthropic_up_count_tokens(const char *body, size_t len, int64_t *out)
{
    struct wd_json j = {0};
    int r = -1;
    if (wd_json_parse(&j, body, len) == 0 && j.t[0].type == WD_J_OBJ &&
        wd_json_i64(&j, wd_json_get(&j, 0, "input_tokens"), out) == 0)
        r = 0;
    wd_json_free(&j);
    return r;
}
