/* Unit tests for the azure-kv:// backend's pure part (secrets/azure.h): Key Vault's bearer challenge, the check
 * of its resource, secret and token answers (Entra's numbers, IMDS's strings, errors into a why that holds no
 * value), and the URLs and token forms Warden sends. No network. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "secrets/azure.h"

#define S(lit) (lit), sizeof(lit) - 1

static const char kv_hdrs[] =
    "content-type: application/json; charset=utf-8\r\n"
    "WWW-Authenticate: Bearer "
    "authorization=\"https://login.microsoftonline.com/72f988bf-0000-4000-8000-00000000fa4e\", "
    "resource=\"https://vault.azure.net\"\r\n"
    "x-ms-keyvault-region: westeurope\r\n";

static void challenge_classic(void **state)
{
    (void)state;
    struct wd_azure_challenge c;
    char why[200];
    assert_int_equal(wd_azure_parse_challenge(S(kv_hdrs), &c, why, sizeof why), 0);
    assert_string_equal(c.tenant, "72f988bf-0000-4000-8000-00000000fa4e");
    assert_string_equal(c.resource, "https://vault.azure.net");
}

static void challenge_scope_and_lowercase(void **state)
{
    (void)state;
    struct wd_azure_challenge c;
    char why[200];
    static const char h[] =
        "www-authenticate: bearer authorization_uri=\"https://login.windows.net/contoso.onmicrosoft.com/\","
        " scope=\"https://vault.azure.cn/.default\"\r\n";
    assert_int_equal(wd_azure_parse_challenge(S(h), &c, why, sizeof why), 0);
    assert_string_equal(c.tenant, "contoso.onmicrosoft.com");
    assert_string_equal(c.resource, "https://vault.azure.cn");
}

static void challenge_after_another_scheme(void **state)
{
    (void)state;
    struct wd_azure_challenge c;
    char why[200];
    /* a PoP challenge first, then the Bearer one on its own line */
    static const char h[] = "WWW-Authenticate: PoP nonce=\"abc\"\r\n"
                            "WWW-Authenticate: Bearer authorization=\"https://login.microsoftonline.com/t1\", "
                            "resource=\"https://vault.azure.net/\"\r\n";
    assert_int_equal(wd_azure_parse_challenge(S(h), &c, why, sizeof why), 0);
    assert_string_equal(c.tenant, "t1");
    assert_string_equal(c.resource, "https://vault.azure.net");
}

static void challenge_errors(void **state)
{
    (void)state;
    struct wd_azure_challenge c;
    char why[200];
    assert_int_equal(wd_azure_parse_challenge(S("content-type: text/plain\r\n"), &c, why, sizeof why), -1);
    assert_non_null(strstr(why, "no Bearer challenge"));
    assert_int_equal(wd_azure_parse_challenge(S("WWW-Authenticate: Bearer resource=\"https://vault.azure.net\"\r\n"),
                                              &c, why, sizeof why),
                     -1);
    assert_non_null(strstr(why, "no authorization"));
    assert_int_equal(wd_azure_parse_challenge(
                         S("WWW-Authenticate: Bearer authorization=\"https://login.microsoftonline.com/t\"\r\n"), &c,
                         why, sizeof why),
                     -1);
    assert_non_null(strstr(why, "no resource"));
    /* a tenant with a character a path must not carry */
    assert_int_equal(
        wd_azure_parse_challenge(
            S("WWW-Authenticate: Bearer authorization=\"https://h/a%2F..\", resource=\"https://vault.azure.net\"\r\n"),
            &c, why, sizeof why),
        -1);
    assert_non_null(strstr(why, "no tenant"));
    assert_string_equal(c.tenant, "");
    /* an unterminated quote */
    assert_int_equal(wd_azure_parse_challenge(S("WWW-Authenticate: Bearer authorization=\"https://h/t, resource=x\r\n"),
                                              &c, why, sizeof why),
                     -1);
    /* a plain-http resource is no Key Vault resource */
    assert_int_equal(
        wd_azure_parse_challenge(
            S("WWW-Authenticate: Bearer authorization=\"https://h/t\", resource=\"http://vault.azure.net\"\r\n"), &c,
            why, sizeof why),
        -1);
    assert_non_null(strstr(why, "not an https URL"));
}

