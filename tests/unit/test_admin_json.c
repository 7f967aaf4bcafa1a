/* The admin API's request-body parsers (authz/admin_json.c): every accepted shape of a key, team and budget body,
 * each refusal naming its field, the exact micro-USD conversion, repeated and unknown keys, oversized and deeply
 * nested bodies, and RFC 3339 times. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/admin_json.h"

#define NOW INT64_C(1796083200) /* 2026-12-01T00:00:00Z */

static char err[256];

static int key(const char *body, bool patch, struct wd_admin_key_req *r)
{
    err[0] = '\0';
    return wd_admin_parse_key(body, strlen(body), patch, NOW, r, err, sizeof err);
}

/* A body refused, with err starting with want (the field and its rule). */
static void key_refused(const char *body, bool patch, const char *want)
{
    struct wd_admin_key_req r;
    int rc = key(body, patch, &r);
    if (rc != -1 || strncmp(err, want, strlen(want)) != 0)
        fail_msg("key body %s (patch %d): rc %d, err \"%s\", want \"%s...\"", body, patch, rc, err, want);
    assert_null(r.models);
    assert_null(r.roles);
}

static void team_refused(const char *body, const char *want)
{
    struct wd_admin_team_req r;
    int rc = wd_admin_parse_team(body, strlen(body), &r, err, sizeof err);
    if (rc != -1 || strncmp(err, want, strlen(want)) != 0)
        fail_msg("team body %s: rc %d, err \"%s\", want \"%s...\"", body, rc, err, want);
}

static int budget(const char *body, bool patch, enum wd_admin_metric m, struct wd_admin_budget_req *r)
{
    memset(r, 0, sizeof *r);
    r->metric = m;
    err[0] = '\0';
    return wd_admin_parse_budget(body, strlen(body), patch, r, err, sizeof err);
}

static void budget_refused(const char *body, bool patch, enum wd_admin_metric m, const char *want)
{
    struct wd_admin_budget_req r;
    int rc = budget(body, patch, m, &r);
    if (rc != -1 || strncmp(err, want, strlen(want)) != 0)
        fail_msg("budget body %s (patch %d): rc %d, err \"%s\", want \"%s...\"", body, patch, rc, err, want);
    assert_false(r.has_limit);
}

/* The micro-USD (or integer) value of a create's limit, or -1 when refused. */
static int64_t limit_of(const char *num, const char *metric)
{
    char body[256];
    snprintf(body, sizeof body, "{\"scope\":\"team\",\"subject\":\"eng\",\"metric\":\"%s\",\"period\":\"daily\","
             "\"limit\":%s}", metric, num);
    struct wd_admin_budget_req r;
    if (budget(body, false, 0, &r) != 0)
        return -1;
    assert_true(r.has_limit);
    return r.limit;
}

static void test_key_create_minimal(void **state)
{
    (void)state;
    struct wd_admin_key_req r;
    assert_int_equal(key("{\"name\":\"ci-bot_1.x@corp\"}", false, &r), 0);
    assert_true(r.has_name);
    assert_string_equal(r.name, "ci-bot_1.x@corp");
    assert_int_equal(r.owner_set, WD_ADMIN_ABSENT);
    assert_int_equal(r.team_set, WD_ADMIN_ABSENT);
    assert_false(r.models_set);
    assert_false(r.roles_set);
    assert_int_equal(r.expires_set, WD_ADMIN_ABSENT);
    wd_admin_key_req_free(&r);
}

static void test_key_create_full(void **state)
{
    (void)state;
    struct wd_admin_key_req r;
    const char *body = " {\"name\":\"ci\",\"owner\":\"Zo\\u00eb <zoe@example.com>\",\"team\":\"eng\","
                       "\"models\":[\"tier:sonnet\",\"oai/*\",\"gemini/gemini-2.5-flash\"],"
                       "\"roles\":[\"dev\",\"keys:reader\"],\"expires_at\":\"2027-01-31T00:00:00Z\"} \n";
    assert_int_equal(key(body, false, &r), 0);
    assert_string_equal(r.name, "ci");
    assert_int_equal(r.owner_set, WD_ADMIN_SET);
    assert_string_equal(r.owner, "Zo\xc3\xab <zoe@example.com>");
    assert_int_equal(r.team_set, WD_ADMIN_SET);
    assert_string_equal(r.team, "eng");
    assert_true(r.models_set);
    assert_int_equal(r.nmodels, 3);
    assert_string_equal(r.models[0], "tier:sonnet");
    assert_string_equal(r.models[1], "oai/*");
    assert_string_equal(r.models[2], "gemini/gemini-2.5-flash");
    assert_true(r.roles_set);
    assert_int_equal(r.nroles, 2);
    assert_string_equal(r.roles[0], "dev");
    assert_string_equal(r.roles[1], "keys:reader");
    assert_int_equal(r.expires_set, WD_ADMIN_SET);
    assert_int_equal(r.expires_at, INT64_C(1801353600));
    wd_admin_key_req_free(&r);
    assert_null(r.models);
    assert_int_equal(r.nroles, 0);
    wd_admin_key_req_free(&r); /* twice is harmless */
}

