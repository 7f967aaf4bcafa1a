#!/usr/bin/env bash
# The container image without a container runtime (issue 18). Statically: the Dockerfile builds on Debian 12 and
# runs on Debian 12 slim, as a numeric non-root user, with `warden serve` as its entrypoint and the OCI labels; the
# runtime stage installs exactly the Debian packages that own the libraries the release binary links against (its
# NEEDED entries, by dpkg -S), and the build stage the -dev packages scripts/deps.sh builds with. Then the release
# binary runs in a clean root made of nothing but the files of those runtime packages and their Depends (chroot):
# `warden version`, `config check`, and `serve` answering /healthz and a proxied request, as user 65532.
# Usage: bash tests/integration/test_container.sh [ignored: always build/warden, the release build]
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/warden"

DF="$WD_ROOT/Dockerfile"
if [ ! -x "$WARDEN_BIN" ] || [ ! -f "$DF" ]; then
  fail "the release build (make build) and the Dockerfile are there"
  wd_finish
  exit 1
fi

# ---- the Dockerfile, statically -----------------------------------------------------------------------------
mapfile -t FROMS < <(grep -E '^FROM ' "$DF")
check "two stages: build on debian:12, run on debian:12-slim" test "${#FROMS[@]}" = 2 -a "${FROMS[0]}" = "FROM debian:12 AS build" -a "${FROMS[1]}" = "FROM debian:12-slim"
# the final stage's lines, continuation lines joined
awk '/^FROM /{n++} n==2' "$DF" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -v '^#' >"$WD_TMP/final"
awk '/^FROM /{n++} n==1' "$DF" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -v '^#' >"$WD_TMP/build"
FINAL=$(cat "$WD_TMP/final")
BUILD=$(cat "$WD_TMP/build")
check "the final stage runs as a numeric non-root user" grep -qE '^USER [1-9][0-9]*:[1-9][0-9]*$' "$WD_TMP/final"
check "the entrypoint is warden serve (exec form)" grep -qxF 'ENTRYPOINT ["/usr/local/bin/warden", "serve"]' "$WD_TMP/final"
for l in title description version base.name; do
  check "OCI label org.opencontainers.image.$l" grep -q "org.opencontainers.image.$l=" "$WD_TMP/final"
done
check "nothing runs after USER (no shell needed at run time: no RUN, no shell-form CMD/ENTRYPOINT)" \
  test -z "$(awk '/^USER /{u=1} u && /^(RUN|CMD [^[]|ENTRYPOINT [^[])/' "$WD_TMP/final")"
# apt packages of a stage's install line(s)
apt_pkgs() { grep -oE 'apt-get install[^&]*' <<<"$1" | sed 's/apt-get install//' | tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u; }
RUNTIME=$(apt_pkgs "$FINAL")
BUILDP=$(apt_pkgs "$BUILD")

