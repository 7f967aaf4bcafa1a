/* Prometheus metrics: per-worker series tables written only by their worker, merged and summed at scrape;
 * bounded label tables; process metrics from /proc; an optional listener thread of its own. See metrics.h. */
#include "server/metrics.h"

#include "authz/govern.h"
#include "server/front.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "secrets/secrets.h"
#include "lib/log.h"

#define IDX_NONE 0u
#define IDX_OTHER 1u
#define NAME_MAX_LEN 128
#define FIELD_MAX 0xfffu /* a key packs five 12-bit fields */
#define TABLE_NAMES_MAX 4000u

/* ---------------------------------------------------------------- fixed enumerations */

/* index 0 is what anything off the list becomes */
static const char *const routes[] = {
    "other",
    "/anthropic/v1/messages",
    "/anthropic/v1/messages/count_tokens",
    "/anthropic/v1/models",
    "/anthropic/api/hello",
    "/openai/v1/chat/completions",
    "/openai/v1/models",
};
static const char *const apis[] = {"other", "anthropic", "openai", "gemini"};
#define NAPI (sizeof(apis) / sizeof(apis[0]))
static const char *const classes[] = {
    "other",      "invalid_request", "authentication", "permission", "not_found",
    "too_large",  "unsupported_media", "rate_limit",   "api",        "bad_gateway",
    "unavailable", "timeout",        "overloaded",     "client_gone",
};
static const char *const outcomes[WD_MO__COUNT] = {"ok", "http_error", "transport_error", "timeout"};
static const char *const drop_reasons[WD_SPAN_DROP__COUNT] = {"queue_full", "export_failed", "shutdown", "encode"};
static const char *const tok_types[] = {"input", "output", "cached"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static unsigned enum_idx(const char *const *list, size_t n, const char *s)
{
    if (s == NULL)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return (unsigned)i;
    return 0;
}

/* ---------------------------------------------------------------- interned names */

struct iname {
    unsigned idx;
    size_t len;
    char s[];
};

struct intern {
    const char *label;
    unsigned max;                    /* names besides "none" and "other" */
    atomic_uint n;
    size_t hmask;                    /* hash slots: a power of two >= 2 * max, so probes always end */
    _Atomic(struct iname *) *h;
    _Atomic(struct iname *) *byidx;  /* max + 2 */
    atomic_ullong overflow;          /* lookups folded to "other" because the table was full */
    unsigned gen;                    /* bumped by each intern_init: a thread's cached lookup of an older table
                                        does not count */
};

/* Each thread remembers its last interned name per table: a call looks up the same model and provider a few
 * times, and a worker serves mostly the same ones. Names are never removed while a table lives. */
#define ICACHE_NAME 64
struct icache {
    const struct intern *t;
    unsigned gen, idx;
    size_t n;
    char s[ICACHE_NAME];
};
static _Thread_local struct icache icache[4];
static unsigned intern_gen;

static pthread_mutex_t intern_mu = PTHREAD_MUTEX_INITIALIZER;
static struct intern models = {.label = "model"}, keys = {.label = "key"}, providers = {.label = "provider"};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static int intern_init(struct intern *t, unsigned max)
{
    size_t hc = 16;
    while (hc < 2 * (size_t)max + 2)
        hc <<= 1;
    t->max = max;
    t->gen = ++intern_gen;
    atomic_init(&t->n, 0);
    atomic_init(&t->overflow, 0);
    t->hmask = hc - 1;
    t->h = calloc(hc, sizeof(*t->h));
    t->byidx = calloc((size_t)max + 2, sizeof(*t->byidx));
    return t->h && t->byidx ? 0 : -1;
}

static void intern_free(struct intern *t)
{
    if (t->byidx != NULL)
        for (unsigned i = 0; i < t->max + 2; i++)
            free(atomic_load(&t->byidx[i]));
    free(t->h);
    free(t->byidx);
    t->h = NULL;
    t->byidx = NULL;
    t->max = 0;
    atomic_store(&t->n, 0);
}

static struct iname *intern_probe(struct intern *t, const char *s, size_t n, uint64_t hv, size_t *slot)
{
    for (size_t i = hv & t->hmask;; i = (i + 1) & t->hmask) {
        struct iname *e = atomic_load_explicit(&t->h[i], memory_order_acquire);
        if (e == NULL) {
            *slot = i;
            return NULL;
        }
        if (e->len == n && memcmp(e->s, s, n) == 0)
            return e;
    }
}

/* The index of a name: 0 "none", 1 "other", 2.. interned. A new name takes the mutex; a known one does not.
 * add: false to look up only (a name not yet interned is "other"). */
static unsigned intern_get(struct intern *t, const char *s, size_t n, bool add)
{
    if (s == NULL || n == 0)
        return IDX_NONE;
    if (t->h == NULL)
        return IDX_OTHER;
    /* a name found before (so valid, and not "none" or "other") */
    struct icache *ic = NULL;
    for (size_t k = 0; k < sizeof(icache) / sizeof(icache[0]); k++)
        if (icache[k].t == t || icache[k].t == NULL) {
            ic = &icache[k];
            break;
        }
    if (ic != NULL && ic->t == t && ic->gen == t->gen && ic->n == n && memcmp(ic->s, s, n) == 0)
        return ic->idx;
    if (!valid_name(s, n))
        return IDX_OTHER;
    if (n == 4 && memcmp(s, "none", 4) == 0)
        return IDX_NONE;
    if (n == 5 && memcmp(s, "other", 5) == 0)
        return IDX_OTHER;
    uint64_t hv = fnv1a(s, n);
    size_t slot;
    struct iname *e = intern_probe(t, s, n, hv, &slot);
    if (e != NULL) {
        if (ic != NULL && n <= ICACHE_NAME) {
            *ic = (struct icache){.t = t, .gen = t->gen, .idx = e->idx, .n = n};
            memcpy(ic->s, s, n);
        }
        return e->idx;
    }
    if (!add)
        return IDX_OTHER;
    if (atomic_load_explicit(&t->n, memory_order_relaxed) >= t->max) {
        atomic_fetch_add_explicit(&t->overflow, 1, memory_order_relaxed);
        return IDX_OTHER;
    }
    pthread_mutex_lock(&intern_mu);
    unsigned idx = IDX_OTHER;
    e = intern_probe(t, s, n, hv, &slot); /* another thread may have added it meanwhile */
    if (e != NULL) {
        idx = e->idx;
    } else if (atomic_load_explicit(&t->n, memory_order_relaxed) < t->max &&
               (e = malloc(sizeof(*e) + n + 1)) != NULL) {
        unsigned k = atomic_load_explicit(&t->n, memory_order_relaxed);
        e->idx = idx = k + 2;
        e->len = n;
        memcpy(e->s, s, n);
        e->s[n] = '\0';
        atomic_store_explicit(&t->byidx[idx], e, memory_order_release);
        atomic_store_explicit(&t->h[slot], e, memory_order_release);
        atomic_store_explicit(&t->n, k + 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&t->overflow, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&intern_mu);
    return idx;
}

static const char *intern_name(struct intern *t, unsigned idx)
{
    if (idx == IDX_NONE)
        return "none";
    if (idx == IDX_OTHER || t->byidx == NULL || idx >= t->max + 2)
        return "other";
    struct iname *e = atomic_load_explicit(&t->byidx[idx], memory_order_acquire);
    return e ? e->s : "other";
}

/* ---------------------------------------------------------------- series tables */

enum label_kind { L_ROUTE, L_API, L_MODEL, L_PROVIDER, L_KEY, L_STATUS, L_OUTCOME, L_CLASS, L_TOKTYPE };

static const double dur_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300};
static const double ttft_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120};

