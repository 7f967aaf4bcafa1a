/* libFuzzer driver for authz/signin.c (Claude Code's gateway sign-in). The first byte modulo 4 picks what the rest
 * is: (0) a bearer token verified against fixed keys; (1) claims the driver mints into a token, which must verify
 * back to the same claims and be refused once any byte is changed; (2) managed-settings JSON to canonicalise;
 * (3) a small program driving the device-grant store, checked against a model of each grant's state. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authz/signin.h"
#include "lib/buf.h"
#include "lib/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISS "https://warden.example"
#define NOW INT64_C(1800000000)
#define SKEW 60

/* Made for this driver only; the token seeds in tests/fuzz/corpus/signin are signed with the first. */
static const char secret1[] = "fuzz-signin-secret-one-0123456789abcdef";
static const char secret2[] = "fuzz-signin-secret-two-0123456789abcdef";

static struct wd_signin_keys *ks;       /* secret1 signs, secret2 verifies too */
static struct wd_signin_keys *ks_rot;   /* secret2 signs: a rotation that still accepts secret1's tokens */
static struct wd_signin_keys *ks_other; /* secret2 only: never accepts secret1's tokens */

static void init(void)
{
    const char *const s12[] = {secret1, secret2}, *const s21[] = {secret2, secret1};
    const size_t l12[] = {32, 32};
    ks = wd_signin_keys_new(s12, l12, 2);
    ks_rot = wd_signin_keys_new(s21, l12, 2);
    ks_other = wd_signin_keys_new(s21, l12, 1);
    if (ks == NULL || ks_rot == NULL || ks_other == NULL)
        __builtin_trap();
}

static void check_claims_shape(const struct wd_signin_claims *c)
{
    if (strnlen(c->sub, sizeof c->sub) >= sizeof c->sub || c->sub[0] == '\0' ||
        strnlen(c->email, sizeof c->email) >= sizeof c->email || strnlen(c->name, sizeof c->name) >= sizeof c->name ||
        c->ngroups < 0 || c->ngroups > 16)
        __builtin_trap();
    for (int i = 0; i < c->ngroups; i++)
        if (strnlen(c->groups[i], sizeof c->groups[i]) >= sizeof c->groups[i])
            __builtin_trap();
}

/* ---- (0) a bearer token ---- */

static void check_bearer(const char *tok, size_t n)
{
    struct wd_signin_claims c;
    const char *why = NULL;
    int rc = wd_signin_verify(ks, ISS, tok, n, NOW, SKEW, &c, &why);
    bool sess = wd_signin_is_session(ks, tok, n);
    if (rc == 0) {
        if (why != NULL || !sess || c.exp <= NOW - SKEW || c.iat > NOW + SKEW)
            __builtin_trap();
        check_claims_shape(&c);
    } else if (rc != -1 || why == NULL || why[0] == '\0') {
        __builtin_trap();
    }
}

/* ---- (1) mint, verify back, tamper ---- */

/* The bytes of s[0..n) that form valid UTF-8 characters other than NUL (the rest dropped), into out[cap], cut on
 * a character boundary; JSON strings carry nothing else, so only these can round-trip. Returns the length. */
static size_t keep_utf8(const uint8_t *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0x01 && c < 0x80)
            len = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;  /* no UTF-16 surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        }
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = s[i + k] >= (k == 1 ? lo : 0x80) && s[i + k] <= (k == 1 ? hi : 0xBF);
        if (!ok) {
            i++;
            continue;
        }
        if (o + len >= cap)
            break;
        memcpy(out + o, s + i, len);
        o += len;
        i += len;
    }
    out[o] = '\0';
    return o;
}

static bool claims_equal(const struct wd_signin_claims *a, const struct wd_signin_claims *b)
{
    if (strcmp(a->sub, b->sub) != 0 || strcmp(a->email, b->email) != 0 || strcmp(a->name, b->name) != 0 ||
        a->ngroups != b->ngroups || a->iat != b->iat || a->exp != b->exp)
        return false;
    for (int i = 0; i < a->ngroups; i++)
        if (strcmp(a->groups[i], b->groups[i]) != 0)
            return false;
    return true;
}

/* A single changed byte at i (XOR x, x != 0) must be refused: the MAC covers every byte before the last dot, and a
 * strict base64url decoder gives every signature one spelling only. */
