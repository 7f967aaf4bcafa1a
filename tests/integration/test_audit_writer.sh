# The audit writer against a real PostgreSQL 15: records of each call, content digests that match what
# was sent, no secret anywhere, 2 Warden processes x 20,000 calls with chains that verify, PostgreSQL
# stopped mid-load (fail_open and fail_closed), answers held until their records are durable, and Warden killed
# with SIGKILL (spool replayed, every answered call's record kept).
source "$(dirname "$0")/../lib.sh" "$1"
source "$WD_ROOT/tests/pg.sh"

LOAD_CALLS="${WD_AUDIT_LOAD_CALLS:-10000}"   # per process
export WARDEN_DEV_KEY="sk-wd-planted-devkey-7f3a9c1e"
export GEMINI_API_KEY="AIza-planted-gemini-5b8d2e40"
DB_PASSWORD="pw-planted-db-91c2"
PROMPT="planted-prompt-text-4411"

wd_pg_start
wd_pg_setup_db
check "warden db migrate applies the schema" "$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL"
wd_pg_grant_roles
# trust auth ignores the password; it is here to prove it never shows up anywhere
DB_URL="postgresql://warden:$DB_PASSWORD@127.0.0.1:$PG_PORT/warden"
KEY="$WD_TMP/audit-ed25519.pem"
openssl genpkey -algorithm ed25519 -out "$KEY" 2>/dev/null
"$WARDEN_BIN" audit pubkey --key "file://$KEY" >"$WD_TMP/audit-pub.pem"
EXPORT="$WD_TMP/checkpoints.jsonl"
SPOOL="$WD_TMP/spool"
wd_start_fake --key "$GEMINI_API_KEY"

q() { wd_psql postgres -At -c "$1"; }

# audit_config MODE [extra audit lines] -> config path on a fresh port
audit_config() {
  local mode="$1" extra="${2:+
$2}" port
  port=$(wd_free_port)
  wd_config "$port" "$FAKE_URL" "limits:
  drain_timeout: 5s
audit:
  database: $DB_URL
  mode: $mode
  content: ${CONTENT:-hash}$extra
  spool: $SPOOL
  checkpoints:
    every_records: 1000
    every_seconds: 1
    signing_key: file://$KEY
    export: $EXPORT
$(wd_metrics_yaml)"
}

verify_all() {
  "$WARDEN_BIN" audit verify --db "$WD_DB_AUDITOR_URL" --checkpoints "$EXPORT" --pubkey "$WD_TMP/audit-pub.pem" \
    >"$WD_TMP/verify.out" 2>&1 || { tail -20 "$WD_TMP/verify.out" >&2; return 1; }
}

# Every chain is gap-free from 1 (also checked by verify; this names the chain when it is not).
no_gaps() {
  local bad
  bad=$(q "SELECT chain_id FROM audit.records GROUP BY chain_id HAVING count(*) <> max(seq) OR min(seq) <> 1")
  [ -z "$bad" ] || { echo "chains with gaps: $bad" >&2; return 1; }
}

BODY="$WD_TMP/body.json"
printf '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"%s"}]}' "$PROMPT" >"$BODY"
SBODY="$WD_TMP/sbody.json"
printf '{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"%s"}]}' "$PROMPT" >"$SBODY"
# the user agent carries what COPY text must escape (a backslash, a tab) and UTF-8: stored exactly as sent
UA=$'audit-test/1.0 (\xc3\xbcn\xc3\xafcode) C:\\dir\t"q"'
post() { # post BODYFILE OUTFILE [key] -> status
  curl -s -o "$2" -w '%{http_code}' "$WARDEN_URL/anthropic/v1/messages" -H "x-api-key: ${3:-$WARDEN_DEV_KEY}" \
    -H 'content-type: application/json' -H "user-agent: $UA" --data-binary @"$1"
}

# ---- 1. the records of one call, digests, secrets -------------------------------------------------
CFG=$(audit_config fail_open)
wd_start_warden "$CFG"
TP="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
s1=$(post "$BODY" "$WD_TMP/r1.json")
s2=$(curl -s -o "$WD_TMP/r2.sse" -w '%{http_code}' "$WARDEN_URL/anthropic/v1/messages" -H "x-api-key: $WARDEN_DEV_KEY" \
  -H 'content-type: application/json' -H "user-agent: $UA" -H "traceparent: $TP" --data-binary @"$SBODY")
