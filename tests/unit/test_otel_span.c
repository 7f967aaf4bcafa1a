/* Unit tests for otel/span.c: W3C traceparent parsing and formatting (versions, case, lengths, zero ids),
 * attribute and event capacity with their dropped counts, and the protobuf and JSON encodings of tiny
 * spans compared with bytes worked out by hand from the protobuf wire format. The full request is held
 * against protoc and the official .proto files by tests/integration/test_otlp_encoding.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otel/span.h"

#define TP_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_PARENT "00f067aa0ba902b7"

static int parse(const char *v, uint8_t tid[16], uint8_t pid[8], uint8_t *flags)
{
    return wd_traceparent_parse(v, strlen(v), tid, pid, flags);
}

static void test_traceparent_valid(void **state)
{
    static const uint8_t want_t[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                       0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static const uint8_t want_p[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    uint8_t t[16], p[8], f = 0xee;
    assert_int_equal(parse("00-" TP_TRACE "-" TP_PARENT "-01", t, p, &f), 0);
    assert_memory_equal(t, want_t, 16);
    assert_memory_equal(p, want_p, 8);
    assert_int_equal(f, 1);
    assert_int_equal(parse("00-" TP_TRACE "-" TP_PARENT "-00", t, p, &f), 0);
    assert_int_equal(f, 0);
    /* version 00 keeps every flag bit (level 2 defines bit 1, random trace id) */
    assert_int_equal(parse("00-" TP_TRACE "-" TP_PARENT "-03", t, p, &f), 0);
    assert_int_equal(f, 3);
    /* ids with a single non-zero byte are valid */
    assert_int_equal(parse("00-00000000000000000000000000000001-0000000000000001-01", t, p, &f), 0);
    assert_int_equal(t[15], 1);
    assert_int_equal(p[7], 1);
    /* the length is given, the string need not end there */
    static const char longer[] = "00-" TP_TRACE "-" TP_PARENT "-01,garbage";
    assert_int_equal(wd_traceparent_parse(longer, 55, t, p, &f), 0);
}

static void test_traceparent_future_version(void **state)
{
    uint8_t t[16], p[8], f;
    /* a later version: read as 00 when the flags are followed by the end or '-'; only the sampled bit */
    assert_int_equal(parse("01-" TP_TRACE "-" TP_PARENT "-01", t, p, &f), 0);
    assert_int_equal(f, 1);
    assert_int_equal(parse("cc-" TP_TRACE "-" TP_PARENT "-03-what-the-future-holds", t, p, &f), 0);
    assert_int_equal(f, 1);
    assert_int_equal(parse("fe-" TP_TRACE "-" TP_PARENT "-02-", t, p, &f), 0);
    assert_int_equal(f, 0);
    assert_int_equal(parse("cc-" TP_TRACE "-" TP_PARENT "-01x", t, p, &f), -1);
    assert_int_equal(parse("cc-" TP_TRACE "-" TP_PARENT "-01.", t, p, &f), -1);
    assert_int_equal(parse("cc-" TP_TRACE "-" TP_PARENT "-0", t, p, &f), -1);
    /* the parts it reads are still checked */
    assert_int_equal(parse("cc-" TP_TRACE "-" TP_PARENT "-0g-x", t, p, &f), -1);
    assert_int_equal(parse("cc-00000000000000000000000000000000-" TP_PARENT "-01", t, p, &f), -1);
}

