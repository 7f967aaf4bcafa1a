/* The HTTP server: worker threads each with a libuv loop, an h2o context, a SO_REUSEPORT listener and
 * an upstream client; the runtime (config + auth) shared read-only and swapped whole on reload. */
#ifndef WARDEN_SERVER_SERVER_H
#define WARDEN_SERVER_SERVER_H

#include <stdatomic.h>
#include <pthread.h>
#include <uv.h>
#include <h2o.h>

#include "authz/auth.h"
#include "config/config.h"
#include "server/upstream.h"
#include "audit/writer.h"

struct wd_runtime {
    atomic_int refs;
    struct wd_config *cfg;
    struct wd_auth auth;
};
void wd_runtime_release(struct wd_runtime *rt);

struct wd_call;

struct wd_worker {
    int id;
    uv_loop_t loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    bool listening;
    uv_timer_t resume_timer;   /* out of descriptors: the listener rests, then is opened again */
    bool resume_armed;
    struct wd_upstream *up;
    struct wd_audit_writer *audit;   /* NULL when audit is off */
    uv_async_t wake;
    uv_timer_t drain_timer;
    uv_prepare_t log_flush;    /* before the loop waits: deferred request digests, then the batched log lines */
    uv_timer_t trim_timer;     /* a second after the worker's last request: freed memory back to the system */
    bool trim_due;             /* requests ran since the last trim */
    bool busy;                 /* had a request at its last loop turn (counted in server.c's busy_workers) */
    struct wd_call *digest_first; /* calls whose request digest waits for the loop to be idle */
    struct wd_call *live_first; /* every call not yet disposed, for the drain deadline's cut */
    struct wd_runtime *rt;     /* this worker's reference to the current runtime */
    int inflight;              /* requests being handled */
    bool draining;
    bool drain_cut;            /* the drain deadline passed and the calls still running were ended */
    bool drain_idle;           /* no request left: the audit writer's extra moment is set */
    uint64_t drain_deadline;
    pthread_t thread;
};

/* The worker running the calling thread. */
struct wd_worker *wd_worker_self(void);

/* The reason phrase for an HTTP/1.1 status line. */
const char *wd_http_reason(int status);

/* Sends a complete response with a body (copied into the request's pool). */
void wd_respond(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);

/* The Anthropic routes; returns 0 when it handled the request, -1 when the path is not its. */
int wd_anthropic_route(h2o_req_t *req, struct wd_worker *w);
/* Work the routes put off until the loop is about to wait (the audit digests of request bodies whose
 * provider requests have left). */
void wd_anthropic_idle(struct wd_worker *w);
/* The drain deadline: ends every call still running (a stream with an overloaded_error event, anything
 * not yet committed with a 503); each then logs its access line and appends its audit record as it is
 * disposed. Returns how many calls it ended. */
int wd_anthropic_drain_cut(struct wd_worker *w);

int wd_server_run(struct wd_config *cfg, const char *config_path);

#endif
