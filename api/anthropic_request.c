/* Anthropic Messages request -> canonical request. Everything Claude Code sends is either mapped or
 * dropped on purpose (listed in drop_keys and in the README); anything else is a 400 naming the field,
 * as Anthropic itself answers. */
#include "api/anthropic.h"
#include "api/stop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct dec {
    const struct wd_json *j;
    struct wd_arena *a;
    struct wd_error *err;
};

#define FAIL(d, ...)                                                  \
    do {                                                              \
        wd_error_set((d)->err, WD_ERR_INVALID_REQUEST, __VA_ARGS__); \
        return -1;                                                    \
    } while (0)

static bool key_is(const struct wd_json *j, uint32_t k, const char *lit) { return wd_json_str_eq(j, (int)k, lit); }

/* Accepted and deliberately not forwarded: they have no meaning for any provider we translate to. */
static bool top_level_dropped(const struct wd_json *j, uint32_t k)
{
    static const char *const drop[] = {"metadata", "context_management", "service_tier", "container", "betas",
                                       "anthropic_version", "cache_control", "inference_geo", NULL};
    for (int i = 0; drop[i]; i++)
        if (key_is(j, k, drop[i]))
            return true;
    return false;
}

/* Error paths are built only on failure: "path.field", or "path" when field is NULL. */
#define FIELD_FMT "%s%s%s"
#define FIELD_ARGS(path, field) (path), (field) ? "." : "", (field) ? (field) : ""

/* A client's key as it may appear in an error (and so in the access log): at most 64 bytes, anything but
 * printable ASCII (and the quote and backslash) as '?'. Returns out. */
static const char *safe_key(struct wd_str key, char out[65])
{
    size_t n = key.n > 64 ? 64 : key.n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key.p[i];
        out[i] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
    }
    out[n] = '\0';
    return out;
}

static int decode_str(struct dec *d, int i, struct wd_str *out, const char *path, const char *field)
{
    if (i < 0)
        FAIL(d, FIELD_FMT ": Field required", FIELD_ARGS(path, field));
    if (wd_json_type(d->j, i) != WD_J_STR)
        FAIL(d, FIELD_FMT ": expected a string", FIELD_ARGS(path, field));
    if (wd_json_str_decode(d->j, i, d->a, out) < 0) {
        wd_error_set(d->err, WD_ERR_API, "out of memory");
        return -1;
    }
    return 0;
}

static int raw_str(struct dec *d, int i, struct wd_str *out, const char *path, const char *field)
{
    if (i < 0)
        FAIL(d, FIELD_FMT ": Field required", FIELD_ARGS(path, field));
    if (wd_json_type(d->j, i) != WD_J_STR)
        FAIL(d, FIELD_FMT ": expected a string", FIELD_ARGS(path, field));
    *out = wd_json_raw(d->j, i);
    return 0;
}

/* A name (model, tool, tool call, tool_choice): decoded, and without control characters, which no provider
 * accepts in a name and which would otherwise be echoed back in errors and logs. */
static int decode_name(struct dec *d, int i, struct wd_str *out, const char *path, const char *field)
{
    if (decode_str(d, i, out, path, field) < 0)
        return -1;
    for (size_t k = 0; k < out->n; k++)
        if ((unsigned char)out->p[k] < 0x20 || out->p[k] == 0x7f)
            FAIL(d, FIELD_FMT ": control characters are not allowed in a name", FIELD_ARGS(path, field));
    return 0;
}

/* base + suffix (+ a decimal index when idx >= 0) into out, cut to cap like snprintf. The error paths
 * ("messages.3.content.1") are built on the way down for every message, block and tool, so this runs far
 * more often than an error is reported; snprintf cost about 0.2 us a call. */
static void path_cat(char *out, size_t cap, const char *base, const char *suffix, long long idx)
{
    size_t n = 0;
    for (const char *s = base; *s != '\0' && n + 1 < cap; s++)
        out[n++] = *s;
    for (const char *s = suffix; *s != '\0' && n + 1 < cap; s++)
        out[n++] = *s;
    if (idx >= 0) {
        char dig[24];
        int k = 0;
        do {
            dig[k++] = (char)('0' + idx % 10);
            idx /= 10;
        } while (idx > 0);
        while (k > 0 && n + 1 < cap)
            out[n++] = dig[--k];
    }
    out[n] = '\0';
}