# the packages owning the libraries the binary needs directly
NEEDED=$(readelf -d "$WARDEN_BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
OWNERS=$(for so in $NEEDED; do
  f=$(ldd "$WARDEN_BIN" | awk -v s="$so" '$1 == s {print $3}')
  [ -n "$f" ] || { echo "UNRESOLVED:$so"; continue; }
  dpkg -S "$(readlink -f "$f")" 2>/dev/null | head -1 | cut -d: -f1 || dpkg -S "$f" | head -1 | cut -d: -f1
done | sort -u)
check "every library the binary needs belongs to an installed package ($(echo $NEEDED))" bash -c "! grep -q UNRESOLVED <<<'$OWNERS'"
WANT=$( (echo "$OWNERS"; echo ca-certificates) | sort -u)
if [ "$WANT" = "$RUNTIME" ]; then
  ok "the runtime stage installs exactly the owners of the binary's libraries and ca-certificates: $(echo $RUNTIME)"
else
  fail "runtime packages differ: the binary needs $(echo $WANT), the Dockerfile installs $(echo $RUNTIME)"
fi
DEPS_BUILD=$(tr ' ()' '\n\n\n' <"$WD_ROOT/scripts/deps.sh" | grep -E '^[a-z0-9][a-z0-9.+-]*-dev$' | grep -v 'clang-rt' | sort -u)
MISSING_DEV=$(comm -23 <(echo "$DEPS_BUILD") <(echo "$BUILDP"))
check "the build stage installs every -dev package scripts/deps.sh builds with (missing: ${MISSING_DEV:-none})" test -z "$MISSING_DEV"

# ---- a clean root with nothing but the runtime packages and their Depends ------------------------------------
declare -A SEEN=()
closure() {   # closure PKG: PKG and its Depends/Pre-Depends, recursively (the first of alternatives, installed)
  local p="$1" d
  [ -n "${SEEN[$p]:-}" ] && return
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return
  SEEN[$p]=1
  for d in $(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p" | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/ //g' | grep .); do
    closure "$d"
  done
}
for p in $RUNTIME; do closure "$p"; done
ROOTFS="$WD_TMP/rootfs"
mkdir -p "$ROOTFS/usr/lib" "$ROOTFS/usr/lib64" "$ROOTFS/usr/bin" "$ROOTFS/usr/sbin"
# /lib, /lib64, /bin as in Debian 12 (merged /usr): links into /usr, made before the files go in
for l in lib lib64 bin sbin; do [ -L "/$l" ] && ln -sfn "$(readlink "/$l")" "$ROOTFS/$l"; done
for p in "${!SEEN[@]}"; do
  dpkg -L "$p" 2>/dev/null | while IFS= read -r f; do
    [ -f "$f" ] || [ -L "$f" ] || continue
    mkdir -p "$ROOTFS$(dirname "$f")"
    cp -a "$f" "$ROOTFS$f" 2>/dev/null || true
  done
done
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc/warden" "$ROOTFS/var/lib/warden/audit-spool" "$ROOTFS/tmp" "$ROOTFS/dev"
cp "$WARDEN_BIN" "$ROOTFS/usr/local/bin/warden"
chown -R 65532:65532 "$ROOTFS/var/lib/warden"
chmod 1777 "$ROOTFS/tmp"
# the device nodes a process expects (/dev/null, /dev/urandom); getrandom() needs none
for d in null urandom; do cp -a "/dev/$d" "$ROOTFS/dev/$d" 2>/dev/null || mknod -m 666 "$ROOTFS/dev/$d" c 1 $([ $d = null ] && echo 3 || echo 9); done
NPKG=${#SEEN[@]}
check "the clean root holds $NPKG packages and no shell" test ! -e "$ROOTFS/usr/bin/sh" -a ! -e "$ROOTFS/usr/bin/bash" -a "$NPKG" -gt 5
if ! command -v chroot >/dev/null || [ "$(id -u)" -ne 0 ]; then
  fail "chroot as root is available (the clean-root run needs it)"
  wd_finish
  exit 1
fi
# as the image's user
in_root() { chroot --userspec=65532:65532 "$ROOTFS" "$@"; }
V=$(in_root /usr/local/bin/warden version 2>&1)
check "warden version runs in the clean root as 65532 ($V)" bash -c "grep -q '0\\.' <<<'$V'"
export WARDEN_DEV_KEY="wk-container-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export GEMINI_API_KEY="gk-container-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
wd_start_fake --key "$GEMINI_API_KEY"
PORT=$(wd_free_port)
wd_config "$PORT" "$FAKE_URL" >/dev/null
CFG=$(wd_config "$PORT" "$FAKE_URL" "audit:
  database: postgresql://nobody@127.0.0.1:1/none
  mode: fail_open
  spool: /var/lib/warden/audit-spool")
cp "$CFG" "$ROOTFS/etc/warden/warden.yaml"
OUTC=$(in_root /usr/local/bin/warden config check /etc/warden/warden.yaml 2>&1)
check "warden config check runs in the clean root" bash -c "grep -q ': ok' <<<'$OUTC'"
# serve (as the image's entrypoint would), reached from outside the root; audit fail_open spools to the volume
env -i GEMINI_API_KEY="$GEMINI_API_KEY" WARDEN_DEV_KEY="$WARDEN_DEV_KEY" \
  "$(command -v chroot)" --userspec=65532:65532 "$ROOTFS" /usr/local/bin/warden serve --config /etc/warden/warden.yaml \
  >"$WD_TMP/serve.out" 2>"$WD_TMP/serve.log" &
SPID=$!
WD_PIDS+=("$SPID")
if wd_wait_http "http://127.0.0.1:$PORT/healthz"; then
  ok "warden serve in the clean root answers /healthz"
  code=$(curl -s -o "$WD_TMP/r.json" -w '%{http_code}' --max-time 20 -H "x-api-key: $WARDEN_DEV_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    -d '{"model":"claude-sonnet-4-5","max_tokens":32,"messages":[{"role":"user","content":"from the clean root"}]}' \
    "http://127.0.0.1:$PORT/anthropic/v1/messages")
  check "a request through it reaches the provider and answers 200 (got $code)" test "$code" = 200
else
  fail "warden serve in the clean root answers /healthz"; tail -20 "$WD_TMP/serve.log" >&2
fi
kill -TERM "$SPID" 2>/dev/null
rc=0; wait "$SPID" || rc=$?
check "it drains and exits 0 on SIGTERM (got $rc)" test "$rc" = 0
MINE=$(find "$ROOTFS/var/lib/warden/audit-spool" -type f -uid 65532 | wc -l)
OTHER=$(find "$ROOTFS/var/lib/warden" -newer "$ROOTFS/usr/local/bin/warden" ! -uid 65532 | wc -l)
check "it ran as uid 65532: the audit spool it wrote ($MINE files) is owned by 65532, nothing else" \
  test "$MINE" -ge 1 -a "$OTHER" = 0
wd_finish
