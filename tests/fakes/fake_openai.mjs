#!/usr/bin/env node
// Fake OpenAI Chat Completions API (and any OpenAI-compatible server) for Warden's tests: as strict as the
// real API (stricter in places) so that translation bugs in the gateway surface as 400s. Node built-ins
// only. See tests/fakes/README.md.
//
//   node tests/fakes/fake_openai.mjs --port 0 [--key K] [--o-series] [--strict-tool-ids]
//        [--chunk-delay-ms N] [--control-file F] [--verbose]
//
// Prints one line {"port":N} on stdout once listening on 127.0.0.1; exits 0 on SIGTERM/SIGINT.

import http from 'node:http';
import crypto from 'node:crypto';
import {
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
  splitCodePoints,
  streamWithFault,
  trackApiConnection as trackConnection,
  trackResponse,
  verboseLog,
  watchControlFile,
  writeJson,
} from './fake_http.mjs';
import { checkChunkFault, checkStep as checkAgentStep, checkModeStepsFaults } from './fake_script.mjs';
import { ApiError, FUNCTION_NAME_RE, MODELS, MODEL_NAME_RE, modelInfo, promptTokens, textTokens, validateChatRequest } from './fake_openai_validate.mjs';

export { promptTokens, textTokens, modelInfo };

const USAGE = `usage: node fake_openai.mjs --port N [--key API_KEY] [--o-series] [--strict-tool-ids]
       [--chunk-delay-ms N] [--control-file FILE] [--verbose]`;

export function parseArgs(argv) {
  const o = { port: 0, key: 'test-openai-key', oSeries: false, strictToolIds: false, chunkDelayMs: 5, controlFile: null, verbose: false, maxLog: 50 };
  const { need, int } = argHelpers(argv);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--port': o.port = int(need(i, a), a); i++; break;
      case '--key': o.key = need(i, a); i++; break;
      case '--chunk-delay-ms': o.chunkDelayMs = int(need(i, a), a); i++; break;
      case '--control-file': o.controlFile = need(i, a); i++; break;
      case '--o-series': o.oSeries = true; break;
      case '--strict-tool-ids': o.strictToolIds = true; break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': throw new Error('help');
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (o.port > 65535) throw new Error('--port out of range');
  if (o.key === '') throw new Error('--key must not be empty');
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// State

function newStats() {
  return {
    connections_opened: 0, // connections that carried at least one /v1 request
    connections_closed: 0,
    tcp_connections_opened: 0, // every accepted TCP connection (also the tests' own /_fake calls)
    tcp_connections_closed: 0,
    requests: 0, // /v1 requests
    aborted_streams: 0, // completions the client closed before they finished
    streams_in_flight: 0,
    responses_by_status: {},
    tool_calls_issued: 0,
  };
}

const S = {
  opts: null,
  requests: [],
  stats: newStats(),
  faults: [],
  agent: null, // {steps, k, log, calls: ids of the last delivered step's calls}
  chunkDelayMs: 5,
  cachedTokens: 0,
  strictToolIds: false,
  issuedToolIds: new Set(),
  apiConns: new WeakSet(),
};

const log = verboseLog('fake-openai', S);

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function alnum(n) {
  const b = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += ALNUM[b[i] % 62];
  return s;
}
// Formats as the real API issues them.
export const ID_FORMATS = {
  completion: /^chatcmpl-[A-Za-z0-9]{29}$/,
  toolCall: /^call_[A-Za-z0-9]{24}$/,
  fingerprint: /^fp_[0-9a-f]{10}$/,
  request: /^req_[0-9a-f]{32}$/,
};
const completionId = () => `chatcmpl-${alnum(29)}`;
function toolCallId() {
  const id = `call_${alnum(24)}`;
  S.issuedToolIds.add(id);
  S.stats.tool_calls_issued++;
  return id;
}
const FINGERPRINT = `fp_${crypto.createHash('sha256').update('fake-openai').digest('hex').slice(0, 10)}`;

// ---------------------------------------------------------------------------------------------------------
// HTTP helpers

const countStatus = code => countIn(S.stats.responses_by_status, code);

function commonHeaders() {
  return { 'x-request-id': `req_${crypto.randomBytes(16).toString('hex')}`, 'openai-version': '2020-10-01', 'openai-processing-ms': '1' };
}

function sendJson(res, code, obj, headers = {}, entry) {
  if (entry) {
    entry.status = code;
    countStatus(code);
  }
  writeJson(res, code, obj, 'application/json', { ...commonHeaders(), ...headers });
}

const sendError = (res, err, entry) => sendJson(res, err.status, err.body(), err.headers || {}, entry);

const readBody = req => readBodyOf(req, { limit: 64 * 1024 * 1024, tooLarge: limit => new ApiError(413, `Request too large: the body exceeds ${limit} bytes.`) });

const trackApiConnection = req => trackConnection(S, req.socket);

// ---------------------------------------------------------------------------------------------------------
// Answers

function textOf(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    const t = content.filter(p => p && p.type === 'text').map(p => p.text);
    return t.length ? t[t.length - 1] : '';
  }
  return '';
}

