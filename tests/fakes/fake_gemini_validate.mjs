// Strict request validation for the fake Gemini API (v1beta generateContent / streamGenerateContent /
// countTokens). Pure functions, no I/O: fake_gemini.mjs uses them, tests may import them.
//
// The rules follow the public Gemini API reference (ai.google.dev/api) and the errors real users report;
// where the real API is lenient and a lenient answer would hide a translation bug, this fake is stricter
// on purpose (see tests/fakes/README.md, "Stricter than the real API").

export const STATUS_NAMES = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'NOT_IMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

export class ApiError extends Error {
  constructor(code, message, { details, headers, status } = {}) {
    super(message);
    this.code = code;
    this.status = status || STATUS_NAMES[code] || 'UNKNOWN';
    this.details = details;
    this.headers = headers;
  }
  body() {
    const error = { code: this.code, message: this.message, status: this.status };
    if (this.details && this.details.length) error.details = this.details;
    return { error };
  }
}

// 400 with a google.rpc.BadRequest detail listing the offending field paths.
export function badRequest(message, violations) {
  const fv = (violations || []).map(v => (v.field ? { field: v.field, description: v.description } : { description: v.description }));
  return new ApiError(400, message, {
    details: fv.length ? [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: fv }] : undefined,
  });
}

// Semantic error in the style the real API uses: "* GenerateContentRequest.<path>: <text>".
function semantic(path, text, root = 'GenerateContentRequest') {
  const full = path ? `${root}.${path}` : root;
  return badRequest(`* ${full}: ${text}\n`, [{ field: path, description: text }]);
}

// ---------------------------------------------------------------------------------------------------------
// Models

// Function (declaration/call/response) names: start with a letter or underscore, then letters, digits,
// underscores, dots, colons, dashes; at most 64 characters (v1beta FunctionDeclaration.name).
export const FUNCTION_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/;
export const MODEL_NAME_RE = /^gemini-[A-Za-z0-9][A-Za-z0-9._-]*$/;

// Family, output-token ceiling and thinking rules by model name.
export function modelInfo(model) {
  const m = /^gemini-(\d+(?:\.\d+)?)(?:-(.*))?$/.exec(model);
  let version;
  let rest;
  if (m) {
    version = parseFloat(m[1]);
    rest = m[2] || '';
  } else {
    // Aliases without a version (gemini-flash-latest, gemini-pro-latest, gemini-exp-1206): treat as 2.5.
    version = 2.5;
    rest = model.slice('gemini-'.length);
  }
  const lite = /flash-lite/.test(rest);
  const flash = /flash/.test(rest);
  const info = { model, version, maxOutputTokens: 8192, thinking: false, family: 'legacy' };
  if (version >= 3) {
    Object.assign(info, {
      family: flash ? '3-flash' : '3-pro',
      maxOutputTokens: 65536,
      thinking: true,
      levels: flash ? ['minimal', 'low', 'medium', 'high'] : ['low', 'high'],
      // Gemini 3 accepts the legacy budget; keep the 2.5 ranges of the matching tier.
      budget: flash ? { min: 0, max: 24576, zero: true } : { min: 128, max: 32768, zero: false },
    });
  } else if (version >= 2.5) {
    if (lite) Object.assign(info, { family: '2.5-flash-lite', budget: { min: 512, max: 24576, zero: true } });
    else if (flash) Object.assign(info, { family: '2.5-flash', budget: { min: 0, max: 24576, zero: true } });
    else Object.assign(info, { family: '2.5-pro', budget: { min: 128, max: 32768, zero: false } });
    info.maxOutputTokens = 65536;
    info.thinking = true;
  } else if (version >= 2) {
    info.family = '2.0';
  }
  return info;
}

// ---------------------------------------------------------------------------------------------------------
// Token counting (deterministic, so tests can compare the gateway's numbers with the fake's).
//
//   promptTokens(req) = ceil(JSON.stringify({systemInstruction?, contents, tools?}).length / 4)
//
// with the keys in exactly that order and absent ones left out; `req` is a GenerateContentRequest
// (or a countTokens body's generateContentRequest, or {contents}). .length counts UTF-16 code units.
export function promptTokens(req) {
  const canon = {};
  if (req.systemInstruction !== undefined) canon.systemInstruction = req.systemInstruction;
  canon.contents = req.contents === undefined ? [] : req.contents;
  if (req.tools !== undefined) canon.tools = req.tools;
  return Math.ceil(JSON.stringify(canon).length / 4);
}

export function textTokens(s) {
  return Math.ceil(s.length / 4);
}

