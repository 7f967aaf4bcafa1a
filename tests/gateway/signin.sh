# The gateway sign-in's test setup shared by test_claude_signin.sh, test_signin_replicas.sh and the e2e
# test_claude_code_signin.sh (source after tests/lib.sh): the IdP of tests/gateway/idp.mjs and the auth.oidc and
# signin sections of a Warden config that signs in at it.
# gw_start_idp BASE -> IDP_PORT, ISSUER: the IdP, its client's redirect {BASE}/oauth/callback
# gw_signin_yaml BASE [COLLECTOR_URL] -> the YAML (two policies by group; Claude Code's telemetry relayed when given)
# GW_ENV: the environment Warden needs for it (add to WD_WARDEN_ENV)
GW_ENV=(WD_GW_SECRET=claude-gateway-secret-0123456789 WD_SESSION_SECRET=warden-session-secret-0123456789abcdef)

gw_start_idp() {
  bash "$WD_ROOT/tests/idp/setup.sh" >/dev/null
  wd_start_server IDP_PORT node "$WD_ROOT/tests/gateway/idp.mjs" "$1/oauth/callback"
  ISSUER="http://127.0.0.1:$IDP_PORT"
}

gw_signin_yaml() {
  cat <<YAML
auth:
  oidc:
    - name: idp
      issuer: $ISSUER
      audience: warden
signin:
  public_url: $1
  issuer: idp
  client_id: claude-gateway
  client_secret: env://WD_GW_SECRET
  scopes: [openid, profile, email, offline_access, groups]
  prompt: consent
  session_secret: env://WD_SESSION_SECRET${2:+
  telemetry_forward: $2}
  policies:
    - groups: [engineering]
      settings:
        env: {WARDEN_POLICY: engineering}
        permissions: {deny: ["Bash(rm -rf *)"]}
    - settings:
        env: {WARDEN_POLICY: default}
YAML
}

# gw_probe BASE LABEL: tests/gateway/probe.mjs's whole walk against BASE, each of its checks one ok/not ok line
# (prefixed with LABEL); the transcript in $WD_TMP/probe.jsonl, the checks in $WD_TMP/checks.txt
gw_probe() {
  node "$WD_ROOT/tests/gateway/probe.mjs" "$1" >"$WD_TMP/probe.jsonl" 2>"$WD_TMP/probe.err" || true
  python3 - "$WD_TMP/probe.jsonl" "$2" <<'PY' >"$WD_TMP/checks.txt"
import json, sys
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except Exception:
        continue
    if "check" in o:
        print(("ok - " if o["ok"] else "not ok - ") + sys.argv[2] + ": " + o["check"]
              + ("" if o["ok"] else ": " + json.dumps(o.get("detail"))[:300]))
PY
  local l
  while IFS= read -r l; do
    case "$l" in "ok - "*) ok "${l#ok - }" ;; "not ok - "*) fail "${l#not ok - }" ;; esac
  done <"$WD_TMP/checks.txt"
}
