/* The trace observer: the server span of the request (HTTP semantic conventions), internal spans for
 * authentication and routing, and one client span per provider attempt (GenAI semantic conventions) whose
 * traceparent goes upstream. */
#include <stdio.h>
#include <string.h>

#include "gateway/observe.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "otel/exporter.h"

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
    wd_otel_submit((unsigned)c->g->id, s);
}

void wd_observe_span_begin(struct wd_call *c, const char *name)
{
    if (!c->traced || c->ispan_live)
        return;
    span_start(c, &c->ispan, name, WD_SPAN_INTERNAL, &c->sspan);
    c->ispan_live = true;
}

void wd_observe_span_end(struct wd_call *c)
{
    if (!c->ispan_live)
        return;
    c->ispan_live = false;
    span_end(c, &c->ispan);
}

/* The trace context: the caller's traceparent (W3C) when valid, else a new trace; sampled by the caller's
 * flag, or by the configured ratio for a new trace. */
static void trace_begin(struct wd_call *c)
{
    h2o_iovec_t tp = wd_call_header(c, H2O_STRLIT("traceparent"));
    c->has_tp = tp.base != NULL && wd_traceparent_parse(tp.base, tp.len, c->tid, c->parent_sid, &c->flags) == 0;
    if (!c->has_tp) {
        for (int i = 0; i < 16; i += 8) {
            uint64_t v = wd_rand_u64();
            memcpy(c->tid + i, &v, 8);
        }
        c->flags = wd_otel_enabled() && wd_otel_sample(c->tid) ? 1 : 0;
    }
    h2o_iovec_t ts = wd_call_header(c, H2O_STRLIT("tracestate"));
    if (c->has_tp && ts.base != NULL && ts.len < sizeof(c->tracestate)) {
        memcpy(c->tracestate, ts.base, ts.len);
        c->tracestate[ts.len] = '\0';
    }
    wd_hex(c->tid, 16, c->trace_id);
    c->traced = wd_otel_enabled() && (c->flags & 1);
    if (c->traced && !wd_otel_admit((unsigned)c->g->id)) {
        c->traced = false; /* the exporter is behind: this trace is not recorded, whole */
        c->trace_dropped = true;
    }
}


static void uspan_end(struct wd_call *c, const struct wd_call_attempt *a)
{
    if (!c->uspan_live)
        return;
    c->uspan_live = false;
    struct wd_span *s = &c->uspan;
    if (a != NULL && a->status > 0)
        wd_span_put_int(s, "http.response.status_code", a->status);
    bool ok = a != NULL && a->outcome == WD_AO_OK;
    if (ok && (c->usage.input_tokens || c->usage.output_tokens)) {
        wd_span_put_int(s, "gen_ai.usage.input_tokens", c->usage.input_tokens + c->usage.cache_read_tokens);
        wd_span_put_int(s, "gen_ai.usage.output_tokens", c->usage.output_tokens);
    }
    if (ok && c->stop_reason != WD_STOP_NONE) {
        const char *sr = wd_call_stop_name(c->stop_reason);
        wd_span_put_str_array1(s, "gen_ai.response.finish_reasons", sr, strlen(sr));
    }
    if (a != NULL) {
        wd_span_put_cstr(s, "warden.attempt.outcome", wd_observe_outcome_name(a->outcome));
        if (a->next != NULL)
            wd_span_put_cstr(s, "warden.attempt.next", a->next);
    }
    const char *et = NULL;
    if (a == NULL || a->outcome == WD_AO_CANCELLED)
        et = a != NULL && a->next != NULL ? "retried" : "cancelled";
    else if (a->outcome == WD_AO_HTTP_ERROR) {
        snprintf(c->up_err, sizeof(c->up_err), "%d", a->status);
        et = c->up_err;
    } else if (a->outcome != WD_AO_OK)
        et = a->cls != WD_ERR_NONE ? wd_call_error_name(a->cls) : "bad_gateway";
    else if (a->cls != WD_ERR_NONE)
        et = wd_call_error_name(a->cls);
    if (et != NULL) {
        wd_span_put_cstr(s, "error.type", et);
        s->status = WD_STATUS_ERROR;
    }
    span_end(c, s);
}

