// Request validation for tests/fakes/fake_anthropic.mjs, as pure functions: the Anthropic Messages API's rules
// (unknown fields, required fields, role order, tool_use/tool_result pairing, id formats, max_tokens ceilings,
// thinking rules) with the API's error wording where it is known. Node built-ins only. See tests/fakes/README.md.

export class ApiError extends Error {
  constructor(code, type, message, headers) {
    super(message);
    this.code = code;
    this.type = type;
    this.headers = headers || {};
  }
  body(requestId) {
    const b = { type: 'error', error: { type: this.type, message: this.message } };
    if (requestId) b.request_id = requestId;
    return b;
  }
}

export const invalid = msg => new ApiError(400, 'invalid_request_error', msg);

export const TOOL_USE_ID_RE = /^[a-zA-Z0-9_-]+$/;
export const TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

// id -> [dated id, display name, max output tokens, created_at]
const MODEL_TABLE = [
  ['claude-opus-4-6', 'claude-opus-4-6', 'Claude Opus 4.6', 128000, '2026-02-05T00:00:00Z'],
  ['claude-opus-4-5', 'claude-opus-4-5-20251101', 'Claude Opus 4.5', 64000, '2025-11-24T00:00:00Z'],
  ['claude-sonnet-4-5', 'claude-sonnet-4-5-20250929', 'Claude Sonnet 4.5', 64000, '2025-09-29T00:00:00Z'],
  ['claude-haiku-4-5', 'claude-haiku-4-5-20251001', 'Claude Haiku 4.5', 64000, '2025-10-15T00:00:00Z'],
  ['claude-opus-4-1', 'claude-opus-4-1-20250805', 'Claude Opus 4.1', 32000, '2025-08-05T00:00:00Z'],
  ['claude-sonnet-4-0', 'claude-sonnet-4-20250514', 'Claude Sonnet 4', 64000, '2025-05-22T00:00:00Z'],
  ['claude-opus-4-0', 'claude-opus-4-20250514', 'Claude Opus 4', 32000, '2025-05-22T00:00:00Z'],
  ['claude-3-5-haiku-latest', 'claude-3-5-haiku-20241022', 'Claude Haiku 3.5', 8192, '2024-10-22T00:00:00Z'],
  ['claude-3-haiku-latest', 'claude-3-haiku-20240307', 'Claude Haiku 3', 4096, '2024-03-07T00:00:00Z'],
];

export const MODELS = MODEL_TABLE.map(([alias, id, display, maxOut, created]) => ({ alias, id, display, maxOut, created }));

// The model's entry for an alias or a dated id, or null.
export function modelInfo(model) {
  if (typeof model !== 'string') return null;
  return MODELS.find(m => m.alias === model || m.id === model) || null;
}

// Deterministic token count: ceil(JSON.stringify({system?, messages, tools?}).length / 4), UTF-16 units,
// keys in that order, absent keys left out. count_tokens returns it; messages reports it as the prompt total
// (input_tokens + cache_read_input_tokens + cache_creation_input_tokens).
export function inputTokens(req) {
  const o = {};
  if (req.system !== undefined) o.system = req.system;
  o.messages = req.messages;
  if (req.tools !== undefined) o.tools = req.tools;
  return Math.max(1, Math.ceil(JSON.stringify(o).length / 4));
}

// Output tokens of a list of response content blocks: ceil(chars / 4) of text, thinking and tool input JSON.
export function outputTokens(content) {
  let n = 0;
  for (const b of content) {
    if (b.type === 'text') n += b.text.length;
    else if (b.type === 'thinking') n += b.thinking.length;
    else if (b.type === 'redacted_thinking') n += b.data.length;
    else if (b.type === 'tool_use') n += JSON.stringify(b.input).length;
  }
  return Math.max(1, Math.ceil(n / 4));
}

const isObj = v => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = v => typeof v === 'number' && Number.isInteger(v);

function checkKeys(obj, allowed, path) {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw invalid(`${path ? path + '.' : ''}${k}: Extra inputs are not permitted`);
}

function needObj(v, path) {
  if (!isObj(v)) throw invalid(`${path}: Input should be a valid dictionary or object to extract fields from`);
}

function needStr(v, path) {
  if (typeof v !== 'string') throw invalid(`${path}: Input should be a valid string`);
}

function needBool(v, path) {
  if (typeof v !== 'boolean') throw invalid(`${path}: Input should be a valid boolean`);
}

function needList(v, path) {
  if (!Array.isArray(v)) throw invalid(`${path}: Input should be a valid list`);
}

