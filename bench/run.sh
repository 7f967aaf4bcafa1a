#!/usr/bin/env bash
# Warden's load benchmark (`make bench`): the fake Gemini in --bench mode, Warden (release build) and the peers a
# user would pick instead (claude-code-router, Portkey), all on 127.0.0.1, loaded by wrk; plus a translation
# micro-benchmark; plus the audit trail's cost: a second Warden with audit on (a throwaway PostgreSQL 15 started
# here with tests/pg.sh) as one more contender, and the audit writer's own throughput (bench/audit_writer_bench.c);
# plus the telemetry's cost: a third Warden with tracing at 100% sampling (OTLP/HTTP protobuf to
# tests/fakes/fake_otlp.mjs started here) and /metrics scraped once a second during its runs, as one more contender
# against Warden with no telemetry section; the access log line is off in both (it is neither tracing nor metrics).
# warden_audit_nohold is the audit contender with `durable_answers: false` (its own spool directory, its own ports):
# against warden_audit it measures what holding each answer's last bytes until its records are durable costs.
# Rewrites bench/README.md from this one run. Everything started here is stopped by PID on exit (PostgreSQL too).
#
# Environment knobs: BENCH_DURATION (s per c=32 run, 8), BENCH_LAT_DURATION (s per c=1 run, 2), BENCH_RUNS (3),
# BENCH_PEERS_DIR (/tmp/warden-bench-peers), BENCH_SKIP_PEERS=1, BENCH_OUT (bench/README.md),
# BENCH_RESULTS_COPY (also keep the raw results.jsonl there), BENCH_SKIP_AUDIT=1, BENCH_AUDIT_RECORDS (call
# records per writer run, 200000), BENCH_AUDIT_WRITER_RUNS (3), BENCH_SKIP_OTEL=1, BENCH_AB_PAIRS (5),
# BENCH_AB_DURATION (s per c=32 run of the tracing A/B, 3), BENCH_AB_LAT_DURATION (s per c=1 run of it, 1),
# BENCH_SKIP_BURST=1, BURST_STREAMS (5000), BURST_WAVES (5), BURST_SETTLE_MS (3000) for the memory-after-a-burst rows,
# BENCH_ONLY=callgrind|load (only that section, for direct, floor and Warden on both paths: no micro-benchmark,
# audit, telemetry, peers or burst; the full report is not written: the figures are printed, and the raw results
# kept in BENCH_RESULTS_COPY, /tmp/warden-bench-results.jsonl unless given; BENCH_OUT given: the report is written
# there too, with the sections not run left empty), BENCH_PATHS (gemini,anthropic: which paths are measured:
# gemini = Anthropic in, Gemini out, against fake_gemini.mjs --bench; anthropic = the pass-through to
# bench/fake_anthropic_bench.mjs), BENCH_WARDEN_BEFORE (another Warden binary, e.g. a release build of an earlier
# commit: one more contender on the Gemini path, same config, in the load rounds and the callgrind section, so that
# a change is measured against what it changes within one run), BENCH_BUILD (the build directory holding warden,
# floor_proxy and audit_writer_bench: build), BENCH_CONTENDERS (a comma-separated list: only those contenders are
# measured, in the load rounds and the callgrind section alike; all when unset), BENCH_SCENARIOS (a comma-separated
# list of "SIZE MODE" among "50k json", "50k sse", "300 json", "300 sse": only those, in both sections).
# Governance (issue 16): warden_vkey and warden_vkey_budget are one Warden with a `governance` section on its own
# database of the throwaway PostgreSQL (started for them even when the audit section is skipped), called with a
# virtual key made through its admin API (`warden keys create`): warden_vkey's team has no limit,
# warden_vkey_budget's has a large daily USD budget and its key a large requests-per-minute limit, so every call
# reserves and settles against two leases; warden_key46 (callgrind only) is the static key check with a key as long
# as a virtual key. The governance instance's database statements per admitted call are read from its /metrics.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-8}"
LAT_DURATION="${BENCH_LAT_DURATION:-2}"
RUNS="${BENCH_RUNS:-3}"
CONC=32
TTFB_N=50
WARMUP=2
PEERS_DIR="${BENCH_PEERS_DIR:-/tmp/warden-bench-peers}"
OUT="${BENCH_OUT:-$ROOT/bench/README.md}"
CCR_PKG="@musistudio/claude-code-router@2.0.0"
PORTKEY_PKG="@portkey-ai/gateway@1.15.2"
BUILD_DIR="${BENCH_BUILD:-$ROOT/build}"
WARDEN_BIN="$BUILD_DIR/warden"
WRITER_BENCH_BIN="$BUILD_DIR/audit_writer_bench"
FLOOR_BIN="$BUILD_DIR/floor_proxy"
AUDIT_RECORDS="${BENCH_AUDIT_RECORDS:-200000}"
AUDIT_WRITER_RUNS="${BENCH_AUDIT_WRITER_RUNS:-3}"
DEV_KEY="bench-dev-key"
GEMINI_KEY="bench-gemini-key"
ANTH_KEY="bench-anthropic-key"
ONLY="${BENCH_ONLY:-}"
case "$ONLY" in
  "") ;;
  callgrind | load)
    BENCH_SKIP_AUDIT=1 BENCH_SKIP_OTEL=1 BENCH_SKIP_PEERS=1 BENCH_SKIP_BURST=1
    [ "$ONLY" = load ] && BENCH_SKIP_CALLGRIND=1
    [ -n "${BENCH_RESULTS_COPY:-}" ] || BENCH_RESULTS_COPY=/tmp/warden-bench-results.jsonl ;;
  *) echo "BENCH_ONLY must be callgrind or load" >&2; exit 2 ;;
esac
PATHS=",${BENCH_PATHS:-gemini,anthropic},"
WANT=",${BENCH_CONTENDERS:-},"
# measured CONTENDER: is that contender's path among BENCH_PATHS (the pass-through contenders end in _anth), and is
# it among BENCH_CONTENDERS when that is given
measured() {
  [ "$WANT" = ",," ] || [[ "$WANT" == *,"$1",* ]] || return 1
  case "$1" in *_anth) [[ "$PATHS" == *,anthropic,* ]] ;; *) [[ "$PATHS" == *,gemini,* ]] ;; esac
}
SCEN_WANT=",${BENCH_SCENARIOS:-50k json,50k sse,300 json,300 sse},"
scenario_wanted() { [[ "$SCEN_WANT" == *,"$1",* ]]; }

TMP="$(mktemp -d /tmp/warden-bench.XXXXXX)"
RES="$TMP/results.jsonl"
PIDS=()
PG_PID="" PG_DIR="" PG_DATA=""
T_START=$(date +%s)
# the standard OpenTelemetry variables would configure the exporter of every Warden started here: none of them
for v in $(compgen -e | grep -E '^OTEL_' || true); do unset "$v"; done

pg_stop() {   # the throwaway PostgreSQL: fast shutdown (SIGINT) by PID, KILL after 10 s; its directory removed
  local i
  # interrupted while it was starting: its PID is in postmaster.pid before tests/pg.sh has set PG_PID
  if [ -z "$PG_PID" ] && [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/postmaster.pid" ]; then PG_PID=$(head -1 "$PG_DATA/postmaster.pid"); fi
  if [ -n "$PG_PID" ]; then
    kill -INT "$PG_PID" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PG_PID" 2>/dev/null || true
    PG_PID=""
  fi
  if [ -n "$PG_DIR" ]; then rm -rf "$PG_DIR"; PG_DIR=""; fi
}

cleanup() {   # TERM each process we started, KILL what is still there after 5 s, reap, stop PostgreSQL, remove the temp dir
  local pid i
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 1 50); do
    local alive=0
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  pg_stop
  [ -n "${BENCH_KEEP_TMP:-}" ] && { log "kept $TMP"; return; }
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[bench %3ds] %s\n' "$(($(date +%s) - T_START))" "$*" >&2; }
die() { log "error: $*"; exit 1; }
rec() { printf '%s\n' "$1" >>"$RES"; }   # one JSON object per line, read by bench/report.mjs

for tool in wrk node npm jq curl gcc taskset python3; do
  command -v "$tool" >/dev/null || die "$tool is required (wrk: apt-get install wrk)"
done
[ -x "$WARDEN_BIN" ] || die "$WARDEN_BIN missing: run make build (make bench does)"

# Pinning: the gateway under test on one core, the fake and the load generator on the other, the same way
# for every contender. On a single-core machine nothing is pinned.
NCPU=$(nproc)
# (Prefix arrays, not functions: taskset and env exec the command, so $! is the process we measure.)
if [ "$NCPU" -ge 2 ]; then
  GW_CORE=1 LOAD_CORE=0
  PIN_GW=(taskset -c "$GW_CORE")
  PIN_LOAD=(taskset -c "$LOAD_CORE")
else
  GW_CORE=none LOAD_CORE=none
  PIN_GW=(env)
  PIN_LOAD=(env)
fi
CLK_TCK=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

# Other processes on this machine may listen with SO_REUSEPORT; the port must be ours alone, on loopback only.
port_is_ours() {
  local port="$1" pid="$2" lines
  lines=$(ss -ltnpH "sport = :$port" 2>/dev/null || true)
  [ -n "$lines" ] || return 1
  ! grep -v "pid=$pid," <<<"$lines" | grep -q . || return 2
  ! awk '{print $4}' <<<"$lines" | grep -vq '^127\.0\.0\.1:' || return 3
  return 0
}

wait_port() {   # wait_port PORT PID SECONDS
  local i
  for i in $(seq 1 $(($3 * 20))); do
    kill -0 "$2" 2>/dev/null || return 1
    port_is_ours "$1" "$2" && return 0
    sleep 0.05
  done
  return 1
}

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# PostgreSQL's CPU: the postmaster, the children it reaped (cutime, cstime) and the live ones (backends, walwriter...)
pg_cpu_ticks() {
  local t c v
  t=$(sed 's/^.*) //' "/proc/$PG_PID/stat" | awk '{print $12 + $13 + $14 + $15}')
  for c in $(ps -o pid= --ppid "$PG_PID"); do
    v=$(sed 's/^.*) //' "/proc/$c/stat" 2>/dev/null | awk '{print $12 + $13}') || true
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
vm_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------------------
log "machine: $NCPU cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); gateway core $GW_CORE, fake+load core $LOAD_CORE"
git_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo true || echo false)
rec "$(jq -nc --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" --arg kernel "$(uname -r)" --arg node "$(node --version)" \
  --arg wrk "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" --arg rev "$git_rev" --argjson dirty "$git_dirty" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg gw "$GW_CORE" --arg lc "$LOAD_CORE" \
  --argjson nproc "$NCPU" --argjson dur "$DURATION" --argjson lat "$LAT_DURATION" --argjson runs "$RUNS" \
  --argjson conc "$CONC" --argjson ttfbn "$TTFB_N" --arg mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
  '{kind:"env",cpu:$cpu,date:$date,kernel:$kernel,node:$node,wrk:$wrk,rev:$rev,dirty:$dirty,load_start:$load,
    gw_core:$gw,load_core:$lc,nproc:$nproc,duration:$dur,lat_duration:$lat,runs:$runs,conc:$conc,ttfb_n:$ttfbn,mem:$mem}')"

