// Proves tests/fakes/fake_aws.mjs against AWS's own JavaScript clients and signer: the official
// @aws-sdk/client-secrets-manager reads a secret through the fake with static, web-identity (STS) and IMDSv2
// credentials, and raw requests signed by @smithy/signature-v4 show each SigV4 rule the fake enforces.
// Usage (tests/integration/test_fake_aws.sh runs it): node tests/aws/check.mjs, configured by the environment below.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { STSClient, AssumeRoleWithWebIdentityCommand } from '@aws-sdk/client-sts';
import { fromTokenFile, fromInstanceMetadata } from '@aws-sdk/credential-providers';
import { SignatureV4 } from '@smithy/signature-v4';

const env = k => {
  if (!process.env[k]) throw new Error(`check.mjs needs ${k}`);
  return process.env[k];
};
const PORT = +env('FAKE_AWS_PORT');
const IMDS_PORT = +env('FAKE_AWS_IMDS_PORT');
const ENDPOINT = `https://127.0.0.1:${PORT}`;
const AKID = env('FAKE_AWS_AKID');
const SECRET = env('FAKE_AWS_SECRET_KEY');
const REGION = 'us-east-1';
const NAME = env('FAKE_AWS_SECRET_NAME');
const VALUE = env('FAKE_AWS_SECRET_VALUE');
const ROLE = env('FAKE_AWS_ROLE_ARN');
const JWT_KEY = fs.readFileSync(env('FAKE_AWS_JWT_KEY')); // private key that signs the web identity token
const TMP = env('FAKE_AWS_TMP');
const CA = fs.readFileSync(env('NODE_EXTRA_CA_CERTS'));

