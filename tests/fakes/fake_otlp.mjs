#!/usr/bin/env node
// Fake OTLP/HTTP trace receiver (a strict stand-in for an OpenTelemetry Collector's otlphttp receiver) for
// Warden's trace tests; it takes /v1/metrics and /v1/logs the same way (stored as metrics-N / logs-N). Node built-ins only. See tests/fakes/README.md.
//
//   node tests/fakes/fake_otlp.mjs --port 0 --dir DIR [--verbose]
//
// Prints one line {"port":N} on stdout once listening on 127.0.0.1; exits 0 on SIGTERM/SIGINT.
// Every accepted export is stored as DIR/req-NNNN.pb or DIR/req-NNNN.json (the body, decompressed) and
// DIR/req-NNNN.headers.json (the request headers and what was answered).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { parseCommandLine, rejectBadClients, runIfMain, serve, verboseLog } from './fake_http.mjs';

const USAGE = 'usage: node fake_otlp.mjs --port N --dir DIR [--verbose]';
const MAX_BODY = 64 * 1024 * 1024;

export function parseArgs(argv) {
  const o = { port: 0, dir: null, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const need = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--port': {
        const v = need();
        if (!/^\d+$/.test(v) || +v > 65535) throw new Error(`--port needs a port number, got ${v}`);
        o.port = +v;
        break;
      }
      case '--dir': o.dir = need(); break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': throw new Error('help');
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!o.dir) throw new Error('--dir is required');
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// State

function newStats() {
  return {
    requests: 0,          // every request to /v1/traces (whatever was answered)
    exports: 0,           // exports accepted (answered 200) and stored
    bytes: 0,             // decompressed bytes of the accepted exports
    by_status: {},        // status -> count, for /v1/traces
    by_content_type: {},  // protobuf|json -> accepted exports
    gzip: 0,              // accepted exports that came gzip-encoded
    rejected: 0,          // answered 4xx (bad content type, path, body)
    injected: 0,          // answered by a "status" mode fault (429/503...)
    dropped_reused: 0,    // requests read and left unanswered, the connection closed ("drop_reused" mode)
  };
}

const S = {
  opts: null,
  stats: newStats(),
  seq: 0,
  mode: { mode: 'ok' }, // {mode:'ok'} | {mode:'slow', delay_ms} | {mode:'status', status, retry_after, count}
                        // | {mode:'drop_reused', count}
  log: [],              // [{seq, file, content_type, encoding, status, bytes, headers, ts}] (last 200)
};

const log = verboseLog('fake-otlp', S);
const delay = ms => new Promise(r => setTimeout(r, ms));

function countStatus(code) {
  S.stats.by_status[code] = (S.stats.by_status[code] || 0) + 1;
}

function send(res, code, body, headers = {}) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(code, { 'content-length': buf.length, ...headers });
  res.end(buf);
}

function sendJson(res, code, obj, headers = {}) {
  send(res, code, JSON.stringify(obj), { 'content-type': 'application/json', ...headers });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', c => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(Object.assign(new Error('body too large'), { code413: true }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}

// A google.rpc.Status-shaped error, as the Collector answers (JSON for a JSON request, else plain text
// with the message; an exporter only needs the status code).
function rpcError(res, code, message, json, headers = {}) {
  countStatus(code);
  if (json) return sendJson(res, code, { code: code === 400 ? 3 : code === 415 ? 3 : 14, message }, headers);
  return send(res, code, message, { 'content-type': 'text/plain', ...headers });
}

// ---------------------------------------------------------------------------------------------------------
// /v1/traces

// The protobuf wire format of a message's top level: every field well formed and inside the body, and
// field 1 (resource_spans) length-delimited. Returns an error string, or null. (Deeper checks are the
// tests' job: they decode every stored export with protoc.)
export function checkWire(buf) {
  let i = 0;
  const varint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new Error('truncated varint');
      if (shift > 63n) throw new Error('varint too long');
      const c = buf[i++];
      v |= BigInt(c & 0x7f) << shift;
      if (c < 0x80) return v;
    }
  };
  try {
    while (i < buf.length) {
      const key = varint();
      const field = key >> 3n;
      const wire = Number(key & 7n);
      if (field === 0n) throw new Error('field number 0');
      if (field === 1n && wire !== 2) throw new Error(`resource_spans with wire type ${wire}`);
      if (wire === 0) varint();
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        const n = Number(varint()); // read first: `i += varint()` would add to the old i
        i += n;
      }
      else throw new Error(`wire type ${wire}`);
      if (i > buf.length) throw new Error('field runs past the end of the body');
    }
  } catch (e) {
    return e.message;
  }
  return null;
}

