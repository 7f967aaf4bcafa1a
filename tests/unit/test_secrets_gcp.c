/* Unit tests for the GCP Secret Manager backend's pure parts (secrets/gcp.h): CRC32C, the access answer (base64,
 * checksum, Google's errors, malformed answers), token answers, the service-account key file, the RS256
 * assertion (verified with the key's public half), the request URLs, and the backend's failures before any I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "lib/buf.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "secrets/backend.h"
#include "secrets/gcp.h"

static char out[256], why[256];

static int access(long status, const char *body)
{
    memset(out, 'x', sizeof(out));
    why[0] = '\0';
    return wd_gcp_parse_access(status, body, strlen(body), out, sizeof(out), why, sizeof(why));
}

/* {"name":..,"payload":{"data":b64(v),"dataCrc32c":"crc"}} */
static void access_body(char *b, size_t cap, const char *v, uint32_t crc)
{
    char b64[200];
    int n = EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)v, (int)strlen(v));
    assert_true(n > 0);
    snprintf(b, cap,
             "{\"name\":\"projects/1/secrets/s/versions/1\",\"payload\":{\"data\":\"%s\",\"dataCrc32c\":\"%u\"}}", b64,
             crc);
}

static void test_crc32c_vectors(void **st)
{
    (void)st;
    assert_int_equal(wd_gcp_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(wd_gcp_crc32c("", 0), 0u);
    uint8_t z[32] = {0}, f[32];
    memset(f, 0xFF, sizeof(f));
    assert_int_equal(wd_gcp_crc32c(z, sizeof(z)), 0x8A9136AAu); /* RFC 3720 B.4 */
    assert_int_equal(wd_gcp_crc32c(f, sizeof(f)), 0x62A8AB43u);
}

static void test_access_ok(void **st)
{
    (void)st;
    char b[512];
    access_body(b, sizeof(b), "sk-gcp-value-1", wd_gcp_crc32c("sk-gcp-value-1", 14));
    assert_int_equal(access(200, b), 14);
    assert_string_equal(out, "sk-gcp-value-1");
}

static void test_access_bad_crc_refused_and_wiped(void **st)
{
    (void)st;
    char b[512];
    access_body(b, sizeof(b), "sk-gcp-value-1", wd_gcp_crc32c("sk-gcp-value-1", 14) ^ 1u);
    assert_int_equal(access(200, b), -1);
    assert_non_null(strstr(why, "dataCrc32c does not match"));
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0);
    assert_null(strstr(why, "sk-gcp"));
}

static void test_access_crc_forms(void **st)
{
    (void)st;
    /* "c2stYQ==" is "sk-a"; its CRC32C as a JSON number is accepted too (proto3 JSON parsers take both) */
    char b[256];
    snprintf(b, sizeof(b), "{\"payload\":{\"data\":\"c2stYQ==\",\"dataCrc32c\":%u}}", wd_gcp_crc32c("sk-a", 4));
    assert_int_equal(access(200, b), 4);
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2stYQ==\"}}"), 4); /* no checksum: nothing to check */
    assert_string_equal(out, "sk-a");
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2stYQ==\",\"dataCrc32c\":\"-5\"}}"), -1);
    assert_non_null(strstr(why, "not a CRC32C"));
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2stYQ==\",\"dataCrc32c\":\"4294967296\"}}"), -1);
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2stYQ==\",\"dataCrc32c\":true}}"), -1);
}

static void test_access_trailing_newline_and_alphabets(void **st)
{
    (void)st;
    char b[512];
    access_body(b, sizeof(b), "sk-line\r\n", wd_gcp_crc32c("sk-line\r\n", 9));
    assert_int_equal(access(200, b), 7);
    assert_string_equal(out, "sk-line");
    /* "\/" is JSON's other spelling of '/'; the URL alphabet and missing padding are accepted */
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2s_Pz8\"}}"), 5);
    assert_memory_equal(out, "sk\x3f\x3f\x3f", 5);
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2s\\/Pz8\"}}"), 5);
    assert_memory_equal(out, "sk\x3f\x3f\x3f", 5);
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2s\\nPz8\"}}"), -1); /* any other escape: not base64 */
}

