/* AWS Signature Version 4 (HMAC-SHA256) request signing over OpenSSL, for the AWS secrets backend (Secrets
 * Manager, STS) and later Bedrock. Pure computation: the caller sends the request, this only builds the headers
 * that authenticate it. */
#ifndef WARDEN_LIB_SIGV4_H
#define WARDEN_LIB_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* One header the signature covers. */
struct wd_sigv4_header {
    const char *name;  /* any case; HTTP token characters only */
    const char *value; /* as sent; leading/trailing blanks and runs of blanks do not change the signature */
};

/* A request to sign. Every string is NUL-terminated; none may hold CR, LF or NUL inside. */
struct wd_sigv4_req {
    const char *method;  /* "GET", "POST", ...: used as given (AWS compares it case-sensitively) */
    const char *host;    /* the Host header value, e.g. "secretsmanager.us-east-1.amazonaws.com" (with :port if not
                            the scheme's default) */
    const char *path;    /* the URI path, not yet URI-encoded, starting with '/' ("/" for none); put
                            wd_sigv4_uri_encode_path's output on the wire */
    const char *query;   /* the query as sent (percent-encoded, without '?'), or NULL; '+' is a literal plus */
    const struct wd_sigv4_header *headers; /* other headers to sign; not host, x-amz-date, x-amz-content-sha256,
                                              x-amz-security-token or authorization (the signer adds those), and
                                              only ones that reach AWS unchanged: AWS's SDKs leave out user-agent,
                                              connection, expect, transfer-encoding and the other hop-by-hop ones,
                                              which a proxy may rewrite */
    size_t nheaders;     /* entries in headers */
    const void *body;    /* the payload (ignored with unsigned_payload) */
    size_t body_len;     /* bytes in body */
    const char *region;  /* e.g. "us-east-1" */
    const char *service; /* signing name, e.g. "secretsmanager", "sts", "s3", "bedrock" */
    const char *access_key;    /* AKIA... / ASIA... */
    const char *secret_key;    /* the secret access key */
    const char *session_token; /* temporary credentials' token, or NULL: none */
    int64_t now;               /* unix seconds: the request's x-amz-date */
    bool unsigned_payload;     /* sign "UNSIGNED-PAYLOAD" instead of the body's SHA-256 (S3 streaming) */
};

/* The headers to add to the request, as "name: value\r\n" lines into out[cap] (NUL-terminated):
 * x-amz-date; x-amz-content-sha256 when the service is s3 or the payload is unsigned (S3 requires it, other
 * services neither require nor forbid it, and an unsigned payload must be announced); x-amz-security-token with
 * a session token (signed, as STS documents); authorization. 0, or -1 when out is too small or an input is
 * invalid (a missing field, a path not starting with '/', CR/LF in a value, a bad header name, a reserved header
 * in headers, a malformed %XX in the query). Canonicalisation as AWS documents: each path segment URI-encoded
 * (twice, after removing empty, "." and ".." segments, for every service but s3), query parameters decoded then
 * re-encoded and sorted by name then value, header names lower-cased and sorted, values trimmed with runs of
 * blanks collapsed, duplicate names joined with ','. */
int wd_sigv4_sign(const struct wd_sigv4_req *r, char *out, size_t cap);

/* The parts, for tests and for a fake that verifies signatures: the canonical request and the string to sign
 * (appended to out; 0 or -1), and the signature as 64 lowercase hex digits and a NUL (0 or -1). */
int wd_sigv4_canonical_request(const struct wd_sigv4_req *r, struct wd_buf *out);
int wd_sigv4_string_to_sign(const struct wd_sigv4_req *r, struct wd_buf *out);
int wd_sigv4_signature(const struct wd_sigv4_req *r, char hex[65]);

/* AWS's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ as %XX (uppercase), '/' kept when keep_slash. For
 * building the path and query actually sent, so that they match what was signed. */
void wd_sigv4_uri_encode(struct wd_buf *out, const char *p, size_t n, bool keep_slash);

#endif
