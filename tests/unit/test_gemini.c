/* Unit tests for the Gemini codec. Requests: the Claude Code fixtures against goldens written by an
 * independent reference (golden/make_fixture_goldens.py), compared as JSON with json-c, then every mapping
 * rule (turn merging, names, tool_choice, tool results, media, signatures, thinking per model family).
 * Responses: Gemini SSE byte streams, split at every point and with either line ending, to the exact
 * Anthropic SSE bytes; finish reasons, usage, errors, and the non-stream JSON message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "providers/gemini.h"
#include "providers/sse.h"

#include "tests/unit/unit.h"

static json_object *parse_jc(const char *p, size_t n)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, p, (int)n);
    bool ok = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!ok)
        fail_msg("not JSON: %.*s", (int)(n > 300 ? 300 : n), p);
    return o;
}

/* Compares two JSON documents after parsing (key order and whitespace do not matter). */
static void assert_json_eq(const char *got, size_t n, const char *want)
{
    json_object *g = parse_jc(got, n), *w = parse_jc(want, strlen(want));
    if (!json_object_equal(g, w))
        print_error("got:  %s\nwant: %s\n", json_object_to_json_string_ext(g, JSON_C_TO_STRING_NOSLASHESCAPE),
                    json_object_to_json_string_ext(w, JSON_C_TO_STRING_NOSLASHESCAPE));
    assert_true(json_object_equal(g, w));
    json_object_put(g);
    json_object_put(w);
}

/* ---- requests ---- */

struct enc {
    struct wd_arena a;
    struct wd_json j;
    struct wd_request req;
    struct wd_buf out;
    struct wd_error err;
    int rc;
};

/* Decodes an Anthropic body and encodes it for model; rc is the encoder's. */
static void encode(struct enc *e, const char *body, size_t n, const char *model, bool count)
{
    memset(e, 0, sizeof(*e));
    int rc = wd_anthropic_decode_request(body, n, count, &e->a, &e->j, &e->req, &e->err);
    if (rc != 0)
        print_error("decode: %s\n", e->err.msg);
    assert_int_equal(rc, 0);
    e->rc = wd_gemini_encode_request(&e->req, (struct wd_str){model, strlen(model)}, count, &e->out, &e->err);
    if (e->rc == 0) {
        /* every output is strict JSON by Warden's own tokenizer too */
        struct wd_json j = {0};
        assert_int_equal(wd_json_parse(&j, e->out.p, e->out.n), 0);
        wd_json_free(&j);
    }
}

static void enc_free(struct enc *e)
{
    wd_buf_free(&e->out);
    wd_json_free(&e->j);
    wd_arena_free(&e->a);
}

/* Encodes body for model and compares the result with want. */
static void check_encode(const char *body, const char *model, const char *want)
{
    struct enc e;
    encode(&e, body, strlen(body), model, false);
    if (e.rc != 0)
        print_error("encode: %s\n", e.err.msg);
    assert_int_equal(e.rc, 0);
    assert_json_eq(e.out.p, e.out.n, want);
    enc_free(&e);
}

static void check_encode_fails(const char *body, const char *model, const char *msg)
{
    struct enc e;
    encode(&e, body, strlen(body), model, false);
    assert_int_equal(e.rc, -1);
    assert_int_equal(e.err.cls, WD_ERR_INVALID_REQUEST);
    assert_string_equal(e.err.msg, msg);
    enc_free(&e);
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no key %s", key);
    return v;
}

static bool contains(const struct wd_buf *b, const char *needle)
{
    return wd_str_contains((struct wd_str){b->p, b->n}, needle);
}

static const char *const forbidden_keys[] = {"cache_control", "metadata", "context_management", "defer_loading",
                                             "output_config", "max_tokens", "stream", "thinking", "type", "model",
                                             "system", "tool_choice", "input_schema", NULL};

/* Object keys from the list anywhere in o, not looking inside parametersJsonSchema. */
static int count_keys(json_object *o, const char *const *keys)
{
    int n = 0;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            n += count_keys(json_object_array_get_idx(o, i), keys);
    } else if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            for (int i = 0; keys[i]; i++)
                if (strcmp(k, keys[i]) == 0) {
                    print_error("key %s in the output\n", k);
                    n++;
                }
            if (strcmp(k, "parametersJsonSchema") != 0)
                n += count_keys(v, keys);
        }
    }
    return n;
}

static void test_fixture_goldens(void **state)
{
    static const char *fixtures[] = {"first-turn", "tool-result-turn"};
    static const char *models[] = {"gemini-2.5-pro", "gemini-3-pro-preview"};
    for (int f = 0; f < 2; f++) {
        for (int m = 0; m < 2; m++) {
            char path[256];
            size_t n, gn;
            snprintf(path, sizeof(path), GOLDEN "claude-code-%s.request.json", fixtures[f]);
            char *body = slurp(path, &n);
            snprintf(path, sizeof(path), GOLDEN "claude-code-%s.%s.json", fixtures[f], models[m]);
            char *golden = slurp(path, &gn);
            struct enc e;
            encode(&e, body, n, models[m], false);
            assert_int_equal(e.rc, 0);
            json_object *got = parse_jc(e.out.p, e.out.n), *want = parse_jc(golden, gn);
            if (!json_object_equal(got, want)) {
                FILE *o = fopen("test_gemini.actual.json", "w");
                if (o != NULL) {
                    fputs(json_object_to_json_string_ext(got, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE), o);
                    fclose(o);
                }
                fail_msg("%s differs from its golden (output written to test_gemini.actual.json)", path);
            }
            /* the properties the golden stands for, checked directly */
            json_object *sys = get(get(got, "systemInstruction"), "parts");
            assert_int_equal(json_object_array_length(sys), 2);
            for (size_t i = 0; i < 2; i++)
                assert_null(strstr(json_object_get_string(get(json_object_array_get_idx(sys, i), "text")),
                                   "x-anthropic-billing-header"));
            assert_string_equal(json_object_get_string(get(json_object_array_get_idx(sys, 0), "text")),
                                "You are a Claude agent, built on Anthropic's Claude Agent SDK.");
            json_object *contents = get(got, "contents");
            json_object *u0 = json_object_array_get_idx(contents, 0);
            assert_string_equal(json_object_get_string(get(u0, "role")), "user");
            /* user text, user text, then the system message as a reminder, in one user turn */
            json_object *parts = get(u0, "parts");
            assert_int_equal(json_object_array_length(parts), 3);
            assert_string_equal(json_object_get_string(get(json_object_array_get_idx(parts, 1), "text")),
                                "create hello.txt");
            const char *rem = json_object_get_string(get(json_object_array_get_idx(parts, 2), "text"));
            assert_memory_equal(rem, "<system-reminder>\n# Environment\n", 32);
            assert_string_equal(rem + strlen(rem) - 19, "\n</system-reminder>");
            assert_int_equal(json_object_array_length(contents), f == 0 ? 1 : 3);
            /* roles alternate */
            for (size_t i = 1; i < json_object_array_length(contents); i++)
                assert_string_not_equal(json_object_get_string(get(json_object_array_get_idx(contents, i), "role")),
                                        json_object_get_string(get(json_object_array_get_idx(contents, i - 1), "role")));
            /* tools: every input_schema verbatim as parametersJsonSchema */
            json_object *in = parse_jc(body, n);
            json_object *tools = get(in, "tools");
            json_object *decls = get(json_object_array_get_idx(get(got, "tools"), 0), "functionDeclarations");
            assert_int_equal(json_object_array_length(decls), json_object_array_length(tools));
            for (size_t i = 0; i < json_object_array_length(tools); i++) {
                json_object *t = json_object_array_get_idx(tools, i), *d = json_object_array_get_idx(decls, i);
                assert_string_equal(json_object_get_string(get(d, "name")), json_object_get_string(get(t, "name")));
                assert_true(json_object_equal(get(d, "parametersJsonSchema"), get(t, "input_schema")));
            }
            json_object *gc = get(got, "generationConfig");
            assert_int_equal(json_object_get_int(get(gc, "maxOutputTokens")), 65536); /* asked 128000 */
            json_object *tc = get(gc, "thinkingConfig");
            if (m == 0)
                assert_int_equal(json_object_get_int(get(tc, "thinkingBudget")), 8192); /* adaptive, medium */
            else
                assert_string_equal(json_object_get_string(get(tc, "thinkingLevel")), "high");
            assert_false(json_object_object_get_ex(tc, "includeThoughts", NULL)); /* display: omitted */
            if (f == 1) {
                json_object *call = json_object_array_get_idx(get(json_object_array_get_idx(contents, 1), "parts"), 0);
                json_object *resp = json_object_array_get_idx(get(json_object_array_get_idx(contents, 2), "parts"), 0);
                assert_string_equal(json_object_get_string(get(get(call, "functionCall"), "name")), "Write");
                assert_string_equal(json_object_get_string(get(get(resp, "functionResponse"), "name")), "Write");
                assert_int_equal(json_object_object_get_ex(call, "thoughtSignature", NULL), m == 1);
            }
            /* nothing Anthropic-only leaks through: no such key anywhere (schemas aside, which are the
             * client's own), no cache marker anywhere at all */
            assert_int_equal(count_keys(got, forbidden_keys), 0);
            assert_false(contains(&e.out, "cache_control"));
            assert_false(contains(&e.out, "\"ephemeral\""));
            json_object_put(in);
            json_object_put(got);
            json_object_put(want);
            enc_free(&e);
            free(body);
            free(golden);
        }
    }
}

