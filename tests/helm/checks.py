"""Assertions on rendered manifests for tests/integration/test_helm.sh: prints `ok - ...` or `not ok - ...` per
check (the script counts them). Usage: python3 checks.py CHECK MANIFESTS.json [ARG...]"""
import json
import re
import sys

check, path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
docs = [d for d in json.load(open(path)) if d]


def kind(k, name_suffix=""):
    return [d for d in docs if d["kind"] == k and d["metadata"]["name"].endswith(name_suffix)]


def say(cond, what):
    print(("ok - " if cond else "not ok - ") + what)


def dig(o, *keys, default=None):
    for k in keys:
        if isinstance(o, dict) and k in o:
            o = o[k]
        elif isinstance(o, list) and isinstance(k, int) and k < len(o):
            o = o[k]
        else:
            return default
    return o


def duration_s(d):
    d = str(d)
    m = re.fullmatch(r"(\d+)(ms|s|m)?", d)
    n, u = int(m.group(1)), m.group(2)
    return {None: n / 1000, "ms": n / 1000, "s": n, "m": n * 60}[u]


def config_of():
    import yaml
    cm = [d for d in kind("ConfigMap") if "warden.yaml" in d.get("data", {})][0]
    return yaml.safe_load(cm["data"]["warden.yaml"])


