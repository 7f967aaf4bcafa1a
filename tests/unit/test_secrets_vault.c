/* Unit tests for the vault:// backend's pure half (secrets/hashicorp.h): KV v2/v1 answers and the value a field
 * picks, Vault's error lists, login/renew and lookup-self answers, the URLs and login bodies, the token plan
 * and the value TTL it implies; then wd_vault_resolve's refusals that need no network. No sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/backend.h"
#include "secrets/hashicorp.h"

#define SECRET "sk-planted-0123456789"

static int kv(const char *body, unsigned ver, const char *field, char *out, size_t cap, int64_t *lease, char *why)
{
    return wd_vault_read_kv(body, strlen(body), ver, field, out, cap, lease, why, 200);
}

static void kv_v2_field(void **state)
{
    (void)state;
    const char *b = "{\"request_id\":\"r\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,"
                    "\"data\":{\"data\":{\"api_key\":\"" SECRET "\",\"other\":\"x\"},"
                    "\"metadata\":{\"version\":3,\"destroyed\":false}},\"wrap_info\":null,\"warnings\":null,\"auth\":null}";
    char out[64], why[200];
    int64_t lease = -1;
    assert_int_equal(kv(b, 2, "api_key", out, sizeof(out), &lease, why), strlen(SECRET));
    assert_string_equal(out, SECRET);
    assert_int_equal(lease, 0);
    assert_int_equal(kv(b, 2, "other", out, sizeof(out), &lease, why), 1);
    assert_string_equal(out, "x");
}

static void kv_v1_lease(void **state)
{
    (void)state;
    const char *b = "{\"lease_duration\":2764800,\"renewable\":false,\"data\":{\"api_key\":\"" SECRET "\",\"ttl\":\"2s\"}}";
    char out[64], why[200];
    int64_t lease = 0;
    assert_int_equal(kv(b, 1, "api_key", out, sizeof(out), &lease, why), strlen(SECRET));
    assert_string_equal(out, SECRET);
    assert_int_equal(lease, 2764800);
}

static void kv_without_field(void **state)
{
    (void)state;
    char out[64], why[200];
    int64_t lease;
    assert_int_equal(kv("{\"data\":{\"data\":{\"only\":\"" SECRET "\"}}}", 2, "", out, sizeof(out), &lease, why),
                     strlen(SECRET));
    assert_string_equal(out, SECRET);
    assert_int_equal(kv("{\"data\":{\"only\":\"v1value\"}}", 1, NULL, out, sizeof(out), &lease, why), 7);
    assert_string_equal(out, "v1value");
    assert_int_equal(kv("{\"data\":{\"data\":{\"a\":\"" SECRET "\",\"b\":\"y\"}}}", 2, "", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the secret has 2 keys: name one with #field");
    assert_int_equal(kv("{\"data\":{\"data\":{}}}", 2, "", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the secret has 0 keys: name one with #field");
}

static void kv_missing_field(void **state)
{
    (void)state;
    char out[64], why[200];
    int64_t lease;
    assert_int_equal(kv("{\"data\":{\"data\":{\"a\":\"" SECRET "\"}}}", 2, "api_key", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the secret has no key \"api_key\"");
    assert_string_equal(out, "");
}

static void kv_value_types(void **state)
{
    (void)state;
    char out[64], why[200];
    int64_t lease;
    assert_int_equal(kv("{\"data\":{\"data\":{\"pin\":12345,\"k\":\"" SECRET "\"}}}", 2, "pin", out, sizeof(out), &lease, why), 5);
    assert_string_equal(out, "12345");
    assert_int_equal(kv("{\"data\":{\"data\":{\"pin\":-1.5e3}}}", 2, "pin", out, sizeof(out), &lease, why), 6);
    assert_string_equal(out, "-1.5e3");
    static const struct {
        const char *v, *name;
    } bad[] = {{"true", "a boolean"}, {"false", "a boolean"}, {"null", "null"}, {"{\"x\":\"" SECRET "\"}", "an object"},
               {"[\"" SECRET "\"]", "an array"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char b[200], want[100];
        snprintf(b, sizeof(b), "{\"data\":{\"data\":{\"f\":%s,\"k\":\"" SECRET "\"}}}", bad[i].v);
        assert_int_equal(kv(b, 2, "f", out, sizeof(out), &lease, why), -1);
        snprintf(want, sizeof(want), "the key's value is %s, not a string", bad[i].name);
        assert_string_equal(why, want);
        assert_null(strstr(why, SECRET));
    }
}

static void kv_decoding(void **state)
{
    (void)state;
    char out[64], why[200];
    int64_t lease;
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":\"a\\u0041\\\"b\\/\"}}}", 2, "k", out, sizeof(out), &lease, why), 5);
    assert_string_equal(out, "aA\"b/");
    /* trailing newlines dropped as file:// does; an inner one kept (a PEM) */
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":\"l1\\nl2\\r\\n\\n\"}}}", 2, "k", out, sizeof(out), &lease, why), 5);
    assert_string_equal(out, "l1\nl2");
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":\"ab\\u0000cd\"}}}", 2, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the value holds a NUL character");
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":\"\\n\"}}}", 2, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the value is empty");
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":\"\"}}}", 2, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the value is empty");
    /* an escaped key matches its decoded field */
    assert_int_equal(kv("{\"data\":{\"data\":{\"api\\u005fkey\":\"v\"}}}", 2, "api_key", out, sizeof(out), &lease, why), 1);
}

