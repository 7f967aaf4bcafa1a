// Request validation for tests/fakes/fake_openai.mjs as pure functions: the Chat Completions rules of the
// real OpenAI API (error shape, type/param/code, wording where the API documents or shows it), stricter in
// the places listed in tests/fakes/README.md. Node built-ins only.

export class ApiError extends Error {
  // body: {error:{message, type, param, code}}
  constructor(status, message, { type, param = null, code = null, headers = {} } = {}) {
    super(message);
    this.status = status;
    this.type = type || (status >= 500 ? 'server_error' : 'invalid_request_error');
    this.param = param;
    this.errCode = code;
    this.headers = headers;
  }
  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.errCode } };
  }
}

export const bad = (message, param = null, code = null) => new ApiError(400, message, { param, code });

// ---------------------------------------------------------------------------------------------------------
// Models

// [id, max completion tokens, reasoning]
export const MODELS = [
  ['gpt-4o', 16384, false],
  ['gpt-4o-mini', 16384, false],
  ['gpt-4.1', 32768, false],
  ['gpt-4.1-mini', 32768, false],
  ['o1', 100000, true],
  ['o3', 100000, true],
  ['o3-mini', 100000, true],
  ['o4-mini', 100000, true],
  ['gpt-5', 128000, true],
  ['gpt-5-mini', 128000, true],
];

export const MODEL_NAME_RE = /^(gpt-|o\d|chatgpt-)[A-Za-z0-9._-]*$/;

// Per-model rules. A model not in the list but matching MODEL_NAME_RE gets the rules of its family:
// o<digit>... and gpt-5... (not *-chat*) reason; everything else does not.
export function modelInfo(id, { oSeries = false } = {}) {
  const known = MODELS.find(m => m[0] === id);
  let reasoning = known ? known[2] : /^o\d/.test(id) || (/^gpt-5/.test(id) && !/-chat/.test(id));
  if (oSeries) reasoning = true;
  const maxCompletion = known ? known[1] : reasoning ? 100000 : 16384;
  return { id, reasoning, maxCompletion };
}

// ---------------------------------------------------------------------------------------------------------
// Token counts (deterministic)

export const textTokens = s => Math.ceil(String(s).length / 4);

// prompt_tokens = ceil(JSON.stringify({messages, tools?}).length / 4)
export function promptTokens(req) {
  const o = { messages: req.messages };
  if (req.tools !== undefined && req.tools !== null) o.tools = req.tools;
  return textTokens(JSON.stringify(o));
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

const TOP_LEVEL = new Set([
  'model', 'messages', 'audio', 'frequency_penalty', 'function_call', 'functions', 'logit_bias', 'logprobs',
  'max_completion_tokens', 'max_tokens', 'metadata', 'modalities', 'n', 'parallel_tool_calls', 'prediction',
  'presence_penalty', 'prompt_cache_key', 'prompt_cache_retention', 'reasoning_effort', 'response_format',
  'safety_identifier', 'seed', 'service_tier', 'stop', 'store', 'stream', 'stream_options', 'temperature',
  'tool_choice', 'tools', 'top_logprobs', 'top_p', 'user', 'verbosity', 'web_search_options',
]);

// Accepted by the real API but not by this fake: a gateway has no business sending them.
const REFUSED_BY_FAKE = new Set(['functions', 'function_call', 'audio', 'modalities', 'prediction', 'web_search_options']);

const MESSAGE_FIELDS = {
  system: ['role', 'content', 'name'],
  developer: ['role', 'content', 'name'],
  user: ['role', 'content', 'name'],
  assistant: ['role', 'content', 'name', 'tool_calls', 'refusal', 'audio', 'function_call'],
  tool: ['role', 'content', 'tool_call_id'],
};
const ROLES_MSG = "Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.";
const PART_TYPES_MSG = "Supported values are: 'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'.";
const FUNCTION_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;
export { FUNCTION_NAME_RE };
const IMAGE_DATA_RE = /^data:(image\/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/]+={0,2})$/;
const REASONING_EFFORTS = ['minimal', 'low', 'medium', 'high'];

const typeName = v => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v);
const article = t => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);
const isObj = v => v !== null && typeof v === 'object' && !Array.isArray(v);

