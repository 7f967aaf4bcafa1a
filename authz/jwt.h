/* Compact JWS / JWT (RFC 7515, 7519, 9068) decoding, signature verification against a JWKS key, and claim
 * checks, for the bearer tokens of configured OIDC issuers. Self-contained: OpenSSL EVP for the signatures,
 * Warden's JSON tokenizer for header and claims; nothing in a token is ever fetched or followed. */
#ifndef WARDEN_AUTHZ_JWT_H
#define WARDEN_AUTHZ_JWT_H

#include <stdbool.h>
#include <stdint.h>

#include "authz/jwks.h"
#include "lib/buf.h"
#include "lib/json.h"

#define WD_JWT_MAX 16384            /* a longer token is refused before any decoding */

struct wd_jwt {
    enum wd_jwt_alg alg;            /* the header's alg (never WD_JWT_NONE_ALG once decoded) */
    char kid[128];                  /* "" when absent */
    bool at_jwt;                    /* typ was at+jwt (RFC 9068) */
    char *payload;                  /* the decoded claims JSON (owned) */
    size_t payload_len;             /* its length */
    struct wd_json claims;          /* its tokens (wd_json_parse of payload) */
    /* internal: the signing input (header.payload as received) and the decoded signature */
    const char *signing_input;      /* points into the token */
    size_t signing_input_len;       /* up to the second '.' */
    unsigned char *sig;             /* the decoded signature (owned) */
    size_t sig_len;                 /* its length */
};

/* Decodes a compact JWS (three base64url parts). No padding is accepted: '=' is not in the alphabet, and a
 * part must be the one canonical spelling of its bytes (unused trailing bits zero), so a token has one form.
 * The header must be a JSON object without repeated keys with "alg" one of RS256, PS256, ES256, EdDSA ("none",
 * HS*, anything else: refused); "typ" absent, "JWT" or "at+jwt" (case-insensitive, an "application/" prefix
 * allowed); "crit" present: refused; "jku", "x5u", "jwk", "x5c": refused (never followed); "kid" a string of at
 * most 127 bytes without NUL. The payload must be a JSON object without repeated keys at any depth. 0, or -1
 * with *why (static or thread-local: valid until the thread's next call; never a token byte beyond a claim
 * name). *out needs wd_jwt_free either way. tok must stay valid while *out is used (signing_input points into
 * it). */
int wd_jwt_decode(const char *tok, size_t len, struct wd_jwt *out, const char **why);
/* The signature over the signing input with key (which must allow t->alg): RS256 = RSASSA-PKCS1-v1_5 SHA-256,
 * PS256 = RSASSA-PSS SHA-256 MGF1-SHA-256 salt 32, ES256 = ECDSA P-256 SHA-256 with the 64-byte r||s
 * signature (converted to DER for EVP; any other length refused), EdDSA = Ed25519. 0, or -1 with *why. */
int wd_jwt_verify(const struct wd_jwt *t, const struct wd_jwk *key, const char **why);

struct wd_jwt_expect {
    const char *issuer;             /* exact match of "iss" (NULL: every token refused) */
    const char *const *audiences;   /* "aud" (a string or an array) must contain one of these; NULL-terminated
                                       (NULL or empty: every token refused) */
    int64_t now;                    /* seconds since the epoch */
    int64_t skew;                   /* allowed clock skew, seconds (>= 0) */
    int64_t max_lifetime;           /* exp - iat above this is refused, exp - now without iat (0: no limit) */
};
/* exp required (now < exp + skew), nbf if present (now >= nbf - skew), iat if present (not after now + skew),
 * iss and aud as above. The times are NumericDates: integers, or numbers with a fraction or an exponent taken
 * at the stricter whole second (exp rounded down, nbf and iat up); negative or past year 9999: refused. Every
 * aud array element must be a string. */
int wd_jwt_check_claims(const struct wd_jwt *t, const struct wd_jwt_expect *e, const char **why);
/* A string claim (decoded, copied into the arena, NUL-terminated) by name; -1 when absent or not a string. */
int wd_jwt_claim_str(const struct wd_jwt *t, const char *name, struct wd_arena *a, struct wd_str *out);
/* Array claims (groups, roles, aud): fills up to cap decoded strings (copied into the arena), returns how many it
 * filled (a string claim counts as one; elements past cap are left out); 0 when absent; -1 when the claim is
 * neither a string nor an array of strings, or on OOM. */
int wd_jwt_claim_strings(const struct wd_jwt *t, const char *name, struct wd_arena *a, struct wd_str *out, int cap);
int64_t wd_jwt_exp(const struct wd_jwt *t);   /* the exp claim (0 when absent or not a valid NumericDate) */
void wd_jwt_free(struct wd_jwt *t);

#endif
