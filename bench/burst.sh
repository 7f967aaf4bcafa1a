#!/usr/bin/env bash
# Memory after a burst, for `make bench` (bench/run.sh calls it; it also runs alone): one Warden process (one
# worker, the release build) in front of the fake Gemini holding every stream open for about 4 s (a chunk a
# second), BURST_WAVES waves of BURST_STREAMS concurrent streams (bench/burst.mjs). Prints one JSON line per
# wave on stdout, {"kind":"burst",wave,streams,ok,failed,idle_kb,peak_kb,after_kb,per_stream_kb,open_peak,ms},
# read by bench/report.mjs. Everything it starts listens on 127.0.0.1 and is stopped by PID on exit.
#
#   bash bench/burst.sh [WARDEN_BIN]     knobs: BURST_STREAMS (5000), BURST_WAVES (5), BURST_SETTLE_MS (3000)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$ROOT/build/warden}"
STREAMS="${BURST_STREAMS:-5000}"
WAVES="${BURST_WAVES:-5}"
SETTLE="${BURST_SETTLE_MS:-3000}"
TMP="$(mktemp -d /tmp/warden-burst.XXXXXX)"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
die() { echo "burst: $*" >&2; exit 1; }

# Warden holds 2 fds per stream (client, provider), the fake and the client one each
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((2 * STREAMS + 200)) ] ||
  die "ulimit -n is $(ulimit -n); $((2 * STREAMS + 200)) needed for $STREAMS streams"
[ -x "$BIN" ] || die "no Warden binary at $BIN (make build)"

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
node "$ROOT/tests/fakes/fake_gemini.mjs" --port 0 --key burst-gemini-key --chunk-delay-ms 1000 >"$TMP/fake.out" 2>"$TMP/fake.err" &
PIDS+=($!)
for i in $(seq 1 200); do grep -q '"port"' "$TMP/fake.out" 2>/dev/null && break; sleep 0.05; done
FPORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$TMP/fake.out" | head -1)
[ -n "$FPORT" ] || die "the fake did not start: $(cat "$TMP/fake.err")"
WPORT=$(free_port)
cat >"$TMP/warden.yaml" <<YAML
# bench/burst.sh: one worker; the access log off, as in bench/run.sh's throughput runs
listen: 127.0.0.1:$WPORT
workers: 1
providers:
  gemini:
    type: gemini
    base_url: http://127.0.0.1:$FPORT
    keys:
      - secret: env://GEMINI_API_KEY
models:
  tiers:
    sonnet: gemini/gemini-2.5-flash
auth:
  keys:
    - name: burst
      secret: env://WARDEN_DEV_KEY
telemetry:
  logs:
    access: false
YAML
GEMINI_API_KEY=burst-gemini-key WARDEN_DEV_KEY=burst-dev-key "$BIN" serve --config "$TMP/warden.yaml" >"$TMP/w.out" 2>"$TMP/w.log" &
WPID=$!
PIDS+=("$WPID")
for i in $(seq 1 200); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$WPORT/healthz" && break; sleep 0.05; done
kill -0 "$WPID" 2>/dev/null || die "Warden did not start: $(tail -5 "$TMP/w.log")"
# warm-up: one-time allocations (TLS and curl state, the first buffers) belong to the idle figure
for i in 1 2 3; do
  curl -s -o /dev/null --max-time 10 -H 'x-api-key: burst-dev-key' -H 'content-type: application/json' \
    --data-binary '{"model":"claude-sonnet-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"warm"}]}' \
    "http://127.0.0.1:$WPORT/anthropic/v1/messages" || true
done
sleep 1.5
rc=0
node "$ROOT/bench/burst.mjs" --url "http://127.0.0.1:$WPORT" --key burst-dev-key --pid "$WPID" --streams "$STREAMS" \
  --waves "$WAVES" --settle-ms "$SETTLE" --timeout-ms 120000 >"$TMP/burst.jsonl" 2>"$TMP/burst.err" || rc=$?
[ -s "$TMP/burst.jsonl" ] || die "no result (exit $rc): $(tail -5 "$TMP/burst.err")"
while IFS= read -r line; do printf '{"kind":"burst",%s\n' "${line#\{}"; done <"$TMP/burst.jsonl"
[ "$rc" = 0 ] || echo "burst: some streams failed (exit $rc); see the failed counts" >&2
exit 0