static void test_key_create_nulls_and_empty_lists(void **state)
{
    (void)state;
    struct wd_admin_key_req r;
    assert_int_equal(key("{\"name\":\"a\",\"owner\":null,\"team\":null,\"expires_at\":null,\"models\":[],"
                         "\"roles\":[]}", false, &r), 0);
    assert_int_equal(r.owner_set, WD_ADMIN_NULL);
    assert_int_equal(r.team_set, WD_ADMIN_NULL);
    assert_int_equal(r.expires_set, WD_ADMIN_NULL);
    assert_true(r.models_set);
    assert_int_equal(r.nmodels, 0);
    assert_true(r.roles_set);
    assert_int_equal(r.nroles, 0);
    wd_admin_key_req_free(&r);
}

static void test_key_patch(void **state)
{
    (void)state;
    struct wd_admin_key_req r;
    assert_int_equal(key("{\"team\":null}", true, &r), 0);
    assert_false(r.has_name);
    assert_int_equal(r.team_set, WD_ADMIN_NULL);
    assert_int_equal(r.owner_set, WD_ADMIN_ABSENT);
    wd_admin_key_req_free(&r);

    assert_int_equal(key("{\"expires_at\":null,\"owner\":\"ops\"}", true, &r), 0);
    assert_int_equal(r.expires_set, WD_ADMIN_NULL);
    assert_int_equal(r.owner_set, WD_ADMIN_SET);
    assert_string_equal(r.owner, "ops");
    wd_admin_key_req_free(&r);

    assert_int_equal(key("{\"models\":[\"*\"],\"roles\":[\"admin\"]}", true, &r), 0);
    assert_int_equal(r.nmodels, 1);
    assert_string_equal(r.models[0], "*");
    assert_int_equal(r.nroles, 1);
    wd_admin_key_req_free(&r);

    assert_int_equal(key("{\"expires_at\":\"2030-06-15T12:30:45.123Z\"}", true, &r), 0);
    assert_int_equal(r.expires_at, INT64_C(1907757045));
    wd_admin_key_req_free(&r);
}

static void test_key_refusals(void **state)
{
    (void)state;
    key_refused("{}", false, "name: required");
    key_refused("{\"owner\":\"x\"}", false, "name: required");
    key_refused("{\"name\":\"\"}", false, "name: 1-128 characters of A-Z a-z 0-9 . _ @ -");
    key_refused("{\"name\":\"a b\"}", false, "name: 1-128");
    key_refused("{\"name\":\"a:b\"}", false, "name: 1-128");
    key_refused("{\"name\":\"caf\\u00e9\"}", false, "name: 1-128");
    key_refused("{\"name\":7}", false, "name: 1-128");
    key_refused("{\"name\":null}", false, "name: 1-128");
    key_refused("{\"name\":\"a\\u0000b\"}", false, "name: 1-128");
    key_refused("{\"name\":\"a\",\"owner\":\"\"}", false, "owner: ");
    key_refused("{\"name\":\"a\",\"owner\":\"tab\\there\"}", false, "owner: ");
    key_refused("{\"name\":\"a\",\"owner\":[\"x\"]}", false, "owner: ");
    key_refused("{\"name\":\"a\",\"team\":\"no spaces\"}", false, "team: null or 1-128");
    key_refused("{\"name\":\"a\",\"team\":true}", false, "team: ");
    key_refused("{\"name\":\"a\",\"models\":\"*\"}", false, "models: an array of at most 64 strings");
    key_refused("{\"name\":\"a\",\"models\":null}", false, "models: an array");
    key_refused("{\"name\":\"a\",\"models\":[\"ok\",\"has space\"]}", false, "models: each 1-256 printable ASCII");
    key_refused("{\"name\":\"a\",\"models\":[\"ok\",\"\"]}", false, "models: each");
    key_refused("{\"name\":\"a\",\"models\":[\"ok\",3]}", false, "models: each");
    key_refused("{\"name\":\"a\",\"models\":[\"ok\",[\"x\"]]}", false, "models: each");
    key_refused("{\"name\":\"a\",\"models\":[\"\\u00e9\"]}", false, "models: each");
    key_refused("{\"name\":\"a\",\"roles\":[\"dev\",\"a/b\"]}", false, "roles: each 1-128 characters");
    key_refused("{\"name\":\"a\",\"roles\":{}}", false, "roles: an array");
    key_refused("{\"name\":\"a\",\"expires_at\":\"2027-01-31\"}", false, "expires_at: null or an RFC 3339");
    key_refused("{\"name\":\"a\",\"expires_at\":1801353600}", false, "expires_at: null or an RFC 3339");
    key_refused("{\"name\":\"a\",\"expires_at\":\"2026-11-30T23:59:59Z\"}", false, "expires_at: must be in the future");
    key_refused("{\"name\":\"a\",\"expires_at\":\"2026-12-01T00:00:00Z\"}", false, "expires_at: must be in the future");
    key_refused("{\"name\":\"a\",\"key\":\"wk-x\"}", false, "unknown field \"key\"");
    key_refused("{\"name\":\"a\",\"Name\":\"b\"}", false, "unknown field \"Name\"");
    /* PATCH: only updatable fields, at least one */
    key_refused("{}", true, "body: at least one of owner, team, models, roles, expires_at");
    key_refused("{\"name\":\"b\"}", true, "name: cannot be changed");
    key_refused("{\"id\":\"key_0\"}", true, "unknown field \"id\"");
}

