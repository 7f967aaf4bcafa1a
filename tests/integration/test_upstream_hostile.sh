#!/usr/bin/env bash
# A hostile provider at the HTTP layer (tests/fakes/hostile_provider.py): an answer that never ends or
# announces 200 MiB is stopped at limits.max_response_bytes with a 502, at once; a redirect is a 502; and a
# provider that resets half of its connections after reading the request receives exactly as many requests
# as Warden counted (warden_upstream_attempts_total, the server span's warden.upstream.attempts): libcurl's
# silent re-send on a new connection is refused, and the re-send is Warden's one retry.
# Usage: bash tests/integration/test_upstream_hostile.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
HERE="$WD_ROOT/tests/integration"
A() { python3 "$HERE/wd_assert.py" "$@"; }
export WARDEN_DEV_KEY="wk-hostile-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

# start_hostile MODE VAR: starts a hostile provider; VAR gets its base URL
start_hostile() {
  local port
  wd_start_server port python3 "$WD_ROOT/tests/fakes/hostile_provider.py" --mode "$1"
  printf -v "$2" '%s' "http://127.0.0.1:$port"
}
start_hostile reset-half RESET_URL
start_hostile huge HUGE_URL
start_hostile huge-length HUGELEN_URL
start_hostile huge-error HUGEERR_URL
start_hostile redirect REDIR_URL
# the spans go to the OTLP fake as OTLP/JSON (no protoc needed)
OTLP_DIR="$WD_TMP/otlp"
mkdir -p "$OTLP_DIR"
wd_start_server OTLP_PORT node "$WD_ROOT/tests/fakes/fake_otlp.mjs" --port 0 --dir "$OTLP_DIR"

PORT=$(wd_free_port)
CFG="$WD_TMP/hostile.yaml"
provider() { # provider NAME URL
  printf '  %s:\n    type: gemini\n    base_url: %s\n    keys:\n      - secret: env://GEMINI_API_KEY\n' "$1" "$2"
  printf '    timeouts: {connect: 2s, first_byte: 10s, idle: 10s}\n'
}
{
  printf 'listen: 127.0.0.1:%s\nworkers: 2\n' "$PORT"
  printf 'limits:\n  max_response_bytes: 1MiB\n  request_timeout: 30s\n'
  printf 'providers:\n'
  provider reset "$RESET_URL"
  provider huge "$HUGE_URL"
  provider hugelen "$HUGELEN_URL"
  provider hugeerr "$HUGEERR_URL"
  provider redir "$REDIR_URL"
  printf 'models:\n  tiers:\n    sonnet: reset/gemini-2.5-flash\n  aliases:\n'
  printf '    m-huge: huge/gemini-2.5-flash\n    m-hugelen: hugelen/gemini-2.5-flash\n'
  printf '    m-hugeerr: hugeerr/gemini-2.5-flash\n    m-redir: redir/gemini-2.5-flash\n'
  printf 'auth:\n  keys:\n    - name: dev\n      secret: env://WARDEN_DEV_KEY\n'
  printf 'telemetry:\n  otlp:\n    endpoint: http://127.0.0.1:%s\n    protocol: http/json\n    sampling_ratio: 1.0\n' \
    "$OTLP_PORT"
  wd_metrics_yaml "  "
} >"$CFG"
wd_start_warden "$CFG"

