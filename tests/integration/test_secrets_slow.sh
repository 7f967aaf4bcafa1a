#!/usr/bin/env bash
# A slow or hung secret backend (issue 17): a request that needs a reference of a hung Vault waits at most the
# backend's timeout and gets a 503 naming the reference; meanwhile no worker loop is blocked (requests on keys
# already cached keep their latency, measured while Vault hangs) and a reference of another scheme resolves at
# once (one resolver thread per backend); once Vault answers again the same request succeeds. Uses
# tests/fakes/fake_vault.mjs over TLS with a test CA and fake_gemini as the provider.
# Usage: bash tests/integration/test_secrets_slow.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

T="$WD_TMP"
export GEMINI_API_KEY="gk-slow-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export WARDEN_DEV_KEY="wk-slow-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
VAULT_TOKEN="hvs.slow-root-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
WD_WARDEN_ENV=(VAULT_TOKEN="$VAULT_TOKEN")

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=warden-slow-test-ca \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -extfile "$T/ext.cnf" -out "$T/srv.pem" 2>/dev/null

wd_start_server VPORT node "$WD_ROOT/tests/fakes/fake_vault.mjs" --port 0 --tls-cert "$T/srv.pem" \
  --tls-key "$T/srv.key" --root-token "$VAULT_TOKEN"
V="https://127.0.0.1:$VPORT"
vctl() { curl -s --cacert "$T/ca.pem" -o /dev/null -w '%{http_code}' -X POST "$V/_fake/$1" -d "$2"; }
check "the secret is planted in Vault" test "$(vctl secret "{\"path\":\"warden/slow\",\"data\":{\"k\":\"$GEMINI_API_KEY\"}}")" = 200
wd_start_fake --key "$GEMINI_API_KEY"
printf '%s\n' "$GEMINI_API_KEY" >"$T/filekey"

