/* Governance on the request path: the published snapshot of keys, teams and limits, the per-worker cache of
 * verified virtual keys, and admission against this replica's leases (docs/governance.md explains the design and
 * its overshoot bound). Workers only read snapshots and move atomic counters; the governor builds and publishes. */
#include "authz/govern.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "lib/clock.h"
#include "lib/hash.h"

/* (scope, name) -> one limit, or a team's org (limit NULL): sorted at publication, looked up by range. */
struct wd_gov_subject {
    enum wd_gov_scope scope;
    char name[WD_GOV_NAME_MAX];
    char org[WD_GOV_NAME_MAX];       /* a team row: its org */
    struct wd_gov_limit *limit;      /* a limit row */
};

static _Atomic bool db_up = true; /* until the governor says otherwise */
static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wd_gov_snap *current;
static _Atomic uint64_t current_serial;
static struct wd_gov_limit *all_limits;
static void (*wake_hook)(void);

/* ---- names ---- */

static const char *const scope_names[] = {[WD_GOV_SCOPE_KEY] = "key", [WD_GOV_SCOPE_TEAM] = "team",
                                          [WD_GOV_SCOPE_ORG] = "org"};
static const char *const metric_names[] = {[WD_GOV_USD] = "usd", [WD_GOV_REQUESTS] = "requests",
                                           [WD_GOV_TOKENS] = "tokens"};
static const char *const period_names[] = {[WD_GOV_MINUTE] = "minute", [WD_GOV_DAILY] = "daily",
                                           [WD_GOV_WEEKLY] = "weekly", [WD_GOV_MONTHLY] = "monthly",
                                           [WD_GOV_TOTAL] = "total"};

const char *wd_gov_scope_name(enum wd_gov_scope s) { return s >= 1 && s <= 3 ? scope_names[s] : "?"; }
const char *wd_gov_metric_name(enum wd_gov_metric m) { return m >= 1 && m <= 3 ? metric_names[m] : "?"; }
const char *wd_gov_period_name(enum wd_gov_period p) { return p >= 1 && p <= 5 ? period_names[p] : "?"; }

static int index_of(const char *const *names, int n, const char *s)
{
    for (int i = 1; i <= n; i++)
        if (s != NULL && strcmp(names[i], s) == 0)
            return i;
    return 0;
}
int wd_gov_scope_of(const char *s) { return index_of(scope_names, 3, s); }
int wd_gov_metric_of(const char *s) { return index_of(metric_names, 3, s); }
int wd_gov_period_of(const char *s) { return index_of(period_names, 5, s); }

/* ---- limits ---- */

struct wd_gov_limit *wd_gov_limit_get(int64_t id, enum wd_gov_scope scope, const char *subject,
                                      enum wd_gov_metric metric, enum wd_gov_period period, int64_t lim,
                                      int64_t reset_at)
{
    struct wd_gov_limit *l;
    for (l = all_limits; l != NULL; l = l->all_next)
        if (l->id == id)
            break;
    if (l == NULL) {
        if ((l = calloc(1, sizeof(*l))) == NULL)
            return NULL;
        l->id = id;
        l->scope = scope;
        wd_cstr_copy(l->subject, sizeof(l->subject), subject);
        l->metric = metric;
        l->period = period;
        atomic_store(&l->period_start, INT64_MIN);
        l->all_next = all_limits;
        all_limits = l;
    }
    atomic_store(&l->lim, lim);
    atomic_store(&l->reset_at, reset_at);
    atomic_store(&l->dead, false);
    return l;
}

struct wd_gov_limit *wd_gov_limits(void) { return all_limits; }

