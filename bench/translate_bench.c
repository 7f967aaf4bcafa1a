/* Translation micro-benchmark for bench/run.sh: the CPU cost of Warden's codecs alone, without sockets.
 * Request path: wd_anthropic_decode_request + wd_gemini_encode_request on a captured Claude Code body.
 * Response path: Gemini SSE bytes (or a whole JSON body) -> wd_sse_feed -> wd_gemini_stream_chunk ->
 * Anthropic SSE (or message JSON). Each iteration starts from fresh buffers and arena, as a request does.
 *
 *   translate_bench --emit BODY.json MODEL        write the Gemini request body Warden sends, then exit
 *   translate_bench [--iters N] BODY.json MODEL   print one JSON object of medians (µs of thread CPU time)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/anthropic.h"
#include "providers/gemini.h"
#include "providers/sse.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct wd_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        wd_buf_put(&b, tmp, n);
    fclose(f);
    if (b.oom)
        return NULL;
    *len = b.n;
    return b.p;
}

static double now_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double now_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- request path ---- */

struct req_state {
    struct wd_arena arena;
    struct wd_json json;
    struct wd_request req;
    struct wd_buf out;
};

static int translate_request(const char *body, size_t len, struct wd_str model, struct req_state *st, double *t_mid)
{
    struct wd_error err = {0};
    memset(st, 0, sizeof(*st));
    if (wd_anthropic_decode_request(body, len, false, &st->arena, &st->json, &st->req, &err) < 0) {
        fprintf(stderr, "translate_bench: decode failed: %s\n", err.msg);
        return -1;
    }
    if (t_mid != NULL)
        *t_mid = now_cpu_us();
    if (wd_gemini_encode_request(&st->req, model, false, &st->out, &err) < 0 || st->out.oom) {
        fprintf(stderr, "translate_bench: encode failed: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void req_state_free(struct req_state *st)
{
    wd_buf_free(&st->out);
    wd_json_free(&st->json);
    wd_arena_free(&st->arena);
}

/* ---- response path ---- */

struct resp_state {
    struct wd_arena arena;
    struct wd_buf out;
    struct wd_sse sse;
    struct wd_gemini_stream dec;
    struct wd_anthropic_out enc;
};

static int on_event(void *ctx, const char *data, size_t len)
{
    struct resp_state *r = ctx;
    wd_gemini_stream_chunk(&r->dec, data, len);
    return 0;
}

/* Gemini bytes -> Anthropic bytes, as the server does per response (minus the socket writes). */
static int translate_response(const struct wd_request *req, const char *up, size_t n, bool stream)
{
    struct resp_state r;
    memset(&r, 0, sizeof(r));
    wd_anthropic_out_init(&r.enc, &r.out, stream, req->model);
    wd_gemini_stream_init(&r.dec, &r.enc.sink, req, &r.arena);
    int rc = 0;
    if (stream) {
        if (wd_sse_feed(&r.sse, up, n, on_event, &r) < 0)
            rc = -1;
    } else {
        wd_gemini_stream_chunk(&r.dec, up, n);
    }
    wd_gemini_stream_finish(&r.dec);
    if (rc == 0 && (r.enc.failed || !r.enc.finished || r.out.oom))
        rc = -1;
    if (rc == 0 && stream && memmem(r.out.p, r.out.n, "message_stop", 12) == NULL)
        rc = -1;
    wd_gemini_stream_free(&r.dec);
    wd_sse_free(&r.sse);
    wd_anthropic_out_free(&r.enc);
    wd_buf_free(&r.out);
    wd_arena_free(&r.arena);
    return rc;
}

static const char USAGE_TAIL[] = "\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":4,\"totalTokenCount\":12},"
                                 "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"bench\"}";

/* The fake's --bench answers, byte for byte: a 3-chunk stream and one JSON body. */
static void fake_stream(struct wd_buf *b)
{
    const char *texts[3] = {"fake-gem", "ini: ben", "ch"};
    for (int i = 0; i < 3; i++) {
        wd_buf_printf(b, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"%s\"}],\"role\":\"model\"},\"index\":0%s}],%s\r\n\r\n",
                      texts[i], i == 2 ? ",\"finishReason\":\"STOP\"" : "", USAGE_TAIL);
    }
}

static void fake_json(struct wd_buf *b)
{
    wd_buf_printf(b, "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"fake-gemini: bench\"}],\"role\":\"model\"},"
                     "\"finishReason\":\"STOP\",\"index\":0}],%s",
                  USAGE_TAIL);
}

/* A longer answer: `chunks` text chunks of ~48 bytes of text each (typical token-group size). */
static void long_stream(struct wd_buf *b, int chunks)
{
    for (int i = 0; i < chunks; i++) {
        wd_buf_printf(b, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"chunk %04d: the quick brown fox jumps over the dog\\n\"}],"
                         "\"role\":\"model\"},%s\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":12108,"
                         "\"candidatesTokenCount\":%d,\"totalTokenCount\":%d},\"modelVersion\":\"gemini-2.5-pro\"}\r\n\r\n",
                      i, i == chunks - 1 ? "\"finishReason\":\"STOP\"," : "", 12 * (i + 1), 12108 + 12 * (i + 1));
    }
}

int main(int argc, char **argv)
{
    int iters = 2000;
    bool emit = false;
    int a = 1;
    for (; a < argc && argv[a][0] == '-' && argv[a][1] == '-'; a++) {
        if (strcmp(argv[a], "--emit") == 0)
            emit = true;
        else if (strcmp(argv[a], "--iters") == 0 && a + 1 < argc)
            iters = atoi(argv[++a]);
        else
            break;
    }
    if (argc - a != 2 || iters < 10) {
        fprintf(stderr, "usage: translate_bench [--emit] [--iters N] BODY.json GEMINI_MODEL\n");
        return 2;
    }
    size_t len;
    char *body = read_file(argv[a], &len);
    if (body == NULL) {
        fprintf(stderr, "translate_bench: cannot read %s\n", argv[a]);
        return 1;
    }
    struct wd_str model = {argv[a + 1], strlen(argv[a + 1])};
    struct req_state st;

    if (emit) {
        if (translate_request(body, len, model, &st, NULL) < 0)
            return 1;
        fwrite(st.out.p, 1, st.out.n, stdout);
        req_state_free(&st);
        free(body);
        return 0;
    }

    double *dec = calloc((size_t)iters, sizeof(double)), *enc = calloc((size_t)iters, sizeof(double));
    double *tot = calloc((size_t)iters, sizeof(double)), *wall = calloc((size_t)iters, sizeof(double));
    double *rs = calloc((size_t)iters, sizeof(double)), *rj = calloc((size_t)iters, sizeof(double));
    double *rl = calloc((size_t)iters, sizeof(double));
    if (!dec || !enc || !tot || !wall || !rs || !rj || !rl)
        return 1;
    size_t out_len = 0;
    for (int i = 0; i < iters / 10; i++) { /* warm caches and the allocator */
        if (translate_request(body, len, model, &st, NULL) < 0)
            return 1;
        req_state_free(&st);
    }
    for (int i = 0; i < iters; i++) {
        double w0 = now_wall_us(), t0 = now_cpu_us(), tm;
        if (translate_request(body, len, model, &st, &tm) < 0)
            return 1;
        out_len = st.out.n;
        req_state_free(&st);
        double t1 = now_cpu_us(), w1 = now_wall_us();
        dec[i] = tm - t0;
        enc[i] = t1 - tm;
        tot[i] = t1 - t0;
        wall[i] = w1 - w0;
    }

    /* the response path keeps one decoded request for tool-name mapping, as the server's call does */
    if (translate_request(body, len, model, &st, NULL) < 0)
        return 1;
    struct wd_buf sse = {0}, json = {0}, lng = {0};
    fake_stream(&sse);
    fake_json(&json);
    const int long_chunks = 100;
    long_stream(&lng, long_chunks);
    for (int i = 0; i < iters; i++) {
        double t0 = now_cpu_us();
        if (translate_response(&st.req, sse.p, sse.n, true) < 0) {
            fprintf(stderr, "translate_bench: response stream translation failed\n");
            return 1;
        }
        double t1 = now_cpu_us();
        if (translate_response(&st.req, json.p, json.n, false) < 0) {
            fprintf(stderr, "translate_bench: response JSON translation failed\n");
            return 1;
        }
        double t2 = now_cpu_us();
        if (translate_response(&st.req, lng.p, lng.n, true) < 0) {
            fprintf(stderr, "translate_bench: long stream translation failed\n");
            return 1;
        }
        double t3 = now_cpu_us();
        rs[i] = t1 - t0;
        rj[i] = t2 - t1;
        rl[i] = (t3 - t2) / long_chunks;
    }
    printf("{\"iters\":%d,\"body_bytes\":%zu,\"gemini_bytes\":%zu,\"decode_us\":%.2f,\"encode_us\":%.2f,"
           "\"request_us\":%.2f,\"request_wall_us\":%.2f,\"response_sse3_us\":%.2f,\"response_json_us\":%.2f,"
           "\"response_per_chunk_us\":%.3f,\"long_chunks\":%d}\n",
           iters, len, out_len, median(dec, iters), median(enc, iters), median(tot, iters), median(wall, iters),
           median(rs, iters), median(rj, iters), median(rl, iters), long_chunks);
    req_state_free(&st);
    wd_buf_free(&sse);
    wd_buf_free(&json);
    wd_buf_free(&lng);
    free(body);
    free(dec), free(enc), free(tot), free(wall), free(rs), free(rj), free(rl);
    return 0;
}
