"""HTTP/1.1 framing for the mock upstream: request parsing, response heads, small responses, JSON."""

from __future__ import annotations

from typing import Any

try:
    import orjson

    def loads(data: bytes) -> Any:
        """Parse JSON."""
        return orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is a relaygate dependency
    import json

    def loads(data: bytes) -> Any:
        """Parse JSON."""
        return json.loads(data)

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return json.dumps(obj, separators=(",", ":")).encode()


MAX_HEADER = 64 * 1024
MAX_BODY = 16 * 1024 * 1024

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """An HTTP/1.1 status line plus headers."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def simple_response(status: int, body: bytes, ctype: str = "application/json") -> bytes:
    """A complete small response with Content-Length."""
    return response_head(status, [("content-type", ctype), ("content-length", str(len(body)))]) + body


def error_json(status: int, message: str) -> bytes:
    """An OpenAI-shaped error response."""
    body = dumps({"error": {"message": message, "type": "invalid_request_error", "code": None}})
    return simple_response(status, body)


class Request:
    """One parsed request: method, target, whether to keep the connection, body."""

    __slots__ = ("method", "target", "keep_alive", "body")

    def __init__(self, method: bytes, target: bytes, keep_alive: bool, body: bytes) -> None:
        self.method = method
        self.target = target
        self.keep_alive = keep_alive
        self.body = body


class ParseError(Exception):
    """The bytes are not an HTTP/1.1 request we can answer."""


def _dechunk(buf: bytes | bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body from `start`; (body, end offset) or None when incomplete."""
    parts: list[bytes] = []
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ParseError("bad chunk size") from exc
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)  # trailers (usually none) end with an empty line
            if end < 0:
                return None
            return b"".join(parts), end + 4
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


def parse_request(buf: bytearray) -> tuple[Request, int] | None:
    """Parse one request from the front of `buf`; (request, bytes used) or None when incomplete."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buf) > MAX_HEADER:
            raise ParseError("header too large")
        return None
    head = bytes(buf[:head_end])
    first, _, rest = head.partition(b"\r\n")
    try:
        method, target, version = first.split(b" ", 2)
    except ValueError as exc:
        raise ParseError("bad request line") from exc
    keep_alive = version == b"HTTP/1.1"
    length = 0
    chunked = False
    if rest:
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                if token == b"close":
                    keep_alive = False
                elif token == b"keep-alive":
                    keep_alive = True
    body_start = head_end + 4
    if chunked:
        decoded = _dechunk(buf, body_start)
        if decoded is None:
            return None
        body, end = decoded
        return Request(method, target, keep_alive, body), end
    if length > MAX_BODY:
        raise ParseError("body too large")
    end = body_start + length
    if len(buf) < end:
        return None
    return Request(method, target, keep_alive, bytes(buf[body_start:end])), end
