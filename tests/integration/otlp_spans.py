#!/usr/bin/env python3
"""The spans in the OTLP trace exports that tests/fakes/fake_otlp.mjs stored, for test_traces.sh.

  otlp_spans.py collect DIR PROTO_ROOT   decode every new DIR/req-*.pb and req-*.json; write DIR/spans.json
  otlp_spans.py check DIR EXPR           evaluate a Python expression over the spans: exit 0 when true
  otlp_spans.py json-check FILE          the OTLP/JSON rules of one JSON export (exit 1 with the reasons)

collect decodes each protobuf export twice: with `protoc --decode=...ExportTraceServiceRequest` and the
official .proto files (proof the bytes are a valid message; its text format is parsed into spans), and
with a wire-format decoder written here against the same schema. Both views must be equal. Per export
it writes req-N.txt (protoc's text) and req-N.spans.json; an export that protoc refuses, or whose two views
differ, goes to DIR/decode-errors.txt. JSON exports are read with the OTLP/JSON mapping.

A span is {file, resource:{k:v}, scope:{name,version}, trace_id, span_id, parent_span_id (hex, "" when
absent), trace_state, name, kind (int), start, end (ns), attributes:{k:v}, events:[{name,time,attributes}],
status:{code,message}, dropped_attributes, dropped_events}; attribute values are str, int, float, bool or a
list of them.
"""
import glob
import json
import os
import re
import struct
import subprocess
import sys

MSG = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"
PROTO = "opentelemetry/proto/collector/trace/v1/trace_service.proto"
KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
         "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


# ---- protobuf wire format ------------------------------------------------------------------------------

class WireError(Exception):
    pass


def varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b):
            raise WireError("truncated varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def fields(b):
    """[(field, wire, value)] of one message; value is int or bytes."""
    out, i = [], 0
    while i < len(b):
        key, i = varint(b, i)
        f, w = key >> 3, key & 7
        if f == 0:
            raise WireError("field number 0")
        if w == 0:
            v, i = varint(b, i)
        elif w == 1:
            if i + 8 > len(b):
                raise WireError("truncated fixed64")
            v = struct.unpack_from("<Q", b, i)[0]
            i += 8
        elif w == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise WireError(f"length {n} past the end")
            v = bytes(b[i:i + n])
            i += n
        elif w == 5:
            if i + 4 > len(b):
                raise WireError("truncated fixed32")
            v = struct.unpack_from("<I", b, i)[0]
            i += 4
        else:
            raise WireError(f"wire type {w}")
        out.append((f, w, v))
    return out


def s64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def pb_anyvalue(b):
    val = None
    for f, w, v in fields(b):
        if f == 1 and w == 2:
            val = v.decode("utf-8")
        elif f == 2 and w == 0:
            val = bool(v)
        elif f == 3 and w == 0:
            val = s64(v)
        elif f == 4 and w == 1:
            val = struct.unpack("<d", struct.pack("<Q", v))[0]
        elif f == 5 and w == 2:
            val = [pb_anyvalue(x) for ff, ww, x in fields(v) if ff == 1 and ww == 2]
        elif f == 7 and w == 2:
            val = v.hex()
        else:
            raise WireError(f"AnyValue field {f}/{w}")
    return val


def pb_attrs(items):
    out = {}
    for v in items:
        key, val = "", None
        for f, w, x in fields(v):
            if f == 1 and w == 2:
                key = x.decode("utf-8")
            elif f == 2 and w == 2:
                val = pb_anyvalue(x)
        out[key] = val
    return out


def pb_span(b):
    s = {"trace_id": "", "span_id": "", "parent_span_id": "", "trace_state": "", "name": "", "kind": 0,
         "start": 0, "end": 0, "attributes": {}, "events": [], "status": {"code": 0, "message": ""},
         "dropped_attributes": 0, "dropped_events": 0}
    attrs = []
    for f, w, v in fields(b):
        if f == 1 and w == 2:
            s["trace_id"] = v.hex()
        elif f == 2 and w == 2:
            s["span_id"] = v.hex()
        elif f == 3 and w == 2:
            s["trace_state"] = v.decode("utf-8")
        elif f == 4 and w == 2:
            s["parent_span_id"] = v.hex()
        elif f == 5 and w == 2:
            s["name"] = v.decode("utf-8")
        elif f == 6 and w == 0:
            s["kind"] = v
        elif f == 7 and w == 1:
            s["start"] = v
        elif f == 8 and w == 1:
            s["end"] = v
        elif f == 9 and w == 2:
            attrs.append(v)
        elif f == 10 and w == 0:
            s["dropped_attributes"] = v
        elif f == 11 and w == 2:
            e = {"name": "", "time": 0, "attributes": {}}
            eattrs = []
            for ff, ww, x in fields(v):
                if ff == 1 and ww == 1:
                    e["time"] = x
                elif ff == 2 and ww == 2:
                    e["name"] = x.decode("utf-8")
                elif ff == 3 and ww == 2:
                    eattrs.append(x)
            e["attributes"] = pb_attrs(eattrs)
            s["events"].append(e)
        elif f == 12 and w == 0:
            s["dropped_events"] = v
        elif f == 15 and w == 2:
            for ff, ww, x in fields(v):
                if ff == 2 and ww == 2:
                    s["status"]["message"] = x.decode("utf-8")
                elif ff == 3 and ww == 0:
                    s["status"]["code"] = x
        else:
            raise WireError(f"Span field {f}/{w}")
    s["attributes"] = pb_attrs(attrs)
    return s


def pb_request(b):
    spans = []
    for f, w, rs in fields(b):
        if (f, w) != (1, 2):
            raise WireError(f"ExportTraceServiceRequest field {f}/{w}")
        resource, scope_spans = {}, []
        for ff, ww, x in fields(rs):
            if (ff, ww) == (1, 2):
                resource = pb_attrs([a for fff, www, a in fields(x) if (fff, www) == (1, 2)])
            elif (ff, ww) == (2, 2):
                scope_spans.append(x)
        for ss in scope_spans:
            scope, sp = {"name": "", "version": ""}, []
            for ff, ww, x in fields(ss):
                if (ff, ww) == (1, 2):
                    for fff, www, y in fields(x):
                        if (fff, www) == (1, 2):
                            scope["name"] = y.decode("utf-8")
                        elif (fff, www) == (2, 2):
                            scope["version"] = y.decode("utf-8")
                elif (ff, ww) == (2, 2):
                    sp.append(pb_span(x))
            for s in sp:
                s["resource"] = resource
                s["scope"] = scope
                spans.append(s)
    return spans


# ---- protoc's text format ------------------------------------------------------------------------------

TOKEN = re.compile(r'\s*(?:(?P<open>[A-Za-z_][A-Za-z0-9_]*)\s*\{|(?P<close>\})|(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*'
                   r'(?P<val>"(?:[^"\\]|\\.)*"|[^\s}]+))', re.S)
ESC = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92, "'": 39, '"': 34, "?": 63}


