"""Reading an admin request's query string and JSON body, with a 400 naming the bad parameter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from relaygate.errors import BadRequest

MAX_QUERY_PAIRS = 200


def parse_query(raw: bytes) -> dict[str, list[str]]:
    """`a=1&a=2&b=` -> `{"a": ["1", "2"], "b": [""]}`; too many pairs is a 400, not a slow parse."""
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_QUERY_PAIRS
        )
    except UnicodeDecodeError as exc:
        raise BadRequest("the query string is not valid UTF-8", code="invalid_query") from exc
    except ValueError as exc:  # max_num_fields exceeded
        raise BadRequest(f"the query string has more than {MAX_QUERY_PAIRS} parameters", code="invalid_query") from exc
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


class Query:
    """Typed access to one request's query parameters."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, list[str]]) -> None:
        self.values = values

    def text(self, name: str, *, max_length: int = 512) -> str | None:
        """The last value of `name`, or None when absent or empty."""
        values = self.values.get(name)
        if not values or values[-1] == "":
            return None
        value = values[-1]
        if len(value) > max_length:
            raise BadRequest(f"{name} is longer than {max_length} characters", param=name, code="invalid_parameter")
        return value

    def integer(
        self, name: str, *, default: int | None = None, low: int | None = None, high: int | None = None
    ) -> int | None:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(
                f"{name} must be an integer, got {raw[:40]!r}", param=name, code="invalid_parameter"
            ) from None
        return _bounded(name, value, low, high)

    def number(self, name: str) -> float | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise BadRequest(
                f"{name} must be a number, got {raw[:40]!r}", param=name, code="invalid_parameter"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise BadRequest(f"{name} must be a finite number", param=name, code="invalid_parameter")
        return value

    def boolean(self, name: str) -> bool | None:
        raw = self.text(name)
        if raw is None:
            return None
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise BadRequest(f"{name} must be true or false, got {raw[:40]!r}", param=name, code="invalid_parameter")

    def time(self, name: str) -> float | None:
        """Unix seconds, or an ISO-8601 time (`Z` or an offset; naive times are UTC)."""
        raw = self.text(name)
        return None if raw is None else parse_time(raw, name)

    def prefixed(self, prefix: str) -> dict[str, str]:
        """`metadata.app=x&metadata.env=prod` -> `{"app": "x", "env": "prod"}` for prefix `metadata.`."""
        out: dict[str, str] = {}
        for key, values in self.values.items():
            if key.startswith(prefix) and len(key) > len(prefix):
                out[key[len(prefix) :]] = values[-1]
        return out


def _bounded(name: str, value: int, low: int | None, high: int | None) -> int:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f">= {low}" if low is not None else f"<= {high}")
        )
        raise BadRequest(f"{name} must be {bounds}, got {value}", param=name, code="invalid_parameter")
    return value


def parse_time(raw: Any, name: str) -> float:
    """Unix seconds (number or numeric text) or ISO-8601 text -> unix seconds; 400 otherwise."""
    if isinstance(raw, bool):
        raise BadRequest(f"{name} must be a time", param=name, code="invalid_parameter")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise BadRequest(
                    f"{name} must be unix seconds or an ISO-8601 time such as 2026-01-31T12:00:00Z, got {raw[:40]!r}",
                    param=name,
                    code="invalid_parameter",
                ) from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            value = parsed.timestamp()
    else:
        raise BadRequest(f"{name} must be a time", param=name, code="invalid_parameter")
    if not (0 <= value < 32503680000):  # year 3000
        raise BadRequest(f"{name} is out of range", param=name, code="invalid_parameter")
    return value


def body_object(body: Any) -> dict[str, Any]:
    """The JSON body as an object, or a 400."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_body")
    return body


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
    """One typed field of a JSON body (None when absent and not required)."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"'{name}' is required", param=name, code="missing_parameter")
        return None
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise BadRequest(f"'{name}' has the wrong type", param=name, code="invalid_parameter")
    if not isinstance(value, kind):
        raise BadRequest(f"'{name}' has the wrong type", param=name, code="invalid_parameter")
    return value
