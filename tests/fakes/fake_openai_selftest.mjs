#!/usr/bin/env node
// Self-test of tests/fakes/fake_openai.mjs: starts the fake as child processes and checks every rule, fault
// and mode over real HTTP, then cross-checks the fake with the official `openai` npm client (installed into
// tests/fakes/sdk-openai from its lock file with `npm ci` when missing). Prints "N passed, N failed"; exits
// non-zero on failure.
//   node tests/fakes/fake_openai_selftest.mjs [filter-substring]

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promptTokens } from './fake_openai_validate.mjs';
import { ctl, fakeLauncher, fetchJson, mainWithFake, testSuite } from './selftest_lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(HERE, 'fake_openai.mjs');
const SDK_DIR = path.join(HERE, 'sdk-openai');
const KEY = 'test-openai-key';
const FILTER = process.argv[2] || '';
const ID = {
  completion: /^chatcmpl-[A-Za-z0-9]{29}$/,
  toolCall: /^call_[A-Za-z0-9]{24}$/,
  fingerprint: /^fp_[0-9a-f]{10}$/,
  request: /^req_[0-9a-f]{32}$/,
};

// ------------------------------------------------------------------------------------------------
// Harness

const launcher = fakeLauncher(FAKE);
const { startFake } = launcher;
const suite = testSuite();
const { test, tests } = suite;

const user = content => ({ role: 'user', content });
const tool = (name, props = { x: { type: 'string' } }) => ({ type: 'function', function: { name, description: `the ${name} tool`, parameters: { type: 'object', properties: props } } });
const TOOLS = [tool('Write'), tool('Read'), tool('Bash')];
const call = (id, name = 'Write', args = { x: '1' }) => ({ id, type: 'function', function: { name, arguments: JSON.stringify(args) } });
const asst = calls => ({ role: 'assistant', content: null, tool_calls: calls });
const toolMsg = (id, content = 'ok') => ({ role: 'tool', tool_call_id: id, content });
const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

async function api(base, p, body, { key = KEY, method = 'POST', headers = {} } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (key !== null) h.authorization = `Bearer ${key}`;
  return fetchJson(base + p, { method, headers: h, body });
}
const chat = (base, body, opts) => api(base, '/v1/chat/completions', body, opts);
const req = (extra = {}) => ({ model: 'gpt-4o', messages: [user('hi')], ...extra });

