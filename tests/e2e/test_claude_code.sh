#!/usr/bin/env bash
# The real Claude Code CLI (from npm, pinned in package-lock.json) doing a scripted multi-step task through Warden
# against the strict fake Gemini: Write, two parallel Reads, Edit, final text; then a run on the haiku tier.
# The final answers carry a thoughtSignature after their text, as Gemini 3 does (issue 14: Claude Code printed
# an empty result when Warden put a redacted_thinking block after the text).
# Usage: bash tests/e2e/test_claude_code.sh path/to/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
E2E="$WD_ROOT/tests/e2e"
source "$E2E/claude_lib.sh"

bash "$E2E/setup.sh"

# Strict fake: thought signatures are checked, so a gateway that drops or mangles one gets a 400.
wd_start_fake
cfg=$(wd_config "$(wd_free_port)" "$FAKE_URL")
wd_start_warden "$cfg"

WORK="$WD_TMP/work"
mkdir -p "$WORK" "$WD_TMP/home"
FILE="$WORK/notes.txt"
FINAL_TEXT="Done: notes.txt was written, read twice and edited."

fake_post() { curl -sS --max-time 10 -X POST "$FAKE_URL$1" -H 'content-type: application/json' -d "${2:-}"; }
fake_get() { curl -sS --max-time 10 "$FAKE_URL$1"; }

# --- run 1: the multi-step task on the default model -----------------------------------------------------
script=$(FILE="$FILE" FINAL="$FINAL_TEXT" node -e '
  const f = process.env.FILE;
  console.log(JSON.stringify({ mode: "agent", text_signature: "empty_part", steps: [
    { call: { name: "Write", args: { file_path: f, content: "alpha\nbeta\n" } } },
    { calls: [ { name: "Read", args: { file_path: f } }, { name: "Read", args: { file_path: f } } ] },
    { call: { name: "Edit", args: { file_path: f, old_string: "beta", new_string: "gamma" } } },
    { text: process.env.FINAL },
  ] }));')
fake_post /_fake/reset >/dev/null
fake_post /_fake/script "$script" >/dev/null

OUT1="$WD_TMP/claude1.json"
t0=$(date +%s%N)
rc=0
run_claude "$OUT1" "Create notes.txt with two lines, read it back twice, then change beta to gamma." || rc=$?
echo "# claude run 1: exit $rc in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
if [ "$rc" -eq 0 ]; then ok "claude exits 0"; else fail "claude exits 0 (got $rc)"; tail -20 "$OUT1.err" >&2; head -c 2000 "$OUT1" >&2; echo >&2; fi
REQS1="$WD_TMP/requests1.json"
fake_get /_fake/requests >"$REQS1"
AGENT1="$WD_TMP/agent1.json"
fake_get /_fake/agent >"$AGENT1"
echo '{}' >"$OUT1.empty"
[ -s "$OUT1" ] && node -e 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))' "$OUT1" 2>/dev/null || cp "$OUT1.empty" "$OUT1"

jcheck "claude JSON output has is_error false and the final text" "$OUT1" "
  const good = D.is_error === false && D.subtype === 'success' && D.result === $(node -e 'console.log(JSON.stringify(process.argv[1]))' "$FINAL_TEXT");
  if (!good) why({ type: D.type, subtype: D.subtype, is_error: D.is_error, result: D.result });
  return good;"
if [ -f "$FILE" ] && [ "$(cat "$FILE")" = "$(printf 'alpha\ngamma')" ]; then
  ok "the file on disk has the edited content"
else
  fail "the file on disk has the edited content"; { echo "# $FILE:"; cat "$FILE" 2>&1 | sed 's/^/#   /'; } >&2
fi
jcheck "the fake's agent ran all 4 steps, each continuing the conversation" "$AGENT1" "
  const good = D.next_step === 4 && D.log.length >= 4 && D.log.every(e => e.ok);
  if (!good) why(D);
  return good;"

