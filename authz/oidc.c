/* OIDC issuers' keys, token verification and the verified-token cache (authz/oidc.h). The store is small (at
 * most 16 issuers) and read under one mutex only when a token is not in its worker's cache: a cached token costs a
 * keyed hash and a compare. A published key set is reference counted, so a worker verifying with it never races
 * the fetcher replacing it. Every publish of changed keys, and every reconfiguration, bumps an epoch that voids
 * all cached tokens: a key the IdP removed stops verifying at once, not when its tokens expire. */
#include "authz/oidc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "authz/jwks.h"
#include "authz/jwt.h"
#include "authz/rbac.h"
#include "lib/hash.h"
#include "lib/log.h"

#define ON_DEMAND_MIN_MS 10000 /* an unknown kid asks for a refresh at most this often per issuer */
#define MAX_GROUPS 256         /* group values read from a token (more are not looked at) */

struct keyset {
    atomic_int refs;
    struct wd_jwks ks;
};

struct slot {
    char *issuer;              /* as configured: compared byte for byte with iss */
    char *jwks_cfg;            /* the configured jwks_uri, or NULL */
    char *tls_ca;
    char name[64];
    unsigned refresh_ms, timeout_ms;
    char jwks_found[1024];     /* the discovery document's jwks_uri */
    struct keyset *keys;       /* NULL until a fetch succeeded */
    uint8_t keys_tag[16];      /* of the JWKS document last published */
    int64_t next_ms;           /* the next scheduled fetch */
    int64_t last_try_ms;       /* when the last fetch started */
    bool fetching, want;       /* want: a request asked for keys */
    unsigned fails;
    char err[160];
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot s[WD_OIDC_MAX_ISSUERS];
    size_t n;
    uint64_t serial;
    bool stop;
    bool kicked;               /* a request asked for keys since the fetcher last looked */
} st = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static _Atomic uint64_t epoch = 1;

static void keys_release(struct keyset *k)
{
    if (k != NULL && atomic_fetch_sub(&k->refs, 1) == 1) {
        wd_jwks_free(&k->ks);
        free(k);
    }
}

static void slot_free(struct slot *s)
{
    free(s->issuer);
    free(s->jwks_cfg);
    free(s->tls_ca);
    keys_release(s->keys);
    memset(s, 0, sizeof(*s));
}

static bool same_str(const char *a, const char *b) { return (a == NULL && b == NULL) || (a && b && !strcmp(a, b)); }

static char *dup_or_null(const char *s) { return s != NULL ? strdup(s) : NULL; }

int wd_oidc_configure(const struct wd_config *cfg)
{
    if (cfg->noidc > WD_OIDC_MAX_ISSUERS)
        return -1;
    struct slot next[WD_OIDC_MAX_ISSUERS];
    memset(next, 0, sizeof(next));
    pthread_mutex_lock(&st.mu);
    for (size_t i = 0; i < cfg->noidc; i++) {
        const struct wd_oidc_issuer *c = &cfg->oidc[i];
        struct slot *s = &next[i];
        for (size_t k = 0; k < st.n; k++) {
            struct slot *o = &st.s[k];
            if (o->issuer != NULL && !strcmp(o->issuer, c->issuer) && same_str(o->jwks_cfg, c->jwks_uri) &&
                same_str(o->tls_ca, c->tls_ca)) {
                *s = *o; /* its keys, schedule and state move over */
                memset(o, 0, sizeof(*o));
                break;
            }
        }
        if (s->issuer == NULL) {
            s->issuer = strdup(c->issuer);
            s->jwks_cfg = dup_or_null(c->jwks_uri);
            s->tls_ca = dup_or_null(c->tls_ca);
        }
        snprintf(s->name, sizeof(s->name), "%s", c->name);
        s->refresh_ms = c->refresh_ms;
        s->timeout_ms = c->fetch_timeout_ms;
    }
    for (size_t k = 0; k < st.n; k++)
        slot_free(&st.s[k]);
    memcpy(st.s, next, sizeof(next));
    st.n = cfg->noidc;
    st.serial++;
    st.kicked = true;
    atomic_fetch_add(&epoch, 1);
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
    return 0;
}

