/* Unit tests for the Anthropic codec: api/anthropic_request.c (Claude Code fixtures -> canonical request,
 * every content block, 400 messages naming the path) and api/anthropic_response.c (canonical events ->
 * exact SSE bytes and JSON messages, tool ids that carry signatures, errors). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "api/stop.h"

#include "tests/unit/unit.h"

struct decoded {
    char *body;
    struct wd_arena a;
    struct wd_json j;
    struct wd_request req;
};

static void decode_ok(struct decoded *d, const char *body, size_t n, bool count)
{
    struct wd_error err = {0};
    memset(d, 0, sizeof(*d));
    int rc = wd_anthropic_decode_request(body, n, count, &d->a, &d->j, &d->req, &err);
    if (rc != 0)
        print_error("unexpected error: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

static void decoded_free(struct decoded *d)
{
    wd_json_free(&d->j);
    wd_arena_free(&d->a);
    free(d->body);
}

static bool str_is(struct wd_str s, const char *lit) { return wd_str_eq(s, lit); }

static void test_first_turn_fixture(void **state)
{
    struct decoded d;
    size_t n;
    char *body = slurp(GOLDEN "claude-code-first-turn.request.json", &n);
    decode_ok(&d, body, n, false);
    d.body = body;
    const struct wd_request *r = &d.req;
    assert_true(str_is(r->model, "claude-opus-5-5"));
    assert_int_equal(r->max_tokens, 128000);
    assert_true(r->stream);
    assert_int_equal(r->thinking, WD_THINKING_ADAPTIVE);
    assert_true(r->thinking_hidden);
    assert_int_equal(r->effort, WD_EFFORT_MEDIUM);
    assert_true(isnan(r->temperature));
    assert_int_equal(r->top_k, -1);
    /* the billing header block is dropped; the other two stay, as raw slices of the body */
    assert_int_equal(r->nsystem, 2);
    assert_true(str_is(r->system[0].text, "You are a Claude agent, built on Anthropic's Claude Agent SDK."));
    assert_true(wd_str_has_prefix(r->system[1].text, "\\nYou are an agent working with the user"));
    assert_true(r->system[1].text.p > body && r->system[1].text.p < body + n);
    /* user (2 text blocks), then Claude Code's mid-conversation system message */
    assert_int_equal(r->nmsgs, 2);
    assert_int_equal(r->msgs[0].role, WD_ROLE_USER);
    assert_int_equal(r->msgs[0].nparts, 2);
    assert_true(wd_str_has_prefix(r->msgs[0].parts[0].text, "<system-reminder>\\nAttribution"));
    assert_true(str_is(r->msgs[0].parts[1].text, "create hello.txt"));
    assert_int_equal(r->msgs[1].role, WD_ROLE_SYSTEM);
    assert_int_equal(r->msgs[1].nparts, 1);
    assert_true(wd_str_has_prefix(r->msgs[1].parts[0].text, "# Environment\\n"));
    /* tools: schemas as raw JSON objects; defer_loading accepted and dropped */
    assert_int_equal(r->ntools, 12);
    assert_true(str_is(r->tools[0].name, "Agent"));
    assert_true(str_is(r->tools[10].name, "DeferredToolPlaceholder"));
    assert_true(str_is(r->tools[10].schema, "{\"type\":\"object\",\"properties\":{}}"));
    assert_true(str_is(r->tools[11].name, "Write"));
    assert_int_equal(r->tools[11].schema.p[0], '{');
    assert_int_equal(r->tools[11].schema.p[r->tools[11].schema.n - 1], '}');
    assert_int_equal(r->nstop, 0);
    assert_int_equal(r->tool_choice, WD_TOOL_CHOICE_UNSET);
    decoded_free(&d);
}

static void test_tool_result_fixture(void **state)
{
    struct decoded d;
    size_t n;
    char *body = slurp(GOLDEN "claude-code-tool-result-turn.request.json", &n);
    decode_ok(&d, body, n, false);
    d.body = body;
    const struct wd_request *r = &d.req;
    assert_int_equal(r->nmsgs, 4);
    assert_int_equal(r->msgs[1].role, WD_ROLE_SYSTEM);
    assert_int_equal(r->msgs[1].nparts, 1); /* string content */
    assert_int_equal(r->msgs[2].role, WD_ROLE_ASSISTANT);
    const struct wd_part *call = &r->msgs[2].parts[0];
    assert_int_equal(call->type, WD_PART_TOOL_CALL);
    assert_true(str_is(call->id, "toolu_01ABC"));
    assert_true(str_is(call->name, "Write"));
    assert_int_equal(call->signature.n, 0); /* not one of ours */
    assert_true(str_is(call->args, "{\"file_path\":\"/home/dev/hello.txt\",\"content\":\"hi from mock\\n\"}"));
    const struct wd_part *res = &r->msgs[3].parts[0];
    assert_int_equal(res->type, WD_PART_TOOL_RESULT);
    assert_true(str_is(res->id, "toolu_01ABC"));
    assert_true(str_is(res->name, "Write")); /* linked to its call */
    assert_false(res->is_error);
    assert_int_equal(res->ncontent, 1);
    assert_true(wd_str_has_prefix(res->content[0].text, "File created successfully"));
    decoded_free(&d);
}

