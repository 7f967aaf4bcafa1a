/* Unit tests for config/config.c: the documented example and the embedded default parse to the
 * right values, and every class of bad input gives an error naming the key path and the exact line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static const char example_yaml[] =
    "listen: 127.0.0.1:8080\n"
    "providers:\n"
    "  gemini:\n"
    "    type: gemini\n"
    "    base_url: http://127.0.0.1:9100     # default https://generativelanguage.googleapis.com\n"
    "    keys:\n"
    "      - secret: env://GEMINI_API_KEY\n"
    "models:\n"
    "  tiers:\n"
    "    opus: gemini/gemini-2.5-pro\n"
    "    sonnet: gemini/gemini-2.5-flash\n"
    "    haiku: gemini/gemini-2.5-flash-lite\n"
    "  aliases:\n"
    "    fast: gemini/gemini-2.5-flash\n"
    "auth:\n"
    "  keys:\n"
    "    - name: dev\n"
    "      secret: env://WARDEN_DEV_KEY\n";

/* A provider block to prefix tests that need one; it occupies lines 1-5. */
#define GEMINI_PROVIDER                                                                                  \
    "providers:\n"                                                                                       \
    "  gemini:\n"                                                                                        \
    "    type: gemini\n"                                                                                 \
    "    keys:\n"                                                                                        \
    "      - secret: env://GEMINI_API_KEY\n"

static struct wd_config *parse_ok(const char *yaml)
{
    struct wd_config *cfg = NULL;
    struct wd_config_err err;

    memset(&err, 0, sizeof err);
    int rc = wd_config_parse(yaml, strlen(yaml), "test.yaml", &cfg, &err);
    if (rc != 0)
        print_error("unexpected error: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

/* Parses yaml expecting failure; checks the exact message and line. */
static void parse_fails(const char *yaml, int line, const char *msg)
{
    struct wd_config *cfg = (struct wd_config *)1;
    struct wd_config_err err;

    memset(&err, 0, sizeof err);
    assert_int_equal(wd_config_parse(yaml, strlen(yaml), "test.yaml", &cfg, &err), -1);
    assert_null(cfg);
    assert_string_equal(err.msg, msg);
    assert_int_equal(err.line, line);
}

/* Like parse_fails, for messages whose tail is libyaml's wording: checks the line and a prefix. */
static void parse_fails_prefix(const char *yaml, int line, const char *prefix, struct wd_config_err *out)
{
    struct wd_config *cfg = NULL;

    memset(out, 0, sizeof *out);
    assert_int_equal(wd_config_parse(yaml, strlen(yaml), "test.yaml", &cfg, out), -1);
    assert_null(cfg);
    if (strncmp(out->msg, prefix, strlen(prefix)) != 0)
        print_error("message: %s\n", out->msg);
    assert_int_equal(strncmp(out->msg, prefix, strlen(prefix)), 0);
    assert_int_equal(out->line, line);
}

static void test_example_parses(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok(example_yaml);

    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_null(cfg->tls_cert);
    assert_null(cfg->tls_key);
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->max_body_bytes, 32 * 1024 * 1024);
    assert_int_equal(cfg->max_response_bytes, 16 * 1024 * 1024);
    assert_int_equal(cfg->max_header_bytes, 64 * 1024);
    assert_int_equal(cfg->idle_timeout_ms, 60000);
    assert_int_equal(cfg->request_timeout_ms, 600000);
    assert_int_equal(cfg->drain_timeout_ms, 30000);

    assert_int_equal(cfg->nproviders, 1);
    const struct wd_provider *p = &cfg->providers[0];
    assert_string_equal(p->name, "gemini");
    assert_int_equal(p->type, WD_PROVIDER_GEMINI);
    assert_string_equal(p->base_url, "http://127.0.0.1:9100");
    assert_null(p->tls_ca);
    assert_int_equal(p->nkeys, 1);
    assert_string_equal(p->keys[0].secret, "env://GEMINI_API_KEY");
    assert_int_equal(p->keys[0].weight, 1);
    assert_int_equal(p->connect_timeout_ms, 10000);
    assert_int_equal(p->first_byte_timeout_ms, 120000);
    assert_int_equal(p->idle_timeout_ms, 120000);

    assert_string_equal(cfg->tier_opus, "gemini/gemini-2.5-pro");
    assert_string_equal(cfg->tier_sonnet, "gemini/gemini-2.5-flash");
    assert_string_equal(cfg->tier_haiku, "gemini/gemini-2.5-flash-lite");
    assert_int_equal(cfg->naliases, 1);
    assert_string_equal(cfg->aliases[0].name, "fast");
    assert_string_equal(cfg->aliases[0].target, "gemini/gemini-2.5-flash");

    assert_int_equal(cfg->nauth_keys, 1);
    assert_string_equal(cfg->auth_keys[0].name, "dev");
    assert_string_equal(cfg->auth_keys[0].secret, "env://WARDEN_DEV_KEY");
    assert_null(cfg->auth_keys_env);
    assert_string_equal(cfg->source, "test.yaml");

    assert_ptr_equal(wd_config_provider(cfg, "gemini", 6), p);
    assert_ptr_equal(wd_config_provider(cfg, "gemini/x", 6), p);
    assert_null(wd_config_provider(cfg, "gem", 3));
    assert_null(wd_config_provider(cfg, "anthropic", 9));
    assert_null(wd_config_provider(NULL, "gemini", 6));
    wd_config_free(cfg);
}

static void test_default_parses(void **state)
{
    (void)state;
    struct wd_config *cfg = NULL;
    struct wd_config_err err;

    assert_non_null(strstr(wd_config_default_yaml(), "env://GEMINI_API_KEY"));
    assert_int_equal(wd_config_load_default(&cfg, &err), 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->source, "<embedded>");
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 8080);
    assert_int_equal(cfg->nproviders, 1);
    assert_string_equal(cfg->providers[0].name, "gemini");
    assert_int_equal(cfg->providers[0].type, WD_PROVIDER_GEMINI);
    assert_string_equal(cfg->providers[0].base_url, "https://generativelanguage.googleapis.com");
    assert_int_equal(cfg->providers[0].nkeys, 1);
    assert_string_equal(cfg->providers[0].keys[0].secret, "env://GEMINI_API_KEY");
    assert_string_equal(cfg->tier_opus, "gemini/gemini-2.5-pro");
    assert_string_equal(cfg->tier_sonnet, "gemini/gemini-2.5-flash");
    assert_string_equal(cfg->tier_haiku, "gemini/gemini-2.5-flash-lite");
    assert_int_equal(cfg->naliases, 0);
    assert_int_equal(cfg->nauth_keys, 0);
    assert_string_equal(cfg->auth_keys_env, "WARDEN_API_KEYS");
    wd_config_free(cfg);
}

