// Warden's SigV4 signer (lib/sigv4.c) against AWS's own (@smithy/signature-v4, what the AWS SDK for JavaScript
// signs with) on random requests: unicode and reserved characters in paths and queries, repeated query keys,
// headers with odd spacing and case, bodies, session tokens, S3 and unsigned payloads. Every request must give
// the same headers from both. Usage: node check.mjs DRIVER [COUNT] [SEED]; DRIVER is the C program
// test_sigv4.sh builds (one case a line on stdin, the signer's output on stdout).
import { spawnSync } from "node:child_process";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";

const [driver, countArg, seedArg] = process.argv.slice(2);
if (!driver) {
  console.error("usage: node check.mjs DRIVER [COUNT] [SEED]");
  process.exit(2);
}
const COUNT = Number(countArg ?? 400);
let seed = Number(seedArg ?? 20150830) >>> 0;

// mulberry32: a seeded generator, so a failing case can be replayed by its seed
function rnd() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];

// AWS's UriEncode: all but A-Z a-z 0-9 - . _ ~
const awsEncode = (s) =>
  Array.from(Buffer.from(s, "utf8"))
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : "%" + b.toString(16).toUpperCase().padStart(2, "0"),
    )
    .join("");

const PIECES = ["a", "Z", "0", "-", "_", ".", "~", " ", "+", "*", "!", "'", "(", ")", "$", "&", ",", ";", "=", ":",
  "@", "%", "#", "[", "]", "{", "}", "|", "\\", "^", "`", "\"", "<", ">", "?", "é", "ሴ", "😀", "日本", "key", "value",
  "x/y"];
function word(max, noSlash) {
  let s = "";
  for (let i = 1 + int(max); i > 0; i--) s += pick(PIECES);
  return noSlash ? s.replaceAll("/", "") : s;
}

// A path: raw segments (some empty, ".", ".."), a trailing slash sometimes.
function randPath() {
  const segs = [];
  for (let i = int(5); i > 0; i--) {
    const r = rnd();
    segs.push(r < 0.1 ? "" : r < 0.17 ? "." : r < 0.24 ? ".." : word(4, true).replaceAll("?", "").replaceAll("#", ""));
  }
  return "/" + segs.join("/") + (segs.length && rnd() < 0.3 ? "/" : "");
}

