#!/usr/bin/env node
// Self-test of the OIDC test IdP (idp.mjs) and the token tool (tokens.mjs): real HTTP against a started IdP,
// signatures checked with node's own crypto. Prints "ok - ..." lines and "N passed, N failed"; exits 1 on failure.
//   node tests/idp/selftest.mjs [filter-substring]      (run tests/idp/setup.sh first)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const IDP = path.join(HERE, 'idp.mjs');
const TOKENS = path.join(HERE, 'tokens.mjs');
const FILTER = process.argv[2] || '';
const AUD = 'api://warden';
const children = new Set();

// The whole run is bounded: a hang anywhere ends it as a failure, and everything started is stopped.
const watchdog = setTimeout(() => {
  process.stdout.write('not ok - selftest timed out after 120 s\n');
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}, 120000);

// Runs `node script args` and resolves once it printed its first line (parsed as JSON), with {child, info}.
function startNode(script, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${err}`)), 15000);
    child.stderr.on('data', (d) => {
      err += d;
      if (process.env.WD_IDP_DEBUG) process.stderr.write(d);
    });
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0 && timer) {
        clearTimeout(timer);
        resolve({ child, info: JSON.parse(out.slice(0, nl)) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!out.includes('\n')) reject(new Error(`${script} exited ${code}: ${err}`));
    });
  });
}

// Resolves {code, signal} once the child has exited, after SIGTERM; SIGKILL after 5 s.
function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
    child.kill('SIGTERM');
  });
}

function runNode(script, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    const t = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => {
      clearTimeout(t);
      children.delete(child);
      if (code !== 0) reject(new Error(`${path.basename(script)} ${args.join(' ')} exited ${code}: ${err}`));
      else resolve(out);
    });
  });
}

async function getJson(url, init = {}) {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000), ...init });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text, headers: r.headers };
}

const post = (url, body) => getJson(url, { method: 'POST', body: body === undefined ? '' : JSON.stringify(body) });

async function clientCredentials(idp, { client = 'warden-test', secret = 'warden-test-secret', resource = AUD } = {}) {
  const form = new URLSearchParams({ grant_type: 'client_credentials', scope: 'warden' });
  if (resource) form.set('resource', resource);
  return getJson(idp.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: form.toString(),
  });
}

function decode(token) {
  const [h, p, s] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    rawHeader: Buffer.from(h, 'base64url').toString('utf8'),
    rawPayload: Buffer.from(p, 'base64url').toString('utf8'),
    payload: (() => {
      try {
        return JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      } catch {
        return undefined;
      }
    })(),
    sig: s,
  };
}

// True when the token's signature verifies under jwk with the token's own alg; node crypto only.
function verifies(token, jwk) {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  const { alg } = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], 'base64url');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  switch (alg) {
    case 'RS256': return crypto.verify('sha256', data, key, sig);
    case 'PS256':
      return crypto.verify('sha256', data, {
        key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
      }, sig);
    case 'ES256': return crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    case 'EdDSA': return crypto.verify(null, data, key, sig);
    default: return false;
  }
}

function keyFor(jwks, kid) {
  return jwks.keys.find((k) => k.kid === kid);
}

function verifiesWithJwks(token, jwks) {
  const jwk = keyFor(jwks, decode(token).header.kid);
  return jwk !== undefined && verifies(token, jwk);
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

// ------------------------------------------------------------------------------------------------
// State shared by the tests, in order: one IdP for the whole run.
const S = {};
const now = () => Math.floor(Date.now() / 1000);

test('idp starts on loopback and prints port, issuer, jwks_uri, token_endpoint', async () => {
  const { child, info } = await startNode(IDP, ['--port', '0', '--path', '/oauth2/default']);
  S.child = child;
  S.idp = info;
  assert.ok(Number.isInteger(info.port) && info.port > 0);
  assert.equal(info.issuer, `http://127.0.0.1:${info.port}/oauth2/default`);
  assert.equal(info.jwks_uri, `${info.issuer}/jwks`);
  assert.equal(info.token_endpoint, `${info.issuer}/token`);
  S.test = `http://127.0.0.1:${info.port}/_test`;
});

