#!/usr/bin/env bash
# vault:// provider keys through Warden against tests/fakes/fake_vault.mjs over TLS (test CA): token auth with
# KV v2 (lazy, one fetch for 20 concurrent first uses, rotation without restart, outage with and without a
# cached value, /readyz, /metrics; an 8 s token renewed), AppRole in a namespace with KV v1 (the secret's lease
# honoured, the token renewed, a new login after it expired), Kubernetes auth at another mount; the planted
# values appear in no output channel.
# Usage: bash tests/integration/test_secrets_vault.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
T="$WD_TMP"
rnd() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
KEY1="gk-vault-one-$(rnd)"
KEY2="gk-vault-two-$(rnd)"
KEY3="gk-vault-ns-$(rnd)"
KEY4="gk-vault-k8s-$(rnd)"
KEY5="gk-vault-other-$(rnd)"
VTOKEN="hvs.warden-$(rnd)"
VTOKEN2="hvs.short-$(rnd)"
SECRET_ID="sid-$(rnd)"
export WARDEN_DEV_KEY="wk-client-$(rnd)"
ALL_SECRETS=("$KEY1" "$KEY2" "$KEY3" "$KEY4" "$KEY5" "$VTOKEN" "$VTOKEN2" "$SECRET_ID")

# --- test CA, Vault's certificate, the service-account signing key -------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=warden-vault-test-ca \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -extfile "$T/ext.cnf" -out "$T/srv.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/sa.key" 2>/dev/null
node -e '
const crypto = require("crypto"), fs = require("fs");
const jwk = crypto.createPublicKey(fs.readFileSync(process.argv[1], "utf8")).export({ format: "jwk" });
fs.writeFileSync(process.argv[2], JSON.stringify({ keys: [{ ...jwk, kid: "sa-1", alg: "RS256", use: "sig" }] }));
' "$T/sa.key" "$T/jwks.json"

cat >"$T/setup.json" <<JSON
{
  "namespaces": ["team-a"],
  "mounts": [{"namespace": "team-a", "path": "kv", "version": 1}],
  "auth_mounts": [{"path": "k8s-prod", "type": "kubernetes"}],
  "secrets": [
    {"mount": "secret", "path": "warden/gemini", "data": {"api_key": "$KEY1"}},
    {"mount": "secret", "path": "warden/other", "data": {"api_key": "$KEY5", "note": "two keys: #api_key picks one"}},
    {"mount": "secret", "path": "warden/k8s", "data": {"api_key": "$KEY4"}},
    {"namespace": "team-a", "mount": "kv", "path": "warden/gemini", "data": {"api_key": "$KEY3", "ttl": "2s"}}
  ],
  "tokens": [{"id": "$VTOKEN", "ttl": 3600, "renewable": true}],
  "approle": [{"namespace": "team-a", "role_name": "warden", "role_id": "role-warden", "secret_id": "$SECRET_ID",
               "token_ttl": 8}],
  "kubernetes": {"issuer": "https://kubernetes.default.svc.cluster.local",
                 "roles": [{"name": "warden", "bound_service_account_names": ["warden"],
                            "bound_service_account_namespaces": ["ai"], "token_ttl": 300}]}
}
JSON
wd_start_server VPORT node "$WD_ROOT/tests/fakes/fake_vault.mjs" --port 0 --tls-cert "$T/srv.pem" \
  --tls-key "$T/srv.key" --config "$T/setup.json" --k8s-jwks "$T/jwks.json"
V="https://127.0.0.1:$VPORT"
VC=(curl -sS --max-time 5 --cacert "$T/ca.pem")
vctl() { "${VC[@]}" -o /dev/null -X POST "$V/_fake/$1" -d "$2"; }
# vstat PY-EXPR over s (the fake's stats)
vstat() { "${VC[@]}" "$V/_fake/stats" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
kvpath() { vstat "s['paths'].get('$1', 0)"; }

wd_start_fake --key "$KEY1"
gctl() { curl -sS --max-time 5 -o /dev/null -X POST "$FAKE_URL/_fake/$1" -d "$2"; }
# the x-goog-api-key of the fake provider's last request
seen_key() {
  curl -sS --max-time 5 "$FAKE_URL/_fake/requests" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[-1]["headers"].get("x-goog-api-key","") if r else "")'
}

