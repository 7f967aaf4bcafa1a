#!/usr/bin/env bash
# Replicas as one gateway (issue 18): three Warden processes on one PostgreSQL (audit trail and governance), behind
# a real HAProxy (round robin, readiness on /readyz, retries to another replica on a refused connection), driven by
# bounded concurrent clients: every call answered, every replica serving, every answer with its audit record and
# every chain verifying; one team budget held exactly across the three; a rolling restart (SIGTERM one at a time)
# losing no request and no record; a SIGKILL losing nothing answered, in fail_closed and in fail_open (whose killed
# replica's spool is replayed by its restart): audit.durable_answers holds each answer's end until its records are
# durable. This is the Helm chart's behaviour (readiness, drain, PDB-style one-at-a-time
# rolls), tested without a cluster.
# Usage: bash tests/integration/test_replicas.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/pg.sh"
T_START=$(date +%s)
HAPROXY="${HAPROXY:-/usr/sbin/haproxy}"
LOAD="$WD_ROOT/tests/replicas/load.mjs"
ANS="$WD_ROOT/tests/replicas/answers.py"

wd_pg_start
wd_pg_setup_db
"$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL" >/dev/null
wd_pg_grant_roles
wd_psql postgres -c "GRANT warden_governance TO warden" >/dev/null
# a second audit writer login (same group role), so one replica's database access can be cut alone (point 5b)
wd_psql postgres -c "CREATE ROLE warden_spool LOGIN IN ROLE warden_audit_writer" >/dev/null
KEY="$WD_TMP/audit-ed25519.pem"
openssl genpkey -algorithm ed25519 -out "$KEY" 2>/dev/null
"$WARDEN_BIN" audit pubkey --key "file://$KEY" >"$WD_TMP/audit-pub.pem"
EXPORT="$WD_TMP/checkpoints.jsonl"
wd_start_fake

ADMIN_KEY="adm-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export WARDEN_ADMIN_KEY="$ADMIN_KEY"
WD_WARDEN_ENV=(WD_ADMIN="$ADMIN_KEY")

