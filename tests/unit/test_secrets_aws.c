/* Unit tests for the aws-sm:// backend's pure parts (secrets/aws.h): GetSecretValue answers and JSON 1.1 errors,
 * STS XML, IMDS and container credentials, the shared credentials file, times and refresh points, endpoints,
 * regions, and the signed GetSecretValue request (its signature checked against fake_aws.mjs's own SigV4). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/aws.h"
#include "secrets/backend.h"

#define S(lit) lit, sizeof(lit) - 1

static char out[256], why[256];

static int value(const char *body, const char *field)
{
    memset(out, 'Z', sizeof(out));
    why[0] = '\0';
    return wd_aws_sm_parse_value(body, strlen(body), field, out, sizeof(out), why, sizeof(why));
}

static void sm_value_string(void **state)
{
    assert_int_equal(value("{\"ARN\":\"a\",\"Name\":\"n\",\"SecretString\":\"sk-plain-1\",\"VersionStages\":[\"AWSCURRENT\"]}",
                           NULL),
                     10);
    assert_string_equal(out, "sk-plain-1");
    assert_int_equal(value("{\"SecretString\":\"a\\\"b\\u00e9\\n\"}", ""), 6);
    assert_string_equal(out, "a\"b\xc3\xa9\n");
    /* SecretBinary null beside a string: the string is read */
    assert_int_equal(value("{\"SecretBinary\":null,\"SecretString\":\"v\"}", NULL), 1);
    assert_string_equal(out, "v");
}

static void sm_value_field(void **state)
{
    assert_int_equal(value("{\"SecretString\":\"{\\\"api_key\\\":\\\"sk-json-1\\\",\\\"region\\\":\\\"x\\\"}\"}", "api_key"),
                     9);
    assert_string_equal(out, "sk-json-1");
    /* an escape inside the inner document's string */
    assert_int_equal(value("{\"SecretString\":\"{\\\"k\\\":\\\"a\\\\\\\"b\\\"}\"}", "k"), 3);
    assert_string_equal(out, "a\"b");
    assert_int_equal(value("{\"SecretString\":\"{\\\"other\\\":\\\"v\\\"}\"}", "api_key"), -1);
    assert_non_null(strstr(why, "no field \"api_key\""));
    assert_int_equal(value("{\"SecretString\":\"{\\\"api_key\\\":42}\"}", "api_key"), -1);
    assert_non_null(strstr(why, "not a string"));
    assert_int_equal(value("{\"SecretString\":\"plain-not-json\"}", "api_key"), -1);
    assert_non_null(strstr(why, "not a JSON object"));
    assert_null(strstr(why, "plain-not-json"));
    assert_int_equal(value("{\"SecretString\":\"{\\\"api_key\\\":\\\"\\\"}\"}", "api_key"), -1);
    assert_non_null(strstr(why, "empty"));
}

static void sm_value_binary(void **state)
{
    assert_int_equal(value("{\"SecretBinary\":\"c2stYmluYXJ5\"}", NULL), 9);
    assert_string_equal(out, "sk-binary");
    assert_int_equal(value("{\"SecretBinary\":\"c2stYg==\"}", NULL), 4);
    assert_string_equal(out, "sk-b");
    assert_int_equal(value("{\"SecretBinary\":\"YQBi\"}", NULL), -1); /* "a\0b" */
    assert_non_null(strstr(why, "NUL"));
    assert_int_equal(value("{\"SecretBinary\":\"c2stYmluYXJ5!\"}", NULL), -1);
    assert_non_null(strstr(why, "base64"));
    assert_int_equal(value("{\"SecretBinary\":\"c2stYh==\"}", NULL), -1); /* non-zero padding bits */
    assert_int_equal(value("{\"SecretBinary\":\"c2stYmluYXJ5\"}", "api_key"), -1);
    assert_non_null(strstr(why, "binary"));
    assert_int_equal(value("{\"SecretBinary\":7}", NULL), -1);
}

