#!/usr/bin/env bash
# Real Claude Code signs in to Warden with its own /login "Cloud gateway" screen (docs/claude-gateway-protocol.md):
# driven in tmux as a developer would, the browser step played with HTTP requests at the IdP
# (tests/gateway/probe.mjs --approve), then `claude -p` does the e2e task (Write, two parallel Reads, Edit, final text)
# through Warden on the Gemini fake with no API key anywhere: only the session token Warden minted, refreshed by
# Claude Code through Warden and the IdP. Managed settings are fetched and approved; Warden's access log names the
# developer.
# Usage: bash tests/e2e/test_claude_code_signin.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/gateway/signin.sh"
E2E="$WD_ROOT/tests/e2e"
source "$E2E/claude_lib.sh"

bash "$E2E/setup.sh"
command -v tmux >/dev/null || { fail "tmux is installed (scripts/deps.sh)"; wd_finish; exit 1; }

wd_start_fake
mkdir -p "$WD_TMP/otlp"
wd_start_server OTLP_PORT node "$WD_ROOT/tests/fakes/fake_otlp.mjs" --port 0 --dir "$WD_TMP/otlp"
PORT=$(wd_free_port)
BASE="http://127.0.0.1:$PORT/anthropic"
gw_start_idp "$BASE"
CFG="$WD_TMP/warden.yaml"
cat >"$CFG" <<YAML
listen: 127.0.0.1:$PORT
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: env://GEMINI_API_KEY
models:
  tiers:
    opus: gemini/gemini-2.5-pro
    sonnet: gemini/gemini-2.5-flash
    haiku: gemini/gemini-2.5-flash-lite
$(gw_signin_yaml "$BASE" "http://127.0.0.1:$OTLP_PORT")
rbac:
  roles:
    developer: {models: ["tier:opus", "tier:sonnet", "tier:haiku"]}
  bindings:
    - {group: engineering, role: developer}
YAML
WD_WARDEN_ENV=("${GW_ENV[@]}")
wd_start_warden "$CFG"

HOME_DIR="$WD_TMP/home"
WORK="$WD_TMP/work"
mkdir -p "$HOME_DIR/.claude" "$WORK"
printf '{"hasCompletedOnboarding":true,"projects":{"%s":{"hasTrustDialogAccepted":true}}}' "$WORK" >"$HOME_DIR/.claude.json"
printf '{"forceLoginMethod":"gateway","forceLoginGatewayUrl":"%s"}' "$BASE" >"$HOME_DIR/.claude/settings.json"

# ---- /login in tmux ----
SOCK="$WD_TMP/tmux.sock"
TM() { tmux -S "$SOCK" "$@"; }
cleanup_tmux() { tmux -S "$SOCK" kill-server >/dev/null 2>&1 || true; }
WD_CLEANUP_HOOKS+=(cleanup_tmux)
TM new-session -d -x 160 -y 50 "cd '$WORK' && env -i PATH=/usr/bin:/bin HOME='$HOME_DIR' TERM=xterm-256color \
  DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_ERROR_REPORTING=1 \
  '$CLAUDE' 2>'$WD_TMP/tui.err'; sleep 30"
pane() { TM capture-pane -p -t 0 2>/dev/null || true; }
# wait_pane REGEX [SECONDS]: until the screen shows REGEX
wait_pane() {
  local i
  for i in $(seq 1 $(( ${2:-30} * 5 ))); do
    pane | grep -qE "$1" && return 0
    sleep 0.2
  done
  echo "# screen, waiting for /$1/:" >&2
  pane | sed 's/^/#   /' >&2
  return 1
}
check "Claude Code starts in tmux, not signed in" wait_pane '(>|❯)' 40
TM send-keys -t 0 '/login' Enter
check "/login offers the Cloud gateway screen with Warden's URL" wait_pane "127.0.0.1:$PORT" 20
TM send-keys -t 0 Enter
check "it asks to trust the gateway (http on loopback)" wait_pane '[Tt]rust' 20
TM send-keys -t 0 Up Enter
check "it shows a device code" wait_pane 'Code: +[A-Z]{4}-[A-Z]{4}' 20
UC=$(pane | grep -oE 'Code: +[A-Z]{4}-[A-Z]{4}' | head -1 | sed 's/Code: *//')
node "$WD_ROOT/tests/gateway/probe.mjs" "$BASE" --approve "$UC" alice >"$WD_TMP/approve.out" 2>&1 || true
check "alice approves code $UC in the browser (Warden's page, the IdP, Warden's callback)" \
  bash -c "grep -q '\"step\": *\"browser: gateway callback\".*\"status\": *200' '$WD_TMP/approve.out' && grep -q 'signin: alice signed in' '$WARDEN_LOG'"
check "Claude Code says it is connected" wait_pane 'Connected' 20
TM send-keys -t 0 Enter
if wait_pane '[Mm]anaged settings' 15; then
  TM send-keys -t 0 Down Enter
  ok "the managed settings need approval, and are approved"
