/* Prometheus metrics (text exposition format 0.0.4) for GET /metrics.
 *
 * Request path: lock-free. Each worker owns its counters and histograms and is their only writer (relaxed
 * atomic loads and stores, no read-modify-write); a scrape sums every worker's storage. Calls from a thread
 * that is not a worker (worker index out of range) go to a shared block under a mutex.
 *
 * Label cardinality is bounded. Label values come only from configuration (provider names, auth key names),
 * from the resolved model name, or from fixed enumerations (routes, inbound APIs, error classes, status codes,
 * outcomes); never request ids or request text. Models, keys and providers are interned into fixed-size
 * tables (models: 64, or WARDEN_METRICS_MAX_MODELS read at wd_metrics_init; keys: 256, or
 * WARDEN_METRICS_MAX_KEYS; providers: 64). A name past a full table, or one that is not printable ASCII or
 * is longer than 128 bytes, is counted under the value "other"; a NULL or empty name is "none". Interning
 * a new name takes a mutex; a name already interned is found without one.
 *
 * Series (see also deploy/grafana-dashboard.json):
 *   warden_requests_total{route,api,model,provider,status}                counter
 *   warden_request_duration_seconds{route,api,model,provider,status}      histogram, 0.005 .. 300 s
 *   warden_time_to_first_token_seconds{api,model,provider}                histogram, 0.01 .. 120 s (streams)
 *   warden_upstream_attempts_total{provider,model,outcome}                counter
 *   warden_upstream_retries_total{provider}                               counter
 *   warden_upstream_fallbacks_total{provider}                             counter
 *   warden_errors_total{api,class}                                        counter
 *   warden_tokens_total{model,key,type}          type: input|output|cached counter
 *   warden_cost_usd_total{model,key}             only for models with a price (wd_metrics_set_price)
 *   warden_open_streams{api}, warden_inflight_requests                    gauges
 *   warden_audit_*                               the audit writers' counters (as before)
 *   warden_otel_spans_queued, warden_otel_spans_exported_total, warden_otel_spans_dropped_total{reason},
 *   warden_otel_export_requests_total{result}
 *   warden_metrics_label_overflow_total{label}   names folded to "other" because a table was full
 *   warden_connections_open, warden_connections_max, warden_connections_refused_total, warden_fd_exhausted_total,
 *   warden_requests_refused_early_total{reason}, warden_pending_body_bytes, warden_http2_goaway_total{reason},
 *   warden_http2_streams_refused_total, warden_http2_streams_doomed_total   the front guard (server/front.h)
 *   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
 *   process_open_fds, process_max_fds, process_start_time_seconds, warden_build_info{version}
 */
#ifndef WARDEN_SERVER_METRICS_H
#define WARDEN_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "audit/writer.h"
#include "otel/exporter.h"

/* One finished request, reported once at its end (completed, failed or cut).
 *   route     the route as in the README's table: "/anthropic/v1/messages",
 *             "/anthropic/v1/messages/count_tokens", "/anthropic/v1/models", "/anthropic/api/hello",
 *             "/openai/v1/chat/completions", "/openai/v1/models"; anything else is "other".
 *   api       the inbound API: "anthropic", "openai", "gemini"; anything else is "other".
 *   model     the resolved provider model name (e.g. "gemini-2.5-flash", route.model), not what the client
 *             asked for; NULL (not resolved) is "none". model_len: its length (need not be NUL-terminated).
 *   provider  the provider's config name (e.g. "gemini"); NULL is "none".
 *   key       the auth key's config name (wd_principal.subject); NULL or "" (unauthenticated) is "none".
 *   status    the HTTP status sent (100..599; anything else is "other").
 *   duration_s  from the handler's start to the end of the response.
 *   ttft_s    time to the first response byte of a stream; < 0: none. Recorded only when stream is true
 *             (for a whole response it equals the duration and would blur the histogram).
 *   in_tok, out_tok, cached_tok  the usage (0 when unknown); added to warden_tokens_total, and to
 *             warden_cost_usd_total when the model has a price.
 *   error_class  the error's class, NULL for none; one of invalid_request, authentication, permission,
 *             not_found, too_large, unsupported_media, rate_limit, api, bad_gateway, unavailable, timeout,
 *             overloaded, client_gone; anything else is "other". Counted in warden_errors_total{api,class}.
 *   stream    a streamed (SSE) response. */
struct wd_metrics_call {
    const char *route;
    const char *api;
    const char *model;
    size_t model_len;
    const char *provider;
    const char *key;
    int status;
    double duration_s;
    double ttft_s;
    int64_t in_tok, out_tok, cached_tok;
    const char *error_class;
    bool stream;
};

