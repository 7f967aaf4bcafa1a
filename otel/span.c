/* Spans (see span.h): the attribute and event setters, the W3C traceparent, and the two OTLP encodings
 * written by hand.
 *
 * Protobuf: fields in field-number order with proto3 defaults omitted, which is what protoc-generated
 * serializers write, so the bytes equal protoc's for the same message (tests/integration/
 * test_otlp_encoding.sh checks that with `protoc --encode`). The schema is opentelemetry-proto as pinned
 * in tests/otel: its Span has no `flags` field (16, added in opentelemetry-proto 1.1.0), so the W3C flags
 * are not encoded; newer receivers read the missing field as 0, "flags unknown". Strings go out as valid
 * UTF-8 (proto3 receivers reject a request holding a string that is not): each byte that does not start a
 * valid sequence becomes U+FFFD, exactly as wd_json_put_escaped does, so both encodings carry the same text.
 *
 * OTLP/JSON: the proto3 JSON mapping with OTLP's exceptions: ids in lowercase hex, enums as integers,
 * 64-bit integers as decimal strings, lowerCamelCase names, defaults omitted. */
#include "otel/span.h"

#include <assert.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/json.h"

/* ---- attributes and events -------------------------------------------------------------------- */

/* Counts as the setters and encoders see them: a caller that overfilled a count never makes them read past
 * the array. */
static int clamp(int n, int max) { return n < 0 ? 0 : n > max ? max : n; }

static size_t attr_klen(const struct wd_attr *a)
{
    return a->klen != 0 || a->key == NULL ? a->klen : strlen(a->key);
}

/* Whether attribute a has this key: keys are literals, so the pointer usually decides, and the length
 * rules out most of the rest without reading the text. */
static bool same_key(const struct wd_attr *a, const char *key, size_t klen)
{
    if (a->key == key)
        return true;
    return a->key != NULL && attr_klen(a) == klen && memcmp(a->key, key, klen) == 0;
}

/* The slot at index i (n = nattrs, clamped): new when i == n, NULL when the span is full. */
static struct wd_attr *attr_at(struct wd_span *s, int i, int n, const char *key, size_t klen)
{
    if (i == WD_SPAN_MAX_ATTRS) {
        s->dropped_attrs++;
        return NULL;
    }
    if (i == n)
        s->nattrs = n + 1;
    struct wd_attr *a = &s->attrs[i];
    *a = (struct wd_attr){.key = key, .klen = klen <= UINT32_MAX ? (uint32_t)klen : 0};
    return a;
}

struct wd_attr *wd_span_attr_slot(struct wd_span *s, const char *key, size_t klen)
{
    if (key == NULL)
        key = "", klen = 0;
    int n = clamp(s->nattrs, WD_SPAN_MAX_ATTRS), i = 0;
    while (i < n && !same_key(&s->attrs[i], key, klen))
        i++;
    return attr_at(s, i, n, key, klen);
}

struct wd_attr *wd_span_attr_new(struct wd_span *s, const char *key, size_t klen)
{
    if (key == NULL)
        key = "", klen = 0;
    int n = clamp(s->nattrs, WD_SPAN_MAX_ATTRS);
#ifndef NDEBUG
    for (int k = 0; k < n; k++)
        assert(!same_key(&s->attrs[k], key, klen)); /* the caller said the key was new */
#endif
    return attr_at(s, n, n, key, klen);
}

void wd_span_attr_double(struct wd_span *s, const char *key, double v)
{
    struct wd_attr *a = wd_span_attr_slot(s, key, key ? strlen(key) : 0);
    if (a == NULL)
        return;
    a->type = WD_ATTR_DOUBLE;
    a->d = v;
}

struct wd_span_event *wd_span_add_event(struct wd_span *s, const char *name, uint64_t time_ns)
{
    if (s->nevents < 0)
        s->nevents = 0;
    if (s->nevents >= WD_SPAN_MAX_EVENTS) {
        s->dropped_events++;
        return NULL;
    }
    struct wd_span_event *e = memset(&s->events[s->nevents++], 0, sizeof(struct wd_span_event));
    e->name = name;
    e->time_ns = time_ns;
    return e;
}

/* ---- UTF-8 ------------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlongs, surrogates or code points past
 * U+10FFFF), or 0. The same rules as lib/json.c. */
