#!/usr/bin/env bash
# Installs the Debian packages Warden builds and tests with. Idempotent: when everything
# is present it only runs dpkg-query, so `make run` and `make test` stay fast.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libh2o-dev libuv1-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
      libjson-c-dev libyaml-dev libpq-dev libcmocka-dev
      postgresql openssl curl wrk nghttp2-client procps util-linux
      protobuf-compiler prometheus glewlwyd tmux python3-hvac python3-boto3 yamllint haproxy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "deps: run as root to install packages" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The tests run their own glewlwyd, Prometheus and HAProxy on loopback: the system services the packages start (on all
  # interfaces, with Debian's defaults) are stopped where systemd runs them.
  for s in glewlwyd prometheus haproxy; do
    case " ${missing[*]} " in *" $s "*) systemctl disable --now "$s" >/dev/null 2>&1 || true ;; esac
  done
fi
# Node runs the real clients (Claude Code, SDKs) and the fake providers; the machine image
# ships Node 20 with npm. Only a machine without any node gets Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