function mediaType(ct) {
  return String(ct || '').split(';')[0].trim().toLowerCase();
}

async function handleTraces(req, res, signal = 'traces') {
  S.stats.requests++;
  const ct = mediaType(req.headers['content-type']);
  const json = ct === 'application/json';
  let raw;
  try {
    raw = await readBody(req);
  } catch (e) {
    if (e.code413) return rpcError(res, 413, 'request body too large', json);
    return; // client went away
  }
  if (req.method !== 'POST') {
    S.stats.rejected++;
    return rpcError(res, 405, `${req.method} not allowed on /v1/traces`, json, { allow: 'POST' });
  }
  if (ct !== 'application/x-protobuf' && ct !== 'application/json') {
    S.stats.rejected++;
    return rpcError(res, 415, `unsupported content type ${JSON.stringify(req.headers['content-type'] || '')}`, false);
  }
  const enc = String(req.headers['content-encoding'] || '').trim().toLowerCase();
  let body;
  if (enc === 'gzip') {
    try {
      body = zlib.gunzipSync(raw);
    } catch (e) {
      S.stats.rejected++;
      return rpcError(res, 400, `body is not valid gzip: ${e.message}`, json);
    }
  } else if (enc === '' || enc === 'identity') {
    body = raw;
  } else {
    S.stats.rejected++;
    return rpcError(res, 415, `unsupported content encoding ${JSON.stringify(enc)}`, json);
  }
  if (body.length === 0) {
    S.stats.rejected++;
    return rpcError(res, 400, 'empty export request', json);
  }
  if (json) {
    try {
      JSON.parse(body.toString('utf8'));
    } catch (e) {
      S.stats.rejected++;
      return rpcError(res, 400, `body is not JSON: ${e.message}`, json);
    }
  } else {
    const why = checkWire(body);
    if (why !== null) {
      S.stats.rejected++;
      return rpcError(res, 400, `body is not an Export${signal === 'traces' ? 'Trace' : signal === 'metrics' ? 'Metrics' : 'Logs'}ServiceRequest: ${why}`, json);
    }
  }

  // Control-mode behaviour: injected failures are answered before anything is stored (the exporter must
  // send the same data again), slow mode delays the answer of a stored export.
  const m = S.mode;
  if (m.mode === 'status' && m.count > 0) {
    m.count--;
    if (m.count === 0) S.mode = { mode: 'ok' };
    S.stats.injected++;
    const headers = m.retry_after !== undefined ? { 'retry-after': String(m.retry_after) } : {};
    log(`injected ${m.status} (${m.count} left)`);
    noteRequest(req, ct, enc, m.status, body.length, null);
    return rpcError(res, m.status, `fake-otlp injected ${m.status}`, json, headers);
  }

  const seq = ++S.seq;
  // metrics and logs (Claude Code's telemetry, relayed by Warden's gateway sign-in routes) are stored apart, so the
  // trace tests' decoding of every req-* file is untouched
  const base = `${signal === 'traces' ? 'req' : signal}-${String(seq).padStart(4, '0')}`;
  const file = `${base}.${json ? 'json' : 'pb'}`;
  fs.writeFileSync(path.join(S.opts.dir, file), body);
  const meta = noteRequest(req, ct, enc, 200, body.length, file);
  fs.writeFileSync(path.join(S.opts.dir, `${base}.headers.json`), JSON.stringify(meta, null, 1));
  S.stats.exports++;
  S.stats.bytes += body.length;
  const kind = json ? 'json' : 'protobuf';
  S.stats.by_content_type[kind] = (S.stats.by_content_type[kind] || 0) + 1;
  if (enc === 'gzip') S.stats.gzip++;
  log(`stored ${file} (${body.length} bytes${enc ? `, ${enc}` : ''})`);

  if (m.mode === 'slow' && m.delay_ms > 0) {
    await delay(m.delay_ms);
    if (res.destroyed || res.writableEnded) return;
  }
  countStatus(200);
  // an empty ExportTraceServiceResponse: no bytes in protobuf, {} in JSON
  if (json) return send(res, 200, '{}', { 'content-type': 'application/json' });
  return send(res, 200, Buffer.alloc(0), { 'content-type': 'application/x-protobuf' });
}

function noteRequest(req, ct, enc, status, bytes, file) {
  const e = {
    seq: file ? S.seq : null,
    file,
    content_type: ct,
    encoding: enc || null,
    status,
    bytes,
    headers: { ...req.headers },
    ts: Date.now(),
  };
  S.log.push(e);
  if (S.log.length > 200) S.log.splice(0, S.log.length - 200);
  return e;
}