static void test_blocks(void **state)
{
    const char *body =
        "{\"model\":\"m\",\"max_tokens\":10,\"stop_sequences\":[\"END\",\"\\n\\n\"],\"temperature\":0.25,"
        "\"top_p\":1,\"top_k\":0,\"tool_choice\":{\"type\":\"tool\",\"name\":\"get weather!\","
        "\"disable_parallel_tool_use\":true},"
        "\"tools\":[{\"name\":\"get weather!\",\"description\":\"Weather \\\"now\\\"\",\"input_schema\":{\"type\":\"object\"},"
        "\"cache_control\":{\"type\":\"ephemeral\"},\"strict\":true}],"
        "\"system\":\"be brief\",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},"
        "\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
        "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/a\\/b.png\"}},"
        "{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/pdf\",\"data\":\"JVBERi0x\"}},"
        "{\"type\":\"document\",\"source\":{\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"plain doc\"}},"
        "{\"type\":\"text\",\"text\":\"what?\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
        "{\"role\":\"assistant\",\"content\":["
        "{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"wdsig1.c2lnbmF0dXJl\"},"
        "{\"type\":\"thinking\",\"thinking\":\"theirs\",\"signature\":\"EqQBCkYIBxgCKkBforeign\"},"
        "{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgBEgy0foreign\"},"
        "{\"type\":\"redacted_thinking\",\"data\":\"wdsig1.cmVk\"},"
        "{\"type\":\"text\",\"text\":\"ok\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_wdAAAAAAAAAAAAAAAAAAAA_c2ln-_w\",\"name\":\"get weather!\",\"input\":{\"city\":\"Paris\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_wdAAAAAAAAAAAAAAAAAAAA_c2ln-_w\","
        "\"is_error\":true,\"content\":[{\"type\":\"text\",\"text\":\"failed\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":\"/9j/\"}}]}]}]}";
    struct decoded d;
    decode_ok(&d, body, strlen(body), false);
    const struct wd_request *r = &d.req;
    assert_int_equal(r->nstop, 2);
    assert_true(str_is(r->stop[0], "END"));
    assert_true(str_is(r->stop[1], "\n\n")); /* decoded */
    assert_true(r->temperature == 0.25);
    assert_true(r->top_p == 1.0);
    assert_int_equal(r->top_k, 0);
    assert_int_equal(r->tool_choice, WD_TOOL_CHOICE_TOOL);
    assert_true(str_is(r->tool_choice_name, "get weather!"));
    assert_true(str_is(r->tools[0].description, "Weather \\\"now\\\"")); /* escaped */
    assert_int_equal(r->thinking, WD_THINKING_ENABLED);
    assert_int_equal(r->thinking_budget, 2048);
    assert_int_equal(r->nsystem, 1);
    assert_true(str_is(r->system[0].text, "be brief"));
    const struct wd_msg *u = &r->msgs[0];
    assert_int_equal(u->nparts, 5);
    assert_int_equal(u->parts[0].type, WD_PART_IMAGE);
    assert_true(str_is(u->parts[0].media.media_type, "image/png"));
    assert_true(str_is(u->parts[0].media.data, "iVBORw0KGgo="));
    assert_int_equal(u->parts[1].type, WD_PART_IMAGE);
    assert_true(str_is(u->parts[1].media.url, "https://example.com/a/b.png")); /* decoded */
    assert_int_equal(u->parts[2].type, WD_PART_DOCUMENT);
    assert_true(str_is(u->parts[2].media.media_type, "application/pdf"));
    assert_int_equal(u->parts[3].type, WD_PART_TEXT); /* a text document is text */
    assert_true(str_is(u->parts[3].text, "plain doc"));
    const struct wd_msg *as = &r->msgs[1];
    /* Warden's signatures lose their prefix; foreign thinking keeps its text without the signature;
     * foreign redacted thinking is dropped */
    assert_int_equal(as->nparts, 5);
    assert_int_equal(as->parts[0].type, WD_PART_THINKING);
    assert_true(str_is(as->parts[0].text, "hmm"));
    assert_true(str_is(as->parts[0].signature, "c2lnbmF0dXJl"));
    assert_int_equal(as->parts[1].type, WD_PART_THINKING);
    assert_true(str_is(as->parts[1].text, "theirs"));
    assert_int_equal(as->parts[1].signature.n, 0);
    assert_int_equal(as->parts[2].type, WD_PART_SIGNATURE);
    assert_true(str_is(as->parts[2].signature, "cmVk"));
    assert_int_equal(as->parts[3].type, WD_PART_TEXT);
    /* the signature carried in the tool id comes back as standard base64 */
    assert_int_equal(as->parts[4].type, WD_PART_TOOL_CALL);
    assert_true(str_is(as->parts[4].signature, "c2ln+/w="));
    const struct wd_part *tr = &r->msgs[2].parts[0];
    assert_true(tr->is_error);
    assert_true(str_is(tr->name, "get weather!"));
    assert_int_equal(tr->ncontent, 2);
    assert_int_equal(tr->content[1].type, WD_PART_IMAGE);
    assert_true(str_is(tr->content[1].media.data, "/9j/"));
    decoded_free(&d);

    /* count_tokens needs no max_tokens */
    const char *ct = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    decode_ok(&d, ct, strlen(ct), true);
    assert_int_equal(d.req.max_tokens, 1);
    decoded_free(&d);
    /* tool_choice variants and effort */
    static const struct {
        const char *tc;
        enum wd_tool_choice want;
    } tcs[] = {{"{\"type\":\"auto\"}", WD_TOOL_CHOICE_AUTO},
               {"{\"type\":\"any\"}", WD_TOOL_CHOICE_ANY},
               {"{\"type\":\"none\"}", WD_TOOL_CHOICE_NONE}};
    for (size_t i = 0; i < 3; i++) {
        char b[256];
        snprintf(b, sizeof(b),
                 "{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":%s,\"output_config\":{\"effort\":\"max\"},"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 tcs[i].tc);
        decode_ok(&d, b, strlen(b), false);
        assert_int_equal(d.req.tool_choice, tcs[i].want);
        assert_int_equal(d.req.effort, WD_EFFORT_MAX);
        decoded_free(&d);
    }
}

