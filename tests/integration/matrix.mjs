// The provider matrix driver for test_matrix.sh: inbound Anthropic Messages x {gemini, anthropic, openai} x
// seven cases, each cell one scripted fake and one or two requests through Warden, checked against a numbered
// golden file (tests/integration/matrix/NN-family-case.json) and against what the fake received.
//
// node tests/integration/matrix.mjs --warden URL --key K --gemini URL --anthropic URL --openai URL
//      --golden DIR --results FILE [--got DIR] [--only SUBSTRING]
// WD_GOLDEN_UPDATE=1 rewrites the golden files instead of comparing them. Prints the matrix table on stdout and
// writes one line per cell to FILE: "ok|FAIL<TAB>family case (golden NN)<TAB>reason"; the failures' details
// go to stderr as they happen, with the golden lines that differ; --got DIR keeps the whole normalised answer
// of a cell that differs.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';

const opt = {};
for (let i = 2; i < process.argv.length; i += 2) opt[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['warden', 'key', 'gemini', 'anthropic', 'openai', 'golden', 'results'])
  if (!opt[k]) { console.error(`matrix.mjs: --${k} is required`); process.exit(2); }
const UPDATE = process.env.WD_GOLDEN_UPDATE === '1';
// Small fixed gaps between the fakes' chunks: a deterministic stream, and the whole matrix well under a minute.
const CHUNK_DELAY_MS = 2;

// ---- HTTP ------------------------------------------------------------------------------------------------

// One request with Node's http client, so a stream that ends badly still gives what arrived before.
function request(method, url, { headers = {}, body } = {}) {
  return new Promise(resolve => {
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(url, { method, headers: data ? { ...headers, 'content-length': data.length } : headers });
    const timer = setTimeout(() => req.destroy(new Error('client timeout (15 s)')), 15000);
    req.on('response', res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      const done = error => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks).toString('utf8'), error });
      };
      res.on('end', () => done(null));
      res.on('error', e => done(e.message));
      res.on('aborted', () => done('aborted'));
    });
    req.on('error', e => { clearTimeout(timer); resolve({ status: 0, headers: {}, raw: '', error: e.message }); });
    req.end(data);
  });
}

const ctl = async (base, p, body) => {
  const r = await request('POST', base + p, { headers: { 'content-type': 'application/json' }, body: body ?? {} });
  if (r.status !== 200) throw new Error(`${base}${p}: HTTP ${r.status} ${r.raw.slice(0, 300)}`);
};
const fakeRequests = async base => JSON.parse((await request('GET', base + '/_fake/requests')).raw);

