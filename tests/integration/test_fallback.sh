#!/usr/bin/env bash
# Fallback chains and retries through Warden against the strict fakes (Gemini, Anthropic): which failures move
# to the next target and which go to the client, same-target retries with their backoff and Retry-After, the
# per-worker retry budget, how attempts show in the audit record, the spans and /metrics, a SIGHUP that
# swaps a chain under a running request, and targets without a credential.
# Usage: bash tests/integration/test_fallback.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/pg.sh"

export GEMINI_API_KEY="gk-fallback-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export WARDEN_DEV_KEY="wk-fallback-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
ANTH_KEY="ak-fallback-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
WD_WARDEN_ENV=(ANTH_KEY="$ANTH_KEY")
unset FB_UNSET_GEMINI_KEY FB_UNSET_ANTH_KEY
T_START=$(date +%s%N)

wd_start_fake --key "$GEMINI_API_KEY"
GEM_URL="$FAKE_URL"
wd_start_server ANTH_PORT node "$WD_ROOT/tests/fakes/fake_anthropic.mjs" --port 0 --key "$ANTH_KEY"
ANTH_URL="http://127.0.0.1:$ANTH_PORT"
wd_start_server OTLP_PORT node "$WD_ROOT/tests/fakes/fake_otlp.mjs" --port 0 --dir "$WD_TMP/otlp"
OTLP_URL="http://127.0.0.1:$OTLP_PORT"
DOWN_PORT=$(wd_free_port) # nothing listens there: connection refused
# A Gemini-shaped provider whose whole answer has text but no finishReason: an incomplete 200, retryable,
# whose first blocks must not reach the client in front of the next target's answer.
PARTIAL_JS='
const http = require("http");
const s = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: "partial-provider text" }] }, index: 0 }],
      usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 2, totalTokenCount: 7 } }));
  });
});
s.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: s.address().port })));
process.on("SIGTERM", () => process.exit(0));'
wd_start_server PARTIAL_PORT node -e "$PARTIAL_JS"
wd_pg_start
wd_pg_setup_db