#define R(msgs) "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[" msgs "]}"
#define RT(extra, msgs) "{\"model\":\"m\",\"max_tokens\":100," extra ",\"messages\":[" msgs "]}"
#define U(c) "{\"role\":\"user\",\"content\":" c "}"
#define A(c) "{\"role\":\"assistant\",\"content\":" c "}"
#define GC "\"generationConfig\":{\"maxOutputTokens\":100}"

static void test_turns(void **state)
{
    /* consecutive same-role messages merge; empty text is dropped (and so is a message left empty) */
    check_encode(R(U("\"a\"") "," U("[{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":\"b\"}]") ","
                   A("\"\"") "," A("\"c\"") "," A("\"d\"") "," U("\"\"") "," U("\"e\"")),
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"},{\"text\":\"b\"}]},"
                 "{\"role\":\"model\",\"parts\":[{\"text\":\"c\"},{\"text\":\"d\"}]},"
                 "{\"role\":\"user\",\"parts\":[{\"text\":\"e\"}]}]," GC "}");
    /* mid-conversation system text: a reminder merged into the adjacent user turn; empty ones vanish */
    check_encode(R(U("\"q\"") ",{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"r1\"},"
                                 "{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":\"r2\"}]},"
                                 "{\"role\":\"system\",\"content\":\"\"}," U("\"after\"")),
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"},"
                 "{\"text\":\"<system-reminder>\\nr1\\nr2\\n</system-reminder>\"},{\"text\":\"after\"}]}]," GC "}");
    /* system text in the system instruction: string, or blocks (empty ones dropped) */
    check_encode("{\"model\":\"m\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\","
                 "\"text\":\"s\\u00e9\"}],\"messages\":[" U("\"x\"") "]}",
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],"
                 "\"systemInstruction\":{\"parts\":[{\"text\":\"s\\u00e9\"}]}," GC "}");
    check_encode_fails(R(U("\"\"") "," A("[]")), "gemini-2.5-flash",
                       "messages: no content to send (all messages are empty)");
}

static void test_function_names(void **state)
{
    /* valid Gemini names pass unchanged; others map deterministically, the same way everywhere */
    char m1[65], m2[65];
    size_t n1 = wd_gemini_name_map(WD_STR("get weather!"), m1);
    size_t n2 = wd_gemini_name_map(WD_STR("get weather!"), m2);
    assert_int_equal(n1, n2);
    assert_string_equal(m1, m2);
    assert_memory_equal(m1, "f_get_weather__", 15); /* "!" -> "_", then "_" + 8 hex digits of a hash */
    assert_int_equal(n1, 14 + 9);
    assert_true(wd_gemini_name_valid((struct wd_str){m1, n1}));
    static const char *valid[] = {"Write", "mcp__github__create_issue", "a.b:c-d", "_x", "A"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        assert_true(wd_gemini_name_valid((struct wd_str){valid[i], strlen(valid[i])}));
        assert_int_equal(wd_gemini_name_map((struct wd_str){valid[i], strlen(valid[i])}, m1), strlen(valid[i]));
        assert_string_equal(m1, valid[i]);
    }
    char longname[101];
    memset(longname, 'a', 100);
    longname[100] = '\0';
    const char *invalid[] = {"", "9lives", "-x", "has space", "caf\xc3\xa9", "a/b", longname};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        struct wd_str s = {invalid[i], strlen(invalid[i])};
        assert_false(wd_gemini_name_valid(s));
        size_t n = wd_gemini_name_map(s, m1);
        assert_int_equal(n, strlen(m1));
        assert_true(n <= 64);
        assert_true(wd_gemini_name_valid((struct wd_str){m1, n}));
    }
    /* long names that differ only at the end still map apart */
    char l2[101];
    memcpy(l2, longname, sizeof(l2));
    l2[99] = 'b';
    wd_gemini_name_map((struct wd_str){longname, 100}, m1);
    wd_gemini_name_map((struct wd_str){l2, 100}, m2);
    assert_string_not_equal(m1, m2);

    wd_gemini_name_map(WD_STR("get weather!"), m1);
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]},"
             "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"%s\",\"args\":{\"c\":1}}}]},"
             "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"%s\",\"response\":{\"output\":\"r\"}}}]}],"
             "\"tools\":[{\"functionDeclarations\":[{\"name\":\"%s\",\"parametersJsonSchema\":{}},"
             "{\"name\":\"Write\",\"parametersJsonSchema\":{}}]}],"
             "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"%s\"]}}," GC "}",
             m1, m1, m1, m1);
    check_encode(RT("\"tools\":[{\"name\":\"get weather!\",\"input_schema\":{}},{\"name\":\"Write\",\"input_schema\":{}}],"
                    "\"tool_choice\":{\"type\":\"tool\",\"name\":\"get weather!\"}",
                    U("\"q\"") "," A("[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"get weather!\",\"input\":{\"c\":1}}]")
                        "," U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"r\"}]")),
                 "gemini-2.5-flash", want);
    /* two tools that map to the same Gemini name cannot both be declared */
    check_encode_fails(RT("\"tools\":[{\"name\":\"a b\",\"input_schema\":{}},{\"name\":\"a b\",\"input_schema\":{}}]",
                          U("\"q\"")),
                       "gemini-2.5-flash", "tools.1.name: duplicate tool name");
    /* more tools than the encoder keeps on its stack: every name is declared once, and a duplicate far
     * down the list is still found */
    char tools[4096], body[8192];
    for (int dup = 0; dup < 2; dup++) {
        size_t w = 0;
        for (int i = 0; i < 40; i++)
            w += (size_t)snprintf(tools + w, sizeof(tools) - w, "%s{\"name\":\"t %d\",\"input_schema\":{}}",
                                  i ? "," : "", dup && i == 37 ? 21 : i);
        snprintf(body, sizeof(body), RT("\"tools\":[%s]", U("\"q\"")), tools);
        if (dup) {
            check_encode_fails(body, "gemini-2.5-flash", "tools.37.name: duplicate tool name");
            continue;
        }
        struct enc e;
        encode(&e, body, strlen(body), "gemini-2.5-flash", false);
        assert_int_equal(e.rc, 0);
        for (int i = 0; i < 40; i++) {
            char t[16];
            snprintf(t, sizeof(t), "t %d", i);
            wd_gemini_name_map((struct wd_str){t, strlen(t)}, m1);
            snprintf(want, sizeof(want), "{\"name\":\"%s\",", m1);
            assert_non_null(memmem(e.out.p, e.out.n, want, strlen(want)));
        }
        enc_free(&e);
    }
}

