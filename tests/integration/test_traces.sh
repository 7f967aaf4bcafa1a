# OpenTelemetry traces end to end: Warden exports OTLP/HTTP to tests/fakes/fake_otlp.mjs and every export
# is decoded with protoc and the official .proto files (tests/otel) and with otlp_spans.py's own wire
# decoder. Checks: the span tree of a Claude Code stream joined to the caller's trace, the GenAI and HTTP
# attributes, a failed upstream attempt, new and unsampled traces and the traceparent sent upstream,
# sampling_ratio 0, the OTLP header from a secret reference, http/json, gzip, the OTEL_* environment, a
# slow, failing (429 + Retry-After) or dead collector never slowing a request, and no secret or prompt
# text in the log, the spans or /metrics.
source "$(dirname "$0")/../lib.sh" "$1"
HERE="$WD_ROOT/tests/integration"
spans_py() { python3 "$HERE/otlp_spans.py" "$@"; }

if ! PROTO_ROOT=$(bash "$WD_ROOT/tests/otel/setup.sh"); then
  fail "tests/otel/setup.sh: the OTLP .proto files are not available"
  wd_finish
  exit 1
fi

export WARDEN_DEV_KEY="sk-wd-trace-devkey-3c9f1a77"
export GEMINI_API_KEY="AIza-trace-gemini-8e21d4c0"
export OTLP_KEY="otlp-trace-key-5a7b1e93"
PROMPT="planted-trace-prompt-6d02"
for v in OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL \
  OTEL_EXPORTER_OTLP_HEADERS OTEL_EXPORTER_OTLP_COMPRESSION OTEL_SERVICE_NAME OTEL_RESOURCE_ATTRIBUTES \
  OTEL_TRACES_SAMPLER OTEL_TRACES_SAMPLER_ARG K8S_POD_NAME POD_NAME; do
  unset "$v"
done

wd_start_fake --key "$GEMINI_API_KEY"

