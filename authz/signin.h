/* The pure core of Claude Code's gateway sign-in (docs/claude-gateway-protocol.md sections 3.2-3.7): session
 * tokens Warden mints and verifies itself, the canonical JSON and checksum of managed settings, and the in-memory
 * store of RFC 8628 device grants. No I/O: the HTTP routes and the IdP exchanges live elsewhere. */
#ifndef WARDEN_AUTHZ_SIGNIN_H
#define WARDEN_AUTHZ_SIGNIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* Session tokens: HS256 JWTs Warden mints for a signed-in developer. header {"alg":"HS256","typ":"JWT","kid":K}
 * with K = hex of the first 8 bytes of SHA-256(secret); claims {"sub","email"?,"name"?,"groups"?:[...],
 * "aud":"claude-gateway","iss":ISS,"iat","exp"} (members only when known). Several secrets verify (rotation); the
 * first signs. */
#define WD_SIGNIN_AUD "claude-gateway"
#define WD_SIGNIN_MAX_TOKEN 8192
#define WD_SIGNIN_MIN_SECRET 32

struct wd_signin_claims {
    char sub[128];          /* the IdP's subject; required */
    char email[128];        /* "" when unknown */
    char name[128];         /* display name; "" when unknown */
    char groups[16][128];   /* the first ngroups are set; more in a token are ignored */
    int ngroups;            /* 0..16 */
    int64_t iat;            /* issued at (Unix seconds) */
    int64_t exp;            /* expiry (Unix seconds) */
};

struct wd_signin_keys;                       /* opaque: the secrets, copied and wiped on free */
/* 1 to 64 secrets, each >= 32 bytes, else NULL. */
struct wd_signin_keys *wd_signin_keys_new(const char *const *secrets, const size_t *lens, size_t n);
void wd_signin_keys_free(struct wd_signin_keys *k);
/* Mints into out (NUL-terminated); length or -1 (too small). */
int wd_signin_mint(const struct wd_signin_keys *k, const char *iss, const struct wd_signin_claims *c, char *out,
                   size_t cap);
/* Verifies: three base64url parts (strict: lib/hash.h wd_b64url_decode), header alg exactly HS256 and a kid of one
 * of the keys (no other alg, no crit/jku/x5u/jwk), HMAC compared in constant time, claims without repeated members,
 * aud "claude-gateway", iss equal, exp > now - skew, iat <= now + skew, sub non-empty; strings cut to the fields'
 * sizes (UTF-8 safe: lib/buf.h wd_str_copy). 0 with *out, or -1 with *why (a short reason, never token bytes).
 * Tokens over 8 KiB refused unparsed. */
int wd_signin_verify(const struct wd_signin_keys *k, const char *iss, const char *tok, size_t n, int64_t now,
                     int64_t skew, struct wd_signin_claims *out, const char **why);
/* Whether a bearer value could be a session token of these keys (a JWT whose header kid is one of them): cheap,
 * lets the caller route a bearer to wd_signin_verify instead of OIDC. */
bool wd_signin_is_session(const struct wd_signin_keys *k, const char *tok, size_t n);

/* Managed settings: canonical JSON (object keys sorted by bytes at every level, no white space, strings escaped as
 * JSON.stringify does: \" \\ \b \f \n \r \t, other control chars \u00xx lowercase hex, everything else as is;
 * numbers as JSON.stringify prints them: integers as digits, others the shortest text that round-trips, 1e21 and
 * beyond as 1e+21) and its checksum "sha256:" + 64 lowercase hex of SHA-256 of that text. In: any JSON text
 * (strict: valid UTF-8, no lone surrogates); an object repeating a member name is refused, since which value
 * counts would differ between readers. Appends to out; 0 or -1 (out as it was).
 * Sorting by bytes equals JavaScript's default sort (UTF-16 code units) except for keys with characters from
 * U+E000 up mixed with astral ones, and a JavaScript object always lists integer-like keys ("2", "10") first in
 * numeric order: settings with such keys would get a checksum a JavaScript client computes differently. */
int wd_signin_canonical(const char *json, size_t n, struct wd_buf *out);
void wd_signin_checksum(const char *canon, size_t n, char out[72]);

/* Device grants (RFC 8628), in memory, process-wide, thread-safe (a mutex; never held during I/O), bounded
 * (WD_SIGNIN_MAX_GRANTS live grants: past it, new() fails), each living 600 s. */
