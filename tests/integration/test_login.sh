#!/usr/bin/env bash
# `warden login` and `warden token` (issue 16's token helper) against a real OIDC provider (npm oidc-provider,
# tests/idp): the device flow and the authorization code flow with PKCE end to end, the 0600 store in a 0700
# directory, the cached access token reused without a request, the refresh (with the IdP's rotation), refusals,
# and Warden accepting the printed token as x-api-key.
# Usage: bash tests/integration/test_login.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

bash "$WD_ROOT/tests/idp/setup.sh" >/dev/null
export WARDEN_DEV_KEY="wk-login-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
AUD=api://warden
# the store goes under a config home that does not exist yet: warden creates it
export XDG_CONFIG_HOME="$WD_TMP/config"
STORE="$XDG_CONFIG_HOME/warden"

wd_start_fake
wd_start_server IDP_PORT node "$WD_ROOT/tests/idp/idp.mjs" --port 0 --path /oauth2/default
IDP_PID=$WD_SERVER_PID
ISS="http://127.0.0.1:$IDP_PORT/oauth2/default"

# A counting pass-through to the IdP: every request is forwarded; GET /_count answers how many POSTs reached a
# path ending in /token. The stored token endpoint is pointed at it to see whether `warden token` calls the IdP.
COUNTER_JS="$WD_TMP/counter.mjs"
cat >"$COUNTER_JS" <<'JS'
import http from 'node:http';
const target = Number(process.argv[2]);
let tokens = 0;
const srv = http.createServer((req, res) => {
  if (req.url === '/_count') { res.end(String(tokens)); return; }
  if (req.method === 'POST' && req.url.split('?')[0].endsWith('/token')) tokens++;
  const up = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers },
    (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
  up.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(up);
});
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
JS
wd_start_server COUNT_PORT node "$COUNTER_JS" "$IDP_PORT"
token_requests() { curl -sS "http://127.0.0.1:$COUNT_PORT/_count"; }

# An RS256 JWT checked with node's crypto against the IdP's JWKS: signature, iss, aud, exp. Prints the claims.
VERIFY_JS="$WD_TMP/verify.mjs"
cat >"$VERIFY_JS" <<'JS'
import crypto from 'node:crypto';
const [tok, jwksUri, iss, aud] = process.argv.slice(2);
const [h, p, s] = tok.split('.');
const header = JSON.parse(Buffer.from(h, 'base64url'));
const claims = JSON.parse(Buffer.from(p, 'base64url'));
const jwks = await (await fetch(jwksUri)).json();
const jwk = jwks.keys.find((k) => k.kid === header.kid);
if (!jwk || header.alg !== 'RS256') { console.error('no RS256 key for kid', header.kid); process.exit(1); }
const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
const good = crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
const now = Date.now() / 1000;
if (!good || claims.iss !== iss || !auds.includes(aud) || !(claims.exp > now)) {
  console.error('refused', JSON.stringify({ good, iss: claims.iss, aud: claims.aud, exp: claims.exp }));
  process.exit(1);
}
console.log(JSON.stringify(claims));
JS

# jfield FILE KEY: a field of the login file; jset FILE KEY JSON-VALUE: changes it in place (mode kept)
jfield() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2"; }
jset() {
  python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); d[sys.argv[2]]=json.loads(sys.argv[3])
open(sys.argv[1],"w").write(json.dumps(d))' "$1" "$2" "$3"
}
mode_of() { stat -c %a "$1"; }
store_files() { ls "$STORE"/login-*.json 2>/dev/null | wc -l; }

