#!/usr/bin/env bash
# The RBAC matrix: every kind of principal (a static break-glass key, OIDC users by group and by subject, a user
# in no bound group, virtual keys with and without roles or with a narrower model list) against every kind of
# model name and every admin route, on one Warden with governance and audit on a throwaway PostgreSQL. Shows the
# whole matrix as a table, checks each cell (200 / 403 permission_error), the model list, and the audit records.
# Usage: bash tests/integration/test_rbac_matrix.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/pg.sh"

bash "$WD_ROOT/tests/idp/setup.sh" >/dev/null
export WARDEN_DEV_KEY="wk-unbound-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
BREAKGLASS="bg-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
TOK="node $WD_ROOT/tests/idp/tokens.mjs"
AUD=api://warden

wd_start_fake
wd_start_server ANTH_PORT node "$WD_ROOT/tests/fakes/fake_anthropic.mjs" --port 0
wd_start_server IDP_PORT node "$WD_ROOT/tests/idp/idp.mjs" --port 0 --path /oauth2/default
ISS="http://127.0.0.1:$IDP_PORT/oauth2/default"
wd_pg_start
wd_pg_setup_db
"$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL" >/dev/null

# Opus goes to a second provider, so that a provider-wide grant (ml: gemini/*) covers some Claude names and not
# all: grants by target and grants by name give different rows.
PORT=$(wd_free_port)
CFG="$WD_TMP/warden.rbac.yaml"
cat >"$CFG" <<YAML
listen: 127.0.0.1:$PORT
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: env://GEMINI_API_KEY
  claude:
    type: anthropic
    base_url: http://127.0.0.1:$ANTH_PORT
    keys:
      - secret: env://ANTH_KEY
models:
  tiers:
    opus: claude/claude-opus-4-5
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite
  aliases:
    fast: gemini/gemini-2.5-flash
auth:
  keys:
    - name: breakglass
      secret: env://WD_BREAKGLASS
    - name: dev
      secret: env://WARDEN_DEV_KEY
  oidc:
    - name: corp
      issuer: $ISS
      audience: $AUD
      wait: 15s
rbac:
  roles:
    admin: {models: "*", permissions: [keys:manage, budgets:manage, audit:read]}
    developer: {models: ["tier:sonnet", "tier:haiku"]}
    ml: {models: ["gemini/*"]}
    budget-admin: {permissions: [budgets:manage]}
    ci: {models: fast}
  bindings:
    - {key: breakglass, role: admin}
    - {group: engineering, role: developer}
    - {group: ml, role: ml}
    - {subject: ops-user, role: budget-admin}
    - {key: ci, role: ci}
governance:
  database: $WD_DB_ADMIN_URL
  migrate: false
  sync_interval: 200ms
audit:
  database: $WD_DB_ADMIN_URL
  spool: $WD_TMP/spool
  # a record no answer waited for would linger up to a second: the check that reads the records at once, after
  # the matrix, sees the answers' holds (audit.durable_answers) and not a fast writer
  batch_wait: 1s
$(wd_metrics_yaml)
YAML
WD_WARDEN_ENV=(WD_BREAKGLASS="$BREAKGLASS" ANTH_KEY=test-anthropic-key)
wd_start_warden "$CFG"

OUT="$WD_TMP/out"
# http METHOD PATH CRED [BODY] -> status on stdout, body in $OUT. A credential starting "eyJ" is a JWT (Bearer),
# anything else a key (x-api-key).
http() {
  local hdr
  case "$3" in eyJ*) hdr="authorization: Bearer $3" ;; *) hdr="x-api-key: $3" ;; esac
  local args=(-sS -o "$OUT" -w '%{http_code}' --max-time 30 -X "$1" -H "$hdr" -H 'anthropic-version: 2023-06-01')
  [ -n "${4:-}" ] && args+=(-H 'content-type: application/json' --data-binary "$4")
  curl "${args[@]}" "$WARDEN_URL$2" 2>/dev/null || echo 000
}
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT" "$1"; }

