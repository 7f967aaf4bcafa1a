/* libFuzzer driver for authz/jwt.c and authz/jwks.c. The first byte picks what the rest is: (0) a JWKS document;
 * (1) a compact token, decoded, verified against a fixed JWKS (the fixed test keys below: one RSA, one P-256, one
 * Ed25519) and its claims checked; (2) header JSON, NUL, payload JSON, NUL, a byte choosing RS256, PS256, ES256
 * or EdDSA: the driver encodes the parts and signs them with the matching test key, so that mutations of the JSON
 * reach the header checks, the signature and the claim checks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "authz/jwks.h"
#include "authz/jwt.h"
#include "authz/oidc.h"
#include "lib/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test keys made for this driver (never used anywhere else); the seeds in tests/fuzz/corpus/jwt are signed
 * with them. */
static const char jwks_json[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"q3ZXj9J27njkLdKydwzy9iyLPiKhPQUaLh0ITDqibKFTW1Pq6zBlgp-vd1zWOTo"
    "uy_RWV1KDaqROElWQf2d4KRN5y0KkiURU0B57y1th8ITctyFcyfZnP3BB0lh0BkmEynbWWv03OCe7hrZbG7XqEJDNA"
    "i3sPixukLGd20lvqtLznWdXt1Q5L6jC4kYwkPV8TOaq7TRPuFKEh_C_5Y5no2YmhGMvRLUc0g8Rfx88LTI7SORtUOP"
    "fiO9QIA4AFNlPWA_voZvdlSANoobAF09NE7S-_gZRwEWbyysFQsdNEx8D9amEZXTcHkFoZPLoWkeH4QDPsOVYmI6bR"
    "D1PvjX6gQ\",\"e\":\"AQAB\",\"kid\":\"fz-rsa\",\"use\":\"sig\"},{\"kty\":\"EC\",\"x\":\"t-PdoOs5pqCnTJIj5s9MS_n"
    "wJHCvXDgOqWydZ39Lt0w\",\"y\":\"kfYR4ZusWHw5Ceg-_2W2Z0yeBkPKnhFBxMiwbPf6n1k\",\"crv\":\"P-256\",\"kid"
    "\":\"fz-ec\",\"alg\":\"ES256\"},{\"crv\":\"Ed25519\",\"x\":\"x6n_myBxylyIarTVfHh6_Gx7oWmqTcJH37PUDw9BO5A"
    "\",\"kty\":\"OKP\",\"kid\":\"fz-ed\"}]}";
static const char rsa_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCrdleP0nbueOQt\n"
    "0rJ3DPL2LIs+IqE9BRouHQhMOqJsoVNbU+rrMGWCn693XNY5Oi7L9FZXUoNqpE4S\n"
    "VZB/Z3gpE3nLQqSJRFTQHnvLW2HwhNy3IVzJ9mc/cEHSWHQGSYTKdtZa/Tc4J7uG\n"
    "tlsbteoQkM0CLew+LG6QsZ3bSW+q0vOdZ1e3VDkvqMLiRjCQ9XxM5qrtNE+4UoSH\n"
    "8L/ljmejZiaEYy9EtRzSDxF/HzwtMjtI5G1Q49+I71AgDgAU2U9YD++hm92VIA2i\n"
    "hsAXT00TtL7+BlHARZvLKwVCx00THwP1qYRldNweQWhk8uhaR4fhAM+w5ViYjptE\n"
    "PU++NfqBAgMBAAECggEAAo6x0KXZe0YXVS2i1s69IvnYG9WlZQUZ9l0dfhGT0Z34\n"
    "YdDXHKnsoa2jDts2IMVi5EzhKs1Cw4ju1ywqixPugWJWezcjwB5iS3Zg71AOHmnE\n"
    "5wBa43JG6PXSLYJ/PIbFMcXi/ZlwROimzeQTaM7mTlfyjtlDgEvmXEch7R7jyP71\n"
    "OEAVo5loSo73s1cuMjXvJTqN7IwKb5WDVyQSDtf4NS13nQ9y71g5DaHvbjENI/Gd\n"
    "tPJmTr9kA60xikMFnRfB7geRTFJHbAElM4fZu41omcQW3/SAJAed3w+gGOAQ/8sf\n"
    "xB6dFCPJXYOMasAbFUgpOqbtwX7xH35gGUBBL1J5/wKBgQDkgxxB/DoaBmDp1pSO\n"
    "C1AqBaHMCLb3GiKSXj2U5LdfmUHk+QyTP4wyHZdgu8C6YAUcAL9elSj0nvGv+jMM\n"
    "hewCWrKXjA+6OyuCThkSTZlxAqA/3zZl1MFi4Tsm5kRTE0NJwkwww/SmHzGmhI5n\n"
    "UAUawCuu8fEX7cpSwxphIbVLMwKBgQDAFmqKfKDk5isaTqN7qNYSM/e0C+nntaPa\n"
    "a9ngQWOnfmBIvTZl3Ml71NB0oCY+fxCq2qVRejR/hT0T6oU21avz3vxbpheIPJsN\n"
    "1lBHJsa2LXIWFvzxJl/54dG1owyAx6ZqpwWKblYLfbWNrn7/sc6JMx+pFKwR76UY\n"
    "BW4+NOHDewKBgF95gDb5oXT6MUfCRfNLOsUz8TQEeB2qJ8Or6GLrZMpmiCeY/u4O\n"
    "4Q6XWoYqLA4yzC+1CEAGZkQ+nJCAIxAabE9XgcLb3D5dNoKNCuCg13lmNXo6Usod\n"
    "KGed308TanyjUbvhmF/Pn8pAwkfmnnD/+AIDRL0ljSwISD5oEf9/S/YNAoGAZCwM\n"
    "eZYOzfAecESsSvO8V5fUSIeh/p0iCukNoT5YeuOT0Lsj4DEovbQ41WkjKJpZFdCa\n"
    "QAhL0miodndp6zO4zZ/u2NigEwMQFUI7cS+OlzjR8yUf2Z6alJSoKWITRiFX7uyV\n"
    "HiD2LF3tTSq/vhZ6z9/iVema5mukHAfQ+w3W4nsCgYAs8+6ZlQzfSCyOax3DXAGY\n"
    "TI+reUn8UmylXmqNQBWNFc5xgkHRVe5VR3SO+YUqaBliOFRBz2acc/+/Zx4nlOs6\n"
    "jCdB1x+jW1PVSpC7Hu8IDpXDoK8Iy+l75DDFjOM5vvOcKLzIqeI9YXA3nXAfAvLm\n"
    "BIqfCJYX2y/V0glJV25CMg==\n"
    "-----END PRIVATE KEY-----\n";
static const char ec_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfZV672wrUpfq7m1/\n"
    "1wwY06pmioabzoG+uMbeMvj0xhyhRANCAAS3492g6zmmoKdMkiPmz0xL+fAkcK9c\n"
    "OA6pbJ1nf0u3TJH2EeGbrFh8OQnoPv9ltmdMngZDyp4RQcTIsGz3+p9Z\n"
    "-----END PRIVATE KEY-----\n";
static const char ed_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIN3y5mRFIquTgGw53fhmV8G3cDvEZL3MSq69XDWLWp0O\n"
    "-----END PRIVATE KEY-----\n";

static struct wd_jwks ks;
static EVP_PKEY *rsa_key, *ec_key, *ed_key;
static const char *const auds[] = {"warden", NULL};
static const struct wd_jwt_expect expect = {
    .issuer = "https://idp.example", .audiences = auds, .now = 1800000000, .skew = 60, .max_lifetime = 86400};

static EVP_PKEY *load(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (k == NULL)
        __builtin_trap();
    return k;
}

static void init(void)
{
    const char *why;
    if (wd_jwks_parse(jwks_json, sizeof jwks_json - 1, &ks, &why) != 3)
        __builtin_trap();
    rsa_key = load(rsa_pem);
    ec_key = load(ec_pem);
    ed_key = load(ed_pem);
}

static void check_jwks(const char *doc, size_t n)
{
    struct wd_jwks set;
    const char *why = NULL;
    int rc = wd_jwks_parse(doc, n, &set, &why);
    if (rc < 0) {
        if (why == NULL || set.keys != NULL || set.n != 0)
            __builtin_trap();
        return;
    }
    if ((size_t)rc != set.n || set.n > WD_JWKS_MAX_KEYS)
        __builtin_trap();
    for (size_t i = 0; i < set.n; i++) {
        const struct wd_jwk *k = &set.keys[i];
        if (k->pkey == NULL || k->algs == 0 || (k->algs & ~15u) != 0 || strlen(k->kid) >= sizeof k->kid)
            __builtin_trap();
        unsigned low = k->algs & -k->algs;
        if (k->kid[0] && wd_jwks_find(&set, (struct wd_str){k->kid, strlen(k->kid)}, (enum wd_jwt_alg)low) == NULL)
            __builtin_trap();
    }
    wd_jwks_free(&set);
}

/* The whole path for a token in tok[0..n) (an allocation of exactly n bytes). signer: the key that signed it
 * (mode 2), or NULL. */
static void check_token(const char *tok, size_t n, enum wd_jwt_alg signed_alg, const struct wd_jwk *signer)
{
    struct wd_jwt t;
    const char *why = NULL;
    if (wd_jwt_decode(tok, n, &t, &why) != 0) {
        if (why == NULL || why[0] == '\0')
            __builtin_trap();
        wd_jwt_free(&t);
        return;
    }
    if (t.alg == WD_JWT_NONE_ALG || t.signing_input != tok || t.signing_input_len >= n || t.sig_len == 0 ||
        wd_json_type(&t.claims, 0) != WD_J_OBJ || strlen(t.kid) >= sizeof t.kid)
        __builtin_trap();
    const struct wd_jwk *key = wd_jwks_find(&ks, (struct wd_str){t.kid, strlen(t.kid)}, t.alg);
    int vr = wd_jwt_verify(&t, key, &why);
    /* signed here with the key the token names, for the alg it names: it must verify */
    if (signer != NULL && key == signer && t.alg == signed_alg && vr != 0)
        __builtin_trap();
    int cr = wd_jwt_check_claims(&t, &expect, &why);
    if (cr == 0 && wd_jwt_exp(&t) <= 0)
        __builtin_trap();
    struct wd_arena a = {0};
    struct wd_str s, many[8];
    if (wd_jwt_claim_str(&t, "sub", &a, &s) == 0 && s.p[s.n] != '\0')
        __builtin_trap();
    int g = wd_jwt_claim_strings(&t, "groups", &a, many, 8);
    if (g > 8)
        __builtin_trap();
    for (int i = 0; i < g; i++)
        if (many[i].p[many[i].n] != '\0')
            __builtin_trap();
    wd_arena_free(&a);
    wd_jwt_free(&t);
}

static char *b64(const uint8_t *p, size_t n, char *o)
{
    return o + wd_b64url_encode(p, n, o);
}

/* The JWS signature of in[0..n) by alg's test key (ES256 as r||s) into sig[512]; its length, or 0. */
static size_t sign(enum wd_jwt_alg alg, const char *in, size_t n, uint8_t *sig)
{
    EVP_PKEY *k = alg == WD_JWT_ES256 ? ec_key : alg == WD_JWT_EDDSA ? ed_key : rsa_key;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    size_t len = 512;
    if (m == NULL || EVP_DigestSignInit(m, &pc, alg == WD_JWT_EDDSA ? NULL : EVP_sha256(), NULL, k) != 1)
        __builtin_trap();
    if (alg == WD_JWT_PS256 && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
                                EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 32) != 1))
        __builtin_trap();
    if (EVP_DigestSign(m, sig, &len, (const unsigned char *)in, n) != 1)
        __builtin_trap();
    EVP_MD_CTX_free(m);
    if (alg == WD_JWT_ES256) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
        if (es == NULL)
            __builtin_trap();
        uint8_t rs[64];
        if (BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32) != 32 || BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32) != 32)
            __builtin_trap();
        ECDSA_SIG_free(es);
        memcpy(sig, rs, 64);
        len = 64;
    }
    return len;
}