# start_login NAME ARGS...: `warden login` in the background, stderr to $WD_TMP/NAME.err -> LOGIN_PID
start_login() {
  local name="$1"
  shift
  "$WARDEN_BIN" login "$@" 2>"$WD_TMP/$name.err" &
  LOGIN_PID=$!
  WD_PIDS+=("$LOGIN_PID")
}
approve() { # approve USER_CODE JSON-EXTRA: plays the user at the verification page
  curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    --data "{\"user_code\":\"$1\"$2}" "http://127.0.0.1:$IDP_PORT/_test/approve-device"
}
RC=0
finish_login() { RC=0; wait "$LOGIN_PID" || RC=$?; }
# Every CLI run's stderr: no sanitizer report (the CLI runs under the ASan build too)
no_sanitizer() { ! grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$WD_TMP"/*.err 2>/dev/null | grep -q .; }

# ---- not logged in ----
RC=0
OUT=$("$WARDEN_BIN" token 2>"$WD_TMP/nologin.err") || RC=$?
check "warden token without a login: exit 1 (got $RC)" [ "$RC" = 1 ]
check "... says to run warden login, on stderr" grep -q 'not logged in.*warden login' "$WD_TMP/nologin.err"
check "... and prints nothing on stdout" [ -z "$OUT" ]
RC=0
"$WARDEN_BIN" token --issuer "$ISS" >/dev/null 2>"$WD_TMP/nologin2.err" || RC=$?
check "warden token --issuer of an issuer never logged in at: exit 1 (got $RC)" [ "$RC" = 1 ]
RC=0
"$WARDEN_BIN" login --issuer "$ISS-nope" --no-browser 2>"$WD_TMP/badiss.err" || RC=$?
check "warden login at an issuer without discovery: exit 1 (got $RC)" [ "$RC" = 1 ]

# ---- device flow refused by the user: nothing stored ----
start_login denied --issuer "$ISS" --no-browser --timeout 60
wd_wait_for "$WD_TMP/denied.err" '^user code: '
UC=$(sed -n 's/^user code: //p' "$WD_TMP/denied.err")
CODE=$(approve "$UC" ',"deny":true')
check "the IdP takes the refusal of device code $UC (got $CODE)" [ "$CODE" = 200 ]
finish_login
check "a denied device code: warden login exits non-zero (got $RC)" [ "$RC" != 0 ]
check "... saying the sign-in was refused" grep -q 'refused (access_denied' "$WD_TMP/denied.err"
check "... and nothing is stored" [ "$(store_files)" = 0 ]

# ---- the bound on a device flow nobody completes ----
T0=$(date +%s)
start_login bound --issuer "$ISS" --no-browser --timeout 3
finish_login
check "a device flow nobody completes stops at --timeout: exit non-zero (got $RC) within 10 s" \
  [ "$RC" != 0 -a $(($(date +%s) - T0)) -le 10 ]
check "... saying so" grep -q 'did not complete within' "$WD_TMP/bound.err"

# ---- device flow end to end (umask 000: the modes must not come from it) ----
(umask 000 && exec "$WARDEN_BIN" login --issuer "$ISS" --audience "$AUD" --scope warden --no-browser --timeout 60) \
  2>"$WD_TMP/device.err" &
LOGIN_PID=$!
WD_PIDS+=("$LOGIN_PID")
wd_wait_for "$WD_TMP/device.err" '^user code: '
check "the device flow prints the verification URI and the user code on stderr" \
  grep -qE "^To sign in, open $ISS/device and enter the code [A-Z]{4}-[A-Z]{4}\$" "$WD_TMP/device.err"
UC=$(sed -n 's/^user code: //p' "$WD_TMP/device.err")
CODE=$(approve "$UC" ',"sub":"alice"')
check "the IdP takes alice's approval of $UC while warden login polls (got $CODE)" [ "$CODE" = 200 ]
finish_login
check "device flow: warden login exits 0 (got $RC)" [ "$RC" = 0 ]
FILE=$(ls "$STORE"/login-*.json 2>/dev/null | head -1)
check "one login file is stored" [ "$(store_files)" = 1 ]
check "the login file has mode 0600 under umask 000 (got $(mode_of "$FILE"))" [ "$(mode_of "$FILE")" = 600 ]
check "the directory has mode 0700 (got $(mode_of "$STORE"))" [ "$(mode_of "$STORE")" = 700 ]
check "the file keeps issuer, client id, audience and token endpoint" [ "$(jfield "$FILE" issuer)" = "$ISS" -a \
  "$(jfield "$FILE" client_id)" = warden-cli -a "$(jfield "$FILE" audience)" = "$AUD" -a \
  "$(jfield "$FILE" token_endpoint)" = "$ISS/token" ]
RT1=$(jfield "$FILE" refresh_token)
check "... and a refresh token" [ -n "$RT1" ]
check "no token is printed by warden login" bash -c "! grep -qF -e '$RT1' -e '$(jfield "$FILE" access_token)' \
  '$WD_TMP/device.err'"

# ---- warden token: a JWT that verifies, then the cache ----
RC=0
"$WARDEN_BIN" token >"$WD_TMP/tok1" 2>"$WD_TMP/tok1.err" || RC=$?
TOK1=$(cat "$WD_TMP/tok1")
check "warden token exits 0 (got $RC) and prints one line, nothing on stderr" \
  [ "$RC" = 0 -a "$(wc -l <"$WD_TMP/tok1")" = 1 -a ! -s "$WD_TMP/tok1.err" ]
check "... a JWT that verifies against the IdP's JWKS with iss $ISS and aud $AUD" \
  bash -c "node '$VERIFY_JS' '$TOK1' '$ISS/jwks' '$ISS' '$AUD' >/dev/null"
SUB=$(node "$VERIFY_JS" "$TOK1" "$ISS/jwks" "$ISS" "$AUD" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sub"])')
check "... whose subject is the user who approved (got $SUB)" [ "$SUB" = alice ]
check "... and carries the asked scope warden" bash -c "node '$VERIFY_JS' '$TOK1' '$ISS/jwks' '$ISS' '$AUD' |
  grep -q '\"scope\":\"[^\"]*warden'"

jset "$FILE" token_endpoint "\"http://127.0.0.1:$COUNT_PORT/oauth2/default/token\""
chmod 600 "$FILE"
T2=$("$WARDEN_BIN" token --issuer "$ISS")
T3=$("$WARDEN_BIN" token)
check "a cached access token is printed again (twice) without a request to the token endpoint (got $(token_requests))" \
  [ "$T2" = "$TOK1" -a "$T3" = "$TOK1" -a "$(token_requests)" = 0 ]

# ---- refresh once the cached token is near its expiry ----
jset "$FILE" expires_at "$(($(date +%s) + 30))"
RC=0
TOK2=$("$WARDEN_BIN" token 2>"$WD_TMP/refresh.err") || RC=$?
check "a token with 30 s left is refreshed: exit 0 (got $RC), one token-endpoint request (got $(token_requests))" \
  [ "$RC" = 0 -a "$(token_requests)" = 1 ]
check "... a new access token that verifies" bash -c "[ '$TOK2' != '$TOK1' ] &&
  node '$VERIFY_JS' '$TOK2' '$ISS/jwks' '$ISS' '$AUD' >/dev/null"
RT2=$(jfield "$FILE" refresh_token)
check "the IdP rotated the refresh token and the new one was written back" [ -n "$RT2" -a "$RT2" != "$RT1" ]
check "... the file still mode 0600 (got $(mode_of "$FILE"))" [ "$(mode_of "$FILE")" = 600 ]
check "... and the new access token cached in it" [ "$(jfield "$FILE" access_token)" = "$TOK2" ]
T4=$("$WARDEN_BIN" token)
check "the refreshed token is then served from the cache (requests still $(token_requests))" \
  [ "$T4" = "$TOK2" -a "$(token_requests)" = 1 ]
jset "$FILE" expires_at 0
RC=0
TOK3=$("$WARDEN_BIN" token 2>>"$WD_TMP/refresh.err") || RC=$?
check "an expired cache refreshes with the rotated refresh token: exit 0 (got $RC), a new token" \
  [ "$RC" = 0 -a -n "$TOK3" -a "$TOK3" != "$TOK2" -a "$(token_requests)" = 2 ]
check "no file of another mode, no temp file left in the store" \
  bash -c "[ -z \"\$(find '$STORE' -type f ! -perm 600)\" ] && ! ls -a '$STORE' | grep -q '\\.tmp\$'"

# ---- two callers at once share one refresh (the lock) ----
jset "$FILE" expires_at 0
"$WARDEN_BIN" token >"$WD_TMP/par1" 2>"$WD_TMP/par1.err" &
P1=$!
"$WARDEN_BIN" token >"$WD_TMP/par2" 2>"$WD_TMP/par2.err" &
P2=$!
R1=0; R2=0
wait $P1 || R1=$?
wait $P2 || R2=$?
check "two concurrent warden token after expiry: both exit 0 ($R1, $R2), one refresh (requests $(token_requests))" \
  [ "$R1" = 0 -a "$R2" = 0 -a "$(token_requests)" = 3 -a "$(cat "$WD_TMP/par1")" = "$(cat "$WD_TMP/par2")" ]

# ---- a refused refresh ----
jset "$FILE" expires_at 0
jset "$FILE" refresh_token '"not-a-refresh-token"'
RC=0
OUT=$("$WARDEN_BIN" token 2>"$WD_TMP/refused.err") || RC=$?
check "a refused refresh: exit 1 (got $RC), nothing on stdout" [ "$RC" = 1 -a -z "$OUT" ]
check "... saying the IdP refused and to run warden login again" \
  grep -q "refused the refresh (invalid_grant.*warden login --issuer $ISS" "$WD_TMP/refused.err"
chmod 644 "$FILE"
RC=0
"$WARDEN_BIN" token >/dev/null 2>"$WD_TMP/open.err" || RC=$?
check "a login file others can read is refused: exit 1 (got $RC), saying why" \
  bash -c "[ '$RC' = 1 ] && grep -q 'not a private file' '$WD_TMP/open.err'"

# ---- authorization code + PKCE on a loopback redirect ----
start_login code --issuer "$ISS" --flow code --no-browser --timeout 60
wd_wait_for "$WD_TMP/code.err" '^  http'
URL=$(sed -n 's/^  \(http.*\)$/\1/p' "$WD_TMP/code.err")
check "the code flow prints an authorization URL with an S256 challenge, a state and a loopback redirect" \
  bash -c "[[ '$URL' == $ISS/auth\\?* && '$URL' == *code_challenge_method=S256* && '$URL' == *code_challenge=* &&
    '$URL' == *state=* && '$URL' == *redirect_uri=http%3A%2F%2F127.0.0.1%3A*%2Fcallback* ]]"
