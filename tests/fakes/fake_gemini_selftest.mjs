#!/usr/bin/env node
// Self-test of tests/fakes/fake_gemini.mjs: starts the fake as child processes and checks every rule,
// fault and mode over real HTTP. Prints "N passed, N failed"; exits non-zero on failure.
//   node tests/fakes/fake_gemini_selftest.mjs [filter-substring]

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promptTokens } from './fake_gemini_validate.mjs';
import { ctl, fakeLauncher, fetchJson, mainWithFake, testSuite } from './selftest_lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(HERE, 'fake_gemini.mjs');
const KEY = 'test-gemini-key';
const FILTER = process.argv[2] || '';

// ------------------------------------------------------------------------------------------------
// Harness

const launcher = fakeLauncher(FAKE);
const { startFake } = launcher;
const suite = testSuite();
const { test } = suite;

const user = text => ({ role: 'user', parts: [{ text }] });
const model = parts => ({ role: 'model', parts });
const decl = (name, extra = {}) => ({ name, description: `the ${name} tool`, parameters: { type: 'OBJECT', properties: { x: { type: 'STRING' } } }, ...extra });
const TOOLS = [{ functionDeclarations: [decl('Write'), decl('Read'), decl('Bash')] }];

async function api(base, p, body, { key = KEY, method = 'POST', headers = {} } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (key !== null) h['x-goog-api-key'] = key;
  return fetchJson(base + p, { method, headers: h, body });
}
const gen = (base, body, m = 'gemini-2.5-flash', opts) => api(base, `/v1beta/models/${m}:generateContent`, body, opts);

// Raw streaming read (node:http, so the test controls the socket).
function streamRaw(base, m, body, { sse = true, onChunk } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(`${base}/v1beta/models/${m}:streamGenerateContent${sse ? '?alt=sse' : ''}`);
    const started = Date.now();
    const req = http.request(u, { method: 'POST', headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' }, agent: false }, res => {
      let buf = '';
      const arrivals = [];
      res.setEncoding('utf8');
      res.on('data', d => {
        buf += d;
        arrivals.push({ t: Date.now() - started, len: buf.length });
        if (onChunk) onChunk(buf, req, res);
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: buf, arrivals, complete: true }));
      res.on('error', e => resolve({ status: res.statusCode, headers: res.headers, raw: buf, arrivals, complete: false, error: e }));
      res.on('aborted', () => resolve({ status: res.statusCode, headers: res.headers, raw: buf, arrivals, complete: false }));
    });
    req.on('error', e => resolve({ status: 0, raw: '', complete: false, error: e }));
    req.end(JSON.stringify(body));
  });
}

function sseEvents(raw) {
  assert.ok(raw.endsWith('\r\n\r\n') || raw === '', 'SSE stream ends with \\r\\n\\r\\n');
  return raw
    .split('\r\n\r\n')
    .filter(Boolean)
    .map(ev => {
      assert.ok(ev.startsWith('data: '), `event starts with "data: ": ${ev.slice(0, 40)}`);
      return ev.slice(6);
    });
}

function expect400(res, ...needles) {
  assert.equal(res.status, 400, `want 400, got ${res.status}: ${res.text}`);
  assert.equal(res.json.error.code, 400);
  assert.equal(res.json.error.status, 'INVALID_ARGUMENT');
  for (const n of needles) assert.ok(res.json.error.message.includes(n), `message should mention ${JSON.stringify(n)}: ${res.json.error.message}`);
}

// A complete tool round trip: returns {contents, sig} after the fake issued a call of `name`.
async function issuedCall(base, name = 'Write', args = { x: '1' }) {
  await ctl(base, '/_fake/script', { mode: 'agent', steps: [{ call: { name, args } }] });
  const r = await gen(base, { contents: [user('please write')], tools: TOOLS });
  assert.equal(r.status, 200, r.text);
  const parts = r.json.candidates[0].content.parts;
  const fc = parts.find(p => p.functionCall);
  await ctl(base, '/_fake/script', { mode: 'echo' });
  return { callPart: fc, sig: fc.thoughtSignature };
}

// ------------------------------------------------------------------------------------------------
// Tests (one shared fake; each test resets it)

let F; // shared fake

test('list models', async () => {
  const r = await api(F.base, '/v1beta/models', undefined, { method: 'GET' });
  assert.equal(r.status, 200);
  assert.ok(r.json.models.some(m => m.name === 'models/gemini-2.5-flash' && m.outputTokenLimit === 65536));
  const one = await api(F.base, '/v1beta/models/gemini-2.0-flash', undefined, { method: 'GET' });
  assert.equal(one.json.outputTokenLimit, 8192);
});

test('valid generateContent -> 200 echo with usage', async () => {
  const body = { systemInstruction: { parts: [{ text: 'be brief' }] }, contents: [user('Hello there, fake Gemini! This sentence is longer than forty characters.')] };
  const r = await gen(F.base, body);
  assert.equal(r.status, 200, r.text);
  const c = r.json.candidates[0];
  assert.equal(c.finishReason, 'STOP');
  assert.deepEqual(c.content, { parts: [{ text: 'fake-gemini: Hello there, fake Gemini! This sentence ' }], role: 'model' });
  const u = r.json.usageMetadata;
  assert.equal(u.promptTokenCount, promptTokens(body));
  assert.equal(u.cachedContentTokenCount, 0);
  assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount);
  assert.equal(u.thoughtsTokenCount, undefined);
  assert.equal(r.json.modelVersion, 'gemini-2.5-flash');
  assert.ok(r.json.responseId);
});

test('echo never splits a surrogate pair', async () => {
  const r = await gen(F.base, { contents: [user('😀'.repeat(50))] });
  assert.equal(r.json.candidates[0].content.parts[0].text, 'fake-gemini: ' + '😀'.repeat(40));
});