enum fam { F_REQ, F_TTFT, F_ATTEMPT, F_RETRY, F_FALLBACK, F_ERR, F_TOK, F_COST, F__N };

struct famdesc {
    const char *name, *help;
    const double *bounds;            /* histogram: nb upper bounds, then +Inf and the sum (microseconds) */
    unsigned nb;
    unsigned nfields;
    enum label_kind kinds[5];
    const char *lnames[5];
    size_t cap;                      /* slots per worker (a power of two) */
};

static const struct famdesc fams[F__N] = {
    [F_REQ] = {"warden_request_duration_seconds", "Request duration from the handler's start to the end of the response.",
               dur_bounds, NELEM(dur_bounds), 5, {L_ROUTE, L_API, L_MODEL, L_PROVIDER, L_STATUS},
               {"route", "api", "model", "provider", "status"}, 4096},
    [F_TTFT] = {"warden_time_to_first_token_seconds", "Time to the first byte of a streamed response.",
                ttft_bounds, NELEM(ttft_bounds), 3, {L_API, L_MODEL, L_PROVIDER}, {"api", "model", "provider"}, 1024},
    [F_ATTEMPT] = {"warden_upstream_attempts_total", "Upstream requests (first tries and retries) by outcome.",
                   NULL, 0, 3, {L_PROVIDER, L_MODEL, L_OUTCOME}, {"provider", "model", "outcome"}, 1024},
    [F_RETRY] = {"warden_upstream_retries_total", "Upstream requests retried.", NULL, 0, 1, {L_PROVIDER},
                 {"provider"}, 128},
    [F_FALLBACK] = {"warden_upstream_fallbacks_total",
                    "Calls that left this provider for the next target of their fallback chain.", NULL, 0, 1,
                    {L_PROVIDER}, {"provider"}, 128},
    [F_ERR] = {"warden_errors_total", "Requests that ended in an error, by inbound API and error class.", NULL, 0, 2,
               {L_API, L_CLASS}, {"api", "class"}, 256},
    [F_TOK] = {"warden_tokens_total", "Tokens by model, auth key and type (input, output, cached).", NULL, 0, 3,
               {L_MODEL, L_KEY, L_TOKTYPE}, {"model", "key", "type"}, 4096},
    [F_COST] = {"warden_cost_usd_total", "Cost in US dollars at the configured prices (models with a price only).",
                NULL, 0, 2, {L_MODEL, L_KEY}, {"model", "key"}, 2048},
};

static unsigned fam_nv(const struct famdesc *d) { return d->bounds ? d->nb + 2 : 1; }

struct series {
    uint64_t key;
    _Atomic uint64_t v[];
};

struct table {
    size_t mask, n;
    _Atomic(struct series *) *slots;
};

struct wstore {
    struct table t[F__N];
    _Atomic int64_t open_streams[NAPI];
    _Atomic int64_t inflight;
};

static atomic_bool ready;
static unsigned nstores;                 /* workers + 1 shared block for other threads */
static struct wstore *stores;
static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_ullong series_dropped;     /* updates lost because a worker's table was full */

/* prices per model index, as double bits; set says whether the model has one */
struct price {
    atomic_bool set;
    _Atomic uint64_t in, out, cached;
};
static struct price *prices;

/* exporter */
static atomic_ullong spans_queued, spans_exported, spans_dropped[WD_SPAN_DROP__COUNT], export_reqs[WD_MO__COUNT];

static inline void add_u64(_Atomic uint64_t *v, uint64_t d)
{
    /* single writer: a plain load and store, no locked read-modify-write */
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + d, memory_order_relaxed);
}
static inline void add_i64(_Atomic int64_t *v, int64_t d)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + d, memory_order_relaxed);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint64_t pk(unsigned a, unsigned b, unsigned c, unsigned d, unsigned e)
{
    return (uint64_t)(a & FIELD_MAX) << 48 | (uint64_t)(b & FIELD_MAX) << 36 | (uint64_t)(c & FIELD_MAX) << 24 |
           (uint64_t)(d & FIELD_MAX) << 12 | (uint64_t)(e & FIELD_MAX);
}
static unsigned field(uint64_t key, unsigned i) { return (unsigned)(key >> (48 - 12 * i)) & FIELD_MAX; }

