/* Routes under /anthropic: the Messages API in front of any provider. One wd_call per request lives from the
 * handler to the request's disposal; the upstream transfer is cancelled when the client goes away. */
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "api/anthropic.h"
#include "otel/exporter.h"
#include "server/metrics.h"
#include "api/stop.h"
#include "providers/gemini.h"
#include "providers/sse.h"
#include "router/route.h"
#include "secrets/secrets.h"
#include "lib/log.h"
#include "server/server.h"

#define PING_INTERVAL_MS 10000
#define ERROR_BODY_MAX (64 * 1024)

enum call_kind { CALL_MESSAGES, CALL_COUNT_TOKENS };

struct wd_call {
    h2o_req_t *req;
    struct wd_worker *w;
    struct wd_runtime *rt;
    h2o_generator_t gen;
    enum call_kind kind;
    struct wd_arena arena;
    struct wd_json json;
    struct wd_request creq;
    struct wd_route route;
    struct wd_buf inflated;          /* request body after gzip decoding */
    struct wd_buf upbody;            /* the provider request */
    char url[1024];
    struct wd_upstream_header hdrs[4];
    struct wd_upstream_xfer *xfer;
    int up_status;
    long retry_after;
    struct wd_buf errbody;           /* upstream error body */
    struct wd_sse sse;
    struct wd_gemini_stream dec;
    bool dec_live;
    struct wd_stop_filter stop;      /* between dec and sink: stop sequences, matched by Warden */
    struct wd_anthropic_out enc;
    struct wd_sink sink;             /* in front of enc: decides when the response is committed */
    int retries_left;
    int attempts;                    /* provider requests started (each is one the provider may bill) */
    bool fresh_conn;                 /* the next attempt opens a new connection (the last one died unanswered) */
    /* response writing: `out` fills while `sending` is with h2o */
    struct wd_buf out, sending;
    bool committed;                  /* status line sent */
    bool in_flight;                  /* an h2o_send awaits proceed */
    bool final_sent;
    bool finished;                   /* everything is in out; the next send is the last */
    bool disposed;
    bool batching;                   /* upstream data decoded but not yet written: up_flush or up_done writes it */
    uv_timer_t *timer;               /* pings and the request deadline */
    uint64_t started_ms, last_write_ms;
    /* what the audit record of this call says (audit/writer.h) */
    bool audited;                    /* authenticated: a call record is due at disposal */
    bool admitting;                  /* fail_closed: waiting for the admission record to be durable */
    bool cut;                        /* the client went away before the end */
    bool shutdown;                   /* ended by the drain deadline: 503, as new requests get while draining */
    struct wd_principal who;
    char rid[32];
    char trace_id[33];
    int64_t t0_us, ttfb_us;
    int status;
    enum wd_error_class err;
    enum wd_stop_reason stop_reason;
    struct wd_usage usage;
    /* copies: at disposal the request's buffers may already be reused */
    char addr[64];
    char ua[WD_AUDIT_STR_MAX / 2];
    char model_req[256], model_res[256];
    char reason[256];                /* why Warden refused the request (a field path and a rule), for the log */
    char req_sha[65];
    /* audit.content hash/full: the request body's digest waits until the provider request is on its way
     * (digest_now); until then the body is here and the call is on its worker's list */
    bool dig_pending;
    const char *dig_p;
    size_t dig_n;
    struct wd_call *dig_next, **dig_prevp;
    struct wd_call *live_next, **live_prevp; /* the worker's live calls (wd_anthropic_drain_cut) */
    struct wd_buf req_copy;          /* audit.content full */
    EVP_MD_CTX *resp_md;             /* audit.content hash/full: digest of every response byte sent */
    struct wd_buf resp_copy;         /* audit.content full */
    /* tracing (otel/): the server span lives for the request, one client span per upstream attempt */
    bool traced;                     /* sampled, and an exporter is configured */
    bool has_tp;                     /* the caller sent a valid traceparent */
    uint8_t tid[16], parent_sid[8], flags;
    char tracestate[520];             /* W3C: at least 512 bytes must be passed on */
    char up_tp[56];                  /* traceparent sent upstream */
    char up_err[16];
    struct wd_span sspan, uspan;
    bool uspan_live, first_token_seen;
    bool stream_open;                /* counted in warden_open_streams */
    bool client_captured;
    bool auth_pending, authz_pending; /* fail_open: written at the end (audit_flush_pending) */
    const char *auth_reason;
    int64_t auth_ts, authz_ts;
    const char *path;                /* the route, for spans and the access log */
    /* Last and not zeroed at the start of a call (handle_call): 8 KiB that a call only ever writes as a
     * string through wd_secret_resolve, and that zeroing cost as much as the rest of the struct. */
    char key[WD_SECRET_MAX];         /* provider credential for this request; cleansed at the end */
};

static void call_flush(struct wd_call *c);

/* The request body's digest for the call record (content: hash or full), and under full its copy. Neither
 * is needed before the end of the call, so a call that reaches its provider does both once the provider
 * request has been handed to curl, while the provider works (wd_anthropic_idle, run before the loop waits:
 * a 50 KB body is tens of microseconds of SHA-256 that would otherwise sit between the client and the
 * provider). Any answer that starts earlier does them first, while the body is certainly alive. */
static void digest_unlink(struct wd_call *c)
{
    if (c->dig_prevp == NULL)
        return;
    *c->dig_prevp = c->dig_next;
    if (c->dig_next != NULL)
        c->dig_next->dig_prevp = c->dig_prevp;
    c->dig_next = NULL;
    c->dig_prevp = NULL;
}

static void digest_now(struct wd_call *c)
{
    if (!c->dig_pending)
        return;
    c->dig_pending = false;
    digest_unlink(c);
    uint8_t d[32];
    wd_sha256(c->dig_p, c->dig_n, d);
    wd_hex(d, 32, c->req_sha);
    if (wd_audit_content() == WD_AUDIT_CONTENT_FULL && c->dig_n <= WD_AUDIT_BODY_MAX)
        wd_buf_put(&c->req_copy, c->dig_p, c->dig_n);
}

static void digest_defer(struct wd_call *c)
{
    if (!c->dig_pending || c->dig_prevp != NULL)
        return;
    struct wd_worker *w = c->w;
    c->dig_next = w->digest_first;
    if (c->dig_next != NULL)
        c->dig_next->dig_prevp = &c->dig_next;
    c->dig_prevp = &w->digest_first;
    w->digest_first = c;
}

void wd_anthropic_idle(struct wd_worker *w)
{
    while (w->digest_first != NULL)
        digest_now(w->digest_first);
}

static void timer_closed(uv_handle_t *h) { free(h); }

static void call_stop_io(struct wd_call *c)
{
    if (c->xfer != NULL) {
        wd_upstream_cancel(c->xfer);
        c->xfer = NULL;
    }
    if (c->timer != NULL) {
        uv_timer_stop(c->timer);
        uv_close((uv_handle_t *)c->timer, timer_closed);
        c->timer = NULL;
    }
}

static const char *const error_names[] = {
    [WD_ERR_NONE] = NULL,
    [WD_ERR_INVALID_REQUEST] = "invalid_request",
    [WD_ERR_AUTHENTICATION] = "authentication",
    [WD_ERR_PERMISSION] = "permission",
    [WD_ERR_NOT_FOUND] = "not_found",
    [WD_ERR_TOO_LARGE] = "too_large",
    [WD_ERR_UNSUPPORTED_MEDIA] = "unsupported_media",
    [WD_ERR_RATE_LIMIT] = "rate_limit",
    [WD_ERR_API] = "api",
    [WD_ERR_BAD_GATEWAY] = "bad_gateway",
    [WD_ERR_UNAVAILABLE] = "unavailable",
    [WD_ERR_TIMEOUT] = "timeout",
    [WD_ERR_OVERLOADED] = "overloaded",
};

static const char *const stop_names[] = {
    [WD_STOP_NONE] = NULL,           [WD_STOP_END_TURN] = "end_turn", [WD_STOP_MAX_TOKENS] = "max_tokens",
    [WD_STOP_STOP_SEQUENCE] = "stop_sequence", [WD_STOP_TOOL_USE] = "tool_use", [WD_STOP_REFUSAL] = "refusal",
};

static h2o_iovec_t find_header(h2o_req_t *req, const char *name, size_t len);

