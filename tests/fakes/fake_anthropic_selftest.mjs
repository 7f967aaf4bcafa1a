#!/usr/bin/env node
// Self-test of tests/fakes/fake_anthropic.mjs: starts the fake as child processes and checks every rule, fault
// and mode over real HTTP, then cross-checks the fake with the official @anthropic-ai/sdk (pinned in
// tests/fakes/anthropic_sdk, installed here with `npm ci` when missing). Prints "N passed, N failed"; exits
// non-zero on failure.
//   node tests/fakes/fake_anthropic_selftest.mjs [filter-substring]

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inputTokens } from './fake_anthropic_validate.mjs';
import { ctl, fakeLauncher, fetchJson, reportAndExit, testSuite } from './selftest_lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(HERE, 'fake_anthropic.mjs');
const SDK_DIR = path.join(HERE, 'anthropic_sdk');
const SDK_ENTRY = path.join(SDK_DIR, 'node_modules', '@anthropic-ai', 'sdk', 'index.mjs');
const KEY = 'test-anthropic-key';
const FILTER = process.argv[2] || '';

// ------------------------------------------------------------------------------------------------
// Harness

const { startFake } = fakeLauncher(FAKE);
const suite = testSuite();
const { test } = suite;

const HDRS = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
async function api(base, p, body, { headers = HDRS, method = 'POST', extra = {} } = {}) {
  const h = { ...headers, ...extra };
  for (const k of Object.keys(h)) if (h[k] === null) delete h[k];
  return fetchJson(base + p, { method, headers: h, body });
}
const create = (base, body, opts) => api(base, '/v1/messages', body, opts);
const count = (base, body, opts) => api(base, '/v1/messages/count_tokens', body, opts);

const M = 'claude-sonnet-4-5';
const user = content => ({ role: 'user', content });
const asst = content => ({ role: 'assistant', content });
const req = (messages, extra = {}) => ({ model: M, max_tokens: 1000, messages, ...extra });
const TOOLS = [
  { name: 'Write', description: 'write a file', input_schema: { type: 'object', properties: { path: { type: 'string' } } } },
  { name: 'Read', description: 'read a file', input_schema: { type: 'object', properties: { path: { type: 'string' } } } },
];
const THINK = { type: 'enabled', budget_tokens: 1024 };

function expectErr(res, status, type, ...needles) {
  assert.equal(res.status, status, `want ${status}, got ${res.status}: ${res.text}`);
  assert.equal(res.json.type, 'error');
  assert.equal(res.json.error.type, type);
  assert.match(res.json.request_id, /^req_011C[A-Za-z0-9]+$/);
  for (const n of needles) assert.ok(res.json.error.message.includes(n), `message should include ${JSON.stringify(n)}: ${res.json.error.message}`);
}
const expect400 = (res, ...n) => expectErr(res, 400, 'invalid_request_error', ...n);

// Raw SSE read with node:http so the test sees cuts and timing.
function streamRaw(base, body, { onData } = {}) {
  return new Promise(resolve => {
    const started = Date.now();
    const r = http.request(`${base}/v1/messages`, { method: 'POST', headers: HDRS, agent: false }, res => {
      let buf = '';
      let first = null;
      res.setEncoding('utf8');
      res.on('data', d => {
        if (first === null) first = Date.now() - started;
        buf += d;
        if (onData) onData(buf, r, res);
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: buf, complete: true, first, headersAt: null }));
      res.on('error', () => resolve({ status: res.statusCode, headers: res.headers, raw: buf, complete: false, first }));
      res.on('aborted', () => resolve({ status: res.statusCode, headers: res.headers, raw: buf, complete: false, first }));
    });
    r.on('error', e => resolve({ status: 0, raw: '', complete: false, error: e }));
    r.end(JSON.stringify({ ...body, stream: true }));
  });
}

function parseSse(raw) {
  return raw
    .split('\n\n')
    .filter(Boolean)
    .map(ev => {
      const lines = ev.split('\n');
      assert.ok(lines[0].startsWith('event: '), `event line first: ${ev.slice(0, 60)}`);
      assert.ok(lines[1].startsWith('data: '), `data line second: ${ev.slice(0, 60)}`);
      assert.equal(lines.length, 2);
      const name = lines[0].slice(7);
      const data = JSON.parse(lines[1].slice(6));
      assert.equal(data.type, name, 'event name equals data.type');
      return data;
    });
}

// Assembles a message from parsed events by hand (independently of the SDK).
function assemble(events) {
  let msg = null;
  const json = {};
  for (const e of events) {
    if (e.type === 'message_start') msg = structuredClone(e.message);
    else if (e.type === 'content_block_start') msg.content[e.index] = structuredClone(e.content_block);
    else if (e.type === 'content_block_delta') {
      const b = msg.content[e.index];
      const d = e.delta;
      if (d.type === 'text_delta') b.text += d.text;
      else if (d.type === 'thinking_delta') b.thinking += d.thinking;
      else if (d.type === 'signature_delta') b.signature = d.signature;
      else if (d.type === 'input_json_delta') json[e.index] = (json[e.index] || '') + d.partial_json;
    } else if (e.type === 'content_block_stop') {
      if (json[e.index] !== undefined) msg.content[e.index].input = json[e.index] ? JSON.parse(json[e.index]) : {};
    } else if (e.type === 'message_delta') {
      Object.assign(msg, e.delta);
      Object.assign(msg.usage, e.usage);
    }
  }
  return msg;
}

