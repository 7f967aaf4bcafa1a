/* Anthropic Messages API as a provider (POST {base}/v1/messages, x-api-key, anthropic-version). When the
 * client speaks the Messages API too, its body goes upstream byte for byte except where the target needs a
 * change (the model name, max_tokens over the model's ceiling, opaque data another family issued, the
 * thinking-before-tool_use rule), and the answer comes back as it is sent while a watcher reads its usage. */
#ifndef WARDEN_PROVIDERS_ANTHROPIC_H
#define WARDEN_PROVIDERS_ANTHROPIC_H

#include "api/canon.h"
#include "lib/json.h"

/* Output token ceiling of a Claude model from its name (claude-sonnet-4-5: 64000, ...); 0 when unknown. */
int64_t wd_anthropic_up_max_output(struct wd_str model);

/* What a rewrite changed, for the log and the audit record. */
struct wd_anthropic_up_edits {
    bool model;                 /* the model name was replaced (always, unless equal) */
    bool max_tokens_clamped;    /* max_tokens was over the ceiling */
    int foreign_thinking;       /* thinking / redacted_thinking blocks with Warden-issued (other family) data, removed */
    int foreign_ids;            /* tool ids whose Warden-issued signature suffix was removed */
    bool thinking_dropped;      /* `thinking` was removed: the last assistant turn ends in tool use without a
                                   thinking block in front (it came from another family) */
    bool unchanged;             /* no edit at all: the output is the input */
};

/* Rewrites the client's Messages body (or count_tokens body) for the target model. max_output 0: no clamp.
 * The output is the input byte for byte except for the edits listed above. Returns 0, or -1 with err
 * (malformed JSON: WD_ERR_INVALID_REQUEST). */
int wd_anthropic_up_rewrite(const char *body, size_t len, struct wd_str model, int64_t max_output, bool count_tokens,
                            struct wd_buf *out, struct wd_anthropic_up_edits *edits, struct wd_error *err);

/* The same, with the body's tokens when the caller already has them (parsed from exactly these bytes; NULL:
 * the body is tokenized here). out NULL: nothing is written, *edits says what would change (edits->unchanged:
 * nothing; the caller sends the input as it is). */
int wd_anthropic_up_rewrite_parsed(const char *body, size_t len, const struct wd_json *parsed, struct wd_str model,
                                   int64_t max_output, bool count_tokens, struct wd_buf *out,
                                   struct wd_anthropic_up_edits *edits, struct wd_error *err);

/* Watches an answer that is relayed: feed each SSE data payload (message_start, content_block_*,
 * message_delta, message_stop, ping, error), or a whole message body once. Zero-initialise. */
struct wd_anthropic_up_watch {
    struct wd_usage usage;      /* input (without cache reads), output, cache reads */
    int64_t cache_creation_tokens;
    enum wd_stop_reason stop_reason;
    bool started;               /* message_start (or a whole message) seen */
    bool done;                  /* message_stop (or a whole message) seen */
    enum wd_error_class error;  /* an `error` event's class, WD_ERR_NONE otherwise */
    char model[128];            /* the model named in message_start */
};
void wd_anthropic_up_watch(struct wd_anthropic_up_watch *w, const char *data, size_t len);
void wd_anthropic_up_watch_free(struct wd_anthropic_up_watch *w);

/* A non-2xx answer ({"type":"error","error":{"type","message"}}) with HTTP status -> class and message. */
void wd_anthropic_up_error(int http_status, const char *body, size_t len, struct wd_error *err);
/* {"input_tokens": N} of a count_tokens answer. */
int wd_anthropic_up_count_tokens(const char *body, size_t len, int64_t *out);

#endif
