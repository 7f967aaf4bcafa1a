// Validates rendered manifests against the Kubernetes API schemas: each document by its apiVersion and kind with
// the kubernetes-models validator (types, formats, enums, required fields), the CRDs the chart uses with the
// Prometheus Operator and Gateway API models of the same kind, and, as the API server's strict field validation
// would, no field that the schema does not know (a misspelt key is silently dropped by a lenient server).
// Usage: node validate.mjs MANIFESTS.json   (a JSON array of documents; prints one line each, exit 1 on any error)
import { readFileSync } from "node:fs";

// apiVersion -> the module whose named export of the kind is the model class
function modulesFor(apiVersion) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/${group}/${version}`;
  if (group === "gateway.networking.k8s.io") return `@kubernetes-models/gateway-api/${group}/${version}`;
  return group === "" ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
}

// Unknown fields: the compiled validators read every property their schema defines (data.replicas, ...) and
// enumerate the keys of maps (labels, data). A proxy records both; an own key never read of an object never
// enumerated is one the schema does not have.
function track(value, path, seen) {
  if (value === null || typeof value !== "object") return value;
  const rec = { path, value, read: new Set(), enumerated: false };
  seen.push(rec);
  const kids = Array.isArray(value) ? [] : {};
  for (const [k, v] of Object.entries(value)) kids[k] = track(v, `${path}/${k}`, seen);
  return new Proxy(kids, {
    get(t, k, r) {
      if (typeof k === "string") rec.read.add(k);
      return Reflect.get(t, k, r);
    },
    has(t, k) {
      if (typeof k === "string") rec.read.add(k);
      return Reflect.has(t, k);
    },
    ownKeys(t) {
      rec.enumerated = true;
      return Reflect.ownKeys(t);
    },
  });
}

const docs = JSON.parse(readFileSync(process.argv[2], "utf8")).filter((d) => d !== null);
let bad = 0;
for (const doc of docs) {
  const what = `${doc.apiVersion}/${doc.kind} ${doc.metadata?.name ?? "?"}`;
  let Model;
  try {
    Model = (await import(modulesFor(doc.apiVersion)))[doc.kind];
  } catch {
    Model = undefined;
  }
  if (typeof Model !== "function") {
    console.log(`not ok - ${what}: no schema for this apiVersion and kind`);
    bad++;
    continue;
  }
  const seen = [];
  const errors = [];
  try {
    Model.prototype.validate.call(track(doc, "", seen));
  } catch (e) {
    errors.push(String(e.message ?? e));
  }
  for (const rec of seen) {
    if (Array.isArray(rec.value) || rec.enumerated) continue;
    for (const k of Object.keys(rec.value)) {
      if (!rec.read.has(k)) errors.push(`${rec.path}/${k}: unknown field`);
    }
  }
  if (errors.length) {
    bad++;
    console.log(`not ok - ${what}: ${errors.join("; ")}`);
  } else {
    console.log(`ok - ${what}`);
  }
}
console.log(`${docs.length - bad} valid, ${bad} invalid`);
process.exit(bad ? 1 : 0);
