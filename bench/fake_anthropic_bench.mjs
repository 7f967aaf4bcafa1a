#!/usr/bin/env node
// The Anthropic upstream for bench/run.sh's pass-through scenarios: a minimal, fast fake of the Messages API
// that validates nothing and answers every POST with a fixed message (JSON, or a short SSE stream when the body
// asks for "stream": true). It plays for the Anthropic path the part `fake_gemini.mjs --bench` plays for Gemini.
// Node built-ins only.
//
//   node bench/fake_anthropic_bench.mjs [--port N]
//
// Listens on 127.0.0.1, prints one line {"port":N} on stdout once listening, exits on SIGTERM/SIGINT.
// GET /_fake/stats -> {"requests":N,"tcp_connections_opened":N}; POST /_fake/reset zeroes them (bench/run.sh
// reads the upstream connections a gateway opened during a run from these, as it does with the Gemini fake).
import http from 'node:http';

let port = 0;
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--port' && i + 1 < process.argv.length) port = Number(process.argv[++i]);
  else {
    process.stderr.write('usage: node fake_anthropic_bench.mjs [--port N]\n');
    process.exit(2);
  }
}

const stats = { requests: 0, tcp_connections_opened: 0 };
const model = 'claude-sonnet-4-5';
const usage = { input_tokens: 8, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 4 };
const json = Buffer.from(JSON.stringify({
  id: 'msg_bench', type: 'message', role: 'assistant', model,
  content: [{ type: 'text', text: 'fake-anthropic: bench' }],
  stop_reason: 'end_turn', stop_sequence: null, usage,
}));
// The event sequence of a real short answer: three text deltas, like the Gemini bench fake's three chunks.
const events = [
  ['message_start', { type: 'message_start', message: { id: 'msg_bench', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } }],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
  ...['fake-ant', 'hropic: ', 'bench'].map(t => ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } }]),
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 4 } }],
  ['message_stop', { type: 'message_stop' }],
];
const sse = Buffer.from(events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join(''));
const hJson = { 'content-type': 'application/json', 'content-length': String(json.length), 'request-id': 'req_bench' };
const hSse = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': 'req_bench' };
// Streaming or not is read without parsing the body (a JSON parse of 50 KB per request would make the fake the
// bottleneck of the load side): a native search for the key with the value true. Inside a JSON string a quote
// is escaped, so the bytes "stream":true can only be a key; a nested "stream" property (a tool schema's) would
// have an object as its value, not true.
const STREAM_KEYS = ['"stream":true', '"stream": true'];

function control(req, res, path) {
  if (path === '/_fake/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(stats));
  }
  if (path === '/_fake/reset' && req.method === 'POST') {
    stats.requests = 0;
    stats.tcp_connections_opened = 0;
    res.writeHead(204);
    return res.end();
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end('{"type":"error","error":{"type":"not_found_error","message":"no such fake control path"}}');
}

const server = http.createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => {
  const url = req.url;
  if (url.startsWith('/_fake/')) {
    req.resume();
    return control(req, res, url.split('?')[0]);
  }
  stats.requests++;
  const parts = [];
  req.on('data', c => parts.push(c));
  req.on('end', () => {
    const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    if (req.method !== 'POST') {
      res.writeHead(405, { 'content-type': 'application/json' });
      return res.end('{"type":"error","error":{"type":"invalid_request_error","message":"POST only"}}');
    }
    const stream = STREAM_KEYS.some(k => body.includes(k));
    res.writeHead(200, stream ? hSse : hJson);
    res.end(stream ? sse : json);
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.on('connection', () => { stats.tcp_connections_opened++; });
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });
