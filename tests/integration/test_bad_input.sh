#!/usr/bin/env bash
# Bad client input to Warden's Anthropic routes: every malformed, oversized, badly encoded or unauthenticated
# request gets the Anthropic error shape with the right status and names the offending field, and Warden stays
# healthy after each. Also the probe routes, h2c (prior knowledge and Upgrade) and 20 concurrent streams.
# Usage: bash tests/integration/test_bad_input.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
HERE="$WD_ROOT/tests/integration"
A() { python3 "$HERE/wd_assert.py" "$@"; }

export WARDEN_DEV_KEY="wk-badinput-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
wd_start_fake
CFG=$(wd_config "$(wd_free_port)" "$FAKE_URL" "limits: {max_body_bytes: 1MiB}")
wd_start_warden "$CFG"
MSG="$WARDEN_URL/anthropic/v1/messages"
AUTH=(-H "x-api-key: $WARDEN_DEV_KEY")
COMMON=(-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json')

OUT="$WD_TMP/out"
CODE=000
# post BODY_FILE [curl args...] -> $OUT, $OUT.h, $CODE (status), $VER (HTTP version)
post() {
  local f="$1" r
  shift
  : >"$OUT"
  r=$(curl -sS -N -o "$OUT" -D "$OUT.h" -w '%{http_code} %{http_version}' --max-time 20 "${COMMON[@]}" "$@" \
    --data-binary "@$f" "$MSG" 2>"$OUT.err") || true
  CODE=${r% *}
  VER=${r#* }
}
status_is() {
  [ "$CODE" = "$1" ] && return 0
  echo "  HTTP $CODE, want $1: $(head -c 400 "$OUT" 2>/dev/null) $(cat "$OUT.err" 2>/dev/null)" >&2
  return 1
}
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$WARDEN_URL/healthz")" = 200 ]; }

# bad NAME WANT_HTTP WANT_TYPE BODY_TEXT [wd_assert error options...]: posts BODY_TEXT with a valid key
bad() {
  local name="$1" want="$2" type="$3" text="$4"
  shift 4
  printf '%s' "$text" >"$WD_TMP/body.json"
  post "$WD_TMP/body.json" "${AUTH[@]}"
  check "$name: HTTP $want" status_is "$want"
  check "$name: Anthropic error, type $type" A error "$OUT" "$type" "$@"
  check "$name: Warden still healthy" healthy
}
V='"model":"claude-sonnet-4-5","max_tokens":64'
U='"messages":[{"role":"user","content":"hi"}]'

# ---- malformed bodies
bad "non-JSON body" 400 invalid_request_error 'this is not json {'
bad "truncated JSON" 400 invalid_request_error "{$V,$U"
bad "JSON array body" 400 invalid_request_error "[{$V,$U}]"
bad "max_tokens is a string" 400 invalid_request_error "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":\"x\",$U}" \
  --contains max_tokens
bad "messages is not an array" 400 invalid_request_error "{$V,\"messages\":{\"role\":\"user\",\"content\":\"hi\"}}" \
  --contains messages
bad "content block of unknown type" 400 invalid_request_error \
  "{$V,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"hologram\",\"text\":\"hi\"}]}]}" \
  --contains messages.0.content.0
bad "role robot" 400 invalid_request_error "{$V,\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}" \
  --contains messages.0.role
bad "missing model" 400 invalid_request_error "{\"max_tokens\":64,$U}" --contains model
bad "missing max_tokens" 400 invalid_request_error "{\"model\":\"claude-sonnet-4-5\",$U}" --contains max_tokens
bad "missing messages" 400 invalid_request_error "{$V}" --contains messages
bad "unknown top-level field" 400 invalid_request_error "{$V,$U,\"frobnicate_level\":3}" --contains frobnicate_level
bad "unknown model gpt-5" 404 not_found_error "{\"model\":\"gpt-5\",\"max_tokens\":64,$U}" --contains gpt-5
# values that must not reach the log through the reason of a 400 (checked at the end)
bad "max_tokens is a string holding a value" 400 invalid_request_error \
  "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":\"VALUE-7f3a9c\",$U}" --contains max_tokens
bad "content block of unknown type holding prompt text" 400 invalid_request_error \
  "{$V,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"hologram\",\"text\":\"PROMPT-4d2e81\"}]}]}" \
  --contains messages.0.content.0.type

