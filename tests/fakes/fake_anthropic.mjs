#!/usr/bin/env node
// Fake Anthropic Messages API for Warden's tests: as strict as the real API (stricter in places) so that
// translation bugs in the gateway surface as 400s. Node built-ins only. See tests/fakes/README.md.
//
//   node tests/fakes/fake_anthropic.mjs --port 0 [--key K] [--auth-token T] [--lenient-signatures]
//        [--chunk-delay-ms N] [--verbose]
//
// Prints one line {"port":N} on stdout once listening on 127.0.0.1; exits 0 on SIGTERM/SIGINT.

import http from 'node:http';
import crypto from 'node:crypto';
import {
  argHelpers,
  countStatus as countIn,
  countTcpConnections,
  delay,
  parseCommandLine,
  readBody as readBodyOf,
  runIfMain,
  serve,
  splitCodePoints,
  trackApiConnection as trackConnection,
  verboseLog,
  writeJson,
} from './fake_http.mjs';
import {
  ApiError,
  MODELS,
  invalid,
  inputTokens,
  outputTokens,
  modelInfo,
  validateCreateRequest,
  validateCountTokensRequest,
} from './fake_anthropic_validate.mjs';

export { inputTokens, outputTokens, modelInfo, MODELS };

const USAGE = `usage: node fake_anthropic.mjs --port N [--key API_KEY] [--auth-token TOKEN] [--lenient-signatures]
       [--chunk-delay-ms N] [--verbose]`;

// 2026-10-21 is what the official SDK 1.x sends; 2023-06-01 is what curl examples and older clients send.
export const VERSIONS = ['2023-01-01', '2023-06-01', '2026-10-21'];

