#!/usr/bin/env bash
# Warden's hand-written OTLP encodings (otel/span.c) against the official opentelemetry-proto files (from
# npm, tests/otel/setup.sh), protoc and node. otlp_encode_check writes one ExportTraceServiceRequest with
# three spans that cover every field and attribute type, as protobuf and as OTLP/JSON. Then:
#   protoc --decode reads the protobuf, with no unknown field, and shows the expected values;
#   protoc --encode of the same request written out below as text gives identical bytes;
#   node: the JSON follows the OTLP/JSON rules, and equals the protobuf decoded by protobufjs.
# Usage: bash tests/integration/test_otlp_encoding.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
CHECK="$(dirname "$WARDEN_BIN")/otlp_encode_check"
[ -x "$CHECK" ] || { echo "test_otlp_encoding: $CHECK not built" >&2; exit 1; }
command -v protoc >/dev/null || { echo "test_otlp_encoding: protoc missing (scripts/deps.sh installs it)" >&2; exit 1; }
PROTO_ROOT="$(bash "$WD_ROOT/tests/otel/setup.sh")"
MSG=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest
SVC=opentelemetry/proto/collector/trace/v1/trace_service.proto
PB="$WD_TMP/request.pb"
JSON="$WD_TMP/request.json"

TP=$("$CHECK" "$PB" "$JSON" 2>"$WD_TMP/check.err") || { cat "$WD_TMP/check.err" >&2; fail "otlp_encode_check ran"; wd_finish; exit 1; }
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$WD_TMP/check.err"; then
  fail "sanitizer report from otlp_encode_check"; cat "$WD_TMP/check.err" >&2
else
  ok "otlp_encode_check wrote $(stat -c %s "$PB") protobuf bytes and $(stat -c %s "$JSON") JSON bytes"
fi
check "traceparent of the server span: caller's trace id, own span id, sampled" \
  test "$TP" = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"

# (a) protoc decodes Warden's bytes with the official schema.
DECODED="$WD_TMP/decoded.txt"
check "protoc --decode=$MSG accepts Warden's protobuf" \
  sh -c "protoc --decode=$MSG -I'$PROTO_ROOT' $SVC <'$PB' >'$DECODED'"
# An unknown field would print as its number ("16: 1"): every field Warden writes is in the schema.
check "no unknown fields" sh -c "! grep -qE '^ *[0-9]+:' '$DECODED'"
LINES="$WD_TMP/decoded.lines" # the decoded text without indentation
sed 's/^ *//' "$DECODED" >"$LINES"
# has LINE...: each is a line of the decoded text
has() {
  local l
  for l in "$@"; do
    grep -qxF -- "$l" "$LINES" || { echo "  missing: $l" >&2; return 1; }
  done
}
count() { [ "$(grep -cxF -- "$1" "$LINES")" -eq "$2" ]; }
check "trace id as bytes"            has 'trace_id: "K\371/5w\263M\246\243\316\222\235\016\016G6"'
check "server span id as bytes"      has 'span_id: "\267\255kqi 31"'
check "remote parent span id"        has 'parent_span_id: "\000\360g\252\013\251\002\267"'
check "tracestate passed on"         has 'trace_state: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"'
check "kinds"                        has 'kind: SPAN_KIND_SERVER' 'kind: SPAN_KIND_CLIENT' 'kind: SPAN_KIND_INTERNAL'
check "start and end times"          has 'start_time_unix_nano: 1700000000123456789' \
                                         'end_time_unix_nano: 1700000001987654321' \
                                         'end_time_unix_nano: 18446744073709551615'
check "status codes and message"     has 'code: STATUS_CODE_OK' 'code: STATUS_CODE_ERROR' \
                                         'message: "upstream 503: \"overloaded\""'
check "an attribute set twice is replaced, not repeated" count 'key: "http.response.status_code"' 2
check "int values"                   has 'int_value: 200' 'int_value: -42' 'int_value: 0' \
                                         'int_value: -9223372036854775808' 'int_value: 9223372036854775807'
