/* The Anthropic family's table: POST {base}/v1/messages (and /v1/messages/count_tokens), x-api-key,
 * anthropic-version, the client's anthropic-beta passed on. A client of the Messages API is relayed: its body
 * goes up byte for byte except what the target needs (providers/anthropic.h), and the answer comes back as sent
 * while the watcher reads its usage. */
#include <stdio.h>
#include <string.h>

#include "providers/anthropic.h"
#include "providers/provider.h"

static int build(const struct wd_build_in *in, struct wd_wire *w, struct wd_buf *body, struct wd_error *err)
{
    if (in->inbound != WD_PROVIDER_ANTHROPIC) {
        /* a canonical -> Messages encoder comes with the first inbound API of another family */
        wd_error_set(err, WD_ERR_INVALID_REQUEST, "provider %s: only Messages API clients can use it in this version",
                     in->provider->name);
        return -1;
    }
    int64_t ceiling = in->provider->max_output_tokens > 0 ? in->provider->max_output_tokens
                                                          : wd_anthropic_up_max_output(in->model);
    struct wd_anthropic_up_edits edits = {0};
    /* the edits found first: a body that needs none goes up as the client's own bytes, not a copy of them */
    if (wd_anthropic_up_rewrite_parsed(in->raw, in->raw_len, in->raw_json, in->model, ceiling, in->count_tokens, NULL,
                                       &edits, err) < 0)
        return -1;
    if (edits.unchanged) {
        w->body_ref = in->raw;
        w->body_ref_len = in->raw_len;
    } else if (wd_anthropic_up_rewrite_parsed(in->raw, in->raw_len, in->raw_json, in->model, ceiling,
                                              in->count_tokens, body, &edits, err) < 0) {
        return -1;
    }
    if (wd_provider_url(w->url, sizeof(w->url), in->provider->base_url,
                        in->count_tokens ? "/v1/messages/count_tokens" : "/v1/messages") < 0) {
        wd_error_set(err, WD_ERR_INVALID_REQUEST, "provider %s: base_url too long", in->provider->name);
        return -1;
    }
    size_t n = 0;
    w->headers[n++] = (struct wd_wire_header){"x-api-key", in->key};
    /* the client's version when it sent one (its body is written for it), else the provider's configured one */
    if (in->client_version.n > 0 && in->client_version.n < sizeof(w->version)) {
        memcpy(w->version, in->client_version.p, in->client_version.n);
        w->version[in->client_version.n] = '\0';
    } else {
        snprintf(w->version, sizeof(w->version), "%s",
                 in->provider->anthropic_version ? in->provider->anthropic_version : "2023-06-01");
    }
    w->headers[n++] = (struct wd_wire_header){"anthropic-version", w->version};
    if (in->client_beta.n > 0)
        w->headers[n++] = (struct wd_wire_header){"anthropic-beta", in->client_beta.p}; /* NUL-terminated by the call */
    w->headers[n++] = (struct wd_wire_header){"content-type", "application/json"};
    w->nheaders = n;
    w->relay = true;
    w->sse = in->req->stream && !in->count_tokens;
    return 0;
}

static void watch(void *st, const char *p, size_t n) { wd_anthropic_up_watch(st, p, n); }

static void watch_result(const void *st, struct wd_relay_result *out)
{
    const struct wd_anthropic_up_watch *w = st;
    out->usage = w->usage;
    out->stop_reason = w->stop_reason;
    out->started = w->started;
    out->done = w->done;
    out->error = w->error;
    out->model = (struct wd_str){w->model, strlen(w->model)};
}

static void watch_free(void *st) { wd_anthropic_up_watch_free(st); }

/* Content blocks (most of a stream) and pings: the API names each event after its data's type. */
static bool watch_skip(const char *name, size_t n)
{
    return (n > 14 && memcmp(name, "content_block_", 14) == 0) || (n == 4 && memcmp(name, "ping", 4) == 0);
}

static void no_dec_init(void *d, struct wd_sink *sink, const struct wd_request *req, struct wd_arena *a) {}
static int no_dec_chunk(void *d, const char *p, size_t n) { return -1; }
static void no_dec(void *d) {}

const struct wd_provider_ops wd_provider_anthropic = {
    .type = "anthropic",
    .semconv_name = "anthropic",
    .family = WD_PROVIDER_ANTHROPIC,
    .caps = {.images = true, .documents = true, .thinking = true, .thinking_blocks = true, .parallel_tools = true,
             .count_tokens = true},
    .build = build,
    .dec_size = 1,
    .dec_init = no_dec_init,
    .dec_chunk = no_dec_chunk,
    .dec_finish = no_dec,
    .dec_free = no_dec,
    .watch_size = sizeof(struct wd_anthropic_up_watch),
    .watch = watch,
    .watch_result = watch_result,
    .watch_free = watch_free,
    .watch_skip = watch_skip,
    .map_error = wd_anthropic_up_error,
    .count_tokens = wd_anthropic_up_count_tokens,
};
