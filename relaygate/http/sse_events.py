"""`SSEBuffer`: a server-sent-event byte stream cut into whole events, whatever the upstream's chunking.

Upstream bytes arrive in any split. An event ends at a blank line; `\\r\\n` line ends are normalised to
`\\n` first (a `\\r` kept from one chunk meets its `\\n` in the next). The dialects' pass-through filters
(`dialects.openai.stream.StreamFilter`, `dialects.anthropic_messages.stream.MessagesStreamFilter`)
subclass the buffer and relay the whole events as bytes (`take`: one method call and one `rfind` per
chunk, no parsing, so the OpenAI pass-through path stays as cheap as the inline split it replaced); the
translators read them one by one (`take_events`).

Every upstream stream the gateway splits goes through one of these buffers, so the SSE line cap
(`max_sse_line_bytes`) is enforced here: an event (or a line of one) longer than the cap raises a 502
as soon as it is known to be longer, so the buffer never holds much more than the cap. Whole events
that arrived before it are handed out first; the error is then raised by the next call. The check is a
length comparison per chunk; events are measured one by one only when a chunk brings more than the cap.
"""

from __future__ import annotations

from relaygate.errors import BadGateway

DEFAULT_MAX_EVENT_BYTES = 1 << 20


def event_too_long(limit: int) -> BadGateway:
    """The error that ends a stream whose event (or line) is longer than `limit` bytes."""
    return BadGateway(
        f"the upstream sent a stream event line longer than {limit} bytes, the gateway's cap (max_sse_line_bytes)",
        code="sse_line_too_long",
    )


def _first_long_event(data: bytes, limit: int) -> int:
    """Where the first event of `data` longer than `limit` starts (its blank line excluded); -1 if none is."""
    start = 0
    while (end := data.find(b"\n\n", start)) != -1:
        if end - start > limit:
            return start
        start = end + 2
    return start if len(data) - start > limit else -1


class SSEBuffer:
    """Holds the partial event at the end of what has arrived until its blank line comes."""

    __slots__ = ("_rest", "_max", "_overflow")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._rest = b""
        self._max = max_event_bytes
        self._overflow = False  # an over-long event was dropped: every later call raises

    def take(self, chunk: bytes) -> bytes:
        """The whole events `chunk` completes, as bytes ending in their blank line (b"" while partial).

        Raises a 502 (`event_too_long`) when an event is longer than the cap.
        """
        if self._overflow:
            raise event_too_long(self._max)
        data = self._rest + chunk if self._rest else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        if len(data) > self._max and (long := _first_long_event(data, self._max)) != -1:
            self._rest = b""
            self._overflow = True
            if long == 0:
                raise event_too_long(self._max)
            return data[:long]  # the whole events before it
        cut = data.rfind(b"\n\n")
        if cut == -1:
            self._rest = data
            return b""
        self._rest = data[cut + 2 :]
        return data[: cut + 2]

    def take_events(self, chunk: bytes) -> list[bytes]:
        """The whole events `chunk` completes, one item each without its blank line ([] while partial)."""
        complete = self.take(chunk)
        return complete[:-2].split(b"\n\n") if complete else []

    def take_rest(self) -> bytes:
        """What is left without a closing blank line (at the end of the stream); the buffer is emptied."""
        if self._overflow:
            raise event_too_long(self._max)
        rest, self._rest = self._rest, b""
        return rest
