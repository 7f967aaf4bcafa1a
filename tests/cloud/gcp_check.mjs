// Proves tests/fakes/fake_gcp.mjs speaks Secret Manager's wire protocol: the official @google-cloud/secret-manager
// client (REST fallback) reads a secret through it with each way of authenticating, then the fake's own rules are
// checked on the raw protocol. Usage: NODE_EXTRA_CA_CERTS=ca.pem node gcp_check.mjs PORT METADATA_PORT
// Prints "ok - ..." / "not ok - ..." lines and "N passed, N failed"; exits 1 on a failure.

import crypto from 'node:crypto';
import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { GoogleAuth, JWT, OAuth2Client } from 'google-auth-library';

const [port, mdPort] = process.argv.slice(2).map(Number);
const base = `https://127.0.0.1:${port}`;
let passed = 0, failed = 0;
const check = (name, cond, detail = '') => {
  if (cond) passed++, console.log(`ok - ${name}`);
  else failed++, console.log(`not ok - ${name}${detail ? `: ${detail}` : ''}`);
};
const ctl = async (path, body) => {
  const r = await fetch(`${base}/_fake/${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
  return r.json();
};
const stats = () => ctl('stats');
const name = v => `projects/warden-test/secrets/api-key/versions/${v}`;
// The REST fallback builds https://{apiEndpoint}:{port}; the client checks the CRC32C itself only when asked,
// so the tests compare it too.
const smClient = auth => new SecretManagerServiceClient({ fallback: true, apiEndpoint: '127.0.0.1', port, ...auth });
const crcOk = p => {
  // the same CRC32C computed independently of the fake (bitwise, no table)
  let c = 0xffffffff;
  for (const b of Buffer.from(p.data)) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return String((c ^ 0xffffffff) >>> 0) === String(p.dataCrc32c);
};

async function main() {
  await ctl('reset', {});
  const v1 = await ctl('secret', { secret: 'api-key', value: 'sk-gcp-one' });
  check('control: a first version is version 1', v1.version === 1, JSON.stringify(v1));
  const vec = await ctl('secret', { secret: 'crc-vector', value: '123456789' });
  check('CRC32C: the check value of "123456789" is 0xE3069283 (RFC 3720 B.4)', vec.crc32c === '3808858755', vec.crc32c);
  const sa = await ctl('service_account');

  // 1. GKE workload identity / GCE: the client finds the metadata server (GCE_METADATA_HOST) and asks it for a token.
  process.env.GCE_METADATA_HOST = `127.0.0.1:${mdPort}`;
  process.env.GCE_METADATA_IP = `127.0.0.1:${mdPort}`;
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  process.env.CLOUDSDK_CONFIG = '/nonexistent-warden-gcloud';
  let c = smClient({ auth: new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }) });
  let [res] = await c.accessSecretVersion({ name: name('latest') });
  check('metadata server: the official client reads the secret', Buffer.from(res.payload.data).toString() === 'sk-gcp-one');
  check('metadata server: the name carries the version number', /\/secrets\/api-key\/versions\/1$/.test(res.name), res.name);
  check('metadata server: dataCrc32c is the CRC32C of the payload', crcOk(res.payload), String(res.payload.dataCrc32c));
  let st = await stats();
  check('metadata server: a token was fetched from it', st.metadata_requests >= 1 && st.tokens_issued >= 1, JSON.stringify(st));
  await c.close();

  // 2. A service-account key: the official JWT client signs the RS256 assertion and posts it to the token
  // endpoint (its URL is fixed at oauth2.googleapis.com, so a request interceptor sends it to the fake).
  const jwt = new JWT({ email: sa.client_email, key: sa.private_key, keyId: sa.private_key_id, scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  const redirect = cfg => {
    const u = String(cfg.url);
    if (u.startsWith('https://oauth2.googleapis.com/token')) cfg.url = `${base}/token`;
    return cfg;
  };
  jwt.transporter.interceptors.request.add({ resolved: redirect });
  const before = (await stats()).token_requests;
  const creds = await jwt.authorize();
  check('token endpoint: the official JWT client gets an access token', /^ya29\.fake-/.test(creds.access_token || ''));
  check('token endpoint: exactly one token request', (await stats()).token_requests === before + 1);
  const o2 = new OAuth2Client();
  o2.setCredentials({ access_token: creds.access_token, expiry_date: creds.expiry_date });
  await ctl('secret', { secret: 'api-key', value: 'sk-gcp-two' });
  c = smClient({ authClient: o2 });
  [res] = await c.accessSecretVersion({ name: name('latest') });
  check('token endpoint: the token reads the rotated secret (latest = 2)', Buffer.from(res.payload.data).toString() === 'sk-gcp-two' && /versions\/2$/.test(res.name), res.name);
  [res] = await c.accessSecretVersion({ name: name('1') });
  check('token endpoint: version 1 is still readable by number', Buffer.from(res.payload.data).toString() === 'sk-gcp-one');
  await c.close();

  // 3. The client's default with a key: a self-signed JWT as the bearer, no token exchange.
  const t0 = (await stats()).token_requests;
  c = smClient({ credentials: { client_email: sa.client_email, private_key: sa.private_key, private_key_id: sa.private_key_id }, projectId: 'warden-test' });
  [res] = await c.accessSecretVersion({ name: name('2') });
  check('self-signed JWT: the official client reads the secret', Buffer.from(res.payload.data).toString() === 'sk-gcp-two');
  check('self-signed JWT: no token request', (await stats()).token_requests === t0);

  // 4. Errors reach the client as its typed errors.
  try {
    await c.accessSecretVersion({ name: 'projects/warden-test/secrets/absent/versions/latest' });
    check('client: an absent secret fails', false);
  } catch (e) {
    // the REST fallback keeps the HTTP status as the code; the message carries the API's status
    check('client: an absent secret is a NOT_FOUND error', (e.code === 5 || e.code === 404) && /NOT_FOUND/.test(e.message), `${e.code} ${e.message}`);
  }
  await ctl('script', { faults: [{ status: 503 }] });
  try {
    await c.accessSecretVersion({ name: name('1') });
    check('client: an injected 503 fails the call', false);
  } catch (e) {
    check('client: an injected 503 is an UNAVAILABLE error', /UNAVAILABLE/.test(e.message) && (e.code === 14 || e.code === 503 || e.status === 503), `${e.code} ${e.message}`);
  }
  await c.close();

  // 5. The raw protocol's rules.
  const get = (path, headers = {}) => fetch(`${base}${path}`, { headers });
  const tok = (await (await fetch(`http://127.0.0.1:${mdPort}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } })).json()).access_token;
  const auth = { authorization: `Bearer ${tok}` };
  let r = await get(`/v1/${name('latest')}:access`);
  check('raw: no bearer is 401 UNAUTHENTICATED', r.status === 401 && (await r.json()).error.status === 'UNAUTHENTICATED');
  r = await get(`/v1/${name('latest')}:access`, { authorization: 'Bearer ya29.forged' });
  check('raw: an unknown token is 401', r.status === 401);
  r = await get(`/v1/${name('latest')}:access`, auth);
  const body = await r.json();
  check('raw: the answer is {name, payload{data, dataCrc32c}} and nothing else',
    r.status === 200 && JSON.stringify(Object.keys(body)) === '["name","payload"]' &&
    JSON.stringify(Object.keys(body.payload)) === '["data","dataCrc32c"]' && typeof body.payload.dataCrc32c === 'string' &&
    body.name === 'projects/123456789012/secrets/api-key/versions/2', JSON.stringify(body));
  check('raw: data is standard base64 of the bytes', Buffer.from(body.payload.data, 'base64').toString() === 'sk-gcp-two');
  check('raw: dataCrc32c matches a CRC32C computed independently', crcOk({ data: Buffer.from(body.payload.data, 'base64'), dataCrc32c: body.payload.dataCrc32c }));
  r = await get(`/v1/${name('latest')}:access?bogus=1`, auth);
  check('raw: an unknown query parameter is 400', r.status === 400);
  r = await get(`/v1/projects/other/secrets/api-key/versions/1:access`, auth);
  check('raw: another project is 403 PERMISSION_DENIED', r.status === 403);
  r = await get(`/v1/${name('0')}:access`, auth);
  check('raw: version 0 is 400', r.status === 400);
  r = await get(`/v1/${name('9')}:access`, auth);
  check('raw: a version past the last is 404', r.status === 404);
  await ctl('version', { secret: 'api-key', version: 2, state: 'DISABLED' });
  r = await get(`/v1/${name('2')}:access`, auth);
  check('raw: a disabled version is 400 FAILED_PRECONDITION', r.status === 400 && (await r.json()).error.status === 'FAILED_PRECONDITION');
  r = await get(`/v1/${name('latest')}:access`, auth);
  check('raw: latest skips a disabled version', r.status === 200 && (await r.json()).name.endsWith('/versions/1'));
  await ctl('version', { secret: 'api-key', version: 2, state: 'ENABLED' });
  await ctl('script', { faults: [{ bad_crc: true }] });
  r = await get(`/v1/${name('2')}:access`, auth);
  check('raw: a bad_crc fault answers a checksum that does not match', !crcOk((b => ({ data: Buffer.from(b.payload.data, 'base64'), dataCrc32c: b.payload.dataCrc32c }))(await r.json())));
  await ctl('script', { faults: [{ delay_ms: 300 }] });
  const t = Date.now();
  r = await get(`/v1/${name('2')}:access`, auth);
  check('raw: a delay_ms fault delays the answer', r.status === 200 && Date.now() - t >= 280);
  await ctl('script', { faults: [{ status: 503, times: -1 }] });
  const codes = [];
  for (let i = 0; i < 3; i++) codes.push((await get(`/v1/${name('2')}:access`, auth)).status);
  await ctl('script', { faults: [] });
  codes.push((await get(`/v1/${name('2')}:access`, auth)).status);
  check('raw: a fault with times -1 is an outage until the next script', codes.join() === '503,503,503,200', codes.join());
  await ctl('script', { faults: [{ status: 429, times: 2, retry_after: 3 }] });
  r = await get(`/v1/${name('2')}:access`, auth);
  check('raw: a 429 fault is RESOURCE_EXHAUSTED with Retry-After', r.status === 429 && r.headers.get('retry-after') === '3' && (await r.json()).error.status === 'RESOURCE_EXHAUSTED');
  codes.length = 0;
  for (let i = 0; i < 2; i++) codes.push((await get(`/v1/${name('2')}:access`, auth)).status);
  check('raw: a fault with times 2 is used twice', codes.join() === '429,200', codes.join());
  r = await fetch(`${base}/_fake/script`, { method: 'POST', body: JSON.stringify({ faults: [{ status: 503, bogus: 1 }] }) });
  check('control: an unknown fault key is 400', r.status === 400);
  await ctl('script', { faults: [{ target: 'metadata', status: 500 }] });
  r = await fetch(`http://127.0.0.1:${mdPort}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } });
  check('metadata: a metadata-targeted fault hits the metadata server', r.status === 500);
  await ctl('revoke_tokens', {});
  r = await get(`/v1/${name('2')}:access`, auth);
  check('raw: a revoked token is 401', r.status === 401);
  r = await fetch(`http://127.0.0.1:${mdPort}/computeMetadata/v1/instance/service-accounts/default/token`);
  check('metadata: no Metadata-Flavor header is 403', r.status === 403);
  r = await fetch(`http://127.0.0.1:${mdPort}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google', 'X-Forwarded-For': '1.2.3.4' } });
  check('metadata: X-Forwarded-For is 403', r.status === 403);

  // The token endpoint's checks, with assertions signed here.
  const now = Math.floor(Date.now() / 1000);
  const sign = (payload, key = sa.private_key, header = { alg: 'RS256', typ: 'JWT', kid: sa.private_key_id }) => {
    const h = Buffer.from(JSON.stringify(header)).toString('base64url'), p = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${h}.${p}.${crypto.sign('sha256', Buffer.from(`${h}.${p}`), key).toString('base64url')}`;
  };
  const good = { iss: sa.client_email, scope: 'https://www.googleapis.com/auth/cloud-platform', aud: 'https://oauth2.googleapis.com/token', iat: now, exp: now + 3600 };
  const post = form => fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  const grant = a => post({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: a });
  r = await grant(sign(good));
  check('token: a well-formed assertion gets a Bearer token', r.status === 200 && (await r.json()).token_type === 'Bearer');
  const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  r = await grant(sign(good, other));
  check('token: an assertion signed with another key is 400 invalid_grant', r.status === 400 && (await r.json()).error === 'invalid_grant');
  r = await grant(sign({ ...good, iss: 'someone@else.iam.gserviceaccount.com' }));
  check('token: a wrong iss is 400 invalid_grant', r.status === 400);
  r = await grant(sign({ ...good, aud: 'https://example.com/token' }));
  check('token: a wrong aud is 400 invalid_grant', r.status === 400);
  r = await grant(sign({ ...good, iat: now - 7200, exp: now - 3600 }));
  check('token: an expired assertion is 400 invalid_grant', r.status === 400);
  r = await grant(sign({ ...good, scope: undefined }));
  check('token: no scope is 400 invalid_scope', r.status === 400 && (await r.json()).error === 'invalid_scope');
  r = await grant(sign(good, sa.private_key, { alg: 'HS256', kid: sa.private_key_id }));
  check('token: alg other than RS256 is 400', r.status === 400);
  r = await post({ grant_type: 'client_credentials', assertion: sign(good) });
  check('token: another grant_type is 400 unsupported_grant_type', r.status === 400 && (await r.json()).error === 'unsupported_grant_type');
  const tok2 = (await (await grant(sign({ ...good, iat: now, exp: now + 3600 }))).json()).access_token;
  const n0 = (await stats()).by_secret['projects/warden-test/secrets/api-key'];
  const all = await Promise.all([1, 2, 3, 4, 5].map(() => get(`/v1/${name('latest')}:access`, { authorization: `Bearer ${tok2}` })));
  check('stats: 5 concurrent reads count 5', all.every(x => x.status === 200) && (await stats()).by_secret['projects/warden-test/secrets/api-key'] === n0 + 5);
  st = await stats();
  check('stats: access requests are counted per secret', st.by_secret['projects/warden-test/secrets/api-key'] >= 5, JSON.stringify(st.by_secret));

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch(e => {
  console.log(`not ok - unexpected: ${e.stack}`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
