#!/usr/bin/env bash
# Warden's azure-kv:// backend through Warden against tests/fakes/fake_azure.mjs over TLS (test CA), with
# fake_gemini as the provider whose key lives in the vault: lazy first fetch, one fetch for 20 concurrent first
# requests, Key Vault's challenge answered once, rotation without restart, a revoked token refetched once, short
# tokens renewed, outages with and without a cached value, a disabled version, /readyz, the three credentials
# (client secret, workload identity, managed identity), and the planted values in no output of Warden's.
# Usage: bash tests/integration/test_secrets_azure.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/cloud/test_ca.sh"
wd_test_ca "$WD_TMP"
T0=$(date +%s)

rnd() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
KEY1="gk-azure-one-$(rnd)"
KEY2="gk-azure-two-$(rnd)"
export WARDEN_DEV_KEY="devkey"
CS="fake-azure-client-secret-$(rnd)"

# ---- fakes ----------------------------------------------------------------------------------------------
out="$WD_TMP/azure.out"
node "$WD_ROOT/tests/fakes/fake_azure.mjs" --port 0 --tls-cert "$WD_TMP/cert.pem" --tls-key "$WD_TMP/key.pem" \
  --client-secret "$CS" >"$out" 2>"$WD_TMP/azure.err" &
WD_PIDS+=("$!")
for _ in $(seq 1 100); do grep -q '"port"' "$out" 2>/dev/null && break; sleep 0.05; done
AZ_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$out")
IMDS_PORT=$(sed -n 's/.*"imds_port":\([0-9]*\).*/\1/p' "$out")
[ -n "$AZ_PORT" ] || { fail "fake_azure did not start"; cat "$WD_TMP/azure.err" >&2; wd_finish; exit 1; }
AZ="https://127.0.0.1:$AZ_PORT"
azc() { curl -sS --cacert "$WD_TMP/ca.pem" "$@"; }
az_stats() { azc "$AZ/_fake/stats"; }
az_stat() { az_stats | jq -r "$1"; }
az_post() { azc -X POST -H 'content-type: application/json' -d "$2" "$AZ/_fake/$1"; }
STATE=$(azc "$AZ/_fake/state")
TENANT=$(jq -r .tenant <<<"$STATE")
APP_ID=$(jq -r .client_id <<<"$STATE")
MI_ID=$(jq -r .mi_client_id <<<"$STATE")

V1=$(az_post secret "{\"name\":\"gemini-key\",\"value\":\"$KEY1\"}" | jq -r .version)
az_post secret '{"name":"spare-key","value":"spare-never-used"}' >/dev/null
DV=$(az_post secret '{"name":"off-key","value":"disabled-value-x"}' | jq -r .version)
az_post disable "{\"name\":\"off-key\",\"version\":\"$DV\",\"enabled\":false}" >/dev/null

wd_start_fake --key "$KEY1"
gem_script() { curl -sS -X POST -H 'content-type: application/json' -d "$1" "$FAKE_URL/_fake/script" >/dev/null; }
gem_last_key() { curl -sS "$FAKE_URL/_fake/requests" | jq -r '[.[] | select(.path | test("generateContent"))] | last | .headers["x-goog-api-key"]'; }