static void test_tool_choice(void **state)
{
    static const struct {
        const char *tc, *cfg;
    } t[] = {
        {"{\"type\":\"auto\"}", ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}"},
        {"{\"type\":\"any\"}", ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}}"},
        {"{\"type\":\"none\"}", ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}}"},
        {"{\"type\":\"tool\",\"name\":\"Read\"}",
         ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"Read\"]}}"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char body[512], want[512];
        snprintf(body, sizeof(body),
                 RT("\"tools\":[{\"name\":\"Read\",\"description\":\"Reads \\\"files\\\"\",\"input_schema\":"
                    "{\"type\":\"object\"}}],\"tool_choice\":%s",
                    U("\"q\"")),
                 t[i].tc);
        snprintf(want, sizeof(want),
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]}],\"tools\":[{\"functionDeclarations\":"
                 "[{\"name\":\"Read\",\"description\":\"Reads \\\"files\\\"\",\"parametersJsonSchema\":"
                 "{\"type\":\"object\"}}]}]%s," GC "}",
                 t[i].cfg);
        check_encode(body, "gemini-2.5-flash", want);
    }
    /* no tools: no toolConfig (Gemini rejects one without declarations) */
    check_encode(RT("\"tool_choice\":{\"type\":\"any\"}", U("\"q\"")), "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]}]," GC "}");
    check_encode_fails(RT("\"tools\":[{\"name\":\"Read\",\"input_schema\":{}}],\"tool_choice\":{\"type\":\"tool\","
                          "\"name\":\"Write\"}",
                          U("\"q\"")),
                       "gemini-2.5-flash", "tool_choice.name: no tool of that name in tools");
}

#define CALLS A("[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Read\",\"input\":{}}," \
                "{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"Bash\",\"input\":{\"cmd\":\"ls\"}}]")

static void test_tool_results(void **state)
{
    /* functionResponse per result, named after its call, before any other part of the turn; texts joined;
     * is_error -> "error"; a system message before the results goes right after them; the rest of the
     * turn (images of the results as inlineData, the user's text) follows in message order */
    check_encode(R(U("\"q\"") "," CALLS ",{\"role\":\"system\",\"content\":\"sys\"},"
                   U("[{\"type\":\"text\",\"text\":\"note\"},"
                     "{\"type\":\"tool_result\",\"tool_use_id\":\"t2\",\"is_error\":true,\"content\":\"boom\"},"
                     "{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"l1\"},"
                     "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBO\"}},"
                     "{\"type\":\"text\",\"text\":\"l2\"}]}]")),
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]},"
                 "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"Read\",\"args\":{}}},"
                 "{\"functionCall\":{\"name\":\"Bash\",\"args\":{\"cmd\":\"ls\"}}}]},"
                 "{\"role\":\"user\",\"parts\":["
                 "{\"functionResponse\":{\"name\":\"Bash\",\"response\":{\"error\":\"boom\"}}},"
                 "{\"functionResponse\":{\"name\":\"Read\",\"response\":{\"output\":\"l1\\nl2\"}}},"
                 "{\"text\":\"<system-reminder>\\nsys\\n</system-reminder>\"},"
                 "{\"text\":\"note\"},"
                 "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBO\"}}]}]," GC "}");
    /* a result without content */
    check_encode(R(U("\"q\"") "," A("[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Read\",\"input\":{}}]") ","
                   U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\"}]")),
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]},"
                 "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"Read\",\"args\":{}}}]},"
                 "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"Read\",\"response\":{\"output\":\"\"}}}]}"
                 "]," GC "}");
}

static void test_media(void **state)
{
    check_encode(R(U("[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/webp\",\"data\":\"UklG\"}},"
                     "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.PNG?size=2#f\"}},"
                     "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"http://x.test/photo\"}},"
                     "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.gif\"}},"
                     "{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/pdf\","
                     "\"data\":\"JVBERi0xLjQ=\"}},"
                     "{\"type\":\"document\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/spec\"}},"
                     "{\"type\":\"document\",\"source\":{\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"doc\"}},"
                     "{\"type\":\"text\",\"text\":\"describe\"}]")),
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":["
                 "{\"inlineData\":{\"mimeType\":\"image/webp\",\"data\":\"UklG\"}},"
                 "{\"fileData\":{\"mimeType\":\"image/png\",\"fileUri\":\"https://x.test/a.PNG?size=2#f\"}},"
                 "{\"fileData\":{\"mimeType\":\"image/jpeg\",\"fileUri\":\"http://x.test/photo\"}},"
                 "{\"fileData\":{\"mimeType\":\"image/gif\",\"fileUri\":\"https://x.test/a.gif\"}},"
                 "{\"inlineData\":{\"mimeType\":\"application/pdf\",\"data\":\"JVBERi0xLjQ=\"}},"
                 "{\"fileData\":{\"mimeType\":\"application/pdf\",\"fileUri\":\"https://x.test/spec\"}},"
                 "{\"text\":\"doc\"},{\"text\":\"describe\"}]}]," GC "}");
}

#define SIG_ID "toolu_wdAAAAAAAAAAAAAAAAAAAA_c2lnQQ-_wA" /* carries "c2lnQQ+/wA==" */

