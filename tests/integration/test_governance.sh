#!/usr/bin/env bash
# Governance against a real PostgreSQL (docs/governance.md): two Warden replicas on one database; virtual keys
# made through the admin API (`warden keys`), shown once, stored hashed, refused on both replicas once revoked;
# a team budget and a request budget spent by 32 concurrent clients across both replicas, the measured
# overshoot within the stated bound (0 for requests; 0 for USD while tokens <= body bytes); the spend kept
# across a restart; a reset admitting again; a per-minute rate limit with Retry-After; no database round trip
# per request; admission with the database down (fail_closed); the OpenAPI document against the live routes.
# Usage: bash tests/integration/test_governance.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/pg.sh"

bash "$WD_ROOT/tests/admin/setup.sh" >/dev/null
wd_pg_start
wd_pg_setup_db
"$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL" >/dev/null
wd_psql postgres -c "GRANT warden_governance TO warden" >/dev/null
wd_start_fake

ADMIN_KEY="adm-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export WARDEN_ADMIN_KEY="$ADMIN_KEY"
gov_yaml() {
  cat <<YAML
governance:
  database: $WD_DB_URL
  migrate: false
  sync_interval: 200ms
  lease: 0.1
  idle_return: 1s
  wait: 2s
$(wd_metrics_yaml)
YAML
}
CFG_A=$(wd_config "$(wd_free_port)" "$FAKE_URL" "$(gov_yaml)")
CFG_B=$(wd_config "$(wd_free_port)" "$FAKE_URL" "$(gov_yaml)")
for c in "$CFG_A" "$CFG_B"; do
  sed -i "s|secret: env://WARDEN_DEV_KEY|secret: env://WARDEN_DEV_KEY\n    - name: admin\n      secret: env://WD_ADMIN|" "$c"
done
WD_WARDEN_ENV=(WD_ADMIN="$ADMIN_KEY")
wd_start_warden "$CFG_A"; A_PID=$WARDEN_PID; A_URL=$WARDEN_URL; A_LOG=$WARDEN_LOG; A_MET=$WARDEN_METRICS_URL
wd_start_warden "$CFG_B"; B_PID=$WARDEN_PID; B_URL=$WARDEN_URL; B_LOG=$WARDEN_LOG; B_MET=$WARDEN_METRICS_URL
export WARDEN_URL="$A_URL"

body() { printf '{"model":"claude-sonnet-4-5","max_tokens":32,"messages":[{"role":"user","content":"%s"}]}' "${1:-budget check}"; }
# call URL KEY -> HTTP status (the body in $WD_TMP/last.json, headers in last.h)
call() {
  curl -s -o "$WD_TMP/last.json" -D "$WD_TMP/last.h" -w '%{http_code}' "$1/anthropic/v1/messages" \
    -H "x-api-key: $2" -H 'content-type: application/json' -d "$(body "${3:-}")"
}
sql() { wd_psql postgres -At -c "$1"; }
matches() { [[ "$1" =~ $2 ]]; }

# ======== teams, virtual keys
check "teams create eng (org acme)" "$WARDEN_BIN" teams create eng --org acme
K1=$("$WARDEN_BIN" keys create ci-bot --team eng --owner alice@example.com 2>"$WD_TMP/k1.err" | head -1)
check "keys create prints a wk- key once (${K1:0:11}...)" matches "$K1" '^wk-[A-Za-z0-9_-]{43}$'
K1_ID=$(sed -n 's/^id: *//p' "$WD_TMP/k1.err" | head -1)
[ -n "$K1_ID" ] || K1_ID=$(sql "SELECT id FROM gov.keys WHERE name = 'ci-bot'")
check "  its id is key_<16 hex> ($K1_ID)" matches "$K1_ID" '^key_[0-9a-f]{16}$'
check "  the database holds only a salted hash: no row contains the key" \
  [ "$(sql "SELECT count(*) FROM gov.keys k WHERE position('$K1' in k::text) > 0 OR position('${K1:3:20}' in k::text) > 0")" = 0 ]
