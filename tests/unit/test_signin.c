/* Unit tests for authz/signin.c: session tokens minted and verified (tokens for the refusals are built and signed
 * here, so each one fails on the check it names), the managed-settings canonical JSON against what node's
 * JSON.stringify of a key-sorted object prints, and the device grant lifecycle. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "authz/signin.h"
#include "lib/hash.h"
#include "tests/unit/unit.h"

#define NOW INT64_C(1800000000)
#define ISS "https://gw.example"

static const char SECRET_A[] = "0123456789abcdef0123456789abcdef-A";
static const char SECRET_B[] = "fedcba9876543210fedcba9876543210-B";

static struct wd_signin_keys *keys1(const char *s)
{
    const char *ss[1] = {s};
    size_t ls[1] = {strlen(s)};
    struct wd_signin_keys *k = wd_signin_keys_new(ss, ls, 1);
    assert_non_null(k);
    return k;
}

static void kid_of(const char *secret, char kid[17])
{
    uint8_t h[32];
    wd_sha256(secret, strlen(secret), h);
    wd_hex(h, 8, kid);
}

/* A compact JWS of these JSON texts, HS256-signed with secret (whatever the header says). */
static char *craft(const char *header, const char *payload, const char *secret)
{
    size_t hn = strlen(header), pn = strlen(payload);
    char *t = malloc(WD_B64URL_LEN(hn) + WD_B64URL_LEN(pn) + WD_B64URL_LEN(32) + 3);
    assert_non_null(t);
    size_t o = wd_b64url_encode((const uint8_t *)header, hn, t);
    t[o++] = '.';
    o += wd_b64url_encode((const uint8_t *)payload, pn, t + o);
    uint8_t mac[32];
    unsigned int ml = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)t, o, mac, &ml));
    t[o++] = '.';
    o += wd_b64url_encode(mac, 32, t + o);
    t[o] = '\0';
    return t;
}

static char *hdr_a(void)
{
    char kid[17];
    kid_of(SECRET_A, kid);
    char *h = NULL;
    assert_true(asprintf(&h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid) > 0);
    return h;
}

#define GOOD_CLAIMS "{\"sub\":\"u1\",\"aud\":\"claude-gateway\",\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800003600}"

/* Verifies tok with keys k; returns the reason (NULL on success). */
static const char *verify_why(const struct wd_signin_keys *k, const char *tok)
{
    struct wd_signin_claims c;
    const char *why = "unset";
    int rc = wd_signin_verify(k, ISS, tok, strlen(tok), NOW, 60, &c, &why);
    if (rc == 0)
        return NULL;
    assert_int_equal(rc, -1);
    assert_non_null(why);
    return why;
}

/* ---- keys ---- */

static void test_keys_refused(void **state)
{
    (void)state;
    const char *ss[2] = {SECRET_A, "short"};
    size_t ls[2] = {strlen(SECRET_A), 5};
    assert_null(wd_signin_keys_new(ss, ls, 2));
    assert_null(wd_signin_keys_new(ss, ls, 0));
    size_t l31[1] = {31};
    assert_null(wd_signin_keys_new(ss, l31, 1));
    size_t l32[1] = {32};
    struct wd_signin_keys *k = wd_signin_keys_new(ss, l32, 1);
    assert_non_null(k);
    wd_signin_keys_free(k);
}

/* ---- mint and verify ---- */

static void test_round_trip(void **state)
{
    (void)state;
    struct wd_signin_keys *k = keys1(SECRET_A);
    struct wd_signin_claims c = {.iat = NOW, .exp = NOW + 3600, .ngroups = 2};
    strcpy(c.sub, "user-1");
    strcpy(c.email, "alice@example.com");
    strcpy(c.name, "Alice \"A\" \xc3\xa9");
    strcpy(c.groups[0], "engineering");
    strcpy(c.groups[1], "admins");
    char tok[2048];
    int n = wd_signin_mint(k, ISS, &c, tok, sizeof tok);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(tok));
    assert_true(wd_signin_is_session(k, tok, (size_t)n));

    struct wd_signin_claims out;
    const char *why = "unset";
    assert_int_equal(wd_signin_verify(k, ISS, tok, (size_t)n, NOW + 10, 60, &out, &why), 0);
    assert_null(why);
    assert_string_equal(out.sub, "user-1");
    assert_string_equal(out.email, "alice@example.com");
    assert_string_equal(out.name, "Alice \"A\" \xc3\xa9");
    assert_int_equal(out.ngroups, 2);
    assert_string_equal(out.groups[0], "engineering");
    assert_string_equal(out.groups[1], "admins");
    assert_int_equal(out.iat, NOW);
    assert_int_equal(out.exp, NOW + 3600);

    /* the header is exactly the documented one */
    char kid[17], want[128];
    kid_of(SECRET_A, kid);
    snprintf(want, sizeof want, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    uint8_t h[256];
    long hl = wd_b64url_decode(tok, (size_t)(strchr(tok, '.') - tok), h, sizeof h - 1);
    assert_true(hl > 0);
    h[hl] = 0;
    assert_string_equal((char *)h, want);

    /* unknown members are left out */
    struct wd_signin_claims bare = {.iat = NOW, .exp = NOW + 60};
    strcpy(bare.sub, "s");
    n = wd_signin_mint(k, ISS, &bare, tok, sizeof tok);
    assert_true(n > 0);
    const char *p0 = strchr(tok, '.') + 1, *p1 = strrchr(tok, '.');
    uint8_t pl[512];
    long pn = wd_b64url_decode(p0, (size_t)(p1 - p0), pl, sizeof pl - 1);
    assert_true(pn > 0);
    pl[pn] = 0;
    assert_string_equal((char *)pl,
                        "{\"sub\":\"s\",\"aud\":\"claude-gateway\",\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800000060}");
    assert_int_equal(wd_signin_verify(k, ISS, tok, (size_t)n, NOW, 0, &out, &why), 0);
    assert_string_equal(out.email, "");
    assert_int_equal(out.ngroups, 0);

    /* too small a buffer, and no sub */
    assert_int_equal(wd_signin_mint(k, ISS, &c, tok, 40), -1);
    bare.sub[0] = 0;
    assert_int_equal(wd_signin_mint(k, ISS, &bare, tok, sizeof tok), -1);
    wd_signin_keys_free(k);
}

