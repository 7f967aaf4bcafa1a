/* SSE parsing per the WHATWG event-stream rules that matter for providers: lines end in \r\n, \n or
 * \r; "data:" lines (one optional space stripped) join with \n; a blank line dispatches; comments and
 * other fields are ignored. */
#include "providers/sse.h"

#include <stdlib.h>

static int handle_line(struct wd_sse *s, const char *l, size_t n,
                       int (*on_event)(void *ctx, const char *data, size_t len), void *ctx)
{
    if (n == 0) {
        if (!s->has_data)
            return 0;
        int r = on_event(ctx, s->data.p ? s->data.p : "", s->data.n);
        s->data.n = 0;
        s->has_data = false;
        return r;
    }
    if (n >= 5 && memcmp(l, "data:", 5) == 0) {
        l += 5, n -= 5;
        if (n > 0 && *l == ' ')
            l++, n--;
        if (s->has_data)
            wd_buf_putc(&s->data, '\n');
        wd_buf_put(&s->data, l, n);
        s->has_data = true;
        if (s->data.oom || s->data.n > s->max_event)
            return -1;
    }
    return 0;
}

int wd_sse_feed(struct wd_sse *s, const char *p, size_t n, int (*on_event)(void *ctx, const char *data, size_t len),
                void *ctx)
{
    if (s->max_event == 0)
        s->max_event = 16u << 20;
    wd_buf_put(&s->in, p, n);
    if (s->in.oom)
        return -1;
    size_t start = 0, i = 0;
    const char *b = s->in.p;
    while (i < s->in.n) {
        char c = b[i];
        if (c != '\n' && c != '\r') {
            i++;
            continue;
        }
        /* a \r at the very end may be the first half of \r\n: wait for more input */
        if (c == '\r' && i + 1 == s->in.n)
            break;
        int r = handle_line(s, b + start, i - start, on_event, ctx);
        if (r != 0)
            return r;
        i += (c == '\r' && b[i + 1] == '\n') ? 2 : 1;
        start = i;
    }
    wd_buf_consume(&s->in, start);
    if (s->in.n > s->max_event)
        return -1;
    return 0;
}

bool wd_sse_pending(const struct wd_sse *s)
{
    if (s->has_data)
        return true;
    for (size_t i = 0; i < s->in.n; i++)
        if (s->in.p[i] != '\r' && s->in.p[i] != '\n')
            return true;
    return false;
}

void wd_sse_free(struct wd_sse *s)
{
    wd_buf_free(&s->in);
    wd_buf_free(&s->data);
    s->has_data = false;
}