/* The same key with its model, key and provider labels folded to "other". */
static uint64_t fold(const struct famdesc *d, uint64_t key)
{
    unsigned f[5] = {0};
    for (unsigned i = 0; i < 5; i++)
        f[i] = field(key, i);
    for (unsigned i = 0; i < d->nfields; i++)
        if ((d->kinds[i] == L_MODEL || d->kinds[i] == L_KEY || d->kinds[i] == L_PROVIDER) && f[i] != IDX_NONE)
            f[i] = IDX_OTHER;
    return pk(f[0], f[1], f[2], f[3], f[4]);
}

/* Finds or adds the series; only the store's writer calls this. New series stop at `limit` slots. */
static struct series *table_find(struct table *t, unsigned nv, uint64_t key, size_t limit)
{
    size_t i = mix64(key) & t->mask;
    for (;; i = (i + 1) & t->mask) {
        struct series *s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (s == NULL)
            break;
        if (s->key == key)
            return s;
    }
    if (t->n >= limit)
        return NULL;
    struct series *s = calloc(1, sizeof(*s) + nv * sizeof(s->v[0]));
    if (s == NULL)
        return NULL;
    s->key = key;
    atomic_store_explicit(&t->slots[i], s, memory_order_release);
    t->n++;
    return s;
}

static struct series *series_get(struct wstore *ws, enum fam f, uint64_t key)
{
    const struct famdesc *d = &fams[f];
    struct table *t = &ws->t[f];
    if (t->slots == NULL)
        return NULL;
    size_t cap = t->mask + 1;
    struct series *s = table_find(t, fam_nv(d), key, cap / 2);
    if (s == NULL) /* past half full, only the folded series are added (up to three quarters) */
        s = table_find(t, fam_nv(d), fold(d, key), cap / 2 + cap / 4);
    if (s == NULL)
        atomic_fetch_add_explicit(&series_dropped, 1, memory_order_relaxed);
    return s;
}

static void counter_add(struct wstore *ws, enum fam f, uint64_t key, uint64_t n)
{
    struct series *s = series_get(ws, f, key);
    if (s != NULL)
        add_u64(&s->v[0], n);
}

static void observe(struct wstore *ws, enum fam f, uint64_t key, double x)
{
    struct series *s = series_get(ws, f, key);
    if (s == NULL)
        return;
    const struct famdesc *d = &fams[f];
    if (!(x > 0)) /* negative, zero or NaN */
        x = 0;
    unsigned b = 0;
    while (b < d->nb && x > d->bounds[b])
        b++;
    add_u64(&s->v[b], 1);
    add_u64(&s->v[d->nb + 1], (uint64_t)llround(fmin(x, 1e9) * 1e6));
}

/* The calling worker's store; other threads share the last one under a mutex. */
static struct wstore *store_lock(int worker)
{
    if (!atomic_load_explicit(&ready, memory_order_acquire))
        return NULL;
    if (worker >= 0 && (unsigned)worker < nstores - 1)
        return &stores[worker];
    pthread_mutex_lock(&spare_mu);
    return &stores[nstores - 1];
}
static void store_unlock(struct wstore *ws)
{
    if (ws == &stores[nstores - 1])
        pthread_mutex_unlock(&spare_mu);
}

/* ---------------------------------------------------------------- init */

static unsigned env_unsigned(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end != '\0' || n < 1 || n > TABLE_NAMES_MAX) {
        wd_logf(WD_LOG_WARN, "", "%s must be 1..%u; using %u", name, TABLE_NAMES_MAX, dflt);
        return dflt;
    }
    return (unsigned)n;
}

int wd_metrics_init(unsigned nworkers)
{
    if (atomic_load(&ready))
        return 0;
    if (intern_init(&models, env_unsigned("WARDEN_METRICS_MAX_MODELS", 64)) != 0 ||
        intern_init(&keys, env_unsigned("WARDEN_METRICS_MAX_KEYS", 256)) != 0 || intern_init(&providers, 64) != 0)
        goto oom;
    prices = calloc((size_t)models.max + 2, sizeof(*prices));
    nstores = nworkers + 1;
    stores = calloc(nstores, sizeof(*stores));
    if (prices == NULL || stores == NULL)
        goto oom;
    for (unsigned w = 0; w < nstores; w++)
        for (int f = 0; f < F__N; f++) {
            stores[w].t[f].mask = fams[f].cap - 1;
            if ((stores[w].t[f].slots = calloc(fams[f].cap, sizeof(stores[w].t[f].slots[0]))) == NULL)
                goto oom;
        }
    atomic_store_explicit(&ready, true, memory_order_release);
    return 0;
oom:
    wd_metrics_free();
    return -1;
}

void wd_metrics_free(void)
{
    atomic_store(&ready, false);
    for (unsigned w = 0; stores != NULL && w < nstores; w++)
        for (int f = 0; f < F__N; f++) {
            struct table *t = &stores[w].t[f];
            for (size_t i = 0; t->slots != NULL && i <= t->mask; i++)
                free(atomic_load(&t->slots[i]));
            free(t->slots);
        }
    free(stores);
    stores = NULL;
    nstores = 0;
    free(prices);
    prices = NULL;
    intern_free(&models);
    intern_free(&keys);
    intern_free(&providers);
}

/* ---------------------------------------------------------------- request path */

static unsigned cstr_idx(struct intern *t, const char *s) { return intern_get(t, s, s ? strlen(s) : 0, true); }