test('auth: missing key 403, wrong key 400, bearer 401, ?key= accepted', async () => {
  const body = { contents: [user('hi')] };
  let r = await gen(F.base, body, 'gemini-2.5-flash', { key: null });
  assert.equal(r.status, 403);
  assert.equal(r.json.error.status, 'PERMISSION_DENIED');
  r = await gen(F.base, body, 'gemini-2.5-flash', { key: 'nope' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details[0].reason, 'API_KEY_INVALID');
  r = await gen(F.base, body, 'gemini-2.5-flash', { key: null, headers: { authorization: 'Bearer x' } });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.status, 'UNAUTHENTICATED');
  r = await api(F.base, `/v1beta/models/gemini-2.5-flash:generateContent?key=${KEY}`, body, { key: null });
  assert.equal(r.status, 200, r.text);
});

test('unknown model 404, unknown query param 400, bad JSON 400, unknown path 404', async () => {
  let r = await gen(F.base, { contents: [user('hi')] }, 'gpt-4o');
  assert.equal(r.status, 404);
  assert.equal(r.json.error.status, 'NOT_FOUND');
  r = await api(F.base, '/v1beta/models/gemini-2.5-flash:generateContent?foo=1', { contents: [user('hi')] });
  expect400(r, 'foo');
  r = await gen(F.base, '{"contents": [');
  expect400(r, 'Invalid JSON payload');
  r = await api(F.base, '/v1/models/gemini-2.5-flash:generateContent', { contents: [user('hi')] });
  assert.equal(r.status, 404);
});

// --- validation rules: each crafted bad request must be rejected with 400 naming the field path.
const bad = (name, body, needles, m = 'gemini-2.5-flash') =>
  test(`rejects: ${name}`, async () => {
    const b = typeof body === 'function' ? await body() : body;
    expect400(await gen(F.base, b, m), ...needles);
  });