# The generate requests of the main conversation (Claude Code's side requests, if any, have no tools).
GEN='const gen = D.filter(r => /:(stream)?[gG]enerateContent/.test(r.path)); const conv = gen.filter(r => r.body && r.body.tools);'
jcheck "every request reached the fake and got 200" "$REQS1" "$GEN
  const bad = D.filter(r => r.status !== 200);
  if (bad.length) why(bad.map(r => ({ path: r.path, status: r.status })));
  return D.length > 0 && bad.length === 0 && conv.length >= 4;"
jcheck "the fake got the Write functionResponse in a user turn after the Write call" "$REQS1" "$GEN
  const good = conv.some(r => r.body.contents.some((c, i) => c.role === 'user' &&
    c.parts.some(p => p.functionResponse && p.functionResponse.name === 'Write') &&
    i > 0 && r.body.contents[i - 1].parts.some(p => p.functionCall && p.functionCall.name === 'Write')));
  if (!good) why(conv.map(r => r.body.contents.map(c => c.role + ':' + c.parts.map(p => Object.keys(p).join('+')).join(','))));
  return good;"
jcheck "the fake got two functionResponses (Read, Read) in one user turn" "$REQS1" "$GEN
  const good = conv.some(r => r.body.contents.some(c => c.role === 'user' &&
    c.parts.filter(p => p.functionResponse && p.functionResponse.name === 'Read').length === 2));
  if (!good) why(conv.map(r => r.body.contents.map(c => c.role + ':' + c.parts.map(p => Object.keys(p).join('+')).join(','))));
  return good;"
# Gemini signs only the first functionCall of a turn (parallel calls included): that part must come back
# with its signature in every model turn of every request's history.
jcheck "every history functionCall turn carries its thoughtSignature" "$REQS1" "$GEN
  let turns = 0, bad = [];
  for (const r of conv) r.body.contents.forEach((c, i) => {
    const calls = c.parts.filter(p => p.functionCall);
    if (c.role !== 'model' || calls.length === 0) return;
    turns++;
    if (typeof calls[0].thoughtSignature !== 'string' || calls[0].thoughtSignature.length < 16) bad.push({ path: r.path, turn: i, part: calls[0] });
  });
  if (bad.length || turns === 0) why({ turns, bad });
  const last = conv[conv.length - 1].body.contents.filter(c => c.role === 'model' && c.parts.some(p => p.functionCall)).length;
  if (last !== 3) why('model turns with calls in the last request: ' + last);
  return turns > 0 && bad.length === 0 && last === 3;"
jcheck "maxOutputTokens is set and <= 65536 in every generate request (Claude Code asks for 128000)" "$REQS1" "$GEN
  const bad = gen.filter(r => !(r.body.generationConfig && Number.isInteger(r.body.generationConfig.maxOutputTokens) &&
    r.body.generationConfig.maxOutputTokens >= 1 && r.body.generationConfig.maxOutputTokens <= 65536));
  if (bad.length) why(bad.map(r => r.body.generationConfig));
  return gen.length > 0 && bad.length === 0;"
jcheck "systemInstruction is present in every conversation request" "$REQS1" "$GEN
  const bad = conv.filter(r => !(r.body.systemInstruction && r.body.systemInstruction.parts &&
    r.body.systemInstruction.parts.some(p => typeof p.text === 'string' && p.text.length > 100)));
  if (bad.length) why(bad.map(r => r.body.systemInstruction));
  return conv.length > 0 && bad.length === 0;"
# Claude Code sends its environment as a role-system message after the prompt; Warden carries it as a
# <system-reminder> text part in the user turn so that the system instruction (the cached prefix) stays put.
jcheck "a <system-reminder> text part follows the prompt in a user turn (Claude Code's mid-conversation system message)" "$REQS1" "$GEN
  const isRem = p => typeof p.text === 'string' && p.text.startsWith('<system-reminder>') && p.text.trimEnd().endsWith('</system-reminder>');
  const good = conv.length > 0 && conv.every(r => r.body.contents.some(c => c.role === 'user' &&
    c.parts.some((p, j) => isRem(p) && c.parts.slice(0, j).some(q => typeof q.text === 'string' && q.text.includes('notes.txt') && !isRem(q)))));
  if (!good) why(conv[0] && conv[0].body.contents[0].parts.map(p => (p.text || '').slice(0, 80)));
  return good;"
