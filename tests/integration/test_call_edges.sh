#!/usr/bin/env bash
# Sequences in the call's lifecycle that once aborted the process (issue 15's review): a relayed stream whose event
# passes limits.max_response_bytes after the response was committed, and a ping falling due while the call waits
# out a backoff after a 200 whose stream held only an error. Each must end the one call cleanly and leave Warden up.
# Usage: bash tests/integration/test_call_edges.sh path/to/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

# config PROVIDER_TYPE BASE_URL EXTRA -> path
edge_config() {
  local f="$WD_TMP/edge.$RANDOM.yaml"
  cat >"$f" <<YAML
listen: 127.0.0.1:$(wd_free_port)
workers: 1
limits:
  max_response_bytes: 2KiB
providers:
  edge:
    type: $1
    base_url: $2
    keys:
      - secret: env://EDGE_KEY
models:
  aliases:
    m: edge/$3
${4:-}
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
YAML
  echo "$f"
}
WD_WARDEN_ENV=(EDGE_KEY=edge-key)
body='{"model":"m","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
post() {
  curl -sS --max-time 30 -o "$1" -w '%{http_code}' "$WARDEN_URL/anthropic/v1/messages" -H 'x-api-key: devkey' \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' -d "$body"
}

# 1. relay: an event over the limit after the commit
wd_start_server EP python3 "$WD_ROOT/tests/fakes/edge_provider.py" --mode anth-oversize
wd_start_warden "$(edge_config anthropic "http://127.0.0.1:$EP" claude-sonnet-4-5)"
code=$(post "$WD_TMP/a.out")
check "relay, event over max_response_bytes after the commit: the stream is 200 ($code)" [ "$code" = 200 ]
check "relay: it has the provider's message_start, then Warden's error event, not the oversized event" \
  bash -c 'grep -q "event: message_start" "$0" && grep -q "event: error" "$0" && ! grep -q xxxxxxxxxx "$0"' "$WD_TMP/a.out"
check "relay: Warden is still up (healthz)" [ "$(curl -s -o /dev/null -w '%{http_code}' "$WARDEN_URL/healthz")" = 200 ]
code=$(post "$WD_TMP/a2.out")
check "relay: the next call is served the same way ($code)" [ "$code" = 200 ]
wd_stop_warden

# 2. a ping due during a backoff (attempts_per_target 2, Retry-After 1 after a 9.3 s wait for the first answer)
wd_start_server GP python3 "$WD_ROOT/tests/fakes/edge_provider.py" --mode gem-slow-error
wd_start_warden "$(edge_config gemini "http://127.0.0.1:$GP" gemini-2.5-flash $'routing:\n  attempts_per_target: 2')"
t0=$(date +%s%N)
code=$(post "$WD_TMP/g.out")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "backoff: the call ends with the retry's 429 ($code after $ms ms), no ping committed a 200 before it" [ "$code" = 429 ]
check "backoff: the answer is one Anthropic error, nothing of a stream" \
  bash -c '! grep -q "event: ping" "$0" && grep -q rate_limit_error "$0"' "$WD_TMP/g.out"
posts=$(curl -s "http://127.0.0.1:$GP/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["posts"])')
check "backoff: the provider saw the first try and one retry ($posts)" [ "$posts" = 2 ]
check "backoff: Warden is still up (healthz)" [ "$(curl -s -o /dev/null -w '%{http_code}' "$WARDEN_URL/healthz")" = 200 ]
wd_stop_warden

wd_finish
