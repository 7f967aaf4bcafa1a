/* Unit tests for authz/jwt.c, authz/jwks.c and lib/hash.c's base64url: keys generated here with OpenSSL (RSA
 * 2048, P-256, Ed25519), their JWKs written from the public numbers and tokens signed here, so every signature
 * checked is real; plus the RFC 8037 Ed25519 example. Refusals are asserted with their reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "authz/jwks.h"
#include "authz/jwt.h"
#include "authz/oidc.h"
#include "lib/hash.h"

#define NOW INT64_C(1800000000)

/* The PSS salt length sign_raw uses (RFC 7518 section 3.5 fixes it at the hash size, 32). */
static int pss_salt = 32;

static EVP_PKEY *rsa, *rsa_b, *rsa1024, *ec, *ec384, *ed;

/* ---- building keys and tokens ---- */

static char *b64(const void *p, size_t n)
{
    char *o = malloc(WD_B64URL_LEN(n) + 1);
    assert_non_null(o);
    assert_int_equal(wd_b64url_encode(p, n, o), WD_B64URL_LEN(n));
    return o;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    assert_true(vasprintf(&s, f, ap) >= 0);
    va_end(ap);
    return s;
}

static char *bn_b64(EVP_PKEY *k, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    unsigned char buf[1100];
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    assert_true(n > 0);
    BN_free(bn);
    return b64(buf, (size_t)n);
}

static char *jwk_rsa(EVP_PKEY *k, const char *extra)
{
    char *n = bn_b64(k, OSSL_PKEY_PARAM_RSA_N, 0), *e = bn_b64(k, OSSL_PKEY_PARAM_RSA_E, 0);
    char *s = fmt("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", n, e, extra);
    free(n);
    free(e);
    return s;
}

static char *jwk_ec(EVP_PKEY *k, const char *crv, int coord, const char *extra)
{
    char *x = bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, coord), *y = bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, coord);
    char *s = fmt("{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}", crv, x, y, extra);
    free(x);
    free(y);
    return s;
}

static char *jwk_ed(EVP_PKEY *k, const char *extra)
{
    unsigned char raw[32];
    size_t n = sizeof raw;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &n), 1);
    char *x = b64(raw, n);
    char *s = fmt("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"%s}", x, extra);
    free(x);
    return s;
}

/* The JWS signature of alg over in[0..n) with k, in JOSE form (ES256: r||s). der: ES256 left in DER. */
static unsigned char *sign_raw(enum wd_jwt_alg alg, EVP_PKEY *k, const char *in, size_t n, size_t *sig_n, bool der)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    assert_int_equal(EVP_DigestSignInit(m, &pc, alg == WD_JWT_EDDSA ? NULL : EVP_sha256(), NULL, k), 1);
    if (alg == WD_JWT_PS256) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, pss_salt), 1);
    }
    size_t len = 0;
    assert_int_equal(EVP_DigestSign(m, NULL, &len, (const unsigned char *)in, n), 1);
    unsigned char *sig = malloc(len);
    assert_non_null(sig);
    assert_int_equal(EVP_DigestSign(m, sig, &len, (const unsigned char *)in, n), 1);
    EVP_MD_CTX_free(m);
    if (alg == WD_JWT_ES256 && !der) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
        assert_non_null(es);
        unsigned char *rs = malloc(64);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32), 32);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32), 32);
        ECDSA_SIG_free(es);
        free(sig);
        sig = rs;
        len = 64;
    }
    *sig_n = len;
    return sig;
}

/* header.payload.signature from the JSON texts, the signature over what is sent. */
static char *token_sig(const char *hdr, const char *payload, enum wd_jwt_alg alg, EVP_PKEY *k, bool der)
{
    char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
    char *in = fmt("%s.%s", h, p);
    size_t sn;
    unsigned char *sig = sign_raw(alg, k, in, strlen(in), &sn, der);
    char *s = b64(sig, sn);
    char *t = fmt("%s.%s", in, s);
    free(h);
    free(p);
    free(in);
    free(sig);
    free(s);
    return t;
}

static char *token(const char *hdr, const char *payload, enum wd_jwt_alg alg, EVP_PKEY *k)
{
    return token_sig(hdr, payload, alg, k, false);
}

/* header.payload.signature with the given signature bytes (nothing signed). */
static char *token_raw(const char *hdr, const char *payload, const void *sig, size_t sn)
{
    char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload)), *s = b64(sig, sn);
    char *t = fmt("%s.%s.%s", h, p, s);
    free(h);
    free(p);
    free(s);
    return t;
}

static const char *claims_ok =
    "{\"iss\":\"https://idp.example\",\"sub\":\"alice\",\"aud\":\"warden\",\"exp\":1800000300,\"iat\":1799999990,"
    "\"groups\":[\"eng\",\"ml\"]}";

static const char *const auds[] = {"warden", NULL};
static const struct wd_jwt_expect expect = {
    .issuer = "https://idp.example", .audiences = auds, .now = NOW, .skew = 60, .max_lifetime = 86400};

/* The JWKS of the test keys: r1 (RSA, no alg), e1 (P-256), d1 (Ed25519). */
static struct wd_jwks ks;

static int setup(void **state)
{
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!rsa || !rsa_b || !rsa1024 || !ec || !ec384 || !ed)
        return -1;
    char *r = jwk_rsa(rsa, ",\"kid\":\"r1\",\"use\":\"sig\""), *e = jwk_ec(ec, "P-256", 32, ",\"kid\":\"e1\""),
         *d = jwk_ed(ed, ",\"kid\":\"d1\",\"key_ops\":[\"verify\"]");
    char *doc = fmt("{\"keys\":[%s,%s,%s]}", r, e, d);
    const char *why = NULL;
    int n = wd_jwks_parse(doc, strlen(doc), &ks, &why);
    free(r);
    free(e);
    free(d);
    free(doc);
    return n == 3 ? 0 : -1;
}

static int teardown(void **state)
{
    wd_jwks_free(&ks);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_b);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec384);
    EVP_PKEY_free(ed);
    return 0;
}

/* Decodes tok: 0, or the refusal with its reason checked. */
static void assert_refused(const char *tok, size_t n, const char *want_why)
{
    struct wd_jwt t;
    const char *why = NULL;
    int rc = wd_jwt_decode(tok, n, &t, &why);
    if (rc == 0 || why == NULL || strcmp(why, want_why) != 0)
        print_error("decode: rc %d, why \"%s\", want \"%s\"\n", rc, why ? why : "(null)", want_why);
    assert_int_equal(rc, -1);
    assert_string_equal(why, want_why);
    wd_jwt_free(&t);
}

/* The whole path for a good token: decode, key lookup, signature, claims. */
static int accept_all(const char *tok, const struct wd_jwks *set, const struct wd_jwt_expect *e, const char **why)
{
    struct wd_jwt t;
    int rc = wd_jwt_decode(tok, strlen(tok), &t, why);
    if (rc == 0)
        rc = wd_jwt_verify(&t, wd_jwks_find(set, (struct wd_str){t.kid, strlen(t.kid)}, t.alg), why);
    if (rc == 0)
        rc = wd_jwt_check_claims(&t, e, why);
    wd_jwt_free(&t);
    return rc;
}

