"""Sums up a load run of tests/replicas/load.mjs for tests/integration/test_replicas.sh.
Usage: answers.py OUT.jsonl summary          -> "total n200 n429 nother r1=N r2=N r3=N" (200s per replica)
       answers.py OUT.jsonl traces STATUS    -> the trace ids of the answers with STATUS, one a line
       answers.py OUT.jsonl traces STATUS SRV -> the same, only those served by replica SRV
       answers.py OUT.jsonl errors            -> each answer other than 200 and 429 (count, server, status, body)
       answers.py OUT.jsonl ended TRACES T_MS -> for the answers whose trace is in the file TRACES: how many,
                                               and how many ended more than 1 s before T_MS (epoch ms)"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
if sys.argv[2] == "summary":
    by = {}
    for r in rows:
        if r["status"] == 200:
            by[r["server"]] = by.get(r["server"], 0) + 1
    n200 = sum(1 for r in rows if r["status"] == 200)
    n429 = sum(1 for r in rows if r["status"] == 429)
    print(len(rows), n200, n429, len(rows) - n200 - n429,
          " ".join(f"{k}={by.get(k, 0)}" for k in ("r1", "r2", "r3")))
elif sys.argv[2] == "errors":
    seen = {}
    for r in rows:
        if r["status"] not in (200, 429):
            k = (r["server"], r["status"], r.get("err", ""))
            seen[k] = seen.get(k, 0) + 1
    print("; ".join(f"{n} x {s or '-'} {st} {e}" for (s, st, e), n in seen.items()))
elif sys.argv[2] == "ended":
    traces = set(line.strip() for line in open(sys.argv[3]) if line.strip())
    t = int(sys.argv[4])
    sel = [r for r in rows if r["trace"] in traces]
    print(len(sel), sum(1 for r in sel if r["end"] < t - 1000))
else:
    want = int(sys.argv[3])
    srv = sys.argv[4] if len(sys.argv) > 4 else None
    for r in rows:
        if r["status"] == want and (srv is None or r["server"] == srv):
            print(r["trace"])
