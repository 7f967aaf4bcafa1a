#!/usr/bin/env bash
# Proves the strict fake AWS (tests/fakes/fake_aws.mjs: Secrets Manager with SigV4 verified, STS web identity,
# IMDSv2) against the official clients: npm's @aws-sdk/client-secrets-manager and client-sts (tests/aws/check.mjs)
# and Debian's python3-boto3 (tests/aws/boto3_check.py) read the same secret through it over TLS with a test CA.
# Usage: bash tests/integration/test_fake_aws.sh [warden-binary, unused: the fake alone is under test]
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

bash "$WD_ROOT/tests/aws/setup.sh" >/dev/null

# A test CA and a server certificate for 127.0.0.1 signed by it: the clients trust the CA, not the certificate.
CA="$WD_TMP/ca.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=warden fake AWS test CA" \
  -keyout "$WD_TMP/ca.key" -out "$CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$WD_TMP/srv.key" -out "$WD_TMP/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$WD_TMP/srv.ext"
openssl x509 -req -in "$WD_TMP/srv.csr" -CA "$CA" -CAkey "$WD_TMP/ca.key" -CAcreateserial -days 2 \
  -extfile "$WD_TMP/srv.ext" -out "$WD_TMP/srv.pem" 2>/dev/null
# The web identity token's signing key (the cluster's service-account issuer); the fake gets the public half.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WD_TMP/jwt.key" 2>/dev/null
openssl pkey -in "$WD_TMP/jwt.key" -pubout -out "$WD_TMP/jwt.pub" 2>/dev/null

AKID=AKIAWARDENFAKE$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
SKEY="fake/$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
VALUE="sk-planted-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
ROLE=arn:aws:iam::123456789012:role/warden-irsa
OUT="$WD_TMP/fake.out"
node "$WD_ROOT/tests/fakes/fake_aws.mjs" --port 0 --imds-port 0 --tls-cert "$WD_TMP/srv.pem" --tls-key "$WD_TMP/srv.key" \
  --access-key-id "$AKID" --secret-access-key "$SKEY" --secret "prod/openai=$VALUE" --role-arn "$ROLE" \
  --web-identity-key "$WD_TMP/jwt.pub" --web-identity-issuer https://oidc.fake.test/id/W >"$OUT" 2>"$OUT.err" &
WD_PIDS+=($!)
for _ in $(seq 1 200); do grep -q '"port"' "$OUT" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$OUT")
IMDS_PORT=$(sed -n 's/.*"imds_port": *\([0-9]*\).*/\1/p' "$OUT")
[ -n "$PORT" ] && [ -n "$IMDS_PORT" ] && ok "fake_aws announced its ports" || { fail "fake_aws did not start"; cat "$OUT.err" >&2; wd_finish; exit 1; }

C=(curl -s --noproxy '*' --cacert "$CA" --max-time 5)
check "TLS: the test CA verifies the fake's certificate" "${C[@]}" -o /dev/null "https://127.0.0.1:$PORT/_fake/stats"
check "TLS: without the test CA the certificate is refused" bash -c "! curl -s --noproxy '*' -o /dev/null --max-time 5 https://127.0.0.1:$PORT/_fake/stats"
body=$("${C[@]}" -X POST "https://127.0.0.1:$PORT/" -H 'content-type: application/x-amz-json-1.1' \
  -H 'x-amz-target: secretsmanager.GetSecretValue' -d '{"SecretId":"prod/openai"}')
check "unsigned GetSecretValue is MissingAuthenticationTokenException" grep -q MissingAuthenticationTokenException <<<"$body"
code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$IMDS_PORT/latest/meta-data/iam/security-credentials/")
check "IMDS without a token is 401" test "$code" = 401
code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' -H 'X-Forwarded-For: 1.2.3.4' \
  "http://127.0.0.1:$IMDS_PORT/latest/api/token")
check "IMDS token PUT through a proxy (X-Forwarded-For) is 403" test "$code" = 403

