/* libFuzzer driver for the front guard's framing (server/framing.c), on what a hostile client sends:
 *  - a request head parsed by libh2o's own parser, then its body framing (no crash; a refusal has a reason);
 *  - the bytes after the head as a chunked body: the outcome and the bytes consumed must not depend on how
 *    the bytes are split (whole, at a data-chosen point, byte by byte), and never pass the input;
 *  - the whole input as HTTP/2 frames: every frame lies inside the input and the frames tile what is
 *    returned. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct wd_field *headers, size_t *num_headers,
                      size_t last_len);

struct outcome {
    int rc;
    size_t used;
};

static struct outcome chunked_run(const char *p, size_t n, size_t step)
{
    struct wd_chunked c = {0};
    struct outcome o = {WD_CHUNKED_MORE, 0};
    size_t off = 0;
    while (off < n && o.rc == WD_CHUNKED_MORE) {
        size_t k = step == 0 || n - off < step ? n - off : step, used = 0;
        o.rc = wd_chunked_feed(&c, p + off, k, &used);
        if (used > k)
            __builtin_trap();
        if (o.rc == WD_CHUNKED_MORE && used != k) /* it stops early only when it is done or refuses */
            __builtin_trap();
        off += used;
    }
    o.used = off;
    return o;
}

struct tiling {
    const uint8_t *base;
    size_t n, next;
};

static void on_frame(void *ctx, const struct wd_h2_frame *f)
{
    struct tiling *t = ctx;
    if (f->payload != t->base + t->next + 9 || (size_t)(f->payload - t->base) + f->length > t->n ||
        f->stream_id > 0x7fffffffu)
        __builtin_trap();
    t->next += 9 + (size_t)f->length;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct wd_field f[100];
    size_t nf = 100, ml, pl;
    const char *m, *path;
    int minor;
    int r = phr_parse_request(buf, size, &m, &ml, &path, &pl, &minor, f, &nf, 0);
    size_t body_at = 0;
    if (r > 0) {
        struct wd_h1_body b;
        const char *why = NULL;
        if (wd_h1_body_framing(f, nf, minor, &b, &why) != 0 && (why == NULL || why[0] == '\0'))
            __builtin_trap();
        body_at = (size_t)r;
    }
    const char *body = buf + body_at;
    size_t n = size - body_at;
    struct outcome whole = chunked_run(body, n, 0);
    struct outcome bytes = chunked_run(body, n, 1);
    size_t cut = n ? (size_t)data[0] % (n + 1) : 0;
    struct outcome split = chunked_run(body, n, cut ? cut : 1);
    if (whole.rc != bytes.rc || whole.used != bytes.used || whole.rc != split.rc || whole.used != split.used)
        __builtin_trap();

    struct tiling t = {data, size, 0};
    size_t end = wd_h2_frames(data, size, on_frame, &t);
    if (end != t.next || end > size || (size - end >= 9 && end + 9 + (((size_t)data[end] << 16) |
                                                                      ((size_t)data[end + 1] << 8) | data[end + 2]) <= size))
        __builtin_trap();
    return 0;
}