# ---- helpers ----------------------------------------------------------------------------------------------
OUT="$WD_TMP/out"
CODE=000
ELAPSED_MS=0
# post URL MODEL STREAM [curl args...]: one Messages call -> $OUT, $OUT.h, $CODE, $ELAPSED_MS
post() {
  local url="$1" model="$2" stream="$3" t0
  shift 3
  printf '{"model":"%s","max_tokens":128,"stream":%s,"messages":[{"role":"user","content":"hello fallback"}]}' \
    "$model" "$stream" >"$WD_TMP/body.json"
  : >"$OUT"
  t0=$(date +%s%N)
  CODE=$(curl -sS -N -o "$OUT" -D "$OUT.h" -w '%{http_code}' --max-time 30 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' "$@" \
    --data-binary "@$WD_TMP/body.json" "$url/anthropic/v1/messages" 2>"$OUT.err") || true
  ELAPSED_MS=$((($(date +%s%N) - t0) / 1000000))
}
# fakes_reset: both fakes clean (log, stats, faults)
fakes_reset() {
  curl -sS --max-time 5 -o /dev/null -X POST "$GEM_URL/_fake/reset"
  curl -sS --max-time 5 -o /dev/null -X POST "$ANTH_URL/_fake/reset"
}
# gem_faults 'FAULT,...' / anth_faults 'FAULT,...': the next requests' faults
gem_faults() {
  curl -sS --max-time 5 -o /dev/null --fail-with-body "$GEM_URL/_fake/script" -d "{\"mode\":\"faults\",\"faults\":[$1]}" ||
    echo "could not script fake Gemini: $1" >&2
}
anth_faults() {
  curl -sS --max-time 5 -o /dev/null --fail-with-body "$ANTH_URL/_fake/script" -d "{\"faults\":[$1]}" ||
    echo "could not script fake Anthropic: $1" >&2
}
# JSON checks in Python (no jq in the test dependencies): pj FILE EXPR is true when the Python expression EXPR
# over d (FILE's JSON, "-" for stdin) is; pv EXPR prints EXPR over d read from stdin
PJ='import json, sys
try:
    d = json.load(sys.stdin if sys.argv[1] == "-" else open(sys.argv[1]))
    ok = eval(sys.argv[2], {"d": d})
except Exception as e:
    d, ok = repr(e), False
if not ok:
    print("  not " + sys.argv[2] + ": " + json.dumps(d)[:600], file=sys.stderr)
sys.exit(0 if ok else 1)'
pj() { python3 -c "$PJ" "$@"; }
pv() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
gem_reqs() { curl -sS --max-time 5 "$GEM_URL/_fake/stats" | pv 'd["requests"]'; }
anth_reqs() { curl -sS --max-time 5 "$ANTH_URL/_fake/stats" | pv 'd["requests"]'; }
# seen G A: fake Gemini got G requests and fake Anthropic A
seen() {
  local g a
  g=$(gem_reqs) a=$(anth_reqs)
  [ "$g $a" = "$1 $2" ] && return 0
  echo "  requests seen: gemini $g, anthropic $a; want $1, $2" >&2
  return 1
}
code_is() {
  [ "$CODE" = "$1" ] && return 0
  echo "  HTTP $CODE, want $1: $(head -c 300 "$OUT")" >&2
  return 1
}
# the JSON answer is Anthropic's (the fake's echo), or Gemini's translated
from_anthropic() { pj "$OUT" 'd["type"] == "message" and d["content"][0]["text"].startswith("fake-anthropic:")'; }
from_gemini() { pj "$OUT" 'd["type"] == "message" and d["content"][0]["text"].startswith("fake-gemini:")'; }
# a complete SSE stream whose text came from the given fake
stream_from() {
  grep -q '^event: message_stop' "$OUT" && ! grep -q '^event: error' "$OUT" && grep -q "fake-$1" <<<"$(sse_text)" && return 0
  echo "  stream: $(head -c 400 "$OUT" | tr '\n' ' ')" >&2
  return 1
}
# the text of the stream's text deltas, joined
sse_text() {
  python3 -c 'import json, sys
out = []
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("data: "):
        try:
            e = json.loads(line[6:])
        except ValueError:
            continue
        if e.get("type") == "content_block_delta":
            out.append(e["delta"].get("text", ""))
print("".join(out), end="")' "$OUT"
}
# code_and STATUS EXPR: the answer has that HTTP status and EXPR holds for its JSON
code_and() { code_is "$1" && pj "$OUT" "$2"; }
error_type_is() { pj "$OUT" "d['type'] == 'error' and d['error']['type'] == '$1'"; }
faster_than() { [ "$ELAPSED_MS" -lt "$1" ] && return 0; echo "  took $ELAPSED_MS ms, want < $1" >&2; return 1; }
between() { [ "$ELAPSED_MS" -ge "$1" ] && [ "$ELAPSED_MS" -lt "$2" ] && return 0; echo "  took $ELAPSED_MS ms, want [$1, $2)" >&2; return 1; }
# gem_gaps: the gaps in ms between consecutive requests fake Gemini logged, space-separated
gem_gaps() { curl -sS --max-time 5 "$GEM_URL/_fake/requests" | pv '" ".join(str(b["ts"] - a["ts"]) for a, b in zip(d, d[1:]))'; }
# wait_log WARDEN_LOG TEXT N: until TEXT is in the log N times (5 s)
wait_log() {
  local i
  for i in $(seq 1 100); do
    [ "$(grep -c -- "$2" "$1" || true)" -ge "$3" ] && return 0
    sleep 0.05
  done
  echo "  '$2' not logged $3 times" >&2
  return 1
}

providers_yaml() { # the providers every Warden here has; gemini's first_byte is 2 s for the timeout case
  cat <<YAML
providers:
  gemini:
    type: gemini
    base_url: $GEM_URL
    keys:
      - secret: env://GEMINI_API_KEY
    timeouts: {connect: 2s, first_byte: 2s, idle: 10s}
  claude:
    type: anthropic
    base_url: $ANTH_URL
    keys:
      - secret: env://ANTH_KEY
  down:
    type: gemini
    base_url: http://127.0.0.1:$DOWN_PORT
    keys:
      - secret: env://GEMINI_API_KEY
  partial:
    type: gemini
    base_url: http://127.0.0.1:$PARTIAL_PORT
    keys:
      - secret: env://GEMINI_API_KEY
  nokey:
    type: gemini
    base_url: $GEM_URL
    keys:
      - secret: env://FB_UNSET_GEMINI_KEY
  nokey2:
    type: anthropic
    base_url: $ANTH_URL
    keys:
      - secret: env://FB_UNSET_ANTH_KEY
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
YAML
}

# ---- 3. the retry budget (Warden 3: retry_budget 0, retry_budget_min 2, one worker) --------------------------
# First, so that its 10 s windows have passed by the end, where the budget is checked again.
W3_CFG="$WD_TMP/w3.yaml"
cat >"$W3_CFG" <<YAML
listen: 127.0.0.1:$(wd_free_port)
workers: 1
$(providers_yaml)
models:
  tiers:
    sonnet: [gemini/gemini-2.5-flash, claude/claude-sonnet-4-5]
routing:
  retry_budget: 0
  retry_budget_min: 2
YAML
wd_start_warden "$W3_CFG"
W3="$WARDEN_URL" W3_PID=$WARDEN_PID W3_LOG=$WARDEN_LOG
fakes_reset; gem_faults '{"status":503},{"status":503},{"status":503}'
B=""
for i in 1 2 3; do
  post "$W3" claude-sonnet-4-5 false
  B="$B $CODE"
  [ "$i" = 3 ] && cp "$OUT" "$WD_TMP/budget3.json"
done
T_BUDGET=$(date +%s%N)
check "budget 0 + min 2, Gemini always 503: calls 1 and 2 fall back (200), call 3 gets 529 (got$B)" [ "$B" = " 200 200 529" ]
check "budget: call 3 has Gemini's 503 as Anthropic's overloaded_error" pj "$WD_TMP/budget3.json" 'd["error"]["type"] == "overloaded_error"'
check "budget: call 3 never reached the second target (Gemini 3, Anthropic 2)" seen 3 2

# ---- Warden 1: default routing (one try per target), audit, traces, metrics -------------------------------
W1_CFG="$WD_TMP/w1.yaml"
w1_config() { # w1_config OPUS_CHAIN
  cat >"$W1_CFG" <<YAML
listen: 127.0.0.1:$W1_PORT
workers: 1
$(providers_yaml)
models:
  tiers:
    sonnet: [gemini/gemini-2.5-flash, claude/claude-sonnet-4-5]
    opus: $1
  aliases:
    downchain: [down/gemini-2.5-flash, claude/claude-sonnet-4-5]
    nocred: [nokey/gemini-2.5-flash, claude/claude-sonnet-4-5]
    nocred_all: [nokey/gemini-2.5-flash, nokey2/claude-sonnet-4-5]
    obs: [gemini/gemini-2.5-flash, claude/claude-sonnet-4-5]
    partialchain: [partial/gemini-2.5-flash, gemini/gemini-2.5-flash]
routing:
  retry_budget: 1
  retry_budget_min: 1000
audit:
  database: $WD_DB_ADMIN_URL
  spool: $WD_TMP/spool
  batch_wait: 5ms
telemetry:
  otlp:
    endpoint: $OTLP_URL
    protocol: http/json
    sampling_ratio: 1.0
  metrics:
    listen: 127.0.0.1:$W1_METRICS_PORT
YAML
}
W1_PORT=$(wd_free_port)
W1_METRICS_PORT=$(wd_free_port)
w1_config "[gemini/gemini-2.5-pro, claude/claude-opus-4-5]"
wd_start_warden "$W1_CFG"
W1="$WARDEN_URL" W1_PID=$WARDEN_PID W1_LOG=$WARDEN_LOG

# ---- 1. what falls back and what does not --------------------------------------------------------------
fakes_reset; gem_faults '{"status":503}'
post "$W1" claude-sonnet-4-5 false
check "503 from Gemini, non-stream: the client gets 200" code_is 200
check "503 from Gemini, non-stream: the answer is Anthropic's" from_anthropic
check "503 from Gemini, non-stream: one request reached each fake" seen 1 1

fakes_reset; gem_faults '{"status":503}'
post "$W1" claude-sonnet-4-5 true
check "503 from Gemini, stream: the client gets 200" code_is 200
check "503 from Gemini, stream: a complete stream of Anthropic's text" stream_from anthropic
check "503 from Gemini, stream: one request reached each fake" seen 1 1

fakes_reset; gem_faults '{"status":429,"retry_after":30}'
post "$W1" claude-sonnet-4-5 false
check "429 Retry-After 30 (> max_retry_after): Anthropic's 200" from_anthropic
check "429 Retry-After 30: the next target at once (well under 30 s)" faster_than 3000
check "429 Retry-After 30: one request reached each fake" seen 1 1

fakes_reset; gem_faults '{"status":400}'
post "$W1" claude-sonnet-4-5 false
check "400 from Gemini: the client gets 400" code_is 400
check "400 from Gemini: invalid_request_error" error_type_is invalid_request_error
check "400 from Gemini: no fallback, Anthropic saw nothing" seen 1 0

fakes_reset
post "$W1" downchain false
check "connection refused on the first target: Anthropic's 200" from_anthropic
check "connection refused: Anthropic got the one request" seen 0 1

fakes_reset; gem_faults '{"delay_headers_ms":4000}'
post "$W1" claude-sonnet-4-5 false
check "first-byte timeout (2 s) on Gemini: Anthropic's 200" from_anthropic
check "first-byte timeout: the fallback came after the timeout, before Gemini's answer" between 1900 3900
check "first-byte timeout: one request reached each fake" seen 1 1

fakes_reset; gem_faults '{"cut_after_chunks":1}'
post "$W1" claude-sonnet-4-5 true
check "stream cut after the first chunk: the client already had 200" code_is 200
cut_stream() { # Gemini's first text, then an error event, and no message_stop
  local t
  t=$(sse_text)
  [[ "$t" == fake-* ]] && [ "$(grep '^event: ' "$OUT" | tail -1)" = "event: error" ] && ! grep -q '^event: message_stop' "$OUT" &&
    return 0
  echo "  text '$t', stream: $(head -c 600 "$OUT" | tr '\n' ' ')" >&2
  return 1
}
check "stream cut after the first chunk: Gemini's first text, then an error event as the last, no message_stop" cut_stream
check "stream cut after the first chunk: no retry, Anthropic saw nothing" seen 1 0

fakes_reset; gem_faults '{"cut_after_chunks":0}'
post "$W1" claude-sonnet-4-5 true
check "stream cut before its first chunk (an empty 200): Anthropic's complete stream" stream_from anthropic
check "stream cut before its first chunk: one request reached each fake" seen 1 1

fakes_reset; gem_faults '{"cut_after_chunks":1}'
post "$W1" claude-sonnet-4-5 false
check "non-stream answer cut halfway (nothing reached the client): Anthropic's 200" from_anthropic
check "non-stream answer cut halfway: one request reached each fake" seen 1 1

fakes_reset; gem_faults '{"malformed_chunk_at":0}'
post "$W1" claude-sonnet-4-5 true
check "malformed first stream chunk from Gemini (200): Anthropic's complete stream" stream_from anthropic
check "malformed first stream chunk: one request reached each fake" seen 1 1

fakes_reset
post "$W1" partialchain false
check "an incomplete 200 (text, no finishReason) from the first target, non-stream: 200 from the next target" code_is 200
check "an incomplete 200, then Gemini: the message is valid JSON with Gemini's one text block only" \
  pj "$OUT" 'd["content"] == [{"type": "text", "text": "fake-gemini: hello fallback"}]'

# ---- 6. credentials ----------------------------------------------------------------------------------
fakes_reset
post "$W1" nocred false
check "first target's env:// key unset: the call moves on, Anthropic's 200 (no 503)" from_anthropic
check "first target's key unset: Gemini saw nothing, Anthropic one request" seen 0 1
fakes_reset
post "$W1" nocred_all false
check "every target's key unset: 503" code_is 503
check "every target's key unset: the error names the reference" grep -q 'env://FB_UNSET_' "$OUT"
check "every target's key unset: no key value in the answer" \
  bash -c "! grep -qF -e '$GEMINI_API_KEY' -e '$ANTH_KEY' -e '$WARDEN_DEV_KEY' '$OUT' '$OUT.h'"
check "every target's key unset: no provider was called" seen 0 0

# ---- 4. attempts in the audit record, the spans and /metrics ------------------------------------------
fakes_reset; gem_faults '{"status":503}'
TID=$(openssl rand -hex 16)
post "$W1" obs false -H "traceparent: 00-$TID-$(openssl rand -hex 8)-01"
check "observed call: Anthropic's 200 after Gemini's 503" from_anthropic
q() { wd_psql postgres -At -c "$1"; }
DETAIL=""
for _ in $(seq 1 100); do
  DETAIL=$(q "SELECT detail FROM audit.records WHERE kind='call' AND model_requested='obs'" 2>/dev/null || true)
  [ -n "$DETAIL" ] && break
  sleep 0.05
done
echo "# audit detail: $DETAIL"
pj_detail() { pj - "$1" <<<"${DETAIL:-null}"; }
check "audit: the call record's detail counts 2 upstream attempts" pj_detail 'd["upstream_attempts"] == 2 and len(d["attempts"]) == 2'
check "audit: attempt 1 is gemini/gemini-2.5-flash, 503, http_error, next fallback" \
  pj_detail 'd["attempts"][0] == {"provider": "gemini", "model": "gemini-2.5-flash", "status": 503, "outcome": "http_error", "next": "fallback"}'
check "audit: attempt 2 is claude/claude-sonnet-4-5, 200, ok, no next" \
  pj_detail 'd["attempts"][1] == {"provider": "claude", "model": "claude-sonnet-4-5", "status": 200, "outcome": "ok"}'
check "audit: the record names the provider that answered" \
  [ "$(q "SELECT provider || ' ' || upstream_status FROM audit.records WHERE kind='call' AND model_requested='obs'")" = "claude 200" ]
RID=$(tr -d '\r' <"$OUT.h" | awk -F': ' 'tolower($1) == "request-id" {print $2}')
check "the answer's request-id ($RID) is the audit records' request_id" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND model_requested='obs' AND request_id='$RID'")" = 1 ]

