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

/* ---- a reference encoder, for the differential test below ------------------------------------- */

/* Written the plain way: every nested message built in a buffer of its own and copied behind its tag
 * and length, UTF-8 repaired character by character. wd_otlp_span_pb writes ASCII strings on a fast
 * path and the rest on a checking path; both must give these bytes. */
static void r_varint(struct wd_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        wd_buf_putc(b, (char)(v | 0x80));
        v >>= 7;
    }
    wd_buf_putc(b, (char)v);
}

static void r_tag(struct wd_buf *b, int field, int wire) { r_varint(b, (uint64_t)field << 3 | (unsigned)wire); }

static void r_msg(struct wd_buf *b, int field, struct wd_buf *m)
{
    r_tag(b, field, 2);
    r_varint(b, m->n);
    wd_buf_put(b, m->p, m->n);
    wd_buf_free(m);
}

/* RFC 3629 by the table of well-formed byte sequences (Unicode 15, table 3-7). */
static size_t r_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t need = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (need == 0 || n < need + 1)
        return 0;
    unsigned lo = 0x80, hi = 0xbf;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    return need + 1;
}

static void r_clean(struct wd_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = r_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            wd_buf_put(b, "\xef\xbf\xbd", 3);
            i++;
        } else {
            wd_buf_put(b, s + i, k);
            i += k;
        }
    }
}

static void r_string(struct wd_buf *b, int field, const char *s, size_t n, bool always)
{
    if (n == 0 && !always)
        return;
    struct wd_buf m = {0};
    r_clean(&m, s, n);
    r_msg(b, field, &m);
}

static void r_fixed64(struct wd_buf *b, int field, uint64_t v)
{
    if (v == 0)
        return;
    r_tag(b, field, 1);
    for (int i = 0; i < 8; i++)
        wd_buf_putc(b, (char)(v >> (8 * i)));
}

static void r_attrs(struct wd_buf *b, int field, const struct wd_attr *attrs, int n)
{
    for (int i = 0; i < n; i++) {
        const struct wd_attr *a = &attrs[i];
        struct wd_buf kv = {0}, any = {0};
        if (a->key != NULL)
            r_string(&kv, 1, a->key, strlen(a->key), false);
        switch (a->type) {
        case WD_ATTR_STR: r_string(&any, 1, a->s.p, a->s.n, true); break;
        case WD_ATTR_BOOL: r_tag(&any, 2, 0), r_varint(&any, a->i != 0); break;
        case WD_ATTR_INT: r_tag(&any, 3, 0), r_varint(&any, (uint64_t)a->i); break;
        case WD_ATTR_DOUBLE: {
            uint64_t bits;
            memcpy(&bits, &a->d, 8);
            r_tag(&any, 4, 1);
            for (int k = 0; k < 8; k++)
                wd_buf_putc(&any, (char)(bits >> (8 * k)));
            break;
        }
        case WD_ATTR_STR_ARRAY: {
            struct wd_buf arr = {0}, v = {0};
            r_string(&v, 1, a->s.p, a->s.n, true);
            r_msg(&arr, 1, &v);
            r_msg(&any, 5, &arr);
            break;
        }
        }
        r_msg(&kv, 2, &any);
        r_msg(b, field, &kv);
    }
}

