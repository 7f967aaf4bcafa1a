/* OTLP/HTTP trace exporter (see exporter.h). One background thread, blocking libcurl easy calls: export
 * is off the request path entirely, so the simple tool is the right one. */
#include "otel/exporter.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <zlib.h>

#include "secrets/secrets.h"
#include "lib/log.h"

#define QUEUE_MAX_SPANS 16384           /* per worker */
#define QUEUE_MAX_BYTES (16u << 20)
#define QUEUE_ADMIT_SPANS (QUEUE_MAX_SPANS * 3 / 4) /* above this a new trace is not recorded at all */
#define FLUSH_SPANS 2048                /* a queue this long wakes the export thread before its second */
#define EXPORT_INTERVAL_MS 1000
#define MAX_ATTEMPTS 5

static struct wd_otel_counters counters;

void wd_otel_set_counters(const struct wd_otel_counters *c) { counters = *c; }

static void count_spans_queued(uint64_t depth)
{
    if (counters.spans_queued != NULL)
        counters.spans_queued(depth);
}
static void count_spans_exported(uint64_t n)
{
    if (counters.spans_exported != NULL)
        counters.spans_exported(n);
}
static void count_spans_dropped(enum wd_metrics_span_drop reason, uint64_t n)
{
    if (counters.spans_dropped != NULL)
        counters.spans_dropped(reason, n);
}
static void count_export_request(enum wd_otel_result result)
{
    if (counters.export_request != NULL)
        counters.export_request(result);
}

struct wq {
    pthread_mutex_t mu;
    struct wd_buf buf;                  /* encoded spans (protobuf: concatenated; JSON: joined by ',') */
    uint32_t n;
    _Atomic uint32_t fill;              /* n, readable without the lock (admission of new traces) */
};

static struct {
    bool enabled;
    bool json;
    bool gzip;
    char url[1024];
    unsigned timeout_ms;
    uint64_t sample_below;              /* sampled when the trace id's low 64 bits are below this */
    bool sample_all;
    struct curl_slist *headers;
    struct wd_otlp_resource res;
    char *strings[48];                  /* owned attribute strings */
    int nstrings;
    struct wq *queues;
    struct wd_buf *taken;               /* the export thread's: each queue's buffer, swapped out whole */
    unsigned nqueues;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    atomic_bool flush_now;              /* a queue reached FLUSH_SPANS */
    _Atomic uint64_t queued, exported, dropped_full, dropped_export, requests_ok, requests_failed, retries;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

bool wd_otel_enabled(void) { return G.enabled; }
const char *wd_otel_traces_url(void) { return G.enabled ? G.url : ""; }

static bool thread_started;
static void *export_main(void *arg);

static const char *keep(const char *s, size_t n)
{
    if (G.nstrings >= (int)(sizeof(G.strings) / sizeof(G.strings[0])))
        return NULL;
    char *c = strndup(s, n);
    if (c != NULL)
        G.strings[G.nstrings++] = c;
    return c;
}

static void res_attr(const char *key, const char *v, size_t n)
{
    struct wd_otlp_resource *r = &G.res;
    if (v == NULL || r->nattrs >= (int)(sizeof(r->attrs) / sizeof(r->attrs[0])))
        return;
    for (int i = 0; i < r->nattrs; i++)
        if (strcmp(r->attrs[i].key, key) == 0)
            return; /* first one wins: explicit settings before OTEL_RESOURCE_ATTRIBUTES */
    const char *kv = keep(v, n);
    if (kv == NULL)
        return;
    r->attrs[r->nattrs++] = (struct wd_attr){.key = key, .type = WD_ATTR_STR, .s = {kv, n}};
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* %XX decoding in place (W3C Baggage-style values of the OTEL_* list variables). */
static size_t pct_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(h, &end, 16);
            if (*end == '\0') {
                s[o++] = (char)v;
                i += 2;
                continue;
            }
        }
        s[o++] = s[i];
    }
    return o;
}

static size_t trim(const char **p, size_t n)
{
    while (n > 0 && (**p == ' ' || **p == '\t'))
        (*p)++, n--;
    while (n > 0 && ((*p)[n - 1] == ' ' || (*p)[n - 1] == '\t'))
        n--;
    return n;
}