static void test_refusals_signature_and_keys(void **state)
{
    (void)state;
    struct wd_signin_keys *a = keys1(SECRET_A), *b = keys1(SECRET_B);
    char *h = hdr_a();
    char *good = craft(h, GOOD_CLAIMS, SECRET_A);
    assert_null(verify_why(a, good));

    /* bad signature: one character of the MAC changed (the first: stays canonical base64url) */
    char *bad = strdup(good);
    char *sig = strrchr(bad, '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    assert_string_equal(verify_why(a, bad), "bad signature");
    /* the payload changed under the same signature */
    char *other = craft(h, "{\"sub\":\"u2\",\"aud\":\"claude-gateway\",\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800003600}",
                        SECRET_A);
    char *spliced = NULL;
    assert_true(asprintf(&spliced, "%.*s%s", (int)(strrchr(other, '.') - other), other, strrchr(good, '.')) > 0);
    assert_string_equal(verify_why(a, spliced), "bad signature");
    /* signed by another key under A's kid */
    char *forged = craft(h, GOOD_CLAIMS, SECRET_B);
    assert_string_equal(verify_why(a, forged), "bad signature");
    /* another key set does not know A's kid */
    assert_string_equal(verify_why(b, good), "unknown kid");
    assert_false(wd_signin_is_session(b, good, strlen(good)));
    /* a signature of the wrong length */
    char *shortsig = NULL;
    assert_true(asprintf(&shortsig, "%.*sAAAA", (int)(strrchr(good, '.') - good + 1), good) > 0);
    assert_string_equal(verify_why(a, shortsig), "malformed signature");

    free(shortsig);
    free(forged);
    free(spliced);
    free(other);
    free(bad);
    free(good);
    free(h);
    wd_signin_keys_free(a);
    wd_signin_keys_free(b);
}

static void test_refusals_header(void **state)
{
    (void)state;
    struct wd_signin_keys *a = keys1(SECRET_A);
    char kid[17];
    kid_of(SECRET_A, kid);
    static const struct {
        const char *fmt, *why;
    } cases[] = {
        {"{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"%s\"}", "alg is not HS256"},
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", "alg is not HS256"},
        {"{\"alg\":\"HS384\",\"typ\":\"JWT\",\"kid\":\"%s\"}", "alg is not HS256"},
        {"{\"alg\":\"hs256\",\"kid\":\"%s\"}", "alg is not HS256"},
        {"{\"typ\":\"JWT\",\"kid\":\"%s\"}", "alg is not HS256"},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}%s", "no kid"},
        {"{\"alg\":\"HS256\",\"kid\":1}%s", "no kid"},
        {"{\"alg\":\"HS256\",\"kid\":\"%s\",\"crit\":[\"exp\"]}", "header has a refused member"},
        {"{\"alg\":\"HS256\",\"kid\":\"%s\",\"jku\":\"https://evil\"}", "header has a refused member"},
        {"{\"alg\":\"HS256\",\"kid\":\"%s\",\"x5u\":\"https://evil\"}", "header has a refused member"},
        {"{\"alg\":\"HS256\",\"kid\":\"%s\",\"jwk\":{}}", "header has a refused member"},
        {"{\"alg\":\"HS256\",\"alg\":\"HS256\",\"kid\":\"%s\"}", "header repeats a member"},
        {"{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", "typ is not JWT"},
        {"[\"%s\"]", "header is not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char h[256];
        snprintf(h, sizeof h, cases[i].fmt, strstr(cases[i].fmt, "}%s") ? "" : kid);
        char *t = craft(h, GOOD_CLAIMS, SECRET_A);
        const char *why = verify_why(a, t);
        if (why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("header %s: got %s, want %s", h, why ? why : "accepted", cases[i].why);
        free(t);
    }
    /* typ may be left out */
    char h[128];
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kid);
    char *t = craft(h, GOOD_CLAIMS, SECRET_A);
    assert_null(verify_why(a, t));
    free(t);
    wd_signin_keys_free(a);
}

static void test_refusals_claims(void **state)
{
    (void)state;
    struct wd_signin_keys *a = keys1(SECRET_A);
    char *h = hdr_a();
#define C(rest) "{\"sub\":\"u1\",\"aud\":\"claude-gateway\",\"iss\":\"" ISS "\"" rest "}"
    static const struct {
        const char *claims, *why;
    } cases[] = {
        {"{\"sub\":\"u1\",\"aud\":\"other\",\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800003600}", "wrong aud"},
        {"{\"sub\":\"u1\",\"aud\":[\"claude-gateway\"],\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800003600}",
         "wrong aud"},
        {"{\"sub\":\"u1\",\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800003600}", "wrong aud"},
        {"{\"sub\":\"u1\",\"aud\":\"claude-gateway\",\"iss\":\"https://other\",\"iat\":1800000000,\"exp\":1800003600}",
         "wrong iss"},
        {"{\"sub\":\"u1\",\"aud\":\"claude-gateway\",\"iat\":1800000000,\"exp\":1800003600}", "wrong iss"},
        /* exp must be after now - skew (60 s) */
        {C(",\"iat\":1799990000,\"exp\":1799999940"), "expired"},
        {C(",\"iat\":1800000061,\"exp\":1800003600"), "issued in the future"},
        {C(",\"iat\":1800000000"), "exp missing or not an integer"},
        {C(",\"iat\":1800000000,\"exp\":1800003600.5"), "exp missing or not an integer"},
        {C(",\"iat\":\"1800000000\",\"exp\":1800003600"), "iat missing or not an integer"},
        {C(",\"iat\":1800000000,\"exp\":99999999999999"), "date out of range"},
        {C(",\"iat\":1800000000,\"exp\":1800003600,\"sub\":\"u2\""), "claims repeat a member"},
        {"{\"sub\":\"\",\"aud\":\"claude-gateway\",\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800003600}",
         "sub missing or empty"},
        {"{\"aud\":\"claude-gateway\",\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800003600}", "sub missing or empty"},
        {"{\"sub\":7,\"aud\":\"claude-gateway\",\"iss\":\"" ISS "\",\"iat\":1800000000,\"exp\":1800003600}",
         "sub missing or empty"},
        {C(",\"iat\":1800000000,\"exp\":1800003600,\"email\":1"), "email or name is not a string"},
        {C(",\"iat\":1800000000,\"exp\":1800003600,\"groups\":\"eng\""), "groups is not an array"},
        {C(",\"iat\":1800000000,\"exp\":1800003600,\"groups\":[\"eng\",2]"), "groups holds a non-string"},
        {"[1]", "claims are not a JSON object"},
        {"{\"sub\":", "claims are not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = craft(h, cases[i].claims, SECRET_A);
        const char *why = verify_why(a, t);
        if (why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("claims %s: got %s, want %s", cases[i].claims, why ? why : "accepted", cases[i].why);
        free(t);
    }
    /* the edges of the skew are accepted */
    char *t = craft(h, C(",\"iat\":1800000060,\"exp\":1799999941"), SECRET_A);
    assert_null(verify_why(a, t));
    free(t);
    /* groups past 16 are dropped, long strings cut on a character boundary */
    char claims[2048] = C(",\"iat\":1800000000,\"exp\":1800003600");
    claims[strlen(claims) - 1] = '\0';   /* the closing brace: members follow */
    size_t o = strlen(claims);
    o += (size_t)sprintf(claims + o, ",\"name\":\"x");
    for (int i = 0; i < 70; i++)
        o += (size_t)sprintf(claims + o, "\xc3\xa9");
    o += (size_t)sprintf(claims + o, "\",\"groups\":[");
    for (int i = 0; i < 20; i++)
        o += (size_t)sprintf(claims + o, "%s\"g%d\"", i ? "," : "", i);
    sprintf(claims + o, "]}");
    t = craft(h, claims, SECRET_A);
    struct wd_signin_claims c;
    const char *why;
    assert_int_equal(wd_signin_verify(a, ISS, t, strlen(t), NOW, 60, &c, &why), 0);
    assert_int_equal(c.ngroups, 16);
    assert_string_equal(c.groups[15], "g15");
    assert_int_equal(strlen(c.name), 127);   /* "x" + 63 two-byte characters */
    assert_int_equal((unsigned char)c.name[126], 0xa9);
    free(t);
#undef C
    free(h);
    wd_signin_keys_free(a);
}

static void test_refusals_shape(void **state)
{
    (void)state;
    struct wd_signin_keys *a = keys1(SECRET_A);
    char *h = hdr_a();
    char *good = craft(h, GOOD_CLAIMS, SECRET_A);
    size_t gl = strlen(good);

    /* oversized: refused before parsing, whatever it holds */
    char *big = malloc(WD_SIGNIN_MAX_TOKEN + 2);
    memset(big, 'A', WD_SIGNIN_MAX_TOKEN + 1);
    memcpy(big, good, gl);
    big[WD_SIGNIN_MAX_TOKEN + 1] = '\0';
    assert_string_equal(verify_why(a, big), "token too long");
    assert_false(wd_signin_is_session(a, big, strlen(big)));
    free(big);

    /* two parts, four parts */
    char *two = strndup(good, (size_t)(strrchr(good, '.') - good));
    assert_string_equal(verify_why(a, two), "not three parts");
    char *four = NULL;
    assert_true(asprintf(&four, "%s.AAAA", good) > 0);
    assert_string_equal(verify_why(a, four), "not three parts");

    /* non-base64url: padding, the base64 alphabet's '+', '/' */
    char *pad = NULL;
    size_t d1 = (size_t)(strchr(good, '.') - good);
    assert_true(asprintf(&pad, "%.*s=%s", (int)d1, good, good + d1) > 0);
    assert_string_equal(verify_why(a, pad), "malformed base64url in header");
    char *plus = strdup(good);
    plus[d1 + 3] = '+';
    assert_string_equal(verify_why(a, plus), "bad signature");  /* the MAC covers the raw text: caught first */
    /* a payload that is not base64url but correctly signed */
    char *raw = NULL;
    assert_true(asprintf(&raw, "%.*s.ab/c", (int)d1, good) > 0);
    uint8_t mac[32];
    unsigned int ml;
    HMAC(EVP_sha256(), SECRET_A, (int)strlen(SECRET_A), (const unsigned char *)raw, strlen(raw), mac, &ml);
    char ms[64];
    wd_b64url_encode(mac, 32, ms);
    char *signed_raw = NULL;
    assert_true(asprintf(&signed_raw, "%s.%s", raw, ms) > 0);
    assert_string_equal(verify_why(a, signed_raw), "malformed base64url in claims");
    assert_string_equal(verify_why(a, "..."), "not three parts");
    assert_string_equal(verify_why(a, ".."), "malformed base64url in header");
    assert_string_equal(verify_why(a, "a.b.c"), "malformed base64url in header");

    free(signed_raw);
    free(raw);
    free(plus);
    free(pad);
    free(four);
    free(two);
    free(good);
    free(h);
    wd_signin_keys_free(a);
}

/* The store shared by replicas keeps the IdP's refresh token sealed: it opens with the same keys (either of a rotated
 * pair), never with others, and not once a byte changed. */
static void test_seal(void **state)
{
    (void)state;
    struct wd_signin_keys *a = keys1(SECRET_A), *b = keys1(SECRET_B);
    const char *secrets[] = {SECRET_B, SECRET_A};
    size_t lens[] = {strlen(SECRET_B), strlen(SECRET_A)};
    struct wd_signin_keys *ba = wd_signin_keys_new(secrets, lens, 2);
    char sealed[512], opened[256];
    const char *rt = "idp-refresh-token-0123456789abcdefghijklmnop";
    int n = wd_signin_seal(a, rt, strlen(rt), sealed, sizeof(sealed));
    assert_true(n > 0);
    assert_null(strstr(sealed, "idp-refresh"));
    assert_int_equal(wd_signin_open(a, sealed, (size_t)n, opened, sizeof(opened)), (int)strlen(rt));
    assert_string_equal(opened, rt);
    assert_int_equal(wd_signin_open(ba, sealed, (size_t)n, opened, sizeof(opened)), (int)strlen(rt)); /* rotation */
    assert_int_equal(wd_signin_open(b, sealed, (size_t)n, opened, sizeof(opened)), -1);
    char other[512];
    int m = wd_signin_seal(a, rt, strlen(rt), other, sizeof(other));
    assert_int_equal(m, n);
    assert_true(memcmp(sealed, other, (size_t)n) != 0); /* a fresh nonce each time */
    sealed[n / 2] = sealed[n / 2] == 'A' ? 'B' : 'A';
    assert_int_equal(wd_signin_open(a, sealed, (size_t)n, opened, sizeof(opened)), -1);
    assert_int_equal(wd_signin_seal(a, rt, strlen(rt), sealed, 20), -1); /* too small */
    char dc[44], uc[10], norm[9];
    assert_int_equal(wd_signin_new_codes(dc, uc), 0);
    assert_int_equal(strlen(dc), 43);
    assert_int_equal(uc[4], '-');
    assert_true(wd_signin_user_code_norm(uc, strlen(uc), norm));
    assert_int_equal(strlen(norm), 8);
    assert_false(wd_signin_user_code_norm("ABC-DEF", 7, norm));
    wd_signin_keys_free(a);
    wd_signin_keys_free(b);
    wd_signin_keys_free(ba);
}

/* The IdP's token endpoint answer: the ID token's claims checked (issuer, audience, nonce, expiry, subject), the
 * session's claims and the refresh token out; a refresh answer's JWT access token when asked; errors recognised. */
static char *b64json(const char *j)
{
    char *out = malloc(WD_B64URL_LEN(strlen(j)) + 1);
    wd_b64url_encode((const uint8_t *)j, strlen(j), out);
    return out;
}

static char *answer_with(const char *claims, const char *field)
{
    char *h = b64json("{\"alg\":\"RS256\"}"), *c = b64json(claims);
    char *out = malloc(strlen(h) + strlen(c) + 256);
    sprintf(out, "{\"%s\":\"%s.%s.c2ln\",\"refresh_token\":\"rt-1\",\"token_type\":\"Bearer\"}", field, h, c);
    free(h);
    free(c);
    return out;
}

static void test_token_answer(void **state)
{
    (void)state;
    const struct wd_signin_idp idp = {.issuer = "https://idp.example", .client_id = "gw", .claim_sub = "sub",
                                      .claim_email = "email", .claim_name = "name", .claim_groups = "groups",
                                      .ttl_s = 600};
    struct wd_signin_claims c;
    char rt[64];
    const char *why;
    char *a = answer_with("{\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"gw\"],\"sub\":\"alice\",\"email\":\"a@x\","
                          "\"groups\":\"eng\",\"nonce\":\"n1\",\"exp\":2000}", "id_token");
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, "n1", false, 1000, &c, rt, sizeof(rt), &why), 0);
    assert_null(why);
    assert_string_equal(c.sub, "alice");
    assert_string_equal(c.email, "a@x");
    assert_int_equal(c.ngroups, 1);
    assert_string_equal(c.groups[0], "eng");
    assert_int_equal(c.exp, 1600);
    assert_string_equal(rt, "rt-1");
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, "n2", false, 1000, &c, rt, sizeof(rt), &why), -1);
    assert_string_equal(why, "id token: nonce does not match");
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, "n1", false, 2100, &c, rt, sizeof(rt), &why), -1);
    assert_string_equal(why, "id token: expired");
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, "n1", false, 1000, &c, rt, 4, &why), -1);
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a) - 1, &idp, "n1", false, 1000, &c, rt, sizeof(rt), &why), -1);
    free(a);
    a = answer_with("{\"iss\":\"https://other.example\",\"aud\":\"gw\",\"sub\":\"alice\",\"exp\":2000}", "id_token");
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, NULL, false, 1000, &c, rt, sizeof(rt), &why), -1);
    assert_string_equal(why, "id token: iss is not the issuer");
    free(a);
    a = answer_with("{\"iss\":\"https://idp.example\",\"aud\":\"other\",\"sub\":\"alice\",\"exp\":2000}", "id_token");
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, NULL, false, 1000, &c, rt, sizeof(rt), &why), -1);
    assert_string_equal(why, "id token: aud does not name the client");
    free(a);
    a = answer_with("{\"iss\":\"https://idp.example\",\"aud\":\"gw\",\"exp\":2000}", "id_token");
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, NULL, false, 1000, &c, rt, sizeof(rt), &why), -1);
    assert_string_equal(why, "id token: no subject");
    free(a);
    /* a refresh answer with no new ID token: its JWT access token only when asked */
    a = answer_with("{\"iss\":\"https://idp.example\",\"aud\":\"gw\",\"sub\":\"bob\",\"exp\":2000}", "access_token");
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, NULL, false, 1000, &c, rt, sizeof(rt), &why), -1);
    assert_int_equal(wd_signin_read_token_answer(a, strlen(a), &idp, NULL, true, 1000, &c, rt, sizeof(rt), &why), 0);
    assert_string_equal(c.sub, "bob");
    free(a);
    const char *e = "{\"error\":\"invalid_grant\",\"error_description\":\"gone\"}";
    assert_true(wd_signin_answer_error_is(e, strlen(e), "invalid_grant"));
    assert_false(wd_signin_answer_error_is(e, strlen(e), "invalid_request"));
    assert_false(wd_signin_answer_error_is("{\"error\":", 9, "invalid_grant"));
}

