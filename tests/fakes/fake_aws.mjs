// A strict fake of the AWS endpoints Warden's aws-sm:// backend talks to: Secrets Manager GetSecretValue (JSON 1.1,
// every call's SigV4 signature recomputed and checked), STS AssumeRoleWithWebIdentity (query API, XML, the JWT
// verified against a given key) and IMDSv2 (token first) on a plain-HTTP port of its own. Node built-ins only.
// See tests/fakes/README.md.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import {
  argHelpers, parseCommandLine, runIfMain, countStatus, writeJson, readBody, rejectBadClients, delay, splitUrl,
  verboseLog,
} from './fake_http.mjs';

const USAGE = `usage: node tests/fakes/fake_aws.mjs --port 0 [--imds-port 0] [--tls-cert C --tls-key K]
       [--access-key-id ID --secret-access-key S] [--region R] [--account N]
       [--secret NAME=VALUE]... [--role-arn ARN] [--web-identity-key PEM] [--web-identity-issuer ISS]
       [--web-identity-audience AUD] [--imds-role NAME] [--credential-ttl-s N] [--container-token T] [--verbose]`;

const JSON11 = 'application/x-amz-json-1.1';
const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const MAX_SKEW_MS = 5 * 60 * 1000; // AWS refuses a signature dated more than 5 minutes off its clock
const OPS = ['GetSecretValue', 'AssumeRoleWithWebIdentity', 'imds_token', 'imds_credentials', 'container_credentials'];