/* "k=v,k2=v2" lists: cb(key, klen, value, vlen) with values percent-decoded. */
static void each_pair(const char *list, void (*cb)(const char *, size_t, char *, size_t))
{
    char *copy = strdup(list);
    if (copy == NULL)
        return;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL)
            continue;
        const char *k = item;
        size_t kl = trim(&k, (size_t)(eq - item));
        const char *v = eq + 1;
        size_t vl = trim(&v, strlen(eq + 1));
        if (kl == 0)
            continue;
        char *vv = (char *)v;
        vl = pct_decode(vv, vl);
        cb(k, kl, vv, vl);
    }
    OPENSSL_cleanse(copy, strlen(list));
    free(copy);
}

static void add_header(const char *k, size_t kl, const char *v, size_t vl)
{
    char *line = malloc(kl + vl + 3);
    if (line == NULL)
        return;
    snprintf(line, kl + vl + 3, "%.*s: %.*s", (int)kl, k, (int)vl, v);
    struct curl_slist *l = curl_slist_append(G.headers, line);
    OPENSSL_cleanse(line, kl + vl + 2);
    free(line);
    if (l != NULL)
        G.headers = l;
}

static void env_header(const char *k, size_t kl, char *v, size_t vl) { add_header(k, kl, v, vl); }

static void env_res_attr(const char *k, size_t kl, char *v, size_t vl)
{
    const char *key = keep(k, kl);
    if (key != NULL)
        res_attr(key, v, vl);
}

