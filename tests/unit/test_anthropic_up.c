/* Unit tests for the Anthropic provider codec (providers/anthropic.c): the rewrite is the identity on Claude
 * Code's own requests, and each edit changes exactly its bytes and leaves valid JSON; the watcher on
 * real-shaped streams and whole messages; error classes; token counts. With WD_ANTH_CHECK_DIR set, the
 * rewritten conversations are also written there for tests/fakes/anthropic_rewrite_check.mjs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "providers/anthropic.h"
#include "providers/sse.h"
#include "providers/provider.h"

#include "tests/unit/unit.h"

#define FIXTURES "../shared/fixtures/claude-code/"

static void assert_valid_json(const char *p, size_t n)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, p, (int)n);
    bool ok = json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == n;
    json_tokener_free(tok);
    json_object_put(o);
    if (!ok)
        fail_msg("not JSON: %.*s", (int)(n > 400 ? 400 : n), p);
}

/* Writes a rewritten body for the fake's validator, when asked to. */
static void save_for_check(const char *name, const struct wd_buf *b)
{
    const char *dir = getenv("WD_ANTH_CHECK_DIR");
    if (dir == NULL || *dir == '\0')
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.json", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->p, 1, b->n, f), b->n);
    fclose(f);
}

struct rw_result {
    int rc;
    struct wd_buf out;
    struct wd_anthropic_up_edits ed;
    struct wd_error err;
};

static void rewrite(struct rw_result *r, const char *in, size_t n, const char *model, int64_t max, bool count)
{
    memset(r, 0, sizeof(*r));
    r->rc = wd_anthropic_up_rewrite(in, n, (struct wd_str){model, strlen(model)}, max, count, &r->out, &r->ed,
                                    &r->err);
    if (r->rc == 0)
        assert_valid_json(r->out.p, r->out.n);
}

/* Rewrites `in` and compares with `want` byte for byte. */
static void expect(const char *in, const char *model, int64_t max, bool count, const char *want,
                   struct wd_anthropic_up_edits *ed)
{
    struct rw_result r;
    rewrite(&r, in, strlen(in), model, max, count);
    if (r.rc != 0)
        fail_msg("rewrite failed: %s", r.err.msg);
    if (r.out.n != strlen(want) || memcmp(r.out.p, want, r.out.n) != 0)
        print_error("got:  %.*s\nwant: %s\n", (int)r.out.n, r.out.p, want);
    assert_int_equal(r.out.n, strlen(want));
    assert_memory_equal(r.out.p, want, r.out.n);
    if (ed)
        *ed = r.ed;
    wd_buf_free(&r.out);
}

/* The raw bytes of a fixture's request.body (the fixture file is pretty-printed JSON: the slice keeps its
 * whitespace, which the identity must preserve too). */
static char *fixture_body(const char *file, size_t *n, char **model)
{
    size_t len;
    char *src = slurp(file, &len);
    struct wd_json j = {0};
    assert_int_equal(wd_json_parse(&j, src, len), 0);
    int body = wd_json_get(&j, wd_json_get(&j, 0, "request"), "body");
    assert_int_equal(wd_json_type(&j, body), WD_J_OBJ);
    struct wd_str raw = wd_json_raw(&j, body);
    char *p = malloc(raw.n + 1);
    memcpy(p, raw.p, raw.n);
    p[raw.n] = '\0';
    *n = raw.n;
    struct wd_str m = wd_json_raw(&j, wd_json_get(&j, body, "model"));
    *model = strndup(m.p, m.n);
    wd_json_free(&j);
    free(src);
    return p;
}

static void assert_identity(const char *name, const char *body, size_t n, const char *model)
{
    struct rw_result r;
    /* no clamp, and a ceiling the request is already under */
    for (int k = 0; k < 2; k++) {
        rewrite(&r, body, n, model, k == 0 ? 0 : 128000, false);
        if (r.rc != 0)
            fail_msg("%s: %s", name, r.err.msg);
        assert_int_equal(r.out.n, n);
        assert_memory_equal(r.out.p, body, n);
        assert_false(r.ed.model || r.ed.max_tokens_clamped || r.ed.thinking_dropped);
        assert_int_equal(r.ed.foreign_thinking + r.ed.foreign_ids, 0);
        wd_buf_free(&r.out);
    }
}