check "double, bool and array values" has 'double_value: 0.7' 'double_value: 0' 'double_value: nan' \
                                         'double_value: -inf' 'double_value: -1.5e-300' 'bool_value: true' \
                                         'bool_value: false' 'array_value {' 'string_value: "end_turn"'
check "unicode string"               has 'string_value: "\346\227\245\346\234\254\350\252\236 \342\234\223 caf\303\251 \360\237\230\200"'
check "string with escapes"          has 'string_value: "quote \" backslash \\ slash / nl \n cr \r tab \t ctl \001 del \177 </script>"'
check "invalid UTF-8 sent as U+FFFD" has 'string_value: "cut \357\277\275\357\277\275 lone \357\277\275 end"'
check "events"                       has 'name: "retry"' 'time_unix_nano: 1700000000500000000' \
                                         'name: "gen_ai.first_token"' 'time_unix_nano: 1700000001000000001'
check "dropped counts"               has 'dropped_attributes_count: 3' 'dropped_events_count: 1'

# (b) The same request written by hand; protoc's encoding of it must be Warden's, byte for byte.
cat >"$WD_TMP/expected.txtpb" <<'TXT'
resource_spans {
  resource {
    attributes { key: "service.name" value { string_value: "warden" } }
    attributes { key: "service.version" value { string_value: "0.1.0" } }
    attributes { key: "service.instance.id" value { string_value: "wd-7f3a" } }
    attributes { key: "k8s.pod.name" value { string_value: "warden-0" } }
  }
  scope_spans {
    scope { name: "warden" version: "0.1.0" }
    spans {
      trace_id: "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36"
      span_id: "\xb7\xad\x6b\x71\x69\x20\x33\x31"
      trace_state: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
      parent_span_id: "\x00\xf0\x67\xaa\x0b\xa9\x02\xb7"
      name: "POST /anthropic/v1/messages"
      kind: SPAN_KIND_SERVER
      start_time_unix_nano: 1700000000123456789
      end_time_unix_nano: 1700000001987654321
      attributes { key: "http.request.method" value { string_value: "POST" } }
      attributes { key: "url.path" value { string_value: "/anthropic/v1/messages" } }
      attributes { key: "http.response.status_code" value { int_value: 200 } }
      attributes { key: "gen_ai.request.model" value { string_value: "claude-sonnet-4-5" } }
      attributes { key: "gen_ai.usage.input_tokens" value { int_value: 1234 } }
      attributes { key: "gen_ai.request.temperature" value { double_value: 0.7 } }
      attributes { key: "gen_ai.request.stream" value { bool_value: true } }
      attributes { key: "warden.cached" value { bool_value: false } }
      attributes { key: "gen_ai.response.finish_reasons" value { array_value { values { string_value: "end_turn" } } } }
      status { code: STATUS_CODE_OK }
    }
    spans {
      trace_id: "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36"
      span_id: "\x53\x99\x5c\x3f\x42\xcd\x8a\xd8"
      parent_span_id: "\xb7\xad\x6b\x71\x69\x20\x33\x31"
      name: "chat gemini-2.5-flash"
      kind: SPAN_KIND_CLIENT
      start_time_unix_nano: 1700000000200000000
      end_time_unix_nano: 1700000001900000000
      attributes { key: "gen_ai.system" value { string_value: "gemini" } }
      attributes { key: "warden.unicode" value { string_value: "日本語 ✓ café 😀" } }
      attributes { key: "warden.escapes" value { string_value: "quote \" backslash \\ slash / nl \n cr \r tab \t ctl \x01 del \x7f </script>" } }
      attributes { key: "warden.negative" value { int_value: -42 } }
      attributes { key: "warden.zero" value { int_value: 0 } }
      attributes { key: "warden.double_zero" value { double_value: 0 } }
      attributes { key: "warden.empty" value { string_value: "" } }
      attributes { key: "warden.long" value { string_value: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" } }
      events {
        time_unix_nano: 1700000000500000000
        name: "retry"
        attributes { key: "http.response.status_code" value { int_value: 503 } }
        attributes { key: "error.type" value { string_value: "overloaded" } }
      }
      events { time_unix_nano: 1700000001000000001 name: "gen_ai.first_token" }
      status { message: "upstream 503: \"overloaded\"" code: STATUS_CODE_ERROR }
    }
    spans {
      trace_id: "\x00\x01\x02\x7f\x80\xff\x0a\x22\x5c\x27\xfe\x10\x20\x30\x40\x50"
      span_id: "\x00\x00\x00\x00\x00\x00\x00\x01"
      name: "warden.internal"
      kind: SPAN_KIND_INTERNAL
      start_time_unix_nano: 1
      end_time_unix_nano: 18446744073709551615
      attributes { key: "a.00" value { int_value: -9223372036854775808 } }
      attributes { key: "a.01" value { int_value: 9223372036854775807 } }
      attributes { key: "a.02" value { double_value: nan } }
      attributes { key: "a.03" value { double_value: -inf } }
      attributes { key: "a.04" value { double_value: -1.5e-300 } }
      attributes { key: "a.05" value { string_value: "cut \xef\xbf\xbd\xef\xbf\xbd lone \xef\xbf\xbd end" } }
      attributes { key: "a.06" value { array_value { values { string_value: "" } } } }
      attributes { key: "a.07" value { int_value: 7 } }
      attributes { key: "a.08" value { string_value: "replaced" } }
      attributes { key: "a.09" value { int_value: 9 } }
      attributes { key: "a.10" value { int_value: 10 } }
      attributes { key: "a.11" value { int_value: 11 } }
      attributes { key: "a.12" value { int_value: 12 } }
      attributes { key: "a.13" value { int_value: 13 } }
      attributes { key: "a.14" value { int_value: 14 } }
      attributes { key: "a.15" value { int_value: 15 } }
      attributes { key: "a.16" value { int_value: 16 } }
      attributes { key: "a.17" value { int_value: 17 } }
      attributes { key: "a.18" value { int_value: 18 } }
      attributes { key: "a.19" value { int_value: 19 } }
      attributes { key: "a.20" value { int_value: 20 } }
      attributes { key: "a.21" value { int_value: 21 } }
      attributes { key: "a.22" value { int_value: 22 } }
      attributes { key: "a.23" value { int_value: 23 } }
      dropped_attributes_count: 3
      events { name: "e0" }
      events { time_unix_nano: 1001 name: "e1" }
      events { time_unix_nano: 1002 name: "e2" }
      events { time_unix_nano: 1003 name: "e3" }
      dropped_events_count: 1
    }
  }
}
TXT
EXPECTED_PB="$WD_TMP/expected.pb"
if protoc --encode=$MSG -I"$PROTO_ROOT" $SVC <"$WD_TMP/expected.txtpb" >"$EXPECTED_PB"; then
  ok "protoc --encode of the expected request"
  if cmp "$EXPECTED_PB" "$PB"; then
    ok "Warden's protobuf is byte-identical to protoc's ($(stat -c %s "$PB") bytes)"
  else
    fail "Warden's protobuf is byte-identical to protoc's"
    diff <(od -An -tx1 -v -w16 "$EXPECTED_PB") <(od -An -tx1 -v -w16 "$PB") | head -20 >&2 || true
  fi
else
  fail "protoc --encode of the expected request"
fi

# (c) The JSON: valid, OTLP/JSON's rules, and the same content as the protobuf.
check "the JSON parses (python3 -m json.tool)" sh -c "python3 -m json.tool '$JSON' >/dev/null"
if node "$WD_ROOT/tests/otel/otlp_json_check.mjs" "$JSON" "$PB" "$PROTO_ROOT" >"$WD_TMP/node.out" 2>&1; then
  ok "node: OTLP/JSON structure, and the protobuf decoded by protobufjs equals the JSON ($(grep -c '^ok' "$WD_TMP/node.out") checks)"
else
  fail "node: OTLP/JSON structure, and the protobuf decoded by protobufjs equals the JSON"
  grep -v '^ok' "$WD_TMP/node.out" >&2
fi

wd_finish
