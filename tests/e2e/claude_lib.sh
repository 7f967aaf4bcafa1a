# What the Claude Code e2e tests share (sourced after tests/lib.sh): the CLI's path, a JSON check, and one run of
# the real CLI. Needs WORK (the run's directory) and WARDEN_URL.
CLAUDE="$WD_ROOT/tests/e2e/node_modules/@anthropic-ai/claude-code-linux-x64/claude"

# jcheck DESC FILE 'JS returning true/false, with D = parsed FILE': one ok/not ok line; JS may print why.
jcheck() {
  local d="$1" f="$2" js="$3"
  if timeout 30 node -e '
    const fs = require("fs");
    const D = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const why = (...a) => console.error("#  ", ...a.map(x => typeof x === "string" ? x : JSON.stringify(x).slice(0, 800)));
    const f = new Function("D", "why", process.argv[2]);
    process.exit(f(D, why) ? 0 : 1);
  ' "$f" "$js"; then ok "$d"; else fail "$d"; fi
}

# run_claude OUT PROMPT [env...]: the real CLI, as root, in WORK, with a clean environment and no permission
# bypass; OUT holds its JSON output ({} when it printed none or no JSON), OUT.err its stderr.
run_claude() {
  local out="$1" prompt="$2"; shift 2
  local rc=0
  (cd "$WORK" && timeout -k 5 180 env -i PATH=/usr/bin:/bin HOME="$WD_TMP/home" \
    ANTHROPIC_BASE_URL="$WARDEN_URL/anthropic" ANTHROPIC_API_KEY=devkey \
    DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 "$@" \
    "$CLAUDE" -p "$prompt" --output-format json --allowedTools Write,Read,Edit,Bash </dev/null >"$out" 2>"$out.err") || rc=$?
  [ -s "$out" ] && node -e 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))' "$out" 2>/dev/null || echo '{}' >"$out"
  return "$rc"
}
