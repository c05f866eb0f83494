"""What a legacy SSE connection hands one reader: an `Inbox` of messages, read as an `SseEventStream`.

On the legacy HTTP+SSE transport every answer of a session arrives on one shared stream, so the
connection sorts them (`legacy_connection.py`) into inboxes: one per request in flight (its progress
notifications, then its response) and one for the session's GET stream (everything else the server
sends on its own). The pipeline relays an answer event by event whatever the transport, so an inbox is
read through `LegacyEventStream`, an `SseEventStream` with the same contract as a Streamable HTTP
answer: events in arrival order, a `BackendError` when the server breaks or stays silent for its
inactivity timeout, `aclose()` to leave early.

Inboxes are bounded: a reader that falls more than `MAX_INBOX_MESSAGES` notifications behind loses the
newest ones (counted in `dropped`); a response is never dropped (it has its own slot).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import orjson

from relaygate.mcp.sse_reader import SseEvent
from relaygate.mcp.upstream import BackendError, SseEventStream
from relaygate.wire_types import JSON

MAX_INBOX_MESSAGES = 256


class Inbox:
    """Messages for one reader, its final answer, or why it ends (see the module docstring)."""

    __slots__ = ("_messages", "_final", "_error", "_ended", "_wake", "dropped")

    def __init__(self) -> None:
        self._messages: deque[JSON] = deque()
        self._final: JSON | None = None
        self._error: BackendError | None = None
        self._ended = False
        self._wake = asyncio.Event()
        self.dropped = 0

    def put(self, message: JSON) -> bool:
        """Queue a message; False (and counted) when the reader is gone or too far behind."""
        if self._ended or self._final is not None or len(self._messages) >= MAX_INBOX_MESSAGES:
            self.dropped += 1
            return False
        self._messages.append(message)
        self._wake.set()
        return True

    def answer(self, message: JSON) -> None:
        """The response: read after the messages queued before it, and the last thing read."""
        if not self._ended:
            self._final = message
            self._wake.set()

    def fail(self, error: BackendError) -> None:
        """End the inbox with `error` (raised once the messages already queued are read)."""
        if not self._ended and self._final is None and self._error is None:
            self._error = error
            self._wake.set()

    def end(self) -> None:
        """End the inbox cleanly (a GET stream whose connection closed)."""
        self._ended = True
        self._wake.set()

    async def next(self, timeout_s: float | None) -> JSON | None:
        """The next message, None at the end; raises the failure, or a timeout after `timeout_s` of silence."""
        while True:
            if self._messages:
                return self._messages.popleft()
            if self._final is not None:
                final, self._final = self._final, None
                self._ended = True
                return final
            if self._error is not None:
                self._ended = True
                raise self._error
            if self._ended:
                return None
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._wake.wait()
            except TimeoutError:
                self._ended = True
                raise BackendError(None, "the MCP server sent nothing for too long while answering", kind="timeout")


def message_event(message: JSON) -> SseEvent:
    """A message as the event the gateway relays (`event: message`, one `data:` line)."""
    data = orjson.dumps(message)
    return SseEvent(b"event: message\ndata: " + data + b"\n\n", data, "message", None, message)


class LegacyEventStream(SseEventStream):
    """An inbox read as an `SseEventStream` (the type the pipeline relays); `on_close` runs once at its end.

    It holds no HTTP response of its own (the connection's stream is shared), so it overrides every
    way `SseEventStream` is read or closed.
    """

    __slots__ = ("_inbox", "_timeout_s", "_on_close", "_released")

    def __init__(self, inbox: Inbox, timeout_s: float | None, on_close: Callable[[], None]) -> None:
        self._inbox = inbox
        self._timeout_s = timeout_s
        self._on_close = on_close
        self._released = False

    async def __anext__(self) -> SseEvent:
        if self._released:
            raise StopAsyncIteration
        try:
            message = await self._inbox.next(self._timeout_s)
        except BackendError:
            self._release()
            raise
        if message is None:
            self._release()
            raise StopAsyncIteration
        return message_event(message)

    async def aclose(self) -> None:
        """Stop reading (idempotent): the connection forgets this reader."""
        self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._inbox.end()
            self._on_close()
