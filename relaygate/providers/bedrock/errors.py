"""Bedrock errors -> (caller status, OpenAI error object), for HTTP answers and stream exception events.

Bedrock (rest-json) names the error in the `x-amzn-ErrorType` header (`ThrottlingException:http://...`)
and puts `{"message": ...}` in the body; stream exceptions name it in the `:exception-type` header in
lowerCamel (`throttlingException`). The status says what the router may do with it: throttling 429,
model loading or service down 503, model timeout 504, credentials 401, access 403, bad input 400.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

# AWS error type -> (status for the caller, OpenAI error type).
ERROR_TYPES: dict[str, tuple[int, str]] = {
    "ThrottlingException": (429, "rate_limit_exceeded"),
    "ServiceQuotaExceededException": (429, "rate_limit_exceeded"),
    "ModelNotReadyException": (503, "service_unavailable"),
    "ServiceUnavailableException": (503, "service_unavailable"),
    "ModelTimeoutException": (504, "upstream_timeout"),
    "InternalServerException": (500, "upstream_error"),
    "ModelErrorException": (502, "upstream_error"),
    "ModelStreamErrorException": (502, "upstream_error"),
    "ValidationException": (400, "invalid_request_error"),
    "SerializationException": (400, "invalid_request_error"),
    "AccessDeniedException": (403, "permission_denied"),
    "ResourceNotFoundException": (404, "not_found_error"),
    "UnrecognizedClientException": (401, "authentication_error"),
    "InvalidSignatureException": (401, "authentication_error"),
    "IncompleteSignatureException": (401, "authentication_error"),
    "MissingAuthenticationTokenException": (401, "authentication_error"),
    "ExpiredTokenException": (401, "authentication_error"),
}
# Statuses Bedrock answers with when no error type tells more.
_STATUS_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found_error",
    408: "upstream_timeout",
    424: "upstream_error",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}
_STATUS_MAP = {408: 504, 424: 502}


def error_type_name(raw: str | None) -> str | None:
    """`ThrottlingException` from `ThrottlingException:http://internal...`, `aws#X` or `throttlingException`."""
    if not raw:
        return None
    name = raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return name[:1].upper() + name[1:] if name else None


def mapped_status(error_type: str | None, status: int) -> int:
    """The status the caller (and the router) sees for a Bedrock error."""
    known = ERROR_TYPES.get(error_type or "")
    if known is not None:
        return known[0]
    return _STATUS_MAP.get(status, status)


def _message(raw: bytes, status: int) -> tuple[str, str | None]:
    """(message, `__type` from the body) of a Bedrock error body."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()[:2000]
        return text or f"Bedrock returned HTTP {status}", None
    if not isinstance(parsed, dict):
        return f"Bedrock returned HTTP {status}", None
    message = parsed.get("message", parsed.get("Message"))
    kind = parsed.get("__type")
    return (
        str(message) if message else f"Bedrock returned HTTP {status}",
        str(kind) if isinstance(kind, str) else None,
    )


def classify_error(status: int, raw: bytes, error_type: str | None = None) -> tuple[int, dict[str, object]]:
    """(caller status, OpenAI error object) for a Bedrock error answer; keeps Bedrock's own message."""
    message, body_type = _message(raw, status)
    name = error_type_name(error_type) or error_type_name(body_type)
    final = mapped_status(name, status)
    known = ERROR_TYPES.get(name or "")
    fallback = "upstream_error" if status >= 500 else "invalid_request_error"
    kind = known[1] if known else _STATUS_TYPES.get(status, fallback)
    return final, {"message": message, "type": kind, "code": name, "param": None}


def classifier(error_type: str | None) -> Callable[[int, bytes], tuple[int, dict[str, object]]]:
    """A `Classifier` bound to the `x-amzn-ErrorType` header of one answer."""

    def classify(status: int, raw: bytes) -> tuple[int, dict[str, object]]:
        return classify_error(status, raw, error_type)

    return classify


def stream_exception(exception_type: str | None, payload: bytes) -> tuple[int, dict[str, object]]:
    """(caller status, OpenAI error object) for an `exception` (or `error`) event inside a ConverseStream;
    an exception type this table does not know is an upstream failure (502)."""
    name = error_type_name(exception_type)
    known = ERROR_TYPES.get(name or "")
    return classify_error(known[0] if known else 502, payload, name)