const messages = body => request('POST', opt.warden + '/anthropic/v1/messages', {
  headers: { 'x-api-key': opt.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
  body,
});

// ---- what the cells send ---------------------------------------------------------------------------------

const TOOLS = [
  {
    name: 'get_weather',
    description: 'The current weather in a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
];

// A 2x2 red PNG built here (signature, IHDR, IDAT, IEND with their CRCs), so the image cell sends real PNG bytes.
function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function redPng() {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = Buffer.from([0, 255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 255, 0, 0]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(rows, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]).toString('base64');
}
const PNG_B64 = redPng();

// ---- normalising an answer -------------------------------------------------------------------------------

// Replaces what changes from run to run: message ids, tool ids (numbered by first appearance, so two distinct
// ids stay distinct and a repeated id shows as the same placeholder), signatures and request ids.
function normaliser() {
  const toolIds = new Map();
  const toolId = v => {
    if (!toolIds.has(v)) toolIds.set(v, `<tool_id_${toolIds.size + 1}>`);
    return toolIds.get(v);
  };
  const walk = (x, key, parent) => {
    if (Array.isArray(x)) return x.map(v => walk(v, undefined, x));
    if (x && typeof x === 'object') {
      const out = {};
      for (const [k, v] of Object.entries(x)) out[k] = walk(v, k, x);
      return out;
    }
    if (typeof x !== 'string') return x;
    if (key === 'id' && /^msg_/.test(x)) return '<msg_id>';
    if (key === 'id' && parent && parent.type === 'tool_use') return toolId(x);
    if (key === 'tool_use_id') return toolId(x);
    if (key === 'signature' || key === 'request_id') return `<${key}>`;
    return x;
  };
  return walk;
}

// The client-visible part of one exchange: status, the headers that matter, and the body (JSON) or the list of
// SSE events with their data.
function visible(r, walk) {
  const out = { status: r.status, headers: {} };
  for (const h of ['content-type', 'retry-after']) if (r.headers[h] !== undefined) out.headers[h] = r.headers[h];
  // whether the client gets a request id to quote (the SDKs read it), not its value
  if (r.headers['request-id'] !== undefined) out.headers['request-id'] = '<request_id>';
  if (r.error) out.transport_error = r.error;
  if (/^text\/event-stream/.test(r.headers['content-type'] || '')) {
    out.events = parseSse(r.raw).map(e => ({ event: e.event, data: walk(e.data) }));
  } else {
    try {
      out.body = walk(JSON.parse(r.raw));
    } catch {
      out.body_text = r.raw;
    }
  }
  return out;
}

function parseSse(text) {
  const events = [];
  for (const block of text.replace(/\r\n/g, '\n').split('\n\n')) {
    if (!block.trim()) continue;
    let event = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    let d = data.join('\n');
    try {
      d = JSON.parse(d);
    } catch {
      /* kept as text */
    }
    events.push({ event, data: d });
  }
  return events;
}

// The message a stream adds up to (text and tool_use blocks), to check streamed tool calls like JSON ones.
function assemble(events) {
  let msg = null;
  for (const { event, data } of events) {
    if (event === 'message_start') msg = { ...data.message, content: [] };
    else if (!msg) continue;
    else if (event === 'content_block_start') msg.content[data.index] = { ...data.content_block, _json: '' };
    else if (event === 'content_block_delta') {
      const b = msg.content[data.index];
      if (data.delta.type === 'text_delta') b.text += data.delta.text;
      else if (data.delta.type === 'input_json_delta') b._json += data.delta.partial_json;
    } else if (event === 'content_block_stop') {
      const b = msg.content[data.index];
      if (b.type === 'tool_use' && b._json) b.input = JSON.parse(b._json);
      delete b._json;
    } else if (event === 'message_delta') msg.stop_reason = data.delta.stop_reason;
  }
  return msg;
}

// ---- the fakes, one per family ---------------------------------------------------------------------------

// The script for the fakes' agent mode (gemini and openai): the calls as one step, then the final text.
const agentSteps = (calls, final) => ({
  mode: 'agent',
  steps: [{ calls: calls.map(c => ({ name: c.name, args: c.input })) }, { text: final }],
});

// Each family's cut falls after two text deltas: Gemini's first chunk already carries text, the first
// Chat Completions chunk only the role, and Anthropic's text follows message_start, content_block_start, ping.
const FAMILIES = [
  {
    name: 'gemini', model: 'm-gemini', upstreamModel: 'gemini-2.5-flash', base: opt.gemini,
    isCall: r => /:(stream)?generateContent/i.test(r.path),
    toolSteps: agentSteps,
    faults: f => ({ mode: 'faults', faults: f }),
    cut: { cut_after_chunks: 2 },
  },
  {
    name: 'anthropic', model: 'm-anthropic', upstreamModel: 'claude-sonnet-4-5', base: opt.anthropic,
    isCall: r => r.path.startsWith('/v1/messages') && !r.path.includes('count_tokens'),
    toolSteps: (calls, final) => ({ answers: [{ tool_use: calls.length > 1 ? calls : calls[0] }, { text: final }] }),
    faults: f => ({ faults: f }),
    cut: { cut_after_events: 5 },
  },
  {
    name: 'openai', model: 'm-openai', upstreamModel: 'gpt-4.1', base: opt.openai,
    isCall: r => r.path.startsWith('/v1/chat/completions'),
    toolSteps: agentSteps,
    faults: f => ({ mode: 'faults', faults: f }),
    cut: { cut_after_chunks: 3 },
  },
];

// ---- checks ----------------------------------------------------------------------------------------------

class CellFailure extends Error {}
const must = (cond, why, detail) => {
  if (!cond) throw new CellFailure(detail === undefined ? why : `${why}: ${JSON.stringify(detail).slice(0, 600)}`);
};
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const userText = (fam, req) => {
  // the text of the last user turn as the fake received it, in each family's own shape
  const b = req.body;
  if (fam.name === 'gemini') {
    const u = b.contents.filter(c => c.role === 'user').at(-1);
    return u.parts.filter(p => p.text !== undefined).map(p => p.text).join('');
  }
  const u = b.messages.filter(m => m.role === 'user').at(-1);
  if (typeof u.content === 'string') return u.content;
  return u.content.filter(p => p.type === 'text').map(p => p.text).join('');
};

// The fake's log of model calls for this cell, each with the status the fake answered.
async function calls(fam) {
  return (await fakeRequests(fam.base)).filter(fam.isCall);
}
function oneCall(fam, log, status = 200) {
  must(log.length === 1, `want 1 upstream call, the fake saw ${log.length}`, log.map(r => [r.path, r.status]));
  must(log[0].status === status, `upstream answered ${log[0].status}, want ${status}`, log[0].body);
  return log[0];
}
function upstreamModel(fam, req) {
  if (fam.name === 'gemini') must(req.path.includes(`/models/${fam.upstreamModel}:`), 'the upstream path names the target model', req.path);
  else must(req.body.model === fam.upstreamModel, 'the upstream body names the target model', req.body.model);
}
function maxTokens(fam, req, want) {
  const b = req.body;
  const got = fam.name === 'gemini' ? b.generationConfig && b.generationConfig.maxOutputTokens
    : fam.name === 'openai' ? b.max_completion_tokens ?? b.max_tokens : b.max_tokens;
  must(got === want, `the provider got the output limit ${want}`, got);
}
function status(r, want) {
  must(r.status === want, `HTTP ${r.status}, want ${want}`, r.raw.slice(0, 400));
}

// ---- the cases -------------------------------------------------------------------------------------------

const HELLO = 'Say hello to the matrix';
const REMINDER = '<system-reminder>Answer briefly.</system-reminder>';

const CASES = [
  {
    name: 'text', label: 'text',
    async run(fam, ex) {
      await ctl(fam.base, '/_fake/script', { chunk_delay_ms: CHUNK_DELAY_MS });
      const sent = { model: fam.model, max_tokens: 200, messages: [{ role: 'user', content: HELLO }] };
      const r = ex(await messages(sent));
      status(r, 200);
      const req = oneCall(fam, await calls(fam));
      upstreamModel(fam, req);
      maxTokens(fam, req, 200);
      must(userText(fam, req) === HELLO, 'the user text reached the provider', req.body);
      if (fam.name === 'gemini') must(/:generateContent$/.test(req.path.split('?')[0]), 'a non-streaming call', req.path);
      else must(!req.body.stream, 'a non-streaming call', req.body.stream);
      if (fam.name === 'anthropic') must(same({ ...sent, model: fam.upstreamModel }, req.body), 'the body relayed as sent (model aside)', req.body);
    },
  },
  {
    name: 'stream', label: 'stream',
    async run(fam, ex) {
      await ctl(fam.base, '/_fake/script', { chunk_delay_ms: CHUNK_DELAY_MS });
      const sent = { model: fam.model, max_tokens: 200, stream: true, messages: [{ role: 'user', content: HELLO }] };
      const r = ex(await messages(sent));
      status(r, 200);
      const ev = parseSse(r.raw);
      must(ev.at(-1) && ev.at(-1).event === 'message_stop', 'the stream ends with message_stop', ev.at(-1));
      const m = assemble(ev);
      must(m && m.content.length === 1 && /: Say hello to the matrix$/.test(m.content[0].text), 'the stream adds up to the echo', m);
      const req = oneCall(fam, await calls(fam));
      upstreamModel(fam, req);
      if (fam.name === 'gemini') must(req.path.includes(':streamGenerateContent') && req.path.includes('alt=sse'), 'an SSE stream call', req.path);
      else must(req.body.stream === true, 'a streaming call', req.body);
      if (fam.name === 'anthropic') must(same({ ...sent, model: fam.upstreamModel }, req.body), 'the body relayed as sent (model aside)', req.body);
    },
  },
  {
    // Turn 1 gets a tool_use; turn 2 sends it back with its tool_result, followed by a system reminder as Claude
    // Code sends it, and gets the final text. The fakes check the pairing (and Gemini the thought signature that
    // rides in the tool id) before they answer turn 2.
    name: 'tools', label: 'tool trip',
    async run(fam, ex) {
      const call = { name: 'get_weather', input: { city: 'Paris' } };
      await ctl(fam.base, '/_fake/script', { ...fam.toolSteps([call], 'It is 18 C and sunny in Paris.'), chunk_delay_ms: CHUNK_DELAY_MS });
      const history = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const r1 = ex(await messages({ model: fam.model, max_tokens: 200, tools: TOOLS, messages: history }));
      status(r1, 200);
      const a1 = JSON.parse(r1.raw);
      const uses = a1.content.filter(b => b.type === 'tool_use');
      must(uses.length === 1 && uses[0].name === 'get_weather' && same(uses[0].input, call.input), 'turn 1 is one get_weather call', a1.content);
      must(/^[a-zA-Z0-9_-]+$/.test(uses[0].id), 'the tool id is a valid Anthropic id', uses[0].id);
      history.push({ role: 'assistant', content: a1.content });
      history.push({ role: 'user', content: [
        { type: 'tool_result', tool_use_id: uses[0].id, content: '18 C and sunny' },
        { type: 'text', text: REMINDER },
      ] });
      const sent2 = { model: fam.model, max_tokens: 200, tools: TOOLS, messages: history };
      const r2 = ex(await messages(sent2));
      status(r2, 200);
      const a2 = JSON.parse(r2.raw);
      must(a2.stop_reason === 'end_turn' && a2.content.length === 1 && a2.content[0].text === 'It is 18 C and sunny in Paris.', 'turn 2 is the final text', a2);
      const log = await calls(fam);
      must(log.length === 2 && log.every(q => q.status === 200), 'two upstream calls, both 200', log.map(q => q.status));
      const b = log[1].body;
      if (fam.name === 'gemini') {
        const [u, m, t] = b.contents;
        const fc = m.parts.find(p => p.functionCall);
        const fr = t.parts.find(p => p.functionResponse);
        must(u.role === 'user' && m.role === 'model' && t.role === 'user', 'user, model, user contents', b.contents.map(c => c.role));
        must(fc && fc.functionCall.name === 'get_weather' && typeof fc.thoughtSignature === 'string', 'the model turn has the signed call', m.parts);
        must(fr && fr.functionResponse.name === 'get_weather' && JSON.stringify(fr.functionResponse.response).includes('18 C and sunny'), 'the user turn answers it', t.parts);
        must(t.parts.some(p => p.text === REMINDER), 'the reminder rides in the same user turn', t.parts);
      } else if (fam.name === 'openai') {
        const [, asst, tool, after] = b.messages;
        must(asst.role === 'assistant' && asst.tool_calls.length === 1, 'the assistant message carries the call', asst);
        must(tool.role === 'tool' && tool.tool_call_id === asst.tool_calls[0].id && tool.tool_call_id === uses[0].id, 'the tool message answers the call id the client saw', [asst.tool_calls, tool]);
        must(JSON.stringify(tool.content).includes('18 C and sunny'), 'the tool result text reached the provider', tool);
        must(b.messages.length === 4 && after.role === 'user' && JSON.stringify(after.content).includes(REMINDER), 'the reminder follows as a user message', b.messages.slice(3));
      } else {
        must(same({ ...sent2, model: fam.upstreamModel }, b), 'the history relayed as sent (model aside)', b.messages);
      }
    },
  },
  {
    // Two calls in one streamed turn, then both answered in one user turn: the ids must be distinct and valid
    // for the provider to take the pairing.
    name: 'parallel', label: 'parallel',
    async run(fam, ex) {
      const c = [{ name: 'get_weather', input: { city: 'Paris' } }, { name: 'get_weather', input: { city: 'Oslo' } }];
      await ctl(fam.base, '/_fake/script', { ...fam.toolSteps(c, 'Paris is sunny, Oslo is cold.'), chunk_delay_ms: CHUNK_DELAY_MS });
      const history = [{ role: 'user', content: 'Weather in Paris and in Oslo?' }];
      const r1 = ex(await messages({ model: fam.model, max_tokens: 200, stream: true, tools: TOOLS, messages: history }));
      status(r1, 200);
      const m = assemble(parseSse(r1.raw));
      must(m && m.stop_reason === 'tool_use', 'the stream stops for tool_use', m);
      const uses = m.content.filter(b => b.type === 'tool_use');
      must(uses.length === 2, 'two tool_use blocks', m.content);
      must(same(uses.map(u => u.input), c.map(x => x.input)), 'both calls with their inputs, in order', uses);
      must(uses[0].id !== uses[1].id, 'the two ids are distinct', uses.map(u => u.id));
      must(uses.every(u => /^[a-zA-Z0-9_-]{1,}$/.test(u.id)), 'both ids are valid Anthropic ids', uses.map(u => u.id));
      history.push({ role: 'assistant', content: m.content });
      history.push({ role: 'user', content: uses.map((u, i) => ({ type: 'tool_result', tool_use_id: u.id, content: i ? '-5 C' : '18 C' })) });
      const r2 = ex(await messages({ model: fam.model, max_tokens: 200, tools: TOOLS, messages: history }));
      status(r2, 200);
      must(JSON.parse(r2.raw).content[0].text === 'Paris is sunny, Oslo is cold.', 'the answers to both calls give the final text', r2.raw);
      const log = await calls(fam);
      must(log.length === 2 && log.every(q => q.status === 200), 'two upstream calls, both 200', log.map(q => q.status));
      const b = log[1].body;
      if (fam.name === 'gemini') {
        const fr = b.contents[2].parts.filter(p => p.functionResponse);
        must(fr.length === 2, 'two functionResponse parts', b.contents[2].parts);
      } else if (fam.name === 'openai') {
        const ids = b.messages[1].tool_calls.map(t => t.id);
        const answered = b.messages.slice(2).filter(x => x.role === 'tool').map(x => x.tool_call_id);
        must(ids.length === 2 && same(ids, answered) && same(ids, uses.map(u => u.id)), 'two tool messages answer the two call ids', { ids, answered });
      } else {
        must(same(b.messages[2].content.map(x => x.tool_use_id), uses.map(u => u.id)), 'two tool_results answer the two ids', b.messages[2].content);
      }
    },
  },
  {
    name: 'image', label: 'image',
    async run(fam, ex) {
      await ctl(fam.base, '/_fake/script', { chunk_delay_ms: CHUNK_DELAY_MS });
      const sent = {
        model: fam.model, max_tokens: 200,
        messages: [{ role: 'user', content: [
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } },
          { type: 'text', text: 'What colour is this image?' },
        ] }],
      };
      const r = ex(await messages(sent));
      status(r, 200);
      const req = oneCall(fam, await calls(fam));
      const b = req.body;
      if (fam.name === 'gemini') {
        const parts = b.contents[0].parts;
        must(parts.some(p => p.inlineData && p.inlineData.mimeType === 'image/png' && p.inlineData.data === PNG_B64), 'the PNG as inlineData', parts);
      } else if (fam.name === 'openai') {
        const parts = b.messages[0].content;
        must(Array.isArray(parts) && parts.some(p => p.type === 'image_url' && p.image_url.url === `data:image/png;base64,${PNG_B64}`), 'the PNG as an image_url data URL', parts);
      } else {
        must(same({ ...sent, model: fam.upstreamModel }, b), 'the image block relayed as sent', b.messages);
      }
      must(userText(fam, req) === 'What colour is this image?', 'the text next to the image reached the provider', b);
    },
  },
  {
    // No same-target retry (routing.attempts_per_target defaults to 1) and one target: the 429 is the answer.
    name: '429', label: '429',
    async run(fam, ex) {
      await ctl(fam.base, '/_fake/script', { ...fam.faults([{ status: 429, retry_after: 7 }]), chunk_delay_ms: CHUNK_DELAY_MS });
      const r = ex(await messages({ model: fam.model, max_tokens: 200, messages: [{ role: 'user', content: HELLO }] }));
      status(r, 429);
      must(r.headers['retry-after'] === '7', 'retry-after: 7 passed on', r.headers);
      const e = JSON.parse(r.raw);
      must(e.type === 'error' && e.error && e.error.type === 'rate_limit_error' && typeof e.error.message === 'string', 'an Anthropic rate_limit_error', e);
      const req = oneCall(fam, await calls(fam), 429);
      if (fam.name === 'anthropic') {
        // the provider's own body: its request id, and the bytes as the fake writes them (compact JSON)
        must(e.request_id === req.request_id, "the provider's request_id", [e.request_id, req.request_id]);
        must(r.raw === JSON.stringify(e), 'the body byte for byte as the provider wrote it', r.raw);
      }
    },
  },
  {
    name: 'cut', label: 'cut',
    async run(fam, ex) {
      await ctl(fam.base, '/_fake/script', { ...fam.faults([fam.cut]), chunk_delay_ms: CHUNK_DELAY_MS });
      const r = ex(await messages({ model: fam.model, max_tokens: 200, stream: true, messages: [{ role: 'user', content: HELLO }] }));
      status(r, 200);
      const ev = parseSse(r.raw);
      must(ev.length >= 2 && ev[0].event === 'message_start', 'the stream began', ev.map(e => e.event));
      must(ev.some(e => e.event === 'content_block_delta'), 'some text reached the client before the cut', ev.map(e => e.event));
      must(ev.at(-1).event === 'error' && ev.at(-1).data && ev.at(-1).data.type === 'error', 'the stream ends with event: error', ev.at(-1));
      must(!ev.some(e => e.event === 'message_stop'), 'no message_stop', ev.map(e => e.event));
      oneCall(fam, await calls(fam));
    },
  },
];