function wrongType(param, want, v) {
  const got = typeName(v) === 'integer' ? 'number' : typeName(v);
  return bad(`Invalid type for '${param}': expected ${want}, but got ${article(got)} instead.`, param, 'invalid_type');
}

function needString(v, param) {
  if (typeof v !== 'string') throw wrongType(param, 'a string', v);
}
function needBool(v, param) {
  if (typeof v !== 'boolean') throw wrongType(param, 'a boolean', v);
}
function needNumber(v, param, min, max) {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw wrongType(param, 'a decimal', v);
  if (min !== undefined && v < min) throw bad(`Invalid '${param}': decimal below minimum value. Expected a value >= ${min}, but got ${v} instead.`, param, 'decimal_below_min_value');
  if (max !== undefined && v > max) throw bad(`Invalid '${param}': decimal above maximum value. Expected a value <= ${max}, but got ${v} instead.`, param, 'decimal_above_max_value');
}
function needInt(v, param, min, max) {
  if (!Number.isInteger(v)) throw wrongType(param, 'an integer', v);
  if (min !== undefined && v < min) throw bad(`Invalid '${param}': integer below minimum value. Expected a value >= ${min}, but got ${v} instead.`, param, 'integer_below_min_value');
  if (max !== undefined && v > max) throw bad(`Invalid '${param}': integer above maximum value. Expected a value <= ${max}, but got ${v} instead.`, param, 'integer_above_max_value');
}
function needObject(v, param) {
  if (!isObj(v)) throw wrongType(param, 'an object', v);
}
function needArray(v, param, { nonEmpty = true } = {}) {
  if (!Array.isArray(v)) throw wrongType(param, 'an array', v);
  if (nonEmpty && v.length === 0)
    throw bad(`Invalid '${param}': empty array. Expected an array with minimum length 1, but got an empty array instead.`, param, 'empty_array');
}
function invalidValue(param, v, supported) {
  const list = supported.map(s => `'${s}'`);
  const txt = list.length <= 2 ? list.join(' and ') : `${list.slice(0, -1).join(', ')}, and ${list[list.length - 1]}`;
  return bad(`Invalid value: '${v}'. Supported values are: ${txt}.`, param, 'invalid_value');
}
function onlyFields(obj, allowed, where) {
  for (const k of Object.keys(obj))
    if (!allowed.includes(k)) throw bad(`Additional properties are not allowed ('${k}' was unexpected) - '${where}'`, where, null);
}

// ---------------------------------------------------------------------------------------------------------
// Content

function checkTextPart(p, where) {
  onlyFields(p, ['type', 'text'], where);
  needString(p.text, `${where}.text`);
}

function checkImagePart(p, where) {
  onlyFields(p, ['type', 'image_url'], where);
  needObject(p.image_url, `${where}.image_url`);
  onlyFields(p.image_url, ['url', 'detail'], `${where}.image_url`);
  const url = p.image_url.url;
  needString(url, `${where}.image_url.url`);
  if (p.image_url.detail !== undefined && !['auto', 'low', 'high'].includes(p.image_url.detail))
    throw invalidValue(`${where}.image_url.detail`, p.image_url.detail, ['auto', 'low', 'high']);
  if (/^https?:\/\/[^\s]+$/.test(url)) return;
  if (!url.startsWith('data:')) throw bad(`Invalid '${where}.image_url.url'. Expected a valid URL, but got a value with an invalid format.`, `${where}.image_url.url`, 'invalid_value');
  const m = IMAGE_DATA_RE.exec(url);
  if (!m) {
    const mime = (/^data:([^;,]*)/.exec(url) || [])[1] || '';
    throw bad(
      `Invalid '${where}.image_url.url'. Expected a base64-encoded data URL with an image MIME type (image/png, image/jpeg, image/gif or image/webp), but got ${mime.startsWith('image/') ? 'a value that is not valid base64' : `unsupported MIME type '${mime}'`}.`,
      `${where}.image_url.url`,
      'invalid_value',
    );
  }
  if (m[2].length % 4 !== 0) throw bad(`Invalid '${where}.image_url.url'. The base64 data is not correctly padded.`, `${where}.image_url.url`, 'invalid_value');
}

