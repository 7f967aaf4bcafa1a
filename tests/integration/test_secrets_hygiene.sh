#!/usr/bin/env bash
# Issue 17's hygiene test: one Warden with a gemini provider keyed from each backend (vault://, aws-sm://, gcp-sm://,
# azure-kv://, all four fakes over TLS), audit, traces, metrics and the access log on; it runs every path that
# could leak a value or a backend credential, then greps every output channel for each of them (raw, JSON-escaped,
# percent-encoded, hex and base64 at any alignment). Usage: bash tests/integration/test_secrets_hygiene.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/pg.sh"
source "$WD_ROOT/tests/cloud/test_ca.sh"
T="$WD_TMP"
T0=$(date +%s)
wd_test_ca "$T"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN \
  AWS_REGION AWS_DEFAULT_REGION AWS_SHARED_CREDENTIALS_FILE AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
  AWS_CONTAINER_CREDENTIALS_FULL_URI GOOGLE_APPLICATION_CREDENTIALS GCE_METADATA_HOST AZURE_CLIENT_ID \
  AZURE_TENANT_ID AZURE_FEDERATED_TOKEN_FILE VAULT_ADDR VAULT_TOKEN OTEL_EXPORTER_OTLP_ENDPOINT \
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_HEADERS OTEL_TRACES_SAMPLER_ARG

# ---- the planted values: '/' and '+' so that JSON (json-c writes "\/"), URL and base64 spellings differ ------
rnd() { od -An -N"${1:-8}" -tx1 /dev/urandom | tr -d ' \n'; }
val() { echo "gk-$1-$(rnd 8)/$(rnd 4)+$(rnd 6)"; }
V1=$(val vault-one) V1B=$(val vault-rot) V2=$(val vault-spare)
A1=$(val aws-one) A1B=$(val aws-rot) A2=$(val aws-spare) AP=$(val aws-plain)
G1=$(val gcp-one) G1B=$(val gcp-rot) G2=$(val gcp-spare)
Z1=$(val azure-one) Z1B=$(val azure-rot) Z2=$(val azure-spare)
VC=$(val vault-crlf) VCI="hyg-injected-$(rnd 8)" # a value with a line break: refused as a header, never quoted
VTOKEN="hvs.hyg$(rnd 12)"
AKID="AKIAHYGIENE$(rnd 4 | tr a-f A-F | cut -c1-8)"
SKEY="hyg/$(rnd 16)+$(rnd 2)"
CS="hyg~azure.client-secret_$(rnd 12)"
export WARDEN_DEV_KEY="wk-hyg-$(rnd 8)"

RV="vault://secret/warden/gemini#api_key"  RV2="vault://secret/warden/spare#api_key"
RA="aws-sm://prod/gemini"                   RA2="aws-sm://prod/spare"
RG="gcp-sm://projects/warden-test/secrets/gemini-key" RG2="gcp-sm://projects/warden-test/secrets/spare-key"
RZ="azure-kv://kv-test/gemini-key"          RZ2="azure-kv://kv-test/spare-key"
# three references that read a planted value Warden cannot use (no such field, a SecretString that is not JSON,
# a line break): their errors must not quote it
RTV="vault://secret/warden/gemini#nope"     RTA="aws-sm://prod/plain#api_key"
RTC="vault://secret/warden/crlf#api_key"
MAIN=(pv pa pg pz) SPARE=(sv sa sg sz)
declare -A REF=([pv]=$RV [pa]=$RA [pg]=$RG [pz]=$RZ [sv]=$RV2 [sa]=$RA2 [sg]=$RG2 [sz]=$RZ2 [tv]=$RTV [ta]=$RTA [tc]=$RTC)
declare -A CUR=([pv]=$V1 [pa]=$A1 [pg]=$G1 [pz]=$Z1 [sv]=$V2 [sa]=$A2 [sg]=$G2 [sz]=$Z2)
declare -A FIRST=([pv]=$V1 [pa]=$A1 [pg]=$G1 [pz]=$Z1)

# ---- the fakes ----------------------------------------------------------------------------------------------
cat >"$T/vault.json" <<JSON
{"secrets": [{"mount": "secret", "path": "warden/gemini", "data": {"api_key": "$V1"}},
             {"mount": "secret", "path": "warden/spare", "data": {"api_key": "$V2"}},
             {"mount": "secret", "path": "warden/crlf", "data": {"api_key": "$VC\r\nx-injected: $VCI"}}],
 "tokens": [{"id": "$VTOKEN", "ttl": 3600, "renewable": true}]}
