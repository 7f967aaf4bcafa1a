/* An inbound API is one table: its path prefix and routes, how its requests decode to the canonical request,
 * how canonical events encode back, its error shape. The Anthropic Messages API is the first entry
 * (gateway/inbound_anthropic.c); the OpenAI and Gemini inbound APIs are further entries, not copies of the call. */
#ifndef WARDEN_GATEWAY_INBOUND_H
#define WARDEN_GATEWAY_INBOUND_H

#include "api/canon.h"
#include "config/config.h"
#include "lib/json.h"

enum wd_route_kind {
    WD_ROUTE_GENERATE = 1,      /* a model call */
    WD_ROUTE_COUNT_TOKENS,      /* a token count */
    WD_ROUTE_MODELS,            /* the model list */
    WD_ROUTE_PROBE,             /* a connectivity probe: 200 {} */
};

struct wd_inbound_route {
    const char *method;         /* "POST", "GET" (GET also answers HEAD for a probe) */
    const char *path;           /* below the prefix, e.g. "/v1/messages" */
    enum wd_route_kind kind;
    const char *audit_route;    /* what audit records and spans call it */
    const char *span;           /* "POST /anthropic/v1/messages": the server span's name; from its 6th byte, the
                                   full path (http.route, metrics, the access line) */
};

/* What the call reads of an encoder's state. */
struct wd_inbound_out_state {
    bool stream;                /* the answer is an event stream */
    bool finished;              /* the final event (or the whole message) is written */
    bool failed;                /* a non-stream answer ended in an error: answer error instead */
    struct wd_error error;      /* when failed */
};

struct wd_inbound_ops {
    const char *name;           /* "anthropic": metrics api label, audit api field */
    const char *prefix;         /* "/anthropic" */
    enum wd_provider_type family; /* the provider family that speaks this API natively (relay when equal) */
    const struct wd_inbound_route *routes;
    size_t nroutes;
    /* request body -> tokens in *j and the head of the canonical request (model, max_tokens, stream): enough to
     * route it and to relay it to a provider of this API (strings point into body and a). err->cls WD_ERR_NONE:
     * out of memory */
    int (*parse)(const char *body, size_t len, bool count_tokens, struct wd_arena *a, struct wd_json *j,
                 struct wd_request *req, struct wd_error *err);
    /* the rest of the canonical request from those tokens: only when a target of another family needs it */
    int (*decode)(bool count_tokens, struct wd_arena *a, const struct wd_json *j, struct wd_request *req,
                  struct wd_error *err);
    /* the encoder: enc_size bytes; init returns its sink (events in), output appended to out */
    size_t enc_size;
    struct wd_sink *(*enc_init)(void *enc, struct wd_buf *out, bool stream, struct wd_str model);
    void (*enc_state)(const void *enc, struct wd_inbound_out_state *st);
    void (*enc_free)(void *enc);
    void (*write_ping)(struct wd_buf *out);       /* a keep-alive event of a stream */
    void (*write_error)(struct wd_buf *out, enum wd_error_class cls, const char *msg, size_t len);
    /* an error event that ends a stream already under way */
    void (*write_stream_error)(struct wd_buf *out, enum wd_error_class cls, const char *msg, size_t len);
    int (*error_status)(enum wd_error_class cls);
    void (*write_count)(struct wd_buf *out, int64_t tokens); /* a count_tokens answer */
    /* the model list of the deployment's routing (tiers and aliases): only the names visible(ctx, name) allows */
    void (*write_models)(struct wd_buf *out, const struct wd_config *cfg, bool (*visible)(void *ctx, const char *name),
                         void *ctx);
    /* the client's key: from the API's own header(s) */
    const char *const *key_headers; /* lower-case names tried in order; "authorization" means a Bearer token */
};

/* The inbound APIs, in the order their prefixes are matched. */
extern const struct wd_inbound_ops *const wd_inbound_apis[];
extern const size_t wd_inbound_napis;

#endif
