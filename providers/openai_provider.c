/* The OpenAI family's table: POST {base}/v1/chat/completions with a bearer key, which with base_url serves every
 * compatible server (vLLM, Ollama, LM Studio, Groq, Mistral, OpenRouter, Together). The codec is
 * providers/openai.c; Chat Completions has no token-count endpoint. */
#include <stdio.h>
#include <string.h>

#include "providers/openai.h"
#include "providers/provider.h"

static int build(const struct wd_build_in *in, struct wd_wire *w, struct wd_buf *body, struct wd_error *err)
{
    if (in->count_tokens) {
        wd_error_set(err, WD_ERR_NOT_FOUND, "provider %s has no token-count endpoint (Chat Completions)",
                     in->provider->name);
        return -1;
    }
    struct wd_openai_opts o = {.max_output_tokens = in->provider->max_output_tokens,
                               .tokens_field = in->provider->tokens_field};
    wd_buf_reserve(body, in->raw_len + 1024);
    if (wd_openai_encode_request(in->req, in->model, &o, body, err) < 0)
        return -1;
    if (wd_provider_url(w->url, sizeof(w->url), in->provider->base_url, "/v1/chat/completions") < 0) {
        wd_error_set(err, WD_ERR_INVALID_REQUEST, "provider %s: base_url too long", in->provider->name);
        return -1;
    }
    int n = snprintf(w->bearer, sizeof(w->bearer), "Bearer %s", in->key);
    if (n < 0 || (size_t)n >= sizeof(w->bearer)) {
        wd_error_set(err, WD_ERR_UNAVAILABLE, "provider %s: its credential is too long", in->provider->name);
        return -1;
    }
    w->headers[0] = (struct wd_wire_header){"authorization", w->bearer};
    w->headers[1] = (struct wd_wire_header){"content-type", "application/json"};
    w->nheaders = 2;
    w->relay = false;
    w->sse = in->req->stream;
    return 0;
}

static void dec_init(void *d, struct wd_sink *sink, const struct wd_request *req, struct wd_arena *a)
{
    wd_openai_stream_init(d, sink, req, a);
}
static int dec_chunk(void *d, const char *p, size_t n) { return wd_openai_stream_chunk(d, p, n); }
static void dec_finish(void *d) { wd_openai_stream_finish(d); }
static void dec_free(void *d) { wd_openai_stream_free(d); }

static int no_count(const char *body, size_t n, int64_t *out) { return -1; }

const struct wd_provider_ops wd_provider_openai = {
    .type = "openai",
    .semconv_name = "openai",
    .family = WD_PROVIDER_OPENAI,
    .caps = {.images = true, .documents = false, .thinking = true, .thinking_blocks = false, .parallel_tools = true,
             .count_tokens = false},
    .build = build,
    .dec_size = sizeof(struct wd_openai_stream),
    .dec_init = dec_init,
    .dec_chunk = dec_chunk,
    .dec_finish = dec_finish,
    .dec_free = dec_free,
    .map_error = wd_openai_error,
    .count_tokens = no_count,
};