static double price_of(_Atomic uint64_t *bits)
{
    uint64_t b = atomic_load_explicit(bits, memory_order_relaxed);
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

void wd_metrics_call_done(int worker, const struct wd_metrics_call *c)
{
    struct wstore *ws = c ? store_lock(worker) : NULL;
    if (ws == NULL)
        return;
    unsigned route = enum_idx(routes, NELEM(routes), c->route);
    unsigned api = enum_idx(apis, NAPI, c->api);
    unsigned model = intern_get(&models, c->model, c->model ? c->model_len : 0, true);
    unsigned prov = cstr_idx(&providers, c->provider);
    unsigned key = cstr_idx(&keys, c->key);
    unsigned st = c->status >= 100 && c->status <= 599 ? (unsigned)c->status : 0;
    observe(ws, F_REQ, pk(route, api, model, prov, st), c->duration_s);
    if (c->stream && c->ttft_s >= 0)
        observe(ws, F_TTFT, pk(api, model, prov, 0, 0), c->ttft_s);
    if (c->error_class != NULL)
        counter_add(ws, F_ERR, pk(api, enum_idx(classes, NELEM(classes), c->error_class), 0, 0, 0), 1);
    int64_t tok[3] = {c->in_tok, c->out_tok, c->cached_tok};
    bool any = false;
    for (unsigned i = 0; i < 3; i++)
        if (tok[i] > 0) {
            counter_add(ws, F_TOK, pk(model, key, i, 0, 0), (uint64_t)tok[i]);
            any = true;
        }
    if (any && model >= 2 && atomic_load_explicit(&prices[model].set, memory_order_acquire)) {
        double pin = price_of(&prices[model].in), pout = price_of(&prices[model].out);
        double pc = price_of(&prices[model].cached);
        if (pc < 0)
            pc = pin;
        /* USD per million tokens -> nano-dollars per token: * 1e3 */
        double nusd = ((double)(tok[0] > 0 ? tok[0] : 0) * pin + (double)(tok[1] > 0 ? tok[1] : 0) * pout +
                       (double)(tok[2] > 0 ? tok[2] : 0) * pc) * 1e3;
        if (nusd >= 0 && nusd < 1e18)
            counter_add(ws, F_COST, pk(model, key, 0, 0, 0), (uint64_t)llround(nusd));
    }
    store_unlock(ws);
}

void wd_metrics_upstream_attempt(int worker, const char *provider, const char *model, size_t model_len,
                                 enum wd_metrics_outcome outcome)
{
    struct wstore *ws = store_lock(worker);
    if (ws == NULL)
        return;
    unsigned o = (unsigned)outcome < WD_MO__COUNT ? (unsigned)outcome : WD_MO_TRANSPORT_ERROR;
    counter_add(ws, F_ATTEMPT,
                pk(cstr_idx(&providers, provider), intern_get(&models, model, model ? model_len : 0, true), o, 0, 0),
                1);
    store_unlock(ws);
}

void wd_metrics_retry(int worker, const char *provider)
{
    struct wstore *ws = store_lock(worker);
    if (ws == NULL)
        return;
    counter_add(ws, F_RETRY, pk(cstr_idx(&providers, provider), 0, 0, 0, 0), 1);
    store_unlock(ws);
}

void wd_metrics_fallback(int worker, const char *provider)
{
    struct wstore *ws = store_lock(worker);
    if (ws == NULL)
        return;
    counter_add(ws, F_FALLBACK, pk(cstr_idx(&providers, provider), 0, 0, 0, 0), 1);
    store_unlock(ws);
}

void wd_metrics_stream_open(int worker, const char *api, int delta)
{
    struct wstore *ws = store_lock(worker);
    if (ws == NULL)
        return;
    add_i64(&ws->open_streams[enum_idx(apis, NAPI, api)], delta);
    store_unlock(ws);
}

void wd_metrics_inflight(int worker, int delta)
{
    struct wstore *ws = store_lock(worker);
    if (ws == NULL)
        return;
    add_i64(&ws->inflight, delta);
    store_unlock(ws);
}

/* ---------------------------------------------------------------- prices and exporter */

static uint64_t dbits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

int wd_metrics_set_price(const char *model, double input_per_mtok, double output_per_mtok, double cached_per_mtok)
{
    if (!atomic_load(&ready) || model == NULL || !(input_per_mtok >= 0) || !(output_per_mtok >= 0) ||
        isnan(cached_per_mtok))
        return -1;
    unsigned idx = intern_get(&models, model, strlen(model), true);
    if (idx < 2)
        return -1;
    atomic_store(&prices[idx].in, dbits(input_per_mtok));
    atomic_store(&prices[idx].out, dbits(output_per_mtok));
    atomic_store(&prices[idx].cached, dbits(cached_per_mtok < 0 ? -1.0 : cached_per_mtok));
    atomic_store_explicit(&prices[idx].set, true, memory_order_release);
    return 0;
}

void wd_metrics_clear_prices(void)
{
    if (!atomic_load(&ready))
        return;
    for (unsigned i = 0; i < models.max + 2; i++)
        atomic_store(&prices[i].set, false);
}

void wd_metrics_spans_queued(uint64_t depth) { atomic_store_explicit(&spans_queued, depth, memory_order_relaxed); }
void wd_metrics_spans_exported(uint64_t n) { atomic_fetch_add_explicit(&spans_exported, n, memory_order_relaxed); }
void wd_metrics_spans_dropped(enum wd_metrics_span_drop reason, uint64_t n)
{
    unsigned r = (unsigned)reason < WD_SPAN_DROP__COUNT ? (unsigned)reason : WD_SPAN_DROP_ENCODE;
    atomic_fetch_add_explicit(&spans_dropped[r], n, memory_order_relaxed);
}
void wd_metrics_export_request(enum wd_metrics_outcome result)
{
    unsigned r = (unsigned)result < WD_MO__COUNT ? (unsigned)result : WD_MO_TRANSPORT_ERROR;
    atomic_fetch_add_explicit(&export_reqs[r], 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------- render */

static void put_escaped(struct wd_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            wd_buf_puts(b, "\\\\");
        else if (*s == '"')
            wd_buf_puts(b, "\\\"");
        else if (*s == '\n')
            wd_buf_puts(b, "\\n");
        else
            wd_buf_putc(b, *s);
    }
}

static void put_label_value(struct wd_buf *b, enum label_kind k, unsigned v)
{
    char tmp[8];
    const char *s = "other";
    switch (k) {
    case L_ROUTE: s = v < NELEM(routes) ? routes[v] : "other"; break;
    case L_API: s = v < NAPI ? apis[v] : "other"; break;
    case L_MODEL: s = intern_name(&models, v); break;
    case L_PROVIDER: s = intern_name(&providers, v); break;
    case L_KEY: s = intern_name(&keys, v); break;
    case L_STATUS:
        if (v >= 100 && v <= 599) {
            snprintf(tmp, sizeof(tmp), "%u", v);
            s = tmp;
        }
        break;
    case L_OUTCOME: s = v < WD_MO__COUNT ? outcomes[v] : "other"; break;
    case L_CLASS: s = v < NELEM(classes) ? classes[v] : "other"; break;
    case L_TOKTYPE: s = v < NELEM(tok_types) ? tok_types[v] : "other"; break;
    }
    put_escaped(b, s);
}

static void put_labels(struct wd_buf *b, const struct famdesc *d, uint64_t key, const char *le)
{
    wd_buf_putc(b, '{');
    for (unsigned i = 0; i < d->nfields; i++) {
        wd_buf_printf(b, "%s%s=\"", i ? "," : "", d->lnames[i]);
        put_label_value(b, d->kinds[i], field(key, i));
        wd_buf_putc(b, '"');
    }
    if (le != NULL)
        wd_buf_printf(b, "%sle=\"%s\"", d->nfields ? "," : "", le);
    wd_buf_putc(b, '}');
}

static void put_meta(struct wd_buf *b, const char *name, const char *type, const char *help)
{
    wd_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct merged {
    size_t n, nv;
    uint64_t *rows; /* n rows of [key, v0 .. v(nv-1)] */
};

static int row_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every worker's series of a family, summed by label set and sorted. */
static int merge(enum fam f, struct merged *m)
{
    const struct famdesc *d = &fams[f];
    m->nv = fam_nv(d);
    m->n = 0;
    m->rows = NULL;
    size_t total = 0;
    for (unsigned w = 0; w < nstores; w++)
        for (size_t i = 0; i <= stores[w].t[f].mask; i++)
            total += atomic_load_explicit(&stores[w].t[f].slots[i], memory_order_acquire) != NULL;
    if (total == 0)
        return 0;
    size_t hc = 16;
    while (hc < 2 * total + 2)
        hc <<= 1;
    size_t stride = m->nv + 1;
    size_t *h = malloc(hc * sizeof(*h));
    m->rows = calloc(total, stride * sizeof(uint64_t));
    if (h == NULL || m->rows == NULL) {
        free(h);
        free(m->rows);
        m->rows = NULL;
        return -1;
    }
    memset(h, 0xff, hc * sizeof(*h));
    for (unsigned w = 0; w < nstores; w++) {
        const struct table *t = &stores[w].t[f];
        for (size_t i = 0; i <= t->mask; i++) {
            struct series *s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
            if (s == NULL)
                continue;
            size_t j = mix64(s->key) & (hc - 1);
            while (h[j] != SIZE_MAX && m->rows[h[j] * stride] != s->key)
                j = (j + 1) & (hc - 1);
            if (h[j] == SIZE_MAX) {
                if (m->n == total) /* added since the count: it shows on the next scrape */
                    continue;
                h[j] = m->n++;
                m->rows[h[j] * stride] = s->key;
            }
            uint64_t *row = &m->rows[h[j] * stride];
            for (size_t k = 0; k < m->nv; k++)
                row[1 + k] += atomic_load_explicit(&s->v[k], memory_order_relaxed);
        }
    }
    free(h);
    qsort(m->rows, m->n, stride * sizeof(uint64_t), row_cmp);
    return 0;
}

static void render_family(struct wd_buf *b, enum fam f)
{
    const struct famdesc *d = &fams[f];
    struct merged m = {0};
    if (!atomic_load_explicit(&ready, memory_order_acquire) || merge(f, &m) != 0) {
        m.n = 0;
        m.rows = NULL;
    }
    size_t stride = m.nv + 1;
    if (f == F_REQ) {
        /* the request counter is the histogram's count: one store per request, and always consistent */
        put_meta(b, "warden_requests_total", "counter",
                 "Requests by route, inbound API, resolved model, provider and HTTP status.");
        for (size_t r = 0; r < m.n; r++) {
            uint64_t *row = &m.rows[r * stride], c = 0;
            for (unsigned k = 0; k <= d->nb; k++)
                c += row[1 + k];
            wd_buf_puts(b, "warden_requests_total");
            put_labels(b, d, row[0], NULL);
            wd_buf_printf(b, " %llu\n", (unsigned long long)c);
        }
    }
    put_meta(b, d->name, d->bounds ? "histogram" : "counter", d->help);
    for (size_t r = 0; r < m.n; r++) {
        uint64_t *row = &m.rows[r * stride];
        if (d->bounds == NULL) {
            wd_buf_puts(b, d->name);
            put_labels(b, d, row[0], NULL);
            if (f == F_COST)
                wd_buf_printf(b, " %.9f\n", (double)row[1] / 1e9);
            else
                wd_buf_printf(b, " %llu\n", (unsigned long long)row[1]);
            continue;
        }
        uint64_t c = 0;
        char le[32];
        for (unsigned k = 0; k <= d->nb; k++) {
            c += row[1 + k];
            if (k < d->nb)
                snprintf(le, sizeof(le), "%g", d->bounds[k]);
            else
                strcpy(le, "+Inf");
            wd_buf_printf(b, "%s_bucket", d->name);
            put_labels(b, d, row[0], le);
            wd_buf_printf(b, " %llu\n", (unsigned long long)c);
        }
        wd_buf_printf(b, "%s_sum", d->name);
        put_labels(b, d, row[0], NULL);
        wd_buf_printf(b, " %.6f\n", (double)row[1 + d->nb + 1] / 1e6);
        wd_buf_printf(b, "%s_count", d->name);
        put_labels(b, d, row[0], NULL);
        wd_buf_printf(b, " %llu\n", (unsigned long long)c);
    }
    free(m.rows);
}

struct procstat {
    bool ok;
    double cpu_s, start_s;
    uint64_t rss, vsize;
};

static void read_procstat(struct procstat *p)
{
    memset(p, 0, sizeof(*p));
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "re");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = strrchr(buf, ')');
    if (s == NULL)
        return;
    /* fields after the command: 3 state ... 14 utime 15 stime ... 22 starttime 23 vsize 24 rss */
    unsigned long long v[24] = {0};
    char *tok, *save = NULL;
    int i = 3;
    for (tok = strtok_r(s + 1, " ", &save); tok && i <= 24; tok = strtok_r(NULL, " ", &save), i++)
        v[i - 1] = strtoull(tok, NULL, 10);
    if (i <= 24)
        return;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (tck <= 0)
        tck = 100;
    p->cpu_s = (double)(v[13] + v[14]) / (double)tck;
    p->vsize = v[22];
    p->rss = v[23] * (uint64_t)(page > 0 ? page : 4096);
    unsigned long long btime = 0;
    if ((f = fopen("/proc/stat", "re")) != NULL) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "btime %llu", &btime) == 1)
                break;
        fclose(f);
    }
    p->start_s = (double)btime + (double)v[21] / (double)tck;
    p->ok = true;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void render_process(struct wd_buf *b)
{
    struct procstat p;
    read_procstat(&p);
    if (p.ok) {
        put_meta(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        wd_buf_printf(b, "process_cpu_seconds_total %.2f\n", p.cpu_s);
        put_meta(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        wd_buf_printf(b, "process_resident_memory_bytes %llu\n", (unsigned long long)p.rss);
        put_meta(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        wd_buf_printf(b, "process_virtual_memory_bytes %llu\n", (unsigned long long)p.vsize);
        put_meta(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
        wd_buf_printf(b, "process_start_time_seconds %.2f\n", p.start_s);
    }
    long fds = count_fds();
    if (fds >= 0) {
        put_meta(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        wd_buf_printf(b, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        put_meta(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        if (rl.rlim_cur == RLIM_INFINITY)
            wd_buf_puts(b, "process_max_fds +Inf\n");
        else
            wd_buf_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

static void render_audit(struct wd_buf *b, wd_metrics_audit_fn audit)
{
    struct wd_audit_stats t = {0};
    uint64_t connected = 0;
    size_t cap = nstores ? nstores : 64, n = 0;
    struct wd_audit_stats *st = audit ? calloc(cap, sizeof(*st)) : NULL;
    if (st != NULL)
        n = audit(st, cap);
    for (size_t i = 0; i < n && i < cap; i++) {
        t.records += st[i].records;
        t.written += st[i].written;
        t.spooled += st[i].spooled;
        t.refused += st[i].refused;
        t.batches += st[i].batches;
        t.checkpoints += st[i].checkpoints;
        t.insert_batches += st[i].insert_batches;
        t.answers_held += st[i].answers_held;
        t.answers_early += st[i].answers_early;
        t.stalls += st[i].stalls;
        t.queue_depth += st[i].queue_depth;
        t.spool_bytes += st[i].spool_bytes;
        connected += st[i].connected;
    }
    free(st);
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"warden_audit_records_total", "counter", "Audit records appended to a chain."},
        {"warden_audit_records_written_total", "counter", "Audit records committed to PostgreSQL (replays included)."},
        {"warden_audit_records_spooled_total", "counter", "Audit records made durable in the local spool file."},
        {"warden_audit_records_refused_total", "counter",
         "Audit records refused (queue full, or fail_closed with the database away); never silent."},
        {"warden_audit_batches_total", "counter", "Batches committed to PostgreSQL."},
        {"warden_audit_insert_batches_total", "counter",
         "Record batches committed with the idempotent insert instead of COPY (after a lost connection, or "
         "replaying a spool that may hold records the database has)."},
        {"warden_audit_checkpoints_total", "counter", "Signed checkpoints made."},
        {"warden_audit_answers_held_total", "counter",
         "Answers whose last bytes waited until their call record was durable (audit.durable_answers)."},
        {"warden_audit_answers_released_early_total", "counter",
         "Answers sent before their records were durable: audit.durable_answers_timeout passed, or nothing could "
         "make them durable (the database away under fail_closed, or away with the spool failing)."},
        {"warden_audit_batches_stalled_total", "counter",
         "Batches given up after waiting half of audit.durable_answers_timeout for the database (fail_open): their "
         "records went to the spool."},
        {"warden_audit_queue_depth", "gauge", "Audit records queued in memory, not yet durable."},
        {"warden_audit_spool_bytes", "gauge", "Bytes in the audit spool files waiting for replay."},
        {"warden_audit_database_connected", "gauge", "Audit writers (one per worker) connected to PostgreSQL."},
    };
    uint64_t v[] = {t.records,        t.written,     t.spooled,      t.refused,       t.batches,
                    t.insert_batches, t.checkpoints, t.answers_held, t.answers_early, t.stalls,
                    t.queue_depth,    t.spool_bytes, connected};
    for (size_t i = 0; i < NELEM(v); i++) {
        put_meta(b, m[i].name, m[i].type, m[i].help);
        wd_buf_printf(b, "%s %llu\n", m[i].name, (unsigned long long)v[i]);
    }
}

/* docs/governance.md: admissions, and the governor's database traffic (no round trip per request). */
static void render_governance(struct wd_buf *b)
{
    struct wd_gov_stats g;
    wd_gov_stats(&g);
    if (!g.on)
        return;
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"warden_governance_admitted_total", "counter", "Calls admitted under at least one budget or rate limit."},
        {"warden_governance_refused_total", "counter", "Calls refused by a budget or rate limit (429)."},
        {"warden_governance_lease_waits_total", "counter", "Admissions that waited for a lease top-up."},
        {"warden_governance_fail_open_admits_total", "counter",
         "Limits passed on local accounting while the database was unreachable (governance.mode fail_open)."},
        {"warden_governance_db_roundtrips_total", "counter",
         "Statements the governor sent to PostgreSQL (leases, spend flushes, reloads, admin jobs)."},
        {"warden_governance_leases_total", "counter", "Lease top-ups taken from the database."},
        {"warden_governance_database_up", "gauge", "1 when the governor's last exchange with PostgreSQL succeeded."},
    };
    uint64_t v[] = {g.admitted, g.refused, g.waited, g.fail_open, g.db_roundtrips, g.leases, g.db_up};
    for (size_t i = 0; i < NELEM(v); i++) {
        put_meta(b, m[i].name, m[i].type, m[i].help);
        wd_buf_printf(b, "%s %llu\n", m[i].name, (unsigned long long)v[i]);
    }
}

/* The secret cache, per scheme (names only: a reference's path is not a label, and never a value). */
static void render_secrets(struct wd_buf *b)
{
    struct wd_secrets_scheme_stats st[8];
    size_t n = wd_secrets_stats(st, NELEM(st));
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"warden_secret_references", "gauge", "Secret references the cache holds."},
        {"warden_secret_stale_references", "gauge",
         "References served past their expiry because their backend fails (up to secrets.stale_max)."},
        {"warden_secret_failed_references", "gauge", "References whose backend failed with no value to serve."},
        {"warden_secret_fetches_total", "counter", "Backend reads, by result."},
        {"warden_secret_stale_total", "counter", "Times a reference began to be served stale."},
    };
    for (size_t k = 0; k < NELEM(m); k++) {
        put_meta(b, m[k].name, m[k].type, m[k].help);
        for (size_t i = 0; i < n; i++) {
            int sl = (int)strcspn(st[i].scheme, ":");
            if (k == 3) {
                wd_buf_printf(b, "%s{scheme=\"%.*s\",result=\"ok\"} %lu\n", m[k].name, sl, st[i].scheme, st[i].fetches_ok);
                wd_buf_printf(b, "%s{scheme=\"%.*s\",result=\"error\"} %lu\n", m[k].name, sl, st[i].scheme,
                              st[i].fetches_failed);
                continue;
            }
            unsigned long v = k == 0 ? st[i].references : k == 1 ? st[i].stale : k == 2 ? st[i].failed
                                                                                  : st[i].stale_episodes;
            wd_buf_printf(b, "%s{scheme=\"%.*s\"} %lu\n", m[k].name, sl, st[i].scheme, v);
        }
    }
}

void wd_metrics_render(struct wd_buf *b, wd_metrics_audit_fn audit)
{
    bool up = atomic_load_explicit(&ready, memory_order_acquire);
    put_meta(b, "warden_build_info", "gauge", "Warden's version.");
    wd_buf_puts(b, "warden_build_info{version=\"");
    put_escaped(b, WARDEN_VERSION);
    wd_buf_puts(b, "\"} 1\n");

    /* warden_cost_usd_total keeps its metadata without a price, but no series */
    for (int f = 0; f < F__N; f++)
        render_family(b, (enum fam)f);

    int64_t streams[NAPI] = {0}, inflight = 0;
    for (unsigned w = 0; up && w < nstores; w++) {
        for (size_t a = 0; a < NAPI; a++)
            streams[a] += atomic_load_explicit(&stores[w].open_streams[a], memory_order_relaxed);
        inflight += atomic_load_explicit(&stores[w].inflight, memory_order_relaxed);
    }
    put_meta(b, "warden_open_streams", "gauge", "Streamed responses open, by inbound API.");
    for (size_t a = 1; a < NAPI; a++)
        wd_buf_printf(b, "warden_open_streams{api=\"%s\"} %lld\n", apis[a], (long long)streams[a]);
    if (streams[0] != 0)
        wd_buf_printf(b, "warden_open_streams{api=\"other\"} %lld\n", (long long)streams[0]);
    put_meta(b, "warden_inflight_requests", "gauge", "Requests being handled.");
    wd_buf_printf(b, "warden_inflight_requests %lld\n", (long long)inflight);

    wd_front_render_metrics(b); /* connections and the front guard (server/front.h) */

    put_meta(b, "warden_metrics_label_overflow_total", "counter",
             "Label values counted as other because the table of names was full.");
    struct intern *tabs[] = {&models, &keys, &providers};
    for (size_t i = 0; i < NELEM(tabs); i++)
        wd_buf_printf(b, "warden_metrics_label_overflow_total{label=\"%s\"} %llu\n", tabs[i]->label,
                      (unsigned long long)atomic_load_explicit(&tabs[i]->overflow, memory_order_relaxed));
    put_meta(b, "warden_metrics_series_dropped_total", "counter",
             "Metric updates lost because a worker's series table was full.");
    wd_buf_printf(b, "warden_metrics_series_dropped_total %llu\n",
                  (unsigned long long)atomic_load_explicit(&series_dropped, memory_order_relaxed));

    render_audit(b, audit);
    render_secrets(b);
    render_governance(b);

    put_meta(b, "warden_otel_spans_queued", "gauge", "Spans waiting for export.");
    wd_buf_printf(b, "warden_otel_spans_queued %llu\n",
                  (unsigned long long)atomic_load_explicit(&spans_queued, memory_order_relaxed));
    put_meta(b, "warden_otel_spans_exported_total", "counter", "Spans accepted by the OTLP collector.");
    wd_buf_printf(b, "warden_otel_spans_exported_total %llu\n",
                  (unsigned long long)atomic_load_explicit(&spans_exported, memory_order_relaxed));
    put_meta(b, "warden_otel_spans_dropped_total", "counter", "Spans dropped before export, by reason.");
    for (int r = 0; r < WD_SPAN_DROP__COUNT; r++)
        wd_buf_printf(b, "warden_otel_spans_dropped_total{reason=\"%s\"} %llu\n", drop_reasons[r],
                      (unsigned long long)atomic_load_explicit(&spans_dropped[r], memory_order_relaxed));
    put_meta(b, "warden_otel_export_requests_total", "counter", "OTLP export requests, by result.");
    for (int r = 0; r < WD_MO__COUNT; r++)
        wd_buf_printf(b, "warden_otel_export_requests_total{result=\"%s\"} %llu\n", outcomes[r],
                      (unsigned long long)atomic_load_explicit(&export_reqs[r], memory_order_relaxed));

    render_process(b);
}

/* ---------------------------------------------------------------- the separate listener */

#define CONN_MAX 64
#define CONN_TIMEOUT_MS 10000
#define REQ_HEAD_MAX 8192

struct mconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    int closing;           /* handles still to close */
    bool answered;
    size_t n;
    struct wd_buf out;
    char head[REQ_HEAD_MAX];
};

static struct {
    bool running;
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    wd_metrics_audit_fn audit;
    unsigned nconns;
} srv;

static void conn_closed(uv_handle_t *h)
{
    struct mconn *c = h->data;
    if (--c->closing > 0)
        return;
    wd_buf_free(&c->out);
    free(c);
    srv.nconns--;
}

static void conn_close(struct mconn *c)
{
    if (c->closing > 0)
        return;
    c->closing = 2;
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_written(uv_write_t *wr, int status)
{
    conn_close(wr->data);
}

static void conn_answer(struct mconn *c, int status, const char *reason, bool head_only, bool metrics)
{
    struct wd_buf body = {0};
    if (metrics)
        wd_metrics_render(&body, srv.audit);
    else
        wd_buf_puts(&body, status == 404 ? "not found: this listener serves GET /metrics\n" : "bad request\n");
    wd_buf_printf(&c->out,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
                  "Cache-Control: no-store\r\n\r\n",
                  status, reason, metrics ? WD_METRICS_CONTENT_TYPE : "text/plain; charset=utf-8", body.n);
    if (!head_only && body.n > 0)
        wd_buf_put(&c->out, body.p, body.n);
    wd_buf_free(&body);
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->out.oom) {
        conn_close(c);
        return;
    }
    uv_buf_t buf = uv_buf_init(c->out.p, (unsigned)c->out.n);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, conn_written) != 0)
        conn_close(c);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct mconn *c = h->data;
    *buf = uv_buf_init(c->head + c->n, (unsigned)(REQ_HEAD_MAX - 1 - c->n));
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct mconn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->answered || c->closing)
        return;
    c->n += (size_t)nread;
    c->head[c->n] = '\0';
    if (strstr(c->head, "\r\n\r\n") == NULL && strstr(c->head, "\n\n") == NULL) {
        if (c->n >= REQ_HEAD_MAX - 1)
            conn_answer(c, 431, "Request Header Fields Too Large", false, false);
        return;
    }
    /* the request line: METHOD SP target SP HTTP/1.x */
    char *sp1 = strchr(c->head, ' '), *eol = strpbrk(c->head, "\r\n");
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp2 > eol || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        conn_answer(c, 400, "Bad Request", false, false);
        return;
    }
    size_t mlen = (size_t)(sp1 - c->head), plen = (size_t)(sp2 - sp1 - 1);
    char *q = memchr(sp1 + 1, '?', plen);
    if (q != NULL)
        plen = (size_t)(q - sp1 - 1);
    bool get = mlen == 3 && memcmp(c->head, "GET", 3) == 0, head = mlen == 4 && memcmp(c->head, "HEAD", 4) == 0;
    bool is_metrics = plen == 8 && memcmp(sp1 + 1, "/metrics", 8) == 0;
    if ((get || head) && is_metrics)
        conn_answer(c, 200, "OK", head, true);
    else
        conn_answer(c, 404, "Not Found", head, false);
}

