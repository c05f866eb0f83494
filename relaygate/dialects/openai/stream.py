"""Server-sent events relayed chunk by chunk, with the usage chunk read and (when unasked) withheld.

The gateway always asks upstreams for usage (`stream_options.include_usage`) so tokens and cost are
exact; the caller sees the usage chunk only if it asked. Events are split on blank lines; bytes of
events that carry no usage object pass through untouched (no JSON parse on the common path).
"""

from __future__ import annotations

import orjson

from relaygate.context import Usage
from relaygate.dialects.openai.usage import read_usage
from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES, SSEBuffer

_USAGE_KEY = b'"usage"'
_WHITESPACE = b" \t\r\n"


def has_usage_object(data: bytes) -> bool:
    """True when `"usage"` is followed by an object (not `null`) somewhere in the bytes."""
    start = data.find(_USAGE_KEY)
    while start != -1:
        i = start + len(_USAGE_KEY)
        n = len(data)
        while i < n and data[i] in _WHITESPACE:
            i += 1
        if i < n and data[i] == 58:  # ':'
            i += 1
            while i < n and data[i] in _WHITESPACE:
                i += 1
            if i < n and data[i] == 123:  # '{'
                return True
        start = data.find(_USAGE_KEY, start + 1)
    return False


class StreamFilter(SSEBuffer):
    """Splits an SSE byte stream into whole events, records usage and drops the unasked usage chunk."""

    __slots__ = ("_wants_usage", "usage", "error")

    def __init__(self, wants_usage: bool, usage: Usage, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self._wants_usage = wants_usage
        self.usage = usage
        self.error: dict[str, object] | None = None  # an upstream error event seen mid-stream

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to send on for this upstream chunk (whole events only; a partial event waits)."""
        complete = self.take(chunk)
        if not complete:
            return b""
        if b'"error"' in complete:
            self._find_error(complete)
        if not has_usage_object(complete):
            return complete
        return self._filter_events(complete)

    def _find_error(self, complete: bytes) -> None:
        """Remember an `{"error": ...}` event: the stream failed even though HTTP said 200."""
        for event in complete.split(b"\n\n"):
            for line in event.split(b"\n"):
                if line.startswith(b"data:") and b'"error"' in line:
                    try:
                        payload = orjson.loads(line[5:])
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(payload, dict) and payload.get("error"):
                        error = payload["error"]
                        self.error = error if isinstance(error, dict) else {"message": str(error)}

    def flush(self) -> bytes:
        """Whatever the upstream left without a closing blank line."""
        rest = self.take_rest()
        if rest.strip():
            return self._filter_events(rest + b"\n\n")
        return b""

    def _filter_events(self, complete: bytes) -> bytes:
        kept: list[bytes] = []
        for event in complete.split(b"\n\n"):
            if not event:
                continue
            if has_usage_object(event):
                event = self._usage_event(event)
                if not event:
                    continue
            kept.append(event)
        return b"\n\n".join(kept) + b"\n\n" if kept else b""

    def _usage_event(self, event: bytes) -> bytes:
        """Record the usage; return the event to send, or b"" to withhold it."""
        lines = event.split(b"\n")
        for index, line in enumerate(lines):
            if not line.startswith(b"data:"):
                continue
            try:
                payload = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return event
            if not isinstance(payload, dict):
                return event
            read_usage(payload.get("usage"), self.usage)
            if self._wants_usage:
                return event
            if not payload.get("choices"):
                return b""  # the usage-only chunk the caller did not ask for
            payload.pop("usage", None)
            lines[index] = b"data: " + orjson.dumps(payload)
            return b"\n".join(lines)
        return event


def first_verdict(out: bytes) -> str | None:
    """What the first event of `out` that is not preamble is ("content" or "error"); None when all are."""
    for event in out.split(b"\n\n"):
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if _is_preamble(data):
                continue
            return "error" if data.startswith(b"{") and b'"error"' in data and _is_error(data) else "content"
    return None


def _is_error(data: bytes) -> bool:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(payload, dict) and bool(payload.get("error"))


def _is_preamble(data: bytes) -> bool:
    """A chunk that carries no content: no text, no tool calls, no finish reason (only role/empty fields)."""
    if not data.startswith(b"{"):
        return False
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(payload, dict) or payload.get("error"):
        return False
    choices = payload.get("choices")
    if not isinstance(choices, list) or payload.get("usage"):
        return False
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("finish_reason") or choice.get("text"):
            return False
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(
            key != "role" and value not in (None, "", [], {}) for key, value in delta.items()
        ):
            return False
    return True
