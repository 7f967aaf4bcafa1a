/* Buffers, arena and random ids shared by every module. */
#include "lib/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

bool wd_str_contains(struct wd_str hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    return hay.n >= n && memmem(hay.p, hay.n, needle, n) != NULL;
}

bool wd_buf_grow(struct wd_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->cap - b->n >= extra)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

/* Decimal by hand: snprintf's format parsing cost more than the digits on the response path, where
 * every event carries an index or a token count. */
void wd_buf_put_i64(struct wd_buf *b, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof(tmp), *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    wd_buf_put(b, p, (size_t)(e - p));
}

void wd_buf_put_double(struct wd_buf *b, double v)
{
    char tmp[40];
    /* %.17g round-trips every double; JSON has no inf/nan, callers never pass them. */
    int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    wd_buf_put(b, tmp, (size_t)n);
}

void wd_buf_printf(struct wd_buf *b, const char *fmt, ...)
{
    /* one pass into the room there is (made at least 128 bytes); a second only when it did not fit */
    if (!wd_buf_reserve(b, 128))
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->n) {
        if (!wd_buf_reserve(b, (size_t)n + 1))
            return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)n;
}

void wd_buf_consume(struct wd_buf *b, size_t n)
{
    if (n >= b->n) {
        b->n = 0;
        return;
    }
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
}

void wd_buf_reset(struct wd_buf *b)
{
    b->n = 0;
    b->oom = false;
}

void wd_buf_free(struct wd_buf *b)
{
    if (b->p != NULL) /* most of a call's buffers were never used */
        free(b->p);
    *b = (struct wd_buf){0};
}

struct wd_arena_chunk {
    struct wd_arena_chunk *next;
    size_t cap;
    _Alignas(16) char data[];
};

/* Under AddressSanitizer the unallocated part of each chunk, and the padding after each allocation, is
 * poisoned, so an overflow inside the arena is reported like one on the heap. */
#if defined(__SANITIZE_ADDRESS__)
#define WD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WD_ASAN 1
#endif
#endif
#ifdef WD_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

void *wd_arena_alloc(struct wd_arena *a, size_t want)
{
    if (want > SIZE_MAX / 2)
        return NULL; /* a size computed from hostile counts: rounding or the header would wrap */
    size_t n = (want + 15) & ~(size_t)15;
    if (a->head == NULL || a->cap - a->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        if (a->head != NULL && a->head->cap * 2 > cap && a->head->cap < (1u << 20))
            cap = a->head->cap * 2;
        struct wd_arena_chunk *c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        c->cap = cap;
        ASAN_POISON_MEMORY_REGION(c->data, cap);
        a->head = c;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->head->data + a->used;
    a->used += n;
    ASAN_UNPOISON_MEMORY_REGION(p, want);
    return p;
}

void *wd_arena_zalloc(struct wd_arena *a, size_t n)
{
    void *p = wd_arena_alloc(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

char *wd_arena_strndup(struct wd_arena *a, const char *p, size_t n)
{
    char *s = wd_arena_alloc(a, n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void wd_arena_free(struct wd_arena *a)
{
    struct wd_arena_chunk *c = a->head;
    while (c != NULL) {
        struct wd_arena_chunk *next = c->next;
        ASAN_UNPOISON_MEMORY_REGION(c->data, c->cap);
        free(c);
        c = next;
    }
    *a = (struct wd_arena){0};
}

static _Thread_local uint64_t rng_state[2];

uint64_t wd_rand_u64(void)
{
    if (rng_state[0] == 0 && rng_state[1] == 0) {
        if (getrandom(rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state) ||
            (rng_state[0] == 0 && rng_state[1] == 0))
            rng_state[0] = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&rng_state;
    }
    /* xorshift128+: ids need uniqueness, not secrecy. */
    uint64_t s1 = rng_state[0];
    const uint64_t s0 = rng_state[1];
    rng_state[0] = s0;
    s1 ^= s1 << 23;
    rng_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng_state[1] + s0;
}

size_t wd_cstr_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

void wd_str_copy(char *dst, size_t cap, struct wd_str s)
{
    size_t n = s.n;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s.p[n] & 0xC0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
}

void wd_rand_id(char *out, size_t n)
{
    /* 6 bits a character, ten from one draw; the two codes past 61 map to letters again (ids, not keys) */
    static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789AB";
    size_t i = 0;
    for (; i + 10 <= n; i += 10) {
        uint64_t r = wd_rand_u64();
        out[i] = alphabet[r & 63], out[i + 1] = alphabet[(r >> 6) & 63], out[i + 2] = alphabet[(r >> 12) & 63];
        out[i + 3] = alphabet[(r >> 18) & 63], out[i + 4] = alphabet[(r >> 24) & 63];
        out[i + 5] = alphabet[(r >> 30) & 63], out[i + 6] = alphabet[(r >> 36) & 63];
        out[i + 7] = alphabet[(r >> 42) & 63], out[i + 8] = alphabet[(r >> 48) & 63];
        out[i + 9] = alphabet[(r >> 54) & 63];
    }
    for (uint64_t r = i < n ? wd_rand_u64() : 0; i < n; i++, r >>= 6)
        out[i] = alphabet[r & 63];
}