static void test_identity_on_fixtures(void **state)
{
    (void)state;
    DIR *d = opendir(FIXTURES);
    if (d == NULL)
        fail_msg("cannot open " FIXTURES " (run from the repository root, next to ../shared)");
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        char path[512], *model;
        size_t n;
        snprintf(path, sizeof(path), FIXTURES "%s", e->d_name);
        char *body = fixture_body(path, &n, &model);
        assert_identity(e->d_name, body, n, model);
        free(body);
        free(model);
        seen++;
    }
    closedir(d);
    assert_true(seen >= 2);
    /* and the compact forms, as Node's JSON.stringify writes them */
    static const char *goldens[] = {GOLDEN "claude-code-first-turn.request.json",
                                    GOLDEN "claude-code-tool-result-turn.request.json"};
    for (size_t k = 0; k < 2; k++) {
        size_t n;
        char *body = slurp(goldens[k], &n);
        assert_identity(goldens[k], body, n, "claude-opus-5-5");
        free(body);
    }
}

/* Replaces the first occurrence of `from` in *s (malloc'd) with `to`. */
static void replace(char **s, const char *from, const char *to)
{
    char *at = strstr(*s, from);
    if (at == NULL)
        fail_msg("no %s in the test body", from);
    size_t pre = (size_t)(at - *s), fl = strlen(from), tl = strlen(to), n = strlen(*s);
    char *o = malloc(n - fl + tl + 1);
    memcpy(o, *s, pre);
    memcpy(o + pre, to, tl);
    memcpy(o + pre + tl, at + fl, n - pre - fl + 1);
    free(*s);
    *s = o;
}

static char *golden_body(const char *which)
{
    char path[256];
    size_t n;
    snprintf(path, sizeof(path), GOLDEN "claude-code-%s.request.json", which);
    return slurp(path, &n);
}

static void test_model_replaced_and_clamped(void **state)
{
    (void)state;
    char *in = golden_body("tool-result-turn");
    char *want = strdup(in);
    replace(&want, "\"model\":\"claude-opus-5-5\"", "\"model\":\"claude-sonnet-4-5\"");
    struct wd_anthropic_up_edits ed;
    expect(in, "claude-sonnet-4-5", 0, false, want, &ed);
    assert_true(ed.model);
    assert_false(ed.max_tokens_clamped);

    replace(&want, "\"max_tokens\":128000", "\"max_tokens\":64000");
    expect(in, "claude-sonnet-4-5", wd_anthropic_up_max_output(WD_STR("claude-sonnet-4-5")), false, want, &ed);
    assert_true(ed.model);
    assert_true(ed.max_tokens_clamped);
    assert_false(ed.thinking_dropped); /* a native turn: the client's own thinking choices stand */
    free(want);

    /* a name that needs escaping is written as a JSON string */
    expect("{\"model\":\"x\",\"messages\":[]}", "a\"b\\c", 0, false, "{\"model\":\"a\\\"b\\\\c\",\"messages\":[]}",
           &ed);
    /* the model compares decoded: an escaped spelling of the same name is no edit */
    expect("{\"model\":\"claude\\u002dx\",\"messages\":[]}", "claude-x", 0, false,
           "{\"model\":\"claude\\u002dx\",\"messages\":[]}", &ed);
    assert_false(ed.model);
    free(in);
}

static void test_budget(void **state)
{
    (void)state;
    struct wd_anthropic_up_edits ed;
    const char *in = "{\"model\":\"m\",\"max_tokens\":100000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":80000},"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    expect(in, "m", 64000, false,
           "{\"model\":\"m\",\"max_tokens\":64000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":63999},"
           "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
           &ed);
    assert_true(ed.max_tokens_clamped);
    assert_false(ed.thinking_dropped);
    /* a budget already under the new ceiling stays */
    const char *low = "{\"model\":\"m\",\"max_tokens\":100000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2000},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    expect(low, "m", 64000, false,
           "{\"model\":\"m\",\"max_tokens\":64000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2000},"
           "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
           NULL);
    /* no room for the minimum budget of 1024: thinking goes, and the context edits that need it */
    const char *tight = "{\"model\":\"m\",\"max_tokens\":8192,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4000},"
                        "\"context_management\":{\"edits\":[{\"type\":\"clear_thinking_20251015\",\"keep\":\"all\"}]},"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    expect(tight, "m", 1000, false, "{\"model\":\"m\",\"max_tokens\":1000,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
           &ed);
    assert_true(ed.thinking_dropped);
    /* count_tokens bodies are not clamped */
    expect(in, "m", 64000, true, in, &ed);
    assert_false(ed.max_tokens_clamped);
}

#define FT(sig) "{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"" sig "\"}"
#define RT(data) "{\"type\":\"redacted_thinking\",\"data\":\"" data "\"}"
#define TXT(s) "{\"type\":\"text\",\"text\":\"" s "\"}"
#define CONV(assistant) \
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":" \
    assistant "},{\"role\":\"user\",\"content\":\"more\"}]}"