// ---------------------------------------------------------------------------------------------------------
// Shape (proto3 JSON) validation: unknown fields, wrong types, nulls.

const t = {
  str: { t: 'string' },
  bool: { t: 'bool' },
  int32: { t: 'int32' },
  int64: { t: 'int64' },
  num: { t: 'number' },
  bytes: { t: 'bytes' },
  struct: { t: 'struct' }, // google.protobuf.Struct: any JSON object
  value: { t: 'value' }, // google.protobuf.Value: any JSON
};
const arr = item => ({ t: 'array', item });
const map = item => ({ t: 'map', item });
const enm = (name, values, ci = false) => ({ t: 'enum', name, values, ci });
const obj = (name, fields) => ({ t: 'object', name, fields });

const TYPE_ENUM = enm('Type', ['TYPE_UNSPECIFIED', 'STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT', 'NULL'], true);

// OpenAPI 3.0 Schema subset (v1beta Schema). JSON Schema keywords such as $schema, additionalProperties,
// const, $ref, exclusiveMinimum are NOT fields of it: the real API answers "Unknown name ... Cannot find
// field." for them. Use parametersJsonSchema for full JSON Schema.
const SCHEMA = obj('Schema', null);
SCHEMA.fields = {
  type: TYPE_ENUM,
  format: t.str,
  title: t.str,
  description: t.str,
  nullable: t.bool,
  enum: arr(t.str),
  maxItems: t.int64,
  minItems: t.int64,
  properties: map(SCHEMA),
  required: arr(t.str),
  minProperties: t.int64,
  maxProperties: t.int64,
  minLength: t.int64,
  maxLength: t.int64,
  pattern: t.str,
  example: t.value,
  anyOf: arr(SCHEMA),
  propertyOrdering: arr(t.str),
  default: t.value,
  items: SCHEMA,
  minimum: t.num,
  maximum: t.num,
};

const BLOB = obj('Blob', { mimeType: t.str, data: t.bytes });
const FILE_DATA = obj('FileData', { mimeType: t.str, fileUri: t.str });
const FUNCTION_CALL = obj('FunctionCall', { id: t.str, name: t.str, args: t.struct });
const FUNCTION_RESPONSE_PART = obj('FunctionResponsePart', { inlineData: BLOB });
const FUNCTION_RESPONSE = obj('FunctionResponse', {
  id: t.str,
  name: t.str,
  response: t.struct,
  parts: arr(FUNCTION_RESPONSE_PART),
});
const PART = obj('Part', {
  text: t.str,
  inlineData: BLOB,
  fileData: FILE_DATA,
  functionCall: FUNCTION_CALL,
  functionResponse: FUNCTION_RESPONSE,
  thought: t.bool,
  thoughtSignature: t.bytes,
});
export const PART_DATA_FIELDS = ['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse'];
const CONTENT = obj('Content', { role: t.str, parts: arr(PART) });

const FUNCTION_DECLARATION = obj('FunctionDeclaration', {
  name: t.str,
  description: t.str,
  parameters: SCHEMA,
  parametersJsonSchema: t.struct,
  response: SCHEMA,
  responseJsonSchema: t.struct,
});
const TOOL = obj('Tool', {
  functionDeclarations: arr(FUNCTION_DECLARATION),
  googleSearch: obj('GoogleSearch', { timeRangeFilter: obj('Interval', { startTime: t.str, endTime: t.str }) }),
  codeExecution: obj('CodeExecution', {}),
});
const TOOL_CONFIG = obj('ToolConfig', {
  functionCallingConfig: obj('FunctionCallingConfig', {
    mode: enm('Mode', ['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED']),
    allowedFunctionNames: arr(t.str),
  }),
});
const THINKING_CONFIG = obj('ThinkingConfig', {
  includeThoughts: t.bool,
  thinkingBudget: t.int32,
  thinkingLevel: enm('ThinkingLevel', ['THINKING_LEVEL_UNSPECIFIED', 'MINIMAL', 'LOW', 'MEDIUM', 'HIGH'], true),
});
const GENERATION_CONFIG = obj('GenerationConfig', {
  stopSequences: arr(t.str),
  responseMimeType: t.str,
  responseSchema: SCHEMA,
  responseJsonSchema: t.value,
  candidateCount: t.int32,
  maxOutputTokens: t.int32,
  temperature: t.num,
  topP: t.num,
  topK: t.int32,
  seed: t.int32,
  presencePenalty: t.num,
  frequencyPenalty: t.num,
  thinkingConfig: THINKING_CONFIG,
});
export const HARM_CATEGORIES = [
  'HARM_CATEGORY_HARASSMENT',
  'HARM_CATEGORY_HATE_SPEECH',
  'HARM_CATEGORY_SEXUALLY_EXPLICIT',
  'HARM_CATEGORY_DANGEROUS_CONTENT',
  'HARM_CATEGORY_CIVIC_INTEGRITY',
];
const SAFETY_SETTING = obj('SafetySetting', {
  category: enm('HarmCategory', HARM_CATEGORIES),
  threshold: enm('HarmBlockThreshold', [
    'HARM_BLOCK_THRESHOLD_UNSPECIFIED',
    'BLOCK_LOW_AND_ABOVE',
    'BLOCK_MEDIUM_AND_ABOVE',
    'BLOCK_ONLY_HIGH',
    'BLOCK_NONE',
    'OFF',
  ]),
});

