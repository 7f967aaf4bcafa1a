// Mints valid and hostile JWTs for Warden's OIDC tests with node's own crypto: real IdP keys (from idp.mjs's
// /_test/keys) or the tool's persistent local keys, and `serve-jwks` publishes those local keys for issuers that
// cannot be reached offline (Okta- and Entra-shaped). Usage in README.md; one token on stdout per call.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

const KINDS = [
  'valid-rs256', 'valid-es256', 'valid-ps256', 'valid-eddsa', 'none', 'hs256-with-rsa-public-key',
  'wrong-issuer', 'wrong-audience', 'expired', 'not-yet-valid', 'unknown-kid', 'bad-signature', 'truncated',
  'oversized', 'dup-header-key', 'dup-claim-key', 'non-json', 'jku', 'x5u', 'embedded-jwk', 'at+jwt',
  'okta-shaped', 'entra-v2', 'entra-v1', 'entra-overage',
];

// Fixed identities for the vendor-shaped kinds, so a test can configure Warden with the same strings.
const ENTRA_TID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ENTRA_OID = '00000000-0000-0000-0000-0000000000a1';
const OKTA_ISSUER = 'https://warden-test.okta.com/oauth2/default';

function usage(msg) {
  if (msg) process.stderr.write(`tokens.mjs: ${msg}\n`);
  process.stderr.write(`usage: node tokens.mjs KIND --issuer I --aud A [--keys-url URL] [--claims JSON]
         [--keydir DIR] [--signer idp|local] [--tid GUID] [--ttl SECONDS] [--jku-url URL] [--print-jwk]
       node tokens.mjs serve-jwks [--port 0] [--keydir DIR] [--issuer I]
       node tokens.mjs list
KIND: ${KINDS.join(' ')}
`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { claims: {}, ttl: 600, printJwk: false, port: 0 };
  const positional = [];
  const valueOf = (i) => {
    if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--issuer': opts.issuer = valueOf(i); i++; break;
      case '--aud': opts.aud = valueOf(i); i++; break;
      case '--keys-url': opts.keysUrl = valueOf(i); i++; break;
      case '--keydir': opts.keydir = valueOf(i); i++; break;
      case '--signer': opts.signer = valueOf(i); i++; break;
      case '--tid': opts.tid = valueOf(i); i++; break;
      case '--jku-url': opts.jkuUrl = valueOf(i); i++; break;
      case '--ttl': opts.ttl = Number(valueOf(i)); i++; break;
      case '--port': opts.port = Number(valueOf(i)); i++; break;
      case '--print-jwk': opts.printJwk = true; break;
      case '--claims': {
        try {
          opts.claims = JSON.parse(valueOf(i));
        } catch {
          usage('--claims is not JSON');
        }
        if (opts.claims === null || typeof opts.claims !== 'object' || Array.isArray(opts.claims)) {
          usage('--claims must be a JSON object');
        }
        i++;
        break;
      }
      default:
        if (a.startsWith('--')) usage(`unknown option ${a}`);
        positional.push(a);
    }
  }
  if (positional.length !== 1) usage('one KIND expected');
  opts.kind = positional[0];
  if (opts.signer && opts.signer !== 'idp' && opts.signer !== 'local') usage('--signer is idp or local');
  if (!Number.isFinite(opts.ttl) || opts.ttl <= 0) usage('--ttl must be a positive number');
  // A default shared by every call of one user, so the key a token names is the key serve-jwks publishes.
  opts.keydir ??= path.join(os.tmpdir(), `warden-idp-keys-${process.getuid?.() ?? 'user'}`);
  return opts;
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const b64uJson = (obj) => b64u(JSON.stringify(obj));

function thumbprint(jwk) {
  const members = jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function generateJwk(alg) {
  let pair;
  if (alg === 'ES256') pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  else if (alg === 'EdDSA') pair = crypto.generateKeyPairSync('ed25519');
  else pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = pair.privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg, use: 'sig' };
}

function publicJwk(k) {
  const out = { kty: k.kty, kid: k.kid, alg: k.alg, use: k.use };
  for (const m of ['n', 'e', 'crv', 'x', 'y']) if (k[m] !== undefined) out[m] = k[m];
  return out;
}

// The tool's own keys, one file per algorithm, created once: parallel callers race on link(), the loser reads the
// winner's file, so every caller ends up with the same key.
const LOCAL_ALGS = { rs256: 'RS256', ps256: 'PS256', es256: 'ES256', eddsa: 'EdDSA' };

function localKeys(keydir) {
  fs.mkdirSync(keydir, { recursive: true, mode: 0o700 });
  const out = {};
  for (const [name, alg] of Object.entries(LOCAL_ALGS)) {
    const file = path.join(keydir, `${name}.jwk.json`);
    if (!fs.existsSync(file)) {
      const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
      fs.writeFileSync(tmp, JSON.stringify(generateJwk(alg)), { mode: 0o600 });
      try {
        fs.linkSync(tmp, file);
      } catch (err) {
        if (err.code !== 'EEXIST') throw err;
      } finally {
        fs.unlinkSync(tmp);
      }
    }
    out[name] = JSON.parse(fs.readFileSync(file, 'utf8'));
  }
  return out;
}

async function idpKeys(keysUrl) {
  const res = await fetch(keysUrl, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${keysUrl}: HTTP ${res.status}`);
  const { keys } = await res.json();
  // idp.mjs lists the newest key first; the first RSA key is the one it signs with.
  const rsa = keys.find((k) => k.kty === 'RSA');
  const ec = keys.find((k) => k.kty === 'EC');
  if (!rsa || !ec) throw new Error(`${keysUrl}: no RSA or no EC key`);
  return { rs256: rsa, ps256: rsa, es256: ec };
}

function signBytes(alg, data, jwk) {
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  switch (alg) {
    case 'RS256': return crypto.sign('sha256', data, key);
    case 'PS256':
      return crypto.sign('sha256', data, {
        key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
      });
    case 'ES256': return crypto.sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA': return crypto.sign(null, data, key);
    default: throw new Error(`cannot sign with ${alg}`);
  }
}

// Signs already-encoded header and payload segments, so hostile kinds can put raw (even invalid) JSON in them.
function signRaw(headerSeg, payloadSeg, alg, jwk) {
  const input = `${headerSeg}.${payloadSeg}`;
  return `${input}.${b64u(signBytes(alg, Buffer.from(input), jwk))}`;
}

function sign(header, claims, jwk) {
  return signRaw(b64uJson(header), b64uJson(claims), header.alg, jwk);
}

function baseClaims(opts, iss, overrides = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss,
    sub: 'test-user',
    aud: opts.aud,
    iat: now,
    exp: now + opts.ttl,
    jti: crypto.randomBytes(12).toString('base64url'),
    ...overrides,
    ...opts.claims,
  };
}

function attackerKey() {
  return generateJwk('RS256');
}

async function mint(opts) {
  const { kind } = opts;
  if (!KINDS.includes(kind)) usage(`unknown KIND ${kind}`);
  const local = localKeys(opts.keydir);
  // Entra issuers are never the local IdP, so their tokens use the local keys that serve-jwks publishes; an
  // Okta-shaped token follows the rule of the other kinds (the IdP's keys when --keys-url is given).
  const entra = kind.startsWith('entra-');
  const signerName = opts.signer ?? (opts.keysUrl && !entra ? 'idp' : 'local');
  const keys = signerName === 'idp' ? await (async () => {
    if (!opts.keysUrl) usage('--signer idp needs --keys-url');
    return idpKeys(opts.keysUrl);
  })() : local;
  if (kind !== 'okta-shaped' && !entra && !opts.issuer) usage(`${kind} needs --issuer`);
  if (!opts.aud) usage(`${kind} needs --aud`);

  const rs = keys.rs256;
  const now = Math.floor(Date.now() / 1000);
  const hdr = (jwk, alg = jwk.alg, extra = {}) => ({ alg, typ: 'JWT', kid: jwk.kid, ...extra });
  const valid = (extra = {}) => sign(hdr(rs), baseClaims(opts, opts.issuer, extra), rs);
  const tid = opts.tid ?? ENTRA_TID;
  let jwkOut;
  let token;

  switch (kind) {
    case 'valid-rs256': token = valid(); break;
    case 'valid-es256': token = sign(hdr(keys.es256), baseClaims(opts, opts.issuer), keys.es256); break;
    case 'valid-ps256': token = sign(hdr(keys.ps256, 'PS256'), baseClaims(opts, opts.issuer), keys.ps256); break;
    case 'valid-eddsa': {
      const k = local.eddsa;
      token = sign(hdr(k), baseClaims(opts, opts.issuer), k);
      jwkOut = publicJwk(k);
      break;
    }
    case 'none':
      token = `${b64uJson({ alg: 'none', typ: 'JWT' })}.${b64uJson(baseClaims(opts, opts.issuer))}.`;
      break;
    case 'hs256-with-rsa-public-key': {
      // The confusion attack: a verifier that lets the header pick the algorithm would HMAC with the key's PEM.
      const pem = crypto.createPublicKey({ key: rs, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const input = `${b64uJson({ alg: 'HS256', typ: 'JWT', kid: rs.kid })}.${b64uJson(baseClaims(opts, opts.issuer))}`;
      token = `${input}.${b64u(crypto.createHmac('sha256', pem).update(input).digest())}`;
      break;
    }
    case 'wrong-issuer':
      // Shares the real issuer as a prefix, so a prefix comparison lets it through.
      token = sign(hdr(rs), baseClaims(opts, `${opts.issuer}-wrong`), rs);
      break;
    case 'wrong-audience': token = valid({ aud: `${opts.aud}-wrong` }); break;
    case 'expired': token = valid({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 }); break;
    case 'not-yet-valid': token = valid({ iat: now, nbf: now + 3600, exp: now + 7200 }); break;
    case 'unknown-kid': {
      const k = attackerKey();
      token = sign(hdr(k), baseClaims(opts, opts.issuer), k);
      break;
    }
    case 'bad-signature': {
      const [h, p, s] = valid().split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[sig.length >> 1] ^= 0x01;
      token = `${h}.${p}.${b64u(sig)}`;
      break;
    }
    case 'truncated': {
      const t = valid();
      token = t.slice(0, t.length - 40);
      break;
    }
    case 'oversized': {
      // 20 KiB in all: the claim is padded until the whole compact token reaches the size.
      const target = 20 * 1024;
      const probe = valid({ pad: '' });
      const pad = 'x'.repeat(Math.ceil(((target - probe.length) * 3) / 4) + 4);
      token = valid({ pad });
      break;
    }
    case 'dup-header-key': {
      // Both copies agree, so only a parser that refuses duplicate members can tell this from a valid token.
      const h = `{"alg":"${rs.alg}","typ":"JWT","kid":${JSON.stringify(rs.kid)},"alg":"${rs.alg}"}`;
      token = signRaw(b64u(h), b64uJson(baseClaims(opts, opts.issuer)), rs.alg, rs);
      break;
    }
    case 'dup-claim-key': {
      // Two subjects: which one a lenient parser keeps decides who the caller is.
      const body = JSON.stringify(baseClaims(opts, opts.issuer));
      const p = `${body.slice(0, -1)},"sub":"admin"}`;
      token = signRaw(b64uJson(hdr(rs)), b64u(p), rs.alg, rs);
      break;
    }
    case 'non-json':
      token = signRaw(b64uJson(hdr(rs)), b64u('{"iss": not json'), rs.alg, rs);
      break;
    case 'jku':
    case 'x5u': {
      const k = attackerKey();
      const url = opts.jkuUrl ?? 'http://127.0.0.1:9/attacker-jwks.json';
      token = sign(hdr(k, k.alg, { [kind]: url }), baseClaims(opts, opts.issuer), k);
      break;
    }
    case 'embedded-jwk': {
      const k = attackerKey();
      token = sign(hdr(k, k.alg, { jwk: publicJwk(k) }), baseClaims(opts, opts.issuer), k);
      break;
    }
    case 'at+jwt':
      token = sign(hdr(rs, rs.alg, { typ: 'at+jwt' }),
        baseClaims(opts, opts.issuer, { client_id: 'warden-test', scope: 'warden' }), rs);
      break;
    case 'okta-shaped': {
      const k = keys.rs256;
      token = sign(hdr(k), baseClaims(opts, opts.issuer ?? OKTA_ISSUER, {
        sub: 'dev@example.test',
        ver: 1,
        cid: '0oa1warden',
        uid: '00u1warden',
        scp: ['openid', 'warden'],
        groups: ['Everyone', 'warden-developers'],
      }), k);
      break;
    }
    case 'entra-v2':
    case 'entra-overage': {
      const k = keys.rs256;
      const overage = kind === 'entra-overage';
      const claims = {
        sub: 'aZbE7wSrcjsq2mCqKq4Jq0wbd3y3M5a6U2m9d7bVc0Q',
        ver: '2.0',
        tid,
        oid: ENTRA_OID,
        azp: '11111111-2222-3333-4444-555555555555',
        preferred_username: 'dev@example.test',
        name: 'Dev Example',
        roles: ['Warden.User'],
        scp: 'access_as_user',
      };
      if (overage) {
        // Too many groups for the token: Entra names a Graph source instead of listing them.
        claims._claim_names = { groups: 'src1' };
        claims._claim_sources = {
          src1: { endpoint: `https://graph.microsoft.com/v1.0/users/${ENTRA_OID}/getMemberObjects` },
        };
      } else {
        claims.groups = ['a1b2c3d4-0000-0000-0000-000000000001', 'a1b2c3d4-0000-0000-0000-000000000002'];
      }
      token = sign(hdr(k), baseClaims(opts, `https://login.microsoftonline.com/${tid}/v2.0`, claims), k);
      break;
    }
    case 'entra-v1': {
      const k = keys.rs256;
      token = sign(hdr(k, k.alg, { x5t: k.kid }), baseClaims(opts, `https://sts.windows.net/${tid}/`, {
        sub: 'aZbE7wSrcjsq2mCqKq4Jq0wbd3y3M5a6U2m9d7bVc0Q',
        ver: '1.0',
        tid,
        oid: ENTRA_OID,
        appid: '11111111-2222-3333-4444-555555555555',
        upn: 'dev@example.test',
        unique_name: 'dev@example.test',
        roles: ['Warden.User'],
        groups: ['a1b2c3d4-0000-0000-0000-000000000001'],
        scp: 'access_as_user',
      }), k);
      break;
    }
    default:
      usage(`unknown KIND ${kind}`);
  }
  process.stdout.write(`${token}\n`);
  if (opts.printJwk) process.stdout.write(`${JSON.stringify(jwkOut ?? publicJwk(local.eddsa))}\n`);
}

