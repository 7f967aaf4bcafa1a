// Walks Claude Code's gateway sign-in protocol against a running gateway (the `claude gateway` oracle of
// tests/gateway/oracle.sh, or Warden) and prints every HTTP exchange as one JSON line, tokens redacted to their shape,
// so two gateways' transcripts can be compared. The browser step is played with plain HTTP against oidc-provider's
// dev login and consent pages. Usage: node tests/gateway/probe.mjs BASE_URL [--user alice] [--user2 bob]
//   node tests/gateway/probe.mjs BASE_URL --sign-in USER   one device-flow sign-in; prints the token answer unredacted
//   node tests/gateway/probe.mjs BASE_URL --record [--port 0]   a recording reverse proxy in front of BASE_URL: prints
//     {"port"} then one JSON line per request a client (Claude Code) makes, tokens redacted
//   node tests/gateway/probe.mjs BASE_URL --approve USER_CODE USER   plays the browser for a code a client shows
//   ... --sign-in USER --claude-home DIR   also writes DIR/.claude/.credentials.json as Claude Code's /login would
//     leave it, so `HOME=DIR claude -p` runs signed in to the gateway without the interactive screen
import * as fs from 'node:fs';
import * as http from 'node:http';
const args = process.argv.slice(2);
const base = (args[0] ?? process.env.GW_BASE_URL ?? '').replace(/\/$/, '');
if (!/^https?:\/\//.test(base)) {
  process.stderr.write('usage: node tests/gateway/probe.mjs BASE_URL [--user NAME] [--user2 NAME]\n');
  process.exit(2);
}
const opt = (name, dflt) => { const i = args.indexOf(name); return i > 0 ? args[i + 1] : dflt; };
const USER = opt('--user', 'alice');
const USER2 = opt('--user2', 'bob');
// What Claude Code sends on its sign-in requests (the protocol asks gateways to accept this form and no more).
const UA = 'claude-code/2.1.328';
const FORM = 'application/x-www-form-urlencoded';

// Headers worth comparing between gateways; everything else (Date, request ids, lengths) only adds noise.
const KEEP = ['content-type', 'cache-control', 'pragma', 'etag', 'vary', 'location', 'set-cookie', 'www-authenticate',
  'x-should-retry', 'retry-after', 'x-cc-gateway-version', 'content-security-policy', 'request-id',
  'x-content-type-options', 'x-frame-options', 'referrer-policy'];
const SECRET_KEYS = new Set(['access_token', 'refresh_token', 'id_token', 'device_code', 'code', 'state', 'token',
  'code_verifier', 'nonce', 'code_challenge']);

let failures = 0;
const checks = [];
function check(name, ok, detail) {
  checks.push({ check: name, ok: !!ok, ...(ok ? {} : { detail }) });
  if (!ok) failures++;
}

const b64json = (seg) => { try { return JSON.parse(Buffer.from(seg, 'base64url').toString('utf8')); } catch { return null; } };
const isJwt = (v) => typeof v === 'string' && /^[\w-]+\.[\w-]+\.[\w-]*$/.test(v) && b64json(v.split('.')[0]) !== null;

// A token becomes a description of its shape: a JWT its header and claims (times as deltas), anything else its length
// and alphabet, so the transcript shows formats without carrying a usable secret.
function shape(v) {
  if (typeof v !== 'string') return v;
  if (isJwt(v)) {
    const [h, p, s] = v.split('.');
    const claims = b64json(p) ?? {};
    const c = {};
    for (const [k, val] of Object.entries(claims)) {
      if ((k === 'exp' || k === 'nbf') && typeof claims.iat === 'number') c[k] = `iat+${val - claims.iat}s`;
      else if (k === 'iat') c[k] = '<unix seconds>';
      else if (k === 'jti' || k === 'sid') c[k] = `<${typeof val} len=${String(val).length}>`;
      else c[k] = val;
    }
    return { jwt: { header: b64json(h), claims: c, signature_bytes: Buffer.from(s, 'base64url').length } };
  }
  const alphabet = /^[A-Za-z0-9_-]+$/.test(v) ? 'base64url' : /^[0-9a-f]+$/.test(v) ? 'hex' : 'mixed';
  return `<opaque len=${v.length} ${alphabet}>`;
}