# ---- principals -------------------------------------------------------------------------------------------------
# OIDC users: IdP-signed tokens (the harness's real keys) with a distinct sub each, so the audit trail tells them
# apart; ops-user is bound by subject, nobody-user is in a group no binding names.
mint() { $TOK valid-rs256 --issuer "$ISS" --aud $AUD --keys-url "http://127.0.0.1:$IDP_PORT/_test/keys" --claims "$1"; }
T_ENG=$(mint '{"sub":"eng-user","groups":["engineering"]}')
T_ML=$(mint '{"sub":"ml-user","groups":["ml"]}')
T_OPS=$(mint '{"sub":"ops-user","groups":["operations"]}')
T_NOBODY=$(mint '{"sub":"nobody-user","groups":["sales"]}')

# virtual keys, made by the break-glass admin through the admin API
vkey() { # vkey BODY -> the wk- key on stdout
  local code
  code=$(http POST /admin/v1/keys "$BREAKGLASS" "$1")
  [ "$code" = 201 ] || { echo "creating a virtual key ($1) answered $code: $(cat "$OUT")" >&2; return 1; }
  json_field key
}
K_DEV=$(vkey '{"name":"vk-dev","roles":["developer"]}')
K_CI=$(vkey '{"name":"ci"}')
K_NONE=$(vkey '{"name":"vk-none"}')
K_NARROW=$(vkey '{"name":"vk-narrow","roles":["developer"],"models":["tier:haiku"]}')
check "four virtual keys made through the admin API" bash -c "[[ '$K_DEV$K_CI$K_NONE$K_NARROW' =~ ^(wk-[A-Za-z0-9_-]{43}){4}$ ]]"
# the governor learns of new keys by NOTIFY: wait until the last one authenticates
for _ in $(seq 1 50); do
  [ "$(http GET /anthropic/v1/models "$K_NARROW")" = 200 ] && break
  sleep 0.1
done

# name | credential | audit identity | how it holds its roles
P_NAME=(breakglass static-unbound oidc-eng oidc-ml oidc-ops oidc-nogroup vk-dev vk-ci vk-none vk-narrow)
P_CRED=("$BREAKGLASS" "$WARDEN_DEV_KEY" "$T_ENG" "$T_ML" "$T_OPS" "$T_NOBODY" "$K_DEV" "$K_CI" "$K_NONE" "$K_NARROW")
P_ID=(breakglass dev eng-user ml-user ops-user nobody-user vk-dev ci vk-none vk-narrow)