static void uspan_begin(struct wd_call *c)
{
    if (!c->traced && !c->has_tp && !wd_otel_enabled())
        return; /* no caller context and no tracing here: nothing to pass on */
    struct wd_span *s = &c->uspan;
    bool count = c->route_def->kind == WD_ROUTE_COUNT_TOKENS;
    span_start(c, s, count ? "count_tokens" : "chat", WD_SPAN_CLIENT, c->traced ? &c->sspan : NULL);
    wd_traceparent_format(s, c->up_tp);
    if (!c->traced)
        return; /* not sampled here: only the context goes on */
    c->uspan_live = true;
    wd_span_put_cstr(s, "gen_ai.operation.name", count ? "count_tokens" : "chat");
    wd_span_put_cstr(s, "gen_ai.provider.name", c->pops->semconv_name);
    wd_span_put_str(s, "gen_ai.request.model", c->route.model.p, c->route.model.n);
    wd_span_put_str(s, "gen_ai.response.model", c->route.model.p, c->route.model.n);
    if (c->creq.max_tokens > 0)
        wd_span_put_int(s, "gen_ai.request.max_tokens", c->creq.max_tokens);
    wd_span_put_cstr(s, "http.request.method", "POST");
    wd_span_put_cstr(s, "url.full", c->wire.url);
    wd_span_put_cstr(s, "warden.provider", c->route.provider->name);
    wd_span_put_int(s, "warden.attempt", c->attempts);
}

static void server_span_end(struct wd_call *c)
{
    const char *err = c->err != WD_ERR_NONE ? wd_call_error_name(c->err) : c->cut ? "client_gone" : NULL;
    struct wd_span *s = &c->sspan;
    const char *path = strchr(c->route_def->span, ' ') + 1;
    wd_span_put_cstr(s, "http.request.method", "POST");
    wd_span_put_cstr(s, "http.route", path);
    wd_span_put_cstr(s, "url.path", path);
    wd_span_put_cstr(s, "url.scheme", c->g->tls ? "https" : "http");
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
    if (c->fallbacks > 0)
        wd_span_put_int(s, "warden.upstream.fallbacks", c->fallbacks);
    if (err != NULL)
        wd_span_put_cstr(s, "error.type", err);
    /* a server error, or a stream that failed after its 200 with a server-side class */
    bool server_err = c->err == WD_ERR_API || c->err == WD_ERR_BAD_GATEWAY || c->err == WD_ERR_UNAVAILABLE ||
                      c->err == WD_ERR_TIMEOUT || c->err == WD_ERR_OVERLOADED;
    if (c->status >= 500 || c->status == 0 || server_err)
        s->status = WD_STATUS_ERROR;
    span_end(c, s);
}

static void on_event(struct wd_call *c, enum wd_call_ev ev)
{
    struct wd_span sp;
    switch (ev) {
    case WD_CALL_EV_START:
        trace_begin(c);
        if (c->traced || c->rt->cfg->telemetry.access_log)
            wd_call_capture_client(c);
        if (c->traced) {
            span_start(c, &c->sspan, c->route_def->span, WD_SPAN_SERVER, NULL);
        }
        break;
    case WD_CALL_EV_AUTH:
        if (!c->traced)
            break;
        span_start(c, &sp, "authenticate", WD_SPAN_INTERNAL, &c->sspan);
        sp.start_ns = (uint64_t)c->auth_us * 1000;
        wd_span_put_cstr(&sp, "warden.auth.method", "api_key");
        wd_span_put_cstr(&sp, "warden.auth.outcome", c->auth_reason == NULL ? "success" : "failure");
        if (c->auth_reason == NULL)
            wd_span_put_cstr(&sp, "enduser.id", c->who.subject);
        else
            sp.status = WD_STATUS_ERROR;
        span_end(c, &sp);
        break;
    case WD_CALL_EV_ROUTE:
        if (!c->traced)
            break;
        span_start(c, &sp, "route", WD_SPAN_INTERNAL, &c->sspan);
        sp.start_ns = (uint64_t)c->route_us * 1000;
        wd_span_put_cstr(&sp, "gen_ai.request.model", c->model_req);
        if (c->routed) {
            wd_span_put_cstr(&sp, "warden.route.provider", c->route.provider->name);
            wd_span_put_str(&sp, "warden.route.model", c->route.model.p, c->route.model.n);
            if (c->plan.n > 1)
                wd_span_put_int(&sp, "warden.route.targets", (int64_t)c->plan.n);
        } else {
            sp.status = WD_STATUS_ERROR;
        }
        span_end(c, &sp);
        break;
    case WD_CALL_EV_ATTEMPT_START: uspan_begin(c); break;
    case WD_CALL_EV_ATTEMPT_END: uspan_end(c, c->nattempts > 0 ? &c->attempt[c->nattempts - 1] : NULL); break;
    case WD_CALL_EV_DONE:
        uspan_end(c, NULL);
        if (c->traced)
            server_span_end(c);
        break;
    default: break;
    }
}

const struct wd_call_observer wd_observe_trace = {.name = "trace", .on_event = on_event};
