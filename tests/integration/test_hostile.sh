#!/usr/bin/env bash
# A hostile client on loopback (issue 14, items 1, 2, 3, 6, 8 and 9): unauthenticated bodies are answered on
# their headers and never read, memory stays bounded under body floods over HTTP/1.1 and HTTP/2, request
# smuggling framings are refused and close the connection, a second process cannot share the port, HTTP/2
# rapid resets get GOAWAY without reaching the provider, oversized heads get the JSON 431, and a low
# descriptor limit never locks Warden up. Raw clients: tests/integration/hostile.py (bounded in count and time).
# Usage: bash tests/integration/test_hostile.sh path/to/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
H="python3 $WD_ROOT/tests/integration/hostile.py"

# jq-free JSON checks: jtrue DESC JSON 'python expression over d'
jtrue() {
  local d="$1" j="$2" e="$3"
  if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$j" "$e" 2>/dev/null; then
    ok "$d"
  else
    fail "$d"; echo "#   got: ${j:0:600}" >&2
  fi
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
metric() { curl -s "$WARDEN_METRICS_URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
metrics_url_of() { sed -n 's|.*"msg":"metrics on \(http://[^"]*\)/metrics".*|\1|p' "$1" | head -1; }
raw() { printf "$1" | od -An -v -tx1 | tr -d ' \n'; }

wd_start_fake
cfg=$(wd_config "$(wd_free_port)" "$FAKE_URL" "$(wd_metrics_yaml)")
wd_start_warden "$cfg"
P=${WARDEN_URL##*:}

# ---- 1. unauthenticated bodies: answered on the headers, never read --------------------------------------
j=$($H h1-early "$P" - 20000000)
jtrue "HTTP/1.1, no key, 20 MB declared: 401 authentication_error before any body byte" "$j" \
  'd["responses"] and d["responses"][0]["status"]==401 and "authentication_error" in d["responses"][0]["body"]'
jtrue "HTTP/1.1, no key: answered within a second, and the connection closes (the body is never read)" "$j" \
  'd["seconds"] < 1 and d["closed"] and d["responses"][0]["headers"].get("connection")=="close"'
j=$($H h1-early "$P" wrong-key 20000000)
jtrue "HTTP/1.1, wrong key, 20 MB declared: 401 on the headers" "$j" \
  'd["responses"] and d["responses"][0]["status"]==401 and d["closed"]'
j=$($H h1-early "$P" devkey 20000000 /healthz)
jtrue "HTTP/1.1, a body to a route that takes none: answered without reading it, connection closed" "$j" \
  'd["responses"] and d["responses"][0]["status"]==200 and d["closed"]'
j=$($H h1-early "$P" devkey 40000000)
jtrue "HTTP/1.1, valid key, body over limits.max_body_bytes: 413 request_too_large on the headers" "$j" \
  'd["responses"] and d["responses"][0]["status"]==413 and "request_too_large" in d["responses"][0]["body"]'
curl -s -o /dev/null "$WARDEN_URL/healthz"
rss0=$(rss_kb "$WARDEN_PID")
j=$($H h1-flood "$P" 8 60 4)
jtrue "HTTP/1.1 flood, 8 connections x 60 MB without a key: every one answered 401" "$j" 'd["statuses"]==[401]*8'
j=$($H h2-flood "$P" 100 4)
# A stream answered early and then sent more DATA is reset by libh2o (STREAM_CLOSED); when that DATA comes
# before the answer has left, the answer goes with the stream. Either way nothing of the body is kept.
jtrue "HTTP/2 flood, one connection, 100 streams without a key: answered 401 on their headers (at least 90), all closed" "$j" \
  'd["answered_401"]>=90 and d["rst"]==100'
rss1=$(rss_kb "$WARDEN_PID")
echo "# RSS before the floods ${rss0} KiB, after ${rss1} KiB"
check "memory under the floods: RSS grew by less than 64 MiB (${rss0} -> ${rss1} KiB)" test $((rss1 - rss0)) -lt 65536
check "early refusals are counted by reason" test "$(curl -s "$WARDEN_METRICS_URL/metrics" | \
  awk '$1 ~ /^warden_requests_refused_early_total\{reason="unauthenticated"\}/ {print $2}')" -ge 109

# ---- 2. request smuggling (RFC 9112 6.1, 6.3, 7.1) --------------------------------------------------------
smuggle=$(raw 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
H1="POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: devkey\r\ncontent-type: application/json\r\n"
for c in "CL+TE|${H1}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" \
         "TE+CL|${H1}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" \
         "TAB TE+CL|${H1}Content-Length: 5\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n" \
         "two Content-Lengths|${H1}Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}" \
         "unknown coding|${H1}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" \
         "bare LF after a chunk size|${H1}Transfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n" \
         "bare LF after chunk data|${H1}Transfer-Encoding: chunked\r\n\r\n2\r\n{}\n0\r\n\r\n" \
         "bare LF ending the body|${H1}Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\n"; do
  name=${c%%|*}
  j=$($H h1-raw "$P" "$(raw "${c#*|}")$smuggle" 2)
  jtrue "smuggling, $name: one 400 invalid_request_error, connection: close, and the connection closes" "$j" \
    'len(d["responses"])==1 and d["responses"][0]["status"]==400 and "invalid_request_error" in d["responses"][0]["body"] and d["responses"][0]["headers"].get("connection")=="close" and d["closed"]'
done
j=$($H h1-raw "$P" "$(raw "${H1}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}")" 2)
jtrue "two equal Content-Lengths are one: the request is handled (400 from the decoder, not the framing)" "$j" \
  'd["responses"] and "Content-Length" not in d["responses"][0]["body"]'

# One parse of each head: libh2o gets the guard's parse of the read it judged (server/front.c, `memo`), and a
# later head of the same length in the same place is parsed for itself: whole, split across reads (picohttpparser's
# last_len), and pipelined behind another.
ok=$(raw 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'); nf=$(raw 'GET /healthy HTTP/1.1\r\nHost: x\r\n\r\n')
j=$($H h1-seq "$P" "$ok" "$nf" "$ok" "$(raw 'GET /heal')/$(raw 'thy HTTP/1.1\r\nHost: x\r\n\r\n')" \
  "$(raw 'GET /heal')/$(raw 'thz HTTP/1.1\r\nHost: x\r\n\r\n')" "$nf$ok" "$ok$nf")
jtrue "one keep-alive connection, heads of one length: each answered for its own path (200 404 200 404 200 404 200 200 404)" "$j" \
  'd["statuses"]==[200,404,200,404,200,404,200,200,404]'

# ---- 8. oversized heads: the documented JSON 431 ----------------------------------------------------------
big=$(head -c 100000 /dev/zero | tr '\0' a)
raw "GET /healthz HTTP/1.1\r\nHost: x\r\nx-big: $big\r\n\r\n" >"$WD_TMP/big.hex"
j=$($H h1-raw "$P" "@$WD_TMP/big.hex" 2)
jtrue "a 100 KB header: 431 in JSON (limits.max_header_bytes), connection closed" "$j" \
  'd["responses"] and d["responses"][0]["status"]==431 and "invalid_request_error" in d["responses"][0]["body"] and d["closed"]'
many=""; for i in $(seq 1 150); do many+="x-h$i: v\r\n"; done
j=$($H h1-raw "$P" "$(raw "GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n")" 2)
jtrue "150 header fields: 431 in JSON naming the field limit" "$j" \
  'd["responses"] and d["responses"][0]["status"]==431 and "100 header fields" in d["responses"][0]["body"]'
j=$($H h1-raw "$P" "$(raw "NOT HTTP AT ALL\r\n\r\n")" 2)
jtrue "a malformed request line: 400 in JSON" "$j" \
  'd["responses"] and d["responses"][0]["status"]==400 and "invalid_request_error" in d["responses"][0]["body"]'

# ---- 6. HTTP/2 rapid reset ---------------------------------------------------------------------------------
curl -s -X POST "$FAKE_URL/_fake/reset" >/dev/null
j=$($H h2-reset "$P" devkey 100 50)
jtrue "HTTP/2 rapid reset with a key: GOAWAY ENHANCE_YOUR_CALM (11) after the threshold" "$j" 'd["goaway"]==11 and d["opened"] <= 400'
reqs=$(curl -s "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
check "HTTP/2 rapid reset: streams reset in the read that opened them never reach the provider ($reqs requests)" test "$reqs" -eq 0
j=$($H h2-reset "$P" - 1000 100)
jtrue "HTTP/2 rapid reset without a key: GOAWAY ENHANCE_YOUR_CALM" "$j" 'd["goaway"]==11'
j=$($H h2-priority "$P" devkey)
jtrue "HTTP/2: a PRIORITY frame for a far stream id does not let a later stream without a key skip the guard" "$j" \
  'd["stream3_401"]'
j=$($H h2c-upgrade-reset "$P" devkey 100 50)
jtrue "HTTP/2 through Upgrade: h2c (frames in the upgrade's own write): rapid resets still get GOAWAY" "$j" \
  'd["switched"] and d["goaway"]==11'
check "GOAWAYs are counted" test "$(curl -s "$WARDEN_METRICS_URL/metrics" | awk '$1 == "warden_http2_goaway_total{reason=\"resets\"}" {print $2}')" -ge 3
check "after the attacks: a normal request still works" test "$(curl -s -o /dev/null -w '%{http_code}' \
  -H 'x-api-key: devkey' -H 'content-type: application/json' \
  -d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}' \
  "$WARDEN_URL/anthropic/v1/messages")" = 200

# ---- 1, 2 over TLS: the guard reads the decrypted bytes (HTTP/1.1 and HTTP/2 through ALPN) --------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$WD_TMP/key.pem" -out "$WD_TMP/cert.pem" 2>/dev/null
TLS_PORT=$(wd_free_port)
cfgt=$(wd_config "$TLS_PORT" "$FAKE_URL" "tls: {cert: $WD_TMP/cert.pem, key: $WD_TMP/key.pem}")
GEMINI_API_KEY=k WARDEN_DEV_KEY=devkey "$WARDEN_BIN" serve --config "$cfgt" >"$WD_TMP/tls.out" 2>"$WD_TMP/tls.log" &
TLS_PID=$!
WD_PIDS+=("$TLS_PID")
for i in $(seq 1 100); do curl -s -o /dev/null --max-time 1 --cacert "$WD_TMP/cert.pem" "https://127.0.0.1:$TLS_PORT/healthz" && break; sleep 0.1; done
export HOSTILE_TLS_CA="$WD_TMP/cert.pem"
j=$($H h1-early "$TLS_PORT" - 20000000)
jtrue "TLS HTTP/1.1, no key, 20 MB declared: 401 on the headers, connection closed" "$j" \
  'd["responses"] and d["responses"][0]["status"]==401 and d["closed"]'
j=$($H h1-raw "$TLS_PORT" "$(raw "${H1}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")$smuggle" 2)
jtrue "TLS HTTP/1.1 smuggling, CL+TE: one 400, connection closed" "$j" \
  'len(d["responses"])==1 and d["responses"][0]["status"]==400 and d["closed"]'
j=$($H h2-flood "$TLS_PORT" 50 2)
jtrue "TLS HTTP/2 (ALPN h2), 50 streams without a key: answered 401 on their headers" "$j" 'd["answered_401"]>=45'
j=$($H h2-reset "$TLS_PORT" devkey 100 50)
jtrue "TLS HTTP/2 rapid reset: GOAWAY ENHANCE_YOUR_CALM" "$j" 'd["goaway"]==11'
unset HOSTILE_TLS_CA
wd_stop_warden "$TLS_PID" "$WD_TMP/tls.log"

# ---- 3. one process per address ---------------------------------------------------------------------------
j=$($H reuseport-bind "$P")
jtrue "a foreign SO_REUSEPORT socket cannot bind Warden's port" "$j" 'd["bound"] is False and d["eaddrinuse"]'
rc=0
GEMINI_API_KEY=k WARDEN_DEV_KEY=devkey timeout 10 "$WARDEN_BIN" serve --config "$cfg" >"$WD_TMP/second.out" 2>"$WD_TMP/second.log" || rc=$?
check "a second warden serve on the same address exits 1" test "$rc" -eq 1
check "... saying the address is in use" grep -q 'address in use' "$WD_TMP/second.log"
# the workers share the one socket
ticks() { local t; for t in /proc/"$WARDEN_PID"/task/*; do if [ "$(cat "$t/comm")" = "$1" ]; then awk '{print $14 + $15}' "$t/stat"; fi; done; return 0; }
w0a=$(ticks wd-worker-0); w1a=$(ticks wd-worker-1)
loads=()
for i in $(seq 1 8); do
  (for k in $(seq 1 60); do curl -s -o /dev/null --max-time 10 -H 'x-api-key: devkey' -H 'content-type: application/json' \
     -d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}' \
     "$WARDEN_URL/anthropic/v1/messages"; done) &
  loads+=($!)
done
wait "${loads[@]}"
w0b=$(ticks wd-worker-0); w1b=$(ticks wd-worker-1)
echo "# worker CPU ticks: worker 0 +$((w0b - w0a)), worker 1 +$((w1b - w1a))"
check "both workers take connections from the shared socket" test $((w0b - w0a)) -gt 0 -a $((w1b - w1a)) -gt 0
wd_stop_warden
PORT2=$(wd_free_port)
cfg2=$(wd_config "$PORT2" "$FAKE_URL")
$H reuseport-hold "$PORT2" 6 >"$WD_TMP/hold.out" &
WD_PIDS+=($!)
for i in $(seq 1 50); do grep -q ready "$WD_TMP/hold.out" 2>/dev/null && break; sleep 0.1; done
rc=0
GEMINI_API_KEY=k WARDEN_DEV_KEY=devkey timeout 10 "$WARDEN_BIN" serve --config "$cfg2" >"$WD_TMP/third.out" 2>"$WD_TMP/third.log" || rc=$?
check "Warden does not join a port that a foreign SO_REUSEPORT socket holds: exit 1, address in use" \
  test "$rc" -eq 1 -a -n "$(grep 'address in use' "$WD_TMP/third.log")"

# ---- 1 (bounds). authenticated bodies share a process budget -----------------------------------------------
cfg3=$(wd_config "$(wd_free_port)" "$FAKE_URL" "limits:
  max_body_bytes: 1MiB
  max_pending_body_bytes: 4MiB
$(wd_metrics_yaml)")
wd_start_warden "$cfg3"
P3=${WARDEN_URL##*:}
$H h1-hold "$P3" devkey 1048576 6 2 >"$WD_TMP/holdb.out" &
hp=$!
sleep 1.2
pend=$(metric warden_pending_body_bytes)
wait "$hp"
j=$(cat "$WD_TMP/holdb.out")
jtrue "process budget 4 MiB: four 1 MiB bodies are admitted, the next two get 503 on their headers" "$j" \
  'd["statuses"]==[None,None,None,None,503,503]'
check "warden_pending_body_bytes shows the 4 MiB held (${pend})" test "${pend:-0}" -eq 4194304
sleep 0.5
check "the budget comes back when those connections go (now $(metric warden_pending_body_bytes))" test "$(metric warden_pending_body_bytes)" -eq 0
wd_stop_warden

# ---- 9. a low descriptor limit: capped connections, never a lock-up ----------------------------------------
cfg4=$(wd_config "$(wd_free_port)" "$FAKE_URL" "$(wd_metrics_yaml)")
WARDEN_LOG="$WD_TMP/fd.log"
port4=$(sed -n 's/^listen: .*:\([0-9]*\)$/\1/p' "$cfg4")
GEMINI_API_KEY=k WARDEN_DEV_KEY=devkey prlimit --nofile=256:256 "$WARDEN_BIN" serve --config "$cfg4" >"$WD_TMP/fd.out" 2>"$WARDEN_LOG" &
WARDEN_PID=$!
WD_PIDS+=("$WARDEN_PID")
WARDEN_URL="http://127.0.0.1:$port4"
wd_wait_http "$WARDEN_URL/healthz"
WARDEN_METRICS_URL=$(metrics_url_of "$WARDEN_LOG")
check "fd limit 256: the connection cap is derived from it (64) and logged" grep -q '"max_connections":64' "$WARDEN_LOG"
stuck=0
for run in 1 2 3 4 5 6; do
  j=$($H ramp "$port4" 400 4)
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["unanswered"]==0 and d["ok"]>0 else 1)' "$j" || { stuck=1; echo "# run $run: $j"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$WARDEN_URL/healthz")
  [ "$code" = 200 ] || { stuck=1; echo "# run $run: /healthz after the ramp: $code"; }
done
check "6 ramps of 400 connections under a 256-descriptor limit: every connection answered or closed at once, and Warden recovers after each" test "$stuck" -eq 0
check "connections past the cap are counted" test "$(metric warden_connections_refused_total)" -gt 0
check "... and logged, at a bounded rate" test "$(grep -c 'limits.max_connections' "$WARDEN_LOG")" -le 20
check "... with at least one line" grep -q 'connection refused: limits.max_connections' "$WARDEN_LOG"
t0=$(date +%s)
wd_stop_warden
check "SIGTERM after the ramps drains at once (took $(( $(date +%s) - t0 )) s)" test $(( $(date +%s) - t0 )) -lt 15
# a provider connection that cannot be opened for want of a descriptor is named in the log and counted
cfg6=$(wd_config "$(wd_free_port)" "$FAKE_URL" "$(wd_metrics_yaml)")
WD_WARDEN_ENV=(LD_PRELOAD="$(dirname "$WARDEN_BIN")/libfault_sync.so" WD_FAULT_SOCKET_EMFILE="$WD_TMP/emfile"
  ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0")
wd_start_warden "$cfg6"
WD_WARDEN_ENV=()
touch "$WD_TMP/emfile" # from now on (the listeners are open): socket() fails with EMFILE
post_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'x-api-key: devkey' -H 'content-type: application/json' \
  -d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}' "$WARDEN_URL/anthropic/v1/messages"; }
check "no descriptor for a provider connection: 502" test "$(post_code)" = 502
check "... the log names the cause" grep -q 'out of file descriptors: cannot open a provider connection' "$WARDEN_LOG"
check "... and it is counted (warden_fd_exhausted_total{where=\"provider\"})" \
  test "$(metric 'warden_fd_exhausted_total{where="provider"}')" -ge 1
rm -f "$WD_TMP/emfile"
check "descriptors back: the next request is served" test "$(post_code)" = 200
wd_stop_warden

cfg5=$(wd_config "$(wd_free_port)" "$FAKE_URL" "$(wd_metrics_yaml)")
port5=$(sed -n 's/^listen: .*:\([0-9]*\)$/\1/p' "$cfg5")
GEMINI_API_KEY=k WARDEN_DEV_KEY=devkey prlimit --nofile=512:4096 "$WARDEN_BIN" serve --config "$cfg5" >"$WD_TMP/fd5.out" 2>"$WD_TMP/fd5.log" &
WARDEN_PID=$!
WD_PIDS+=("$WARDEN_PID")
WARDEN_LOG="$WD_TMP/fd5.log"
WARDEN_URL="http://127.0.0.1:$port5"
wd_wait_http "$WARDEN_URL/healthz"
check "the soft descriptor limit is raised to the hard one at start, and logged" \
  grep -q '"msg":"file descriptor limit","soft":4096,"hard":4096,"was":512' "$WD_TMP/fd5.log"
wd_stop_warden

wd_finish
