"""Presentation for `relaygate logs`: filter parsing and row formatting, kept apart from storage.

Rows are the dicts a `LogStore.query` returns. Text that came from callers (model names, subjects)
is stripped of control characters in the table so a crafted request cannot drive the terminal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

TABLE_COLUMNS: tuple[str, ...] = (
    "time",
    "request_id",
    "subject",
    "model",
    "status",
    "streaming",
    "tokens in/out",
    "cost_usd",
    "latency_ms",
)
_MISSING = "-"


def parse_metadata_filters(pairs: list[str]) -> dict[str, str]:
    """`["team=ml", "env=prod"]` -> `{"team": "ml", "env": "prod"}`; splits on the first `=`."""
    filters: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"metadata filter {pair!r} must be KEY=VALUE (for example team=ml)")
        if key in filters and filters[key] != value:
            raise ValueError(f"metadata filter key {key!r} given twice with different values")
        filters[key] = value
    return filters


def format_rows(rows: list[dict[str, Any]], *, as_json: bool) -> str:
    """JSON lines (bodies included) for machines, or an aligned table for people."""
    if as_json:
        return "\n".join(
            orjson.dumps(row, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode() for row in rows
        )
    if not rows:
        return "no matching requests"
    table = [TABLE_COLUMNS, *(_table_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(TABLE_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table
    )


def _json_default(value: Any) -> Any:
    """Bodies from a store that kept bytes still print as text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _table_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """One table line; missing values show as `-`."""
    requested = row.get("requested_model")
    resolved = row.get("resolved_model")
    if requested and resolved and requested != resolved:
        model = f"{requested} → {resolved}"
    else:
        model = requested or resolved or _MISSING
    return (
        _format_time(row.get("time")),
        _clean(row.get("request_id")),
        _clean(row.get("subject")),
        _clean(model),
        str(row.get("status", _MISSING)),
        "yes" if row.get("streaming") else "no",
        f"{_number(row.get('input_tokens'))}/{_number(row.get('output_tokens'))}",
        _format_cost(row),
        _number(row.get("latency_ms")),
    )


def _format_time(value: Any) -> str:
    """Unix seconds as ISO-8601 UTC to the second."""
    if not isinstance(value, int | float):
        return _MISSING
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _format_cost(row: dict[str, Any]) -> str:
    """USD to the micro-dollar, `unknown` when no price was known for the model."""
    if row.get("cost_unknown"):
        return "unknown"
    cost = row.get("cost_usd")
    if cost is None:
        return _MISSING
    return f"{cost:.6f}"


def _number(value: Any) -> str:
    """Integers as is, floats rounded to whole units (tokens, milliseconds)."""
    if value is None:
        return _MISSING
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def _clean(value: Any) -> str:
    """Printable text only; control characters become `?`."""
    if value is None or value == "":
        return _MISSING
    return "".join(ch if ch.isprintable() else "?" for ch in str(value))
