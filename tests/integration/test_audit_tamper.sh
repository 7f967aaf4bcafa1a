#!/usr/bin/env bash
# The tamper suite: three signed chains in a throwaway PostgreSQL, then, as a superuser with the
# append-only triggers switched off (session_replication_role = replica), every way of changing history
# we know: each column of one record, a deleted record, forged and duplicate records, two records swapped,
# a tail rewritten with valid hashes, truncations with and without their checkpoints, replaced
# checkpoints, a whole chain deleted. `warden audit verify` (as the auditor, SELECT on the views only) must
# name the chain and the first bad seq and exit 1; after the database is restored it must pass again. What
# only the checkpoint export can reveal is shown both ways, and what nothing can reveal (records after the
# last checkpoint) is shown to pass with its warning. Then an export is verified offline and tampered.
# Usage: bash tests/integration/test_audit_tamper.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/pg.sh"
SEED="$(dirname "$WARDEN_BIN")/audit_seed_check"
OUT="$WD_TMP/out"
CK="$WD_TMP/checkpoints.jsonl" # what the writer appends to audit.checkpoints.export: kept off the database

wd_pg_start
wd_pg_setup_db
"$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL" >/dev/null
wd_pg_grant_roles
KEY="$WD_TMP/k1.pem"
"$WARDEN_BIN" audit keygen --out "$KEY" >/dev/null
openssl genpkey -algorithm ed25519 -out "$WD_TMP/k2.pem" 2>/dev/null # the attacker's key
"$WARDEN_BIN" audit pubkey --key "file://$KEY" >"$WD_TMP/pub.pem"

# seed VAR ARGS...: a chain, its id in $VAR and its t0 in ${VAR}_T0
seed() {
  local var="$1" line
  shift
  line=$("$SEED" --db "$WD_DB_URL" --key "file://$KEY" --ckpt-out "$CK" "$@") || { echo "seed failed" >&2; exit 1; }
  read -r _ id _ t0 <<<"$line"
  printf -v "$var" %s "$id"
  printf -v "${var}_T0" %s "$t0"
}
seed A --records 120 --every 25 # checkpoints 25 50 75 100; 101..120 after the last one
seed B --records 60 --every 25
seed C --records 30 --every 10

# verify [args]: as the auditor, with the public key -> $OUT, $RC
verify() {
  RC=0
  "$WARDEN_BIN" audit verify --db "$WD_DB_AUDITOR_URL" --pubkey "$WD_TMP/pub.pem" "$@" >"$OUT" 2>&1 || RC=$?
}
show() { sed 's/^/  | /' "$OUT" | head -12 >&2; }
# detected CHAIN SEQ TEXT: the last verify exited 1 naming CHAIN's first bad record SEQ with TEXT
detected() {
  [ "$RC" = 1 ] && grep -qF -- "TAMPERED chain $1 seq $2: " "$OUT" && grep -F -- "TAMPERED chain $1 seq $2: " "$OUT" |
    grep -qF -- "$3" && return 0
  echo "  want exit 1 and 'TAMPERED chain $1 seq $2: ...$3...', got exit $RC:" >&2
  show
  return 1
}
passes() { [ "$RC" = 0 ] && return 0; echo "  want exit 0, got $RC:" >&2; show; return 1; }
has() { grep -qF -- "$1" "$OUT" && return 0; echo "  output lacks: $1" >&2; show; return 1; }

# tamper SQL...: statements as the superuser with the append-only triggers off
tamper() {
  local a=(-c "SET session_replication_role = replica") s
  for s in "$@"; do a+=(-c "$s"); done
  wd_psql postgres "${a[@]}" >/dev/null
}
tamper "CREATE TABLE public.keep_r AS SELECT * FROM audit.records" \
  "CREATE TABLE public.keep_c AS SELECT * FROM audit.checkpoints"
restore() {
  tamper "DELETE FROM audit.records" "DELETE FROM audit.checkpoints" \
    "INSERT INTO audit.records SELECT * FROM public.keep_r" "INSERT INTO audit.checkpoints SELECT * FROM public.keep_c"
}
# restored: after restore, verify passes again (with the export too)
restored() {
  restore
  verify --checkpoints "$CK"
  passes
}
W="chain_id = '$A'" # the chain most cases work on

