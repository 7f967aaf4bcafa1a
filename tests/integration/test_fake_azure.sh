#!/usr/bin/env bash
# Proves tests/fakes/fake_azure.mjs speaks Key Vault's and Entra ID's protocols: over TLS with a test CA, the official
# @azure/keyvault-secrets client reads a secret through the 401 challenge with @azure/identity's client-secret,
# workload-identity and managed-identity credentials, then tests/cloud/azure_check.mjs checks the fake's rules.
# $1 (the warden binary) is unused: this tests the fake Warden's Azure backend will be tested against.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
bash "$WD_ROOT/tests/cloud/setup.sh" >/dev/null

source "$WD_ROOT/tests/cloud/test_ca.sh"
wd_test_ca "$WD_TMP"

out="$WD_TMP/azure.out"
node "$WD_ROOT/tests/fakes/fake_azure.mjs" --port 0 --tls-cert "$WD_TMP/cert.pem" --tls-key "$WD_TMP/key.pem" \
  >"$out" 2>"$WD_TMP/azure.err" &
AZ_PID=$!
WD_PIDS+=("$AZ_PID")
for _ in $(seq 1 100); do grep -q '"port"' "$out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$out")
IMDS_PORT=$(sed -n 's/.*"imds_port":\([0-9]*\).*/\1/p' "$out")
if [ -n "$PORT" ] && [ -n "$IMDS_PORT" ]; then ok "fake_azure prints {\"port\",\"imds_port\"} once listening"; else
  fail "fake_azure did not start"; cat "$WD_TMP/azure.err" >&2; wd_finish; exit 1; fi
check "the API port is TLS under the test CA (curl verifies it)" \
  curl -sf --cacert "$WD_TMP/ca.pem" -o /dev/null "https://127.0.0.1:$PORT/_fake/stats"
check "the IMDS port is plain HTTP, as on Azure VMs" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Metadata: true' \
    "http://127.0.0.1:$IMDS_PORT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net")" = 200

set +e
(cd "$WD_ROOT/tests/cloud" && NODE_EXTRA_CA_CERTS="$WD_TMP/ca.pem" timeout -k 5 50 node azure_check.mjs "$PORT" "$IMDS_PORT" "$WD_TMP") \
  >"$WD_TMP/check.out" 2>&1
rc=$?
set -e
wd_check_lines "$WD_TMP/check.out"
[ "$rc" -eq 0 ] || { fail "azure_check exited $rc"; grep -v '^ok - ' "$WD_TMP/check.out" | head -30 >&2; }

# Without TLS IMDS shares the one port; bad arguments exit 2; SIGTERM exits 0.
wd_start_server PLAIN node "$WD_ROOT/tests/fakes/fake_azure.mjs" --port 0
check "without TLS IMDS answers on the API port" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Metadata: true' \
    "http://127.0.0.1:$PLAIN/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net")" = 200
kill "$WD_SERVER_PID"; st=0; wait "$WD_SERVER_PID" || st=$?
check "SIGTERM exits 0" test "$st" = 0
st=0; node "$WD_ROOT/tests/fakes/fake_azure.mjs" --bogus >/dev/null 2>&1 || st=$?
check "an unknown argument exits 2" test "$st" = 2
grep -q 'internal error' "$WD_TMP/azure.err" && fail "fake_azure logged an internal error" || ok "fake_azure logged no internal error"
wd_finish
