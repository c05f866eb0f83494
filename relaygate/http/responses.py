"""Sending answers over ASGI: whole bodies and JSON (errors are rendered by each dialect: `relaygate/dialects/`)."""

from __future__ import annotations

import orjson

from relaygate.http.types import RawHeaders, Send

JSON = b"application/json"


async def send_bytes(send: Send, status: int, body: bytes, content_type: bytes, headers: RawHeaders) -> None:
    """One complete response."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, payload: object, headers: RawHeaders) -> None:
    """A JSON response serialised with orjson."""
    await send_bytes(send, status, orjson.dumps(payload), JSON, headers)
