-- The request log: one row per request, written in batches by each replica's log sink.
-- Columns mirror `LogRecord` (and the SQLite table); metadata and extra are jsonb.
CREATE TABLE request_logs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id      text NOT NULL,
    "time"          double precision NOT NULL,
    method          text NOT NULL,
    path            text NOT NULL,
    subject         text,
    token_id        text,
    requested_model text,
    resolved_model  text,
    provider        text,
    model_type      text,
    status          integer NOT NULL,
    streaming       boolean NOT NULL,
    input_tokens    bigint,
    output_tokens   bigint,
    cost_usd        double precision,
    cost_unknown    boolean NOT NULL,
    latency_ms      double precision,
    ttft_ms         double precision,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    error_type      text,
    error_message   text,
    request_body    bytea,
    response_body   bytea,
    truncated       boolean NOT NULL,
    extra           jsonb NOT NULL DEFAULT '{}'::jsonb
);
-- `relaygate logs` filters, each newest first: none, --model (requested or resolved), --user, --metadata.
CREATE INDEX request_logs_time ON request_logs ("time", id);
CREATE INDEX request_logs_requested_model ON request_logs (requested_model, "time");
CREATE INDEX request_logs_resolved_model ON request_logs (resolved_model, "time");
CREATE INDEX request_logs_subject ON request_logs (subject, "time");
CREATE INDEX request_logs_request_id ON request_logs (request_id);
CREATE INDEX request_logs_metadata ON request_logs USING gin (metadata jsonb_path_ops);
