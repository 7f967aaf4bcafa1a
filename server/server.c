/* Listener, workers, health endpoints, graceful drain (SIGTERM) and atomic reload (SIGHUP). */
#include "server/server.h"
#include "server/governor.h"
#include "server/signin.h"
#include "authz/govern.h"
#include "server/oidc_fetch.h"
#include "authz/oidc.h"
#include "authz/rbac.h"
#include "server/front.h"
#include "otel/exporter.h"
#include "server/metrics.h"
#include "gateway/observe.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "lib/json.h"
#include "secrets/secrets.h"
#include "lib/log.h"

/* Initial capacity of a worker's socket input buffers (see worker_main). */
#define WD_SOCKET_INPUT_BUFFER 65536

static h2o_globalconf_t globalconf;
static SSL_CTX *ssl_ctx;
static struct wd_worker *workers;
static unsigned nworkers;
static _Atomic(struct wd_runtime *) current_rt;
static _Thread_local struct wd_worker *self_worker;
static atomic_bool draining;

struct wd_worker *wd_worker_self(void) { return self_worker; }

/* Resolves the auth keys of a config. With none usable, generates one and prints it once: Warden never
 * serves without authentication. */
static struct wd_runtime *runtime_new(struct wd_config *cfg)
{
    struct wd_runtime *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return NULL;
    atomic_init(&rt->refs, 1);
    rt->cfg = cfg;
    char val[WD_SECRET_MAX];
    for (size_t i = 0; i < cfg->nauth_keys; i++) {
        int n = wd_secret_resolve(cfg->auth_keys[i].secret, val, sizeof(val));
        if (n <= 0) {
            wd_logf(WD_LOG_WARN, "", "auth key %s: %s cannot be resolved; that key is disabled",
                    cfg->auth_keys[i].name, cfg->auth_keys[i].secret);
            continue;
        }
        wd_auth_add_key(&rt->auth, cfg->auth_keys[i].name, val, (size_t)n);
    }
    const char *env = cfg->auth_keys_env ? getenv(cfg->auth_keys_env) : NULL;
    if (env != NULL) {
        char *copy = strdup(env), *save = NULL;
        int idx = 0;
        for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            size_t n = strlen(tok);
            while (n && tok[n - 1] == ' ')
                tok[--n] = '\0';
            if (n == 0)
                continue;
            char name[64];
            snprintf(name, sizeof(name), "%s[%d]", cfg->auth_keys_env, idx++);
            wd_auth_add_key(&rt->auth, name, tok, n);
        }
        if (copy) {
            OPENSSL_cleanse(copy, strlen(env));
            free(copy);
        }
    }
    if (rt->auth.nkeys == 0 && cfg->noidc == 0) { /* with OIDC issuers, their tokens are the way in */
        unsigned char raw[24];
        char key[64] = "wdk_";
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            free(rt);
            return NULL;
        }
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(key + 4 + 2 * i, 3, "%02x", raw[i]);
        wd_auth_add_key(&rt->auth, "generated", key, strlen(key));
        /* printed once to the operator's terminal, never logged */
        fprintf(stdout, "No auth key is configured; generated one for this run:\n  %s\n", key);
        fflush(stdout);
        OPENSSL_cleanse(key, sizeof(key));
    }
    OPENSSL_cleanse(val, sizeof(val));
    for (size_t i = 0; i < rt->auth.nkeys; i++) { /* the rbac roles bound to each key's name */
        struct wd_rbac_who who = {.key = rt->auth.keys[i].name};
        rt->auth.keys[i].roles = wd_rbac_roles(cfg, &who, NULL, 0);
    }
    return rt;
}

/* A reference read from this machine (env://, file://): cheap, so it is read at start and on reload whatever
 * secrets.prefetch says, and a missing one keeps /readyz at 503. The vault and cloud schemes wait for their first
 * use unless secrets.prefetch is on. */
static bool local_ref(const char *ref) { return strncmp(ref, "env://", 6) == 0 || strncmp(ref, "file://", 7) == 0; }