// A completed tool round: [user, assistant(tool_use...), user(tool_result...)] built from a real answer.
async function toolRound(base, extra = {}, uses = [{ name: 'Write', input: { path: '/tmp/x' } }]) {
  await ctl(base, '/_fake/script', { answers: [{ tool_use: uses }] });
  const first = [user('write it')];
  const r = await create(base, req(first, { tools: TOOLS, ...extra }));
  assert.equal(r.status, 200, r.text);
  const ids = r.json.content.filter(b => b.type === 'tool_use').map(b => b.id);
  return { msg: r.json, ids, messages: [...first, asst(r.json.content), user(ids.map(id => ({ type: 'tool_result', tool_use_id: id, content: 'ok' })))] };
}

// ------------------------------------------------------------------------------------------------
// CLI

test('cli: one port line on stdout, SIGTERM exits 0', async () => {
  const f = await startFake();
  await new Promise(r => setTimeout(r, 100));
  assert.equal(f.stdout(), JSON.stringify({ port: f.port }) + '\n');
  const { code } = await f.stop();
  assert.equal(code, 0);
});

test('cli: bad arguments exit 2', async () => {
  const r = spawnSync(process.execPath, [FAKE, '--bogus'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
});

// ------------------------------------------------------------------------------------------------
// Headers

test('auth: missing key, wrong key, bearer without OAuth, version header', async ({ base }) => {
  expectErr(await create(base, req([user('hi')]), { extra: { 'x-api-key': null } }), 401, 'authentication_error', 'x-api-key header is required');
  expectErr(await create(base, req([user('hi')]), { extra: { 'x-api-key': 'nope' } }), 401, 'authentication_error', 'invalid x-api-key');
  expectErr(await create(base, req([user('hi')]), { extra: { 'x-api-key': null, authorization: 'Bearer sk-ant-oat01-x' } }), 401, 'authentication_error', 'OAuth authentication is currently not supported.');
  // the API key as a bearer token is accepted (the official SDK 1.x sends it so); the log says which header came
  assert.equal((await create(base, req([user('hi')]), { extra: { 'x-api-key': null, authorization: `Bearer ${KEY}` } })).status, 200);
  const log = await ctl(base, '/_fake/requests');
  assert.deepEqual(log.map(e => e.auth), [null, null, null, 'bearer']);
  expect400(await create(base, req([user('hi')]), { extra: { 'anthropic-version': null } }), 'anthropic-version: header is required');
  expect400(await create(base, req([user('hi')]), { extra: { 'anthropic-version': '2023-06-01, 2023-06-01' } }), 'is not a valid version');
  const ok = await create(base, req([user('hi')]));
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get('request-id'), /^req_011C/);
  assert.equal((await ctl(base, '/_fake/requests')).at(-1).auth, 'x-api-key');
});

test('auth: --auth-token accepts a bearer token with the oauth beta only', async () => {
  const f = await startFake(['--auth-token', 'oat-token']);
  try {
    const h = { ...HDRS, 'x-api-key': null, authorization: 'Bearer oat-token' };
    expectErr(await create(f.base, req([user('hi')]), { extra: h }), 401, 'authentication_error', 'OAuth authentication is currently not supported.');
    assert.equal((await create(f.base, req([user('hi')]), { extra: { ...h, 'anthropic-beta': 'oauth-2025-04-20' } })).status, 200);
    expectErr(await create(f.base, req([user('hi')]), { extra: { ...h, authorization: 'Bearer other', 'anthropic-beta': 'oauth-2025-04-20' } }), 401, 'authentication_error');
  } finally {
    await f.stop();
  }
});

test('anthropic-beta is recorded in /_fake/requests', async ({ base }) => {
  await create(base, req([user('hi')]), { extra: { 'anthropic-beta': 'context-management-2025-06-27, interleaved-thinking-2025-05-14' } });
  const log = await ctl(base, '/_fake/requests');
  const e = log[log.length - 1];
  assert.deepEqual(e.beta, ['context-management-2025-06-27', 'interleaved-thinking-2025-05-14']);
  assert.equal(e.headers['anthropic-beta'], 'context-management-2025-06-27, interleaved-thinking-2025-05-14');
  assert.equal(e.status, 200);
  assert.equal(e.body.model, M);
  assert.equal(e.path, '/v1/messages');
});

test('unknown path 404, wrong method 405, non-JSON body 400', async ({ base }) => {
  expectErr(await api(base, '/v1/complete', {}), 404, 'not_found_error');
  expectErr(await api(base, '/v1/messages', undefined, { method: 'GET' }), 405, 'invalid_request_error');
  expect400(await create(base, '{not json'), 'valid JSON');
  expect400(await create(base, req([user('hi')]), { extra: { 'content-type': 'text/plain' } }), 'Content-Type');
});

// ------------------------------------------------------------------------------------------------
// Validation

test('validation: unknown fields at every level', async ({ base }) => {
  expect400(await create(base, req([user('hi')], { max_output_tokens: 5 })), 'max_output_tokens: Extra inputs are not permitted');
  expect400(await create(base, req([{ role: 'user', content: 'hi', name: 'x' }])), 'messages.0.name: Extra inputs are not permitted');
  expect400(await create(base, req([user([{ type: 'text', text: 'hi', foo: 1 }])])), 'messages.0.content.0.text.foo: Extra inputs are not permitted');
  expect400(await create(base, req([user('hi')], { tools: [{ ...TOOLS[0], parameters: {} }] })), 'tools.0.custom.parameters: Extra inputs are not permitted');
  expect400(await create(base, req([user('hi')], { thinking: { ...THINK, budget: 3 } })), 'thinking.enabled.budget: Extra inputs are not permitted');
  expect400(await create(base, req([user('hi')], { metadata: { user_id: 'u', session: 1 } })), 'metadata.session: Extra inputs are not permitted');
  expect400(await count(base, { model: M, messages: [user('hi')], max_tokens: 5 }), 'max_tokens: Extra inputs are not permitted');
});

test('validation: required fields and types', async ({ base }) => {
  expect400(await create(base, { model: M, messages: [user('hi')] }), 'max_tokens: Field required');
  expect400(await create(base, { max_tokens: 5, messages: [user('hi')] }), 'model: Field required');
  expect400(await create(base, { model: M, max_tokens: 5 }), 'messages: Field required');
  expect400(await create(base, req([user('hi')], { max_tokens: '5' })), 'max_tokens: Input should be a valid integer');
  expect400(await create(base, req([user('hi')], { temperature: 1.5 })), 'temperature: Input should be less than or equal to 1');
  expectErr(await create(base, req([user('hi')], { model: 'claude-nope' })), 404, 'not_found_error', 'model: claude-nope');
});

test('validation: max_tokens ceilings per model', async ({ base }) => {
  for (const [m, dated, max] of [
    ['claude-sonnet-4-5', 'claude-sonnet-4-5-20250929', 64000],
    ['claude-opus-4-5', 'claude-opus-4-5-20251101', 64000],
    ['claude-haiku-4-5-20251001', 'claude-haiku-4-5-20251001', 64000],
    ['claude-opus-4-1', 'claude-opus-4-1-20250805', 32000],
  ]) {
    assert.equal((await create(base, req([user('hi')], { model: m, max_tokens: max }))).status, 200, m);
    expect400(await create(base, req([user('hi')], { model: m, max_tokens: max + 1 })), `max_tokens: ${max + 1} > ${max}, which is the maximum allowed number of output tokens for ${dated}`);
  }
});

test('validation: roles and content', async ({ base }) => {
  expect400(await create(base, req([{ role: 'system', content: 'x' }])), "messages.0.role: Input should be 'user' or 'assistant'");
  expect400(await create(base, req([asst('hi'), user('x')])), 'messages: first message must use the "user" role');
  expect400(await create(base, req([user('a'), user('b')])), 'roles must alternate');
  expect400(await create(base, req([user('')])), 'messages.0: all messages must have non-empty content');
  expect400(await create(base, req([user([{ type: 'text', text: '' }])])), 'text content blocks must be non-empty');
  expect400(await create(base, req([user([{ type: 'tool_use', id: 'toolu_1', name: 'Write', input: {} }])])), 'messages.0.content.0.type');
  expect400(await create(base, req([user([{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: 'AAAA' } }])])), 'media_type');
  // a final assistant prefill may be empty; an image and a system array are fine
  assert.equal((await create(base, req([user('hi'), asst('Sure,')], { system: [{ type: 'text', text: 'sys', cache_control: { type: 'ephemeral' } }] }))).status, 200);
});

