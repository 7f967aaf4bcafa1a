#!/usr/bin/env bash
# The Helm chart (deploy/helm/warden) with a real helm v3, no cluster: lint and render the default values, every
# examples/*.yaml and the optional parts on and off; every manifest against the Kubernetes API schemas
# (tests/helm/validate.mjs), yamllint, the schema's refusals, the rendered Warden config through
# `warden config check`, the Deployment's security context, probes and drain, and the config checksum.
# Usage: test_helm.sh WARDEN_BIN
source "$(dirname "$0")/../lib.sh" "$1"

CHART="$WD_ROOT/deploy/helm/warden"
HERE="$WD_ROOT/tests/helm"
HELM="$(bash "$HERE/setup.sh" | tail -1)"
# helm keeps no state of ours: its cache, config and data homes are this test's temp dir
export HELM_CACHE_HOME="$WD_TMP/helm/cache" HELM_CONFIG_HOME="$WD_TMP/helm/config" HELM_DATA_HOME="$WD_TMP/helm/data"
KUBE=1.31.0
YL="$HERE/yamllint.yaml"
R="$WD_TMP/render"
mkdir -p "$R"

# render NAME [helm args...]: helm template into $R/NAME.yaml and $R/NAME.json (PyYAML reads YAML 1.1, as the
# API server's decoder does); returns helm's status
render() {
  local name="$1"
  shift
  "$HELM" template warden "$CHART" --namespace ai --kube-version "$KUBE" "$@" >"$R/$name.yaml" 2>"$R/$name.err" || return 1
  python3 -c 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))' \
    "$R/$name.yaml" >"$R/$name.json"
}

# py_checks CHECK NAME [args]: tests/helm/checks.py's ok/not ok lines, counted here
py_checks() {
  local line
  while IFS= read -r line; do
    case "$line" in
      "ok - "*) ok "$2: ${line#ok - }" ;;
      "not ok - "*) fail "$2: ${line#not ok - }" ;;
      *) echo "$line" ;;
    esac
  done < <(python3 "$HERE/checks.py" "$1" "$R/$2.json" "${@:3}" 2>&1 || echo "not ok - checks.py $1 failed")
}

# full NAME [helm args...]: render, schemas, yamllint, config check and the Deployment's checks
full() {
  local name="$1"
  shift
  if ! render "$name" "$@"; then
    fail "$name: helm template"
    cat "$R/$name.err" >&2
    return
  fi
  ok "$name: helm template"
  if node "$HERE/validate.mjs" "$R/$name.json" >"$R/$name.valid" 2>&1; then
    ok "$name: every manifest valid against the API schemas ($(tail -1 "$R/$name.valid"))"
  else
    fail "$name: manifests against the API schemas"
    grep -v '^ok - ' "$R/$name.valid" >&2
  fi
  check "$name: yamllint clean on the rendered manifests" yamllint -s -c "$YL" "$R/$name.yaml"
  python3 "$HERE/checks.py" config "$R/$name.json" >"$R/$name.warden.yaml"
  if "$WARDEN_BIN" config check "$R/$name.warden.yaml" >"$R/$name.check" 2>&1; then
    ok "$name: the rendered Warden config passes warden config check"
  else
    fail "$name: warden config check"
    cat "$R/$name.check" "$R/$name.warden.yaml" >&2
  fi
  py_checks deployment "$name"
  py_checks restricted "$name"
}

lint() {
  local name="$1"
  shift
  if "$HELM" lint --strict "$CHART" --namespace ai --kube-version "$KUBE" "$@" >"$R/lint.$name" 2>&1; then
    ok "helm lint --strict: $name"
  else
    fail "helm lint --strict: $name"
    cat "$R/lint.$name" >&2
  fi
}

