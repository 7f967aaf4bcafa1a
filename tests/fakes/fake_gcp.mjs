// A strict fake of GCP Secret Manager (REST v1 `versions/{v}:access`) with the two ways a workload gets its
// access token: the OAuth token endpoint (RS256 service-account JWT assertion) and the GCE/GKE metadata server.
// Node built-ins only; proven against @google-cloud/secret-manager by tests/cloud/gcp_check.mjs. See README.md.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import {
  argHelpers, countStatus, delay, fakeHandler, parseCommandLine, readBody, rejectBadClients, runIfMain, serve,
  writeJson,
} from './fake_http.mjs';

const USAGE = 'usage: fake_gcp.mjs --port N [--tls-cert C --tls-key K] [--project P] [--verbose]';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
// The audiences Google's token endpoint takes in an assertion; client libraries sign the first.
const TOKEN_AUDS = ['https://oauth2.googleapis.com/token', 'https://www.googleapis.com/oauth2/v4/token',
  'https://accounts.google.com/o/oauth2/token'];
const SM_AUD = 'https://secretmanager.googleapis.com/';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

// CRC32C (Castagnoli, reflected 0x82F63B78), the checksum Secret Manager puts in payload.dataCrc32c.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();
export function crc32c(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const b64url = b => Buffer.from(b).toString('base64url');

// Verifies an RS256 compact JWT with publicKey: the parsed {header, payload}, or throws with the reason.
export function verifyRs256(jwt, publicKey) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS');
  let header, payload;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    throw new Error('header or payload is not base64url JSON');
  }
  if (header.alg !== 'RS256') throw new Error(`alg ${header.alg} is not RS256`);
  const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2], 'base64url'));
  if (!ok) throw new Error('invalid signature');
  return { header, payload };
}

function newState(opts) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyId = crypto.randomBytes(20).toString('hex');
  const email = `warden-test@${opts.project}.iam.gserviceaccount.com`;
  return {
    opts,
    sa: {
      email, keyId, privateKey, publicKey: crypto.createPublicKey(privateKey),
      json: {
        type: 'service_account', project_id: opts.project, private_key_id: keyId,
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }), client_email: email,
        client_id: '100000000000000000001', auth_uri: 'https://accounts.google.com/o/oauth2/auth',
        token_uri: TOKEN_AUDS[0], universe_domain: 'googleapis.com',
      },
    },
    secrets: new Map(), // "projects/P/secrets/S" -> [{data: Buffer, state: ENABLED|DISABLED|DESTROYED, created}]
    tokens: new Map(), // access token -> {exp (ms), via: 'token'|'metadata'}
    tokenTtl: 3599,
    faults: [],
    stats: null,
    log: [],
  };
}

function resetStats(S) {
  S.stats = {
    requests: 0, access_requests: 0, token_requests: 0, metadata_requests: 0, tokens_issued: 0,
    responses_by_status: {}, by_secret: {},
  };
  S.log = [];
}

// A Google API error: {"error":{"code","message","status"}}.
function gError(res, code, status, message, headers = {}) {
  writeJson(res, code, { error: { code, message, status } }, 'application/json; charset=UTF-8', headers);
}
// An OAuth token endpoint error (RFC 6749 shape, as oauth2.googleapis.com answers).
function oauthError(res, code, error, description) {
  writeJson(res, code, { error, error_description: description }, 'application/json; charset=utf-8');
}

function issueToken(S, via) {
  const token = `ya29.fake-${crypto.randomBytes(24).toString('base64url')}`;
  S.tokens.set(token, { exp: Date.now() + S.tokenTtl * 1000, via });
  S.stats.tokens_issued++;
  return token;
}

// The next queued fault for target ('access' | 'token' | 'metadata'), used up; undefined when none.
function takeFault(S, target) {
  const i = S.faults.findIndex(f => (f.target || 'access') === target);
  if (i < 0) return undefined;
  const f = S.faults[i];
  // "times": N uses it N times, -1 until the next script or reset (an outage); by default once
  if (f.times === undefined || f.times === 1) S.faults.splice(i, 1);
  else if (f.times > 1) f.times--;
  return f;
}

// Applies a fault's delay and status; true when it answered (the caller stops).
async function applyFault(res, fault) {
  if (!fault) return false;
  if (fault.delay_ms) await delay(fault.delay_ms);
  if (fault.cut) {
    res.socket.destroy();
    return true;
  }
  if (fault.status) {
    const st = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
      429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' }[fault.status] || 'UNKNOWN';
    gError(res, fault.status, st, fault.message || `fake-gcp: injected ${fault.status}`,
      fault.retry_after !== undefined ? { 'retry-after': String(fault.retry_after) } : {});
    return true;
  }
  return false;
}

