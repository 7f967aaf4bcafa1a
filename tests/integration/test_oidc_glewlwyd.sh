#!/usr/bin/env bash
# A second, unrelated IdP (issue 16): Debian's glewlwyd (tests/glewlwyd) next to the npm oidc-provider (tests/idp).
# Its RS256 and ES256 access tokens (at+jwt) are accepted with the right subject; its tokens are refused by a
# Warden that trusts only the other issuer, and each IdP's token relabelled with the other's issuer is refused;
# its key rotation, driven through glewlwyd's admin API, is picked up without a restart.
# Usage: bash tests/integration/test_oidc_glewlwyd.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

if ! command -v glewlwyd >/dev/null; then
  echo "glewlwyd is not installed (scripts/deps.sh installs it)" >&2
  exit 1
fi
bash "$WD_ROOT/tests/idp/setup.sh" >/dev/null
WARDEN_DEV_KEY="wk-gl-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export WARDEN_DEV_KEY
GL="bash $WD_ROOT/tests/glewlwyd/gl.sh"
AUD=api://warden
GL_AUD=https://warden.example/

wd_start_fake
wd_start_server IDP_PORT node "$WD_ROOT/tests/idp/idp.mjs" --port 0 --path /oauth2/default
ISS="http://127.0.0.1:$IDP_PORT/oauth2/default"

GL_PORT=$(wd_free_port)
GL_DIR="$WD_TMP/glewlwyd"
WD_GL_AUDIENCE=$GL_AUD bash "$WD_ROOT/tests/glewlwyd/setup.sh" "$GL_DIR" "$GL_PORT" >/dev/null
glewlwyd --config-file "$GL_DIR/glewlwyd.conf" >"$GL_DIR/stdout" 2>&1 &
GL_PID=$!
WD_PIDS+=("$GL_PID")
GL_ISS="http://127.0.0.1:$GL_PORT/api/oidc"
wd_wait_http "$GL_ISS/.well-known/openid-configuration" || { tail -20 "$GL_DIR/glewlwyd.log" >&2; exit 1; }
check "glewlwyd listens on loopback only" grep -q "bind address: 127.0.0.1," "$GL_DIR/glewlwyd.log"
check "its discovery document names the issuer Warden is configured with" \
  bash -c "curl -sS --max-time 5 '$GL_ISS/.well-known/openid-configuration' | grep -qF '\"issuer\":\"$GL_ISS\"'"

OUT="$WD_TMP/out"
CODE=000
# call CREDENTIAL MODEL: one Messages call -> $OUT, $CODE
call() {
  CODE=$(curl -sS -o "$OUT" -w '%{http_code}' --max-time 30 -H "authorization: Bearer $1" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary "{\"model\":\"$2\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi glewlwyd\"}]}" \
    "$WARDEN_URL/anthropic/v1/messages" 2>/dev/null) || true
}
cc_token() { # the oidc-provider's client_credentials access token
  curl -sS --max-time 10 -u warden-test:warden-test-secret -d grant_type=client_credentials -d resource=$AUD \
    -d scope=warden "$ISS/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
part() { # part TOKEN 0|1 -> the header or the claims as JSON
  python3 -c 'import base64,sys; print(base64.urlsafe_b64decode(sys.argv[1].split(".")[int(sys.argv[2])]+"==").decode())' "$1" "$2"
}
claim() { part "$1" 1 | python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print(v if v is not None else "")' "$2"; }
relabel() { # relabel TOKEN ISSUER: the same header and signature, iss replaced
  python3 - "$1" "$2" <<'PY'
import base64, json, sys
h, p, s = sys.argv[1].split('.')
c = json.loads(base64.urlsafe_b64decode(p + '=='))
c['iss'] = sys.argv[2]
print('.'.join([h, base64.urlsafe_b64encode(json.dumps(c, separators=(',', ':')).encode()).rstrip(b'=').decode(), s]))
PY
}
# the reason of the latest refusal: each check below looks at the call just made
last_refused() { grep -o 'bearer token refused: [^"]*' "$WARDEN_LOG" | tail -1 | grep -q "$1"; }

# ---- glewlwyd's tokens, before any Warden: what it issues ----
RS=$($GL token "$GL_ISS" rs)
ES=$($GL token "$GL_ISS" es)
PW=$($GL token "$GL_ISS" password)
IDT=$($GL token "$GL_ISS" id)
CAROL=$(claim "$PW" sub)
check "glewlwyd's access tokens are JWTs: at+jwt RS256 for one client, ES256 for the other" python3 -c "
import json,sys
a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2])
sys.exit(0 if a['typ'].lower()=='at+jwt' and a['alg']=='RS256' and b['typ'].lower()=='at+jwt' and b['alg']=='ES256' else 1)" \
  "$(part "$RS" 0)" "$(part "$ES" 0)"
