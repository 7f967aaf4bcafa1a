#!/usr/bin/env bash
# The audit schema in a throwaway PostgreSQL 15: `warden db migrate` (migration 1 once, then nothing to
# do), the columns of audit.records against the record's field list, the append-only rules for the writer
# role (INSERT and SELECT; no UPDATE, DELETE or TRUNCATE, also not on a partition directly) and for the
# auditor role (the views only), and `warden audit query` (filters, JSON lines, CSV, values that would be
# SQL if they were pasted into the statement). Records come from audit_seed_check, signed checkpoints too.
# Usage: bash tests/integration/test_audit_db.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/pg.sh"
SEED="$(dirname "$WARDEN_BIN")/audit_seed_check"
OUT="$WD_TMP/out"

# expect RC DESC CMD...: runs CMD with stdout and stderr in $OUT; one ok/fail line on its exit status
expect() {
  local want="$1" d="$2" rc=0
  shift 2
  "$@" >"$OUT" 2>&1 || rc=$?
  if [ "$rc" = "$want" ]; then ok "$d"; else fail "$d (exit $rc, want $want)"; sed 's/^/  | /' "$OUT" | head -20 >&2; fi
}
has() { grep -qF -- "$1" "$OUT" || { echo "  output lacks: $1" >&2; sed 's/^/  | /' "$OUT" | head -20 >&2; return 1; }; }
q() { wd_psql postgres -At -c "$1"; }
# refused USER SQL: the statement fails for USER (permission denied or the append-only trigger)
refused() {
  local out
  if out=$(wd_psql "$1" -c "$2" 2>&1); then echo "  $1 could run: $2" >&2; return 1; fi
  grep -qE 'permission denied|append-only' <<<"$out" || { echo "  unexpected error: $out" >&2; return 1; }
}
allowed() { wd_psql "$1" -c "$2" >/dev/null; }

wd_pg_start
wd_pg_setup_db

# ======== migrations
expect 0 "db migrate applies migrations 1 (audit) and 2 (governance)" "$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL"
check "  ... and says so" has "applied 2 migrations, schema version 2"
export WD_TEST_AUDIT_DB="$WD_DB_ADMIN_URL"
expect 0 "db migrate again (the URL from env://) applies nothing" "$WARDEN_BIN" db migrate --db env://WD_TEST_AUDIT_DB
check "  ... and says so" has "applied 0 migrations, schema version 2"
expect 2 "db migrate to a closed port fails with exit 2" \
  "$WARDEN_BIN" db migrate --db "postgresql://postgres:pw-planted-3141@127.0.0.1:1/warden"
check "  ... without printing the URL or its password" eval '! grep -qE "pw-planted-3141|postgresql://" "$OUT"'
expect 2 "a misplaced URL argument is not echoed either" \
  "$WARDEN_BIN" audit query "postgresql://postgres:pw-planted-3141@127.0.0.1:1/warden"
check "  ... (no password in the message)" eval '! grep -q "pw-planted-3141" "$OUT"'
wd_pg_grant_roles

