/* RBAC: roles from bindings (group, subject or e-mail, key name) and from a roles claim; model grants by pattern
 * (every model, a tier's chain, an alias's chain, a provider's model or all of its models); default deny. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "authz/rbac.h"

static const char yaml[] =
    "providers:\n"
    "  gemini: {type: gemini, keys: [{secret: env://G}]}\n"
    "  oai: {type: openai, base_url: https://api.example.com, keys: [{secret: env://O}]}\n"
    "rbac:\n"
    "  roles:\n"
    "    dev: {models: [\"tier:sonnet\", \"tier:haiku\"]}\n"
    "    admin: {models: \"*\", permissions: [keys:manage]}\n"
    "    flash: {models: gemini/gemini-2.5-flash}\n"
    "    oai-all: {models: \"oai/*\"}\n"
    "    fast: {models: fast}\n"
    "  bindings:\n"
    "    - {group: engineering, role: dev}\n"
    "    - {subject: alice@example.com, role: admin}\n"
    "    - {key: ci, role: flash}\n"
    "    - {group: ml, role: oai-all}\n"
    "    - {group: engineering, role: fast}\n";

static struct wd_config *cfg;

static int setup(void **state)
{
    (void)state;
    struct wd_config_err err;
    return wd_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &err);
}

static int teardown(void **state)
{
    (void)state;
    wd_config_free(cfg);
    return 0;
}

static uint64_t role(const char *name)
{
    for (size_t i = 0; i < cfg->nroles; i++)
        if (strcmp(cfg->roles[i].name, name) == 0)
            return 1ull << i;
    fail_msg("no role %s", name);
    return 0;
}

static void test_roles(void **state)
{
    (void)state;
    struct wd_str groups[] = {WD_STR("other"), WD_STR("engineering")}, claim_roles[] = {WD_STR("flash"), WD_STR("nope")};
    char matched[64];
    struct wd_rbac_who who = {.groups = groups, .ngroups = 2};
    assert_int_equal(wd_rbac_roles(cfg, &who, matched, sizeof(matched)), role("dev") | role("fast"));
    assert_string_equal(matched, "engineering,engineering"); /* each binding that matched names its group */
    who = (struct wd_rbac_who){.subject = WD_STR("u1"), .email = WD_STR("alice@example.com")};
    assert_int_equal(wd_rbac_roles(cfg, &who, NULL, 0), role("admin"));
    who = (struct wd_rbac_who){.subject = WD_STR("alice@example.com")};
    assert_int_equal(wd_rbac_roles(cfg, &who, NULL, 0), role("admin"));
    who = (struct wd_rbac_who){.key = "ci"};
    assert_int_equal(wd_rbac_roles(cfg, &who, NULL, 0), role("flash"));
    who = (struct wd_rbac_who){.key = "cix", .subject = WD_STR("alice@example.co")};
    assert_int_equal(wd_rbac_roles(cfg, &who, NULL, 0), 0);
    who = (struct wd_rbac_who){.roles = claim_roles, .nroles = 2};
    assert_int_equal(wd_rbac_roles(cfg, &who, NULL, 0), role("flash"));
}

static void test_models(void **state)
{
    (void)state;
    char rule[160];
    struct wd_rbac_target sonnet = {.via = WD_RBAC_VIA_TIER, .tier = "sonnet", .provider = "gemini",
                                     .model = WD_STR("gemini-2.5-flash")};
    struct wd_rbac_target opus = {.via = WD_RBAC_VIA_TIER, .tier = "opus", .provider = "gemini",
                                   .model = WD_STR("gemini-2.5-pro")};
    struct wd_rbac_target flash = {.via = WD_RBAC_VIA_NAME, .provider = "gemini", .model = WD_STR("gemini-2.5-flash")};
    struct wd_rbac_target oai = {.via = WD_RBAC_VIA_NAME, .provider = "oai", .model = WD_STR("gpt-4.1")};
    struct wd_rbac_target alias = {.via = WD_RBAC_VIA_ALIAS, .alias = "fast", .provider = "gemini",
                                    .model = WD_STR("gemini-2.5-pro")};
    assert_true(wd_rbac_model_ok(cfg, role("dev"), &sonnet, rule, sizeof(rule)));
    assert_string_equal(rule, "rbac: role dev grants tier:sonnet");
    assert_false(wd_rbac_model_ok(cfg, role("dev"), &opus, rule, sizeof(rule)));
    assert_string_equal(rule, "rbac: no role held grants this model");
    assert_false(wd_rbac_model_ok(cfg, 0, &sonnet, rule, sizeof(rule)));
    assert_string_equal(rule, "rbac: no role held (default deny)");
    assert_true(wd_rbac_model_ok(cfg, role("admin"), &opus, rule, sizeof(rule)));
    /* a provider's model: by name, or reached through a tier (the target itself is what is granted) */
    assert_true(wd_rbac_model_ok(cfg, role("flash"), &flash, rule, sizeof(rule)));
    assert_true(wd_rbac_model_ok(cfg, role("flash"), &sonnet, rule, sizeof(rule)));
    assert_false(wd_rbac_model_ok(cfg, role("flash"), &opus, rule, sizeof(rule)));
    assert_true(wd_rbac_model_ok(cfg, role("oai-all"), &oai, rule, sizeof(rule)));
    assert_false(wd_rbac_model_ok(cfg, role("oai-all"), &flash, rule, sizeof(rule)));
    /* an alias grants its whole chain, whatever the target; a tier grant does not cover an alias */
    assert_true(wd_rbac_model_ok(cfg, role("fast"), &alias, rule, sizeof(rule)));
    assert_false(wd_rbac_model_ok(cfg, role("dev"), &alias, rule, sizeof(rule)));
    assert_true(wd_rbac_permitted(cfg, role("admin"), "keys:manage"));
    assert_false(wd_rbac_permitted(cfg, role("dev") | role("flash"), "keys:manage"));
}

static void test_no_rbac_section(void **state)
{
    (void)state;
    struct wd_config *c;
    struct wd_config_err err;
    const char y[] = "providers:\n  gemini: {type: gemini, keys: [{secret: env://G}]}\n";
    assert_int_equal(wd_config_parse(y, strlen(y), "t.yaml", &c, &err), 0);
    char rule[160];
    struct wd_rbac_target opus = {.via = WD_RBAC_VIA_TIER, .tier = "opus", .provider = "gemini",
                                   .model = WD_STR("gemini-2.5-pro")};
    assert_true(wd_rbac_model_ok(c, 0, &opus, rule, sizeof(rule)));
    assert_string_equal(rule, "no rbac section: every model");
    assert_false(wd_rbac_permitted(c, ~0ull, "keys:manage")); /* admin rights are only ever granted */
    wd_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_no_rbac_section),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
