/* Growable byte buffers, a bump arena for per-request allocations, and length-carrying strings.
 * Codecs use these instead of h2o's pool so unit tests and fuzzers need no server library. */
#ifndef WARDEN_LIB_BUF_H
#define WARDEN_LIB_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A byte range not owned by its holder. */
struct wd_str {
    const char *p;
    size_t n;
};
#define WD_STR(lit) ((struct wd_str){(lit), sizeof(lit) - 1})
#define WD_STR_NULL ((struct wd_str){NULL, 0})

static inline bool wd_str_eq(struct wd_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && memcmp(a.p, lit, n) == 0;
}
static inline bool wd_str_has_prefix(struct wd_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n >= n && memcmp(a.p, lit, n) == 0;
}
bool wd_str_contains(struct wd_str hay, const char *needle);

/* Growable output buffer. Allocation failure sets `oom` and makes later writes no-ops, so a writer
 * checks once at the end instead of after every call. */
struct wd_buf {
    char *p;
    size_t n;
    size_t cap;
    bool oom;
};

bool wd_buf_grow(struct wd_buf *b, size_t extra);
/* Room for `extra` more bytes; false once the buffer is out of memory. The check is inline: encoders call
 * this for every few bytes they write. */
static inline bool wd_buf_reserve(struct wd_buf *b, size_t extra)
{
    if (b->cap - b->n >= extra && !b->oom)
        return true;
    return wd_buf_grow(b, extra);
}
static inline void wd_buf_put(struct wd_buf *b, const void *p, size_t n)
{
    if (n == 0 || !wd_buf_reserve(b, n))
        return;
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static inline void wd_buf_puts(struct wd_buf *b, const char *s) { wd_buf_put(b, s, strlen(s)); }
static inline void wd_buf_putc(struct wd_buf *b, char c) { wd_buf_put(b, &c, 1); }
static inline void wd_buf_put_str(struct wd_buf *b, struct wd_str s) { wd_buf_put(b, s.p, s.n); }
void wd_buf_put_i64(struct wd_buf *b, int64_t v);
void wd_buf_put_double(struct wd_buf *b, double v);
void wd_buf_printf(struct wd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (consumed input). */
void wd_buf_consume(struct wd_buf *b, size_t n);
void wd_buf_reset(struct wd_buf *b);
void wd_buf_free(struct wd_buf *b);

/* Bump allocator: everything is freed at once with wd_arena_free. */
struct wd_arena_chunk;
struct wd_arena {
    struct wd_arena_chunk *head;
    size_t used;          /* bytes used in head */
    size_t cap;           /* bytes in head */
};
void *wd_arena_alloc(struct wd_arena *a, size_t n);          /* 16-byte aligned; NULL on OOM */
void *wd_arena_zalloc(struct wd_arena *a, size_t n);
char *wd_arena_strndup(struct wd_arena *a, const char *p, size_t n);
void wd_arena_free(struct wd_arena *a);

/* src into dst[cap] (cap > 0), cut to fit, always NUL-terminated: snprintf(dst, cap, "%s", src) without the
 * formatter. Returns the bytes written. */
size_t wd_cstr_copy(char *dst, size_t cap, const char *src);
/* s into dst[cap] (cap > 0), NUL-terminated, cut on a UTF-8 character boundary when it does not fit (a name cut
 * for a log line or a record stays valid UTF-8). */
void wd_str_copy(char *dst, size_t cap, struct wd_str s);

/* Random identifiers ([A-Za-z0-9]) from a per-thread generator seeded by getrandom. */
void wd_rand_id(char *out, size_t n);
uint64_t wd_rand_u64(void);

#endif
