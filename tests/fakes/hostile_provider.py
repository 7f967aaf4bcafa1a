#!/usr/bin/env python3
"""A Gemini-shaped provider that misbehaves at the HTTP layer, for Warden's upstream hardening tests.
Python 3 stdlib only; listens on 127.0.0.1; every loop is bounded in bytes and time.

  hostile_provider.py --mode MODE [--port 0]

Prints {"port":N} once listening. Modes:
  reset-half   keep-alive; answers generateContent / streamGenerateContent normally, except every second
               request it receives, which it reads whole and then answers with a TCP reset (RST).
  huge         200 application/json, chunked, with a body that never ends (until the peer leaves, 1 GiB or 60 s)
  huge-length  the same with "Content-Length: 209715200" announced up front
  huge-error   500 application/json with a body that never ends
  redirect     302 with a Location, for every request
GET /_stats answers {"posts":N,"resets":N,"answered":N,"sent_bytes":N,"peer_left":N} (sent_bytes: body bytes
written by the last huge answer; peer_left: huge answers cut short by the client).
"""
import argparse
import json
import socket
import socketserver
import struct
import sys
import threading
import time

LOCK = threading.Lock()
STATS = {"posts": 0, "resets": 0, "answered": 0, "sent_bytes": 0, "peer_left": 0}
MODE = "reset-half"
MAX_HUGE = 1 << 30
MAX_HUGE_S = 60.0


def answer_json(text):
    return json.dumps({
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
    }).encode()


class Handler(socketserver.BaseRequestHandler):
    def read_request(self, buf):
        """One request from the connection: (method, path, body, rest) or None at EOF."""
        deadline = time.monotonic() + 30
        while b"\r\n\r\n" not in buf:
            if len(buf) > 1 << 20 or time.monotonic() > deadline:
                return None
            d = self.request.recv(65536)
            if not d:
                return None
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        n = 0
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            if k.strip().lower() == "content-length":
                n = int(v.strip())
        while len(rest) < n:
            if time.monotonic() > deadline:
                return None
            d = self.request.recv(65536)
            if not d:
                return None
            rest += d
        return method, path, rest[:n], rest[n:]

    def send(self, status, ctype, body, extra=""):
        reason = {200: "OK", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}.get(status, "X")
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"{extra}\r\n").encode()
        self.request.sendall(head + body)

    def reset(self):
        # SO_LINGER 0: close() sends RST instead of FIN
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request.close()

    def endless(self, status, announce):
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {200 << 20}\r\n" if announce else "Transfer-Encoding: chunked\r\n"
        sent = 0
        t0 = time.monotonic()
        piece = b"a" * 65536
        try:
            self.request.sendall((head + "\r\n").encode())
            start = b'{"candidates":[{"content":{"parts":[{"text":"'
            self.request.sendall(start if announce else b"%x\r\n%s\r\n" % (len(start), start))
            while sent < MAX_HUGE and time.monotonic() - t0 < MAX_HUGE_S:
                self.request.sendall(piece if announce else b"10000\r\n" + piece + b"\r\n")
                sent += len(piece)
                with LOCK:
                    STATS["sent_bytes"] = sent
        except OSError:
            with LOCK:
                STATS["peer_left"] += 1
        self.request.close()

    def handle(self):
        buf = b""
        while True:
            r = self.read_request(buf)
            if r is None:
                return
            method, path, body, buf = r
            if method == "GET" and path == "/_stats":
                with LOCK:
                    s = json.dumps(STATS).encode()
                self.send(200, "application/json", s)
                continue
            if method != "POST":
                self.send(404, "application/json", b'{"error":{"code":404,"message":"no","status":"NOT_FOUND"}}')
                continue
            with LOCK:
                STATS["posts"] += 1
                n = STATS["posts"]
            if MODE == "reset-half":
                if n % 2 == 0:
                    with LOCK:
                        STATS["resets"] += 1
                    self.reset()
                    return
                with LOCK:
                    STATS["answered"] += 1
                if "streamGenerateContent" in path:
                    self.send(200, "text/event-stream", b"data: " + answer_json("hello there") + b"\r\n\r\n")
                else:
                    self.send(200, "application/json", answer_json("hello there"))
                continue
            if MODE == "redirect":
                self.send(302, "text/html", b"<a href='http://127.0.0.1:1/elsewhere'>moved</a>",
                          "Location: http://127.0.0.1:1/elsewhere\r\n")
                continue
            self.endless(500 if MODE == "huge-error" else 200, MODE == "huge-length")
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    global MODE
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=["reset-half", "huge", "huge-length", "huge-error", "redirect"])
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    MODE = a.mode
    srv = Server(("127.0.0.1", a.port), Handler)
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