def unescape(q):
    """Bytes of a text-format quoted string (C escapes; protoc writes octal for non-printable bytes)."""
    s, out, i = q[1:-1], bytearray(), 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        n = s[i + 1]
        if n in "01234567":
            j = i + 1
            while j < len(s) and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8) & 0xFF)
            i = j
        elif n == "x":
            j = i + 2
            while j < len(s) and j < i + 4 and s[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(s[i + 2:j], 16))
            i = j
        else:
            out.append(ESC[n])
            i += 2
    return bytes(out)


def parse_text(text):
    """protoc text format -> nested {name: [values]} (messages are dicts, scalars are raw tokens)."""
    root, stack, pos = {}, [], 0
    cur = root
    while True:
        m = TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip():
                raise ValueError(f"text format: cannot parse at {text[pos:pos + 60]!r}")
            break
        pos = m.end()
        if m.group("open"):
            d = {}
            cur.setdefault(m.group("open"), []).append(d)
            stack.append(cur)
            cur = d
        elif m.group("close"):
            cur = stack.pop()
        else:
            cur.setdefault(m.group("key"), []).append(m.group("val"))
    if stack:
        raise ValueError("text format: unbalanced braces")
    return root


def one(d, k, default=None):
    v = d.get(k)
    return v[0] if v else default


def tx_str(d, k):
    v = one(d, k)
    return unescape(v).decode("utf-8") if v is not None else ""


def tx_hex(d, k):
    v = one(d, k)
    return unescape(v).hex() if v is not None else ""


def tx_any(v):
    if "string_value" in v:
        return unescape(v["string_value"][0]).decode("utf-8")
    if "bool_value" in v:
        return v["bool_value"][0] == "true"
    if "int_value" in v:
        return int(v["int_value"][0])
    if "double_value" in v:
        return float(v["double_value"][0])
    if "array_value" in v:
        return [tx_any(x) for x in v["array_value"][0].get("values", [])]
    if "bytes_value" in v:
        return unescape(v["bytes_value"][0]).hex()
    return None


def tx_attrs(lst):
    return {tx_str(a, "key"): tx_any(one(a, "value", {})) for a in lst}


