"""The balancer's race at a replica's SIGTERM, made deterministic for tests/integration/test_replicas.sh: a
connection the replica accepted before the signal (as HAProxy opens one just before the listener closes) carries
its request only after the signal, while the drain is still open. Prints the answer's status line, or "closed"
when the replica closed the connection without a byte (which a balancer retries elsewhere).
Usage: late_request.py PORT PID KEY"""
import os
import signal
import socket
import sys
import time

port, pid, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
time.sleep(0.2)  # accepted by the replica
os.kill(pid, signal.SIGTERM)
time.sleep(0.2)  # the replica is draining: its listener is closed, a slow call is still in flight
body = b'{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"late"}]}'
try:
    s.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: warden\r\nx-api-key: %s\r\n"
              b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (key.encode(), len(body), body))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    data = b""
if not data:
    print("closed")
else:
    head, _, rest = data.partition(b"\r\n\r\n")
    print(head.split(b"\r\n")[0].decode(errors="replace"), rest[:120].decode(errors="replace"))
