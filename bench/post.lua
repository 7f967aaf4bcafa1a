-- wrk script for bench/run.sh: POSTs one body file with the given headers and prints one JSON line of
-- results. Environment: BENCH_BODY (file; unset or empty: a GET without body), BENCH_HEADERS ("name: value" lines),
-- BENCH_TRACE ("01" or "00": every request carries a W3C traceparent of its own with that flags byte, sampled or
-- not; the ids come from a counter, so that making them costs the load generator next to nothing).
local body_file = os.getenv("BENCH_BODY") or ""
if body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["content-type"] = "application/json"
end
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local k, v = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if k then wrk.headers[k] = v end
end

local trace_flags = os.getenv("BENCH_TRACE") or ""
if trace_flags ~= "" then
  math.randomseed(os.time())
  local hi, n = math.random(1, 2 ^ 30), 0
  request = function()
    n = n + 1
    wrk.headers["traceparent"] = string.format("00-%016x%016x-%016x-%s", hi, n, n, trace_flags)
    return wrk.format()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
    '"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
