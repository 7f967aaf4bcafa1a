/* Unit tests for lib/secret_ref.c (the vault and cloud reference forms, as the config checks them and the
 * backends take them apart) and the config's `secrets` section: defaults, the backends' own credentials limited
 * to env:// and file://, the auth checks, and the copy the secret cache keeps across reloads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/secret_ref.h"

static char why[200];

static void test_vault(void **state)
{
    (void)state;
    struct wd_ref_vault v;
    assert_int_equal(wd_ref_vault_parse("vault://secret/warden/openai#api_key", &v, why, sizeof why), 0);
    assert_string_equal(v.mount, "secret");
    assert_string_equal(v.path, "warden/openai");
    assert_string_equal(v.field, "api_key");
    assert_int_equal(wd_ref_vault_parse("vault://kv/x", &v, why, sizeof why), 0);
    assert_string_equal(v.field, "");
    assert_int_equal(wd_ref_vault_parse("vault://kv/a.b@c+d=e,f~g/h-i_j#field with spaces", &v, why, sizeof why), 0);
    assert_string_equal(v.field, "field with spaces");
    static const char *const bad[][2] = {
        {"vault://kv", "mount and a path"},        {"vault://kv/", "path is empty"},
        {"vault:///x", "mount is empty"},          {"vault://kv/a//b", "empty"},
        {"vault://kv/../sys", "\"..\""},           {"vault://kv/a/./b", "\".\""},
        {"vault://kv/a?b", "character"},           {"vault://kv/a%2fb", "character"},
        {"vault://kv/a#", "field after '#' is empty"}, {"vault://kv/a#f\x01", "control"},
        {"vault://k v/a", "character"},            {"env://X", "not a vault"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(wd_ref_vault_parse(bad[i][0], &v, why, sizeof why), -1);
        if (strstr(why, bad[i][1]) == NULL)
            fail_msg("%s: %s", bad[i][0], why);
    }
    char longp[700] = "vault://kv/";
    memset(longp + 11, 'a', 600);
    assert_int_equal(wd_ref_vault_parse(longp, &v, why, sizeof why), -1);
    assert_non_null(strstr(why, "longer than"));
}

static void test_aws(void **state)
{
    (void)state;
    struct wd_ref_aws a;
    assert_int_equal(wd_ref_aws_parse("aws-sm://prod/gemini#api_key", &a, why, sizeof why), 0);
    assert_string_equal(a.id, "prod/gemini");
    assert_string_equal(a.field, "api_key");
    assert_string_equal(a.region, "");
    assert_int_equal(
        wd_ref_aws_parse("aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/gemini-AbCdEf", &a, why,
                         sizeof why),
        0);
    assert_string_equal(a.id, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/gemini-AbCdEf");
    assert_string_equal(a.region, "eu-west-1");
    assert_string_equal(a.field, "");
    assert_int_equal(wd_ref_aws_parse("aws-sm://arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x#k", &a, why,
                                      sizeof why),
                     0);
    assert_string_equal(a.region, "us-gov-west-1");
    assert_string_equal(a.field, "k");
    static const char *const bad[] = {"aws-sm://", "aws-sm://a b", "aws-sm://x:y", "aws-sm://arn:aws:s3:::bucket",
                                      "aws-sm://arn:aws:secretsmanager:r:1:key:x", "aws-sm://arn:aws:secretsmanager:r:1:secret:",
                                      "aws-sm://x#", "aws-sm://arn:aws:secretsmanager:r:acct!:secret:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wd_ref_aws_parse(bad[i], &a, why, sizeof why) != -1)
            fail_msg("accepted %s", bad[i]);
}

static void test_gcp(void **state)
{
    (void)state;
    struct wd_ref_gcp g;
    assert_int_equal(wd_ref_gcp_parse("gcp-sm://projects/my-proj-1/secrets/gemini_key", &g, why, sizeof why), 0);
    assert_string_equal(g.project, "my-proj-1");
    assert_string_equal(g.secret, "gemini_key");
    assert_string_equal(g.version, "latest");
    assert_int_equal(wd_ref_gcp_parse("gcp-sm://projects/123456789012/secrets/s/versions/7", &g, why, sizeof why), 0);
    assert_string_equal(g.project, "123456789012");
    assert_string_equal(g.version, "7");
    assert_int_equal(wd_ref_gcp_parse("gcp-sm://projects/p/secrets/s/versions/latest", &g, why, sizeof why), 0);
    assert_int_equal(wd_ref_gcp_parse("gcp-sm://projects/p/secrets/s/versions/prod_v-2", &g, why, sizeof why), 0);
    assert_string_equal(g.version, "prod_v-2"); /* a version alias */
    char al[128] = "gcp-sm://projects/p/secrets/s/versions/";
    size_t base = strlen(al);
    memset(al + base, 'a', 63);
    assert_int_equal(wd_ref_gcp_parse(al, &g, why, sizeof why), 0); /* 63: the longest alias */
    assert_int_equal(strlen(g.version), 63);
    al[base + 63] = 'a';
    assert_int_equal(wd_ref_gcp_parse(al, &g, why, sizeof why), -1);
    static const char *const bad[] = {
        "gcp-sm://p/secrets/s", "gcp-sm://projects/p/s", "gcp-sm://projects/P/secrets/s",
        "gcp-sm://projects/p-/secrets/s", "gcp-sm://projects/p/secrets/s/versions/0",
        "gcp-sm://projects/p/secrets/s/versions/", "gcp-sm://projects/p/secrets/s/versions/V1",
        "gcp-sm://projects/p/secrets/s/versions/1abc", "gcp-sm://projects/p/secrets/s/versions/a.b",
        "gcp-sm://projects/p/secrets/s/x/1", "gcp-sm://projects/p/secrets/s.t", "gcp-sm://projects/1p/secrets/s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wd_ref_gcp_parse(bad[i], &g, why, sizeof why) != -1)
            fail_msg("accepted %s", bad[i]);
}

