/* The admin API's request-body parsers (see admin_json.h). They read the body with lib/json's strict tokenizer,
 * which already refuses bad grammar, invalid UTF-8, raw control characters, trailing bytes and deep nesting; this
 * file adds the contract's rules: an object, no repeated or unknown member, each field's type and bounds. */
#include "authz/admin_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/jwks.h"
#include "lib/buf.h"
#include "lib/json.h"

static const char RULE_NAME[] = "1-128 characters of A-Z a-z 0-9 . _ @ -";

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A member name fit for a message: control characters dropped, at most 64 bytes, not cut inside a UTF-8
 * character (the name itself is valid UTF-8: the tokenizer checked it). */
static void clean_name(struct wd_str k, char *dst, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < k.n;) {
        unsigned char c = (unsigned char)k.p[i];
        size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (i + len > k.n)
            break;
        if (c < 0x20 || c == 0x7f) {
            i++;
            continue;
        }
        if (w + len > 64 || w + len >= cap)
            break;
        memcpy(dst + w, k.p + i, len);
        w += len;
        i += len;
    }
    dst[w] = '\0';
}

static bool name_char(unsigned char c, bool colon)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '@' || c == '-' || (colon && c == ':');
}

static bool is_name(struct wd_str s, size_t max, bool colon)
{
    if (s.n < 1 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!name_char((unsigned char)s.p[i], colon))
            return false;
    return true;
}

static bool is_model(struct wd_str s)
{
    if (s.n < 1 || s.n > 256)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.p[i] <= 0x20 || (unsigned char)s.p[i] >= 0x7f)
            return false;
    return true;
}