def restricted(spec):
    """What Pod Security Standards "restricted" (v1.31) asks of a pod spec: the list of what is wrong."""
    bad = []
    psc = spec.get("securityContext", {})
    allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
    for v in spec.get("volumes", []):
        if not set(v) - {"name"} <= allowed:
            bad.append(f"volume {v['name']} of a type restricted forbids")
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(k):
            bad.append(k)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            bad.append(f"{c['name']}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{c['name']}: allowPrivilegeEscalation not false")
        if "ALL" not in dig(sc, "capabilities", "drop", default=[]):
            bad.append(f"{c['name']}: capabilities not dropping ALL")
        if set(dig(sc, "capabilities", "add", default=[])) - {"NET_BIND_SERVICE"}:
            bad.append(f"{c['name']}: capabilities added")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append(f"{c['name']}: runAsNonRoot not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            bad.append(f"{c['name']}: runAsUser 0")
        if dig(sc, "seccompProfile", "type", default=dig(psc, "seccompProfile", "type")) not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{c['name']}: no RuntimeDefault or Localhost seccomp profile")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            bad.append(f"{c['name']}: hostPort")
    return bad


dep = (kind("Deployment") or [None])[0]
pod = dig(dep, "spec", "template", "spec", default={})
ctr = dig(pod, "containers", 0, default={})

if check == "deployment":
    psc, csc = pod.get("securityContext", {}), ctr.get("securityContext", {})
    say(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0, "pod runs as a non-root numeric user")
    say(dig(psc, "seccompProfile", "type") == "RuntimeDefault", "pod seccomp profile RuntimeDefault")
    say(csc.get("readOnlyRootFilesystem") is True, "container root filesystem read-only")
    say(csc.get("allowPrivilegeEscalation") is False, "no privilege escalation")
    say(dig(csc, "capabilities", "drop") == ["ALL"] and not dig(csc, "capabilities", "add"), "all capabilities dropped, none added")
    say(csc.get("privileged") is False, "not privileged")
    say(not any("hostPath" in v for v in pod.get("volumes", [])) and not pod.get("hostNetwork"), "no hostPath volume, no host network")
    ports = {p["name"]: p["containerPort"] for p in ctr.get("ports", [])}
    say(dig(ctr, "readinessProbe", "httpGet") == {"path": "/readyz", "port": "http"}, "readiness probe GET /readyz on the client port")
    say(dig(ctr, "livenessProbe", "httpGet") == {"path": "/healthz", "port": "http"}, "liveness probe GET /healthz on the client port")
    say(dig(ctr, "startupProbe", "httpGet", "path") == "/healthz" and
        dig(ctr, "startupProbe", "failureThreshold", default=0) * dig(ctr, "startupProbe", "periodSeconds", default=0) >= 30,
        "startup probe on /healthz allows 30 s or more")
    cfg = config_of()
    drain = duration_s(cfg["limits"]["drain_timeout"])
    pre = dig(ctr, "lifecycle", "preStop", "sleep", "seconds")
    if pre is None:
        pre = int(dig(ctr, "lifecycle", "preStop", "exec", "command", 1, default=0))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    say(pre > 0 and grace > pre + drain + 2, f"grace period {grace}s > preStop {pre}s + drain_timeout {drain}s + 2s")
    ru = dig(dep, "spec", "strategy", "rollingUpdate", default={})
    say(dig(dep, "spec", "strategy", "type") == "RollingUpdate" and ru.get("maxUnavailable") == 0, "rolling update never below the replica count")
    say(cfg["listen"] == f"0.0.0.0:{ports.get('http')}", "config listen is the container's http port")
    ml = dig(cfg, "telemetry", "metrics", "listen")
    say(ml == f"0.0.0.0:{ports.get('metrics')}" if "metrics" in ports else ml == "off", "config metrics listener matches the metrics port")
    mounts = {m["mountPath"]: m for m in ctr.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    writable = [p for p, m in mounts.items() if not m.get("readOnly")]
    say(all("emptyDir" in vols[mounts[p]["name"]] or "ephemeral" in vols[mounts[p]["name"]] for p in writable),
        "every writable mount is an emptyDir or ephemeral volume (" + ", ".join(sorted(writable)) + ")")
    spool = dig(cfg, "audit", "spool")
    say(spool is None or any(spool.startswith(p + "/") and not mounts[p].get("readOnly") for p in mounts),
        "audit spool on a writable volume" if spool else "no audit section, no spool needed")
    refs = []

    def walk(o):
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, str) and o.startswith("file://"):
            refs.append(o[len("file://"):])
    walk(cfg)
    for p in ("tls_ca",):
        v = dig(cfg, "secrets", "vault", p)
        if v:
            refs.append(v)
    missing = [r for r in refs if not any(r.startswith(m + "/") and mounts[m].get("readOnly") for m in mounts)]
    say(not missing, f"every file reference of the config ({len(refs)}) is on a read-only mount" + (f"; not: {missing}" if missing else ""))
    aff = pod.get("affinity", {})
    say("podAntiAffinity" in aff and bool(pod.get("topologySpreadConstraints")), "anti-affinity and topology spread set")
    say(any(dig(v, "configMap", "name") for v in pod.get("volumes", [])) and "items" not in dig(vols, "config", "configMap", default={}),
        "config mounted as a whole ConfigMap (no subPath: kubelet updates it for SIGHUP reloads)")
    say(not any(m.get("subPath") for m in ctr.get("volumeMounts", [])), "no subPath mounts")
elif check == "restricted":
    pods = [(d["kind"], d["metadata"]["name"], dig(d, "spec", "template", "spec", default={})) for d in docs if d["kind"] in ("Deployment", "Job")]
    for k, n, spec in pods:
        bad = restricted(spec)
        say(not bad, f"{k} {n} meets Pod Security \"restricted\"" + (f": {bad}" if bad else ""))
elif check == "checksum":
    print(dig(dep, "spec", "template", "metadata", "annotations", "checksum/config", default=""))
elif check == "config":
    import yaml
    print(yaml.safe_dump(config_of(), sort_keys=False))
elif check == "kinds":
    print(" ".join(sorted({d["kind"] for d in docs})))
elif check == "identity":
    cloud = args[0]
    sa = (kind("ServiceAccount") or [{}])[0]
    ann = dig(sa, "metadata", "annotations", default={})
    cfg = config_of()
    labels = dig(dep, "spec", "template", "metadata", "labels", default={})
    if cloud == "eks":
        say(ann.get("eks.amazonaws.com/role-arn", "").startswith("arn:aws:iam::"), "EKS: IRSA role-arn annotation on the service account")
        say(dig(cfg, "secrets", "aws", "credentials") == "web_identity", "EKS: config secrets.aws.credentials web_identity")
        say(dig(cfg, "secrets", "vault", "auth") == "kubernetes" and dig(cfg, "secrets", "vault", "role") == "warden", "EKS: Vault Kubernetes auth, role warden")
        say(pod.get("automountServiceAccountToken") is True, "EKS: the service-account token is mounted for Vault's Kubernetes auth")
    elif cloud == "gke":
        say(ann.get("iam.gke.io/gcp-service-account", "").endswith(".iam.gserviceaccount.com"), "GKE: Workload Identity annotation on the service account")
        say(dig(cfg, "secrets", "gcp", "credentials") == "metadata", "GKE: config secrets.gcp.credentials metadata")
    elif cloud == "aks":
        say(re.fullmatch(r"[0-9a-f-]{36}", ann.get("azure.workload.identity/client-id", "")) is not None, "AKS: client-id annotation on the service account")
        say(labels.get("azure.workload.identity/use") == "true", "AKS: pod label azure.workload.identity/use: \"true\"")
        say(dig(cfg, "secrets", "azure", "credentials") == "workload_identity", "AKS: config secrets.azure.credentials workload_identity")
    else:
        say(not ann and "azure.workload.identity/use" not in labels and pod.get("automountServiceAccountToken") is False,
            "no cloud identity: no annotations, no AKS label, no service-account token")
elif check == "migrate":
    jobs = kind("Job")
    job = jobs[0] if jobs else {}
    ann = dig(job, "metadata", "annotations", default={})
    say(ann.get("helm.sh/hook") == "pre-install,pre-upgrade", "migrate Job is a pre-install,pre-upgrade hook")
    jc = dig(job, "spec", "template", "spec", "containers", 0, default={})
    say(jc.get("args", [])[:3] == ["db", "migrate", "--db"] and jc["args"][3].startswith("file:///"), "migrate Job runs warden db migrate --db file:///...")
    say(dig(job, "spec", "template", "spec", "automountServiceAccountToken") is False, "migrate Job mounts no service-account token")
    sec = [v["secret"]["secretName"] for v in dig(job, "spec", "template", "spec", "volumes", default=[]) if "secret" in v]
    say(sec == [args[0]], f"migrate Job mounts only the privileged DSN Secret {args[0]}")
    cfg = config_of()
    say(all(dig(cfg, s, "migrate") is False for s in ("audit", "governance") if s in cfg), "the pods' config leaves migrations to the Job")
    rt = [v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v]
    say(args[0] not in rt, "the pods never mount the privileged DSN")
elif check == "netpol":
    np = (kind("NetworkPolicy") or [{}])[0]
    spec = np.get("spec", {})
    say(sorted(spec.get("policyTypes", [])) == ["Egress", "Ingress"], "NetworkPolicy governs ingress and egress")
    ports = sorted(p["port"] for r in spec.get("ingress", []) for p in r.get("ports", []))
    cports = sorted(p["containerPort"] for p in ctr.get("ports", []))
    say(ports == cports, f"ingress only to the container's ports {cports}")
    say(all(r.get("ports") for r in spec.get("egress", [])), "every egress rule names its ports")
    say(any(p.get("port") == 53 for r in spec.get("egress", []) for p in r.get("ports", [])), "egress allows DNS")
else:
    sys.exit(f"unknown check {check}")