static void test_azure(void **state)
{
    (void)state;
    struct wd_ref_azure z;
    assert_int_equal(wd_ref_azure_parse("azure-kv://contoso-kv/gemini-key", &z, why, sizeof why), 0);
    assert_string_equal(z.vault, "contoso-kv");
    assert_string_equal(z.name, "gemini-key");
    assert_string_equal(z.version, "");
    assert_int_equal(
        wd_ref_azure_parse("azure-kv://vlt/n/0123456789abcdef0123456789ABCDEF", &z, why, sizeof why), 0);
    assert_string_equal(z.version, "0123456789abcdef0123456789ABCDEF");
    static const char *const bad[] = {"azure-kv://vlt", "azure-kv://v/n", "azure-kv://vlt/n_x", "azure-kv://vlt/n/123",
                                      "azure-kv://vault-name-that-is-far-too-long/n", "azure-kv://vlt//x",
                                      "azure-kv://vlt/n/0123456789abcdef0123456789abcdeg"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wd_ref_azure_parse(bad[i], &z, why, sizeof why) != -1)
            fail_msg("accepted %s", bad[i]);
    assert_int_equal(wd_secret_ref_check("env://X", why, sizeof why), 0);
    assert_int_equal(wd_secret_ref_check("azure-kv://v/n", why, sizeof why), -1);
    assert_int_equal(wd_secret_ref_check("vault://kv/a#b", why, sizeof why), 0);
}

static const char *BASE = "providers:\n"
                          "  gemini:\n"
                          "    type: gemini\n"
                          "    keys:\n"
                          "      - secret: %s\n";

static int parse(const char *ref, const char *extra, struct wd_config **cfg, struct wd_config_err *err)
{
    char y[2048];
    int n = snprintf(y, sizeof y, BASE, ref);
    snprintf(y + n, sizeof y - (size_t)n, "%s", extra);
    return wd_config_parse(y, strlen(y), "<test>", cfg, err);
}