static void test_full_schema(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok(
        "listen: '[::1]:9443'\n"
        "tls: {cert: /etc/warden/cert.pem, key: /etc/warden/key.pem}\n"
        "workers: 3\n"
        "providers:\n"
        "  claude_1:\n"
        "    type: anthropic\n"
        "    tls_ca: /etc/ca.pem\n"
        "    keys:\n"
        "      - {secret: vault://kv/anthropic#key, weight: 3}\n"
        "      - secret: aws-sm://prod/anthropic\n"
        "    timeouts: {connect: 2s, first_byte: 1m, idle: 1500ms}\n"
        "  gemini:\n"
        "    type: gemini\n"
        "    base_url: https://proxy.example/gemini/\n"
        "    keys: [{secret: 'file:///run/secrets/gemini'}]\n"
        "models:\n"
        "  tiers: {opus: claude_1/claude-opus-4, haiku: gemini/models/gemini-2.5-flash-lite}\n"
        "auth:\n"
        "  keys: []\n"
        "  keys_env: MY_KEYS\n");

    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 9443);
    assert_string_equal(cfg->tls_cert, "/etc/warden/cert.pem");
    assert_string_equal(cfg->tls_key, "/etc/warden/key.pem");
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->nproviders, 2);

    const struct wd_provider *a = wd_config_provider(cfg, "claude_1", 8);
    assert_non_null(a);
    assert_int_equal(a->type, WD_PROVIDER_ANTHROPIC);
    assert_string_equal(a->base_url, "https://api.anthropic.com");
    assert_string_equal(a->tls_ca, "/etc/ca.pem");
    assert_int_equal(a->nkeys, 2);
    assert_string_equal(a->keys[0].secret, "vault://kv/anthropic#key");
    assert_int_equal(a->keys[0].weight, 3);
    assert_string_equal(a->keys[1].secret, "aws-sm://prod/anthropic");
    assert_int_equal(a->keys[1].weight, 1);
    assert_int_equal(a->connect_timeout_ms, 2000);
    assert_int_equal(a->first_byte_timeout_ms, 60000);
    assert_int_equal(a->idle_timeout_ms, 1500);

    const struct wd_provider *g = wd_config_provider(cfg, "gemini", 6);
    assert_non_null(g);
    /* Exactly one trailing slash is stripped. */
    assert_string_equal(g->base_url, "https://proxy.example/gemini");
    assert_string_equal(g->keys[0].secret, "file:///run/secrets/gemini");

    assert_string_equal(cfg->tier_opus, "claude_1/claude-opus-4");
    assert_null(cfg->tier_sonnet);
    assert_string_equal(cfg->tier_haiku, "gemini/models/gemini-2.5-flash-lite");
    assert_int_equal(cfg->nauth_keys, 0);
    assert_string_equal(cfg->auth_keys_env, "MY_KEYS");
    wd_config_free(cfg);
}

static void test_unknown_key(void **state)
{
    (void)state;
    parse_fails("listen: 127.0.0.1:8080\n"
                "providers:\n"
                "  gemini:\n"
                "    type: gemini\n"
                "    bse_url: http://127.0.0.1:9100\n"
                "    keys:\n"
                "      - secret: env://GEMINI_API_KEY\n",
                5, "providers.gemini.bse_url (line 5): unknown key");
    parse_fails("listen: 0.0.0.0:1\nlimits:\n  max_body: 1\n", 3, "limits.max_body (line 3): unknown key");
    parse_fails("listn: 0.0.0.0:1\n", 1, "listn (line 1): unknown key");
    parse_fails(GEMINI_PROVIDER "        weigth: 2\n", 6, "providers.gemini.keys[0].weigth (line 6): unknown key");
}

static void test_wrong_type(void **state)
{
    (void)state;
    parse_fails("listen: 0.0.0.0:8080\nworkers: two\n", 2, "workers (line 2): must be an integer");
    parse_fails("workers: -1\n", 1, "workers (line 1): must be an integer");
    parse_fails("workers: 100000\n", 1, "workers (line 1): must be between 0 and 4096");
    parse_fails("\nlisten:\n  host: 0.0.0.0\n", 2, "listen (line 2): must be a string, not a mapping");
    parse_fails("workers: [1, 2]\n", 1, "workers (line 1): must be an integer, not a list");
    parse_fails("limits: 5\n", 1, "limits (line 1): must be a mapping, not a scalar");
    parse_fails("providers:\n  gemini:\n    type: gemini\n    keys: env://X\n", 4,
                "providers.gemini.keys (line 4): must be a list, not a scalar");
    parse_fails("providers:\n  gemini:\n    type: azure\n    keys: [{secret: env://X}]\n", 3,
                "providers.gemini.type (line 3): must be gemini, anthropic or openai");
    parse_fails("providers:\n  Gemini:\n    type: gemini\n", 2,
                "providers.Gemini (line 2): provider names must match [a-z0-9][a-z0-9_-]*");
    parse_fails("providers:\n  gemini:\n    keys: [{secret: env://X}]\n", 2,
                "providers.gemini (line 2): type is required (gemini, anthropic or openai)");
    parse_fails("providers:\n  gemini:\n    type: gemini\n    base_url: ftp://x\n    keys: [{secret: env://X}]\n", 4,
                "providers.gemini.base_url (line 4): must start with http:// or https://");
    parse_fails("listen: 8080\n", 1, "listen (line 1): must be host:port, e.g. 0.0.0.0:8080");
    parse_fails("listen: ::1:8080\n", 1,
                "listen (line 1): IPv6 addresses must be written in brackets, e.g. [::1]:8080");
    parse_fails("listen: 0.0.0.0:70000\n", 1, "listen (line 1): port must be an integer from 1 to 65535");
    parse_fails("- listen\n", 1, "line 1: the configuration must be a mapping of keys, not a list");
}

static void test_secret_reference_not_echoed(void **state)
{
    (void)state;
    struct wd_config *cfg = NULL;
    struct wd_config_err err;
    const char *yaml = GEMINI_PROVIDER "      - secret: AIzaSyRAWKEYPASTEDBYMISTAKE\n";

    assert_int_equal(wd_config_parse(yaml, strlen(yaml), "t", &cfg, &err), -1);
    assert_int_equal(err.line, 6);
    const char *want = "providers.gemini.keys[1].secret (line 6): must be a secret reference";
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
    assert_null(strstr(err.msg, "AIzaSy"));
}

static void test_bad_target_provider(void **state)
{
    (void)state;
    parse_fails(GEMINI_PROVIDER
                "models:\n"
                "  tiers:\n"
                "    opus: openai/gpt-5\n",
                8, "models.tiers.opus (line 8): provider \"openai\" is not configured under providers");
    parse_fails(GEMINI_PROVIDER
                "models:\n"
                "  aliases:\n"
                "    fast: gemini/gemini-2.5-flash\n"
                "    slow: gemini\n",
                9, "models.aliases.slow (line 9): must be provider/model, e.g. gemini/gemini-2.5-pro");
    parse_fails(GEMINI_PROVIDER "models:\n  tiers:\n    sonnet: gemini/\n", 8,
                "models.tiers.sonnet (line 8): must be provider/model, e.g. gemini/gemini-2.5-pro");
    parse_fails("models:\n  tiers: {haiku: gemini/flash}\n", 2,
                "models.tiers.haiku (line 2): provider \"gemini\" is not configured under providers");
    parse_fails(GEMINI_PROVIDER "models:\n  tiers:\n    gpt: gemini/x\n", 8, "models.tiers.gpt (line 8): unknown key");
}

