#!/usr/bin/env bash
# Proves tests/fakes/fake_vault.mjs speaks Vault's HTTP API: the official client (Debian's python3-hvac) reads
# the same secrets through it over TLS with a test CA (token, KV v1/v2, AppRole, Kubernetes, a namespace,
# renew-self, permission denied as hvac's exception), and curl checks the exact JSON shapes and the fake's rules
# (TTL expiry on the fake clock, rotation, faults, per-path counts). Warden itself is not started.
source "$(dirname "$0")/../lib.sh" "${1:-}"

# Debian's python3-hvac lives in the system interpreter, which a pyenv or venv python3 on PATH may shadow
HVAC_PY=""
for py in /usr/bin/python3 python3; do
  if "$py" -c 'import hvac' 2>/dev/null; then HVAC_PY="$py"; break; fi
done
if [ -z "$HVAC_PY" ]; then
  echo "python3-hvac is not installed (apt-get install python3-hvac)" >&2
  fail "python3-hvac available"
  wd_finish
  exit 1
fi

T="$WD_TMP"
# --- test CA, a server certificate for 127.0.0.1, and the service-account signing keys -----------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=fake-vault-test-ca \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -extfile "$T/ext.cnf" -out "$T/srv.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/sa.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/other.key" 2>/dev/null

# sign_jwt KEY CLAIMS_JSON [ALG]: a compact JWS, RS256 unless ALG is "none"; exp/iat relative to "now" given as
# "+N"/"-N" strings are filled in from the fake's clock (FAKE_NOW)
cat >"$T/sign_jwt.mjs" <<'JS'
import crypto from 'node:crypto';
import fs from 'node:fs';
const [keyFile, claimsJson, alg = 'RS256', now = String(Math.floor(Date.now() / 1000))] = process.argv.slice(2);
const c = JSON.parse(claimsJson);
for (const k of ['exp', 'iat', 'nbf']) if (typeof c[k] === 'string') c[k] = parseInt(now, 10) + parseInt(c[k], 10);
const b = o => Buffer.from(JSON.stringify(o)).toString('base64url');
const input = `${b({ alg, typ: 'JWT', kid: 'sa-1' })}.${b(c)}`;
const sig = alg === 'none' ? '' : crypto.sign('sha256', Buffer.from(input), fs.readFileSync(keyFile, 'utf8')).toString('base64url');
process.stdout.write(`${input}.${sig}`);
JS
node -e '
const crypto = require("crypto"), fs = require("fs");
const jwk = crypto.createPublicKey(fs.readFileSync(process.argv[1], "utf8")).export({ format: "jwk" });
fs.writeFileSync(process.argv[2], JSON.stringify({ keys: [{ ...jwk, kid: "sa-1", alg: "RS256", use: "sig" }] }));
' "$T/sa.key" "$T/jwks.json"

cat >"$T/setup.json" <<'JSON'
{
  "namespaces": ["team-a"],
  "mounts": [{"path": "kv", "version": 1}, {"namespace": "team-a", "path": "secret", "version": 2}],
  "secrets": [
    {"mount": "secret", "path": "warden/openai", "data": {"api_key": "sk-v2-first"}},
    {"mount": "kv", "path": "warden/legacy", "data": {"api_key": "sk-v1-legacy"}},
    {"namespace": "team-a", "mount": "secret", "path": "warden/openai", "data": {"api_key": "sk-team-a"}}
  ],
  "tokens": [
    {"id": "hvs.narrow", "ttl": 3600, "paths": ["secret/data/other/*"]},
    {"id": "hvs.fixed", "ttl": 3600, "renewable": false}
  ],
  "approle": [
    {"role_name": "warden", "role_id": "role-id-1", "secret_id": "secret-id-1", "token_ttl": 120},
    {"namespace": "team-a", "role_name": "warden", "role_id": "role-id-a", "secret_id": "secret-id-a", "token_ttl": 120}
  ],
  "kubernetes": {
    "issuer": "https://kubernetes.default.svc.cluster.local",
    "roles": [{"name": "warden", "bound_service_account_names": ["warden"], "bound_service_account_namespaces": ["ai"],
               "token_ttl": 300},
              {"name": "aud", "bound_service_account_names": ["*"], "bound_service_account_namespaces": ["ai"],
               "audience": "vault"}]
  }
}
JSON