# ---- lax input (issue 14 item 8): one reading for every parser, nothing odd echoed back
bad "model given twice (the last would have won)" 400 invalid_request_error \
  "{$V,$U,\"model\":\"gemini-2.5-flash-lite\"}" --contains "model: duplicate key"
bad "tool input with a key given twice" 400 invalid_request_error \
  "{$V,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Read\",\"input\":{\"file_path\":\"/a\",\"file_path\":\"/b\"}}]}]}" \
  --contains "messages.1.content.0.input.file_path: duplicate key"
bad "lone surrogate escape in a prompt" 400 invalid_request_error \
  "{$V,\"messages\":[{\"role\":\"user\",\"content\":\"cut \\ud83d here\"}]}" --contains "lone surrogate escape"
bad "NUL in the model name" 400 invalid_request_error \
  "{\"model\":\"claude-sonnet-4-5\\u0000evil\",\"max_tokens\":64,$U}" \
  --contains "model: control characters are not allowed in a name" --not-contains evil
check "NUL in the model name: no NUL escape in the answer" eval '! grep -qiF "\\u0000" "$OUT"'

# ---- sizes and encodings (limits.max_body_bytes is 1 MiB)
python3 - "$WD_TMP" <<'PY'
import gzip, json, sys
d = sys.argv[1]
ok = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hello gzip"}]}
open(f"{d}/ok.json", "w").write(json.dumps(ok))
open(f"{d}/ok.json.gz", "wb").write(gzip.compress(json.dumps(ok).encode()))
# 1.5 MiB of valid JSON: only its size is wrong
big = dict(ok, messages=[{"role": "user", "content": "x" * (3 * 512 * 1024)}])
open(f"{d}/big.json", "w").write(json.dumps(big))
huge = dict(ok, messages=[{"role": "user", "content": "x" * (3 * 1024 * 1024)}])
open(f"{d}/huge.json", "w").write(json.dumps(huge))
# a gzip bomb: 10 MiB of zeros (about 10 KB compressed), 10 times the limit once decoded
open(f"{d}/bomb.gz", "wb").write(gzip.compress(b"\0" * (10 * 1024 * 1024), 9))
# a big but valid body that fits when compressed and not when decoded
open(f"{d}/big.json.gz", "wb").write(gzip.compress(json.dumps(big).encode(), 9))
PY
post "$WD_TMP/big.json" "${AUTH[@]}"
check "1.5 MiB body over a 1 MiB limit: HTTP 413" status_is 413
check "1.5 MiB body: request_too_large in Anthropic shape" A error "$OUT" request_too_large
check "1.5 MiB body: Warden still healthy" healthy