OUT="$WD_TMP/out"
CODE=000
ELAPSED_MS=0
post() { # post MODEL STREAM -> $OUT, $CODE, $ELAPSED_MS
  local t0 t1
  printf '{"model":"%s","max_tokens":64,"stream":%s,"messages":[{"role":"user","content":"hi"}]}' "$1" "$2" \
    >"$WD_TMP/body.json"
  t0=$(date +%s%N)
  CODE=$(curl -sS -N -o "$OUT" -w '%{http_code}' --max-time 40 \
    -H "x-api-key: $WARDEN_DEV_KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary "@$WD_TMP/body.json" "$WARDEN_URL/anthropic/v1/messages" 2>"$OUT.err") || true
  t1=$(date +%s%N)
  ELAPSED_MS=$(((t1 - t0) / 1000000))
}
status_is() {
  [ "$CODE" = "$1" ] && return 0
  echo "  HTTP $CODE, want $1: $(head -c 300 "$OUT" 2>/dev/null)" >&2
  return 1
}
faster_than() {
  [ "$ELAPSED_MS" -lt "$1" ] && return 0
  echo "  took ${ELAPSED_MS} ms, want < $1 ms" >&2
  return 1
}
stat() { curl -sS --max-time 5 "$1/_stats" | python3 -c "import json,sys;print(json.load(sys.stdin)['$2'])"; }
# peer_left URL: the provider saw Warden close the connection under its endless answer (waits up to 5 s)
peer_left() {
  local i
  for i in $(seq 1 100); do
    [ "$(stat "$1" peer_left)" -ge 1 ] && return 0
    sleep 0.05
  done
  echo "  the provider is still sending (sent $(stat "$1" sent_bytes) bytes)" >&2
  return 1
}
sent_below() { # sent_below URL BYTES
  local n
  n=$(stat "$1" sent_bytes)
  [ "$n" -lt "$2" ] && return 0
  echo "  the provider sent $n body bytes, want < $2" >&2
  return 1
}

# ---- item 7: an answer over limits.max_response_bytes (1 MiB here) is stopped there
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$WARDEN_PID/status"; }
RSS0=$(status_kb VmRSS)
echo 5 >"/proc/$WARDEN_PID/clear_refs" 2>/dev/null || true # VmHWM from here on
post m-huge false
check "endless non-streamed answer: HTTP 502" status_is 502
check "endless non-streamed answer: Anthropic error naming the limit" \
  A error "$OUT" api_error --contains "limits.max_response_bytes"
check "endless non-streamed answer: answered in < 5 s (not at request_timeout)" faster_than 5000
check "endless non-streamed answer: Warden closed the provider connection" peer_left "$HUGE_URL"
# 1 MiB read, plus what loopback socket buffers hold: far below what 30 s of an endless body would be
check "endless non-streamed answer: the provider sent < 24 MiB" sent_below "$HUGE_URL" $((24 << 20))

post m-hugelen false
check "announced 200 MiB answer: HTTP 502 at once" eval 'status_is 502 && faster_than 5000'
check "announced 200 MiB answer: Anthropic error" A error "$OUT" api_error --contains "limits.max_response_bytes"
check "announced 200 MiB answer: Warden closed the provider connection" peer_left "$HUGELEN_URL"
check "announced 200 MiB answer: the provider sent < 24 MiB" sent_below "$HUGELEN_URL" $((24 << 20))

post m-hugeerr true
check "endless error body on a streamed request: HTTP 502 in < 5 s" eval 'status_is 502 && faster_than 5000'
check "endless error body: Anthropic error" A error "$OUT" api_error
check "endless error body: Warden closed the provider connection" peer_left "$HUGEERR_URL"

HWM=$(status_kb VmHWM)
echo "# Warden's RSS before the endless answers ${RSS0} KiB, peak during them ${HWM} KiB"
check "memory under endless answers: peak RSS at most 32 MiB over the RSS before (${RSS0} -> ${HWM} KiB)" \
  test $((HWM - RSS0)) -lt 32768

# ---- item 8: a redirect is the provider's answer being unusable: 502, never 500
post m-redir false
check "provider 302: HTTP 502" status_is 502
check "provider 302: Anthropic error naming the status" A error "$OUT" api_error --contains "HTTP 302"
post m-redir true
check "provider 302 (stream): HTTP 502" status_is 502
check "provider 302: the Location is not followed" [ "$(stat "$REDIR_URL" posts)" = 2 ]

# ---- item 12: every request the provider receives is one Warden counted
N=200
python3 - "$WARDEN_URL" "$WARDEN_DEV_KEY" "$N" "$WD_TMP/answers.json" <<'PY'
import http.client, json, sys, threading, urllib.parse
url, key, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
u = urllib.parse.urlsplit(url)
results, lock, todo = [], threading.Lock(), list(range(n))
def worker():
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    while True:
        with lock:
            if not todo:
                break
            i = todo.pop()
        stream = i % 2 == 1
        body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
                           "messages": [{"role": "user", "content": "hello %d" % i}]})
        try:
            conn.request("POST", "/anthropic/v1/messages", body, {"x-api-key": key, "content-type": "application/json",
                                                                   "anthropic-version": "2023-06-01"})
            r = conn.getresponse()
            data = r.read().decode("utf-8", "replace")
            status = r.status
        except Exception as e:
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            status, data = 0, repr(e)
        with lock:
            results.append({"i": i, "stream": stream, "status": status, "body": data})