# replica_config I MODE [AUDIT_DB_URL] -> the config of replica I (its own port, metrics port and spool directory)
declare -a PORT MPORT CFG PID LOG MET
replica_config() {
  local i="$1" mode="$2" db="${3:-$WD_DB_URL}" f
  f=$(wd_config "${PORT[$i]}" "$FAKE_URL" "limits:
  drain_timeout: 5s
audit:
  database: $db
  mode: $mode
  spool: $WD_TMP/spool-$i
  batch_wait: 5ms
  checkpoints:
    every_records: 1000
    every_seconds: 1
    signing_key: file://$KEY
    export: $EXPORT
governance:
  database: $WD_DB_URL
  migrate: false
  sync_interval: 200ms
  lease: 0.1
  idle_return: 1s
  wait: 2s
telemetry:
  metrics:
    listen: 127.0.0.1:${MPORT[$i]}")
  sed -i "s|secret: env://WARDEN_DEV_KEY|secret: env://WARDEN_DEV_KEY\n    - name: admin\n      secret: env://WD_ADMIN|" "$f"
  echo "$f"
}
start_replica() { # start_replica I: (re)starts replica I on its config, same port and spool
  wd_start_warden "${CFG[$1]}"
  PID[$1]=$WARDEN_PID; LOG[$1]=$WARDEN_LOG; MET[$1]=$WARDEN_METRICS_URL
}
# one SIGTERM, as the kubelet sends (lib.sh's wd_stop_warden is not used: its SIGTERM would come on top of ours
# in the roll, and one that comes while the drained process exits ends it with 143)
stop_replica() { # stop_replica I: one SIGTERM, the exit status and the log checked
  local rc=0
  kill -TERM "${PID[$1]}"
  wait "${PID[$1]}" || rc=$?
  check "r$1 drained and exited 0 with no sanitizer report (exit $rc)" \
    bash -c "[ $rc = 0 ] && ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' '${LOG[$1]}'"
}
for i in 1 2 3; do
  PORT[$i]=$(wd_free_port); MPORT[$i]=$(wd_free_port)
  # fail_closed: a call is admitted only once its authz record is committed (docs/audit.md, Writer), so an
  # answered call always has a durable record, whatever happens to the process afterwards
  CFG[$i]=$(replica_config "$i" fail_closed)
  start_replica "$i"
done

# ---- the balancer
LB_PORT=$(wd_free_port); STATS_PORT=$(wd_free_port)
SERVERS=""
for i in 1 2 3; do SERVERS+="    server r$i 127.0.0.1:${PORT[$i]} check\n"; done
sed -e "s|@PORT@|$LB_PORT|" -e "s|@STATS_PORT@|$STATS_PORT|" -e "s|@SERVERS@|$SERVERS|" \
  "$WD_ROOT/tests/replicas/haproxy.cfg.in" >"$WD_TMP/haproxy.cfg"
check "haproxy accepts the config" "$HAPROXY" -c -q -f "$WD_TMP/haproxy.cfg"
"$HAPROXY" -db -f "$WD_TMP/haproxy.cfg" >"$WD_TMP/haproxy.log" 2>&1 &
HAP_PID=$!
WD_PIDS+=("$HAP_PID")
LB="http://127.0.0.1:$LB_PORT"
export WARDEN_URL="$LB"
# lb_state rN -> UP, DOWN, ... as HAProxy sees the replica (its stats CSV: pxname,svname,...; status is field 18)
lb_state() { curl -s --max-time 1 "http://127.0.0.1:$STATS_PORT/stats;csv" | awk -F, -v s="$1" '$1 == "wardens" && $2 == s { print $18 }'; }
# lb_wait rN STATE: until HAProxy's view of the replica is STATE (10 s at most); echoes the milliseconds it took
lb_wait() {
  local t0 i
  t0=$(date +%s%N)
  for i in $(seq 1 400); do
    [ "$(lb_state "$1")" = "$2" ] && { echo $(( ($(date +%s%N) - t0) / 1000000 )); return 0; }
    sleep 0.025
  done
  echo "timeout"; return 1
}
UPS=""
for i in 1 2 3; do U=$(lb_wait "r$i" UP) || true; UPS+="r$i:$U "; done
check "haproxy sees the three replicas ready on /readyz ($UPS)" bash -c "! grep -q timeout <<<'$UPS'"

q() { wd_psql postgres -At -c "$1"; }
calls() { q "SELECT count(*) FROM audit.records WHERE kind = 'call'"; }
# records TRACES -> "answered with_call call_records with_authz": for the trace ids in the file, how many have a
# completed call record, how many call records they have in all, how many have a durable authz/allow record
records() {
  wd_psql postgres -At <<SQL
CREATE TEMP TABLE t (trace text PRIMARY KEY);
\copy t FROM '$1'
SELECT (SELECT count(*) FROM t) || ' ' ||
  (SELECT count(DISTINCT r.trace_id) FROM audit.records r JOIN t ON r.trace_id = t.trace WHERE r.kind = 'call' AND r.event = 'completed') || ' ' ||
  (SELECT count(*) FROM audit.records r JOIN t ON r.trace_id = t.trace WHERE r.kind = 'call') || ' ' ||
  (SELECT count(DISTINCT r.trace_id) FROM audit.records r JOIN t ON r.trace_id = t.trace WHERE r.kind = 'authz' AND r.decision = 'allow');
SQL
}
verify_all() {
  "$WARDEN_BIN" audit verify --db "$WD_DB_AUDITOR_URL" --checkpoints "$EXPORT" --pubkey "$WD_TMP/audit-pub.pem" \
    >"$WD_TMP/verify.out" 2>&1 || { tail -20 "$WD_TMP/verify.out" >&2; return 1; }
}
# wait_calls N: until the database holds N call records (5 s at most; the writer batches every few ms)
wait_calls() { local i; for i in $(seq 1 100); do [ "$(calls)" -ge "$1" ] && return 0; sleep 0.05; done; return 1; }
# load NAME KEY N SECONDS [STOP_FILE]: the load client through the balancer, 16 at a time
load() {
  node "$LOAD" --url "$LB" --key "$2" --n "$3" --c 16 --seconds "$4" --tag "$1" --out "$WD_TMP/$1.jsonl" \
    ${5:+--stop "$5"} >"$WD_TMP/$1.sum" 2>"$WD_TMP/$1.err"
}
matches() { [[ "$1" =~ $2 ]]; }
access_lines() { grep -c '"path":"/anthropic/v1/messages"' "$1" || true; }

# ======== 1. every call answered through the balancer, every replica serving
C0=$(calls)
declare -a ACC0
for i in 1 2 3; do ACC0[$i]=$(access_lines "${LOG[$i]}"); done
load steady devkey 450 40
read -r N N200 N429 NOTHER BY <<<"$(python3 "$ANS" "$WD_TMP/steady.jsonl" summary)"
check "450 calls, 16 at a time through HAProxy: every one answered 200 ($N200 of $N; $NOTHER other$(python3 "$ANS" "$WD_TMP/steady.jsonl" errors | sed 's/^./: &/'))" [ "$N200" = 450 ]
check "  round robin: each replica answered about a third ($BY)" \
  python3 -c 'import sys; v=[int(x.split("=")[1]) for x in sys.argv[1:]]; sys.exit(0 if len(v) == 3 and min(v) >= 100 else 1)' $BY
ACC=""
for i in 1 2 3; do ACC+="r$i=$(( $(access_lines "${LOG[$i]}") - ACC0[i] )) "; done
check "  and each replica's own access log agrees ($ACC)" \
  bash -c "for p in $ACC; do [ \"\${p#*=}\" = \"\$(grep -c '^' <(python3 '$ANS' '$WD_TMP/steady.jsonl' traces 200 \"\${p%=*}\"))\" ] || exit 1; done"

# ======== 2. one call record per answer, chains verifying
python3 "$ANS" "$WD_TMP/steady.jsonl" traces 200 >"$WD_TMP/steady.traces"
wait_calls $((C0 + N200)) || true
read -r A WITH_CALL CALL_RECS WITH_AUTHZ <<<"$(records "$WD_TMP/steady.traces")"
check "every answered call has its completed call record, matched by trace id ($WITH_CALL of $A)" [ "$WITH_CALL" = "$A" ]
check "  call records = answered calls: $CALL_RECS records for their trace ids, $(( $(calls) - C0 )) new in all, for $A answers" \
  [ "$CALL_RECS" = "$A" -a "$(( $(calls) - C0 ))" = "$A" ]
check "  each with its durable authz/allow record ($WITH_AUTHZ)" [ "$WITH_AUTHZ" = "$A" ]
NCHAINS=$(q "SELECT count(DISTINCT detail::json->>'pid') FROM audit.records WHERE event = 'writer_start'")
check "the three processes write their own chains ($NCHAINS writer pids)" [ "$NCHAINS" = 3 ]
check "every chain verifies (warden audit verify, signed checkpoints)" verify_all

# ======== 3. one team budget across the three replicas
# docs/governance.md, "Bound": "overshoot <= sum over calls in flight of max(0, actual_i - reserved_i), which is 0
# for requests"; and the database never grants more than the limit, sum(granted) <= limit.
"$WARDEN_BIN" teams create capped --org acme >/dev/null
CAP_KEY=$("$WARDEN_BIN" keys create capped-bot --team capped 2>/dev/null | head -1)
"$WARDEN_BIN" budgets create --scope team --subject capped --metric requests --period total --limit 60 --json >"$WD_TMP/bud.json"
BUD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WD_TMP/bud.json")
check "through the balancer: team capped, its virtual key and a total budget of 60 requests ($BUD)" matches "$BUD" '^bud_[0-9]+$' 
sleep 0.5 # every replica learns of the key and the budget by NOTIFY, at worst within a sync interval
load budget "$CAP_KEY" 180 40
read -r N N200 N429 NOTHER BY <<<"$(python3 "$ANS" "$WD_TMP/budget.jsonl" summary)"
check "180 calls on the 60-request team budget, 16 at a time on three replicas: exactly 60 admitted, 120 refused with 429 ($N200 admitted, $N429 refused, $NOTHER other)" \
  [ "$N200" = 60 -a "$N429" = 120 -a "$NOTHER" = 0 ]
check "  every replica admitted part of the budget ($BY)" \
  python3 -c 'import sys; v=[int(x.split("=")[1]) for x in sys.argv[1:]]; sys.exit(0 if len(v) == 3 and min(v) >= 1 else 1)' $BY
sleep 0.6 # a sync interval: the replicas flush their spend
SPENT=$(q "SELECT sum(spent) || ' ' || sum(granted) FROM gov.usage WHERE budget_id = ${BUD#bud_}")
check "  the database's spend is the admitted calls and no more was ever granted (spent granted: $SPENT)" \
  bash -c "read s g <<<'$SPENT'; [ \"\$s\" = 60 ] && [ \"\$g\" -le 60 ]"

# ======== 4a. the balancer's race at a SIGTERM, made deterministic
# Warden closes its listener at SIGTERM, and HAProxy may have opened a connection to it just before: that
# connection carries its request just after. HAProxy re-sends a request whose connection was refused or closed
# unanswered, never one that got an answer, so a 503 from the draining replica reaches the client; serving the
# request within limits.drain_timeout, or closing the connection unanswered, loses nothing. Slow calls keep
# r1's drain open meanwhile, as a load does (several, so that both of its workers have one: a worker with
# nothing in flight ends its drain at once, and its connections close unanswered).
curl -s -o /dev/null "$FAKE_URL/_fake/script" -H 'content-type: application/json' \
  -d '{"faults":[{"delay_headers_ms":1500},{"delay_headers_ms":1500},{"delay_headers_ms":1500},{"delay_headers_ms":1500},{"delay_headers_ms":1500},{"delay_headers_ms":1500}]}'
SLOW=()
for k in 1 2 3 4 5 6; do
  curl -s --max-time 10 -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:${PORT[1]}/anthropic/v1/messages" -H 'x-api-key: devkey' \
    -H 'content-type: application/json' -d '{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"slow"}]}' \
    >"$WD_TMP/slow.$k" & SLOW+=($!)
done
sleep 0.3
LATE=$(python3 "$WD_ROOT/tests/replicas/late_request.py" "${PORT[1]}" "${PID[1]}" devkey)
for p in "${SLOW[@]}"; do wait "$p" || true; done
RC=0; wait "${PID[1]}" || RC=$?
curl -s -o /dev/null -X POST "$FAKE_URL/_fake/reset"
SLOW_CODES=$(cat "$WD_TMP"/slow.? | tr '\n' ' ')
check "a request on a connection r1 accepted before its SIGTERM, sent during the drain: served or closed unanswered, not refused (got: $LATE)" \
  bash -c '[[ "$1" == closed || "$1" == "HTTP/1.1 200"* ]]' _ "$LATE"
check "  the calls in flight at the SIGTERM were answered ($SLOW_CODES) and r1 exited 0 ($RC)" \
  [ "$SLOW_CODES" = "200 200 200 200 200 200 " -a "$RC" = 0 ]
start_replica 1
lb_wait r1 UP >/dev/null || true

# ======== 4. a rolling restart under load: SIGTERM one replica at a time, restart it, wait for it, next one
# lines FILE: answers so far; grown FILE N: until FILE has N more answers than now (20 s at most)
lines() { cat "$1" 2>/dev/null | wc -l; }
grown() { local want=$(( $(lines "$1") + $2 )) i; for i in $(seq 1 400); do [ "$(lines "$1")" -ge "$want" ] && return 0; sleep 0.05; done; return 1; }
C0=$(calls)
STOPS0=$(q "SELECT count(*) FROM audit.records WHERE event = 'writer_stop'")
STOP="$WD_TMP/roll.stop"
load roll devkey 8000 60 "$STOP" & LOAD_PID=$!
grown "$WD_TMP/roll.jsonl" 60 || true
ROLL=""
for i in 1 2 3; do
  OLD_PID=${PID[$i]}
  # one SIGTERM (as stop_replica), with HAProxy's view of the replica measured while it drains
  kill -TERM "$OLD_PID"
  D=$(lb_wait "r$i" DOWN) || true
  RC=0; wait "$OLD_PID" || RC=$?
  check "  r$i drained and exited 0 with no sanitizer report (exit $RC)" \
    bash -c "[ $RC = 0 ] && ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' '${LOG[$i]}'"
  start_replica "$i"
  U=$(lb_wait "r$i" UP) || true
  ROLL+="r$i: out of the rotation ${D} ms after SIGTERM, back ${U} ms after /healthz; "
  grown "$WD_TMP/roll.jsonl" 60 || true # the restarted replica takes its share before the next one goes
done
touch "$STOP"
wait "$LOAD_PID" || true
read -r N N200 N429 NOTHER BY <<<"$(python3 "$ANS" "$WD_TMP/roll.jsonl" summary)"
check "rolling restart: $ROLL" python3 -c '
import re, sys
v = re.findall(r"out of the rotation (\S+) ms after SIGTERM, back (\S+) ms", sys.argv[1])
sys.exit(0 if len(v) == 3 and all(d.isdigit() and int(d) < 1000 and u.isdigit() for d, u in v) else 1)' "$ROLL"
# HAProxy's reason for taking each one out: Warden closes its listener at SIGTERM, so a check gets a refused
# connection (Layer4) rather than /readyz's 503 "draining", which only a connection opened before can see
WHY=$(sed -n 's/^Server wardens\/\(r[0-9]\) is DOWN, reason: \([^,]*\),.*/\1: \2/p' "$WD_TMP/haproxy.log" | sort -u | tr '\n' ';')
check "  HAProxy logged why each went out of the rotation ($WHY)" [ "$(grep -o 'r[0-9]:' <<<"$WHY" | sort -u | wc -l)" = 3 ]
check "  no request lost: every one of the $N calls during the roll answered 200 ($N200; $NOTHER other$(python3 "$ANS" "$WD_TMP/roll.jsonl" errors | sed 's/^./: &/'); $BY)" \
  [ "$N200" = "$N" -a "$N" -ge 240 ]
NEWACC=""
for i in 1 2 3; do NEWACC+="r$i=$(access_lines "${LOG[$i]}") "; done
check "  each restarted process served calls again ($NEWACC)" bash -c "! grep -qE '=0( |\$)' <<<'$NEWACC'"
python3 "$ANS" "$WD_TMP/roll.jsonl" traces 200 >"$WD_TMP/roll.traces"
wait_calls $((C0 + N200)) || true
read -r A WITH_CALL CALL_RECS WITH_AUTHZ <<<"$(records "$WD_TMP/roll.traces")"
check "  no audit record lost: each of the $A answers has its completed call record ($WITH_CALL), $CALL_RECS call records for them, $(( $(calls) - C0 )) new in all" \
  [ "$WITH_CALL" = "$A" -a "$CALL_RECS" = "$A" -a "$(( $(calls) - C0 ))" = "$A" ]
STOPS=$(( $(q "SELECT count(*) FROM audit.records WHERE event = 'writer_stop'") - STOPS0 ))
check "  each drained process closed its two chains with writer_stop ($STOPS)" [ "$STOPS" = 6 ]
check "  chains verify after the roll" verify_all

# ======== 5a. SIGKILL under load, audit fail_closed: nothing answered without a durable record
# fail_closed commits the call's authz/allow record before the provider is called; audit.durable_answers (on by
# default) holds the last bytes of each answer until its call record is committed too, so every answer a client
# received in full has both, whenever the process dies.
C0=$(calls)
STOP="$WD_TMP/kill.stop"
load kill devkey 8000 60 "$STOP" & LOAD_PID=$!
grown "$WD_TMP/kill.jsonl" 100 || true
KILLED=${PID[2]}
kill -KILL "$KILLED"; wait "$KILLED" 2>/dev/null || true
D=$(lb_wait r2 DOWN) || true
grown "$WD_TMP/kill.jsonl" 60 || true
start_replica 2
U=$(lb_wait r2 UP) || true
grown "$WD_TMP/kill.jsonl" 60 || true
touch "$STOP"
wait "$LOAD_PID" || true
read -r N N200 N429 NOTHER BY <<<"$(python3 "$ANS" "$WD_TMP/kill.jsonl" summary)"
check "SIGKILL of r2 under load: out of the rotation ${D} ms after, back ${U} ms after its restart; $N calls, $N200 answered 200, $NOTHER other ($BY)" \
  bash -c "[[ '$D' =~ ^[0-9]+$ ]] && [[ '$U' =~ ^[0-9]+$ ]] && [ '$N200' -ge 200 ]"
python3 "$ANS" "$WD_TMP/kill.jsonl" traces 200 >"$WD_TMP/kill.traces"
sleep 0.3
read -r A WITH_CALL CALL_RECS WITH_AUTHZ <<<"$(records "$WD_TMP/kill.traces")"
check "  every call answered 200 has its durable authz/allow record, by trace id ($WITH_AUTHZ of $A)" [ "$WITH_AUTHZ" = "$A" ]
# the killed process's chains, and the answers whose call record is missing
KCHAINS="(SELECT chain_id FROM audit.records WHERE event = 'writer_start' AND detail::json->>'pid' = '$KILLED')"
wd_psql postgres -At >"$WD_TMP/kill.missing" <<SQL
CREATE TEMP TABLE t (trace text PRIMARY KEY);
\copy t FROM '$WD_TMP/kill.traces'
SELECT count(*) || ' ' || count(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit.records a WHERE a.trace_id = t.trace
         AND a.kind = 'authz' AND a.chain_id IN $KCHAINS))
  FROM t WHERE NOT EXISTS (SELECT 1 FROM audit.records r WHERE r.trace_id = t.trace AND r.kind = 'call' AND r.event = 'completed');