static void test_interpolation(void **state)
{
    (void)state;
    assert_int_equal(setenv("WD_TEST_UPSTREAM", "http://127.0.0.1:9100/", 1), 0);
    assert_int_equal(setenv("WD_TEST_PORT", "9000", 1), 0);
    assert_int_equal(setenv("WD_TEST_WORKERS", "5", 1), 0);
    struct wd_config *cfg = parse_ok("listen: \"127.0.0.1:${WD_TEST_PORT}\"\n"
                                     "workers: ${WD_TEST_WORKERS}\n"
                                     "providers:\n"
                                     "  gemini:\n"
                                     "    type: gemini\n"
                                     "    base_url: ${WD_TEST_UPSTREAM}\n"
                                     "    tls_ca: /ca/$${NOT_A_VAR}/$WD_TEST_PORT/${WD_TEST_PORT}$\n"
                                     "    keys:\n"
                                     "      - secret: env://GEMINI_API_KEY\n");
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 9000);
    assert_int_equal(cfg->workers, 5);
    assert_string_equal(cfg->providers[0].base_url, "http://127.0.0.1:9100");
    assert_string_equal(cfg->providers[0].tls_ca, "/ca/${NOT_A_VAR}/$WD_TEST_PORT/9000$");
    wd_config_free(cfg);

    /* Keys are not interpolated: a ${ in a key name is just text (and here an unknown key). */
    parse_fails("${WD_TEST_PORT}: 1\n", 1, "${WD_TEST_PORT} (line 1): unknown key");

    assert_int_equal(unsetenv("WD_TEST_UNSET_VAR"), 0);
    parse_fails(GEMINI_PROVIDER "auth:\n  keys_env: ${WD_TEST_UNSET_VAR}\n", 7,
                "auth.keys_env (line 7): environment variable WD_TEST_UNSET_VAR is not set");
    parse_fails("listen: ${WD_TEST_PORT\n", 1, "listen (line 1): unterminated ${ (write $${ for a literal ${)");
    parse_fails("listen: ${1BAD}\n", 1, "listen (line 1): invalid environment variable name in ${...}");
    assert_int_equal(unsetenv("WD_TEST_UPSTREAM"), 0);
    assert_int_equal(unsetenv("WD_TEST_PORT"), 0);
    assert_int_equal(unsetenv("WD_TEST_WORKERS"), 0);
}

/* An interpolated value may be a secret: no error message may carry it, even a helpful one. */
static void test_interpolated_value_not_in_errors(void **state)
{
    (void)state;
    struct wd_config_err err;
    const char *secret = "sk-verysecret-1234";

    assert_int_equal(setenv("WD_TEST_SECRET", secret, 1), 0);
    assert_int_equal(setenv("WD_TEST_SECRET_TARGET", "sk-verysecret-1234/model", 1), 0);

    parse_fails_prefix("workers: ${WD_TEST_SECRET}\n", 1, "workers (line 1): must be an integer", &err);
    assert_null(strstr(err.msg, "verysecret"));
    parse_fails_prefix("listen: ${WD_TEST_SECRET}\n", 1, "listen (line 1): ", &err);
    assert_null(strstr(err.msg, "verysecret"));
    parse_fails_prefix(GEMINI_PROVIDER "models:\n  tiers:\n    opus: ${WD_TEST_SECRET_TARGET}\n", 8,
                       "models.tiers.opus (line 8): ", &err);
    assert_null(strstr(err.msg, "verysecret"));
    parse_fails_prefix(GEMINI_PROVIDER "auth:\n  keys:\n    - {name: a, secret: \"${WD_TEST_SECRET}\"}\n", 8,
                       "auth.keys[0].secret (line 8): must be a secret reference", &err);
    assert_null(strstr(err.msg, "verysecret"));
    parse_fails_prefix("providers:\n  gemini:\n    type: ${WD_TEST_SECRET}\n", 3,
                       "providers.gemini.type (line 3): must be gemini, anthropic or openai", &err);
    assert_null(strstr(err.msg, "verysecret"));

    assert_int_equal(unsetenv("WD_TEST_SECRET"), 0);
    assert_int_equal(unsetenv("WD_TEST_SECRET_TARGET"), 0);
}

static void test_durations_and_sizes(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok("limits:\n"
                                     "  max_body_bytes: 32MiB\n"
                                     "  max_header_bytes: 8 KiB\n"
                                     "  idle_timeout: 1500ms\n"
                                     "  request_timeout: 10m\n"
                                     "  drain_timeout: 2s\n");
    assert_int_equal(cfg->max_body_bytes, 33554432);
    assert_int_equal(cfg->max_header_bytes, 8192);
    assert_int_equal(cfg->idle_timeout_ms, 1500);
    assert_int_equal(cfg->request_timeout_ms, 600000);
    assert_int_equal(cfg->drain_timeout_ms, 2000);
    wd_config_free(cfg);

    cfg = parse_ok("limits: {max_body_bytes: 1048577, max_header_bytes: \"2GiB\", idle_timeout: 250}\n");
    assert_int_equal(cfg->max_body_bytes, 1048577);
    assert_int_equal(cfg->max_header_bytes, (size_t)2 * 1024 * 1024 * 1024);
    assert_int_equal(cfg->idle_timeout_ms, 250);
    wd_config_free(cfg);

    parse_fails("limits:\n  idle_timeout: 1h\n", 2,
                "limits.idle_timeout (line 2): must be a duration: milliseconds, or a number with ms, s or m");
    parse_fails("limits:\n  drain_timeout: 0s\n", 2, "limits.drain_timeout (line 2): must be greater than 0");
    parse_fails("limits:\n  request_timeout: 71583m\n", 2,
                "limits.request_timeout (line 2): is too long (at most 4294967295 ms)");
    parse_fails("limits:\n  max_body_bytes: 32MB\n", 2,
                "limits.max_body_bytes (line 2): must be a size in bytes: an integer, or a number with KiB, MiB or GiB");
    parse_fails("limits:\n  max_body_bytes: 99999999999999999999999\n", 2,
                "limits.max_body_bytes (line 2): must be a size in bytes: an integer, or a number with KiB, MiB or GiB");
    parse_fails("limits:\n  max_header_bytes: {a: 1}\n", 2, "limits.max_header_bytes (line 2): must be a size, not a mapping");

    cfg = parse_ok("limits:\n  max_response_bytes: 1KiB\n");
    assert_int_equal(cfg->max_response_bytes, 1024);
    wd_config_free(cfg);
    cfg = parse_ok("limits: {max_response_bytes: 1GiB}\n");
    assert_int_equal(cfg->max_response_bytes, (size_t)1 << 30);
    wd_config_free(cfg);
    parse_fails("limits:\n  max_response_bytes: 1023\n", 2,
                "limits.max_response_bytes (line 2): must be between 1KiB and 1GiB");
    parse_fails("limits:\n  max_response_bytes: 1025MiB\n", 2,
                "limits.max_response_bytes (line 2): must be between 1KiB and 1GiB");
    parse_fails("limits:\n  max_response_bytes: 16MB\n", 2,
                "limits.max_response_bytes (line 2): must be a size in bytes: an integer, or a number with KiB, MiB or GiB");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    parse_fails("listen: 0.0.0.0:1\nworkers: 1\nlisten: 0.0.0.0:2\n", 3, "listen (line 3): duplicate key (first at line 1)");
    parse_fails(GEMINI_PROVIDER
                "  gemini:\n"
                "    type: anthropic\n"
                "    keys: [{secret: env://B}]\n",
                6, "providers.gemini (line 6): duplicate key (first at line 2)");
    parse_fails(GEMINI_PROVIDER
                "models:\n"
                "  aliases:\n"
                "    a: gemini/x\n"
                "    b: gemini/y\n"
                "    a: gemini/z\n",
                10, "models.aliases.a (line 10): duplicate key (first at line 8)");
    parse_fails(GEMINI_PROVIDER "auth:\n  keys:\n    - {name: a, secret: env://A}\n    - {name: a, secret: env://B}\n", 9,
                "auth.keys[1].name (line 9): another key already has this name (first at line 8)");
}

