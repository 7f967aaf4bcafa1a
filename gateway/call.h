/* The call: one object per request from the handler to its disposal. It owns the lifecycle (authenticate,
 * decode, plan, attempts, answer, finish) and tells observers what happens (start, auth, route, each attempt's
 * start and end, commit, done); audit, traces, metrics and the access log are such observers and read the
 * call's fields below, which the call keeps current. Internal to gateway/ and its observers (server/). */
#ifndef WARDEN_GATEWAY_CALL_H
#define WARDEN_GATEWAY_CALL_H

#include <openssl/evp.h>

#include "api/stop.h"
#include "authz/govern.h"
#include "gateway/gateway.h"
#include "gateway/inbound.h"
#include "otel/span.h"
#include "providers/provider.h"
#include "providers/sse.h"
#include "router/route.h"
#include "secrets/secrets.h"

#define WD_CALL_MAX_ATTEMPTS 16
#define WD_CALL_INLINE_STATE 512   /* bytes of encoder / decoder state kept in the call itself */    /* attempts recorded per call (more are counted, not listed) */

enum wd_call_ev {
    WD_CALL_EV_START = 1,       /* the handler took the request */
    WD_CALL_EV_AUTH,            /* authentication decided (c->auth_reason NULL: success) */
    WD_CALL_EV_ROUTE,           /* the plan is resolved (c->routed) or failed */
    WD_CALL_EV_ATTEMPT_START,   /* a provider request is about to leave (c->attempt[c->nattempts - 1]) */
    WD_CALL_EV_ATTEMPT_END,     /* it ended (its outcome filled in) */
    WD_CALL_EV_COMMIT,          /* the response status went to the client: no retry after this */
    WD_CALL_EV_DONE,            /* disposal: the call's last event */
};

/* How an attempt ended. */
enum wd_attempt_outcome {
    WD_AO_PENDING = 0,
    WD_AO_OK,                   /* a 2xx answer, delivered */
    WD_AO_HTTP_ERROR,           /* a non-2xx answer */
    WD_AO_TRANSPORT,            /* connect failure, cut, malformed answer */
    WD_AO_TIMEOUT,              /* connect, first byte or idle timeout */
    WD_AO_CANCELLED,            /* the client went away, or the call ended otherwise */
};

struct wd_call_attempt {
    const struct wd_provider *provider; /* config (lives as long as the call's runtime) */
    struct wd_str model;                /* the provider's model name */
    int status;                         /* HTTP status, 0 when none */
    enum wd_attempt_outcome outcome;
    enum wd_error_class cls;            /* the failure's class, WD_ERR_NONE on success */
    bool retryable;                     /* the failure allowed another attempt */
    const char *next;                   /* "retry", "fallback" or NULL: what the call did next */
    long retry_after_s;                 /* the provider's Retry-After, -1 when absent */
    int64_t start_us, end_us;
};

struct wd_call_observer {
    const char *name;
    void (*on_event)(struct wd_call *c, enum wd_call_ev ev);
    /* Optional admission gate (audit fail_closed): 0 go on now; 1 the call waits until admit_done(c, ok) is
     * called; -1 refuse (the observer already answered). */
    int (*admit)(struct wd_call *c);
    /* Optional: every response byte as it leaves (audit.content hash and full). */
    void (*on_bytes)(struct wd_call *c, const char *p, size_t n);
    /* Optional hold on the answer's end (audit.durable_answers), called once when its last bytes are ready
     * (tapped, not sent): 0 send them now; 1 they wait until wd_call_seal_done(c, ok) or c->hold_until_ms
     * (loop time, set by the observer). At most one observer holds. */
    int (*seal)(struct wd_call *c);
};
/* Observers are added before the workers start, called in the order added. At most 8. */
void wd_gateway_add_observer(const struct wd_call_observer *o);
/* An admission gate's answer (see admit). */
void wd_call_admit_done(struct wd_call *c, int ok);
/* The held end of an answer may go (see seal); ok = 0: it goes although its records are not durable. */
void wd_call_seal_done(struct wd_call *c, int ok);
/* "invalid_request", "rate_limit", ...: the error class's name in records and labels. */
const char *wd_call_error_name(enum wd_error_class cls);
/* "end_turn", ...: a stop reason's name. */
const char *wd_call_stop_name(enum wd_stop_reason r);

