"""The non-streaming OpenAI answer a recorded chat/completions stream stands for.

Chunks are folded per choice index: chat deltas merge into one message (content, reasoning_content,
refusal, ... concatenated; tool calls merged per tool-call index, their `function.arguments`
concatenated), completions concatenate `text`; `logprobs` merge too and appear when the chunks had
the field. Top-level fields come from the first chunk that has them, usage from the usage chunk.
A stream counts as complete only when it reached `data: [DONE]` without an error event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from relaygate.cache.merge import copy_json, merge_piece
from relaygate.cache.sse import DONE_DATA, parse_event

_HEAD_FIELDS = ("id", "created", "model", "service_tier", "system_fingerprint")
_NO_CONCAT = frozenset({"role"})  # sent whole (some providers repeat it in every delta)


class _Choice:
    """One choice being rebuilt from its deltas."""

    __slots__ = ("index", "fields", "tool_calls", "finish_reason", "has_logprobs", "logprobs")

    def __init__(self, index: int) -> None:
        self.index = index
        self.fields: dict[str, Any] = {}  # chat: the merged message; completions: {"text": ...}
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: Any = None
        self.has_logprobs = False
        self.logprobs: Any = None

    def add_logprobs(self, piece: Any) -> None:
        self.has_logprobs = True
        if isinstance(piece, dict):
            if not isinstance(self.logprobs, dict):
                self.logprobs = {}
            merge_piece(self.logprobs, piece)

    def add_tool_calls(self, pieces: Any) -> None:
        """Merge streamed tool-call fragments by their `index` (position in the delta when absent)."""
        if not isinstance(pieces, list):
            return
        for position, piece in enumerate(pieces):
            if not isinstance(piece, dict):
                continue
            index = piece.get("index", position)
            call = self.tool_calls.get(index)
            if call is None:
                call = self.tool_calls[index] = {
                    "id": None,
                    "type": "function",
                    "function": {"name": "", "arguments": ""},
                }
            if piece.get("id"):
                call["id"] = piece["id"]
            if piece.get("type"):
                call["type"] = piece["type"]
            function = piece.get("function")
            if isinstance(function, dict):
                if function.get("name") and not call["function"]["name"]:
                    call["function"]["name"] = function["name"]
                if isinstance(function.get("arguments"), str):
                    call["function"]["arguments"] += function["arguments"]

    def chat_result(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": self.fields.get("role") or "assistant",
            "content": self.fields.get("content"),
        }
        message.update((k, v) for k, v in self.fields.items() if k not in message)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        result: dict[str, Any] = {"index": self.index, "message": message}
        if self.has_logprobs:
            result["logprobs"] = self.logprobs
        result["finish_reason"] = self.finish_reason
        return result

    def completion_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {"text": self.fields.get("text") or "", "index": self.index}
        if self.has_logprobs:
            result["logprobs"] = self.logprobs
        result["finish_reason"] = self.finish_reason
        return result


class _Assembly:
    """Everything folded from the chunks so far."""

    def __init__(self, chat: bool) -> None:
        self.chat = chat
        self.head: dict[str, Any] = {}
        self.choices: dict[int, _Choice] = {}
        self.usage: Any = None
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> None:
        self.chunks += 1
        for name in _HEAD_FIELDS:
            if self.head.get(name) is None and chunk.get(name) is not None:
                self.head[name] = chunk[name]
        if isinstance(chunk.get("usage"), dict):
            self.usage = copy_json(chunk["usage"])
        for piece in chunk.get("choices") or ():
            if isinstance(piece, dict):
                self._add_choice(piece)

    def _add_choice(self, piece: dict[str, Any]) -> None:
        index = piece.get("index", 0)
        choice = self.choices.get(index)
        if choice is None:
            choice = self.choices[index] = _Choice(index)
        if "logprobs" in piece:
            choice.add_logprobs(piece["logprobs"])
        if piece.get("finish_reason") is not None:
            choice.finish_reason = piece["finish_reason"]
        if self.chat:
            delta = piece.get("delta")
            if isinstance(delta, dict):
                choice.add_tool_calls(delta.get("tool_calls"))
                merge_piece(choice.fields, {k: v for k, v in delta.items() if k != "tool_calls"}, replace=_NO_CONCAT)
        elif isinstance(piece.get("text"), str):
            merge_piece(choice.fields, {"text": piece["text"]})

    def result(self) -> dict[str, Any]:
        choices = [self.choices[i] for i in sorted(self.choices)]
        body: dict[str, Any] = {
            "id": self.head.get("id"),
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.head.get("created"),
            "model": self.head.get("model"),
            "choices": [c.chat_result() if self.chat else c.completion_result() for c in choices],
            "usage": self.usage,
        }
        for name in ("service_tier", "system_fingerprint"):
            if name in self.head:
                body[name] = self.head[name]
        return body


def assemble_openai(events: Sequence[bytes], *, chat: bool) -> bytes | None:
    """The JSON a non-streaming call would have returned; None unless the stream reached `[DONE]` cleanly."""
    assembly = _Assembly(chat)
    for raw in events:
        event = parse_event(raw)
        if event.name == "error":
            return None
        if event.data is None:  # a comment or keep-alive
            continue
        if event.data == DONE_DATA:
            return orjson.dumps(assembly.result()) if assembly.chunks else None
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(chunk, dict) or chunk.get("error") is not None:
            return None
        assembly.add(chunk)
    return None
