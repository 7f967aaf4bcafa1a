/* The HTTP server: worker threads each with a libuv loop, an h2o context, a SO_REUSEPORT listener and
 * an upstream client; the runtime (config + auth) shared read-only and swapped whole on reload. */
#ifndef WARDEN_SERVER_SERVER_H
#define WARDEN_SERVER_SERVER_H

#include <stdatomic.h>
#include <pthread.h>
#include <uv.h>
#include <h2o.h>

#include "gateway/gateway.h"

struct wd_worker {
    int id;
    uv_loop_t loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    bool listening;
    uv_timer_t resume_timer;   /* out of descriptors: the listener rests, then is opened again */
    bool resume_armed;
    struct wd_gateway gw;      /* the gateway's view of this worker: loop, upstream client, audit writer, runtime,
                                  draining, calls in flight */
    uv_async_t wake;
    uv_timer_t drain_timer;
    uv_prepare_t log_flush;    /* before the loop waits: deferred request digests, then the batched log lines */
    uv_timer_t trim_timer;     /* a second after the worker's last request: freed memory back to the system */
    bool trim_due;             /* requests ran since the last trim */
    bool busy;                 /* had a request at its last loop turn (counted in server.c's busy_workers) */
    bool drain_cut;            /* the drain deadline passed and the calls still running were ended */
    bool drain_idle;           /* no request left: the audit writer's extra moment is set */
    uint64_t drain_deadline;
    pthread_t thread;
};

/* The worker running the calling thread. */
struct wd_worker *wd_worker_self(void);

/* The server's observers of every call: Prometheus metrics and the JSON access line (server/observe.c). */
extern const struct wd_call_observer wd_observe_metrics;

int wd_server_run(struct wd_config *cfg, const char *config_path);

#endif