ts = [threading.Thread(target=worker) for _ in range(8)]
for t in ts: t.start()
for t in ts: t.join()
json.dump(results, open(out, "w"))
PY
# each answer is right: a 200 with the provider's text, or a 502 in the Anthropic error shape
answers_ok() {
  python3 - "$1" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
bad, ok, failed = [], 0, 0
for r in res:
    if r["status"] == 200:
        good = ("hello there" in r["body"]) and (("message_stop" in r["body"]) if r["stream"] else
                                                 json.loads(r["body"]).get("type") == "message")
        ok += good
        if not good: bad.append(r)
    elif r["status"] == 502:
        j = json.loads(r["body"])
        if j.get("type") != "error" or j["error"].get("type") != "api_error": bad.append(r)
        failed += 1
    else:
        bad.append(r)
print(f"  {ok} answered, {failed} failed with 502, {len(bad)} wrong", file=sys.stderr)
for r in bad[:3]: print("  wrong:", r["status"], r["body"][:200], file=sys.stderr)
sys.exit(1 if bad or ok < len(res) // 4 else 0)
PY
}
check "reset-half: $N answers, each a 200 with the text or a 502 error (at least a quarter 200)" \
  answers_ok "$WD_TMP/answers.json"
msum() { # msum FILE PREFIX: the sum of the samples whose line starts with PREFIX
  awk -v p="$2" 'index($0, p) == 1 { s += $NF } END { printf "%d\n", s }' "$1"
}
curl -sS --max-time 10 -o "$WD_TMP/metrics" "$WARDEN_METRICS_URL/metrics"
ATTEMPTS=$(msum "$WD_TMP/metrics" 'warden_upstream_attempts_total{provider="reset"')
RETRIES=$(msum "$WD_TMP/metrics" 'warden_upstream_retries_total{provider="reset"')
POSTS=$(stat "$RESET_URL" posts)
RESETS=$(stat "$RESET_URL" resets)
echo "  provider: $POSTS requests, $RESETS reset; Warden: $ATTEMPTS attempts, $RETRIES retries"
check "reset-half: the provider received exactly the attempts Warden counted ($POSTS = $ATTEMPTS)" \
  [ "$POSTS" = "$ATTEMPTS" ]
check "reset-half: Warden retried reset requests itself (retries > 0, <= $N)" \
  eval '[ "$RETRIES" -gt 0 ] && [ "$RETRIES" -le "$N" ]'
check "reset-half: at most one retry per request ($POSTS <= 2 x $N)" [ "$POSTS" -le $((2 * N)) ]
# the same count in the traces: one client span per attempt, and the server spans' warden.upstream.attempts
spans_ok() {
  local i
  for i in $(seq 1 75); do
    python3 "$HERE/otlp_spans.py" collect "$OTLP_DIR" /nonexistent >/dev/null 2>&1 || true
    python3 - "$OTLP_DIR/spans.json" "$N" "$POSTS" <<'PY' 2>"$WD_TMP/spans.err" && return 0
import json, sys
spans, n, posts = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
server = [s for s in spans if s["kind"] == 2 and s["attributes"].get("gen_ai.request.model") == "claude-sonnet-4-5"]
client = [s for s in spans if s["kind"] == 3 and s["attributes"].get("warden.provider") == "reset"]
att = sum(int(s["attributes"].get("warden.upstream.attempts", 0)) for s in server)
print(f"  {len(server)} server spans with {att} attempts, {len(client)} client spans; provider: {posts}", file=sys.stderr)
sys.exit(0 if len(server) == n and att == posts and len(client) == posts else 1)
PY
    sleep 0.2
  done
  cat "$WD_TMP/spans.err" >&2
  return 1
}
check "reset-half: the spans count the same attempts (client spans, warden.upstream.attempts)" spans_ok
check "the provider key never reached the log" eval '! grep -q test-gemini-key "$WARDEN_LOG"'

wd_stop_warden
wd_finish