static void resource_check(void **state)
{
    (void)state;
    char why[200];
    assert_int_equal(wd_azure_check_resource("https://vault.azure.net", "https://kv1.vault.azure.net", why, sizeof why),
                     0);
    assert_int_equal(wd_azure_check_resource("https://vault.azure.cn", "https://kv1.vault.azure.cn", why, sizeof why),
                     0);
    /* a vault elsewhere (private endpoint, test) takes any cloud's resource */
    assert_int_equal(wd_azure_check_resource("https://vault.azure.net", "https://127.0.0.1:8443", why, sizeof why), 0);
    /* a resource that is not Key Vault: a token for it would be handed to whoever answers */
    assert_int_equal(
        wd_azure_check_resource("https://management.azure.com", "https://kv1.vault.azure.net", why, sizeof why), -1);
    assert_non_null(strstr(why, "not Key Vault"));
    /* another cloud's resource than the vault's */
    assert_int_equal(wd_azure_check_resource("https://vault.azure.net", "https://kv1.vault.azure.cn/", why, sizeof why),
                     -1);
    assert_non_null(strstr(why, "vault.azure.cn"));
    /* a look-alike suffix is not under the domain */
    assert_int_equal(wd_azure_check_resource("https://vault.azure.net", "https://evilvault.azure.cn", why, sizeof why),
                     0);
}

static void secret_ok(void **state)
{
    (void)state;
    char out[64], why[200];
    const char *inner = "x";
    static const char b[] = "{\"value\":\"sk-\\u00e9\\\"q\\\"\",\"id\":\"https://kv1.vault.azure.net/secrets/g/0123\","
                            "\"attributes\":{\"enabled\":true,\"created\":1700000000},\"tags\":{}}";
    int n = wd_azure_parse_secret(S(b), 200, out, sizeof out, &inner, why, sizeof why);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "sk-\xc3\xa9\"q\"", 9);
    assert_string_equal(inner, "");
}

static void secret_bad_shapes(void **state)
{
    (void)state;
    char out[16], why[200];
    assert_int_equal(wd_azure_parse_secret(S("{\"id\":\"x\"}"), 200, out, sizeof out, NULL, why, sizeof why), -1);
    assert_string_equal(why, "the answer has no value");
    assert_int_equal(wd_azure_parse_secret(S("{\"value\":42}"), 200, out, sizeof out, NULL, why, sizeof why), -1);
    assert_string_equal(why, "the answer's value is not a string");
    assert_int_equal(wd_azure_parse_secret(S("[\"value\"]"), 200, out, sizeof out, NULL, why, sizeof why), -1);
    assert_string_equal(why, "the answer is not a JSON object");
    assert_int_equal(wd_azure_parse_secret(S("{\"value\":\"\"}"), 200, out, sizeof out, NULL, why, sizeof why), -1);
    assert_string_equal(why, "the secret's value is empty");
    assert_int_equal(wd_azure_parse_secret(S("{\"value\":\"a\\u0000b\"}"), 200, out, sizeof out, NULL, why, sizeof why),
                     -1);
    assert_string_equal(why, "the value holds a NUL byte");
    assert_int_equal(out[0], '\0');
    /* 16 bytes of room: 15 fit, 16 do not */
    assert_int_equal(
        wd_azure_parse_secret(S("{\"value\":\"0123456789abcde\"}"), 200, out, sizeof out, NULL, why, sizeof why), 15);
    assert_int_equal(
        wd_azure_parse_secret(S("{\"value\":\"0123456789abcdef\"}"), 200, out, sizeof out, NULL, why, sizeof why), -1);
    assert_non_null(strstr(why, "longer than 15 bytes"));
    assert_null(strstr(why, "0123"));
    assert_int_equal(wd_azure_parse_secret(S("{\"value\":\"x\""), 200, out, sizeof out, NULL, why, sizeof why), -1);
    assert_string_equal(why, "the answer is not a JSON object");
}

