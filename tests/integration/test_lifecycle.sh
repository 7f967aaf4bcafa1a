#!/usr/bin/env bash
# Warden's process lifecycle: SIGHUP reload (a good config takes effect, a broken one is refused and the old one
# keeps serving, a stream in flight survives), SIGTERM drain (the in-flight stream completes, new connections
# are refused, exit 0 without sanitizer reports, also when the drain timeout cuts a stuck stream; streams cut
# at the drain deadline end with an overloaded_error event, an access line and a durable audit record), TLS with
# HTTP/2 through ALPN, and the CLI (config check, version, --help).
# Usage: bash tests/integration/test_lifecycle.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
HERE="$WD_ROOT/tests/integration"
A() { python3 "$HERE/wd_assert.py" "$@"; }

export WARDEN_DEV_KEY="wk-lifecycle-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
wd_start_fake

OUT="$WD_TMP/out"
CODE=000
CURL_TLS=()
# post BODY_FILE [curl args...] -> $OUT, $CODE, $VER
post() {
  local f="$1" r
  shift
  : >"$OUT"
  r=$(curl -sS -N -o "$OUT" -w '%{http_code} %{http_version}' --max-time 20 "${CURL_TLS[@]}" \
    -H "x-api-key: $WARDEN_DEV_KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    "$@" --data-binary "@$f" "$WARDEN_URL/anthropic/v1/messages" 2>"$OUT.err") || true
  CODE=${r% *}
  VER=${r#* }
}
status_is() {
  [ "$CODE" = "$1" ] && return 0
  echo "  HTTP $CODE, want $1: $(head -c 400 "$OUT" 2>/dev/null) $(cat "$OUT.err" 2>/dev/null)" >&2
  return 1
}
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "${CURL_TLS[@]}" "$WARDEN_URL/healthz")" = 200 ]; }
fault() {
  curl -sS --max-time 5 -o /dev/null -X POST "$FAKE_URL/_fake/reset"
  curl -sS --max-time 5 -o /dev/null --fail-with-body "$FAKE_URL/_fake/script" \
    -d "{\"mode\":\"faults\",\"faults\":[$1]}" || echo "could not script the fake: $1" >&2
}
# the model in the path of the fake's last request
last_upstream_model() {
  curl -sS --max-time 5 "$FAKE_URL/_fake/requests" |
    python3 -c 'import json,re,sys; r=json.load(sys.stdin); print(re.search(r"/models/([^:]+):", r[-1]["path"]).group(1) if r else "")'
}
# wait_for SECONDS CMD...: polls CMD every 50 ms
wait_for() {
  local t="$1" i
  shift
  for i in $(seq 1 $((t * 20))); do
    "$@" && return 0
    sleep 0.05
  done
  return 1
}
log_has() { grep -qF "$1" "$WARDEN_LOG"; }
# exits_within SECONDS PID: PID ends within SECONDS; its exit status goes to $EXIT_RC
exits_within() {
  local t="$1" pid="$2"
  EXIT_RC=timeout
  if wait_for "$t" eval "! kill -0 $pid 2>/dev/null"; then
    EXIT_RC=0
    wait "$pid" || EXIT_RC=$?
    return 0
  fi
  echo "  pid $pid still running after $t s" >&2
  return 1
}
no_sanitizer_report() {
  ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$1" && return 0
  grep -A30 -E 'Sanitizer|runtime error' "$1" | head -60 >&2
  return 1
}
bodyfile() { # bodyfile FILE MODEL STREAM
  printf '{"model":"%s","max_tokens":64,"stream":%s,"messages":[{"role":"user","content":"hello lifecycle"}]}' \
    "$2" "$3" >"$1"
}
bodyfile "$WD_TMP/quick.json" quick false
bodyfile "$WD_TMP/sonnet.json" claude-sonnet-4-5 false
bodyfile "$WD_TMP/stream.json" claude-sonnet-4-5 true

# ======== SIGHUP reload
CFG=$(wd_config "$(wd_free_port)" "$FAKE_URL" "limits: {drain_timeout: 5s}")
wd_start_warden "$CFG"

post "$WD_TMP/quick.json"
check "before reload: model quick is unknown (404 not_found_error)" eval 'status_is 404 && A error "$OUT" not_found_error'

python3 - "$CFG" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
assert "  aliases:\n" in s
open(p, "w").write(s.replace("  aliases:\n", "  aliases:\n    quick: gemini/gemini-2.5-flash-lite\n", 1))
PY
kill -HUP "$WARDEN_PID"
check "SIGHUP with a good config: logged as reloaded" wait_for 5 log_has "config reloaded"
sleep 0.2
all_quick_ok=true
for i in 1 2 3 4 5 6; do # new connections land on either worker: each must have taken the new config
  fault ''
  post "$WD_TMP/quick.json"
  if [ "$CODE" != 200 ] || [ "$(last_upstream_model)" != gemini-2.5-flash-lite ]; then
    all_quick_ok=false
    echo "  request $i: HTTP $CODE, upstream model $(last_upstream_model): $(head -c 300 "$OUT")" >&2
  fi
done
check "after reload: alias quick routes to gemini-2.5-flash-lite (6 requests, both workers)" $all_quick_ok

cp "$CFG" "$CFG.good"
printf 'bogus_top_level_key: 1\n' >>"$CFG"
kill -HUP "$WARDEN_PID"
check "SIGHUP with a broken config: logged 'reload rejected'" wait_for 5 log_has "reload rejected"
check "the rejection names the bad key" eval 'grep -F "reload rejected" "$WARDEN_LOG" | grep -qF bogus_top_level_key'
sleep 0.2
fault ''
post "$WD_TMP/quick.json"
check "after a rejected reload: the previous config still serves (quick -> flash-lite)" \
  eval 'status_is 200 && [ "$(last_upstream_model)" = gemini-2.5-flash-lite ]'
post "$WD_TMP/sonnet.json"
check "after a rejected reload: claude-sonnet-4-5 still served" status_is 200
check "after a rejected reload: Warden healthy" healthy

# a reload while a stream is in flight: the stream keeps its config and completes
cp "$CFG.good" "$CFG"
fault '{"stall_after_chunks":1,"ms":1000}'
curl -sS -N --max-time 15 -o "$WD_TMP/during_reload.sse" -H "x-api-key: $WARDEN_DEV_KEY" \
  -H 'content-type: application/json' --data-binary "@$WD_TMP/stream.json" \
  "$WARDEN_URL/anthropic/v1/messages" 2>/dev/null &
BG=$!
wait_for 5 grep -qs message_start "$WD_TMP/during_reload.sse" || true
reloads_before=$(grep -c "config reloaded" "$WARDEN_LOG" || true)
kill -HUP "$WARDEN_PID"
check "SIGHUP during a stream: reloaded" \
  wait_for 5 eval '[ "$(grep -c "config reloaded" "$WARDEN_LOG")" -gt "$reloads_before" ]'
wait "$BG" || true
check "SIGHUP during a stream: the stream completes with message_stop" A sse "$WD_TMP/during_reload.sse" --complete

# ======== SIGTERM drain with a stream in flight
# two streams stall 1.5 s mid-way: one over HTTP/1.1, one over h2c
fault '{"stall_after_chunks":1,"ms":1500},{"stall_after_chunks":1,"ms":1500}'
curl -sS -N --max-time 15 -o "$WD_TMP/drain.sse" -H "x-api-key: $WARDEN_DEV_KEY" \
  -H 'content-type: application/json' --data-binary "@$WD_TMP/stream.json" \
  "$WARDEN_URL/anthropic/v1/messages" 2>/dev/null &
BG=$!
curl -sS -N --max-time 15 --http2-prior-knowledge -o "$WD_TMP/drain2.sse" -H "x-api-key: $WARDEN_DEV_KEY" \
  -H 'content-type: application/json' --data-binary "@$WD_TMP/stream.json" \
  "$WARDEN_URL/anthropic/v1/messages" 2>/dev/null &
BG2=$!
check "drain: the HTTP/1.1 stream started before SIGTERM" wait_for 5 grep -qs message_start "$WD_TMP/drain.sse"
check "drain: the h2c stream started before SIGTERM" wait_for 5 grep -qs message_start "$WD_TMP/drain2.sse"
T0=$(date +%s%N)
kill -TERM "$WARDEN_PID"
wait_for 3 log_has "draining" || true
sleep 0.1
# after the signal: a new connection is refused, or answered 503
refused_or_503() {
  local c
  c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'content-type: application/json' --data-binary "@$WD_TMP/sonnet.json" "$WARDEN_URL/anthropic/v1/messages") || true
  [ "$c" = 000 ] || [ "$c" = 503 ] && return 0
  echo "  a new request during the drain got HTTP $c" >&2
  return 1
}
check "drain: a new messages request is refused or gets 503" refused_or_503
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$WARDEN_URL/readyz") || true
check "drain: /readyz is refused or 503 (got $c)" eval '[ "$c" = 000 ] || [ "$c" = 503 ]'
wait "$BG" || true
wait "$BG2" || true
check "drain: the in-flight HTTP/1.1 stream completed with message_stop" A sse "$WD_TMP/drain.sse" --complete
check "drain: the in-flight h2c stream completed with message_stop" A sse "$WD_TMP/drain2.sse" --complete
check "drain: Warden exits within the 5 s drain timeout" exits_within 6 "$WARDEN_PID"
T1=$(date +%s%N)
check "drain: exit status 0 (got $EXIT_RC)" test "$EXIT_RC" = 0
check "drain: exited once the stream was done, not at the drain deadline ($(((T1 - T0) / 1000000)) ms)" \
  test $(((T1 - T0) / 1000000)) -lt 4500
