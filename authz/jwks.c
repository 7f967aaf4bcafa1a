/* JWKS parsing into OpenSSL public keys, and the key lookup for a token. See jwks.h. Every key is built from
 * its public members only (OSSL_PARAM for RSA and EC, raw bytes for Ed25519) and checked before it is kept. */
#include "authz/jwks.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "lib/hash.h"
#include "lib/json.h"

static const struct {
    const char *name;
    enum wd_jwt_alg alg;
} alg_names[] = {
    {"RS256", WD_JWT_RS256},
    {"PS256", WD_JWT_PS256},
    {"ES256", WD_JWT_ES256},
    {"EdDSA", WD_JWT_EDDSA},
};

enum wd_jwt_alg wd_jwt_alg_from_name(struct wd_str name)
{
    for (size_t i = 0; i < sizeof alg_names / sizeof alg_names[0]; i++)
        if (wd_str_eq(name, alg_names[i].name))
            return alg_names[i].alg;
    return WD_JWT_NONE_ALG;
}

const char *wd_jwt_alg_name(enum wd_jwt_alg alg)
{
    for (size_t i = 0; i < sizeof alg_names / sizeof alg_names[0]; i++)
        if (alg_names[i].alg == alg)
            return alg_names[i].name;
    return "none";
}

static int str_cmp(const void *a, const void *b)
{
    const struct wd_str *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return memcmp(x->p, y->p, x->n);
}

int wd_jose_no_dup_keys(const struct wd_json *j, int i, char *name, size_t cap)
{
    if (wd_json_type(j, i) == 0)
        return -1;
    struct wd_arena a = {0};
    struct wd_str *names = NULL;
    size_t names_cap = 0;
    int rc = 0;
    for (uint32_t o = (uint32_t)i, end = j->t[i].next; o < end && rc == 0; o++) {
        if (j->t[o].type != WD_J_OBJ || j->t[o].size < 2)
            continue;
        /* sorted decoded names: two spellings of one name ("a", "\u0061") are the same member */
        if (j->t[o].size > names_cap) {
            free(names);
            names_cap = j->t[o].size;
            names = malloc(names_cap * sizeof *names);
            if (names == NULL) {
                rc = -1;
                wd_cstr_copy(name, cap, "(out of memory)");
                break;
            }
        }
        size_t n = 0;
        WD_JSON_OBJ_EACH(j, o, k)
        {
            if (wd_json_str_decode(j, (int)k, &a, &names[n]) != 0) {
                rc = -1;
                wd_cstr_copy(name, cap, "(undecodable)");
                break;
            }
            n++;
        }
        if (rc != 0)
            break;
        qsort(names, n, sizeof *names, str_cmp);
        for (size_t k = 1; k < n; k++)
            if (str_cmp(&names[k - 1], &names[k]) == 0) {
                /* the name goes to a log: printable ASCII only */
                size_t w = 0;
                for (size_t c = 0; c < names[k].n && w + 1 < cap && w < 64; c++) {
                    unsigned char ch = (unsigned char)names[k].p[c];
                    name[w++] = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
                }
                if (cap)
                    name[w] = '\0';
                rc = -1;
                break;
            }
    }
    free(names);
    wd_arena_free(&a);
    return rc;
}

/* A base64url member decoded into buf[cap]: bytes, or -1 when absent, not a string or malformed. */
static long member_b64(const struct wd_json *j, int obj, const char *key, uint8_t *buf, size_t cap)
{
    int v = wd_json_get(j, obj, key);
    if (wd_json_type(j, v) != WD_J_STR || j->t[v].escaped)
        return -1;
    struct wd_str r = wd_json_raw(j, v);
    return wd_b64url_decode(r.p, r.n, buf, cap);
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey == NULL)
        return NULL;
    /* fromdata takes the numbers as given: the public key check is what refuses an off-curve point or a
     * degenerate modulus */
    EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = chk != NULL && EVP_PKEY_public_check(chk) == 1;
    EVP_PKEY_CTX_free(chk);
    if (!ok) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

static EVP_PKEY *rsa_key(const struct wd_json *j, int obj)
{
    uint8_t n[1024 + 1], e[8];
    long nn = member_b64(j, obj, "n", n, sizeof n), en = member_b64(j, obj, "e", e, sizeof e);
    if (nn <= 0 || en <= 0)
        return NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nn, NULL), *be = BN_bin2bn(e, (int)en, NULL);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    /* 2048 bits is the floor of current guidance; past 8192 a verification costs too much for a request */
    if (bn != NULL && be != NULL && bld != NULL && BN_num_bits(bn) >= 2048 && BN_num_bits(bn) <= 8192 &&
        BN_is_odd(be) && !BN_is_one(be) && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pkey;
}

static EVP_PKEY *ec_key(const struct wd_json *j, int obj)
{
    uint8_t pt[65];
    /* exactly 32 bytes each (RFC 7518 section 6.2.1.2): no shortened or padded coordinates */
    if (!wd_json_str_eq(j, wd_json_get(j, obj, "crv"), "P-256") || member_b64(j, obj, "x", pt + 1, 32) != 32 ||
        member_b64(j, obj, "y", pt + 33, 32) != 32)
        return NULL;
    pt[0] = 0x04; /* uncompressed point */
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld != NULL && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static EVP_PKEY *okp_key(const struct wd_json *j, int obj)
{
    uint8_t x[32];
    if (!wd_json_str_eq(j, wd_json_get(j, obj, "crv"), "Ed25519") || member_b64(j, obj, "x", x, sizeof x) != 32)
        return NULL;
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof x);
}