static void test_signatures(void **state)
{
    /* thinking with its signature -> a thought part; a signature in the tool id -> thoughtSignature on the
     * call; a redacted_thinking signature after text -> on that text part */
    check_encode(R(U("\"q\"") "," A("[{\"type\":\"thinking\",\"thinking\":\"plan\",\"signature\":\"wdsig1.VEhJTks=\"},"
                                      "{\"type\":\"text\",\"text\":\"ok\"},"
                                      "{\"type\":\"redacted_thinking\",\"data\":\"wdsig1.VEVYVA==\"},"
                                      "{\"type\":\"tool_use\",\"id\":\"" SIG_ID "\",\"name\":\"Read\",\"input\":{}}]")
                   "," U("[{\"type\":\"tool_result\",\"tool_use_id\":\"" SIG_ID "\",\"content\":\"r\"}]")),
                 "gemini-2.5-pro",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]},"
                 "{\"role\":\"model\",\"parts\":[{\"text\":\"plan\",\"thought\":true,\"thoughtSignature\":\"VEhJTks=\"},"
                 "{\"text\":\"ok\",\"thoughtSignature\":\"VEVYVA==\"},"
                 "{\"functionCall\":{\"name\":\"Read\",\"args\":{}},\"thoughtSignature\":\"c2lnQQ+/wA==\"}]},"
                 "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"Read\",\"response\":{\"output\":\"r\"}}}]}],"
                 "\"generationConfig\":{\"maxOutputTokens\":100}}");
    /* a signature-only block first in the turn, or a thinking block with no text, signs the next part */
    check_encode(R(U("\"q\"") "," A("[{\"type\":\"redacted_thinking\",\"data\":\"wdsig1.QQ==\"},{\"type\":\"text\","
                                      "\"text\":\"a\"},{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"wdsig1.Qg==\"},"
                                      "{\"type\":\"text\",\"text\":\"b\"}]")),
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]},"
                 "{\"role\":\"model\",\"parts\":[{\"text\":\"a\",\"thoughtSignature\":\"QQ==\"},"
                 "{\"text\":\"b\",\"thoughtSignature\":\"Qg==\"}]}]," GC "}");
    /* Regression: a redacted_thinking block after a signed part gave that part a second thoughtSignature
     * key (found in review); it now goes to the next part of the turn, or is dropped at the turn's end */
    check_encode(R(U("\"q\"") "," A("[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"wdsig1.MQ==\"},"
                                      "{\"type\":\"redacted_thinking\",\"data\":\"wdsig1.Mg==\"},"
                                      "{\"type\":\"text\",\"text\":\"x\"},"
                                      "{\"type\":\"tool_use\",\"id\":\"" SIG_ID "\",\"name\":\"Read\",\"input\":{}},"
                                      "{\"type\":\"redacted_thinking\",\"data\":\"wdsig1.Mw==\"}]")
                   "," U("[{\"type\":\"tool_result\",\"tool_use_id\":\"" SIG_ID "\",\"content\":\"r\"}]")),
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]},"
                 "{\"role\":\"model\",\"parts\":[{\"text\":\"t\",\"thought\":true,\"thoughtSignature\":\"MQ==\"},"
                 "{\"text\":\"x\",\"thoughtSignature\":\"Mg==\"},"
                 "{\"functionCall\":{\"name\":\"Read\",\"args\":{}},\"thoughtSignature\":\"c2lnQQ+/wA==\"}]},"
                 "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"Read\",\"response\":{\"output\":\"r\"}}}]}],"
                 GC "}");
    /* Gemini 3: a call without a signature (history from another model) gets the documented bypass value,
     * on the first call of the turn only; 2.5 needs none */
    const char *body = R(U("\"q\"") "," CALLS "," U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\"},"
                                                    "{\"type\":\"tool_result\",\"tool_use_id\":\"t2\"}]"));
    static const char *tail =
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"Read\",\"response\":{\"output\":\"\"}}},"
        "{\"functionResponse\":{\"name\":\"Bash\",\"response\":{\"output\":\"\"}}}]}]," GC "}";
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]},{\"role\":\"model\",\"parts\":["
             "{\"functionCall\":{\"name\":\"Read\",\"args\":{}},\"thoughtSignature\":\"skip_thought_signature_validator\"},"
             "{\"functionCall\":{\"name\":\"Bash\",\"args\":{\"cmd\":\"ls\"}}}]},%s",
             tail);
    check_encode(body, "gemini-3-flash-preview", want);
    snprintf(want, sizeof(want),
             "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]},{\"role\":\"model\",\"parts\":["
             "{\"functionCall\":{\"name\":\"Read\",\"args\":{}}},"
             "{\"functionCall\":{\"name\":\"Bash\",\"args\":{\"cmd\":\"ls\"}}}]},%s",
             tail);
    check_encode(body, "gemini-2.5-flash", want);
    /* a real signature is never replaced by the bypass */
    struct enc e;
    const char *signed_body = R(U("\"q\"") "," A("[{\"type\":\"tool_use\",\"id\":\"" SIG_ID "\",\"name\":\"Read\","
                                                 "\"input\":{}}]") ","
                                U("[{\"type\":\"tool_result\",\"tool_use_id\":\"" SIG_ID "\"}]"));
    encode(&e, signed_body, strlen(signed_body), "gemini-3-pro-preview", false);
    assert_int_equal(e.rc, 0);
    assert_true(contains(&e.out, "\"thoughtSignature\":\"c2lnQQ+/wA==\""));
    assert_false(contains(&e.out, "skip_thought_signature_validator"));
    enc_free(&e);
}

struct think_case {
    const char *model;
    const char *thinking;  /* Anthropic fields, or "" */
    const char *config;    /* expected thinkingConfig, or NULL for none */
};

static void test_thinking(void **state)
{
    static const struct think_case t[] = {
        /* 2.5 Pro: 128..32768, dynamic -1, never 0 */
        {"gemini-2.5-pro", "\"thinking\":{\"type\":\"disabled\"}", "{\"thinkingBudget\":128}"},
        {"gemini-2.5-pro", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":50}",
         "{\"thinkingBudget\":128,\"includeThoughts\":true}"},
        {"gemini-2.5-pro", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":100000}",
         "{\"thinkingBudget\":32768,\"includeThoughts\":true}"},
        {"gemini-2.5-pro", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4096,\"display\":\"omitted\"}",
         "{\"thinkingBudget\":4096}"},
        {"gemini-2.5-pro", "\"thinking\":{\"type\":\"adaptive\"}", "{\"thinkingBudget\":-1,\"includeThoughts\":true}"},
        {"gemini-2.5-pro", "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"low\"}",
         "{\"thinkingBudget\":1024,\"includeThoughts\":true}"},
        {"gemini-2.5-pro", "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"high\"}",
         "{\"thinkingBudget\":32768,\"includeThoughts\":true}"},
        {"gemini-2.5-pro", "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"max\"}",
         "{\"thinkingBudget\":32768,\"includeThoughts\":true}"},
        {"gemini-2.5-pro", "", NULL},
        /* 2.5 Flash: 0..24576 */
        {"gemini-2.5-flash", "\"thinking\":{\"type\":\"disabled\"}", "{\"thinkingBudget\":0}"},
        {"gemini-2.5-flash", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1}",
         "{\"thinkingBudget\":1,\"includeThoughts\":true}"},
        {"gemini-2.5-flash", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":30000}",
         "{\"thinkingBudget\":24576,\"includeThoughts\":true}"},
        {"gemini-2.5-flash", "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"medium\"}",
         "{\"thinkingBudget\":8192,\"includeThoughts\":true}"},
        /* 2.5 Flash-Lite: 512..24576 or 0 */
        {"gemini-2.5-flash-lite", "\"thinking\":{\"type\":\"disabled\"}", "{\"thinkingBudget\":0}"},
        {"gemini-2.5-flash-lite", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":100}",
         "{\"thinkingBudget\":512,\"includeThoughts\":true}"},
        {"gemini-2.5-flash-lite-preview-09-2025", "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"low\"}",
         "{\"thinkingBudget\":1024,\"includeThoughts\":true}"},
        /* 3.x: thinkingLevel (pro: low/high; flash adds minimal/medium) */
        {"gemini-3-pro-preview", "\"thinking\":{\"type\":\"disabled\"}", "{\"thinkingLevel\":\"low\"}"},
        {"gemini-3-flash-preview", "\"thinking\":{\"type\":\"disabled\"}", "{\"thinkingLevel\":\"minimal\"}"},
        {"gemini-3-pro-preview", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}",
         "{\"thinkingLevel\":\"low\",\"includeThoughts\":true}"},
        {"gemini-3-pro-preview", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2049}",
         "{\"thinkingLevel\":\"high\",\"includeThoughts\":true}"},
        {"gemini-3-pro-preview", "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"low\"}",
         "{\"thinkingLevel\":\"low\",\"includeThoughts\":true}"},
        {"gemini-3-pro-preview", "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"medium\"}",
         "{\"thinkingLevel\":\"high\",\"includeThoughts\":true}"},
        {"gemini-3-flash-preview", "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"medium\"}",
         "{\"thinkingLevel\":\"medium\",\"includeThoughts\":true}"},
        {"gemini-3-flash-preview", "\"thinking\":{\"type\":\"adaptive\",\"display\":\"omitted\"}",
         "{\"thinkingLevel\":\"high\"}"},
        /* no thinking controls before 2.5 */
        {"gemini-2.0-flash", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}", NULL},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char body[512], want[512];
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"max_tokens\":100%s%s,\"messages\":[" U("\"q\"") "]}",
                 t[i].thinking[0] ? "," : "", t[i].thinking);
        if (t[i].config)
            snprintf(want, sizeof(want),
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]}],"
                     "\"generationConfig\":{\"maxOutputTokens\":100,\"thinkingConfig\":%s}}",
                     t[i].config);
        else
            snprintf(want, sizeof(want), "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]}]," GC "}");
        print_message("%s %s\n", t[i].model, t[i].thinking);
        check_encode(body, t[i].model, want);
    }
}