export function parseArgs(argv) {
  const o = { port: 0, key: 'test-anthropic-key', authToken: null, lenientSignatures: false, chunkDelayMs: 5, verbose: false, maxLog: 50 };
  const { need, int } = argHelpers(argv);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--port': o.port = int(need(i, a), a); i++; break;
      case '--key': o.key = need(i, a); i++; break;
      case '--auth-token': o.authToken = need(i, a); i++; break;
      case '--chunk-delay-ms': o.chunkDelayMs = int(need(i, a), a); i++; break;
      case '--lenient-signatures': o.lenientSignatures = true; break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': throw new Error('help');
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (o.port > 65535) throw new Error('--port out of range');
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// State

function newStats() {
  return {
    connections_opened: 0, // connections that carried at least one /v1 request
    connections_closed: 0,
    tcp_connections_opened: 0,
    tcp_connections_closed: 0,
    requests: 0, // /v1 requests
    aborted_streams: 0, // message responses the client closed before they finished
    streams_in_flight: 0,
    responses_by_status: {},
    signatures_issued: 0,
    answers_used: 0,
  };
}

const S = {
  opts: null,
  requests: [],
  stats: newStats(),
  faults: [],
  answers: [],
  chunkDelayMs: 5,
  signatures: new Set(),
  apiConns: new WeakSet(),
};

const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function b62(n) {
  const bytes = crypto.randomBytes(n);
  let s = '';
  for (const b of bytes) s += B62[b % 62];
  return s;
}
export const newMessageId = () => `msg_01${b62(22)}`;
export const newToolUseId = () => `toolu_01${b62(22)}`;
export const newRequestId = () => `req_011C${b62(20)}`;

// Opaque standard base64 (with "+", "/" and "=" padding, so re-encoding is caught) that the fake remembers.
function issueSignature() {
  let sig;
  do {
    sig = Buffer.concat([Buffer.from('EqQB'), crypto.randomBytes(94)]).toString('base64');
  } while (!sig.includes('+') || !sig.includes('/') || !sig.endsWith('='));
  S.signatures.add(sig);
  S.stats.signatures_issued++;
  return sig;
}

const log = verboseLog('fake-anthropic', S);

// ---------------------------------------------------------------------------------------------------------
// HTTP helpers

const countStatus = code => countIn(S.stats.responses_by_status, code);

function sendJson(res, code, obj, headers = {}, entry) {
  if (entry) entry.status = code;
  countStatus(code);
  writeJson(res, code, obj, 'application/json', headers);
}

function sendError(res, err, entry, requestId) {
  sendJson(res, err.code, err.body(requestId), { ...(requestId ? { 'request-id': requestId } : {}), ...err.headers }, entry);
}

const readBody = req =>
  readBodyOf(req, {
    limit: 32 * 1024 * 1024,
    tooLarge: () => new ApiError(413, 'request_too_large', 'Request exceeds the maximum allowed number of bytes.'),
    resumeOnLimit: true,
    rejectOnAbort: false,
  });

const trackApiConnection = req => trackConnection(S, req.socket);

// ---------------------------------------------------------------------------------------------------------
// Faults and scripted answers

const ERROR_TYPES = {
  400: ['invalid_request_error', 'Invalid request'],
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'Not found'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: ['rate_limit_error', 'This request would exceed the rate limit for your organization of 50 requests per minute.'],
  500: ['api_error', 'Internal server error'],
  503: ['api_error', 'Service unavailable'],
  504: ['timeout_error', 'Request timeout'],
  529: ['overloaded_error', 'Overloaded'],
};
const FAULT_KEYS = ['status', 'type', 'message', 'retry_after', 'should_retry', 'delay_headers_ms', 'cut_after_events', 'error_event_after', 'error_type', 'stall_after_events', 'ms', 'stop_reason'];
const STOP_REASONS = ['end_turn', 'max_tokens', 'stop_sequence', 'tool_use', 'pause_turn', 'refusal'];
const ANSWER_KEYS = ['text', 'tool_use', 'thinking', 'redacted_thinking', 'stop_reason', 'usage'];

function checkFault(f, k) {
  const p = `faults[${k}]`;
  if (f === null || typeof f !== 'object' || Array.isArray(f)) throw new Error(`${p} must be an object`);
  for (const key of Object.keys(f)) if (!FAULT_KEYS.includes(key)) throw new Error(`${p}: unknown key ${key}`);
  if (f.status !== undefined && !ERROR_TYPES[f.status]) throw new Error(`${p}.status must be one of ${Object.keys(ERROR_TYPES).join(', ')}`);
  for (const key of ['retry_after', 'delay_headers_ms', 'cut_after_events', 'error_event_after', 'stall_after_events', 'ms'])
    if (f[key] !== undefined && !(Number.isInteger(f[key]) && f[key] >= 0)) throw new Error(`${p}.${key} must be a non-negative integer`);
  if (f.stall_after_events !== undefined && f.ms === undefined) throw new Error(`${p}: stall_after_events needs ms`);
  if (f.stop_reason !== undefined && !STOP_REASONS.includes(f.stop_reason)) throw new Error(`${p}.stop_reason must be one of ${STOP_REASONS.join(', ')}`);
  if (f.error_type !== undefined && !Object.values(ERROR_TYPES).some(([t]) => t === f.error_type)) throw new Error(`${p}.error_type is not an API error type`);
}

function checkAnswer(a, k) {
  const p = `answers[${k}]`;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Error(`${p} must be an object`);
  for (const key of Object.keys(a)) if (!ANSWER_KEYS.includes(key)) throw new Error(`${p}: unknown key ${key}`);
  if (a.text !== undefined && (typeof a.text !== 'string' || a.text === '')) throw new Error(`${p}.text must be a non-empty string`);
  if (a.thinking !== undefined && typeof a.thinking !== 'string' && typeof a.thinking !== 'boolean') throw new Error(`${p}.thinking must be a string or a boolean`);
  if (a.redacted_thinking !== undefined && typeof a.redacted_thinking !== 'boolean') throw new Error(`${p}.redacted_thinking must be a boolean`);
  if (a.tool_use !== undefined) {
    const uses = Array.isArray(a.tool_use) ? a.tool_use : [a.tool_use];
    if (uses.length === 0) throw new Error(`${p}.tool_use must not be empty`);
    uses.forEach((u, j) => {
      if (!u || typeof u.name !== 'string') throw new Error(`${p}.tool_use[${j}].name must be a string`);
      for (const key of Object.keys(u)) if (!['name', 'input', 'id'].includes(key)) throw new Error(`${p}.tool_use[${j}]: unknown key ${key}`);
      if (u.input !== undefined && (u.input === null || typeof u.input !== 'object' || Array.isArray(u.input))) throw new Error(`${p}.tool_use[${j}].input must be an object`);
      if (u.id !== undefined && typeof u.id !== 'string') throw new Error(`${p}.tool_use[${j}].id must be a string`);
    });
  }
  if (a.text === undefined && a.tool_use === undefined) throw new Error(`${p} needs text or tool_use`);
  if (a.stop_reason !== undefined && !STOP_REASONS.includes(a.stop_reason)) throw new Error(`${p}.stop_reason must be one of ${STOP_REASONS.join(', ')}`);
  if (a.usage !== undefined) {
    for (const key of Object.keys(a.usage)) if (!['cache_read_input_tokens', 'cache_creation_input_tokens'].includes(key)) throw new Error(`${p}.usage: unknown key ${key}`);
  }
}

export function applyScript(s) {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new Error('script must be a JSON object');
  for (const k of Object.keys(s)) if (!['mode', 'answers', 'faults', 'append', 'chunk_delay_ms'].includes(k)) throw new Error(`unknown script key ${k}`);
  if (s.mode !== undefined && s.mode !== 'echo') throw new Error('mode must be "echo" (or leave it out)');
  if (s.faults !== undefined && !Array.isArray(s.faults)) throw new Error('faults must be an array');
  if (s.answers !== undefined && !Array.isArray(s.answers)) throw new Error('answers must be an array');
  if (s.chunk_delay_ms !== undefined && !(Number.isInteger(s.chunk_delay_ms) && s.chunk_delay_ms >= 0)) throw new Error('chunk_delay_ms must be a non-negative integer');
  (s.faults || []).forEach(checkFault);
  (s.answers || []).forEach(checkAnswer);
  if (s.mode === 'echo') {
    S.answers = [];
    S.faults = [];
  }
  if (s.faults) S.faults = s.append ? S.faults.concat(s.faults) : s.faults.slice();
  if (s.answers) S.answers = s.append ? S.answers.concat(s.answers) : s.answers.slice();
  if (s.chunk_delay_ms !== undefined) S.chunkDelayMs = s.chunk_delay_ms;
}

function lastUserText(req) {
  for (let i = req.messages.length - 1; i >= 0; i--) {
    const m = req.messages[i];
    if (m.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    for (let j = m.content.length - 1; j >= 0; j--) if (m.content[j].type === 'text') return m.content[j].text;
  }
  return '';
}

// Builds the message for a validated request. Returns {message, answerUsed}.
function buildMessage(req, v) {
  let answer = null;
  const head = S.answers[0];
  if (head && !(head.tool_use !== undefined && v.toolNames.size === 0)) answer = head;
  const content = [];
  const echo = `fake-anthropic: ${Array.from(lastUserText(req)).slice(0, 40).join('')}`;
  if (v.thinking.on && !(answer && answer.thinking === false)) {
    const t = answer && typeof answer.thinking === 'string' ? answer.thinking : `Thinking about: ${Array.from(lastUserText(req)).slice(0, 30).join('')}`;
    if (answer && answer.redacted_thinking) content.push({ type: 'redacted_thinking', data: issueSignature() });
    else content.push({ type: 'thinking', thinking: v.thinking.display === 'omitted' ? '' : t, signature: issueSignature() });
  }
  if (!answer || answer.text !== undefined) content.push({ type: 'text', text: answer ? answer.text : echo });
  if (answer && answer.tool_use !== undefined) {
    const uses = Array.isArray(answer.tool_use) ? answer.tool_use : [answer.tool_use];
    for (const u of uses) {
      if (!v.toolNames.has(u.name)) throw invalid(`fake-anthropic script: the answer calls tool ${u.name}, which the request does not declare in tools`);
      content.push({ type: 'tool_use', id: u.id || newToolUseId(), name: u.name, input: u.input || {} });
    }
  }
  const total = inputTokens(req);
  const au = (answer && answer.usage) || {};
  const cacheRead = Math.min(au.cache_read_input_tokens || 0, total);
  const cacheCreate = Math.min(au.cache_creation_input_tokens || 0, total - cacheRead);
  const stop = (answer && answer.stop_reason) || (content.some(b => b.type === 'tool_use') ? 'tool_use' : 'end_turn');
  const message = {
    id: newMessageId(),
    type: 'message',
    role: 'assistant',
    model: req.model,
    content,
    stop_reason: stop,
    stop_sequence: null,
    stop_details: null,
    usage: {
      input_tokens: total - cacheRead - cacheCreate,
      cache_creation_input_tokens: cacheCreate,
      cache_read_input_tokens: cacheRead,
      cache_creation: { ephemeral_5m_input_tokens: cacheCreate, ephemeral_1h_input_tokens: 0 },
      output_tokens: outputTokens(content),
      service_tier: 'standard',
    },
  };
  return { message, answerUsed: answer !== null };
}

const splitText = splitCodePoints;

// The SSE events for a message, as [name, data] pairs, in the real API's order.
export function streamEvents(message) {
  const ev = [];
  const start = { ...message, content: [], stop_reason: null, stop_sequence: null, stop_details: null, usage: { ...message.usage, output_tokens: 1 } };
  ev.push(['message_start', { type: 'message_start', message: start }]);
  message.content.forEach((b, index) => {
    if (b.type === 'text') {
      ev.push(['content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }]);
      if (index === 0) ev.push(['ping', { type: 'ping' }]);
      for (const t of splitText(b.text, 3)) ev.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } }]);
    } else if (b.type === 'thinking') {
      ev.push(['content_block_start', { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } }]);
      if (index === 0) ev.push(['ping', { type: 'ping' }]);
      if (b.thinking) for (const t of splitText(b.thinking, 2)) ev.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: t } }]);
      ev.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: b.signature } }]);
    } else if (b.type === 'redacted_thinking') {
      ev.push(['content_block_start', { type: 'content_block_start', index, content_block: { type: 'redacted_thinking', data: b.data } }]);
      if (index === 0) ev.push(['ping', { type: 'ping' }]);
    } else if (b.type === 'tool_use') {
      ev.push(['content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } }]);
      if (index === 0) ev.push(['ping', { type: 'ping' }]);
      ev.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } }]);
      const js = JSON.stringify(b.input);
      if (js !== '{}') for (const t of splitText(js, 3)) ev.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: t } }]);
    }
    ev.push(['content_block_stop', { type: 'content_block_stop', index }]);
  });
  const u = message.usage;
  ev.push([
    'message_delta',
    {
      type: 'message_delta',
      delta: { stop_reason: message.stop_reason, stop_sequence: message.stop_sequence, stop_details: null },
      usage: { input_tokens: u.input_tokens, cache_creation_input_tokens: u.cache_creation_input_tokens, cache_read_input_tokens: u.cache_read_input_tokens, output_tokens: u.output_tokens },
    },
  ]);
  ev.push(['message_stop', { type: 'message_stop' }]);
  return ev;
}

