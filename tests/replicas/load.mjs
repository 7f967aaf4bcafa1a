// A bounded load client for tests/integration/test_replicas.sh: C concurrent clients send Anthropic Messages
// calls through the balancer until N were sent, a stop file appears or the time is up, and each answer is one
// JSON line (status, the replica that served it, the trace id sent, Warden's request-id, when it ended) in the
// --out file.
// Usage: node load.mjs --url URL --key KEY --n N --c C --seconds S --out FILE [--stop FILE] [--tag T]
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';

const opt = { n: 100, c: 16, seconds: 30, tag: 'load' };
for (let i = 2; i < process.argv.length; i += 2) opt[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const n = Number(opt.n), c = Number(opt.c), deadline = Date.now() + Number(opt.seconds) * 1000;
const url = new URL(`${opt.url}/anthropic/v1/messages`);
// keep-alive to the balancer, as a real client pool does; the balancer's own connections to the replicas are
// what the test is about
const agent = new http.Agent({ keepAlive: true, maxSockets: c });
const out = fs.openSync(opt.out, 'w');
let sent = 0;
const counts = {};

const stopped = () => Date.now() >= deadline || (opt.stop && fs.existsSync(opt.stop));

function one(i) {
  return new Promise((resolve) => {
    // a unique W3C traceparent per call: the audit records carry its trace id, so an answer and its records
    // can be matched one to one
    const trace = crypto.randomBytes(16).toString('hex');
    const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16,
      messages: [{ role: 'user', content: `${opt.tag} call ${i}` }] });
    const t0 = Date.now();
    const req = http.request(url, { method: 'POST', agent, timeout: 20000, headers: {
      'content-type': 'application/json', 'x-api-key': opt.key, 'content-length': Buffer.byteLength(body),
      traceparent: `00-${trace}-${crypto.randomBytes(8).toString('hex')}-01` } }, (res) => {
      // an answer other than 200 and 429 keeps the start of its body, so a failed check can say what it was
      let err = '';
      if (res.statusCode !== 200 && res.statusCode !== 429) res.on('data', (d) => { if (err.length < 200) err += d; });
      else res.resume();
      res.on('end', () => done(res.statusCode, res.headers['x-wd-server'] || '', res.headers['request-id'] || '', err));
      res.on('error', (e) => done(0, '', '', e.message));
    });
    let finished = false;
    function done(status, server, rid, err) {
      if (finished) return;
      finished = true;
      counts[status] = (counts[status] || 0) + 1;
      const end = Date.now();
      fs.writeSync(out, JSON.stringify({ i, status, server, trace, rid, ms: end - t0, end, ...(err ? { err: err.slice(0, 200) } : {}) }) + '\n');
      resolve();
    }
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => done(0, '', '', e.message));
    req.end(body);
  });
}

async function worker() {
  while (sent < n && !stopped()) await one(sent++);
}

await Promise.all(Array.from({ length: c }, worker));
agent.destroy();
fs.closeSync(out);
console.log(JSON.stringify({ sent, counts }));