const GCR_FIELDS = {
  contents: arr(CONTENT),
  systemInstruction: CONTENT,
  tools: arr(TOOL),
  toolConfig: TOOL_CONFIG,
  generationConfig: GENERATION_CONFIG,
  safetySettings: arr(SAFETY_SETTING),
  cachedContent: t.str,
};
const GENERATE_CONTENT_REQUEST = obj('GenerateContentRequest', GCR_FIELDS);
// Inside countTokens, the GenerateContentRequest also carries its model ("models/...").
const GCR_IN_COUNT = obj('GenerateContentRequest', { model: t.str, ...GCR_FIELDS });
const COUNT_TOKENS_REQUEST = obj('CountTokensRequest', { contents: arr(CONTENT), generateContentRequest: GCR_IN_COUNT });

const B64_STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B64_URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/;
// The bytes JSON mapping accepts standard or URL-safe base64.
export function isBase64(s) {
  return typeof s === 'string' && (B64_STD.test(s) || B64_URL.test(s));
}

const isPlainObject = v => v !== null && typeof v === 'object' && !Array.isArray(v);
const snakeToCamel = k => k.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const short = v => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
};
const pkg = 'type.googleapis.com/google.ai.generativelanguage.v1beta';

function shape(v, spec, path, errs) {
  if (errs.length >= 50) return;
  if (v === null) {
    errs.push({
      field: path,
      description: `Invalid value at '${path}': null (this fake rejects JSON null; omit the field instead)`,
    });
    return;
  }
  const bad = tname => errs.push({ field: path, description: `Invalid value at '${path}' (${tname}), ${short(v)}` });
  switch (spec.t) {
    case 'string':
      if (typeof v !== 'string') bad('TYPE_STRING');
      return;
    case 'bool':
      if (typeof v !== 'boolean') bad('TYPE_BOOL');
      return;
    case 'int32':
      if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) bad('TYPE_INT32');
      return;
    case 'int64':
      if (!(Number.isInteger(v) || (typeof v === 'string' && /^-?\d+$/.test(v)))) bad('TYPE_INT64');
      return;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) bad('TYPE_FLOAT');
      return;
    case 'bytes':
      if (typeof v !== 'string') bad('TYPE_BYTES');
      else if (!isBase64(v))
        errs.push({ field: path, description: `Invalid value at '${path}' (TYPE_BYTES), Base64 decoding failed for ${short(v)}` });
      return;
    case 'struct':
      if (!isPlainObject(v)) bad(`${'type.googleapis.com/google.protobuf.Struct'}`);
      return;
    case 'value':
      return;
    case 'enum': {
      const ok = typeof v === 'string' && (spec.ci ? spec.values.includes(v.toUpperCase()) : spec.values.includes(v));
      if (!ok) bad(`${pkg}.${spec.name}`);
      return;
    }
    case 'array':
      if (!Array.isArray(v)) {
        errs.push({ field: path, description: `Invalid value at '${path}': expected a JSON array, got ${short(v)}` });
        return;
      }
      v.forEach((item, i) => shape(item, spec.item, `${path}[${i}]`, errs));
      return;
    case 'map':
      if (!isPlainObject(v)) {
        errs.push({ field: path, description: `Invalid value at '${path}': expected a JSON object, got ${short(v)}` });
        return;
      }
      for (const [k, item] of Object.entries(v)) shape(item, spec.item, `${path}[${k}]`, errs);
      return;
    case 'object': {
      if (!isPlainObject(v)) {
        bad(`${pkg}.${spec.name}`);
        return;
      }
      for (const [k, item] of Object.entries(v)) {
        const f = spec.fields[k];
        if (!f) {
          const at = path ? ` at '${path}'` : '';
          let d = `Invalid JSON payload received. Unknown name "${k}"${at}: Cannot find field.`;
          const camel = snakeToCamel(k);
          if (camel !== k && spec.fields[camel]) d += ` (this fake accepts lowerCamelCase only: use "${camel}")`;
          errs.push({ field: path, description: d });
          continue;
        }
        shape(item, f, path ? `${path}.${k}` : k, errs);
      }
      return;
    }
    default:
      throw new Error(`bad spec ${spec.t}`);
  }
}