/* Outcome of one upstream attempt (label outcome). Also used for exporter requests (label result). */
enum wd_metrics_outcome {
    WD_MO_OK = 0,           /* "ok": a 2xx answer */
    WD_MO_HTTP_ERROR,       /* "http_error": an answer with a non-2xx status */
    WD_MO_TRANSPORT_ERROR,  /* "transport_error": connect failure, reset, malformed response */
    WD_MO_TIMEOUT,          /* "timeout": connect, first-byte or idle timeout */
    WD_MO__COUNT
};

/* Why exporter spans were dropped (label reason): enum wd_metrics_span_drop, in otel/exporter.h. */

/* Once, before the workers start (worker indexes 0..nworkers-1). Reads WARDEN_METRICS_MAX_MODELS and
 * WARDEN_METRICS_MAX_KEYS. Returns 0, or -1 when out of memory (the metrics then stay empty). */
int wd_metrics_init(unsigned nworkers);
/* After the workers stopped (and wd_metrics_serve_stop). */
void wd_metrics_free(void);

/* ---- request path: `worker` is the calling worker's index (struct wd_worker.id) ---- */

/* One call per request, at its end. */
void wd_metrics_call_done(int worker, const struct wd_metrics_call *c);
/* One upstream attempt (the first try and each retry) with its outcome. */
void wd_metrics_upstream_attempt(int worker, const char *provider, const char *model, size_t model_len,
                                 enum wd_metrics_outcome outcome);
/* A retry of the upstream request (counted besides its attempt). */
void wd_metrics_retry(int worker, const char *provider);
/* A call left this provider for the next target of its fallback chain. */
void wd_metrics_fallback(int worker, const char *provider);
/* A streamed response opens (+1) or ends (-1); the gauge warden_open_streams{api}. Every +1 needs its -1
 * from the same worker. */
void wd_metrics_stream_open(int worker, const char *api, int delta);
/* A request starts (+1) or is disposed of (-1); the gauge warden_inflight_requests. */
void wd_metrics_inflight(int worker, int delta);

/* ---- prices: warden_cost_usd_total ----
 * USD per million tokens for a resolved model name (as passed in wd_metrics_call.model). cached_per_mtok
 * < 0 charges cached tokens at the input price. cost = (in*input + out*output + cached*cached) / 1e6.
 * A model without a price has no cost series at all (no price is configured by default, so by default
 * warden_cost_usd_total is absent). The model takes a slot in the model table. Any thread; returns 0, or
 * -1 when the model table is full or the name is not a valid label value. The server applies the config's
 * models.prices with these at start and on reload. */
int wd_metrics_set_price(const char *model, double input_per_mtok, double output_per_mtok, double cached_per_mtok);
/* Forgets every price (e.g. before applying a reloaded config's prices). Costs already counted stay. */
void wd_metrics_clear_prices(void);

/* ---- the trace exporter (otel/exporter.c); any thread ---- */
void wd_metrics_spans_queued(uint64_t depth);                        /* gauge: spans waiting for export */
void wd_metrics_spans_exported(uint64_t n);                          /* spans accepted by the collector */
void wd_metrics_spans_dropped(enum wd_metrics_span_drop reason, uint64_t n);
void wd_metrics_export_request(enum wd_metrics_outcome result);      /* one export request and its result */

/* ---- scrape ----
 * Fills out[0..cap) with the stats of each audit writer and returns how many it filled (0: audit off).
 * Called from the scraping thread (a worker, or the metrics listener's thread). */
typedef size_t (*wd_metrics_audit_fn)(struct wd_audit_stats *out, size_t cap);

/* Appends the whole exposition to out. audit may be NULL (the audit series then read 0). */
void wd_metrics_render(struct wd_buf *out, wd_metrics_audit_fn audit);

/* The separate metrics listener (telemetry.metrics.listen): a thread with its own libuv loop serving GET (and
 * HEAD) /metrics over HTTP/1.1 on host:port, one request per connection (Connection: close), 404 for
 * anything else; at most 64 connections, each closed after 10 s. Returns 0, or -1 with why filled. */
int wd_metrics_serve(const char *host, uint16_t port, wd_metrics_audit_fn audit, char *why, size_t why_cap);
/* Closes the listener and joins its thread; a no-op when it was not started. */
void wd_metrics_serve_stop(void);

/* The exposition's Content-Type. */
#define WD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