function redact(obj) {
  if (Array.isArray(obj)) return obj.map(redact);
  if (obj && typeof obj === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(obj)) out[k] = SECRET_KEYS.has(k) ? shape(v) : redact(v);
    return out;
  }
  return obj;
}

function redactUrl(u) {
  try {
    const url = new URL(u);
    for (const k of [...url.searchParams.keys()]) {
      if (SECRET_KEYS.has(k)) url.searchParams.set(k, `<${url.searchParams.get(k).length} chars>`);
    }
    return url.toString();
  } catch { return u; }
}

// Cookies by host name only, as browsers keep them: the IdP and the gateway share 127.0.0.1 on different ports.
const jar = new Map();
function storeCookies(url, res) {
  const host = new URL(url).hostname;
  const cookies = jar.get(host) ?? new Map();
  for (const line of res.headers.getSetCookie?.() ?? []) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || pair.slice(eq + 1) === '';
    if (expired) cookies.delete(name); else cookies.set(name, pair.slice(eq + 1));
  }
  jar.set(host, cookies);
}
const cookieHeader = (url) => [...(jar.get(new URL(url).hostname) ?? new Map())].map(([k, v]) => `${k}=${v}`).join('; ');

async function exchange(step, method, url, { headers = {}, form, json, body, browser = false, show = true } = {}) {
  const h = { ...headers };
  let payload = body;
  if (form) { h['content-type'] = FORM; payload = new URLSearchParams(form).toString(); }
  if (json) { h['content-type'] = 'application/json'; payload = JSON.stringify(json); }
  if (browser) { const c = cookieHeader(url); if (c) h.cookie = c; }
  const res = await fetch(url, { method, headers: h, body: payload, redirect: 'manual' });
  if (browser) storeCookies(url, res);
  const text = await res.text();
  let parsed = text;
  const ct = res.headers.get('content-type') ?? '';
  if (ct.includes('json') && text) { try { parsed = JSON.parse(text); } catch { /* keep text */ } }
  const respHeaders = {};
  for (const k of KEEP) {
    if (k === 'set-cookie') {
      const sc = res.headers.getSetCookie?.() ?? [];
      if (sc.length) respHeaders[k] = sc.map((l) => l.replace(/^([^=]+)=[^;]*/, (_m, n) => `${n}=<redacted>`));
    } else if (res.headers.has(k)) {
      respHeaders[k] = k === 'location' ? redactUrl(res.headers.get(k)) : res.headers.get(k);
    }
  }
  const reqShown = {};
  for (const [k, v] of Object.entries(h)) {
    if (k === 'authorization') reqShown[k] = v.replace(/^Bearer (.*)$/, (_m, t) => `Bearer ${JSON.stringify(shape(t))}`);
    else if (k === 'cookie') reqShown[k] = v.replace(/=[^;]*/g, '=<redacted>');
    else reqShown[k] = v;
  }
  const u = new URL(url);
  const line = {
    step, method, url: `${u.origin === new URL(base).origin ? '' : u.origin}${u.pathname}${redactUrl(url).replace(/^[^?]*/, '')}`,
    req_headers: reqShown,
    ...(form ? { req_form: redact(form) } : {}),
    ...(json ? { req_json: json } : {}),
    status: res.status,
    headers: respHeaders,
    body: typeof parsed === 'string'
      ? (ct.includes('html') ? `<html ${parsed.length} bytes>` : parsed.slice(0, 400))
      : redact(parsed),
  };
  if (show) process.stdout.write(JSON.stringify(line) + '\n');
  return { res, text, body: parsed, headers: res.headers };
}