# mkcfg REF SECRETS_YAML -> a config whose gemini provider uses REF and "other" vault://secret/warden/other#api_key
mkcfg() {
  local f="$T/warden.$RANDOM.yaml"
  cat >"$f" <<YAML
listen: 127.0.0.1:$(wd_free_port)
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: $1
  other:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: vault://secret/warden/other#api_key
models:
  tiers:
    opus: gemini/gemini-2.5-pro
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite
  aliases:
    other: other/gemini-2.5-flash
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
secrets:
  vault:
    address: $V
    tls_ca: $T/ca.pem
$2
$(wd_metrics_yaml)
YAML
  echo "$f"
}

BODIES="$T/bodies"
: >"$BODIES"
OUT="$T/out"
CODE=000
# post [MODEL]: one Anthropic request -> $CODE, $OUT; every body also goes to $BODIES
post() {
  CODE=$(curl -sS -o "$OUT" -w '%{http_code}' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    -d "{\"model\":\"${1:-claude-sonnet-4-5}\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
    "$WARDEN_URL/anthropic/v1/messages" 2>/dev/null) || CODE=000
  cat "$OUT" >>"$BODIES"
  echo >>"$BODIES"
}
status_is() {
  [ "$CODE" = "$1" ] && return 0
  echo "  HTTP $CODE, want $1: $(head -c 300 "$OUT")" >&2
  return 1
}
readyz() { curl -sS --max-time 5 "$WARDEN_URL/readyz" | tee -a "$BODIES"; }
metrics() { curl -sS --max-time 5 "$WARDEN_METRICS_URL/metrics" | tee -a "$BODIES"; }
# ref_state READYZ_JSON REF -> the state /readyz gives REF
ref_state() {
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(next((s["state"] for s in d["secrets"] if s["ref"]==sys.argv[2]), "absent"))' "$1" "$2"
}
# until_true SECONDS CMD...: polls CMD every 0.2 s
until_true() {
  local end=$(($(date +%s) + $1))
  shift
  while [ "$(date +%s)" -le "$end" ]; do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}
no_leak() { # no_leak FILE...: none of the planted values is in these files
  local s
  for s in "${ALL_SECRETS[@]}"; do
    if grep -qF -e "$s" "$@"; then echo "  a planted value is in $*" >&2; return 1; fi
  done
}

REF1="vault://secret/warden/gemini#api_key"
REF5="vault://secret/warden/other#api_key"

# ==== 1. auth token, KV v2 ===================================================================================
CFG=$(mkcfg "$REF1" "    token: env://WARDEN_VAULT_TOKEN
    ttl: 2s")
vctl reset ''
WD_WARDEN_ENV=(WARDEN_VAULT_TOKEN="$VTOKEN")
wd_start_warden "$CFG"
R=$(readyz)
check "token: /readyz lists $REF1 as unused before any request" test "$(ref_state "$R" "$REF1")" = unused
check "token: lazy, nothing was asked of Vault at start" test "$(vstat "s['total']")" = 0

pids=()
for i in $(seq 1 20); do
  curl -sS -o "$T/par.$i" -w '%{http_code}\n' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    -d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}' \
    "$WARDEN_URL/anthropic/v1/messages" >"$T/par.$i.code" 2>/dev/null &
  pids+=($!)
done
wait "${pids[@]}" || true
cat "$T"/par.* >>"$BODIES"
n200=$(cat "$T"/par.*.code | grep -c '^200$' || true)
check "token: 20 concurrent first requests all succeed ($n200)" test "$n200" = 20
check "token: they shared ONE read of the secret" test "$(kvpath /v1/secret/data/warden/gemini)" = 1
check "token: the token was checked once (lookup-self)" test "$(kvpath /v1/auth/token/lookup-self)" = 1
check "token: the provider saw exactly the planted key" test "$(seen_key)" = "$KEY1"
R=$(readyz)
check "token: /readyz lists $REF1 as cached" test "$(ref_state "$R" "$REF1")" = cached