static void assert_verify_refused(const char *tok, const struct wd_jwks *set, const char *want_why)
{
    struct wd_jwt t;
    const char *why = NULL;
    assert_int_equal(wd_jwt_decode(tok, strlen(tok), &t, &why), 0);
    int rc = wd_jwt_verify(&t, wd_jwks_find(set, (struct wd_str){t.kid, strlen(t.kid)}, t.alg), &why);
    if (rc == 0 || strcmp(why, want_why) != 0)
        print_error("verify: rc %d, why \"%s\", want \"%s\"\n", rc, rc ? why : "", want_why);
    assert_int_equal(rc, -1);
    assert_string_equal(why, want_why);
    wd_jwt_free(&t);
}

static const struct {
    enum wd_jwt_alg alg;
    const char *name, *kid;
    EVP_PKEY **key;
} algs[] = {
    {WD_JWT_RS256, "RS256", "r1", &rsa},
    {WD_JWT_PS256, "PS256", "r1", &rsa},
    {WD_JWT_ES256, "ES256", "e1", &ec},
    {WD_JWT_EDDSA, "EdDSA", "d1", &ed},
};
#define NALGS (sizeof algs / sizeof algs[0])

static char *good_token(size_t i, const char *typ)
{
    char *h = typ ? fmt("{\"alg\":\"%s\",\"typ\":\"%s\",\"kid\":\"%s\"}", algs[i].name, typ, algs[i].kid)
                  : fmt("{\"alg\":\"%s\",\"kid\":\"%s\"}", algs[i].name, algs[i].kid);
    char *t = token(h, claims_ok, algs[i].alg, *algs[i].key);
    free(h);
    return t;
}

/* ---- base64url ---- */

static void test_b64url_round_trip(void **state)
{
    uint8_t in[40], out[40];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 250);
    for (size_t n = 0; n <= sizeof in; n++) {
        char enc[64];
        assert_int_equal(wd_b64url_encode(in, n, enc), WD_B64URL_LEN(n));
        assert_int_equal(strlen(enc), WD_B64URL_LEN(n));
        assert_null(strpbrk(enc, "+/="));
        assert_int_equal(wd_b64url_decode(enc, strlen(enc), out, sizeof out), (long)n);
        assert_memory_equal(in, out, n);
    }
    char enc[8];
    wd_b64url_encode((const uint8_t *)"\xfb\xff", 2, enc);
    assert_string_equal(enc, "-_8"); /* the two url-safe characters */
}

/* lib/hash.c's base64 of service blobs (AWS SecretBinary, GCP payload.data): RFC 4648's vectors, one spelling */
static void test_b64_std(void **state)
{
    (void)state;
    static const char *const vec[][2] = {{"", ""},         {"Zg==", "f"},         {"Zm8=", "fo"},     {"Zm9v", "foo"},
                                         {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"}};
    uint8_t out[16];
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        long n = wd_b64_decode(vec[i][0], strlen(vec[i][0]), out, sizeof out, 0);
        assert_int_equal(n, (long)strlen(vec[i][1]));
        assert_memory_equal(out, vec[i][1], (size_t)n);
    }
    /* 0xfb 0xff: "+/8=" in the standard alphabet, "-_8=" in the URL one */
    assert_int_equal(wd_b64_decode("+/8=", 4, out, sizeof out, 0), 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(wd_b64_decode("-_8=", 4, out, sizeof out, 0), -1);
    assert_int_equal(wd_b64_decode("-_8=", 4, out, sizeof out, WD_B64_URL), 2);
    assert_int_equal(out[1], 0xff);
    /* padding: required unless optional, never more than the length needs, never inside */
    assert_int_equal(wd_b64_decode("Zg", 2, out, sizeof out, 0), -1);
    assert_int_equal(wd_b64_decode("Zg", 2, out, sizeof out, WD_B64_PAD_OPTIONAL), 1);
    assert_int_equal(wd_b64_decode("Zg=", 3, out, sizeof out, WD_B64_PAD_OPTIONAL), -1);
    assert_int_equal(wd_b64_decode("Zm9v====", 8, out, sizeof out, 0), -1);
    assert_int_equal(wd_b64_decode("Zg==Zg==", 8, out, sizeof out, 0), -1);
    assert_int_equal(wd_b64_decode("Z===", 4, out, sizeof out, WD_B64_PAD_OPTIONAL), -1);
    /* one spelling: "Zh==" decodes to "f" with a stray bit */
    assert_int_equal(wd_b64_decode("Zh==", 4, out, sizeof out, 0), -1);
    assert_int_equal(wd_b64_decode("Zm9 v", 5, out, sizeof out, 0), -1);
    /* JSON's "\/" only when asked, and no other escape */
    assert_int_equal(wd_b64_decode("\\/w==", 5, out, sizeof out, 0), -1);
    assert_int_equal(wd_b64_decode("\\/w==", 5, out, sizeof out, WD_B64_JSON_SLASH), 1);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(wd_b64_decode("\\nw==", 5, out, sizeof out, WD_B64_JSON_SLASH), -1);
    /* the cap */
    assert_int_equal(wd_b64_decode("Zm9vYmFy", 8, out, 5, 0), -2);
    assert_int_equal(wd_b64_decode("Zm9vYmFy", 8, out, 6, 0), 6);
}

static void test_b64url_strict(void **state)
{
    uint8_t out[16];
    assert_int_equal(wd_b64url_decode("QQ", 2, out, sizeof out), 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(wd_b64url_decode("QQ==", 4, out, sizeof out), -1); /* padding */
    assert_int_equal(wd_b64url_decode("QR", 2, out, sizeof out), -1);   /* nonzero unused bits */
    assert_int_equal(wd_b64url_decode("QUJDR", 5, out, sizeof out), -1); /* 1 mod 4 */
    assert_int_equal(wd_b64url_decode("+/8A", 4, out, sizeof out), -1); /* standard alphabet */
    assert_int_equal(wd_b64url_decode("QU JD", 5, out, sizeof out), -1);
    assert_int_equal(wd_b64url_decode("QUJD", 4, out, 2), -1); /* does not fit */
    assert_int_equal(wd_b64url_decode("QUJD", 4, out, 3), 3);
    assert_int_equal(wd_b64url_decode("", 0, out, 0), 0);
    assert_int_equal(wd_b64url_decode("QU\0D", 4, out, sizeof out), -1);
}

/* ---- valid tokens ---- */

static void test_valid_tokens(void **state)
{
    static const char *const typs[] = {NULL, "JWT", "at+jwt", "application/AT+JWT", "jwt"};
    for (size_t i = 0; i < NALGS; i++)
        for (size_t k = 0; k < sizeof typs / sizeof typs[0]; k++) {
            char *tok = good_token(i, typs[k]);
            struct wd_jwt t;
            const char *why = "";
            assert_int_equal(wd_jwt_decode(tok, strlen(tok), &t, &why), 0);
            assert_int_equal(t.alg, algs[i].alg);
            assert_string_equal(t.kid, algs[i].kid);
            assert_int_equal(t.at_jwt, k >= 2 && k <= 3);
            const struct wd_jwk *key = wd_jwks_find(&ks, (struct wd_str){t.kid, strlen(t.kid)}, t.alg);
            assert_non_null(key);
            assert_string_equal(key->kid, algs[i].kid);
            if (wd_jwt_verify(&t, key, &why) != 0)
                print_error("%s typ %s: %s\n", algs[i].name, typs[k] ? typs[k] : "-", why);
            assert_int_equal(wd_jwt_verify(&t, key, &why), 0);
            assert_int_equal(wd_jwt_check_claims(&t, &expect, &why), 0);
            assert_int_equal(wd_jwt_exp(&t), 1800000300);
            struct wd_arena a = {0};
            struct wd_str s;
            assert_int_equal(wd_jwt_claim_str(&t, "sub", &a, &s), 0);
            assert_int_equal(s.n, 5);
            assert_string_equal(s.p, "alice");
            wd_arena_free(&a);
            wd_jwt_free(&t);
            free(tok);
        }
}

static void test_typ_refused(void **state)
{
    static const char *const bad[] = {"\"JOSE\"", "\"at+JWT+x\"", "\"application/\"", "1", "null", "\"jwt \""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *h = fmt("{\"alg\":\"RS256\",\"typ\":%s}", bad[k]);
        char *tok = token(h, claims_ok, WD_JWT_RS256, rsa);
        assert_refused(tok, strlen(tok), "typ is not JWT or at+jwt");
        free(h);
        free(tok);
    }
}

/* ---- algorithm confusion ---- */

static void test_alg_names(void **state)
{
    static const char *const names[] = {"RS256", "PS256", "ES256", "EdDSA"};
    for (size_t i = 0; i < 4; i++) {
        enum wd_jwt_alg a = wd_jwt_alg_from_name((struct wd_str){names[i], strlen(names[i])});
        assert_int_equal(a, 1 << i);
        assert_string_equal(wd_jwt_alg_name(a), names[i]);
    }
    assert_int_equal(wd_jwt_alg_from_name(WD_STR("EDDSA")), WD_JWT_NONE_ALG);
    assert_int_equal(wd_jwt_alg_from_name(WD_STR("RS2560")), WD_JWT_NONE_ALG);
    assert_int_equal(wd_jwt_alg_from_name(WD_STR("")), WD_JWT_NONE_ALG);
    assert_string_equal(wd_jwt_alg_name(WD_JWT_NONE_ALG), "none");
}

static void test_alg_none(void **state)
{
    char *tok = fmt("%s.%s.", "eyJhbGciOiJub25lIn0", "eyJzdWIiOiJhbGljZSJ9"); /* {"alg":"none"}, {"sub":"alice"} */
    assert_refused(tok, strlen(tok), "token has no signature");
    free(tok);
    tok = token_raw("{\"alg\":\"none\"}", claims_ok, "x", 1);
    assert_refused(tok, strlen(tok), "alg none refused");
    free(tok);
    tok = token_raw("{\"alg\":\"NoNe\",\"typ\":\"JWT\"}", claims_ok, "x", 1);
    assert_refused(tok, strlen(tok), "alg none refused");
    free(tok);
    tok = token_raw("{\"typ\":\"JWT\"}", claims_ok, "x", 1);
    assert_refused(tok, strlen(tok), "header has no alg");
    free(tok);
    tok = token_raw("{\"alg\":256}", claims_ok, "x", 1);
    assert_refused(tok, strlen(tok), "alg is not a string");
    free(tok);
    static const char *const other[] = {"RS384", "ES512", "PS512", "rs256", "Ed25519", ""};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        char *h = fmt("{\"alg\":\"%s\"}", other[i]);
        tok = token_raw(h, claims_ok, "x", 1);
        assert_refused(tok, strlen(tok), "alg not supported");
        free(tok);
        free(h);
    }
}

/* The classic confusion: HS256 keyed with the RSA public key's bytes, which a verifier that lets the token pick
 * the algorithm would check as an HMAC. Refused at decode, before any key is looked at. */
static void test_hs256_with_rsa_public_key(void **state)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa), 1);
    char *pem;
    long pem_n = BIO_get_mem_data(bio, &pem);
    unsigned char *der = NULL;
    int der_n = i2d_PUBKEY(rsa, &der);
    assert_true(pem_n > 0 && der_n > 0);
    const struct {
        const void *key;
        size_t n;
    } secrets[] = {{pem, (size_t)pem_n}, {der, (size_t)der_n}};
    for (size_t i = 0; i < 2; i++) {
        const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"r1\"}";
        char *h = b64(hdr, strlen(hdr)), *p = b64(claims_ok, strlen(claims_ok));
        char *in = fmt("%s.%s", h, p);
        unsigned char mac[32];
        unsigned mac_n = 0;
        assert_non_null(HMAC(EVP_sha256(), secrets[i].key, (int)secrets[i].n, (const unsigned char *)in,
                             strlen(in), mac, &mac_n));
        char *s = b64(mac, mac_n);
        char *tok = fmt("%s.%s", in, s);
        assert_refused(tok, strlen(tok), "alg HS* refused");
        free(h);
        free(p);
        free(in);
        free(s);
        free(tok);
    }
    OPENSSL_free(der);
    BIO_free(bio);
}

