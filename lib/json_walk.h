/* wd_json_each_member's walk (json.h), inlined: a caller whose `on` is a static function of its own file gets
 * it inlined into the walk (no indirect call a member), for the answer bytes read on every call of a relay.
 * The same contract as wd_json_each_member, which is this walk compiled once. */
#ifndef WARDEN_LIB_JSON_WALK_H
#define WARDEN_LIB_JSON_WALK_H

#include <stdint.h>
#include <string.h>

#include "lib/json.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* 1 whitespace, 2 a delimiter that may follow a value (as the tokenizer's classes) */
static const uint8_t wd_json_walk_class[256] = {
    [' '] = 1, ['\n'] = 1, ['\r'] = 1, ['\t'] = 1, [','] = 2, ['}'] = 2, [']'] = 2,
};

static inline __attribute__((always_inline)) size_t wd_json_walk_ws(const char *s, size_t i, size_t len)
{
    /* compact JSON has none: one compare finds the next byte is no whitespace */
    while (i < len && (unsigned char)s[i] <= ' ' && wd_json_walk_class[(unsigned char)s[i]] == 1)
        i++;
    return i;
}

/* The closing quote of the string whose first byte is p[i] (the byte after its opening quote), or n. */
static inline __attribute__((always_inline)) size_t wd_json_walk_str_close(const char *p, size_t n, size_t i)
{
#if defined(__SSE2__)
    /* keys and short values end within 16 bytes: one compare of the block before a call to memchr */
    if (n - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
        unsigned b = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
        if (q != 0 && (b == 0 || __builtin_ctz(q) < __builtin_ctz(b)))
            return i + (size_t)__builtin_ctz(q);
    }
#endif
    for (;;) {
        const char *q = i < n ? memchr(p + i, '"', n - i) : NULL;
        if (q == NULL)
            return n;
        size_t k = (size_t)(q - p), b = k;
        while (b > i && p[b - 1] == '\\') /* p[i - 1] is a quote: the count stops inside the string */
            b--;
        if (((k - b) & 1) == 0)
            return k;
        i = k + 1; /* an escaped quote */
    }
}

/* The end of the value that starts at p[i], or SIZE_MAX. */
static inline __attribute__((always_inline)) size_t wd_json_walk_value_end(const char *p, size_t n, size_t i)
{
    if (i >= n)
        return SIZE_MAX;
    char c = p[i];
    if (c == '"') {
        size_t e = wd_json_walk_str_close(p, n, i + 1);
        return e < n ? e + 1 : SIZE_MAX;
    }
    if (c == '{' || c == '[') {
        size_t depth = 0;
        for (; i < n; i++) {
            c = p[i];
            if (c == '"') {
                i = wd_json_walk_str_close(p, n, i + 1);
                if (i >= n)
                    return SIZE_MAX;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return SIZE_MAX;
    }
    size_t s = i;
    while (i < n && wd_json_walk_class[(unsigned char)p[i]] == 0)
        i++;
    return i > s ? i : SIZE_MAX;
}

static inline __attribute__((always_inline)) int
wd_json_walk(const char *p, size_t n, int (*on)(void *ctx, int depth, struct wd_str key, int type, struct wd_str val),
             void *ctx)
{
    size_t i = wd_json_walk_ws(p, 0, n);
    if (i >= n || p[i] != '{')
        return -1;
    int depth = 0;
    i = wd_json_walk_ws(p, i + 1, n);
    if (i < n && p[i] == '}')
        return 0;
    for (;;) {
        /* Each whitespace check comes after the test for the byte compact JSON (what providers send) has there
         * fails: the member's quote, the colon, the value's first byte, the comma or brace after it. */
        if (i >= n || p[i] != '"') {
            i = wd_json_walk_ws(p, i, n);
            if (i >= n || p[i] != '"')
                return -1;
        }
        size_t ks = i + 1, ke = wd_json_walk_str_close(p, n, ks);
        if (ke >= n)
            return -1;
        i = ke + 1;
        if (i >= n || p[i] != ':') {
            i = wd_json_walk_ws(p, i, n);
            if (i >= n || p[i] != ':')
                return -1;
        }
        i++;
        if (i >= n)
            return -1;
        char c = p[i];
        if ((unsigned char)c <= ' ') {
            i = wd_json_walk_ws(p, i, n);
            if (i >= n)
                return -1;
            c = p[i];
        }
        int type = c == '"' ? WD_J_STR : c == '{' ? WD_J_OBJ : c == '[' ? WD_J_ARR : c == 't' ? WD_J_TRUE
                 : c == 'f' ? WD_J_FALSE : c == 'n' ? WD_J_NULL : WD_J_NUM;
        struct wd_str key = {p + ks, ke - ks};
        if (type == WD_J_OBJ) {
            /* the value's extent is found only when it is skipped: a descent reads it member by member */
            int r = on(ctx, depth, key, type, (struct wd_str){p + i, 0});
            if (r == WD_JSON_DESCEND && depth + 1 < WD_JSON_WALK_DEPTH) {
                depth++;
                i = wd_json_walk_ws(p, i + 1, n);
                if (i < n && p[i] == '}')
                    goto close; /* an empty object */
                continue;
            }
            if (r != 0 && r != WD_JSON_DESCEND)
                return r;
        }
        size_t ve = wd_json_walk_value_end(p, n, i);
        if (ve == SIZE_MAX)
            return -1;
        if (type != WD_J_OBJ) {
            struct wd_str val =
                type == WD_J_STR ? (struct wd_str){p + i + 1, ve - i - 2} : (struct wd_str){p + i, ve - i};
            int r = on(ctx, depth, key, type, val);
            if (r != 0 && r != WD_JSON_DESCEND)
                return r;
        }
        i = ve;
        for (;;) {
            if (i < n && p[i] == ',') {
                i++;
                break;
            }
            if (i < n && p[i] != '}') {
                i = wd_json_walk_ws(p, i, n);
                if (i < n && p[i] == ',') {
                    i++;
                    break;
                }
            }
            if (i >= n || p[i] != '}')
                return -1;
        close:
            if (depth == 0)
                return 0;
            depth--;
            i++;
        }
    }
}

#endif