/* The response bytes as they leave, for audit.content hash and full. */
static void audit_response_bytes(struct wd_call *c, const char *p, size_t n)
{
    if (c->resp_md != NULL)
        EVP_DigestUpdate(c->resp_md, p, n);
    if (wd_audit_content() == WD_AUDIT_CONTENT_FULL && c->audited) {
        if (c->resp_copy.n + n <= WD_AUDIT_BODY_MAX)
            wd_buf_put(&c->resp_copy, p, n);
        else
            c->resp_copy.oom = true; /* too long to keep: the record then has the digest and no body */
    }
}

/* Dotted decimal by hand: glibc's inet_ntop formats an IPv4 address with sprintf, which cost more
 * instructions than a span. out has room for 16 bytes. */
static void ipv4_str(const uint8_t a[4], char *out)
{
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *out++ = (char)('0' + v / 100);
        if (v >= 10)
            *out++ = (char)('0' + v / 10 % 10);
        *out++ = (char)('0' + v % 10);
        *out++ = i < 3 ? '.' : '\0';
    }
}

/* Client address and user agent, copied while the connection is certainly alive. */
static void audit_capture_client(struct wd_call *c)
{
    h2o_req_t *req = c->req;
    if (c->client_captured)
        return;
    c->client_captured = true;
    struct sockaddr_storage ss;
    if (req->conn->callbacks->get_peername != NULL &&
        req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) > 0) {
        if (ss.ss_family == AF_INET)
            ipv4_str((const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr, c->addr);
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->addr, sizeof(c->addr));
    }
    h2o_iovec_t ua = find_header(req, H2O_STRLIT("user-agent"));
    if (ua.base != NULL) {
        struct wd_audit_rec tmp = {0};
        wd_audit_set_str(&tmp, WD_AF_USER_AGENT, ua.base, ua.len < sizeof(c->ua) - 1 ? ua.len : sizeof(c->ua) - 1);
        memcpy(c->ua, ua.base, tmp.f[WD_AF_USER_AGENT].n);
        c->ua[tmp.f[WD_AF_USER_AGENT].n] = '\0';
    }
}

static void copy_str(char *dst, size_t cap, struct wd_str s)
{
    struct wd_audit_rec tmp = {0};
    wd_audit_set_str(&tmp, WD_AF_MODEL_REQUESTED, s.p, s.n < cap - 1 ? s.n : cap - 1); /* cut on a char boundary */
    memcpy(dst, s.p, tmp.f[WD_AF_MODEL_REQUESTED].n);
    dst[tmp.f[WD_AF_MODEL_REQUESTED].n] = '\0';
}

/* Fields every record of this request carries: ids, principal, client, route. */
static void audit_common(struct wd_call *c, struct wd_audit_rec *r)
{
    wd_audit_set_cstr(r, WD_AF_REQUEST_ID, c->rid);
    wd_audit_set_cstr(r, WD_AF_TRACE_ID, c->trace_id);
    if (c->who.subject[0] != '\0') {
        wd_audit_set_cstr(r, WD_AF_SUBJECT, c->who.subject);
        wd_audit_set_cstr(r, WD_AF_KEY_NAME, c->who.subject);
        wd_audit_set_cstr(r, WD_AF_AUTH_METHOD, c->who.method);
    }
    if (c->addr[0] != '\0')
        wd_audit_set_cstr(r, WD_AF_CLIENT_ADDR, c->addr);
    if (c->ua[0] != '\0')
        wd_audit_set_cstr(r, WD_AF_USER_AGENT, c->ua);
    wd_audit_set_cstr(r, WD_AF_API, "anthropic");
    wd_audit_set_cstr(r, WD_AF_ROUTE, c->kind == CALL_COUNT_TOKENS ? "/v1/messages/count_tokens" : "/v1/messages");
    if (c->model_req[0] != '\0')
        wd_audit_set_cstr(r, WD_AF_MODEL_REQUESTED, c->model_req);
    if (c->model_res[0] != '\0') {
        wd_audit_set_cstr(r, WD_AF_MODEL_RESOLVED, c->model_res);
        wd_audit_set_cstr(r, WD_AF_PROVIDER, c->route.provider->name);
    }
}

/* One record per model call, written when the request is over: completed, failed or cut. */
static void audit_call_record(struct wd_call *c)
{
    struct wd_audit_rec r = {0};
    char respsha[65];
    audit_common(c, &r);
    wd_audit_set_cstr(&r, WD_AF_KIND, "call");
    const char *event = c->cut ? "cut" : (c->err != WD_ERR_NONE || c->status != 200) ? "failed" : "completed";
    wd_audit_set_cstr(&r, WD_AF_EVENT, event);
    if (c->up_status > 0)
        wd_audit_set_int(&r, WD_AF_UPSTREAM_STATUS, c->up_status);
    if (c->stop_reason != WD_STOP_NONE)
        wd_audit_set_cstr(&r, WD_AF_STOP_REASON, stop_names[c->stop_reason]);
    if (c->usage.input_tokens || c->usage.output_tokens || c->usage.cache_read_tokens) {
        wd_audit_set_int(&r, WD_AF_INPUT_TOKENS, c->usage.input_tokens);
        wd_audit_set_int(&r, WD_AF_OUTPUT_TOKENS, c->usage.output_tokens);
        wd_audit_set_int(&r, WD_AF_CACHED_TOKENS, c->usage.cache_read_tokens);
    }
    if (c->ttfb_us > 0)
        wd_audit_set_int(&r, WD_AF_TTFB_US, c->ttfb_us);
    wd_audit_set_int(&r, WD_AF_TOTAL_US, wd_now_us() - c->t0_us);
    char attempts[48]; /* the record points at it until it is appended */
    if (c->attempts > 0) { /* each provider request started is one the provider may bill */
        snprintf(attempts, sizeof(attempts), "{\"upstream_attempts\":%d}", c->attempts);
        wd_audit_set_cstr(&r, WD_AF_DETAIL, attempts);
    }
    if (c->err != WD_ERR_NONE)
        wd_audit_set_cstr(&r, WD_AF_ERROR_CLASS, error_names[c->err]);
    else if (c->cut)
        wd_audit_set_cstr(&r, WD_AF_ERROR_CLASS, "client_gone");
    if (c->resp_md != NULL) {
        uint8_t d[32];
        unsigned dl = 0;
        EVP_DigestFinal_ex(c->resp_md, d, &dl);
        wd_hex(d, 32, respsha);
        wd_audit_set_cstr(&r, WD_AF_RESPONSE_SHA256, respsha);
        if (c->req_sha[0] != '\0')
            wd_audit_set_cstr(&r, WD_AF_REQUEST_SHA256, c->req_sha);
    }
    if (wd_audit_content() == WD_AUDIT_CONTENT_FULL) {
        if (c->req_sha[0] != '\0' && !c->req_copy.oom) {
            r.request_body = c->req_copy.p ? c->req_copy.p : "";
            r.request_body_len = c->req_copy.n;
            r.has_request_body = true;
        }
        if (!c->resp_copy.oom) {
            r.response_body = c->resp_copy.p ? c->resp_copy.p : "";
            r.response_body_len = c->resp_copy.n;
            r.has_response_body = true;
        }
    }
    wd_audit_append(c->w->audit, &r, NULL, NULL);
}

/* Authentication outcome: success, or the failure's reason class (never the presented token).
 * fail_open: the auth and authz records of a call are written when it ends, with the times they
 * happened, so the request path does no audit work before the provider is called; fail_closed writes the
 * authz record first and waits for it. */
static void audit_auth_now(struct wd_call *c, const char *reason, int64_t ts);

static void audit_auth_record(struct wd_call *c, const char *reason)
{
    if (c->w->audit == NULL)
        return;
    audit_capture_client(c);
    if (!wd_audit_fail_closed()) {
        c->auth_pending = true;
        c->auth_reason = reason;
        c->auth_ts = wd_now_us();
        return;
    }
    audit_auth_now(c, reason, 0);
}

static void audit_auth_now(struct wd_call *c, const char *reason, int64_t ts)
{
    struct wd_audit_rec r = {0};
    if (ts > 0)
        wd_audit_set_int(&r, WD_AF_TS, ts);
    audit_common(c, &r);
    wd_audit_set_cstr(&r, WD_AF_KIND, "auth");
    wd_audit_set_cstr(&r, WD_AF_EVENT, reason == NULL ? "success" : "failure");
    wd_audit_set_cstr(&r, WD_AF_AUTH_METHOD, "api_key");
    if (reason != NULL) {
        wd_audit_set_cstr(&r, WD_AF_REASON, reason);
        wd_audit_set_cstr(&r, WD_AF_ERROR_CLASS, "authentication");
    }
    wd_audit_append(c->w->audit, &r, NULL, NULL);
}

