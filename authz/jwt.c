/* Compact JWS decoding, signature verification with OpenSSL EVP, and JWT claim checks. See jwt.h. The alg a
 * token names is only ever checked against what its key allows: it never chooses a key type or an HMAC. */
#include "authz/jwt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "lib/hash.h"

/* 9999-12-31T23:59:59Z: a later NumericDate is junk, and the bound keeps exp + skew far from overflow */
#define MAX_DATE INT64_C(253402300799)
#define MAX_SKEW INT64_C(86400)

/* A reason that names a claim: per thread, valid until the thread's next call. */
static _Thread_local char why_buf[128];

static const char *why_dup(const char *part, const char *name)
{
    snprintf(why_buf, sizeof why_buf, "%s: repeated key \"%s\"", part, name);
    return why_buf;
}

/* A base64url part decoded into a new allocation (NUL-terminated for the JSON parts' sake). */
static unsigned char *part_decode(const char *s, size_t n, size_t *out_n)
{
    size_t cap = WD_B64URL_DECODED_MAX(n);
    unsigned char *p = malloc(cap + 1);
    if (p == NULL)
        return NULL;
    long w = wd_b64url_decode(s, n, p, cap);
    if (w < 0) {
        free(p);
        return NULL;
    }
    p[w] = '\0';
    *out_n = (size_t)w;
    return p;
}

/* "JWT" or "at+jwt", any case, after an optional "application/" (RFC 7515 section 4.1.9, RFC 9068 section 2.1). */
static int typ_kind(struct wd_str typ)
{
    if (typ.n >= 12 && strncasecmp(typ.p, "application/", 12) == 0) {
        typ.p += 12;
        typ.n -= 12;
    }
    if (typ.n == 3 && strncasecmp(typ.p, "jwt", 3) == 0)
        return 1;
    if (typ.n == 6 && strncasecmp(typ.p, "at+jwt", 6) == 0)
        return 2;
    return 0;
}