# spans: every OTLP/JSON export of this trace, flattened to {name, kind, attrs}
spans_of() {
  python3 - "$WD_TMP/otlp" "$1" <<'PY'
import glob, json, sys
out = []
for f in sorted(glob.glob(sys.argv[1] + "/req-*.json")):
    if f.endswith(".headers.json"):
        continue
    for rs in json.load(open(f)).get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                if s.get("traceId", "").lower() != sys.argv[2]:
                    continue
                a = {}
                for kv in s.get("attributes", []):
                    v = kv["value"]
                    a[kv["key"]] = int(v["intValue"]) if "intValue" in v else next(iter(v.values()), None)
                out.append({"name": s["name"], "kind": s.get("kind"), "attrs": a, "start": int(s["startTimeUnixNano"])})
out.sort(key=lambda s: s["start"])
print(json.dumps(out))
PY
}
SPANS="[]"
for _ in $(seq 1 40); do
  SPANS=$(spans_of "$TID")
  pj - 'any(s["kind"] in (2, "SPAN_KIND_SERVER") for s in d)' <<<"$SPANS" 2>/dev/null && break
  sleep 0.1
done
pj_spans() { pj - "$1" <<<"$SPANS"; }
CHATS='[s["attrs"] for s in d if s["name"] == "chat"]'
check "trace: two chat spans" pj_spans "len($CHATS) == 2"
check "trace: chat 1: gemini, warden.attempt 1, outcome http_error, next fallback, status 503" \
  pj_spans "(lambda a: a['warden.provider'] == 'gemini' and a['warden.attempt'] == 1 and a['warden.attempt.outcome'] == 'http_error' and a['warden.attempt.next'] == 'fallback' and a['http.response.status_code'] == 503)($CHATS[0])"