int64_t wd_gov_period_start(const struct wd_gov_limit *l, int64_t now_s, int64_t *end_s)
{
    int64_t start = 0, end = 0;
    switch (l->period) {
    case WD_GOV_MINUTE: start = now_s - now_s % 60; end = start + 60; break;
    case WD_GOV_DAILY: start = now_s - now_s % 86400; end = start + 86400; break;
    case WD_GOV_WEEKLY: {
        int back = (int)((now_s / 86400 + 3) % 7); /* days since Monday: 1970-01-01 was a Thursday */
        start = now_s - now_s % 86400 - (int64_t)back * 86400;
        end = start + 7 * 86400;
        break;
    }
    case WD_GOV_MONTHLY: {
        time_t t = (time_t)now_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        struct tm m = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = 1};
        start = (int64_t)timegm(&m);
        m = (struct tm){.tm_year = tm.tm_year + (tm.tm_mon == 11), .tm_mon = (tm.tm_mon + 1) % 12, .tm_mday = 1};
        end = (int64_t)timegm(&m);
        break;
    }
    case WD_GOV_TOTAL: start = 0; end = 0; break;
    }
    int64_t r = atomic_load_explicit(&l->reset_at, memory_order_relaxed);
    if (r > start && r <= now_s)
        start = r; /* a manual reset starts the period again */
    if (end_s != NULL)
        *end_s = end;
    return start;
}

/* ---- snapshots ---- */

struct gov_build {
    struct wd_gov_snap s;
    size_t cap_keys, cap_subj;
};

struct wd_gov_snap *wd_gov_snap_new(void)
{
    struct gov_build *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    atomic_store(&b->s.refs, 1);
    return &b->s;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char **dup_strs(char *const *v, size_t n)
{
    if (n == 0)
        return NULL;
    char **out = calloc(n, sizeof(*out));
    for (size_t i = 0; out != NULL && i < n; i++)
        if ((out[i] = strdup(v[i])) == NULL) {
            free_strs(out, i);
            return NULL;
        }
    return out;
}

int wd_gov_snap_add_key(struct wd_gov_snap *s, const struct wd_gov_key *k)
{
    struct gov_build *b = (struct gov_build *)s;
    if (s->nkeys == b->cap_keys) {
        size_t cap = b->cap_keys ? b->cap_keys * 2 : 64;
        struct wd_gov_key *nk = realloc(s->keys, cap * sizeof(*nk));
        if (nk == NULL)
            return -1;
        s->keys = nk;
        b->cap_keys = cap;
    }
    struct wd_gov_key *d = &s->keys[s->nkeys];
    *d = *k;
    d->models = dup_strs(k->models, k->nmodels);
    d->roles = dup_strs(k->roles, k->nroles);
    if ((k->nmodels && d->models == NULL) || (k->nroles && d->roles == NULL)) {
        free_strs(d->models, d->models ? k->nmodels : 0);
        free_strs(d->roles, d->roles ? k->nroles : 0);
        return -1;
    }
    s->nkeys++;
    return 0;
}

static struct wd_gov_subject *add_subject(struct wd_gov_snap *s)
{
    struct gov_build *b = (struct gov_build *)s;
    if (s->nsubjects == b->cap_subj) {
        size_t cap = b->cap_subj ? b->cap_subj * 2 : 64;
        struct wd_gov_subject *n = realloc(s->subjects, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        s->subjects = n;
        b->cap_subj = cap;
    }
    struct wd_gov_subject *e = &s->subjects[s->nsubjects++];
    memset(e, 0, sizeof(*e));
    return e;
}

int wd_gov_snap_add_team(struct wd_gov_snap *s, const char *team, const char *org)
{
    struct wd_gov_subject *e = add_subject(s);
    if (e == NULL)
        return -1;
    e->scope = WD_GOV_SCOPE_TEAM;
    wd_cstr_copy(e->name, sizeof(e->name), team);
    wd_cstr_copy(e->org, sizeof(e->org), org ? org : "");
    return 0;
}

int wd_gov_snap_add_limit(struct wd_gov_snap *s, struct wd_gov_limit *l)
{
    struct wd_gov_subject *e = add_subject(s);
    if (e == NULL)
        return -1;
    e->scope = l->scope;
    wd_cstr_copy(e->name, sizeof(e->name), l->subject);
    e->limit = l;
    return 0;
}

static int subj_cmp(const void *a, const void *b)
{
    const struct wd_gov_subject *x = a, *y = b;
    if (x->scope != y->scope)
        return (int)x->scope - (int)y->scope;
    return strcmp(x->name, y->name);
}

static const struct wd_gov_snap *sort_ctx;
static int prefix_cmp(const void *a, const void *b)
{
    return strcmp(sort_ctx->keys[*(const size_t *)a].prefix, sort_ctx->keys[*(const size_t *)b].prefix);
}

static void snap_free(struct wd_gov_snap *s)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        free_strs(s->keys[i].models, s->keys[i].nmodels);
        free_strs(s->keys[i].roles, s->keys[i].nroles);
    }
    if (s->keys != NULL)
        OPENSSL_cleanse(s->keys, s->nkeys * sizeof(*s->keys));
    free(s->keys);
    free(s->by_prefix);
    free(s->subjects);
    free(s);
}