static int decode_media(struct dec *d, int blk, struct wd_part *p, const char *path)
{
    const struct wd_json *j = d->j;
    int src = wd_json_get(j, blk, "source");
    if (wd_json_type(j, src) != WD_J_OBJ)
        FAIL(d, "%s.source: expected an object", path);
    int type = wd_json_get(j, src, "type");
    if (wd_json_str_eq(j, type, "base64")) {
        char sp[160];
        path_cat(sp, sizeof(sp), path, ".source", -1);
        if (raw_str(d, wd_json_get(j, src, "media_type"), &p->media.media_type, sp, "media_type") < 0 ||
            raw_str(d, wd_json_get(j, src, "data"), &p->media.data, sp, "data") < 0)
            return -1;
        if (p->media.data.n == 0)
            FAIL(d, "%s.source.data: empty", path);
    } else if (wd_json_str_eq(j, type, "url")) {
        char sp[160];
        path_cat(sp, sizeof(sp), path, ".source", -1);
        if (decode_str(d, wd_json_get(j, src, "url"), &p->media.url, sp, "url") < 0)
            return -1;
        if (!wd_str_has_prefix(p->media.url, "https://") && !wd_str_has_prefix(p->media.url, "http://"))
            FAIL(d, "%s.source.url: only http and https URLs are supported", path);
    } else if (wd_json_str_eq(j, type, "text") && p->type == WD_PART_DOCUMENT) {
        /* a plain-text document is text to every provider */
        p->type = WD_PART_TEXT;
        char sp[160];
        path_cat(sp, sizeof(sp), path, ".source", -1);
        return raw_str(d, wd_json_get(j, src, "data"), &p->text, sp, "data");
    } else {
        FAIL(d, "%s.source.type: unsupported source type", path);
    }
    return 0;
}

