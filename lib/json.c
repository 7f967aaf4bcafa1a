/* Strict JSON tokenizer and writer helpers; see json.h for why strings stay escaped. */
#include "lib/json.h"
#include "lib/json_walk.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/types.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__SSE2__)
#include <immintrin.h>
#define WD_JSON_AVX2 1 /* built for AVX2 as well, chosen at run time */
#endif

bool wd_json_force_baseline;

static int tok_push(struct wd_json *j, uint8_t type, size_t start)
{
    if (j->n == j->cap) {
        /* A request holds about one token per 70 bytes (the long strings are single tokens): the first
         * allocation is sized for that, so a 50 KB body needs no regrowth. */
        uint32_t cap = j->cap ? j->cap * 2 : (j->len / 64 > 256 ? (uint32_t)(j->len / 64) : 256);
        if (cap > (1u << 26))
            return -1;
        struct wd_jtok *t = realloc(j->t, (size_t)cap * sizeof(*t));
        if (t == NULL)
            return -1;
        j->t = t;
        j->cap = cap;
    }
    struct wd_jtok *t = &j->t[j->n];
    t->start = (uint32_t)start;
    t->end = (uint32_t)start;
    t->next = 0;
    t->size = 0;
    t->type = type;
    t->escaped = 0;
    return (int)j->n++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of the \\uXXXX escape at s[at] (the backslash), or -1 when it is cut short or not hex. */
static inline int u_escape(const unsigned char *s, size_t at, size_t len)
{
    if (at + 6 > len)
        return -1;
    int a = hexval((char)s[at + 2]), b = hexval((char)s[at + 3]), c = hexval((char)s[at + 4]),
        d = hexval((char)s[at + 5]);
    if ((a | b | c | d) < 0)
        return -1;
    return a << 12 | b << 8 | c << 4 | d;
}

/* Validates one UTF-8 sequence at s[*i]; advances past it. */
static bool utf8_step(const unsigned char *s, size_t len, size_t *i)
{
    unsigned c = s[*i];
    size_t need;
    unsigned min;
    if (c < 0x80) {
        (*i)++;
        return true;
    } else if (c >= 0xc2 && c <= 0xdf) {
        need = 1, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3, min = 0x10000;
    } else {
        return false;
    }
    if (*i + need >= len)
        return false;
    unsigned cp = c & (0x3f >> need);
    for (size_t k = 1; k <= need; k++) {
        unsigned cc = s[*i + k];
        if ((cc & 0xc0) != 0x80)
            return false;
        cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return false;
    *i += need + 1;
    return true;
}

/* Bit k is set when p[k] needs a look inside a string: a quote, a backslash, a control character or a
 * non-ASCII byte. Sixteen bytes per compare with SSE2 (every x86-64 has it); compared as signed bytes, one
 * test catches both the control characters (below 0x20) and the non-ASCII bytes (negative). Elsewhere,
 * eight bytes per word: the word test may also flag an ordinary byte right after a special one (a borrow),
 * never miss one, and the scanner looks at every flagged byte itself, so an extra flag costs a look only. */
static inline uint64_t special_mask64(const unsigned char *p)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i x = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        m |= (uint64_t)(unsigned)_mm_movemask_epi8(x) << (16 * k);
    }
    return m;
#else
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t m = 0;
    for (int k = 0; k < 8; k++) {
        uint64_t v;
        memcpy(&v, p + 8 * k, 8);
        uint64_t q = v ^ (ones * '"'), bs = v ^ (ones * '\\');
        uint64_t t = (((q - ones) & ~q) | ((bs - ones) & ~bs) | ((v - ones * 0x20) & ~v) | v) & highs;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        t = __builtin_bswap64(t); /* byte 0 of the input in the low byte */
#endif
        /* the high bit of each byte, gathered into eight bits: byte j's lands on bit 56 + j */
        m |= ((t >> 7) * 0x0102040810204080ull) >> 56 << (8 * k);
    }
    return m;
#endif
}

#if defined(WD_JSON_AVX2)
/* The same mask, thirty-two bytes per compare, for processors with AVX2 (chosen at run time). */
__attribute__((target("avx2"))) static inline uint64_t special_mask64_avx2(const unsigned char *p)
{
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\'), space = _mm256_set1_epi8(0x20);
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    __m256i xa = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(a, quote), _mm256_cmpeq_epi8(a, bslash)),
                                 _mm256_cmpgt_epi8(space, a));
    __m256i xb = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(b, quote), _mm256_cmpeq_epi8(b, bslash)),
                                 _mm256_cmpgt_epi8(space, b));
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(xa) | (uint64_t)(uint32_t)_mm256_movemask_epi8(xb) << 32;
}