# start_otlp DIR [PORT] -> OTLP_PID, OTLP_PORT, OTLP_URL, OTLP_DIR
start_otlp() {
  OTLP_DIR="$1"
  wd_start_server OTLP_PORT node "$WD_ROOT/tests/fakes/fake_otlp.mjs" --port "${2:-0}" --dir "$OTLP_DIR"
  OTLP_PID=$WD_SERVER_PID
  OTLP_URL="http://127.0.0.1:$OTLP_PORT"
}
otlp_mode() { curl -s -o /dev/null -w '%{http_code}' "$OTLP_URL/_fake/mode" -d "$1" | grep -q 200; }
otlp_stat() { curl -s "$OTLP_URL/_fake/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# telemetry YAML for wd_config: tele ENDPOINT PROTOCOL RATIO
tele() {
  cat <<YAML
telemetry:
  service_name: warden-test
  otlp:
    endpoint: $1
    protocol: $2
    headers: {x-api-key: env://OTLP_KEY}
    sampling_ratio: $3
YAML
  wd_metrics_yaml "  "
}

# decodes what arrived; spq EXPR: a Python expression over the spans (tests/integration/otlp_spans.py)
collect() { spans_py collect "$OTLP_DIR" "$PROTO_ROOT"; }
spq() { spans_py check "$OTLP_DIR" "$1"; }
# wait_trace TID [seconds]: until the trace's server span (the last of a request's spans to end) arrived
wait_trace() {
  local tid="$1" n=$((${2:-10} * 5)) i
  for i in $(seq 1 "$n"); do
    collect && spq "server('$tid') is not None" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "trace $tid not exported within ${2:-10} s" >&2
  return 1
}
newtid() { openssl rand -hex 16; }
newsid() { openssl rand -hex 8; }

# post BODY OUT [curl args...] -> HTTP status
post() {
  local body="$1" out="$2"
  shift 2
  curl -s -o "$out" -w '%{http_code}' "$WARDEN_URL/anthropic/v1/messages" -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'content-type: application/json' "$@" --data-binary @"$body"
}
# the last request the fake Gemini received: "traceparent tracestate"
fake_last_trace_headers() {
  curl -s "$FAKE_URL/_fake/requests" |
    python3 -c 'import json,sys; h=json.load(sys.stdin)[-1]["headers"]; print(h.get("traceparent","-"), h.get("tracestate","-"))'
}
fake_script() { curl -s -o /dev/null -w '%{http_code}' "$FAKE_URL/_fake/script" -d "$1" | grep -q 200; }

# A Claude Code first turn (12 tools, system blocks, thinking, stream: true) with the planted prompt text.
CC="$WD_TMP/cc.json"
python3 - "$WD_ROOT/tests/unit/golden/claude-code-first-turn.request.json" "$CC" "$PROMPT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["stream"] = True
d["messages"][0]["content"].append({"type": "text", "text": sys.argv[3]})
assert d.get("tools")
json.dump(d, open(sys.argv[2], "w"))
PY
SMALL="$WD_TMP/small.json"
printf '{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"%s"}]}' "$PROMPT" >"$SMALL"

# =====================================================================================================
# Phase 1: http/protobuf, sampling_ratio 1.0, the OTLP header from env://OTLP_KEY
start_otlp "$WD_TMP/otlp1"
PORT=$(wd_free_port)
wd_start_warden "$(wd_config "$PORT" "$FAKE_URL" "$(tele "$OTLP_URL" http/protobuf 1.0)")"
LOG1="$WARDEN_LOG"
check "the log names the traces URL" grep -q "exporting traces to $OTLP_URL/v1/traces" "$WARDEN_LOG"

# ---- a. a Claude Code stream joined to the caller's trace -------------------------------------------
TA=$(newtid); PA=$(newsid)
TS="congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
st=$(post "$CC" "$WD_TMP/a.sse" -H "traceparent: 00-$TA-$PA-01" -H "tracestate: $TS")
check "a: the Claude Code stream is answered 200" [ "$st" = 200 ]
check "a: the stream completed" python3 "$HERE/wd_assert.py" sse "$WD_TMP/a.sse" --complete
UP_A=$(fake_last_trace_headers)
check "a: the trace was exported" wait_trace "$TA"
SRV="server('$TA')"
CHAT="named('$TA','chat')[0]"
SID="$SRV['span_id']"
check "a: one trace: one server span, named POST /anthropic/v1/messages, kind SERVER, child of the caller's span" \
  spq "len([s for s in trace('$TA') if s['kind']==2])==1 and $SRV['name']=='POST /anthropic/v1/messages' and $SRV['parent_span_id']=='$PA'"
check "a: children authenticate, route and chat (once each), no audit.write (audit off), all children of the server span" \
  spq "sorted(s['name'] for s in trace('$TA'))==sorted(['POST /anthropic/v1/messages','authenticate','route','chat']) and all(s['parent_span_id']==$SID for s in trace('$TA') if s['kind']!=2)"
check "a: span ids are unique and 16 hex digits" \
  spq "len({s['span_id'] for s in trace('$TA')})==4 and all(re.fullmatch('[0-9a-f]{16}', s['span_id']) for s in trace('$TA'))"
check "a: kinds: authenticate and route INTERNAL, chat CLIENT" \
  spq "named('$TA','authenticate')[0]['kind']==1 and named('$TA','route')[0]['kind']==1 and $CHAT['kind']==3"
check "a: every span carries the caller's tracestate" spq "all(s['trace_state']=='$TS' for s in trace('$TA'))"
check "a: chat span: gen_ai.operation.name chat, provider gcp.gemini, request and response model" \
  spq "(lambda a: a['gen_ai.operation.name']=='chat' and a['gen_ai.provider.name']=='gcp.gemini' and a['gen_ai.request.model']=='gemini-2.5-pro' and a['gen_ai.response.model']=='gemini-2.5-pro')($CHAT['attributes'])"
check "a: chat span: token usage (ints > 0), finish_reasons an array, http.response.status_code 200, status not ERROR" \
  spq "(lambda a: type(a['gen_ai.usage.input_tokens']) is int and a['gen_ai.usage.input_tokens']>0 and type(a['gen_ai.usage.output_tokens']) is int and a['gen_ai.usage.output_tokens']>0 and isinstance(a['gen_ai.response.finish_reasons'], list) and len(a['gen_ai.response.finish_reasons'])==1 and a['http.response.status_code']==200 and 'error.type' not in a)($CHAT['attributes']) and $CHAT['status']['code']!=2"
check "a: chat span: one gen_ai.first_token event, between the span's start and end" \
  spq "(lambda c: [e['name'] for e in c['events']]==['gen_ai.first_token'] and c['start'] <= c['events'][0]['time'] <= c['end'])($CHAT)"
check "a: chat span lies within the server span, which ends last" \
  spq "(lambda s, c: s['start'] <= c['start'] <= c['end'] <= s['end'] and all(x['end'] <= s['end'] for x in trace('$TA')))($SRV, $CHAT)"
check "a: server span: http.request.method, http.route, http.response.status_code 200, url.scheme, network.protocol.version" \
  spq "(lambda a: a['http.request.method']=='POST' and a['http.route']=='/anthropic/v1/messages' and a['http.response.status_code']==200 and a['url.scheme']=='http' and a['network.protocol.version']=='1.1')($SRV['attributes']) and $SRV['status']['code']!=2"
check "a: resource: service.name warden-test, service.version, service.instance.id; scope warden" \
  spq "(lambda r: r['service.name']=='warden-test' and r.get('service.version','')!='' and r.get('service.instance.id','')!='')($SRV['resource']) and $SRV['scope']['name']=='warden'"
CHAT_A_ID=$(python3 -c "import json; print([s['span_id'] for s in json.load(open('$OTLP_DIR/spans.json')) if s['trace_id']=='$TA' and s['name']=='chat'][0])")
check "a: Gemini got traceparent 00-<the trace id>-<the chat span's id>-01 and the tracestate ($UP_A)" \
  [ "$UP_A" = "00-$TA-$CHAT_A_ID-01 $TS" ]
check "a: the access log line carries the trace id and the server span id" \
  grep -q "\"trace_id\":\"$TA\",\"span_id\":\"$(python3 -c "import json; print([s['span_id'] for s in json.load(open('$OTLP_DIR/spans.json')) if s['trace_id']=='$TA' and s['kind']==2][0])")\"" "$WARDEN_LOG"

# ---- b. failed upstream attempts ----------------------------------------------------------------------
TB=$(newtid)
fake_script '{"mode":"faults","faults":[{"status":503}]}'
st=$(post "$SMALL" "$WD_TMP/b.json" -H "traceparent: 00-$TB-$(newsid)-01")
check "b: Gemini 503 -> the client gets 529 ($st)" [ "$st" = 529 ]
check "b: the trace was exported" wait_trace "$TB"
CB="named('$TB','chat')[0]"
check "b: chat span: status ERROR (2), error.type set, http.response.status_code 503" \
  spq "$CB['status']['code']==2 and $CB['attributes'].get('error.type','')!='' and $CB['attributes']['http.response.status_code']==503"
check "b: chat span: no first-token event on a failed attempt" spq "$CB['events']==[]"
check "b: server span: http.response.status_code 529 (what the client got), status ERROR, error.type" \
  spq "server('$TB')['attributes']['http.response.status_code']==529 and server('$TB')['status']['code']==2 and server('$TB')['attributes'].get('error.type','')!=''"

TB2=$(newtid)
fake_script '{"mode":"faults","faults":[{"status":429,"retry_after":1}]}'
st=$(post "$SMALL" "$WD_TMP/b2.json" -H "traceparent: 00-$TB2-$(newsid)-01")
check "b: Gemini 429 -> the client gets 429 ($st)" [ "$st" = 429 ]
check "b: the 429 trace was exported" wait_trace "$TB2"
CB2="named('$TB2','chat')[0]"
check "b: 429: chat span ERROR with http.response.status_code 429; server span 429, status not ERROR (a 4xx on a server span)" \
  spq "$CB2['status']['code']==2 and $CB2['attributes']['http.response.status_code']==429 and server('$TB2')['attributes']['http.response.status_code']==429 and server('$TB2')['status']['code']!=2"

# A retried attempt (MALFORMED_FUNCTION_CALL is retried once): one chat span per attempt.
TB3=$(newtid)
fake_script '{"mode":"faults","faults":[{"finish_reason":"MALFORMED_FUNCTION_CALL"}]}'
st=$(post "$SMALL" "$WD_TMP/b3.json" -H "traceparent: 00-$TB3-$(newsid)-01")
check "b: a malformed function call is retried and answered 200 ($st)" [ "$st" = 200 ]
check "b: the retried trace was exported" wait_trace "$TB3"
check "b: retry: two chat spans, the first an ERROR, the second with status 200, usage and no error" \
  spq "(lambda c: len(c)==2 and c[0]['status']['code']==2 and c[1]['status']['code']!=2 and c[1]['attributes'].get('http.response.status_code')==200 and 'error.type' not in c[1]['attributes'] and c[1]['attributes'].get('gen_ai.usage.output_tokens',0)>0)(sorted(named('$TB3','chat'), key=lambda s: s['start']))"

# ---- c. a new trace; an unsampled caller ----------------------------------------------------------------
st=$(post "$SMALL" "$WD_TMP/c.json")
read -r UP_C _ <<<"$(fake_last_trace_headers)"
TC=$(cut -d- -f2 <<<"$UP_C")
check "c: without a traceparent: 200, and Gemini got a sampled traceparent of a new trace ($UP_C)" \
  bash -c "[ '$st' = 200 ] && [[ '$UP_C' =~ ^00-[0-9a-f]{32}-[0-9a-f]{16}-01$ ]] && ! grep -q '$TC' <<<'$TA $TB $TB2 $TB3'"
check "c: the new trace was exported" wait_trace "$TC"
check "c: its server span has no parent; Gemini's parent id is the chat span" \
  spq "server('$TC')['parent_span_id']=='' and named('$TC','chat')[0]['span_id']=='$(cut -d- -f3 <<<"$UP_C")'"
check "c: no tracestate invented" spq "all(s['trace_state']=='' for s in trace('$TC'))"

TN=$(newtid)
st=$(post "$SMALL" "$WD_TMP/c2.json" -H "traceparent: 00-$TN-$(newsid)-00")
read -r UP_N _ <<<"$(fake_last_trace_headers)"
check "c: unsampled caller: 200, and Gemini still got traceparent 00-<the trace id>-<id>-00 ($UP_N)" \
  bash -c "[ '$st' = 200 ] && [[ '$UP_N' =~ ^00-$TN-[0-9a-f]{16}-00$ ]]"
TBAR=$(newtid)
post "$SMALL" "$WD_TMP/c3.json" -H "traceparent: 00-$TBAR-$(newsid)-01" >/dev/null
check "c: a later sampled request was exported" wait_trace "$TBAR"
check "c: no span of the unsampled trace was exported" spq "trace('$TN')==[]"

# ---- e. the OTLP header from env://OTLP_KEY ------------------------------------------------------------
check "e: every export carried x-api-key from env://OTLP_KEY and Content-Type application/x-protobuf" \
  python3 - "$OTLP_DIR" "$OTLP_KEY" <<'PY'
import glob, json, sys
files = sorted(glob.glob(sys.argv[1] + "/req-*.headers.json"))
hs = [json.load(open(f))["headers"] for f in files]
ok = len(hs) > 0 and all(h.get("x-api-key") == sys.argv[2] and h.get("content-type") == "application/x-protobuf" for h in hs)
sys.exit(0 if ok else 1)
PY

# ---- j. secrets and prompt text -------------------------------------------------------------------------
curl -s "$WARDEN_METRICS_URL/metrics" >"$WD_TMP/metrics.txt"
check "j: /metrics answered" [ -s "$WD_TMP/metrics.txt" ]
leaks=""
for s in "$WARDEN_DEV_KEY" "$GEMINI_API_KEY" "$OTLP_KEY" "$PROMPT"; do
  for f in "$WARDEN_LOG" "$WARDEN_LOG.out" "$WD_TMP/metrics.txt" "$OTLP_DIR"/req-*.pb "$OTLP_DIR"/req-*.txt "$OTLP_DIR/spans.json"; do
    grep -qaF -- "$s" "$f" && leaks="$leaks ${s:0:10}..@$(basename "$f")"
  done
done
check "j: no key or prompt text in Warden's log, the exported spans (raw and decoded) or /metrics${leaks}" [ -z "$leaks" ]
check "j: the planted prompt did go to Gemini (the check above is not vacuous)" \
  bash -c "curl -s '$FAKE_URL/_fake/requests' | grep -qF '$PROMPT'"

# ---- i. a slow, failing or dead collector never slows a request -----------------------------------------
# lat LABEL: median of 30 sequential small requests in ms; LAT_BAD counts answers other than 200
lat() {
  local i out="$WD_TMP/lat.$1"
  : >"$out"
  for i in $(seq 1 30); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$WARDEN_URL/anthropic/v1/messages" \
      -H "x-api-key: $WARDEN_DEV_KEY" -H 'content-type: application/json' --data-binary @"$SMALL" >>"$out"
  done
  LAT_BAD=$(grep -vc '^200 ' "$out" || true)
  LAT_MS=$(python3 -c "import statistics,sys; print(round(1000*statistics.median(float(l.split()[1]) for l in open('$out')),2))")
}
within() { python3 -c "import sys; ok,bad=float('$1'),float('$2'); sys.exit(0 if bad <= max(ok+20, 2*ok) else 1)"; }
lat ok
M_OK=$LAT_MS
check "i: collector OK: 30 requests, all 200 (median ${M_OK} ms)" [ "$LAT_BAD" = 0 ]

# 429 with Retry-After: 1 for two exports: the exporter sends the same batch again and it arrives.
# First everything queued so far goes out (a sampled request after the others, exported), so that the
# 429s meet the batch with the next trace.
TPRE=$(newtid)
post "$SMALL" /dev/null -H "traceparent: 00-$TPRE-$(newsid)-01" >/dev/null
check "i: the spans of the 30 requests went out" wait_trace "$TPRE"
before=$(otlp_stat "['injected']")
otlp_mode '{"mode":"status","status":429,"retry_after":1,"count":2}'
TR=$(newtid)
post "$SMALL" "$WD_TMP/i.json" -H "traceparent: 00-$TR-$(newsid)-01" >/dev/null
check "i: after two 429s with Retry-After: 1, the spans arrived" wait_trace "$TR" 12
check "i: the collector answered 429 twice" [ "$(otlp_stat "['injected']")" -eq $((before + 2)) ]
check "i: the retries carried the same batch as the export that was accepted" python3 - "$OTLP_URL" "$OTLP_DIR" "$TR" <<'PY'
import json, sys, urllib.request
log = json.load(urllib.request.urlopen(sys.argv[1] + "/_fake/requests"))
spans = json.load(open(sys.argv[2] + "/spans.json"))
f = [s["file"] for s in spans if s["trace_id"] == sys.argv[3]][0]
acc = [i for i, e in enumerate(log) if e["file"] == f][0]
inj = [e for e in log[:acc] if e["status"] == 429][-2:]
ok = len(inj) == 2 and all(e["bytes"] == log[acc]["bytes"] for e in inj) and log[acc]["ts"] - inj[0]["ts"] >= 1800
sys.exit(0 if ok else 1)
PY

# A kept-alive connection to the collector that dies under an export: curl sends the batch again on a new
# connection, which needs the body (sent in pieces through a read callback) rewound: no failed export.
export_failures() { curl -s "$WARDEN_METRICS_URL/metrics" | awk '$1 ~ /^warden_otel_export_requests_total/ && $1 !~ /"ok"/ {n += $2} END {print n + 0}'; }
TPRE=$(newtid)
post "$SMALL" /dev/null -H "traceparent: 00-$TPRE-$(newsid)-01" >/dev/null
check "i: the spans before the dropped connection went out" wait_trace "$TPRE"
before=$(otlp_stat "['dropped_reused']")
failed=$(export_failures)
otlp_mode '{"mode":"drop_reused","count":1}'
TR=$(newtid)
post "$SMALL" "$WD_TMP/i.json" -H "traceparent: 00-$TR-$(newsid)-01" >/dev/null
check "i: after the connection died under an export, the spans arrived" wait_trace "$TR" 12
check "i: the collector dropped one export on a reused connection" \
  [ "$(otlp_stat "['dropped_reused']")" -eq $((before + 1)) ]
check "i: curl sent it again itself (the body rewound): no export counted as failed" [ "$(export_failures)" = "$failed" ]

otlp_mode '{"mode":"slow","delay_ms":3000}'
lat slow
check "i: collector slow (3 s per export): all 200, median ${LAT_MS} ms vs ${M_OK} ms" \
  bash -c "[ '$LAT_BAD' = 0 ] && python3 -c 'import sys; sys.exit(0 if $LAT_MS <= max($M_OK+20, 2*$M_OK) else 1)'"
kill "$OTLP_PID"; wait "$OTLP_PID" 2>/dev/null || true
check "i: the collector's port is closed" bash -c "! curl -s -o /dev/null --max-time 1 '$OTLP_URL/_fake/stats'"
lat dead
check "i: collector dead: all 200, median ${LAT_MS} ms vs ${M_OK} ms" \
  bash -c "[ '$LAT_BAD' = 0 ] && python3 -c 'import sys; sys.exit(0 if $LAT_MS <= max($M_OK+20, 2*$M_OK) else 1)'"
check "i: the failed exports are logged without the OTLP key" bash -c "grep -q 'otlp export to' '$WARDEN_LOG' && ! grep -qF '$OTLP_KEY' '$WARDEN_LOG'"
t0=$(date +%s%N)
wd_stop_warden
check "i: with the collector dead, SIGTERM still exits within 5 s" [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 5000 ]
check "decode: every protobuf export of phase 1 decodes with protoc and equals the wire decoding" \
  bash -c "[ ! -s '$WD_TMP/otlp1/decode-errors.txt' ] || { cat '$WD_TMP/otlp1/decode-errors.txt' >&2; false; }"

# =====================================================================================================
# ---- d. sampling_ratio 0.0: no new trace is sampled; a sampled parent is honoured ----------------------
start_otlp "$WD_TMP/otlp2"
PORT=$(wd_free_port)
wd_start_warden "$(wd_config "$PORT" "$FAKE_URL" "$(tele "$OTLP_URL" http/protobuf 0.0)")"
bad=0
for i in $(seq 1 20); do
  [ "$(post "$SMALL" /dev/null)" = 200 ] || bad=$((bad + 1))
done
TD=$(newtid)
post "$SMALL" "$WD_TMP/d.json" -H "traceparent: 00-$TD-$(newsid)-01" >/dev/null
check "d: ratio 0: 20 requests without traceparent answered 200" [ "$bad" = 0 ]
check "d: ratio 0: the caller's sampled trace is exported" wait_trace "$TD"
check "d: ratio 0: no other trace was exported (20 requests without traceparent)" \
  spq "{s['trace_id'] for s in spans}=={'$TD'} and len(trace('$TD'))==4"
wd_stop_warden

# ---- f. http/json -------------------------------------------------------------------------------------
start_otlp "$WD_TMP/otlp3"
PORT=$(wd_free_port)
wd_start_warden "$(wd_config "$PORT" "$FAKE_URL" "$(tele "$OTLP_URL" http/json 1.0)")"
TF=$(newtid); PF=$(newsid)
st=$(post "$CC" "$WD_TMP/f.sse" -H "traceparent: 00-$TF-$PF-01")
# no waiting: SIGTERM flushes what is queued
wd_stop_warden
collect
check "f: http/json: the stream was answered 200, and SIGTERM flushed its spans" spq "server('$TF') is not None"
check "f: exports are .json with Content-Type application/json" \
  bash -c "ls '$OTLP_DIR'/req-*.json | grep -v headers | grep -q . && ! ls '$OTLP_DIR'/req-*.pb 2>/dev/null | grep -q . && grep -q '\"content-type\": \"application/json\"' '$OTLP_DIR'/req-0001.headers.json"
check "f: every JSON export follows the OTLP/JSON rules (resourceSpans/scopeSpans/spans, 32-hex traceId, 64-bit ints as strings)" \
  bash -c "for f in '$OTLP_DIR'/req-0*.json; do case \$f in *.headers.json|*.spans.json) continue;; esac; python3 '$HERE/otlp_spans.py' json-check \$f || exit 1; done"
check "f: the JSON carries the same span tree (server child of the caller, four children, chat CLIENT with usage)" \
  spq "server('$TF')['parent_span_id']=='$PF' and sorted(s['name'] for s in trace('$TF'))==sorted(['POST /anthropic/v1/messages','authenticate','route','chat']) and all(s['parent_span_id']==server('$TF')['span_id'] for s in trace('$TF') if s['kind']!=2) and named('$TF','chat')[0]['kind']==3 and named('$TF','chat')[0]['attributes']['gen_ai.usage.output_tokens']>0"
check "f: the JSON's 64-bit integers are strings and ids hex in the raw text" \
  python3 - "$OTLP_DIR" "$TF" <<'PY'
import glob, json, sys
for f in glob.glob(sys.argv[1] + "/req-0*.json"):
    if f.endswith((".headers.json", ".spans.json")):
        continue
    d = json.load(open(f))
    for sp in d["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        if sp["traceId"] == sys.argv[2] and sp["kind"] == 3:
            a = {x["key"]: x["value"] for x in sp["attributes"]}
            ok = a["gen_ai.usage.input_tokens"]["intValue"].isdigit() and isinstance(sp["startTimeUnixNano"], str) \
                and a["gen_ai.response.finish_reasons"]["arrayValue"]["values"][0]["stringValue"] != ""
            sys.exit(0 if ok else 1)
sys.exit(1)
PY
check "decode: the JSON exports parse" bash -c "[ ! -s '$OTLP_DIR/decode-errors.txt' ] || { cat '$OTLP_DIR/decode-errors.txt' >&2; false; }"

# ---- g + h. only the OTEL_* environment (no telemetry section): endpoint, service name, resource, gzip ---
start_otlp "$WD_TMP/otlp4"
PORT=$(wd_free_port)
export OTEL_EXPORTER_OTLP_ENDPOINT="$OTLP_URL"
export OTEL_SERVICE_NAME="warden-from-env"
export OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,k8s.pod.name=pod-1"
export OTEL_EXPORTER_OTLP_COMPRESSION=gzip
wd_start_warden "$(wd_config "$PORT" "$FAKE_URL")"
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_SERVICE_NAME OTEL_RESOURCE_ATTRIBUTES OTEL_EXPORTER_OTLP_COMPRESSION
TG=$(newtid)
post "$SMALL" "$WD_TMP/g.json" -H "traceparent: 00-$TG-$(newsid)-01" >/dev/null
check "h: OTEL_EXPORTER_OTLP_ENDPOINT alone: the trace is exported" wait_trace "$TG"
check "h: resource: service.name from OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES deployment.environment and k8s.pod.name" \
  spq "(lambda r: r['service.name']=='warden-from-env' and r['deployment.environment']=='test' and r['k8s.pod.name']=='pod-1' and r.get('service.instance.id','')!='')(server('$TG')['resource'])"
check "g: OTEL_EXPORTER_OTLP_COMPRESSION=gzip: every export came with Content-Encoding gzip and decoded" \
  bash -c "[ \$(curl -s '$OTLP_URL/_fake/stats' | python3 -c 'import json,sys; s=json.load(sys.stdin); print(int(s[\"exports\"]>0 and s[\"gzip\"]==s[\"exports\"]))') = 1 ] && grep -q '\"encoding\": \"gzip\"' '$OTLP_DIR'/req-0001.headers.json"
check "g: no x-api-key header without one configured" bash -c "! grep -q 'x-api-key' '$OTLP_DIR'/req-0001.headers.json"

# ---- k. the access log under concurrent load: a worker batches its lines and writes them before it waits
# for events (lib/log.c); every line stays whole and none is lost, SIGTERM included -------------------
access_lines() { grep -c '"msg":"access"' "$WARDEN_LOG" || true; }
sleep 0.2
K0=$(access_lines)
KPIDS=()
for j in $(seq 1 8); do
  ( for i in $(seq 1 25); do
      curl -s -o /dev/null --max-time 10 "$WARDEN_URL/anthropic/v1/messages" -H "x-api-key: $WARDEN_DEV_KEY" \
        -H 'content-type: application/json' --data-binary @"$SMALL"
    done ) &
  KPIDS+=($!)
done
wait "${KPIDS[@]}"
wd_stop_warden
K1=$(access_lines)
check "k: 200 concurrent requests, then SIGTERM: exactly 200 more access lines ($((K1 - K0)))" [ "$((K1 - K0))" = 200 ]
check "k: every line on stderr is one whole JSON object" \
  python3 -c "import json,sys; [json.loads(l) for l in open('$WARDEN_LOG') if l.startswith('{')]; sys.exit(0 if all(l.startswith('{') or l.startswith('=') for l in open('$WARDEN_LOG')) else 1)"
check "decode: the gzip exports decode with protoc" bash -c "[ ! -s '$OTLP_DIR/decode-errors.txt' ] || { cat '$OTLP_DIR/decode-errors.txt' >&2; false; }"

wd_finish
