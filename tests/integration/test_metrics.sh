#!/usr/bin/env bash
# GET /metrics: the exposition passes promtool; request counts, latency and time-to-first-token histograms,
# upstream attempts, retries, errors by class, tokens and cost, gauges, process series; a real Prometheus
# scrapes Warden during a load and its queries (counts, histogram_quantile, every dashboard expression)
# answer; label cardinality stays bounded (models past WARDEN_METRICS_MAX_MODELS count as "other");
# /metrics is served on telemetry.metrics.listen only, never on the client listener; deploy/grafana-dashboard.json uses only
# metric names the exposition has.
# Usage: bash tests/integration/test_metrics.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
HERE="$WD_ROOT/tests/integration"
DASH="$WD_ROOT/deploy/grafana-dashboard.json"
A() { python3 "$HERE/wd_assert.py" "$@"; }

export WARDEN_DEV_KEY="wk-metrics-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
MAX_MODELS=8
export WARDEN_METRICS_MAX_MODELS=$MAX_MODELS
# USD per million tokens for the sonnet tier's model (models.prices): input, output, cached
P_IN=0.30 P_OUT=2.50 P_CACHED=0.075

# ---- a small reader of the text exposition (and of the dashboard)
M="$WD_TMP/m.py"
cat >"$M" <<'PY'
import json, re, sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

def unescape(v):
    return re.sub(r'\\(.)', lambda m: {'n': '\n'}.get(m.group(1), m.group(1)), v)

def samples(path):
    out = []
    for line in open(path, encoding='utf-8'):
        line = line.rstrip('\n')
        if not line or line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        if not m:
            sys.exit(f'unparsable line: {line!r}')
        labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2) or '')}
        out.append((m.group(1), labels, float(m.group(3))))
    return out

def families(path):
    names = set()
    for line in open(path, encoding='utf-8'):
        if line.startswith('# TYPE '):
            names.add(line.split()[2])
    for n, _, _ in samples(path):
        names.add(n)
    return names

def selector(sel):
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$', sel)
    return m.group(1), {k: unescape(v) for k, v in LABEL.findall(m.group(2) or '')}

def metric_names_in(expr):
    """The metric names a PromQL expression selects (strings, label matchers, ranges, grouping clauses,
    function calls, keywords and Grafana variables left out)."""
    m = re.match(r'^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$', expr.strip())
    if m:  # a Grafana variable query: only its series selector names a metric
        expr = m.group(1)
    e = re.sub(r'\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?', ' ', expr)
    e = re.sub(r'"(?:[^"\\]|\\.)*"', ' ', e)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", ' ', e)
    e = re.sub(r'\{[^}]*\}', ' ', e)
    e = re.sub(r'\[[^\]]*\]', ' ', e)
    e = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', ' ', e)
    keywords = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless',
                'offset', 'inf', 'nan', 'Inf', 'NaN'}
    names = []
    for m in re.finditer(r'(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?', e):
        if m.group(2) or m.group(1) in keywords:
            continue
        names.append(m.group(1))
    return names