int wd_otel_init(const struct wd_telemetry_config *cfg, unsigned nworkers, char *why, size_t why_cap)
{
    /* endpoint: config base URL, else the signal-specific variable (used as is), else the generic one */
    const char *base = cfg->otlp_endpoint, *full = NULL;
    if (base == NULL && (full = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) == NULL)
        base = env("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (base == NULL && full == NULL)
        return 0; /* tracing off */
    if (full != NULL)
        snprintf(G.url, sizeof(G.url), "%s", full);
    else {
        size_t l = strlen(base);
        while (l > 0 && base[l - 1] == '/')
            l--;
        snprintf(G.url, sizeof(G.url), "%.*s/v1/traces", (int)l, base);
    }
    if (strncmp(G.url, "http://", 7) != 0 && strncmp(G.url, "https://", 8) != 0) {
        snprintf(why, why_cap, "OTLP endpoint must start with http:// or https://");
        return -1;
    }
    /* user:password@ in the endpoint would reach the start-up and export-failure logs; the config loader
     * refuses it in telemetry.otlp.endpoint, and the variables get the same answer, never echoing the URL */
    const char *auth = G.url + (G.url[4] == 's' ? 8 : 7);
    if (memchr(auth, '@', strcspn(auth, "/?#")) != NULL) {
        snprintf(why, why_cap, "%s must not contain user:password@; send credentials with OTEL_EXPORTER_OTLP_HEADERS",
                 cfg->otlp_endpoint != NULL ? "telemetry.otlp.endpoint"
                 : full != NULL             ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
                                            : "OTEL_EXPORTER_OTLP_ENDPOINT");
        OPENSSL_cleanse(G.url, sizeof(G.url));
        return -1;
    }
    /* protocol */
    const char *proto = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    if (proto == NULL)
        proto = env("OTEL_EXPORTER_OTLP_PROTOCOL");
    if (cfg->otlp_protocol != WD_OTLP_UNSET)
        G.json = cfg->otlp_protocol == WD_OTLP_JSON;
    else if (proto != NULL && strcmp(proto, "http/json") == 0)
        G.json = true;
    else if (proto != NULL && strcmp(proto, "http/protobuf") != 0)
        wd_logf(WD_LOG_WARN, "", "OTEL_EXPORTER_OTLP_PROTOCOL=%.40s is not supported; using http/protobuf", proto);
    /* compression and timeout */
    const char *comp = env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
    if (comp == NULL)
        comp = env("OTEL_EXPORTER_OTLP_COMPRESSION");
    G.gzip = cfg->otlp_compression != WD_OTLP_COMPRESSION_UNSET ? cfg->otlp_compression == WD_OTLP_COMPRESSION_GZIP
                                                                  : (comp != NULL && strcmp(comp, "gzip") == 0);
    const char *to = env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
    if (to == NULL)
        to = env("OTEL_EXPORTER_OTLP_TIMEOUT");
    G.timeout_ms = cfg->otlp_timeout_ms ? cfg->otlp_timeout_ms : to != NULL && atoi(to) > 0 ? (unsigned)atoi(to) : 10000;
    /* sampling: config, else OTEL_TRACES_SAMPLER_ARG for the ratio samplers, else everything */
    double ratio = cfg->sampling_ratio;
    const char *sampler = env("OTEL_TRACES_SAMPLER"), *arg = env("OTEL_TRACES_SAMPLER_ARG");
    if (ratio < 0 && sampler != NULL && strstr(sampler, "traceidratio") != NULL && arg != NULL)
        ratio = strtod(arg, NULL);
    if (!(ratio >= 0 && ratio <= 1)) /* unset, out of range or NaN */
        ratio = 1.0;
    G.sample_all = ratio >= 1.0;
    G.sample_below = G.sample_all ? UINT64_MAX : (uint64_t)(ratio * 18446744073709551616.0); /* < 2^64 for ratio < 1 */
    /* headers: the config's (values may be secret references), then OTEL_EXPORTER_OTLP_HEADERS */
    G.headers = curl_slist_append(NULL, G.json ? "Content-Type: application/json" : "Content-Type: application/x-protobuf");
    if (G.gzip)
        G.headers = curl_slist_append(G.headers, "Content-Encoding: gzip");
    G.headers = curl_slist_append(G.headers, "Expect:");
    for (size_t i = 0; i < cfg->notlp_headers; i++) {
        const struct wd_otlp_header *h = &cfg->otlp_headers[i];
        if (wd_secret_scheme_supported(h->value)) {
            char *v = malloc(WD_SECRET_MAX);
            int n = v ? wd_secret_resolve(h->value, v, WD_SECRET_MAX) : -1;
            if (n <= 0) {
                snprintf(why, why_cap, "telemetry.otlp.headers.%s: cannot resolve %s", h->name, h->value);
                free(v);
                return -1;
            }
            add_header(h->name, strlen(h->name), v, (size_t)n);
            OPENSSL_cleanse(v, WD_SECRET_MAX);
            free(v);
        } else {
            add_header(h->name, strlen(h->name), h->value, strlen(h->value));
        }
    }
    const char *eh = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    if (eh == NULL)
        eh = env("OTEL_EXPORTER_OTLP_HEADERS");
    if (eh != NULL)
        each_pair(eh, env_header);
    /* resource */
    const char *svc = cfg->service_name ? cfg->service_name : env("OTEL_SERVICE_NAME") ? env("OTEL_SERVICE_NAME") : "warden";
    res_attr("service.name", svc, strlen(svc));
    res_attr("service.version", WARDEN_VERSION, strlen(WARDEN_VERSION));
    char inst[128], host[64] = "";
    gethostname(host, sizeof(host) - 1);
    int il = snprintf(inst, sizeof(inst), "%s-%d", host, (int)getpid());
    res_attr("service.instance.id", inst, (size_t)il);
    /* Kubernetes downward API, as the Helm chart maps it into the environment */
    static const char *const k8s[][3] = {{"k8s.pod.name", "K8S_POD_NAME", "POD_NAME"},
                                         {"k8s.namespace.name", "K8S_NAMESPACE_NAME", "POD_NAMESPACE"},
                                         {"k8s.node.name", "K8S_NODE_NAME", "NODE_NAME"},
                                         {"k8s.pod.uid", "K8S_POD_UID", "POD_UID"}};
    for (size_t i = 0; i < sizeof(k8s) / sizeof(k8s[0]); i++) {
        const char *v = env(k8s[i][1]) ? env(k8s[i][1]) : env(k8s[i][2]);
        if (v != NULL)
            res_attr(k8s[i][0], v, strlen(v));
    }
    const char *ra = env("OTEL_RESOURCE_ATTRIBUTES");
    if (ra != NULL)
        each_pair(ra, env_res_attr);
    G.queues = calloc(nworkers ? nworkers : 1, sizeof(*G.queues));
    G.taken = calloc(nworkers ? nworkers : 1, sizeof(*G.taken));
    if (G.queues == NULL || G.taken == NULL) {
        free(G.queues);
        free(G.taken);
        G.queues = NULL, G.taken = NULL;
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    G.nqueues = nworkers ? nworkers : 1;
    for (unsigned i = 0; i < G.nqueues; i++)
        pthread_mutex_init(&G.queues[i].mu, NULL);
    G.enabled = true;
    if (pthread_create(&G.thread, NULL, export_main, NULL) != 0) {
        snprintf(why, why_cap, "cannot start the OTLP export thread");
        G.enabled = false;
        return -1;
    }
    thread_started = true;
    return 0;
}

bool wd_otel_sample(const uint8_t trace_id[16])
{
    if (G.sample_all)
        return true;
    uint64_t low = 0;
    for (int i = 8; i < 16; i++)
        low = low << 8 | trace_id[i];
    return low < G.sample_below;
}

void wd_otel_submit(unsigned worker, const struct wd_span *s)
{
    if (!G.enabled || !(s->flags & 1))
        return;
    struct wq *q = &G.queues[worker % G.nqueues];
    pthread_mutex_lock(&q->mu);
    if (q->n >= QUEUE_MAX_SPANS || q->buf.n >= QUEUE_MAX_BYTES) {
        pthread_mutex_unlock(&q->mu);
        atomic_fetch_add_explicit(&G.dropped_full, 1, memory_order_relaxed);
        count_spans_dropped(WD_SPAN_DROP_QUEUE_FULL, 1);
        return;
    }
    size_t before = q->buf.n;
    if (G.json) {
        if (q->buf.n > 0)
            wd_buf_putc(&q->buf, ',');
        wd_otlp_span_json(s, &q->buf);
    } else {
        wd_otlp_span_pb(s, &q->buf);
    }
    if (q->buf.oom) {
        q->buf.oom = false;
        q->buf.n = before;
        pthread_mutex_unlock(&q->mu);
        atomic_fetch_add_explicit(&G.dropped_full, 1, memory_order_relaxed);
        count_spans_dropped(WD_SPAN_DROP_ENCODE, 1);
        return;
    }
    q->n++;
    atomic_store_explicit(&q->fill, q->n, memory_order_relaxed);
    bool wake = q->n == FLUSH_SPANS;
    pthread_mutex_unlock(&q->mu);
    uint64_t depth = atomic_fetch_add_explicit(&G.queued, 1, memory_order_relaxed) + 1;
    count_spans_queued(depth);
    if (wake) {
        atomic_store(&G.flush_now, true);
        pthread_cond_signal(&G.cv);
    }
}

bool wd_otel_admit(unsigned worker)
{
    if (!G.enabled)
        return false;
    /* whole traces or nothing: a trace begun with room left is not cut short by a full queue */
    return atomic_load_explicit(&G.queues[worker % G.nqueues].fill, memory_order_relaxed) < QUEUE_ADMIT_SPANS;
}

/* ---- the export thread ----------------------------------------------------------------------- */

static size_t discard(char *p, size_t sz, size_t n, void *ud) { return sz * n; }

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    long *retry_after = ud;
    size_t len = sz * n;
    if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        long v = strtol(p + 12, NULL, 10);
        if (v > 0)
            *retry_after = v;
    }
    return len;
}

