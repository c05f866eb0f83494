"""`SseReader`: an MCP server's `text/event-stream` answer cut into bounded, parsed events.

An MCP server answers a POST (or a GET) with a stream of events whose `data` is one JSON-RPC message
each: progress notifications and server requests first, the response last. The gateway relays every
event to its own client as it arrives (so it needs the event's bytes), and reads each message (to
find the response, log the tool's `isError`, run post-invoke guardrails), so both are kept: `raw`
to write through, `message` parsed once here.

Cutting reuses `relaygate.http.sse_events.SSEBuffer` (any chunking, `\\r\\n` normalised, an event
longer than the cap refused as soon as it is known to be). An event made only of comments (`: ping`,
the server's keep-alive) is dropped: it carries nothing, and the gateway sends its own keep-alives
to its client. Anything else that is not a well-formed MCP event raises `MalformedSse`.

`text_events` names event types whose data is text rather than a JSON-RPC message (the legacy
HTTP+SSE transport's `endpoint` event carries a URL): their `message` is None and `data` is kept as sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from relaygate.errors import BadGateway
from relaygate.http.sse_events import SSEBuffer
from relaygate.wire_types import JSON

DEFAULT_MAX_EVENT_BYTES = 4 << 20  # 4 MiB: the official SDK's own cap on one request body


class MalformedSse(ValueError):
    """The stream is not a well-formed MCP event stream; the message never quotes the stream's content."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event: its bytes as received (line ends normalised, ending in the blank line) and its fields."""

    raw: bytes  # write this through to a client unchanged
    data: bytes  # the `data:` lines joined by `\n` (b"" when there were none, e.g. a priming event)
    event: str | None  # the `event:` field (the SDK sends "message")
    id: str | None  # the `id:` field (resumable servers number their events)
    message: JSON | None  # `data` parsed as a JSON-RPC message; None when `data` is empty


def parse_event(block: bytes, text_events: frozenset[str] = frozenset()) -> SseEvent | None:
    """One event's lines (without their closing blank line) parsed; None for a comments-only block."""
    data_lines: list[bytes] = []
    event: str | None = None
    event_id: str | None = None
    has_field = False
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        has_field = True
        if name == b"data":
            data_lines.append(value)
        elif name == b"event":
            event = _text(value, "event")
        elif name == b"id" and b"\0" not in value:
            event_id = _text(value, "id")
        # `retry:` and unknown fields are kept in `raw` only (the SSE spec ignores unknown fields)
    if not has_field:
        return None
    data = b"\n".join(data_lines)
    parsed = _message(data) if data and event not in text_events else None
    return SseEvent(block + b"\n\n", data, event, event_id, parsed)


def _text(value: bytes, field: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedSse(f"an SSE event's {field} field is not UTF-8") from None


def _message(data: bytes) -> JSON:
    """The JSON-RPC message an event carries (one object: batches were removed in 2025-06-18)."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedSse("an SSE event's data is not JSON") from None
    if not isinstance(message, dict):
        raise MalformedSse("an SSE event's data is not a JSON-RPC message (a JSON object)")
    return message


class SseReader:
    """Feeds on the stream's chunks and hands out whole events; the buffer never holds much more than the cap."""

    __slots__ = ("_buffer", "_max", "_text_events")

    def __init__(
        self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, text_events: frozenset[str] = frozenset()
    ) -> None:
        self._buffer = SSEBuffer(max_event_bytes)
        self._max = max_event_bytes
        self._text_events = text_events

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events `chunk` completes, in order (comment-only events left out)."""
        try:
            blocks = self._buffer.take_events(chunk)
        except BadGateway:
            raise MalformedSse(f"an SSE event is longer than {self._max} bytes") from None
        events: list[SseEvent] = []
        for block in blocks:
            parsed = parse_event(block, self._text_events)
            if parsed is not None:
                events.append(parsed)
        return events

    def finish(self) -> None:
        """At the end of the stream: an event left without its closing blank line means it was cut."""
        try:
            rest = self._buffer.take_rest()
        except BadGateway:
            raise MalformedSse(f"an SSE event is longer than {self._max} bytes") from None
        if rest.strip():
            raise MalformedSse("the SSE stream ended in the middle of an event")