def exprs(dash):
    out = []
    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == 'expr' and isinstance(v, str):
                    out.append(v)
                elif k == 'query' and isinstance(v, str) and v.startswith('label_values('):
                    out.append(v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(dash)
    return out

cmd = sys.argv[1]
if cmd == 'sum':            # sum FILE SELECTOR: the sum of the matching samples (labels given must match)
    name, want = selector(sys.argv[3])
    print(sum(v for n, l, v in samples(sys.argv[2]) if n == name and all(l.get(k) == x for k, x in want.items())))
elif cmd == 'count':        # count FILE SELECTOR: how many samples match
    name, want = selector(sys.argv[3])
    print(sum(1 for n, l, v in samples(sys.argv[2]) if n == name and all(l.get(k) == x for k, x in want.items())))
elif cmd == 'values':       # values FILE NAME|- LABEL: the distinct values of LABEL (on NAME, or on any sample)
    vals = sorted({l[sys.argv[4]] for n, l, v in samples(sys.argv[2])
                   if (sys.argv[3] == '-' or n == sys.argv[3]) and sys.argv[4] in l})
    print('\n'.join(vals))
elif cmd == 'dashboard':    # dashboard DASH FILE: every metric name the dashboard uses is in the exposition
    dash = json.load(open(sys.argv[2]))
    have = families(sys.argv[3])
    bad = []
    ex = exprs(dash)
    for e in ex:
        names = metric_names_in(e)
        if not names:
            bad.append(f'no metric name in {e!r}')
        for n in names:
            base = re.sub(r'_(bucket|sum|count)$', '', n)
            if n not in have and not (base != n and base in have):
                bad.append(f'{n} (in {e!r})')
    if bad:
        print('\n'.join(bad), file=sys.stderr)
        sys.exit(1)
    pass
elif cmd == 'dashboard-exprs':  # dashboard-exprs DASH: each expression, variables made concrete, one a line
    for e in exprs(json.load(open(sys.argv[2]))):
        if e.startswith('label_values('):
            continue
        e = e.replace('$__rate_interval', '1m').replace('$__range', '1h')
        e = re.sub(r'\$\{?(job|instance|model|provider)\}?', '.*', e)
        print(e.replace('\n', ' '))
elif cmd == 'dashboard-shape':  # dashboard-shape DASH: schemaVersion, a Prometheus datasource variable, panels
    d = json.load(open(sys.argv[2]))
    assert 36 <= d.get('schemaVersion', 0) <= 40, 'schemaVersion'
    ds = [v for v in d['templating']['list'] if v.get('type') == 'datasource' and v.get('query') == 'prometheus']
    assert ds, 'no Prometheus datasource variable'
    var = '${%s}' % ds[0]['name']
    panels = [p for p in d['panels'] if p.get('type') != 'row']
    assert len(panels) >= 15, 'too few panels'
    for p in panels:
        assert p['datasource']['uid'] == var, f"panel {p['title']} does not use {var}"
        assert p['targets'], f"panel {p['title']} has no query"
    pass
PY
msum()   { python3 "$M" sum "$@"; }
mcount() { python3 "$M" count "$@"; }
mvals()  { python3 "$M" values "$@"; }
# numeric comparisons of decimal values: ge A B, eq A B, between LO X HI
ge() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2" || {
  echo "  $1 < $2" >&2; return 1; }; }
eq() { python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) < 1e-9 else 1)' "$1" "$2" || {
  echo "  $1 != $2" >&2; return 1; }; }
between() { python3 -c 'import sys; a,x,b=map(float,sys.argv[1:]); sys.exit(0 if a < x < b else 1)' "$1" "$2" "$3" || {
  echo "  $2 not in ($1, $3)" >&2; return 1; }; }
# wait_for SECONDS CMD...: polls CMD every 100 ms
wait_for() {
  local t="$1" i
  shift
  for i in $(seq 1 $((t * 10))); do
    "$@" 2>/dev/null && return 0
    sleep 0.1
  done
  "$@"
}

