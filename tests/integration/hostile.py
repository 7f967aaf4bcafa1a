#!/usr/bin/env python3
"""Hostile clients for tests/integration/test_hostile.sh: raw HTTP/1.1 and HTTP/2 (h2c, prior knowledge) on
loopback only, every loop bounded in count and time. Each subcommand prints one JSON object.

  hostile.py h1-early PORT KEY|- CONTENT_LENGTH [PATH]       headers only; is it answered before the body?
  hostile.py h1-flood PORT CONNS MIB SECONDS                  unauthenticated bodies on many connections
  hostile.py h1-raw PORT HEX_PAYLOAD|@FILE [SECONDS]         raw bytes in; every response out, and whether it closed
  hostile.py h1-hold PORT KEY CONTENT_LENGTH CONNS SECONDS    authenticated heads whose bodies never come
  hostile.py h2-flood PORT STREAMS SECONDS [KEY]             HEADERS without END_STREAM, then DATA on all streams
  hostile.py h2-reset PORT KEY|- BATCHES PER_BATCH           open and reset streams in batches until GOAWAY
  hostile.py h2-priority PORT KEY                             a far PRIORITY frame, then a stream without a key
  hostile.py h2c-upgrade-reset PORT KEY BATCHES PER_BATCH    Upgrade: h2c with frames in the same write, then resets
  hostile.py reuseport-bind PORT                              can a foreign SO_REUSEPORT socket bind the port?
  hostile.py reuseport-hold PORT SECONDS                      hold the port with SO_REUSEPORT (prints ready)
  hostile.py ramp PORT CONNS SECONDS                          open many connections at once, each a GET /healthz
"""
import json
import os
import selectors
import socket
import struct
import sys
import time

HOST = "127.0.0.1"


def out(obj):
    print(json.dumps(obj), flush=True)


