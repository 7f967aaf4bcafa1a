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
wd_finish
