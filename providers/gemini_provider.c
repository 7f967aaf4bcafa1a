/* The Gemini family's table: generateContent / streamGenerateContent / countTokens under v1beta, the key in
 * x-goog-api-key, the codec in gemini_request.c and gemini_response.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/gemini.h"
#include "providers/provider.h"

static int build(const struct wd_build_in *in, struct wd_wire *w, struct wd_buf *body, struct wd_error *err)
{
    if (!wd_provider_model_ok(in->model)) {
        wd_error_set(err, WD_ERR_NOT_FOUND, "model: invalid provider model name");
        return -1;
    }
    /* The Gemini body is about as long as the client's (long strings are copied as they are): one allocation of
     * that size instead of eight doublings from 256 bytes. */
    wd_buf_reserve(body, in->raw_len + 1024);
    const struct wd_request *req = in->req;
    struct wd_request clamped;
    int64_t cap = in->provider->max_output_tokens;
    if (cap > 0 && req->max_tokens > cap) {
        /* providers.<name>.max_output_tokens below the model's own ceiling (the encoder applies that one) */
        clamped = *req;
        clamped.max_tokens = cap;
        req = &clamped;
    }
    if (wd_gemini_encode_request(req, in->model, in->count_tokens, body, err) < 0)
        return -1;
    const char *op = in->count_tokens ? "countTokens" : in->req->stream ? "streamGenerateContent?alt=sse" : "generateContent";
    int n = snprintf(w->url, sizeof(w->url), "%s/v1beta/models/%.*s:%s", in->provider->base_url, (int)in->model.n,
                     in->model.p, op);
    if (n < 0 || (size_t)n >= sizeof(w->url)) {
        wd_error_set(err, WD_ERR_INVALID_REQUEST, "model: name too long");
        return -1;
    }
    w->headers[0] = (struct wd_wire_header){"x-goog-api-key", in->key};
    w->headers[1] = (struct wd_wire_header){"content-type", "application/json"};
    w->nheaders = 2;
    w->sse = in->req->stream && !in->count_tokens;
    w->relay = false;
    return 0;
}

static void dec_init(void *d, struct wd_sink *sink, const struct wd_request *req, struct wd_arena *a)
{
    wd_gemini_stream_init(d, sink, req, a);
}
static int dec_chunk(void *d, const char *p, size_t n) { return wd_gemini_stream_chunk(d, p, n); }
static void dec_finish(void *d) { wd_gemini_stream_finish(d); }
static void dec_free(void *d) { wd_gemini_stream_free(d); }

static int count_tokens(const char *body, size_t n, int64_t *out) { return wd_gemini_count_tokens(body, n, out); }

const struct wd_provider_ops wd_provider_gemini = {
    .type = "gemini",
    .semconv_name = "gcp.gemini",
    .family = WD_PROVIDER_GEMINI,
    .caps = {.images = true, .documents = true, .thinking = true, .thinking_blocks = true, .parallel_tools = true,
             .count_tokens = true},
    .build = build,
    .dec_size = sizeof(struct wd_gemini_stream),
    .dec_init = dec_init,
    .dec_chunk = dec_chunk,
    .dec_finish = dec_finish,
    .dec_free = dec_free,
    .map_error = wd_gemini_error,
    .count_tokens = count_tokens,
};
