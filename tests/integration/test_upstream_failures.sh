#!/usr/bin/env bash
# Upstream failure paths through Warden: every provider error, timeout, broken or stalled stream and odd finish
# reason reaches the client as the Anthropic API would say it, Warden stays up, the provider key never leaks,
# a client that hangs up cancels the upstream transfer, and a missing credential makes Warden unready (503).
# Usage: bash tests/integration/test_upstream_failures.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
HERE="$WD_ROOT/tests/integration"
A() { python3 "$HERE/wd_assert.py" "$@"; }

# Distinctive secrets, so that "never leaks" checks mean something.
PROVIDER_KEY="gk-upstream-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export GEMINI_API_KEY="$PROVIDER_KEY"
export WARDEN_DEV_KEY="wk-client-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

wd_start_fake --key "$PROVIDER_KEY"
PORT=$(wd_free_port)
DOWN_PORT=$(wd_free_port) # nothing listens there
CFG="$WD_TMP/upstream_failures.yaml"
# "gemini" has short timeouts for the timeout cases; "patient" (same fake) has long ones, so that the
# client-disconnect case proves the cancel came from the client going away, not from a timeout; "down"
# points at a port nobody listens on.
cat >"$CFG" <<YAML
listen: 127.0.0.1:$PORT
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: env://GEMINI_API_KEY
    timeouts: {connect: 2s, first_byte: 1s, idle: 1s}
  patient:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: env://GEMINI_API_KEY
    timeouts: {connect: 2s, first_byte: 30s, idle: 30s}
  down:
    type: gemini
    base_url: http://127.0.0.1:$DOWN_PORT
    keys:
      - secret: env://GEMINI_API_KEY
    timeouts: {connect: 2s, first_byte: 1s, idle: 1s}
models:
  tiers:
    opus: gemini/gemini-2.5-pro
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite
  aliases:
    patient: patient/gemini-2.5-flash
    down: down/gemini-2.5-flash
    ghost: gemini/ghost-model-9
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
YAML
wd_start_warden "$CFG"

body() { # body FILE STREAM [MODEL]
  printf '{"model":"%s","max_tokens":256,"stream":%s,"messages":[{"role":"user","content":"hello from the failure tests"}]}' \
    "${3:-claude-sonnet-4-5}" "$2" >"$1"
}
body "$WD_TMP/plain.json" false
body "$WD_TMP/stream.json" true
body "$WD_TMP/patient_stream.json" true patient
body "$WD_TMP/down.json" false down
body "$WD_TMP/ghost.json" false ghost

OUT="$WD_TMP/out"
CODE=000
ELAPSED_MS=0
# post BODY_FILE [curl args...]: POST /anthropic/v1/messages -> $OUT (body), $OUT.h (headers), $CODE, $ELAPSED_MS
post() {
  local f="$1" t0 t1
  shift
  : >"$OUT"
  t0=$(date +%s%N)
  CODE=$(curl -sS -N -o "$OUT" -D "$OUT.h" -w '%{http_code}' --max-time 20 \
    -H "x-api-key: $WARDEN_DEV_KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    "$@" --data-binary "@$f" "$WARDEN_URL/anthropic/v1/messages" 2>"$OUT.err") || true
  t1=$(date +%s%N)
  ELAPSED_MS=$(((t1 - t0) / 1000000))
}
# fault 'JSON fault objects...': a clean fake (log, stats, faults) with this fault queue
fault() {
  curl -sS --max-time 5 -o /dev/null -X POST "$FAKE_URL/_fake/reset"
  curl -sS --max-time 5 -o /dev/null --fail-with-body "$FAKE_URL/_fake/script" \
    -d "{\"mode\":\"faults\",\"faults\":[$1]}" || echo "could not script the fake: $1" >&2
}
fake_stat() { curl -sS --max-time 5 "$FAKE_URL/_fake/stats" | python3 -c "import json,sys;print(json.load(sys.stdin)['$1'])"; }
status_is() {
  [ "$CODE" = "$1" ] && return 0
  echo "  HTTP $CODE, want $1: $(head -c 400 "$OUT" 2>/dev/null)" >&2
  return 1
}
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$WARDEN_URL/healthz")" = 200 ]; }
faster_than() {
  [ "$ELAPSED_MS" -lt "$1" ] && return 0
  echo "  took ${ELAPSED_MS} ms, want < $1 ms" >&2
  return 1
}
header_is() { # header_is NAME VALUE: the response header NAME is exactly VALUE
  grep -qiE "^$1: *$2"$'\r?$' "$OUT.h" && return 0
  echo "  no '$1: $2' header in: $(tr '\r\n' '  ' <"$OUT.h")" >&2
  return 1
}