static void test_traceparent_invalid(void **state)
{
    static const char *bad[] = {
        "",
        "00",
        /* version ff is forbidden; versions are lowercase hex */
        "ff-" TP_TRACE "-" TP_PARENT "-01",
        "0A-" TP_TRACE "-" TP_PARENT "-01",
        "0x-" TP_TRACE "-" TP_PARENT "-01",
        /* uppercase hex anywhere */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" TP_PARENT "-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473A-" TP_PARENT "-01",
        "00-" TP_TRACE "-00F067AA0BA902B7-01",
        "00-" TP_TRACE "-" TP_PARENT "-0A",
        /* all-zero ids */
        "00-00000000000000000000000000000000-" TP_PARENT "-01",
        "00-" TP_TRACE "-0000000000000000-01",
        /* wrong lengths: version 00 is exactly 55 characters */
        "00-" TP_TRACE "-" TP_PARENT "-01-",
        "00-" TP_TRACE "-" TP_PARENT "-011",
        "00-" TP_TRACE "-" TP_PARENT "-1",
        "00-4bf92f3577b34da6a3ce929d0e0e473-" TP_PARENT "-01",
        "00-" TP_TRACE "a-" TP_PARENT "-01",
        "00-" TP_TRACE "-00f067aa0ba902b-01",
        "00-" TP_TRACE "-00f067aa0ba902b77-01",
        "000-" TP_TRACE "-" TP_PARENT "-01",
        /* delimiters */
        "00_" TP_TRACE "-" TP_PARENT "-01",
        "00-" TP_TRACE "_" TP_PARENT "-01",
        "00-" TP_TRACE "-" TP_PARENT "_01",
        /* no spaces or other characters in the hex */
        "00-" TP_TRACE "-" TP_PARENT "- 1",
        " 00-" TP_TRACE "-" TP_PARENT "-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-" TP_PARENT "-01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t t[16] = {9}, p[8] = {9}, f = 9;
        if (parse(bad[i], t, p, &f) != -1)
            fail_msg("accepted #%zu \"%s\"", i, bad[i]);
        assert_int_equal(t[0], 9); /* nothing written on failure */
        assert_int_equal(p[0], 9);
        assert_int_equal(f, 9);
    }
    /* an embedded NUL inside the given length */
    static const char nul[] = "00-" TP_TRACE "-" TP_PARENT "-0\0";
    uint8_t t[16], p[8], f;
    assert_int_equal(wd_traceparent_parse(nul, 55, t, p, &f), -1);
    assert_int_equal(wd_traceparent_parse(NULL, 0, t, p, &f), -1);
}

static void test_traceparent_format(void **state)
{
    struct wd_span s = {0};
    char out[56];
    memset(out, 'x', sizeof(out));
    for (int i = 0; i < 16; i++)
        s.trace_id[i] = (uint8_t)(0xf0 + i);
    for (int i = 0; i < 8; i++)
        s.span_id[i] = (uint8_t)(0x0a * i);
    s.flags = 1;
    wd_traceparent_format(&s, out);
    assert_string_equal(out, "00-f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff-000a141e28323c46-01");
    assert_int_equal(strlen(out), 55);
    /* round trip */
    uint8_t t[16], p[8], f;
    assert_int_equal(parse(out, t, p, &f), 0);
    assert_memory_equal(t, s.trace_id, 16);
    assert_memory_equal(p, s.span_id, 8);
    assert_int_equal(f, 1);
    s.flags = 0;
    wd_traceparent_format(&s, out);
    assert_string_equal(out + 52, "-00");
}