s3=$(post "$BODY" "$WD_TMP/r3.json" "sk-wrong-key")
check "calls answered 200, 200, 401" [ "$s1 $s2 $s3" = "200 200 401" ]
wd_stop_warden
check "two call records, both completed" [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND event='completed'")" = 2 ]
check "each call record counts its provider attempts (detail upstream_attempts 1)" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND detail = '{\"upstream_attempts\":1}'")" = 2 ]
check "auth records: two successes and one failure with its reason class" \
  [ "$(q "SELECT string_agg(event || ':' || coalesce(reason,'-'), ',' ORDER BY event) FROM audit.records WHERE kind='auth'")" = "failure:invalid_key,success:-,success:-" ]
check "an authz allow record per admitted call, naming the rule" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='authz' AND decision='allow' AND rule IS NOT NULL")" = 2 ]
check "request_sha256 is the digest of the body sent" \
  [ "$(q "SELECT DISTINCT request_sha256 FROM audit.records WHERE kind='call' AND model_requested='claude-sonnet-4-5'")" = "$(sha256sum <"$BODY" | cut -d' ' -f1)" ]
check "response_sha256 is the digest of the JSON response received" \
  [ "$(q "SELECT response_sha256 FROM audit.records WHERE kind='call' AND model_requested='claude-sonnet-4-5'")" = "$(sha256sum <"$WD_TMP/r1.json" | cut -d' ' -f1)" ]
check "response_sha256 of a stream is the digest of the events as sent" \
  [ "$(q "SELECT response_sha256 FROM audit.records WHERE kind='call' AND model_requested='claude-haiku-4-5'")" = "$(sha256sum <"$WD_TMP/r2.sse" | cut -d' ' -f1)" ]
check "the caller's traceparent gives the trace id" \
  [ "$(q "SELECT trace_id FROM audit.records WHERE kind='call' AND model_requested='claude-haiku-4-5'")" = "4bf92f3577b34da6a3ce929d0e0e4736" ]
check "call records carry principal, client, route, models, provider, status, stop reason, tokens, latency" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND subject='dev' AND key_name='dev' AND auth_method='api_key'
          AND client_addr='127.0.0.1' AND user_agent LIKE 'audit-test/1.0%' AND api='anthropic' AND route='/v1/messages'
          AND model_resolved LIKE 'gemini-2.5-%' AND provider='gemini' AND upstream_status=200 AND stop_reason='end_turn'
          AND input_tokens > 0 AND output_tokens > 0 AND ttfb_us > 0 AND total_us >= ttfb_us")" = 2 ]
check "the user agent is stored byte for byte (backslash, tab, quote, UTF-8)" \
  [ "$(q "SELECT DISTINCT encode(convert_to(user_agent, 'UTF8'), 'hex') FROM audit.records WHERE kind='call'")" = "$(printf '%s' "$UA" | od -An -tx1 | tr -d ' \n')" ]
check "writer start, config load and writer stop are recorded" \
  [ "$(q "SELECT count(DISTINCT event) FROM audit.records WHERE event IN ('writer_start','writer_stop') OR kind='config'")" = 3 ]
check "checkpoints were exported and stored" [ "$(q "SELECT count(*) FROM audit.checkpoints")" -ge 2 -a "$(wc -l <"$EXPORT")" -ge 2 ]
check "chains verify" verify_all
# secrets and prompt text: nowhere in the rows, the logs or the export
wd_pg_as "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d warden --data-only -n audit >"$WD_TMP/dump.sql"
KEYBODY=$(sed -n 2p "$KEY")
leaks=""
for s in "$WARDEN_DEV_KEY" "$GEMINI_API_KEY" "$DB_PASSWORD" "$PROMPT" "sk-wrong-key" "$KEYBODY"; do
  for f in "$WD_TMP/dump.sql" "$WARDEN_LOG" "$EXPORT" "$WD_TMP"/warden.*.log; do
    grep -qF -- "$s" "$f" && leaks="$leaks ${s:0:12}..@$(basename "$f")"
  done
done
check "no secret and no prompt text in stored rows, logs or export (content: hash)${leaks}" [ -z "$leaks" ]

# content: full keeps the bodies (a documented privacy decision) and verify checks them against the digests
CONTENT=full
CFG=$(audit_config fail_open)
CONTENT=hash
wd_start_warden "$CFG"
post "$BODY" "$WD_TMP/r4.json" >/dev/null
wd_stop_warden
check "content: full stores the request body" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND convert_from(request_body,'UTF8') LIKE '%$PROMPT%'")" = 1 ]
check "content: full body digests verify" verify_all

