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

static void check_watch(const char *p, size_t n)
{
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