// ---- the run ---------------------------------------------------------------------------------------------

// "-want"/"+got" lines of a longest-common-subsequence diff (the files are a few hundred lines at most).
function lineDiff(a, b) {
  const n = a.length, m = b.length;
  const L = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { i++; j++; }
    else if (i < n && (j === m || L[i + 1][j] >= L[i][j + 1])) out.push(`-${i + 1}: ${a[i++]}`);
    else out.push(`+${j + 1}: ${b[j++]}`);
  }
  return out;
}

const pad = (n, w) => String(n).padStart(w, '0');
const golden = (fi, ci) => path.join(opt.golden, `${pad(fi * CASES.length + ci + 1, 2)}-${FAMILIES[fi].name}-${CASES[ci].name}.json`);

async function runCell(fi, ci) {
  const fam = FAMILIES[fi], cs = CASES[ci];
  const file = golden(fi, ci);
  const walk = normaliser();
  const exchanges = [];
  // ex records what the client saw of each exchange, for the golden file
  const ex = r => { exchanges.push(visible(r, walk)); return r; };
  let why = null;
  let diff = null;
  try {
    await ctl(fam.base, '/_fake/reset');
    await cs.run(fam, ex);
  } catch (e) {
    why = e instanceof CellFailure ? e.message : `${e.message}`;
  }
  const got = JSON.stringify({ cell: `${fam.name} ${cs.name}`, model: fam.model, exchanges }, null, 2) + '\n';
  if (UPDATE) {
    if (!why) fs.writeFileSync(file, got);
  } else if (!why) {
    let want = null;
    try {
      want = fs.readFileSync(file, 'utf8');
    } catch {
      why = `no golden file ${path.basename(file)} (run with WD_GOLDEN_UPDATE=1)`;
    }
    if (want !== null && want !== got) {
      why = `differs from ${path.basename(file)}`;
      if (opt.got) {
        fs.mkdirSync(opt.got, { recursive: true });
        fs.writeFileSync(path.join(opt.got, path.basename(file)), got);
        why += ` (what came is in ${path.join(opt.got, path.basename(file))})`;
      }
      diff = lineDiff(want.split('\n'), got.split('\n'));
    }
  }
  if (why) {
    process.stderr.write(`# ${fam.name} ${cs.name}: ${why}\n`);
    if (diff) for (const l of diff.slice(0, 30)) process.stderr.write(`#   ${l}\n`);
    else for (const x of exchanges) process.stderr.write(`#   client saw: ${JSON.stringify(x).slice(0, 1500)}\n`);
  }
  return { fam: fam.name, cs: cs.name, golden: path.basename(file), ok: !why, why };
}

const results = [];
for (let fi = 0; fi < FAMILIES.length; fi++)
  for (let ci = 0; ci < CASES.length; ci++) {
    if (opt.only && !`${FAMILIES[fi].name} ${CASES[ci].name}`.includes(opt.only)) continue;
    results.push(await runCell(fi, ci));
  }

// The matrix: rows the provider families, columns the cases.
const W = 10;
let table = 'family'.padEnd(W) + CASES.map(c => c.label.padStart(W)).join('') + '\n';
for (const f of FAMILIES) {
  table += f.name.padEnd(W);
  for (const c of CASES) {
    const r = results.find(x => x.fam === f.name && x.cs === c.name);
    table += (r ? (r.ok ? 'ok' : 'FAIL') : '-').padStart(W);
  }
  table += '\n';
}
process.stdout.write(table);
fs.writeFileSync(opt.results, results.map(r =>
  `${r.ok ? 'ok' : 'FAIL'}\t${r.fam} ${r.cs} (${r.golden.replace(/\.json$/, '')})\t${(r.why || '').replace(/[\t\n]/g, ' ')}\n`).join(''));