wd_start_server VPORT node "$WD_ROOT/tests/fakes/fake_vault.mjs" --port 0 --tls-cert "$T/srv.pem" \
  --tls-key "$T/srv.key" --config "$T/setup.json" --k8s-jwks "$T/jwks.json" --root-token hvs.root
V="https://127.0.0.1:$VPORT"
C=(curl -s --cacert "$T/ca.pem")
ctl() { "${C[@]}" -X POST "$V/_fake/$1" -d "$2"; }
fake_now() { "${C[@]}" "$V/_fake/clock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["now"])'; }
jwt() { node "$T/sign_jwt.mjs" "$1" "$2" "${3:-RS256}" "$(fake_now)"; }
# jcheck DESC JSON PY-EXPR: the Python expression over j (the parsed JSON) must be true
jcheck() {
  if python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3" 2>/dev/null; then
    ok "$1"
  else
    fail "$1"; echo "  got: $2" >&2
  fi
}
# code METHOD PATH [curl args...]: the HTTP status only
code() { local m="$1" p="$2"; shift 2; "${C[@]}" -o /dev/null -w '%{http_code}' -X "$m" "$V$p" "$@"; }

# --- TLS: the test CA is needed -------------------------------------------------------------------------------
check "TLS: an unknown CA is refused" bash -c "! curl -s -o /dev/null '$V/v1/sys/health'"

# --- curl: the exact JSON shapes ------------------------------------------------------------------------------
SA_OK=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:warden","aud":["vault"],"exp":"+600","iat":"+0","kubernetes.io":{"namespace":"ai","serviceaccount":{"name":"warden","uid":"u-1"}}}')

r=$("${C[@]}" -H 'X-Vault-Token: hvs.root' "$V/v1/secret/data/warden/openai")
jcheck "KV v2 read: data.data and data.metadata.version, lease_duration 0, the envelope keys" "$r" \
  'j["data"]["data"]=={"api_key":"sk-v2-first"} and j["data"]["metadata"]["version"]==1 and j["lease_duration"]==0 and j["renewable"] is False and j["data"]["metadata"]["destroyed"] is False and j["data"]["metadata"]["deletion_time"]=="" and set(j)>={"request_id","lease_id","wrap_info","warnings","auth"}'
r=$("${C[@]}" -H 'X-Vault-Token: hvs.root' "$V/v1/kv/warden/legacy")
jcheck "KV v1 read: the secret is data itself, lease_duration 2764800" "$r" \
  'j["data"]=={"api_key":"sk-v1-legacy"} and j["lease_duration"]==2764800'
r=$("${C[@]}" -H 'X-Vault-Token: hvs.root' -H 'X-Vault-Namespace: team-a' "$V/v1/secret/data/warden/openai")
jcheck "X-Vault-Namespace: the path is resolved in that namespace" "$r" 'j["data"]["data"]["api_key"]=="sk-team-a"'
r=$("${C[@]}" -H 'X-Vault-Token: hvs.root' "$V/v1/team-a/secret/data/warden/openai")
jcheck "a namespace as a path prefix: /v1/team-a/secret/data/..." "$r" 'j["data"]["data"]["api_key"]=="sk-team-a"'
r=$("${C[@]}" -H 'X-Vault-Token: hvs.root' -H 'X-Vault-Namespace: team-a/' "$V/v1/kv/warden/legacy")
jcheck "a mount of the root namespace is not seen from team-a (no handler for route)" "$r" \
  'j["errors"][0].startswith("no handler for route")'
r=$("${C[@]}" -H 'X-Vault-Token: hvs.bogus' "$V/v1/secret/data/warden/openai")
jcheck "a bad token: {\"errors\":[\"permission denied\"]}" "$r" 'j=={"errors":["permission denied"]}'
check "a bad token is 403" test "$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.bogus')" = 403
check "no token is 403" test "$(code GET /v1/secret/data/warden/openai)" = 403
check "a token whose paths do not cover the secret is 403" \
  test "$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.narrow')" = 403
r=$("${C[@]}" -H 'X-Vault-Token: hvs.root' "$V/v1/secret/data/warden/missing")
jcheck "a missing secret: 404 {\"errors\":[]}" "$r" 'j=={"errors":[]}'
check "an unknown mount with a bad token is 403, not 404" test "$(code GET /v1/nomount/x -H 'X-Vault-Token: hvs.bogus')" = 403
check "an unknown mount with the root token is 404" test "$(code GET /v1/nomount/x -H 'X-Vault-Token: hvs.root')" = 404
check "a KV v2 path without data/ is 404" test "$(code GET /v1/secret/warden/openai -H 'X-Vault-Token: hvs.root')" = 404
check "writing through the API is 405 (rotation goes through /_fake/secret)" \
  test "$(code POST /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.root' -d '{"data":{}}')" = 405

r=$("${C[@]}" -X POST "$V/v1/auth/approle/login" -d '{"role_id":"role-id-1","secret_id":"secret-id-1"}')
jcheck "AppRole login: auth.client_token, lease_duration 120, renewable, metadata.role_name" "$r" \
  'j["auth"]["client_token"].startswith("hvs.") and j["auth"]["lease_duration"]==120 and j["auth"]["renewable"] is True and j["auth"]["metadata"]=={"role_name":"warden"} and j["auth"]["token_type"]=="service" and j["data"] is None'
r=$("${C[@]}" -X POST "$V/v1/auth/approle/login" -d '{"role_id":"role-id-1","secret_id":"wrong"}')
jcheck "AppRole with a wrong secret_id: 400 invalid role or secret ID" "$r" 'j=={"errors":["invalid role or secret ID"]}'
r=$("${C[@]}" -X POST "$V/v1/auth/approle/login" -d '{"role_id":"role-id-1"}')
jcheck "AppRole without secret_id: 400 missing secret_id" "$r" 'j=={"errors":["missing secret_id"]}'
check "a body that is not JSON is 400" test "$(code POST /v1/auth/approle/login -d '{nope')" = 400

r=$("${C[@]}" -X POST "$V/v1/auth/kubernetes/login" -d "{\"role\":\"warden\",\"jwt\":\"$SA_OK\"}")
jcheck "Kubernetes login: a token with the service account in its metadata" "$r" \
  'j["auth"]["lease_duration"]==300 and j["auth"]["metadata"]["service_account_name"]=="warden" and j["auth"]["metadata"]["service_account_namespace"]=="ai"'
kube_login() { "${C[@]}" -o /dev/null -w '%{http_code}' -X POST "$V/v1/auth/kubernetes/login" -d "{\"role\":\"${2:-warden}\",\"jwt\":\"$1\"}"; }
J=$(jwt "$T/other.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:warden","exp":"+600"}')
check "Kubernetes: a JWT signed by another key is 403" test "$(kube_login "$J")" = 403
J=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:warden","exp":"+600"}' none)
check "Kubernetes: alg none is 403" test "$(kube_login "$J")" = 403
J=$(jwt "$T/sa.key" '{"iss":"https://evil.example","sub":"system:serviceaccount:ai:warden","exp":"+600"}')
check "Kubernetes: another issuer is 403" test "$(kube_login "$J")" = 403
J=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:warden","exp":"-5"}')
check "Kubernetes: an expired JWT is 403" test "$(kube_login "$J")" = 403
J=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:intruder","exp":"+600"}')
r=$("${C[@]}" -X POST "$V/v1/auth/kubernetes/login" -d "{\"role\":\"warden\",\"jwt\":\"$J\"}")
jcheck "Kubernetes: a service account not bound to the role: 403 service account name not authorized" "$r" \
  'j=={"errors":["service account name not authorized"]}'
J=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:other:warden","exp":"+600"}')
check "Kubernetes: a namespace not bound to the role is 403" test "$(kube_login "$J")" = 403
J=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:warden","exp":"+600","kubernetes.io":{"namespace":"other","serviceaccount":{"name":"warden"}}}')
check "Kubernetes: a kubernetes.io claim disagreeing with sub is 403" test "$(kube_login "$J")" = 403
J=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:warden","exp":"+600","nbf":"+60"}')
check "Kubernetes: a JWT not valid yet (nbf) is 403" test "$(kube_login "$J")" = 403
check "Kubernetes: a JWT that is not three base64url parts is 403" test "$(kube_login "a.b")" = 403
J=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:any","exp":"+600","aud":["vault"]}')
check "Kubernetes: a role with an audience and names [*] takes a JWT for that audience" test "$(kube_login "$J" aud)" = 200
J=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:any","exp":"+600","aud":["other"]}')
check "Kubernetes: another audience is 403" test "$(kube_login "$J" aud)" = 403
PEM=$(openssl pkey -in "$T/other.key" -pubout | python3 -c 'import json,sys; print(json.dumps({"pem": sys.stdin.read()}))')
ctl k8s-jwks "$PEM" >/dev/null
J=$(jwt "$T/other.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:warden","exp":"+600"}')
a=$(kube_login "$J"); b=$(kube_login "$SA_OK")
check "/_fake/k8s-jwks {pem} replaces the keys: the new key's JWT is taken ($a), the old key's refused ($b)" test "$a $b" = "200 403"
ctl k8s-jwks "$(cat "$T/jwks.json")" >/dev/null
check "/_fake/k8s-jwks with the JWKS restores the first key" test "$(kube_login "$SA_OK")" = 200
check "Kubernetes: an unknown role is 400" test "$(kube_login "$SA_OK" nobody)" = 400

# --- leases on the fake clock ---------------------------------------------------------------------------------
r=$(ctl token '{"id":"hvs.short","ttl":60,"renewable":true,"max_ttl":300}')
jcheck "/_fake/token makes a token with an expire_time" "$r" 'j["token"]=="hvs.short" and j["expire_time"].endswith("Z")'
r=$("${C[@]}" -H 'X-Vault-Token: hvs.short' "$V/v1/auth/token/lookup-self")
jcheck "lookup-self: ttl, renewable, expire_time, creation_ttl" "$r" \
  '55<=j["data"]["ttl"]<=60 and j["data"]["renewable"] is True and j["data"]["creation_ttl"]==60 and j["data"]["expire_time"].endswith("Z")'
ctl clock '{"advance_s":50}' >/dev/null
r=$("${C[@]}" -X POST -H 'X-Vault-Token: hvs.short' "$V/v1/auth/token/renew-self" -d '{"increment":"2m"}')
jcheck "renew-self with increment 2m: auth.lease_duration 120, renewable" "$r" \
  'j["auth"]["lease_duration"]==120 and j["auth"]["renewable"] is True and j["auth"]["client_token"]=="hvs.short"'
ctl clock '{"advance_s":100}' >/dev/null
check "a renewed token still works past its first TTL" \
  test "$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.short')" = 200
r=$("${C[@]}" -X POST -H 'X-Vault-Token: hvs.short' "$V/v1/auth/token/renew-self" -d '{"increment":3600}')
jcheck "renew-self is capped by the token's max TTL (300 s from issue)" "$r" \
  '140<=j["auth"]["lease_duration"]<=150'
r=$("${C[@]}" -X POST -H 'X-Vault-Token: hvs.fixed' "$V/v1/auth/token/renew-self")
jcheck "renew-self on a non-renewable token: 400 lease is not renewable" "$r" 'j=={"errors":["lease is not renewable"]}'
ctl clock '{"advance_s":200}' >/dev/null
check "past its TTL the token is 403" test "$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.short')" = 403
check "lookup-self of an expired token is 403" test "$(code GET /v1/auth/token/lookup-self -H 'X-Vault-Token: hvs.short')" = 403

# --- the fake's own command line -------------------------------------------------------------------------------
rc=0; node "$WD_ROOT/tests/fakes/fake_vault.mjs" --bogus >/dev/null 2>&1 || rc=$?
check "an unknown argument exits 2" test "$rc" = 2
echo '{"mounts":[{"path":"x","version":3}]}' >"$T/bad.json"
rc=0; node "$WD_ROOT/tests/fakes/fake_vault.mjs" --port 0 --config "$T/bad.json" >/dev/null 2>&1 || rc=$?
check "a bad config (KV version 3) exits 2" test "$rc" = 2

# --- rotation, faults, counts ---------------------------------------------------------------------------------
r=$(ctl secret '{"mount":"secret","path":"warden/openai","data":{"api_key":"sk-v2-second"}}')
jcheck "rotation through /_fake/secret makes version 2" "$r" 'j=={"version":2}'
r=$("${C[@]}" -H 'X-Vault-Token: hvs.root' "$V/v1/secret/data/warden/openai")
jcheck "the next read gets the rotated value and version 2" "$r" \
  'j["data"]["data"]["api_key"]=="sk-v2-second" and j["data"]["metadata"]["version"]==2'
r=$("${C[@]}" -H 'X-Vault-Token: hvs.root' "$V/v1/secret/data/warden/openai?version=1")
jcheck "?version=1 still reads the first value" "$r" 'j["data"]["data"]["api_key"]=="sk-v2-first"'

ctl reset '' >/dev/null
ctl fail '{"status":503,"count":2,"path":"/v1/secret/"}' >/dev/null
a=$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.root')
b=$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.root')
c=$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.root')
check "fail: 503 for the next 2 requests on the path, then normal ($a $b $c)" test "$a $b $c" = "503 503 200"
ctl fail '{"delay_ms":600,"count":1}' >/dev/null
t0=$(date +%s%N)
a=$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.root')
ms=$((($(date +%s%N) - t0) / 1000000))
check "fail: delay_ms 600 delays the answer ($a after ${ms} ms)" test "$a" = 200 -a "$ms" -ge 550
ctl fail '{"hang":true,"count":1}' >/dev/null
a=$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.root' --max-time 1 || true)
b=$(code GET /v1/secret/data/warden/openai -H 'X-Vault-Token: hvs.root')
check "fail: hang never answers (client times out: $a), the next request is served ($b)" test "$a $b" = "000 200"

ctl reset '' >/dev/null
pids=()
for _ in $(seq 1 12); do
  "${C[@]}" -o /dev/null -H 'X-Vault-Token: hvs.root' "$V/v1/kv/warden/legacy" &
  pids+=($!)
done
wait "${pids[@]}"
r=$("${C[@]}" "$V/_fake/stats")
jcheck "stats count requests per path (12 concurrent reads)" "$r" \
  'j["paths"]["/v1/kv/warden/legacy"]==12 and j["total"]==12 and j["by_status"]["200"]==12'
check "a bad control call is 400" test "$(code POST /_fake/fail -d '{"count":1}')" = 400

# --- the official client: python3-hvac reads the same secrets ----------------------------------------------------
ctl secret '{"mount":"secret","path":"warden/openai","data":{"api_key":"sk-v2-third"}}' >/dev/null
SA_OK=$(jwt "$T/sa.key" '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:ai:warden","exp":"+600","kubernetes.io":{"namespace":"ai","serviceaccount":{"name":"warden","uid":"u-1"}}}')
cat >"$T/hvac_check.py" <<'PY'
import sys
import hvac
import hvac.exceptions as E

url, ca, jwt = sys.argv[1:4]
def check(desc, fn):
    try:
        good = fn()
    except Exception as e:  # a check that raises is a failure, with the reason
        print(f"not ok - hvac: {desc} ({type(e).__name__}: {e})")
        return
    print(f"{'ok' if good else 'not ok'} - hvac: {desc}")

def raises(exc, fn):
    try:
        fn()
    except exc:
        return True
    return False

root = hvac.Client(url=url, token="hvs.root", verify=ca)
check("token auth: is_authenticated (lookup-self)", root.is_authenticated)
check("token auth + KV v2 read_secret_version gets the rotated value, version 3",
      lambda: (lambda r: r["data"]["data"]["api_key"] == "sk-v2-third" and r["data"]["metadata"]["version"] == 3)(
          root.secrets.kv.v2.read_secret_version(path="warden/openai", mount_point="secret")))
check("KV v2 read of version 1",
      lambda: root.secrets.kv.v2.read_secret_version(path="warden/openai", version=1)["data"]["data"]["api_key"] == "sk-v2-first")
check("KV v1 read_secret",
      lambda: root.secrets.kv.v1.read_secret(path="warden/legacy", mount_point="kv")["data"]["api_key"] == "sk-v1-legacy")
check("a missing secret raises InvalidPath",
      lambda: raises(E.InvalidPath, lambda: root.secrets.kv.v2.read_secret_version(path="warden/missing")))

ar = hvac.Client(url=url, verify=ca)
check("AppRole login sets a token with lease_duration 120",
      lambda: ar.auth.approle.login(role_id="role-id-1", secret_id="secret-id-1")["auth"]["lease_duration"] == 120)
check("AppRole token reads KV v2",
      lambda: ar.secrets.kv.v2.read_secret_version(path="warden/openai")["data"]["data"]["api_key"] == "sk-v2-third")
check("AppRole with a wrong secret_id raises InvalidRequest",
      lambda: raises(E.InvalidRequest, lambda: hvac.Client(url=url, verify=ca).auth.approle.login(role_id="role-id-1", secret_id="nope")))

k8 = hvac.Client(url=url, verify=ca)
check("Kubernetes login with the signed service-account JWT",
      lambda: k8.auth.kubernetes.login(role="warden", jwt=jwt)["auth"]["metadata"]["service_account_name"] == "warden")
check("Kubernetes token reads KV v1",
      lambda: k8.secrets.kv.v1.read_secret(path="warden/legacy", mount_point="kv")["data"]["api_key"] == "sk-v1-legacy")
check("Kubernetes login with a tampered JWT raises Forbidden",
      lambda: raises(E.Forbidden, lambda: hvac.Client(url=url, verify=ca).auth.kubernetes.login(role="warden", jwt=jwt[:-4] + "AAAA")))

ns = hvac.Client(url=url, token="hvs.root", verify=ca, namespace="team-a")
check("namespace team-a: the root token reads team-a's secret",
      lambda: ns.secrets.kv.v2.read_secret_version(path="warden/openai")["data"]["data"]["api_key"] == "sk-team-a")
nsr = hvac.Client(url=url, verify=ca, namespace="team-a")
nsr.auth.approle.login(role_id="role-id-a", secret_id="secret-id-a")
check("namespace team-a: an AppRole login there reads team-a's secret",
      lambda: nsr.secrets.kv.v2.read_secret_version(path="warden/openai")["data"]["data"]["api_key"] == "sk-team-a")
out = hvac.Client(url=url, token=nsr.token, verify=ca)
check("a team-a token is refused in the root namespace (Forbidden)",
      lambda: raises(E.Forbidden, lambda: out.secrets.kv.v2.read_secret_version(path="warden/openai")))

short = hvac.Client(url=url, verify=ca)
short.auth.approle.login(role_id="role-id-1", secret_id="secret-id-1")
check("renew-self with increment 90 gives auth.lease_duration 90, renewable",
      lambda: (lambda r: r["auth"]["lease_duration"] == 90 and r["auth"]["renewable"] is True)(short.auth.token.renew_self(increment=90)))
check("lookup-self after renewal shows the new ttl",
      lambda: 85 <= short.auth.token.lookup_self()["data"]["ttl"] <= 90)

bad = hvac.Client(url=url, token="hvs.bogus", verify=ca)
check("permission denied raises hvac.exceptions.Forbidden",
      lambda: raises(E.Forbidden, lambda: bad.secrets.kv.v2.read_secret_version(path="warden/openai")))
check("is_authenticated is False for a bad token", lambda: bad.is_authenticated() is False)
check("TLS without the test CA fails",
      lambda: raises(Exception, lambda: hvac.Client(url=url, token="hvs.root", verify=True).secrets.kv.v2.read_secret_version(path="warden/openai")))
PY
while IFS= read -r line; do
  case "$line" in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) fail "${line#not ok - }" ;;
    *) echo "$line" ;;
  esac
done < <("$HVAC_PY" "$T/hvac_check.py" "$V" "$T/ca.pem" "$SA_OK" 2>&1)
r=$("${C[@]}" "$V/_fake/stats")
jcheck "hvac's logins were counted by the fake" "$r" 'j["logins"]["approle"]>=3 and j["logins"]["kubernetes"]==1'

wd_finish