static void sm_value_refusals(void **state)
{
    assert_int_equal(value("not json", NULL), -1);
    assert_non_null(strstr(why, "not a JSON object"));
    assert_int_equal(value("[\"SecretString\"]", NULL), -1);
    assert_int_equal(value("{\"Name\":\"n\"}", NULL), -1);
    assert_non_null(strstr(why, "neither SecretString nor SecretBinary"));
    assert_int_equal(value("{\"SecretString\":5}", NULL), -1);
    assert_non_null(strstr(why, "not a string"));
    assert_int_equal(value("{\"SecretString\":\"\"}", NULL), -1);
    assert_int_equal(value("{\"SecretString\":\"a\\u0000b\"}", NULL), -1);
    /* longer than out: refused, not cut */
    char big[600];
    int n = snprintf(big, sizeof(big), "{\"SecretString\":\"%0300d\"}", 0);
    assert_true(n > 0);
    assert_int_equal(value(big, NULL), -1);
    assert_non_null(strstr(why, "longer than 255"));
    char small[2];
    assert_int_equal(wd_aws_sm_parse_value(S("{\"SecretString\":\"ab\"}"), NULL, small, sizeof(small), why, sizeof(why)), -1);
}

static void json_errors(void **state)
{
    char type[64], msg[64];
    assert_int_equal(wd_aws_json_error(S("{\"__type\":\"com.amazonaws.secretsmanager#ResourceNotFoundException\","
                                         "\"message\":\"Secrets Manager can't find the specified secret.\"}"),
                                       type, sizeof(type), msg, sizeof(msg)),
                     0);
    assert_string_equal(type, "ResourceNotFoundException");
    assert_string_equal(msg, "Secrets Manager can't find the specified secret.");
    assert_int_equal(wd_aws_json_error(S("{\"__type\":\"UnrecognizedClientException:http://internal.amazon.com/\","
                                         "\"Message\":\"bad\\ttoken\"}"),
                                       type, sizeof(type), msg, sizeof(msg)),
                     0);
    assert_string_equal(type, "UnrecognizedClientException");
    assert_string_equal(msg, "bad\\ttoken"); /* raw bytes, printable only */
    assert_int_equal(wd_aws_json_error(S("<html>"), type, sizeof(type), msg, sizeof(msg)), -1);
    assert_string_equal(type, "");
    assert_int_equal(wd_aws_json_error(S("{\"message\":\"x\"}"), type, sizeof(type), msg, sizeof(msg)), -1);
    assert_int_equal(wd_aws_json_error(S("{\"__type\":\"#\"}"), type, sizeof(type), msg, sizeof(msg)), -1);
    assert_true(wd_aws_error_is_credential("UnrecognizedClientException"));
    assert_true(wd_aws_error_is_credential("ExpiredTokenException"));
    assert_true(wd_aws_error_is_credential("InvalidSignatureException"));
    assert_false(wd_aws_error_is_credential("ResourceNotFoundException"));
    assert_false(wd_aws_error_is_credential("ThrottlingException"));
}

#define STS_OK(creds)                                                                                            \
    "<?xml version=\"1.0\"?>\n<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n" \
    "  <AssumeRoleWithWebIdentityResult>\n    <SubjectFromWebIdentityToken>system:sa</SubjectFromWebIdentityToken>\n" \
    "    <!-- a comment -->\n    <Credentials>\n" creds "    </Credentials>\n"                                      \
    "    <Provider>https://oidc.example</Provider>\n  </AssumeRoleWithWebIdentityResult>\n"                         \
    "  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\n</AssumeRoleWithWebIdentityResponse>\n"
#define GOOD_CREDS                                                                                               \
    "      <SessionToken>FwoGZXIv+tok/en=</SessionToken>\n      <SecretAccessKey>s3cr&amp;t&#43;&#x2F;</SecretAccessKey>\n" \
    "      <Expiration>2015-08-30T12:36:00Z</Expiration>\n      <AccessKeyId>ASIAEXAMPLE0000001</AccessKeyId>\n"

