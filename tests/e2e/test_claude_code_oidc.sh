#!/usr/bin/env bash
# Issue 16 end to end, with no API key anywhere: `warden login` at the company IdP (tests/idp), then the real Claude
# Code CLI with apiKeyHelper = `warden token` does the e2e task (Write, two parallel Reads, Edit, final text) through
# Warden, which knows the IdP only as an auth.oidc issuer and grants the tiers to the user's IdP group by RBAC.
# Run 1 after the device flow (alice); run 2 after the code flow with PKCE (bob), the cached access token forced to
# expire mid-session so that the helper refreshes it. A recording pass-through shows which header carried the
# helper's value; the access lines, /metrics and the audit trail show OIDC subjects; no token reaches the log.
# Usage: bash tests/e2e/test_claude_code_oidc.sh path/to/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
E2E="$WD_ROOT/tests/e2e"
source "$E2E/claude_lib.sh"
source "$WD_ROOT/tests/pg.sh"

bash "$E2E/setup.sh"
bash "$WD_ROOT/tests/idp/setup.sh" >/dev/null
# Claude Code runs the helper from its own working directory: the path must not be relative.
WBIN="$(readlink -f "$WARDEN_BIN")"
AUD=api://warden
export XDG_CONFIG_HOME="$WD_TMP/config"
STORE="$XDG_CONFIG_HOME/warden"

wd_start_fake
wd_start_server IDP_PORT node "$WD_ROOT/tests/idp/idp.mjs" --port 0 --path /oauth2/default
ISS="http://127.0.0.1:$IDP_PORT/oauth2/default"
idp_post() { curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
  --data "$2" "http://127.0.0.1:$IDP_PORT/_test/$1"; }
# Every token from now on carries the group that RBAC binds to the role below.
check "the IdP takes the group claim engineering" [ "$(idp_post claims '{"groups":["engineering"]}')" = 200 ]

# Warden with no static key at all: the only way in is a token of the IdP. The role grants the tiers, not the
# alias fast (checked below). The audit trail records how each call was authenticated.
wd_pg_start
wd_pg_setup_db
PORT=$(wd_free_port)
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
  aliases:
    fast: gemini/gemini-2.5-flash
auth:
  oidc:
    - name: company
      issuer: $ISS
      audience: $AUD
rbac:
  roles:
    developer: {models: ["tier:opus", "tier:sonnet", "tier:haiku"]}
  bindings:
    - {group: engineering, role: developer}
audit:
  database: $WD_DB_ADMIN_URL
  spool: $WD_TMP/spool
  batch_wait: 5ms
$(wd_metrics_yaml)
YAML
wd_start_warden "$CFG"

# ---- the recording pass-through: Claude Code -> here -> Warden ----
# It keeps, per request, the method, path, status and a SHA-256 prefix of x-api-key and of the Bearer value (never
# the values). Armed with POST /_expire {"file": F}, it sets the access token of login file F as expired when the
# next Messages request arrives (written whole and renamed, mode 0600, as warden token's lock does not cover it).
PROXY_JS="$WD_TMP/proxy.mjs"
cat >"$PROXY_JS" <<'JS'
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
const target = Number(process.argv[2]);
const seen = [];
let expire = null;
const sha = (v) => (typeof v === 'string' ? crypto.createHash('sha256').update(v).digest('hex').slice(0, 32) : null);
const srv = http.createServer((req, res) => {
  if (req.url === '/_seen') { res.end(JSON.stringify(seen)); return; }
  if (req.url === '/_expire' && req.method === 'POST') {
    let b = '';
    req.on('data', (d) => { b += d; });
    req.on('end', () => { expire = JSON.parse(b); res.end('{}'); });
    return;
  }
  const a = req.headers.authorization;
  const rec = { method: req.method, path: req.url.split('?')[0], xkey: sha(req.headers['x-api-key']),
    bearer: typeof a === 'string' && /^Bearer /i.test(a) ? sha(a.slice(7)) : null,
    other_auth: typeof a === 'string' && !/^Bearer /i.test(a), status: null, expired_here: false };
  seen.push(rec);
  if (expire && req.method === 'POST' && rec.path.endsWith('/v1/messages')) {
    try {
      const d = JSON.parse(fs.readFileSync(expire.file, 'utf8'));
      d.expires_at = 0;
      fs.writeFileSync(expire.file + '.proxy', JSON.stringify(d), { mode: 0o600 });
      fs.renameSync(expire.file + '.proxy', expire.file);
      rec.expired_here = true;
    } catch (e) {
      rec.expire_error = String(e);
    }
    expire = null;
  }
  const up = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers },
    (r) => { rec.status = r.statusCode; res.writeHead(r.statusCode, r.headers); r.pipe(res); });
  up.on('error', () => { rec.status = 502; res.writeHead(502); res.end(); });
  req.pipe(up);
});
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
JS
wd_start_server PROXY_PORT node "$PROXY_JS" "$PORT"
PROXY_URL="http://127.0.0.1:$PROXY_PORT"