const sse = ([name, data]) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

// ---------------------------------------------------------------------------------------------------------
// Handlers

// The API key goes in x-api-key (the documented header) or as "Authorization: Bearer <key>" (what the
// official SDK 1.x sends). A bearer token that is not the API key is an OAuth token: accepted only when it is
// --auth-token and anthropic-beta carries oauth-2025-04-20. Returns [error, how] where how names the header used.
function checkAuth(req) {
  const key = req.headers['x-api-key'];
  const auth = req.headers['authorization'];
  if (key !== undefined) {
    if (key !== S.opts.key) return [new ApiError(401, 'authentication_error', 'invalid x-api-key'), null];
    return [null, 'x-api-key'];
  }
  if (auth !== undefined) {
    const m = /^Bearer (.+)$/.exec(auth);
    if (m && m[1] === S.opts.key) return [null, 'bearer'];
    const betas = (req.headers['anthropic-beta'] || '').split(',').map(s => s.trim());
    if (!m || !S.opts.authToken || !betas.includes('oauth-2025-04-20')) return [new ApiError(401, 'authentication_error', 'OAuth authentication is currently not supported.'), null];
    if (m[1] !== S.opts.authToken) return [new ApiError(401, 'authentication_error', 'Invalid bearer token'), null];
    return [null, 'oauth'];
  }
  return [new ApiError(401, 'authentication_error', 'x-api-key header is required'), null];
}

