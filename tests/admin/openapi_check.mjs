// Checks docs/admin-openapi.json against itself and a live admin API: every schema compiles (ajv, JSON Schema
// 2020-12 as OpenAPI 3.1 uses), every operation documents its responses, then every documented route is called in
// a lifecycle order and each answer's status must be documented and its body valid against that status's schema;
// the error statuses a client can provoke (400, 401, 404, 409) must come in the error shape.
// Usage: node openapi_check.mjs BASE_URL ADMIN_KEY [TEAM_ORG]   (one "ok - "/"not ok - " line per check; exit 1
// on any failure). Names get a random suffix, so it can run again against the same server.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));
const DOC_PATH = path.join(here, '..', '..', 'docs', 'admin-openapi.json');
const ID_BASE = 'https://warden.invalid/admin-openapi/';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

let pass = 0, failed = 0;
function ok(d) { pass++; console.log(`ok - ${d}`); }
function notOk(d, why) { failed++; console.log(`not ok - ${d}${why ? `: ${why}` : ''}`); }
function check(d, cond, why) { if (cond) ok(d); else notOk(d, why); return cond; }

// "#/components/schemas/X" -> an absolute id ajv resolves; strict mode refuses the OpenAPI wrapper as a schema.
function rewriteRefs(v) {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v === null || typeof v !== 'object') return v;
  const o = {};
  for (const [k, x] of Object.entries(v))
    o[k] = k === '$ref' && typeof x === 'string' && x.startsWith('#/components/schemas/')
      ? ID_BASE + x.slice('#/components/schemas/'.length) : rewriteRefs(x);
  return o;
}