static void test_access_google_error(void **st)
{
    (void)st;
    assert_int_equal(access(404, "{\"error\":{\"code\":404,\"message\":\"Secret [projects/1/secrets/s] not found or "
                                 "has no versions.\",\"status\":\"NOT_FOUND\"}}"),
                     -1);
    assert_string_equal(why, "access: HTTP 404 NOT_FOUND: Secret [projects/1/secrets/s] not found or has no versions.");
    assert_int_equal(access(502, "<html>bad gateway</html>"), -1);
    assert_string_equal(why, "access: HTTP 502");
    assert_int_equal(
        access(403, "{\"error\":{\"code\":403,\"message\":\"a\\u0001b\",\"status\":\"PERMISSION_DENIED\"}}"), -1);
    assert_string_equal(why, "access: HTTP 403 PERMISSION_DENIED: a?b"); /* control characters never reach a log */
}

static void test_access_malformed(void **st)
{
    (void)st;
    assert_int_equal(access(200, "not json"), -1);
    assert_non_null(strstr(why, "not a JSON object"));
    assert_int_equal(access(200, "[1]"), -1);
    assert_int_equal(access(200, "{\"name\":\"x\"}"), -1);
    assert_non_null(strstr(why, "no payload object"));
    assert_int_equal(access(200, "{\"payload\":{}}"), -1);
    assert_non_null(strstr(why, "empty"));
    assert_int_equal(access(200, "{\"payload\":{\"data\":5}}"), -1);
    assert_non_null(strstr(why, "not a string"));
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2s*YQ==\"}}"), -1);
    assert_non_null(strstr(why, "not base64"));
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2stYQ==c2s=\"}}"), -1);
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c\"}}"), -1);
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2stYQ\\u003d\"}}"), -1);
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"Cg==\"}}"), -1); /* "\n" alone: empty once trimmed */
    assert_non_null(strstr(why, "empty"));
    assert_int_equal(access(200, "{\"payload\":{\"data\":\"c2sAYQ==\"}}"), -1); /* "sk\0a" */
    assert_non_null(strstr(why, "NUL"));
}

static void test_access_too_long(void **st)
{
    (void)st;
    char small[4];
    const char *b = "{\"payload\":{\"data\":\"c2stYWJj\"}}"; /* "sk-abc" */
    assert_int_equal(wd_gcp_parse_access(200, b, strlen(b), small, sizeof(small), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "longer than 3 bytes"));
    assert_int_equal(small[0], 0);
}

static int token(long status, const char *body, char *tok, size_t cap, int64_t *ex)
{
    why[0] = '\0';
    return wd_gcp_parse_token("token endpoint", status, body, strlen(body), tok, cap, ex, why, sizeof(why));
}

static void test_token_ok(void **st)
{
    (void)st;
    char tok[64];
    int64_t ex = -1;
    assert_int_equal(token(200, "{\"access_token\":\"ya29.abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}", tok,
                           sizeof(tok), &ex),
                     8);
    assert_string_equal(tok, "ya29.abc");
    assert_int_equal(ex, 3599);
    assert_int_equal(token(200, "{\"access_token\":\"t\",\"expires_in\":999999}", tok, sizeof(tok), &ex), 1);
    assert_int_equal(ex, 86400); /* bounded to a day */
}

