#!/usr/bin/env bash
# Installs the official OTLP .proto files into tests/otel/node_modules from the committed lock file, and
# prints the proto root: the directory that holds opentelemetry/proto/**/*.proto, for `protoc -I`.
# They come in @opentelemetry/otlp-grpc-exporter-base 0.38.0, the last release that ships them
# (build/protos, opentelemetry-proto of that time: Span has no `flags` field yet). protobufjs comes along
# as its dependency; the encoding test uses it to decode Warden's protobuf in JavaScript.
# Idempotent: does nothing when node_modules is newer than package-lock.json; a lock serialises parallel runs.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$dir"
stamp="node_modules/.warden-otel-installed"
root="$dir/node_modules/@opentelemetry/otlp-grpc-exporter-base/build/protos"

up_to_date() {
  [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ] &&
    [ -f "$root/opentelemetry/proto/collector/trace/v1/trace_service.proto" ] &&
    [ -f node_modules/protobufjs/package.json ]
}

if ! up_to_date; then
  exec 9>"$dir/.setup.lock"
  if ! flock -w 300 9; then
    echo "setup.sh: timed out waiting for another install" >&2
    exit 1
  fi
  if ! up_to_date; then
    echo "setup.sh: npm ci in $dir" >&2
    timeout -k 10 280 npm ci --no-audit --no-fund --loglevel=error >&2
    if [ ! -f "$root/opentelemetry/proto/collector/trace/v1/trace_service.proto" ]; then
      echo "setup.sh: no OTLP protos under $root after npm ci" >&2
      exit 1
    fi
    touch "$stamp"
  fi
fi
echo "$root"