static void check_parts(const uint8_t *p, size_t n)
{
    const uint8_t *z1 = memchr(p, 0, n);
    if (z1 == NULL)
        return;
    const uint8_t *pay = z1 + 1;
    const uint8_t *z2 = memchr(pay, 0, n - (size_t)(pay - p));
    size_t hn = (size_t)(z1 - p), pn = z2 ? (size_t)(z2 - pay) : n - (size_t)(pay - p);
    uint8_t pick = z2 && z2 + 1 < p + n ? z2[1] : 0;
    static const enum wd_jwt_alg algs[] = {WD_JWT_RS256, WD_JWT_PS256, WD_JWT_ES256, WD_JWT_EDDSA};
    enum wd_jwt_alg alg = algs[pick % 4];
    const struct wd_jwk *signer = &ks.keys[alg == WD_JWT_ES256 ? 1 : alg == WD_JWT_EDDSA ? 2 : 0];
    if (WD_B64URL_LEN(hn) + WD_B64URL_LEN(pn) > 2 * WD_JWT_MAX)
        return;
    char *tok = malloc(WD_B64URL_LEN(hn) + WD_B64URL_LEN(pn) + WD_B64URL_LEN(512) + 3);
    char *o = b64(p, hn, tok);
    *o++ = '.';
    o = b64(pay, pn, o);
    uint8_t sig[512];
    size_t sn = sign(alg, tok, (size_t)(o - tok), sig);
    *o++ = '.';
    o = b64(sig, sn, o);
    size_t len = (size_t)(o - tok);
    char *exact = malloc(len);
    memcpy(exact, tok, len);
    free(tok);
    check_token(exact, len, alg, signer);
    free(exact);
}

