"""Anthropic Messages SSE -> OpenAI `chat.completion.chunk` SSE, event by event (pure; any byte split).

Event map:
- `message_start` -> the first chunk, delta `{"role": "assistant", "content": ""}` (id and model from the
  message); its usage (input and cache tokens) is kept for the end.
- `content_block_start` tool_use -> `tool_calls[{index, id, type, function: {name, arguments: ""}}]`, the
  index counting tool calls only; `input_json_delta` fragments -> `tool_calls[{index, function:
  {arguments}}]` one for one; `text_delta` -> `content`. The forced JSON tool of a json_object request
  streams its input as `content` instead.
- `thinking_delta` -> `reasoning_content` and, at the block's `content_block_stop`, the whole block with
  its signature as `thinking_blocks: [{type, thinking, signature}]` (redacted blocks as `{type:
  redacted_thinking, data}`); only with `x-tfy-strict-openai: false`, dropped otherwise.
- `message_delta` -> stop reason and cumulative usage; `message_stop` -> the finish chunk (empty delta,
  `finish_reason`); `finish()` then adds the usage chunk (`choices: []`) and `[DONE]`.
- `error` (e.g. overloaded_error) -> `data: {"error": {...}}` (see errors.classify) and nothing after it,
  no `[DONE]`; a stream that ends without `message_stop` ends the same way. `ping` and unknown events
  are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES, SSEBuffer
from relaygate.providers.anthropic.errors import error_object
from relaygate.providers.anthropic.response import finish_reason, to_openai_usage


@dataclass(slots=True)
class _Block:
    """What is known of one open content block."""

    kind: str  # text | tool | json | thinking | redacted | other
    tool_index: int = -1
    thinking: list[str] = field(default_factory=list)
    signature: str | None = None
    data: str | None = None


class AnthropicStreamTranslator:
    """One Anthropic stream in, OpenAI chunk events out (a new instance per upstream attempt)."""

    __slots__ = (
        "_sse",
        "_id",
        "_model",
        "_created",
        "_strict",
        "_json_tool",
        "_blocks",
        "_tools",
        "_usage",
        "_stop_reason",
        "_started",
        "_stopped",
        "_failed",
    )

    def __init__(
        self,
        model: str,
        *,
        strict_openai: bool = True,
        json_tool: str | None = None,
        created: int | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self._sse = SSEBuffer(max_event_bytes)
        self._id = ""
        self._model = model
        self._created = created if created is not None else int(time.time())
        self._strict = strict_openai
        self._json_tool = json_tool
        self._blocks: dict[int, _Block] = {}
        self._tools = 0
        self._usage: dict[str, Any] = {}
        self._stop_reason: object = None
        self._started = False
        self._stopped = False
        self._failed = False

    def feed(self, chunk: bytes) -> bytes:
        """OpenAI events for the whole Anthropic events completed by `chunk` (a partial event waits)."""
        events = self._sse.take_events(chunk)
        return b"".join([self._event(raw) for raw in events]) if events else b""

    def finish(self) -> bytes:
        """The closing events at the clean end of the upstream stream: usage chunk and [DONE]."""
        rest = self._sse.take_rest()
        out = self._event(rest) if rest.strip() else b""
        if self._failed:
            return out
        if not self._stopped:
            self._failed = True
            error = {
                "message": "the Anthropic stream ended before message_stop",
                "type": "upstream_error",
                "code": "incomplete_stream",
                "param": None,
            }
            return out + b"data: " + orjson.dumps({"error": error}) + b"\n\n"
        usage = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": to_openai_usage(self._usage),
        }
        return out + b"data: " + orjson.dumps(usage) + b"\n\ndata: [DONE]\n\n"

    # -- events ------------------------------------------------------------------------------------

    def _event(self, raw: bytes) -> bytes:
        if self._failed:
            return b""
        name = b""
        data: list[bytes] = []
        for line in raw.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
            elif line.startswith(b"event:"):
                name = line[6:].strip()
        if not data:
            return b""
        try:
            payload = orjson.loads(b"\n".join(data))
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(payload, dict):
            return b""
        kind = payload.get("type") or name.decode("ascii", "replace")
        handler = _HANDLERS.get(str(kind))
        return handler(self, payload) if handler is not None else b""

    def _message_start(self, payload: dict[str, Any]) -> bytes:
        message = payload.get("message")
        if isinstance(message, dict):
            self._id = str(message.get("id") or self._id)
            self._model = str(message.get("model") or self._model)
            self._merge_usage(message.get("usage"))
        return self._start()

    def _block_start(self, payload: dict[str, Any]) -> bytes:
        out = self._start()
        index = payload.get("index")
        block = payload.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            return out
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = _Block("text")
            text = block.get("text")
            return out + (self._chunk({"content": text}) if isinstance(text, str) and text else b"")
        if kind == "tool_use":
            initial = block.get("input")
            initial_json = orjson.dumps(initial).decode() if isinstance(initial, dict) and initial else ""
            if self._json_tool is not None and block.get("name") == self._json_tool:
                self._blocks[index] = _Block("json")
                return out + (self._chunk({"content": initial_json}) if initial_json else b"")
            state = _Block("tool", tool_index=self._tools)
            self._tools += 1
            self._blocks[index] = state
            header = {
                "index": state.tool_index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": initial_json},
            }
            return out + self._chunk({"tool_calls": [header]})
        if kind == "thinking":
            text = block.get("thinking")
            state = _Block("thinking", signature=block.get("signature") or None)
            if isinstance(text, str) and text:
                state.thinking.append(text)
            self._blocks[index] = state
            if isinstance(text, str) and text and not self._strict:
                return out + self._chunk({"reasoning_content": text})
            return out
        if kind == "redacted_thinking":
            self._blocks[index] = _Block("redacted", data=block.get("data"))
            return out
        self._blocks[index] = _Block("other")  # server tools and their results: no OpenAI form
        return out

    def _block_delta(self, payload: dict[str, Any]) -> bytes:
        out = self._start()
        state = self._blocks.get(payload.get("index"))  # type: ignore[arg-type]
        delta = payload.get("delta")
        if state is None or not isinstance(delta, dict):
            return out
        kind = delta.get("type")
        if kind == "text_delta" and state.kind == "text":
            text = delta.get("text")
            return out + (self._chunk({"content": text}) if isinstance(text, str) and text else b"")
        if kind == "input_json_delta" and state.kind in ("tool", "json"):
            fragment = delta.get("partial_json")
            if not isinstance(fragment, str) or not fragment:
                return out
            if state.kind == "json":
                return out + self._chunk({"content": fragment})
            return out + self._chunk({"tool_calls": [{"index": state.tool_index, "function": {"arguments": fragment}}]})
        if kind == "thinking_delta" and state.kind == "thinking":
            text = delta.get("thinking")
            if isinstance(text, str) and text:
                state.thinking.append(text)
                if not self._strict:
                    return out + self._chunk({"reasoning_content": text})
            return out
        if kind == "signature_delta" and state.kind == "thinking":
            signature = delta.get("signature")
            if isinstance(signature, str) and signature:
                state.signature = signature
        return out

    def _block_stop(self, payload: dict[str, Any]) -> bytes:
        state = self._blocks.get(payload.get("index"))  # type: ignore[arg-type]
        if state is None or self._strict:
            return b""
        if state.kind == "thinking":
            block = {"type": "thinking", "thinking": "".join(state.thinking), "signature": state.signature}
            return self._chunk({"thinking_blocks": [block]})
        if state.kind == "redacted":
            return self._chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": state.data}]})
        return b""

    def _message_delta(self, payload: dict[str, Any]) -> bytes:
        delta = payload.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason") is not None:
            self._stop_reason = delta["stop_reason"]
        self._merge_usage(payload.get("usage"))
        return b""

    def _message_stop(self, payload: dict[str, Any]) -> bytes:
        if self._stopped:
            return b""
        out = self._start()
        self._stopped = True
        reason = finish_reason(self._stop_reason, json_tool=self._json_tool is not None)
        return out + self._chunk({}, reason)

    def _error(self, payload: dict[str, Any]) -> bytes:
        error = payload.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        _, openai_error = error_object(str(kind or "api_error"), str(message or "Anthropic stream error"))
        self._failed = True
        return b"data: " + orjson.dumps({"error": openai_error}) + b"\n\n"

    # -- output ------------------------------------------------------------------------------------

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _merge_usage(self, usage: object) -> None:
        """message_start carries input and cache tokens, message_delta cumulative counts: latest non-null wins."""
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


_HANDLERS = {
    "message_start": AnthropicStreamTranslator._message_start,
    "content_block_start": AnthropicStreamTranslator._block_start,
    "content_block_delta": AnthropicStreamTranslator._block_delta,
    "content_block_stop": AnthropicStreamTranslator._block_stop,
    "message_delta": AnthropicStreamTranslator._message_delta,
    "message_stop": AnthropicStreamTranslator._message_stop,
    "error": AnthropicStreamTranslator._error,
}


def from_anthropic_stream(
    chunks: bytes | Iterable[bytes],
    model: str,
    *,
    strict_openai: bool = True,
    json_tool: str | None = None,
    created: int | None = None,
) -> bytes:
    """A whole Anthropic stream (bytes or chunks as received) as the OpenAI SSE bytes."""
    translator = AnthropicStreamTranslator(model, strict_openai=strict_openai, json_tool=json_tool, created=created)
    parts = [chunks] if isinstance(chunks, bytes) else chunks
    return b"".join(translator.feed(part) for part in parts) + translator.finish()