static void test_foreign_thinking_removed(void **state)
{
    (void)state;
    struct wd_anthropic_up_edits ed;
    /* first block */
    expect(CONV("[" FT("wdsig1.AAAA") "," TXT("a") "]"), "m", 0, false, CONV("[" TXT("a") "]"), &ed);
    assert_int_equal(ed.foreign_thinking, 1);
    /* middle, between Anthropic's own blocks, with whitespace kept where it belongs */
    expect(CONV("[" FT("EqAnthropic") ", " RT("wdsig1.BBBB") ", " TXT("a") "]"), "m", 0, false,
           CONV("[" FT("EqAnthropic") ", " TXT("a") "]"), &ed);
    assert_int_equal(ed.foreign_thinking, 1);
    /* last blocks: the comma before them goes */
    expect(CONV("[" TXT("a") "," FT("wdsig1.C") " , " RT("wdsig1.D") "]"), "m", 0, false, CONV("[" TXT("a") "]"), &ed);
    assert_int_equal(ed.foreign_thinking, 2);
    /* runs on both sides of a kept block */
    expect(CONV("[" FT("wdsig1.A") "," FT("wdsig1.B") "," TXT("a") "," RT("wdsig1.C") "," TXT("b") "," FT("wdsig1.E") "]"),
           "m", 0, false, CONV("[" TXT("a") "," TXT("b") "]"), &ed);
    assert_int_equal(ed.foreign_thinking, 4);
    /* the only block of a turn in the middle: a stand-in text keeps the turn non-empty */
    expect(CONV("[" FT("wdsig1.AAAA") "]"), "m", 0, false,
           CONV("[{\"type\":\"text\",\"text\":\"(thinking omitted)\"}]"), &ed);
    assert_int_equal(ed.foreign_thinking, 1);
    /* the only block of a final assistant message (a prefill): it may be empty */
    expect("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" RT(
               "wdsig1.X") "]}]}",
           "m", 0, false,
           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[]}]}",
           &ed);
    /* Anthropic's own signatures, and foreign-looking data in a user turn or a text, are left alone */
    const char *own = CONV("[" FT("wdsig2.x") "," RT("EmwKAhgB") "," TXT("wdsig1.") "]");
    expect(own, "m", 0, false, own, &ed);
    assert_int_equal(ed.foreign_thinking, 0);
}

#define WID "toolu_wdABCDEFGHIJ0123456789"
#define TU(id) "{\"type\":\"tool_use\",\"id\":\"" id "\",\"name\":\"Write\",\"input\":{}}"
#define TR(id) "{\"type\":\"tool_result\",\"tool_use_id\":\"" id "\",\"content\":\"ok\"}"

static void test_tool_ids_cut(void **state)
{
    (void)state;
    struct wd_anthropic_up_edits ed;
    /* a signed id, an id of ours without signature, one of Anthropic's: calls and their results alike */
#define TOOL_TURNS(a, b, c)                                                                                     \
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" \
    TU(a) "," TU(b) "," TU(c) "]},{\"role\":\"user\",\"content\":[" TR(a) "," TR(b) "," TR(c) "]}]}"
    const char *in = TOOL_TURNS(WID "_Ei0K-x_y", WID "0", "toolu_01ABC");
    const char *want = TOOL_TURNS(WID, WID "0", "toolu_01ABC");
    expect(in, "m", 0, false, want, &ed);
    assert_int_equal(ed.foreign_ids, 2);
    /* not our form: too short a random part, a character base64url has not */
    const char *other = CONV("[" TU("toolu_wdABC_xyz") "," TU(WID "_a.b") "]");
    expect(other, "m", 0, false, other, &ed);
    assert_int_equal(ed.foreign_ids, 0);
}

#define GEMINI_TURN(first) \
    "{\"model\":\"m\",\"max_tokens\":32000,\"thinking\":{\"type\":\"adaptive\"},\"context_management\":{\"edits\":[{" \
    "\"type\":\"clear_tool_uses_20250919\"},{\"type\":\"clear_thinking_20251015\",\"keep\":\"all\"}]},\"messages\":[{" \
    "\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" first TU(WID "_c2ln") "]},{\"role\":" \
    "\"user\",\"content\":[" TR(WID "_c2ln") "]}],\"output_config\":{\"effort\":\"high\"}}"