# Structural keys only: tool arguments and results are data, and schema property names are the tool's own.
WALK='
  const ANTHROPIC = new Set(["cache_control", "context_management", "metadata", "output_config", "thinking",
    "max_tokens", "system", "messages", "tool_choice", "input_schema", "tool_use_id", "betas", "stream"]);
  const found = [];
  const walk = (v, path, propNames) => {
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, path + "[" + i + "]", false));
    if (!v || typeof v !== "object") return;
    for (const [k, x] of Object.entries(v)) {
      if (!propNames && (k.includes("_") || ANTHROPIC.has(k))) found.push(path + "." + k);
      if ((k === "args" && path.endsWith(".functionCall")) || (k === "response" && path.endsWith(".functionResponse"))) continue;
      walk(x, path + "." + k, k === "properties" || k === "$defs" || k === "definitions" || k === "patternProperties");
    }
  };'
jcheck "no snake_case or Anthropic-only fields (cache_control, context_management, metadata, ...) reached the fake" "$REQS1" "$WALK
  D.forEach((r, i) => walk(r.body, 'requests[' + i + ']', false));
  if (found.length) why([...new Set(found.map(p => p.replace(/\[\d+\]/g, '[]')))]);
  return D.length > 0 && found.length === 0;"
jcheck "the default model (claude-opus-*) went to gemini-2.5-pro" "$REQS1" "$GEN
  const paths = [...new Set(conv.map(r => r.path))];
  if (!paths.every(p => p.startsWith('/v1beta/models/gemini-2.5-pro:'))) why(paths);
  return conv.length > 0 && paths.every(p => p.startsWith('/v1beta/models/gemini-2.5-pro:'));"

# --- run 2: the haiku tier --------------------------------------------------------------------------------
HAIKU_TEXT="Haiku tier answering through Warden."
fake_post /_fake/reset >/dev/null
fake_post /_fake/script "{\"mode\":\"agent\",\"text_signature\":\"last_part\",\"steps\":[{\"text\":\"$HAIKU_TEXT\"}]}" >/dev/null
OUT2="$WD_TMP/claude2.json"
t0=$(date +%s%N)
rc=0
run_claude "$OUT2" "Say hello in one line." ANTHROPIC_MODEL=claude-haiku-5-5 || rc=$?
echo "# claude run 2 (haiku): exit $rc in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
if [ "$rc" -eq 0 ]; then ok "claude on the haiku tier exits 0"; else fail "claude on the haiku tier exits 0 (got $rc)"; tail -20 "$OUT2.err" >&2; head -c 2000 "$OUT2" >&2; echo >&2; fi
[ -s "$OUT2" ] && node -e 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))' "$OUT2" 2>/dev/null || cp "$OUT1.empty" "$OUT2"
jcheck "claude on the haiku tier returns the scripted text" "$OUT2" "
  const good = D.is_error === false && D.result === '$HAIKU_TEXT';
  if (!good) why({ type: D.type, subtype: D.subtype, is_error: D.is_error, result: D.result });
  return good;"
REQS2="$WD_TMP/requests2.json"
fake_get /_fake/requests >"$REQS2"
jcheck "ANTHROPIC_MODEL=claude-haiku-5-5 hits gemini-2.5-flash-lite at the fake" "$REQS2" "$GEN
  const paths = [...new Set(gen.map(r => r.path))];
  const good = conv.length >= 1 && gen.every(r => r.path.startsWith('/v1beta/models/gemini-2.5-flash-lite:') && r.status === 200);
  if (!good) why(gen.map(r => [r.path, r.status]));
  return good;"

wd_stop_warden
wd_finish
