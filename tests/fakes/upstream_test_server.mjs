// Misbehaving HTTP servers for tests/integration/upstream_check.c: an HTTP/1.1 server that delays,
// stalls, cuts and streams on command, and a TLS HTTP/2 server (ALPN h2, HTTP/1.1 fallback).
// Usage: node upstream_test_server.mjs [CERT_DIR]; prints {"http":PORT,"https":PORT} once listening.
// Binds 127.0.0.1 only; exits when stdin closes (the parent went away) or after two minutes.
import http from 'node:http';
import http2 from 'node:http2';
import fs from 'node:fs';
import path from 'node:path';

const certDir = process.argv[2] || '';
const LIFETIME_MS = 120000;
setTimeout(() => process.exit(3), LIFETIME_MS).unref();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

// FNV-1a 32 over the request body: the check computes the same to prove the body arrived intact.
function fnv1a(buf) {
  let h = 0x811c9dc5;
  for (const b of buf) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

let nextConn = 0;
let resetPosts = 0; // requests /reset-reused received
const closed = new Map(); // stream id (?id= on /endless, /delay-headers) -> 'open' | 'closed'

function readBody(req) {
  return new Promise((resolve) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', () => resolve(Buffer.concat(parts)));
  });
}

function plain(res, status, body, extra = {}) {
  const h = { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) };
  res.writeHead(status, { ...h, ...extra });
  res.end(body);
}

const h1 = http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  const q = (k) => u.searchParams.get(k);
  const sock = req.socket;
  sock.on('error', () => {});
  res.on('error', () => {});
  switch (u.pathname) {
  case '/t1': {
    // Reports what it received, then streams the rest with pauses so the check can see that
    // pieces are delivered as they arrive.
    const body = await readBody(req);
    const seen = `seen method=${req.method} ct=${req.headers['content-type'] || 'none'}` +
      ` xtest=${req.headers['x-test'] || 'none'} expect=${req.headers['expect'] || 'none'}` +
      ` len=${body.length} fnv=${fnv1a(body)} ver=${req.httpVersion}\n`;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(seen);
    setTimeout(() => {
      res.write('part2\n');
      setTimeout(() => res.end(`last sent_at=${Date.now()}\n`), 200);
    }, 200);
    return;
  }
  case '/conn':
    await readBody(req);
    return plain(res, 200, `conn=${sock.wdConn}`);
  case '/reset-reused':
    // Read whole, then: on a connection that already served a request, a TCP reset instead of an answer
    // (the provider saw the request; the client cannot know). /reset-count says how many arrived.
    await readBody(req);
    resetPosts++;
    if (sock.wdServed) return sock.resetAndDestroy();
    sock.wdServed = true;
    return plain(res, 200, `conn=${sock.wdConn}`);
  case '/reset-count':
    return plain(res, 200, String(resetPosts), { connection: 'close' });
  case '/conn-idle-close':
    // Answers on a kept-alive connection, then closes it while it sits idle in the client's cache.
    res.on('finish', () => setTimeout(() => sock.destroy(), Number(q('ms') || 30)));
    return plain(res, 200, `conn=${sock.wdConn}`);
  case '/slow':
    return setTimeout(() => plain(res, 200, `id=${q('id')}`), Number(q('ms') || 100));
  case '/delay-headers': {
    const id = q('id');
    if (id) closed.set(id, 'open');
    const t = setTimeout(() => plain(res, 200, 'late'), Number(q('ms') || 3000));
    sock.on('close', () => { clearTimeout(t); if (id) closed.set(id, 'closed'); });
    return;
  }
  case '/stall-body': {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('a');
    const t1 = setTimeout(() => res.write('b'), 100);
    const t2 = setTimeout(() => res.end('c'), 10000);
    sock.on('close', () => { clearTimeout(t1); clearTimeout(t2); });
    return;
  }
  case '/cut':
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 100000 });
    res.write(Buffer.alloc(1000, 0x41));
    return setTimeout(() => sock.destroy(), 50);
  case '/endless': {
    // Streams until the client goes away; /closed reports whether this server saw it go.
    const id = q('id');
    closed.set(id, 'open');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let n = 0;
    const iv = setInterval(() => res.write(`data: ${n++}\n\n`), 50);
    const stop = setTimeout(() => { clearInterval(iv); res.end(); }, 20000);
    sock.on('close', () => { clearInterval(iv); clearTimeout(stop); closed.set(id, 'closed'); });
    res.write('data: start\n\n');
    return;
  }
  case '/closed':
    return plain(res, 200, closed.get(q('id')) || 'unknown', { connection: 'close' });
  case '/retry-after': {
    const v = q('v');
    const h = { 'content-type': 'application/json' };
    if (v !== null) h['retry-after'] = v === 'date30' ? new Date(Date.now() + 30000).toUTCString() : v;
    // An interim 103 with its own Retry-After: the client must report the final response only.
    if (q('hints')) res.writeEarlyHints({ link: '</style.css>; rel=preload', 'retry-after': '99' });
    res.writeHead(429, { ...h, 'content-length': 2 });
    return res.end('{}');
  }
  case '/no-body':
    await readBody(req);
    res.writeHead(204);
    return res.end();
  default:
    return plain(res, 404, 'no such test endpoint');
  }
});
h1.on('connection', (s) => { s.wdConn = ++nextConn; });
h1.keepAliveTimeout = 30000;

