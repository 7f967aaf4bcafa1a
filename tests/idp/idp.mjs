// A real OpenID Connect provider (oidc-provider from npm) on loopback, for Warden's OIDC tests: discovery, JWKS,
// client_credentials JWT access tokens (RFC 9068), device flow and authorization code + PKCE, and /_test/ endpoints
// that set extra claims, rotate and retire keys, hand out the private keys and make the JWKS endpoint hang.
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { Provider } from 'oidc-provider';

function parseArgs(argv) {
  const out = { port: 0, path: '/oauth2/default' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a === '--path') out.path = argv[++i];
    else {
      process.stderr.write(`idp.mjs: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
    process.stderr.write('idp.mjs: --port must be 0..65535\n');
    process.exit(2);
  }
  // The issuer's path is kept without a trailing slash so that `${issuer}/.well-known/...` is the discovery URL.
  out.path = out.path.replace(/\/+$/, '');
  if (out.path !== '' && !out.path.startsWith('/')) out.path = `/${out.path}`;
  return out;
}

const args = parseArgs(process.argv.slice(2));

// The kid is the RFC 7638 thumbprint, so it is stable for a key and distinct between keys.
function thumbprint(jwk) {
  const members = jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function newKey(alg) {
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg, use: 'sig' };
}

// Newest first: oidc-provider picks the first matching key for ID tokens, and access tokens name the kid.
let keys = [newKey('RS256'), newKey('ES256')];
let extraClaims = {};
// Who the next interactive sign-in (authorization code, device flow) is, and whether that user refuses.
let loginAs = { sub: 'test-user', deny: false };
// Interaction cookies are signed with this; it outlives the provider instances a key rotation builds.
const COOKIE_KEY = crypto.randomBytes(32).toString('base64url');
let jwksHung = false;
const hungResponses = new Set();

const RESOURCE_SCOPE = 'warden openid email profile groups offline_access';
const SIGNING_ALG_BY_CLIENT = { 'warden-test': 'RS256', 'warden-test-es': 'ES256', 'warden-cli': 'RS256' };

function signingKid(alg) {
  const k = keys.find((key) => key.alg === alg);
  return k?.kid;
}

function providerConfig() {
  return {
    jwks: { keys: keys.map((k) => ({ ...k })) },
    clients: [
      {
        client_id: 'warden-test',
        client_secret: 'warden-test-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: RESOURCE_SCOPE,
      },
      {
        client_id: 'warden-test-es',
        client_secret: 'warden-test-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: RESOURCE_SCOPE,
      },
      {
        client_id: 'warden-cli',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
        scope: RESOURCE_SCOPE,
      },
    ],
    // Client secrets may come in the body as well as in Basic, as most IdPs allow.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    scopes: ['openid', 'offline_access', 'warden', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // The login page of the dev interactions is replaced by an automatic one (autoInteraction below).
    interactions: { url: (_ctx, interaction) => `${args.path}/interaction/${interaction.uid}` },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: `${sub}@example.test`, email_verified: true, name: sub, ...extraClaims }),
    }),
    features: {
      devInteractions: { enabled: false },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Warden wants JWT access tokens: a request that names no resource still gets one for api://warden.
        defaultResource: async () => 'api://warden',
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator, client) => {
          const alg = SIGNING_ALG_BY_CLIENT[client.clientId] ?? 'RS256';
          return {
            scope: RESOURCE_SCOPE,
            audience: resourceIndicator,
            accessTokenTTL: 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg, kid: signingKid(alg) } },
          };
        },
      },
    },
    extraTokenClaims: async () => ({ ...extraClaims }),
    pkce: { required: () => true },
    ttl: { AccessToken: 3600, ClientCredentials: 3600, DeviceCode: 600, IdToken: 3600, RefreshToken: 86400 },
    cookies: { keys: [COOKIE_KEY] },
  };
}

let provider;
let providerCallback;
let issuer;

// oidc-provider takes its keys at construction: a key change builds a new instance. Its memory adapter keeps its
// storage per module, so device codes, grants and sessions survive the swap.
function buildProvider() {
  provider = new Provider(issuer, providerConfig());
  provider.proxy = false;
  // The reasons oidc-provider keeps out of its answers (error_detail), on stderr for whoever debugs a test.
  provider.on('server_error', (_ctx, err) => process.stderr.write(`idp: server_error: ${err?.stack ?? err}\n`));
  if (process.env.WD_IDP_DEBUG) {
    for (const ev of ['grant.error', 'authorization.error', 'device_authorization.error', 'introspection.error']) {
      provider.on(ev, (_ctx, err) => process.stderr.write(`idp: ${ev}: ${err?.error_detail ?? err?.message ?? err}\n`));
    }
  }
  providerCallback = provider.callback();
}

function publicJwk(k) {
  if (k.kty === 'RSA') return { kty: k.kty, kid: k.kid, alg: k.alg, use: k.use, n: k.n, e: k.e };
  return { kty: k.kty, kid: k.kid, alg: k.alg, use: k.use, crv: k.crv, x: k.x, y: k.y };
}

// A headless browser login: the interaction signs in as loginAs and consents to everything asked, or refuses.
async function autoInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (loginAs.deny) {
    result = { error: 'access_denied', error_description: 'the test user refused' };
  } else if (prompt.name === 'login') {
    result = { login: { accountId: loginAs.sub } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: prompt.name !== 'login' });
}

// Approves (or refuses) a pending device code as its user would at the verification page, without the pages.
async function approveDevice(userCode, sub, deny) {
  const code = await provider.DeviceCode.findByUserCode(userCode.toUpperCase().replace(/\W/g, ''));
  if (!code) return { status: 404, body: { error: 'no pending device code with that user_code' } };
  if (code.accountId || code.error) return { status: 409, body: { error: 'device code already decided' } };
  if (deny) {
    Object.assign(code, { error: 'access_denied', errorDescription: 'the test user refused' });
    await code.save();
    return { status: 200, body: { denied: true } };
  }
  const requested = new Set((code.params.scope ?? 'openid').split(' ').filter(Boolean));
  const oidcScopes = [...requested].filter((x) => x !== 'warden');
  const resource = code.params.resource ?? 'api://warden';
  const grant = new provider.Grant({ accountId: sub, clientId: code.clientId });
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
  grant.addResourceScope(resource, [...requested].join(' '));
  Object.assign(code, {
    accountId: sub,
    authTime: Math.floor(Date.now() / 1000),
    grantId: await grant.save(),
    scope: [...requested].join(' '),
    resource,
  });
  await code.save();
  return { status: 200, body: { approved: true, sub } };
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isLoopback(addr) {
  return addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1';
}

async function handleTest(req, res, route) {
  if (!isLoopback(req.socket.remoteAddress)) {
    sendJson(res, 403, { error: 'loopback only' });
    return;
  }
  const method = req.method;
  if (method === 'GET' && route === '/keys') {
    sendJson(res, 200, { keys: keys.map((k) => ({ ...k })) });
    return;
  }
  if (method === 'GET' && route === '/claims') {
    sendJson(res, 200, extraClaims);
    return;
  }
  if (method !== 'POST') {
    sendJson(res, 405, { error: 'method not allowed' });
    return;
  }
  const text = await readBody(req);
  switch (route) {
    case '/claims': {
      let obj;
      try {
        obj = text.trim() === '' ? {} : JSON.parse(text);
      } catch {
        sendJson(res, 400, { error: 'body is not JSON' });
        return;
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        sendJson(res, 400, { error: 'body must be a JSON object' });
        return;
      }
      extraClaims = obj;
      sendJson(res, 200, { claims: extraClaims });
      return;
    }
    case '/rotate': {
      const k = newKey('RS256');
      keys = [k, ...keys];
      buildProvider();
      sendJson(res, 200, { kid: k.kid, kids: keys.map((x) => x.kid) });
      return;
    }
    case '/retire': {
      // The newest RSA key stays, older RSA keys go; the ES256 key stays so the ES256 client keeps working.
      const newestRsa = keys.find((x) => x.kty === 'RSA');
      keys = keys.filter((x) => x.kty !== 'RSA' || x === newestRsa);
      buildProvider();
      sendJson(res, 200, { kids: keys.map((x) => x.kid) });
      return;
    }
    case '/login': {
      let obj;
      try {
        obj = JSON.parse(text);
      } catch {
        obj = null;
      }
      if (obj === null || typeof obj !== 'object' || (obj.sub !== undefined && typeof obj.sub !== 'string')) {
        sendJson(res, 400, { error: 'body must be {"sub": string, "deny": bool}' });
        return;
      }
      loginAs = { sub: obj.sub ?? 'test-user', deny: obj.deny === true };
      sendJson(res, 200, loginAs);
      return;
    }
    case '/approve-device': {
      let obj;
      try {
        obj = JSON.parse(text);
      } catch {
        obj = null;
      }
      if (obj === null || typeof obj !== 'object' || typeof obj.user_code !== 'string') {
        sendJson(res, 400, { error: 'body must be {"user_code": string, "sub"?: string, "deny"?: bool}' });
        return;
      }
      const r = await approveDevice(obj.user_code, typeof obj.sub === 'string' ? obj.sub : loginAs.sub, obj.deny === true);
      sendJson(res, r.status, r.body);
      return;
    }
    case '/hang-jwks':
      jwksHung = true;
      sendJson(res, 200, { hung: true });
      return;
    case '/unhang': {
      jwksHung = false;
      // Requests held while hung get their answer now, so a client that waited long enough still succeeds.
      const held = [...hungResponses];
      hungResponses.clear();
      for (const r of held) if (!r.destroyed) sendJson(r, 200, { keys: keys.map(publicJwk) });
      sendJson(res, 200, { hung: false, released: held.length });
      return;
    }
    default:
      sendJson(res, 404, { error: 'no such test endpoint' });
  }
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname.startsWith('/_test/')) {
    handleTest(req, res, url.pathname.slice('/_test'.length)).catch((err) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(err?.message ?? err) });
    });
    return;
  }
  const prefix = args.path;
  if (prefix !== '' && url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) {
    sendJson(res, 404, { error: 'not under the issuer path' });
    return;
  }
  if (jwksHung && url.pathname === `${prefix}/jwks`) {
    // Accept and read the request, then say nothing: Warden's fetch must time out by itself.
    hungResponses.add(res);
    res.on('close', () => hungResponses.delete(res));
    return;
  }
  // Mounted under the issuer's path: oidc-provider derives its mount point from originalUrl versus url.
  req.originalUrl = req.url;
  req.url = req.url.slice(prefix.length) || '/';
  if (req.method === 'GET' && url.pathname.startsWith(`${prefix}/interaction/`)) {
    autoInteraction(req, res).catch((err) => {
      if (!res.headersSent) sendJson(res, 400, { error: 'interaction failed', detail: String(err?.message ?? err) });
    });
    return;
  }
  providerCallback(req, res);
});

server.listen(args.port, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}${args.path}`;
  buildProvider();
  process.stdout.write(`${JSON.stringify({
    port,
    issuer,
    jwks_uri: `${issuer}/jwks`,
    token_endpoint: `${issuer}/token`,
    device_authorization_endpoint: `${issuer}/device/auth`,
    authorization_endpoint: `${issuer}/auth`,
  })}\n`);
});

function shutdown() {
  for (const r of hungResponses) r.destroy();
  hungResponses.clear();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // A connection that will not close must not keep the process alive past its owner's wish.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