/* The key at token obj, or -1 when it is not a usable verification key. */
static int parse_key(const struct wd_json *j, int obj, struct wd_jwk *out)
{
    if (wd_json_type(j, obj) != WD_J_OBJ)
        return -1;
    /* a private or symmetric member means the publisher leaked a secret: such a key is not trusted */
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    for (size_t i = 0; i < sizeof private_members / sizeof private_members[0]; i++)
        if (wd_json_get(j, obj, private_members[i]) >= 0)
            return -1;
    int use = wd_json_get(j, obj, "use");
    if (use >= 0 && !wd_json_str_eq(j, use, "sig"))
        return -1;
    int ops = wd_json_get(j, obj, "key_ops");
    if (ops >= 0) {
        bool verify = false;
        if (wd_json_type(j, ops) != WD_J_ARR)
            return -1;
        WD_JSON_ARR_EACH(j, ops, e)
        {
            if (wd_json_str_eq(j, (int)e, "verify"))
                verify = true;
        }
        if (!verify)
            return -1;
    }
    unsigned allowed;
    int kty = wd_json_get(j, obj, "kty");
    if (wd_json_str_eq(j, kty, "RSA"))
        allowed = WD_JWT_RS256 | WD_JWT_PS256;
    else if (wd_json_str_eq(j, kty, "EC"))
        allowed = WD_JWT_ES256;
    else if (wd_json_str_eq(j, kty, "OKP"))
        allowed = WD_JWT_EDDSA;
    else
        return -1; /* oct (an HMAC secret), anything unknown */
    unsigned algs = allowed;
    int alg = wd_json_get(j, obj, "alg");
    if (alg >= 0) {
        if (wd_json_type(j, alg) != WD_J_STR || j->t[alg].escaped)
            return -1;
        algs = wd_jwt_alg_from_name(wd_json_raw(j, alg));
        if ((algs & allowed) == 0)
            return -1;
    }
    out->kid[0] = '\0';
    int kid = wd_json_get(j, obj, "kid");
    if (kid >= 0) {
        struct wd_arena a = {0};
        struct wd_str d;
        bool ok = wd_json_str_decode(j, kid, &a, &d) == 0 && d.n < sizeof out->kid && memchr(d.p, 0, d.n) == NULL;
        if (ok) {
            memcpy(out->kid, d.p, d.n);
            out->kid[d.n] = '\0';
        }
        wd_arena_free(&a);
        if (!ok)
            return -1;
    }
    EVP_PKEY *pkey = allowed == WD_JWT_ES256 ? ec_key(j, obj) : allowed == WD_JWT_EDDSA ? okp_key(j, obj)
                                                                                         : rsa_key(j, obj);
    if (pkey == NULL)
        return -1;
    out->algs = algs;
    out->pkey = pkey;
    return 0;
}

int wd_jwks_parse(const char *json, size_t len, struct wd_jwks *out, const char **why)
{
    *out = (struct wd_jwks){0};
    struct wd_json j = {0};
    int rc = -1;
    char dup[80];
    if (wd_json_parse(&j, json, len) != 0) {
        *why = "JWKS is not JSON";
        goto done;
    }
    int keys = wd_json_get(&j, 0, "keys");
    if (wd_json_type(&j, 0) != WD_J_OBJ) {
        *why = "JWKS is not an object";
        goto done;
    }
    if (wd_json_type(&j, keys) != WD_J_ARR) {
        *why = "JWKS has no \"keys\" array";
        goto done;
    }
    if (wd_jose_no_dup_keys(&j, 0, dup, sizeof dup) != 0) {
        *why = "JWKS has a repeated member";
        goto done;
    }
    size_t cap = j.t[keys].size < WD_JWKS_MAX_KEYS ? j.t[keys].size : WD_JWKS_MAX_KEYS;
    if (cap > 0) {
        out->keys = calloc(cap, sizeof *out->keys);
        if (out->keys == NULL) {
            *why = "out of memory";
            goto done;
        }
    }
    WD_JSON_ARR_EACH(&j, keys, e)
    {
        if (out->n == cap)
            break;
        if (parse_key(&j, (int)e, &out->keys[out->n]) == 0)
            out->n++;
    }
    rc = (int)out->n;
done:
    wd_json_free(&j);
    return rc;
}

void wd_jwks_free(struct wd_jwks *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        EVP_PKEY_free(ks->keys[i].pkey);
    free(ks->keys);
    *ks = (struct wd_jwks){0};
}

const struct wd_jwk *wd_jwks_find(const struct wd_jwks *ks, struct wd_str kid, enum wd_jwt_alg alg)
{
    const struct wd_jwk *found = NULL;
    if (kid.n > 0) {
        for (size_t i = 0; i < ks->n; i++) {
            const struct wd_jwk *k = &ks->keys[i];
            if (strlen(k->kid) == kid.n && memcmp(k->kid, kid.p, kid.n) == 0) {
                if (k->algs & (unsigned)alg)
                    return k;
                if (found == NULL)
                    found = k; /* verify then says why it does not fit */
            }
        }
        return found;
    }
    if (alg == WD_JWT_NONE_ALG)
        return NULL;
    for (size_t i = 0; i < ks->n; i++)
        if (ks->keys[i].algs & (unsigned)alg) {
            if (found != NULL)
                return NULL; /* two candidates: without a kid the token does not say which */
            found = &ks->keys[i];
        }
    return found;
}