static void audit_authz_fill(struct wd_call *c, struct wd_audit_rec *r)
{
    audit_common(c, r);
    wd_audit_set_cstr(r, WD_AF_KIND, "authz");
    wd_audit_set_cstr(r, WD_AF_EVENT, "allow");
    wd_audit_set_cstr(r, WD_AF_DECISION, "allow");
    wd_audit_set_cstr(r, WD_AF_RULE, "auth.keys: any configured model");
}

/* Writes the records a fail_open call deferred (see audit_auth_record). */
static void audit_flush_pending(struct wd_call *c)
{
    if (c->auth_pending) {
        c->auth_pending = false;
        audit_auth_now(c, c->auth_reason, c->auth_ts);
    }
    if (c->authz_pending) {
        c->authz_pending = false;
        struct wd_audit_rec r = {0};
        wd_audit_set_int(&r, WD_AF_TS, c->authz_ts);
        audit_authz_fill(c, &r);
        wd_audit_append(c->w->audit, &r, NULL, NULL);
    }
}

/* The trace context: the caller's traceparent (W3C) when valid, else a new trace; sampled by the
 * caller's flag, or by the configured ratio for a new trace. */
static void trace_begin(struct wd_call *c)
{
    h2o_req_t *req = c->req;
    h2o_iovec_t tp = find_header(req, H2O_STRLIT("traceparent"));
    c->has_tp = tp.base != NULL && wd_traceparent_parse(tp.base, tp.len, c->tid, c->parent_sid, &c->flags) == 0;
    if (!c->has_tp) {
        for (int i = 0; i < 16; i += 8) {
            uint64_t v = wd_rand_u64();
            memcpy(c->tid + i, &v, 8);
        }
        c->flags = wd_otel_enabled() && wd_otel_sample(c->tid) ? 1 : 0;
    }
    h2o_iovec_t ts = find_header(req, H2O_STRLIT("tracestate"));
    if (c->has_tp && ts.base != NULL && ts.len < sizeof(c->tracestate)) {
        memcpy(c->tracestate, ts.base, ts.len);
        c->tracestate[ts.len] = '\0';
    }
    wd_hex(c->tid, 16, c->trace_id);
    c->traced = wd_otel_enabled() && (c->flags & 1);
    if (c->traced && !wd_otel_admit((unsigned)c->w->id)) {
        c->traced = false; /* the exporter is behind: this trace is not recorded, whole */
        wd_metrics_spans_dropped(WD_SPAN_DROP_QUEUE_FULL, 1);
    }
}

static void span_start(struct wd_call *c, struct wd_span *s, const char *name, enum wd_span_kind kind,
                       const struct wd_span *parent)
{
    memset(s, 0, offsetof(struct wd_span, attrs)); /* the attribute array is filled up to nattrs */
    s->nattrs = s->nevents = 0;
    s->dropped_attrs = s->dropped_events = 0;
    memcpy(s->trace_id, c->tid, 16);
    uint64_t id = wd_rand_u64() | 1; /* never all zero */
    memcpy(s->span_id, &id, 8);
    if (parent != NULL) {
        memcpy(s->parent_span_id, parent->span_id, 8);
        s->has_parent = true;
    } else if (c->has_tp) {
        memcpy(s->parent_span_id, c->parent_sid, 8);
        s->has_parent = true;
    }
    s->flags = c->flags;
    if (c->tracestate[0] != '\0')
        s->trace_state = (struct wd_str){c->tracestate, strlen(c->tracestate)};
    s->name = name;
    s->kind = kind;
    s->start_ns = wd_now_ns();
}

static void span_end(struct wd_call *c, struct wd_span *s)
{
    s->end_ns = wd_now_ns();
    wd_otel_submit((unsigned)c->w->id, s);
}

/* The client span of one provider attempt, with the GenAI semantic conventions. */
static void uspan_end(struct wd_call *c, const char *error_type)
{
    if (!c->uspan_live)
        return;
    c->uspan_live = false;
    struct wd_span *s = &c->uspan;
    if (c->up_status > 0)
        wd_span_put_int(s, "http.response.status_code", c->up_status);
    if (c->usage.input_tokens || c->usage.output_tokens) {
        wd_span_put_int(s, "gen_ai.usage.input_tokens", c->usage.input_tokens + c->usage.cache_read_tokens);
        wd_span_put_int(s, "gen_ai.usage.output_tokens", c->usage.output_tokens);
    }
    if (c->stop_reason != WD_STOP_NONE)
        wd_span_put_str_array1(s, "gen_ai.response.finish_reasons", stop_names[c->stop_reason],
                                strlen(stop_names[c->stop_reason]));
    if (error_type != NULL) {
        wd_span_put_cstr(s, "error.type", error_type);
        s->status = WD_STATUS_ERROR;
    }
    span_end(c, s);
}

static void uspan_begin(struct wd_call *c)
{
    c->up_tp[0] = '\0';
    if (!c->traced && !c->has_tp && !wd_otel_enabled())
        return; /* no caller context and no tracing here: nothing to pass on */
    struct wd_span *s = &c->uspan;
    bool count = c->kind == CALL_COUNT_TOKENS;
    span_start(c, s, count ? "count_tokens" : "chat", WD_SPAN_CLIENT, c->traced ? &c->sspan : NULL);
    wd_traceparent_format(s, c->up_tp);
    if (!c->traced)
        return; /* not sampled here: only the context goes on */
    c->uspan_live = true;
    c->first_token_seen = false;
    wd_span_put_cstr(s, "gen_ai.operation.name", count ? "count_tokens" : "chat");
    wd_span_put_cstr(s, "gen_ai.provider.name", "gcp.gemini");
    wd_span_put_str(s, "gen_ai.request.model", c->route.model.p, c->route.model.n);
    wd_span_put_str(s, "gen_ai.response.model", c->route.model.p, c->route.model.n);
    if (c->creq.max_tokens > 0)
        wd_span_put_int(s, "gen_ai.request.max_tokens", c->creq.max_tokens);
    wd_span_put_cstr(s, "http.request.method", "POST");
    wd_span_put_cstr(s, "url.full", c->url);
    wd_span_put_cstr(s, "warden.provider", c->route.provider->name);
}