static void test_thinking_rule(void **state)
{
    (void)state;
    struct wd_anthropic_up_edits ed;
    /* the last turn came from Gemini through Warden: its thinking is gone, so thinking goes for this turn,
     * and with it the clear_thinking edit (the API refuses it without thinking); effort stays */
    expect(GEMINI_TURN(FT("wdsig1.c2ln") ","), "m", 0, false,
           "{\"model\":\"m\",\"max_tokens\":32000,\"context_management\":{\"edits\":[{\"type\":\"clear_tool_uses_20250919\"}]},"
           "\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" TU(WID) "]},{"
           "\"role\":\"user\",\"content\":[" TR(WID) "]}],\"output_config\":{\"effort\":\"high\"}}",
           &ed);
    assert_true(ed.thinking_dropped);
    assert_int_equal(ed.foreign_thinking, 1);
    assert_int_equal(ed.foreign_ids, 2);
    /* a Warden id without a signature (another family, no thinking at all) counts as well */
    expect(CONV("[" TXT("a") "," TU(WID) "]") , "m", 0, false, CONV("[" TXT("a") "," TU(WID) "]"), &ed);
    assert_false(ed.thinking_dropped); /* thinking is off in that body: nothing to drop */
    const char *on = "{\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},\"model\":\"m\",\"messages\":[{\"role\":"
                     "\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" TXT("a") "," TU(WID) "]}]}";
    expect(on, "m", 0, false,
           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" TXT(
               "a") "," TU(WID) "]}]}",
           &ed);
    assert_true(ed.thinking_dropped);
    /* kept when the last turn starts with Anthropic's own thinking */
    const char *own = GEMINI_TURN(FT("EqAnthropicSig") ",");
    struct rw_result r;
    rewrite(&r, own, strlen(own), "m", 0, false);
    assert_int_equal(r.rc, 0);
    assert_false(r.ed.thinking_dropped);
    assert_non_null(memmem(r.out.p, r.out.n, "\"thinking\":{\"type\":\"adaptive\"}", sizeof("\"thinking\":{\"type\":\"adaptive\"}") - 1));
    assert_non_null(memmem(r.out.p, r.out.n, "clear_thinking_20251015", sizeof("clear_thinking_20251015") - 1));
    wd_buf_free(&r.out);
    /* every context edit needs thinking: context_management goes whole */
    const char *only = "{\"model\":\"m\",\"context_management\":{\"edits\":[{\"type\":\"clear_thinking_20251015\"}]},"
                       "\"thinking\":{\"type\":\"adaptive\"},\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
                       "\"assistant\",\"content\":[" TU(WID) "]},{\"role\":\"user\",\"content\":[" TR(WID) "]}]}";
    expect(only, "m", 0, false,
           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" TU(
               WID) "]},{\"role\":\"user\",\"content\":[" TR(WID) "]}]}",
           &ed);
    assert_true(ed.thinking_dropped);
    /* the final message is the assistant's: without thinking it may hold no thinking block at all */
    const char *final = "{\"model\":\"m\",\"thinking\":{\"type\":\"adaptive\"},\"messages\":[{\"role\":\"user\",\"content\":"
                        "\"q\"},{\"role\":\"assistant\",\"content\":[" RT("wdsig1.X") "," TU(WID) "," FT("EqOwn") "]}]}";
    expect(final, "m", 0, false,
           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" TU(
               WID) "]}]}",
           &ed);
    assert_true(ed.thinking_dropped);
    /* thinking of type enabled: a native turn (Anthropic ids, no Warden trace) without a thinking block goes too:
     * Warden ran that turn without thinking after a failover, and the API would refuse the request */
    const char *native = "{\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},\"model\":\"m\",\"messages\":[{"
                         "\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" TU("toolu_01Abc") "]},{"
                         "\"role\":\"user\",\"content\":[" TR("toolu_01Abc") "]}]}";
    expect(native, "m", 0, false,
           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" TU(
               "toolu_01Abc") "]},{\"role\":\"user\",\"content\":[" TR("toolu_01Abc") "]}]}",
           &ed);
    assert_true(ed.thinking_dropped);
    /* ... but not under adaptive thinking, nor when the native turn starts with its thinking */
    const char *adaptive = "{\"thinking\":{\"type\":\"adaptive\"},\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                           "\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" TU("toolu_01Abc") "]},{\"role\":\"user\","
                           "\"content\":[" TR("toolu_01Abc") "]}]}";
    expect(adaptive, "m", 0, false, adaptive, &ed);
    assert_false(ed.thinking_dropped);
    const char *thought = "{\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},\"model\":\"m\",\"messages\":[{"
                          "\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[" FT("EqOwn") "," TU(
                              "toolu_01Abc") "]},{\"role\":\"user\",\"content\":[" TR("toolu_01Abc") "]}]}";
    expect(thought, "m", 0, false, thought, &ed);
    assert_false(ed.thinking_dropped);
    /* Claude Code's own turn without thinking (adaptive thinking may skip it) is left to the API */
    char *cc = golden_body("tool-result-turn");
    expect(cc, "claude-opus-5-5", 0, false, cc, &ed);
    assert_false(ed.thinking_dropped);
    free(cc);
}

/* Claude Code's tool-result turn as if its assistant turn had come from Gemini through Warden: a Gemini
 * thought signature on a thinking block and on the tool id. The mid-conversation system message is left
 * out: the fake does not know that role yet. `s` is the compact golden or the fixture's pretty-printed
 * body (`sep` is what stands after a colon there, `nl` what stands before a block of the turn). */