// ---------------------------------------------------------------------------------------------------------
// Control API (/_fake/...)

export function applyMode(m) {
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new Error('mode must be a JSON object');
  const known = { ok: [], slow: ['delay_ms'], status: ['status', 'retry_after', 'count'], drop_reused: ['count'] };
  if (!Object.hasOwn(known, m.mode)) throw new Error('mode must be "ok", "slow", "status" or "drop_reused"');
  for (const k of Object.keys(m))
    if (k !== 'mode' && !known[m.mode].includes(k)) throw new Error(`unknown key ${k} for mode ${m.mode}`);
  const nat = (k, min = 0) => {
    if (m[k] !== undefined && !(Number.isInteger(m[k]) && m[k] >= min)) throw new Error(`${k} must be an integer >= ${min}`);
  };
  if (m.mode === 'slow') {
    nat('delay_ms');
    if (m.delay_ms === undefined) throw new Error('slow mode needs delay_ms');
    S.mode = { mode: 'slow', delay_ms: m.delay_ms };
  } else if (m.mode === 'status') {
    if (!(Number.isInteger(m.status) && m.status >= 400 && m.status <= 599)) throw new Error('status must be an HTTP error status');
    nat('retry_after');
    nat('count', 1);
    S.mode = { mode: 'status', status: m.status, count: m.count === undefined ? 1 : m.count };
    if (m.retry_after !== undefined) S.mode.retry_after = m.retry_after;
  } else if (m.mode === 'drop_reused') {
    nat('count', 1);
    S.mode = { mode: 'drop_reused', count: m.count === undefined ? 1 : m.count };
  } else {
    S.mode = { mode: 'ok' };
  }
  return S.mode;
}

async function handleControl(req, res, pathname) {
  const raw = (await readBody(req).catch(() => Buffer.alloc(0))).toString('utf8');
  const route = `${req.method} ${pathname}`;
  switch (route) {
    case 'GET /_fake/stats':
      return sendJson(res, 200, { ...S.stats, mode: S.mode });
    case 'GET /_fake/requests':
      return sendJson(res, 200, S.log);
    case 'POST /_fake/reset':
      S.stats = newStats();
      S.log = [];
      S.mode = { mode: 'ok' };
      return sendJson(res, 200, { ok: true });
    case 'POST /_fake/mode': {
      let m;
      try {
        m = JSON.parse(raw || 'null');
      } catch (e) {
        return sendJson(res, 400, { error: `mode is not JSON: ${e.message}` });
      }
      try {
        return sendJson(res, 200, { ok: true, mode: applyMode(m) });
      } catch (e) {
        return sendJson(res, 400, { error: e.message });
      }
    }
    default:
      return sendJson(res, 404, { error: `no control route ${route}` });
  }
}

async function handler(req, res) {
  const url = req.url || '/';
  const q = url.indexOf('?');
  const pathname = q < 0 ? url : url.slice(0, q);
  try {
    if (pathname.startsWith('/_fake/')) return await handleControl(req, res, pathname);
    if (pathname === '/v1/traces') {
      req.socket.wdRequests = (req.socket.wdRequests || 0) + 1;
      if (S.mode.mode === 'drop_reused' && req.socket.wdRequests > 1) {
        // A kept-alive connection that dies under a request: the request is read whole, then the
        // connection is closed without an answer. A client resends such a request on a new connection.
        await readBody(req).catch(() => null);
        S.stats.requests++;
        S.stats.dropped_reused++;
        if (--S.mode.count === 0) S.mode = { mode: 'ok' };
        return req.socket.destroy();
      }
      return await handleTraces(req, res);
    }
    if (pathname === '/v1/metrics' || pathname === '/v1/logs') return await handleTraces(req, res, pathname.slice(4));
    await readBody(req).catch(() => null);
    countStatus(404);
    S.stats.rejected++;
    return send(res, 404, `404 page not found: ${pathname} (fake-otlp serves POST /v1/traces)`, { 'content-type': 'text/plain' });
  } catch (e) {
    process.stderr.write(`[fake-otlp] internal error: ${e.stack}\n`);
    if (!res.headersSent) send(res, 500, `fake-otlp internal error: ${e.message}`);
    else res.destroy();
  }
}

export function main(argv) {
  const opts = parseCommandLine(argv, parseArgs, { name: 'fake_otlp', usage: USAGE });
  S.opts = opts;
  fs.mkdirSync(opts.dir, { recursive: true });
  const server = http.createServer({ keepAlive: true, requestTimeout: 0 }, handler);
  server.keepAliveTimeout = 65_000;
  rejectBadClients(server);
  serve(server, opts.port);
}

runIfMain(import.meta.url, main);