function checkContent(msg, i) {
  const where = `messages[${i}].content`;
  const c = msg.content;
  const role = msg.role;
  if (c === undefined || c === null) {
    if (role === 'assistant' && msg.tool_calls !== undefined) return;
    if (role === 'assistant' && c === null && msg.refusal) return;
    throw bad(`Invalid value for 'content': expected a string, got null.`, where, null);
  }
  if (typeof c === 'string') {
    // Stricter: an empty string is a translation bug (the real API tolerates it for user and tool messages).
    if (c === '' && !(role === 'assistant' && msg.tool_calls !== undefined)) throw bad(`Invalid '${where}': empty string. Expected a non-empty string (fake-openai refuses empty content).`, where, 'empty_string');
    return;
  }
  needArray(c, where);
  c.forEach((p, j) => {
    const pw = `${where}[${j}]`;
    needObject(p, pw);
    if (p.type === undefined) throw bad(`Missing required parameter: '${pw}.type'.`, `${pw}.type`, 'missing_required_parameter');
    needString(p.type, `${pw}.type`);
    const known = ['text', 'image_url', 'input_audio', 'refusal', 'audio', 'file'];
    if (!known.includes(p.type)) throw invalidValue(`${pw}.type`, p.type, known);
    if (p.type === 'text') return checkTextPart(p, pw);
    if (p.type === 'image_url') {
      if (role !== 'user')
        throw bad(`Image URLs are only allowed for messages with role 'user', but this message with role '${role}' contains an image URL.`, `messages[${i}]`, 'invalid_value');
      return checkImagePart(p, pw);
    }
    if (p.type === 'refusal') {
      if (role !== 'assistant') throw invalidValue(`${pw}.type`, p.type, ['text']);
      onlyFields(p, ['type', 'refusal'], pw);
      return needString(p.refusal, `${pw}.refusal`);
    }
    // input_audio, audio, file: real API parts the fake does not take
    throw bad(`Invalid '${pw}.type': fake-openai does not accept '${p.type}' content parts (only text, image_url and refusal).`, `${pw}.type`, 'invalid_value');
  });
  if (role !== 'user' && role !== 'assistant' && c.some(p => p.type !== 'text')) throw invalidValue(`${where}[0].type`, c.find(p => p.type !== 'text').type, ['text']);
}

function checkToolCalls(msg, i) {
  const where = `messages[${i}].tool_calls`;
  needArray(msg.tool_calls, where);
  const ids = new Set();
  msg.tool_calls.forEach((tc, j) => {
    const w = `${where}[${j}]`;
    needObject(tc, w);
    onlyFields(tc, ['id', 'type', 'function'], w);
    for (const k of ['id', 'type', 'function'])
      if (tc[k] === undefined) throw bad(`Missing required parameter: '${w}.${k}'.`, `${w}.${k}`, 'missing_required_parameter');
    needString(tc.id, `${w}.id`);
    if (tc.id.length === 0) throw bad(`Invalid '${w}.id': empty string. Expected a string with minimum length 1, but got an empty string instead.`, `${w}.id`, 'empty_string');
    if (tc.id.length > 40) throw bad(`Invalid '${w}.id': string too long. Expected a string with maximum length 40, but got a string with length ${tc.id.length} instead.`, `${w}.id`, 'string_above_max_length');
    if (ids.has(tc.id)) throw bad(`Invalid '${w}.id': duplicate tool call id '${tc.id}' in one message (fake-openai refuses duplicates).`, `${w}.id`, 'invalid_value');
    ids.add(tc.id);
    if (tc.type !== 'function') throw invalidValue(`${w}.type`, tc.type, ['function']);
    needObject(tc.function, `${w}.function`);
    onlyFields(tc.function, ['name', 'arguments'], `${w}.function`);
    needString(tc.function.name, `${w}.function.name`);
    needString(tc.function.arguments, `${w}.function.arguments`);
    // Stricter: arguments must be the JSON text of an object, as the model produces it.
    let parsed;
    try {
      parsed = JSON.parse(tc.function.arguments);
    } catch {
      parsed = undefined;
    }
    if (!isObj(parsed)) throw bad(`Invalid '${w}.function.arguments': expected the JSON text of an object (fake-openai checks this), got ${JSON.stringify(tc.function.arguments.slice(0, 40))}.`, `${w}.function.arguments`, 'invalid_value');
  });
}

