#!/usr/bin/env bash
# OIDC bearer tokens and RBAC through Warden (issue 16) against a real IdP (npm oidc-provider, tests/idp) and an
# Entra-shaped issuer whose keys tests/idp/tokens.mjs serves: RS256 and ES256 access tokens (RFC 9068 at+jwt)
# accepted; every hostile token refused with 401 and its reason in the log, never in the answer; key rotation
# picked up without a restart and a retired key refused; a JWKS endpoint that hangs bounds the wait; RBAC by IdP
# group, subject, roles claim and key name, default deny; the static key stays a way in.
# Usage: bash tests/integration/test_oidc.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/pg.sh"

bash "$WD_ROOT/tests/idp/setup.sh" >/dev/null
export WARDEN_DEV_KEY="wk-oidc-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
TOK="node $WD_ROOT/tests/idp/tokens.mjs"
KEYDIR="$WD_TMP/keys"
TID=72f988bf-86f1-41af-91ab-2d7cd011db47
ENTRA_ISS="https://login.microsoftonline.com/$TID/v2.0"
AUD=api://warden

wd_start_fake
wd_start_server IDP_PORT node "$WD_ROOT/tests/idp/idp.mjs" --port 0 --path /oauth2/default
ISS="http://127.0.0.1:$IDP_PORT/oauth2/default"
wd_start_server SLOW_PORT node "$WD_ROOT/tests/idp/idp.mjs" --port 0 --path /slow
SLOW_ISS="http://127.0.0.1:$SLOW_PORT/slow"
wd_start_server JWKS_PORT $TOK serve-jwks --port 0 --keydir "$KEYDIR"
wd_pg_start
wd_pg_setup_db