/* The server span (HTTP semantic conventions) and the access log line, when the request is over. */
static void trace_finish(struct wd_call *c)
{
    uspan_end(c, "cancelled");
    const char *err = c->err != WD_ERR_NONE ? error_names[c->err] : c->cut ? "client_gone" : NULL;
    if (c->traced) {
        struct wd_span *s = &c->sspan;
        wd_span_put_cstr(s, "http.request.method", "POST");
        wd_span_put_cstr(s, "http.route", c->path);
        wd_span_put_cstr(s, "url.path", c->path);
        wd_span_put_cstr(s, "url.scheme", c->w->accept_ctx.ssl_ctx != NULL ? "https" : "http");
        wd_span_put_cstr(s, "network.protocol.version", c->req->version >= 0x200 ? "2" : "1.1");
        if (c->status > 0)
            wd_span_put_int(s, "http.response.status_code", c->status);
        if (c->addr[0] != '\0')
            wd_span_put_cstr(s, "client.address", c->addr);
        if (c->ua[0] != '\0')
            wd_span_put_cstr(s, "user_agent.original", c->ua);
        if (c->model_req[0] != '\0')
            wd_span_put_cstr(s, "gen_ai.request.model", c->model_req);
        wd_span_put_cstr(s, "warden.request_id", c->rid);
        if (c->attempts > 0)
            wd_span_put_int(s, "warden.upstream.attempts", c->attempts);
        if (err != NULL)
            wd_span_put_cstr(s, "error.type", err);
        /* a server error, or a stream that failed after its 200 with a server-side class */
        bool server_err = c->err == WD_ERR_API || c->err == WD_ERR_BAD_GATEWAY || c->err == WD_ERR_UNAVAILABLE ||
                          c->err == WD_ERR_TIMEOUT || c->err == WD_ERR_OVERLOADED;
        if (c->status >= 500 || c->status == 0 || server_err)
            s->status = WD_STATUS_ERROR;
        span_end(c, s);
    }
    if (c->rt->cfg->telemetry.access_log) {
        char sid[17] = "";
        if (c->traced)
            wd_hex(c->sspan.span_id, 8, sid);
        /* formatted by hand: this runs once per request */
        struct wd_buf f = {0};
        wd_buf_reserve(&f, 512); /* the whole line, usually: one allocation, no growing */
        int64_t us = wd_now_us() - c->t0_us;
        wd_buf_puts(&f, "\"request_id\":\"");
        wd_buf_puts(&f, c->rid);
        wd_buf_puts(&f, "\",\"trace_id\":\"");
        wd_buf_puts(&f, c->trace_id);
        wd_buf_puts(&f, "\",\"span_id\":\"");
        wd_buf_puts(&f, sid);
        wd_buf_puts(&f, "\",\"method\":\"POST\",\"path\":\"");
        wd_buf_puts(&f, c->path);
        wd_buf_puts(&f, "\",\"status\":");
        wd_buf_put_i64(&f, c->status);
        wd_buf_puts(&f, ",\"duration_ms\":");
        wd_buf_put_i64(&f, us / 1000);
        char frac[5] = {'.', (char)('0' + us % 1000 / 100), (char)('0' + us % 100 / 10), (char)('0' + us % 10), 0};
        wd_buf_puts(&f, us >= 0 ? frac : "");
        if (c->who.subject[0] != '\0') {
            wd_buf_puts(&f, ",\"key\":");
            wd_json_put_string(&f, c->who.subject, strlen(c->who.subject));
        }
        if (c->model_req[0] != '\0') {
            wd_buf_puts(&f, ",\"model\":");
            wd_json_put_string(&f, c->model_req, strlen(c->model_req));
        }
        if (c->route.provider != NULL) {
            wd_buf_puts(&f, ",\"provider\":\"");
            wd_buf_puts(&f, c->route.provider->name); /* [a-z0-9_-] by the config's rules */
            wd_buf_putc(&f, '"');
        }
        if (c->usage.input_tokens || c->usage.output_tokens) {
            wd_buf_puts(&f, ",\"input_tokens\":");
            wd_buf_put_i64(&f, c->usage.input_tokens);
            wd_buf_puts(&f, ",\"output_tokens\":");
            wd_buf_put_i64(&f, c->usage.output_tokens);
        }
        if (err != NULL) {
            wd_buf_puts(&f, ",\"error\":\"");
            wd_buf_puts(&f, err);
            wd_buf_putc(&f, '"');
        }
        if (c->reason[0] != '\0') {
            wd_buf_puts(&f, ",\"reason\":");
            wd_json_put_string(&f, c->reason, strlen(c->reason));
        }
        if (c->addr[0] != '\0') {
            wd_buf_puts(&f, ",\"client\":\"");
            wd_buf_puts(&f, c->addr);
            wd_buf_putc(&f, '"');
        }
        wd_buf_putc(&f, '\0');
        if (!f.oom)
            wd_log(WD_LOG_INFO, "access", f.p);
        wd_buf_free(&f);
    }
}

static void call_dispose(void *p)
{
    struct wd_call *c = p;
    c->disposed = true;
    if (c->live_prevp != NULL) {
        *c->live_prevp = c->live_next;
        if (c->live_next != NULL)
            c->live_next->live_prevp = c->live_prevp;
    }
    call_stop_io(c);
    if (c->dig_pending) {
        /* ended before its provider request left (the connection closed under it): the body may be gone */
        c->dig_pending = false;
        digest_unlink(c);
        char f[64];
        snprintf(f, sizeof(f), "\"request_id\":\"%s\"", c->rid);
        wd_logf(WD_LOG_WARN, f, "audit: the call ended before its request body's digest was computed");
    }
    if (c->admitting)
        wd_audit_cancel(c->w->audit, c);
    if (c->w->audit != NULL && (c->audited || c->auth_pending)) {
        struct wd_span sp;
        if (c->traced)
            span_start(c, &sp, "audit.write", WD_SPAN_INTERNAL, &c->sspan);
        audit_flush_pending(c);
        if (c->audited)
            audit_call_record(c);
        if (c->traced)
            span_end(c, &sp);
    }
    trace_finish(c);
    struct wd_metrics_call mc = {
        .route = c->path,
        .api = "anthropic",
        .model = c->model_res[0] ? c->model_res : NULL,
        .model_len = strlen(c->model_res),
        .provider = c->route.provider ? c->route.provider->name : NULL,
        .key = c->who.subject,
        .status = c->status,
        .duration_s = (double)(wd_now_us() - c->t0_us) / 1e6,
        .ttft_s = c->ttfb_us > 0 ? (double)c->ttfb_us / 1e6 : -1.0,
        .in_tok = c->usage.input_tokens,
        .out_tok = c->usage.output_tokens,
        .cached_tok = c->usage.cache_read_tokens,
        .error_class = c->err != WD_ERR_NONE ? error_names[c->err] : c->cut ? "client_gone" : NULL,
        .stream = c->enc.stream,
    };
    wd_metrics_call_done(c->w->id, &mc);
    if (c->stream_open)
        wd_metrics_stream_open(c->w->id, "anthropic", -1);
    wd_metrics_inflight(c->w->id, -1);
    EVP_MD_CTX_free(c->resp_md);
    wd_buf_free(&c->resp_copy);
    wd_buf_free(&c->req_copy);
    if (c->dec_live)
        wd_gemini_stream_free(&c->dec);
    wd_stop_filter_free(&c->stop);
    wd_anthropic_out_free(&c->enc);
    wd_sse_free(&c->sse);
    wd_json_free(&c->json);
    wd_arena_free(&c->arena);
    wd_buf_free(&c->inflated);
    wd_buf_free(&c->upbody);
    wd_buf_free(&c->errbody);
    wd_buf_free(&c->out);
    wd_buf_free(&c->sending);
    OPENSSL_cleanse(c->key, strnlen(c->key, sizeof(c->key))); /* the credential, not the whole 8 KiB */
    c->w->inflight--;
    wd_runtime_release(c->rt);
}

static void add_header(h2o_req_t *req, const h2o_token_t *tok, const char *v)
{
    h2o_add_header(&req->pool, &req->res.headers, tok, NULL, v, strlen(v));
}

/* A complete error response in Anthropic's shape (before anything was committed). */
static void call_fail(struct wd_call *c, enum wd_error_class cls, const char *msg)
{
    h2o_req_t *req = c->req;
    digest_now(c);
    struct wd_buf b = {0};
    wd_anthropic_write_error(&b, cls, msg, strlen(msg));
    if (cls == WD_ERR_RATE_LIMIT && c->retry_after >= 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%ld", c->retry_after);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, ra, strlen(ra)).base,
                       strlen(ra));
    }
    if (cls == WD_ERR_OVERLOADED || cls == WD_ERR_UNAVAILABLE)
        add_header(req, H2O_TOKEN_RETRY_AFTER, "1");
    c->err = cls;
    c->status = c->shutdown ? 503 : wd_anthropic_error_status(cls);
    audit_response_bytes(c, b.p ? b.p : "", b.n);
    wd_respond(req, c->status, "application/json", b.p ? b.p : "", b.n);
    wd_buf_free(&b);
    c->final_sent = true;
    call_stop_io(c);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct wd_call *c = H2O_STRUCT_FROM_MEMBER(struct wd_call, gen, g);
    c->in_flight = false;
    c->sending.n = 0;
    call_flush(c);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    /* the client went away mid-response */
    struct wd_call *c = H2O_STRUCT_FROM_MEMBER(struct wd_call, gen, g);
    if (!c->final_sent || c->in_flight)
        c->cut = true;
    call_stop_io(c);
}

static void call_commit(struct wd_call *c, int status, const char *ct)
{
    if (c->committed)
        return;
    c->committed = true;
    c->status = status;
    digest_now(c);
    if (c->enc.stream && !c->stream_open) {
        c->stream_open = true;
        wd_metrics_stream_open(c->w->id, "anthropic", +1);
    }
    c->ttfb_us = wd_now_us() - c->t0_us;
    h2o_req_t *req = c->req;
    req->res.status = status;
    req->res.reason = wd_http_reason(status);
    add_header(req, H2O_TOKEN_CONTENT_TYPE, ct);
    if (c->enc.stream)
        add_header(req, H2O_TOKEN_CACHE_CONTROL, "no-cache");
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("request-id"), 0, NULL, c->enc.msg_id,
                          strlen(c->enc.msg_id));
    c->gen.proceed = on_proceed;
    c->gen.stop = on_stop;
    h2o_start_response(req, &c->gen);
}

