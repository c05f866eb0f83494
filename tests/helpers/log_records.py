"""Request-log rows for the log-store tests (SQLite and PostgreSQL run the same cases)."""

from __future__ import annotations

from relaygate.observe.record import LogRecord


def log_record(n: int, **overrides: object) -> LogRecord:
    """Row number `n` (its own request id and second), a chat call by alice unless overridden."""
    base: dict[str, object] = {
        "request_id": f"req-{n}",
        "time": 1_700_000_000.0 + n,
        "method": "POST",
        "path": "/api/llm/chat/completions",
        "subject": "user:alice@x.com",
        "requested_model": "openai-main/gpt-4o",
        "resolved_model": "openai-main/gpt-4o",
        "status": 200,
    }
    base.update(overrides)
    return LogRecord(**base)  # type: ignore[arg-type]