check "  the key's hash is SHA-256(salt || key)" bash -c "[ \"\$(psql -X -At -h 127.0.0.1 -p $PG_PORT -U postgres -d warden -c \"SELECT encode(hash, 'hex') FROM gov.keys WHERE id = '$K1_ID'\")\" = \"\$(python3 -c 'import hashlib,sys,binascii; print(hashlib.sha256(binascii.unhexlify(sys.argv[1]) + sys.argv[2].encode()).hexdigest())' \"\$(psql -X -At -h 127.0.0.1 -p $PG_PORT -U postgres -d warden -c \"SELECT encode(salt, 'hex') FROM gov.keys WHERE id = '$K1_ID'\")\" '$K1')\" ]"
"$WARDEN_BIN" keys list --json >"$WD_TMP/list.json"
check "keys list shows the key without its secret" bash -c "grep -q '$K1_ID' '$WD_TMP/list.json' && ! grep -q '$K1' '$WD_TMP/list.json'"

sleep 0.5 # replica B learns of the key by NOTIFY; give it a sync interval at most
check "the virtual key calls a model on replica A (200)" [ "$(call "$A_URL" "$K1")" = 200 ]
check "  and on replica B (200)" [ "$(call "$B_URL" "$K1")" = 200 ]
check "  A's access line names it by key name, method virtual_key" \
  bash -c "grep '\"path\":\"/anthropic/v1/messages\"' '$A_LOG' | tail -1 | grep -q '\"key\":\"ci-bot\"'"
check "a wrong wk- key is refused (401)" [ "$(call "$A_URL" "wk-$(printf 'x%.0s' $(seq 43))")" = 401 ]

# a key restricted to one model pattern
K2=$("$WARDEN_BIN" keys create flash-only --team eng --model gemini/gemini-2.5-flash-lite 2>/dev/null | head -1)
sleep 0.3
check "a key limited to gemini/gemini-2.5-flash-lite may not use tier sonnet (403)" [ "$(call "$A_URL" "$K2")" = 403 ]
check "  ... with x-should-retry: false (a grant does not come by retrying)" grep -qi '^x-should-retry: false' "$WD_TMP/last.h"
check "  ... the answer names the model and is an Anthropic permission_error" \
  grep -q '"type":"permission_error"' "$WD_TMP/last.json"
check "  ... and may use tier haiku (200)" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$A_URL/anthropic/v1/messages' -H 'x-api-key: $K2' -H 'content-type: application/json' -d '{\"model\":\"claude-haiku-4-5\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}')\" = 200 ]"

# admin API permissions: without an rbac section only static keys administer
check "a virtual key cannot use the admin API without an rbac section (403)" \
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$A_URL/admin/v1/keys" -H "Authorization: Bearer $K1")" = 403 ]
check "the admin API refuses a request without a key (401)" \
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$A_URL/admin/v1/keys")" = 401 ]

# ======== a request budget and a USD budget on the team, spent by 32 clients on two replicas
"$WARDEN_BIN" budgets create --scope team --subject eng --metric requests --period total --limit 150 --json >"$WD_TMP/b1.json"
B1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WD_TMP/b1.json")
check "budgets create: a total request budget of 150 for team eng ($B1)" matches "$B1" '^bud_[0-9]+$'
USED_BEFORE=$(sql "SELECT count(*) FROM gov.keys") # keeps set -e quiet; the 3 calls above were before the budget
sleep 0.5
# 32 clients, half on each replica, each calling until refused (at most 40 calls each, 60 s in all)
run_client() {
  local url="$1" n=0 code i
  for i in $(seq 1 40); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url/anthropic/v1/messages" -H "x-api-key: $CK" \
      -H 'content-type: application/json' -d "$(body "client $RANDOM")")
    echo "$code"
    [ "$code" = 200 ] || [ "$code" = 429 ] || continue
    [ "$code" = 429 ] && break
  done
}
export -f run_client body
export CK="$K1"
rt_a() { curl -s "$A_MET/metrics" | sed -n 's/^warden_governance_db_roundtrips_total \([0-9]*\)$/\1/p'; }
RT0=$(rt_a)
START=$(date +%s)
CLIENTS=()
for i in $(seq 1 32); do
  if [ $((i % 2)) -eq 0 ]; then u=$A_URL; else u=$B_URL; fi
  timeout 60 bash -c "run_client $u" >"$WD_TMP/client.$i" 2>/dev/null &
  CLIENTS+=($!)
