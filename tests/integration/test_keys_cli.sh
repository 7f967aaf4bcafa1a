#!/usr/bin/env bash
# `warden keys|teams|budgets` against the strict fake of the admin API (tests/admin/fake_admin.mjs): what the CLI
# sends (method, path, Authorization header, JSON bodies with awkward strings), what it prints (the new key alone on
# stdout, aligned tables, field lines, terminal-safe text), exit codes (0, 1 with the server's message, 2 for usage),
# the admin key never on stderr; then the OpenAPI document and the fake against each other (openapi_check.mjs).
# Usage: bash tests/integration/test_keys_cli.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

bash "$WD_ROOT/tests/admin/setup.sh" >/dev/null
ADM="adm-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
LOG="$WD_TMP/admin.log"
wd_start_server ADMIN_PORT node "$WD_ROOT/tests/admin/fake_admin.mjs" --port 0 --key "$ADM" --log "$LOG"
export WARDEN_URL="http://127.0.0.1:$ADMIN_PORT" WARDEN_ADMIN_KEY="$ADM"

# run NAME ARGS...: the CLI's stdout in $WD_TMP/NAME.out, stderr in NAME.err, exit code in RC
RC=0
run() {
  local n="$1"; shift
  RC=0
  "$WARDEN_BIN" "$@" >"$WD_TMP/$n.out" 2>"$WD_TMP/$n.err" || RC=$?
}
out() { cat "$WD_TMP/$1.out"; }
err() { cat "$WD_TMP/$1.err"; }
# last FIELD [PYEXPR]: a field of the last request the fake logged (PYEXPR on the parsed body when FIELD is body)
last() {
  python3 - "$LOG" "$@" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
if len(sys.argv) > 3:
    b = json.loads(r["body"])
    print(json.dumps(eval(sys.argv[3], {"b": b})))
else:
    print(r[sys.argv[2]])
PY
}
expect_rc() { if [ "$RC" -eq "$1" ]; then ok "$2 (exit $1)"; else fail "$2: exit $RC, wanted $1: $(err "$3" | head -3)"; fi; }

# --- teams ---
run team_create teams create eng --org acme
expect_rc 0 "teams create" team_create
check "teams create prints the team's fields" grep -qx 'org: acme' "$WD_TMP/team_create.out"
check "teams create: POST /admin/v1/teams" test "$(last method) $(last path)" = "POST /admin/v1/teams"
check "the CLI sends the admin key as Authorization: Bearer" test "$(last authorization)" = "Bearer $ADM"
check "  ... and no x-api-key" test "$(last x_api_key)" = "None"
check "a JSON body goes with Content-Type: application/json" test "$(last content_type)" = "application/json"
check "  ... of exactly the fields given" test "$(last body 'sorted(b.items())')" = '[["name", "eng"], ["org", "acme"]]'
run team_dup teams create eng --org acme
expect_rc 1 "a duplicate team fails" team_dup
check "  ... with the server's message and type on stderr" grep -q 'a team named eng exists (HTTP 409 conflict_error)' "$WD_TMP/team_dup.err"

# --- keys ---
OWNER=$'O"Brien \\ \xc3\xbc \x1b[31mred'
run key_create keys create alice --team eng --owner "$OWNER" --model 'claude-*' --model gpt-4o --role dev \
  --expires 2030-01-31T00:00:00Z
expect_rc 0 "keys create" key_create
K=$(out key_create | head -1)
check "keys create prints the new key alone on stdout's first line" \
  bash -c '[[ "$1" =~ ^wk-[A-Za-z0-9_-]{43}$ ]] && [ "$(wc -l <"$2")" -eq 1 ]' _ "$K" "$WD_TMP/key_create.out"
check "  ... and its id and fields on stderr" grep -qE '^id: key_[0-9a-f]{16}$' "$WD_TMP/key_create.err"
check "  ... with the prefix that recognises it" grep -qx "prefix: ${K:0:11}" "$WD_TMP/key_create.err"
KID=$(sed -n 's/^id: //p' "$WD_TMP/key_create.err")
check "keys create sends models and roles as arrays, in order" \
  test "$(last body '[b["models"], b["roles"], b["team"], b["expires_at"]]')" = '[["claude-*", "gpt-4o"], ["dev"], "eng", "2030-01-31T00:00:00Z"]'
check "  ... and a string with quotes, backslash, UTF-8 and ESC escaped as JSON (the server reads it back whole)" \
  python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]); sys.exit(json.loads(r["body"])["owner"] != sys.argv[2])' "$LOG" "$OWNER"
check "  ... no ESC byte of a server string reaches the terminal" bash -c '! grep -q $'"'"'\x1b'"'"' "$1"' _ "$WD_TMP/key_create.err"
check "  ... the owner still shown, its control byte as '?'" grep -qF 'owner: O"Brien \ ü ?[31mred' "$WD_TMP/key_create.err"
K2=$("$WARDEN_BIN" keys create bob 2>/dev/null | head -1)
check 'K=$(warden keys create x | head -1) gives the key' bash -c '[[ "$1" =~ ^wk- ]]' _ "$K2"
check "  ... a body of the name alone" test "$(last body 'sorted(b)')" = '["name"]'
run key_dup keys create alice
expect_rc 1 "a key name in use fails" key_dup
run key_badname keys create 'a"b\c'
expect_rc 1 "a name the server refuses fails" key_badname
check "  ... the name reached the server intact" test "$(last body 'b["name"]')" = '"a\"b\\c"'
check "  ... the server's rule on stderr" grep -q 'name: 1-128 of' "$WD_TMP/key_badname.err"