#define MASK64(p) (avx2 ? special_mask64_avx2(p) : special_mask64(p))
#else
#define MASK64(p) ((void)avx2, special_mask64(p))
#endif

/* Scans the string whose first content byte is at *pos; on success *pos is its closing quote.
 * Works on 64-byte blocks: one mask says where the quotes, backslashes, control characters and non-ASCII
 * bytes are, and only those bytes are looked at, in order; the bytes an escape or a UTF-8 character covers
 * are dropped from the mask, and when one runs past the block the next block starts right after it. Most of
 * a request is long prose with an escaped newline every line or so; stopping a vector scan at each of them
 * and starting it again cost more than the scan itself. */
static inline __attribute__((always_inline)) int scan_string_with(struct wd_json *j, size_t *pos, int ti,
                                                                 bool avx2)
{
    const unsigned char *s = (const unsigned char *)j->src;
    size_t i = *pos, len = j->len;
    while (i < len) {
        uint64_t m;
        if (len - i >= 64) {
            m = MASK64(s + i);
        } else {
            unsigned char tail[64]; /* the last bytes, padded with a byte that is never special */
            memcpy(tail, s + i, len - i);
            memset(tail + (len - i), 'a', 64 - (len - i));
            m = MASK64(tail);
        }
        size_t next = i + 64; /* where the next block starts */
        while (m != 0) {
            size_t at = i + (size_t)__builtin_ctzll(m), after;
            unsigned char c = s[at];
            if (c == '"') {
                *pos = at;
                return 0;
            }
            if (c == '\\') {
                if (ti >= 0)
                    j->t[ti].escaped = 1;
                if (at + 1 >= len) {
                    j->err = "unterminated string";
                    j->err_off = at;
                    return -1;
                }
                switch (s[at + 1]) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                    after = at + 2;
                    break;
                case 'u': {
                    int cp = u_escape(s, at, len);
                    if (cp < 0) {
                        j->err = "bad \\u escape";
                        j->err_off = at;
                        return -1;
                    }
                    after = at + 6;
                    /* A surrogate escape must be a high one followed by a low one: a lone half has no UTF-8
                     * form, and a provider would be handed text it may reject or mangle. */
                    if (cp >= 0xd800 && cp <= 0xdfff) {
                        int lo = cp <= 0xdbff && after + 1 < len && s[after] == '\\' && s[after + 1] == 'u'
                                     ? u_escape(s, after, len)
                                     : -1;
                        if (lo < 0xdc00 || lo > 0xdfff) {
                            j->err = "lone surrogate escape";
                            j->err_off = at;
                            return -1;
                        }
                        after += 6;
                    }
                    break;
                }
                default:
                    j->err = "bad escape";
                    j->err_off = at;
                    return -1;
                }
            } else if (c < 0x20) {
                j->err = "control character in string";
                j->err_off = at;
                return -1;
            } else {
                after = at;
                if (!utf8_step(s, len, &after)) {
                    j->err = "invalid UTF-8";
                    j->err_off = at;
                    return -1;
                }
            }
            if (after >= next) { /* the escape or character ran into the next block: go on after it */
                next = after;
                break;
            }
            m &= ~0ull << (after - i); /* forget the bytes it covered (an escaped quote or backslash, the
                                          * continuation bytes of a character) */
        }
        i = next;
    }
    j->err = "unterminated string";
    j->err_off = len;
    return -1;
}

static int scan_number(struct wd_json *j, size_t *pos)
{
    const char *s = j->src;
    size_t i = *pos, len = j->len;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len)
        goto bad;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        goto bad;
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9')
            goto bad;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || s[i] < '0' || s[i] > '9')
            goto bad;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    *pos = i;
    return 0;
bad:
    j->err = "bad number";
    j->err_off = i;
    return -1;
}

/* Byte classes for the structural loop: 1 whitespace, 2 a delimiter that may follow a value. */
static const uint8_t byte_class[256] = {
    [' '] = 1, ['\n'] = 1, ['\r'] = 1, ['\t'] = 1, [','] = 2, ['}'] = 2, [']'] = 2,
};