# ---- bodies and the translation micro-benchmark ----------------------------------------------------------
log "building bench/translate_bench.c against api/, providers/ and lib/ (release flags)"
gcc -O3 -DNDEBUG -std=c17 -D_GNU_SOURCE -fno-strict-aliasing -Wall -Wextra -Wno-unused-parameter -I. \
  bench/translate_bench.c api/*.c providers/*.c lib/*.c -lcrypto -lm -o "$TMP/translate_bench"
node bench/make_bodies.mjs "$TMP"
# Gemini bodies for the direct baseline: what Warden's encoder writes (checked against the fake below).
"$TMP/translate_bench" --emit "$TMP/anthropic-50k-json.json" gemini-2.5-pro >"$TMP/gemini-50k.json"
"$TMP/translate_bench" --emit "$TMP/anthropic-300-json.json" gemini-2.5-flash >"$TMP/gemini-300.json"

# Several short processes rather than one long one: on this VM a process's speed is bimodal (it lands in a fast
# or a slow mode, about 2x apart, and stays there), so the median is taken over processes.
MICRO_RUNS=9
[ -n "$ONLY" ] && MICRO_RUNS=0
[ "$MICRO_RUNS" = 0 ] || log "translation micro-benchmark ($MICRO_RUNS processes x 2000 iterations, pinned to core $GW_CORE)"
for r in $(seq 1 "$MICRO_RUNS"); do
  m=$("${PIN_GW[@]}" "$TMP/translate_bench" --iters 2000 "$TMP/anthropic-50k-json.json" gemini-2.5-pro)
  rec "$(jq -c --argjson r "$r" '{kind:"micro",round:$r} + .' <<<"$m")"
done

# ---- Warden config ---------------------------------------------------------------------------------------
# WCFG_FAMILY=anthropic: the pass-through instance, a provider of type anthropic (the bench Anthropic fake) that
# every tier maps to, with the model names the bench requests ask for
WCFG_FAMILY=gemini
# WCFG_ADMIN=1: a second static key, the governance instance's break-glass admin (its admin API makes the keys)
WCFG_ADMIN=""
ADMIN_KEY="adm-$(head -c 18 /dev/urandom | base64 -w0 | tr '+/' '-_')"
warden_config() {   # warden_config FILE LISTEN_PORT FAKE_PORT [EXTRA_YAML]: @MPORT@ in EXTRA_YAML -> W_MPORT, a free port
  local extra="${4:-}" prov
  W_MPORT=$(free_port)
  if [ "$WCFG_FAMILY" = anthropic ]; then
    prov="providers:
  anthropic:
    type: anthropic
    base_url: http://127.0.0.1:$3
    keys:
      - secret: env://ANTHROPIC_API_KEY
models:
  tiers:
    opus: anthropic/claude-opus-5-5
    sonnet: anthropic/claude-sonnet-4-5
    haiku: anthropic/claude-haiku-4-5"
  else
    prov="providers:
  gemini:
    type: gemini
    base_url: http://127.0.0.1:$3
    keys:
      - secret: ${WCFG_KEYREF:-env://GEMINI_API_KEY}
models:
  tiers:
    opus: gemini/gemini-2.5-pro
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite"
  fi
  cat >"$1" <<YAML
# bench/run.sh: one worker, pinned to one core by taskset
listen: 127.0.0.1:$2
workers: 1
$prov
auth:
  keys:
    - name: bench
      secret: env://WARDEN_DEV_KEY${WCFG_ADMIN:+
    - name: admin
      secret: env://WARDEN_BENCH_ADMIN_KEY}
${extra//@MPORT@/$W_MPORT}
YAML
}

start_fake() {   # start_fake VAR_PREFIX [args...]: sets ${prefix}_PORT and ${prefix}_PID
  local prefix="$1"; shift
  local out="$TMP/fake-$prefix.out" i port=""
  "${PIN_LOAD[@]}" node "$ROOT/tests/fakes/fake_gemini.mjs" --port 0 --key "$GEMINI_KEY" "$@" >"$out" 2>"$out.err" &
  local pid=$!
  PIDS+=("$pid")
  for i in $(seq 1 200); do
    port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$out" | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$out.err" >&2; die "fake did not start"; }
  printf -v "${prefix}_PORT" '%s' "$port"
  printf -v "${prefix}_PID" '%s' "$pid"
}

start_warden() {   # start_warden FAKE_PORT [EXTRA_YAML]: sets W_PORT, W_PID, W_LOG
  local fport="$1" extra="${2:-}" try
  for try in 1 2 3; do
    W_PORT=$(free_port)
    warden_config "$TMP/warden-$W_PORT.yaml" "$W_PORT" "$fport" "$extra"
    W_LOG="$TMP/warden-$W_PORT.log"
    GEMINI_API_KEY="$GEMINI_KEY" ANTHROPIC_API_KEY="$ANTH_KEY" WARDEN_DEV_KEY="${WDEVKEY:-$DEV_KEY}" WARDEN_BENCH_ADMIN_KEY="$ADMIN_KEY" \
      "${PIN_GW[@]}" "${WBIN:-$WARDEN_BIN}" serve --config "$TMP/warden-$W_PORT.yaml" >"$W_LOG.out" 2>"$W_LOG" &
    W_PID=$!
    PIDS+=("$W_PID")
    wait_port "$W_PORT" "$W_PID" 10 && return 0
    kill "$W_PID" 2>/dev/null || true
    log "warden on port $W_PORT did not come up alone (another listener?); retrying"
  done
  tail -20 "$W_LOG" >&2
  die "warden did not start"
}

# ---- check the translation against the strict fake; capture what the fake received -----------------------
log "checking Warden's translations against the strict (validating) fake"
start_fake STRICT
start_warden "$STRICT_PORT"
for sz in 50k 300; do
  for tag in json sse; do
    code=$(curl -s -o "$TMP/strict-$sz-$tag.out" -w '%{http_code}' -H "x-api-key: $DEV_KEY" -H 'content-type: application/json' \
      --data-binary @"$TMP/anthropic-$sz-$tag.json" "http://127.0.0.1:$W_PORT/anthropic/v1/messages")
    [ "$code" = 200 ] || { cat "$TMP/strict-$sz-$tag.out" >&2; die "warden + strict fake: $sz $tag answered $code"; }
  done
  # the fake keeps the parsed body; it must equal the encoder output used for the direct baseline
  curl -s "http://127.0.0.1:$STRICT_PORT/_fake/requests" | jq -S '[.[] | select(.status == 200)][-1].body' >"$TMP/captured-$sz.json"
  jq -S . "$TMP/gemini-$sz.json" | cmp -s - "$TMP/captured-$sz.json" || die "captured Gemini body ($sz) differs from translate_bench --emit"
done
captured_paths=$(curl -s "http://127.0.0.1:$STRICT_PORT/_fake/requests" | jq -c '[.[].path] | unique')
rec "$(jq -nc --argjson p "$captured_paths" '{kind:"strict",ok:true,paths:$p}')"
kill -TERM "$W_PID" "$STRICT_PID" 2>/dev/null || true
wait "$W_PID" "$STRICT_PID" 2>/dev/null || true

# ---- the throwaway PostgreSQL 15, shared by the audit and governance contenders -----------------------------
PG_STATE="" PG_VERSION=""
pg_up() {   # starts it once (tests/pg.sh) with database "warden" and its login roles; 1 when it cannot (PG_STATE: why)
  [ -z "$PG_STATE" ] || { [ "$PG_STATE" = ok ]; return; }
  WD_PIDS=()                          # tests/pg.sh appends the postmaster here; this script stops it by PG_PID
  wd_free_port() { free_port; }
  source "$ROOT/tests/pg.sh"
  command -v psql >/dev/null || { PG_STATE="psql is required"; return 1; }
  [ -x "${PG_BIN:-/nonexistent}/initdb" ] || { PG_STATE="no PostgreSQL server binaries under /usr/lib/postgresql"; return 1; }
  PG_VERSION=$("$PG_BIN/postgres" --version | awk '{print $3}')
  log "starting a throwaway PostgreSQL $PG_VERSION (tests/pg.sh) on 127.0.0.1"
  wd_pg_start || { PG_STATE="PostgreSQL did not start"; return 1; }
  # PostgreSQL shares the load core with the fake and wrk; the gateway's core stays the gateway's. Backends fork
  # from the postmaster and inherit its affinity.
  if [ "$LOAD_CORE" != none ]; then
    for pid in "$PG_PID" $(ps -o pid= --ppid "$PG_PID"); do taskset -a -p -c "$LOAD_CORE" "$pid" >/dev/null || true; done
  fi
  # no autovacuum: the insert-only table would be vacuumed at random moments, under another contender's run
  psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "ALTER SYSTEM SET autovacuum = off" \
    -c "SELECT pg_reload_conf()" >/dev/null
  wd_pg_setup_db
  PG_STATE=ok
}

# ---- the audit trail: its writer's own throughput -----------------------------------------------------------
AUDIT=ok AUDIT_REASON=""
audit_off() { [ "$AUDIT" = ok ] || return 0; AUDIT=failed; AUDIT_REASON="$1"; log "audit not measured: $1"; }
[ "${BENCH_SKIP_AUDIT:-0}" = 1 ] && audit_off "skipped (BENCH_SKIP_AUDIT=1)"
if [ "$AUDIT" = ok ]; then
  command -v openssl >/dev/null || audit_off "openssl is required"
  [ -x "$WRITER_BENCH_BIN" ] || audit_off "$WRITER_BENCH_BIN missing: run make build (make bench does)"
fi
if [ "$AUDIT" = ok ]; then pg_up || audit_off "$PG_STATE"; fi
if [ "$AUDIT" = ok ]; then
  if "$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL" >"$TMP/migrate.out" 2>&1; then
    wd_pg_grant_roles
    openssl genpkey -algorithm ed25519 -out "$TMP/audit-key.pem" 2>/dev/null
  else
    audit_off "warden db migrate failed: $(tail -2 "$TMP/migrate.out" | tr '\n' ' ' | cut -c1-300)"
  fi
fi
if [ "$AUDIT" = ok ]; then
  rec "$(jq -nc --arg v "$PG_VERSION" --arg core "$LOAD_CORE" '{kind:"audit_setup",ok:true,pg_version:$v,pg_core:$core}')"
  # The writer alone: audit/writer.c on one libuv loop (pinned like the gateway), call records appended as fast as
  # its bounded queue takes them, into the same database as the `warden` role.
  log "audit writer throughput: $AUDIT_WRITER_RUNS runs x $AUDIT_RECORDS call records (writer on core $GW_CORE, PostgreSQL on core $LOAD_CORE)"
  mkdir -p "$TMP/audit-writer-spool"
  for r in $(seq 1 "$AUDIT_WRITER_RUNS"); do
    p0=$(pg_cpu_ticks)
    out=$("${PIN_GW[@]}" "$WRITER_BENCH_BIN" --db "$WD_DB_URL" --spool "$TMP/audit-writer-spool" \
      --key "file://$TMP/audit-key.pem" --records "$AUDIT_RECORDS" 2>"$TMP/audit-writer.err") || true
    sleep 0.2   # the backend has exited; let the postmaster reap it (its CPU moves to cutime)
    p1=$(pg_cpu_ticks)
    errtail=$(grep -v '"level":"info"' "$TMP/audit-writer.err" | tail -3 | cut -c1-300) || true
    if jq -e .records_per_s >/dev/null 2>&1 <<<"$out"; then
      rec "$(jq -c --argjson r "$r" --argjson pg "$(((p1 - p0) * 1000000 / CLK_TCK))" --arg err "$errtail" \
        '{kind:"audit_writer",round:$r,pg_cpu_us:$pg,stderr:$err} + .' <<<"$out")"
      log "audit writer run $r: $(jq -r '"\(.records_per_s | floor) records/s, \(.batches) batches, database check \(if .ok then "ok" else "FAILED" end)"' <<<"$out")"
    else
      rec "$(jq -nc --argjson r "$r" --arg err "$errtail" '{kind:"audit_writer",round:$r,ok:false,stderr:$err}')"
      log "audit writer run $r failed: $errtail"
    fi
  done
else
  rec "$(jq -nc --arg why "$AUDIT_REASON" '{kind:"audit_setup",ok:false,reason:$why}')"
fi

# ---- the bench fake and the contenders -------------------------------------------------------------------
start_fake FAKE --bench --workers 1
FAKE_URL="http://127.0.0.1:$FAKE_PORT"
log "bench fake on $FAKE_URL (pid $FAKE_PID, core $LOAD_CORE)"
# the pass-through's upstream: bench/fake_anthropic_bench.mjs, pinned like the Gemini fake
"${PIN_LOAD[@]}" node "$ROOT/bench/fake_anthropic_bench.mjs" --port 0 >"$TMP/fake-anth.out" 2>"$TMP/fake-anth.err" &
AFAKE_PID=$!
PIDS+=("$AFAKE_PID")
AFAKE_PORT=""
for i in $(seq 1 200); do
  AFAKE_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$TMP/fake-anth.out" | head -1)
  [ -n "$AFAKE_PORT" ] && break
  sleep 0.05
done
[ -n "$AFAKE_PORT" ] && port_is_ours "$AFAKE_PORT" "$AFAKE_PID" || { cat "$TMP/fake-anth.err" >&2; die "fake_anthropic_bench.mjs did not start"; }
AFAKE_URL="http://127.0.0.1:$AFAKE_PORT"
log "bench Anthropic fake on $AFAKE_URL (pid $AFAKE_PID, core $LOAD_CORE)"

declare -A URL HDRS BODYKIND PID_OF STATUS REASON
CONTENDERS=(direct floor warden warden_before warden_oidc warden_vkey warden_vkey_budget direct_anth floor_anth warden_anth warden_audit warden_audit_nohold warden_otel ccr portkey)
fake_url_of() { case "$1" in *_anth) echo "$AFAKE_URL" ;; *) echo "$FAKE_URL" ;; esac; }

# direct: the fake's own endpoints with the Gemini body
STATUS[direct]=ok
PID_OF[direct]=""
STATUS[direct_anth]=ok
PID_OF[direct_anth]=""

# Warden and Warden with audit on: no tracing, no scrapes, and the JSON access log line (on by default) off, so
# that the telemetry contender below is measured against all of it off.
TELEMETRY_OFF_YAML="telemetry:
  metrics:
    listen: 127.0.0.1:@MPORT@
  logs:
    access: false"
start_warden "$FAKE_PORT" "$TELEMETRY_OFF_YAML"
STATUS[warden]=ok
PID_OF[warden]=$W_PID
log "warden on 127.0.0.1:$W_PORT (pid $W_PID, core $GW_CORE, workers: 1)"

# floor: bench/floor_proxy.c, a pass-through proxy made of the parts Warden's request path is made of (libh2o on
# libuv, net/upstream.c's libcurl client, one loop) doing no work of its own: what it adds over direct is what
# this stack adds on this machine before any authentication, JSON or translation. Same pinning as Warden.
STATUS[floor]=failed REASON[floor]="$FLOOR_BIN not built"
PID_OF[floor]=""
if [ -x "$FLOOR_BIN" ]; then
  FL_PORT=$(free_port)
  "${PIN_GW[@]}" "$FLOOR_BIN" "$FL_PORT" "$FAKE_URL" >"$TMP/floor.out" 2>"$TMP/floor.log" &
  FL_PID=$!
  PIDS+=("$FL_PID")
  if wait_port "$FL_PORT" "$FL_PID" 10; then
    STATUS[floor]=ok PID_OF[floor]=$FL_PID
    log "floor proxy on 127.0.0.1:$FL_PORT (pid $FL_PID, core $GW_CORE)"
  else
    REASON[floor]="it did not start: $(tail -2 "$TMP/floor.log" | tr '\n' ' ')"
  fi
fi
[ "${STATUS[floor]}" = ok ] || log "floor: ${REASON[floor]}"
# floor_anth: the same binary in front of the Anthropic fake, passing the client's Messages request on unchanged
STATUS[floor_anth]=failed REASON[floor_anth]="$FLOOR_BIN not built"
PID_OF[floor_anth]=""
if [ -x "$FLOOR_BIN" ]; then
  FLA_PORT=$(free_port)
  "${PIN_GW[@]}" "$FLOOR_BIN" "$FLA_PORT" "$AFAKE_URL" >"$TMP/floor-anth.out" 2>"$TMP/floor-anth.log" &
  FLA_PID=$!
  PIDS+=("$FLA_PID")
  if wait_port "$FLA_PORT" "$FLA_PID" 10; then
    STATUS[floor_anth]=ok PID_OF[floor_anth]=$FLA_PID
    log "floor proxy for the pass-through on 127.0.0.1:$FLA_PORT (pid $FLA_PID, core $GW_CORE)"
  else
    REASON[floor_anth]="it did not start: $(tail -2 "$TMP/floor-anth.log" | tr '\n' ' ')"
  fi
fi
[ "${STATUS[floor_anth]}" = ok ] || log "floor_anth: ${REASON[floor_anth]}"

# warden_anth: Warden with a provider of type anthropic (the relay path), same telemetry-off settings as warden
sv=("$W_PORT" "$W_PID" "$W_LOG")
WCFG_FAMILY=anthropic
start_warden "$AFAKE_PORT" "$TELEMETRY_OFF_YAML"
WCFG_FAMILY=gemini
WN_PORT=$W_PORT WN_PID=$W_PID WN_LOG=$W_LOG
W_PORT=${sv[0]} W_PID=${sv[1]} W_LOG=${sv[2]}
STATUS[warden_anth]=ok
PID_OF[warden_anth]=$WN_PID
log "warden for the pass-through on 127.0.0.1:$WN_PORT (pid $WN_PID, core $GW_CORE, workers: 1, provider type anthropic)"

# warden_before: BENCH_WARDEN_BEFORE's binary with the Gemini contender's config
STATUS[warden_before]=failed REASON[warden_before]="BENCH_WARDEN_BEFORE not given"
PID_OF[warden_before]=""
if [ -n "${BENCH_WARDEN_BEFORE:-}" ]; then
  [ -x "$BENCH_WARDEN_BEFORE" ] || die "BENCH_WARDEN_BEFORE=$BENCH_WARDEN_BEFORE is not an executable"
  sv=("$W_PORT" "$W_PID" "$W_LOG")
  WBIN="$BENCH_WARDEN_BEFORE" start_warden "$FAKE_PORT" "$TELEMETRY_OFF_YAML"
  WB_PORT=$W_PORT WB_PID=$W_PID
  W_PORT=${sv[0]} W_PID=${sv[1]} W_LOG=${sv[2]}
  STATUS[warden_before]=ok PID_OF[warden_before]=$WB_PID
  log "warden before ($BENCH_WARDEN_BEFORE) on 127.0.0.1:$WB_PORT (pid $WB_PID, core $GW_CORE, workers: 1)"
fi

# warden_audit: the same build and config plus an audit section (what the issue asks to measure), its own port
wa_metrics() {   # wa_metrics [METRICS_PORT]: an audit instance's writer counters (GET /metrics) as one JSON object;
                 # warden_audit's unless another port is given
  curl -s --max-time 2 "http://127.0.0.1:${1:-$WA_MPORT}/metrics" | awk '
    $1 == "warden_audit_records_total" {r = $2}  $1 == "warden_audit_records_written_total" {w = $2}
    $1 == "warden_audit_records_spooled_total" {s = $2}  $1 == "warden_audit_records_refused_total" {f = $2}
    $1 == "warden_audit_batches_total" {b = $2}  $1 == "warden_audit_checkpoints_total" {k = $2}
    $1 == "warden_audit_queue_depth" {q = $2}  $1 == "warden_audit_database_connected" {c = $2}
    $1 == "warden_audit_spool_bytes" {sb = $2}
    END {printf "{\"records\":%d,\"written\":%d,\"spooled\":%d,\"refused\":%d,\"batches\":%d,\"checkpoints\":%d,\"queue\":%d,\"spool_bytes\":%d,\"connected\":%d}\n", r, w, s, f, b, k, q, sb, c}'
}
wa_drain() {   # wa_drain [METRICS_PORT]: waits (at most 120 s) until every audit record of that instance
               # (warden_audit's unless given) is in the database (queue empty, spool replayed); prints the ms waited
  local t0 i
  t0=$(date +%s%N)
  for i in $(seq 1 2400); do
    [ "$(wa_metrics "${1:-}" | jq '.queue + .spool_bytes')" = 0 ] && break
    sleep 0.05
  done
  echo $((($(date +%s%N) - t0) / 1000000))
}
# start_audit_contender NAME YAML: a Warden with that audit section (and the telemetry-off settings), measured once
# its writer is connected: sets STATUS, REASON and PID_OF of NAME, and WA_PORT, WA_PID, WA_LOG, WA_MPORT
start_audit_contender() {
  local name="$1" yaml="$2" sv i
  sv=("$W_PORT" "$W_PID" "$W_LOG")
  start_warden "$FAKE_PORT" "$yaml
$TELEMETRY_OFF_YAML"
  WA_PORT=$W_PORT WA_PID=$W_PID WA_LOG=$W_LOG WA_MPORT=$W_MPORT
  W_PORT=${sv[0]} W_PID=${sv[1]} W_LOG=${sv[2]}
  PID_OF[$name]=$WA_PID
  for i in $(seq 1 200); do [ "$(wa_metrics "$WA_MPORT" | jq .connected)" = 1 ] && break; sleep 0.05; done
  if [ "$(wa_metrics "$WA_MPORT" | jq .connected)" = 1 ]; then
    STATUS[$name]=ok
    return 0
  fi
  STATUS[$name]=failed REASON[$name]="its audit writer did not connect: $(grep -v '"level":"info"' "$WA_LOG" | tail -2 | tr '\n' ' ' | cut -c1-300)"
  return 1
}
if [ "$AUDIT" = ok ]; then
  AUDIT_YAML="audit:
  database: $WD_DB_URL
  mode: fail_open
  content: hash
  spool: $TMP/audit-spool
  checkpoints:
    every_records: 1000
    every_seconds: 10
    signing_key: file://$TMP/audit-key.pem"
  if start_audit_contender warden_audit "$AUDIT_YAML"; then
    log "warden with audit on 127.0.0.1:$WA_PORT (pid $WA_PID, core $GW_CORE, workers: 1), writer connected"
  else
    log "warden with audit: ${REASON[warden_audit]}"
  fi
else
  STATUS[warden_audit]=failed REASON[warden_audit]="$AUDIT_REASON"
fi

# warden_audit_nohold: warden_audit's config with audit.durable_answers off, so that the pair measures the hold
# alone. A spool directory of its own: a writer replays any spool file it can lock in its directory as a dead
# writer's, and the two instances must not take each other's records.
STATUS[warden_audit_nohold]=failed PID_OF[warden_audit_nohold]=""
AUDIT_NOHOLD_YAML=""
if [ "$AUDIT" != ok ]; then
  REASON[warden_audit_nohold]="$AUDIT_REASON"
elif ! measured warden_audit_nohold; then
  REASON[warden_audit_nohold]="not among BENCH_CONTENDERS or BENCH_PATHS"
else
  AUDIT_NOHOLD_YAML="${AUDIT_YAML/audit-spool/audit-spool-nohold}
  durable_answers: false"
  wa=("${WA_PORT:-}" "${WA_PID:-}" "${WA_LOG:-}" "${WA_MPORT:-}")   # warden_audit's, kept
  start_audit_contender warden_audit_nohold "$AUDIT_NOHOLD_YAML" || true
  WAN_PORT=$WA_PORT WAN_PID=$WA_PID WAN_LOG=$WA_LOG WAN_MPORT=$WA_MPORT
  WA_PORT=${wa[0]} WA_PID=${wa[1]} WA_LOG=${wa[2]} WA_MPORT=${wa[3]}
  if [ "${STATUS[warden_audit_nohold]}" = ok ]; then
    log "warden with audit, durable_answers off, on 127.0.0.1:$WAN_PORT (pid $WAN_PID, core $GW_CORE, workers: 1), writer connected"
  else
    log "warden with audit, durable_answers off: ${REASON[warden_audit_nohold]}"
  fi
fi

# warden_otel: the same build and config with telemetry on (issue #4): every trace sampled and exported over
# OTLP/HTTP protobuf to tests/fakes/fake_otlp.mjs (a strict receiver that stores each export; it shares the load
# core, like PostgreSQL), and /metrics scraped once a second during each of its runs (run_wrk). The JSON access log
# line is off, as in the all-off contender: the issue's target is the cost of tracing and metrics, and a log line
# written to a file in one contender and not the other would be measured with them. Its spans are counted after each run (bench/count_spans.mjs, which deletes the exports).
wo_metrics() {   # the telemetry instance's exporter counters (GET /metrics) as one JSON object
  curl -s --max-time 2 "http://127.0.0.1:$WO_MPORT/metrics" | awk '
    $1 == "warden_otel_spans_exported_total" {e = $2}
    $1 ~ /^warden_otel_spans_dropped_total\{reason="queue_full"\}$/ {qf = $2}
    $1 ~ /^warden_otel_spans_dropped_total\{/ {d += $2}
    $1 ~ /^warden_otel_export_requests_total\{result="ok"\}$/ {ok = $2}
    $1 ~ /^warden_otel_export_requests_total\{/ {r += $2}
    END {printf "{\"exported\":%d,\"dropped\":%d,\"dropped_queue_full\":%d,\"export_requests\":%d,\"export_ok\":%d}\n", e, d, qf, r, ok}'
}
otlp_requests() { curl -s --max-time 2 "$OTLP_URL/_fake/stats" | jq '.requests // -1'; }
# Waits until the spans of what was just sent are exported and answered (at most 8 s), counts them in the
# collector's files (and deletes those), and prints the count as JSON with the milliseconds waited. The exporter
# takes every queued span once a second (otel/exporter.c) and a request's spans are queued when it ends, so: one
# export request answered after now (two if one was in flight now), and the collector has seen no request Warden
# has not had the answer to. (Spans queued between an export's taking them and now wait for the next collect.)
wo_collect() {   # wo_collect [MAX_WAIT_MS]: 8000 unless given; 0 counts what is there without waiting
  local t0 r0 f0 need=1 r f max="${1:-8000}"
  t0=$(date +%s%N)
  r0=$(wo_metrics | jq .export_requests)
  f0=$(otlp_requests)
  [ "$f0" -gt "$r0" ] && need=2
  r=$r0 f=$f0
  while [ $((($(date +%s%N) - t0) / 1000000)) -lt "$max" ]; do
    r=$(wo_metrics | jq .export_requests)
    f=$(otlp_requests)
    [ $((r - r0)) -ge "$need" ] && [ "$f" = "$r" ] && break
    sleep 0.05
  done
  [ "$max" = 0 ] && need=0
  node "$ROOT/bench/count_spans.mjs" "$OTLP_DIR" |
    jq -c --argjson ms "$((($(date +%s%N) - t0) / 1000000))" --argjson to "$([ $((r - r0)) -ge "$need" ] && [ "$f" = "$r" ] && echo false || echo true)" \
      '. + {collect_ms:$ms,collect_timed_out:$to}'
}
otel_delta() {   # otel_delta BEFORE AFTER SPANS_JSON -> the run's exporter figures as one JSON object
  jq -nc --argjson a "$1" --argjson b "$2" --argjson s "$3" \
    '{exported:($b.exported - $a.exported),dropped:($b.dropped - $a.dropped),dropped_queue_full:($b.dropped_queue_full - $a.dropped_queue_full),
      export_requests:($b.export_requests - $a.export_requests),export_ok:($b.export_ok - $a.export_ok)} + {received:$s}'
}
SCRAPE_PID=""
scrape_start() {   # scrape_start SECONDS: GET /metrics once a second, at most SECONDS + 2 times, in the background
  : >"$TMP/scrape.out"
  "${PIN_LOAD[@]}" bash -c 'for i in $(seq 1 "$1"); do curl -s --max-time 2 -o /dev/null -w "%{http_code} %{size_download}\n" "$2" >>"$3"; sleep 1; done' \
    scrape "$(($1 + 2))" "http://127.0.0.1:$WO_MPORT/metrics" "$TMP/scrape.out" &
  SCRAPE_PID=$!
}
scrape_stop() {   # prints {"scrapes":N,"scrape_ok":N,"scrape_bytes":N}
  [ -n "$SCRAPE_PID" ] && { kill -TERM "$SCRAPE_PID" 2>/dev/null || true; wait "$SCRAPE_PID" 2>/dev/null || true; }
  SCRAPE_PID=""
  awk '{n++} $1 == 200 {ok++; b += $2} END {printf "{\"scrapes\":%d,\"scrape_ok\":%d,\"scrape_bytes\":%d}\n", n, ok, (ok ? b / ok : 0)}' "$TMP/scrape.out"
}
OTEL=ok OTEL_REASON=""
[ "${BENCH_SKIP_OTEL:-0}" = 1 ] && OTEL=failed OTEL_REASON="skipped (BENCH_SKIP_OTEL=1)"
if [ "$OTEL" = ok ]; then
  OTLP_DIR="$TMP/otlp"
  "${PIN_LOAD[@]}" node "$ROOT/tests/fakes/fake_otlp.mjs" --port 0 --dir "$OTLP_DIR" >"$TMP/otlp.out" 2>"$TMP/otlp.err" &
  OTLP_PID=$!
  PIDS+=("$OTLP_PID")
  OTLP_PORT=""
  for i in $(seq 1 200); do
    OTLP_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$TMP/otlp.out" | head -1)
    [ -n "$OTLP_PORT" ] && break
    sleep 0.05
  done
  if [ -z "$OTLP_PORT" ] || ! port_is_ours "$OTLP_PORT" "$OTLP_PID"; then
    OTEL=failed OTEL_REASON="fake_otlp.mjs did not start listening on 127.0.0.1 alone: $(tail -3 "$TMP/otlp.err" | tr '\n' ' ' | cut -c1-300)"
  fi
fi
if [ "$OTEL" = ok ]; then
  OTLP_URL="http://127.0.0.1:$OTLP_PORT"
  OTEL_YAML="telemetry:
  service_name: warden-bench
  otlp:
    endpoint: $OTLP_URL
    protocol: http/protobuf
    sampling_ratio: 1.0
  metrics:
    listen: 127.0.0.1:@MPORT@
  logs:
    access: false"
  sv=("$W_PORT" "$W_PID" "$W_LOG")
  start_warden "$FAKE_PORT" "$OTEL_YAML"
  WO_PORT=$W_PORT WO_PID=$W_PID WO_LOG=$W_LOG WO_MPORT=$W_MPORT
  W_PORT=${sv[0]} W_PID=${sv[1]} W_LOG=${sv[2]}
  PID_OF[warden_otel]=$WO_PID
  if grep -q "exporting traces to $OTLP_URL/v1/traces" "$WO_LOG" && [ "$(wo_metrics | jq .export_requests)" = 0 ]; then
    STATUS[warden_otel]=ok
    log "warden with telemetry on 127.0.0.1:$WO_PORT (pid $WO_PID, core $GW_CORE, workers: 1), exporting to $OTLP_URL (fake_otlp pid $OTLP_PID, core $LOAD_CORE)"
  else
    STATUS[warden_otel]=failed REASON[warden_otel]="it does not say it exports traces to $OTLP_URL/v1/traces: $(grep -v '"level":"info"' "$WO_LOG" | tail -2 | tr '\n' ' ' | cut -c1-300)"
    log "warden with telemetry: ${REASON[warden_otel]}"
  fi
  rec "$(jq -nc --arg s "${STATUS[warden_otel]}" --arg r "${REASON[warden_otel]:-}" '{kind:"otel_setup",ok:($s == "ok"),reason:$r,protocol:"http/protobuf",sampling_ratio:1.0,access_log:false,scrape_interval_s:1}')"
else
  STATUS[warden_otel]=failed REASON[warden_otel]="$OTEL_REASON"
  log "telemetry not measured: $OTEL_REASON"
  rec "$(jq -nc --arg r "$OTEL_REASON" '{kind:"otel_setup",ok:false,reason:$r}')"
fi

# warden_oidc: Warden with an OIDC issuer whose keys tests/idp/tokens.mjs serves, called with a bearer token of it
# (RS256) instead of the static key: the token cache's cost on the request path (callgrind), and its req/s at c=32
# against the static key in the load rounds
OIDC_TOKEN="" OIDC_YAML="" LONG_KEY=""
STATUS[warden_oidc]=failed REASON[warden_oidc]="not measured (BENCH_CONTENDERS, BENCH_PATHS or BENCH_ONLY=callgrind)"
PID_OF[warden_oidc]=""
if measured warden_oidc || measured warden_longkey; then
  OIDC_OUT="$TMP/oidc-jwks.out"
  node "$ROOT/tests/idp/tokens.mjs" serve-jwks --port 0 --keydir "$TMP/oidc-keys" >"$OIDC_OUT" 2>/dev/null &
  PIDS+=("$!")
  for i in $(seq 1 100); do grep -q '"port"' "$OIDC_OUT" 2>/dev/null && break; sleep 0.05; done
  OIDC_PORT=$(sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$OIDC_OUT" | head -1)
  if [ -n "$OIDC_PORT" ]; then
    OIDC_TOKEN=$(node "$ROOT/tests/idp/tokens.mjs" valid-rs256 --signer local --keydir "$TMP/oidc-keys" \
      --issuer https://idp.bench.example/ --aud api://warden --ttl 86400 --claims '{"groups":["bench"]}' 2>/dev/null || true)
    OIDC_YAML="  oidc:
    - name: bench
      issuer: https://idp.bench.example/
      audience: api://warden
      jwks_uri: http://127.0.0.1:$OIDC_PORT/jwks"
  fi
  [ -n "$OIDC_TOKEN" ] || { REASON[warden_oidc]="no token (tests/idp/tokens.mjs failed)"; log "warden_oidc: ${REASON[warden_oidc]}; not measured"; }
  # warden_longkey: the static key check with a key as long as that token, sent the same way: what carrying that
  # many bytes in a header costs before any OIDC work (libh2o parses the head twice, the key is hashed)
  LONG_KEY="wk$(head -c $(( ${#OIDC_TOKEN} * 2 )) /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c $(( ${#OIDC_TOKEN} - 2 )))"
fi
if [ -n "$OIDC_TOKEN" ] && measured warden_oidc && [ "$ONLY" != callgrind ]; then
  sv=("$W_PORT" "$W_PID" "$W_LOG")
  start_warden "$FAKE_PORT" "$OIDC_YAML
$TELEMETRY_OFF_YAML"
  WI_PORT=$W_PORT WI_PID=$W_PID
  W_PORT=${sv[0]} W_PID=${sv[1]} W_LOG=${sv[2]}
  STATUS[warden_oidc]=ok PID_OF[warden_oidc]=$WI_PID REASON[warden_oidc]=""
  log "warden with an OIDC issuer on 127.0.0.1:$WI_PORT (pid $WI_PID, core $GW_CORE, workers: 1)"
fi

# warden_vault: callgrind only, Warden whose Gemini key is a vault:// reference (tests/fakes/fake_vault.mjs, plain
# HTTP on loopback, a token), cached after the warm-up: the request path's cost of a vault credential against
# warden's env:// one (issue 17: no more instructions); the resolver thread's work shows apart, by thread. The two
# configs differ only in the reference, of the same length (vault://secret/b#key, env://GEMINI_API_KEY: the cache
# hashes it per request): Vault's address and token come from VAULT_ADDR and VAULT_TOKEN, so no config section
# changes the process's start-up allocations (malloc's state alone moves a request by a few hundred instructions)
VAULT_YAML="" VAULT_ADDR_BENCH="" VAULT_BENCH_TOKEN="bench-vault-root"
if measured warden_vault; then
  VAULT_OUT="$TMP/vault.out"
  node "$ROOT/tests/fakes/fake_vault.mjs" --port 0 --root-token "$VAULT_BENCH_TOKEN" >"$VAULT_OUT" 2>/dev/null &
  PIDS+=("$!")
  for i in $(seq 1 100); do grep -q '"port"' "$VAULT_OUT" 2>/dev/null && break; sleep 0.05; done
  VAULT_PORT=$(sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$VAULT_OUT" | head -1)
  if [ -n "$VAULT_PORT" ] && curl -sf -o /dev/null -X POST "http://127.0.0.1:$VAULT_PORT/_fake/secret" \
       -d "$(jq -nc --arg k "$GEMINI_KEY" '{mount:"secret",path:"b",data:{key:$k}}')"; then
    VAULT_YAML="# the key from Vault (VAULT_ADDR, VAULT_TOKEN)" VAULT_ADDR_BENCH="http://127.0.0.1:$VAULT_PORT"
  else
    log "warden_vault: fake_vault did not start; not measured"
  fi
fi

# warden_key46: callgrind only, the static key check with a key as long as a virtual key (46 characters), sent the
# same way (x-api-key); not wk-: that prefix is what sends a key to the governance lookup
KEY46="sk-$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 43)"

# warden_vkey, warden_vkey_budget: one Warden with a governance section on the database warden_gov of the same
# PostgreSQL (migrated there, the login role warden granted warden_governance), a static admin key; its admin API
# (the `warden` CLI) makes two teams and a virtual key in each. The team of warden_vkey_budget's key has a daily USD
# budget and the key a requests-per-minute limit, both far above what a run spends, so every call reserves against
# two leases and settles; the other team has no limit. The callgrind instances use the same database and keys.
STATUS[warden_vkey]=failed STATUS[warden_vkey_budget]=failed PID_OF[warden_vkey]="" PID_OF[warden_vkey_budget]=""
GOV=ok GOV_REASON="" VKEY="" VKEY_BUDGET="" VKEY_BUDGET_ID=""
gov_off() { [ "$GOV" = ok ] || return 0; GOV=failed; GOV_REASON="$1"; log "governance not measured: $1"; }
measured warden_vkey || measured warden_vkey_budget || gov_off "not among BENCH_CONTENDERS or BENCH_PATHS"
if [ "$GOV" = ok ]; then pg_up || gov_off "$PG_STATE"; fi
if [ "$GOV" = ok ]; then
  psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE warden_gov" >/dev/null
  if "$WARDEN_BIN" db migrate --db "postgresql://postgres@127.0.0.1:$PG_PORT/warden_gov" >"$TMP/migrate-gov.out" 2>&1; then
    psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d warden_gov -c "GRANT warden_governance TO warden" >/dev/null
  else
    gov_off "warden db migrate (warden_gov) failed: $(tail -2 "$TMP/migrate-gov.out" | tr '\n' ' ' | cut -c1-300)"
  fi
fi
if [ "$GOV" = ok ]; then
  GOV_YAML="governance:
  database: postgresql://warden@127.0.0.1:$PG_PORT/warden_gov
  migrate: false"
  sv=("$W_PORT" "$W_PID" "$W_LOG")
  WCFG_ADMIN=1 start_warden "$FAKE_PORT" "$GOV_YAML
$TELEMETRY_OFF_YAML"
  WG_PORT=$W_PORT WG_PID=$W_PID WG_LOG=$W_LOG WG_MPORT=$W_MPORT
  W_PORT=${sv[0]} W_PID=${sv[1]} W_LOG=${sv[2]}
  adm() { WARDEN_URL="http://127.0.0.1:$WG_PORT" WARDEN_ADMIN_KEY="$ADMIN_KEY" "$WARDEN_BIN" "$@"; }
  # the governor connects in the background: the admin API answers 503 until it has
  for i in $(seq 1 100); do adm teams create bench-free >/dev/null 2>"$TMP/gov-adm.err" && break; sleep 0.1; done
  VKEY=$(adm keys create bench-vkey --team bench-free 2>>"$TMP/gov-adm.err" | head -1) || true
  adm teams create bench-budget >/dev/null 2>>"$TMP/gov-adm.err" || true
  VKEY_BUDGET=$(adm keys create bench-vkey-budget --team bench-budget 2>"$TMP/gov-k2.err" | head -1) || true
  VKEY_BUDGET_ID=$(sed -n 's/^id: *//p' "$TMP/gov-k2.err" | head -1)
  adm budgets create --scope team --subject bench-budget --metric usd --period daily --limit 1000000 >/dev/null 2>>"$TMP/gov-adm.err" &&
    adm budgets create --scope key --subject "$VKEY_BUDGET_ID" --metric requests --period minute --limit 1000000000000 \
      >/dev/null 2>>"$TMP/gov-adm.err" || gov_off "budgets create failed: $(tail -2 "$TMP/gov-adm.err" | tr '\n' ' ' | cut -c1-300)"
  [[ "$VKEY" =~ ^wk-[A-Za-z0-9_-]{43}$ ]] && [[ "$VKEY_BUDGET" =~ ^wk-[A-Za-z0-9_-]{43}$ ]] ||
    gov_off "keys create failed: $(tail -2 "$TMP/gov-adm.err" "$TMP/gov-k2.err" | tr '\n' ' ' | cut -c1-300)"