static void check_tampered(const char *tok, size_t n, size_t i, uint8_t x)
{
    char *t = malloc(n);
    memcpy(t, tok, n);
    t[i] = (char)(t[i] ^ x);
    struct wd_signin_claims c;
    const char *why = NULL;
    if (wd_signin_verify(ks, ISS, t, n, NOW, SKEW, &c, &why) != -1 || why == NULL)
        __builtin_trap();
    free(t);
}

static void check_mint(const uint8_t *p, size_t n)
{
    if (n < 3)
        return;
    uint8_t x = p[0] ? p[0] : 1, at = p[1];
    int64_t age = p[2];
    p += 3;
    n -= 3;
    struct wd_signin_claims in;
    memset(&in, 0, sizeof in);
    in.iat = NOW - age * 7;
    in.exp = NOW + 1 + age * 13;
    /* fields separated by NUL bytes: sub, email, name, then up to 16 groups */
    size_t raw = 0; /* the escaped JSON can be 6 times the text: used to tell a fair refusal by size */
    int field = 0;
    for (size_t start = 0; start <= n && field < 19; field++) {
        const uint8_t *z = memchr(p + start, 0, n - start);
        size_t end = z ? (size_t)(z - p) : n;
        char *dst = field == 0 ? in.sub : field == 1 ? in.email : field == 2 ? in.name : in.groups[field - 3];
        raw += keep_utf8(p + start, end - start, dst, 128) * 6 + 8;
        if (field >= 3)
            in.ngroups = field - 2;
        if (z == NULL)
            break;
        start = end + 1;
    }
    size_t cap = WD_SIGNIN_MAX_TOKEN + 1;
    char *tok = malloc(cap);
    int len = wd_signin_mint(ks, ISS, &in, tok, cap);
    if (in.sub[0] == '\0') {
        if (len != -1)
            __builtin_trap();
        free(tok);
        return;
    }
    if (len < 0) {
        /* refused only when the token could not fit: base64url makes 4 of 3, plus header and dates */
        if ((raw + 200) * 4 / 3 + 200 < WD_SIGNIN_MAX_TOKEN)
            __builtin_trap();
        free(tok);
        return;
    }
    if ((size_t)len >= cap || tok[len] != '\0' || strlen(tok) != (size_t)len)
        __builtin_trap();
    /* an exact allocation, so that ASan sees a read past the token's end */
    size_t tn = (size_t)len;
    char *t = malloc(tn);
    memcpy(t, tok, tn);
    free(tok);
    struct wd_signin_claims out;
    const char *why = NULL;
    if (!wd_signin_is_session(ks, t, tn) || wd_signin_verify(ks, ISS, t, tn, NOW, SKEW, &out, &why) != 0 ||
        !claims_equal(&in, &out))
        __builtin_trap();
    check_claims_shape(&out);
    if (wd_signin_verify(ks_rot, ISS, t, tn, NOW, SKEW, &out, &why) != 0 || !claims_equal(&in, &out))
        __builtin_trap();
    if (wd_signin_is_session(ks_other, t, tn) || wd_signin_verify(ks_other, ISS, t, tn, NOW, SKEW, &out, &why) != -1)
        __builtin_trap();
    if (wd_signin_verify(ks, "https://other.example", t, tn, NOW, SKEW, &out, &why) != -1 ||
        wd_signin_verify(ks, ISS, t, tn, in.exp + SKEW, SKEW, &out, &why) != -1 ||
        wd_signin_verify(ks, ISS, t, tn, in.iat - SKEW - 1, SKEW, &out, &why) != -1)
        __builtin_trap();
    const char *dot = memchr(t, '.', tn);
    dot = dot ? memchr(dot + 1, '.', tn - (size_t)(dot + 1 - t)) : NULL;
    if (dot == NULL)
        __builtin_trap();
    for (size_t i = (size_t)(dot + 1 - t); i < tn; i++)
        check_tampered(t, tn, i, x);
    check_tampered(t, tn, at * tn / 256, x);
    free(t);
}

/* ---- (2) canonical JSON ---- */

/* Every object's keys, decoded, in strictly increasing byte order (a repeated key is refused on the way in). */
static void check_sorted(const struct wd_json *j)
{
    struct wd_arena a = {0};
    for (uint32_t i = 0; i < j->n; i++) {
        if (wd_json_type(j, (int)i) != WD_J_OBJ)
            continue;
        struct wd_str prev = {NULL, 0};
        WD_JSON_OBJ_EACH(j, i, k)
        {
            struct wd_str key;
            if (wd_json_str_decode(j, (int)k, &a, &key) != 0)
                __builtin_trap();
            if (prev.p != NULL) {
                size_t m = prev.n < key.n ? prev.n : key.n;
                int d = memcmp(prev.p, key.p, m);
                if (d > 0 || (d == 0 && prev.n >= key.n))
                    __builtin_trap();
            }
            prev = key;
        }
    }
    wd_arena_free(&a);
}

