/* The Anthropic Messages API as an inbound table: routes under /anthropic, the codec in api/anthropic*.c, its
 * error shape, and the model list of the deployment's tiers and aliases. */
#include <stdalign.h>
#include <string.h>

#include "api/anthropic.h"
#include "gateway/inbound.h"

static const struct wd_inbound_route routes[] = {
    {"POST", "/v1/messages", WD_ROUTE_GENERATE, "/v1/messages", "POST /anthropic/v1/messages"},
    {"POST", "/v1/messages/count_tokens", WD_ROUTE_COUNT_TOKENS, "/v1/messages/count_tokens",
     "POST /anthropic/v1/messages/count_tokens"},
    {"GET", "/v1/models", WD_ROUTE_MODELS, "/v1/models", "GET /anthropic/v1/models"},
    {"GET", "/api/hello", WD_ROUTE_PROBE, "/api/hello", "GET /anthropic/api/hello"}, /* Claude Code's probe */
};

static struct wd_sink *enc_init(void *enc, struct wd_buf *out, bool stream, struct wd_str model)
{
    struct wd_anthropic_out *o = enc;
    wd_anthropic_out_init(o, out, stream, model);
    return &o->sink;
}

static void enc_state(const void *enc, struct wd_inbound_out_state *st)
{
    const struct wd_anthropic_out *o = enc;
    st->stream = o->stream;
    st->finished = o->finished;
    st->failed = o->failed;
    st->error = o->error;
}

static void enc_free(void *enc) { wd_anthropic_out_free(enc); }

static void write_count(struct wd_buf *b, int64_t n)
{
    wd_buf_puts(b, "{\"input_tokens\":");
    wd_buf_put_i64(b, n);
    wd_buf_putc(b, '}');
}

static void model_entry(struct wd_buf *b, int *n, const char *id, const char *display)
{
    wd_buf_puts(b, (*n)++ ? ",{\"type\":\"model\",\"id\":" : "{\"type\":\"model\",\"id\":");
    wd_json_put_string(b, id, strlen(id));
    wd_buf_puts(b, ",\"display_name\":");
    wd_json_put_string(b, display, strlen(display));
    wd_buf_puts(b, ",\"created_at\":\"2025-01-01T00:00:00Z\"}");
}

static void write_models(struct wd_buf *b, const struct wd_config *cfg, bool (*visible)(void *ctx, const char *name),
                         void *ctx)
{
    wd_buf_puts(b, "{\"data\":[");
    static const char *const names[3] = {"claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"};
    const char *targets[3] = {cfg->tier_opus, cfg->tier_sonnet, cfg->tier_haiku};
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (targets[i] != NULL && visible(ctx, names[i]))
            model_entry(b, &n, names[i], targets[i]);
    for (size_t i = 0; i < cfg->naliases; i++)
        if (visible(ctx, cfg->aliases[i].name))
            model_entry(b, &n, cfg->aliases[i].name, cfg->aliases[i].target);
    wd_buf_puts(b, "],\"has_more\":false,\"first_id\":null,\"last_id\":null}");
}

static void write_stream_error(struct wd_buf *b, enum wd_error_class cls, const char *msg, size_t len)
{
    wd_buf_puts(b, "event: error\ndata: ");
    wd_anthropic_write_error(b, cls, msg, len);
    wd_buf_puts(b, "\n\n");
}

static const char *const key_headers[] = {"x-api-key", "authorization", NULL};

const struct wd_inbound_ops wd_inbound_anthropic = {
    .name = "anthropic",
    .prefix = "/anthropic",
    .family = WD_PROVIDER_ANTHROPIC,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .parse = wd_anthropic_parse_request,
    .decode = wd_anthropic_decode_parsed,
    .enc_size = sizeof(struct wd_anthropic_out),
    .enc_init = enc_init,
    .enc_state = enc_state,
    .enc_free = enc_free,
    .write_ping = wd_anthropic_write_ping,
    .write_error = wd_anthropic_write_error,
    .write_stream_error = write_stream_error,
    .error_status = wd_anthropic_error_status,
    .write_count = write_count,
    .write_models = write_models,
    .key_headers = key_headers,
};

const struct wd_inbound_ops *const wd_inbound_apis[] = {&wd_inbound_anthropic};
const size_t wd_inbound_napis = sizeof(wd_inbound_apis) / sizeof(wd_inbound_apis[0]);