/* A key whose JWK says PS256 verifies PS256 only: an RS256 signature by the same key is refused. */
static void test_alg_pinned_by_key(void **state)
{
    char *jwk = jwk_rsa(rsa, ",\"kid\":\"r1\",\"alg\":\"PS256\"");
    char *doc = fmt("{\"keys\":[%s]}", jwk);
    struct wd_jwks set;
    const char *why;
    assert_int_equal(wd_jwks_parse(doc, strlen(doc), &set, &why), 1);
    assert_int_equal(set.keys[0].algs, WD_JWT_PS256);
    char *rs = good_token(0, "JWT"), *ps = good_token(1, "JWT");
    assert_verify_refused(rs, &set, "key does not allow the token's alg");
    assert_int_equal(accept_all(ps, &set, &expect, &why), 0);
    /* without a kid there is no PS256-only key for an RS256 token at all */
    char *nokid = token("{\"alg\":\"RS256\"}", claims_ok, WD_JWT_RS256, rsa);
    assert_verify_refused(nokid, &set, "no key for the token");
    free(nokid);
    free(rs);
    free(ps);
    free(jwk);
    free(doc);
    wd_jwks_free(&set);
}

/* A token whose alg does not fit the key's type: refused whatever the signature. */
static void test_alg_key_type_mismatch(void **state)
{
    /* ES256 signed by the EC key but naming the RSA key */
    char *t1 = token("{\"alg\":\"ES256\",\"kid\":\"r1\"}", claims_ok, WD_JWT_ES256, ec);
    assert_verify_refused(t1, &ks, "key does not allow the token's alg");
    /* a key claiming more than its type: the set keeps only what the type allows */
    char *jwk = jwk_rsa(rsa, ",\"kid\":\"r1\",\"alg\":\"ES256\"");
    char *doc = fmt("{\"keys\":[%s]}", jwk);
    struct wd_jwks set;
    const char *why;
    assert_int_equal(wd_jwks_parse(doc, strlen(doc), &set, &why), 0);
    wd_jwks_free(&set);
    /* a forged set entry (not from the parser) still cannot cross types */
    struct wd_jwk forged = {.kid = "r1", .algs = WD_JWT_ES256 | WD_JWT_EDDSA, .pkey = rsa};
    struct wd_jwt t;
    assert_int_equal(wd_jwt_decode(t1, strlen(t1), &t, &why), 0);
    assert_int_equal(wd_jwt_verify(&t, &forged, &why), -1);
    assert_string_equal(why, "key is not a P-256 key");
    wd_jwt_free(&t);
    char *t2 = token("{\"alg\":\"EdDSA\",\"kid\":\"r1\"}", claims_ok, WD_JWT_EDDSA, ed);
    assert_int_equal(wd_jwt_decode(t2, strlen(t2), &t, &why), 0);
    assert_int_equal(wd_jwt_verify(&t, &forged, &why), -1);
    assert_string_equal(why, "key is not an Ed25519 key");
    wd_jwt_free(&t);
    struct wd_jwk forged_ec = {.kid = "e1", .algs = WD_JWT_RS256, .pkey = ec};
    char *t3 = good_token(0, NULL);
    assert_int_equal(wd_jwt_decode(t3, strlen(t3), &t, &why), 0);
    assert_int_equal(wd_jwt_verify(&t, &forged_ec, &why), -1);
    assert_string_equal(why, "key is not an RSA key");
    wd_jwt_free(&t);
    free(t1);
    free(t2);
    free(t3);
    free(jwk);
    free(doc);
}

