"""Reading a request body once, with the size limit enforced while it arrives."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.errors import BadRequest, PayloadTooLarge
from relaygate.http.headers import header
from relaygate.http.types import Receive, Scope


class ClientDisconnected(Exception):
    """The caller went away before its request body was complete."""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, or 413 as soon as it passes `limit` (declared or actual)."""
    declared = header(scope, b"content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("invalid Content-Length header", code="invalid_content_length")
        if size > limit:
            raise PayloadTooLarge(f"request body of {size} bytes exceeds the limit of {limit} bytes")
    first = b""
    chunks: list[bytes] | None = None
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            if not first and chunks is None:
                first = chunk
            else:
                if chunks is None:
                    chunks = [first]
                chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if chunks is not None else first


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON request body that must be an object, parsed once (400 `invalid_json` otherwise)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("request body must be valid JSON", code="invalid_json")
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return payload