void wd_gov_release(struct wd_gov_snap *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
        snap_free(s);
}

/* (scope, name) against an entry, without building a key (the request path looks up three subjects). */
static int subj_cmp_name(const struct wd_gov_subject *e, enum wd_gov_scope scope, const char *name)
{
    if (e->scope != scope)
        return (int)e->scope - (int)scope;
    return strcmp(e->name, name);
}

/* The entries of (scope, name) in s: a pointer to the first and their count. */
static const struct wd_gov_subject *subject_range(const struct wd_gov_snap *s, enum wd_gov_scope scope,
                                                  const char *name, size_t *n)
{
    *n = 0;
    if (name == NULL || name[0] == '\0' || s->nsubjects == 0)
        return NULL;
    size_t lo = 0, hi = s->nsubjects;
    while (lo < hi) { /* the first entry not below (scope, name) */
        size_t mid = (lo + hi) / 2;
        if (subj_cmp_name(&s->subjects[mid], scope, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t e = lo;
    while (e < s->nsubjects && subj_cmp_name(&s->subjects[e], scope, name) == 0)
        e++;
    *n = e - lo;
    return *n ? &s->subjects[lo] : NULL;
}

uint64_t wd_gov_publish(struct wd_gov_snap *s)
{
    if (s->nsubjects > 1)
        qsort(s->subjects, s->nsubjects, sizeof(*s->subjects), subj_cmp);
    /* a key's org is its team's */
    for (size_t i = 0; i < s->nkeys; i++) {
        size_t n;
        const struct wd_gov_subject *t = subject_range(s, WD_GOV_SCOPE_TEAM, s->keys[i].team, &n);
        s->keys[i].org[0] = '\0';
        for (size_t j = 0; j < n; j++)
            if (t[j].limit == NULL)
                wd_cstr_copy(s->keys[i].org, sizeof(s->keys[i].org), t[j].org);
    }
    s->by_prefix = malloc((s->nkeys ? s->nkeys : 1) * sizeof(*s->by_prefix));
    for (size_t i = 0; s->by_prefix != NULL && i < s->nkeys; i++)
        s->by_prefix[i] = i;
    if (s->by_prefix != NULL && s->nkeys > 1) {
        sort_ctx = s; /* the governor is the only publisher */
        qsort(s->by_prefix, s->nkeys, sizeof(*s->by_prefix), prefix_cmp);
    }
    if (s->by_prefix == NULL)
        s->nkeys = 0; /* out of memory: no key authenticates rather than a wrong one */
    pthread_mutex_lock(&pub_lock);
    struct wd_gov_snap *old = current;
    s->serial = atomic_load(&current_serial) + 1;
    current = s;
    atomic_store_explicit(&current_serial, s->serial, memory_order_release);
    pthread_mutex_unlock(&pub_lock);
    wd_gov_release(old);
    return s->serial;
}

struct wd_gov_snap *wd_gov_acquire(void)
{
    pthread_mutex_lock(&pub_lock);
    struct wd_gov_snap *s = current;
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&pub_lock);
    return s;
}

uint64_t wd_gov_serial(void) { return atomic_load_explicit(&current_serial, memory_order_acquire); }

void wd_gov_shutdown(void)
{
    pthread_mutex_lock(&pub_lock);
    struct wd_gov_snap *s = current;
    current = NULL;
    pthread_mutex_unlock(&pub_lock);
    wd_gov_release(s);
    while (all_limits != NULL) {
        struct wd_gov_limit *l = all_limits;
        all_limits = l->all_next;
        free(l);
    }
}

void wd_gov_set_wake(void (*wake)(void)) { wake_hook = wake; }

void wd_gov_set_db_up(bool up) { atomic_store(&db_up, up); }
bool wd_gov_db_up(void) { return atomic_load(&db_up); }

static _Atomic uint64_t n_admitted, n_refused, n_waited, n_fail_open, n_roundtrips, n_leases;
static _Atomic bool stats_on;

void wd_gov_stats_on(void) { atomic_store(&stats_on, true); }
void wd_gov_count_roundtrip(void) { atomic_fetch_add_explicit(&n_roundtrips, 1, memory_order_relaxed); }
void wd_gov_count_lease(void) { atomic_fetch_add_explicit(&n_leases, 1, memory_order_relaxed); }
void wd_gov_stats(struct wd_gov_stats *o)
{
    o->on = atomic_load(&stats_on);
    o->admitted = atomic_load(&n_admitted);
    o->refused = atomic_load(&n_refused);
    o->waited = atomic_load(&n_waited);
    o->fail_open = atomic_load(&n_fail_open);
    o->db_roundtrips = atomic_load(&n_roundtrips);
    o->leases = atomic_load(&n_leases);
    o->db_up = atomic_load(&db_up);
}

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wd_gov_job *job_first, **job_lastp = &job_first;
static bool jobs_on;

void wd_gov_jobs_enable(bool on)
{
    pthread_mutex_lock(&job_lock);
    jobs_on = on;
    pthread_mutex_unlock(&job_lock);
}

int wd_gov_submit(struct wd_gov_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&job_lock);
    bool on = jobs_on;
    if (on) {
        *job_lastp = j;
        job_lastp = &j->next;
    }
    pthread_mutex_unlock(&job_lock);
    if (on && wake_hook != NULL)
        wake_hook();
    return on ? 0 : -1;
}

static struct wd_gov_job *sjob_first, **sjob_lastp = &sjob_first;
static bool sjobs_on;
static void (*sjob_wake)(void);

void wd_gov_signin_enable(bool on, void (*wake)(void))
{
    pthread_mutex_lock(&job_lock);
    sjobs_on = on;
    sjob_wake = wake;
    pthread_mutex_unlock(&job_lock);
}

int wd_gov_signin_submit(struct wd_gov_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&job_lock);
    bool on = sjobs_on;
    void (*w)(void) = sjob_wake;
    if (on) {
        *sjob_lastp = j;
        sjob_lastp = &j->next;
    }
    pthread_mutex_unlock(&job_lock);
    if (on && w != NULL)
        w();
    return on ? 0 : -1;
}