static void test_rotation(void **state)
{
    (void)state;
    struct wd_signin_keys *old = keys1(SECRET_A);
    const char *ss[2] = {SECRET_B, SECRET_A};
    size_t ls[2] = {strlen(SECRET_B), strlen(SECRET_A)};
    struct wd_signin_keys *both = wd_signin_keys_new(ss, ls, 2);
    assert_non_null(both);
    struct wd_signin_claims c = {.iat = NOW, .exp = NOW + 3600};
    strcpy(c.sub, "u");
    char t_old[1024], t_new[1024];
    assert_true(wd_signin_mint(old, ISS, &c, t_old, sizeof t_old) > 0);
    assert_true(wd_signin_mint(both, ISS, &c, t_new, sizeof t_new) > 0);
    /* the second secret still verifies, and the first signs */
    assert_null(verify_why(both, t_old));
    assert_null(verify_why(both, t_new));
    assert_true(wd_signin_is_session(both, t_old, strlen(t_old)));
    assert_string_equal(verify_why(old, t_new), "unknown kid");
    char *hb = NULL, kid[17];
    kid_of(SECRET_B, kid);
    assert_true(asprintf(&hb, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid) > 0);
    char want[256];
    wd_b64url_encode((const uint8_t *)hb, strlen(hb), want);
    assert_memory_equal(t_new, want, strlen(want));
    free(hb);
    wd_signin_keys_free(both);
    wd_signin_keys_free(old);
}

