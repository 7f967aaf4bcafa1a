// Harness shared by the fakes' self-tests (fake_anthropic_selftest, fake_openai_selftest,
// fake_gemini_selftest): starting a fake as a child process and waiting for its {"port":N} line, HTTP
// helpers, and the test list with its "ok"/"FAIL" lines and the final "N passed, N failed". Node built-ins
// only.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

export function stopChild(child) {
  return new Promise(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.kill('SIGTERM');
  });
}

// startFake(args, {env}) runs `node fake --port 0 ...args` and resolves once it printed its first line with
// {port, line, child, base, stdout(), stderr(), stop()}; it rejects when the fake exits first ("fake exited
// N: <stderr>") or is silent for 10 s. children holds the fakes still running.
export function fakeLauncher(fake) {
  const children = new Set();
  function startFake(args = [], { env } = {}) {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [fake, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env || process.env });
      children.add(child);
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`fake did not start: ${err}`)), 10000);
      child.stderr.on('data', d => (err += d));
      child.stdout.on('data', d => {
        out += d;
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          const line = out.slice(0, nl);
          const { port } = JSON.parse(line);
          resolve({ port, line, child, base: `http://127.0.0.1:${port}`, stderr: () => err, stdout: () => out, stop: () => stopChild(child) });
        }
      });
      child.on('exit', code => {
        clearTimeout(timer);
        children.delete(child);
        if (!out.includes('\n')) reject(new Error(`fake exited ${code}: ${err}`));
      });
    });
  }
  return { startFake, children };
}

// A request with fetch; body is a string as is, else JSON. Resolves {status, headers, text, json}
// (json undefined when the body is not JSON).
export async function fetchJson(url, { method = 'POST', headers = {}, body } = {}) {
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

// A control call (/_fake/...): GET without a body, else POST; it must answer 200. Resolves the JSON answer.
export async function ctl(base, p, body) {
  const r = await fetch(base + p, { method: body === undefined ? 'GET' : 'POST', body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  assert.equal(r.status, 200, `control ${p}: ${JSON.stringify(j)}`);
  return j;
}

const STYLES = {
  // "ok   name" / "FAIL name" and the stack indented
  plain: { ok: name => `ok   ${name}`, fail: (name, lines) => `FAIL ${name}\n     ${lines.join('\n     ')}` },
  // "ok - name" / "not ok - name" and the stack as "#" comments
  tap: { ok: name => `ok - ${name}`, fail: (name, lines) => `not ok - ${name}\n#   ${lines.join('\n#   ')}` },
};

// The test list: test(name, fn) adds one; run() runs those whose name contains filter, each after
// before(t) (a throw there fails the test), calling fn(arg), and prints a line a test. Resolves
// {passed, failed}.
export function testSuite() {
  const tests = [];
  const test = (name, fn) => tests.push({ name, fn });
  async function run({ filter = '', style = 'plain', stackLines = 6, before = async () => {}, arg } = {}) {
    const S = STYLES[style];
    let passed = 0;
    let failed = 0;
    for (const t of tests) {
      if (filter && !t.name.includes(filter)) continue;
      try {
        await before(t);
        await t.fn(arg);
        passed++;
        console.log(S.ok(t.name));
      } catch (e) {
        failed++;
        console.log(S.fail(t.name, (e && e.stack ? e.stack : String(e)).split('\n').slice(0, stackLines)));
      }
    }
    return { passed, failed };
  }
  return { tests, test, run };
}

// Prints "N passed, N failed" and exits 1 when a test failed, else 0.
export function reportAndExit({ passed, failed }) {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// A self-test's main: starts the shared fake with args, runs the suite with the options that setup(fake)
// resolves (filter, before, ...), stops every fake still running, prints the tally and exits. A harness
// error is printed, the fakes are killed and it exits 1.
export function mainWithFake({ startFake, children }, suite, args, setup) {
  async function main() {
    const F = await startFake(args);
    let result;
    try {
      result = await suite.run(await setup(F));
    } finally {
      await F.stop();
      for (const c of children) await stopChild(c);
    }
    reportAndExit(result);
  }
  main().catch(e => {
    console.error(e);
    for (const c of children) c.kill('SIGTERM');
    process.exit(1);
  });
}
