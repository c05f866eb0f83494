"""Bedrock ConverseStream (binary AWS event-stream) -> OpenAI `chat.completion.chunk` SSE events.

Frames are decoded with botocore's `EventStreamBuffer` (prelude and message CRCs checked), so any
split of the upstream bytes works. Each frame's `:message-type` header says event, exception or error;
events are named by `:event-type`: messageStart, contentBlockStart (a tool call begins),
contentBlockDelta (text, tool input fragments, reasoning), contentBlockStop, messageStop (the finish
reason) and metadata (usage). A tool call whose input never arrived (a tool without parameters) gets
`{}` as its arguments when its block stops, as in the non-streaming answer. An exception becomes an
OpenAI error event and the stream ends without `[DONE]`. A frame longer than the stream event cap
(`max_sse_line_bytes`, as for SSE lines) raises a 502 before it is buffered whole.

Bedrock answers ConverseStream with HTTP 200 and may then send an exception as its first event
(throttling, validation, a model stream error). `open_converse_stream` reads up to the first content
before handing the stream on, so such an exception is an HTTP error with its own status (429, 400,
5xx), retryable and a fallback trigger exactly as when Bedrock sends it as the HTTP answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES, event_too_long
from relaygate.providers.base import BufferedResponse
from relaygate.providers.bedrock.converse_response import chunk, finish_reason, openai_usage, sse
from relaygate.providers.bedrock.errors import stream_exception
from relaygate.upstream.relay import HTTPUpstreamResponse
from relaygate.wire_types import JSON

if TYPE_CHECKING:
    from botocore.eventstream import EventStreamBuffer

DONE = b"data: [DONE]\n\n"


class BedrockStreamTranslator:
    """Feed ConverseStream bytes; get OpenAI SSE bytes. One instance per upstream response."""

    __slots__ = (
        "_buffer",
        "_parser_error",
        "_id",
        "_created",
        "_model",
        "_strict",
        "_tools",
        "_finished",
        "_usage",
        "_failed",
        "_started",
        "_no_input",
        "_pending",
        "_max_event",
        "_too_long",
        "content_sent",
        "error_status",
    )

    def __init__(
        self,
        model: str,
        response_id: str,
        created: int,
        *,
        strict_openai: bool = True,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
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
        self._no_input: set[int] = set()  # contentBlockIndex of tool calls with no input fragment yet
        self._pending = 0  # bytes of the frame not yet complete (the SSE line cap applies to a frame)
        self._max_event = max_event_bytes
        self._too_long = False  # that frame was refused: every later call raises
        self.content_sent = False  # a chunk beyond the role preamble was produced
        self.error_status: int | None = None  # the status of the error event, once one was produced

    def feed(self, data: bytes) -> bytes:
        if self._too_long:
            raise event_too_long(self._max_event)
        if self._failed:
            return b""
        self._buffer.add_data(data)
        self._pending += len(data)
        out: list[bytes] = []
        try:
            for message in self._buffer:
                self._pending -= message.prelude.total_length
                out.append(self._message(message.headers, message.payload))
                if self._failed:
                    break
        except self._parser_error as exc:
            out.append(
                self._error(
                    502,
                    {
                        "message": f"Bedrock sent a malformed event stream ({type(exc).__name__})",
                        "type": "upstream_error",
                        "code": "bad_event_stream",
                        "param": None,
                    },
                )
            )
        if self._pending > self._max_event and not self._failed:
            self._too_long = True
            if not out:  # else the events before it go out first and the next call raises
                raise event_too_long(self._max_event)
        return b"".join(out)

    def finish(self) -> bytes:
        if self._too_long:
            raise event_too_long(self._max_event)
        if self._failed:
            return b""
        if not self._finished:
            return self._error(
                502,
                {
                    "message": "the Bedrock stream ended before its messageStop event",
                    "type": "upstream_error",
                    "code": "truncated_stream",
                    "param": None,
                },
            )
        return self._usage_chunk(self._usage) + DONE

    # -- frames ----------------------------------------------------------------------------------------

    def _message(self, headers: dict[str, Any], payload: bytes) -> bytes:
        kind = headers.get(":message-type", "event")
        if kind == "exception":
            return self._error(*stream_exception(headers.get(":exception-type"), payload))
        if kind == "error":
            message = headers.get(":error-message") or "Bedrock reported a stream error"
            return self._error(*stream_exception(headers.get(":error-code"), orjson.dumps({"message": message})))
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
        if name == "contentBlockStop":
            return self._empty_input(_index(body))
        if name == "messageStop":
            self._finished = True
            pending = b"".join(self._empty_input(index) for index in sorted(self._no_input))
            return pending + self._chunk({}, finish_reason(body.get("stopReason")))
        if name == "metadata":
            self._usage = body.get("usage")
            return b""
        return b""  # events this version does not know

    def _block_start(self, body: JSON) -> bytes:
        start = body.get("start")
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict):
            return b""
        tool_index = len(self._tools)
        self._tools[_index(body)] = tool_index
        self._no_input.add(_index(body))
        call = {
            "index": tool_index,
            "id": str(use.get("toolUseId", "")),
            "type": "function",
            "function": {"name": str(use.get("name", "")), "arguments": ""},
        }
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
            self._no_input.discard(_index(body))
            return self._chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": use["input"]}}]})
        reasoning = delta.get("reasoningContent")
        if not self._strict and isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            return self._preamble() + self._chunk({"reasoning_content": reasoning["text"]})
        return b""

    def _empty_input(self, block: int) -> bytes:
        """`{}` as the arguments of a stopped tool block that received no input (a call without parameters)."""
        if block not in self._no_input:
            return b""
        self._no_input.discard(block)
        return self._chunk({"tool_calls": [{"index": self._tools[block], "function": {"arguments": "{}"}}]})

    # -- output ----------------------------------------------------------------------------------------

    def _preamble(self) -> bytes:
        """The role chunk, if Bedrock skipped messageStart (the first chunk always carries the role)."""
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        if finish is not None or set(delta) - {"role", "content"} or delta.get("content"):
            self.content_sent = True
        return sse(chunk(self._id, self._created, self._model, delta, finish))

    def _usage_chunk(self, usage: Any) -> bytes:
        return sse(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": openai_usage(usage),
            }
        )

    def _error(self, status: int, error: dict[str, object]) -> bytes:
        self._failed = True
        self.error_status = status
        return sse({"error": error})


def _index(body: JSON) -> int:
    value = body.get("contentBlockIndex")
    return value if isinstance(value, int) else -1


# -- the stream up to its first content ---------------------------------------------------------------


class StartedStream:
    """A ConverseStream read up to its first content (or its end): the OpenAI SSE bytes produced so far,
    then the rest of the upstream stream through the same translator."""

    __slots__ = ("_response", "_chunks", "_translator", "_held", "status", "content_type", "retry_after")
    parsed: dict[str, Any] | None = None  # a stream: nothing built

    def __init__(
        self,
        response: HTTPUpstreamResponse,
        chunks: AsyncIterator[bytes] | None,
        translator: BedrockStreamTranslator,
        held: bytes,
    ) -> None:
        self._response = response
        self._chunks = chunks  # None once the upstream stream has ended
        self._translator = translator
        self._held = held
        self.status = response.status
        self.content_type = "text/event-stream"
        self.retry_after = response.retry_after

    async def read(self) -> bytes:
        return b"".join([part async for part in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._held:
            yield self._held
        if self._chunks is not None:
            async for data in self._chunks:
                out = self._translator.feed(data)
                if out:
                    yield out
            tail = self._translator.finish()
            if tail:
                yield tail

    def close(self) -> None:
        self._response.close()


async def open_converse_stream(
    response: HTTPUpstreamResponse, translator: BedrockStreamTranslator
) -> StartedStream | BufferedResponse:
    """Read a 200 ConverseStream until its first content, its end, or an exception event before content."""
    chunks = response.iter_chunks().__aiter__()
    held: list[bytes] = []
    try:
        async for data in chunks:
            out = translator.feed(data)
            if out:
                held.append(out)
            if translator.error_status is not None and not translator.content_sent:
                response.close()
                return BufferedResponse(translator.error_status, _error_json(b"".join(held)))
            if translator.content_sent or translator.error_status is not None:
                return StartedStream(response, chunks, translator, b"".join(held))
    except BaseException:  # a deadline or a broken connection while peeking: release the upstream
        response.close()
        raise
    held.append(translator.finish())  # ended before any content (a truncated stream is a 502)
    if translator.error_status is not None and not translator.content_sent:
        response.close()
        return BufferedResponse(translator.error_status, _error_json(b"".join(held)))
    return StartedStream(response, None, translator, b"".join(held))


def _error_json(sse_bytes: bytes) -> bytes:
    """The `{"error": ...}` JSON of the last SSE event in `sse_bytes` (the error event)."""
    last = sse_bytes.rstrip().rsplit(b"\n\n", 1)[-1]
    return last[len(b"data: ") :] if last.startswith(b"data: ") else last
