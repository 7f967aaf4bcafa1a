// The official @anthropic-ai/sdk against Warden in front of the fake Gemini: plain and streamed messages,
// thinking, a tool round trip, countTokens and the error classes. Run by test_sdk.sh with WARDEN_URL,
// FAKE_URL and WARDEN_KEY set; prints one "ok - ..." or "not ok - ..." line per check, exits 1 on any failure.
import Anthropic, { AuthenticationError, NotFoundError, RateLimitError } from '@anthropic-ai/sdk';
import { promptTokens, validateCountTokensRequest } from '../fakes/fake_gemini_validate.mjs';

const WARDEN_URL = process.env.WARDEN_URL;
const FAKE_URL = process.env.FAKE_URL;
const KEY = process.env.WARDEN_KEY || 'devkey';
const FAKE_KEY = process.env.FAKE_KEY || 'test-gemini-key';
if (!WARDEN_URL || !FAKE_URL) {
  console.error('sdk_check: WARDEN_URL and FAKE_URL must be set');
  process.exit(2);
}

let failed = 0;
let total = 0;
const ok = d => {
  total++;
  console.log(`ok - ${d}`);
};
const notOk = (d, why) => {
  failed++;
  total++;
  console.log(`not ok - ${d}`);
  if (why !== undefined) console.log(`#   ${String(why).split('\n').join('\n#   ')}`);
};
const check = (d, cond, why) => (cond ? ok(d) : notOk(d, why));
const show = v => JSON.stringify(v, null, 0).slice(0, 1500);

// Every wait is bounded: the SDK call by its own timeout, the whole run by this watchdog.
const watchdog = setTimeout(() => {
  notOk('sdk_check finished within 240 s');
  process.exit(1);
}, 240_000);
watchdog.unref();

const baseURL = `${WARDEN_URL}/anthropic`;
const client = new Anthropic({ apiKey: KEY, baseURL, maxRetries: 0, timeout: 30_000 });
const MODEL = 'claude-sonnet-4-5'; // the sonnet tier: gemini-2.5-flash on the fake

