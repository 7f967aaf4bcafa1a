#!/usr/bin/env bash
# Layers (DESIGN.md, "Layout"): dependencies point one way, lib <- config <- {secrets, authz, audit, otel,
# api, providers, router} <- server. (a) Every #include "dir/..." of a module names its own directory or
# one the module may use; nothing but server/ (and tests, bench) includes server/. (b) The core library
# (build-asan/libwarden_core.a) leaves no Warden symbol (wd_*) undefined that it does not define itself:
# the core does not reach into the server, the upstream client or the audit database side.
# Usage: bash tests/integration/test_layers.sh [build-asan/warden]   (the argument is not used)
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

# The modules each module may include, besides itself. Keep this minimal: a new pair is a design decision.
declare -A ALLOWED=(
  [lib]=""
  [config]="lib"
  [secrets]="lib config net"
  [authz]="lib config"
  [api]="lib"
  [providers]="lib config api"
  [router]="lib config api"
  [audit]="lib config secrets"
  [otel]="lib config secrets"
  [net]="lib"
  [gateway]="lib config secrets authz audit otel api providers router net"
  [cli]="lib net"
  [server]="lib config secrets authz audit otel api providers router net gateway cli"
)
MODULES="lib config secrets authz api providers router audit otel net gateway cli server"

# (a) includes, one line per module
for m in $MODULES; do
  bad=""
  while IFS= read -r line; do
    file="${line%%:*}"
    dir=$(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([A-Za-z0-9_]+)\/.*/\1/p' <<<"${line#*:}")
    [ -n "$dir" ] || continue
    [ "$dir" = "$m" ] && continue
    case " ${ALLOWED[$m]} " in *" $dir "*) continue ;; esac
    bad+=" ${file#"$WD_ROOT"/} -> $dir/;"
  done < <(grep -rHE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' --include='*.c' --include='*.h' \
             --exclude-dir=compat "$WD_ROOT/$m" || true)
  if [ -z "$bad" ]; then
    ok "$m/ includes only ${ALLOWED[$m]:-nothing of the project}${ALLOWED[$m]:+ and itself}"
  else
    fail "$m/ includes a layer it may not use:$bad"
  fi
done

# Nothing outside the modules above but tests/ and bench/ holds C that includes server/.
stray=$(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"server/' --include='*.c' --include='*.h' "$WD_ROOT" \
          --exclude-dir='build*' --exclude-dir=.git --exclude-dir=server --exclude-dir=tests --exclude-dir=bench \
          --exclude-dir=node_modules 2>/dev/null || true)
if [ -z "$stray" ]; then
  ok "only server/, tests/ and bench/ include server/"
else
  fail "server/ included from outside server/, tests/, bench/: $(echo "$stray" | sed "s#$WD_ROOT/##" | tr '\n' ' ')"
fi

# (b) the core library's undefined Warden symbols
CORE="$WD_ROOT/build-asan/libwarden_core.a"
if [ ! -f "$CORE" ]; then
  fail "nm -u: $CORE missing (make build-asan builds it)"
else
  undefined=$(comm -23 <(nm -u "$CORE" | awk '{print $NF}' | grep '^wd_' | sort -u) \
                       <(nm -g --defined-only "$CORE" | awk 'NF >= 3 {print $3}' | sort -u))
  if [ -z "$undefined" ]; then
    ok "nm -u: every wd_* symbol libwarden_core.a uses is defined in it"
  else
    fail "nm -u: libwarden_core.a uses wd_* symbols it does not define: $(echo "$undefined" | tr '\n' ' ')"
  fi
fi

wd_finish