// ---------------------------------------------------------------------------------------------------------
// Tools

const SCHEMA_TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

function checkSchema(s, fname, path) {
  const fail = why => bad(`Invalid schema for function '${fname}': ${why}`, 'tools', 'invalid_function_parameters');
  if (!isObj(s)) throw fail(`${path} must be an object, got ${typeName(s)}.`);
  if (s.type !== undefined) {
    const ts = Array.isArray(s.type) ? s.type : [s.type];
    for (const t of ts) if (!SCHEMA_TYPES.includes(t)) throw fail(`${path}: '${t}' is not valid under any of the given schemas.`);
  }
  if (s.properties !== undefined) {
    if (!isObj(s.properties)) throw fail(`${path}.properties must be an object.`);
    for (const [k, v] of Object.entries(s.properties)) checkSchema(v, fname, `${path}.properties.${k}`);
  }
  if (s.required !== undefined) {
    if (!Array.isArray(s.required) || s.required.some(r => typeof r !== 'string')) throw fail(`${path}.required must be an array of strings.`);
    for (const r of s.required)
      if (!s.properties || !Object.prototype.hasOwnProperty.call(s.properties, r)) throw fail(`In context=(${path}), 'required' names '${r}', which is not a key of 'properties'.`);
  }
  if (s.items !== undefined) checkSchema(s.items, fname, `${path}.items`);
  for (const k of ['anyOf', 'oneOf', 'allOf'])
    if (s[k] !== undefined) {
      if (!Array.isArray(s[k])) throw fail(`${path}.${k} must be an array.`);
      s[k].forEach((x, j) => checkSchema(x, fname, `${path}.${k}[${j}]`));
    }
}

function checkTools(tools) {
  needArray(tools, 'tools');
  const names = new Set();
  tools.forEach((t, i) => {
    const w = `tools[${i}]`;
    needObject(t, w);
    if (t.type === undefined) throw bad(`Missing required parameter: '${w}.type'.`, `${w}.type`, 'missing_required_parameter');
    if (t.type !== 'function') throw invalidValue(`${w}.type`, t.type, ['function', 'custom']);
    onlyFields(t, ['type', 'function'], w);
    if (t.function === undefined) throw bad(`Missing required parameter: '${w}.function'.`, `${w}.function`, 'missing_required_parameter');
    needObject(t.function, `${w}.function`);
    onlyFields(t.function, ['name', 'description', 'parameters', 'strict'], `${w}.function`);
    const f = t.function;
    if (f.name === undefined) throw bad(`Missing required parameter: '${w}.function.name'.`, `${w}.function.name`, 'missing_required_parameter');
    needString(f.name, `${w}.function.name`);
    if (!FUNCTION_NAME_RE.test(f.name))
      throw bad(`Invalid '${w}.function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$' (at most 64 characters).`, `${w}.function.name`, 'invalid_value');
    if (names.has(f.name)) throw bad(`Invalid 'tools': duplicate function name '${f.name}' (fake-openai refuses duplicates).`, `${w}.function.name`, 'invalid_value');
    names.add(f.name);
    if (f.description !== undefined) needString(f.description, `${w}.function.description`);
    if (f.strict !== undefined && f.strict !== null) needBool(f.strict, `${w}.function.strict`);
    if (f.parameters !== undefined) {
      if (!isObj(f.parameters)) throw wrongType(`${w}.function.parameters`, 'an object', f.parameters);
      if (f.parameters.type !== 'object')
        throw bad(`Invalid schema for function '${f.name}': schema must be a JSON Schema of 'type: "object"', got 'type: "${f.parameters.type}"'.`, `${w}.function.parameters`, 'invalid_function_parameters');
      checkSchema(f.parameters, f.name, 'parameters');
      if (f.strict === true && f.parameters.additionalProperties !== false)
        throw bad(`Invalid schema for function '${f.name}': In context=(), 'additionalProperties' is required to be supplied and to be false.`, `${w}.function.parameters`, 'invalid_function_parameters');
    }
  });
  return names;
}