static void test_token_errors(void **st)
{
    (void)st;
    char tok[16];
    int64_t ex;
    assert_int_equal(token(400, "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}", tok,
                           sizeof(tok), &ex),
                     -1);
    assert_string_equal(why, "token endpoint: HTTP 400 invalid_grant: Invalid JWT Signature.");
    assert_int_equal(token(403, "Missing required header: Metadata-Flavor: Google\n", tok, sizeof(tok), &ex), -1);
    assert_string_equal(why, "token endpoint: HTTP 403: Missing required header: Metadata-Flavor: Google");
    assert_int_equal(token(200, "{\"expires_in\":3599}", tok, sizeof(tok), &ex), -1);
    assert_non_null(strstr(why, "no access_token"));
    assert_int_equal(token(200, "{\"access_token\":\"t\",\"expires_in\":\"3599\"}", tok, sizeof(tok), &ex), -1);
    assert_non_null(strstr(why, "expires_in"));
    assert_int_equal(token(200, "{\"access_token\":\"t\",\"expires_in\":0}", tok, sizeof(tok), &ex), -1);
    assert_int_equal(token(200, "{\"access_token\":\"t\",\"expires_in\":60,\"token_type\":\"mac\"}", tok, sizeof(tok),
                           &ex),
                     -1);
    assert_non_null(strstr(why, "not Bearer"));
    assert_int_equal(token(200, "{\"access_token\":\"a b\",\"expires_in\":60}", tok, sizeof(tok), &ex), -1);
    assert_int_equal(token(200, "{\"access_token\":\"\",\"expires_in\":60}", tok, sizeof(tok), &ex), -1);
    assert_int_equal(token(200, "{\"access_token\":\"0123456789abcdef\",\"expires_in\":60}", tok, sizeof(tok), &ex),
                     -1);
    assert_non_null(strstr(why, "longer than 15 bytes"));
    assert_null(strstr(why, "0123456789abcdef"));
    assert_int_equal(tok[0], 0);
}

/* A fresh RSA key and its key file JSON; the caller frees both. */
static EVP_PKEY *make_key(int bits, char **json, const char *token_uri)
{
    EVP_PKEY *k = EVP_RSA_gen((unsigned)bits);
    assert_non_null(k);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    struct wd_buf j = {0};
    wd_buf_puts(&j, "{\"type\":\"service_account\",\"project_id\":\"p\",\"private_key_id\":\"kid-1\",\"private_key\":");
    wd_json_put_string(&j, pem, (size_t)n);
    wd_buf_puts(&j, ",\"client_email\":\"sa@p.iam.gserviceaccount.com\"");
    if (token_uri != NULL)
        wd_buf_printf(&j, ",\"token_uri\":\"%s\"", token_uri);
    wd_buf_putc(&j, '}');
    wd_buf_putc(&j, '\0');
    BIO_free(b);
    *json = j.p;
    return k;
}

static void test_key_parse(void **st)
{
    (void)st;
    char *json;
    EVP_PKEY *k = make_key(2048, &json, "https://oauth2.googleapis.com/token");
    struct wd_gcp_key key;
    char pem[8192];
    assert_int_equal(wd_gcp_parse_key(json, strlen(json), &key, pem, sizeof(pem), why, sizeof(why)), 0);
    assert_string_equal(key.client_email, "sa@p.iam.gserviceaccount.com");
    assert_string_equal(key.private_key_id, "kid-1");
    assert_string_equal(key.token_uri, "https://oauth2.googleapis.com/token");
    assert_ptr_equal(key.pem, pem);
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----\n")); /* the "\n" escapes decoded */
    assert_int_equal(key.pem_len, strlen(pem));
    free(json);
    EVP_PKEY_free(k);
}