def tx_request(text):
    spans = []
    for rs in parse_text(text).get("resource_spans", []):
        resource = tx_attrs(one(rs, "resource", {}).get("attributes", []))
        for ss in rs.get("scope_spans", []):
            sc = one(ss, "scope", {})
            scope = {"name": tx_str(sc, "name"), "version": tx_str(sc, "version")}
            for sp in ss.get("spans", []):
                st = one(sp, "status", {})
                kind = one(sp, "kind", "SPAN_KIND_UNSPECIFIED")
                code = one(st, "code", "STATUS_CODE_UNSET")
                spans.append({
                    "trace_id": tx_hex(sp, "trace_id"), "span_id": tx_hex(sp, "span_id"),
                    "parent_span_id": tx_hex(sp, "parent_span_id"), "trace_state": tx_str(sp, "trace_state"),
                    "name": tx_str(sp, "name"), "kind": KINDS.get(kind, kind),
                    "start": int(one(sp, "start_time_unix_nano", 0)), "end": int(one(sp, "end_time_unix_nano", 0)),
                    "attributes": tx_attrs(sp.get("attributes", [])),
                    "events": [{"name": tx_str(e, "name"), "time": int(one(e, "time_unix_nano", 0)),
                                "attributes": tx_attrs(e.get("attributes", []))} for e in sp.get("events", [])],
                    "status": {"code": CODES.get(code, code), "message": tx_str(st, "message")},
                    "dropped_attributes": int(one(sp, "dropped_attributes_count", 0)),
                    "dropped_events": int(one(sp, "dropped_events_count", 0)),
                    "resource": resource, "scope": scope,
                })
    return spans


# ---- OTLP/JSON -----------------------------------------------------------------------------------------

def js_any(v):
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "arrayValue" in v:
        return [js_any(x) for x in v["arrayValue"].get("values", [])]
    return None


def js_attrs(lst):
    return {a.get("key", ""): js_any(a.get("value", {})) for a in lst or []}


def js_request(doc):
    spans = []
    for rs in doc.get("resourceSpans", []):
        resource = js_attrs(rs.get("resource", {}).get("attributes"))
        for ss in rs.get("scopeSpans", []):
            sc = ss.get("scope", {})
            scope = {"name": sc.get("name", ""), "version": sc.get("version", "")}
            for sp in ss.get("spans", []):
                st = sp.get("status", {})
                spans.append({
                    "trace_id": sp.get("traceId", ""), "span_id": sp.get("spanId", ""),
                    "parent_span_id": sp.get("parentSpanId", ""), "trace_state": sp.get("traceState", ""),
                    "name": sp.get("name", ""), "kind": sp.get("kind", 0),
                    "start": int(sp.get("startTimeUnixNano", 0)), "end": int(sp.get("endTimeUnixNano", 0)),
                    "attributes": js_attrs(sp.get("attributes")),
                    "events": [{"name": e.get("name", ""), "time": int(e.get("timeUnixNano", 0)),
                                "attributes": js_attrs(e.get("attributes"))} for e in sp.get("events", [])],
                    "status": {"code": st.get("code", 0), "message": st.get("message", "")},
                    "dropped_attributes": sp.get("droppedAttributesCount", 0),
                    "dropped_events": sp.get("droppedEventsCount", 0),
                    "resource": resource, "scope": scope,
                })
    return spans


def json_rules(doc):
    """The OTLP/JSON encoding rules Warden's JSON must follow; returns a list of violations."""
    bad = []
    if not isinstance(doc.get("resourceSpans"), list) or not doc["resourceSpans"]:
        return ["no resourceSpans array"]
    for rs in doc["resourceSpans"]:
        if not isinstance(rs.get("scopeSpans"), list) or not rs["scopeSpans"]:
            bad.append("resourceSpans[] without scopeSpans")
            continue
        for ss in rs["scopeSpans"]:
            if not isinstance(ss.get("spans"), list) or not ss["spans"]:
                bad.append("scopeSpans[] without spans")
                continue
            for sp in ss["spans"]:
                n = sp.get("name", "?")
                if not re.fullmatch(r"[0-9a-f]{32}", str(sp.get("traceId"))):
                    bad.append(f"{n}: traceId {sp.get('traceId')!r} is not 32 lowercase hex digits")
                if not re.fullmatch(r"[0-9a-f]{16}", str(sp.get("spanId"))):
                    bad.append(f"{n}: spanId {sp.get('spanId')!r} is not 16 lowercase hex digits")
                if "parentSpanId" in sp and not re.fullmatch(r"[0-9a-f]{16}", str(sp["parentSpanId"])):
                    bad.append(f"{n}: parentSpanId {sp['parentSpanId']!r}")
                for k in ("startTimeUnixNano", "endTimeUnixNano"):
                    if not (isinstance(sp.get(k), str) and sp[k].isdigit()):
                        bad.append(f"{n}: {k} {sp.get(k)!r} is not a decimal string")
                if not isinstance(sp.get("kind"), int):
                    bad.append(f"{n}: kind {sp.get('kind')!r} is not an integer")
                for e in sp.get("events", []):
                    if not (isinstance(e.get("timeUnixNano"), str) and e["timeUnixNano"].isdigit()):
                        bad.append(f"{n}: event timeUnixNano {e.get('timeUnixNano')!r}")
                for a in sp.get("attributes", []):
                    v = a.get("value", {})
                    if "intValue" in v and not (isinstance(v["intValue"], str) and re.fullmatch(r"-?\d+", v["intValue"])):
                        bad.append(f"{n}: {a.get('key')} intValue {v['intValue']!r} is not a decimal string")
                if "status" in sp and not isinstance(sp["status"].get("code", 0), int):
                    bad.append(f"{n}: status.code is not an integer")
    return bad