check "drain: no sanitizer report" no_sanitizer_report "$WARDEN_LOG"

# ======== SIGTERM with a stream stuck past the drain timeout
CFG=$(wd_config "$(wd_free_port)" "$FAKE_URL" "limits: {drain_timeout: 1s}")
wd_start_warden "$CFG"
fault '{"stall_after_chunks":1,"ms":8000}'
curl -sS -N --max-time 15 -o "$WD_TMP/stuck.sse" -H "x-api-key: $WARDEN_DEV_KEY" \
  -H 'content-type: application/json' --data-binary "@$WD_TMP/stream.json" \
  "$WARDEN_URL/anthropic/v1/messages" 2>/dev/null &
BG=$!
wait_for 5 grep -qs message_start "$WD_TMP/stuck.sse" || true
kill -TERM "$WARDEN_PID"
check "drain timeout: Warden exits within ~1 s drain timeout despite a stuck stream" exits_within 4 "$WARDEN_PID"
check "drain timeout: exit status 0 (got $EXIT_RC)" test "$EXIT_RC" = 0
check "drain timeout: no sanitizer report" no_sanitizer_report "$WARDEN_LOG"
check "drain timeout: the cut stream has no message_stop" eval '! grep -q message_stop "$WD_TMP/stuck.sse"'
wait "$BG" || true