static void secret_errors(void **state)
{
    (void)state;
    char out[64], why[300];
    const char *inner = NULL;
    static const char dis[] =
        "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Operation get is not allowed on a disabled "
        "secret.\",\"innererror\":{\"code\":\"SecretDisabled\"}}}";
    assert_int_equal(wd_azure_parse_secret(S(dis), 403, out, sizeof out, &inner, why, sizeof why), -1);
    assert_string_equal(why, "HTTP 403 Forbidden (SecretDisabled): Operation get is not allowed on a disabled secret.");
    assert_string_equal(inner, "SecretDisabled");
    static const char nf[] = "{\"error\":{\"code\":\"SecretNotFound\",\"message\":\"A secret with (name/id) g was not "
                             "found in this key vault. If you recently deleted this secret you may be able to recover "
                             "it.\"}}";
    assert_int_equal(wd_azure_parse_secret(S(nf), 404, out, sizeof out, &inner, why, sizeof why), -1);
    assert_string_equal(why, "HTTP 404 SecretNotFound: A secret with (name/id) g was not found in this key vault.");
    assert_string_equal(inner, "");
    static const char den[] = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Caller is not authorized.\","
                              "\"innererror\":{\"code\":\"ForbiddenByRbac\"}}}";
    assert_int_equal(wd_azure_parse_secret(S(den), 403, out, sizeof out, &inner, why, sizeof why), -1);
    assert_string_equal(inner, "auth");
    assert_int_equal(
        wd_azure_parse_secret(S("{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10032: Token is expired.\"}}"),
                              401, out, sizeof out, &inner, why, sizeof why),
        -1);
    assert_string_equal(inner, "auth");
    assert_string_equal(why, "HTTP 401 Unauthorized: AKV10032: Token is expired.");
    assert_int_equal(
        wd_azure_parse_secret(S("<html>bad gateway</html>"), 502, out, sizeof out, &inner, why, sizeof why), -1);
    assert_string_equal(why, "HTTP 502 (not JSON)");
    /* the error's code of the wrong type is left out, never a crash */
    assert_int_equal(
        wd_azure_parse_secret(S("{\"error\":{\"code\":7}}"), 500, out, sizeof out, &inner, why, sizeof why), -1);
    assert_string_equal(why, "HTTP 500");
    /* a control character in a message does not reach a log line */
    assert_int_equal(wd_azure_parse_secret(S("{\"error\":{\"code\":\"X\",\"message\":\"a\\nb\"}}"), 500, out,
                                           sizeof out, &inner, why, sizeof why),
                     -1);
    assert_string_equal(why, "HTTP 500 X: a b");
}

static void token_entra(void **state)
{
    (void)state;
    char tok[64], why[200];
    int64_t exp = 0;
    static const char b[] =
        "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,\"access_token\":\"eyJ0.eyJ1.sig\"}";
    assert_int_equal(wd_azure_parse_token(S(b), 200, 1700000000, tok, sizeof tok, &exp, why, sizeof why), 13);
    assert_string_equal(tok, "eyJ0.eyJ1.sig");
    assert_int_equal(exp, 3599);
}

static void token_imds_strings(void **state)
{
    (void)state;
    char tok[64], why[200];
    int64_t exp = 0;
    static const char b[] =
        "{\"access_token\":\"abc\",\"client_id\":\"5f0d\",\"expires_in\":\"86399\",\"expires_on\":\"1700086399\","
        "\"ext_expires_in\":\"86399\",\"not_before\":\"1700000000\",\"resource\":\"https://vault.azure.net\","
        "\"token_type\":\"Bearer\"}";
    assert_int_equal(wd_azure_parse_token(S(b), 200, 1700000000, tok, sizeof tok, &exp, why, sizeof why), 3);
    assert_int_equal(exp, 86399);
    /* expires_on alone: its distance from now */
    static const char on[] = "{\"access_token\":\"abc\",\"expires_on\":\"1700000600\",\"token_type\":\"Bearer\"}";
    assert_int_equal(wd_azure_parse_token(S(on), 200, 1700000000, tok, sizeof tok, &exp, why, sizeof why), 3);
    assert_int_equal(exp, 600);
}