function shapeOrThrow(body, spec) {
  const errs = [];
  shape(body, spec, '', errs);
  if (errs.length) throw badRequest(errs.map(e => e.description).join('\n'), errs);
}

// ---------------------------------------------------------------------------------------------------------
// Semantic validation

const STRING_FORMATS = ['enum', 'date-time'];
const NUMBER_FORMATS = ['float', 'double'];
const INTEGER_FORMATS = ['int32', 'int64'];

function checkSchema(s, path, info) {
  const type = typeof s.type === 'string' ? s.type.toUpperCase() : undefined;
  if (s.enum !== undefined && type !== 'STRING')
    throw semantic(`${path}.enum`, 'only allowed for STRING type');
  if (s.format !== undefined) {
    if (type === 'STRING' && !STRING_FORMATS.includes(s.format))
      throw semantic(`${path}.format`, "only 'enum' and 'date-time' are supported for STRING type");
    if (type === 'NUMBER' && !NUMBER_FORMATS.includes(s.format))
      throw semantic(`${path}.format`, "only 'float' and 'double' are supported for NUMBER type");
    if (type === 'INTEGER' && !INTEGER_FORMATS.includes(s.format))
      throw semantic(`${path}.format`, "only 'int32' and 'int64' are supported for INTEGER type");
  }
  if (s.required !== undefined) {
    const props = s.properties || {};
    s.required.forEach((r, i) => {
      if (!Object.prototype.hasOwnProperty.call(props, r)) throw semantic(`${path}.required[${i}]`, 'property is not defined');
    });
  }
  if (type === 'OBJECT' && info && info.version < 2.5 && (!s.properties || Object.keys(s.properties).length === 0))
    throw semantic(`${path}.properties`, 'should be non-empty for OBJECT type');
  if (s.properties) for (const [k, sub] of Object.entries(s.properties)) checkSchema(sub, `${path}.properties[${k}]`, info);
  if (s.items) checkSchema(s.items, `${path}.items`, info);
  if (s.anyOf) s.anyOf.forEach((sub, i) => checkSchema(sub, `${path}.anyOf[${i}]`, info));
}

function checkFunctionName(name, path) {
  if (typeof name !== 'string' || name === '') throw semantic(path, 'function name is required');
  if (!FUNCTION_NAME_RE.test(name))
    throw semantic(
      path,
      `Invalid function name ${JSON.stringify(name)}. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, colons, dots, and dashes, with a maximum length of 64.`,
    );
}