#define WD_SIGNIN_MAX_GRANTS 4096
#define WD_SIGNIN_GRANT_TTL 600
#define WD_SIGNIN_POLL_INTERVAL 5
enum wd_signin_state { WD_SG_PENDING = 1, WD_SG_VERIFYING, WD_SG_APPROVED, WD_SG_DENIED };
struct wd_signin_grant_view {              /* a copy of what a caller may read */
    enum wd_signin_state state;            /* the grant's state when copied */
    char user_code[10];                    /* "BCDF-GHJK": 8 letters of BCDFGHJKLMNPQRSTVWXZ (RFC 8628 6.1) */
    char state_param[44];                  /* the OAuth `state` sent to the IdP (43 base64url chars) */
    char nonce[44];                        /* the OIDC nonce sent to the IdP (43 base64url chars) */
    char pkce_verifier[44];                /* 32 random bytes base64url; challenge = b64url(SHA-256(verifier)) */
    char access_token[2048];               /* set when approved */
    char refresh_token[2048];              /* the IdP's, when approved; "" none */
    int64_t expires_in;                    /* the access token's lifetime (s) when approved */
    char email[128];                       /* the approving account, when approved; "" unknown */
};
/* A new pending grant: device_code (43 base64url chars of 32 random bytes) and user_code written out. 0 or -1. */
int wd_signin_grant_new(int64_t now, char device_code[44], char user_code[10]);
/* The browser submitted a user code (case-insensitive; non-letters ignored): the grant moves to VERIFYING and gets a
 * fresh state, nonce and PKCE verifier (copied to *v). 0; -1 unknown or expired or not pending. */
int wd_signin_grant_verify(const char *user_code, size_t n, int64_t now, struct wd_signin_grant_view *v);
/* The IdP's callback: the grant whose state matches (constant-time), in VERIFYING: *v filled (nonce, verifier). 0/-1.*/
int wd_signin_grant_by_state(const char *state, size_t n, int64_t now, struct wd_signin_grant_view *v);
/* Marks the grant of that state (in VERIFYING) approved with the tokens (refresh and email may be NULL; a token
 * longer than the view's fields is refused, never cut), or denied. 0/-1. */
int wd_signin_grant_approve(const char *state, size_t n, const char *access, const char *refresh, int64_t expires_in,
                            const char *email);
int wd_signin_grant_deny_state(const char *state, size_t n);
/* Denies the grant of that user code while it is PENDING or VERIFYING. 0/-1. */
int wd_signin_grant_deny_user_code(const char *user_code, size_t n, int64_t now);
/* A poll with a device code: 0 approved (*v has the tokens; the grant is gone: single use), or the OAuth error
 * string: "authorization_pending", "slow_down" (polled again within interval - 1 s: 4 s), "access_denied" (the
 * grant is then gone), "expired_token" (unknown, expired, redeemed). Returns 0 or 1 (error, *err set). */
int wd_signin_grant_poll(const char *device_code, size_t n, int64_t now, struct wd_signin_grant_view *v,
                         const char **err);
/* Drops expired grants (call now and then); wipes their secrets. */
void wd_signin_grant_sweep(int64_t now);
void wd_signin_grants_free(void);   /* at exit */

/* ---- for a store shared by replicas (PostgreSQL, through the governor) ---- */

/* Fresh codes: a device code (43 base64url characters of 32 random bytes) and a user code "XXXX-XXXX". 0 or -1. */
int wd_signin_new_codes(char device_code[44], char user_code[10]);
/* Fresh random values for the IdP round trip: state, nonce and PKCE verifier (43 base64url characters each). */
int wd_signin_new_secrets(char state[44], char nonce[44], char verifier[44]);
/* A submitted user code's 8 letters, upper-cased (the form in the store); false unless there are exactly 8. */
bool wd_signin_user_code_norm(const char *s, size_t n, char out[9]);
/* Seals a secret (the IdP's refresh token) for the store with a key derived from the first session secret
 * (AES-256-GCM, a random nonce): base64url text into out. Opens it again with any of the keys. Length or -1. */
int wd_signin_seal(const struct wd_signin_keys *k, const char *in, size_t n, char *out, size_t cap);
int wd_signin_open(const struct wd_signin_keys *k, const char *in, size_t n, char *out, size_t cap);

/* ---- the IdP's token endpoint (server/signin.c reads it over the connection it opened: OpenID Connect Core 3.1.3.7
 * lets that TLS connection stand for the ID token's signature; everything else is checked) ---- */
struct wd_signin_idp {
    const char *issuer;               /* the ID token's iss must be exactly this */
    const char *client_id;            /* ... and its aud (a string or an array) must name this */
    const char *claim_sub, *claim_email, *claim_name, *claim_groups; /* the claim names (auth.oidc[].claims) */
    int64_t ttl_s;                    /* the session's lifetime */
};
/* Reads a token endpoint answer (JSON, at most 256 KiB): the ID token's claims (or, with use_access_token and no ID
 * token, a JWT access token's: a refresh answer may carry no new ID token), checked: iss, aud, nonce (when given),
 * exp (60 s of skew), the subject present; out gets the session claims (iat now, exp now + ttl); refresh (cap rcap)
 * the IdP's refresh token, "" when none. 0 (*why NULL), or -1 with why (a short reason, no token bytes). */
int wd_signin_read_token_answer(const char *json, size_t n, const struct wd_signin_idp *idp, const char *nonce,
                                bool use_access_token, int64_t now, struct wd_signin_claims *out, char *refresh,
                                size_t rcap, const char **why);

/* Whether a token endpoint's error answer (JSON) carries {"error": code}. */
bool wd_signin_answer_error_is(const char *json, size_t n, const char *code);

#endif