# ---- helpers --------------------------------------------------------------------------------------------
BODIES="$WD_TMP/bodies"
mkdir -p "$BODIES"
# cfg CRED_YAML [GEMINI_REF]: a config whose providers' keys are azure-kv:// references
cfg() {
  local cred="$1" ref="${2:-azure-kv://kv-test/gemini-key}" f="$WD_TMP/warden.$RANDOM.yaml"
  cat >"$f" <<YAML
listen: 127.0.0.1:$(wd_free_port)
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: $ref
  gemspare:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: azure-kv://kv-test/spare-key
  gemoff:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: azure-kv://kv-test/off-key/$DV
models:
  tiers:
    opus: gemini/gemini-2.5-pro
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite
  aliases:
    spare: gemspare/gemini-2.5-flash
    off: gemoff/gemini-2.5-flash
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
secrets:
  stale_max: 10m
  azure:
$cred
    authority_host: $AZ
    vault_url: https://127.0.0.1:$AZ_PORT
    tls_ca: $WD_TMP/ca.pem
    ttl: 2s
    timeout: 3s
$(wd_metrics_yaml)
YAML
  echo "$f"
}
N=0
# post MODEL: one Messages call -> $CODE, body in $BODIES/N
post() {
  N=$((N + 1))
  CODE=$(curl -sS -o "$BODIES/$N" -w '%{http_code}' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary "{\"model\":\"$1\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hello azure\"}]}" \
    "$WARDEN_URL/anthropic/v1/messages") || CODE=000
}
metric() { curl -sS "$WARDEN_METRICS_URL/metrics" | tee -a "$WD_TMP/metrics.all" | grep -E "^$1" | grep 'azure-kv' | awk '{s+=$2} END {print s+0}'; }
readyz() { curl -sS "$WARDEN_URL/readyz" | tee -a "$WD_TMP/readyz.all"; }
# until SECONDS CMD...: retries CMD every 0.25 s
until_ok() { local t=$(($(date +%s%N) + $1 * 1000000000)); shift; while ! "$@"; do [ "$(date +%s%N)" -lt "$t" ] || return 1; sleep 0.25; done; }

