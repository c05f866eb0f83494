"""Anthropic errors -> OpenAI error objects, and the statuses that decide retries and fallback.

Anthropic answers errors as `{"type": "error", "error": {"type", "message"}, "request_id"}` with the
statuses of its errors page (400, 401, 402, 403, 404, 413, 429, 500, 504, 529); the same `error` object
arrives as an SSE `error` event mid-stream. The provider's message text is kept (the gateway scrubs
configured secrets); the Anthropic error type becomes the OpenAI `code`, so callers can still branch on it.
529 `overloaded_error` is a 503 here: retryable and a fallback trigger under the router's defaults,
and `map_status` lets the router see the 503 before it reads the body.
"""

from __future__ import annotations

import orjson

OVERLOADED_STATUS = 529

# Anthropic error type -> (status for the caller, OpenAI error type).
_ERROR_TYPES: dict[str, tuple[int, str]] = {
    "invalid_request_error": (400, "invalid_request_error"),
    "authentication_error": (401, "authentication_error"),
    "billing_error": (402, "billing_error"),
    "permission_error": (403, "permission_error"),
    "not_found_error": (404, "not_found_error"),
    "conflict_error": (409, "invalid_request_error"),
    "request_too_large": (413, "invalid_request_error"),
    "rate_limit_error": (429, "rate_limit_error"),
    "api_error": (500, "server_error"),
    "timeout_error": (504, "timeout_error"),
    "overloaded_error": (503, "server_error"),
}
# Statuses without a readable body: what Anthropic documents for each.
_STATUS_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    OVERLOADED_STATUS: "overloaded_error",
}


def map_status(status: int) -> int:
    """The status the router acts on before any body is read: 529 (overloaded) is a retryable 503."""
    return 503 if status == OVERLOADED_STATUS else status


def error_object(anthropic_type: str, message: str, status: int | None = None) -> tuple[int, dict[str, object]]:
    """(status, OpenAI error object) for one Anthropic error `type` and `message`."""
    known = _ERROR_TYPES.get(anthropic_type)
    if known is None:
        mapped = map_status(status) if status is not None else 500
        return mapped, {"message": message, "type": "upstream_error", "code": anthropic_type or None, "param": None}
    mapped, openai_type = known
    if status is not None and status != OVERLOADED_STATUS:
        # The API uses these types for other statuses of the same class too; keep theirs.
        if (anthropic_type == "invalid_request_error" and 400 <= status < 500) or (
            anthropic_type == "api_error" and 500 <= status < 600
        ):
            mapped = status
    code = "rate_limit_exceeded" if anthropic_type == "rate_limit_error" else anthropic_type
    return mapped, {"message": message, "type": openai_type, "code": code, "param": None}


def classify(status: int, body: bytes) -> tuple[int, dict[str, object]]:
    """An Anthropic error answer (HTTP status + raw body) as (status for the caller, OpenAI error object)."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type")
        return error_object(
            str(kind or _STATUS_TYPES.get(status, "")),
            str(message) if message else f"Anthropic returned HTTP {status}",
            status,
        )
    text = body.decode("utf-8", "replace").strip()[:2000] if body else ""
    return error_object(_STATUS_TYPES.get(status, ""), text or f"Anthropic returned HTTP {status}", status)