static char *gemini_conversation(char *s, const char *sep, const char *nl)
{
    struct wd_json j = {0};
    assert_int_equal(wd_json_parse(&j, s, strlen(s)), 0);
    int msgs = wd_json_get(&j, 0, "messages");
    uint32_t cut = 0, cut_end = 0;
    WD_JSON_ARR_EACH(&j, msgs, m)
    {
        if (wd_json_str_eq(&j, wd_json_get(&j, (int)m, "role"), "system")) {
            cut = j.t[m].start;
            cut_end = j.t[j.t[m].next].start;
        }
    }
    assert_true(cut > 0);
    memmove(s + cut, s + cut_end, strlen(s + cut_end) + 1);
    wd_json_free(&j);
    char from[128], to[256];
    snprintf(from, sizeof(from), "\"content\":%s[%s{", sep, nl);
    snprintf(to, sizeof(to), "\"content\":%s[%s" FT("wdsig1.Q2lnaw==") ",%s{", sep, nl, nl);
    char *tu = strstr(s, "\"tool_use\"");
    assert_non_null(tu);
    /* the content array that holds the tool_use: its last opening before it */
    char *at = NULL;
    for (char *p = strstr(s, from); p != NULL && p < tu; p = strstr(p + 1, from))
        at = p;
    assert_non_null(at);
    size_t pre = (size_t)(at - s), fl = strlen(from), tl = strlen(to), n = strlen(s);
    char *o = malloc(n - fl + tl + 1);
    memcpy(o, s, pre);
    memcpy(o + pre, to, tl);
    memcpy(o + pre + tl, at + fl, n - pre - fl + 1);
    free(s);
    snprintf(from, sizeof(from), "\"id\":%s\"toolu_01ABC\"", sep);
    snprintf(to, sizeof(to), "\"id\":%s\"" WID "_Q2lnaw\"", sep);
    replace(&o, from, to);
    snprintf(from, sizeof(from), "\"tool_use_id\":%s\"toolu_01ABC\"", sep);
    snprintf(to, sizeof(to), "\"tool_use_id\":%s\"" WID "_Q2lnaw\"", sep);
    replace(&o, from, to);
    return o;
}

static void test_gemini_conversation_to_anthropic(void **state)
{
    (void)state;
    char *in = gemini_conversation(golden_body("tool-result-turn"), "", "");
    struct rw_result r;
    rewrite(&r, in, strlen(in), "claude-sonnet-4-5", wd_anthropic_up_max_output(WD_STR("claude-sonnet-4-5")), false);
    assert_int_equal(r.rc, 0);
    assert_true(r.ed.model && r.ed.max_tokens_clamped && r.ed.thinking_dropped);
    assert_int_equal(r.ed.foreign_thinking, 1);
    assert_int_equal(r.ed.foreign_ids, 2);
    assert_null(memmem(r.out.p, r.out.n, "wdsig1.", sizeof("wdsig1.") - 1));
    assert_null(memmem(r.out.p, r.out.n, "_Q2lnaw", sizeof("_Q2lnaw") - 1));
    assert_null(memmem(r.out.p, r.out.n, "clear_thinking", sizeof("clear_thinking") - 1));
    /* what Claude Code sends beyond the messages is all still there */
    assert_non_null(memmem(r.out.p, r.out.n, "\"output_config\":{\"effort\":\"medium\"}", sizeof("\"output_config\":{\"effort\":\"medium\"}") - 1));
    assert_non_null(memmem(r.out.p, r.out.n, "\"metadata\":{\"user_id\":", sizeof("\"metadata\":{\"user_id\":") - 1));
    assert_non_null(memmem(r.out.p, r.out.n, "\"cache_control\":{\"type\":\"ephemeral\"", sizeof("\"cache_control\":{\"type\":\"ephemeral\"") - 1));
    save_for_check("gemini-origin-tool-result-turn", &r.out);
    wd_buf_free(&r.out);
    /* the control: sent unchanged but for model and max_tokens, the fake must refuse it */
    char *raw = strdup(in);
    replace(&raw, "\"model\":\"claude-opus-5-5\"", "\"model\":\"claude-sonnet-4-5\"");
    replace(&raw, "\"max_tokens\":128000", "\"max_tokens\":64000");
    struct wd_buf b = {.p = NULL};
    wd_buf_puts(&b, raw);
    save_for_check("reject-gemini-origin-unrewritten", &b);
    wd_buf_free(&b);
    free(raw);
    /* the same for a token count */
    rewrite(&r, in, strlen(in), "claude-sonnet-4-5", 64000, true);
    assert_int_equal(r.rc, 0);
    assert_non_null(memmem(r.out.p, r.out.n, "\"max_tokens\":128000", sizeof("\"max_tokens\":128000") - 1));
    wd_buf_free(&r.out);
    free(in);
}