static void test_syntax_error_line(void **state)
{
    (void)state;
    struct wd_config_err err;

    parse_fails_prefix("listen: 127.0.0.1:8080\n"
                       "providers:\n"
                       "  gemini:\n"
                       "    type: gemini\n"
                       "   keys: x\n",
                       5, "syntax error (line 5): did not find expected key", &err);
    parse_fails_prefix("listen: 0.0.0.0:1\nworkers: [1, 2\n", 3, "syntax error (line 3): ", &err);
    parse_fails_prefix("a: b\n c: d\n", 2, "syntax error (line 2): mapping values are not allowed", &err);
    parse_fails("listen: 0.0.0.0:1\n---\nlisten: 0.0.0.0:2\n", 2, "line 2: only one YAML document is allowed");
    parse_fails("base: &b 1\nworkers: *b\n", 2, "line 2: YAML aliases (*name) are not supported in the configuration");
}

static void test_tls_pairs(void **state)
{
    (void)state;
    parse_fails("listen: 0.0.0.0:8443\ntls:\n  cert: /etc/cert.pem\n", 2,
                "tls (line 2): cert is set but key is missing: give both cert and key, or neither");
    parse_fails("tls: {key: /k.pem}\n", 1, "tls (line 1): key is set but cert is missing: give both cert and key, or neither");
    struct wd_config *cfg = parse_ok("tls:\n");
    assert_null(cfg->tls_cert);
    assert_null(cfg->tls_key);
    wd_config_free(cfg);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok("");
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 8080);
    assert_int_equal(cfg->nproviders, 0);
    assert_null(cfg->tier_opus);
    wd_config_free(cfg);

    cfg = parse_ok("# only a comment\nworkers: ~\nmodels:\n");
    assert_int_equal(cfg->workers, 0);
    wd_config_free(cfg);

    parse_fails("providers:\n  gemini:\n", 2, "providers.gemini (line 2): must be a mapping with at least type and keys");
    parse_fails("listen: \"\"\n", 1, "listen (line 1): must not be empty");
    wd_config_free(NULL);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/wd_test_config_XXXXXX";
    int fd = mkstemp(path);
    struct wd_config *cfg = NULL;
    struct wd_config_err err;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, example_yaml, strlen(example_yaml)), (ssize_t)strlen(example_yaml));
    assert_int_equal(close(fd), 0);
    assert_int_equal(wd_config_load_file(path, &cfg, &err), 0);
    assert_string_equal(cfg->source, path);
    assert_string_equal(cfg->providers[0].base_url, "http://127.0.0.1:9100");
    wd_config_free(cfg);
    cfg = NULL;

    /* Over the 1 MiB cap: refused before parsing. */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 1024 * 1024 / 16 + 1; i++)
        assert_int_equal(fputs("# padding line.\n", f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(wd_config_load_file(path, &cfg, &err), -1);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "1 MiB"));
    assert_int_equal(err.line, 0);
    assert_int_equal(unlink(path), 0);

    assert_int_equal(wd_config_load_file(path, &cfg, &err), -1);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "cannot open"));
}

/* The audit and telemetry sections exactly as the issues write them, every key set. */
static void test_audit_and_telemetry(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok("audit:\n"
                                     "  database: postgresql://warden@127.0.0.1:5432/warden\n"
                                     "  mode: fail_closed\n"
                                     "  content: full\n"
                                     "  spool: /var/lib/warden/audit-spool\n"
                                     "  migrate: false\n"
                                     "  queue_records: 1024\n"
                                     "  batch_wait: 50ms\n"
                                     "  checkpoints:\n"
                                     "    every_records: 1000\n"
                                     "    every_seconds: 10\n"
                                     "    signing_key: file:///etc/warden/audit-ed25519.pem\n"
                                     "    export: /var/lib/warden/checkpoints.jsonl\n"
                                     "telemetry:\n"
                                     "  service_name: warden\n"
                                     "  otlp:\n"
                                     "    endpoint: http://127.0.0.1:4318/\n"
                                     "    protocol: http/json\n"
                                     "    headers: {x-api-key: env://OTLP_KEY, X-Tenant: acme}\n"
                                     "    sampling_ratio: 0.25\n"
                                     "    timeout: 5s\n"
                                     "    compression: gzip\n"
                                     "  metrics:\n"
                                     "    listen: 127.0.0.1:9464\n"
                                     "  logs:\n"
                                     "    access: false\n");
    assert_true(cfg->audit.enabled);
    assert_int_equal(cfg->audit.mode, WD_AUDIT_FAIL_CLOSED);
    assert_int_equal(cfg->audit.content, WD_AUDIT_CONTENT_FULL);
    assert_false(cfg->audit.migrate);
    assert_int_equal(cfg->audit.queue_records, 1024);
    assert_int_equal(cfg->audit.batch_wait_ms, 50);
    assert_int_equal(cfg->audit.every_records, 1000);
    assert_int_equal(cfg->audit.every_ms, 10000);
    assert_string_equal(cfg->audit.signing_key, "file:///etc/warden/audit-ed25519.pem");
    assert_string_equal(cfg->audit.export_path, "/var/lib/warden/checkpoints.jsonl");
    assert_string_equal(cfg->telemetry.otlp_endpoint, "http://127.0.0.1:4318");
    assert_int_equal(cfg->telemetry.otlp_protocol, WD_OTLP_JSON);
    assert_int_equal(cfg->telemetry.notlp_headers, 2);
    assert_string_equal(cfg->telemetry.otlp_headers[1].name, "x-tenant");
    assert_true(cfg->telemetry.sampling_ratio == 0.25);
    assert_int_equal(cfg->telemetry.otlp_timeout_ms, 5000);
    assert_int_equal(cfg->telemetry.otlp_compression, WD_OTLP_COMPRESSION_GZIP);
    assert_string_equal(cfg->telemetry.metrics_listen_host, "127.0.0.1");
    assert_int_equal(cfg->telemetry.metrics_listen_port, 9464);
    assert_true(cfg->telemetry.metrics_listen_explicit);
    assert_false(cfg->telemetry.access_log);
    wd_config_free(cfg);
    cfg = parse_ok(GEMINI_PROVIDER "models:\n  prices:\n    gemini-2.5-pro: {input: 1.25, output: 10}\n"
                                 "    gemini-2.5-flash: {input: 0.30, output: 2.50, cached: 0.075}\n");
    assert_int_equal(cfg->nprices, 2);
    assert_string_equal(cfg->prices[0].model, "gemini-2.5-pro");
    assert_true(cfg->prices[0].output == 10.0 && cfg->prices[0].cached < 0);
    assert_true(cfg->prices[1].cached == 0.075);
    wd_config_free(cfg);
    parse_fails(GEMINI_PROVIDER "models:\n  prices:\n    m: {input: 1}\n", 8,
                "models.prices.m (line 8): input and output are required (USD per million tokens)");
    parse_fails("audit:\n  mode: fail_open\n", 2, "audit (line 2): database is required when the audit section is present");
    parse_fails("audit:\n  database: postgresql://x@h/db\n  content: some\n", 3,
                "audit.content (line 3): must be none, hash or full");
    parse_fails("audit:\n  database: postgresql://x@h/db\n  batch_wait: 2s\n", 3,
                "audit.batch_wait (line 3): must be at most 1s (records wait in memory that long)");
    cfg = parse_ok("audit:\n  database: postgresql://x@h/db\n");
    assert_int_equal(cfg->audit.batch_wait_ms, 20);
    wd_config_free(cfg);
    parse_fails("telemetry:\n  otlp:\n    sampling_ratio: 2\n", 3,
                "telemetry.otlp.sampling_ratio (line 3): must be a number from 0 to 1");
}

