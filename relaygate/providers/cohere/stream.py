"""Cohere Chat v2 SSE events -> OpenAI `chat.completion.chunk` events.

Cohere frames each event as `event: <type>\\ndata: <json>\\n\\n`, the JSON repeating the `type`:
message-start (id), content-start / content-delta / content-end (text, or thinking on reasoning
models), tool-plan-delta (the visible text of a tool-calling turn), tool-call-start (id, name, empty
arguments) / tool-call-delta (argument fragments) / tool-call-end, citation-start / citation-end,
and message-end (finish_reason, usage, and `error` when generation failed). Cohere's `index` counts
content blocks and tool calls together; OpenAI's tool index counts tool calls only, so tool calls are
renumbered from 0 in order of appearance. A tool call that ends without any argument fragment (a
function without parameters) gets `{}` as its arguments, as in the non-streaming answer.

A message-end with finish_reason ERROR or TIMEOUT, or a stream that stops before message-end, ends
the OpenAI stream with an error event and no `[DONE]` (the usage chunk is still sent first when
Cohere reported usage: those tokens were billed).
"""

from __future__ import annotations

import time

import orjson

from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES, SSEBuffer
from relaygate.providers.cohere.chat import FAILED_FINISH_REASONS, as_object, finish_reason_of, to_openai_usage
from relaygate.wire_types import JSON


def _message_of(event: JSON) -> JSON:
    delta = event.get("delta")
    message = delta.get("message") if isinstance(delta, dict) else None
    return message if isinstance(message, dict) else {}


class CohereStreamTranslator:
    """Feed raw Cohere SSE bytes in any split; get whole OpenAI SSE events back."""

    __slots__ = (
        "_sse",
        "_id",
        "_model",
        "_created",
        "_strict",
        "_started",
        "_tools",
        "_usage",
        "_ended",
        "_failed",
        "_no_arguments",
    )

    def __init__(
        self,
        model: str,
        *,
        created: int | None = None,
        strict_openai: bool = True,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self._sse = SSEBuffer(max_event_bytes)
        self._id = "chatcmpl-cohere"
        self._model = model
        self._created = int(time.time()) if created is None else created
        self._strict = strict_openai
        self._started = False
        self._tools: dict[int, int] = {}  # Cohere event index -> OpenAI tool-call index
        self._no_arguments: set[int] = set()  # OpenAI indexes of tool calls with no argument fragment yet
        self._usage: JSON | None = None
        self._ended = False
        self._failed = False

    # -- OpenAI events -------------------------------------------------------------------------------

    def _base(self) -> JSON:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + orjson.dumps({**self._base(), "choices": [choice]}) + b"\n\n"

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _usage_chunk(self) -> bytes:
        if self._usage is None:
            return b""
        return b"data: " + orjson.dumps({**self._base(), "choices": [], "usage": self._usage}) + b"\n\n"

    def _error(self, message: str, code: str) -> bytes:
        self._failed = True
        error = {"message": message, "type": "upstream_error", "code": code, "param": None}
        return self._usage_chunk() + b"data: " + orjson.dumps({"error": error}) + b"\n\n"

    # -- Cohere events -------------------------------------------------------------------------------

    def _content(self, event: JSON) -> bytes:
        content = _message_of(event).get("content")
        if not isinstance(content, dict):
            return b""
        out = b""
        text = content.get("text")
        if isinstance(text, str) and text:
            out += self._chunk({"content": text})
        thinking = content.get("thinking")
        if not self._strict and isinstance(thinking, str) and thinking:
            out += self._chunk({"reasoning_content": thinking})
        return out

    def _tool_start(self, event: JSON) -> bytes:
        call = _message_of(event).get("tool_calls")
        if not isinstance(call, dict):
            return b""
        index = len(self._tools)
        self._tools[event["index"] if isinstance(event.get("index"), int) else -1 - index] = index
        function = as_object(call.get("function"))
        start = {
            "index": index,
            "id": str(call.get("id") or f"call_{index}"),
            "type": "function",
            "function": {"name": str(function.get("name") or ""), "arguments": ""},
        }
        out = self._chunk({"tool_calls": [start]})
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})
        else:
            self._no_arguments.add(index)
        return out

    def _tool_end(self, event: JSON) -> bytes:
        """`{}` as the arguments of a finished tool call that got none (a function without parameters)."""
        index = self._tools.get(event["index"]) if isinstance(event.get("index"), int) else None
        pending = [index] if index is not None else []
        if event.get("type") == "message-end":
            pending = sorted(self._no_arguments)
        out = b""
        for one in pending:
            if one in self._no_arguments:
                self._no_arguments.discard(one)
                out += self._chunk({"tool_calls": [{"index": one, "function": {"arguments": "{}"}}]})
        return out

    def _tool_delta(self, event: JSON) -> bytes:
        call = _message_of(event).get("tool_calls")
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if not isinstance(arguments, str) or not arguments or not self._tools:
            return b""
        index = self._tools.get(event["index"]) if isinstance(event.get("index"), int) else None
        if index is None:
            index = len(self._tools) - 1  # no (known) index: the call that started last
        self._no_arguments.discard(index)
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def _end(self, event: JSON) -> bytes:
        self._ended = True
        delta = as_object(event.get("delta"))
        self._usage = to_openai_usage(delta.get("usage"))
        reason = str(delta.get("finish_reason") or "")
        if reason in FAILED_FINISH_REASONS:
            detail = delta.get("error") if isinstance(delta.get("error"), str) else None
            message = f"Cohere ended the generation with finish_reason {reason}" + (f": {detail}" if detail else "")
            return self._error(message, "upstream_timeout" if reason == "TIMEOUT" else "upstream_generation_error")
        return self._start() + self._tool_end(event) + self._chunk({}, finish_reason_of(reason))

    def _event(self, event: JSON) -> bytes:
        kind = event.get("type")
        if kind == "message-start":
            if isinstance(event.get("id"), str) and event["id"] and not self._started:
                self._id = event["id"]
            return self._start()
        if kind in ("content-start", "content-delta"):
            return self._start() + self._content(event)
        if kind == "tool-plan-delta":
            plan = _message_of(event).get("tool_plan")
            return self._start() + self._chunk({"content": plan}) if isinstance(plan, str) and plan else b""
        if kind == "tool-call-start":
            return self._start() + self._tool_start(event)
        if kind == "tool-call-delta":
            return self._tool_delta(event)
        if kind == "tool-call-end":
            return self._tool_end(event)
        if kind == "message-end":
            return self._end(event)
        return b""  # content-end, citation-start/-end, debug

    def _parse(self, raw: bytes) -> bytes:
        """One SSE event block -> OpenAI events."""
        name = ""
        data: list[bytes] = []
        for line in raw.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
        payload = b"\n".join(data).strip()
        if not payload or payload == b"[DONE]":
            return b""
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(event, dict):
            return b""
        if "type" not in event and name:
            event["type"] = name
        return self._event(event)

    # -- StreamTranslator ----------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        if self._failed:
            return b""
        out = b""
        for block in self._sse.take_events(chunk):
            if block.strip() and not self._failed:
                out += self._parse(block)
        return out

    def finish(self) -> bytes:
        if self._failed:
            return b""
        out = b""
        rest = self._sse.take_rest()
        if rest.strip():
            out += self._parse(rest)
            if self._failed:
                return out
        if not self._ended:
            return out + self._error("the Cohere stream ended before message-end", "incomplete_stream")
        return out + self._usage_chunk() + b"data: [DONE]\n\n"