static void test_key_parse_errors(void **st)
{
    (void)st;
    struct wd_gcp_key key;
    char pem[512];
    const char *j = "{\"type\":\"authorized_user\",\"client_id\":\"x\"}";
    assert_int_equal(wd_gcp_parse_key(j, strlen(j), &key, pem, sizeof(pem), why, sizeof(why)), -1);
    assert_string_equal(why, "the key file is of type authorized_user; only service_account keys are supported");
    j = "{\"type\":\"service_account\",\"private_key_id\":\"k\",\"private_key\":\"P\"}";
    assert_int_equal(wd_gcp_parse_key(j, strlen(j), &key, pem, sizeof(pem), why, sizeof(why)), -1);
    assert_string_equal(why, "the key file has no client_email");
    j = "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key_id\":\"k\"}";
    assert_int_equal(wd_gcp_parse_key(j, strlen(j), &key, pem, sizeof(pem), why, sizeof(why)), -1);
    assert_string_equal(why, "the key file has no private_key");
    j = "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":\"P\"}";
    assert_int_equal(wd_gcp_parse_key(j, strlen(j), &key, pem, sizeof(pem), why, sizeof(why)), -1);
    assert_string_equal(why, "the key file has no private_key_id");
    j = "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key_id\":\"k\",\"private_key\":\"P\","
        "\"token_uri\":\"ftp://x\"}";
    assert_int_equal(wd_gcp_parse_key(j, strlen(j), &key, pem, sizeof(pem), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "token_uri"));
    j = "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key_id\":\"k\",\"private_key\":\"P\"}";
    assert_int_equal(wd_gcp_parse_key(j, strlen(j), &key, pem, sizeof(pem), why, sizeof(why)), 0);
    assert_string_equal(key.token_uri, WD_GCP_TOKEN_URI); /* absent: Google's */
    assert_int_equal(wd_gcp_parse_key(j, strlen(j), &key, pem, 1, why, sizeof(why)), -1); /* no room for the PEM */
    assert_int_equal(wd_gcp_parse_key("{", 1, &key, pem, sizeof(pem), why, sizeof(why)), -1);
    assert_string_equal(why, "the key file is not a JSON object");
}

/* base64url part i of a compact JWT, decoded and parsed as JSON into j (src kept in *buf). */
static void jwt_part(const char *jwt, int i, struct wd_json *j, char *buf, size_t cap)
{
    const char *p = jwt;
    for (int k = 0; k < i; k++)
        p = strchr(p, '.') + 1;
    size_t n = strcspn(p, ".");
    long m = wd_b64url_decode(p, n, (uint8_t *)buf, cap);
    assert_true(m > 0);
    assert_int_equal(wd_json_parse(j, buf, (size_t)m), 0);
}

static void test_jwt_claims_and_signature(void **st)
{
    (void)st;
    char *json;
    EVP_PKEY *k = make_key(2048, &json, NULL);
    struct wd_gcp_key key;
    char pem[8192], jwt[4096], buf[1024];
    assert_int_equal(wd_gcp_parse_key(json, strlen(json), &key, pem, sizeof(pem), why, sizeof(why)), 0);
    int n = wd_gcp_jwt_sign(&key, 1700000000, jwt, sizeof(jwt), why, sizeof(why));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(jwt));
    struct wd_json h = {0}, c = {0};
    jwt_part(jwt, 0, &h, buf, sizeof(buf));
    assert_true(wd_json_str_eq(&h, wd_json_get(&h, 0, "alg"), "RS256"));
    assert_true(wd_json_str_eq(&h, wd_json_get(&h, 0, "kid"), "kid-1"));
    wd_json_free(&h);
    char cbuf[1024];
    jwt_part(jwt, 1, &c, cbuf, sizeof(cbuf));
    assert_true(wd_json_str_eq(&c, wd_json_get(&c, 0, "iss"), "sa@p.iam.gserviceaccount.com"));
    assert_true(wd_json_str_eq(&c, wd_json_get(&c, 0, "scope"), WD_GCP_SCOPE));
    assert_true(wd_json_str_eq(&c, wd_json_get(&c, 0, "aud"), "https://oauth2.googleapis.com/token"));
    int64_t iat = 0, exp = 0;
    assert_int_equal(wd_json_i64(&c, wd_json_get(&c, 0, "iat"), &iat), 0);
    assert_int_equal(wd_json_i64(&c, wd_json_get(&c, 0, "exp"), &exp), 0);
    assert_int_equal(iat, 1700000000);
    assert_int_equal(exp, 1700003600);
    wd_json_free(&c);
    /* RS256 over "header.claims", checked with the public half */
    const char *dot = strrchr(jwt, '.');
    uint8_t sig[512];
    long sl = wd_b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof(sig));
    assert_int_equal(sl, 256);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestVerify(m, sig, (size_t)sl, (const uint8_t *)jwt, (size_t)(dot - jwt)), 1);
    sig[10] ^= 1;
    assert_int_equal(EVP_DigestVerify(m, sig, (size_t)sl, (const uint8_t *)jwt, (size_t)(dot - jwt)), 0);
    EVP_MD_CTX_free(m);
    assert_int_equal(wd_gcp_jwt_sign(&key, 1700000000, jwt, 100, why, sizeof(why)), -1); /* no room */
    free(json);
    EVP_PKEY_free(k);
}