# ======== the intact database
verify --checkpoints "$CK"
check "intact: verify passes as the auditor (database + checkpoint export)" passes
check "  ... OK line per chain with its record count and last checkpoint" \
  has "ok chain $A: 120 records, seq 1..120, last checkpoint at seq 100"
check "  ... warns about the records after the last checkpoint" \
  has "warning chain $A: 20 records after the last checkpoint (seq 101..120) are covered only by database access control"
check "  ... summary line" has "audit verify: ok: 3 chains, 210 records, 9 checkpoints verified"
RC=0
"$WARDEN_BIN" audit verify --db "$WD_DB_AUDITOR_URL" >"$OUT" 2>&1 || RC=$?
check "without --pubkey: exit 2, saying the signatures were not checked" \
  eval '[ "$RC" = 2 ] && has "checkpoint signatures were NOT checked"'
RC=0
"$WARDEN_BIN" audit verify --db "$WD_DB_AUDITOR_URL" --no-signatures >"$OUT" 2>&1 || RC=$?
check "  ... --no-signatures accepts that: exit 0" passes
check "pubkey --config reads audit.checkpoints.signing_key" eval \
  "printf 'audit:\n  database: env://UNUSED\n  checkpoints:\n    signing_key: file://$KEY\n' >'$WD_TMP/c.yaml' &&
   '$WARDEN_BIN' audit pubkey --config '$WD_TMP/c.yaml' | cmp -s - '$WD_TMP/pub.pem'"
verify --from 51
check "verify --from 51: anchored on seq 50's stored hash, which its checkpoint vouches for" eval \
  'passes && has "ok chain $A: 70 records, seq 51..120, anchored on the stored hash of seq 50 (vouched for by the signed checkpoint at seq 50)"'

# ======== each column of one record (seq 42: a model call with bodies and some null fields)
S=42
while read -r col; do
  case "$col" in
  chain_id) set_="chain_id = '00000000-0000-4000-8000-000000000000'" want="gap: seq 42 missing" ;;
  seq) set_="seq = seq + 1000" want="gap: seq 42 missing" ;;
  ts) set_="ts = ts + interval '1 microsecond'" want="hash mismatch: record content or order changed" ;;
  hash) set_="hash = sha256(hash)" want="hash mismatch: record content or order changed" ;;
  request_body | response_body) set_="$col = $col || '\\x20'::bytea" want="${col} does not match ${col%_body}_sha256" ;;
  *)
    if [ "$(wd_psql postgres -At -c "SELECT data_type FROM information_schema.columns
          WHERE table_schema = 'audit' AND table_name = 'records' AND column_name = '$col'")" = bigint ]; then
      set_="$col = coalesce($col, 0) + 1"
    else
      set_="$col = coalesce($col, '') || 'x'"
    fi
    want="hash mismatch: record content or order changed"
    ;;
  esac
  tamper "UPDATE audit.records SET $set_ WHERE $W AND seq = $S"
  verify
  d=$(detected "$A" $S "$want" 2>&1) && d=$(restored 2>&1) && ok "column $col changed: detected at seq $S; restored: passes" ||
    { fail "column $col changed ($set_)"; echo "$d" >&2; restore; }
done < <("$WARDEN_BIN" audit fields; printf 'hash\nrequest_body\nresponse_body\n')

# ======== records deleted, forged, duplicated, swapped, rewritten
tamper "DELETE FROM audit.records WHERE $W AND seq = 42"
verify
check "a record deleted in the middle: gap at seq 42" detected "$A" 42 "gap: seq 42 missing (deleted?)"
check "  ... restored: passes" restored

# a forged record put in the gap, correctly linked to seq 41 (the hash is public): the next link breaks
tamper "DELETE FROM audit.records WHERE $W AND seq = 42"
"$SEED" --db "$WD_DB_ADMIN_URL" --chain "$A" --t0 "$A_T0" --records 42 --from 42 --alter 42 >/dev/null
verify
check "a forged record in the gap, validly linked to seq 41: seq 43 no longer links" \
  detected "$A" 43 "hash mismatch: record content or order changed"
check "  ... restored: passes" restored

tamper "CREATE TEMP TABLE t AS SELECT * FROM audit.records WHERE $W AND seq = 42" \
  "UPDATE t SET ts = ts + interval '1 second', event = 'forged'" "INSERT INTO audit.records SELECT * FROM t"
