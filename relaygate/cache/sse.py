"""Server-sent events as the OpenAI and Anthropic APIs frame them: read one recorded event, write one.

A recorded event is one whole event's bytes as relayed to the caller (`data: {...}\\n\\n`, or
`event: name\\ndata: {...}\\n\\n`). Reading follows the SSE rules that matter here: `\\r\\n` or `\\n`
line ends, several `data:` lines joined by `\\n`, one optional space after the colon, comment lines
(`: keep-alive`) ignored.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

DONE_DATA = b"[DONE]"
DONE_EVENT = b"data: [DONE]\n\n"


class SseEvent(NamedTuple):
    """One parsed event: its `event:` name (None when absent) and its joined `data:` (None when absent)."""

    name: str | None
    data: bytes | None


def parse_event(raw: bytes) -> SseEvent:
    """Split one recorded event into its name and data."""
    name: str | None = None
    data: list[bytes] = []
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    return SseEvent(name, b"\n".join(data) if data else None)


def is_done(raw: bytes) -> bool:
    """Whether this is OpenAI's terminal `data: [DONE]` event."""
    return parse_event(raw).data == DONE_DATA


def data_event(payload: Any) -> bytes:
    """An OpenAI-style event: `data: <json>` and a blank line."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def named_event(name: str, payload: Any) -> bytes:
    """An Anthropic-style event: `event: <name>`, `data: <json>` and a blank line."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