static void test_key_list_bounds(void **state)
{
    (void)state;
    char body[20000];
    struct wd_admin_key_req r;
    /* 64 entries fit, 65 do not */
    for (int count = 64; count <= 65; count++) {
        size_t w = (size_t)snprintf(body, sizeof body, "{\"name\":\"a\",\"roles\":[");
        for (int i = 0; i < count; i++)
            w += (size_t)snprintf(body + w, sizeof body - w, "%s\"r%d\"", i ? "," : "", i);
        snprintf(body + w, sizeof body - w, "]}");
        int rc = key(body, false, &r);
        if (count == 64) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.nroles, 64);
            assert_string_equal(r.roles[63], "r63");
            wd_admin_key_req_free(&r);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, "roles: an array of at most 64 strings");
        }
    }
    /* lengths: a name of 128 fits, 129 does not; a model of 256 fits, 257 does not */
    char n128[129], n129[130], m256[257], m257[258];
    memset(n128, 'n', 128), n128[128] = '\0';
    memset(n129, 'n', 129), n129[129] = '\0';
    memset(m256, 'm', 256), m256[256] = '\0';
    memset(m257, 'm', 257), m257[257] = '\0';
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"owner\":\"%s\",\"team\":\"%s\",\"models\":[\"%s\"],\"roles\":[\"%s\"]}", n128,
             n128, n128, m256, n128);
    assert_int_equal(key(body, false, &r), 0);
    assert_int_equal(strlen(r.name), 128);
    assert_int_equal(strlen(r.owner), 128);
    assert_int_equal(strlen(r.team), 128);
    assert_int_equal(strlen(r.models[0]), 256);
    assert_int_equal(strlen(r.roles[0]), 128);
    wd_admin_key_req_free(&r);
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", n129);
    key_refused(body, false, "name: 1-128");
    snprintf(body, sizeof body, "{\"name\":\"a\",\"owner\":\"%s\"}", n129);
    key_refused(body, false, "owner: ");
    snprintf(body, sizeof body, "{\"name\":\"a\",\"team\":\"%s\"}", n129);
    key_refused(body, false, "team: ");
    snprintf(body, sizeof body, "{\"name\":\"a\",\"models\":[\"%s\"]}", m257);
    key_refused(body, false, "models: each");
    snprintf(body, sizeof body, "{\"name\":\"a\",\"roles\":[\"x\",\"%s\"]}", n129);
    key_refused(body, false, "roles: each");
    /* a list refused after some entries were copied frees them (LeakSanitizer checks) */
    key_refused("{\"name\":\"a\",\"models\":[\"x\",\"y\"],\"roles\":[\"r\",\"bad role\"]}", false, "roles: each");
}

static void test_body_shape(void **state)
{
    (void)state;
    key_refused("", false, "body: a JSON object is required");
    key_refused("[]", false, "body: must be a JSON object");
    key_refused("\"name\"", false, "body: must be a JSON object");
    key_refused("null", false, "body: must be a JSON object");
    key_refused("{\"name\":\"a\"", false, "body: not valid JSON");
    key_refused("{\"name\":\"a\"} {}", false, "body: not valid JSON");
    key_refused("{\"name\":\"a\"}x", false, "body: not valid JSON");
    key_refused("{\"name\":\"a\",}", false, "body: not valid JSON");
    key_refused("{'name':'a'}", false, "body: not valid JSON");
    key_refused("{\"name\":\"\xc3\x28\"}", false, "body: not valid JSON");   /* invalid UTF-8 */
    key_refused("{\"name\":\"\xed\xa0\x80\"}", false, "body: not valid JSON"); /* a UTF-16 surrogate */
    key_refused("{\"name\":\"a\tb\"}", false, "body: not valid JSON");         /* raw control character */
    /* an embedded NUL byte: the length, not strlen, is what counts */
    struct wd_admin_key_req r;
    assert_int_equal(wd_admin_parse_key("{\"name\":\"a\"}\0", 13, false, NOW, &r, err, sizeof err), -1);
    assert_int_equal(strncmp(err, "body: not valid JSON", 20), 0);
    /* nothing to parse at NULL */
    assert_int_equal(wd_admin_parse_key(NULL, 0, false, NOW, &r, err, sizeof err), -1);
    /* err may be NULL */
    assert_int_equal(wd_admin_parse_key("{}", 2, false, NOW, &r, NULL, 0), -1);
}