verify
check "a forged duplicate of seq 42 (another ts): duplicate seq" detected "$A" 42 "duplicate seq 42"
check "  ... restored: passes" restored

tamper "UPDATE audit.records SET seq = CASE seq WHEN 42 THEN 45 ELSE 42 END WHERE $W AND seq IN (42, 45)"
verify
check "two records swapped (seq 42 and 45 exchanged): detected at seq 42" \
  detected "$A" 42 "hash mismatch: record content or order changed"
check "  ... restored: passes" restored

# the tail from seq 42 rewritten with a valid chain of hashes: only the signed checkpoints notice
tamper "DELETE FROM audit.records WHERE $W AND seq >= 42"
"$SEED" --db "$WD_DB_ADMIN_URL" --chain "$A" --t0 "$A_T0" --records 120 --from 42 --alter 42 >/dev/null
verify
check "tail rewritten from seq 42 with valid hashes: the checkpoint at seq 50 does not match" \
  detected "$A" 50 "checkpoint at seq 50 does not match the record's hash"
tamper "DELETE FROM audit.checkpoints WHERE $W AND seq >= 42"
verify
check "  ... and its checkpoints deleted too: the database alone cannot tell (passes, 95 records uncovered)" \
  eval 'passes && has "warning chain $A: 95 records after the last checkpoint (seq 26..120)"'
verify --checkpoints "$CK"
check "  ... the checkpoint export can: the checkpoint at seq 50 does not match" \
  detected "$A" 50 "checkpoint at seq 50 does not match the record's hash"
check "  ... restored: passes" restored

# ======== truncation
tamper "DELETE FROM audit.records WHERE $W AND seq > 60"
verify
check "records after seq 60 deleted: the database's checkpoints say truncated" \
  detected "$A" 75 "truncated: checkpoint at seq 75 but chain ends at 60"
tamper "DELETE FROM audit.checkpoints WHERE $W AND seq > 60"
verify
check "  ... and their checkpoints deleted too: the database alone cannot tell (passes with a warning)" \
  eval 'passes && has "warning chain $A: 10 records after the last checkpoint (seq 51..60)"'
verify --checkpoints "$CK"
check "  ... the checkpoint export can: truncated" detected "$A" 75 "truncated: checkpoint at seq 75 but chain ends at 60"
check "  ... restored: passes" restored

tamper "DELETE FROM audit.records WHERE $W AND seq > 100"
verify --checkpoints "$CK"
check "records after the last checkpoint deleted: not detectable (as documented), verify passes" \
  eval 'passes && has "ok chain $A: 100 records, seq 1..100, last checkpoint at seq 100"'
check "  ... restored: passes, the 20 records back" eval 'restored && has "ok chain $A: 120 records"'

# ======== checkpoints replaced
tamper "UPDATE audit.checkpoints SET head = sha256(head) WHERE $W AND seq = 50"
verify
check "a checkpoint's head changed: signature invalid" detected "$A" 50 "checkpoint signature invalid at seq 50"
check "  ... restored: passes" restored

# re-signed by the attacker's own key (same head, a valid Ed25519 signature, another key)
tamper "DELETE FROM audit.checkpoints WHERE $W AND seq = 50"
"$SEED" --db "$WD_DB_ADMIN_URL" --chain "$A" --t0 "$A_T0" --records 50 --from 50 --every 25 \
  --key "file://$WD_TMP/k2.pem" --ckpt-only >/dev/null
verify
check "a checkpoint re-signed with another key: signature invalid (unknown key_id)" \
  detected "$A" 50 "checkpoint signature invalid: seq 50 is signed by key_id"
verify --checkpoints "$CK"
check "  ... with the export: replaced" detected "$A" 50 "the database's checkpoint differs from the exported one (replaced)"
check "  ... restored: passes" restored

# ======== a whole chain deleted, records and checkpoints
tamper "DELETE FROM audit.records WHERE chain_id = '$C'" "DELETE FROM audit.checkpoints WHERE chain_id = '$C'"
verify
check "chain C deleted with its checkpoints: the database alone cannot tell (2 chains, passes)" \
  eval 'passes && has "audit verify: ok: 2 chains"'
verify --checkpoints "$CK"
check "  ... the checkpoint export can: chain deleted" \
  detected "$C" 30 "chain deleted: the checkpoint export has checkpoints up to seq 30 but there are no records"
check "  ... restored: passes" restored