fi
if [ "$GOV" = ok ]; then
  sleep 1.2   # a sync interval: the limits reach the instance by NOTIFY at once, at worst by the next reload
  PID_OF[warden_vkey]=$WG_PID PID_OF[warden_vkey_budget]=$WG_PID
  STATUS[warden_vkey]=ok STATUS[warden_vkey_budget]=ok
  log "warden with governance on 127.0.0.1:$WG_PORT (pid $WG_PID, core $GW_CORE, workers: 1), keys ${VKEY:0:11}... and ${VKEY_BUDGET:0:11}... ($VKEY_BUDGET_ID)"
else
  REASON[warden_vkey]="$GOV_REASON" REASON[warden_vkey_budget]="$GOV_REASON"
fi
rec "$(jq -nc --arg ok "$GOV" --arg r "$GOV_REASON" --arg pg "$PG_VERSION" '{kind:"gov_setup",ok:($ok == "ok"),reason:$r,pg_version:$pg,
  usd_daily_limit:1000000,requests_per_minute_limit:1000000000000,key_len:46}')"
gv_metrics() {   # the governance instance's counters (GET /metrics) as one JSON object
  curl -s --max-time 2 "http://127.0.0.1:$WG_MPORT/metrics" | awk '
    $1 == "warden_governance_db_roundtrips_total" {rt = $2}  $1 == "warden_governance_admitted_total" {a = $2}
    $1 == "warden_governance_refused_total" {r = $2}  $1 == "warden_governance_lease_waits_total" {w = $2}
    $1 == "warden_governance_leases_total" {l = $2}
    END {printf "{\"roundtrips\":%d,\"admitted\":%d,\"refused\":%d,\"lease_waits\":%d,\"leases\":%d}\n", rt, a, r, w, l}'
}

