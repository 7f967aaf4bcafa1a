/* libFuzzer driver for the Anthropic provider codec: arbitrary bytes as a client body rewritten for a few
 * targets (a 0 return must give valid JSON, and rewriting that again must change nothing: every edit
 * removes its own cause), and as answer payloads for the watcher, the error map and the count reader. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/anthropic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    struct wd_str model;
    int64_t max_output;
    bool count;
} targets[] = {
    {WD_STR("claude-sonnet-4-5"), 64000, false},
    {WD_STR("m\"\\\xc3\xa9"), 1500, false},
    {WD_STR("claude-opus-4-6"), 0, true},
};

static void check_rewrite(const char *p, size_t n, size_t t)
{
    struct wd_buf out = {0};
    struct wd_anthropic_up_edits ed;
    struct wd_error err = {0};
    int rc = wd_anthropic_up_rewrite(p, n, targets[t].model, targets[t].max_output, targets[t].count, &out, &ed, &err);
    if (rc != 0) {
        if (err.cls == WD_ERR_NONE || strncmp(err.msg, "internal", 8) == 0 ||
            memchr(err.msg, '\0', sizeof err.msg) == NULL)
            __builtin_trap();
        wd_buf_free(&out);
        return;
    }
    struct wd_json j = {0};
    if (wd_json_parse(&j, out.p, out.n) != 0 || j.t[0].type != WD_J_OBJ)
        __builtin_trap();
    wd_json_free(&j);
    /* "unchanged" means exactly that: the relay then sends the client's bytes as they are */
    if (ed.unchanged != (out.n == n && memcmp(out.p, p, n) == 0))
        __builtin_trap();
    struct wd_anthropic_up_edits ed0;
    if (wd_anthropic_up_rewrite_parsed(p, n, NULL, targets[t].model, targets[t].max_output, targets[t].count, NULL,
                                       &ed0, &err) != 0 ||
        ed0.unchanged != ed.unchanged)
        __builtin_trap();
    if (ed.foreign_thinking < 0 || ed.foreign_ids < 0)
        __builtin_trap();
    struct wd_buf again = {0};
    struct wd_anthropic_up_edits ed2;
    rc = wd_anthropic_up_rewrite(out.p, out.n, targets[t].model, targets[t].max_output, targets[t].count, &again, &ed2,
                                 &err);
    if (rc != 0 || again.n != out.n || memcmp(again.p, out.p, out.n) != 0 || ed2.model || ed2.max_tokens_clamped ||
        ed2.thinking_dropped || ed2.foreign_thinking || ed2.foreign_ids)
        __builtin_trap();
    wd_buf_free(&again);
    wd_buf_free(&out);
}

static int count_member(void *ctx, int depth, struct wd_str k, int type, struct wd_str v)
{
    (void)k, (void)type, (void)v;
    if (depth != 0)
        __builtin_trap(); /* never descended */
    (*(uint32_t *)ctx)++;
    return 0;
}

/* Every member at every depth: with the tokenizer's count of keys in objects nested in objects only. */
static int count_all(void *ctx, int depth, struct wd_str k, int type, struct wd_str v)
{
    (void)depth, (void)k, (void)v;
    (*(uint32_t *)ctx)++;
    return type == WD_J_OBJ ? WD_JSON_DESCEND : 0;
}

/* Keys of object token o and of the objects that are its members' values, recursively, down to the walk's depth. */
static uint32_t objs_keys(const struct wd_json *j, int o, int depth)
{
    uint32_t n = 0;
    WD_JSON_OBJ_EACH(j, o, k)
    {
        n++;
        int v = (int)k + 1;
        if (j->t[v].type == WD_J_OBJ && depth + 1 < WD_JSON_WALK_DEPTH)
            n += objs_keys(j, v, depth + 1);
    }
    return n;
}

static void check_watch(const char *p, size_t n)
{
    /* the watcher's member walk agrees with the tokenizer on every valid object: same number of members */
    struct wd_json j = {0};
    uint32_t members = 0;
    int walked = wd_json_each_member(p, n, count_member, &members);
    if (wd_json_parse(&j, p, n) == 0 && j.t[0].type == WD_J_OBJ) {
        if (walked != 0 || members != j.t[0].size)
            __builtin_trap();
        /* descending into every object (up to the walk's depth) sees every key of an object reached through
         * objects only */
        uint32_t all = 0, want = 0;
        if (wd_json_each_member(p, n, count_all, &all) != 0)
            __builtin_trap();
        want = objs_keys(&j, 0, 0);
        if (all != want)
            __builtin_trap();
    }
    wd_json_free(&j);

    struct wd_anthropic_up_watch w = {0};
    wd_anthropic_up_watch(&w, p, n);
    /* and line by line, as SSE data payloads */
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - p) : n;
        wd_anthropic_up_watch(&w, p + i, e - i);
        i = e + 1;
    }
    if (memchr(w.model, '\0', sizeof w.model) == NULL)
        __builtin_trap();
    if (w.stop_reason > WD_STOP_REFUSAL || w.error > WD_ERR_OVERLOADED)
        __builtin_trap();
    wd_anthropic_up_watch_free(&w);

    struct wd_error err = {0};
    wd_anthropic_up_error(n ? 400 + p[0] % 200 : 500, p, n, &err);
    if (err.cls == WD_ERR_NONE || memchr(err.msg, '\0', sizeof err.msg) == NULL)
        __builtin_trap();
    int64_t count;
    (void)wd_anthropic_up_count_tokens(p, n, &count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy, so that a read past the end is caught even where the fuzzer's buffer has slack */
    char *p = malloc(size ? size : 1);
    if (p == NULL)
        return 0;
    memcpy(p, data, size);
    check_rewrite(p, size, size % 3);
    if (size > 0)
        check_rewrite(p, size, (size + 1) % 3);
    check_watch(p, size);
    free(p);
    return 0;
}