function checkVersion(req) {
  const v = req.headers['anthropic-version'];
  if (v === undefined) return invalid('anthropic-version: header is required');
  if (!VERSIONS.includes(v)) return invalid(`anthropic-version: "${v}" is not a valid version`);
  return null;
}

function faultError(f) {
  const [type, message] = ERROR_TYPES[f.status];
  const headers = {};
  if (f.retry_after !== undefined) headers['retry-after'] = String(f.retry_after);
  if (f.status === 429) {
    headers['anthropic-ratelimit-requests-limit'] = '50';
    headers['anthropic-ratelimit-requests-remaining'] = '0';
    headers['anthropic-ratelimit-requests-reset'] = new Date(Date.now() + 1000 * (f.retry_after || 1)).toISOString();
  }
  if (f.should_retry !== undefined) headers['x-should-retry'] = String(!!f.should_retry);
  return new ApiError(f.status, f.type || type, f.message || message, headers);
}

// The anthropic-beta header's names (one header with commas, or several headers).
function betasOf(req) {
  const h = req.headers['anthropic-beta'];
  return new Set((Array.isArray(h) ? h.join(',') : h || '').split(',').map(x => x.trim()).filter(Boolean));
}

async function handleCreate(req, res, body, entry, requestId) {
  const v = validateCreateRequest(body, { signatures: S.signatures, checkSignatures: !S.opts.lenientSignatures,
                                          betas: betasOf(req) });
  const fault = S.faults.length ? S.faults.shift() : {};
  if (fault.delay_headers_ms) await delay(fault.delay_headers_ms);
  if (fault.status) throw faultError(fault);
  const { message, answerUsed } = buildMessage(body, v);
  if (fault.stop_reason) message.stop_reason = fault.stop_reason;
  const done = () => {
    if (answerUsed) {
      S.answers.shift();
      S.stats.answers_used++;
    }
  };
  let finished = false;
  let cut = false;
  S.stats.streams_in_flight++;
  res.on('close', () => {
    S.stats.streams_in_flight--;
    if (!finished && !cut) S.stats.aborted_streams++;
  });
  const headers = { 'request-id': requestId };
  if (!body.stream) {
    const buf = Buffer.from(JSON.stringify(message));
    entry.status = 200;
    countStatus(200);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': buf.length, ...headers });
    if (fault.cut_after_events !== undefined) {
      res.write(buf.subarray(0, buf.length >> 1));
      await delay(20);
      cut = true;
      res.destroy();
      return;
    }
    if (fault.stall_after_events !== undefined) {
      res.write(buf.subarray(0, buf.length >> 1));
      await delay(fault.ms);
      if (res.destroyed) return;
      res.write(buf.subarray(buf.length >> 1));
    } else res.write(buf);
    finished = true;
    res.end();
    done();
    return;
  }
  entry.status = 200;
  countStatus(200);
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', ...headers });
  const events = streamEvents(message);
  for (let i = 0; i < events.length; i++) {
    if (res.destroyed) return;
    if (fault.cut_after_events !== undefined && i === fault.cut_after_events) {
      await delay(20);
      cut = true;
      res.destroy();
      return;
    }
    if (fault.error_event_after !== undefined && i === fault.error_event_after) {
      const t = fault.error_type || 'overloaded_error';
      const msg = Object.values(ERROR_TYPES).find(([ty]) => ty === t)[1];
      res.write(sse(['error', { type: 'error', error: { type: t, message: msg } }]));
      finished = true;
      res.end();
      return;
    }
    if (fault.stall_after_events !== undefined && i === fault.stall_after_events) await delay(fault.ms);
    res.write(sse(events[i]));
    if (i + 1 < events.length) await delay(S.chunkDelayMs);
  }
  finished = true;
  res.end();
  done();
}