# error_case NAME FAULT WANT_HTTP WANT_TYPE [wd_assert error options...] (non-streaming)
error_case() {
  local name="$1" f="$2" want="$3" type="$4"
  shift 4
  fault "$f"
  post "$WD_TMP/plain.json"
  check "$name: HTTP $want" status_is "$want"
  check "$name: Anthropic error shape, type $type" A error "$OUT" "$type" --not-contains "$PROVIDER_KEY" "$@"
  check "$name: Warden still healthy" healthy
}

# ---- upstream HTTP errors (non-streaming and streaming: nothing was committed yet, so both are HTTP errors)
error_case "upstream 400" '{"status":400}' 400 invalid_request_error
error_case "upstream 401" '{"status":401}' 500 api_error
error_case "upstream 403" '{"status":403}' 500 api_error
error_case "upstream 429" '{"status":429,"retry_after":7}' 429 rate_limit_error
check "upstream 429: retry-after: 7 passed on" header_is retry-after 7
error_case "upstream 500" '{"status":500}' 500 api_error
error_case "upstream 503" '{"status":503}' 529 overloaded_error

fault '{"status":429,"retry_after":7}'
post "$WD_TMP/stream.json"
check "upstream 429 (stream): HTTP 429" status_is 429
check "upstream 429 (stream): rate_limit_error" A error "$OUT" rate_limit_error
check "upstream 429 (stream): retry-after: 7" header_is retry-after 7

fault '{"status":503}'
post "$WD_TMP/stream.json"
check "upstream 503 (stream): HTTP 529 overloaded_error" eval 'status_is 529 && A error "$OUT" overloaded_error'

# ---- provider unreachable, and a model the provider does not know
fault ''
post "$WD_TMP/down.json"
check "provider unreachable (connection refused): HTTP 502 api_error" eval 'status_is 502 && A error "$OUT" api_error'
check "provider unreachable: answered at once" faster_than 2000
post "$WD_TMP/ghost.json"
check "provider 404 for an unknown provider model: HTTP 404 not_found_error" \
  eval 'status_is 404 && A error "$OUT" not_found_error'
check "unreachable/unknown: Warden still healthy" healthy

# ---- slow first byte: the fake waits 3 s before its status line; first_byte is 1 s
error_case "slow first byte" '{"delay_headers_ms":3000}' 504 -
check "slow first byte: answered by the 1 s timeout, not after the fake's 3 s" faster_than 2800
fault '{"delay_headers_ms":3000}'
post "$WD_TMP/stream.json"
check "slow first byte (stream): HTTP 504 in Anthropic shape" eval 'status_is 504 && A error "$OUT" -'
check "slow first byte (stream): within the timeout" faster_than 2800
check "slow first byte: Warden still healthy" healthy

# ---- streams that break after the response was committed
fault '{"cut_after_chunks":2}'
post "$WD_TMP/stream.json"
check "cut mid-stream: HTTP 200" status_is 200
check "cut mid-stream: ends with event: error, no message_stop" A sse "$OUT" --error
check "cut mid-stream: Warden still healthy" healthy

fault '{"malformed_chunk_at":1}'
post "$WD_TMP/stream.json"
check "malformed chunk: HTTP 200" status_is 200
check "malformed chunk: ends with event: error, no message_stop" A sse "$OUT" --error
check "malformed chunk: Warden still healthy" healthy

