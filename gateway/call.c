/* The call lifecycle: one wd_call per request from the handler to the request's disposal. Authenticate, decode
 * with the inbound API's table, resolve the plan (router/), then attempts against the plan's targets through each
 * provider's table, retrying and falling back on retryable failures until the first byte reaches the client;
 * the answer is encoded back (or relayed when the provider speaks the client's API). Observers hear every step. */
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "authz/oidc.h"
#include "authz/rbac.h"
#include "authz/signin.h"
#include "gateway/call.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/log.h"

#define PING_INTERVAL_MS 10000
#define ERROR_BODY_MAX (64 * 1024)
#define BUDGET_WINDOW_MS 10000

/* ---- observers ---- */

static const struct wd_call_observer *observers[8];
static size_t nobservers;

void wd_gateway_add_observer(const struct wd_call_observer *o)
{
    if (nobservers < sizeof(observers) / sizeof(observers[0]))
        observers[nobservers++] = o;
}

static void notify(struct wd_call *c, enum wd_call_ev ev)
{
    for (size_t i = 0; i < nobservers; i++)
        if (observers[i]->on_event != NULL)
            observers[i]->on_event(c, ev);
}

static void tap_bytes(struct wd_call *c, const char *p, size_t n)
{
    for (size_t i = 0; i < nobservers; i++)
        if (observers[i]->on_bytes != NULL)
            observers[i]->on_bytes(c, p, n);
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

const char *wd_call_error_name(enum wd_error_class cls)
{
    return (size_t)cls < sizeof(error_names) / sizeof(error_names[0]) ? error_names[cls] : "api";
}

const char *wd_call_stop_name(enum wd_stop_reason r)
{
    return (size_t)r < sizeof(stop_names) / sizeof(stop_names[0]) ? stop_names[r] : NULL;
}

static void call_flush(struct wd_call *c);
static int attempt_start(struct wd_call *c);

/* ---- the request digest (audit.content hash/full), put off until the provider request has left ---- */

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
    struct wd_gateway *g = c->g;
    c->dig_next = g->digest_first;
    if (c->dig_next != NULL)
        c->dig_next->dig_prevp = &c->dig_next;
    c->dig_prevp = &g->digest_first;
    g->digest_first = c;
}

void wd_gateway_idle(struct wd_gateway *g)
{
    while (g->digest_first != NULL)
        digest_now(g->digest_first);
}

/* ---- the retry budget ---- */

static void budget_roll(struct wd_retry_budget *b, uint64_t now)
{
    if (now - b->window_start_ms < BUDGET_WINDOW_MS)
        return;
    bool adjacent = now - b->window_start_ms < 2 * BUDGET_WINDOW_MS;
    b->prev_requests = adjacent ? b->requests : 0;
    b->prev_retries = adjacent ? b->retries : 0;
    b->requests = b->retries = 0;
    b->window_start_ms = now - (now - b->window_start_ms) % BUDGET_WINDOW_MS;
}

static bool budget_take(struct wd_call *c)
{
    struct wd_retry_budget *b = &c->g->budget;
    const struct wd_routing_config *r = &c->rt->cfg->routing;
    uint64_t now = uv_now(c->g->loop);
    budget_roll(b, now);
    double left = 1.0 - (double)(now - b->window_start_ms) / BUDGET_WINDOW_MS;
    double reqs = b->requests + b->prev_requests * left;
    double used = b->retries + b->prev_retries * left;
    if (used + 1 > r->retry_budget_min + r->retry_budget * reqs)
        return false;
    b->retries++;
    return true;
}

/* ---- I/O teardown ---- */

static void timer_closed(uv_handle_t *h) { free(h); }

static void close_timer(uv_timer_t **t)
{
    if (*t == NULL)
        return;
    uv_timer_stop(*t);
    uv_close((uv_handle_t *)*t, timer_closed);
    *t = NULL;
}

static void call_stop_io(struct wd_call *c)
{
    if (c->xfer != NULL) {
        wd_upstream_cancel(c->xfer);
        c->xfer = NULL;
    }
    c->ticking = false;
    close_timer(&c->retry_timer);
    close_timer(&c->auth_timer);
    close_timer(&c->gov_timer);
}

h2o_iovec_t wd_call_header(struct wd_call *c, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&c->req->headers, name, len, -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : c->req->headers.entries[i].value;
}

/* Dotted decimal by hand: glibc's inet_ntop formats an IPv4 address with sprintf, which cost more instructions
 * than a span. out has room for 16 bytes. */
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

void wd_call_capture_client(struct wd_call *c)
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
    h2o_iovec_t ua = wd_call_header(c, H2O_STRLIT("user-agent"));
    if (ua.base != NULL)
        wd_str_copy(c->ua, sizeof(c->ua), (struct wd_str){ua.base, ua.len});
}

/* ---- disposal ---- */

/* Zeroed state of n bytes: in the call's own storage when it fits, else allocated. */
static void *state_mem(unsigned char *inline_mem, size_t n)
{
    if (n <= WD_CALL_INLINE_STATE) {
        memset(inline_mem, 0, n);
        return inline_mem;
    }
    return calloc(1, n);
}

static void dec_release(struct wd_call *c)
{
    if (c->dec != NULL) {
        c->dec_ops->dec_free(c->dec);
        if (c->dec != (void *)c->dec_mem)
            free(c->dec);
        c->dec = NULL;
    }
    if (c->watch != NULL) {
        if (c->dec_ops->watch_free != NULL)
            c->dec_ops->watch_free(c->watch);
        if (c->watch != (void *)c->dec_mem)
            free(c->watch);
        c->watch = NULL;
    }
}

static void attempt_end(struct wd_call *c, enum wd_attempt_outcome o, enum wd_error_class cls, bool retryable);

static struct wd_gov_cost gov_actual(struct wd_call *c);

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
    c->holding = false;
    if (c->key_waiting) {
        wd_secret_wait_cancel(&c->key_wait);
        c->key_waiting = false;
    }
    if (c->nattempts > 0 && c->attempt[c->nattempts - 1].outcome == WD_AO_PENDING)
        attempt_end(c, WD_AO_CANCELLED, WD_ERR_NONE, false);
    if (c->dig_pending) {
        /* ended before its provider request left (the connection closed under it): the body may be gone */
        c->dig_pending = false;
        digest_unlink(c);
        char f[64];
        snprintf(f, sizeof(f), "\"request_id\":\"%s\"", c->rid);
        wd_logf(WD_LOG_WARN, f, "audit: the call ended before its request body's digest was computed");
    }
    if (c->gov_admitted) {
        struct wd_gov_cost used = gov_actual(c);
        wd_gov_settle(&c->gov, &used);
        c->gov_admitted = false;
    }
    notify(c, WD_CALL_EV_DONE);
    EVP_MD_CTX_free(c->resp_md);
    wd_buf_free(&c->resp_copy);
    wd_buf_free(&c->req_copy);
    dec_release(c);
    if (c->stop_live)
        wd_stop_filter_free(&c->stop);
    if (c->enc != NULL) {
        c->api->enc_free(c->enc);
        if (c->enc != (void *)c->enc_mem)
            free(c->enc);
    }
    wd_sse_free(&c->sse);
    wd_json_free(&c->json);
    wd_arena_free(&c->arena);
    wd_buf_free(&c->inflated);
    wd_buf_free(&c->upbody);
    wd_buf_free(&c->errbody);
    wd_buf_free(&c->relay_hold);
    wd_buf_free(&c->out);
    wd_buf_free(&c->sending);
    OPENSSL_cleanse(c->key, strnlen(c->key, sizeof(c->key))); /* the credential, not the whole 8 KiB */
    if (c->wire.bearer[0] != '\0')
        OPENSSL_cleanse(c->wire.bearer, strnlen(c->wire.bearer, sizeof(c->wire.bearer)));
    c->g->inflight--;
    wd_runtime_release(c->rt);
}

/* ---- the call's memory ----
 * A call is tens of kilobytes (the credential and header buffers): a worker keeps the memory of a few ended
 * calls for its next ones instead of going to malloc for every request. The request's pool holds a pointer to
 * it, whose disposal ends the call. Sanitizer builds always free, so that a use after the end is still caught. */

#if defined(__SANITIZE_ADDRESS__)
#define CALL_SPARES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CALL_SPARES 0
#endif
#endif
#ifndef CALL_SPARES
#define CALL_SPARES 16
#endif

struct call_ref {
    struct wd_call *c;
};

static void call_release(void *p)
{
    struct wd_call *c = ((struct call_ref *)p)->c;
    struct wd_gateway *g = c->g;
    call_dispose(c);
    if (g->nspare < CALL_SPARES) {
        *(struct wd_call **)c = g->spare; /* the first word links the spares */
        g->spare = c;
        g->nspare++;
    } else {
        free(c);
    }
}

static struct wd_call *call_new(h2o_req_t *req, struct wd_gateway *g)
{
    struct wd_call *c = g->spare;
    if (c != NULL) {
        g->spare = *(struct wd_call **)c;
        g->nspare--;
    } else if ((c = malloc(sizeof(*c))) == NULL) {
        return NULL;
    }
    struct call_ref *ref = h2o_mem_alloc_shared(&req->pool, sizeof(*ref), call_release);
    ref->c = c;
    return c;
}

/* ---- answering ---- */

static void add_header(h2o_req_t *req, const h2o_token_t *tok, const char *v)
{
    h2o_add_header(&req->pool, &req->res.headers, tok, NULL, v, strlen(v));
}

/* x-should-retry: false, which the Anthropic SDKs (and so Claude Code) honour before their own retry rules. */
static void no_retry(struct wd_call *c)
{
    h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, H2O_STRLIT("x-should-retry"), 0, NULL, H2O_STRLIT("false"));
}

static void add_retry_after(struct wd_call *c, long s)
{
    char ra[24];
    int n = snprintf(ra, sizeof(ra), "%ld", s);
    h2o_req_t *req = c->req;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, ra, (size_t)n).base,
                   (size_t)n);
}

/* ---- the answer's end, held until its records are durable (audit.durable_answers) ---- */

static void ticker_need(struct wd_gateway *g);

/* The answer's last bytes are ready (tapped, in `sending`): 1 when an observer holds them. */
static bool seal(struct wd_call *c)
{
    if (c->cut)
        return false; /* nobody to answer: the records are written at disposal */
    for (size_t i = 0; i < nobservers; i++)
        if (observers[i]->seal != NULL && observers[i]->seal(c) == 1) {
            c->holding = true;
            c->ticking = true; /* the ticker enforces hold_until_ms */
            ticker_need(c->g);
            return true;
        }
    return false;
}

/* Every answer of a call carries Warden's request id, the audit records' request_id: what a user quotes is what
 * an operator looks up. */
static void add_request_id(struct wd_call *c)
{
    h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, H2O_STRLIT("request-id"), 0, NULL, c->rid,
                          strlen(c->rid));
}