export function parseArgs(argv) {
  const { need, int } = argHelpers(argv);
  const o = {
    port: 0, imdsPort: 0, tlsCert: null, tlsKey: null, accessKeyId: 'AKIAFAKEWARDEN000001',
    secretAccessKey: 'fake/secret/access/key/warden+test000000', region: 'us-east-1', account: '123456789012',
    secrets: [], roleArn: 'arn:aws:iam::123456789012:role/warden', webIdentityKey: null, webIdentityIssuer: null,
    webIdentityAudience: 'sts.amazonaws.com', imdsRole: 'warden-instance', credentialTtlS: 3600, containerToken: null,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--port': o.port = int(need(i, a), a); i++; break;
      case '--imds-port': o.imdsPort = int(need(i, a), a); i++; break;
      case '--tls-cert': o.tlsCert = need(i, a); i++; break;
      case '--tls-key': o.tlsKey = need(i, a); i++; break;
      case '--access-key-id': o.accessKeyId = need(i, a); i++; break;
      case '--secret-access-key': o.secretAccessKey = need(i, a); i++; break;
      case '--region': o.region = need(i, a); i++; break;
      case '--account': o.account = need(i, a); i++; break;
      case '--secret': {
        const v = need(i, a);
        const eq = v.indexOf('=');
        if (eq <= 0) throw new Error('--secret needs NAME=VALUE');
        o.secrets.push([v.slice(0, eq), v.slice(eq + 1)]);
        i++;
        break;
      }
      case '--role-arn': o.roleArn = need(i, a); i++; break;
      case '--web-identity-key': o.webIdentityKey = need(i, a); i++; break;
      case '--web-identity-issuer': o.webIdentityIssuer = need(i, a); i++; break;
      case '--web-identity-audience': o.webIdentityAudience = need(i, a); i++; break;
      case '--imds-role': o.imdsRole = need(i, a); i++; break;
      case '--credential-ttl-s': o.credentialTtlS = int(need(i, a), a); i++; break;
      case '--container-token': o.containerToken = need(i, a); i++; break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': throw new Error('help');
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!!o.tlsCert !== !!o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  return o;
}

// ---- SigV4 (recomputed from the request as received) ----

const sha256hex = b => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();

// RFC 3986 encoding as SigV4 wants it: everything but unreserved characters, upper-case hex.
export const uriEncode = s => encodeURIComponent(s).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  const pairs = rawQuery.split('&').filter(Boolean).map(p => {
    const eq = p.indexOf('=');
    const k = decodeURIComponent((eq < 0 ? p : p.slice(0, eq)).replace(/\+/g, ' '));
    const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' '));
    return [uriEncode(k), uriEncode(v)];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

// Non-S3 services encode each path segment of the (already encoded) request path once more.
const canonicalPath = p => p.split('/').map(seg => uriEncode(seg)).join('/') || '/';

export function signingKey(secret, date, region, service) {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

// The signature SigV4 gives the request {method, path, rawQuery, headers (lower-case names, string values), body}
// for signedHeaders (lower-case, sorted) under credential scope date/region/service.
export function sigv4Signature({ method, path, rawQuery, headers, body }, signedHeaders, amzDate, scope, secret) {
  const canonHeaders = signedHeaders.map(h => `${h}:${String(headers[h]).trim().replace(/\s+/g, ' ')}\n`).join('');
  // outside S3 the payload is always hashed as received; an x-amz-content-sha256 header is only a signed header
  const payloadHash = sha256hex(body);
  const creq = [method, canonicalPath(path), canonicalQuery(rawQuery), canonHeaders, signedHeaders.join(';'), payloadHash]
    .join('\n');
  const sts = ['AWS4-HMAC-SHA256', amzDate, [...scope, 'aws4_request'].join('/'), sha256hex(creq)].join('\n');
  const [date, region, service] = scope;
  return crypto.createHmac('sha256', signingKey(secret, date, region, service)).update(sts).digest('hex');
}

// AWS's SigV4 date form, 20150830T123600Z
const amzDateOf = ms => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
const parseAmzDate = s => {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  return m ? Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
};
const iso = ms => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

// ---- state ----

export function createState(opts) {
  const S = {
    opts,
    clockOffsetMs: 0, // the control clock: what "now" means for credential and token expiry
    secrets: new Map(), // name -> {name, arn, versions: [{id, value, stages, created}]}
    temp: new Map(), // access key id -> {secret, token, expires, source}
    imdsTokens: new Map(), // token -> expires (ms)
    faults: [], // [{op, status?, delay_ms?, hang?}] used up in order by the first call of their op
    hung: new Set(),
    log: [],
    stats: null,
  };
  S.now = () => Date.now() + S.clockOffsetMs;
  resetStats(S);
  for (const [n, v] of opts.secrets) putSecret(S, n, v);
  return S;
}

function resetStats(S) {
  S.stats = { requests: Object.fromEntries(OPS.map(o => [o, 0])), responses_by_status: {}, refused: {}, in_flight: 0, max_in_flight: 0 };
}

const randId = (n, alphabet) => Array.from(crypto.randomBytes(n), b => alphabet[b % alphabet.length]).join('');
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

// Creates the secret or rotates it: the new version becomes AWSCURRENT, the old AWSCURRENT becomes AWSPREVIOUS.
export function putSecret(S, name, value, { binary = false } = {}) {
  let s = S.secrets.get(name);
  if (!s) {
    s = { name, arn: `arn:aws:secretsmanager:${S.opts.region}:${S.opts.account}:secret:${name}-${randId(6, ALNUM)}`, versions: [] };
    S.secrets.set(name, s);
  }
  for (const v of s.versions) v.stages = v.stages.filter(st => st !== 'AWSPREVIOUS');
  for (const v of s.versions) {
    if (v.stages.includes('AWSCURRENT')) v.stages = [...v.stages.filter(st => st !== 'AWSCURRENT'), 'AWSPREVIOUS'];
  }
  const ver = { id: crypto.randomUUID(), value, binary, stages: ['AWSCURRENT'], created: S.now() };
  s.versions.push(ver);
  return { arn: s.arn, versionId: ver.id };
}

function issueTemp(S, source) {
  const id = `ASIA${randId(16, UPNUM)}`;
  const t = {
    secret: crypto.randomBytes(30).toString('base64'),
    token: `FwoGZXIvYXdzE${crypto.randomBytes(96).toString('base64')}`,
    expires: S.now() + S.opts.credentialTtlS * 1000,
    source,
  };
  S.temp.set(id, t);
  return { id, ...t };
}

// The next queued fault for op, used up.
function takeFault(S, op) {
  const i = S.faults.findIndex(f => f.op === op);
  if (i < 0) return null;
  const f = S.faults[i];
  if (!f.sticky) S.faults.splice(i, 1);
  return f;
}

// Applies a fault's delay or hang; returns true when the caller should answer with the fault's status.
async function applyFault(S, f, res) {
  if (!f) return false;
  if (f.hang) {
    S.hung.add(res);
    res.on('close', () => S.hung.delete(res));
    await new Promise(() => {}); // never answers; the client's timeout or /_fake/reset ends it
  }
  if (f.delay_ms) await delay(f.delay_ms);
  return !!f.status;
}

// ---- Secrets Manager ----

function smError(S, res, status, type, message) {
  countStatus(S.stats.responses_by_status, status);
  S.stats.refused[type] = (S.stats.refused[type] || 0) + 1;
  writeJson(res, status, { __type: type, message }, JSON11, { 'x-amzn-requestid': crypto.randomUUID() });
}

// Checks the SigV4 Authorization header; returns null when good, else [status, type, message].
export function verifySigV4(S, req, body, service) {
  const h = req.headers;
  const auth = h.authorization;
  if (!auth) return [400, 'MissingAuthenticationTokenException', 'Missing Authentication Token'];
  const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(auth);
  if (!m) return [400, 'IncompleteSignatureException', `Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=${auth.split(' ')[0]}`];
  const parts = {};
  for (const p of m[1].split(/,\s*/)) {
    const eq = p.indexOf('=');
    if (eq > 0) parts[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter(k => !parts[k]);
  if (missing.length) return [400, 'IncompleteSignatureException', missing.map(k => `Authorization header requires '${k}' parameter.`).join(' ')];
  const cred = parts.Credential.split('/');
  if (cred.length !== 5 || cred[4] !== 'aws4_request') {
    return [400, 'IncompleteSignatureException', `Credential should be scoped to a valid region. Credential=${parts.Credential}`];
  }
  const [akid, date, region, svc] = cred;
  const amzDate = h['x-amz-date'];
  const t = parseAmzDate(amzDate);
  if (Number.isNaN(t)) return [400, 'IncompleteSignatureException', 'Authorization header requires existence of either a \'X-Amz-Date\' or a \'Date\' header.'];
  if (date !== amzDate.slice(0, 8)) return [400, 'InvalidSignatureException', `Credential should be scoped to a valid date: ${date}`];
  if (region !== S.opts.region) return [400, 'InvalidSignatureException', `Credential should be scoped to a valid region. ${region}`];
  if (svc !== service) return [400, 'InvalidSignatureException', `Credential should be scoped to correct service: '${service}'.`];
  const real = Date.now(); // signatures are dated by the wall clock, not the control clock
  if (Math.abs(real - t) > MAX_SKEW_MS) {
    const edge = amzDateOf(t < real ? real - MAX_SKEW_MS : real + MAX_SKEW_MS);
    return [400, 'InvalidSignatureException', t < real
      ? `Signature expired: ${amzDate} is now earlier than ${edge} (${amzDateOf(real)} - 5 min.)`
      : `Signature not yet current: ${amzDate} is still later than ${edge} (${amzDateOf(real)} + 5 min.)`];
  }
  const signed = parts.SignedHeaders.split(';');
  const sorted = [...signed].sort();
  if (signed.join(';') !== sorted.join(';') || signed.some(x => x !== x.toLowerCase())) {
    return [400, 'InvalidSignatureException', 'SignedHeaders must be lower-case and sorted.'];
  }
  // AWS wants host signed; stricter here: every x-amz-* header the request carries must be signed too, so a
  // signer that forgets the security token or the target is caught.
  const mustSign = ['host', ...Object.keys(h).filter(k => k.startsWith('x-amz-'))];
  for (const k of mustSign) {
    if (!signed.includes(k)) return [400, 'InvalidSignatureException', `'${k}' must be a signed header.`];
  }
  for (const k of signed) {
    if (h[k] === undefined) return [400, 'InvalidSignatureException', `The request signature we calculated does not match the signature you provided. Signed header '${k}' is not in the request.`];
  }
  let secret;
  if (akid === S.opts.accessKeyId) {
    secret = S.opts.secretAccessKey;
    if (h['x-amz-security-token'] !== undefined) return [400, 'UnrecognizedClientException', 'The security token included in the request is invalid.'];
  } else {
    const tc = S.temp.get(akid);
    if (!tc) return [400, 'UnrecognizedClientException', 'The security token included in the request is invalid.'];
    if (h['x-amz-security-token'] !== tc.token) return [400, 'UnrecognizedClientException', 'The security token included in the request is invalid.'];
    if (S.now() >= tc.expires) return [400, 'ExpiredTokenException', 'The security token included in the request is expired'];
    secret = tc.secret;
  }
  const { pathname } = splitUrl(req.url);
  const q = req.url.indexOf('?');
  let sig;
  try {
    sig = sigv4Signature({ method: req.method, path: pathname, rawQuery: q < 0 ? '' : req.url.slice(q + 1),
      headers: h, body }, signed, amzDate, [date, region, svc], secret);
  } catch {
    sig = ''; // a malformed percent-escape in the path or query cannot match any signature
  }
  const given = Buffer.from(parts.Signature);
  const want = Buffer.from(sig);
  if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) {
    return [400, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'];
  }
  return null;
}

function findSecret(S, id) {
  if (S.secrets.has(id)) return S.secrets.get(id);
  for (const s of S.secrets.values()) {
    // a full ARN, or the ARN without its 6-character suffix (a partial ARN)
    if (s.arn === id || s.arn.slice(0, -7) === id) return s;
  }
  return null;
}

async function secretsManager(S, req, res, body) {
  const target = req.headers['x-amz-target'];
  const op = /^secretsmanager\.(\w+)$/.exec(target || '');
  if (!op) return smError(S, res, 400, 'UnknownOperationException', '');
  const ct = (req.headers['content-type'] || '').split(';')[0].trim();
  if (ct !== JSON11) return smError(S, res, 400, 'SerializationException', `Content-Type must be ${JSON11}`);
  const bad = verifySigV4(S, req, body, 'secretsmanager');
  if (bad) return smError(S, res, ...bad);
  if (op[1] !== 'GetSecretValue') return smError(S, res, 400, 'UnknownOperationException', '');
  S.stats.requests.GetSecretValue++;
  const f = takeFault(S, 'GetSecretValue');
  if (await applyFault(S, f, res)) {
    const type = f.status === 429 ? 'ThrottlingException' : f.status >= 500 ? 'InternalServiceError' : f.type || 'InvalidRequestException';
    return smError(S, res, f.status, f.type || type, f.message || (f.status === 429 ? 'Rate exceeded' : 'An error occurred (fake fault).'));
  }
  let p;
  try {
    p = JSON.parse(body);
  } catch {
    return smError(S, res, 400, 'SerializationException', 'Start of structure or map found where not expected.');
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) return smError(S, res, 400, 'SerializationException', 'Start of structure or map found where not expected.');
  for (const k of Object.keys(p)) {
    // stricter than AWS, which ignores unknown members: a misspelt field is a bug in the caller
    if (!['SecretId', 'VersionId', 'VersionStage'].includes(k)) return smError(S, res, 400, 'SerializationException', `Unknown field: ${k}`);
    if (typeof p[k] !== 'string') return smError(S, res, 400, 'SerializationException', `STRING_VALUE can not be converted from ${typeof p[k]}`);
  }
  if (!p.SecretId) return smError(S, res, 400, 'ValidationException', "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null");
  if (p.SecretId.length > 2048) return smError(S, res, 400, 'ValidationException', "1 validation error detected: Value at 'secretId' failed to satisfy constraint: Member must have length less than or equal to 2048");
  const s = findSecret(S, p.SecretId);
  if (!s) return smError(S, res, 400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
  let v;
  if (p.VersionId) {
    v = s.versions.find(x => x.id === p.VersionId);
    if (!v) return smError(S, res, 400, 'ResourceNotFoundException', `Secrets Manager can't find the specified secret value for VersionId: ${p.VersionId}`);
    if (p.VersionStage && !v.stages.includes(p.VersionStage)) {
      return smError(S, res, 400, 'InvalidRequestException', 'You provided a VersionStage that is not associated to the provided VersionId.');
    }
  } else {
    const stage = p.VersionStage || 'AWSCURRENT';
    v = s.versions.find(x => x.stages.includes(stage));
    if (!v) return smError(S, res, 400, 'ResourceNotFoundException', `Secrets Manager can't find the specified secret value for staging label: ${stage}`);
  }
  countStatus(S.stats.responses_by_status, 200);
  const out = { ARN: s.arn, Name: s.name, VersionId: v.id, VersionStages: v.stages, CreatedDate: v.created / 1000 };
  if (v.binary) out.SecretBinary = Buffer.from(v.value).toString('base64');
  else out.SecretString = v.value;
  writeJson(res, 200, out, JSON11, { 'x-amzn-requestid': crypto.randomUUID() });
}

// ---- STS ----

const xmlEsc = s => String(s).replace(/[<>&"']/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' }[c]));

function stsError(S, res, status, code, message) {
  countStatus(S.stats.responses_by_status, status);
  S.stats.refused[code] = (S.stats.refused[code] || 0) + 1;
  const rid = crypto.randomUUID();
  const xml = `<ErrorResponse xmlns="${STS_NS}">\n  <Error>\n    <Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type>\n    <Code>${xmlEsc(code)}</Code>\n    <Message>${xmlEsc(message)}</Message>\n  </Error>\n  <RequestId>${rid}</RequestId>\n</ErrorResponse>\n`;
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml), 'x-amzn-requestid': rid });
  res.end(xml);
}

const b64urlJson = s => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

// Verifies the web identity token: RS256 (or ES256) signed by the configured key, iss/aud/exp/sub as AWS checks them.
// Returns [claims] or [null, code, message].
export function verifyWebIdentityToken(S, jwt) {
  const bad = m => [null, 'InvalidIdentityToken', m];
  const parts = String(jwt).split('.');
  if (parts.length !== 3) return bad('Couldn\'t parse the web identity token.');
  let header, claims;
  try {
    header = b64urlJson(parts[0]);
    claims = b64urlJson(parts[1]);
  } catch {
    return bad('Couldn\'t parse the web identity token.');
  }
  if (!S.opts.webIdentityKey) return bad('No OpenIDConnect provider found in your account for this issuer.');
  const alg = { RS256: 'RSA-SHA256', ES256: 'SHA256' }[header.alg];
  if (!alg) return bad(`Unsupported token algorithm: ${header.alg}`);
  const key = crypto.createPublicKey(fs.readFileSync(S.opts.webIdentityKey));
  if ((header.alg === 'RS256') !== (key.asymmetricKeyType === 'rsa')) return bad('Signature validation failed');
  let ok = false;
  try {
    ok = crypto.verify(alg, Buffer.from(`${parts[0]}.${parts[1]}`), header.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
      Buffer.from(parts[2], 'base64url'));
  } catch {
    // an algorithm that does not fit the key type is a failed signature, not a fault of the fake
  }
  if (!ok) return bad('Signature validation failed');
  if (S.opts.webIdentityIssuer && claims.iss !== S.opts.webIdentityIssuer) return bad('No OpenIDConnect provider found in your account for this issuer.');
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(S.opts.webIdentityAudience)) return bad('Incorrect token audience');
  if (typeof claims.exp !== 'number') return bad('Token has no expiry');
  if (claims.exp * 1000 <= S.now()) return [null, 'ExpiredTokenException', 'Token expired: current date/time must be before the expiration date/time.'];
  if (typeof claims.sub !== 'string' || !claims.sub) return bad('Token has no subject');
  return [claims];
}

async function sts(S, req, res, body) {
  const ct = (req.headers['content-type'] || '').split(';')[0].trim();
  if (ct !== 'application/x-www-form-urlencoded') return stsError(S, res, 400, 'InvalidAction', 'Could not find operation for the request (content-type).');
  const f = new URLSearchParams(body);
  const action = f.get('Action');
  if (action !== 'AssumeRoleWithWebIdentity') return stsError(S, res, 400, 'InvalidAction', `Could not find operation ${action} for version ${f.get('Version')}`);
  if (f.get('Version') !== '2011-06-15') return stsError(S, res, 400, 'InvalidAction', `Could not find operation ${action} for version ${f.get('Version')}`);
  S.stats.requests.AssumeRoleWithWebIdentity++;
  const fault = takeFault(S, 'AssumeRoleWithWebIdentity');
  if (await applyFault(S, fault, res)) {
    return stsError(S, res, fault.status, fault.type || (fault.status >= 500 ? 'InternalFailure' : 'IDPCommunicationError'), fault.message || 'An error occurred (fake fault).');
  }
  const known = new Set(['Action', 'Version', 'RoleArn', 'RoleSessionName', 'WebIdentityToken', 'DurationSeconds', 'ProviderId', 'Policy']);
  for (const k of f.keys()) if (!known.has(k) && !k.startsWith('PolicyArns.')) return stsError(S, res, 400, 'InvalidParameterValue', `Unknown parameter ${k}`);
  for (const k of ['RoleArn', 'RoleSessionName', 'WebIdentityToken']) {
    if (!f.get(k)) return stsError(S, res, 400, 'ValidationError', `1 validation error detected: Value null at '${k[0].toLowerCase()}${k.slice(1)}' failed to satisfy constraint: Member must not be null`);
  }
  const session = f.get('RoleSessionName');
  if (!/^[\w+=,.@-]{2,64}$/.test(session)) {
    return stsError(S, res, 400, 'ValidationError', `1 validation error detected: Value '${session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
  }
  let dur = 3600;
  if (f.has('DurationSeconds')) {
    dur = Number(f.get('DurationSeconds'));
    if (!Number.isInteger(dur) || dur < 900) return stsError(S, res, 400, 'ValidationError', "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900");
    if (dur > 3600) return stsError(S, res, 400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  }
  const [claims, code, msg] = verifyWebIdentityToken(S, f.get('WebIdentityToken'));
  if (!claims) return stsError(S, res, 400, code, msg);
  if (f.get('RoleArn') !== S.opts.roleArn) return stsError(S, res, 403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
  const ttl = Math.min(dur, S.opts.credentialTtlS);
  const t = issueTemp(S, 'sts');
  t.expires = S.now() + ttl * 1000;
  S.temp.get(t.id).expires = t.expires;
  const role = S.opts.roleArn.split('/').pop();
  const rid = crypto.randomUUID();
  const xml = `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NS}">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>${xmlEsc(claims.sub)}</SubjectFromWebIdentityToken>
    <Audience>${xmlEsc(S.opts.webIdentityAudience)}</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::${S.opts.account}:assumed-role/${xmlEsc(role)}/${xmlEsc(session)}</Arn>
      <AssumedRoleId>AROA${randId(17, UPNUM)}:${xmlEsc(session)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${xmlEsc(t.token)}</SessionToken>
      <SecretAccessKey>${xmlEsc(t.secret)}</SecretAccessKey>
      <Expiration>${iso(t.expires)}</Expiration>
      <AccessKeyId>${t.id}</AccessKeyId>
    </Credentials>
    <Provider>${xmlEsc(claims.iss || '')}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>${rid}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`;
  countStatus(S.stats.responses_by_status, 200);
  res.writeHead(200, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml), 'x-amzn-requestid': rid });
  res.end(xml);
}

// ---- IMDSv2 ----

function imdsText(S, res, status, text, headers = {}) {
  countStatus(S.stats.responses_by_status, status);
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text), server: 'EC2ws', ...headers });
  res.end(text);
}

// The container credentials endpoint (the ECS agent at 169.254.170.2, the EKS Pod Identity agent): GET with the
// authorization token as the whole Authorization header value, JSON credentials without a Code.
async function containerCredentials(S, req, res) {
  const json = (status, obj) => {
    countStatus(S.stats.responses_by_status, status);
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (req.method !== 'GET') return json(405, { code: 'InvalidRequest', message: 'method not allowed' });
  if (S.opts.containerToken !== null && req.headers.authorization !== S.opts.containerToken) {
    return json(401, { code: 'AccessDeniedException', message: 'the authorization token is missing or wrong' });
  }
  S.stats.requests.container_credentials++;
  const f = takeFault(S, 'container_credentials');
  if (await applyFault(S, f, res)) return json(f.status, { code: 'ServerException', message: 'fake fault' });
  const t = issueTemp(S, 'container');
  return json(200, { RoleArn: S.opts.roleArn, AccessKeyId: t.id, SecretAccessKey: t.secret, Token: t.token, Expiration: iso(t.expires) });
}

async function imds(S, req, res) {
  const { pathname } = splitUrl(req.url);
  if (pathname.startsWith('/v2/credentials/')) return containerCredentials(S, req, res);
  if (req.headers['x-forwarded-for'] !== undefined) return imdsText(S, res, 403, 'Forbidden'); // IMDS refuses proxied calls
  if (pathname === '/latest/api/token') {
    if (req.method !== 'PUT') return imdsText(S, res, 405, 'Method Not Allowed');
    const ttlH = req.headers['x-aws-ec2-metadata-token-ttl-seconds'];
    const ttl = Number(ttlH);
    if (ttlH === undefined || !/^\d+$/.test(ttlH) || ttl < 1 || ttl > 21600) return imdsText(S, res, 400, 'Bad Request');
    S.stats.requests.imds_token++;
    const f = takeFault(S, 'imds_token');
    if (await applyFault(S, f, res)) return imdsText(S, res, f.status, 'fake fault');
    const token = crypto.randomBytes(42).toString('base64url');
    S.imdsTokens.set(token, S.now() + ttl * 1000);
    return imdsText(S, res, 200, token, { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
  }
  if (req.method !== 'GET') return imdsText(S, res, 405, 'Method Not Allowed');
  // IMDSv2 required (HttpTokens=required): no token or an unknown or expired one is 401
  const tok = req.headers['x-aws-ec2-metadata-token'];
  const exp = tok === undefined ? undefined : S.imdsTokens.get(tok);
  if (exp === undefined || exp <= S.now()) return imdsText(S, res, 401, 'Unauthorized');
  const base = '/latest/meta-data/iam/security-credentials/';
  if (pathname === base) return imdsText(S, res, 200, S.opts.imdsRole);
  if (pathname === base + S.opts.imdsRole) {
    S.stats.requests.imds_credentials++;
    const f = takeFault(S, 'imds_credentials');
    if (await applyFault(S, f, res)) return imdsText(S, res, f.status, 'fake fault');
    const t = issueTemp(S, 'imds');
    const body = JSON.stringify({
      Code: 'Success', LastUpdated: iso(S.now()), Type: 'AWS-HMAC', AccessKeyId: t.id, SecretAccessKey: t.secret,
      Token: t.token, Expiration: iso(t.expires),
    }, null, 2);
    return imdsText(S, res, 200, body);
  }
  return imdsText(S, res, 404, `<?xml version="1.0" encoding="iso-8859-1"?>\n<html><head><title>404 - Not Found</title></head><body><h1>404 - Not Found</h1></body></html>\n`, { 'content-type': 'text/html' });
}

// ---- control ----

function applyControl(S, path, p) {
  switch (path) {
    case '/_fake/secret': {
      if (typeof p.name !== 'string' || !p.name || typeof p.value !== 'string') throw new Error('secret needs {name, value}');
      return putSecret(S, p.name, p.value, { binary: !!p.binary });
    }
    case '/_fake/fault': {
      const list = Array.isArray(p.faults) ? p.faults : [p];
      for (const f of list) {
        if (!OPS.includes(f.op)) throw new Error(`fault op must be one of ${OPS.join(', ')}`);
        for (const k of Object.keys(f)) {
          if (!['op', 'status', 'delay_ms', 'hang', 'type', 'message', 'sticky'].includes(k)) throw new Error(`unknown fault key ${k}`);
        }
        if (f.status !== undefined && !(Number.isInteger(f.status) && f.status >= 400 && f.status <= 599)) throw new Error('status must be 400..599');
      }
      if (!p.append) S.faults = [];
      S.faults.push(...list.map(f => ({ ...f })));
      return { queued: S.faults.length };
    }
    case '/_fake/clock': {
      if (!Number.isFinite(p.advance_s)) throw new Error('clock needs {advance_s}');
      S.clockOffsetMs += p.advance_s * 1000;
      return { now: iso(S.now()), offset_s: S.clockOffsetMs / 1000 };
    }
    case '/_fake/revoke': {
      const n = S.temp.size;
      S.temp.clear();
      S.imdsTokens.clear();
      return { revoked: n };
    }
    case '/_fake/reset': {
      resetStats(S);
      S.faults = [];
      S.clockOffsetMs = 0;
      S.log = [];
      for (const r of S.hung) r.destroy();
      S.hung.clear();
      return {};
    }
    default: return null;
  }
}

async function control(S, req, res, pathname) {
  if (req.method === 'GET' && pathname === '/_fake/stats') return writeJson(res, 200, S.stats, 'application/json');
  if (req.method === 'GET' && pathname === '/_fake/requests') return writeJson(res, 200, S.log, 'application/json');
  if (req.method === 'GET' && pathname === '/_fake/state') {
    return writeJson(res, 200, {
      now: iso(S.now()), offset_s: S.clockOffsetMs / 1000, faults: S.faults,
      secrets: [...S.secrets.values()].map(s => ({ name: s.name, arn: s.arn, versions: s.versions.map(v => ({ id: v.id, stages: v.stages })) })),
      temp_credentials: S.temp.size,
    }, 'application/json');
  }
  if (req.method !== 'POST') return writeJson(res, 404, { error: 'no such control call' }, 'application/json');
  const body = await readBody(req, { limit: 1 << 20, tooLarge: () => new Error('too large') });
  let p = {};
  try {
    p = body.trim() ? JSON.parse(body) : {};
    const out = applyControl(S, pathname, p);
    if (out === null) return writeJson(res, 404, { error: 'no such control call' }, 'application/json');
    return writeJson(res, 200, out, 'application/json');
  } catch (e) {
    return writeJson(res, 400, { error: e.message }, 'application/json');
  }
}

export function makeHandlers(S) {
  const log = verboseLog('fake_aws', S);
  const api = async (req, res) => {
    const { pathname } = splitUrl(req.url);
    if (pathname.startsWith('/_fake/')) return control(S, req, res, pathname);
    const body = await readBody(req, { limit: 1 << 20, tooLarge: () => new Error('too large') });
    S.stats.in_flight++;
    S.stats.max_in_flight = Math.max(S.stats.max_in_flight, S.stats.in_flight);
    res.once('close', () => S.stats.in_flight--);
    S.log.push({ method: req.method, path: req.url, target: req.headers['x-amz-target'] || null, ts: Date.now() });
    if (S.log.length > 50) S.log.shift();
    log(req.method, req.url, req.headers['x-amz-target'] || '');
    if (req.method !== 'POST' || pathname !== '/') {
      return smError(S, res, 404, 'UnknownOperationException', '');
    }
    if (req.headers['x-amz-target']) return secretsManager(S, req, res, body);
    return sts(S, req, res, body);
  };
  const imdsHandler = async (req, res) => {
    log('imds', req.method, req.url);
    try {
      await imds(S, req, res);
    } catch (e) {
      process.stderr.write(`[fake_aws] imds internal error: ${e.stack}\n`);
      if (!res.headersSent) imdsText(S, res, 500, 'Internal Server Error');
    }
  };
  const apiHandler = async (req, res) => {
    try {
      await api(req, res);
    } catch (e) {
      process.stderr.write(`[fake_aws] internal error: ${e.stack}\n`);
      if (!res.headersSent) smError(S, res, 500, 'InternalServiceError', 'internal error');
    }
  };
  return { apiHandler, imdsHandler };
}

export function main(argv) {
  const opts = parseCommandLine(argv, parseArgs, { name: 'fake_aws', usage: USAGE });
  const S = createState(opts);
  const { apiHandler, imdsHandler } = makeHandlers(S);
  const server = opts.tlsCert
    ? https.createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) }, apiHandler)
    : http.createServer(apiHandler);
  const imdsServer = http.createServer(imdsHandler);
  rejectBadClients(server);
  rejectBadClients(imdsServer);
  let ready = 0;
  const announce = () => {
    if (++ready < 2) return;
    process.stdout.write(`${JSON.stringify({ port: server.address().port, imds_port: imdsServer.address().port })}\n`);
  };
  server.listen(opts.port, '127.0.0.1', announce);
  imdsServer.listen(opts.imdsPort, '127.0.0.1', announce);
  const stop = () => {
    server.close();
    imdsServer.close();
    server.closeAllConnections();
    imdsServer.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

runIfMain(import.meta.url, main);