OUT="$WD_TMP/out"
CODE=000
# post BODY_FILE [curl args...] -> $OUT, $CODE
post() {
  local f="$1"
  shift
  CODE=$(curl -sS -N -o "$OUT" -w '%{http_code}' --max-time 30 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' "$@" --data-binary "@$f" \
    "$WARDEN_URL/anthropic/v1/messages" 2>"$OUT.err") || true
}
bodyfile() { # bodyfile FILE MODEL STREAM
  python3 -c 'import json,sys; print(json.dumps({"model": sys.argv[1], "max_tokens": 64, "stream": sys.argv[2] == "true",
    "messages": [{"role": "user", "content": "hello metrics"}]}))' "$2" "$3" >"$1"
}
fault() {
  curl -sS --max-time 5 -o /dev/null -X POST "$FAKE_URL/_fake/reset"
  curl -sS --max-time 5 -o /dev/null --fail-with-body "$FAKE_URL/_fake/script" \
    -d "{\"mode\":\"faults\",\"faults\":[$1]}" || echo "could not script the fake: $1" >&2
}
# scrape FILE [BASE_URL] -> HTTP status on stdout, the body in FILE, the headers in FILE.h
scrape() {
  curl -sS --max-time 10 -D "$1.h" -o "$1" -w '%{http_code}' "${2:-$METRICS_URL}/metrics" 2>/dev/null || true
}
promtool_ok() { # promtool_ok FILE: promtool check metrics passes with nothing to say
  local out rc=0
  out=$(promtool check metrics <"$1" 2>&1) || rc=$?
  [ "$rc" -eq 0 ] && [ -z "$out" ] && return 0
  echo "  promtool (exit $rc): $(head -c 1500 <<<"$out")" >&2
  return 1
}

bodyfile "$WD_TMP/sonnet.json" claude-sonnet-4-5 false
bodyfile "$WD_TMP/stream.json" claude-sonnet-4-5 true
bodyfile "$WD_TMP/unknown.json" no-such-model false
bodyfile "$WD_TMP/quote.json" 'gemini/gemini-q"b\c' false