static void kv_too_long(void **state)
{
    (void)state;
    char out[8], why[200];
    int64_t lease;
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":\"" SECRET "\"}}}", 2, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the value is longer than 7 bytes");
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":1234567890}}}", 2, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the value is longer than 7 bytes");
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":\"1234567\"}}}", 2, "k", out, sizeof(out), &lease, why), 7);
}

static void kv_shapes(void **state)
{
    (void)state;
    char out[64], why[200];
    int64_t lease;
    assert_int_equal(kv("not json", 2, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the KV read answer is not JSON");
    assert_int_equal(kv("[1]", 2, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the KV read answer is not a JSON object");
    assert_int_equal(kv("{}", 2, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the KV read answer's data is missing, not an object");
    assert_int_equal(kv("{\"data\":\"" SECRET "\"}", 1, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the KV read answer's data is a string, not an object");
    assert_null(strstr(why, SECRET));
    assert_int_equal(kv("{\"data\":{\"data\":null,\"metadata\":{\"deletion_time\":\"2026-01-01T00:00:00Z\"}}}", 2, "k",
                        out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the secret's latest version is deleted or destroyed");
    /* a KV v1 mount read as v2: data.data is the secret's own key */
    assert_int_equal(kv("{\"data\":{\"data\":\"" SECRET "\"}}", 2, "data", out, sizeof(out), &lease, why), -1);
    assert_non_null(strstr(why, "data.data is a string, not an object"));
    assert_non_null(strstr(why, "kv_version: 1"));
    /* a KV v2 answer read as v1: the field is not at the top */
    assert_int_equal(kv("{\"data\":{\"data\":{\"k\":\"v\"},\"metadata\":{}}}", 1, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the secret has no key \"k\"");
    assert_int_equal(kv("{\"lease_duration\":\"60\",\"data\":{\"k\":\"v\"}}", 1, "k", out, sizeof(out), &lease, why), -1);
    assert_string_equal(why, "the KV read answer's lease_duration is a string, not a whole number of seconds");
    assert_int_equal(kv("{\"lease_duration\":-5,\"data\":{\"k\":\"v\"}}", 1, "k", out, sizeof(out), &lease, why), -1);
    assert_int_equal(kv("{\"lease_duration\":1.5,\"data\":{\"k\":\"v\"}}", 1, "k", out, sizeof(out), &lease, why), -1);
    assert_int_equal(wd_vault_read_kv(NULL, 0, 2, "k", out, sizeof(out), &lease, why, sizeof(why)), -1);
}

static void errors_list(void **state)
{
    (void)state;
    char out[64];
    const char *b = "{\"errors\":[\"permission denied\"]}";
    assert_int_equal(wd_vault_read_errors(b, strlen(b), out, sizeof(out)), 17);
    assert_string_equal(out, "permission denied");
    b = "{\"errors\":[\"1 error occurred:\\n\\t* unsupported operation\\n\\n\",\"second\"]}";
    wd_vault_read_errors(b, strlen(b), out, sizeof(out));
    assert_string_equal(out, "1 error occurred:  * unsupported operation; second");
    b = "{\"errors\":[]}";
    assert_int_equal(wd_vault_read_errors(b, strlen(b), out, sizeof(out)), 0);
    assert_string_equal(out, "");
    b = "{\"errors\":[1,\"x\"]}";
    assert_int_equal(wd_vault_read_errors(b, strlen(b), out, sizeof(out)), 1);
    assert_int_equal(wd_vault_read_errors("<html>", 6, out, sizeof(out)), 0);
    assert_int_equal(wd_vault_read_errors(NULL, 0, out, sizeof(out)), 0);
    char small[8];
    b = "{\"errors\":[\"permission denied\"]}";
    assert_int_equal(wd_vault_read_errors(b, strlen(b), small, sizeof(small)), 7);
    assert_string_equal(small, "permiss");
}

static int auth(const char *body, char *tok, size_t cap, struct wd_vault_token_info *ti, char *why)
{
    return wd_vault_read_auth(body, strlen(body), tok, cap, ti, why, 200);
}

static void auth_answer(void **state)
{
    (void)state;
    char tok[64], why[200];
    struct wd_vault_token_info ti;
    const char *b = "{\"request_id\":\"r\",\"data\":null,\"auth\":{\"client_token\":\"hvs.ABCdef123\",\"accessor\":\"a\","
                    "\"policies\":[\"default\"],\"lease_duration\":120,\"renewable\":true,\"token_type\":\"service\"}}";
    assert_int_equal(auth(b, tok, sizeof(tok), &ti, why), 0);
    assert_string_equal(tok, "hvs.ABCdef123");
    assert_int_equal(ti.lease_s, 120);
    assert_true(ti.renewable);
    /* a renewal keeps its token: none asked for */
    assert_int_equal(auth(b, NULL, 0, &ti, why), 0);
    assert_int_equal(ti.lease_s, 120);
    b = "{\"auth\":{\"client_token\":\"hvs.x\",\"lease_duration\":0,\"renewable\":false}}";
    assert_int_equal(auth(b, tok, sizeof(tok), &ti, why), 0);
    assert_int_equal(ti.lease_s, 0);
    assert_false(ti.renewable);
}

static void auth_refusals(void **state)
{
    (void)state;
    char tok[16], why[200];
    struct wd_vault_token_info ti;
    assert_int_equal(auth("{\"auth\":null}", tok, sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer's auth is null, not an object");
    assert_int_equal(auth("{\"auth\":{\"lease_duration\":1,\"renewable\":true}}", tok, sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer's auth.client_token is missing, not a string");
    assert_int_equal(auth("{\"auth\":{\"client_token\":7,\"lease_duration\":1,\"renewable\":true}}", tok, sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer's auth.client_token is a number, not a string");
    assert_int_equal(auth("{\"auth\":{\"client_token\":\"hvs.a\",\"lease_duration\":\"1h\",\"renewable\":true}}", tok,
                          sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer's lease_duration is a string, not a whole number of seconds");
    assert_int_equal(auth("{\"auth\":{\"client_token\":\"hvs.a\",\"lease_duration\":1}}", tok, sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer's renewable is missing, not a boolean");
    /* a token becomes a header line: no CR/LF, no space */
    assert_int_equal(auth("{\"auth\":{\"client_token\":\"hvs.a\\r\\nX: y\",\"lease_duration\":1,\"renewable\":true}}", tok,
                          sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer's auth.client_token is not a usable token");
    assert_null(strstr(why, "hvs.a"));
    assert_int_equal(tok[0], '\0');
    assert_int_equal(auth("{\"auth\":{\"client_token\":\"\",\"lease_duration\":1,\"renewable\":true}}", tok, sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer's auth.client_token is empty");
    assert_int_equal(auth("{\"auth\":{\"client_token\":\"hvs.0123456789abcdef\",\"lease_duration\":1,\"renewable\":true}}",
                          tok, sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer's auth.client_token is too long");
    assert_int_equal(auth("{\"errors\":[\"x\"]", tok, sizeof(tok), &ti, why), -1);
    assert_string_equal(why, "the login answer is not JSON");
}

static void lookup_answer(void **state)
{
    (void)state;
    char why[200];
    struct wd_vault_token_info ti;
    const char *b = "{\"data\":{\"accessor\":\"a\",\"creation_ttl\":3600,\"ttl\":3541,\"renewable\":true,\"policies\":[\"default\"]}}";
    assert_int_equal(wd_vault_read_lookup(b, strlen(b), &ti, why, sizeof(why)), 0);
    assert_int_equal(ti.lease_s, 3541);
    assert_true(ti.renewable);
    assert_int_equal(ti.creation_s, 3600);
    b = "{\"data\":{\"ttl\":0,\"renewable\":false,\"policies\":[\"root\"]}}";
    assert_int_equal(wd_vault_read_lookup(b, strlen(b), &ti, why, sizeof(why)), 0);
    assert_int_equal(ti.lease_s, 0);
    assert_false(ti.renewable);
    assert_int_equal(ti.creation_s, 0); /* absent: unknown */
    b = "{\"data\":{\"ttl\":5,\"renewable\":true,\"creation_ttl\":null}}";
    assert_int_equal(wd_vault_read_lookup(b, strlen(b), &ti, why, sizeof(why)), -1);
    assert_string_equal(why, "the lookup-self answer's creation_ttl is null, not a whole number of seconds");
    b = "{\"data\":{\"renewable\":false}}";
    assert_int_equal(wd_vault_read_lookup(b, strlen(b), &ti, why, sizeof(why)), -1);
    assert_string_equal(why, "the lookup-self answer's ttl is missing, not a whole number of seconds");
    b = "{\"data\":{\"ttl\":5,\"renewable\":\"yes\"}}";
    assert_int_equal(wd_vault_read_lookup(b, strlen(b), &ti, why, sizeof(why)), -1);
    assert_string_equal(why, "the lookup-self answer's renewable is a string, not a boolean");
    b = "{\"data\":[]}";
    assert_int_equal(wd_vault_read_lookup(b, strlen(b), &ti, why, sizeof(why)), -1);
    assert_string_equal(why, "the lookup-self answer's data is an array, not an object");
}

static void kv_urls(void **state)
{
    (void)state;
    struct wd_ref_vault r;
    char why[200], url[128];
    assert_int_equal(wd_ref_vault_parse("vault://secret/warden/gemini#api_key", &r, why, sizeof(why)), 0);
    assert_int_equal(wd_vault_kv_url("https://vault:8200", &r, 2, url, sizeof(url)),
                     (int)strlen("https://vault:8200/v1/secret/data/warden/gemini"));
    assert_string_equal(url, "https://vault:8200/v1/secret/data/warden/gemini");
    wd_vault_kv_url("https://vault:8200", &r, 1, url, sizeof(url));
    assert_string_equal(url, "https://vault:8200/v1/secret/warden/gemini");
    assert_int_equal(wd_vault_kv_url("https://vault:8200", &r, 2, url, 20), -1);
}

static void login_bodies(void **state)
{
    (void)state;
    char b[128];
    assert_int_equal(wd_vault_login_body(WD_VAULT_AUTH_APPROLE, "rid", "sid", b, sizeof(b)),
                     (int)strlen("{\"role_id\":\"rid\",\"secret_id\":\"sid\"}"));
    assert_string_equal(b, "{\"role_id\":\"rid\",\"secret_id\":\"sid\"}");
    wd_vault_login_body(WD_VAULT_AUTH_KUBERNETES, "warden", "a.b.c", b, sizeof(b));
    assert_string_equal(b, "{\"role\":\"warden\",\"jwt\":\"a.b.c\"}");
    wd_vault_login_body(WD_VAULT_AUTH_APPROLE, "q\"b\\", "c\nd\x7f", b, sizeof(b));
    assert_string_equal(b, "{\"role_id\":\"q\\\"b\\\\\",\"secret_id\":\"c\\u000ad\\u007f\"}");
    assert_int_equal(wd_vault_login_body(WD_VAULT_AUTH_TOKEN, "a", "b", b, sizeof(b)), -1);
    /* too small: -1 and nothing of the credentials left in the buffer */
    char s[24];
    assert_int_equal(wd_vault_login_body(WD_VAULT_AUTH_APPROLE, "rid", "secret-value", s, sizeof(s)), -1);
    for (size_t i = 0; i < sizeof(s); i++)
        assert_int_equal(s[i], 0);
    /* exactly fitting */
    char e[36];
    assert_int_equal(wd_vault_login_body(WD_VAULT_AUTH_APPROLE, "rid", "sid", e, sizeof(e)), 35);
    assert_int_equal(wd_vault_login_body(WD_VAULT_AUTH_APPROLE, "rid", "sid", e, 35), -1);
}

static void token_plan(void **state)
{
    (void)state;
    struct wd_vault_token_state s = {0};
    assert_int_equal(wd_vault_plan(&s, 1000), WD_VAULT_LOGIN);
    s = (struct wd_vault_token_state){.have = true, .got_ms = 1000, .lease_ms = 0};
    assert_int_equal(wd_vault_plan(&s, 1000000000), WD_VAULT_USE); /* a token without a TTL */
    s = (struct wd_vault_token_state){.have = true, .got_ms = 1000, .lease_ms = 30000, .renewable = true};
    assert_int_equal(wd_vault_plan(&s, 1000 + 19999), WD_VAULT_USE);
    assert_int_equal(wd_vault_plan(&s, 1000 + 20000), WD_VAULT_RENEW); /* 2/3 of its lease */
    assert_int_equal(wd_vault_plan(&s, 1000 + 29999), WD_VAULT_RENEW);
    assert_int_equal(wd_vault_plan(&s, 1000 + 30000), WD_VAULT_LOGIN); /* expired: no renewal */
    s.capped = true;
    assert_int_equal(wd_vault_plan(&s, 1000 + 19999), WD_VAULT_USE);
    assert_int_equal(wd_vault_plan(&s, 1000 + 20000), WD_VAULT_LOGIN);
    s.capped = false;
    s.renewable = false;
    assert_int_equal(wd_vault_plan(&s, 1000 + 20000), WD_VAULT_LOGIN);
}

static void value_ttl(void **state)
{
    (void)state;
    struct wd_vault_token_state s = {0};
    assert_int_equal(wd_vault_value_ttl(&s, 0, 300000), 300000);
    s = (struct wd_vault_token_state){.have = true, .got_ms = 0, .lease_ms = 0};
    assert_int_equal(wd_vault_value_ttl(&s, 50, 300000), 300000);
    /* an 8 s token: the cache comes back at 6 s (3/4), i.e. a TTL of 7.5 s whose 80% is 6 s */
    s = (struct wd_vault_token_state){.have = true, .got_ms = 0, .lease_ms = 8000, .renewable = true};
    assert_int_equal(wd_vault_value_ttl(&s, 0, 300000), 7500);
    assert_int_equal(wd_vault_value_ttl(&s, 0, 2000), 2000); /* a shorter lease of the value stays */
    assert_int_equal(wd_vault_value_ttl(&s, 4000, 300000), 2500);
    assert_int_equal(wd_vault_value_ttl(&s, 5900, 300000), 500); /* never below 500 ms */
    assert_int_equal(wd_vault_value_ttl(&s, 9000, 300000), 500);
    /* a one-hour token: a 5 min value TTL is untouched */
    s.lease_ms = 3600000;
    assert_int_equal(wd_vault_value_ttl(&s, 0, 300000), 300000);
}

static void resolve_refusals(void **state)
{
    (void)state;
    struct wd_secrets_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char out[64], why[256];
    int64_t ttl = 0;
    unsetenv("VAULT_ADDR");
    unsetenv("VAULT_NAMESPACE");
    assert_int_equal(wd_vault_resolve(&cfg, "vault://nopath", out, sizeof(out), &ttl, why, sizeof(why)), -1);
    assert_string_equal(why, "vault: bad reference: vault:// needs a mount and a path (vault://mount/path#field)");
    assert_int_equal(wd_vault_resolve(&cfg, "vault://secret/x", out, sizeof(out), &ttl, why, sizeof(why)), -1);
    assert_string_equal(why, "vault: no address (secrets.vault.address or VAULT_ADDR)");
    setenv("VAULT_ADDR", "vault:8200", 1);
    assert_int_equal(wd_vault_resolve(&cfg, "vault://secret/x", out, sizeof(out), &ttl, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "vault: the address is not an http(s) URL"));
    setenv("VAULT_ADDR", "https://127.0.0.1:1/", 1);
    setenv("VAULT_NAMESPACE", "team a", 1);
    assert_int_equal(wd_vault_resolve(&cfg, "vault://secret/x", out, sizeof(out), &ttl, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "vault: the namespace"));
    unsetenv("VAULT_ADDR");
    unsetenv("VAULT_NAMESPACE");
    wd_vault_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kv_v2_field),   cmocka_unit_test(kv_v1_lease),    cmocka_unit_test(kv_without_field),
        cmocka_unit_test(kv_missing_field), cmocka_unit_test(kv_value_types), cmocka_unit_test(kv_decoding),
        cmocka_unit_test(kv_too_long),   cmocka_unit_test(kv_shapes),      cmocka_unit_test(errors_list),
        cmocka_unit_test(auth_answer),   cmocka_unit_test(auth_refusals),  cmocka_unit_test(lookup_answer),
        cmocka_unit_test(kv_urls),       cmocka_unit_test(login_bodies),   cmocka_unit_test(token_plan),
        cmocka_unit_test(value_ttl),     cmocka_unit_test(resolve_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