check "trace: chat 2: claude, warden.attempt 2, outcome ok, no next" \
  pj_spans "(lambda a: a['warden.provider'] == 'claude' and a['warden.attempt'] == 2 and a['warden.attempt.outcome'] == 'ok' and 'warden.attempt.next' not in a)($CHATS[1])"
check "trace: the server span has warden.upstream.attempts 2 and warden.upstream.fallbacks 1" \
  pj_spans '(lambda a: a["warden.upstream.attempts"] == 2 and a["warden.upstream.fallbacks"] == 1)([s["attrs"] for s in d if s["name"].startswith("POST ")][0])'

METRICS=$(curl -sS --max-time 5 "http://127.0.0.1:$W1_METRICS_PORT/metrics")
FB_GEM=$(awk '/^warden_upstream_fallbacks_total\{provider="gemini"\}/ {printf "%d", $NF}' <<<"$METRICS")
check "metrics: warden_upstream_fallbacks_total{provider=\"gemini\"} is this run's 8 Gemini fallbacks (${FB_GEM:-none})" \
  [ "${FB_GEM:-0}" = 8 ]
ATT=$(grep -E '^warden_upstream_attempts_total\{' <<<"$METRICS" || true)
has_att() { grep -qE "provider=\"$1\".*outcome=\"$2\"" <<<"$ATT" || { echo "  no $1/$2 in: $ATT" >&2; return 1; }; }
check "metrics: attempts_total has gemini http_error" has_att gemini http_error
check "metrics: attempts_total has gemini timeout" has_att gemini timeout
check "metrics: attempts_total has gemini ok" has_att gemini ok
check "metrics: attempts_total has claude ok" has_att claude ok
check "metrics: attempts_total has the down provider's transport_error" has_att down transport_error