bad('unknown top-level field', { contents: [user('hi')], temperature: 1 }, ['Unknown name "temperature"']);
bad('unknown field in a part', { contents: [{ role: 'user', parts: [{ text: 'hi', cache_control: {} }] }] }, ['"cache_control"', "contents[0].parts[0]"]);
bad('unknown field in generationConfig', { contents: [user('hi')], generationConfig: { max_tokens: 5 } }, ['"max_tokens"', 'generationConfig']);
bad('snake_case field', { contents: [user('hi')], system_instruction: { parts: [{ text: 'x' }] } }, ['"system_instruction"', 'use "systemInstruction"']);
bad('snake_case nested (function_call)', { contents: [user('hi'), model([{ function_call: { name: 'a' } }]), user('x')] }, ['"function_call"', 'contents[1].parts[0]']);
bad('JSON Schema keyword in parameters', { contents: [user('hi')], tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false } }] }] }, ['"additionalProperties"', 'tools[0].functionDeclarations[0].parameters']);
bad('$schema in parameters', { contents: [user('hi')], tools: [{ functionDeclarations: [{ name: 'f', parameters: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { a: { type: 'string' } } } }] }] }, ['"$schema"']);
bad('wrong type', { contents: [user('hi')], generationConfig: { maxOutputTokens: '100' } }, ['generationConfig.maxOutputTokens', 'TYPE_INT32']);
bad('null value', { contents: [user('hi')], tools: null }, ["'tools'", 'null']);
bad('consecutive same role', { contents: [user('a'), user('b')] }, ['alternate', 'contents[1]']);
bad('first content is model', { contents: [model([{ text: 'a' }]), user('b')] }, ['contents[0].role']);
bad('invalid role', { contents: [{ role: 'assistant', parts: [{ text: 'a' }] }] }, ['valid role', 'contents[0].role']);
bad('missing role', { contents: [{ parts: [{ text: 'a' }] }] }, ['valid role', 'contents[0].role']);
bad('empty contents', { contents: [] }, ['contents']);
bad('empty parts', { contents: [{ role: 'user', parts: [] }] }, ['contents[0].parts']);
bad('empty text part', { contents: [{ role: 'user', parts: [{ text: '' }] }] }, ['empty text', 'contents[0].parts[0].text']);
bad('part with two data fields', { contents: [{ role: 'user', parts: [{ text: 'a', inlineData: { mimeType: 'image/png', data: 'AAAA' } }] }] }, ['oneof', 'contents[0].parts[0]']);
bad('part with no data field', { contents: [{ role: 'user', parts: [{ thought: true }] }] }, ['contents[0].parts[0]']);
bad('inlineData not base64', { contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: 'not base64!' } }] }] }, ['contents[0].parts[0].inlineData.data', 'Base64']);
bad('inlineData without mimeType', { contents: [{ role: 'user', parts: [{ inlineData: { data: 'AAAA' } }] }] }, ['contents[0].parts[0].inlineData.mimeType']);
bad('fileData bad uri', { contents: [{ role: 'user', parts: [{ fileData: { mimeType: 'application/pdf', fileUri: 'file:///etc/passwd' } }] }] }, ['contents[0].parts[0].fileData.fileUri']);
bad('functionResponse.response not an object', { contents: [user('a'), model([{ functionCall: { name: 'f', args: {} } }]), { role: 'user', parts: [{ functionResponse: { name: 'f', response: 'ok' } }] }] }, ['contents[2].parts[0].functionResponse.response']);
bad('functionCall in a user turn', { contents: [{ role: 'user', parts: [{ functionCall: { name: 'f', args: {} } }] }] }, ['contents[0].parts[0].functionCall']);
bad('mismatched functionResponse count', async () => {
  const { callPart } = await issuedCall(F.base);
  return { contents: [user('a'), model([callPart]), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: { ok: 1 } } }, { functionResponse: { name: 'Write', response: { ok: 2 } } }] }], tools: TOOLS };
}, ['number of function response parts is equal to the number of function call parts', 'contents[2]']);
bad('functionResponse name mismatch', async () => {
  const { callPart } = await issuedCall(F.base);
  return { contents: [user('a'), model([callPart]), { role: 'user', parts: [{ functionResponse: { name: 'Read', response: { ok: 1 } } }] }], tools: TOOLS };
}, ['contents[2].parts[0].functionResponse', 'Read']);
bad('functionCall as last content (no response)', async () => {
  const { callPart } = await issuedCall(F.base);
  return { contents: [user('a'), model([callPart])], tools: TOOLS };
}, ['number of function response parts']);
bad('orphan functionResponse', { contents: [user('a'), model([{ text: 'b' }]), { role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] }] }, ['function response turn comes immediately after a function call turn']);
bad('missing thoughtSignature on history functionCall', {
  contents: [user('a'), model([{ functionCall: { name: 'Write', args: {} } }]), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: { ok: true } } }] }],
  tools: TOOLS,
}, ['Function call is missing a thought_signature in functionCall parts', 'contents[1].parts[0]']);
bad('unknown thoughtSignature', {
  contents: [user('a'), model([{ functionCall: { name: 'Write', args: {} }, thoughtSignature: 'AAAABBBBCCCC' }]), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: { ok: true } } }] }],
  tools: TOOLS,
}, ['Corrupted thought signature.', 'contents[1].parts[0].thoughtSignature']);
bad('signature re-encoded (url-safe) is not the issued one', async () => {
  const { callPart, sig } = await issuedCall(F.base);
  const mangled = sig.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return { contents: [user('a'), model([{ ...callPart, thoughtSignature: mangled }]), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: { ok: 1 } } }] }], tools: TOOLS };
}, ['Corrupted thought signature.']);
bad('signature moved to another call', async () => {
  const { callPart } = await issuedCall(F.base, 'Write');
  return { contents: [user('a'), model([{ functionCall: { name: 'Read', args: {} }, thoughtSignature: callPart.thoughtSignature }]), { role: 'user', parts: [{ functionResponse: { name: 'Read', response: { ok: 1 } } }] }], tools: TOOLS };
}, ['Corrupted thought signature.']);
bad('signature only on the second of two parallel calls', async () => {
  const { callPart } = await issuedCall(F.base, 'Write');
  return {
    contents: [user('a'), model([{ functionCall: { name: 'Write', args: {} } }, { functionCall: { name: 'Write', args: {} }, thoughtSignature: callPart.thoughtSignature }]), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: {} } }, { functionResponse: { name: 'Write', response: {} } }] }],
    tools: TOOLS,
  };
}, ['missing a thought_signature', 'contents[1].parts[0]']);
bad('maxOutputTokens 128000', { contents: [user('hi')], generationConfig: { maxOutputTokens: 128000 } }, ['generationConfig.maxOutputTokens', '128000']);
bad('maxOutputTokens 8193 on gemini-2.0', { contents: [user('hi')], generationConfig: { maxOutputTokens: 8193 } }, ['generationConfig.maxOutputTokens'], 'gemini-2.0-flash');
bad('bad function name', { contents: [user('hi')], tools: [{ functionDeclarations: [decl('mcp server/tool')] }] }, ['tools[0].functionDeclarations[0].name', 'Invalid function name']);
bad('function name too long', { contents: [user('hi')], tools: [{ functionDeclarations: [decl('a'.repeat(65))] }] }, ['tools[0].functionDeclarations[0].name']);
bad('duplicate function names', { contents: [user('hi')], tools: [{ functionDeclarations: [decl('Read')] }, { functionDeclarations: [decl('Read')] }] }, ['tools[1].functionDeclarations[0].name', 'Duplicate']);
bad('parameters and parametersJsonSchema together', { contents: [user('hi')], tools: [{ functionDeclarations: [decl('f', { parametersJsonSchema: { type: 'object' } })] }] }, ['tools[0].functionDeclarations[0]', 'mutually exclusive']);
bad('required property not defined', { contents: [user('hi')], tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } }, required: ['b'] } }] }] }, ['parameters.required[0]', 'property is not defined']);
bad('unsupported string format', { contents: [user('hi')], tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'object', properties: { u: { type: 'string', format: 'uri' } } } }] }] }, ['parameters.properties[u].format']);
bad('enum on a non-string', { contents: [user('hi')], tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'object', properties: { n: { type: 'integer', enum: ['1'] } } } }] }] }, ['parameters.properties[n].enum']);
bad('toolConfig without declarations', { contents: [user('hi')], toolConfig: { functionCallingConfig: { mode: 'AUTO' } } }, ['Function calling config is set without function_declarations']);
bad('toolConfig bad mode', { contents: [user('hi')], tools: TOOLS, toolConfig: { functionCallingConfig: { mode: 'REQUIRED' } } }, ['toolConfig.functionCallingConfig.mode']);
bad('allowedFunctionNames with AUTO', { contents: [user('hi')], tools: TOOLS, toolConfig: { functionCallingConfig: { mode: 'AUTO', allowedFunctionNames: ['Read'] } } }, ['allowedFunctionNames']);
bad('thinkingBudget 0 on 2.5-pro', { contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingBudget: 0 } } }, ['generationConfig.thinkingConfig.thinkingBudget', 'Budget 0 is invalid'], 'gemini-2.5-pro');
bad('thinkingBudget 40000 on 2.5-pro', { contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingBudget: 40000 } } }, ['thinkingBudget', '32768'], 'gemini-2.5-pro');
bad('thinkingBudget 30000 on 2.5-flash', { contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingBudget: 30000 } } }, ['thinkingBudget', '24576']);
bad('thinkingBudget 100 on 2.5-flash-lite', { contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingBudget: 100 } } }, ['thinkingBudget', '512'], 'gemini-2.5-flash-lite');
bad('thinkingLevel on 2.5', { contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingLevel: 'low' } } }, ['thinkingConfig.thinkingLevel']);
bad('thinkingLevel medium on 3-pro', { contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingLevel: 'medium' } } }, ['thinkingConfig.thinkingLevel'], 'gemini-3-pro-preview');
bad('thinkingLevel + thinkingBudget', { contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingLevel: 'low', thinkingBudget: 1024 } } }, ['thinkingConfig', 'cannot both be set'], 'gemini-3-flash-preview');
bad('thinkingConfig on 2.0', { contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingBudget: 1024 } } }, ['thinkingConfig'], 'gemini-2.0-flash');
bad('temperature out of range', { contents: [user('hi')], generationConfig: { temperature: 3 } }, ['generationConfig.temperature']);
bad('systemInstruction with role system', { systemInstruction: { role: 'system', parts: [{ text: 'x' }] }, contents: [user('hi')] }, ['systemInstruction.role']);
bad('thought part in a user turn', { contents: [{ role: 'user', parts: [{ text: 'x', thought: true }] }] }, ['contents[0].parts[0].thought']);