function modelObject(m) {
  return { type: 'model', id: m.id, display_name: m.display, created_at: m.created };
}

async function handleApi(req, res, url) {
  S.stats.requests++;
  trackApiConnection(req);
  const requestId = newRequestId();
  const entry = {
    method: req.method,
    path: url.pathname + url.search,
    headers: { ...req.headers },
    beta: (req.headers['anthropic-beta'] || '').split(',').map(s => s.trim()).filter(Boolean),
    body: null,
    ts: Date.now(),
    status: null,
    auth: null,
    version: req.headers['anthropic-version'] || null,
    request_id: requestId,
  };
  S.requests.push(entry);
  if (S.requests.length > S.opts.maxLog) S.requests.shift();
  try {
    const raw = req.method === 'POST' ? await readBody(req) : '';
    if (raw) {
      try {
        entry.body = JSON.parse(raw);
      } catch {
        entry.body = raw;
      }
    }
    const [authErr, how] = checkAuth(req);
    entry.auth = how;
    if (authErr) throw authErr;
    const verErr = checkVersion(req);
    if (verErr) throw verErr;
    for (const k of url.searchParams.keys()) if (k !== 'beta' && k !== 'limit' && k !== 'after_id' && k !== 'before_id') throw invalid(`${k}: Extra inputs are not permitted`);
    const p = url.pathname;
    if (p === '/v1/models' && req.method === 'GET') {
      const data = MODELS.map(modelObject);
      return sendJson(res, 200, { data, has_more: false, first_id: data[0].id, last_id: data[data.length - 1].id }, { 'request-id': requestId }, entry);
    }
    const mm = /^\/v1\/models\/([^/]+)$/.exec(p);
    if (mm && req.method === 'GET') {
      const info = modelInfo(decodeURIComponent(mm[1]));
      if (!info) throw new ApiError(404, 'not_found_error', `model: ${decodeURIComponent(mm[1])}`);
      return sendJson(res, 200, modelObject(info), { 'request-id': requestId }, entry);
    }
    if ((p === '/v1/messages' || p === '/v1/messages/count_tokens') && req.method !== 'POST')
      throw new ApiError(405, 'invalid_request_error', `Method Not Allowed`);
    if (p === '/v1/messages' || p === '/v1/messages/count_tokens') {
      const ct = req.headers['content-type'] || '';
      if (!/^application\/json\b/i.test(ct)) throw invalid('Content-Type must be application/json');
      if (typeof entry.body === 'string' || entry.body === null)
        throw invalid('There was an error parsing the body of your request. Please ensure it is valid JSON.');
      if (p === '/v1/messages/count_tokens') {
        validateCountTokensRequest(entry.body, { signatures: S.signatures, betas: betasOf(req) });
        return sendJson(res, 200, { input_tokens: inputTokens(entry.body) }, { 'request-id': requestId }, entry);
      }
      return await handleCreate(req, res, entry.body, entry, requestId);
    }
    throw new ApiError(404, 'not_found_error', 'Not Found');
  } catch (e) {
    if (!(e instanceof ApiError)) {
      log('internal', e && e.stack);
      e = new ApiError(500, 'api_error', 'Internal server error');
    }
    if (res.headersSent) return res.destroy();
    sendError(res, e, entry, requestId);
  }
}