# first a forged answer with another state: refused, and the login ends without exchanging it
REDIR=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["redirect_uri"][0])' "$URL")
CODE=$(curl -sS -o /dev/null -w '%{http_code}' "$REDIR/../favicon.ico" || true)
check "the loopback listener answers another path with 404 and keeps waiting (got $CODE)" [ "$CODE" = 404 ]
curl -sS -L -c "$WD_TMP/jar" -b "$WD_TMP/jar" -o "$WD_TMP/browser.out" -w '%{http_code} %{url_effective}' "$URL" \
  >"$WD_TMP/browser.meta" || true
check "following the URL with a cookie jar ends at the loopback callback, 200" \
  grep -qE "^200 http://127.0.0.1:[0-9]+/callback\\?code=" "$WD_TMP/browser.meta"
check "... whose page says signed in" grep -q 'Signed in to Warden' "$WD_TMP/browser.out"
finish_login
check "code flow: warden login exits 0 (got $RC)" [ "$RC" = 0 ]
check "... the file replaced (still one, mode 0600) with a fresh refresh token" \
  [ "$(store_files)" = 1 -a "$(mode_of "$FILE")" = 600 -a "$(jfield "$FILE" refresh_token)" != not-a-refresh-token ]
check "... no token printed by warden login" bash -c "! grep -qF '$(jfield "$FILE" refresh_token)' '$WD_TMP/code.err'"
jset "$FILE" expires_at 0
TOK4=$("$WARDEN_BIN" token)
check "after the code flow warden token refreshes to a JWT that verifies (aud the default $AUD)" \
  bash -c "node '$VERIFY_JS' '$TOK4' '$ISS/jwks' '$ISS' '$AUD' >/dev/null"

