/* The audit observer: the auth, authz and call records of a call (audit/writer.h), and under audit.mode
 * fail_closed the admission gate (the authz record durable before the provider is called). fail_open writes
 * the auth and authz records when the call ends, with the times they happened, so the request path does no
 * audit work before the provider is called. */
#include <stdio.h>
#include <string.h>

#include "gateway/call.h"
#include "gateway/observe.h"
#include "lib/clock.h"
#include "lib/hash.h"

static void common(struct wd_call *c, struct wd_audit_rec *r)
{
    wd_audit_set_cstr(r, WD_AF_REQUEST_ID, c->rid);
    wd_audit_set_cstr(r, WD_AF_TRACE_ID, c->trace_id);
    if (c->who.subject[0] != '\0') {
        wd_audit_set_cstr(r, WD_AF_SUBJECT, c->who.subject);
        if (c->who.method != NULL && (strcmp(c->who.method, "api_key") == 0 || strcmp(c->who.method, "virtual_key") == 0))
            wd_audit_set_cstr(r, WD_AF_KEY_NAME, c->who.subject);
        wd_audit_set_cstr(r, WD_AF_AUTH_METHOD, c->who.method);
        if (c->who.team[0] != '\0')
            wd_audit_set_cstr(r, WD_AF_TEAM, c->who.team);
        if (c->who.org[0] != '\0')
            wd_audit_set_cstr(r, WD_AF_ORG, c->who.org);
    }
    if (c->addr[0] != '\0')
        wd_audit_set_cstr(r, WD_AF_CLIENT_ADDR, c->addr);
    if (c->ua[0] != '\0')
        wd_audit_set_cstr(r, WD_AF_USER_AGENT, c->ua);
    wd_audit_set_cstr(r, WD_AF_API, c->api->name);
    wd_audit_set_cstr(r, WD_AF_ROUTE, c->route_def->audit_route);
    if (c->model_req[0] != '\0')
        wd_audit_set_cstr(r, WD_AF_MODEL_REQUESTED, c->model_req);
    if (c->model_res[0] != '\0' && c->route.provider != NULL) {
        wd_audit_set_cstr(r, WD_AF_MODEL_RESOLVED, c->model_res);
        wd_audit_set_cstr(r, WD_AF_PROVIDER, c->route.provider->name);
    }
}

static const char *const outcome_names[] = {
    [WD_AO_PENDING] = "pending", [WD_AO_OK] = "ok",           [WD_AO_HTTP_ERROR] = "http_error",
    [WD_AO_TRANSPORT] = "transport_error", [WD_AO_TIMEOUT] = "timeout", [WD_AO_CANCELLED] = "cancelled",
};

const char *wd_observe_outcome_name(enum wd_attempt_outcome o) { return outcome_names[o]; }

/* {"upstream_attempts":N,"attempts":[{"provider","model","status","outcome","next"},...]}: every provider
 * request started is one the provider may bill. */
static void attempts_detail(struct wd_call *c, struct wd_buf *b)
{
    wd_buf_puts(b, "{\"upstream_attempts\":");
    wd_buf_put_i64(b, c->attempts);
    if (c->nattempts > 1 || c->fallbacks > 0) {
        wd_buf_puts(b, ",\"attempts\":[");
        for (int i = 0; i < c->nattempts; i++) {
            const struct wd_call_attempt *a = &c->attempt[i];
            wd_buf_puts(b, i ? ",{\"provider\":" : "{\"provider\":");
            wd_json_put_string(b, a->provider->name, strlen(a->provider->name));
            wd_buf_puts(b, ",\"model\":");
            wd_json_put_string(b, a->model.p, a->model.n);
            wd_buf_puts(b, ",\"status\":");
            wd_buf_put_i64(b, a->status);
            wd_buf_puts(b, ",\"outcome\":\"");
            wd_buf_puts(b, outcome_names[a->outcome]);
            wd_buf_putc(b, '"');
            if (a->next != NULL) {
                wd_buf_puts(b, ",\"next\":\"");
                wd_buf_puts(b, a->next);
                wd_buf_putc(b, '"');
            }
            wd_buf_putc(b, '}');
        }
        wd_buf_putc(b, ']');
    }
    wd_buf_putc(b, '}');
}