done
for p in "${CLIENTS[@]}"; do wait "$p" || true; done
OK_N=$(cat "$WD_TMP"/client.* | grep -c '^200$' || true)
R429=$(cat "$WD_TMP"/client.* | grep -c '^429$' || true)
OTHER=$(cat "$WD_TMP"/client.* | grep -vcE '^(200|429)$' || true)
check "32 clients on two replicas: exactly 150 admitted under the 150-request budget ($OK_N admitted, $R429 refused, $OTHER other, $(( $(date +%s) - START )) s)" \
  [ "$OK_N" = 150 ]
check "  every client was finally refused with 429 (32 refusals, got $R429)" [ "$R429" -ge 32 ]
check "  a total budget's 429 says x-should-retry: false" \
  bash -c "[ \"\$(curl -s -o /dev/null -D - '$A_URL/anthropic/v1/messages' -H 'x-api-key: $K1' -H 'content-type: application/json' -d '$(body)' | grep -ci '^x-should-retry: false')\" = 1 ]"
check "  nothing but 200 and 429" [ "$OTHER" = 0 ]
sleep 0.6 # a sync interval: the spend is flushed
SPENT=$(sql "SELECT sum(spent) FROM gov.usage WHERE budget_id = ${B1#bud_}")
GRANTED=$(sql "SELECT sum(granted) FROM gov.usage WHERE budget_id = ${B1#bud_}")
check "the database's spend is exactly the admitted calls (spent $SPENT, granted $GRANTED <= 150)" \
  bash -c "[ '$SPENT' = 150 ] && [ '$GRANTED' -le 150 ]"
grep -h '"type":"rate_limit_error"' "$WD_TMP/last.json" >/dev/null 2>&1 || call "$A_URL" "$K1" >/dev/null
check "a refused call is an Anthropic rate_limit_error naming the budget" \
  bash -c "call() { :; }; grep -q 'team eng: requests total budget 150 exhausted' '$WD_TMP/last.json' || curl -s '$A_URL/anthropic/v1/messages' -H 'x-api-key: $K1' -H 'content-type: application/json' -d '$(body)' | grep -q 'team eng: requests total budget 150 exhausted'"
RT1=$(rt_a)
A_ADM=$(curl -s "$A_MET/metrics" | sed -n 's/^warden_governance_admitted_total \([0-9]*\)$/\1/p')
check "no database round trip per request: replica A sent $((RT1 - RT0)) statements during the burst and the flush after it, for its $A_ADM admitted calls" \
  bash -c "[ -n '$RT1' ] && [ $((RT1 - RT0)) -lt $(( A_ADM / 2 )) ]"

# ======== a USD budget: spend stops at the limit (overshoot 0 while tokens <= body bytes)
"$WARDEN_BIN" teams create ops --org acme >/dev/null
K3=$("$WARDEN_BIN" keys create ops-bot --team ops 2>/dev/null | head -1)
"$WARDEN_BIN" budgets create --scope team --subject ops --metric usd --period daily --limit 0.002 --json >"$WD_TMP/b2.json"
B2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WD_TMP/b2.json")
check "a daily USD budget of 0.002 for team ops ($B2), limit shown in dollars" \
  python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); sys.exit(0 if b["limit"] == 0.002 and b["metric"] == "usd" and b["resets_at"].endswith("T00:00:00Z") else 1)' "$WD_TMP/b2.json"
sleep 0.5
export CK="$K3"
CLIENTS=()
for i in $(seq 1 32); do
  if [ $((i % 2)) -eq 0 ]; then u=$A_URL; else u=$B_URL; fi
  timeout 60 bash -c "run_client $u" >"$WD_TMP/usd.$i" 2>/dev/null &
  CLIENTS+=($!)
done
for p in "${CLIENTS[@]}"; do wait "$p" || true; done
USD_OK=$(cat "$WD_TMP"/usd.* | grep -c '^200$' || true)
USD_429=$(cat "$WD_TMP"/usd.* | grep -c '^429$' || true)
sleep 0.6
USD_SPENT=$(sql "SELECT sum(spent) FROM gov.usage WHERE budget_id = ${B2#bud_}")
check "32 clients spend the USD budget on two replicas: spent $USD_SPENT micro-USD of 2000 in $USD_OK calls, $USD_429 refused; overshoot $((USD_SPENT > 2000 ? USD_SPENT - 2000 : 0)) (bound 0)" \
  bash -c "[ '$USD_SPENT' -le 2000 ] && [ '$USD_SPENT' -ge 1000 ] && [ '$USD_429' -ge 32 ]"