check "... aud is the resource asked for ($(claim "$RS" aud)), iss the issuer, sub the client" \
  bash -c "[ '$(claim "$RS" aud)' = '$GL_AUD' ] && [ '$(claim "$RS" iss)' = '$GL_ISS' ] && [ '$(claim "$RS" sub)' = warden-gl ]"
check "... the password grant's token has carol's subject ($CAROL), not the client's; aud the scope list" \
  bash -c "[ -n '$CAROL' ] && [ '$CAROL' != warden-gl ] && [ '$(claim "$PW" aud)' = warden ]"

# ---- Warden trusting both issuers ----
PORT=$(wd_free_port)
CFG=$(wd_config "$PORT" "$FAKE_URL" "  oidc:
    - name: okta
      issuer: $ISS
      audience: $AUD
      refresh: 2s
    - name: glewlwyd
      issuer: $GL_ISS
      audience: [$GL_AUD, warden]
      refresh: 2s
      wait: 10s
rbac:
  roles:
    developer: {models: [\"tier:sonnet\", \"tier:haiku\"]}
    admin: {models: \"*\"}
  bindings:
    - {subject: warden-gl, role: developer}
    - {subject: warden-gl-es, role: developer}
    - {subject: warden-test, role: developer}
    - {subject: \"$CAROL\", role: admin}
    - {key: dev, role: admin}")
wd_start_warden "$CFG"

call "$RS" claude-sonnet-4-5
check "glewlwyd RS256 access token (client_credentials): sonnet 200 (got $CODE)" [ "$CODE" = 200 ]
check "... the access line names its subject and the glewlwyd issuer" \
  grep -q '"subject":"warden-gl","issuer":"glewlwyd"' "$WARDEN_LOG"
call "$RS" claude-opus-4-5
check "... the client is bound developer by subject: opus 403 (got $CODE)" [ "$CODE" = 403 ]
call "$ES" claude-haiku-4-5
check "glewlwyd ES256 access token: haiku 200 (got $CODE)" [ "$CODE" = 200 ]
check "... the access line names the ES256 client" grep -q '"subject":"warden-gl-es","issuer":"glewlwyd"' "$WARDEN_LOG"
call "$PW" claude-opus-4-5
check "carol's access token (password grant), bound admin by her subject: opus 200 (got $CODE)" [ "$CODE" = 200 ]
check "... the access line has carol's subject" grep -q "\"subject\":\"$CAROL\",\"issuer\":\"glewlwyd\"" "$WARDEN_LOG"
call "$IDT" claude-sonnet-4-5
check "carol's ID token (aud is the client, not Warden): 401 (got $CODE)" [ "$CODE" = 401 ]
check "... the log says aud" last_refused "aud does not match"
OK1=$(cc_token)
call "$OK1" claude-sonnet-4-5
check "the other IdP's token in the same Warden: 200 (got $CODE)" [ "$CODE" = 200 ]
check "... named by its own issuer" grep -q '"subject":"warden-test","issuer":"okta"' "$WARDEN_LOG"

# ---- each IdP's token relabelled as the other's: the keys do not match ----
call "$(relabel "$OK1" "$GL_ISS")" claude-sonnet-4-5
check "an oidc-provider token with glewlwyd's issuer: 401 (got $CODE)" [ "$CODE" = 401 ]
check "... refused for its key: glewlwyd publishes no such kid" last_refused "unknown kid"
check "... and not in the answer" bash -c "! grep -qiE 'kid|signature' '$OUT'"
# ... and with the kid of glewlwyd's RSA key too: found, but the oidc-provider's signature does not verify with it
GL_KID=$(part "$RS" 0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["kid"])')
SWAPPED=$(python3 - "$(relabel "$OK1" "$GL_ISS")" "$GL_KID" <<'PY'
import base64, json, sys
h, p, s = sys.argv[1].split('.')
hd = json.loads(base64.urlsafe_b64decode(h + '=='))
hd['kid'] = sys.argv[2]
print('.'.join([base64.urlsafe_b64encode(json.dumps(hd, separators=(',', ':')).encode()).rstrip(b'=').decode(), p, s]))
PY
)
call "$SWAPPED" claude-sonnet-4-5
check "an oidc-provider token with glewlwyd's issuer and kid: 401 (got $CODE)" [ "$CODE" = 401 ]
check "... bad signature" last_refused "bad signature"
call "$(relabel "$RS" "$ISS")" claude-sonnet-4-5
check "a glewlwyd token with the oidc-provider's issuer: 401 (got $CODE)" [ "$CODE" = 401 ]
check "... refused for its key: the oidc-provider publishes no such kid" last_refused "unknown kid"

# ---- glewlwyd's key rotation through its admin API ----
OLD=$($GL token "$GL_ISS" rs)
call "$OLD" claude-sonnet-4-5
check "before rotation: 200 (got $CODE)" [ "$CODE" = 200 ]
ROT=$($GL rotate "$GL_ISS" "$GL_DIR" 2>&1) || true
check "glewlwyd's admin API took a new signing key ($ROT)" bash -c "echo '$ROT' | grep -q '\"kids\"'"
NEW=$($GL token "$GL_ISS" rs)
check "... its tokens name the new kid" bash -c "[ '$(part "$NEW" 0 | python3 -c 'import json,sys;print(json.load(sys.stdin)["kid"])')' != '$(part "$OLD" 0 | python3 -c 'import json,sys;print(json.load(sys.stdin)["kid"])')' ]"
call "$NEW" claude-sonnet-4-5
check "a token of the rotated-in key verifies without a restart: 200 (got $CODE)" [ "$CODE" = 200 ]
call "$OLD" claude-sonnet-4-5
check "... the old key's token still verifies while the key is published: 200 (got $CODE)" [ "$CODE" = 200 ]
RET=$($GL retire "$GL_ISS" "$GL_DIR" 2>&1) || true
check "glewlwyd's admin API retired the old key ($RET)" bash -c "echo '$RET' | grep -q '\"kids\"'"
sleep 3 # refresh: 2s
call "$OLD" claude-sonnet-4-5
check "after glewlwyd retired the old key, its (cached) token is refused: 401 (got $CODE)" [ "$CODE" = 401 ]
check "... as an unknown kid" last_refused "unknown kid"
call "$NEW" claude-sonnet-4-5
check "... the new key's token still verifies: 200 (got $CODE)" [ "$CODE" = 200 ]
ES2=$($GL token "$GL_ISS" es)
call "$ES2" claude-haiku-4-5
check "... and the ES256 key, untouched by the rotation: 200 (got $CODE)" [ "$CODE" = 200 ]

check "no glewlwyd token appears in Warden's log" \
  bash -c "! grep -qF '${RS:30:40}' '$WARDEN_LOG' && ! grep -qF '${PW:30:40}' '$WARDEN_LOG' && ! grep -qF '${NEW:30:40}' '$WARDEN_LOG'"
wd_stop_warden

# ---- Warden trusting only the oidc-provider: glewlwyd's tokens are strangers ----
PORT=$(wd_free_port)
CFG=$(wd_config "$PORT" "$FAKE_URL" "  oidc:
    - name: okta
      issuer: $ISS
      audience: $AUD")
wd_start_warden "$CFG"
RS3=$($GL token "$GL_ISS" rs)
call "$RS3" claude-sonnet-4-5
check "a glewlwyd token where only the oidc-provider is configured: 401 (got $CODE)" [ "$CODE" = 401 ]
check "... the log says the issuer" last_refused "iss is not a configured issuer"
check "... and the answer does not" bash -c "! grep -qi 'iss' '$OUT'"
PW3=$($GL token "$GL_ISS" password)
call "$PW3" claude-sonnet-4-5
check "carol's glewlwyd token there too: 401 (got $CODE)" [ "$CODE" = 401 ]
check "... for its issuer as well" last_refused "iss is not a configured issuer"
call "$(cc_token)" claude-sonnet-4-5
check "the configured issuer's token is served: 200 (got $CODE)" [ "$CODE" = 200 ]
wd_stop_warden
wd_finish