/* One record per model call, written when the request is over: completed, failed or cut. */
static void call_record(struct wd_call *c)
{
    struct wd_audit_rec r = {0};
    char respsha[65];
    common(c, &r);
    wd_audit_set_cstr(&r, WD_AF_KIND, "call");
    const char *event = c->cut ? "cut" : (c->err != WD_ERR_NONE || c->status != 200) ? "failed" : "completed";
    wd_audit_set_cstr(&r, WD_AF_EVENT, event);
    if (c->up_status > 0)
        wd_audit_set_int(&r, WD_AF_UPSTREAM_STATUS, c->up_status);
    if (c->stop_reason != WD_STOP_NONE)
        wd_audit_set_cstr(&r, WD_AF_STOP_REASON, wd_call_stop_name(c->stop_reason));
    if (c->usage.input_tokens || c->usage.output_tokens || c->usage.cache_read_tokens) {
        wd_audit_set_int(&r, WD_AF_INPUT_TOKENS, c->usage.input_tokens);
        wd_audit_set_int(&r, WD_AF_OUTPUT_TOKENS, c->usage.output_tokens);
        wd_audit_set_int(&r, WD_AF_CACHED_TOKENS, c->usage.cache_read_tokens);
    }
    if (c->ttfb_us > 0)
        wd_audit_set_int(&r, WD_AF_TTFB_US, c->ttfb_us);
    wd_audit_set_int(&r, WD_AF_TOTAL_US, wd_now_us() - c->t0_us);
    struct wd_buf detail = {0}; /* the record points at it until it is appended */
    if (c->attempts > 0) {
        attempts_detail(c, &detail);
        wd_buf_putc(&detail, '\0');
        if (!detail.oom)
            wd_audit_set_cstr(&r, WD_AF_DETAIL, detail.p);
    }
    if (c->err != WD_ERR_NONE)
        wd_audit_set_cstr(&r, WD_AF_ERROR_CLASS, wd_call_error_name(c->err));
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
    wd_audit_append(c->g->audit, &r, NULL, NULL);
    c->has_records = true;
    wd_buf_free(&detail);
}

static void auth_now(struct wd_call *c, const char *reason, int64_t ts)
{
    struct wd_audit_rec r = {0};
    if (ts > 0)
        wd_audit_set_int(&r, WD_AF_TS, ts);
    common(c, &r);
    wd_audit_set_cstr(&r, WD_AF_KIND, "auth");
    wd_audit_set_cstr(&r, WD_AF_EVENT, reason == NULL ? "success" : "failure");
    wd_audit_set_cstr(&r, WD_AF_AUTH_METHOD, c->who.method != NULL && c->who.subject[0] ? c->who.method
                                             : c->presented_jwt                          ? "oidc"
                                                                                         : "api_key");
    if (reason != NULL) {
        wd_audit_set_cstr(&r, WD_AF_REASON, reason);
        wd_audit_set_cstr(&r, WD_AF_ERROR_CLASS, "authentication");
    }
    wd_audit_append(c->g->audit, &r, NULL, NULL);
    c->has_records = true;
}

/* The authorization decision: the rule that allowed the call's first target, or why no target was allowed. */
static void authz_fill(struct wd_call *c, struct wd_audit_rec *r)
{
    common(c, r);
    const char *d = c->authz_denied ? "deny" : "allow";
    wd_audit_set_cstr(r, WD_AF_KIND, "authz");
    wd_audit_set_cstr(r, WD_AF_EVENT, d);
    wd_audit_set_cstr(r, WD_AF_DECISION, d);
    wd_audit_set_cstr(r, WD_AF_RULE, c->authz_rule[0] ? c->authz_rule : "no rbac section: every model");
    if (c->authz_denied)
        wd_audit_set_cstr(r, WD_AF_ERROR_CLASS, "permission");
}

