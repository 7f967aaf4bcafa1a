#!/usr/bin/env bash
# gcp-sm:// references through Warden against tests/fakes/fake_gcp.mjs (Secret Manager and its token endpoint
# over TLS under a test CA, the metadata server on plain HTTP) and fake_gemini as the provider: lazy first fetch,
# one fetch for concurrent first uses, key-file and metadata auth, latest and a numbered version, rotation
# without restart, access-token renewal and the retry after a revoked token, a bad CRC32C refused, an outage
# with and without a cached value, /readyz and /metrics, and the planted values in no output.
# Usage: bash tests/integration/test_secrets_gcp.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/cloud/test_ca.sh"
wd_test_ca "$WD_TMP"

rnd() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
KEY1="gk-gcp-one-$(rnd)"
KEY2="gk-gcp-two-$(rnd)"
KEY3="gk-gcp-three-$(rnd)"
OTHER="gk-gcp-other-$(rnd)"
export WARDEN_DEV_KEY="wk-gcp-$(rnd)"
unset GOOGLE_APPLICATION_CREDENTIALS GCE_METADATA_HOST

# ---- the fakes ----------------------------------------------------------------------------------------------
out="$WD_TMP/gcp.out"
node "$WD_ROOT/tests/fakes/fake_gcp.mjs" --port 0 --tls-cert "$WD_TMP/cert.pem" --tls-key "$WD_TMP/key.pem" \
  >"$out" 2>"$WD_TMP/gcp.err" &
WD_PIDS+=("$!")
for _ in $(seq 1 200); do grep -q '"port"' "$out" 2>/dev/null && break; sleep 0.05; done
GCP_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$out")
MD_PORT=$(sed -n 's/.*"metadata_port":\([0-9]*\).*/\1/p' "$out")
[ -n "$GCP_PORT" ] && [ -n "$MD_PORT" ] || { fail "fake_gcp did not start"; cat "$WD_TMP/gcp.err" >&2; wd_finish; exit 1; }
GCP="https://127.0.0.1:$GCP_PORT"
gcp() { curl -sS --cacert "$WD_TMP/ca.pem" "$@"; }
gcp_post() { gcp -X POST -H 'content-type: application/json' --data-binary "$2" "$GCP/_fake/$1" >/dev/null; }
gstat() { gcp "$GCP/_fake/stats" | node -e "const s=JSON.parse(require('fs').readFileSync(0));const v=($1);console.log(v===undefined?0:v)"; }

gcp_post secret "{\"secret\":\"gemini-key\",\"value\":\"$KEY1\"}"
gcp_post secret "{\"secret\":\"other-key\",\"value\":\"$OTHER\"}"
gcp "$GCP/_fake/service_account" >"$WD_TMP/sa.json"
gcp_post script '{"token_ttl":3}'

wd_start_fake --key "$KEY1"
GEM="$FAKE_URL"
gem_keys() { curl -sS "$GEM/_fake/requests" | node -e "for (const r of JSON.parse(require('fs').readFileSync(0))) console.log(r.headers['x-goog-api-key'])"; }

REF="gcp-sm://projects/warden-test/secrets/gemini-key"
REF_OTHER="gcp-sm://projects/warden-test/secrets/other-key"

# gcp_config PORT REF AUTH_YAML: a config whose gemini provider's key is REF, "fast" on a second provider keyed by
# REF_OTHER, the secrets.gcp section pointing at the fake (AUTH_YAML: the auth lines), metrics on their own port
gcp_config() {
  local f="$WD_TMP/warden.$RANDOM.yaml"
  cat >"$f" <<YAML
listen: 127.0.0.1:$1
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $GEM
    keys:
      - secret: $2
  other:
    type: gemini
    base_url: $GEM
    keys:
      - secret: $REF_OTHER
models:
  tiers:
    opus: gemini/gemini-2.5-pro
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite
  aliases:
    fast: other/gemini-2.5-flash
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
secrets:
  stale_max: 1m
  gcp:
$3
    endpoint: $GCP
    tls_ca: $WD_TMP/ca.pem
    ttl: 2s
    timeout: 3s
$(wd_metrics_yaml)
YAML
  echo "$f"
}