static void test_repeated_keys(void **state)
{
    (void)state;
    key_refused("{\"name\":\"a\",\"name\":\"b\"}", false, "repeated key \"name\"");
    /* two spellings of one name are one member */
    key_refused("{\"name\":\"a\",\"n\\u0061me\":\"b\"}", false, "repeated key \"name\"");
    key_refused("{\"team\":null,\"team\":\"eng\"}", true, "repeated key \"team\"");
    team_refused("{\"name\":\"a\",\"org\":\"o\",\"org\":\"p\"}", "repeated key \"org\"");
    budget_refused("{\"limit\":1,\"limit\":2}", true, WD_ADMIN_METRIC_USD, "repeated key \"limit\"");
    /* inside a nested array of the body (refused anyway, but as a repeat, before the field's own rule) */
    key_refused("{\"name\":\"a\",\"models\":[{\"x\":1,\"x\":2}]}", false, "repeated key \"x\"");
    key_refused("{\"name\":\"a\",\"roles\":[[[{\"deep\":1,\"deep\":1}]]]}", false, "repeated key \"deep\"");
}

static void test_unknown_field_name_cleaned(void **state)
{
    (void)state;
    char body[512];
    char longname[101];
    memset(longname, 'z', 100);
    longname[100] = '\0';
    snprintf(body, sizeof body, "{\"name\":\"a\",\"%s\":1}", longname);
    key_refused(body, false, "unknown field \"");
    /* cut to 64 bytes */
    char want[100];
    snprintf(want, sizeof want, "unknown field \"%.64s\"", longname);
    assert_string_equal(err, want);
    /* control characters removed */
    key_refused("{\"na\\nm\\u0001e\\u007f!\":1}", false, "unknown field \"name!\"");
    /* a multi-byte character is not cut in half at the 64-byte mark */
    snprintf(body, sizeof body, "{\"%.63s\\u00e9\":1}", longname);
    key_refused(body, false, "unknown field");
    snprintf(want, sizeof want, "unknown field \"%.63s\"", longname);
    assert_string_equal(err, want);
}

static void test_huge_and_deep(void **state)
{
    (void)state;
    struct wd_admin_key_req r;
    /* over 64 KiB: refused by its size before parsing */
    size_t n = WD_ADMIN_MAX_BODY + 1;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"name\":\"a\"}", 12);
    big[n] = '\0';
    assert_int_equal(wd_admin_parse_key(big, n, false, NOW, &r, err, sizeof err), -1);
    assert_string_equal(err, "body: at most 65536 bytes");
    /* exactly 64 KiB is allowed */
    assert_int_equal(wd_admin_parse_key(big, n - 1, false, NOW, &r, err, sizeof err), 0);
    wd_admin_key_req_free(&r);
    /* deep nesting within the size: refused without a crash */
    size_t depth = 30000;
    memcpy(big, "{\"models\":", 10);
    memset(big + 10, '[', depth);
    memset(big + 10 + depth, ']', depth);
    big[10 + 2 * depth] = '}';
    assert_int_equal(wd_admin_parse_key(big, 11 + 2 * depth, false, NOW, &r, err, sizeof err), -1);
    assert_int_equal(strncmp(err, "body: not valid JSON", 20), 0);
    struct wd_admin_budget_req b = {0};
    assert_int_equal(wd_admin_parse_budget(big, 11 + 2 * depth, false, &b, err, sizeof err), -1);
    struct wd_admin_team_req t;
    assert_int_equal(wd_admin_parse_team(big, 11 + 2 * depth, &t, err, sizeof err), -1);
    /* a wide body within the size: 20000 list entries are refused by their count, before any is copied */
    size_t w = (size_t)snprintf(big, n, "{\"name\":\"a\",\"models\":[\"m\"");
    for (int i = 1; i < 20000; i++)
        w += (size_t)snprintf(big + w, n - w, ",1");
    w += (size_t)snprintf(big + w, n - w, "]}");
    assert_int_equal(wd_admin_parse_key(big, w, false, NOW, &r, err, sizeof err), -1);
    assert_string_equal(err, "models: an array of at most 64 strings");
    free(big);
}

