#!/usr/bin/env node
// Runs the strict fake's request validation on every request body the OpenAI encoder's unit test pins
// (tests/unit/golden/openai/*.json), so a golden the real API would refuse cannot pass the unit test.
//   node tests/fakes/openai_golden_check.mjs [dir]
// Prints ok / FAIL per file and "N passed, N failed"; exits 1 on any failure.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateChatRequest } from './fake_openai_validate.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = process.argv[2] || path.join(here, '..', 'unit', 'golden', 'openai');

let passed = 0;
let failed = 0;
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter(f => f.endsWith('.json')).sort() : [];
if (files.length === 0) {
  console.log(`FAIL - no golden requests in ${dir}`);
  failed++;
}
for (const f of files) {
  try {
    const body = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const v = validateChatRequest(body);
    // a streamed golden must ask for the usage chunk: Warden reads its token counts from it
    if (v.stream && !v.includeUsage) throw new Error('stream without stream_options.include_usage');
    console.log(`ok - ${f}`);
    passed++;
  } catch (e) {
    console.log(`FAIL - ${f}: ${e.message}`);
    failed++;
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