# ---- expectations ---------------------------------------------------------------------------------------------
# Two unknown names: claude-unknown-9 is routed natively to the anthropic provider (a claude* name that no tier
# or alias takes), so RBAC judges it as claude/claude-unknown-9 and only "*" lets it through, to the provider's
# 404; no-such-model routes nowhere, a 404 for everyone (no target, nothing for RBAC to judge).
MODELS=(claude-opus-4-5 claude-sonnet-4-5 claude-haiku-4-5 fast gemini/gemini-2.5-pro claude-unknown-9 no-such-model)
SHORT=(opus sonnet haiku fast gem-pro cl-unk9 no-such)
# The names /anthropic/v1/models can list (its tiers' Claude names and the aliases; direct provider names are not
# listed), in the order it lists them.
LISTABLE=(claude-opus-4-5 claude-sonnet-4-5 claude-haiku-4-5 fast)
# expect_model PRINCIPAL MODEL -> "allow RULE", "deny RULE" or "404" (a name that routes nowhere, for everyone)
expect_model() {
  local m="$2"
  [ "$m" = no-such-model ] && { echo 404; return; }
  case "$1" in
    breakglass) echo "allow rbac: role admin grants *" ;;
    oidc-eng | vk-dev)
      case "$m" in
        claude-sonnet-4-5) echo "allow rbac: role developer grants tier:sonnet" ;;
        claude-haiku-4-5) echo "allow rbac: role developer grants tier:haiku" ;;
        *) echo "deny rbac: no role held grants this model" ;;
      esac ;;
    oidc-ml) # gemini/* grants the target, whatever name led to it; opus is served by the claude provider
      case "$m" in
        claude-opus-4-5 | claude-unknown-9) echo "deny rbac: no role held grants this model" ;;
        *) echo "allow rbac: role ml grants gemini/*" ;;
      esac ;;
    vk-ci)
      case "$m" in
        fast) echo "allow rbac: role ci grants fast" ;;
        *) echo "deny rbac: no role held grants this model" ;;
      esac ;;
    vk-narrow) # role developer, key list tier:haiku: only what both allow
      case "$m" in
        claude-haiku-4-5) echo "allow rbac: role developer grants tier:haiku" ;;
        claude-sonnet-4-5) echo "deny virtual key vk-narrow: not in its models" ;;
        *) echo "deny rbac: no role held grants this model" ;;
      esac ;;
    oidc-ops) echo "deny rbac: no role held grants this model" ;; # budget-admin holds no model
    *) echo "deny rbac: no role held (default deny)" ;;
  esac
}
# expect_status PRINCIPAL MODEL -> the HTTP status the call should get
expect_status() {
  local e
  e=$(expect_model "$1" "$2")
  case "$e" in
    404) echo 404 ;;
    allow*) [ "$2" = claude-unknown-9 ] && echo 404 || echo 200 ;; # the provider does not know it
    *) echo 403 ;;
  esac
}
ROUTES=("GET /admin/v1/keys" "POST /admin/v1/keys" "GET /admin/v1/teams" "POST /admin/v1/teams"
        "GET /admin/v1/budgets" "POST /admin/v1/budgets")
EVENTS=(keys.list keys.create teams.list teams.create budgets.list budgets.create)
RSHORT=("GET keys" "POST keys" "GET teams" "POST teams" "GET budgets" "POST budgets")
perm_of() { case "$1" in *keys*) echo keys:manage ;; *) echo budgets:manage ;; esac; }
# expect_admin PRINCIPAL ROUTE -> 1 when its roles hold the route's permission
expect_admin() {
  case "$1" in
    breakglass) echo 1 ;;
    oidc-ops) [ "$(perm_of "$2")" = budgets:manage ] && echo 1 || echo 0 ;;
    *) echo 0 ;;
  esac
}

# ---- the model matrix -----------------------------------------------------------------------------------------
declare -A CELL
for i in "${!P_NAME[@]}"; do
  p=${P_NAME[$i]}
  for j in "${!MODELS[@]}"; do
    m=${MODELS[$j]}
    code=$(http POST /anthropic/v1/messages "${P_CRED[$i]}" \
      "{\"model\":\"$m\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"rbac matrix\"}]}")
    exp=$(expect_model "$p" "$m")
    CELL[$p,$m]=$code
    case "$exp" in
      404)
        check "$p x $m: 404 not_found_error, the name routes nowhere (got $code)" \
          bash -c "[ '$code' = 404 ] && grep -q '\"type\":\"not_found_error\"' '$OUT'" ;;
      allow*)
        if [ "$m" = claude-unknown-9 ]; then
          check "$p x $m: allowed, so the provider's 404 not_found_error (got $code)" \
            bash -c "[ '$code' = 404 ] && grep -q '\"type\":\"not_found_error\"' '$OUT'"
        else
          check "$p x $m: 200 allowed (got $code)" [ "$code" = 200 ]
        fi ;;
      deny*)
        check "$p x $m: 403 permission_error naming the model (got $code: $(head -c 160 "$OUT"))" \
          bash -c "[ '$code' = 403 ] && python3 -c '