static void test_generation_config(void **state)
{
    /* maxOutputTokens clamped to the model's ceiling; sampling passed through; stop sequences are
     * matched by Warden (api/stop.h), never sent */
    static const struct {
        const char *model;
        int max;
    } t[] = {{"gemini-2.5-pro", 65536}, {"gemini-2.5-flash", 65536}, {"gemini-3-pro-preview", 65536},
             {"gemini-2.0-flash", 8192}, {"gemini-1.5-pro", 8192}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char want[512];
        snprintf(want, sizeof(want),
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]}],\"generationConfig\":"
                 "{\"maxOutputTokens\":%d,\"temperature\":0.5,\"topP\":0.25,\"topK\":40}}",
                 t[i].max);
        check_encode("{\"model\":\"m\",\"max_tokens\":128000,\"temperature\":0.5,\"top_p\":0.25,\"top_k\":40,"
                     "\"stop_sequences\":[\"END\"],\"messages\":[" U("\"q\"") "]}",
                     t[i].model, want);
    }
    check_encode("{\"model\":\"m\",\"max_tokens\":5,\"temperature\":0,\"messages\":[" U("\"q\"") "]}",
                 "gemini-2.5-flash",
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"q\"}]}],\"generationConfig\":"
                 "{\"maxOutputTokens\":5,\"temperature\":0}}");
    /* countTokens wraps the same request */
    struct enc e;
    const char *body = "{\"model\":\"m\",\"system\":\"s\",\"messages\":[" U("\"q\"") "]}";
    encode(&e, body, strlen(body), "gemini-2.5-flash", true);
    assert_int_equal(e.rc, 0);
    assert_json_eq(e.out.p, e.out.n,
                   "{\"generateContentRequest\":{\"model\":\"models/gemini-2.5-flash\",\"contents\":[{\"role\":\"user\","
                   "\"parts\":[{\"text\":\"q\"}]}],\"systemInstruction\":{\"parts\":[{\"text\":\"s\"}]},"
                   "\"generationConfig\":{\"maxOutputTokens\":1}}}");
    enc_free(&e);
}

static void test_model_info(void **state)
{
    struct wd_gemini_model m;
    wd_gemini_model_info(WD_STR("gemini-2.5-pro"), &m);
    assert_int_equal(m.family, 25);
    assert_false(m.can_disable);
    assert_int_equal(m.budget_min, 128);
    assert_int_equal(m.budget_max, 32768);
    wd_gemini_model_info(WD_STR("gemini-2.5-flash-lite"), &m);
    assert_true(m.can_disable);
    assert_int_equal(m.budget_min, 512);
    wd_gemini_model_info(WD_STR("gemini-2.5-flash"), &m);
    assert_int_equal(m.budget_min, 1);
    assert_int_equal(m.budget_max, 24576);
    wd_gemini_model_info(WD_STR("gemini-3-flash-preview"), &m);
    assert_int_equal(m.family, 30);
    assert_true(m.flash);
    wd_gemini_model_info(WD_STR("gemini-2.0-flash"), &m);
    assert_int_equal(m.family, 0);
    assert_int_equal(m.max_output, 8192);
}

/* ---- responses ---- */

static const struct wd_tool resp_tools[] = {
    {.name = WD_STR("Write"), .schema = WD_STR("{}")},
    {.name = WD_STR("Read"), .schema = WD_STR("{}")},
    {.name = WD_STR("get weather!"), .schema = WD_STR("{}")},
};

struct run {
    struct wd_request req;
    struct wd_arena a;
    struct wd_buf out;
    struct wd_anthropic_out enc;
    struct wd_gemini_stream dec;
    struct wd_sse sse;
};

static void run_init(struct run *r, bool stream)
{
    memset(r, 0, sizeof(*r));
    r->req.tools = (struct wd_tool *)resp_tools;
    r->req.ntools = 3;
    r->req.stream = stream;
    wd_anthropic_out_init(&r->enc, &r->out, stream, WD_STR("claude-sonnet-4-5"));
    wd_gemini_stream_init(&r->dec, &r->enc.sink, &r->req, &r->a);
}

static void run_free(struct run *r)
{
    wd_sse_free(&r->sse);
    wd_gemini_stream_free(&r->dec);
    wd_anthropic_out_free(&r->enc);
    wd_buf_free(&r->out);
    wd_arena_free(&r->a);
}

static int on_sse(void *ctx, const char *d, size_t n)
{
    wd_gemini_stream_chunk(ctx, d, n);
    return 0;
}

/* Feeds src as an SSE body split at the given offsets (sorted; may repeat) and finishes. */
static void run_stream(struct run *r, const char *src, size_t n, const size_t *splits, size_t nsplits)
{
    size_t at = 0;
    for (size_t i = 0; i <= nsplits; i++) {
        size_t to = i < nsplits ? splits[i] : n;
        assert_int_equal(wd_sse_feed(&r->sse, src + at, to - at, on_sse, &r->dec), 0);
        at = to;
    }
    assert_false(wd_sse_pending(&r->sse));
    wd_gemini_stream_finish(&r->dec);
}

static void assert_out(struct run *r, const char *want, size_t n)
{
    normalise_ids(&r->out);
    if (r->out.n != n || memcmp(r->out.p, want, n) != 0)
        print_error("got:\n%.*s\nwant:\n%.*s\n", (int)r->out.n, r->out.p, (int)n, want);
    assert_int_equal(r->out.n, n);
    assert_memory_equal(r->out.p, want, n);
}

/* Converts \r\n line ends to \n. */
static char *lf_only(const char *src, size_t n, size_t *out_n)
{
    char *o = malloc(n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!(src[i] == '\r' && i + 1 < n && src[i + 1] == '\n'))
            o[w++] = src[i];
    *out_n = w;
    return o;
}

/* The golden stream gives exactly the golden output: whole, split in two at every byte, byte by byte,
 * and with \n instead of \r\n line ends. */
static void check_stream_golden(const char *name)
{
    char path[256];
    size_t n, wn;
    snprintf(path, sizeof(path), GOLDEN "%s.gemini.sse", name);
    char *src = slurp(path, &n);
    snprintf(path, sizeof(path), GOLDEN "%s.anthropic.sse", name);
    char *want = slurp(path, &wn);
    size_t lfn;
    char *lf = lf_only(src, n, &lfn);
    assert_true(lfn < n);
    const char *inputs[2] = {src, lf};
    size_t lens[2] = {n, lfn};
    for (int v = 0; v < 2; v++) {
        for (size_t at = 0; at <= lens[v]; at++) {
            struct run r;
            run_init(&r, true);
            run_stream(&r, inputs[v], lens[v], &at, 1);
            assert_out(&r, want, wn);
            run_free(&r);
        }
        size_t *all = malloc(sizeof(size_t) * lens[v]);
        for (size_t i = 0; i < lens[v]; i++)
            all[i] = i;
        struct run r;
        run_init(&r, true);
        run_stream(&r, inputs[v], lens[v], all, lens[v]);
        assert_out(&r, want, wn);
        run_free(&r);
        free(all);
    }
    free(lf);
    free(src);
    free(want);
}