# rotation in Vault and at the provider, no restart
vctl secret "{\"mount\":\"secret\",\"path\":\"warden/gemini\",\"data\":{\"api_key\":\"$KEY2\"}}"
gctl script "{\"api_keys\":[\"$KEY2\"]}"
rotated() { post && [ "$CODE" = 200 ] && [ "$(seen_key)" = "$KEY2" ]; }
check "rotation: within a few seconds requests succeed with the new key" until_true 8 rotated

# outage with a cached value: traffic continues, a log line, the stale gauge and the error counter
vctl fail '{"status":503,"count":100000,"errors":["Vault is sealed"]}'
sleep 3
post
check "outage: a request with the cached key still succeeds" status_is 200
check "outage: Warden logs the failed refresh with Vault's status and error" \
  wd_wait_for "$WARDEN_LOG" 'refresh failed \(vault: read secret/data/warden/gemini: HTTP 503 Vault is sealed\)'
M=$(metrics)
check "outage: warden_secret_stale_references{scheme=\"vault\"} 1" grep -qE '^warden_secret_stale_references\{scheme="vault"\} 1$' <<<"$M"
check "outage: warden_secret_fetches_total{scheme=\"vault\",result=\"error\"} > 0" \
  grep -qE '^warden_secret_fetches_total\{scheme="vault",result="error"\} [1-9]' <<<"$M"
# outage with nothing cached: a reference never used before
post other
check "outage, nothing cached: HTTP 503" status_is 503
check "outage, nothing cached: the body names $REF5" grep -qF "$REF5" "$OUT"
R=$(readyz)
check "outage: /readyz says $REF1 stale" test "$(ref_state "$R" "$REF1")" = stale
check "outage: /readyz says $REF5 failed" test "$(ref_state "$R" "$REF5")" = failed
check "outage: /readyz gives the reason of $REF5 (Vault's error)" \
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if any(s["ref"]==sys.argv[2] and "HTTP 503 Vault is sealed" in s.get("reason","") for s in d["secrets"]) else 1)' "$R" "$REF5"
vctl reset ''
wd_stop_warden
check "token: no planted value in Warden's log, /metrics, /readyz or any answer" \
  no_leak "$WARDEN_LOG" "$WARDEN_LOG.out" "$BODIES"