static void r_span(const struct wd_span *s, struct wd_buf *out)
{
    struct wd_buf m = {0};
    r_tag(&m, 1, 2), r_varint(&m, 16), wd_buf_put(&m, s->trace_id, 16);
    r_tag(&m, 2, 2), r_varint(&m, 8), wd_buf_put(&m, s->span_id, 8);
    r_string(&m, 3, s->trace_state.p, s->trace_state.n, false);
    if (s->has_parent)
        r_tag(&m, 4, 2), r_varint(&m, 8), wd_buf_put(&m, s->parent_span_id, 8);
    if (s->name != NULL)
        r_string(&m, 5, s->name, strlen(s->name), false);
    if (s->kind != 0)
        r_tag(&m, 6, 0), r_varint(&m, (uint32_t)s->kind);
    r_fixed64(&m, 7, s->start_ns);
    r_fixed64(&m, 8, s->end_ns);
    r_attrs(&m, 9, s->attrs, s->nattrs);
    if (s->dropped_attrs != 0)
        r_tag(&m, 10, 0), r_varint(&m, s->dropped_attrs);
    for (int i = 0; i < s->nevents; i++) {
        struct wd_buf e = {0};
        r_fixed64(&e, 1, s->events[i].time_ns);
        if (s->events[i].name != NULL)
            r_string(&e, 2, s->events[i].name, strlen(s->events[i].name), false);
        r_attrs(&e, 3, s->events[i].attrs, s->events[i].nattrs);
        r_msg(&m, 11, &e);
    }
    if (s->dropped_events != 0)
        r_tag(&m, 12, 0), r_varint(&m, s->dropped_events);
    if (s->status != WD_STATUS_UNSET || s->status_message.n > 0) {
        struct wd_buf st = {0};
        r_string(&st, 2, s->status_message.p, s->status_message.n, false);
        if (s->status != 0)
            r_tag(&st, 3, 0), r_varint(&st, (uint32_t)s->status);
        r_msg(&m, 15, &st);
    }
    r_msg(out, 2, &m);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* Strings around the encoder's edges: empty, one to three bytes, the 4- and 8-byte copy sizes and one
 * past them, lengths whose varint takes one or two bytes, valid UTF-8 of every length, and each kind of
 * invalid sequence (stray continuation, truncated, overlong, surrogate, past U+10FFFF, 0xff), alone and
 * between ASCII on either side. */
static const char *const pool[] = {
    "", "a", "ab", "abc", "POST", "12345", "1234567", "12345678", "123456789", "gen_ai.request.model",
    "/anthropic/v1/messages", "h\xc3\xa9llo", "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80",
    "1234567\xc3\xa9", "\xff", "a\xc3", "\x80" "abcdefgh", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
    "abcdefghijklmn\xe2\x82", "abcdefgh\xffijklmnop", "\xe0\x80\x80", "\xf0\x80\x80\x80",
};
static char big[20000];

static struct wd_str pick(void)
{
    uint64_t r = rnd();
    if (r % 10 == 0) { /* long: one- and two-byte lengths around 128, and spans past 16 KiB */
        static const size_t lens[] = {100, 120, 125, 126, 127, 128, 129, 200, 5000, 16400};
        size_t n = lens[(r >> 8) % 10];
        return (struct wd_str){big + (r >> 16) % 64, n};
    }
    const char *p = pool[(r >> 8) % (sizeof(pool) / sizeof(pool[0]))];
    return (struct wd_str){p, strlen(p)};
}

static void random_attr(struct wd_attr *a)
{
    struct wd_str k = pick(), v = pick();
    char *key = malloc(k.n + 1); /* keys are C strings */
    memcpy(key, k.p, k.n);
    key[k.n] = '\0';
    *a = (struct wd_attr){.key = key, .type = (uint8_t)(1 + rnd() % 6)}; /* 6: no type, an empty AnyValue */
    if (a->type == 6)
        a->type = 0;
    a->s = v;
    a->i = (int64_t)(rnd() >> (rnd() % 64)) * (rnd() % 2 ? 1 : -1);
    a->d = (double)a->i / 7.0;
    if (rnd() % 2)
        a->klen = (uint32_t)k.n; /* set by the setters; 0 when built by hand */
}

static void test_pb_fast_equals_reference(void **state)
{
    for (size_t i = 0; i < sizeof(big); i++) /* ASCII, with a non-ASCII byte now and then */
        big[i] = (char)(i % 997 == 996 ? 0xc3 : 'a' + i % 26);
    struct wd_span *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    for (int iter = 0; iter < 4000; iter++) {
        memset(s, 0, sizeof(*s));
        for (int i = 0; i < 16; i++)
            s->trace_id[i] = (uint8_t)rnd();
        for (int i = 0; i < 8; i++)
            s->span_id[i] = (uint8_t)rnd(), s->parent_span_id[i] = (uint8_t)rnd();
        s->has_parent = rnd() % 2;
        struct wd_str name = pick(), ts = pick();
        char *name_c = malloc(name.n + 1);
        memcpy(name_c, name.p, name.n);
        name_c[name.n] = '\0';
        s->name = rnd() % 8 ? name_c : NULL;
        s->trace_state = rnd() % 3 ? WD_STR_NULL : ts;
        s->kind = (enum wd_span_kind)(rnd() % 4);
        s->start_ns = rnd() % 4 ? rnd() : 0;
        s->end_ns = rnd() % 4 ? rnd() : 0;
        s->nattrs = (int)(rnd() % (WD_SPAN_MAX_ATTRS + 1));
        for (int i = 0; i < s->nattrs; i++)
            random_attr(&s->attrs[i]);
        s->dropped_attrs = rnd() % 3 ? 0 : (uint32_t)rnd() % 1000;
        s->nevents = (int)(rnd() % 3 ? 0 : rnd() % (WD_SPAN_MAX_EVENTS + 1));
        for (int i = 0; i < s->nevents; i++) {
            s->events[i].name = pool[rnd() % (sizeof(pool) / sizeof(pool[0]))];
            s->events[i].time_ns = rnd() % 2 ? rnd() : 0;
            s->events[i].nattrs = (int)(rnd() % (WD_SPAN_EVENT_MAX_ATTRS + 1));
            for (int k = 0; k < s->events[i].nattrs; k++)
                random_attr(&s->events[i].attrs[k]);
        }
        s->dropped_events = rnd() % 4 ? 0 : 2;
        s->status = (enum wd_span_status)(rnd() % 3);
        s->status_message = rnd() % 3 ? WD_STR_NULL : pick();

        struct wd_buf got = {0}, want = {0};
        wd_buf_put(&got, "x", 1); /* not at the start of the buffer */
        wd_buf_put(&want, "x", 1);
        wd_otlp_span_pb(s, &got);
        r_span(s, &want);
        if (got.n != want.n || memcmp(got.p, want.p, got.n) != 0)
            fail_msg("iteration %d: %zu bytes, the reference %zu", iter, got.n, want.n);
        wd_buf_free(&got);
        wd_buf_free(&want);
        for (int i = 0; i < s->nattrs; i++)
            free((char *)s->attrs[i].key);
        for (int i = 0; i < s->nevents; i++)
            for (int k = 0; k < s->events[i].nattrs; k++)
                free((char *)s->events[i].attrs[k].key);
        free(name_c);
    }
    free(s);
}

static void test_put_appends(void **state)
{
    /* the put setters give the same attributes as the replacing ones when each key is set once */
    struct wd_span a = {0}, b = {0};
    wd_span_attr_cstr(&a, "k1", "v");
    wd_span_attr_str(&a, "k2", "vv", 2);
    wd_span_attr_int(&a, "k3", -5);
    wd_span_attr_str_array1(&a, "k4", "x", 1);
    wd_span_put_cstr(&b, "k1", "v");
    wd_span_put_str(&b, "k2", "vv", 2);
    wd_span_put_int(&b, "k3", -5);
    wd_span_put_str_array1(&b, "k4", "x", 1);
    assert_int_equal(b.nattrs, 4);
    assert_memory_equal(a.attrs, b.attrs, 4 * sizeof(a.attrs[0]));
    assert_int_equal(b.attrs[0].klen, 2);
    char keys[WD_SPAN_MAX_ATTRS + 3][16]; /* keys live as long as the span */
    for (int i = 4; i < WD_SPAN_MAX_ATTRS + 3; i++) {
        snprintf(keys[i], sizeof(keys[i]), "n%d", i);
        wd_span_put_int(&b, keys[i], i);
    }
    assert_int_equal(b.nattrs, WD_SPAN_MAX_ATTRS);
    assert_int_equal(b.dropped_attrs, 3);
    /* a key whose text equals an existing one is found by the replacing setter, whatever its pointer */
    char again[4] = "k3";
    wd_span_attr_int(&a, again, 9);
    assert_int_equal(a.nattrs, 4);
    assert_int_equal(a.attrs[2].i, 9);
    assert_int_equal(a.attrs[2].klen, 2);
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
        cmocka_unit_test(test_pb_fast_equals_reference), cmocka_unit_test(test_put_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