function checkCacheControl(cc, path) {
  if (cc === null) return;
  needObj(cc, path);
  checkKeys(cc, ['type', 'ttl'], path);
  if (cc.type !== 'ephemeral') throw invalid(`${path}.type: Input should be 'ephemeral'`);
  if (cc.ttl !== undefined && cc.ttl !== '5m' && cc.ttl !== '1h') throw invalid(`${path}.ttl: Input should be '5m' or '1h'`);
}

function checkTextBlock(b, path) {
  checkKeys(b, ['type', 'text', 'cache_control', 'citations'], `${path}.text`);
  needStr(b.text, `${path}.text.text`);
  if (b.text === '') throw invalid('messages: text content blocks must be non-empty');
  if (b.cache_control !== undefined) checkCacheControl(b.cache_control, `${path}.text.cache_control`);
}

function checkImageBlock(b, path) {
  checkKeys(b, ['type', 'source', 'cache_control'], `${path}.image`);
  needObj(b.source, `${path}.image.source`);
  const s = b.source;
  if (s.type === 'base64') {
    checkKeys(s, ['type', 'media_type', 'data'], `${path}.image.source.base64`);
    if (!['image/jpeg', 'image/png', 'image/gif', 'image/webp'].includes(s.media_type))
      throw invalid(`${path}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
    needStr(s.data, `${path}.image.source.base64.data`);
    if (!s.data || !/^[A-Za-z0-9+/]+={0,2}$/.test(s.data)) throw invalid(`${path}.image.source.base64.data: The image data is not valid base64`);
  } else if (s.type === 'url') {
    checkKeys(s, ['type', 'url'], `${path}.image.source.url`);
    needStr(s.url, `${path}.image.source.url.url`);
  } else if (s.type === 'file') {
    checkKeys(s, ['type', 'file_id'], `${path}.image.source.file`);
  } else {
    throw invalid(`${path}.image.source: Input tag '${s.type}' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'`);
  }
  if (b.cache_control !== undefined) checkCacheControl(b.cache_control, `${path}.image.cache_control`);
}

function checkDocumentBlock(b, path) {
  checkKeys(b, ['type', 'source', 'title', 'context', 'citations', 'cache_control'], `${path}.document`);
  needObj(b.source, `${path}.document.source`);
  if (b.cache_control !== undefined) checkCacheControl(b.cache_control, `${path}.document.cache_control`);
}

const USER_BLOCKS = ['text', 'image', 'document', 'tool_result', 'search_result'];
const ASSISTANT_BLOCKS = ['text', 'thinking', 'redacted_thinking', 'tool_use', 'server_tool_use', 'web_search_tool_result'];
const ALL_BLOCKS = ['text', 'image', 'document', 'search_result', 'thinking', 'redacted_thinking', 'tool_use', 'tool_result', 'server_tool_use', 'web_search_tool_result'];
const tagList = l => l.map(t => `'${t}'`).join(', ');

function checkBlock(b, path, role, ctx) {
  needObj(b, path);
  if (typeof b.type !== 'string') throw invalid(`${path}: Unable to extract tag using discriminator 'type'`);
  if (!ALL_BLOCKS.includes(b.type)) throw invalid(`${path}: Input tag '${b.type}' found using 'type' does not match any of the expected tags: ${tagList(ALL_BLOCKS)}`);
  const allowedHere = role === 'user' ? USER_BLOCKS : ASSISTANT_BLOCKS;
  if (!allowedHere.includes(b.type)) throw invalid(`${path}.type: \`${b.type}\` blocks are not allowed in \`${role}\` messages`);
  switch (b.type) {
    case 'text': checkTextBlock(b, path); break;
    case 'image': checkImageBlock(b, path); break;
    case 'document': checkDocumentBlock(b, path); break;
    case 'search_result': break;
    case 'thinking': {
      checkKeys(b, ['type', 'thinking', 'signature'], `${path}.thinking`);
      needStr(b.thinking, `${path}.thinking.thinking`);
      if (b.signature === undefined) throw invalid(`${path}.thinking.signature: Field required`);
      needStr(b.signature, `${path}.thinking.signature`);
      if (ctx.checkSignatures && !ctx.signatures.has(b.signature)) throw invalid(`${path}: Invalid \`signature\` in \`thinking\` block`);
      break;
    }
    case 'redacted_thinking': {
      checkKeys(b, ['type', 'data'], `${path}.redacted_thinking`);
      needStr(b.data, `${path}.redacted_thinking.data`);
      if (ctx.checkSignatures && !ctx.signatures.has(b.data)) throw invalid(`${path}: Invalid \`data\` in \`redacted_thinking\` block`);
      break;
    }
    case 'tool_use': {
      checkKeys(b, ['type', 'id', 'name', 'input', 'cache_control', 'caller'], `${path}.tool_use`);
      if (b.id === undefined) throw invalid(`${path}.tool_use.id: Field required`);
      needStr(b.id, `${path}.tool_use.id`);
      if (!TOOL_USE_ID_RE.test(b.id)) throw invalid(`${path}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
      if (b.name === undefined) throw invalid(`${path}.tool_use.name: Field required`);
      needStr(b.name, `${path}.tool_use.name`);
      if (!/^[a-zA-Z0-9_-]{1,200}$/.test(b.name)) throw invalid(`${path}.tool_use.name: String should match pattern '^[a-zA-Z0-9_-]{1,200}$'`);
      if (b.input === undefined) throw invalid(`${path}.tool_use.input: Field required`);
      needObj(b.input, `${path}.tool_use.input`);
      if (b.cache_control !== undefined) checkCacheControl(b.cache_control, `${path}.tool_use.cache_control`);
      break;
    }
    case 'tool_result': {
      checkKeys(b, ['type', 'tool_use_id', 'content', 'is_error', 'cache_control'], `${path}.tool_result`);
      if (b.tool_use_id === undefined) throw invalid(`${path}.tool_result.tool_use_id: Field required`);
      needStr(b.tool_use_id, `${path}.tool_result.tool_use_id`);
      if (!TOOL_USE_ID_RE.test(b.tool_use_id)) throw invalid(`${path}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
      if (b.is_error !== undefined) needBool(b.is_error, `${path}.tool_result.is_error`);
      if (b.content !== undefined && typeof b.content !== 'string') {
        needList(b.content, `${path}.tool_result.content`);
        b.content.forEach((c, k) => {
          const p = `${path}.tool_result.content.${k}`;
          needObj(c, p);
          if (c.type === 'text') checkTextBlock(c, p);
          else if (c.type === 'image') checkImageBlock(c, p);
          else if (c.type === 'document') checkDocumentBlock(c, p);
          else if (c.type === 'search_result' || c.type === 'tool_reference') {
            /* accepted as is */
          } else throw invalid(`${p}: Input tag '${c.type}' found using 'type' does not match any of the expected tags: 'text', 'image', 'document', 'search_result', 'tool_reference'`);
        });
      }
      if (b.cache_control !== undefined) checkCacheControl(b.cache_control, `${path}.tool_result.cache_control`);
      break;
    }
    default:
      break; // server tool blocks: accepted as is
  }
}

const THINKING_MSG =
  'When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking';

function checkMessages(messages, ctx, thinkingOn) {
  if (messages === undefined) throw invalid('messages: Field required');
  needList(messages, 'messages');
  if (messages.length === 0) throw invalid('messages: at least one message is required');
  const seenToolUseIds = new Set();
  // Under the per-turn-control beta a message may have role "system" (text only, optional output_config): an
  // instruction in the middle of the conversation, outside the user/assistant alternation. Claude Code sends one
  // after the prompt (its environment); without the beta the role is refused, and Claude Code retries without it.
  const perTurn = !!(ctx && ctx.betas && ctx.betas.has('per-turn-control-2026-07-01'));
  const sysAt = new Set();
  messages.forEach((m, i) => {
    const p = `messages.${i}`;
    needObj(m, p);
    if (m.role === 'system' && perTurn) {
      checkKeys(m, ['role', 'content', 'output_config'], p);
      if (m.content === undefined) throw invalid(`${p}.content: Field required`);
      if (typeof m.content === 'string') {
        if (m.content === '') throw invalid(`${p}: a system message must have non-empty content`);
      } else {
        needList(m.content, `${p}.content`);
        if (m.content.length === 0) throw invalid(`${p}: a system message must have non-empty content`);
        m.content.forEach((b, j) => {
          needObj(b, `${p}.content.${j}`);
          if (b.type !== 'text') throw invalid(`${p}.content.${j}.type: Input should be 'text'`);
          checkKeys(b, ['type', 'text', 'cache_control'], `${p}.content.${j}`);
          needStr(b.text, `${p}.content.${j}.text`);
        });
      }
      if (m.output_config !== undefined) needObj(m.output_config, `${p}.output_config`);
      sysAt.add(i);
      return;
    }
    checkKeys(m, ['role', 'content'], p);
    if (m.role === undefined) throw invalid(`${p}.role: Field required`);
    if (m.role !== 'user' && m.role !== 'assistant') throw invalid(`${p}.role: Input should be 'user' or 'assistant'`);
    if (m.content === undefined) throw invalid(`${p}.content: Field required`);
    const last = i === messages.length - 1;
    if (typeof m.content === 'string') {
      if (m.content === '' && !(last && m.role === 'assistant'))
        throw invalid(`${p}: all messages must have non-empty content except for the optional final assistant message`);
    } else {
      needList(m.content, `${p}.content`);
      if (m.content.length === 0 && !(last && m.role === 'assistant'))
        throw invalid(`${p}: all messages must have non-empty content except for the optional final assistant message`);
      m.content.forEach((b, j) => checkBlock(b, `${p}.content.${j}`, m.role, ctx));
      m.content.forEach((b, j) => {
        if (b.type !== 'tool_use') return;
        if (seenToolUseIds.has(b.id)) throw invalid(`${p}.content.${j}: \`tool_use\` ids must be unique`);
        seenToolUseIds.add(b.id);
      });
    }
  });
  // the conversation proper: user and assistant turns, system messages left out (original indexes kept)
  const conv = messages.map((m, i) => ({ m, i })).filter(x => !sysAt.has(x.i));
  if (conv.length === 0) throw invalid('messages: at least one message is required');
  conv.forEach(({ m }, k) => {
    if (k === 0 && m.role !== 'user') throw invalid('messages: first message must use the "user" role');
    if (k > 0 && conv[k - 1].m.role === m.role)
      throw invalid(`messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`);
  });

  // tool_use / tool_result pairing
  const blocks = m => (typeof m.content === 'string' ? [] : m.content);
  conv.forEach(({ m, i }, k) => {
    if (m.role === 'assistant') {
      const ids = blocks(m).filter(b => b.type === 'tool_use').map(b => b.id);
      if (ids.length === 0) return;
      const next = conv[k + 1] && conv[k + 1].m;
      // The results must come first in the next user turn: only a leading run of tool_result blocks counts.
      const answered = new Set();
      if (next) for (const b of blocks(next)) {
        if (b.type !== 'tool_result') break;
        answered.add(b.tool_use_id);
      }
      const missing = ids.filter(id => !answered.has(id));
      if (missing.length)
        throw invalid(`messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
    } else {
      const prev = conv[k - 1] && conv[k - 1].m;
      const ids = new Set(prev ? blocks(prev).filter(b => b.type === 'tool_use').map(b => b.id) : []);
      const seen = new Set();
      blocks(m).forEach((b, j) => {
        if (b.type !== 'tool_result') return;
        if (!ids.has(b.tool_use_id) || seen.has(b.tool_use_id))
          throw invalid(`messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
        seen.add(b.tool_use_id);
      });
    }
  });

  // thinking: the last assistant turn, when it holds tool_use, must start with a thinking block. With adaptive
  // thinking the model may not have thought in that turn (Claude Code sends such turns), so the rule holds for
  // thinking of type enabled only.
  let lastA = -1;
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'assistant') { lastA = i; break; }
  if (lastA >= 0) {
    const bl = blocks(messages[lastA]);
    if (thinkingOn && thinkingOn !== 'adaptive' && bl.some(b => b.type === 'tool_use')) {
      const t = bl[0].type;
      if (t !== 'thinking' && t !== 'redacted_thinking') throw invalid(`messages.${lastA}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${t}\`. ${THINKING_MSG}`);
    }
    if (!thinkingOn && lastA === messages.length - 1) {
      const k = bl.findIndex(b => b.type === 'thinking' || b.type === 'redacted_thinking');
      if (k >= 0) throw invalid(`messages.${lastA}.content.${k}: When thinking is disabled, an \`assistant\` message in the final position cannot contain \`thinking\`. To use thinking blocks, enable \`thinking\` in your request.`);
    }
  }
}