static void test_is_session(void **state)
{
    (void)state;
    struct wd_signin_keys *a = keys1(SECRET_A);
    char kid[17], h[128];
    kid_of(SECRET_A, kid);
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    char *rs = craft(h, GOOD_CLAIMS, SECRET_A);
    assert_false(wd_signin_is_session(a, rs, strlen(rs)));
    char *other = craft("{\"alg\":\"HS256\",\"kid\":\"0000000000000000\"}", GOOD_CLAIMS, SECRET_A);
    assert_false(wd_signin_is_session(a, other, strlen(other)));
    assert_false(wd_signin_is_session(a, "opaque-refresh-token", 20));
    assert_false(wd_signin_is_session(a, "", 0));
    /* the signature is not checked: routing only */
    char *h2 = hdr_a();
    char *forged = craft(h2, GOOD_CLAIMS, SECRET_B);
    assert_true(wd_signin_is_session(a, forged, strlen(forged)));
    free(forged);
    free(h2);
    free(other);
    free(rs);
    wd_signin_keys_free(a);
}

/* ---- canonical JSON ---- */

static void canon_eq(const char *in, const char *want)
{
    struct wd_buf b = {0};
    assert_int_equal(wd_signin_canonical(in, strlen(in), &b), 0);
    if (b.n != strlen(want) || memcmp(b.p, want, b.n) != 0)
        fail_msg("canonical of %s: got %.*s, want %s", in, (int)b.n, b.p, want);
    wd_buf_free(&b);
}

