"""Google API errors -> (status, OpenAI error object).

Google answers `{"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT", "details": [...]}}`
(streamGenerateContent without `alt=sse` wraps it in a list). The canonical `status` decides the HTTP
status we give the caller, and with it retryability (429/5xx are retried or fallen back from; 4xx are
the caller's fault):

    INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE -> 400   UNAUTHENTICATED -> 401
    PERMISSION_DENIED -> 403    NOT_FOUND -> 404    ABORTED, ALREADY_EXISTS -> 409
    RESOURCE_EXHAUSTED -> 429   CANCELLED -> 499    INTERNAL, UNKNOWN, DATA_LOSS -> 500
    UNIMPLEMENTED -> 501        UNAVAILABLE -> 503  DEADLINE_EXCEEDED -> 504

A Gemini API key that Google rejects comes back as 400 INVALID_ARGUMENT with reason API_KEY_INVALID;
it is the gateway's credential that is wrong, so it becomes 401. `retry_delay` reads the wait a 429
carries in its `RetryInfo` detail. Google's message is kept (the gateway
scrubs configured secrets from it); `details` are dropped (DebugInfo may quote the key).
"""

from __future__ import annotations

from typing import Any

import orjson

STATUS_BY_CODE = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found_error",
    409: "invalid_request_error",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
    504: "upstream_timeout",
}


def classify(status: int, body: bytes) -> tuple[int, dict[str, object]]:
    """The caller-facing status and OpenAI error object for a Google error answer."""
    error = _google_error(body)
    if error is None:
        text = body.decode("utf-8", "replace").strip()
        message = text[:1000] if text and not text.startswith("<") else f"Google API returned HTTP {status}"
        return status, {"message": message, "type": _type(status), "code": None, "param": None}
    return openai_error(error, status)


def openai_error(error: dict[str, Any], status: int) -> tuple[int, dict[str, object]]:
    """(status, OpenAI error object) for the inner `error` object of a Google error."""
    code = error.get("status")
    mapped = STATUS_BY_CODE.get(code, status) if isinstance(code, str) else status
    if mapped < 400:
        mapped = 502  # an error event inside a 200 stream with no usable status
    reason = _reason(error.get("details"))
    if reason == "API_KEY_INVALID":
        mapped = 401
    message = error.get("message")
    ident = reason or code
    return mapped, {
        "message": message if isinstance(message, str) and message else f"Google API returned HTTP {mapped}",
        "type": _type(mapped),
        "code": ident.lower() if isinstance(ident, str) and ident else None,
        "param": None,
    }


def retry_delay(body: bytes) -> str | None:
    """Seconds to wait (a Retry-After value) from a Google error's `RetryInfo` detail (`"retryDelay": "37s"`)."""
    error = _google_error(body)
    details = error.get("details") if error is not None else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay[:-1])
            except ValueError:
                continue
            if 0 <= seconds < 86400:
                return f"{seconds:g}"
    return None


def _google_error(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def _reason(details: object) -> str | None:
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
            return str(detail["reason"])
    return None


def _type(status: int) -> str:
    return TYPE_BY_STATUS.get(status, "upstream_error" if status >= 500 else "invalid_request_error")