static void test_kid_mismatch(void **state)
{
    char *tok = token("{\"alg\":\"RS256\",\"kid\":\"r2\"}", claims_ok, WD_JWT_RS256, rsa);
    struct wd_jwt t;
    const char *why;
    assert_int_equal(wd_jwt_decode(tok, strlen(tok), &t, &why), 0);
    assert_null(wd_jwks_find(&ks, WD_STR("r2"), WD_JWT_RS256));
    assert_verify_refused(tok, &ks, "no key for the token");
    /* the right kid on another key's signature */
    char *other = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims_ok, WD_JWT_RS256, rsa_b);
    assert_verify_refused(other, &ks, "bad signature");
    wd_jwt_free(&t);
    free(tok);
    free(other);
}

/* ---- signatures ---- */

static void test_bad_signature(void **state)
{
    for (size_t i = 0; i < NALGS; i++) {
        char *tok = good_token(i, NULL);
        char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
        /* one bit of the payload: "alice" becomes "alicd" */
        size_t pn = (size_t)(d2 - d1 - 1);
        uint8_t pay[512];
        long n = wd_b64url_decode(d1 + 1, pn, pay, sizeof pay);
        assert_true(n > 0);
        char *at = memmem(pay, (size_t)n, "alice", 5);
        assert_non_null(at);
        at[4] ^= 1;
        char *p2 = b64(pay, (size_t)n);
        *d1 = '\0';
        char *forged = fmt("%s.%s.%s", tok, p2, d2 + 1);
        *d1 = '.';
        assert_verify_refused(forged, &ks, "bad signature");
        /* one bit of the signature, every byte position in turn for the short ones */
        size_t sn = strlen(d2 + 1);
        uint8_t sig[600];
        long m = wd_b64url_decode(d2 + 1, sn, sig, sizeof sig);
        assert_true(m > 0);
        for (long k = 0; k < m; k += m > 64 ? 37 : 1) {
            sig[k] ^= 0x10;
            char *s2 = b64(sig, (size_t)m);
            *d2 = '\0';
            char *t2 = fmt("%s.%s", tok, s2);
            *d2 = '.';
            assert_verify_refused(t2, &ks, "bad signature");
            sig[k] ^= 0x10;
            free(s2);
            free(t2);
        }
        free(p2);
        free(forged);
        free(tok);
    }
}

static void test_signature_length(void **state)
{
    /* ES256 in DER, as OpenSSL makes it: refused, though it is the same signature */
    char *der = token_sig("{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims_ok, WD_JWT_ES256, ec, true);
    assert_verify_refused(der, &ks, "ES256 signature is not 64 bytes");
    free(der);
    char *t1 = token_raw("{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims_ok, "\x01\x02", 2);
    assert_verify_refused(t1, &ks, "signature length does not match the key");
    char *t2 = token_raw("{\"alg\":\"EdDSA\",\"kid\":\"d1\"}", claims_ok, "\x01\x02", 2);
    assert_verify_refused(t2, &ks, "EdDSA signature is not 64 bytes");
    /* PS256 with another salt length: a valid PSS signature, not a PS256 one */
    static const int salts[] = {0, 20, 64};
    for (size_t i = 0; i < 3; i++) {
        pss_salt = salts[i];
        char *ps = token("{\"alg\":\"PS256\",\"kid\":\"r1\"}", claims_ok, WD_JWT_PS256, rsa);
        pss_salt = 32;
        assert_verify_refused(ps, &ks, "bad signature");
        free(ps);
    }
    /* r||s of zeros: the right length, not a signature */
    uint8_t zero[64] = {0};
    char *t3 = token_raw("{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims_ok, zero, 64);
    assert_verify_refused(t3, &ks, "bad signature");
    free(t1);
    free(t2);
    free(t3);
}

/* ---- malformed tokens ---- */

static void test_truncated(void **state)
{
    for (size_t i = 0; i < NALGS; i++) {
        char *tok = good_token(i, "at+jwt");
        size_t len = strlen(tok);
        for (size_t n = 0; n < len; n++) {
            /* a copy of exactly n bytes, so that ASan sees any read past the cut */
            char *cut = malloc(n ? n : 1);
            memcpy(cut, tok, n);
            struct wd_jwt t;
            const char *why = NULL;
            int rc = wd_jwt_decode(cut, n, &t, &why);
            if (rc == 0) /* cut inside the signature at a valid length: the signature is then wrong */
                rc = wd_jwt_verify(&t, wd_jwks_find(&ks, (struct wd_str){t.kid, strlen(t.kid)}, t.alg), &why);
            assert_int_equal(rc, -1);
            assert_non_null(why);
            assert_true(strlen(why) > 0);
            wd_jwt_free(&t);
            free(cut);
        }
        free(tok);
    }
}

static void test_oversized(void **state)
{
    /* a big groups claim: the token just under the limit is fine, just over it refused before decoding */
    size_t fill = WD_JWT_MAX;
    char *big = malloc(fill + 1);
    memset(big, 'g', fill);
    big[fill] = '\0';
    char *tok = NULL;
    for (size_t cut = WD_JWT_MAX * 3 / 4 - 700;; cut++) {
        big[cut] = '\0';
        char *claims = fmt("{\"iss\":\"https://idp.example\",\"aud\":\"warden\",\"exp\":1800000300,\"g\":\"%s\"}", big);
        free(tok);
        tok = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims, WD_JWT_RS256, rsa);
        free(claims);
        big[cut] = 'g';
        if (strlen(tok) >= WD_JWT_MAX - 4)
            break;
    }
    assert_true(strlen(tok) <= WD_JWT_MAX);
    const char *why;
    assert_int_equal(accept_all(tok, &ks, &expect, &why), 0);
    char *longer = fmt("AAAAAAAA%s", tok); /* a header eight characters longer: still base64url */
    size_t ln = strlen(longer);
    assert_true(ln > WD_JWT_MAX);
    assert_refused(longer, ln, "token too long");
    assert_refused(longer, WD_JWT_MAX + 1, "token too long");
    free(longer);
    free(tok);
    free(big);
}

static void test_padding_and_alphabet(void **state)
{
    char *tok = good_token(2, NULL); /* ES256: 64-byte signature, 86 characters, would take "==" */
    size_t len = strlen(tok);
    char *padded = fmt("%s==", tok);
    assert_refused(padded, strlen(padded), "malformed base64url in signature");
    free(padded);
    /* the header {"alg":"ES256","kid":"e1"} is 26 bytes: its encoding would take one '=' */
    char *d1 = strchr(tok, '.');
    char *hp = fmt("%.*s=%s", (int)(d1 - tok), tok, d1);
    assert_refused(hp, strlen(hp), "malformed base64url in header");
    free(hp);
    static const char bad[] = {'+', '/', ' ', '=', '\n', '\0', '\x80', '%'};
    for (size_t k = 0; k < sizeof bad; k++) {
        char *c = malloc(len);
        memcpy(c, tok, len);
        c[3] = bad[k];
        assert_refused(c, len, "malformed base64url in header");
        memcpy(c, tok, len);
        c[(size_t)(d1 - tok) + 5] = bad[k];
        assert_refused(c, len, "malformed base64url in payload");
        memcpy(c, tok, len);
        c[len - 3] = bad[k];
        assert_refused(c, len, "malformed base64url in signature");
        free(c);
    }
    /* the last signature character with its unused bits set: a second spelling of the same signature */
    char *c = strdup(tok);
    char last = c[len - 1];
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    c[len - 1] = alpha[(strchr(alpha, last) - alpha) ^ 1];
    assert_refused(c, len, "malformed base64url in signature");
    free(c);
    /* parts: two, four (a JWE has five), empty ones */
    assert_refused("a.b", 3, "token is not three dot-separated parts");
    assert_refused("a.b.c.d", 7, "token is not three dot-separated parts");
    assert_refused("", 0, "token is not three dot-separated parts");
    assert_refused("..", 2, "token has an empty part");
    assert_refused("eyJ9..c2ln", 10, "token has an empty part");
    free(tok);
}

static void test_duplicate_keys(void **state)
{
    const char *why;
    char *t = token_raw("{\"alg\":\"RS256\",\"alg\":\"RS256\"}", claims_ok, "x", 1);
    assert_refused(t, strlen(t), "header: repeated key \"alg\"");
    free(t);
    /* the same name spelled with an escape */
    t = token_raw("{\"alg\":\"RS256\",\"kid\":\"r1\",\"\\u006bid\":\"e1\"}", claims_ok, "x", 1);
    assert_refused(t, strlen(t), "header: repeated key \"kid\"");
    free(t);
    t = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"sub\":\"alice\",\"exp\":1800000300,\"sub\":\"admin\"}",
              WD_JWT_RS256, rsa);
    assert_refused(t, strlen(t), "payload: repeated key \"sub\"");
    free(t);
    t = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"sub\":\"alice\",\"org\":{\"role\":\"u\",\"role\":\"admin\"}}",
              WD_JWT_RS256, rsa);
    assert_refused(t, strlen(t), "payload: repeated key \"role\"");
    free(t);
    t = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"sub\":\"alice\",\"l\":[1,{\"a\":[{\"x\":1,\"x\":1}]}]}",
              WD_JWT_RS256, rsa);
    assert_refused(t, strlen(t), "payload: repeated key \"x\"");
    free(t);
    /* the same name in different objects is fine */
    t = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}",
              "{\"iss\":\"https://idp.example\",\"aud\":\"warden\",\"exp\":1800000300,"
              "\"a\":{\"aud\":1,\"b\":{\"aud\":2}}}",
              WD_JWT_RS256, rsa);
    assert_int_equal(accept_all(t, &ks, &expect, &why), 0);
    free(t);
    /* a name of control characters and quotes does not reach the log as such */
    t = token("{\"alg\":\"RS256\"}", "{\"\\n\\\"x\":1,\"\\n\\\"x\":2}", WD_JWT_RS256, rsa);
    assert_refused(t, strlen(t), "payload: repeated key \"??x\"");
    free(t);
}

