#!/usr/bin/env bash
# Credentials inside URLs (issue 14, item 4): a provider base_url or an OTLP endpoint with user:password@ would
# carry the password into the span attribute url.full and the start-up and export logs. Warden refuses them:
# `config check` and `serve` exit 1 naming the key and its line, and OTEL_EXPORTER_OTLP_ENDPOINT /
# OTEL_EXPORTER_OTLP_TRACES_ENDPOINT the same way naming the variable; the planted password reaches no output.
# A clean config then shows where the URL would have gone: url.full in the exported span, the endpoint in the log.
# Usage: bash tests/integration/test_url_credentials.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
for v in OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_HEADERS; do unset "$v"; done
export WD_URL_PW="pw-url-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export WARDEN_DEV_KEY="wk-url-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

wd_start_fake
OTLP_DIR="$WD_TMP/otlp"
mkdir -p "$OTLP_DIR"
node "$WD_ROOT/tests/fakes/fake_otlp.mjs" --port 0 --dir "$OTLP_DIR" >"$WD_TMP/otlp.out" 2>"$WD_TMP/otlp.err" &
WD_PIDS+=("$!")
for i in $(seq 1 200); do grep -q '"port"' "$WD_TMP/otlp.out" 2>/dev/null && break; sleep 0.05; done
OTLP_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$WD_TMP/otlp.out" | head -1)
OTLP_URL="http://127.0.0.1:$OTLP_PORT"

# no_pw FILE...: the planted password is in none of them
no_pw() { ! grep -qaF -- "$WD_URL_PW" "$@"; }
# refused NAME CONFIG KEY_AND_LINE: config check and serve both exit 1 naming "KEY (line N)", without the password
refused() {
  local name="$1" cfg="$2" want="$3" rc=0
  "$WARDEN_BIN" config check "$cfg" >"$WD_TMP/$name.check.out" 2>"$WD_TMP/$name.check.err" || rc=$?
  check "$name: config check exits 1" [ "$rc" = 1 ]
  check "$name: config check names $want" grep -qF "$want): must not contain user:password@" "$WD_TMP/$name.check.err"
  check "$name: config check never echoes the password" no_pw "$WD_TMP/$name.check.out" "$WD_TMP/$name.check.err"
  rc=0
  GEMINI_API_KEY=test-gemini-key timeout 20 "$WARDEN_BIN" serve --config "$cfg" \
    >"$WD_TMP/$name.serve.out" 2>"$WD_TMP/$name.serve.err" || rc=$?
  check "$name: serve refuses to start (exit 1) naming $want" \
    eval '[ "$rc" = 1 ] && grep -qF "$want)" "$WD_TMP/$name.serve.err"'
  check "$name: serve never echoes the password" no_pw "$WD_TMP/$name.serve.out" "$WD_TMP/$name.serve.err"
}

# ---- providers.<name>.base_url, the password interpolated as a careless file would (line 7)
PORT=$(wd_free_port)
cat >"$WD_TMP/base.yaml" <<YAML
listen: 127.0.0.1:$PORT
workers: 1
providers:
  gemini:
    type: gemini
    # the password interpolated from the environment
    base_url: http://wduser:\${WD_URL_PW}@127.0.0.1:$FAKE_PORT
    keys:
      - secret: env://GEMINI_API_KEY
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
YAML
refused base_url "$WD_TMP/base.yaml" "providers.gemini.base_url (line 7"

# ---- telemetry.otlp.endpoint (line 11), with the password written out
sed -e "s|base_url: .*|base_url: $FAKE_URL|" "$WD_TMP/base.yaml" >"$WD_TMP/otlp.yaml"
printf 'telemetry:\n  otlp:\n    endpoint: http://otel:%s@127.0.0.1:%s\n' "$WD_URL_PW" "$OTLP_PORT" >>"$WD_TMP/otlp.yaml"
line=$(grep -n 'endpoint:' "$WD_TMP/otlp.yaml" | cut -d: -f1)
refused otlp_endpoint "$WD_TMP/otlp.yaml" "telemetry.otlp.endpoint (line $line"

# ---- the OTEL_EXPORTER_OTLP_* variables: a clean file, the credential in the environment
sed -e "s|base_url: .*|base_url: $FAKE_URL|" "$WD_TMP/base.yaml" >"$WD_TMP/clean.yaml"
for var in OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; do
  rc=0
  env "$var=http://otel:$WD_URL_PW@127.0.0.1:$OTLP_PORT" GEMINI_API_KEY=test-gemini-key timeout 20 \
    "$WARDEN_BIN" serve --config "$WD_TMP/clean.yaml" >"$WD_TMP/$var.out" 2>"$WD_TMP/$var.err" || rc=$?
  check "$var with user:password@: serve exits 1 naming the variable" \
    eval '[ "$rc" = 1 ] && grep -qF "$var must not contain user:password@" "$WD_TMP/$var.err"'
  check "$var with user:password@: the password is in no output" no_pw "$WD_TMP/$var.out" "$WD_TMP/$var.err"
  check "$var with user:password@: no sanitizer report" \
    eval '! grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$WD_TMP/$var.err"'
done
check "no export reached the collector from a refused start" bash -c "! ls '$OTLP_DIR' | grep -q '^req-'"

# ---- where the URLs would have gone: a clean config exports url.full and logs the endpoint
cp "$WD_TMP/clean.yaml" "$WD_TMP/traced.yaml"
printf 'telemetry:\n  otlp:\n    endpoint: %s\n    protocol: http/json\n%s\n' "$OTLP_URL" "$(wd_metrics_yaml "  ")" \
  >>"$WD_TMP/traced.yaml"
wd_start_warden "$WD_TMP/traced.yaml"
code=$(curl -s -o "$WD_TMP/r.json" -w '%{http_code}' --max-time 30 "$WARDEN_URL/anthropic/v1/messages" \
  -H "x-api-key: $WARDEN_DEV_KEY" -H 'content-type: application/json' \
  -d '{"model":"claude-sonnet-4-5","max_tokens":32,"messages":[{"role":"user","content":"hi"}]}')
check "clean config: a call answers 200" [ "$code" = 200 ]
for i in $(seq 1 100); do grep -qs '"url.full"' "$OTLP_DIR"/req-*.json && break; sleep 0.1; done
check "clean config: the attempt span carries url.full with the provider URL (what a password would join)" \
  bash -c "grep -hoa '\"url.full\"[^}]*}' '$OTLP_DIR'/req-*.json | grep -qF '127.0.0.1:$FAKE_PORT/v1beta/models/'"
check "clean config: the start-up log names the OTLP endpoint (what a password would join)" \
  grep -qF "exporting traces to $OTLP_URL/v1/traces" "$WARDEN_LOG"
wd_stop_warden
check "the password is in no log, span or output of the whole run" \
  bash -c "! grep -rqaF -- '$WD_URL_PW' '$OTLP_DIR' '$WARDEN_LOG' '$WARDEN_LOG.out'"
wd_finish