/* The text as JSON.stringify spells it: no white space outside strings, and inside them only the escapes \" \\
 * \b \f \n \r \t and \u00xx (lowercase) for the other control characters. */
static void check_spelling(const char *c, size_t n)
{
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = c[i];
        if (!in_str) {
            if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
                __builtin_trap();
            in_str = ch == '"';
            continue;
        }
        if (ch == '"') {
            in_str = false;
        } else if (ch == '\\') {
            char e = c[++i];
            if (e == 'u') {
                if (i + 4 >= n || c[i + 1] != '0' || c[i + 2] != '0' || (c[i + 3] != '0' && c[i + 3] != '1'))
                    __builtin_trap();
                char h = c[i + 4];
                int v = (c[i + 3] - '0') * 16 + (h >= 'a' && h <= 'f' ? h - 'a' + 10 : h - '0');
                if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f')) || v == 8 || v == 9 || v == 10 || v == 12 ||
                    v == 13)
                    __builtin_trap();
                i += 4;
            } else if (strchr("\"\\bfnrt", e) == NULL || e == '\0') {
                __builtin_trap();
            }
        }
    }
}

static void check_canonical(const char *src, size_t n)
{
    struct wd_buf out = {0};
    int rc = wd_signin_canonical(src, n, &out);
    if (rc != 0) {
        if (rc != -1 || out.n != 0)
            __builtin_trap();
        wd_buf_free(&out);
        return;
    }
    if (out.oom)
        __builtin_trap();
    char *c = malloc(out.n ? out.n : 1);
    memcpy(c, out.p, out.n);
    struct wd_json j = {0};
    if (wd_json_parse(&j, c, out.n) != 0)
        __builtin_trap();
    check_sorted(&j);
    wd_json_free(&j);
    check_spelling(c, out.n);
    struct wd_buf again = {0};
    if (wd_signin_canonical(c, out.n, &again) != 0 || again.n != out.n || memcmp(again.p, out.p, out.n) != 0)
        __builtin_trap();
    char sum[72];
    memset(sum, 0x5a, sizeof sum);
    wd_signin_checksum(c, out.n, sum);
    if (strnlen(sum, sizeof sum) != 71 || memcmp(sum, "sha256:", 7) != 0)
        __builtin_trap();
    for (int i = 7; i < 71; i++)
        if (!((sum[i] >= '0' && sum[i] <= '9') || (sum[i] >= 'a' && sum[i] <= 'f')))
            __builtin_trap();
    free(c);
    wd_buf_free(&again);
    wd_buf_free(&out);
}

/* ---- (3) the grant store ---- */

enum model { M_NONE, M_PENDING, M_VERIFYING, M_APPROVED, M_DENIED, M_GONE };

struct slot {
    enum model m;
    int64_t created, last_poll;
    char device_code[44], user_code[10], state[44];
    char access[2304], refresh[2304];
    bool has_state; /* state was given to this grant (a slot reused by new() forgets the last one's) */
    int64_t expires_in;
};

struct reader {
    const uint8_t *p;
    size_t n, i;
};

static uint8_t next(struct reader *r)
{
    return r->i < r->n ? r->p[r->i++] : 0;
}

static bool live(const struct slot *s, int64_t now)
{
    return now < s->created + WD_SIGNIN_GRANT_TTL;
}

/* An access or refresh token of 0 to 2295 bytes, around the 2048-byte fields. */
static size_t make_token(struct reader *r, char *out)
{
    size_t len = (size_t)next(r) * 9;
    uint8_t seed = next(r);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)('!' + (seed + i) % 90);
    out[len] = '\0';
    return len;
}

static void check_user_code(const char *u)
{
    static const char alpha[] = "BCDFGHJKLMNPQRSTVWXZ";
    if (strnlen(u, 10) != 9 || u[4] != '-')
        __builtin_trap();
    for (int i = 0; i < 9; i++)
        if (i != 4 && memchr(alpha, u[i], 20) == NULL)
            __builtin_trap();
}