static void test_team(void **state)
{
    (void)state;
    struct wd_admin_team_req r;
    assert_int_equal(wd_admin_parse_team("{\"name\":\"eng\"}", 14, &r, err, sizeof err), 0);
    assert_string_equal(r.name, "eng");
    assert_false(r.has_org);
    const char *b = "{\"org\":\"acme.corp\",\"name\":\"ml-team_2\"}";
    assert_int_equal(wd_admin_parse_team(b, strlen(b), &r, err, sizeof err), 0);
    assert_string_equal(r.name, "ml-team_2");
    assert_true(r.has_org);
    assert_string_equal(r.org, "acme.corp");
    b = "{\"name\":\"eng\",\"org\":null}";
    assert_int_equal(wd_admin_parse_team(b, strlen(b), &r, err, sizeof err), 0);
    assert_false(r.has_org);
    team_refused("{}", "name: required");
    team_refused("{\"org\":\"acme\"}", "name: required");
    team_refused("{\"name\":\"\"}", "name: 1-128 characters of A-Z a-z 0-9 . _ @ -");
    team_refused("{\"name\":\"a/b\"}", "name: 1-128");
    team_refused("{\"name\":[\"a\"]}", "name: 1-128");
    team_refused("{\"name\":\"a\",\"org\":\"o o\"}", "org: null or 1-128");
    team_refused("{\"name\":\"a\",\"org\":1}", "org: ");
    team_refused("{\"name\":\"a\",\"created_at\":\"x\"}", "unknown field \"created_at\"");
    team_refused("[\"name\"]", "body: must be a JSON object");
}

static void test_budget_create(void **state)
{
    (void)state;
    struct wd_admin_budget_req r;
    static const struct {
        const char *scope, *metric, *period;
        enum wd_admin_scope s;
        enum wd_admin_metric m;
        enum wd_admin_period p;
    } cases[] = {
        {"key", "usd", "minute", WD_ADMIN_SCOPE_KEY, WD_ADMIN_METRIC_USD, WD_ADMIN_PERIOD_MINUTE},
        {"team", "requests", "daily", WD_ADMIN_SCOPE_TEAM, WD_ADMIN_METRIC_REQUESTS, WD_ADMIN_PERIOD_DAILY},
        {"org", "tokens", "weekly", WD_ADMIN_SCOPE_ORG, WD_ADMIN_METRIC_TOKENS, WD_ADMIN_PERIOD_WEEKLY},
        {"team", "usd", "monthly", WD_ADMIN_SCOPE_TEAM, WD_ADMIN_METRIC_USD, WD_ADMIN_PERIOD_MONTHLY},
        {"key", "tokens", "total", WD_ADMIN_SCOPE_KEY, WD_ADMIN_METRIC_TOKENS, WD_ADMIN_PERIOD_TOTAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"limit\":5,\"period\":\"%s\",\"metric\":\"%s\",\"subject\":\"key_0123456789abcdef\","
                 "\"scope\":\"%s\"}", cases[i].period, cases[i].metric, cases[i].scope);
        assert_int_equal(budget(body, false, 0, &r), 0);
        assert_int_equal(r.scope, cases[i].s);
        assert_int_equal(r.metric, cases[i].m);
        assert_int_equal(r.period, cases[i].p);
        assert_string_equal(r.subject, "key_0123456789abcdef");
        assert_true(r.has_limit);
        assert_int_equal(r.limit, cases[i].m == WD_ADMIN_METRIC_USD ? 5000000 : 5);
    }
}