start_login state --issuer "$ISS" --flow code --no-browser --timeout 60
wd_wait_for "$WD_TMP/state.err" '^  http'
URL=$(sed -n 's/^  \(http.*\)$/\1/p' "$WD_TMP/state.err")
REDIR=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["redirect_uri"][0])' "$URL")
CODE=$(curl -sS -o /dev/null -w '%{http_code}' "$REDIR?code=forged&state=not-this-one" || true)
finish_login
check "a redirect with another state: 400 (got $CODE), warden login exits non-zero (got $RC)" [ "$CODE" = 400 -a "$RC" != 0 ]
check "... saying the state does not match" grep -q 'state does not match' "$WD_TMP/state.err"
check "... and the stored login is untouched" [ "$(jfield "$FILE" access_token)" = "$TOK4" ]

# ---- Warden accepts the printed token ----
PORT=$(wd_free_port)
CFG=$(wd_config "$PORT" "$FAKE_URL" "  oidc:
    - name: test-idp
      issuer: $ISS
      audience: $AUD")
wd_start_warden "$CFG"
msg() { # msg KEY: one Messages call with x-api-key KEY -> HTTP status
  curl -sS -o "$WD_TMP/msg.out" -w '%{http_code}' --max-time 30 -H "x-api-key: $1" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary '{"model":"claude-sonnet-4-5","max_tokens":32,"messages":[{"role":"user","content":"hi login"}]}' \
    "$WARDEN_URL/anthropic/v1/messages" || true
}
CODE=$(msg "$("$WARDEN_BIN" token)")
check "Warden accepts x-api-key: \$(warden token) on /anthropic/v1/messages: 200 (got $CODE)" [ "$CODE" = 200 ]
check "... with a model answer" grep -q '"type":"message"' "$WD_TMP/msg.out"
CODE=$(msg "${TOK4%?}x")
check "... and refuses the same token with its signature changed: 401 (got $CODE)" [ "$CODE" = 401 ]
wd_stop_warden

check "no sanitizer report from any warden login/token run" no_sanitizer
wd_finish