static void test_jwt_refuses_weak_or_other_keys(void **st)
{
    (void)st;
    char *json;
    EVP_PKEY *k = make_key(1024, &json, NULL);
    struct wd_gcp_key key;
    char pem[8192], jwt[4096];
    assert_int_equal(wd_gcp_parse_key(json, strlen(json), &key, pem, sizeof(pem), why, sizeof(why)), 0);
    assert_int_equal(wd_gcp_jwt_sign(&key, 1, jwt, sizeof(jwt), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "2048"));
    free(json);
    EVP_PKEY_free(k);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    memcpy(pem, p, (size_t)n);
    pem[n] = '\0';
    key.pem = pem;
    key.pem_len = (size_t)n;
    assert_int_equal(wd_gcp_jwt_sign(&key, 1, jwt, sizeof(jwt), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "not an RSA key"));
    key.pem_len = 20; /* a cut PEM */
    assert_int_equal(wd_gcp_jwt_sign(&key, 1, jwt, sizeof(jwt), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "not a PEM private key"));
    BIO_free(b);
    EVP_PKEY_free(ec);
}

static void test_urls(void **st)
{
    (void)st;
    char u[256];
    assert_int_equal(wd_gcp_access_url("https://sm.example/", "gcp-sm://projects/p1/secrets/s_1", u, sizeof(u), why,
                                       sizeof(why)),
                     (int)strlen("https://sm.example/v1/projects/p1/secrets/s_1/versions/latest:access"));
    assert_string_equal(u, "https://sm.example/v1/projects/p1/secrets/s_1/versions/latest:access");
    assert_true(wd_gcp_access_url("https://secretmanager.googleapis.com", "gcp-sm://projects/123/secrets/k/versions/7",
                                  u, sizeof(u), why, sizeof(why)) > 0);
    assert_string_equal(u, "https://secretmanager.googleapis.com/v1/projects/123/secrets/k/versions/7:access");
    assert_int_equal(wd_gcp_access_url("https://x", "gcp-sm://projects/p/secrets/k/versions/0", u, sizeof(u), why,
                                       sizeof(why)),
                     -1);
    assert_int_equal(wd_gcp_access_url("https://x", "gcp-sm://projects/p/secrets/k", u, 20, why, sizeof(why)), -1);
    assert_int_equal(wd_gcp_metadata_url("127.0.0.1:8080", u, sizeof(u), why, sizeof(why)),
                     (int)strlen("http://127.0.0.1:8080/computeMetadata/v1/instance/service-accounts/default/token"));
    assert_string_equal(u, "http://127.0.0.1:8080/computeMetadata/v1/instance/service-accounts/default/token");
    assert_int_equal(wd_gcp_metadata_url("evil/x?", u, sizeof(u), why, sizeof(why)), -1);
    assert_int_equal(wd_gcp_metadata_url("", u, sizeof(u), why, sizeof(why)), -1);
}

