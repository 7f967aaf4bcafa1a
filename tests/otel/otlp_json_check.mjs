// Checks Warden's OTLP/JSON request (written by tests/integration/otlp_encode_check.c) against the OTLP
// JSON rules and against its protobuf twin: protobufjs decodes the protobuf with the official .proto files
// and the result, put in OTLP/JSON form (hex ids, 64-bit integers as strings, NaN and infinities as
// strings), must equal the JSON exactly. Prints "ok - ..." / "not ok - ..." lines; exits 1 on a failure.
// Usage: node otlp_json_check.mjs REQUEST.json REQUEST.pb PROTO_ROOT
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs');

const [jsonPath, pbPath, protoRoot] = process.argv.slice(2);
let failed = 0;
const check = (desc, cond, detail) => {
  if (cond) {
    console.log(`ok - ${desc}`);
  } else {
    failed++;
    console.log(`not ok - ${desc}`);
    if (detail !== undefined) console.log(`  got: ${JSON.stringify(detail)}`);
  }
};

const text = readFileSync(jsonPath, 'utf8');
let req;
try {
  req = JSON.parse(text);
  check('the JSON parses', true);
} catch (e) {
  check('the JSON parses', false, String(e));
  process.exit(1);
}

// Field names: lowerCamelCase everywhere (attribute keys are values, not names).
const badNames = [];
const walk = (v) => {
  if (Array.isArray(v)) return v.forEach(walk);
  if (v === null || typeof v !== 'object') return;
  for (const [k, x] of Object.entries(v)) {
    if (!/^[a-z][A-Za-z0-9]*$/.test(k)) badNames.push(k);
    walk(x);
  }
};
walk(req);
check('every field name is lowerCamelCase', badNames.length === 0, badNames);

const rs = req.resourceSpans;
check('one resourceSpans with one scopeSpans', rs?.length === 1 && rs[0].scopeSpans?.length === 1, rs);
const resAttrs = Object.fromEntries((rs[0].resource?.attributes ?? []).map((a) => [a.key, a.value]));
check('resource attributes', isDeepStrictEqual(resAttrs, {
  'service.name': { stringValue: 'warden' }, 'service.version': { stringValue: '0.1.0' },
  'service.instance.id': { stringValue: 'wd-7f3a' }, 'k8s.pod.name': { stringValue: 'warden-0' },
}), resAttrs);
const ss = rs[0].scopeSpans[0];
check('scope name and version', isDeepStrictEqual(ss.scope, { name: 'warden', version: '0.1.0' }), ss.scope);
const [srv, cli, internal] = ss.spans ?? [];
check('three spans', ss.spans?.length === 3, ss.spans?.length);

check('ids are lowercase hex strings of 32 and 16 digits', ss.spans.every((s) =>
  /^[0-9a-f]{32}$/.test(s.traceId) && /^[0-9a-f]{16}$/.test(s.spanId) &&
  (s.parentSpanId === undefined || /^[0-9a-f]{16}$/.test(s.parentSpanId))));
check('server span ids', srv.traceId === '4bf92f3577b34da6a3ce929d0e0e4736' && srv.spanId === 'b7ad6b7169203331' &&
  srv.parentSpanId === '00f067aa0ba902b7', [srv.traceId, srv.spanId, srv.parentSpanId]);
check('server span: traceState, kind as an integer, times as decimal strings',
  srv.traceState === 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' && srv.kind === 2 &&
  srv.startTimeUnixNano === '1700000000123456789' && srv.endTimeUnixNano === '1700000001987654321',
  [srv.traceState, srv.kind, srv.startTimeUnixNano, srv.endTimeUnixNano]);
const attrs = (s) => Object.fromEntries(s.attributes.map((a) => [a.key, a.value]));
const sa = attrs(srv);
check('server span attributes of every type', isDeepStrictEqual(sa, {
  'http.request.method': { stringValue: 'POST' }, 'url.path': { stringValue: '/anthropic/v1/messages' },
  'http.response.status_code': { intValue: '200' }, 'gen_ai.request.model': { stringValue: 'claude-sonnet-4-5' },
  'gen_ai.usage.input_tokens': { intValue: '1234' }, 'gen_ai.request.temperature': { doubleValue: 0.7 },
  'gen_ai.request.stream': { boolValue: true }, 'warden.cached': { boolValue: false },
  'gen_ai.response.finish_reasons': { arrayValue: { values: [{ stringValue: 'end_turn' }] } },
}), sa);
check('status OK is {"code":1}', isDeepStrictEqual(srv.status, { code: 1 }), srv.status);

