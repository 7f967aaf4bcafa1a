/* OpenAI Chat Completions codec (POST {base}/v1/chat/completions), which with base_url also serves every
 * compatible server (vLLM, Ollama, LM Studio, Groq, Mistral, OpenRouter, Together): canonical request -> body;
 * chat.completion JSON and chat.completion.chunk SSE payloads -> canonical events; errors -> classes.
 * What Chat Completions cannot express (thinking blocks, signatures) is dropped, as README documents. */
#ifndef WARDEN_PROVIDERS_OPENAI_H
#define WARDEN_PROVIDERS_OPENAI_H

#include "api/canon.h"
#include "config/config.h"
#include "lib/json.h"

/* What Warden knows about a model from its name. */
struct wd_openai_model {
    int64_t max_output;         /* output token ceiling; 0 when unknown (no clamp) */
    bool reasoning;             /* o-series, gpt-5 (not *-chat*): max_completion_tokens and reasoning_effort */
};
void wd_openai_model_info(struct wd_str model, struct wd_openai_model *out);

/* Function names must match ^[a-zA-Z0-9_-]{1,64}$. Others are mapped to a deterministic name ("f_" +
 * sanitised prefix + "_" + 8 hex digits of a hash), so that history and responses map back. */
bool wd_openai_name_valid(struct wd_str name);
size_t wd_openai_name_map(struct wd_str name, char out[65]);
/* Tool call ids sent upstream: 1..40 of [A-Za-z0-9_-] pass unchanged; others (long toolu_wd ids that carry
 * a signature) become "call_" + 32 hex digits of a hash, the same for a call and for its result. */
size_t wd_openai_call_id(struct wd_str id, char out[41]);

/* Options from the provider's config. */
struct wd_openai_opts {
    int64_t max_output_tokens;  /* providers.X.max_output_tokens: 0 = the built-in ceiling (if known) */
    enum wd_tokens_field tokens_field;
};

/* Writes the Chat Completions body for req against model (decoded). Streams ask for
 * stream_options.include_usage. Returns 0, or -1 with err (a request Chat Completions cannot express). */
int wd_openai_encode_request(const struct wd_request *req, struct wd_str model, const struct wd_openai_opts *o,
                             struct wd_buf *out, struct wd_error *err);

/* Response decoding: feed a whole chat.completion body, or each SSE data payload of a stream ("[DONE]"
 * included), then finish once the upstream body is complete. */
struct wd_openai_stream {
    struct wd_emitter out;      /* the sink, the usage so far, MESSAGE_START and ERROR sent */
    const struct wd_request *req;
    struct wd_arena *arena;
    bool done;                  /* finish_reason (or [DONE] after it) seen */
    int open;                   /* enum wd_part_type of the open block, 0 if none */
    int nparts;                 /* blocks emitted */
    int open_tool;              /* index in the provider's tool_calls of the open TOOL_CALL block, -1 if none */
    int ntools_seen;            /* tool_calls indexes seen */
    enum wd_stop_reason stop;   /* from finish_reason */
    bool have_finish;
    struct wd_json json;
    int last_tool;              /* highest tool_calls index opened, -1 before any (pieces come in order) */
    bool done_marker;           /* [DONE] seen: later payloads are ignored */
    bool text_seen;             /* answer text was emitted: later reasoning is dropped */
    bool refusal;               /* refusal text came: the stop reason is REFUSAL */
    struct wd_buf args;         /* decoded arguments of the open TOOL_CALL block, checked when it closes */
    struct wd_buf ids;          /* ids given to TOOL_CALL blocks, each NUL-terminated: a repeated one is replaced */
};
void wd_openai_stream_init(struct wd_openai_stream *s, struct wd_sink *sink, const struct wd_request *req,
                           struct wd_arena *a);
int wd_openai_stream_chunk(struct wd_openai_stream *s, const char *json, size_t len);
/* End of the upstream body: emits MESSAGE_STOP, or ERROR when the answer ended without a finish. */
void wd_openai_stream_finish(struct wd_openai_stream *s);
void wd_openai_stream_free(struct wd_openai_stream *s);

/* An error body ({"error":{"message","type","param","code"}}, or anything else) with HTTP status -> class and
 * a message safe for the client. */
void wd_openai_error(int http_status, const char *body, size_t len, struct wd_error *err);

#endif
