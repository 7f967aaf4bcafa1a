/* The gateway: what the server hands each request to. A call (gateway/call.h) lives from the handler to the
 * request's disposal and drives authentication, decoding (the inbound API's table), the plan of targets (router/),
 * the attempts (the provider's table, net/upstream), the answer, and the observers (audit, traces, metrics, access
 * log). The server owns listeners, workers and the runtime swap; it embeds one struct wd_gateway per worker. */
#ifndef WARDEN_GATEWAY_GATEWAY_H
#define WARDEN_GATEWAY_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <h2o.h>
#include <uv.h>

#include "audit/writer.h"
#include "authz/auth.h"
#include "config/config.h"
#include "net/upstream.h"
#include "secrets/secrets.h"

/* What reloads: swapped whole on SIGHUP (providers, tiers, fallback chains, keys and prices together). */
struct wd_runtime {
    atomic_int refs;            /* the global pointer's and every holder's reference */
    struct wd_config *cfg;      /* immutable */
    struct wd_auth auth;        /* client keys resolved from cfg */
};
/* Drops a reference; the last one frees the runtime. */
void wd_runtime_release(struct wd_runtime *rt);

/* The retry budget of one worker: retries and fallbacks may add at most routing.retry_budget of the requests
 * seen in the last 10 s, plus routing.retry_budget_min. Two 10 s windows, the older weighted by what is left
 * of it. */
struct wd_retry_budget {
    uint64_t window_start_ms;   /* start of the current window */
    uint32_t requests, retries; /* in the current window */
    uint32_t prev_requests, prev_retries; /* in the window before */
};

struct wd_call;
struct wd_oidc_cache;
struct wd_gov_cache;
struct wd_gov_snap;

#define SESSION_SLOTS 256
/* A verified gateway-sign-in session token (gateway/call.c), by its keyed tag. */
struct wd_session_slot {
    uint8_t tag[16];            /* wd_siphash128 of the token under wd_process_key */
    const struct wd_config *cfg; /* the config its roles were computed under (NULL: empty) */
    int64_t exp;                /* the token's expiry (unix s) */
    struct wd_principal who;
};
struct wd_gov_job;

/* One per worker thread; the server fills it and keeps rt, draining and tls current. */
struct wd_gateway {
    int id;                     /* worker index (metrics, exporter queues) */
    uv_loop_t *loop;            /* the worker's loop */
    struct wd_upstream *up;     /* the worker's provider client */
    struct wd_audit_writer *audit; /* NULL when audit is off */
    struct wd_secrets_loop *secrets; /* the worker's link to the secret cache */
    struct wd_runtime *rt;      /* this worker's reference to the current runtime */
    bool draining;              /* SIGTERM: the listener is closed; a call on a connection already open is still
                                   served (a balancer cannot re-send a request that got an answer) */
    bool drain_cut;             /* the drain deadline passed (wd_gateway_drain_cut): a call that still comes gets 503 */
    bool tls;                   /* the client listener is TLS (url.scheme of spans) */
    int inflight;               /* calls not yet disposed */
    struct wd_call *digest_first; /* calls whose request digest waits for the loop to be idle */
    struct wd_call *live_first; /* every call not yet disposed (the drain deadline's cut) */
    struct wd_retry_budget budget;
    uv_timer_t ticker;          /* each second while calls run: their pings, deadlines and hang-ups */
    bool ticker_init;           /* ticker is initialised (it runs while uv_is_active says so) */
    struct wd_call *spare;      /* memory of ended calls, for the next ones (gateway/call.c) */
    struct wd_oidc_cache *oidc; /* verified bearer tokens (authz/oidc.h), made on first use */
    struct wd_gov_cache *gov_cache; /* verified virtual keys (authz/govern.h), made on first use */
    struct wd_session_slot *sessions; /* verified session tokens, made on first use */
    struct wd_gov_snap *gov;    /* this worker's reference to the governance snapshot (NULL: none yet) */
    uint64_t gov_serial;        /* its serial: a new publication is taken at the next authentication */
    bool admin_init;            /* admin_wake and admin_lock are initialised (first admin request) */
    uv_async_t admin_wake;      /* the governor finished admin jobs of this worker */
    pthread_mutex_t admin_lock; /* guards admin_done and admin_closed */
    struct wd_gov_job *admin_done; /* finished jobs to answer on this loop */
    bool admin_closed;          /* the loop is gone: finished jobs are freed where they finish */
    int nspare;
};

/* Handles req when its path belongs to an inbound API; returns 0 then, -1 when the path is not the gateway's. */
int wd_gateway_handle(struct wd_gateway *g, h2o_req_t *req);
/* Work put off until the loop is about to wait (request digests of calls whose provider request has left). */
void wd_gateway_idle(struct wd_gateway *g);
/* The drain deadline: ends every call still running (a stream with an overloaded error event, anything not yet
 * committed with a 503); each logs and audits as it is disposed. Returns how many it ended. */
int wd_gateway_drain_cut(struct wd_gateway *g);
/* The inbound API that owns a POST path whose body a valid key may send (the front guard asks before a body
 * is read). */
bool wd_gateway_route_takes_body(const char *path, size_t len);

/* The sign-in's form routes (device authorization, token, the verification form) take a body without a credential:
 * its largest size for such a path, else 0 (signin not configured, or another path). */
size_t wd_gateway_open_body_max(struct wd_gateway *g, const char *path, size_t len);

/* What the gateway keeps between calls (recycled call memory, the token cache), at exit. */
void wd_gateway_free(struct wd_gateway *g);

/* The admin API (/admin/v1, docs/governance.md): 0 when path is the admin API's (answered, now or later), -1
 * otherwise. */
int wd_gateway_admin(struct wd_gateway *g, h2o_req_t *req);
/* Before the worker's loop closes: jobs still with the governor free themselves when they finish. */
void wd_gateway_admin_close(struct wd_gateway *g);

/* Whether a presented credential authenticates (a static key, or an OIDC token; one whose issuer's keys are
 * still being fetched counts, the handler decides): the front guard asks before a request body is read. */
bool wd_gateway_key_ok(struct wd_gateway *g, struct wd_str presented);

/* The reason phrase for an HTTP/1.1 status line. */
const char *wd_http_reason(int status);
/* Sends a complete response with a body (copied into the request's pool), with its length. */
void wd_respond(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);

#endif