static void test_canonical(void **state)
{
    (void)state;
    /* expectations: node 20, JSON.stringify(sortKeys(JSON.parse(in))), sortKeys rebuilding objects with
     * Object.keys(v).sort() at every level */
    canon_eq("{\"b\":{\"z\":1,\"a\":[3,{\"y\":true,\"x\":null}]},\"a\":\"x\"}",
             "{\"a\":\"x\",\"b\":{\"a\":[3,{\"x\":null,\"y\":true}],\"z\":1}}");
    /* unicode kept as is (U+2028 too), control characters escaped, \/ and \u007f unescaped */
    canon_eq("{\"\xc3\xa9\":\"\\u00e9\\u2028\xf0\x9f\x98\x80\",\"e\":\"\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\\\/\\u007f\"}",
             "{\"e\":\"\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\x7f\",\"\xc3\xa9\":\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\"}");
    canon_eq("[1,1.5,0.1,-0,1e21,1E+2,123456789012345678901,1e-7,0.000001,-2.5e-10,1.7976931348623157e308,5e-324,"
             "100,0.30000000000000004,12345678901234567890,1e400]",
             "[1,1.5,0.1,0,1e+21,100,123456789012345680000,1e-7,0.000001,-2.5e-10,1.7976931348623157e+308,5e-324,"
             "100,0.30000000000000004,12345678901234567000,null]");
    canon_eq("{\"env\":{\"OTEL_METRICS_EXPORTER\":\"otlp\",\"CLAUDE_CODE_ENABLE_TELEMETRY\":\"1\"},"
             "\"permissions\":{\"deny\":[\"WebFetch\"]}}",
             "{\"env\":{\"CLAUDE_CODE_ENABLE_TELEMETRY\":\"1\",\"OTEL_METRICS_EXPORTER\":\"otlp\"},"
             "\"permissions\":{\"deny\":[\"WebFetch\"]}}");
    canon_eq("{}", "{}");
    canon_eq("\"s\"", "\"s\"");
    canon_eq("  [ ]  ", "[]");
    /* a key that is a prefix of another sorts first; escaped keys sort by their decoded bytes */
    canon_eq("{\"ab\":1,\"a\":2,\"\\u0061c\":3}", "{\"a\":2,\"ab\":1,\"ac\":3}");

    struct wd_buf b = {0};
    wd_buf_puts(&b, "keep");
    assert_int_equal(wd_signin_canonical("{\"a\":1,\"a\":2}", 13, &b), -1);
    assert_int_equal(wd_signin_canonical("{\"a\":1,\"\\u0061\":2}", 18, &b), -1);
    assert_int_equal(wd_signin_canonical("{\"a\":", 5, &b), -1);
    assert_int_equal(wd_signin_canonical("\"\\ud800\"", 8, &b), -1);
    assert_int_equal(wd_signin_canonical("", 0, &b), -1);
    /* a refusal leaves what was there */
    assert_int_equal(b.n, 4);
    assert_memory_equal(b.p, "keep", 4);
    wd_buf_free(&b);
}

