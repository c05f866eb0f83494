"""Sending answers over ASGI: JSON bodies, errors and the headers every response carries."""

from __future__ import annotations

import orjson

from relaygate.errors import GatewayError
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


async def send_error(send: Send, error: GatewayError, headers: RawHeaders) -> None:
    """An OpenAI-shaped error with the error's own extra headers (e.g. `retry-after`)."""
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send_bytes(send, error.status, error.body(), JSON, [*headers, *extra])