# ======== SIGTERM with long streams past the drain timeout: each call is ended, logged and recorded
# 24 HTTP/1.1 and 6 h2c streams send a delta every 3 s, a non-streaming and a streaming request wait on
# the provider's headers; drain_timeout 1 s. Each cut stream must end with an overloaded_error event, the
# two uncommitted calls get a 503 overloaded_error, and every call has its access line and (PostgreSQL)
# its audit call record, durable before the exit.
source "$WD_ROOT/tests/pg.sh"
wd_pg_start
wd_pg_setup_db
"$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL" >"$WD_TMP/migrate.out" 2>&1 || cat "$WD_TMP/migrate.out" >&2
wd_pg_grant_roles
CFG=$(wd_config "$(wd_free_port)" "$FAKE_URL" "limits: {drain_timeout: 1s}
audit:
  database: $WD_DB_URL
  mode: fail_open
  spool: $WD_TMP/cut-spool")
wd_start_warden "$CFG"
curl -sS --max-time 5 -o /dev/null -X POST "$FAKE_URL/_fake/reset"
curl -sS --max-time 5 -o /dev/null --fail-with-body "$FAKE_URL/_fake/script" \
  -d '{"faults":[{"delay_headers_ms":9000},{"delay_headers_ms":9000}],"chunk_delay_ms":3000}'
fake_requests() { curl -sS --max-time 5 "$FAKE_URL/_fake/requests" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
CUT_PIDS=()
cut_post() { # cut_post OUTFILE BODYFILE [curl args]
  local o="$1" b="$2"
  shift 2
  curl -sS -N --max-time 20 -o "$o" -w '%{http_code}' "$@" -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'content-type: application/json' --data-binary "@$b" "$WARDEN_URL/anthropic/v1/messages" >"$o.code" 2>/dev/null &
  CUT_PIDS+=($!)
}
cut_post "$WD_TMP/cut-whole.json" "$WD_TMP/sonnet.json"
wait_for 5 eval '[ "$(fake_requests)" -ge 1 ]' || true
cut_post "$WD_TMP/cut-early.sse" "$WD_TMP/stream.json"
wait_for 5 eval '[ "$(fake_requests)" -ge 2 ]' || true
NCUT=30
for i in $(seq 1 $NCUT); do
  if [ "$i" -le 24 ]; then cut_post "$WD_TMP/cut-$i.sse" "$WD_TMP/stream.json"
  else cut_post "$WD_TMP/cut-$i.sse" "$WD_TMP/stream.json" --http2-prior-knowledge; fi
done
all_started() { local i; for i in $(seq 1 $NCUT); do grep -qs content_block_delta "$WD_TMP/cut-$i.sse" || return 1; done; }
check "drain cut: $NCUT streams are under way before SIGTERM" wait_for 10 all_started
kill -TERM "$WARDEN_PID"
check "drain cut: Warden exits within the drain timeout and its grace" exits_within 6 "$WARDEN_PID"
check "drain cut: exit status 0 (got $EXIT_RC)" test "$EXIT_RC" = 0
for p in "${CUT_PIDS[@]}"; do wait "$p" || true; done
bad=0
for i in $(seq 1 $NCUT); do
  if ! A sse "$WD_TMP/cut-$i.sse" --error --error-type overloaded_error 2>"$WD_TMP/cut-$i.why" ||
    ! grep -q 'server is shutting down' "$WD_TMP/cut-$i.sse"; then
    bad=$((bad + 1))
    [ "$bad" -le 3 ] && echo "  stream $i: $(cat "$WD_TMP/cut-$i.why") $(tail -c 300 "$WD_TMP/cut-$i.sse")" >&2
  fi
done
check "drain cut: every cut stream ends with event: error overloaded_error 'server is shutting down' ($bad of $NCUT do not)" \
  test "$bad" = 0
check "drain cut: the uncommitted non-streaming call got 503 overloaded_error (got $(cat "$WD_TMP/cut-whole.json.code"))" \
  eval '[ "$(cat "$WD_TMP/cut-whole.json.code")" = 503 ] && A error "$WD_TMP/cut-whole.json" overloaded_error'
check "drain cut: the uncommitted stream got 503 overloaded_error (got $(cat "$WD_TMP/cut-early.sse.code"))" \
  eval '[ "$(cat "$WD_TMP/cut-early.sse.code")" = 503 ] && A error "$WD_TMP/cut-early.sse" overloaded_error'
NALL=$((NCUT + 2))
n=$(grep '"msg":"access"' "$WARDEN_LOG" | grep -c '"path":"/anthropic/v1/messages"' || true)
check "drain cut: one access line per call ($n, want $NALL)" test "$n" = "$NALL"
n=$(grep '"msg":"access"' "$WARDEN_LOG" | grep -c '"error":"overloaded"' || true)
check "drain cut: each access line says overloaded ($n, want $NALL)" test "$n" = "$NALL"
q() { wd_psql postgres -At -c "$1"; }
n=$(q "SELECT count(*) FROM audit.records WHERE kind='call'")
check "drain cut: one audit call record per call ($n, want $NALL)" test "$n" = "$NALL"
n=$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND event IN ('failed','cut') AND error_class='overloaded'")
check "drain cut: every call record is failed with error_class overloaded ($n, want $NALL)" test "$n" = "$NALL"
check "drain cut: no record was left undurable" eval '! grep -q "not durable" "$WARDEN_LOG"'
check "drain cut: no sanitizer report" no_sanitizer_report "$WARDEN_LOG"
wd_pg_stop
PG_PID=
curl -sS --max-time 5 -o /dev/null -X POST "$FAKE_URL/_fake/reset"

# ======== TLS, HTTP/2 through ALPN
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$WD_TMP/key.pem" -out "$WD_TMP/cert.pem" 2>/dev/null
TLS_PORT=$(wd_free_port)
CFG=$(wd_config "$TLS_PORT" "$FAKE_URL" "tls: {cert: $WD_TMP/cert.pem, key: $WD_TMP/key.pem}")
# wd_start_warden waits on http://; this one waits on https://
WARDEN_LOG="$WD_TMP/warden.tls.log"
GEMINI_API_KEY="${GEMINI_API_KEY-test-gemini-key}" "$WARDEN_BIN" serve --config "$CFG" >"$WARDEN_LOG.out" 2>"$WARDEN_LOG" &
WARDEN_PID=$!
WD_PIDS+=("$WARDEN_PID")
WARDEN_URL="https://127.0.0.1:$TLS_PORT"
CURL_TLS=(--cacert "$WD_TMP/cert.pem")
tls_up() { curl -s -o /dev/null --max-time 1 "${CURL_TLS[@]}" "$WARDEN_URL/healthz"; }
if check "TLS: Warden answers on https://" wait_for 10 tls_up; then
  r=$(curl -sS -o /dev/null -w '%{http_code} %{http_version}' --max-time 5 "${CURL_TLS[@]}" --http2 "$WARDEN_URL/healthz") || true
  check "TLS: /healthz negotiates HTTP/2 (got $r)" test "$r" = "200 2"
  post "$WD_TMP/stream.json" --http2
  check "TLS h2: streaming messages is 200 over HTTP/2 (got $CODE $VER)" test "$CODE $VER" = "200 2"
  check "TLS h2: the stream ends with message_stop" A sse "$OUT" --complete --stop-reason end_turn
  post "$WD_TMP/stream.json" --http1.1
  check "TLS http/1.1: streaming messages works (got $CODE $VER)" \
    eval '[ "$CODE $VER" = "200 1.1" ] && A sse "$OUT" --complete'
  c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$TLS_PORT/healthz") || true
  check "TLS: a plaintext request to the TLS port is not served (got $c)" test "$c" != 200
  check "TLS: untrusted certificate is refused by curl without --cacert" \
    eval '! curl -s -o /dev/null --max-time 3 "$WARDEN_URL/healthz"'
  check "TLS: Warden still healthy" healthy
fi
wd_stop_warden
CURL_TLS=()

# ======== CLI
cat >"$WD_TMP/bad.yaml" <<'YAML'
listen: 127.0.0.1:8080
providers:
  gemini:
    type: gemini
    keys:
      - secret: env://GEMINI_API_KEY
    bse_url: http://127.0.0.1:9
YAML
rc=0
timeout 10 "$WARDEN_BIN" config check "$WD_TMP/bad.yaml" >"$OUT" 2>&1 || rc=$?
cat "$OUT" >>"$WD_TMP/cli.all"
check "config check on an unknown key: exit 1 (got $rc)" test "$rc" = 1
check "config check names the key path and its line" grep -qF 'providers.gemini.bse_url (line 7)' "$OUT"
rc=0
timeout 10 "$WARDEN_BIN" config check "$CFG" >"$OUT" 2>&1 || rc=$?
cat "$OUT" >>"$WD_TMP/cli.all"
check "config check on a good file: exit 0 (got $rc)" test "$rc" = 0
rc=0
timeout 10 "$WARDEN_BIN" serve --config "$WD_TMP/bad.yaml" >"$OUT" 2>&1 || rc=$?
cat "$OUT" >>"$WD_TMP/cli.all"
check "serve with a broken config: refuses to start, exit 1 (got $rc)" test "$rc" = 1
check "serve with a broken config: names the key" grep -qF 'providers.gemini.bse_url' "$OUT"
rc=0
timeout 10 "$WARDEN_BIN" version >"$OUT" 2>&1 || rc=$?
cat "$OUT" >>"$WD_TMP/cli.all"
check "warden version: exit 0 and prints a version (got $rc: $(head -c 80 "$OUT"))" \
  eval '[ "$rc" = 0 ] && grep -qE "^warden [0-9]" "$OUT"'
rc=0
timeout 10 "$WARDEN_BIN" --help >"$OUT" 2>&1 || rc=$?
cat "$OUT" >>"$WD_TMP/cli.all"
check "warden --help: exit 0 and prints usage (got $rc)" eval '[ "$rc" = 0 ] && grep -q "usage" "$OUT"'
check "CLI runs left no sanitizer report" no_sanitizer_report "$WD_TMP/cli.all"

wd_finish
