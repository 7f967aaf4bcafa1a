/* The GCP Secret Manager backend's pure parts: reading Google's answers (a secret version's payload with its
 * CRC32C, an access token, an API or OAuth error), the service-account key file, the signed JWT assertion and
 * the request URLs. No I/O here: secrets/gcp.c does the fetching, the unit tests and the fuzzer drive these. */
#ifndef WARDEN_SECRETS_GCP_H
#define WARDEN_SECRETS_GCP_H

#include <stddef.h>
#include <stdint.h>

/* The scope every token Warden asks for carries. */
#define WD_GCP_SCOPE "https://www.googleapis.com/auth/cloud-platform"
/* The audience of the assertion when the key file names no token_uri (Google's token endpoint). */
#define WD_GCP_TOKEN_URI "https://oauth2.googleapis.com/token"
/* An access token longer than this is refused (Google documents up to 2 KiB). */
#define WD_GCP_TOKEN_MAX 4096

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of payload.dataCrc32c. */
uint32_t wd_gcp_crc32c(const void *p, size_t n);

/* A `versions/V:access` answer of HTTP status: on 200, payload.data base64-decoded into out (NUL-terminated,
 * at most cap bytes with the NUL), its CRC32C checked against payload.dataCrc32c when present, trailing CR/LF
 * dropped (`echo key | gcloud secrets create` leaves one). Returns the value's length (> 0), or -1 with why
 * (Google's error code, status and message, or what is wrong with the answer; never a byte of the value). */
int wd_gcp_parse_access(long status, const char *body, size_t n, char *out, size_t cap, char *why, size_t whycap);

/* A token answer (the OAuth token endpoint's or the metadata server's) of HTTP status: the access token
 * copied into tok (NUL-terminated, cap bytes with the NUL) and its lifetime in seconds into *expires_in.
 * Returns the token's length, or -1 with why (the OAuth error and its description, HTTP status, a missing or
 * mistyped field; never the token). what names the step for why ("token endpoint", "metadata server"). */
int wd_gcp_parse_token(const char *what, long status, const char *body, size_t n, char *tok, size_t cap,
                       int64_t *expires_in, char *why, size_t whycap);

/* What Warden uses of a service-account key file: three strings copied out of it, and the private key decoded
 * (its "\n" escapes) into the caller's buffer, which should be locked memory. */
struct wd_gcp_key {
    char client_email[256];   /* the assertion's iss */
    char private_key_id[128]; /* the assertion's kid */
    char token_uri[512];      /* the assertion's aud, and where it is posted unless the config says otherwise */
    char *pem;                /* the PEM private key, NUL-terminated, in the caller's pem buffer */
    size_t pem_len;           /* its length */
};
/* Parses the key file's JSON (type service_account; client_email, private_key, private_key_id; token_uri
 * optional, default WD_GCP_TOKEN_URI); pem (pemcap bytes, at least n) receives the private key. 0, or -1 with
 * why (which field is missing or wrong; never the key). */
int wd_gcp_parse_key(const char *json, size_t n, struct wd_gcp_key *key, char *pem, size_t pemcap, char *why,
                     size_t whycap);

/* The assertion's unsigned part, base64url(header) "." base64url(claims): RS256 with kid, iss = client_email,
 * scope = WD_GCP_SCOPE, aud = token_uri, iat = now, exp = now + 1 h. Returns its length, or -1 when cap is too
 * small. */
int wd_gcp_jwt_unsigned(const struct wd_gcp_key *key, int64_t now, char *out, size_t cap);
/* The whole assertion: the unsigned part signed with the key's RSA private key (RS256, OpenSSL EVP). Returns
 * its length, or -1 with why (the PEM is not an RSA private key, the key is shorter than 2048 bits, cap). */
int wd_gcp_jwt_sign(const struct wd_gcp_key *key, int64_t now, char *out, size_t cap, char *why, size_t whycap);

/* {endpoint}/v1/projects/P/secrets/S/versions/V:access for a gcp-sm:// reference (one trailing '/' of
 * endpoint dropped). Returns the length, or -1 with why (a malformed reference, cap). */
int wd_gcp_access_url(const char *endpoint, const char *ref, char *out, size_t cap, char *why, size_t whycap);
/* http://{host}/computeMetadata/v1/instance/service-accounts/default/token. host is "name[:port]" or
 * "[v6]:port"; anything else (a path, a scheme, a space) is refused. Length, or -1 with why. */
int wd_gcp_metadata_url(const char *host, char *out, size_t cap, char *why, size_t whycap);
/* Whether the answer's header lines ("name: value\r\n" each) carry Metadata-Flavor: Google, as only the
 * metadata server's do. */
int wd_gcp_metadata_flavor_ok(const char *headers, size_t n);

/* When a token obtained at obtained_ms (any clock, milliseconds) that lives expires_in seconds is renewed:
 * 5 minutes before it runs out, or at four fifths of a lifetime shorter than 25 minutes. */
int64_t wd_gcp_token_renew_at(int64_t obtained_ms, int64_t expires_in);

#endif