// Raw streaming read (node:http, so the test sees cuts and timing).
function streamRaw(base, body, { onData } = {}) {
  return new Promise(resolve => {
    const started = Date.now();
    const rq = http.request(`${base}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, agent: false }, res => {
      let buf = '';
      let firstByte = null;
      res.setEncoding('utf8');
      res.on('data', d => {
        if (firstByte === null) firstByte = Date.now() - started;
        buf += d;
        if (onData) onData(buf, rq, res);
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: buf, complete: true, firstByte, headersAt: res.headersAt }));
      res.on('error', e => resolve({ status: res.statusCode, headers: res.headers, raw: buf, complete: false, error: e }));
      res.on('aborted', () => resolve({ status: res.statusCode, headers: res.headers, raw: buf, complete: false }));
    });
    rq.on('response', res => (res.headersAt = Date.now() - started));
    rq.on('error', e => resolve({ status: 0, raw: '', complete: false, error: e }));
    rq.end(JSON.stringify(body));
  });
}

// "data: X\n\n" events -> [X...]
function sseData(raw) {
  return raw
    .split('\n\n')
    .filter(Boolean)
    .map(ev => {
      assert.ok(ev.startsWith('data: '), `event starts with "data: ": ${ev.slice(0, 40)}`);
      return ev.slice(6);
    });
}
function chunksOf(raw) {
  const d = sseData(raw);
  assert.equal(d[d.length - 1], '[DONE]', 'stream ends with data: [DONE]');
  return d.slice(0, -1).map(x => JSON.parse(x));
}

function expect400(res, needle, { param, code } = {}) {
  assert.equal(res.status, 400, `want 400, got ${res.status}: ${res.text}`);
  const e = res.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(e.type, 'invalid_request_error');
  if (needle !== undefined) assert.ok(e.message.includes(needle), `message should include ${JSON.stringify(needle)}: ${e.message}`);
  if (param !== undefined) assert.equal(e.param, param, `param: ${JSON.stringify(e)}`);
  if (code !== undefined) assert.equal(e.code, code, `code: ${JSON.stringify(e)}`);
}

// Rebuild a completion from chunks, the plain way (not the SDK's).
function assemble(chunks) {
  const msg = { role: null, content: null, tool_calls: [] };
  let finish = null;
  let usage = null;
  for (const c of chunks) {
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      const d = ch.delta;
      if (d.role) msg.role = d.role;
      if (typeof d.content === 'string') msg.content = (msg.content || '') + d.content;
      for (const tc of d.tool_calls || []) {
        const t = (msg.tool_calls[tc.index] ||= { id: null, type: null, function: { name: '', arguments: '' } });
        if (tc.id) t.id = tc.id;
        if (tc.type) t.type = tc.type;
        if (tc.function && tc.function.name) t.function.name += tc.function.name;
        if (tc.function && tc.function.arguments) t.function.arguments += tc.function.arguments;
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  if (!msg.tool_calls.length) delete msg.tool_calls;
  return { msg, finish, usage };
}

// ------------------------------------------------------------------------------------------------
// Tests (one shared fake; each test resets it)

let F;

test('CLI: one {"port":N} line on stdout, 127.0.0.1 only', async () => {
  assert.match(F.line, /^\{"port":\d+\}$/);
  const r = await api(F.base, '/v1/models', undefined, { method: 'GET' });
  assert.equal(r.status, 200);
  const ifs = Object.values(os.networkInterfaces()).flat().filter(i => i && i.family === 'IPv4' && !i.internal);
  if (ifs.length) {
    const e = await fetch(`http://${ifs[0].address}:${F.port}/v1/models`).then(() => null, x => x);
    assert.ok(e, 'not reachable on a non-loopback address');
  }
});

test('list and get models; unknown model 404 model_not_found', async () => {
  const r = await api(F.base, '/v1/models', undefined, { method: 'GET' });
  assert.equal(r.json.object, 'list');
  assert.ok(r.json.data.some(m => m.id === 'gpt-4o' && m.object === 'model' && m.owned_by));
  assert.ok(r.json.data.some(m => m.id === 'o3-mini'));
  const one = await api(F.base, '/v1/models/gpt-4o', undefined, { method: 'GET' });
  assert.equal(one.json.id, 'gpt-4o');
  const no = await api(F.base, '/v1/models/nope', undefined, { method: 'GET' });
  assert.equal(no.status, 404);
  assert.equal(no.json.error.code, 'model_not_found');
  const c = await chat(F.base, req({ model: 'claude-3' }));
  assert.equal(c.status, 404);
  assert.equal(c.json.error.code, 'model_not_found');
  assert.ok(c.json.error.message.includes('`claude-3` does not exist'));
});

test('echo: the real completion shape, id formats, deterministic usage', async () => {
  const body = req({ messages: [{ role: 'system', content: 'be brief' }, user('Hello there, fake OpenAI! This sentence is longer than forty characters.')] });
  const r = await chat(F.base, body);
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.match(r.headers.get('x-request-id'), ID.request);
  const j = r.json;
  assert.match(j.id, ID.completion);
  assert.equal(j.object, 'chat.completion');
  assert.ok(Number.isInteger(j.created) && Math.abs(j.created - Date.now() / 1000) < 60);
  assert.equal(j.model, 'gpt-4o');
  assert.match(j.system_fingerprint, ID.fingerprint);
  assert.equal(j.choices.length, 1);
  assert.deepEqual(j.choices[0], {
    index: 0,
    message: { role: 'assistant', content: 'fake-openai: Hello there, fake OpenAI! This sentence ', refusal: null, annotations: [] },
    logprobs: null,
    finish_reason: 'stop',
  });
  const u = j.usage;
  assert.equal(u.prompt_tokens, promptTokens(body));
  assert.equal(u.completion_tokens, Math.ceil(j.choices[0].message.content.length / 4));
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.equal(u.prompt_tokens_details.cached_tokens, 0);
  assert.equal(u.completion_tokens_details.reasoning_tokens, 0);
});

test('echo: array content, last user text, never half a surrogate pair', async () => {
  let r = await chat(F.base, req({ messages: [user('first'), { role: 'assistant', content: 'x' }, user([{ type: 'text', text: 'a' }, { type: 'text', text: 'second' }])] }));
  assert.equal(r.json.choices[0].message.content, 'fake-openai: second');
  r = await chat(F.base, req({ messages: [user('😀'.repeat(50))] }));
  assert.equal(r.json.choices[0].message.content, 'fake-openai: ' + '😀'.repeat(40));
});

test('auth: missing key 401, wrong key 401 invalid_api_key (masked), not Bearer 401', async () => {
  let r = await chat(F.base, req(), { key: null });
  assert.equal(r.status, 401);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.ok(r.json.error.message.startsWith("You didn't provide an API key."));
  assert.equal(r.json.error.type, 'invalid_request_error');
  r = await chat(F.base, req(), { key: 'sk-wrong-key-1234' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'invalid_api_key');
  assert.ok(r.json.error.message.startsWith('Incorrect API key provided: sk-**********1234.'), r.json.error.message);
  r = await chat(F.base, req(), { key: null, headers: { authorization: `Basic ${KEY}` } });
  assert.equal(r.status, 401);
  r = await chat(F.base, req(), { key: null, headers: { 'x-api-key': KEY } });
  assert.equal(r.status, 401, 'x-api-key is not OpenAI auth');
  r = await api(F.base, '/v1/models', undefined, { method: 'GET', key: null });
  assert.equal(r.status, 401);
});

test('unknown path 404 "Invalid URL", GET on completions 404, bad JSON 400, empty body 400', async () => {
  let r = await api(F.base, '/v1/completions', req());
  assert.equal(r.status, 404);
  assert.equal(r.json.error.message, 'Invalid URL (POST /v1/completions)');
  r = await api(F.base, '/v1/chat/completions', undefined, { method: 'GET' });
  assert.equal(r.status, 404);
  r = await chat(F.base, '{"model":');
  expect400(r, 'We could not parse the JSON body of your request.');
  r = await chat(F.base, '');
  expect400(r, 'you must provide a model parameter');
  r = await chat(F.base, '[1]');
  expect400(r, 'expected an object');
});

test('unknown top-level fields: "Unrecognized request argument supplied: x"', async () => {
  for (const k of ['foo', 'maxTokens', 'system', 'thinking', 'max_output_tokens', 'input']) {
    const r = await chat(F.base, req({ [k]: 1 }));
    expect400(r, undefined, { param: null, code: null });
    assert.equal(r.json.error.message, `Unrecognized request argument supplied: ${k}`);
  }
  const r = await chat(F.base, req({ functions: [{ name: 'f' }] }));
  expect400(r, 'Unrecognized request argument supplied: functions');
});

test('null optional fields count as absent; known optional fields accepted', async () => {
  let r = await chat(F.base, req({ temperature: null, tools: null, stream: null, stream_options: null, max_tokens: null, user: null }));
  assert.equal(r.status, 200, r.text);
  r = await chat(F.base, req({ temperature: 0.2, top_p: 0.9, presence_penalty: 0.5, frequency_penalty: -1, seed: 7, stop: ['x', 'y'], user: 'u1', store: false, metadata: { a: 'b' }, n: 1, service_tier: 'auto', max_tokens: 100, response_format: { type: 'text' }, prompt_cache_key: 'k', safety_identifier: 's', logprobs: true, top_logprobs: 2 }));
  assert.equal(r.status, 200, r.text);
});

test('required fields and types', async () => {
  expect400(await chat(F.base, { messages: [user('x')] }), 'you must provide a model parameter');
  expect400(await chat(F.base, { model: 'gpt-4o' }), "Missing required parameter: 'messages'.", { param: 'messages', code: 'missing_required_parameter' });
  expect400(await chat(F.base, req({ messages: [] })), "Invalid 'messages': empty array.", { param: 'messages', code: 'empty_array' });
  expect400(await chat(F.base, req({ messages: 'hi' })), "Invalid type for 'messages': expected an array, but got a string instead.", { code: 'invalid_type' });
  expect400(await chat(F.base, req({ temperature: '0.5' })), "Invalid type for 'temperature': expected a decimal, but got a string instead.", { param: 'temperature', code: 'invalid_type' });
  expect400(await chat(F.base, req({ temperature: 2.5 })), "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead.", { code: 'decimal_above_max_value' });
  expect400(await chat(F.base, req({ top_p: -0.1 })), 'decimal below minimum value', { param: 'top_p' });
  expect400(await chat(F.base, req({ max_tokens: 1.5 })), "Invalid type for 'max_tokens': expected an integer", { param: 'max_tokens' });
  expect400(await chat(F.base, req({ max_tokens: 0 })), 'integer below minimum value', { param: 'max_tokens' });
  expect400(await chat(F.base, req({ stream: 'yes' })), "Invalid type for 'stream': expected a boolean", { param: 'stream' });
  expect400(await chat(F.base, req({ n: 2 })), 'one choice only', { param: 'n' });
  expect400(await chat(F.base, req({ stop: ['a', 'b', 'c', 'd', 'e'] })), 'array too long', { param: 'stop' });
  expect400(await chat(F.base, req({ metadata: { a: 1 } })), "Invalid type for 'metadata.a'");
  expect400(await chat(F.base, req({ top_logprobs: 2 })), "'logprobs' must be set to true");
  expect400(await chat(F.base, req({ service_tier: 'gold' })), "Invalid value: 'gold'.", { code: 'invalid_value' });
  expect400(await chat(F.base, req({ response_format: { type: 'json_object' } })), "must contain the word 'json'");
  assert.equal((await chat(F.base, req({ messages: [user('answer in JSON')], response_format: { type: 'json_object' } }))).status, 200);
  expect400(await chat(F.base, req({ response_format: { type: 'json_schema', json_schema: { schema: {} } } })), "'response_format.json_schema.name'");
});

test('roles: system/developer/user/assistant/tool only, with the real message', async () => {
  for (const role of ['system', 'developer']) assert.equal((await chat(F.base, req({ messages: [{ role, content: 'rules' }, user('hi')] }))).status, 200);
  let r = await chat(F.base, req({ messages: [{ role: 'model', content: 'x' }, user('hi')] }));
  expect400(r, "Invalid value: 'model'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", { param: 'messages[0].role', code: 'invalid_value' });
  r = await chat(F.base, req({ messages: [{ role: 'function', name: 'f', content: 'x' }, user('hi')] }));
  expect400(r, 'deprecated', { param: 'messages[0].role' });
  r = await chat(F.base, req({ messages: [{ content: 'x' }] }));
  expect400(r, "Missing required parameter: 'messages[0].role'.", { code: 'missing_required_parameter' });
  r = await chat(F.base, req({ messages: [{ role: 'user', content: 'x', tool_call_id: 'c' }] }));
  expect400(r, "Additional properties are not allowed ('tool_call_id' was unexpected) - 'messages[0]'");
  r = await chat(F.base, req({ messages: [{ role: 'user', content: 'x', cache_control: { type: 'ephemeral' } }] }));
  expect400(r, "('cache_control' was unexpected)");
  r = await chat(F.base, req({ messages: [user('hi'), { role: 'assistant', content: 'prefill' }] }));
  expect400(r, "the last message has role 'assistant'");
  r = await chat(F.base, req({ messages: [{ role: 'user' }] }));
  expect400(r, "Missing required parameter: 'messages[0].content'.");
});

test('content: strings, parts, empty content refused', async () => {
  expect400(await chat(F.base, req({ messages: [user('')] })), "Invalid 'messages[0].content': empty string.");
  expect400(await chat(F.base, req({ messages: [user([])] })), "Invalid 'messages[0].content': empty array.", { code: 'empty_array' });
  expect400(await chat(F.base, req({ messages: [user([{ type: 'image', source: {} }])] })), "Invalid value: 'image'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'.", { param: 'messages[0].content[0].type' });
  expect400(await chat(F.base, req({ messages: [user([{ text: 'x' }])] })), "Missing required parameter: 'messages[0].content[0].type'.");
  expect400(await chat(F.base, req({ messages: [user([{ type: 'text', text: 'x', cache_control: {} }])] })), "('cache_control' was unexpected)");
  expect400(await chat(F.base, req({ messages: [user([{ type: 'text', text: 5 }])] })), "Invalid type for 'messages[0].content[0].text'");
  expect400(await chat(F.base, req({ messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: PNG } }] }, user('x')] })), "Image URLs are only allowed for messages with role 'user'");
  assert.equal((await chat(F.base, req({ messages: [{ role: 'system', content: [{ type: 'text', text: 'rules' }] }, user('x')] }))).status, 200);
});

