#!/usr/bin/env bash
# The official @anthropic-ai/sdk (from npm, pinned in package-lock.json) against Warden in front of the strict
# fake Gemini: sdk_check.mjs does the calls and prints ok/not ok lines; this wrapper counts them.
# Usage: bash tests/e2e/test_sdk.sh path/to/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
E2E="$WD_ROOT/tests/e2e"

bash "$E2E/setup.sh"

wd_start_fake
cfg=$(wd_config "$(wd_free_port)" "$FAKE_URL")
wd_start_warden "$cfg"

out="$WD_TMP/sdk_check.out"
rc=0
(cd "$E2E" && WARDEN_URL="$WARDEN_URL" FAKE_URL="$FAKE_URL" WARDEN_KEY=devkey \
  timeout -k 5 300 node sdk_check.mjs) >"$out" 2>"$out.err" || rc=$?
cat "$out"
while IFS= read -r line; do
  case "$line" in
    "ok - "*) WD_PASS=$((WD_PASS + 1)) ;;
    "not ok - "*) WD_FAIL=$((WD_FAIL + 1)) ;;
  esac
done <"$out"
# A crash or a timeout is a failure even when every line printed so far was ok.
if [ "$rc" -ne 0 ] && ! grep -q '^not ok - ' "$out"; then
  fail "sdk_check.mjs exited $rc"
  tail -30 "$out.err" >&2
fi
if ! grep -q '^# sdk_check done: ' "$out"; then
  fail "sdk_check.mjs ran to the end"
  tail -30 "$out.err" >&2
fi

wd_stop_warden
wd_finish