static int sts(const char *xml, struct wd_aws_creds *c)
{
    why[0] = '\0';
    return wd_aws_sts_parse_credentials(xml, strlen(xml), c, why, sizeof(why));
}

static void sts_credentials(void **state)
{
    static struct wd_aws_creds c;
    assert_int_equal(sts(STS_OK(GOOD_CREDS), &c), 0);
    assert_string_equal(c.access_key, "ASIAEXAMPLE0000001");
    assert_string_equal(c.secret_key, "s3cr&t+/");
    assert_string_equal(c.token, "FwoGZXIv+tok/en=");
    assert_int_equal(c.expires_ms, INT64_C(1440938160000));
    assert_int_equal(sts(STS_OK("      <AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
                                "<Expiration>2015-08-30T12:36:00Z</Expiration>\n"),
                         &c),
                     -1);
    assert_non_null(strstr(why, "SessionToken is missing"));
    assert_string_equal(c.access_key, ""); /* wiped on failure */
    assert_int_equal(sts(STS_OK(GOOD_CREDS "<AccessKeyId>ASIA2</AccessKeyId>"), &c), -1);
    assert_non_null(strstr(why, "more than once"));
    assert_int_equal(sts("<!DOCTYPE x [<!ENTITY e \"v\">]>" STS_OK(GOOD_CREDS), &c), -1);
    assert_non_null(strstr(why, "not well-formed"));
    assert_int_equal(sts(STS_OK("<SessionToken>&e;</SessionToken><SecretAccessKey>s</SecretAccessKey>"
                                "<Expiration>2015-08-30T12:36:00Z</Expiration><AccessKeyId>A</AccessKeyId>"),
                         &c),
                     -1);
    assert_int_equal(sts(STS_OK("<SessionToken>t</SessionToken><SecretAccessKey>s</SecretAccessKey>"
                                "<Expiration>tomorrow</Expiration><AccessKeyId>A</AccessKeyId>"),
                         &c),
                     -1);
    assert_non_null(strstr(why, "Expiration"));
    assert_int_equal(sts(STS_OK("<SessionToken>t t</SessionToken><SecretAccessKey>s</SecretAccessKey>"
                                "<Expiration>2015-08-30T12:36:00Z</Expiration><AccessKeyId>A</AccessKeyId>"),
                         &c),
                     -1); /* a blank would break the header line */
    assert_int_equal(sts(STS_OK(GOOD_CREDS) "<Second/>", &c), -1);
    assert_int_equal(sts("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                         "<AccessKeyId>A</SecretAccessKey></Credentials></AssumeRoleWithWebIdentityResult>"
                         "</AssumeRoleWithWebIdentityResponse>",
                         &c),
                     -1);
}