PORT=$(wd_free_port)
CFG=$(wd_config "$PORT" "$FAKE_URL" "  oidc:
    - name: okta
      issuer: $ISS
      audience: $AUD
      refresh: 2s
      wait: 15s
    - name: entra
      issuer: $ENTRA_ISS
      audience: [api://other, $AUD]
      jwks_uri: http://127.0.0.1:$JWKS_PORT/jwks
      claims: {subject: oid, email: preferred_username}
    - name: slow
      issuer: $SLOW_ISS
      audience: $AUD
      fetch_timeout: 1s
      wait: 1s
rbac:
  roles:
    developer: {models: [\"tier:sonnet\", \"tier:haiku\"]}
    admin: {models: \"*\", permissions: [keys:manage]}
    flash-only: {models: gemini/gemini-2.5-flash}
    fast-alias: {models: fast}
  bindings:
    - {group: engineering, role: developer}
    - {subject: alice@example.com, role: admin}
    - {key: dev, role: admin}
    - {group: fast-users, role: fast-alias}
audit:
  database: $WD_DB_ADMIN_URL
  spool: $WD_TMP/spool
  batch_wait: 5ms")
# the auth section of wd_config ends with the keys list: the oidc block above belongs under auth
wd_start_warden "$CFG"

OUT="$WD_TMP/out"
CODE=000
# call CREDENTIAL MODEL: one Messages call -> $OUT, $CODE, $MS
call() {
  local t0
  t0=$(date +%s%N)
  CODE=$(curl -sS -o "$OUT" -w '%{http_code}' --max-time 30 -H "authorization: Bearer $1" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary "{\"model\":\"$2\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi oidc\"}]}" \
    "$WARDEN_URL/anthropic/v1/messages" 2>/dev/null) || true
  MS=$((($(date +%s%N) - t0) / 1000000))
}
claims() { curl -sS -o /dev/null -X POST -H 'content-type: application/json' --data "$2" "http://127.0.0.1:$1/_test/claims"; }
cc_token() { # cc_token PORT ISSUER CLIENT: a client_credentials access token from the real IdP
  curl -sS -u "$3:warden-test-secret" -d grant_type=client_credentials -d resource=$AUD -d scope=warden "$2/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
logged() { grep "bearer token refused: [^\"]*$1" "$WARDEN_LOG" >/dev/null; }

# ---- real IdP tokens: RS256 and ES256, RFC 9068 access tokens ----
claims "$IDP_PORT" '{"groups":["engineering","other"],"email":"bob@example.com"}'
RS=$(cc_token "$IDP_PORT" "$ISS" warden-test)
ES=$(cc_token "$IDP_PORT" "$ISS" warden-test-es)
check "the IdP issues at+jwt access tokens" python3 -c "
import base64,json,sys
h=json.loads(base64.urlsafe_b64decode('$RS'.split('.')[0]+'=='))
sys.exit(0 if h['typ'].lower()=='at+jwt' and h['alg']=='RS256' else 1)"
call "$RS" claude-sonnet-4-5
check "RS256 access token of group engineering: sonnet 200 (got $CODE)" [ "$CODE" = 200 ]
call "$ES" claude-haiku-4-5
check "ES256 access token: haiku 200 (got $CODE)" [ "$CODE" = 200 ]
call "$RS" claude-opus-4-5
check "developer may not use opus: 403 (got $CODE)" [ "$CODE" = 403 ]
check "the 403 is a permission_error naming the model" grep -q '"permission_error".*claude-opus-4-5' "$OUT"
call "$RS" gemini/gemini-2.5-pro
check "developer may not name a provider model outside its tiers: 403 (got $CODE)" [ "$CODE" = 403 ]
CODE=$(curl -sS -o "$OUT" -w '%{http_code}' -H "authorization: Bearer $RS" "$WARDEN_URL/anthropic/v1/models")
check "the model list with a bearer token: 200 (got $CODE)" [ "$CODE" = 200 ]
check "... shows what the caller may use: sonnet and haiku, not opus nor the alias" python3 -c "
import json,sys
ids=[m['id'] for m in json.load(open('$OUT'))['data']]
sys.exit(0 if ids==['claude-sonnet-4-5','claude-haiku-4-5'] else 1)"

# ---- RBAC by subject, roles claim, alias grant, and default deny ----
claims "$IDP_PORT" '{"email":"alice@example.com"}'
ALICE=$(cc_token "$IDP_PORT" "$ISS" warden-test)
call "$ALICE" claude-opus-4-5
check "alice@example.com is bound admin: opus 200 (got $CODE)" [ "$CODE" = 200 ]
claims "$IDP_PORT" '{"roles":["flash-only"]}'
FLASH=$(cc_token "$IDP_PORT" "$ISS" warden-test)
call "$FLASH" gemini/gemini-2.5-flash
check "a roles claim naming a role grants it: gemini-2.5-flash 200 (got $CODE)" [ "$CODE" = 200 ]
call "$FLASH" gemini/gemini-2.5-pro
check "... and nothing else: gemini-2.5-pro 403 (got $CODE)" [ "$CODE" = 403 ]
claims "$IDP_PORT" '{"groups":"fast-users"}'
FAST=$(cc_token "$IDP_PORT" "$ISS" warden-test)
call "$FAST" fast
check "a role granting an alias: fast 200 (got $CODE)" [ "$CODE" = 200 ]
call "$FAST" claude-sonnet-4-5
check "... the same model by its tier is not granted: 403 (got $CODE)" [ "$CODE" = 403 ]
claims "$IDP_PORT" '{}'
NOBODY=$(cc_token "$IDP_PORT" "$ISS" warden-test)
call "$NOBODY" claude-haiku-4-5
check "a principal without roles is denied by default: 403 (got $CODE)" [ "$CODE" = 403 ]
CODE=$(curl -sS -o "$OUT" -w '%{http_code}' -H "x-api-key: $WARDEN_DEV_KEY" -H 'content-type: application/json' \
  --data-binary '{"model":"claude-opus-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}' \
  "$WARDEN_URL/anthropic/v1/messages")
check "the static key (bound admin) still works: 200 (got $CODE)" [ "$CODE" = 200 ]

# ---- Entra-shaped tokens (issuer not reachable: keys from jwks_uri) ----
E2=$($TOK entra-v2 --aud $AUD --keydir "$KEYDIR" --tid $TID --claims '{"groups":["engineering"]}')
call "$E2" claude-sonnet-4-5
check "Entra v2 token (subject from oid), group engineering: 200 (got $CODE)" [ "$CODE" = 200 ]
EO=$($TOK entra-overage --aud $AUD --keydir "$KEYDIR" --tid $TID)
call "$EO" claude-sonnet-4-5
check "Entra group overage: 401 (got $CODE)" [ "$CODE" = 401 ]
check "... with the overage named in the log" logged "group overage"
check "... and not in the answer" bash -c "! grep -q overage '$OUT'"

# ---- hostile tokens: 401, the reason in the log only ----
KEYS_URL="http://127.0.0.1:$IDP_PORT/_test/keys"
hostile() { # hostile KIND LOG_SUBSTRING
  local t
  t=$($TOK "$1" --issuer "$ISS" --aud $AUD --keys-url "$KEYS_URL" --keydir "$KEYDIR")
  call "$t" claude-sonnet-4-5
  if [ "$CODE" = 401 ] && grep -q '"authentication_error"' "$OUT" && { [ -z "$2" ] || logged "$2"; } &&
    ! grep -qiF "$2" "$OUT"; then
    ok "hostile token $1: 401${2:+, log says \"$2\"}"
  else
    fail "hostile token $1: got $CODE $(head -c 200 "$OUT")"
  fi
}
hostile none "no signature"
hostile hs256-with-rsa-public-key "alg HS"
hostile wrong-issuer "iss is not a configured issuer"
hostile wrong-audience "aud does not match"
hostile expired "expired"
hostile not-yet-valid "not yet valid"
hostile bad-signature "bad signature"
hostile truncated "\(base64url\|signature\)" # where the cut lands decides which
hostile dup-header-key "header: repeated"
hostile dup-claim-key "payload: repeated"
hostile non-json "not JSON"
hostile jku "jku"
hostile x5u "x5u"
hostile embedded-jwk "jwk"
hostile valid-ps256 "does not allow the token's alg"
# oversized: past 16 KiB it is not even looked at as a token
t=$($TOK oversized --issuer "$ISS" --aud $AUD --keys-url "$KEYS_URL" --keydir "$KEYDIR")
call "$t" claude-sonnet-4-5
check "an oversized token: 401 (got $CODE)" [ "$CODE" = 401 ]
# a token of the second IdP presented as the first's: the keys do not match
t=$(cc_token "$SLOW_PORT" "$SLOW_ISS" warden-test)
FORGED=$(python3 - "$t" "$ISS" <<'PY'
import base64, json, sys
tok, iss = sys.argv[1], sys.argv[2]
h, p, s = tok.split('.')
claims = json.loads(base64.urlsafe_b64decode(p + '=='))
claims['iss'] = iss
p2 = base64.urlsafe_b64encode(json.dumps(claims, separators=(',', ':')).encode()).rstrip(b'=').decode()
print('.'.join([h, p2, s]))
PY
)
call "$FORGED" claude-sonnet-4-5
check "a token of the second IdP relabelled as the first's: 401 (got $CODE)" [ "$CODE" = 401 ]

# ---- key rotation: a new kid verifies without a restart; a retired key's tokens are refused ----
claims "$IDP_PORT" '{"groups":["engineering"]}'
OLD=$(cc_token "$IDP_PORT" "$ISS" warden-test)
call "$OLD" claude-sonnet-4-5
check "before rotation: 200 (got $CODE)" [ "$CODE" = 200 ]
curl -sS -o /dev/null -X POST "http://127.0.0.1:$IDP_PORT/_test/rotate"
NEW=$(cc_token "$IDP_PORT" "$ISS" warden-test)
call "$NEW" claude-sonnet-4-5
check "a token of the rotated-in key verifies (the unknown kid fetched the keys again): 200 (got $CODE, ${MS} ms)" [ "$CODE" = 200 ]
curl -sS -o /dev/null -X POST "http://127.0.0.1:$IDP_PORT/_test/retire"
sleep 3 # refresh: 2s
call "$OLD" claude-sonnet-4-5
check "after the IdP retired the old key, its (cached) token is refused: 401 (got $CODE)" [ "$CODE" = 401 ]
call "$NEW" claude-sonnet-4-5
check "... the new key's token still verifies: 200 (got $CODE)" [ "$CODE" = 200 ]

# ---- a JWKS endpoint that hangs: no request waits longer than the issuer's bound ----
S1=$(cc_token "$SLOW_PORT" "$SLOW_ISS" warden-test)
call "$S1" claude-sonnet-4-5 # no groups: 403 after authentication (authentication is what is measured)
check "the slow issuer's token authenticates (403 by RBAC, got $CODE)" [ "$CODE" = 403 ]
curl -sS -o /dev/null -X POST "http://127.0.0.1:$SLOW_PORT/_test/hang-jwks"
curl -sS -o /dev/null -X POST "http://127.0.0.1:$SLOW_PORT/_test/rotate"
S2=$(cc_token "$SLOW_PORT" "$SLOW_ISS" warden-test)
call "$S2" claude-sonnet-4-5
check "a new kid while the JWKS hangs: 401 (got $CODE)" [ "$CODE" = 401 ]
check "... after at most the issuer's wait (1 s) and a little: ${MS} ms" [ "$MS" -lt 2500 ]
call "$NEW" claude-sonnet-4-5
check "other issuers' tokens are served meanwhile: 200 (got $CODE, ${MS} ms)" [ "$CODE" = 200 ]
curl -sS -o /dev/null -X POST "http://127.0.0.1:$SLOW_PORT/_test/unhang"

# ---- every decision is an audit record ----
q() { wd_psql postgres -At -c "$1"; }
for _ in $(seq 1 100); do
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='authz' AND decision='deny'" 2>/dev/null || echo 0)" -ge 5 ] && break
  sleep 0.1
done
BOB=$(q "SELECT subject || '|' || auth_method || '|' || rule FROM audit.records WHERE kind='authz' AND decision='allow' AND model_requested='claude-sonnet-4-5' AND auth_method='oidc' ORDER BY seq LIMIT 1")
check "audit: an OIDC caller's allow record names the subject, the method and the granting rule ($BOB)" \
  bash -c "[[ '$BOB' == *'|oidc|rbac: role developer grants tier:sonnet' ]]"
DENY=$(q "SELECT event || '|' || rule FROM audit.records WHERE kind='authz' AND decision='deny' AND model_requested='claude-opus-4-5' ORDER BY seq LIMIT 1")
check "audit: the denied opus call is an authz deny record with its reason ($DENY)" \
  [ "$DENY" = "deny|rbac: no role held grants this model" ]
NDENIED=$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND error_class='permission'")
NUP=$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND error_class='permission' AND upstream_status IS NOT NULL")
check "audit: the denied calls ($NDENIED) are call records of class permission, none with a provider answer ($NUP)" \
  bash -c "[ $NDENIED -ge 5 ] && [ $NUP = 0 ]"
NAUTH=$(q "SELECT count(*) FROM audit.records WHERE kind='auth' AND event='failure' AND auth_method='oidc'")
check "audit: refused bearer tokens are auth failure records (oidc): $NAUTH" [ "$NAUTH" -ge 15 ]
check "audit: no record holds a token" bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $PG_PORT -U postgres -d warden -c \"SELECT count(*) FROM audit.records WHERE coalesce(reason,'') || coalesce(detail::text,'') || coalesce(subject,'') LIKE '%${RS:0:30}%'\")\" = 0 ]"

# ---- the access line names an OIDC caller by subject and issuer, a key by its name ----
check "access line: an OIDC call has subject and issuer, no key" \
  grep -q '"subject":"warden-test","issuer":"okta"' "$WARDEN_LOG"
check "access line: a static-key call has the key's name" grep -q '"key":"dev"' "$WARDEN_LOG"

# ---- nothing of a token in the log ----
check "no token appears in Warden's log" bash -c "! grep -qF '${RS:20:40}' '$WARDEN_LOG' && ! grep -qF '${NEW:20:40}' '$WARDEN_LOG'"

wd_stop_warden
wd_finish