static void hold_release(struct wd_call *c)
{
    c->holding = false;
    c->ticking = false;
    if (c->hold_whole) {
        wd_respond(c->req, c->hold_status, c->hold_ct, c->sending.p ? c->sending.p : "", c->sending.n);
        return;
    }
    h2o_iovec_t v = h2o_iovec_init(c->sending.p, c->sending.n);
    c->in_flight = true;
    c->last_write_ms = uv_now(c->g->loop);
    h2o_send(c->req, &v, 1, H2O_SEND_STATE_FINAL);
}

void wd_call_seal_done(struct wd_call *c, int ok)
{
    (void)ok; /* counted by the observer */
    if (c->holding && !c->disposed)
        hold_release(c);
}

static void respond_whole(struct wd_call *c, int status, const char *ct, const char *body, size_t len)
{
    add_request_id(c);
    digest_now(c);
    c->status = status;
    tap_bytes(c, body, len);
    c->final_sent = true;
    call_stop_io(c);
    if (seal(c)) {
        c->sending.n = 0;
        wd_buf_put(&c->sending, body, len);
        c->hold_whole = true;
        c->hold_status = status;
        c->hold_ct = ct;
        if (!c->sending.oom)
            return;
        c->holding = false; /* no room to keep it: it goes now */
        c->ticking = false;
    }
    wd_respond(c->req, status, ct, body, len);
}

/* A complete error response in the inbound API's shape (before anything was committed). */
static void call_fail(struct wd_call *c, enum wd_error_class cls, const char *msg)
{
    struct wd_buf b = {0};
    c->api->write_error(&b, cls, msg, strlen(msg));
    if (cls == WD_ERR_RATE_LIMIT && c->retry_after >= 0)
        add_retry_after(c, c->retry_after);
    if (cls == WD_ERR_OVERLOADED || cls == WD_ERR_UNAVAILABLE)
        add_header(c->req, H2O_TOKEN_RETRY_AFTER, "1");
    c->err = cls;
    respond_whole(c, c->shutdown ? 503 : c->api->error_status(cls), "application/json", b.p ? b.p : "", b.n);
    wd_buf_free(&b);
}

/* Relay: the provider's own error answer goes to the client unmodified (status and body); Claude Code's
 * recovery matches on its wording. */
static void relay_error(struct wd_call *c, enum wd_error_class cls)
{
    if (c->retry_after >= 0)
        add_retry_after(c, c->retry_after);
    c->err = cls;
    respond_whole(c, c->up_status, c->up_ct[0] ? c->up_ct : "application/json", c->errbody.p ? c->errbody.p : "",
                  c->errbody.n);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct wd_call *c = H2O_STRUCT_FROM_MEMBER(struct wd_call, gen, gen);
    c->in_flight = false;
    c->sending.n = 0;
    call_flush(c);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    /* the client went away mid-response */
    struct wd_call *c = H2O_STRUCT_FROM_MEMBER(struct wd_call, gen, gen);
    if (!c->final_sent || c->in_flight || c->holding)
        c->cut = true;
    c->holding = false; /* nothing more goes to a stream h2o has closed */
    call_stop_io(c);
}

static void out_state(struct wd_call *c, struct wd_inbound_out_state *st)
{
    c->api->enc_state(c->enc, st);
}

