/* Trace spans: built on the request path into fixed-size structs (no allocation), encoded once when the
 * span ends, as OTLP protobuf or OTLP/JSON. Strings are referenced, not copied: they must stay alive
 * until the span is encoded. No prompt or completion content ever goes into a span. */
#ifndef WARDEN_OTEL_SPAN_H
#define WARDEN_OTEL_SPAN_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"

#define WD_SPAN_MAX_ATTRS 24
#define WD_SPAN_MAX_EVENTS 4
#define WD_SPAN_EVENT_MAX_ATTRS 2

enum wd_span_kind { WD_SPAN_INTERNAL = 1, WD_SPAN_SERVER = 2, WD_SPAN_CLIENT = 3 };
enum wd_span_status { WD_STATUS_UNSET = 0, WD_STATUS_OK = 1, WD_STATUS_ERROR = 2 };
enum wd_attr_type { WD_ATTR_STR = 1, WD_ATTR_INT, WD_ATTR_DOUBLE, WD_ATTR_BOOL, WD_ATTR_STR_ARRAY };

struct wd_attr {
    const char *key;          /* static */
    uint8_t type;
    uint32_t klen;            /* strlen(key), set by the setters; 0: not known, measured when encoding */
    struct wd_str s;          /* STR; STR_ARRAY: a one-element array holding s */
    int64_t i;                /* INT, BOOL */
    double d;                 /* DOUBLE */
};

struct wd_span_event {
    const char *name;         /* static */
    uint64_t time_ns;
    struct wd_attr attrs[WD_SPAN_EVENT_MAX_ATTRS];
    int nattrs;
};

struct wd_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8];
    bool has_parent;
    uint8_t flags;            /* W3C trace flags: bit 0 = sampled */
    struct wd_str trace_state;/* the caller's tracestate, passed on unchanged */
    const char *name;
    enum wd_span_kind kind;
    uint64_t start_ns, end_ns; /* Unix epoch nanoseconds */
    enum wd_span_status status;
    struct wd_str status_message;
    struct wd_attr attrs[WD_SPAN_MAX_ATTRS];
    int nattrs;
    struct wd_span_event events[WD_SPAN_MAX_EVENTS];
    int nevents;
    uint32_t dropped_attrs;   /* attributes past WD_SPAN_MAX_ATTRS */
    uint32_t dropped_events;  /* events past WD_SPAN_MAX_EVENTS (OTLP dropped_events_count) */
};

/* The attribute slot for key (klen = strlen(key)): its existing attribute, found by the key's text, to be
 * replaced, or a new one. NULL when the span is full: the attribute is counted in dropped_attrs (OTLP
 * dropped_attributes_count). The slot is zeroed but for key and klen. */
struct wd_attr *wd_span_attr_slot(struct wd_span *s, const char *key, size_t klen);
/* The same for a key the caller knows is not on the span yet: appended without looking (debug builds
 * assert it), as the search compares the key with every attribute already there. */
struct wd_attr *wd_span_attr_new(struct wd_span *s, const char *key, size_t klen);

/* The setters are inline so that the length of a literal key is a constant: encoding needs no strlen. */
static inline void wd_span__str(struct wd_span *s, const char *key, bool fresh, uint8_t type, const char *v,
                                size_t n)
{
    struct wd_attr *a = (fresh ? wd_span_attr_new : wd_span_attr_slot)(s, key, key ? strlen(key) : 0);
    if (a == NULL)
        return;
    a->type = type;
    a->s = (struct wd_str){v ? v : "", v ? n : 0};
}

static inline void wd_span__int(struct wd_span *s, const char *key, bool fresh, uint8_t type, int64_t v)
{
    struct wd_attr *a = (fresh ? wd_span_attr_new : wd_span_attr_slot)(s, key, key ? strlen(key) : 0);
    if (a == NULL)
        return;
    a->type = type;
    a->i = v;
}