test('accepts: edge values and a complete tool round trip', async () => {
  const ok = async (b, m = 'gemini-2.5-flash') => {
    const r = await gen(F.base, b, m);
    assert.equal(r.status, 200, `${m} ${JSON.stringify(b).slice(0, 200)} -> ${r.text}`);
    return r;
  };
  await ok({ contents: [user('hi')], generationConfig: { maxOutputTokens: 65536 } });
  await ok({ contents: [user('hi')], generationConfig: { maxOutputTokens: 8192 } }, 'gemini-2.0-flash');
  await ok({ contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingBudget: -1 } } }, 'gemini-2.5-pro');
  await ok({ contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingBudget: 0 } } }, 'gemini-2.5-flash-lite');
  await ok({ contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingLevel: 'minimal' } } }, 'gemini-3-flash-preview');
  await ok({ contents: [user('hi')], generationConfig: { thinkingConfig: { thinkingLevel: 'HIGH', includeThoughts: true } } }, 'gemini-3-pro-preview');
  await ok({ contents: [user('hi')], tools: [{ functionDeclarations: [{ name: 'mcp__srv__tool.v1:x-y', parametersJsonSchema: { type: 'object', additionalProperties: false, $schema: 'x' } }] }], toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['mcp__srv__tool.v1:x-y'] } } });
  await ok({ contents: [{ role: 'user', parts: [{ text: 'look' }, { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } }, { fileData: { mimeType: 'application/pdf', fileUri: 'gs://b/x.pdf' } }] }], safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_NONE' }] });
  // Round trip: the issued signature, carried byte-for-byte, plus extra user text next to the response.
  const { callPart, sig } = await issuedCall(F.base, 'Write');
  assert.ok(sig.includes('+') && sig.includes('/') && sig.endsWith('=='), `signature ${sig} must contain + / =`);
  assert.deepEqual(callPart.functionCall, { name: 'Write', args: { x: '1' } });
  await ok({
    contents: [user('a'), model([callPart]), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: { output: 'done' } } }, { text: '<system-reminder>x</system-reminder>' }] }],
    tools: TOOLS,
  });
});

test('--lenient-signatures accepts unsigned history calls', async () => {
  const L = await startFake(['--lenient-signatures']);
  try {
    const r = await gen(L.base, { contents: [user('a'), model([{ functionCall: { name: 'Write', args: {} } }]), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: {} } }] }], tools: TOOLS });
    assert.equal(r.status, 200, r.text);
  } finally {
    await L.stop();
  }
});

test('includeThoughts: thought part with an issued signature, thoughtsTokenCount', async () => {
  const r = await gen(F.base, { contents: [user('think')], generationConfig: { thinkingConfig: { includeThoughts: true, thinkingBudget: 1024 } } });
  const parts = r.json.candidates[0].content.parts;
  assert.equal(parts[0].thought, true);
  assert.ok(parts[0].text.length > 0);
  assert.match(parts[0].thoughtSignature, /^[A-Za-z0-9+/]+==$/);
  assert.equal(parts[1].text, 'fake-gemini: think');
  const u = r.json.usageMetadata;
  assert.ok(u.thoughtsTokenCount > 0);
  assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount + u.thoughtsTokenCount);
  // The thought part can be sent back in history.
  const r2 = await gen(F.base, { contents: [user('think'), model(parts), user('again')] });
  assert.equal(r2.status, 200, r2.text);
});

test('countTokens: both forms, deterministic, equals promptTokenCount', async () => {
  const contents = [user('count these tokens please')];
  const system = { parts: [{ text: 'sys' }] };
  const a = await api(F.base, '/v1beta/models/gemini-2.5-flash:countTokens', { contents });
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.totalTokens, promptTokens({ contents }));
  const g = { model: 'models/gemini-2.5-flash', contents, systemInstruction: system, tools: TOOLS };
  const b = await api(F.base, '/v1beta/models/gemini-2.5-flash:countTokens', { generateContentRequest: g });
  assert.equal(b.status, 200, b.text);
  const r = await gen(F.base, { contents, systemInstruction: system, tools: TOOLS });
  assert.equal(b.json.totalTokens, r.json.usageMetadata.promptTokenCount);
  expect400(await api(F.base, '/v1beta/models/gemini-2.5-flash:countTokens', { contents, generateContentRequest: g }), 'mutually exclusive');
  expect400(await api(F.base, '/v1beta/models/gemini-2.5-flash:countTokens', { generateContentRequest: { contents } }), 'generateContentRequest.model');
  expect400(await api(F.base, '/v1beta/models/gemini-2.5-flash:countTokens', { contents: [{ role: 'user', parts: [{ text: '' }] }] }), 'empty text');
});