static inline size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && byte_class[(unsigned char)s[i]] == 1)
        i++;
    return i;
}

/* The tokenizer, inlined twice below: once built for AVX2 and once for the baseline instruction set, so the
 * string scan is inlined in both and the choice is made once per document. */
static inline __attribute__((always_inline)) int parse_with(struct wd_json *j, const char *src, size_t len,
                                                           bool avx2)
{
    j->src = src;
    j->len = len;
    j->n = 0;
    j->err = NULL;
    j->err_off = 0;
    if (len >= UINT32_MAX) {
        j->err = "document too large";
        return -1;
    }
    /* Explicit stack of open containers; `expect_key` tracks object member syntax. */
    int stack[WD_JSON_MAX_DEPTH];
    int depth = 0;
    size_t i = skip_ws(src, 0, len);
    bool need_value = true;   /* a value must come next (start, after ':' or ',') */
    bool expect_key = false;  /* inside an object, a key or '}' must come next */
    bool after_comma = false;

    for (;;) {
        if (i >= len) {
            if (depth == 0 && !need_value)
                break;
            j->err = "unexpected end of input";
            j->err_off = i;
            return -1;
        }
        char c = src[i];
        if (!need_value) {
            /* after a complete value: ',' or a closer, or end */
            if (depth == 0) {
                j->err = "trailing characters";
                j->err_off = i;
                return -1;
            }
            struct wd_jtok *top = &j->t[stack[depth - 1]];
            if (c == ',') {
                i = skip_ws(src, i + 1, len);
                need_value = true;
                after_comma = true;
                expect_key = top->type == WD_J_OBJ;
                continue;
            }
            if ((c == '}' && top->type == WD_J_OBJ) || (c == ']' && top->type == WD_J_ARR)) {
                top->end = (uint32_t)(i + 1);
                top->next = j->n;
                depth--;
                i = skip_ws(src, i + 1, len);
                continue;
            }
            j->err = "expected ',' or closing bracket";
            j->err_off = i;
            return -1;
        }
        if (expect_key) {
            struct wd_jtok *top = &j->t[stack[depth - 1]];
            if (c == '}' && !after_comma) {
                top->end = (uint32_t)(i + 1);
                top->next = j->n;
                depth--;
                need_value = false;
                expect_key = false;
                i = skip_ws(src, i + 1, len);
                continue;
            }
            if (c != '"') {
                j->err = "expected object key";
                j->err_off = i;
                return -1;
            }
            int k = tok_push(j, WD_J_STR, i + 1);
            if (k < 0)
                goto oom;
            size_t p = i + 1;
            if (scan_string_with(j, &p, k, avx2) < 0)
                return -1;
            j->t[k].end = (uint32_t)p;
            j->t[k].next = (uint32_t)k + 1;
            j->t[stack[depth - 1]].size++;
            i = skip_ws(src, p + 1, len);
            if (i >= len || src[i] != ':') {
                j->err = "expected ':'";
                j->err_off = i;
                return -1;
            }
            i = skip_ws(src, i + 1, len);
            expect_key = false;
            after_comma = false;
            continue; /* need_value stays true */
        }
        /* a value */
        int t;
        switch (c) {
        case '{':
        case '[':
            if (depth == WD_JSON_MAX_DEPTH) {
                j->err = "nesting too deep";
                j->err_off = i;
                return -1;
            }
            t = tok_push(j, c == '{' ? WD_J_OBJ : WD_J_ARR, i);
            if (t < 0)
                goto oom;
            if (depth > 0 && j->t[stack[depth - 1]].type == WD_J_ARR)
                j->t[stack[depth - 1]].size++;
            stack[depth++] = t;
            i = skip_ws(src, i + 1, len);
            if (c == '{') {
                expect_key = true;
                after_comma = false;
            } else if (i < len && src[i] == ']') {
                j->t[t].end = (uint32_t)(i + 1);
                j->t[t].next = j->n;
                depth--;
                need_value = false;
                i = skip_ws(src, i + 1, len);
            }
            after_comma = false;
            continue;
        case ']':
            j->err = after_comma ? "trailing comma" : "unexpected ']'";
            j->err_off = i;
            return -1;
        case '"': {
            t = tok_push(j, WD_J_STR, i + 1);
            if (t < 0)
                goto oom;
            size_t p = i + 1;
            if (scan_string_with(j, &p, t, avx2) < 0)
                return -1;
            j->t[t].end = (uint32_t)p;
            i = p + 1;
            break;
        }
        case 't':
        case 'f':
        case 'n': {
            const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
            size_t ln = strlen(lit);
            if (len - i < ln || memcmp(src + i, lit, ln) != 0) {
                j->err = "invalid literal";
                j->err_off = i;
                return -1;
            }
            t = tok_push(j, c == 't' ? WD_J_TRUE : c == 'f' ? WD_J_FALSE : WD_J_NULL, i);
            if (t < 0)
                goto oom;
            i += ln;
            j->t[t].end = (uint32_t)i;
            break;
        }
        default: {
            t = tok_push(j, WD_J_NUM, i);
            if (t < 0)
                goto oom;
            size_t p = i;
            if (scan_number(j, &p) < 0)
                return -1;
            j->t[t].end = (uint32_t)p;
            i = p;
            break;
        }
        }
        j->t[t].next = (uint32_t)t + 1;
        if (depth > 0 && j->t[stack[depth - 1]].type == WD_J_ARR)
            j->t[stack[depth - 1]].size++;
        need_value = false;
        after_comma = false;
        /* a primitive must be followed by a delimiter */
        if (i < len && byte_class[(unsigned char)src[i]] == 0) {
            j->err = "unexpected character after value";
            j->err_off = i;
            return -1;
        }
        i = skip_ws(src, i, len);
    }
    if (j->n == 0) {
        j->err = "empty document";
        return -1;
    }
    return 0;
oom:
    j->err = "out of memory";
    j->err_off = i;
    return -1;
}

