/* Strict, zero-copy JSON tokenizer for the request path, and JSON writing helpers.
 * One pass validates the whole document (RFC 8259 grammar, escapes, UTF-8, no raw control characters, no
 * lone surrogate escapes: RFC 8259 section 8.2 leaves them to the parser, and they have no UTF-8 form)
 * and records for each token where its subtree ends, so lookups skip siblings in O(1). String tokens
 * point at the still-escaped bytes between the quotes: those bytes are valid JSON string content and can
 * be copied into output verbatim, which is how long prompts cross the gateway without decode/encode. */
#ifndef WARDEN_LIB_JSON_H
#define WARDEN_LIB_JSON_H

#include "lib/buf.h"

enum wd_jtype {
    WD_J_OBJ = 1,
    WD_J_ARR,
    WD_J_STR,
    WD_J_NUM,
    WD_J_TRUE,
    WD_J_FALSE,
    WD_J_NULL,
};

struct wd_jtok {
    uint32_t start;      /* strings: first byte after the quote; others: first byte */
    uint32_t end;        /* strings: the closing quote; others: one past the last byte */
    uint32_t next;       /* index of the first token after this subtree */
    uint32_t size;       /* objects: number of members; arrays: number of elements */
    uint8_t type;        /* enum wd_jtype */
    uint8_t escaped;     /* strings: contains a backslash escape */
};

struct wd_json {
    const char *src;
    size_t len;
    struct wd_jtok *t;
    uint32_t n;          /* tokens used */
    uint32_t cap;
    size_t err_off;      /* byte offset of a parse error */
    const char *err;     /* static description of a parse error */
};

#define WD_JSON_MAX_DEPTH 64

/* Tests only: when set, documents are scanned with the baseline code (SSE2, or the portable words) even
 * on a processor with AVX2, so the tests cover both. */
extern bool wd_json_force_baseline;

/* Parses src (not copied; must outlive j). Returns 0, or -1 with j->err/err_off set. */
int wd_json_parse(struct wd_json *j, const char *src, size_t len);
void wd_json_free(struct wd_json *j);

static inline int wd_json_type(const struct wd_json *j, int i)
{
    return i < 0 || (uint32_t)i >= j->n ? 0 : j->t[i].type;
}
/* Whether string token k, decoded, is the n bytes at key (the escaped case, out of line). k must be a
 * string token of j: callers check (wd_json_str_eq, or an object's keys in wd_json_get). */
bool wd_json_key_eq_escaped(const struct wd_json *j, int k, const char *key, size_t n);
static inline bool wd_json_key_eq(const struct wd_json *j, int k, const char *key, size_t n)
{
    const struct wd_jtok *t = &j->t[k];
    if (t->escaped)
        return wd_json_key_eq_escaped(j, k, key, n);
    return t->end - t->start == n && memcmp(j->src + t->start, key, n) == 0;
}
/* Member value of object i by key, or -1. Inline, so that with a literal key the length is a constant
 * and the comparison a few instructions: the decoders look up and compare keys a few hundred times per
 * request. */
static inline int wd_json_get(const struct wd_json *j, int obj, const char *key);
/* Raw slice of a token: strings without quotes (still escaped), containers with brackets. */
static inline struct wd_str wd_json_raw(const struct wd_json *j, int i)
{
    return (struct wd_str){j->src + j->t[i].start, j->t[i].end - j->t[i].start};
}
/* Whether token i is a string equal, decoded, to lit. */
static inline bool wd_json_str_eq(const struct wd_json *j, int i, const char *lit)
{
    return wd_json_type(j, i) == WD_J_STR && wd_json_key_eq(j, i, lit, strlen(lit));
}
/* Decoded (unescaped UTF-8) string value; NUL-terminated, allocated in a unless it has no escapes,
 * in which case it points into the source (still length-delimited: use .n). */
int wd_json_str_decode(const struct wd_json *j, int i, struct wd_arena *a, struct wd_str *out);
/* Appends the decoded form of escaped string content (the bytes between a JSON string's quotes) to b; s
 * must not point into b. Escaped lone surrogates decode to U+FFFD. -1 on a malformed escape or OOM. */
int wd_json_unescape(struct wd_buf *b, const char *s, size_t n);
/* The members of the JSON object in p[0..n), in order, without tokenizing it (no token array; strings are
 * skipped with memchr, nested values by their brackets and strings, not checked): on gets each member's depth
 * (0 for the object's own), key (the raw bytes between its quotes) and value (a string's raw bytes between its
 * quotes, escapes not decoded; an object's: none, descend to read it; any other value's whole bytes) with the
 * value's type (WD_J_*). on returns 0 to
 * go on after the value, WD_JSON_DESCEND to walk an object value's members next (at depth + 1, up to
 * WD_JSON_WALK_DEPTH; deeper, or another type, it is skipped), anything else to stop the walk with that result.
 * For reading a few fields of a provider's answer that Warden passes on as it is. Returns 0; -1 when the bytes
 * are not an object of that shape (the members before the fault were passed); or on's result that stopped it. */
#define WD_JSON_DESCEND 1
#define WD_JSON_WALK_DEPTH 8
int wd_json_each_member(const char *p, size_t n,
                        int (*on)(void *ctx, int depth, struct wd_str key, int type, struct wd_str val), void *ctx);
/* A JSON integer's bytes ('-'? digits) within int64: 0, or -1. */
int wd_json_num_i64(struct wd_str raw, int64_t *out);
int wd_json_i64(const struct wd_json *j, int i, int64_t *out);
int wd_json_double(const struct wd_json *j, int i, double *out);

/* Iteration over array elements / object members (k is the key, k + 1 the value). */
#define WD_JSON_ARR_EACH(j, arr, e) \
    for (uint32_t e = (uint32_t)(arr) + 1, e##_end = (j)->t[(arr)].next; e < e##_end; e = (j)->t[e].next)
#define WD_JSON_OBJ_EACH(j, obj, k) \
    for (uint32_t k = (uint32_t)(obj) + 1, k##_end = (j)->t[(obj)].next; k < k##_end; k = (j)->t[k + 1].next)

static inline int wd_json_get(const struct wd_json *j, int obj, const char *key)
{
    if (wd_json_type(j, obj) != WD_J_OBJ)
        return -1;
    size_t n = strlen(key);
    WD_JSON_OBJ_EACH(j, obj, k)
    {
        if (wd_json_key_eq(j, (int)k, key, n))
            return (int)k + 1;
    }
    return -1;
}

/* Writes s as a JSON string literal (with quotes), escaping as needed. */
void wd_json_put_string(struct wd_buf *b, const char *s, size_t n);
/* Writes the escaped content of s (no quotes). Invalid UTF-8 (a message cut inside a character, bytes from
 * outside) becomes \ufffd, so the output is always valid JSON. */
void wd_json_put_escaped(struct wd_buf *b, const char *s, size_t n);

#endif