struct err_case {
    const char *body;
    const char *msg;
};

#define MSGS(content) "\"messages\":[{\"role\":\"user\",\"content\":" content "}]"
#define REQ(rest) "{\"model\":\"m\",\"max_tokens\":10," rest "}"
#define BLOCK(b) REQ(MSGS("[" b "]"))

/* The body is refused with a 400 invalid_request_error and exactly this message. */
static void expect_refused(size_t i, const char *body, const char *msg)
{
    struct wd_arena a = {0};
    struct wd_json j = {0};
    struct wd_request req;
    struct wd_error err = {0};
    int rc = wd_anthropic_decode_request(body, strlen(body), false, &a, &j, &req, &err);
    if (rc == 0 || strcmp(err.msg, msg) != 0)
        print_error("case %zu: %s\n  got: %s\n", i, body, rc == 0 ? "(accepted)" : err.msg);
    assert_int_equal(rc, -1);
    assert_int_equal(err.cls, WD_ERR_INVALID_REQUEST);
    assert_string_equal(err.msg, msg);
    assert_int_equal(wd_anthropic_error_status(err.cls), 400);
    wd_json_free(&j);
    wd_arena_free(&a);
}

static void test_errors(void **state)
{
    static const struct err_case cases[] = {
        {"not json", "request body is not valid JSON: invalid literal at byte 0"},
        {"{\"model\":\"m\",}", "request body is not valid JSON: expected object key at byte 13"},
        {"[]", "request body must be a JSON object"},
        {REQ(MSGS("\"hi\"") ",\"foo\":1"), "foo: Extra inputs are not permitted"},
        {"{\"max_tokens\":10," MSGS("\"hi\"") "}", "model: Field required"},
        {"{\"model\":7,\"max_tokens\":10," MSGS("\"hi\"") "}", "model: expected a string"},
        {"{\"model\":\"\",\"max_tokens\":10," MSGS("\"hi\"") "}", "model: must be 1 to 256 characters"},
        {"{\"model\":\"m\"," MSGS("\"hi\"") "}", "max_tokens: Field required"},
        {"{\"model\":\"m\",\"max_tokens\":\"100\"," MSGS("\"hi\"") "}", "max_tokens: expected a positive integer"},
        {"{\"model\":\"m\",\"max_tokens\":0," MSGS("\"hi\"") "}", "max_tokens: expected a positive integer"},
        {"{\"model\":\"m\",\"max_tokens\":1.5," MSGS("\"hi\"") "}", "max_tokens: expected a positive integer"},
        {REQ("\"stream\":\"yes\"," MSGS("\"hi\"")), "stream: expected a boolean"},
        {REQ("\"temperature\":1.5," MSGS("\"hi\"")), "temperature: expected a number from 0 to 1"},
        {REQ("\"top_p\":-0.1," MSGS("\"hi\"")), "top_p: expected a number from 0 to 1"},
        {REQ("\"top_k\":-1," MSGS("\"hi\"")), "top_k: expected a non-negative integer"},
        {REQ("\"stop_sequences\":\"x\"," MSGS("\"hi\"")), "stop_sequences: expected an array of strings"},
        {REQ("\"stop_sequences\":[\"a\",1]," MSGS("\"hi\"")), "stop_sequences.1: expected a string"},
        {REQ("\"stop_sequences\":[\"\"]," MSGS("\"hi\"")), "stop_sequences.0: must be 1 to 256 bytes"},
        {REQ("\"stop_sequences\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\","
             "\"13\",\"14\",\"15\",\"16\",\"17\"]," MSGS("\"hi\"")),
         "stop_sequences: at most 16 sequences are supported"},
        {REQ("\"messages\":{}"), "messages: Field required (an array)"},
        {"{\"model\":\"m\",\"max_tokens\":10}", "messages: Field required (an array)"},
        {REQ("\"messages\":[]"), "messages: at least one message is required"},
        {REQ("\"messages\":[1]"), "messages.0: expected an object"},
        {REQ("\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}]"), "messages.0.role: expected user, assistant or system"},
        {REQ("\"messages\":[{\"role\":\"user\"}]"), "messages.0.content: Field required"},
        {REQ("\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":\"n\"}]"),
         "messages.0.name: Extra inputs are not permitted"},
        {REQ(MSGS("7")), "messages.0.content: expected a string or an array"},
        {BLOCK("1"), "messages.0.content.0: expected an object"},
        {BLOCK("{\"text\":\"x\"}"), "messages.0.content.0.type: required"},
        {BLOCK("{\"type\":\"text\"}"), "messages.0.content.0.text: Field required"},
        {BLOCK("{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":5}"),
         "messages.0.content.1.text: expected a string"},
        {BLOCK("{\"type\":\"audio\"}"), "messages.0.content.0.type: unsupported content block type"},
        {BLOCK("{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"n\",\"input\":{}}"),
         "messages.0.content.0: tool_use blocks belong to assistant messages"},
        {BLOCK("{\"type\":\"thinking\",\"thinking\":\"x\"}"),
         "messages.0.content.0: thinking blocks belong to assistant messages"},
        {BLOCK("{\"type\":\"redacted_thinking\",\"data\":\"x\"}"),
         "messages.0.content.0: redacted_thinking blocks belong to assistant messages"},
        {BLOCK("{\"type\":\"image\"}"), "messages.0.content.0.source: expected an object"},
        {BLOCK("{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}"),
         "messages.0.content.0.source.type: unsupported source type"},
        {BLOCK("{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\"}}"),
         "messages.0.content.0.source.data: Field required"},
        {BLOCK("{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"data\":\"AAAA\"}}"),
         "messages.0.content.0.source.media_type: Field required"},
        {BLOCK("{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"\"}}"),
         "messages.0.content.0.source.data: empty"},
        {BLOCK("{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"ftp://example.com/a.png\"}}"),
         "messages.0.content.0.source.url: only http and https URLs are supported"},
        {BLOCK("{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"file:///etc/passwd\"}}"),
         "messages.0.content.0.source.url: only http and https URLs are supported"},
        {BLOCK("{\"type\":\"image\",\"source\":{\"type\":\"url\"}}"), "messages.0.content.0.source.url: Field required"},
        {BLOCK("{\"type\":\"image\",\"source\":{\"type\":\"text\",\"data\":\"x\"}}"),
         "messages.0.content.0.source.type: unsupported source type"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"a b\",\"name\":\"n\","
             "\"input\":{}}]}]"),
         "messages.0.content.0.id: tool use id must match ^[a-zA-Z0-9_-]+$"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"\",\"name\":\"n\","
             "\"input\":{}}]}]"),
         "messages.0.content.0.id: empty tool use id"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"input\":{}}]}]"),
         "messages.0.content.0.name: Field required"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\","
             "\"input\":[]}]}]"),
         "messages.0.content.0.input: expected an object"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\"}]}]"),
         "messages.0.content.0: tool_result blocks belong to user messages"},
        {REQ("\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\",\"content\":[{\"type\":"
             "\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"r\"}]}]"),
         "messages.1.content.0: tool_result.tool_use_id has no matching tool_use block in the previous assistant "
         "message"},
        /* the call must be in the nearest assistant message, not an earlier one */
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"n\","
             "\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\"}]},"
             "{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
             "\"tool_use_id\":\"t1\"}]}]"),
         "messages.3.content.0: tool_result.tool_use_id has no matching tool_use block in the previous assistant "
         "message"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"n\","
             "\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\","
             "\"is_error\":\"yes\"}]}]"),
         "messages.1.content.0.is_error: expected a boolean"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"n\","
             "\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\","
             "\"content\":[{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"n\",\"input\":{}}]}]}]"),
         "messages.1.content.0.content.0.type: a tool result may hold text, image and document blocks only"},
        {REQ("\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\"}]}]"),
         "messages.0.content.0.tool_use_id: Field required"},
        {REQ("\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"system\",\"content\":[{\"type\":"
             "\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://a/b.png\"}}]}]"),
         "messages.1.content.0: a system message may hold text only"},
        {REQ("\"system\":5," MSGS("\"x\"")), "system: expected a string or an array of text blocks"},
        {REQ("\"system\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image\",\"source\":{\"type\":\"url\","
             "\"url\":\"https://a/b.png\"}}]," MSGS("\"x\"")),
         "system.1: a system message may hold text only"},
        {REQ("\"tools\":{}," MSGS("\"x\"")), "tools: expected an array"},
        {REQ("\"tools\":[1]," MSGS("\"x\"")), "tools.0: expected an object"},
        {REQ("\"tools\":[{\"name\":\"a\",\"input_schema\":{},\"foo\":1}]," MSGS("\"x\"")),
         "tools.0.foo: Extra inputs are not permitted"},
        {REQ("\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]," MSGS("\"x\"")),
         "tools.0.type: Anthropic server tools are not supported by this gateway"},
        {REQ("\"tools\":[{\"input_schema\":{}}]," MSGS("\"x\"")), "tools.0.name: Field required"},
        {REQ("\"tools\":[{\"name\":\"\",\"input_schema\":{}}]," MSGS("\"x\"")), "tools.0.name: must be 1 to 128 characters"},
        {REQ("\"tools\":[{\"name\":\"a\"}]," MSGS("\"x\"")), "tools.0.input_schema: expected an object"},
        {REQ("\"tools\":[{\"name\":\"a\",\"input_schema\":{}},{\"name\":\"b\",\"description\":1,\"input_schema\":{}}],"
             MSGS("\"x\"")),
         "tools.1.description: expected a string"},
        {REQ("\"tool_choice\":\"auto\"," MSGS("\"x\"")), "tool_choice: expected an object"},
        {REQ("\"tool_choice\":{\"type\":\"required\"}," MSGS("\"x\"")), "tool_choice.type: expected auto, any, tool or none"},
        {REQ("\"tool_choice\":{\"type\":\"tool\"}," MSGS("\"x\"")), "tool_choice.name: Field required"},
        {REQ("\"thinking\":{\"type\":\"enabled\"}," MSGS("\"x\"")), "thinking.budget_tokens: expected a positive integer"},
        {REQ("\"thinking\":{\"type\":\"on\"}," MSGS("\"x\"")), "thinking.type: expected enabled, adaptive or disabled"},
        {REQ("\"output_config\":{\"effort\":\"extreme\"}," MSGS("\"x\"")),
         "output_config.effort: expected low, medium, high or max"},
        {REQ("\"output_config\":{\"format\":{}}," MSGS("\"x\"")), "output_config.format: Extra inputs are not permitted"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_refused(i, cases[i].body, cases[i].msg);
}