#if defined(WD_JSON_AVX2)
__attribute__((target("avx2"))) static int parse_avx2(struct wd_json *j, const char *src, size_t len)
{
    return parse_with(j, src, len, true);
}
#endif

int wd_json_parse(struct wd_json *j, const char *src, size_t len)
{
#if defined(WD_JSON_AVX2)
    if (!wd_json_force_baseline && __builtin_cpu_supports("avx2"))
        return parse_avx2(j, src, len);
#endif
    return parse_with(j, src, len, false);
}

void wd_json_free(struct wd_json *j)
{
    free(j->t);
    j->t = NULL;
    j->n = j->cap = 0;
}

bool wd_json_key_eq_escaped(const struct wd_json *j, int k, const char *key, size_t n)
{
    struct wd_arena a = {0};
    struct wd_str d;
    bool eq = false;
    if (wd_json_str_decode(j, k, &a, &d) == 0)
        eq = d.n == n && memcmp(d.p, key, n) == 0;
    wd_arena_free(&a);
    return eq;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes escaped string content s[0..n) into o (room for n bytes: decoding never grows). Every escape is
 * bounds-checked, so this is safe on content that did not come from the tokenizer. Returns the decoded
 * length, or -1 on a malformed escape. */
static ssize_t unescape(char *o, const char *s, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        const char *bs = memchr(s + r, '\\', n - r);
        size_t run = bs ? (size_t)(bs - (s + r)) : n - r;
        memmove(o + w, s + r, run);
        w += run;
        r += run;
        if (r >= n)
            break;
        if (r + 1 >= n)
            return -1;
        char e = s[r + 1];
        r += 2;
        switch (e) {
        case '"': o[w++] = '"'; break;
        case '\\': o[w++] = '\\'; break;
        case '/': o[w++] = '/'; break;
        case 'b': o[w++] = '\b'; break;
        case 'f': o[w++] = '\f'; break;
        case 'n': o[w++] = '\n'; break;
        case 'r': o[w++] = '\r'; break;
        case 't': o[w++] = '\t'; break;
        case 'u': {
            if (r + 4 > n || hexval(s[r]) < 0 || hexval(s[r + 1]) < 0 || hexval(s[r + 2]) < 0 || hexval(s[r + 3]) < 0)
                return -1;
            unsigned cp = (unsigned)(hexval(s[r]) << 12 | hexval(s[r + 1]) << 8 | hexval(s[r + 2]) << 4 |
                                     hexval(s[r + 3]));
            r += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && r + 6 <= n && s[r] == '\\' && s[r + 1] == 'u' && hexval(s[r + 2]) >= 0 &&
                hexval(s[r + 3]) >= 0 && hexval(s[r + 4]) >= 0 && hexval(s[r + 5]) >= 0) {
                unsigned lo = (unsigned)(hexval(s[r + 2]) << 12 | hexval(s[r + 3]) << 8 | hexval(s[r + 4]) << 4 |
                                         hexval(s[r + 5]));
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    r += 6;
                }
            }
            /* A lone surrogate has no UTF-8 form: it decodes to U+FFFD. The tokenizer refuses them, so only
             * content from elsewhere (wd_json_unescape's callers) can hold one. */
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0xfffd;
            w += put_utf8(o + w, cp);
            break;
        }
        default: return -1;
        }
    }
    return (ssize_t)w;
}