run key_list keys list
expect_rc 0 "keys list" key_list
check "keys list: a header row, then newest first" \
  bash -c 'head -1 "$1" | grep -qE "^ID +NAME +TEAM +OWNER +PREFIX +CREATED_AT +EXPIRES_AT +REVOKED_AT$" && sed -n 2p "$1" | grep -q " bob "' _ "$WD_TMP/key_list.out"
check "  ... aligned: NAME starts at one column on every row" \
  bash -c 'c=$(head -1 "$1" | awk "{print index(\$0, \"NAME\")}"); awk -v c="$c" "NR>1 && substr(\$0, c-2, 2) != \"  \" {exit 1} NR>1 && substr(\$0, c, 1) == \" \" {exit 1}" "$1"' _ "$WD_TMP/key_list.out"
check "  ... no key's secret in the list" bash -c '! grep -qF -- "$1" "$2"' _ "$K" "$WD_TMP/key_list.out"
run key_list_team keys list --team eng --json
expect_rc 0 "keys list --team --json" key_list_team
check "  ... GET /admin/v1/keys?team=eng" test "$(last path)" = "/admin/v1/keys?team=eng"
check "  ... prints the server's JSON as is (one key, of team eng)" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; sys.exit(not (len(d)==1 and d[0]["team"]=="eng"))' "$WD_TMP/key_list_team.out"
run key_show keys show "$KID"
expect_rc 0 "keys show" key_show
check "  ... GET /admin/v1/keys/{id}, field lines" \
  bash -c '[ "$1" = "GET /admin/v1/keys/$2" ] && grep -qx "models: claude-\*,gpt-4o" "$3" && grep -qx "revoked_at: -" "$3"' _ \
  "$(last method) $(last path)" "$KID" "$WD_TMP/key_show.out"
run key_esc keys show 'a/b?c d'
expect_rc 1 "keys show of an unknown id" key_esc
check "  ... the id is percent-encoded into one path segment" test "$(last path)" = "/admin/v1/keys/a%2Fb%3Fc%20d"
check "  ... a not_found_error on stderr" grep -q 'not_found_error' "$WD_TMP/key_esc.err"

BADKEY="wrongsecret-$RANDOM$RANDOM"
run key_badauth keys show "$KID" --key "$BADKEY"
expect_rc 1 "a wrong admin key fails" key_badauth
check "  ... --key overrides WARDEN_ADMIN_KEY" test "$(last authorization)" = "Bearer $BADKEY"
check "  ... the 401's message on stderr, without the key" \
  bash -c 'grep -q authentication_error "$2" && ! grep -qF -- "$1" "$2" && ! grep -qF -- "$1" "$3"' _ "$BADKEY" "$WD_TMP/key_badauth.err" "$WD_TMP/key_badauth.out"
run key_down keys list --url "http://127.0.0.1:1/" --key "$BADKEY"
expect_rc 1 "an admin API that does not answer" key_down
check "  ... the reason on stderr, without the key" \
  bash -c 'grep -q "did not answer" "$2" && ! grep -qF -- "$1" "$2"' _ "$BADKEY" "$WD_TMP/key_down.err"
run slash keys list --url "$WARDEN_URL/"
expect_rc 0 "a --url with a trailing slash" slash

# --- budgets ---
run bud_usd budgets create --scope team --subject eng --metric usd --period daily --limit 0.1
expect_rc 0 "budgets create (usd)" bud_usd
check "  ... the limit goes as the decimal typed (0.1, not its binary neighbour)" bash -c 'tail -1 "$1" | grep -qF "\\\"limit\\\":0.1}"' _ "$LOG"
run bud_req budgets create --scope key --subject "$KID" --metric requests --period minute --limit 60
expect_rc 0 "budgets create (requests per minute)" bud_req
check "  ... an integer limit" test "$(last body 'b["limit"]')" = "60"
run bud_list budgets list
expect_rc 0 "budgets list" bud_list
check "  ... a table of both" bash -c 'head -1 "$1" | grep -qE "^ID +SCOPE +SUBJECT +METRIC +PERIOD +LIMIT +SPENT +RESETS_AT$" && [ "$(wc -l <"$1")" -eq 3 ]' _ "$WD_TMP/bud_list.out"
run bud_list_f budgets list --scope team --subject eng
check "budgets list --scope --subject filters by query" test "$(last path)" = "/admin/v1/budgets?scope=team&subject=eng"
run bud_reset budgets reset bud_1
expect_rc 0 "budgets reset" bud_reset
check "  ... POST /admin/v1/budgets/bud_1/reset, no body" test "$(last method) $(last path) [$(last body)]" = "POST /admin/v1/budgets/bud_1/reset []"
run bud_show budgets show bud_1
check "budgets show" grep -qx 'spent: 0' "$WD_TMP/bud_show.out"
run bud_del budgets delete bud_2
expect_rc 0 "budgets delete" bud_del
check "  ... DELETE /admin/v1/budgets/bud_2" test "$(last method) $(last path)" = "DELETE /admin/v1/budgets/bud_2"
run bud_gone budgets show bud_2
expect_rc 1 "a deleted budget is gone" bud_gone