test('streaming: >=3 data chunks separated by \\r\\n\\r\\n, final has finishReason+usage', async () => {
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('Stream me a reply, please')] });
  assert.equal(s.status, 200);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  const evs = sseEvents(s.raw).map(e => JSON.parse(e));
  assert.ok(evs.length >= 3, `got ${evs.length} chunks`);
  const text = evs.map(e => e.candidates[0].content.parts.map(p => p.text).join('')).join('');
  assert.equal(text, 'fake-gemini: Stream me a reply, please');
  evs.slice(0, -1).forEach(e => assert.equal(e.candidates[0].finishReason, undefined));
  const last = evs[evs.length - 1];
  assert.equal(last.candidates[0].finishReason, 'STOP');
  assert.equal(last.usageMetadata.cachedContentTokenCount, 0);
  assert.ok(last.usageMetadata.candidatesTokenCount > 0);
  assert.ok(evs[0].usageMetadata.promptTokenCount > 0, 'first chunk already reports promptTokenCount');
  assert.ok(s.arrivals.length >= 2, 'chunks were flushed separately');
});

test('streaming with includeThoughts: signature on the last thought chunk', async () => {
  const s = await streamRaw(F.base, 'gemini-2.5-pro', { contents: [user('think then talk')], generationConfig: { thinkingConfig: { includeThoughts: true } } });
  const evs = sseEvents(s.raw).map(e => JSON.parse(e));
  const parts = evs.map(e => e.candidates[0].content.parts[0]);
  const thoughts = parts.filter(p => p.thought);
  assert.ok(thoughts.length >= 2);
  thoughts.slice(0, -1).forEach(p => assert.equal(p.thoughtSignature, undefined));
  assert.ok(thoughts[thoughts.length - 1].thoughtSignature);
  assert.ok(parts.filter(p => !p.thought).length >= 3);
  assert.ok(evs[evs.length - 1].usageMetadata.thoughtsTokenCount > 0);
});

test('text_signature: a text answer signed on its last part, or on an empty last part (Gemini 3)', async () => {
  const body = { contents: [user('sign the answer')] };
  await ctl(F.base, '/_fake/script', { mode: 'echo', text_signature: 'empty_part' });
  let r = await gen(F.base, body);
  let parts = r.json.candidates[0].content.parts;
  assert.equal(parts.length, 2);
  assert.equal(parts[0].thoughtSignature, undefined);
  assert.equal(parts[1].text, '');
  assert.ok(parts[1].thoughtSignature);
  let evs = sseEvents((await streamRaw(F.base, 'gemini-2.5-flash', body)).raw).map(e => JSON.parse(e));
  let last = evs[evs.length - 1].candidates[0];
  assert.deepEqual(Object.keys(last.content.parts[0]).sort(), ['text', 'thoughtSignature']);
  assert.equal(last.content.parts[0].text, '');
  assert.equal(last.finishReason, 'STOP');
  evs.slice(0, -1).forEach(e => assert.equal(e.candidates[0].content.parts[0].thoughtSignature, undefined));
  await ctl(F.base, '/_fake/script', { text_signature: 'last_part' });
  r = await gen(F.base, body);
  parts = r.json.candidates[0].content.parts;
  assert.equal(parts.length, 1);
  assert.ok(parts[0].text.length > 0 && parts[0].thoughtSignature);
  // the signature is one the fake issued: history that hands it back is accepted
  const hist = { contents: [user('sign the answer'), { role: 'model', parts }, user('again')] };
  assert.equal((await gen(F.base, hist)).status, 200);
  evs = sseEvents((await streamRaw(F.base, 'gemini-2.5-flash', body)).raw).map(e => JSON.parse(e));
  last = evs[evs.length - 1].candidates[0].content.parts[0];
  assert.ok(last.text.length > 0 && last.thoughtSignature);
  const bad = await fetch(`${F.base}/_fake/script`, { method: 'POST', body: JSON.stringify({ text_signature: 'first' }) });
  assert.equal(bad.status, 400);
  await ctl(F.base, '/_fake/reset', {});
  parts = (await gen(F.base, body)).json.candidates[0].content.parts;
  assert.equal(parts.length, 1);
  assert.equal(parts[0].thoughtSignature, undefined);
});

test('streamGenerateContent without alt=sse streams a JSON array', async () => {
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('array please')] }, { sse: false });
  const arr = JSON.parse(s.raw);
  assert.ok(Array.isArray(arr) && arr.length >= 3);
});

test('fault: 429 with Retry-After and RetryInfo, then normal again', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 429, retry_after: 7 }] });
  const r = await gen(F.base, { contents: [user('hi')] });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '7');
  assert.equal(r.json.error.status, 'RESOURCE_EXHAUSTED');
  assert.ok(r.json.error.details.some(d => d['@type'].endsWith('RetryInfo') && d.retryDelay === '7s'));
  assert.equal((await gen(F.base, { contents: [user('hi')] })).status, 200);
});

test('fault: status codes map to real status names (FIFO)', async () => {
  const codes = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: Object.keys(codes).map(c => ({ status: +c })) });
  for (const [c, name] of Object.entries(codes)) {
    const r = await gen(F.base, { contents: [user('hi')] });
    assert.equal(r.status, +c);
    assert.deepEqual(Object.keys(r.json.error).slice(0, 3), ['code', 'message', 'status']);
    assert.equal(r.json.error.status, name);
  }
  assert.equal((await gen(F.base, { contents: [user('hi')] })).status, 200);
});

test('fault: faults apply to streams too, countTokens does not consume them', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 503 }] });
  assert.equal((await api(F.base, '/v1beta/models/gemini-2.5-flash:countTokens', { contents: [user('x')] })).status, 200);
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('x')] });
  assert.equal(s.status, 503);
  assert.equal(JSON.parse(s.raw).error.status, 'UNAVAILABLE');
});