struct wd_gov_job *wd_gov_signin_take(void)
{
    pthread_mutex_lock(&job_lock);
    struct wd_gov_job *j = sjob_first;
    sjob_first = NULL;
    sjob_lastp = &sjob_first;
    pthread_mutex_unlock(&job_lock);
    return j;
}

static struct wd_signin_keys *signin_keys;
static char *signin_auth_ep;

void wd_gov_signin_set_keys(struct wd_signin_keys *keys) { signin_keys = keys; }
const struct wd_signin_keys *wd_gov_signin_keys(void) { return signin_keys; }

void wd_gov_signin_set_auth_endpoint(const char *url)
{
    char *d = url ? strdup(url) : NULL;
    pthread_mutex_lock(&job_lock);
    char *old = signin_auth_ep;
    signin_auth_ep = d;
    pthread_mutex_unlock(&job_lock);
    free(old);
}

int wd_gov_signin_auth_endpoint(char *out, size_t cap)
{
    pthread_mutex_lock(&job_lock);
    int rc = signin_auth_ep != NULL && strlen(signin_auth_ep) < cap ? 0 : -1;
    if (rc == 0)
        strcpy(out, signin_auth_ep);
    pthread_mutex_unlock(&job_lock);
    return rc;
}

struct wd_gov_job *wd_gov_jobs_take(void)
{
    pthread_mutex_lock(&job_lock);
    struct wd_gov_job *j = job_first;
    job_first = NULL;
    job_lastp = &job_first;
    pthread_mutex_unlock(&job_lock);
    return j;
}