const authz = (t) => ({ authorization: `Bearer ${t}`, 'user-agent': UA });
const formAction = (html) => /<form[^>]*action="([^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');

// Plays the browser: the gateway's verification page, the IdP's dev login and consent, back to the gateway's callback.
async function browserApprove(userCode, user, deny = false) {
  const page = `${base}/device?user_code=${encodeURIComponent(userCode)}`;
  await exchange('browser: verification page', 'GET', page, { browser: true, headers: { 'sec-fetch-site': 'none' } });
  if (deny) {
    return exchange('browser: deny the code', 'POST', `${base}/device/deny`, {
      browser: true, form: { user_code: userCode }, headers: { origin: base, 'sec-fetch-site': 'same-origin' },
    });
  }
  let r = await exchange('browser: submit the code', 'POST', `${base}/device`, {
    browser: true, form: { user_code: userCode }, headers: { origin: base, 'sec-fetch-site': 'same-origin' },
  });
  check(`browser: a pending code redirects to the IdP (${user})`, r.res.status === 302, r.res.status);
  let url = r.headers.get('location');
  for (let hop = 0; hop < 12 && url; hop++) {
    url = new URL(url, url.startsWith('http') ? undefined : base).toString();
    const atGateway = url.startsWith(`${base}/`);
    r = await exchange(atGateway ? 'browser: gateway callback' : 'browser: IdP', 'GET', url, { browser: true });
    if (r.res.status >= 300 && r.res.status < 400) {
      url = new URL(r.headers.get('location'), url).toString();
      continue;
    }
    if (atGateway) return r;
    const action = formAction(r.text);
    if (!action) return r;
    const prompt = /name="prompt" value="consent"/.test(r.text) ? 'consent' : 'login';
    const post = new URL(action, url).toString();
    r = await exchange(`browser: IdP ${prompt}`, 'POST', post, {
      browser: true, form: prompt === 'login' ? { prompt, login: user, password: 'any' } : { prompt },
    });
    url = r.headers.get('location') ? new URL(r.headers.get('location'), post).toString() : null;
  }
  return r;
}

async function signIn(user, label) {
  // A fresh browser per user: the IdP's session cookie would otherwise sign the second user in as the first.
  jar.clear();
  const da = await exchange(`${label}: device authorization`, 'POST', `${base}/oauth/device_authorization`, {
    form: { surface: 'claude_code' }, headers: { 'user-agent': UA },
  });
  check(`${label}: device authorization 200`, da.res.status === 200, da.res.status);
  const { device_code: dc, user_code: uc, interval } = da.body;
  check(`${label}: user_code is XXXX-XXXX of the RFC 8628 base-20 alphabet`, /^[BCDFGHJKLMNPQRSTVWXYZ]{4}-[BCDFGHJKLMNPQRSTVWXYZ]{4}$/.test(uc), uc);
  const grant = { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dc };
  const p1 = await exchange(`${label}: poll before approval`, 'POST', `${base}/oauth/token`, { form: grant, headers: { 'user-agent': UA } });
  check(`${label}: pending poll is 400 authorization_pending`, p1.res.status === 400 && p1.body.error === 'authorization_pending', p1.body);
  const p2 = await exchange(`${label}: poll again at once`, 'POST', `${base}/oauth/token`, { form: grant, headers: { 'user-agent': UA } });
  check(`${label}: a poll faster than interval is slow_down`, p2.body.error === 'slow_down', p2.body);
  await browserApprove(uc, user);
  await new Promise((r) => setTimeout(r, (interval ?? 5) * 1000));
  const tok = await exchange(`${label}: poll after approval`, 'POST', `${base}/oauth/token`, { form: grant, headers: { 'user-agent': UA } });
  check(`${label}: token 200 with access_token`, tok.res.status === 200 && tok.body.access_token, tok.body);
  const again = await exchange(`${label}: the device code a second time`, 'POST', `${base}/oauth/token`, { form: grant, headers: { 'user-agent': UA } });
  check(`${label}: a used device code is refused`, again.res.status >= 400, again.res.status);
  return tok.body;
}