void wd_oidc_shutdown(void)
{
    pthread_mutex_lock(&st.mu);
    for (size_t k = 0; k < st.n; k++)
        slot_free(&st.s[k]);
    st.n = 0;
    pthread_mutex_unlock(&st.mu);
}

/* When slot s wants its next fetch. */
static int64_t due_ms(const struct slot *s)
{
    if (s->keys == NULL)
        return s->next_ms; /* the first keys (or the backoff after a failure) */
    int64_t due = s->next_ms;
    if (s->want && s->last_try_ms + ON_DEMAND_MIN_MS < due)
        due = s->last_try_ms + ON_DEMAND_MIN_MS;
    return due;
}

int wd_oidc_next_job(int64_t now_ms, struct wd_oidc_job *job, int64_t *wait_ms)
{
    pthread_mutex_lock(&st.mu);
    int64_t wait = 60000;
    for (size_t k = 0; k < st.n; k++) {
        struct slot *s = &st.s[k];
        if (s->fetching)
            continue;
        int64_t due = due_ms(s);
        if (due <= now_ms) {
            s->fetching = true;
            s->want = false;
            s->last_try_ms = now_ms;
            memset(job, 0, sizeof(*job));
            job->slot = (int)k;
            job->serial = st.serial;
            snprintf(job->issuer, sizeof(job->issuer), "%s", s->issuer);
            snprintf(job->jwks_uri, sizeof(job->jwks_uri), "%s", s->jwks_cfg ? s->jwks_cfg : s->jwks_found);
            snprintf(job->tls_ca, sizeof(job->tls_ca), "%s", s->tls_ca ? s->tls_ca : "");
            job->timeout_ms = s->timeout_ms;
            pthread_mutex_unlock(&st.mu);
            return 1;
        }
        if (due - now_ms < wait)
            wait = due - now_ms;
    }
    pthread_mutex_unlock(&st.mu);
    *wait_ms = wait;
    return 0;
}

void wd_oidc_job_done(const struct wd_oidc_job *job, int64_t now_ms, const char *jwks, size_t len,
                      const char *discovered_jwks_uri, const char *err)
{
    struct wd_jwks ks = {0};
    const char *why = err;
    uint8_t tag[16] = {0};
    int nkeys = -1;
    if (why == NULL) {
        nkeys = wd_jwks_parse(jwks, len, &ks, &why);
        if (nkeys < 0)
            ks = (struct wd_jwks){0};
        else
            wd_siphash128(wd_process_key(), jwks, len, tag);
    }
    pthread_mutex_lock(&st.mu);
    struct slot *s = NULL;
    for (size_t k = 0; k < st.n && s == NULL; k++)
        if (!strcmp(st.s[k].issuer, job->issuer))
            s = &st.s[k]; /* the slot may have moved with a reload: found by its issuer */
    if (s == NULL) {
        pthread_mutex_unlock(&st.mu);
        wd_jwks_free(&ks);
        return;
    }
    s->fetching = false;
    char name[64];
    snprintf(name, sizeof(name), "%s", s->name);
    if (nkeys < 0) {
        s->fails++;
        unsigned shift = s->fails < 6 ? s->fails : 6;
        int64_t backoff = 1000ll << shift; /* 2 s, 4 s, ... 64 s */
        s->next_ms = now_ms + (backoff < 60000 ? backoff : 60000);
        snprintf(s->err, sizeof(s->err), "%s", why ? why : "fetch failed");
        char errcopy[160];
        snprintf(errcopy, sizeof(errcopy), "%s", s->err);
        bool had = s->keys != NULL;
        pthread_mutex_unlock(&st.mu);
        wd_logf(WD_LOG_WARN, "", "oidc %s: keys not refreshed: %s%s", name, errcopy,
                had ? " (the keys fetched before stay in use)" : "");
        return;
    }
    if (discovered_jwks_uri != NULL && discovered_jwks_uri[0] != '\0')
        snprintf(s->jwks_found, sizeof(s->jwks_found), "%s", discovered_jwks_uri);
    s->fails = 0;
    s->err[0] = '\0';
    s->next_ms = now_ms + s->refresh_ms;
    bool changed = s->keys == NULL || memcmp(s->keys_tag, tag, sizeof(tag)) != 0;
    struct keyset *old = NULL;
    if (changed) {
        struct keyset *k = calloc(1, sizeof(*k));
        if (k != NULL) {
            atomic_init(&k->refs, 1);
            k->ks = ks;
            ks = (struct wd_jwks){0};
            old = s->keys;
            s->keys = k;
            memcpy(s->keys_tag, tag, sizeof(tag));
            atomic_fetch_add(&epoch, 1); /* cached tokens are verified again against the new keys */
        }
    }
    pthread_mutex_unlock(&st.mu);
    keys_release(old);
    wd_jwks_free(&ks);
    if (changed)
        wd_logf(WD_LOG_INFO, "", "oidc %s: %d signing key%s in use", name, nkeys, nkeys == 1 ? "" : "s");
}

