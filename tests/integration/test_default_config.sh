# The embedded default config: secure by default (a generated key, printed once), and without
# GEMINI_API_KEY it starts, says what to set, and answers 503 naming the reference, never a value.
source "$(dirname "$0")/../lib.sh" "$1"

port=$(wd_free_port)
url="http://127.0.0.1:$port"
env -u GEMINI_API_KEY -u WARDEN_API_KEYS "$WARDEN_BIN" serve --listen "127.0.0.1:$port" \
  >"$WD_TMP/out" 2>"$WD_TMP/err" &
pid=$!
WD_PIDS+=("$pid")
wd_wait_http "$url/healthz"

key=$(grep -oE 'wdk_[0-9a-f]{48}' "$WD_TMP/out" | head -1)
check "a key is generated and printed once on stdout" test -n "$key" -a "$(grep -c wdk_ "$WD_TMP/out")" -eq 1
check "the generated key is not in the log" bash -c "! grep -q '$key' '$WD_TMP/err'"
check "the log says which credential to set" grep -q 'env://GEMINI_API_KEY' "$WD_TMP/err"

body='{"model":"claude-sonnet-5-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
code=$(curl -s -o "$WD_TMP/r1" -w '%{http_code}' -X POST "$url/anthropic/v1/messages" -d "$body")
check "no key: 401" test "$code" = 401
check "401 in Anthropic's shape" grep -q '"type":"authentication_error"' "$WD_TMP/r1"
code=$(curl -s -o "$WD_TMP/r2" -w '%{http_code}' -X POST "$url/anthropic/v1/messages" -H "x-api-key: wdk_wrong" -d "$body")
check "wrong key: 401" test "$code" = 401
code=$(curl -s -o "$WD_TMP/r3" -w '%{http_code}' -X POST "$url/anthropic/v1/messages" -H "x-api-key: $key" -d "$body")
check "generated key, no GEMINI_API_KEY: 503" test "$code" = 503
check "503 names env://GEMINI_API_KEY" grep -q 'env://GEMINI_API_KEY' "$WD_TMP/r3"
check "503 in Anthropic's shape" grep -q '"type":"error"' "$WD_TMP/r3"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")
check "readyz is 503 without the credential" test "$code" = 503
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
check "healthz is 200" test "$code" = 200
code=$(curl -s -o "$WD_TMP/m" -w '%{http_code}' "$url/anthropic/v1/models" -H "x-api-key: $key")
check "the default tiers are listed" grep -q 'gemini/gemini-2.5-pro' "$WD_TMP/m"

WARDEN_LOG="$WD_TMP/err"
wd_stop_warden "$pid" "$WD_TMP/err"

# WARDEN_API_KEYS: comma-separated client keys; then nothing is generated
port=$(wd_free_port)
WARDEN_API_KEYS="alpha-key, beta-key" "$WARDEN_BIN" serve --listen "127.0.0.1:$port" >"$WD_TMP/out2" 2>"$WD_TMP/err2" &
pid=$!
WD_PIDS+=("$pid")
wd_wait_http "http://127.0.0.1:$port/healthz"
check "no key generated when WARDEN_API_KEYS is set" bash -c "! grep -q wdk_ '$WD_TMP/out2'"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/anthropic/v1/messages" \
  -H "Authorization: Bearer beta-key" -d "$body")
check "second key of WARDEN_API_KEYS accepted (reaches the provider step: 503)" test "$code" = 503
wd_stop_warden "$pid" "$WD_TMP/err2"

# A new user's first file: one Gemini provider, no models.tiers (issue 14, item 15). Interactive Claude Code
# asks for claude-opus-5-5 by default; the tiers default as the embedded config has them, and both
# `config check` and the start-up log say so.
wd_start_fake
port=$(wd_free_port)
cat >"$WD_TMP/minimal.yaml" <<YAML
listen: 127.0.0.1:$port
providers:
  gemini:
    type: gemini
    base_url: $FAKE_URL
    keys:
      - secret: env://GEMINI_API_KEY
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
YAML
note="models.tiers is not set: opus -> gemini/gemini-2.5-pro, sonnet -> gemini/gemini-2.5-flash, haiku -> gemini/gemini-2.5-flash-lite (the defaults for provider gemini)"
rc=0
"$WARDEN_BIN" config check "$WD_TMP/minimal.yaml" >"$WD_TMP/check.out" 2>&1 || rc=$?
check "minimal config: config check passes and says which tiers it defaulted" \
  eval '[ "$rc" = 0 ] && grep -qxF "$WD_TMP/minimal.yaml: $note" "$WD_TMP/check.out"'
wd_start_warden "$WD_TMP/minimal.yaml"
check "minimal config: the start-up log says which tiers it defaulted" grep -qF "\"msg\":\"$note\"" "$WARDEN_LOG"
ask() { # ask MODEL -> HTTP status of a one-line call
  curl -s -o "$WD_TMP/ask.json" -w '%{http_code}' --max-time 30 "$WARDEN_URL/anthropic/v1/messages" \
    -H "x-api-key: devkey" -H 'content-type: application/json' \
    -d "{\"model\":\"$1\",\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}
last_model() { curl -s "$FAKE_URL/_fake/requests" | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["path"])'; }
check "minimal config: claude-opus-5-5 (Claude Code's default) answers 200" [ "$(ask claude-opus-5-5)" = 200 ]
check "minimal config: opus went to gemini-2.5-pro" bash -c "[[ '$(last_model)' == *'/gemini-2.5-pro:'* ]]"
check "minimal config: claude-haiku-4-5 answers 200" [ "$(ask claude-haiku-4-5)" = 200 ]
check "minimal config: haiku went to gemini-2.5-flash-lite" bash -c "[[ '$(last_model)' == *'/gemini-2.5-flash-lite:'* ]]"
check "minimal config: the model list shows the defaulted tiers" \
  bash -c "curl -s -H 'x-api-key: devkey' '$WARDEN_URL/anthropic/v1/models' | grep -qF '\"display_name\":\"gemini/gemini-2.5-pro\"'"
wd_stop_warden

# tiers: {} is the operator saying "no tiers": nothing is filled in, and Claude Code's default is a 404
sed -e 's/^auth:/models:\n  tiers: {}\nauth:/' "$WD_TMP/minimal.yaml" >"$WD_TMP/notiers.yaml"
wd_start_warden "$WD_TMP/notiers.yaml"
check "tiers: {}: nothing defaulted, nothing logged" bash -c "! grep -q 'models.tiers is not set' '$WARDEN_LOG'"
check "tiers: {}: claude-opus-5-5 is a 404 not_found_error" \
  eval '[ "$(ask claude-opus-5-5)" = 404 ] && grep -q "\"not_found_error\"" "$WD_TMP/ask.json"'
wd_stop_warden
wd_finish