static void xml_text(void **state)
{
    const char *p2[] = {"a", "b"};
    char buf[8];
    const char *x = "<a><b>xy</b>  trailing text after the element, longer than buf  <c/></a>";
    memset(buf, 'Z', sizeof(buf));
    /* text after the element neither counts toward its length nor lands past the buffer */
    assert_int_equal(wd_aws_xml_text(x, strlen(x), p2, 2, buf, 4), 2);
    assert_string_equal(buf, "xy");
    assert_int_equal(buf[4], 'Z');
    const char *y = "<a><b><![CDATA[<raw>]]>&lt;</b></a>";
    assert_int_equal(wd_aws_xml_text(y, strlen(y), p2, 2, buf, sizeof(buf)), 6);
    assert_string_equal(buf, "<raw><");
    assert_int_equal(wd_aws_xml_text(S("<a><b/></a>"), p2, 2, buf, sizeof(buf)), 0);
    assert_int_equal(wd_aws_xml_text(S("<a><c>1</c></a>"), p2, 2, buf, sizeof(buf)), -2);
    assert_int_equal(wd_aws_xml_text(S("<a><b>1</b><b>2</b></a>"), p2, 2, buf, sizeof(buf)), -3);
    assert_int_equal(wd_aws_xml_text(S("<a><b>123456789</b></a>"), p2, 2, buf, sizeof(buf)), -4);
    assert_int_equal(wd_aws_xml_text(S("<a><b><i>1</i></b></a>"), p2, 2, buf, sizeof(buf)), -5);
    assert_int_equal(wd_aws_xml_text(S("<a><b>1</c></a>"), p2, 2, buf, sizeof(buf)), -1);
    assert_int_equal(wd_aws_xml_text(S("<a><b>1</b>"), p2, 2, buf, sizeof(buf)), -1);
    assert_int_equal(wd_aws_xml_text(S("<a x=\"1>2\" y='3'><b>1</b></a>"), p2, 2, buf, sizeof(buf)), 1);
    assert_int_equal(wd_aws_xml_text(S("<a x=1><b>1</b></a>"), p2, 2, buf, sizeof(buf)), -1);
    assert_int_equal(wd_aws_xml_text(S("<a><b>&#0;</b></a>"), p2, 2, buf, sizeof(buf)), -1);
    assert_int_equal(wd_aws_xml_text(S("<a><b>&#xD800;</b></a>"), p2, 2, buf, sizeof(buf)), -1);
    assert_int_equal(wd_aws_xml_text(S("<a><b>&#x20AC;</b></a>"), p2, 2, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "\xe2\x82\xac");
    assert_int_equal(wd_aws_xml_text(S("junk<a><b>1</b></a>"), p2, 2, buf, sizeof(buf)), -1);
}

static void sts_errors(void **state)
{
    char code[64], msg[64];
    const char *x = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>Sender</Type>\n"
                    "    <Code>InvalidIdentityToken</Code>\n    <Message>Incorrect token audience</Message>\n  </Error>\n"
                    "  <RequestId>r</RequestId>\n</ErrorResponse>\n";
    assert_int_equal(wd_aws_sts_parse_error(x, strlen(x), code, sizeof(code), msg, sizeof(msg)), 0);
    assert_string_equal(code, "InvalidIdentityToken");
    assert_string_equal(msg, "Incorrect token audience");
    assert_int_equal(wd_aws_sts_parse_error(S("{\"__type\":\"x\"}"), code, sizeof(code), msg, sizeof(msg)), -1);
    assert_string_equal(code, "");
}

static int jc(const char *body, bool code, struct wd_aws_creds *c)
{
    why[0] = '\0';
    return wd_aws_parse_json_credentials(body, strlen(body), code, c, why, sizeof(why));
}

static void json_credentials(void **state)
{
    static struct wd_aws_creds c;
    const char *imds = "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2015-08-30T12:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n"
                       "  \"AccessKeyId\" : \"ASIAIMDS\",\n  \"SecretAccessKey\" : \"se\\/cret\",\n  \"Token\" : \"tok\",\n"
                       "  \"Expiration\" : \"2015-08-30T18:36:00Z\"\n}";
    assert_int_equal(jc(imds, true, &c), 0);
    assert_string_equal(c.access_key, "ASIAIMDS");
    assert_string_equal(c.secret_key, "se/cret");
    assert_string_equal(c.token, "tok");
    assert_int_equal(c.expires_ms, INT64_C(1440938160000) + 6 * 3600 * 1000);
    assert_int_equal(jc("{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"m\"}", true, &c), -1);
    assert_non_null(strstr(why, "AssumeRoleUnauthorizedAccess"));
    /* the container endpoint has no Code */
    const char *ecs = "{\"RoleArn\":\"arn:aws:iam::1:role/r\",\"AccessKeyId\":\"ASIAECS\",\"SecretAccessKey\":\"s\","
                      "\"Token\":\"t\",\"Expiration\":\"2015-08-30T13:36:00Z\"}";
    assert_int_equal(jc(ecs, false, &c), 0);
    assert_string_equal(c.access_key, "ASIAECS");
    assert_int_equal(jc(ecs, true, &c), -1);
    assert_non_null(strstr(why, "no Code"));
    assert_int_equal(jc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"2015-08-30T13:36:00Z\"}", false,
                        &c),
                     -1);
    assert_non_null(strstr(why, "no Token"));
    assert_int_equal(jc("{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"x\"}", false, &c), -1);
    assert_non_null(strstr(why, "AccessKeyId is not a string"));
    assert_string_equal(c.access_key, "");
    assert_int_equal(jc("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"soon\"}", false, &c),
                     -1);
    assert_non_null(strstr(why, "Expiration"));
    assert_int_equal(jc("[]", false, &c), -1);
}