let tlsConns = 0;
let waiting = [];
function onSecure(req, res) {
  const u = new URL(req.url, 'https://x');
  const remote = req.socket.remotePort;
  if (u.pathname === '/h2/barrier') {
    // Answers only when n requests are in flight at once: proves the streams were concurrent.
    const n = Number(u.searchParams.get('n') || 5);
    const entry = { res, remote, proto: req.httpVersion };
    waiting.push(entry);
    const flush = (concurrent) => {
      const batch = waiting;
      waiting = [];
      for (const w of batch) {
        const b = `proto=${w.proto} concurrent=${concurrent} conns=${tlsConns} remote=${w.remote}`;
        w.res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(b) });
        w.res.end(b);
      }
    };
    if (waiting.length >= n) return flush('yes');
    entry.timer = setTimeout(() => { if (waiting.includes(entry)) flush('no'); }, 3000);
    return;
  }
  if (u.pathname === '/h2/endless') {
    // As /endless, per stream: 'close' fires when the client resets the stream or drops the connection.
    const id = u.searchParams.get('id');
    closed.set(id, 'open');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: start\n\n');
    let n = 0;
    const iv = setInterval(() => res.write(`data: ${n++}\n\n`), 50);
    const stop = setTimeout(() => { clearInterval(iv); res.end(); }, 20000);
    res.on('error', () => {});
    res.on('close', () => { clearInterval(iv); clearTimeout(stop); closed.set(id, 'closed'); });
    return;
  }
  if (u.pathname === '/h2/echo') {
    // What arrived of a request body, for a POST over HTTP/2.
    return readBody(req).then((body) => {
      const b = `proto=${req.httpVersion} method=${req.method} len=${body.length} fnv=${fnv1a(body)}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(b) });
      res.end(b);
    });
  }
  if (u.pathname === '/h2/slow') {
    const ms = Number(u.searchParams.get('ms') || 300);
    return setTimeout(() => {
      const b = `proto=${req.httpVersion} remote=${remote}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(b) });
      res.end(b);
    }, ms);
  }
  const b = `proto=${req.httpVersion} conns=${tlsConns} remote=${remote}`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(b) });
  res.end(b);
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

const httpPort = await listen(h1);
let httpsPort = 0;
const keyFile = path.join(certDir, 'server.key');
if (certDir && fs.existsSync(keyFile)) {
  const h2 = http2.createSecureServer({
    key: fs.readFileSync(keyFile),
    cert: fs.readFileSync(path.join(certDir, 'server.pem')),
    allowHTTP1: true,
  }, onSecure);
  h2.on('secureConnection', () => { tlsConns++; });
  h2.on('sessionError', () => {});
  h2.on('tlsClientError', () => {});
  httpsPort = await listen(h2);
}
process.stdout.write(JSON.stringify({ http: httpPort, https: httpsPort }) + '\n');
