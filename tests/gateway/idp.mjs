// The IdP of the gateway sign-in tests: oidc-provider with a confidential client `claude-gateway` whose redirect is
// the one argument (a gateway's {public_url}/oauth/callback), its dev login and consent pages (tests/gateway/probe.mjs
// plays them), groups by login name (alice: engineering, bob: finance) and a refresh token rotated on every use.
// Usage: node tests/gateway/idp.mjs REDIRECT_URI   (prints {"port","issuer"} once listening)
import * as http from 'node:http';
const { Provider } = await import(new URL('../idp/node_modules/oidc-provider/lib/index.js', import.meta.url));
const GROUPS = { alice: ['engineering'], bob: ['finance'] };
const server = http.createServer();
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'claude-gateway', client_secret: 'claude-gateway-secret-0123456789',
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    redirect_uris: [process.argv[2]], token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, name: sub,
    email: `${sub}@example.test`, email_verified: true, groups: GROUPS[sub] ?? [] }) }),
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
  pkce: { required: () => false },
  ttl: { AccessToken: 600, IdToken: 600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
  // offline_access is granted in the authorization code flow only with prompt=consent; the dev consent page
  // grants whatever was asked, so a refresh token is issued.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Every refresh rotates, so the probe sees whether the gateway hands the IdP's new refresh token on and
  // what a replayed (consumed) one gets.
  rotateRefreshToken: () => true,
});
provider.proxy = false;
server.on('request', provider.callback());
process.stdout.write(JSON.stringify({ port, issuer }) + '\n');
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.closeAllConnections(); server.close(() => process.exit(0)); });