/* A user code as a browser might send it: as shown, lower case, without the dash, or with spaces. */
static size_t spell_user_code(const char *u, uint8_t how, char out[20])
{
    size_t o = 0;
    for (int i = 0; i < 9; i++) {
        char c = u[i];
        if (c == '-' && (how & 1))
            continue;
        if ((how & 2) && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[o++] = c;
        if (how & 4)
            out[o++] = ' ';
    }
    return o;
}

static void run_grants(const uint8_t *p, size_t n)
{
    static struct slot slots[8];
    memset(slots, 0, sizeof slots);
    struct reader r = {p, n, 0};
    int64_t now = NOW;
    unsigned made = 0;
    for (int ops = 0; ops < 256 && r.i < r.n; ops++) {
        uint8_t op = next(&r);
        unsigned adv = op >> 3;
        now += adv >= 30 ? 300 : adv;
        struct slot *s = &slots[next(&r) % 8];
        bool raw = (op & 7) != 0 && (next(&r) & 0xC0) == 0xC0; /* a code from the input instead of the slot's */
        char buf[64];
        size_t bn = 0;
        if (raw) {
            bn = next(&r) % sizeof buf;
            for (size_t i = 0; i < bn; i++)
                buf[i] = (char)next(&r);
        }
        struct wd_signin_grant_view v;
        const char *err = NULL;
        switch (op & 7) {
        case 0: { /* new */
            struct slot *f = &slots[made % 8];
            if (wd_signin_grant_new(now, f->device_code, f->user_code) != 0)
                __builtin_trap();  /* far below the bound */
            made++;
            if (strnlen(f->device_code, 44) != 43)
                __builtin_trap();
            check_user_code(f->user_code);
            f->m = M_PENDING;
            f->has_state = false;
            f->created = now;
            f->last_poll = 0;
            break;
        }
        case 1: { /* the browser submits a user code */
            uint8_t how = next(&r);
            if (!raw) {
                if (s->m == M_NONE)
                    break;
                bn = spell_user_code(s->user_code, how, buf);
            }
            int rc = wd_signin_grant_verify(buf, bn, now, &v);
            if (raw)
                break;
            if (rc != ((s->m == M_PENDING && live(s, now)) ? 0 : -1))
                __builtin_trap();
            if (rc == 0) {
                if (v.state != WD_SG_VERIFYING || strnlen(v.state_param, 44) != 43 || strnlen(v.nonce, 44) != 43 ||
                    strnlen(v.pkce_verifier, 44) != 43 || strcmp(v.user_code, s->user_code) != 0)
                    __builtin_trap();
                memcpy(s->state, v.state_param, 44);
                s->has_state = true;
                s->m = M_VERIFYING;
            }
            break;
        }
        case 2: { /* the IdP's callback looks up the state */
            if (raw) {
                wd_signin_grant_by_state(buf, bn, now, &v);
                break;
            }
            if (s->m == M_NONE)
                break;
            bool known = s->has_state;
            int rc = known ? wd_signin_grant_by_state(s->state, 43, now, &v) : -1;
            if (rc != ((s->m == M_VERIFYING && live(s, now)) ? 0 : -1))
                __builtin_trap();
            if (rc == 0 && (v.state != WD_SG_VERIFYING || memcmp(v.state_param, s->state, 44) != 0))
                __builtin_trap();
            break;
        }
        case 3: { /* approve */
            char *access = malloc(2304), *refresh = malloc(2304);
            size_t an = make_token(&r, access), rn = make_token(&r, refresh);
            uint8_t flags = next(&r);
            char email[160];
            size_t en = next(&r) % sizeof email;
            for (size_t i = 0; i < en; i++)
                email[i] = (char)(next(&r) | 1);
            email[en] = '\0';
            const char *rf = (flags & 1) ? NULL : refresh, *em = (flags & 2) ? NULL : email;
            int64_t exp_in = (int64_t)(flags >> 2) * 60;
            const char *st = raw ? buf : s->state;
            bool known = !raw && s->has_state;
            int rc = raw || known ? wd_signin_grant_approve(st, raw ? bn : 43, access, rf, exp_in, em) : -1;
            if (!raw) {
                bool fits = an > 0 && an < 2048 && (rf == NULL || rn < 2048);
                if (rc != ((s->m == M_VERIFYING && fits) ? 0 : -1))
                    __builtin_trap();
                if (rc == 0) {
                    s->m = M_APPROVED;
                    memcpy(s->access, access, an + 1);
                    memcpy(s->refresh, rf ? refresh : "", rf ? rn + 1 : 1);
                    s->expires_in = exp_in;
                }
            }
            free(access);
            free(refresh);
            break;
        }
        case 4: { /* the IdP said no */
            if (raw) {
                wd_signin_grant_deny_state(buf, bn);
                break;
            }
            bool known = s->has_state;
            int rc = known ? wd_signin_grant_deny_state(s->state, 43) : -1;
            if (rc != (s->m == M_VERIFYING ? 0 : -1))
                __builtin_trap();
            if (rc == 0)
                s->m = M_DENIED;
            break;
        }
        case 5: { /* the developer denied it in the browser */
            uint8_t how = next(&r);
            if (!raw) {
                if (s->m == M_NONE)
                    break;
                bn = spell_user_code(s->user_code, how, buf);
            }
            int rc = wd_signin_grant_deny_user_code(buf, bn, now);
            if (raw)
                break;
            if (rc != (((s->m == M_PENDING || s->m == M_VERIFYING) && live(s, now)) ? 0 : -1))
                __builtin_trap();
            if (rc == 0)
                s->m = M_DENIED;
            break;
        }
        case 6: { /* the CLI polls */
            int rc;
            if (raw) {
                rc = wd_signin_grant_poll(buf, bn, now, &v, &err);
                if (rc == 0 ? err != NULL : rc != 1 || err == NULL)
                    __builtin_trap();
                break;
            }
            if (s->m == M_NONE)
                break;
            rc = wd_signin_grant_poll(s->device_code, 43, now, &v, &err);
            const char *want = "expired_token";
            if (s->m != M_GONE && !live(s, now)) {
                s->m = M_GONE;
            } else if (s->m == M_APPROVED) {
                want = NULL;
                s->m = M_GONE;
            } else if (s->m == M_DENIED) {
                want = "access_denied";
                s->m = M_GONE;
            } else if (s->m == M_PENDING || s->m == M_VERIFYING) {
                want = s->last_poll != 0 && now - s->last_poll < WD_SIGNIN_POLL_INTERVAL - 1 ? "slow_down"
                                                                                           : "authorization_pending";
                s->last_poll = now;
            }
            if (want == NULL) {
                if (rc != 0 || err != NULL || v.state != WD_SG_APPROVED || strcmp(v.access_token, s->access) != 0 ||
                    strcmp(v.refresh_token, s->refresh) != 0 || v.expires_in != s->expires_in ||
                    strnlen(v.email, sizeof v.email) >= sizeof v.email)
                    __builtin_trap();
            } else if (rc != 1 || err == NULL || strcmp(err, want) != 0) {
                __builtin_trap();
            }
            break;
        }
        default: /* the periodic sweep */
            wd_signin_grant_sweep(now);
            for (int i = 0; i < 8; i++)
                if (slots[i].m != M_NONE && slots[i].m != M_GONE && !live(&slots[i], now))
                    slots[i].m = M_GONE;
            break;
        }
    }
    if (made > WD_SIGNIN_MAX_GRANTS)
        __builtin_trap();
    wd_signin_grants_free();
}

/* The IdP's token endpoint answer (server/signin.c reads it with wd_signin_read_token_answer): never a crash; on
 * success the claims are well formed, within the expected issuer and audience, and the refresh token fits. */
static void check_token_answer(const char *p, size_t n, uint8_t sel)
{
    static const struct wd_signin_idp idp = {.issuer = "https://idp.example", .client_id = "warden-gateway",
                                             .claim_sub = "sub", .claim_email = "email", .claim_name = "name",
                                             .claim_groups = "groups", .ttl_s = 3600};
    struct wd_signin_claims c;
    char refresh[512];
    const char *why = "unset";
    int r = wd_signin_read_token_answer(p, n, &idp, (sel & 8) ? "fuzz-nonce" : NULL, (sel & 16) != 0, NOW, &c,
                                        refresh, sizeof(refresh), &why);
    if (r == 0) {
        check_claims_shape(&c);
        if (why != NULL || c.iat != NOW || c.exp != NOW + 3600 || strnlen(refresh, sizeof(refresh)) >= sizeof(refresh))
            __builtin_trap();
    } else if (r != -1 || why == NULL || why[0] == '\0') {
        __builtin_trap();
    }
    (void)wd_signin_answer_error_is(p, n, "invalid_grant");
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
    switch (data[0] % 5) {
    case 0:
        check_bearer(buf, n);
        break;
    case 4:
        check_token_answer(buf, n, data[0]);
        break;
    case 1:
        check_mint((const uint8_t *)buf, n);
        break;
    case 2:
        check_canonical(buf, n);
        break;
    default:
        run_grants((const uint8_t *)buf, n);
        break;
    }
    free(buf);
    return 0;
}