function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'user') return textOf(messages[i].content);
  return '';
}

const firstChars = (s, n) => Array.from(s).slice(0, n).join(''); // code points, never half a surrogate pair

function echoAnswer(body) {
  return { answer: { text: `fake-openai: ${firstChars(lastUserText(body.messages), 40)}` } };
}

// Agent mode: the next step for a request that declares tools. Throws ApiError(400) when the request does
// not continue the scripted conversation.
function agentAnswer(body, functionNames) {
  const a = S.agent;
  const k = a.k;
  const step = k < a.steps.length ? a.steps[k] : { text: 'done' };
  const fail = msg => {
    a.log.push({ step: k, at: Date.now(), ok: false, error: msg });
    return new ApiError(400, `fake-openai agent: ${msg}`, { param: 'messages' });
  };
  let answered = [];
  if (a.lastCalls) {
    // The request must end with the tool messages answering the previous step's calls, by id. One user message
    // may follow them: a gateway puts the text that came after the tool results in the same Anthropic turn
    // (Claude Code's system reminders) there, which the real API accepts.
    const msgs = body.messages;
    let end = msgs.length;
    if (end > 1 && msgs[end - 1].role === 'user' && msgs[end - 2].role === 'tool') end--;
    let i = end;
    while (i > 0 && msgs[i - 1].role === 'tool') i--;
    const tools = msgs.slice(i, end);
    const got = tools.map(m => m.tool_call_id).sort();
    const want = a.lastCalls.map(c => c.id).sort();
    if (JSON.stringify(got) !== JSON.stringify(want))
      throw fail(`step ${k}: expected tool messages for [${want.join(', ')}] at the end of messages, got [${got.join(', ')}]`);
    const asst = msgs[i - 1];
    const names = (asst.tool_calls || []).map(tc => tc.function.name).sort();
    if (JSON.stringify(names) !== JSON.stringify(a.lastCalls.map(c => c.name).sort()))
      throw fail(`step ${k}: the assistant message before the tool messages must carry step ${k - 1}'s calls`);
    answered = tools.map(m => ({ tool_call_id: m.tool_call_id, content: textOf(m.content) }));
  }
  const calls = step.call ? [step.call] : step.calls;
  if (calls)
    for (const c of calls)
      if (!functionNames.has(c.name)) throw fail(`step ${k} calls ${c.name}, but the request declares no function of that name (declared: ${[...functionNames].join(', ')})`);
  a.log.push({ step: k, at: Date.now(), ok: true, tool_results: answered });
  return {
    answer: calls ? { calls } : { text: step.text },
    onDone: issued => {
      if (a !== S.agent || a.k !== k) return;
      a.k = Math.min(k + 1, a.steps.length + 1);
      a.lastCalls = issued && issued.length ? issued : null;
    },
  };
}

// A plan: the message content or tool calls plus token counts.
function buildPlan(body, info, answer) {
  const plan = { text: null, calls: null, reasoningTokens: 0 };
  if (answer.calls) {
    plan.calls = answer.calls.map(c => ({ id: c.id || toolCallId(), name: c.name, arguments: JSON.stringify(c.args || {}) }));
    plan.completionTokens = textTokens(plan.calls.map(c => c.name + c.arguments).join(''));
  } else {
    plan.text = answer.text;
    plan.completionTokens = textTokens(answer.text);
  }
  if (info.reasoning) {
    const effort = body.reasoning_effort || 'medium';
    plan.reasoningTokens = { minimal: 0, low: 8, medium: 16, high: 32 }[effort];
  }
  plan.promptTokens = promptTokens(body);
  plan.cachedTokens = Math.min(S.cachedTokens, plan.promptTokens);
  return plan;
}