static void test_budget_refusals(void **state)
{
    (void)state;
    const enum wd_admin_metric U = WD_ADMIN_METRIC_USD;
    budget_refused("{\"subject\":\"eng\",\"metric\":\"usd\",\"period\":\"daily\",\"limit\":1}", false, U,
                   "scope: required");
    budget_refused("{\"scope\":\"team\",\"metric\":\"usd\",\"period\":\"daily\",\"limit\":1}", false, U,
                   "subject: required");
    budget_refused("{\"scope\":\"team\",\"subject\":\"eng\",\"period\":\"daily\",\"limit\":1}", false, U,
                   "metric: required");
    budget_refused("{\"scope\":\"team\",\"subject\":\"eng\",\"metric\":\"usd\",\"limit\":1}", false, U,
                   "period: required");
    budget_refused("{\"scope\":\"team\",\"subject\":\"eng\",\"metric\":\"usd\",\"period\":\"daily\"}", false, U,
                   "limit: required");
    budget_refused("{\"scope\":\"user\"}", false, U, "scope: one of \"key\", \"team\", \"org\"");
    budget_refused("{\"scope\":\"Team\"}", false, U, "scope: one of");
    budget_refused("{\"scope\":1}", false, U, "scope: one of");
    budget_refused("{\"metric\":\"eur\"}", false, U, "metric: one of \"usd\", \"requests\", \"tokens\"");
    budget_refused("{\"period\":\"yearly\"}", false, U, "period: one of \"minute\", \"daily\"");
    budget_refused("{\"period\":null}", false, U, "period: one of");
    budget_refused("{\"subject\":\"\"}", false, U, "subject: 1-128 characters of A-Z a-z 0-9 . _ @ -");
    budget_refused("{\"subject\":\"a b\"}", false, U, "subject: 1-128");
    budget_refused("{\"limit\":\"10\"}", false, U, "limit: a number greater than 0");
    budget_refused("{\"limit\":null}", true, U, "limit: a number greater than 0");
    budget_refused("{\"scope\":\"team\",\"spent\":0}", false, U, "unknown field \"spent\"");
    /* PATCH: only limit */
    budget_refused("{}", true, U, "limit: required");
    budget_refused("{\"limit\":1,\"period\":\"daily\"}", true, U, "period: cannot be changed");
    budget_refused("{\"scope\":\"key\",\"limit\":1}", true, U, "scope: cannot be changed");
    budget_refused("{\"subject\":\"x\",\"limit\":1}", true, U, "subject: cannot be changed");
    budget_refused("{\"metric\":\"usd\",\"limit\":1}", true, U, "metric: cannot be changed");
    budget_refused("{\"limit\":1,\"id\":\"bud_1\"}", true, U, "unknown field \"id\"");
    /* PATCH without the stored metric from the caller */
    budget_refused("{\"limit\":1}", true, 0, "limit: the budget's metric is unknown");
    budget_refused("{\"limit\":1}", true, (enum wd_admin_metric)9, "limit: the budget's metric is unknown");
}

static void test_budget_patch(void **state)
{
    (void)state;
    struct wd_admin_budget_req r;
    assert_int_equal(budget("{\"limit\":2.5}", true, WD_ADMIN_METRIC_USD, &r), 0);
    assert_int_equal(r.limit, 2500000);
    assert_true(r.has_limit);
    assert_int_equal(r.metric, WD_ADMIN_METRIC_USD);
    assert_int_equal(r.scope, 0); /* untouched */
    assert_int_equal(budget("{\"limit\":1000}", true, WD_ADMIN_METRIC_TOKENS, &r), 0);
    assert_int_equal(r.limit, 1000);
    assert_int_equal(budget("{\"limit\":1e3}", true, WD_ADMIN_METRIC_REQUESTS, &r), 0);
    assert_int_equal(r.limit, 1000);
    budget_refused("{\"limit\":2.5}", true, WD_ADMIN_METRIC_REQUESTS, "limit: an integer from 1 to 10^15");
}

static void test_limit_exact_micro_usd(void **state)
{
    (void)state;
    assert_int_equal(limit_of("0.1", "usd"), 100000);
    assert_int_equal(limit_of("12.345678", "usd"), 12345678);
    assert_int_equal(limit_of("1e-6", "usd"), 1);
    assert_int_equal(limit_of("0.000001", "usd"), 1);
    assert_int_equal(limit_of("0.0000001", "usd"), -1);
    assert_string_equal(err, "limit: USD with at most 6 decimals");
    assert_int_equal(limit_of("12.3456789", "usd"), -1);
    assert_int_equal(limit_of("12.3456780", "usd"), 12345678); /* a trailing zero is not a 7th decimal */
    assert_int_equal(limit_of("0.29", "usd"), 290000);          /* 0.29 * 1e6 is 289999.99... in doubles */
    assert_int_equal(limit_of("4.35", "usd"), 4350000);
    assert_int_equal(limit_of("1E2", "usd"), 100000000);
    assert_int_equal(limit_of("1.5e+1", "usd"), 15000000);
    assert_int_equal(limit_of("150e-2", "usd"), 1500000);
    assert_int_equal(limit_of("10", "usd"), 10000000);
    assert_int_equal(limit_of("1000000000", "usd"), 1000000000000000); /* 10^15 micro-USD */
    assert_int_equal(limit_of("1000000000.000001", "usd"), -1);
    assert_int_equal(limit_of("0", "usd"), -1);
    assert_int_equal(limit_of("0.0", "usd"), -1);
    assert_int_equal(limit_of("0e5", "usd"), -1);
    assert_int_equal(limit_of("-1", "usd"), -1);
    assert_string_equal(err, "limit: a number of USD greater than 0, at most 1000000000");
    assert_int_equal(limit_of("-0.5", "usd"), -1);
    assert_int_equal(limit_of("1e999999999999999999", "usd"), -1);
    assert_int_equal(limit_of("1e-999999999999999999", "usd"), -1);
    assert_int_equal(limit_of("0.00000000000000000000000000000000000000000000000001e50", "usd"), 1000000);
}