# peers: installed from npm into a scratch folder, never into the repo
install_peer() {   # install_peer NPM_SPEC: prints nothing on success, else why it failed
  local spec="$1" want="${1##*@}" name="${1%@*}" have
  mkdir -p "$PEERS_DIR" 2>/dev/null || { echo "cannot create $PEERS_DIR"; return 0; }
  [ -f "$PEERS_DIR/package.json" ] || echo '{"name":"warden-bench-peers","private":true}' >"$PEERS_DIR/package.json" ||
    { echo "cannot write $PEERS_DIR/package.json"; return 0; }
  have=$(jq -r .version "$PEERS_DIR/node_modules/$name/package.json" 2>/dev/null || true)
  [ "$have" = "$want" ] && return 0
  log "npm install $spec into $PEERS_DIR"
  local npmlog="$TMP/npm-${name//\//_}.log"
  (cd "$PEERS_DIR" && timeout 300 npm install --save-exact --no-audit --no-fund --loglevel=error "$spec") >"$npmlog" 2>&1 || {
    echo "npm install $spec failed: $( (grep -m2 -E 'npm (error|ERR!) (code|errno|network|request|404|notarget)' "$npmlog" ||
      tail -2 "$npmlog") | tr '\n' ' ' | cut -c1-300)"
    return 0
  }
  have=$(jq -r .version "$PEERS_DIR/node_modules/$name/package.json" 2>/dev/null || true)
  [ "$have" = "$want" ] || echo "npm installed $name ${have:-nothing}, not $want"
}

