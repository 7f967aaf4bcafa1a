#!/usr/bin/env node
// Fake Google Gemini API (v1beta) for Warden's tests: as strict as the real API (stricter in places) so
// that translation bugs in the gateway surface as 400s. Node built-ins only. See tests/fakes/README.md.
//
//   node tests/fakes/fake_gemini.mjs --port 0 [--tls-cert C --tls-key K] [--control-file F] [--key K]
//        [--lenient-signatures] [--chunk-delay-ms N] [--bench [--workers N]] [--verbose]
//
// Prints one line {"port":N} on stdout once listening on 127.0.0.1; exits on SIGTERM/SIGINT.

import http from 'node:http';
import http2 from 'node:http2';
import fs from 'node:fs';
import crypto from 'node:crypto';
import cluster from 'node:cluster';
import {
  announcePort,
  applyScriptText,
  argHelpers,
  countStatus as countIn,
  countTcpConnections,
  delay,
  endWithFault,
  fakeHandler,
  parseCommandLine,
  readBody as readBodyOf,
  rejectBadClients,
  runIfMain,
  serve,
  splitUrl,
  streamWithFault,
  trackApiConnection as trackConnection,
  trackResponse,
  verboseLog,
  watchControlFile,
  writeJson,
} from './fake_http.mjs';
import { checkChunkFault, checkStep as checkAgentStep, checkModeStepsFaults } from './fake_script.mjs';
import {
  ApiError,
  STATUS_NAMES,
  FUNCTION_NAME_RE,
  MODEL_NAME_RE,
  badRequest,
  modelInfo,
  promptTokens,
  textTokens,
  validateGenerateRequest,
  validateCountTokensRequest,
} from './fake_gemini_validate.mjs';

export { promptTokens, textTokens, modelInfo };

const USAGE = `usage: node fake_gemini.mjs --port N [--tls-cert FILE --tls-key FILE] [--control-file FILE]
       [--key API_KEY] [--lenient-signatures] [--chunk-delay-ms N] [--bench [--workers N]] [--verbose]`;

export function parseArgs(argv) {
  const o = {
    port: 0,
    tlsCert: null,
    tlsKey: null,
    controlFile: null,
    key: 'test-gemini-key',
    lenientSignatures: false,
    chunkDelayMs: 5,
    bench: false,
    workers: 1,
    verbose: false,
    maxLog: 50,
  };
  const { need, int } = argHelpers(argv);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--port': o.port = int(need(i, a), a); i++; break;
      case '--tls-cert': o.tlsCert = need(i, a); i++; break;
      case '--tls-key': o.tlsKey = need(i, a); i++; break;
      case '--control-file': o.controlFile = need(i, a); i++; break;
      case '--key': o.key = need(i, a); i++; break;
      case '--chunk-delay-ms': o.chunkDelayMs = int(need(i, a), a); i++; break;
      case '--workers': o.workers = int(need(i, a), a); i++; break;
      case '--lenient-signatures': o.lenientSignatures = true; break;
      case '--bench': o.bench = true; break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': throw new Error('help');
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!!o.tlsCert !== !!o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  if (o.port > 65535) throw new Error('--port out of range');
  if (o.workers < 1) throw new Error('--workers must be >= 1');
  if (o.workers > 1 && !o.bench) throw new Error('--workers needs --bench (state is per process)');
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// State

function newStats() {
  return {
    connections_opened: 0, // connections that carried at least one /v1beta request
    connections_closed: 0,
    tcp_connections_opened: 0, // every accepted TCP connection (also the tests' own /_fake calls)
    tcp_connections_closed: 0,
    requests: 0, // /v1beta requests (not /_fake)
    aborted_streams: 0, // generate/stream responses the client closed before they finished
    streams_in_flight: 0, // generate/stream responses being produced right now
    responses_by_status: {},
    signatures_issued: 0,
  };
}

const S = {
  opts: null,
  requests: [],
  stats: newStats(),
  faults: [],
  agent: null, // {steps, k, log}
  chunkDelayMs: 5,
  // Where a text answer's turn signature goes, as Gemini 3 does for a response without a function call:
  // null (none), 'last_part' (on the last text part), 'empty_part' (on an extra empty-text part at the end,
  // in a stream the last chunk's)
  textSignature: null,
  signatures: new Map(), // signature -> {kind, name}
  apiConns: new WeakSet(),
};

// 1 version byte + 48 random bytes = 49 bytes: standard base64 always ends in "==", and we redraw until
// it also contains "+" and "/", so a gateway that mangles any of them is caught.
function issueSignature(kind, name) {
  let sig;
  do {
    sig = Buffer.concat([Buffer.from([0x01]), crypto.randomBytes(48)]).toString('base64');
  } while (!sig.includes('+') || !sig.includes('/'));
  S.signatures.set(sig, { kind, name });
  S.stats.signatures_issued++;
  return sig;
}

const log = verboseLog('fake-gemini', S);

// ---------------------------------------------------------------------------------------------------------
// HTTP helpers

function isH2(req) {
  return req.httpVersionMajor === 2;
}

const countStatus = code => countIn(S.stats.responses_by_status, code);

function sendJson(res, code, obj, headers = {}, entry) {
  if (entry) entry.status = code;
  countStatus(code);
  writeJson(res, code, obj, 'application/json; charset=UTF-8', headers);
}

function sendError(res, err, entry) {
  sendJson(res, err.code, err.body(), err.headers || {}, entry);
}

const readBody = req => readBodyOf(req, { limit: 64 * 1024 * 1024, tooLarge: limit => new ApiError(413, `Request payload size exceeds the limit: ${limit} bytes.`) });

function cleanHeaders(h) {
  const o = {};
  for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) o[k] = v;
  return o;
}