struct wd_call {
    h2o_req_t *req;
    struct wd_gateway *g;
    struct wd_runtime *rt;               /* the call's own reference */
    const struct wd_inbound_ops *api;
    const struct wd_inbound_route *route_def;
    h2o_generator_t gen;
    struct wd_arena arena;
    struct wd_json json;
    struct wd_request creq;
    const char *body;                    /* the request body (gzip decoded), len body_len */
    size_t body_len;
    struct wd_buf inflated;
    struct wd_route_plan plan;           /* targets in order */
    size_t ti;                           /* the target being tried */
    unsigned target_attempts;            /* attempts on plan.t[ti] */
    const struct wd_provider_ops *pops;  /* the current target's table */
    struct wd_route route;               /* the current target (provider, model) */
    struct wd_wire wire;                 /* the current target's request (url, headers) */
    struct wd_buf upbody;                /* the current target's body */
    bool decoded;                        /* creq holds the whole canonical request, not only its head */
    bool upbody_for_ti;                  /* upbody was built for plan.t[ti] (a retry reuses it) */
    struct wd_upstream_header hdrs[WD_WIRE_MAX_HEADERS + 2];
    struct wd_upstream_xfer *xfer;
    int up_status;
    long retry_after;
    char up_ct[64];                      /* the provider's content type (relay) */
    struct wd_buf errbody;               /* a whole provider body: error, count, non-stream answer */
    bool errbody_full;                   /* the body passed its cap: what is kept is its start */
    struct wd_sse sse;
    void *dec;                           /* the provider's decoder (canonical mode) */
    const struct wd_provider_ops *dec_ops;
    bool dec_failed;                     /* an ERROR went through: the rest of the answer is ignored */
    void *watch;                         /* relay mode: the provider's watcher */
    struct wd_buf relay_hold;            /* relay: bytes after the last complete event, held */
    bool stop_live;                      /* canonical: `stop` is initialized (it is not zeroed at the start) */
    void *enc;                           /* the inbound API's encoder */
    struct wd_sink *enc_sink;
    struct wd_sink sink;                 /* in front of enc: decides when the response is committed */
    int resend_left;                     /* a dead kept-alive connection's request goes again once at once */
    int attempts;                        /* provider requests started (each one the provider may bill) */
    unsigned attempt_gen;                /* bumped per attempt: a callback of a replaced attempt stops */
    int fallbacks;                       /* moves to a next target */
    int nattempts;                       /* recorded in attempt[] (<= attempts) */
    bool fresh_conn;
    uv_timer_t *retry_timer;             /* a backoff before the next attempt */
    /* response writing: `out` fills while `sending` is with h2o */
    struct wd_buf out, sending;
    bool relay;                          /* this attempt's answer goes to the client as the provider sends it */
    bool stream;                         /* the client asked for a stream (and the route streams) */
    bool committed, in_flight, final_sent, finished, disposed, batching;
    bool ticking;                        /* the worker's ticker looks at it each second: pings, the request
                                            deadline, the client's hang-up */
    uint64_t started_ms, last_write_ms;
    /* what observers read */
    bool audited;                        /* authenticated with audit on: a call record is due */
    bool cut;                            /* the client went away before the end */
    bool shutdown;                       /* ended by the drain deadline */
    bool routed;                         /* the plan resolved */
    bool trace_dropped;                  /* sampled but the exporter was full */
    const char *auth_reason;             /* NULL: authenticated; else why not ("missing_key", "invalid_key", or
                                            an OIDC token's refusal reason) */
    struct wd_str presented;             /* the credential presented (points into the request's headers) */
    bool presented_jwt;                  /* it has a JWT's shape and OIDC issuers are configured */
    uv_timer_t *auth_timer;              /* polls while an issuer's keys are fetched */
    uint64_t auth_deadline_ms;           /* when that wait ends (loop time) */
    bool authz_denied;                   /* RBAC left no target, or a budget or rate limit refused the call */
    const struct wd_gov_key *vkey;       /* a virtual key's entry, from authentication to the RBAC filter only (the
                                            worker's snapshot may change once the call waits) */
    bool gov_admitted;                   /* reservations are held in gov (settled at disposal) */
    struct wd_gov_cost gov_est;          /* the call's reservation: its worst-case cost */
    uv_timer_t *gov_timer;               /* polls while a lease is topped up */
    uint64_t gov_deadline_ms;            /* when that wait ends (loop time) */
    char authz_rule[160];                /* the rule that allowed the first kept target, or why none was */
    int64_t auth_us, route_us;           /* when authentication and routing started */
    char rid[32];
    char trace_id[33];
    int64_t t0_us, ttfb_us;
    int status;
    enum wd_error_class err;
    enum wd_stop_reason stop_reason;
    struct wd_usage usage;
    struct wd_relay_result relay_res;
    bool dig_pending;
    const char *dig_p;
    size_t dig_n;
    struct wd_call *dig_next, **dig_prevp;
    struct wd_call *live_next, **live_prevp;
    struct wd_buf req_copy;
    EVP_MD_CTX *resp_md;
    struct wd_buf resp_copy;
    /* tracing: the observer keeps the spans here; the call sends up_tp upstream */
    bool traced, has_tp;
    uint8_t tid[16], parent_sid[8], flags;
    char up_tp[56];                      /* traceparent sent upstream (set by the trace observer) */
    char up_err[16];
    bool ispan_live;
    bool api_headers_read;               /* beta and version were read (for a provider of the client's family) */
    bool uspan_live, first_token_seen;
    bool stream_open;
    bool client_captured;
    bool auth_pending, authz_pending;
    bool admitting;                      /* fail_closed: the admission record is being written */
    bool recorded;                       /* the audit observer appended the call's records (at the seal) */
    bool has_records;                    /* ... appended at least one record for it */
    bool sealing;                        /* ... waits for them to be durable */
    bool holding;                        /* the answer's last bytes (in `sending`) wait for the seal */
    bool hold_whole;                     /* ... a whole answer: hold_status, hold_ct, the body in `sending` */
    bool hold_timed_out;                 /* ... went at hold_until_ms, before the seal */
    int hold_status;
    const char *hold_ct;                 /* static, or the call's up_ct */
    uint64_t hold_until_ms;
    int64_t auth_ts, authz_ts;
    struct wd_secret_wait key_wait;      /* the credential being resolved (key_waiting) */
    bool key_waiting;
    const char *key_ref;                 /* the reference the credential came from (invalidated on a 401/403) */
    /* Last and not zeroed at the start of a call: 8 KiB written only as a string by the secret lookup. */
    char key[WD_SECRET_MAX];
    /* Not zeroed either: written whole when read (api_headers_read) */
    char beta[1024];                     /* the client's anthropic-beta values, joined */
    char version[64];                    /* the client's anthropic-version */
    /* Not zeroed either: filled by wd_gov_admit, read only while gov_admitted */
    struct wd_gov_admission gov;         /* the reservations held */
    /* Not zeroed either: cleared field by field at the start (wd_principal_clear), then set by authentication */
    struct wd_principal who;
    /* Not zeroed either: initialized for a canonical attempt (stop_live), read only then */
    struct wd_stop_filter stop;          /* stop sequences, matched by Warden */
    /* Not zeroed at the start of a call either (a call's memset is most of its fixed cost): the strings start
     * empty (their first byte is set), the attempt list is read up to nattempts, the spans are written whole by
     * the trace observer before use. */
    struct wd_call_attempt attempt[WD_CALL_MAX_ATTEMPTS];
    char addr[64];
    char ua[WD_AUDIT_STR_MAX / 2];
    char model_req[256], model_res[256];
    char reason[256];                    /* why Warden refused the request (a field path and a rule), for the log */
    char req_sha[65];
    char tracestate[520];
    struct wd_span sspan, uspan, ispan;  /* server span, the attempt's client span, an internal span */
    /* Storage for the encoder and the decoder (or watcher) when they fit: no allocation per call */
    _Alignas(16) unsigned char enc_mem[WD_CALL_INLINE_STATE];
    _Alignas(16) unsigned char dec_mem[WD_CALL_INLINE_STATE];
};

