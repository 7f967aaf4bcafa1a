/* Unit tests for the OpenAI Chat Completions codec: requests against golden files (WD_GOLDEN_UPDATE=1 rewrites
 * them; tests/fakes/openai_golden_check.mjs runs them past the strict fake) and rule by rule; answers, whole and
 * streamed (payload by payload, and as SSE split at every byte), as an event log; errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "providers/openai.h"
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
static void encode_opts(struct enc *e, const char *body, const char *model, const struct wd_openai_opts *o)
{
    memset(e, 0, sizeof(*e));
    int rc = wd_anthropic_decode_request(body, strlen(body), false, &e->a, &e->j, &e->req, &e->err);
    if (rc != 0)
        print_error("decode: %s\n", e->err.msg);
    assert_int_equal(rc, 0);
    e->rc = wd_openai_encode_request(&e->req, (struct wd_str){model, strlen(model)}, o, &e->out, &e->err);
    if (e->rc == 0) {
        struct wd_json j = {0};
        assert_int_equal(wd_json_parse(&j, e->out.p, e->out.n), 0);
        wd_json_free(&j);
    }
}

static void encode(struct enc *e, const char *body, const char *model) { encode_opts(e, body, model, NULL); }

static void enc_free(struct enc *e)
{
    wd_buf_free(&e->out);
    wd_json_free(&e->j);
    wd_arena_free(&e->a);
}

static void check_encode_opts(const char *body, const char *model, const struct wd_openai_opts *o, const char *want)
{
    struct enc e;
    encode_opts(&e, body, model, o);
    if (e.rc != 0)
        print_error("encode: %s\n", e.err.msg);
    assert_int_equal(e.rc, 0);
    assert_json_eq(e.out.p, e.out.n, want);
    enc_free(&e);
}

static void check_encode(const char *body, const char *model, const char *want)
{
    check_encode_opts(body, model, NULL, want);
}

static void check_encode_fails(const char *body, const char *model, const char *msg)
{
    struct enc e;
    encode(&e, body, model);
    assert_int_equal(e.rc, -1);
    assert_int_equal(e.err.cls, WD_ERR_INVALID_REQUEST);
    assert_string_equal(e.err.msg, msg);
    enc_free(&e);
}

#define R(msgs) "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[" msgs "]}"
#define RT(extra, msgs) "{\"model\":\"m\",\"max_tokens\":100," extra ",\"messages\":[" msgs "]}"
#define U(c) "{\"role\":\"user\",\"content\":" c "}"
#define A(c) "{\"role\":\"assistant\",\"content\":" c "}"
#define S(c) "{\"role\":\"system\",\"content\":" c "}"
#define IMG "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw==\"}}"
#define LONG_ID "toolu_wdAbCdEfGhIjKlMnOpQrSt_c2lnbmF0dXJlLWJ5dGVzLXRoYXQtbWFrZS1pdC1sb25n"
#define CALLS                                                                                                    \
    A("[{\"type\":\"text\",\"text\":\"Reading.\"},{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"Read\"," \
      "\"input\":{\"path\":\"a.txt\"}},{\"type\":\"tool_use\",\"id\":\"" LONG_ID "\",\"name\":\"Bash\","         \
      "\"input\":{\"cmd\":\"ls \\\"x\\\"\"}}]")
#define RESULTS                                                                                                   \
    U("[{\"type\":\"tool_result\",\"tool_use_id\":\"" LONG_ID "\",\"is_error\":true,\"content\":\"boom\"},"       \
      "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A\",\"content\":[{\"type\":\"text\",\"text\":\"l1\"}," \
      IMG ",{\"type\":\"text\",\"text\":\"l2\"}]},{\"type\":\"text\",\"text\":\"go on\"}]")
#define TOOLS                                                                                                     \
    "\"tools\":[{\"name\":\"Read\",\"description\":\"Reads a file\",\"input_schema\":{\"type\":\"object\","        \
    "\"properties\":{\"path\":{\"type\":\"string\"}},\"required\":[\"path\"]}},{\"name\":\"Bash\",\"input_schema\":" \
    "{\"type\":\"object\",\"properties\":{\"cmd\":{\"type\":\"string\"}}}},{\"name\":\"get weather!\","           \
    "\"input_schema\":{}}]"

struct golden {
    const char *name, *model, *body;
    struct wd_openai_opts opts;
    const char *file;           /* the Anthropic body comes from this fixture instead */
};

/* Each golden is a request the strict fake must accept (tests/fakes/openai_golden_check.mjs). */
static const struct golden goldens[] = {
    {"01-system", "gpt-4o",
     "{\"model\":\"m\",\"max_tokens\":100,\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"stop_sequences\":[\"X\"],"
     "\"system\":[{\"type\":\"text\",\"text\":\"You are terse.\"},{\"type\":\"text\",\"text\":\"Answer in \\u00e9.\"}],"
     "\"messages\":[" U("\"hi\"") "," A("\"hello\"") "," S("\"be brief\"") "," U("\"again\"") "]}",
     {0}, NULL},
    {"02-tools", "gpt-4.1",
     RT(TOOLS ",\"tool_choice\":{\"type\":\"tool\",\"name\":\"get weather!\"}", U("\"weather in Oslo?\"")), {0}, NULL},
    {"03-parallel-calls", "gpt-4o",
     "{\"model\":\"m\",\"max_tokens\":100000,\"stream\":true," TOOLS ",\"messages\":[" U("\"list\"") "," CALLS
     "," S("\"reminder\"") "," RESULTS "]}",
     {0}, NULL},
    {"04-images", "gpt-4o-mini",
     R(U("[{\"type\":\"text\",\"text\":\"what is this?\"}," IMG ",{\"type\":\"image\",\"source\":{\"type\":\"url\","
         "\"url\":\"https://example.com/cat.jpg\"}}]")),
     {0}, NULL},
    {"05-reasoning-budget", "gpt-5",
     "{\"model\":\"m\",\"max_tokens\":200000,\"temperature\":1,\"stream\":true,\"thinking\":{\"type\":\"enabled\","
     "\"budget_tokens\":10000},\"messages\":[" U("\"think\"") "]}",
     {0}, NULL},
    {"06-o3-adaptive", "o3",
     "{\"model\":\"m\",\"max_tokens\":50000,\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":"
     "\"max\"}," TOOLS ",\"tool_choice\":{\"type\":\"any\"},\"messages\":[" U("\"q\"") "]}",
     {0}, NULL},
    {"07-opts-override", "gpt-4o", R(U("\"q\"")), {.max_output_tokens = 64, .tokens_field = WD_TOKENS_FIELD_MAX_COMPLETION_TOKENS}, NULL},
    /* what Claude Code sends (the fixtures test_gemini uses) */
    {"08-claude-code-first-turn", "gpt-4.1", NULL, {0}, GOLDEN "claude-code-first-turn.request.json"},
    {"09-claude-code-tool-result-turn", "gpt-5", NULL, {0}, GOLDEN "claude-code-tool-result-turn.request.json"},
};