echo "# phase 1 done at $((($(date +%s%N) - T_START) / 1000000)) ms"
# ---- 5. SIGHUP swaps chains; a call under way keeps its plan ----------------------------------------------
fakes_reset
post "$W1" claude-opus-4-5 false
check "before the reload, the opus tier's first target is Gemini" from_gemini
fakes_reset; gem_faults '{"delay_headers_ms":1200}'
curl -sS -o "$WD_TMP/inflight.json" -w '%{http_code}' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
  -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
  -d '{"model":"claude-opus-4-5","max_tokens":64,"messages":[{"role":"user","content":"before the reload"}]}' \
  "$W1/anthropic/v1/messages" >"$WD_TMP/inflight.code" 2>/dev/null &
INFLIGHT=$!
WD_PIDS+=("$INFLIGHT")
sleep 0.3
w1_config "[claude/claude-opus-4-5, gemini/gemini-2.5-pro]"
kill -HUP "$W1_PID"
check "SIGHUP: the config reloaded" wait_log "$W1_LOG" "config reloaded from" 1
check "the call that started before the reload is still under way" kill -0 "$INFLIGHT"
sleep 0.1
post "$W1" claude-opus-4-5 false
check "after the reload, the next call goes to the new first target (Anthropic)" from_anthropic
wait "$INFLIGHT" || true
inflight_ok() {
  [ "$(cat "$WD_TMP/inflight.code")" = 200 ] && pj "$WD_TMP/inflight.json" 'd["content"][0]["text"].startswith("fake-gemini:")'
}
check "after the reload, Gemini saw the call under way only" [ "$(gem_reqs)" = 1 ]
check "the call that started before the reload finished on its plan: 200 from Gemini" \
  inflight_ok