/* ---- virtual keys ---- */

bool wd_gov_looks_like_key(struct wd_str k) { return k.n == WD_GOV_KEY_LEN && memcmp(k.p, "wk-", 3) == 0; }

int wd_gov_key_make(char out[WD_GOV_KEY_LEN + 1], uint8_t salt[16], uint8_t hash[32], char prefix[12])
{
    uint8_t raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1 || RAND_bytes(salt, 16) != 1)
        return -1;
    memcpy(out, "wk-", 3);
    wd_b64url_encode(raw, sizeof(raw), out + 3);
    OPENSSL_cleanse(raw, sizeof(raw));
    out[WD_GOV_KEY_LEN] = '\0';
    wd_sha256_2(salt, 16, out, WD_GOV_KEY_LEN, hash);
    memcpy(prefix, out, 11);
    prefix[11] = '\0';
    return 0;
}

#define GOV_CACHE_SLOTS 256
struct gov_cache_entry {
    uint8_t tag[16];
    uint64_t serial;                 /* the snapshot it was verified in; 0 empty */
    size_t idx;                      /* into that snapshot's keys */
};
struct wd_gov_cache {
    struct gov_cache_entry e[GOV_CACHE_SLOTS];
};

struct wd_gov_cache *wd_gov_cache_new(void) { return calloc(1, sizeof(struct wd_gov_cache)); }
void wd_gov_cache_free(struct wd_gov_cache *c)
{
    if (c != NULL)
        OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

static int key_ok(const struct wd_gov_key *k, int64_t now_s, const char **why)
{
    if (k->revoked) {
        *why = "revoked key";
        return -1;
    }
    if (k->expires_at != 0 && now_s >= k->expires_at) {
        *why = "expired key";
        return -1;
    }
    return 0;
}

int wd_gov_authenticate(struct wd_gov_cache *c, const struct wd_gov_snap *s, struct wd_str presented,
                        const uint8_t tag[16], int64_t now_s, const struct wd_gov_key **key,
                        struct wd_principal *who, const char **why)
{
    *why = "invalid_key";
    if (s == NULL || !wd_gov_looks_like_key(presented))
        return -1;
    const struct wd_gov_key *k = NULL;
    struct gov_cache_entry *ce = c != NULL ? &c->e[tag[0]] : NULL;
    if (ce != NULL && ce->serial == s->serial && ce->idx < s->nkeys && CRYPTO_memcmp(ce->tag, tag, 16) == 0) {
        k = &s->keys[ce->idx];
    } else {
        char prefix[12];
        memcpy(prefix, presented.p, 11);
        prefix[11] = '\0';
        size_t lo = 0, hi = s->nkeys;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (strcmp(s->keys[s->by_prefix[mid]].prefix, prefix) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t i = lo; i < s->nkeys && strcmp(s->keys[s->by_prefix[i]].prefix, prefix) == 0; i++) {
            const struct wd_gov_key *cand = &s->keys[s->by_prefix[i]];
            uint8_t h[32];
            wd_sha256_2(cand->salt, 16, presented.p, presented.n, h);
            int eq = CRYPTO_memcmp(h, cand->hash, 32) == 0;
            OPENSSL_cleanse(h, sizeof(h));
            if (eq) {
                k = cand;
                if (ce != NULL) {
                    memcpy(ce->tag, tag, 16);
                    ce->serial = s->serial;
                    ce->idx = s->by_prefix[i];
                }
                break;
            }
        }
    }
    if (k == NULL)
        return -1;
    if (key_ok(k, now_s, why) < 0)
        return -1;
    memset(who, 0, sizeof(*who));
    wd_cstr_copy(who->subject, sizeof(who->subject), k->name);
    who->method = "virtual_key";
    wd_cstr_copy(who->key_id, sizeof(who->key_id), k->id);
    wd_cstr_copy(who->team, sizeof(who->team), k->team);
    wd_cstr_copy(who->org, sizeof(who->org), k->org);
    *key = k;
    return 0;
}

/* ---- admission ---- */

static int64_t cost_of(const struct wd_gov_limit *l, const struct wd_gov_cost *c)
{
    switch (l->metric) {
    case WD_GOV_USD: return c->usd_micro;
    case WD_GOV_REQUESTS: return c->requests;
    case WD_GOV_TOKENS: return c->tokens;
    }
    return 0;
}

/* Gives amount back to l's lease when the hold's period is still the lease's. The governor rolls a period over by
 * marking period_start as rolling, taking the lease, then storing the new start (all sequentially consistent), so a
 * refund that checked the period before the roll-over may land after the lease was taken: the second look sees the
 * period moved and takes a positive refund out again (the lease the database granted for the new period never
 * grows by what the old one lent). A debit (a call that cost more than it reserved) stays wherever it landed:
 * either way it only makes the replica more careful. */
static void refund(struct wd_gov_limit *l, int64_t period, int64_t amount)
{
    if (amount == 0 || atomic_load(&l->period_start) != period)
        return;
    atomic_fetch_add(&l->lease, amount);
    if (amount > 0 && atomic_load(&l->period_start) != period)
        atomic_fetch_sub(&l->lease, amount);
}

/* Takes need from l's lease only when it is there (a compare-and-swap, never a transient overdraft that a
 * roll-over could carry into the next period). */
static bool reserve(struct wd_gov_limit *l, int64_t need)
{
    int64_t v = atomic_load(&l->lease);
    while (v >= need)
        if (atomic_compare_exchange_weak(&l->lease, &v, v - need))
            return true;
    return false;
}

static void undo(struct wd_gov_admission *a)
{
    for (int i = 0; i < a->n; i++)
        refund(a->h[i].l, a->h[i].period, a->h[i].reserved);
    a->n = 0;
}

static void fmt_amount(const struct wd_gov_limit *l, int64_t v, char *out, size_t cap)
{
    if (l->metric == WD_GOV_USD)
        snprintf(out, cap, "%lld.%02lld", (long long)(v / 1000000), (long long)(v % 1000000 / 10000));
    else
        snprintf(out, cap, "%lld", (long long)v);
}

static void refusal(const struct wd_gov_limit *l, int64_t now_s, long *retry_after_s, char *msg, size_t cap)
{
    int64_t end;
    (void)wd_gov_period_start(l, now_s, &end);
    char amount[32];
    fmt_amount(l, atomic_load(&l->lim), amount, sizeof(amount));
    const char *what = l->period == WD_GOV_MINUTE ? "rate limit" : "budget";
    const char *per = l->period == WD_GOV_MINUTE ? "per minute" : wd_gov_period_name(l->period);
    if (end == 0) {
        *retry_after_s = -1;
        snprintf(msg, cap, "%s %.128s: %s %s %s %s exhausted; it does not reset", wd_gov_scope_name(l->scope),
                 l->subject, wd_gov_metric_name(l->metric), per, what, amount);
        return;
    }
    *retry_after_s = (long)(end - now_s);
    char ts[28];
    wd_format_ts(end * 1000000, ts);
    ts[19] = 'Z';
    ts[20] = '\0'; /* whole seconds */
    snprintf(msg, cap, "%s %.128s: %s %s %s %s exhausted; resets at %s", wd_gov_scope_name(l->scope), l->subject,
             wd_gov_metric_name(l->metric), per, what, amount, ts);
}

static void want_more(struct wd_gov_limit *l, int64_t need)
{
    int64_t w = atomic_load(&l->want);
    while (w < need && !atomic_compare_exchange_weak(&l->want, &w, need))
        ;
    if (wake_hook != NULL)
        wake_hook();
}

int wd_gov_admit(const struct wd_gov_snap *s, const struct wd_principal *who, const struct wd_gov_cost *est,
                 int64_t now_s, int64_t now_ms, bool fail_open, struct wd_gov_admission *a,
                 const struct wd_gov_limit **refused, long *retry_after_s, char *msg, size_t cap)
{
    a->n = 0;
    a->settled = false;
    if (s == NULL) {
        /* nothing loaded yet (the database was unreachable since the start): a caller no limit can name is
         * admitted; one with a key, team or org may be under limits nobody knows, so only fail_open admits it */
        if (who->key_id[0] == '\0' && who->team[0] == '\0' && who->org[0] == '\0')
            return 0;
        if (fail_open) {
            atomic_fetch_add_explicit(&n_fail_open, 1, memory_order_relaxed);
            return 0;
        }
        atomic_fetch_add_explicit(&n_waited, 1, memory_order_relaxed);
        return WD_GOV_WAIT;
    }
    struct { enum wd_gov_scope scope; const char *name; } subj[3] = {
        {WD_GOV_SCOPE_KEY, who->key_id}, {WD_GOV_SCOPE_TEAM, who->team}, {WD_GOV_SCOPE_ORG, who->org}};
    bool wait = false;
    for (int k = 0; k < 3; k++) {
        size_t n;
        const struct wd_gov_subject *e = subject_range(s, subj[k].scope, subj[k].name, &n);
        for (size_t j = 0; j < n; j++) {
            struct wd_gov_limit *l = e[j].limit;
            if (l == NULL || atomic_load(&l->dead))
                continue;
            if (a->n == WD_GOV_MAX_HOLDS) {
                undo(a);
                *refused = l;
                *retry_after_s = -1;
                snprintf(msg, cap, "more than %d limits apply to this caller", WD_GOV_MAX_HOLDS);
                return -1;
            }
            int64_t need = cost_of(l, est);
            int64_t ps = wd_gov_period_start(l, now_s, NULL);
            atomic_store_explicit(&l->last_use_ms, now_ms, memory_order_relaxed);
            if (atomic_load(&l->period_start) == ps) {
                if (reserve(l, need)) {
                    a->h[a->n++] = (struct wd_gov_hold){l, need, ps};
                    continue;
                }
                if (atomic_load(&l->exhausted)) {
                    want_more(l, need); /* the governor asks the database again at its next sync */
                    undo(a);
                    *refused = l;
                    refusal(l, now_s, retry_after_s, msg, cap);
                    atomic_fetch_add_explicit(&n_refused, 1, memory_order_relaxed);
                    return -1;
                }
            }
            if (fail_open && !atomic_load(&db_up)) {
                /* admitted on local accounting: charged at settle, flushed when the database is back */
                a->h[a->n++] = (struct wd_gov_hold){l, 0, ps};
                atomic_fetch_add_explicit(&n_fail_open, 1, memory_order_relaxed);
                continue;
            }
            want_more(l, need); /* the other limits are still looked at: every top-up is asked for at once */
            wait = true;
        }
    }
    if (wait) {
        undo(a);
        atomic_fetch_add_explicit(&n_waited, 1, memory_order_relaxed);
        return WD_GOV_WAIT;
    }
    if (a->n > 0)
        atomic_fetch_add_explicit(&n_admitted, 1, memory_order_relaxed);
    return 0;
}

bool wd_gov_limited(const struct wd_gov_snap *s, const struct wd_principal *who)
{
    if (s == NULL || s->nsubjects == 0)
        return false;
    const char *names[3] = {who->key_id, who->team, who->org};
    for (int k = 0; k < 3; k++) {
        size_t n;
        const struct wd_gov_subject *e = subject_range(s, (enum wd_gov_scope)(k + 1), names[k], &n);
        for (size_t j = 0; j < n; j++)
            if (e[j].limit != NULL)
                return true;
    }
    return false;
}

void wd_gov_settle(struct wd_gov_admission *a, const struct wd_gov_cost *actual)
{
    if (a->settled)
        return;
    a->settled = true;
    for (int i = 0; i < a->n; i++) {
        struct wd_gov_limit *l = a->h[i].l;
        int64_t used = cost_of(l, actual);
        refund(l, a->h[i].period, a->h[i].reserved - used);
        atomic_fetch_add(&l->unflushed, used);
    }
    a->n = 0;
}

void wd_gov_team_org(const struct wd_gov_snap *s, const char *team, char *org, size_t cap)
{
    org[0] = '\0';
    size_t n;
    const struct wd_gov_subject *t = s != NULL ? subject_range(s, WD_GOV_SCOPE_TEAM, team, &n) : NULL;
    for (size_t j = 0; t != NULL && j < n; j++)
        if (t[j].limit == NULL)
            wd_cstr_copy(org, cap, t[j].org);
}

/* List prices per million tokens (input, output, cache read) published by the providers; the longest matching
 * prefix wins, so a dated snapshot ("claude-sonnet-4-5-20250929") takes its family's price. */
static const struct {
    const char *prefix;
    double in, out, cached;
} default_prices[] = {
    {"claude-opus-4-5", 5, 25, 0.5},       {"claude-opus-4", 15, 75, 1.5},      {"claude-sonnet-4", 3, 15, 0.3},
    {"claude-3-7-sonnet", 3, 15, 0.3},     {"claude-haiku-4", 1, 5, 0.1},       {"claude-3-5-haiku", 0.8, 4, 0.08},
    {"gemini-2.5-pro", 1.25, 10, 0.125},   {"gemini-2.5-flash-lite", 0.1, 0.4, 0.01},
    {"gemini-2.5-flash", 0.3, 2.5, 0.03},  {"gemini-2.0-flash", 0.1, 0.4, 0.025},
    {"gpt-5-nano", 0.05, 0.4, 0.005},      {"gpt-5-mini", 0.25, 2, 0.025},      {"gpt-5", 1.25, 10, 0.125},
    {"gpt-4.1-nano", 0.1, 0.4, 0.025},     {"gpt-4.1-mini", 0.4, 1.6, 0.1},     {"gpt-4.1", 2, 8, 0.5},
    {"gpt-4o-mini", 0.15, 0.6, 0.075},     {"gpt-4o", 2.5, 10, 1.25},           {"o4-mini", 1.1, 4.4, 0.275},
    {"o3", 2, 8, 0.5},
};

bool wd_gov_default_price(const char *model, size_t n, double *in, double *out, double *cached)
{
    size_t best = SIZE_MAX, best_len = 0;
    for (size_t i = 0; i < sizeof(default_prices) / sizeof(default_prices[0]); i++) {
        size_t l = strlen(default_prices[i].prefix);
        if (l <= n && l > best_len && memcmp(model, default_prices[i].prefix, l) == 0) {
            best = i;
            best_len = l;
        }
    }
    if (best == SIZE_MAX)
        return false;
    *in = default_prices[best].in;
    *out = default_prices[best].out;
    *cached = default_prices[best].cached;
    return true;
}
