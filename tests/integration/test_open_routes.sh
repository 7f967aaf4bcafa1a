#!/usr/bin/env bash
# What answers without a key (issue 14, item 5): the model listing needs a client key like the model routes;
# /metrics (key names, token volumes, error rates) is never answered on the client listener, whatever the
# method, key or path spelling (/anthropic/../metrics, %2e%2e, //metrics, h2c); it has its own listener,
# telemetry.metrics.listen, on loopback by default, and `off` turns it off. Only /healthz, /readyz and
# /anthropic/api/hello answer without a key.
# Usage: bash tests/integration/test_open_routes.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
export WARDEN_DEV_KEY="wk-open-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

wd_start_fake
wd_start_warden "$(wd_config "$(wd_free_port)" "$FAKE_URL" "$(wd_metrics_yaml)")"
check "the metrics listener's address is logged" [ -n "$WARDEN_METRICS_URL" ]

# code METHOD PATH [curl args...] -> HTTP status; the body in $WD_TMP/body
code() {
  local m="$1" p="$2" how
  shift 2
  how=(-X "$m")
  [ "$m" = HEAD ] && how=(--head) # -X HEAD would wait for the body Content-Length announces
  curl -s --path-as-is -o "$WD_TMP/body" -w '%{http_code}' --max-time 10 "${how[@]}" "$@" "$WARDEN_URL$p" || true
}
auth_error() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if d.get("type") == "error" and d["error"]["type"] == "authentication_error" else 1)' "$WD_TMP/body"; }

# ---- GET /anthropic/v1/models
check "models, no key: 401" [ "$(code GET /anthropic/v1/models)" = 401 ]
check "models, no key: Anthropic's authentication_error shape" auth_error
check "models, no key: the tier map is not shown" bash -c "! grep -q gemini '$WD_TMP/body'"
check "models, wrong x-api-key: 401" [ "$(code GET /anthropic/v1/models -H 'x-api-key: wrong')" = 401 ]
check "models, wrong key: authentication_error, no tier map" eval 'auth_error && ! grep -q gemini "$WD_TMP/body"'
check "models, empty Bearer: 401" [ "$(code GET /anthropic/v1/models -H 'Authorization: Bearer ')" = 401 ]
check "models, the key as Basic credentials: 401" \
  [ "$(code GET /anthropic/v1/models -H "Authorization: Basic $WARDEN_DEV_KEY")" = 401 ]
check "models, x-api-key: 200 listing the tiers" \
  eval '[ "$(code GET /anthropic/v1/models -H "x-api-key: $WARDEN_DEV_KEY")" = 200 ] && grep -q "gemini/gemini-2.5-pro" "$WD_TMP/body"'
check "models, Bearer: 200 listing the aliases" \
  eval '[ "$(code GET /anthropic/v1/models -H "Authorization: Bearer $WARDEN_DEV_KEY")" = 200 ] && grep -q "\"fast\"" "$WD_TMP/body"'
check "the key is in no log line" bash -c "! grep -qF '$WARDEN_DEV_KEY' '$WARDEN_LOG' '$WARDEN_LOG.out'"

# ---- /metrics is not on the client listener
# no_exposition LABEL: every method, path spelling and key gets no exposition from the client listener
no_exposition() {
  local leaked="" m p k c
  for m in GET POST HEAD PUT DELETE; do
    for p in /metrics /metrics/ /metrics?x=1 //metrics /./metrics /anthropic/../metrics /anthropic/v1/../../metrics \
      /anthropic/%2e%2e/metrics /anthropic/%2E%2E/metrics /%6Detrics /anthropic/..%2fmetrics /x/../metrics; do
      for k in "" "$WARDEN_DEV_KEY"; do
        c=$(code "$m" "$p" ${k:+-H "x-api-key: $k"})
        if [ "$c" = 200 ] || grep -q 'warden_requests_total\|warden_build_info' "$WD_TMP/body"; then
          leaked="$leaked $m:$p:${k:+key}:$c"
        fi
      done
    done
  done
  check "$1: no method, path spelling or key gets the exposition from the client listener${leaked}" [ -z "$leaked" ]
}
no_exposition "metrics.listen set"
check "GET /metrics on the client listener: 404 not_found_error" \
  eval '[ "$(code GET /metrics)" = 404 ] && grep -q "\"not_found_error\"" "$WD_TMP/body"'