// POST /token: the jwt-bearer grant. Checks the form, the assertion's signature against the service account's
// public key, its kid, iss, aud, scope, iat and exp, as Google's endpoint does.
async function tokenEndpoint(S, req, res) {
  S.stats.token_requests++;
  if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'POST only');
  const ct = String(req.headers['content-type'] || '');
  if (!ct.startsWith('application/x-www-form-urlencoded')) {
    return oauthError(res, 400, 'invalid_request', 'content-type must be application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams(await readBody(req, { limit: 65536, tooLarge: () => new Error('too large') }));
  if (await applyFault(res, takeFault(S, 'token'))) return;
  for (const k of form.keys()) {
    if (k !== 'grant_type' && k !== 'assertion') return oauthError(res, 400, 'invalid_request', `unexpected parameter ${k}`);
  }
  if (form.get('grant_type') !== JWT_BEARER) {
    return oauthError(res, 400, 'unsupported_grant_type', `Invalid grant_type: ${form.get('grant_type') || ''}`);
  }
  const assertion = form.get('assertion');
  if (!assertion) return oauthError(res, 400, 'invalid_request', 'Missing required parameter: assertion');
  let jwt;
  try {
    jwt = verifyRs256(assertion, S.sa.publicKey);
  } catch (e) {
    return oauthError(res, 400, 'invalid_grant', `Invalid JWT Signature. (${e.message})`);
  }
  const p = jwt.payload, now = Math.floor(Date.now() / 1000);
  if (jwt.header.kid !== undefined && jwt.header.kid !== S.sa.keyId) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT Signature. (unknown kid)');
  if (p.iss !== S.sa.email) return oauthError(res, 400, 'invalid_grant', 'Invalid issuer: not a known service account');
  if (!TOKEN_AUDS.includes(p.aud)) return oauthError(res, 400, 'invalid_grant', `Invalid JWT: audience ${p.aud} is not the token endpoint`);
  if (!Number.isInteger(p.iat) || !Number.isInteger(p.exp)) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: iat and exp must be integers');
  if (p.exp <= now) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  if (p.iat > now + 300 || p.exp - p.iat > 3600) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  const scopes = String(p.scope || '').split(' ').filter(Boolean);
  if (!scopes.length) return oauthError(res, 400, 'invalid_scope', 'Empty or missing scope not allowed.');
  if (!scopes.includes(SCOPE)) return oauthError(res, 400, 'invalid_scope', `fake-gcp grants only ${SCOPE}`);
  writeJson(res, 200, { access_token: issueToken(S, 'token'), expires_in: S.tokenTtl, token_type: 'Bearer' }, 'application/json; charset=utf-8');
}

// GET /computeMetadata/v1/...: the metadata server. Only the default service account's token, email and
// scopes, the project id and the universe domain; the Metadata-Flavor header is required, and a request that
// carries X-Forwarded-For is refused, as on GCE.
async function metadata(S, req, res, pathname) {
  S.stats.metadata_requests++;
  const text = (code, body) => {
    res.writeHead(code, { 'content-type': 'application/text', 'metadata-flavor': 'Google' });
    res.end(body);
  };
  if (req.headers['metadata-flavor'] !== 'Google') return text(403, 'Missing required header: Metadata-Flavor: Google\n');
  if (req.headers['x-forwarded-for']) return text(403, 'Request had X-Forwarded-For header\n');
  if (req.method !== 'GET') return text(405, 'GET only\n');
  if (await applyFault(res, takeFault(S, 'metadata'))) return;
  const sa = '/computeMetadata/v1/instance/service-accounts/default/';
  switch (pathname) {
    case '/computeMetadata/v1/project/project-id': return text(200, S.opts.project);
    case '/computeMetadata/v1/universe/universe-domain': return text(200, 'googleapis.com');
    case `${sa}email`: return text(200, S.sa.email);
    case `${sa}scopes`: return text(200, `${SCOPE}\n`);
    case `${sa}token`: {
      res.setHeader('metadata-flavor', 'Google');
      return writeJson(res, 200, { access_token: issueToken(S, 'metadata'), expires_in: S.tokenTtl, token_type: 'Bearer' }, 'application/json');
    }
    case '/computeMetadata/v1/':
      return text(200, 'instance/\nproject/\nuniverse/\n');
    case '/computeMetadata/v1/instance':
    case '/computeMetadata/v1/instance/':
      return text(200, 'service-accounts/\n');
    case '/computeMetadata/v1/instance/service-accounts/':
      return text(200, `default/\n${S.sa.email}/\n`);
    default: return text(404, 'Not Found\n');
  }
}

// The bearer's verdict: null when it may read secrets, else [status, STATUS, message]. Takes tokens the fake
// issued (unexpired) and the self-signed JWTs the client libraries make from a service-account key
// (iss = sub = the account, signed with its key, aud = the service or scope = cloud-platform).
function checkBearer(S, req) {
  const h = String(req.headers.authorization || '');
  const unauth = [401, 'UNAUTHENTICATED',
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.'];
  if (!/^Bearer [^ ]+$/.test(h)) return unauth;
  const tok = h.slice(7);
  const t = S.tokens.get(tok);
  if (t) return t.exp > Date.now() ? null : unauth;
  if (tok.split('.').length !== 3) return unauth;
  try {
    const { header, payload: p } = verifyRs256(tok, S.sa.publicKey);
    const now = Math.floor(Date.now() / 1000);
    if (header.kid !== S.sa.keyId || p.iss !== S.sa.email || p.sub !== S.sa.email) return unauth;
    if (!(p.exp > now) || p.exp - p.iat > 3600) return unauth;
    const scoped = String(p.scope || '').split(' ').includes(SCOPE);
    if (!scoped && p.aud !== SM_AUD) return unauth;
    return null;
  } catch {
    return unauth;
  }
}

const SEGMENT = /^[A-Za-z0-9_-]{1,255}$/;

// GET /v1/projects/{p}/secrets/{s}/versions/{v}:access
async function access(S, req, res, pathname, query) {
  S.stats.access_requests++;
  const m = /^\/v1\/projects\/([^/]+)\/secrets\/([^/]+)\/versions\/([^/:]+):access$/.exec(pathname);
  if (!m) return gError(res, 404, 'NOT_FOUND', `fake-gcp: no route for ${req.method} ${pathname}`);
  if (req.method !== 'GET') return gError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on :access`);
  for (const k of query.keys()) {
    if (!['$alt', 'alt', '$prettyPrint', 'prettyPrint'].includes(k)) {
      return gError(res, 400, 'INVALID_ARGUMENT', `Invalid JSON payload received. Unknown name "${k}": Cannot bind query parameter.`);
    }
  }
  const alt = query.get('$alt') || query.get('alt');
  if (alt && !/^json(;enum-encoding=int)?$/.test(alt)) return gError(res, 400, 'INVALID_ARGUMENT', `unsupported alt ${alt}`);
  const bad = checkBearer(S, req);
  if (bad) return gError(res, bad[0], bad[1], bad[2], { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
  const fault = takeFault(S, 'access');
  if (fault && !fault.bad_crc && (await applyFault(res, fault))) return;
  const [, project, secret, version] = m;
  if (!SEGMENT.test(secret)) return gError(res, 400, 'INVALID_ARGUMENT', `Secret ID [${secret}] is not a valid secret ID.`);
  if (version !== 'latest' && !/^[1-9][0-9]*$/.test(version)) return gError(res, 400, 'INVALID_ARGUMENT', `Version ID [${version}] is not a valid version ID.`);
  if (project !== S.opts.project && project !== S.opts.projectNumber) {
    return gError(res, 403, 'PERMISSION_DENIED', `Permission 'secretmanager.versions.access' denied for resource 'projects/${project}/secrets/${secret}/versions/${version}' (or it may not exist).`);
  }
  const key = `projects/${S.opts.project}/secrets/${secret}`;
  const versions = S.secrets.get(key);
  if (!versions) return gError(res, 404, 'NOT_FOUND', `Secret [projects/${S.opts.projectNumber}/secrets/${secret}] not found or has no versions.`);
  let n;
  if (version === 'latest') {
    n = versions.length;
    while (n > 0 && versions[n - 1].state !== 'ENABLED') n--;
    if (!n) return gError(res, 404, 'NOT_FOUND', `Secret [projects/${S.opts.projectNumber}/secrets/${secret}] not found or has no versions.`);
  } else {
    n = parseInt(version, 10);
    if (n > versions.length) return gError(res, 404, 'NOT_FOUND', `Secret Version [projects/${S.opts.projectNumber}/secrets/${secret}/versions/${version}] not found.`);
  }
  const v = versions[n - 1];
  if (v.state !== 'ENABLED') {
    return gError(res, 400, 'FAILED_PRECONDITION', `Secret Version [projects/${S.opts.projectNumber}/secrets/${secret}/versions/${n}] is in ${v.state} state.`);
  }
  S.stats.by_secret[key] = (S.stats.by_secret[key] || 0) + 1;
  const crc = fault && fault.bad_crc ? (crc32c(v.data) ^ 1) >>> 0 : crc32c(v.data);
  writeJson(res, 200, {
    name: `projects/${S.opts.projectNumber}/secrets/${secret}/versions/${n}`,
    payload: { data: v.data.toString('base64'), dataCrc32c: String(crc) },
  }, 'application/json; charset=UTF-8');
}

// POST /_fake/secret {"secret":"S","value":"..."|"data_b64":"..."}: adds a version (a rotation), answers its number.
// POST /_fake/version {"secret":"S","version":N,"state":"ENABLED"|"DISABLED"|"DESTROYED"}.
// POST /_fake/script {"faults":[...],"append"?:bool,"token_ttl"?:N}; POST /_fake/revoke_tokens; GET stats,
// requests, state, service_account; POST reset (stats, log, faults, tokens, TTL: not the secrets or the key).
async function control(S, req, res, pathname) {
  const body = req.method === 'POST' ? await readBody(req, { limit: 1 << 20, tooLarge: () => new Error('too large') }) : '';
  const parse = () => {
    const o = JSON.parse(body || '{}');
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error('body must be a JSON object');
    return o;
  };
  const json = (code, o) => writeJson(res, code, o, 'application/json');
  try {
    switch (`${req.method} ${pathname}`) {
      case 'GET /_fake/stats': return json(200, S.stats);
      case 'GET /_fake/requests': return json(200, S.log);
      case 'GET /_fake/state':
        return json(200, { faults: S.faults, token_ttl: S.tokenTtl, tokens: S.tokens.size,
          secrets: Object.fromEntries([...S.secrets].map(([k, v]) => [k, v.map(x => x.state)])) });
      case 'GET /_fake/service_account': return json(200, S.sa.json);
      case 'POST /_fake/reset':
        resetStats(S);
        S.faults = [];
        S.tokens.clear();
        S.tokenTtl = 3599;
        return json(200, { ok: true });
      case 'POST /_fake/revoke_tokens':
        S.tokens.clear();
        return json(200, { ok: true });
      case 'POST /_fake/secret': {
        const o = parse();
        for (const k of Object.keys(o)) if (!['secret', 'value', 'data_b64'].includes(k)) throw new Error(`unknown key ${k}`);
        if (typeof o.secret !== 'string' || !SEGMENT.test(o.secret)) throw new Error('secret must match [A-Za-z0-9_-]{1,255}');
        if ((o.value === undefined) === (o.data_b64 === undefined)) throw new Error('give exactly one of value, data_b64');
        const data = o.value !== undefined ? Buffer.from(String(o.value), 'utf8') : Buffer.from(String(o.data_b64), 'base64');
        if (data.length > 65536) throw new Error('a secret version holds at most 64 KiB');
        const key = `projects/${S.opts.project}/secrets/${o.secret}`;
        if (!S.secrets.has(key)) S.secrets.set(key, []);
        S.secrets.get(key).push({ data, state: 'ENABLED', created: Date.now() });
        return json(200, { name: `${key}/versions/${S.secrets.get(key).length}`, version: S.secrets.get(key).length, crc32c: String(crc32c(data)) });
      }
      case 'POST /_fake/version': {
        const o = parse();
        const vs = S.secrets.get(`projects/${S.opts.project}/secrets/${o.secret}`);
        if (!vs || !Number.isInteger(o.version) || o.version < 1 || o.version > vs.length) throw new Error('no such version');
        if (!['ENABLED', 'DISABLED', 'DESTROYED'].includes(o.state)) throw new Error('state must be ENABLED, DISABLED or DESTROYED');
        if (vs[o.version - 1].state === 'DESTROYED' && o.state !== 'DESTROYED') throw new Error('a destroyed version stays destroyed');
        vs[o.version - 1].state = o.state;
        if (o.state === 'DESTROYED') vs[o.version - 1].data = Buffer.alloc(0);
        return json(200, { ok: true });
      }
      case 'POST /_fake/script': {
        const o = parse();
        for (const k of Object.keys(o)) if (!['faults', 'append', 'token_ttl'].includes(k)) throw new Error(`unknown key ${k}`);
        if (o.token_ttl !== undefined) {
          if (!Number.isInteger(o.token_ttl) || o.token_ttl < 1) throw new Error('token_ttl must be a positive integer');
          S.tokenTtl = o.token_ttl;
        }
        if (o.faults !== undefined) {
          if (!Array.isArray(o.faults)) throw new Error('faults must be an array');
          for (const f of o.faults) {
            for (const k of Object.keys(f)) {
              if (!['target', 'status', 'message', 'retry_after', 'delay_ms', 'cut', 'times', 'bad_crc'].includes(k)) throw new Error(`unknown fault key ${k}`);
            }
            if (f.target !== undefined && !['access', 'token', 'metadata'].includes(f.target)) throw new Error('target must be access, token or metadata');
            if (f.status !== undefined && !(Number.isInteger(f.status) && f.status >= 400 && f.status <= 599)) throw new Error('status must be 400..599');
            if (f.times !== undefined && !(Number.isInteger(f.times) && (f.times >= 1 || f.times === -1))) throw new Error('times must be a positive integer or -1');
            if (f.bad_crc && (f.target || 'access') !== 'access') throw new Error('bad_crc applies to access only');
          }
          S.faults = o.append ? S.faults.concat(o.faults) : o.faults.slice();
        }
        return json(200, { ok: true });
      }
      default: return json(404, { error: `no control route ${req.method} ${pathname}` });
    }
  } catch (e) {
    return json(400, { error: e.message });
  }
}

export function parseArgs(argv) {
  const { need, int } = argHelpers(argv);
  const o = { port: 0, project: 'warden-test', projectNumber: '123456789012', verbose: false };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--port': o.port = int(need(i, '--port'), '--port'); i++; break;
      case '--tls-cert': o.tlsCert = need(i, '--tls-cert'); i++; break;
      case '--tls-key': o.tlsKey = need(i, '--tls-key'); i++; break;
      case '--project': o.project = need(i, '--project'); i++; break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': throw new Error('help');
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!o.tlsCert !== !o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  return o;
}

export function main(argv) {
  const opts = parseCommandLine(argv, parseArgs, { name: 'fake_gcp', usage: USAGE });
  const S = newState(opts);
  resetStats(S);
  const record = (req, res, pathname) => {
    S.stats.requests++;
    const entry = { method: req.method, path: pathname, headers: req.headers, ts: Date.now(), status: 0 };
    S.log.push(entry);
    if (S.log.length > 50) S.log.shift();
    res.on('finish', () => {
      entry.status = res.statusCode;
      countStatus(S.stats.responses_by_status, res.statusCode);
    });
  };
  const api = async (req, res, pathname, query) => {
    record(req, res, pathname);
    if (opts.verbose) process.stderr.write(`[fake_gcp] ${req.method} ${pathname}\n`);
    if (pathname === '/token') return tokenEndpoint(S, req, res);
    if (pathname.startsWith('/computeMetadata/')) return metadata(S, req, res, pathname);
    return access(S, req, res, pathname, query);
  };
  const internalError = res => gError(res, 500, 'INTERNAL', 'fake-gcp internal error');
  const handler = fakeHandler({ tag: 'fake_gcp', control: (req, res, p) => control(S, req, res, p), api, internalError });
  // The metadata server is plain HTTP on GCE; with TLS it gets a port of its own (GCE_METADATA_HOST).
  const mdHandler = fakeHandler({
    tag: 'fake_gcp', control: (req, res, p) => control(S, req, res, p), internalError,
    api: async (req, res, pathname) => {
      record(req, res, pathname);
      return metadata(S, req, res, pathname);
    },
  });
  const server = opts.tlsCert
    ? https.createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) }, handler)
    : http.createServer(handler);
  rejectBadClients(server);
  if (!opts.tlsCert) return serve(server, opts.port, { closeAll: true });
  const md = http.createServer(mdHandler);
  rejectBadClients(md);
  md.listen(0, '127.0.0.1', () => {
    serve(server, opts.port, {
      closeAll: true,
      onListening: port => process.stdout.write(`${JSON.stringify({ port, metadata_port: md.address().port })}\n`),
    });
  });
}

runIfMain(import.meta.url, main);