static void token_errors(void **state)
{
    (void)state;
    char tok[16], why[300];
    int64_t exp = 7;
    static const char aad[] =
        "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret "
        "provided. Ensure the secret being sent is the value. Trace ID: 1 Correlation ID: 2\","
        "\"error_codes\":[7000215]}";
    assert_int_equal(wd_azure_parse_token(S(aad), 401, 0, tok, sizeof tok, &exp, why, sizeof why), -1);
    assert_string_equal(why, "HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided.");
    assert_int_equal(exp, 0);
    assert_int_equal(
        wd_azure_parse_token(
            S("{\"error\":\"invalid_request\",\"error_description\":\"Required metadata header not specified\"}"), 400,
            0, tok, sizeof tok, &exp, why, sizeof why),
        -1);
    assert_string_equal(why, "HTTP 400 invalid_request: Required metadata header not specified");
    assert_int_equal(wd_azure_parse_token(S("{\"expires_in\":3599}"), 200, 0, tok, sizeof tok, &exp, why, sizeof why),
                     -1);
    assert_string_equal(why, "the token answer has no access_token");
    assert_int_equal(wd_azure_parse_token(S("{\"access_token\":5,\"expires_in\":3599}"), 200, 0, tok, sizeof tok, &exp,
                                          why, sizeof why),
                     -1);
    assert_string_equal(why, "the token answer's access_token is not a string");
    assert_int_equal(
        wd_azure_parse_token(S("{\"access_token\":\"a\"}"), 200, 0, tok, sizeof tok, &exp, why, sizeof why), -1);
    assert_string_equal(why, "the token answer has no expires_in");
    assert_int_equal(wd_azure_parse_token(S("{\"access_token\":\"a\",\"expires_in\":\"12a\"}"), 200, 0, tok, sizeof tok,
                                          &exp, why, sizeof why),
                     -1);
    assert_string_equal(why, "the token answer's expires_in is not a number");
    assert_int_equal(wd_azure_parse_token(S("{\"access_token\":\"a\",\"expires_in\":true}"), 200, 0, tok, sizeof tok,
                                          &exp, why, sizeof why),
                     -1);
    assert_string_equal(why, "the token answer's expires_in is not a number");
    assert_int_equal(wd_azure_parse_token(S("{\"access_token\":\"a\",\"expires_in\":0}"), 200, 0, tok, sizeof tok, &exp,
                                          why, sizeof why),
                     -1);
    assert_non_null(strstr(why, "out of range"));
    assert_int_equal(wd_azure_parse_token(S("{\"access_token\":\"a\",\"expires_in\":60,\"token_type\":\"pop\"}"), 200,
                                          0, tok, sizeof tok, &exp, why, sizeof why),
                     -1);
    assert_string_equal(why, "the token answer's token_type is not Bearer");
    /* a token that would split a header */
    assert_int_equal(wd_azure_parse_token(S("{\"access_token\":\"a\\r\\nX: y\",\"expires_in\":60}"), 200, 0, tok,
                                          sizeof tok, &exp, why, sizeof why),
                     -1);
    assert_non_null(strstr(why, "a header cannot carry"));
    assert_int_equal(tok[0], '\0');
    assert_int_equal(wd_azure_parse_token(S("{\"access_token\":\"0123456789abcdef\",\"expires_in\":60}"), 200, 0, tok,
                                          sizeof tok, &exp, why, sizeof why),
                     -1);
    assert_string_equal(why, "the access token is too long");
}

