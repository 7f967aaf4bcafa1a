/* SSE parsing per the WHATWG event-stream rules that matter for providers: lines end in \r\n, \n or
 * \r (also when the \r and \n arrive in different reads); "data:" lines (one optional space stripped) and
 * bare "data" lines join with \n; a blank line dispatches; comments and other fields are ignored; a
 * leading byte order mark is skipped. */
#include "providers/sse.h"

#include <stdlib.h>

static int handle_line(struct wd_sse *s, const char *l, size_t n,
                       int (*on_event)(void *ctx, const char *data, size_t len), void *ctx)
{
    if (!s->seen_line) {
        s->seen_line = true;
        if (n >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0)
            l += 3, n -= 3;
    }
    if (n == 0) {
        if (!s->has_data)
            return 0;
        int r = on_event(ctx, s->data.p ? s->data.p : "", s->data.n);
        s->data.n = 0;
        s->has_data = false;
        return r;
    }
    /* field name up to the first colon, or the whole line; lines starting with a colon are comments */
    const char *colon = memchr(l, ':', n);
    size_t fn = colon ? (size_t)(colon - l) : n;
    if (fn != 4 || memcmp(l, "data", 4) != 0)
        return 0;
    const char *v = colon ? colon + 1 : l + n;
    size_t vn = (size_t)(l + n - v);
    if (vn > 0 && *v == ' ')
        v++, vn--;
    if (s->has_data)
        wd_buf_putc(&s->data, '\n');
    wd_buf_put(&s->data, v, vn);
    s->has_data = true;
    if (s->data.oom || s->data.n > s->max_event)
        return -1;
    return 0;
}

int wd_sse_feed(struct wd_sse *s, const char *p, size_t n, int (*on_event)(void *ctx, const char *data, size_t len),
                void *ctx)
{
    if (s->max_event == 0)
        s->max_event = 16u << 20;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (s->after_cr) {
            s->after_cr = false;
            if (c == '\n') {
                start = i + 1;
                continue;
            }
        }
        if (c != '\n' && c != '\r')
            continue;
        /* A whole line in this read is handled in place; only a line split across reads is copied. */
        const char *l = p + start;
        size_t ln = i - start;
        if (s->in.n > 0) {
            wd_buf_put(&s->in, l, ln);
            if (s->in.oom)
                return -1;
            l = s->in.p;
            ln = s->in.n;
        }
        if (ln > s->max_event)
            return -1;
        int r = handle_line(s, l, ln, on_event, ctx);
        s->in.n = 0;
        start = i + 1;
        s->after_cr = c == '\r';
        if (r != 0)
            return r;
    }
    wd_buf_put(&s->in, p + start, n - start);
    if (s->in.oom || s->in.n > s->max_event)
        return -1;
    return 0;
}

bool wd_sse_pending(const struct wd_sse *s) { return s->has_data || s->in.n > 0; }

void wd_sse_free(struct wd_sse *s)
{
    size_t max = s->max_event;
    wd_buf_free(&s->in);
    wd_buf_free(&s->data);
    *s = (struct wd_sse){.max_event = max};
}