test('fault: delay_headers_ms delays the first byte', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ delay_headers_ms: 300 }] });
  const t0 = Date.now();
  const r = await gen(F.base, { contents: [user('slow')] });
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 >= 290, `took ${Date.now() - t0} ms`);
});

test('fault: cut_after_chunks destroys the connection mid-stream', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ cut_after_chunks: 2 }] });
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('cut me off please, I am long enough')] });
  assert.equal(s.complete, false, 'stream must not end cleanly');
  assert.equal(s.raw.split('\r\n\r\n').filter(Boolean).length, 2);
  const st = await ctl(F.base, '/_fake/stats');
  assert.equal(st.aborted_streams, 0, 'a cut by the fake is not a client abort');
  // Non-streaming: half a body, then the cut.
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ cut_after_chunks: 0 }] });
  await assert.rejects(gen(F.base, { contents: [user('x')] }));
});

test('fault: malformed_chunk_at', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ malformed_chunk_at: 1 }] });
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('malformed')] });
  const evs = sseEvents(s.raw);
  assert.equal(evs[1], '{not json');
  JSON.parse(evs[0]);
  assert.throws(() => JSON.parse(evs[1]));
});

test('fault: finish_reason MAX_TOKENS / SAFETY / MALFORMED_FUNCTION_CALL', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ finish_reason: 'MAX_TOKENS' }, { finish_reason: 'SAFETY' }, { finish_reason: 'MALFORMED_FUNCTION_CALL' }, { finish_reason: 'RECITATION' }] });
  let s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('x')] });
  let evs = sseEvents(s.raw).map(JSON.parse);
  assert.equal(evs[evs.length - 1].candidates[0].finishReason, 'MAX_TOKENS');
  s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('x')] });
  evs = sseEvents(s.raw).map(JSON.parse);
  const lastS = evs[evs.length - 1].candidates[0];
  assert.equal(lastS.finishReason, 'SAFETY');
  assert.equal(lastS.content, undefined);
  const r = await gen(F.base, { contents: [user('x')] });
  assert.equal(r.json.candidates[0].finishReason, 'MALFORMED_FUNCTION_CALL');
  assert.equal(r.json.candidates[0].content, undefined);
  const r2 = await gen(F.base, { contents: [user('x')] });
  assert.equal(r2.json.candidates[0].finishReason, 'RECITATION');
});

test('fault: stall_after_chunks pauses mid-stream', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ stall_after_chunks: 1, ms: 400 }] });
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('stall')] });
  assert.ok(s.complete);
  const gaps = s.arrivals.map((a, i) => (i ? a.t - s.arrivals[i - 1].t : 0));
  assert.ok(Math.max(...gaps) >= 380, `max gap ${Math.max(...gaps)} ms (${JSON.stringify(s.arrivals)})`);
});

test('fault: combined delay + cut in one fault; bad fault rejected', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ delay_headers_ms: 100, cut_after_chunks: 1 }] });
  const t0 = Date.now();
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('x')] });
  assert.ok(Date.now() - t0 >= 95);
  assert.equal(s.complete, false);
  const r = await fetch(F.base + '/_fake/script', { method: 'POST', body: JSON.stringify({ mode: 'faults', faults: [{ stauts: 500 }] }) });
  assert.equal(r.status, 400);
});

test('stats: client destroying the socket mid-stream counts as aborted_streams', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ stall_after_chunks: 1, ms: 1500 }] });
  const before = await ctl(F.base, '/_fake/stats');
  let destroyed = false;
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('abort me')] }, {
    onChunk: (buf, req) => {
      if (!destroyed && buf.includes('\r\n\r\n')) {
        destroyed = true;
        req.destroy();
      }
    },
  });
  assert.equal(s.complete, false);
  await new Promise(r => setTimeout(r, 100));
  const st = await ctl(F.base, '/_fake/stats');
  assert.equal(st.aborted_streams, before.aborted_streams + 1);
  assert.equal(st.streams_in_flight, 0);
});