static void call_flush(struct wd_call *c)
{
    if (c->in_flight || c->final_sent || !c->committed)
        return;
    if (c->out.n == 0 && !c->finished)
        return;
    struct wd_buf t = c->sending;
    c->sending = c->out;
    c->out = t;
    c->out.n = 0;
    h2o_iovec_t v = h2o_iovec_init(c->sending.p, c->sending.n);
    if (c->audited)
        audit_response_bytes(c, c->sending.p, c->sending.n);
    c->in_flight = true;
    c->last_write_ms = uv_now(&c->w->loop);
    if (c->finished) {
        c->final_sent = true;
        call_stop_io(c);
    }
    h2o_send(c->req, &v, 1, c->final_sent ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static int call_start_upstream(struct wd_call *c);

/* Events from the provider decoder pass here first: an error before anything was committed becomes a
 * plain HTTP error; a retryable one (malformed function call, nothing emitted) restarts the call once. */
static void gate_emit(struct wd_sink *s, const struct wd_event *ev)
{
    struct wd_call *c = H2O_STRUCT_FROM_MEMBER(struct wd_call, sink, s);
    if (ev->type == WD_EV_ERROR && !c->committed) {
        if (ev->retryable && c->retries_left > 0) {
            c->retries_left--;
            wd_metrics_retry(c->w->id, c->route.provider->name);
            c->finished = false;
            c->xfer = NULL; /* the finished transfer is freed by the upstream module */
            if (call_start_upstream(c) == 0)
                return;
        }
        char msg[256];
        snprintf(msg, sizeof(msg), "%.*s", (int)ev->message.n, ev->message.p);
        call_fail(c, ev->error_class, msg);
        return;
    }
    if (ev->type == WD_EV_MESSAGE_STOP) {
        c->stop_reason = ev->stop_reason;
        c->usage = ev->usage;
    } else if (ev->type == WD_EV_MESSAGE_START && ev->usage.input_tokens) {
        c->usage = ev->usage;
    } else if (ev->type == WD_EV_ERROR) {
        c->err = ev->error_class;
    }
    c->enc.sink.emit(&c->enc.sink, ev);
    if (c->enc.stream)
        call_commit(c, 200, "text/event-stream");
    if (c->enc.finished) {
        if (!c->enc.stream && c->enc.failed) {
            call_fail(c, c->enc.error.cls, c->enc.error.msg);
            return;
        }
        if (!c->enc.stream) {
            /* the whole message is in c->out (call_flush writes nothing before the commit): a length, not chunks */
            c->req->res.content_length = c->out.n;
            call_commit(c, 200, "application/json");
        }
        c->finished = true;
    }
    if (!c->batching)
        call_flush(c);
}

static int on_sse_event(void *ctx, const char *data, size_t len)
{
    struct wd_call *c = ctx;
    wd_gemini_stream_chunk(&c->dec, data, len);
    if (c->stop.stopped && c->xfer != NULL) {
        /* a stop sequence ended the answer: the rest of the generation is not wanted */
        wd_upstream_cancel(c->xfer);
        c->xfer = NULL;
    }
    return c->final_sent ? -1 : 0;
}

static void up_response(void *ctx, int status, long retry_after, const char *ct)
{
    struct wd_call *c = ctx;
    c->up_status = status;
    c->retry_after = retry_after;
}

static void up_data(void *ctx, const char *p, size_t n)
{
    struct wd_call *c = ctx;
    if (c->final_sent)
        return;
    if (c->uspan_live && !c->first_token_seen && c->up_status == 200 && c->kind != CALL_COUNT_TOKENS) {
        /* time to first token: the first bytes of a successful answer */
        c->first_token_seen = true;
        wd_span_add_event(&c->uspan, "gen_ai.first_token", wd_now_ns());
    }
    if (c->up_status != 200 || c->kind == CALL_COUNT_TOKENS || !c->creq.stream) {
        /* whole bodies: errors, count_tokens, non-streamed messages */
        /* the upstream module stops a whole body at limits.max_response_bytes; of an error, only the start is kept */
        size_t cap = c->up_status != 200 ? ERROR_BODY_MAX : c->rt->cfg->max_response_bytes;
        if (c->errbody.n + n <= cap)
            wd_buf_put(&c->errbody, p, n);
        return;
    }
    /* every event of one pass through curl (several reads, and often the end of the stream) leaves in
     * one write: up_flush or up_done writes it, once curl has unwound */
    c->batching = true;
    int r = wd_sse_feed(&c->sse, p, n, on_sse_event, c);
    if (r < 0 && !c->final_sent) {
        struct wd_event ev = {.type = WD_EV_ERROR, .error_class = WD_ERR_BAD_GATEWAY,
                              .message = WD_STR("provider sent a malformed stream")};
        c->dec.failed = true;
        gate_emit(&c->sink, &ev);
    }
    if (c->xfer == NULL || c->finished) {
        /* cancelled (a stop sequence) or ended here: no later callback of this transfer */
        c->batching = false;
        call_flush(c);
    }
}

static void up_flush(void *ctx)
{
    struct wd_call *c = ctx;
    c->batching = false;
    call_flush(c);
}

static enum wd_error_class transport_class(enum wd_upstream_result r)
{
    switch (r) {
    case WD_UP_ERR_CONNECT_TIMEOUT:
    case WD_UP_ERR_FIRST_BYTE_TIMEOUT:
    case WD_UP_ERR_IDLE_TIMEOUT: return WD_ERR_TIMEOUT;
    default: return WD_ERR_BAD_GATEWAY;
    }
}

static const char *transport_message(enum wd_upstream_result r)
{
    switch (r) {
    case WD_UP_ERR_CONNECT: return "could not connect to the provider";
    case WD_UP_ERR_CONNECT_TIMEOUT: return "timed out connecting to the provider";
    case WD_UP_ERR_FIRST_BYTE_TIMEOUT: return "the provider did not answer in time";
    case WD_UP_ERR_IDLE_TIMEOUT: return "the provider stopped sending mid-response";
    case WD_UP_ERR_TOO_LARGE: return "the provider's answer exceeds limits.max_response_bytes";
    case WD_UP_ERR_RESEND: return "the provider connection closed before it answered";
    default: return "the provider connection failed mid-response";
    }
}

static void up_done_inner(struct wd_call *c, enum wd_upstream_result res, const char *detail);

static void up_done(void *ctx, enum wd_upstream_result res, const char *detail)
{
    struct wd_call *c = ctx;
    enum wd_metrics_outcome mo = res == WD_UP_OK ? (c->up_status >= 200 && c->up_status < 300 ? WD_MO_OK : WD_MO_HTTP_ERROR)
                                 : transport_class(res) == WD_ERR_TIMEOUT ? WD_MO_TIMEOUT
                                                                          : WD_MO_TRANSPORT_ERROR;
    wd_metrics_upstream_attempt(c->w->id, c->route.provider->name, c->route.model.p, c->route.model.n, mo);
    uint8_t attempt[8]; /* this attempt's span: up_done_inner may start a retry, which begins another */
    memcpy(attempt, c->uspan.span_id, 8);
    up_done_inner(c, res, detail);
    if (!c->uspan_live || memcmp(attempt, c->uspan.span_id, 8) != 0)
        return;
    if (res != WD_UP_OK)
        uspan_end(c, error_names[transport_class(res)]);
    else if (c->up_status != 200) {
        snprintf(c->up_err, sizeof(c->up_err), "%d", c->up_status);
        uspan_end(c, c->up_err);
    } else
        uspan_end(c, c->dec.failed ? "bad_gateway" : NULL);
}

static void up_done_inner(struct wd_call *c, enum wd_upstream_result res, const char *detail)
{
    c->xfer = NULL;
    c->batching = false;
    if (c->final_sent)
        return;
    if (res != WD_UP_OK) {
        char f[160];
        snprintf(f, sizeof(f), "\"request_id\":\"%s\",\"trace_id\":\"%s\",\"provider\":\"%s\"", c->rid, c->trace_id,
                 c->route.provider->name);
        wd_logf(WD_LOG_WARN, f, "upstream request failed: %s", detail ? detail : "");
        /* A kept-alive connection that died before any answer byte: curl's silent re-send was refused
         * (server/upstream.h), and the request goes again as one more counted attempt, on a new
         * connection, if the call's one retry is still unused. */
        struct wd_event ev = {.type = WD_EV_ERROR, .error_class = transport_class(res),
                              .retryable = res == WD_UP_ERR_RESEND};
        ev.message = (struct wd_str){transport_message(res), strlen(transport_message(res))};
        c->fresh_conn = res == WD_UP_ERR_RESEND;
        c->dec.failed = true;
        gate_emit(&c->sink, &ev);
        return;
    }
    if (c->up_status < 200 || (c->up_status > 200 && c->up_status < 400)) {
        /* Warden follows no redirect and expects no other success: the provider's answer is unusable */
        char msg[96];
        snprintf(msg, sizeof(msg), "the provider answered with an unexpected HTTP %d", c->up_status);
        call_fail(c, WD_ERR_BAD_GATEWAY, msg);
        return;
    }
    if (c->up_status != 200) {
        struct wd_error e;
        wd_gemini_error(c->up_status, c->errbody.p, c->errbody.n, &e);
        call_fail(c, e.cls, e.msg);
        return;
    }
    if (c->kind == CALL_COUNT_TOKENS) {
        int64_t n;
        if (wd_gemini_count_tokens(c->errbody.p ? c->errbody.p : "", c->errbody.n, &n) < 0) {
            call_fail(c, WD_ERR_BAD_GATEWAY, "provider sent a malformed countTokens response");
            return;
        }
        char body[64];
        int len = snprintf(body, sizeof(body), "{\"input_tokens\":%lld}", (long long)n);
        c->status = 200;
        c->usage.input_tokens = n;
        audit_response_bytes(c, body, (size_t)len);
        wd_respond(c->req, 200, "application/json", body, (size_t)len);
        c->final_sent = true;
        call_stop_io(c);
        return;
    }
    if (!c->creq.stream)
        wd_gemini_stream_chunk(&c->dec, c->errbody.p ? c->errbody.p : "", c->errbody.n);
    else if (wd_sse_pending(&c->sse) && !c->dec.failed) {
        struct wd_event ev = {.type = WD_EV_ERROR, .error_class = WD_ERR_BAD_GATEWAY,
                              .message = WD_STR("provider stream ended mid-event")};
        c->dec.failed = true;
        gate_emit(&c->sink, &ev);
        return;
    }
    /* the end's events join what the last pass decoded: the client gets them in one write, not a first
     * write of what was pending and a second of the rest once h2o has taken the first */
    c->batching = true;
    wd_gemini_stream_finish(&c->dec);
    c->batching = false;
    call_flush(c);
}

/* h2o 2.2.5 stops reading an HTTP/1 connection while it answers a request, so a client that hangs up
 * is only noticed on the next write. A thinking model can stay silent for minutes, burning tokens for
 * nobody: check for the peer's FIN directly. (A client that half-closes and still reads counts as gone,
 * which no Anthropic client does.) HTTP/2 reports a reset stream through on_stop by itself. */
static bool client_hung_up(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return false;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    int fd = sock ? h2o_socket_get_fd(sock) : -1;
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void on_tick(uv_timer_t *t)
{
    struct wd_call *c = t->data;
    uint64_t now = uv_now(&c->w->loop);
    if (client_hung_up(c->req)) {
        c->cut = true;
        call_stop_io(c);
        if (c->committed) {
            c->finished = true; /* the final write fails and h2o closes the connection */
            call_flush(c);
        } else {
            call_fail(c, WD_ERR_INVALID_REQUEST, "client closed the connection");
        }
        return;
    }
    if (now - c->started_ms > c->rt->cfg->request_timeout_ms) {
        struct wd_event ev = {.type = WD_EV_ERROR, .error_class = WD_ERR_TIMEOUT,
                              .message = WD_STR("request timeout")};
        if (c->xfer != NULL) {
            wd_upstream_cancel(c->xfer);
            c->xfer = NULL;
        }
        c->dec.failed = true;
        gate_emit(&c->sink, &ev);
        return;
    }
    /* pings keep idle proxies and the client's read timeout from closing a stream that waits on a
     * thinking model; they start once the response is committed to 200 */
    if (c->enc.stream && c->up_status == 200 && now - c->last_write_ms >= PING_INTERVAL_MS && !c->final_sent) {
        call_commit(c, 200, "text/event-stream");
        wd_anthropic_write_ping(&c->out);
        call_flush(c);
    }
}

int wd_anthropic_drain_cut(struct wd_worker *w)
{
    int n = 0;
    struct wd_call *next;
    for (struct wd_call *c = w->live_first; c != NULL; c = next) {
        next = c->live_next;
        if (c->final_sent || c->finished || c->cut || c->disposed)
            continue; /* its end is already on its way to the client */
        n++;
        /* the same path as the request timeout (on_tick): a committed stream gets an error event after
         * what it already sent, anything else a complete 503 with Retry-After */
        call_stop_io(c);
        c->shutdown = true;
        c->batching = false;
        c->dec.failed = true;
        struct wd_event ev = {.type = WD_EV_ERROR, .error_class = WD_ERR_OVERLOADED,
                              .message = WD_STR("server is shutting down")};
        gate_emit(&c->sink, &ev);
    }
    return n;
}

static int call_start_upstream(struct wd_call *c)
{
    const struct wd_provider *p = c->route.provider;
    if (c->dec_live)
        wd_gemini_stream_free(&c->dec);
    wd_stop_filter_free(&c->stop);
    wd_stop_filter_init(&c->stop, &c->sink, c->creq.stop, c->creq.nstop);
    wd_gemini_stream_init(&c->dec, &c->stop.sink, &c->creq, &c->arena);
    c->dec_live = true;
    wd_sse_free(&c->sse);
    c->errbody.n = 0;
    uspan_end(c, "retried");
    c->up_status = 0;
    c->retry_after = -1;
    c->sse.max_event = c->rt->cfg->max_response_bytes;
    bool fresh = c->fresh_conn;
    c->fresh_conn = false;
    c->attempts++;
    uspan_begin(c);
    int nh = 2;
    if (c->up_tp[0] != '\0') {
        c->hdrs[nh++] = (struct wd_upstream_header){"traceparent", c->up_tp};
        if (c->tracestate[0] != '\0')
            c->hdrs[nh++] = (struct wd_upstream_header){"tracestate", c->tracestate};
    }
    struct wd_upstream_req ur = {
        .method = "POST",
        .url = c->url,
        .headers = c->hdrs,
        .nheaders = (size_t)nh,
        .body = c->upbody.p,
        .body_len = c->upbody.n,
        .tls_ca = p->tls_ca,
        .connect_timeout_ms = p->connect_timeout_ms,
        .first_byte_timeout_ms = p->first_byte_timeout_ms,
        .idle_timeout_ms = p->idle_timeout_ms,
        /* a streamed answer is passed on as it comes (its events are capped, c->sse.max_event); a whole
         * one is held, so it is capped; an error body is capped alike (up_data keeps its first 64 KiB) */
        .max_response_bytes = c->creq.stream && c->kind != CALL_COUNT_TOKENS ? 0 : c->rt->cfg->max_response_bytes,
        .max_error_bytes = c->rt->cfg->max_response_bytes,
        .fresh_connect = fresh,
        .ctx = c,
        .on_response = up_response,
        .on_data = up_data,
        .on_flush = c->creq.stream && c->kind != CALL_COUNT_TOKENS ? up_flush : NULL, /* whole bodies: on_done */
        .on_done = up_done,
    };
    c->xfer = wd_upstream_start(c->w->up, &ur);
    return c->xfer ? 0 : -1;
}

static h2o_iovec_t find_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static int authenticate(struct wd_call *c)
{
    h2o_req_t *req = c->req;
    struct wd_str presented = WD_STR_NULL;
    h2o_iovec_t k = find_header(req, H2O_STRLIT("x-api-key"));
    if (k.base != NULL) {
        presented = (struct wd_str){k.base, k.len};
    } else {
        ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
        if (i >= 0) {
            h2o_iovec_t v = req->headers.entries[i].value;
            if (v.len > 7 && strncasecmp(v.base, "Bearer ", 7) == 0)
                presented = (struct wd_str){v.base + 7, v.len - 7};
        }
    }
    if (presented.n == 0) {
        audit_auth_record(c, "missing_key");
        call_fail(c, WD_ERR_AUTHENTICATION, "missing API key: send x-api-key or Authorization: Bearer");
        return -1;
    }
    if (wd_auth_check(&c->rt->auth, presented, &c->who) != 0) {
        c->who.subject[0] = '\0';
        audit_auth_record(c, "invalid_key");
        call_fail(c, WD_ERR_AUTHENTICATION, "invalid API key");
        return -1;
    }
    audit_auth_record(c, NULL);
    c->audited = c->w->audit != NULL;
    return 0;
}

/* The request body, gzip-decoded when so encoded, within the configured limit. */
static int request_body(struct wd_call *c, const char **body, size_t *len)
{
    h2o_req_t *req = c->req;
    size_t max = c->rt->cfg->max_body_bytes;
    ssize_t ei = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_ENCODING, -1);
    if (ei < 0 || h2o_lcstris(req->headers.entries[ei].value.base, req->headers.entries[ei].value.len,
                              H2O_STRLIT("identity"))) {
        if (req->entity.len > max) {
            call_fail(c, WD_ERR_TOO_LARGE, "request body exceeds the configured limit (limits.max_body_bytes)");
            return -1;
        }
        *body = req->entity.base ? req->entity.base : "";
        *len = req->entity.len;
        return 0;
    }
    if (!h2o_lcstris(req->headers.entries[ei].value.base, req->headers.entries[ei].value.len, H2O_STRLIT("gzip"))) {
        call_fail(c, WD_ERR_UNSUPPORTED_MEDIA, "unsupported Content-Encoding: only gzip and identity are accepted");
        return -1;
    }
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        call_fail(c, WD_ERR_API, "out of memory");
        return -1;
    }
    z.next_in = (Bytef *)req->entity.base;
    z.avail_in = (uInt)req->entity.len;
    int r = Z_OK;
    while (r != Z_STREAM_END) {
        if (!wd_buf_reserve(&c->inflated, 64 * 1024)) {
            r = Z_MEM_ERROR;
            break;
        }
        z.next_out = (Bytef *)c->inflated.p + c->inflated.n;
        z.avail_out = (uInt)(c->inflated.cap - c->inflated.n);
        r = inflate(&z, Z_NO_FLUSH);
        c->inflated.n = c->inflated.cap - z.avail_out;
        if (c->inflated.n > max) {
            /* a gzip bomb stops here, at the limit, not when memory runs out */
            inflateEnd(&z);
            call_fail(c, WD_ERR_TOO_LARGE, "decoded request body exceeds the configured limit (limits.max_body_bytes)");
            return -1;
        }
        if (r != Z_OK && r != Z_STREAM_END)
            break;
        if (r == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
            r = Z_DATA_ERROR; /* truncated */
            break;
        }
    }
    inflateEnd(&z);
    if (r != Z_STREAM_END) {
        snprintf(c->reason, sizeof(c->reason), "request body is not valid gzip");
        call_fail(c, WD_ERR_INVALID_REQUEST, "request body is not valid gzip");
        return -1;
    }
    *body = c->inflated.p ? c->inflated.p : "";
    *len = c->inflated.n;
    return 0;
}

static bool header_too_large(h2o_req_t *req, size_t max)
{
    size_t total = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return total > max;
}

/* fail_closed: the admission record is durable (or cannot be); the call goes on or gets 503. */
static void on_admitted(void *ctx, int ok)
{
    struct wd_call *c = ctx;
    c->admitting = false;
    if (c->final_sent || c->disposed)
        return;
    if (!ok) {
        call_fail(c, WD_ERR_UNAVAILABLE, "the audit trail is unavailable and audit.mode is fail_closed");
        return;
    }
    if (call_start_upstream(c) < 0)
        call_fail(c, WD_ERR_API, "could not start the provider request");
}

/* The authorization decision: with static keys, every key may use every configured model. */
static int audit_authz(struct wd_call *c)
{
    if (c->w->audit == NULL)
        return 0;
    bool closed = wd_audit_fail_closed();
    if (!closed) {
        /* fail_open: the call goes on whatever happens to its records (a refusal is counted and noted) */
        c->authz_pending = true;
        c->authz_ts = wd_now_us();
        return 0;
    }
    struct wd_audit_rec r = {0};
    audit_authz_fill(c, &r);
    if (wd_audit_append(c->w->audit, &r, on_admitted, c) != 0) {
        call_fail(c, WD_ERR_UNAVAILABLE, "the audit trail is unavailable and audit.mode is fail_closed");
        return -1;
    }
    c->admitting = true;
    return 1;
}

static void handle_call(h2o_req_t *req, struct wd_worker *w, enum call_kind kind)
{
    struct wd_call *c = h2o_mem_alloc_shared(&req->pool, sizeof(*c), call_dispose);
    memset(c, 0, offsetof(struct wd_call, key));
    c->key[0] = '\0';
    c->req = req;
    c->w = w;
    c->kind = kind;
    c->rt = w->rt;
    atomic_fetch_add(&c->rt->refs, 1);
    w->inflight++;
    c->live_next = w->live_first;
    if (c->live_next != NULL)
        c->live_next->live_prevp = &c->live_next;
    c->live_prevp = &w->live_first;
    w->live_first = c;
    c->retries_left = 1;
    c->retry_after = -1;
    c->sink.emit = gate_emit;
    c->started_ms = c->last_write_ms = uv_now(&w->loop);
    c->t0_us = wd_now_us();
    wd_metrics_inflight(w->id, +1);
    memcpy(c->rid, "req_", 4);
    wd_rand_id(c->rid + 4, 24);
    c->rid[28] = '\0';
    c->path = kind == CALL_COUNT_TOKENS ? "/anthropic/v1/messages/count_tokens" : "/anthropic/v1/messages";
    trace_begin(c);
    if (c->traced || c->rt->cfg->telemetry.access_log)
        audit_capture_client(c);
    if (c->traced)
        span_start(c, &c->sspan,
                   kind == CALL_COUNT_TOKENS ? "POST /anthropic/v1/messages/count_tokens" : "POST /anthropic/v1/messages",
                   WD_SPAN_SERVER, NULL);
    if (w->audit != NULL) {
        if (wd_audit_content() != WD_AUDIT_CONTENT_NONE && (c->resp_md = EVP_MD_CTX_new()) != NULL)
            EVP_DigestInit_ex(c->resp_md, wd_sha256_md(), NULL);
    }
    const struct wd_config *cfg = c->rt->cfg;

    if (header_too_large(req, cfg->max_header_bytes)) {
        static const char big[] = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
                                  "\"request headers exceed the configured limit (limits.max_header_bytes)\"}}";
        c->status = 431;
        wd_respond(req, 431, "application/json", big, sizeof(big) - 1);
        c->final_sent = true;
        return;
    }
    struct wd_span sp;
    if (c->traced)
        span_start(c, &sp, "authenticate", WD_SPAN_INTERNAL, &c->sspan);
    int authed = authenticate(c);
    if (c->traced) {
        wd_span_put_cstr(&sp, "warden.auth.method", "api_key");
        wd_span_put_cstr(&sp, "warden.auth.outcome", authed == 0 ? "success" : "failure");
        if (authed == 0)
            wd_span_put_cstr(&sp, "enduser.id", c->who.subject);
        else
            sp.status = WD_STATUS_ERROR;
        span_end(c, &sp);
    }
    if (authed < 0)
        return;
    const char *body;
    size_t len;
    if (request_body(c, &body, &len) < 0)
        return;
    if (c->audited && wd_audit_content() != WD_AUDIT_CONTENT_NONE) {
        c->dig_pending = true;
        c->dig_p = body;
        c->dig_n = len;
    }
    struct wd_error err = {0};
    if (wd_anthropic_decode_request(body, len, kind == CALL_COUNT_TOKENS, &c->arena, &c->json, &c->creq, &err) < 0) {
        /* the decoder's messages name a field path and a rule, never a value (api/anthropic_request.c) */
        if (err.cls == WD_ERR_INVALID_REQUEST)
            snprintf(c->reason, sizeof(c->reason), "%s", err.msg);
        call_fail(c, err.cls ? err.cls : WD_ERR_API, err.cls ? err.msg : "out of memory");
        return;
    }
    copy_str(c->model_req, sizeof(c->model_req), c->creq.model);
    if (c->traced)
        span_start(c, &sp, "route", WD_SPAN_INTERNAL, &c->sspan);
    int routed = wd_route_resolve(cfg, c->creq.model, &c->route, &err);
    if (c->traced) {
        wd_span_put_cstr(&sp, "gen_ai.request.model", c->model_req);
        if (routed == 0) {
            wd_span_put_cstr(&sp, "warden.route.provider", c->route.provider->name);
            wd_span_put_str(&sp, "warden.route.model", c->route.model.p, c->route.model.n);
        } else {
            sp.status = WD_STATUS_ERROR;
        }
        span_end(c, &sp);
    }
    if (routed < 0) {
        call_fail(c, err.cls, err.msg);
        return;
    }
    copy_str(c->model_res, sizeof(c->model_res), c->route.model);
    const struct wd_provider *p = c->route.provider;
    if (p->type != WD_PROVIDER_GEMINI) {
        call_fail(c, WD_ERR_INVALID_REQUEST, "this provider type is not supported yet");
        return;
    }
    /* Credentials resolve on first use, so Warden starts without them and says what is missing. */
    int klen = -1;
    size_t pick = 0;
    if (p->nkeys > 1) { /* weighted choice; the next keys in order are the fallback for an unset one */
        uint64_t total = 0;
        for (size_t k = 0; k < p->nkeys; k++)
            total += p->keys[k].weight ? p->keys[k].weight : 1;
        uint64_t r = wd_rand_u64() % total;
        for (; pick + 1 < p->nkeys; pick++) {
            uint64_t w = p->keys[pick].weight ? p->keys[pick].weight : 1;
            if (r < w)
                break;
            r -= w;
        }
    }
    for (size_t k = 0; k < p->nkeys && klen <= 0; k++)
        klen = wd_secret_resolve(p->keys[(pick + k) % p->nkeys].secret, c->key, sizeof(c->key));
    if (klen <= 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "provider %s has no usable credential: set %s", p->name,
                 p->nkeys ? p->keys[0].secret : "a key");
        call_fail(c, WD_ERR_UNAVAILABLE, msg);
        return;
    }
    bool count = kind == CALL_COUNT_TOKENS;
    /* The Gemini body is about as long as the Anthropic one (the long strings are copied as they are):
     * one allocation of that size instead of eight doublings from 256 bytes, each copying the last. */
    wd_buf_reserve(&c->upbody, c->json.len + 1024);
    if (wd_gemini_encode_request(&c->creq, c->route.model, count, &c->upbody, &err) < 0) {
        call_fail(c, err.cls, err.msg);
        return;
    }
    for (size_t i = 0; i < c->route.model.n; i++) {
        char ch = c->route.model.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '.' || ch == '_')) {
            call_fail(c, WD_ERR_NOT_FOUND, "model: invalid provider model name");
            return;
        }
    }
    snprintf(c->url, sizeof(c->url), "%s/v1beta/models/%.*s:%s", p->base_url, (int)c->route.model.n,
             c->route.model.p,
             count ? "countTokens" : c->creq.stream ? "streamGenerateContent?alt=sse" : "generateContent");
    c->hdrs[0] = (struct wd_upstream_header){"x-goog-api-key", c->key};
    c->hdrs[1] = (struct wd_upstream_header){"content-type", "application/json"};
    wd_anthropic_out_init(&c->enc, &c->out, c->creq.stream, c->creq.model);
    c->timer = malloc(sizeof(*c->timer));
    if (c->timer == NULL) {
        call_fail(c, WD_ERR_API, "out of memory");
        return;
    }
    uv_timer_init(&w->loop, c->timer);
    c->timer->data = c;
    uv_timer_start(c->timer, on_tick, 1000, 1000);
    int adm = audit_authz(c);
    if (adm != 0) {
        digest_now(c); /* fail_closed: the client may leave while the admission record is written */
        return; /* refused, or waiting for the admission record (on_admitted) */
    }
    if (call_start_upstream(c) < 0)
        call_fail(c, WD_ERR_API, "could not start the provider request");
    else
        digest_defer(c);
}