/* Regression: an unknown field whose name is cut at 64 bytes inside a UTF-8 character gave an error
 * message, and so an error body, that was not valid UTF-8 (found in review; fuzz_anthropic_request now
 * checks every error body). */
static void test_error_message_utf8(void **state)
{
    struct wd_buf body = {0};
    wd_buf_puts(&body, "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"a");
    for (int i = 0; i < 40; i++)
        wd_buf_puts(&body, "\xc3\xa9"); /* the 64-byte cut lands after "a" + 31.5 characters */
    wd_buf_puts(&body, "\":1}");
    struct wd_arena a = {0};
    struct wd_json j = {0};
    struct wd_request req;
    struct wd_error err = {0};
    assert_int_equal(wd_anthropic_decode_request(body.p, body.n, false, &a, &j, &req, &err), -1);
    struct wd_buf out = {0};
    wd_anthropic_write_error(&out, err.cls, err.msg, strlen(err.msg));
    struct wd_json ej = {0};
    assert_int_equal(wd_json_parse(&ej, out.p, out.n), 0);
    /* a client's key is echoed as printable ASCII: the 64-byte cut, and every byte of a character, is '?' */
    assert_true(wd_str_contains((struct wd_str){out.p, out.n},
                                "\"a???????????????????????????????????????????????????????????????: Extra inputs "
                                "are not permitted"));
    wd_json_free(&ej);
    wd_buf_free(&out);
    wd_json_free(&j);
    wd_arena_free(&a);
    wd_buf_free(&body);
}

/* Regression (fuzz_anthropic_request): a repeated "tools" or "stop_sequences" key kept counting from the
 * first array while filling the second one's smaller allocation, writing past it inside the arena
 * (invisible to ASan until the arena poisoned its free space). A repeated key now replaces the earlier. */
/* Issue 14 item 8: lax input that a policy layer and the provider could read differently, or that would
 * be echoed back: duplicate keys (anywhere in the request), lone surrogate escapes, control characters in
 * names. */
static void test_lax_input(void **state)
{
    char big[1024] = "";
    for (int i = 0; i < 20; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "\"k%d\":{},", i);
    char big_body[1400];
    snprintf(big_body, sizeof(big_body),
             REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"n\","
                 "\"input\":{\"a\":[[{\"x\":1}],{%s\"k7\":{}}]}}]}]"),
             big);
    const struct err_case cases[] = {
        /* the second "model" would have won */
        {"{\"model\":\"m\",\"max_tokens\":10," MSGS("\"hi\"") ",\"model\":\"m2\"}",
         "model: duplicate key (a key may appear once in an object)"},
        /* escaped spelling of the same key */
        {"{\"model\":\"m\",\"max_tokens\":10," MSGS("\"hi\"") ",\"mod\\u0065l\":\"m2\"}",
         "model: duplicate key (a key may appear once in an object)"},
        {REQ("\"stop_sequences\":[\"x\"]," MSGS("\"hi\"") ",\"stop_sequences\":[\"w\"]"),
         "stop_sequences: duplicate key (a key may appear once in an object)"},
        {REQ("\"messages\":[{\"role\":\"user\",\"content\":\"a\",\"role\":\"assistant\"}]"),
         "messages.0.role: duplicate key (a key may appear once in an object)"},
        {BLOCK("{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"a\",\"text\":\"b\"}"),
         "messages.0.content.1.text: duplicate key (a key may appear once in an object)"},
        /* inside data forwarded as it is: tool input and schemas */
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"n\","
             "\"input\":{\"path\":\"/a\",\"path\":\"/etc/shadow\"}}]}]"),
         "messages.0.content.0.input.path: duplicate key (a key may appear once in an object)"},
        {big_body, "messages.0.content.0.input.a.1.k7: duplicate key (a key may appear once in an object)"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"n\","
             "\"input\":{\"a\":[[{\"x\":1,\"x\":2}]]}}]}]"),
         "messages.0.content.0.input.a.0.0.x: duplicate key (a key may appear once in an object)"},
        /* a client key is echoed as printable ASCII only */
        {"{\"model\":\"m\",\"max_tokens\":10," MSGS("\"hi\"") ",\"\\u0000x\\\"\":1,\"\\u0000x\\\"\":2}",
         "?x?: duplicate key (a key may appear once in an object)"},
        /* lone surrogate escapes */
        {REQ(MSGS("\"a\\ud800b\"")), "request body is not valid JSON: lone surrogate escape at byte 68"},
        {REQ(MSGS("\"a\\udc00\"")), "request body is not valid JSON: lone surrogate escape at byte 68"},
        {REQ(MSGS("\"\\ud83d\\u0041\"")), "request body is not valid JSON: lone surrogate escape at byte 67"},
        /* control characters in names */
        {"{\"model\":\"m\\u0000x\",\"max_tokens\":10," MSGS("\"hi\"") "}",
         "model: control characters are not allowed in a name"},
        {"{\"model\":\"m\\n\",\"max_tokens\":10," MSGS("\"hi\"") "}",
         "model: control characters are not allowed in a name"},
        {REQ("\"tools\":[{\"name\":\"a\\u0007\",\"input_schema\":{}}]," MSGS("\"hi\"")),
         "tools.0.name: control characters are not allowed in a name"},
        {REQ("\"tool_choice\":{\"type\":\"tool\",\"name\":\"\\u007f\"}," MSGS("\"hi\"")),
         "tool_choice.name: control characters are not allowed in a name"},
        {REQ("\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"n\\u001b\","
             "\"input\":{}}]}]"),
         "messages.0.content.0.name: control characters are not allowed in a name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_refused(i, cases[i].body, cases[i].msg);
    /* the same keys in different objects, a surrogate pair, and printable names are fine */
    const char *good =
        "{\"model\":\"gemini-2.5-pro\",\"max_tokens\":5,\"tools\":[{\"name\":\"a\",\"input_schema\":{\"type\":\"object\"}},"
        "{\"name\":\"b\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\\ud83d\\ude00\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}]}";
    struct decoded d;
    decode_ok(&d, good, strlen(good), false);
    assert_int_equal(d.req.ntools, 2);
    assert_true(str_is(d.req.model, "gemini-2.5-pro"));
    decoded_free(&d);
}