function checkPart(p, path, role, where) {
  const present = PART_DATA_FIELDS.filter(k => p[k] !== undefined);
  if (present.length === 0)
    throw semantic(`${path}.data`, "required oneof field 'data' must have one initialized field");
  if (present.length > 1)
    throw badRequest(`Invalid value at '${path}': oneof field 'data' is already set. Cannot set '${present[1]}'`, [
      { field: path, description: `a Part carries exactly one of ${PART_DATA_FIELDS.join(', ')}; got ${present.join(' and ')}` },
    ]);
  const kind = present[0];
  if (kind === 'text' && p.text === '')
    throw badRequest(
      `Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again. (${path}.text)`,
      [{ field: `${path}.text`, description: 'empty text part' }],
    );
  if (p.thought !== undefined && kind !== 'text') throw semantic(`${path}.thought`, 'thought is only valid on text parts');
  if (p.thought === true && role !== 'model') throw semantic(`${path}.thought`, `thought parts are only valid in model turns (role is ${JSON.stringify(role)})`);
  if (kind === 'inlineData') {
    if (!p.inlineData.mimeType) throw semantic(`${path}.inlineData.mimeType`, 'mime_type is required');
    if (!p.inlineData.data) throw semantic(`${path}.inlineData.data`, 'inline data must not be empty');
  }
  if (kind === 'fileData') {
    const uri = p.fileData.fileUri;
    if (!uri) throw semantic(`${path}.fileData.fileUri`, 'file_uri is required');
    if (!/^(https?:\/\/|gs:\/\/)\S+$/.test(uri))
      throw semantic(`${path}.fileData.fileUri`, `Invalid file_uri ${JSON.stringify(uri)}: must be an http(s):// or gs:// URI`);
  }
  if (kind === 'functionCall') {
    if (where === 'systemInstruction') throw semantic(path, 'systemInstruction may only contain text parts');
    if (role !== 'model') throw semantic(`${path}.functionCall`, `functionCall parts are only valid in model turns (role is ${JSON.stringify(role)})`);
    checkFunctionName(p.functionCall.name, `${path}.functionCall.name`);
  }
  if (kind === 'functionResponse') {
    if (where === 'systemInstruction') throw semantic(path, 'systemInstruction may only contain text parts');
    if (role !== 'user') throw semantic(`${path}.functionResponse`, `functionResponse parts are only valid in user turns (role is ${JSON.stringify(role)})`);
    checkFunctionName(p.functionResponse.name, `${path}.functionResponse.name`);
    if (p.functionResponse.response === undefined) throw semantic(`${path}.functionResponse.response`, 'response is required and must be a JSON object');
    (p.functionResponse.parts || []).forEach((fp, i) => {
      if (!fp.inlineData) throw semantic(`${path}.functionResponse.parts[${i}]`, 'a FunctionResponsePart must carry inlineData');
      if (!fp.inlineData.mimeType) throw semantic(`${path}.functionResponse.parts[${i}].inlineData.mimeType`, 'mime_type is required');
      if (!fp.inlineData.data) throw semantic(`${path}.functionResponse.parts[${i}].inlineData.data`, 'inline data must not be empty');
    });
  }
  if (where === 'systemInstruction' && kind !== 'text') throw semantic(path, 'systemInstruction may only contain text parts');
}

function checkContentsStructure(contents, root) {
  if (contents === undefined || contents.length === 0) throw semantic('contents', 'contents is not specified', root);
  contents.forEach((c, i) => {
    const path = `contents[${i}]`;
    if (c.role !== 'user' && c.role !== 'model')
      throw badRequest(`Please use a valid role: user, model. (${path}.role is ${c.role === undefined ? 'missing' : JSON.stringify(c.role)})`, [
        { field: `${path}.role`, description: 'role must be "user" or "model" (this fake requires it on every content)' },
      ]);
    if (!c.parts || c.parts.length === 0) throw semantic(`${path}.parts`, 'contents.parts must not be empty.', root);
    c.parts.forEach((p, j) => checkPart(p, `${path}.parts[${j}]`, c.role, 'contents'));
  });
}

function checkConversation(contents) {
  if (contents[0].role !== 'user')
    throw badRequest(`Please ensure that the first content has role user. (contents[0].role is "${contents[0].role}")`, [
      { field: 'contents[0].role', description: 'the conversation must start with a user turn' },
    ]);
  for (let i = 1; i < contents.length; i++) {
    if (contents[i].role === contents[i - 1].role)
      throw badRequest(
        `Please ensure that multiturn requests alternate between user and model. (contents[${i - 1}] and contents[${i}] both have role "${contents[i].role}")`,
        [{ field: `contents[${i}].role`, description: 'consecutive contents with the same role' }],
      );
  }
  // functionCall / functionResponse pairing.
  for (let i = 0; i < contents.length; i++) {
    const c = contents[i];
    const calls = c.parts.filter(p => p.functionCall).map(p => p.functionCall);
    const responses = c.parts.filter(p => p.functionResponse).map(p => p.functionResponse);
    if (c.role === 'user' && responses.length) {
      const prev = contents[i - 1];
      const prevCalls = prev ? prev.parts.filter(p => p.functionCall).length : 0;
      if (!prev || prev.role !== 'model' || prevCalls === 0)
        throw badRequest(
          `Please ensure that function response turn comes immediately after a function call turn. (contents[${i}] has functionResponse parts but contents[${i - 1}] has no functionCall parts)`,
          [{ field: `contents[${i}]`, description: 'function response turn without a preceding function call turn' }],
        );
    }
    if (c.role === 'model' && calls.length) {
      const next = contents[i + 1];
      const nextResponses = next && next.role === 'user' ? next.parts.filter(p => p.functionResponse).map(p => p.functionResponse) : [];
      if (nextResponses.length !== calls.length)
        throw badRequest(
          `Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn. (contents[${i}] has ${calls.length} functionCall parts, contents[${i + 1}] has ${nextResponses.length} functionResponse parts)`,
          [{ field: `contents[${i + 1}]`, description: 'function response count differs from function call count' }],
        );
      const key = x => `${x.name}\u0000${x.id === undefined ? '' : x.id}`;
      const want = new Map();
      for (const cl of calls) want.set(key(cl), (want.get(key(cl)) || 0) + 1);
      const nextParts = next.parts;
      for (let j = 0; j < nextParts.length; j++) {
        const r = nextParts[j].functionResponse;
        if (!r) continue;
        const n = want.get(key(r)) || 0;
        if (n === 0) {
          const callList = calls.map(cl => (cl.id === undefined ? cl.name : `${cl.name}#${cl.id}`)).join(', ');
          const got = r.id === undefined ? r.name : `${r.name}#${r.id}`;
          throw semantic(
            `contents[${i + 1}].parts[${j}].functionResponse`,
            `function response ${JSON.stringify(got)} does not match any unanswered function call of contents[${i}] (calls: ${callList})`,
          );
        }
        want.set(key(r), n - 1);
      }
    }
  }
}

