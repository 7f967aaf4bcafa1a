#!/usr/bin/env bash
# Memory after a burst: Warden's RSS must come back once a burst of streams is over (glibc keeps freed memory
# unless it is trimmed; Warden trims once no worker has had a request for a second). Two waves of 1,500 concurrent
# streams on one process (the fake provider holds each open for a second or two); VmRSS idle, at the peak
# and 2.5 s after each wave (bench/burst.mjs). Measured on the release build: ASan's allocator keeps a
# quarantine, so its RSS says nothing about glibc's. bench/README.md has the 5,000-stream figures.
# Usage: bash tests/integration/test_memory.sh [ignored: always build/warden]
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${WD_MEMORY_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/warden}"

STREAMS="${WD_MEMORY_STREAMS:-1500}"
# 2 fds per stream in Warden (client, provider), one in the fake and one in the client: raise the soft limit
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * STREAMS + 200)) ]; then
  fail "ulimit -n is $(ulimit -n), below the $((2 * STREAMS + 200)) this test needs"
  wd_finish
  exit 1
fi
if [ ! -x "$WARDEN_BIN" ]; then
  fail "no release build at $WARDEN_BIN (make build)"
  wd_finish
  exit 1
fi

export WARDEN_DEV_KEY="wk-memory-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
wd_start_fake --chunk-delay-ms 300
CFG=$(wd_config "$(wd_free_port)" "$FAKE_URL")
wd_start_warden "$CFG"

# warm-up: the first requests' one-time allocations belong to the idle figure
for i in 1 2 3 4 5; do
  curl -sS -o /dev/null --max-time 10 -H "x-api-key: $WARDEN_DEV_KEY" -H 'content-type: application/json' \
    --data-binary '{"model":"claude-sonnet-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"warm"}]}' \
    "$WARDEN_URL/anthropic/v1/messages" || true
done
sleep 1.5

rc=0
timeout 180 node "$WD_ROOT/bench/burst.mjs" --url "$WARDEN_URL" --key "$WARDEN_DEV_KEY" --pid "$WARDEN_PID" \
  --streams "$STREAMS" --waves 2 --settle-ms 2500 --timeout-ms 60000 >"$WD_TMP/burst.jsonl" 2>"$WD_TMP/burst.err" || rc=$?
cat "$WD_TMP/burst.jsonl"
check "burst: 2 waves of $STREAMS streams all completed with message_stop (exit $rc)" \
  eval '[ "$rc" = 0 ] && [ "$(wc -l <"$WD_TMP/burst.jsonl")" = 2 ]'

# gives back: after - idle <= 40% of peak - idle (without the trim glibc kept all of it: after == peak)
gives_back() {
  python3 - "$WD_TMP/burst.jsonl" <<'PY'
import json, sys
ok = True
for line in open(sys.argv[1]):
    r = json.loads(line)
    grew = r["peak_kb"] - r["idle_kb"]
    kept = r["after_kb"] - r["idle_kb"]
    print(f"  wave {r['wave']}: idle {r['idle_kb']/1024:.1f} MB, peak {r['peak_kb']/1024:.1f} MB, "
          f"after {r['after_kb']/1024:.1f} MB ({r['after_kb']/r['idle_kb']:.2f}x idle), kept {kept/max(grew,1):.0%} "
          f"of the burst's {grew/1024:.1f} MB; {r['open_peak']} open at once", file=sys.stderr)
    if grew < 20 * 1024 or kept > 0.4 * grew or r["after_kb"] > 2 * r["idle_kb"]:
        ok = False
sys.exit(0 if ok else 1)
PY
}
check "burst: after each wave RSS is back within 2x idle, at least 60% of what the burst took given back" gives_back
wd_stop_warden
wd_finish
