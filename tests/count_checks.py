#!/usr/bin/env python3
"""Counts individual checks in a `ctest -V` log: each test's own "N passed, N failed" line (integration and e2e
scripts, fake self-tests), or cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)"; a test that printed
neither counts as one check, passed or failed as ctest saw it. Prints "PASSED FAILED"."""
import re
import sys

counts = {}   # test number -> (passed, failed) from its own output
status = {}   # test number -> True (passed) / False
plain = re.compile(r"^(\d+): (?:\w+: )?(\d+) passed, (\d+) failed")
cm_pass = re.compile(r"^(\d+): \[  PASSED  \] (\d+) test")
cm_fail = re.compile(r"^(\d+): \[  FAILED  \] (\d+) test")
done = re.compile(r"^\s*\d+/\d+ Test\s+#(\d+): \S+ \.+\s*(\*\*\*)?(\w+)")
for line in open(sys.argv[1], errors="replace"):
    m = plain.match(line)
    if m:
        counts[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        continue
    m = cm_pass.match(line)
    if m:
        p, f = counts.get(m.group(1), (0, 0))
        counts[m.group(1)] = (int(m.group(2)), f)
        continue
    m = cm_fail.match(line)
    if m:
        p, f = counts.get(m.group(1), (0, 0))
        counts[m.group(1)] = (p, int(m.group(2)))
        continue
    m = done.match(line)
    if m:
        status[m.group(1)] = m.group(3) == "Passed"
passed = failed = 0
for t, ok in status.items():
    p, f = counts.get(t, (0, 0))
    if p + f == 0:
        p, f = (1, 0) if ok else (0, 1)
    elif not ok and f == 0:
        f = 1  # it failed (a crash, a timeout, a sanitizer report) after its last count
    passed += p
    failed += f
print(passed, failed)
