/* Server-sent events parser for provider streams: bytes in any split, one callback per event's data. */
#ifndef WARDEN_PROVIDERS_SSE_H
#define WARDEN_PROVIDERS_SSE_H

#include "lib/buf.h"

/* Zero-initialise; wd_sse_free also resets it for reuse. */
struct wd_sse {
    struct wd_buf in;        /* the start of a line whose end has not arrived (never holds CR or LF) */
    struct wd_buf data;      /* data lines of the event being assembled */
    const char *one;         /* the event's only data line so far, in place in the bytes being fed (not copied
                                unless a second line comes or the feed returns before its end) */
    size_t one_n;
    bool has_data;
    bool after_cr;           /* the last line ended in CR: a LF that comes next belongs to it */
    bool seen_line;          /* the first line was handled (a byte order mark may start only that one) */
    size_t max_event;        /* a line or event larger than this is an error (default 16 MiB) */
    /* optional: true for an `event:` name whose events the caller does not want (their data is not kept and they
     * are not dispatched); set after wd_sse_free, which clears it */
    bool (*skip)(const char *name, size_t n);
    bool skipping;           /* the event being read was named one to skip */
};

/* Calls on_event for every complete event with a data field. Returns 0; -1 when a line or event exceeds
 * max_event or memory runs out (the stream is then unusable); or on_event's non-zero result, which stops
 * parsing (the rest of this call's bytes are dropped). Each byte is looked at once, however the stream is
 * split. */
int wd_sse_feed(struct wd_sse *s, const char *p, size_t n, int (*on_event)(void *ctx, const char *data, size_t len),
                void *ctx);
/* True when part of an event has arrived but not its end (a cut stream). */
bool wd_sse_pending(const struct wd_sse *s);
void wd_sse_free(struct wd_sse *s);

#endif
