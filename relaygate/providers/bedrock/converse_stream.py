"""Bedrock ConverseStream (binary AWS event-stream) -> OpenAI `chat.completion.chunk` SSE events.

Frames are decoded with botocore's `EventStreamBuffer` (prelude and message CRCs checked), so any
split of the upstream bytes works. Each frame's `:message-type` header says event, exception or error;
events are named by `:event-type`: messageStart, contentBlockStart (a tool call begins),
contentBlockDelta (text, tool input fragments, reasoning), contentBlockStop, messageStop (the finish
reason) and metadata (usage). An exception becomes an OpenAI error event and the stream ends without
`[DONE]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relaygate.providers.bedrock.converse_response import chunk, finish_reason, openai_usage, sse
from relaygate.providers.bedrock.errors import stream_exception

if TYPE_CHECKING:
    from botocore.eventstream import EventStreamBuffer

JSON = dict[str, Any]
DONE = b"data: [DONE]\n\n"


class BedrockStreamTranslator:
    """Feed ConverseStream bytes; get OpenAI SSE bytes. One instance per upstream response."""

    __slots__ = ("_buffer", "_parser_error", "_id", "_created", "_model", "_strict", "_tools", "_finished",
                 "_usage", "_failed", "_started")

    def __init__(self, model: str, response_id: str, created: int, *, strict_openai: bool = True) -> None:
        from botocore import eventstream  # lazy: keeps gateway start-up fast

        self._buffer: EventStreamBuffer = eventstream.EventStreamBuffer()
        self._parser_error: type[Exception] = eventstream.ParserError
        self._id = response_id
        self._created = created
        self._model = model
        self._strict = strict_openai
        self._tools: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool_calls index
        self._started = False
        self._finished = False  # messageStop seen
        self._usage: Any = None  # from the metadata event, sent just before [DONE]
        self._failed = False

    def feed(self, data: bytes) -> bytes:
        if self._failed:
            return b""
        self._buffer.add_data(data)
        out: list[bytes] = []
        try:
            for message in self._buffer:
                out.append(self._message(message.headers, message.payload))
                if self._failed:
                    break
        except self._parser_error as exc:
            out.append(self._error({"message": f"Bedrock sent a malformed event stream ({type(exc).__name__})",
                                    "type": "upstream_error", "code": "bad_event_stream", "param": None}))
        return b"".join(out)

    def finish(self) -> bytes:
        if self._failed:
            return b""
        if not self._finished:
            return self._error({"message": "the Bedrock stream ended before its messageStop event",
                                "type": "upstream_error", "code": "truncated_stream", "param": None})
        return self._usage_chunk(self._usage) + DONE

    # -- frames ----------------------------------------------------------------------------------------

    def _message(self, headers: dict[str, Any], payload: bytes) -> bytes:
        kind = headers.get(":message-type", "event")
        if kind == "exception":
            return self._error(stream_exception(headers.get(":exception-type"), payload))
        if kind == "error":
            message = headers.get(":error-message") or "Bedrock reported a stream error"
            return self._error(stream_exception(headers.get(":error-code"),
                                                orjson.dumps({"message": message})))
        try:
            body = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            return b""
        return self._event(headers.get(":event-type"), body)

    def _event(self, name: Any, body: JSON) -> bytes:
        if name == "messageStart":
            self._started = True
            return self._chunk({"role": "assistant", "content": ""})
        if name == "contentBlockStart":
            return self._block_start(body)
        if name == "contentBlockDelta":
            return self._delta(body)
        if name == "messageStop":
            self._finished = True
            return self._chunk({}, finish_reason(body.get("stopReason")))
        if name == "metadata":
            self._usage = body.get("usage")
            return b""
        return b""  # contentBlockStop and events this version does not know

    def _block_start(self, body: JSON) -> bytes:
        start = body.get("start")
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict):
            return b""
        tool_index = len(self._tools)
        self._tools[_index(body)] = tool_index
        call = {"index": tool_index, "id": str(use.get("toolUseId", "")), "type": "function",
                "function": {"name": str(use.get("name", "")), "arguments": ""}}
        return self._preamble() + self._chunk({"tool_calls": [call]})

    def _delta(self, body: JSON) -> bytes:
        delta = body.get("delta")
        if not isinstance(delta, dict):
            return b""
        if isinstance(delta.get("text"), str):
            return self._preamble() + self._chunk({"content": delta["text"]}) if delta["text"] else b""
        use = delta.get("toolUse")
        if isinstance(use, dict) and isinstance(use.get("input"), str):
            tool_index = self._tools.get(_index(body))
            if tool_index is None or not use["input"]:
                return b""
            return self._chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": use["input"]}}]})
        reasoning = delta.get("reasoningContent")
        if not self._strict and isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            return self._preamble() + self._chunk({"reasoning_content": reasoning["text"]})
        return b""

    # -- output ----------------------------------------------------------------------------------------

    def _preamble(self) -> bytes:
        """The role chunk, if Bedrock skipped messageStart (the first chunk always carries the role)."""
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        return sse(chunk(self._id, self._created, self._model, delta, finish))

    def _usage_chunk(self, usage: Any) -> bytes:
        return sse({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                    "model": self._model, "choices": [], "usage": openai_usage(usage)})

    def _error(self, error: dict[str, object]) -> bytes:
        self._failed = True
        return sse({"error": error})


def _index(body: JSON) -> int:
    value = body.get("contentBlockIndex")
    return value if isinstance(value, int) else -1