/* The same from the fixture's pretty-printed body: the edits keep its layout valid, and what they do not
 * touch (here the whole tools list) is the client's bytes. */
static void test_gemini_conversation_pretty(void **state)
{
    (void)state;
    size_t n;
    char *model;
    char *in = gemini_conversation(fixture_body(FIXTURES "tool-result-turn.json", &n, &model), " ", "\n      ");
    free(model);
    struct rw_result r;
    rewrite(&r, in, strlen(in), "claude-sonnet-4-5", 64000, false);
    assert_int_equal(r.rc, 0);
    assert_true(r.ed.thinking_dropped);
    assert_int_equal(r.ed.foreign_thinking, 1);
    assert_int_equal(r.ed.foreign_ids, 2);
    struct wd_json j = {0};
    assert_int_equal(wd_json_parse(&j, in, strlen(in)), 0);
    struct wd_str tools = wd_json_raw(&j, wd_json_get(&j, 0, "tools"));
    assert_true(tools.n > 10000);
    assert_non_null(memmem(r.out.p, r.out.n, tools.p, tools.n));
    wd_json_free(&j);
    save_for_check("gemini-origin-pretty", &r.out);
    wd_buf_free(&r.out);
    free(in);
}

static void test_count_tokens_body(void **state)
{
    (void)state;
    struct wd_anthropic_up_edits ed;
    const char *in = "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"system\":\"s\"}";
    expect(in, "claude-haiku-4-5", 64000, true,
           "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"system\":\"s\"}", &ed);
    assert_true(ed.model);
    assert_false(ed.max_tokens_clamped);
    struct wd_buf b = {.p = NULL};
    wd_buf_puts(&b, "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"system\":\"s\"}");
    save_for_check("count-tokens", &b);
    wd_buf_free(&b);
}

static void expect_invalid(const char *in, const char *needle)
{
    struct rw_result r;
    rewrite(&r, in, strlen(in), "m", 0, false);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.err.cls, WD_ERR_INVALID_REQUEST);
    if (strstr(r.err.msg, needle) == NULL)
        fail_msg("message \"%s\" does not name \"%s\"", r.err.msg, needle);
    wd_buf_free(&r.out);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_invalid("{\"model\":\"m\",\"messages\":[}", "not valid JSON");
    expect_invalid("", "not valid JSON");
    expect_invalid("[1,2]", "expected a JSON object");
    expect_invalid("{\"model\":\"m\"}", "messages: Field required");
    expect_invalid("{\"model\":\"m\",\"messages\":{}}", "messages: Input should be a valid list");
    expect_invalid("{\"messages\":[]}", "model: Field required");
    expect_invalid("{\"model\":7,\"messages\":[]}", "model: Input should be a valid string");
    /* odd shapes inside are the API's to judge: passed through */
    const char *odd = "{\"model\":\"m\",\"messages\":[1,{\"role\":\"assistant\",\"content\":[2,{\"type\":7}]}],\"thinking\":3}";
    expect(odd, "m", 10, false, odd, NULL);
}

static void test_max_output_table(void **state)
{
    (void)state;
    assert_int_equal(wd_anthropic_up_max_output(WD_STR("claude-sonnet-4-5")), 64000);
    assert_int_equal(wd_anthropic_up_max_output(WD_STR("claude-sonnet-4-5-20250929")), 64000);
    assert_int_equal(wd_anthropic_up_max_output(WD_STR("claude-opus-4-6")), 128000);
    assert_int_equal(wd_anthropic_up_max_output(WD_STR("claude-opus-4-1-20250805")), 32000);
    assert_int_equal(wd_anthropic_up_max_output(WD_STR("claude-opus-4-20250514")), 32000);
    assert_int_equal(wd_anthropic_up_max_output(WD_STR("claude-3-haiku-20240307")), 4096);
    assert_int_equal(wd_anthropic_up_max_output(WD_STR("claude-opus-4-10")), 0);
    assert_int_equal(wd_anthropic_up_max_output(WD_STR("gpt-5")), 0);
}

/* ---- the watcher ---- */

static void feed(struct wd_anthropic_up_watch *w, const char *p) { wd_anthropic_up_watch(w, p, strlen(p)); }