fault '{"stall_after_chunks":1,"ms":3000}'
post "$WD_TMP/stream.json"
check "stall past idle timeout: HTTP 200" status_is 200
check "stall past idle timeout: ends with event: error, no message_stop" A sse "$OUT" --error
check "stall past idle timeout: cut by the 1 s idle timeout, not after the fake's 3 s" faster_than 2800
check "stall past idle timeout: Warden still healthy" healthy

# non-streaming bodies that break
fault '{"cut_after_chunks":1}'
post "$WD_TMP/plain.json"
check "cut body (non-stream): 5xx in Anthropic shape" eval '[[ "$CODE" == 5* ]] && A error "$OUT" -'
fault '{"malformed_chunk_at":0}'
post "$WD_TMP/plain.json"
check "malformed body (non-stream): 5xx in Anthropic shape" eval '[[ "$CODE" == 5* ]] && A error "$OUT" -'
fault '{"stall_after_chunks":1,"ms":3000}'
post "$WD_TMP/plain.json"
check "stalled body past idle timeout (non-stream): 504 in Anthropic shape" eval 'status_is 504 && A error "$OUT" -'
check "stalled body (non-stream): cut by the 1 s idle timeout" faster_than 2800
check "broken bodies: Warden still healthy" healthy

# ---- finish reasons
fault '{"finish_reason":"MAX_TOKENS"}'
post "$WD_TMP/plain.json"
check "MAX_TOKENS: HTTP 200, stop_reason max_tokens" eval 'status_is 200 && A message "$OUT" --stop-reason max_tokens'
fault '{"finish_reason":"MAX_TOKENS"}'
post "$WD_TMP/stream.json"
check "MAX_TOKENS (stream): message_stop, stop_reason max_tokens" eval 'status_is 200 && A sse "$OUT" --complete --stop-reason max_tokens'

fault '{"finish_reason":"SAFETY"}'
post "$WD_TMP/plain.json"
check "SAFETY: HTTP 200, stop_reason refusal" eval 'status_is 200 && A message "$OUT" --stop-reason refusal'
fault '{"finish_reason":"SAFETY"}'
post "$WD_TMP/stream.json"
check "SAFETY (stream): message_stop, stop_reason refusal" eval 'status_is 200 && A sse "$OUT" --complete --stop-reason refusal'

fault '{"finish_reason":"MALFORMED_FUNCTION_CALL"}'
post "$WD_TMP/plain.json"
check "MALFORMED_FUNCTION_CALL once: retried, HTTP 200 end_turn" eval 'status_is 200 && A message "$OUT" --stop-reason end_turn'
check "MALFORMED_FUNCTION_CALL once: the fake saw exactly 2 requests" eval '[ "$(fake_stat requests)" = 2 ]'
fault '{"finish_reason":"MALFORMED_FUNCTION_CALL"}'
post "$WD_TMP/stream.json"
check "MALFORMED_FUNCTION_CALL once (stream): retried, message_stop end_turn" eval 'status_is 200 && A sse "$OUT" --complete --stop-reason end_turn'
check "MALFORMED_FUNCTION_CALL once (stream): the fake saw exactly 2 requests" eval '[ "$(fake_stat requests)" = 2 ]'

fault '{"finish_reason":"MALFORMED_FUNCTION_CALL"},{"finish_reason":"MALFORMED_FUNCTION_CALL"}'
post "$WD_TMP/plain.json"
check "MALFORMED_FUNCTION_CALL twice: HTTP 500 api_error" eval 'status_is 500 && A error "$OUT" api_error'
check "MALFORMED_FUNCTION_CALL twice: retried once only (2 requests)" eval '[ "$(fake_stat requests)" = 2 ]'
fault '{"finish_reason":"MALFORMED_FUNCTION_CALL"},{"finish_reason":"MALFORMED_FUNCTION_CALL"}'
post "$WD_TMP/stream.json"
# Before anything is committed Warden may answer a plain HTTP 500; once committed, an error event. Never end_turn.
check "MALFORMED_FUNCTION_CALL twice (stream): event: error (or HTTP 500 api_error), never end_turn" \
  eval 'if [ "$CODE" = 200 ]; then A sse "$OUT" --error; else status_is 500 && A error "$OUT" api_error; fi'