static void test_attr_capacity(void **state)
{
    struct wd_span *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    char keys[WD_SPAN_MAX_ATTRS + 5][16];
    for (int i = 0; i < WD_SPAN_MAX_ATTRS + 5; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        wd_span_attr_int(s, keys[i], i);
    }
    assert_int_equal(s->nattrs, WD_SPAN_MAX_ATTRS);
    assert_int_equal(s->dropped_attrs, 5);
    assert_string_equal(s->attrs[WD_SPAN_MAX_ATTRS - 1].key, "k23");
    /* an existing key is replaced even when full, by key text, not pointer */
    char again[8] = "k3";
    wd_span_attr_cstr(s, again, "three");
    assert_int_equal(s->nattrs, WD_SPAN_MAX_ATTRS);
    assert_int_equal(s->dropped_attrs, 5);
    assert_int_equal(s->attrs[3].type, WD_ATTR_STR);
    assert_int_equal(s->attrs[3].s.n, 5);
    assert_memory_equal(s->attrs[3].s.p, "three", 5);
    /* every setter counts a drop when full */
    wd_span_attr_str(s, "x1", "a", 1);
    wd_span_attr_cstr(s, "x2", "a");
    wd_span_attr_double(s, "x3", 1.0);
    wd_span_attr_bool(s, "x4", true);
    wd_span_attr_str_array1(s, "x5", "a", 1);
    assert_int_equal(s->dropped_attrs, 10);
    free(s);

    struct wd_span t = {0};
    wd_span_attr_cstr(&t, "null", NULL);
    assert_int_equal(t.attrs[0].type, WD_ATTR_STR);
    assert_int_equal(t.attrs[0].s.n, 0);
    assert_non_null(t.attrs[0].s.p);
    wd_span_attr_bool(&t, "b", true);
    wd_span_attr_str_array1(&t, "arr", "v", 1);
    wd_span_attr_double(&t, "d", 2.5);
    assert_int_equal(t.nattrs, 4);
    assert_int_equal(t.attrs[1].i, 1);
    assert_int_equal(t.attrs[2].type, WD_ATTR_STR_ARRAY);
    assert_true(t.attrs[3].d == 2.5);
    /* replacing changes the type too */
    wd_span_attr_int(&t, "b", 7);
    assert_int_equal(t.nattrs, 4);
    assert_int_equal(t.attrs[1].type, WD_ATTR_INT);
    assert_int_equal(t.attrs[1].i, 7);
}

static void test_events(void **state)
{
    struct wd_span s = {0};
    for (int i = 0; i < WD_SPAN_MAX_EVENTS; i++) {
        struct wd_span_event *e = wd_span_add_event(&s, "e", 100 + (uint64_t)i);
        assert_non_null(e);
        assert_ptr_equal(e, &s.events[i]);
        assert_int_equal(e->time_ns, 100 + (uint64_t)i);
        assert_int_equal(e->nattrs, 0);
    }
    assert_null(wd_span_add_event(&s, "over", 1));
    assert_null(wd_span_add_event(&s, "over", 2));
    assert_int_equal(s.nevents, WD_SPAN_MAX_EVENTS);
    assert_int_equal(s.dropped_events, 2);
}

static void test_now(void **state)
{
    uint64_t a = wd_now_ns();
    time_t t = time(NULL);
    uint64_t b = wd_now_ns();
    assert_true(b >= a);
    assert_true(a / 1000000000u + 2 >= (uint64_t)t && (uint64_t)t + 2 >= a / 1000000000u);
}

/* trace id 01..10, span id 11..18, name "n", SERVER, start 1, end 300 */
static void tiny(struct wd_span *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 16; i++)
        s->trace_id[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++)
        s->span_id[i] = (uint8_t)(0x11 + i);
    s->name = "n";
    s->kind = WD_SPAN_SERVER;
    s->start_ns = 1;
    s->end_ns = 300;
}

#define IDS                                                                                                 \
    0x0a, 0x10, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, \
        0x10,                                           /* 1 trace_id: LEN 16 */                           \
        0x12, 0x08, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18 /* 2 span_id: LEN 8 */

static void assert_bytes(const struct wd_buf *b, const uint8_t *want, size_t n)
{
    assert_false(b->oom);
    if (b->n != n || memcmp(b->p, want, n) != 0) {
        for (size_t i = 0; i < b->n; i++)
            print_message("%02x%s", (uint8_t)b->p[i], i + 1 == b->n ? "\n" : " ");
        fail_msg("got %zu bytes, want %zu", b->n, n);
    }
}