static void test_limit_integers(void **state)
{
    (void)state;
    assert_int_equal(limit_of("1", "requests"), 1);
    assert_int_equal(limit_of("1e3", "requests"), 1000);
    assert_int_equal(limit_of("2.0", "tokens"), 2);
    assert_int_equal(limit_of("1.5e1", "tokens"), 15);
    assert_int_equal(limit_of("1000000000000000", "tokens"), 1000000000000000);
    assert_int_equal(limit_of("1e15", "tokens"), 1000000000000000);
    assert_int_equal(limit_of("1000000000000001", "tokens"), -1);
    assert_string_equal(err, "limit: an integer from 1 to 10^15");
    assert_int_equal(limit_of("1e16", "tokens"), -1);
    assert_int_equal(limit_of("99999999999999999999999", "tokens"), -1);
    assert_int_equal(limit_of("1.5", "requests"), -1);
    assert_string_equal(err, "limit: an integer from 1 to 10^15");
    assert_int_equal(limit_of("1e-1", "requests"), -1);
    assert_int_equal(limit_of("0", "requests"), -1);
    assert_int_equal(limit_of("-3", "tokens"), -1);
    /* more significant digits than any limit has */
    assert_int_equal(limit_of("1.00000000000000000000000000000000000000000000000000000001", "tokens"), -1);
    /* the exported helper takes the number's text as it is */
    int64_t v = 0;
    const char *why = NULL;
    assert_int_equal(wd_admin_parse_limit("7.25", 4, WD_ADMIN_METRIC_USD, &v, &why), 0);
    assert_int_equal(v, 7250000);
    assert_int_equal(wd_admin_parse_limit("7.", 2, WD_ADMIN_METRIC_USD, &v, &why), -1);
    assert_int_equal(wd_admin_parse_limit(".5", 2, WD_ADMIN_METRIC_USD, &v, &why), -1);
    assert_int_equal(wd_admin_parse_limit("1e", 2, WD_ADMIN_METRIC_USD, &v, &why), -1);
    assert_int_equal(wd_admin_parse_limit("1x", 2, WD_ADMIN_METRIC_USD, &v, &why), -1);
    assert_int_equal(wd_admin_parse_limit("", 0, WD_ADMIN_METRIC_USD, &v, &why), -1);
    assert_non_null(why);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(wd_admin_scope_name(WD_ADMIN_SCOPE_KEY), "key");
    assert_string_equal(wd_admin_scope_name(WD_ADMIN_SCOPE_TEAM), "team");
    assert_string_equal(wd_admin_scope_name(WD_ADMIN_SCOPE_ORG), "org");
    assert_null(wd_admin_scope_name((enum wd_admin_scope)0));
    assert_null(wd_admin_scope_name((enum wd_admin_scope)4));
    assert_string_equal(wd_admin_metric_name(WD_ADMIN_METRIC_USD), "usd");
    assert_string_equal(wd_admin_metric_name(WD_ADMIN_METRIC_REQUESTS), "requests");
    assert_string_equal(wd_admin_metric_name(WD_ADMIN_METRIC_TOKENS), "tokens");
    assert_null(wd_admin_metric_name((enum wd_admin_metric)4));
    assert_string_equal(wd_admin_period_name(WD_ADMIN_PERIOD_MINUTE), "minute");
    assert_string_equal(wd_admin_period_name(WD_ADMIN_PERIOD_DAILY), "daily");
    assert_string_equal(wd_admin_period_name(WD_ADMIN_PERIOD_WEEKLY), "weekly");
    assert_string_equal(wd_admin_period_name(WD_ADMIN_PERIOD_MONTHLY), "monthly");
    assert_string_equal(wd_admin_period_name(WD_ADMIN_PERIOD_TOTAL), "total");
    assert_null(wd_admin_period_name((enum wd_admin_period)6));
    for (int p = WD_ADMIN_PERIOD_MINUTE; p <= WD_ADMIN_PERIOD_TOTAL; p++) {
        const char *nm = wd_admin_period_name((enum wd_admin_period)p);
        assert_int_equal(wd_admin_period_from(nm, strlen(nm)), p);
    }
    assert_int_equal(wd_admin_scope_from("org", 3), WD_ADMIN_SCOPE_ORG);
    assert_int_equal(wd_admin_scope_from("organisation", 3), WD_ADMIN_SCOPE_ORG); /* n bytes, not strlen */
    assert_int_equal(wd_admin_scope_from("or", 2), 0);
    assert_int_equal(wd_admin_metric_from("tokens", 6), WD_ADMIN_METRIC_TOKENS);
    assert_int_equal(wd_admin_metric_from("USD", 3), 0);
    assert_int_equal(wd_admin_period_from("", 0), 0);
    assert_int_equal(wd_admin_period_from(NULL, 0), 0);
}