test('image_url parts: data URLs with an image MIME type and valid base64, or http(s)', async () => {
  const img = (url, extra = {}) => req({ messages: [user([{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url, ...extra } }])] });
  assert.equal((await chat(F.base, img(PNG))).status, 200);
  assert.equal((await chat(F.base, img(PNG, { detail: 'low' }))).status, 200);
  assert.equal((await chat(F.base, img('https://example.com/cat.png'))).status, 200);
  expect400(await chat(F.base, img('data:text/plain;base64,aGVsbG8=')), "unsupported MIME type 'text/plain'", { param: 'messages[0].content[1].image_url.url', code: 'invalid_value' });
  expect400(await chat(F.base, img('data:image/png;base64,not base64!')), 'not valid base64');
  expect400(await chat(F.base, img('data:image/png;base64,aGVsbG8')), 'padded');
  expect400(await chat(F.base, img('iVBORw0KGgo=')), 'Expected a valid URL');
  expect400(await chat(F.base, img(PNG, { detail: 'max' })), "Invalid value: 'max'.");
  expect400(await chat(F.base, req({ messages: [user([{ type: 'image_url', image_url: PNG }])] })), "Invalid type for 'messages[0].content[0].image_url': expected an object");
  expect400(await chat(F.base, req({ messages: [user('x'), { role: 'assistant', content: [{ type: 'image_url', image_url: { url: PNG } }] }, user('y')] })), "this message with role 'assistant' contains an image URL");
});

test('tool pairing: a tool message answers a tool_calls id of the preceding assistant message', async () => {
  const ok = await chat(F.base, req({ tools: TOOLS, messages: [user('go'), asst([call('call_1'), call('call_2', 'Read')]), toolMsg('call_2'), toolMsg('call_1', [{ type: 'text', text: 'done' }]), user('next')] }));
  assert.equal(ok.status, 200, ok.text);
  let r = await chat(F.base, req({ messages: [user('go'), toolMsg('call_1')] }));
  expect400(r, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", { param: 'messages.[1].role', code: null });
  r = await chat(F.base, req({ messages: [user('go'), asst([call('call_1')]), toolMsg('call_9')] }));
  expect400(r, "Invalid parameter: 'tool_call_id' of 'call_9' not found in 'tool_calls' of previous message.", { param: 'messages.[2].tool_call_id' });
  r = await chat(F.base, req({ messages: [user('go'), asst([call('call_1'), call('call_2')]), toolMsg('call_1'), user('next')] }));
  expect400(r, "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: call_2", { param: 'messages.[3].role' });
  r = await chat(F.base, req({ messages: [user('go'), asst([call('call_1')]), toolMsg('call_1'), toolMsg('call_1')] }));
  expect400(r, 'answered twice');
  r = await chat(F.base, req({ messages: [user('go'), asst([call('call_1')]), { role: 'system', content: 'reminder' }, toolMsg('call_1')] }));
  expect400(r, 'did not have response messages: call_1');
  r = await chat(F.base, req({ messages: [user('go'), asst([call('call_1')])] }));
  expect400(r, 'did not have response messages: call_1', { param: 'messages.[1].role' });
  r = await chat(F.base, req({ messages: [user('go'), asst([call('call_1')]), toolMsg('call_1'), toolMsg('call_1x')] }));
  expect400(r, "'call_1x' not found");
  r = await chat(F.base, req({ messages: [user('go'), { role: 'tool', content: 'x' }] }));
  expect400(r, "Missing required parameter: 'messages[1].tool_call_id'.");
  r = await chat(F.base, req({ messages: [user('go'), asst([call('call_1')]), toolMsg('call_1', [{ type: 'image_url', image_url: { url: PNG } }])] }));
  expect400(r, "role 'tool' contains an image URL");
});

test('tool_calls in assistant messages: id (<= 40 chars, unique), type function, arguments JSON text', async () => {
  const conv = c => req({ messages: [user('go'), asst([c]), toolMsg(c.id || 'x')] });
  let r = await chat(F.base, conv(call('c'.repeat(41))));
  expect400(r, 'string too long. Expected a string with maximum length 40', { code: 'string_above_max_length' });
  assert.equal((await chat(F.base, conv(call('c'.repeat(40))))).status, 200);
  assert.equal((await chat(F.base, conv(call('toolu_01ABCdef')))).status, 200, 'any id format is accepted without --strict-tool-ids');
  r = await chat(F.base, req({ messages: [user('go'), asst([call('a'), call('a')]), toolMsg('a')] }));
  expect400(r, "duplicate tool call id 'a'");
  r = await chat(F.base, conv({ ...call('a'), type: 'tool_use' }));
  expect400(r, "Invalid value: 'tool_use'. Supported values are: 'function'.");
  r = await chat(F.base, conv({ id: 'a', type: 'function', function: { name: 'Write', arguments: { x: 1 } } }));
  expect400(r, "Invalid type for 'messages[1].tool_calls[0].function.arguments': expected a string, but got an object instead.");
  r = await chat(F.base, conv({ id: 'a', type: 'function', function: { name: 'Write', arguments: '{"x":' } }));
  expect400(r, 'expected the JSON text of an object');
  r = await chat(F.base, conv({ id: 'a', function: { name: 'Write', arguments: '{}' } }));
  expect400(r, "Missing required parameter: 'messages[1].tool_calls[0].type'.");
  r = await chat(F.base, conv({ ...call('a'), index: 0 }));
  expect400(r, "('index' was unexpected)");
  r = await chat(F.base, req({ messages: [user('go'), { role: 'assistant', tool_calls: [call('a')] }, toolMsg('a')] }));
  assert.equal(r.status, 200, 'content may be absent with tool_calls');
  r = await chat(F.base, req({ messages: [user('go'), { role: 'assistant', content: 'let me look', tool_calls: [call('a')] }, toolMsg('a')] }));
  assert.equal(r.status, 200, 'text next to tool_calls');
});

test('tools: type function, name pattern, JSON Schema parameters, unique names', async () => {
  assert.equal((await chat(F.base, req({ tools: [{ type: 'function', function: { name: 'noparams' } }] }))).status, 200);
  let r = await chat(F.base, req({ tools: [] }));
  expect400(r, "Invalid 'tools': empty array.");
  r = await chat(F.base, req({ tools: [{ name: 'Write', input_schema: { type: 'object' } }] }));
  expect400(r, "Missing required parameter: 'tools[0].type'.");
  r = await chat(F.base, req({ tools: [{ type: 'custom_tool', function: { name: 'x' } }] }));
  expect400(r, "Invalid value: 'custom_tool'.", { param: 'tools[0].type' });
  r = await chat(F.base, req({ tools: [tool('has space')] }));
  expect400(r, "Invalid 'tools[0].function.name': string does not match pattern.", { param: 'tools[0].function.name' });
  r = await chat(F.base, req({ tools: [tool('x'.repeat(65))] }));
  expect400(r, 'does not match pattern');
  r = await chat(F.base, req({ tools: [tool('mcp__srv__tool-1')] }));
  assert.equal(r.status, 200, r.text);
  r = await chat(F.base, req({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string' } } }] }));
  expect400(r, `Invalid schema for function 'f': schema must be a JSON Schema of 'type: "object"', got 'type: "string"'.`, { code: 'invalid_function_parameters' });
  r = await chat(F.base, req({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'str' } } } } }] }));
  expect400(r, "'str' is not valid");
  r = await chat(F.base, req({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } }, required: ['b'] } } }] }));
  expect400(r, "'required' names 'b'");
  r = await chat(F.base, req({ tools: [{ type: 'function', function: { name: 'f', strict: true, parameters: { type: 'object', properties: {} } } }] }));
  expect400(r, "'additionalProperties' is required to be supplied and to be false");
  r = await chat(F.base, req({ tools: [{ type: 'function', function: { name: 'f', input_schema: {} } }] }));
  expect400(r, "('input_schema' was unexpected)");
  r = await chat(F.base, req({ tools: [tool('Write'), tool('Write')] }));
  expect400(r, "duplicate function name 'Write'");
  const deep = { type: 'object', properties: { list: { type: 'array', items: { type: 'object', properties: { k: { anyOf: [{ type: 'string' }, { type: 'null' }] } }, required: ['k'], additionalProperties: false } } }, required: ['list'], additionalProperties: false, $schema: 'http://json-schema.org/draft-07/schema#' };
  assert.equal((await chat(F.base, req({ tools: [{ type: 'function', function: { name: 'f', strict: true, parameters: deep } }] }))).status, 200);
});