/* Provider keys resolve in the background from now, so a first request normally finds them cached. */
static void prefetch_keys(const struct wd_config *cfg)
{
    for (size_t i = 0; i < cfg->nproviders; i++)
        for (size_t k = 0; k < cfg->providers[i].nkeys; k++)
            if (cfg->secrets.prefetch || local_ref(cfg->providers[i].keys[k].secret))
                wd_secrets_prefetch(cfg->providers[i].keys[k].secret);
}

static struct wd_runtime *runtime_acquire_global(void)
{
    /* Only the main thread swaps; it holds its reference until every worker took the new one. */
    struct wd_runtime *rt = atomic_load(&current_rt);
    atomic_fetch_add(&rt->refs, 1);
    return rt;
}

static void respond_json(h2o_req_t *req, int status, const char *json)
{
    wd_respond(req, status, "application/json", json, strlen(json));
}

/* Every provider has a credential it can use: a local reference (env://, file://) must be cached (read from the
 * cache on the worker's loop: one still resolving counts as not ready, and its resolution has started); a vault
 * or cloud reference is ready unless it failed with nothing to serve (a lazy one not yet used is ready; with
 * secrets.prefetch it must be cached like a local one). When refs is set, every provider key's reference and
 * its state are written there as a JSON array. */
static const char *const state_names[] = {"unused", "resolving", "cached", "stale", "failed"};

static int ready_check(struct wd_worker *w, const struct wd_config *cfg, char *why, size_t cap, struct wd_buf *refs)
{
    char val[WD_SECRET_MAX], reason[160];
    int rc = 0;
    if (refs != NULL)
        wd_buf_putc(refs, '[');
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct wd_provider *p = &cfg->providers[i];
        bool ok = false, pending = false;
        for (size_t k = 0; k < p->nkeys; k++) {
            const char *ref = p->keys[k].secret;
            bool must_cache = local_ref(ref) || cfg->secrets.prefetch;
            if (!ok && must_cache) {
                /* at start (no worker yet) the cold path may wait for the resolver; a worker reads the cache only */
                int r = w != NULL ? wd_secret_get(w->gw.secrets, ref, val, sizeof(val), NULL)
                                  : wd_secret_resolve(ref, val, sizeof(val));
                ok = r > 0;
                pending |= r == WD_SECRET_PENDING;
            }
            int st = wd_secret_state(ref, reason, sizeof(reason));
            if (!ok && !must_cache)
                ok = st != WD_SECRET_FAILED;
            if (refs != NULL) {
                if (refs->n > 1)
                    wd_buf_putc(refs, ',');
                wd_buf_puts(refs, "{\"provider\":");
                wd_json_put_string(refs, p->name, strlen(p->name));
                wd_buf_puts(refs, ",\"ref\":");
                wd_json_put_string(refs, ref, strlen(ref));
                wd_buf_puts(refs, ",\"state\":\"");
                wd_buf_puts(refs, state_names[st]);
                wd_buf_putc(refs, '"');
                if (reason[0] != '\0') {
                    wd_buf_puts(refs, ",\"reason\":");
                    wd_json_put_string(refs, reason, strlen(reason));
                }
                wd_buf_putc(refs, '}');
            }
        }
        if (!ok && rc == 0) {
            snprintf(why, cap, "provider %s: %s (%s)", p->name,
                     pending ? "its credential is being resolved" : "no credential can be resolved",
                     p->nkeys ? p->keys[0].secret : "no keys");
            rc = -1;
            if (refs == NULL)
                break;
        }
    }
    if (refs != NULL)
        wd_buf_putc(refs, ']');
    OPENSSL_cleanse(val, sizeof(val));
    return rc;
}

/* The audit writers' counters for the metrics module; called from the scraping thread (the writers' counters
 * are relaxed atomics). */