async function fake(method, path, body) {
  const r = await fetch(`${FAKE_URL}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`fake ${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

// Runs one named group of checks; an exception fails the group with its message instead of ending the run.
async function group(name, fn) {
  try {
    await fn();
  } catch (e) {
    notOk(`${name}: unexpected ${e && e.constructor ? e.constructor.name : 'error'}`, e && (e.stack || e.message));
  }
}

await group('messages.create', async () => {
  await fake('POST', '/_fake/reset');
  const msg = await client.messages.create({
    model: MODEL,
    max_tokens: 256,
    messages: [{ role: 'user', content: 'Say hello to the SDK test.' }],
  });
  const text = msg.content.filter(b => b.type === 'text').map(b => b.text).join('');
  check('messages.create returns a message with text', msg.type === 'message' && msg.role === 'assistant' && text.startsWith('fake-gemini: Say hello to the SDK test.'), show(msg));
  check('messages.create has stop_reason end_turn', msg.stop_reason === 'end_turn', show(msg));
  const u = msg.usage || {};
  check('messages.create has usage with input and output tokens', Number.isInteger(u.input_tokens) && u.input_tokens > 0 && Number.isInteger(u.output_tokens) && u.output_tokens > 0, show(u));
  const reqs = await fake('GET', '/_fake/requests');
  const gen = reqs.filter(r => r.path.includes(':generateContent'));
  check('messages.create reached the fake as generateContent on gemini-2.5-flash', gen.length === 1 && gen[0].path.startsWith('/v1beta/models/gemini-2.5-flash:'), show(reqs.map(r => r.path)));
});

await group('messages.stream', async () => {
  await fake('POST', '/_fake/reset');
  const stream = client.messages.stream({
    model: MODEL,
    max_tokens: 256,
    messages: [{ role: 'user', content: 'Stream a greeting for the streaming SDK test, please.' }],
  });
  const deltas = [];
  stream.on('text', d => deltas.push(d));
  const final = await stream.finalMessage();
  const text = final.content.filter(b => b.type === 'text').map(b => b.text).join('');
  check('messages.stream yields several text deltas', deltas.length >= 3, `deltas: ${show(deltas)}`);
  check('the deltas add up to the final text', deltas.join('') === text && text.startsWith('fake-gemini: Stream a greeting'), `deltas ${show(deltas)} final ${show(text)}`);
  check('finalMessage() parses with stop_reason end_turn', final.type === 'message' && final.stop_reason === 'end_turn', show(final));
  check('finalMessage() carries usage', Number.isInteger(final.usage.input_tokens) && final.usage.input_tokens > 0 && final.usage.output_tokens > 0, show(final.usage));
  const reqs = await fake('GET', '/_fake/requests');
  check('the stream reached the fake as streamGenerateContent?alt=sse', reqs.some(r => r.path.includes(':streamGenerateContent?alt=sse')), show(reqs.map(r => r.path)));
});

await group('thinking', async () => {
  await fake('POST', '/_fake/reset');
  const msg = await client.messages.create({
    model: MODEL,
    max_tokens: 4096,
    thinking: { type: 'enabled', budget_tokens: 2048 },
    messages: [{ role: 'user', content: 'Think about it, then answer.' }],
  });
  const th = msg.content.find(b => b.type === 'thinking');
  check('thinking request yields a thinking block with text', th && typeof th.thinking === 'string' && th.thinking.length > 0, show(msg.content));
  check('the thinking block has a signature starting with "wdsig1."', th && typeof th.signature === 'string' && th.signature.startsWith('wdsig1.'), show(th));
  check('the answer text follows the thinking block', msg.content.findIndex(b => b.type === 'text') > msg.content.indexOf(th), show(msg.content));
  const reqs = await fake('GET', '/_fake/requests');
  const tc = reqs.length && reqs[reqs.length - 1].body.generationConfig && reqs[reqs.length - 1].body.generationConfig.thinkingConfig;
  check('the fake got thinkingConfig with includeThoughts and the budget 2048', tc && tc.includeThoughts === true && tc.thinkingBudget === 2048, show(tc));
});

await group('tool use', async () => {
  await fake('POST', '/_fake/reset');
  await fake('POST', '/_fake/script', {
    mode: 'agent',
    steps: [{ call: { name: 'get_weather', args: { city: 'Paris' } } }, { text: 'It is sunny in Paris, 21 degrees.' }],
  });
  const tools = [
    {
      name: 'get_weather',
      description: 'Current weather for a city',
      input_schema: { type: 'object', properties: { city: { type: 'string', description: 'City name' } }, required: ['city'] },
    },
  ];
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const first = await client.messages.create({ model: MODEL, max_tokens: 1024, tools, messages });
  const tu = first.content.find(b => b.type === 'tool_use');
  check('tool round trip: the SDK gets a tool_use block for get_weather', tu && tu.name === 'get_weather' && tu.input && tu.input.city === 'Paris', show(first.content));
  check('tool round trip: stop_reason is tool_use', first.stop_reason === 'tool_use', show(first));
  check('tool round trip: the tool_use id matches ^[A-Za-z0-9_-]+$', tu && /^[A-Za-z0-9_-]+$/.test(tu.id), tu && tu.id);
  if (!tu) return;
  messages.push({ role: 'assistant', content: first.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: 'sunny, 21 C' }] });
  const second = await client.messages.create({ model: MODEL, max_tokens: 1024, tools, messages });
  const text = second.content.filter(b => b.type === 'text').map(b => b.text).join('');
  check('tool round trip: the tool_result comes back as the final text', text === 'It is sunny in Paris, 21 degrees.' && second.stop_reason === 'end_turn', show(second));
  const reqs = await fake('GET', '/_fake/requests');
  const last = reqs[reqs.length - 1].body;
  const turn = last.contents[last.contents.length - 1];
  const fr = turn.parts.find(p => p.functionResponse);
  check('tool round trip: the fake got a functionResponse named get_weather with the result', turn.role === 'user' && fr && fr.functionResponse.name === 'get_weather' && JSON.stringify(fr.functionResponse.response).includes('sunny, 21 C'), show(turn));
  const call = last.contents.find(c => c.role === 'model').parts.find(p => p.functionCall);
  check('tool round trip: the functionCall in history carries the thought signature', call && typeof call.thoughtSignature === 'string' && call.thoughtSignature.length > 0, show(call));
});

await group('countTokens', async () => {
  await fake('POST', '/_fake/reset');
  const params = {
    model: MODEL,
    system: 'You are a careful assistant.',
    messages: [{ role: 'user', content: 'Count the tokens of this sentence, héllo wörld.' }],
    tools: [{ name: 'get_weather', description: 'Current weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
  };
  const r = await client.messages.countTokens(params);
  const reqs = await fake('GET', '/_fake/requests');
  const ct = reqs.filter(x => x.path.includes(':countTokens'));
  check('countTokens reached the fake once, answered 200', ct.length === 1 && ct[0].status === 200, show(reqs.map(x => [x.path, x.status])));
  if (ct.length !== 1) return;
  // The fake's number: replay the exact body Warden sent (countTokens uses up no fault and is deterministic)...
  const model = decodeURIComponent(ct[0].path.match(/\/models\/([^:]+):countTokens/)[1]);
  const resp = await fetch(`${FAKE_URL}/v1beta/models/${model}:countTokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': FAKE_KEY },
    body: JSON.stringify(ct[0].body),
    signal: AbortSignal.timeout(10_000),
  });
  const fakeCount = (await resp.json()).totalTokens;
  // ... and the same rule computed here with the fake's own function.
  const computed = promptTokens(validateCountTokensRequest(ct[0].body, model).req);
  check('countTokens input_tokens equals the fake\'s totalTokens', Number.isInteger(r.input_tokens) && r.input_tokens === fakeCount && fakeCount === computed, `sdk ${r.input_tokens}, fake ${fakeCount}, computed ${computed}`);
  const g = ct[0].body.generateContentRequest || ct[0].body;
  check('countTokens sent the system instruction and tools along', !!g.systemInstruction && Array.isArray(g.tools) && g.tools.length > 0, show(ct[0].body));
});

await group('errors', async () => {
  await fake('POST', '/_fake/reset');
  const bad = new Anthropic({ apiKey: 'not-the-key', baseURL, maxRetries: 0, timeout: 30_000 });
  let err = null;
  try {
    await bad.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  } catch (e) {
    err = e;
  }
  check('a bad API key yields AuthenticationError (401)', err instanceof AuthenticationError && err.status === 401, err ? `${err.constructor.name} ${err.status} ${err.message}` : 'no error');
  const after401 = await fake('GET', '/_fake/requests');
  check('a bad API key never reaches the provider', after401.length === 0, show(after401.map(r => r.path)));

  err = null;
  const unknown = 'no-such-model-xyz';
  try {
    await client.messages.create({ model: unknown, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  } catch (e) {
    err = e;
  }
  check('an unknown model yields NotFoundError (404)', err instanceof NotFoundError && err.status === 404, err ? `${err.constructor.name} ${err.status} ${err.message}` : 'no error');
  check('the 404 message names the model', err && String(err.message).includes(unknown), err && err.message);

  await fake('POST', '/_fake/script', { mode: 'faults', faults: [{ status: 429, retry_after: 7 }] });
  err = null;
  try {
    await client.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  } catch (e) {
    err = e;
  }
  check('an upstream 429 yields RateLimitError (429)', err instanceof RateLimitError && err.status === 429, err ? `${err.constructor.name} ${err.status} ${err.message}` : 'no error');
  const ra = err && err.headers && typeof err.headers.get === 'function' ? err.headers.get('retry-after') : undefined;
  check('the RateLimitError carries retry-after: 7', ra === '7', `retry-after: ${ra}`);
  check('the 429 error type is rate_limit_error', err && err.error && err.error.error && err.error.error.type === 'rate_limit_error', err && show(err.error));
  const st = await fake('GET', '/_fake/state');
  check('the fault was used by exactly one upstream call (no retry with maxRetries 0)', st.faults.length === 0 && (await fake('GET', '/_fake/stats')).requests === 1, show(st));
});

clearTimeout(watchdog);
console.log(`# sdk_check done: ${total} checks, ${failed} failed`);
process.exit(failed ? 1 : 0);