static bool is_text(struct wd_str s, size_t max)
{
    if (s.n < 1 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
            return false;
    return true;
}

static void copy_str(char *dst, size_t cap, struct wd_str s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

/* The shared front of the three parsers: size, grammar, an object, no repeated member. */
static int open_body(struct wd_json *j, const char *body, size_t len, char *err, size_t cap)
{
    if (len > WD_ADMIN_MAX_BODY)
        return fail(err, cap, "body: at most %d bytes", WD_ADMIN_MAX_BODY);
    if (body == NULL || len == 0)
        return fail(err, cap, "body: a JSON object is required");
    if (wd_json_parse(j, body, len) != 0)
        return fail(err, cap, "body: not valid JSON (%s at byte %zu)", j->err != NULL ? j->err : "error",
                    j->err_off);
    if (wd_json_type(j, 0) != WD_J_OBJ)
        return fail(err, cap, "body: must be a JSON object");
    char dup[80];
    if (wd_jose_no_dup_keys(j, 0, dup, sizeof dup) != 0)
        return fail(err, cap, "repeated key \"%s\"", dup);
    return 0;
}

/* The decoded name of member key k. */
static int member_name(const struct wd_json *j, uint32_t k, struct wd_arena *a, struct wd_str *out, char *err,
                       size_t cap)
{
    if (wd_json_str_decode(j, (int)k, a, out) != 0)
        return fail(err, cap, "body: out of memory");
    return 0;
}

static int unknown(struct wd_str k, char *err, size_t cap)
{
    char nm[72];
    clean_name(k, nm, sizeof nm);
    return fail(err, cap, "unknown field \"%s\"", nm);
}

/* A string member's decoded value, or -1 when v is not a string. */
static int str_val(const struct wd_json *j, uint32_t v, struct wd_arena *a, struct wd_str *out)
{
    if (wd_json_type(j, (int)v) != WD_J_STR)
        return -1;
    return wd_json_str_decode(j, (int)v, a, out);
}

/* An array of names or patterns into a malloc'd list; -1 with err set (nothing left allocated). */
static int str_list(const struct wd_json *j, uint32_t v, struct wd_arena *a, const char *field, bool models,
                    char ***out, size_t *nout, char *err, size_t cap)
{
    const char *rule = models ? "each 1-256 printable ASCII characters without spaces"
                              : "each 1-128 characters of A-Z a-z 0-9 . _ : @ -";
    if (wd_json_type(j, (int)v) != WD_J_ARR)
        return fail(err, cap, "%s: an array of at most %d strings", field, WD_ADMIN_MAX_LIST);
    uint32_t n = j->t[v].size;
    if (n > WD_ADMIN_MAX_LIST)
        return fail(err, cap, "%s: an array of at most %d strings", field, WD_ADMIN_MAX_LIST);
    char **list = n > 0 ? calloc(n, sizeof *list) : NULL;
    if (n > 0 && list == NULL)
        return fail(err, cap, "%s: out of memory", field);
    size_t got = 0;
    WD_JSON_ARR_EACH(j, v, e)
    {
        struct wd_str s;
        if (str_val(j, e, a, &s) != 0 || !(models ? is_model(s) : is_name(s, 128, true))) {
            fail(err, cap, "%s: %s", field, rule);
            goto bad;
        }
        list[got] = malloc(s.n + 1);
        if (list[got] == NULL) {
            fail(err, cap, "%s: out of memory", field);
            goto bad;
        }
        memcpy(list[got], s.p, s.n);
        list[got][s.n] = '\0';
        got++;
    }
    *out = list;
    *nout = got;
    return 0;
bad:
    for (size_t i = 0; i < got; i++)
        free(list[i]);
    free(list);
    return -1;
}

void wd_admin_key_req_free(struct wd_admin_key_req *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nmodels; i++)
        free(r->models[i]);
    free(r->models);
    for (size_t i = 0; i < r->nroles; i++)
        free(r->roles[i]);
    free(r->roles);
    r->models = r->roles = NULL;
    r->nmodels = r->nroles = 0;
}

int wd_admin_parse_key(const char *body, size_t len, bool patch, int64_t now_s, struct wd_admin_key_req *out,
                       char *err, size_t cap)
{
    *out = (struct wd_admin_key_req){0};
    struct wd_json j = {0};
    struct wd_arena a = {0};
    int rc = -1;
    if (open_body(&j, body, len, err, cap) != 0)
        goto done;
    WD_JSON_OBJ_EACH(&j, 0, k)
    {
        struct wd_str key, s;
        uint32_t v = k + 1;
        int vt = wd_json_type(&j, (int)v);
        if (member_name(&j, k, &a, &key, err, cap) != 0)
            goto done;
        if (wd_str_eq(key, "name")) {
            if (patch) {
                fail(err, cap, "name: cannot be changed (revoke the key and create another)");
                goto done;
            }
            if (str_val(&j, v, &a, &s) != 0 || !is_name(s, 128, false)) {
                fail(err, cap, "name: %s", RULE_NAME);
                goto done;
            }
            copy_str(out->name, sizeof out->name, s);
            out->has_name = true;
        } else if (wd_str_eq(key, "owner")) {
            if (vt == WD_J_NULL) {
                out->owner_set = WD_ADMIN_NULL;
            } else if (str_val(&j, v, &a, &s) != 0 || !is_text(s, 128)) {
                fail(err, cap, "owner: null or 1-128 bytes of text without control characters");
                goto done;
            } else {
                copy_str(out->owner, sizeof out->owner, s);
                out->owner_set = WD_ADMIN_SET;
            }
        } else if (wd_str_eq(key, "team")) {
            if (vt == WD_J_NULL) {
                out->team_set = WD_ADMIN_NULL;
            } else if (str_val(&j, v, &a, &s) != 0 || !is_name(s, 128, false)) {
                fail(err, cap, "team: null or %s", RULE_NAME);
                goto done;
            } else {
                copy_str(out->team, sizeof out->team, s);
                out->team_set = WD_ADMIN_SET;
            }
        } else if (wd_str_eq(key, "models")) {
            if (str_list(&j, v, &a, "models", true, &out->models, &out->nmodels, err, cap) != 0)
                goto done;
            out->models_set = true;
        } else if (wd_str_eq(key, "roles")) {
            if (str_list(&j, v, &a, "roles", false, &out->roles, &out->nroles, err, cap) != 0)
                goto done;
            out->roles_set = true;
        } else if (wd_str_eq(key, "expires_at")) {
            if (vt == WD_J_NULL) {
                out->expires_set = WD_ADMIN_NULL;
                continue;
            }
            if (str_val(&j, v, &a, &s) != 0 || wd_admin_parse_time(s.p, s.n, &out->expires_at) != 0) {
                fail(err, cap, "expires_at: null or an RFC 3339 UTC time such as 2027-01-31T00:00:00Z");
                goto done;
            }
            if (out->expires_at <= now_s) {
                fail(err, cap, "expires_at: must be in the future");
                goto done;
            }
            out->expires_set = WD_ADMIN_SET;
        } else {
            unknown(key, err, cap);
            goto done;
        }
    }
    if (!patch && !out->has_name) {
        fail(err, cap, "name: required (%s)", RULE_NAME);
        goto done;
    }
    if (patch && out->owner_set == WD_ADMIN_ABSENT && out->team_set == WD_ADMIN_ABSENT && !out->models_set &&
        !out->roles_set && out->expires_set == WD_ADMIN_ABSENT) {
        fail(err, cap, "body: at least one of owner, team, models, roles, expires_at");
        goto done;
    }
    rc = 0;
done:
    if (rc != 0) {
        wd_admin_key_req_free(out);
        *out = (struct wd_admin_key_req){0};
    }
    wd_arena_free(&a);
    wd_json_free(&j);
    return rc;
}

int wd_admin_parse_team(const char *body, size_t len, struct wd_admin_team_req *out, char *err, size_t cap)
{
    *out = (struct wd_admin_team_req){0};
    struct wd_json j = {0};
    struct wd_arena a = {0};
    bool has_name = false;
    int rc = -1;
    if (open_body(&j, body, len, err, cap) != 0)
        goto done;
    WD_JSON_OBJ_EACH(&j, 0, k)
    {
        struct wd_str key, s;
        uint32_t v = k + 1;
        if (member_name(&j, k, &a, &key, err, cap) != 0)
            goto done;
        if (wd_str_eq(key, "name")) {
            if (str_val(&j, v, &a, &s) != 0 || !is_name(s, 128, false)) {
                fail(err, cap, "name: %s", RULE_NAME);
                goto done;
            }
            copy_str(out->name, sizeof out->name, s);
            has_name = true;
        } else if (wd_str_eq(key, "org")) {
            if (wd_json_type(&j, (int)v) == WD_J_NULL)
                continue;
            if (str_val(&j, v, &a, &s) != 0 || !is_name(s, 128, false)) {
                fail(err, cap, "org: null or %s", RULE_NAME);
                goto done;
            }
            copy_str(out->org, sizeof out->org, s);
            out->has_org = true;
        } else {
            unknown(key, err, cap);
            goto done;
        }
    }
    if (!has_name) {
        fail(err, cap, "name: required (%s)", RULE_NAME);
        goto done;
    }
    rc = 0;
done:
    if (rc != 0)
        *out = (struct wd_admin_team_req){0};
    wd_arena_free(&a);
    wd_json_free(&j);
    return rc;
}

/* The value of a JSON number's text as digits d (no leading or trailing zeros) times 10^e, exactly. -1 for a
 * negative number, text that is not of the JSON grammar, or more than dcap significant digits (no limit has that
 * many). Zeros are held back until a nonzero digit follows them, so that trailing ones become exponent. Exponents
 * are clamped at +-10^6: beyond that any value is out of range for the callers. */
static int decimal(const char *p, size_t n, char *d, size_t dcap, size_t *dn, int64_t *e)
{
    size_t i = 0, w = 0, pz = 0;
    int64_t exp = 0, shift = 0;
    if (n == 0 || p[0] == '-')
        return -1;
    bool frac = false;
    size_t nint = 0, nfrac = 0;
    for (; i < n; i++) {
        char c = p[i];
        if (c == '.' && !frac && nint > 0) {
            frac = true;
            continue;
        }
        if (c < '0' || c > '9')
            break;
        if (frac) {
            nfrac++;
            shift--;
        } else {
            nint++;
        }
        if (c == '0') {
            if (w > 0)
                pz++;
            continue;
        }
        if (w + pz + 1 > dcap)
            return -1;
        memset(d + w, '0', pz);
        w += pz;
        pz = 0;
        d[w++] = c;
    }
    if (nint == 0 || (frac && nfrac == 0))
        return -1;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        bool neg = false, any = false;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            neg = p[i++] == '-';
        for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
            any = true;
            if (exp < 1000000)
                exp = exp * 10 + (p[i] - '0');
        }
        if (!any)
            return -1;
        if (neg)
            exp = -exp;
    }
    if (i != n)
        return -1;
    *dn = w;
    *e = exp + shift + (int64_t)pz;
    return 0;
}

