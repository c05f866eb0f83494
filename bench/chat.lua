-- wrk script for every benchmark scenario: POST a chat completion, print a JSON summary.
-- Env: BENCH_BODY (request JSON), BENCH_TOKEN (optional bearer token), BENCH_METADATA (optional
-- x-tfy-metadata value). The body decides streaming ("stream": true); wrk counts a chunked SSE
-- response as one request that ends with its last chunk, so latency is the whole stream.

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
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