test('tool_choice and parallel_tool_calls need tools', async () => {
  expect400(await chat(F.base, req({ tool_choice: 'auto' })), "'tool_choice' is only allowed when 'tools' are specified.", { param: 'tool_choice' });
  expect400(await chat(F.base, req({ parallel_tool_calls: true })), "'parallel_tool_calls' is only allowed when 'tools' are specified.", { param: 'parallel_tool_calls' });
  expect400(await chat(F.base, req({ tools: TOOLS, tool_choice: 'any' })), "Invalid value: 'any'. Supported values are: 'none', 'auto', and 'required'.");
  expect400(await chat(F.base, req({ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'Nope' } } })), "function 'Nope' is not among the declared tools");
  expect400(await chat(F.base, req({ tools: TOOLS, tool_choice: { type: 'tool', name: 'Write' } })), "Invalid value: 'tool'.");
  for (const tc of ['none', 'auto', 'required', { type: 'function', function: { name: 'Read' } }])
    assert.equal((await chat(F.base, req({ tools: TOOLS, tool_choice: tc, parallel_tool_calls: false }))).status, 200);
});

test('max_tokens vs max_completion_tokens: refused for reasoning models, with the real message', async () => {
  for (const model of ['o1', 'o3-mini', 'o4-mini', 'gpt-5', 'o5-preview']) {
    const r = await chat(F.base, req({ model, max_tokens: 100 }));
    expect400(r, undefined, { param: 'max_tokens', code: 'unsupported_parameter' });
    assert.equal(r.json.error.message, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.");
    assert.equal((await chat(F.base, req({ model, max_completion_tokens: 100 }))).status, 200);
  }
  assert.equal((await chat(F.base, req({ model: 'gpt-4o', max_tokens: 100 }))).status, 200);
  assert.equal((await chat(F.base, req({ model: 'gpt-4o', max_completion_tokens: 100 }))).status, 200);
  assert.equal((await chat(F.base, req({ model: 'gpt-5-chat-latest', max_tokens: 100 }))).status, 200);
  expect400(await chat(F.base, req({ max_tokens: 10, max_completion_tokens: 10 })), 'both set');
  let r = await chat(F.base, req({ max_tokens: 100000 }));
  expect400(r, 'max_tokens is too large: 100000. This model supports at most 16384 completion tokens, whereas you provided 100000.', { param: 'max_tokens', code: 'invalid_value' });
  r = await chat(F.base, req({ model: 'o3', max_completion_tokens: 100001 }));
  expect400(r, 'at most 100000 completion tokens');
  assert.equal((await chat(F.base, req({ max_tokens: 16384 }))).status, 200);
});

test('--o-series: every model is a reasoning model', async () => {
  const O = await startFake(['--o-series']);
  try {
    expect400(await chat(O.base, req({ model: 'gpt-4o', max_tokens: 10 })), "Unsupported parameter: 'max_tokens'");
    assert.equal((await chat(O.base, req({ model: 'gpt-4o', reasoning_effort: 'low' }))).status, 200);
  } finally {
    await O.stop();
  }
});

test('reasoning_effort only for reasoning models; sampling parameters fixed there; reasoning tokens', async () => {
  let r = await chat(F.base, req({ reasoning_effort: 'low' }));
  expect400(r, "Unsupported parameter: 'reasoning_effort' is not supported with this model.", { param: 'reasoning_effort', code: 'unsupported_parameter' });
  r = await chat(F.base, req({ model: 'o3', reasoning_effort: 'max' }));
  expect400(r, "Invalid value: 'max'. Supported values are: 'minimal', 'low', 'medium', and 'high'.");
  r = await chat(F.base, req({ model: 'o3', temperature: 0.5 }));
  expect400(r, "Unsupported value: 'temperature' does not support 0.5 with this model. Only the default (1) value is supported.", { code: 'unsupported_value' });
  assert.equal((await chat(F.base, req({ model: 'o3', temperature: 1 }))).status, 200);
  expect400(await chat(F.base, req({ model: 'o3', logprobs: true })), "Unsupported parameter: 'logprobs'");
  const lo = await chat(F.base, req({ model: 'o3', reasoning_effort: 'low' }));
  const hi = await chat(F.base, req({ model: 'o3', reasoning_effort: 'high' }));
  assert.equal(lo.json.usage.completion_tokens_details.reasoning_tokens, 8);
  assert.equal(hi.json.usage.completion_tokens_details.reasoning_tokens, 32);
  const u = hi.json.usage;
  assert.equal(u.completion_tokens, Math.ceil(hi.json.choices[0].message.content.length / 4) + 32);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
});

test('stream_options only with stream', async () => {
  let r = await chat(F.base, req({ stream_options: { include_usage: true } }));
  expect400(r, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", { param: 'stream_options', code: null });
  r = await chat(F.base, req({ stream: false, stream_options: { include_usage: true } }));
  expect400(r, "only allowed when 'stream' is enabled");
  r = await chat(F.base, req({ stream: true, stream_options: { include_usage: 'yes' } }));
  expect400(r, "Invalid type for 'stream_options.include_usage'");
  r = await chat(F.base, req({ stream: true, stream_options: { usage: true } }));
  expect400(r, "('usage' was unexpected)");
});

test('stream: SSE chunks, role first, content deltas, finish chunk, usage chunk, [DONE]', async () => {
  const body = req({ messages: [user('Stream me a reasonably long echo, please, thanks!')] });
  const plain = await chat(F.base, body);
  const s = await streamRaw(F.base, { ...body, stream: true, stream_options: { include_usage: true } });
  assert.equal(s.status, 200);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  assert.ok(s.raw.endsWith('data: [DONE]\n\n'));
  const chunks = chunksOf(s.raw);
  const id = chunks[0].id;
  assert.match(id, ID.completion);
  for (const c of chunks) {
    assert.equal(c.id, id, 'one id for all chunks');
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, 'gpt-4o');
    assert.match(c.system_fingerprint, ID.fingerprint);
    assert.ok('usage' in c, 'with include_usage every chunk has usage (null until the last)');
  }
  for (const c of chunks.slice(0, -1)) assert.match(c.obfuscation, /^[A-Za-z0-9]{1,12}$/, 'obfuscation padding on every chunk with a choice');
  assert.equal(chunks[chunks.length - 1].obfuscation, undefined);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
  const content = chunks.slice(1, -2);
  assert.ok(content.length >= 3, 'content comes in >= 3 deltas');
  for (const c of content) {
    assert.deepEqual(Object.keys(c.choices[0].delta), ['content']);
    assert.equal(c.choices[0].finish_reason, null);
    assert.equal(c.usage, null);
  }
  const fin = chunks[chunks.length - 2];
  assert.deepEqual(fin.choices[0].delta, {});
  assert.equal(fin.choices[0].finish_reason, 'stop');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  const { msg, finish, usage } = assemble(chunks);
  assert.equal(msg.content, plain.json.choices[0].message.content);
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, plain.json.usage);
  // without include_usage: no usage key, no usage chunk
  const s2 = await streamRaw(F.base, { ...body, stream: true, stream_options: { include_obfuscation: false } });
  const c2 = chunksOf(s2.raw);
  assert.ok(c2.every(c => !('usage' in c) && !('obfuscation' in c) && c.choices.length === 1));
  assert.equal(c2[c2.length - 1].choices[0].finish_reason, 'stop');
});

