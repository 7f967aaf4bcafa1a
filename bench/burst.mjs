#!/usr/bin/env node
// A burst of concurrent streams against Warden, and what it does to Warden's memory: VmRSS when idle, at
// the peak of the burst (sampled every 50 ms while the streams are open) and once the burst is over and
// Warden has been idle for --settle-ms. Used by bench/run.sh (the 5,000-stream row) and by
// tests/integration/test_memory.sh. Node built-ins only; every socket it opens is to 127.0.0.1.
//
//   node bench/burst.mjs --url http://127.0.0.1:P --key K --pid WARDEN_PID --streams N [--waves W]
//        [--settle-ms MS] [--timeout-ms MS] [--body FILE]
//
// Prints one JSON object per wave on stdout: {wave, streams, ok, failed, idle_kb, peak_kb, after_kb,
// per_stream_kb, open_peak, ms}. idle_kb is measured before the first wave; per_stream_kb is
// (peak - idle) / streams. Exits 1 when a stream failed, 2 on bad arguments.
import http from 'node:http';
import fs from 'node:fs';

function args(argv) {
  const o = { url: null, key: null, pid: 0, streams: 1000, waves: 1, settleMs: 2000, timeoutMs: 120000, body: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--url': o.url = v; i++; break;
      case '--key': o.key = v; i++; break;
      case '--pid': o.pid = parseInt(v, 10); i++; break;
      case '--streams': o.streams = parseInt(v, 10); i++; break;
      case '--waves': o.waves = parseInt(v, 10); i++; break;
      case '--settle-ms': o.settleMs = parseInt(v, 10); i++; break;
      case '--timeout-ms': o.timeoutMs = parseInt(v, 10); i++; break;
      case '--body': o.body = v; i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!o.url || !o.key || !(o.pid > 0) || !(o.streams > 0) || !(o.waves > 0)) throw new Error('need --url, --key, --pid, --streams');
  return o;
}

let o;
try {
  o = args(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`burst: ${e.message}\n`);
  process.exit(2);
}

const rssKb = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${o.pid}/status`, 'utf8'));
  return m ? parseInt(m[1], 10) : -1;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const body = o.body ? fs.readFileSync(o.body) : Buffer.from(JSON.stringify({
  model: 'claude-sonnet-4-5', max_tokens: 64, stream: true,
  messages: [{ role: 'user', content: 'a burst of streams, each held open by a slow provider' }],
}));
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const u = new URL('/anthropic/v1/messages', o.url);

let open = 0;
function one() {
  return new Promise((resolve) => {
    const req = http.request(u, {
      method: 'POST', agent,
      headers: { 'x-api-key': o.key, 'content-type': 'application/json', 'content-length': body.length },
      timeout: o.timeoutMs,
    }, (res) => {
      let tail = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { tail = (tail + d).slice(-200); });
      res.on('end', () => { open--; resolve(res.statusCode === 200 && tail.includes('message_stop')); });
      res.on('error', () => { open--; resolve(false); });
    });
    open++;
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => { open--; resolve(false); });
    req.end(body);
  });
}

async function wave(n, idle, w) {
  const t0 = Date.now();
  let peak = rssKb(), openPeak = 0;
  const sampler = setInterval(() => {
    const r = rssKb();
    if (r > peak) peak = r;
    if (open > openPeak) openPeak = open;
  }, 50);
  const all = [];
  for (let i = 0; i < n; i++) {
    all.push(one());
    if (i % 100 === 99) await sleep(10); // let the listener's backlog drain: 5,000 SYNs at once overflow it
  }
  const res = await Promise.all(all);
  clearInterval(sampler);
  const ms = Date.now() - t0;
  await sleep(o.settleMs);
  const after = rssKb();
  const ok = res.filter(Boolean).length;
  return { wave: w, streams: n, ok, failed: n - ok, idle_kb: idle, peak_kb: peak, after_kb: after,
           per_stream_kb: Math.round((peak - idle) / n * 10) / 10, open_peak: openPeak, ms };
}

let failed = 0;
const idle = rssKb();
for (let w = 1; w <= o.waves; w++) {
  const r = await wave(o.streams, idle, w);
  failed += r.failed;
  process.stdout.write(JSON.stringify(r) + '\n');
}
process.exit(failed ? 1 : 0);