// Thought signatures. `signatures` maps every signature the fake issued to {kind: 'call'|'thought', name}.
// Rule (stricter than Gemini 3, which validates the current turn only): in EVERY model turn with
// functionCall parts, the first functionCall part must carry the signature the fake issued for that call;
// and every thoughtSignature anywhere must be one the fake issued.
export const MISSING_SIGNATURE = 'Function call is missing a thought_signature in functionCall parts.';
export const CORRUPTED_SIGNATURE = 'Corrupted thought signature.';
// Gemini documents this value for history that came from another model (no signature to return).
export const BYPASS_SIGNATURE = 'skip_thought_signature_validator';

function checkSignatures(contents, signatures) {
  contents.forEach((c, i) => {
    c.parts.forEach((p, j) => {
      if (p.thoughtSignature !== undefined && p.thoughtSignature !== BYPASS_SIGNATURE && !signatures.has(p.thoughtSignature))
        throw badRequest(`${CORRUPTED_SIGNATURE} (contents[${i}].parts[${j}].thoughtSignature was not issued by this server)`, [
          { field: `contents[${i}].parts[${j}].thoughtSignature`, description: CORRUPTED_SIGNATURE },
        ]);
    });
    if (c.role !== 'model') return;
    const j = c.parts.findIndex(p => p.functionCall);
    if (j < 0) return;
    const p = c.parts[j];
    const path = `contents[${i}].parts[${j}]`;
    if (p.thoughtSignature === undefined)
      throw badRequest(
        `${MISSING_SIGNATURE} This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${p.functionCall.name}\` , position ${j + 1}. (${path}.thoughtSignature) Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`,
        [{ field: `${path}.thoughtSignature`, description: MISSING_SIGNATURE }],
      );
    if (p.thoughtSignature === BYPASS_SIGNATURE) return;
    const rec = signatures.get(p.thoughtSignature);
    if (rec.kind !== 'call' || rec.name !== p.functionCall.name)
      throw badRequest(
        `${CORRUPTED_SIGNATURE} (${path}.thoughtSignature was issued for ${rec.kind === 'call' ? `a call of ${rec.name}` : 'a thought part'}, not for this call of ${p.functionCall.name})`,
        [{ field: `${path}.thoughtSignature`, description: CORRUPTED_SIGNATURE }],
      );
  });
}

function checkSystemInstruction(si) {
  if (si === undefined) return;
  if (si.role !== undefined && si.role !== 'user')
    throw semantic('systemInstruction.role', `role must be omitted (or "user") for systemInstruction, got ${JSON.stringify(si.role)}`);
  if (!si.parts || si.parts.length === 0) throw semantic('systemInstruction.parts', 'contents.parts must not be empty.');
  si.parts.forEach((p, j) => checkPart(p, `systemInstruction.parts[${j}]`, 'system', 'systemInstruction'));
}

