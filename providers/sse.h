/* Server-sent events parser for provider streams: bytes in any split, one callback per event's data. */
#ifndef WARDEN_PROVIDERS_SSE_H
#define WARDEN_PROVIDERS_SSE_H

#include "api/buf.h"

struct wd_sse {
    struct wd_buf in;        /* bytes not yet parsed into lines */
    struct wd_buf data;      /* data lines of the event being assembled */
    bool has_data;
    size_t max_event;        /* an event larger than this is an error (default 16 MiB) */
};

/* Calls on_event for every complete event with a data field. Returns 0, or -1 when an event exceeds
 * max_event or memory runs out (the stream is then unusable). */
int wd_sse_feed(struct wd_sse *s, const char *p, size_t n, int (*on_event)(void *ctx, const char *data, size_t len),
                void *ctx);
/* True when bytes of an unterminated event remain (a cut stream). */
bool wd_sse_pending(const struct wd_sse *s);
void wd_sse_free(struct wd_sse *s);

#endif
