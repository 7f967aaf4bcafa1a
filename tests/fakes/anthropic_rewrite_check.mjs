// Cross-check of providers/anthropic.c's rewrite against the strict fake's request rules: every *.json in a
// directory (written by tests/unit/test_anthropic_up when WD_ANTH_CHECK_DIR is set) must pass the fake's
// validator, with only Anthropic's own signatures counted as issued, and hold no Warden-issued Gemini data;
// a file named reject-*.json is a control that the validator must refuse.
//   d=$(mktemp -d) && WD_ANTH_CHECK_DIR=$d build/test_anthropic_up && node tests/fakes/anthropic_rewrite_check.mjs $d
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateCreateRequest, validateCountTokensRequest } from './fake_anthropic_validate.mjs';

const dir = process.argv[2] || process.env.WD_ANTH_CHECK_DIR;
if (!dir) {
  console.error('usage: node anthropic_rewrite_check.mjs DIR (or WD_ANTH_CHECK_DIR=DIR)');
  process.exit(2);
}

// The signatures a real conversation would hold from Anthropic: everything not marked as Warden's.
function ownSignatures(req) {
  const s = new Set();
  for (const m of req.messages || []) {
    if (!Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (b.type === 'thinking' && typeof b.signature === 'string' && !b.signature.startsWith('wdsig1.')) s.add(b.signature);
      if (b.type === 'redacted_thinking' && typeof b.data === 'string' && !b.data.startsWith('wdsig1.')) s.add(b.data);
    }
  }
  return s;
}

let passed = 0;
let failed = 0;
const files = readdirSync(dir).filter(f => f.endsWith('.json')).sort();
for (const f of files) {
  const text = readFileSync(join(dir, f), 'utf8');
  if (f.startsWith('reject-')) {
    try {
      validateCreateRequest(JSON.parse(text), { signatures: ownSignatures(JSON.parse(text)), checkSignatures: true });
      console.log(`not ok - ${f}: the control was accepted`);
      failed++;
    } catch (e) {
      console.log(`ok - ${f} refused: ${e.message.slice(0, 100)}`);
      passed++;
    }
    continue;
  }
  try {
    const req = JSON.parse(text);
    if (text.includes('wdsig1.')) throw new Error('Warden-issued thinking data left in the body');
    if (/toolu_wd[A-Za-z0-9]{20}_/.test(text)) throw new Error('a tool id still carries a signature suffix');
    const ctx = { signatures: ownSignatures(req), checkSignatures: true };
    if (f.includes('count')) validateCountTokensRequest(req, ctx);
    else validateCreateRequest(req, ctx);
    console.log(`ok - ${f}`);
    passed++;
  } catch (e) {
    console.log(`not ok - ${f}: ${e.message}`);
    failed++;
  }
}
if (files.length === 0) {
  console.log(`not ok - no .json files in ${dir}`);
  failed++;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