wd_start_fake
METRICS_PORT=$(wd_free_port)
METRICS_URL="http://127.0.0.1:$METRICS_PORT"
CFG=$(wd_config "$(wd_free_port)" "$FAKE_URL" "telemetry:
  metrics:
    listen: 127.0.0.1:$METRICS_PORT")
python3 - "$CFG" "$P_IN" "$P_OUT" "$P_CACHED" <<'PY'
import sys
p, i, o, c = sys.argv[1:]
s = open(p).read()
assert "models:\n" in s
open(p, "w").write(s.replace("models:\n", f"models:\n  prices:\n    gemini-2.5-flash: {{input: {i}, output: {o}, cached: {c}}}\n", 1))
PY
wd_start_warden "$CFG"
wd_wait_http "$METRICS_URL/metrics"

# ======== the exposition before any traffic
S="$WD_TMP/m0.txt"
check "GET /metrics answers 200" [ "$(scrape "$S")" = 200 ]
check "Content-Type is the text format 0.0.4" grep -qiF 'content-type: text/plain; version=0.0.4; charset=utf-8' "$S.h"
check "promtool check metrics: no complaints (no traffic yet)" promtool_ok "$S"
check "warden_build_info{version} is 1" eq "$(msum "$S" 'warden_build_info')" 1
check "the audit series keep their names (audit off: 0)" \
  eval '[ "$(mcount "$S" warden_audit_records_total)" = 1 ] && [ "$(mcount "$S" warden_audit_queue_depth)" = 1 ] &&
        [ "$(mcount "$S" warden_audit_database_connected)" = 1 ] && eq "$(msum "$S" warden_audit_records_total)" 0'
check "exporter series present: spans queued, exported, dropped by reason, export requests by result" \
  eval '[ "$(mcount "$S" warden_otel_spans_queued)" = 1 ] && [ "$(mcount "$S" warden_otel_spans_exported_total)" = 1 ] &&
        [ "$(mvals "$S" warden_otel_spans_dropped_total reason | tr "\n" " ")" = "encode export_failed queue_full shutdown " ] &&
        [ "$(mvals "$S" warden_otel_export_requests_total result | tr "\n" " ")" = "http_error ok timeout transport_error " ]'
now=$(date +%s)
check "process series: cpu, rss > 1 MiB, virtual, open fds, max fds, start time within the last 10 minutes" \
  eval 'ge "$(msum "$S" process_cpu_seconds_total)" 0 && ge "$(msum "$S" process_resident_memory_bytes)" 1048576 &&
        ge "$(msum "$S" process_virtual_memory_bytes)" "$(msum "$S" process_resident_memory_bytes)" &&
        ge "$(msum "$S" process_open_fds)" 3 && ge "$(msum "$S" process_max_fds)" "$(msum "$S" process_open_fds)" &&
        between $((now - 600)) "$(msum "$S" process_start_time_seconds)" $((now + 5))'

# ======== traffic of known shape
N200=0
for i in 1 2 3 4 5; do
  post "$WD_TMP/sonnet.json"
  [ "$CODE" = 200 ] && N200=$((N200 + 1))
done
for i in 1 2 3; do
  post "$WD_TMP/stream.json"
  [ "$CODE" = 200 ] && N200=$((N200 + 1))
done
check "8 requests answered 200 (5 whole, 3 streamed)" [ "$N200" = 8 ]
WARDEN_DEV_KEY=wrong-key post "$WD_TMP/sonnet.json"
check "a wrong key: 401" [ "$CODE" = 401 ]
post "$WD_TMP/unknown.json"
check "an unknown model: 404" [ "$CODE" = 404 ]
fault '{"status":429,"retry_after":1}'
post "$WD_TMP/sonnet.json"
check "the provider's 429: 429" [ "$CODE" = 429 ]
fault '{"finish_reason":"MALFORMED_FUNCTION_CALL"}'
post "$WD_TMP/sonnet.json"
check "a malformed function call is retried once and then answered 200" [ "$CODE" = 200 ]
[ "$CODE" = 200 ] && N200=$((N200 + 1))
fault ''
post "$WD_TMP/quote.json"
check "a provider model name with a quote and a backslash: 404" [ "$CODE" = 404 ]

S="$WD_TMP/m1.txt"
scrape "$S" >/dev/null
check "promtool check metrics: no complaints (after traffic)" promtool_ok "$S"
OKSEL='route="/anthropic/v1/messages",api="anthropic",model="gemini-2.5-flash",provider="gemini",status="200"'
check "warden_requests_total{route,api,model,provider,status=200} counts the $N200 answered calls" \
  eq "$(msum "$S" "warden_requests_total{$OKSEL}")" "$N200"
check "warden_request_duration_seconds: _count equals the request count, +Inf bucket equals _count" \
  eval 'eq "$(msum "$S" "warden_request_duration_seconds_count{$OKSEL}")" "$N200" &&
        eq "$(msum "$S" "warden_request_duration_seconds_bucket{$OKSEL,le=\"+Inf\"}")" "$N200"'
check "warden_request_duration_seconds: buckets 0.005 .. 300 s, and a positive sum" \
  eval '[ "$(mvals "$S" warden_request_duration_seconds_bucket le | sort -g | tr "\n" " ")" = "0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 20 30 60 120 300 +Inf " ] &&
        between 0 "$(msum "$S" "warden_request_duration_seconds_sum{$OKSEL}")" 300'
check "warden_time_to_first_token_seconds{api,model,provider}: the 3 streams" \
  eq "$(msum "$S" 'warden_time_to_first_token_seconds_count{api="anthropic",model="gemini-2.5-flash",provider="gemini"}')" 3
check "the wrong key: status 401, model and provider none" \
  eq "$(msum "$S" 'warden_requests_total{status="401",model="none",provider="none"}')" 1
check "the unknown model: status 404, model none (never what the client sent)" \
  eval 'eq "$(msum "$S" "warden_requests_total{status=\"404\",model=\"none\"}")" 1 && ! grep -q no-such-model "$S"'
check "warden_errors_total{api,class}: authentication 1, not_found 2, rate_limit 1" \
  eval 'eq "$(msum "$S" "warden_errors_total{api=\"anthropic\",class=\"authentication\"}")" 1 &&
        eq "$(msum "$S" "warden_errors_total{api=\"anthropic\",class=\"not_found\"}")" 2 &&
        eq "$(msum "$S" "warden_errors_total{api=\"anthropic\",class=\"rate_limit\"}")" 1'
check "warden_upstream_attempts_total{provider,model,outcome}: ok for each 200 and the retry's first try, http_error for the 429" \
  eval 'eq "$(msum "$S" "warden_upstream_attempts_total{provider=\"gemini\",model=\"gemini-2.5-flash\",outcome=\"ok\"}")" $((N200 + 1)) &&
        eq "$(msum "$S" "warden_upstream_attempts_total{provider=\"gemini\",model=\"gemini-2.5-flash\",outcome=\"http_error\"}")" 1'
check "warden_upstream_retries_total{provider=gemini} is 1" eq "$(msum "$S" 'warden_upstream_retries_total{provider="gemini"}')" 1
check "warden_tokens_total{model,key=dev,type}: input and output counted" \
  eval 'ge "$(msum "$S" "warden_tokens_total{model=\"gemini-2.5-flash\",key=\"dev\",type=\"input\"}")" "$N200" &&
        ge "$(msum "$S" "warden_tokens_total{model=\"gemini-2.5-flash\",key=\"dev\",type=\"output\"}")" "$N200"'
cost_ok() {
  local tin tout tc cost
  tin=$(msum "$S" 'warden_tokens_total{model="gemini-2.5-flash",key="dev",type="input"}')
  tout=$(msum "$S" 'warden_tokens_total{model="gemini-2.5-flash",key="dev",type="output"}')
  tc=$(msum "$S" 'warden_tokens_total{model="gemini-2.5-flash",key="dev",type="cached"}')
  cost=$(msum "$S" 'warden_cost_usd_total{model="gemini-2.5-flash",key="dev"}')
  python3 -c 'import sys; i,o,c,cost,pi,po,pc,n=map(float,sys.argv[1:]); want=(i*pi+o*po+c*pc)/1e6
sys.exit(0 if cost > 0 and abs(cost-want) <= n*1e-9 + 1e-12 else 1)' "$tin" "$tout" "$tc" "$cost" "$P_IN" "$P_OUT" "$P_CACHED" 20 ||
    { echo "  cost $cost for tokens $tin/$tout/$tc" >&2; return 1; }
}
check "warden_cost_usd_total{model,key}: tokens at the configured price per million" cost_ok
check "gauges back to 0: warden_open_streams{api=anthropic}, warden_inflight_requests" \
  eval 'eq "$(msum "$S" "warden_open_streams{api=\"anthropic\"}")" 0 && eq "$(msum "$S" warden_inflight_requests)" 0'
check "label values are escaped (a model name with a quote and a backslash)" \
  grep -qF 'model="gemini-q\"b\\c"' "$S"

# ======== a real Prometheus scrapes Warden during a load
PROM_PORT=$(wd_free_port)
mkdir -p "$WD_TMP/prom"
cat >"$WD_TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: warden
    static_configs:
      - targets: ['127.0.0.1:$METRICS_PORT']
YAML
prometheus --config.file="$WD_TMP/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
  --storage.tsdb.path="$WD_TMP/prom" --log.level=warn >"$WD_TMP/prometheus.log" 2>&1 &
PROM_PID=$!
WD_PIDS+=("$PROM_PID")
PROM="http://127.0.0.1:$PROM_PORT"
# pq QUERY: the value of an instant query's first sample ("" when none)
pq() { promtool query instant "$PROM" "$1" 2>&1 | sed -n 's/.* => \([^ ]*\) @.*/\1/p' | head -1; }
prom_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$PROM/-/ready")" = 200 ]; }
check "Prometheus 2.42 started" wait_for 30 prom_ready
check "Prometheus scrapes Warden (up == 1)" wait_for 20 eval '[ "$(pq "up{job=\"warden\"}")" = 1 ]'