static size_t metrics_audit_stats(struct wd_audit_stats *out, size_t cap)
{
    size_t n = 0;
    for (unsigned i = 0; i < nworkers && n < cap; i++)
        if (workers[i].gw.audit != NULL)
            wd_audit_writer_stats(workers[i].gw.audit, &out[n++]);
    return n;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct wd_worker *w = self_worker;
    h2o_iovec_t path = req->path_normalized;
    {
        /* decided by the front guard on the request's headers (server/front.h) */
        int st;
        const char *type, *msg;
        if (wd_front_refusal(req, &st, &type, &msg)) {
            struct wd_buf b = {0};
            wd_buf_puts(&b, "{\"type\":\"error\",\"error\":{\"type\":");
            wd_json_put_string(&b, type, strlen(type));
            wd_buf_puts(&b, ",\"message\":");
            wd_json_put_string(&b, msg, strlen(msg));
            wd_buf_puts(&b, "}}");
            wd_respond(req, st, "application/json", b.p ? b.p : "", b.n);
            wd_buf_free(&b);
            return 0;
        }
        if (wd_front_stream_doomed(req)) {
            respond_json(req, 503, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"stream reset by the client\"}}");
            return 0;
        }
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        respond_json(req, 200, "{\"status\":\"ok\"}");
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/readyz"))) {
        char why[300];
        if (atomic_load(&draining)) {
            respond_json(req, 503, "{\"status\":\"draining\"}");
        } else {
            struct wd_buf refs = {0}, b = {0};
            bool ready = ready_check(w, w->gw.rt->cfg, why, sizeof(why), &refs) == 0;
            wd_buf_puts(&b, ready ? "{\"status\":\"ready\"" : "{\"status\":\"not ready\",\"reason\":");
            if (!ready)
                wd_json_put_string(&b, why, strlen(why));
            wd_buf_puts(&b, ",\"secrets\":");
            wd_buf_put(&b, refs.p ? refs.p : "[]", refs.p ? refs.n : 2);
            wd_buf_putc(&b, '}');
            if (b.oom)
                respond_json(req, 503, "{\"status\":\"not ready\",\"reason\":\"out of memory\"}");
            else
                wd_respond(req, ready ? 200 : 503, "application/json", b.p, b.n);
            wd_buf_free(&refs);
            wd_buf_free(&b);
        }
        return 0;
    }
    /* /metrics is never answered here (key names, token volumes): it has its own listener,
     * telemetry.metrics.listen, on loopback by default (server/metrics.c). */
    if (wd_gateway_handle(&w->gw, req) == 0)
        return 0;
    respond_json(req, 404, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"no such route\"}}");
    return 0;
}

/* The listening socket: one, shared by the workers (each listens on a dup of it). No SO_REUSEPORT: a second
 * process, Warden or not, cannot bind the same address while this one holds it. */
/* The trace exporter's request results are counted as the upstream outcomes of the same names. */
_Static_assert((int)WD_OTEL_OK == (int)WD_MO_OK && (int)WD_OTEL_HTTP_ERROR == (int)WD_MO_HTTP_ERROR &&
                   (int)WD_OTEL_TRANSPORT_ERROR == (int)WD_MO_TRANSPORT_ERROR &&
                   (int)WD_OTEL_TIMEOUT == (int)WD_MO_TIMEOUT,
               "enum wd_otel_result follows enum wd_metrics_outcome");
static void otel_export_request(enum wd_otel_result r) { wd_metrics_export_request((enum wd_metrics_outcome)r); }

static int listen_fd = -1;

static void on_accept(uv_stream_t *listener, int status);

static int listener_open(struct wd_worker *w)
{
    int fd = dup(listen_fd);
    if (fd < 0)
        return -1;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if (uv_tcp_open(&w->listener, fd) != 0 || uv_listen((uv_stream_t *)&w->listener, 1024, on_accept) != 0) {
        uv_close((uv_handle_t *)&w->listener, NULL);
        return -1;
    }
    w->listening = true;
    return 0;
}

static void on_resume(uv_timer_t *t)
{
    struct wd_worker *w = t->data;
    if (w->gw.draining || w->listening)
        return;
    if (listener_open(w) != 0)
        uv_timer_start(&w->resume_timer, on_resume, 250, 0);
}