static bool id_chars_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
              p[i] == '_' || p[i] == '-'))
            return false;
    return true;
}

/* Decodes a one-call assistant message with the given id; returns the recovered signature in out. */
static void sig_from_id(const char *id, char *out, size_t cap)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":"
             "\"tool_use\",\"id\":\"%s\",\"name\":\"n\",\"input\":{}}]}]}",
             id);
    struct decoded d;
    decode_ok(&d, body, strlen(body), false);
    struct wd_str s = d.req.msgs[0].parts[0].signature;
    snprintf(out, cap, "%.*s", (int)s.n, s.p ? s.p : "");
    decoded_free(&d);
}

static void test_tool_id(void **state)
{
    static const char *sigs[] = {"EqUCCqICAXLI2ny+aW8mW3Z/RJYhQ0kf5ohMWqC/9fGz0zE=", "c2ln+/w=", "YWJj", "YQ==",
                                 "Cq/+"};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        char id[256], back[256];
        size_t n = wd_anthropic_tool_id(id, sizeof(id), (struct wd_str){sigs[i], strlen(sigs[i])});
        assert_int_equal(n, strlen(id));
        assert_true(id_chars_ok(id, n));
        assert_memory_equal(id, "toolu_wd", 8);
        assert_int_equal(id[28], '_');
        sig_from_id(id, back, sizeof(back));
        assert_string_equal(back, sigs[i]);
    }
    /* two ids for the same signature differ (parallel calls of one function) */
    char a[128], b[128];
    wd_anthropic_tool_id(a, sizeof(a), WD_STR("YWJj"));
    wd_anthropic_tool_id(b, sizeof(b), WD_STR("YWJj"));
    assert_string_not_equal(a, b);
    /* no signature: prefix and 20 random characters */
    char plain[64], back[64];
    assert_int_equal(wd_anthropic_tool_id(plain, sizeof(plain), WD_STR_NULL), 28);
    assert_true(id_chars_ok(plain, 28));
    sig_from_id(plain, back, sizeof(back));
    assert_string_equal(back, "");
    /* Regression (fuzz_gemini_response): a signature that is not base64 went into the id as it was,
     * so quotes or non-ASCII bytes broke the SSE JSON; it is now left out of the id. */
    static const char *bad[] = {"a\"b", "w\xc3\xb6rld", "ab=cd", "a b", "=", "ab===", "\\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char id[64];
        size_t n = wd_anthropic_tool_id(id, sizeof(id), (struct wd_str){bad[i], strlen(bad[i])});
        assert_int_equal(n, 28);
        assert_true(id_chars_ok(id, n));
    }
    /* a buffer too small for the signature: the id goes without it */
    char small[40];
    assert_int_equal(wd_anthropic_tool_id(small, sizeof(small), WD_STR("YWJjZGVmZ2hpamtsbW5vcA==")), 28);
    assert_int_equal(wd_anthropic_tool_id(small, 20, WD_STR_NULL), 0);
}