/* The credential of a request outside the inbound APIs' routes (admin, sign-in): Authorization: Bearer, else
 * x-api-key ({NULL, 0} when neither). */
struct wd_str wd_gateway_presented(h2o_req_t *req);

/* Who presented a credential (a static key, a virtual key or an OIDC bearer token): 0, -1 refused (*why for the
 * log), or WD_OIDC_PENDING. *vkey is set for a virtual key (valid until the worker's next authentication). */
int wd_gateway_principal(struct wd_gateway *g, struct wd_str presented, struct wd_principal *who,
                         const struct wd_gov_key **vkey, const char **why);

/* A job for the governor or the sign-in thread (zeroed; gateway/admin.c), and its hand-over: the answer goes to req
 * on this worker's loop when the job is done (the status, error type and out of the job), with an audit record of
 * event. -1 when submit refused it (the job is then freed; the caller answers). */
struct wd_gov_job *wd_gateway_job_new(void);
int wd_gateway_job_submit(struct wd_gateway *g, h2o_req_t *req, struct wd_gov_job *j, const struct wd_principal *who,
                          const char *event, const char *rid, int (*submit)(struct wd_gov_job *));
/* Claude Code's gateway sign-in routes (gateway/signin.c): 0 when path is one of them (answered, now or later). */
int wd_gateway_signin(struct wd_gateway *g, h2o_req_t *req);
/* Frees an admin job (gateway/admin.c) with what it holds. */
void wd_gateway_admin_free_job(struct wd_gov_job *j);
/* Whether path is under /admin/v1 (the front guard lets a valid key send a body there). */
bool wd_gateway_admin_takes_body(const char *path, size_t len);

/* Client address and user agent, copied while the connection is certainly alive (observers may call it). */
void wd_call_capture_client(struct wd_call *c);
/* A request header's value, or {NULL, 0}. */
h2o_iovec_t wd_call_header(struct wd_call *c, const char *name, size_t len);

#endif