OUT="$WD_TMP/resp"
ALL_BODIES="$WD_TMP/bodies"
: >"$ALL_BODIES"
# post [MODEL]: one Messages call -> $OUT, $CODE (the body also kept for the final grep)
post() {
  CODE=$(curl -sS -o "$OUT" -w '%{http_code}' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary "{\"model\":\"${1:-claude-sonnet-4-5}\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hello gcp\"}]}" \
    "$WARDEN_URL/anthropic/v1/messages") || CODE=000
  cat "$OUT" >>"$ALL_BODIES"
}
metrics() { curl -sS "$WARDEN_METRICS_URL/metrics" | tee -a "$ALL_BODIES"; }
readyz() { curl -sS "$WARDEN_URL/readyz" | tee -a "$ALL_BODIES"; }
LOGS=()
# traffic_until SECONDS CONDITION: a request every 0.25 s (the cache refreshes only what is used) until
# CONDITION (a shell command) holds or SECONDS pass
traffic_until() {
  local end=$(($(date +%s%N) + $1 * 1000000000))
  while [ "$(date +%s%N)" -lt "$end" ]; do
    post
    eval "$2" && return 0
    sleep 0.25
  done
  return 0
}

# ---- run 1: a service-account key file ---------------------------------------------------------------------
T0=$(date +%s)
CFG=$(gcp_config "$(wd_free_port)" "$REF" "    credentials: key
    credentials_file: $WD_TMP/sa.json
    token_endpoint: $GCP/token")
wd_start_warden "$CFG"
LOGS+=("$WARDEN_LOG")
sleep 0.3
check "lazy: nothing fetched from Secret Manager at start" test "$(gstat s.access_requests)" = 0
check "lazy: no token asked for at start" test "$(gstat s.token_requests)" = 0
readyz >"$WD_TMP/ready0"
check "/readyz lists the reference as unused before its first use" \
  grep -q "\"ref\":\"$REF\",\"state\":\"unused\"" "$WD_TMP/ready0"

# 20 concurrent first uses: one read of the secret
PAR_PIDS=()
for i in $(seq 1 20); do
  curl -sS -o "$WD_TMP/par.$i" -w '%{http_code}\n' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}' \
    "$WARDEN_URL/anthropic/v1/messages" >"$WD_TMP/par.code.$i" &
  PAR_PIDS+=("$!")
done
wait_ok=0
for p in "${PAR_PIDS[@]}"; do wait "$p" || true; done
for i in $(seq 1 20); do [ "$(cat "$WD_TMP/par.code.$i")" = 200 ] && wait_ok=$((wait_ok + 1)); cat "$WD_TMP/par.$i" >>"$ALL_BODIES"; done
check "20 concurrent first requests all succeed with the planted secret (got $wait_ok)" test "$wait_ok" = 20
check "concurrent first use is ONE read of the secret at Secret Manager" \
  test "$(gstat "s.by_secret['projects/warden-test/secrets/gemini-key']")" = 1
check "one token from the token endpoint (the RS256 assertion verified by the fake)" test "$(gstat s.token_requests)" = 1
check "the log says the token came from the service-account key" \
  grep -q "gcp-sm: access token from the service-account key $WD_TMP/sa.json, valid 3 s" "$WARDEN_LOG"
check "the provider saw exactly the planted key" test "$(gem_keys | sort -u)" = "$KEY1"
readyz >"$WD_TMP/ready1"
check "/readyz reports the reference cached" grep -q "\"ref\":\"$REF\",\"state\":\"cached\"" "$WD_TMP/ready1"
check "/readyz reports the unused reference as unused" grep -q "\"ref\":\"$REF_OTHER\",\"state\":\"unused\"" "$WD_TMP/ready1"

# rotation at Secret Manager and at the provider: picked up within a few seconds, no restart
gcp_post secret "{\"secret\":\"gemini-key\",\"value\":\"$KEY2\"}"
curl -sS -X POST -H 'content-type: application/json' --data-binary "{\"api_keys\":[\"$KEY2\"]}" "$GEM/_fake/script" >/dev/null
curl -sS -X POST "$GEM/_fake/reset" >/dev/null
curl -sS -X POST -H 'content-type: application/json' --data-binary "{\"api_keys\":[\"$KEY2\"]}" "$GEM/_fake/script" >/dev/null
rot_ok=0
for _ in $(seq 1 40); do
  post
  if [ "$CODE" = 200 ] && gem_keys | tail -1 | grep -qx "$KEY2"; then rot_ok=1; break; fi
  sleep 0.2