static void test_golden_requests(void **state)
{
    bool update = getenv("WD_GOLDEN_UPDATE") != NULL && strcmp(getenv("WD_GOLDEN_UPDATE"), "1") == 0;
    for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
        const struct golden *g = &goldens[i];
        char path[256];
        snprintf(path, sizeof(path), GOLDEN "openai/%s.json", g->name);
        struct enc e;
        size_t bn;
        char *fixture = g->file ? slurp(g->file, &bn) : NULL;
        encode_opts(&e, fixture ? fixture : g->body, g->model, &g->opts);
        if (e.rc != 0)
            print_error("%s: %s\n", g->name, e.err.msg);
        assert_int_equal(e.rc, 0);
        wd_buf_putc(&e.out, '\n');
        if (update) {
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(e.out.p, 1, e.out.n, f), e.out.n);
            fclose(f);
        }
        size_t n;
        char *want = slurp(path, &n);
        if (n != e.out.n || memcmp(want, e.out.p, n) != 0)
            print_error("%s differs:\ngot:  %.*s\nwant: %.*s\n(WD_GOLDEN_UPDATE=1 rewrites it)\n", path,
                        (int)(e.out.n > 2000 ? 2000 : e.out.n), e.out.p, (int)(n > 2000 ? 2000 : n), want);
        assert_int_equal(n, e.out.n);
        assert_memory_equal(want, e.out.p, n);
        free(want);
        free(fixture);
        enc_free(&e);
    }
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no key %s", key);
    return v;
}

static bool has(json_object *o, const char *key) { return json_object_object_get_ex(o, key, NULL); }

static const char *str_at(json_object *arr, size_t i, const char *key)
{
    return json_object_get_string(get(json_object_array_get_idx(arr, i), key));
}

/* The properties the parallel-calls golden stands for, checked directly. */
static void test_parallel_calls_shape(void **state)
{
    struct enc e;
    encode(&e, goldens[2].body, "gpt-4o");
    assert_int_equal(e.rc, 0);
    json_object *o = parse_jc(e.out.p, e.out.n);
    json_object *msgs = get(o, "messages");
    /* user, assistant (text + 2 calls), tool, tool, system (moved after the results), user (image + text) */
    assert_int_equal(json_object_array_length(msgs), 6);
    const char *roles[] = {"user", "assistant", "tool", "tool", "system", "user"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(str_at(msgs, i, "role"), roles[i]);
    json_object *asst = json_object_array_get_idx(msgs, 1);
    assert_string_equal(json_object_get_string(get(asst, "content")), "Reading.");
    json_object *calls = get(asst, "tool_calls");
    assert_int_equal(json_object_array_length(calls), 2);
    assert_string_equal(str_at(calls, 0, "id"), "toolu_01A");
    /* the long id became a short one, the same in the call and in its result */
    const char *mapped = str_at(calls, 1, "id");
    assert_true(strlen(mapped) <= 40);
    assert_memory_equal(mapped, "call_", 5);
    assert_string_equal(str_at(msgs, 2, "tool_call_id"), mapped);
    assert_string_equal(str_at(msgs, 3, "tool_call_id"), "toolu_01A");
    /* arguments: a string holding the input's JSON text */
    json_object *fn = get(json_object_array_get_idx(calls, 1), "function");
    assert_string_equal(json_object_get_string(get(fn, "arguments")), "{\"cmd\":\"ls \\\"x\\\"\"}");
    assert_string_equal(json_object_get_string(get(fn, "name")), "Bash");
    /* is_error: the text alone; a result's texts joined, its image in the user message that follows */
    assert_string_equal(str_at(msgs, 2, "content"), "boom");
    assert_string_equal(str_at(msgs, 3, "content"), "l1\nl2");
    assert_string_equal(str_at(msgs, 4, "content"), "reminder");
    json_object *uc = get(json_object_array_get_idx(msgs, 5), "content");
    assert_int_equal(json_object_array_length(uc), 2);
    assert_string_equal(str_at(uc, 0, "type"), "image_url");
    assert_string_equal(json_object_get_string(get(get(json_object_array_get_idx(uc, 0), "image_url"), "url")),
                        "data:image/png;base64,iVBORw==");
    assert_string_equal(str_at(uc, 1, "text"), "go on");
    /* stream with usage; max_tokens clamped to gpt-4o's 16384 */
    assert_true(json_object_get_boolean(get(o, "stream")));
    assert_true(json_object_get_boolean(get(get(o, "stream_options"), "include_usage")));
    assert_int_equal(json_object_get_int(get(o, "max_tokens")), 16384);
    assert_false(has(o, "max_completion_tokens"));
    json_object_put(o);
    enc_free(&e);
}

static void test_messages(void **state)
{
    /* system blocks joined into the first message; a mid-conversation system message stays in place;
     * sampling passes for a non-reasoning model; top_k and stop sequences are not sent */
    check_encode(goldens[0].body, "gpt-4o",
                 "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\\n\\nAnswer in "
                 "\\u00e9.\"},{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"},"
                 "{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"again\"}],"
                 "\"max_tokens\":100,\"temperature\":0.5,\"top_p\":0.9}");
    /* several user texts: one string; empty texts and empty messages vanish; thinking is dropped */
    check_encode(R(U("[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\","
                     "\"text\":\"b\"}]") "," A("[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"c2ln\"},"
                                             "{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"text\",\"text\":\"y\"}]")
                   "," A("[{\"type\":\"thinking\",\"thinking\":\"only\",\"signature\":\"c2ln\"}]") "," S("\"\"")
                   "," U("\"c\"")),
                 "gpt-4o",
                 "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\n\\nb\"},"
                 "{\"role\":\"assistant\",\"content\":\"x\\n\\ny\"},{\"role\":\"user\",\"content\":\"c\"}],"
                 "\"max_tokens\":100}");
    check_encode_fails(R(U("\"\"")), "gpt-4o", "messages: no content to send (all messages are empty)");
    /* the model name is written escaped */
    check_encode(R(U("\"q\"")), "my\"model", "{\"model\":\"my\\\"model\",\"messages\":[{\"role\":\"user\",\"content\":"
                                             "\"q\"}],\"max_tokens\":100}");
}

static void test_tool_results(void **state)
{
    /* a result with only an image: a note in the tool message, the image in the user message; an empty
     * result: "(no output)"; a call without input: "{}" */
    check_encode(RT("\"tools\":[{\"name\":\"Shot\",\"input_schema\":{\"type\":\"object\"}}]",
                    U("\"q\"") "," A("[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Shot\",\"input\":{}},"
                                     "{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"Shot\",\"input\":{}}]")
                        "," U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":[" IMG "]},"
                              "{\"type\":\"tool_result\",\"tool_use_id\":\"t2\",\"content\":\"\"}]")),
                 "gpt-4o",
                 "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
                 "\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"Shot\",\"arguments\":"
                 "\"{}\"}},{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"Shot\",\"arguments\":\"{}\"}}]},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"(image output follows)\"},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"t2\",\"content\":\"(no output)\"},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
                 "\"data:image/png;base64,iVBORw==\"}}]}],"
                 "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"Shot\",\"parameters\":{\"type\":\"object\"}}}],"
                 "\"max_tokens\":100}");
    /* two answers to one call, two calls with one id: refused with the client's field named */
    check_encode_fails(R(U("\"q\"") "," A("[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Shot\",\"input\":{}}]")
                         "," U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"a\"},"
                               "{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"b\"}]")),
                       "gpt-4o", "messages.2.content.1: a second tool_result for the same tool_use_id");
    check_encode_fails(R(U("\"q\"") "," A("[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Shot\",\"input\":{}},"
                                         "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Shot\",\"input\":{}}]")
                         "," U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"a\"}]")),
                       "gpt-4o", "messages.1.content.1: duplicate tool_use id");
    /* documents cannot be expressed: refused with the field named */
    check_encode_fails(R(U("[{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/pdf\","
                           "\"data\":\"JVBE\"}}]")),
                       "gpt-4o",
                       "messages.0.content.0: documents (PDF) cannot be sent to an OpenAI Chat Completions provider");
}

