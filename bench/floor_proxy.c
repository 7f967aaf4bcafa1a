/* The floor under Warden's added latency: a pass-through proxy built from the same parts Warden's request
 * path is built from (libh2o over libuv for the client side, server/upstream.c's libcurl multi_socket
 * client for the provider side, one loop, the same 64 KB socket input buffer) and nothing else: no
 * authentication, no JSON, no translation, no routing, no metrics, no logs. A POST is sent on unchanged
 * (path and query appended to the upstream base, the body as received, and of its headers the ones a
 * provider needs: content-type, the Gemini and Anthropic credentials and version headers, and a W3C
 * traceparent, each when the client sent it, as a proxy passes them on), and the provider's status, content
 * type and body bytes come back as they arrive. So the same binary is the floor for the Gemini path (the body
 * Warden would have sent) and for the Anthropic pass-through (the client's own request).
 *
 * bench/run.sh measures it beside Warden against the same fake with the body Warden would have sent:
 * what it adds over calling the fake directly is what any gateway on this stack adds before doing any
 * work of its own, and Warden minus floor is the part of Warden's added latency that is Warden's code.
 *
 * With --read-body it also reads the request body once with Warden's JSON tokenizer (lib/json.c) and finds
 * its top-level "model", answering 400 when the body is not JSON: the floor of a gateway that must read the
 * model from the body to route it, which any gateway whose routing depends on the model pays.
 *
 * Usage: floor_proxy PORT UPSTREAM_BASE [--read-body]   (listens on 127.0.0.1:PORT; prints {"port":PORT} when
 * ready) */
#define H2O_USE_LIBUV 1
#include <h2o.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/json.h"
#include "net/upstream.h"
#include "server/accept.h"

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static struct wd_upstream *up;
static const char *upstream_base;

struct fcall {
    h2o_generator_t gen;         /* first: h2o finds the call from it */
    h2o_req_t *req;
    struct wd_upstream_xfer *xfer;
    char *url;
    struct wd_upstream_header hdrs[8]; /* values in the request's pool; curl copies them at start */
    char *out, *sending;         /* bytes received and not yet handed to h2o; bytes h2o is sending */
    size_t nout, capout, capsending;
    bool started, in_flight, done, final_sent, gone; /* done: the upstream transfer ended (xfer is NULL) */
};

static void fcall_free(struct fcall *c)
{
    free(c->url);
    free(c->out);
    free(c->sending);
    free(c);
}

static void flush(struct fcall *c)
{
    if (!c->started || c->in_flight || c->final_sent || (c->nout == 0 && !c->done))
        return;
    char *t = c->sending;
    size_t tc = c->capsending;
    c->sending = c->out;
    c->capsending = c->capout;
    h2o_iovec_t v = h2o_iovec_init(c->sending, c->nout);
    c->out = t;
    c->capout = tc;
    c->nout = 0;
    c->in_flight = true;
    c->final_sent = c->done;
    h2o_send(c->req, &v, 1, c->final_sent ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    struct fcall *c = (struct fcall *)g;
    c->in_flight = false;
    flush(c);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    struct fcall *c = (struct fcall *)g;
    c->gone = true;
    if (c->xfer)
        wd_upstream_cancel(c->xfer);
    c->xfer = NULL;
}

/* The call lives in the request's pool-linked memory only as a pointer: freed when the request is. */
static void on_req_dispose(void *p)
{
    struct fcall **slot = p;
    struct fcall *c = *slot;
    if (c->xfer) /* NULL once the transfer is done or cancelled */
        wd_upstream_cancel(c->xfer);
    fcall_free(c);
}

static void up_response(void *ctxp, int status, long retry_after_s, const char *content_type)
{
    (void)retry_after_s;
    struct fcall *c = ctxp;
    h2o_req_t *req = c->req;
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "Upstream";
    if (content_type) {
        size_t n = strlen(content_type);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, h2o_strdup(&req->pool, content_type, n).base, n);
    }
    c->gen.proceed = on_proceed;
    c->gen.stop = on_stop;
    h2o_start_response(req, &c->gen);
    c->started = true;
}

static void up_data(void *ctxp, const char *p, size_t n)
{
    struct fcall *c = ctxp;
    if (c->nout + n > c->capout) {
        size_t cap = c->capout ? c->capout : 4096;
        while (cap < c->nout + n)
            cap *= 2;
        char *q = realloc(c->out, cap);
        if (!q)
            abort();
        c->out = q;
        c->capout = cap;
    }
    memcpy(c->out + c->nout, p, n);
    c->nout += n;
}