static int sf(const char *text, const char *profile, struct wd_aws_creds *c)
{
    why[0] = '\0';
    return wd_aws_parse_shared_file(text, strlen(text), profile, c, why, sizeof(why));
}

static void shared_file(void **state)
{
    static struct wd_aws_creds c;
    const char *f = "# keys\n[default]\naws_access_key_id=AKIADEFAULT\naws_secret_access_key=dsecret\n\n"
                    "[ warden ]\r\n  aws_access_key_id = AKIAWARDEN \r\n; a comment\naws_secret_access_key = w/secret+\n"
                    "region = us-east-1\naws_session_token = tok=\n[other]\nno equals sign here\n";
    assert_int_equal(sf(f, "warden", &c), 0);
    assert_string_equal(c.access_key, "AKIAWARDEN");
    assert_string_equal(c.secret_key, "w/secret+");
    assert_string_equal(c.token, "tok=");
    assert_int_equal(c.expires_ms, 0);
    assert_int_equal(sf(f, "default", &c), 0);
    assert_string_equal(c.access_key, "AKIADEFAULT");
    assert_string_equal(c.token, "");
    assert_int_equal(sf(f, "missing", &c), -2);
    assert_int_equal(sf(f, "other", &c), -1);
    assert_non_null(strstr(why, "line 13"));
    assert_int_equal(sf("[p]\naws_access_key_id = A\n", "p", &c), -1);
    assert_non_null(strstr(why, "aws_secret_access_key"));
    assert_int_equal(sf("[p]\naws_access_key_id = A\naws_secret_access_key = s\naws_security_token = old\n", "p", &c), 0);
    assert_string_equal(c.token, "old");
    assert_int_equal(sf("[p\naws_access_key_id = A\n", "p", &c), -1);
    assert_int_equal(sf("[p]\naws_access_key_id = A B\naws_secret_access_key = s\n", "p", &c), -1);
}