int wd_oidc_discovery(const char *json, size_t len, const char *issuer, char *jwks_uri, size_t cap, const char **why)
{
    struct wd_json j = {0};
    struct wd_arena a = {0};
    struct wd_str iss, ju;
    int rc = -1;
    if (wd_json_parse(&j, json, len) != 0 || j.t[0].type != WD_J_OBJ)
        *why = "discovery: not a JSON object";
    else if (wd_json_str_decode(&j, wd_json_get(&j, 0, "issuer"), &a, &iss) != 0 || !wd_str_eq(iss, issuer))
        *why = "discovery: its issuer is not the configured one";
    else if (wd_json_str_decode(&j, wd_json_get(&j, 0, "jwks_uri"), &a, &ju) != 0 || ju.n == 0 || ju.n >= cap ||
             memchr(ju.p, '\0', ju.n) != NULL || !(wd_str_has_prefix(ju, "https://") || wd_str_has_prefix(ju, "http://")))
        *why = "discovery: no usable jwks_uri";
    else {
        memcpy(jwks_uri, ju.p, ju.n);
        jwks_uri[ju.n] = '\0';
        rc = 0;
    }
    wd_json_free(&j);
    wd_arena_free(&a);
    return rc;
}

bool wd_oidc_wait(int64_t timeout_ms)
{
    pthread_mutex_lock(&st.mu);
    if (!st.stop && timeout_ms > 0 && !st.kicked) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&st.cv, &st.mu, &ts);
    }
    st.kicked = false;
    bool go = !st.stop;
    pthread_mutex_unlock(&st.mu);
    return go;
}

void wd_oidc_stop(void)
{
    pthread_mutex_lock(&st.mu);
    st.stop = true;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
}

int wd_oidc_status(size_t i, char *name, size_t name_cap, char *err, size_t err_cap)
{
    pthread_mutex_lock(&st.mu);
    int r = -2;
    if (i < st.n) {
        const struct slot *s = &st.s[i];
        snprintf(name, name_cap, "%s", s->name);
        snprintf(err, err_cap, "%s", s->err);
        r = s->keys ? (int)s->keys->ks.n : -1;
    }
    pthread_mutex_unlock(&st.mu);
    return r;
}

/* The issuer's keys (a reference), or NULL; asks the fetcher for keys when want is set or there are none. */
static struct keyset *keys_get(const char *issuer, bool want, bool *fetch_soon, int64_t now_ms, int64_t within_ms)
{
    struct keyset *k = NULL;
    *fetch_soon = false;
    pthread_mutex_lock(&st.mu);
    for (size_t i = 0; i < st.n; i++) {
        struct slot *s = &st.s[i];
        if (strcmp(s->issuer, issuer) != 0)
            continue;
        if (s->keys != NULL && !want) {
            k = s->keys;
            atomic_fetch_add(&k->refs, 1);
        } else {
            s->want = true;
            *fetch_soon = s->fetching || due_ms(s) <= now_ms + within_ms;
            st.kicked = true;
            pthread_cond_broadcast(&st.cv);
        }
        break;
    }
    pthread_mutex_unlock(&st.mu);
    return k;
}