let passed = 0;
let failed = 0;
async function t(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
    if (process.env.FAKE_AWS_TIMING) console.log(`took ${Date.now() - t0} ms`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
  }
}
const eq = (a, b, what) => {
  if (a !== b) throw new Error(`${what}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
};

function jwt(claims, key = JWT_KEY) {
  const b = o => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b({ alg: 'RS256', typ: 'JWT', kid: 'k1' });
  const body = b(claims);
  const sig = crypto.sign('RSA-SHA256', Buffer.from(`${head}.${body}`), key).toString('base64url');
  return `${head}.${body}.${sig}`;
}
const nowS = () => Math.floor(Date.now() / 1000);
const goodClaims = () => ({ iss: 'https://oidc.fake.test/id/W', sub: 'system:serviceaccount:ai:warden', aud: 'sts.amazonaws.com', iat: nowS(), exp: nowS() + 3600 });

// A raw HTTPS call to the fake: [status, headers, body text].
function call(method, path, headers, body = '', port = PORT, tls = true) {
  return new Promise((resolve, reject) => {
    const mod = tls ? https : awaitHttp;
    const r = mod.request({ host: '127.0.0.1', port, method, path, headers, ca: CA }, res => {
      let d = '';
      res.on('data', c => (d += c));
      res.on('end', () => resolve([res.statusCode, res.headers, d]));
    });
    r.on('error', reject);
    r.end(body);
  });
}
const { default: awaitHttp } = await import('node:http');
const ctl = async (path, obj) => {
  const [s, , d] = await call(obj === undefined ? 'GET' : 'POST', `/_fake/${path}`, { 'content-type': 'application/json' },
    obj === undefined ? '' : JSON.stringify(obj));
  if (s !== 200) throw new Error(`control ${path}: ${s} ${d}`);
  return JSON.parse(d);
};

class NodeSha256 {
  constructor(secret) { this.h = secret ? crypto.createHmac('sha256', secret) : crypto.createHash('sha256'); }
  update(d) { this.h.update(d); }
  async digest() { return new Uint8Array(this.h.digest()); }
}

// A GetSecretValue request signed by @smithy/signature-v4 with the given credentials and date; tweak edits it.
async function signedGsv(body, { creds = { accessKeyId: AKID, secretAccessKey: SECRET }, date, region = REGION,
  service = 'secretsmanager', unsigned = [], after } = {}) {
  const signer = new SignatureV4({ credentials: creds, region, service, sha256: NodeSha256 });
  const req = {
    method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: PORT, path: '/', query: {},
    headers: { host: `127.0.0.1:${PORT}`, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
    body,
  };
  const s = await signer.sign(req, { signingDate: date, unsignableHeaders: new Set(unsigned) });
  if (after) after(s.headers);
  return call('POST', '/', s.headers, body);
}
const typeOf = d => JSON.parse(d).__type;

// --print-token: only print a fresh web identity token (for boto3_check.py) and stop
if (process.argv[2] === '--print-token') {
  process.stdout.write(`${jwt(goodClaims())}\n`);
  process.exit(0);
}

const sm = credentials => new SecretsManagerClient({ region: REGION, endpoint: ENDPOINT, credentials, maxAttempts: 1 });

await ctl('reset', {});

await t('client-secrets-manager reads the secret with static credentials (name)', async () => {
  const r = await sm({ accessKeyId: AKID, secretAccessKey: SECRET }).send(new GetSecretValueCommand({ SecretId: NAME }));
  eq(r.SecretString, VALUE, 'SecretString');
  eq(r.Name, NAME, 'Name');
  eq(r.VersionStages.join(','), 'AWSCURRENT', 'VersionStages');
  if (!(r.CreatedDate instanceof Date)) throw new Error('CreatedDate is not parsed as a date');
  if (!/^arn:aws:secretsmanager:us-east-1:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(r.ARN)) throw new Error(`ARN ${r.ARN}`);
});

await t('client reads by full ARN and by partial ARN', async () => {
  const c = sm({ accessKeyId: AKID, secretAccessKey: SECRET });
  const { ARN } = await c.send(new GetSecretValueCommand({ SecretId: NAME }));
  eq((await c.send(new GetSecretValueCommand({ SecretId: ARN }))).SecretString, VALUE, 'by ARN');
  eq((await c.send(new GetSecretValueCommand({ SecretId: ARN.slice(0, -7) }))).SecretString, VALUE, 'by partial ARN');
});

await t('rotation: AWSCURRENT moves, AWSPREVIOUS keeps the old value', async () => {
  const c = sm({ accessKeyId: AKID, secretAccessKey: SECRET });
  const before = await c.send(new GetSecretValueCommand({ SecretId: NAME }));
  await ctl('secret', { name: NAME, value: `${VALUE}-rotated` });
  const cur = await c.send(new GetSecretValueCommand({ SecretId: NAME }));
  eq(cur.SecretString, `${VALUE}-rotated`, 'current');
  const prev = await c.send(new GetSecretValueCommand({ SecretId: NAME, VersionStage: 'AWSPREVIOUS' }));
  eq(prev.SecretString, VALUE, 'previous');
  eq(prev.VersionId, before.VersionId, 'previous version id');
  const byId = await c.send(new GetSecretValueCommand({ SecretId: NAME, VersionId: before.VersionId }));
  eq(byId.SecretString, VALUE, 'by VersionId');
  await ctl('secret', { name: NAME, value: VALUE }); // back, for the clients that follow
});

await t('unknown secret is ResourceNotFoundException 400 in the SDK', async () => {
  try {
    await sm({ accessKeyId: AKID, secretAccessKey: SECRET }).send(new GetSecretValueCommand({ SecretId: 'no-such' }));
    throw new Error('no error');
  } catch (e) {
    eq(e.name, 'ResourceNotFoundException', 'name');
    eq(e.$metadata.httpStatusCode, 400, 'status');
    eq(e.message, "Secrets Manager can't find the specified secret.", 'message');
  }
});

await t('wrong secret key: InvalidSignatureException; unknown key id: UnrecognizedClientException', async () => {
  for (const [creds, want] of [[{ accessKeyId: AKID, secretAccessKey: 'wrong' }, 'InvalidSignatureException'],
    [{ accessKeyId: 'AKIANOTKNOWN00000000', secretAccessKey: SECRET }, 'UnrecognizedClientException']]) {
    try {
      await sm(creds).send(new GetSecretValueCommand({ SecretId: NAME }));
      throw new Error('no error');
    } catch (e) {
      eq(e.name, want, 'name');
    }
  }
});

await t('@smithy/signature-v4 signed request passes; same request with a stale date is refused', async () => {
  const body = JSON.stringify({ SecretId: NAME });
  const [s, , d] = await signedGsv(body);
  eq(s, 200, `status (${d})`);
  const [s2, , d2] = await signedGsv(body, { date: new Date(Date.now() - 6 * 60 * 1000) });
  eq(s2, 400, 'stale status');
  eq(typeOf(d2), 'InvalidSignatureException', 'stale type');
  if (!/Signature expired/.test(d2)) throw new Error(d2);
  const [s3] = await signedGsv(body, { date: new Date(Date.now() - 4 * 60 * 1000) });
  eq(s3, 200, '4 minutes old is still good');
});

await t('a body changed after signing, a target left unsigned, a wrong region or service are refused', async () => {
  const body = JSON.stringify({ SecretId: NAME });
  const [a, , da] = await signedGsv(body, { after: h => { h['x-amz-target'] = 'secretsmanager.DescribeSecret'; } });
  eq(a, 400, 'tampered header');
  eq(typeOf(da), 'InvalidSignatureException', 'tampered type');
  const [b, , db] = await signedGsv(body, { unsigned: ['x-amz-target'] });
  eq(b, 400, 'unsigned target');
  if (!/must be a signed header/.test(db)) throw new Error(db);
  const [c, , dc] = await signedGsv(body, { region: 'eu-west-1' });
  eq(typeOf(dc), 'InvalidSignatureException', `region ${c}`);
  const [d, , dd] = await signedGsv(body, { service: 'sts' });
  eq(typeOf(dd), 'InvalidSignatureException', `service ${d}`);
  // signed for one body, sent with another
  const signer = new SignatureV4({ credentials: { accessKeyId: AKID, secretAccessKey: SECRET }, region: REGION, service: 'secretsmanager', sha256: NodeSha256 });
  const sreq = await signer.sign({ method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: PORT, path: '/', query: {},
    headers: { host: `127.0.0.1:${PORT}`, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' }, body });
  const [e, , de] = await call('POST', '/', sreq.headers, JSON.stringify({ SecretId: 'other' }));
  eq(e, 400, 'other body');
  eq(typeOf(de), 'InvalidSignatureException', 'other body type');
});

await t('no Authorization: MissingAuthenticationTokenException', async () => {
  const [s, , d] = await call('POST', '/', { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' }, '{}');
  eq(s, 400, 'status');
  eq(typeOf(d), 'MissingAuthenticationTokenException', 'type');
});

await t('STS: client-sts AssumeRoleWithWebIdentity returns credentials; a bad token is InvalidIdentityToken (the SDK\'s InvalidIdentityTokenException)', async () => {
  const st = new STSClient({ region: REGION, endpoint: ENDPOINT, maxAttempts: 1 });
  const r = await st.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE, RoleSessionName: 'warden-check', WebIdentityToken: jwt(goodClaims()) }));
  if (!/^ASIA/.test(r.Credentials.AccessKeyId) || !r.Credentials.SessionToken) throw new Error(JSON.stringify(r.Credentials));
  if (!(r.Credentials.Expiration instanceof Date) || r.Credentials.Expiration <= new Date()) throw new Error('Expiration');
  const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  for (const [tok, want] of [[jwt(goodClaims(), other), 'InvalidIdentityTokenException'],
    [jwt({ ...goodClaims(), aud: 'someone-else' }), 'InvalidIdentityTokenException'],
    [jwt({ ...goodClaims(), exp: nowS() - 10 }), 'ExpiredTokenException']]) {
    try {
      await st.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE, RoleSessionName: 'warden-check', WebIdentityToken: tok }));
      throw new Error('no error');
    } catch (e) {
      eq(e.name, want, 'error name');
    }
  }
  try {
    await st.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: `${ROLE}-other`, RoleSessionName: 'warden-check', WebIdentityToken: jwt(goodClaims()) }));
    throw new Error('no error');
  } catch (e) {
    eq(e.name, 'AccessDenied', 'other role');
    eq(e.$metadata.httpStatusCode, 403, 'other role status');
  }
});

await t('client-secrets-manager reads the secret with web-identity credentials (fromTokenFile)', async () => {
  const tokFile = `${TMP}/web-identity-token`;
  fs.writeFileSync(tokFile, jwt(goodClaims()));
  const before = (await ctl('stats')).requests.AssumeRoleWithWebIdentity;
  const creds = fromTokenFile({ webIdentityTokenFile: tokFile, roleArn: ROLE, roleSessionName: 'warden-irsa',
    clientConfig: { region: REGION, endpoint: ENDPOINT } });
  const r = await sm(creds).send(new GetSecretValueCommand({ SecretId: NAME }));
  eq(r.SecretString, VALUE, 'SecretString');
  eq((await ctl('stats')).requests.AssumeRoleWithWebIdentity, before + 1, 'one STS call');
});

await t('temporary credentials expire on the control clock: ExpiredTokenException', async () => {
  const st = new STSClient({ region: REGION, endpoint: ENDPOINT, maxAttempts: 1 });
  const { Credentials: C } = await st.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE, RoleSessionName: 'warden-check', WebIdentityToken: jwt(goodClaims()) }));
  const creds = { accessKeyId: C.AccessKeyId, secretAccessKey: C.SecretAccessKey, sessionToken: C.SessionToken };
  eq((await sm(creds).send(new GetSecretValueCommand({ SecretId: NAME }))).SecretString, VALUE, 'before');
  try {
    await sm({ ...creds, sessionToken: 'x' }).send(new GetSecretValueCommand({ SecretId: NAME }));
    throw new Error('no error');
  } catch (e) {
    eq(e.name, 'UnrecognizedClientException', 'wrong session token');
  }
  await ctl('clock', { advance_s: 3601 });
  try {
    await sm(creds).send(new GetSecretValueCommand({ SecretId: NAME }));
    throw new Error('no error');
  } catch (e) {
    eq(e.name, 'ExpiredTokenException', 'after');
  } finally {
    await ctl('reset', {});
  }
});

await t('IMDSv2: 401 without a token; client-secrets-manager reads with fromInstanceMetadata', async () => {
  const [s] = await call('GET', '/latest/meta-data/iam/security-credentials/', {}, '', IMDS_PORT, false);
  eq(s, 401, 'no token');
  const [s2] = await call('PUT', '/latest/api/token', {}, '', IMDS_PORT, false);
  eq(s2, 400, 'token without ttl');
  const before = (await ctl('stats')).requests;
  const creds = fromInstanceMetadata({ maxRetries: 0, timeout: 2000 });
  // the provider reads AWS_EC2_METADATA_SERVICE_ENDPOINT, set by the caller to the fake's IMDS port
  const r = await sm(creds).send(new GetSecretValueCommand({ SecretId: NAME }));
  eq(r.SecretString, VALUE, 'SecretString');
  const after = (await ctl('stats')).requests;
  if (after.imds_token <= before.imds_token || after.imds_credentials <= before.imds_credentials) throw new Error(JSON.stringify(after));
});

await t('faults: a 500 then a delay, counted per operation', async () => {
  await ctl('reset', {});
  await ctl('fault', { faults: [{ op: 'GetSecretValue', status: 500 }, { op: 'GetSecretValue', delay_ms: 300 }] });
  const c = sm({ accessKeyId: AKID, secretAccessKey: SECRET });
  try {
    await c.send(new GetSecretValueCommand({ SecretId: NAME }));
    throw new Error('no error');
  } catch (e) {
    eq(e.name, 'InternalServiceError', 'fault name');
    eq(e.$metadata.httpStatusCode, 500, 'fault status');
  }
  const t0 = Date.now();
  eq((await c.send(new GetSecretValueCommand({ SecretId: NAME }))).SecretString, VALUE, 'after delay');
  if (Date.now() - t0 < 280) throw new Error('no delay');
  eq((await ctl('stats')).requests.GetSecretValue, 2, 'count');
});

await t('faults: hang holds the call until the client gives up', async () => {
  await ctl('reset', {});
  await ctl('fault', { op: 'GetSecretValue', hang: true });
  const c = sm({ accessKeyId: AKID, secretAccessKey: SECRET });
  const t0 = Date.now();
  try {
    await c.send(new GetSecretValueCommand({ SecretId: NAME }), { abortSignal: AbortSignal.timeout(500) });
    throw new Error('no error');
  } catch (e) {
    if (Date.now() - t0 < 450) throw new Error(`gave up too soon: ${e.message}`);
  }
  eq((await ctl('stats')).requests.GetSecretValue, 1, 'the hung call is counted');
  await ctl('reset', {});
  eq((await c.send(new GetSecretValueCommand({ SecretId: NAME }))).SecretString, VALUE, 'answers again after reset');
  c.destroy();
});

await t('concurrent calls under a sticky delay: all counted, in flight together', async () => {
  await ctl('reset', {});
  await ctl('fault', { op: 'GetSecretValue', delay_ms: 200, sticky: true });
  const c = sm({ accessKeyId: AKID, secretAccessKey: SECRET });
  const rs = await Promise.all([1, 2, 3, 4, 5].map(() => c.send(new GetSecretValueCommand({ SecretId: NAME }))));
  eq(rs.every(r => r.SecretString === VALUE), true, 'every answer');
  const st = await ctl('stats');
  eq(st.requests.GetSecretValue, 5, 'count');
  eq(st.max_in_flight, 5, 'max in flight');
  eq((await ctl('state')).faults.length, 1, 'a sticky fault stays');
  await ctl('reset', {});
  c.destroy();
});

await t('the fake signer gives AWS test-suite vector get-vanilla its published signature', async () => {
  const { sigv4Signature } = await import('../fakes/fake_aws.mjs');
  const sig = sigv4Signature({ method: 'GET', path: '/', rawQuery: '', headers: { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z' }, body: '' },
    ['host', 'x-amz-date'], '20150830T123600Z', ['20150830', 'us-east-1', 'service'], 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY');
  eq(sig, '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31', 'signature');
});

await t('SigV4 rules: host unsigned, a date 6 minutes ahead, a token on static keys, an unsigned token are refused', async () => {
  const body = JSON.stringify({ SecretId: NAME });
  const [, , a] = await signedGsv(body, { unsigned: ['host'] });
  if (!/'host' must be a signed header/.test(a)) throw new Error(a);
  const [, , b] = await signedGsv(body, { date: new Date(Date.now() + 6 * 60 * 1000) });
  if (!/Signature not yet current/.test(b)) throw new Error(b);
  const [, , c] = await signedGsv(body, { creds: { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: 'tok' } });
  eq(typeOf(c), 'UnrecognizedClientException', 'token with static keys');
  const st = new STSClient({ region: REGION, endpoint: ENDPOINT, maxAttempts: 1 });
  const { Credentials: C } = await st.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE, RoleSessionName: 'warden-check', WebIdentityToken: jwt(goodClaims()) }));
  const temp = { accessKeyId: C.AccessKeyId, secretAccessKey: C.SecretAccessKey, sessionToken: C.SessionToken };
  const [ok200] = await signedGsv(body, { creds: temp });
  eq(ok200, 200, 'temporary credentials signed by smithy');
  const [, , d] = await signedGsv(body, { creds: temp, unsigned: ['x-amz-security-token'] });
  if (!/'x-amz-security-token' must be a signed header/.test(d)) throw new Error(d);
});

await t('Secrets Manager request rules: content type, operation, unknown field, stages', async () => {
  const [s1, , d1] = await signedGsv('{"SecretId":"x"}', { after: h => { h['content-type'] = 'application/json'; } });
  eq(`${s1} ${typeOf(d1)}`, '400 SerializationException', 'content type');
  const [, , d2] = await signedGsv(JSON.stringify({ SecretId: NAME, VersionStge: 'AWSCURRENT' }));
  eq(typeOf(d2), 'SerializationException', 'unknown field');
  const [, , d3] = await signedGsv(JSON.stringify({ SecretId: NAME, VersionStage: 'AWSPENDING' }));
  eq(typeOf(d3), 'ResourceNotFoundException', 'absent stage');
  if (!/staging label: AWSPENDING/.test(d3)) throw new Error(d3);
  const [, , d4] = await signedGsv(JSON.stringify({}));
  eq(typeOf(d4), 'ValidationException', 'no SecretId');
  const { secrets } = await ctl('state');
  const id = secrets.find(x => x.name === NAME).versions.find(v => v.stages.includes('AWSPREVIOUS'))?.id;
  if (id) {
    const [, , d5] = await signedGsv(JSON.stringify({ SecretId: NAME, VersionId: id, VersionStage: 'AWSCURRENT' }));
    eq(typeOf(d5), 'InvalidRequestException', 'VersionId and VersionStage disagree');
  }
  const signer = new SignatureV4({ credentials: { accessKeyId: AKID, secretAccessKey: SECRET }, region: REGION, service: 'secretsmanager', sha256: NodeSha256 });
  const r = await signer.sign({ method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: PORT, path: '/', query: {},
    headers: { host: `127.0.0.1:${PORT}`, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.ListSecrets' }, body: '{}' });
  const [, , d6] = await call('POST', '/', r.headers, '{}');
  eq(typeOf(d6), 'UnknownOperationException', 'other operation');
});

await t('STS request rules: session name, duration, version, missing token', async () => {
  const form = o => new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: ROLE,
    RoleSessionName: 'warden-check', WebIdentityToken: jwt(goodClaims()), ...o }).toString();
  const post = b => call('POST', '/', { 'content-type': 'application/x-www-form-urlencoded' }, b);
  const code = d => (/<Code>([^<]+)<\/Code>/.exec(d) || [])[1];
  const [s0, , d0] = await post(form({}));
  eq(s0, 200, `good form (${d0})`);
  eq(code((await post(form({ RoleSessionName: 'bad name!' })))[2]), 'ValidationError', 'session name');
  eq(code((await post(form({ DurationSeconds: '600' })))[2]), 'ValidationError', 'duration under 900');
  eq(code((await post(form({ DurationSeconds: '7200' })))[2]), 'ValidationError', 'duration over the role maximum');
  eq(code((await post(form({ Version: '2010-01-01' })))[2]), 'InvalidAction', 'version');
  eq(code((await post(form({ WebIdentityToken: '' })))[2]), 'ValidationError', 'missing token');
  eq(code((await post(form({ WebIdentityToken: 'not.a.jwt' })))[2]), 'InvalidIdentityToken', 'garbage token');
});

await t('IMDSv2 rules: token TTL bounds, a token expires on the control clock, an unknown role is 404', async () => {
  const imds = (m, p, h) => call(m, p, h, '', IMDS_PORT, false);
  eq((await imds('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '21601' }))[0], 400, 'ttl too long');
  eq((await imds('GET', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }))[0], 405, 'GET token');
  const [s, h, tok] = await imds('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' });
  eq(`${s} ${h['x-aws-ec2-metadata-token-ttl-seconds']}`, '200 60', 'token');
  const base = '/latest/meta-data/iam/security-credentials/';
  const [s1, , role] = await imds('GET', base, { 'x-aws-ec2-metadata-token': tok });
  eq(s1, 200, 'role list');
  const [s2, , cj] = await imds('GET', base + role, { 'x-aws-ec2-metadata-token': tok });
  const c = JSON.parse(cj);
  eq(`${s2} ${c.Code} ${c.Type}`, '200 Success AWS-HMAC', 'credentials');
  if (!c.AccessKeyId || !c.SecretAccessKey || !c.Token || !(Date.parse(c.Expiration) > Date.now())) throw new Error(cj);
  eq((await imds('GET', `${base}other-role`, { 'x-aws-ec2-metadata-token': tok }))[0], 404, 'other role');
  eq((await imds('GET', base, { 'x-aws-ec2-metadata-token': 'forged' }))[0], 401, 'forged token');
  await ctl('clock', { advance_s: 61 });
  eq((await imds('GET', base, { 'x-aws-ec2-metadata-token': tok }))[0], 401, 'expired token');
  await ctl('reset', {});
});

await t('control API: bad requests are 400, unknown calls 404', async () => {
  const raw = (p, b) => call('POST', `/_fake/${p}`, { 'content-type': 'application/json' }, b);
  eq((await raw('fault', '{"op":"Nope"}'))[0], 400, 'bad op');
  eq((await raw('fault', '{"op":"GetSecretValue","colour":1}'))[0], 400, 'bad key');
  eq((await raw('secret', '{"name":"x"}'))[0], 400, 'secret without value');
  eq((await raw('nothing', '{}'))[0], 404, 'unknown call');
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