ccr_config() {   # ccr_config HOME_DIR PORT FAKE_URL
  mkdir -p "$1/.claude-code-router"
  jq -n --argjson port "$2" --arg base "$3/v1beta/models/" --arg key "$GEMINI_KEY" --arg dev "$DEV_KEY" '{
    APIKEY: $dev, HOST: "127.0.0.1", PORT: $port, LOG: false, NON_INTERACTIVE_MODE: true,
    Providers: [{name: "gemini", api_base_url: $base, api_key: $key,
                 models: ["gemini-2.5-pro", "gemini-2.5-flash"], transformer: {use: ["gemini"]}}],
    Router: {default: "gemini,gemini-2.5-pro"}}' >"$1/.claude-code-router/config.json"
}

peer_fail() { STATUS[$1]=failed; REASON[$1]="$2"; log "$1: $2"; }

if [ "${BENCH_SKIP_PEERS:-0}" = 1 ]; then
  peer_fail ccr "skipped (BENCH_SKIP_PEERS=1)"
  peer_fail portkey "skipped (BENCH_SKIP_PEERS=1)"
else
  CCR_JS="$PEERS_DIR/node_modules/@musistudio/claude-code-router/dist/cli.js"
  PK_JS="$PEERS_DIR/node_modules/@portkey-ai/gateway/build/start-server.js"

  # claude-code-router: config in $HOME/.claude-code-router/config.json (HOME points into the temp dir);
  # the fake is its Gemini provider (transformer "gemini"); APIKEY makes it check x-api-key as Warden does.
  install_err=$(install_peer "$CCR_PKG")
  if [ -n "$install_err" ] || [ ! -f "$CCR_JS" ]; then
    peer_fail ccr "not installed: ${install_err:-$CCR_JS missing}"
  else
    CCR_PORT=$(free_port)
    ccr_config "$TMP/ccr-home" "$CCR_PORT" "$FAKE_URL"
    HOME="$TMP/ccr-home" "${PIN_GW[@]}" node "$CCR_JS" start >"$TMP/ccr.log" 2>&1 &
    PID_OF[ccr]=$!
    PIDS+=("${PID_OF[ccr]}")
    if wait_port "$CCR_PORT" "${PID_OF[ccr]}" 30; then
      STATUS[ccr]=ok
      log "claude-code-router on 127.0.0.1:$CCR_PORT (pid ${PID_OF[ccr]}, core $GW_CORE)"
    else
      peer_fail ccr "did not start listening on 127.0.0.1:$CCR_PORT alone: $(tail -5 "$TMP/ccr.log" | tr '\n' ' ' | cut -c1-300)"
    fi
  fi

  # Portkey: start-server.js takes --port=N but no host and would listen on all interfaces; the preloaded
  # bench/portkey_loopback.mjs binds it to 127.0.0.1 (checked by port_is_ours).
  install_err=$(install_peer "$PORTKEY_PKG")
  if [ -n "$install_err" ] || [ ! -f "$PK_JS" ]; then
    peer_fail portkey "not installed: ${install_err:-$PK_JS missing}"
  else
    PK_PORT=$(free_port)
    "${PIN_GW[@]}" node --import "$ROOT/bench/portkey_loopback.mjs" "$PK_JS" --port="$PK_PORT" --headless >"$TMP/portkey.log" 2>&1 &
    PID_OF[portkey]=$!
    PIDS+=("${PID_OF[portkey]}")
    if wait_port "$PK_PORT" "${PID_OF[portkey]}" 30; then
      STATUS[portkey]=ok
      log "portkey on 127.0.0.1:$PK_PORT (pid ${PID_OF[portkey]}, core $GW_CORE)"
    else
      peer_fail portkey "did not start listening on 127.0.0.1:$PK_PORT alone: $(tail -5 "$TMP/portkey.log" | tr -d '\033' | tr '\n' ' ' | cut -c1-300)"
    fi
  fi
fi

# url, headers and body file per contender and scenario (size 50k|300, mode json|sse)
target() {   # target CONTENDER SIZE MODE -> T_URL T_HDRS T_BODY
  local c="$1" sz="$2" mode="$3" model=gemini-2.5-pro
  [ "$sz" = 300 ] && model=gemini-2.5-flash
  case "$c" in
    direct | floor)
      local base="$FAKE_URL"
      [ "$c" = floor ] && base="http://127.0.0.1:$FL_PORT"
      if [ "$mode" = sse ]; then T_URL="$base/v1beta/models/$model:streamGenerateContent?alt=sse"
      else T_URL="$base/v1beta/models/$model:generateContent"; fi
      T_HDRS="x-goog-api-key: $GEMINI_KEY"
      T_BODY="$TMP/gemini-$sz.json" ;;
    direct_anth | floor_anth | floor_rb_anth)
      T_URL="$AFAKE_URL/v1/messages"
      [ "$c" = floor_anth ] && T_URL="http://127.0.0.1:$FLA_PORT/v1/messages"
      T_HDRS=$'x-api-key: '"$ANTH_KEY"$'\nanthropic-version: 2023-06-01'
      T_BODY="$TMP/anthropic-$sz-$mode.json" ;;
    warden_anth)
      T_URL="http://127.0.0.1:$WN_PORT/anthropic/v1/messages"
      T_HDRS=$'x-api-key: '"$DEV_KEY"$'\nanthropic-version: 2023-06-01'
      T_BODY="$TMP/anthropic-$sz-$mode.json" ;;
    warden_oidc | warden_longkey)   # under callgrind the port is the callgrind instance's
      T_URL="http://127.0.0.1:${WI_PORT:-1}/anthropic/v1/messages"
      T_HDRS=$'authorization: Bearer '"$([ "$c" = warden_oidc ] && echo "$OIDC_TOKEN" || echo "$LONG_KEY")"$'\nanthropic-version: 2023-06-01'
      T_BODY="$TMP/anthropic-$sz-$mode.json" ;;
    warden_key46 | warden_vkey | warden_vkey_budget)   # warden_key46 is callgrind only
      T_URL="http://127.0.0.1:${WG_PORT:-1}/anthropic/v1/messages"
      T_HDRS=$'x-api-key: '"$(case "$c" in warden_key46) echo "$KEY46" ;; warden_vkey) echo "$VKEY" ;; *) echo "$VKEY_BUDGET" ;; esac)"$'\nanthropic-version: 2023-06-01'
      T_BODY="$TMP/anthropic-$sz-$mode.json" ;;
    warden_vault)   # callgrind only: the port is the callgrind instance's
      T_URL="http://127.0.0.1:1/anthropic/v1/messages"
      T_HDRS=$'x-api-key: '"$DEV_KEY"$'\nanthropic-version: 2023-06-01'
      T_BODY="$TMP/anthropic-$sz-$mode.json" ;;
    warden | warden_audit | warden_audit_nohold | warden_otel | warden_before)
      T_URL="http://127.0.0.1:$(case "$c" in warden) echo "$W_PORT" ;; warden_audit) echo "$WA_PORT" ;; warden_audit_nohold) echo "$WAN_PORT" ;; warden_before) echo "$WB_PORT" ;; *) echo "$WO_PORT" ;; esac)/anthropic/v1/messages"
      T_HDRS=$'x-api-key: '"$DEV_KEY"$'\nanthropic-version: 2023-06-01'
      T_BODY="$TMP/anthropic-$sz-$mode.json" ;;
    ccr)
      T_URL="http://127.0.0.1:$CCR_PORT/v1/messages"
      T_HDRS=$'x-api-key: '"$DEV_KEY"$'\nanthropic-version: 2023-06-01'
      T_BODY="$TMP/anthropic-$sz-$mode.json" ;;
    portkey)
      T_URL="http://127.0.0.1:$PK_PORT/v1/chat/completions"
      T_HDRS=$'x-portkey-provider: google\nauthorization: Bearer '"$GEMINI_KEY"$'\nx-portkey-custom-host: '"$FAKE_URL"
      T_BODY="$TMP/openai-$sz-$mode.json" ;;
  esac
}

curl_hdrs() { local h; CURL_H=(); while IFS= read -r h; do [ -n "$h" ] && CURL_H+=(-H "$h"); done <<<"$T_HDRS"; }