// Returns the declared function names (Set).
function checkTools(tools, toolConfig, info) {
  const names = new Set();
  (tools || []).forEach((tool, i) => {
    const path = `tools[${i}]`;
    const fds = tool.functionDeclarations;
    if (fds === undefined && tool.googleSearch === undefined && tool.codeExecution === undefined)
      throw semantic(path, 'a Tool must set one of functionDeclarations, googleSearch, codeExecution');
    if (fds !== undefined && fds.length === 0 && tool.googleSearch === undefined && tool.codeExecution === undefined)
      throw semantic(`${path}.functionDeclarations`, 'must not be empty (omit the tool instead)');
    (fds || []).forEach((fd, k) => {
      const fpath = `${path}.functionDeclarations[${k}]`;
      checkFunctionName(fd.name, `${fpath}.name`);
      if (names.has(fd.name)) throw semantic(`${fpath}.name`, `Duplicate function declaration name ${JSON.stringify(fd.name)}`);
      names.add(fd.name);
      if (fd.parameters !== undefined && fd.parametersJsonSchema !== undefined)
        throw semantic(fpath, 'parameters and parametersJsonSchema are mutually exclusive; set only one');
      if (fd.response !== undefined && fd.responseJsonSchema !== undefined)
        throw semantic(fpath, 'response and responseJsonSchema are mutually exclusive; set only one');
      if (fd.parameters !== undefined) checkSchema(fd.parameters, `${fpath}.parameters`, info);
      if (fd.response !== undefined) checkSchema(fd.response, `${fpath}.response`, info);
    });
  });
  const fcc = toolConfig && toolConfig.functionCallingConfig;
  if (fcc) {
    if (names.size === 0) throw badRequest('Function calling config is set without function_declarations.', [{ field: 'toolConfig.functionCallingConfig', description: 'no functionDeclarations in tools' }]);
    if (fcc.allowedFunctionNames !== undefined) {
      if (fcc.mode !== 'ANY' && fcc.mode !== 'VALIDATED')
        throw semantic('toolConfig.functionCallingConfig.allowedFunctionNames', 'allowed_function_names may only be set when the function calling mode is ANY (or VALIDATED)');
      fcc.allowedFunctionNames.forEach((n, i) => {
        if (!names.has(n)) throw semantic(`toolConfig.functionCallingConfig.allowedFunctionNames[${i}]`, `${JSON.stringify(n)} is not a declared function`);
      });
    }
  }
  return names;
}