static int decode_tool_id(struct dec *d, int i, struct wd_part *p, const char *path)
{
    if (decode_str(d, i, &p->id, path, NULL) < 0)
        return -1;
    for (size_t k = 0; k < p->id.n; k++) {
        char c = p->id.p[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            FAIL(d, "%s: tool use id must match ^[a-zA-Z0-9_-]+$", path);
    }
    if (p->id.n == 0)
        FAIL(d, "%s: empty tool use id", path);
    return 0;
}

/* Recovers the provider signature from one of our tool ids (see WD_TOOL_ID_PREFIX). */
static int tool_id_signature(struct dec *d, struct wd_part *p)
{
    size_t pre = sizeof(WD_TOOL_ID_PREFIX) - 1 + 20;
    if (!wd_str_has_prefix(p->id, WD_TOOL_ID_PREFIX) || p->id.n <= pre + 1 || p->id.p[pre] != '_')
        return 0;
    const char *s = p->id.p + pre + 1;
    size_t n = p->id.n - pre - 1;
    char *o = wd_arena_alloc(d->a, n + 4);
    if (o == NULL)
        return -1;
    for (size_t k = 0; k < n; k++)
        o[k] = s[k] == '-' ? '+' : s[k] == '_' ? '/' : s[k];
    size_t w = n;
    while (w % 4)
        o[w++] = '=';
    p->signature = (struct wd_str){o, w};
    return 0;
}

static int decode_block(struct dec *d, int blk, struct wd_part *p, enum wd_role role, bool in_tool_result,
                        const char *path);

/* "path.key: Extra inputs are not permitted", as Anthropic words it. */
static int extra_input(struct dec *d, uint32_t k, const char *path)
{
    struct wd_str key;
    if (wd_json_str_decode(d->j, (int)k, d->a, &key) < 0) {
        wd_error_set(d->err, WD_ERR_API, "out of memory");
        return -1;
    }
    char sk[65];
    FAIL(d, "%s%s%s: Extra inputs are not permitted", path ? path : "", path ? "." : "", safe_key(key, sk));
}

/* ---- duplicate keys ----
 * Every object of the request but tool schemas (see no_dup_in), not only those decoded here: a repeated
 * key is read as its last value by some parsers and its first by others, so a policy layer and the
 * provider could see different requests. Small objects compare a key with the earlier ones only when a
 * hash says it may repeat one; large ones sort their keys. Only failures build a path. */

struct key_tok {
    struct wd_str key;      /* decoded */
    uint32_t tok;
};

static int key_tok_cmp(const void *a, const void *b)
{
    const struct key_tok *x = a, *y = b;
    if (x->key.n != y->key.n)
        return x->key.n < y->key.n ? -1 : 1;
    int c = memcmp(x->key.p, y->key.p, x->key.n);
    return c != 0 ? c : x->tok < y->tok ? -1 : x->tok > y->tok; /* equal keys in document order */
}

/* Sets *dup to the token of a key of obj that repeats an earlier one; 1 then, 0 if none, -1 on OOM. */
static int find_dup_key(struct dec *d, int obj, uint32_t *dup)
{
    const struct wd_json *j = d->j;
    uint32_t n = j->t[obj].size, m = 0;
    if (n <= 16) {
        /* The common case, run for every object of the request: raw slices. A 64-bit mask of a hash of
         * each key's length and end bytes says which keys may repeat one seen before; only those are
         * compared. An escaped key sends the object to the decoding path below. */
        uint32_t toks[16];
        uint64_t seen = 0;
        WD_JSON_OBJ_EACH(j, obj, k)
        {
            const struct wd_jtok *t = &j->t[k];
            if (t->escaped)
                goto decoded;
            uint32_t len = t->end - t->start;
            const unsigned char *p = (const unsigned char *)j->src + t->start;
            uint64_t bit = 1ull << ((len * 7u + (len ? p[0] + p[len - 1] * 3u : 0u)) & 63u);
            if (seen & bit)
                for (uint32_t i = 0; i < m; i++) {
                    const struct wd_jtok *u = &j->t[toks[i]];
                    if (u->end - u->start == len && memcmp(j->src + u->start, p, len) == 0) {
                        *dup = k;
                        return 1;
                    }
                }
            seen |= bit;
            toks[m++] = k;
        }
        return 0;
    decoded:
        m = 0;
    }
    struct key_tok small[16], *kt = small;
    if (n > 16 && (kt = wd_arena_alloc(d->a, sizeof(*kt) * n)) == NULL)
        return -1;
    WD_JSON_OBJ_EACH(j, obj, k)
    {
        if (wd_json_str_decode(j, (int)k, d->a, &kt[m].key) < 0)
            return -1;
        kt[m++].tok = k;
    }
    qsort(kt, m, sizeof(*kt), key_tok_cmp); /* equal keys become neighbours, in document order */
    for (uint32_t i = 1; i < m; i++)
        if (kt[i].key.n == kt[i - 1].key.n && memcmp(kt[i].key.p, kt[i - 1].key.p, kt[i].key.n) == 0) {
            *dup = kt[i].tok;
            return 1;
        }
    return 0;
}

/* "messages.3.content.1.input" for token t, walking down from the root. */
static void token_path(const struct wd_json *j, uint32_t t, char *out, size_t cap)
{
    size_t n = 0;
    uint32_t cur = 0;
    out[0] = '\0';
    while (cur != t && (j->t[cur].type == WD_J_OBJ || j->t[cur].type == WD_J_ARR)) {
        uint32_t next = cur;
        char seg[72];
        if (j->t[cur].type == WD_J_OBJ) {
            WD_JSON_OBJ_EACH(j, cur, k)
            {
                if (k + 1 <= t && t < j->t[k + 1].next) {
                    struct wd_arena a = {0};
                    struct wd_str key = WD_STR_NULL;
                    char sk[65];
                    wd_json_str_decode(j, (int)k, &a, &key);
                    snprintf(seg, sizeof(seg), "%s", safe_key(key, sk));
                    wd_arena_free(&a);
                    next = k + 1;
                    break;
                }
            }
        } else {
            long long idx = 0;
            WD_JSON_ARR_EACH(j, cur, e)
            {
                if (e <= t && t < j->t[e].next) {
                    snprintf(seg, sizeof(seg), "%lld", idx);
                    next = e;
                    break;
                }
                idx++;
            }
        }
        if (next == cur)
            break;
        int w = snprintf(out + n, cap - n, "%s%s", n ? "." : "", seg);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
        cur = next;
    }
}

/* Checks the objects in the subtree of token c, depth first (at most WD_JSON_MAX_DEPTH deep). Tool schemas
 * (input_schema) are skipped: JSON Schema handed to the provider as it is, which no policy reads, and most
 * of a Claude Code request's keys; checking them cost about 10% of the decoding time. */
static int no_dup_in(struct dec *d, uint32_t c)
{
    const struct wd_json *j = d->j;
    const struct wd_jtok *t = &j->t[c];
    if (t->type == WD_J_ARR) {
        if (t->next - c - 1 == t->size)
            return 0; /* primitives only */
        for (uint32_t e = c + 1; e < t->next; e = j->t[e].next)
            if (j->t[e].type <= WD_J_ARR && no_dup_in(d, e) < 0)
                return -1;
        return 0;
    }
    uint32_t dup = 0;
    int r = t->size < 2 ? 0 : find_dup_key(d, (int)c, &dup);
    if (r < 0) {
        wd_error_set(d->err, WD_ERR_API, "out of memory");
        return -1;
    }
    if (r > 0) {
        char path[160];
        token_path(j, dup + 1, path, sizeof(path));
        FAIL(d, "%s: duplicate key (a key may appear once in an object)", path);
    }
    if (t->next - c - 1 == 2 * t->size)
        return 0; /* primitive members only */
    WD_JSON_OBJ_EACH(j, c, k)
    {
        uint32_t v = k + 1;
        if (j->t[v].type <= WD_J_ARR && !key_is(j, k, "input_schema") && no_dup_in(d, v) < 0)
            return -1;
    }
    return 0;
}

static int decode_tool_result(struct dec *d, int blk, struct wd_part *p, const char *path)
{
    const struct wd_json *j = d->j;
    p->type = WD_PART_TOOL_RESULT;
    char ip[160];
    path_cat(ip, sizeof(ip), path, ".tool_use_id", -1);
    if (decode_tool_id(d, wd_json_get(j, blk, "tool_use_id"), p, ip) < 0)
        return -1;
    int err = wd_json_get(j, blk, "is_error");
    if (err >= 0) {
        if (wd_json_type(j, err) != WD_J_TRUE && wd_json_type(j, err) != WD_J_FALSE)
            FAIL(d, "%s.is_error: expected a boolean", path);
        p->is_error = wd_json_type(j, err) == WD_J_TRUE;
    }
    int c = wd_json_get(j, blk, "content");
    if (c < 0)
        return 0;
    if (wd_json_type(j, c) == WD_J_STR) {
        p->content = wd_arena_zalloc(d->a, sizeof(*p->content));
        if (p->content == NULL)
            return -1;
        p->content[0].type = WD_PART_TEXT;
        p->content[0].text = wd_json_raw(j, c);
        p->ncontent = 1;
        return 0;
    }
    if (wd_json_type(j, c) != WD_J_ARR)
        FAIL(d, "%s.content: expected a string or an array", path);
    p->content = wd_arena_zalloc(d->a, sizeof(*p->content) * (j->t[c].size + 1));
    if (p->content == NULL)
        return -1;
    int idx = 0;
    WD_JSON_ARR_EACH(j, c, e)
    {
        char sub[160];
        path_cat(sub, sizeof(sub), path, ".content.", idx++);
        if (decode_block(d, (int)e, &p->content[p->ncontent], WD_ROLE_USER, true, sub) < 0)
            return -1;
        p->ncontent++;
    }
    return 0;
}

static int decode_block(struct dec *d, int blk, struct wd_part *p, enum wd_role role, bool in_tool_result,
                        const char *path)
{
    const struct wd_json *j = d->j;
    if (wd_json_type(j, blk) != WD_J_OBJ)
        FAIL(d, "%s: expected an object", path);
    int type = wd_json_get(j, blk, "type");
    if (wd_json_type(j, type) != WD_J_STR)
        FAIL(d, "%s.type: required", path);
    if (wd_json_str_eq(j, type, "text")) {
        p->type = WD_PART_TEXT;
        return raw_str(d, wd_json_get(j, blk, "text"), &p->text, path, "text");
    }
    if (wd_json_str_eq(j, type, "image") || wd_json_str_eq(j, type, "document")) {
        p->type = wd_json_str_eq(j, type, "image") ? WD_PART_IMAGE : WD_PART_DOCUMENT;
        return decode_media(d, blk, p, path);
    }
    if (in_tool_result)
        FAIL(d, "%s.type: a tool result may hold text, image and document blocks only", path);
    if (wd_json_str_eq(j, type, "tool_use")) {
        if (role != WD_ROLE_ASSISTANT)
            FAIL(d, "%s: tool_use blocks belong to assistant messages", path);
        p->type = WD_PART_TOOL_CALL;
        char ip[160];
        path_cat(ip, sizeof(ip), path, ".id", -1);
        if (decode_tool_id(d, wd_json_get(j, blk, "id"), p, ip) < 0 || tool_id_signature(d, p) < 0 ||
            decode_name(d, wd_json_get(j, blk, "name"), &p->name, path, "name") < 0)
            return -1;
        int in = wd_json_get(j, blk, "input");
        if (wd_json_type(j, in) != WD_J_OBJ)
            FAIL(d, "%s.input: expected an object", path);
        p->args = wd_json_raw(j, in);
        return 0;
    }
    if (wd_json_str_eq(j, type, "tool_result")) {
        if (role != WD_ROLE_USER)
            FAIL(d, "%s: tool_result blocks belong to user messages", path);
        return decode_tool_result(d, blk, p, path);
    }
    if (wd_json_str_eq(j, type, "thinking")) {
        if (role != WD_ROLE_ASSISTANT)
            FAIL(d, "%s: thinking blocks belong to assistant messages", path);
        p->type = WD_PART_THINKING;
        if (raw_str(d, wd_json_get(j, blk, "thinking"), &p->text, path, "thinking") < 0)
            return -1;
        int sig = wd_json_get(j, blk, "signature");
        if (sig >= 0 && decode_str(d, sig, &p->signature, path, "signature") < 0)
            return -1;
        return 0;
    }
    if (wd_json_str_eq(j, type, "redacted_thinking")) {
        if (role != WD_ROLE_ASSISTANT)
            FAIL(d, "%s: redacted_thinking blocks belong to assistant messages", path);
        p->type = WD_PART_SIGNATURE;
        return decode_str(d, wd_json_get(j, blk, "data"), &p->signature, path, "data");
    }
    FAIL(d, "%s.type: unsupported content block type", path);
}

/* c is a message's content (path names it, e.g. "messages.3.content") or the system array. */
static int decode_content(struct dec *d, int c, struct wd_msg *m, const char *path)
{
    const struct wd_json *j = d->j;
    if (wd_json_type(j, c) == WD_J_STR) {
        m->parts = wd_arena_zalloc(d->a, sizeof(*m->parts));
        if (m->parts == NULL)
            return -1;
        m->parts[0].type = WD_PART_TEXT;
        m->parts[0].text = wd_json_raw(j, c);
        m->nparts = 1;
        return 0;
    }
    if (wd_json_type(j, c) != WD_J_ARR)
        FAIL(d, "%s: expected a string or an array", path);
    m->parts = wd_arena_zalloc(d->a, sizeof(*m->parts) * (j->t[c].size + 1));
    if (m->parts == NULL)
        return -1;
    int idx = 0;
    WD_JSON_ARR_EACH(j, c, e)
    {
        char sub[128];
        path_cat(sub, sizeof(sub), path, ".", idx++);
        struct wd_part *p = &m->parts[m->nparts];
        if (decode_block(d, (int)e, p, m->role, false, sub) < 0)
            return -1;
        /* Thinking from another model (or another gateway) cannot be handed to this provider; only
         * signatures Warden issued are carried back. */
        if ((p->type == WD_PART_THINKING || p->type == WD_PART_SIGNATURE)) {
            if (!wd_str_has_prefix(p->signature, WD_SIG_PREFIX)) {
                if (p->type == WD_PART_SIGNATURE)
                    continue;
                p->signature = WD_STR_NULL;
            } else {
                p->signature.p += sizeof(WD_SIG_PREFIX) - 1;
                p->signature.n -= sizeof(WD_SIG_PREFIX) - 1;
            }
        }
        if (m->role == WD_ROLE_SYSTEM && p->type != WD_PART_TEXT)
            FAIL(d, "%s: a system message may hold text only", sub);
        m->nparts++;
    }
    return 0;
}

static int decode_tools(struct dec *d, int tools, struct wd_request *req)
{
    const struct wd_json *j = d->j;
    if (wd_json_type(j, tools) != WD_J_ARR)
        FAIL(d, "tools: expected an array");
    req->ntools = 0;
    req->tools = wd_arena_zalloc(d->a, sizeof(*req->tools) * (j->t[tools].size + 1));
    if (req->tools == NULL)
        return -1;
    int idx = 0;
    WD_JSON_ARR_EACH(j, tools, e)
    {
        char path[64];
        path_cat(path, sizeof(path), "tools.", "", idx++);
        if (wd_json_type(j, (int)e) != WD_J_OBJ)
            FAIL(d, "%s: expected an object", path);
        int type = wd_json_get(j, (int)e, "type");
        if (type >= 0 && !wd_json_str_eq(j, type, "custom"))
            FAIL(d, "%s.type: Anthropic server tools are not supported by this gateway", path);
        struct wd_tool *t = &req->tools[req->ntools++];
        if (decode_name(d, wd_json_get(j, (int)e, "name"), &t->name, path, "name") < 0)
            return -1;
        if (t->name.n == 0 || t->name.n > 128)
            FAIL(d, "%s.name: must be 1 to 128 characters", path);
        int desc = wd_json_get(j, (int)e, "description");
        if (desc >= 0 && raw_str(d, desc, &t->description, path, "description") < 0)
            return -1;
        int schema = wd_json_get(j, (int)e, "input_schema");
        if (wd_json_type(j, schema) != WD_J_OBJ)
            FAIL(d, "%s.input_schema: expected an object", path);
        t->schema = wd_json_raw(j, schema);
        WD_JSON_OBJ_EACH(j, (int)e, k)
        {
            if (!key_is(j, k, "name") && !key_is(j, k, "description") && !key_is(j, k, "input_schema") &&
                !key_is(j, k, "type") && !key_is(j, k, "cache_control") && !key_is(j, k, "defer_loading") &&
                !key_is(j, k, "strict") && !key_is(j, k, "eager_input_streaming") &&
                !key_is(j, k, "input_examples"))
                return extra_input(d, k, path);
        }
    }
    return 0;
}

static int decode_tool_choice(struct dec *d, int tc, struct wd_request *req)
{
    const struct wd_json *j = d->j;
    if (wd_json_type(j, tc) != WD_J_OBJ)
        FAIL(d, "tool_choice: expected an object");
    int type = wd_json_get(j, tc, "type");
    if (wd_json_str_eq(j, type, "auto"))
        req->tool_choice = WD_TOOL_CHOICE_AUTO;
    else if (wd_json_str_eq(j, type, "any"))
        req->tool_choice = WD_TOOL_CHOICE_ANY;
    else if (wd_json_str_eq(j, type, "none"))
        req->tool_choice = WD_TOOL_CHOICE_NONE;
    else if (wd_json_str_eq(j, type, "tool")) {
        req->tool_choice = WD_TOOL_CHOICE_TOOL;
        if (decode_name(d, wd_json_get(j, tc, "name"), &req->tool_choice_name, "tool_choice", "name") < 0)
            return -1;
    } else
        FAIL(d, "tool_choice.type: expected auto, any, tool or none");
    return 0;
}

static int decode_thinking(struct dec *d, int th, struct wd_request *req)
{
    const struct wd_json *j = d->j;
    if (wd_json_type(j, th) != WD_J_OBJ)
        FAIL(d, "thinking: expected an object");
    int type = wd_json_get(j, th, "type");
    if (wd_json_str_eq(j, type, "enabled")) {
        req->thinking = WD_THINKING_ENABLED;
        if (wd_json_i64(j, wd_json_get(j, th, "budget_tokens"), &req->thinking_budget) < 0 ||
            req->thinking_budget < 1)
            FAIL(d, "thinking.budget_tokens: expected a positive integer");
    } else if (wd_json_str_eq(j, type, "adaptive")) {
        req->thinking = WD_THINKING_ADAPTIVE;
    } else if (wd_json_str_eq(j, type, "disabled")) {
        req->thinking = WD_THINKING_DISABLED;
    } else {
        FAIL(d, "thinking.type: expected enabled, adaptive or disabled");
    }
    int disp = wd_json_get(j, th, "display");
    if (disp >= 0)
        req->thinking_hidden = wd_json_str_eq(j, disp, "omitted");
    return 0;
}

static int decode_output_config(struct dec *d, int oc, struct wd_request *req)
{
    const struct wd_json *j = d->j;
    if (wd_json_type(j, oc) != WD_J_OBJ)
        FAIL(d, "output_config: expected an object");
    WD_JSON_OBJ_EACH(j, oc, k)
    {
        int v = (int)k + 1;
        if (key_is(j, k, "effort")) {
            if (wd_json_str_eq(j, v, "low"))
                req->effort = WD_EFFORT_LOW;
            else if (wd_json_str_eq(j, v, "medium"))
                req->effort = WD_EFFORT_MEDIUM;
            else if (wd_json_str_eq(j, v, "high"))
                req->effort = WD_EFFORT_HIGH;
            else if (wd_json_str_eq(j, v, "max") || wd_json_str_eq(j, v, "xhigh"))
                req->effort = WD_EFFORT_MAX;
            else
                FAIL(d, "output_config.effort: expected low, medium, high or max");
        } else {
            return extra_input(d, k, "output_config");
        }
    }
    return 0;
}

/* Every tool_result must answer a tool_use of the assistant message just before it, and every tool_use
 * must be answered in the next user message, as the Anthropic API requires. */
static int link_tool_results(struct dec *d, struct wd_request *req)
{
    for (size_t mi = 0; mi < req->nmsgs; mi++) {
        struct wd_msg *m = &req->msgs[mi];
        for (size_t pi = 0; pi < m->nparts; pi++) {
            struct wd_part *p = &m->parts[pi];
            if (p->type != WD_PART_TOOL_RESULT)
                continue;
            struct wd_part *call = NULL;
            for (size_t back = mi; back-- > 0 && call == NULL;) {
                struct wd_msg *pm = &req->msgs[back];
                if (pm->role != WD_ROLE_ASSISTANT)
                    continue;
                for (size_t k = 0; k < pm->nparts; k++)
                    if (pm->parts[k].type == WD_PART_TOOL_CALL && pm->parts[k].id.n == p->id.n &&
                        memcmp(pm->parts[k].id.p, p->id.p, p->id.n) == 0) {
                        call = &pm->parts[k];
                        break;
                    }
                break; /* only the nearest assistant message may hold the call */
            }
            if (call == NULL)
                FAIL(d, "messages.%zu.content.%zu: tool_result.tool_use_id has no matching tool_use block in the "
                        "previous assistant message", mi, pi);
            p->name = call->name;
        }
    }
    return 0;
}

int wd_anthropic_parse_request(const char *body, size_t len, bool count_tokens, struct wd_arena *a,
                               struct wd_json *j, struct wd_request *req, struct wd_error *err)
{
    struct dec dd = {j, a, err}, *d = &dd;
    *req = (struct wd_request){0};
    req->max_tokens = -1;
    req->temperature = NAN;
    req->top_p = NAN;
    req->top_k = -1;
    req->thinking_budget = -1;

    if (wd_json_parse(j, body, len) < 0)
        FAIL(d, "request body is not valid JSON: %s at byte %zu", j->err, j->err_off);
    if (j->t[0].type != WD_J_OBJ)
        FAIL(d, "request body must be a JSON object");
    if (no_dup_in(d, 0) < 0)
        return -1;
    /* the head: what routing, the relay and the spans read */
    int model = -1;
    WD_JSON_OBJ_EACH(j, 0, k)
    {
        int v = (int)k + 1;
        if (key_is(j, k, "model")) {
            model = v;
        } else if (key_is(j, k, "max_tokens")) {
            if (wd_json_i64(j, v, &req->max_tokens) < 0 || req->max_tokens < 1)
                FAIL(d, "max_tokens: expected a positive integer");
        } else if (key_is(j, k, "stream")) {
            if (wd_json_type(j, v) != WD_J_TRUE && wd_json_type(j, v) != WD_J_FALSE)
                FAIL(d, "stream: expected a boolean");
            req->stream = wd_json_type(j, v) == WD_J_TRUE;
        }
    }
    if (decode_name(d, model, &req->model, "model", NULL) < 0)
        return -1;
    if (req->model.n == 0 || req->model.n > 256)
        FAIL(d, "model: must be 1 to 256 characters");
    if (req->max_tokens < 0 && !count_tokens)
        FAIL(d, "max_tokens: Field required");
    return 0;
}

int wd_anthropic_decode_parsed(bool count_tokens, struct wd_arena *a, const struct wd_json *j, struct wd_request *req,
                               struct wd_error *err)
{
    struct dec dd = {j, a, err}, *d = &dd;
    int messages = -1;
    WD_JSON_OBJ_EACH(j, 0, k)
    {
        int v = (int)k + 1;
        if (key_is(j, k, "model") || key_is(j, k, "max_tokens") || key_is(j, k, "stream")) {
            continue; /* the head (wd_anthropic_parse_request) */
        } else if (key_is(j, k, "messages")) {
            messages = v;
        } else if (key_is(j, k, "system")) {
            if (wd_json_type(j, v) == WD_J_STR) {
                req->system = wd_arena_zalloc(a, sizeof(*req->system));
                if (req->system == NULL)
                    goto oom;
                req->system[0].type = WD_PART_TEXT;
                req->system[0].text = wd_json_raw(j, v);
                req->nsystem = 1;
            } else if (wd_json_type(j, v) == WD_J_ARR) {
                struct wd_msg m = {.role = WD_ROLE_SYSTEM};
                if (decode_content(d, v, &m, "system") < 0)
                    return -1;
                req->system = m.parts;
                req->nsystem = 0;
                /* Claude Code's billing line is for Anthropic's accounting, not an instruction: dropped. */
                for (size_t i = 0; i < m.nparts; i++)
                    if (!wd_str_has_prefix(m.parts[i].text, "x-anthropic-billing-header:"))
                        req->system[req->nsystem++] = m.parts[i];
            } else {
                FAIL(d, "system: expected a string or an array of text blocks");
            }
        } else if (key_is(j, k, "temperature")) {
            if (wd_json_double(j, v, &req->temperature) < 0 || req->temperature < 0 || req->temperature > 1)
                FAIL(d, "temperature: expected a number from 0 to 1");
        } else if (key_is(j, k, "top_p")) {
            if (wd_json_double(j, v, &req->top_p) < 0 || req->top_p < 0 || req->top_p > 1)
                FAIL(d, "top_p: expected a number from 0 to 1");
        } else if (key_is(j, k, "top_k")) {
            if (wd_json_i64(j, v, &req->top_k) < 0 || req->top_k < 0)
                FAIL(d, "top_k: expected a non-negative integer");
        } else if (key_is(j, k, "stop_sequences")) {
            if (wd_json_type(j, v) != WD_J_ARR)
                FAIL(d, "stop_sequences: expected an array of strings");
            req->nstop = 0;
            req->stop = wd_arena_zalloc(a, sizeof(*req->stop) * (j->t[v].size + 1));
            if (req->stop == NULL)
                goto oom;
            WD_JSON_ARR_EACH(j, v, e)
            {
                char sp[48];
                path_cat(sp, sizeof(sp), "stop_sequences.", "", (long long)req->nstop);
                if (decode_str(d, (int)e, &req->stop[req->nstop], sp, NULL) < 0)
                    return -1;
                /* Warden matches stop sequences itself (api/stop.h); these bounds keep that cheap */
                if (req->stop[req->nstop].n == 0 || req->stop[req->nstop].n > WD_STOP_MAX_LEN)
                    FAIL(d, "%s: must be 1 to %d bytes", sp, WD_STOP_MAX_LEN);
                if (++req->nstop > WD_STOP_MAX_SEQUENCES)
                    FAIL(d, "stop_sequences: at most %d sequences are supported", WD_STOP_MAX_SEQUENCES);
            }
        } else if (key_is(j, k, "tools")) {
            if (decode_tools(d, v, req) < 0)
                return -1;
        } else if (key_is(j, k, "tool_choice")) {
            if (decode_tool_choice(d, v, req) < 0)
                return -1;
        } else if (key_is(j, k, "thinking")) {
            if (decode_thinking(d, v, req) < 0)
                return -1;
        } else if (key_is(j, k, "output_config")) {
            if (decode_output_config(d, v, req) < 0)
                return -1;
        } else if (!top_level_dropped(j, k)) {
            return extra_input(d, k, NULL);
        }
    }
    if (req->max_tokens < 0)
        req->max_tokens = 1;
    if (messages < 0 || wd_json_type(j, messages) != WD_J_ARR)
        FAIL(d, "messages: Field required (an array)");
    if (j->t[messages].size == 0)
        FAIL(d, "messages: at least one message is required");

    req->msgs = wd_arena_zalloc(a, sizeof(*req->msgs) * j->t[messages].size);
    if (req->msgs == NULL)
        goto oom;
    int idx = 0;
    WD_JSON_ARR_EACH(j, messages, e)
    {
        char path[48];
        path_cat(path, sizeof(path), "messages.", "", idx++);
        if (wd_json_type(j, (int)e) != WD_J_OBJ)
            FAIL(d, "%s: expected an object", path);
        struct wd_msg *m = &req->msgs[req->nmsgs];
        int role = wd_json_get(j, (int)e, "role");
        if (wd_json_str_eq(j, role, "user"))
            m->role = WD_ROLE_USER;
        else if (wd_json_str_eq(j, role, "assistant"))
            m->role = WD_ROLE_ASSISTANT;
        else if (wd_json_str_eq(j, role, "system"))
            m->role = WD_ROLE_SYSTEM;
        else
            FAIL(d, "%s.role: expected user, assistant or system", path);
        int content = wd_json_get(j, (int)e, "content");
        if (content < 0)
            FAIL(d, "%s.content: Field required", path);
        char cpath[64];
        path_cat(cpath, sizeof(cpath), path, ".content", -1);
        if (decode_content(d, content, m, cpath) < 0)
            return -1;
        WD_JSON_OBJ_EACH(j, (int)e, k)
        {
            /* per-turn control: an effort set in the conversation applies from there on */
            if (key_is(j, k, "output_config")) {
                if (decode_output_config(d, (int)k + 1, req) < 0)
                    return -1;
            } else if (!key_is(j, k, "role") && !key_is(j, k, "content")) {
                return extra_input(d, k, path);
            }
        }
        req->nmsgs++;
    }
    return link_tool_results(d, req);
oom:
    wd_error_set(err, WD_ERR_API, "out of memory");
    return -1;
}

int wd_anthropic_decode_request(const char *body, size_t len, bool count_tokens, struct wd_arena *a,
                                struct wd_json *j, struct wd_request *req, struct wd_error *err)
{
    if (wd_anthropic_parse_request(body, len, count_tokens, a, j, req, err) < 0)
        return -1;
    return wd_anthropic_decode_parsed(count_tokens, a, j, req, err);
}