# one request per scenario: status 200 and a complete answer in the expected shape
smoke() {   # smoke CONTENDER -> 0 or sets SMOKE_ERR
  local c="$1" sz mode code out="$TMP/smoke.out" want
  for sz in 50k 300; do
    for mode in json sse; do
      target "$c" "$sz" "$mode"
      curl_hdrs
      code=$(curl -s -N --max-time 20 -o "$out" -w '%{http_code}' "${CURL_H[@]}" -H 'content-type: application/json' \
        --data-binary @"$T_BODY" "$T_URL" || echo 000)
      case "$c:$mode" in
        direct:* | floor:*) want='fake-gem' ;;
        warden*:json | ccr:json | *_anth:json) want='"type":"message"' ;;
        warden*:sse | ccr:sse | *_anth:sse) want='message_stop' ;;
        portkey:json) want='chat.completion' ;;
        portkey:sse) want='"finish_reason":"stop"' ;;
      esac
      if [ "$code" != 200 ] || ! grep -q "$want" "$out"; then
        SMOKE_ERR="$sz $mode request answered HTTP $code: $(head -c 300 "$out" | tr '\n' ' ')"
        return 1
      fi
    done
  done
}

for c in "${CONTENDERS[@]}"; do
  [ "${STATUS[$c]}" = ok ] || continue
  if ! smoke "$c"; then
    [ "$c" = warden ] || [ "$c" = direct ] || [ "$c" = warden_anth ] || [ "$c" = direct_anth ] && die "$c smoke test failed: $SMOKE_ERR"
    [ "$c" = warden_audit ] || [ "$c" = warden_audit_nohold ] || [ "$c" = warden_otel ] || [ "$c" = floor ] || [ "$c" = floor_anth ] || [ "$c" = warden_before ] ||
      [ "$c" = warden_oidc ] || [ "$c" = warden_vkey ] || [ "$c" = warden_vkey_budget ] && { STATUS[$c]=failed; REASON[$c]="smoke test failed: $SMOKE_ERR"; log "$c: ${REASON[$c]}"; continue; }
    peer_fail "$c" "smoke test failed: $SMOKE_ERR"
    continue
  fi
  if [ -n "${PID_OF[$c]}" ]; then
    rec "$(jq -nc --arg c "$c" --argjson rss "$(vm_kb "${PID_OF[$c]}" VmRSS)" '{kind:"mem_idle",contender:$c,rss_kb:$rss}')"
  fi
  # the smoke requests' spans, so that they are not counted in the first run's
  if [ "$c" = warden_otel ]; then
    rec "$(jq -nc --argjson s "$(wo_collect)" '{kind:"otel_other",what:"smoke",requests:4,received:$s}')"
  fi
done

# ---- load: interleaved rounds so drift on a shared machine hits every contender alike -------------------
# Placement "split" is the stated pinning (gateway on GW_CORE, fake + load on LOAD_CORE). Placement "one" moves
# the gateway's threads onto LOAD_CORE for unloaded (c=1) latency and TTFB only: on this kind of VM a wake-up
# across cores costs tens of µs each way, and a proxy adds two such round trips that calling the fake does not.
place() {   # place CONTENDER split|one
  local pid="${PID_OF[$1]}"
  [ -n "$pid" ] && [ "$GW_CORE" != none ] || return 0
  taskset -a -p -c "$([ "$2" = one ] && echo "$LOAD_CORE" || echo "$GW_CORE")" "$pid" >/dev/null
}

run_wrk() {   # run_wrk CONTENDER SIZE MODE CONC SECONDS PLACEMENT -> JSON line on stdout (+ cpu, rss, upstream conns)
  local c="$1" sz="$2" mode="$3" conc="$4" secs="$5" placement="$6" pid="${PID_OF[$1]}" t0=0 t1=0 rss=0 out wpid fstats
  local audit='{}' m0 m1 p0 p1 dms otel='{}' o0 o1 oc0 oc1 sc spans gov='{}' g0 g1 amport=""
  case "$c" in warden_audit) amport=$WA_MPORT ;; warden_audit_nohold) amport=$WAN_MPORT ;; esac
  target "$c" "$sz" "$mode"
  out="$TMP/wrk.out"
  place "$c" "$placement"
  curl -s -o /dev/null -X POST "$(fake_url_of "$c")/_fake/reset"   # so the fake's stats count this run's upstream connections
  if [ -n "$amport" ]; then m0=$(wa_metrics "$amport"); p0=$(pg_cpu_ticks); fi
  if [ "$c" = warden_otel ]; then o0=$(wo_metrics); oc0=$(cpu_ticks "$OTLP_PID"); scrape_start "$secs"; fi
  case "$c" in warden_vkey | warden_vkey_budget) g0=$(gv_metrics); p0=$(pg_cpu_ticks) ;; esac
  [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  BENCH_BODY="$T_BODY" BENCH_HEADERS="$T_HDRS" "${PIN_LOAD[@]}" wrk -t1 -c"$conc" -d"${secs}s" --timeout 10s \
    -s "$ROOT/bench/post.lua" "$T_URL" >"$out" 2>&1 &
  wpid=$!
  if [ -n "$pid" ]; then
    sleep "$(awk -v s="$secs" 'BEGIN {print s / 2}')"
    rss=$(vm_kb "$pid" VmRSS)
  fi
  if ! wait "$wpid"; then
    place "$c" split
    if [ "$c" = warden_otel ]; then scrape_stop >/dev/null; wo_collect >/dev/null; fi
    log "wrk failed for $c $sz $mode: $(tail -3 "$out")"
    return 1
  fi
  if [ "$c" = warden_otel ]; then
    # the scrapes stop with the load; then every span of this run exported, counted in the collector's files and
    # deleted there; Warden's CPU is read after that, so its export thread's whole share of the run is counted
    sc=$(scrape_stop)
    place "$c" split
    spans=$(wo_collect)
    o1=$(wo_metrics)
    oc1=$(cpu_ticks "$OTLP_PID")
    otel=$(jq -nc --argjson d "$(otel_delta "$o0" "$o1" "$spans")" --argjson sc "$sc" --argjson cc "$(((oc1 - oc0) * 1000000 / CLK_TCK))" \
      '{otel:($d + $sc + {collector_cpu_us:$cc})}')
  fi
  if [ -n "$amport" ]; then
    # every record of this run durable before the next run starts, so no backlog spills into another contender's
    # run; Warden's CPU is read after that, so its writer's whole share of the run is counted
    place "$c" split
    dms=$(wa_drain "$amport")
    m1=$(wa_metrics "$amport")
    p1=$(pg_cpu_ticks)
    audit=$(jq -nc --argjson a "$m0" --argjson b "$m1" --argjson pg "$(((p1 - p0) * 1000000 / CLK_TCK))" --argjson d "$dms" \
      '{audit:{records:($b.records - $a.records),written:($b.written - $a.written),spooled:($b.spooled - $a.spooled),
        refused:($b.refused - $a.refused),batches:($b.batches - $a.batches),queue_after:$b.queue,drain_ms:$d,pg_cpu_us:$pg}}')
  fi
  case "$c" in
    warden_vkey | warden_vkey_budget)
      # the spend of the run's last calls is flushed by the governor's next sync (1 s): counted with this run
      place "$c" split
      sleep 1.2
      g1=$(gv_metrics)
      p1=$(pg_cpu_ticks)
      gov=$(jq -nc --argjson a "$g0" --argjson b "$g1" --argjson pg "$(((p1 - p0) * 1000000 / CLK_TCK))" \
        '{gov:{roundtrips:($b.roundtrips - $a.roundtrips),admitted:($b.admitted - $a.admitted),refused:($b.refused - $a.refused),
          lease_waits:($b.lease_waits - $a.lease_waits),leases:($b.leases - $a.leases),pg_cpu_us:$pg}}') ;;
  esac
  [ -n "$pid" ] && t1=$(cpu_ticks "$pid")
  place "$c" split
  fstats=$(curl -s "$(fake_url_of "$c")/_fake/stats" | jq -c '{up_requests: .requests, up_conns: (.tcp_connections_opened - 1)}' 2>/dev/null) || true
  [ -n "$fstats" ] || fstats='{}'
  grep '^{' "$out" | tail -1 | jq -c --arg c "$c" --arg sz "$sz" --arg m "$mode" --argjson conc "$conc" --arg pl "$placement" \
    --argjson cpu_us "$(((t1 - t0) * 1000000 / CLK_TCK))" --argjson rss "${rss:-0}" --argjson f "$fstats" --argjson au "$audit" \
    --argjson ot "$otel" --argjson gv "$gov" '. + {contender:$c,size:$sz,mode:$m,conc:$conc,placement:$pl,cpu_us:$cpu_us,rss_kb:$rss} + $f + $au + $ot + $gv'
}

