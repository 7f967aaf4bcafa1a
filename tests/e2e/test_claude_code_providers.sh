#!/usr/bin/env bash
# The real Claude Code CLI doing the scripted task (two parallel Writes, a Read, an Edit, final text) through Warden on
# the other provider families and across a failover:
#   A. the opus tier on the strict fake Anthropic Messages API (type anthropic: the body relayed, the answer too);
#   B. the sonnet tier on the strict fake Chat Completions API (type openai);
#   C. the haiku tier as a fallback chain [gemini, anthropic]: Gemini serves the first turns, then answers 503 to
#      everything; the task completes on Anthropic and no Gemini signature reaches the Anthropic fake.
# Usage: bash tests/e2e/test_claude_code_providers.sh path/to/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
E2E="$WD_ROOT/tests/e2e"
source "$E2E/claude_lib.sh"

bash "$E2E/setup.sh"

wd_start_fake
GEM_URL="$FAKE_URL"
wd_start_server ANTH_PORT node "$WD_ROOT/tests/fakes/fake_anthropic.mjs" --port 0
ANTH_URL="http://127.0.0.1:$ANTH_PORT"
wd_start_server OAI_PORT node "$WD_ROOT/tests/fakes/fake_openai.mjs" --port 0
OAI_URL="http://127.0.0.1:$OAI_PORT"

cfg="$WD_TMP/warden.providers.yaml"
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
    opus: claude/claude-opus-4-5
    sonnet: oai/gpt-4.1
    haiku: [gemini/gemini-2.5-flash, claude/claude-haiku-4-5]
auth:
  keys:
    - name: dev
      secret: env://WARDEN_DEV_KEY
$(wd_metrics_yaml)
YAML
WD_WARDEN_ENV=(ANTH_KEY=test-anthropic-key OAI_KEY=test-openai-key)
wd_start_warden "$cfg"

WORK="$WD_TMP/work"
mkdir -p "$WORK" "$WD_TMP/home"
FILE="$WORK/notes.txt"
FILE2="$WORK/todo.txt"
FINAL_TEXT="Done: notes.txt and todo.txt were written, notes.txt read and edited."

post() { curl -sS --max-time 10 -X POST "$1" -H 'content-type: application/json' -d "${2:-}"; }

# task NAME OUT [env...]: runs the task and checks the client's side (exit, result, the file on disk)
task() {
  local name="$1" out="$2"; shift 2
  rm -f "$FILE" "$FILE2"
  local rc=0 t0
  t0=$(date +%s%N)
  run_claude "$out" "Create notes.txt and todo.txt, read notes.txt back, then change beta to gamma." "$@" || rc=$?
  echo "# claude $name: exit $rc in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  if [ "$rc" -eq 0 ]; then ok "$name: claude exits 0"; else fail "$name: claude exits 0 (got $rc)"; tail -20 "$out.err" >&2; fi
  jcheck "$name: claude's result is the final text" "$out" "
    const good = D.is_error === false && D.result === $(node -e 'console.log(JSON.stringify(process.argv[1]))' "$FINAL_TEXT");
    if (!good) why({ subtype: D.subtype, is_error: D.is_error, result: D.result });
    return good;"
  if [ -f "$FILE" ] && [ "$(cat "$FILE")" = "$(printf 'alpha\ngamma')" ] && [ "$(cat "$FILE2" 2>/dev/null)" = "one" ]; then
    ok "$name: both files on disk, notes.txt with the edited content"
  else
    fail "$name: both files on disk, notes.txt with the edited content"
  fi
}