PORT=$(wd_free_port)
MPORT=$(wd_free_port)
# write_config [with the file provider]: gv's key is in Vault, ge's in the environment, gf's (the reload) in a file
write_config() {
  cat >"$T/warden.yaml" <<YAML
listen: 127.0.0.1:$PORT
workers: 2
providers:
  gv:
    type: gemini
    base_url: $FAKE_URL
    keys: [{secret: "vault://secret/warden/${VPATH:-slow}#k"}]
  ge:
    type: gemini
    base_url: $FAKE_URL
    keys: [{secret: env://GEMINI_API_KEY}]
$([ -n "${1:-}" ] && printf '  gf:\n    type: gemini\n    base_url: %s\n    keys: [{secret: "file://%s/filekey"}]\n' "$FAKE_URL" "$T")
models:
  tiers: {opus: gv/gemini-2.5-pro, sonnet: ge/gemini-2.5-flash, haiku: ge/gemini-2.5-flash-lite}
  aliases:
    envm: ge/gemini-2.5-flash
$([ -n "${1:-}" ] && printf '    filem: gf/gemini-2.5-flash\n')
auth:
  keys: [{name: dev, secret: env://WARDEN_DEV_KEY}]
secrets:
  prefetch: ${PREFETCH:-false}
  vault:
    address: $V
    tls_ca: $T/ca.pem
    token: env://VAULT_TOKEN
    timeout: 2s
telemetry:
  metrics:
    listen: 127.0.0.1:$MPORT
YAML
}
write_config

# post MODEL OUT -> prints "CODE MS"
post() {
  local t0 code
  t0=$(date +%s%N)
  code=$(curl -s -o "$2" -w '%{http_code}' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" -H 'anthropic-version: 2023-06-01' \
    -H 'content-type: application/json' \
    -d "{\"model\":\"$1\",\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\"slow vault\"}]}" \
    "http://127.0.0.1:$PORT/anthropic/v1/messages" || echo 000)
  echo "$code $((($(date +%s%N) - t0) / 1000000))"
}

# Vault hangs from the start: every request to it is held until Warden gives up (secrets.vault.timeout: 2s)
check "Vault is told to hang" test "$(vctl fail '{"count":1000,"hang":true}')" = 200
wd_start_warden "$T/warden.yaml"

# the request that needs the Vault key, in the background
post claude-opus-4-5 "$T/a.out" >"$T/a.res" &
APID=$!
sleep 0.3
# meanwhile: 15 requests on the env:// provider, one every 100 ms, and /healthz
MAXMS=0 BAD=0
for i in $(seq 1 15); do
  read -r code ms < <(post envm "$T/e.out")
  [ "$code" = 200 ] || BAD=$((BAD + 1))
  [ "$ms" -gt "$MAXMS" ] && MAXMS=$ms
  sleep 0.1
done
HZ_MS=$(curl -s -o /dev/null -w '%{time_total}' --max-time 5 "http://127.0.0.1:$PORT/healthz" | awk '{printf "%d", $1 * 1000}')
wait "$APID"
read -r ACODE AMS <"$T/a.res"
check "while Vault hangs, 15 requests on a cached env:// key all succeed (failures: $BAD)" test "$BAD" = 0
check "... and none took more than 1 s (slowest ${MAXMS} ms): no worker loop waits on Vault" test "$MAXMS" -lt 1000
check "... /healthz answers in ${HZ_MS} ms" test "$HZ_MS" -lt 1000
check "the request that needs the Vault key gets a 503 (got $ACODE)" test "$ACODE" = 503
check "... after a bounded wait: ${AMS} ms, about the 2 s backend timeout, not the 20 s client limit" \
  test "$AMS" -ge 1500 -a "$AMS" -lt 6000
check "... its body names the reference" grep -q 'vault://secret/warden/slow#k' "$T/a.out"
check "... and not the key" bash -c "! grep -q '$GEMINI_API_KEY' '$T/a.out'"
check "... in the Anthropic error shape" grep -q '"type":"error"' "$T/a.out"
check "the log names the reference and the timeout" grep -q 'secret vault://secret/warden/slow#k cannot be resolved' "$WARDEN_LOG"

# another scheme's fresh reference resolves while Vault still hangs: reload with a provider keyed by a file, keep
# Vault's lane busy with a second request, and time the first request on the file key
post claude-opus-4-5 "$T/b.out" >"$T/b.res" &
BPID=$!
sleep 0.2
write_config with-file
kill -HUP "$WARDEN_PID"
wd_wait_for "$WARDEN_LOG" 'config reloaded' || sleep 1
read -r FCODE FMS < <(post filem "$T/f.out")
check "a file:// key added by a reload works at once while Vault hangs (HTTP $FCODE in ${FMS} ms)" \
  test "$FCODE" = 200 -a "$FMS" -lt 1500
wait "$BPID"
curl -s -o "$T/ready.json" "http://127.0.0.1:$PORT/readyz"
check "/readyz names the Vault reference as failed, with the reason" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["secrets"] if x["ref"] == "vault://secret/warden/slow#k"]
sys.exit(0 if s and s[0]["state"] == "failed" and s[0].get("reason") else 1)' "$T/ready.json"
check "/readyz shows no value" bash -c "! grep -q '$GEMINI_API_KEY' '$T/ready.json'"
curl -s "http://127.0.0.1:$MPORT/metrics" >"$T/metrics.txt"
check "/metrics counts the failed Vault reads" grep -qE '^warden_secret_fetches_total\{scheme="vault",result="error"\} [1-9]' "$T/metrics.txt"

# Vault answers again: the same request succeeds (a failure is held 1 s before a use retries)
check "Vault's fault is cleared" test "$(vctl reset '{}')" = 200
sleep 1.2
read -r CCODE CMS < <(post claude-opus-4-5 "$T/c.out")
check "once Vault answers, the Vault-keyed request succeeds (HTTP $CCODE in ${CMS} ms)" test "$CCODE" = 200

wd_stop_warden

# secrets.prefetch: true: a vault key is read at start, before any request needs it (the default waits for its
# first use, as the start above showed: the hung Vault was asked only when a request came)
check "a second secret is planted" test "$(vctl secret "{\"path\":\"warden/pre\",\"data\":{\"k\":\"$GEMINI_API_KEY\"}}")" = 200
check "Vault's counters are reset" test "$(vctl reset '{}')" = 200
VPATH=pre PREFETCH=true write_config
wd_start_warden "$T/warden.yaml"
for i in $(seq 1 50); do
  curl -s --cacert "$T/ca.pem" "$V/_fake/stats" >"$T/vstats.json"
  grep -q 'secret/data/warden/pre' "$T/vstats.json" && break
  sleep 0.1
done
check "with prefetch, the key was read from Vault at start, before any request" grep -q '"/v1/secret/data/warden/pre"' "$T/vstats.json"
for i in $(seq 1 50); do
  curl -s -o "$T/ready2.json" "http://127.0.0.1:$PORT/readyz"
  grep -q '"state":"cached"' "$T/ready2.json" && break
  sleep 0.1
done
check "... and /readyz shows it cached" grep -q '"ref":"vault://secret/warden/pre#k","state":"cached"' "$T/ready2.json"
read -r PCODE PMS < <(post claude-opus-4-5 "$T/p.out")
check "the first request finds it cached (HTTP $PCODE in ${PMS} ms)" test "$PCODE" = 200
wd_stop_warden
wd_finish