ttfb() {   # ttfb CONTENDER SIZE PLACEMENT ROUND: TTFB_N sequential streaming requests on one kept-alive connection
  local c="$1" sz="$2" placement="$3" r="$4" cfg="$TMP/ttfb.cfg" vals i
  target "$c" "$sz" sse
  curl_hdrs
  : >"$cfg"
  for i in $(seq 1 "$TTFB_N"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$T_URL" >>"$cfg"; done
  place "$c" "$placement"
  vals=$("${PIN_LOAD[@]}" curl -s -K "$cfg" "${CURL_H[@]}" -H 'content-type: application/json' --data-binary @"$T_BODY" \
    -w '%{time_starttransfer} %{http_code}\n' | awk '$2 == 200 {printf "%.1f,", $1 * 1e6}') || true
  place "$c" split
  rec "{\"kind\":\"ttfb\",\"round\":$r,\"contender\":\"$c\",\"size\":\"$sz\",\"placement\":\"$placement\",\"us\":[${vals%,}]}"
  if [ "$c" = warden_otel ]; then
    rec "$(jq -nc --argjson n "$TTFB_N" --argjson s "$(wo_collect)" '{kind:"otel_other",what:"ttfb",requests:$n,received:$s}')"
  fi
}

SCENARIOS=()
for sc in "50k json" "50k sse" "300 json" "300 sse"; do scenario_wanted "$sc" && SCENARIOS+=("$sc"); done
active=()
for c in "${CONTENDERS[@]}"; do [ "${STATUS[$c]}" = ok ] && measured "$c" && active+=("$c"); done
# warden_vkey (no limit) is the same instance as warden_vkey_budget: in the load rounds only when asked for by name
[ -n "${BENCH_CONTENDERS:-}" ] || { for i in "${!active[@]}"; do [ "${active[$i]}" = warden_vkey ] && unset 'active[i]'; done; active=("${active[@]}"); }
LOAD_ROUNDS=$RUNS WARM_SCEN=("${SCENARIOS[@]}")
[ "$ONLY" = callgrind ] && LOAD_ROUNDS=0 WARM_SCEN=()
est=$(( (${#SCENARIOS[@]} * ${#active[@]}) * (WARMUP + 1 + RUNS * (DURATION + 2 * LAT_DURATION + 2)) + 20 ))
[ "$LOAD_ROUNDS" = 0 ] || log "load: ${active[*]}; ${#SCENARIOS[@]} scenarios x $RUNS rounds x (c=$CONC ${DURATION}s + 2 x c=1 ${LAT_DURATION}s); about $((est / 60)) min"

for sc in "${WARM_SCEN[@]}"; do
  read -r sz mode <<<"$sc"
  for c in "${active[@]}"; do run_wrk "$c" "$sz" "$mode" "$CONC" "$WARMUP" split >/dev/null || true; done
done
for r in $(seq 1 "$LOAD_ROUNDS"); do
  for sc in "${SCENARIOS[@]}"; do
    read -r sz mode <<<"$sc"
    for c in "${active[@]}"; do
      line=$(run_wrk "$c" "$sz" "$mode" "$CONC" "$DURATION" split) && rec "$(jq -c --argjson r "$r" '. + {kind:"load",round:$r}' <<<"$line")"
      line=$(run_wrk "$c" "$sz" "$mode" 1 "$LAT_DURATION" split) && rec "$(jq -c --argjson r "$r" '. + {kind:"load",round:$r}' <<<"$line")"
      # the direct baseline has no gateway to move: its c=1 figure serves both placements
      [ "$c" = direct ] || [ "$c" = direct_anth ] && continue
      line=$(run_wrk "$c" "$sz" "$mode" 1 "$LAT_DURATION" one) && rec "$(jq -c --argjson r "$r" '. + {kind:"load",round:$r}' <<<"$line")"
    done
    log "round $r: $sz $mode done"
  done
  # the wake-up floor: Warden's /healthz (no upstream, no body) at c=1 in both placements
  for pl in split one; do
    place warden "$pl"
    BENCH_BODY= BENCH_HEADERS= "${PIN_LOAD[@]}" wrk -t1 -c1 -d2s -s "$ROOT/bench/post.lua" "http://127.0.0.1:$W_PORT/healthz" 2>&1 |
      grep '^{' | jq -c --argjson r "$r" --arg pl "$pl" '. + {kind:"healthz",round:$r,placement:$pl}' >>"$RES" || true
    place warden split
  done
  for sz in 50k 300; do
    scenario_wanted "$sz sse" || continue
    for c in "${active[@]}"; do
      ttfb "$c" "$sz" split "$r"
      [ "$c" = direct ] || [ "$c" = direct_anth ] || ttfb "$c" "$sz" one "$r"
    done
  done
done

# ---- tracing on and off inside one process (issue #4) ---------------------------------------------------------
# The telemetry instance again, every request carrying a traceparent of its own (bench/post.lua, BENCH_TRACE):
# flags 01 (sampled: Warden records and exports the trace, sampling_ratio 1.0 honours the caller's flag) against
# flags 00 (not sampled: no span is recorded; the traceparent still goes upstream). Same process, same
# connections, same metrics, scrapes and access log in both arms, so the difference is tracing alone, free of
# what differs between two processes on this VM. Pairs of runs in ABBA order; medians of the per-pair figures.
AB_PAIRS="${BENCH_AB_PAIRS:-5}"
AB_DURATION="${BENCH_AB_DURATION:-3}"
AB_LAT_DURATION="${BENCH_AB_LAT_DURATION:-1}"
ab_run() {   # ab_run SIZE MODE CONC SECONDS FLAGS PAIR PLACEMENT -> one JSON line
  local sz="$1" mode="$2" conc="$3" secs="$4" flags="$5" pair="$6" pl="$7" t0 t1 out="$TMP/ab.out" spans
  target warden_otel "$sz" "$mode"
  place warden_otel "$pl"
  t0=$(cpu_ticks "$WO_PID")
  scrape_start "$secs"
  BENCH_TRACE="$flags" BENCH_BODY="$T_BODY" BENCH_HEADERS="$T_HDRS" "${PIN_LOAD[@]}" wrk -t1 -c"$conc" -d"${secs}s" \
    --timeout 10s -s "$ROOT/bench/post.lua" "$T_URL" >"$out" 2>&1 || { scrape_stop >/dev/null; place warden_otel split; return 1; }
  scrape_stop >/dev/null
  place warden_otel split
  # sampled: wait until the run's spans are exported, so the export thread's CPU is counted; not sampled:
  # count what arrived without waiting (nothing should)
  if [ "$flags" = 01 ]; then spans=$(wo_collect); else spans=$(wo_collect 0); fi
  t1=$(cpu_ticks "$WO_PID")
  grep '^{' "$out" | tail -1 | jq -c --arg sz "$sz" --arg m "$mode" --argjson conc "$conc" --arg f "$flags" \
    --argjson pair "$pair" --arg pl "$pl" --argjson cpu "$(((t1 - t0) * 1000000 / CLK_TCK))" --argjson s "$spans" \
    '. + {kind:"otel_ab",size:$sz,mode:$m,conc:$conc,flags:$f,pair:$pair,placement:$pl,cpu_us:$cpu,received:$s}'
}
if [ "${STATUS[warden_otel]:-}" = ok ] && [ -z "$ONLY" ]; then
  log "tracing sampled vs not sampled in one process: ${#SCENARIOS[@]} scenarios x $AB_PAIRS pairs (c=$CONC ${AB_DURATION}s, c=1 ${AB_LAT_DURATION}s in both placements)"
  wo_collect 0 >/dev/null
  for sc in "${SCENARIOS[@]}"; do
    read -r sz mode <<<"$sc"
    for p in $(seq 1 "$AB_PAIRS"); do
      order="01 00"
      [ $((p % 2)) = 0 ] && order="00 01"
      for f in $order; do
        line=$(ab_run "$sz" "$mode" "$CONC" "$AB_DURATION" "$f" "$p" split) && rec "$line"
        line=$(ab_run "$sz" "$mode" 1 "$AB_LAT_DURATION" "$f" "$p" split) && rec "$line"
        line=$(ab_run "$sz" "$mode" 1 "$AB_LAT_DURATION" "$f" "$p" one) && rec "$line"
      done
    done
  done
fi

# ---- memory at the end, Warden's log ---------------------------------------------------------------------
for c in "${active[@]}"; do
  pid="${PID_OF[$c]}"
  [ -n "$pid" ] || continue
  rec "$(jq -nc --arg c "$c" --argjson hwm "$(vm_kb "$pid" VmHWM)" --argjson rss "$(vm_kb "$pid" VmRSS)" \
    '{kind:"mem_end",contender:$c,hwm_kb:$hwm,rss_kb:$rss}')"
done
wlines=$(grep -vc '"level":"info"' "$W_LOG" || true)
rec "$(jq -nc --argjson n "${wlines:-0}" --arg sample "$(grep -v '"level":"info"' "$W_LOG" | head -3)" \
  '{kind:"warden_log",non_info_lines:$n,sample:$sample}')"

# ---- the telemetry instance: anything left to export, its counters, its log, what the collector saw ---------
if [ "${STATUS[warden_otel]:-}" = ok ]; then
  rec "$(jq -nc --argjson s "$(wo_collect 0)" '{kind:"otel_other",what:"end",requests:0,received:$s}')"
  wolines=$(grep -vc '"level":"info"' "$WO_LOG" || true)
  woaccess=$(grep -c '"msg":"access"' "$WO_LOG" || true)
  rec "$(jq -nc --argjson m "$(wo_metrics)" --argjson st "$(curl -s --max-time 2 "$OTLP_URL/_fake/stats" || echo '{}')" \
    --argjson n "${wolines:-0}" --argjson a "${woaccess:-0}" --arg sample "$(grep -v '"level":"info"' "$WO_LOG" | head -3)" \
    --argjson bytes "$(stat -c %s "$WO_LOG")" \
    '{kind:"otel_end",metrics:$m,collector:$st,non_info_lines:$n,access_lines:$a,log_bytes:$bytes,sample:$sample}')"
fi

# ---- the audit instance: stopped (SIGTERM drains its queue and writes the last checkpoint), then its chain read back
if [ "${STATUS[warden_audit]:-}" = ok ]; then
  m_end=$(wa_metrics)
  kill -TERM "$WA_PID" 2>/dev/null || true
  for i in $(seq 1 400); do kill -0 "$WA_PID" 2>/dev/null || break; sleep 0.1; done
  wa_rc=0
  wait "$WA_PID" 2>/dev/null || wa_rc=$?
  q() { wd_psql postgres -At -c "$1"; }
  chain=$(q "SELECT chain_id FROM audit.records WHERE kind = 'system' AND event = 'writer_start'
             AND (detail::json->>'pid') = '$WA_PID' ORDER BY ts DESC LIMIT 1")
  dbstats='{}'
  [ -n "$chain" ] && dbstats=$(q "SELECT json_build_object('rows', count(*), 'max_seq', max(seq),
      'call', count(*) FILTER (WHERE kind = 'call'), 'auth', count(*) FILTER (WHERE kind = 'auth'),
      'authz', count(*) FILTER (WHERE kind = 'authz'), 'system', count(*) FILTER (WHERE kind = 'system'),
      'refused_in_trail', coalesce(sum((detail::json->>'refused')::bigint) FILTER (WHERE event = 'records_refused'), 0),
      'checkpoints', (SELECT count(*) FROM audit.checkpoints WHERE chain_id = '$chain'),
      'bytes', pg_database_size('warden'))
    FROM audit.records WHERE chain_id = '$chain'")
  walines=$(grep -vc '"level":"info"' "$WA_LOG" || true)
  rec "$(jq -nc --argjson m "$m_end" --argjson db "$dbstats" --arg chain "$chain" --argjson n "${walines:-0}" --argjson rc "$wa_rc" \
    --arg sample "$(grep -v '"level":"info"' "$WA_LOG" | head -3)" \
    '{kind:"audit_end",metrics:$m,db:$db,chain:$chain,exit_status:$rc,non_info_lines:$n,sample:$sample}')"
  log "warden with audit stopped; its chain holds $(jq -r '.rows // "?"' <<<"$dbstats") records"
fi

# ---- instructions per request, counted by callgrind (deterministic) -------------------------------------------
# Wall-clock figures on this shared VM move by about ±10% from run to run, so the 5% targets of the audit and
# telemetry issues sit inside the noise. valgrind's callgrind counts the instructions a process executes (all its
# threads; not the kernel's work, not cache misses, not another process such as PostgreSQL), which do not move
# with the machine's load: a noise-free figure for how much work a request costs. For each contender: a fresh
# instance under callgrind (same config as its contender above, pinned like it), 20 warm-up requests, counters
# zeroed, a c=1 wrk run, then, before the counters are dumped, the work the run left behind: the audit instance's
# queue written to the database, the telemetry instance's spans exported.
CG_SECONDS="${BENCH_CALLGRIND_SECONDS:-6}"
CG=ok CG_REASON=""
[ "${BENCH_SKIP_CALLGRIND:-0}" = 1 ] && CG=failed CG_REASON="skipped (BENCH_SKIP_CALLGRIND=1)"
[ "$CG" = ok ] && ! { command -v valgrind && command -v callgrind_control && command -v callgrind_annotate; } >/dev/null &&
  CG=failed CG_REASON="valgrind (callgrind) is not installed"
cg_metric() {   # cg_metric METRICS_PORT NAME: the sum of a metric's series on that instance's /metrics
  curl -s --max-time 10 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%d\n", s}'
}
cg_run() {   # cg_run CONTENDER SIZE MODE -> one JSON line, or nothing when the run failed
  # floor_tp: the floor with a W3C traceparent on every request, which it passes on to the fake as Warden does
  # with tracing on: what propagating it costs in libcurl alone
  local c="$1" sz="$2" mode="$3" port pid out="$TMP/cg-$1-$2-$3" i reqs want dump extra="" trace="" mport=""
  port=$(free_port)
  [ "$c" = floor_tp ] && trace=01
  case "$c" in
    floor | floor_tp | floor_anth) "${PIN_GW[@]}" valgrind --tool=callgrind --callgrind-out-file="$out.cg" "$FLOOR_BIN" "$port" "$(fake_url_of "$c")" >"$out.log" 2>&1 & ;;
    # floor_rb_anth: the pass-through floor that also reads the request body once with Warden's JSON tokenizer
    # and finds its model (--read-body): what any gateway that routes on the model in the body pays
    floor_rb_anth) "${PIN_GW[@]}" valgrind --tool=callgrind --callgrind-out-file="$out.cg" "$FLOOR_BIN" "$port" "$(fake_url_of "$c")" --read-body >"$out.log" 2>&1 & ;;
    *)
      local fport="$FAKE_PORT"
      [ "$c" = warden_anth ] && fport="$AFAKE_PORT" WCFG_FAMILY=anthropic
      local wbin="$WARDEN_BIN"
      [ "$c" = warden_before ] && wbin="$BENCH_WARDEN_BEFORE"
      case "$c" in
        warden_anth | warden_before) extra="$TELEMETRY_OFF_YAML" ;;
        warden_oidc) extra="$OIDC_YAML
$TELEMETRY_OFF_YAML" ;;
        warden_longkey | warden_key46) extra="$TELEMETRY_OFF_YAML" ;;
        warden_vault) extra="$TELEMETRY_OFF_YAML" ;;
        warden_vkey | warden_vkey_budget) extra="$GOV_YAML
$TELEMETRY_OFF_YAML" ;;
        warden) extra="$TELEMETRY_OFF_YAML" ;;
        warden_audit) extra="${AUDIT_YAML/audit-spool/audit-spool-cg}
$TELEMETRY_OFF_YAML" ;;
        warden_audit_nohold) extra="${AUDIT_NOHOLD_YAML/audit-spool-nohold/audit-spool-cg-nohold}
