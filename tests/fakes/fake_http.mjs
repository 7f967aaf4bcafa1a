// Server plumbing shared by the fakes in tests/fakes (fake_anthropic, fake_openai, fake_gemini): argument
// helpers, body reading, JSON sending, connection counting, control-file polling, start-up on 127.0.0.1 with
// the {"port":N} line and SIGTERM/SIGINT handling. Node built-ins only. See tests/fakes/README.md.

import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

export const delay = ms => (ms > 0 ? new Promise(r => setTimeout(r, ms)) : Promise.resolve());

// A logger that writes "[tag] ..." to stderr when the fake runs with --verbose (S.opts.verbose).
export const verboseLog = (tag, S) => (...a) => S.opts && S.opts.verbose && process.stderr.write(`[${tag}] ${a.join(' ')}\n`);

// For a command line parser: need(i, name) is the value after argv[i]; int(v, name) a non-negative integer.
export function argHelpers(argv) {
  const need = (i, name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
    return argv[i + 1];
  };
  const int = (v, name) => {
    if (!/^\d+$/.test(v)) throw new Error(`${name} needs a non-negative integer, got ${v}`);
    return parseInt(v, 10);
  };
  return { need, int };
}

// Parses the command line with parseArgs; on an error (or -h) prints "<name>: <error>" and the usage and
// exits 2 (0 for -h when helpExit says so).
export function parseCommandLine(argv, parseArgs, { name, usage, helpExit = 2 }) {
  try {
    return parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${e.message === 'help' ? '' : `${name}: ${e.message}\n`}${usage}\n`);
    process.exit(e.message === 'help' ? helpExit : 2);
  }
}

// Runs main(argv) when the module is the program (not when a test imports it).
export function runIfMain(moduleUrl, main) {
  if (process.argv[1] && moduleUrl === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
}

export function countStatus(byStatus, code) {
  byStatus[code] = (byStatus[code] || 0) + 1;
}

// Writes obj as a JSON response with a content-length.
export function writeJson(res, code, obj, contentType, headers = {}) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(code, { 'content-type': contentType, 'content-length': body.length, ...headers });
  res.end(body);
}

// The request body as a string. Past limit bytes it rejects with tooLarge(limit) and destroys the request
// (or, with resumeOnLimit, drains it); with rejectOnAbort an aborted request rejects with Error('aborted').
export function readBody(req, { limit, tooLarge, resumeOnLimit = false, rejectOnAbort = true }) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', c => {
      n += c.length;
      if (n > limit) {
        reject(tooLarge(limit));
        if (resumeOnLimit) req.resume();
        else req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    if (rejectOnAbort) req.on('aborted', () => reject(new Error('aborted')));
  });
}

// Counts key (a socket or an HTTP/2 session) once in S.stats.connections_opened, and its close.
export function trackApiConnection(S, key) {
  if (!key || S.apiConns.has(key)) return;
  S.apiConns.add(key);
  S.stats.connections_opened++;
  key.once('close', () => S.stats.connections_closed++);
}

// Counts every accepted TCP connection in S.stats (read at the time: a reset replaces S.stats).
export function countTcpConnections(server, S) {
  server.on('connection', sock => {
    S.stats.tcp_connections_opened++;
    sock.once('close', () => S.stats.tcp_connections_closed++);
  });
}

// Answers a request Node cannot parse with a bare 400 and closes the connection.
export function rejectBadClients(server) {
  server.on('clientError', (err, sock) => {
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });
}

export const announcePort = port => process.stdout.write(`${JSON.stringify({ port })}\n`);

// Listens on 127.0.0.1:port, then calls onListening(port) (by default prints the {"port":N} line); exits 0 on
// SIGTERM/SIGINT (closing the open connections first with closeAll).
export function serve(server, port, { onListening = announcePort, closeAll = false } = {}) {
  server.listen(port, '127.0.0.1', () => onListening(server.address().port));
  const stop = () => {
    server.close();
    if (closeAll) server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}

// Applies the JSON script in file now and whenever it changes (polled every 50 ms); an empty file is no
// script, a bad one is reported on stderr as "[tag] control file F: ...".
export function watchControlFile(file, applyScript, { tag, log }) {
  let last = null;
  const load = () => {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return; // absent (yet)
    }
    if (text === last) return;
    last = text;
    if (text.trim() === '') return;
    try {
      applyScript(JSON.parse(text));
      log(`control file ${file} applied`);
    } catch (e) {
      process.stderr.write(`[${tag}] control file ${file}: ${e.message}\n`);
    }
  };
  load();
  fs.watchFile(file, { interval: 50 }, load);
}

// Splits a request target into its path and its query.
export function splitUrl(url) {
  const q = url.indexOf('?');
  return { pathname: q < 0 ? url : url.slice(0, q), query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)) };
}

// A request handler that sends /_fake/... to control(req, res, pathname, query) and the rest to
// api(req, res, pathname, query, url); an exception is logged as "[tag] internal error" and answered with
// internalError(res, e) (or the stream destroyed, once headers went out).
export function fakeHandler({ tag, control, api, internalError }) {
  return async function handler(req, res) {
    const url = req.url || '/';
    const { pathname, query } = splitUrl(url);
    try {
      if (pathname.startsWith('/_fake/')) return await control(req, res, pathname, query);
      return await api(req, res, pathname, query, url);
    } catch (e) {
      process.stderr.write(`[${tag}] internal error: ${e.stack}\n`);
      if (!res.headersSent) internalError(res, e);
      else res.destroy();
    }
  };
}

// Counts a response in S.stats.streams_in_flight while it runs and in aborted_streams when the client closed
// it before it finished (and the fake did not cut it: set ctx.cutByUs). Returns ctx {closed, finished, cutByUs}.
export function trackResponse(res, S) {
  const ctx = { closed: false, finished: false, cutByUs: false };
  S.stats.streams_in_flight++;
  res.on('finish', () => {
    ctx.finished = true;
  });
  res.on('close', () => {
    ctx.closed = true;
    S.stats.streams_in_flight--;
    if (!ctx.finished && !ctx.cutByUs) S.stats.aborted_streams++;
  });
  return ctx;
}

// A stream fault's chunk indices (-1: none): the malformed chunk (at most the last), the cut and the stall.
export function chunkFaults(fault, nChunks) {
  const at = k => (fault && fault[k] !== undefined ? fault[k] : -1);
  return {
    malformedAt: fault && fault.malformed_chunk_at !== undefined ? Math.min(fault.malformed_chunk_at, nChunks - 1) : -1,
    cutAfter: at('cut_after_chunks'),
    stallAfter: at('stall_after_chunks'),
  };
}

// Ends a non-stream response with buf under a fault's cut_after_chunks (the first half, then cut()) or
// stall_after_chunks (the two halves fault.ms apart); without them, whole.
export async function endWithFault(res, buf, fault, ctx, cut) {
  if (!fault || (fault.cut_after_chunks === undefined && fault.stall_after_chunks === undefined)) return void res.end(buf);
  const half = Math.floor(buf.length / 2);
  if (fault.cut_after_chunks !== undefined) {
    // cut only once the headers and the first half reached the socket: a connection closed before any
    // response byte looks like a dead keep-alive connection, which the client may silently retry
    res.write(buf.subarray(0, half), () => cut());
    return;
  }
  res.write(buf.subarray(0, half));
  await delay(fault.ms);
  if (ctx.closed) return;
  res.end(buf.subarray(half));
}

// Streams chunks (objects) chunkDelayMs() apart with write(i, json) (awaited when it returns a promise), then
// end(), under the fault's malformed_chunk_at (that chunk is "{not json"), stall_after_chunks (fault.ms
// before that chunk, or before the end) and cut_after_chunks (cut() instead of that chunk, or of the end).
// Stops when the client closed the response (ctx.closed).
export async function streamWithFault(chunks, fault, ctx, { chunkDelayMs, cut, write, end }) {
  const { malformedAt, cutAfter, stallAfter } = chunkFaults(fault, chunks.length);
  for (let i = 0; i < chunks.length; i++) {
    if (i > 0) await delay(chunkDelayMs());
    if (i === stallAfter) await delay(fault.ms);
    if (ctx.closed) return;
    if (i === cutAfter) return cut();
    const p = write(i, i === malformedAt ? '{not json' : JSON.stringify(chunks[i]));
    if (p) await p;
  }
  if (stallAfter >= chunks.length) await delay(fault.ms);
  if (ctx.closed) return;
  if (cutAfter >= chunks.length) return cut();
  end();
}

// Splits s into about n pieces, by code points (never half a surrogate pair); [''] for ''.
export function splitCodePoints(s, n) {
  const cps = Array.from(s);
  const size = Math.max(1, Math.ceil(cps.length / n));
  const out = [];
  for (let i = 0; i < cps.length; i += size) out.push(cps.slice(i, i + size).join(''));
  return out.length ? out : [''];
}

// A control call's script (the body text raw) parsed and handed to applyScript: null when applied, else the
// error message ("script is not JSON: ..." or what applyScript threw).
export function applyScriptText(raw, applyScript) {
  let s;
  try {
    s = JSON.parse(raw || 'null');
  } catch (e) {
    return `script is not JSON: ${e.message}`;
  }
  try {
    applyScript(s);
  } catch (e) {
    return e.message;
  }
  return null;
}