fakes_reset; anth_faults '{"status":529}'
post "$W1" claude-opus-4-5 false
check "the new chain falls back the other way: Anthropic 529 -> Gemini's 200" from_gemini
check "the new chain: one request reached each fake" seen 1 1

# the relayed family first (Anthropic's answer goes to the client as sent): what falls back from there
fakes_reset; anth_faults '{"error_event_after":0}'
post "$W1" claude-opus-4-5 true
check "Anthropic stream whose first event is an error (nothing relayed yet): Gemini's complete stream" stream_from gemini
check "Anthropic error event first: one request reached each fake" seen 1 1
fakes_reset; anth_faults '{"cut_after_events":0}'
post "$W1" claude-opus-4-5 true
check "Anthropic stream cut before its first event: Gemini's complete stream" stream_from gemini
fakes_reset; anth_faults '{"cut_after_events":1}'
post "$W1" claude-opus-4-5 false
check "Anthropic whole answer cut halfway: Gemini's 200" from_gemini
check "Anthropic whole answer cut halfway: one request reached each fake" seen 1 1
fakes_reset; anth_faults '{"cut_after_events":3}'
post "$W1" claude-opus-4-5 true
relay_cut() { # Anthropic's first events as sent, then Warden's error event, and nothing from Gemini
  grep -q '^event: message_start' "$OUT" && [ "$(grep '^event: ' "$OUT" | tail -1)" = "event: error" ] &&
    ! grep -q '^event: message_stop' "$OUT" && return 0
  echo "  stream: $(head -c 600 "$OUT" | tr '\n' ' ')" >&2
  return 1
}
check "Anthropic stream cut after 3 relayed events: an error event ends the client's stream" relay_cut
check "Anthropic stream cut after 3 relayed events: no retry, Gemini saw nothing" seen 0 1
fakes_reset; anth_faults '{"status":400}'
post "$W1" claude-opus-4-5 false
check "Anthropic 400: relayed to the client as is (400 invalid_request_error)" \
  code_and 400 'd["type"] == "error" and d["error"]["type"] == "invalid_request_error" and d["request_id"].startswith("req_")'
