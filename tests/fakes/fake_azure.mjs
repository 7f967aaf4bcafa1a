// A strict fake of Azure Key Vault (`GET /secrets/{name}/{version}`, the 401 bearer challenge first) with the ways a
// workload gets its token: the Entra ID token endpoint (client secret, or a federated client assertion for AKS
// workload identity) and the managed-identity IMDS endpoint. Node built-ins only; proven against
// @azure/keyvault-secrets and @azure/identity by tests/cloud/azure_check.mjs. See README.md.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import {
  argHelpers, countStatus, delay, fakeHandler, parseCommandLine, readBody, rejectBadClients, runIfMain, serve,
  writeJson,
} from './fake_http.mjs';
import { verifyRs256 } from './fake_gcp.mjs';

const USAGE = 'usage: fake_azure.mjs --port N [--tls-cert C --tls-key K] [--tenant T] [--client-id ID] ' +
  '[--client-secret S] [--verbose]';
const VAULT_RESOURCE = 'https://vault.azure.net';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const EXCHANGE_AUD = 'api://AzureADTokenExchange';
// The federated credential the app registration trusts: a Kubernetes service account of the fake's own issuer.
const FED_ISSUER = 'https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-00000000cafe/';
const FED_SUBJECT = 'system:serviceaccount:warden:warden';
// Key Vault's api-versions (the SDK sends its newest; Warden pins 7.4).
const API_VERSIONS = ['2016-10-01', '7.0', '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '2025-07-01'];
const IMDS_API_VERSIONS = ['2018-02-01', '2019-08-01', '2019-11-01', '2020-06-01', '2021-02-01'];
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
// MSAL canonicalises the IMDS URL with a trailing slash, and IMDS takes it.
const IMDS_PATH = /^\/metadata\/identity\/oauth2\/token\/?$/;
const VERSION = /^[0-9a-f]{32}$/;

const b64url = o => Buffer.from(JSON.stringify(o)).toString('base64url');
function signJwt(payload, key, kid) {
  const h = b64url({ typ: 'JWT', alg: 'RS256', kid }), p = b64url(payload);
  return `${h}.${p}.${crypto.sign('sha256', Buffer.from(`${h}.${p}`), key).toString('base64url')}`;
}

function newState(opts) {
  const gen = () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const entra = gen(), cluster = gen();
  return {
    opts,
    entraKey: entra, entraPub: crypto.createPublicKey(entra), entraKid: crypto.randomBytes(8).toString('hex'),
    clusterKey: cluster, clusterPub: crypto.createPublicKey(cluster),
    miClientId: '5f0d1e2c-0000-4000-8000-00000000001d', // the managed identity's client id
    secrets: new Map(), // name -> [{version, value, enabled, created, contentType}]
    tokenTtl: 3599,
    revokedBefore: 0, // tokens issued (iat, ms) before this are refused
    faults: [],
    stats: null,
    log: [],
  };
}

function resetStats(S) {
  S.stats = {
    requests: 0, secret_requests: 0, challenges: 0, token_requests: 0, imds_requests: 0, discovery_requests: 0,
    tokens_issued: 0, tokens_by_grant: {}, responses_by_status: {}, by_secret: {},
  };
  S.log = [];
}

// An Entra access token: a JWT signed with the fake's key, for one resource, as Key Vault checks it.
function issueToken(S, resource, appid, grant) {
  const now = Math.floor(Date.now() / 1000);
  S.stats.tokens_issued++;
  S.stats.tokens_by_grant[grant] = (S.stats.tokens_by_grant[grant] || 0) + 1;
  return signJwt({
    aud: resource, iss: `https://sts.windows.net/${S.opts.tenant}/`, iat: now, nbf: now, exp: now + S.tokenTtl,
    appid, tid: S.opts.tenant, oid: appid, sub: appid, iat_ms: Date.now(), uti: crypto.randomBytes(12).toString('base64url'),
  }, S.entraKey, S.entraKid);
}

function takeFault(S, target) {
  const i = S.faults.findIndex(f => (f.target || 'secret') === target);
  if (i < 0) return undefined;
  const f = S.faults[i];
  // "times": N uses it N times, -1 until the next script or reset (an outage); by default once
  if (f.times === undefined || f.times === 1) S.faults.splice(i, 1);
  else if (f.times > 1) f.times--;
  return f;
}

// Applies a fault's delay, cut and status; true when it answered.
async function applyFault(res, fault, errorBody) {
  if (!fault) return false;
  if (fault.delay_ms) await delay(fault.delay_ms);
  if (fault.cut) {
    res.socket.destroy();
    return true;
  }
  if (fault.status) {
    const h = fault.retry_after !== undefined ? { 'retry-after': String(fault.retry_after) } : {};
    writeJson(res, fault.status, errorBody(fault), 'application/json; charset=utf-8', h);
    return true;
  }
  return false;
}

// An Entra (AADSTS) error, in the token endpoint's shape.
function aadError(res, S, code, error, aadsts, text) {
  writeJson(res, code, {
    error, error_description: `AADSTS${aadsts}: ${text} Trace ID: ${crypto.randomUUID()} Correlation ID: ${crypto.randomUUID()} Timestamp: ${new Date().toISOString().replace('T', ' ').slice(0, 19)}Z`,
    error_codes: [aadsts], timestamp: new Date().toISOString(), trace_id: crypto.randomUUID(), correlation_id: crypto.randomUUID(),
  }, 'application/json; charset=utf-8');
}

function hostOf(req) {
  return `https://${req.headers.host}`;
}

// GET /{tenant}/v2.0/.well-known/openid-configuration and /common/discovery/instance: what MSAL reads before its
// first token request.
function discovery(S, req, res, pathname) {
  S.stats.discovery_requests++;
  const base = hostOf(req), t = S.opts.tenant;
  if (pathname === `/${t}/v2.0/.well-known/openid-configuration`) {
    return writeJson(res, 200, {
      token_endpoint: `${base}/${t}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/${t}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'], id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${base}/${t}/v2.0`, request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/${t}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/${t}/oauth2/v2.0/devicecode`,
      http_logout_supported: true, frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/${t}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid'], kerberos_endpoint: `${base}/${t}/kerberos`,
      tenant_region_scope: 'EU', cloud_instance_name: 'microsoftonline.com', cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com', rbac_url: 'https://pas.windows.net',
    }, 'application/json; charset=utf-8');
  }
  if (/^\/[^/]+\/v2\.0\/\.well-known\/openid-configuration$/.test(pathname)) {
    return aadError(res, S, 400, 'invalid_tenant', 90002, `Tenant '${pathname.split('/')[1]}' not found.`);
  }
  if (pathname === `/${t}/discovery/v2.0/keys`) {
    return writeJson(res, 200, { keys: [{ kty: 'RSA', use: 'sig', kid: S.entraKid, ...S.entraPub.export({ format: 'jwk' }) }] }, 'application/json');
  }
  // instance discovery
  const host = req.headers.host;
  return writeJson(res, 200, {
    tenant_discovery_endpoint: `${base}/${t}/v2.0/.well-known/openid-configuration`, 'api-version': '1.1',
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  }, 'application/json; charset=utf-8');
}

// POST /{tenant}/oauth2/v2.0/token: client_credentials with client_secret, or with a client_assertion that is a
// federated token (AKS workload identity: a service-account JWT of the trusted issuer, audience
// api://AzureADTokenExchange).
async function tokenEndpoint(S, req, res, tenant) {
  S.stats.token_requests++;
  if (req.method !== 'POST') return aadError(res, S, 405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
  if (!String(req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded')) {
    return aadError(res, S, 400, 'invalid_request', 900144, 'The request body must contain the following parameter: \'grant_type\'.');
  }
  const form = new URLSearchParams(await readBody(req, { limit: 65536, tooLarge: () => new Error('too large') }));
  if (await applyFault(res, takeFault(S, 'token'), f => ({ error: f.status >= 500 ? 'temporarily_unavailable' : 'invalid_request',
    error_description: `AADSTS50000: fake-azure injected ${f.status}`, error_codes: [50000] }))) return;
  if (tenant !== S.opts.tenant) return aadError(res, S, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
  const known = ['grant_type', 'client_id', 'scope', 'client_secret', 'client_assertion_type', 'client_assertion', 'client_info', 'claims'];
  for (const k of form.keys()) {
    if (!known.includes(k) && !/^x-|^client-request-id$/.test(k)) return aadError(res, S, 400, 'invalid_request', 900144, `Unknown parameter '${k}'.`);
    if (form.getAll(k).length > 1) return aadError(res, S, 400, 'invalid_request', 90015, `Requested query string is too long or '${k}' is repeated.`);
  }
  const grant = form.get('grant_type');
  if (!grant) return aadError(res, S, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
  if (grant !== 'client_credentials') return aadError(res, S, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant}'.`);
  const clientId = form.get('client_id');
  if (!clientId) return aadError(res, S, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
  if (clientId !== S.opts.clientId) return aadError(res, S, 400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenant}'.`);
  const scope = form.get('scope');
  if (!scope) return aadError(res, S, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
  const scopes = scope.split(' ').filter(Boolean);
  if (scopes.length !== 1 || !scopes[0].endsWith('/.default')) {
    return aadError(res, S, 400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
  }
  const resource = scopes[0].slice(0, -'/.default'.length);
  if (resource !== VAULT_RESOURCE && resource !== `${VAULT_RESOURCE}/`) {
    return aadError(res, S, 400, 'invalid_resource', 500011, `The resource principal named ${resource} was not found in the tenant named ${tenant}.`);
  }
  const secret = form.get('client_secret'), assertion = form.get('client_assertion'), atype = form.get('client_assertion_type');
  if (secret !== null && (assertion !== null || atype !== null)) return aadError(res, S, 400, 'invalid_request', 90023, 'Only one client credential may be given: client_secret or client_assertion.');
  let kind;
  if (secret !== null) {
    if (secret !== S.opts.clientSecret) return aadError(res, S, 401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.');
    kind = 'client_secret';
  } else if (assertion !== null) {
    if (atype !== ASSERTION_TYPE) return aadError(res, S, 400, 'invalid_request', 700025, `client_assertion_type must be ${ASSERTION_TYPE}.`);
    let p;
    try {
      p = verifyRs256(assertion, S.clusterPub).payload;
    } catch (e) {
      return aadError(res, S, 401, 'invalid_client', 700027, `Client assertion failed signature validation. (${e.message})`);
    }
    const now = Math.floor(Date.now() / 1000);
    if (!(p.exp > now) || (p.nbf !== undefined && p.nbf > now + 300)) return aadError(res, S, 400, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
    const aud = Array.isArray(p.aud) ? p.aud : [p.aud];
    if (!aud.includes(EXCHANGE_AUD)) return aadError(res, S, 400, 'invalid_client', 700212, `No matching federated identity record found for presented assertion audience '${aud.join(',')}'.`);
    if (p.iss !== FED_ISSUER) return aadError(res, S, 400, 'invalid_client', 700211, `No matching federated identity record found for presented assertion issuer '${p.iss}'.`);
    if (p.sub !== FED_SUBJECT) return aadError(res, S, 400, 'invalid_client', 700213, `No matching federated identity record found for presented assertion subject '${p.sub}'.`);
    kind = 'client_assertion';
  } else {
    return aadError(res, S, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }
  writeJson(res, 200, { token_type: 'Bearer', expires_in: S.tokenTtl, ext_expires_in: S.tokenTtl, access_token: issueToken(S, VAULT_RESOURCE, clientId, kind) },
    'application/json; charset=utf-8');
}

// GET /metadata/identity/oauth2/token: the managed identity endpoint (plain HTTP, Metadata: true).
async function imds(S, req, res, query) {
  S.stats.imds_requests++;
  const bad = (code, error, description) => writeJson(res, code, { error, error_description: description }, 'application/json; charset=utf-8');
  if (req.method !== 'GET') return bad(405, 'invalid_request', 'GET only');
  if (req.headers.metadata !== 'true') return bad(400, 'invalid_request', 'Required metadata header not specified');
  if (req.headers['x-forwarded-for']) return bad(400, 'invalid_request', 'Request had X-Forwarded-For header');
  if (!query.get('api-version')) return bad(400, 'invalid_request', 'Required query variable \'api-version\' is missing');
  if (!IMDS_API_VERSIONS.includes(query.get('api-version'))) return bad(400, 'invalid_request', 'Invalid version of the API');
  for (const k of query.keys()) {
    if (!['api-version', 'resource', 'client_id', 'object_id', 'msi_res_id', 'mi_res_id', 'principal_id'].includes(k)) return bad(400, 'invalid_request', `Unknown query parameter ${k}`);
  }
  const resource = query.get('resource');
  if (!resource) return bad(400, 'invalid_request', 'Required audience parameter not specified');
  if (await applyFault(res, takeFault(S, 'imds'), f => ({ error: 'unknown', error_description: `fake-azure injected ${f.status}` }))) return;
  if (query.get('client_id') && query.get('client_id') !== S.miClientId) return bad(400, 'invalid_request', 'Identity not found');
  if (resource !== VAULT_RESOURCE && resource !== `${VAULT_RESOURCE}/`) return bad(400, 'invalid_resource', `AADSTS500011: The resource principal named ${resource} was not found in the tenant.`);
  const now = Math.floor(Date.now() / 1000);
  // IMDS answers its numbers as strings
  writeJson(res, 200, {
    access_token: issueToken(S, VAULT_RESOURCE, S.miClientId, 'imds'), client_id: S.miClientId,
    expires_in: String(S.tokenTtl), expires_on: String(now + S.tokenTtl), ext_expires_in: String(S.tokenTtl),
    not_before: String(now), resource, token_type: 'Bearer',
  }, 'application/json; charset=utf-8');
}

function kvError(res, code, errCode, message, headers = {}, inner) {
  writeJson(res, code, { error: { code: errCode, message, ...(inner ? { innererror: { code: inner } } : {}) } }, 'application/json; charset=utf-8', headers);
}

// The bearer's verdict: null when valid for Key Vault, else the AKV message.
function checkBearer(S, h) {
  if (!h) return 'AKV10000: Request is missing a Bearer or PoP token.';
  if (!/^Bearer [^ ]+$/.test(h)) return 'AKV10001: Invalid Authorization header: the scheme must be Bearer.';
  let p;
  try {
    p = verifyRs256(h.slice(7), S.entraPub).payload;
  } catch {
    return 'AKV10031: Invalid token signature.';
  }
  const now = Math.floor(Date.now() / 1000);
  if (p.aud !== VAULT_RESOURCE && p.aud !== `${VAULT_RESOURCE}/`) return `AKV10022: Invalid audience. Expected ${VAULT_RESOURCE}, found: ${p.aud}.`;
  if (p.tid !== S.opts.tenant) return 'AKV10032: Invalid issuer. Expected one of the tenant\'s issuers.';
  if (!(p.exp > now)) return 'AKV10032: Token is expired.';
  if (p.iat_ms < S.revokedBefore) return 'AKV10032: Token is revoked.';
  return null;
}

// GET /secrets/{name}[/{version}]?api-version=V
async function getSecret(S, req, res, pathname, query) {
  S.stats.secret_requests++;
  const m = /^\/secrets\/([^/]+)(?:\/([^/]*))?$/.exec(pathname);
  if (!m) return kvError(res, 404, 'NotFound', `fake-azure: no route for ${req.method} ${pathname}`);
  const apiVersion = query.get('api-version');
  if (!apiVersion) return kvError(res, 400, 'BadParameter', 'The request URI must contain the api-version parameter.');
  if (!API_VERSIONS.includes(apiVersion)) return kvError(res, 400, 'BadParameter', `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version (7.6).`);
  for (const k of query.keys()) if (k !== 'api-version' && k !== 'outContentType') return kvError(res, 400, 'BadParameter', `Unknown query parameter '${k}'.`);
  const bad = checkBearer(S, req.headers.authorization);
  if (bad) {
    if (bad.startsWith('AKV10000')) S.stats.challenges++;
    // the challenge names the tenant's authority and the resource to ask a token for
    return kvError(res, 401, 'Unauthorized', bad, {
      'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${S.opts.tenant}", resource="${VAULT_RESOURCE}"`,
    });
  }
  if (req.method !== 'GET') return kvError(res, 405, 'BadParameter', `${req.method} is not supported on this fake.`);
  const fault = takeFault(S, 'secret');
  if (await applyFault(res, fault, f => ({ error: { code: f.status === 429 ? 'Throttled' : 'ServiceUnavailable', message: f.message || `fake-azure injected ${f.status}` } }))) return;
  const [, name, version = ''] = m;
  if (!NAME.test(name)) return kvError(res, 400, 'BadParameter', `The secret name '${name}' is invalid: it must match ^[0-9a-zA-Z-]+$.`);
  if (version !== '' && !VERSION.test(version)) return kvError(res, 400, 'BadParameter', `Method GET does not allow operation '${version}'.`);
  const versions = S.secrets.get(name.toLowerCase());
  const notFound = () => kvError(res, 404, 'SecretNotFound', `A secret with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`);
  if (!versions) return notFound();
  const v = version ? versions.find(x => x.version === version) : versions[versions.length - 1];
  if (!v) return notFound();
  if (!v.enabled) return kvError(res, 403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', {}, 'SecretDisabled');
  S.stats.by_secret[name.toLowerCase()] = (S.stats.by_secret[name.toLowerCase()] || 0) + 1;
  const body = {
    value: v.value, id: `${hostOf(req)}/secrets/${v.name}/${v.version}`,
    attributes: { enabled: true, created: v.created, updated: v.created, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
    tags: {},
  };
  if (v.contentType) body.contentType = v.contentType;
  writeJson(res, 200, body, 'application/json; charset=utf-8');
}

// Control API: POST /_fake/secret {"name","value","content_type"?} adds a version (a rotation), answering its id;
// POST /_fake/disable {"name","version"?,"enabled"?}; GET /_fake/federated_token?sub=&aud=&ttl= a service-account
// token signed by the trusted cluster issuer (for AZURE_FEDERATED_TOKEN_FILE); POST /_fake/revoke_tokens;
// POST /_fake/script {"faults","append","token_ttl"}; GET stats, requests, state; POST reset.
async function control(S, req, res, pathname, query) {
  const body = req.method === 'POST' ? await readBody(req, { limit: 1 << 20, tooLarge: () => new Error('too large') }) : '';
  const parse = allowed => {
    const o = JSON.parse(body || '{}');
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error('body must be a JSON object');
    for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new Error(`unknown key ${k}`);
    return o;
  };
  const json = (code, o) => writeJson(res, code, o, 'application/json');
  try {
    switch (`${req.method} ${pathname}`) {
      case 'GET /_fake/stats': return json(200, S.stats);
      case 'GET /_fake/requests': return json(200, S.log);
      case 'GET /_fake/state':
        return json(200, { faults: S.faults, token_ttl: S.tokenTtl, tenant: S.opts.tenant, client_id: S.opts.clientId,
          mi_client_id: S.miClientId, federated: { issuer: FED_ISSUER, subject: FED_SUBJECT, audience: EXCHANGE_AUD },
          secrets: Object.fromEntries([...S.secrets].map(([k, v]) => [k, v.map(x => ({ version: x.version, enabled: x.enabled }))])) });
      case 'POST /_fake/reset':
        resetStats(S);
        S.faults = [];
        S.tokenTtl = 3599;
        return json(200, { ok: true });
      case 'POST /_fake/revoke_tokens':
        S.revokedBefore = Date.now() + 1;
        await delay(2);
        return json(200, { ok: true });
      case 'GET /_fake/federated_token': {
        const now = Math.floor(Date.now() / 1000), ttl = parseInt(query.get('ttl') || '3600', 10);
        const tok = signJwt({
          aud: [query.get('aud') || EXCHANGE_AUD], iss: query.get('iss') || FED_ISSUER, sub: query.get('sub') || FED_SUBJECT,
          iat: now, nbf: now, exp: now + ttl, 'kubernetes.io': { namespace: 'warden', serviceaccount: { name: 'warden' } },
        }, S.clusterKey, 'cluster');
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end(tok);
      }
      case 'POST /_fake/secret': {
        const o = parse(['name', 'value', 'content_type']);
        if (typeof o.name !== 'string' || !NAME.test(o.name)) throw new Error('name must match ^[0-9a-zA-Z-]{1,127}$');
        if (typeof o.value !== 'string') throw new Error('value must be a string');
        if (Buffer.byteLength(o.value) > 25600) throw new Error('a secret value holds at most 25 KiB');
        const key = o.name.toLowerCase();
        if (!S.secrets.has(key)) S.secrets.set(key, []);
        const v = { name: o.name, version: crypto.randomBytes(16).toString('hex'), value: o.value, enabled: true,
          created: Math.floor(Date.now() / 1000), contentType: o.content_type };
        S.secrets.get(key).push(v);
        return json(200, { version: v.version, id: `/secrets/${o.name}/${v.version}` });
      }
      case 'POST /_fake/disable': {
        const o = parse(['name', 'version', 'enabled']);
        const vs = S.secrets.get(String(o.name).toLowerCase());
        if (!vs) throw new Error('no such secret');
        const v = o.version ? vs.find(x => x.version === o.version) : vs[vs.length - 1];
        if (!v) throw new Error('no such version');
        v.enabled = o.enabled === true;
        return json(200, { ok: true });
      }
      case 'POST /_fake/script': {
        const o = parse(['faults', 'append', 'token_ttl']);
        if (o.token_ttl !== undefined) {
          if (!Number.isInteger(o.token_ttl) || o.token_ttl < 1) throw new Error('token_ttl must be a positive integer');
          S.tokenTtl = o.token_ttl;
        }
        if (o.faults !== undefined) {
          if (!Array.isArray(o.faults)) throw new Error('faults must be an array');
          for (const f of o.faults) {
            for (const k of Object.keys(f)) {
              if (!['target', 'status', 'message', 'retry_after', 'delay_ms', 'cut', 'times'].includes(k)) throw new Error(`unknown fault key ${k}`);
            }
            if (f.target !== undefined && !['secret', 'token', 'imds'].includes(f.target)) throw new Error('target must be secret, token or imds');
            if (f.status !== undefined && !(Number.isInteger(f.status) && f.status >= 400 && f.status <= 599)) throw new Error('status must be 400..599');
            if (f.times !== undefined && !(Number.isInteger(f.times) && (f.times >= 1 || f.times === -1))) throw new Error('times must be a positive integer or -1');
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
  const o = {
    port: 0, tenant: '72f988bf-0000-4000-8000-00000000fa4e', clientId: '3c2b8f7e-0000-4000-8000-0000000000a1',
    clientSecret: 'fake-azure-client-secret', verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--port': o.port = int(need(i, '--port'), '--port'); i++; break;
      case '--tls-cert': o.tlsCert = need(i, '--tls-cert'); i++; break;
      case '--tls-key': o.tlsKey = need(i, '--tls-key'); i++; break;
      case '--tenant': o.tenant = need(i, '--tenant'); i++; break;
      case '--client-id': o.clientId = need(i, '--client-id'); i++; break;
      case '--client-secret': o.clientSecret = need(i, '--client-secret'); i++; break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': throw new Error('help');
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!o.tlsCert !== !o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  return o;
}

export function main(argv) {
  const opts = parseCommandLine(argv, parseArgs, { name: 'fake_azure', usage: USAGE });
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
    if (opts.verbose) process.stderr.write(`[fake_azure] ${req.method} ${req.url}\n`);
    if (IMDS_PATH.test(pathname)) return imds(S, req, res, query);
    if (pathname.startsWith('/secrets/')) return getSecret(S, req, res, pathname, query);
    const t = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(pathname);
    if (t) return tokenEndpoint(S, req, res, t[1]);
    if (/\/\.well-known\/openid-configuration$|^\/common\/discovery\/instance$|\/discovery\/v2\.0\/keys$/.test(pathname)) return discovery(S, req, res, pathname);
    return kvError(res, 404, 'NotFound', `fake-azure: no route for ${req.method} ${pathname}`);
  };
  const internalError = res => kvError(res, 500, 'InternalError', 'fake-azure internal error');
  const handler = fakeHandler({ tag: 'fake_azure', control: (req, res, p, q) => control(S, req, res, p, q), api, internalError });
  // IMDS is plain HTTP; with TLS it gets a port of its own.
  const imdsHandler = fakeHandler({
    tag: 'fake_azure', control: (req, res, p, q) => control(S, req, res, p, q), internalError,
    api: async (req, res, pathname, query) => {
      record(req, res, pathname);
      if (opts.verbose) process.stderr.write(`[fake_azure] imds ${req.method} ${req.url}\n`);
      if (IMDS_PATH.test(pathname)) return imds(S, req, res, query);
      return writeJson(res, 404, { error: 'not_found', error_description: `no IMDS route ${pathname}` }, 'application/json');
    },
  });
  const server = opts.tlsCert
    ? https.createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) }, handler)
    : http.createServer(handler);
  rejectBadClients(server);
  if (!opts.tlsCert) return serve(server, opts.port, { closeAll: true });
  const im = http.createServer(imdsHandler);
  rejectBadClients(im);
  im.listen(0, '127.0.0.1', () => {
    serve(server, opts.port, {
      closeAll: true,
      onListening: port => process.stdout.write(`${JSON.stringify({ port, imds_port: im.address().port })}\n`),
    });
  });
}

runIfMain(import.meta.url, main);