JSON
wd_start_server VPORT node "$WD_ROOT/tests/fakes/fake_vault.mjs" --port 0 --tls-cert "$T/cert.pem" \
  --tls-key "$T/key.pem" --config "$T/vault.json"
wd_start_server APORT node "$WD_ROOT/tests/fakes/fake_aws.mjs" --port 0 --imds-port 0 --tls-cert "$T/cert.pem" \
  --tls-key "$T/key.pem" --access-key-id "$AKID" --secret-access-key "$SKEY"
wd_start_server GPORT node "$WD_ROOT/tests/fakes/fake_gcp.mjs" --port 0 --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
wd_start_server ZPORT node "$WD_ROOT/tests/fakes/fake_azure.mjs" --port 0 --tls-cert "$T/cert.pem" \
  --tls-key "$T/key.pem" --client-secret "$CS"
mkdir -p "$T/otlp"
wd_start_server OPORT node "$WD_ROOT/tests/fakes/fake_otlp.mjs" --port 0 --dir "$T/otlp"
V="https://127.0.0.1:$VPORT" AW="https://127.0.0.1:$APORT" GC="https://127.0.0.1:$GPORT" AZ="https://127.0.0.1:$ZPORT"
tc() { curl -sS --max-time 5 --cacert "$T/ca.pem" "$@"; }
# ctl BASE PATH JSON: a control call to a TLS fake
ctl() { tc -o /dev/null -X POST -H 'content-type: application/json' --data-binary "$3" "$1/_fake/$2"; }
ctl "$AW" secret "{\"name\":\"prod/gemini\",\"value\":\"$A1\"}"
ctl "$AW" secret "{\"name\":\"prod/spare\",\"value\":\"$A2\"}"
ctl "$AW" secret "{\"name\":\"prod/plain\",\"value\":\"$AP\"}"
ctl "$GC" secret "{\"secret\":\"gemini-key\",\"value\":\"$G1\"}"
ctl "$GC" secret "{\"secret\":\"spare-key\",\"value\":\"$G2\"}"
ctl "$AZ" secret "{\"name\":\"gemini-key\",\"value\":\"$Z1\"}"
ctl "$AZ" secret "{\"name\":\"spare-key\",\"value\":\"$Z2\"}"
tc "$GC/_fake/service_account" >"$T/sa.json"
AZSTATE=$(tc "$AZ/_fake/state")
TENANT=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tenant"])' "$AZSTATE")
APP_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$AZSTATE")

wd_start_fake --key unused-at-start
gem_keys() { # gem_keys KEY...: the keys fake_gemini accepts from now on
  local j
  j=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")
  curl -sS --max-time 5 -o /dev/null -X POST "$FAKE_URL/_fake/script" -d "{\"api_keys\":$j}"
}
accept_current() { local k; gem_keys $(for k in "${!CUR[@]}"; do echo "${CUR[$k]}"; done); }
accept_current

# ---- PostgreSQL for the audit trail ---------------------------------------------------------------------------
wd_pg_start
wd_pg_setup_db

# ---- Warden -----------------------------------------------------------------------------------------------------
SPOOL="$T/spool"
MPORT=$(wd_free_port)
CFG="$T/warden.yaml"
providers_yaml() {
  local p
  for p in pv pa pg pz sv sa sg sz tv ta tc; do
    printf '  %s:\n    type: gemini\n    base_url: %s\n    keys:\n      - secret: "%s"\n' "$p" "$FAKE_URL" "${REF[$p]}"
  done
}
cat >"$CFG" <<YAML
listen: 127.0.0.1:$(wd_free_port)
workers: 2
limits:
  drain_timeout: 5s
providers:
$(providers_yaml)
models:
  tiers:
    sonnet: pv/gemini-2.5-flash
  aliases:
$(for p in pv pa pg pz sv sa sg sz tv ta tc; do echo "    $p: $p/gemini-2.5-flash"; done)
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
audit:
  database: $WD_DB_ADMIN_URL
  content: hash
  spool: $SPOOL
  batch_wait: 5ms
telemetry:
  otlp:
    endpoint: http://127.0.0.1:$OPORT
    protocol: http/json
    sampling_ratio: 1.0
  metrics:
    listen: 127.0.0.1:$MPORT
  logs:
    access: true
