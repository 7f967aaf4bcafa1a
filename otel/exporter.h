/* The OTLP/HTTP trace exporter: spans are encoded when they end and queued per worker (bounded; what
 * does not fit is dropped and counted, a request never waits); a background thread sends them in
 * batches every second, retries 429/502/503/504 and transport errors with backoff (honouring
 * Retry-After), and flushes on shutdown. Settings come from the telemetry config, and the standard
 * OTEL_* environment variables fill what it leaves out. */
#ifndef WARDEN_OTEL_EXPORTER_H
#define WARDEN_OTEL_EXPORTER_H

#include <stdbool.h>
#include <stdint.h>

#include "otel/span.h"
#include "config/config.h"

/* Why exporter spans were dropped (label reason). */
enum wd_metrics_span_drop {
    WD_SPAN_DROP_QUEUE_FULL = 0,   /* "queue_full" */
    WD_SPAN_DROP_EXPORT_FAILED,    /* "export_failed": the export request failed for good */
    WD_SPAN_DROP_SHUTDOWN,         /* "shutdown": still queued at exit */
    WD_SPAN_DROP_ENCODE,           /* "encode": too large, or out of memory */
    WD_SPAN_DROP__COUNT
};

/* Result of one export request (label result); the values are those of enum wd_metrics_outcome. */
enum wd_otel_result { WD_OTEL_OK = 0, WD_OTEL_HTTP_ERROR, WD_OTEL_TRANSPORT_ERROR, WD_OTEL_TIMEOUT };

/* Where the exporter counts (the server points these at its /metrics before wd_otel_init; a NULL member
 * counts nothing). Any thread calls them. */
struct wd_otel_counters {
    void (*spans_queued)(uint64_t depth);                             /* gauge: spans waiting for export */
    void (*spans_exported)(uint64_t n);                               /* spans accepted by the collector */
    void (*spans_dropped)(enum wd_metrics_span_drop reason, uint64_t n);
    void (*export_request)(enum wd_otel_result result);               /* one export request and its result */
};
/* Once, before wd_otel_init. */
void wd_otel_set_counters(const struct wd_otel_counters *c);

/* Reads config + environment; starts the export thread when an endpoint is known. -1 with why on a
 * configuration error. Without an endpoint tracing is off (wd_otel_enabled() false). */
int wd_otel_init(const struct wd_telemetry_config *cfg, unsigned nworkers, char *why, size_t why_cap);
/* Sends what is queued (bounded by the export timeout) and stops the thread. */
void wd_otel_shutdown(void);
bool wd_otel_enabled(void);

/* Head sampling for a new root trace (trace id based, so every replica decides the same). */
bool wd_otel_sample(const uint8_t trace_id[16]);

/* Whether a new sampled trace should be recorded: false when the worker's queue is nearly full, so that
 * traces are dropped whole (the caller counts it) rather than losing some of their spans. */
bool wd_otel_admit(unsigned worker);

/* Queues an ended span from worker `worker`. Never blocks on I/O. */
void wd_otel_submit(unsigned worker, const struct wd_span *s);

struct wd_otel_stats {
    uint64_t queued, exported, dropped_full, dropped_export, requests_ok, requests_failed, retries;
};
void wd_otel_stats(struct wd_otel_stats *out);

/* For tests and logs: the traces URL, e.g. http://127.0.0.1:4318/v1/traces ("" when off). */
const char *wd_otel_traces_url(void);

#endif