int wd_admin_parse_limit(const char *num, size_t n, enum wd_admin_metric metric, int64_t *out, const char **why)
{
    if (metric != WD_ADMIN_METRIC_USD && metric != WD_ADMIN_METRIC_REQUESTS && metric != WD_ADMIN_METRIC_TOKENS) {
        *why = "the budget's metric is unknown";
        return -1;
    }
    bool usd = metric == WD_ADMIN_METRIC_USD;
    const char *range = usd ? "a number of USD greater than 0, at most 1000000000" : "an integer from 1 to 10^15";
    char d[40];
    size_t dn;
    int64_t e;
    if (decimal(num, n, d, sizeof d, &dn, &e) != 0 || dn == 0) {
        *why = range;
        return -1;
    }
    int64_t scale = e + (usd ? 6 : 0);
    if (scale < 0) {
        *why = usd ? "USD with at most 6 decimals" : "an integer from 1 to 10^15";
        return -1;
    }
    /* 10^15 has 16 digits: more than that is out of range whatever they are */
    if ((int64_t)dn + scale > 16) {
        *why = range;
        return -1;
    }
    int64_t v = 0;
    for (size_t i = 0; i < dn; i++)
        v = v * 10 + (d[i] - '0');
    for (int64_t i = 0; i < scale; i++)
        v *= 10;
    if (v < 1 || v > WD_ADMIN_MAX_LIMIT) {
        *why = range;
        return -1;
    }
    *out = v;
    return 0;
}

