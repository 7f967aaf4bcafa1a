#!/usr/bin/env node
// Fake HashiCorp Vault for Warden's secret backends: KV v1/v2 reads, token/AppRole/Kubernetes auth, token TTLs
// on a clock tests can advance, namespaces, rotation and misbehaviour on command. Node built-ins only.
// See tests/fakes/README.md (fake_vault.mjs), proven with python3-hvac by tests/integration/test_fake_vault.sh.
//
//   node tests/fakes/fake_vault.mjs --port 0 [--tls-cert C --tls-key K] [--config F] [--k8s-jwks F]
//        [--root-token T] [--verbose]
//
// Prints one line {"port":N} on stdout once listening on 127.0.0.1; exits on SIGTERM/SIGINT.

import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import {
  argHelpers,
  countStatus,
  delay,
  fakeHandler,
  parseCommandLine,
  readBody,
  rejectBadClients,
  runIfMain,
  serve,
  verboseLog,
  writeJson,
} from './fake_http.mjs';

const USAGE = `usage: node fake_vault.mjs --port N [--tls-cert FILE --tls-key FILE] [--config FILE]
       [--k8s-jwks FILE] [--root-token T] [--verbose]`;

// KV v1 reads carry this lease_duration (768h, Vault's default max lease TTL) as a refresh hint.
const KV1_LEASE_S = 2764800;
const DEFAULT_K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export function parseArgs(argv) {
  const o = { port: 0, tlsCert: null, tlsKey: null, config: null, k8sJwks: null, rootToken: 'root', verbose: false };
  const { need, int } = argHelpers(argv);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--port': o.port = int(need(i, a), a); i++; break;
      case '--tls-cert': o.tlsCert = need(i, a); i++; break;
      case '--tls-key': o.tlsKey = need(i, a); i++; break;
      case '--config': o.config = need(i, a); i++; break;
      case '--k8s-jwks': o.k8sJwks = need(i, a); i++; break;
      case '--root-token': o.rootToken = need(i, a); i++; break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': throw new Error('help');
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!!o.tlsCert !== !!o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// State

const S = { opts: {}, clockOffset: 0 };
const log = verboseLog('fake_vault', S);
const now = () => Math.floor(Date.now() / 1000) + S.clockOffset;
const iso = t => new Date(t * 1000).toISOString();
const rand = n => {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const b = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += abc[b[i] % abc.length];
  return s;
};
const normNs = ns => (ns || '').replace(/^\/+|\/+$/g, '');

function freshStats() {
  return { total: 0, paths: {}, by_status: {}, logins: { approle: 0, kubernetes: 0 }, renewals: 0, faults_served: 0 };
}

function resetState() {
  S.namespaces = new Set(['']);
  S.mounts = new Map(); // "ns\0mount" -> {version}
  S.secrets = new Map(); // "ns\0mount\0path" -> {versions: [{data, created}]}
  S.tokens = new Map(); // id -> token
  S.approle = new Map(); // "ns\0role" -> role
  S.k8sRoles = new Map(); // "ns\0role" -> role
  S.authMounts = new Map(); // "ns\0path" -> "approle" | "kubernetes", besides the default paths
  S.k8sIssuer = DEFAULT_K8S_ISSUER;
  S.k8sKeys = [];
  S.fault = null;
  S.stats = freshStats();
  addMount('', 'secret', 2);
  addToken({ id: S.opts.rootToken, ttl: 0, renewable: false, policies: ['root'] });
}

function addMount(ns, path, version) {
  if (version !== 1 && version !== 2) throw new Error(`mount ${path}: version must be 1 or 2`);
  S.namespaces.add(ns);
  S.mounts.set(`${ns}\0${path}`, { version });
}

function addToken(t) {
  const issued = now();
  const ttl = t.ttl ?? 3600;
  const tok = {
    id: t.id || `hvs.${rand(24)}`,
    accessor: rand(24),
    namespace: normNs(t.namespace),
    policies: t.policies || ['default'],
    paths: t.paths || null,
    renewable: t.renewable ?? ttl > 0,
    creation_ttl: ttl,
    explicit_max_ttl: t.max_ttl || 0,
    issue_time: issued,
    expire: ttl > 0 ? issued + ttl : 0,
    display_name: t.display_name || 'token',
    path: t.path || 'auth/token/create',
    meta: t.meta || null,
  };
  if (tok.policies.includes('root') && ttl === 0) Object.assign(tok, { path: 'auth/token/root', display_name: 'root' });
  S.tokens.set(tok.id, tok);
  return tok;
}

function putSecret(ns, mount, path, data) {
  ns = normNs(ns);
  if (!S.mounts.has(`${ns}\0${mount}`)) throw new Error(`no mount ${mount} in namespace "${ns}"`);
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error('data must be a JSON object');
  const k = `${ns}\0${mount}\0${path}`;
  const e = S.secrets.get(k) || { versions: [] };
  e.versions.push({ data, created: now() });
  S.secrets.set(k, e);
  return e.versions.length;
}

function setK8sKeys(doc) {
  // a JWKS ({"keys":[...]}), a single JWK, or {"pem": "..."} / a PEM text
  const keys = [];
  if (typeof doc === 'string') keys.push({ kid: null, key: crypto.createPublicKey(doc) });
  else if (doc && doc.pem) keys.push({ kid: null, key: crypto.createPublicKey(doc.pem) });
  else for (const j of (doc && doc.keys) || [doc]) keys.push({ kid: j.kid || null, key: crypto.createPublicKey({ key: j, format: 'jwk' }) });
  S.k8sKeys = keys;
}

// The setup document (--config, POST /_fake/setup) adds to the state; see README for its shape.
function applySetup(c) {
  if (!c || typeof c !== 'object') throw new Error('setup must be a JSON object');
  for (const ns of c.namespaces || []) S.namespaces.add(normNs(ns));
  for (const m of c.mounts || []) addMount(normNs(m.namespace), m.path, m.version ?? 2);
  for (const a of c.auth_mounts || []) {
    if (!a.path || (a.type !== 'approle' && a.type !== 'kubernetes')) throw new Error('auth_mounts entries need a path and a type approle or kubernetes');
    S.authMounts.set(`${normNs(a.namespace)}\0${a.path}`, a.type);
  }
  for (const s of c.secrets || []) putSecret(s.namespace, s.mount, s.path, s.data);
  for (const t of c.tokens || []) addToken(t);
  for (const r of c.approle || []) {
    if (!r.role_name || !r.role_id) throw new Error('approle entries need role_name and role_id');
    S.approle.set(`${normNs(r.namespace)}\0${r.role_name}`, { ...r, secret_ids: r.secret_ids || (r.secret_id ? [r.secret_id] : []) });
  }
  if (c.kubernetes) {
    const k = c.kubernetes;
    if (k.issuer) S.k8sIssuer = k.issuer;
    if (k.jwks) setK8sKeys(k.jwks);
    for (const r of k.roles || []) {
      if (!r.name) throw new Error('kubernetes roles need a name');
      S.k8sRoles.set(`${normNs(r.namespace)}\0${r.name}`, r);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Vault's answers

class VaultError extends Error {
  constructor(code, errors) {
    super(errors.join('; ') || String(code));
    this.code = code;
    this.errors = errors;
  }
}
const denied = () => new VaultError(403, ['permission denied']);
const noRoute = p => new VaultError(404, [`no handler for route "${p}". route entry not found.`]);

function send(res, code, obj) {
  countStatus(S.stats.by_status, code);
  writeJson(res, code, obj, 'application/json', { 'cache-control': 'no-store' });
}

function envelope(extra) {
  return {
    request_id: crypto.randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: null,
    wrap_info: null,
    warnings: null,
    auth: null,
    ...extra,
  };
}

function ttlLeft(t) {
  return t.expire ? Math.max(0, t.expire - now()) : 0;
}

function authBlock(t) {
  return {
    client_token: t.id,
    accessor: t.accessor,
    policies: t.policies,
    token_policies: t.policies,
    metadata: t.meta,
    lease_duration: ttlLeft(t),
    renewable: t.renewable,
    entity_id: '',
    token_type: 'service',
    orphan: true,
    mfa_requirement: null,
    num_uses: 0,
  };
}

// The token of the request, valid in the request's namespace (a token works in its namespace and below it).
function tokenFor(req, ns) {
  const id = req.headers['x-vault-token'] || (/^Bearer (.+)$/i.exec(req.headers.authorization || '') || [])[1];
  if (!id) throw denied();
  const t = S.tokens.get(id);
  if (!t) throw denied();
  if (t.expire && now() >= t.expire) {
    S.tokens.delete(id);
    throw denied();
  }
  if (t.namespace && ns !== t.namespace && !ns.startsWith(`${t.namespace}/`)) throw denied();
  return t;
}

function allowed(t, logicalPath) {
  if (!t.paths) return true;
  return t.paths.some(p => (p.endsWith('*') ? logicalPath.startsWith(p.slice(0, -1)) : logicalPath === p));
}

async function jsonBody(req) {
  const raw = await readBody(req, { limit: 1 << 20, tooLarge: () => new VaultError(413, ['request body too large']) });
  if (raw.trim() === '') return {};
  try {
    const v = JSON.parse(raw);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (e) {
    throw new VaultError(400, [`failed to parse JSON input: ${e.message}`]);
  }
}

function lookupSelf(t) {
  return {
    accessor: t.accessor,
    creation_time: t.issue_time,
    creation_ttl: t.creation_ttl,
    display_name: t.display_name,
    entity_id: '',
    expire_time: t.expire ? iso(t.expire) : null,
    explicit_max_ttl: t.explicit_max_ttl,
    id: t.id,
    issue_time: iso(t.issue_time),
    meta: t.meta,
    num_uses: 0,
    orphan: true,
    path: t.path,
    policies: t.policies,
    renewable: t.renewable,
    ttl: ttlLeft(t),
    type: 'service',
    ...(t.namespace ? { namespace_path: `${t.namespace}/` } : {}),
  };
}

// "1h", "30m", "90s", "90" or 90 -> seconds
function durationS(v) {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  const m = /^(\d+)([smh]?)$/.exec(String(v));
  if (!m) throw new VaultError(400, [`error converting input ${JSON.stringify(v)} for field "increment": invalid duration`]);
  return parseInt(m[1], 10) * ({ '': 1, s: 1, m: 60, h: 3600 }[m[2]]);
}

function renewSelf(t, body) {
  if (!t.renewable) throw new VaultError(400, ['lease is not renewable']);
  let inc = body.increment !== undefined ? durationS(body.increment) : t.creation_ttl;
  if (inc === 0) inc = t.creation_ttl;
  let exp = now() + inc;
  if (t.explicit_max_ttl) exp = Math.min(exp, t.issue_time + t.explicit_max_ttl);
  t.expire = exp;
  S.stats.renewals++;
  return envelope({ auth: authBlock(t) });
}

function approleLogin(ns, body) {
  if (!body.role_id) throw new VaultError(400, ['missing role_id']);
  let role = null;
  for (const [k, r] of S.approle) if (k.startsWith(`${ns}\0`) && r.role_id === body.role_id) role = r;
  if (!role) throw new VaultError(400, ['invalid role or secret ID']);
  if ((role.bind_secret_id ?? true) && !body.secret_id) throw new VaultError(400, ['missing secret_id']);
  if ((role.bind_secret_id ?? true) && !role.secret_ids.includes(body.secret_id))
    throw new VaultError(400, ['invalid role or secret ID']);
  S.stats.logins.approle++;
  const t = addToken({
    ttl: role.token_ttl ?? 3600,
    max_ttl: role.token_max_ttl || 0,
    policies: role.policies || ['default'],
    paths: role.paths || null,
    namespace: ns,
    display_name: 'approle',
    path: 'auth/approle/login',
    meta: { role_name: role.role_name },
  });
  return envelope({ auth: authBlock(t) });
}

const b64json = s => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

// Checks a service-account JWT: RS256 only, signed by a configured key, issuer, times on the fake clock.
function verifyJwt(jwt) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3 || !parts.every(p => /^[A-Za-z0-9_-]+$/.test(p))) throw denied();
  let header, claims;
  try {
    header = b64json(parts[0]);
    claims = b64json(parts[1]);
  } catch {
    throw denied();
  }
  if (header.alg !== 'RS256') throw denied();
  // RSA keys only: an EC key would otherwise accept an ES256 signature under an "RS256" header
  const keys = S.k8sKeys.filter(k => k.key.asymmetricKeyType === 'rsa' && (!header.kid || !k.kid || k.kid === header.kid));
  const input = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], 'base64url');
  if (!keys.some(k => crypto.verify('sha256', input, k.key, sig))) throw denied();
  if (claims.iss !== S.k8sIssuer) throw denied();
  const t = now();
  if (typeof claims.exp === 'number' && t >= claims.exp) throw denied();
  if (typeof claims.nbf === 'number' && t < claims.nbf) throw denied();
  return claims;
}

function kubernetesLogin(ns, body) {
  if (!body.role) throw new VaultError(400, ['missing role']);
  if (!body.jwt) throw new VaultError(400, ['missing jwt']);
  const role = S.k8sRoles.get(`${ns}\0${body.role}`);
  if (!role) throw new VaultError(400, [`invalid role name "${body.role}"`]);
  const claims = verifyJwt(body.jwt);
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(claims.sub || '');
  if (!m) throw denied();
  const [, saNs, saName] = m;
  const kio = claims['kubernetes.io'];
  if (kio && (kio.namespace !== saNs || (kio.serviceaccount && kio.serviceaccount.name !== saName))) throw denied();
  const inList = (list, v) => (list || []).includes('*') || (list || []).includes(v);
  if (!inList(role.bound_service_account_names, saName)) throw new VaultError(403, ['service account name not authorized']);
  if (!inList(role.bound_service_account_namespaces, saNs)) throw new VaultError(403, ['namespace not authorized']);
  if (role.audience) {
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(role.audience)) throw new VaultError(403, ['invalid audience (aud) claim: audience claim does not match any expected audience']);
  }
  S.stats.logins.kubernetes++;
  const t = addToken({
    ttl: role.token_ttl ?? 3600,
    max_ttl: role.token_max_ttl || 0,
    policies: role.policies || ['default'],
    paths: role.paths || null,
    namespace: ns,
    display_name: `kubernetes-${saNs}-${saName}`,
    path: 'auth/kubernetes/login',
    meta: { role: body.role, service_account_name: saName, service_account_namespace: saNs, service_account_uid: (kio && kio.serviceaccount && kio.serviceaccount.uid) || '' },
  });
  return envelope({ auth: authBlock(t) });
}