static size_t utf8_len(const unsigned char *s, size_t n, size_t i)
{
    unsigned c = s[i];
    size_t need;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        need = 2, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3, min = 0x10000;
    else
        return 0;
    if (i + need >= n)
        return 0;
    unsigned cp = c & (0x3fu >> need);
    for (size_t k = 1; k <= need; k++) {
        unsigned cc = s[i + k];
        if ((cc & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need + 1;
}

/* The byte length of s once every invalid byte is replaced by U+FFFD (3 bytes); n when s is valid. */
static size_t utf8_clean_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    /* ASCII eight bytes at a time: keys and most values are all ASCII */
    for (uint64_t w; i + 8 <= n; i += 8) {
        memcpy(&w, u + i, 8);
        if (w & 0x8080808080808080u)
            break;
    }
    size_t out = i;
    while (i < n) {
        if (u[i] < 0x80) {
            i++, out++;
            continue;
        }
        size_t k = utf8_len(u, n, i);
        if (k == 0)
            i++, out += 3;
        else
            i += k, out += k;
    }
    return out;
}

static void utf8_put_clean(struct wd_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_len(u, n, i);
        if (k != 0) {
            i += k;
            continue;
        }
        wd_buf_put(b, s + run, i - run);
        wd_buf_put(b, "\xef\xbf\xbd", 3);
        run = ++i;
    }
    wd_buf_put(b, s + run, n - run);
}

/* ---- protobuf --------------------------------------------------------------------------------- */

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

static size_t varint_to(uint8_t out[10], uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void pb_varint(struct wd_buf *b, uint64_t v)
{
    uint8_t t[10];
    wd_buf_put(b, t, varint_to(t, v));
}

static void pb_tag(struct wd_buf *b, uint32_t field, unsigned wire) { pb_varint(b, (uint64_t)field << 3 | wire); }

static void pb_uint(struct wd_buf *b, uint32_t field, uint64_t v)
{
    if (v == 0)
        return;
    pb_tag(b, field, PB_VARINT);
    pb_varint(b, v);
}

static void pb_put_fixed64(struct wd_buf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    wd_buf_put(b, t, 8);
}

static void pb_fixed64(struct wd_buf *b, uint32_t field, uint64_t v)
{
    if (v == 0)
        return;
    pb_tag(b, field, PB_I64);
    pb_put_fixed64(b, v);
}

static void pb_bytes(struct wd_buf *b, uint32_t field, const void *p, size_t n)
{
    if (n == 0)
        return;
    pb_tag(b, field, PB_LEN);
    pb_varint(b, n);
    wd_buf_put(b, p, n);
}

/* A string field, always written (oneof members have presence). */
static void pb_string_always(struct wd_buf *b, uint32_t field, const char *s, size_t n)
{
    size_t clean = utf8_clean_len(s, n);
    pb_tag(b, field, PB_LEN);
    pb_varint(b, clean);
    if (clean == n)
        wd_buf_put(b, s, n);
    else
        utf8_put_clean(b, s, n);
}

static void pb_string(struct wd_buf *b, uint32_t field, const char *s, size_t n)
{
    if (n > 0)
        pb_string_always(b, field, s, n);
}

static void pb_cstring(struct wd_buf *b, uint32_t field, const char *s)
{
    if (s != NULL)
        pb_string(b, field, s, strlen(s));
}

/* A nested message: the tag and a placeholder of `room` bytes for the length; pb_close_room writes the real
 * length once the content is there, moving the content when the length needs another number of bytes. */
static size_t pb_open_room(struct wd_buf *b, uint32_t field, size_t room)
{
    static const uint8_t zero[2];
    pb_tag(b, field, PB_LEN);
    size_t at = b->n;
    wd_buf_put(b, zero, room);
    return at;
}

static void pb_close_room(struct wd_buf *b, size_t at, size_t room)
{
    if (b->oom)
        return;
    size_t len = b->n - at - room;
    uint8_t t[10];
    size_t k = varint_to(t, len);
    if (k != room) {
        if (k > room && !wd_buf_reserve(b, k - room))
            return;
        memmove(b->p + at + k, b->p + at + room, len);
        b->n = b->n + k - room;
    }
    memcpy(b->p + at, t, k);
}

static size_t pb_open(struct wd_buf *b, uint32_t field) { return pb_open_room(b, field, 1); }
static void pb_close(struct wd_buf *b, size_t at) { pb_close_room(b, at, 1); }

/* AnyValue's content (every oneof member is written, even a default value). */
static void pb_anyvalue(struct wd_buf *b, const struct wd_attr *a)
{
    switch (a->type) {
    case WD_ATTR_STR:
        pb_string_always(b, 1, a->s.p, a->s.n);
        break;
    case WD_ATTR_BOOL:
        pb_tag(b, 2, PB_VARINT);
        pb_varint(b, a->i != 0);
        break;
    case WD_ATTR_INT:
        pb_tag(b, 3, PB_VARINT);
        pb_varint(b, (uint64_t)a->i);
        break;
    case WD_ATTR_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &a->d, 8);
        pb_tag(b, 4, PB_I64);
        pb_put_fixed64(b, bits);
        break;
    }
    case WD_ATTR_STR_ARRAY: {
        size_t arr = pb_open(b, 5);       /* ArrayValue */
        size_t val = pb_open(b, 1);       /* values[0]: AnyValue */
        pb_string_always(b, 1, a->s.p, a->s.n);
        pb_close(b, val);
        pb_close(b, arr);
        break;
    }
    default:                              /* no type: an empty AnyValue */
        break;
    }
}