# ==== 1b. auth token with an 8 s renewable token: renew-self, no new lookup ==================================
vctl token "{\"id\":\"$VTOKEN2\",\"ttl\":8,\"renewable\":true}"
CFG=$(mkcfg "$REF1" "    token: env://WARDEN_VAULT_TOKEN
    ttl: 2s")
vctl reset ''
WD_WARDEN_ENV=(WARDEN_VAULT_TOKEN="$VTOKEN2")
wd_start_warden "$CFG"
post
check "short token: a request succeeds with the rotated key" status_is 200
check "short token: the provider saw the rotated key" test "$(seen_key)" = "$KEY2"
renewed() { post && [ "$(vstat "s['renewals']")" -ge 1 ]; }
check "short token: renewed through renew-self before it expired" until_true 10 renewed
check "short token: looked up once, never read again" test "$(kvpath /v1/auth/token/lookup-self)" = 1
post
check "short token: requests keep working after the renewal" status_is 200
wd_stop_warden
check "short token: no planted value in Warden's log or any answer" no_leak "$WARDEN_LOG" "$WARDEN_LOG.out" "$BODIES"

# ==== 2. AppRole in namespace team-a, KV v1 with a 2 s lease, an 8 s token ===================================
echo "$SECRET_ID" >"$T/secret_id"
gctl script "{\"api_keys\":[\"$KEY3\"]}"
CFG=$(mkcfg "vault://kv/warden/gemini#api_key" "    namespace: team-a
    kv_version: 1
    auth: approle
    role_id: env://WARDEN_ROLE_ID
    secret_id: file://$T/secret_id")
vctl reset ''
WD_WARDEN_ENV=(WARDEN_ROLE_ID=role-warden)
wd_start_warden "$CFG"
post
check "approle: a request succeeds" status_is 200
check "approle: the provider saw the key of namespace team-a's KV v1 secret" test "$(seen_key)" = "$KEY3"
check "approle: one login" test "$(vstat "s['logins']['approle']")" = 1
# the cache refreshes values in use only: each poll is a request too
reads_grow() { post && [ "$(kvpath /v1/kv/warden/gemini)" -ge 3 ]; }
check "approle: the secret's 2 s lease is honoured (read again and again, secrets.vault.ttl is 5m)" until_true 6 reads_grow
renewed() { post && [ "$(vstat "s['renewals']")" -ge 1 ]; }
check "approle: the 8 s token is renewed before it expires" until_true 10 renewed
check "approle: still one login after the renewal" test "$(vstat "s['logins']['approle']")" = 1
post
check "approle: requests keep working after the renewal" status_is 200
vctl clock '{"advance_s":3600}' # every token the fake issued is dead now
relogged() { post && [ "$(vstat "s['logins']['approle']")" -ge 2 ]; }
check "approle: after the token expired at Vault, Warden logs in again" until_true 6 relogged
fetched_after() { post && [ "$(vstat "s['by_status'].get('200', 0)")" -gt "$1" ]; }
before=$(vstat "s['by_status'].get('200', 0)")
check "approle: reads succeed again with the new token" until_true 4 fetched_after "$before"
post
check "approle: requests keep working" status_is 200
check "approle: Warden logged the refused token and the new login" \
  grep -qE 'token was refused \(HTTP 403\)|a new token is fetched' "$WARDEN_LOG"
wd_stop_warden
check "approle: no planted value in Warden's log or any answer" no_leak "$WARDEN_LOG" "$WARDEN_LOG.out" "$BODIES"

# ==== 3. Kubernetes service account (auth mounted at k8s-prod), KV v2 ====================================================================
FNOW=$("${VC[@]}" "$V/_fake/clock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["now"])')
node -e '
const crypto = require("crypto"), fs = require("fs");
const [key, now] = [process.argv[1], parseInt(process.argv[2], 10)];
const b = o => Buffer.from(JSON.stringify(o)).toString("base64url");
const c = { iss: "https://kubernetes.default.svc.cluster.local", sub: "system:serviceaccount:ai:warden",
  aud: ["vault"], iat: now, exp: now + 600, "kubernetes.io": { namespace: "ai", serviceaccount: { name: "warden", uid: "u-1" } } };
const input = `${b({ alg: "RS256", typ: "JWT", kid: "sa-1" })}.${b(c)}`;
process.stdout.write(`${input}.${crypto.sign("sha256", Buffer.from(input), fs.readFileSync(key, "utf8")).toString("base64url")}`);
' "$T/sa.key" "$FNOW" >"$T/sa.jwt"
gctl script "{\"api_keys\":[\"$KEY4\"]}"
CFG=$(mkcfg "vault://secret/warden/k8s" "    auth: kubernetes
    auth_mount: k8s-prod
    role: warden
    jwt_file: $T/sa.jwt")
vctl reset ''
WD_WARDEN_ENV=()
wd_start_warden "$CFG"
post
check "kubernetes: a request succeeds (a secret with one key, no #field)" status_is 200
check "kubernetes: the provider saw the planted key" test "$(seen_key)" = "$KEY4"
check "kubernetes: one login with the service-account token" test "$(vstat "s['logins']['kubernetes']")" = 1
check "kubernetes: at the configured auth_mount (auth/k8s-prod/login)" test "$(kvpath /v1/auth/k8s-prod/login)" = 1
wd_stop_warden
check "kubernetes: no planted value in Warden's log or any answer" no_leak "$WARDEN_LOG" "$WARDEN_LOG.out" "$BODIES"

wd_finish