# ---- 1b. the embedded default config (make run) keeps a trail when WARDEN_AUDIT_DATABASE is set --------
PORT=$(wd_free_port)
STATE="$WD_TMP/state"
WARDEN_AUDIT_DATABASE="$DB_URL" WARDEN_AUDIT_SIGNING_KEY="$(cat "$KEY")" WARDEN_STATE_DIR="$STATE" \
  WARDEN_API_KEYS="$WARDEN_DEV_KEY" "$WARDEN_BIN" serve --listen "127.0.0.1:$PORT" >"$WD_TMP/default.out" 2>"$WD_TMP/default.log" &
DPID=$!
WD_PIDS+=("$DPID")
wd_wait_http "http://127.0.0.1:$PORT/healthz"
# no provider call (the default provider is the real Gemini API): a refused key is a record too
curl -s -o /dev/null "http://127.0.0.1:$PORT/anthropic/v1/messages" -H 'x-api-key: nope' -d '{}'
wd_stop_warden "$DPID" "$WD_TMP/default.log"
check "default config: the trail has this run's records" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='auth' AND reason='invalid_key'")" = 2 ]
check "default config: checkpoints exported under WARDEN_STATE_DIR" [ -s "$STATE/checkpoints.jsonl" ]
check "default config: audit verify (README quick start)" \
  "$WARDEN_BIN" audit verify --db "$WD_DB_AUDITOR_URL" --checkpoints "$STATE/checkpoints.jsonl" --pubkey "$WD_TMP/audit-pub.pem"

