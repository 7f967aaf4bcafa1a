# models.prices: warden_cost_usd_total by model and key follows the token counts and the configured price;
# a model without a price has no cost series.
source "$(dirname "$0")/../lib.sh" "$1"
wd_start_fake
PORT=$(wd_free_port)
# wd_config writes a models: section; prices go in a second config built from it
CFG=$(wd_config "$PORT" "$FAKE_URL" "$(wd_metrics_yaml)")
python3 - "$CFG" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("models:\n", "models:\n  prices:\n    gemini-2.5-flash: {input: 0.30, output: 2.50, cached: 0.075}\n", 1)
open(p, "w").write(s)
PY
wd_start_warden "$CFG"
body() { printf '{"model":"%s","max_tokens":32,"messages":[{"role":"user","content":"price check"}]}' "$1"; }
for m in claude-sonnet-4-5 claude-sonnet-4-5 claude-opus-4-5; do
  curl -s -o /dev/null "$WARDEN_URL/anthropic/v1/messages" -H "x-api-key: ${WARDEN_DEV_KEY:-devkey}" \
    -H 'content-type: application/json' -d "$(body $m)"
done
curl -s "$WARDEN_METRICS_URL/metrics" >"$WD_TMP/m.txt"
val() { sed -n "s/^$1 \\([0-9.e+-]*\\)$/\\1/p" "$WD_TMP/m.txt"; }
IN=$(val 'warden_tokens_total{model="gemini-2.5-flash",key="dev",type="input"}')
OUT=$(val 'warden_tokens_total{model="gemini-2.5-flash",key="dev",type="output"}')
COST=$(val 'warden_cost_usd_total{model="gemini-2.5-flash",key="dev"}')
check "tokens counted for the priced model ($IN in, $OUT out)" [ "${IN:-0}" != 0 -a "${OUT:-0}" != 0 ]
check "cost = tokens x price ($COST)" python3 -c "import sys; i,o,c=map(float,sys.argv[1:]); sys.exit(0 if abs(c-(i*0.30+o*2.50)/1e6) < 1e-12 else 1)" "$IN" "$OUT" "${COST:-0}"
check "no cost series for a model without a price" bash -c "! grep -q 'warden_cost_usd_total{model=\"gemini-2.5-pro\"' '$WD_TMP/m.txt'"
check "promtool accepts the exposition with a cost series" bash -c "promtool check metrics < '$WD_TMP/m.txt'"
wd_stop_warden
wd_finish