LOAD=300
timeout 300 h2load -n $LOAD -c 4 -m 1 --h1 -d "$WD_TMP/sonnet.json" -H 'content-type: application/json' \
  -H "x-api-key: $WARDEN_DEV_KEY" "$WARDEN_URL/anthropic/v1/messages" >"$WD_TMP/load.out" 2>&1 || true
ok2xx=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$WD_TMP/load.out")
check "load: $LOAD calls, all answered 2xx ($ok2xx)" [ "${ok2xx:-0}" = "$LOAD" ]
N200=$((N200 + ${ok2xx:-0}))
check "Prometheus: sum(warden_requests_total{status=\"200\"}) reaches $N200 after the load (a scrape after it)" \
  wait_for 30 eval '[ "$(pq "sum(warden_requests_total{status=\"200\"})")" = "$N200" ]'
q=$(pq 'histogram_quantile(0.95, sum by (le) (warden_request_duration_seconds_bucket{route="/anthropic/v1/messages",status="200"}))')
check "Prometheus: histogram_quantile(0.95) of the request duration is a latency in (0, 300) s ($q)" between 0 "${q:-nan}" 300
q=$(pq 'histogram_quantile(0.5, sum by (le) (rate(warden_request_duration_seconds_bucket[1m])))')
check "Prometheus: histogram_quantile(0.5) over rate()[1m] answers ($q)" between 0 "${q:-nan}" 300
q=$(pq 'histogram_quantile(0.99, sum by (le, model) (warden_time_to_first_token_seconds_bucket))')
check "Prometheus: histogram_quantile(0.99) of time to first token answers ($q)" between 0 "${q:-nan}" 120
# every dashboard expression parses and evaluates
bad_exprs=0
while IFS= read -r e; do
  if ! out=$(promtool query instant "$PROM" "$e" 2>&1) || grep -qiE '^(query )?error' <<<"$out"; then
    bad_exprs=$((bad_exprs + 1))
    echo "  dashboard expression fails: $e: $(head -c 300 <<<"$out")" >&2
  fi