/* Issue 14 item 4: userinfo in a URL would carry its password into logs, span url.full and errors. The loader
 * refuses it, naming the key and line and never the password (here interpolated, as a careless file would). */
static void test_url_userinfo_refused(void **state)
{
    (void)state;
    struct wd_config *cfg = NULL;
    struct wd_config_err err;
    static const char *const bad[] = {
        "providers:\n  gemini:\n    type: gemini\n    base_url: http://user:${WD_TEST_URL_PW}@127.0.0.1:9100\n"
        "    keys:\n      - secret: env://GEMINI_API_KEY\n",
        "providers:\n  gemini:\n    type: gemini\n    base_url: https://${WD_TEST_URL_PW}@proxy.example/gemini\n"
        "    keys:\n      - secret: env://GEMINI_API_KEY\n",
        "providers:\n  gemini:\n    type: gemini\n    base_url: https://u:p@ss@proxy.example?x=1\n"
        "    keys:\n      - secret: env://GEMINI_API_KEY\n",
    };

    assert_int_equal(setenv("WD_TEST_URL_PW", "hunter2-url-password", 1), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(wd_config_parse(bad[i], strlen(bad[i]), "test.yaml", &cfg, &err), -1);
        assert_null(cfg);
        assert_int_equal(err.line, 4);
        assert_int_equal(strncmp(err.msg, "providers.gemini.base_url (line 4): must not contain user:password@", 67), 0);
        assert_null(strstr(err.msg, "hunter2"));
        assert_null(strstr(err.msg, "p@ss"));
    }
    parse_fails("telemetry:\n  otlp:\n    endpoint: http://otel:${WD_TEST_URL_PW}@collector:4318/\n", 3,
                "telemetry.otlp.endpoint (line 3): must not contain user:password@ (it would be shown in logs); "
                "send credentials with telemetry.otlp.headers, whose values may be secret references");
    unsetenv("WD_TEST_URL_PW");
    /* an @ after the authority is path, not userinfo */
    cfg = parse_ok("providers:\n  gemini:\n    type: gemini\n    base_url: https://proxy.example/a@b\n"
                   "    keys:\n      - secret: env://GEMINI_API_KEY\n"
                   "telemetry:\n  otlp:\n    endpoint: http://collector:4318/otlp@v1\n");
    assert_string_equal(cfg->providers[0].base_url, "https://proxy.example/a@b");
    assert_string_equal(cfg->telemetry.otlp_endpoint, "http://collector:4318/otlp@v1");
    wd_config_free(cfg);
}

/* Issue 14 item 5: /metrics is off the client listener; its own listener is on loopback unless configured. */
static void test_metrics_listen_default(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok("");
    assert_string_equal(cfg->telemetry.metrics_listen_host, "127.0.0.1");
    assert_int_equal(cfg->telemetry.metrics_listen_port, 9464);
    assert_false(cfg->telemetry.metrics_listen_explicit);
    wd_config_free(cfg);
    cfg = parse_ok("telemetry:\n  metrics:\n    listen: off\n");
    assert_null(cfg->telemetry.metrics_listen_host);
    assert_true(cfg->telemetry.metrics_listen_explicit);
    wd_config_free(cfg);
    cfg = parse_ok("telemetry:\n  metrics:\n    listen: '[::1]:9100'\n");
    assert_string_equal(cfg->telemetry.metrics_listen_host, "::1");
    assert_int_equal(cfg->telemetry.metrics_listen_port, 9100);
    assert_true(cfg->telemetry.metrics_listen_explicit);
    wd_config_free(cfg);
    cfg = parse_ok("telemetry:\n  metrics:\n    listen: ~\n");
    assert_string_equal(cfg->telemetry.metrics_listen_host, "127.0.0.1");
    assert_false(cfg->telemetry.metrics_listen_explicit);
    wd_config_free(cfg);
    parse_fails("telemetry:\n  metrics:\n    listen: on\n", 3,
                "telemetry.metrics.listen (line 3): must be host:port, e.g. 0.0.0.0:8080");
}

/* Issue 14 item 15: one Gemini provider and no models.tiers gets the embedded default's tier map, and says so. */
static void test_tiers_default(void **state)
{
    (void)state;
    char note[400];
    struct wd_config *cfg = parse_ok(GEMINI_PROVIDER);
    assert_string_equal(cfg->tier_opus, "gemini/gemini-2.5-pro");
    assert_string_equal(cfg->tier_sonnet, "gemini/gemini-2.5-flash");
    assert_string_equal(cfg->tier_haiku, "gemini/gemini-2.5-flash-lite");
    assert_string_equal(cfg->tiers_defaulted, "gemini");
    assert_true(wd_config_tiers_note(cfg, note, sizeof note) > 0);
    assert_string_equal(note, "models.tiers is not set: opus -> gemini/gemini-2.5-pro, sonnet -> gemini/gemini-2.5-flash, "
                              "haiku -> gemini/gemini-2.5-flash-lite (the defaults for provider gemini)");
    wd_config_free(cfg);

    /* the first Gemini provider in the file, whatever its name; aliases alone do not count as tiers */
    cfg = parse_ok("providers:\n  claude:\n    type: anthropic\n    keys: [{secret: env://A}]\n"
                   "  g2:\n    type: gemini\n    keys: [{secret: env://B}]\n"
                   "  g3:\n    type: gemini\n    keys: [{secret: env://C}]\n"
                   "models:\n  tiers: ~\n  aliases: {fast: g3/gemini-2.5-flash}\n");
    assert_string_equal(cfg->tier_opus, "g2/gemini-2.5-pro");
    assert_string_equal(cfg->tier_haiku, "g2/gemini-2.5-flash-lite");
    assert_string_equal(cfg->tiers_defaulted, "g2");
    wd_config_free(cfg);

    /* tiers given (even one, even none) are the operator's: nothing is filled in */
    cfg = parse_ok(GEMINI_PROVIDER "models:\n  tiers: {opus: gemini/gemini-3-pro}\n");
    assert_string_equal(cfg->tier_opus, "gemini/gemini-3-pro");
    assert_null(cfg->tier_sonnet);
    assert_null(cfg->tiers_defaulted);
    assert_int_equal(wd_config_tiers_note(cfg, note, sizeof note), 0);
    wd_config_free(cfg);
    cfg = parse_ok(GEMINI_PROVIDER "models:\n  tiers: {}\n");
    assert_null(cfg->tier_opus);
    assert_null(cfg->tiers_defaulted);
    wd_config_free(cfg);

    /* no family with an obvious map */
    cfg = parse_ok("providers:\n  claude:\n    type: anthropic\n    keys: [{secret: env://A}]\n");
    assert_null(cfg->tier_opus);
    assert_null(cfg->tiers_defaulted);
    wd_config_free(cfg);
}

