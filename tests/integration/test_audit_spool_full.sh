# A full spool disk while PostgreSQL is down (issue 14, item 10): the records Warden cannot keep are
# counted, and the count with its time span reaches the chain as soon as it can be written; `audit verify`
# reports the loss (exit 3); the writer recovers by itself when the database or the space comes back; the
# spool failure is logged at a bounded rate with no busy loop; fail_closed answers 503 when the record has
# nowhere to go. tests/integration/fault_sync.c, preloaded into Warden, makes spool writes short (or
# ENOSPC) while a flag file exists, as a full filesystem does, with no root-only mount.
source "$(dirname "$0")/../lib.sh" "$1"
source "$WD_ROOT/tests/pg.sh"

export WARDEN_DEV_KEY="sk-wd-planted-devkey-2b7e41c9"
export GEMINI_API_KEY="AIza-planted-gemini-8c1d3f77"

wd_pg_start
wd_pg_setup_db
check "warden db migrate applies the schema" "$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL"
wd_pg_grant_roles
KEY="$WD_TMP/audit-ed25519.pem"
openssl genpkey -algorithm ed25519 -out "$KEY" 2>/dev/null
"$WARDEN_BIN" audit pubkey --key "file://$KEY" >"$WD_TMP/audit-pub.pem"
EXPORT="$WD_TMP/checkpoints.jsonl"
SPOOL="$WD_TMP/spool"
FULL="$WD_TMP/spool.full"
wd_start_fake --key "$GEMINI_API_KEY"