static void on_listener_rested(uv_handle_t *h)
{
    struct wd_worker *w = h->data;
    if (w->gw.draining)
        return;
    if (!w->resume_armed) {
        uv_timer_init(&w->loop, &w->resume_timer);
        w->resume_timer.data = w;
        w->resume_armed = true;
    }
    uv_timer_start(&w->resume_timer, on_resume, 250, 0);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct wd_worker *w = listener->data;
    if (w->gw.draining)
        return;
    wd_front_accept(listener, w, status);
    if ((status == UV_EMFILE || status == UV_ENFILE) && w->listening) {
        /* libuv would call again at once, for ever: the listener rests for 250 ms instead */
        w->listening = false;
        uv_close((uv_handle_t *)&w->listener, on_listener_rested);
    }
}

static int listen_socket(const struct wd_config *cfg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *ai;
    char port[8];
    snprintf(port, sizeof(port), "%u", cfg->listen_port);
    if (getaddrinfo(cfg->listen_host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        errno = e;
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* After the drain deadline's cut, and once no request is left, the cut calls' last writes and the audit
 * writer get this much more: the records of the calls the cut ended are appended at their disposal,
 * after the deadline, and must still become durable. Bounded, so a client that stops reading or a
 * database that hangs cannot hold the exit. */
#define WD_DRAIN_GRACE_MS 2000

static void drain_tick(uv_timer_t *t)
{
    struct wd_worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    if (w->gw.inflight > 0 && now < w->drain_deadline)
        return;
    if (w->gw.inflight > 0 && !w->drain_cut) {
        /* every call still running ends properly: an error event or a 503, its access line, its record */
        w->drain_cut = true;
        int n = wd_gateway_drain_cut(&w->gw);
        wd_logf(WD_LOG_WARN, "", "worker %d: drain timeout with %d requests in flight: %d calls ended with overloaded_error",
                w->id, w->gw.inflight, n);
        w->drain_deadline = now + WD_DRAIN_GRACE_MS;
        return;
    }
    if (w->gw.inflight > 0) {
        wd_logf(WD_LOG_WARN, "", "worker %d: %d requests still in flight after the drain grace; exiting without them",
                w->id, w->gw.inflight);
    } else if (!w->drain_idle && !w->drain_cut) {
        w->drain_idle = true;
        if (w->drain_deadline < now + WD_DRAIN_GRACE_MS)
            w->drain_deadline = now + WD_DRAIN_GRACE_MS;
    }
    /* then the audit queue: every record durable and the last checkpoint out */
    if (!wd_audit_writer_drain(w->gw.audit) && uv_now(&w->loop) < w->drain_deadline)
        return;
    uv_stop(&w->loop);
}

static void on_wake(uv_async_t *a)
{
    struct wd_worker *w = a->data;
    /* a reload: take the new runtime */
    struct wd_runtime *rt = atomic_load(&current_rt);
    if (rt != w->gw.rt) {
        atomic_fetch_add(&rt->refs, 1);
        struct wd_runtime *old = w->gw.rt;
        w->gw.rt = rt;
        wd_runtime_release(old);
        if (w->id == 0 && w->gw.audit != NULL) {
            struct wd_audit_rec r = {0};
            char d[160];
            snprintf(d, sizeof(d), "{\"sha256\":\"%s\",\"source\":\"file\"}", rt->cfg->sha256);
            wd_audit_set_cstr(&r, WD_AF_KIND, "config");
            wd_audit_set_cstr(&r, WD_AF_EVENT, "reload");
            wd_audit_set_cstr(&r, WD_AF_DETAIL, d);
            wd_audit_append(w->gw.audit, &r, NULL, NULL);
        }
    }
    if (atomic_load(&draining) && !w->gw.draining) {
        w->gw.draining = true;
        if (w->listening) {
            uv_close((uv_handle_t *)&w->listener, NULL);
            w->listening = false;
        }
        if (w->resume_armed)
            uv_timer_stop(&w->resume_timer);
        h2o_context_request_shutdown(&w->ctx);
        w->drain_deadline = uv_now(&w->loop) + w->gw.rt->cfg->drain_timeout_ms;
        uv_timer_init(&w->loop, &w->drain_timer);
        w->drain_timer.data = w;
        uv_timer_start(&w->drain_timer, drain_tick, 0, 20);
    }
}

/* glibc keeps what a burst freed: 5 waves of 5,000 streams left a process at 626 MB with nothing open,
 * 33 MB after malloc_trim (the freed chunks sit between live ones, below the heap top that M_TRIM_THRESHOLD
 * looks at, in every thread's arena). So once the process has had no request for WD_TRIM_IDLE_MS, the last
 * worker to go idle trims. malloc_trim walks every arena, holding each one's lock while it hands its free
 * pages back (20-50 ms after a 5,000-stream burst, about 2 ms when there is little to give): only when no
 * worker has a request, so no request waits on it (bench/README.md, "Memory after a burst"). */
#define WD_TRIM_IDLE_MS 1000
static atomic_int busy_workers; /* workers that had a request at their last loop turn */

static void on_trim(uv_timer_t *t)
{
    struct wd_worker *w = t->data;
    if (w->gw.inflight > 0 || w->gw.draining || atomic_load(&busy_workers) > 0)
        return; /* busy again, or another worker is: the next idle moment re-arms it */
    w->trim_due = false;
    malloc_trim(0);
}

static void on_log_flush(uv_prepare_t *p)
{
    struct wd_worker *w = p->data;
    wd_gateway_idle(&w->gw);
    wd_log_flush();
    bool busy = w->gw.inflight > 0;
    if (busy != w->busy) {
        w->busy = busy;
        atomic_fetch_add(&busy_workers, busy ? 1 : -1);
    }
    if (busy)
        w->trim_due = true;
    else if (w->trim_due && !w->gw.draining && !uv_is_active((uv_handle_t *)&w->trim_timer))
        uv_timer_start(&w->trim_timer, on_trim, WD_TRIM_IDLE_MS, 0);
}

static void *worker_main(void *arg)
{
    struct wd_worker *w = arg;
    self_worker = w;
    char name[16];
    snprintf(name, sizeof(name), "wd-worker-%d", w->id);
    pthread_setname_np(pthread_self(), name); /* top, ps -T and the tests tell the workers apart */
    /* A socket's input buffer starts at 8 KB in h2o and doubles as it fills, so a 50 KB Claude Code
     * request was read in four read() calls with 56 KB of copying between them. Starting at 64 KB
     * takes such a request in one read. The buffer is freed (to a per-thread cache of at most 16)
     * whenever a connection has consumed all it read, so an idle connection holds none. The prototype
     * is per thread; this runs before the worker's first socket exists. */
    h2o_socket_buffer_prototype._initial_buf.capacity = WD_SOCKET_INPUT_BUFFER;
    wd_log_batch_begin();
    uv_run(&w->loop, UV_RUN_DEFAULT);
    wd_log_batch_end();
    /* h2o keeps freed socket buffers in a per-thread free list that dies with the thread: hand them back
     * to malloc so a drained process exits with nothing outstanding. */
    h2o_mem_recycle_t *r = &h2o_socket_buffer_prototype.allocator;
    while (r->cnt > 0)
        free(h2o_mem_alloc_recycle(r, 1));
    return NULL;
}

static int worker_init(struct wd_worker *w, int id)
{
    w->id = id;
    if (uv_loop_init(&w->loop) != 0)
        return -1;
    h2o_context_init(&w->ctx, &w->loop, &globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = globalconf.hosts;
    w->accept_ctx.ssl_ctx = ssl_ctx;
    w->gw.id = id;
    w->gw.loop = &w->loop;
    w->gw.tls = ssl_ctx != NULL;
    w->gw.up = wd_upstream_new(&w->loop);
    if (w->gw.up == NULL)
        return -1;
    w->gw.secrets = wd_secrets_loop_new(&w->loop);
    if (w->gw.secrets == NULL)
        return -1;
    if (wd_audit_enabled() && (w->gw.audit = wd_audit_writer_new(&w->loop, id)) == NULL)
        return -1;
    w->gw.rt = runtime_acquire_global();
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_prepare_init(&w->loop, &w->log_flush);
    w->log_flush.data = w;
    uv_prepare_start(&w->log_flush, on_log_flush);
    uv_unref((uv_handle_t *)&w->log_flush); /* it never keeps a loop alive */
    uv_timer_init(&w->loop, &w->trim_timer);
    w->trim_timer.data = w;
    uv_unref((uv_handle_t *)&w->trim_timer);
    return listener_open(w);
}

/* models.prices -> warden_cost_usd_total (at start and on each reload). */
static void apply_prices(const struct wd_config *cfg)
{
    if (cfg->nprices == 0)
        return;
    wd_metrics_clear_prices();
    for (size_t i = 0; i < cfg->nprices; i++) {
        const struct wd_price *p = &cfg->prices[i];
        if (wd_metrics_set_price(p->model, p->input, p->output, p->cached) != 0)
            wd_logf(WD_LOG_WARN, "", "models.prices.%s: not usable as a metrics label; no cost is counted for it",
                    p->model);
    }
}

static uv_loop_t main_loop;
static const char *reload_path;

static void on_signal(uv_signal_t *s, int signum)
{
    if (signum == SIGHUP) {
        if (reload_path == NULL) {
            wd_log(WD_LOG_WARN, "SIGHUP ignored: serving the embedded config, nothing to reload", "");
            return;
        }
        struct wd_config *cfg;
        struct wd_config_err err;
        if (wd_config_load_file(reload_path, &cfg, &err) != 0) {
            wd_logf(WD_LOG_ERROR, "", "reload rejected, keeping the running config: %s", err.msg);
            return;
        }
        wd_secret_cache_clear(); /* process-wide: values in use stay served until their refetch lands */
        if (wd_oidc_configure(cfg) != 0 || (cfg->noidc > 0 && wd_oidc_fetch_start() != 0))
            wd_log(WD_LOG_ERROR, "oidc: the new issuers could not be set up", "");
        prefetch_keys(cfg);
        struct wd_runtime *rt = runtime_new(cfg);
        if (rt == NULL) {
            wd_config_free(cfg);
            wd_log(WD_LOG_ERROR, "reload failed: out of memory", "");
            return;
        }
        apply_prices(cfg);
        struct wd_runtime *old = atomic_exchange(&current_rt, rt);
        for (unsigned i = 0; i < nworkers; i++)
            uv_async_send(&workers[i].wake);
        /* Workers hold their own references: the main thread's can go once they were told. They take
         * the new one on their next loop turn; until then the old stays alive through them. */
        wd_runtime_release(old);
        wd_logf(WD_LOG_INFO, "", "config reloaded from %s", reload_path);
        char note[400];
        if (wd_config_tiers_note(cfg, note, sizeof(note)) > 0)
            wd_log(WD_LOG_INFO, note, "");
        return;
    }
    wd_logf(WD_LOG_INFO, "", "%s: draining", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    atomic_store(&draining, true);
    for (unsigned i = 0; i < nworkers; i++)
        uv_async_send(&workers[i].wake);
    uv_stop(s->loop);
}

static SSL_CTX *tls_init(const struct wd_config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

int wd_server_run(struct wd_config *cfg, const char *config_path)
{
    signal(SIGPIPE, SIG_IGN);
    reload_path = config_path;
    if (wd_upstream_global_init() != 0 || wd_secrets_configure(cfg) != 0 || wd_secrets_start() != 0)
        return 1;
    if (wd_oidc_configure(cfg) != 0 || (cfg->noidc > 0 && wd_oidc_fetch_start() != 0)) {
        wd_log(WD_LOG_ERROR, "oidc: cannot start the key fetcher", "");
        return 1;
    }
    prefetch_keys(cfg);
    if (wd_governor_start(cfg) != 0) {
        wd_log(WD_LOG_ERROR, "governance: cannot start the governor thread", "");
        return 1;
    }
    if (wd_signin_start(cfg) != 0) {
        wd_log(WD_LOG_ERROR, "signin: cannot start (see above)", "");
        return 1;
    }
    struct wd_runtime *rt = runtime_new(cfg);
    if (rt == NULL)
        return 1;
    atomic_store(&current_rt, rt);
    if (cfg->audit.enabled) {
        char why[400];
        if (wd_audit_init(&cfg->audit, cfg->sha256, config_path != NULL, why, sizeof(why)) != 0) {
            wd_logf(WD_LOG_ERROR, "", "audit: %s", why);
            return 1;
        }
    }

    if (wd_front_init(cfg->max_connections, cfg->max_pending_body_bytes, cfg->max_body_bytes, cfg->http2_max_resets) != 0)
        return 1;
    h2o_config_init(&globalconf);
    /* h2o answers bodies past its own limit with a plain-text 413; ours, in the API's shape, covers
     * bodies up to twice the configured limit (see the README). */
    globalconf.max_request_entity_size = cfg->max_body_bytes * 2;
    globalconf.http1.req_timeout = cfg->idle_timeout_ms;
    globalconf.http2.idle_timeout = cfg->idle_timeout_ms;
    /* h2o closes HTTP/2 connections itself at this timeout: after the drain's cut and grace (drain_tick),
     * so the cut streams' error events get out first */
    globalconf.http2.graceful_shutdown_timeout = cfg->drain_timeout_ms + 2 * WD_DRAIN_GRACE_MS;
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("warden"));
    h2o_hostconf_t *host = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    h->on_req = on_req;

    if (cfg->tls_cert != NULL) {
        ssl_ctx = tls_init(cfg);
        if (ssl_ctx == NULL) {
            wd_log(WD_LOG_ERROR, "cannot load the TLS certificate or key", "");
            return 1;
        }
    }
    nworkers = cfg->workers ? cfg->workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (nworkers == 0)
        nworkers = 1;
    {
        char why[400];
        wd_otel_set_counters(&(struct wd_otel_counters){wd_metrics_spans_queued, wd_metrics_spans_exported,
                                                        wd_metrics_spans_dropped, otel_export_request});
        if (wd_otel_init(&cfg->telemetry, nworkers, why, sizeof(why)) != 0) {
            wd_logf(WD_LOG_ERROR, "", "telemetry: %s", why);
            return 1;
        }
        if (wd_otel_enabled())
            wd_logf(WD_LOG_INFO, "", "exporting traces to %s", wd_otel_traces_url());
    }
    if (wd_metrics_init(nworkers) != 0)
        wd_log(WD_LOG_WARN, "metrics: out of memory; /metrics stays empty", "");
    apply_prices(cfg);
    /* every call's observers, in the order they hear its events */
    wd_gateway_add_observer(&wd_observe_audit);
    wd_gateway_add_observer(&wd_observe_trace);
    wd_gateway_add_observer(&wd_observe_metrics);
    workers = calloc(nworkers, sizeof(*workers));
    if (workers == NULL)
        return 1;
    listen_fd = listen_socket(cfg);
    if (listen_fd < 0) {
        wd_logf(WD_LOG_ERROR, "", "cannot listen on %s:%u: %s%s", cfg->listen_host, cfg->listen_port, strerror(errno),
                errno == EADDRINUSE ? " (address in use: another process holds it)" : "");
        return 1;
    }
    for (unsigned i = 0; i < nworkers; i++) {
        if (worker_init(&workers[i], (int)i) != 0) {
            wd_log(WD_LOG_ERROR, "worker initialisation failed", "");
            return 1;
        }
    }
    char fields[256];
    snprintf(fields, sizeof(fields),
             "\"listen\":\"%s:%u\",\"workers\":%u,\"tls\":%s,\"config\":\"%s\",\"max_connections\":%zu",
             cfg->listen_host, cfg->listen_port, nworkers, ssl_ctx ? "true" : "false",
             config_path ? "file" : "embedded", wd_front_max_connections());
    wd_log(WD_LOG_INFO, "warden listening", fields);
    {
        char note[400];
        if (wd_config_tiers_note(cfg, note, sizeof(note)) > 0)
            wd_log(WD_LOG_INFO, note, "");
    }
    {
        char why[300];
        if (ready_check(NULL, cfg, why, sizeof(why), NULL) < 0)
            wd_logf(WD_LOG_WARN, "", "not ready: %s. Set it and Warden will pick it up on the next request.", why);
    }

    if (cfg->telemetry.metrics_listen_host != NULL) {
        char why[300];
        if (wd_metrics_serve(cfg->telemetry.metrics_listen_host, cfg->telemetry.metrics_listen_port,
                             metrics_audit_stats, why, sizeof(why)) == 0) {
            wd_logf(WD_LOG_INFO, "", "metrics on http://%s%s%s:%u/metrics",
                    strchr(cfg->telemetry.metrics_listen_host, ':') ? "[" : "", cfg->telemetry.metrics_listen_host,
                    strchr(cfg->telemetry.metrics_listen_host, ':') ? "]" : "", cfg->telemetry.metrics_listen_port);
        } else if (cfg->telemetry.metrics_listen_explicit) {
            wd_logf(WD_LOG_ERROR, "", "telemetry.metrics.listen: %s", why);
            return 1;
        } else {
            /* the default address is best effort: another Warden on this host may hold it */
            wd_logf(WD_LOG_WARN, "", "metrics not served: %s (the default telemetry.metrics.listen; set it to "
                    "another address, or to off)", why);
        }
    } else {
        wd_log(WD_LOG_INFO, "metrics off (telemetry.metrics.listen: off)", "");
    }

    uv_loop_init(&main_loop);
    uv_signal_t sigterm, sigint, sighup;
    uv_signal_init(&main_loop, &sigterm);
    uv_signal_init(&main_loop, &sigint);
    uv_signal_init(&main_loop, &sighup);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sighup, on_signal, SIGHUP);
    /* signals are delivered to the main loop only: workers block them */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (unsigned i = 0; i < nworkers; i++)
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    uv_run(&main_loop, UV_RUN_DEFAULT);
    wd_metrics_serve_stop();
    for (unsigned i = 0; i < nworkers; i++)
        pthread_join(workers[i].thread, NULL);
    /* the governor's last flush (spend, leases back); a job it still held answers to a loop not yet closed */
    wd_governor_stop();
    wd_signin_stop();
    for (unsigned i = 0; i < nworkers; i++)
        wd_gateway_admin_close(&workers[i].gw);
    wd_log(WD_LOG_INFO, "drained, exiting", "");
    /* Release what the workers held so LeakSanitizer sees a clean exit; live connections died with
     * their loops. */
    for (unsigned i = 0; i < nworkers; i++) {
        wd_upstream_free(workers[i].gw.up);
        wd_secrets_loop_free(workers[i].gw.secrets);
        wd_audit_writer_quiesce(workers[i].gw.audit);
        uv_walk(&workers[i].loop, close_walk_cb, NULL);
        uv_run(&workers[i].loop, UV_RUN_NOWAIT);
        wd_audit_writer_free(workers[i].gw.audit);
        wd_gateway_free(&workers[i].gw);
        wd_runtime_release(workers[i].gw.rt);
    }
    wd_gov_shutdown(); /* after the loops: nothing settles against a limit any more */
    wd_signin_free_keys();
    wd_audit_global_free();
    wd_otel_shutdown(); /* the spans of the drained requests go out before exit */
    wd_metrics_free();
    uv_walk(&main_loop, close_walk_cb, NULL);
    uv_run(&main_loop, UV_RUN_DEFAULT);
    wd_runtime_release(atomic_load(&current_rt));
    wd_secrets_stop(); /* every value wiped */
    wd_oidc_fetch_stop();
    wd_oidc_shutdown();
    if (listen_fd >= 0)
        close(listen_fd);
    wd_front_free();
    return 0;
}