static void up_flush(void *ctxp)
{
    flush(ctxp);
}

static void up_done(void *ctxp, enum wd_upstream_result res, const char *detail)
{
    (void)detail;
    struct fcall *c = ctxp;
    c->done = true;
    c->xfer = NULL;
    if (c->gone)
        return;
    if (!c->started) {
        h2o_send_error_502(c->req, "Bad Gateway", res == WD_UP_OK ? "no response" : "upstream failed", 0);
        c->final_sent = true;
        return;
    }
    flush(c);
}

/* What a provider needs of the client's headers, Gemini's and Anthropic's; the rest (user-agent, accept, ...)
 * stays here, as a gateway would not pass it on either. At most as many as hdrs holds. */
static const char *const passed_headers[] = {
    "content-type", "x-goog-api-key", "x-api-key", "authorization", "anthropic-version", "anthropic-beta", "traceparent",
};

static h2o_iovec_t header_value(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static bool read_body; /* --read-body */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_send_error_405(req, "Method Not Allowed", "POST only", 0);
        return 0;
    }
    if (read_body) {
        struct wd_json j = {0};
        int bad = wd_json_parse(&j, req->entity.base ? req->entity.base : "", req->entity.len) != 0 ||
                  j.t[0].type != WD_J_OBJ || wd_json_type(&j, wd_json_get(&j, 0, "model")) != WD_J_STR;
        wd_json_free(&j);
        if (bad) {
            h2o_send_error_400(req, "Bad Request", "not a JSON object with a model", 0);
            return 0;
        }
    }
    struct fcall *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->req = req;
    struct fcall **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_req_dispose);
    *slot = c;
    size_t bl = strlen(upstream_base);
    c->url = malloc(bl + req->path.len + 1);
    if (!c->url)
        return -1;
    memcpy(c->url, upstream_base, bl);
    memcpy(c->url + bl, req->path.base, req->path.len);
    c->url[bl + req->path.len] = '\0';
    size_t nh = 0;
    for (size_t i = 0; i < sizeof(passed_headers) / sizeof(passed_headers[0]); i++) {
        const char *name = passed_headers[i];
        h2o_iovec_t v = header_value(req, name, strlen(name));
        if (!v.base && strcmp(name, "content-type") == 0)
            v = h2o_iovec_init(H2O_STRLIT("application/json"));
        if (v.base)
            c->hdrs[nh++] = (struct wd_upstream_header){name, h2o_strdup(&req->pool, v.base, v.len).base};
    }
    struct wd_upstream_req ur = {
        .method = "POST",
        .url = c->url,
        .headers = c->hdrs,
        .nheaders = nh,
        .body = req->entity.base ? req->entity.base : "",
        .body_len = req->entity.len,
        .first_byte_timeout_ms = 30000,
        .idle_timeout_ms = 30000,
        .connect_timeout_ms = 5000,
        .ctx = c,
        .on_response = up_response,
        .on_data = up_data,
        .on_flush = up_flush,
        .on_done = up_done,
    };
    c->xfer = wd_upstream_start(up, &ur);
    if (!c->xfer) {
        h2o_send_error_502(req, "Bad Gateway", "could not start the upstream transfer", 0);
        c->done = c->final_sent = true;
    }
    return 0;
}

static void on_accept(uv_stream_t *listener, int status)
{
    if (status == 0)
        wd_h2o_accept(listener, &accept_ctx);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[3], "--read-body") == 0)
        read_body = true;
    else if (argc != 3) {
        fprintf(stderr, "usage: floor_proxy PORT UPSTREAM_BASE [--read-body]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    upstream_base = argv[2];
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (wd_upstream_global_init() != 0)
        return 1;
    h2o_config_init(&config);
    config.max_request_entity_size = 64u << 20;
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    h->on_req = on_req;
    h2o_context_init(&ctx, &loop, &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;
    h2o_socket_buffer_prototype._initial_buf.capacity = 65536; /* as Warden's workers */
    up = wd_upstream_new(&loop);
    if (!up)
        return 1;

    uv_tcp_t listener;
    struct sockaddr_in addr;
    uv_tcp_init(&loop, &listener);
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    if (uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&listener, 1024, on_accept) != 0) {
        fprintf(stderr, "floor_proxy: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    struct sockaddr_in bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &blen);
    printf("{\"port\":%d}\n", ntohs(bound.sin_port));
    fflush(stdout);
    uv_signal_t sigterm, sigint;
    uv_signal_init(&loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(&loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    return 0;
}