import json,sys
e=json.load(open(sys.argv[1]))
sys.exit(0 if e[\"type\"]==\"error\" and e[\"error\"][\"type\"]==\"permission_error\" and sys.argv[2] in e[\"error\"][\"message\"] else 1)' '$OUT' '$m'" ;;
    esac
  done
done

# ---- the model list: exactly the listable names the principal may call ------------------------------------------
# README: the list "shows what the caller may use"; for a virtual key with a model list that is what its roles
# and its own list both allow, as on the calls (vk-narrow: haiku only).
declare -A LISTED
for i in "${!P_NAME[@]}"; do
  p=${P_NAME[$i]}
  want=()
  for m in "${LISTABLE[@]}"; do [[ "$(expect_model "$p" "$m")" == allow* ]] && want+=("$m"); done
  code=$(http GET /anthropic/v1/models "${P_CRED[$i]}")
  got=$(python3 -c 'import json,sys; print(" ".join(m["id"] for m in json.load(open(sys.argv[1]))["data"]))' "$OUT" \
    2>/dev/null || echo "?")
  LISTED[$p]="$got"
  [ "$got" = "${want[*]:-}" ] || LISTED[$p]="$got ! (should be: ${want[*]:-nothing})"
  check "$p: /anthropic/v1/models lists exactly the names it may call [${want[*]:-}] (got $code [$got])" \
    bash -c "[ '$code' = 200 ] && [ '$got' = '${want[*]:-}' ]"
done

# ---- the admin matrix -----------------------------------------------------------------------------------------
declare -A ACELL
for i in "${!P_NAME[@]}"; do
  p=${P_NAME[$i]}
  for r in "${!ROUTES[@]}"; do
    route=${ROUTES[$r]}
    method=${route%% *}
    path=${route#* }
    body=""
    case "$route" in
      "POST /admin/v1/keys") body="{\"name\":\"mx-$p\"}" ;;
      "POST /admin/v1/teams") body="{\"name\":\"mx-$p\",\"org\":\"rbac-matrix\"}" ;;
      "POST /admin/v1/budgets")
        body="{\"scope\":\"team\",\"subject\":\"mx-$p\",\"metric\":\"requests\",\"period\":\"daily\",\"limit\":1000}" ;;
    esac
    code=$(http "$method" "$path" "${P_CRED[$i]}" "$body")
    ACELL[$p,$r]=$code
    want=200
    [ "$method" = POST ] && want=201
    if [ "$(expect_admin "$p" "$route")" = 1 ]; then
      check "$p x $route: $want (got $code)" [ "$code" = "$want" ]
    else
      check "$p x $route: 403 permission_error naming $(perm_of "$route") (got $code: $(head -c 160 "$OUT"))" \
        bash -c "[ '$code' = 403 ] && grep -q '\"type\":\"permission_error\"' '$OUT' && grep -q '$(perm_of "$route")' '$OUT'"
    fi
  done
done

# the trail as the last answer left it (checked below, once anything that lingered would have been written)
na=$(wd_psql postgres -At -c "SELECT count(*) FROM audit.records WHERE kind IN ('auth','authz','call','admin')")

# ---- the table ------------------------------------------------------------------------------------------------
# a cell shows the status, with "!" where it differs from what the config grants
echo "# model calls (status; ! = not as expected)"
printf '# %-15s' principal
for s in "${SHORT[@]}"; do printf ' %-8s' "$s"; done
printf ' %s\n' "/models lists"
for p in "${P_NAME[@]}"; do
  printf '# %-15s' "$p"
  for m in "${MODELS[@]}"; do
    w=$(expect_status "$p" "$m")
    c=${CELL[$p,$m]}
    [ "$c" = "$w" ] || c="$c!"
    printf ' %-8s' "$c"
  done
  printf ' %s\n' "${LISTED[$p]:-}"
done
echo "# admin routes (status; ! = not as expected)"
printf '# %-15s' principal
for s in "${RSHORT[@]}"; do printf ' %-12s' "$s"; done
echo
for p in "${P_NAME[@]}"; do
  printf '# %-15s' "$p"
  for r in "${!ROUTES[@]}"; do
    w=403
    if [ "$(expect_admin "$p" "${ROUTES[$r]}")" = 1 ]; then
      w=200
      [ "${ROUTES[$r]%% *}" = POST ] && w=201
    fi
    c=${ACELL[$p,$r]}
    [ "$c" = "$w" ] || c="$c!"
    printf ' %-12s' "$c"
  done
  echo