test('validation: tool_use ids and tool_result pairing', async ({ base }) => {
  const tu = (id, name = 'Write') => ({ type: 'tool_use', id, name, input: { path: 'a' } });
  const tr = id => ({ type: 'tool_result', tool_use_id: id, content: 'ok' });
  const t = { tools: TOOLS };
  expect400(await create(base, req([user('x'), asst([tu('call.1')]), user([tr('call.1')])], t)), "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'");
  expect400(
    await create(base, req([user('x'), asst([tu('toolu_a'), tu('toolu_b')]), user([tr('toolu_a')])], t)),
    'messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_b. Each `tool_use` block must have a corresponding `tool_result` block in the next message.',
  );
  expect400(await create(base, req([user('x'), asst([tu('toolu_a')]), user([{ type: 'text', text: 'first' }, tr('toolu_a')])], t)), 'immediately after: toolu_a');
  expect400(await create(base, req([user('x'), asst([tu('toolu_a')])], t)), 'immediately after: toolu_a');
  expect400(
    await create(base, req([user('x'), asst([tu('toolu_a')]), user([tr('toolu_a'), tr('toolu_z')])], t)),
    'messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_z. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.',
  );
  expect400(await create(base, req([user([tr('toolu_a')])], t)), 'messages.0.content.0: unexpected `tool_use_id`');
  expect400(await create(base, req([user('x'), asst([tu('toolu_a')]), user([tr('toolu_a')]), asst([tu('toolu_a')]), user([tr('toolu_a')])], t)), '`tool_use` ids must be unique');
  // parallel calls answered in any order, text after the results: accepted
  const ok = await create(base, req([user('x'), asst([{ type: 'text', text: 'calling' }, tu('toolu_a'), tu('toolu_b', 'Read')]), user([tr('toolu_b'), tr('toolu_a'), { type: 'text', text: 'reminder' }])], t));
  assert.equal(ok.status, 200, ok.text);
});