function kvRead(req, ns, rest, query) {
  // rest: "mount/..." ; the mount is the longest configured prefix
  const segs = rest.split('/');
  let mount = null;
  for (let i = segs.length; i >= 1 && !mount; i--) {
    const m = segs.slice(0, i).join('/');
    if (S.mounts.has(`${ns}\0${m}`)) mount = m;
  }
  // the token is checked before the route, as Vault does: a stranger learns nothing about the mounts
  const t = tokenFor(req, ns);
  if (!allowed(t, rest)) throw denied();
  if (!mount) throw noRoute(rest);
  const { version } = S.mounts.get(`${ns}\0${mount}`);
  let sub = rest.slice(mount.length + 1);
  if (req.method !== 'GET') throw new VaultError(405, ['1 error occurred:\n\t* unsupported operation\n\n']);
  if (version === 2) {
    if (!sub.startsWith('data/')) throw new VaultError(404, []);
    sub = sub.slice(5);
  }
  if (!sub) throw new VaultError(404, []);
  const e = S.secrets.get(`${ns}\0${mount}\0${sub}`);
  if (!e) throw new VaultError(404, []);
  if (version === 1) {
    // as Vault's KV v1 does: a "ttl" key in the secret is its lease_duration (a refresh hint to readers)
    const data = e.versions[e.versions.length - 1].data;
    let lease = KV1_LEASE_S;
    if (data.ttl !== undefined) {
      const m = /^(\d+)([smh]?)$/.exec(String(data.ttl));
      if (m) lease = parseInt(m[1], 10) * ({ '': 1, s: 1, m: 60, h: 3600 }[m[2]]);
    }
    return envelope({ lease_duration: lease, data });
  }
  let v = e.versions.length;
  if (query.has('version') && query.get('version') !== '0') {
    v = parseInt(query.get('version'), 10);
    if (!(v >= 1 && v <= e.versions.length)) throw new VaultError(404, []);
  }
  const ver = e.versions[v - 1];
  return envelope({
    data: {
      data: ver.data,
      metadata: { created_time: iso(ver.created), custom_metadata: null, deletion_time: '', destroyed: false, version: v },
    },
  });
}

