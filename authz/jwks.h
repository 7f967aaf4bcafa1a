/* JSON Web Key Sets (RFC 7517) for verifying the OIDC tokens Warden accepts: the public signing keys of an
 * issuer, each turned into an OpenSSL key with the algorithms it may verify pinned by the key itself (never by
 * the token), so that a token cannot pick how its signature is checked. */
#ifndef WARDEN_AUTHZ_JWKS_H
#define WARDEN_AUTHZ_JWKS_H

#include <stddef.h>

#include <openssl/evp.h>

#include "lib/buf.h"

enum wd_jwt_alg { WD_JWT_NONE_ALG = 0, WD_JWT_RS256 = 1, WD_JWT_PS256 = 2, WD_JWT_ES256 = 4, WD_JWT_EDDSA = 8 };

#define WD_JWKS_MAX_KEYS 64

struct wd_jwk {
    char kid[128];          /* "" when the JWK has none */
    unsigned algs;          /* the algorithms this key may verify (bit set of wd_jwt_alg): pinned by the key */
    EVP_PKEY *pkey;         /* the public key (owned); never a private one */
};

struct wd_jwks {
    struct wd_jwk *keys;    /* the usable keys, in document order (owned) */
    size_t n;               /* how many */
};

/* Parses a JWKS document ({"keys":[...]}). Keeps the usable verification keys: kty RSA (n, e; modulus 2048..8192
 * bits), EC with crv P-256 (x, y; the point checked on the curve), OKP with crv Ed25519 (x). A key's algorithms:
 * its "alg" when present (RS256, PS256, ES256, EdDSA; any other alg, e.g. HS256 or RS384: the key is skipped),
 * else what its type allows (RSA: RS256 and PS256; EC P-256: ES256; Ed25519: EdDSA). Keys with "use" other than
 * "sig", or with key_ops lacking "verify", private members (d, p, q...), kty oct, unknown kty/crv: skipped.
 * At most 64 keys kept. Returns the number kept (0 is valid), or -1 with *why for a document that is not a JWKS
 * (not JSON, not an object with a "keys" array, or any object in it with a repeated member). *out is left empty
 * on -1 and needs wd_jwks_free otherwise. */
int wd_jwks_parse(const char *json, size_t len, struct wd_jwks *out, const char **why);
void wd_jwks_free(struct wd_jwks *ks);
/* The key for a token: by kid when the token has one (exact match; among keys sharing that kid, one allowing alg
 * first), else the only key allowing alg; NULL when none (or, without a kid, when two keys allow alg). */
const struct wd_jwk *wd_jwks_find(const struct wd_jwks *ks, struct wd_str kid, enum wd_jwt_alg alg);

/* The algorithm by its JOSE name ("RS256", "PS256", "ES256", "EdDSA"), or WD_JWT_NONE_ALG. */
enum wd_jwt_alg wd_jwt_alg_from_name(struct wd_str name);
const char *wd_jwt_alg_name(enum wd_jwt_alg alg);
/* 0 when no object in the JSON subtree at token i repeats a member name (compared decoded), else -1 with the
 * repeated name (decoded, cut to fit, NUL-terminated) in name[cap]. Shared by the JWKS and token parsers. */
struct wd_json;
int wd_jose_no_dup_keys(const struct wd_json *j, int i, char *name, size_t cap);

#endif
