#!/usr/bin/env bash
# Installs a test directory's npm dependencies into DIR/node_modules from its committed lock file (tests/idp,
# tests/admin, tests/aws, tests/sigv4, tests/cloud each call this from their setup.sh). Idempotent: nothing happens
# while node_modules is newer than package.json and package-lock.json and holds every PACKAGE named; a lock outside
# the tree serialises parallel runs (ctest may start several tests of one directory at once: one installs, the
# others wait and then see the stamp). npm's cache is preferred, so a machine that installed once needs no registry.
# Usage: bash tests/npm_setup.sh DIR PACKAGE...   (exit 3 when npm cannot install)
set -euo pipefail
dir="$(cd "$1" && pwd)"
shift
cd "$dir"
name="$(basename "$dir")"
stamp="node_modules/.warden-$name-installed"

up_to_date() {
  [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ] || return 1
  local p
  for p in "$@"; do [ -f "node_modules/$p/package.json" ] || return 1; done
}

up_to_date "$@" && exit 0
lock="${TMPDIR:-/tmp}/warden-$name-setup.$(printf '%s' "$dir" | cksum | cut -d' ' -f1).lock"
exec 9>"$lock"
if ! flock -w 300 9; then
  echo "npm_setup.sh: timed out waiting for another install in $dir" >&2
  exit 1
fi
up_to_date "$@" && exit 0
echo "npm_setup.sh: npm ci in $dir" >&2
if ! timeout -k 10 240 npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2; then
  echo "npm_setup.sh: npm ci failed in $dir (no registry and no cache?)" >&2
  exit 3
fi
touch "$stamp"
