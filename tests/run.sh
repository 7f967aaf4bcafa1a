#!/usr/bin/env bash
# `make test`: every ctest test (unit, integration, e2e) on the ASan+UBSan build, then each libFuzzer
# target for a bounded time; ends with one "N passed, N failed" line over both, counting individual checks
# (each test's own count, tests/count_checks.py; each fuzzer is one).
set -uo pipefail
cd "$(dirname "$0")/.."
log=build-asan/ctest.log
ctest --test-dir build-asan -V --timeout 900 2>&1 | tee "$log"
ctest_rc=${PIPESTATUS[0]}
grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1
read -r passed failed < <(python3 tests/count_checks.py "$log")
passed=${passed:-0}
failed=${failed:-1}
if [ "$ctest_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

fuzz_rc=0
if [ -f tests/fuzz/run.sh ]; then
  FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash tests/fuzz/run.sh 2>&1 | tee build-fuzz/fuzz.log
  fuzz_rc=${PIPESTATUS[0]}
  fl=$(grep -E '^[0-9]+ passed, [0-9]+ failed' build-fuzz/fuzz.log | tail -1)
  if [ -n "$fl" ]; then
    passed=$((passed + $(cut -d' ' -f1 <<<"$fl")))
    failed=$((failed + $(cut -d' ' -f3 <<<"$fl")))
  elif [ "$fuzz_rc" -ne 0 ]; then
    failed=$((failed + 1))
  fi
fi
echo "$passed passed, $failed failed"
[ "$ctest_rc" -eq 0 ] && [ "$fuzz_rc" -eq 0 ]