# ---- helpers ----
jfield() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2"; }
sha32() { printf '%s' "$1" | sha256sum | cut -c1-32; }
claims_of() { # claims_of TOKEN: the JWT's payload, unverified (Warden verified it when it answered 200)
  python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.dumps(json.loads(base64.urlsafe_b64decode(p+"=="))))' "$1"
}
RC=0
start_login() { # start_login NAME ARGS...: warden login in the background, stderr to $WD_TMP/NAME.err
  local name="$1"
  shift
  "$WBIN" login --issuer "$ISS" --client-id warden-cli --audience "$AUD" --no-browser --timeout 60 "$@" \
    2>"$WD_TMP/$name.err" &
  LOGIN_PID=$!
  WD_PIDS+=("$LOGIN_PID")
}
finish_login() { RC=0; wait "$LOGIN_PID" || RC=$?; }
fake_post() { curl -sS --max-time 10 -X POST "$FAKE_URL$1" -H 'content-type: application/json' -d "${2:-}"; }
fake_get() { curl -sS --max-time 10 "$FAKE_URL$1"; }
msg() { # msg KEY MODEL: one Messages call straight to Warden -> HTTP status
  curl -sS -o "$WD_TMP/msg.out" -w '%{http_code}' --max-time 30 ${1:+-H "x-api-key: $1"} \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    --data-binary "{\"model\":\"$2\",\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
    "$WARDEN_URL/anthropic/v1/messages" || true
}
# access_from LINE: Warden's access lines after line LINE of its log, summed up as JSON
access_from() {
  tail -n +"$(($1 + 1))" "$WARDEN_LOG" | python3 -c '
import json, sys
lines = []
for l in sys.stdin:
    try:
        o = json.loads(l)
    except ValueError:
        continue
    if o.get("msg") == "access":
        lines.append(o)
print(json.dumps({"n": len(lines), "keys": sorted({str(o.get("subject")) + "@" + str(o.get("issuer")) + "/" + str(o.get("key")) for o in lines}),
                  "statuses": sorted({o.get("status") for o in lines}),
                  "messages": sum(1 for o in lines if o.get("path", "").endswith("/v1/messages"))}))'
}
log_lines() { wc -l <"$WARDEN_LOG"; }

# The helper runs under the sanitizer build too: its reports go to files, which must not appear.
HELPER_ASAN="detect_leaks=1:abort_on_error=0:exitcode=99:log_path=$WD_TMP/helper-asan"
HELPER_UBSAN="print_stacktrace=1:halt_on_error=1:exitcode=99:log_path=$WD_TMP/helper-ubsan"
mkdir -p "$WD_TMP/home/.claude"
python3 -c 'import json,shlex,sys; print(json.dumps({"apiKeyHelper": " ".join(map(shlex.quote, sys.argv[1:]))}))' \
  "$WBIN" token --issuer "$ISS" >"$WD_TMP/home/.claude/settings.json"