function usageOf(plan) {
  const completion = plan.completionTokens + plan.reasoningTokens;
  return {
    prompt_tokens: plan.promptTokens,
    completion_tokens: completion,
    total_tokens: plan.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: plan.cachedTokens, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: plan.reasoningTokens, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

function finishOf(plan, fault) {
  if (fault && fault.finish_reason) return fault.finish_reason;
  return plan.calls ? 'tool_calls' : 'stop';
}

function completionObject(plan, meta, finishReason) {
  const message = { role: 'assistant', content: plan.calls ? null : plan.text, refusal: null, annotations: [] };
  if (plan.calls) message.tool_calls = plan.calls.map(c => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
    usage: usageOf(plan),
    service_tier: 'default',
    system_fingerprint: FINGERPRINT,
  };
}

const split = splitCodePoints;

// The stream's chunk objects (without [DONE]).
// As the real API does by default, every chunk with a choice carries "obfuscation": random padding of
// random length that evens out the chunk sizes (stream_options.include_obfuscation: false turns it off).
function streamChunks(plan, meta, finishReason, includeUsage, includeObfuscation) {
  const chunk = (delta, finish = null) => {
    const c = { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, service_tier: 'default', system_fingerprint: FINGERPRINT, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
    if (includeUsage) c.usage = null;
    if (includeObfuscation) c.obfuscation = alnum(1 + (crypto.randomBytes(1)[0] % 12));
    return c;
  };
  const out = [];
  if (plan.calls) {
    out.push(chunk({ role: 'assistant', content: null, refusal: null }));
    plan.calls.forEach((c, i) => {
      out.push(chunk({ tool_calls: [{ index: i, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }));
      for (const frag of split(c.arguments, 3)) out.push(chunk({ tool_calls: [{ index: i, function: { arguments: frag } }] }));
    });
  } else {
    out.push(chunk({ role: 'assistant', content: '', refusal: null }));
    for (const t of split(plan.text, Math.max(3, Math.ceil(Array.from(plan.text).length / 12)))) out.push(chunk({ content: t }));
  }
  out.push(chunk({}, finishReason));
  if (includeUsage) {
    const u = { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, service_tier: 'default', system_fingerprint: FINGERPRINT, choices: [], usage: usageOf(plan) };
    out.push(u);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Faults and scripts

const FAULT_KEYS = new Set(['status', 'retry_after', 'message', 'delay_headers_ms', 'cut_after_chunks', 'malformed_chunk_at', 'finish_reason', 'stall_after_chunks', 'ms']);
const FINISH_REASONS = new Set(['stop', 'length', 'tool_calls', 'content_filter']);

const checkFault = (f, i) => checkChunkFault(f, i, { keys: FAULT_KEYS, finishReasons: FINISH_REASONS, checkMessage: true });

function checkCall(c, where) {
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${where} must be an object {name, args?, id?}`);
  for (const k of Object.keys(c)) if (!['name', 'args', 'id'].includes(k)) throw new Error(`${where}: unknown key ${k}`);
  if (typeof c.name !== 'string' || !FUNCTION_NAME_RE.test(c.name)) throw new Error(`${where}.name must be a valid function name`);
  if (c.args !== undefined && (typeof c.args !== 'object' || c.args === null || Array.isArray(c.args))) throw new Error(`${where}.args must be an object`);
  if (c.id !== undefined && (typeof c.id !== 'string' || c.id === '' || c.id.length > 40)) throw new Error(`${where}.id must be a string of 1..40 characters`);
}

const checkStep = (s, i) => checkAgentStep(s, i, checkCall);

const SCRIPT_KEYS = ['mode', 'steps', 'faults', 'append', 'chunk_delay_ms', 'cached_tokens', 'strict_tool_ids'];

export function applyScript(s) {
  if (!s || typeof s !== 'object' || Array.isArray(s)) throw new Error('script must be a JSON object');
  for (const k of Object.keys(s)) if (!SCRIPT_KEYS.includes(k)) throw new Error(`unknown script key ${k} (known: ${SCRIPT_KEYS.join(', ')})`);
  const mode = s.mode;
  checkModeStepsFaults(s, { checkStep, checkFault });
  if (s.append !== undefined && typeof s.append !== 'boolean') throw new Error('append must be a boolean');
  if (s.chunk_delay_ms !== undefined && !(Number.isInteger(s.chunk_delay_ms) && s.chunk_delay_ms >= 0)) throw new Error('chunk_delay_ms must be a non-negative integer');
  if (s.cached_tokens !== undefined && !(Number.isInteger(s.cached_tokens) && s.cached_tokens >= 0)) throw new Error('cached_tokens must be a non-negative integer');
  if (s.strict_tool_ids !== undefined && typeof s.strict_tool_ids !== 'boolean') throw new Error('strict_tool_ids must be a boolean');
  // All checked: apply.
  if (mode === 'agent') S.agent = { steps: s.steps, k: 0, log: [], lastCalls: null };
  if (mode === 'echo') S.agent = null;
  if (s.faults !== undefined) S.faults = s.append ? S.faults.concat(s.faults) : s.faults.slice();
  if (s.chunk_delay_ms !== undefined) S.chunkDelayMs = s.chunk_delay_ms;
  if (s.cached_tokens !== undefined) S.cachedTokens = s.cached_tokens;
  if (s.strict_tool_ids !== undefined) S.strictToolIds = s.strict_tool_ids;
}

function resetState(forgetIds) {
  S.requests = [];
  S.stats = newStats();
  S.faults = [];
  S.agent = null;
  S.chunkDelayMs = S.opts.chunkDelayMs;
  S.cachedTokens = 0;
  S.strictToolIds = S.opts.strictToolIds;
  S.apiConns = new WeakSet();
  if (forgetIds) S.issuedToolIds = new Set();
}

// ---------------------------------------------------------------------------------------------------------
// Control API (/_fake/...)

async function handleControl(req, res, pathname, query) {
  const raw = await readBody(req).catch(() => '');
  const ok = obj => sendJson(res, 200, obj);
  const fail = (code, msg) => sendJson(res, code, { error: { message: msg, type: 'fake_control_error', param: null, code: null } });
  const route = `${req.method} ${pathname}`;
  switch (route) {
    case 'GET /_fake/requests':
      return ok(S.requests);
    case 'GET /_fake/stats':
      return ok(S.stats);
    case 'GET /_fake/agent':
      return ok(S.agent ? { steps: S.agent.steps.length, next_step: S.agent.k, done: S.agent.k > S.agent.steps.length, log: S.agent.log } : { mode: 'echo' });
    case 'GET /_fake/state':
      return ok({ faults: S.faults, agent: S.agent && { next_step: S.agent.k, steps: S.agent.steps }, chunk_delay_ms: S.chunkDelayMs, cached_tokens: S.cachedTokens, strict_tool_ids: S.strictToolIds, tool_ids: S.issuedToolIds.size });
    case 'POST /_fake/reset':
      resetState(query.get('tool_ids') === '1');
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

function maskKey(k) {
  if (k.length <= 8) return '*'.repeat(k.length);
  return `${k.slice(0, 3)}${'*'.repeat(k.length - 7)}${k.slice(-4)}`;
}

function checkAuth(req) {
  const h = req.headers.authorization;
  const m = h === undefined ? null : /^Bearer (.*)$/i.exec(String(h));
  const key = m ? m[1].trim() : '';
  if (key === '')
    throw new ApiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", { type: 'invalid_request_error' });
  if (key !== S.opts.key)
    throw new ApiError(401, `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`, { type: 'invalid_request_error', code: 'invalid_api_key' });
}

const DEFAULT_FAULTS = {
  400: ['Bad request (fake-openai fault).', 'invalid_request_error', null],
  401: ['Incorrect API key provided (fake-openai fault).', 'invalid_request_error', 'invalid_api_key'],
  403: ['You are not allowed to sample from this model (fake-openai fault).', 'invalid_request_error', null],
  404: ['The model does not exist or you do not have access to it (fake-openai fault).', 'invalid_request_error', 'model_not_found'],
  429: ['Rate limit reached for requests (fake-openai fault). Please try again later.', 'requests', 'rate_limit_exceeded'],
  500: ['The server had an error while processing your request. Sorry about that!', 'server_error', null],
  503: ['The server is overloaded or not ready yet.', 'server_error', null],
};

function faultError(f, model) {
  const d = DEFAULT_FAULTS[f.status] || [`fake-openai fault ${f.status}`, f.status >= 500 ? 'server_error' : 'invalid_request_error', null];
  const headers = {};
  let message = f.message || d[0];
  if (f.status === 429) {
    const s = f.retry_after !== undefined ? f.retry_after : 1;
    if (!f.message) message = `Rate limit reached for ${model} in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in ${s}s.`;
    Object.assign(headers, { 'x-ratelimit-limit-requests': '3', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': `${s}s` });
  }
  if (f.retry_after !== undefined) headers['retry-after'] = String(f.retry_after);
  return new ApiError(f.status, message, { type: d[1], code: d[2], headers });
}

function modelObject(id) {
  return { id, object: 'model', created: 1700000000, owned_by: 'fake-openai' };
}

async function handleApi(req, res, pathname, query, url) {
  trackApiConnection(req);
  S.stats.requests++;
  const entry = { method: req.method, path: url, headers: { ...req.headers }, body: null, ts: Date.now(), status: null };
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
  let parseError = null;
  try {
    body = raw === '' ? undefined : JSON.parse(raw);
    entry.body = body === undefined ? null : body;
  } catch (e) {
    entry.body = raw;
    parseError = e.message;
  }
  try {
    if (pathname === '/v1/models' && req.method === 'GET') {
      checkAuth(req);
      return sendJson(res, 200, { object: 'list', data: MODELS.map(m => modelObject(m[0])) }, {}, entry);
    }
    const mm = /^\/v1\/models\/([^/]+)$/.exec(pathname);
    if (mm && req.method === 'GET') {
      checkAuth(req);
      const id = decodeURIComponent(mm[1]);
      if (!MODELS.some(m => m[0] === id)) throw new ApiError(404, `The model '${id}' does not exist`, { param: 'model', code: 'model_not_found' });
      return sendJson(res, 200, modelObject(id), {}, entry);
    }
    if (pathname !== '/v1/chat/completions' || req.method !== 'POST') throw new ApiError(404, `Invalid URL (${req.method} ${pathname})`);
    checkAuth(req);
    if (parseError !== null)
      throw new ApiError(400, `We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.) [${parseError}]`);
    if (body === undefined) throw new ApiError(400, 'you must provide a model parameter');
    const v = validateChatRequest(body, { oSeries: S.opts.oSeries, issuedToolIds: S.strictToolIds ? S.issuedToolIds : null });
    if (!MODEL_NAME_RE.test(body.model))
      throw new ApiError(404, `The model \`${body.model}\` does not exist or you do not have access to it.`, { code: 'model_not_found' });
    return await complete(req, res, entry, body, v);
  } catch (e) {
    if (e instanceof ApiError) {
      log(`${req.method} ${url} -> ${e.status} ${e.message}`);
      return sendError(res, e, entry);
    }
    throw e;
  }
}

async function complete(req, res, entry, body, v) {
  const ctx = trackResponse(res, S);

  const fault = S.faults.length ? S.faults.shift() : null;
  if (fault) log(`fault ${JSON.stringify(fault)} for ${entry.path}`);
  if (fault && fault.delay_headers_ms) await delay(fault.delay_headers_ms);
  if (ctx.closed) return;
  if (fault && fault.status) return sendError(res, faultError(fault, body.model), entry);

  const picked = S.agent && v.functionNames.size > 0 ? agentAnswer(body, v.functionNames) : echoAnswer(body);
  const plan = buildPlan(body, v.info, picked.answer);
  const finishReason = finishOf(plan, fault);
  const meta = { id: completionId(), created: Math.floor(Date.now() / 1000), model: body.model };
  const destructive = fault && (fault.cut_after_chunks !== undefined || fault.malformed_chunk_at !== undefined);
  if (picked.onDone && !destructive) res.on('finish', () => picked.onDone(plan.calls));
  const cut = () => {
    ctx.cutByUs = true;
    res.socket.destroy();
  };

  if (!v.stream) {
    const obj = completionObject(plan, meta, finishReason);
    const buf = Buffer.from(fault && fault.malformed_chunk_at !== undefined ? '{not json' : JSON.stringify(obj));
    entry.status = 200;
    countStatus(200);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': buf.length, ...commonHeaders() });
    return endWithFault(res, buf, fault, ctx, cut);
  }

  const chunks = streamChunks(plan, meta, finishReason, v.includeUsage, v.includeObfuscation);
  entry.status = 200;
  countStatus(200);
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...commonHeaders() });
  res.flushHeaders();
  // A cut at or after the last chunk drops [DONE]: the stream ends without its terminator.
  await streamWithFault(chunks, fault, ctx, {
    chunkDelayMs: () => S.chunkDelayMs,
    cut,
    // wait until each chunk is handed to the socket, so that a cut never drops chunks already sent
    write: (i, json) => new Promise(r => res.write(`data: ${json}\n\n`, r)),
    end: () => res.end('data: [DONE]\n\n'),
  });
}

const handler = fakeHandler({
  tag: 'fake-openai',
  control: handleControl,
  api: handleApi,
  internalError: (res, e) => sendError(res, new ApiError(500, `fake-openai internal error: ${e.message}`)),
});

// ---------------------------------------------------------------------------------------------------------
// Server

export function main(argv) {
  const opts = parseCommandLine(argv, parseArgs, { name: 'fake_openai', usage: USAGE });
  S.opts = opts;
  S.chunkDelayMs = opts.chunkDelayMs;
  S.strictToolIds = opts.strictToolIds;
  if (opts.controlFile) watchControlFile(opts.controlFile, applyScript, { tag: 'fake-openai', log });
  const server = http.createServer({ keepAlive: true, requestTimeout: 0 }, handler);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  countTcpConnections(server, S);
  rejectBadClients(server);
  serve(server, opts.port);
}

runIfMain(import.meta.url, main);