done
check "rotation without restart: the new version is used within 8 s" test "$rot_ok" = 1
post
check "after the rotation requests succeed" test "$CODE" = 200
check "the provider now sees only the new key" test "$(gem_keys | tail -1)" = "$KEY2"

# the access token (3 s lifetime) is renewed ahead of expiry while the secret is refreshed every 1.6 s
traffic_until 6 'test "$(gstat s.token_requests)" -gt 1'
check "the access token was renewed (token endpoint logins: $(gstat s.token_requests) > 1)" \
  test "$(gstat s.token_requests)" -gt 1
check "requests keep working across token renewals" test "$CODE" = 200

# a revoked token: the next refresh gets 401, logs in again and retries once, and succeeds
gcp_post script '{"token_ttl":3599}'
traffic_until 4 false
gcp_post revoke_tokens '{}'
before_401=$(gstat "s.responses_by_status['401']")
before_ok=$(gstat "s.by_secret['projects/warden-test/secrets/gemini-key']")
traffic_until 6 'test "$(gstat "s.by_secret['"'"'projects/warden-test/secrets/gemini-key'"'"']")" -gt "$before_ok"'
check "a revoked token got a 401 at Secret Manager" test "$(gstat "s.responses_by_status['401']")" -gt "$before_401"
check "then a fresh login and the retry read the secret" \
  test "$(gstat "s.by_secret['projects/warden-test/secrets/gemini-key']")" -gt "$before_ok"
check "requests succeed after the revocation" test "$CODE" = 200

# a bad CRC32C: refused, never served (the newer version 3 must not reach the provider while it lasts)
gcp_post script '{"faults":[{"bad_crc":true,"times":-1}]}'
gcp_post secret "{\"secret\":\"gemini-key\",\"value\":\"$KEY3\"}"
curl -sS -X POST -H 'content-type: application/json' --data-binary "{\"api_keys\":[\"$KEY2\",\"$KEY3\"]}" "$GEM/_fake/script" >/dev/null
traffic_until 6 "grep -q 'dataCrc32c does not match' '$WARDEN_LOG'"
check "a bad CRC32C is refused with a clear reason in the log" \
  grep -q "secret $REF: refresh failed (gcp-sm: access: payload.dataCrc32c does not match" "$WARDEN_LOG"
check "traffic continues on the last good value during the CRC fault" test "$CODE" = 200
check "the value whose CRC did not match never reached the provider" bash -c "! curl -sS '$GEM/_fake/requests' | grep -q '$KEY3'"
readyz >"$WD_TMP/ready2"
check "/readyz names the CRC failure for the reference" grep -q 'dataCrc32c does not match' "$WD_TMP/ready2"
gcp_post script '{"faults":[]}'
traffic_until 8 'gem_keys | tail -1 | grep -qx "$KEY3"'
check "once the checksum matches again, the newest version is served" test "$(gem_keys | tail -1)" = "$KEY3"

# an outage of Secret Manager with a cached value: traffic continues, a log line, the stale metrics
gcp_post script '{"faults":[{"status":503,"times":-1}]}'
traffic_until 6 "grep -q 'refresh failed (gcp-sm: access: HTTP 503' '$WARDEN_LOG'"
post
check "outage with a cached value: the request succeeds" test "$CODE" = 200
check "outage: a log line names the reference, Google's status, and that the previous value is served" \
  grep -q "secret $REF: refresh failed (gcp-sm: access: HTTP 503 UNAVAILABLE.*the previous value is served" "$WARDEN_LOG"
metrics >"$WD_TMP/metrics1"
check "outage: warden_secret_stale_references{scheme=\"gcp-sm\"} is 1" \
  grep -q '^warden_secret_stale_references{scheme="gcp-sm"} 1$' "$WD_TMP/metrics1"