/* A request body in pieces (the request's head, each queue's spans, the JSON tail), sent through curl's
 * read callback: the spans go from the queues' buffers straight into curl's, with no copy of the whole
 * batch into one buffer first. */
struct body {
    struct wd_str *piece;
    size_t npieces, len;
    size_t i, off;                      /* read position */
};

static void body_add(struct body *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    b->piece[b->npieces++] = (struct wd_str){p, n};
    b->len += n;
}

static size_t body_read(char *dst, size_t sz, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t cap = sz * nmemb, n = 0;
    while (n < cap && b->i < b->npieces) {
        const struct wd_str *pc = &b->piece[b->i];
        size_t k = pc->n - b->off < cap - n ? pc->n - b->off : cap - n;
        memcpy(dst + n, pc->p + b->off, k);
        n += k;
        b->off += k;
        if (b->off == pc->n)
            b->i++, b->off = 0;
    }
    return n;
}

/* curl rewinds a body it must send again (a reused connection that turned out closed). */
static int body_seek(void *ud, curl_off_t offset, int origin)
{
    struct body *b = ud;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > b->len)
        return CURL_SEEKFUNC_CANTSEEK;
    size_t left = (size_t)offset;
    b->i = 0;
    while (b->i < b->npieces && left >= b->piece[b->i].n)
        left -= b->piece[b->i++].n;
    b->off = left;
    return CURL_SEEKFUNC_OK;
}

