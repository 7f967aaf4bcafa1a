// The script language that fake_openai and fake_gemini share (POST /_fake/script, --control-file): agent
// steps (call, calls or text) and faults on a response's chunks. Checks only; each fake applies a script
// to its own state. Node built-ins only. See tests/fakes/README.md.

// Throws unless f is a fault whose keys are all in keys (a Set): non-negative integers for the delays and
// chunk indices, an HTTP error status, finish_reason in finishReasons (a Set), a string message when
// checkMessage says so.
export function checkChunkFault(f, i, { keys, finishReasons, checkMessage = false }) {
  const where = `faults[${i}]`;
  if (!f || typeof f !== 'object' || Array.isArray(f)) throw new Error(`${where} must be an object`);
  for (const k of Object.keys(f)) if (!keys.has(k)) throw new Error(`${where}: unknown key ${k} (known: ${[...keys].join(', ')})`);
  const nat = k => {
    if (f[k] !== undefined && !(Number.isInteger(f[k]) && f[k] >= 0)) throw new Error(`${where}.${k} must be a non-negative integer`);
  };
  ['retry_after', 'delay_headers_ms', 'cut_after_chunks', 'malformed_chunk_at', 'stall_after_chunks', 'ms'].forEach(nat);
  if (f.status !== undefined && !(Number.isInteger(f.status) && f.status >= 400 && f.status <= 599)) throw new Error(`${where}.status must be an HTTP error status`);
  if (checkMessage && f.message !== undefined && typeof f.message !== 'string') throw new Error(`${where}.message must be a string`);
  if (f.finish_reason !== undefined && !finishReasons.has(f.finish_reason)) throw new Error(`${where}.finish_reason must be one of ${[...finishReasons].join(', ')}`);
  if (f.stall_after_chunks !== undefined && f.ms === undefined) throw new Error(`${where}: stall_after_chunks needs ms`);
  if (f.retry_after !== undefined && f.status === undefined) throw new Error(`${where}: retry_after needs status`);
}

// Throws unless s is an agent step with exactly one of call (checkCall(call, where)), calls (a non-empty
// array of such) or text (a non-empty string).
export function checkStep(s, i, checkCall) {
  const where = `steps[${i}]`;
  if (!s || typeof s !== 'object' || Array.isArray(s)) throw new Error(`${where} must be an object`);
  const keys = Object.keys(s);
  if (keys.length !== 1 || !['call', 'calls', 'text', 'unavailable'].includes(keys[0])) throw new Error(`${where} must have exactly one of call, calls, text, unavailable`);
  if (s.unavailable !== undefined && s.unavailable !== true) throw new Error(`${where}.unavailable must be true`);
  if (s.call !== undefined) checkCall(s.call, `${where}.call`);
  if (s.calls !== undefined) {
    if (!Array.isArray(s.calls) || s.calls.length === 0) throw new Error(`${where}.calls must be a non-empty array`);
    s.calls.forEach((c, j) => checkCall(c, `${where}.calls[${j}]`));
  }
  if (s.text !== undefined && (typeof s.text !== 'string' || s.text === '')) throw new Error(`${where}.text must be a non-empty string`);
}

// Throws unless the script's mode (agent, faults or echo), steps (agent mode only) and faults are well formed.
export function checkModeStepsFaults(s, { checkStep: step, checkFault }) {
  const mode = s.mode;
  if (mode !== undefined && !['agent', 'faults', 'echo'].includes(mode)) throw new Error('mode must be agent, faults or echo');
  if (mode === 'agent') {
    if (!Array.isArray(s.steps)) throw new Error('agent mode needs steps: [...]');
    s.steps.forEach(step);
  } else if (s.steps !== undefined) throw new Error('steps only go with mode "agent"');
  if (mode === 'faults' && !Array.isArray(s.faults)) throw new Error('faults mode needs faults: [...]');
  if (s.faults !== undefined) {
    if (!Array.isArray(s.faults)) throw new Error('faults must be an array');
    s.faults.forEach(checkFault);
  }
}
