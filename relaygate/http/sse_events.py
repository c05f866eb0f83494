"""`SSEBuffer`: a server-sent-event byte stream cut into whole events, whatever the upstream's chunking.

Upstream bytes arrive in any split. An event ends at a blank line; `\\r\\n` line ends are normalised to
`\\n` first (a `\\r` kept from one chunk meets its `\\n` in the next). The pass-through filters
(`sse.StreamFilter`, `sse_messages.MessagesStreamFilter`) subclass the buffer and relay the whole events
as bytes (`take`: one method call and one `rfind` per chunk, no parsing, so the OpenAI pass-through
path stays as cheap as the inline split it replaced); the translators read them one by one
(`take_events`).
"""

from __future__ import annotations


class SSEBuffer:
    """Holds the partial event at the end of what has arrived until its blank line comes."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def take(self, chunk: bytes) -> bytes:
        """The whole events `chunk` completes, as bytes ending in their blank line (b"" while partial)."""
        data = self._rest + chunk if self._rest else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        cut = data.rfind(b"\n\n")
        if cut == -1:
            self._rest = data
            return b""
        self._rest = data[cut + 2:]
        return data[: cut + 2]

    def take_events(self, chunk: bytes) -> list[bytes]:
        """The whole events `chunk` completes, one item each without its blank line ([] while partial)."""
        complete = self.take(chunk)
        return complete[:-2].split(b"\n\n") if complete else []

    def take_rest(self) -> bytes:
        """What is left without a closing blank line (at the end of the stream); the buffer is emptied."""
        rest, self._rest = self._rest, b""
        return rest