static void test_stream_thinking_text(void **state) { check_stream_golden("stream-thinking-text"); }

static void test_stream_parallel_calls(void **state)
{
    check_stream_golden("stream-parallel-calls");
    /* the two calls of the same function get distinct ids of the allowed alphabet; the first carries
     * the signature */
    size_t n;
    char *src = slurp(GOLDEN "stream-parallel-calls.gemini.sse", &n);
    struct run r;
    run_init(&r, true);
    run_stream(&r, src, n, NULL, 0);
    char ids[2][512];
    int found = 0;
    const char *p = r.out.p, *end = r.out.p + r.out.n;
    while (found < 2 && (p = memmem(p, (size_t)(end - p), "\"id\":\"toolu_", 12)) != NULL) {
        p += 6;
        const char *q = memchr(p, '"', (size_t)(end - p));
        assert_non_null(q);
        assert_true(q - p < 512);
        memcpy(ids[found], p, (size_t)(q - p));
        ids[found][q - p] = '\0';
        for (const char *c = p; c < q; c++)
            assert_true((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                        *c == '_' || *c == '-');
        found++;
        p = q;
    }
    assert_int_equal(found, 2);
    assert_string_not_equal(ids[0], ids[1]);
    assert_true(strlen(ids[0]) > 29 && ids[0][28] == '_');
    assert_int_equal(strlen(ids[1]), 28);
    run_free(&r);
    free(src);
}

/* Event recorder for checks on event fields (retryable, classes, usage). */
struct rec {
    struct wd_sink sink;
    struct wd_event ev[64];
    int n;
    char msg[256];
};

static void rec_emit(struct wd_sink *s, const struct wd_event *ev)
{
    struct rec *r = (struct rec *)s;
    if (r->n < 64)
        r->ev[r->n++] = *ev;
    if (ev->type == WD_EV_ERROR)
        snprintf(r->msg, sizeof(r->msg), "%.*s", (int)ev->message.n, ev->message.p);
}

static void feed_chunks(struct rec *r, const char *const *chunks, size_t n, bool finish)
{
    struct wd_arena a = {0};
    struct wd_gemini_stream dec;
    struct wd_request req = {.tools = (struct wd_tool *)resp_tools, .ntools = 3};
    memset(r, 0, sizeof(*r));
    r->sink.emit = rec_emit;
    wd_gemini_stream_init(&dec, &r->sink, &req, &a);
    for (size_t i = 0; i < n; i++)
        wd_gemini_stream_chunk(&dec, chunks[i], strlen(chunks[i]));
    if (finish)
        wd_gemini_stream_finish(&dec);
    wd_gemini_stream_free(&dec);
    wd_arena_free(&a);
}

static const struct wd_event *last(const struct rec *r)
{
    assert_true(r->n > 0);
    return &r->ev[r->n - 1];
}

#define TEXT_CHUNK "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}],\"role\":\"model\"},\"index\":0}]}"
#define CALL_CHUNK \
    "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"Read\",\"args\":{}}}],\"role\":\"model\"}}]}"
#define FINISH(r) "{\"candidates\":[{\"finishReason\":\"" r "\",\"index\":0}]}"

static void test_finish_reasons(void **state)
{
    static const struct {
        const char *reason;
        bool call;
        enum wd_stop_reason want;
    } t[] = {
        {"STOP", false, WD_STOP_END_TURN},
        {"STOP", true, WD_STOP_TOOL_USE},
        {"MAX_TOKENS", false, WD_STOP_MAX_TOKENS},
        {"MAX_TOKENS", true, WD_STOP_MAX_TOKENS},
        {"SAFETY", false, WD_STOP_REFUSAL},
        {"RECITATION", false, WD_STOP_REFUSAL},
        {"LANGUAGE", false, WD_STOP_REFUSAL},
        {"BLOCKLIST", false, WD_STOP_REFUSAL},
        {"PROHIBITED_CONTENT", false, WD_STOP_REFUSAL},
        {"SPII", false, WD_STOP_REFUSAL},
        {"IMAGE_SAFETY", false, WD_STOP_REFUSAL},
        {"OTHER", false, WD_STOP_END_TURN},
        {"FINISH_REASON_UNSPECIFIED", false, WD_STOP_END_TURN},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char fin[128];
        snprintf(fin, sizeof(fin), FINISH("%s"), t[i].reason);
        const char *chunks[] = {t[i].call ? CALL_CHUNK : TEXT_CHUNK, fin};
        struct rec r;
        feed_chunks(&r, chunks, 2, true);
        assert_int_equal(last(&r)->type, WD_EV_MESSAGE_STOP);
        if (last(&r)->stop_reason != t[i].want)
            print_error("%s\n", t[i].reason);
        assert_int_equal(last(&r)->stop_reason, t[i].want);
        assert_int_equal(r.ev[0].type, WD_EV_MESSAGE_START);
    }
    /* a refusal with no content at all still makes a whole message */
    const char *blocked[] = {"{\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,\"safetyRatings\":[{\"category\":"
                             "\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"HIGH\",\"blocked\":true}]}]}"};
    struct rec r;
    feed_chunks(&r, blocked, 1, true);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.ev[0].type, WD_EV_MESSAGE_START);
    assert_int_equal(r.ev[1].stop_reason, WD_STOP_REFUSAL);
    /* a blocked prompt (no candidates) */
    const char *prompt[] = {"{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},\"usageMetadata\":"
                            "{\"promptTokenCount\":7,\"totalTokenCount\":7}}"};
    feed_chunks(&r, prompt, 1, true);
    assert_int_equal(last(&r)->stop_reason, WD_STOP_REFUSAL);
    assert_int_equal(last(&r)->usage.input_tokens, 7);
    /* MALFORMED_FUNCTION_CALL: an error, retryable only while nothing was emitted */
    const char *mf[] = {FINISH("MALFORMED_FUNCTION_CALL")};
    feed_chunks(&r, mf, 1, true);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WD_EV_ERROR);
    assert_true(r.ev[0].retryable);
    assert_int_equal(r.ev[0].error_class, WD_ERR_API);
    assert_string_equal(r.msg, "the model produced a malformed function call");
    const char *mf2[] = {TEXT_CHUNK, FINISH("MALFORMED_FUNCTION_CALL")};
    feed_chunks(&r, mf2, 2, true);
    assert_int_equal(last(&r)->type, WD_EV_ERROR);
    assert_false(last(&r)->retryable);
    for (int i = 0; i < r.n; i++)
        assert_int_not_equal(r.ev[i].type, WD_EV_MESSAGE_STOP);
    const char *ut[] = {FINISH("UNEXPECTED_TOOL_CALL")};
    feed_chunks(&r, ut, 1, true);
    assert_int_equal(last(&r)->type, WD_EV_ERROR);
    assert_false(last(&r)->retryable);
    /* no finishReason: an error, never a message_stop */
    const char *cut[] = {TEXT_CHUNK};
    feed_chunks(&r, cut, 1, true);
    assert_int_equal(last(&r)->type, WD_EV_ERROR);
    assert_int_equal(last(&r)->error_class, WD_ERR_BAD_GATEWAY);
    assert_string_equal(r.msg, "provider stream ended before the response was complete");
    for (int i = 0; i < r.n; i++)
        assert_int_not_equal(r.ev[i].type, WD_EV_MESSAGE_STOP);
}