test('discovery names the issuer, endpoints, grants and S256 PKCE', async () => {
  const r = await getJson(`${S.idp.issuer}/.well-known/openid-configuration`);
  assert.equal(r.status, 200);
  assert.equal(r.json.issuer, S.idp.issuer);
  assert.equal(r.json.jwks_uri, S.idp.jwks_uri);
  assert.equal(r.json.token_endpoint, S.idp.token_endpoint);
  assert.equal(r.json.device_authorization_endpoint, `${S.idp.issuer}/device/auth`);
  for (const g of ['client_credentials', 'authorization_code', 'urn:ietf:params:oauth:grant-type:device_code']) {
    assert.ok(r.json.grant_types_supported.includes(g), g);
  }
  assert.deepEqual(r.json.code_challenge_methods_supported, ['S256']);
  S.discovery = r.json;
});

test('nothing is served outside the issuer path', async () => {
  const r = await getJson(`http://127.0.0.1:${S.idp.port}/.well-known/openid-configuration`);
  assert.equal(r.status, 404);
});

test('JWKS: one RS256 and one ES256 public key, no private members', async () => {
  const r = await getJson(S.idp.jwks_uri);
  assert.equal(r.status, 200);
  const algs = r.json.keys.map((k) => `${k.kty}/${k.alg}`).sort();
  assert.deepEqual(algs, ['EC/ES256', 'RSA/RS256']);
  for (const k of r.json.keys) {
    for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[m], undefined, `${k.kid} has ${m}`);
    assert.ok(typeof k.kid === 'string' && k.kid.length > 0);
  }
  S.jwks = r.json;
  S.rsaKid = r.json.keys.find((k) => k.kty === 'RSA').kid;
  S.ecKid = r.json.keys.find((k) => k.kty === 'EC').kid;
});

test('/_test/keys hands out the private keys of the published kids', async () => {
  const r = await getJson(`${S.test}/keys`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.keys.map((k) => k.kid).sort(), S.jwks.keys.map((k) => k.kid).sort());
  for (const k of r.json.keys) assert.ok(typeof k.d === 'string', `${k.kid} has no d`);
});

const EXTRA = {
  groups: ['warden-developers', 'eng'],
  email: 'dev@example.test',
  scp: ['warden.use'],
  roles: ['Warden.User'],
  uid: '00u1warden',
  tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  oid: '00000000-0000-0000-0000-0000000000a1',
};

test('client_credentials gives an RS256 at+jwt for the resource with the extra claims, verified with the JWKS', async () => {
  const set = await post(`${S.test}/claims`, EXTRA);
  assert.equal(set.status, 200);
  const r = await clientCredentials(S.idp);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.token_type, 'Bearer');
  const t = decode(r.json.access_token);
  assert.equal(t.header.typ, 'at+jwt');
  assert.equal(t.header.alg, 'RS256');
  assert.equal(t.header.kid, S.rsaKid);
  assert.ok(verifiesWithJwks(r.json.access_token, S.jwks), 'signature');
  assert.equal(t.payload.iss, S.idp.issuer);
  assert.equal(t.payload.aud, AUD);
  assert.equal(t.payload.client_id, 'warden-test');
  assert.ok(t.payload.exp > now() && t.payload.exp <= now() + 3700, `exp ${t.payload.exp}`);
  assert.ok(Math.abs(t.payload.iat - now()) < 60);
  for (const [k, v] of Object.entries(EXTRA)) assert.deepEqual(t.payload[k], v, k);
});

