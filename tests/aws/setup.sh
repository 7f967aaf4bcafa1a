#!/usr/bin/env bash
# Installs the official AWS SDK clients (tests/aws/package.json) into tests/aws/node_modules, from the committed lock
# file. Idempotent: does nothing when node_modules is newer than package-lock.json; a lock serialises parallel runs.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$dir"
stamp="node_modules/.warden-aws-installed"

up_to_date() {
  [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ] &&
    [ -f node_modules/@aws-sdk/client-secrets-manager/package.json ]
}

up_to_date && exit 0

# ctest may start several AWS tests at once: only one of them installs, the others wait and then see the stamp.
# The lock lives outside the tree (nothing to ignore), one per checkout.
lock="${TMPDIR:-/tmp}/warden-aws-setup.$(printf '%s' "$dir" | cksum | cut -d' ' -f1).lock"
exec 9>"$lock"
if ! flock -w 300 9; then
  echo "setup.sh: timed out waiting for another install" >&2
  exit 1
fi
up_to_date && exit 0

echo "setup.sh: npm ci in $dir" >&2
timeout -k 10 240 npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2
touch "$stamp"