static void test_call_ids(void **state)
{
    char a[41], b[41];
    /* valid short ids pass unchanged */
    assert_int_equal(wd_openai_call_id(WD_STR("call_abc-DEF_123"), a), 16);
    assert_string_equal(a, "call_abc-DEF_123");
    /* long, empty and odd ones map to call_ + 32 hex digits, deterministically and apart */
    static const char *odd[] = {LONG_ID, "", "has space", "a.b", "toolu_0123456789012345678901234567890123456"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        struct wd_str s = {odd[i], strlen(odd[i])};
        size_t n = wd_openai_call_id(s, a);
        assert_int_equal(n, 37);
        assert_int_equal(strlen(a), 37);
        assert_memory_equal(a, "call_", 5);
        assert_int_equal(wd_openai_call_id(s, b), 37);
        assert_string_equal(a, b);
        for (size_t k = 0; k < i; k++) {
            wd_openai_call_id((struct wd_str){odd[k], strlen(odd[k])}, b);
            assert_string_not_equal(a, b);
        }
    }
    /* exactly 40 passes, 41 maps */
    char forty[42];
    memset(forty, 'x', 41);
    forty[41] = '\0';
    assert_int_equal(wd_openai_call_id((struct wd_str){forty, 40}, a), 40);
    assert_int_equal(wd_openai_call_id((struct wd_str){forty, 41}, a), 37);
}

static void test_function_names(void **state)
{
    char m1[65], m2[65];
    size_t n1 = wd_openai_name_map(WD_STR("get weather!"), m1);
    assert_int_equal(wd_openai_name_map(WD_STR("get weather!"), m2), n1);
    assert_string_equal(m1, m2);
    assert_memory_equal(m1, "f_get_weather__", 15);
    assert_true(wd_openai_name_valid((struct wd_str){m1, n1}));
    static const char *valid[] = {"Write", "mcp__github__create_issue", "a-b", "9lives", "_"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        assert_true(wd_openai_name_valid((struct wd_str){valid[i], strlen(valid[i])}));
        assert_int_equal(wd_openai_name_map((struct wd_str){valid[i], strlen(valid[i])}, m1), strlen(valid[i]));
        assert_string_equal(m1, valid[i]);
    }
    char longname[101];
    memset(longname, 'a', 100);
    longname[100] = '\0';
    const char *invalid[] = {"", "a.b", "a:b", "caf\xc3\xa9", "has space", longname};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        struct wd_str s = {invalid[i], strlen(invalid[i])};
        assert_false(wd_openai_name_valid(s));
        size_t n = wd_openai_name_map(s, m1);
        assert_true(n <= 64);
        assert_true(wd_openai_name_valid((struct wd_str){m1, n}));
    }
    /* the mapped name in tools, tool_choice and history alike */
    wd_openai_name_map(WD_STR("get weather!"), m1);
    char want[2048];
    snprintf(want, sizeof(want),
             "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
             "\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"%s\",\"arguments\":"
             "\"{\\\"c\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"r\"}],"
             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"%s\",\"parameters\":{\"type\":\"object\","
             "\"properties\":{}}}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"%s\"}},"
             "\"max_tokens\":100}",
             m1, m1, m1);
    check_encode(RT("\"tools\":[{\"name\":\"get weather!\",\"input_schema\":{}}],\"tool_choice\":{\"type\":\"tool\","
                    "\"name\":\"get weather!\"}",
                    U("\"q\"") "," A("[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"get weather!\",\"input\":{\"c\":1}}]")
                        "," U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"r\"}]")),
                 "gpt-4o", want);
    check_encode_fails(RT("\"tools\":[{\"name\":\"a b\",\"input_schema\":{}},{\"name\":\"a b\",\"input_schema\":{}}]",
                          U("\"q\"")),
                       "gpt-4o", "tools.1.name: duplicate tool name");
}