# ==== 1. client secret: lazy, concurrent first use, challenge, rotation, token refresh, outages ==========
WD_WARDEN_ENV=(AZ_CS="$CS")
C1=$(cfg "    credentials: client_secret
    tenant_id: $TENANT
    client_id: $APP_ID
    client_secret: env://AZ_CS")
wd_start_warden "$C1"
LOG1="$WARDEN_LOG"
sleep 0.3
check "lazy: nothing read from Key Vault or Entra at start" \
  test "$(az_stat '.secret_requests + .token_requests')" = 0
readyz >"$WD_TMP/r0"
check "/readyz lists the reference unused before its first use" \
  test "$(jq -r '.. | objects | select(.ref? == "azure-kv://kv-test/gemini-key") | .state' "$WD_TMP/r0" | head -1)" = unused

pids=()
for i in $(seq 1 20); do
  (curl -sS -o "$BODIES/par.$i" -w '%{http_code}' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary '{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}' \
    "$WARDEN_URL/anthropic/v1/messages" >"$BODIES/par.$i.code") &
  pids+=("$!")
done
for p in "${pids[@]}"; do wait "$p" || true; done
n200=$(for f in "$BODIES"/par.*.code; do cat "$f"; echo; done | grep -c '^200$' || true)
check "20 concurrent first requests all succeed with the vault's key ($n200/20)" test "$n200" = 20
S=$(az_stats)
check "concurrent first use: ONE secret read at Key Vault (got $(jq '.by_secret["gemini-key"]' <<<"$S"))" \
  test "$(jq '.by_secret["gemini-key"]' <<<"$S")" = 1
check "Key Vault's challenge answered once (challenges $(jq .challenges <<<"$S"))" test "$(jq .challenges <<<"$S")" = 1
check "one Entra token, by client secret" test "$(jq -c .tokens_by_grant <<<"$S")" = '{"client_secret":1}'
check "the provider saw exactly the planted key" test "$(gem_last_key)" = "$KEY1"
readyz >"$WD_TMP/r1"
check "/readyz: the reference is cached" \
  test "$(jq -r '.. | objects | select(.ref? == "azure-kv://kv-test/gemini-key") | .state' "$WD_TMP/r1" | head -1)" = cached

# rotation at the vault and at the provider, no restart (ttl 2s, or the provider's refusal, brings it in)
V2=$(az_post secret "{\"name\":\"gemini-key\",\"value\":\"$KEY2\"}" | jq -r .version)
gem_script "{\"api_keys\":[\"$KEY2\"]}"
rotated() { post sonnet; [ "$CODE" = 200 ] && [ "$(gem_last_key)" = "$KEY2" ]; }
check "rotation: within 6 s requests use the new key, no restart" until_ok 6 rotated
check "still one challenge after the rotation (a cached token needs none)" test "$(az_stat .challenges)" = 1

# token revoked at Entra: Key Vault's 401 drops it, one fresh login, the read succeeds; then short tokens renew
az_post script '{"token_ttl":4}' >/dev/null
az_post revoke_tokens '{}' >/dev/null
t_before=$(az_stat .tokens_issued)
s_before=$(az_stat '.by_secret["gemini-key"]')
ok_count=0
for i in $(seq 1 12); do post sonnet; [ "$CODE" = 200 ] && ok_count=$((ok_count + 1)); sleep 0.5; done
S=$(az_stats)
check "requests keep working across a revoked token and short-lived ones ($ok_count/12)" test "$ok_count" = 12
check "the refused token was replaced and 4 s tokens renewed ahead of expiry (tokens $t_before -> $(jq .tokens_issued <<<"$S"))" \
  test "$(jq .tokens_issued <<<"$S")" -ge $((t_before + 2))
check "reads went on after the revocation ($s_before -> $(jq '.by_secret["gemini-key"]' <<<"$S"))" \
  test "$(jq '.by_secret["gemini-key"]' <<<"$S")" -gt "$s_before"
check "a revoked token is no new challenge: still 1" test "$(jq .challenges <<<"$S")" = 1

# Key Vault down with the key cached: traffic continues, stale metric, error fetches, a log line
az_post script '{"faults":[{"target":"secret","status":503,"times":-1}],"token_ttl":3599}' >/dev/null
# (traffic keeps the value in use: the cache refreshes only what was used in its TTL)
fails=0
stale() { post sonnet; [ "$CODE" = 200 ] || fails=$((fails + 1)); [ "$(metric warden_secret_stale_references)" -ge 1 ]; }
check "outage: the cached reference goes stale on /metrics" until_ok 8 stale
for i in 1 2 3; do post sonnet; [ "$CODE" = 200 ] || fails=$((fails + 1)); sleep 0.3; done
check "outage: every request still succeeds on the cached key ($fails failed)" test "$fails" = 0
check "outage: warden_secret_fetches_total{result=\"error\"} counts the failed refreshes" \
  test "$(curl -sS "$WARDEN_METRICS_URL/metrics" | grep '^warden_secret_fetches_total' | grep azure-kv | grep 'result="error"' | awk '{print $2}')" -ge 1
check "outage: a log line names the reference and Key Vault's answer" \
  grep -q 'secret azure-kv://kv-test/gemini-key: refresh failed (azure-kv: read gemini-key: HTTP 503 ServiceUnavailable' "$LOG1"
# a reference never fetched, during the outage: 503 naming the reference, not a value
post spare
check "outage, nothing cached: 503 ($CODE)" test "$CODE" = 503
check "outage, nothing cached: the answer names the reference" grep -q 'azure-kv://kv-test/spare-key' "$BODIES/$N"
readyz >"$WD_TMP/r2"
check "/readyz: the stale reference is listed stale" \
  test "$(jq -r '.. | objects | select(.ref? == "azure-kv://kv-test/gemini-key") | .state' "$WD_TMP/r2" | head -1)" = stale
check "/readyz: the unreachable reference is failed with Key Vault's reason" \
  grep -q '"ref":"azure-kv://kv-test/spare-key","state":"failed","reason":"[^"]*HTTP 503' "$WD_TMP/r2"
az_post script '{"faults":[]}' >/dev/null

# a disabled version: a clear why
post off
check "a disabled version: 503 ($CODE)" test "$CODE" = 503
readyz >"$WD_TMP/r3"
check "a disabled version: /readyz says SecretDisabled" \
  grep -q "\"ref\":\"azure-kv://kv-test/off-key/$DV\",\"state\":\"failed\",\"reason\":\"[^\"]*HTTP 403 Forbidden (SecretDisabled)" "$WD_TMP/r3"
check "the disabled version's value was never read" test "$(az_stat '.by_secret["off-key"] // 0')" = 0
wd_stop_warden

# ==== 2. workload identity (auto, from the environment AKS sets), a versioned reference =================
curl -sS --cacert "$WD_TMP/ca.pem" "$AZ/_fake/federated_token" >"$WD_TMP/fedtoken"
az_post reset '{}' >/dev/null
WD_WARDEN_ENV=(AZURE_TENANT_ID="$TENANT" AZURE_CLIENT_ID="$APP_ID" AZURE_FEDERATED_TOKEN_FILE="$WD_TMP/fedtoken")
C2=$(cfg "    credentials: auto" "azure-kv://kv-test/gemini-key/$V2")
wd_start_warden "$C2"
LOG2="$WARDEN_LOG"
post sonnet
check "workload identity: a versioned reference serves its version ($CODE)" test "$CODE" = 200
check "workload identity: the provider saw the version's key" test "$(gem_last_key)" = "$KEY2"
check "workload identity: the token came from the federated assertion" \
  test "$(az_stats | jq -c .tokens_by_grant)" = '{"client_assertion":1}'
check "workload identity: the versioned URL was read" \
  eval "azc '$AZ/_fake/requests' | jq -r '.[].path' | grep -qx '/secrets/gemini-key/$V2'"
wd_stop_warden

# ==== 3. managed identity (IMDS, a user-assigned identity's client id) =================================
az_post reset '{}' >/dev/null
WD_WARDEN_ENV=()
C3=$(cfg "    credentials: managed_identity
    client_id: $MI_ID
    imds_endpoint: http://127.0.0.1:$IMDS_PORT")
wd_start_warden "$C3"
LOG3="$WARDEN_LOG"
post sonnet
check "managed identity: the request succeeds ($CODE)" test "$CODE" = 200
check "managed identity: the token came from IMDS" test "$(az_stats | jq -c .tokens_by_grant)" = '{"imds":1}'
check "managed identity: the provider saw the current key" test "$(gem_last_key)" = "$KEY2"
# a 403 to a read with a cached token: one fresh token, the read again, no failure
az_post script '{"faults":[{"target":"secret","status":403,"message":"Caller is not authorized","times":1}]}' >/dev/null
fails=0
two_tokens() { post sonnet; [ "$CODE" = 200 ] || fails=$((fails + 1)); [ "$(az_stat .tokens_by_grant.imds)" = 2 ]; }
check "a 403 on a refresh drops the token: a second IMDS token" until_ok 6 two_tokens
check "a 403 on a refresh: the read after the fresh token succeeded, no request failed ($fails)" \
  eval '[ "$fails" = 0 ] && [ "$(az_stat .by_secret[\"gemini-key\"])" -ge 2 ]'
wd_stop_warden

# ==== 4. a wrong client secret: Entra's reason, no value, no secret ======================================
WD_WARDEN_ENV=(AZ_CS="wrong-$CS")
C4=$(cfg "    credentials: client_secret
    tenant_id: $TENANT
    client_id: $APP_ID
    client_secret: env://AZ_CS")
wd_start_warden "$C4"
LOG4="$WARDEN_LOG"
post sonnet
check "a wrong client secret: 503 ($CODE)" test "$CODE" = 503
readyz >"$WD_TMP/r4"
check "a wrong client secret: /readyz gives Entra's AADSTS7000215" \
  grep -q '"state":"failed","reason":"azure-kv: client secret: token: HTTP 401 invalid_client: AADSTS7000215' "$WD_TMP/r4"
wd_stop_warden

# ==== hygiene: the planted values appear in no output of Warden's =======================================
for v in "$KEY1" "$KEY2" "$CS" "wrong-$CS" disabled-value-x spare-never-used; do
  hits=$(cat "$LOG1" "$LOG1.out" "$LOG2" "$LOG2.out" "$LOG3" "$LOG3.out" "$LOG4" "$LOG4.out" "$WD_TMP/metrics.all" "$WD_TMP/readyz.all" \
    "$BODIES"/* 2>/dev/null | grep -c -F -- "$v" || true)
  check "no planted secret (${v:0:12}...) in Warden's logs, /metrics, /readyz or answers" test "$hits" = 0
done
check "no federated token in Warden's logs" \
  test "$(cat "$LOG2" "$LOG2.out" | grep -c -F -- "$(cut -c1-40 "$WD_TMP/fedtoken")" || true)" = 0
grep -q 'internal error' "$WD_TMP/azure.err" && fail "fake_azure logged an internal error" || ok "fake_azure logged no internal error"
el=$(($(date +%s) - T0))
check "the whole test took ${el}s (at most 75)" test "$el" -le 75
wd_finish