/* The provider keys of the anthropic and openai families, each only for its own type. */
static void test_provider_family_keys(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok("providers:\n"
                                     "  oa:\n"
                                     "    type: openai\n"
                                     "    keys: [{secret: env://OPENAI_API_KEY}]\n"
                                     "  local:\n"
                                     "    type: openai\n"
                                     "    base_url: http://127.0.0.1:8000/v1/\n"
                                     "    tokens_field: max_completion_tokens\n"
                                     "    max_output_tokens: 10000000\n"
                                     "    keys: [{secret: env://LOCAL_KEY}]\n"
                                     "  claude:\n"
                                     "    type: anthropic\n"
                                     "    keys: [{secret: env://ANTHROPIC_API_KEY}]\n"
                                     "  claude_beta:\n"
                                     "    type: anthropic\n"
                                     "    anthropic_version: 2024-01-01\n"
                                     "    max_output_tokens: 1\n"
                                     "    keys: [{secret: env://ANTHROPIC_API_KEY}]\n"
                                     "  gemini:\n"
                                     "    type: gemini\n"
                                     "    keys: [{secret: env://GEMINI_API_KEY}]\n");
    const struct wd_provider *oa = wd_config_provider(cfg, "oa", 2), *local = wd_config_provider(cfg, "local", 5);
    const struct wd_provider *cl = wd_config_provider(cfg, "claude", 6), *cb = wd_config_provider(cfg, "claude_beta", 11);
    const struct wd_provider *g = wd_config_provider(cfg, "gemini", 6);

    assert_int_equal(oa->type, WD_PROVIDER_OPENAI);
    assert_string_equal(oa->base_url, "https://api.openai.com");
    assert_int_equal(oa->tokens_field, WD_TOKENS_FIELD_AUTO);
    assert_int_equal(oa->max_output_tokens, 0);
    assert_null(oa->anthropic_version);
    assert_string_equal(local->base_url, "http://127.0.0.1:8000/v1");
    assert_int_equal(local->tokens_field, WD_TOKENS_FIELD_MAX_COMPLETION_TOKENS);
    assert_int_equal(local->max_output_tokens, 10000000);
    assert_string_equal(cl->base_url, "https://api.anthropic.com");
    assert_string_equal(cl->anthropic_version, "2023-06-01");
    assert_string_equal(cb->anthropic_version, "2024-01-01");
    assert_int_equal(cb->max_output_tokens, 1);
    assert_null(g->anthropic_version);
    /* the first gemini provider still gets the default tiers, whatever comes before it */
    assert_string_equal(cfg->tiers_defaulted, "gemini");
    wd_config_free(cfg);

    parse_fails(GEMINI_PROVIDER "    anthropic_version: 2023-06-01\n", 6,
                "providers.gemini.anthropic_version (line 6): is only for type anthropic");
    parse_fails("providers:\n  c:\n    type: anthropic\n    tokens_field: max_tokens\n    keys: [{secret: env://A}]\n", 4,
                "providers.c.tokens_field (line 4): is only for type openai");
    parse_fails("providers:\n  o:\n    type: openai\n    tokens_field: max\n    keys: [{secret: env://A}]\n", 4,
                "providers.o.tokens_field (line 4): must be auto, max_tokens or max_completion_tokens");
    parse_fails(GEMINI_PROVIDER "    max_output_tokens: 0\n", 6,
                "providers.gemini.max_output_tokens (line 6): must be between 1 and 10000000");
    parse_fails(GEMINI_PROVIDER "    max_output_tokens: 10000001\n", 6,
                "providers.gemini.max_output_tokens (line 6): must be between 1 and 10000000");
    parse_fails("providers:\n  c:\n    type: anthropic\n    anthropic_version: [1]\n    keys: [{secret: env://A}]\n", 4,
                "providers.c.anthropic_version (line 4): must be a string, not a list");
    parse_fails("providers:\n  gemini:\n    type: gemini\n    keys: []\n", 4,
                "providers.gemini.keys (line 4): must list at least one key");
}

/* A tier or alias as a list: a fallback chain; the first target is also kept on its own. */
static void test_chains(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok("providers:\n"
                                     "  claude:\n"
                                     "    type: anthropic\n"
                                     "    keys: [{secret: env://A}]\n"
                                     "  gemini:\n"
                                     "    type: gemini\n"
                                     "    keys: [{secret: env://G}]\n"
                                     "models:\n"
                                     "  tiers:\n"
                                     "    opus: [claude/claude-opus-4-1, gemini/gemini-2.5-pro]\n"
                                     "    sonnet:\n"
                                     "      - claude/claude-sonnet-4-5\n"
                                     "    haiku: gemini/gemini-2.5-flash-lite\n"
                                     "  aliases:\n"
                                     "    fast: [gemini/gemini-2.5-flash, claude/claude-haiku-4-5, gemini/gemini-2.5-flash-lite]\n"
                                     "    one: gemini/gemini-2.5-pro\n");
    assert_string_equal(cfg->tier_opus, "claude/claude-opus-4-1");
    assert_int_equal(cfg->tier_chains[0].n, 2);
    assert_string_equal(cfg->tier_chains[0].targets[0], "claude/claude-opus-4-1");
    assert_string_equal(cfg->tier_chains[0].targets[1], "gemini/gemini-2.5-pro");
    assert_string_equal(cfg->tier_sonnet, "claude/claude-sonnet-4-5");
    assert_int_equal(cfg->tier_chains[1].n, 1);
    assert_string_equal(cfg->tier_haiku, "gemini/gemini-2.5-flash-lite");
    assert_int_equal(cfg->tier_chains[2].n, 1);
    assert_string_equal(cfg->tier_chains[2].targets[0], "gemini/gemini-2.5-flash-lite");
    assert_null(cfg->tiers_defaulted);
    assert_int_equal(cfg->naliases, 2);
    assert_string_equal(cfg->aliases[0].name, "fast");
    assert_string_equal(cfg->aliases[0].target, "gemini/gemini-2.5-flash");
    assert_int_equal(cfg->aliases[0].chain.n, 3);
    assert_string_equal(cfg->aliases[0].chain.targets[1], "claude/claude-haiku-4-5");
    assert_string_equal(cfg->aliases[0].chain.targets[2], "gemini/gemini-2.5-flash-lite");
    assert_int_equal(cfg->aliases[1].chain.n, 1);
    assert_string_equal(cfg->aliases[1].chain.targets[0], "gemini/gemini-2.5-pro");
    wd_config_free(cfg);

    /* defaulted tiers are chains of one too; unset tiers are empty chains */
    cfg = parse_ok(GEMINI_PROVIDER);
    for (int t = 0; t < 3; t++)
        assert_int_equal(cfg->tier_chains[t].n, 1);
    assert_string_equal(cfg->tier_chains[1].targets[0], "gemini/gemini-2.5-flash");
    wd_config_free(cfg);
    cfg = parse_ok(GEMINI_PROVIDER "models:\n  tiers: {opus: gemini/x}\n");
    assert_int_equal(cfg->tier_chains[0].n, 1);
    assert_int_equal(cfg->tier_chains[1].n, 0);
    assert_null(cfg->tier_chains[1].targets);
    wd_config_free(cfg);

    parse_fails(GEMINI_PROVIDER "models:\n  tiers:\n    opus: []\n", 8,
                "models.tiers.opus (line 8): must be a target or a non-empty list of targets");
    parse_fails(GEMINI_PROVIDER "models:\n  aliases:\n    fast: [gemini/a, gemini/b, gemini/c, gemini/d, gemini/e, "
                                "gemini/f, gemini/g, gemini/h, gemini/i]\n",
                8, "models.aliases.fast (line 8): lists more than 8 targets");
    parse_fails(GEMINI_PROVIDER "models:\n  aliases:\n    fast:\n      - gemini/a\n      - gemini/b\n      - gemini/a\n", 11,
                "models.aliases.fast[2] (line 11): duplicate target (first at line 9)");
    parse_fails(GEMINI_PROVIDER "models:\n  tiers:\n    opus: [gemini/a, openai/gpt-5]\n", 8,
                "models.tiers.opus[1] (line 8): provider \"openai\" is not configured under providers");
    parse_fails(GEMINI_PROVIDER "models:\n  tiers:\n    opus: [gemini/a, [gemini/b]]\n", 8,
                "models.tiers.opus[1] (line 8): must be a string, not a list");
    parse_fails(GEMINI_PROVIDER "models:\n  tiers:\n    opus: {gemini: a}\n", 8,
                "models.tiers.opus (line 8): must be a target or a list of targets, not a mapping");
    parse_fails(GEMINI_PROVIDER "models:\n  aliases:\n    fast: ~\n", 8,
                "models.aliases.fast (line 8): must be provider/model, e.g. gemini/gemini-2.5-flash");
}