static void test_tool_choice_and_schema(void **state)
{
    static const struct {
        const char *tc, *want;
    } t[] = {
        {"{\"type\":\"auto\"}", ",\"tool_choice\":\"auto\""},
        {"{\"type\":\"any\"}", ",\"tool_choice\":\"required\""},
        {"{\"type\":\"none\"}", ",\"tool_choice\":\"none\""},
        {"{\"type\":\"tool\",\"name\":\"Read\"}", ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"Read\"}}"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char body[512], want[512];
        snprintf(body, sizeof(body),
                 RT("\"tools\":[{\"name\":\"Read\",\"description\":\"Reads \\\"files\\\"\",\"input_schema\":"
                    "{\"properties\":{\"p\":{\"type\":\"string\"}}}}],\"tool_choice\":%s",
                    U("\"q\"")),
                 t[i].tc);
        /* a schema without a type gets "type":"object" */
        snprintf(want, sizeof(want),
                 "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"tools\":[{\"type\":"
                 "\"function\",\"function\":{\"name\":\"Read\",\"description\":\"Reads \\\"files\\\"\",\"parameters\":"
                 "{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\"}}}}}]%s,\"max_tokens\":100}",
                 t[i].want);
        check_encode(body, "gpt-4o", want);
    }
    /* schemas as they come: typed ones verbatim, untyped ones (with spaces around, or none at all) typed */
    struct wd_part q = {.type = WD_PART_TEXT, .text = WD_STR("q")};
    struct wd_msg m = {.role = WD_ROLE_USER, .parts = &q, .nparts = 1};
    struct wd_tool tl[] = {{.name = WD_STR("a"), .schema = WD_STR(" { \"properties\":{} } ")},
                           {.name = WD_STR("b"), .schema = WD_STR(" {} ")},
                           {.name = WD_STR("c"), .schema = WD_STR_NULL},
                           {.name = WD_STR("d"), .schema = WD_STR("{\"type\":\"object\",\"x\":1}")}};
    struct wd_request req = {.msgs = &m, .nmsgs = 1, .tools = tl, .ntools = 4, .max_tokens = -1,
                             .temperature = NAN, .top_p = NAN, .top_k = -1};
    struct wd_buf out = {0};
    struct wd_error err;
    assert_int_equal(wd_openai_encode_request(&req, WD_STR("gpt-4o"), NULL, &out, &err), 0);
    assert_json_eq(out.p, out.n,
                   "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"tools\":["
                   "{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}},"
                   "{\"type\":\"function\",\"function\":{\"name\":\"b\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}},"
                   "{\"type\":\"function\",\"function\":{\"name\":\"c\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}},"
                   "{\"type\":\"function\",\"function\":{\"name\":\"d\",\"parameters\":{\"type\":\"object\",\"x\":1}}}]}");
    wd_buf_free(&out);
    /* no tools: no tool_choice (OpenAI refuses one without tools) */
    check_encode(RT("\"tool_choice\":{\"type\":\"any\"}", U("\"q\"")), "gpt-4o",
                 "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"max_tokens\":100}");
    check_encode_fails(RT("\"tools\":[{\"name\":\"Read\",\"input_schema\":{}}],\"tool_choice\":{\"type\":\"tool\","
                          "\"name\":\"Write\"}",
                          U("\"q\"")),
                       "gpt-4o", "tool_choice.name: no tool of that name in tools");
}

/* Encodes body for model and returns the parsed output (caller puts it). */
static json_object *encoded(const char *body, const char *model, const struct wd_openai_opts *o)
{
    struct enc e;
    encode_opts(&e, body, model, o);
    assert_int_equal(e.rc, 0);
    json_object *r = parse_jc(e.out.p, e.out.n);
    enc_free(&e);
    return r;
}

static void test_max_tokens(void **state)
{
    static const struct {
        const char *model;
        int64_t asked, opt_max;
        enum wd_tokens_field field;
        const char *key;
        int64_t want;
    } t[] = {
        {"gpt-4o", 100000, 0, WD_TOKENS_FIELD_AUTO, "max_tokens", 16384},
        {"gpt-4o-mini", 1000, 0, WD_TOKENS_FIELD_AUTO, "max_tokens", 1000},
        {"gpt-4.1", 100000, 0, WD_TOKENS_FIELD_AUTO, "max_tokens", 32768},
        {"o1", 200000, 0, WD_TOKENS_FIELD_AUTO, "max_completion_tokens", 100000},
        {"o4-mini", 5, 0, WD_TOKENS_FIELD_AUTO, "max_completion_tokens", 5},
        {"gpt-5", 200000, 0, WD_TOKENS_FIELD_AUTO, "max_completion_tokens", 128000},
        {"gpt-5-chat-latest", 200000, 0, WD_TOKENS_FIELD_AUTO, "max_tokens", 16384},
        {"openai/gpt-5-mini", 200000, 0, WD_TOKENS_FIELD_AUTO, "max_completion_tokens", 128000},
        {"llama-3.1-70b", 200000, 0, WD_TOKENS_FIELD_AUTO, "max_tokens", 200000}, /* unknown: no clamp */
        {"llama-3.1-70b", 200000, 8192, WD_TOKENS_FIELD_AUTO, "max_tokens", 8192},
        {"gpt-4o", 100000, 50000, WD_TOKENS_FIELD_AUTO, "max_tokens", 50000}, /* the config's ceiling wins */
        {"gpt-5", 100, 0, WD_TOKENS_FIELD_MAX_TOKENS, "max_tokens", 100},
        {"gpt-4o", 100, 0, WD_TOKENS_FIELD_MAX_COMPLETION_TOKENS, "max_completion_tokens", 100},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"model\":\"m\",\"max_tokens\":%lld,\"temperature\":0.2,\"messages\":[" U("\"q\"") "]}",
                 (long long)t[i].asked);
        struct wd_openai_opts o = {.max_output_tokens = t[i].opt_max, .tokens_field = t[i].field};
        json_object *r = encoded(body, t[i].model, &o);
        if (!has(r, t[i].key))
            print_error("%s: no %s\n", t[i].model, t[i].key);
        assert_int_equal(json_object_get_int64(get(r, t[i].key)), t[i].want);
        assert_false(has(r, strcmp(t[i].key, "max_tokens") == 0 ? "max_completion_tokens" : "max_tokens"));
        /* reasoning models take no sampling values */
        struct wd_openai_model mi;
        wd_openai_model_info((struct wd_str){t[i].model, strlen(t[i].model)}, &mi);
        assert_int_equal(has(r, "temperature"), !mi.reasoning);
        json_object_put(r);
    }
}

static void test_reasoning_effort(void **state)
{
    static const struct {
        const char *model, *thinking, *effort, *want;
    } t[] = {
        {"o3", "{\"type\":\"enabled\",\"budget_tokens\":1024}", NULL, "low"},
        {"o3", "{\"type\":\"enabled\",\"budget_tokens\":4096}", NULL, "low"},
        {"o3", "{\"type\":\"enabled\",\"budget_tokens\":4097}", NULL, "medium"},
        {"o3", "{\"type\":\"enabled\",\"budget_tokens\":16384}", NULL, "medium"},
        {"o3", "{\"type\":\"enabled\",\"budget_tokens\":16385}", NULL, "high"},
        {"gpt-5", "{\"type\":\"adaptive\"}", "low", "low"},
        {"gpt-5", "{\"type\":\"adaptive\"}", "medium", "medium"},
        {"gpt-5", "{\"type\":\"adaptive\"}", "high", "high"},
        {"gpt-5", "{\"type\":\"adaptive\"}", "max", "high"},
        {"gpt-5", "{\"type\":\"adaptive\"}", NULL, NULL},
        {"gpt-5", "{\"type\":\"disabled\"}", "high", NULL},
        {"gpt-5", NULL, "low", "low"},
        {"gpt-5", NULL, NULL, NULL},
        {"gpt-4o", "{\"type\":\"enabled\",\"budget_tokens\":20000}", "high", NULL}, /* not a reasoning model */
        {"gpt-5-chat-latest", "{\"type\":\"adaptive\"}", "high", NULL},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char body[512], th[128] = "", ef[64] = "";
        if (t[i].thinking)
            snprintf(th, sizeof(th), "\"thinking\":%s,", t[i].thinking);
        if (t[i].effort)
            snprintf(ef, sizeof(ef), "\"output_config\":{\"effort\":\"%s\"},", t[i].effort);
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"max_tokens\":30000,%s%s\"messages\":[" U("\"q\"") "]}", th, ef);
        json_object *r = encoded(body, t[i].model, NULL);
        if (t[i].want == NULL) {
            assert_false(has(r, "reasoning_effort"));
        } else {
            if (!has(r, "reasoning_effort"))
                print_error("case %zu: no reasoning_effort\n", i);
            assert_string_equal(json_object_get_string(get(r, "reasoning_effort")), t[i].want);
        }
        assert_false(has(r, "stream"));
        assert_false(has(r, "stream_options"));
        json_object_put(r);
    }
}