static void conn_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_metrics_accept(uv_stream_t *l, int status)
{
    if (status != 0)
        return;
    struct mconn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    srv.nconns++;
    uv_tcp_init(&srv.loop, &c->tcp);
    uv_timer_init(&srv.loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || srv.nconns > CONN_MAX) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, conn_timeout, CONN_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0)
        conn_close(c);
}

static void stop_walk(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        return;
    if (h->data != NULL && h->data != &srv)
        conn_close(h->data);
    else
        uv_close(h, NULL);
}

static void on_stop(uv_async_t *a) { uv_walk(&srv.loop, stop_walk, NULL); }

static void *metrics_thread(void *arg)
{
    uv_run(&srv.loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv.loop);
    return NULL;
}

int wd_metrics_serve(const char *host, uint16_t port, wd_metrics_audit_fn audit, char *why, size_t why_cap)
{
    if (srv.running) {
        snprintf(why, why_cap, "the metrics listener is already running");
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *ai;
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", port);
    int gr = getaddrinfo(host, ps, &hints, &ai);
    if (gr != 0) {
        snprintf(why, why_cap, "cannot listen on %s:%u: %s", host, port, gai_strerror(gr));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        snprintf(why, why_cap, "cannot listen on %s:%u: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    memset(&srv, 0, sizeof(srv));
    srv.audit = audit;
    if (uv_loop_init(&srv.loop) != 0) {
        close(fd);
        snprintf(why, why_cap, "cannot start the metrics listener's loop");
        return -1;
    }
    uv_tcp_init(&srv.loop, &srv.listener);
    uv_async_init(&srv.loop, &srv.stop, on_stop);
    srv.listener.data = srv.stop.data = &srv;
    int r = uv_tcp_open(&srv.listener, fd);
    if (r != 0)
        close(fd);
    else
        r = uv_listen((uv_stream_t *)&srv.listener, 128, on_metrics_accept);
    if (r == 0) {
        /* SIGTERM, SIGINT and SIGHUP belong to the main loop: the thread starts with them blocked */
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, &old);
        r = pthread_create(&srv.thread, NULL, metrics_thread, NULL) == 0 ? 0 : -1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (r != 0) {
        snprintf(why, why_cap, "cannot start the metrics listener on %s:%u", host, port);
        uv_walk(&srv.loop, stop_walk, NULL);
        uv_run(&srv.loop, UV_RUN_DEFAULT);
        uv_loop_close(&srv.loop);
        return -1;
    }
    srv.running = true;
    return 0;
}

void wd_metrics_serve_stop(void)
{
    if (!srv.running)
        return;
    uv_async_send(&srv.stop);
    pthread_join(srv.thread, NULL);
    srv.running = false;
}
