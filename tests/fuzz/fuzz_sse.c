/* libFuzzer driver for the SSE parser: the events must not depend on how the bytes are split (one piece,
 * two pieces at a data-chosen point, byte by byte), and no event's data may hold a CR. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Events as length-prefixed records, for comparison. */
static int on_event(void *ctx, const char *d, size_t n)
{
    struct wd_buf *b = ctx;
    if (memchr(d, '\r', n) != NULL)
        __builtin_trap();
    uint32_t len = (uint32_t)n;
    wd_buf_put(b, &len, sizeof len);
    wd_buf_put(b, d, n);
    return 0;
}

struct run {
    struct wd_buf events;
    int rc;
    bool pending;
};

static bool skip_x(const char *name, size_t n) { return n > 0 && name[0] == 'x'; }

static void run(const uint8_t *data, size_t size, size_t step, struct run *r)
{
    struct wd_sse s = {0};
    s.max_event = 4096;
    if (size > 0 && (data[0] & 1))
        s.skip = skip_x; /* events named x... are not dispatched: the same whatever the split */
    r->rc = 0;
    for (size_t off = 0; off < size && r->rc == 0; off += step) {
        size_t n = size - off < step ? size - off : step;
        r->rc = wd_sse_feed(&s, (const char *)data + off, n, on_event, &r->events);
    }
    r->pending = wd_sse_pending(&s);
    wd_sse_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole = {0}, split = {0}, bytes = {0};
    run(data, size, size ? size : 1, &whole);
    run(data, size, size > 1 ? 1 + data[0] % (size - 1) : 1, &split);
    run(data, size, 1, &bytes);
    /* an oversized event is an error whatever the split, and so is nothing else */
    if (whole.rc == 0 && split.rc == 0 && bytes.rc == 0) {
        if (whole.events.n != split.events.n || whole.events.n != bytes.events.n ||
            (whole.events.n && (memcmp(whole.events.p, split.events.p, whole.events.n) != 0 ||
                                memcmp(whole.events.p, bytes.events.p, whole.events.n) != 0)))
            __builtin_trap();
        if (whole.pending != split.pending || whole.pending != bytes.pending)
            __builtin_trap();
    }
    wd_buf_free(&whole.events);
    wd_buf_free(&split.events);
    wd_buf_free(&bytes.events);
    return 0;
}