static void test_model_info(void **state)
{
    static const struct {
        const char *model;
        int64_t max;
        bool reasoning;
    } t[] = {
        {"gpt-4o", 16384, false},  {"gpt-4o-2024-08-06", 16384, false}, {"chatgpt-4o-latest", 16384, false},
        {"gpt-4.1-nano", 32768, false}, {"o1", 100000, true}, {"o3-mini", 100000, true},
        {"o4-mini-2025-04-16", 100000, true}, {"gpt-5", 128000, true}, {"gpt-5-nano", 128000, true},
        {"gpt-5-chat-latest", 16384, false}, {"openrouter/openai/o3", 100000, true}, {"llama3", 0, false},
        {"omni", 0, false}, {"", 0, false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct wd_openai_model mi;
        wd_openai_model_info((struct wd_str){t[i].model, strlen(t[i].model)}, &mi);
        if (mi.max_output != t[i].max || mi.reasoning != t[i].reasoning)
            print_error("%s\n", t[i].model);
        assert_int_equal(mi.max_output, t[i].max);
        assert_int_equal(mi.reasoning, t[i].reasoning);
    }
}

/* ---- responses ---- */

static const struct wd_tool resp_tools[] = {
    {.name = WD_STR("Read"), .schema = WD_STR("{}")},
    {.name = WD_STR("Bash"), .schema = WD_STR("{}")},
    {.name = WD_STR("get weather!"), .schema = WD_STR("{}")},
};

/* Renders every event as one line, so a whole answer compares as one string. */
struct rec {
    struct wd_sink sink;
    struct wd_buf log;
    int n;
    struct wd_event last;       /* strings not kept */
    bool usage_mismatch;        /* an event carried usage different from the final one */
    struct wd_usage usages[64];
};

static const char *part_name(enum wd_part_type t)
{
    switch (t) {
    case WD_PART_TEXT: return "text";
    case WD_PART_THINKING: return "thinking";
    case WD_PART_TOOL_CALL: return "tool";
    default: return "?";
    }
}

static const char *stop_name(enum wd_stop_reason r)
{
    switch (r) {
    case WD_STOP_END_TURN: return "end_turn";
    case WD_STOP_MAX_TOKENS: return "max_tokens";
    case WD_STOP_TOOL_USE: return "tool_use";
    case WD_STOP_REFUSAL: return "refusal";
    default: return "?";
    }
}

static const char *class_name(enum wd_error_class c)
{
    switch (c) {
    case WD_ERR_INVALID_REQUEST: return "invalid_request";
    case WD_ERR_AUTHENTICATION: return "authentication";
    case WD_ERR_PERMISSION: return "permission";
    case WD_ERR_NOT_FOUND: return "not_found";
    case WD_ERR_TOO_LARGE: return "too_large";
    case WD_ERR_RATE_LIMIT: return "rate_limit";
    case WD_ERR_API: return "api";
    case WD_ERR_BAD_GATEWAY: return "bad_gateway";
    case WD_ERR_TIMEOUT: return "timeout";
    case WD_ERR_OVERLOADED: return "overloaded";
    default: return "?";
    }
}

static void rec_emit(struct wd_sink *s, const struct wd_event *ev)
{
    struct rec *r = (struct rec *)s;
    struct wd_buf *b = &r->log;
    if (r->n < 64)
        r->usages[r->n] = ev->usage;
    r->n++;
    r->last = *ev;
    switch (ev->type) {
    case WD_EV_MESSAGE_START: wd_buf_puts(b, "start\n"); break;
    case WD_EV_PART_START:
        wd_buf_printf(b, "part %d %s", ev->index, part_name(ev->part_type));
        if (ev->part_type == WD_PART_TOOL_CALL)
            wd_buf_printf(b, " %.*s %.*s", (int)ev->id.n, ev->id.p, (int)ev->name.n, ev->name.p);
        wd_buf_putc(b, '\n');
        break;
    case WD_EV_DELTA:
        if (ev->part_type == WD_PART_TOOL_CALL)
            wd_buf_printf(b, "args %d %.*s\n", ev->index, (int)ev->args.n, ev->args.p);
        else
            wd_buf_printf(b, "%s %d %.*s\n", part_name(ev->part_type), ev->index, (int)ev->text.n, ev->text.p);
        break;
    case WD_EV_PART_STOP: wd_buf_printf(b, "end %d\n", ev->index); break;
    case WD_EV_MESSAGE_STOP:
        wd_buf_printf(b, "stop %s in=%lld cache=%lld out=%lld\n", stop_name(ev->stop_reason),
                      (long long)ev->usage.input_tokens, (long long)ev->usage.cache_read_tokens,
                      (long long)ev->usage.output_tokens);
        break;
    case WD_EV_ERROR:
        wd_buf_printf(b, "error %s retry=%d %.*s\n", class_name(ev->error_class), ev->retryable, (int)ev->message.n,
                      ev->message.p);
        break;
    }
}

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    r->sink.emit = rec_emit;
}

/* Replaces the random part of generated toolu_wd ids with X. */
static void assert_log(struct rec *r, const char *want)
{
    normalise_ids(&r->log);
    wd_buf_putc(&r->log, '\0');
    if (strcmp(r->log.p, want) != 0)
        print_error("got:\n%s\nwant:\n%s\n", r->log.p, want);
    assert_string_equal(r->log.p, want);
    wd_buf_free(&r->log);
}

static struct wd_request resp_req(bool stream)
{
    return (struct wd_request){.tools = (struct wd_tool *)resp_tools, .ntools = 3, .stream = stream};
}

/* Feeds payloads one by one, then finishes. */
static void feed(struct rec *r, const struct wd_request *req, const char *const *p, size_t n)
{
    struct wd_arena a = {0};
    struct wd_openai_stream dec;
    rec_init(r);
    wd_openai_stream_init(&dec, &r->sink, req, &a);
    for (size_t i = 0; i < n; i++)
        wd_openai_stream_chunk(&dec, p[i], strlen(p[i]));
    wd_openai_stream_finish(&dec);
    wd_openai_stream_free(&dec);
    wd_arena_free(&a);
}

static void check_payloads(const char *const *p, size_t n, const char *want)
{
    struct wd_request req = resp_req(true);
    struct rec r;
    feed(&r, &req, p, n);
    assert_log(&r, want);
}

static void check_body(const char *body, const char *want)
{
    const char *p[] = {body};
    struct wd_request req = resp_req(false);
    struct rec r;
    feed(&r, &req, p, 1);
    assert_log(&r, want);
}

static int on_sse(void *ctx, const char *d, size_t n)
{
    wd_openai_stream_chunk(ctx, d, n);
    return 0;
}

/* The payloads as an SSE body, split in two at every byte and byte by byte: the same events every time. */
static void check_sse_splits(const char *const *p, size_t n, const char *want)
{
    struct wd_buf body = {0};
    for (size_t i = 0; i < n; i++) {
        wd_buf_puts(&body, "data: ");
        wd_buf_puts(&body, p[i]);
        wd_buf_puts(&body, i & 1 ? "\r\n\r\n" : "\n\n");
    }
    struct wd_request req = resp_req(true);
    for (size_t at = 0; at <= body.n + 1; at++) {
        struct wd_arena a = {0};
        struct wd_openai_stream dec;
        struct wd_sse sse = {0};
        struct rec r;
        rec_init(&r);
        wd_openai_stream_init(&dec, &r.sink, &req, &a);
        if (at <= body.n) {
            assert_int_equal(wd_sse_feed(&sse, body.p, at, on_sse, &dec), 0);
            assert_int_equal(wd_sse_feed(&sse, body.p + at, body.n - at, on_sse, &dec), 0);
        } else {
            for (size_t i = 0; i < body.n; i++)
                assert_int_equal(wd_sse_feed(&sse, body.p + i, 1, on_sse, &dec), 0);
        }
        wd_openai_stream_finish(&dec);
        assert_log(&r, want);
        wd_sse_free(&sse);
        wd_openai_stream_free(&dec);
        wd_arena_free(&a);
    }
    wd_buf_free(&body);
}

