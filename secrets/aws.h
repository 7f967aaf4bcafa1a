/* The aws-sm:// backend's pure parts, without I/O: parsers of every answer it reads (GetSecretValue, JSON 1.1
 * errors, STS XML, IMDS and container JSON, the shared credentials file) and the signed GetSecretValue request.
 * The unit tests and the fuzz target drive them directly. */
#ifndef WARDEN_SECRETS_AWS_H
#define WARDEN_SECRETS_AWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* A set of AWS credentials. Lives in wd_secret_mem_alloc memory in the backend (never a heap copy). */
struct wd_aws_creds {
    char access_key[129];  /* AKIA... (static) or ASIA... (temporary) */
    char secret_key[129];  /* the secret access key */
    char token[4097];      /* the session token of temporary credentials, "" for static keys */
    int64_t expires_ms;    /* unix ms when temporary credentials stop working; 0: never (static keys) */
};

/* Upper bounds on the answers read (a longer one is an error, not a truncation). */
#define WD_AWS_SM_MAX_ANSWER (256u * 1024u) /* a SecretString is at most 64 KiB, JSON-escaped up to 6x */
#define WD_AWS_CRED_MAX_ANSWER (64u * 1024u)
#define WD_AWS_SHARED_FILE_MAX (256u * 1024u)

/* A GetSecretValue answer (the JSON object of a 200). With field (not NULL, not ""), SecretString is read as a
 * JSON object and that member, which must be a string, is the value; without, SecretString whole, or
 * SecretBinary decoded from base64 (refused when it holds a NUL byte: the value is used as a C string). The
 * value goes NUL-terminated into out[cap]. Returns its length (> 0), or -1 with why (never a value byte). */
int wd_aws_sm_parse_value(const char *body, size_t n, const char *field, char *out, size_t cap, char *why,
                          size_t whycap);

/* A JSON 1.1 error body {"__type": "...#Name", "message"|"Message": "..."}: the type without its namespace
 * prefix, and the message, both printable ASCII, cut to their caps. 0, or -1 when the body is not that shape
 * (type and msg then "" ). */
int wd_aws_json_error(const char *body, size_t n, char *type, size_t tcap, char *msg, size_t mcap);

/* Whether an error type from an AWS API means the credentials (not the request) are bad or expired: a fresh
 * set may succeed where these failed (UnrecognizedClientException, ExpiredTokenException, InvalidSignature...). */
bool wd_aws_error_is_credential(const char *type);

/* STS AssumeRoleWithWebIdentity's XML answer: exactly one
 * AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials with AccessKeyId,
 * SecretAccessKey, SessionToken and Expiration (ISO 8601). Well-formedness is checked (no DOCTYPE, entities
 * only the five predefined and numeric ones). 0, or -1 with why. */
int wd_aws_sts_parse_credentials(const char *body, size_t n, struct wd_aws_creds *out, char *why, size_t whycap);
/* STS's XML error ErrorResponse/Error/Code and Message: 0, or -1 when the body is not that shape. */
int wd_aws_sts_parse_error(const char *body, size_t n, char *code, size_t ccap, char *msg, size_t mcap);

/* The text of the one element at path (element names, outermost first) in an XML document, entities decoded,
 * into out[cap]. Returns its length; -1 malformed document, -2 no such element, -3 more than one, -4 the text
 * does not fit, -5 the element has child elements. */
int wd_aws_xml_text(const char *x, size_t n, const char *const *path, size_t depth, char *out, size_t cap);

/* The JSON credentials of IMDS (require_code: "Code" must be "Success") and of the container endpoint (ECS,
 * EKS Pod Identity: no Code): AccessKeyId, SecretAccessKey, Token, Expiration. 0, or -1 with why. */
int wd_aws_parse_json_credentials(const char *body, size_t n, bool require_code, struct wd_aws_creds *out,
                                  char *why, size_t whycap);

/* The shared credentials file (INI): the section [profile] with aws_access_key_id and aws_secret_access_key,
 * and aws_session_token (or the older aws_security_token) when present. Comments start with '#' or ';'.
 * 0, -1 with why, or -2 when the file has no such profile (the default chain moves on). */
int wd_aws_parse_shared_file(const char *text, size_t n, const char *profile, struct wd_aws_creds *out, char *why,
                             size_t whycap);

/* An ISO 8601 UTC time as AWS writes it, 2026-12-07T18:04:05Z, with optional fractional seconds and "Z" or
 * "+00:00": unix ms. 0, or -1. */
int wd_aws_parse_time(const char *s, int64_t *ms);

/* When temporary credentials obtained at got_ms and expiring at expires_ms are replaced: 5 minutes before
 * the expiry, or a fifth of their life before it when that is less. expires_ms 0 (static keys): never
 * (INT64_MAX). */
int64_t wd_aws_refresh_at(int64_t got_ms, int64_t expires_ms);

/* Splits an endpoint URL (http:// or https://, no user info, no query) into its host[:port] as the Host header
 * carries it (the scheme's default port left out) and its path ("/" when none). 0, or -1. */
int wd_aws_url_split(const char *url, char *host, size_t hcap, char *path, size_t pcap);

/* A signed GetSecretValue request for secret_id at endpoint (a URL) in region, dated now (unix s): its body
 * into body (appended) and its header lines into hdrs[cap] as "Name: value" strings separated by NULs, with
 * *nhdrs of them (Host, Content-Type, X-Amz-Target, X-Amz-Date, X-Amz-Security-Token when c has a token,
 * Authorization), every one of them signed. 0, or -1 with why. The lines hold the session token: the caller
 * wipes hdrs. */
int wd_aws_sm_build_request(const struct wd_aws_creds *c, const char *region, const char *endpoint,
                            const char *secret_id, int64_t now, struct wd_buf *body, char *hdrs, size_t cap,
                            size_t *nhdrs, char *why, size_t whycap);

/* The region a reference is read in: the ARN's (ref_region, when not ""), else cfg_region, else AWS_REGION,
 * else AWS_DEFAULT_REGION (env given as a getenv-like function, for tests). NULL when none. The region must
 * be [a-z0-9-]{1,31}. */
const char *wd_aws_pick_region(const char *ref_region, const char *cfg_region, const char *(*env)(const char *));

/* The container credentials endpoint's URL: http://169.254.170.2 + relative when that is set (ECS), else full
 * (EKS Pod Identity, a sidecar), which over plain http must name a loopback address or the agents'
 * (169.254.170.2, 169.254.170.23, fd00:ec2::23), since the request carries the authorization token. 0, -1
 * with why, or -2 when neither is set. */
int wd_aws_container_url(const char *relative, const char *full, char *out, size_t cap, char *why, size_t whycap);

#endif