test('extra claims cannot replace iss or aud, and an empty object clears them', async () => {
  await post(`${S.test}/claims`, { iss: 'https://evil.example', aud: 'evil', _claim_names: { groups: 'src1' } });
  let t = decode((await clientCredentials(S.idp)).json.access_token);
  assert.equal(t.payload.iss, S.idp.issuer);
  assert.equal(t.payload.aud, AUD);
  assert.deepEqual(t.payload._claim_names, { groups: 'src1' });
  await post(`${S.test}/claims`, {});
  t = decode((await clientCredentials(S.idp)).json.access_token);
  assert.equal(t.payload._claim_names, undefined);
  assert.equal(t.payload.groups, undefined);
});

test('/_test/claims refuses a body that is not a JSON object', async () => {
  const r = await getJson(`${S.test}/claims`, { method: 'POST', body: '[1,2]' });
  assert.equal(r.status, 400);
  const r2 = await getJson(`${S.test}/claims`, { method: 'POST', body: '{nope' });
  assert.equal(r2.status, 400);
});

test('the warden-test-es client gets ES256 tokens that verify', async () => {
  const r = await clientCredentials(S.idp, { client: 'warden-test-es' });
  assert.equal(r.status, 200, r.text);
  const t = decode(r.json.access_token);
  assert.equal(t.header.alg, 'ES256');
  assert.equal(t.header.kid, S.ecKid);
  assert.equal(t.header.typ, 'at+jwt');
  assert.ok(verifiesWithJwks(r.json.access_token, S.jwks));
});

test('the audience is the requested resource, api://warden when none is named', async () => {
  let t = decode((await clientCredentials(S.idp, { resource: 'api://other' })).json.access_token);
  assert.equal(t.payload.aud, 'api://other');
  t = decode((await clientCredentials(S.idp, { resource: null })).json.access_token);
  assert.equal(t.payload.aud, AUD);
});

test('a wrong client secret is refused with invalid_client', async () => {
  const r = await clientCredentials(S.idp, { secret: 'nope' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error, 'invalid_client');
});

test('rotate: a new RS256 kid signs, the old one stays published and its tokens still verify', async () => {
  const old = (await clientCredentials(S.idp)).json.access_token;
  const r = await post(`${S.test}/rotate`);
  assert.equal(r.status, 200);
  assert.notEqual(r.json.kid, S.rsaKid);
  const jwks = (await getJson(S.idp.jwks_uri)).json;
  assert.ok(keyFor(jwks, r.json.kid), 'new kid published');
  assert.ok(keyFor(jwks, S.rsaKid), 'old kid still published');
  const fresh = (await clientCredentials(S.idp)).json.access_token;
  assert.equal(decode(fresh).header.kid, r.json.kid);
  assert.ok(verifiesWithJwks(fresh, jwks));
  assert.ok(verifiesWithJwks(old, jwks));
  S.oldKid = S.rsaKid;
  S.rsaKid = r.json.kid;
  S.jwks = jwks;
});

test('retire: only the newest RSA key (and the ES256 key) stay; new tokens still verify', async () => {
  const r = await post(`${S.test}/retire`);
  assert.equal(r.status, 200);
  const jwks = (await getJson(S.idp.jwks_uri)).json;
  assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), [S.rsaKid, S.ecKid].sort());
  assert.equal(keyFor(jwks, S.oldKid), undefined);
  const fresh = (await clientCredentials(S.idp)).json.access_token;
  assert.equal(decode(fresh).header.kid, S.rsaKid);
  assert.ok(verifiesWithJwks(fresh, jwks));
  const es = (await clientCredentials(S.idp, { client: 'warden-test-es' })).json.access_token;
  assert.ok(verifiesWithJwks(es, jwks));
  S.jwks = jwks;
});

test('device authorization endpoint answers for warden-cli; polling says authorization_pending', async () => {
  const form = new URLSearchParams({ client_id: 'warden-cli', scope: 'openid warden' });
  const r = await getJson(S.discovery.device_authorization_endpoint, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(),
  });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.device_code && r.json.user_code);
  assert.ok(r.json.verification_uri.startsWith(S.idp.issuer));
  assert.ok(r.json.expires_in > 0);
  const poll = await getJson(S.idp.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: r.json.device_code, client_id: 'warden-cli',
    }).toString(),
  });
  assert.equal(poll.status, 400);
  assert.equal(poll.json.error, 'authorization_pending');
});