done < <(python3 "$M" dashboard-exprs "$DASH")
check "Prometheus: every dashboard expression evaluates without error" [ "$bad_exprs" = 0 ]
kill "$PROM_PID" 2>/dev/null || true
wait "$PROM_PID" 2>/dev/null || true

# ======== the Grafana dashboard
S="$WD_TMP/m2.txt"
scrape "$S" >/dev/null
check "deploy/grafana-dashboard.json is valid JSON" python3 -m json.tool "$DASH" /dev/null
check "dashboard: schemaVersion 36..40, a Prometheus datasource variable every panel uses" \
  python3 "$M" dashboard-shape "$DASH"
check "dashboard: every metric name in its expressions is in the exposition (_bucket/_sum/_count allowed)" \
  python3 "$M" dashboard "$DASH" "$S"

# ======== label cardinality: 100 distinct provider/model names
mkdir -p "$WD_TMP/card"
python3 - "$WD_TMP/card" <<'PY'
import json, random, sys
for i in range(100):
    with open(f"{sys.argv[1]}/{i}.json", "w") as f:
        json.dump({"model": f"gemini/gemini-card-{i}-{random.randrange(1 << 30)}", "max_tokens": 16,
                   "messages": [{"role": "user", "content": "hello metrics"}]}, f)