static int64_t t_of(const char *s)
{
    int64_t v = INT64_MIN;
    if (wd_admin_parse_time(s, strlen(s), &v) != 0)
        return -1;
    return v;
}

static void test_time(void **state)
{
    (void)state;
    assert_int_equal(t_of("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(t_of("2027-01-31T00:00:00Z"), INT64_C(1801353600));
    assert_int_equal(t_of("2026-12-08T00:00:00Z"), INT64_C(1796688000));
    assert_int_equal(t_of("2000-02-29T12:00:00Z"), INT64_C(951825600));    /* leap year (by 400) */
    assert_int_equal(t_of("2024-02-29T23:59:59Z"), INT64_C(1709251199));   /* leap year (by 4) */
    assert_int_equal(t_of("2023-02-29T00:00:00Z"), -1);                    /* not a leap year */
    assert_int_equal(t_of("1900-02-29T00:00:00Z"), -1);                    /* not a leap year (by 100) */
    assert_int_equal(t_of("2024-04-31T00:00:00Z"), -1);
    assert_int_equal(t_of("2024-13-01T00:00:00Z"), -1);                    /* bad month */
    assert_int_equal(t_of("2024-00-01T00:00:00Z"), -1);
    assert_int_equal(t_of("2024-01-00T00:00:00Z"), -1);
    assert_int_equal(t_of("2024-01-01T24:00:00Z"), -1);
    assert_int_equal(t_of("2024-01-01T00:60:00Z"), -1);
    assert_int_equal(t_of("2024-01-01T00:00:60Z"), -1);                    /* no leap second */
    assert_int_equal(t_of("2024-01-01T00:00:00"), -1);                     /* "Z" missing */
    assert_int_equal(t_of("2024-01-01 00:00:00Z"), -1);
    assert_int_equal(t_of("2024-01-01T00:00:00+01:00"), -1);
    assert_int_equal(t_of("2024-01-01T00:00:00-00:00"), -1);
    assert_int_equal(t_of("2024-01-01T00:00:00+00:00"), INT64_C(1704067200));
    assert_int_equal(t_of("2024-01-01t00:00:00z"), INT64_C(1704067200));
    assert_int_equal(t_of("2024-01-01T00:00:00.999999Z"), INT64_C(1704067200)); /* fraction ignored */
    assert_int_equal(t_of("2024-01-01T00:00:00.5+00:00"), INT64_C(1704067200));
    assert_int_equal(t_of("2024-01-01T00:00:00.Z"), -1);
    assert_int_equal(t_of("2024-01-01T00:00:00ZZ"), -1);
    assert_int_equal(t_of("2024-1-01T00:00:00Z"), -1);
    assert_int_equal(t_of("+024-01-01T00:00:00Z"), -1);
    assert_int_equal(t_of("2024-01-01T0a:00:00Z"), -1);
    assert_int_equal(t_of(""), -1);
    assert_int_equal(t_of("9999-12-31T23:59:59Z"), INT64_C(253402300799));
    assert_int_equal(t_of("0000-01-01T00:00:00Z"), INT64_C(-62167219200));
    /* the length bounds the read */
    int64_t v;
    assert_int_equal(wd_admin_parse_time("2024-01-01T00:00:00Zjunk", 20, &v), 0);
    assert_int_equal(wd_admin_parse_time("2024-01-01T00:00:00Z", 19, &v), -1);
    assert_int_equal(wd_admin_parse_time(NULL, 0, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_create_minimal),
        cmocka_unit_test(test_key_create_full),
        cmocka_unit_test(test_key_create_nulls_and_empty_lists),
        cmocka_unit_test(test_key_patch),
        cmocka_unit_test(test_key_refusals),
        cmocka_unit_test(test_key_list_bounds),
        cmocka_unit_test(test_body_shape),
        cmocka_unit_test(test_repeated_keys),
        cmocka_unit_test(test_unknown_field_name_cleaned),
        cmocka_unit_test(test_huge_and_deep),
        cmocka_unit_test(test_team),
        cmocka_unit_test(test_budget_create),
        cmocka_unit_test(test_budget_refusals),
        cmocka_unit_test(test_budget_patch),
        cmocka_unit_test(test_limit_exact_micro_usd),
        cmocka_unit_test(test_limit_integers),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
