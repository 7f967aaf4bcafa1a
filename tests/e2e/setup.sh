#!/usr/bin/env bash
# Installs the real npm clients for the e2e tests into tests/e2e/node_modules, from the committed lock file.
# Idempotent: does nothing when node_modules is newer than package-lock.json; a lock serialises parallel runs.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$dir"
stamp="node_modules/.warden-e2e-installed"
claude_bin="node_modules/@anthropic-ai/claude-code-linux-x64/claude"

up_to_date() {
  [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ] &&
    [ -x "$claude_bin" ] && [ -f node_modules/@anthropic-ai/sdk/package.json ]
}

up_to_date && exit 0

# ctest may run several e2e scripts at once: only one of them installs, the others wait and then see the stamp.
exec 9>"$dir/.setup.lock"
if ! flock -w 600 9; then
  echo "setup.sh: timed out waiting for another install" >&2
  exit 1
fi
up_to_date && exit 0

echo "setup.sh: npm ci in $dir" >&2
# npm 11 does not run install scripts by default; Claude Code's native binary comes in the optional
# dependency for this platform and runs as is.
timeout -k 10 540 npm ci --no-audit --no-fund --loglevel=error >&2
if [ ! -x "$claude_bin" ]; then
  echo "setup.sh: $claude_bin missing after npm ci (is this linux-x64?)" >&2
  exit 1
fi
touch "$stamp"
