/* Gemini API (v1beta) codec: canonical request -> generateContent / countTokens body; response JSON and
 * SSE chunks -> canonical events. */
#ifndef WARDEN_PROVIDERS_GEMINI_H
#define WARDEN_PROVIDERS_GEMINI_H

#include "api/canon.h"
#include "lib/json.h"

/* What Warden knows about a Gemini model from its name. */
struct wd_gemini_model {
    int64_t max_output;      /* maxOutputTokens ceiling */
    int family;              /* 25 (2.5), 30 (3.x), 0 (no thinking controls) */
    int64_t budget_min;      /* 2.5: smallest non-zero thinking budget */
    int64_t budget_max;
    bool can_disable;        /* 2.5: a budget of 0 is allowed */
    bool flash;
};
void wd_gemini_model_info(struct wd_str model, struct wd_gemini_model *out);

/* Function names must match ^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$. Others are mapped to a deterministic name
 * ("f_" + sanitised prefix + "_" + 8 hex digits of a hash) so that history and responses map back. */
bool wd_gemini_name_valid(struct wd_str name);
size_t wd_gemini_name_map(struct wd_str name, char out[65]);

/* Writes the generateContent body for req against model (decoded, without "models/"). With
 * count_tokens, writes the countTokens body instead. Returns 0, or -1 with err (a request Gemini cannot
 * express). req->stop is not sent: Warden matches stop sequences itself (api/stop.h). */
int wd_gemini_encode_request(const struct wd_request *req, struct wd_str model, bool count_tokens, struct wd_buf *out,
                             struct wd_error *err);

/* Response decoding: feed each GenerateContentResponse JSON (a whole non-stream body, or one SSE data
 * payload), then finish once the upstream body is complete. */
struct wd_gemini_stream {
    struct wd_emitter out;          /* the sink, the usage so far, MESSAGE_START and ERROR sent */
    const struct wd_request *req;   /* for mapping function names back */
    struct wd_arena *arena;
    int open;                       /* enum wd_part_type of the open block, 0 if none */
    bool open_has_content;
    bool text_seen;                 /* answer text was emitted: a later text signature is dropped */
    int nparts;                     /* blocks emitted */
    int ncalls;
    struct wd_str finish_reason;    /* decoded copy in arena */
    struct wd_json json;
};
void wd_gemini_stream_init(struct wd_gemini_stream *s, struct wd_sink *sink, const struct wd_request *req,
                           struct wd_arena *a);
int wd_gemini_stream_chunk(struct wd_gemini_stream *s, const char *json, size_t len);
/* End of the upstream body: emits MESSAGE_STOP, or ERROR when the stream ended without a finish. */
void wd_gemini_stream_finish(struct wd_gemini_stream *s);
void wd_gemini_stream_free(struct wd_gemini_stream *s);

/* An upstream error body ({"error":{"code","message","status"}}) with HTTP status -> error class and a
 * message for the client. */
void wd_gemini_error(int http_status, const char *body, size_t len, struct wd_error *err);
/* Reads {"totalTokens": N} from a countTokens response. */
int wd_gemini_count_tokens(const char *body, size_t len, int64_t *out);

#endif