$TELEMETRY_OFF_YAML" ;;
        warden_otel) extra="$OTEL_YAML" ;;
      esac
      case "$c" in warden_vkey | warden_vkey_budget) WCFG_ADMIN=1 ;; warden_vault) WCFG_KEYREF=vault://secret/b#key ;; esac
      warden_config "$out.yaml" "$port" "$fport" "$extra"
      WCFG_FAMILY=gemini WCFG_ADMIN="" WCFG_KEYREF=""
      mport=$W_MPORT
      local devkey="$DEV_KEY"
      [ "$c" = warden_longkey ] && devkey="$LONG_KEY"
      [ "$c" = warden_key46 ] && devkey="$KEY46"
      GEMINI_API_KEY="$GEMINI_KEY" ANTHROPIC_API_KEY="$ANTH_KEY" WARDEN_DEV_KEY="$devkey" WARDEN_BENCH_ADMIN_KEY="$ADMIN_KEY" \
        VAULT_TOKEN="$VAULT_BENCH_TOKEN" VAULT_ADDR="$VAULT_ADDR_BENCH" "${PIN_GW[@]}" valgrind --tool=callgrind --separate-threads=yes \
        --callgrind-out-file="$out.cg" "$wbin" serve --config "$out.yaml" >"$out.log" 2>&1 & ;;
  esac
  pid=$!
  PIDS+=("$pid")
  if ! wait_port "$port" "$pid" 60; then kill -KILL "$pid" 2>/dev/null; log "callgrind: $c did not start"; return 1; fi
  target "${c%_tp}" "$sz" "$mode"
  T_URL="http://127.0.0.1:$port/${T_URL#http://127.0.0.1:*/}"
  curl_hdrs
  # a governance instance admits a virtual key once its governor has loaded the keys from the database
  case "$c" in
    warden_vkey | warden_vkey_budget)
      for i in $(seq 1 120); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "${CURL_H[@]}" -H 'content-type: application/json' \
          --data-binary @"$T_BODY" "$T_URL" || true)" = 200 ] && break
        sleep 0.25
      done ;;
  esac
  for i in $(seq 1 20); do
    curl -s -o /dev/null --max-time 30 "${CURL_H[@]}" -H 'content-type: application/json' --data-binary @"$T_BODY" "$T_URL" || true
  done
  if [ "$c" = warden_audit ] || [ "$c" = warden_audit_nohold ]; then   # the warm-up's records written first, so the counted run pays for its own
    for i in $(seq 1 600); do [ "$(cg_metric "$mport" warden_audit_queue_depth)" = 0 ] && break; sleep 0.1; done
  fi
  [ "$c" = warden_otel ] && sleep 3   # the warm-up's spans exported (once a second) before the counters start
  callgrind_control -z "$pid" >/dev/null 2>&1
  BENCH_TRACE="$trace" BENCH_BODY="$T_BODY" BENCH_HEADERS="$T_HDRS" "${PIN_LOAD[@]}" wrk -t1 -c1 -d"${CG_SECONDS}s" \
    --timeout 30s -s "$ROOT/bench/post.lua" "$T_URL" >"$out.wrk" 2>&1 || true
  reqs=$(grep '^{' "$out.wrk" | tail -1 | jq '.requests - .err_status' 2>/dev/null || echo 0)
  case "$c" in
    warden_audit | warden_audit_nohold)   # every record of the run durable, its writer's work done
      for i in $(seq 1 600); do
        [ "$(cg_metric "$mport" warden_audit_queue_depth)" = 0 ] && [ "$(cg_metric "$mport" warden_audit_spool_bytes)" = 0 ] && break
        sleep 0.1
      done ;;
    warden_otel)    # every span of the run exported: 4 per request (the warm-up's were exported before the zero)
      want=$(((20 + reqs) * 4))
      for i in $(seq 1 300); do [ "$(cg_metric "$mport" warden_otel_spans_exported_total)" -ge "$want" ] && break; sleep 0.1; done ;;
  esac
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # one file per thread (--separate-threads=yes), all of the one dump taken above
  local dumps=()
  mapfile -t dumps < <(ls "$out.cg".* 2>/dev/null)
  [ "${#dumps[@]}" -gt 0 ] && [ "${reqs:-0}" -gt 0 ] || { log "callgrind: no dump or no requests for $c $sz $mode"; return 1; }
  # instructions by object (the binary itself, libcurl, libc, ...): the self cost of every function, summed by
  # the object it is in (a cost line right after calls= is a call's inclusive cost, not self); and by thread: the
  # workers (the request path), the governor (governance's flushes, lease top-ups, reloads) and the rest
  awk -v c="$c" -v sz="$sz" -v m="$mode" -v n="$reqs" '
    FNR == 1 {delete names; cls[FILENAME] = "other"}
    /^c?fn=.* worker_main$/ {cls[FILENAME] = "workers"}
    /^c?fn=.* governor_main$/ {cls[FILENAME] = "governor"}
    function obname(s,   id, nm) {
      if (match(s, /^\([0-9]+\)/)) {
        id = substr(s, 2, RLENGTH - 2); nm = substr(s, RLENGTH + 1); sub(/^ +/, "", nm)
        if (nm != "") names[id] = nm
        return names[id]
      }
      return s
    }
    /^summary:/ {tot += $2; ftot[FILENAME] = $2; next}
    /^ob=/ {cur = obname(substr($0, 4)); next}
    /^cob=/ {obname(substr($0, 5)); next}
    /^calls=/ {skip = 1; next}
    /^([0-9]|\+|-|\*)/ {if (skip) {skip = 0; next} self[cur] += $2; next}
    END {
      for (k in self) {
        o = k; sub(/.*\//, "", o); sub(/\.so.*/, "", o)
        if (o == "warden" || o == "floor_proxy") o = "own"; else if (o !~ /^lib(curl|c|h2o|uv|crypto|ssl|pq|z)$/) o = "other"
        by[o] += self[k]
      }
      printf "{\"kind\":\"instr\",\"contender\":\"%s\",\"size\":\"%s\",\"mode\":\"%s\",\"requests\":%d,\"instr\":%d,\"by_object\":{", c, sz, m, n, tot
      sep = ""
      for (k in by) {printf "%s\"%s\":%d", sep, k, by[k]; sep = ","}
      for (f in ftot) th[cls[f]] += ftot[f]
      printf "},\"by_thread\":{"
      sep = ""
      for (k in th) {printf "%s\"%s\":%d", sep, k, th[k]; sep = ","}
      print "}}"
    }' "${dumps[@]}"
}
if [ "$CG" = ok ]; then
  cg_list=()
  for c in floor floor_tp warden warden_vault warden_oidc warden_longkey warden_key46 warden_vkey warden_vkey_budget warden_before warden_audit warden_audit_nohold warden_otel floor_anth floor_rb_anth warden_anth; do
    measured "$c" || continue
    [ "$c" = warden_vkey ] || [ "$c" = warden_vkey_budget ] && [ "$GOV" != ok ] && continue
    [ "$c" = warden_audit ] || [ "$c" = warden_audit_nohold ] && [ "$AUDIT" != ok ] && continue
    [ "$c" = warden_otel ] && [ "$OTEL" != ok ] && continue
    [ "$c" = warden_vault ] && [ -z "$VAULT_YAML" ] && continue
    [ "$c" = floor_tp ] && [ -n "$ONLY" ] && continue
    [ "${c%_tp}" = floor ] && [ "${STATUS[floor]}" != ok ] && continue
    [ "${c#floor_rb}" != "$c" ] && [ "${STATUS[floor_anth]}" != ok ] && continue
    [ "$c" = warden_oidc ] || [ "$c" = warden_longkey ] && [ -z "$OIDC_TOKEN" ] && continue
    [ "$c" = floor_anth ] && [ "${STATUS[floor_anth]}" != ok ] && continue
    [ "$c" = warden_before ] && [ "${STATUS[warden_before]}" != ok ] && continue
    cg_list+=("$c")
  done
  log "instructions per request under callgrind: ${cg_list[*]}; ${BENCH_SCENARIOS:-4 scenarios}, ${CG_SECONDS}s each at c=1"
  for sc in "300 json" "50k json" "300 sse" "50k sse"; do
    scenario_wanted "$sc" || continue
    read -r sz mode <<<"$sc"
    for c in "${cg_list[@]}"; do
      line=$(cg_run "$c" "$sz" "$mode") && [ -n "$line" ] && rec "$line"
    done
  done
else
  log "instructions per request not measured: $CG_REASON"
fi
rec "$(jq -nc --arg ok "$CG" --arg r "$CG_REASON" --argjson s "$CG_SECONDS" '{kind:"instr_setup",ok:($ok == "ok"),reason:$r,seconds:$s}')"

# ---- memory after a burst: 5,000 concurrent streams, 5 waves, on one Warden process (bench/burst.sh) ---------
if [ "${BENCH_SKIP_BURST:-0}" = 1 ]; then
  rec '{"kind":"burst_setup","ok":false,"reason":"skipped (BENCH_SKIP_BURST=1)"}'
else
  log "memory after a burst: ${BURST_WAVES:-5} waves of ${BURST_STREAMS:-5000} streams (bench/burst.sh)"
  if BURST_SETTLE_MS="${BURST_SETTLE_MS:-3000}" bash "$ROOT/bench/burst.sh" "$WARDEN_BIN" >"$TMP/burst.jsonl" 2>"$TMP/burst.err" &&
    [ -s "$TMP/burst.jsonl" ]; then
    cat "$TMP/burst.jsonl" >>"$RES"
    rec "$(jq -nc --argjson s "${BURST_SETTLE_MS:-3000}" '{kind:"burst_setup",ok:true,settle_ms:$s}')"
  else
    rec "$(jq -nc --arg r "$(tail -c 300 "$TMP/burst.err")" '{kind:"burst_setup",ok:false,reason:$r}')"
  fi
fi

# ---- after the measurements: do the peers' translations pass the strict fake? (informational) ----------
strict_peer() {   # strict_peer CONTENDER URL: the 50 KB non-streaming request through the peer to the strict fake
  local c="$1" code
  target "$c" 50k json
  T_URL="$2"
  [ "$c" = portkey ] && T_HDRS="${T_HDRS%$'\n'x-portkey-custom-host:*}"$'\n'"x-portkey-custom-host: http://127.0.0.1:$STRICT2_PORT"
  curl_hdrs
  code=$(curl -s --max-time 30 -o "$TMP/strict-$c.out" -w '%{http_code}' "${CURL_H[@]}" -H 'content-type: application/json' \
    --data-binary @"$T_BODY" "$T_URL" || echo 000)
  rec "$(jq -nc --arg c "$c" --arg code "$code" --arg body "$(head -c 4000 "$TMP/strict-$c.out")" '{kind:"strict_peer",contender:$c,code:$code,body:$body}')"
  curl -s -o /dev/null -X POST "http://127.0.0.1:$STRICT2_PORT/_fake/reset"
}
if [ "${STATUS[ccr]:-}" = ok ] || [ "${STATUS[portkey]:-}" = ok ]; then
  log "informational: the peers' 50 KB translations against the strict fake"
  start_fake STRICT2
  if [ "${STATUS[portkey]:-}" = ok ]; then strict_peer portkey "http://127.0.0.1:$PK_PORT/v1/chat/completions"; fi
  if [ "${STATUS[ccr]:-}" = ok ]; then
    CCR2_PORT=$(free_port)
    ccr_config "$TMP/ccr-home2" "$CCR2_PORT" "http://127.0.0.1:$STRICT2_PORT"
    HOME="$TMP/ccr-home2" "${PIN_GW[@]}" node "$CCR_JS" start >"$TMP/ccr2.log" 2>&1 &
    CCR2_PID=$!
    PIDS+=("$CCR2_PID")
    if wait_port "$CCR2_PORT" "$CCR2_PID" 30; then strict_peer ccr "http://127.0.0.1:$CCR2_PORT/v1/messages"; fi
    kill -TERM "$CCR2_PID" 2>/dev/null || true
  fi
fi
rec "$(jq -nc --arg s "${STATUS[floor]:-failed}" --arg r "${REASON[floor]:-}" '{kind:"floor",status:$s,reason:$r}')"
for c in ccr portkey; do
  rec "$(jq -nc --arg c "$c" --arg s "${STATUS[$c]:-failed}" --arg r "${REASON[$c]:-}" '{kind:"peer",contender:$c,status:$s,reason:$r}')"
done
rec "$(jq -nc --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson secs "$(($(date +%s) - T_START))" '{kind:"end",load_end:$load,seconds:$secs}')"

[ -z "${BENCH_RESULTS_COPY:-}" ] || cp "$RES" "$BENCH_RESULTS_COPY"   # raw results, for a second look
if [ -n "$ONLY" ]; then
  # one section only: its figures printed (medians over rounds for the load), the README left as it is
  jq -r 'select(.kind == "instr") | .requests as $n | "instr  \(.contender) \(.size) \(.mode): \(.instr / $n / 1000 * 10 | round / 10)k/request over \($n) requests" +
    (if .by_thread then " (" + (.by_thread | to_entries | map("\(.key) \(.value / $n / 1000 * 10 | round / 10)k") | join(", ")) + ")" else "" end)' "$RES"
  jq -rs '[.[] | select(.kind == "load" and .conc == '"$CONC"')] | group_by([.contender, .size, .mode])[] |
    "load   \(.[0].contender) \(.[0].size) \(.[0].mode): req/s c='"$CONC"' median \((map(.requests / .duration_us * 1e6) | sort | .[length / 2 | floor]) | round), CPU µs/req \((map(.cpu_us / .requests) | sort | .[length / 2 | floor]) * 10 | round / 10)"' "$RES"
  jq -rs '[.[] | select(.kind == "load" and .gov)] | group_by(.contender)[] |
    "gov    \(.[0].contender): \(map(.gov.roundtrips) | add) database statements for \(map(.gov.admitted) | add) admitted calls (\((map(.gov.roundtrips) | add) / ([(map(.gov.admitted) | add), 1] | max) * 10000 | round / 10000) per call), \(map(.gov.refused) | add) refused, \(map(.gov.lease_waits) | add) lease waits"' "$RES"
  log "BENCH_ONLY=$ONLY: raw results in $BENCH_RESULTS_COPY"
  [ -n "${BENCH_OUT:-}" ] || exit 0
fi
node "$ROOT/bench/report.mjs" "$RES" >"$TMP/README.md"
mv "$TMP/README.md" "$OUT"
log "wrote $OUT in $(($(date +%s) - T_START)) s"