static void test_stream_errors(void **state)
{
    /* an error object in the stream ends it with the provider's class and message */
    const char *err[] = {TEXT_CHUNK, "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\","
                                     "\"status\":\"RESOURCE_EXHAUSTED\"}}",
                         TEXT_CHUNK};
    struct rec r;
    feed_chunks(&r, err, 3, true);
    assert_int_equal(last(&r)->type, WD_EV_ERROR);
    assert_int_equal(last(&r)->error_class, WD_ERR_RATE_LIMIT);
    assert_string_equal(r.msg, "provider error (HTTP 429): Resource has been exhausted");
    /* a chunk that is not JSON */
    const char *bad[] = {"{not json"};
    feed_chunks(&r, bad, 1, true);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].error_class, WD_ERR_BAD_GATEWAY);
    assert_string_equal(r.msg, "provider sent a malformed response chunk");
    /* a call without a name */
    const char *noname[] = {"{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"args\":{}}}]}}]}"};
    feed_chunks(&r, noname, 1, true);
    assert_int_equal(last(&r)->type, WD_EV_ERROR);
    assert_string_equal(r.msg, "provider sent a function call without a name");

    /* in SSE: the client sees `event: error` after what was already sent, and no message_stop */
    struct run run;
    run_init(&run, true);
    const char *sse = "data: " TEXT_CHUNK "\r\n\r\ndata: {\"error\":{\"code\":503,\"message\":\"The model is "
                      "overloaded.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n";
    run_stream(&run, sse, strlen(sse), NULL, 0);
    assert_true(run.enc.failed);
    const char *tail = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                       "\"provider error (HTTP 503): The model is overloaded.\"}}\n\n";
    assert_true(run.out.n > strlen(tail));
    assert_memory_equal(run.out.p + run.out.n - strlen(tail), tail, strlen(tail));
    assert_false(contains(&run.out, "message_stop"));
    run_free(&run);

    /* wd_gemini_error: HTTP status -> class; credentials never blamed on the client */
    static const struct {
        int status;
        enum wd_error_class cls;
    } st[] = {{400, WD_ERR_INVALID_REQUEST}, {401, WD_ERR_API},      {403, WD_ERR_API},
              {404, WD_ERR_NOT_FOUND},       {429, WD_ERR_RATE_LIMIT}, {500, WD_ERR_API},
              {503, WD_ERR_OVERLOADED},      {504, WD_ERR_TIMEOUT}};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        struct wd_error e;
        const char *body = "{\"error\":{\"code\":0,\"message\":\"m \\u00e9\",\"status\":\"X\"}}";
        wd_gemini_error(st[i].status, body, strlen(body), &e);
        assert_int_equal(e.cls, st[i].cls);
        if (st[i].status == 401 || st[i].status == 403)
            assert_non_null(strstr(e.msg, "rejected Warden's credential"));
        else
            assert_non_null(strstr(e.msg, ": m \xc3\xa9"));
    }
    struct wd_error e;
    wd_gemini_error(502, "<html>", 6, &e);
    assert_string_equal(e.msg, "provider error (HTTP 502): no message");
    int64_t tokens = 0;
    assert_int_equal(wd_gemini_count_tokens("{\"totalTokens\":42}", 18, &tokens), 0);
    assert_int_equal(tokens, 42);
    assert_int_equal(wd_gemini_count_tokens("{}", 2, &tokens), -1);
}

static void test_usage(void **state)
{
    /* prompt - cached -> input, cached -> cache reads, candidates + thoughts -> output; early partial
     * usage is kept until complete counts arrive */
    const char *c[] = {
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}],\"usageMetadata\":{\"promptTokenCount\":1000,"
        "\"cachedContentTokenCount\":800,\"totalTokenCount\":1000}}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]}}],\"usageMetadata\":{\"candidatesTokenCount\":3}}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"c\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":"
        "{\"promptTokenCount\":1000,\"cachedContentTokenCount\":800,\"candidatesTokenCount\":20,"
        "\"thoughtsTokenCount\":12,\"totalTokenCount\":1032}}",
    };
    struct rec r;
    feed_chunks(&r, c, 3, true);
    assert_int_equal(r.ev[0].type, WD_EV_MESSAGE_START);
    assert_int_equal(r.ev[0].usage.input_tokens, 200);
    assert_int_equal(r.ev[0].usage.cache_read_tokens, 800);
    assert_int_equal(r.ev[0].usage.output_tokens, 0);
    const struct wd_event *stop = last(&r);
    assert_int_equal(stop->type, WD_EV_MESSAGE_STOP);
    assert_int_equal(stop->usage.input_tokens, 200);
    assert_int_equal(stop->usage.cache_read_tokens, 800);
    assert_int_equal(stop->usage.output_tokens, 32);
    /* every event carries the running usage (the stop-sequence filter reports it) */
    for (int i = 0; i < r.n; i++)
        assert_int_equal(r.ev[i].usage.input_tokens, 200);
    /* Regression (found in review; UBSan on fuzz_gemini_response would trap): counts near INT64_MAX
     * overflowed the sums; out-of-range counts now count as 0 */
    const char *huge[] = {"{\"candidates\":[{\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":"
                          "9223372036854775807,\"toolUsePromptTokenCount\":9223372036854775807,"
                          "\"cachedContentTokenCount\":-9223372036854775807,\"candidatesTokenCount\":"
                          "9223372036854775807,\"thoughtsTokenCount\":9223372036854775807}}"};
    feed_chunks(&r, huge, 1, true);
    assert_int_equal(last(&r)->usage.input_tokens, 0);
    assert_int_equal(last(&r)->usage.output_tokens, 0);
    assert_int_equal(last(&r)->usage.cache_read_tokens, 0);
    /* an error code out of range is a 500 */
    const char *code[] = {"{\"error\":{\"code\":99999999999,\"message\":\"x\"}}"};
    feed_chunks(&r, code, 1, true);
    assert_int_equal(last(&r)->error_class, WD_ERR_API);
    assert_string_equal(r.msg, "provider error (HTTP 500): x");
}

static void test_names_mapped_back(void **state)
{
    char gname[65], chunk[512];
    wd_gemini_name_map(WD_STR("get weather!"), gname);
    snprintf(chunk, sizeof(chunk),
             "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"%s\",\"args\":{\"city\":\"Oslo\"}}},"
             "{\"functionCall\":{\"name\":\"Unknown_fn\",\"args\":{}}}]},\"finishReason\":\"STOP\"}]}",
             gname);
    const char *c[] = {chunk};
    struct rec r;
    feed_chunks(&r, c, 1, true);
    int calls = 0;
    for (int i = 0; i < r.n; i++) {
        if (r.ev[i].type != WD_EV_PART_START || r.ev[i].part_type != WD_PART_TOOL_CALL)
            continue;
        /* the first is the client's own name; an undeclared one passes as Gemini sent it */
        assert_true(wd_str_eq(r.ev[i].name, calls == 0 ? "get weather!" : "Unknown_fn"));
        calls++;
    }
    assert_int_equal(calls, 2);
    assert_int_equal(last(&r)->stop_reason, WD_STOP_TOOL_USE);
}