check "MALFORMED_FUNCTION_CALL twice (stream): never end_turn" eval '! grep -q end_turn "$OUT"'
check "finish reasons: Warden still healthy" healthy

# ---- a client that goes away mid-stream cancels the upstream transfer (via "patient": no timeout helps)
aborted_within() { # aborted_within SECONDS: the fake's aborted_streams reaches 1
  local i
  for i in $(seq 1 $(($1 * 10))); do
    [ "$(fake_stat aborted_streams)" -ge 1 ] && return 0
    sleep 0.1
  done
  echo "  aborted_streams is $(fake_stat aborted_streams) after $1 s; stats: $(curl -s --max-time 3 "$FAKE_URL/_fake/stats")" >&2
  return 1
}
fault '{"stall_after_chunks":1,"ms":5000}'
check "HTTP/1.1 client hangs up mid-stream: it got the start of the stream" \
  A hangup "$WARDEN_URL/anthropic/v1/messages" "$WD_TMP/patient_stream.json" --read-bytes 1 \
  --header "x-api-key: $WARDEN_DEV_KEY" --header 'anthropic-version: 2023-06-01'
check "HTTP/1.1 client hangs up mid-stream: upstream stream aborted within 3 s" aborted_within 3
# let the previous upstream stream end, whichever way, before the stats are reset
for i in $(seq 1 60); do [ "$(fake_stat streams_in_flight)" = 0 ] && break; sleep 0.1; done
fault '{"stall_after_chunks":1,"ms":5000}'
post "$WD_TMP/patient_stream.json" --http2-prior-knowledge --max-time 1
check "h2c client times out mid-stream (curl --max-time 1): it got the start of the stream" \
  grep -q message_start "$OUT"
check "h2c client times out mid-stream: upstream stream aborted within 3 s" aborted_within 3
check "client hang-ups: Warden still healthy" healthy

# no upstream stream outlives the tests above once the fake is done with them
sleep 0.5
check "no upstream streams left in flight" eval '[ "$(fake_stat streams_in_flight)" = 0 ]'

wd_stop_warden
check "Warden's log never contains the provider key or the client key" \
  eval '! grep -qF -e "$PROVIDER_KEY" -e "$WARDEN_DEV_KEY" "$WARDEN_LOG" "$WARDEN_LOG.out"'

# ---- missing provider credential: Warden starts, says it is not ready, and names the reference, not a secret
export GEMINI_API_KEY=""
CFG2=$(wd_config "$(wd_free_port)" "$FAKE_URL")
wd_start_warden "$CFG2"
export GEMINI_API_KEY="$PROVIDER_KEY"
CODE=$(curl -sS -o "$OUT" -w '%{http_code}' --max-time 5 "$WARDEN_URL/readyz" || true)
check "no credential: /readyz is 503" status_is 503
check "no credential: /readyz names env://GEMINI_API_KEY" grep -qF 'env://GEMINI_API_KEY' "$OUT"
check "no credential: /healthz is still 200" healthy
fault ''
post "$WD_TMP/plain.json"
check "no credential: messages -> HTTP 503" status_is 503
check "no credential: Anthropic error naming env://GEMINI_API_KEY, no secret" \
  A error "$OUT" - --contains 'env://GEMINI_API_KEY' --not-contains "$PROVIDER_KEY" --not-contains "$WARDEN_DEV_KEY"
check "no credential: nothing was sent upstream" eval '[ "$(fake_stat requests)" = 0 ]'
post "$WD_TMP/stream.json"
check "no credential (stream): HTTP 503 naming env://GEMINI_API_KEY" \
  eval 'status_is 503 && A error "$OUT" - --contains env://GEMINI_API_KEY'
wd_stop_warden

wd_finish
