// Proves tests/fakes/fake_azure.mjs speaks Key Vault's and Entra ID's wire protocols: the official
// @azure/keyvault-secrets SecretClient, with @azure/identity's credentials (client secret, workload identity,
// managed identity), reads a secret through it over TLS, then the fake's own rules are checked on the raw protocol.
// Usage: NODE_EXTRA_CA_CERTS=ca.pem node azure_check.mjs PORT IMDS_PORT DIR   (DIR: a scratch directory)
// Prints "ok - ..." / "not ok - ..." lines and "N passed, N failed"; exits 1 on a failure.

import fs from 'node:fs';
import path from 'node:path';
import { SecretClient } from '@azure/keyvault-secrets';
import { ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential } from '@azure/identity';

const [port, imdsPort] = process.argv.slice(2, 4).map(Number);
const dir = process.argv[4];
const base = `https://127.0.0.1:${port}`;
let passed = 0, failed = 0;
const check = (name, cond, detail = '') => {
  if (cond) passed++, console.log(`ok - ${name}`);
  else failed++, console.log(`not ok - ${name}${detail ? `: ${detail}` : ''}`);
};
const ctl = async (p, body) => {
  const r = await fetch(`${base}/_fake/${p}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
  return r.headers.get('content-type') === 'text/plain' ? r.text() : r.json();
};
const stats = () => ctl('stats');
// The vault is the fake itself: its host is not *.vault.azure.net, so the challenge's resource check is off.
const kv = (cred, opts = {}) => new SecretClient(base, cred, { disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 }, ...opts });

async function main() {
  await ctl('reset', {});
  const st0 = await ctl('state');
  const { tenant, client_id: clientId } = st0;
  const v1 = await ctl('secret', { name: 'openai-key', value: 'sk-azure-one' });

  // 1. Entra client credentials with a client secret; the vault's challenge first, then the bearer.
  const csc = new ClientSecretCredential(tenant, clientId, 'fake-azure-client-secret', { authorityHost: base, disableInstanceDiscovery: true });
  let c = kv(csc);
  let s = await c.getSecret('openai-key');
  check('client secret: the official client reads the secret', s.value === 'sk-azure-one');
  check('client secret: the version and vault URL come from the id', s.properties.version === v1.version && s.properties.vaultUrl === base, JSON.stringify(s.properties));
  let st = await stats();
  check('client secret: one challenge (401 without a bearer), then one token', st.challenges === 1 && st.tokens_by_grant.client_secret === 1, JSON.stringify(st));
  const v2 = await ctl('secret', { name: 'openai-key', value: 'sk-azure-two' });
  s = await c.getSecret('openai-key');
  check('client secret: a rotation is read as the latest version, the token reused', s.value === 'sk-azure-two' && s.properties.version === v2.version && (await stats()).tokens_issued === 1);
  s = await c.getSecret('openai-key', { version: v1.version });
  check('client secret: the old version is still readable by its version', s.value === 'sk-azure-one');
  c = kv(csc, { serviceVersion: '7.4' });
  s = await c.getSecret('openai-key');
  check('client secret: api-version 7.4 (what Warden sends) works', s.value === 'sk-azure-two' && (await ctl('requests')).some(r => r.path === '/secrets/openai-key/'));
  try {
    await c.getSecret('absent');
    check('client: an absent secret fails', false);
  } catch (e) {
    check('client: an absent secret is a 404 SecretNotFound', e.statusCode === 404 && e.code === 'SecretNotFound', `${e.statusCode} ${e.code}`);
  }
  try {
    await kv(new ClientSecretCredential(tenant, clientId, 'wrong', { authorityHost: base, disableInstanceDiscovery: true })).getSecret('openai-key');
    check('client: a wrong client secret fails', false);
  } catch (e) {
    check('client: a wrong client secret is AADSTS7000215 in the client', /AADSTS7000215/.test(e.message), e.message.slice(0, 200));
  }

  // 2. AKS workload identity: a federated service-account token in AZURE_FEDERATED_TOKEN_FILE, sent as
  // client_assertion.
  const tokenFile = path.join(dir, 'azure-identity-token');
  fs.writeFileSync(tokenFile, await ctl('federated_token'));
  const wic = new WorkloadIdentityCredential({ tenantId: tenant, clientId, tokenFilePath: tokenFile, authorityHost: base, disableInstanceDiscovery: true });
  s = await kv(wic).getSecret('openai-key');
  check('workload identity: the official client reads the secret', s.value === 'sk-azure-two');
  check('workload identity: the token came through client_assertion', (await stats()).tokens_by_grant.client_assertion === 1);
  fs.writeFileSync(tokenFile, await ctl('federated_token?sub=system:serviceaccount:other:other'));
  try {
    await kv(new WorkloadIdentityCredential({ tenantId: tenant, clientId, tokenFilePath: tokenFile, authorityHost: base, disableInstanceDiscovery: true })).getSecret('openai-key');
    check('workload identity: another subject fails', false);
  } catch (e) {
    check('workload identity: another subject is AADSTS700213 (no federated record)', /AADSTS700213/.test(e.message), e.message.slice(0, 200));
  }

  // 3. Managed identity through IMDS (AZURE_POD_IDENTITY_AUTHORITY_HOST points @azure/identity at it).
  process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = `http://127.0.0.1:${imdsPort}`;
  try {
    s = await kv(new ManagedIdentityCredential()).getSecret('openai-key');
    check('managed identity: the official client reads the secret through IMDS', s.value === 'sk-azure-two' && (await stats()).tokens_by_grant.imds >= 1);
  } catch (e) {
    check('managed identity: the official client reads the secret through IMDS', false, e.message.slice(0, 300));
  }

  // 4. Faults reach the client.
  await ctl('script', { faults: [{ status: 503 }] });
  try {
    await c.getSecret('openai-key');
    check('client: an injected 503 fails the call (no retries)', false);
  } catch (e) {
    check('client: an injected 503 fails the call (no retries)', e.statusCode === 503, `${e.statusCode}`);
  }
  await ctl('disable', { name: 'openai-key', enabled: false });
  try {
    await c.getSecret('openai-key');
    check('client: a disabled secret fails', false);
  } catch (e) {
    check('client: a disabled secret is 403 Forbidden', e.statusCode === 403, `${e.statusCode} ${e.code}`);
  }
  await ctl('disable', { name: 'openai-key', enabled: true });

  // 5. The raw protocol's rules.
  const tokenOf = async form => fetch(`${base}/${tenant}/oauth2/v2.0/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  const good = { grant_type: 'client_credentials', client_id: clientId, client_secret: 'fake-azure-client-secret', scope: 'https://vault.azure.net/.default' };
  let r = await tokenOf(good);
  const tb = await r.json();
  check('token: the answer is {token_type, expires_in, ext_expires_in, access_token}', r.status === 200 && tb.token_type === 'Bearer' && Number.isInteger(tb.expires_in) && typeof tb.access_token === 'string', JSON.stringify(Object.keys(tb)));
  const auth = { authorization: `Bearer ${tb.access_token}` };
  const get = (p, headers = {}) => fetch(`${base}${p}`, { headers });
  r = await get('/secrets/openai-key/?api-version=7.4');
  check('vault: no bearer is 401 with the challenge', r.status === 401 &&
    r.headers.get('www-authenticate') === `Bearer authorization="https://login.microsoftonline.com/${tenant}", resource="https://vault.azure.net"` &&
    (await r.json()).error.code === 'Unauthorized');
  r = await get(`/secrets/openai-key/${v2.version}?api-version=7.4`, auth);
  const body = await r.json();
  check('vault: the answer is {value, id, attributes, tags}', r.status === 200 && body.value === 'sk-azure-two' &&
    body.id === `${base}/secrets/openai-key/${v2.version}` && body.attributes.enabled === true && Number.isInteger(body.attributes.created), JSON.stringify(body));
  r = await get('/secrets/openai-key', auth);
  check('vault: no api-version is 400 BadParameter', r.status === 400 && (await r.json()).error.code === 'BadParameter');
  r = await get('/secrets/openai-key?api-version=1999-01-01', auth);
  check('vault: an unknown api-version is 400', r.status === 400);
  r = await get('/secrets/openai-key/not-a-version?api-version=7.4', auth);
  check('vault: a malformed version is 400', r.status === 400);
  r = await get('/secrets/bad_name?api-version=7.4', auth);
  check('vault: a name outside [0-9a-zA-Z-] is 400', r.status === 400);
  r = await get('/secrets/OPENAI-KEY?api-version=7.4', auth);
  check('vault: names are case-insensitive', r.status === 200);
  r = await get('/secrets/openai-key?api-version=7.4', { authorization: `Bearer ${tb.access_token.slice(0, -4)}AAAA` });
  check('vault: a tampered token is 401', r.status === 401);
  r = await get('/secrets/openai-key?api-version=7.4', { authorization: 'Basic dXNlcjpwYXNz' });
  check('vault: a non-Bearer scheme is 401', r.status === 401);
  r = await tokenOf({ ...good, scope: 'https://management.azure.com/.default' });
  check('token: a resource the tenant lacks is 400 invalid_resource', r.status === 400 && (await r.json()).error === 'invalid_resource');
  r = await tokenOf({ ...good, scope: 'https://vault.azure.net/user_impersonation' });
  check('token: a scope without /.default is 400 invalid_scope (AADSTS1002012)', r.status === 400 && (await r.json()).error_codes[0] === 1002012);
  r = await tokenOf({ ...good, client_id: '00000000-0000-0000-0000-000000000000' });
  check('token: an unknown client is 400 unauthorized_client (AADSTS700016)', r.status === 400 && (await r.json()).error === 'unauthorized_client');
  r = await tokenOf({ ...good, grant_type: 'password' });
  check('token: another grant is 400 unsupported_grant_type', r.status === 400 && (await r.json()).error === 'unsupported_grant_type');
  r = await fetch(`${base}/not-the-tenant/oauth2/v2.0/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(good) });
  check('token: another tenant is 400 (AADSTS90002)', r.status === 400 && (await r.json()).error_codes[0] === 90002);
  const fed = await ctl('federated_token');
  r = await tokenOf({ ...good, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: fed });
  check('token: a client_secret and a client_assertion together are 400', r.status === 400);
  const { client_secret: _, ...noSecret } = good;
  r = await tokenOf({ ...noSecret, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: fed });
  check('token: a federated token as client_assertion gets a token', r.status === 200);
  r = await tokenOf({ ...noSecret, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await ctl('federated_token?aud=api://other') });
  check('token: a federated token for another audience is refused', r.status === 400 && (await r.json()).error_codes[0] === 700212);
  r = await tokenOf({ ...noSecret, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await ctl('federated_token?ttl=0') });
  check('token: an expired federated token is refused (AADSTS700024)', r.status === 400 && (await r.json()).error_codes[0] === 700024);
  r = await tokenOf({ ...noSecret, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: `${fed.slice(0, -4)}AAAA` });
  check('token: a federated token with a bad signature is 401 invalid_client', r.status === 401);
  r = await tokenOf(noSecret);
  check('token: no credential is 401 invalid_client', r.status === 401 && (await r.json()).error === 'invalid_client');
  const imds = (q, headers = { Metadata: 'true' }) => fetch(`http://127.0.0.1:${imdsPort}/metadata/identity/oauth2/token?${q}`, { headers });
  r = await imds('api-version=2018-02-01&resource=https://vault.azure.net');
  const ib = await r.json();
  check('imds: the answer carries its numbers as strings', r.status === 200 && typeof ib.expires_in === 'string' && typeof ib.expires_on === 'string' && ib.resource === 'https://vault.azure.net', JSON.stringify(ib));
  r = await get('/secrets/openai-key?api-version=7.4', { authorization: `Bearer ${ib.access_token}` });
  check('imds: its token reads the vault', r.status === 200);
  r = await imds('api-version=2018-02-01&resource=https://vault.azure.net', {});
  check('imds: no Metadata: true header is 400', r.status === 400 && /metadata header/i.test((await r.json()).error_description));
  r = await imds('api-version=2018-02-01');
  check('imds: no resource is 400', r.status === 400);
  r = await imds('resource=https://vault.azure.net');
  check('imds: no api-version is 400', r.status === 400);
  await ctl('script', { faults: [{ delay_ms: 300 }] });
  const t = Date.now();
  r = await get('/secrets/openai-key?api-version=7.4', auth);
  check('vault: a delay_ms fault delays the answer', r.status === 200 && Date.now() - t >= 280);
  await ctl('script', { faults: [{ status: 503, times: -1 }] });
  const codes = [];
  for (let i = 0; i < 3; i++) codes.push((await get('/secrets/openai-key?api-version=7.4', auth)).status);
  await ctl('script', { faults: [] });
  codes.push((await get('/secrets/openai-key?api-version=7.4', auth)).status);
  check('vault: a fault with times -1 is an outage until the next script', codes.join() === '503,503,503,200', codes.join());
  await ctl('script', { faults: [{ status: 429, retry_after: 2 }] });
  r = await get('/secrets/openai-key?api-version=7.4', auth);
  check('vault: a 429 fault is Throttled with Retry-After', r.status === 429 && r.headers.get('retry-after') === '2' && (await r.json()).error.code === 'Throttled');
  await ctl('script', { faults: [{ target: 'token', status: 503 }] });
  r = await tokenOf(good);
  check('token: a token-targeted fault hits the token endpoint', r.status === 503);
  await ctl('script', { faults: [{ target: 'imds', status: 500 }] });
  r = await imds('api-version=2018-02-01&resource=https://vault.azure.net');
  check('imds: an imds-targeted fault hits IMDS', r.status === 500);
  r = await fetch(`${base}/_fake/script`, { method: 'POST', body: JSON.stringify({ bogus: 1 }) });
  check('control: an unknown script key is 400', r.status === 400);
  await ctl('revoke_tokens', {});
  r = await get('/secrets/openai-key?api-version=7.4', auth);
  check('vault: a revoked token is 401', r.status === 401);
  const tb2 = (await (await tokenOf(good)).json()).access_token;
  const n0 = (await stats()).by_secret['openai-key'];
  const all = await Promise.all([1, 2, 3, 4, 5].map(() => get('/secrets/openai-key?api-version=7.4', { authorization: `Bearer ${tb2}` })));
  check('stats: 5 concurrent reads count 5', all.every(x => x.status === 200) && (await stats()).by_secret['openai-key'] === n0 + 5);
  st = await stats();
  check('stats: reads are counted per secret', st.by_secret['openai-key'] >= 8, JSON.stringify(st.by_secret));

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch(e => {
  console.log(`not ok - unexpected: ${e.stack}`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