static void test_routing(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok("");
    assert_int_equal(cfg->routing.attempts_per_target, 1);
    assert_int_equal(cfg->routing.backoff_ms, 200);
    assert_int_equal(cfg->routing.max_backoff_ms, 5000);
    assert_int_equal(cfg->routing.max_retry_after_ms, 10000);
    assert_true(cfg->routing.retry_budget == 0.2);
    assert_int_equal(cfg->routing.retry_budget_min, 10);
    wd_config_free(cfg);

    cfg = parse_ok("routing:\n"
                   "  attempts_per_target: 10\n"
                   "  backoff: 50ms\n"
                   "  max_backoff: 1m\n"
                   "  max_retry_after: 3s\n"
                   "  retry_budget: 0\n"
                   "  retry_budget_min: 100000\n");
    assert_int_equal(cfg->routing.attempts_per_target, 10);
    assert_int_equal(cfg->routing.backoff_ms, 50);
    assert_int_equal(cfg->routing.max_backoff_ms, 60000);
    assert_int_equal(cfg->routing.max_retry_after_ms, 3000);
    assert_true(cfg->routing.retry_budget == 0.0);
    assert_int_equal(cfg->routing.retry_budget_min, 100000);
    wd_config_free(cfg);
    cfg = parse_ok("routing: {retry_budget: 1, retry_budget_min: 0, attempts_per_target: 1}\n");
    assert_true(cfg->routing.retry_budget == 1.0);
    assert_int_equal(cfg->routing.retry_budget_min, 0);
    assert_int_equal(cfg->routing.attempts_per_target, 1);
    wd_config_free(cfg);

    parse_fails("routing:\n  attempts_per_target: 0\n", 2,
                "routing.attempts_per_target (line 2): must be between 1 and 10");
    parse_fails("routing:\n  attempts_per_target: 11\n", 2,
                "routing.attempts_per_target (line 2): must be between 1 and 10");
    parse_fails("routing:\n  retry_budget: 1.5\n", 2, "routing.retry_budget (line 2): must be a number from 0 to 1");
    parse_fails("routing:\n  retry_budget: -0.1\n", 2, "routing.retry_budget (line 2): must be a number from 0 to 1");
    parse_fails("routing:\n  retry_budget_min: 100001\n", 2,
                "routing.retry_budget_min (line 2): must be between 0 and 100000");
    parse_fails("routing:\n  backoff: 0ms\n", 2, "routing.backoff (line 2): must be greater than 0");
    parse_fails("routing:\n  max_backof: 1s\n", 2, "routing.max_backof (line 2): unknown key");
    parse_fails("routing: [1]\n", 1, "routing (line 1): must be a mapping, not a list");
}

/* Values that do not fit their type or bounds, in the other sections the tables carry. */
static void test_more_bounds(void **state)
{
    (void)state;
    struct wd_config *cfg;

    parse_fails("limits:\n  max_body_bytes: 200MiB\n", 2,
                "limits.max_body_bytes (line 2): max_pending_body_bytes must be at least twice max_body_bytes");
    parse_fails("limits:\n  max_pending_body_bytes: 1MiB\n", 2,
                "limits.max_pending_body_bytes (line 2): max_pending_body_bytes must be at least twice max_body_bytes");
    parse_fails("limits:\n  http2_max_resets: 0\n", 2, "limits.http2_max_resets (line 2): must be between 1 and 1000000");
    parse_fails("audit:\n  database: postgresql://x@h/db\n  migrate: yes\n", 3,
                "audit.migrate (line 3): must be true or false");
    parse_fails("audit:\n  database: postgresql://x@h/db\n  checkpoints:\n    every_seconds: 86401\n", 4,
                "audit.checkpoints.every_seconds (line 4): must be between 1 and 86400");
    parse_fails("audit:\n  database: mysql://x@h/db\n", 2, "audit.database (line 2): must be a secret reference "
                "(env://, file://, vault://, aws-sm://, gcp-sm://, azure-kv://), never the secret itself");
    parse_fails("telemetry:\n  otlp:\n    headers: {\"bad header\": x}\n", 3,
                "telemetry.otlp.headers.bad header (line 3): is not a valid header name");
    parse_fails("telemetry:\n  otlp:\n    headers: {x-a: \"a\\nb\"}\n", 3,
                "telemetry.otlp.headers.x-a (line 3): must be one line");
    parse_fails("telemetry:\n  otlp:\n    protocol: grpc\n", 3,
                "telemetry.otlp.protocol (line 3): must be http/protobuf or http/json");
    parse_fails("providers:\n  gemini: [1]\n", 2, "providers.gemini (line 2): must be a mapping, not a list");
    parse_fails(GEMINI_PROVIDER "models:\n  prices:\n    m: {input: x, output: 1}\n", 8,
                "models.prices.m.input (line 8): must be a number, 0 or more");
    parse_fails("auth:\n  keys:\n    - ~\n", 3, "auth.keys[0] (line 3): must be a mapping, not a scalar");
    parse_fails("auth:\n  keys:\n    - {secret: env://A}\n", 3, "auth.keys[0] (line 3): name is required");
    parse_fails("auth:\n  keys_env: 1BAD\n", 2, "auth.keys_env (line 2): must be an environment variable name");

    cfg = parse_ok("audit:\n  database: env://DB_URL\n  checkpoints: {every_seconds: 86400}\n"
                   "telemetry:\n  otlp: {endpoint: 'https://c.example//', compression: none}\n");
    assert_string_equal(cfg->audit.database, "env://DB_URL");
    assert_true(cfg->audit.enabled);
    assert_int_equal(cfg->audit.every_ms, 86400000);
    assert_string_equal(cfg->telemetry.otlp_endpoint, "https://c.example");
    assert_int_equal(cfg->telemetry.otlp_compression, WD_OTLP_COMPRESSION_NONE);
    /* unset telemetry values stay unset: the OTEL_* environment fills them at start */
    assert_int_equal(cfg->telemetry.otlp_protocol, WD_OTLP_UNSET);
    assert_true(cfg->telemetry.sampling_ratio < 0);
    assert_int_equal(cfg->telemetry.otlp_timeout_ms, 0);
    assert_null(cfg->telemetry.service_name);
    wd_config_free(cfg);
    /* `off` may come from the environment too */
    assert_int_equal(setenv("WD_TEST_METRICS", "off", 1), 0);
    cfg = parse_ok("telemetry:\n  metrics:\n    listen: ${WD_TEST_METRICS}\n");
    assert_null(cfg->telemetry.metrics_listen_host);
    assert_true(cfg->telemetry.metrics_listen_explicit);
    wd_config_free(cfg);
    assert_int_equal(unsetenv("WD_TEST_METRICS"), 0);
}