# ---- 2. load: 2 processes x concurrent clients ----------------------------------------------------
before=$(q "SELECT count(*) FROM audit.records WHERE kind='call'")
CFG_A=$(audit_config fail_open); CFG_B=$(audit_config fail_open)
wd_start_warden "$CFG_A"; PID_A=$WARDEN_PID; URL_A=$WARDEN_URL; LOG_A=$WARDEN_LOG
wd_start_warden "$CFG_B"; PID_B=$WARDEN_PID; URL_B=$WARDEN_URL; LOG_B=$WARDEN_LOG
load() { # load URL N CONC OUT
  timeout 300 h2load -n "$2" -c "$3" -m 1 --h1 -d "$BODY" -H 'content-type: application/json' \
    -H "x-api-key: $WARDEN_DEV_KEY" "$1/anthropic/v1/messages" >"$4" 2>&1
}
load "$URL_A" "$LOAD_CALLS" 16 "$WD_TMP/load_a.out" & LA=$!
load "$URL_B" "$LOAD_CALLS" 16 "$WD_TMP/load_b.out" & LB=$!
wait $LA; wait $LB
ok2xx() { sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$1"; }
check "load: every call answered 200 ($(ok2xx "$WD_TMP/load_a.out") + $(ok2xx "$WD_TMP/load_b.out"))" \
  [ "$(ok2xx "$WD_TMP/load_a.out")" = "$LOAD_CALLS" -a "$(ok2xx "$WD_TMP/load_b.out")" = "$LOAD_CALLS" ]
wd_stop_warden "$PID_A" "$LOG_A"
wd_stop_warden "$PID_B" "$LOG_B"
after=$(q "SELECT count(*) FROM audit.records WHERE kind='call'")
check "load: exactly one call record per call ($((after - before)) for $((2 * LOAD_CALLS)))" [ $((after - before)) = $((2 * LOAD_CALLS)) ]
check "load: chains from both processes are gap-free" no_gaps
check "load: every chain verifies" verify_all
# new records went by COPY (a line that did not convert would fall back to the insert and say so), and
# every call's request digest was computed before its call ended
check "load: no batch fell back from COPY, no request digest was lost" \
  bash -c '! grep -h -e "does not convert to a COPY row" -e "digest was computed" "$0" "$1"' "$LOG_A" "$LOG_B"

# ---- 3. fail_open: PostgreSQL stopped mid-load, then back ------------------------------------------
before=$(q "SELECT count(*) FROM audit.records WHERE kind='call'")
CFG=$(audit_config fail_open)
wd_start_warden "$CFG"
# Driven by events, not sleeps (the machine's speed varies several times over): PostgreSQL goes away once
# the load is under way, comes back once calls have gone to the spool, and the checks wait for the replay.
N=8000
load "$WARDEN_URL" "$N" 8 "$WD_TMP/load_c.out" & LC=$!
for i in $(seq 1 400); do
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call'")" -ge $((before + 100)) ] && break
  sleep 0.05
done
wd_pg_stop
spooled() { curl -s "$WARDEN_METRICS_URL/metrics" | sed -n 's/^warden_audit_records_spooled_total \([0-9]*\)$/\1/p'; }
for i in $(seq 1 200); do [ "$(spooled)" -ge 300 ] 2>/dev/null && break; sleep 0.05; done
sleep 0.3
wd_pg_launch
wait $LC
check "fail_open: no request failed while PostgreSQL was down ($(ok2xx "$WD_TMP/load_c.out")/$N)" [ "$(ok2xx "$WD_TMP/load_c.out")" = "$N" ]
check "fail_open: the spool was used and said so" grep -q 'writes records to the spool' "$WARDEN_LOG"
# the writer reconnects with a backoff of up to 2 s, then replays
for i in $(seq 1 300); do
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call'")" = $((before + N)) ] && grep -q 'replayed its spool' "$WARDEN_LOG" && break
  sleep 0.1
done
check "fail_open: every record present after the replay" [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call'")" = $((before + N)) ]
check "fail_open: the replay was logged" grep -q 'replayed its spool' "$WARDEN_LOG"
curl -s "$WARDEN_METRICS_URL/metrics" >"$WD_TMP/metrics.txt"
check "fail_open: the spool shows in /metrics" \
  [ "$(sed -n 's/^warden_audit_records_spooled_total \([0-9]*\)$/\1/p' "$WD_TMP/metrics.txt")" -gt 0 ]
check "fail_open: the spool is empty again in /metrics" grep -qx 'warden_audit_spool_bytes 0' "$WD_TMP/metrics.txt"
wd_stop_warden
check "fail_open: the trail records that the spool was used and replayed" \
  [ "$(q "SELECT count(DISTINCT event) FROM audit.records WHERE event IN ('spool_start','spool_replayed')")" = 2 ]
check "fail_open: chains gap-free after the replay" no_gaps
check "fail_open: chains verify after the replay" verify_all

# ---- 3b. fail_open: PostgreSQL up but slower than the records come: the queue spills to the spool ----
# Another session's lock stalls the writer's batch for 2 s while calls keep coming: the small queue fills
# behind it, goes to the spool instead of refusing records, and the spool is replayed once the batch is
# through. (With audit.durable_answers on, the default, answers wait for their records and a queue grows only
# by the calls in flight: the spill is for a writer that answers do not wait on.)
before=$(q "SELECT count(*) FROM audit.records WHERE kind='call'")
CFG=$(audit_config fail_open "  queue_records: 1024
  durable_answers: false")
wd_start_warden "$CFG"
# locks on a table: held (granted) or waited for (not granted)
locks() { q "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = '$1' AND l.mode = '$2' AND l.granted = $3"; }
wait_lock() { local i; for i in $(seq 1 100); do [ "$(locks "$@")" -ge 1 ] && return 0; sleep 0.05; done; return 1; }
wd_psql postgres -c "BEGIN" -c "LOCK TABLE audit.records IN SHARE MODE" -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null & LK=$!
check "queue full: another session holds a lock that stalls the writer" wait_lock records ShareLock true
N=2000
load "$WARDEN_URL" "$N" 8 "$WD_TMP/load_q.out"
wait $LK
check "queue full: every call answered 200 while the writer was stalled ($(ok2xx "$WD_TMP/load_q.out")/$N)" \
  [ "$(ok2xx "$WD_TMP/load_q.out")" = "$N" ]
for i in $(seq 1 300); do
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call'")" = $((before + N)) ] && grep -q 'replayed its spool' "$WARDEN_LOG" && break
  sleep 0.1
done
curl -s "$WARDEN_METRICS_URL/metrics" >"$WD_TMP/metrics_q.txt"
metric() { sed -n "s/^$1 \([0-9]*\)\$/\1/p" "$WD_TMP/metrics_q.txt"; }
check "queue full: the records went to the spool, saying why" grep -q 'writes records to the spool .*(queue_full)' "$WARDEN_LOG"
check "queue full: no record refused ($(metric warden_audit_records_refused_total) refused, $(metric warden_audit_records_spooled_total) spooled)" \
  [ "$(metric warden_audit_records_refused_total)" = 0 -a "$(metric warden_audit_records_spooled_total)" -gt 1024 ]
check "queue full: every call record in the database after the replay" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call'")" = $((before + N)) ]
check "queue full: the spool was replayed and emptied, the writer back on the database" \
  bash -c 'grep -q "replayed its spool" "$0" && grep -qx "warden_audit_spool_bytes 0" "$1"' "$WARDEN_LOG" "$WD_TMP/metrics_q.txt"
check "queue full: the trail says the spool was used because the queue was full" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE event = 'spool_start' AND detail = '{\"reason\":\"queue_full\"}'")" -ge 1 ]
check "queue full: every batch went with COPY, the spool's replay too ($(metric warden_audit_insert_batches_total) with the insert)" \
  [ "$(metric warden_audit_insert_batches_total)" = 0 ]
wd_stop_warden
check "queue full: chains gap-free" no_gaps
check "queue full: chains verify" verify_all

# ---- 3c/3d. spill races, made deterministic -------------------------------------------------------
# (audit.durable_answers off, as in 3b: answers that waited for their records would not fill the queue)
# tests/integration/fault_sync.c, preloaded into Warden, holds the spool's fdatasync while a gate file
# exists and fails one with EIO when a fail file exists. A psql session fed through a fifo holds a lock
# for exactly as long as the test says.
GATE="$WD_TMP/sync.gate"
FAILSYNC="$WD_TMP/sync.fail"
WD_WARDEN_ENV=(LD_PRELOAD="$(dirname "$WARDEN_BIN")/libfault_sync.so" WD_FAULT_SYNC_GATE="$GATE"
  WD_FAULT_SYNC_FAIL="$FAILSYNC" ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0")
lock_begin() { # lock_begin TABLE: held until lock_end
  rm -f "$WD_TMP/lock.fifo"; mkfifo "$WD_TMP/lock.fifo"
  wd_psql postgres <"$WD_TMP/lock.fifo" >/dev/null & LK=$!
  exec 7>"$WD_TMP/lock.fifo"
  echo "BEGIN; LOCK TABLE audit.$1 IN SHARE MODE;" >&7
  wait_lock "$1" ShareLock true
}
lock_end() { echo "COMMIT;" >&7; exec 7>&-; wait "$LK"; }
calls() { q "SELECT count(*) FROM audit.records WHERE kind='call'"; }
mq() { curl -s "$WARDEN_METRICS_URL/metrics" | sed -n "s/^$1 \\([0-9]*\\)\$/\\1/p"; }
wait_for() { local i; for i in $(seq 1 300); do "$@" && return 0; sleep 0.1; done; return 1; }
replayed() { [ "$(calls)" = "$1" ] && grep -q "replayed its spool" "$WARDEN_LOG"; } # all N calls in, spool replayed

# 3c. A checkpoint's insert waits on a lock while calls fill the queue and spill; then, with a spool write
# held in fdatasync, the checkpoint timer makes the next checkpoint, and only then is the lock released.
# The spill must leave the line of the checkpoint in flight to its insert: spooling it too made the
# insert's completion remove the next checkpoint's line (or part of it) from the lines still to send.
before=$(calls)
ck_db0=$(q "SELECT count(*) FROM audit.checkpoints")
ck_ex0=$(wc -l <"$EXPORT")
CFG=$(audit_config fail_open "  queue_records: 1024
  durable_answers: false")
sed -i "s/^workers: 2\$/workers: 1/" "$CFG" # one writer: every record and checkpoint goes through it
wd_start_warden "$CFG"
post "$BODY" /dev/null >/dev/null
lock_begin checkpoints
check "checkpoint in flight: Warden's checkpoint insert waits on the lock" wait_lock checkpoints RowExclusiveLock false
load "$WARDEN_URL" 400 8 "$WD_TMP/load_k.out"
check "checkpoint in flight: the 400 calls (1,200 records) spilled to the spool" wait_for [ "$(mq warden_audit_records_spooled_total)" -ge 1200 ]
touch "$GATE"
post "$BODY" /dev/null >/dev/null
sleep 1.5 # a spool write waits in fdatasync; the checkpoint timer (1 s) makes the next checkpoint
lock_end
sleep 0.3
rm -f "$GATE"
check "checkpoint in flight: every call record in the database after the replay" wait_for replayed $((before + 402))
wd_stop_warden
check "checkpoint in flight: no damaged spool line" bash -c '! grep -q "damaged line" "$0"' "$WARDEN_LOG"
ck_db=$(($(q "SELECT count(*) FROM audit.checkpoints") - ck_db0))
ck_ex=$(($(wc -l <"$EXPORT") - ck_ex0))
check "checkpoint in flight: every checkpoint exported is in the database ($ck_db stored, $ck_ex exported)" \
  [ "$ck_db" = "$ck_ex" -a "$ck_ex" -ge 2 ]
check "checkpoint in flight: chains gap-free" no_gaps
check "checkpoint in flight: chains verify" verify_all

# 3d. A spool write the replay has already sent with COPY fails its fdatasync: the records are spooled
# again, and that second copy must go with the idempotent insert (a COPY of them failed on the primary
# key, was retried, and failed again, for ever).
before=$(calls)
wd_start_warden "$CFG"
lock_begin records
load "$WARDEN_URL" 400 8 "$WD_TMP/load_e2.out"
# every record of the load is in the stalled batch or durable in the spool, and the writers are idle (the spooled
# count no longer moves): otherwise the next call's records could arrive while a writer's last spill write waits in
# its held fdatasync, and stay queued behind it until the gate opens (the check below then failed, now and then)
settled() {
  local a
  a=$(mq warden_audit_records_spooled_total)
  [ $((a + $(mq warden_audit_queue_depth))) -ge 1200 -a "$a" -ge 600 ] || return 1
  sleep 0.3
  [ "$(mq warden_audit_records_spooled_total)" = "$a" ]
}
check "fdatasync error: the queue spilled behind the stalled batch" wait_for settled
touch "$GATE"
post "$BODY" /dev/null >/dev/null
lock_end
check "fdatasync error: the replay sent the records whose fdatasync is still pending" wait_for [ "$(calls)" = $((before + 401)) ]
touch "$FAILSYNC"
rm -f "$GATE"
check "fdatasync error: the failure was logged" wait_for grep -q 'spool fdatasync failed' "$WARDEN_LOG"
post "$BODY" /dev/null >/dev/null
check "fdatasync error: every call record once, the writer back on the database" wait_for replayed $((before + 402))
check "fdatasync error: the records spooled twice went with the idempotent insert ($(mq warden_audit_insert_batches_total) batches)" \
  [ "$(mq warden_audit_insert_batches_total)" -ge 1 ]
wd_stop_warden
check "fdatasync error: no insert failed (no duplicate key)" bash -c '! grep -q "insert failed" "$0"' "$WARDEN_LOG"
check "fdatasync error: chains gap-free" no_gaps
check "fdatasync error: chains verify" verify_all
WD_WARDEN_ENV=()

# ---- 3e. durable answers: an answer's end waits for its records -------------------------------------
# audit.durable_answers (on by default): when a client has an answer in full, its records are already committed
# (or in the spool); a writer that cannot make them durable holds an answer at most durable_answers_timeout.
# (batch_wait 1s: a record nobody waited for would reach the database only after up to a second, so the checks
# below, which read the database at once, see the hold and not a fast writer)
CFG=$(audit_config fail_open "  durable_answers_timeout: 1s
  batch_wait: 1s")
wd_start_warden "$CFG"
trace_new() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
recs() { q "SELECT count(*) FROM audit.records WHERE trace_id = '$1' AND kind = '$2'"; } # read at once, no waiting
call_tp() { # call_tp BODYFILE TRACE [key] -> status
  curl -s -o /dev/null -w '%{http_code}' "$WARDEN_URL/anthropic/v1/messages" -H "x-api-key: ${3:-$WARDEN_DEV_KEY}" \
    -H 'content-type: application/json' -H "traceparent: 00-$2-00f067aa0ba902b7-01" --data-binary @"$1"
}
for kind in json stream refused; do
  n=0
  for i in 1 2 3 4 5 6 7 8; do
    t=$(trace_new)
    case $kind in
      json) [ "$(call_tp "$BODY" "$t")" = 200 ] && [ "$(recs "$t" call)" = 1 ] && [ "$(recs "$t" authz)" = 1 ] && n=$((n + 1)) ;;
      stream) [ "$(call_tp "$SBODY" "$t")" = 200 ] && [ "$(recs "$t" call)" = 1 ] && n=$((n + 1)) ;;
      refused) [ "$(call_tp "$BODY" "$t" sk-wrong-key)" = 401 ] && [ "$(recs "$t" auth)" = 1 ] && n=$((n + 1)) ;;
    esac
  done
  check "durable answers ($kind): when the client has the answer, its records are already in the database ($n of 8)" [ "$n" = 8 ]
done
check "durable answers: the answers were held (warden_audit_answers_held_total $(mq warden_audit_answers_held_total)), none went early" \
  [ "$(mq warden_audit_answers_held_total)" -ge 24 -a "$(mq warden_audit_answers_released_early_total)" = 0 ]
# A database that hangs without going away (another session's lock): the writer gives the batch up after half of
# durable_answers_timeout, as if the connection had gone, and the queue goes to the spool, where it is durable.
lock_begin records
t=$(trace_new)
t0=$(date +%s%N)
st=$(call_tp "$BODY" "$t")
ms=$((($(date +%s%N) - t0) / 1000000))
check "durable answers: a batch stalled by a lock is given up after half of durable_answers_timeout (0.5 s), and the answer goes once its records are in the spool: $st after $ms ms" \
  [ "$st" = 200 -a "$ms" -ge 400 -a "$ms" -lt 1000 ]
check "durable answers: ... not early ($(mq warden_audit_answers_released_early_total) early), the batch counted as stalled ($(mq warden_audit_batches_stalled_total))" \
  [ "$(mq warden_audit_answers_released_early_total)" = 0 -a "$(mq warden_audit_batches_stalled_total)" -ge 1 ]
check "durable answers: ... the log says why" grep -q 'a batch waited 500 ms for the database; given up' "$WARDEN_LOG"
# the lock still held: a writer that gave up reconnects and replays its spool, which waits on the lock; a replay is
# never given up (no answer waits on it: new records go to the spool meanwhile), and the writer's session has
# lock_timeout, so a statement given up ends on the server: one statement waiting per writer at most (2 workers;
# without lock_timeout and with replays given up too, 4 were seen waiting here)
sleep 2.5
waiting=$(locks records RowExclusiveLock false)
t2=$(trace_new)
t0=$(date +%s%N)
st2=$(call_tp "$BODY" "$t2")
ms2=$((($(date +%s%N) - t0) / 1000000))
check "durable answers: ... the lock still held, the next answer goes with its records durable ($st2 after $ms2 ms, $(mq warden_audit_answers_released_early_total) early), and nothing piles up on the lock ($waiting statements waiting)" \
  [ "$st2" = 200 -a "$ms2" -lt 900 -a "$(mq warden_audit_answers_released_early_total)" = 0 -a "$waiting" -le 2 ]
# SIGKILL while the lock still stalls the database: the answered call's records were durable in the spool
kill -KILL "$WARDEN_PID"; wait "$WARDEN_PID" 2>/dev/null || true
check "durable answers: ... SIGKILL during the stall: the spool holds the records" [ -n "$(find "$SPOOL" -name '*.spool' -size +0)" ]
lock_end
echo "# call records of the answered call in the database once the lock is gone, before the next start: $(recs "$t" call)"
wd_start_warden "$CFG"
stalled_once() { [ "$(recs "$t" call)" = 1 ] && [ "$(recs "$t" authz)" = 1 ] && [ "$(recs "$t2" call)" = 1 ]; }
check "durable answers: ... the next start replays the spool: both answered calls' records in the database, once" \
  wait_for stalled_once
wd_stop_warden
check "durable answers: chains gap-free after the stall and the replay" no_gaps
check "durable answers: chains verify after the stall and the replay" verify_all

# ---- 4. fail_closed: 503 while down, nothing admitted without its record ---------------------------
completed_before=$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND event='completed'")
OK200=0
CFG=$(audit_config fail_closed)
wd_start_warden "$CFG"
for i in $(seq 1 50); do [ "$(post "$BODY" /dev/null)" = 200 ] && { OK200=$((OK200 + 1)); break; }; sleep 0.1; done
up1=$(post "$BODY" /dev/null)
[ "$up1" = 200 ] && OK200=$((OK200 + 1))
# under concurrent load while PostgreSQL goes away and comes back: every admitted call has its record
# (PostgreSQL stops once the load is under way, whatever the machine's speed)
NF=4000
load "$WARDEN_URL" "$NF" 8 "$WD_TMP/load_f.out" & LF=$!
for i in $(seq 1 400); do
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND event='completed'")" -ge $((completed_before + 100)) ] && break
  sleep 0.05
done
wd_pg_stop
sleep 0.3
down=""
for i in 1 2 3 4 5; do down="$down$(post "$BODY" "$WD_TMP/closed.json") "; done
check "fail_closed: 200 while PostgreSQL is up" [ "$up1" = 200 ]
check "fail_closed: 503 in the Anthropic error shape while it is down ($down)" \
  bash -c '[ "$1" = "503 503 503 503 503 " ] && grep -q "\"type\":\"error\"" "$2"' _ "$down" "$WD_TMP/closed.json"
wd_pg_launch
wait $LF || true
back=""
for i in $(seq 1 100); do back=$(post "$BODY" /dev/null); [ "$back" = 200 ] && { OK200=$((OK200 + 1)); break; }; sleep 0.1; done
check "fail_closed: admitted again once it is back" [ "$back" = 200 ]
F2XX=$(ok2xx "$WD_TMP/load_f.out")
F5XX=$(sed -n 's/^status codes: [0-9]* 2xx, [0-9]* 3xx, [0-9]* 4xx, \([0-9]*\) 5xx.*/\1/p' "$WD_TMP/load_f.out")
# (every request answered: 200, or 503 on a connection that stays open for the next one)
check "fail_closed under load: calls admitted until PostgreSQL went away, then refused with 503 ($F2XX 2xx, ${F5XX:-0} 5xx of $NF)" \
  [ "${F2XX:-0}" -gt 0 -a "${F5XX:-0}" -gt 0 -a $((${F2XX:-0} + ${F5XX:-0})) = "$NF" ]
OK200=$((OK200 + ${F2XX:-0}))
wd_stop_warden
check "fail_closed: exactly one completed call record per 200 answered ($OK200)" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND event='completed'")" = $((completed_before + OK200)) ]
check "fail_closed: every completed call has a durable authz record for the same request" \
  [ "$(q "SELECT count(*) FROM audit.records c WHERE c.kind='call' AND c.event='completed' AND NOT EXISTS
         (SELECT 1 FROM audit.records a WHERE a.kind='authz' AND a.request_id=c.request_id AND a.ts <= c.ts)")" = 0 ]
