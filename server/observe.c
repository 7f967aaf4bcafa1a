/* The server's observer of every call: Prometheus metrics (server/metrics.h) and the JSON access line. */
#include <string.h>

#include "gateway/observe.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "otel/exporter.h"
#include "server/metrics.h"
#include "server/server.h"

static enum wd_metrics_outcome outcome(enum wd_attempt_outcome o)
{
    switch (o) {
    case WD_AO_OK: return WD_MO_OK;
    case WD_AO_HTTP_ERROR: return WD_MO_HTTP_ERROR;
    case WD_AO_TIMEOUT: return WD_MO_TIMEOUT;
    default: return WD_MO_TRANSPORT_ERROR;
    }
}

static void access_line(struct wd_call *c, const char *err)
{
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
    wd_buf_puts(&f, strchr(c->route_def->span, ' ') + 1);
    wd_buf_puts(&f, "\",\"status\":");
    wd_buf_put_i64(&f, c->status);
    wd_buf_puts(&f, ",\"duration_ms\":");
    wd_buf_put_i64(&f, us / 1000);
    char frac[5] = {'.', (char)('0' + us % 1000 / 100), (char)('0' + us % 100 / 10), (char)('0' + us % 10), 0};
    wd_buf_puts(&f, us >= 0 ? frac : "");
    if (c->who.subject[0] != '\0') {
        wd_buf_puts(&f, c->who.issuer[0] != '\0' ? ",\"subject\":" : ",\"key\":");
        wd_json_put_string(&f, c->who.subject, strlen(c->who.subject));
        if (c->who.issuer[0] != '\0') {
            wd_buf_puts(&f, ",\"issuer\":");
            wd_json_put_string(&f, c->who.issuer, strlen(c->who.issuer));
        }
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
    if (c->attempts > 1) {
        wd_buf_puts(&f, ",\"attempts\":");
        wd_buf_put_i64(&f, c->attempts);
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

static void on_event(struct wd_call *c, enum wd_call_ev ev)
{
    int w = c->g->id;
    switch (ev) {
    case WD_CALL_EV_START:
        wd_metrics_inflight(w, +1);
        if (c->trace_dropped)
            wd_metrics_spans_dropped(WD_SPAN_DROP_QUEUE_FULL, 1);
        break;
    case WD_CALL_EV_ATTEMPT_END: {
        const struct wd_call_attempt *a = &c->attempt[c->nattempts - 1];
        if (a->outcome == WD_AO_CANCELLED && a->next == NULL)
            break; /* ended by the client or the call, not by the provider: not an outcome of the provider's */
        wd_metrics_upstream_attempt(w, a->provider->name, a->model.p, a->model.n, outcome(a->outcome));
        if (a->next != NULL && strcmp(a->next, "retry") == 0)
            wd_metrics_retry(w, a->provider->name);
        else if (a->next != NULL)
            wd_metrics_fallback(w, a->provider->name);
        break;
    }
    case WD_CALL_EV_COMMIT:
        if (c->stream && !c->stream_open) {
            c->stream_open = true;
            wd_metrics_stream_open(w, c->api->name, +1);
        }
        break;
    case WD_CALL_EV_DONE: {
        const char *err = c->err != WD_ERR_NONE ? wd_call_error_name(c->err) : c->cut ? "client_gone" : NULL;
        if (c->rt->cfg->telemetry.access_log)
            access_line(c, err);
        const char *route = strchr(c->route_def->span, ' ') + 1;
        char who_label[80];
        if (c->who.issuer[0] != '\0')
            snprintf(who_label, sizeof(who_label), "oidc:%s", c->who.issuer);
        struct wd_metrics_call mc = {
            .route = route,
            .api = c->api->name,
            .model = c->model_res[0] ? c->model_res : NULL,
            .model_len = strlen(c->model_res),
            .provider = c->route.provider ? c->route.provider->name : NULL,
            /* a key's name; an OIDC principal counts under its issuer ("oidc:okta"): a label per user would be
             * unbounded */
            .key = c->who.issuer[0] != '\0' ? who_label : c->who.subject,
            .status = c->status,
            .duration_s = (double)(wd_now_us() - c->t0_us) / 1e6,
            .ttft_s = c->ttfb_us > 0 ? (double)c->ttfb_us / 1e6 : -1.0,
            .in_tok = c->usage.input_tokens,
            .out_tok = c->usage.output_tokens,
            .cached_tok = c->usage.cache_read_tokens,
            .error_class = err,
            .stream = c->stream,
        };
        wd_metrics_call_done(w, &mc);
        if (c->stream_open)
            wd_metrics_stream_open(w, c->api->name, -1);
        wd_metrics_inflight(w, -1);
        break;
    }
    default: break;
    }
}

const struct wd_call_observer wd_observe_metrics = {.name = "metrics", .on_event = on_event};