static void call_commit(struct wd_call *c, int status, const char *ct)
{
    if (c->committed)
        return;
    c->committed = true;
    c->status = status;
    digest_now(c);
    c->ttfb_us = wd_now_us() - c->t0_us;
    h2o_req_t *req = c->req;
    req->res.status = status;
    req->res.reason = wd_http_reason(status);
    add_header(req, H2O_TOKEN_CONTENT_TYPE, ct);
    if (c->stream)
        add_header(req, H2O_TOKEN_CACHE_CONTROL, "no-cache");
    add_request_id(c);
    c->gen.proceed = on_proceed;
    c->gen.stop = on_stop;
    notify(c, WD_CALL_EV_COMMIT);
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
        tap_bytes(c, c->sending.p, c->sending.n);
    if (c->finished) {
        c->final_sent = true;
        if (c->xfer != NULL) /* the answer ended before its transfer did (an error event after the commit) */
            attempt_end(c, WD_AO_OK, c->err, false);
        call_stop_io(c);
        if (seal(c))
            return; /* `sending` keeps the last bytes until hold_release */
    }
    c->in_flight = true;
    c->last_write_ms = uv_now(c->g->loop);
    h2o_send(c->req, &v, 1, c->final_sent ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* ---- attempts: outcome, retry, fallback ---- */

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

static void attempt_end(struct wd_call *c, enum wd_attempt_outcome o, enum wd_error_class cls, bool retryable)
{
    if (c->nattempts == 0)
        return;
    struct wd_call_attempt *a = &c->attempt[c->nattempts - 1];
    if (a->outcome != WD_AO_PENDING)
        return;
    a->outcome = o;
    a->status = c->up_status;
    a->cls = cls;
    a->retryable = retryable;
    a->retry_after_s = c->retry_after;
    a->end_us = wd_now_us();
    notify(c, WD_CALL_EV_ATTEMPT_END);
}

static void gate_emit(struct wd_sink *s, const struct wd_event *ev);

/* After the commit: an error event after what the client already has, and the end of the answer. */
static void end_after_commit(struct wd_call *c, enum wd_error_class cls, const char *msg)
{
    c->err = cls;
    c->batching = false;
    if (c->relay) {
        c->relay_hold.n = 0; /* an incomplete event is never sent */
        c->api->write_stream_error(&c->out, cls, msg, strlen(msg));
        c->finished = true;
        call_flush(c);
        return;
    }
    c->dec_failed = true;
    struct wd_event ev = {.type = WD_EV_ERROR, .error_class = cls, .message = {msg, strlen(msg)}};
    gate_emit(&c->sink, &ev);
}

static void retry_fire(uv_timer_t *t)
{
    struct wd_call *c = t->data;
    close_timer(&c->retry_timer);
    if (c->final_sent || c->disposed)
        return;
    if (attempt_start(c) < 0)
        call_fail(c, WD_ERR_API, "could not start the provider request");
}

/* A failed attempt before anything reached the client: try again (the same target after a jittered backoff, or
 * the next target at once), or give the client the failure. `msg` is for a client of another family; a relay
 * answer goes as the provider sent it. `resend`: the request may go again at once (a dead kept-alive connection,
 * a malformed answer), once per call, outside the budget. */
static void attempt_failed(struct wd_call *c, enum wd_attempt_outcome o, enum wd_error_class cls, const char *msg,
                           bool retryable, bool resend, bool relay_body)
{
    const struct wd_routing_config *r = &c->rt->cfg->routing;
    struct wd_call_attempt *a = c->nattempts > 0 ? &c->attempt[c->nattempts - 1] : NULL;
    if (c->final_sent || c->disposed)
        return;
    if (c->xfer != NULL) {
        wd_upstream_cancel(c->xfer);
        c->xfer = NULL;
    }
    if (c->committed) {
        /* the client has the start of an answer: nothing is retried, the stream ends with an error event */
        attempt_end(c, o, cls, false);
        end_after_commit(c, cls, msg);
        return;
    }
    if (resend && c->resend_left > 0 && !c->shutdown) {
        c->resend_left--;
        if (a != NULL && a->outcome == WD_AO_PENDING)
            a->next = "retry";
        attempt_end(c, o, cls, true);
        if (attempt_start(c) == 0)
            return;
    }
    bool same = retryable && c->target_attempts < r->attempts_per_target;
    uint64_t wait_ms = 0;
    if (same) {
        unsigned k = c->target_attempts; /* 1 after the first attempt */
        uint64_t cap = (uint64_t)r->backoff_ms << (k - 1 < 16 ? k - 1 : 16);
        if (cap > r->max_backoff_ms)
            cap = r->max_backoff_ms;
        wait_ms = cap ? wd_rand_u64() % (cap + 1) : 0; /* full jitter */
        if (c->retry_after >= 0) {
            uint64_t ra = (uint64_t)c->retry_after > r->max_retry_after_ms / 1000 + 1 ? UINT64_MAX
                                                                                    : (uint64_t)c->retry_after * 1000;
            if (ra > r->max_retry_after_ms) {
                same = false; /* the provider asks for longer than Warden waits: the next target instead */
                wait_ms = 0;  /* at once, as every move to a next target */
            } else if (ra > wait_ms)
                wait_ms = ra;
        }
    }
    bool next = retryable && !same && c->ti + 1 < c->plan.n;
    if ((same || next) && !c->shutdown && budget_take(c)) {
        if (a != NULL && a->outcome == WD_AO_PENDING)
            a->next = same ? "retry" : "fallback";
        attempt_end(c, o, cls, true);
        if (next) {
            c->ti++;
            c->fallbacks++;
            c->target_attempts = 0;
            c->upbody_for_ti = false;
        }
        if (wait_ms == 0) {
            if (attempt_start(c) < 0)
                call_fail(c, WD_ERR_API, "could not start the provider request");
            return;
        }
        c->retry_timer = malloc(sizeof(*c->retry_timer));
        if (c->retry_timer != NULL) {
            uv_timer_init(c->g->loop, c->retry_timer);
            c->retry_timer->data = c;
            uv_timer_start(c->retry_timer, retry_fire, wait_ms, 0);
            return;
        }
        call_fail(c, WD_ERR_API, "out of memory");
        return;
    }
    attempt_end(c, o, cls, retryable);
    if (relay_body && c->relay) {
        relay_error(c, cls);
        return;
    }
    call_fail(c, cls, msg);
}

static bool status_retryable(int s)
{
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504 || s == 529;
}

/* Events from the provider decoder pass here first: an error before anything was committed is an attempt's
 * failure (retried or answered as a plain HTTP error); after that, errors go to the client in the stream. */
static void gate_emit(struct wd_sink *s, const struct wd_event *ev)
{
    struct wd_call *c = H2O_STRUCT_FROM_MEMBER(struct wd_call, sink, s);
    if (ev->type == WD_EV_ERROR && !c->committed) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%.*s", (int)ev->message.n, ev->message.p);
        c->dec_failed = true;
        /* an empty or malformed answer (nothing was emitted) is worth another attempt */
        bool again = ev->retryable || ev->error_class == WD_ERR_BAD_GATEWAY || ev->error_class == WD_ERR_OVERLOADED;
        if (c->shutdown || ev->error_class == WD_ERR_TIMEOUT)
            again = false;
        /* outcomes follow the HTTP exchange (a 2xx whose content was unusable is "ok" with a class) */
        attempt_failed(c, c->up_status == 200 ? WD_AO_OK : c->up_status > 0 ? WD_AO_HTTP_ERROR : WD_AO_TRANSPORT,
                       ev->error_class, msg, again, ev->retryable, false);
        return;
    }
    if (ev->type == WD_EV_MESSAGE_STOP) {
        c->stop_reason = ev->stop_reason;
        c->usage = ev->usage;
    } else if (ev->type == WD_EV_MESSAGE_START && ev->usage.input_tokens) {
        c->usage = ev->usage;
    } else if (ev->type == WD_EV_ERROR) {
        c->err = ev->error_class;
        c->dec_failed = true;
    }
    c->enc_sink->emit(c->enc_sink, ev);
    struct wd_inbound_out_state st;
    out_state(c, &st);
    if (st.stream)
        call_commit(c, 200, "text/event-stream");
    if (st.finished) {
        if (!st.stream && st.failed) {
            call_fail(c, st.error.cls, st.error.msg);
            return;
        }
        if (!st.stream) {
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
    if (c->dec_failed)
        return -1;
    unsigned gen = c->attempt_gen;
    c->pops->dec_chunk(c->dec, data, len);
    if (c->attempt_gen != gen)
        return -1; /* the answer failed and another attempt started */
    if (c->stop_live && c->stop.stopped && c->xfer != NULL) {
        /* a stop sequence ended the answer: the rest of the generation is not wanted (the attempt succeeded) */
        wd_upstream_cancel(c->xfer);
        c->xfer = NULL;
        attempt_end(c, WD_AO_OK, WD_ERR_NONE, false);
    }
    return c->final_sent || c->xfer == NULL ? -1 : 0;
}

static int on_relay_event(void *ctx, const char *data, size_t len)
{
    struct wd_call *c = ctx;
    c->pops->watch(c->watch, data, len);
    return 0;
}

/* The end of the last complete event in p[0..n), or 0. */
static size_t event_boundary(const char *p, size_t n, size_t from)
{
    for (size_t i = n; i >= 2 && i > from; i--) {
        if (p[i - 1] == '\n' && (p[i - 2] == '\n' || (i >= 3 && p[i - 2] == '\r' && p[i - 3] == '\n')))
            return i;
        if (p[i - 1] == '\r' && p[i - 2] == '\r')
            return i;
    }
    return 0;
}

static void up_response(void *ctx, int status, long retry_after, const char *ct)
{
    struct wd_call *c = ctx;
    c->up_status = status;
    c->retry_after = retry_after;
    wd_cstr_copy(c->up_ct, sizeof(c->up_ct), ct ? ct : "");
}

static void relay_data(struct wd_call *c, const char *p, size_t n)
{
    c->batching = true;
    if (wd_sse_feed(&c->sse, p, n, on_relay_event, c) < 0) {
        attempt_failed(c, WD_AO_TRANSPORT, WD_ERR_BAD_GATEWAY, "provider sent a malformed stream", true, false, false);
        return;
    }
    if (!c->committed) {
        c->pops->watch_result(c->watch, &c->relay_res);
        if (c->relay_res.error != WD_ERR_NONE) {
            /* an error event before anything reached the client: an attempt's failure like an error status;
             * when it is not retried, the client gets the provider's events as they came */
            enum wd_error_class e = c->relay_res.error;
            bool again = e == WD_ERR_OVERLOADED || e == WD_ERR_API || e == WD_ERR_RATE_LIMIT ||
                         e == WD_ERR_UNAVAILABLE || e == WD_ERR_TIMEOUT || e == WD_ERR_BAD_GATEWAY;
            c->errbody.n = 0;
            wd_buf_put(&c->errbody, c->relay_hold.p, c->relay_hold.n);
            wd_buf_put(&c->errbody, p, n);
            if (c->up_ct[0] == '\0')
                snprintf(c->up_ct, sizeof(c->up_ct), "text/event-stream");
            attempt_failed(c, WD_AO_OK, e, "the provider reported an error", again, false, true);
            return;
        }
    }
    size_t b;
    if (c->relay_hold.n == 0 && n >= 3) {
        /* nothing held: the complete events go out from the provider's bytes, only a tail is kept */
        b = event_boundary(p, n, 0);
        wd_buf_put(&c->out, p, b);
        wd_buf_put(&c->relay_hold, p + b, n - b);
    } else {
        size_t held = c->relay_hold.n;
        wd_buf_put(&c->relay_hold, p, n);
        /* only the new bytes (and the three before them, where a blank line may have begun) can end an event */
        b = event_boundary(c->relay_hold.p, c->relay_hold.n, held > 3 ? held - 3 : 0);
        if (b > 0) {
            wd_buf_put(&c->out, c->relay_hold.p, b);
            memmove(c->relay_hold.p, c->relay_hold.p + b, c->relay_hold.n - b);
            c->relay_hold.n -= b;
        }
    }
    if (b > 0)
        call_commit(c, 200, c->up_ct[0] ? c->up_ct : "text/event-stream");
}

static void up_data(void *ctx, const char *p, size_t n)
{
    struct wd_call *c = ctx;
    if (c->final_sent)
        return;
    if (!c->first_token_seen && c->up_status == 200 && c->route_def->kind == WD_ROUTE_GENERATE) {
        c->first_token_seen = true;
        if (c->uspan_live)
            wd_span_add_event(&c->uspan, "gen_ai.first_token", wd_now_ns());
    }
    if (c->up_status != 200 || !c->wire.sse) {
        /* whole bodies: errors, counts, non-streamed messages; the upstream module stops a whole body at
         * limits.max_response_bytes; of an error, only the start is kept */
        size_t cap = c->up_status != 200 ? ERROR_BODY_MAX : c->rt->cfg->max_response_bytes;
        if (c->errbody_full || c->errbody.n + n > cap)
            c->errbody_full = true; /* the start is kept whole, never a body with holes */
        else
            wd_buf_put(&c->errbody, p, n);
        return;
    }
    unsigned gen = c->attempt_gen;
    if (c->relay) {
        relay_data(c, p, n);
    } else {
        /* every event of one pass through curl leaves in one write: up_flush or up_done writes it */
        c->batching = true;
        int r = wd_sse_feed(&c->sse, p, n, on_sse_event, c);
        /* a failed answer that already started another attempt stops the feed too: that attempt is not
         * this stream's to fail */
        if (r < 0 && c->attempt_gen == gen && !c->final_sent && !c->dec_failed && c->xfer != NULL) {
            struct wd_event ev = {.type = WD_EV_ERROR, .error_class = WD_ERR_BAD_GATEWAY,
                                  .message = WD_STR("provider sent a malformed stream")};
            gate_emit(&c->sink, &ev);
        }
    }
    if (c->attempt_gen != gen) {
        c->batching = false; /* this transfer failed and another attempt owns the call now */
        return;
    }
    if (c->xfer == NULL || c->finished || c->final_sent) {
        /* cancelled (a stop sequence, a retry) or ended here: no later callback of this transfer */
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

static void relay_done(struct wd_call *c)
{
    if (c->wire.sse) {
        c->pops->watch_result(c->watch, &c->relay_res);
        c->usage = c->relay_res.usage;
        c->stop_reason = c->relay_res.stop_reason;
        if (c->relay_res.error != WD_ERR_NONE)
            c->err = c->relay_res.error;
        if (!c->relay_res.done && c->relay_res.error == WD_ERR_NONE) {
            if (!c->committed) {
                attempt_failed(c, WD_AO_TRANSPORT, WD_ERR_BAD_GATEWAY, "provider stream ended early", true, false, false);
                return;
            }
            /* cut after the first byte: the client gets an error event after what it already has */
            c->err = WD_ERR_BAD_GATEWAY;
            c->relay_hold.n = 0;
            c->api->write_stream_error(&c->out, WD_ERR_BAD_GATEWAY, "provider stream ended early",
                                       sizeof("provider stream ended early") - 1);
        } else if (c->relay_hold.n > 0) {
            wd_buf_put(&c->out, c->relay_hold.p, c->relay_hold.n);
            c->relay_hold.n = 0;
        }
        attempt_end(c, WD_AO_OK, WD_ERR_NONE, false);
        call_commit(c, 200, c->up_ct[0] ? c->up_ct : "text/event-stream");
        c->finished = true;
        call_flush(c);
        return;
    }
    /* a whole answer (message or count) goes back as the provider sent it */
    if (c->route_def->kind == WD_ROUTE_COUNT_TOKENS) {
        int64_t n;
        if (c->pops->count_tokens(c->errbody.p ? c->errbody.p : "", c->errbody.n, &n) == 0)
            c->usage.input_tokens = n;
    } else {
        c->pops->watch(c->watch, c->errbody.p ? c->errbody.p : "", c->errbody.n);
        c->pops->watch_result(c->watch, &c->relay_res);
        if (!c->relay_res.done) {
            attempt_failed(c, WD_AO_OK, WD_ERR_BAD_GATEWAY, "provider sent a malformed answer", true, false, false);
            return;
        }
        c->usage = c->relay_res.usage;
        c->stop_reason = c->relay_res.stop_reason;
    }
    attempt_end(c, WD_AO_OK, WD_ERR_NONE, false);
    respond_whole(c, 200, c->up_ct[0] ? c->up_ct : "application/json", c->errbody.p ? c->errbody.p : "", c->errbody.n);
}

static void up_done(void *ctx, enum wd_upstream_result res, const char *detail)
{
    struct wd_call *c = ctx;
    c->xfer = NULL;
    c->batching = false;
    if (c->final_sent) {
        attempt_end(c, res == WD_UP_OK ? WD_AO_OK : WD_AO_CANCELLED, WD_ERR_NONE, false);
        return;
    }
    if (res != WD_UP_OK) {
        char f[160];
        snprintf(f, sizeof(f), "\"request_id\":\"%s\",\"trace_id\":\"%s\",\"provider\":\"%s\"", c->rid, c->trace_id,
                 c->route.provider->name);
        wd_logf(WD_LOG_WARN, f, "upstream request failed: %s", detail ? detail : "");
        enum wd_error_class cls = transport_class(res);
        enum wd_attempt_outcome o = cls == WD_ERR_TIMEOUT ? WD_AO_TIMEOUT : WD_AO_TRANSPORT;
        /* after the first byte nothing is retried: attempt_failed ends the stream with an error event */
        /* A kept-alive connection that died before any answer byte: curl's silent re-send was refused
         * (net/upstream.h); the request goes again at once on a new connection, as one more counted attempt. */
        c->fresh_conn = res == WD_UP_ERR_RESEND;
        /* A cut before the commit left the client nothing: a 200 cut short is an empty or malformed answer, a
         * retryable status cut short is still that status; both may go to the next attempt. */
        bool cut_early = res == WD_UP_ERR_TRANSFER &&
                         (c->up_status == 0 || c->up_status == 200 || status_retryable(c->up_status));
        bool again = res == WD_UP_ERR_CONNECT || res == WD_UP_ERR_CONNECT_TIMEOUT ||
                     res == WD_UP_ERR_FIRST_BYTE_TIMEOUT || res == WD_UP_ERR_RESEND || cut_early;
        attempt_failed(c, o, cls, transport_message(res), again && !c->shutdown, res == WD_UP_ERR_RESEND, false);
        return;
    }
    if (c->up_status < 200 || (c->up_status > 200 && c->up_status < 400)) {
        /* Warden follows no redirect and expects no other success: the provider's answer is unusable */
        char msg[96];
        snprintf(msg, sizeof(msg), "the provider answered with an unexpected HTTP %d", c->up_status);
        attempt_failed(c, WD_AO_HTTP_ERROR, WD_ERR_BAD_GATEWAY, msg, false, false, false);
        return;
    }
    if (c->up_status != 200) {
        struct wd_error e = {0};
        c->pops->map_error(c->up_status, c->errbody.p ? c->errbody.p : "", c->errbody.n, &e);
        if ((c->up_status == 401 || c->up_status == 403 || e.credential_refused) && c->key_ref != NULL) {
            /* the next request gets a fresh value if the reference now holds another (a rotated key) */
            wd_secret_invalidate(c->key_ref);
            wd_logf(WD_LOG_WARN, "", "provider %s refused its credential (HTTP %d); %s is fetched again",
                    c->route.provider->name, c->up_status, c->key_ref);
        }
        attempt_failed(c, WD_AO_HTTP_ERROR, e.cls, e.msg, status_retryable(c->up_status), false, true);
        return;
    }
    if (c->relay) {
        relay_done(c);
        return;
    }
    if (c->route_def->kind == WD_ROUTE_COUNT_TOKENS) {
        int64_t n;
        if (c->pops->count_tokens(c->errbody.p ? c->errbody.p : "", c->errbody.n, &n) < 0) {
            attempt_failed(c, WD_AO_OK, WD_ERR_BAD_GATEWAY, "provider sent a malformed countTokens response", true,
                           false, false);
            return;
        }
        attempt_end(c, WD_AO_OK, WD_ERR_NONE, false);
        struct wd_buf b = {0};
        c->api->write_count(&b, n);
        c->usage.input_tokens = n;
        respond_whole(c, 200, "application/json", b.p ? b.p : "", b.n);
        wd_buf_free(&b);
        return;
    }
    int nat = c->attempts;
    if (!c->wire.sse) {
        c->pops->dec_chunk(c->dec, c->errbody.p ? c->errbody.p : "", c->errbody.n);
    } else if (wd_sse_pending(&c->sse) && !c->dec_failed) {
        struct wd_event ev = {.type = WD_EV_ERROR, .error_class = WD_ERR_BAD_GATEWAY,
                              .message = WD_STR("provider stream ended mid-event")};
        gate_emit(&c->sink, &ev);
        if (c->attempts == nat)
            attempt_end(c, WD_AO_OK, WD_ERR_BAD_GATEWAY, false);
        return;
    }
    if (c->attempts != nat || c->final_sent)
        return; /* the answer was an attempt's failure: retried, or answered */
    /* the end's events join what the last pass decoded: one write, not a write of what was pending and a
     * second of the rest */
    c->batching = true;
    if (!c->dec_failed)
        c->pops->dec_finish(c->dec);
    c->batching = false;
    if (c->attempts != nat)
        return;
    attempt_end(c, WD_AO_OK, c->err, false);
    call_flush(c);
}

/* ---- the client's side: hang-ups, deadline, pings, drain ---- */

/* h2o 2.2.5 stops reading an HTTP/1 connection while it answers a request, so a client that hangs up is only
 * noticed on the next write. A thinking model can stay silent for minutes, burning tokens for nobody: check for
 * the peer's FIN directly. HTTP/2 reports a reset stream through on_stop by itself. */
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

/* An error that ends the call wherever it is: before the commit a complete error answer, after it an error
 * event after what the client already has. */
static void call_end_with(struct wd_call *c, enum wd_error_class cls, const char *msg)
{
    if (c->xfer != NULL) {
        wd_upstream_cancel(c->xfer);
        c->xfer = NULL;
    }
    close_timer(&c->retry_timer);
    attempt_end(c, WD_AO_CANCELLED, cls, false);
    c->batching = false;
    if (!c->committed) {
        call_fail(c, cls, msg);
        return;
    }
    end_after_commit(c, cls, msg);
}

static void call_tick(struct wd_call *c, uint64_t now)
{
    if (c->holding) {
        if (now >= c->hold_until_ms) { /* the records are not durable yet: the answer goes anyway */
            c->hold_timed_out = true;
            hold_release(c);
        }
        return;
    }
    if (client_hung_up(c->req)) {
        c->cut = true;
        call_stop_io(c);
        attempt_end(c, WD_AO_CANCELLED, WD_ERR_NONE, false);
        if (c->committed) {
            c->finished = true; /* the final write fails and h2o closes the connection */
            call_flush(c);
        } else {
            call_fail(c, WD_ERR_INVALID_REQUEST, "client closed the connection");
        }
        return;
    }
    if (now - c->started_ms > c->rt->cfg->request_timeout_ms) {
        call_end_with(c, WD_ERR_TIMEOUT, "request timeout");
        return;
    }
    /* pings keep idle proxies and the client's read timeout from closing a stream that waits on a thinking
     * model; they start once the response is committed to 200. A relayed stream has the provider's own. */
    if (c->stream && !c->relay && c->xfer != NULL && c->up_status == 200 && !c->finished && !c->final_sent &&
        now - c->last_write_ms >= PING_INTERVAL_MS) {
        call_commit(c, 200, "text/event-stream");
        c->api->write_ping(&c->out);
        call_flush(c);
    }
}

/* One timer per worker ticks every call once a second while the worker has calls (a timer per call cost a
 * start, a stop, a close and an allocation per request); a tick that finds none stops it. */
static void on_tick(uv_timer_t *t)
{
    struct wd_gateway *g = t->data;
    uint64_t now = uv_now(g->loop);
    if (g->live_first == NULL) { /* idle for a second: stopped until the next call */
        uv_timer_stop(&g->ticker);
        return;
    }
    struct wd_call *next;
    for (struct wd_call *c = g->live_first; c != NULL; c = next) {
        next = c->live_next;
        if (c->ticking && !c->disposed)
            call_tick(c, now);
    }
}

static void ticker_need(struct wd_gateway *g)
{
    if (!g->ticker_init || !uv_is_active((uv_handle_t *)&g->ticker)) {
        if (!g->ticker_init) {
            uv_timer_init(g->loop, &g->ticker);
            uv_unref((uv_handle_t *)&g->ticker); /* it never keeps the loop alive by itself */
            g->ticker.data = g;
            g->ticker_init = true;
        }
        uv_timer_start(&g->ticker, on_tick, 1000, 1000);
    }
}

int wd_gateway_drain_cut(struct wd_gateway *g)
{
    int n = 0;
    struct wd_call *next;
    g->drain_cut = true;
    for (struct wd_call *c = g->live_first; c != NULL; c = next) {
        next = c->live_next;
        if (c->final_sent || c->finished || c->cut || c->disposed)
            continue; /* its end is already on its way to the client */
        n++;
        c->shutdown = true;
        call_end_with(c, WD_ERR_OVERLOADED, "server is shutting down");
    }
    return n;
}

/* ---- one attempt ---- */

/* A key goes out in a header: printable ASCII and spaces only (no CR, LF, NUL or other control byte). */
static bool header_safe(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return true;
}

/* The current target's credential: weighted choice among its keys, the next ones in order when one is unset. */
static int resolve_key(struct wd_call *c, const struct wd_provider *p)
{
    /* a fallback's key is written over the previous target's: a shorter one would leave that one's tail
     * where the disposal's cleanse (up to the first NUL) does not reach */
    OPENSSL_cleanse(c->key, strnlen(c->key, sizeof(c->key)));
    int klen = -1;
    size_t pick = 0;
    if (p->nkeys > 1) {
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
    /* from the secret cache: never a file or a vault on this loop; a first use waits for the resolver */
    bool pending = false;
    for (size_t k = 0; k < p->nkeys && klen <= 0; k++) {
        const char *ref = p->keys[(pick + k) % p->nkeys].secret;
        klen = wd_secret_get(c->g->secrets, ref, c->key, sizeof(c->key), pending ? NULL : &c->key_wait);
        if (klen > 0 && !header_safe(c->key, (size_t)klen)) {
            /* a value with a line break or another control character cannot go in a header: passed over like
             * one that cannot be resolved, and said so (the provider would otherwise seem to fail) */
            wd_logf(WD_LOG_WARN, "", "secret %.200s: its value holds a control character and cannot be sent as a "
                                     "provider key; passed over", ref);
            OPENSSL_cleanse(c->key, (size_t)klen);
            c->key[0] = '\0';
            klen = -1;
        }
        if (klen > 0)
            c->key_ref = ref;
        else if (klen == WD_SECRET_PENDING && !pending)
            pending = c->key_waiting = true;
    }
    if (klen > 0 && c->key_waiting) {
        wd_secret_wait_cancel(&c->key_wait); /* a later key of the list was ready */
        c->key_waiting = false;
    }
    return klen > 0 ? klen : c->key_waiting ? WD_SECRET_PENDING : -1;
}

/* Builds the current target's request (once per target: a retry reuses it). 0, or -1 after answering. */
static void client_api_headers(struct wd_call *c);

static int target_prepare(struct wd_call *c)
{
    const struct wd_route *t = &c->plan.t[c->ti];
    c->route = *t;
    wd_str_copy(c->model_res, sizeof(c->model_res), t->model);
    c->pops = wd_provider_ops_for(t->provider->type);
    if (c->pops == NULL) {
        call_fail(c, WD_ERR_INVALID_REQUEST, "this provider type is not supported by this build");
        return -1;
    }
    /* Credentials resolve on first use, so Warden starts without them and says what is missing. */
    int kr = resolve_key(c, t->provider);
    if (kr == WD_SECRET_PENDING)
        return -3;
    if (kr <= 0)
        return -2;
    bool same_api = c->pops->family == c->api->family;
    if (same_api && !c->api_headers_read) {
        client_api_headers(c); /* only a provider that speaks the client's API gets its version and betas */
        c->api_headers_read = true;
    }
    if (!(same_api && c->pops->watch != NULL) && !c->decoded) {
        /* a target that is not relayed needs the canonical request: decoded once, on the first such target */
        struct wd_error derr = {0};
        if (c->api->decode(c->route_def->kind == WD_ROUTE_COUNT_TOKENS, &c->arena, &c->json, &c->creq, &derr) < 0) {
            if (derr.cls == WD_ERR_INVALID_REQUEST)
                snprintf(c->reason, sizeof(c->reason), "%s", derr.msg);
            call_fail(c, derr.cls ? derr.cls : WD_ERR_API, derr.cls ? derr.msg : "out of memory");
            return -1;
        }
        c->decoded = true;
    }
    struct wd_build_in in = {
        .provider = t->provider,
        .model = t->model,
        .key = c->key,
        .req = &c->creq,
        .inbound = c->api->family,
        .raw = c->body,
        .raw_len = c->body_len,
        .raw_json = &c->json,
        .client_version = c->api_headers_read ? (struct wd_str){c->version, strlen(c->version)} : WD_STR_NULL,
        .client_beta = c->api_headers_read ? (struct wd_str){c->beta, strlen(c->beta)} : WD_STR_NULL,
        .count_tokens = c->route_def->kind == WD_ROUTE_COUNT_TOKENS,
    };
    struct wd_error err;
    wd_error_clear(&err);
    c->upbody.n = 0;
    c->wire.nheaders = 0; /* not the whole struct: its storage is kilobytes */
    c->wire.relay = c->wire.sse = false;
    c->wire.body_ref = NULL;
    c->wire.body_ref_len = 0;
    c->wire.url[0] = '\0';
    if (c->pops->build(&in, &c->wire, &c->upbody, &err) < 0) {
        if (err.cls == WD_ERR_INVALID_REQUEST)
            snprintf(c->reason, sizeof(c->reason), "%s", err.msg);
        call_fail(c, err.cls ? err.cls : WD_ERR_API, err.cls ? err.msg : "out of memory");
        return -1;
    }
    c->relay = c->wire.relay;
    c->upbody_for_ti = true;
    return 0;
}

static void key_ready(struct wd_secret_wait *w)
{
    struct wd_call *c = w->ctx;
    c->key_waiting = false;
    if (c->final_sent || c->disposed || c->admitting)
        return; /* answered meanwhile, or admission resumes the call */
    if (attempt_start(c) < 0)
        call_fail(c, WD_ERR_API, "could not start the provider request");
}

static int attempt_start(struct wd_call *c)
{
    for (;;) {
        if (c->key_waiting)
            return 0; /* key_ready resumes the call */
        if (c->upbody_for_ti)
            break;
        int r = target_prepare(c);
        if (r == 0)
            break;
        if (r == -1)
            return 0; /* answered */
        if (r == -3)
            return 0; /* the credential is being resolved: key_ready resumes the call */
        /* no credential for this target: the next one, else 503 naming the reference */
        if (c->ti + 1 < c->plan.n) {
            c->ti++;
            c->fallbacks++;
            continue;
        }
        const struct wd_provider *p = c->plan.t[c->ti].provider;
        char msg[200];
        snprintf(msg, sizeof(msg), "provider %s has no usable credential: set %s", p->name,
                 p->nkeys ? p->keys[0].secret : "a key");
        call_fail(c, WD_ERR_UNAVAILABLE, msg);
        return 0;
    }
    if (c->attempts > 0 && !c->committed && c->enc != NULL) {
        /* a failed attempt may have fed part of a whole answer to the encoder (a message held until its end):
         * the next attempt's answer starts from nothing, not after those blocks */
        c->api->enc_free(c->enc);
        memset(c->enc, 0, c->api->enc_size);
        c->enc_sink = c->api->enc_init(c->enc, &c->out, c->stream, c->creq.model);
        c->out.n = 0;
        c->usage = (struct wd_usage){0};
        c->stop_reason = WD_STOP_NONE;
    }
    dec_release(c);
    c->dec_ops = c->pops;
    c->dec_failed = false;
    if (c->stop_live)
        wd_stop_filter_free(&c->stop);
    c->stop_live = false;
    if (c->relay) {
        c->watch = state_mem(c->dec_mem, c->pops->watch_size);
        if (c->watch == NULL)
            return -1;
    } else {
        c->dec = state_mem(c->dec_mem, c->pops->dec_size);
        if (c->dec == NULL)
            return -1;
        wd_stop_filter_init(&c->stop, &c->sink, c->creq.stop, c->creq.nstop);
        c->stop_live = true;
        c->pops->dec_init(c->dec, &c->stop.sink, &c->creq, &c->arena);
    }
    wd_sse_free(&c->sse);
    c->sse.max_event = c->rt->cfg->max_response_bytes;
    c->sse.skip = c->relay ? c->pops->watch_skip : NULL;
    c->errbody.n = 0;
    c->errbody_full = false;
    c->relay_hold.n = 0;
    c->up_status = 0;
    c->up_ct[0] = '\0';
    c->retry_after = -1;
    c->first_token_seen = false;
    bool fresh = c->fresh_conn;
    c->fresh_conn = false;
    c->attempts++;
    c->target_attempts++;
    c->attempt_gen++;
    /* past the list's length the last slot is reused (its attempt has ended): observers still hear every one */
    if (c->nattempts < WD_CALL_MAX_ATTEMPTS)
        c->nattempts++;
    c->attempt[c->nattempts - 1] = (struct wd_call_attempt){
        .provider = c->route.provider, .model = c->route.model, .retry_after_s = -1, .start_us = wd_now_us()};
    c->up_tp[0] = '\0';
    notify(c, WD_CALL_EV_ATTEMPT_START); /* the trace observer sets up_tp */
    size_t nh = 0;
    for (size_t i = 0; i < c->wire.nheaders; i++)
        c->hdrs[nh++] = (struct wd_upstream_header){c->wire.headers[i].name, c->wire.headers[i].value};
    if (c->up_tp[0] != '\0') {
        c->hdrs[nh++] = (struct wd_upstream_header){"traceparent", c->up_tp};
        if (c->tracestate[0] != '\0')
            c->hdrs[nh++] = (struct wd_upstream_header){"tracestate", c->tracestate};
    }
    const struct wd_provider *p = c->route.provider;
    struct wd_upstream_req ur = {
        .method = "POST",
        .url = c->wire.url,
        .headers = c->hdrs,
        .nheaders = nh,
        .body = c->wire.body_ref != NULL ? c->wire.body_ref : c->upbody.p,
        .body_len = c->wire.body_ref != NULL ? c->wire.body_ref_len : c->upbody.n,
        .tls_ca = p->tls_ca,
        .connect_timeout_ms = p->connect_timeout_ms,
        .first_byte_timeout_ms = p->first_byte_timeout_ms,
        .idle_timeout_ms = p->idle_timeout_ms,
        /* a streamed answer is passed on as it comes (its events are capped, c->sse.max_event); a whole one is
         * held, so it is capped; an error body is capped alike (up_data keeps its first 64 KiB) */
        .max_response_bytes = c->wire.sse ? 0 : c->rt->cfg->max_response_bytes,
        .max_error_bytes = c->rt->cfg->max_response_bytes,
        .fresh_connect = fresh,
        .ctx = c,
        .on_response = up_response,
        .on_data = up_data,
        .on_flush = c->wire.sse ? up_flush : NULL, /* whole bodies: on_done */
        .on_done = up_done,
    };
    c->xfer = wd_upstream_start(c->g->up, &ur);
    if (c->xfer == NULL) {
        attempt_end(c, WD_AO_TRANSPORT, WD_ERR_API, false);
        return -1;
    }
    return 0;
}

/* Target i of a plan as RBAC sees it (how its name was resolved, and the target). */
static struct wd_rbac_target rbac_target(const struct wd_route_plan *p, size_t i)
{
    return (struct wd_rbac_target){
        .via = p->how == WD_ROUTE_ALIAS ? WD_RBAC_VIA_ALIAS : p->how == WD_ROUTE_TIER ? WD_RBAC_VIA_TIER : WD_RBAC_VIA_NAME,
        .alias = p->alias,
        .tier = p->tier >= 0 ? wd_route_tier_names[p->tier] : NULL,
        .provider = p->t[i].provider->name,
        .model = p->t[i].model,
    };
}

/* A virtual key with a model list may use only what the list grants (on top of RBAC). */
static bool key_models_ok(const struct wd_config *cfg, const struct wd_gov_key *k, const struct wd_rbac_target *t,
                          char *rule, size_t cap)
{
    if (k == NULL || k->nmodels == 0)
        return true;
    for (size_t i = 0; i < k->nmodels; i++)
        if (wd_rbac_pattern_grants(k->models[i], t)) {
            if (!cfg->rbac)
                snprintf(rule, cap, "virtual key %.64s grants %.64s", k->name, k->models[i]);
            return true;
        }
    snprintf(rule, cap, "virtual key %.64s: not in its models", k->name);
    return false;
}

static bool vkey_model_ok(struct wd_call *c, const struct wd_rbac_target *t, char *rule, size_t cap)
{
    return key_models_ok(c->rt->cfg, c->vkey, t, rule, cap);
}

/* RBAC: the plan keeps only the targets the caller's roles allow (a tier or an alias granted whole keeps its
 * chain). 0, or -1 when none is left. The rule that decided goes to the authz record. */
static int rbac_filter(struct wd_call *c)
{
    const struct wd_config *cfg = c->rt->cfg;
    size_t kept = 0;
    char rule[sizeof(c->authz_rule)];
    c->authz_rule[0] = '\0';
    for (size_t i = 0; i < c->plan.n; i++) {
        const struct wd_route *t = &c->plan.t[i];
        struct wd_rbac_target rt = rbac_target(&c->plan, i);
        if (wd_rbac_model_ok(cfg, c->who.roles, &rt, rule, sizeof(rule)) && vkey_model_ok(c, &rt, rule, sizeof(rule))) {
            if (kept == 0)
                memcpy(c->authz_rule, rule, sizeof(rule));
            c->plan.t[kept++] = *t;
        } else if (c->authz_rule[0] == '\0' && kept == 0 && i + 1 == c->plan.n) {
            memcpy(c->authz_rule, rule, sizeof(rule));
        }
    }
    c->authz_denied = kept == 0;
    if (kept == 0)
        return -1;
    c->plan.n = kept;
    c->route = c->plan.t[0];
    wd_str_copy(c->model_res, sizeof(c->model_res), c->route.model);
    return 0;
}

/* ---- the handler ---- */

/* The credential the client presented in its API's key headers ("authorization" means a Bearer token). */
static struct wd_str presented_key(h2o_req_t *req, const struct wd_inbound_ops *api)
{
    for (const char *const *h = api->key_headers; *h != NULL; h++) {
        ssize_t i = h2o_find_header_by_str(&req->headers, *h, strlen(*h), -1);
        if (i < 0)
            continue;
        h2o_iovec_t v = req->headers.entries[i].value;
        if (strcmp(*h, "authorization") != 0)
            return (struct wd_str){v.base, v.len};
        if (v.len > 7 && strncasecmp(v.base, "Bearer ", 7) == 0)
            return (struct wd_str){v.base + 7, v.len - 7};
    }
    return WD_STR_NULL;
}

struct wd_str wd_gateway_presented(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0 && req->headers.entries[i].value.len > 7 &&
        strncasecmp(req->headers.entries[i].value.base, "Bearer ", 7) == 0)
        return (struct wd_str){req->headers.entries[i].value.base + 7, req->headers.entries[i].value.len - 7};
    if ((i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), -1)) >= 0)
        return (struct wd_str){req->headers.entries[i].value.base, req->headers.entries[i].value.len};
    return WD_STR_NULL;
}

/* The worker's governance snapshot, taken anew when the governor published one. */
static const struct wd_gov_snap *gov_snap(struct wd_gateway *g)
{
    uint64_t serial = wd_gov_serial();
    if (serial != g->gov_serial) {
        struct wd_gov_snap *s = wd_gov_acquire();
        wd_gov_release(g->gov);
        g->gov = s;
        g->gov_serial = s != NULL ? s->serial : 0;
    }
    return g->gov;
}

/* A virtual key's roles: its own (names of rbac.roles) and the bindings that name the key. */
static uint64_t vkey_roles(const struct wd_config *cfg, const struct wd_gov_key *k)
{
    struct wd_rbac_who w = {.key = k->name};
    uint64_t roles = wd_rbac_roles(cfg, &w, NULL, 0);
    for (size_t i = 0; i < k->nroles; i++)
        for (size_t r = 0; r < cfg->nroles && r < WD_RBAC_MAX_ROLES; r++)
            if (strcmp(k->roles[i], cfg->roles[r].name) == 0)
                roles |= 1ull << r;
    return roles;
}

/* A session token Warden minted at a gateway sign-in: the developer as the IdP described them then. */
static int session_principal(const struct wd_config *cfg, const struct wd_signin_keys *sk, struct wd_str tok,
                             struct wd_principal *who, int64_t *exp, const char **why)
{
    struct wd_signin_claims c;
    if (wd_signin_verify(sk, cfg->signin.public_url, tok.p, tok.n, (int64_t)time(NULL), 60, &c, why) < 0)
        return -1;
    *exp = c.exp;
    memset(who, 0, sizeof(*who));
    wd_cstr_copy(who->subject, sizeof(who->subject), c.sub);
    wd_cstr_copy(who->email, sizeof(who->email), c.email);
    wd_cstr_copy(who->issuer, sizeof(who->issuer), cfg->signin.issuer);
    who->method = "session";
    struct wd_str groups[16];
    for (int i = 0; i < c.ngroups && i < 16; i++)
        groups[i] = (struct wd_str){c.groups[i], strlen(c.groups[i])};
    struct wd_rbac_who w = {.subject = {c.sub, strlen(c.sub)}, .email = {c.email, strlen(c.email)}, .groups = groups,
                            .ngroups = c.ngroups};
    char matched[8];
    who->roles = wd_rbac_roles(cfg, &w, matched, sizeof(matched));
    /* all of the session's groups (managed settings are chosen by them), as far as they fit */
    size_t n = 0;
    for (int i = 0; i < c.ngroups; i++) {
        size_t l = strlen(c.groups[i]);
        if (n + (n > 0) + l + 1 > sizeof(who->groups))
            break;
        if (n > 0)
            who->groups[n++] = ',';
        memcpy(who->groups + n, c.groups[i], l);
        n += l;
    }
    who->groups[n] = '\0';
    return 0;
}

int wd_gateway_principal(struct wd_gateway *g, struct wd_str presented, struct wd_principal *who,
                         const struct wd_gov_key **vkey, const char **why)
{
    *why = "invalid_key";
    *vkey = NULL;
    uint8_t tag[16]; /* one keyed hash of the credential serves the static keys and the token caches */
    wd_siphash128(wd_process_key(), presented.p, presented.n, tag);
    if (wd_auth_check_tag(&g->rt->auth, tag, who) == 0)
        return 0;
    const struct wd_config *cfg = g->rt->cfg;
    const struct wd_signin_keys *sk = cfg->signin.enabled ? wd_gov_signin_keys() : NULL;
    if (sk != NULL && wd_signin_is_session(sk, presented.p, presented.n)) {
        /* a verified session is cached by its tag until it expires: the HMAC and the claims are read once */
        if (g->sessions == NULL && (g->sessions = calloc(SESSION_SLOTS, sizeof(*g->sessions))) == NULL) {
            *why = "out of memory";
            return -1;
        }
        struct wd_session_slot *e = &g->sessions[tag[0] % SESSION_SLOTS];
        int64_t now = (int64_t)time(NULL);
        if (e->cfg == cfg && now < e->exp + 60 && CRYPTO_memcmp(e->tag, tag, 16) == 0) {
            *who = e->who;
            return 0;
        }
        int64_t exp;
        if (session_principal(cfg, sk, presented, who, &exp, why) < 0)
            return -1;
        memcpy(e->tag, tag, 16);
        e->cfg = cfg;
        e->exp = exp;
        e->who = *who;
        return 0;
    }
    if (cfg->governance.enabled && wd_gov_looks_like_key(presented)) {
        if (g->gov_cache == NULL && (g->gov_cache = wd_gov_cache_new()) == NULL) {
            *why = "out of memory";
            return -1;
        }
        if (wd_gov_authenticate(g->gov_cache, gov_snap(g), presented, tag, (int64_t)time(NULL), vkey, who, why) < 0)
            return -1;
        who->roles = vkey_roles(cfg, *vkey);
        return 0;
    }
    if (cfg->noidc == 0 || !wd_oidc_looks_like_jwt(presented))
        return -1;
    if (g->oidc == NULL && (g->oidc = wd_oidc_cache_new()) == NULL) {
        *why = "out of memory";
        return -1;
    }
    int r = wd_oidc_authenticate_tag(g->oidc, cfg, presented, tag, (int64_t)time(NULL), who, why);
    if (r == 0 && who->team[0] != '\0' && who->org[0] == '\0' && cfg->governance.enabled)
        wd_gov_team_org(gov_snap(g), who->team, who->org, sizeof(who->org)); /* the team's org, when it has one */
    return r;
}

static int principal_of(struct wd_gateway *g, struct wd_str presented, struct wd_principal *who, const char **why)
{
    const struct wd_gov_key *k;
    return wd_gateway_principal(g, presented, who, &k, why);
}

void wd_gateway_free(struct wd_gateway *g)
{
    while (g->spare != NULL) {
        struct wd_call *c = g->spare;
        g->spare = *(struct wd_call **)c;
        free(c);
    }
    g->nspare = 0;
    wd_oidc_cache_free(g->oidc);
    g->oidc = NULL;
    wd_gov_cache_free(g->gov_cache);
    g->gov_cache = NULL;
    if (g->sessions != NULL)
        OPENSSL_cleanse(g->sessions, SESSION_SLOTS * sizeof(*g->sessions));
    free(g->sessions);
    g->sessions = NULL;
    wd_gov_release(g->gov);
    g->gov = NULL;
    g->gov_serial = 0;
    if (g->admin_init) {
        while (g->admin_done != NULL) {
            struct wd_gov_job *j = g->admin_done;
            g->admin_done = j->next;
            wd_gateway_admin_free_job(j);
        }
        pthread_mutex_destroy(&g->admin_lock);
        g->admin_init = false;
    }
}

bool wd_gateway_key_ok(struct wd_gateway *g, struct wd_str presented)
{
    struct wd_principal who;
    const char *why;
    int r = principal_of(g, presented, &who, &why);
    return r == 0 || r == WD_OIDC_PENDING; /* pending: the handler decides once the keys are there */
}

static void auth_refused(struct wd_call *c, const char *why)
{
    c->who.subject[0] = '\0';
    c->auth_reason = why;
    const struct wd_signin_keys *sk = c->rt->cfg->signin.enabled ? wd_gov_signin_keys() : NULL;
    if (sk != NULL && wd_signin_is_session(sk, c->presented.p, c->presented.n)) /* an expired session: sign in again now */
        h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, H2O_STRLIT("x-should-retry"), 0, NULL,
                              H2O_STRLIT("false"));
    notify(c, WD_CALL_EV_AUTH);
    if (c->presented_jwt) { /* the reason goes to the log, never to the client */
        char f[160];
        snprintf(f, sizeof(f), "\"request_id\":\"%s\"", c->rid);
        wd_logf(WD_LOG_INFO, f, "bearer token refused: %s", why);
    }
    call_fail(c, WD_ERR_AUTHENTICATION, c->presented_jwt ? "invalid bearer token" : "invalid API key");
}

static void call_proceed(struct wd_call *c);

/* A token whose issuer's keys are being fetched: tried again every 50 ms up to the issuer's wait. */
static void auth_retry(uv_timer_t *t)
{
    struct wd_call *c = t->data;
    if (c->final_sent || c->disposed)
        return;
    const char *why;
    int r = principal_of(c->g, c->presented, &c->who, &why);
    if (r == WD_OIDC_PENDING && uv_now(c->g->loop) < c->auth_deadline_ms)
        return; /* the timer fires again */
    close_timer(&c->auth_timer);
    if (r == 0) {
        c->audited = c->g->audit != NULL;
        notify(c, WD_CALL_EV_AUTH);
        call_proceed(c);
        return;
    }
    if (r == WD_OIDC_PENDING && strcmp(why, "unknown kid") != 0) {
        /* the IdP did not answer in time: not the client's fault */
        c->who.subject[0] = '\0';
        c->auth_reason = "idp_unavailable";
        notify(c, WD_CALL_EV_AUTH);
        call_fail(c, WD_ERR_UNAVAILABLE, "the identity provider's signing keys are not available; retry shortly");
        return;
    }
    auth_refused(c, why);
}

/* 0: authenticated; -1: answered; 1: waiting for an issuer's keys (auth_retry goes on). */
static int authenticate(struct wd_call *c)
{
    struct wd_str presented = presented_key(c->req, c->api);
    c->auth_us = wd_now_us();
    if (presented.n == 0) {
        c->auth_reason = "missing_key";
        notify(c, WD_CALL_EV_AUTH);
        call_fail(c, WD_ERR_AUTHENTICATION, "missing API key: send x-api-key or Authorization: Bearer");
        return -1;
    }
    c->presented = presented;
    c->presented_jwt = c->rt->cfg->noidc > 0 && wd_oidc_looks_like_jwt(presented);
    const char *why;
    int r = wd_gateway_principal(c->g, presented, &c->who, &c->vkey, &why);
    if (r == WD_OIDC_PENDING) {
        c->auth_deadline_ms = uv_now(c->g->loop) + wd_oidc_wait_ms(c->rt->cfg, presented);
        if ((c->auth_timer = malloc(sizeof(*c->auth_timer))) == NULL) {
            auth_refused(c, "out of memory");
            return -1;
        }
        uv_timer_init(c->g->loop, c->auth_timer);
        c->auth_timer->data = c;
        uv_timer_start(c->auth_timer, auth_retry, 50, 50);
        return 1;
    }
    if (r != 0) {
        auth_refused(c, why);
        return -1;
    }
    c->audited = c->g->audit != NULL;
    notify(c, WD_CALL_EV_AUTH);
    return 0;
}

/* The request body, gzip-decoded when so encoded, within the configured limit. */
static int request_body(struct wd_call *c)
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
        c->body = req->entity.base ? req->entity.base : "";
        c->body_len = req->entity.len;
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
    c->body = c->inflated.p ? c->inflated.p : "";
    c->body_len = c->inflated.n;
    return 0;
}

static bool header_too_large(h2o_req_t *req, size_t max)
{
    size_t total = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return total > max;
}

/* The client's anthropic-version and anthropic-beta (every line, joined), for a provider that speaks its API. */
static void client_api_headers(struct wd_call *c)
{
    h2o_iovec_t v = wd_call_header(c, H2O_STRLIT("anthropic-version"));
    c->version[0] = '\0';
    if (v.base != NULL && v.len < sizeof(c->version))
        wd_str_copy(c->version, sizeof(c->version), (struct wd_str){v.base, v.len});
    size_t n = 0;
    for (ssize_t i = -1; (i = h2o_find_header_by_str(&c->req->headers, H2O_STRLIT("anthropic-beta"), i)) >= 0;) {
        h2o_iovec_t b = c->req->headers.entries[i].value;
        if (n + b.len + 2 > sizeof(c->beta))
            break; /* a longer list than any client sends: the rest is not passed on */
        if (n > 0)
            c->beta[n++] = ',';
        memcpy(c->beta + n, b.base, b.len);
        n += b.len;
    }
    c->beta[n] = '\0';
}

void wd_call_admit_done(struct wd_call *c, int ok)
{
    if (c->final_sent || c->disposed)
        return;
    if (!ok) {
        call_fail(c, WD_ERR_UNAVAILABLE, "the audit trail is unavailable and audit.mode is fail_closed");
        return;
    }
    if (attempt_start(c) < 0)
        call_fail(c, WD_ERR_API, "could not start the provider request");
}

static void handle_call(h2o_req_t *req, struct wd_gateway *g, const struct wd_inbound_ops *api,
                        const struct wd_inbound_route *rd)
{
    struct wd_call *c = call_new(req, g);
    if (c == NULL) {
        wd_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    memset(c, 0, offsetof(struct wd_call, wire));
    memset(&c->upbody, 0, offsetof(struct wd_call, key) - offsetof(struct wd_call, upbody));
    c->key[0] = '\0';
    c->wire.bearer[0] = '\0';
    c->addr[0] = c->ua[0] = c->model_req[0] = c->model_res[0] = c->reason[0] = c->req_sha[0] = '\0';
    c->tracestate[0] = '\0';
    wd_principal_clear(&c->who);
    c->req = req;
    c->g = g;
    c->api = api;
    c->route_def = rd;
    c->rt = g->rt;
    atomic_fetch_add(&c->rt->refs, 1);
    g->inflight++;
    c->live_next = g->live_first;
    if (c->live_next != NULL)
        c->live_next->live_prevp = &c->live_next;
    c->live_prevp = &g->live_first;
    g->live_first = c;
    c->resend_left = 1;
    c->retry_after = -1;
    c->sink.emit = gate_emit;
    c->key_wait.cb = key_ready;
    c->key_wait.ctx = c;
    c->started_ms = c->last_write_ms = uv_now(g->loop);
    c->t0_us = wd_now_us();
    memcpy(c->rid, "req_", 4);
    wd_rand_id(c->rid + 4, 24);
    c->rid[28] = '\0';
    notify(c, WD_CALL_EV_START);
    const struct wd_config *cfg = c->rt->cfg;

    if (header_too_large(req, cfg->max_header_bytes)) {
        static const char msg[] = "request headers exceed the configured limit (limits.max_header_bytes)";
        struct wd_buf b = {0};
        api->write_error(&b, WD_ERR_INVALID_REQUEST, msg, sizeof(msg) - 1);
        respond_whole(c, 431, "application/json", b.p ? b.p : "", b.n);
        wd_buf_free(&b);
        return;
    }
    int ar = authenticate(c);
    if (ar == 0)
        call_proceed(c);
}

static void call_admitted(struct wd_call *c);

/* ---- budgets and rate limits (docs/governance.md) ---- */

/* USD per million tokens of a provider model: models.prices, else Warden's defaults for common models. A model name
 * of a plan points into its runtime's config, so a worker remembers the last few answers by that pointer. */
static bool model_price_lookup(const struct wd_config *cfg, struct wd_str model, double *in, double *out,
                               double *cached);
static bool model_price(const struct wd_config *cfg, struct wd_str model, double *in, double *out, double *cached)
{
    static _Thread_local struct {
        const struct wd_config *cfg;
        char sha[16];                    /* a reloaded config at the same address is another config */
        const char *p;
        size_t n;
        bool found;
        double in, out, cached;
    } memo[8];
    size_t h = ((uintptr_t)model.p >> 3) & 7;
    if (memo[h].cfg == cfg && memo[h].p == model.p && memo[h].n == model.n && memcmp(memo[h].sha, cfg->sha256, 16) == 0) {
        *in = memo[h].in, *out = memo[h].out, *cached = memo[h].cached;
        return memo[h].found;
    }
    bool found = model_price_lookup(cfg, model, in, out, cached);
    memo[h].cfg = cfg, memo[h].p = model.p, memo[h].n = model.n, memo[h].found = found;
    memcpy(memo[h].sha, cfg->sha256, 16);
    if (found)
        memo[h].in = *in, memo[h].out = *out, memo[h].cached = *cached;
    return found;
}

static bool model_price_lookup(const struct wd_config *cfg, struct wd_str model, double *in, double *out,
                               double *cached)
{
    for (size_t i = 0; i < cfg->nprices; i++)
        if (wd_str_eq(model, cfg->prices[i].model)) {
            *in = cfg->prices[i].input;
            *out = cfg->prices[i].output;
            *cached = cfg->prices[i].cached < 0 ? cfg->prices[i].input : cfg->prices[i].cached;
            return true;
        }
    return wd_gov_default_price(model.p, model.n, in, out, cached);
}

/* The worst case of the call over every target of its plan: input tokens bounded by the body's bytes at the
 * highest input rate (a cache write, 1.25x), output tokens by max_tokens. */
static void gov_estimate(struct wd_call *c)
{
    const struct wd_config *cfg = c->rt->cfg;
    int64_t out_max = c->creq.max_tokens > 0 ? c->creq.max_tokens : 128000;
    double pin = 0, pout = 0;
    bool priced = true;
    for (size_t i = 0; i < c->plan.n; i++) {
        double in, out, cached;
        if (!model_price(cfg, c->plan.t[i].model, &in, &out, &cached)) {
            priced = false;
            continue;
        }
        if (in * 1.25 > pin)
            pin = in * 1.25;
        if (out > pout)
            pout = out;
    }
    double usd = (double)c->body_len * pin + (double)out_max * pout; /* micro-USD: tokens x USD per Mtok */
    c->gov_est = (struct wd_gov_cost){.usd_micro = priced ? (int64_t)usd + 1 : -1, .requests = 1,
                                      .tokens = (int64_t)c->body_len + out_max};
}

/* What the call cost, at the price of the target that answered. */
static struct wd_gov_cost gov_actual(struct wd_call *c)
{
    struct wd_gov_cost a = {.requests = 1};
    const struct wd_usage *u = &c->usage;
    a.tokens = u->input_tokens + u->output_tokens + u->cache_read_tokens;
    double in, out, cached;
    if (c->route.provider != NULL && model_price(c->rt->cfg, c->route.model, &in, &out, &cached)) {
        double usd = (double)u->input_tokens * in + (double)u->output_tokens * out + (double)u->cache_read_tokens * cached;
        a.usd_micro = (int64_t)usd + (usd > (double)(int64_t)usd);
    }
    return a;
}

static void gov_refused(struct wd_call *c, const char *msg, long retry_after_s, enum wd_error_class cls)
{
    c->authz_denied = true;
    wd_cstr_copy(c->authz_rule, sizeof(c->authz_rule), msg);
    notify(c, WD_CALL_EV_ROUTE);
    if (retry_after_s >= 0)
        add_retry_after(c, retry_after_s);
    if (retry_after_s < 0 || retry_after_s > 60) /* the SDKs' retries cannot outwait it: say so (x-should-retry) */
        no_retry(c);
    call_fail(c, cls, msg);
}

/* 0 admitted; 1 waiting (gov_retry goes on); -1 answered. */
static int gov_try(struct wd_call *c)
{
    const struct wd_config *cfg = c->rt->cfg;
    const struct wd_gov_limit *lim = NULL;
    long ra = -1;
    char msg[400];
    if (c->gov_est.usd_micro < 0) {
        /* a USD budget cannot be kept on a model without a price: refuse only when one applies */
        struct wd_gov_cost e = c->gov_est;
        e.usd_micro = 0;
        struct wd_gov_admission probe;
        int r = wd_gov_admit(gov_snap(c->g), &c->who, &e, (int64_t)time(NULL), (int64_t)uv_now(c->g->loop),
                             cfg->governance.mode == WD_GOV_FAIL_OPEN, &probe, &lim, &ra, msg, sizeof(msg));
        bool usd = false;
        for (int i = 0; r == 0 && i < probe.n; i++)
            usd |= probe.h[i].l->metric == WD_GOV_USD;
        if (r == 0) {
            if (!usd) {
                c->gov = probe;
                c->gov_est = e;
                c->gov_admitted = true;
                return 0;
            }
            wd_gov_settle(&probe, &(struct wd_gov_cost){0});
            snprintf(msg, sizeof(msg), "model %.200s has no price (models.prices), and a USD budget applies to this "
                     "caller", c->model_res);
            gov_refused(c, msg, -1, WD_ERR_PERMISSION);
            return -1;
        }
        if (r < 0) {
            gov_refused(c, msg, ra, WD_ERR_RATE_LIMIT);
            return -1;
        }
        return 1;
    }
    int r = wd_gov_admit(gov_snap(c->g), &c->who, &c->gov_est, (int64_t)time(NULL), (int64_t)uv_now(c->g->loop),
                         cfg->governance.mode == WD_GOV_FAIL_OPEN, &c->gov, &lim, &ra, msg, sizeof(msg));
    if (r == 0) {
        c->gov_admitted = true;
        return 0;
    }
    if (r < 0) {
        gov_refused(c, msg, ra, WD_ERR_RATE_LIMIT);
        return -1;
    }
    return 1;
}

static void gov_retry(uv_timer_t *t)
{
    struct wd_call *c = t->data;
    if (c->final_sent || c->disposed)
        return;
    int r = gov_try(c);
    if (r == 1 && uv_now(c->g->loop) < c->gov_deadline_ms && wd_gov_db_up())
        return; /* the timer fires again */
    close_timer(&c->gov_timer);
    if (r == 0) {
        call_admitted(c);
    } else if (r == 1) {
        c->authz_denied = true;
        wd_cstr_copy(c->authz_rule, sizeof(c->authz_rule), "governance: no lease in time (database unreachable or slow)");
        notify(c, WD_CALL_EV_ROUTE);
        add_retry_after(c, 1);
        call_fail(c, WD_ERR_UNAVAILABLE, "budgets cannot be checked now (the governance database is unreachable); retry shortly");
    }
}

/* Admission by the caller's budgets and rate limits: 0 admitted; else waiting or answered. */
static int gov_admission(struct wd_call *c)
{
    if (!wd_gov_limited(gov_snap(c->g), &c->who))
        return 0; /* nothing to reserve, nothing to settle */
    gov_estimate(c);
    int r = gov_try(c);
    if (r != 1)
        return r;
    if (!wd_gov_db_up() && c->rt->cfg->governance.mode == WD_GOV_FAIL_CLOSED) {
        c->authz_denied = true;
        wd_cstr_copy(c->authz_rule, sizeof(c->authz_rule), "governance: database unreachable, lease used up (fail_closed)");
        notify(c, WD_CALL_EV_ROUTE);
        add_retry_after(c, 1);
        call_fail(c, WD_ERR_UNAVAILABLE, "budgets cannot be checked now (the governance database is unreachable); retry shortly");
        return -1;
    }
    c->gov_deadline_ms = uv_now(c->g->loop) + c->rt->cfg->governance.wait_ms;
    if ((c->gov_timer = malloc(sizeof(*c->gov_timer))) == NULL) {
        call_fail(c, WD_ERR_API, "out of memory");
        return -1;
    }
    uv_timer_init(c->g->loop, c->gov_timer);
    c->gov_timer->data = c;
    uv_timer_start(c->gov_timer, gov_retry, 10, 10);
    return 1;
}

/* The call once its caller is known. */
static void call_proceed(struct wd_call *c)
{
    struct wd_gateway *g = c->g;
    const struct wd_inbound_ops *api = c->api;
    const struct wd_inbound_route *rd = c->route_def;
    const struct wd_config *cfg = c->rt->cfg;
    /* only authenticated calls widen the retry budget: a flood of bad keys buys no retries */
    budget_roll(&g->budget, c->started_ms);
    g->budget.requests++;
    if (request_body(c) < 0)
        return;
    if (c->audited && wd_audit_content() != WD_AUDIT_CONTENT_NONE) {
        c->dig_pending = true;
        c->dig_p = c->body;
        c->dig_n = c->body_len;
    }
    struct wd_error err;
    wd_error_clear(&err);
    bool count = rd->kind == WD_ROUTE_COUNT_TOKENS;
    if (api->parse(c->body, c->body_len, count, &c->arena, &c->json, &c->creq, &err) < 0) {
        /* the decoder's messages name a field path and a rule, never a value */
        if (err.cls == WD_ERR_INVALID_REQUEST)
            snprintf(c->reason, sizeof(c->reason), "%s", err.msg);
        call_fail(c, err.cls ? err.cls : WD_ERR_API, err.cls ? err.msg : "out of memory");
        return;
    }
    c->stream = c->creq.stream && !count;
    wd_str_copy(c->model_req, sizeof(c->model_req), c->creq.model);
    c->route_us = wd_now_us();
    int routed = wd_route_plan(cfg, c->creq.model, &c->plan, &err);
    c->routed = routed == 0;
    if (c->routed) {
        c->route = c->plan.t[0];
        wd_str_copy(c->model_res, sizeof(c->model_res), c->route.model);
    }
    /* without an rbac section (and a virtual key's model list) every target is allowed */
    bool filter = cfg->rbac || (c->vkey != NULL && c->vkey->nmodels > 0);
    if (c->routed && filter && rbac_filter(c) < 0) {
        notify(c, WD_CALL_EV_ROUTE);
        char msg[600];
        snprintf(msg, sizeof(msg), "model %.256s is not permitted for %.128s", c->model_req,
                 c->who.subject[0] ? c->who.subject : "this key");
        no_retry(c); /* a grant does not appear by retrying: Claude Code would otherwise retry for minutes */
        call_fail(c, WD_ERR_PERMISSION, msg);
        return;
    }
    c->vkey = NULL; /* the snapshot it points into may change once the call waits */
    if (routed < 0) {
        notify(c, WD_CALL_EV_ROUTE);
        call_fail(c, err.cls, err.msg);
        return;
    }
    if (cfg->governance.enabled && !count && gov_admission(c) != 0)
        return; /* waiting for a lease, or refused */
    call_admitted(c);
}

/* The call once its budgets and rate limits admitted it. */
static void call_admitted(struct wd_call *c)
{
    struct wd_gateway *g = c->g;
    const struct wd_inbound_ops *api = c->api;
    notify(c, WD_CALL_EV_ROUTE);
    c->enc = state_mem(c->enc_mem, api->enc_size);
    if (c->enc == NULL) {
        call_fail(c, WD_ERR_API, "out of memory");
        return;
    }
    c->enc_sink = api->enc_init(c->enc, &c->out, c->stream, c->creq.model);
    /* the first target's request is built before admission: a request it cannot express is refused first */
    int pr = target_prepare(c);
    if (pr == -1)
        return;
    if (pr == -2 || pr == -3)
        c->upbody_for_ti = false; /* no credential (yet): attempt_start waits, moves on or answers 503 */
    c->ticking = true;
    ticker_need(g);
    for (size_t i = 0; i < nobservers; i++) {
        if (observers[i]->admit == NULL)
            continue;
        int adm = observers[i]->admit(c);
        if (adm != 0) {
            digest_now(c); /* the client may leave while the admission record is written */
            return;        /* refused, or waiting (wd_call_admit_done) */
        }
    }
    if (attempt_start(c) < 0)
        call_fail(c, WD_ERR_API, "could not start the provider request");
    else
        digest_defer(c);
}

/* The model list shows what the caller may use: a name whose plan keeps a target under its roles. */
struct model_view {
    const struct wd_config *cfg;
    const struct wd_principal *who;
    const struct wd_gov_key *vkey;       /* a virtual key's model list narrows it too */
};

static bool model_visible(void *ctx, const char *name)
{
    const struct model_view *v = ctx;
    struct wd_route_plan plan;
    struct wd_error err;
    if (!v->cfg->rbac && (v->vkey == NULL || v->vkey->nmodels == 0))
        return true;
    if (wd_route_plan(v->cfg, (struct wd_str){name, strlen(name)}, &plan, &err) < 0)
        return false;
    char rule[160];
    for (size_t i = 0; i < plan.n; i++) {
        struct wd_rbac_target t = rbac_target(&plan, i);
        if (wd_rbac_model_ok(v->cfg, v->who->roles, &t, rule, sizeof(rule)) &&
            key_models_ok(v->cfg, v->vkey, &t, rule, sizeof(rule)))
            return true;
    }
    return false;
}

static void handle_models(h2o_req_t *req, struct wd_gateway *g, const struct wd_inbound_ops *api)
{
    struct wd_buf b = {0};
    /* The tier and alias map is the deployment's routing: a key is needed, as on the model routes. */
    struct wd_str presented = presented_key(req, api);
    struct wd_principal who;
    const char *why;
    const struct wd_gov_key *vkey = NULL;
    int r = presented.n ? wd_gateway_principal(g, presented, &who, &vkey, &why) : -1;
    if (r == WD_OIDC_PENDING) {
        static const char m[] = "the identity provider's signing keys are not available yet; retry shortly";
        api->write_error(&b, WD_ERR_UNAVAILABLE, m, sizeof(m) - 1);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        wd_respond(req, api->error_status(WD_ERR_UNAVAILABLE), "application/json", b.p ? b.p : "", b.n);
        wd_buf_free(&b);
        return;
    }
    if (r != 0) {
        static const char m1[] = "missing API key: send x-api-key or Authorization: Bearer", m2[] = "invalid API key";
        api->write_error(&b, WD_ERR_AUTHENTICATION, presented.n ? m2 : m1, presented.n ? sizeof(m2) - 1 : sizeof(m1) - 1);
        wd_respond(req, api->error_status(WD_ERR_AUTHENTICATION), "application/json", b.p ? b.p : "", b.n);
        wd_buf_free(&b);
        return;
    }
    struct model_view mv = {g->rt->cfg, &who, vkey};
    api->write_models(&b, g->rt->cfg, model_visible, &mv);
    wd_respond(req, 200, "application/json", b.p, b.n);
    wd_buf_free(&b);
}

static const struct wd_inbound_ops *api_for(const char *path, size_t len, size_t *rest)
{
    for (size_t i = 0; i < wd_inbound_napis; i++) {
        const struct wd_inbound_ops *a = wd_inbound_apis[i];
        size_t pl = strlen(a->prefix);
        if (len >= pl && memcmp(path, a->prefix, pl) == 0 && (len == pl || path[pl] == '/')) {
            *rest = pl;
            return a;
        }
    }
    return NULL;
}

bool wd_gateway_route_takes_body(const char *path, size_t len)
{
    const char *q = memchr(path, '?', len);
    if (q != NULL)
        len = (size_t)(q - path); /* the query is not part of the route */
    if (wd_gateway_admin_takes_body(path, len))
        return true;
    size_t pl;
    const struct wd_inbound_ops *a = api_for(path, len, &pl);
    if (a == NULL)
        return false;
    for (size_t i = 0; i < a->nroutes; i++) {
        const struct wd_inbound_route *r = &a->routes[i];
        if (strcmp(r->method, "POST") == 0 && strlen(r->path) == len - pl && memcmp(r->path, path + pl, len - pl) == 0)
            return true;
    }
    return false;
}

int wd_gateway_handle(struct wd_gateway *g, h2o_req_t *req)
{
    if (wd_gateway_admin(g, req) == 0 || wd_gateway_signin(g, req) == 0)
        return 0;
    h2o_iovec_t path = req->path_normalized;
    size_t pl;
    const struct wd_inbound_ops *api = api_for(path.base, path.len, &pl);
    if (api == NULL)
        return -1;
    h2o_iovec_t rest = h2o_iovec_init(path.base + pl, path.len - pl);
    struct wd_buf b = {0};
    if (g->drain_cut) {
        api->write_error(&b, WD_ERR_OVERLOADED, "server is shutting down", sizeof("server is shutting down") - 1);
        wd_respond(req, 503, "application/json", b.p ? b.p : "", b.n);
        wd_buf_free(&b);
        return 0;
    }
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    for (size_t i = 0; i < api->nroutes; i++) {
        const struct wd_inbound_route *r = &api->routes[i];
        if (!h2o_memis(rest.base, rest.len, r->path, strlen(r->path)))
            continue;
        bool method = h2o_memis(req->method.base, req->method.len, r->method, strlen(r->method)) ||
                      (head && r->kind == WD_ROUTE_PROBE);
        if (!method)
            continue;
        switch (r->kind) {
        case WD_ROUTE_GENERATE:
        case WD_ROUTE_COUNT_TOKENS: handle_call(req, g, api, r); return 0;
        case WD_ROUTE_MODELS: handle_models(req, g, api); return 0;
        case WD_ROUTE_PROBE: wd_respond(req, 200, "application/json", "{}", 2); return 0;
        }
    }
    api->write_error(&b, WD_ERR_NOT_FOUND, "no such route", sizeof("no such route") - 1);
    wd_respond(req, 404, "application/json", b.p ? b.p : "", b.n);
    wd_buf_free(&b);
    return 0;
}