int wd_admin_parse_budget(const char *body, size_t len, bool patch, struct wd_admin_budget_req *out, char *err,
                          size_t cap)
{
    enum wd_admin_metric patch_metric = patch ? out->metric : 0;
    if (patch) {
        out->limit = 0;
        out->has_limit = false;
    } else {
        *out = (struct wd_admin_budget_req){0};
    }
    struct wd_json j = {0};
    struct wd_arena a = {0};
    int rc = -1;
    bool has_subject = false;
    uint32_t limit_tok = 0;
    if (open_body(&j, body, len, err, cap) != 0)
        goto done;
    WD_JSON_OBJ_EACH(&j, 0, k)
    {
        struct wd_str key, s;
        uint32_t v = k + 1;
        if (member_name(&j, k, &a, &key, err, cap) != 0)
            goto done;
        bool is_scope = wd_str_eq(key, "scope"), is_metric = wd_str_eq(key, "metric"),
             is_period = wd_str_eq(key, "period"), is_subject = wd_str_eq(key, "subject");
        if (wd_str_eq(key, "limit")) {
            if (wd_json_type(&j, (int)v) != WD_J_NUM) {
                fail(err, cap, "limit: a number greater than 0");
                goto done;
            }
            limit_tok = v; /* read once the metric is known */
        } else if (patch && (is_scope || is_metric || is_period || is_subject)) {
            fail(err, cap, "%.*s: cannot be changed (only limit can)", (int)key.n, key.p);
            goto done;
        } else if (is_scope) {
            if (str_val(&j, v, &a, &s) != 0 || (out->scope = wd_admin_scope_from(s.p, s.n)) == 0) {
                fail(err, cap, "scope: one of \"key\", \"team\", \"org\"");
                goto done;
            }
        } else if (is_metric) {
            if (str_val(&j, v, &a, &s) != 0 || (out->metric = wd_admin_metric_from(s.p, s.n)) == 0) {
                fail(err, cap, "metric: one of \"usd\", \"requests\", \"tokens\"");
                goto done;
            }
        } else if (is_period) {
            if (str_val(&j, v, &a, &s) != 0 || (out->period = wd_admin_period_from(s.p, s.n)) == 0) {
                fail(err, cap, "period: one of \"minute\", \"daily\", \"weekly\", \"monthly\", \"total\"");
                goto done;
            }
        } else if (is_subject) {
            if (str_val(&j, v, &a, &s) != 0 || !is_name(s, 128, false)) {
                fail(err, cap, "subject: %s", RULE_NAME);
                goto done;
            }
            copy_str(out->subject, sizeof out->subject, s);
            has_subject = true;
        } else {
            unknown(key, err, cap);
            goto done;
        }
    }
    if (!patch) {
        static const char *const req[] = {"scope", "subject", "metric", "period"};
        bool have[] = {out->scope != 0, has_subject, out->metric != 0, out->period != 0};
        for (size_t i = 0; i < 4; i++)
            if (!have[i]) {
                fail(err, cap, "%s: required", req[i]);
                goto done;
            }
    }
    if (limit_tok == 0) {
        fail(err, cap, "limit: required (a number greater than 0)");
        goto done;
    }
    const char *why;
    struct wd_str raw = wd_json_raw(&j, (int)limit_tok);
    if (wd_admin_parse_limit(raw.p, raw.n, patch ? patch_metric : out->metric, &out->limit, &why) != 0) {
        fail(err, cap, "limit: %s", why);
        goto done;
    }
    out->has_limit = true;
    rc = 0;
done:
    if (rc != 0) {
        if (patch) {
            out->limit = 0;
            out->has_limit = false;
        } else {
            *out = (struct wd_admin_budget_req){0};
        }
    }
    wd_arena_free(&a);
    wd_json_free(&j);
    return rc;
}