# ---- commands ------------------------------------------------------------------------------------------

def collect(d, proto_root):
    errors = []
    for path in sorted(glob.glob(os.path.join(d, "req-*.pb")) + glob.glob(os.path.join(d, "req-*.json"))):
        if path.endswith(".headers.json") or path.endswith(".spans.json"):
            continue
        base = path.rsplit(".", 1)[0]
        out = base + ".spans.json"
        if os.path.exists(out):
            continue
        name = os.path.basename(path)
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith(".pb"):
            r = subprocess.run(["protoc", f"--decode={MSG}", f"-I{proto_root}", PROTO], input=raw,
                               capture_output=True)
            if r.returncode != 0:
                errors.append(f"{name}: protoc --decode failed: {r.stderr.decode(errors='replace').strip()}")
                spans = []
            else:
                text = r.stdout.decode("utf-8", "replace")
                with open(base + ".txt", "w") as f:
                    f.write(text)
                try:
                    spans = tx_request(text)
                except Exception as e:  # noqa: BLE001
                    errors.append(f"{name}: protoc's text format did not parse: {e}")
                    spans = []
                try:
                    wire = pb_request(raw)
                except (WireError, UnicodeDecodeError) as e:
                    errors.append(f"{name}: wire decoding failed: {e}")
                    wire = None
                if wire is not None and wire != spans:
                    errors.append(f"{name}: protoc's view and the wire decoding differ")
        else:
            try:
                doc = json.loads(raw.decode("utf-8"))
                spans = js_request(doc)
                for b in json_rules(doc):
                    errors.append(f"{name}: {b}")
            except ValueError as e:
                errors.append(f"{name}: not JSON: {e}")
                spans = []
        for s in spans:
            s["file"] = name
        with open(out, "w") as f:
            json.dump(spans, f)
    if errors:
        with open(os.path.join(d, "decode-errors.txt"), "a") as f:
            f.write("\n".join(errors) + "\n")
    allspans = []
    for path in sorted(glob.glob(os.path.join(d, "req-*.spans.json"))):
        with open(path) as f:
            allspans += json.load(f)
    with open(os.path.join(d, "spans.json"), "w") as f:
        json.dump(allspans, f)
    return 0


class Q:
    """What check expressions see."""

    def __init__(self, spans):
        self.spans = spans

    def trace(self, tid):
        return [s for s in self.spans if s["trace_id"] == tid]

    def named(self, tid, name):
        return [s for s in self.trace(tid) if s["name"] == name]

    def server(self, tid):
        v = [s for s in self.trace(tid) if s["kind"] == 2]
        return v[0] if len(v) == 1 else None


def check(d, expr):
    with open(os.path.join(d, "spans.json")) as f:
        spans = json.load(f)
    q = Q(spans)
    env = {"spans": spans, "trace": q.trace, "named": q.named, "server": q.server, "json": json, "re": re}
    try:
        ok = eval(expr, env)  # noqa: S307 (the test's own expressions)
    except Exception as e:  # noqa: BLE001
        print(f"otlp_spans: {expr}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if not ok:
        print(f"otlp_spans: false: {expr}", file=sys.stderr)
        for tid in dict.fromkeys(re.findall(r"[0-9a-f]{32}", expr)):
            for sp in q.trace(tid):
                a = {k: v for k, v in sp["attributes"].items() if not k.startswith(("url.", "user_agent", "client."))}
                print(f"  {sp['name']} kind={sp['kind']} id={sp['span_id']} parent={sp['parent_span_id'] or '-'} "
                      f"{(sp['end'] - sp['start']) / 1e6:.3f} ms status={sp['status']['code']} "
                      f"events={[e['name'] for e in sp['events']]} {json.dumps(a)}", file=sys.stderr)
        return 1
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "collect":
        return collect(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "check":
        return check(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "json-check":
        with open(argv[2], "rb") as f:
            bad = json_rules(json.loads(f.read().decode("utf-8")))
        for b in bad:
            print(f"otlp_spans: {b}", file=sys.stderr)
        return 1 if bad else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