static void test_checksum(void **state)
{
    (void)state;
    char cs[72];
    /* node: crypto.createHash('sha256').update('{"a":1}').digest('hex') */
    wd_signin_checksum("{\"a\":1}", 7, cs);
    assert_string_equal(cs, "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862");
    wd_signin_checksum("", 0, cs);
    assert_string_equal(cs, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- device grants ---- */

static bool is_b64url43(const char *s)
{
    if (strlen(s) != 43)
        return false;
    for (size_t i = 0; i < 43; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", s[i]))
            return false;
    return true;
}

static void test_grant_lifecycle(void **state)
{
    (void)state;
    char dc[44], uc[10];
    assert_int_equal(wd_signin_grant_new(NOW, dc, uc), 0);
    assert_true(is_b64url43(dc));
    assert_int_equal(strlen(uc), 9);
    assert_int_equal(uc[4], '-');
    for (int i = 0; i < 9; i++)
        if (i != 4 && strchr("BCDFGHJKLMNPQRSTVWXZ", uc[i]) == NULL)
            fail_msg("user code %s has %c", uc, uc[i]);

    const char *err = NULL;
    struct wd_signin_grant_view v;
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 5, &v, &err), 1);
    assert_string_equal(err, "authorization_pending");
    /* polled again 3 s later: slow down; 4 s after that one: fine */
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 8, &v, &err), 1);
    assert_string_equal(err, "slow_down");
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 12, &v, &err), 1);
    assert_string_equal(err, "authorization_pending");

    /* the user types it in lower case without the dash */
    char typed[16];
    snprintf(typed, sizeof typed, " %.4s%.4s ", uc, uc + 5);
    for (char *p = typed; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    memset(&v, 0, sizeof v);
    assert_int_equal(wd_signin_grant_verify(typed, strlen(typed), NOW + 20, &v), 0);
    assert_int_equal(v.state, WD_SG_VERIFYING);
    assert_string_equal(v.user_code, uc);
    assert_true(is_b64url43(v.state_param));
    assert_true(is_b64url43(v.nonce));
    assert_true(is_b64url43(v.pkce_verifier));
    assert_string_not_equal(v.state_param, v.nonce);
    assert_string_equal(v.access_token, "");
    /* not pending any more: a second submission is refused */
    struct wd_signin_grant_view v2;
    assert_int_equal(wd_signin_grant_verify(uc, strlen(uc), NOW + 21, &v2), -1);

    /* the callback finds it by state */
    char st[44];
    memcpy(st, v.state_param, 44);
    memset(&v2, 0, sizeof v2);
    assert_int_equal(wd_signin_grant_by_state(st, 43, NOW + 30, &v2), 0);
    assert_string_equal(v2.nonce, v.nonce);
    assert_string_equal(v2.pkce_verifier, v.pkce_verifier);
    char wrong[44];
    memcpy(wrong, st, 44);
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    assert_int_equal(wd_signin_grant_by_state(wrong, 43, NOW + 30, &v2), -1);
    assert_int_equal(wd_signin_grant_by_state(st, 42, NOW + 30, &v2), -1);

    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 31, &v2, &err), 1);
    assert_string_equal(err, "authorization_pending");

    assert_int_equal(wd_signin_grant_approve(wrong, 43, "at", "rt", 3600, "a@x"), -1);
    assert_int_equal(wd_signin_grant_approve(st, 43, "access.jwt.sig", "refresh-1", 3600, "alice@example.com"), 0);
    /* approved: no longer VERIFYING, so the state is spent */
    assert_int_equal(wd_signin_grant_by_state(st, 43, NOW + 32, &v2), -1);
    assert_int_equal(wd_signin_grant_approve(st, 43, "again", NULL, 1, NULL), -1);

    /* approved: the tokens once, then expired_token */
    memset(&v2, 0, sizeof v2);
    err = "unset";
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 40, &v2, &err), 0);
    assert_null(err);
    assert_int_equal(v2.state, WD_SG_APPROVED);
    assert_string_equal(v2.access_token, "access.jwt.sig");
    assert_string_equal(v2.refresh_token, "refresh-1");
    assert_int_equal(v2.expires_in, 3600);
    assert_string_equal(v2.email, "alice@example.com");
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 50, &v2, &err), 1);
    assert_string_equal(err, "expired_token");

    /* unknown codes */
    assert_int_equal(wd_signin_grant_poll("nope", 4, NOW, &v2, &err), 1);
    assert_string_equal(err, "expired_token");
    char unk[44];
    memcpy(unk, dc, 44);
    unk[0] = unk[0] == 'A' ? 'B' : 'A';
    assert_int_equal(wd_signin_grant_poll(unk, 43, NOW, &v2, &err), 1);
    assert_string_equal(err, "expired_token");
    assert_int_equal(wd_signin_grant_verify("BCDF-GHJ", 8, NOW, &v2), -1);
    assert_int_equal(wd_signin_grant_verify("BCDF-GHJKL", 10, NOW, &v2), -1);

    /* no refresh token from the IdP */
    assert_int_equal(wd_signin_grant_new(NOW, dc, uc), 0);
    assert_int_equal(wd_signin_grant_verify(uc, strlen(uc), NOW, &v), 0);
    char big[2100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(wd_signin_grant_approve(v.state_param, 43, big, NULL, 60, NULL), -1);
    assert_int_equal(wd_signin_grant_approve(v.state_param, 43, "at", NULL, 60, NULL), 0);
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 1, &v2, &err), 0);
    assert_string_equal(v2.refresh_token, "");
    assert_string_equal(v2.email, "");
    wd_signin_grants_free();
}