static void test_config_section(void **state)
{
    (void)state;
    struct wd_config *cfg = NULL;
    struct wd_config_err err = {0};
    /* defaults */
    assert_int_equal(parse("vault://secret/warden#k", "", &cfg, &err), 0);
    assert_false(cfg->secrets.prefetch);
    assert_int_equal(cfg->secrets.stale_max_ms, 600000);
    assert_int_equal(cfg->secrets.vault.kv_version, 2);
    assert_int_equal(cfg->secrets.vault.auth, WD_VAULT_AUTH_TOKEN);
    assert_int_equal(cfg->secrets.vault.ttl_ms, 300000);
    assert_int_equal(cfg->secrets.aws.timeout_ms, 10000);
    assert_string_equal(cfg->secrets.vault.jwt_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");
    assert_string_equal(cfg->secrets.gcp.endpoint, "https://secretmanager.googleapis.com");
    assert_string_equal(cfg->secrets.azure.vault_url, "https://{vault}.vault.azure.net");
    assert_null(cfg->secrets.vault.address);
    wd_config_free(cfg);

    /* a full section, and its copy */
    const char *full = "secrets:\n"
                       "  prefetch: true\n"
                       "  stale_max: 30s\n"
                       "  vault:\n"
                       "    address: https://vault.example:8200/\n"
                       "    namespace: team-a\n"
                       "    kv_version: 1\n"
                       "    auth: kubernetes\n"
                       "    role: warden\n"
                       "    ttl: 2s\n"
                       "  aws: {region: eu-west-1, credentials: web_identity, role_arn: 'arn:aws:iam::1:role/w'}\n"
                       "  gcp: {credentials: metadata, metadata_host: '127.0.0.1:9'}\n"
                       "  azure: {credentials: client_secret, tenant_id: t, client_id: c,"
                       " client_secret: 'file:///run/az', vault_url: 'https://127.0.0.1:1/{vault}'}\n";
    assert_int_equal(parse("aws-sm://prod/x", full, &cfg, &err), 0);
    assert_true(cfg->secrets.prefetch);
    assert_int_equal(cfg->secrets.stale_max_ms, 30000);
    assert_string_equal(cfg->secrets.vault.address, "https://vault.example:8200");
    assert_int_equal(cfg->secrets.vault.kv_version, 1);
    assert_int_equal(cfg->secrets.vault.auth, WD_VAULT_AUTH_KUBERNETES);
    assert_int_equal(cfg->secrets.vault.ttl_ms, 2000);
    assert_int_equal(cfg->secrets.aws.credentials, WD_AWS_SRC_WEB_IDENTITY);
    assert_int_equal(cfg->secrets.gcp.credentials, WD_GCP_SRC_METADATA);
    assert_int_equal(cfg->secrets.azure.credentials, WD_AZ_SRC_CLIENT_SECRET);
    struct wd_secrets_config *copy = wd_config_secrets_dup(cfg);
    assert_non_null(copy);
    assert_ptr_not_equal(copy->vault.address, cfg->secrets.vault.address);
    wd_config_free(cfg); /* the copy lives on its own */
    assert_string_equal(copy->vault.address, "https://vault.example:8200");
    assert_string_equal(copy->vault.vault_namespace, "team-a");
    assert_string_equal(copy->azure.client_secret, "file:///run/az");
    assert_string_equal(copy->azure.vault_url, "https://127.0.0.1:1/{vault}");
    assert_string_equal(copy->aws.role_arn, "arn:aws:iam::1:role/w");
    assert_int_equal(copy->vault.ttl_ms, 2000);
    assert_true(copy->prefetch);
    wd_config_secrets_free(copy);

    static const char *const bad[][3] = {
        {"vault://kv", "", "mount and a path"},
        {"gcp-sm://projects/p/secrets/s/versions/0", "", "version"},
        {"env://K", "secrets:\n  vault:\n    token: vault://kv/t#x\n", "env:// or file://"},
        {"env://K", "secrets:\n  azure:\n    client_secret: aws-sm://x\n", "env:// or file://"},
        {"env://K", "secrets:\n  vault:\n    auth: kubernetes\n", "needs role"},
        {"env://K", "secrets:\n  vault:\n    auth: approle\n    role_id: env://R\n", "role_id and secret_id"},
        {"env://K", "secrets:\n  vault:\n    kv_version: 3\n", "kv_version"},
        {"env://K", "secrets:\n  vault:\n    token: hvs.raw-token-pasted\n", "never the secret itself"},
        {"env://K", "secrets:\n  aws:\n    credentials: magic\n", "credentials"},
        {"env://K", "secrets:\n  vault:\n    address: https://u:p@vault\n", "address"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg = NULL;
        memset(&err, 0, sizeof err);
        assert_int_equal(parse(bad[i][0], bad[i][1], &cfg, &err), -1);
        assert_null(cfg);
        if (strstr(err.msg, bad[i][2]) == NULL)
            fail_msg("case %zu: %s", i, err.msg);
        assert_null(strstr(err.msg, "hvs.raw-token-pasted"));
        assert_null(strstr(err.msg, "u:p@"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vault),  cmocka_unit_test(test_aws),
        cmocka_unit_test(test_gcp),    cmocka_unit_test(test_azure),
        cmocka_unit_test(test_config_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