async function api(req, res, pathname, query) {
  S.stats.total++;
  S.stats.paths[pathname] = (S.stats.paths[pathname] || 0) + 1;
  log(req.method, pathname);
  const f = S.fault;
  if (f && f.count > 0 && (!f.path || pathname.startsWith(f.path))) {
    f.count--;
    S.stats.faults_served++;
    if (f.count === 0) S.fault = null;
    if (f.hang) return; // the client gives up; the socket stays open until it does
    if (f.delay_ms) await delay(f.delay_ms);
    if (f.status) return send(res, f.status, { errors: f.errors || [`fake_vault: injected ${f.status}`] });
  }
  try {
    if (!pathname.startsWith('/v1/')) throw new VaultError(404, []);
    let ns = normNs(req.headers['x-vault-namespace']);
    if (!S.namespaces.has(ns)) throw noRoute(pathname.slice(4));
    let rest = pathname.slice(4);
    // Vault also takes the namespace (or its rest, below the header's) as a path prefix: /v1/team-a/secret/...
    const segs = rest.split('/');
    for (let i = segs.length - 1; i >= 1; i--) {
      const cand = normNs([ns, ...segs.slice(0, i)].filter(Boolean).join('/'));
      if (S.namespaces.has(cand)) {
        ns = cand;
        rest = segs.slice(i).join('/');
        break;
      }
    }
    const route = `${req.method} ${rest}`;
    const post = req.method === 'POST' || req.method === 'PUT';
    if (route === 'GET sys/health') {
      return send(res, 200, { initialized: true, sealed: false, standby: false, performance_standby: false, server_time_utc: now(), version: '1.15.0' });
    }
    if (route === 'GET auth/token/lookup-self') return send(res, 200, envelope({ data: lookupSelf(tokenFor(req, ns)) }));
    if (post && rest === 'auth/token/renew-self') {
      const t = tokenFor(req, ns);
      return send(res, 200, renewSelf(t, await jsonBody(req)));
    }
    // an auth method may be mounted elsewhere too (vault auth enable -path=k8s-prod kubernetes)
    const am = post && /^auth\/(.+)\/login$/.exec(rest);
    const amType = am && ({ approle: 'approle', kubernetes: 'kubernetes' }[am[1]] || S.authMounts.get(`${ns}\0${am[1]}`));
    if (amType === 'approle') return send(res, 200, approleLogin(ns, await jsonBody(req)));
    if (amType === 'kubernetes') return send(res, 200, kubernetesLogin(ns, await jsonBody(req)));
    if (rest.startsWith('auth/') || rest.startsWith('sys/')) {
      tokenFor(req, ns);
      throw noRoute(rest);
    }
    return send(res, 200, kvRead(req, ns, rest, query));
  } catch (e) {
    if (!(e instanceof VaultError)) throw e;
    return send(res, e.code, { errors: e.errors });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Control API (/_fake/...)

async function control(req, res, pathname) {
  const ok = obj => writeJson(res, 200, obj, 'application/json');
  const bad = msg => writeJson(res, 400, { error: msg }, 'application/json');
  const route = `${req.method} ${pathname}`;
  let body = {};
  if (req.method === 'POST') {
    const raw = await readBody(req, { limit: 1 << 20, tooLarge: () => new Error('too large') });
    try {
      body = raw.trim() ? JSON.parse(raw) : {};
    } catch (e) {
      return bad(`not JSON: ${e.message}`);
    }
  }
  try {
    switch (route) {
      case 'GET /_fake/stats':
        return ok(S.stats);
      case 'POST /_fake/reset':
        // stats and faults only; ?all=1 would be a restart, which tests do by starting a new fake
        S.stats = freshStats();
        S.fault = null;
        return ok({ reset: true });
      case 'POST /_fake/setup':
        applySetup(body);
        return ok({ applied: true });
      case 'POST /_fake/secret': {
        const version = putSecret(body.namespace, body.mount || 'secret', body.path, body.data);
        return ok({ version });
      }
      case 'POST /_fake/token': {
        const t = addToken(body);
        return ok({ token: t.id, accessor: t.accessor, expire_time: t.expire ? iso(t.expire) : null });
      }
      case 'POST /_fake/k8s-jwks':
        setK8sKeys(body);
        return ok({ keys: S.k8sKeys.length });
      case 'GET /_fake/clock':
        return ok({ now: now(), offset_s: S.clockOffset });
      case 'POST /_fake/clock':
        if (body.advance_s !== undefined) {
          if (!Number.isInteger(body.advance_s)) return bad('advance_s must be an integer');
          S.clockOffset += body.advance_s;
        } else return bad('expected {"advance_s": N}');
        return ok({ now: now(), offset_s: S.clockOffset });
      case 'POST /_fake/fail': {
        const f = { count: body.count ?? 1, status: body.status || 0, delay_ms: body.delay_ms || 0, hang: !!body.hang, path: body.path || null, errors: body.errors || null };
        if (!Number.isInteger(f.count) || f.count < 0) return bad('count must be a non-negative integer');
        if (!f.status && !f.delay_ms && !f.hang) return bad('a fault needs status, delay_ms or hang');
        if (f.status && (f.status < 100 || f.status > 599)) return bad('status must be an HTTP status');
        S.fault = f.count > 0 ? f : null;
        return ok({ fault: S.fault });
      }
      default:
        return writeJson(res, 404, { error: `no control route ${route}` }, 'application/json');
    }
  } catch (e) {
    return bad(e.message);
  }
}

// ---------------------------------------------------------------------------------------------------------

export function main(argv) {
  const opts = parseCommandLine(argv, parseArgs, { name: 'fake_vault', usage: USAGE });
  S.opts = opts;
  resetState();
  try {
    if (opts.config) applySetup(JSON.parse(fs.readFileSync(opts.config, 'utf8')));
    if (opts.k8sJwks) {
      const text = fs.readFileSync(opts.k8sJwks, 'utf8');
      setK8sKeys(text.trimStart().startsWith('{') ? JSON.parse(text) : text);
    }
  } catch (e) {
    process.stderr.write(`fake_vault: ${e.message}\n`);
    process.exit(2);
  }
  const h = fakeHandler({
    tag: 'fake_vault',
    control,
    api,
    internalError: res => send(res, 500, { errors: ['internal error'] }),
  });
  const server = opts.tlsCert
    ? https.createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) }, h)
    : http.createServer({ keepAlive: true, requestTimeout: 0 }, h);
  rejectBadClients(server);
  return serve(server, opts.port, { closeAll: true });
}

runIfMain(import.meta.url, main);