static int decode_header(const char *h, size_t hn, struct wd_jwt *out, const char **why)
{
    size_t n;
    char *p = (char *)part_decode(h, hn, &n);
    if (p == NULL) {
        *why = "malformed base64url in header";
        return -1;
    }
    struct wd_json j = {0};
    struct wd_arena a = {0};
    char dup[80];
    int rc = -1;
    if (wd_json_parse(&j, p, n) != 0) {
        *why = "header is not JSON";
        goto done;
    }
    if (wd_json_type(&j, 0) != WD_J_OBJ) {
        *why = "header is not a JSON object";
        goto done;
    }
    if (wd_jose_no_dup_keys(&j, 0, dup, sizeof dup) != 0) {
        *why = why_dup("header", dup);
        goto done;
    }
    /* a critical extension must be understood, and Warden understands none */
    if (wd_json_get(&j, 0, "crit") >= 0) {
        *why = "header has crit";
        goto done;
    }
    /* keys named by the token itself would let the token choose who vouches for it */
    static const struct {
        const char *name, *why;
    } refused[] = {
        {"jku", "header has jku"},
        {"x5u", "header has x5u"},
        {"jwk", "header has jwk"},
        {"x5c", "header has x5c"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (wd_json_get(&j, 0, refused[i].name) >= 0) {
            *why = refused[i].why;
            goto done;
        }
    int alg = wd_json_get(&j, 0, "alg");
    struct wd_str s;
    if (alg < 0) {
        *why = "header has no alg";
        goto done;
    }
    if (wd_json_type(&j, alg) != WD_J_STR || wd_json_str_decode(&j, alg, &a, &s) != 0) {
        *why = "alg is not a string";
        goto done;
    }
    out->alg = wd_jwt_alg_from_name(s);
    if (out->alg == WD_JWT_NONE_ALG) {
        if (s.n == 4 && strncasecmp(s.p, "none", 4) == 0)
            *why = "alg none refused";
        else if (s.n >= 2 && s.p[0] == 'H' && s.p[1] == 'S')
            *why = "alg HS* refused";
        else
            *why = "alg not supported";
        goto done;
    }
    int typ = wd_json_get(&j, 0, "typ");
    if (typ >= 0) {
        int kind = 0;
        if (wd_json_type(&j, typ) == WD_J_STR && wd_json_str_decode(&j, typ, &a, &s) == 0)
            kind = typ_kind(s);
        if (kind == 0) {
            *why = "typ is not JWT or at+jwt";
            goto done;
        }
        out->at_jwt = kind == 2;
    }
    int kid = wd_json_get(&j, 0, "kid");
    if (kid >= 0) {
        if (wd_json_type(&j, kid) != WD_J_STR || wd_json_str_decode(&j, kid, &a, &s) != 0 ||
            s.n >= sizeof out->kid || memchr(s.p, 0, s.n) != NULL) {
            *why = "kid is not a string of at most 127 bytes";
            goto done;
        }
        memcpy(out->kid, s.p, s.n);
        out->kid[s.n] = '\0';
    }
    rc = 0;
done:
    wd_arena_free(&a);
    wd_json_free(&j);
    free(p);
    return rc;
}

int wd_jwt_decode(const char *tok, size_t len, struct wd_jwt *out, const char **why)
{
    *out = (struct wd_jwt){0};
    if (len > WD_JWT_MAX) {
        *why = "token too long";
        return -1;
    }
    const char *d1 = len ? memchr(tok, '.', len) : NULL;
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL) {
        *why = "token is not three dot-separated parts";
        return -1;
    }
    size_t hn = (size_t)(d1 - tok), pn = (size_t)(d2 - d1 - 1), sn = len - (size_t)(d2 + 1 - tok);
    if (hn == 0 || pn == 0) {
        *why = "token has an empty part";
        return -1;
    }
    if (sn == 0) {
        *why = "token has no signature";
        return -1;
    }
    if (decode_header(tok, hn, out, why) != 0)
        return -1;
    out->payload = (char *)part_decode(d1 + 1, pn, &out->payload_len);
    if (out->payload == NULL) {
        *why = "malformed base64url in payload";
        return -1;
    }
    if (wd_json_parse(&out->claims, out->payload, out->payload_len) != 0) {
        *why = "payload is not JSON";
        return -1;
    }
    if (wd_json_type(&out->claims, 0) != WD_J_OBJ) {
        *why = "payload is not a JSON object";
        return -1;
    }
    char dup[80];
    if (wd_jose_no_dup_keys(&out->claims, 0, dup, sizeof dup) != 0) {
        *why = why_dup("payload", dup);
        return -1;
    }
    out->sig = part_decode(d2 + 1, sn, &out->sig_len);
    if (out->sig == NULL) {
        *why = "malformed base64url in signature";
        return -1;
    }
    out->signing_input = tok;
    out->signing_input_len = (size_t)(d2 - tok);
    return 0;
}

/* r||s (32 bytes each) as the DER ECDSA-Sig-Value EVP expects; its length, or 0. */
static int es256_der(const unsigned char *rs, unsigned char *der, size_t cap)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
    int n = 0;
    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL; /* owned by sig now */
        if (i2d_ECDSA_SIG(sig, NULL) <= (int)cap) {
            unsigned char *p = der;
            n = i2d_ECDSA_SIG(sig, &p);
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return n > 0 ? n : 0;
}

int wd_jwt_verify(const struct wd_jwt *t, const struct wd_jwk *key, const char **why)
{
    if (key == NULL || key->pkey == NULL) {
        *why = "no key for the token";
        return -1;
    }
    if (t->alg == WD_JWT_NONE_ALG || t->signing_input == NULL || t->sig == NULL) {
        *why = "token not decoded";
        return -1;
    }
    if ((key->algs & (unsigned)t->alg) == 0) {
        *why = "key does not allow the token's alg";
        return -1;
    }
    int type = EVP_PKEY_get_base_id(key->pkey);
    const EVP_MD *md = wd_sha256_md();
    const unsigned char *sig = t->sig;
    size_t sig_len = t->sig_len;
    unsigned char der[80];
    switch (t->alg) {
    case WD_JWT_RS256:
    case WD_JWT_PS256:
        if (type != EVP_PKEY_RSA) {
            *why = "key is not an RSA key";
            return -1;
        }
        if (sig_len != (size_t)EVP_PKEY_get_size(key->pkey)) {
            *why = "signature length does not match the key";
            return -1;
        }
        break;
    case WD_JWT_ES256:
        if (type != EVP_PKEY_EC || EVP_PKEY_get_bits(key->pkey) != 256) {
            *why = "key is not a P-256 key";
            return -1;
        }
        /* JWS carries r||s (RFC 7518 section 3.4); a DER signature is another spelling, refused */
        if (sig_len != 64) {
            *why = "ES256 signature is not 64 bytes";
            return -1;
        }
        int n = es256_der(t->sig, der, sizeof der);
        if (n == 0) {
            *why = "out of memory";
            return -1;
        }
        sig = der;
        sig_len = (size_t)n;
        break;
    case WD_JWT_EDDSA:
        if (type != EVP_PKEY_ED25519) {
            *why = "key is not an Ed25519 key";
            return -1;
        }
        if (sig_len != 64) {
            *why = "EdDSA signature is not 64 bytes";
            return -1;
        }
        md = NULL; /* Ed25519 hashes inside the algorithm */
        break;
    default:
        *why = "alg not supported";
        return -1;
    }
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = mctx != NULL && EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key->pkey) == 1;
    if (ok && t->alg == WD_JWT_RS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    if (ok && t->alg == WD_JWT_PS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1 && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1;
    if (!ok) {
        *why = "cannot set up verification";
    } else {
        ok = EVP_DigestVerify(mctx, sig, sig_len, (const unsigned char *)t->signing_input, t->signing_input_len) ==
             1;
        if (!ok)
            *why = "bad signature";
    }
    EVP_MD_CTX_free(mctx);
    /* a failed verification leaves entries on the thread's OpenSSL error queue that nobody reads */
    ERR_clear_error();
    return ok ? 0 : -1;
}

/* A NumericDate at token i: 0, 1 when absent, -1 when not a number in 0..MAX_DATE. A fraction is rounded up
 * or down, whichever makes the check stricter. */
static int numeric_date(const struct wd_json *j, int i, bool up, int64_t *out)
{
    if (i < 0)
        return 1;
    if (wd_json_type(j, i) != WD_J_NUM)
        return -1;
    int64_t v;
    if (wd_json_i64(j, i, &v) != 0) {
        double d;
        if (wd_json_double(j, i, &d) != 0 || !(d >= 0 && d <= (double)MAX_DATE))
            return -1;
        v = (int64_t)(up ? ceil(d) : floor(d));
    }
    if (v < 0 || v > MAX_DATE)
        return -1;
    *out = v;
    return 0;
}

static bool str_is(struct wd_str s, const char *c) { return s.n == strlen(c) && memcmp(s.p, c, s.n) == 0; }

static bool aud_match(struct wd_str aud, const char *const *audiences)
{
    for (size_t i = 0; audiences[i] != NULL; i++)
        if (str_is(aud, audiences[i]))
            return true;
    return false;
}

int wd_jwt_check_claims(const struct wd_jwt *t, const struct wd_jwt_expect *e, const char **why)
{
    const struct wd_json *j = &t->claims;
    if (wd_json_type(j, 0) != WD_J_OBJ) {
        *why = "token not decoded";
        return -1;
    }
    int64_t now = e->now, skew = e->skew < 0 ? 0 : e->skew > MAX_SKEW ? MAX_SKEW : e->skew;
    /* a clock outside NumericDate's range cannot be right: clamped so that no sum below overflows */
    now = now < -MAX_DATE ? -MAX_DATE : now > 2 * MAX_DATE ? 2 * MAX_DATE : now;
    int64_t exp, nbf, iat;
    int rc = numeric_date(j, wd_json_get(j, 0, "exp"), false, &exp);
    if (rc != 0) {
        *why = rc > 0 ? "token has no exp" : "exp is not a NumericDate";
        return -1;
    }
    if (now >= exp + skew) {
        *why = "token expired";
        return -1;
    }
    rc = numeric_date(j, wd_json_get(j, 0, "nbf"), true, &nbf);
    if (rc < 0) {
        *why = "nbf is not a NumericDate";
        return -1;
    }
    if (rc == 0 && now < nbf - skew) {
        *why = "token not yet valid (nbf)";
        return -1;
    }
    rc = numeric_date(j, wd_json_get(j, 0, "iat"), true, &iat);
    if (rc < 0) {
        *why = "iat is not a NumericDate";
        return -1;
    }
    bool has_iat = rc == 0;
    if (has_iat && iat > now + skew) {
        *why = "token issued in the future (iat)";
        return -1;
    }
    if (e->max_lifetime > 0 && exp - (has_iat ? iat : now) > e->max_lifetime) {
        *why = "token lifetime too long";
        return -1;
    }
    if (e->issuer == NULL) {
        *why = "no issuer configured";
        return -1;
    }
    struct wd_arena a = {0};
    struct wd_str s;
    int iss = wd_json_get(j, 0, "iss");
    rc = -1;
    if (iss < 0)
        *why = "token has no iss";
    else if (wd_json_type(j, iss) != WD_J_STR || wd_json_str_decode(j, iss, &a, &s) != 0)
        *why = "iss is not a string";
    else if (!str_is(s, e->issuer))
        *why = "wrong issuer";
    else
        rc = 0;
    if (rc != 0)
        goto done;
    rc = -1;
    int aud = wd_json_get(j, 0, "aud");
    if (e->audiences == NULL || e->audiences[0] == NULL) {
        *why = "no audience configured";
    } else if (aud < 0) {
        *why = "token has no aud";
    } else if (wd_json_type(j, aud) == WD_J_STR) {
        if (wd_json_str_decode(j, aud, &a, &s) == 0 && aud_match(s, e->audiences))
            rc = 0;
        else
            *why = "aud does not match";
    } else if (wd_json_type(j, aud) == WD_J_ARR) {
        bool match = false, bad = false;
        WD_JSON_ARR_EACH(j, aud, el)
        {
            if (wd_json_type(j, (int)el) != WD_J_STR || wd_json_str_decode(j, (int)el, &a, &s) != 0)
                bad = true;
            else if (aud_match(s, e->audiences))
                match = true;
        }
        if (bad)
            *why = "aud has an element that is not a string";
        else if (!match)
            *why = "aud does not match";
        else
            rc = 0;
    } else {
        *why = "aud is not a string or an array";
    }
done:
    wd_arena_free(&a);
    return rc;
}

/* String token i decoded and copied into a. */
static int str_copy(const struct wd_json *j, int i, struct wd_arena *a, struct wd_str *out)
{
    struct wd_str s;
    if (wd_json_str_decode(j, i, a, &s) != 0)
        return -1;
    char *c = wd_arena_strndup(a, s.p, s.n);
    if (c == NULL)
        return -1;
    *out = (struct wd_str){c, s.n};
    return 0;
}

int wd_jwt_claim_str(const struct wd_jwt *t, const char *name, struct wd_arena *a, struct wd_str *out)
{
    int v = wd_json_get(&t->claims, 0, name);
    if (wd_json_type(&t->claims, v) != WD_J_STR)
        return -1;
    return str_copy(&t->claims, v, a, out);
}

int wd_jwt_claim_strings(const struct wd_jwt *t, const char *name, struct wd_arena *a, struct wd_str *out, int cap)
{
    const struct wd_json *j = &t->claims;
    int v = wd_json_get(j, 0, name);
    if (v < 0)
        return 0;
    if (wd_json_type(j, v) == WD_J_STR) {
        if (cap < 1)
            return 0;
        return str_copy(j, v, a, &out[0]) == 0 ? 1 : -1;
    }
    if (wd_json_type(j, v) != WD_J_ARR)
        return -1;
    WD_JSON_ARR_EACH(j, v, e)
    {
        if (wd_json_type(j, (int)e) != WD_J_STR)
            return -1;
    }
    int n = 0;
    WD_JSON_ARR_EACH(j, v, e)
    {
        if (n >= cap)
            break;
        if (str_copy(j, (int)e, a, &out[n]) != 0)
            return -1;
        n++;
    }
    return n;
}

int64_t wd_jwt_exp(const struct wd_jwt *t)
{
    int64_t exp;
    if (wd_json_type(&t->claims, 0) != WD_J_OBJ ||
        numeric_date(&t->claims, wd_json_get(&t->claims, 0, "exp"), false, &exp) != 0)
        return 0;
    return exp;
}

void wd_jwt_free(struct wd_jwt *t)
{
    wd_json_free(&t->claims);
    free(t->payload);
    free(t->sig);
    *t = (struct wd_jwt){0};
}