# run_claude_helper OUT PROMPT [env...]: run_claude's clean environment, with no ANTHROPIC_API_KEY: the key comes
# from the apiKeyHelper of the settings in HOME; the base URL is the recording pass-through.
run_claude_helper() {
  local out="$1" prompt="$2"; shift 2
  local rc=0
  (cd "$WORK" && timeout -k 5 180 env -i PATH=/usr/bin:/bin HOME="$WD_TMP/home" XDG_CONFIG_HOME="$XDG_CONFIG_HOME" \
    ASAN_OPTIONS="$HELPER_ASAN" LSAN_OPTIONS="$LSAN_OPTIONS" UBSAN_OPTIONS="$HELPER_UBSAN" \
    ANTHROPIC_BASE_URL="$PROXY_URL/anthropic" \
    DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 "$@" \
    "$CLAUDE" -p "$prompt" --output-format json --allowedTools Write,Read,Edit,Bash </dev/null >"$out" 2>"$out.err") || rc=$?
  [ -s "$out" ] && node -e 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))' "$out" 2>/dev/null || echo '{}' >"$out"
  return "$rc"
}
FINAL_TEXT="Done: notes.txt was written, read twice and edited."
# run_task N [env...]: the e2e task of test_claude_code.sh in a fresh working directory, with its checks
run_task() {
  local n="$1" rc=0 t0 script
  shift
  WORK="$WD_TMP/work$n"
  mkdir -p "$WORK"
  local file="$WORK/notes.txt" out="$WD_TMP/claude$n.json"
  script=$(FILE="$file" FINAL="$FINAL_TEXT" node -e '
    const f = process.env.FILE;
    console.log(JSON.stringify({ mode: "agent", text_signature: "empty_part", steps: [
      { call: { name: "Write", args: { file_path: f, content: "alpha\nbeta\n" } } },
      { calls: [ { name: "Read", args: { file_path: f } }, { name: "Read", args: { file_path: f } } ] },
      { call: { name: "Edit", args: { file_path: f, old_string: "beta", new_string: "gamma" } } },
      { text: process.env.FINAL },
    ] }));')
  fake_post /_fake/reset >/dev/null
  fake_post /_fake/script "$script" >/dev/null
  t0=$(date +%s%N)
  run_claude_helper "$out" "Create notes.txt with two lines, read it back twice, then change beta to gamma." "$@" || rc=$?
  echo "# claude run $n: exit $rc in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  if [ "$rc" -eq 0 ]; then ok "run $n: claude exits 0"; else
    fail "run $n: claude exits 0 (got $rc)"; tail -20 "$out.err" >&2; head -c 2000 "$out" >&2; echo >&2; fi
  jcheck "run $n: claude JSON output has is_error false and the final text" "$out" "
    const good = D.is_error === false && D.subtype === 'success' && D.result === $(node -e 'console.log(JSON.stringify(process.argv[1]))' "$FINAL_TEXT");
    if (!good) why({ type: D.type, subtype: D.subtype, is_error: D.is_error, result: D.result });
    return good;"
  if [ -f "$file" ] && [ "$(cat "$file")" = "$(printf 'alpha\ngamma')" ]; then
    ok "run $n: the file on disk was written and edited"
  else
    fail "run $n: the file on disk was written and edited"; { echo "# $file:"; cat "$file" 2>&1 | sed 's/^/#   /' || true; } >&2
  fi
  fake_get /_fake/agent >"$WD_TMP/agent$n.json"
  jcheck "run $n: the fake's agent ran all 4 steps, each continuing the conversation" "$WD_TMP/agent$n.json" "
    const good = D.next_step === 4 && D.log.length >= 4 && D.log.every(e => e.ok);
    if (!good) why(D);
    return good;"
  fake_get /_fake/requests >"$WD_TMP/requests$n.json"
  jcheck "run $n: every request reached the fake and got 200, two Reads answered in one turn" "$WD_TMP/requests$n.json" "
    const conv = D.filter(r => /:(stream)?[gG]enerateContent/.test(r.path) && r.body && r.body.tools);
    const bad = D.filter(r => r.status !== 200);
    const reads = conv.some(r => r.body.contents.some(c => c.role === 'user' &&
      c.parts.filter(p => p.functionResponse && p.functionResponse.name === 'Read').length === 2));
    if (bad.length || !reads) why({ bad: bad.map(r => ({ path: r.path, status: r.status })), conv: conv.length, reads });
    return D.length > 0 && bad.length === 0 && conv.length >= 4 && reads;"
}
# seen_check N DESC JS: a check over the pass-through's records since the run started (S: those records)
SEEN_FROM=0
seen_check() {
  curl -sS --max-time 10 "$PROXY_URL/_seen" >"$WD_TMP/seen$1.json"
  jcheck "$2" "$WD_TMP/seen$1.json" "const S = D.slice($SEEN_FROM); $3"
}
seen_count() { curl -sS --max-time 10 "$PROXY_URL/_seen" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

# ---- not signed in: Warden has no key to give ----
CODE=$(msg "" claude-opus-4-5)
check "without a credential Warden answers 401 (got $CODE)" [ "$CODE" = 401 ]

# ---- run 1: device flow ----
start_login device
wd_wait_for "$WD_TMP/device.err" '^user code: '
UC=$(sed -n 's/^user code: //p' "$WD_TMP/device.err")
CODE=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
  --data "{\"user_code\":\"$UC\",\"sub\":\"alice\"}" "http://127.0.0.1:$IDP_PORT/_test/approve-device")
check "alice approves device code $UC at the IdP (got $CODE)" [ "$CODE" = 200 ]
finish_login
check "device flow: warden login exits 0 (got $RC)" [ "$RC" = 0 ]
FILE=$(ls "$STORE"/login-*.json 2>/dev/null | head -1) || true
check "one login file is stored under XDG_CONFIG_HOME, mode 0600" \
  [ -n "$FILE" -a "$(ls "$STORE"/login-*.json 2>/dev/null | wc -l)" = 1 -a "$(stat -c %a "$FILE" 2>/dev/null)" = 600 ]
TOK_A=$("$WBIN" token --issuer "$ISS" 2>"$WD_TMP/tokA.err") || true
check "warden token prints alice's access token, with the group claim and audience $AUD" python3 -c "
import json,sys
c=json.loads(sys.argv[1]); aud=c['aud'] if isinstance(c['aud'],list) else [c['aud']]
sys.exit(0 if c['sub']=='alice' and 'engineering' in c.get('groups',[]) and '$AUD' in aud else 1)" "$(claims_of "$TOK_A")"
CODE=$(msg "$TOK_A" fast)
check "RBAC is in force for that token: the alias fast, not granted, is 403 (got $CODE)" [ "$CODE" = 403 ]

L1=$(log_lines)
SEEN_FROM=$(seen_count)
run_task 1
seen_check 1 "run 1: every request Claude Code sent carried the helper's token ($(sha32 "$TOK_A" | cut -c1-8)...) and nothing else" "
  const t = '$(sha32 "$TOK_A")';
  const bad = S.filter(r => (r.xkey !== null && r.xkey !== t) || (r.bearer !== null && r.bearer !== t) || r.other_auth ||
    (r.path.startsWith('/anthropic/v1/') && r.xkey === null && r.bearer === null));
  if (bad.length) why(bad);
  return S.length > 0 && bad.length === 0;"
seen_check 1 "run 1: Claude Code sent POST /v1/messages through the pass-through, every answer 200" "
  const m = S.filter(r => r.method === 'POST' && r.path === '/anthropic/v1/messages');
  const bad = S.filter(r => r.status !== 200 && !(r.method === 'HEAD' || r.path.endsWith('/api/hello')));
  if (m.length < 4 || bad.length) why({ messages: m.length, bad });
  return m.length >= 4 && bad.length === 0;"
# which header carries apiKeyHelper's value (recorded for the README, not asserted beyond "one of them")
HDRS=$(python3 -c '
import json,sys
S=[r for r in json.load(open(sys.argv[1]))[int(sys.argv[2]):] if r["path"]=="/anthropic/v1/messages"]
x=all(r["xkey"] for r in S); b=all(r["bearer"] for r in S)
print(" and ".join(n for n,f in (("x-api-key",x),("Authorization: Bearer",b)) if f) or "neither on every request")' \
  "$WD_TMP/seen1.json" "$SEEN_FROM")
echo "# Claude Code 2.1.328 sends the apiKeyHelper value as: $HDRS"
ACC1=$(access_from "$L1")
echo "# run 1 access lines: $ACC1"
check "run 1: Warden's access lines name the IdP's subject alice as the caller, all 200" python3 -c "
import json,sys; a=json.loads(sys.argv[1]); sys.exit(0 if a['n']>0 and a['messages']>=4 and a['keys']==['alice@company/None'] and a['statuses']==[200] else 1)" "$ACC1"

# ---- run 2: authorization code flow (PKCE) as bob; the cached token expires mid-session ----
check "the IdP's browser login will sign in bob" [ "$(idp_post login '{"sub":"bob"}')" = 200 ]
start_login code --flow code
wd_wait_for "$WD_TMP/code.err" '^  http'
URL=$(sed -n 's/^  \(http.*\)$/\1/p' "$WD_TMP/code.err")
curl -sS -L --max-time 30 -c "$WD_TMP/jar" -b "$WD_TMP/jar" -o "$WD_TMP/browser.out" -w '%{http_code} %{url_effective}' \
  "$URL" >"$WD_TMP/browser.meta" || true
check "following the authorization URL ends at warden login's loopback callback, 200" \
  grep -qE "^200 http://127.0.0.1:[0-9]+/callback\\?code=" "$WD_TMP/browser.meta"
finish_login
check "code flow: warden login exits 0 (got $RC)" [ "$RC" = 0 ]
TOK_B=$("$WBIN" token --issuer "$ISS" 2>"$WD_TMP/tokB.err") || true
check "warden token now prints bob's token, not alice's" python3 -c "
import json,sys; sys.exit(0 if json.loads(sys.argv[1])['sub']=='bob' and sys.argv[2]!=sys.argv[3] else 1)" \
  "$(claims_of "$TOK_B")" "$TOK_A" "$TOK_B"
RT_B=$(jfield "$FILE" refresh_token) || true

curl -sS --max-time 10 -o /dev/null -X POST --data "{\"file\":\"$FILE\"}" "$PROXY_URL/_expire" || true
L2=$(log_lines)
SEEN_FROM=$(seen_count)
# TTL 0: Claude Code asks the helper again (in the background) before each request, so it sees the refresh.
run_task 2 CLAUDE_CODE_API_KEY_HELPER_TTL_MS=0
TOK_C=$(jfield "$FILE" access_token) || true
check "the helper refreshed bob's token during run 2: a new access token in the store, still bob's" python3 -c "
import json,sys; sys.exit(0 if sys.argv[2] not in ('', sys.argv[3]) and json.loads(sys.argv[1])['sub']=='bob' else 1)" \
  "$(claims_of "$TOK_C")" "$TOK_C" "$TOK_B"
check "... with the rotated refresh token written back" [ -n "$(jfield "$FILE" refresh_token)" -a "$(jfield "$FILE" refresh_token)" != "$RT_B" ]
seen_check 2 "run 2: Claude Code sent bob's first token, then (after the forced expiry) the refreshed one and never the old one again" "
  const b = '$(sha32 "$TOK_B")', c = '$(sha32 "$TOK_C")';
  const m = S.filter(r => r.method === 'POST' && r.path === '/anthropic/v1/messages');
  const val = r => r.xkey || r.bearer;
  const bad = S.filter(r => (val(r) ? ![b, c].includes(val(r)) : r.path.startsWith('/anthropic/v1/')) ||
    (r.xkey && r.bearer && r.xkey !== r.bearer) || r.other_auth);
  const cut = m.findIndex(r => r.expired_here);
  const firstC = m.findIndex(r => val(r) === c);
  const backToB = m.slice(Math.max(firstC, 0)).some(r => val(r) === b);
  const good = bad.length === 0 && cut >= 0 && val(m[0]) === b && firstC > cut && !backToB;
  if (!good) why({ bad, cut, firstC, seq: m.map(r => val(r) === b ? 'B' : val(r) === c ? 'C' : '?').join('') });
  return good;"
seen_check 2 "run 2: every answer through the pass-through 200, the old token's and the new one's" "
  const bad = S.filter(r => r.status !== 200 && !(r.method === 'HEAD' || r.path.endsWith('/api/hello')));
  if (bad.length) why(bad);
  return S.length > 0 && bad.length === 0;"
ACC2=$(access_from "$L2")
echo "# run 2 access lines: $ACC2"
check "run 2: Warden's access lines name bob as the caller, all 200" python3 -c "
import json,sys; a=json.loads(sys.argv[1]); sys.exit(0 if a['n']>0 and a['messages']>=4 and a['keys']==['bob@company/None'] and a['statuses']==[200] else 1)" "$ACC2"

# ---- metrics and the log ----
if [ -n "$WARDEN_METRICS_URL" ]; then
  curl -sS --max-time 10 "$WARDEN_METRICS_URL/metrics" >"$WD_TMP/metrics.txt" || true
  check "/metrics counts tokens under the issuer's label oidc:company (not a label per user), under no other key" bash -c "
    grep -qE '^warden_tokens_total\\{[^}]*key=\"oidc:company\"' '$WD_TMP/metrics.txt' &&
    ! grep -E '^warden_tokens_total\\{' '$WD_TMP/metrics.txt' | grep -vqE 'key=\"oidc:company\"'"
else
  fail "Warden logged its metrics URL"
fi
leaks=0
for t in "$TOK_A" "$TOK_B" "$TOK_C"; do
  for part in "$(echo "$t" | cut -d. -f2 | cut -c1-40)" "$(echo "$t" | cut -d. -f3 | cut -c1-40)"; do
    [ -n "$part" ] && grep -qF -- "$part" "$WARDEN_LOG" "$WARDEN_LOG.out" && leaks=$((leaks + 1))
  done
done
RT_C=$(jfield "$FILE" refresh_token) || true
for t in "$RT_B" "$RT_C"; do [ -n "$t" ] && grep -qF -- "$t" "$WARDEN_LOG" "$WARDEN_LOG.out" && leaks=$((leaks + 1)); done
check "no access token (payload or signature) nor refresh token appears in Warden's log ($leaks found)" [ "$leaks" = 0 ]
check "no token refused on the way (no 'bearer token refused' in the log)" bash -c "! grep -q 'bearer token refused' '$WARDEN_LOG'"

check "no sanitizer report from warden login, warden token or the helper runs" bash -c "
  ! ls '$WD_TMP'/helper-asan.* '$WD_TMP'/helper-ubsan.* >/dev/null 2>&1 &&
  ! grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' '$WD_TMP'/*.err >/dev/null 2>&1"
wd_stop_warden

# ---- the audit trail, durable once Warden has drained ----
q() { wd_psql postgres -At -c "$1"; }
CALLS=$(q "SELECT string_agg(subject || '|' || coalesce(auth_method, '') || '|' || n, ',' ORDER BY subject) FROM
  (SELECT subject, auth_method, count(*) n FROM audit.records WHERE kind = 'call' AND error_class IS NULL
   GROUP BY 1, 2) t")
echo "# audit: successful calls by subject|auth_method|count: $CALLS"
check "audit: every successful call is alice's or bob's, authenticated by oidc, at least 4 each" python3 -c "
import sys
rows=[r.split('|') for r in sys.argv[1].split(',') if r]
sys.exit(0 if [r[0] for r in rows]==['alice','bob'] and all(r[1]=='oidc' and int(r[2])>=4 for r in rows) else 1)" "$CALLS"
OTHER=$(q "SELECT count(*) FROM audit.records WHERE kind IN ('call', 'authz') AND coalesce(auth_method, '') <> 'oidc'")
check "audit: no call or authz record by another method ($OTHER)" [ "$OTHER" = 0 ]
RULES=$(q "SELECT string_agg(DISTINCT subject || ': ' || rule, ', ' ORDER BY subject || ': ' || rule) FROM audit.records
  WHERE kind = 'authz' AND decision = 'allow'")
check "audit: the calls were allowed by the group's role ($RULES)" \
  [ "$RULES" = "alice: rbac: role developer grants tier:opus, bob: rbac: role developer grants tier:opus" ]
DENY=$(q "SELECT subject || '|' || model_requested || '|' || rule FROM audit.records WHERE kind = 'authz' AND decision = 'deny'")
check "audit: the one denied call is alice's alias fast ($DENY)" [ "$DENY" = "alice|fast|rbac: no role held grants this model" ]
INREC=0
for t in "$TOK_A" "$TOK_B" "$TOK_C" "$RT_B" "$RT_C"; do
  part=$(echo "$t" | rev | cut -d. -f1 | rev | cut -c1-40)
  [ -n "$part" ] && INREC=$((INREC + $(q "SELECT count(*) FROM audit.records r WHERE r::text LIKE '%$part%'")))
done
check "audit: no record holds a token ($INREC found)" [ "$INREC" = 0 ]
wd_finish