test('authorization code + PKCE: warden-cli is sent to the login interaction, without PKCE it is refused', async () => {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const q = {
    client_id: 'warden-cli', response_type: 'code', redirect_uri: 'http://127.0.0.1/callback', scope: 'openid', state: 's1',
  };
  const ok = await fetch(`${S.discovery.authorization_endpoint}?${new URLSearchParams({
    ...q, code_challenge: challenge, code_challenge_method: 'S256',
  })}`, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
  assert.equal(ok.status, 303);
  assert.match(ok.headers.get('location'), /\/interaction\//);
  const bad = await fetch(`${S.discovery.authorization_endpoint}?${new URLSearchParams(q)}`, {
    redirect: 'manual', signal: AbortSignal.timeout(5000),
  });
  assert.equal(bad.status, 303);
  const loc = new URL(bad.headers.get('location'));
  assert.equal(`${loc.origin}${loc.pathname}`, 'http://127.0.0.1/callback');
  assert.equal(loc.searchParams.get('error'), 'invalid_request');
});

const form = (url, params, headers = {}) => getJson(url, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body: new URLSearchParams(params).toString(),
});

async function deviceStart(scope) {
  const r = await form(S.discovery.device_authorization_endpoint, { client_id: 'warden-cli', scope });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const pollDevice = (deviceCode) => form(S.idp.token_endpoint, {
  grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, client_id: 'warden-cli',
});

test('device flow end to end: /_test/approve-device signs in alice; JWT access, ID and refresh tokens; refresh works', async () => {
  await post(`${S.test}/claims`, { groups: ['warden-developers'] });
  const d = await deviceStart('openid offline_access email groups warden');
  const a = await post(`${S.test}/approve-device`, { user_code: d.user_code.toLowerCase(), sub: 'alice' });
  assert.equal(a.status, 200, a.text);
  const r = await pollDevice(d.device_code);
  assert.equal(r.status, 200, r.text);
  const at = decode(r.json.access_token);
  assert.equal(at.header.typ, 'at+jwt');
  assert.equal(at.payload.aud, AUD);
  assert.equal(at.payload.sub, 'alice');
  assert.equal(at.payload.client_id, 'warden-cli');
  assert.deepEqual(at.payload.groups, ['warden-developers']);
  assert.ok(verifiesWithJwks(r.json.access_token, S.jwks));
  const idt = decode(r.json.id_token);
  assert.equal(idt.payload.sub, 'alice');
  assert.equal(idt.payload.aud, 'warden-cli');
  assert.ok(verifiesWithJwks(r.json.id_token, S.jwks));
  assert.ok(r.json.refresh_token);
  const ref = await form(S.idp.token_endpoint, {
    grant_type: 'refresh_token', refresh_token: r.json.refresh_token, client_id: 'warden-cli',
  });
  assert.equal(ref.status, 200, ref.text);
  assert.equal(decode(ref.json.access_token).payload.sub, 'alice');
  assert.equal(decode(ref.json.access_token).payload.aud, AUD);
  // A replayed device code is refused, and oidc-provider then revokes the whole grant (refresh tokens included).
  const again = await pollDevice(d.device_code);
  assert.equal(again.json.error, 'invalid_grant');
  const after = await form(S.idp.token_endpoint, {
    grant_type: 'refresh_token', refresh_token: ref.json.refresh_token ?? r.json.refresh_token, client_id: 'warden-cli',
  });
  assert.equal(after.json.error, 'invalid_grant');
  await post(`${S.test}/claims`, {});
});

test('device flow refused: /_test/approve-device with deny makes the poll answer access_denied', async () => {
  const d = await deviceStart('openid warden');
  assert.equal((await post(`${S.test}/approve-device`, { user_code: d.user_code, deny: true })).status, 200);
  const r = await pollDevice(d.device_code);
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'access_denied');
  assert.equal((await post(`${S.test}/approve-device`, { user_code: 'BCDF-GHJK' })).status, 404);
});

// A minimal browser: follows redirects with a cookie jar until one leaves for the client's redirect URI.
async function browse(url) {
  const jar = new Map();
  for (let hop = 0; hop < 12; hop++) {
    const r = await fetch(url, {
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
      signal: AbortSignal.timeout(5000),
    });
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const loc = r.headers.get('location');
    if (r.status < 300 || r.status >= 400 || !loc) throw new Error(`stopped at ${url}: ${r.status} ${await r.text()}`);
    url = new URL(loc, url).href;
    if (url.startsWith('http://127.0.0.1/callback')) return new URL(url);
  }
  throw new Error('too many redirects');
}

function pkceStart(extra = {}) {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const url = `${S.discovery.authorization_endpoint}?${new URLSearchParams({
    client_id: 'warden-cli',
    response_type: 'code',
    redirect_uri: 'http://127.0.0.1/callback',
    scope: 'openid offline_access warden',
    state: 'st-1',
    code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...extra,
  })}`;
  return { verifier, url };
}

test('authorization code + PKCE end to end: the automatic login signs in bob; the code gives a JWT for api://warden', async () => {
  assert.equal((await post(`${S.test}/login`, { sub: 'bob' })).status, 200);
  const { url } = pkceStart({ prompt: 'consent' });
  const cb = await browse(url);
  assert.equal(cb.searchParams.get('state'), 'st-1');
  const code = cb.searchParams.get('code');
  assert.ok(code, cb.href);
  const bad = await form(S.idp.token_endpoint, {
    grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1/callback', client_id: 'warden-cli',
    code_verifier: crypto.randomBytes(32).toString('base64url'),
  });
  assert.equal(bad.json.error, 'invalid_grant');
  // The wrong verifier consumed nothing usable: a fresh code is exchanged with the right one.
  const { verifier: v2, url: u2 } = pkceStart({ prompt: 'consent' });
  const code2 = (await browse(u2)).searchParams.get('code');
  const r = await form(S.idp.token_endpoint, {
    grant_type: 'authorization_code', code: code2, redirect_uri: 'http://127.0.0.1/callback', client_id: 'warden-cli',
    code_verifier: v2,
  });
  assert.equal(r.status, 200, r.text);
  const at = decode(r.json.access_token);
  assert.equal(at.payload.sub, 'bob');
  assert.equal(at.payload.aud, AUD);
  assert.equal(at.header.typ, 'at+jwt');
  assert.ok(verifiesWithJwks(r.json.access_token, S.jwks));
  assert.equal(decode(r.json.id_token).payload.sub, 'bob');
  assert.ok(r.json.refresh_token);
});

test('authorization code refused: with /_test/login deny the callback carries error=access_denied', async () => {
  assert.equal((await post(`${S.test}/login`, { sub: 'carol', deny: true })).status, 200);
  const cb = await browse(pkceStart({ prompt: 'login' }).url);
  assert.equal(cb.searchParams.get('error'), 'access_denied');
  assert.equal(cb.searchParams.get('code'), null);
  assert.equal((await post(`${S.test}/login`, { sub: 'test-user' })).status, 200);
});

test('hang-jwks: a JWKS fetch with a 500 ms timeout times out, discovery still answers; unhang releases it', async () => {
  assert.equal((await post(`${S.test}/hang-jwks`)).status, 200);
  // One fetch stays pending across the unhang and must then get the keys.
  const held = fetch(S.idp.jwks_uri, { signal: AbortSignal.timeout(10000) }).then((r) => r.json());
  const t0 = Date.now();
  await assert.rejects(fetch(S.idp.jwks_uri, { signal: AbortSignal.timeout(500) }), (e) => e.name === 'TimeoutError');
  assert.ok(Date.now() - t0 >= 450);
  assert.equal((await getJson(`${S.idp.issuer}/.well-known/openid-configuration`)).status, 200);
  const u = await post(`${S.test}/unhang`);
  assert.equal(u.status, 200);
  assert.ok(u.json.released >= 1);
  const heldJwks = await held;
  assert.ok(keyFor(heldJwks, S.rsaKid));
  assert.equal((await getJson(S.idp.jwks_uri)).status, 200);
});

// ------------------------------------------------------------------------------------------------
// tokens.mjs, against the IdP's keys and its own local keys

test('serve-jwks publishes the local RS256, PS256, ES256 and EdDSA keys and a discovery document', async () => {
  S.keydir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-idp-selftest-'));
  const { child, info } = await startNode(TOKENS, ['serve-jwks', '--port', '0', '--keydir', S.keydir,
    '--issuer', 'https://warden-test.okta.com/oauth2/default']);
  S.jwksServer = child;
  const r = await getJson(info.jwks_uri);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.keys.map((k) => k.alg).sort(), ['ES256', 'EdDSA', 'PS256', 'RS256']);
  for (const k of r.json.keys) assert.equal(k.d, undefined);
  S.localJwks = r.json;
  const d = await getJson(`http://127.0.0.1:${info.port}/oauth2/default/.well-known/openid-configuration`);
  assert.equal(d.json.issuer, 'https://warden-test.okta.com/oauth2/default');
  assert.equal(d.json.jwks_uri, info.jwks_uri);
});