#define CHUNK(delta, finish)                                                                                     \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":" \
    "[{\"index\":0,\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":" finish "}],\"usage\":null}"
#define USAGE_CHUNK                                                                                               \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":1000," \
    "\"completion_tokens\":42,\"total_tokens\":1042,\"prompt_tokens_details\":{\"cached_tokens\":800}}}"

static const char *const text_and_calls[] = {
    CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null"),
    CHUNK("{\"content\":\"Let me \\\"look\\\"\"}", "null"),
    CHUNK("{\"content\":\" \\u00e9.\"}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_AAA\",\"type\":\"function\",\"function\":{\"name\":\"Read\","
          "\"arguments\":\"\"}}]}",
          "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"pa\"}}]}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"th\\\":\\\"a\\\"}\"}}]}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_BBB\",\"type\":\"function\",\"function\":{\"name\":"
          "\"f_get_weather__4d0c9726\",\"arguments\":\"{}\"}}]}",
          "null"),
    CHUNK("{}", "\"tool_calls\""),
    USAGE_CHUNK,
    "[DONE]",
};

static void test_stream_text_and_calls(void **state)
{
    /* the mapped name must be the one the test writes */
    char m[65];
    wd_openai_name_map(WD_STR("get weather!"), m);
    assert_string_equal(m, "f_get_weather__4d0c9726");
    const char *want = "start\n"
                       "part 0 text\n"
                       "text 0 Let me \\\"look\\\"\n"
                       "text 0  \\u00e9.\n"
                       "end 0\n"
                       "part 1 tool call_AAA Read\n"
                       "args 1 {\"pa\n"
                       "args 1 th\":\"a\"}\n"
                       "end 1\n"
                       "part 2 tool call_BBB get weather!\n"
                       "args 2 {}\n"
                       "end 2\n"
                       "stop tool_use in=200 cache=800 out=42\n";
    size_t n = sizeof(text_and_calls) / sizeof(text_and_calls[0]);
    check_payloads(text_and_calls, n, want);
    check_sse_splits(text_and_calls, n, want);
    /* every event carries the running usage: 0 until the usage chunk */
    struct wd_request req = resp_req(true);
    struct rec r;
    feed(&r, &req, text_and_calls, n);
    assert_int_equal(r.n, 13);
    assert_int_equal(r.usages[0].input_tokens, 0);
    assert_int_equal(r.usages[12].input_tokens, 200);
    wd_buf_free(&r.log);
    /* payloads after [DONE] are ignored */
    const char *after[] = {CHUNK("{\"content\":\"a\"}", "\"stop\""), "[DONE]", CHUNK("{\"content\":\"zzz\"}", "null")};
    check_payloads(after, 3, "start\npart 0 text\ntext 0 a\nend 0\nstop end_turn in=0 cache=0 out=0\n");
}

static void test_stream_ids(void **state)
{
    /* a missing, repeated or odd id is replaced by a generated toolu_wd id; pieces without index (some
     * compatible servers) continue the open call unless they name a new one */
    const char *p[] = {
        CHUNK("{\"tool_calls\":[{\"function\":{\"name\":\"Read\",\"arguments\":\"{\\\"a\\\":\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"function\":{\"arguments\":\"1}\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"id\":\"x.y\",\"function\":{\"name\":\"Bash\",\"arguments\":{\"c\":2}}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":5,\"id\":\"call_1\",\"function\":{\"name\":\"Read\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":6,\"id\":\"call_1\",\"function\":{\"name\":\"Other\"}}]}", "\"stop\""),
    };
    check_payloads(p, 5,
                   "start\n"
                   "part 0 tool toolu_wdXXXXXXXXXXXXXXXXXXXX Read\n"
                   "args 0 {\"a\":\n"
                   "args 0 1}\n"
                   "end 0\n"
                   "part 1 tool toolu_wdXXXXXXXXXXXXXXXXXXXX Bash\n"
                   "args 1 {\"c\":2}\n"
                   "end 1\n"
                   "part 2 tool call_1 Read\n"
                   "end 2\n"
                   "part 3 tool toolu_wdXXXXXXXXXXXXXXXXXXXX Other\n"
                   "end 3\n"
                   "stop tool_use in=0 cache=0 out=0\n");
    /* a piece for a call already closed: the stream cannot be rendered in order */
    const char *ooo[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c0\",\"function\":{\"name\":\"Read\",\"arguments\":\"{\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"c1\",\"function\":{\"name\":\"Read\",\"arguments\":\"{}\"}}]}", "null"),
    };
    check_payloads(ooo, 2, "start\npart 0 tool c0 Read\nargs 0 {\nerror bad_gateway retry=0 provider sent malformed tool arguments\n");
    const char *back[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c0\",\"function\":{\"name\":\"Read\",\"arguments\":\"{}\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"c1\",\"function\":{\"name\":\"Read\",\"arguments\":\"{}\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\" \"}}]}", "null"),
    };
    check_payloads(back, 3,
                   "start\npart 0 tool c0 Read\nargs 0 {}\nend 0\npart 1 tool c1 Read\nargs 1 {}\n"
                   "error bad_gateway retry=0 provider sent tool call pieces out of order\n");
    const char *noname[] = {CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c0\",\"function\":{\"arguments\":\"{}\"}}]}", "null")};
    check_payloads(noname, 1, "error bad_gateway retry=1 provider sent a tool call without a name\n");
}

static void test_stream_ends(void **state)
{
    /* no finish_reason: an error, never a stop; retryable while nothing was emitted */
    const char *cut[] = {CHUNK("{\"content\":\"par\"}", "null"), "[DONE]"};
    check_payloads(cut, 2, "start\npart 0 text\ntext 0 par\nerror bad_gateway retry=0 provider stream ended early\n");
    const char *empty[] = {CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")};
    check_payloads(empty, 1, "error bad_gateway retry=1 provider stream ended early\n");
    check_payloads(NULL, 0, "error bad_gateway retry=1 provider stream ended early\n");
    /* cut inside a call's arguments (finish length): malformed arguments, not a stop */
    const char *trunc[] = {
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c0\",\"function\":{\"name\":\"Read\",\"arguments\":\"{\\\"p\"}}]}", "null"),
        CHUNK("{}", "\"length\""),
    };
    check_payloads(trunc, 2, "start\npart 0 tool c0 Read\nargs 0 {\"p\nerror bad_gateway retry=0 provider sent malformed tool arguments\n");
    /* an error object in the stream */
    const char *err[] = {CHUNK("{\"content\":\"a\"}", "null"),
                         "{\"error\":{\"message\":\"The server had an error\\nwhile processing\",\"type\":\"server_error\","
                         "\"param\":null,\"code\":null}}",
                         CHUNK("{\"content\":\"b\"}", "null")};
    check_payloads(err, 3, "start\npart 0 text\ntext 0 a\nerror api retry=0 provider error: The server had an error while processing\n");
    const char *rl[] = {"{\"error\":{\"message\":\"Rate limit\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}"};
    check_payloads(rl, 1, "error rate_limit retry=1 provider error: Rate limit\n");
    const char *ctx[] = {"{\"error\":{\"message\":\"too long\",\"type\":\"invalid_request_error\",\"code\":"
                         "\"context_length_exceeded\"}}"};
    check_payloads(ctx, 1, "error invalid_request retry=0 provider error: too long\n");
    const char *ollama[] = {"{\"error\":\"model is overloaded\"}"};
    check_payloads(ollama, 1, "error api retry=1 provider error: model is overloaded\n");
    const char *coded[] = {"{\"object\":\"error\",\"message\":\"busy\",\"type\":\"x\",\"code\":503}"};
    check_payloads(coded, 1, "error overloaded retry=1 provider error: busy\n");
    const char *bad[] = {"{not json"};
    check_payloads(bad, 1, "error bad_gateway retry=1 provider sent a malformed response chunk\n");
}

