/* SSE parsing per the WHATWG event-stream rules that matter for providers: lines end in \r\n, \n or
 * \r (also when the \r and \n arrive in different reads); "data:" lines (one optional space stripped) and
 * bare "data" lines join with \n; a blank line dispatches; comments and other fields are ignored; a
 * leading byte order mark is skipped. */
#include "providers/sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__SSE2__)
#include <immintrin.h>
#define SSE_BLOCKS 1 /* line ends found 64 bytes at a time, AVX2 chosen at run time */
#endif

/* The in-place data line into the buffer: before a second line joins it, and before the bytes it points into
 * are gone (the feed returns). */
static void settle(struct wd_sse *s)
{
    if (s->one != NULL) {
        wd_buf_put(&s->data, s->one, s->one_n);
        s->one = NULL;
    }
}

static int handle_line(struct wd_sse *s, const char *l, size_t n, bool in_place,
                       int (*on_event)(void *ctx, const char *data, size_t len), void *ctx)
{
    if (!s->seen_line) {
        s->seen_line = true;
        if (n >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0)
            l += 3, n -= 3;
    }
    if (n == 0) {
        bool skipped = s->skipping;
        s->skipping = false;
        if (!s->has_data || skipped) {
            s->one = NULL;
            s->data.n = 0;
            s->has_data = false;
            return 0;
        }
        if (s->data.oom)
            return -1; /* a settled line that did not fit */
        int r = s->one != NULL ? on_event(ctx, s->one, s->one_n) : on_event(ctx, s->data.p ? s->data.p : "", s->data.n);
        s->one = NULL;
        s->data.n = 0;
        s->has_data = false;
        return r;
    }
    /* the field name runs up to the first colon, or is the whole line: the data field's line is "data" or starts
     * with "data:" (comments, which start with a colon, and other fields are ignored); the first byte tells the
     * two fields read here apart before anything else is compared */
    if (l[0] == 'e') {
        if (s->skip != NULL && n >= 6 && memcmp(l, "event:", 6) == 0) {
            const char *name = l + 6;
            size_t nn = n - 6;
            if (nn > 0 && *name == ' ')
                name++, nn--;
            s->skipping = s->skip(name, nn);
        }
        return 0;
    }
    if (l[0] != 'd' || s->skipping || n < 4 || memcmp(l, "data", 4) != 0 || (n > 4 && l[4] != ':'))
        return 0;
    const char *v = l + (n > 4 ? 5 : 4);
    size_t vn = (size_t)(l + n - v);
    if (vn > 0 && *v == ' ')
        v++, vn--;
    if (!s->has_data && in_place) {
        s->one = v;
        s->one_n = vn;
        s->has_data = true;
        return vn > s->max_event ? -1 : 0;
    }
    settle(s);
    if (s->has_data)
        wd_buf_putc(&s->data, '\n');
    wd_buf_put(&s->data, v, vn);
    s->has_data = true;
    if (s->data.oom || s->data.n > s->max_event)
        return -1;
    return 0;
}

/* The next CR or LF at or after `from`, or n: each memchr resumes past the last one it found, so a chunk is
 * scanned once for each of the two bytes however its lines end (a CR-only stream included). */
struct eol_scan {
    size_t cr, lf;              /* positions found, or SIZE_MAX before the first search */
};

static size_t next_eol(struct eol_scan *e, const char *p, size_t n, size_t from)
{
    if (e->lf == SIZE_MAX || (e->lf < n && e->lf < from)) {
        const char *q = memchr(p + from, '\n', n - from);
        e->lf = q ? (size_t)(q - p) : n;
    }
    if (e->cr == SIZE_MAX || (e->cr < n && e->cr < from)) {
        const char *q = memchr(p + from, '\r', n - from);
        e->cr = q ? (size_t)(q - p) : n;
    }
    return e->cr < e->lf ? e->cr : e->lf;
}

/* Where the next line starts after the line end at p[i]: a CR LF's LF goes with its CR, and a CR that ends the read
 * is remembered (its LF may start the next one). */
static inline size_t past_eol(struct wd_sse *s, const char *p, size_t n, size_t i)
{
    size_t start = i + 1;
    if (p[i] == '\r') {
        if (start < n) {
            if (p[start] == '\n')
                start++;
        } else {
            s->after_cr = true;
        }
    }
    return start;
}

/* The lines of p[*start..n) whatever their ends (CR, LF, CR LF, split across reads), and a line begun in an
 * earlier read. Returns 0 with *start at the unfinished tail; or the feed's result when it stops early. */