function checkToolChoice(tc, names) {
  if (typeof tc === 'string') {
    if (!['none', 'auto', 'required'].includes(tc)) throw invalidValue('tool_choice', tc, ['none', 'auto', 'required']);
    return;
  }
  needObject(tc, 'tool_choice');
  if (tc.type !== 'function') throw invalidValue('tool_choice.type', tc.type, ['function', 'allowed_tools', 'custom']);
  onlyFields(tc, ['type', 'function'], 'tool_choice');
  needObject(tc.function, 'tool_choice.function');
  onlyFields(tc.function, ['name'], 'tool_choice.function');
  needString(tc.function.name, 'tool_choice.function.name');
  if (!names.has(tc.function.name))
    throw bad(`Invalid value for 'tool_choice': function '${tc.function.name}' is not among the declared tools.`, 'tool_choice', 'invalid_value');
}

// ---------------------------------------------------------------------------------------------------------
// The request

// Returns {info, functionNames, stream, includeUsage, includeObfuscation}. Throws ApiError.
// opts: {oSeries, issuedToolIds (Set|null: when set, every assistant tool call id must be one the fake issued)}
export function validateChatRequest(body, opts = {}) {
  if (!isObj(body)) throw bad(`Invalid type for request body: expected an object, but got ${article(typeName(body))} instead.`, null, 'invalid_type');
  for (const k of Object.keys(body)) {
    if (!TOP_LEVEL.has(k)) throw bad(`Unrecognized request argument supplied: ${k}`, null, null);
  }
  // The real API treats null like an absent optional field.
  const b = {};
  for (const [k, v] of Object.entries(body)) if (v !== null) b[k] = v;
  for (const k of Object.keys(b))
    if (REFUSED_BY_FAKE.has(k)) throw bad(`Unrecognized request argument supplied: ${k} (fake-openai refuses it: a gateway has no reason to send it)`, k, null);

  if (b.model === undefined) throw bad('you must provide a model parameter', null, null);
  needString(b.model, 'model');
  if (b.messages === undefined) throw bad("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
  needArray(b.messages, 'messages');
  const info = modelInfo(b.model, { oSeries: opts.oSeries });

  // Messages: roles, fields, content, pairing.
  let pending = null; // {index, ids: Map id -> answered}
  const closePending = i => {
    if (!pending) return;
    const missing = [...pending.ids.entries()].filter(([, done]) => !done).map(([id]) => id);
    if (missing.length)
      throw bad(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${missing.join(', ')}`,
        `messages.[${i}].role`,
        null,
      );
    pending = null;
  };
  b.messages.forEach((m, i) => {
    const w = `messages[${i}]`;
    needObject(m, w);
    if (m.role === undefined) throw bad(`Missing required parameter: '${w}.role'.`, `${w}.role`, 'missing_required_parameter');
    needString(m.role, `${w}.role`);
    if (!MESSAGE_FIELDS[m.role]) {
      if (m.role === 'function') throw bad(`Invalid '${w}.role': 'function' messages are deprecated; fake-openai takes only system, developer, user, assistant and tool.`, `${w}.role`, 'invalid_value');
      throw bad(`Invalid value: '${m.role}'. ${ROLES_MSG}`, `${w}.role`, 'invalid_value');
    }
    onlyFields(m, MESSAGE_FIELDS[m.role], w);
    for (const k of ['audio', 'function_call'])
      if (m[k] !== undefined && m[k] !== null) throw bad(`Invalid '${w}.${k}': fake-openai does not accept '${k}' on messages.`, `${w}.${k}`, 'invalid_value');
    if (m.name !== undefined) needString(m.name, `${w}.name`);
    if (m.refusal !== undefined && m.refusal !== null) needString(m.refusal, `${w}.refusal`);

    if (m.role === 'tool') {
      if (m.tool_call_id === undefined) throw bad(`Missing required parameter: '${w}.tool_call_id'.`, `${w}.tool_call_id`, 'missing_required_parameter');
      needString(m.tool_call_id, `${w}.tool_call_id`);
      if (!pending) throw bad("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", `messages.[${i}].role`, null);
      if (!pending.ids.has(m.tool_call_id))
        throw bad(`Invalid parameter: 'tool_call_id' of '${m.tool_call_id}' not found in 'tool_calls' of previous message.`, `messages.[${i}].tool_call_id`, null);
      if (pending.ids.get(m.tool_call_id))
        throw bad(`Invalid parameter: 'tool_call_id' of '${m.tool_call_id}' is answered twice (fake-openai refuses a second answer).`, `messages.[${i}].tool_call_id`, null);
      pending.ids.set(m.tool_call_id, true);
    } else {
      closePending(i);
    }
    if (m.content === undefined && !(m.role === 'assistant' && m.tool_calls !== undefined))
      throw bad(`Missing required parameter: '${w}.content'.`, `${w}.content`, 'missing_required_parameter');
    checkContent(m, i);
    if (m.role === 'assistant' && m.tool_calls !== undefined && m.tool_calls !== null) {
      checkToolCalls(m, i);
      if (opts.issuedToolIds)
        m.tool_calls.forEach((tc, j) => {
          if (!opts.issuedToolIds.has(tc.id))
            throw bad(`Invalid '${w}.tool_calls[${j}].id': '${tc.id}' is not a tool call id fake-openai issued (strict tool ids are on).`, `${w}.tool_calls[${j}].id`, 'invalid_value');
        });
      pending = { index: i, ids: new Map(m.tool_calls.map(tc => [tc.id, false])) };
    }
  });
  // Stricter: the conversation must end in a user or tool message (the real API accepts a trailing
  // assistant message), and calls pending at the end must all be answered.
  if (pending) {
    const missing = [...pending.ids.entries()].filter(([, done]) => !done).map(([id]) => id);
    if (missing.length)
      throw bad(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${missing.join(', ')}`,
        `messages.[${pending.index}].role`,
        null,
      );
  }
  const last = b.messages[b.messages.length - 1];
  if (last.role === 'assistant') throw bad(`Invalid 'messages': the last message has role 'assistant' (fake-openai wants a user or tool message last).`, `messages[${b.messages.length - 1}].role`, 'invalid_value');

  // Tools.
  let functionNames = new Set();
  if (b.tools !== undefined) functionNames = checkTools(b.tools);
  if (b.tool_choice !== undefined) {
    if (b.tools === undefined) throw bad("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", 'tool_choice', null);
    checkToolChoice(b.tool_choice, functionNames);
  }
  if (b.parallel_tool_calls !== undefined) {
    if (b.tools === undefined) throw bad("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.", 'parallel_tool_calls', null);
    needBool(b.parallel_tool_calls, 'parallel_tool_calls');
  }

  // Token limits.
  if (b.max_tokens !== undefined && info.reasoning)
    throw bad("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", 'max_tokens', 'unsupported_parameter');
  if (b.max_tokens !== undefined && b.max_completion_tokens !== undefined)
    throw bad("Invalid request: 'max_tokens' and 'max_completion_tokens' are both set (fake-openai wants one of them).", 'max_tokens', 'invalid_value');
  for (const k of ['max_tokens', 'max_completion_tokens']) {
    if (b[k] === undefined) continue;
    needInt(b[k], k, 1);
    if (b[k] > info.maxCompletion)
      throw bad(`${k} is too large: ${b[k]}. This model supports at most ${info.maxCompletion} completion tokens, whereas you provided ${b[k]}.`, k, 'invalid_value');
  }

  // Reasoning.
  if (b.reasoning_effort !== undefined) {
    if (!info.reasoning) throw bad("Unsupported parameter: 'reasoning_effort' is not supported with this model.", 'reasoning_effort', 'unsupported_parameter');
    needString(b.reasoning_effort, 'reasoning_effort');
    if (!REASONING_EFFORTS.includes(b.reasoning_effort)) throw invalidValue('reasoning_effort', b.reasoning_effort, REASONING_EFFORTS);
  }
  for (const k of ['temperature', 'top_p', 'presence_penalty', 'frequency_penalty']) {
    if (b[k] === undefined) continue;
    if (k === 'temperature') needNumber(b[k], k, 0, 2);
    else if (k === 'top_p') needNumber(b[k], k, 0, 1);
    else needNumber(b[k], k, -2, 2);
    if (info.reasoning && b[k] !== (k === 'temperature' || k === 'top_p' ? 1 : 0))
      throw bad(`Unsupported value: '${k}' does not support ${b[k]} with this model. Only the default (${k === 'temperature' || k === 'top_p' ? 1 : 0}) value is supported.`, k, 'unsupported_value');
  }
  if (b.logprobs !== undefined) {
    needBool(b.logprobs, 'logprobs');
    if (info.reasoning && b.logprobs) throw bad("Unsupported parameter: 'logprobs' is not supported with this model.", 'logprobs', 'unsupported_parameter');
  }
  if (b.top_logprobs !== undefined) {
    needInt(b.top_logprobs, 'top_logprobs', 0, 20);
    if (!b.logprobs) throw bad("Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is specified.", 'top_logprobs', null);
  }

  // Stream.
  if (b.stream !== undefined) needBool(b.stream, 'stream');
  const stream = b.stream === true;
  if (b.stream_options !== undefined) {
    if (!stream) throw bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', null);
    needObject(b.stream_options, 'stream_options');
    onlyFields(b.stream_options, ['include_usage', 'include_obfuscation'], 'stream_options');
    if (b.stream_options.include_usage !== undefined) needBool(b.stream_options.include_usage, 'stream_options.include_usage');
    if (b.stream_options.include_obfuscation !== undefined) needBool(b.stream_options.include_obfuscation, 'stream_options.include_obfuscation');
  }
  const includeUsage = !!(b.stream_options && b.stream_options.include_usage === true);
  const includeObfuscation = !(b.stream_options && b.stream_options.include_obfuscation === false);

  // Others.
  if (b.n !== undefined) {
    needInt(b.n, 'n', 1, 128);
    if (b.n !== 1) throw bad(`Invalid 'n': fake-openai answers one choice only, got ${b.n}.`, 'n', 'invalid_value');
  }
  if (b.stop !== undefined) {
    if (typeof b.stop !== 'string') {
      if (!Array.isArray(b.stop)) throw wrongType('stop', 'a string or an array', b.stop);
      if (b.stop.length > 4) throw bad(`Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length ${b.stop.length} instead.`, 'stop', 'array_above_max_length');
      b.stop.forEach((s, j) => needString(s, `stop[${j}]`));
    }
  }
  if (b.seed !== undefined) needInt(b.seed, 'seed');
  for (const k of ['user', 'safety_identifier', 'prompt_cache_key']) if (b[k] !== undefined) needString(b[k], k);
  if (b.store !== undefined) needBool(b.store, 'store');
  if (b.metadata !== undefined) {
    needObject(b.metadata, 'metadata');
    for (const [k, v] of Object.entries(b.metadata)) needString(v, `metadata.${k}`);
  }
  if (b.logit_bias !== undefined) needObject(b.logit_bias, 'logit_bias');
  if (b.service_tier !== undefined && !['auto', 'default', 'flex', 'scale', 'priority'].includes(b.service_tier))
    throw invalidValue('service_tier', b.service_tier, ['auto', 'default', 'flex', 'scale', 'priority']);
  if (b.verbosity !== undefined && !['low', 'medium', 'high'].includes(b.verbosity)) throw invalidValue('verbosity', b.verbosity, ['low', 'medium', 'high']);
  if (b.prompt_cache_retention !== undefined && !['in-memory', '24h'].includes(b.prompt_cache_retention))
    throw invalidValue('prompt_cache_retention', b.prompt_cache_retention, ['in-memory', '24h']);
  if (b.response_format !== undefined) {
    needObject(b.response_format, 'response_format');
    const t = b.response_format.type;
    if (!['text', 'json_object', 'json_schema'].includes(t)) throw invalidValue('response_format.type', t, ['text', 'json_object', 'json_schema']);
    if (t === 'json_schema') {
      onlyFields(b.response_format, ['type', 'json_schema'], 'response_format');
      needObject(b.response_format.json_schema, 'response_format.json_schema');
      onlyFields(b.response_format.json_schema, ['name', 'description', 'schema', 'strict'], 'response_format.json_schema');
      needString(b.response_format.json_schema.name, 'response_format.json_schema.name');
    } else onlyFields(b.response_format, ['type'], 'response_format');
    if (t === 'json_object' && !b.messages.some(m => JSON.stringify(m.content || '').toLowerCase().includes('json')))
      throw bad("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 'messages', null);
  }
  return { info, functionNames, stream, includeUsage, includeObfuscation };
}
