"""A caller's request body on its way upstream: held when small (replayable), streamed when large.

Bodies up to `hold_limit` are read whole, so a pool can replay them to the next endpoint. Larger ones
are streamed as they arrive (never buffered) and can be sent only once. The size limit is enforced
while streaming: passing it aborts the upstream request and the caller gets 413. A caller that leaves
mid-body is noticed by the reader itself (`disconnected`); `receive_after_body` hands `receive` to a
disconnect watcher after the last byte, or tells it of the disconnect the reader saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from relaygate.errors import BadRequest, PayloadTooLarge
from relaygate.http.body import ClientDisconnected
from relaygate.http.headers import header
from relaygate.http.types import Message, Receive, Scope

HOLD_LIMIT = 1 << 20  # 1 MiB


class RequestBody:
    """Reads the body lazily; `payload()` is bytes (held) or an async iterator (streamed once)."""

    def __init__(self, scope: Scope, receive: Receive, limit: int, hold_limit: int = HOLD_LIMIT) -> None:
        self._receive = receive
        self.limit = limit
        self._hold_limit = hold_limit
        self._prefix: list[bytes] = []
        self._more = True
        self.size = 0
        self.held: bytes | None = None
        self.started_streaming = False  # True once a streamed body began to be consumed
        self.too_large = False
        self.disconnected = False  # the caller left before the body was complete
        self._complete: asyncio.Event | None = None  # set at the body's end, for `receive_after_body`
        declared = header(scope, b"content-length")
        self.declared: int | None = None
        if declared is not None:
            try:
                self.declared = int(declared)
            except ValueError:
                raise BadRequest("invalid Content-Length header", code="invalid_content_length")
            if self.declared > limit:
                raise PayloadTooLarge(f"request body of {self.declared} bytes exceeds the limit of {limit} bytes")
        self.chunked = header(scope, b"transfer-encoding") is not None

    async def prepare(self) -> None:
        """Read up to the hold limit; the body is held when it ended by then."""
        if self.declared == 0 or (self.declared is None and not self.chunked):
            self.held = b""
            self._more = False
            return
        while self._more and self.size <= self._hold_limit:
            await self._read_one(self._prefix)
        if not self._more:
            self.held = b"".join(self._prefix)
            self._prefix = []

    async def _read_one(self, into: list[bytes]) -> None:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
            if self._complete is not None:
                self._complete.set()
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            self.size += len(chunk)
            if self.size > self.limit:
                self.too_large = True
                raise PayloadTooLarge(f"request body exceeds the limit of {self.limit} bytes")
            into.append(chunk)
        self._more = bool(message.get("more_body", False))
        if not self._more and self._complete is not None:
            self._complete.set()

    @property
    def complete(self) -> bool:
        """The whole body has been read from the caller (so `receive` is free for disconnect watching)."""
        return not self._more

    async def receive_after_body(self) -> Message:
        """`receive` once the whole body has been read (by whoever streams it upstream): until then the
        streaming reader owns `receive`, and a disconnect it sees is passed on from here."""
        if self._more and not self.disconnected:
            if self._complete is None:
                self._complete = asyncio.Event()
            await self._complete.wait()
        if self.disconnected:
            return {"type": "http.disconnect"}
        return await self._receive()

    @property
    def replayable(self) -> bool:
        return self.held is not None or not self.started_streaming

    def payload(self) -> bytes | AsyncIterator[bytes] | None:
        if self.held is not None:
            return self.held or None
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        self.started_streaming = True
        prefix, self._prefix = self._prefix, []
        for chunk in prefix:
            yield chunk
        while self._more:
            pending: list[bytes] = []
            await self._read_one(pending)
            for chunk in pending:
                yield chunk