function checkSystem(system) {
  if (typeof system === 'string') return;
  needList(system, 'system');
  system.forEach((b, j) => {
    const p = `system.${j}`;
    needObj(b, p);
    if (b.type !== 'text') throw invalid(`${p}.type: Input should be 'text'`);
    checkKeys(b, ['type', 'text', 'cache_control', 'citations'], p);
    needStr(b.text, `${p}.text`);
    if (b.text === '') throw invalid('system: text content blocks must be non-empty');
    if (b.cache_control !== undefined) checkCacheControl(b.cache_control, `${p}.cache_control`);
  });
}

function checkTools(tools) {
  needList(tools, 'tools');
  const names = new Set();
  tools.forEach((t, k) => {
    const p = `tools.${k}`;
    needObj(t, p);
    if (t.type !== undefined && t.type !== null && t.type !== 'custom') {
      // Server and client-defined tools (web_search_20250305, bash_20250124, ...): a versioned type and a name.
      if (typeof t.type !== 'string' || !/_\d{8}$/.test(t.type)) throw invalid(`${p}: Input tag '${t.type}' found using 'type' does not match any of the expected tags`);
      if (typeof t.name === 'string') names.add(t.name);
      return;
    }
    const cp = `${p}.custom`;
    checkKeys(t, ['type', 'name', 'description', 'input_schema', 'cache_control', 'strict', 'defer_loading', 'input_examples', 'eager_input_streaming', 'allowed_callers'], cp);
    if (t.name === undefined) throw invalid(`${cp}.name: Field required`);
    needStr(t.name, `${cp}.name`);
    if (!TOOL_NAME_RE.test(t.name)) throw invalid(`${cp}.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
    if (t.description !== undefined) needStr(t.description, `${cp}.description`);
    if (t.input_schema === undefined) throw invalid(`${cp}.input_schema: Field required`);
    needObj(t.input_schema, `${cp}.input_schema`);
    if (t.input_schema.type !== 'object') throw invalid(`${cp}.input_schema.type: Input should be 'object'`);
    if (t.cache_control !== undefined) checkCacheControl(t.cache_control, `${cp}.cache_control`);
    if (t.strict !== undefined) needBool(t.strict, `${cp}.strict`);
    if (names.has(t.name)) throw invalid('tools: Tool names must be unique.');
    names.add(t.name);
  });
  return names;
}

function checkToolChoice(tc, names) {
  needObj(tc, 'tool_choice');
  const kinds = ['auto', 'any', 'tool', 'none'];
  if (!kinds.includes(tc.type)) throw invalid(`tool_choice: Input tag '${tc.type}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'`);
  const allowed = tc.type === 'tool' ? ['type', 'name', 'disable_parallel_tool_use'] : tc.type === 'none' ? ['type'] : ['type', 'disable_parallel_tool_use'];
  checkKeys(tc, allowed, `tool_choice.${tc.type}`);
  if (tc.disable_parallel_tool_use !== undefined) needBool(tc.disable_parallel_tool_use, `tool_choice.${tc.type}.disable_parallel_tool_use`);
  if (tc.type === 'tool') {
    if (tc.name === undefined) throw invalid('tool_choice.tool.name: Field required');
    if (!names.has(tc.name)) throw invalid(`tool_choice: Tool '${tc.name}' not found in provided tools`);
  }
  if ((tc.type === 'any' || tc.type === 'tool') && names.size === 0) throw invalid('tool_choice: tool_choice may only be specified while providing tools.');
}

// Returns {on, budget} for the thinking param (validated), or {on:false}.
function checkThinking(th, maxTokens) {
  needObj(th, 'thinking');
  if (th.type === 'disabled') {
    checkKeys(th, ['type'], 'thinking.disabled');
    return { on: false };
  }
  if (th.type === 'adaptive') {
    checkKeys(th, ['type', 'display'], 'thinking.adaptive');
    return { on: true, budget: null, display: th.display };
  }
  if (th.type !== 'enabled') throw invalid(`thinking: Input tag '${th.type}' found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'`);
  checkKeys(th, ['type', 'budget_tokens', 'display'], 'thinking.enabled');
  if (th.budget_tokens === undefined) throw invalid('thinking.enabled.budget_tokens: Field required');
  if (!isInt(th.budget_tokens)) throw invalid('thinking.enabled.budget_tokens: Input should be a valid integer');
  if (th.budget_tokens < 1024) throw invalid('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
  if (maxTokens !== undefined && th.budget_tokens >= maxTokens)
    throw invalid('`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size');
  return { on: true, budget: th.budget_tokens, display: th.display };
}

function checkMetadata(md) {
  needObj(md, 'metadata');
  checkKeys(md, ['user_id'], 'metadata');
  if (md.user_id !== undefined && md.user_id !== null) {
    needStr(md.user_id, 'metadata.user_id');
    if (md.user_id.length > 256) throw invalid('metadata.user_id: String should have at most 256 characters');
  }
}

function checkContextManagement(cm) {
  needObj(cm, 'context_management');
  checkKeys(cm, ['edits'], 'context_management');
  if (cm.edits !== undefined) {
    needList(cm.edits, 'context_management.edits');
    cm.edits.forEach((e, k) => {
      needObj(e, `context_management.edits.${k}`);
      if (typeof e.type !== 'string') throw invalid(`context_management.edits.${k}: Unable to extract tag using discriminator 'type'`);
    });
  }
}

export const CREATE_FIELDS = [
  'model', 'messages', 'max_tokens', 'system', 'metadata', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k',
  'tools', 'tool_choice', 'thinking', 'service_tier', 'container', 'context_management', 'mcp_servers', 'output_config',
  'cache_control', 'inference_geo', 'speed',
];
export const COUNT_FIELDS = ['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'context_management', 'mcp_servers', 'output_config', 'cache_control', 'speed'];

function checkModel(req) {
  if (req.model === undefined) throw invalid('model: Field required');
  needStr(req.model, 'model');
  const info = modelInfo(req.model);
  if (!info) throw new ApiError(404, 'not_found_error', `model: ${req.model}`);
  return info;
}

// ctx: {signatures: Set|Map of issued signatures, checkSignatures: bool}. Returns {model, thinking, toolNames}.
export function validateCreateRequest(req, ctx) {
  if (!isObj(req)) throw invalid('Input should be a valid dictionary or object to extract fields from');
  checkKeys(req, CREATE_FIELDS, '');
  const info = checkModel(req);
  if (req.max_tokens === undefined) throw invalid('max_tokens: Field required');
  if (!isInt(req.max_tokens)) throw invalid('max_tokens: Input should be a valid integer');
  if (req.max_tokens < 1) throw invalid('max_tokens: Input should be greater than or equal to 1');
  if (req.max_tokens > info.maxOut)
    throw invalid(`max_tokens: ${req.max_tokens} > ${info.maxOut}, which is the maximum allowed number of output tokens for ${info.id}`);
  return validateCommon(req, ctx, info, req.max_tokens);
}

export function validateCountTokensRequest(req, ctx) {
  if (!isObj(req)) throw invalid('Input should be a valid dictionary or object to extract fields from');
  checkKeys(req, COUNT_FIELDS, '');
  const info = checkModel(req);
  return validateCommon(req, { ...ctx, checkSignatures: false }, info, undefined);
}

function validateCommon(req, ctx, info, maxTokens) {
  if (req.stream !== undefined) needBool(req.stream, 'stream');
  if (req.temperature !== undefined) {
    if (typeof req.temperature !== 'number') throw invalid('temperature: Input should be a valid number');
    if (req.temperature < 0) throw invalid('temperature: Input should be greater than or equal to 0');
    if (req.temperature > 1) throw invalid('temperature: Input should be less than or equal to 1');
  }
  if (req.top_p !== undefined && (typeof req.top_p !== 'number' || req.top_p < 0 || req.top_p > 1)) throw invalid('top_p: Input should be a number between 0 and 1');
  if (req.top_k !== undefined && (!isInt(req.top_k) || req.top_k < 0)) throw invalid('top_k: Input should be a valid non-negative integer');
  if (req.stop_sequences !== undefined) {
    needList(req.stop_sequences, 'stop_sequences');
    req.stop_sequences.forEach((s, k) => needStr(s, `stop_sequences.${k}`));
  }
  if (req.metadata !== undefined) checkMetadata(req.metadata);
  if (req.service_tier !== undefined && !['auto', 'standard_only'].includes(req.service_tier)) throw invalid("service_tier: Input should be 'auto' or 'standard_only'");
  if (req.context_management !== undefined) checkContextManagement(req.context_management);
  if (req.cache_control !== undefined) checkCacheControl(req.cache_control, 'cache_control');
  if (req.system !== undefined) checkSystem(req.system);
  const toolNames = req.tools !== undefined ? checkTools(req.tools) : new Set();
  if (req.tool_choice !== undefined) checkToolChoice(req.tool_choice, toolNames);
  const thinking = req.thinking !== undefined ? checkThinking(req.thinking, maxTokens) : { on: false };
  if (thinking.on && req.temperature !== undefined && req.temperature !== 1)
    throw invalid('`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility');
  if (thinking.on && req.top_k !== undefined) throw invalid('`top_k` must be unset when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility');
  checkMessages(req.messages, ctx, thinking.on && (thinking.budget === null ? 'adaptive' : true));
  return { model: info, thinking, toolNames };
}
