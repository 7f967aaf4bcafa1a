#!/usr/bin/env python3
"""Assertions on Warden's answers for the integration scripts: Anthropic error shapes, SSE streams, JSON
fields; plus small clients the shell cannot do well (a client that hangs up mid-stream, N concurrent streams).
Every subcommand exits 0 when the assertion holds and 1 (with the reason on stderr) when it does not.

  wd_assert.py error FILE TYPE|- [--contains S]... [--not-contains S]...   (- accepts any error.type)
  wd_assert.py sse FILE (--complete | --error) [--stop-reason R] [--not-stop-reason R]
  wd_assert.py message FILE [--stop-reason R] [--not-stop-reason R]
  wd_assert.py json FILE DOTTED.PATH [--eq VALUE] [--type array|object|string|number]
  wd_assert.py hangup URL BODY_FILE [--header H]... [--read-bytes N] [--hold S] [--timeout S]
  wd_assert.py concurrent URL BODY_FILE N [--header H]... [--timeout S] [--http2]
"""
import argparse
import json
import socket
import sys
import threading
import time
import urllib.parse


def die(msg):
    print(f"wd_assert: {msg}", file=sys.stderr)
    sys.exit(1)


def load(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def load_json(path):
    text = load(path)
    try:
        return json.loads(text)
    except ValueError as e:
        die(f"{path}: not JSON ({e}): {text[:300]!r}")


def cmd_error(a):
    j = load_json(a.file)
    raw = load(a.file)
    if not isinstance(j, dict) or j.get("type") != "error":
        die(f'top-level "type" is not "error": {raw[:300]}')
    e = j.get("error")
    if not isinstance(e, dict):
        die(f'"error" is not an object: {raw[:300]}')
    if a.type != "-" and e.get("type") != a.type:
        die(f'error.type is {e.get("type")!r}, want {a.type!r}: {raw[:300]}')
    msg = e.get("message")
    if not isinstance(msg, str) or not msg:
        die(f"error.message is not a non-empty string: {raw[:300]}")
    for s in a.contains or []:
        if s not in msg:
            die(f"error.message does not contain {s!r}: {msg!r}")
    for s in a.not_contains or []:
        if s in raw:
            die(f"error body contains {s!r}: {raw[:300]}")


def parse_sse(text):
    """Returns [(event, data_json_or_text)]; an event block without data counts as well."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        ev, data = None, []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            if line.startswith("event:"):
                ev = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        d = "\n".join(data)
        try:
            d = json.loads(d)
        except ValueError:
            pass
        events.append((ev, d))
    return events


def stop_reason_of(events):
    for ev, d in events:
        if ev == "message_delta" and isinstance(d, dict):
            return (d.get("delta") or {}).get("stop_reason")
    return None


def cmd_sse(a):
    text = load(a.file)
    events = parse_sse(text)
    names = [e for e, _ in events if e != "ping"]
    if not names:
        die(f"no SSE events in {a.file}: {text[:300]!r}")
    if names[0] not in ("message_start", "error"):
        die(f"first event is {names[0]!r}: {names}")
    for ev, d in events:
        if ev is not None and isinstance(d, dict) and d.get("type") != ev:
            die(f"event {ev!r} carries data of type {d.get('type')!r}")
    if a.complete:
        if names[-1] != "message_stop":
            die(f"stream does not end with message_stop: {names}")
        if "error" in names:
            die(f"complete stream carries an error event: {names}")
    if a.error:
        if names[-1] != "error":
            die(f"stream does not end with an error event: {names} {text[-300:]!r}")
        if "message_stop" in names:
            die(f"errored stream has a message_stop: {names}")
        d = events[-1][1]
        if not isinstance(d, dict) or d.get("type") != "error" or not isinstance(d.get("error"), dict) \
                or not isinstance(d["error"].get("type"), str) or not isinstance(d["error"].get("message"), str):
            die(f"error event is not in Anthropic shape: {d!r}")
        if a.error_type and d["error"]["type"] != a.error_type:
            die(f"error event type is {d['error']['type']!r}, want {a.error_type!r}")
    sr = stop_reason_of(events)
    if a.stop_reason and sr != a.stop_reason:
        die(f"stop_reason is {sr!r}, want {a.stop_reason!r}: {names}")
    if a.not_stop_reason and sr == a.not_stop_reason:
        die(f"stop_reason is {sr!r}")


def cmd_message(a):
    j = load_json(a.file)
    if not isinstance(j, dict) or j.get("type") != "message" or not isinstance(j.get("content"), list):
        die(f"not an Anthropic message: {load(a.file)[:300]}")
    if a.stop_reason and j.get("stop_reason") != a.stop_reason:
        die(f"stop_reason is {j.get('stop_reason')!r}, want {a.stop_reason!r}")
    if a.not_stop_reason and j.get("stop_reason") == a.not_stop_reason:
        die(f"stop_reason is {j.get('stop_reason')!r}")


def cmd_json(a):
    j = load_json(a.file)
    cur = j
    for part in a.path.split(".") if a.path else []:
        if isinstance(cur, list) and part.lstrip("-").isdigit():
            try:
                cur = cur[int(part)]
            except IndexError:
                die(f"{a.path}: index {part} out of range")
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            die(f"{a.path}: no {part!r} in {json.dumps(cur)[:200]}")
    if a.type:
        want = {"array": list, "object": dict, "string": str, "number": (int, float)}[a.type]
        if not isinstance(cur, want) or isinstance(cur, bool):
            die(f"{a.path} is {type(cur).__name__}, want {a.type}")
    if a.eq is not None:
        got = cur if isinstance(cur, str) else json.dumps(cur)
        if got != a.eq:
            die(f"{a.path} is {got!r}, want {a.eq!r}")
    if a.print:
        print(cur if isinstance(cur, str) else json.dumps(cur))


def http_request_bytes(url, body, headers):
    u = urllib.parse.urlsplit(url)
    lines = [f"POST {u.path or '/'} HTTP/1.1", f"Host: {u.netloc}", "Content-Type: application/json",
             f"Content-Length: {len(body)}"]
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, u


def cmd_hangup(a):
    """Sends one streaming request over HTTP/1.1, reads the first bytes of the answer and whatever follows for
    --hold seconds, then closes the socket (the client gives up)."""
    with open(a.body_file, "rb") as f:
        body = f.read()
    req, u = http_request_bytes(a.url, body, a.header or [])
    s = socket.create_connection((u.hostname, u.port), timeout=a.timeout)
    s.sendall(req)
    got = b""
    deadline = time.monotonic() + a.timeout
    while len(got) < a.read_bytes and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    # keep reading a while, so that Warden has written everything it had and sits waiting on the provider:
    # the hang-up must be noticed then too, not only when a write happens to fail
    hold_until = time.monotonic() + a.hold
    while time.monotonic() < hold_until:
        s.settimeout(max(0.01, hold_until - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
    # RST rather than FIN is what a killed process looks like as well; both must cancel upstream
    s.close()
    if b"message_start" not in got:
        die(f"did not get the start of a stream before hanging up: {got[:300]!r}")


def cmd_concurrent(a):
    import subprocess
    results = [None] * a.n
    args = ["curl", "-sS", "-N", "--max-time", str(a.timeout), "-w", "\n%{http_code} %{http_version}\n",
            "--data-binary", "@" + a.body_file]
    if a.http2:
        args.append("--http2-prior-knowledge")
    for h in a.header or []:
        args += ["-H", h]
    args.append(a.url)

    def run(i):
        try:
            p = subprocess.run(args, capture_output=True, timeout=a.timeout + 5)
            results[i] = (p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))
        except Exception as e:  # noqa: BLE001 - any failure is a failed stream
            results[i] = (-1, "", str(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(a.n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.timeout + 10)
    bad = 0
    for i, r in enumerate(results):
        if r is None:
            bad += 1
            print(f"stream {i}: still running", file=sys.stderr)
            continue
        rc, out, err = r
        tail = out.rstrip().rsplit("\n", 1)
        status = tail[-1] if len(tail) == 2 else ""
        events = [e for e, _ in parse_sse(tail[0] if len(tail) == 2 else out)]
        if rc != 0 or not status.startswith("200 ") or not events or events[-1] != "message_stop" or "error" in events:
            bad += 1
            print(f"stream {i}: rc={rc} status={status!r} events={events[-3:]} err={err.strip()[:200]}", file=sys.stderr)
    if bad:
        die(f"{bad} of {a.n} concurrent streams did not complete with message_stop")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("error")
    e.add_argument("file")
    e.add_argument("type")
    e.add_argument("--contains", action="append")
    e.add_argument("--not-contains", action="append")
    s = sub.add_parser("sse")
    s.add_argument("file")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--complete", action="store_true")
    g.add_argument("--error", action="store_true")
    s.add_argument("--error-type")
    s.add_argument("--stop-reason")
    s.add_argument("--not-stop-reason")
    m = sub.add_parser("message")
    m.add_argument("file")
    m.add_argument("--stop-reason")
    m.add_argument("--not-stop-reason")
    j = sub.add_parser("json")
    j.add_argument("file")
    j.add_argument("path")
    j.add_argument("--eq")
    j.add_argument("--type", choices=["array", "object", "string", "number"])
    j.add_argument("--print", action="store_true")
    h = sub.add_parser("hangup")
    h.add_argument("url")
    h.add_argument("body_file")
    h.add_argument("--header", action="append")
    h.add_argument("--read-bytes", type=int, default=1)
    h.add_argument("--hold", type=float, default=0.5)
    h.add_argument("--timeout", type=float, default=5)
    c = sub.add_parser("concurrent")
    c.add_argument("url")
    c.add_argument("body_file")
    c.add_argument("n", type=int)
    c.add_argument("--header", action="append")
    c.add_argument("--timeout", type=float, default=30)
    c.add_argument("--http2", action="store_true")
    a = p.parse_args()
    {"error": cmd_error, "sse": cmd_sse, "message": cmd_message, "json": cmd_json, "hangup": cmd_hangup,
     "concurrent": cmd_concurrent}[a.cmd](a)


if __name__ == "__main__":
    main()
