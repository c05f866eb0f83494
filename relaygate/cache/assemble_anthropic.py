"""The non-streaming Anthropic Messages answer a recorded stream stands for.

`message_start` gives the message (id, model, input-side usage); each content block is rebuilt
from its `content_block_start` plus deltas: `text_delta` appends text, `input_json_delta` pieces
are joined and parsed into `input` at the block's stop, `thinking_delta`/`signature_delta` build a
thinking block with its signature, `citations_delta` appends a citation. `message_delta` brings
`stop_reason`, `stop_sequence` and usage: its counts are cumulative, so each one present replaces
message_start's (in practice output_tokens; input tokens come from message_start unless the delta
repeats them), as the Anthropic SDK accumulates. Complete only at `message_stop` with no
`error` event and every tool input parseable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from relaygate.cache.merge import copy_json
from relaygate.cache.sse import parse_event

_APPENDED = {"text_delta": "text", "thinking_delta": "thinking"}  # delta type -> the block field it extends


class _Incomplete(Exception):
    """The recording cannot stand for a complete answer."""


class _Assembly:
    """The message and its blocks being rebuilt."""

    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial_json: dict[int, list[str]] = {}

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if not isinstance(message, dict):
                raise _Incomplete
            self.message = copy_json(message)
        elif kind == "content_block_start":
            block = event.get("content_block")
            if not isinstance(block, dict):
                raise _Incomplete
            self.blocks[event.get("index", len(self.blocks))] = copy_json(block)
        elif kind == "content_block_delta":
            self._delta(event.get("index"), event.get("delta"))
        elif kind == "content_block_stop":
            self._stop(event.get("index"))
        elif kind == "message_delta":
            self._message_delta(event)
        elif kind == "error":
            raise _Incomplete

    def _delta(self, index: Any, delta: Any) -> None:
        block = self.blocks.get(index)
        if block is None or not isinstance(delta, dict):
            raise _Incomplete
        kind = delta.get("type")
        if kind in _APPENDED:
            field = _APPENDED[kind]
            block[field] = (block.get(field) or "") + str(delta.get(field) or "")
        elif kind == "signature_delta":  # sent whole, once, at the end of a thinking block
            block["signature"] = delta.get("signature")
        elif kind == "input_json_delta":
            self.partial_json.setdefault(index, []).append(str(delta.get("partial_json") or ""))
        elif kind == "citations_delta":
            citations = block.get("citations")
            if not isinstance(citations, list):
                citations = block["citations"] = []
            citations.append(copy_json(delta.get("citation")))

    def _stop(self, index: Any) -> None:
        pieces = self.partial_json.pop(index, None)
        if pieces is None or index not in self.blocks:
            return
        text = "".join(pieces)
        if text:
            try:
                self.blocks[index]["input"] = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise _Incomplete from None

    def _message_delta(self, event: dict[str, Any]) -> None:
        if self.message is None:
            raise _Incomplete
        delta = event.get("delta")
        if isinstance(delta, dict):
            self.message.update(copy_json(delta))
        usage = event.get("usage")
        if isinstance(usage, dict):
            merged = self.message.get("usage")
            if not isinstance(merged, dict):
                merged = self.message["usage"] = {}
            # Cumulative totals: a value here replaces message_start's; one omitted or null leaves it.
            merged.update((name, copy_json(value)) for name, value in usage.items() if value is not None)

    def result(self) -> dict[str, Any]:
        if self.message is None or self.partial_json:
            raise _Incomplete
        self.message["content"] = [self.blocks[i] for i in sorted(self.blocks)]
        return self.message


def assemble_anthropic(events: Sequence[bytes]) -> bytes | None:
    """The JSON a non-streaming call would have returned; None unless the stream reached `message_stop` cleanly."""
    assembly = _Assembly()
    try:
        for raw in events:
            event = parse_event(raw)
            if event.name == "error":
                return None
            if event.data is None:
                continue
            try:
                payload = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                return None
            if not isinstance(payload, dict):
                return None
            if payload.get("type") == "message_stop":
                return orjson.dumps(assembly.result())
            assembly.add(payload)
    except _Incomplete:
        return None
    return None
