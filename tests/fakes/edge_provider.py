#!/usr/bin/env python3
"""Providers that end an answer in the awkward places a gateway's call lifecycle must survive, for
tests/integration/test_call_edges.sh. Python 3 stdlib only; 127.0.0.1; every answer bounded in bytes and time.

  edge_provider.py --mode MODE [--port 0]

Prints {"port":N} once listening. Modes:
  anth-oversize   Anthropic Messages stream: message_start, then (0.3 s later) one data line of 5000 bytes, then
                  the connection closes (a gateway with limits.max_response_bytes below 5000 refuses the event after
                  it committed the stream)
  gem-slow-error  Gemini: the first request waits 9.3 s (long enough for a ping to be due), then answers 200 with a
                  stream that holds only an error and Retry-After: 1; every later request gets 429
GET /_stats answers {"posts":N}.
"""
import argparse
import http.server
import json
import sys
import threading
import time

LOCK = threading.Lock()
STATS = {"posts": 0}
MODE = ""


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        out = json.dumps(STATS).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self):
        n = int(self.headers.get("content-length", 0) or 0)
        if n > 64 << 20:
            self.send_error(413)
            return
        self.rfile.read(n)
        with LOCK:
            STATS["posts"] += 1
            k = STATS["posts"]
        if MODE == "anth-oversize":
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            start = {"type": "message_start", "message": {"id": "msg_edge", "type": "message", "role": "assistant",
                     "model": "claude-sonnet-4-5", "content": [], "stop_reason": None, "stop_sequence": None,
                     "usage": {"input_tokens": 3, "output_tokens": 1}}}
            self.wfile.write(b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n")
            self.wfile.flush()
            time.sleep(0.3)
            self.wfile.write(b"event: content_block_delta\ndata: " + b"x" * 5000 + b"\n\n")
            self.wfile.flush()
            time.sleep(0.5)
            self.close_connection = True
            return
        if MODE == "gem-slow-error" and k == 1:
            time.sleep(9.3)
            out = b'data: {"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}\r\n\r\n'
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("retry-after", "1")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        out = b'{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}'
        self.send_response(429)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main():
    global MODE
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=["anth-oversize", "gem-slow-error"])
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    MODE = a.mode
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), H)
    srv.daemon_threads = True
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
