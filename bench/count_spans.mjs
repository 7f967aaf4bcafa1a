// Counts the spans in the OTLP/HTTP exports tests/fakes/fake_otlp.mjs stored in DIR (req-NNNN.pb, protobuf
// ExportTraceServiceRequest; req-NNNN.json, OTLP/JSON), by span name, then deletes the files it counted (so a
// long bench run does not fill the disk). Prints one JSON line: {"exports":N,"spans":N,"bytes":N,"by_name":{...}}.
//
//   node bench/count_spans.mjs DIR
//
// Only the nesting needed to reach Span.name is decoded: ExportTraceServiceRequest.resource_spans (1) ->
// ResourceSpans.scope_spans (2) -> ScopeSpans.spans (2) -> Span.name (5). A file that does not parse is counted in
// "bad" and kept, for a look afterwards.
import fs from 'node:fs';
import path from 'node:path';

function* fields(buf, start, end) {
  let i = start;
  const varint = () => {
    let v = 0, mul = 1;
    for (;;) {
      if (i >= end) throw new Error('truncated varint');
      const c = buf[i++];
      v += (c & 0x7f) * mul;
      if (c < 0x80) return v;
      mul *= 128;
      if (mul > 2 ** 63) throw new Error('varint too long');
    }
  };
  while (i < end) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key % 8;
    if (wire === 0) { varint(); continue; }
    if (wire === 1) { i += 8; continue; }
    if (wire === 5) { i += 4; continue; }
    if (wire !== 2) throw new Error(`wire type ${wire}`);
    const n = varint();
    if (i + n > end) throw new Error('field runs past the end');
    yield [field, i, i + n];
    i += n;
  }
  if (i !== end) throw new Error('field runs past the end');
}

function countPb(buf, byName) {
  let n = 0;
  for (const [f1, a1, b1] of fields(buf, 0, buf.length)) {
    if (f1 !== 1) continue;
    for (const [f2, a2, b2] of fields(buf, a1, b1)) {
      if (f2 !== 2) continue;
      for (const [f3, a3, b3] of fields(buf, a2, b2)) {
        if (f3 !== 2) continue;
        let name = '';
        for (const [f4, a4, b4] of fields(buf, a3, b3)) if (f4 === 5) name = buf.toString('utf8', a4, b4);
        byName[name] = (byName[name] || 0) + 1;
        n++;
      }
    }
  }
  return n;
}

function countJson(buf, byName) {
  let n = 0;
  for (const rs of JSON.parse(buf.toString('utf8')).resourceSpans || [])
    for (const ss of rs.scopeSpans || [])
      for (const s of ss.spans || []) {
        byName[s.name || ''] = (byName[s.name || ''] || 0) + 1;
        n++;
      }
  return n;
}

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node bench/count_spans.mjs DIR\n');
  process.exit(2);
}
const out = { exports: 0, spans: 0, bytes: 0, bad: 0, by_name: {} };
for (const f of fs.readdirSync(dir).sort()) {
  const m = f.match(/^(req-\d+)\.(pb|json)$/);
  if (!m) continue;
  const p = path.join(dir, f);
  const buf = fs.readFileSync(p);
  const byName = {};
  let n;
  try {
    n = m[2] === 'pb' ? countPb(buf, byName) : countJson(buf, byName);
  } catch {
    out.bad++;
    continue;
  }
  out.exports++;
  out.spans += n;
  out.bytes += buf.length;
  for (const [k, v] of Object.entries(byName)) out.by_name[k] = (out.by_name[k] || 0) + v;
  fs.rmSync(p, { force: true });
  fs.rmSync(path.join(dir, `${m[1]}.headers.json`), { force: true });
}
process.stdout.write(`${JSON.stringify(out)}\n`);