check "Anthropic 400: no fallback, Gemini saw nothing" seen 0 1
fakes_reset; anth_faults '{"status":529}'; gem_faults '{"status":503}'
post "$W1" claude-opus-4-5 false
check "both targets fail (Anthropic 529, then Gemini 503): the last failure, 529 overloaded_error" \
  code_and 529 'd["error"]["type"] == "overloaded_error"'
check "both targets fail: one request reached each fake" seen 1 1
fakes_reset; gem_faults '{"status":503}'; anth_faults '{"status":529}'
post "$W1" claude-sonnet-4-5 false
check "both fail the other way (Gemini 503, then Anthropic 529): Anthropic's own error body, relayed" \
  code_and 529 'd["error"]["type"] == "overloaded_error" and d["request_id"].startswith("req_")'

# ---- 2. same-target retries (Warden 2: attempts_per_target 3, backoff 100ms) -------------------------------
W2_CFG="$WD_TMP/w2.yaml"
W2_PORT=$(wd_free_port)
W2_METRICS_PORT=$(wd_free_port)
w2_config() { # w2_config BACKOFF MAX_BACKOFF
  cat >"$W2_CFG" <<YAML
listen: 127.0.0.1:$W2_PORT
workers: 1
$(providers_yaml)
models:
  tiers:
    sonnet: [gemini/gemini-2.5-flash, claude/claude-sonnet-4-5]
  aliases:
    solo: gemini/gemini-2.5-flash
routing:
  attempts_per_target: 3
  backoff: $1
  max_backoff: $2
  retry_budget: 1
  retry_budget_min: 1000
audit:
  database: $WD_DB_ADMIN_URL
  spool: $WD_TMP/spool2
  batch_wait: 5ms
telemetry:
  metrics:
    listen: 127.0.0.1:$W2_METRICS_PORT
YAML
}
w2_config 100ms 1s
wd_start_warden "$W2_CFG"
W2="$WARDEN_URL" W2_PID=$WARDEN_PID W2_LOG=$WARDEN_LOG
G1="" G2="" R=""
for i in 1 2 3 4 5; do
  fakes_reset; gem_faults '{"status":503},{"status":503}'
  post "$W2" solo false
  from_gemini 2>/dev/null && R="${R}ok" || R="${R}bad($CODE)"
  R="$R/$(gem_reqs)/$(anth_reqs) "
  read -r g1 g2 <<<"$(gem_gaps)"
  G1="$G1 ${g1:-x}" G2="$G2 ${g2:-x}"
done
echo "# retry gaps after the 1st try (cap 100 ms):$G1; after the 2nd (cap 200 ms):$G2"
check "503, 503, 200 on one target, 5 times: Gemini's 200 each time after 3 requests, none to Anthropic ($R)" \
  [ "$R" = "ok/3/0 ok/3/0 ok/3/0 ok/3/0 ok/3/0 " ]
# the fake logs a request when it arrives: a gap is the backoff plus Warden's and the fake's own few ms
gaps_within() { local g; for g in $2; do [[ "$g" =~ ^[0-9]+$ ]] && [ "$g" -le "$1" ] || return 1; done; }
check "backoff bounded: every first retry within [0, 100 ms] (+80 ms of work)" gaps_within 180 "$G1"
check "backoff bounded: every second retry within [0, 200 ms] (+80 ms of work), the cap doubled" gaps_within 280 "$G2"
check "backoff jittered: the 10 waits are not all alike (spread > 10 ms) and not all at the cap" \
  python3 -c 'import sys; g=[int(x) for x in sys.argv[1].split()]; f=[int(x) for x in sys.argv[2].split()]; sys.exit(0 if max(g+f)-min(g+f) > 10 and min(g) < 90 else 1)' "$G1" "$G2"