static void urls(void **state)
{
    (void)state;
    struct wd_ref_azure r = {.vault = "kv-prod", .name = "gemini-key", .version = ""};
    char base[256], url[512];
    assert_int_equal(wd_azure_vault_base(NULL, &r, base, sizeof base), 0);
    assert_string_equal(base, "https://kv-prod.vault.azure.net");
    assert_int_equal(wd_azure_vault_base("https://{vault}.vault.azure.cn/", &r, base, sizeof base), 0);
    assert_string_equal(base, "https://kv-prod.vault.azure.cn");
    assert_int_equal(wd_azure_vault_base("https://127.0.0.1:8443", &r, base, sizeof base), 0);
    assert_string_equal(base, "https://127.0.0.1:8443");
    assert_int_equal(wd_azure_vault_base("ftp://{vault}", &r, base, sizeof base), -1);
    assert_int_equal(wd_azure_vault_base(NULL, &r, base, 20), -1);
    assert_int_equal(wd_azure_vault_base(NULL, &r, base, sizeof base), 0);
    assert_int_equal(wd_azure_secret_url(base, &r, url, sizeof url), 0);
    assert_string_equal(url, "https://kv-prod.vault.azure.net/secrets/gemini-key?api-version=7.4");
    snprintf(r.version, sizeof r.version, "0123456789abcdef0123456789abcdef");
    assert_int_equal(wd_azure_secret_url(base, &r, url, sizeof url), 0);
    assert_string_equal(
        url, "https://kv-prod.vault.azure.net/secrets/gemini-key/0123456789abcdef0123456789abcdef?api-version=7.4");
    assert_int_equal(wd_azure_secret_url(base, &r, url, 40), -1);

    assert_int_equal(wd_azure_token_url(NULL, "t1", url, sizeof url), 0);
    assert_string_equal(url, "https://login.microsoftonline.com/t1/oauth2/v2.0/token");
    assert_int_equal(wd_azure_token_url("https://login.microsoftonline.us/", "t1", url, sizeof url), 0);
    assert_string_equal(url, "https://login.microsoftonline.us/t1/oauth2/v2.0/token");

    assert_int_equal(wd_azure_imds_url(NULL, "https://vault.azure.net", NULL, url, sizeof url), 0);
    assert_string_equal(url, "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
                             "&resource=https%3A%2F%2Fvault.azure.net");
    assert_int_equal(wd_azure_imds_url("http://127.0.0.1:9/", "https://vault.azure.net", "5f0d-1", url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:9/metadata/identity/oauth2/token?api-version=2018-02-01"
                             "&resource=https%3A%2F%2Fvault.azure.net&client_id=5f0d-1");
    assert_int_equal(wd_azure_imds_url(NULL, "https://vault.azure.net", NULL, url, 30), -1);
}

static void token_forms(void **state)
{
    (void)state;
    struct wd_buf b = {0};
    assert_int_equal(wd_azure_token_form("app-1", "https://vault.azure.net", "s&c=r t", NULL, &b), 0);
    wd_buf_putc(&b, '\0');
    assert_string_equal(b.p,
                        "grant_type=client_credentials&client_id=app-1&scope=https%3A%2F%2Fvault.azure.net%2F.default"
                        "&client_secret=s%26c%3Dr%20t");
    b.n = 0;
    assert_int_equal(wd_azure_token_form("app-1", "https://vault.azure.net", NULL, "eyJ.a.b", &b), 0);
    wd_buf_putc(&b, '\0');
    assert_string_equal(b.p,
                        "grant_type=client_credentials&client_id=app-1&scope=https%3A%2F%2Fvault.azure.net%2F.default"
                        "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                        "&client_assertion=eyJ.a.b");
    b.n = 0;
    assert_int_equal(wd_azure_token_form(NULL, "https://vault.azure.net", "s", NULL, &b), -1);
    assert_int_equal(wd_azure_token_form("app-1", "https://vault.azure.net", NULL, NULL, &b), -1);
    assert_int_equal(b.n, 0);
    wd_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(challenge_classic),
        cmocka_unit_test(challenge_scope_and_lowercase),
        cmocka_unit_test(challenge_after_another_scheme),
        cmocka_unit_test(challenge_errors),
        cmocka_unit_test(resource_check),
        cmocka_unit_test(secret_ok),
        cmocka_unit_test(secret_bad_shapes),
        cmocka_unit_test(secret_errors),
        cmocka_unit_test(token_entra),
        cmocka_unit_test(token_imds_strings),
        cmocka_unit_test(token_errors),
        cmocka_unit_test(urls),
        cmocka_unit_test(token_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