# --- usage errors (exit 2, nothing sent) ---
n_before=$(wc -l <"$LOG")
run u1 keys create; expect_rc 2 "keys create without a name" u1
run u2 keys frob; expect_rc 2 "an unknown keys subcommand" u2
run u3 budgets create --scope galaxy --subject x --metric usd --period daily --limit 1; expect_rc 2 "a bad --scope" u3
run u4 budgets create --scope key --subject x --metric requests --period daily --limit 1.5; expect_rc 2 "a fractional requests limit" u4
run u5 budgets create --scope key --subject x --metric usd --period daily --limit 1.1234567; expect_rc 2 "a usd limit of 7 decimals" u5
run u6 keys list --kye="$BADKEY"; expect_rc 2 "an unknown option" u6
check "  ... its value not echoed (a mistyped --key=SECRET)" bash -c '! grep -qF -- "$1" "$2"' _ "$BADKEY" "$WD_TMP/u6.err"
RC=0; env -u WARDEN_ADMIN_KEY "$WARDEN_BIN" keys list >"$WD_TMP/u7.out" 2>"$WD_TMP/u7.err" || RC=$?
expect_rc 2 "no admin key at all" u7
run u8 teams create a b; expect_rc 2 "teams create with two names" u8
check "usage errors send nothing" test "$(wc -l <"$LOG")" -eq "$n_before"
check "warden --help lists keys, teams and budgets" \
  bash -c '"$1" --help | grep -q "warden keys create NAME" && "$1" --help | grep -q "warden teams create" && "$1" --help | grep -q "warden budgets create"' _ "$WARDEN_BIN"

# --- revoke, team delete ---
run team_busy teams delete eng
expect_rc 1 "teams delete while a live key is in it" team_busy
run key_revoke keys revoke "$KID"
expect_rc 0 "keys revoke" key_revoke
check "  ... DELETE /admin/v1/keys/{id}, revoked_at shown" \
  bash -c '[ "$1" = "DELETE /admin/v1/keys/$2" ] && grep -qE "^revoked_at: [0-9]{4}-" "$3"' _ "$(last method) $(last path)" "$KID" "$WD_TMP/key_revoke.out"
run team_del teams delete eng
expect_rc 0 "teams delete" team_del
run team_list teams list
check "teams list: the header alone now" test "$(out team_list)" = "NAME  ORG  CREATED_AT"

# A server that ends its answers with a newline (JSON allows trailing white space).
wd_start_server NL_PORT node "$WD_ROOT/tests/admin/fake_admin.mjs" --port 0 --key "$ADM" --newline
run nl_create keys create carol --url "http://127.0.0.1:$NL_PORT"
expect_rc 0 "keys create against answers ending in a newline" nl_create
run nl_list keys list --url "http://127.0.0.1:$NL_PORT"
check "  ... and keys list" grep -q ' carol ' "$WD_TMP/nl_list.out"

# HTTPS with a private CA: --tls-ca trusts it; without it the certificate is refused.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$WD_TMP/tls.key" -out "$WD_TMP/tls.crt" 2>/dev/null
wd_start_server TLS_PORT node "$WD_ROOT/tests/admin/fake_admin.mjs" --port 0 --key "$ADM" \
  --tls-cert "$WD_TMP/tls.crt" --tls-key "$WD_TMP/tls.key"
run tls_ok teams list --url "https://127.0.0.1:$TLS_PORT" --tls-ca "$WD_TMP/tls.crt"
expect_rc 0 "teams list over HTTPS with --tls-ca" tls_ok
run tls_no teams list --url "https://127.0.0.1:$TLS_PORT"
expect_rc 1 "  ... and without it, the server's certificate refused" tls_no
check "  ... saying why" grep -qi 'certificate' "$WD_TMP/tls_no.err"

# The admin key never went to stderr or stdout, whatever happened.
check "the admin key appears in no output of the CLI" bash -c '! grep -rlF -- "$1" "$2"/*.err "$2"/*.out' _ "$ADM" "$WD_TMP"
check "no sanitizer report from the CLI" bash -c '! grep -lE "AddressSanitizer|LeakSanitizer|runtime error:" "$1"/*.err' _ "$WD_TMP"

# --- the OpenAPI document against the fake ---
if node "$WD_ROOT/tests/admin/openapi_check.mjs" "$WARDEN_URL" "$ADM" acme >"$WD_TMP/openapi.out" 2>&1; then
  ok "openapi_check.mjs against the fake ($(tail -1 "$WD_TMP/openapi.out"))"
else
  fail "openapi_check.mjs against the fake"; grep -v '^ok - ' "$WD_TMP/openapi.out" >&2
fi

wd_finish