done

# ---- every decision is an audit record ------------------------------------------------------------------------
q() { wd_psql postgres -At -F '|' -c "$1"; }
NP=${#P_NAME[@]}
# audit.durable_answers: each answer above (a model call, an admin action or refusal) came once its record was
# durable, so the records are all there at once, with no waiting
sleep 1.5 # past batch_wait: whatever was still in memory is in the database now
nb=$(q "SELECT count(*) FROM audit.records WHERE kind IN ('auth','authz','call','admin')")
check "audit: every decision's record was durable when its answer came ($na read at once, $nb after 1.5 s)" [ "$na" = "$nb" ]
for _ in $(seq 1 100); do
  na=$(q "SELECT count(*) FROM audit.records WHERE kind='authz'" 2>/dev/null || echo 0)
  nd=$(q "SELECT count(*) FROM audit.records WHERE kind='admin'" 2>/dev/null || echo 0)
  [ "$na" -ge $((NP * 6)) ] && [ "$nd" -ge $((NP * 6)) ] && break
  sleep 0.1
done
q "SELECT coalesce(subject,''), coalesce(key_name,''), model_requested, decision, rule FROM audit.records
   WHERE kind='authz' ORDER BY chain_id, seq" >"$WD_TMP/authz.rows"
q "SELECT coalesce(subject,''), coalesce(key_name,''), event, decision, rule FROM audit.records
   WHERE kind='admin' ORDER BY chain_id, seq" >"$WD_TMP/admin.rows"
# rows_for FILE ID FIELD3 -> "decision|rule" lines of the records of principal ID (its subject or key name)
rows_for() { awk -F'|' -v id="$2" -v f="$3" '($1 == id || $2 == id) && $3 == f { print $4 "|" $5 }' "$1"; }
for i in "${!P_NAME[@]}"; do
  p=${P_NAME[$i]}
  for m in "${MODELS[@]}"; do
    exp=$(expect_model "$p" "$m")
    [ "$exp" = 404 ] && continue
    want="${exp%% *}|${exp#* }"
    got=$(rows_for "$WD_TMP/authz.rows" "${P_ID[$i]}" "$m" | tr '\n' ';')
    check "audit: $p x $m is one authz record: $want (got ${got:-none})" [ "$got" = "$want;" ]
  done
  for r in "${!ROUTES[@]}"; do
    d=deny
    [ "$(expect_admin "$p" "${ROUTES[$r]}")" = 1 ] && d=allow
    # the rule names the permission the route needs (the deny's as "rbac: PERM")
    perm=$(perm_of "${ROUTES[$r]}")
    # (sort -u: the break-glass key's keys.create also counts the four virtual keys made above)
    got=$(rows_for "$WD_TMP/admin.rows" "${P_ID[$i]}" "${EVENTS[$r]}" | sort -u | tr '\n' ';')
    check "audit: $p x ${ROUTES[$r]} is an admin record ${EVENTS[$r]}, decision $d, rule naming $perm (got ${got:-none})" \
      bash -c "[[ '$got' =~ ^$d\\|([^\\|;]*\\ )?$perm\;$ ]]"
  done
done
# a denied call never reaches a provider: its call record is of class permission, without an upstream status
N403=0
for k in "${!CELL[@]}"; do [ "${CELL[$k]}" = 403 ] && N403=$((N403 + 1)); done
NPERM=$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND error_class='permission'")
NUP=$(q "SELECT count(*) FROM audit.records WHERE kind='call' AND error_class='permission' AND upstream_status IS NOT NULL")
check "audit: the $N403 denied calls are $NPERM call records of class permission, none with a provider answer ($NUP)" \
  bash -c "[ '$NPERM' = '$N403' ] && [ '$NUP' = 0 ]"

wd_stop_warden
wd_finish