check "outage: warden_secret_fetches_total{scheme=\"gcp-sm\",result=\"error\"} counts the failures" \
  grep -qE '^warden_secret_fetches_total\{scheme="gcp-sm",result="error"\} [1-9]' "$WD_TMP/metrics1"

# an outage with nothing cached: a fresh reference answers 503 naming it, not a value
post fast
check "outage without a cached value: 503" test "$CODE" = 503
check "the 503 names the reference" grep -qF "$REF_OTHER" "$OUT"
check "the 503 carries no value" bash -c "! grep -qE '$KEY1|$KEY2|$KEY3|$OTHER' '$OUT'"
readyz >"$WD_TMP/ready3"
check "/readyz reports the failed reference" grep -q "\"ref\":\"$REF_OTHER\",\"state\":\"failed\"" "$WD_TMP/ready3"
check "/readyz reports the served-stale reference" grep -q "\"ref\":\"$REF\",\"state\":\"stale\"" "$WD_TMP/ready3"
gcp_post script '{"faults":[]}'
wd_stop_warden
echo "# run 1 took $(($(date +%s) - T0)) s"

# ---- run 2: the metadata server (GKE Workload Identity), a numbered version ----------------------------------
gcp_post reset '{}'
curl -sS -X POST "$GEM/_fake/reset" >/dev/null
curl -sS -X POST -H 'content-type: application/json' --data-binary "{\"api_keys\":[\"$KEY2\"]}" "$GEM/_fake/script" >/dev/null
CFG=$(gcp_config "$(wd_free_port)" "$REF/versions/2" "    credentials: metadata
    metadata_host: 127.0.0.1:$MD_PORT")
wd_start_warden "$CFG"
LOGS+=("$WARDEN_LOG")
post
check "metadata auth: the request succeeds" test "$CODE" = 200
check "metadata auth: the token came from the metadata server" test "$(gstat s.metadata_requests)" -ge 1
check "metadata auth: the log says where the token came from" \
  grep -q "gcp-sm: access token from the metadata server 127.0.0.1:$MD_PORT" "$WARDEN_LOG"
check "metadata auth: no token endpoint login" test "$(gstat s.token_requests)" = 0
check "versions/2 is read, not latest (the provider saw version 2's key)" test "$(gem_keys | sort -u)" = "$KEY2"
wd_stop_warden

# ---- run 3: auto with GOOGLE_APPLICATION_CREDENTIALS, latest --------------------------------------------------
gcp_post reset '{}'
curl -sS -X POST "$GEM/_fake/reset" >/dev/null
curl -sS -X POST -H 'content-type: application/json' --data-binary "{\"api_keys\":[\"$KEY3\"]}" "$GEM/_fake/script" >/dev/null
CFG=$(gcp_config "$(wd_free_port)" "$REF/versions/latest" "    token_endpoint: $GCP/token")
WD_WARDEN_ENV=(GOOGLE_APPLICATION_CREDENTIALS="$WD_TMP/sa.json")
wd_start_warden "$CFG"
WD_WARDEN_ENV=()
LOGS+=("$WARDEN_LOG")
post
check "auto with GOOGLE_APPLICATION_CREDENTIALS: the request succeeds" test "$CODE" = 200
check "auto with a key file: the token endpoint, not the metadata server" \
  test "$(gstat s.token_requests):$(gstat s.metadata_requests)" = "1:0"
check "versions/latest is the newest version" test "$(gem_keys | sort -u)" = "$KEY3"
metrics >/dev/null
wd_stop_warden

# ---- the planted values appear in no output ------------------------------------------------------------------
leak=0
for f in "${LOGS[@]}" "$ALL_BODIES"; do
  for v in "$KEY1" "$KEY2" "$KEY3" "$OTHER"; do
    grep -qF "$v" "$f" "$f.out" 2>/dev/null && { leak=1; echo "# $v found in $f" >&2; }
  done
  grep -q 'ya29\.' "$f" "$f.out" 2>/dev/null && { leak=1; echo "# an access token found in $f" >&2; }
done
check "no planted value nor access token in Warden's logs, /metrics, /readyz or any answer body" test "$leak" = 0
grep -q 'internal error' "$WD_TMP/gcp.err" && fail "fake_gcp logged an internal error" || ok "fake_gcp logged no internal error"
wd_finish
