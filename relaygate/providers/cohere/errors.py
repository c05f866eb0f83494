"""Cohere errors -> OpenAI error objects, and the statuses that decide retries and fallback.

Cohere answers every non-2xx as `{"message": "..."}` (some bodies carry an `id` too; the API
reference's error schemas name a `data` string) with the statuses of its errors page and OpenAPI
spec: 400, 401, 402, 403, 404, 422, 429, 498, 499, 500, 501, 503, 504. The provider's message text is
kept (the gateway scrubs configured secrets). Two statuses are not what they look like:

- 498 is Cohere's "InvalidToken": the request or the response contains a deny-listed *text* token
  (blocked input or output), not a bad credential. Retrying cannot help, so it is a 400.
- 499 means Cohere cancelled the request on its side ("request cancelled"); the gateway did not
  cancel anything, so for the caller it is an upstream failure: 502, retryable and a fallback trigger.
"""

from __future__ import annotations

import orjson

# Cohere status -> (status for the caller, OpenAI error type, OpenAI error code).
_STATUSES: dict[int, tuple[int, str, str | None]] = {
    400: (400, "invalid_request_error", None),
    401: (401, "authentication_error", "invalid_api_key"),
    402: (402, "billing_error", "insufficient_quota"),
    403: (403, "permission_error", None),
    404: (404, "not_found_error", "model_not_found"),
    422: (400, "invalid_request_error", None),
    429: (429, "rate_limit_error", "rate_limit_exceeded"),
    498: (400, "invalid_request_error", "blocked_content"),
    499: (502, "upstream_error", "upstream_cancelled"),
    500: (500, "server_error", None),
    501: (501, "server_error", "not_implemented"),
    502: (502, "server_error", None),
    503: (503, "server_error", "service_unavailable"),
    504: (504, "timeout_error", None),
}


def map_status(status: int) -> int:
    """The status the router acts on before any body is read (498 -> 400, 499 -> 502, 422 -> 400)."""
    known = _STATUSES.get(status)
    return known[0] if known is not None else status


def message_of(raw: bytes, status: int) -> str:
    """Cohere's own error text: `message`, else `data`, else the raw body, else the status."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()
        return text[:2000] or f"Cohere returned HTTP {status}"
    if isinstance(parsed, dict):
        for key in ("message", "data"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
    return f"Cohere returned HTTP {status}"


def classify(status: int, raw: bytes) -> tuple[int, dict[str, object]]:
    """(status for the caller, OpenAI error object) for one Cohere error answer."""
    known = _STATUSES.get(status)
    if known is None:
        error_type = "server_error" if status >= 500 else "invalid_request_error"
        mapped, code = status, None
    else:
        mapped, error_type, code = known
    return mapped, {"message": message_of(raw, status), "type": error_type, "code": code, "param": None}
