-- The W3C trace id of each request (`x-relaygate-trace-id`), so a log row links to its trace.
ALTER TABLE request_logs ADD COLUMN trace_id text;
CREATE INDEX request_logs_trace_id ON request_logs (trace_id);
