"""Errors on the inbound Messages API: any gateway or upstream error as Anthropic's error body.

`{"type": "error", "error": {"type", "message"}, "request_id"}` with the Anthropic error type for the
status (docs "HTTP errors"); an upstream's own message (and code) is kept, and an Anthropic upstream's
body keeps its own type. Sent as a whole answer (`send_error`) or as the `event: error` that ends a
stream failing after content (`error_event`).
"""

from __future__ import annotations

import orjson

from relaygate.errors import GatewayError, UpstreamError
from relaygate.http.responses import JSON as JSON_TYPE
from relaygate.http.responses import send_bytes
from relaygate.http.types import RawHeaders, Send
from relaygate.wire_types import JSON

OVERLOADED = 529  # Anthropic's "overloaded_error" status

# Anthropic error types by HTTP status (docs "HTTP errors"; 504 is the SDK's GatewayTimeoutError).
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ANTHROPIC_ERROR_TYPES = frozenset(_TYPE_BY_STATUS.values()) | {"api_error"}
# Gateway and OpenAI error types that name a kind of failure regardless of status.
_TYPE_BY_OPENAI_TYPE = {
    "permission_denied": "permission_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "server_error": "api_error",
    "internal_error": "api_error",
    "upstream_error": "api_error",
    "service_unavailable": "overloaded_error",
    "upstream_timeout": "timeout_error",
    "request_timeout": "timeout_error",
}


def error_type_for(status: int | None, openai_type: object = None) -> str:
    """The Anthropic error type for an HTTP status; the OpenAI/gateway type decides only where status cannot."""
    if status is not None and status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    if isinstance(openai_type, str):
        if openai_type in ANTHROPIC_ERROR_TYPES:
            return openai_type
        mapped = _TYPE_BY_OPENAI_TYPE.get(openai_type)
        if mapped is not None:
            return mapped
    return "invalid_request_error" if status is not None and 400 <= status < 500 else "api_error"


def error_object(status: int | None, error: object, *, native: bool = False) -> JSON:
    """An Anthropic error object from an OpenAI error object; `native` (already Anthropic's) keeps its type."""
    if not isinstance(error, dict):
        return {"type": error_type_for(status), "message": str(error) if error else f"HTTP {status}"}
    message = error.get("message")
    kind = error.get("type")
    result: JSON = {
        "type": kind if native and isinstance(kind, str) else error_type_for(status, kind),
        "message": message if isinstance(message, str) else f"HTTP {status}",
    }
    code = error.get("code")
    if code is not None:
        result["code"] = code
    return result


def error_envelope(error: JSON, request_id: str | None = None) -> bytes:
    """The Anthropic error body around an error object."""
    body: JSON = {"type": "error", "error": error}
    if request_id:
        body["request_id"] = request_id
    return orjson.dumps(body)


def messages_error_from_gateway(error: GatewayError, request_id: str | None = None) -> bytes:
    """An Anthropic error body for any gateway error, same status; upstream bodies keep their own text."""
    if isinstance(error, UpstreamError):
        try:
            parsed = orjson.loads(error.raw_body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            native = parsed.get("type") == "error"
            return error_envelope(error_object(error.status, parsed["error"], native=native), request_id)
    found: JSON = {"type": error_type_for(error.status, error.type), "message": error.message}
    if error.code is not None:
        found["code"] = error.code
    return error_envelope(found, request_id)


def error_event(error: GatewayError) -> bytes:
    """The `event: error` that ends a stream failing after content (no `message_stop` follows)."""
    return b"event: error\ndata: " + messages_error_from_gateway(error) + b"\n\n"


async def send_error(send: Send, error: GatewayError, headers: RawHeaders) -> None:
    """An Anthropic-shaped error (`{"type": "error", "error": {...}}`), same status and extra headers.

    An Anthropic `overloaded_error` (routed as a 503, or a 502 when it came as a stream's first event) is
    answered with Anthropic's own 529, the status the caller's SDK knows it by (`OverloadedError`). The
    request id goes in `request-id` too, where Anthropic's SDKs read it (`error.request_id`).
    """
    request_id = next((v.decode("latin-1") for k, v in headers if k == b"x-request-id"), None)
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    if request_id is not None and not any(k == b"request-id" for k, _ in headers):
        extra.append((b"request-id", request_id.encode("latin-1")))
    status = error.status
    if isinstance(error, UpstreamError) and status in (502, 503) and _upstream_error_type(error) == "overloaded_error":
        status = OVERLOADED
    await send_bytes(send, status, messages_error_from_gateway(error, request_id), JSON_TYPE, [*headers, *extra])


def _upstream_error_type(error: UpstreamError) -> object:
    """The `error.type` of the upstream's own body (None when it has none)."""
    try:
        parsed = orjson.loads(error.raw_body)
    except orjson.JSONDecodeError:
        return None
    found = parsed.get("error") if isinstance(parsed, dict) else None
    return found.get("type") if isinstance(found, dict) else None