check "GET /anthropic/../metrics (raw): 404" [ "$(code GET /anthropic/../metrics)" = 404 ]
check "h2c, GET /metrics with the key: 404" \
  [ "$(code GET /metrics --http2-prior-knowledge -H "x-api-key: $WARDEN_DEV_KEY")" = 404 ]
# a raw request line curl would not send: absolute-form target and a dot segment after an encoded slash
raw=$(python3 - "${WARDEN_URL##*:}" <<'PY'
import socket, sys
out = []
for target in ("http://127.0.0.1/metrics", "/anthropic/..//metrics", "/anthropic/.%2e/metrics"):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    out.append(data.split(b" ", 2)[1].decode() + ("!" if b"warden_requests_total" in data else ""))
print(" ".join(out))
PY
)
check "raw request lines (absolute form, encoded dot segments): no exposition ($raw)" \
  bash -c "! grep -qE '200|!' <<<'$raw'"

# ---- ... it is on telemetry.metrics.listen
check "the metrics listener: GET /metrics 200 with the exposition" \
  bash -c "curl -s --max-time 10 '$WARDEN_METRICS_URL/metrics' | grep -q '^warden_build_info'"

# ---- what is open, as the README's route table says
check "open: GET /healthz 200" [ "$(code GET /healthz)" = 200 ]
check "open: GET /readyz 200" [ "$(code GET /readyz)" = 200 ]
check "open: HEAD /anthropic/api/hello 200" [ "$(code HEAD /anthropic/api/hello)" = 200 ]
check "open: GET /anthropic/api/hello says nothing (\"{}\")" \
  eval '[ "$(code GET /anthropic/api/hello)" = 200 ] && [ "$(cat "$WD_TMP/body")" = "{}" ]'
check "keyed: POST /anthropic/v1/messages without a key: 401" \
  [ "$(code POST /anthropic/v1/messages -H 'content-type: application/json' -d '{}')" = 401 ]
check "keyed: POST /anthropic/v1/messages/count_tokens without a key: 401" \
  [ "$(code POST /anthropic/v1/messages/count_tokens -H 'content-type: application/json' -d '{}')" = 401 ]
wd_stop_warden

# ---- the default: a loopback listener on 9464, best effort (another Warden on this host may hold the port)
wd_start_warden "$(wd_config "$(wd_free_port)" "$FAKE_URL")"
check "no telemetry section: metrics on 127.0.0.1:9464, or a warning that the default port is taken" \
  eval '[ "$WARDEN_METRICS_URL" = "http://127.0.0.1:9464" ] ||
        grep -q "\"level\":\"warn\",\"msg\":\"metrics not served: cannot listen on 127.0.0.1:9464" "$WARDEN_LOG"'
check "no telemetry section: the client listener answers /metrics with 404" [ "$(code GET /metrics)" = 404 ]
no_exposition "no telemetry section"
wd_stop_warden

# ---- listen: off
wd_start_warden "$(wd_config "$(wd_free_port)" "$FAKE_URL" "telemetry:
  metrics:
    listen: off")"
check "listen: off: logged, no metrics listener" \
  eval '[ -z "$WARDEN_METRICS_URL" ] && grep -q "\"msg\":\"metrics off (telemetry.metrics.listen: off)\"" "$WARDEN_LOG"'
check "listen: off: the client listener answers /metrics with 404" [ "$(code GET /metrics)" = 404 ]
wd_stop_warden
wd_finish
