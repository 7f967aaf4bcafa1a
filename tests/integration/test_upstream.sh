#!/usr/bin/env bash
# Runs the upstream client's integration check (tests/integration/upstream_check.c) against its Node
# fake. $1 is the warden binary; CMake builds upstream_check next to it. Exits with the check's status.
set -euo pipefail
bin_dir="$(cd "$(dirname "${1:?usage: test_upstream.sh path/to/warden}")" && pwd)"
check="$bin_dir/upstream_check"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ ! -x "$check" ]; then
  echo "test_upstream: $check not built" >&2
  exit 1
fi
# The check finds the fake relative to the repo root and bounds every wait itself; the outer
# timeout only guards against a wedged process.
cd "$repo"
status=0
timeout -k 5 180 "$check" "$repo/tests/fakes/upstream_test_server.mjs" || status=$?
exit "$status"
