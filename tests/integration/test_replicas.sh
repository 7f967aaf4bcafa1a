#!/usr/bin/env bash
# Replicas as one gateway (issue 18): three Warden processes on one PostgreSQL (audit trail and governance), behind
# a real HAProxy (round robin, readiness on /readyz, retries to another replica on a refused connection), driven by
# bounded concurrent clients: every call answered, every replica serving, every answer with its audit record and
# every chain verifying; one team budget held exactly across the three; a rolling restart (SIGTERM one at a time)
# losing no request and no record; a SIGKILL losing nothing answered (fail_closed) and a killed fail_open replica's
# spool replayed by its restart. This is the Helm chart's behaviour (readiness, drain, PDB-style one-at-a-time
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
declare -a PORT CFG PID LOG MET
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
declare -a MPORT
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
for i in 1 2 3; do UPS+="r$i:$(lb_wait "r$i" UP) "; done
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
access_lines() { grep -c '"path":"/anthropic/v1/messages"' "$1" || true; }

# ======== 1. every call answered through the balancer, every replica serving
C0=$(calls)
declare -a ACC0
for i in 1 2 3; do ACC0[$i]=$(access_lines "${LOG[$i]}"); done
load steady devkey 450 40
read -r N N200 N429 NOTHER BY <<<"$(python3 "$ANS" "$WD_TMP/steady.jsonl" summary)"
check "450 calls, 16 at a time through HAProxy: every one answered 200 ($N200 of $N; $NOTHER other)" [ "$N200" = 450 ]
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

echo "# $(( $(date +%s) - T_START )) s so far"
wd_finish