COST_A=$(curl -s "$A_MET/metrics" | grep -c '^warden_governance_refused_total [1-9]' || true)
check "  refusals are counted in warden_governance_refused_total" [ "$COST_A" = 1 ]

fake_requests() { curl -s "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
F0=$(fake_requests)
for i in 1 2 3; do call "$A_URL" "$K3" >/dev/null; done
check "a refused call makes no upstream request (the provider saw $(( $(fake_requests) - F0 )) for 3 refused calls)" \
  [ "$(fake_requests)" = "$F0" ]

# ======== roles on keys: only roles of rbac.roles (none here), never more than the granter holds
RC=0; "$WARDEN_BIN" keys create escalate --role admin >"$WD_TMP/esc.out" 2>"$WD_TMP/esc.err" || RC=$?
check "a key with a role that rbac.roles does not define is refused (exit $RC: $(head -c 120 "$WD_TMP/esc.err"))" \
  bash -c "[ $RC = 1 ] && grep -q 'not a role of rbac.roles' '$WD_TMP/esc.err'"

# ======== per-minute rate limit on a key, with Retry-After
K4=$("$WARDEN_BIN" keys create rpm-bot --team eng 2>"$WD_TMP/k4.err" | head -1)
K4_ID=$(sql "SELECT id FROM gov.keys WHERE name = 'rpm-bot' AND revoked_at IS NULL")
"$WARDEN_BIN" budgets reset "$B1" >/dev/null
"$WARDEN_BIN" budgets create --scope key --subject "$K4_ID" --metric requests --period minute --limit 5 >/dev/null
sleep 0.5
CODES=""
for i in $(seq 1 6); do CODES+="$(call "$A_URL" "$K4") "; done
check "a 5 requests per minute limit on a key: five calls pass, the sixth is 429 ($CODES)" [ "$CODES" = "200 200 200 200 200 429 " ]
RA=$(sed -n 's/^retry-after: *\([0-9]*\).*/\1/Ip' "$WD_TMP/last.h")
check "  with Retry-After until the minute ends ($RA s)" bash -c "[ -n '$RA' ] && [ '$RA' -ge 1 ] && [ '$RA' -le 60 ]"
check "  and no x-should-retry: false (a minute can be waited out)" bash -c "! grep -qi '^x-should-retry' '$WD_TMP/last.h'"
check "  and a message naming the key's rate limit" grep -q "key $K4_ID: requests per minute rate limit 5 exhausted" "$WD_TMP/last.json"


# ======== a stream cut mid-way is charged for the usage it reported
"$WARDEN_BIN" teams create stream >/dev/null
K5=$("$WARDEN_BIN" keys create stream-bot --team stream 2>/dev/null | head -1)
"$WARDEN_BIN" budgets create --scope team --subject stream --metric tokens --period daily --limit 1000000 --json >"$WD_TMP/b5.json"
B5=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WD_TMP/b5.json")
sleep 0.5
curl -s -o /dev/null "$FAKE_URL/_fake/script" -H 'content-type: application/json' \
  -d '{"faults":[{"stall_after_chunks":1,"ms":4000}]}'
curl -s -N --max-time 1.5 -o "$WD_TMP/cut.sse" "$A_URL/anthropic/v1/messages" -H "x-api-key: $K5" \
  -H 'content-type: application/json' \
  -d '{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"a long story please"}]}' || true
sleep 1
CUT_SPENT=$(sql "SELECT coalesce(sum(spent), 0) FROM gov.usage WHERE budget_id = ${B5#bud_}")
check "a stream the client cut after its first event is charged the tokens it reported ($CUT_SPENT > 0, at most its reservation)" \
  bash -c "grep -q message_start '$WD_TMP/cut.sse' && [ '$CUT_SPENT' -gt 0 ] && [ '$CUT_SPENT' -lt 500 ]"
curl -s -o /dev/null -X POST "$FAKE_URL/_fake/reset"

# ======== restart: the spend is kept; reset admits again
"$WARDEN_BIN" budgets delete "$B1" >/dev/null 2>&1 || true
"$WARDEN_BIN" budgets create --scope team --subject eng --metric requests --period total --limit 20 --json >"$WD_TMP/b3.json"
B3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WD_TMP/b3.json")
sleep 0.5
for i in $(seq 1 12); do call "$A_URL" "$K1" >/dev/null; done
check "keys list --team eng lists the team's keys (3: ci-bot, flash-only, rpm-bot)" \
  bash -c "[ \"\$('$WARDEN_BIN' keys list --team eng --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"data\"]))')\" = 3 ]"
wd_stop_warden "$A_PID" "$A_LOG"
wd_stop_warden "$B_PID" "$B_LOG"
check "a clean stop flushed the spend and gave the leases back (spent 12, granted 12)" \
  [ "$(sql "SELECT spent || ',' || granted FROM gov.usage WHERE budget_id = ${B3#bud_}")" = "12,12" ]
wd_start_warden "$CFG_A"; A_PID=$WARDEN_PID; A_URL=$WARDEN_URL; A_LOG=$WARDEN_LOG; A_MET=$WARDEN_METRICS_URL
wd_start_warden "$CFG_B"; B_PID=$WARDEN_PID; B_URL=$WARDEN_URL; B_LOG=$WARDEN_LOG; B_MET=$WARDEN_METRICS_URL
export WARDEN_URL="$A_URL"
CODES=""
for i in $(seq 1 10); do CODES+="$(call "$B_URL" "$K1") "; done
check "after a restart the spend is kept: 8 more of the 20 pass, then 429 ($CODES)" \
  [ "$CODES" = "200 200 200 200 200 200 200 200 429 429 " ]
sleep 0.6 # one sync interval: the replicas' spend is flushed
"$WARDEN_BIN" budgets show "$B3" --json >"$WD_TMP/b3s.json" 2>&1 || true
check "  budgets show reports the spend, flushed within a sync interval (20: $(grep -o '"spent":[0-9]*' "$WD_TMP/b3s.json"))" \
  grep -q '"spent":20' "$WD_TMP/b3s.json"
"$WARDEN_BIN" budgets reset "$B3" >/dev/null
sleep 0.5
check "budgets reset starts the period again: the next call passes" [ "$(call "$A_URL" "$K1")" = 200 ]

# ======== revocation reaches both replicas
"$WARDEN_BIN" keys revoke "$K4_ID" >/dev/null
sleep 0.5
check "a revoked key is refused on replica A (401)" [ "$(call "$A_URL" "$K4")" = 401 ]
check "  and on replica B (401)" [ "$(call "$B_URL" "$K4")" = 401 ]
"$WARDEN_BIN" keys show "$K4_ID" --json >"$WD_TMP/k4show.json" 2>&1 || true
check "  keys show gives its revoked_at" python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["revoked_at"].startswith("20") else 1)' "$WD_TMP/k4show.json"

# ======== the database down (fail_closed): leases held are used, then 503; back when it is
# (and a third replica in fail_open mode admits on local accounting, flushing the spend when the database is back)
"$WARDEN_BIN" teams create fo >/dev/null
K7=$("$WARDEN_BIN" keys create fo-bot --team fo 2>/dev/null | head -1)
"$WARDEN_BIN" budgets create --scope team --subject fo --metric requests --period total --limit 10 --json >"$WD_TMP/b7.json"
B7=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WD_TMP/b7.json")
CFG_C=$(wd_config "$(wd_free_port)" "$FAKE_URL" "$(gov_yaml | sed 's/^  migrate: false$/  migrate: false\n  mode: fail_open/')")
sed -i "s|secret: env://WARDEN_DEV_KEY|secret: env://WARDEN_DEV_KEY\n    - name: admin\n      secret: env://WD_ADMIN|" "$CFG_C"
wd_start_warden "$CFG_C"; C_PID=$WARDEN_PID; C_URL=$WARDEN_URL; C_LOG=$WARDEN_LOG; C_MET=$WARDEN_METRICS_URL
export WARDEN_URL="$A_URL"
check "fail_open replica: a call before the outage takes its lease (200)" [ "$(call "$C_URL" "$K7")" = 200 ]
wd_pg_stop
CODES=""
for i in $(seq 1 12); do CODES+="$(call "$A_URL" "$K1") "; done
N200=$( (grep -o 200 <<<"$CODES" || true) | wc -l)
N503=$( (grep -o 503 <<<"$CODES" || true) | wc -l)
check "database down: calls use the lease A holds, then 503 ($CODES)" \
  bash -c "[ $N200 -le 2 ] && [ $((N200 + N503)) = 12 ] && [ $N503 -ge 10 ]"
check "  the 503 is an Anthropic overloaded or api error with Retry-After" \
  bash -c "grep -qi '^retry-after: 1' '$WD_TMP/last.h' && grep -q 'governance database is unreachable' '$WD_TMP/last.json'"
check "  warden_governance_database_up is 0" bash -c "curl -s '$A_MET/metrics' | grep -q '^warden_governance_database_up 0'"
check "  the admin API answers 503 in its error shape" \
  bash -c "curl -s -o '$WD_TMP/adm.json' -w '%{http_code}' '$A_URL/admin/v1/keys' -H 'Authorization: Bearer $ADMIN_KEY' | grep -q 503 && grep -q '\"type\":\"unavailable_error\"' '$WD_TMP/adm.json'"
CODES=""
for i in $(seq 1 12); do CODES+="$(call "$C_URL" "$K7") "; done
check "fail_open replica: with the database down, calls past the 10-request budget's lease are admitted ($CODES)" \
  [ "$CODES" = "$(printf '200 %.0s' $(seq 12))" ]
check "  counted in warden_governance_fail_open_admits_total" \
  bash -c "curl -s '$C_MET/metrics' | grep -qE '^warden_governance_fail_open_admits_total (1[2-9]|[2-9][0-9])'"
wd_pg_launch
UP=0
for i in $(seq 1 60); do
  [ "$(call "$A_URL" "$K1")" = 200 ] && { UP=1; break; }
  sleep 0.1
done
check "database back: calls pass again" [ "$UP" = 1 ]
FO_SPENT=""
for i in $(seq 1 40); do
  FO_SPENT=$(sql "SELECT coalesce(sum(spent), 0) FROM gov.usage WHERE budget_id = ${B7#bud_}" 2>/dev/null || true)
  [ "${FO_SPENT:-0}" -ge 13 ] && break
  sleep 0.25
done
check "fail_open replica: the outage's spend is flushed once the database is back (spent $FO_SPENT: the 13 calls, past the limit of 10 as documented)" \
  [ "$FO_SPENT" = 13 ]
check "  and the exhausted budget then refuses (429)" [ "$(call "$C_URL" "$K7")" = 429 ]
wd_stop_warden "$C_PID" "$C_LOG"

# ======== the minute of the rate limit has ended: the key is admitted again (the period reset by itself)
K6=$("$WARDEN_BIN" keys create rpm-bot-2 --team eng 2>/dev/null | head -1)
K6_ID=$(sql "SELECT id FROM gov.keys WHERE name = 'rpm-bot-2' AND revoked_at IS NULL")
"$WARDEN_BIN" budgets create --scope key --subject "$K6_ID" --metric requests --period minute --limit 2 >/dev/null
sleep 0.5
CODES=""
for i in 1 2 3; do CODES+="$(call "$A_URL" "$K6") "; done
RA=$(sed -n 's/^retry-after: *\([0-9]*\).*/\1/Ip' "$WD_TMP/last.h")
sleep "$(( ${RA:-1} + 1 ))"
CODES+="| $(call "$A_URL" "$K6")"
check "a minute limit admits again once its minute ends ($CODES, after waiting Retry-After ${RA:-?} s)" \
  [ "$CODES" = "200 200 429 | 200" ]

# ======== the OpenAPI document against the live admin API
node "$WD_ROOT/tests/admin/openapi_check.mjs" "$A_URL" "$ADMIN_KEY" acme >"$WD_TMP/openapi.out" 2>&1 || true
while IFS= read -r line; do
  case "$line" in
    "ok - "*) ok "openapi: ${line#ok - }" ;;
    "not ok - "*) fail "openapi: ${line#not ok - }" ;;
  esac
done <"$WD_TMP/openapi.out"
check "openapi_check ran its checks" grep -q '^ok - ' "$WD_TMP/openapi.out"

wd_stop_warden "$A_PID" "$A_LOG"
wd_stop_warden "$B_PID" "$B_LOG"
wd_finish