test('validation: tools and tool_choice', async ({ base }) => {
  expect400(await create(base, req([user('x')], { tools: [{ ...TOOLS[0], name: 'mcp.server:tool' }] })), "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'");
  expect400(await create(base, req([user('x')], { tools: [TOOLS[0], TOOLS[0]] })), 'Tool names must be unique');
  expect400(await create(base, req([user('x')], { tools: [{ name: 'T', input_schema: { type: 'string' } }] })), "tools.0.custom.input_schema.type: Input should be 'object'");
  expect400(await create(base, req([user('x')], { tools: [{ name: 'T' }] })), 'tools.0.custom.input_schema: Field required');
  expect400(await create(base, req([user('x')], { tools: TOOLS, tool_choice: { type: 'tool', name: 'Bash' } })), "Tool 'Bash' not found");
  expect400(await create(base, req([user('x')], { tools: TOOLS, tool_choice: { type: 'required' } })), "tool_choice: Input tag 'required'");
  assert.equal((await create(base, req([user('x')], { tools: [...TOOLS, { type: 'web_search_20250305', name: 'web_search', max_uses: 3 }], tool_choice: { type: 'auto', disable_parallel_tool_use: true } }))).status, 200);
});

test('validation: cache_control, context_management, metadata, service_tier accepted', async ({ base }) => {
  const r = await create(
    base,
    req([user([{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral', ttl: '1h' } }])], {
      system: [{ type: 'text', text: 'sys', cache_control: { type: 'ephemeral' } }],
      tools: [{ ...TOOLS[0], cache_control: { type: 'ephemeral' } }],
      context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] },
      metadata: { user_id: 'user-1' },
      service_tier: 'auto',
      stop_sequences: ['END'],
    }),
  );
  assert.equal(r.status, 200, r.text);
  expect400(await create(base, req([user([{ type: 'text', text: 'hi', cache_control: { type: 'persistent' } }])])), "cache_control.type: Input should be 'ephemeral'");
});

test('thinking: budget rules', async ({ base }) => {
  expect400(await create(base, req([user('x')], { thinking: { type: 'enabled', budget_tokens: 1000 } })), 'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
  expect400(await create(base, req([user('x')], { max_tokens: 1024, thinking: THINK })), '`max_tokens` must be greater than `thinking.budget_tokens`');
  expect400(await create(base, req([user('x')], { max_tokens: 2000, thinking: THINK, temperature: 0.5 })), '`temperature` may only be set to 1 when thinking is enabled');
  const r = await create(base, req([user('x')], { max_tokens: 2000, thinking: THINK }));
  assert.equal(r.status, 200);
  assert.equal(r.json.content[0].type, 'thinking');
  assert.match(r.json.content[0].signature, /^[A-Za-z0-9+/]+=+$/);
  assert.ok(r.json.content[0].signature.includes('+') && r.json.content[0].signature.includes('/'));
  assert.equal(r.json.content[1].type, 'text');
});

test('thinking: the final assistant tool_use turn must start with an issued thinking block', async ({ base }) => {
  const th = { thinking: THINK, max_tokens: 2000 };
  const { messages, msg } = await toolRound(base, th);
  assert.equal(msg.content[0].type, 'thinking');
  assert.equal((await create(base, req(messages, { tools: TOOLS, ...th }))).status, 200, 'round trip with the issued block');
  const stripped = structuredClone(messages);
  stripped[1].content = stripped[1].content.filter(b => b.type !== 'thinking');
  expect400(
    await create(base, req(stripped, { tools: TOOLS, ...th })),
    'messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks).',
  );
  const forged = structuredClone(messages);
  forged[1].content[0].signature = Buffer.from('forged').toString('base64');
  expect400(await create(base, req(forged, { tools: TOOLS, ...th })), 'messages.1.content.0: Invalid `signature` in `thinking` block');
  const reencoded = structuredClone(messages);
  reencoded[1].content[0].signature = reencoded[1].content[0].signature.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  expect400(await create(base, req(reencoded, { tools: TOOLS, ...th })), 'Invalid `signature`');
  // without thinking the stripped history is fine; count_tokens does not check signatures
  assert.equal((await create(base, req(stripped, { tools: TOOLS }))).status, 200);
  assert.equal((await count(base, { model: M, messages: forged, tools: TOOLS, thinking: THINK })).status, 200);
  const f = await startFake(['--lenient-signatures']);
  try {
    assert.equal((await create(f.base, req(forged, { tools: TOOLS, ...th }))).status, 200, 'lenient');
  } finally {
    await f.stop();
  }
});

test('thinking: signatures survive /_fake/reset, not ?signatures=1', async ({ base }) => {
  const th = { thinking: THINK, max_tokens: 2000 };
  const { messages } = await toolRound(base, th);
  await ctl(base, '/_fake/reset', {});
  assert.equal((await create(base, req(messages, { tools: TOOLS, ...th }))).status, 200);
  await ctl(base, '/_fake/reset?signatures=1', {});
  expect400(await create(base, req(messages, { tools: TOOLS, ...th })), 'Invalid `signature`');
});

// ------------------------------------------------------------------------------------------------
// Answers, tokens, streams

test('thinking: adaptive, redacted_thinking and thinking:false answers; prefill rules', async ({ base }) => {
  await ctl(base, '/_fake/script', { answers: [{ redacted_thinking: true, tool_use: { name: 'Read', input: { path: '/r' } } }, { thinking: false, text: 'no thoughts' }] });
  const body = req([user('x')], { tools: TOOLS, thinking: { type: 'adaptive' } });
  const a = await create(base, body);
  assert.deepEqual(a.json.content.map(b => b.type), ['redacted_thinking', 'tool_use']);
  const id = a.json.content[1].id;
  const history = [...body.messages, asst(a.json.content), user([{ type: 'tool_result', tool_use_id: id, content: 'r' }])];
  const b = await create(base, { ...body, messages: history });
  assert.deepEqual(b.json.content, [{ type: 'text', text: 'no thoughts' }]);
  const forged = structuredClone(history);
  forged[1].content[0].data = 'AAAA';
  expect400(await create(base, { ...body, messages: forged }), 'messages.1.content.0: Invalid `data` in `redacted_thinking` block');
  const s = await streamRaw(base, { ...body, messages: history });
  assert.ok(parseSse(s.raw).some(e => e.type === 'content_block_delta' && e.delta.type === 'signature_delta'));
  // a final assistant prefill with thinking while thinking is off
  expect400(await create(base, req([user('x'), asst([history[1].content[0]])])), 'When thinking is disabled, an `assistant` message in the final position cannot contain `thinking`');
  const om = await create(base, req([user('x')], { max_tokens: 2000, thinking: { ...THINK, display: 'omitted' } }));
  assert.equal(om.json.content[0].thinking, '');
});

test('faults: overrides (type, message, should_retry, stop_reason, error_type); state; unknown query', async ({ base }) => {
  await ctl(base, '/_fake/script', { faults: [{ status: 400, type: 'billing_error', message: 'no credit', should_retry: false }, { stop_reason: 'refusal' }, { error_event_after: 2, error_type: 'api_error' }] });
  const st = await ctl(base, '/_fake/state');
  assert.equal(st.faults.length, 3);
  const e = await create(base, req([user('x')]));
  expectErr(e, 400, 'billing_error', 'no credit');
  assert.equal(e.headers.get('x-should-retry'), 'false');
  assert.equal((await create(base, req([user('x')]))).json.stop_reason, 'refusal');
  const ev = parseSse((await streamRaw(base, req([user('x')]))).raw);
  assert.equal(ev.at(-1).error.type, 'api_error');
  await ctl(base, '/_fake/script', { faults: [{ status: 529 }], append: true });
  await ctl(base, '/_fake/script', { faults: [{ status: 500 }], append: true });
  assert.deepEqual((await ctl(base, '/_fake/state')).faults.map(f => f.status), [529, 500]);
  await ctl(base, '/_fake/script', { mode: 'echo' });
  assert.equal((await ctl(base, '/_fake/state')).faults.length, 0);
  expect400(await api(base, '/v1/messages?key=1', req([user('x')])), 'key: Extra inputs are not permitted');
  assert.equal((await api(base, '/v1/messages?beta=true', req([user('x')]))).status, 200);
});

test('echo answer, deterministic tokens, count_tokens equals input_tokens', async ({ base }) => {
  const body = req([user('hello there, fake')], { system: 'be brief', tools: TOOLS });
  const r = await create(base, body);
  assert.equal(r.status, 200);
  assert.match(r.json.id, /^msg_01[A-Za-z0-9]{22}$/);
  assert.deepEqual(r.json.content, [{ type: 'text', text: 'fake-anthropic: hello there, fake' }]);
  assert.equal(r.json.stop_reason, 'end_turn');
  assert.equal(r.json.usage.input_tokens, inputTokens(body));
  assert.equal(r.json.usage.cache_read_input_tokens, 0);
  const c = await count(base, { model: M, messages: body.messages, system: body.system, tools: TOOLS });
  assert.deepEqual(c.json, { input_tokens: inputTokens(body) });
});

test('scripted answers: tool_use, parallel tool_use, usage with cache reads, stop_reason', async ({ base }) => {
  await ctl(base, '/_fake/script', {
    answers: [
      { text: 'calling', tool_use: { name: 'Write', input: { path: '/a' } } },
      { tool_use: [{ name: 'Read', input: { path: '/a' } }, { name: 'Read', input: { path: '/b' }, id: 'toolu_fixed_1' }] },
      { text: 'done', usage: { cache_read_input_tokens: 5, cache_creation_input_tokens: 2 }, stop_reason: 'max_tokens' },
    ],
  });
  // a side request without tools gets the echo and leaves a tool_use answer queued
  const side = await create(base, req([user('title please')]));
  assert.equal(side.json.content[0].text, 'fake-anthropic: title please');
  const a = await create(base, req([user('x')], { tools: TOOLS }));
  assert.deepEqual(a.json.content.map(b => b.type), ['text', 'tool_use']);
  assert.match(a.json.content[1].id, /^toolu_01[A-Za-z0-9]{22}$/);
  assert.equal(a.json.stop_reason, 'tool_use');
  const b = await create(base, req([user('x')], { tools: TOOLS }));
  assert.deepEqual(b.json.content.map(x => x.name), ['Read', 'Read']);
  assert.equal(b.json.content[1].id, 'toolu_fixed_1');
  const body = req([user('x')], { tools: TOOLS });
  const c = await create(base, body);
  assert.equal(c.json.content[0].text, 'done');
  assert.equal(c.json.stop_reason, 'max_tokens');
  assert.equal(c.json.usage.cache_read_input_tokens, 5);
  assert.equal(c.json.usage.cache_creation_input_tokens, 2);
  assert.equal(c.json.usage.input_tokens, inputTokens(body) - 7);
  assert.equal((await ctl(base, '/_fake/stats')).answers_used, 3);
  // an answer calling an undeclared tool is a 400 from the fake
  await ctl(base, '/_fake/script', { answers: [{ tool_use: { name: 'Bash' } }] });
  expect400(await create(base, req([user('x')], { tools: TOOLS })), 'fake-anthropic script');
});

test('script: bad scripts are refused', async ({ base }) => {
  for (const s of [{ nope: 1 }, { faults: [{ status: 418 }] }, { faults: [{ cut: 1 }] }, { answers: [{}] }, { answers: [{ text: 'x', extra: 1 }] }, { mode: 'agent' }]) {
    const r = await fetch(base + '/_fake/script', { method: 'POST', body: JSON.stringify(s) });
    assert.equal(r.status, 400, JSON.stringify(s));
  }
});

test('stream: the real event sequence, and it assembles to the JSON answer', async ({ base }) => {
  const answer = { text: 'some words to stream in pieces', tool_use: { name: 'Write', input: { path: '/tmp/a', content: 'x'.repeat(40) }, id: 'toolu_same' } };
  await ctl(base, '/_fake/script', { answers: [answer, answer] });
  const body = req([user('go')], { tools: TOOLS, max_tokens: 3000, thinking: THINK });
  const json = (await create(base, body)).json;
  const s = await streamRaw(base, body);
  assert.equal(s.status, 200);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  assert.match(s.headers['request-id'], /^req_011C/);
  const ev = parseSse(s.raw);
  const names = ev.map(e => (e.type === 'content_block_delta' ? `delta:${e.delta.type}` : e.type));
  assert.equal(names[0], 'message_start');
  assert.equal(names[1], 'content_block_start');
  assert.equal(names[2], 'ping');
  assert.deepEqual(names.slice(-2), ['message_delta', 'message_stop']);
  assert.ok(names.filter(n => n === 'delta:thinking_delta').length >= 2);
  assert.equal(names.filter(n => n === 'delta:signature_delta').length, 1);
  assert.ok(names.filter(n => n === 'delta:text_delta').length >= 3);
  assert.ok(names.filter(n => n === 'delta:input_json_delta').length >= 3);
  assert.equal(ev[0].message.stop_reason, null);
  assert.equal(ev[0].message.usage.input_tokens, inputTokens(body));
  const got = assemble(ev);
  const norm = m => ({ ...m, id: 'x', content: m.content.map(b => (b.type === 'thinking' ? { ...b, signature: 'S' } : b)) });
  assert.deepEqual(norm(got), norm(json));
});

test('faults: 429 with retry-after, 529, 500, 503, 504', async ({ base }) => {
  await ctl(base, '/_fake/script', { faults: [{ status: 429, retry_after: 7 }, { status: 529 }, { status: 500 }, { status: 503 }, { status: 504, message: 'slow' }] });
  // count_tokens does not use up a fault
  assert.equal((await count(base, { model: M, messages: [user('x')] })).status, 200);
  const r429 = await create(base, req([user('x')]));
  expectErr(r429, 429, 'rate_limit_error');
  assert.equal(r429.headers.get('retry-after'), '7');
  assert.ok(r429.headers.get('anthropic-ratelimit-requests-limit'));
  expectErr(await create(base, req([user('x')])), 529, 'overloaded_error', 'Overloaded');
  expectErr(await create(base, req([user('x')])), 500, 'api_error');
  expectErr(await create(base, req([user('x')])), 503, 'api_error');
  expectErr(await create(base, req([user('x')])), 504, 'timeout_error', 'slow');
  assert.equal((await create(base, req([user('x')]))).status, 200);
  // an invalid request does not use up a fault
  await ctl(base, '/_fake/script', { faults: [{ status: 529 }] });
  expect400(await create(base, req([user('')])));
  expectErr(await create(base, req([user('x')])), 529, 'overloaded_error');
});

test('faults: slow first byte, stall, cut mid-stream, cut JSON, event: error', async ({ base }) => {
  await ctl(base, '/_fake/script', { faults: [{ delay_headers_ms: 300 }] });
  const t0 = Date.now();
  assert.equal((await create(base, req([user('x')]))).status, 200);
  assert.ok(Date.now() - t0 >= 280, 'delayed');

  await ctl(base, '/_fake/script', { faults: [{ stall_after_events: 2, ms: 300 }] });
  const t1 = Date.now();
  const st = await streamRaw(base, req([user('x')]));
  assert.ok(st.complete && Date.now() - t1 >= 280);
  assert.equal(parseSse(st.raw).at(-1).type, 'message_stop');

  await ctl(base, '/_fake/script', { faults: [{ cut_after_events: 3 }] });
  const cut = await streamRaw(base, req([user('x')]));
  assert.equal(cut.status, 200);
  assert.equal(cut.complete, false);
  assert.equal(cut.raw.split('\n\n').filter(Boolean).length, 3);
  assert.ok(!cut.raw.includes('message_stop'));

  await ctl(base, '/_fake/script', { faults: [{ cut_after_events: 0 }] });
  const r = await fetch(base + '/v1/messages', { method: 'POST', headers: HDRS, body: JSON.stringify(req([user('x')])) });
  await assert.rejects(r.text());

  await ctl(base, '/_fake/script', { faults: [{ error_event_after: 4 }] });
  const ee = await streamRaw(base, req([user('x')]));
  assert.ok(ee.complete);
  const evs = parseSse(ee.raw);
  assert.equal(evs.length, 5);
  assert.deepEqual(evs[4].error, { type: 'overloaded_error', message: 'Overloaded' });

  const stats = await ctl(base, '/_fake/stats');
  assert.equal(stats.aborted_streams, 0, 'cuts the fake makes do not count as aborts');
});

test('stats: a client that goes away mid-stream counts as an aborted stream', async ({ base }) => {
  await ctl(base, '/_fake/script', { chunk_delay_ms: 50 });
  await streamRaw(base, req([user('x')]), { onData: (buf, r) => buf.includes('content_block_start') && r.destroy() });
  await new Promise(r => setTimeout(r, 200));
  const s = await ctl(base, '/_fake/stats');
  assert.equal(s.aborted_streams, 1);
  assert.equal(s.streams_in_flight, 0);
  assert.ok(s.connections_opened >= 1);
});

test('models: list and get', async ({ base }) => {
  const l = await api(base, '/v1/models', undefined, { method: 'GET' });
  assert.equal(l.status, 200);
  assert.ok(l.json.data.some(m => m.id === 'claude-sonnet-4-5-20250929' && m.type === 'model' && m.display_name));
  assert.equal(l.json.has_more, false);
  const g = await api(base, '/v1/models/claude-opus-4-5', undefined, { method: 'GET' });
  assert.equal(g.json.id, 'claude-opus-4-5-20251101');
  expectErr(await api(base, '/v1/models/gpt-4', undefined, { method: 'GET' }), 404, 'not_found_error');
});

// ------------------------------------------------------------------------------------------------
// Cross-check with the official SDK

function ensureSdk() {
  if (fs.existsSync(SDK_ENTRY)) return;
  process.stderr.write('fake_anthropic_selftest: npm ci in tests/fakes/anthropic_sdk\n');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: SDK_DIR, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  if (r.status !== 0 || !fs.existsSync(SDK_ENTRY)) throw new Error(`npm ci failed in ${SDK_DIR} (status ${r.status})`);
}

let SDK = null;
async function sdk() {
  if (!SDK) {
    ensureSdk();
    SDK = await import(pathToFileURL(SDK_ENTRY).href);
  }
  return SDK;
}
const client = async (base, o = {}) => {
  const { default: Anthropic } = await sdk();
  return new Anthropic({ apiKey: KEY, baseURL: base, maxRetries: 0, timeout: 10_000, ...o });
};
// The SDK warns about deprecated models (claude-sonnet-4-5, claude-opus-4-5) on stderr: its checks use haiku.
const SM = 'claude-haiku-4-5';
const sreq = (messages, extra = {}) => ({ ...req(messages, extra), model: SM });
// Ids and thinking signatures are fresh per answer; the SDK's stream helper adds parsed_output (null without
// output_format), which is the SDK's, not the wire's.
const normSdk = m => {
  const { parsed_output, ...rest } = m;
  assert.ok(parsed_output === undefined || parsed_output === null);
  return JSON.parse(JSON.stringify({ ...rest, id: 'x', content: m.content.map(b => (b.type === 'thinking' ? { ...b, signature: 'S' } : b)) }));
};

test('sdk: create and stream().finalMessage() agree (text, thinking, tool_use, parallel tool_use)', async ({ base }) => {
  const c = await client(base);
  const cases = [
    [{ text: 'plain answer from the script' }, {}],
    [{ text: 'thought first' }, { thinking: THINK, max_tokens: 3000 }],
    [{ text: 'calling', tool_use: { name: 'Write', input: { path: '/tmp/a', nested: { k: [1, 2, 'x'] } }, id: 'toolu_sdk_1' } }, { tools: TOOLS }],
    [{ tool_use: [{ name: 'Read', input: { path: '/a' }, id: 'toolu_p1' }, { name: 'Read', input: { path: '/b' }, id: 'toolu_p2' }] }, { tools: TOOLS, thinking: THINK, max_tokens: 3000 }],
  ];
  for (const [answer, extra] of cases) {
    await ctl(base, '/_fake/script', { answers: [answer, answer] });
    const params = sreq([user('cross-check')], extra);
    const plain = await c.messages.create(params);
    const stream = c.messages.stream(params);
    const events = [];
    stream.on('streamEvent', e => events.push(e.type));
    const fin = await stream.finalMessage();
    assert.equal(JSON.stringify(normSdk(fin)), JSON.stringify(normSdk(plain)), JSON.stringify(answer));
    assert.ok(events.includes('message_start') && events.includes('message_stop'));
    const seen = (await ctl(base, '/_fake/requests')).at(-1);
    assert.equal(seen.version, '2026-10-21', 'the SDK sends its API version');
    assert.equal(seen.auth, 'bearer', 'the SDK sends the API key as a bearer token');
    if (extra.thinking) assert.ok(S_OK(fin.content[0].signature), 'the stream carried the signature');
  }
});
const S_OK = s => typeof s === 'string' && /^[A-Za-z0-9+/]+=+$/.test(s);

test('sdk: a streamed thinking turn goes back as history; countTokens matches usage', async ({ base }) => {
  const c = await client(base);
  await ctl(base, '/_fake/script', { answers: [{ tool_use: { name: 'Write', input: { path: '/x' } } }] });
  const params = sreq([user('do it')], { tools: TOOLS, thinking: THINK, max_tokens: 3000 });
  const fin = await c.messages.stream(params).finalMessage();
  const toolId = fin.content.find(b => b.type === 'tool_use').id;
  const next = { ...params, messages: [...params.messages, { role: 'assistant', content: fin.content }, user([{ type: 'tool_result', tool_use_id: toolId, content: 'written' }])] };
  const m2 = await c.messages.create(next);
  assert.equal(m2.stop_reason, 'end_turn');
  const { max_tokens, ...countParams } = next;
  const ct = await c.messages.countTokens(countParams);
  assert.equal(ct.input_tokens, m2.usage.input_tokens);
  assert.equal(ct.input_tokens, inputTokens(next));
});

test('sdk: typed errors with status', async ({ base }) => {
  const E = await sdk();
  const c = await client(base);
  const p = sreq([user('x')]);
  const expectSdk = async (fn, cls, status, type) => {
    const e = await fn().then(() => null, x => x);
    assert.ok(e instanceof cls, `want ${cls.name}, got ${e && e.constructor.name}: ${e && e.message}`);
    assert.equal(e.status, status);
    if (type) assert.equal(e.error.error.type, type);
    if (status) assert.match(e.requestID, /^req_011C/);
    return e;
  };
  await ctl(base, '/_fake/script', { faults: [{ status: 429, retry_after: 3 }, { status: 529 }, { status: 500 }, { status: 503 }] });
  const e429 = await expectSdk(() => c.messages.create(p), E.RateLimitError, 429, 'rate_limit_error');
  assert.equal(e429.headers.get('retry-after'), '3');
  await expectSdk(() => c.messages.create(p), E.OverloadedError, 529, 'overloaded_error');
  await expectSdk(() => c.messages.create(p), E.InternalServerError, 500, 'api_error');
  await expectSdk(() => c.messages.create(p), E.ServiceUnavailableError, 503, 'api_error');
  const bad = await expectSdk(() => c.messages.create({ ...p, max_tokens: 64001 }), E.BadRequestError, 400, 'invalid_request_error');
  assert.ok(bad.message.includes('maximum allowed number of output tokens'));
  await expectSdk(() => c.messages.create({ ...p, model: 'claude-nope' }), E.NotFoundError, 404, 'not_found_error');
  await expectSdk(async () => (await client(base, { apiKey: 'wrong' })).messages.create(p), E.AuthenticationError, 401, 'authentication_error');
  await expectSdk(() => c.messages.countTokens({ ...p }), E.BadRequestError, 400, 'invalid_request_error');
  // an error event mid-stream becomes an APIError of that type; a cut stream is an error too
  await ctl(base, '/_fake/script', { faults: [{ error_event_after: 3 }] });
  const ee = await c.messages.stream(p).finalMessage().then(() => null, x => x);
  assert.ok(ee instanceof E.APIError, `got ${ee}`);
  assert.equal(ee.error.error.type, 'overloaded_error');
  await ctl(base, '/_fake/script', { faults: [{ cut_after_events: 3 }] });
  const cut = await c.messages.stream(p).finalMessage().then(() => null, x => x);
  assert.ok(cut instanceof Error, 'a cut stream rejects');
  // with retries on, the SDK honours retry-after and then succeeds
  await ctl(base, '/_fake/script', { faults: [{ status: 529, retry_after: 0 }] });
  const retrying = await client(base, { maxRetries: 1 });
  const ok = await retrying.messages.create(p);
  assert.equal(ok.type, 'message');
});

// ------------------------------------------------------------------------------------------------

async function run() {
  const watchdog = setTimeout(() => {
    console.log('not ok - selftest finished within 240 s');
    process.exit(1);
  }, 240_000);
  watchdog.unref();
  const shared = await startFake();
  const result = await suite.run({ filter: FILTER, style: 'tap', before: () => ctl(shared.base, '/_fake/reset', {}), arg: { base: shared.base } });
  await shared.stop();
  reportAndExit(result);
}

run();