static void test_finish_reasons(void **state)
{
    static const struct {
        const char *reason;
        bool call;
        const char *want;
    } t[] = {
        {"stop", false, "end_turn"},          {"stop", true, "tool_use"},       {"length", false, "max_tokens"},
        {"tool_calls", true, "tool_use"},     {"tool_calls", false, "end_turn"}, {"function_call", true, "tool_use"},
        {"content_filter", false, "refusal"}, {"eos", false, "end_turn"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char fin[512], want[512];
        snprintf(fin, sizeof(fin), CHUNK("{}", "\"%s\""), t[i].reason);
        const char *p[] = {t[i].call ? CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"Read\","
                                             "\"arguments\":\"{}\"}}]}",
                                             "null")
                                     : CHUNK("{\"content\":\"hi\"}", "null"),
                           fin};
        snprintf(want, sizeof(want), "start\n%sstop %s in=0 cache=0 out=0\n",
                 t[i].call ? "part 0 tool c Read\nargs 0 {}\nend 0\n" : "part 0 text\ntext 0 hi\nend 0\n", t[i].want);
        check_payloads(p, 2, want);
    }
    /* a refusal: its text as a text block, stop reason refusal */
    const char *refusal[] = {CHUNK("{\"role\":\"assistant\",\"content\":null,\"refusal\":\"\"}", "null"),
                             CHUNK("{\"refusal\":\"I can't\"}", "null"), CHUNK("{}", "\"stop\"")};
    check_payloads(refusal, 3, "start\npart 0 text\ntext 0 I can't\nend 0\nstop refusal in=0 cache=0 out=0\n");
}

static void test_reasoning(void **state)
{
    /* reasoning text becomes a thinking block ahead of the text when the client asked for thinking */
    const char *p[] = {CHUNK("{\"reasoning_content\":\"hm\"}", "null"), CHUNK("{\"reasoning\":\"m\"}", "null"),
                       CHUNK("{\"content\":\"ok\"}", "null"), CHUNK("{\"reasoning_content\":\"late\"}", "\"stop\"")};
    struct wd_request req = resp_req(true);
    req.thinking = WD_THINKING_ADAPTIVE;
    struct rec r;
    feed(&r, &req, p, 4);
    assert_log(&r, "start\npart 0 thinking\nthinking 0 hm\nthinking 0 m\nend 0\npart 1 text\ntext 1 ok\nend 1\n"
                   "stop end_turn in=0 cache=0 out=0\n");
    /* not asked for, or asked hidden: dropped */
    req.thinking_hidden = true;
    feed(&r, &req, p, 4);
    assert_log(&r, "start\npart 0 text\ntext 0 ok\nend 0\nstop end_turn in=0 cache=0 out=0\n");
    req = resp_req(true);
    feed(&r, &req, p, 4);
    assert_log(&r, "start\npart 0 text\ntext 0 ok\nend 0\nstop end_turn in=0 cache=0 out=0\n");
}

/* The SSE body in path, split in two at every byte: the same events each time. */
static void check_sse_file(const char *path, const struct wd_request *req, const char *want)
{
    size_t n;
    char *body = slurp(path, &n);
    for (size_t at = 0; at <= n; at++) {
        struct wd_arena a = {0};
        struct wd_openai_stream dec;
        struct wd_sse sse = {0};
        struct rec r;
        rec_init(&r);
        wd_openai_stream_init(&dec, &r.sink, req, &a);
        assert_int_equal(wd_sse_feed(&sse, body, at, on_sse, &dec), 0);
        assert_int_equal(wd_sse_feed(&sse, body + at, n - at, on_sse, &dec), 0);
        assert_false(wd_sse_pending(&sse));
        wd_openai_stream_finish(&dec);
        assert_log(&r, want);
        wd_sse_free(&sse);
        wd_openai_stream_free(&dec);
        wd_arena_free(&a);
    }
    free(body);
}

/* Answers the strict fake sent for golden requests 03, 05 and 01 (captured with curl): decoded, and the
 * non-stream one written as an Anthropic message. */
static void test_fake_answers(void **state)
{
    struct wd_request req = resp_req(true);
    check_sse_file(GOLDEN "openai/fake-calls.sse", &req,
                   "start\n"
                   "part 0 tool call_EoJwT8gFyQz6tN3dagPRkxsJ Read\n"
                   "args 0 {\"path\n"
                   "args 0 \":\"a.t\n"
                   "args 0 xt\"}\n"
                   "end 0\n"
                   "part 1 tool call_c9WiHgzmd9pVnHaD3scXEONo Bash\n"
                   "args 1 {\"cmd\"\n"
                   "args 1 :\"ls \\\n"
                   "args 1 \"x\\\"\"}\n"
                   "end 1\n"
                   "stop tool_use in=267 cache=0 out=11\n");
    check_sse_file(GOLDEN "openai/fake-text.sse", &req,
                   "start\npart 0 text\ntext 0 fake-o\ntext 0 penai:\ntext 0  think\nend 0\n"
                   "stop end_turn in=0 cache=12 out=21\n");
    size_t n;
    char *body = slurp(GOLDEN "openai/fake-text.body", &n);
    struct wd_arena a = {0};
    struct wd_buf out = {0};
    struct wd_anthropic_out enc;
    struct wd_openai_stream dec;
    req = resp_req(false);
    wd_anthropic_out_init(&enc, &out, false, WD_STR("claude-sonnet-4-5"));
    wd_openai_stream_init(&dec, &enc.sink, &req, &a);
    assert_int_equal(wd_openai_stream_chunk(&dec, body, n), 0);
    wd_openai_stream_finish(&dec);
    assert_true(enc.finished);
    assert_false(enc.failed);
    normalise_ids(&out);
    assert_json_eq(out.p, out.n,
                   "{\"id\":\"msg_wdXXXXXXXXXXXXXXXXXXXXXXXX\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                   "\"claude-sonnet-4-5\",\"content\":[{\"type\":\"text\",\"text\":\"fake-openai: again\"}],"
                   "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,"
                   "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":50,\"output_tokens\":5}}");
    wd_openai_stream_free(&dec);
    wd_anthropic_out_free(&enc);
    wd_buf_free(&out);
    wd_arena_free(&a);
    free(body);
}

#define COMPLETION(message, finish, usage)                                                                        \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{"      \
    "\"index\":0,\"message\":" message ",\"logprobs\":null,\"finish_reason\":" finish "}],\"usage\":" usage "," \
    "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_1\"}"