function resolve(doc, v) {
  while (v && typeof v.$ref === 'string') {
    const parts = v.$ref.replace(/^#\//, '').split('/');
    v = parts.reduce((o, p) => (o ? o[p] : undefined), doc);
  }
  return v;
}

// --- the document itself ---
function checkDocument(doc, ajv) {
  check('the document is OpenAPI 3.1', typeof doc.openapi === 'string' && doc.openapi.startsWith('3.1'), doc.openapi);
  const schemes = doc.components?.securitySchemes || {};
  const bearer = Object.entries(schemes).find(([, s]) => s.type === 'http' && s.scheme === 'bearer');
  const apiKey = Object.entries(schemes).find(([, s]) => s.type === 'apiKey' && s.in === 'header' && s.name === 'x-api-key');
  check('security schemes: bearer and x-api-key', bearer && apiKey);
  const names = new Set((doc.security || []).flatMap(r => Object.keys(r)));
  check('the document requires one of them on every route', bearer && apiKey && names.has(bearer[0]) && names.has(apiKey[0]));

  let compiled = 0, broken = [];
  for (const [name, s] of Object.entries(doc.components?.schemas || {})) {
    try { ajv.addSchema(rewriteRefs(s), ID_BASE + name); } catch (e) { broken.push(`${name}: ${e.message}`); }
  }
  for (const name of Object.keys(doc.components?.schemas || {})) {
    try { ajv.getSchema(ID_BASE + name); compiled++; } catch (e) { broken.push(`${name}: ${e.message}`); }
  }
  const ops = [];
  for (const [p, item] of Object.entries(doc.paths || {}))
    for (const m of METHODS) if (item[m]) ops.push([p, m, item[m], item]);
  let missing = [];
  for (const [p, m, op] of ops) {
    const responses = op.responses || {};
    if (!Object.keys(responses).some(s => /^2\d\d$/.test(s))) missing.push(`${m.toUpperCase()} ${p}: no 2xx`);
    for (const [status, r0] of Object.entries(responses)) {
      const r = resolve(doc, r0);
      const s = r?.content?.['application/json']?.schema;
      if (!s) { missing.push(`${m.toUpperCase()} ${p} ${status}: no JSON schema`); continue; }
      try { ajv.compile(rewriteRefs(s)); compiled++; } catch (e) { broken.push(`${m} ${p} ${status}: ${e.message}`); }
    }
    const rb = op.requestBody && resolve(doc, op.requestBody)?.content?.['application/json']?.schema;
    if (op.requestBody && !rb) missing.push(`${m.toUpperCase()} ${p}: a request body without a JSON schema`);
    if (rb) {
      const body = resolve(doc, rb);
      if (body.additionalProperties !== false) missing.push(`${m.toUpperCase()} ${p}: request body allows unknown fields`);
      try { ajv.compile(rewriteRefs(rb)); compiled++; } catch (e) { broken.push(`${m} ${p} request: ${e.message}`); }
    }
    for (const status of ['401', '503'])
      if (!responses[status]) missing.push(`${m.toUpperCase()} ${p}: ${status} undocumented`);
  }
  check(`ajv compiles every schema (${compiled})`, broken.length === 0, broken.join('; '));
  check(`every operation (${ops.length}) documents a 2xx, 401 and 503 with JSON schemas, and closed request bodies`,
    ops.length > 0 && missing.length === 0, missing.join('; '));
  return ops;
}

// --- the live server ---
function main() {
  const [base, adminKey, org = 'org-check'] = process.argv.slice(2);
  if (!base || !adminKey) {
    process.stderr.write('usage: node openapi_check.mjs BASE_URL ADMIN_KEY [TEAM_ORG]\n');
    process.exit(2);
  }
  const doc = JSON.parse(fs.readFileSync(DOC_PATH, 'utf8'));
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const ops = checkDocument(doc, ajv);
  const called = new Set();
  const root = base.replace(/\/+$/, '');

  async function call(method, p, body, { auth = 'bearer', raw } = {}) {
    const headers = { accept: 'application/json' };
    if (auth === 'bearer') headers.authorization = `Bearer ${adminKey}`;
    if (auth === 'x-api-key') headers['x-api-key'] = adminKey;
    if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(root + p, { method, headers, body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text };
  }

  // Validates r against the documented response of (template, method, r.status); expect: the status wanted.
  function conforms(desc, template, method, r, expect) {
    called.add(`${method} ${template}`);
    const op = doc.paths[template]?.[method];
    if (!op) return notOk(desc, `${method.toUpperCase()} ${template} is not in the document`), false;
    if (r.status !== expect) return notOk(desc, `HTTP ${r.status}, wanted ${expect}: ${r.text.slice(0, 300)}`), false;
    const resp = resolve(doc, op.responses[String(r.status)]);
    if (!resp) return notOk(desc, `HTTP ${r.status} is not documented for ${method.toUpperCase()} ${template}`), false;
    const schema = rewriteRefs(resp.content['application/json'].schema);
    let v;
    try { v = ajv.compile(schema); } catch (e) { return notOk(desc, `the documented schema does not compile: ${e.message}`), false; }
    if (!v(r.json)) return notOk(desc, `${ajv.errorsText(v.errors)} in ${r.text.slice(0, 300)}`), false;
    ok(desc);
    return true;
  }
  const isError = (r, type) => r.json?.error?.type === type && typeof r.json.error.message === 'string';

  const sfx = crypto.randomBytes(4).toString('hex');
  const team = `check-team-${sfx}`, keyName = `check-key-${sfx}`;
  const future = new Date(Date.now() + 30 * 86400e3).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const T = '/admin/v1';

  (async () => {
    let r = await call('POST', `${T}/teams`, { name: team, org });
    conforms('POST /teams creates a team (201)', '/admin/v1/teams', 'post', r, 201);
    check('the team has the name and org sent', r.json?.name === team && r.json?.org === org);
    r = await call('POST', `${T}/teams`, { name: team, org });
    conforms('POST /teams with a taken name is 409', '/admin/v1/teams', 'post', r, 409);
    check('  ... a conflict_error', isError(r, 'conflict_error'));
    r = await call('GET', `${T}/teams`);
    conforms('GET /teams (200)', '/admin/v1/teams', 'get', r, 200);
    check('  ... lists the new team', r.json?.data?.some?.(t => t.name === team));
    r = await call('GET', `${T}/teams/${team}`);
    conforms('GET /teams/{name} (200)', '/admin/v1/teams/{name}', 'get', r, 200);

    const create = { name: keyName, owner: 'openapi-check', team, models: ['claude-*'], roles: [], expires_at: future };
    r = await call('POST', `${T}/keys`, create);
    conforms('POST /keys creates a key (201)', '/admin/v1/keys', 'post', r, 201);
    const key = r.json || {};
    check('  ... its prefix is the key\'s first 11 characters', typeof key.key === 'string' && key.prefix === key.key.slice(0, 11));
    check('  ... with the team\'s org', key.team === team && key.org === org, JSON.stringify({ team: key.team, org: key.org }));
    r = await call('POST', `${T}/keys`, create);
    conforms('POST /keys with a name in use is 409', '/admin/v1/keys', 'post', r, 409);
    r = await call('POST', `${T}/keys`, { name: `${keyName}-x`, colour: 'red' });
    conforms('POST /keys with an unknown field is 400', '/admin/v1/keys', 'post', r, 400);
    check('  ... an invalid_request_error naming the field', isError(r, 'invalid_request_error') && r.json.error.message.includes('colour'));
    r = await call('POST', `${T}/keys`, undefined, { raw: `{"name":"${keyName}-y","name":"${keyName}-z"}` });
    conforms('POST /keys with a repeated field is 400', '/admin/v1/keys', 'post', r, 400);
    r = await call('POST', `${T}/keys`, { name: `${keyName}-n` }, { auth: 'none' });
    conforms('POST /keys without a key is 401', '/admin/v1/keys', 'post', r, 401);
    check('  ... an authentication_error', isError(r, 'authentication_error'));
    r = await call('GET', `${T}/keys`, undefined, { auth: 'x-api-key' });
    conforms('GET /keys with x-api-key (200)', '/admin/v1/keys', 'get', r, 200);
    check('  ... lists the key, without its secret', r.json?.data?.some?.(k => k.id === key.id) && r.json.data.every(k => !('key' in k)));
    r = await call('GET', `${T}/keys?team=${team}`);
    conforms('GET /keys?team=T (200)', '/admin/v1/keys', 'get', r, 200);
    check('  ... only the team\'s keys', r.json?.data?.length >= 1 && r.json.data.every(k => k.team === team));
    r = await call('GET', `${T}/keys/${key.id}`);
    conforms('GET /keys/{id} (200)', '/admin/v1/keys/{id}', 'get', r, 200);
    r = await call('GET', `${T}/keys/key_0000000000000000`);
    conforms('GET /keys/{id} of an unknown id is 404', '/admin/v1/keys/{id}', 'get', r, 404);
    check('  ... a not_found_error', isError(r, 'not_found_error'));
    r = await call('PATCH', `${T}/keys/${key.id}`, { owner: 'someone-else', expires_at: null, models: ['claude-*', 'gpt-*'] });
    conforms('PATCH /keys/{id} (200)', '/admin/v1/keys/{id}', 'patch', r, 200);
    check('  ... the changes are in the answer', r.json?.owner === 'someone-else' && r.json?.expires_at === null && r.json?.models?.length === 2);
    r = await call('PATCH', `${T}/keys/${key.id}`, { name: 'renamed' });
    conforms('PATCH /keys/{id} of a field it does not take is 400', '/admin/v1/keys/{id}', 'patch', r, 400);

    r = await call('POST', `${T}/budgets`, { scope: 'team', subject: team, metric: 'usd', period: 'daily', limit: 10.5 });
    conforms('POST /budgets creates a budget (201)', '/admin/v1/budgets', 'post', r, 201);
    const bud = r.json || {};
    check('  ... with the limit sent and nothing spent', bud.limit === 10.5 && bud.spent === 0);
    r = await call('POST', `${T}/budgets`, { scope: 'team', subject: team, metric: 'usd', period: 'daily', limit: 3 });
    conforms('POST /budgets on a taken (scope, subject, metric, period) is 409', '/admin/v1/budgets', 'post', r, 409);
    r = await call('POST', `${T}/budgets`, { scope: 'key', subject: key.id, metric: 'requests', period: 'minute', limit: 60 });
    conforms('POST /budgets creates a rate limit (201)', '/admin/v1/budgets', 'post', r, 201);
    const rate = r.json || {};
    check('  ... a minute window that resets', typeof rate.resets_at === 'string');
    r = await call('POST', `${T}/budgets`, { scope: 'key', subject: key.id, metric: 'requests', period: 'daily', limit: 1.5 });
    conforms('POST /budgets with a fractional requests limit is 400', '/admin/v1/budgets', 'post', r, 400);
    r = await call('GET', `${T}/budgets`);
    conforms('GET /budgets (200)', '/admin/v1/budgets', 'get', r, 200);
    r = await call('GET', `${T}/budgets?scope=team&subject=${team}`);
    conforms('GET /budgets?scope=team&subject=T (200)', '/admin/v1/budgets', 'get', r, 200);
    check('  ... only that subject\'s budgets', r.json?.data?.length === 1 && r.json.data[0].id === bud.id);
    r = await call('GET', `${T}/budgets/${bud.id}`);
    conforms('GET /budgets/{id} (200)', '/admin/v1/budgets/{id}', 'get', r, 200);
    r = await call('PATCH', `${T}/budgets/${bud.id}`, { limit: 20 });
    conforms('PATCH /budgets/{id} (200)', '/admin/v1/budgets/{id}', 'patch', r, 200);
    check('  ... the new limit', r.json?.limit === 20);
    r = await call('POST', `${T}/budgets/${bud.id}/reset`);
    conforms('POST /budgets/{id}/reset (200)', '/admin/v1/budgets/{id}/reset', 'post', r, 200);
    check('  ... nothing spent', r.json?.spent === 0);
    r = await call('POST', `${T}/budgets/bud_999999999/reset`);
    conforms('POST /budgets/{id}/reset of an unknown id is 404', '/admin/v1/budgets/{id}/reset', 'post', r, 404);
    for (const b of [bud, rate]) {
      r = await call('DELETE', `${T}/budgets/${b.id}`);
      conforms(`DELETE /budgets/{id} (${b.metric} ${b.period}) (200)`, '/admin/v1/budgets/{id}', 'delete', r, 200);
    }
    r = await call('GET', `${T}/budgets/${bud.id}`);
    conforms('GET /budgets/{id} of a deleted budget is 404', '/admin/v1/budgets/{id}', 'get', r, 404);

    r = await call('DELETE', `${T}/teams/${team}`);
    conforms('DELETE /teams/{name} with a live key in it is 409', '/admin/v1/teams/{name}', 'delete', r, 409);
    r = await call('DELETE', `${T}/keys/${key.id}`);
    conforms('DELETE /keys/{id} revokes (200)', '/admin/v1/keys/{id}', 'delete', r, 200);
    check('  ... revoked_at is set', typeof r.json?.revoked_at === 'string');
    r = await call('DELETE', `${T}/teams/${team}`);
    conforms('DELETE /teams/{name} (200)', '/admin/v1/teams/{name}', 'delete', r, 200);
    r = await call('GET', `${T}/teams/${team}`);
    conforms('GET /teams/{name} of a deleted team is 404', '/admin/v1/teams/{name}', 'get', r, 404);

    r = await call('PUT', `${T}/keys`, { name: `${keyName}-put` });
    check('PUT /keys (a method the route does not take) is 405 in the error shape', r.status === 405 && isError(r, 'method_not_allowed'),
      `HTTP ${r.status} ${r.text.slice(0, 200)}`);
    r = await call('GET', `${T}/no-such-route-${sfx}`);
    check('an undocumented path under /admin/v1 is 404 in the error shape', r.status === 404 && isError(r, 'not_found_error'),
      `HTTP ${r.status} ${r.text.slice(0, 200)}`);
    const untouched = ops.map(([p, m]) => `${m} ${p}`).filter(o => !called.has(o));
    check('every documented operation was called', untouched.length === 0, untouched.join(', '));

    console.log(`${pass} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  })().catch(e => {
    notOk('the admin API answered', e.message);
    console.log(`${pass} passed, ${failed} failed`);
    process.exit(1);
  });
}

main();