static void test_pb_tiny(void **state)
{
    struct wd_span s;
    tiny(&s);
    wd_span_attr_int(&s, "i", 150);
    wd_span_attr_bool(&s, "b", true);
    s.status = WD_STATUS_ERROR;
    static const uint8_t want[] = {
        0x12, 0x4a,                                     /* ScopeSpans.spans (2, LEN), 74 bytes */
        IDS,
        0x2a, 0x01, 'n',                                /* 5 name */
        0x30, 0x02,                                     /* 6 kind: varint 2 */
        0x39, 0x01, 0, 0, 0, 0, 0, 0, 0,                /* 7 start: fixed64 1 */
        0x41, 0x2c, 0x01, 0, 0, 0, 0, 0, 0,             /* 8 end: fixed64 300 = 0x12c, little endian */
        0x4a, 0x08, 0x0a, 0x01, 'i',                    /* 9 KeyValue{key "i", */
        0x12, 0x03, 0x18, 0x96, 0x01,                   /*   value AnyValue{int_value (3) varint 150}} */
        0x4a, 0x07, 0x0a, 0x01, 'b', 0x12, 0x02, 0x10, 0x01, /* 9 KeyValue{"b", {bool_value (2) 1}} */
        0x7a, 0x02, 0x18, 0x02,                         /* 15 Status{code (3) 2} */
    };
    struct wd_buf b = {0};
    wd_otlp_span_pb(&s, &b);
    assert_bytes(&b, want, sizeof(want));
    wd_buf_free(&b);
}

static void test_pb_values(void **state)
{
    struct wd_span s;
    tiny(&s);
    s.name = NULL;
    s.kind = 0;
    s.start_ns = s.end_ns = 0;
    wd_span_attr_int(&s, "m", -1);                      /* int64 -1: ten-byte varint */
    wd_span_attr_double(&s, "d", 1.0);                  /* 0x3ff0000000000000 */
    wd_span_attr_str_array1(&s, "a", "x", 1);
    wd_span_attr_cstr(&s, "u", "\xff");                 /* invalid UTF-8 -> U+FFFD */
    wd_span_attr_bool(&s, "f", false);                  /* a oneof member is written even when false */
    s.dropped_attrs = 300;
    struct wd_span_event *e = wd_span_add_event(&s, "ev", 0);
    e->attrs[0] = (struct wd_attr){.key = "k", .type = WD_ATTR_STR, .s = WD_STR("")};
    e->nattrs = 1;
    s.dropped_events = 1;
    s.has_parent = true;
    memset(s.parent_span_id, 0xff, 8);
    s.trace_state = WD_STR("a=b");
    s.status_message = WD_STR("m");                     /* a message with status UNSET: code omitted */
    static const uint8_t want[] = {
        0x12, 0x89, 0x01,                               /* 137 bytes: a two-byte length */
        IDS,
        0x1a, 0x03, 'a', '=', 'b',                      /* 3 trace_state */
        0x22, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* 4 parent_span_id */
        0x4a, 0x10, 0x0a, 0x01, 'm', 0x12, 0x0b, 0x18,  /* int_value -1 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        0x4a, 0x0e, 0x0a, 0x01, 'd', 0x12, 0x09, 0x21,  /* double_value 1.0, fixed64 */
        0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
        0x4a, 0x0c, 0x0a, 0x01, 'a', 0x12, 0x07,        /* array_value (5) ArrayValue{values (1) */
        0x2a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 'x',        /*   AnyValue{string_value "x"}} */
        0x4a, 0x0a, 0x0a, 0x01, 'u', 0x12, 0x05, 0x0a, 0x03, 0xef, 0xbf, 0xbd,
        0x4a, 0x07, 0x0a, 0x01, 'f', 0x12, 0x02, 0x10, 0x00,
        0x50, 0xac, 0x02,                               /* 10 dropped_attributes_count 300 */
        0x5a, 0x0d, 0x12, 0x02, 'e', 'v',               /* 11 Event{name "ev", */
        0x1a, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 0x0a, 0x00, /* attributes {"k", {string_value ""}}} */
        0x60, 0x01,                                     /* 12 dropped_events_count */
        0x7a, 0x03, 0x12, 0x01, 'm',                    /* 15 Status{message "m"} */
    };
    /* a guard on the hand count: the declared length is the rest of the array */
    assert_int_equal(sizeof(want) - 3, 137);
    struct wd_buf b = {0};
    wd_otlp_span_pb(&s, &b);
    assert_bytes(&b, want, sizeof(want));
    wd_buf_free(&b);
}