int wd_json_str_decode(const struct wd_json *j, int i, struct wd_arena *a, struct wd_str *out)
{
    if (i < 0 || (uint32_t)i >= j->n || j->t[i].type != WD_J_STR)
        return -1;
    const struct wd_jtok *t = &j->t[i];
    const char *s = j->src + t->start;
    size_t n = t->end - t->start;
    if (!t->escaped) {
        *out = (struct wd_str){s, n};
        return 0;
    }
    char *o = wd_arena_alloc(a, n + 1);
    if (o == NULL)
        return -1;
    ssize_t w = unescape(o, s, n);
    if (w < 0)
        return -1;
    o[w] = '\0';
    *out = (struct wd_str){o, (size_t)w};
    return 0;
}

int wd_json_unescape(struct wd_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (!wd_buf_reserve(b, n))
        return -1;
    ssize_t w = unescape(b->p + b->n, s, n);
    if (w < 0)
        return -1;
    b->n += (size_t)w;
    return 0;
}

int wd_json_num_i64(struct wd_str r, int64_t *out)
{
    size_t k = 0;
    bool neg = r.n > 0 && r.p[0] == '-';
    k += neg;
    if (k >= r.n)
        return -1;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (r.n - k <= 18) { /* up to 18 digits cannot overflow */
        for (; k < r.n; k++) {
            unsigned d = (unsigned char)r.p[k] - '0';
            if (d > 9)
                return -1;
            v = v * 10 + d;
        }
        *out = neg ? -(int64_t)v : (int64_t)v;
        return 0;
    }
    for (; k < r.n; k++) {
        unsigned d = (unsigned char)r.p[k] - '0';
        if (d > 9 || v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int wd_json_i64(const struct wd_json *j, int i, int64_t *out)
{
    if (wd_json_type(j, i) != WD_J_NUM)
        return -1;
    /* an integer: '-'? digits, within int64 (a fraction or an exponent is not one) */
    return wd_json_num_i64(wd_json_raw(j, i), out);
}

int wd_json_each_member(const char *p, size_t n,
                        int (*on)(void *ctx, int depth, struct wd_str key, int type, struct wd_str val), void *ctx)
{
    return wd_json_walk(p, n, on, ctx);
}

int wd_json_double(const struct wd_json *j, int i, double *out)
{
    if (wd_json_type(j, i) != WD_J_NUM)
        return -1;
    struct wd_str r = wd_json_raw(j, i);
    char tmp[64];
    if (r.n >= sizeof(tmp))
        return -1;
    memcpy(tmp, r.p, r.n);
    tmp[r.n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (*end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

void wd_json_put_escaped(struct wd_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            /* Output must be valid UTF-8 whatever the input: messages cut at a byte limit, or bytes from
             * a provider, may end inside a character. */
            size_t k = i;
            if (utf8_step(u, n, &k)) {
                i = k;
                continue;
            }
            wd_buf_put(b, s + run, i - run);
            wd_buf_put(b, "\\ufffd", 6);
            run = ++i;
            continue;
        }
        wd_buf_put(b, s + run, i - run);
        run = ++i;
        switch (c) {
        case '"': wd_buf_put(b, "\\\"", 2); break;
        case '\\': wd_buf_put(b, "\\\\", 2); break;
        case '\n': wd_buf_put(b, "\\n", 2); break;
        case '\r': wd_buf_put(b, "\\r", 2); break;
        case '\t': wd_buf_put(b, "\\t", 2); break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            wd_buf_put(b, e, 6);
        }
        }
    }
    wd_buf_put(b, s + run, n - run);
}

void wd_json_put_string(struct wd_buf *b, const char *s, size_t n)
{
    wd_buf_putc(b, '"');
    wd_json_put_escaped(b, s, n);
    wd_buf_putc(b, '"');
}