/* One KeyValue, the slow way: through pb_open/pb_close, with invalid UTF-8 replaced. */
static void pb_attr_slow(struct wd_buf *b, uint32_t field, const struct wd_attr *a)
{
    size_t kv = pb_open(b, field);
    pb_cstring(b, 1, a->key);
    size_t v = pb_open(b, 2);
    pb_anyvalue(b, a);
    pb_close(b, v);
    pb_close(b, kv);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Copies n bytes to dst and tells whether they are all ASCII, in one pass over the source: strings are
 * written on the assumption that they need no UTF-8 repair (keys and almost every value are ASCII), and
 * the few that are not ASCII are written again by the checking path. Whole words, the last ones
 * overlapping the ones before, instead of a call to memcpy and a loop for the tail: attribute strings are
 * mostly 4 to 40 bytes. */
static inline bool copy_ascii(uint8_t *dst, const char *src, size_t n)
{
    uint64_t acc = 0, w0, w1;
    if (n > 16) {
        for (size_t i = 0; i + 16 < n; i += 16) {
            memcpy(&w0, src + i, 8);
            memcpy(&w1, src + i + 8, 8);
            memcpy(dst + i, &w0, 8);
            memcpy(dst + i + 8, &w1, 8);
            acc |= w0 | w1;
        }
        memcpy(&w0, src + n - 16, 8);
        memcpy(&w1, src + n - 8, 8);
        memcpy(dst + n - 16, &w0, 8);
        memcpy(dst + n - 8, &w1, 8);
        acc |= w0 | w1;
    } else if (n >= 8) {
        memcpy(&w0, src, 8);
        memcpy(&w1, src + n - 8, 8);
        memcpy(dst, &w0, 8);
        memcpy(dst + n - 8, &w1, 8);
        acc = w0 | w1;
    } else if (n >= 4) {
        uint32_t h, t;
        memcpy(&h, src, 4);
        memcpy(&t, src + n - 4, 4);
        memcpy(dst, &h, 4);
        memcpy(dst + n - 4, &t, 4);
        acc = h | t;
    } else if (n > 0) {
        dst[0] = (uint8_t)src[0], dst[n / 2] = (uint8_t)src[n / 2], dst[n - 1] = (uint8_t)src[n - 1];
        acc = (uint8_t)src[0] | (uint8_t)src[n / 2] | (uint8_t)src[n - 1];
    }
    return (acc & 0x8080808080808080u) == 0;
}

/* A string field whose length takes one to two varint bytes, as the checking path would write it when s
 * is ASCII. Returns the end, or NULL when s is not ASCII (the bytes written are then garbage). */
static uint8_t *put_ascii_field(uint8_t *p, uint8_t tag, const char *s, size_t n)
{
    *p++ = tag;
    p = put_varint(p, n);
    return copy_ascii(p, s, n) ? p + n : NULL;
}

/* The AnyValue field of a bool, int or double attribute (AnyValue fields 2, 3, 4). */
static uint8_t *put_scalar_value(uint8_t *p, const struct wd_attr *a)
{
    switch (a->type) {
    case WD_ATTR_BOOL:
        *p++ = 2 << 3 | PB_VARINT;
        *p++ = a->i != 0;
        return p;
    case WD_ATTR_INT:
        *p++ = 3 << 3 | PB_VARINT;
        return put_varint(p, (uint64_t)a->i);
    default: {
        uint64_t bits;
        memcpy(&bits, &a->d, 8);
        *p++ = 4 << 3 | PB_I64;
        for (int k = 0; k < 8; k++)
            *p++ = (uint8_t)(bits >> (8 * k));
        return p;
    }
    }
}

/* One KeyValue (field `field` < 16) whose key and string value are ASCII: sizes from the lengths alone,
 * one reserve, the bytes written once. Returns false, with nothing kept, when they are not ASCII. */
static bool pb_attr_sized(struct wd_buf *b, uint32_t field, const struct wd_attr *a, size_t kn, size_t sn)
{
    size_t any; /* AnyValue's content */
    switch (a->type) {
    case WD_ATTR_STR: any = 1 + varint_len(sn) + sn; break;
    case WD_ATTR_BOOL: any = 2; break;
    case WD_ATTR_INT: any = 1 + varint_len((uint64_t)a->i); break;
    case WD_ATTR_DOUBLE: any = 9; break;
    case WD_ATTR_STR_ARRAY: {
        size_t inner = 1 + varint_len(sn) + sn;          /* AnyValue{string_value} */
        size_t arr = 1 + varint_len(inner) + inner;      /* ArrayValue{values[0]} */
        any = 1 + varint_len(arr) + arr;
        break;
    }
    default: any = 0; break;
    }
    size_t kv = (kn > 0 ? 1 + varint_len(kn) + kn : 0) + 1 + varint_len(any) + any;
    size_t total = 1 + varint_len(kv) + kv;
    if (!wd_buf_reserve(b, total))
        return true; /* out of memory: b->oom says so, the slow path would fail the same way */
    uint8_t *p = (uint8_t *)b->p + b->n, *start = p;
    *p++ = (uint8_t)(field << 3 | PB_LEN);
    p = put_varint(p, kv);
    if (kn > 0 && (p = put_ascii_field(p, 1 << 3 | PB_LEN, a->key, kn)) == NULL)
        return false;
    *p++ = 2 << 3 | PB_LEN;
    p = put_varint(p, any);
    switch (a->type) {
    case WD_ATTR_STR:
        p = put_ascii_field(p, 1 << 3 | PB_LEN, a->s.p, sn);
        break;
    case WD_ATTR_BOOL:
    case WD_ATTR_INT:
    case WD_ATTR_DOUBLE:
        p = put_scalar_value(p, a);
        break;
    case WD_ATTR_STR_ARRAY: {
        size_t inner = 1 + varint_len(sn) + sn;
        *p++ = 5 << 3 | PB_LEN;
        p = put_varint(p, 1 + varint_len(inner) + inner);
        *p++ = 1 << 3 | PB_LEN;
        p = put_varint(p, inner);
        p = put_ascii_field(p, 1 << 3 | PB_LEN, a->s.p, sn);
        break;
    }
    default: break;
    }
    if (p == NULL)
        return false;
    assert((size_t)(p - start) == total);
    b->n += (size_t)(p - start);
    return true;
}

/* pb_attr_sized for the usual attribute, whose key and string value come to 100 bytes or less: then every
 * length in it is below 128, one varint byte, and each is written once its content is there, without
 * computing sizes first. */
static bool pb_attr_fast(struct wd_buf *b, uint32_t field, const struct wd_attr *a)
{
    size_t kn = attr_klen(a);
    size_t sn = a->type == WD_ATTR_STR || a->type == WD_ATTR_STR_ARRAY ? a->s.n : 0;
    if (kn + sn > 100)
        return pb_attr_sized(b, field, a, kn, sn);
    /* at most 2 + (2 + 100 + 2 + 11): an int64 value is up to 10 varint bytes */
    if (!wd_buf_reserve(b, 128))
        return true; /* out of memory: b->oom says so */
    uint8_t *p = (uint8_t *)b->p + b->n, *kv, *any;
    bool ascii = copy_ascii(p + 4, a->key, kn);
    *p++ = (uint8_t)(field << 3 | PB_LEN);
    kv = p++;
    if (kn > 0) {
        *p++ = 1 << 3 | PB_LEN;
        *p++ = (uint8_t)kn;
        p += kn; /* copied above */
    }
    *p++ = 2 << 3 | PB_LEN;
    any = p++;
    switch (a->type) {
    case WD_ATTR_STR:
        *p++ = 1 << 3 | PB_LEN;
        *p++ = (uint8_t)sn;
        ascii &= copy_ascii(p, a->s.p, sn);
        p += sn;
        break;
    case WD_ATTR_BOOL:
    case WD_ATTR_INT:
    case WD_ATTR_DOUBLE:
        p = put_scalar_value(p, a);
        break;
    case WD_ATTR_STR_ARRAY:                          /* ArrayValue{values[0]: AnyValue{string_value}} */
        *p++ = 5 << 3 | PB_LEN;
        *p++ = (uint8_t)(sn + 4);
        *p++ = 1 << 3 | PB_LEN;
        *p++ = (uint8_t)(sn + 2);
        *p++ = 1 << 3 | PB_LEN;
        *p++ = (uint8_t)sn;
        ascii &= copy_ascii(p, a->s.p, sn);
        p += sn;
        break;
    default: break;
    }
    if (!ascii)
        return false;
    *any = (uint8_t)(p - any - 1);
    *kv = (uint8_t)(p - kv - 1);
    b->n = (size_t)(p - (uint8_t *)b->p);
    return true;
}

/* Repeated KeyValue as field `field` (< 16): the same bytes either way (a unit test compares the two
 * paths, and an integration test compares with protoc). */
static void pb_attrs(struct wd_buf *b, uint32_t field, const struct wd_attr *attrs, int n)
{
    for (int i = 0; i < n; i++)
        if (!pb_attr_fast(b, field, &attrs[i]))
            pb_attr_slow(b, field, &attrs[i]);
}

/* Span fields 1 to 8 (ids, trace_state, parent, name, kind, times) when its two strings are ASCII, with
 * one reserve. Returns false, with nothing kept, when they are not. */
static bool pb_span_head_fast(struct wd_buf *b, const struct wd_span *s)
{
    size_t name_n = s->name != NULL ? strlen(s->name) : 0, ts_n = s->trace_state.n;
    /* 18 + 10 + 10 ids, 11 + 11 string framing, 11 kind, 9 + 9 times */
    if (!wd_buf_reserve(b, 89 + name_n + ts_n))
        return true;
    uint8_t *p = (uint8_t *)b->p + b->n;
    *p++ = 1 << 3 | PB_LEN, *p++ = 16;
    memcpy(p, s->trace_id, 16), p += 16;
    *p++ = 2 << 3 | PB_LEN, *p++ = 8;
    memcpy(p, s->span_id, 8), p += 8;
    if (ts_n > 0 && (p = put_ascii_field(p, 3 << 3 | PB_LEN, s->trace_state.p, ts_n)) == NULL)
        return false;
    if (s->has_parent) {
        *p++ = 4 << 3 | PB_LEN, *p++ = 8;
        memcpy(p, s->parent_span_id, 8), p += 8;
    }
    if (name_n > 0 && (p = put_ascii_field(p, 5 << 3 | PB_LEN, s->name, name_n)) == NULL)
        return false;
    if (s->kind != 0) {
        *p++ = 6 << 3 | PB_VARINT;
        p = put_varint(p, (uint32_t)s->kind);
    }
    for (int f = 7; f <= 8; f++) {
        uint64_t t = f == 7 ? s->start_ns : s->end_ns;
        if (t == 0)
            continue;
        *p++ = (uint8_t)(f << 3 | PB_I64);
        for (int k = 0; k < 8; k++)
            *p++ = (uint8_t)(t >> (8 * k));
    }
    b->n = (size_t)(p - (uint8_t *)b->p);
    return true;
}

static void pb_span_head_slow(struct wd_buf *b, const struct wd_span *s)
{
    pb_bytes(b, 1, s->trace_id, 16);
    pb_bytes(b, 2, s->span_id, 8);
    pb_string(b, 3, s->trace_state.p, s->trace_state.n);
    if (s->has_parent)
        pb_bytes(b, 4, s->parent_span_id, 8);
    pb_cstring(b, 5, s->name);
    pb_uint(b, 6, (uint32_t)s->kind);
    pb_fixed64(b, 7, s->start_ns);
    pb_fixed64(b, 8, s->end_ns);
}

void wd_otlp_span_pb(const struct wd_span *s, struct wd_buf *out)
{
    /* ScopeSpans.spans with room for a two-byte length: a span is 128 bytes to 16 KiB but for the smallest
     * (pb_close moves the content when the length needs another size) */
    size_t span = pb_open_room(out, 2, 2);
    if (!pb_span_head_fast(out, s))
        pb_span_head_slow(out, s);
    pb_attrs(out, 9, s->attrs, clamp(s->nattrs, WD_SPAN_MAX_ATTRS));
    pb_uint(out, 10, s->dropped_attrs);
    for (int i = 0, n = clamp(s->nevents, WD_SPAN_MAX_EVENTS); i < n; i++) {
        const struct wd_span_event *e = &s->events[i];
        size_t ev = pb_open(out, 11);
        pb_fixed64(out, 1, e->time_ns);
        pb_cstring(out, 2, e->name);
        pb_attrs(out, 3, e->attrs, clamp(e->nattrs, WD_SPAN_EVENT_MAX_ATTRS));
        pb_close(out, ev);
    }
    pb_uint(out, 12, s->dropped_events);
    if (s->status != WD_STATUS_UNSET || s->status_message.n > 0) {
        size_t st = pb_open(out, 15);
        pb_string(out, 2, s->status_message.p, s->status_message.n);
        pb_uint(out, 3, (uint32_t)s->status);
        pb_close(out, st);
    }
    pb_close_room(out, span, 2);
}

void wd_otlp_request_pb_head(const struct wd_otlp_resource *r, const char *scope_name, const char *scope_version,
                             size_t spans_len, struct wd_buf *out)
{
    /* ResourceSpans{resource, ScopeSpans{scope, spans...}}: everything but the spans is small, so it is
     * built first, and the lengths before it computed from it and spans_len. */
    struct wd_buf res = {0}, scope = {0};
    size_t at = pb_open(&res, 1);                                /* ResourceSpans.resource */
    pb_attrs(&res, 1, r ? r->attrs : NULL, r ? clamp(r->nattrs, 16) : 0);
    pb_close(&res, at);
    at = pb_open(&scope, 1);                                     /* ScopeSpans.scope */
    pb_cstring(&scope, 1, scope_name);
    pb_cstring(&scope, 2, scope_version);
    pb_close(&scope, at);
    if (res.oom || scope.oom) {
        out->oom = true;
    } else {
        uint8_t t[10];
        size_t scope_spans_len = scope.n + spans_len;
        size_t resource_spans_len = res.n + 1 + varint_to(t, scope_spans_len) + scope_spans_len;
        pb_tag(out, 1, PB_LEN);                                  /* ExportTraceServiceRequest.resource_spans */
        pb_varint(out, resource_spans_len);
        wd_buf_put(out, res.p, res.n);
        pb_tag(out, 2, PB_LEN);                                  /* ResourceSpans.scope_spans */
        pb_varint(out, scope_spans_len);
        wd_buf_put(out, scope.p, scope.n);
    }
    wd_buf_free(&res);
    wd_buf_free(&scope);
}

void wd_otlp_request_pb(const struct wd_otlp_resource *r, const char *scope_name, const char *scope_version,
                        const char *spans, size_t spans_len, struct wd_buf *out)
{
    wd_otlp_request_pb_head(r, scope_name, scope_version, spans_len, out);
    if (!out->oom)
        wd_buf_put(out, spans, spans_len);
}

/* ---- OTLP/JSON -------------------------------------------------------------------------------- */

/* Writes `"key":`, preceded by a comma unless it is the object's first member. */
static void j_key(struct wd_buf *b, bool *first, const char *key)
{
    if (!*first)
        wd_buf_putc(b, ',');
    *first = false;
    wd_buf_putc(b, '"');
    wd_buf_puts(b, key);
    wd_buf_put(b, "\":", 2);
}

static void j_hex(struct wd_buf *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char t[40];
    wd_buf_putc(b, '"');
    for (size_t i = 0; i < n && i < 16; i++) {
        t[2 * i] = hex[p[i] >> 4];
        t[2 * i + 1] = hex[p[i] & 15];
    }
    wd_buf_put(b, t, 2 * (n < 16 ? n : 16));
    wd_buf_putc(b, '"');
}

static void j_u64_str(struct wd_buf *b, uint64_t v)
{
    wd_buf_printf(b, "\"%llu\"", (unsigned long long)v);
}

/* The shortest of %.15g..%.17g that reads back as the same double (0.7, not 0.69999999999999996). */
static void j_double(struct wd_buf *b, double v)
{
    char t[32];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(t, sizeof(t), "%.*g", prec, v);
        if (strtod(t, NULL) == v)
            break;
    }
    wd_buf_put(b, t, (size_t)n);
}

