"""Anthropic Messages event streams relayed event by event, with usage and error events read on the way.

The counterpart of `dialects.openai.stream.StreamFilter` for the Messages API. Anthropic streams carry usage in
`message_start` (`message.usage`) and `message_delta` (`usage`, cumulative); both are read into the
request's `Usage` (input = uncached + cache reads + cache writes, as the OpenAI path counts it, with
the cache counts kept apart too), and nothing is withheld (Anthropic clients always get usage). Only
events whose bytes mention `usage` or `error` are parsed; content deltas pass through untouched.
"""

from __future__ import annotations

import orjson

from relaygate.context import Usage
from relaygate.dialects.anthropic_messages.usage import read_messages_usage
from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES, SSEBuffer

_PREAMBLE_TYPES = (b"message_start", b"ping", b"content_block_start")


def _event_data(event: bytes) -> bytes | None:
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None


class MessagesStreamFilter(SSEBuffer):
    """Splits an Anthropic SSE byte stream into whole events, recording usage and error events."""

    __slots__ = ("_seen", "usage", "error")

    def __init__(self, usage: Usage, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self._seen: dict[str, int] = {}
        self.usage = usage
        self.error: dict[str, object] | None = None  # an error event seen mid-stream

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to send on for this upstream chunk (whole events only; a partial event waits)."""
        complete = self.take(chunk)
        if not complete:
            return b""
        if b'"usage"' in complete or b"error" in complete:
            self._inspect(complete)
        return complete

    def flush(self) -> bytes:
        """Whatever the upstream left without a closing blank line."""
        rest = self.take_rest()
        if rest.strip():
            rest += b"\n\n"
            self._inspect(rest)
            return rest
        return b""

    def _inspect(self, complete: bytes) -> None:
        for event in complete.split(b"\n\n"):
            if b'"usage"' not in event and b"error" not in event:
                continue
            data = _event_data(event)
            if not data:
                continue
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(payload, dict):
                continue
            kind = payload.get("type")
            if kind == "message_start" and isinstance(payload.get("message"), dict):
                read_messages_usage(payload["message"].get("usage"), self.usage, self._seen)
            elif kind == "message_delta":
                read_messages_usage(payload.get("usage"), self.usage, self._seen)
            elif kind == "error" or (kind is None and payload.get("error")):
                error = payload.get("error")
                self.error = error if isinstance(error, dict) else {"message": str(error)}


def messages_first_verdict(out: bytes) -> str | None:
    """What the first event of `out` past the preamble is ("content" or "error"); None when all are preamble.

    Preamble (held back, so an attempt that fails right after it can still be fallen back from):
    `message_start`, `ping` and `content_block_start`. Anything else is content, an error event excepted.
    """
    for event in out.split(b"\n\n"):
        data = _event_data(event)
        if data is None:
            continue
        kind = _type_of(data)
        if kind in _PREAMBLE_TYPES:
            continue
        return "error" if kind == b"error" else "content"
    return None


def _type_of(data: bytes) -> bytes | None:
    """The event's `type` (only the first events of a stream are judged, so parsing them costs little)."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    kind = payload.get("type") if isinstance(payload, dict) else None
    return kind.encode() if isinstance(kind, str) else None
