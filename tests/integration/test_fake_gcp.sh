#!/usr/bin/env bash
# Proves tests/fakes/fake_gcp.mjs speaks GCP Secret Manager's protocol: over TLS with a test CA, the official
# @google-cloud/secret-manager client (REST fallback) reads a secret through the metadata server, the token endpoint
# and a self-signed JWT, then tests/cloud/gcp_check.mjs checks the fake's rules on the raw protocol.
# $1 (the warden binary) is unused: this tests the fake Warden's GCP backend will be tested against.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
bash "$WD_ROOT/tests/cloud/setup.sh" >/dev/null

source "$WD_ROOT/tests/cloud/test_ca.sh"
wd_test_ca "$WD_TMP"

out="$WD_TMP/gcp.out"
node "$WD_ROOT/tests/fakes/fake_gcp.mjs" --port 0 --tls-cert "$WD_TMP/cert.pem" --tls-key "$WD_TMP/key.pem" \
  >"$out" 2>"$WD_TMP/gcp.err" &
GCP_PID=$!
WD_PIDS+=("$GCP_PID")
for _ in $(seq 1 100); do grep -q '"port"' "$out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$out")
MD_PORT=$(sed -n 's/.*"metadata_port":\([0-9]*\).*/\1/p' "$out")
if [ -n "$PORT" ] && [ -n "$MD_PORT" ]; then ok "fake_gcp prints {\"port\",\"metadata_port\"} once listening"; else
  fail "fake_gcp did not start"; cat "$WD_TMP/gcp.err" >&2; wd_finish; exit 1; fi
check "the API port is TLS under the test CA (curl verifies it)" \
  curl -sf --cacert "$WD_TMP/ca.pem" -o /dev/null "https://127.0.0.1:$PORT/_fake/stats"
check "the metadata port is plain HTTP, as on GCE" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Metadata-Flavor: Google' \
    "http://127.0.0.1:$MD_PORT/computeMetadata/v1/project/project-id")" = 200

set +e
(cd "$WD_ROOT/tests/cloud" && NODE_EXTRA_CA_CERTS="$WD_TMP/ca.pem" timeout -k 5 50 node gcp_check.mjs "$PORT" "$MD_PORT") \
  >"$WD_TMP/check.out" 2>&1
rc=$?
set -e
wd_check_lines "$WD_TMP/check.out"
[ "$rc" -eq 0 ] || { fail "gcp_check exited $rc"; grep -v '^ok - ' "$WD_TMP/check.out" | head -30 >&2; }

# Without TLS the metadata routes share the one port; bad arguments exit 2; SIGTERM exits 0.
wd_start_server PLAIN node "$WD_ROOT/tests/fakes/fake_gcp.mjs" --port 0
check "without TLS the metadata server answers on the API port" \
  test "$(curl -s -H 'Metadata-Flavor: Google' "http://127.0.0.1:$PLAIN/computeMetadata/v1/project/project-id")" = warden-test
kill "$WD_SERVER_PID"; st=0; wait "$WD_SERVER_PID" || st=$?
check "SIGTERM exits 0" test "$st" = 0
st=0; node "$WD_ROOT/tests/fakes/fake_gcp.mjs" --bogus >/dev/null 2>&1 || st=$?
check "an unknown argument exits 2" test "$st" = 2
grep -q 'internal error' "$WD_TMP/gcp.err" && fail "fake_gcp logged an internal error" || ok "fake_gcp logged no internal error"
wd_finish