DETAIL=""
for _ in $(seq 1 100); do
  DETAIL=$(q "SELECT detail FROM audit.records WHERE kind='call' AND model_requested='solo' ORDER BY ts LIMIT 1" 2>/dev/null || true)
  [ -n "$DETAIL" ] && break
  sleep 0.05
done
check "audit: a call retried twice lists 3 attempts of gemini: 503 retry, 503 retry, 200 ok" \
  pj_detail 'd["upstream_attempts"] == 3 and [[a["provider"], a["status"], a["outcome"], a.get("next")] for a in d["attempts"]] == [["gemini", 503, "http_error", "retry"], ["gemini", 503, "http_error", "retry"], ["gemini", 200, "ok", None]]'
RETRIES=$(curl -sS --max-time 5 "http://127.0.0.1:$W2_METRICS_PORT/metrics" | awk '/^warden_upstream_retries_total\{provider="gemini"\}/ {printf "%d", $NF}')
check "metrics: warden_upstream_retries_total{provider=\"gemini\"} is 10 (${RETRIES:-none})" [ "${RETRIES:-0}" = 10 ]

fakes_reset; gem_faults '{"status":503},{"status":503},{"status":503}'
post "$W2" claude-sonnet-4-5 false
check "3 tries of Gemini all 503: then the next target, Anthropic's 200" from_anthropic
check "3 tries of Gemini all 503: Gemini 3 requests, Anthropic 1" seen 3 1

fakes_reset; gem_faults '{"status":429,"retry_after":1}'
post "$W2" solo false
GAP=$(gem_gaps)
check "429 Retry-After 1, then 200: Gemini's answer" from_gemini
check "Retry-After 1 honoured: the second request came >= 1000 ms after the first, not much later (${GAP:-none} ms)" \
  bash -c "[ '${GAP:-0}' -ge 1000 ] && [ '${GAP:-0}' -lt 2000 ]"

# a client that leaves while Warden waits out a Retry-After: the retry never leaves
fakes_reset; gem_faults '{"status":429,"retry_after":3}'
post "$W2" solo false --max-time 1
sleep 3.5
check "the client left during a 3 s Retry-After wait: Gemini got no second request" seen 1 0
check "the client left during the wait: Warden 2 still answers" \
  bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 '$W2/healthz')\" = 200 ]"

# a long backoff, so that waiting one before a fallback would show
w2_config 20s 20s
kill -HUP "$W2_PID"
check "SIGHUP: Warden 2 reloaded with backoff 20s" wait_log "$W2_LOG" "config reloaded from" 1
sleep 0.1
fakes_reset; gem_faults '{"status":429,"retry_after":30}'
post "$W2" claude-sonnet-4-5 false
check "attempts 3, 429 Retry-After 30 (> max_retry_after): Anthropic's 200" from_anthropic
check "attempts 3, 429 Retry-After 30: no retry of Gemini, one request to each" seen 1 1
check "attempts 3, 429 Retry-After 30: the next target at once, without a backoff (backoff 20s)" faster_than 2000

# ---- 3 (end). the budget comes back once its windows have passed -------------------------------------------
left=$((15500 - ($(date +%s%N) - T_BUDGET) / 1000000))
[ "$left" -gt 0 ] && sleep "$(awk -v l="$left" 'BEGIN{printf "%.2f", l/1000}')"
fakes_reset; gem_faults '{"status":503}'
post "$W3" claude-sonnet-4-5 false
check "budget: 15 s after it ran out, a fallback is allowed again (Anthropic's 200)" from_anthropic

wd_stop_warden "$W1_PID" "$W1_LOG"
wd_stop_warden "$W2_PID" "$W2_LOG"
wd_stop_warden "$W3_PID" "$W3_LOG"
echo "# took $((($(date +%s%N) - T_START) / 1000000)) ms"
wd_finish
