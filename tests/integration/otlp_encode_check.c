/* Writes one fixed ExportTraceServiceRequest, built with otel/span.c, in both OTLP encodings, for
 * tests/integration/test_otlp_encoding.sh to hold against protoc, the official .proto files and node.
 * The spans cover every field and attribute type: a server span with a remote parent and tracestate, a
 * client span with events, an error status, unicode and a string that needs JSON escapes, and an internal
 * span past every capacity (dropped attributes and events), with extreme numbers and invalid UTF-8.
 * Usage: otlp_encode_check OUT.pb OUT.json        (prints the server span's traceparent) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otel/span.h"

static void put_file(const char *path, const struct wd_buf *b)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(b->p, 1, b->n, f) != b->n || fclose(f) != 0) {
        fprintf(stderr, "otlp_encode_check: cannot write %s\n", path);
        exit(1);
    }
}

static const char UNICODE[] = "日本語 ✓ café 😀";
static const char ESCAPES[] = "quote \" backslash \\ slash / nl \n cr \r tab \t ctl \x01 del \x7f </script>";
static const char CUT[] = "cut \xe6\x97 lone \x80 end"; /* invalid UTF-8: each bad byte becomes U+FFFD */

#define LONG                                                                                               \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"  \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: otlp_encode_check OUT.pb OUT.json\n");
        return 2;
    }
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    static const uint8_t server_id[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};
    static const uint8_t client_id[8] = {0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8};
    static const uint8_t internal_trace[16] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0x0a, 0x22,
                                               0x5c, 0x27, 0xfe, 0x10, 0x20, 0x30, 0x40, 0x50};
    static const uint8_t internal_id[8] = {0, 0, 0, 0, 0, 0, 0, 1};

    /* 1. The server span: continues the caller's trace. */
    struct wd_span *srv = calloc(1, sizeof(*srv));
    if (srv == NULL || wd_traceparent_parse(tp, strlen(tp), srv->trace_id, srv->parent_span_id, &srv->flags) != 0)
        return 1;
    srv->has_parent = true;
    memcpy(srv->span_id, server_id, 8);
    srv->trace_state = WD_STR("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    srv->name = "POST /anthropic/v1/messages";
    srv->kind = WD_SPAN_SERVER;
    srv->start_ns = 1700000000123456789ull;
    srv->end_ns = 1700000001987654321ull;
    srv->status = WD_STATUS_OK;
    wd_span_attr_cstr(srv, "http.request.method", "POST");
    wd_span_attr_cstr(srv, "url.path", "/anthropic/v1/messages");
    wd_span_attr_int(srv, "http.response.status_code", 500);
    wd_span_attr_int(srv, "http.response.status_code", 200); /* set again: replaces, no new attribute */
    wd_span_attr_cstr(srv, "gen_ai.request.model", "claude-sonnet-4-5");
    wd_span_attr_int(srv, "gen_ai.usage.input_tokens", 1234);
    wd_span_attr_double(srv, "gen_ai.request.temperature", 0.7);
    wd_span_attr_bool(srv, "gen_ai.request.stream", true);
    wd_span_attr_bool(srv, "warden.cached", false);
    wd_span_attr_str_array1(srv, "gen_ai.response.finish_reasons", "end_turn", 8);

    /* 2. The client span: the upstream call, with events and an error. */
    struct wd_span *cli = calloc(1, sizeof(*cli));
    if (cli == NULL)
        return 1;
    memcpy(cli->trace_id, srv->trace_id, 16);
    memcpy(cli->span_id, client_id, 8);
    memcpy(cli->parent_span_id, srv->span_id, 8);
    cli->has_parent = true;
    cli->flags = 1;
    cli->name = "chat gemini-2.5-flash";
    cli->kind = WD_SPAN_CLIENT;
    cli->start_ns = 1700000000200000000ull;
    cli->end_ns = 1700000001900000000ull;
    cli->status = WD_STATUS_ERROR;
    cli->status_message = WD_STR("upstream 503: \"overloaded\"");
    wd_span_attr_cstr(cli, "gen_ai.system", "gemini");
    wd_span_attr_str(cli, "warden.unicode", UNICODE, sizeof(UNICODE) - 1);
    wd_span_attr_str(cli, "warden.escapes", ESCAPES, sizeof(ESCAPES) - 1);
    wd_span_attr_int(cli, "warden.negative", -42);
    wd_span_attr_int(cli, "warden.zero", 0);
    wd_span_attr_double(cli, "warden.double_zero", 0.0);
    wd_span_attr_cstr(cli, "warden.empty", "");
    /* lengths over 127 take a two-byte varint, in the value, the AnyValue and the KeyValue */
    wd_span_attr_cstr(cli, "warden.long", LONG);
    struct wd_span_event *e = wd_span_add_event(cli, "retry", 1700000000500000000ull);
    if (e == NULL)
        return 1;
    e->attrs[0] = (struct wd_attr){.key = "http.response.status_code", .type = WD_ATTR_INT, .i = 503};
    e->attrs[1] = (struct wd_attr){.key = "error.type", .type = WD_ATTR_STR, .s = WD_STR("overloaded")};
    e->nattrs = 2;
    if (wd_span_add_event(cli, "gen_ai.first_token", 1700000001000000001ull) == NULL)
        return 1;

    /* 3. An internal root span past every capacity. */
    struct wd_span *in = calloc(1, sizeof(*in));
    if (in == NULL)
        return 1;
    memcpy(in->trace_id, internal_trace, 16);
    memcpy(in->span_id, internal_id, 8);
    in->name = "warden.internal";
    in->kind = WD_SPAN_INTERNAL;
    in->start_ns = 1;
    in->end_ns = UINT64_MAX;
    static const char *keys[] = {"a.00", "a.01", "a.02", "a.03", "a.04", "a.05", "a.06", "a.07", "a.08",
                                 "a.09", "a.10", "a.11", "a.12", "a.13", "a.14", "a.15", "a.16", "a.17",
                                 "a.18", "a.19", "a.20", "a.21", "a.22", "a.23", "a.24", "a.25", "a.26"};
    wd_span_attr_int(in, keys[0], INT64_MIN);
    wd_span_attr_int(in, keys[1], INT64_MAX);
    wd_span_attr_double(in, keys[2], NAN);
    wd_span_attr_double(in, keys[3], -INFINITY);
    wd_span_attr_double(in, keys[4], -1.5e-300);
    wd_span_attr_str(in, keys[5], CUT, sizeof(CUT) - 1);
    wd_span_attr_str_array1(in, keys[6], "", 0);
    for (int i = 7; i < 27; i++)
        wd_span_attr_int(in, keys[i], i);
    wd_span_attr_cstr(in, keys[8], "replaced"); /* an existing key still replaces when full */
    for (int i = 0; i < 5; i++) {
        static const char *names[] = {"e0", "e1", "e2", "e3", "e4"};
        e = wd_span_add_event(in, names[i], i == 0 ? 0 : 1000 + (uint64_t)i);
        if ((e == NULL) != (i == 4))
            return 1;
    }
    if (in->nattrs != WD_SPAN_MAX_ATTRS || in->dropped_attrs != 3 || in->nevents != 4 || in->dropped_events != 1)
        return 1;

    struct wd_otlp_resource *res = calloc(1, sizeof(*res));
    if (res == NULL)
        return 1;
    res->attrs[0] = (struct wd_attr){.key = "service.name", .type = WD_ATTR_STR, .s = WD_STR("warden")};
    res->attrs[1] = (struct wd_attr){.key = "service.version", .type = WD_ATTR_STR, .s = WD_STR("0.1.0")};
    res->attrs[2] = (struct wd_attr){.key = "service.instance.id", .type = WD_ATTR_STR, .s = WD_STR("wd-7f3a")};
    res->attrs[3] = (struct wd_attr){.key = "k8s.pod.name", .type = WD_ATTR_STR, .s = WD_STR("warden-0")};
    res->nattrs = 4;

    struct wd_buf spans = {0}, spans_json = {0}, pb = {0}, json = {0};
    const struct wd_span *all[] = {srv, cli, in};
    for (int i = 0; i < 3; i++) {
        wd_otlp_span_pb(all[i], &spans);
        if (i > 0)
            wd_buf_putc(&spans_json, ',');
        wd_otlp_span_json(all[i], &spans_json);
    }
    wd_otlp_request_pb(res, "warden", "0.1.0", spans.p, spans.n, &pb);
    wd_otlp_request_json(res, "warden", "0.1.0", spans_json.p, spans_json.n, &json);
    if (spans.oom || spans_json.oom || pb.oom || json.oom)
        return 1;
    put_file(argv[1], &pb);
    put_file(argv[2], &json);

    char out[56];
    wd_traceparent_format(srv, out);
    printf("%s\n", out);

    wd_buf_free(&spans);
    wd_buf_free(&spans_json);
    wd_buf_free(&pb);
    wd_buf_free(&json);
    free(srv);
    free(cli);
    free(in);
    free(res);
    return 0;
}