static void test_header_members_refused(void **state)
{
    static const struct {
        const char *member, *why;
    } cases[] = {
        {"\"jku\":\"https://evil.example/jwks\"", "header has jku"},
        {"\"x5u\":\"https://evil.example/cert\"", "header has x5u"},
        {"\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}", "header has jwk"},
        {"\"x5c\":[\"MIIB\"]", "header has x5c"},
        {"\"crit\":[\"exp\"]", "header has crit"},
        {"\"crit\":[]", "header has crit"},
        {"\"kid\":1", "kid is not a string of at most 127 bytes"},
        {"\"kid\":\"a\\u0000b\"", "kid is not a string of at most 127 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *h = fmt("{\"alg\":\"RS256\",%s}", cases[i].member);
        char *t = token(h, claims_ok, WD_JWT_RS256, rsa);
        assert_refused(t, strlen(t), cases[i].why);
        free(t);
        free(h);
    }
    char kid[130];
    memset(kid, 'k', 128);
    kid[128] = '\0';
    char *h = fmt("{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    char *t = token(h, claims_ok, WD_JWT_RS256, rsa);
    assert_refused(t, strlen(t), "kid is not a string of at most 127 bytes");
    free(t);
    free(h);
    kid[127] = '\0'; /* 127 bytes: fits */
    h = fmt("{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    t = token(h, claims_ok, WD_JWT_RS256, rsa);
    struct wd_jwt j;
    const char *why;
    assert_int_equal(wd_jwt_decode(t, strlen(t), &j, &why), 0);
    assert_int_equal(strlen(j.kid), 127);
    wd_jwt_free(&j);
    free(t);
    free(h);
}

static void test_not_json(void **state)
{
    static const struct {
        const char *hdr, *payload, *why;
    } cases[] = {
        {"alg: RS256", "{}", "header is not JSON"},
        {"{\"alg\":\"RS256\"", "{}", "header is not JSON"},
        {"{\"alg\":\"RS256\"} ", "{}", NULL}, /* trailing whitespace is JSON */
        {"[\"RS256\"]", "{}", "header is not a JSON object"},
        {"\"RS256\"", "{}", "header is not a JSON object"},
        {"{\"alg\":\"RS256\"}", "[{\"sub\":\"alice\"}]", "payload is not a JSON object"},
        {"{\"alg\":\"RS256\"}", "\"alice\"", "payload is not a JSON object"},
        {"{\"alg\":\"RS256\"}", "{\"sub\":alice}", "payload is not JSON"},
        {"{\"alg\":\"RS256\"}", "{\"sub\":\"a\xff\"}", "payload is not JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = token(cases[i].hdr, cases[i].payload, WD_JWT_RS256, rsa);
        if (cases[i].why) {
            assert_refused(t, strlen(t), cases[i].why);
        } else {
            struct wd_jwt j;
            const char *why;
            assert_int_equal(wd_jwt_decode(t, strlen(t), &j, &why), 0);
            wd_jwt_free(&j);
        }
        free(t);
    }
}

/* ---- claims ---- */

static int claims_rc(const char *claims, const struct wd_jwt_expect *e, const char **why)
{
    char *t = token("{\"alg\":\"EdDSA\",\"kid\":\"d1\"}", claims, WD_JWT_EDDSA, ed);
    int rc = accept_all(t, &ks, e, why);
    free(t);
    return rc;
}

static void assert_claims(const char *claims, const struct wd_jwt_expect *e, const char *want_why)
{
    const char *why = NULL;
    int rc = claims_rc(claims, e, &why);
    if (want_why == NULL) {
        if (rc != 0)
            print_error("claims %s: %s\n", claims, why);
        assert_int_equal(rc, 0);
        return;
    }
    if (rc == 0 || strcmp(why, want_why) != 0)
        print_error("claims %s: rc %d why \"%s\", want \"%s\"\n", claims, rc, rc ? why : "", want_why);
    assert_int_equal(rc, -1);
    assert_string_equal(why, want_why);
}

#define BASE "\"iss\":\"https://idp.example\",\"aud\":\"warden\""

static void test_claims_time(void **state)
{
    assert_claims("{" BASE ",\"exp\":1800000300}", &expect, NULL);
    assert_claims("{" BASE "}", &expect, "token has no exp");
    assert_claims("{" BASE ",\"exp\":\"1800000300\"}", &expect, "exp is not a NumericDate");
    assert_claims("{" BASE ",\"exp\":-5}", &expect, "exp is not a NumericDate");
    assert_claims("{" BASE ",\"exp\":1e400}", &expect, "exp is not a NumericDate");
    assert_claims("{" BASE ",\"exp\":99999999999999999999}", &expect, "exp is not a NumericDate");
    /* expired: now >= exp + skew (60) */
    assert_claims("{" BASE ",\"exp\":1799999941}", &expect, NULL);
    assert_claims("{" BASE ",\"exp\":1799999940}", &expect, "token expired");
    assert_claims("{" BASE ",\"exp\":1700000000}", &expect, "token expired");
    /* a fraction counts at the stricter second: exp rounded down */
    assert_claims("{" BASE ",\"exp\":1799999941.9}", &expect, NULL);
    assert_claims("{" BASE ",\"exp\":1799999940.9}", &expect, "token expired");
    assert_claims("{" BASE ",\"exp\":1.8000003e9}", &expect, NULL);
    /* nbf: now >= nbf - skew */
    assert_claims("{" BASE ",\"exp\":1800000300,\"nbf\":1800000060}", &expect, NULL);
    assert_claims("{" BASE ",\"exp\":1800000300,\"nbf\":1800000061}", &expect, "token not yet valid (nbf)");
    assert_claims("{" BASE ",\"exp\":1800000300,\"nbf\":1800000060.5}", &expect, "token not yet valid (nbf)");
    assert_claims("{" BASE ",\"exp\":1800000300,\"nbf\":null}", &expect, "nbf is not a NumericDate");
    /* iat: not after now + skew */
    assert_claims("{" BASE ",\"exp\":1800000300,\"iat\":1800000060}", &expect, NULL);
    assert_claims("{" BASE ",\"exp\":1800000300,\"iat\":1800000061}", &expect, "token issued in the future (iat)");
    assert_claims("{" BASE ",\"exp\":1800000300,\"iat\":true}", &expect, "iat is not a NumericDate");
    /* lifetime: exp - iat, or exp - now without iat */
    assert_claims("{" BASE ",\"exp\":1800086400,\"iat\":1800000000}", &expect, NULL);
    assert_claims("{" BASE ",\"exp\":1800086401,\"iat\":1800000000}", &expect, "token lifetime too long");
    assert_claims("{" BASE ",\"exp\":1800086401}", &expect, "token lifetime too long");
    struct wd_jwt_expect unlimited = expect;
    unlimited.max_lifetime = 0;
    assert_claims("{" BASE ",\"exp\":253402300799,\"iat\":0}", &unlimited, NULL);
    /* a negative skew is no skew */
    struct wd_jwt_expect noskew = expect;
    noskew.skew = -100;
    assert_claims("{" BASE ",\"exp\":1800000001}", &noskew, NULL);
    assert_claims("{" BASE ",\"exp\":1800000000}", &noskew, "token expired");
}

static void test_claims_iss_aud(void **state)
{
    assert_claims("{\"iss\":\"https://idp.example/\",\"aud\":\"warden\",\"exp\":1800000300}", &expect, "wrong issuer");
    assert_claims("{\"iss\":\"https://IDP.example\",\"aud\":\"warden\",\"exp\":1800000300}", &expect, "wrong issuer");
    assert_claims("{\"aud\":\"warden\",\"exp\":1800000300}", &expect, "token has no iss");
    assert_claims("{\"iss\":[\"https://idp.example\"],\"aud\":\"warden\",\"exp\":1800000300}", &expect,
                  "iss is not a string");
    assert_claims("{\"iss\":\"https:\\/\\/idp.example\",\"aud\":\"warden\",\"exp\":1800000300}", &expect, NULL);
    const char *iss = "\"iss\":\"https://idp.example\",\"exp\":1800000300";
    char *c;
#define AUD(a, want)                   \
    c = fmt("{%s,\"aud\":%s}", iss, a); \
    assert_claims(c, &expect, want);   \
    free(c)
    AUD("\"warden\"", NULL);
    AUD("\"wardenx\"", "aud does not match");
    AUD("\"\"", "aud does not match");
    AUD("[\"other\",\"warden\"]", NULL);
    AUD("[\"other\",\"another\"]", "aud does not match");
    AUD("[]", "aud does not match");
    AUD("[\"warden\",1]", "aud has an element that is not a string");
    AUD("{\"warden\":1}", "aud is not a string or an array");
#undef AUD
    assert_claims("{\"iss\":\"https://idp.example\",\"exp\":1800000300}", &expect, "token has no aud");
    static const char *const two[] = {"api://warden", "warden-cli", NULL};
    struct wd_jwt_expect e2 = expect;
    e2.audiences = two;
    assert_claims("{\"iss\":\"https://idp.example\",\"exp\":1800000300,\"aud\":[\"x\",\"warden-cli\"]}", &e2, NULL);
    assert_claims("{\"iss\":\"https://idp.example\",\"exp\":1800000300,\"aud\":\"warden\"}", &e2, "aud does not match");
    static const char *const none[] = {NULL};
    e2.audiences = none;
    assert_claims("{" BASE ",\"exp\":1800000300}", &e2, "no audience configured");
    e2 = expect;
    e2.issuer = NULL;
    assert_claims("{" BASE ",\"exp\":1800000300}", &e2, "no issuer configured");
}

static void test_claim_strings(void **state)
{
    char *t = token("{\"alg\":\"EdDSA\"}",
                    "{\"groups\":[\"eng\",\"m\\u00e9l\",\"ops\"],\"roles\":\"admin\",\"bad\":[\"a\",2],\"n\":3}",
                    WD_JWT_EDDSA, ed);
    struct wd_jwt j;
    const char *why;
    assert_int_equal(wd_jwt_decode(t, strlen(t), &j, &why), 0);
    struct wd_arena a = {0};
    struct wd_str out[4];
    assert_int_equal(wd_jwt_claim_strings(&j, "groups", &a, out, 4), 3);
    assert_string_equal(out[0].p, "eng");
    assert_int_equal(out[1].n, 4);
    assert_string_equal(out[1].p, "m\xc3\xa9l");
    assert_string_equal(out[2].p, "ops");
    assert_int_equal(wd_jwt_claim_strings(&j, "groups", &a, out, 2), 2);
    assert_int_equal(wd_jwt_claim_strings(&j, "roles", &a, out, 4), 1);
    assert_string_equal(out[0].p, "admin");
    assert_int_equal(wd_jwt_claim_strings(&j, "absent", &a, out, 4), 0);
    assert_int_equal(wd_jwt_claim_strings(&j, "bad", &a, out, 4), -1);
    assert_int_equal(wd_jwt_claim_strings(&j, "n", &a, out, 4), -1);
    struct wd_str s;
    assert_int_equal(wd_jwt_claim_str(&j, "n", &a, &s), -1);
    assert_int_equal(wd_jwt_claim_str(&j, "groups", &a, &s), -1);
    assert_int_equal(wd_jwt_claim_str(&j, "absent", &a, &s), -1);
    assert_int_equal(wd_jwt_exp(&j), 0);
    /* without an exp the claims are refused */
    assert_int_equal(wd_jwt_check_claims(&j, &expect, &why), -1);
    assert_string_equal(why, "token has no exp");
    wd_arena_free(&a);
    wd_jwt_free(&j);
    free(t);
}

/* ---- JWKS ---- */

static int parse_one(const char *jwk, struct wd_jwks *set)
{
    char *doc = fmt("{\"keys\":[%s]}", jwk);
    const char *why = NULL;
    int n = wd_jwks_parse(doc, strlen(doc), set, &why);
    free(doc);
    return n;
}

static void test_jwks_skipped(void **state)
{
    char *rsa_ok = jwk_rsa(rsa, "");
    struct {
        char *jwk;
        int kept;
    } cases[] = {
        {strdup("{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"alg\":\"HS256\"}"), 0},
        {jwk_rsa(rsa, ",\"alg\":\"HS256\""), 0},
        {jwk_rsa(rsa, ",\"alg\":\"RS384\""), 0},
        {jwk_rsa(rsa, ",\"alg\":\"none\""), 0},
        {jwk_rsa(rsa, ",\"alg\":5"), 0},
        {jwk_rsa(rsa, ",\"use\":\"enc\""), 0},
        {jwk_rsa(rsa, ",\"use\":\"sig\""), 1},
        {jwk_rsa(rsa, ",\"key_ops\":[\"encrypt\"]"), 0},
        {jwk_rsa(rsa, ",\"key_ops\":\"verify\""), 0},
        {jwk_rsa(rsa, ",\"key_ops\":[\"sign\",\"verify\"]"), 1},
        {jwk_rsa(rsa, ",\"d\":\"AQAB\""), 0},
        {jwk_rsa(rsa, ",\"p\":\"AQAB\""), 0},
        {jwk_rsa(rsa1024, ""), 0},
        {jwk_ec(ec384, "P-384", 48, ""), 0},
        {jwk_ec(ec, "P-384", 32, ""), 0},
        {jwk_ec(ec, "P-256", 32, ",\"alg\":\"ES384\""), 0},
        {jwk_ec(ec, "P-256", 32, ",\"alg\":\"RS256\""), 0},
        {jwk_ec(ec, "P-256", 32, ",\"d\":\"AAAA\""), 0},
        {jwk_ec(ec, "P-256", 0, ""), -2}, /* short coordinates when a leading byte is zero: kept only if 32 */
        {jwk_ed(ed, ",\"alg\":\"EdDSA\""), 1},
        {jwk_ed(ed, ",\"alg\":\"ES256\""), 0},
        {strdup("{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AAAA\"}"), 0},
        {strdup("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}"), 0},
        {strdup("{\"kty\":\"RSA-X\",\"n\":\"AQAB\",\"e\":\"AQAB\"}"), 0},
        {strdup("{\"n\":\"AQAB\",\"e\":\"AQAB\"}"), 0},
        {strdup("\"not a key\""), 0},
        {fmt("%.*s,\"kid\":7}", (int)strlen(rsa_ok) - 1, rsa_ok), 0},
        {fmt("%.*s,\"e\":\"AQAB\"}", (int)strlen(rsa_ok) - 1, rsa_ok), -1}, /* repeated member: not a JWKS */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wd_jwks set;
        int n = parse_one(cases[i].jwk, &set);
        if (cases[i].kept == -2) {
            assert_true(n == 0 || n == 1);
        } else {
            if (n != cases[i].kept)
                print_error("case %zu: kept %d, want %d\n", i, n, cases[i].kept);
            assert_int_equal(n, cases[i].kept);
        }
        wd_jwks_free(&set);
        free(cases[i].jwk);
    }
    free(rsa_ok);
}

static void test_jwks_key_checks(void **state)
{
    struct wd_jwks set;
    /* an EC point off the curve: y + 1 */
    BIGNUM *x = NULL, *y = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    assert_int_equal(BN_add_word(y, 1), 1);
    uint8_t xb[32], yb[32];
    assert_int_equal(BN_bn2binpad(x, xb, 32), 32);
    assert_int_equal(BN_bn2binpad(y, yb, 32), 32);
    char *xs = b64(xb, 32), *ys = b64(yb, 32);
    char *off = fmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", xs, ys);
    assert_int_equal(parse_one(off, &set), 0);
    wd_jwks_free(&set);
    /* the same x with its real y: kept */
    assert_int_equal(BN_sub_word(y, 1), 1);
    assert_int_equal(BN_bn2binpad(y, yb, 32), 32);
    free(ys);
    ys = b64(yb, 32);
    char *on = fmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", xs, ys);
    assert_int_equal(parse_one(on, &set), 1);
    assert_int_equal(set.keys[0].algs, WD_JWT_ES256);
    assert_string_equal(set.keys[0].kid, "");
    wd_jwks_free(&set);
    /* an RSA modulus that is even, or an exponent of 1 or even */
    char *n = bn_b64(rsa, OSSL_PKEY_PARAM_RSA_N, 0);
    char *bad_e = fmt("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQ\"}", n);
    assert_int_equal(parse_one(bad_e, &set), 0);
    wd_jwks_free(&set);
    char *even_e = fmt("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAA\"}", n);
    assert_int_equal(parse_one(even_e, &set), 0);
    wd_jwks_free(&set);
    /* n + 1: an even modulus (not a product of two odd primes), refused by the public key check */
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
    assert_int_equal(BN_add_word(bn, 1), 1);
    uint8_t nb[256];
    assert_int_equal(BN_bn2binpad(bn, nb, 256), 256);
    char *ns = b64(nb, 256);
    char *even_n = fmt("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", ns);
    assert_int_equal(parse_one(even_n, &set), 0);
    wd_jwks_free(&set);
    BN_free(bn);
    free(ns);
    free(even_n);
    char *padded_n = fmt("{\"kty\":\"RSA\",\"n\":\"%s==\",\"e\":\"AQAB\"}", n);
    assert_int_equal(parse_one(padded_n, &set), 0);
    wd_jwks_free(&set);
    char *rs = jwk_rsa(rsa, "");
    assert_int_equal(parse_one(rs, &set), 1);
    assert_int_equal(set.keys[0].algs, WD_JWT_RS256 | WD_JWT_PS256);
    wd_jwks_free(&set);
    BN_free(x);
    BN_free(y);
    free(xs);
    free(ys);
    free(off);
    free(on);
    free(n);
    free(bad_e);
    free(even_e);
    free(padded_n);
    free(rs);
}

static void test_jwks_documents(void **state)
{
    struct wd_jwks set;
    const char *why;
    static const struct {
        const char *doc, *why;
    } bad[] = {
        {"", "JWKS is not JSON"},
        {"{\"keys\":[}", "JWKS is not JSON"},
        {"[]", "JWKS is not an object"},
        {"{}", "JWKS has no \"keys\" array"},
        {"{\"keys\":{}}", "JWKS has no \"keys\" array"},
        {"{\"keys\":[],\"keys\":[]}", "JWKS has a repeated member"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(wd_jwks_parse(bad[i].doc, strlen(bad[i].doc), &set, &why), -1);
        assert_string_equal(why, bad[i].why);
        assert_null(set.keys);
        assert_int_equal(set.n, 0);
    }
    assert_int_equal(wd_jwks_parse("{\"keys\":[]}", 11, &set, &why), 0);
    wd_jwks_free(&set);
    /* at most 64 keys kept */
    char *one = jwk_ed(ed, "");
    struct wd_buf b = {0};
    wd_buf_puts(&b, "{\"keys\":[");
    for (int i = 0; i < 70; i++) {
        if (i)
            wd_buf_putc(&b, ',');
        wd_buf_puts(&b, one);
    }
    wd_buf_puts(&b, "]}");
    assert_int_equal(wd_jwks_parse(b.p, b.n, &set, &why), WD_JWKS_MAX_KEYS);
    assert_int_equal(set.n, WD_JWKS_MAX_KEYS);
    wd_jwks_free(&set);
    wd_buf_free(&b);
    free(one);
}

static void test_jwks_find(void **state)
{
    /* by kid */
    assert_ptr_equal(wd_jwks_find(&ks, WD_STR("r1"), WD_JWT_RS256), &ks.keys[0]);
    assert_ptr_equal(wd_jwks_find(&ks, WD_STR("e1"), WD_JWT_ES256), &ks.keys[1]);
    assert_ptr_equal(wd_jwks_find(&ks, WD_STR("d1"), WD_JWT_EDDSA), &ks.keys[2]);
    assert_null(wd_jwks_find(&ks, WD_STR("r"), WD_JWT_RS256));
    assert_null(wd_jwks_find(&ks, WD_STR("r1x"), WD_JWT_RS256));
    /* the kid's key even for another alg (verify then refuses it, saying why) */
    assert_ptr_equal(wd_jwks_find(&ks, WD_STR("r1"), WD_JWT_ES256), &ks.keys[0]);
    /* without a kid: the only key for the alg */
    assert_ptr_equal(wd_jwks_find(&ks, WD_STR_NULL, WD_JWT_PS256), &ks.keys[0]);
    assert_ptr_equal(wd_jwks_find(&ks, WD_STR_NULL, WD_JWT_ES256), &ks.keys[1]);
    assert_null(wd_jwks_find(&ks, WD_STR_NULL, WD_JWT_NONE_ALG));
    const char *why;
    char *t = token("{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", claims_ok, WD_JWT_ES256, ec);
    assert_int_equal(accept_all(t, &ks, &expect, &why), 0);
    free(t);
    /* two RSA keys, no kid: the token does not say which, so none */
    char *a = jwk_rsa(rsa, ",\"kid\":\"a\""), *b = jwk_rsa(rsa_b, ",\"kid\":\"b\"");
    char *doc = fmt("{\"keys\":[%s,%s]}", a, b);
    struct wd_jwks two;
    assert_int_equal(wd_jwks_parse(doc, strlen(doc), &two, &why), 2);
    assert_null(wd_jwks_find(&two, WD_STR_NULL, WD_JWT_RS256));
    assert_ptr_equal(wd_jwks_find(&two, WD_STR("b"), WD_JWT_RS256), &two.keys[1]);
    t = token("{\"alg\":\"RS256\"}", claims_ok, WD_JWT_RS256, rsa);
    assert_verify_refused(t, &two, "no key for the token");
    free(t);
    t = token("{\"alg\":\"RS256\",\"kid\":\"b\"}", claims_ok, WD_JWT_RS256, rsa_b);
    assert_int_equal(accept_all(t, &two, &expect, &why), 0);
    free(t);
    /* two keys sharing a kid: the one allowing the alg */
    free(doc);
    char *e = jwk_ec(ec, "P-256", 32, ",\"kid\":\"a\"");
    doc = fmt("{\"keys\":[%s,%s]}", a, e);
    wd_jwks_free(&two);
    assert_int_equal(wd_jwks_parse(doc, strlen(doc), &two, &why), 2);
    assert_ptr_equal(wd_jwks_find(&two, WD_STR("a"), WD_JWT_ES256), &two.keys[1]);
    assert_ptr_equal(wd_jwks_find(&two, WD_STR("a"), WD_JWT_RS256), &two.keys[0]);
    wd_jwks_free(&two);
    free(a);
    free(b);
    free(e);
    free(doc);
}

/* RFC 8037 appendix A.4: the Ed25519 example key and JWS. Its payload is text, not claims, so decode refuses
 * it; the signature is checked on the parts as sent. */
static void test_rfc8037_example(void **state)
{
    const char *jwks = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                       "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";
    const char *jws = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
                      "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    struct wd_jwks set;
    const char *why;
    assert_int_equal(wd_jwks_parse(jwks, strlen(jwks), &set, &why), 1);
    assert_refused(jws, strlen(jws), "payload is not JSON");
    const char *d2 = strrchr(jws, '.');
    uint8_t sig[64];
    assert_int_equal(wd_b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig), 64);
    struct wd_jwt t = {.alg = WD_JWT_EDDSA, .signing_input = jws, .signing_input_len = (size_t)(d2 - jws),
                       .sig = sig, .sig_len = 64};
    const struct wd_jwk *k = wd_jwks_find(&set, WD_STR_NULL, WD_JWT_EDDSA);
    assert_non_null(k);
    assert_int_equal(wd_jwt_verify(&t, k, &why), 0);
    sig[10] ^= 1;
    assert_int_equal(wd_jwt_verify(&t, k, &why), -1);
    assert_string_equal(why, "bad signature");
    wd_jwks_free(&set);
}

/* The key fetcher's reading of a discovery document (authz/oidc.c). */
static void test_discovery(void **state)
{
    (void)state;
    char uri[64];
    const char *why = NULL;
    const char ok[] = "{\"issuer\":\"https://idp.example/\",\"jwks_uri\":\"https://idp.example/k\"}";
    assert_int_equal(wd_oidc_discovery(ok, strlen(ok), "https://idp.example/", uri, sizeof(uri), &why), 0);
    assert_string_equal(uri, "https://idp.example/k");
    /* the issuer compared byte for byte: a missing trailing slash is another issuer */
    assert_int_equal(wd_oidc_discovery(ok, strlen(ok), "https://idp.example", uri, sizeof(uri), &why), -1);
    assert_string_equal(why, "discovery: its issuer is not the configured one");
    const char *bad[] = {"[]", "{\"issuer\":\"https://idp.example/\"}",
                         "{\"issuer\":\"https://idp.example/\",\"jwks_uri\":\"file:///etc/passwd\"}",
                         "{\"issuer\":\"https://idp.example/\",\"jwks_uri\":\"https://a\\u0000b\"}",
                         "{\"issuer\":\"https://idp.example/\",\"jwks_uri\":\"https://idp.example/"
                         "a-very-long-path-that-does-not-fit-in-the-buffer-given\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(wd_oidc_discovery(bad[i], strlen(bad[i]), "https://idp.example/", uri, sizeof(uri), &why), -1);
        assert_non_null(why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_round_trip),
        cmocka_unit_test(test_b64url_strict),
        cmocka_unit_test(test_b64_std),
        cmocka_unit_test(test_valid_tokens),
        cmocka_unit_test(test_typ_refused),
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs256_with_rsa_public_key),
        cmocka_unit_test(test_alg_pinned_by_key),
        cmocka_unit_test(test_alg_key_type_mismatch),
        cmocka_unit_test(test_kid_mismatch),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_signature_length),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_padding_and_alphabet),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_header_members_refused),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_claims_time),
        cmocka_unit_test(test_claims_iss_aud),
        cmocka_unit_test(test_claim_strings),
        cmocka_unit_test(test_jwks_skipped),
        cmocka_unit_test(test_jwks_key_checks),
        cmocka_unit_test(test_jwks_documents),
        cmocka_unit_test(test_jwks_find),
        cmocka_unit_test(test_rfc8037_example),
        cmocka_unit_test(test_discovery),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