static void test_watch_stream(void **state)
{
    (void)state;
    struct wd_anthropic_up_watch w = {0};
    feed(&w, "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
             "\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
             "\"input_tokens\":12,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":5000,"
             "\"cache_creation\":{\"ephemeral_5m_input_tokens\":100,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,"
             "\"service_tier\":\"standard\"}}}");
    assert_true(w.started);
    assert_false(w.done);
    assert_string_equal(w.model, "claude-sonnet-4-5-20250929");
    assert_int_equal(w.usage.input_tokens, 112);
    assert_int_equal(w.cache_creation_tokens, 100);
    assert_int_equal(w.usage.cache_read_tokens, 5000);
    assert_int_equal(w.usage.output_tokens, 1);
    feed(&w, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
    feed(&w, "{\"type\": \"ping\"}");
    /* a delta that looks like a message_delta inside its text must not count */
    feed(&w, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"{\\\"type\\\":"
             "\\\"message_delta\\\",\\\"usage\\\":{\\\"output_tokens\\\":999}}\"}}");
    feed(&w, "{\"type\":\"content_block_stop\",\"index\":0}");
    assert_int_equal(w.usage.output_tokens, 1);
    feed(&w, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{"
             "\"output_tokens\":57}}");
    assert_int_equal(w.stop_reason, WD_STOP_TOOL_USE);
    assert_int_equal(w.usage.output_tokens, 57);
    assert_int_equal(w.usage.input_tokens, 112); /* not in this delta: unchanged */
    /* newer API versions repeat the input counts in message_delta */
    feed(&w, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"input_tokens\":20,"
             "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":5000,\"output_tokens\":60}}");
    assert_int_equal(w.usage.input_tokens, 120);
    assert_int_equal(w.usage.output_tokens, 60);
    feed(&w, "{\"type\":\"message_stop\"}");
    assert_true(w.done);
    assert_int_equal(w.error, WD_ERR_NONE);
    feed(&w, "not json");
    assert_true(w.done);
    wd_anthropic_up_watch_free(&w);
}

static void test_watch_error_and_whole(void **state)
{
    (void)state;
    struct wd_anthropic_up_watch w = {0};
    feed(&w, "{\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}");
    feed(&w, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}");
    assert_int_equal(w.error, WD_ERR_OVERLOADED);
    assert_false(w.done);
    feed(&w, "{\"type\":\"error\",\"error\":{\"type\":\"brand_new_error\"}}");
    assert_int_equal(w.error, WD_ERR_API);
    wd_anthropic_up_watch_free(&w);

    struct wd_anthropic_up_watch m = {0};
    feed(&m, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[{"
             "\"type\":\"text\",\"text\":\"hi\"}],\"stop_reason\":\"max_tokens\",\"stop_sequence\":null,\"usage\":{"
             "\"input_tokens\":9,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":4,\"output_tokens\":30}}");
    assert_true(m.started && m.done);
    assert_int_equal(m.stop_reason, WD_STOP_MAX_TOKENS);
    assert_int_equal(m.usage.input_tokens, 9);
    assert_int_equal(m.usage.cache_read_tokens, 4);
    assert_int_equal(m.usage.output_tokens, 30);
    assert_string_equal(m.model, "claude-haiku-4-5");
    wd_anthropic_up_watch_free(&m);

    static const struct {
        const char *reason;
        enum wd_stop_reason want;
    } reasons[] = {
        {"end_turn", WD_STOP_END_TURN},       {"stop_sequence", WD_STOP_STOP_SEQUENCE},
        {"refusal", WD_STOP_REFUSAL},         {"pause_turn", WD_STOP_END_TURN},
        {"model_context_window_exceeded", WD_STOP_MAX_TOKENS},
    };
    for (size_t k = 0; k < sizeof(reasons) / sizeof(reasons[0]); k++) {
        struct wd_anthropic_up_watch s = {0};
        char ev[200];
        snprintf(ev, sizeof(ev), "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\"},\"usage\":{\"output_tokens\":1}}",
                 reasons[k].reason);
        feed(&s, ev);
        assert_int_equal(s.stop_reason, reasons[k].want);
        wd_anthropic_up_watch_free(&s);
    }
}

/* The watcher sees every event of every stream: content blocks and pings are not read at all, however large,
 * first by their SSE event name (the provider table's watch_skip), then by the payload's first bytes. */
static int count_event(void *ctx, const char *d, size_t n)
{
    (void)d, (void)n;
    (*(int *)ctx)++;
    return 0;
}

static void test_watch_skips_deltas_cheaply(void **state)
{
    (void)state;
    const struct wd_provider_ops *ops = wd_provider_ops_for(WD_PROVIDER_ANTHROPIC);
    assert_non_null(ops->watch_skip);
    assert_true(ops->watch_skip("content_block_delta", 19));
    assert_true(ops->watch_skip("content_block_start", 19));
    assert_true(ops->watch_skip("ping", 4));
    assert_false(ops->watch_skip("message_delta", 13));
    assert_false(ops->watch_skip("message_start", 13));
    assert_false(ops->watch_skip("error", 5));
    assert_false(ops->watch_skip("content_block_", 14)); /* the prefix alone names no event */
    static const char stream[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"x\"}}\n\n"
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":2}}\n\n";
    struct wd_sse sse = {.skip = ops->watch_skip};
    int dispatched = 0;
    assert_int_equal(wd_sse_feed(&sse, stream, sizeof(stream) - 1, count_event, &dispatched), 0);
    assert_int_equal(dispatched, 2); /* message_start and message_delta only */
    wd_sse_free(&sse);

    /* a 1 MiB payload of a skipped type that reaches the watcher anyway (no event name): nothing of it is taken,
     * a usage member included (only message_start, message_delta and whole messages carry usage) */
    size_t n = 1 << 20;
    char *big = malloc(n + 200);
    int k = snprintf(big, 200, "{\"type\":\"content_block_delta\",\"usage\":{\"output_tokens\":99},\"delta\":{\"text\":\"");
    memset(big + k, 'a', n);
    memcpy(big + k + n, "\"}}", 4);
    struct wd_anthropic_up_watch w = {0};
    wd_anthropic_up_watch(&w, big, strlen(big));
    assert_false(w.started);
    assert_int_equal(w.usage.output_tokens, 0);
    wd_anthropic_up_watch_free(&w);
    free(big);
}

/* ---- errors and counts ---- */

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *type;
        enum wd_error_class want;
    } cases[] = {
        {400, "invalid_request_error", WD_ERR_INVALID_REQUEST}, {401, "authentication_error", WD_ERR_AUTHENTICATION},
        {403, "permission_error", WD_ERR_PERMISSION},           {404, "not_found_error", WD_ERR_NOT_FOUND},
        {413, "request_too_large", WD_ERR_TOO_LARGE},           {429, "rate_limit_error", WD_ERR_RATE_LIMIT},
        {500, "api_error", WD_ERR_API},                         {529, "overloaded_error", WD_ERR_OVERLOADED},
        {504, "timeout_error", WD_ERR_TIMEOUT},                 {503, "api_error", WD_ERR_OVERLOADED},
        {418, "teapot_error", WD_ERR_INVALID_REQUEST},          {502, "who_knows", WD_ERR_BAD_GATEWAY},
        {503, "who_knows", WD_ERR_OVERLOADED},                  {500, "who_knows", WD_ERR_API},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char body[200];
        snprintf(body, sizeof(body), "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"why \\\"not\\\"\"}}",
                 cases[k].type);
        struct wd_error err = {0};
        wd_anthropic_up_error(cases[k].status, body, strlen(body), &err);
        assert_int_equal(err.cls, cases[k].want);
        assert_non_null(strstr(err.msg, "why \"not\""));
    }
    struct wd_error err = {0};
    wd_anthropic_up_error(429, "<html>", 6, &err);
    assert_int_equal(err.cls, WD_ERR_RATE_LIMIT);
    wd_anthropic_up_error(529, NULL, 0, &err);
    assert_int_equal(err.cls, WD_ERR_OVERLOADED);
    /* the reverse of api/anthropic_response.c's table, for every class it names by a type of its own */
    for (enum wd_error_class c = WD_ERR_INVALID_REQUEST; c <= WD_ERR_OVERLOADED; c++) {
        char body[200];
        snprintf(body, sizeof(body), "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"m\"}}",
                 wd_anthropic_error_type(c));
        wd_anthropic_up_error(wd_anthropic_error_status(c), body, strlen(body), &err);
        if (c != WD_ERR_UNSUPPORTED_MEDIA && c != WD_ERR_BAD_GATEWAY && c != WD_ERR_UNAVAILABLE)
            assert_int_equal(err.cls, c);
    }
}

static void test_count_tokens_answer(void **state)
{
    (void)state;
    int64_t n = 0;
    assert_int_equal(wd_anthropic_up_count_tokens("{\"input_tokens\":2095}", 21, &n), 0);
    assert_int_equal(n, 2095);
    assert_int_equal(wd_anthropic_up_count_tokens("{\"input_tokens\":\"x\"}", 20, &n), -1);
    assert_int_equal(wd_anthropic_up_count_tokens("[]", 2, &n), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_on_fixtures),
        cmocka_unit_test(test_model_replaced_and_clamped),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_foreign_thinking_removed),
        cmocka_unit_test(test_tool_ids_cut),
        cmocka_unit_test(test_thinking_rule),
        cmocka_unit_test(test_gemini_conversation_to_anthropic),
        cmocka_unit_test(test_gemini_conversation_pretty),
        cmocka_unit_test(test_count_tokens_body),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_max_output_table),
        cmocka_unit_test(test_watch_stream),
        cmocka_unit_test(test_watch_error_and_whole),
        cmocka_unit_test(test_watch_skips_deltas_cheaply),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_count_tokens_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