async function main() {
  const md = await exchange('discovery', 'GET', `${base}/.well-known/oauth-authorization-server`, { headers: { 'user-agent': UA } });
  check('discovery: gateway_protocol_version present', md.body?.gateway_protocol_version !== undefined, md.body);
  await exchange('protocol document', 'GET', `${base}/protocol`, { show: false }).then((r) =>
    process.stdout.write(JSON.stringify({ step: 'protocol document', method: 'GET', url: '/protocol', status: r.res.status,
      headers: { 'content-type': r.headers.get('content-type') }, body: `<markdown ${r.text.length} bytes>` }) + '\n'));

  // Errors of the sign-in endpoints before anyone signs in.
  await exchange('token: unknown grant type', 'POST', `${base}/oauth/token`, { form: { grant_type: 'password' }, headers: { 'user-agent': UA } });
  await exchange('token: device grant without device_code', 'POST', `${base}/oauth/token`,
    { form: { grant_type: 'urn:ietf:params:oauth:grant-type:device_code' }, headers: { 'user-agent': UA } });
  await exchange('token: unknown device_code', 'POST', `${base}/oauth/token`,
    { form: { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'x'.repeat(43) }, headers: { 'user-agent': UA } });
  await exchange('token: JSON body instead of a form', 'POST', `${base}/oauth/token`,
    { json: { grant_type: 'refresh_token', refresh_token: 'x' }, headers: { 'user-agent': UA } });
  await exchange('token: GET', 'GET', `${base}/oauth/token`, { headers: { 'user-agent': UA } });
  await exchange('verification page: cross-site POST', 'POST', `${base}/device`, {
    form: { user_code: 'BCDF-GHJK' }, headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
  });
  await exchange('verification page: unknown code', 'POST', `${base}/device`, {
    browser: true, form: { user_code: 'BCDF-GHJK' }, headers: { origin: base, 'sec-fetch-site': 'same-origin' },
  });
  await exchange('callback: without code or state', 'GET', `${base}/oauth/callback`, {});

  // Bearer endpoints without a (valid) bearer.
  await exchange('models without bearer', 'GET', `${base}/v1/models`, { headers: { 'user-agent': UA } });
  await exchange('managed settings with a bad bearer', 'GET', `${base}/managed/settings`, { headers: authz('not-a-token') });

  const t = await signIn(USER, USER);
  const at = t.access_token;

  const ms = await exchange('managed settings', 'GET', `${base}/managed/settings`, { headers: authz(at) });
  check('managed settings 200 with ETag', ms.res.status === 200 && ms.headers.get('etag'), ms.res.status);
  const etag = ms.headers.get('etag');
  const ms304 = await exchange('managed settings, If-None-Match = ETag', 'GET', `${base}/managed/settings`,
    { headers: { ...authz(at), 'if-none-match': etag } });
  check('managed settings 304 on a matching If-None-Match', ms304.res.status === 304, ms304.res.status);
  await exchange('managed settings, stale If-None-Match', 'GET', `${base}/managed/settings`,
    { headers: { ...authz(at), 'if-none-match': '"sha256:0000"' } });
  await exchange('managed settings, If-None-Match *', 'GET', `${base}/managed/settings`,
    { headers: { ...authz(at), 'if-none-match': '*' } });
  if (ms.body?.settings) {
    const { createHash } = await import('node:crypto');
    const canon = (v) => Array.isArray(v) ? `[${v.map(canon).join(',')}]`
      : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`
        : JSON.stringify(v);
    const sum = `sha256:${createHash('sha256').update(canon(ms.body.settings)).digest('hex')}`;
    check('checksum = sha256: + hex SHA-256 of the settings with sorted keys, no white space', ms.body.checksum === sum,
      { served: ms.body.checksum, computed: sum });
    check('ETag is the checksum in quotes', etag === `"${ms.body.checksum}"`, etag);
  }

  const models = await exchange('models', 'GET', `${base}/v1/models`, { headers: authz(at) });
  check('models 200', models.res.status === 200, models.res.status);
  await exchange('messages', 'POST', `${base}/v1/messages`, {
    headers: { ...authz(at), 'anthropic-version': '2023-06-01' },
    json: { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'Say hi' }] },
  });
  await exchange('messages: not JSON', 'POST', `${base}/v1/messages`,
    { headers: { ...authz(at), 'content-type': 'application/json' }, body: 'not json' });
  await exchange('usage', 'GET', `${base}/api/oauth/usage`, { headers: authz(at) });
  await exchange('bootstrap (Claude Desktop)', 'GET', `${base}/user/bootstrap`, { headers: authz(at) });
  for (const sig of ['metrics', 'logs', 'traces']) {
    await exchange(`otlp ${sig}`, 'POST', `${base}/v1/${sig}`, {
      headers: authz(at), json: sig === 'metrics' ? { resourceMetrics: [] } : sig === 'logs' ? { resourceLogs: [] } : { resourceSpans: [] },
    });
  }
  await exchange('otlp without bearer', 'POST', `${base}/v1/metrics`, { json: { resourceMetrics: [] } });

  // Refresh: a new access token, the IdP's rotated refresh token handed on, the consumed one refused.
  const r1 = await exchange('refresh', 'POST', `${base}/oauth/token`,
    { form: { grant_type: 'refresh_token', refresh_token: t.refresh_token }, headers: { 'user-agent': UA } });
  check('refresh 200', r1.res.status === 200 && r1.body.access_token, r1.body);
  check('refresh rotates the refresh token (IdP rotates)', r1.body.refresh_token && r1.body.refresh_token !== t.refresh_token, 'same');
  const r2 = await exchange('refresh with the consumed refresh token', 'POST', `${base}/oauth/token`,
    { form: { grant_type: 'refresh_token', refresh_token: t.refresh_token }, headers: { 'user-agent': UA } });
  check('a consumed refresh token is 401 invalid_grant', r2.res.status === 401 && r2.body.error === 'invalid_grant', r2.body);
  await exchange('refresh with garbage', 'POST', `${base}/oauth/token`,
    { form: { grant_type: 'refresh_token', refresh_token: 'garbage' }, headers: { 'user-agent': UA } });
  await exchange('refresh without refresh_token', 'POST', `${base}/oauth/token`,
    { form: { grant_type: 'refresh_token' }, headers: { 'user-agent': UA } });
  const old = await exchange('old access token after refresh', 'GET', `${base}/v1/models`, { headers: authz(at) });
  check('the previous access token still works until it expires (stateless)', old.res.status === 200, old.res.status);
  if (r1.body.access_token) {
    await exchange('managed settings with the refreshed token', 'GET', `${base}/managed/settings`,
      { headers: { ...authz(r1.body.access_token), 'if-none-match': etag } });
  }

  // A second user in another group gets another policy; a denied code ends the device flow.
  const t2 = await signIn(USER2, USER2);
  const ms2 = await exchange(`managed settings for ${USER2}`, 'GET', `${base}/managed/settings`, { headers: authz(t2.access_token) });
  check('another group gets another policy', ms2.body?.checksum !== ms.body?.checksum, ms2.body);
  const d = await exchange('deny: device authorization', 'POST', `${base}/oauth/device_authorization`,
    { form: { surface: 'claude_code' }, headers: { 'user-agent': UA } });
  await browserApprove(d.body.user_code, USER, true);
  const dp = await exchange('deny: poll', 'POST', `${base}/oauth/token`,
    { form: { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: d.body.device_code }, headers: { 'user-agent': UA } });
  check('a denied code polls access_denied', dp.body?.error === 'access_denied', dp.body);

  for (const c of checks) process.stdout.write(JSON.stringify(c) + '\n');
  process.stdout.write(JSON.stringify({ summary: { checks: checks.length, failed: failures } }) + '\n');
  process.exit(failures ? 1 : 0);
}

// Forwards every request to the gateway unchanged and logs what the client asked and what it got.
async function record() {
  const port = Number(opt('--port', '0'));
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const headers = { ...req.headers };
    delete headers.host; delete headers.connection; delete headers['content-length'];
    let up;
    try {
      up = await fetch(`${base}${req.url}`, { method: req.method, headers, body: body.length ? body : undefined, redirect: 'manual' });
    } catch (e) {
      res.writeHead(502).end(String(e));
      return;
    }
    const out = Buffer.from(await up.arrayBuffer());
    const reqShown = {};
    for (const [k, v] of Object.entries(req.headers)) {
      reqShown[k] = k === 'authorization' ? v.replace(/^Bearer (.*)$/, (_m, t) => `Bearer ${JSON.stringify(shape(t))}`) : v;
    }
    let reqBody = body.toString('utf8');
    if ((req.headers['content-type'] ?? '').includes('x-www-form-urlencoded')) reqBody = redact(Object.fromEntries(new URLSearchParams(reqBody)));
    else if ((req.headers['content-type'] ?? '').includes('json')) { try { reqBody = redact(JSON.parse(reqBody)); } catch { /* text */ } }
    else if (body.length) reqBody = `<${req.headers['content-type'] ?? 'body'} ${body.length} bytes>`;
    let respBody = out.toString('utf8');
    try { respBody = redact(JSON.parse(respBody)); } catch { if (out.length > 400) respBody = `<${out.length} bytes>`; }
    const respHeaders = {};
    for (const k of KEEP) if (up.headers.has(k)) respHeaders[k] = up.headers.get(k);
    process.stdout.write(JSON.stringify({ at: new Date().toISOString(), method: req.method, url: req.url, req_headers: reqShown,
      req_body: reqBody, status: up.status, headers: respHeaders, body: respBody }) + '\n');
    const fwd = {};
    up.headers.forEach((v, k) => { if (!['content-encoding', 'content-length', 'transfer-encoding', 'connection'].includes(k)) fwd[k] = v; });
    res.writeHead(up.status, fwd).end(out);
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n'));
}

const mode = args.includes('--record') ? record
  : args.includes('--sign-in') ? async () => {
    const t = await signIn(opt('--sign-in', 'alice'), 'sign-in');
    process.stderr.write(JSON.stringify(checks) + '\n');
    const home = opt('--claude-home');
    if (home && t.access_token) {
      // The shape Claude Code 2.1.328 stores after /login (key enterpriseGateway), plus the trust it records for a
      // loopback http gateway; see docs/claude-gateway-protocol.md.
      fs.mkdirSync(`${home}/.claude`, { recursive: true });
      const cred = {
        gatewayTrust: { [new URL(base).hostname]: 'http-loopback' },
        enterpriseGateway: {
          url: base, jwt: t.access_token, expiresAt: Date.now() + t.expires_in * 1000, tokenEndpoint: `${base}/oauth/token`,
          ...(t.refresh_token ? { idpRefreshToken: t.refresh_token } : {}), vouchedAtLogin: false,
        },
      };
      fs.writeFileSync(`${home}/.claude/.credentials.json`, JSON.stringify(cred), { mode: 0o600 });
    }
    process.stdout.write(JSON.stringify({ token: t }) + '\n');
  }
    : args.includes('--approve') ? async () => {
      const i = args.indexOf('--approve');
      await browserApprove(args[i + 1], args[i + 2] ?? 'alice');
    } : main;
mode().catch((e) => { process.stderr.write(`probe.mjs: ${e.stack ?? e}\n`); process.exit(1); });