static const char *const SCOPES[] = {NULL, "key", "team", "org"};
static const char *const METRICS[] = {NULL, "usd", "requests", "tokens"};
static const char *const PERIODS[] = {NULL, "minute", "daily", "weekly", "monthly", "total"};

static int lookup(const char *const *names, int count, const char *s, size_t n)
{
    if (s == NULL)
        return 0;
    for (int i = 1; i < count; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return i;
    return 0;
}

const char *wd_admin_scope_name(enum wd_admin_scope s)
{
    return (int)s >= 1 && (int)s <= 3 ? SCOPES[s] : NULL;
}
const char *wd_admin_metric_name(enum wd_admin_metric m)
{
    return (int)m >= 1 && (int)m <= 3 ? METRICS[m] : NULL;
}
const char *wd_admin_period_name(enum wd_admin_period p)
{
    return (int)p >= 1 && (int)p <= 5 ? PERIODS[p] : NULL;
}
enum wd_admin_scope wd_admin_scope_from(const char *s, size_t n)
{
    return (enum wd_admin_scope)lookup(SCOPES, 4, s, n);
}
enum wd_admin_metric wd_admin_metric_from(const char *s, size_t n)
{
    return (enum wd_admin_metric)lookup(METRICS, 4, s, n);
}
enum wd_admin_period wd_admin_period_from(const char *s, size_t n)
{
    return (enum wd_admin_period)lookup(PERIODS, 6, s, n);
}

/* n decimal digits at s, or -1. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (the usual era arithmetic). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int wd_admin_parse_time(const char *s, size_t n, int64_t *out)
{
    if (s == NULL || n < 20)
        return -1;
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59)
        return -1;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return -1;
    size_t i = 19;
    if (s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return -1;
    }
    if (n - i == 1 && (s[i] == 'Z' || s[i] == 'z')) {
        /* UTC */
    } else if (n - i == 6 && memcmp(s + i, "+00:00", 6) == 0) {
        /* UTC, spelled as an offset */
    } else {
        return -1;
    }
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}