static void test_grant_deny(void **state)
{
    (void)state;
    char dc[44], uc[10];
    const char *err;
    struct wd_signin_grant_view v;
    /* denied by user code on the device page */
    assert_int_equal(wd_signin_grant_new(NOW, dc, uc), 0);
    assert_int_equal(wd_signin_grant_deny_user_code(uc, strlen(uc), NOW + 1), 0);
    assert_int_equal(wd_signin_grant_deny_user_code(uc, strlen(uc), NOW + 1), -1);
    assert_int_equal(wd_signin_grant_verify(uc, strlen(uc), NOW + 2, &v), -1);
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 3, &v, &err), 1);
    assert_string_equal(err, "access_denied");
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 9, &v, &err), 1);
    assert_string_equal(err, "expired_token");

    /* denied at the callback (the IdP said no or the exchange failed) */
    assert_int_equal(wd_signin_grant_new(NOW, dc, uc), 0);
    assert_int_equal(wd_signin_grant_verify(uc, strlen(uc), NOW, &v), 0);
    assert_int_equal(wd_signin_grant_deny_state(v.state_param, 43), 0);
    assert_int_equal(wd_signin_grant_deny_state(v.state_param, 43), -1);
    assert_int_equal(wd_signin_grant_approve(v.state_param, 43, "at", NULL, 60, NULL), -1);
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 3, &v, &err), 1);
    assert_string_equal(err, "access_denied");
    assert_int_equal(wd_signin_grant_deny_user_code("xx", 2, NOW), -1);
    wd_signin_grants_free();
}