test('agent: one tool call (JSON), then the answer checks the tool message by id', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ call: { name: 'Write', args: { file_path: '/tmp/x', content: 'hi' } } }, { text: 'Wrote it.' }] });
  const first = req({ tools: TOOLS, messages: [user('write it')] });
  const r = await chat(F.base, first);
  assert.equal(r.status, 200, r.text);
  const ch = r.json.choices[0];
  assert.equal(ch.finish_reason, 'tool_calls');
  assert.equal(ch.message.content, null);
  assert.equal(ch.message.tool_calls.length, 1);
  const tc = ch.message.tool_calls[0];
  assert.match(tc.id, ID.toolCall);
  assert.equal(tc.type, 'function');
  assert.equal(tc.function.name, 'Write');
  assert.deepEqual(JSON.parse(tc.function.arguments), { file_path: '/tmp/x', content: 'hi' });
  // a side request without tools is an echo and uses no step
  assert.equal((await chat(F.base, req({ messages: [user('title please')] }))).json.choices[0].message.content, 'fake-openai: title please');
  // the wrong id: the validation passes (any id), the agent refuses
  const bad = await chat(F.base, req({ tools: TOOLS, messages: [user('write it'), asst([{ ...tc, id: 'call_other' }]), toolMsg('call_other')] }));
  expect400(bad, 'fake-openai agent: step 1: expected tool messages for');
  const ok = await chat(F.base, req({ tools: TOOLS, messages: [user('write it'), { role: 'assistant', content: null, tool_calls: [tc] }, toolMsg(tc.id, 'File written')] }));
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.choices[0].message.content, 'Wrote it.');
  assert.equal(ok.json.choices[0].finish_reason, 'stop');
  const ag = await ctl(F.base, '/_fake/agent');
  assert.equal(ag.next_step, 2);
  assert.deepEqual(ag.log.filter(l => l.ok).map(l => l.step), [0, 1]);
  assert.deepEqual(ag.log.find(l => l.step === 1 && l.ok).tool_results, [{ tool_call_id: tc.id, content: 'File written' }]);
  const done = await chat(F.base, req({ tools: TOOLS, messages: [user('more')] }));
  assert.equal(done.json.choices[0].message.content, 'done');
});

test('agent: one user message may follow the tool messages (reminders after the results), two may not', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ call: { name: 'Read', args: { x: 'a' } } }, { text: 'Read it.' }] });
  const r = await chat(F.base, req({ tools: TOOLS, messages: [user('read it')] }));
  assert.equal(r.status, 200, r.text);
  const tc = r.json.choices[0].message.tool_calls[0];
  const hist = [user('read it'), asst([tc]), toolMsg(tc.id, 'contents')];
  expect400(await chat(F.base, req({ tools: TOOLS, messages: [...hist, user('<system-reminder>a</system-reminder>'), { role: 'assistant', content: 'hm' }, user('b')] })), 'fake-openai agent: step 1: expected tool messages for');
  const ok = await chat(F.base, req({ tools: TOOLS, messages: [...hist, user('<system-reminder>be brief</system-reminder>')] }));
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.choices[0].message.content, 'Read it.');
  assert.deepEqual((await ctl(F.base, '/_fake/agent')).log.find(l => l.step === 1 && l.ok).tool_results, [{ tool_call_id: tc.id, content: 'contents' }]);
});