# ======== exports, verified offline
R="$WD_TMP/range.jsonl"
RC=0
"$WARDEN_BIN" audit export --db "$WD_DB_AUDITOR_URL" --chain "$A" --from 41 --to 90 --out "$R" >"$OUT" 2>&1 || RC=$?
check "export --chain A --from 41 --to 90 (as the auditor)" \
  eval 'passes && has "audit export: 50 records, 2 checkpoints, 1 anchor lines"'
check "  ... starts with the anchor line for seq 40" eval \
  "head -1 '$R' | grep -qE '^\\{\"type\":\"anchor\",\"v\":1,\"chain_id\":\"$A\",\"seq\":40,\"hash\":\"[0-9a-f]{64}\"\\}\$'"
# offline [args]: verify --file -> $OUT, $RC
offline() {
  RC=0
  "$WARDEN_BIN" audit verify --pubkey "$WD_TMP/pub.pem" "$@" >"$OUT" 2>&1 || RC=$?
}
offline --file "$R"
check "verify --file on the range export passes offline" \
  eval 'passes && has "ok chain $A: 50 records, seq 41..90, anchored on the stored hash of seq 40 (vouched for by the signed checkpoint at seq 50), last checkpoint at seq 75"'
offline --file "$R" --checkpoints "$CK" --chain "$A" --to 90
check "  ... also against the checkpoint export (--chain, --to bound it to the range)" passes
"$WARDEN_BIN" audit export --db "$WD_DB_AUDITOR_URL" --chain "$A" --from 102 --out "$WD_TMP/tail.jsonl" 2>/dev/null
offline --file "$WD_TMP/tail.jsonl"
check "an export of the records after the last checkpoint: its anchor is taken on trust, and says so" \
  eval 'passes && has "seq 102..120, anchored on the stored hash of seq 101 (taken on trust: no signed checkpoint after it)"'
F="$WD_TMP/full.jsonl"
"$WARDEN_BIN" audit export --db "$WD_DB_AUDITOR_URL" --out "$F" 2>/dev/null
offline --file "$F" --checkpoints "$CK"
check "a full export verifies offline: 3 chains, 210 records" eval 'passes && has "audit verify: ok: 3 chains, 210 records"'

python3 - "$R" "$WD_TMP/bad1.jsonl" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
i = next(k for k, l in enumerate(lines) if '"seq":60,' in l)
lines[i] = lines[i].replace("anthropic.messages", "anthropic.messagez", 1)  # one byte
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines))
PY
offline --file "$WD_TMP/bad1.jsonl"
check "one byte changed in the export's record at seq 60: detected" \
  detected "$A" 60 "hash mismatch: record content or order changed"

python3 - "$R" "$WD_TMP/bad2.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
i = next(k for k, l in enumerate(lines) if '"seq":63,' in l)
rec = json.loads(lines[i])
b = rec["response_body"]
rec["response_body"] = b[:8] + ("A" if b[8] != "A" else "B") + b[9:]  # still base64, another body
lines[i] = lines[i].replace(json.dumps(b), json.dumps(rec["response_body"]))
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines))
PY
offline --file "$WD_TMP/bad2.jsonl"
check "a body changed in the export (seq 63): does not match its digest" \
  detected "$A" 63 "response_body does not match response_sha256"

sed '/"seq":71,/,$d' "$R" >"$WD_TMP/cut.jsonl" # drops seq 71.. and the checkpoint at 75
offline --file "$WD_TMP/cut.jsonl"
check "an export cut after seq 70: it alone looks fine" passes
offline --file "$WD_TMP/cut.jsonl" --checkpoints "$CK"
check "  ... the checkpoint export goes on past it: a note (it may be newer than the export), not a failure" \
  eval 'passes && has "note chain $A: the checkpoint file goes on to seq 100, past this export"'
offline --file "$WD_TMP/cut.jsonl" --checkpoints "$CK" --chain "$A" --to 90
check "  ... --to 90 (the export must reach seq 90): truncated" detected "$A" 75 "truncated: checkpoint at seq 75 but chain ends at 70"

head -c -1 "$R" >"$WD_TMP/torn.jsonl"
offline --file "$WD_TMP/torn.jsonl"
check "an export whose last line lost its newline: reported" eval '[ "$RC" = 1 ] && has "ends inside a line"'

wd_finish