const trackApiConnection = req => trackConnection(S, isH2(req) ? req.stream.session : req.socket);

// ---------------------------------------------------------------------------------------------------------
// Models list

const MODELS = [
  ['gemini-2.5-pro', 'Gemini 2.5 Pro', 65536],
  ['gemini-2.5-flash', 'Gemini 2.5 Flash', 65536],
  ['gemini-2.5-flash-lite', 'Gemini 2.5 Flash-Lite', 65536],
  ['gemini-2.0-flash', 'Gemini 2.0 Flash', 8192],
  ['gemini-3-pro-preview', 'Gemini 3 Pro Preview', 65536],
  ['gemini-3-flash-preview', 'Gemini 3 Flash Preview', 65536],
];

function modelResource(id, display) {
  const info = modelInfo(id);
  return {
    name: `models/${id}`,
    version: String(info.version),
    displayName: display || id,
    description: `Fake ${display || id} served by fake_gemini.mjs`,
    inputTokenLimit: 1048576,
    outputTokenLimit: info.maxOutputTokens,
    supportedGenerationMethods: ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'],
    temperature: 1,
    topP: 0.95,
    topK: 64,
    maxTemperature: 2,
    thinking: info.thinking,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Answers

function lastUserText(contents) {
  for (let i = contents.length - 1; i >= 0; i--) {
    const c = contents[i];
    if (c.role !== 'user') continue;
    for (let j = c.parts.length - 1; j >= 0; j--) if (typeof c.parts[j].text === 'string') return c.parts[j].text;
  }
  return '';
}

const firstChars = (s, n) => Array.from(s).slice(0, n).join(''); // code points, never half a surrogate pair

function hasFunctionDecls(body) {
  return (body.tools || []).some(t => (t.functionDeclarations || []).length > 0);
}

function thinkingOf(body) {
  const tc = body.generationConfig && body.generationConfig.thinkingConfig;
  if (!tc) return { thinks: false, include: false };
  return { thinks: tc.thinkingBudget !== 0 || tc.includeThoughts === true, include: tc.includeThoughts === true };
}

// A plan: segments [{kind:'thought'|'text'|'call', ...}] plus token counts.
function buildPlan(body, seed, answer) {
  const { thinks, include } = thinkingOf(body);
  const segments = [];
  let thoughtsTokens = 0;
  if (thinks) {
    const thought = `fake-gemini thought: the user said "${firstChars(seed, 40)}"; decide what to answer.`;
    thoughtsTokens = textTokens(thought);
    if (include) segments.push({ kind: 'thought', text: thought, sig: issueSignature('thought', null) });
  }
  let candidatesTokens;
  if (answer.calls) {
    answer.calls.forEach((c, i) => {
      const seg = { kind: 'call', call: { ...(c.id !== undefined ? { id: c.id } : {}), name: c.name, args: c.args || {} } };
      if (i === 0) seg.sig = issueSignature('call', c.name); // only the first call of a turn is signed
      segments.push(seg);
    });
    candidatesTokens = textTokens(JSON.stringify(answer.calls));
  } else {
    segments.push({ kind: 'text', text: answer.text });
    if (S.textSignature === 'last_part') segments[segments.length - 1].sig = issueSignature('text', null);
    if (S.textSignature === 'empty_part') segments.push({ kind: 'text', text: '', sig: issueSignature('text', null) });
    candidatesTokens = textTokens(answer.text);
  }
  return { segments, thinks, promptTokens: promptTokens(body), thoughtsTokens, candidatesTokens };
}

function echoAnswer(body) {
  const seed = lastUserText(body.contents);
  return { seed, answer: { text: `fake-gemini: ${firstChars(seed, 40)}` } };
}

// Agent mode: the next step for a request that declares tools. Throws ApiError(400) when the request
// does not continue the scripted conversation. Returns {seed, answer, onDone}.
function agentAnswer(body, functionNames) {
  const a = S.agent;
  const steps = a.steps;
  const k = a.k;
  const step = k < steps.length ? steps[k] : { text: 'done' };
  const prev = k >= 1 && k - 1 < steps.length ? steps[k - 1] : null;
  const prevCalls = prev ? (prev.call ? [prev.call] : prev.calls || null) : null;
  const fail = msg => {
    a.log.push({ step: k, at: Date.now(), ok: false, error: msg });
    return badRequest(`fake-gemini agent: ${msg}`, [{ field: 'contents', description: msg }]);
  };
  const last = body.contents[body.contents.length - 1];
  let responses = [];
  if (prevCalls) {
    if (last.role !== 'user') throw fail(`step ${k}: the last content must be a user turn answering step ${k - 1}'s call(s) ${prevCalls.map(c => c.name).join(', ')}`);
    responses = last.parts.filter(p => p.functionResponse).map(p => p.functionResponse);
    const want = prevCalls.map(c => c.name).sort();
    const got = responses.map(r => r.name).sort();
    if (JSON.stringify(want) !== JSON.stringify(got))
      throw fail(`step ${k}: expected functionResponses for [${want.join(', ')}] in the last content, got [${got.join(', ')}]`);
  }
  const calls = step.call ? [step.call] : step.calls;
  if (calls) {
    for (const c of calls)
      if (!functionNames.has(c.name)) throw fail(`step ${k} calls ${c.name}, but the request declares no function of that name (declared: ${[...functionNames].join(', ')})`);
  }
  const entry = { step: k, at: Date.now(), ok: true, functionResponses: responses };
  a.log.push(entry);
  const onDone = () => {
    if (a === S.agent && a.k === k) a.k = Math.min(k + 1, steps.length + 1);
  };
  return { seed: lastUserText(body.contents), answer: calls ? { calls } : { text: step.text }, onDone };
}

function partOf(seg, text) {
  if (seg.kind === 'thought') return { text: text === undefined ? seg.text : text, thought: true };
  if (seg.kind === 'text') return { text: text === undefined ? seg.text : text };
  return { functionCall: seg.call };
}

function usage(plan, final, emittedCandidates, emittedThoughts) {
  const u = { promptTokenCount: plan.promptTokens };
  const cand = final ? plan.candidatesTokens : emittedCandidates;
  const th = final ? plan.thoughtsTokens : emittedThoughts;
  u.candidatesTokenCount = cand;
  u.totalTokenCount = plan.promptTokens + cand + (plan.thinks ? th : 0);
  if (final) {
    u.promptTokensDetails = [{ modality: 'TEXT', tokenCount: plan.promptTokens }];
    if (plan.thinks) u.thoughtsTokenCount = plan.thoughtsTokens;
    u.cachedContentTokenCount = 0;
  } else if (plan.thinks) {
    u.thoughtsTokenCount = th;
  }
  return u;
}

function blockedCandidate(finishReason) {
  const c = { finishReason, index: 0 };
  if (finishReason === 'SAFETY')
    c.safetyRatings = [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true }];
  if (finishReason === 'MALFORMED_FUNCTION_CALL') c.finishMessage = 'Malformed function call: fake-gemini was told to produce one.';
  return c;
}
const CONTENTLESS = new Set(['SAFETY', 'MALFORMED_FUNCTION_CALL', 'PROHIBITED_CONTENT', 'BLOCKLIST', 'SPII']);

function nonStreamResponse(plan, finishReason, model, responseId) {
  let cand;
  if (CONTENTLESS.has(finishReason)) cand = blockedCandidate(finishReason);
  else {
    const parts = plan.segments.map(seg => {
      const p = partOf(seg);
      if (seg.sig) p.thoughtSignature = seg.sig;
      return p;
    });
    cand = { content: { parts, role: 'model' }, finishReason, index: 0 };
  }
  return { candidates: [cand], usageMetadata: usage(plan, true), modelVersion: model, responseId };
}

function splitText(s, n) {
  const cps = Array.from(s);
  if (cps.length <= 1) return [s];
  n = Math.min(n, cps.length);
  const out = [];
  for (let i = 0; i < n; i++) out.push(cps.slice(Math.floor((i * cps.length) / n), Math.floor(((i + 1) * cps.length) / n)).join(''));
  return out;
}

// Stream chunks: thoughts in 2 chunks (signature on the last thought chunk's part), text in 3+ chunks,
// each function call in its own chunk (signature on the first). The last chunk carries finishReason and
// the complete usageMetadata; earlier chunks carry running usage like the real API.
function streamChunks(plan, finishReason, model, responseId) {
  const pieces = []; // {part, candTok, thTok}
  for (const seg of plan.segments) {
    if (seg.kind === 'thought') {
      const texts = splitText(seg.text, 2);
      texts.forEach((tx, i) => {
        const p = partOf(seg, tx);
        if (i === texts.length - 1) p.thoughtSignature = seg.sig;
        pieces.push({ part: p, thTok: textTokens(tx), candTok: 0 });
      });
    } else if (seg.kind === 'text') {
      const n = Math.max(3, Math.ceil(Array.from(seg.text).length / 20));
      const texts = splitText(seg.text, n);
      texts.forEach((tx, i) => {
        const p = partOf(seg, tx);
        if (seg.sig && i === texts.length - 1) p.thoughtSignature = seg.sig;
        pieces.push({ part: p, thTok: 0, candTok: textTokens(tx) });
      });
    } else {
      const p = partOf(seg);
      if (seg.sig) p.thoughtSignature = seg.sig;
      pieces.push({ part: p, thTok: 0, candTok: textTokens(JSON.stringify(seg.call)) });
    }
  }
  const contentless = CONTENTLESS.has(finishReason);
  if (finishReason === 'MALFORMED_FUNCTION_CALL') pieces.length = 0;
  const chunks = [];
  let cand = 0;
  let th = 0;
  pieces.forEach((pc, i) => {
    cand += pc.candTok;
    th += pc.thTok;
    const final = !contentless && i === pieces.length - 1;
    const c = { content: { parts: [pc.part], role: 'model' }, index: 0 };
    if (final) c.finishReason = finishReason;
    chunks.push({ candidates: [c], usageMetadata: usage(plan, final, cand, th), modelVersion: model, responseId });
  });
  if (contentless || chunks.length === 0)
    chunks.push({ candidates: [blockedCandidate(finishReason)], usageMetadata: usage(plan, true), modelVersion: model, responseId });
  return chunks;
}

// ---------------------------------------------------------------------------------------------------------
// Faults and scripts

const FAULT_KEYS = new Set(['status', 'retry_after', 'message', 'delay_headers_ms', 'cut_after_chunks', 'malformed_chunk_at', 'finish_reason', 'stall_after_chunks', 'ms']);
const FINISH_REASONS = new Set(['STOP', 'MAX_TOKENS', 'SAFETY', 'RECITATION', 'LANGUAGE', 'OTHER', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'MALFORMED_FUNCTION_CALL']);

const DEFAULT_MESSAGES = {
  400: 'Request contains an invalid argument.',
  401: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
  403: 'The caller does not have permission',
  404: 'Requested entity was not found.',
  429: 'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  503: 'The model is overloaded. Please try again later.',
  504: 'Deadline expired before operation could complete.',
};

const checkFault = (f, i) => checkChunkFault(f, i, { keys: FAULT_KEYS, finishReasons: FINISH_REASONS });

function checkCall(c, where) {
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${where} must be an object {name, args?, id?}`);
  for (const k of Object.keys(c)) if (!['name', 'args', 'id'].includes(k)) throw new Error(`${where}: unknown key ${k}`);
  if (typeof c.name !== 'string' || !FUNCTION_NAME_RE.test(c.name)) throw new Error(`${where}.name must be a valid function name`);
  if (c.args !== undefined && (typeof c.args !== 'object' || c.args === null || Array.isArray(c.args))) throw new Error(`${where}.args must be an object`);
  if (c.id !== undefined && typeof c.id !== 'string') throw new Error(`${where}.id must be a string`);
}

const checkStep = (s, i) => checkAgentStep(s, i, checkCall);

export function applyScript(s) {
  if (!s || typeof s !== 'object' || Array.isArray(s)) throw new Error('script must be a JSON object');
  for (const k of Object.keys(s)) if (!['mode', 'steps', 'faults', 'append', 'chunk_delay_ms', 'text_signature', 'api_keys'].includes(k)) throw new Error(`unknown script key ${k}`);
  if (s.api_keys !== undefined && !(Array.isArray(s.api_keys) && s.api_keys.length > 0 && s.api_keys.every(k => typeof k === 'string' && k !== ''))) throw new Error('api_keys must be a non-empty array of non-empty strings');
  const mode = s.mode;
  checkModeStepsFaults(s, { checkStep, checkFault });
  if (s.chunk_delay_ms !== undefined && !(Number.isInteger(s.chunk_delay_ms) && s.chunk_delay_ms >= 0)) throw new Error('chunk_delay_ms must be a non-negative integer');
  if (s.text_signature !== undefined && ![null, 'last_part', 'empty_part'].includes(s.text_signature)) throw new Error('text_signature must be null, "last_part" or "empty_part"');
  // All checked: apply.
  if (mode === 'agent') S.agent = { steps: s.steps, k: 0, log: [] };
  if (mode === 'echo') S.agent = null;
  if (s.faults !== undefined) S.faults = s.append ? S.faults.concat(s.faults) : s.faults.slice();
  if (s.chunk_delay_ms !== undefined) S.chunkDelayMs = s.chunk_delay_ms;
  if (s.text_signature !== undefined) S.textSignature = s.text_signature;
  if (s.api_keys !== undefined) S.apiKeys = s.api_keys.slice();
}

function resetState(forgetSignatures) {
  S.requests = [];
  S.stats = newStats();
  S.faults = [];
  S.agent = null;
  S.chunkDelayMs = S.opts.chunkDelayMs;
  S.textSignature = null;
  S.apiConns = new WeakSet();
  if (forgetSignatures) S.signatures = new Map();
}

// ---------------------------------------------------------------------------------------------------------
// Control API (/_fake/...)

async function handleControl(req, res, pathname, query) {
  const raw = await readBody(req).catch(() => '');
  const ok = obj => sendJson(res, 200, obj);
  const fail = (code, msg) => sendJson(res, code, { error: { code, message: msg, status: STATUS_NAMES[code] || 'UNKNOWN' } });
  const route = `${req.method} ${pathname}`;
  switch (route) {
    case 'GET /_fake/requests':
      return ok(S.requests);
    case 'GET /_fake/stats':
      return ok(S.stats);
    case 'GET /_fake/agent':
      return ok(S.agent ? { steps: S.agent.steps.length, next_step: S.agent.k, done: S.agent.k > S.agent.steps.length, log: S.agent.log } : { mode: 'echo' });
    case 'GET /_fake/state':
      return ok({ faults: S.faults, agent: S.agent && { next_step: S.agent.k, steps: S.agent.steps }, chunk_delay_ms: S.chunkDelayMs, signatures: S.signatures.size });
    case 'POST /_fake/reset':
      resetState(query.get('signatures') === '1');
      return ok({ ok: true });
    case 'POST /_fake/script': {
      const err = applyScriptText(raw, applyScript);
      if (err !== null) return fail(400, err);
      return ok({ ok: true, faults: S.faults.length, agent_steps: S.agent ? S.agent.steps.length : null });
    }
    default:
      return fail(404, `no control route ${route}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// API

const ROUTE_RE = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/;
const MODEL_GET_RE = /^\/v1beta\/models\/([^/:]+)$/;

function checkQuery(query, allowed) {
  for (const k of query.keys())
    if (!allowed.includes(k))
      throw badRequest(`Invalid JSON payload received. Unknown name "${k}": Cannot bind query parameter. Field '${k}' could not be found in request message.`, [{ description: `unknown query parameter ${k}` }]);
  const alt = query.get('alt');
  if (alt !== null && alt !== 'json' && alt !== 'sse')
    throw badRequest(`Invalid value at 'alt' (type.googleapis.com/google.api.Alt), "${alt}"`, [{ field: 'alt', description: 'alt must be json or sse' }]);
}

function checkAuth(req, query) {
  const h = req.headers['x-goog-api-key'];
  const key = h !== undefined ? String(h) : query.get('key');
  if (key === null || key === '') {
    if (req.headers.authorization) throw new ApiError(401, DEFAULT_MESSAGES[401]);
    throw new ApiError(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
  }
  if (S.apiKeys ? !S.apiKeys.includes(key) : key !== S.opts.key)
    throw new ApiError(400, 'API key not valid. Please pass a valid API key.', {
      details: [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } },
        { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message: 'API key not valid. Please pass a valid API key.' },
      ],
    });
}

function faultError(f) {
  const code = f.status;
  const headers = {};
  const details = [];
  if (f.retry_after !== undefined) {
    headers['retry-after'] = String(f.retry_after);
    details.push({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${f.retry_after}s` });
  }
  if (code === 429)
    details.unshift({ '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }] });
  return new ApiError(code, f.message || DEFAULT_MESSAGES[code] || `fake-gemini fault ${code}`, { details, headers });
}

async function handleApi(req, res, pathname, query, url) {
  trackApiConnection(req);
  S.stats.requests++;
  const entry = { method: req.method, path: url, headers: cleanHeaders(req.headers), body: null, ts: Date.now(), status: null };
  S.requests.push(entry);
  if (S.requests.length > S.opts.maxLog) S.requests.splice(0, S.requests.length - S.opts.maxLog);
  let raw;
  try {
    raw = await readBody(req);
  } catch (e) {
    if (e instanceof ApiError) return sendError(res, e, entry);
    return; // client went away
  }
  let body;
  try {
    body = raw === '' ? {} : JSON.parse(raw);
    entry.body = body;
  } catch (e) {
    entry.body = raw;
    body = undefined;
  }

  try {
    if (req.method === 'GET' && pathname === '/v1beta/models') {
      checkQuery(query, ['key', 'pageSize', 'pageToken', 'alt']);
      checkAuth(req, query);
      return sendJson(res, 200, { models: MODELS.map(m => modelResource(m[0], m[1])) }, {}, entry);
    }
    let m = MODEL_GET_RE.exec(pathname);
    if (req.method === 'GET' && m) {
      checkQuery(query, ['key', 'alt']);
      checkAuth(req, query);
      const id = decodeURIComponent(m[1]);
      if (!MODEL_NAME_RE.test(id)) throw new ApiError(404, `models/${id} is not found for API version v1beta.`);
      const known = MODELS.find(x => x[0] === id);
      return sendJson(res, 200, modelResource(id, known && known[1]), {}, entry);
    }
    m = ROUTE_RE.exec(pathname);
    if (!m) throw new ApiError(404, `The requested URL ${pathname} was not found on this server (fake-gemini serves /v1beta/models/{model}:generateContent|streamGenerateContent|countTokens).`);
    const model = decodeURIComponent(m[1]);
    const method = m[2];
    if (req.method !== 'POST') throw new ApiError(404, `${method} needs POST, got ${req.method}`);
    checkQuery(query, ['key', 'alt']);
    checkAuth(req, query);
    if (!MODEL_NAME_RE.test(model))
      throw new ApiError(404, `models/${model} is not found for API version v1beta, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`);
    if (body === undefined) {
      let why = 'invalid JSON';
      try {
        JSON.parse(raw);
      } catch (e) {
        why = e.message;
      }
      throw badRequest(`Invalid JSON payload received. ${why}`, [{ description: why }]);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw badRequest(`Invalid JSON payload received. Expected an object, got ${Array.isArray(body) ? 'an array' : JSON.stringify(body)}.`, [{ description: 'request body must be a JSON object' }]);

    // an {unavailable: true} agent step: from there on every generate request gets 503 UNAVAILABLE before its body
    // is looked at (a provider outage mid-task)
    if (method !== 'countTokens' && S.agent && S.agent.k < S.agent.steps.length && S.agent.steps[S.agent.k].unavailable)
      return sendError(res, faultError({ status: 503, message: 'The model is overloaded. Please try again later.' }), entry);
    if (method === 'countTokens') {
      const { req: g } = validateCountTokensRequest(body, model);
      const n = promptTokens(g);
      return sendJson(res, 200, { totalTokens: n, promptTokensDetails: [{ modality: 'TEXT', tokenCount: n }] }, {}, entry);
    }
    const { functionNames } = validateGenerateRequest(body, model, {
      signatures: S.signatures,
      checkSignatures: !S.opts.lenientSignatures,
    });
    return await generate(req, res, entry, body, model, method === 'streamGenerateContent', query.get('alt') === 'sse', functionNames);
  } catch (e) {
    if (e instanceof ApiError) {
      log(`${req.method} ${url} -> ${e.code} ${e.message.split('\n')[0]}`);
      return sendError(res, e, entry);
    }
    throw e;
  }
}

async function generate(req, res, entry, body, model, stream, sse, functionNames) {
  const ctx = trackResponse(res, S);

  const fault = S.faults.length ? S.faults.shift() : null;
  if (fault) log(`fault ${JSON.stringify(fault)} for ${entry.path}`);
  if (fault && fault.delay_headers_ms) await delay(fault.delay_headers_ms);
  if (ctx.closed) return;
  if (fault && fault.status) return sendError(res, faultError(fault), entry);
  let picked;
  if (S.agent && hasFunctionDecls(body)) picked = agentAnswer(body, functionNames); // may throw 400
  else picked = echoAnswer(body);
  const plan = buildPlan(body, picked.seed, picked.answer);
  const finishReason = (fault && fault.finish_reason) || 'STOP';
  const responseId = crypto.randomBytes(12).toString('base64url');
  const destructive = fault && (fault.cut_after_chunks !== undefined || fault.malformed_chunk_at !== undefined);
  if (picked.onDone && !destructive) res.on('finish', picked.onDone);

  const cut = () => {
    ctx.cutByUs = true;
    if (isH2(req)) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    else res.socket.destroy();
  };
  const chunkDelay = S.chunkDelayMs;

  if (!stream) {
    const obj = nonStreamResponse(plan, finishReason, model, responseId);
    const buf = Buffer.from(fault && fault.malformed_chunk_at !== undefined ? '{not json' : JSON.stringify(obj));
    entry.status = 200;
    countStatus(200);
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': buf.length });
    return endWithFault(res, buf, fault, ctx, cut);
  }

  const chunks = streamChunks(plan, finishReason, model, responseId);
  entry.status = 200;
  countStatus(200);
  res.writeHead(200, sse ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } : { 'content-type': 'application/json; charset=UTF-8' });
  if (typeof res.flushHeaders === 'function') res.flushHeaders();
  await streamWithFault(chunks, fault, ctx, {
    chunkDelayMs: () => chunkDelay,
    cut,
    write: (i, json) => void (sse ? res.write(`data: ${json}\r\n\r\n`) : res.write(`${i === 0 ? '[' : ',\r\n'}${json}`)),
    end: () => res.end(sse ? undefined : ']'),
  });
}

const handler = fakeHandler({
  tag: 'fake-gemini',
  control: handleControl,
  api: handleApi,
  internalError: (res, e) => sendError(res, new ApiError(500, `fake-gemini internal error: ${e.message}`)),
});

// ---------------------------------------------------------------------------------------------------------
// Bench mode: no validation, no logging, fixed answers, allocation-light.

function benchHandlerFactory() {
  const model = 'gemini-2.5-flash';
  const u = { promptTokenCount: 8, candidatesTokenCount: 4, totalTokenCount: 12 };
  const one = text => ({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0 }], usageMetadata: u, modelVersion: model, responseId: 'bench' });
  const json = Buffer.from(JSON.stringify({ candidates: [{ content: { parts: [{ text: 'fake-gemini: bench' }], role: 'model' }, finishReason: 'STOP', index: 0 }], usageMetadata: u, modelVersion: model, responseId: 'bench' }));
  const last = one('ch');
  last.candidates[0].finishReason = 'STOP';
  const sse = Buffer.from([one('fake-gem'), one('ini: ben'), last].map(c => `data: ${JSON.stringify(c)}\r\n\r\n`).join(''));
  const count = Buffer.from('{"totalTokens":8}');
  const h1Json = ['content-type', 'application/json; charset=UTF-8', 'content-length', String(json.length)];
  const h1Count = ['content-type', 'application/json; charset=UTF-8', 'content-length', String(count.length)];
  const h1Sse = ['content-type', 'text/event-stream', 'cache-control', 'no-cache'];
  const obj = a => ({ [a[0]]: a[1], [a[2]]: a[3] });
  const h2Json = obj(h1Json);
  const h2Count = obj(h1Count);
  const h2Sse = obj(h1Sse);
  const noop = () => {};
  return function benchHandler(req, res) {
    const url = req.url;
    if (url.charCodeAt(1) === 95 /* "_" */) {
      const { pathname, query } = splitUrl(url);
      return handleControl(req, res, pathname, query);
    }
    S.stats.requests++;
    const h2 = req.httpVersionMajor === 2;
    req.on('data', noop);
    req.on('end', () => {
      if (url.includes(':streamGenerateContent')) {
        res.writeHead(200, h2 ? h2Sse : h1Sse);
        res.end(sse);
      } else if (url.includes(':countTokens')) {
        res.writeHead(200, h2 ? h2Count : h1Count);
        res.end(count);
      } else {
        res.writeHead(200, h2 ? h2Json : h1Json);
        res.end(json);
      }
    });
  };
}

// ---------------------------------------------------------------------------------------------------------
// Server

function createServer(opts) {
  const h = opts.bench ? benchHandlerFactory() : handler;
  let server;
  if (opts.tlsCert) {
    server = http2.createSecureServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey), allowHTTP1: true }, h);
  } else {
    server = http.createServer({ keepAlive: true, requestTimeout: 0 }, h);
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
  }
  countTcpConnections(server, S);
  rejectBadClients(server);
  return server;
}

function listen(opts, onListening) {
  S.opts = opts;
  S.chunkDelayMs = opts.chunkDelayMs;
  if (opts.controlFile) watchControlFile(opts.controlFile, applyScript, { tag: 'fake-gemini', log });
  return serve(createServer(opts), opts.port, { onListening });
}

export function main(argv) {
  const opts = parseCommandLine(argv, parseArgs, { name: 'fake_gemini', usage: USAGE });
  if (opts.workers > 1 && cluster.isPrimary) {
    cluster.schedulingPolicy = cluster.SCHED_NONE; // workers accept directly; the primary is not a hop
    cluster.setupPrimary({ args: argv });
    let listening = 0;
    let port = null;
    const workers = [];
    for (let i = 0; i < opts.workers; i++) workers.push(cluster.fork());
    cluster.on('listening', (w, addr) => {
      port = addr.port;
      if (++listening === opts.workers) announcePort(port);
    });
    let stopping = false;
    cluster.on('exit', (w, code, signal) => {
      if (!stopping) {
        process.stderr.write(`[fake-gemini] worker ${w.process.pid} died (${signal || code}); exiting\n`);
        stopping = true;
        for (const x of workers) if (!x.isDead()) x.process.kill('SIGTERM');
        process.exit(1);
      }
    });
    const stop = () => {
      stopping = true;
      for (const x of workers) if (!x.isDead()) x.process.kill('SIGTERM');
      setTimeout(() => process.exit(0), 200).unref();
      cluster.on('exit', () => {
        if (workers.every(x => x.isDead())) process.exit(0);
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  listen(opts, port => {
    if (cluster.isWorker) return; // the primary prints the port once every worker listens
    announcePort(port);
  });
}

runIfMain(import.meta.url, main);