test('agent: parallel tool calls streamed with index/id/name then argument fragments', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ calls: [{ name: 'Read', args: { x: 'a' } }, { name: 'Read', args: { x: 'b' } }, { name: 'Bash', args: { x: 'ls -la /tmp' } }] }] });
  const s = await streamRaw(F.base, req({ tools: TOOLS, messages: [user('go')], stream: true, stream_options: { include_usage: true } }));
  const chunks = chunksOf(s.raw);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: null, refusal: null });
  const tcChunks = chunks.filter(c => c.choices[0] && c.choices[0].delta.tool_calls);
  const heads = tcChunks.filter(c => c.choices[0].delta.tool_calls[0].id);
  assert.equal(heads.length, 3);
  heads.forEach((c, i) => {
    const t = c.choices[0].delta.tool_calls[0];
    assert.equal(t.index, i);
    assert.match(t.id, ID.toolCall);
    assert.equal(t.type, 'function');
    assert.equal(t.function.arguments, '');
  });
  const frags = tcChunks.filter(c => !c.choices[0].delta.tool_calls[0].id);
  assert.ok(frags.length >= 6, 'arguments come in fragments');
  for (const c of frags) assert.deepEqual(Object.keys(c.choices[0].delta.tool_calls[0]).sort(), ['function', 'index']);
  const { msg, finish, usage } = assemble(chunks);
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(msg.tool_calls.map(t => [t.function.name, JSON.parse(t.function.arguments)]), [['Read', { x: 'a' }], ['Read', { x: 'b' }], ['Bash', { x: 'ls -la /tmp' }]]);
  assert.equal(new Set(msg.tool_calls.map(t => t.id)).size, 3);
  assert.ok(usage.completion_tokens > 0);
  // the next request must answer all three; answering two is the real pairing error
  const a = asst(msg.tool_calls);
  expect400(await chat(F.base, req({ tools: TOOLS, messages: [user('go'), a, toolMsg(msg.tool_calls[0].id), toolMsg(msg.tool_calls[1].id), user('?')] })), `did not have response messages: ${msg.tool_calls[2].id}`);
  const ok = await chat(F.base, req({ tools: TOOLS, messages: [user('go'), a, ...msg.tool_calls.map(t => toolMsg(t.id))] }));
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.choices[0].message.content, 'done');
});

test('agent: a step names an undeclared function -> 400; scripted ids are used as given', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ call: { name: 'Edit', args: {} } }] });
  expect400(await chat(F.base, req({ tools: TOOLS })), 'calls Edit, but the request declares no function of that name');
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ call: { name: 'Read', id: 'call_fixed1', args: {} } }] });
  const r = await chat(F.base, req({ tools: TOOLS }));
  assert.equal(r.json.choices[0].message.tool_calls[0].id, 'call_fixed1');
});

test('--strict-tool-ids / strict_tool_ids: assistant tool call ids must be ones the fake issued', async () => {
  await ctl(F.base, '/_fake/script', { strict_tool_ids: true, mode: 'agent', steps: [{ call: { name: 'Read', args: {} } }] });
  const r = await chat(F.base, req({ tools: TOOLS }));
  const tc = r.json.choices[0].message.tool_calls[0];
  expect400(await chat(F.base, req({ tools: TOOLS, messages: [user('go'), asst([{ ...tc, id: 'toolu_01XYZ' }]), toolMsg('toolu_01XYZ')] })), "'toolu_01XYZ' is not a tool call id fake-openai issued");
  assert.equal((await chat(F.base, req({ tools: TOOLS, messages: [user('go'), asst([tc]), toolMsg(tc.id)] }))).status, 200);
  const st = await ctl(F.base, '/_fake/state');
  assert.equal(st.strict_tool_ids, true);
  await ctl(F.base, '/_fake/reset', {});
  assert.equal((await ctl(F.base, '/_fake/state')).strict_tool_ids, false);
  const X = await startFake(['--strict-tool-ids']);
  try {
    expect400(await chat(X.base, req({ messages: [user('go'), asst([call('call_1')]), toolMsg('call_1')] })), 'strict tool ids are on');
  } finally {
    await X.stop();
  }
});

test('cached_tokens: scripted into usage.prompt_tokens_details (capped at prompt_tokens)', async () => {
  await ctl(F.base, '/_fake/script', { cached_tokens: 5 });
  let r = await chat(F.base, req());
  assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, 5);
  const s = await streamRaw(F.base, req({ stream: true, stream_options: { include_usage: true } }));
  const ch = chunksOf(s.raw);
  assert.equal(ch[ch.length - 1].usage.prompt_tokens_details.cached_tokens, 5);
  await ctl(F.base, '/_fake/script', { cached_tokens: 100000 });
  r = await chat(F.base, req());
  assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, r.json.usage.prompt_tokens);
});

test('fault 429: real error shape, Retry-After and x-ratelimit headers; used up by one request', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 429, retry_after: 7 }] });
  expect400(await chat(F.base, req({ bogus: 1 })), 'Unrecognized', {});
  const r = await chat(F.base, req());
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '7');
  assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.deepEqual(r.json.error, { message: r.json.error.message, type: 'requests', param: null, code: 'rate_limit_exceeded' });
  assert.ok(r.json.error.message.startsWith('Rate limit reached for gpt-4o'));
  assert.ok(r.json.error.message.includes('Please try again in 7s.'));
  assert.equal((await chat(F.base, req())).status, 200);
});

test('faults 500, 503, 400/401/403/404 with message', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 500 }, { status: 503, retry_after: 2 }, { status: 400, message: 'custom' }, { status: 401 }, { status: 403 }, { status: 404 }] });
  let r = await chat(F.base, req());
  assert.equal(r.status, 500);
  assert.deepEqual(r.json.error, { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null });
  r = await chat(F.base, req());
  assert.equal(r.status, 503);
  assert.equal(r.json.error.type, 'server_error');
  assert.equal(r.headers.get('retry-after'), '2');
  r = await chat(F.base, req());
  assert.equal(r.status, 400);
  assert.equal(r.json.error.message, 'custom');
  assert.equal((await chat(F.base, req())).json.error.code, 'invalid_api_key');
  assert.equal((await chat(F.base, req())).status, 403);
  assert.equal((await chat(F.base, req())).json.error.code, 'model_not_found');
  assert.equal((await chat(F.base, req())).status, 200);
});

test('fault delay_headers_ms: a slow first byte', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ delay_headers_ms: 400 }] });
  const s = await streamRaw(F.base, req({ stream: true }));
  assert.equal(s.status, 200);
  assert.ok(s.headersAt >= 380, `headers after ${s.headersAt} ms`);
  chunksOf(s.raw);
  const t0 = Date.now();
  await chat(F.base, req());
  assert.ok(Date.now() - t0 < 300, 'used up');
});

test('fault cut_after_chunks: the stream stops mid-way without [DONE]', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ cut_after_chunks: 2 }] });
  const s = await streamRaw(F.base, req({ stream: true, messages: [user('a long enough message to make several chunks')] }));
  assert.equal(s.status, 200);
  assert.equal(s.complete, false);
  assert.ok(!s.raw.includes('[DONE]'));
  assert.equal(sseData(s.raw).length, 2);
  // cut after every chunk: all chunks (finish_reason included), only [DONE] missing
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ cut_after_chunks: 1000 }] });
  const s2 = await streamRaw(F.base, req({ stream: true }));
  assert.equal(s2.complete, false);
  const d = sseData(s2.raw);
  assert.ok(!d.includes('[DONE]'));
  assert.equal(JSON.parse(d[d.length - 1]).choices[0].finish_reason, 'stop');
  // non-streaming: half the body, then the cut
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ cut_after_chunks: 0 }] });
  const e = await chat(F.base, req()).then(() => null, x => x);
  assert.ok(e, 'fetch fails on a cut body');
  const st = await ctl(F.base, '/_fake/stats');
  assert.equal(st.aborted_streams, 0, 'cuts by the fake are not client aborts');
});