#define USAGE                                                                                                     \
    "{\"prompt_tokens\":50,\"completion_tokens\":7,\"total_tokens\":57,\"prompt_tokens_details\":{\"cached_tokens\":" \
    "10,\"audio_tokens\":0}}"

static void test_whole_body(void **state)
{
    check_body(COMPLETION("{\"role\":\"assistant\",\"content\":\"Hi \\\"there\\\"\",\"refusal\":null,\"annotations\":[]}",
                          "\"stop\"", USAGE),
               "start\npart 0 text\ntext 0 Hi \\\"there\\\"\nend 0\nstop end_turn in=40 cache=10 out=7\n");
    /* calls: arguments parsed from their string; the mapped name back to the client's */
    check_body(COMPLETION("{\"role\":\"assistant\",\"content\":\"Sure.\",\"tool_calls\":[{\"id\":\"call_X\",\"type\":"
                          "\"function\",\"function\":{\"name\":\"Read\",\"arguments\":\"{\\\"path\\\":\\\"\\\\u00e9\\\"}\"}},"
                          "{\"id\":\"call_Y\",\"type\":\"function\",\"function\":{\"name\":\"f_get_weather__4d0c9726\","
                          "\"arguments\":\"\"}}]}",
                          "\"tool_calls\"", USAGE),
               "start\npart 0 text\ntext 0 Sure.\nend 0\npart 1 tool call_X Read\nargs 1 {\"path\":\"\\u00e9\"}\nend 1\n"
               "part 2 tool call_Y get weather!\nend 2\nstop tool_use in=40 cache=10 out=7\n");
    /* malformed arguments: an error before anything was emitted, so the request can be retried */
    check_body(COMPLETION("{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":[{\"id\":\"call_X\",\"type\":\"function\","
                          "\"function\":{\"name\":\"Read\",\"arguments\":\"{\\\"path\\\":\"}}]}",
                          "\"tool_calls\"", USAGE),
               "error bad_gateway retry=1 provider sent malformed tool arguments\n");
    check_body(COMPLETION("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_X\",\"type\":\"function\","
                          "\"function\":{\"name\":\"Read\",\"arguments\":\"[1]\"}}]}",
                          "\"tool_calls\"", USAGE),
               "error bad_gateway retry=1 provider sent malformed tool arguments\n");
    /* a refusal */
    check_body(COMPLETION("{\"role\":\"assistant\",\"content\":null,\"refusal\":\"No.\"}", "\"stop\"", "null"),
               "start\npart 0 text\ntext 0 No.\nend 0\nstop refusal in=0 cache=0 out=0\n");
    /* no choices at all */
    check_body("{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[]}",
               "error bad_gateway retry=1 provider stream ended early\n");
    /* DeepSeek's cache count; absurd counts count as 0 */
    check_body(COMPLETION("{\"role\":\"assistant\",\"content\":\"a\"}", "\"stop\"",
                          "{\"prompt_tokens\":100,\"completion_tokens\":9223372036854775807,\"prompt_cache_hit_tokens\":60}"),
               "start\npart 0 text\ntext 0 a\nend 0\nstop end_turn in=40 cache=60 out=0\n");
}

static void test_errors(void **state)
{
    static const struct {
        int status;
        enum wd_error_class cls;
    } st[] = {{400, WD_ERR_INVALID_REQUEST}, {401, WD_ERR_AUTHENTICATION}, {402, WD_ERR_RATE_LIMIT}, {403, WD_ERR_PERMISSION},
              {404, WD_ERR_NOT_FOUND},       {413, WD_ERR_TOO_LARGE},      {422, WD_ERR_INVALID_REQUEST},
              {429, WD_ERR_RATE_LIMIT},      {500, WD_ERR_API},            {502, WD_ERR_API},
              {503, WD_ERR_OVERLOADED},      {504, WD_ERR_TIMEOUT},        {529, WD_ERR_OVERLOADED}};
    const char *body = "{\"error\":{\"message\":\"m \\u00e9\\u0007x\",\"type\":\"t\",\"param\":null,\"code\":null}}";
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        struct wd_error e;
        wd_openai_error(st[i].status, body, strlen(body), &e);
        assert_int_equal(e.cls, st[i].cls);
        char want[128];
        if (st[i].status == 401)
            snprintf(want, sizeof(want), "the provider rejected Warden's credential (HTTP 401)");
        else
            snprintf(want, sizeof(want), "provider error (HTTP %d): m \xc3\xa9 x", st[i].status);
        assert_string_equal(e.msg, want);
    }
    /* the 401 message quotes part of the key: it never reaches the client */
    struct wd_error e;
    const char *key = "{\"error\":{\"message\":\"Incorrect API key provided: sk-ab*****1234.\",\"type\":"
                      "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}";
    wd_openai_error(401, key, strlen(key), &e);
    assert_null(strstr(e.msg, "sk-"));
    const char *quota = "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
                        "\"code\":\"insufficient_quota\"}}";
    wd_openai_error(429, quota, strlen(quota), &e);
    assert_int_equal(e.cls, WD_ERR_RATE_LIMIT);
    assert_string_equal(e.msg, "provider error (HTTP 429): You exceeded your current quota");
    /* not JSON (a proxy's page): a generic message; other shapes of compatible servers */
    wd_openai_error(502, "<html>bad</html>", 16, &e);
    assert_string_equal(e.msg, "provider error (HTTP 502): no message");
    wd_openai_error(404, "{\"error\":\"model 'x' not found\"}", 31, &e);
    assert_string_equal(e.msg, "provider error (HTTP 404): model 'x' not found");
    wd_openai_error(400, "{\"object\":\"error\",\"message\":\"bad\",\"code\":400}", 45, &e);
    assert_string_equal(e.msg, "provider error (HTTP 400): bad");
    wd_openai_error(500, NULL, 0, &e);
    assert_string_equal(e.msg, "provider error (HTTP 500): no message");
    /* a long message is cut at 200 bytes, on a character boundary */
    char lng[600];
    size_t w = (size_t)snprintf(lng, sizeof(lng), "{\"error\":{\"message\":\"a");
    for (int i = 0; i < 150; i++)
        w += (size_t)snprintf(lng + w, sizeof(lng) - w, "\xc3\xa9");
    w += (size_t)snprintf(lng + w, sizeof(lng) - w, "\"}}");
    wd_openai_error(500, lng, w, &e);
    assert_int_equal(strlen(e.msg), strlen("provider error (HTTP 500): ") + 199);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_requests),
        cmocka_unit_test(test_parallel_calls_shape),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_tool_results),
        cmocka_unit_test(test_call_ids),
        cmocka_unit_test(test_function_names),
        cmocka_unit_test(test_tool_choice_and_schema),
        cmocka_unit_test(test_max_tokens),
        cmocka_unit_test(test_reasoning_effort),
        cmocka_unit_test(test_model_info),
        cmocka_unit_test(test_stream_text_and_calls),
        cmocka_unit_test(test_stream_ids),
        cmocka_unit_test(test_stream_ends),
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_reasoning),
        cmocka_unit_test(test_whole_body),
        cmocka_unit_test(test_fake_answers),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