static void test_pb_long_lengths(void **state)
{
    /* lengths of 128 and more take two varint bytes, at every nesting level */
    char name[200], val[130];
    memset(name, 'N', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    memset(val, 'v', sizeof(val));
    struct wd_span s;
    tiny(&s);
    s.name = name;
    s.kind = 0;
    s.start_ns = s.end_ns = 0;
    wd_span_attr_str_array1(&s, "k", val, sizeof(val));
    struct wd_buf b = {0};
    wd_otlp_span_pb(&s, &b);
    /* content lengths, inside out: AnyValue{string_value} 3 + 130, ArrayValue{values} 3 + that,
     * AnyValue{array_value} 3 + that, KeyValue{key "k", value} 3 + 3 + that; the span: ids 28, name
     * 3 + 199, attributes 3 + kv */
    size_t str = 3 + 130, arr = 3 + str, any = 3 + arr, kv = 3 + 3 + any, span = 28 + 3 + 199 + 3 + kv;
    assert_int_equal(b.n, 1 + 2 + span);
    assert_int_equal((uint8_t)b.p[0], 0x12);
    assert_int_equal((uint8_t)b.p[1], (span & 0x7f) | 0x80);
    assert_int_equal((uint8_t)b.p[2], span >> 7);
    assert_int_equal((uint8_t)b.p[3 + 28], 0x2a); /* name */
    assert_int_equal((uint8_t)b.p[3 + 29], 0xc7);
    assert_int_equal((uint8_t)b.p[3 + 30], 1);
    const uint8_t *k = (const uint8_t *)b.p + 3 + 28 + 3 + 199;
    static const uint8_t head[] = {0x4a, 0, 1, 0x0a, 0x01, 'k', 0x12, 0, 1, 0x2a, 0x88, 0x01, 0x0a, 0x85, 0x01,
                                   0x0a, 0x82, 0x01, 'v'};
    uint8_t want[sizeof(head)];
    memcpy(want, head, sizeof(head));
    want[1] = (uint8_t)((kv & 0x7f) | 0x80), want[2] = (uint8_t)(kv >> 7);
    want[7] = (uint8_t)((any & 0x7f) | 0x80), want[8] = (uint8_t)(any >> 7);
    assert_memory_equal(k, want, sizeof(want));
    wd_buf_free(&b);
}

static void test_pb_request(void **state)
{
    struct wd_otlp_resource r = {0};
    struct wd_buf b = {0};
    wd_otlp_request_pb(&r, "s", "v", "\x12\x00", 2, &b);
    static const uint8_t want[] = {
        0x0a, 0x0e,                                     /* resource_spans */
        0x0a, 0x00,                                     /*   resource {} */
        0x12, 0x0a,                                     /*   scope_spans */
        0x0a, 0x06, 0x0a, 0x01, 's', 0x12, 0x01, 'v',   /*     scope {name, version} */
        0x12, 0x00,                                     /*     the spans, as given */
    };
    assert_bytes(&b, want, sizeof(want));
    wd_buf_reset(&b);
    r.attrs[0] = (struct wd_attr){.key = "service.name", .type = WD_ATTR_STR, .s = WD_STR("w")};
    r.nattrs = 1;
    wd_otlp_request_pb(&r, "", NULL, NULL, 0, &b);
    static const uint8_t want2[] = {
        0x0a, 0x1b, 0x0a, 0x15, 0x0a, 0x13, 0x0a, 0x0c, 's', 'e', 'r', 'v', 'i', 'c', 'e', '.', 'n', 'a', 'm', 'e',
        0x12, 0x03, 0x0a, 0x01, 'w', 0x12, 0x02, 0x0a, 0x00,
    };
    assert_bytes(&b, want2, sizeof(want2));
    wd_buf_free(&b);
}

static void test_json_tiny(void **state)
{
    struct wd_span s;
    tiny(&s);
    s.end_ns = UINT64_MAX;
    s.has_parent = true;
    memset(s.parent_span_id, 0xab, 8);
    wd_span_attr_int(&s, "i", INT64_MIN);
    wd_span_attr_double(&s, "d", 0.1);
    wd_span_attr_cstr(&s, "s", "q\"\n\xff");
    wd_span_attr_str_array1(&s, "a", "x", 1);
    wd_span_attr_bool(&s, "b", false);
    s.dropped_attrs = 2;
    wd_span_add_event(&s, "ev", 5);
    wd_span_add_event(&s, "", 0);
    s.status = WD_STATUS_ERROR;
    s.status_message = WD_STR("bad");
    struct wd_buf b = {0};
    wd_otlp_span_json(&s, &b);
    wd_buf_putc(&b, '\0');
    assert_string_equal(b.p,
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"1112131415161718\","
        "\"parentSpanId\":\"abababababababab\",\"name\":\"n\",\"kind\":2,\"startTimeUnixNano\":\"1\","
        "\"endTimeUnixNano\":\"18446744073709551615\",\"attributes\":["
        "{\"key\":\"i\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
        "{\"key\":\"d\",\"value\":{\"doubleValue\":0.1}},"
        "{\"key\":\"s\",\"value\":{\"stringValue\":\"q\\\"\\n\\ufffd\"}},"
        "{\"key\":\"a\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"x\"}]}}},"
        "{\"key\":\"b\",\"value\":{\"boolValue\":false}}],"
        "\"droppedAttributesCount\":2,\"events\":[{\"timeUnixNano\":\"5\",\"name\":\"ev\"},{}],"
        "\"status\":{\"message\":\"bad\",\"code\":2}}");
    wd_buf_reset(&b);

    struct wd_span z = {0};
    wd_otlp_span_json(&z, &b);
    wd_buf_putc(&b, '\0');
    assert_string_equal(b.p, "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"0000000000000000\"}");
    wd_buf_reset(&b);

    struct wd_otlp_resource r = {0};
    wd_otlp_request_json(&r, "warden", "", "{},{}", 5, &b);
    wd_buf_putc(&b, '\0');
    assert_string_equal(b.p, "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"scope\":{\"name\":\"warden\"},"
                             "\"spans\":[{},{}]}]}]}");
    wd_buf_reset(&b);
    r.attrs[0] = (struct wd_attr){.key = "service.name", .type = WD_ATTR_STR, .s = WD_STR("w")};
    r.nattrs = 1;
    wd_otlp_request_json(&r, "s", "1", "", 0, &b);
    wd_buf_putc(&b, '\0');
    assert_string_equal(b.p, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                             "\"value\":{\"stringValue\":\"w\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"s\","
                             "\"version\":\"1\"},\"spans\":[]}]}]}");
    wd_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_valid),   cmocka_unit_test(test_traceparent_future_version),
        cmocka_unit_test(test_traceparent_invalid), cmocka_unit_test(test_traceparent_format),
        cmocka_unit_test(test_attr_capacity),       cmocka_unit_test(test_events),
        cmocka_unit_test(test_now),                 cmocka_unit_test(test_pb_tiny),
        cmocka_unit_test(test_pb_values),           cmocka_unit_test(test_pb_long_lengths),
        cmocka_unit_test(test_pb_request),          cmocka_unit_test(test_json_tiny),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