/* ---- the verified-token cache ---- */

#define CACHE_SLOTS 1024

struct centry {
    uint8_t tag[16];           /* SipHash-128 of the token under the process key */
    uint64_t epoch;            /* the store's epoch when it was verified */
    const struct wd_config *cfg; /* the config its roles were computed under */
    int64_t exp_s, skew_s;
    struct wd_principal p;
};

struct wd_oidc_cache {
    struct centry e[CACHE_SLOTS];
};

struct wd_oidc_cache *wd_oidc_cache_new(void) { return calloc(1, sizeof(struct wd_oidc_cache)); }

void wd_oidc_cache_free(struct wd_oidc_cache *c)
{
    if (c != NULL)
        OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

bool wd_oidc_looks_like_jwt(struct wd_str t)
{
    if (t.n < 16 || t.n > WD_JWT_MAX || t.p[0] != 'e' || t.p[1] != 'y')
        return false; /* a JOSE header is a JSON object: base64url of '{"' starts "ey" */
    const char *d1 = memchr(t.p, '.', t.n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(t.p + t.n - d1 - 1)) : NULL;
    return d2 != NULL && memchr(d2 + 1, '.', (size_t)(t.p + t.n - d2 - 1)) == NULL;
}

static int64_t now_ms_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The configured issuer of a decoded token, by its iss; NULL when none. */
static const struct wd_oidc_issuer *issuer_of(const struct wd_config *cfg, const struct wd_jwt *t, struct wd_arena *a)
{
    struct wd_str iss;
    if (wd_jwt_claim_str(t, "iss", a, &iss) < 0)
        return NULL;
    for (size_t i = 0; i < cfg->noidc; i++)
        if (strlen(cfg->oidc[i].issuer) == iss.n && memcmp(cfg->oidc[i].issuer, iss.p, iss.n) == 0)
            return &cfg->oidc[i];
    return NULL;
}

/* Whether the claims name groups held elsewhere (Entra's group overage: _claim_names.groups). */
static bool group_overage(const struct wd_jwt *t, const char *groups_claim)
{
    int names = wd_json_get(&t->claims, 0, "_claim_names");
    return names >= 0 && wd_json_type(&t->claims, names) == WD_J_OBJ && wd_json_get(&t->claims, names, groups_claim) >= 0;
}

int wd_oidc_authenticate(struct wd_oidc_cache *cache, const struct wd_config *cfg, struct wd_str token, int64_t now_s,
                         struct wd_principal *out, const char **why)
{
    uint8_t tag[16];
    wd_siphash128(wd_process_key(), token.p, token.n, tag);
    return wd_oidc_authenticate_tag(cache, cfg, token, tag, now_s, out, why);
}

int wd_oidc_authenticate_tag(struct wd_oidc_cache *cache, const struct wd_config *cfg, struct wd_str token,
                             const uint8_t tag[16], int64_t now_s, struct wd_principal *out, const char **why)
{
    *why = NULL;
    uint64_t ep = atomic_load_explicit(&epoch, memory_order_acquire);
    struct centry *ce = NULL;
    if (cache != NULL) {
        unsigned idx = ((unsigned)tag[0] | (unsigned)tag[1] << 8) % CACHE_SLOTS;
        ce = &cache->e[idx];
        if (ce->epoch == ep && ce->cfg == cfg && CRYPTO_memcmp(ce->tag, tag, sizeof(ce->tag)) == 0 &&
            now_s < ce->exp_s + ce->skew_s) {
            *out = ce->p;
            return 0;
        }
    }

    struct wd_jwt t = {0};
    struct wd_arena a = {0};
    struct keyset *ks = NULL;
    int rc = -1;
    if (wd_jwt_decode(token.p, token.n, &t, why) < 0)
        goto out;
    const struct wd_oidc_issuer *is = issuer_of(cfg, &t, &a);
    if (is == NULL) {
        *why = "iss is not a configured issuer";
        goto out;
    }
    bool soon;
    ks = keys_get(is->issuer, false, &soon, now_ms_mono(), is->wait_ms);
    if (ks == NULL) {
        *why = "the issuer's signing keys are not available yet";
        rc = WD_OIDC_PENDING;
        goto out;
    }
    struct wd_str kid = {t.kid, strlen(t.kid)};
    const struct wd_jwk *key = wd_jwks_find(&ks->ks, kid, t.alg);
    if (key == NULL) {
        /* a key the IdP has just added: its keys are fetched again (at most every 10 s) */
        keys_get(is->issuer, true, &soon, now_ms_mono(), is->wait_ms);
        *why = kid.n ? "unknown kid" : "no key for the token's alg";
        rc = soon ? WD_OIDC_PENDING : -1;
        goto out;
    }
    if (wd_jwt_verify(&t, key, why) < 0)
        goto out;
    const char *auds[17];
    size_t na = 0;
    for (; na < is->naudiences && na < 16; na++)
        auds[na] = is->audiences[na];
    auds[na] = NULL;
    struct wd_jwt_expect ex = {.issuer = is->issuer, .audiences = auds, .now = now_s,
                               .skew = is->clock_skew_ms / 1000, .max_lifetime = 0};
    if (wd_jwt_check_claims(&t, &ex, why) < 0)
        goto out;

    struct wd_str sub, email = WD_STR_NULL;
    if (wd_jwt_claim_str(&t, is->claim_subject, &a, &sub) < 0 || sub.n == 0) {
        *why = "no subject claim";
        goto out;
    }
    (void)wd_jwt_claim_str(&t, is->claim_email, &a, &email);
    struct wd_str groups[MAX_GROUPS], roles[64];
    int ng = wd_jwt_claim_strings(&t, is->claim_groups, &a, groups, MAX_GROUPS);
    if (ng <= 0 && group_overage(&t, is->claim_groups)) {
        *why = "group overage: the token names no groups (_claim_names); have the IdP put groups or app roles in "
               "the token";
        goto out;
    }
    int nr = wd_jwt_claim_strings(&t, is->claim_roles, &a, roles, 64);
    memset(out, 0, sizeof(*out));
    wd_str_copy(out->subject, sizeof(out->subject), sub);
    if (email.p != NULL)
        wd_str_copy(out->email, sizeof(out->email), email);
    snprintf(out->issuer, sizeof(out->issuer), "%s", is->name);
    out->method = "oidc";
    struct wd_str team, org;
    if (is->claim_team != NULL && wd_jwt_claim_str(&t, is->claim_team, &a, &team) == 0 && team.n > 0)
        wd_str_copy(out->team, sizeof(out->team), team);
    if (is->claim_org != NULL && wd_jwt_claim_str(&t, is->claim_org, &a, &org) == 0 && org.n > 0)
        wd_str_copy(out->org, sizeof(out->org), org);
    struct wd_rbac_who who = {.subject = sub, .email = email, .groups = groups, .ngroups = ng > 0 ? ng : 0,
                              .roles = roles, .nroles = nr > 0 ? nr : 0};
    out->roles = wd_rbac_roles(cfg, &who, out->groups, sizeof(out->groups));
    if (ce != NULL) {
        memcpy(ce->tag, tag, sizeof(ce->tag));
        ce->epoch = ep;
        ce->cfg = cfg;
        ce->exp_s = wd_jwt_exp(&t);
        ce->skew_s = is->clock_skew_ms / 1000;
        ce->p = *out;
    }
    rc = 0;
out:
    keys_release(ks);
    wd_jwt_free(&t);
    wd_arena_free(&a);
    return rc;
}

unsigned wd_oidc_wait_ms(const struct wd_config *cfg, struct wd_str token)
{
    struct wd_jwt t = {0};
    struct wd_arena a = {0};
    const char *why;
    unsigned ms = 3000;
    if (wd_jwt_decode(token.p, token.n, &t, &why) == 0) {
        const struct wd_oidc_issuer *is = issuer_of(cfg, &t, &a);
        if (is != NULL)
            ms = is->wait_ms;
    }
    wd_jwt_free(&t);
    wd_arena_free(&a);
    return ms;
}