test('stats: keep-alive connection reuse is visible', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = () =>
    new Promise((resolve, reject) => {
      const req = http.request(`${F.base}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', agent, headers: { 'x-goog-api-key': KEY } }, res => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ contents: [user('ka')] }));
    });
  const before = await ctl(F.base, '/_fake/stats');
  for (let i = 0; i < 3; i++) assert.equal(await one(), 200);
  const st = await ctl(F.base, '/_fake/stats');
  assert.equal(st.connections_opened - before.connections_opened, 1);
  assert.equal(st.requests - before.requests, 3);
  agent.destroy();
  await new Promise(r => setTimeout(r, 100));
  const after = await ctl(F.base, '/_fake/stats');
  assert.equal(after.connections_closed, after.connections_opened);
});

test('requests log: last 50, parsed body, headers, status', async () => {
  for (let i = 0; i < 55; i++) await gen(F.base, { contents: [user(`n${i}`)] });
  await gen(F.base, '{broken');
  const log = await ctl(F.base, '/_fake/requests');
  assert.equal(log.length, 50);
  const prev = log[log.length - 2];
  assert.equal(prev.body.contents[0].parts[0].text, 'n54');
  assert.equal(prev.headers['x-goog-api-key'], KEY);
  assert.equal(prev.method, 'POST');
  assert.equal(prev.path, '/v1beta/models/gemini-2.5-flash:generateContent');
  assert.equal(prev.status, 200);
  assert.equal(log[log.length - 1].body, '{broken');
  assert.equal(log[log.length - 1].status, 400);
  assert.equal((await ctl(F.base, '/_fake/stats')).aborted_streams, 0, 'completed responses are not aborts');
});

test('agent mode: scripted tool calls, side requests, continuation check, done', async () => {
  await ctl(F.base, '/_fake/script', {
    mode: 'agent',
    steps: [{ call: { name: 'Write', args: { file_path: '/tmp/a.txt', content: 'hi' } } }, { calls: [{ name: 'Read', args: { x: 'a' } }, { name: 'Read', args: { x: 'b' } }] }, { text: 'all finished' }],
  });
  const sys = { parts: [{ text: 'you are an agent' }] };
  const gc = { thinkingConfig: { includeThoughts: true } };
  const h = [user('write a file')];
  // step 0
  let r = await gen(F.base, { systemInstruction: sys, contents: h, tools: TOOLS, generationConfig: gc });
  assert.equal(r.status, 200, r.text);
  let parts = r.json.candidates[0].content.parts;
  assert.equal(parts[0].thought, true);
  assert.ok(parts[0].thoughtSignature);
  assert.deepEqual(parts[1].functionCall, { name: 'Write', args: { file_path: '/tmp/a.txt', content: 'hi' } });
  assert.ok(parts[1].thoughtSignature);
  assert.notEqual(parts[1].thoughtSignature, parts[0].thoughtSignature);
  assert.equal(r.json.candidates[0].finishReason, 'STOP');
  // side request without tools: echo, no step consumed
  const side = await gen(F.base, { contents: [user('title for this chat')] });
  assert.equal(side.json.candidates[0].content.parts[0].text, 'fake-gemini: title for this chat');
  // a faulted request does not consume the step either
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 503 }] });
  const h1 = [...h, model(parts), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: { output: 'ok' } } }] }];
  assert.equal((await gen(F.base, { contents: h1, tools: TOOLS, generationConfig: gc })).status, 503);
  // a request that does not continue the script -> 400
  const stray = await gen(F.base, { contents: [user('something else')], tools: TOOLS });
  expect400(stray, 'fake-gemini agent', 'Write');
  // step 1 (streaming): two parallel calls of the same function, signature only on the first
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: h1, tools: TOOLS, generationConfig: gc });
  const evs = sseEvents(s.raw).map(JSON.parse);
  const sparts = evs.flatMap(e => e.candidates[0].content.parts);
  const calls = sparts.filter(p => p.functionCall);
  assert.equal(calls.length, 2);
  assert.ok(calls[0].thoughtSignature);
  assert.equal(calls[1].thoughtSignature, undefined);
  assert.equal(evs[evs.length - 1].candidates[0].finishReason, 'STOP');
  // merge streamed parts the way a gateway would: thought text concatenated, signature kept
  const thought = { text: sparts.filter(p => p.thought).map(p => p.text).join(''), thought: true, thoughtSignature: sparts.filter(p => p.thought).pop().thoughtSignature };
  const h2 = [...h1, model([thought, ...calls]), { role: 'user', parts: [{ functionResponse: { name: 'Read', response: { content: 'A' } } }, { functionResponse: { name: 'Read', response: { content: 'B' } } }] }];
  // step 2: text
  r = await gen(F.base, { contents: h2, tools: TOOLS, generationConfig: gc });
  assert.equal(r.status, 200, r.text);
  parts = r.json.candidates[0].content.parts;
  assert.equal(parts[parts.length - 1].text, 'all finished');
  // steps exhausted: "done"
  const h3 = [...h2, model(parts), user('anything else?')];
  r = await gen(F.base, { contents: h3, tools: TOOLS });
  assert.equal(r.json.candidates[0].content.parts.pop().text, 'done');
  const ag = await ctl(F.base, '/_fake/agent');
  assert.equal(ag.done, true);
  const oks = ag.log.filter(e => e.ok);
  assert.deepEqual(oks.map(e => e.step), [0, 1, 2, 3]);
  assert.deepEqual(oks[2].functionResponses.map(x => x.response.content), ['A', 'B']);
  assert.equal(ag.log.filter(e => !e.ok).length, 1);
});

test('agent mode: undeclared function and wrong responses fail loudly', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ call: { name: 'Nope', args: {} } }] });
  expect400(await gen(F.base, { contents: [user('x')], tools: TOOLS }), 'Nope');
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ call: { name: 'Write', args: {} } }, { text: 'end' }] });
  const r = await gen(F.base, { contents: [user('x')], tools: TOOLS });
  const parts = r.json.candidates[0].content.parts;
  // answered, but then the next request is a fresh conversation -> 400
  expect400(await gen(F.base, { contents: [user('new chat')], tools: TOOLS }), 'step 1');
  // correct continuation works
  const ok = await gen(F.base, { contents: [user('x'), model(parts), { role: 'user', parts: [{ functionResponse: { name: 'Write', response: {} } }] }], tools: TOOLS });
  assert.equal(ok.json.candidates[0].content.parts[0].text, 'end');
});

test('agent mode: a cut stream does not consume the step', async () => {
  await ctl(F.base, '/_fake/script', { mode: 'agent', steps: [{ text: 'the one answer is long enough to be cut' }] });
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ cut_after_chunks: 1 }] });
  const s = await streamRaw(F.base, 'gemini-2.5-flash', { contents: [user('x')], tools: TOOLS });
  assert.equal(s.complete, false);
  const r = await gen(F.base, { contents: [user('x')], tools: TOOLS });
  assert.equal(r.json.candidates[0].content.parts[0].text, 'the one answer is long enough to be cut');
  const r2 = await gen(F.base, { contents: [user('x')], tools: TOOLS });
  assert.equal(r2.json.candidates[0].content.parts[0].text, 'done');
});

test('control: bad script rejected, reset clears state', async () => {
  let r = await fetch(F.base + '/_fake/script', { method: 'POST', body: '{"mode":"agent","steps":[{"call":{"name":"bad name"}}]}' });
  assert.equal(r.status, 400);
  r = await fetch(F.base + '/_fake/script', { method: 'POST', body: 'nope' });
  assert.equal(r.status, 400);
  await ctl(F.base, '/_fake/script', { mode: 'faults', faults: [{ status: 500 }] });
  await ctl(F.base, '/_fake/reset', {});
  const st = await ctl(F.base, '/_fake/stats');
  assert.equal(st.requests, 0);
  assert.equal((await gen(F.base, { contents: [user('x')] })).status, 200);
  assert.equal((await ctl(F.base, '/_fake/requests')).length, 1);
});

test('--control-file applies a script at start and on change', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-'));
  const file = path.join(dir, 'script.json');
  fs.writeFileSync(file, JSON.stringify({ mode: 'faults', faults: [{ status: 503 }] }));
  const C = await startFake(['--control-file', file]);
  try {
    assert.equal((await gen(C.base, { contents: [user('x')] })).status, 503);
    assert.equal((await gen(C.base, { contents: [user('x')] })).status, 200);
    fs.writeFileSync(file, JSON.stringify({ mode: 'faults', faults: [{ status: 429, retry_after: 1 }] }));
    let st = 200;
    for (let i = 0; i < 40 && st === 200; i++) {
      await new Promise(r => setTimeout(r, 50));
      const state = await ctl(C.base, '/_fake/state');
      if (state.faults.length) st = (await gen(C.base, { contents: [user('x')] })).status;
    }
    assert.equal(st, 429);
  } finally {
    await C.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--key sets the accepted key', async () => {
  const K = await startFake(['--key', 'other-key']);
  try {
    assert.equal((await gen(K.base, { contents: [user('x')] })).status, 400);
    assert.equal((await gen(K.base, { contents: [user('x')] }, 'gemini-2.5-flash', { key: 'other-key' })).status, 200);
  } finally {
    await K.stop();
  }
});

test('TLS: HTTP/2 and HTTP/1.1 on the same port', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-tls-'));
  const cert = path.join(dir, 'c.pem');
  const key = path.join(dir, 'k.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  } catch {
    console.log('  (openssl unavailable: TLS test skipped)');
    return;
  }
  const T = await startFake(['--tls-cert', cert, '--tls-key', key]);
  try {
    const ca = fs.readFileSync(cert);
    // HTTP/2 streaming
    const session = http2.connect(`https://127.0.0.1:${T.port}`, { ca });
    const out = await new Promise((resolve, reject) => {
      const st = session.request({ ':method': 'POST', ':path': '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', 'x-goog-api-key': KEY, 'content-type': 'application/json' });
      let status;
      let data = '';
      st.on('response', h => (status = h[':status']));
      st.setEncoding('utf8');
      st.on('data', d => (data += d));
      st.on('end', () => resolve({ status, data }));
      st.on('error', reject);
      st.end(JSON.stringify({ contents: [user('over h2')] }));
    });
    assert.equal(out.status, 200);
    assert.ok(sseEvents(out.data).length >= 3);
    // HTTP/2 cut -> RST_STREAM, session survives
    await new Promise((resolve, reject) => {
      const req = https.request(`https://127.0.0.1:${T.port}/_fake/script`, { method: 'POST', ca }, res => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ mode: 'faults', faults: [{ cut_after_chunks: 1 }] }));
    });
    const cutRes = await new Promise(resolve => {
      const st = session.request({ ':method': 'POST', ':path': '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', 'x-goog-api-key': KEY });
      let data = '';
      st.setEncoding('utf8');
      st.on('data', d => (data += d));
      st.on('end', () => resolve({ ended: true, data }));
      st.on('error', e => resolve({ ended: false, data, code: e.code }));
      st.on('close', () => resolve({ ended: false, data, rst: st.rstCode }));
      st.end(JSON.stringify({ contents: [user('cut over h2 please now')] }));
    });
    assert.equal(cutRes.ended, false);
    assert.ok(!session.destroyed, 'session survives a stream reset');
    session.close();
    // HTTP/1.1 over TLS
    const h1 = await new Promise((resolve, reject) => {
      const req = https.request(`https://127.0.0.1:${T.port}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', ca, headers: { 'x-goog-api-key': KEY } }, res => {
        let d = '';
        res.on('data', c => (d += c));
        res.on('end', () => resolve({ status: res.statusCode, v: res.httpVersion, d }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ contents: [user('over h1')] }));
    });
    assert.equal(h1.status, 200);
    assert.equal(h1.v, '1.1');
    assert.equal(JSON.parse(h1.d).candidates[0].content.parts[0].text, 'fake-gemini: over h1');
  } finally {
    await T.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--bench: no validation, fixed answers; --workers 2 shares one port', async () => {
  for (const args of [['--bench'], ['--bench', '--workers', '2']]) {
    const B = await startFake(args);
    try {
      const r = await gen(B.base, { whatever: true });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.candidates[0].finishReason, 'STOP');
      const s = await streamRaw(B.base, 'gemini-2.5-flash', {});
      assert.equal(sseEvents(s.raw).length, 3);
      const c = await api(B.base, '/v1beta/models/gemini-2.5-flash:countTokens', {});
      assert.equal(c.json.totalTokens, 8);
      const many = await Promise.all(Array.from({ length: 20 }, () => gen(B.base, {})));
      assert.ok(many.every(x => x.status === 200));
    } finally {
      const { code, signal } = await B.stop();
      assert.ok(code === 0 || signal === 'SIGTERM', `exit ${code} ${signal}`);
    }
  }
});

test('bad CLI arguments exit 2', async () => {
  await assert.rejects(startFake(['--workers', '2']), /exited 2/);
  await assert.rejects(startFake(['--bogus']), /exited 2/);
});

test('SIGTERM exits 0', async () => {
  const X = await startFake([]);
  const { code } = await X.stop();
  assert.equal(code, 0);
});

// ------------------------------------------------------------------------------------------------

mainWithFake(launcher, suite, ['--chunk-delay-ms', '3'], f => {
  F = f;
  return { filter: FILTER, before: () => fetch(F.base + '/_fake/reset', { method: 'POST' }) };
});