check('client span: kind 3, parent is the server span, no traceState',
  cli.kind === 3 && cli.parentSpanId === srv.spanId && cli.traceId === srv.traceId && !('traceState' in cli));
const ca = attrs(cli);
check('unicode string', ca['warden.unicode']?.stringValue === '日本語 ✓ café 😀', ca['warden.unicode']);
check('string with JSON escapes', ca['warden.escapes']?.stringValue ===
  'quote " backslash \\ slash / nl \n cr \r tab \t ctl \u0001 del \u007f </script>', ca['warden.escapes']);
check('negative, zero and default values of oneof members are kept',
  isDeepStrictEqual([ca['warden.negative'], ca['warden.zero'], ca['warden.double_zero'], ca['warden.empty']],
    [{ intValue: '-42' }, { intValue: '0' }, { doubleValue: 0 }, { stringValue: '' }]));
check('events with attributes and times', isDeepStrictEqual(cli.events, [
  { timeUnixNano: '1700000000500000000', name: 'retry', attributes: [
    { key: 'http.response.status_code', value: { intValue: '503' } },
    { key: 'error.type', value: { stringValue: 'overloaded' } }] },
  { timeUnixNano: '1700000001000000001', name: 'gen_ai.first_token' },
]), cli.events);
check('error status with message', isDeepStrictEqual(cli.status, { message: 'upstream 503: "overloaded"', code: 2 }),
  cli.status);

check('internal span: no parent, no status, kind 1, extreme times',
  !('parentSpanId' in internal) && !('status' in internal) && internal.kind === 1 &&
  internal.startTimeUnixNano === '1' && internal.endTimeUnixNano === '18446744073709551615');
check('internal span: trace id bytes in hex', internal.traceId === '0001027f80ff0a225c27fe1020304050', internal.traceId);
const ia = attrs(internal);
check('int64 limits, NaN and -Infinity, invalid UTF-8 as U+FFFD', isDeepStrictEqual(
  [ia['a.00'], ia['a.01'], ia['a.02'], ia['a.03'], ia['a.04'], ia['a.05'], ia['a.06']],
  [{ intValue: '-9223372036854775808' }, { intValue: '9223372036854775807' }, { doubleValue: 'NaN' },
    { doubleValue: '-Infinity' }, { doubleValue: -1.5e-300 }, { stringValue: 'cut \ufffd\ufffd lone \ufffd end' },
    { arrayValue: { values: [{ stringValue: '' }] } }]), ia);
check('capacity: 24 attributes kept, 3 dropped (a number); 4 events kept, 1 dropped',
  internal.attributes.length === 24 && internal.droppedAttributesCount === 3 && internal.events.length === 4 &&
  internal.droppedEventsCount === 1 && ia['a.08']?.stringValue === 'replaced' && !('a.24' in ia));
check('an event at time 0 has no timeUnixNano', isDeepStrictEqual(internal.events[0], { name: 'e0' }),
  internal.events[0]);
check('no default is written (no "", 0 counts, empty arrays)',
  !/"(traceState|parentSpanId|name|message)":""|Count":0[,}]|":\[\]/.test(text));

// The protobuf, decoded by protobufjs with the official .proto files, in OTLP/JSON form.
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(protoRoot, target);
root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
const Req = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const msg = Req.decode(readFileSync(pbPath));
const obj = Req.toObject(msg, { longs: String, enums: Number, bytes: Array, json: true });
const hex = (a) => Buffer.from(a).toString('hex');
for (const r of obj.resourceSpans ?? []) {
  for (const s of r.scopeSpans ?? []) {
    for (const sp of s.spans ?? []) {
      for (const k of ['traceId', 'spanId', 'parentSpanId']) if (k in sp) sp[k] = hex(sp[k]);
    }
  }
}
const same = isDeepStrictEqual(obj, req);
check('the protobuf decoded by protobufjs equals the JSON', same);
if (!same) {
  console.log(`  protobuf: ${JSON.stringify(obj)}`);
  console.log(`  json:     ${JSON.stringify(req)}`);
}

process.exit(failed ? 1 : 0);
