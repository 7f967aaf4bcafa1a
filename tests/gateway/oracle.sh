#!/usr/bin/env bash
# Runs Anthropic's reference gateway (`claude gateway`, inside the Claude Code binary) offline on 127.0.0.1 as the
# oracle for Warden's implementation of Claude Code's gateway sign-in: a throwaway PostgreSQL, an oidc-provider IdP
# with a confidential client for the gateway, the Anthropic and OTLP fakes as upstreams. Prints one JSON line
# {"base_url","issuer","fake_anthropic","otlp_dir","log"} once the gateway answers, then waits; Ctrl-C / SIGTERM
# stops everything by PID. Usage: bash tests/gateway/oracle.sh [--once CMD...]  (with --once: runs CMD with
# GW_BASE_URL, GW_ISSUER exported, then stops everything and exits with CMD's status)
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" ""
source "$WD_ROOT/tests/pg.sh"
trap wd_cleanup EXIT
trap 'exit 130' INT TERM

CLAUDE_EXE="${CLAUDE_EXE:-$WD_ROOT/tests/e2e/node_modules/@anthropic-ai/claude-code/bin/claude.exe}"
bash "$WD_ROOT/tests/idp/setup.sh" >/dev/null
[ -x "$CLAUDE_EXE" ] || bash "$WD_ROOT/tests/e2e/setup.sh" >/dev/null
GW_PORT=$(wd_free_port)
GW_URL="http://127.0.0.1:$GW_PORT"

# tests/idp/idp.mjs has no client whose redirect is {public_url}/oauth/callback, so this IdP is a small
# oidc-provider of its own: a confidential client for the gateway, the dev login/consent pages (the probe plays
# them with HTTP requests) and a groups claim chosen by login name (alice: engineering, anyone else: none).
cat >"$WD_TMP/idp.mjs" <<JS
import * as http from 'node:http';
const { Provider } = await import('$WD_ROOT/tests/idp/node_modules/oidc-provider/lib/index.js');
const GROUPS = { alice: ['engineering'], bob: ['finance'] };
const server = http.createServer();
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const issuer = \`http://127.0.0.1:\${port}\`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'claude-gateway', client_secret: 'claude-gateway-secret-0123456789',
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    redirect_uris: ['$GW_URL/oauth/callback'], token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, name: sub,
    email: \`\${sub}@example.test\`, email_verified: true, groups: GROUPS[sub] ?? [] }) }),
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
JS
wd_start_server IDP_PORT node "$WD_TMP/idp.mjs"
ISSUER="http://127.0.0.1:$IDP_PORT"
wd_start_server ANT_PORT node "$WD_ROOT/tests/fakes/fake_anthropic.mjs" --port 0 --key sk-ant-oracle-upstream
mkdir -p "$WD_TMP/otlp"
wd_start_server OTLP_PORT node "$WD_ROOT/tests/fakes/fake_otlp.mjs" --port 0 --dir "$WD_TMP/otlp"
wd_pg_start
psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE gateway" >/dev/null

cat >"$WD_TMP/gateway.yaml" <<YAML
listen:
  host: 127.0.0.1
  port: $GW_PORT
  public_url: $GW_URL
oidc:
  issuer: $ISSUER
  client_id: claude-gateway
  client_secret: claude-gateway-secret-0123456789
  scopes: [openid, profile, email, offline_access, groups]
  extra_auth_params: {prompt: consent}
session:
  jwt_secret: oracle-session-secret-0123456789abcdef
  ttl_hours: 1
store:
  postgres_url: postgresql://postgres@127.0.0.1:$PG_PORT/gateway
upstreams:
  - provider: anthropic
    base_url: http://127.0.0.1:$ANT_PORT
    auth: {api_key: sk-ant-oracle-upstream}
managed:
  policies:
    - match: {groups: [engineering]}
      settings:
        env: {WARDEN_POLICY: engineering}
        permissions: {deny: ["Bash(rm -rf *)"]}
    - settings:
        env: {WARDEN_POLICY: default}
# The default (10 code submissions per 600 s per address) stops a second probe run within ten minutes: every
# caller here is 127.0.0.1.
rate_limits:
  device_verify: {max: 1000, window_seconds: 600}
  device_authorization: {max: 1000, window_seconds: 600}
telemetry:
  forward_to:
    - url: http://127.0.0.1:$OTLP_PORT
      metrics: true
      logs: true
      traces: true
YAML
[ -n "${GW_CONFIG_EXTRA:-}" ] && cat "$GW_CONFIG_EXTRA" >>"$WD_TMP/gateway.yaml"

# The gateway refuses loopback IdPs, upstreams and collectors unless told; offline: no auto-update, no telemetry
# or error reporting of the binary itself.
export CLAUDE_GATEWAY_ALLOW_LOOPBACK=1 CLAUDE_GATEWAY_LOG_LEVEL=debug DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
export HOME="$WD_TMP/home"; mkdir -p "$HOME"
"$CLAUDE_EXE" gateway --config "$WD_TMP/gateway.yaml" >"$WD_TMP/gateway.log" 2>&1 &
GW_PID=$!
WD_PIDS+=("$GW_PID")
for _ in $(seq 1 300); do
  curl -s -o /dev/null --max-time 1 "$GW_URL/healthz" && break
  kill -0 "$GW_PID" 2>/dev/null || { echo "oracle.sh: the gateway exited:" >&2; cat "$WD_TMP/gateway.log" >&2; exit 1; }
  sleep 0.1
done
curl -s -o /dev/null --max-time 1 "$GW_URL/healthz" || { echo "oracle.sh: no answer on $GW_URL" >&2; cat "$WD_TMP/gateway.log" >&2; exit 1; }
printf '{"base_url":"%s","issuer":"%s","fake_anthropic":"http://127.0.0.1:%s","otlp_dir":"%s","log":"%s","config":"%s"}\n' \
  "$GW_URL" "$ISSUER" "$ANT_PORT" "$WD_TMP/otlp" "$WD_TMP/gateway.log" "$WD_TMP/gateway.yaml"
if [ "${1:-}" = "--once" ]; then
  shift
  export GW_BASE_URL="$GW_URL" GW_ISSUER="$ISSUER"
  rc=0; "$@" || rc=$?
  exit "$rc"
fi
wait "$GW_PID"
