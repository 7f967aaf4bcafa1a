#!/usr/bin/env bash
# Claude Code's gateway sign-in served by Warden (docs/claude-gateway-protocol.md): tests/gateway/probe.mjs walks the
# protocol against Warden as it did against Anthropic's reference gateway (discovery, device authorization, polling
# with slow_down, the browser step at oidc-provider, single-use device codes, session tokens, managed settings by
# group with ETag/304, the OTLP routes, refresh with rotation, a replayed refresh token, a denied code), and the
# session token it gets calls a model.
# Usage: bash tests/integration/test_claude_signin.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/gateway/signin.sh"

PORT=$(wd_free_port)
BASE="http://127.0.0.1:$PORT/anthropic"
gw_start_idp "$BASE"
wd_start_server ANT_PORT node "$WD_ROOT/tests/fakes/fake_anthropic.mjs" --port 0 --key sk-ant-signin-upstream
mkdir -p "$WD_TMP/otlp"
wd_start_server OTLP_PORT node "$WD_ROOT/tests/fakes/fake_otlp.mjs" --port 0 --dir "$WD_TMP/otlp"
CFG="$WD_TMP/warden.yaml"
cat >"$CFG" <<YAML
listen: 127.0.0.1:$PORT
workers: 2
providers:
  anthropic:
    type: anthropic
    base_url: http://127.0.0.1:$ANT_PORT
    keys:
      - secret: env://WD_ANT_KEY
models:
  tiers:
    opus: anthropic/claude-opus-4-5
    sonnet: anthropic/claude-sonnet-4-5
    haiku: anthropic/claude-haiku-4-5
$(gw_signin_yaml "$BASE" "http://127.0.0.1:$OTLP_PORT")
$(wd_metrics_yaml)
YAML
WD_WARDEN_ENV=(WD_ANT_KEY=sk-ant-signin-upstream "${GW_ENV[@]}")
wd_start_warden "$CFG"

gw_probe "$BASE" "probe"
check "the probe ran its checks against Warden ($(grep -c '' "$WD_TMP/checks.txt") checks)" [ "$(grep -c '' "$WD_TMP/checks.txt")" -ge 10 ]

# the same probe against Anthropic's reference gateway (`claude gateway`, inside the Claude Code binary): every check
# it passes there, Warden passes too (the shapes Warden must match)
if timeout 120 bash "$WD_ROOT/tests/gateway/oracle.sh" --once \
     bash -c 'node "'"$WD_ROOT"'/tests/gateway/probe.mjs" "$GW_BASE_URL" >"'"$WD_TMP"'/oracle.jsonl" 2>/dev/null; true' \
     >"$WD_TMP/oracle.out" 2>"$WD_TMP/oracle.err"; then
  python3 - "$WD_TMP/oracle.jsonl" "$WD_TMP/probe.jsonl" <<'PY' >"$WD_TMP/cmp.txt"
import json, sys
def passed(p):
    out = set()
    for l in open(p):
        try:
            o = json.loads(l)
        except Exception:
            continue
        if o.get("ok") is True and "check" in o:
            out.add(o["check"])
    return out
o, w = passed(sys.argv[1]), passed(sys.argv[2])
print(len(o), len(o & w), "; ".join(sorted(o - w)))
PY
  read -r NO NBOTH MISSING <"$WD_TMP/cmp.txt" || true
  check "the reference gateway passes $NO probe checks; Warden passes all of them ($NBOTH)${MISSING:+, missing: $MISSING}" \
    bash -c "[ '${NO:-0}' -ge 20 ] && [ '$NO' = '$NBOTH' ]"
else
  fail "the reference gateway (tests/gateway/oracle.sh) ran: $(tail -3 "$WD_TMP/oracle.err" | tr '\n' ' ')"
fi
# the OTLP routes relay to signin.telemetry_forward, and the managed settings point Claude Code's exporter at Warden
sleep 0.5
check "the probe's OTLP exports reached the collector through Warden (metrics, logs, traces)" \
  bash -c "ls '$WD_TMP/otlp' | grep -q '^metrics-' && ls '$WD_TMP/otlp' | grep -q '^logs-' && ls '$WD_TMP/otlp' | grep -q '^req-'"
check "the managed settings carry the exporter's settings, pointed at Warden" python3 -c '
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    b = o.get("body")
    if o.get("step", "").startswith("managed settings") and isinstance(b, dict) and "settings" in b:
        e = b["settings"].get("env", {})
        sys.exit(0 if e.get("OTEL_EXPORTER_OTLP_ENDPOINT") == sys.argv[2] and e.get("CLAUDE_CODE_ENABLE_TELEMETRY") == "1"
                 and e.get("WARDEN_POLICY") else 1)
sys.exit(1)' "$WD_TMP/probe.jsonl" "$BASE"

# a session token on the model routes
node "$WD_ROOT/tests/gateway/probe.mjs" "$BASE" --sign-in alice >"$WD_TMP/signin.out" 2>/dev/null || true
TOK=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if "token" in o: print(o["token"]["access_token"])' "$WD_TMP/signin.out" 2>/dev/null || true)
msg() { curl -s -o "$WD_TMP/msg.json" -D "$WD_TMP/msg.h" -w '%{http_code}' "$BASE/v1/messages" -H "authorization: Bearer $1" \
  -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
  -d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'; }
check "alice's session token calls a model (200)" [ "$(msg "$TOK")" = 200 ]
check "  the access line names alice" bash -c "grep '\"path\":\"/anthropic/v1/messages\"' '$WARDEN_LOG' | tail -1 | grep -q '\"subject\":\"alice\"'"
FORGED="${TOK%.*}.$(printf 'A%.0s' $(seq 43))"
check "a session token with a forged signature is refused (401)" [ "$(msg "$FORGED")" = 401 ]
check "  with x-should-retry: false, so Claude Code asks to sign in again at once" grep -qi '^x-should-retry: false' "$WD_TMP/msg.h"
check "  and its reason in the log only" bash -c "! grep -q 'signature' '$WD_TMP/msg.json'"
check "no token in Warden's log" bash -c "! grep -qE 'eyJ[A-Za-z0-9_-]{20,}' '$WARDEN_LOG'"
wd_stop_warden
wd_finish