static void assert_buf(struct wd_buf *b, const char *want)
{
    normalise_ids(b);
    size_t n = strlen(want);
    if (b->n != n || memcmp(b->p, want, n) != 0)
        print_error("got:\n%.*s\nwant:\n%s\n", (int)b->n, b->p, want);
    assert_int_equal(b->n, n);
    assert_memory_equal(b->p, want, n);
}

/* One message with every block kind. */
static void emit_all(struct wd_sink *s)
{
    struct wd_usage u0 = {.input_tokens = 10, .cache_read_tokens = 5, .output_tokens = 1};
    struct wd_usage u1 = {.input_tokens = 10, .cache_read_tokens = 5, .output_tokens = 42};
    const struct wd_event evs[] = {
        {.type = WD_EV_MESSAGE_START, .usage = u0},
        {.type = WD_EV_PART_START, .index = 0, .part_type = WD_PART_THINKING},
        {.type = WD_EV_DELTA, .index = 0, .part_type = WD_PART_THINKING, .text = WD_STR("Let me \\\"think\\\"")},
        {.type = WD_EV_DELTA, .index = 0, .part_type = WD_PART_THINKING, .signature = WD_STR("c2ln+/==")},
        {.type = WD_EV_PART_STOP, .index = 0, .part_type = WD_PART_THINKING},
        {.type = WD_EV_PART_START, .index = 1, .part_type = WD_PART_TEXT},
        {.type = WD_EV_DELTA, .index = 1, .part_type = WD_PART_TEXT, .text = WD_STR("Hi\\n")},
        {.type = WD_EV_DELTA, .index = 1, .part_type = WD_PART_TEXT, .text = WD_STR("th\\u00e9re")},
        {.type = WD_EV_PART_STOP, .index = 1, .part_type = WD_PART_TEXT},
        {.type = WD_EV_PART_START, .index = 2, .part_type = WD_PART_SIGNATURE, .signature = WD_STR("cmVk")},
        {.type = WD_EV_PART_STOP, .index = 2, .part_type = WD_PART_SIGNATURE},
        {.type = WD_EV_PART_START, .index = 3, .part_type = WD_PART_TOOL_CALL, .name = WD_STR("get \"weather\""),
         .signature = WD_STR("EqU+/w==")},
        {.type = WD_EV_DELTA, .index = 3, .part_type = WD_PART_TOOL_CALL, .args = WD_STR("{\"city\":\"Paris\"}")},
        {.type = WD_EV_PART_STOP, .index = 3, .part_type = WD_PART_TOOL_CALL},
        {.type = WD_EV_PART_START, .index = 4, .part_type = WD_PART_TOOL_CALL, .name = WD_STR("noargs")},
        {.type = WD_EV_PART_STOP, .index = 4, .part_type = WD_PART_TOOL_CALL},
        {.type = WD_EV_MESSAGE_STOP, .stop_reason = WD_STOP_TOOL_USE, .usage = u1},
        /* nothing after the end reaches the client */
        {.type = WD_EV_PART_START, .index = 5, .part_type = WD_PART_TEXT},
        {.type = WD_EV_ERROR, .error_class = WD_ERR_API, .message = WD_STR("late")},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        s->emit(s, &evs[i]);
}

static void test_out_stream(void **state)
{
    struct wd_buf out = {0};
    struct wd_anthropic_out o;
    wd_anthropic_out_init(&o, &out, true, WD_STR("claude-sonnet-4-5"));
    assert_int_equal(strlen(o.msg_id), 0); /* drawn when the message head is written */
    emit_all(&o.sink);
    assert_int_equal(strlen(o.msg_id), 30);
    assert_true(o.finished);
    assert_false(o.failed);
    assert_buf(&out,
               "event: message_start\n"
               "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_wdXXXXXXXXXXXXXXXXXXXXXXXX\",\"type\":"
               "\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,"
               "\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":0,"
               "\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n"
               "event: content_block_start\n"
               "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
               "\"thinking\":\"\",\"signature\":\"\"}}\n\n"
               "event: content_block_delta\n"
               "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":"
               "\"Let me \\\"think\\\"\"}}\n\n"
               "event: content_block_delta\n"
               "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
               "\"signature\":\"wdsig1.c2ln+/==\"}}\n\n"
               "event: content_block_stop\n"
               "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
               "event: content_block_start\n"
               "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
               "event: content_block_delta\n"
               "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\\n\"}}"
               "\n\n"
               "event: content_block_delta\n"
               "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":"
               "\"th\\u00e9re\"}}\n\n"
               "event: content_block_stop\n"
               "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
               "event: content_block_start\n"
               "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"redacted_thinking\","
               "\"data\":\"wdsig1.cmVk\"}}\n\n"
               "event: content_block_stop\n"
               "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
               "event: content_block_start\n"
               "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":"
               "\"toolu_wdXXXXXXXXXXXXXXXXXXXX_EqU-_w\",\"name\":\"get \\\"weather\\\"\",\"input\":{}}}\n\n"
               "event: content_block_delta\n"
               "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\","
               "\"partial_json\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}\n\n"
               "event: content_block_stop\n"
               "data: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
               "event: content_block_start\n"
               "data: {\"type\":\"content_block_start\",\"index\":4,\"content_block\":{\"type\":\"tool_use\",\"id\":"
               "\"toolu_wdXXXXXXXXXXXXXXXXXXXX\",\"name\":\"noargs\",\"input\":{}}}\n\n"
               "event: content_block_stop\n"
               "data: {\"type\":\"content_block_stop\",\"index\":4}\n\n"
               "event: message_delta\n"
               "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
               "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":5,"
               "\"output_tokens\":42}}\n\n"
               "event: message_stop\n"
               "data: {\"type\":\"message_stop\"}\n\n");
    wd_anthropic_out_free(&o);
    wd_buf_free(&out);
}

static void test_out_json(void **state)
{
    struct wd_buf out = {0};
    struct wd_anthropic_out o;
    wd_anthropic_out_init(&o, &out, false, WD_STR("claude-sonnet-4-5"));
    emit_all(&o.sink);
    assert_true(o.finished);
    assert_false(o.failed);
    assert_buf(&out,
               "{\"id\":\"msg_wdXXXXXXXXXXXXXXXXXXXXXXXX\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
               "\"claude-sonnet-4-5\",\"content\":["
               "{\"type\":\"thinking\",\"thinking\":\"Let me \\\"think\\\"\",\"signature\":\"wdsig1.c2ln+/==\"},"
               "{\"type\":\"text\",\"text\":\"Hi\\nth\\u00e9re\"},"
               "{\"type\":\"redacted_thinking\",\"data\":\"wdsig1.cmVk\"},"
               "{\"type\":\"tool_use\",\"id\":\"toolu_wdXXXXXXXXXXXXXXXXXXXX_EqU-_w\",\"name\":\"get \\\"weather\\\"\","
               "\"input\":{\"city\":\"Paris\"}},"
               "{\"type\":\"tool_use\",\"id\":\"toolu_wdXXXXXXXXXXXXXXXXXXXX\",\"name\":\"noargs\",\"input\":{}}],"
               "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,"
               "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":5,\"output_tokens\":42}}");
    wd_anthropic_out_free(&o);
    wd_buf_free(&out);
}

static void test_out_stop_sequence_and_errors(void **state)
{
    /* stop_sequence is written (escaped) only with that stop reason */
    const struct wd_event stop[] = {
        {.type = WD_EV_MESSAGE_START},
        {.type = WD_EV_MESSAGE_STOP, .stop_reason = WD_STOP_STOP_SEQUENCE, .stop_sequence = WD_STR("\n\"END\"")},
    };
    struct wd_buf out = {0};
    struct wd_anthropic_out o;
    wd_anthropic_out_init(&o, &out, false, WD_STR("m"));
    o.sink.emit(&o.sink, &stop[0]);
    o.sink.emit(&o.sink, &stop[1]);
    assert_true(wd_str_contains((struct wd_str){out.p, out.n},
                                "\"content\":[],\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"\\n\\\"END\\\"\""));
    wd_anthropic_out_free(&o);
    out.n = 0;
    wd_anthropic_out_init(&o, &out, true, WD_STR("m"));
    o.sink.emit(&o.sink, &stop[0]);
    o.sink.emit(&o.sink, &stop[1]);
    assert_true(wd_str_contains((struct wd_str){out.p, out.n},
                                "{\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"\\n\\\"END\\\"\"}"));
    wd_anthropic_out_free(&o);

    /* stream: an error after content is an `event: error` and ends the stream */
    static const enum wd_stop_reason reasons[] = {WD_STOP_END_TURN, WD_STOP_MAX_TOKENS, WD_STOP_REFUSAL};
    static const char *names[] = {"end_turn", "max_tokens", "refusal"};
    for (int i = 0; i < 3; i++) {
        out.n = 0;
        wd_anthropic_out_init(&o, &out, true, WD_STR("m"));
        struct wd_event ev = {.type = WD_EV_MESSAGE_STOP, .stop_reason = reasons[i]};
        o.sink.emit(&o.sink, &ev);
        char want[96];
        snprintf(want, sizeof(want), "{\"stop_reason\":\"%s\",\"stop_sequence\":null}", names[i]);
        assert_true(wd_str_contains((struct wd_str){out.p, out.n}, want));
        wd_anthropic_out_free(&o);
    }
    out.n = 0;
    wd_anthropic_out_init(&o, &out, true, WD_STR("m"));
    struct wd_event err = {.type = WD_EV_ERROR, .error_class = WD_ERR_OVERLOADED,
                           .message = WD_STR("busy \"now\"")};
    o.sink.emit(&o.sink, &stop[0]);
    size_t before = out.n;
    o.sink.emit(&o.sink, &err);
    o.sink.emit(&o.sink, &stop[1]);
    assert_true(o.finished);
    assert_true(o.failed);
    const char *want = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                       "\"busy \\\"now\\\"\"}}\n\n";
    assert_int_equal(out.n - before, strlen(want));
    assert_memory_equal(out.p + before, want, strlen(want));
    wd_anthropic_out_free(&o);
    /* non-stream: the error is kept for the caller to answer with its status; nothing is written */
    out.n = 0;
    wd_anthropic_out_init(&o, &out, false, WD_STR("m"));
    err.error_class = WD_ERR_RATE_LIMIT;
    o.sink.emit(&o.sink, &stop[0]);
    o.sink.emit(&o.sink, &err);
    assert_true(o.failed);
    assert_int_equal(out.n, 0);
    assert_int_equal(o.error.cls, WD_ERR_RATE_LIMIT);
    assert_string_equal(o.error.msg, "busy \"now\"");
    wd_anthropic_out_free(&o);
    wd_buf_free(&out);
}

static void test_error_shapes(void **state)
{
    static const struct {
        enum wd_error_class cls;
        int status;
        const char *type;
    } t[] = {
        {WD_ERR_INVALID_REQUEST, 400, "invalid_request_error"}, {WD_ERR_AUTHENTICATION, 401, "authentication_error"},
        {WD_ERR_PERMISSION, 403, "permission_error"},           {WD_ERR_NOT_FOUND, 404, "not_found_error"},
        {WD_ERR_TOO_LARGE, 413, "request_too_large"},           {WD_ERR_UNSUPPORTED_MEDIA, 415, "invalid_request_error"},
        {WD_ERR_RATE_LIMIT, 429, "rate_limit_error"},           {WD_ERR_API, 500, "api_error"},
        {WD_ERR_BAD_GATEWAY, 502, "api_error"},                 {WD_ERR_UNAVAILABLE, 503, "api_error"},
        {WD_ERR_TIMEOUT, 504, "timeout_error"},                 {WD_ERR_OVERLOADED, 529, "overloaded_error"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(wd_anthropic_error_status(t[i].cls), t[i].status);
        assert_string_equal(wd_anthropic_error_type(t[i].cls), t[i].type);
    }
    struct wd_buf b = {0};
    wd_anthropic_write_error(&b, WD_ERR_NOT_FOUND, "no \"such\"\nmodel", 15);
    const char *want = "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"no \\\"such\\\"\\nmodel\"}}";
    assert_int_equal(b.n, strlen(want));
    assert_memory_equal(b.p, want, b.n);
    b.n = 0;
    wd_anthropic_write_ping(&b);
    assert_int_equal(b.n, strlen("event: ping\ndata: {\"type\": \"ping\"}\n\n"));
    wd_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_turn_fixture),
        cmocka_unit_test(test_tool_result_fixture),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_message_utf8),
        cmocka_unit_test(test_lax_input),
        cmocka_unit_test(test_tool_id),
        cmocka_unit_test(test_out_stream),
        cmocka_unit_test(test_out_json),
        cmocka_unit_test(test_out_stop_sequence_and_errors),
        cmocka_unit_test(test_error_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
