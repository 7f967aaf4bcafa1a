/* Anthropic Messages API codec: request JSON -> canonical request; canonical events -> SSE or a JSON
 * message; errors in Anthropic's shape. */
#ifndef WARDEN_API_ANTHROPIC_H
#define WARDEN_API_ANTHROPIC_H

#include "api/canon.h"
#include "lib/json.h"

/* Parses a Messages request body (a count_tokens body needs no max_tokens). Strings in *req point into
 * body and into a. On failure err->cls is set; WD_ERR_NONE there means memory ran out. */
int wd_anthropic_decode_request(const char *body, size_t len, bool count_tokens, struct wd_arena *a,
                                struct wd_json *j, struct wd_request *req, struct wd_error *err);
/* The same in two steps. Parse: tokens into *j, the object checked (no repeated key at any depth) and the head
 * read into *req (model, max_tokens, stream): enough to route the request and to relay it to a provider of this
 * API. Decode: the rest of the canonical request from those tokens, for a provider of another family. */
int wd_anthropic_parse_request(const char *body, size_t len, bool count_tokens, struct wd_arena *a,
                               struct wd_json *j, struct wd_request *req, struct wd_error *err);
int wd_anthropic_decode_parsed(bool count_tokens, struct wd_arena *a, const struct wd_json *j, struct wd_request *req,
                               struct wd_error *err);

/* HTTP status and Anthropic error type for an error class. */
int wd_anthropic_error_status(enum wd_error_class cls);
const char *wd_anthropic_error_type(enum wd_error_class cls);
/* {"type":"error","error":{"type":...,"message":...}} */
void wd_anthropic_write_error(struct wd_buf *b, enum wd_error_class cls, const char *msg, size_t msg_len);

/* Turns canonical events into the client's wire format. `model` is echoed as the message's model (the
 * name the client asked for). In stream mode each event appends SSE to out as it comes; otherwise the
 * message JSON is written to out at MESSAGE_STOP. An ERROR event writes `event: error` (stream) or sets
 * failed/error (non-stream) so the caller can answer with the error status instead. */
struct wd_anthropic_out {
    struct wd_sink sink;
    struct wd_buf *out;
    bool stream;
    struct wd_str model;
    bool started;               /* message_start written */
    bool finished;              /* message_stop or error written */
    bool failed;
    struct wd_error error;
    char msg_id[32];            /* "msg_wd" and 24 random characters, drawn when the message head is first written */
    /* non-stream accumulation: content blocks as JSON, the open block's pieces */
    struct wd_buf content;
    struct wd_buf block;        /* text / thinking text / tool args of the open block */
    struct wd_buf block_sig;
    enum wd_part_type block_type;
    int nblocks;
};
void wd_anthropic_out_init(struct wd_anthropic_out *o, struct wd_buf *out, bool stream, struct wd_str model);
void wd_anthropic_out_free(struct wd_anthropic_out *o);
/* `event: ping` while waiting for the provider. */
void wd_anthropic_write_ping(struct wd_buf *b);

/* Tool-use ids carry the provider's signature for that call, so a later request hands it back without
 * server-side state: "toolu_wd" + 20 random [A-Za-z0-9] + ["_" + base64url(signature)]. Only a standard
 * base64 signature is carried (anything else could not be an id); the id then goes without it. */
#define WD_TOOL_ID_PREFIX "toolu_wd"
size_t wd_anthropic_tool_id(char *out, size_t cap, struct wd_str signature);
/* Signatures on thinking blocks and redacted_thinking data are prefixed so foreign ones are recognised. */
#define WD_SIG_PREFIX "wdsig1."

#endif