static void flush_pending(struct wd_call *c)
{
    if (c->auth_pending) {
        c->auth_pending = false;
        auth_now(c, c->auth_reason, c->auth_ts);
    }
    if (c->authz_pending) {
        c->authz_pending = false;
        struct wd_audit_rec r = {0};
        wd_audit_set_int(&r, WD_AF_TS, c->authz_ts);
        authz_fill(c, &r);
        wd_audit_append(c->g->audit, &r, NULL, NULL);
        c->has_records = true;
    }
}

/* The call's records not yet appended: the pending auth and authz ones, and its call record. */
static void records_now(struct wd_call *c)
{
    c->recorded = true;
    if (!c->audited && !c->auth_pending)
        return;
    wd_observe_span_begin(c, "audit.write");
    flush_pending(c);
    if (c->audited)
        call_record(c);
    wd_observe_span_end(c);
}

static void on_event(struct wd_call *c, enum wd_call_ev ev)
{
    if (c->g->audit == NULL)
        return;
    switch (ev) {
    case WD_CALL_EV_START:
        if (wd_audit_content() != WD_AUDIT_CONTENT_NONE && (c->resp_md = EVP_MD_CTX_new()) != NULL)
            EVP_DigestInit_ex(c->resp_md, wd_sha256_md(), NULL);
        break;
    case WD_CALL_EV_AUTH:
        wd_call_capture_client(c);
        if (!wd_audit_fail_closed()) {
            c->auth_pending = true;
            c->auth_ts = c->auth_us;
        } else {
            auth_now(c, c->auth_reason, 0);
        }
        break;
    case WD_CALL_EV_ROUTE:
        if (c->authz_denied) { /* refused by RBAC: no admission follows, the deny record is due */
            c->authz_pending = true;
            c->authz_ts = wd_now_us();
        }
        break;
    case WD_CALL_EV_DONE:
        if (c->admitting || c->sealing)
            wd_audit_cancel(c->g->audit, c);
        if (c->hold_timed_out)
            wd_audit_note_early(c->g->audit);
        if (!c->recorded) /* ended without an answer's end (cut), or durable_answers is off */
            records_now(c);
        break;
    default: break;
    }
}

static void on_admitted(void *ctx, int ok)
{
    struct wd_call *c = ctx;
    c->admitting = false;
    wd_call_admit_done(c, ok);
}

/* The authorization decision: with static keys, every key may use every configured model. */
static int admit(struct wd_call *c)
{
    if (c->g->audit == NULL)
        return 0;
    if (!wd_audit_fail_closed()) {
        /* fail_open: the call goes on whatever happens to its records (a refusal is counted and noted) */
        c->authz_pending = true;
        c->authz_ts = wd_now_us();
        return 0;
    }
    struct wd_audit_rec r = {0};
    authz_fill(c, &r);
    if (wd_audit_append(c->g->audit, &r, on_admitted, c) != 0) {
        wd_call_admit_done(c, 0);
        return -1;
    }
    c->admitting = true;
    c->has_records = true;
    return 1;
}

static void on_sealed(void *ctx, int ok)
{
    struct wd_call *c = ctx;
    c->sealing = false;
    if (!ok && !c->hold_timed_out) /* a timed-out hold is counted at disposal */
        wd_audit_note_early(c->g->audit);
    wd_call_seal_done(c, ok);
}

/* audit.durable_answers: the answer is complete at Warden; its records are appended now and its last bytes
 * wait until they (and everything before them on this worker's chain) are durable, so that a process killed
 * at any moment has a record of every answer a client received in full. */
static int seal(struct wd_call *c)
{
    if (c->g->audit == NULL || !wd_audit_durable_answers())
        return 0;
    records_now(c);
    if (!c->has_records || wd_audit_barrier(c->g->audit, on_sealed, c) != 1)
        return 0;
    c->sealing = true;
    c->hold_until_ms = uv_now(c->g->loop) + wd_audit_durable_answers_timeout_ms();
    return 1;
}

/* The response bytes as they leave, for audit.content hash and full. */
static void on_bytes(struct wd_call *c, const char *p, size_t n)
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

const struct wd_call_observer wd_observe_audit = {
    .name = "audit", .on_event = on_event, .admit = admit, .on_bytes = on_bytes, .seal = seal};
