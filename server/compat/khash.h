/* Just enough of a khash-compatible declaration for libh2o 2.2.5's <h2o/http2_internal.h>, which includes
 * "khash.h" (bundled with h2o's sources, not installed by Debian's libh2o-dev). Only the front guard
 * (server/front.c) includes it, to read an HTTP/2 connection's stream table: the table is built by libh2o,
 * so the layout, the 64-bit integer hash and the probing below must be the ones libh2o was built with
 * (klib khash 0.2.8: two flag bits per bucket, quadratic probing, a power-of-two bucket count). Read only:
 * no insertion, deletion or resizing is provided. */
#ifndef WARDEN_COMPAT_KHASH_H
#define WARDEN_COMPAT_KHASH_H

#include <stdint.h>

typedef unsigned int khint32_t;
typedef uint64_t khint64_t;
typedef khint32_t khint_t;
typedef khint_t khiter_t;

/* bucket i: bit 2 = empty, bit 1 = deleted */
#define wd_kh_flags(h, i) (((h)->flags[(i) >> 4] >> (((i) & 0xfU) << 1)) & 3U)

#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                      \
    typedef struct kh_##name##_s {                                                                              \
        khint_t n_buckets, size, n_occupied, upper_bound;                                                       \
        khint32_t *flags;                                                                                       \
        khint64_t *keys;                                                                                        \
        khval_t *vals;                                                                                          \
    } kh_##name##_t;                                                                                            \
    static inline __attribute__((unused)) khint_t kh_get_##name(const kh_##name##_t *h, khint64_t key)        \
    {                                                                                                           \
        if (h->n_buckets == 0)                                                                                  \
            return 0;                                                                                           \
        khint_t mask = h->n_buckets - 1, step = 0;                                                              \
        khint_t i = (khint32_t)(key >> 33 ^ key ^ key << 11) & mask, first = i;                                \
        for (;;) {                                                                                              \
            khint_t f = wd_kh_flags(h, i);                                                                      \
            if (f & 2U)                                                                                         \
                return h->n_buckets; /* empty: not there */                                                     \
            if (!(f & 1U) && h->keys[i] == key)                                                                 \
                return i;                                                                                       \
            i = (i + (++step)) & mask;                                                                          \
            if (i == first)                                                                                     \
                return h->n_buckets;                                                                            \
        }                                                                                                       \
    }

#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) kh_get_##name(h, k)
#define kh_begin(h) ((khint_t)0)
#define kh_end(h) ((h)->n_buckets)
#define kh_exist(h, x) (wd_kh_flags(h, x) == 0)
#define kh_val(h, x) ((h)->vals[x])
#define kh_foreach_value(h, vvar, code)                                                                          \
    {                                                                                                           \
        for (khint_t wd_kh_i = kh_begin(h); wd_kh_i != kh_end(h); ++wd_kh_i) {                                  \
            if (!kh_exist(h, wd_kh_i))                                                                          \
                continue;                                                                                       \
            (vvar) = kh_val(h, wd_kh_i);                                                                        \
            code;                                                                                               \
        }                                                                                                       \
    }

#endif