def connect(port, timeout=5.0, alpn="http/1.1"):
    """TCP, or TLS with ALPN when HOSTILE_TLS_CA names the CA file of the server's certificate."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ca = os.environ.get("HOSTILE_TLS_CA")
    if ca:
        import ssl
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols([alpn])
        s = ctx.wrap_socket(s, server_hostname=HOST)
        if alpn == "h2" and s.selected_alpn_protocol() != alpn:  # HTTP/1.1 is the default without ALPN
            sys.exit(f"ALPN: wanted {alpn}, got {s.selected_alpn_protocol()}")
    return s


def read_http1_responses(s, seconds):
    """Reads until the peer closes or the time is up; returns (responses, closed)."""
    s.settimeout(0.2)
    buf = b""
    closed = False
    end = time.time() + seconds
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            if parse_responses(buf)[1] and buf:
                # a complete response is here: wait a little for more or for the close
                pass
            continue
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not d:
            closed = True
            break
        buf += d
    return parse_responses(buf)[0], closed


def parse_responses(buf):
    res = []
    complete = True
    while buf:
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            complete = False
            break
        head = buf[:i].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1]) if len(head[0].split(" ")) > 1 else 0
        hdrs = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0") or 0)
        body = buf[i + 4:i + 4 + n]
        if len(body) < n:
            complete = False
            break
        res.append({"status": status, "headers": hdrs, "body": body.decode("utf-8", "replace")})
        buf = buf[i + 4 + n:]
    return res, complete


def head(path, key, cl, extra=""):
    h = f"POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {cl}\r\n"
    if key != "-":
        h += f"x-api-key: {key}\r\n"
    return (h + extra + "\r\n").encode()


def h1_early(port, key, cl, path="/anthropic/v1/messages"):
    s = connect(port)
    t0 = time.time()
    s.sendall(head(path, key, cl))
    res, closed = read_http1_responses(s, 3.0)
    r = {"responses": res, "closed": closed, "seconds": round(time.time() - t0, 3)}
    # now the body: the server must not be reading it any more
    sent = 0
    try:
        s.settimeout(1.0)
        for _ in range(64):
            sent += s.send(b"x" * 65536)
    except OSError:
        pass
    r["body_bytes_accepted_after"] = sent
    s.close()
    out(r)


def h1_flood(port, conns, mib, seconds):
    socks = []
    for _ in range(conns):
        s = connect(port)
        s.sendall(head("/anthropic/v1/messages", "-", mib * 1024 * 1024))
        s.setblocking(False)
        socks.append(s)
    sent = [0] * conns
    chunk = b"a" * 65536
    end = time.time() + seconds
    responses = [b""] * conns
    while time.time() < end:
        progress = False
        for i, s in enumerate(socks):
            if s is None:
                continue
            try:
                d = s.recv(65536)
                if d:
                    responses[i] += d
                else:
                    s.close()
                    socks[i] = None
                    continue
            except BlockingIOError:  # ssl.SSLWantReadError is one too
                pass
            except OSError:
                s.close()
                socks[i] = None
                continue
            if sent[i] < mib * 1024 * 1024:
                try:
                    n = s.send(chunk)
                    sent[i] += n
                    progress = True
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    s.close()
                    socks[i] = None
        if not progress:
            time.sleep(0.01)
    statuses = []
    for r in responses:
        parsed = parse_responses(r)[0]
        statuses.append(parsed[0]["status"] if parsed else 0)
    for s in socks:
        if s is not None:
            s.close()
    out({"sent": sent, "statuses": statuses})


def h1_raw(port, payload_hex, seconds=3.0):
    if payload_hex.startswith("@"):  # a file holding the hex (a long payload does not fit in argv)
        payload_hex = open(payload_hex[1:]).read().strip()
    s = connect(port)
    s.sendall(bytes.fromhex(payload_hex))
    res, closed = read_http1_responses(s, seconds)
    s.close()
    out({"responses": res, "closed": closed})


def h1_seq(port, items):
    """One connection; each item is a request (hex), or pieces of one joined by '/' (sent 0.1 s apart), sent after
    the answers to the ones before it have come. Prints every answer in order."""
    s = connect(port)
    s.settimeout(0.2)
    buf = b""
    want = 0
    for item in items:
        pieces = item.split("/")
        for k, piece in enumerate(pieces):
            if k:
                time.sleep(0.1)
            s.sendall(bytes.fromhex(piece))
        want += bytes.fromhex("".join(pieces)).count(b" HTTP/1.1\r\n")
        end = time.time() + 3.0
        while time.time() < end and len(parse_responses(buf)[0]) < want:
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            if not d:
                break
            buf += d
    res = parse_responses(buf)[0]
    s.close()
    out({"statuses": [r["status"] for r in res]})


def h1_hold(port, key, cl, conns, seconds):
    """Authenticated heads whose bodies never come: they hold the process budget."""
    socks, statuses = [], []
    for _ in range(conns):
        s = connect(port)
        s.sendall(head("/anthropic/v1/messages", key, cl))
        socks.append(s)
        time.sleep(0.05)
    for s in socks:
        s.settimeout(0.3)
        try:
            d = s.recv(65536)
            p = parse_responses(d)[0]
            statuses.append(p[0]["status"] if p else 0)
        except socket.timeout:
            statuses.append(None)  # still waiting for its body: admitted
        except OSError:
            statuses.append(-1)
    time.sleep(max(0.0, seconds))
    for s in socks:
        s.close()
    out({"statuses": statuses})


# ---- HTTP/2 ----

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 1, 4, 1


def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def hpack_int(v, prefix_bits, first=0):
    mx = (1 << prefix_bits) - 1
    if v < mx:
        return bytes([first | v])
    b = [first | mx]
    v -= mx
    while v >= 128:
        b.append((v & 127) | 128)
        v >>= 7
    b.append(v)
    return bytes(b)


def hpack(headers):
    """Literal header fields without indexing, new names, no Huffman: every decoder must take them."""
    o = b""
    for k, v in headers:
        k, v = k.encode(), v.encode()
        o += b"\x00" + hpack_int(len(k), 7) + k + hpack_int(len(v), 7) + v
    return o


def req_headers(port, key, extra=()):
    h = [(":method", "POST"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"),
         (":path", "/anthropic/v1/messages"), ("content-type", "application/json")]
    if key and key != "-":
        h.append(("x-api-key", key))
    return hpack(h + list(extra))


class H2Reader:
    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.frames = []
        self.closed = False

    def pump(self, timeout=0.0):
        self.s.settimeout(timeout if timeout > 0 else 0.001)
        try:
            d = self.s.recv(1 << 20)
            if not d:
                self.closed = True
            self.buf += d
        except (socket.timeout, BlockingIOError):
            pass
        except OSError:
            self.closed = True
        got = []
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            t, fl = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            got.append((t, fl, sid, self.buf[9:9 + n]))
            self.buf = self.buf[9 + n:]
        return got


def h2_start(port):
    s = connect(port, alpn="h2")
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    return s


def h2_flood(port, streams, seconds, key="-"):
    s = h2_start(port)
    r = H2Reader(s)
    hb = req_headers(port, key, [("content-length", str(20 * 1024 * 1024))])
    sids = [1 + 2 * i for i in range(streams)]
    s.sendall(b"".join(frame(HEADERS, END_HEADERS, sid, hb) for sid in sids))
    conn_window = 65535
    data = b"b" * 16384
    sent = 0
    data_by_stream, rst, goaway = {}, {}, None
    end = time.time() + seconds
    i = 0
    while time.time() < end and not r.closed and goaway is None:
        for t, fl, sid, p in r.pump(0.001):
            if t == WINDOW_UPDATE and sid == 0:
                conn_window += int.from_bytes(p[:4], "big") & 0x7FFFFFFF
            elif t == DATA:
                data_by_stream[sid] = data_by_stream.get(sid, b"") + p
            elif t == RST:
                rst[sid] = int.from_bytes(p[:4], "big")
            elif t == GOAWAY:
                goaway = int.from_bytes(p[4:8], "big")
            elif t == SETTINGS and not (fl & ACK):
                s.sendall(frame(SETTINGS, ACK, 0))
            elif t == PING and not (fl & ACK):
                s.sendall(frame(PING, ACK, 0, p))
        burst = b""
        while conn_window >= len(data) and len(burst) < (1 << 20):
            burst += frame(DATA, 0, sids[i % len(sids)], data)
            conn_window -= len(data)
            i += 1
        if burst:
            try:
                s.settimeout(1.0)
                s.sendall(burst)
                sent += len(burst)
            except OSError:
                break
        else:
            time.sleep(0.002)
    s.close()
    answered = sum(1 for sid in sids if b"authentication_error" in data_by_stream.get(sid, b""))
    out({"streams": streams, "answered_401": answered, "sent": sent, "rst": len(rst), "goaway": goaway})


def reset_batches(s, r, port, key, first_sid, batches, per_batch):
    """Batches of streams, each HEADERS + DATA (END_STREAM) + RST_STREAM (CANCEL) in one write, until GOAWAY
    (at most 10 s); returns (streams opened, the GOAWAY's error code or None)."""
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    hb = req_headers(port, key, [("content-length", str(len(body)))])
    sid, opened, goaway = first_sid, 0, None
    t0 = time.time()
    for _ in range(batches):
        burst = b""
        for _ in range(per_batch):
            burst += frame(HEADERS, END_HEADERS, sid, hb) + frame(DATA, END_STREAM, sid, body)
            burst += frame(RST, 0, sid, struct.pack(">I", 8))
            sid += 2
            opened += 1
        try:
            s.settimeout(2.0)
            s.sendall(burst)
        except OSError:
            break
        for t, fl, fsid, p in r.pump(0.01):
            if t == GOAWAY:
                goaway = int.from_bytes(p[4:8], "big")
            elif t == SETTINGS and not (fl & ACK):
                s.sendall(frame(SETTINGS, ACK, 0))
        if goaway is not None or r.closed or time.time() - t0 > 10:
            break
    end = time.time() + 2
    while goaway is None and not r.closed and time.time() < end:
        for t, fl, fsid, p in r.pump(0.05):
            if t == GOAWAY:
                goaway = int.from_bytes(p[4:8], "big")
    return opened, goaway


def h2_reset(port, key, batches, per_batch):
    s = h2_start(port)
    r = H2Reader(s)
    opened, goaway = reset_batches(s, r, port, key, 1, batches, per_batch)
    s.close()
    out({"opened": opened, "goaway": goaway, "closed": r.closed})


def h2_priority(port, key):
    """A PRIORITY frame for a far stream id, beside a stream the guard lets through, must not let a later
    stream without a key skip the guard."""
    s = h2_start(port)
    r = H2Reader(s)
    far = frame(2, 0, 0x7FFFFFF1, struct.pack(">IB", 0, 15))  # PRIORITY: depends on 0, weight 16
    s.sendall(far + frame(HEADERS, END_HEADERS, 1, req_headers(port, key, [("content-length", "1000000")])) +
              frame(DATA, 0, 1, b"a" * 1024))
    time.sleep(0.3)
    for t, fl, sid, p in r.pump(0.05):
        if t == SETTINGS and not (fl & ACK):
            s.sendall(frame(SETTINGS, ACK, 0))
    s.sendall(frame(HEADERS, END_HEADERS, 3, req_headers(port, "-", [("content-length", "1000000")])) +
              frame(DATA, 0, 3, b"c" * 16384))
    body3 = b""
    end = time.time() + 3
    while time.time() < end and b"authentication_error" not in body3 and not r.closed:
        for t, fl, sid, p in r.pump(0.05):
            if sid == 3 and t == DATA:
                body3 += p
    s.close()
    out({"stream3_401": b"authentication_error" in body3})


def h2c_upgrade_reset(port, key, batches, per_batch):
    """HTTP/1.1 Upgrade: h2c with the preface and half a frame in the same write, then rapid resets."""
    s = connect(port)
    up = (f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
          "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n").encode()
    ping = frame(PING, 0, 0, b"12345678")
    s.sendall(up + PREFACE + frame(SETTINGS, 0, 0) + ping[:5])
    time.sleep(0.2)
    s.sendall(ping[5:])
    r = H2Reader(s)
    # the 101 first
    s.settimeout(3)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    switched = buf.startswith(b"HTTP/1.1 101")
    r.buf = buf[buf.find(b"\r\n\r\n") + 4:]
    opened, goaway = reset_batches(s, r, port, key, 3, batches, per_batch)
    s.close()
    out({"switched": switched, "opened": opened, "goaway": goaway})


# ---- sockets ----

def reuseport_bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind((HOST, port))
        s.listen(8)
        out({"bound": True})
    except OSError as e:
        out({"bound": False, "errno": e.errno, "eaddrinuse": e.errno == 98})
    s.close()


def reuseport_hold(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((HOST, port))
    s.listen(8)
    out({"ready": True})
    time.sleep(seconds)
    s.close()


def ramp(port, conns, seconds):
    """conns connections at once, each one GET /healthz, all held open for `seconds`."""
    sel = selectors.DefaultSelector()
    socks = []
    refused = 0
    for _ in range(conns):
        try:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((HOST, port))
            except BlockingIOError:
                pass
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE, {"sent": False, "buf": b""})
        except OSError:
            refused += 1
    ok = closed = 0
    end = time.time() + seconds
    done = set()
    while time.time() < end and len(done) < len(socks):
        for key, ev in sel.select(0.1):
            s, st = key.fileobj, key.data
            if not st["sent"] and ev & selectors.EVENT_WRITE:
                try:
                    s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    st["sent"] = True
                    sel.modify(s, selectors.EVENT_READ, st)
                except OSError:
                    closed += 1
                    done.add(s)
                    sel.unregister(s)
                continue
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if not d:
                closed += 1
                done.add(s)
                sel.unregister(s)
                continue
            st["buf"] += d
            if b"\r\n\r\n" in st["buf"] and b" 200 " in st["buf"].split(b"\r\n")[0]:
                ok += 1
                done.add(s)
                sel.unregister(s)
    for s in socks:
        s.close()
    out({"ok": ok, "closed": closed, "connect_failed": refused, "unanswered": len(socks) - len(done)})


def main():
    a = sys.argv[1:]
    cmd = a[0]
    if cmd == "h1-early":
        h1_early(int(a[1]), a[2], int(a[3]), *(a[4:5]))
    elif cmd == "h1-flood":
        h1_flood(int(a[1]), int(a[2]), int(a[3]), float(a[4]))
    elif cmd == "h1-raw":
        h1_raw(int(a[1]), a[2], float(a[3]) if len(a) > 3 else 3.0)
    elif cmd == "h1-seq":
        h1_seq(int(a[1]), a[2:])
    elif cmd == "h1-hold":
        h1_hold(int(a[1]), a[2], int(a[3]), int(a[4]), float(a[5]))
    elif cmd == "h2-flood":
        h2_flood(int(a[1]), int(a[2]), float(a[3]), a[4] if len(a) > 4 else "-")
    elif cmd == "h2-reset":
        h2_reset(int(a[1]), a[2], int(a[3]), int(a[4]))
    elif cmd == "h2-priority":
        h2_priority(int(a[1]), a[2])
    elif cmd == "h2c-upgrade-reset":
        h2c_upgrade_reset(int(a[1]), a[2], int(a[3]), int(a[4]))
    elif cmd == "reuseport-bind":
        reuseport_bind(int(a[1]))
    elif cmd == "reuseport-hold":
        reuseport_hold(int(a[1]), float(a[2]))
    elif cmd == "ramp":
        ramp(int(a[1]), int(a[2]), float(a[3]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