export FAKE_AWS_PORT=$PORT FAKE_AWS_IMDS_PORT=$IMDS_PORT FAKE_AWS_AKID=$AKID FAKE_AWS_SECRET_KEY=$SKEY \
  FAKE_AWS_SECRET_NAME=prod/openai FAKE_AWS_SECRET_VALUE=$VALUE FAKE_AWS_ROLE_ARN=$ROLE FAKE_AWS_JWT_KEY=$WD_TMP/jwt.key \
  FAKE_AWS_TMP=$WD_TMP
# No real AWS configuration or proxy may leak in: every client is pointed at the fake.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=false
export AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$IMDS_PORT"

run_checks() { # runs a check script, turning its ok/not ok lines into ours; it must end with its summary, status 0
  local line summary=""
  while IFS= read -r line; do
    case "$line" in
      "ok - "*) ok "${line#ok - }" ;;
      "not ok - "*) fail "${line#not ok - }" ;;
      *" passed, "*" failed") summary=$line ;;
      *) echo "# $line" ;;
    esac
  done < <("$@" 2>&1; echo "exit status $?")
  [ -n "$summary" ] || fail "$(basename "${@: -1}") ended before its summary (killed or crashed)"
}
NODE_NO_WARNINGS=1 NODE_EXTRA_CA_CERTS=$CA run_checks timeout 40 node "$WD_ROOT/tests/aws/check.mjs"
if python3 -c 'import boto3' 2>/dev/null; then
  NODE_NO_WARNINGS=1 node "$WD_ROOT/tests/aws/check.mjs" --print-token >"$WD_TMP/boto3-token"
  export FAKE_AWS_WEB_TOKEN=$WD_TMP/boto3-token
  AWS_CA_BUNDLE=$CA run_checks timeout 30 python3 "$WD_ROOT/tests/aws/boto3_check.py"
else
  fail "python3-boto3 is not installed (scripts/deps.sh)"
fi
# ES256 web identity tokens (an EC service-account issuer) on a second, plain-HTTP instance
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WD_TMP/ec.key" 2>/dev/null
openssl pkey -in "$WD_TMP/ec.key" -pubout -out "$WD_TMP/ec.pub" 2>/dev/null
wd_start_server EC_PORT node "$WD_ROOT/tests/fakes/fake_aws.mjs" --port 0 --web-identity-key "$WD_TMP/ec.pub" --role-arn "$ROLE"
es256() { # es256 KEYFILE: an ES256 JWT for the role's audience, valid an hour
  node -e 'const c=require("crypto"),f=require("fs");const b=o=>Buffer.from(JSON.stringify(o)).toString("base64url");
    const n=Math.floor(Date.now()/1000);const h=b({alg:"ES256",typ:"JWT"})+"."+b({sub:"system:serviceaccount:ai:warden",aud:"sts.amazonaws.com",iss:"https://oidc.fake.test",exp:n+3600});
    process.stdout.write(h+"."+c.sign("SHA256",Buffer.from(h),{key:f.readFileSync(process.argv[1]),dsaEncoding:"ieee-p1363"}).toString("base64url"))' "$1"
}
sts_form() { curl -s --noproxy '*' --max-time 5 "http://127.0.0.1:$EC_PORT/" --data-urlencode Action=AssumeRoleWithWebIdentity \
  --data-urlencode Version=2011-06-15 --data-urlencode "RoleArn=$ROLE" --data-urlencode RoleSessionName=es256 \
  --data-urlencode "WebIdentityToken=$1"; }
check "STS takes an ES256 web identity token signed by the given EC key" grep -q '<AccessKeyId>ASIA' <<<"$(sts_form "$(es256 "$WD_TMP/ec.key")")"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WD_TMP/ec2.key" 2>/dev/null
check "STS refuses an ES256 token signed by another key" grep -q '<Code>InvalidIdentityToken</Code>' <<<"$(sts_form "$(es256 "$WD_TMP/ec2.key")")"
stats=$("${C[@]}" "https://127.0.0.1:$PORT/_fake/stats")
check "the fake counted the boto3 calls per operation" python3 -c "import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s['requests']['GetSecretValue']>=4 and s['requests']['imds_credentials']>=1 else 1)" "$stats"
check "the fake logged no internal error" bash -c "! grep -q 'internal error' '$OUT.err'"
wd_finish