test('faults malformed_chunk_at, stall_after_chunks, finish_reason', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ malformed_chunk_at: 1 }] });
  let s = await streamRaw(F.base, req({ stream: true }));
  assert.equal(sseData(s.raw)[1], '{not json');
  assert.ok(s.raw.endsWith('data: [DONE]\n\n'));
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ malformed_chunk_at: 0 }] });
  assert.equal((await chat(F.base, req())).text, '{not json');
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ stall_after_chunks: 1, ms: 300 }] });
  const t0 = Date.now();
  s = await streamRaw(F.base, req({ stream: true }));
  assert.ok(Date.now() - t0 >= 290);
  chunksOf(s.raw);
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ finish_reason: 'length' }, { finish_reason: 'content_filter' }] });
  assert.equal((await chat(F.base, req())).json.choices[0].finish_reason, 'length');
  s = await streamRaw(F.base, req({ stream: true }));
  const ch = chunksOf(s.raw);
  assert.equal(ch[ch.length - 1].choices[0].finish_reason, 'content_filter');
});

test('agent step survives an error fault and a cut (used only when delivered)', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ call: { name: 'Read', args: {} } }] });
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 503 }, { cut_after_chunks: 2 }] });
  assert.equal((await chat(F.base, req({ tools: TOOLS }))).status, 503);
  const s = await streamRaw(F.base, req({ tools: TOOLS, stream: true }));
  assert.equal(s.complete, false);
  assert.equal((await ctl(F.base, '/_fake/agent')).next_step, 0);
  const r = await chat(F.base, req({ tools: TOOLS }));
  assert.equal(r.json.choices[0].message.tool_calls[0].function.name, 'Read');
  assert.equal((await ctl(F.base, '/_fake/agent')).next_step, 1);
});

test('a client that goes away mid-stream counts in aborted_streams', async () => {
  await ctl(F.base, '/_fake/script', { chunk_delay_ms: 50 });
  await streamRaw(F.base, req({ stream: true, messages: [user('a long enough message to make several chunks of text')] }), {
    onData: (buf, rq) => {
      if (buf.split('\n\n').length > 2) rq.destroy();
    },
  });
  await new Promise(r => setTimeout(r, 150));
  const st = await ctl(F.base, '/_fake/stats');
  assert.equal(st.aborted_streams, 1);
  assert.equal(st.streams_in_flight, 0);
});

test('control API: script checks, requests log, stats, reset, state', async () => {
  for (const bad of [{ mode: 'nope' }, { bogus: 1 }, { mode: 'agent' }, { mode: 'faults', faults: [{ status: 200 }] }, { faults: [{ cut: 1 }] }, { mode: 'agent', steps: [{ call: { name: 'bad name' } }] }, { faults: [{ stall_after_chunks: 1 }] }, { faults: [{ finish_reason: 'STOP' }] }, { cached_tokens: -1 }])
    assert.equal((await fetch(F.base + '/_fake/script', { method: 'POST', body: JSON.stringify(bad) })).status, 400, JSON.stringify(bad));
  assert.equal((await fetch(F.base + '/_fake/nothing')).status, 404);
  await chat(F.base, req({ user: 'logged' }));
  await chat(F.base, '{bad');
  const log = await ctl(F.base, '/_fake/requests');
  assert.equal(log.length, 2);
  assert.equal(log[0].body.user, 'logged');
  assert.equal(log[0].status, 200);
  assert.equal(log[0].headers.authorization, `Bearer ${KEY}`);
  assert.equal(log[1].body, '{bad');
  assert.equal(log[1].status, 400);
  const st = await ctl(F.base, '/_fake/stats');
  assert.equal(st.requests, 2);
  assert.deepEqual(st.responses_by_status, { 200: 1, 400: 1 });
  assert.ok(st.connections_opened >= 1);
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 500 }], chunk_delay_ms: 9, cached_tokens: 3 });
  await ctl(F.base, '/_fake/script', { faults: [{ status: 503 }], append: true });
  const state = await ctl(F.base, '/_fake/state');
  assert.equal(state.faults.length, 2);
  assert.equal(state.chunk_delay_ms, 9);
  await ctl(F.base, '/_fake/reset', {});
  const s2 = await ctl(F.base, '/_fake/state');
  assert.deepEqual([s2.faults.length, s2.cached_tokens, s2.chunk_delay_ms], [0, 0, 3]);
  assert.equal((await ctl(F.base, '/_fake/requests')).length, 0);
});

test('--control-file applies a script at start and on change', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-openai-'));
  const file = path.join(dir, 'ctl.json');
  fs.writeFileSync(file, JSON.stringify({ mode: 'faults', faults: [{ status: 503 }] }));
  const X = await startFake(['--control-file', file]);
  try {
    assert.equal((await chat(X.base, req())).status, 503);
    fs.writeFileSync(file, JSON.stringify({ mode: 'faults', faults: [{ status: 429, retry_after: 1 }] }));
    let st;
    for (let i = 0; i < 40; i++) {
      st = await ctl(X.base, '/_fake/state');
      if (st.faults.length) break;
      await new Promise(r => setTimeout(r, 50));
    }
    assert.equal((await chat(X.base, req())).status, 429);
  } finally {
    await X.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad CLI arguments exit 2; SIGTERM exits 0', async () => {
  await assert.rejects(startFake(['--bogus']), /exited 2/);
  await assert.rejects(startFake(['--chunk-delay-ms', 'x']), /exited 2/);
  const X = await startFake(['--key', 'other']);
  assert.equal((await chat(X.base, req(), { key: 'other' })).status, 200);
  const { code } = await X.stop();
  assert.equal(code, 0);
});

// ------------------------------------------------------------------------------------------------
// Cross-check with the official client (openai on npm)

let OpenAI;

function ensureSdk() {
  const lock = path.join(SDK_DIR, 'package-lock.json');
  const stamp = path.join(SDK_DIR, 'node_modules', '.warden-installed');
  const fresh = () => fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= fs.statSync(lock).mtimeMs && fs.existsSync(path.join(SDK_DIR, 'node_modules', 'openai', 'package.json'));
  if (fresh()) return;
  // one installer at a time (ctest may run several copies)
  const lk = path.join(SDK_DIR, '.install.lock');
  const until = Date.now() + 600_000;
  for (;;) {
    try {
      fs.mkdirSync(lk);
      break;
    } catch {
      if (Date.now() > until) throw new Error('timed out waiting for another npm ci in ' + SDK_DIR);
      execFileSync('sleep', ['1']);
    }
  }
  try {
    if (fresh()) return;
    process.stderr.write(`fake_openai_selftest: npm ci in ${SDK_DIR}\n`);
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: SDK_DIR, stdio: ['ignore', 'inherit', 'inherit'], timeout: 540_000 });
    fs.writeFileSync(stamp, '');
  } finally {
    fs.rmdirSync(lk);
  }
}

async function sdk(base, opts = {}) {
  return new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 10_000, ...opts });
}

// The streamed and the non-streamed completion must be the same answer: everything but id and created,
// and the message fields a stream does not carry (annotations: [] is sent only when there are annotations).
function comparable(c) {
  const { id, created, ...rest } = c;
  const choices = c.choices.map(ch => {
    const { annotations, parsed, ...m } = ch.message;
    for (const k of Object.keys(m)) if (m[k] === undefined) delete m[k];
    return { ...ch, message: m };
  });
  return { ...rest, choices };
}

