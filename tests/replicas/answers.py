"""Sums up a load run of tests/replicas/load.mjs for tests/integration/test_replicas.sh.
Usage: answers.py OUT.jsonl summary          -> "total n200 n429 nother r1=N r2=N r3=N" (200s per replica)
       answers.py OUT.jsonl traces STATUS    -> the trace ids of the answers with STATUS, one a line
       answers.py OUT.jsonl traces STATUS SRV -> the same, only those served by replica SRV"""
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
else:
    want = int(sys.argv[3])
    srv = sys.argv[4] if len(sys.argv) > 4 else None
    for r in rows:
        if r["status"] == want and (srv is None or r["server"] == srv):
            print(r["trace"])
