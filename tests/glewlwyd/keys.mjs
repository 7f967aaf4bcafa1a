// Signing keys and plugin parameters for the test glewlwyd (tests/glewlwyd/setup.sh), with node's own crypto:
// glewlwyd takes its OIDC signing keys as a private JWKS whose first key signs unless a client names another.
//   node keys.mjs new                          -> a private JWKS: one RSA (RS256) key, one P-256 (ES256) key
//   node keys.mjs rotate FILE                  -> FILE's JWKS with a new RSA key first (the new default signer)
//   node keys.mjs retire FILE                  -> FILE's JWKS without the older RSA keys (the newest RSA stays)
//   node keys.mjs params --iss I --jwks FILE   -> the oidc plugin instance's parameters (JSON)
import { generateKeyPairSync, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

function thumbprint(jwk) { // RFC 7638: the required members in lexicographic order
  const m = jwk.kty === 'RSA' ? { e: jwk.e, kty: 'RSA', n: jwk.n } : { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(m)).digest('base64url');
}
function key(type) {
  const { privateKey } = type === 'RSA' ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, use: 'sig', alg: type === 'RSA' ? 'RS256' : 'ES256', kid: thumbprint(jwk) };
}
function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || !process.argv[i + 1]) { console.error(`keys.mjs: ${name} is required`); process.exit(2); }
  return process.argv[i + 1];
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const cmd = process.argv[2];
if (cmd === 'new') {
  out({ keys: [key('RSA'), key('EC')] });
} else if (cmd === 'rotate') {
  const jwks = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  out({ keys: [key('RSA'), ...jwks.keys] });
} else if (cmd === 'retire') {
  const jwks = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  const newest = jwks.keys.find((k) => k.kty === 'RSA');
  out({ keys: jwks.keys.filter((k) => k.kty !== 'RSA' || k === newest) });
} else if (cmd === 'params') {
  const jwks = readFileSync(arg('--jwks'), 'utf8').trim();
  out({
    iss: arg('--iss'),
    'jwt-type': 'rsa',
    'jwt-key-size': '256',
    'jwks-private': jwks,
    'default-kid': '',
    'client-sign_kid-parameter': 'sign_kid',
    'jwks-show': true,
    'access-token-duration': 600,
    'refresh-token-duration': 3600,
    'code-duration': 600,
    'refresh-token-rolling': true,
    'allow-non-oidc': true,
    'auth-type-code-enabled': true,
    'auth-type-token-enabled': false,
    'auth-type-id-token-enabled': true,
    'auth-type-none-enabled': false,
    'auth-type-password-enabled': true,
    'auth-type-client-enabled': true,
    'auth-type-device-enabled': false,
    'auth-type-refresh-enabled': true,
    scope: [],
    'additional-parameters': [],
    claims: [],
    'secret-type': 'public',
    'name-claim': 'no',
    'email-claim': 'mandatory',
    'scope-claim': 'no',
    'allowed-scope': ['openid', 'warden'],
    'resource-allowed': true,
    'resource-scope': { warden: [process.env.WD_GL_AUDIENCE || 'https://warden.example/'] },
    'resource-client-property': 'resource',
    'resource-scope-and-client-property': false,
    'request-parameter-allow': false,
    'request-maximum-exp': 3600,
  });
} else {
  console.error('usage: keys.mjs new | rotate FILE | retire FILE | params --iss I --jwks FILE');
  process.exit(2);
}
