#!/usr/bin/env bash
# The aws-sm:// backend through Warden, against the strict fake AWS (tests/fakes/fake_aws.mjs, SigV4 checked,
# over TLS with a test CA) and fake_gemini as the provider: every credential source (static env keys, web
# identity, IMDSv2 by the default chain, the shared file, the container endpoint), an ARN and a #json-field reference, lazy and shared
# first fetches, rotation without restart, outages with and without a cached value, /readyz, credential refresh,
# and the planted values in none of Warden's outputs.
# Usage: bash tests/integration/test_secrets_aws.sh [warden-binary]
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

# Nothing from the caller's AWS setup may leak into Warden: every source is set per run below.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN \
  AWS_REGION AWS_DEFAULT_REGION AWS_SHARED_CREDENTIALS_FILE AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
  AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_EC2_METADATA_SERVICE_ENDPOINT AWS_CA_BUNDLE AWS_ROLE_SESSION_NAME

CA="$WD_TMP/ca.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=warden aws-sm test CA" \
  -keyout "$WD_TMP/ca.key" -out "$CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$WD_TMP/srv.key" -out "$WD_TMP/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$WD_TMP/srv.ext"
openssl x509 -req -in "$WD_TMP/srv.csr" -CA "$CA" -CAkey "$WD_TMP/ca.key" -CAcreateserial -days 2 \
  -extfile "$WD_TMP/srv.ext" -out "$WD_TMP/srv.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WD_TMP/jwt.key" 2>/dev/null
openssl pkey -in "$WD_TMP/jwt.key" -pubout -out "$WD_TMP/jwt.pub" 2>/dev/null

rnd() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
AKID=AKIAWARDENSM$(rnd 4 | tr a-f A-F)
SKEY="fake/$(rnd 20)"
V1="sk-plain-$(rnd 10)"     # prod/gemini, then rotated to V1B
V1B="sk-rotated-$(rnd 10)"
V2="sk-json-$(rnd 10)"      # the api_key field of prod/json
V3="sk-arn-$(rnd 10)"       # prod/arn, read by its ARN
V4="sk-file-$(rnd 10)"      # prod/file, first read during an outage
ROLE=arn:aws:iam::123456789012:role/warden-irsa
CTOKEN="ctok-$(rnd 12)"  # the container endpoint's authorization token
OUT="$WD_TMP/fake_aws.out"
node "$WD_ROOT/tests/fakes/fake_aws.mjs" --port 0 --imds-port 0 --tls-cert "$WD_TMP/srv.pem" --tls-key "$WD_TMP/srv.key" \
  --access-key-id "$AKID" --secret-access-key "$SKEY" --role-arn "$ROLE" --web-identity-key "$WD_TMP/jwt.pub" \
  --credential-ttl-s 6 --container-token "$CTOKEN" --secret "prod/gemini=$V1" --secret "prod/json={\"api_key\":\"$V2\",\"region\":\"x\"}" \
  --secret "prod/arn=$V3" --secret "prod/file=$V4" >"$OUT" 2>"$OUT.err" &