static void handle_models(h2o_req_t *req, struct wd_worker *w)
{
    const struct wd_config *cfg = w->rt->cfg;
    struct wd_buf b = {0};
    /* The tier and alias map is the deployment's routing: a key is needed, as on the model routes. */
    struct wd_str presented = WD_STR_NULL;
    struct wd_principal who;
    h2o_iovec_t k = find_header(req, H2O_STRLIT("x-api-key"));
    ssize_t ai = k.base != NULL ? -1 : h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (k.base != NULL)
        presented = (struct wd_str){k.base, k.len};
    else if (ai >= 0 && req->headers.entries[ai].value.len > 7 &&
             strncasecmp(req->headers.entries[ai].value.base, "Bearer ", 7) == 0)
        presented = (struct wd_str){req->headers.entries[ai].value.base + 7, req->headers.entries[ai].value.len - 7};
    if (presented.n == 0 || wd_auth_check(&w->rt->auth, presented, &who) != 0) {
        static const char m1[] = "missing API key: send x-api-key or Authorization: Bearer", m2[] = "invalid API key";
        wd_anthropic_write_error(&b, WD_ERR_AUTHENTICATION, presented.n ? m2 : m1,
                                 presented.n ? sizeof(m2) - 1 : sizeof(m1) - 1);
        wd_respond(req, wd_anthropic_error_status(WD_ERR_AUTHENTICATION), "application/json", b.p ? b.p : "", b.n);
        wd_buf_free(&b);
        return;
    }
    wd_buf_puts(&b, "{\"data\":[");
    const char *names[3] = {"claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"};
    const char *targets[3] = {cfg->tier_opus, cfg->tier_sonnet, cfg->tier_haiku};
    int n = 0;
    for (int i = 0; i < 3; i++) {
        if (targets[i] == NULL)
            continue;
        wd_buf_puts(&b, n++ ? ",{\"type\":\"model\",\"id\":" : "{\"type\":\"model\",\"id\":");
        wd_json_put_string(&b, names[i], strlen(names[i]));
        wd_buf_puts(&b, ",\"display_name\":");
        wd_json_put_string(&b, targets[i], strlen(targets[i]));
        wd_buf_puts(&b, ",\"created_at\":\"2025-01-01T00:00:00Z\"}");
    }
    for (size_t i = 0; i < cfg->naliases; i++) {
        wd_buf_puts(&b, n++ ? ",{\"type\":\"model\",\"id\":" : "{\"type\":\"model\",\"id\":");
        wd_json_put_string(&b, cfg->aliases[i].name, strlen(cfg->aliases[i].name));
        wd_buf_puts(&b, ",\"display_name\":");
        wd_json_put_string(&b, cfg->aliases[i].target, strlen(cfg->aliases[i].target));
        wd_buf_puts(&b, ",\"created_at\":\"2025-01-01T00:00:00Z\"}");
    }
    wd_buf_puts(&b, "],\"has_more\":false,\"first_id\":null,\"last_id\":null}");
    wd_respond(req, 200, "application/json", b.p, b.n);
    wd_buf_free(&b);
}