# --- lint and render: defaults, each example, the optional parts all on and all off
lint defaults
full defaults
for ex in "$CHART"/examples/*.yaml; do
  n="$(basename "$ex" .yaml)"
  lint "$n" -f "$ex"
  full "$n" -f "$ex"
done
MIN=(-f "$CHART/examples/minimal.yaml")
ON=(--set autoscaling.enabled=true --set autoscaling.openStreams.enabled=true --set ingress.enabled=true
  --set httpRoute.enabled=true --set networkPolicy.enabled=true --set serviceMonitor.enabled=true
  --set grafanaDashboard.enabled=true --set podDisruptionBudget.enabled=true)
OFF=(--set autoscaling.enabled=false --set ingress.enabled=false --set httpRoute.enabled=false
  --set networkPolicy.enabled=false --set serviceMonitor.enabled=false --set grafanaDashboard.enabled=false
  --set podDisruptionBudget.enabled=false)
lint all-on "${MIN[@]}" "${ON[@]}"
full all-on "${MIN[@]}" "${ON[@]}"
full all-off "${MIN[@]}" "${OFF[@]}"
kinds_on="$(python3 "$HERE/checks.py" kinds "$R/all-on.json")"
kinds_off="$(python3 "$HERE/checks.py" kinds "$R/all-off.json")"
for k in HorizontalPodAutoscaler Ingress HTTPRoute NetworkPolicy ServiceMonitor PodDisruptionBudget; do
  check "on: $k rendered" grep -qw "$k" <<<"$kinds_on"
  check "off: no $k" bash -c "! grep -qw $k <<<'$kinds_off'"
done
check "all-on: a dashboard ConfigMap" grep -q 'name: warden-dashboard' "$R/all-on.yaml"
check "all-off: no dashboard ConfigMap" bash -c "! grep -q 'name: warden-dashboard' '$R/all-off.yaml'"
check "HPA on: the Deployment leaves replicas to it" bash -c "! python3 -c 'import json,sys; d=[x for x in json.load(open(sys.argv[1])) if x[\"kind\"]==\"Deployment\"][0]; sys.exit(0 if \"replicas\" in d[\"spec\"] else 1)' '$R/all-on.json'"
check "HPA on: open streams per pod through the custom metrics API" grep -q 'name: warden_open_streams' "$R/all-on.yaml"
check "the probed paths are Warden's: /healthz and /readyz in server/server.c" grep -q 'H2O_STRLIT("/readyz")' "$WD_ROOT/server/server.c"
check "... /healthz" grep -q 'H2O_STRLIT("/healthz")' "$WD_ROOT/server/server.c"
check "the HPA's open-streams metric is one Warden exports (server/metrics.c)" grep -q '"warden_open_streams"' "$WD_ROOT/server/metrics.c"
py_checks netpol all-on
py_checks netpol eks
py_checks identity eks eks
py_checks identity gke gke
py_checks identity aks aks
py_checks identity minimal none
py_checks migrate eks warden-db-owner
py_checks migrate aks warden-db-owner
check "no audit or governance: no migrate Job" bash -c "! grep -q 'kind: Job' '$R/minimal.yaml'"

# more shapes of the Deployment
full hard-spread "${MIN[@]}" --set podAntiAffinity=hard --set topologySpread.whenUnsatisfiable=DoNotSchedule
full ephemeral-state "${MIN[@]}" --set stateVolume.type=ephemeral --set stateVolume.size=5Gi
full no-metrics "${MIN[@]}" --set warden.metrics.enabled=false --set serviceMonitor.enabled=true
check "metrics off: no metrics Service and no ServiceMonitor" bash -c "! grep -qE 'name: warden-metrics|kind: ServiceMonitor' '$R/no-metrics.yaml'"
full long-drain "${MIN[@]}" --set warden.drainTimeout=2m --set terminationGracePeriodSeconds=140
full old-kube "${MIN[@]}" --kube-version 1.29.0
check "Kubernetes 1.29: preStop runs sleep (no sleep action before 1.30)" grep -q 'command: \["sleep", "10"\]' "$R/old-kube.yaml"
check "Kubernetes 1.31: preStop is the sleep action" grep -qE '^ +sleep:$' "$R/defaults.yaml"

# warden config check is a real gate: a raw key pasted where a reference belongs renders, and is caught there
render raw-key "${MIN[@]}" --set 'config.providers.gemini.keys[0].secret=AIzaSyNotAReference'
python3 "$HERE/checks.py" config "$R/raw-key.json" >"$R/raw-key.warden.yaml"
check "a raw key in config fails warden config check" bash -c "! '$WARDEN_BIN' config check '$R/raw-key.warden.yaml' >'$R/raw-key.check' 2>&1"
check "... and the message names the key, not the value" bash -c "grep -q 'providers.gemini.keys\[0\].secret' '$R/raw-key.check' && ! grep -q AIzaSyNotAReference '$R/raw-key.check'"

# --- the packaged chart: what `helm package` ships
if "$HELM" package "$CHART" -d "$WD_TMP/pkg" >"$R/package.out" 2>&1; then
  ok "helm package"
  tar -tzf "$WD_TMP"/pkg/warden-*.tgz >"$R/package.list"
  check "the package has the schema, the README and the dashboard" bash -c "grep -qx 'warden/values.schema.json' '$R/package.list' && grep -qx 'warden/README.md' '$R/package.list' && grep -qx 'warden/files/grafana-dashboard.json' '$R/package.list'"
  check "the package leaves out examples/" bash -c "! grep -q '^warden/examples/' '$R/package.list'"
else
  fail "helm package"
  cat "$R/package.out" >&2
fi

# --- values files
check "yamllint clean on values.yaml and examples/*.yaml" yamllint -s -c "$YL" "$CHART/values.yaml" "$CHART"/examples/*.yaml

# --- the chart's README lists every value (each leaf of values.yaml; maps of free-form objects as one value)
check "the chart README lists every value of values.yaml" python3 -c '
import re, sys, yaml
whole = {"config", "resources", "migrate.resources", "podSecurityContext", "securityContext", "autoscaling.behavior",
         "probes.startup", "probes.liveness", "probes.readiness", "grafanaDashboard.labels"}
paths = []
def walk(o, p):
    if isinstance(o, dict) and o and p not in whole:
        for k, v in o.items():
            walk(v, f"{p}.{k}" if p else k)
    else:
        paths.append(p)
walk(yaml.safe_load(open(sys.argv[1])), "")
listed = set(re.findall(r"^\| `([^`]+)` \|", open(sys.argv[2]).read(), re.M))
missing = [p for p in paths if p not in listed]
print("not in the README:", missing) if missing else None
sys.exit(1 if missing else 0)' "$CHART/values.yaml" "$CHART/README.md"

# --- the dashboard: the chart's copy is deploy/grafana-dashboard.json, and the ConfigMap carries it whole
check "the chart's dashboard equals deploy/grafana-dashboard.json" cmp -s "$CHART/files/grafana-dashboard.json" "$WD_ROOT/deploy/grafana-dashboard.json"
check "the dashboard ConfigMap holds the dashboard's JSON unchanged" python3 -c '
import json, sys
docs = json.load(open(sys.argv[1]))
cm = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")][0]
sys.exit(0 if json.loads(cm["data"]["warden.json"]) == json.load(open(sys.argv[2])) else 1)' "$R/all-on.json" "$WD_ROOT/deploy/grafana-dashboard.json"

# --- the config checksum rolls the pods on a config change, and only then
render sum-a "${MIN[@]}"
render sum-b "${MIN[@]}" --set config.workers=4
render sum-c "${MIN[@]}" --set warden.drainTimeout=20s
render sum-d "${MIN[@]}" --set replicaCount=5
render sum-e "${MIN[@]}" --set reload.strategy=sighup
a="$(python3 "$HERE/checks.py" checksum "$R/sum-a.json")"
check "checksum/config is a sha256" grep -qE '^[0-9a-f]{64}$' <<<"$a"
check "checksum/config changes with a config value" test "$a" != "$(python3 "$HERE/checks.py" checksum "$R/sum-b.json")"
check "checksum/config changes with a chart-owned setting (drainTimeout)" test "$a" != "$(python3 "$HERE/checks.py" checksum "$R/sum-c.json")"
check "checksum/config stays when only the replica count changes" test "$a" = "$(python3 "$HERE/checks.py" checksum "$R/sum-d.json")"
check "reload.strategy sighup: no checksum annotation (pods keep running, SIGHUP reloads)" test -z "$(python3 "$HERE/checks.py" checksum "$R/sum-e.json")"

# --- refusals: values.schema.json, and the template's own checks, each with its message
refuse() {
  local what="$1" want="$2" out
  shift 2
  if out="$("$HELM" template warden "$CHART" --kube-version "$KUBE" "${MIN[@]}" "$@" 2>&1)"; then
    fail "refused: $what (rendered)"
  elif grep -qF -- "$want" <<<"$out"; then
    ok "refused: $what"
  else
    fail "refused: $what (message: $(head -3 <<<"$out" | tr '\n' ' '))"
  fi
}
refuse "replicaCount 0" "replicaCount: Must be greater than or equal to 1" --set replicaCount=0
refuse "replicaCount not a number" "replicaCount: Invalid type. Expected: integer" --set-string replicaCount=three
refuse "an unknown top-level key" "Additional property replicas is not allowed" --set replicas=3
refuse "an unknown nested key" "Additional property pullpolicy is not allowed" --set image.pullpolicy=Always
refuse "a bad image pull policy" 'image.pullPolicy must be one of the following: "Always", "IfNotPresent", "Never"' --set image.pullPolicy=Sometimes
refuse "a grace period not longer than the drain" "terminationGracePeriodSeconds (40) must be longer than lifecycle.preStopSleepSeconds (10) + warden.drainTimeout (30s = 30s) + 2s" --set terminationGracePeriodSeconds=40
refuse "a grace period equal to drain_timeout" "must be longer than" --set terminationGracePeriodSeconds=60 --set warden.drainTimeout=1m --set lifecycle.preStopSleepSeconds=1
refuse "a drain timeout that is no Warden duration" "warden.drainTimeout: Does not match pattern" --set warden.drainTimeout="30 seconds"
refuse "a writable root filesystem" "securityContext.readOnlyRootFilesystem does not match: true" --set securityContext.readOnlyRootFilesystem=false
refuse "privilege escalation" "securityContext.allowPrivilegeEscalation does not match: false" --set securityContext.allowPrivilegeEscalation=true
refuse "an added capability" "securityContext.capabilities.add: Array must have at most 0 items" --set 'securityContext.capabilities.add[0]=NET_ADMIN'
refuse "capabilities not all dropped" "securityContext.capabilities.drop: At least one of the items must match" --set 'securityContext.capabilities.drop[0]=NET_RAW'
refuse "running as root" "podSecurityContext.runAsNonRoot does not match: true" --set podSecurityContext.runAsNonRoot=false
refuse "a bad Service type" "service.type must be one of the following" --set service.type=ExternalName
refuse "an OTLP endpoint with user:password@" "otel.endpoint: Does not match pattern" --set otel.endpoint=http://u:p@collector:4318
refuse "a malformed IRSA role" "cloud.aws.roleArn: Does not match pattern" --set cloud.aws.roleArn=warden-role
refuse "an AKS client id that is no GUID" "cloud.azure.clientId: Does not match pattern" --set cloud.azure.clientId=warden
refuse "a reload strategy that does not exist" "reload.strategy must be one of the following" --set reload.strategy=watch
refuse "config.listen (the chart owns it)" "config.listen is set by the chart: use warden.port" --set config.listen=0.0.0.0:1
refuse "config.limits.drain_timeout (the chart owns it)" "config.limits.drain_timeout is set by the chart: use warden.drainTimeout" --set config.limits.drain_timeout=5s
refuse "the audit trail without a database Secret" "audit.enabled and governance.enabled need database.existingSecret" --set audit.enabled=true
refuse "the migrate Job without its privileged Secret" "migrate.enabled needs migrate.existingSecret" --set audit.enabled=true --set database.existingSecret=db
refuse "a secretFiles name the chart mounts itself" 'secretFiles: the name "database" is the chart'"'"'s own mount' --set 'secretFiles[0].name=database' --set 'secretFiles[0].secretName=x'
refuse "a secretFiles name twice" 'secretFiles: the name "provider-keys" is given twice' --set 'secretFiles[2].name=provider-keys' --set 'secretFiles[2].secretName=x'
refuse "Vault without an address" "vault.enabled needs vault.address" --set vault.enabled=true

wd_finish