PY
ls "$WD_TMP"/card/*.json | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 \
  -H "x-api-key: $WARDEN_DEV_KEY" -H 'content-type: application/json' --data-binary @{} \
  "$WARDEN_URL/anthropic/v1/messages" >"$WD_TMP/card.codes" 2>/dev/null || true
card_ok=$(grep -cx 200 "$WD_TMP/card.codes" || true)
check "100 requests with distinct gemini/<model> names answered 200" [ "$card_ok" = 100 ]
S="$WD_TMP/m3.txt"
scrape "$S" >/dev/null
check "promtool check metrics: no complaints (after 100 model names)" promtool_ok "$S"
models_req=$(mvals "$S" warden_requests_total model | grep -vx none | wc -l)
check "warden_requests_total: $models_req model values besides none, at most $MAX_MODELS names + other" \
  [ "$models_req" -le $((MAX_MODELS + 1)) ]
check "the names past the table count as model=\"other\"" \
  eval 'mvals "$S" warden_requests_total model | grep -qx other && ge "$(msum "$S" "warden_requests_total{model=\"other\"}")" $((100 - MAX_MODELS))'
models_all=$(mvals "$S" - model | wc -l)
check "every series: $models_all model values, at most $MAX_MODELS names + other + none" \
  [ "$models_all" -le $((MAX_MODELS + 2)) ]
check "warden_metrics_label_overflow_total{label=model} counts the folded lookups" \
  ge "$(msum "$S" 'warden_metrics_label_overflow_total{label="model"}')" $((100 - MAX_MODELS))
check "no request id or message text in any label" eval '! grep -qE "req_|msg_|hello metrics" "$S"'

wd_stop_warden

# ======== telemetry.metrics.listen: /metrics on its own port only (and no models.prices)
MPORT=$(wd_free_port)
CFG2=$(wd_config "$(wd_free_port)" "$FAKE_URL" "telemetry:
  metrics:
    listen: 127.0.0.1:$MPORT")
wd_start_warden "$CFG2"
MURL="http://127.0.0.1:$MPORT"
check "the metrics listener answers" wd_wait_http "$MURL/metrics"
S="$WD_TMP/m4.txt"
check "the main listener answers /metrics with 404" [ "$(scrape "$S" "$WARDEN_URL")" = 404 ]
check "GET /metrics on the metrics listener: 200, text format 0.0.4" \
  eval '[ "$(scrape "$S" "$MURL")" = 200 ] && grep -qiF "content-type: text/plain; version=0.0.4" "$S.h"'
check "promtool check metrics: no complaints (metrics listener)" promtool_ok "$S"
check "the metrics listener: 404 for another path, for POST /metrics" \
  eval '[ "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$MURL/anthropic/v1/models")" = 404 ] &&
        [ "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 -X POST "$MURL/metrics")" = 404 ]'
check "the metrics listener: HEAD /metrics 200 without a body" \
  eval '[ "$(curl -s -I -o /dev/null -w "%{http_code}" --max-time 5 "$MURL/metrics")" = 200 ]'
post "$WD_TMP/sonnet.json"
check "a call on the main listener: 200" [ "$CODE" = 200 ]
scrape "$S" "$MURL" >/dev/null
check "the metrics listener counts it" eq "$(msum "$S" "warden_requests_total{$OKSEL}")" 1
check "no models.prices: no warden_cost_usd_total series (only its HELP and TYPE)" \
  eval '[ "$(mcount "$S" warden_cost_usd_total)" = 0 ] && grep -q "^# TYPE warden_cost_usd_total counter" "$S"'
# a scrape in flight while the listener's connections are open at exit
exec 7<>"/dev/tcp/127.0.0.1/$MPORT"
wd_stop_warden
exec 7>&-

# ======== telemetry.metrics.listen on a port already taken: Warden refuses to start
CFG3=$(wd_config "$(wd_free_port)" "$FAKE_URL" "telemetry:
  metrics:
    listen: 127.0.0.1:$FAKE_PORT")
rc=0
GEMINI_API_KEY=test-gemini-key timeout 20 "$WARDEN_BIN" serve --config "$CFG3" >"$WD_TMP/busy.out" 2>"$WD_TMP/busy.log" || rc=$?
check "metrics.listen on a busy port: exit 1 naming telemetry.metrics.listen" \
  eval '[ "$rc" = 1 ] && grep -qF "telemetry.metrics.listen" "$WD_TMP/busy.log"'
check "metrics.listen on a busy port: no sanitizer report" eval '! grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$WD_TMP/busy.log"'

wd_finish