int wd_anthropic_route(h2o_req_t *req, struct wd_worker *w)
{
    h2o_iovec_t path = req->path_normalized;
    static const char prefix[] = "/anthropic";
    if (path.len < sizeof(prefix) - 1 || memcmp(path.base, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    h2o_iovec_t rest = h2o_iovec_init(path.base + sizeof(prefix) - 1, path.len - (sizeof(prefix) - 1));
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (w->draining) {
        static const char busy[] =
            "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"server is shutting down\"}}";
        wd_respond(req, 503, "application/json", busy, sizeof(busy) - 1);
        return 0;
    }
    if (h2o_memis(rest.base, rest.len, H2O_STRLIT("/v1/messages")) && post) {
        handle_call(req, w, CALL_MESSAGES);
    } else if (h2o_memis(rest.base, rest.len, H2O_STRLIT("/v1/messages/count_tokens")) && post) {
        handle_call(req, w, CALL_COUNT_TOKENS);
    } else if (h2o_memis(rest.base, rest.len, H2O_STRLIT("/v1/models")) && get) {
        handle_models(req, w);
    } else if (h2o_memis(rest.base, rest.len, H2O_STRLIT("/api/hello")) && (head || get)) {
        /* Claude Code's connectivity probe: says only that the server is up */
        wd_respond(req, 200, "application/json", "{}", 2);
    } else {
        static const char nf[] =
            "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"no such route\"}}";
        wd_respond(req, 404, "application/json", nf, sizeof(nf) - 1);
    }
    return 0;
}