static void test_grant_expiry(void **state)
{
    (void)state;
    char dc[44], uc[10], dc2[44], uc2[10];
    const char *err;
    struct wd_signin_grant_view v;
    assert_int_equal(wd_signin_grant_new(NOW, dc, uc), 0);
    assert_int_equal(wd_signin_grant_new(NOW, dc2, uc2), 0);
    assert_int_equal(wd_signin_grant_verify(uc2, strlen(uc2), NOW + 599, &v), 0);
    assert_int_equal(wd_signin_grant_by_state(v.state_param, 43, NOW + 599, &v), 0);
    /* 600 s on: gone for every use */
    assert_int_equal(wd_signin_grant_by_state(v.state_param, 43, NOW + 600, &v), -1);
    assert_int_equal(wd_signin_grant_verify(uc, strlen(uc), NOW + 600, &v), -1);
    assert_int_equal(wd_signin_grant_deny_user_code(uc, strlen(uc), NOW + 600), -1);
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 600, &v, &err), 1);
    assert_string_equal(err, "expired_token");
    wd_signin_grant_sweep(NOW + 600);
    assert_int_equal(wd_signin_grant_poll(dc2, 43, NOW + 10, &v, &err), 1);
    assert_string_equal(err, "expired_token");   /* swept: unknown even at an earlier clock */
    wd_signin_grants_free();
}

static void test_grant_bound(void **state)
{
    (void)state;
    char dc[44], uc[10], first[44];
    for (int i = 0; i < WD_SIGNIN_MAX_GRANTS; i++) {
        assert_int_equal(wd_signin_grant_new(NOW + i / 8, dc, uc), 0);
        if (i == 0)
            memcpy(first, dc, 44);
    }
    assert_int_equal(wd_signin_grant_new(NOW + 600 - 1, dc, uc), -1);
    /* once the oldest expire, room again */
    assert_int_equal(wd_signin_grant_new(NOW + 600, dc, uc), 0);
    const char *err;
    struct wd_signin_grant_view v;
    assert_int_equal(wd_signin_grant_poll(first, 43, NOW + 600, &v, &err), 1);
    assert_string_equal(err, "expired_token");
    assert_int_equal(wd_signin_grant_poll(dc, 43, NOW + 600, &v, &err), 1);
    assert_string_equal(err, "authorization_pending");
    wd_signin_grants_free();
}

/* Threads running whole flows at once: each must see only its own grant (ASan would catch a torn table). */
static void *flow_thread(void *arg)
{
    long ok = 0;
    (void)arg;
    for (int i = 0; i < 200; i++) {
        char dc[44], uc[10];
        struct wd_signin_grant_view v, got;
        const char *err;
        if (wd_signin_grant_new(NOW, dc, uc) != 0 || wd_signin_grant_verify(uc, 9, NOW, &v) != 0)
            continue;
        char at[64];
        snprintf(at, sizeof at, "at-%.10s", dc);
        if (wd_signin_grant_approve(v.state_param, 43, at, NULL, 60, NULL) != 0)
            continue;
        if (wd_signin_grant_poll(dc, 43, NOW, &got, &err) == 0 && strcmp(got.access_token, at) == 0)
            ok++;
    }
    return (void *)ok;
}

static void test_grant_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, flow_thread, NULL), 0);
    long total = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        total += (long)r;
    }
    assert_int_equal(total, 800);
    wd_signin_grants_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_refused),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals_signature_and_keys),
        cmocka_unit_test(test_refusals_header),
        cmocka_unit_test(test_refusals_claims),
        cmocka_unit_test(test_refusals_shape),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_seal),
        cmocka_unit_test(test_token_answer),
        cmocka_unit_test(test_is_session),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_checksum),
        cmocka_unit_test(test_grant_lifecycle),
        cmocka_unit_test(test_grant_deny),
        cmocka_unit_test(test_grant_expiry),
        cmocka_unit_test(test_grant_bound),
        cmocka_unit_test(test_grant_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