test('SDK: chat.completions.create (not streamed) parses the fake answer', async () => {
  const client = await sdk(F.base);
  const c = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'from the sdk' }], max_tokens: 50 });
  assert.equal(c.choices[0].message.content, 'fake-openai: from the sdk');
  assert.match(c.id, ID.completion);
  const log = await ctl(F.base, '/_fake/requests');
  assert.equal(log[0].headers.authorization, `Bearer ${KEY}`);
  assert.ok(/^OpenAI\/JS /.test(log[0].headers['user-agent']), log[0].headers['user-agent']);
  const models = await client.models.list();
  assert.ok(models.data.some(m => m.id === 'gpt-4o'));
});

test('SDK: create({stream:true}) iterates the fake chunks', async () => {
  const client = await sdk(F.base);
  const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'stream via sdk' }], stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage = null;
  let n = 0;
  for await (const chunk of stream) {
    n++;
    if (chunk.choices[0] && chunk.choices[0].delta.content) text += chunk.choices[0].delta.content;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'fake-openai: stream via sdk');
  assert.ok(n >= 5);
  assert.ok(usage && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens);
});

for (const [name, script, extra] of [
  ['text', null, {}],
  ['text, reasoning model', null, { model: 'o4-mini', reasoning_effort: 'high', max_completion_tokens: 500 }],
  ['one tool call', { mode: 'agent', steps: [{ call: { name: 'Write', id: 'call_sdkcheck0000000000000001', args: { file_path: '/tmp/é', content: 'line1\nline2 "q"' } } }] }, { tools: TOOLS }],
  ['parallel tool calls', { mode: 'agent', steps: [{ calls: [{ name: 'Read', id: 'call_sdkcheck0000000000000002', args: { x: 'a' } }, { name: 'Bash', id: 'call_sdkcheck0000000000000003', args: { x: 'echo 😀' } }] }] }, { tools: TOOLS, parallel_tool_calls: true }],
]) {
  test(`SDK: the stream helper assembles the same completion as the non-streamed answer (${name})`, async () => {
    const client = await sdk(F.base);
    const params = { model: 'gpt-4o', messages: [{ role: 'user', content: 'compare streamed and not, with enough text to make chunks' }], ...extra };
    if (script) await ctl(F.base, '/_fake/script', script);
    const plain = await client.chat.completions.create(params);
    if (script) await ctl(F.base, '/_fake/script', script); // the same step again
    const runner = client.chat.completions.stream({ ...params, stream_options: { include_usage: true } });
    let deltas = 0;
    runner.on('chunk', () => deltas++);
    const final = await runner.finalChatCompletion();
    assert.ok(deltas >= 4, `${deltas} chunks`);
    assert.deepEqual(comparable(final), comparable(plain));
    assert.match(final.id, ID.completion);
    if (script) for (const t of final.choices[0].message.tool_calls) assert.match(t.id, ID.toolCall);
    // and the SDK's parse of the JSON answer is the raw answer itself
    if (!script) assert.deepEqual(comparable((await chat(F.base, params)).json), comparable(plain));
  });
}

test('SDK: typed errors with status (RateLimitError 429, AuthenticationError 401, BadRequestError 400, InternalServerError 500)', async () => {
  const client = await sdk(F.base);
  const ask = (c = client, extra = {}) => c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], ...extra });
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 429, retry_after: 3 }] });
  let e = await ask().then(() => null, x => x);
  assert.ok(e instanceof OpenAI.RateLimitError, String(e));
  assert.equal(e.status, 429);
  assert.equal(e.code, 'rate_limit_exceeded');
  assert.equal(e.type, 'requests');
  assert.equal(e.headers.get('retry-after'), '3');
  assert.match(e.requestID, ID.request);
  e = await ask(await sdk(F.base, { apiKey: 'sk-wrong' })).then(() => null, x => x);
  assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
  assert.equal(e.status, 401);
  assert.equal(e.code, 'invalid_api_key');
  e = await ask(client, { max_tokens: 10, foo: 'bar' }).then(() => null, x => x);
  assert.ok(e instanceof OpenAI.BadRequestError, String(e));
  assert.equal(e.status, 400);
  assert.equal(e.error.message, 'Unrecognized request argument supplied: foo');
  assert.ok(e.message.startsWith('400 Unrecognized request argument supplied: foo'), e.message);
  e = await ask(client, { model: 'o3', max_tokens: 10 }).then(() => null, x => x);
  assert.ok(e instanceof OpenAI.BadRequestError);
  assert.equal(e.param, 'max_tokens');
  assert.equal(e.code, 'unsupported_parameter');
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 500 }, { status: 503 }] });
  e = await ask().then(() => null, x => x);
  assert.ok(e instanceof OpenAI.InternalServerError);
  assert.equal(e.status, 500);
  e = await ask(client, { stream: true }).then(() => null, x => x);
  assert.ok(e instanceof OpenAI.InternalServerError);
  assert.equal(e.status, 503);
  e = await ask(client, { model: 'nope-model' }).then(() => null, x => x);
  assert.ok(e instanceof OpenAI.BadRequestError || e instanceof OpenAI.NotFoundError, String(e));
});

test('SDK: retries a 429 after Retry-After and then succeeds', async () => {
  const client = await sdk(F.base, { maxRetries: 2 });
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 429, retry_after: 0 }, { status: 503, retry_after: 0 }] });
  const c = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'retry' }] });
  assert.equal(c.choices[0].message.content, 'fake-openai: retry');
  assert.equal((await ctl(F.base, '/_fake/stats')).requests, 3);
});

test('SDK: a stream cut mid-way or a malformed chunk is an error, not a short answer', async () => {
  const client = await sdk(F.base, { logLevel: 'off' });
  const params = { model: 'gpt-4o', messages: [{ role: 'user', content: 'cut me somewhere in the middle please' }] };
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ cut_after_chunks: 3 }] });
  let e = await client.chat.completions.stream(params).finalChatCompletion().then(() => null, x => x);
  assert.ok(e, 'cut stream must fail');
  assert.ok(e instanceof OpenAI.OpenAIError && /terminated/.test(e.message), String(e));
  // every chunk, finish_reason included, but no [DONE] and a broken connection: still an error
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ cut_after_chunks: 1000 }] });
  e = await client.chat.completions.stream(params).finalChatCompletion().then(() => null, x => x);
  assert.ok(e instanceof OpenAI.OpenAIError && /terminated/.test(e.message), String(e));
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ malformed_chunk_at: 2 }] });
  e = await client.chat.completions.stream(params).finalChatCompletion().then(() => null, x => x);
  assert.ok(e, 'malformed chunk must fail');
  assert.ok(e instanceof OpenAI.OpenAIError && /malformed/.test(e.message), String(e));
});

// ------------------------------------------------------------------------------------------------

mainWithFake(launcher, suite, ['--chunk-delay-ms', '3'], async f => {
  F = f;
  let sdkError = null;
  if (!FILTER || 'SDK'.includes(FILTER) || tests.some(t => t.name.startsWith('SDK') && t.name.includes(FILTER))) {
    try {
      ensureSdk();
      const require = createRequire(path.join(SDK_DIR, 'package.json'));
      const mod = await import(pathToFileURL(require.resolve('openai')).href);
      OpenAI = mod.default || mod.OpenAI;
    } catch (e) {
      sdkError = e;
    }
  }
  return {
    filter: FILTER,
    stackLines: 8,
    before: async t => {
      await fetch(F.base + '/_fake/reset', { method: 'POST' });
      if (t.name.startsWith('SDK') && sdkError) throw new Error(`the openai SDK is not available: ${sdkError.message}`);
    },
  };
});