q() { wd_psql postgres -At -c "$1"; }
audit_config() { # audit_config MODE -> config path on a fresh port: one worker (one chain), queue_records 64
  local port f
  port=$(wd_free_port)
  f=$(wd_config "$port" "$FAKE_URL" "limits:
  drain_timeout: 5s
audit:
  database: $WD_DB_URL
  mode: $1
  spool: $SPOOL
  queue_records: 64
  checkpoints:
    every_records: 1000
    every_seconds: 1
    signing_key: file://$KEY
    export: $EXPORT
$(wd_metrics_yaml)")
  sed -i 's/^workers: 2$/workers: 1/' "$f"
  echo "$f"
}
BODY="$WD_TMP/body.json"
printf '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hello"}]}' >"$BODY"
post() { curl -s --max-time 20 -o "${1:-/dev/null}" -w '%{http_code}' "$WARDEN_URL/anthropic/v1/messages" -H "x-api-key: $WARDEN_DEV_KEY" \
  -H 'content-type: application/json' --data-binary @"$BODY"; }
load() { # load N CONC OUT
  timeout 120 h2load -n "$1" -c "$2" -m 1 --h1 -d "$BODY" -H 'content-type: application/json' \
    -H "x-api-key: $WARDEN_DEV_KEY" "$WARDEN_URL/anthropic/v1/messages" >"$3" 2>&1
}
ok2xx() { sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$1"; }
mq() { curl -s "$WARDEN_METRICS_URL/metrics" | sed -n "s/^$1 \\([0-9]*\\)\$/\\1/p"; }
# wait_for CMD...: runs CMD again every 0.1 s until it succeeds, at most ~30 s (CMD is a function or a
# command, so that what it reads is read again each time)
wait_for() { local i; for i in $(seq 1 300); do "$@" && return 0; sleep 0.1; done; return 1; }
count_is() { [ "$(q "SELECT count(*) FROM audit.records WHERE $1")" -ge "$2" ]; } # count_is WHERE N: at least N
post_ok() { [ "$(post)" = 200 ]; }
now_ts() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$WARDEN_PID/stat"; }
fail_lines() { grep -c 'spool write failed' "$WARDEN_LOG" || true; }
# the records of the calls (auth, authz, call) in the database, and the records the trail says it lost
kept() { q "SELECT count(*) FROM audit.records WHERE chain_id = '$CHAIN' AND kind IN ('auth','authz','call')"; }
lost() { q "SELECT coalesce(sum((detail::json->>'refused')::bigint), 0) FROM audit.records
            WHERE chain_id = '$CHAIN' AND event = 'records_refused'"; }
# every call's three records are in the trail, or counted as lost in it: CALLS calls, 3 records each
accounted() { [ "$(mq warden_audit_queue_depth)" = 0 ] && [ $(($(kept) + $(lost))) = $((3 * CALLS)) ]; }
VERIFY_RC=0
verify() {
  VERIFY_RC=0
  "$WARDEN_BIN" audit verify --db "$WD_DB_AUDITOR_URL" --checkpoints "$EXPORT" --pubkey "$WD_TMP/audit-pub.pem" "$@" \
    >"$WD_TMP/verify.out" 2>&1 || VERIFY_RC=$?
}

WD_WARDEN_ENV=(LD_PRELOAD="$(dirname "$WARDEN_BIN")/libfault_sync.so" WD_FAULT_SPOOL_FULL="$FULL"
  ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0")

# ---- 1. PostgreSQL down and the spool full: records lost, counted; bounded log; no busy loop --------
CFG=$(audit_config fail_open)
wd_start_warden "$CFG"
CALLS=0
check "a call before the outage: 200" [ "$(post)" = 200 ]
CALLS=$((CALLS + 1))
check "its records reach the database" wait_for count_is "kind = 'call'" 1
CHAIN=$(q "SELECT chain_id FROM audit.records WHERE kind = 'call'")
wd_pg_stop
printf short >"$FULL"
T_DOWN=$(now_ts)
S_DOWN=$SECONDS
S_START=$SECONDS
load 300 4 "$WD_TMP/load1.out"
CALLS=$((CALLS + 300))
check "fail_open: every call answered 200 with neither the database nor the spool ($(ok2xx "$WD_TMP/load1.out")/300)" \
  [ "$(ok2xx "$WD_TMP/load1.out")" = 300 ]
check "the spool failure was logged" wait_for grep -q 'spool write failed: short write' "$WARDEN_LOG"
check "records were refused (queue full, twice queue_records): $(mq warden_audit_records_refused_total)" \
  [ "$(mq warden_audit_records_refused_total)" -gt 500 ]
# nothing changes for 3 s: the writer waits on timers, it does not spin on the failing spool
c0=$(cpu_ticks); sleep 3; c1=$(cpu_ticks)
TCK=$(getconf CLK_TCK)
check "no busy loop: $((c1 - c0)) ticks of CPU in 3 s of outage (at most 0.6 s)" [ $((c1 - c0)) -le $((TCK * 6 / 10)) ]
ELAPSED=$((SECONDS - S_DOWN))
n=$(fail_lines)
check "the spool failure is logged at a bounded rate: $n lines in ${ELAPSED} s (at most one per 10 s, plus one)" \
  [ "$n" -ge 1 -a "$n" -le $((ELAPSED / 10 + 2)) ]

# ---- 2. PostgreSQL back, the spool still full: the writer recovers by itself; the loss reaches the chain -
T_UP=$(now_ts)
wd_pg_launch
check "database back, spool still full: the writer takes the queue to the database, no restart" \
  wait_for bash -c '[ "$(curl -s "$0/metrics" | sed -n "s/^warden_audit_queue_depth \([0-9]*\)$/\1/p")" = 0 ]' "$WARDEN_METRICS_URL"
check "the trail says records were lost (system/records_refused), without waiting for another call" \
  wait_for count_is "chain_id = '$CHAIN' AND event = 'records_refused'" 1
check "the same Warden process (no restart)" kill -0 "$WARDEN_PID"
for i in 1 2 3 4 5; do s=$(post); [ "$s" = 200 ] && CALLS=$((CALLS + 1)); done
check "new calls after the outage are written ($CALLS calls answered 200)" \
  wait_for count_is "chain_id = '$CHAIN' AND kind = 'call'" 6
check "every call's three records are in the trail or counted as lost in it (3 x $CALLS)" wait_for accounted
echo "# $(kept) records kept, $(lost) counted as lost, for $CALLS calls"
check "the loss's time span lies within the outage ($T_DOWN .. $T_UP)" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE chain_id = '$CHAIN' AND event = 'records_refused'
          AND (detail::json->>'first_ts')::timestamptz >= '$T_DOWN'::timestamptz
          AND (detail::json->>'last_ts')::timestamptz <= '$T_UP'::timestamptz
          AND (detail::json->>'first_ts') <= (detail::json->>'last_ts')")" -ge 1 ]
n=$(fail_lines)
ELAPSED=$((SECONDS - S_DOWN))
check "still a bounded log after the database came back: $n lines in ${ELAPSED} s" [ "$n" -le $((ELAPSED / 10 + 2)) ]
verify
check "audit verify reports the loss and exits 3 (rc $VERIFY_RC)" \
  bash -c '[ "$0" = 3 ] && grep -q "^LOST chain $1: $2 records lost between " "$3" && grep -q "^audit verify: RECORDS LOST: $2 records lost in 1 of " "$3"' \
  "$VERIFY_RC" "$CHAIN" "$(lost)" "$WD_TMP/verify.out"
check "audit verify: the chains themselves are intact (no TAMPERED line)" bash -c '! grep -q TAMPERED "$0"' "$WD_TMP/verify.out"
verify --accept-loss
check "audit verify --accept-loss: exit 0, the loss still named (rc $VERIFY_RC)" \
  bash -c '[ "$0" = 0 ] && grep -q "^LOST chain " "$1" && grep -q "accepted with --accept-loss" "$1"' "$VERIFY_RC" "$WD_TMP/verify.out"

# ---- 3. PostgreSQL down, the spool full (ENOSPC), then the space comes back: the spool takes the queue
# and the loss's count, and the replay brings both to the database once it is back -----------------------
lost_before=$(lost)
wd_pg_stop
printf enospc >"$FULL"
S_DOWN=$SECONDS
lines_before=$(grep -c 'spool write failed: no space left on device' "$WARDEN_LOG" || true)
load 300 4 "$WD_TMP/load2.out"
CALLS=$((CALLS + 300))
check "fail_open: every call answered 200 with a full disk ($(ok2xx "$WD_TMP/load2.out")/300)" [ "$(ok2xx "$WD_TMP/load2.out")" = 300 ]
check "ENOSPC was logged" wait_for bash -c '[ "$(grep -c "spool write failed: no space left on device" "$0")" -gt "$1" ]' \
  "$WARDEN_LOG" "$lines_before"
spooled0=$(mq warden_audit_records_spooled_total)
rm -f "$FULL"
check "space back: the writer logs that the spool works again" wait_for grep -q 'the spool is writable again' "$WARDEN_LOG"
check "space back: the spool holds the loss's count (records_refused), no restart" \
  wait_for bash -c 'grep -q "\"event\":\"records_refused\"" "$0"/*.spool' "$SPOOL"
check "space back: the queue went to the spool" \
  wait_for bash -c '[ "$(curl -s "$0/metrics" | sed -n "s/^warden_audit_queue_depth \([0-9]*\)$/\1/p")" = 0 ]' "$WARDEN_METRICS_URL"
check "space back: records are spooled again ($spooled0 -> $(mq warden_audit_records_spooled_total))" \
  [ "$(mq warden_audit_records_spooled_total)" -gt "$spooled0" ]
for i in 1 2 3; do s=$(post); [ "$s" = 200 ] && CALLS=$((CALLS + 1)); done
replays0=$(grep -c 'replayed its spool' "$WARDEN_LOG" || true)
wd_pg_launch
check "database back: the spool is replayed" \
  wait_for bash -c '[ "$(grep -c "replayed its spool" "$0")" -gt "$1" ]' "$WARDEN_LOG" "$replays0"
check "database back: every record in the trail or counted as lost in it (3 x $CALLS)" wait_for accounted
echo "# $(kept) records kept, $(lost) counted as lost, for $CALLS calls"
check "database back: the second loss reached the database too ($lost_before -> $(lost))" [ "$(lost)" -gt "$lost_before" ]
ELAPSED=$((SECONDS - S_START))
n=$(fail_lines)
check "the whole run logged the spool failure $n times in ${ELAPSED} s (at most one per 10 s, plus one)" \
  [ "$n" -le $((ELAPSED / 10 + 2)) ]
wd_stop_warden
verify
check "after the stop: audit verify exits 3 naming every lost record ($(lost))" \
  bash -c '[ "$0" = 3 ] && grep -q "^LOST chain $1: $2 records lost between " "$3"' "$VERIFY_RC" "$CHAIN" "$(lost)" "$WD_TMP/verify.out"
check "after the stop: no chain tampered" bash -c '! grep -q TAMPERED "$0"' "$WD_TMP/verify.out"
# the same from an export, with no database: the loss travels with the chain
"$WARDEN_BIN" audit export --db "$WD_DB_AUDITOR_URL" --chain "$CHAIN" --out "$WD_TMP/chain.jsonl" >/dev/null 2>&1
FRC=0
"$WARDEN_BIN" audit verify --file "$WD_TMP/chain.jsonl" --checkpoints "$EXPORT" --pubkey "$WD_TMP/audit-pub.pem" \
  >"$WD_TMP/verify_file.out" 2>&1 || FRC=$?
check "audit verify --file of the chain's export: the same loss, exit 3 (rc $FRC)" \
  bash -c '[ "$0" = 3 ] && grep -q "^LOST chain $1: $2 records lost between " "$3"' "$FRC" "$CHAIN" "$(lost)" "$WD_TMP/verify_file.out"
WD_WARDEN_ENV=()

# ---- 4. fail_closed: no database (and no spool in that mode): the call is refused -------------------------
CFG=$(audit_config fail_closed)
wd_start_warden "$CFG"
check "fail_closed: 200 while the database is up" wait_for post_ok
wd_pg_stop
down=""
for i in 1 2 3; do down="$down$(post "$WD_TMP/closed.json") "; done
check "fail_closed: 503 in the Anthropic error shape when the record has nowhere to go ($down)" \
  bash -c '[ "$1" = "503 503 503 " ] && grep -q "\"type\":\"error\"" "$2" && grep -q "audit trail is unavailable" "$2"' \
  _ "$down" "$WD_TMP/closed.json"
wd_pg_launch
check "fail_closed: admitted again once the database is back, no restart" wait_for post_ok
wd_stop_warden
CCHAIN=$(q "SELECT chain_id FROM audit.records WHERE event = 'writer_start' AND detail LIKE '%fail_closed%'")
check "fail_closed: the refused calls are in the trail as failed (unavailable)" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE chain_id = '$CCHAIN' AND kind = 'call' AND error_class = 'unavailable'")" -ge 3 ]
verify --chain "$CCHAIN"
check "fail_closed: a refused call is not a lost record: its chain verifies, exit 0 (rc $VERIFY_RC)" \
  bash -c '[ "$0" = 0 ] && ! grep -q "^LOST" "$1"' "$VERIFY_RC" "$WD_TMP/verify.out"

wd_finish
