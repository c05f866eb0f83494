"""OpenAI chat streams (and answers) presented as Anthropic Messages, for the inbound Messages API.

`MessagesStreamFromOpenAI` turns `chat.completion.chunk` SSE bytes (any split) into Anthropic's event
stream: `message_start`, per content block `content_block_start` / `content_block_delta` (`text_delta`,
`input_json_delta`) / `content_block_stop`, then `message_delta` (stop reason, usage) and
`message_stop`. Blocks are numbered in order of appearance, text and tool calls alike (a late fragment
of a tool call whose block was closed, from a provider interleaving parallel calls, still goes to that
call's index, where the SDKs accumulate it); an OpenAI error event becomes `event: error`, and a stream
that ends without finishing ends with one too. `MessagesFromOpenAI` wraps an adapter's OpenAI-shaped
answer so its reads and streams come out Anthropic-shaped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import orjson

from relaygate.dialects.anthropic_messages.errors import error_object
from relaygate.dialects.anthropic_messages.translation import (
    as_object,
    message_id_from,
    messages_response_from_openai,
    stop_reason_from,
    usage_from_openai,
)
from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES, SSEBuffer
from relaygate.providers.base import UpstreamResponse
from relaygate.providers.translated import json_object_answer, translate_chunks
from relaygate.wire_types import JSON


def sse_event(kind: str, payload: JSON) -> bytes:
    """One Anthropic SSE event: its name on the `event:` line and the same `type` inside the data."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class MessagesStreamFromOpenAI:
    """OpenAI `chat.completion.chunk` SSE bytes in, Anthropic Messages SSE events out."""

    __slots__ = (
        "_model",
        "_message_id",
        "_sse",
        "_started",
        "_open",
        "_open_text",
        "_next_index",
        "_tools",
        "_stop_reason",
        "_stop_sequence",
        "_usage",
        "_ended",
    )

    def __init__(
        self, model: str, message_id: str | None = None, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        self._model = model
        self._message_id = message_id
        self._sse = SSEBuffer(max_event_bytes)
        self._started = False
        self._open: int | None = None  # index of the open content block
        self._open_text = False  # the open block is a text block
        self._next_index = 0
        self._tools: dict[object, int] = {}  # OpenAI tool call key -> block index
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._usage: object = None
        self._ended = False  # message_stop or an error event was sent: nothing more goes out

    def feed(self, chunk: bytes) -> bytes:
        """Anthropic events for this chunk of upstream bytes (whole events only; b"" while one is partial)."""
        events = self._sse.take_events(chunk)
        if not events:
            return b""
        out: list[bytes] = []
        for event in events:
            self._event(event, out)
        return b"".join(out)

    def finish(self) -> bytes:
        """Closing events at the clean end of the upstream stream (an error event if it never finished)."""
        out: list[bytes] = []
        rest = self._sse.take_rest()
        if rest.strip():
            self._event(rest, out)
        if not self._ended:
            if self._stop_reason is None:
                self._error(
                    {"type": "api_error", "message": "the upstream stream ended before the answer was complete"}, out
                )
            else:
                self._close(out)
        return b"".join(out)

    # -- events ----------------------------------------------------------------------------------------

    def _event(self, event: bytes, out: list[bytes]) -> None:
        if self._ended:
            return
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                if self._stop_reason is None:
                    self._stop_reason = "end_turn"
                self._close(out)
                return
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(payload, dict):
                self._chunk(payload, out)

    def _chunk(self, payload: JSON, out: list[bytes]) -> None:
        if payload.get("error"):
            self._error(error_object(None, payload["error"]), out)
            return
        if not self._started:
            if not payload.get("choices") and not payload.get("usage"):
                return  # a preamble without content (Azure's prompt-filter chunk): nothing to say yet
            self._start(payload, out)
        if isinstance(payload.get("usage"), dict):
            self._usage = payload["usage"]
        for choice in payload.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            finish = choice.get("finish_reason")
            if finish:
                self._close_block(out)
                self._stop_reason, self._stop_sequence = stop_reason_from(finish, choice.get("stop_reason"))

    def _start(self, payload: JSON, out: list[bytes]) -> None:
        self._started = True
        message_id = self._message_id or message_id_from(payload.get("id"))
        out.append(
            sse_event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": self._model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": 0,
                            "output_tokens": 0,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                        },
                    },
                },
            )
        )

    def _delta(self, delta: JSON, out: list[bytes]) -> None:
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                if not self._open_text:
                    self._open_block({"type": "text", "text": ""}, out)
                    self._open_text = True
                out.append(
                    sse_event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": self._open,
                            "delta": {"type": "text_delta", "text": text},
                        },
                    )
                )
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool_delta(call, position, out)

    def _tool_delta(self, call: JSON, position: int, out: list[bytes]) -> None:
        key: object = call.get("index")
        if not isinstance(key, int):
            key = call.get("id") or position
        function = as_object(call.get("function"))
        index = self._tools.get(key)
        if index is None:
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or "toolu_" + os.urandom(12).hex()),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            index = self._open_block(block, out)
            self._tools[key] = index
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            out.append(
                sse_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": fragment},
                    },
                )
            )

    def _open_block(self, block: JSON, out: list[bytes]) -> int:
        self._close_block(out)
        index = self._next_index
        self._next_index += 1
        self._open = index
        out.append(
            sse_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
        )
        return index

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": self._open}))
            self._open = None
            self._open_text = False

    def _close(self, out: list[bytes]) -> None:
        if not self._started:
            self._start({}, out)
        self._close_block(out)
        usage: dict[str, Any] = {"output_tokens": 0}
        if self._usage is not None:
            usage = usage_from_openai(self._usage)
        out.append(
            sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop_reason or "end_turn", "stop_sequence": self._stop_sequence},
                    "usage": usage,
                },
            )
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        self._ended = True

    def _error(self, error: JSON, out: list[bytes]) -> None:
        out.append(sse_event("error", {"type": "error", "error": error}))
        self._ended = True


class MessagesFromOpenAI:
    """An adapter's OpenAI-shaped answer whose successful reads and streams come out Anthropic-shaped.

    Error answers are passed through as they are; the handler renders them in Anthropic's shape.
    """

    __slots__ = ("_inner", "_model", "_max_event", "status", "content_type", "retry_after", "parsed")

    def __init__(
        self, inner: UpstreamResponse, model: str, stream: bool, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        self._inner = inner
        self._model = model
        self._max_event = max_event_bytes
        self.status = inner.status
        self.retry_after = inner.retry_after
        self.parsed: JSON | None = None  # the Messages answer `read()` built
        if inner.status >= 400:
            self.content_type = inner.content_type
        else:
            self.content_type = "text/event-stream" if stream else "application/json"

    async def read(self) -> bytes:
        raw = await self._inner.read()
        if self._inner.status >= 400:
            return raw
        body = self._inner.parsed  # a translating adapter's own object: not parsed again
        if body is None:
            body = json_object_answer(raw, self._model, "a body that is not a chat completion")
        self.parsed = messages_response_from_openai(body, self._model)
        return orjson.dumps(self.parsed)

    def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._inner.status >= 400:
            return self._whole()
        return translate_chunks(self._inner.iter_chunks(), MessagesStreamFromOpenAI(self._model, None, self._max_event))

    async def _whole(self) -> AsyncIterator[bytes]:
        yield await self._inner.read()

    def close(self) -> None:
        self._inner.close()
