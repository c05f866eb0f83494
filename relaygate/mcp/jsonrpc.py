"""JSON-RPC 2.0 as MCP uses it: one parse of a POST body, the message kinds, and error bodies.

The body is parsed once with orjson; each message keeps the parsed object as sent (`body`), so a
handler that forwards it upstream re-serialises the same dict rather than parsing again.

MCP narrows JSON-RPC 2.0 in two ways this module enforces: a request id is a string or an integer
(never null, never fractional), and `params`, when present, is an object. Batches (a JSON array)
exist only in protocol version 2025-03-26 (2025-06-18 removed them): the caller says whether one is
acceptable (`relaygate.mcp.protocol.batches_allowed`), and a batch holds at most `MAX_BATCH_MESSAGES`.
An invalid member fails the whole batch rather than getting its own error: batching is a legacy path,
and one answer is simpler to reason about than a partial one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HEADER_MISMATCH = -32020  # MCP 2026-07-28: an Mcp-* header disagrees with the body, or is missing
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021  # MCP 2026-07-28
UNSUPPORTED_PROTOCOL_VERSION = -32022  # MCP 2026-07-28: data = {supported: [...], requested}

RequestId = str | int
MAX_BATCH_MESSAGES = 100  # a bigger batch is refused (-32600) before any of it is served


class MessageKind(enum.Enum):
    """What a JSON-RPC message is, which decides how the transport answers it (202 or a response)."""

    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class JsonRpcMessage:
    """One classified message; `body` is the parsed object itself, forwarded as is."""

    kind: MessageKind
    body: Mapping[str, Any]
    id: RequestId | None  # None for a notification, and for an error response that could not name one
    method: str | None  # None for a response

    @property
    def params(self) -> Mapping[str, Any]:
        """The request's params object, or an empty one (absent params are allowed)."""
        params = self.body.get("params")
        return params if isinstance(params, Mapping) else {}


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """A POST body: its messages in order, and whether they came as a batch (the answer's shape)."""

    messages: tuple[JsonRpcMessage, ...]
    batch: bool


class InvalidMessage(Exception):
    """A body that is not acceptable JSON-RPC; the handler answers `error_response` with `status`.

    `request_id` is the offending message's id when it could be read, so the error names it (else
    the error carries a null id, as JSON-RPC 2.0 asks).
    """

    def __init__(self, code: int, message: str, *, request_id: RequestId | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.status = status

    def body(self) -> bytes:
        """The JSON-RPC error response for this refusal."""
        return error_response(self.request_id, self.code, self.message)


def parse_body(raw: bytes, *, max_bytes: int, allow_batch: bool, max_batch: int = MAX_BATCH_MESSAGES) -> ParsedBody:
    """Parse and classify a POST body: one message, or a batch of at most `max_batch` when `allow_batch`.

    Raises `InvalidMessage`: 413 over `max_bytes` (checked before parsing), -32700 for bytes that are
    not JSON, -32600 for anything JSON-RPC or MCP does not allow.
    """
    if len(raw) > max_bytes:
        raise InvalidMessage(INVALID_REQUEST, f"message larger than {max_bytes} bytes", status=413)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidMessage(PARSE_ERROR, "Parse error: the body is not JSON")
    if isinstance(value, dict):
        return ParsedBody((classify(value),), batch=False)
    if isinstance(value, list):
        if not allow_batch:
            raise InvalidMessage(INVALID_REQUEST, "batches are not supported in this protocol version")
        if not value:
            raise InvalidMessage(INVALID_REQUEST, "an empty batch is not a JSON-RPC message")
        if len(value) > max_batch:
            raise InvalidMessage(INVALID_REQUEST, f"a batch holds at most {max_batch} messages")
        return ParsedBody(tuple(classify(item) for item in value), batch=True)
    raise InvalidMessage(INVALID_REQUEST, "a JSON-RPC message is a JSON object")


def classify(value: object) -> JsonRpcMessage:
    """Check one parsed message against JSON-RPC 2.0 (as MCP narrows it) and say what it is."""
    if not isinstance(value, dict):
        raise InvalidMessage(INVALID_REQUEST, "a JSON-RPC message is a JSON object")
    raw_id = value.get("id")
    request_id = raw_id if _is_request_id(raw_id) else None
    if value.get("jsonrpc") != "2.0":
        raise InvalidMessage(INVALID_REQUEST, 'jsonrpc must be "2.0"', request_id=request_id)
    if "method" in value:
        return _request_or_notification(value, request_id)
    if "result" in value or "error" in value:
        return _response(value, request_id)
    raise InvalidMessage(INVALID_REQUEST, "a message needs a method, a result or an error", request_id=request_id)


def _request_or_notification(value: dict[str, Any], request_id: RequestId | None) -> JsonRpcMessage:
    method = value["method"]
    if not isinstance(method, str) or not method:
        raise InvalidMessage(INVALID_REQUEST, "method must be a non-empty string", request_id=request_id)
    if "params" in value and not isinstance(value["params"], dict):
        raise InvalidMessage(INVALID_REQUEST, "params must be an object", request_id=request_id)
    if "id" not in value:
        return JsonRpcMessage(MessageKind.NOTIFICATION, value, None, method)
    if request_id is None:
        raise InvalidMessage(INVALID_REQUEST, "a request id is a string or an integer")
    return JsonRpcMessage(MessageKind.REQUEST, value, request_id, method)


def _response(value: dict[str, Any], request_id: RequestId | None) -> JsonRpcMessage:
    if "result" in value and "error" in value:
        raise InvalidMessage(INVALID_REQUEST, "a response has a result or an error, not both", request_id=request_id)
    if "result" in value:
        if request_id is None:
            raise InvalidMessage(INVALID_REQUEST, "a result needs the id of its request")
        return JsonRpcMessage(MessageKind.RESPONSE, value, request_id, None)
    error = value["error"]
    if not isinstance(error, dict) or not _is_int(error.get("code")) or not isinstance(error.get("message"), str):
        raise InvalidMessage(INVALID_REQUEST, "an error has an integer code and a message", request_id=request_id)
    if request_id is None and value.get("id") is not None:  # an error may carry a null id, nothing else
        raise InvalidMessage(INVALID_REQUEST, "a response id is a string, an integer or null")
    return JsonRpcMessage(MessageKind.RESPONSE, value, request_id, None)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_request_id(value: object) -> bool:
    return isinstance(value, str) or _is_int(value)


def error_response(request_id: RequestId | None, code: int, message: str, data: object = None) -> bytes:
    """A JSON-RPC error response body; `data` is left out when None. Never put a secret in `message`."""
    error: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def result_response(request_id: RequestId, result: object) -> bytes:
    """A JSON-RPC success response body (for the methods the gateway answers itself, such as ping)."""
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def is_response(message: Mapping[str, Any]) -> bool:
    """Whether a parsed message is a response (a result or an error), not a request or notification."""
    return "method" not in message and ("result" in message or "error" in message)