// A query as sent: each name and value percent-encoded one of several ways (strictly, as encodeURIComponent
// does, or with some sub-delimiters left bare), so the C side must decode before re-encoding.
function wireEncode(s) {
  const how = int(3);
  if (how === 0) return awsEncode(s);
  if (how === 1) return encodeURIComponent(s);
  return Array.from(s)
    .map((c) => (/[A-Za-z0-9\-._~!$'()*,;:@/?+]/.test(c) ? c : encodeURIComponent(c)))
    .join("");
}
function randQuery() {
  if (rnd() < 0.3) return { wire: null, obj: {} };
  const pairs = [];
  const keys = [];
  for (let i = 1 + int(5); i > 0; i--) {
    const k = keys.length && rnd() < 0.3 ? pick(keys) : rnd() < 0.05 ? "" : word(3);
    keys.push(k);
    const v = rnd() < 0.15 ? "" : word(4);
    // "name" without "=" is name with the empty value; an empty name must keep its "=", or nothing is sent
    pairs.push([k, v, rnd() < 0.1 && v === "" && k !== "" ? "bare" : "eq"]);
  }
  const wire = pairs.map(([k, v, form]) => (form === "bare" ? wireEncode(k) : wireEncode(k) + "=" + wireEncode(v))).join("&");
  const obj = {};
  for (const [k, v] of pairs) {
    if (k.toLowerCase() === "x-amz-signature") continue;
    if (k in obj) obj[k] = [].concat(obj[k], v);
    else obj[k] = v;
  }
  return { wire, obj };
}

// Headers: token names in any case (none the signers add, none smithy refuses to sign), values with leading,
// trailing and repeated blanks and tabs.
const HNAMES = ["Content-Type", "X-Amz-Target", "x-amz-meta-note", "X-Custom", "Accept", "content-encoding", "X-Vault-Namespace",
  "x-amz-user-agent", "X_Under", "x!#$%&'*+.^`|~"];
function randHeaders() {
  const out = [];
  const used = new Set();
  for (let i = int(4); i > 0; i--) {
    const n = pick(HNAMES);
    if (used.has(n.toLowerCase())) continue;
    used.add(n.toLowerCase());
    const name = rnd() < 0.3 ? n.toUpperCase() : n;
    let v = "";
    for (let j = int(4); j >= 0; j--) v += pick(["", " ", "  ", "\t", " \t "]) + pick(["a", "b c", "application/x-amz-json-1.1", "é", "\"q\"", "1,2", ";x=y"]);
    v += pick(["", " ", "\t", "   "]);
    out.push([name, v]);
  }
  return out;
}

const SERVICES = ["secretsmanager", "sts", "s3", "bedrock", "execute-api", "service"];
const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"];
const hex = (s) => (s === null ? "~" : s === "" ? "-" : Buffer.from(s).toString("hex"));

const cases = [];
for (let i = 0; i < COUNT; i++) {
  const service = pick(SERVICES);
  const q = randQuery();
  const bodyLen = rnd() < 0.4 ? 0 : int(300);
  const body = Buffer.alloc(bodyLen);
  for (let j = 0; j < bodyLen; j++) body[j] = int(256);
  cases.push({
    method: pick(METHODS),
    host: pick(["secretsmanager.us-east-1.amazonaws.com", "127.0.0.1:8443", "bucket.s3.eu-west-1.amazonaws.com", "sts.amazonaws.com"]),
    path: randPath(),
    query: q,
    headers: randHeaders(),
    body,
    region: pick(["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"]),
    service,
    access: pick(["AKIDEXAMPLE", "ASIAQWERTYUIOPASDFGH"]),
    secret: word(12).replaceAll("\n", ""),
    token: rnd() < 0.4 ? "IQoJb3JpZ2luX2VjE" + word(10).replace(/[^A-Za-z0-9+/=]/g, "") + "==" : null,
    now: 946684800 + int(3155760000),
    unsigned: rnd() < (service === "s3" ? 0.5 : 0.1),
  });
}

const input = cases
  .map((c) =>
    [c.method, c.host, c.path, c.query.wire, c.region, c.service, c.access, c.secret, c.token, String(c.now), c.unsigned ? "1" : "0",
      c.body.length ? c.body.toString("latin1") : "", String(c.headers.length), ...c.headers.flat()]
      .map((f, idx) => (idx === 11 ? (f === "" ? "-" : Buffer.from(f, "latin1").toString("hex")) : hex(f)))
      .join(" "),
  )
  .join("\n") + "\n";
const run = spawnSync(driver, [], { input, maxBuffer: 64 << 20 });
if (run.status !== 0) {
  console.error(`driver exited ${run.status}: ${run.stderr}`);
  process.exit(1);
}
const lines = run.stdout.toString().trimEnd().split("\n");
if (lines.length !== cases.length) {
  console.error(`driver answered ${lines.length} of ${cases.length} cases`);
  process.exit(1);
}

let passed = 0, failed = 0;
for (let i = 0; i < cases.length; i++) {
  const c = cases[i];
  const headers = { host: c.host };
  for (const [n, v] of c.headers) headers[n] = v;
  if (c.service === "s3" || c.unsigned) {
    headers["x-amz-content-sha256"] = c.unsigned ? "UNSIGNED-PAYLOAD" : undefined;
    if (!c.unsigned) delete headers["x-amz-content-sha256"];
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: c.access, secretAccessKey: c.secret, ...(c.token ? { sessionToken: c.token } : {}) },
    region: c.region,
    service: c.service,
    sha256: Sha256,
    uriEscapePath: c.service !== "s3",
    // S3 requires x-amz-content-sha256 and the SDK's S3 client sends it; other services do not need it
    applyChecksum: c.service === "s3",
  });
  // smithy takes the path as sent: Warden sends each raw segment AWS-encoded once
  const wirePath = c.path.split("/").map(awsEncode).join("/");
  const signed = await signer.sign(
    { method: c.method, protocol: "https:", hostname: c.host, path: wirePath, query: c.query.obj, headers, body: c.body },
    { signingDate: new Date(c.now * 1000) },
  );
  const want = {};
  for (const [n, v] of Object.entries(signed.headers)) {
    const l = n.toLowerCase();
    if (["x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization"].includes(l)) want[l] = v;
  }
  const [status, outHex, creqHex] = lines[i].split(" ");
  const got = {};
  if (status === "OK")
    for (const l of Buffer.from(outHex, "hex").toString().split("\r\n").filter(Boolean)) {
      const at = l.indexOf(": ");
      got[l.slice(0, at)] = l.slice(at + 2);
    }
  const same = status === "OK" && JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(want).sort());
  if (same) passed++;
  else {
    failed++;
    if (failed <= 3) {
      console.error(`case ${i} differs:\n  request ${JSON.stringify({ ...c, body: c.body.length })}`);
      console.error(`  warden ${status} ${JSON.stringify(got)}\n  smithy ${JSON.stringify(want)}`);
      if (creqHex) console.error(`  warden's canonical request:\n${Buffer.from(creqHex, "hex")}`);
    }
  }
}
console.log(`sigv4 vs @smithy/signature-v4: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