ANSWERS=$(FILE="$FILE" FILE2="$FILE2" FINAL="$FINAL_TEXT" node -e '
  const f = process.env.FILE, g = process.env.FILE2;
  console.log(JSON.stringify({ answers: [
    { tool_use: [ { name: "Write", input: { file_path: f, content: "alpha\nbeta\n" } },
                  { name: "Write", input: { file_path: g, content: "one\n" } } ] },
    { tool_use: { name: "Read", input: { file_path: f } } },
    { tool_use: { name: "Edit", input: { file_path: f, old_string: "beta", new_string: "gamma" } } },
    { text: process.env.FINAL },
  ] }));')

# --- A: the Anthropic Messages API ------------------------------------------------------------------------
post "$ANTH_URL/_fake/reset" >/dev/null
post "$ANTH_URL/_fake/script" "$ANSWERS" >/dev/null
task "anthropic" "$WD_TMP/a.json"
curl -sS "$ANTH_URL/_fake/requests" >"$WD_TMP/a.requests.json"
CONV='const conv = D.filter(r => r.path.startsWith("/v1/messages") && !r.path.includes("count_tokens") && r.body && r.body.tools);'
jcheck "anthropic: every request got 200, and the 4 steps ran on the fake" "$WD_TMP/a.requests.json" "$CONV
  const bad = D.filter(r => r.status !== 200);
  if (bad.length) why(bad.map(r => ({ path: r.path, status: r.status, body: r.error })));
  return bad.length === 0 && conv.length >= 4;"
jcheck "anthropic: the target model and the clamp: claude-opus-4-5, max_tokens <= 64000" "$WD_TMP/a.requests.json" "$CONV
  const bad = conv.filter(r => r.body.model !== 'claude-opus-4-5' || !(r.body.max_tokens <= 64000));
  if (bad.length) why(bad.map(r => [r.body.model, r.body.max_tokens]));
  return conv.length > 0 && bad.length === 0;"
jcheck "anthropic: Claude Code's anthropic-beta header, cache_control and metadata reached the provider" "$WD_TMP/a.requests.json" "$CONV
  const beta = conv.every(r => typeof r.headers['anthropic-beta'] === 'string' && r.headers['anthropic-beta'].length > 0);
  const cc = conv.some(r => JSON.stringify(r.body).includes('\"cache_control\"'));
  const md = conv.every(r => r.body.metadata !== undefined);
  if (!(beta && cc && md)) why({ beta: conv.map(r => r.headers['anthropic-beta']), cc, md });
  return conv.length > 0 && beta && cc && md;"
jcheck "anthropic: the provider's key went as x-api-key, never the client's" "$WD_TMP/a.requests.json" "$CONV
  const good = conv.every(r => r.headers['x-api-key'] === 'test-anthropic-key' && !JSON.stringify(r.headers).includes('devkey'));
  if (!good) why(conv.map(r => r.headers['x-api-key']));
  return good;"

# --- B: Chat Completions ----------------------------------------------------------------------------------
STEPS=$(FILE="$FILE" FILE2="$FILE2" FINAL="$FINAL_TEXT" node -e '
  const f = process.env.FILE, g = process.env.FILE2;
  console.log(JSON.stringify({ mode: "agent", steps: [
    { calls: [ { name: "Write", args: { file_path: f, content: "alpha\nbeta\n" } },
               { name: "Write", args: { file_path: g, content: "one\n" } } ] },
    { call: { name: "Read", args: { file_path: f } } },
    { call: { name: "Edit", args: { file_path: f, old_string: "beta", new_string: "gamma" } } },
    { text: process.env.FINAL },
  ] }));')
post "$OAI_URL/_fake/reset" >/dev/null
post "$OAI_URL/_fake/script" "$STEPS" >/dev/null
task "openai" "$WD_TMP/b.json" ANTHROPIC_MODEL=claude-sonnet-4-5
curl -sS "$OAI_URL/_fake/agent" >"$WD_TMP/b.agent.json"
curl -sS "$OAI_URL/_fake/requests" >"$WD_TMP/b.requests.json"
jcheck "openai: the fake's agent ran all 4 steps, each continuing the conversation" "$WD_TMP/b.agent.json" "
  const good = D.next_step === 4 && D.log.length >= 4 && D.log.every(e => e.ok);
  if (!good) why(D);
  return good;"
jcheck "openai: every request got 200 with model gpt-4.1 and a bearer key" "$WD_TMP/b.requests.json" "
  const bad = D.filter(r => r.status !== 200 || (r.body && r.body.model !== 'gpt-4.1') ||
                            r.headers.authorization !== 'Bearer test-openai-key');
  if (bad.length) why(bad.map(r => ({ status: r.status, model: r.body && r.body.model })));
  return D.length >= 4 && bad.length === 0;"

# --- C: failover from Gemini to Anthropic mid tool loop ---------------------------------------------------
GSTEPS=$(FILE="$FILE" FILE2="$FILE2" node -e '
  const f = process.env.FILE, g = process.env.FILE2;
  console.log(JSON.stringify({ mode: "agent", steps: [
    { calls: [ { name: "Write", args: { file_path: f, content: "alpha\nbeta\n" } },
               { name: "Write", args: { file_path: g, content: "one\n" } } ] },
    { call: { name: "Read", args: { file_path: f } } },
    { unavailable: true },
  ] }));')
CANSWERS=$(FILE="$FILE" FINAL="$FINAL_TEXT" node -e '
  const f = process.env.FILE;
  console.log(JSON.stringify({ answers: [
    { tool_use: { name: "Edit", input: { file_path: f, old_string: "beta", new_string: "gamma" } } },
    { text: process.env.FINAL },
  ] }));')
post "$GEM_URL/_fake/reset" >/dev/null
post "$GEM_URL/_fake/script" "$GSTEPS" >/dev/null
post "$ANTH_URL/_fake/reset" >/dev/null
post "$ANTH_URL/_fake/script" "$CANSWERS" >/dev/null
task "failover" "$WD_TMP/c.json" ANTHROPIC_MODEL=claude-haiku-4-5
curl -sS "$GEM_URL/_fake/requests" >"$WD_TMP/c.gemini.json"
curl -sS "$ANTH_URL/_fake/requests" >"$WD_TMP/c.anthropic.json"
jcheck "failover: Gemini served the first two turns, then answered 503" "$WD_TMP/c.gemini.json" "
  const gen = D.filter(r => /GenerateContent|generateContent/.test(r.path) && r.body && r.body.tools);
  const ok = gen.filter(r => r.status === 200).length, u = gen.filter(r => r.status === 503).length;
  if (!(ok >= 2 && u >= 1)) why(gen.map(r => r.status));
  return ok >= 2 && u >= 1;"
jcheck "failover: Anthropic finished the task, every request 200, model claude-haiku-4-5" "$WD_TMP/c.anthropic.json" "$CONV
  const bad = D.filter(r => r.status !== 200);
  if (bad.length || conv.length < 2) why(D.map(r => ({ status: r.status, error: r.error })));
  return conv.length >= 2 && bad.length === 0 && conv.every(r => r.body.model === 'claude-haiku-4-5');"
jcheck "failover: no Gemini signature reached the Anthropic fake (no wdsig1. data, no signed toolu_wd ids)" "$WD_TMP/c.anthropic.json" "
  const s = JSON.stringify(D.map(r => r.body));
  const sig = /wdsig1\\./.test(s), ids = /toolu_wd[A-Za-z0-9]{20}_/.test(s);
  if (sig || ids) why({ sig, ids });
  return D.length > 0 && !sig && !ids;"
S=$(curl -sS "$WARDEN_METRICS_URL/metrics")
n=$(grep -E '^warden_upstream_fallbacks_total\{provider="gemini"\}' <<<"$S" | awk '{print $2}')
check "failover: warden_upstream_fallbacks_total{provider=gemini} counts the moves (${n:-none})" [ "${n:-0}" -ge 1 ]

wd_stop_warden
wd_finish
