"""One access-log line per finished request, as logfmt text or one JSON object.

The line is made from the finished-request record and the route *template* (never the raw path: a
custom endpoint's path or query string may carry a caller's credentials). It never holds a body, a
header value, an upstream key or a token secret: values that come from callers (model names, the
request id, the subject) have anything shaped like a Relaygate token masked, and in text mode every
control or non-printable character escaped, so a caller cannot forge a second line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from relaygate.observe.record import LogRecord

# The fields of a line, in order (docs/observability-logs.md).
FIELDS = (
    "time",
    "request_id",
    "trace_id",
    "method",
    "route",
    "status",
    "subject",
    "model",
    "resolved_model",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "error_type",
)
Value = str | int | float | None

# `rg-<12 char id>-<secret>`: the id is public (kept), the secret never printed.
_TOKEN = re.compile(r"(rg-[a-z0-9]{12}-)[A-Za-z0-9_-]+")
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+,;()\[\]{}<>!?#$%&*'|~^`-]+")
# JSON is ASCII around its strings; these line breaks of other readers (str.splitlines) are escaped.
_JSON_LINE_BREAKS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"), (b"\xc2\x85", b"\\u0085"))


def mask_tokens(value: str) -> str:
    """The value with any Relaygate token's secret replaced by `***` (a caller may paste one anywhere)."""
    return _TOKEN.sub(r"\1***", value) if "rg-" in value else value


_SECOND: list[Any] = [None, ""]  # the last whole second formatted, and its text (lines come in bursts)


def iso_time(unix_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds: `2025-01-31T12:00:00.123Z`."""
    second = int(unix_seconds)
    if _SECOND[0] != second:
        _SECOND[1] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _SECOND[0] = second
    return f"{_SECOND[1]}.{int((unix_seconds - second) * 1000):03d}Z"


def access_fields(route: str, record: LogRecord) -> dict[str, Value]:
    """The line's values (None: not known) in `FIELDS` order; caller-supplied strings token-masked."""
    return {
        "time": iso_time(record.time),
        "request_id": mask_tokens(record.request_id),
        "trace_id": record.trace_id,
        "method": mask_tokens(record.method),
        "route": route or None,
        "status": record.status,
        "subject": mask_tokens(record.subject) if record.subject is not None else None,
        "model": mask_tokens(record.requested_model) if record.requested_model is not None else None,
        "resolved_model": mask_tokens(record.resolved_model) if record.resolved_model is not None else None,
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_usd": record.cost_usd,
        "error_type": record.error_type,
    }


def _escape(value: str) -> str:
    """A logfmt value: bare when plain, else quoted with `\\`, `"` and every non-printable escaped."""
    if value and value != "-" and _PLAIN.fullmatch(value):
        return value
    out = ['"']
    for char in value:
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


# Escaped forms of values that repeat from line to line (routes, models, subjects): bounded.
_ESCAPED: dict[str, str] = {}
_ESCAPED_MAX = 4096
# Fields whose text the gateway made itself from a safe alphabet (hex ids, the checked request id, the
# time): written as they are.
_SAFE_FIELDS = frozenset({"time", "trace_id", "request_id"})  # request ids are checked at dispatch (app.py)


def _text_value(value: Value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        escaped = _ESCAPED.get(value)
        if escaped is None:
            if len(_ESCAPED) >= _ESCAPED_MAX:
                _ESCAPED.clear()
            escaped = _ESCAPED[value] = _escape(value)
        return escaped
    if isinstance(value, float):
        return repr(value)
    return str(value)


def text_line(fields: dict[str, Value]) -> bytes:
    """`key=value` pairs separated by spaces, `-` for unknown, one `\\n` at the end (logfmt)."""
    line = " ".join(
        f"{key}={value}" if key in _SAFE_FIELDS and value is not None else f"{key}={_text_value(value)}"
        for key, value in fields.items()
    )
    return line.encode("utf-8") + b"\n"


def json_line(fields: dict[str, Value]) -> bytes:
    """One JSON object and `\\n`; unknown values are `null`."""
    try:
        data = orjson.dumps(fields)
    except TypeError:  # a lone surrogate in a caller's string: orjson refuses it, so spell it out
        data = orjson.dumps(
            {k: v.encode("utf-8", "backslashreplace").decode() if isinstance(v, str) else v for k, v in fields.items()}
        )
    for raw, escaped in _JSON_LINE_BREAKS:
        if raw in data:
            data = data.replace(raw, escaped)
    return data + b"\n"