function checkGenerationConfig(gc, info) {
  if (!gc) return;
  const p = 'generationConfig';
  if (gc.maxOutputTokens !== undefined && (gc.maxOutputTokens < 1 || gc.maxOutputTokens > info.maxOutputTokens))
    throw badRequest(
      `* GenerateContentRequest.${p}.maxOutputTokens: Unable to submit request because it has a maxOutputTokens value of ${gc.maxOutputTokens} but the supported range is from 1 (inclusive) to ${info.maxOutputTokens + 1} (exclusive). Update the value and try again.\n`,
      [{ field: `${p}.maxOutputTokens`, description: `must be in [1, ${info.maxOutputTokens}] for ${info.model}` }],
    );
  if (gc.temperature !== undefined && (gc.temperature < 0 || gc.temperature > 2)) throw semantic(`${p}.temperature`, 'must be in [0.0, 2.0]');
  if (gc.topP !== undefined && (gc.topP < 0 || gc.topP > 1)) throw semantic(`${p}.topP`, 'must be in [0.0, 1.0]');
  if (gc.topK !== undefined && gc.topK < 1) throw semantic(`${p}.topK`, 'must be >= 1');
  if (gc.candidateCount !== undefined && (gc.candidateCount < 1 || gc.candidateCount > 8)) throw semantic(`${p}.candidateCount`, 'must be in [1, 8]');
  if (gc.stopSequences !== undefined) {
    if (gc.stopSequences.length > 5) throw semantic(`${p}.stopSequences`, `at most 5 stop sequences are allowed, got ${gc.stopSequences.length}`);
    gc.stopSequences.forEach((s, i) => {
      if (s === '') throw semantic(`${p}.stopSequences[${i}]`, 'stop sequences must not be empty');
    });
  }
  const mimes = ['text/plain', 'application/json', 'text/x.enum'];
  if (gc.responseMimeType !== undefined && !mimes.includes(gc.responseMimeType))
    throw semantic(`${p}.responseMimeType`, `allowed mimetypes are ${mimes.map(m => `\`${m}\``).join(', ')}; got ${JSON.stringify(gc.responseMimeType)}`);
  if (gc.responseSchema !== undefined && gc.responseJsonSchema !== undefined)
    throw semantic(p, 'responseSchema and responseJsonSchema are mutually exclusive; set only one');
  if ((gc.responseSchema !== undefined || gc.responseJsonSchema !== undefined) && gc.responseMimeType !== 'application/json' && gc.responseMimeType !== 'text/x.enum')
    throw semantic(`${p}.responseMimeType`, 'a response schema requires responseMimeType application/json (or text/x.enum)');
  if (gc.responseSchema !== undefined) checkSchema(gc.responseSchema, `${p}.responseSchema`, info);

  const tc = gc.thinkingConfig;
  if (!tc) return;
  const tp = `${p}.thinkingConfig`;
  if (!info.thinking) throw semantic(tp, `thinking is not supported by ${info.model}`);
  const hasBudget = tc.thinkingBudget !== undefined;
  const hasLevel = tc.thinkingLevel !== undefined;
  if (hasBudget && hasLevel) throw semantic(tp, 'thinking_budget and thinking_level cannot both be set; use thinking_level for Gemini 3 models');
  if (hasLevel) {
    if (!info.levels) throw semantic(`${tp}.thinkingLevel`, `thinking_level is not supported by ${info.model}; use thinking_budget`);
    const lvl = tc.thinkingLevel.toLowerCase();
    if (!info.levels.includes(lvl))
      throw semantic(`${tp}.thinkingLevel`, `thinking level ${JSON.stringify(tc.thinkingLevel)} is not supported by ${info.model}; supported: ${info.levels.join(', ')}`);
  }
  if (hasBudget) {
    const b = tc.thinkingBudget;
    const { min, max, zero } = info.budget;
    if (b === -1) return;
    if (b === 0) {
      if (!zero) throw semantic(`${tp}.thinkingBudget`, 'Budget 0 is invalid. This model only works in thinking mode.');
      return;
    }
    if (b < min || b > max)
      throw semantic(`${tp}.thinkingBudget`, `The thinking budget ${b} is invalid. Please choose a value between ${min} and ${max}${zero ? ', 0' : ''} or -1.`);
  }
}

function checkSafetySettings(ss) {
  if (!ss) return;
  const seen = new Set();
  ss.forEach((s, i) => {
    if (s.category === undefined) throw semantic(`safetySettings[${i}].category`, 'category is required');
    if (s.threshold === undefined) throw semantic(`safetySettings[${i}].threshold`, 'threshold is required');
    if (seen.has(s.category)) throw semantic(`safetySettings[${i}].category`, `duplicate safety setting for ${s.category}`);
    seen.add(s.category);
  });
}

// Full validation of a generateContent / streamGenerateContent body.
// opts: {signatures: Map, checkSignatures: bool}. Returns {info, functionNames}.
export function validateGenerateRequest(body, model, opts = {}) {
  shapeOrThrow(body, GENERATE_CONTENT_REQUEST);
  const info = modelInfo(model);
  checkContentsStructure(body.contents);
  checkConversation(body.contents);
  checkSystemInstruction(body.systemInstruction);
  const functionNames = checkTools(body.tools, body.toolConfig, info);
  checkGenerationConfig(body.generationConfig, info);
  checkSafetySettings(body.safetySettings);
  if (body.cachedContent !== undefined && !/^cachedContents\/[^/]+$/.test(body.cachedContent))
    throw semantic('cachedContent', 'must be a CachedContent resource name: cachedContents/{id}');
  if (opts.checkSignatures) checkSignatures(body.contents, opts.signatures || new Map());
  return { info, functionNames };
}

// countTokens body: {contents} or {generateContentRequest} (mutually exclusive). Shape, roles and parts are
// validated like generateContent; conversation rules (alternation, pairing, signatures) are not.
export function validateCountTokensRequest(body, model) {
  shapeOrThrow(body, COUNT_TOKENS_REQUEST);
  const hasC = body.contents !== undefined;
  const hasG = body.generateContentRequest !== undefined;
  if (hasC && hasG)
    throw semantic('', 'contents and generateContentRequest are mutually exclusive; send one of them', 'CountTokensRequest');
  if (!hasC && !hasG) throw semantic('contents', 'one of contents or generateContentRequest is required', 'CountTokensRequest');
  const info = modelInfo(model);
  if (hasC) {
    checkContentsStructure(body.contents, 'CountTokensRequest');
    return { info, req: { contents: body.contents } };
  }
  const g = body.generateContentRequest;
  if (g.model === undefined) throw semantic('generateContentRequest.model', 'model is required (format: models/{model})', 'CountTokensRequest');
  if (g.model !== `models/${model}`)
    throw semantic('generateContentRequest.model', `must be "models/${model}" (the model in the URL), got ${JSON.stringify(g.model)}`, 'CountTokensRequest');
  checkContentsStructure(g.contents, 'CountTokensRequest');
  checkSystemInstruction(g.systemInstruction);
  checkTools(g.tools, g.toolConfig, info);
  checkGenerationConfig(g.generationConfig, info);
  checkSafetySettings(g.safetySettings);
  return { info, req: g };
}