else
  fail "the managed settings need approval, and are approved"
fi
sleep 2
CRED="$HOME_DIR/.claude/.credentials.json"
jcheck "Claude Code stored Warden's session: url, a session JWT, the IdP's refresh token, the token endpoint" "$CRED" "
  const g = D.enterpriseGateway || {};
  const ok = g.url === '$BASE' && typeof g.jwt === 'string' && g.jwt.split('.').length === 3 &&
    typeof g.idpRefreshToken === 'string' && g.tokenEndpoint === '$BASE/oauth/token';
  if (!ok) why(Object.keys(g));
  return ok;"
TM send-keys -t 0 '/exit' Enter
sleep 1
cleanup_tmux

# ---- the e2e task, signed in, no API key ----
FINAL_TEXT="Done: notes.txt was written, read twice and edited."
file="$WORK/notes.txt"
script=$(FILE="$file" FINAL="$FINAL_TEXT" node -e '
  const f = process.env.FILE;
  console.log(JSON.stringify({ mode: "agent", text_signature: "empty_part", steps: [
    { call: { name: "Write", args: { file_path: f, content: "alpha\nbeta\n" } } },
    { calls: [ { name: "Read", args: { file_path: f } }, { name: "Read", args: { file_path: f } } ] },
    { call: { name: "Edit", args: { file_path: f, old_string: "beta", new_string: "gamma" } } },
    { text: process.env.FINAL },
  ] }));')
curl -s -o /dev/null -X POST "$FAKE_URL/_fake/reset"
curl -s -o /dev/null -X POST "$FAKE_URL/_fake/script" -H 'content-type: application/json' -d "$script"
# the stored session is made to expire now: Claude Code refreshes it through Warden (and the IdP) first
python3 - "$CRED" <<'PY'
import json, sys, time
p = sys.argv[1]
d = json.load(open(p))
d["enterpriseGateway"]["expiresAt"] = int(time.time() * 1000) + 2000
json.dump(d, open(p, "w"))
PY
OUT="$WD_TMP/claude.json"
rc=0
(cd "$WORK" && timeout -k 5 180 env -i PATH=/usr/bin:/bin HOME="$HOME_DIR" \
  DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  "$CLAUDE" -p "Create notes.txt with two lines, read it back twice, then change beta to gamma." \
  --model claude-sonnet-4-5 --output-format json --allowedTools Write,Read,Edit </dev/null >"$OUT" 2>"$OUT.err") || rc=$?
[ -s "$OUT" ] && node -e 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))' "$OUT" 2>/dev/null || echo '{}' >"$OUT"
if [ "$rc" = 0 ]; then ok "claude -p exits 0, signed in to Warden only"; else
  fail "claude -p exits 0, signed in to Warden only (got $rc)"; tail -20 "$OUT.err" >&2; fi
jcheck "its JSON output has the final text" "$OUT" "
  const good = D.is_error === false && D.result === $(node -e 'console.log(JSON.stringify(process.argv[1]))' "$FINAL_TEXT");
  if (!good) why({ subtype: D.subtype, is_error: D.is_error, result: D.result });
  return good;"
check "the file on disk was written and edited" bash -c "[ \"\$(cat '$file' 2>/dev/null)\" = \"\$(printf 'alpha\\ngamma')\" ]"
check "Claude Code refreshed its expiring session through Warden and the IdP first" \
  grep -q "signin: alice's session refreshed at the IdP" "$WARDEN_LOG"
check "Warden's access lines name alice, signed in at the IdP, on the model calls" \
  bash -c "grep '\"path\":\"/anthropic/v1/messages\"' '$WARDEN_LOG' | grep '\"status\":200' | grep -q '\"subject\":\"alice\"'"
check "no API key anywhere: every model call authenticated as a session (issuer idp, no key name), none in Claude Code's files" \
  bash -c "grep '\"path\":\"/anthropic/v1/messages\"' '$WARDEN_LOG' | grep -q '\"issuer\":\"idp\"' && ! grep '\"path\":\"/anthropic/v1/messages\"' '$WARDEN_LOG' | grep -q '\"key\":' && ! grep -rqi 'ANTHROPIC_API_KEY\|apiKeyHelper' '$HOME_DIR/.claude/settings.json' '$HOME_DIR/.claude.json'"
sleep 1
check "Claude Code's telemetry went to Warden and on to the collector (OTLP protobuf logs and metrics: $(ls "$WD_TMP/otlp" | grep -cE '^(logs|metrics)-.*\.pb$') exports)" \
  bash -c "ls '$WD_TMP/otlp' | grep -qE '^logs-.*\.pb$' && ls '$WD_TMP/otlp' | grep -qE '^metrics-.*\.pb$'"
check "no token in Warden's log" bash -c "! grep -qE 'eyJ[A-Za-z0-9_-]{20,}' '$WARDEN_LOG'"
wd_stop_warden
wd_finish