static void test_whole_message(void **state)
{
    size_t n, wn;
    char *src = slurp(GOLDEN "whole-thinking-call.gemini.json", &n);
    char *want = slurp(GOLDEN "whole-thinking-call.anthropic.json", &wn);
    struct run r;
    run_init(&r, false);
    assert_int_equal(wd_gemini_stream_chunk(&r.dec, src, n), 0);
    assert_int_equal(r.out.n, 0); /* written at the end only */
    wd_gemini_stream_finish(&r.dec);
    assert_true(r.enc.finished);
    assert_false(r.enc.failed);
    assert_out(&r, want, wn);
    run_free(&r);
    free(src);
    free(want);
    /* an error body in non-stream mode leaves nothing written and the error for the caller */
    run_init(&r, false);
    const char *err = "{\"error\":{\"code\":400,\"message\":\"bad\",\"status\":\"INVALID_ARGUMENT\"}}";
    wd_gemini_stream_chunk(&r.dec, err, strlen(err));
    wd_gemini_stream_finish(&r.dec);
    assert_true(r.enc.failed);
    assert_int_equal(r.enc.error.cls, WD_ERR_INVALID_REQUEST);
    assert_int_equal(r.out.n, 0);
    run_free(&r);
}

/* A signature on answer text: before any text it is carried in a redacted_thinking block ahead of the
 * text (the next request hands it back on that text, see test_signatures); after text it is dropped, since
 * the Anthropic API never puts a thinking block after text and Claude Code prints the last text block. */
static void test_signature_parts(void **state)
{
    const char *c[] = {"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"answer\",\"thoughtSignature\":\"U0lH\"},"
                       "{\"text\":\"\",\"thoughtSignature\":\"U0lHMg==\"},{\"thoughtSignature\":\"U0lHMw==\"},"
                       "{\"text\":\"more\"}]},\"finishReason\":\"STOP\"}]}"};
    struct rec r;
    feed_chunks(&r, c, 1, true);
    static const struct {
        enum wd_event_type type;
        enum wd_part_type part;
        int index;
        const char *sig;
    } want[] = {
        {WD_EV_MESSAGE_START, 0, 0, NULL},
        {WD_EV_PART_START, WD_PART_SIGNATURE, 0, "U0lH"},
        {WD_EV_PART_STOP, WD_PART_SIGNATURE, 0, NULL},
        {WD_EV_PART_START, WD_PART_TEXT, 1, NULL},
        {WD_EV_DELTA, WD_PART_TEXT, 1, NULL},
        {WD_EV_DELTA, WD_PART_TEXT, 1, NULL},
        {WD_EV_PART_STOP, WD_PART_TEXT, 1, NULL},
        {WD_EV_MESSAGE_STOP, 0, 0, NULL},
    };
    assert_int_equal(r.n, sizeof(want) / sizeof(want[0]));
    for (int i = 0; i < r.n; i++) {
        assert_int_equal(r.ev[i].type, want[i].type);
        if (want[i].part)
            assert_int_equal(r.ev[i].part_type, want[i].part);
        if (want[i].sig)
            assert_true(wd_str_eq(r.ev[i].signature, want[i].sig));
        if (r.ev[i].type != WD_EV_MESSAGE_START && r.ev[i].type != WD_EV_MESSAGE_STOP)
            assert_int_equal(r.ev[i].index, want[i].index);
    }
    assert_true(wd_str_eq(r.ev[4].text, "answer"));
    assert_true(wd_str_eq(r.ev[5].text, "more"));
    assert_int_equal(last(&r)->stop_reason, WD_STOP_END_TURN);
}

/* Issue 14: Gemini 3 ends a streamed answer with an empty-text part holding the turn's signature (and signs
 * the last part of a whole answer). Claude Code prints the message's last text block, so that block must be
 * the answer, in both modes: no redacted_thinking after it. */
static void test_signature_after_final_text(void **state)
{
#define SIG_CHUNK(parts, fin)                                                                                   \
    "data: {\"candidates\":[{\"content\":{\"parts\":[" parts "],\"role\":\"model\"}" fin ",\"index\":0}]}\r\n\r\n"
    static const char sse[] =
        SIG_CHUNK("{\"text\":\"plan\",\"thought\":true,\"thoughtSignature\":\"VEhJTks=\"}", "")
        SIG_CHUNK("{\"text\":\"Done: notes\"}", "") SIG_CHUNK("{\"text\":\".txt edited.\"}", "")
        SIG_CHUNK("{\"text\":\"\",\"thoughtSignature\":\"TEFTVA==\"}", ",\"finishReason\":\"STOP\"");
    struct run r;
    run_init(&r, true);
    assert_int_equal(wd_sse_feed(&r.sse, sse, sizeof(sse) - 1, on_sse, &r.dec), 0);
    wd_gemini_stream_finish(&r.dec);
    assert_true(r.enc.finished);
    wd_buf_putc(&r.out, '\0');
    assert_false(contains(&r.out, "redacted_thinking"));
    assert_false(contains(&r.out, "TEFTVA=="));
    assert_true(contains(&r.out, "\"signature_delta\",\"signature\":\"wdsig1.VEhJTks=\""));
    /* the last content block opened is the text, at index 1 */
    const char *lastblk = NULL;
    for (const char *p = r.out.p; (p = memmem(p, r.out.n - (size_t)(p - r.out.p), "content_block_start", 19)) != NULL; p++)
        lastblk = p;
    assert_non_null(lastblk);
    static const char want_last[] = "content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\"";
    if (strncmp(lastblk, want_last, sizeof(want_last) - 1) != 0)
        print_error("out:\n%.*s\n", (int)r.out.n, r.out.p);
    assert_true(strncmp(lastblk, want_last, sizeof(want_last) - 1) == 0);
    run_free(&r);

    /* whole: the signature on the answer's last part (with text, and an empty one after it) */
    static const char whole[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"plan\",\"thought\":true,\"thoughtSignature\":\"VEhJTks=\"},"
        "{\"text\":\"Done: notes\"},{\"text\":\".txt edited.\",\"thoughtSignature\":\"TEFTVA==\"},"
        "{\"text\":\"\",\"thoughtSignature\":\"TEFTVDI=\"}],\"role\":\"model\"},\"finishReason\":\"STOP\"}]}";
    run_init(&r, false);
    assert_int_equal(wd_gemini_stream_chunk(&r.dec, whole, sizeof(whole) - 1), 0);
    wd_gemini_stream_finish(&r.dec);
    assert_true(r.enc.finished);
    assert_false(r.enc.failed);
    wd_buf_putc(&r.out, '\0');
    json_object *o = json_tokener_parse(r.out.p);
    assert_non_null(o);
    json_object *content = json_object_object_get(o, "content");
    assert_int_equal(json_object_array_length(content), 2);
    json_object *b0 = json_object_array_get_idx(content, 0), *b1 = json_object_array_get_idx(content, 1);
    assert_string_equal(json_object_get_string(json_object_object_get(b0, "type")), "thinking");
    assert_string_equal(json_object_get_string(json_object_object_get(b1, "type")), "text");
    assert_string_equal(json_object_get_string(json_object_object_get(b1, "text")), "Done: notes.txt edited.");
    json_object_put(o);
    run_free(&r);
#undef SIG_CHUNK
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_goldens),
        cmocka_unit_test(test_turns),
        cmocka_unit_test(test_function_names),
        cmocka_unit_test(test_tool_choice),
        cmocka_unit_test(test_tool_results),
        cmocka_unit_test(test_media),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_thinking),
        cmocka_unit_test(test_generation_config),
        cmocka_unit_test(test_model_info),
        cmocka_unit_test(test_stream_thinking_text),
        cmocka_unit_test(test_stream_parallel_calls),
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_names_mapped_back),
        cmocka_unit_test(test_whole_message),
        cmocka_unit_test(test_signature_parts),
        cmocka_unit_test(test_signature_after_final_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