cols=$(q "SELECT column_name FROM information_schema.columns WHERE table_schema = 'audit' AND table_name = 'records'
          ORDER BY ordinal_position" | tr '\n' ' ')
want=$({ "$WARDEN_BIN" audit fields; printf 'hash\nrequest_body\nresponse_body\n'; } | tr '\n' ' ')
check "audit.records columns are WD_AUDIT_FIELDS in order, then hash and the bodies" [ "$cols" = "$want" ]
[ "$cols" = "$want" ] || printf '  have: %s\n  want: %s\n' "$cols" "$want" >&2
vcols=$(q "SELECT column_name FROM information_schema.columns WHERE table_schema = 'audit' AND table_name = 'records_v'
           ORDER BY ordinal_position" | tr '\n' ' ')
check "audit.records_v has the same columns" [ "$vcols" = "$want" ]

# ======== the writer role: a real chain, spread over the default partition and this month's
KEY="$WD_TMP/audit-ed25519.pem"
"$WARDEN_BIN" audit keygen --out "$KEY" >/dev/null
"$WARDEN_BIN" audit pubkey --key "file://$KEY" >"$WD_TMP/pub.pem"
now_us=$(($(date +%s) * 1000000))
step=$((40 * 86400 * 1000000 / 31)) # 30 records from 40 days ago (no partition: the default) to now
expect 0 "as warden (INSERT, SELECT): 30 records and 3 checkpoints go in through wd_audit_insert_sql" \
  "$SEED" --db "$WD_DB_URL" --records 30 --every 10 --key "file://$KEY" --t0 $((now_us - 31 * step)) --step-us "$step"
CHAIN=$(sed -n 's/^chain \([0-9a-f-]*\) .*/\1/p' "$OUT")
check "  ... 30 rows, 3 checkpoints" [ "$(q "SELECT count(*) FROM audit.records WHERE chain_id = '$CHAIN'")/$(
  q 'SELECT count(*) FROM audit.checkpoints')" = "30/3" ]
MONTH=$(q "SELECT 'audit.records_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')")
check "  ... rows in audit.records_default and in $MONTH" \
  [ "$(q "SELECT (SELECT count(*) > 0 FROM audit.records_default) AND (SELECT count(*) > 0 FROM $MONTH)")" = t ]
check "as warden: SELECT on audit.records works" allowed warden "SELECT count(*) FROM audit.records"
for t in audit.records audit.checkpoints audit.records_default "$MONTH"; do
  check "as warden: UPDATE $t refused" refused warden "UPDATE $t SET seq = seq"
  check "as warden: DELETE FROM $t refused" refused warden "DELETE FROM $t"
  check "as warden: TRUNCATE $t refused" refused warden "TRUNCATE $t"
done
# the triggers hold even for the owner (a superuser can disable them, which the tamper test does)
for t in audit.records audit.checkpoints audit.records_default "$MONTH"; do
  check "as the superuser: UPDATE, DELETE, TRUNCATE $t refused by the append-only triggers" eval \
    "refused postgres 'UPDATE $t SET seq = seq' && refused postgres 'DELETE FROM $t' && refused postgres 'TRUNCATE $t'"
done
check "the rows are all still there" [ "$(q 'SELECT count(*) FROM audit.records')" = 30 ]

# ======== the auditor role: the views and nothing else
check "as auditor: SELECT on records_v, checkpoints_v, chains_v works" allowed auditor \
  "SELECT (SELECT count(*) FROM audit.records_v), (SELECT count(*) FROM audit.checkpoints_v), (SELECT count(*) FROM audit.chains_v)"
for t in audit.records audit.checkpoints audit.records_default "$MONTH"; do
  check "as auditor: SELECT on the table $t refused" refused auditor "SELECT count(*) FROM $t"
done
check "as auditor: INSERT into audit.records refused" refused auditor \
  "INSERT INTO audit.records SELECT * FROM audit.records_v LIMIT 1"
check "as auditor: INSERT through the view refused" refused auditor \
  "INSERT INTO audit.records_v SELECT * FROM audit.records_v LIMIT 1"
check "as auditor: UPDATE through the view refused" refused auditor "UPDATE audit.records_v SET seq = seq"
expect 0 "as auditor: audit verify passes over both partitions" \
  "$WARDEN_BIN" audit verify --db "$WD_DB_AUDITOR_URL" --pubkey "$WD_TMP/pub.pem"
check "  ... naming the chain, its 30 records and last checkpoint" has "ok chain $CHAIN: 30 records, seq 1..30, last checkpoint at seq 30"

# ======== audit query
QA=("$WARDEN_BIN" audit query --db "$WD_DB_AUDITOR_URL")
# count SQL-WHERE: the number of rows the query should return
count() { q "SELECT count(*) FROM audit.records WHERE $1"; }
# jsonl_ok FILE N: N lines, each an object with exactly the fields (in order) and the hash
jsonl_ok() {
  python3 - "$1" "$2" "$want" <<'PY'
import json, sys
path, n, cols = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
rows = [json.loads(l) for l in open(path, encoding="utf-8")]
keys = cols[:-2]  # fields + hash: no bodies
assert len(rows) == n, f"{len(rows)} rows, want {n}"
for r in rows:
    assert list(r) == keys, list(r)
    assert isinstance(r["seq"], int) and len(r["hash"]) == 64
PY
}
expect 0 "query --kind call as JSON lines" "${QA[@]}" --kind call
check "  ... one object per call record, the field names of WD_AUDIT_FIELDS + hash" jsonl_ok "$OUT" "$(count "kind = 'call'")"
check "  ... strings escaped (control characters, quotes, non-ASCII)" has '"detail":"path C:\\tmp\nline2\ttab \u0001 \"quoted\"'
expect 0 "query --decision deny --team platform" "${QA[@]}" --decision deny --team platform
check "  ... the matching rows" jsonl_ok "$OUT" "$(count "decision = 'deny' AND team = 'platform'")"
expect 0 "query --model gemini-2.5-flash --provider gemini --status 200 --limit 3" \
  "${QA[@]}" --model gemini-2.5-flash --provider gemini --status 200 --limit 3
check "  ... three rows" jsonl_ok "$OUT" 3
from=$(q "SELECT to_char(min(ts) + interval '10 days', 'YYYY-MM-DD HH24:MI:SS.USOF') FROM audit.records")
to=$(q "SELECT to_char(max(ts) - interval '10 days', 'YYYY-MM-DD HH24:MI:SS.USOF') FROM audit.records")
expect 0 "query --from/--to (a time window) --principal alice@example.com" \
  "${QA[@]}" --from "$from" --to "$to" --principal alice@example.com
check "  ... the rows in the window" jsonl_ok "$OUT" \
  "$(count "ts >= '$from' AND ts < '$to' AND subject = 'alice@example.com'")"
expect 0 "query --principal \"x' OR '1'='1\" (a parameter, never SQL)" "${QA[@]}" --principal "x' OR '1'='1"
check "  ... matches nothing" [ ! -s "$OUT" ]
expect 0 "query --team \"platform'; DROP TABLE audit.records; --\"" "${QA[@]}" --team "platform'; DROP TABLE audit.records; --"
check "  ... matches nothing and drops nothing" eval '[ ! -s "$OUT" ] && [ "$(q "SELECT count(*) FROM audit.records")" = 30 ]'
"${QA[@]}" >"$WD_TMP/all.jsonl"
expect 0 "query --format csv" "${QA[@]}" --format csv
check "  ... RFC 4180 (header, CRLF, quoted commas, quotes, line breaks), the values of the JSON lines" \
  python3 - "$OUT" "$want" "$WD_TMP/all.jsonl" <<'PY'
import csv, json, sys
raw = open(sys.argv[1], "rb").read()
cols = sys.argv[2].split()[:-2]
assert raw.split(b"\r\n")[0] == ",".join(cols).encode(), raw[:200]
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
assert rows[0] == cols, rows[0]
js = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
assert len(rows) - 1 == len(js) == 30, (len(rows), len(js))
for r, j in zip(rows[1:], js):
    for c, v in zip(cols, r):
        want = "" if j[c] is None else str(j[c])
        assert v == want, (c, v, want)
PY
expect 2 "query --decision maybe is a usage error" "${QA[@]}" --decision maybe
expect 2 "query --from 'not a time' is a usage error (reported by the server)" "${QA[@]}" --from "not a time"
expect 2 "query --status abc is a usage error" "${QA[@]}" --status abc

wd_finish
