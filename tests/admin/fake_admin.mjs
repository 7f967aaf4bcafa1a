// A strict in-memory fake of Warden's admin API (/admin/v1, docs/governance.md "Admin API"), for testing clients
// (the `warden keys|teams|budgets` CLI, openapi_check.mjs) without a database: it checks the method, the path,
// the admin key (Bearer or x-api-key), the Content-Type and every body field, and answers in the contract's shapes.
// Usage: node fake_admin.mjs --key ADMIN_KEY [--port N] [--log FILE] [--newline] [--tls-cert PEM --tls-key PEM]
//   --tls-cert/--tls-key serve HTTPS (for a client's CA option);
//   --newline ends every answer with "\n" (as some servers do: clients must accept it); prints {"port": N} once listening on 127.0.0.1; --log appends one JSON line per request:
//   {"method", "path", "authorization", "x_api_key", "content_type", "body"} (tests check what the client sent).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const MAX_BODY = 64 * 1024;
const NAME_RE = /^[A-Za-z0-9._@-]{1,128}$/;
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

function parseArgs(argv) {
  const o = { port: 0, key: null, log: null, newline: false, tlsCert: null, tlsKey: null };
  for (let i = 0; i < argv.length; i++) {
    const need = () => { if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`); return argv[++i]; };
    if (argv[i] === '--port') o.port = Number(need());
    else if (argv[i] === '--key') o.key = need();
    else if (argv[i] === '--log') o.log = need();
    else if (argv[i] === '--newline') o.newline = true;
    else if (argv[i] === '--tls-cert') o.tlsCert = need();
    else if (argv[i] === '--tls-key') o.tlsKey = need();
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!o.key) throw new Error('--key is required');
  if (!o.tlsCert !== !o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  return o;
}

class ApiError extends Error {
  constructor(status, type, message) { super(message); this.status = status; this.type = type; }
}
const bad = m => new ApiError(400, 'invalid_request_error', m);
const notFound = m => new ApiError(404, 'not_found_error', m);
const conflict = m => new ApiError(409, 'conflict_error', m);

// JSON.parse keeps the last of repeated keys; the contract says a repeated key is a 400, so scan for them first.
function findRepeatedKey(text) {
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\r\n'.includes(text[i])) i++; };
  const str = () => { const s = i; i++; while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1; i++; return JSON.parse(text.slice(s, i)); };
  const value = () => {
    ws();
    if (text[i] === '{') {
      i++; const seen = new Set(); ws();
      if (text[i] === '}') { i++; return null; }
      for (;;) {
        ws(); const k = str();
        if (seen.has(k)) return k;
        seen.add(k); ws(); i++; // ':'
        const r = value(); if (r !== null) return r;
        ws(); if (text[i++] === '}') return null;
      }
    }
    if (text[i] === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return null; }
      for (;;) { const r = value(); if (r !== null) return r; ws(); if (text[i++] === ']') return null; }
    }
    if (text[i] === '"') { str(); return null; }
    while (i < text.length && !',]}'.includes(text[i]) && !' \t\r\n'.includes(text[i])) i++;
    return null;
  };
  return value();
}

const now = () => new Date();
const iso = d => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function periodBounds(period, t = now()) {
  const y = t.getUTCFullYear(), m = t.getUTCMonth(), d = t.getUTCDate();
  switch (period) {
    case 'minute': { const s = new Date(Math.floor(t.getTime() / 60000) * 60000); return [s, new Date(s.getTime() + 60000)]; }
    case 'daily': return [new Date(Date.UTC(y, m, d)), new Date(Date.UTC(y, m, d + 1))];
    case 'weekly': { const back = (t.getUTCDay() + 6) % 7; return [new Date(Date.UTC(y, m, d - back)), new Date(Date.UTC(y, m, d - back + 7))]; }
    case 'monthly': return [new Date(Date.UTC(y, m, 1)), new Date(Date.UTC(y, m + 1, 1))];
    default: return [new Date(Date.UTC(1970, 0, 1)), null];
  }
}

function checkFields(body, allowed) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a JSON object');
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw bad(`${k}: unknown field`);
}
const isStr = v => typeof v === 'string';
function name(field, v) { if (!isStr(v) || !NAME_RE.test(v)) throw bad(`${field}: 1-128 of [A-Za-z0-9._@-]`); return v; }
function list(field, v, maxLen) {
  if (!Array.isArray(v) || v.length > 64) throw bad(`${field}: an array of at most 64 strings`);
  for (const s of v) if (!isStr(s) || s.length < 1 || s.length > maxLen) throw bad(`${field}: each 1-${maxLen} characters`);
  return [...v];
}
function expiry(v) {
  if (!isStr(v) || !TIME_RE.test(v) || Number.isNaN(Date.parse(v))) throw bad('expires_at: RFC 3339 UTC, like 2027-01-31T00:00:00Z');
  if (Date.parse(v) <= Date.now()) throw bad('expires_at: must be in the future');
  return v;
}
function limitOf(v, metric) {
  if (typeof v !== 'number' || !(v > 0) || v > 1e15) throw bad('limit: a number > 0, at most 10^15');
  if (metric === 'usd') { if (Math.abs(v * 1e6 - Math.round(v * 1e6)) > 1e-6) throw bad('limit: USD with at most 6 decimals'); }
  else if (!Number.isInteger(v)) throw bad(`limit: ${metric} is an integer`);
  return v;
}

export function createAdmin(adminKey) {
  const teams = new Map(); // name -> team
  const keys = new Map(); // id -> key record (with secret hash, never answered)
  const budgets = new Map(); // id -> budget
  let nextBudget = 1;
  const orgOf = team => (team && teams.has(team) ? teams.get(team).org : null);
  const keyView = k => ({ id: k.id, name: k.name, owner: k.owner, team: k.team, org: orgOf(k.team), models: k.models,
    roles: k.roles, prefix: k.prefix, created_at: k.created_at, expires_at: k.expires_at, revoked_at: k.revoked_at });
  const budgetView = b => {
    const [s, e] = periodBounds(b.period);
    if (b.period_start !== iso(s)) { b.period_start = iso(s); b.spent = 0; }
    return { id: b.id, scope: b.scope, subject: b.subject, metric: b.metric, period: b.period, limit: b.limit,
      spent: b.spent, period_start: b.period_start, resets_at: e ? iso(e) : null };
  };
  const getKey = id => { const k = keys.get(id); if (!k) throw notFound(`key ${id}: not found`); return k; };
  const getTeam = n => { const t = teams.get(n); if (!t) throw notFound(`team ${n}: not found`); return t; };
  const getBudget = id => { const b = budgets.get(id); if (!b) throw notFound(`budget ${id}: not found`); return b; };
  const existingTeam = (field, v) => { name(field, v); if (!teams.has(v)) throw bad(`${field}: no team ${v}`); return v; };
  const noQuery = q => { for (const k of q.keys()) throw bad(`${k}: unknown query parameter`); };
  const onlyQuery = (q, allowed) => { for (const k of q.keys()) if (!allowed.includes(k)) throw bad(`${k}: unknown query parameter`); };

  // route(method, segments after /admin/v1, query, body) -> [status, object]; methods with a body get it parsed.
  const routes = [
    [/^keys$/, {
      POST: (m, q, b) => {
        noQuery(q);
        checkFields(b, ['name', 'owner', 'team', 'models', 'roles', 'expires_at']);
        const k = { name: name('name', b.name), owner: null, team: null, models: [], roles: [], expires_at: null, revoked_at: null };
        if ('owner' in b) { if (!isStr(b.owner) || b.owner.length > 128) throw bad('owner: a string of at most 128'); k.owner = b.owner; }
        if ('team' in b) k.team = existingTeam('team', b.team);
        if ('models' in b) k.models = list('models', b.models, 256);
        if ('roles' in b) k.roles = list('roles', b.roles, 128);
        if ('expires_at' in b) k.expires_at = expiry(b.expires_at);
        for (const o of keys.values()) if (o.name === k.name && !o.revoked_at) throw conflict(`name: a key named ${k.name} exists`);
        const secret = 'wk-' + crypto.randomBytes(32).toString('base64url');
        Object.assign(k, { id: 'key_' + crypto.randomBytes(8).toString('hex'), prefix: secret.slice(0, 11),
          created_at: iso(now()), seq: keys.size });
        keys.set(k.id, k);
        return [201, { ...keyView(k), key: secret }];
      },
      GET: (m, q) => {
        onlyQuery(q, ['team']);
        const team = q.get('team');
        const all = [...keys.values()].filter(k => team === null || k.team === team).sort((a, b) => b.seq - a.seq);
        return [200, { data: all.slice(0, 1000).map(keyView) }];
      },
    }],
    [/^keys\/([^/]+)$/, {
      GET: (m, q) => { noQuery(q); return [200, keyView(getKey(m[1]))]; },
      PATCH: (m, q, b) => {
        noQuery(q);
        checkFields(b, ['owner', 'team', 'models', 'roles', 'expires_at']);
        const k = getKey(m[1]);
        if (k.revoked_at) throw conflict(`key ${k.id}: revoked`);
        const n = { ...k };
        if ('owner' in b) { if (!isStr(b.owner) || b.owner.length > 128) throw bad('owner: a string of at most 128'); n.owner = b.owner; }
        if ('team' in b) n.team = b.team === null ? null : existingTeam('team', b.team);
        if ('models' in b) n.models = list('models', b.models, 256);
        if ('roles' in b) n.roles = list('roles', b.roles, 128);
        if ('expires_at' in b) n.expires_at = b.expires_at === null ? null : expiry(b.expires_at);
        Object.assign(k, n);
        return [200, keyView(k)];
      },
      DELETE: (m, q) => {
        noQuery(q);
        const k = getKey(m[1]);
        if (!k.revoked_at) k.revoked_at = iso(now());
        return [200, keyView(k)];
      },
    }],
    [/^teams$/, {
      POST: (m, q, b) => {
        noQuery(q);
        checkFields(b, ['name', 'org']);
        const t = { name: name('name', b.name), org: 'org' in b ? name('org', b.org) : null, created_at: iso(now()) };
        if (teams.has(t.name)) throw conflict(`name: a team named ${t.name} exists`);
        teams.set(t.name, t);
        return [201, { ...t }];
      },
      GET: (m, q) => { noQuery(q); return [200, { data: [...teams.values()].map(t => ({ ...t })) }]; },
    }],
    [/^teams\/([^/]+)$/, {
      GET: (m, q) => { noQuery(q); return [200, { ...getTeam(m[1]) }]; },
      DELETE: (m, q) => {
        noQuery(q);
        const t = getTeam(m[1]);
        for (const k of keys.values()) if (k.team === t.name && !k.revoked_at) throw conflict(`team ${t.name}: key ${k.id} is in it`);
        teams.delete(t.name);
        return [200, { ...t }];
      },
    }],
    [/^budgets$/, {
      POST: (m, q, b) => {
        noQuery(q);
        checkFields(b, ['scope', 'subject', 'metric', 'period', 'limit']);
        for (const f of ['scope', 'subject', 'metric', 'period', 'limit']) if (!(f in b)) throw bad(`${f}: required`);
        if (!['key', 'team', 'org'].includes(b.scope)) throw bad('scope: key, team or org');
        if (!isStr(b.subject) || b.subject.length < 1 || b.subject.length > 128) throw bad('subject: 1-128 characters');
        if (!['usd', 'requests', 'tokens'].includes(b.metric)) throw bad('metric: usd, requests or tokens');
        if (!['minute', 'daily', 'weekly', 'monthly', 'total'].includes(b.period)) throw bad('period: minute, daily, weekly, monthly or total');
        const limit = limitOf(b.limit, b.metric);
        for (const o of budgets.values())
          if (o.scope === b.scope && o.subject === b.subject && o.metric === b.metric && o.period === b.period)
            throw conflict(`a ${b.metric} ${b.period} budget on ${b.scope} ${b.subject} exists (${o.id})`);
        const bud = { id: `bud_${nextBudget++}`, scope: b.scope, subject: b.subject, metric: b.metric, period: b.period, limit, spent: 0, period_start: null };
        budgets.set(bud.id, bud);
        return [201, budgetView(bud)];
      },
      GET: (m, q) => {
        onlyQuery(q, ['scope', 'subject']);
        const s = q.get('scope'), x = q.get('subject');
        return [200, { data: [...budgets.values()].filter(b => (s === null || b.scope === s) && (x === null || b.subject === x)).map(budgetView) }];
      },
    }],
    [/^budgets\/([^/]+)$/, {
      GET: (m, q) => { noQuery(q); return [200, budgetView(getBudget(m[1]))]; },
      PATCH: (m, q, b) => {
        noQuery(q);
        checkFields(b, ['limit']);
        const bud = getBudget(m[1]);
        if (!('limit' in b)) throw bad('limit: required');
        bud.limit = limitOf(b.limit, bud.metric);
        return [200, budgetView(bud)];
      },
      DELETE: (m, q) => { noQuery(q); const bud = getBudget(m[1]); budgets.delete(bud.id); return [200, budgetView(bud)]; },
    }],
    [/^budgets\/([^/]+)\/reset$/, {
      POST: (m, q, b) => {
        noQuery(q);
        if (b !== undefined) checkFields(b, []);
        const bud = getBudget(m[1]);
        bud.spent = 0;
        return [200, budgetView(bud)];
      },
    }],
  ];

  const authorised = req => {
    const a = req.headers.authorization, x = req.headers['x-api-key'];
    if (a !== undefined) return a === `Bearer ${adminKey}`;
    return x === adminKey;
  };

  // One request: the raw body text (or null) -> [status, object].
  return function handle(req, text) {
    try {
      const u = new URL(req.url, 'http://fake');
      if (!u.pathname.startsWith('/admin/v1/')) throw notFound(`${u.pathname}: no such route`);
      const rest = u.pathname.slice('/admin/v1/'.length);
      const route = routes.find(([re]) => re.test(rest));
      if (!route) throw notFound(`${u.pathname}: no such route`);
      if (!authorised(req)) throw new ApiError(401, 'authentication_error', 'a valid admin key is required (x-api-key or Authorization: Bearer)');
      const h = route[1][req.method];
      if (!h) throw new ApiError(405, 'method_not_allowed', `${req.method} ${u.pathname}: allowed ${Object.keys(route[1]).join(', ')}`);
      let m;
      try { m = rest.match(route[0]).map(decodeURIComponent); } catch { throw notFound(`${u.pathname}: no such route`); }
      let body;
      if (req.method === 'POST' || req.method === 'PATCH') {
        const emptyOk = /\/reset$/.test(rest);
        if (text.length === 0 && emptyOk) body = undefined;
        else {
          if (!/^application\/json(\s*;.*)?$/i.test(req.headers['content-type'] || '')) throw bad('Content-Type: must be application/json');
          try { body = JSON.parse(text); } catch { throw bad('body: not valid JSON'); }
          const rep = findRepeatedKey(text);
          if (rep !== null) throw bad(`${rep}: repeated`);
        }
      } else if (text.length > 0) throw bad(`${req.method}: takes no body`);
      return h(m, u.searchParams, body);
    } catch (e) {
      if (e instanceof ApiError) return [e.status, { error: { type: e.type, message: e.message } }];
      throw e;
    }
  };
}

function main(argv) {
  let opts;
  try { opts = parseArgs(argv); } catch (e) {
    process.stderr.write(`fake_admin: ${e.message}\nusage: node fake_admin.mjs --key ADMIN_KEY [--port N] [--log FILE] [--newline] [--tls-cert PEM --tls-key PEM]\n`);
    process.exit(2);
  }
  const handle = createAdmin(opts.key);
  const onRequest = (req, res) => {
    const chunks = [];
    let size = 0, over = false;
    req.on('data', c => { size += c.length; if (size > MAX_BODY) over = true; else chunks.push(c); });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (opts.log)
        fs.appendFileSync(opts.log, JSON.stringify({ method: req.method, path: req.url,
          authorization: req.headers.authorization ?? null, x_api_key: req.headers['x-api-key'] ?? null,
          content_type: req.headers['content-type'] ?? null, body: text }) + '\n');
      let status, obj;
      if (over) [status, obj] = [413, { error: { type: 'request_too_large', message: 'body: at most 64 KiB' } }];
      else {
        try { [status, obj] = handle(req, text); } catch (e) {
          [status, obj] = [500, { error: { type: 'api_error', message: `fake_admin: ${e.message}` } }];
        }
      }
      const out = JSON.stringify(obj) + (opts.newline ? '\n' : '');
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  };
  const srv = opts.tlsCert
    ? https.createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) }, onRequest)
    : http.createServer(onRequest);
  srv.listen(opts.port, '127.0.0.1', () => console.log(JSON.stringify({ port: srv.address().port })));
  for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => { srv.close(); process.exit(0); });
}

if (process.argv[1] && import.meta.url === new URL(`file://${fs.realpathSync(process.argv[1])}`).href) main(process.argv.slice(2));
