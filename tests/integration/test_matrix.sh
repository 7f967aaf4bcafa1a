#!/usr/bin/env bash
# The provider matrix: the inbound Anthropic Messages API on each provider family (gemini, anthropic, openai)
# for text, streamed text, a tool round trip, two parallel tool calls, an image, an upstream 429 and a stream
# cut mid-way. tests/integration/matrix.mjs runs the cells against the strict fakes and compares each answer
# with its numbered golden file in tests/integration/matrix/; this script starts everything, prints the matrix
# and one ok/not ok line per cell.
# Usage: bash tests/integration/test_matrix.sh build-asan/warden
#   WD_GOLDEN_UPDATE=1 rewrites the golden files (review the diff); WD_MATRIX_ONLY="gemini tools" runs the
#   cells whose "family case" name contains the string; WD_MATRIX_GOT=DIR keeps the answers that differ.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
HERE="$WD_ROOT/tests/integration"

wd_start_fake
GEM_URL="$FAKE_URL"
wd_start_server ANTH_PORT node "$WD_ROOT/tests/fakes/fake_anthropic.mjs" --port 0
ANTH_URL="http://127.0.0.1:$ANTH_PORT"
wd_start_server OAI_PORT node "$WD_ROOT/tests/fakes/fake_openai.mjs" --port 0
OAI_URL="http://127.0.0.1:$OAI_PORT"

# One target per alias: a 429 or a cut has nowhere to fall back to, and routing.attempts_per_target keeps its
# default of 1, so each cell makes exactly the upstream calls it asks for.
cfg="$WD_TMP/warden.matrix.yaml"
cat >"$cfg" <<YAML
listen: 127.0.0.1:$(wd_free_port)
workers: 2
providers:
  gemini:
    type: gemini
    base_url: $GEM_URL
    keys:
      - secret: env://GEMINI_API_KEY
  claude:
    type: anthropic
    base_url: $ANTH_URL
    keys:
      - secret: env://ANTH_KEY
  oai:
    type: openai
    base_url: $OAI_URL
    keys:
      - secret: env://OAI_KEY
models:
  tiers:
    sonnet: gemini/gemini-2.5-flash
  aliases:
    m-gemini: gemini/gemini-2.5-flash
    m-anthropic: claude/claude-sonnet-4-5
    m-openai: oai/gpt-4.1
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
$(wd_metrics_yaml)
YAML
WD_WARDEN_ENV=(ANTH_KEY=test-anthropic-key OAI_KEY=test-openai-key)
wd_start_warden "$cfg"

RESULTS="$WD_TMP/matrix.results"
rc=0
timeout -k 5 120 node "$HERE/matrix.mjs" --warden "$WARDEN_URL" --key "${WARDEN_DEV_KEY-devkey}" \
  --gemini "$GEM_URL" --anthropic "$ANTH_URL" --openai "$OAI_URL" \
  --golden "$HERE/matrix" --results "$RESULTS" \
  ${WD_MATRIX_GOT:+--got "$WD_MATRIX_GOT"} ${WD_MATRIX_ONLY:+--only "$WD_MATRIX_ONLY"} || rc=$?
[ "$rc" -eq 0 ] || fail "matrix.mjs exited $rc"

# One line per cell: "ok|FAIL<TAB>name<TAB>reason"
if [ -f "$RESULTS" ]; then
  while IFS=$'\t' read -r res name why; do
    if [ "$res" = ok ]; then ok "$name"; else fail "$name: $why"; fi
  done <"$RESULTS"
fi
[ -n "${WD_MATRIX_ONLY:-}" ] || [ "$(wc -l <"$RESULTS" 2>/dev/null || echo 0)" -eq 21 ] || fail "the matrix has 21 cells"

wd_stop_warden
wd_finish