static void times(void **state)
{
    int64_t ms;
    assert_int_equal(wd_aws_parse_time("2015-08-30T12:36:00Z", &ms), 0);
    assert_int_equal(ms, INT64_C(1440938160000));
    assert_int_equal(wd_aws_parse_time("2015-08-30T12:36:00.5Z", &ms), 0);
    assert_int_equal(ms, INT64_C(1440938160500));
    assert_int_equal(wd_aws_parse_time("2015-08-30T12:36:00.123456+00:00", &ms), 0);
    assert_int_equal(ms, INT64_C(1440938160123));
    assert_int_equal(wd_aws_parse_time("2000-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(ms, INT64_C(951782400000));
    assert_int_equal(wd_aws_parse_time("2015-08-30 12:36:00Z", &ms), -1);
    assert_int_equal(wd_aws_parse_time("2015-08-30T12:36:00", &ms), -1);
    assert_int_equal(wd_aws_parse_time("2015-08-30T12:36:00+02:00", &ms), -1);
    assert_int_equal(wd_aws_parse_time("2015-13-30T12:36:00Z", &ms), -1);
    assert_int_equal(wd_aws_parse_time("2015-08-30T12:36:00.Z", &ms), -1);
    /* an hour's credentials: replaced 5 minutes early; 10 s ones: 2 s early; static keys: never */
    assert_int_equal(wd_aws_refresh_at(0, 3600000), 3300000);
    assert_int_equal(wd_aws_refresh_at(1000, 11000), 9000);
    assert_int_equal(wd_aws_refresh_at(5000, 0), INT64_MAX);
    assert_int_equal(wd_aws_refresh_at(5000, 4000), 4000);
}

static void endpoints(void **state)
{
    char host[64], path[64];
    assert_int_equal(wd_aws_url_split("https://secretsmanager.us-east-1.amazonaws.com", host, sizeof(host), path,
                                      sizeof(path)),
                     0);
    assert_string_equal(host, "secretsmanager.us-east-1.amazonaws.com");
    assert_string_equal(path, "/");
    assert_int_equal(wd_aws_url_split("https://vpce.example:443/", host, sizeof(host), path, sizeof(path)), 0);
    assert_string_equal(host, "vpce.example");
    assert_int_equal(wd_aws_url_split("https://127.0.0.1:8443/sm", host, sizeof(host), path, sizeof(path)), 0);
    assert_string_equal(host, "127.0.0.1:8443");
    assert_string_equal(path, "/sm");
    assert_int_equal(wd_aws_url_split("http://h:80", host, sizeof(host), path, sizeof(path)), 0);
    assert_string_equal(host, "h");
    assert_int_equal(wd_aws_url_split("ftp://h/", host, sizeof(host), path, sizeof(path)), -1);
    assert_int_equal(wd_aws_url_split("https://user@h/", host, sizeof(host), path, sizeof(path)), -1);
    assert_int_equal(wd_aws_url_split("https:///x", host, sizeof(host), path, sizeof(path)), -1);
    assert_int_equal(wd_aws_url_split("https://h/?q=1", host, sizeof(host), path, sizeof(path)), -1);

    char url[128];
    assert_int_equal(wd_aws_container_url("/v2/credentials/abc", NULL, url, sizeof(url), why, sizeof(why)), 0);
    assert_string_equal(url, "http://169.254.170.2/v2/credentials/abc");
    assert_int_equal(wd_aws_container_url(NULL, "http://169.254.170.23/v1/credentials", url, sizeof(url), why,
                                          sizeof(why)),
                     0);
    assert_string_equal(url, "http://169.254.170.23/v1/credentials");
    assert_int_equal(wd_aws_container_url(NULL, "http://127.0.0.1:9911/creds", url, sizeof(url), why, sizeof(why)), 0);
    assert_int_equal(wd_aws_container_url(NULL, "http://[fd00:ec2::23]/creds", url, sizeof(url), why, sizeof(why)), 0);
    assert_int_equal(wd_aws_container_url(NULL, "http://evil.example/creds", url, sizeof(url), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "loopback"));
    assert_int_equal(wd_aws_container_url(NULL, "https://creds.example/x", url, sizeof(url), why, sizeof(why)), 0);
    assert_int_equal(wd_aws_container_url(NULL, NULL, url, sizeof(url), why, sizeof(why)), -2);
    assert_int_equal(wd_aws_container_url("no-slash", NULL, url, sizeof(url), why, sizeof(why)), -1);
}

static const char *fake_env(const char *name)
{
    if (strcmp(name, "AWS_DEFAULT_REGION") == 0)
        return "eu-west-3";
    return NULL;
}
static const char *bad_env(const char *name) { return strcmp(name, "AWS_REGION") == 0 ? "EU WEST" : NULL; }

static void regions(void **state)
{
    assert_string_equal(wd_aws_pick_region("ap-south-1", "us-east-1", fake_env), "ap-south-1");
    assert_string_equal(wd_aws_pick_region("", "us-east-1", fake_env), "us-east-1");
    assert_string_equal(wd_aws_pick_region("", NULL, fake_env), "eu-west-3");
    assert_null(wd_aws_pick_region("", NULL, NULL));
    assert_null(wd_aws_pick_region("", "", bad_env));
    assert_null(wd_aws_pick_region("us-east-1/../x", NULL, NULL));
}

/* The signature fake_aws.mjs's sigv4Signature (its own SigV4, not Warden's) gives this request. */
#define WANT_SIG "b7241a9f1c3bc3100491fc426018e5612a481f030a26206d188995302032b083"

static void build_request(void **state)
{
    static struct wd_aws_creds c = {.access_key = "AKIDEXAMPLE",
                                    .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                    .token = "tok/en+1"};
    struct wd_buf body = {0};
    char h[4096];
    size_t n = 0;
    assert_int_equal(wd_aws_sm_build_request(&c, "us-east-1", "https://secretsmanager.us-east-1.amazonaws.com",
                                             "prod/\"x\"", 1440938160, &body, h, sizeof(h), &n, why, sizeof(why)),
                     0);
    assert_int_equal(body.n, strlen("{\"SecretId\":\"prod/\\\"x\\\"\"}"));
    assert_memory_equal(body.p, "{\"SecretId\":\"prod/\\\"x\\\"\"}", body.n);
    const char *want[] = {
        "Host: secretsmanager.us-east-1.amazonaws.com",
        "Content-Type: application/x-amz-json-1.1",
        "X-Amz-Target: secretsmanager.GetSecretValue",
        "x-amz-date: 20150830T123600Z",
        "x-amz-security-token: tok/en+1",
        "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=" WANT_SIG,
    };
    assert_int_equal(n, 6);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(h + off, want[i]);
        off += strlen(h + off) + 1;
    }
    wd_buf_free(&body);

    /* static keys: no token header, and the token is not signed */
    c.token[0] = '\0';
    assert_int_equal(wd_aws_sm_build_request(&c, "eu-west-1", "https://127.0.0.1:8443", "n", 1440938160, &body, h,
                                             sizeof(h), &n, why, sizeof(why)),
                     0);
    assert_int_equal(n, 5);
    assert_string_equal(h, "Host: 127.0.0.1:8443");
    off = 0;
    for (size_t i = 0; i < 5; i++) {
        assert_null(strstr(h + off, "security-token"));
        off += strlen(h + off) + 1;
    }
    wd_buf_free(&body);

    assert_int_equal(wd_aws_sm_build_request(&c, "us-east-1", "gopher://x", "n", 1440938160, &body, h, sizeof(h), &n,
                                             why, sizeof(why)),
                     -1);
    assert_non_null(strstr(why, "endpoint"));
    wd_buf_free(&body);
    char tiny[64];
    assert_int_equal(wd_aws_sm_build_request(&c, "us-east-1", "https://h", "n", 1440938160, &body, tiny, sizeof(tiny),
                                             &n, why, sizeof(why)),
                     -1);
    assert_int_equal(n, 0);
    wd_buf_free(&body);
}

/* The refusals that come before any I/O: a malformed reference, no region. */
static void resolve_refusals(void **state)
{
    static struct wd_secrets_config cfg;
    char v[64];
    int64_t ttl = 0;
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    assert_int_equal(wd_aws_sm_resolve(&cfg, "aws-sm://bad name", v, sizeof(v), &ttl, why, sizeof(why)), -1);
    assert_true(strncmp(why, "aws-sm: ", 8) == 0);
    assert_int_equal(ttl, 300000); /* the default TTL when none is configured */
    cfg.aws.ttl_ms = 2000;
    assert_int_equal(wd_aws_sm_resolve(&cfg, "aws-sm://prod/gemini", v, sizeof(v), &ttl, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "no region"));
    assert_int_equal(ttl, 2000);
    wd_aws_sm_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sm_value_string), cmocka_unit_test(sm_value_field),   cmocka_unit_test(sm_value_binary),
        cmocka_unit_test(sm_value_refusals), cmocka_unit_test(json_errors),    cmocka_unit_test(sts_credentials),
        cmocka_unit_test(xml_text),        cmocka_unit_test(sts_errors),       cmocka_unit_test(json_credentials),
        cmocka_unit_test(shared_file),     cmocka_unit_test(times),            cmocka_unit_test(endpoints),
        cmocka_unit_test(regions),         cmocka_unit_test(build_request),    cmocka_unit_test(resolve_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
