"""OpenTelemetry traces of finished requests (docs/tracing.md).

`config` decides from the standard `OTEL_*` variables whether tracing is on without importing the SDK;
only then does the gateway import `tracer` (the SDK, the exporter), so a gateway without tracing pays
nothing, not even the import. Spans are built after the fact from the finished-request record.
"""