static int gzip_body(const struct body *in, struct wd_buf *out)
{
    z_stream z = {0};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, in->len) + 64 * in->npieces; /* room for a block end per piece, to spare */
    if (!wd_buf_reserve(out, cap)) {
        deflateEnd(&z);
        return -1;
    }
    z.next_out = (Bytef *)out->p;
    z.avail_out = (uInt)cap;
    int r = Z_OK;
    for (size_t i = 0; i < in->npieces && r == Z_OK; i++) {
        z.next_in = (Bytef *)in->piece[i].p;
        z.avail_in = (uInt)in->piece[i].n;
        r = deflate(&z, Z_NO_FLUSH);
        if (z.avail_in != 0)
            r = Z_BUF_ERROR;
    }
    if (r == Z_OK)
        r = deflate(&z, Z_FINISH);
    out->n = cap - z.avail_out;
    deflateEnd(&z);
    return r == Z_STREAM_END ? 0 : -1;
}

/* Waits up to ms, or less when told to stop. Returns true when stopping. Called with G.mu held. */
static bool wait_ms(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    while (!G.stop && !atomic_load(&G.flush_now) && pthread_cond_timedwait(&G.cv, &G.mu, &ts) != ETIMEDOUT)
        ;
    atomic_store(&G.flush_now, false);
    return G.stop;
}

/* POSTs one request; retries what a collector says to retry. */
static void export_batch(CURL *h, struct body *body, uint32_t nspans, bool final)
{
    long retry_after = 0;
    unsigned backoff = 250;
    for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        long status = 0;
        retry_after = 0;
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, G.url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, G.headers);
        body->i = body->off = 0;
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, body_read);
        curl_easy_setopt(h, CURLOPT_READDATA, body);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, body_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)G.timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(G.timeout_ms < 5000 ? G.timeout_ms : 5000));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after);
        CURLcode rc = curl_easy_perform(h);
        if (rc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK && status >= 200 && status < 300) {
            atomic_fetch_add_explicit(&G.exported, nspans, memory_order_relaxed);
            atomic_fetch_add_explicit(&G.requests_ok, 1, memory_order_relaxed);
            count_spans_exported(nspans);
            count_export_request(WD_OTEL_OK);
            return;
        }
        if (rc == CURLE_OPERATION_TIMEDOUT)
            count_export_request(WD_OTEL_TIMEOUT);
        else
            count_export_request(rc == CURLE_OK ? WD_OTEL_HTTP_ERROR : WD_OTEL_TRANSPORT_ERROR);
        atomic_fetch_add_explicit(&G.requests_failed, 1, memory_order_relaxed);
        bool retryable = rc != CURLE_OK || status == 429 || status == 502 || status == 503 || status == 504;
        static time_t last_log;
        time_t now = time(NULL);
        if (now != last_log) {
            last_log = now;
            wd_logf(WD_LOG_WARN, "", "otlp export to %s failed (%s%ld)%s", G.url,
                    rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP ", rc != CURLE_OK ? 0L : status,
                    retryable && attempt < MAX_ATTEMPTS && !final ? ", retrying" : "");
        }
        if (!retryable || final || attempt == MAX_ATTEMPTS)
            break;
        atomic_fetch_add_explicit(&G.retries, 1, memory_order_relaxed);
        unsigned wait = retry_after > 0 ? (unsigned)(retry_after > 30 ? 30000 : retry_after * 1000) : backoff;
        backoff *= 2;
        pthread_mutex_lock(&G.mu);
        bool stopping = wait_ms(wait);
        pthread_mutex_unlock(&G.mu);
        if (stopping)
            final = true; /* one last try below, then give up */
    }
    atomic_fetch_add_explicit(&G.dropped_export, nspans, memory_order_relaxed);
    count_spans_dropped(WD_SPAN_DROP_EXPORT_FAILED, nspans);
}

/* Takes every worker's spans and sends them as one request. A queue's buffer is swapped with the one it
 * had last time (emptied), so a worker waits for the lock no longer than a swap, and the spans are not
 * copied on their way to curl. */
