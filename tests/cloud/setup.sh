#!/usr/bin/env bash
# Installs the official cloud clients (@google-cloud/secret-manager, @azure/keyvault-secrets, @azure/identity) into
# tests/cloud/node_modules from the committed lock file, for the fakes' proofs. Idempotent: does nothing when
# node_modules is newer than package-lock.json; a lock serialises parallel runs. Exits 3 when npm cannot install.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$dir"
stamp="node_modules/.warden-cloud-installed"

up_to_date() {
  [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ] &&
    [ -f node_modules/@google-cloud/secret-manager/package.json ] &&
    [ -f node_modules/@azure/keyvault-secrets/package.json ] && [ -f node_modules/@azure/identity/package.json ]
}

up_to_date && exit 0

# ctest starts test_fake_gcp and test_fake_azure at once: one installs, the other waits and then sees the stamp.
lock="${TMPDIR:-/tmp}/warden-cloud-setup.$(printf '%s' "$dir" | cksum | cut -d' ' -f1).lock"
exec 9>"$lock"
if ! flock -w 300 9; then
  echo "setup.sh: timed out waiting for another install" >&2
  exit 1
fi
up_to_date && exit 0

echo "setup.sh: npm ci in $dir" >&2
# offline first: a machine without the registry still installs from npm's cache
if ! timeout -k 10 240 npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2; then
  echo "setup.sh: npm ci failed (no registry and no cache?)" >&2
  exit 3
fi
touch "$stamp"