async function mint(kind, extra = []) {
  const out = await runNode(TOKENS, [kind, '--issuer', S.idp.issuer, '--aud', AUD,
    '--keys-url', `${S.test}/keys`, '--keydir', S.keydir, ...extra]);
  return out.trimEnd().split('\n');
}

const KIND_CHECKS = {
  'valid-rs256': (t, tok) => {
    assert.equal(t.header.alg, 'RS256');
    assert.equal(t.header.kid, S.rsaKid);
    assert.ok(verifiesWithJwks(tok, S.jwks));
    assert.equal(t.payload.iss, S.idp.issuer);
    assert.equal(t.payload.aud, AUD);
    assert.ok(t.payload.exp > now());
  },
  'valid-es256': (t, tok) => {
    assert.equal(t.header.alg, 'ES256');
    assert.equal(t.header.kid, S.ecKid);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'valid-ps256': (t, tok) => {
    assert.equal(t.header.alg, 'PS256');
    assert.equal(t.header.kid, S.rsaKid);
    // The IdP publishes the key as RS256: only a verifier that ignores the JWK's alg would accept this one.
    assert.ok(verifies(tok, keyFor(S.jwks, S.rsaKid)));
  },
  'valid-eddsa': (t, tok, lines) => {
    assert.equal(t.header.alg, 'EdDSA');
    const jwk = JSON.parse(lines[1]);
    assert.equal(jwk.kty, 'OKP');
    assert.equal(jwk.crv, 'Ed25519');
    assert.equal(jwk.kid, t.header.kid);
    assert.equal(jwk.d, undefined);
    assert.ok(verifies(tok, jwk));
    assert.ok(verifiesWithJwks(tok, S.localJwks));
  },
  none: (t) => {
    assert.equal(t.header.alg, 'none');
    assert.equal(t.sig, '');
    assert.equal(t.payload.iss, S.idp.issuer);
  },
  'hs256-with-rsa-public-key': (t, tok) => {
    assert.equal(t.header.alg, 'HS256');
    assert.equal(t.header.kid, S.rsaKid);
    const pem = crypto.createPublicKey({ key: keyFor(S.jwks, S.rsaKid), format: 'jwk' })
      .export({ type: 'spki', format: 'pem' });
    const [h, p] = tok.split('.');
    assert.equal(t.sig, crypto.createHmac('sha256', pem).update(`${h}.${p}`).digest('base64url'));
  },
  'wrong-issuer': (t, tok) => {
    assert.notEqual(t.payload.iss, S.idp.issuer);
    assert.ok(t.payload.iss.startsWith(S.idp.issuer));
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'wrong-audience': (t, tok) => {
    assert.notEqual(t.payload.aud, AUD);
    assert.equal(t.payload.iss, S.idp.issuer);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  expired: (t, tok) => {
    assert.ok(t.payload.exp < now() - 600);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'not-yet-valid': (t, tok) => {
    assert.ok(t.payload.nbf > now() + 600);
    assert.ok(t.payload.exp > t.payload.nbf);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'unknown-kid': (t) => {
    assert.equal(t.header.alg, 'RS256');
    assert.equal(keyFor(S.jwks, t.header.kid), undefined);
    assert.equal(keyFor(S.localJwks, t.header.kid), undefined);
  },
  'bad-signature': (t, tok) => {
    assert.equal(t.header.kid, S.rsaKid);
    assert.equal(Buffer.from(t.sig, 'base64url').length, 256);
    assert.equal(verifiesWithJwks(tok, S.jwks), false);
  },
  truncated: (t, tok) => {
    assert.equal(tok.split('.').length, 3);
    assert.ok(Buffer.from(t.sig, 'base64url').length < 256);
    assert.equal(verifiesWithJwks(tok, S.jwks), false);
  },
  oversized: (t, tok) => {
    assert.ok(tok.length >= 20 * 1024 && tok.length < 21 * 1024, `length ${tok.length}`);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'dup-header-key': (t, tok) => {
    assert.equal(t.rawHeader.match(/"alg"/g).length, 2);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'dup-claim-key': (t, tok) => {
    assert.equal(t.rawPayload.match(/"sub"/g).length, 2);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'non-json': (t, tok) => {
    assert.equal(t.payload, undefined);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  jku: (t) => {
    assert.ok(t.header.jku.startsWith('http'));
    assert.equal(keyFor(S.jwks, t.header.kid), undefined);
  },
  x5u: (t) => {
    assert.ok(t.header.x5u.startsWith('http'));
    assert.equal(keyFor(S.jwks, t.header.kid), undefined);
  },
  'embedded-jwk': (t, tok) => {
    assert.equal(t.header.jwk.kty, 'RSA');
    assert.equal(t.header.jwk.d, undefined);
    assert.ok(verifies(tok, t.header.jwk));
    assert.equal(keyFor(S.jwks, t.header.kid), undefined);
  },
  'at+jwt': (t, tok) => {
    assert.equal(t.header.typ, 'at+jwt');
    assert.equal(t.payload.client_id, 'warden-test');
    assert.ok(t.payload.jti && t.payload.iat);
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'okta-shaped': (t, tok) => {
    assert.ok(t.payload.iss.endsWith('/oauth2/default'));
    assert.ok(t.payload.uid);
    assert.ok(Array.isArray(t.payload.scp));
    assert.ok(Array.isArray(t.payload.groups));
    // With --keys-url the Okta shape is signed by the IdP itself, whose issuer is also an /oauth2/default one.
    assert.ok(verifiesWithJwks(tok, S.jwks));
  },
  'entra-v2': (t, tok) => {
    assert.equal(t.payload.iss, `https://login.microsoftonline.com/${t.payload.tid}/v2.0`);
    assert.equal(t.payload.ver, '2.0');
    for (const c of ['oid', 'roles', 'groups', 'scp']) assert.ok(t.payload[c], c);
    assert.ok(verifiesWithJwks(tok, S.localJwks));
  },
  'entra-v1': (t, tok) => {
    assert.equal(t.payload.iss, `https://sts.windows.net/${t.payload.tid}/`);
    assert.equal(t.payload.ver, '1.0');
    assert.ok(t.payload.oid);
    assert.ok(verifiesWithJwks(tok, S.localJwks));
  },
  'entra-overage': (t, tok) => {
    assert.deepEqual(t.payload._claim_names, { groups: 'src1' });
    assert.ok(t.payload._claim_sources.src1.endpoint.startsWith('https://graph.microsoft.com/'));
    assert.equal(t.payload.groups, undefined);
    assert.ok(verifiesWithJwks(tok, S.localJwks));
  },
};

test('tokens.mjs list names exactly the kinds checked here', async () => {
  const kinds = (await runNode(TOKENS, ['list'])).trim().split('\n');
  assert.deepEqual(kinds.sort(), Object.keys(KIND_CHECKS).sort());
});

for (const [kind, check] of Object.entries(KIND_CHECKS)) {
  test(`tokens.mjs ${kind}`, async () => {
    const lines = await mint(kind, kind === 'valid-eddsa' ? ['--print-jwk'] : []);
    const tok = lines[0];
    const parts = tok.split('.');
    assert.equal(parts.length, 3);
    const t = decode(tok);
    check(t, tok, lines);
  });
}

test('tokens.mjs --claims adds to and overrides the claims; --signer local uses the served keys', async () => {
  const [tok] = await mint('valid-rs256', ['--claims', '{"groups":["g1"],"sub":"alice"}', '--signer', 'local']);
  const t = decode(tok);
  assert.deepEqual(t.payload.groups, ['g1']);
  assert.equal(t.payload.sub, 'alice');
  assert.ok(verifiesWithJwks(tok, S.localJwks));
  assert.equal(keyFor(S.jwks, t.header.kid), undefined);
  const [ps] = await mint('valid-ps256', ['--signer', 'local']);
  assert.equal(keyFor(S.localJwks, decode(ps).header.kid).alg, 'PS256');
  assert.ok(verifiesWithJwks(ps, S.localJwks));
});

test('tokens.mjs refuses an unknown kind with exit code 2', async () => {
  await assert.rejects(mint('no-such-kind'), /exited 2/);
});

test('a token of the real IdP verifies after the tool fetched its keys (same key material)', async () => {
  const [tok] = await mint('valid-rs256');
  const idpTok = (await clientCredentials(S.idp)).json.access_token;
  assert.equal(decode(tok).header.kid, decode(idpTok).header.kid);
});

test('an IdP with an empty --path has the bare origin as issuer', async () => {
  const { child, info } = await startNode(IDP, ['--port', '0', '--path', '/']);
  try {
    assert.equal(info.issuer, `http://127.0.0.1:${info.port}`);
    const r = await getJson(`${info.issuer}/.well-known/openid-configuration`);
    assert.equal(r.json.issuer, info.issuer);
    assert.equal(r.json.jwks_uri, `${info.issuer}/jwks`);
  } finally {
    await stop(child);
  }
});

test('SIGTERM: the IdP and serve-jwks exit cleanly (code 0), even with a JWKS request held', async () => {
  await post(`${S.test}/hang-jwks`);
  const held = fetch(S.idp.jwks_uri, { signal: AbortSignal.timeout(10000) }).catch(() => 'closed');
  await new Promise((r) => { setTimeout(r, 100); });
  const t0 = Date.now();
  const res = await stop(S.child);
  assert.deepEqual(res, { code: 0, signal: null });
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(await held, 'closed');
  assert.deepEqual(await stop(S.jwksServer), { code: 0, signal: null });
});

// ------------------------------------------------------------------------------------------------
let passed = 0;
let failed = 0;
for (const { name, fn } of tests) {
  if (FILTER && !name.includes(FILTER) && !name.startsWith('idp starts') && !name.startsWith('JWKS')
      && !name.startsWith('discovery')
      && !name.startsWith('serve-jwks')) continue;
  try {
    await fn();
    passed++;
    process.stdout.write(`ok - ${name}\n`);
  } catch (err) {
    failed++;
    const lines = String(err?.stack ?? err).split('\n').slice(0, 6);
    process.stdout.write(`not ok - ${name}\n#   ${lines.join('\n#   ')}\n`);
  }
}
for (const c of [...children]) await stop(c);
if (S.keydir) fs.rmSync(S.keydir, { recursive: true, force: true });
clearTimeout(watchdog);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
