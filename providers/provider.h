/* A provider family is one table of functions (curl's vtls backends are the model): build the wire request,
 * decode the answer into canonical events (or, when the client speaks the provider's own API, watch the answer
 * pass through), map an error to a class, capabilities. The registry (providers/registry.c) maps a config
 * `type:` to its table; nothing else names a provider family. */
#ifndef WARDEN_PROVIDERS_PROVIDER_H
#define WARDEN_PROVIDERS_PROVIDER_H

#include "api/canon.h"
#include "config/config.h"

#define WD_WIRE_MAX_HEADERS 8

struct wd_wire_header {
    const char *name;           /* lower case */
    const char *value;          /* valid until the call ends (points into the call's copies) */
};

/* What a table's build fills: the provider request. */
struct wd_wire {
    char url[1024];
    struct wd_wire_header headers[WD_WIRE_MAX_HEADERS];
    size_t nheaders;
    const char *body_ref;       /* set: the body is these bytes (the client's, unchanged; valid for the call), not
                                   what build appended */
    size_t body_ref_len;
    bool relay;                 /* the body is the client's own (same API family): the answer goes back to the
                                   client as the provider sends it, status and body included */
    bool sse;                   /* the answer is an event stream (feed its data payloads one by one) */
    char version[64];           /* storage for a header value the builder chose (e.g. anthropic-version) */
    char bearer[8200];          /* storage for "Bearer <key>" (wiped with the call) */
};

/* What a table's build reads. */
struct wd_build_in {
    const struct wd_provider *provider;  /* base_url, limits, family options */
    struct wd_str model;                 /* the provider's model name (decoded) */
    const char *key;                     /* the credential, NUL-terminated; only ever put in a header */
    const struct wd_request *req;        /* the canonical request */
    enum wd_provider_type inbound;       /* the family of the API the client speaks */
    const char *raw;                     /* the client's request body (gzip already decoded) */
    const struct wd_json *raw_json;      /* its tokens from the inbound decode (same bytes), or NULL */
    size_t raw_len;
    struct wd_str client_version;        /* the client's anthropic-version header, or empty */
    struct wd_str client_beta;           /* the client's anthropic-beta header (all values joined by ","), or empty */
    bool count_tokens;                   /* a token count, not a generation */
};

/* Relay mode: what the watcher learnt from the answer that passed through. */
struct wd_relay_result {
    struct wd_usage usage;
    enum wd_stop_reason stop_reason;
    bool started;                        /* the answer's message began (message_start, or a whole message) */
    bool done;                           /* the answer ended properly (message_stop, or a whole message) */
    enum wd_error_class error;           /* an error event inside a 200 answer; WD_ERR_NONE otherwise */
    struct wd_str model;                 /* the model the provider names in its answer, if any */
};

struct wd_provider_caps {
    bool images;                /* image parts are sent */
    bool documents;             /* PDF documents are sent */
    bool thinking;              /* reasoning can be asked for */
    bool thinking_blocks;       /* reasoning text and its signature come back */
    bool parallel_tools;
    bool count_tokens;          /* the provider has its own token-count endpoint */
};

struct wd_provider_ops {
    const char *type;           /* the config `type:` */
    const char *semconv_name;   /* gen_ai.provider.name of the OpenTelemetry GenAI conventions */
    enum wd_provider_type family;
    struct wd_provider_caps caps;
    /* The wire request: url and headers into *out, the body into *body (appended). 0, or -1 with err (a request
     * this family cannot express; a model name that cannot go into a URL). */
    int (*build)(const struct wd_build_in *in, struct wd_wire *out, struct wd_buf *body, struct wd_error *err);
    /* Canonical mode: dec_size bytes of decoder state, fed each SSE data payload of a streamed answer (or the
     * whole body of a plain one), then finished once the body is complete. Events go to sink. */
    size_t dec_size;
    void (*dec_init)(void *dec, struct wd_sink *sink, const struct wd_request *req, struct wd_arena *a);
    int (*dec_chunk)(void *dec, const char *p, size_t n);
    void (*dec_finish)(void *dec);
    void (*dec_free)(void *dec);
    /* Relay mode (NULL when the family has none): watch_size bytes of state, zeroed; fed each SSE data payload
     * (or the whole body); watch_result reads what it saw. */
    size_t watch_size;
    void (*watch)(void *w, const char *p, size_t n);
    void (*watch_result)(const void *w, struct wd_relay_result *out);
    void (*watch_free)(void *w);
    /* optional: the SSE event names whose events carry nothing to watch (not even parsed into events) */
    bool (*watch_skip)(const char *name, size_t n);
    /* A non-2xx answer: its class (for retry decisions, metrics and the audit record) and a message for a
     * client of another family. */
    void (*map_error)(int status, const char *body, size_t n, struct wd_error *err);
    /* A token-count answer's total. 0 or -1. */
    int (*count_tokens)(const char *body, size_t n, int64_t *out);
};

/* The table for a config type, or NULL. */
const struct wd_provider_ops *wd_provider_ops_for(enum wd_provider_type type);
/* The table for a config `type:` name, or NULL (config check). */
const struct wd_provider_ops *wd_provider_ops_named(const char *type);

/* Shared by the builders: "{base}{path}" into out, or -1 when it does not fit. Model names that go into a URL
 * must match [A-Za-z0-9._-]+ (checked by wd_provider_model_ok). */
int wd_provider_url(char *out, size_t cap, const char *base, const char *path);
bool wd_provider_model_ok(struct wd_str model);

#endif