/* auth.oidc and rbac: defaults, lists, and the rules across keys. */
static void test_oidc_rbac(void **state)
{
    (void)state;
    struct wd_config *cfg = parse_ok("auth:\n"
                                     "  oidc:\n"
                                     "    - name: okta\n"
                                     "      issuer: https://example.okta.com/oauth2/default\n"
                                     "      audience: api://warden\n"
                                     "    - name: entra\n"
                                     "      issuer: https://sts.windows.net/t/\n"
                                     "      audience: [api://a, api://b]\n"
                                     "      jwks_uri: https://login.example/keys\n"
                                     "      claims: {subject: oid, email: preferred_username}\n"
                                     "      clock_skew: 2s\n"
                                     "      wait: 500ms\n");
    assert_int_equal(cfg->noidc, 2);
    assert_string_equal(cfg->oidc[0].issuer, "https://example.okta.com/oauth2/default");
    assert_int_equal(cfg->oidc[0].naudiences, 1);
    assert_string_equal(cfg->oidc[0].audiences[0], "api://warden");
    assert_string_equal(cfg->oidc[0].claim_subject, "sub");
    assert_string_equal(cfg->oidc[0].claim_groups, "groups");
    assert_int_equal(cfg->oidc[0].clock_skew_ms, 60000);
    assert_int_equal(cfg->oidc[0].refresh_ms, 600000);
    assert_int_equal(cfg->oidc[0].wait_ms, 3000);
    assert_null(cfg->oidc[0].jwks_uri);
    assert_string_equal(cfg->oidc[1].issuer, "https://sts.windows.net/t/"); /* kept as written: iss is exact */
    assert_int_equal(cfg->oidc[1].naudiences, 2);
    assert_string_equal(cfg->oidc[1].audiences[1], "api://b");
    assert_string_equal(cfg->oidc[1].claim_subject, "oid");
    assert_string_equal(cfg->oidc[1].claim_email, "preferred_username");
    assert_int_equal(cfg->oidc[1].clock_skew_ms, 2000);
    assert_int_equal(cfg->oidc[1].wait_ms, 500);
    assert_false(cfg->rbac);
    wd_config_free(cfg);

    cfg = parse_ok("rbac:\n"
                   "  roles:\n"
                   "    dev: {models: [\"tier:sonnet\", gemini/gemini-2.5-flash]}\n"
                   "    admin: {models: \"*\", permissions: [keys:manage, audit:read]}\n"
                   "  bindings:\n"
                   "    - {group: engineering, role: dev}\n"
                   "    - {subject: alice@example.com, role: admin}\n"
                   "    - {key: ci, role: dev}\n");
    assert_true(cfg->rbac);
    assert_int_equal(cfg->nroles, 2);
    assert_string_equal(cfg->roles[0].name, "dev");
    assert_int_equal(cfg->roles[0].nmodels, 2);
    assert_string_equal(cfg->roles[0].models[1], "gemini/gemini-2.5-flash");
    assert_int_equal(cfg->roles[1].nmodels, 1);
    assert_int_equal(cfg->roles[1].npermissions, 2);
    assert_int_equal(cfg->nbindings, 3);
    assert_string_equal(cfg->bindings[0].group, "engineering");
    assert_null(cfg->bindings[0].subject);
    assert_string_equal(cfg->bindings[2].key, "ci");
    wd_config_free(cfg);
    cfg = parse_ok("rbac: {}\n"); /* written empty: default deny for everyone */
    assert_true(cfg->rbac);
    wd_config_free(cfg);

    parse_fails("auth:\n  oidc:\n    - name: a\n      issuer: http://idp.example.com\n      audience: x\n", 4,
                "auth.oidc[0].issuer (line 4): must be an https:// URL (http:// only to a loopback address)");
    parse_fails("auth:\n  oidc:\n    - name: a\n      issuer: https://idp.example.com\n", 3,
                "auth.oidc[0] (line 3): audience is required (a token for another API must not be accepted)");
    parse_fails("auth:\n  oidc:\n    - name: a\n      issuer: https://i.example\n      audience: [x, x]\n", 5,
                "auth.oidc[0].audience[1] (line 5): repeats an earlier entry (line 5)");
    parse_fails("auth:\n  oidc:\n    - {name: a, issuer: https://i.example, audience: x}\n"
                "    - {name: a, issuer: https://j.example, audience: x}\n",
                4, "auth.oidc[1].name (line 4): another issuer already has this name (line 3)");
    parse_fails("auth:\n  oidc:\n    - {name: a, issuer: https://i.example, audience: x}\n"
                "    - {name: b, issuer: https://i.example, audience: x}\n",
                4, "auth.oidc[1].issuer (line 4): another issuer already has this issuer (line 3)");
    parse_fails("rbac:\n  roles: {dev: {models: \"*\"}}\n  bindings:\n    - {group: g, subject: s, role: dev}\n", 0,
                "rbac.bindings[0]: must name exactly one of group, subject and key");
    parse_fails("rbac:\n  roles: {dev: {models: \"*\"}}\n  bindings:\n    - {group: g, role: ops}\n", 0,
                "rbac.bindings[0]: role ops is not defined in rbac.roles");
    parse_fails("rbac:\n  bindings:\n    - {group: g}\n", 3, "rbac.bindings[0] (line 3): role is required");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_parses),
        cmocka_unit_test(test_default_parses),
        cmocka_unit_test(test_full_schema),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_secret_reference_not_echoed),
        cmocka_unit_test(test_bad_target_provider),
        cmocka_unit_test(test_interpolation),
        cmocka_unit_test(test_interpolated_value_not_in_errors),
        cmocka_unit_test(test_durations_and_sizes),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_syntax_error_line),
        cmocka_unit_test(test_tls_pairs),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_audit_and_telemetry),
        cmocka_unit_test(test_url_userinfo_refused),
        cmocka_unit_test(test_metrics_listen_default),
        cmocka_unit_test(test_tiers_default),
        cmocka_unit_test(test_provider_family_keys),
        cmocka_unit_test(test_chains),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_oidc_rbac),
        cmocka_unit_test(test_more_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
