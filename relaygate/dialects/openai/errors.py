"""Errors in OpenAI's shape: a whole error answer, or the event that ends a stream failing after content.

Every route that is not the Messages API (the custom-endpoint proxy and the resource routes too)
renders its errors this way.
"""

from __future__ import annotations

from relaygate.errors import GatewayError
from relaygate.http.responses import JSON, send_bytes
from relaygate.http.types import RawHeaders, Send


async def send_error(send: Send, error: GatewayError, headers: RawHeaders) -> None:
    """An OpenAI-shaped error with the error's own extra headers (e.g. `retry-after`)."""
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send_bytes(send, error.status, error.body(), JSON, [*headers, *extra])


def error_event(error: GatewayError) -> bytes:
    """The `data: {"error": ...}` event that ends a stream failing after content (no `[DONE]` follows)."""
    return b"data: " + error.body() + b"\n\n"