static void j_string(struct wd_buf *b, const char *s, size_t n) { wd_json_put_string(b, s ? s : "", s ? n : 0); }

static void j_anyvalue(struct wd_buf *b, const struct wd_attr *a)
{
    switch (a->type) {
    case WD_ATTR_STR:
        wd_buf_puts(b, "{\"stringValue\":");
        j_string(b, a->s.p, a->s.n);
        wd_buf_putc(b, '}');
        break;
    case WD_ATTR_BOOL:
        wd_buf_puts(b, a->i ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
        break;
    case WD_ATTR_INT:
        wd_buf_puts(b, "{\"intValue\":\"");
        wd_buf_put_i64(b, a->i);
        wd_buf_puts(b, "\"}");
        break;
    case WD_ATTR_DOUBLE:
        wd_buf_puts(b, "{\"doubleValue\":");
        /* JSON has no NaN or infinities: the proto3 JSON mapping writes them as strings. */
        if (isnan(a->d))
            wd_buf_puts(b, "\"NaN\"");
        else if (isinf(a->d))
            wd_buf_puts(b, a->d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        else
            j_double(b, a->d);
        wd_buf_putc(b, '}');
        break;
    case WD_ATTR_STR_ARRAY:
        wd_buf_puts(b, "{\"arrayValue\":{\"values\":[{\"stringValue\":");
        j_string(b, a->s.p, a->s.n);
        wd_buf_puts(b, "}]}}");
        break;
    default:
        wd_buf_puts(b, "{}");
        break;
    }
}

static void j_attrs(struct wd_buf *b, bool *first, const struct wd_attr *attrs, int n)
{
    if (n <= 0)
        return;
    j_key(b, first, "attributes");
    wd_buf_putc(b, '[');
    for (int i = 0; i < n; i++) {
        if (i > 0)
            wd_buf_putc(b, ',');
        wd_buf_putc(b, '{');
        if (attrs[i].key != NULL && attrs[i].key[0] != '\0') {
            wd_buf_puts(b, "\"key\":");
            j_string(b, attrs[i].key, strlen(attrs[i].key));
            wd_buf_putc(b, ',');
        }
        wd_buf_puts(b, "\"value\":");
        j_anyvalue(b, &attrs[i]);
        wd_buf_putc(b, '}');
    }
    wd_buf_putc(b, ']');
}

static void j_uint(struct wd_buf *b, bool *first, const char *key, uint32_t v)
{
    if (v == 0)
        return;
    j_key(b, first, key);
    wd_buf_printf(b, "%u", (unsigned)v);
}

static void j_time(struct wd_buf *b, bool *first, const char *key, uint64_t v)
{
    if (v == 0)
        return;
    j_key(b, first, key);
    j_u64_str(b, v);
}

static void j_cstring(struct wd_buf *b, bool *first, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return;
    j_key(b, first, key);
    j_string(b, s, strlen(s));
}

void wd_otlp_span_json(const struct wd_span *s, struct wd_buf *out)
{
    bool first = true;
    wd_buf_putc(out, '{');
    j_key(out, &first, "traceId");
    j_hex(out, s->trace_id, 16);
    j_key(out, &first, "spanId");
    j_hex(out, s->span_id, 8);
    if (s->trace_state.n > 0) {
        j_key(out, &first, "traceState");
        j_string(out, s->trace_state.p, s->trace_state.n);
    }
    if (s->has_parent) {
        j_key(out, &first, "parentSpanId");
        j_hex(out, s->parent_span_id, 8);
    }
    j_cstring(out, &first, "name", s->name);
    j_uint(out, &first, "kind", (uint32_t)s->kind);
    j_time(out, &first, "startTimeUnixNano", s->start_ns);
    j_time(out, &first, "endTimeUnixNano", s->end_ns);
    j_attrs(out, &first, s->attrs, clamp(s->nattrs, WD_SPAN_MAX_ATTRS));
    j_uint(out, &first, "droppedAttributesCount", s->dropped_attrs);
    int nev = clamp(s->nevents, WD_SPAN_MAX_EVENTS);
    if (nev > 0) {
        j_key(out, &first, "events");
        wd_buf_putc(out, '[');
        for (int i = 0; i < nev; i++) {
            const struct wd_span_event *e = &s->events[i];
            bool efirst = true;
            wd_buf_puts(out, i > 0 ? ",{" : "{");
            j_time(out, &efirst, "timeUnixNano", e->time_ns);
            j_cstring(out, &efirst, "name", e->name);
            j_attrs(out, &efirst, e->attrs, clamp(e->nattrs, WD_SPAN_EVENT_MAX_ATTRS));
            wd_buf_putc(out, '}');
        }
        wd_buf_putc(out, ']');
    }
    j_uint(out, &first, "droppedEventsCount", s->dropped_events);
    if (s->status != WD_STATUS_UNSET || s->status_message.n > 0) {
        bool sfirst = true;
        j_key(out, &first, "status");
        wd_buf_putc(out, '{');
        if (s->status_message.n > 0) {
            j_key(out, &sfirst, "message");
            j_string(out, s->status_message.p, s->status_message.n);
        }
        j_uint(out, &sfirst, "code", (uint32_t)s->status);
        wd_buf_putc(out, '}');
    }
    wd_buf_putc(out, '}');
}

void wd_otlp_request_json_head(const struct wd_otlp_resource *r, const char *scope_name, const char *scope_version,
                               struct wd_buf *out)
{
    bool rfirst = true, sfirst = true;
    wd_buf_puts(out, "{\"resourceSpans\":[{\"resource\":{");
    j_attrs(out, &rfirst, r ? r->attrs : NULL, r ? clamp(r->nattrs, 16) : 0);
    wd_buf_puts(out, "},\"scopeSpans\":[{\"scope\":{");
    j_cstring(out, &sfirst, "name", scope_name);
    j_cstring(out, &sfirst, "version", scope_version);
    wd_buf_puts(out, "},\"spans\":[");
}

void wd_otlp_request_json(const struct wd_otlp_resource *r, const char *scope_name, const char *scope_version,
                          const char *spans_json, size_t spans_len, struct wd_buf *out)
{
    wd_otlp_request_json_head(r, scope_name, scope_version, out);
    wd_buf_put(out, spans_json, spans_len);
    wd_buf_puts(out, WD_OTLP_REQUEST_JSON_TAIL);
}

/* ---- W3C traceparent -------------------------------------------------------------------------- */

/* Lowercase hex only: W3C Trace Context forbids uppercase in traceparent. */
static int lowhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* n bytes from 2n hex characters; -1 on a non-hex character or all zeros (the invalid id). */
static int hex_id(const char *p, uint8_t *out, size_t n)
{
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = lowhex(p[2 * i]), lo = lowhex(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
        any |= out[i];
    }
    return any ? 0 : -1;
}

int wd_traceparent_parse(const char *v, size_t n, uint8_t trace_id[16], uint8_t parent_id[8], uint8_t *flags)
{
    /* version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters. */
    if (v == NULL || n < 55)
        return -1;
    int vh = lowhex(v[0]), vl = lowhex(v[1]);
    if (vh < 0 || vl < 0)
        return -1;
    unsigned version = (unsigned)(vh << 4 | vl);
    if (version == 0xff)
        return -1;
    /* Version 00 is exactly 55 characters. A later version may append fields: it is read as 00 when what
     * follows the flags is the end or a '-', and only its sampled flag is taken. */
    if (version == 0 ? n != 55 : (n > 55 && v[55] != '-'))
        return -1;
    if (v[2] != '-' || v[35] != '-' || v[52] != '-')
        return -1;
    uint8_t tid[16], pid[8], fl;
    if (hex_id(v + 3, tid, 16) < 0 || hex_id(v + 36, pid, 8) < 0)
        return -1;
    int fh = lowhex(v[53]), fo = lowhex(v[54]);
    if (fh < 0 || fo < 0)
        return -1;
    fl = (uint8_t)(fh << 4 | fo);
    if (version != 0)
        fl &= 1;
    memcpy(trace_id, tid, 16);
    memcpy(parent_id, pid, 8);
    *flags = fl;
    return 0;
}

void wd_traceparent_format(const struct wd_span *s, char out[56])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    *o++ = '0';
    *o++ = '0';
    *o++ = '-';
    for (int i = 0; i < 16; i++) {
        *o++ = hex[s->trace_id[i] >> 4];
        *o++ = hex[s->trace_id[i] & 15];
    }
    *o++ = '-';
    for (int i = 0; i < 8; i++) {
        *o++ = hex[s->span_id[i] >> 4];
        *o++ = hex[s->span_id[i] & 15];
    }
    *o++ = '-';
    *o++ = hex[s->flags >> 4];
    *o++ = hex[s->flags & 15];
    *o = '\0';
}