static int feed_lines(struct wd_sse *s, const char *p, size_t n, size_t *startp,
                      int (*on_event)(void *ctx, const char *data, size_t len), void *ctx)
{
    size_t start = *startp;
    struct eol_scan e = {SIZE_MAX, SIZE_MAX};
    for (size_t i; (i = next_eol(&e, p, n, start)) < n;) {
        /* A whole line in this read is handled in place; only a line split across reads is copied. */
        const char *l = p + start;
        size_t ln = i - start;
        bool in_place = s->in.n == 0;
        if (!in_place) {
            wd_buf_put(&s->in, l, ln);
            if (s->in.oom) {
                settle(s);
                return -1;
            }
            l = s->in.p;
            ln = s->in.n;
        }
        if (ln > s->max_event) {
            settle(s);
            return -1;
        }
        int r = handle_line(s, l, ln, in_place, on_event, ctx);
        s->in.n = 0;
        start = past_eol(s, p, n, i);
        if (r != 0) {
            settle(s);
            return r;
        }
    }
    *startp = start;
    return 0;
}

#if defined(SSE_BLOCKS)
/* The CR and LF bytes of p[0, 64) as bits. */
__attribute__((target("avx2"))) static inline uint64_t eol_bits_avx2(const char *p)
{
    const __m256i lf = _mm256_set1_epi8('\n'), cr = _mm256_set1_epi8('\r');
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    a = _mm256_or_si256(_mm256_cmpeq_epi8(a, lf), _mm256_cmpeq_epi8(a, cr));
    b = _mm256_or_si256(_mm256_cmpeq_epi8(b, lf), _mm256_cmpeq_epi8(b, cr));
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(a) | (uint64_t)(uint32_t)_mm256_movemask_epi8(b) << 32;
}

static inline uint64_t eol_bits_sse2(const char *p)
{
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        v = _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr));
        m |= (uint64_t)(unsigned)_mm_movemask_epi8(v) << (16 * k);
    }
    return m;
}

/* The lines of p[*start..n), found 64 bytes at a time (a call of memchr a line cost more than the lines' own
 * handling), when no line was begun before this read; *start is left at the unfinished tail. 0, or the
 * feed's result when it stops early. */
static inline __attribute__((always_inline)) int feed_blocks(struct wd_sse *s, const char *p, size_t n,
                                                            size_t *startp,
                                                            int (*on_event)(void *ctx, const char *data,
                                                                            size_t len),
                                                            void *ctx, bool avx2)
{
    size_t start = *startp;
    for (size_t base = start; base < n; base += 64) {
        char tail[64];
        const char *b = p + base;
        if (n - base < 64) { /* the last bytes, padded with NULs: neither CR nor LF */
            memset(tail, 0, sizeof(tail));
            memcpy(tail, b, n - base);
            b = tail;
        }
        for (uint64_t m = avx2 ? eol_bits_avx2(b) : eol_bits_sse2(b); m != 0; m &= m - 1) {
            size_t i = base + (size_t)__builtin_ctzll(m);
            if (i < start)
                continue; /* the LF of a CR LF, taken with its CR */
            size_t ln = i - start;
            if (ln > s->max_event) {
                settle(s);
                return -1;
            }
            int r = handle_line(s, p + start, ln, true, on_event, ctx);
            start = past_eol(s, p, n, i);
            if (r != 0) {
                settle(s);
                return r;
            }
        }
    }
    *startp = start;
    return 0;
}

__attribute__((target("avx2"))) static int feed_blocks_avx2(struct wd_sse *s, const char *p, size_t n,
                                                            size_t *start,
                                                            int (*on_event)(void *ctx, const char *data,
                                                                            size_t len),
                                                            void *ctx)
{
    return feed_blocks(s, p, n, start, on_event, ctx, true);
}

static int feed_blocks_sse2(struct wd_sse *s, const char *p, size_t n, size_t *start,
                            int (*on_event)(void *ctx, const char *data, size_t len), void *ctx)
{
    return feed_blocks(s, p, n, start, on_event, ctx, false);
}
#endif

int wd_sse_feed(struct wd_sse *s, const char *p, size_t n, int (*on_event)(void *ctx, const char *data, size_t len),
                void *ctx)
{
    if (s->max_event == 0)
        s->max_event = 16u << 20;
    size_t start = 0;
    if (s->after_cr && n > 0) {
        s->after_cr = false;
        if (p[0] == '\n')
            start = 1; /* the LF of a CR LF split across reads */
    }
#if defined(SSE_BLOCKS)
    if (s->in.n == 0) {
        /* no line begun before this read (the usual case): its lines are found by blocks */
        int r = __builtin_cpu_supports("avx2") ? feed_blocks_avx2(s, p, n, &start, on_event, ctx)
                                               : feed_blocks_sse2(s, p, n, &start, on_event, ctx);
        if (r != 0)
            return r;
    } else
#endif
    {
        int r = feed_lines(s, p, n, &start, on_event, ctx);
        if (r != 0)
            return r;
    }
    settle(s);
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