check "fail_closed: the refused calls are recorded as failed (unavailable) once it is back" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND error_class='unavailable'")" -ge 5 ]
check "fail_closed: chains verify" verify_all

# ---- 5. SIGKILL: durable records survive; the spool is replayed by the next start --------------------
before=$(q "SELECT count(*) FROM audit.records WHERE kind='call'")
CFG=$(audit_config fail_open)
wd_start_warden "$CFG"
wd_pg_stop
load "$WARDEN_URL" 400 4 "$WD_TMP/load_d.out"
# no pause: each answer's end waited until its records were fdatasync'd to the spool (audit.durable_answers)
kill -KILL "$WARDEN_PID"; wait "$WARDEN_PID" 2>/dev/null || true
check "SIGKILL: the spool holds the records" [ -n "$(find "$SPOOL" -name '*.spool' -size +0)" ]
wd_pg_launch
wd_start_warden "$CFG"
for i in $(seq 1 100); do
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call'")" = $((before + 400)) ] && break
  sleep 0.2
done
check "SIGKILL: the next start replays the dead writer's spool (400 calls)" \
  [ "$(q "SELECT count(*) FROM audit.records WHERE kind='call'")" = $((before + 400)) ]
check "SIGKILL: the replayed spool file is removed" grep -q 'replayed and removed' "$WARDEN_LOG"
# and with the database up: SIGKILL mid-load loses no record of an answered call, and never the chain
before=$(q "SELECT count(*) FROM audit.records WHERE kind='call'")
load "$WARDEN_URL" 2000 8 "$WD_TMP/load_e.out" & LE=$!
sleep 0.5
kill -KILL "$WARDEN_PID"; wait "$WARDEN_PID" 2>/dev/null || true
wait $LE || true
A=$(ok2xx "$WD_TMP/load_e.out")
C=$(($(q "SELECT count(*) FROM audit.records WHERE kind='call'") - before))
check "SIGKILL mid-load: every call answered 200 has its call record ($A answered before the kill, $C call records)" \
  [ "${A:-0}" -gt 0 -a "$C" -ge "${A:-0}" ]
check "SIGKILL mid-load: chains still gap-free" no_gaps
check "SIGKILL mid-load: chains still verify" verify_all

wd_finish