async function handleControl(req, res, url) {
  const p = url.pathname;
  const ok = obj => writeJson(res, 200, obj, 'application/json');
  const bad = msg => writeJson(res, 400, { error: msg }, 'application/json');
  const raw = req.method === 'POST' ? await readBody(req).catch(() => '') : '';
  if (p === '/_fake/requests' && req.method === 'GET') return ok(S.requests);
  if (p === '/_fake/stats' && req.method === 'GET') return ok(S.stats);
  if (p === '/_fake/state' && req.method === 'GET')
    return ok({ faults: S.faults, answers: S.answers, chunk_delay_ms: S.chunkDelayMs, signatures: S.signatures.size });
  if (p === '/_fake/reset' && req.method === 'POST') {
    S.requests = [];
    S.stats = newStats();
    S.faults = [];
    S.answers = [];
    S.chunkDelayMs = S.opts.chunkDelayMs;
    if (url.searchParams.get('signatures') === '1') S.signatures.clear();
    return ok({ ok: true });
  }
  if (p === '/_fake/script' && req.method === 'POST') {
    let s;
    try {
      s = JSON.parse(raw || 'null');
      applyScript(s);
    } catch (e) {
      return bad(e.message);
    }
    return ok({ ok: true, faults: S.faults.length, answers: S.answers.length });
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: `no control endpoint ${req.method} ${p}` }));
}

function onRequest(req, res) {
  let url;
  try {
    url = new URL(req.url, 'http://127.0.0.1');
  } catch {
    res.writeHead(400);
    return res.end();
  }
  if (url.pathname.startsWith('/_fake/')) return handleControl(req, res, url).catch(e => res.destroy(e));
  return handleApi(req, res, url).catch(e => res.destroy(e));
}

export async function main(argv) {
  const opts = parseCommandLine(argv, parseArgs, { name: 'fake_anthropic', usage: USAGE, helpExit: 0 });
  S.opts = opts;
  S.chunkDelayMs = opts.chunkDelayMs;
  const server = http.createServer({ keepAliveTimeout: 65_000 }, onRequest);
  countTcpConnections(server, S);
  serve(server, opts.port, { closeAll: true });
}

runIfMain(import.meta.url, main);