/* Setting a key again replaces its value; new keys past the capacity are counted in dropped_attrs. */
static inline void wd_span_attr_str(struct wd_span *s, const char *key, const char *v, size_t n)
{
    wd_span__str(s, key, false, WD_ATTR_STR, v, n);
}
static inline void wd_span_attr_cstr(struct wd_span *s, const char *key, const char *v)
{
    wd_span__str(s, key, false, WD_ATTR_STR, v, v ? strlen(v) : 0);
}
static inline void wd_span_attr_int(struct wd_span *s, const char *key, int64_t v)
{
    wd_span__int(s, key, false, WD_ATTR_INT, v);
}
static inline void wd_span_attr_bool(struct wd_span *s, const char *key, bool v)
{
    wd_span__int(s, key, false, WD_ATTR_BOOL, v ? 1 : 0);
}
static inline void wd_span_attr_str_array1(struct wd_span *s, const char *key, const char *v, size_t n)
{
    wd_span__str(s, key, false, WD_ATTR_STR_ARRAY, v, n);
}
void wd_span_attr_double(struct wd_span *s, const char *key, double v);

/* The same for a key the caller has not set on this span (its fixed set of keys, each set once): see
 * wd_span_attr_new. */
static inline void wd_span_put_str(struct wd_span *s, const char *key, const char *v, size_t n)
{
    wd_span__str(s, key, true, WD_ATTR_STR, v, n);
}
static inline void wd_span_put_cstr(struct wd_span *s, const char *key, const char *v)
{
    wd_span__str(s, key, true, WD_ATTR_STR, v, v ? strlen(v) : 0);
}
static inline void wd_span_put_int(struct wd_span *s, const char *key, int64_t v)
{
    wd_span__int(s, key, true, WD_ATTR_INT, v);
}
static inline void wd_span_put_str_array1(struct wd_span *s, const char *key, const char *v, size_t n)
{
    wd_span__str(s, key, true, WD_ATTR_STR_ARRAY, v, n);
}

/* The new event (attributes filled by the caller, at most WD_SPAN_EVENT_MAX_ATTRS), or NULL when the span
 * already has WD_SPAN_MAX_EVENTS (counted in dropped_events). */
struct wd_span_event *wd_span_add_event(struct wd_span *s, const char *name, uint64_t time_ns);

/* One span as the tagged, length-delimited field 2 of opentelemetry.proto.trace.v1.ScopeSpans
 * (`spans`), so encoded spans concatenate straight into a ScopeSpans message. Fields in field-number
 * order, as protoc writes them; defaults (zero, empty) omitted. */
void wd_otlp_span_pb(const struct wd_span *s, struct wd_buf *out);
/* One span as an OTLP/JSON object (lowerCamelCase names, trace and span ids in hex, 64-bit integers as
 * decimal strings, enums as integers). */
void wd_otlp_span_json(const struct wd_span *s, struct wd_buf *out);

struct wd_otlp_resource {
    struct wd_attr attrs[16]; /* service.name, service.version, service.instance.id, k8s.*, OTEL_RESOURCE_ATTRIBUTES */
    int nattrs;
};

/* A whole opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest: one ResourceSpans with the
 * resource, one ScopeSpans with the scope (name, version) and the spans already encoded by
 * wd_otlp_span_pb (concatenated). */
void wd_otlp_request_pb(const struct wd_otlp_resource *r, const char *scope_name, const char *scope_version,
                        const char *spans, size_t spans_len, struct wd_buf *out);
/* The same in OTLP/JSON; spans_json is the wd_otlp_span_json objects joined by ','. */
void wd_otlp_request_json(const struct wd_otlp_resource *r, const char *scope_name, const char *scope_version,
                          const char *spans_json, size_t spans_len, struct wd_buf *out);
/* The bytes of those requests before the spans (for spans_len bytes of them, in protobuf), and after them
 * in JSON: an exporter holding the spans in pieces sends the pieces between them as they are. */
void wd_otlp_request_pb_head(const struct wd_otlp_resource *r, const char *scope_name, const char *scope_version,
                             size_t spans_len, struct wd_buf *out);
void wd_otlp_request_json_head(const struct wd_otlp_resource *r, const char *scope_name, const char *scope_version,
                               struct wd_buf *out);
#define WD_OTLP_REQUEST_JSON_TAIL "]}]}]}"

/* W3C traceparent: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", lowercase hex. Returns 0 and
 * fills the ids and flags, or -1 (invalid, or all-zero ids). A later version (not ff) is read the same way
 * when its flags are followed by the end or '-', and gives only the sampled flag. */
int wd_traceparent_parse(const char *v, size_t n, uint8_t trace_id[16], uint8_t parent_id[8], uint8_t *flags);
/* Writes the traceparent for span s (55 characters + NUL). */
void wd_traceparent_format(const struct wd_span *s, char out[56]);

#endif