post "$WD_TMP/big.json" "${AUTH[@]}" --http2-prior-knowledge
check "1.5 MiB body over h2c: HTTP 413 request_too_large" eval 'status_is 413 && A error "$OUT" request_too_large'
# Past twice the limit h2o itself refuses the body before Warden sees it (README, Errors): HTTP/1.1 gets a
# plain 413; libh2o 2.2.5 resets an HTTP/2 stream instead (REFUSED_STREAM), which no handler can change.
# Either way nothing reaches the provider and the process stays up.
post "$WD_TMP/huge.json" "${AUTH[@]}"
check "3 MiB body (over twice the limit), HTTP/1.1: HTTP 413" status_is 413
before=$(curl -s "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys;print(json.load(sys.stdin)["requests"])')
post "$WD_TMP/huge.json" "${AUTH[@]}" --http2-prior-knowledge --retry 0
check "3 MiB body (over twice the limit), h2c: refused by the HTTP layer (no 200)" test "$CODE" != 200
after=$(curl -s "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys;print(json.load(sys.stdin)["requests"])')
check "3 MiB body over h2c never reaches the provider" test "$before" = "$after"
check "oversized bodies: Warden still healthy" healthy

post "$WD_TMP/ok.json.gz" "${AUTH[@]}" -H 'content-encoding: gzip'
check "gzip-encoded valid request: HTTP 200" status_is 200
check "gzip-encoded valid request: a message" A message "$OUT" --stop-reason end_turn

post "$WD_TMP/bomb.gz" "${AUTH[@]}" -H 'content-encoding: gzip'
check "gzip bomb (10 MiB of zeros, $(stat -c %s "$WD_TMP/bomb.gz") bytes gzipped): HTTP 413" status_is 413
check "gzip bomb: request_too_large in Anthropic shape" A error "$OUT" request_too_large
check "gzip bomb: Warden still healthy" healthy

post "$WD_TMP/big.json.gz" "${AUTH[@]}" -H 'content-encoding: gzip'
check "gzip body that decodes to 1.5 MiB: HTTP 413 request_too_large" eval 'status_is 413 && A error "$OUT" request_too_large'

printf 'not gzip at all' >"$WD_TMP/notgz"
post "$WD_TMP/notgz" "${AUTH[@]}" -H 'content-encoding: gzip'
check "content-encoding gzip on a non-gzip body: HTTP 400 in Anthropic shape" \
  eval 'status_is 400 && A error "$OUT" invalid_request_error'
head -c 100 "$WD_TMP/ok.json.gz" >"$WD_TMP/trunc.gz"
post "$WD_TMP/trunc.gz" "${AUTH[@]}" -H 'content-encoding: gzip'
check "truncated gzip body: HTTP 400 in Anthropic shape" eval 'status_is 400 && A error "$OUT" invalid_request_error'

post "$WD_TMP/ok.json" "${AUTH[@]}" -H 'content-encoding: br'
check "content-encoding br: HTTP 415" status_is 415
check "content-encoding br: Anthropic error shape" A error "$OUT" -
check "encodings: Warden still healthy" healthy

# ---- authentication
post "$WD_TMP/ok.json"
check "no key: HTTP 401" status_is 401
check "no key: authentication_error" A error "$OUT" authentication_error
check "an error keeps the HTTP/1.1 connection: a 401 then a 200 on one connection" \
  bash -c 'curl -sv -o /dev/null "$1/anthropic/v1/messages" -H "content-type: application/json" --data-binary @"$2" \
    --next -o /dev/null "$1/anthropic/v1/messages" -H "content-type: application/json" -H "x-api-key: $3" --data-binary @"$2" 2>&1 |
    tr -d "\r" | grep -E "^< HTTP/1.1|Re-using existing connection|^< Connection:" | tr "\n" "|" |
    grep -q "^< HTTP/1.1 401 Unauthorized|< Connection: keep-alive|.*Re-using existing connection.*< HTTP/1.1 200 OK"' _ "$WARDEN_URL" "$WD_TMP/ok.json" "$WARDEN_DEV_KEY"
check "no key: the status line names the status (401 Unauthorized)" \
  bash -c 'curl -si -o - "$1/anthropic/v1/messages" -H "content-type: application/json" --data-binary @"$2" | head -1 | grep -q "^HTTP/1.1 401 Unauthorized"' _ "$WARDEN_URL" "$WD_TMP/ok.json"
post "$WD_TMP/ok.json" -H "x-api-key: wrong-$WARDEN_DEV_KEY"
check "wrong x-api-key: HTTP 401" status_is 401
check "wrong x-api-key: authentication_error, the key is not echoed" \
  A error "$OUT" authentication_error --not-contains "wrong-$WARDEN_DEV_KEY"
post "$WD_TMP/ok.json" -H "authorization: Bearer wrong-$WARDEN_DEV_KEY"
check "wrong bearer token: HTTP 401 authentication_error" eval 'status_is 401 && A error "$OUT" authentication_error'
post "$WD_TMP/ok.json" -H "authorization: Bearer $WARDEN_DEV_KEY"
check "Authorization: Bearer <key>: HTTP 200" status_is 200
check "Authorization: Bearer <key>: a message" A message "$OUT" --stop-reason end_turn
check "a non-streaming answer carries Content-Length (the size of its body), not chunks" \
  bash -c 'curl -s -D "$4" -o "$5" "$1/anthropic/v1/messages" -H "content-type: application/json" -H "x-api-key: $3" --data-binary @"$2" &&
    tr -d "\r" <"$4" | grep -qix "content-length: $(stat -c %s "$5")" && ! grep -qi "^transfer-encoding" "$4"' \
  _ "$WARDEN_URL" "$WD_TMP/ok.json" "$WARDEN_DEV_KEY" "$WD_TMP/cl.hdr" "$WD_TMP/cl.body"
post "$WD_TMP/ok.json" "${AUTH[@]}"
check "x-api-key: HTTP 200" status_is 200
check "auth cases: Warden still healthy" healthy

# ---- probe and listing routes
CODE=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -I "$WARDEN_URL/anthropic/api/hello" || true)
check "HEAD /anthropic/api/hello: 200" status_is 200
CODE=$(curl -sS -o "$OUT" -w '%{http_code}' --max-time 5 "${AUTH[@]}" "$WARDEN_URL/anthropic/v1/models" || true)
check "GET /anthropic/v1/models: 200" status_is 200
check "GET /anthropic/v1/models: JSON with a data array" A json "$OUT" data --type array
check "GET /anthropic/v1/models: entries have a string id" A json "$OUT" data.0.id --type string
CODE=$(curl -sS -o "$OUT" -w '%{http_code}' --max-time 5 "${AUTH[@]}" "$WARDEN_URL/anthropic/v1/nope" || true)
check "unknown route: 404 not_found_error" eval 'status_is 404 && A error "$OUT" not_found_error'

# ---- h2c: prior knowledge and Upgrade
printf '{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hello h2c"}]}' \
  >"$WD_TMP/stream.json"
for mode in --http2-prior-knowledge --http2; do
  r=$(curl -sS -o /dev/null -w '%{http_code} %{http_version}' --max-time 5 "$mode" "$WARDEN_URL/healthz" || true)
  check "h2c $mode: GET /healthz is 200 over HTTP/2 (got $r)" test "$r" = "200 2"
  post "$WD_TMP/stream.json" "${AUTH[@]}" "$mode"
  check "h2c $mode: streaming messages is 200 over HTTP/2 (got $CODE $VER)" test "$CODE $VER" = "200 2"
  check "h2c $mode: the stream ends with message_stop" A sse "$OUT" --complete --stop-reason end_turn
done

# ---- 20 concurrent streams, over HTTP/1.1 and over h2c
check "20 concurrent HTTP/1.1 streams all end with message_stop" \
  A concurrent "$MSG" "$WD_TMP/stream.json" 20 --timeout 30 --header "x-api-key: $WARDEN_DEV_KEY" \
  --header 'anthropic-version: 2023-06-01' --header 'content-type: application/json'
check "20 concurrent h2c streams all end with message_stop" \
  A concurrent "$MSG" "$WD_TMP/stream.json" 20 --timeout 30 --http2 --header "x-api-key: $WARDEN_DEV_KEY" \
  --header 'anthropic-version: 2023-06-01' --header 'content-type: application/json'
check "after concurrency: Warden still healthy" healthy

wd_stop_warden
check "Warden's log never contains the client key" eval '! grep -qF "$WARDEN_DEV_KEY" "$WARDEN_LOG" "$WARDEN_LOG.out"'
# Issue 14 item 16: the access line of a refused request says why (field path and rule), never a value.
access_reasons() {
  python3 - "$WARDEN_LOG" "$@" <<'PY'
import json, sys
log, want = sys.argv[1], sys.argv[2:]
reasons = []
for line in open(log, encoding="utf-8", errors="replace"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("msg") == "access" and e.get("status") == 400:
        reasons.append(e.get("reason"))
missing = [w for w in want if not any(r and r.startswith(w) for r in reasons)]
if missing or None in reasons:
    print("  400 access lines' reasons:", reasons, "missing:", missing, file=sys.stderr)
    sys.exit(1)
PY
}
check "every 400 access line has a reason, naming the field and the rule" access_reasons \
  "request body is not valid JSON: " "max_tokens: expected a positive integer" \
  "messages.0.role: expected user, assistant or system" "frobnicate_level: Extra inputs are not permitted" \
  "messages.0.content.0.type: unsupported content block type" "model: duplicate key" \
  "messages.1.content.0.input.file_path: duplicate key" "request body is not valid JSON: lone surrogate escape" \
  "model: control characters are not allowed in a name" "request body is not valid gzip"
check "the reasons carry no value or prompt text" \
  eval '! grep -qE "VALUE-7f3a9c|PROMPT-4d2e81|evil" "$WARDEN_LOG" "$WARDEN_LOG.out"'
wd_finish
