-- wrk script for every benchmark scenario: send one request shape, print a JSON summary.
-- Env: BENCH_METHOD (default POST), BENCH_BODY (request body; unset = a small chat request, empty =
-- no body, e.g. for GET), BENCH_TOKEN (optional bearer token), BENCH_METADATA (optional
-- x-tfy-metadata value). For chat the body decides streaming ("stream": true); wrk counts a chunked
-- SSE response (or a 10 MB download) as one request that ends with its last byte, so latency is the
-- whole response.

wrk.method = os.getenv("BENCH_METHOD") or "POST"
local body = os.getenv("BENCH_BODY") or '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
wrk.headers["Accept"] = "application/json, text/event-stream"

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local metadata = os.getenv("BENCH_METADATA")
if metadata and metadata ~= "" then
  wrk.headers["x-tfy-metadata"] = metadata
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"mean_us":%.3f,"stdev_us":%.3f,' ..
    '"max_us":%d,"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status,
    e.connect, e.read, e.write, e.timeout, latency.mean, latency.stdev,
    latency.max, latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
