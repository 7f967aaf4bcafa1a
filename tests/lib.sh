# Shared helpers for integration and e2e scripts: start the fake provider and Warden on loopback
# ephemeral ports, stop everything by PID on exit, and fail on any sanitizer report.
# Usage: source tests/lib.sh "$WARDEN_BIN"
set -euo pipefail
WD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARDEN_BIN="${1:-$WD_ROOT/build-asan/warden}"
WD_TMP="$(mktemp -d /tmp/warden-test.XXXXXX)"
WD_PIDS=()
WD_PASS=0
WD_FAIL=0
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$WD_ROOT/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=99}"

WD_CLEANUP_HOOKS=()
wd_cleanup() {
  local pid hook
  for hook in "${WD_CLEANUP_HOOKS[@]:-}"; do
    [ -n "$hook" ] && "$hook" || true
  done
  for pid in "${WD_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${WD_PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  # WD_KEEP_LOGS=DIR: keep this test's temp dir (Warden's logs, configs) there for a post-mortem
  if [ -n "${WD_KEEP_LOGS:-}" ]; then mkdir -p "$WD_KEEP_LOGS" && cp -r "$WD_TMP" "$WD_KEEP_LOGS/" 2>/dev/null || true; fi
  rm -rf "$WD_TMP"
}
trap wd_cleanup EXIT

ok()   { WD_PASS=$((WD_PASS + 1)); echo "ok - $*"; }
fail() { WD_FAIL=$((WD_FAIL + 1)); echo "not ok - $*"; }
# check "description" command...: runs the command, records pass or fail
check() { local d="$1"; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }

# A free TCP port on 127.0.0.1 (the kernel picks; a tiny race is acceptable in tests).
wd_free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

# Waits until a URL answers (any HTTP status), at most ~10 s.
wd_wait_http() {
  local url="$1" i
  for i in $(seq 1 200); do
    curl -s -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.05
  done
  echo "timeout waiting for $url" >&2
  return 1
}

# wd_wait_for FILE REGEX: until a line of FILE matches (10 s at most)
wd_wait_for() {
  local i
  for i in $(seq 1 200); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timeout waiting for /$2/ in $1" >&2
  cat "$1" >&2
  return 1
}

# wd_start_server VAR CMD [ARGS...]: starts a test server in the background (stopped by PID at exit) and waits
# up to 60 s for the one line `{"port": N}` it prints once listening (a Node server usually takes under a second;
# one start of the oidc-provider IdP was seen to take 23 s on a loaded machine, and once not to print within 60 s
# while alive: that start is then shown (process state, stderr) and made once more), giving up at once if the
# process exits; VAR (any name but wd_*_) gets N, WD_SERVER_PID its PID.
wd_start_server() {
  local wd_var_="$1" wd_out_ wd_i_ wd_port_="" wd_try_
  shift
  for wd_try_ in 1 2; do
    wd_out_="$WD_TMP/server.$RANDOM.out"
    "$@" >"$wd_out_" 2>"$wd_out_.err" &
    WD_SERVER_PID=$!
    WD_PIDS+=("$WD_SERVER_PID")
    for wd_i_ in $(seq 1 1200); do
      grep -q '"port"' "$wd_out_" 2>/dev/null && break
      kill -0 "$WD_SERVER_PID" 2>/dev/null || break
      sleep 0.05
    done
    wd_port_=$(sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$wd_out_" | head -1)
    [ -n "$wd_port_" ] && break
    echo "$(basename -- "$2") did not start (after $((wd_i_ / 20)) s, try $wd_try_)" >&2
    cat "$wd_out_.err" >&2
    kill -0 "$WD_SERVER_PID" 2>/dev/null || return 1 # it exited: a real failure, not a slow start
    ps -o pid,stat,etime,time,wchan:32,args -p "$WD_SERVER_PID" >&2 || true
    kill -KILL "$WD_SERVER_PID" 2>/dev/null
    wait "$WD_SERVER_PID" 2>/dev/null || true
  done
  [ -n "$wd_port_" ] || return 1
  printf -v "$wd_var_" '%s' "$wd_port_"
}

# wd_start_fake [fake args...] -> FAKE_PORT, FAKE_PID, FAKE_URL
wd_start_fake() {
  wd_start_server FAKE_PORT node "$WD_ROOT/tests/fakes/fake_gemini.mjs" --port 0 "$@"
  FAKE_PID=$WD_SERVER_PID
  FAKE_URL="http://127.0.0.1:$FAKE_PORT"
}

# wd_config PORT BASE_URL [extra yaml] -> path of a config file serving the tier map on the fake
wd_config() {
  local port="$1" base="$2" extra="${3:-}" f="$WD_TMP/warden.$RANDOM.yaml"
  cat >"$f" <<YAML
listen: 127.0.0.1:$port
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $base
    keys:
      - secret: env://GEMINI_API_KEY
models:
  tiers:
    opus: gemini/gemini-2.5-pro
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite
  aliases:
    fast: gemini/gemini-2.5-flash
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
$extra
YAML
  echo "$f"
}

# wd_start_warden CONFIG -> WARDEN_PID, WARDEN_URL, WARDEN_LOG (port taken from the config's listen),
# WARDEN_METRICS_URL (the telemetry.metrics.listen base URL Warden logged, else empty; give tests that read
# /metrics their own port with "$(wd_metrics_yaml)", as the default 127.0.0.1:9464 is shared).
# WD_WARDEN_ENV (an array of NAME=value) is added to Warden's environment only.
wd_start_warden() {
  local cfg="$1"
  WARDEN_LOG="$WD_TMP/warden.$RANDOM.log"
  local port
  port=$(sed -n 's/^listen: .*:\([0-9]*\)$/\1/p' "$cfg")
  GEMINI_API_KEY="${GEMINI_API_KEY-test-gemini-key}" WARDEN_DEV_KEY="${WARDEN_DEV_KEY-devkey}" \
    env ${WD_WARDEN_ENV[@]+"${WD_WARDEN_ENV[@]}"} "$WARDEN_BIN" serve --config "$cfg" >"$WARDEN_LOG.out" 2>"$WARDEN_LOG" &
  WARDEN_PID=$!
  WD_PIDS+=("$WARDEN_PID")
  WARDEN_URL="http://127.0.0.1:$port"
  wd_wait_http "$WARDEN_URL/healthz"
  WARDEN_METRICS_URL=$(sed -n 's|.*"msg":"metrics on \(http://[^"]*\)/metrics".*|\1|p' "$WARDEN_LOG" | head -1)
}

# wd_metrics_yaml [INDENT] -> a telemetry.metrics section on a free loopback port, for wd_config's extra yaml
# (INDENT "  " gives just the metrics: lines, for a config that has its own telemetry: section)
wd_metrics_yaml() {
  [ -n "${1:-}" ] || echo "telemetry:"
  printf '  metrics:\n    listen: 127.0.0.1:%s\n' "$(wd_free_port)"
}

# Stops Warden with SIGTERM and checks it exits 0 without sanitizer reports.
wd_stop_warden() {
  local pid="${1:-$WARDEN_PID}" log="${2:-$WARDEN_LOG}" rc=0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "warden exited $rc"; tail -30 "$log" >&2
  elif grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$log"; then
    fail "sanitizer report in warden log"; grep -A30 -E 'Sanitizer|runtime error' "$log" | head -60 >&2
  else
    ok "warden drained and exited 0 with no sanitizer report"
  fi
}

# Final summary line and exit status.
wd_finish() {
  echo "$WD_PASS passed, $WD_FAIL failed"
  [ "$WD_FAIL" -eq 0 ]
}