SELECT count(DISTINCT a.trace_id) FROM audit.records a JOIN t ON a.trace_id = t.trace
  WHERE a.kind = 'authz' AND a.chain_id IN $KCHAINS
    AND EXISTS (SELECT 1 FROM audit.records c WHERE c.trace_id = a.trace_id AND c.kind = 'call' AND c.event = 'completed'
                AND c.chain_id NOT IN $KCHAINS);
SQL
read -r MISSING MISSING_KILLED <<<"$(sed -n 1p "$WD_TMP/kill.missing")"
RESENT=$(sed -n 2p "$WD_TMP/kill.missing")
# (a call the killed replica had admitted but not answered is re-sent by HAProxy on empty-response: RESENT counts
# those answered by another replica, whose provider then saw the call twice)
check "  every call answered 200 has its completed call record, the killed process's included ($MISSING without one; $RESENT admitted by it were re-sent to another replica)" \
  [ "$MISSING" = 0 ]
check "  chains verify (the killed process's chains end without writer_stop; verify accepts that)" verify_all

# ======== 5b. SIGKILL of a fail_open replica whose records are in its spool: the restart replays the spool
# fail_open is the mode that spools: with the database unreachable, records go to <spool>/<chain>.spool,
# fdatasync'd per batch, and each answer's end waits for its records to be there (audit.durable_answers). r3 comes back in fail_open on its own login
# (warden_spool), whose access is then cut, so only r3's writers lose the database.
stop_replica 3
CFG[3]=$(replica_config 3 fail_open "postgresql://warden_spool@127.0.0.1:$PG_PORT/warden")
start_replica 3
lb_wait r3 UP >/dev/null || true
C0=$(calls)
STOP="$WD_TMP/spool.stop"
load spool devkey 8000 60 "$STOP" & LOAD_PID=$!
grown "$WD_TMP/spool.jsonl" 60 || true
q "ALTER ROLE warden_spool NOLOGIN" >/dev/null
q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'warden_spool'" >/dev/null
spooled() { curl -s --max-time 1 "${MET[3]}/metrics" | sed -n 's/^warden_audit_records_spooled_total \([0-9]*\)$/\1/p'; }
for i in $(seq 1 200); do [ "$(spooled)" -ge 150 ] 2>/dev/null && break; sleep 0.05; done
SPOOLED=$(spooled)
KILLED=${PID[3]}
KILL_MS=$(date +%s%3N)
kill -KILL "$KILLED"; wait "$KILLED" 2>/dev/null || true
lb_wait r3 DOWN >/dev/null || true
ls "$WD_TMP/spool-3"/*.spool >"$WD_TMP/dead.spools" 2>/dev/null || true
# the call records the dead writers made durable in their spools, by trace id
python3 -c '
import json, sys
for f in open(sys.argv[1]).read().split():
    for line in open(f, errors="replace"):
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a torn last line was never acknowledged
        if r.get("kind") == "call":
            print(r["trace_id"])' "$WD_TMP/dead.spools" | sort -u >"$WD_TMP/spool.traces"
S=$(grep -c '^' "$WD_TMP/spool.traces" || true)
check "SIGKILL of fail_open r3 with the database cut off for it: its spool holds the call records of $S calls ($SPOOLED records spooled)" \
  [ "$S" -gt 0 ]
q "ALTER ROLE warden_spool LOGIN" >/dev/null
start_replica 3
lb_wait r3 UP >/dev/null || true
grown "$WD_TMP/spool.jsonl" 60 || true
touch "$STOP"
wait "$LOAD_PID" || true
check "  the restart on the same spool directory replayed the dead writers' spools and removed them" \
  bash -c "wd_r() { for i in \$(seq 1 100); do grep -q 'replayed and removed' '${LOG[3]}' && return 0; sleep 0.1; done; return 1; }; wd_r && for f in \$(cat '$WD_TMP/dead.spools'); do [ ! -e \"\$f\" ] || exit 1; done"
read -r A WITH_CALL CALL_RECS WITH_AUTHZ <<<"$(records "$WD_TMP/spool.traces")"
check "  every call record that was in the spool is in the database ($WITH_CALL of $A)" [ "$WITH_CALL" = "$A" ]
read -r N N200 N429 NOTHER BY <<<"$(python3 "$ANS" "$WD_TMP/spool.jsonl" summary)"
python3 "$ANS" "$WD_TMP/spool.jsonl" traces 200 >"$WD_TMP/spool.answered"
python3 "$ANS" "$WD_TMP/spool.jsonl" traces 200 r1 >"$WD_TMP/spool.others"
python3 "$ANS" "$WD_TMP/spool.jsonl" traces 200 r2 >>"$WD_TMP/spool.others"
wait_calls $((C0 + N200)) || true
read -r A WITH_CALL CALL_RECS WITH_AUTHZ <<<"$(records "$WD_TMP/spool.answered")"
read -r AO WITH_CALL_O _ _ <<<"$(records "$WD_TMP/spool.others")"
check "  the fail_closed replicas' answers all have their call record ($WITH_CALL_O of $AO)" [ "$WITH_CALL_O" = "$AO" ]
# every answer a client received in full has its call record: the killed process's too (from its spool)
wd_psql postgres -At >"$WD_TMP/spool.missing" <<SQL
CREATE TEMP TABLE t (trace text PRIMARY KEY);
\copy t FROM '$WD_TMP/spool.answered'
SELECT trace FROM t WHERE NOT EXISTS (SELECT 1 FROM audit.records r WHERE r.trace_id = t.trace AND r.kind = 'call' AND r.event = 'completed');
SQL
python3 "$ANS" "$WD_TMP/spool.jsonl" traces 200 r3 >"$WD_TMP/spool.r3"
read -r LOST LOST_OLD <<<"$(python3 "$ANS" "$WD_TMP/spool.jsonl" ended "$WD_TMP/spool.missing" "$KILL_MS")"
R3=$(grep -c '^' "$WD_TMP/spool.r3" || true)
check "  every one of the $A answers ($N calls, $NOTHER not 200, $BY; $R3 by the killed fail_open process) has its call record ($LOST without one)" \
  [ "$LOST" = 0 -a "$LOST_OLD" = 0 ]
check "  chains verify after the replay" verify_all

# ======== the end: every replica drains and exits 0; the balancer stops
for i in 1 2 3; do stop_replica "$i"; done
kill -TERM "$HAP_PID"; wait "$HAP_PID" 2>/dev/null || true
check "the whole trail verifies once every replica has stopped" verify_all
echo "# $(( $(date +%s) - T_START )) s in all"
wd_finish