static void export_round(CURL *h, struct body *body, struct wd_buf *head, struct wd_buf *gz, bool final)
{
    uint32_t n = 0;
    size_t spans_len = 0;
    for (unsigned i = 0; i < G.nqueues; i++) {
        struct wq *q = &G.queues[i];
        struct wd_buf *t = &G.taken[i];
        t->n = 0;
        pthread_mutex_lock(&q->mu);
        if (q->n > 0) {
            struct wd_buf full = q->buf;
            q->buf = *t;
            *t = full;
            n += q->n;
            q->n = 0;
            atomic_store_explicit(&q->fill, 0, memory_order_relaxed);
        }
        pthread_mutex_unlock(&q->mu);
        spans_len += t->n;
    }
    atomic_fetch_sub_explicit(&G.queued, n, memory_order_relaxed);
    count_spans_queued(atomic_load_explicit(&G.queued, memory_order_relaxed));
    if (n == 0)
        return;
    head->n = 0;
    body->npieces = body->len = 0;
    if (G.json)
        wd_otlp_request_json_head(&G.res, "warden", WARDEN_VERSION, head);
    else
        wd_otlp_request_pb_head(&G.res, "warden", WARDEN_VERSION, spans_len, head);
    body_add(body, head->p, head->n);
    bool first = true;
    for (unsigned i = 0; i < G.nqueues; i++) {
        if (G.taken[i].n == 0)
            continue;
        if (G.json && !first)
            body_add(body, ",", 1); /* each queue's JSON spans are joined by ',' already */
        body_add(body, G.taken[i].p, G.taken[i].n);
        first = false;
    }
    if (G.json)
        body_add(body, WD_OTLP_REQUEST_JSON_TAIL, strlen(WD_OTLP_REQUEST_JSON_TAIL));
    bool failed = head->oom;
    if (G.gzip && !failed) {
        gz->n = 0;
        failed = gzip_body(body, gz) != 0;
        body->npieces = body->len = 0;
        body_add(body, gz->p, gz->n);
    }
    if (failed) {
        head->oom = gz->oom = false;
        atomic_fetch_add_explicit(&G.dropped_export, n, memory_order_relaxed);
        count_spans_dropped(WD_SPAN_DROP_ENCODE, n);
        return;
    }
    export_batch(h, body, n, final);
}

static void *export_main(void *arg)
{
    (void)arg;
    CURL *h = curl_easy_init();
    struct wd_buf head = {0}, gz = {0};
    /* the head, each queue's spans with a ',' before it, the JSON tail */
    struct body body = {.piece = calloc(2 * (size_t)G.nqueues + 2, sizeof(struct wd_str))};
    pthread_mutex_lock(&G.mu);
    for (;;) {
        bool stopping = wait_ms(EXPORT_INTERVAL_MS);
        pthread_mutex_unlock(&G.mu);
        if (h != NULL && body.piece != NULL)
            export_round(h, &body, &head, &gz, stopping);
        pthread_mutex_lock(&G.mu);
        if (stopping)
            break;
    }
    pthread_mutex_unlock(&G.mu);
    curl_easy_cleanup(h);
    free(body.piece);
    wd_buf_free(&head);
    wd_buf_free(&gz);
    return NULL;
}


void wd_otel_shutdown(void)
{
    if (thread_started) {
        pthread_mutex_lock(&G.mu);
        G.stop = true;
        pthread_cond_broadcast(&G.cv);
        pthread_mutex_unlock(&G.mu);
        pthread_join(G.thread, NULL);
        thread_started = false;
    }
    for (unsigned i = 0; i < G.nqueues; i++) {
        wd_buf_free(&G.queues[i].buf);
        pthread_mutex_destroy(&G.queues[i].mu);
        if (G.taken != NULL)
            wd_buf_free(&G.taken[i]);
    }
    free(G.queues);
    G.queues = NULL;
    free(G.taken);
    G.taken = NULL;
    G.nqueues = 0;
    curl_slist_free_all(G.headers);
    G.headers = NULL;
    for (int i = 0; i < G.nstrings; i++)
        free(G.strings[i]);
    G.nstrings = 0;
    G.res.nattrs = 0;
    G.enabled = false;
}

void wd_otel_stats(struct wd_otel_stats *o)
{
    o->queued = atomic_load_explicit(&G.queued, memory_order_relaxed);
    o->exported = atomic_load_explicit(&G.exported, memory_order_relaxed);
    o->dropped_full = atomic_load_explicit(&G.dropped_full, memory_order_relaxed);
    o->dropped_export = atomic_load_explicit(&G.dropped_export, memory_order_relaxed);
    o->requests_ok = atomic_load_explicit(&G.requests_ok, memory_order_relaxed);
    o->requests_failed = atomic_load_explicit(&G.requests_failed, memory_order_relaxed);
    o->retries = atomic_load_explicit(&G.retries, memory_order_relaxed);
}