secrets:
  stale_max: 10m
  vault:
    address: $V
    tls_ca: $T/ca.pem
    token: env://HYG_VAULT_TOKEN
    ttl: 30s
    timeout: 3s
  aws:
    region: us-east-1
    credentials: env
    endpoint: $AW
    tls_ca: $T/ca.pem
    ttl: 30s
    timeout: 3s
  gcp:
    credentials: key
    credentials_file: $T/sa.json
    token_endpoint: $GC/token
    endpoint: $GC
    tls_ca: $T/ca.pem
    ttl: 30s
    timeout: 3s
  azure:
    credentials: client_secret
    tenant_id: $TENANT
    client_id: $APP_ID
    client_secret: env://HYG_AZ_CS
    authority_host: $AZ
    vault_url: $AZ
    tls_ca: $T/ca.pem
    ttl: 30s
    timeout: 3s
YAML
WD_WARDEN_ENV=(HYG_VAULT_TOKEN="$VTOKEN" AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SKEY" HYG_AZ_CS="$CS")
wd_start_warden "$CFG"
[ -n "$WARDEN_METRICS_URL" ] || WARDEN_METRICS_URL="http://127.0.0.1:$MPORT"

# ---- what every call leaves: answers (body and headers), /readyz, /metrics, and what reached fake_gemini -------
ANS="$T/ch/answers" HDRS="$T/ch/headers" RDY="$T/ch/readyz" MET="$T/ch/metrics"
mkdir -p "$ANS" "$HDRS" "$RDY" "$MET"
SEEN="$T/gemini_seen_keys" TOKS="$T/issued_tokens"
: >"$SEEN"
: >"$TOKS"
N=0
# call ALIAS [stream|count]: one request to Warden's Anthropic API -> $CODE, $BODY
call() {
  N=$((N + 1))
  local url="$WARDEN_URL/anthropic/v1/messages" stream=false
  [ "${2:-}" = count ] && url="$url/count_tokens"
  [ "${2:-}" = stream ] && stream=true
  local body="{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hygiene $N\"}]}"
  [ "${2:-}" = count ] || body="{\"model\":\"$1\",\"max_tokens\":64,\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"hygiene $N\"}]}"
  BODY="$ANS/$N.$1"
  CODE=$(curl -sS -o "$BODY" -D "$HDRS/$N.$1" -w '%{http_code}' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' --data-binary "$body" "$url" 2>/dev/null) ||
    CODE=000
}
RN=0
readyz() { RN=$((RN + 1)); curl -sS --max-time 5 -D "$HDRS/readyz.$RN" -o "$RDY/$RN" "$WARDEN_URL/readyz" || true; R="$RDY/$RN"; }
metrics() { RN=$((RN + 1)); curl -sS --max-time 5 -D "$HDRS/metrics.$RN" -o "$MET/$RN" "$WARDEN_METRICS_URL/metrics" || true; M="$MET/$RN"; }
# state FILE REF: the state /readyz gives REF
state() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(next((s["state"] for s in d.get("secrets",[]) if s["ref"]==sys.argv[2]), "absent"))' "$1" "$2" 2>/dev/null || echo unreadable
}
# harvest: the keys fake_gemini saw, and the bearer tokens GCP and Azure were sent (what their fakes issued)
harvest() {
  curl -sS --max-time 5 "$FAKE_URL/_fake/requests" |
    python3 -c 'import json,sys; [print(r["headers"].get("x-goog-api-key","")) for r in json.load(sys.stdin)]' >>"$SEEN"
  { tc "$GC/_fake/requests"; echo; tc "$AZ/_fake/requests"; } | python3 -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    for r in json.loads(line):
        a = (r.get("headers") or {}).get("authorization", "")
        if a.lower().startswith("bearer "):
            print(a[7:])' >>"$TOKS"
}
# last_key: the key of fake_gemini's latest request
last_key() { curl -sS --max-time 5 "$FAKE_URL/_fake/requests" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[-1]["headers"].get("x-goog-api-key","") if r else "")'; }
until_true() {
  local end=$(($(date +%s%N) + $1 * 1000000000))
  shift
  while [ "$(date +%s%N)" -lt "$end" ]; do "$@" && return 0; sleep 0.2; done
  return 1
}
saw() { grep -qxF -- "$1" "$SEEN"; }

# ==== 1. lazy: nothing resolved at start =========================================================================
readyz
lazy=0
for p in "${MAIN[@]}" "${SPARE[@]}"; do [ "$(state "$R" "${REF[$p]}")" = unused ] && lazy=$((lazy + 1)); done
check "start: /readyz lists the 8 references unused ($lazy/8)" test "$lazy" = 8

# ==== 2. first use waits: each backend's first read is slowed, a plain and a streamed call per provider ========
ctl "$V" fail '{"count":1,"delay_ms":500,"path":"/v1/secret"}'
ctl "$AW" fault '{"op":"GetSecretValue","delay_ms":500}'
ctl "$GC" script '{"faults":[{"delay_ms":500,"times":1}]}'
ctl "$AZ" script '{"faults":[{"target":"secret","delay_ms":500,"times":1}]}'
pids=()
for p in "${MAIN[@]}"; do
  for mode in plain stream; do
    N=$((N + 1))
    (call "$p" "$mode"; echo "$CODE" >"$T/first.$p.$mode") &
    pids+=($!)
  done
done
sleep 0.2
readyz # while they wait
for pid in "${pids[@]}"; do wait "$pid" || true; done
N=$((N + 1))
ok8=$(cat "$T"/first.*.* | grep -c '^200$' || true)
check "first use: 8 waiting calls (plain and streamed, 4 backends) all 200 ($ok8/8)" test "$ok8" = 8
waited=$(grep '"msg":"access"' "$WARDEN_LOG" | head -8 | python3 -c 'import json,sys; print(sum(1 for l in sys.stdin if json.loads(l)["duration_ms"] >= 300))')
check "first use: the 8 calls waited for the slowed first reads (>= 300 ms: $waited/8)" test "$waited" = 8
for p in "${MAIN[@]}"; do call "$p" count; done
harvest
for p in "${MAIN[@]}"; do check "first use: fake_gemini got $p's planted value from ${REF[$p]%%:*}" saw "${CUR[$p]}"; done
readyz
cached=0
for p in "${MAIN[@]}"; do [ "$(state "$R" "${REF[$p]}")" = cached ] && cached=$((cached + 1)); done
check "first use: /readyz lists the 4 used references cached ($cached/4)" test "$cached" = 4
# the two references whose values cannot be used: a missing field, a #field of a SecretString that is not JSON
for p in tv ta; do
  call "$p"
  check "unusable value ($p): HTTP 503 naming ${REF[$p]} ($CODE)" bash -c '[ "$1" = 503 ] && grep -qF -- "$2" "$3"' _ "$CODE" "${REF[$p]}" "$BODY"
done
before=$(curl -sS --max-time 5 "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
call tc
check "a value with a line break (tc): HTTP 503 naming ${REF[tc]} ($CODE), no request reaches the provider" \
  bash -c '[ "$1" = 503 ] && grep -qF -- "$4" "$5" && [ "$(curl -sS --max-time 5 "$2/_fake/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"requests\"])")" = "$3" ]' \
  _ "$CODE" "$FAKE_URL" "$before" "${REF[tc]}" "$BODY"
check "... and the log says why: its value holds a control character" \
  grep -qF "secret ${REF[tc]}: its value holds a control character" "$WARDEN_LOG"

# ==== 3. rotation in each backend and at the provider: the old cached value is refused, then fetched again =====
sleep 1.1 # past the cache's hold-off, so a refusal has the value fetched again
ctl "$V" secret "{\"mount\":\"secret\",\"path\":\"warden/gemini\",\"data\":{\"api_key\":\"$V1B\"}}"
ctl "$AW" secret "{\"name\":\"prod/gemini\",\"value\":\"$A1B\"}"
ctl "$GC" secret "{\"secret\":\"gemini-key\",\"value\":\"$G1B\"}"
ctl "$AZ" secret "{\"name\":\"gemini-key\",\"value\":\"$Z1B\"}"
CUR[pv]=$V1B CUR[pa]=$A1B CUR[pg]=$G1B CUR[pz]=$Z1B
accept_current
rotated() { call "$1" && [ "$CODE" = 200 ] && [ "$(last_key)" = "${CUR[$1]}" ]; }
for p in "${MAIN[@]}"; do
  check "rotation ($p): the refused old value is replaced by the rotated one, no restart" until_true 6 rotated "$p"
  call "$p" stream
  check "rotation ($p): a streamed call after it is 200 ($CODE)" test "$CODE" = 200
done
harvest
for p in "${MAIN[@]}"; do
  check "refusal ($p): the log says the provider refused ${REF[$p]} and that it is fetched again" \
    grep -qF "provider $p refused its credential (HTTP 400); ${REF[$p]} is fetched again" "$WARDEN_LOG"
  check "refusal ($p): the secret cache fetched it again" \
    grep -qF "secret ${REF[$p]}: the provider refused the cached value; fetching it again" "$WARDEN_LOG"
done

# ==== 4. SIGHUP reload, each backend refusing Warden's own credential once: a new token, the read again =========
ctl "$V" fail '{"count":1,"status":403,"errors":["permission denied"],"path":"/v1/secret/data/warden/gemini"}'
ctl "$AW" fault '{"op":"GetSecretValue","status":400,"type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}'
ctl "$GC" revoke_tokens '{}'
ctl "$AZ" revoke_tokens '{}'
az_tokens0=$(tc "$AZ/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_issued"])')
kill -HUP "$WARDEN_PID"
check "reload: the config is reloaded" wd_wait_for "$WARDEN_LOG" 'config reloaded from'
for p in "${MAIN[@]}"; do
  call "$p"
  check "reload ($p): a call after the reload is 200 with the current value" bash -c '[ "$1" = 200 ] && [ "$2" = "$3" ]' _ "$CODE" "$(last_key)" "${CUR[$p]}"
done
check "credential refused (vault): the token was refused and fetched again" \
  grep -qF 'vault: the token was refused (HTTP 403) reading secret/data/warden/gemini; a new one is fetched' "$WARDEN_LOG"
check "credential refused (aws-sm): the refusal of the environment's keys is logged" \
  grep -qF 'aws-sm: GetSecretValue refused the credentials from' "$WARDEN_LOG"
check "credential refused (gcp-sm): a second access token from the service-account key" \
  test "$(grep -c 'gcp-sm: access token from the service-account key' "$WARDEN_LOG")" -ge 2
check "credential refused (azure-kv): a new Entra token after the revocation" \
  test "$(tc "$AZ/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_issued"])')" -gt "$az_tokens0"
harvest

# ==== 5. every backend down: cached values go stale (a reload asks for them again), unused ones fail ==============
ctl "$V" fail '{"count":100000,"status":503,"errors":["Vault is sealed"]}'
ctl "$AW" fault '{"op":"GetSecretValue","status":500,"sticky":true}'
ctl "$GC" script '{"faults":[{"status":503,"times":-1}]}'
ctl "$AZ" script '{"faults":[{"target":"secret","status":503,"times":-1}]}'
kill -HUP "$WARDEN_PID"
for p in "${MAIN[@]}"; do
  check "outage ($p): the failed refresh of ${REF[$p]} is logged, the previous value served" \
    wd_wait_for "$WARDEN_LOG" "secret ${REF[$p]//./\\.}: refresh failed \(.*the previous value is served"
done
for p in "${MAIN[@]}"; do
  call "$p"
  c1=$CODE
  call "$p" stream
  check "outage ($p): plain and streamed calls served from the stale value ($c1, $CODE)" test "$c1:$CODE" = 200:200
done
for p in "${SPARE[@]}"; do
  call "$p"
  check "outage, nothing cached ($p): HTTP 503 naming ${REF[$p]} ($CODE)" bash -c '[ "$1" = 503 ] && grep -qF -- "$2" "$3"' _ "$CODE" "${REF[$p]}" "$BODY"
  call "$p" stream
  check "outage, nothing cached ($p): a streamed call is 503 too ($CODE)" test "$CODE" = 503
done
readyz
check "outage: /readyz answers 503 (providers without a usable key)" grep -q '^HTTP/1.1 503' "$HDRS/readyz.$RN"
for p in "${MAIN[@]}"; do check "outage: /readyz says ${REF[$p]} stale" test "$(state "$R" "${REF[$p]}")" = stale; done
for p in "${SPARE[@]}"; do check "outage: /readyz says ${REF[$p]} failed" test "$(state "$R" "${REF[$p]}")" = failed; done
metrics
# vault has two: the line-break value (tc) is cached too
for s in vault:2 aws-sm:1 gcp-sm:1 azure-kv:1; do
  check "outage: /metrics warden_secret_stale_references{scheme=\"${s%:*}\"} ${s#*:}" \
    grep -qE "^warden_secret_stale_references\{scheme=\"${s%:*}\"\} ${s#*:}$" "$M"
done

# ==== 6. back up: the unused references resolve, the stale ones are fresh again ====================================
tc -o /dev/null -X POST "$V/_fake/reset"
ctl "$AW" reset '{}'
ctl "$GC" script '{"faults":[]}'
ctl "$AZ" script '{"faults":[]}'
resolved() { call "$1" && [ "$CODE" = 200 ] && [ "$(last_key)" = "${CUR[$1]}" ]; }
for p in "${SPARE[@]}"; do check "recovery ($p): ${REF[$p]} resolves once its backend is back" until_true 10 resolved "$p"; done
harvest
for p in "${MAIN[@]}"; do call "$p"; done
readyz
for p in "${MAIN[@]}" "${SPARE[@]}"; do
  check "recovery: /readyz says ${REF[$p]} cached" until_true 4 eval "readyz; [ \"\$(state \"\$R\" '${REF[$p]}')\" = cached ]"
done
metrics

# ==== 7. the audit database down: records go to the spool; then SIGTERM ==========================================
wd_pg_stop
for p in "${MAIN[@]}" tv; do call "$p"; done
check "audit outage: Warden writes records to the spool" wd_wait_for "$WARDEN_LOG" 'writes records to the spool'
for p in "${MAIN[@]}"; do call "$p" stream; done
harvest
readyz
metrics
sleep 0.5
wd_stop_warden
wd_pg_launch
wd_pg_as "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d warden --data-only -n audit >"$T/ch_audit.sql"

# ==== 8. the provider saw every value: proof they were really resolved ============================================
for p in "${MAIN[@]}"; do
  check "fake_gemini saw $p's first and rotated values" bash -c 'grep -qxF -- "$1" "$3" && grep -qxF -- "$2" "$3"' _ \
    "${FIRST[$p]}" "${CUR[$p]}" "$SEEN"
done
for p in "${SPARE[@]}"; do check "fake_gemini saw $p's value" saw "${CUR[$p]}"; done

# ==== 9. the greps: each channel is first shown to be non-empty and to hold the references ========================
CH_STDERR="$WARDEN_LOG" CH_STDOUT="$WARDEN_LOG.out" CH_AUDIT="$T/ch_audit.sql" CH_SPANS="$T/otlp"
all_refs_in() { # all_refs_in PATH REF...: every REF occurs somewhere under PATH
  local r miss=""
  local path="$1"; shift
  for r in "$@"; do grep -rqaF -- "$r" "$path" || miss="$miss $r"; done
  [ -z "$miss" ] || { echo "  missing:$miss" >&2; return 1; }
}
ALLREFS=("$RV" "$RA" "$RG" "$RZ" "$RV2" "$RA2" "$RG2" "$RZ2")
nonempty() { [ -n "$(find "$1" -type f -size +0 2>/dev/null | head -1)" ]; }
check "channel stderr: non-empty, names all 8 references" bash -c '[ -s "$1" ] && shift && for r; do grep -qF -- "$r" "$0" || exit 1; done' "$CH_STDERR" "$CH_STDERR" "${ALLREFS[@]}"
ncalls=$(find "$ANS" -type f | wc -l)
check "channel stderr: has the access log, one line per call ($ncalls calls)" \
  test "$(grep -c '"msg":"access",.*"path":"/anthropic/v1/messages' "$CH_STDERR" || true)" = "$ncalls"
check "channel answers: non-empty, the 503 bodies name the 4 unused references and the 2 unusable ones" \
  all_refs_in "$ANS" "$RV2" "$RA2" "$RG2" "$RZ2" "$RTV" "$RTA"
check "channel headers: non-empty (200 and 503 status lines)" \
  bash -c 'grep -rqa "^HTTP/1.1 200" "$1" && grep -rqa "^HTTP/1.1 503" "$1"' _ "$HDRS"
check "channel /readyz: non-empty, names all 8 references and the 2 unusable ones" all_refs_in "$RDY" "${ALLREFS[@]}" "$RTV" "$RTA"
check "channel /metrics: non-empty, has the secret series of the 4 schemes" \
  bash -c 'for s in vault aws-sm gcp-sm azure-kv; do grep -rqF "warden_secret_fetches_total{scheme=\"$s\"" "$0" || exit 1; done' "$MET"
check "channel audit rows: non-empty, a call record of each of the 11 providers" \
  bash -c 'for p in pv pa pg pz sv sa sg sz tv ta tc; do grep -qE "	$p	" "$0" || grep -qF "\"$p\"" "$0" || exit 1; done' "$CH_AUDIT"
check "channel spans: non-empty, a span of each of the 11 providers' calls" \
  bash -c 'nf=$(find "$0" -type f -size +0 | wc -l); [ "$nf" -gt 0 ] && for p in pv pa pg pz sv sa sg sz tv ta tc; do grep -rqF "\"$p/gemini-2.5-flash\"" "$0" || grep -rqF "\"stringValue\":\"$p\"" "$0" || exit 1; done' "$CH_SPANS"
check "channel spool: non-empty (the records of the audit outage)" nonempty "$SPOOL"
# stdout is checked too, but Warden writes nothing there: an empty file is its expected state
check "channel stdout: exists (Warden logs to stderr; stdout is $(wc -c <"$CH_STDOUT") bytes)" test -f "$CH_STDOUT"

# ---- the needles: every planted value and credential, and the shapes of the tokens the fakes issue ------------
python3 - "$T/needles.json" "$TOKS" <<PY
import json, sys
n = []
def add(kind, label, v):
    if v: n.append({"kind": kind, "label": label, "value": v})
for l, v in [("V1", "$V1"), ("V1B", "$V1B"), ("V2", "$V2"), ("VC (before its line break)", "$VC"),
             ("VC's injected header line", "x-injected: $VCI"), ("VC's injected value", "$VCI")]: add("vault-values", l, v)
for l, v in [("A1", "$A1"), ("A1B", "$A1B"), ("A2", "$A2"), ("AP", "$AP")]: add("aws-values", l, v)
for l, v in [("G1", "$G1"), ("G1B", "$G1B"), ("G2", "$G2")]: add("gcp-values", l, v)
for l, v in [("Z1", "$Z1"), ("Z1B", "$Z1B"), ("Z2", "$Z2")]: add("azure-values", l, v)
add("vault-credentials", "vault token", "$VTOKEN")
add("aws-credentials", "secret access key", "$SKEY")
add("azure-credentials", "client secret", "$CS")
key = json.load(open("$T/sa.json"))["private_key"]
body = [l for l in key.splitlines() if l and not l.startswith("-----")]
add("gcp-credentials", "private key (whole body)", "".join(body))
for i, l in enumerate(body):
    add("gcp-credentials", "private key line %d" % (i + 1), l)
seen = set()
for t in open(sys.argv[2]).read().split():
    if t in seen: continue
    seen.add(t)
    if t.startswith("ya29."):
        add("gcp-credentials", "issued access token", t)
    elif t.count(".") == 2:
        add("azure-credentials", "issued access token", t)
        add("azure-credentials", "issued access token's signature", t.split(".")[2])
pats = [("vault-credentials", "any Vault token (hvs.)", r"hvs\.[A-Za-z0-9_-]{8,}"),
        ("aws-credentials", "any STS session token (FwoGZXIvYXdzE)", r"FwoGZXIvYXdzE"),
        ("aws-credentials", "any temporary access key id (ASIA...)", r"ASIA[A-Z0-9]{16}"),
        ("gcp-credentials", "any Google access token (ya29.)", r"ya29\.[A-Za-z0-9_-]{8,}"),
        ("gcp-credentials", "any PEM private key", r"PRIVATE KEY-----"),
        ("azure-credentials", "any JWT (eyJ...eyJ...)", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")]
json.dump({"needles": n, "patterns": [{"kind": k, "label": l, "regex": r} for k, l, r in pats]}, open(sys.argv[1], "w"))
PY
ntok=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for x in d["needles"] if x["label"].startswith("issued access token") and "signature" not in x["label"]))' "$T/needles.json")
check "the tokens GCP and Azure issued to Warden were collected as needles too ($ntok)" test "$ntok" -ge 2

cat >"$T/scan.py" <<'PY'
# scan.py NEEDLES CHANNEL PATH...: for each kind, which needles (in any spelling) and patterns occur in the
# channel's files, with the file, the line number and the line (the match masked); one TSV line per kind.
import base64, binascii, json, os, re, sys, urllib.parse

def spellings(v):
    b = v.encode()
    out = {"raw": b}
    j = json.dumps(v)[1:-1]
    out["json"] = j.encode()
    out["json \\/"] = j.replace("/", "\\/").encode()
    out["percent"] = urllib.parse.quote(v, safe="").encode()
    out["percent /"] = urllib.parse.quote(v, safe="/").encode()
    out["form"] = urllib.parse.quote_plus(v).encode()
    out["hex"] = binascii.hexlify(b)
    out["HEX"] = binascii.hexlify(b).upper()
    for k in range(3):  # base64 at each alignment: only the groups that hold value bytes alone
        e = base64.b64encode(b"\0" * k + b)
        g0, g1 = (k + 2) // 3, (k + len(b)) // 3
        frag = e[4 * g0:4 * g1]
        if len(frag) >= 12:
            out["base64@%d" % k] = frag
            out["base64url@%d" % k] = frag.replace(b"+", b"-").replace(b"/", b"_")
    seen, res = set(), []
    for name, s in out.items():
        if len(s) >= 8 and s not in seen:
            seen.add(s)
            res.append((name, s))
    return res

def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for d, _, fs in os.walk(p):
                for f in sorted(fs):
                    yield os.path.join(d, f)
        elif os.path.isfile(p):
            yield p

cfg = json.load(open(sys.argv[1]))
channel, paths = sys.argv[2], sys.argv[3:]
kinds = sorted({x["kind"] for x in cfg["needles"]} | {x["kind"] for x in cfg["patterns"]})
checks = [(x["kind"], x["label"], n, s, None) for x in cfg["needles"] for n, s in spellings(x["value"])]
checks += [(x["kind"], x["label"], "pattern", None, re.compile(x["regex"].encode())) for x in cfg["patterns"]]
hits = {k: [] for k in kinds}
for f in files(paths):
    data = open(f, "rb").read()
    for kind, label, spell, s, rx in checks:
        if s is not None:
            i = data.find(s)
            if i < 0:
                continue
            end = i + len(s)
        else:
            m = rx.search(data)
            if not m:
                continue
            i, end = m.start(), m.end()
        ln = data.count(b"\n", 0, i) + 1
        a, z = data.rfind(b"\n", 0, i) + 1, data.find(b"\n", end)
        z = len(data) if z < 0 else z
        line = (data[max(a, i - 160):i] + b"<" + label.encode() + b">" + data[end:min(z, end + 160)])
        line = line.decode("utf-8", "replace").replace("\t", " ")
        hits[kind].append("%s [%s] in %s:%d: %s" % (label, spell, os.path.relpath(f, os.environ.get("HYG_BASE", "/")), ln, line))
for k in kinds:
    print("%s\t%s\t%d\t%s" % (channel, k, len(hits[k]), " || ".join(hits[k][:4])))
PY
export HYG_BASE="$T"
scan() { python3 "$T/scan.py" "$T/needles.json" "$@"; }
# the scanner itself, on a file holding one needle of each kind in another spelling: it must find all 8
mkdir -p "$T/control"
python3 - "$T/needles.json" "$T/control/leaks" <<'PY'
import base64, binascii, json, sys, urllib.parse
d = json.load(open(sys.argv[1]))
first = {}
for x in d["needles"]:
    first.setdefault((x["kind"], x["label"].split(" ")[0]), x["value"])
v = lambda k, l: first[(k, l)].encode()
lines = [
    b'{"msg":"' + json.dumps(v("vault-values", "V1").decode()).strip('"').replace("/", "\\/").encode() + b'"}',
    b"blob " + base64.b64encode(b"xy" + v("aws-values", "A1B") + b"z"),
    b"dump " + binascii.hexlify(v("gcp-values", "G2")),
    b"GET /x?key=" + urllib.parse.quote(v("azure-values", "Z1"), safe="").encode(),
    b"tok " + base64.urlsafe_b64encode(b"q" + v("vault-credentials", "vault")),
    b'"' + json.dumps(v("aws-credentials", "secret").decode()).strip('"').replace("/", "\\/").encode() + b'"',
    b"auth " + base64.b64encode(b"ab" + v("gcp-credentials", "private")),
    b"cs=" + base64.b64encode(v("azure-credentials", "client")),
]
open(sys.argv[2], "wb").write(b"\n".join(lines) + b"\n")
PY
scan control "$T/control" >"$T/control.tsv"
found=$(awk -F'\t' '$3 > 0' "$T/control.tsv" | wc -l)
check "the scanner finds each of the 8 kinds planted in other spellings in a control file ($found/8)" test "$found" = 8
{
  scan stderr "$CH_STDERR"
  scan stdout "$CH_STDOUT"
  scan answers "$ANS"
  scan headers "$HDRS"
  scan readyz "$RDY"
  scan metrics "$MET"
  scan audit "$CH_AUDIT"
  scan spans "$CH_SPANS"
  scan spool "$SPOOL"
} >"$T/scan.tsv"
check "the scan covered 9 channels x 8 kinds" test "$(wc -l <"$T/scan.tsv")" = 72
while IFS=$'\t' read -r ch kind nh what; do
  if [ "$nh" = 0 ]; then
    ok "no $kind in $ch"
  else
    fail "no $kind in $ch: $nh found: $what"
  fi
done <"$T/scan.tsv"

el=$(($(date +%s) - T0))
check "the whole test took ${el} s (at most 90)" test "$el" -le 90
wd_finish