static void test_metadata_flavor(void **st)
{
    (void)st;
    const char *h = "content-type: application/json\r\nmetadata-flavor: Google\r\n";
    assert_int_equal(wd_gcp_metadata_flavor_ok(h, strlen(h)), 1);
    h = "Metadata-Flavor:Google";
    assert_int_equal(wd_gcp_metadata_flavor_ok(h, strlen(h)), 1);
    h = "metadata-flavor: Googlex\r\n";
    assert_int_equal(wd_gcp_metadata_flavor_ok(h, strlen(h)), 0);
    h = "server: nginx\r\n";
    assert_int_equal(wd_gcp_metadata_flavor_ok(h, strlen(h)), 0);
    assert_int_equal(wd_gcp_metadata_flavor_ok("", 0), 0);
}

static void test_renew_at(void **st)
{
    (void)st;
    assert_int_equal(wd_gcp_token_renew_at(1000, 3599), 1000 + 3599000 - 300000);
    assert_int_equal(wd_gcp_token_renew_at(0, 3), 2400);
    assert_int_equal(wd_gcp_token_renew_at(0, 1500), 1200000); /* 25 min: both rules agree */
}

/* The backend's failures before any network: a named reason, no crash, nothing left behind (LSan). */
static void test_resolve_fails_cleanly(void **st)
{
    (void)st;
    struct wd_secrets_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char v[64];
    int64_t ttl = 0;
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    assert_int_equal(wd_gcp_sm_resolve(&cfg, "gcp-sm://projects/p/nope", v, sizeof(v), &ttl, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "gcp-sm: "));
    assert_int_equal(ttl, 300000); /* 0 in the config: 5 minutes */
    cfg.gcp.credentials = WD_GCP_SRC_KEY;
    assert_int_equal(wd_gcp_sm_resolve(&cfg, "gcp-sm://projects/p/secrets/s", v, sizeof(v), &ttl, why, sizeof(why)),
                     -1);
    assert_non_null(strstr(why, "no key file"));
    cfg.gcp.credentials_file = "/nonexistent/warden-sa.json";
    cfg.gcp.ttl_ms = 2000;
    assert_int_equal(wd_gcp_sm_resolve(&cfg, "gcp-sm://projects/p/secrets/s", v, sizeof(v), &ttl, why, sizeof(why)),
                     -1);
    assert_string_equal(why, "gcp-sm: key file: cannot open /nonexistent/warden-sa.json: No such file or directory");
    assert_int_equal(ttl, 2000);
    cfg.gcp.credentials = WD_GCP_SRC_METADATA;
    cfg.gcp.metadata_host = "bad host";
    assert_int_equal(wd_gcp_sm_resolve(&cfg, "gcp-sm://projects/p/secrets/s", v, sizeof(v), &ttl, why, sizeof(why)),
                     -1);
    assert_string_equal(why, "gcp-sm: metadata server: the metadata host is not host[:port]");
    wd_gcp_sm_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_access_ok),
        cmocka_unit_test(test_access_bad_crc_refused_and_wiped),
        cmocka_unit_test(test_access_crc_forms),
        cmocka_unit_test(test_access_trailing_newline_and_alphabets),
        cmocka_unit_test(test_access_google_error),
        cmocka_unit_test(test_access_malformed),
        cmocka_unit_test(test_access_too_long),
        cmocka_unit_test(test_token_ok),
        cmocka_unit_test(test_token_errors),
        cmocka_unit_test(test_key_parse),
        cmocka_unit_test(test_key_parse_errors),
        cmocka_unit_test(test_jwt_claims_and_signature),
        cmocka_unit_test(test_jwt_refuses_weak_or_other_keys),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_metadata_flavor),
        cmocka_unit_test(test_renew_at),
        cmocka_unit_test(test_resolve_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