static void check_discovery(const char *p, size_t n)
{
    char uri[64];
    const char *why = NULL;
    memset(uri, 0x5a, sizeof(uri));
    int rc = wd_oidc_discovery(p, n, "https://idp.example/", uri, sizeof(uri), &why);
    if (rc == 0 && (memchr(uri, '\0', sizeof(uri)) == NULL ||
                    (strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0)))
        __builtin_trap(); /* a usable, terminated http(s) URL that fits */
    if (rc != 0 && (why == NULL || strncmp(why, "discovery: ", 11) != 0))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        init();
        ready = true;
    }
    if (size == 0)
        return 0;
    size_t n = size - 1;
    /* an allocation of exactly the input, so that ASan sees a read past its end */
    char *buf = malloc(n ? n : 1);
    memcpy(buf, data + 1, n);
    if (data[0] == 0xD1) { /* an OpenID discovery document (the key fetcher reads one per issuer) */
        check_discovery(buf, n);
        free(buf);
        return 0;
    }
    switch (data[0] % 3) {
    case 0:
        check_jwks(buf, n);
        break;
    case 1:
        check_token(buf, n, WD_JWT_NONE_ALG, NULL);
        break;
    default:
        check_parts((const uint8_t *)buf, n);
        break;
    }
    free(buf);
    return 0;
}
