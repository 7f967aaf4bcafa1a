// Writes the request bodies bench/run.sh sends, into the directory given as argv[2]:
//   anthropic-{50k,300}-{json,sse}.json   Anthropic Messages (Warden, claude-code-router)
//   openai-{50k,300}-{json,sse}.json      the equivalent OpenAI chat request (Portkey: it refuses Anthropic-in for Google)
// The 50 KB body is the captured Claude Code first turn (bench/claude-code-50k.json) with "stream" set per scenario.
// The Gemini bodies for the direct baseline come from Warden's own encoder (translate_bench --emit).
import fs from 'node:fs';
import path from 'node:path';

const out = process.argv[2];
const here = path.dirname(new URL(import.meta.url).pathname);
const cc = JSON.parse(fs.readFileSync(path.join(here, 'claude-code-50k.json'), 'utf8'));

// 300 bytes on the wire for the non-streaming Anthropic body (299 streaming): the prompt is cut to fit.
function small(stream) {
  const mk = text => ({ model: 'claude-sonnet-4-5', max_tokens: 1024, stream, messages: [{ role: 'user', content: text }] });
  const words = 'Write a haiku about load balancers and the packets that cross them, then explain it in one line. '.repeat(4);
  return mk(words.slice(0, 300 - JSON.stringify(mk('')).length - (stream ? 1 : 0)).trimEnd());
}

const textOf = blocks => (typeof blocks === 'string' ? blocks : blocks.filter(b => b.type === 'text').map(b => b.text).join('\n\n'));

// Anthropic Messages -> OpenAI chat: system blocks -> one system message; text blocks -> text parts;
// tools -> function tools with the same JSON Schema. Thinking/effort/metadata have no OpenAI-chat equivalent
// that Portkey maps to Gemini, so they are left out (Warden does translate them).
function toOpenAI(a, model) {
  const messages = [];
  if (a.system) messages.push({ role: 'system', content: textOf(a.system) });
  for (const m of a.messages) {
    if (typeof m.content === 'string') messages.push({ role: m.role, content: m.content });
    else if (m.role === 'system') messages.push({ role: 'system', content: textOf(m.content) });
    else messages.push({ role: m.role, content: m.content.filter(b => b.type === 'text').map(b => ({ type: 'text', text: b.text })) });
  }
  const o = { model, max_tokens: a.max_tokens, stream: a.stream, messages };
  if (a.tools) o.tools = a.tools.map(t => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } }));
  return o;
}

for (const stream of [false, true]) {
  const tag = stream ? 'sse' : 'json';
  const big = { ...cc, stream };
  const sm = small(stream);
  fs.writeFileSync(path.join(out, `anthropic-50k-${tag}.json`), JSON.stringify(big));
  fs.writeFileSync(path.join(out, `anthropic-300-${tag}.json`), JSON.stringify(sm));
  fs.writeFileSync(path.join(out, `openai-50k-${tag}.json`), JSON.stringify(toOpenAI(big, 'gemini-2.5-pro')));
  fs.writeFileSync(path.join(out, `openai-300-${tag}.json`), JSON.stringify(toOpenAI(sm, 'gemini-2.5-flash')));
}