WD_PIDS+=($!)
for _ in $(seq 1 200); do grep -q '"port"' "$OUT" 2>/dev/null && break; sleep 0.05; done
AWS_PORT=$(sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$OUT")
IMDS_PORT=$(sed -n 's/.*"imds_port": *\([0-9]*\).*/\1/p' "$OUT")
[ -n "$AWS_PORT" ] && [ -n "$IMDS_PORT" ] || { fail "fake_aws did not start"; cat "$OUT.err" >&2; wd_finish; exit 1; }
AWS_URL="https://127.0.0.1:$AWS_PORT"
A=(curl -s --noproxy '*' --cacert "$CA" --max-time 5)
wd_start_fake --key "$V1"
GEM=$FAKE_URL

# aws_stat OP: the fake's count of calls to OP
aws_stat() { "${A[@]}" "$AWS_URL/_fake/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['requests']['$1'])"; }
aws_ctl() { "${A[@]}" -o /dev/null -X POST "$AWS_URL/_fake/$1" -d "$2"; }
gem_keys() { curl -s --max-time 5 -o /dev/null -X POST "$GEM/_fake/script" -d "{\"api_keys\":$1}"; }
# gem_saw KEY: whether fake_gemini's latest request carried KEY
gem_saw() {
  curl -s --max-time 5 "$GEM/_fake/requests" | python3 -c "
import json,sys
r=json.load(sys.stdin); sys.exit(0 if r and r[-1]['headers'].get('x-goog-api-key')==sys.argv[1] else 1)" "$1"
}

# start_run NAME REF AWS_YAML: a Warden whose only provider key is REF; its outputs kept for the final grep
BODIES="$WD_TMP/bodies"
mkdir -p "$BODIES"
start_run() {
  RUN=$1
  local cfg="$WD_TMP/$1.yaml"
  cat >"$cfg" <<YAML
listen: 127.0.0.1:$(wd_free_port)
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $GEM
    keys:
      - secret: $2
models:
  tiers:
    opus: gemini/gemini-2.5-pro
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
secrets:
  aws:
    region: us-east-1
    tls_ca: $CA
    endpoint: $AWS_URL
    ttl: 2s
    timeout: 3s
$3
$(wd_metrics_yaml)
YAML
  wd_start_warden "$cfg"
  cp "$WARDEN_LOG" "$BODIES/$RUN.log.start" 2>/dev/null || true
}
stop_run() {
  "${A[@]}" "$WARDEN_URL/readyz" >"$BODIES/$RUN.readyz.end" || true
  curl -s --max-time 5 "$WARDEN_METRICS_URL/metrics" >"$BODIES/$RUN.metrics.end" || true
  wd_stop_warden
  cp "$WARDEN_LOG" "$BODIES/$RUN.log"
}
N=0
# post: one Messages call -> $CODE, body in $BODY (and kept)
post() {
  N=$((N + 1))
  BODY="$BODIES/$RUN.$N.json"
  CODE=$(curl -s -o "$BODY" -w '%{http_code}' --max-time 15 -H "x-api-key: devkey" -H 'anthropic-version: 2023-06-01' \
    -H 'content-type: application/json' -d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}' \
    "$WARDEN_URL/anthropic/v1/messages") || CODE=000
}
# until_ok SECONDS: posts until one answer is 200 (0) or the time is up (1)
until_ok() {
  local end=$(($(date +%s) + $1))
  while [ "$(date +%s)" -lt "$end" ]; do post; [ "$CODE" = 200 ] && return 0; sleep 0.3; done
  return 1
}
metric() { curl -s --max-time 5 "$WARDEN_METRICS_URL/metrics" | tee -a "$BODIES/$RUN.metrics" | sed -n "s/^$1 //p"; }

# ---- 1. static keys from the environment: lazy, one shared first fetch, rotation, outage with a cached value
WD_WARDEN_ENV=(AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SKEY")
start_run env aws-sm://prod/gemini "    credentials: env"
sleep 0.5
check "env: nothing is fetched at start (lazy)" test "$(aws_stat GetSecretValue)" = 0
"${A[@]}" "$WARDEN_URL/readyz" >"$BODIES/env.readyz.0" || true
check "env: /readyz lists the reference before its first use" grep -q 'aws-sm://prod/gemini' "$BODIES/env.readyz.0"
for i in $(seq 1 20); do
  curl -s -o "$BODIES/env.par.$i" -w '%{http_code}\n' --max-time 15 -H "x-api-key: devkey" -H 'anthropic-version: 2023-06-01' \
    -H 'content-type: application/json' -d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}' \
    "$WARDEN_URL/anthropic/v1/messages" >"$WD_TMP/par.$i" &
done
wait_par() { # at most ~20 s: curl's own --max-time ends each request sooner
  local t=0
  for i in $(seq 1 20); do while [ ! -s "$WD_TMP/par.$i" ] && [ $t -lt 400 ]; do sleep 0.05; t=$((t + 1)); done; done
}
wait_par
check "env: 20 concurrent first requests all succeed" test "$(cat "$WD_TMP"/par.* | grep -c '^200$')" = 20
check "env: 20 concurrent first requests made ONE GetSecretValue" test "$(aws_stat GetSecretValue)" = 1
check "env: fake_gemini got exactly the planted value" gem_saw "$V1"
"${A[@]}" "$WARDEN_URL/readyz" >"$BODIES/env.readyz.1" || true
check "env: /readyz shows the reference cached" python3 -c "
import json,sys; d=json.load(open(sys.argv[1]))
print(d.get('secrets')); sys.exit(0 if any(s.get('ref')=='aws-sm://prod/gemini' and 'cached' in json.dumps(s) for s in d['secrets']) else 1)" "$BODIES/env.readyz.1" >/dev/null
# rotation: a new AWSCURRENT in Secrets Manager, the provider accepts only the new key
aws_ctl secret "{\"name\":\"prod/gemini\",\"value\":\"$V1B\"}"
gem_keys "[\"$V1B\"]"
until_ok 8
check "env: after rotation a request succeeds within seconds, without a restart" test "$CODE" = 200
check "env: fake_gemini got the rotated value" gem_saw "$V1B"
# outage with a cached value: every GetSecretValue fails from now on
aws_ctl fault '{"op":"GetSecretValue","status":500,"sticky":true}'
sleep 3
post
check "env: Secrets Manager down, a cached value still serves (200)" test "$CODE" = 200
sleep 2
post
check "env: still serving past the TTL during the outage" test "$CODE" = 200
check "env: the backend failure is logged" grep -q 'InternalServiceError' "$WARDEN_LOG"
stale=$(metric 'warden_secret_stale_references{scheme="aws-sm"}')
check "env: /metrics warden_secret_stale_references{scheme=aws-sm} is 1 (got ${stale:-none})" test "${stale:-0}" = 1
errs=$(metric 'warden_secret_fetches_total{scheme="aws-sm",result="error"}')
check "env: /metrics counts failed fetches (got ${errs:-none})" test "${errs:-0}" -ge 1
"${A[@]}" "$WARDEN_URL/readyz" >"$BODIES/env.readyz.2" || true
check "env: /readyz shows the reference stale" grep -q 'stale' "$BODIES/env.readyz.2"
aws_ctl reset '{}'
stop_run

# ---- 2. web identity (EKS IRSA): a #json-field reference, credentials refreshed before their 6 s expiry
node -e 'const c=require("crypto"),f=require("fs");const b=o=>Buffer.from(JSON.stringify(o)).toString("base64url");
  const n=Math.floor(Date.now()/1000);const h=b({alg:"RS256",typ:"JWT"})+"."+b({sub:"system:serviceaccount:ai:warden",aud:"sts.amazonaws.com",iss:"https://oidc.fake.test",exp:n+3600});
  process.stdout.write(h+"."+c.sign("RSA-SHA256",Buffer.from(h),f.readFileSync(process.argv[1])).toString("base64url"))' \
  "$WD_TMP/jwt.key" >"$WD_TMP/web-token"
gem_keys "[\"$V2\"]"
WD_WARDEN_ENV=(AWS_WEB_IDENTITY_TOKEN_FILE="$WD_TMP/web-token" AWS_ROLE_ARN="$ROLE")
sts0=$(aws_stat AssumeRoleWithWebIdentity)
start_run web 'aws-sm://prod/json#api_key' "    credentials: web_identity
    sts_endpoint: $AWS_URL/"
post
check "web identity: a #api_key reference serves (200)" test "$CODE" = 200
check "web identity: fake_gemini got the JSON field's value" gem_saw "$V2"
check "web identity: STS AssumeRoleWithWebIdentity was called once" test "$(aws_stat AssumeRoleWithWebIdentity)" = $((sts0 + 1))
okc=0
for _ in $(seq 1 16); do sleep 0.5; post; [ "$CODE" = 200 ] && okc=$((okc + 1)); done
check "web identity: requests keep working across credential expiry ($okc/16)" test "$okc" = 16
sts1=$(aws_stat AssumeRoleWithWebIdentity)
check "web identity: the 6 s credentials were replaced ahead of expiry (STS calls $((sts1 - sts0)))" test $((sts1 - sts0)) -ge 2
check "web identity: no GetSecretValue was refused for expired credentials" \
  bash -c '! grep -q ExpiredTokenException <<<"$1"' _ "$("${A[@]}" "$AWS_URL/_fake/stats")"
# a revoked session: Secrets Manager refuses the cached credentials, Warden logs in again and retries once
# (right after a login, so that the next value refresh, due within 2 s, still signs with the revoked keys)
sts2=$(aws_stat AssumeRoleWithWebIdentity)
for _ in $(seq 1 80); do post; [ "$(aws_stat AssumeRoleWithWebIdentity)" -gt "$sts2" ] && break; sleep 0.1; done
aws_ctl revoke '{}'
sts2=$(aws_stat AssumeRoleWithWebIdentity)
sleep 2.2
okc=0
for _ in $(seq 1 4); do post; [ "$CODE" = 200 ] && okc=$((okc + 1)); sleep 0.5; done
check "web identity: requests keep working after the session is revoked ($okc/4)" test "$okc" = 4
refused=$("${A[@]}" "$AWS_URL/_fake/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['refused'].get('UnrecognizedClientException',0))")
check "web identity: Secrets Manager refused the revoked credentials (UnrecognizedClientException x$refused)" test "$refused" -ge 1
check "web identity: a fresh login followed the refusal" test "$(aws_stat AssumeRoleWithWebIdentity)" -gt "$sts2"
check "web identity: the refusal and the retry are logged" grep -q 'refused the credentials from web identity' "$WARDEN_LOG"
stop_run

# ---- 3. IMDSv2 through the default chain (no env keys, no web identity, no shared file): an ARN reference
ARN=$("${A[@]}" "$AWS_URL/_fake/state" | python3 -c "import json,sys; print([s['arn'] for s in json.load(sys.stdin)['secrets'] if s['name']=='prod/arn'][0])")
gem_keys "[\"$V3\"]"
mkdir -p "$WD_TMP/nohome"
WD_WARDEN_ENV=(HOME="$WD_TMP/nohome")
t0=$(aws_stat imds_token)
c0=$(aws_stat imds_credentials)
start_run imds "aws-sm://$ARN" "    imds_endpoint: http://127.0.0.1:$IMDS_PORT"
post
check "imds: an ARN reference serves (200)" test "$CODE" = 200
check "imds: fake_gemini got the planted value" gem_saw "$V3"
check "imds: a session token was PUT first" test "$(aws_stat imds_token)" -gt "$t0"
check "imds: the instance credentials were read" test "$(aws_stat imds_credentials)" -gt "$c0"
okc=0
for _ in $(seq 1 14); do sleep 0.5; post; [ "$CODE" = 200 ] && okc=$((okc + 1)); done
check "imds: requests keep working across credential expiry ($okc/14)" test "$okc" = 14
check "imds: the 6 s instance credentials were read again ($(($(aws_stat imds_credentials) - c0)) reads)" \
  test $(($(aws_stat imds_credentials) - c0)) -ge 2
stop_run

# ---- 4. the shared credentials file; outage with nothing cached, then recovery
printf '[default]\naws_access_key_id = AKIAWRONGWRONGWRONG1\naws_secret_access_key = wrong\n\n# the profile Warden reads\n[warden]\naws_access_key_id = %s\naws_secret_access_key = %s\nregion = us-east-1\n' \
  "$AKID" "$SKEY" >"$WD_TMP/credentials"
gem_keys "[\"$V4\"]"
WD_WARDEN_ENV=()
aws_ctl fault '{"op":"GetSecretValue","status":503,"sticky":true}'
start_run file aws-sm://prod/file "    credentials: file
    credentials_file: $WD_TMP/credentials
    profile: warden"
post
check "file: Secrets Manager down and nothing cached: 503" test "$CODE" = 503
check "file: the 503 names the reference" grep -q 'aws-sm://prod/file' "$BODY"
"${A[@]}" "$WARDEN_URL/readyz" >"$BODIES/file.readyz.1" || true
check "file: /readyz lists the reference as failed" grep -q 'failed' "$BODIES/file.readyz.1"
check "file: /readyz gives Secrets Manager's error as the reason" grep -q 'HTTP 503 InternalServiceError' "$BODIES/file.readyz.1"
aws_ctl reset '{}'
until_ok 6
check "file: once Secrets Manager is back the reference serves (200)" test "$CODE" = 200
check "file: fake_gemini got the planted value from the [warden] profile's keys" gem_saw "$V4"
stop_run

# ---- 5. the container credentials endpoint (ECS / EKS Pod Identity), its token from a file
printf '%s\n' "$CTOKEN" >"$WD_TMP/ctoken"
gem_keys "[\"$V1B\"]"
WD_WARDEN_ENV=(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:$IMDS_PORT/v2/credentials/warden"
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$WD_TMP/ctoken")
k0=$(aws_stat container_credentials)
start_run container aws-sm://prod/gemini "    credentials: container"
post
check "container: a request succeeds with credentials from the container endpoint" test "$CODE" = 200
check "container: fake_gemini got the planted value" gem_saw "$V1B"
check "container: the endpoint was asked once, with the right token" test "$(aws_stat container_credentials)" = $((k0 + 1))
stop_run

# ---- no planted value, nor the static secret key, in any output of Warden
leaks=0
for v in "$V1" "$V1B" "$V2" "$V3" "$V4" "$SKEY" "$CTOKEN"; do
  if grep -rlF -- "$v" "$BODIES" "$WD_TMP"/warden.*.log* 2>/dev/null | grep -q .; then
    leaks=$((leaks + 1)); grep -rlF -- "$v" "$BODIES" "$WD_TMP"/warden.*.log* >&2
  fi
done
check "no planted value in Warden's logs, /metrics, /readyz or answer bodies" test "$leaks" = 0
# the fake's session tokens all start so; the container token is planted above
check "no AWS session token in Warden's logs or outputs" bash -c "! grep -rqF FwoGZXIvYXdzE '$BODIES' $WD_TMP/warden.*.log*"
check "fake_aws logged no internal error" bash -c "! grep -q 'internal error' '$OUT.err'"
wd_finish