function serveJwks(opts) {
  const keys = localKeys(opts.keydir);
  const jwks = JSON.stringify({ keys: Object.values(keys).map(publicJwk) });
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://127.0.0.1');
    const base = `http://127.0.0.1:${server.address().port}`;
    let body;
    if (req.method !== 'GET') body = null;
    else if (pathname === '/jwks' || pathname === '/.well-known/jwks.json') body = jwks;
    else if (pathname.endsWith('/.well-known/openid-configuration') && opts.issuer) {
      // A discovery document for an issuer that is not reachable offline, pointing at these keys.
      body = JSON.stringify({
        issuer: opts.issuer,
        jwks_uri: `${base}/jwks`,
        id_token_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
      });
    }
    if (body === null || body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.listen(opts.port, '127.0.0.1', () => {
    const { port } = server.address();
    process.stdout.write(`${JSON.stringify({
      port,
      jwks_uri: `http://127.0.0.1:${port}/jwks`,
      kids: Object.fromEntries(Object.entries(keys).map(([n, k]) => [n, k.kid])),
    })}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const argv = process.argv.slice(2);
if (argv[0] === 'list') {
  process.stdout.write(`${KINDS.join('\n')}\n`);
} else if (argv[0] === 'serve-jwks') {
  const opts = parseArgs(['serve-jwks', ...argv.slice(1)]);
  serveJwks(opts);
} else {
  mint(parseArgs(argv)).catch((err) => {
    process.stderr.write(`tokens.mjs: ${err?.message ?? err}\n`);
    process.exit(1);
  });
}
