"""OpenAI SSE bytes as the test reads them: the `data:` payloads, each event checked for exact framing."""

from __future__ import annotations

from typing import Any

import orjson


def sse_events(data: bytes) -> list[Any]:
    """The payloads of OpenAI SSE bytes ("[DONE]" kept as a string).

    Asserts every event is exactly `data: <compact JSON or [DONE]>\\n\\n`, as the translators write them.
    """
    assert data.endswith(b"\n\n") or data == b"", data[-40:]
    events: list[Any] = []
    for block in data.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: ") and b"\n" not in block, block
        payload = block[6:]
        events.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    rebuilt = b"".join(b"data: " + (b"[DONE]" if e == "[DONE]" else orjson.dumps(e)) + b"\n\n" for e in events)
    assert rebuilt == data
    return events
