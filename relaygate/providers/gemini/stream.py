"""Gemini `streamGenerateContent?alt=sse` -> OpenAI `chat.completion.chunk` SSE.

Each Gemini event is a whole GenerateContentResponse (`data: {...}` then a blank line, `\\r\\n` or
`\\n`), in either JSON name style (see `casing`). Per candidate we emit the role chunk once, a content
delta per text part, one tool-call delta per `functionCall` part (Gemini sends calls whole: id, name
and the full arguments in one delta), and a finish chunk (empty delta) when the candidate's
finishReason arrives. A blocked prompt (only `promptFeedback.blockReason`) becomes a content_filter
finish. Usage comes from the last usageMetadata seen and is sent in the closing usage chunk before
`[DONE]`. An `{"error": ...}` event ends the stream with an OpenAI error event and no `[DONE]`; so
does a stream that ends having said nothing at all (so the router may still fall back).
"""

from __future__ import annotations

import time

import orjson

from relaygate.http.sse_events import DEFAULT_MAX_EVENT_BYTES, SSEBuffer
from relaygate.providers.gemini.casing import camel_keys
from relaygate.providers.gemini.errors import openai_error
from relaygate.providers.gemini.logprobs import to_openai_logprobs
from relaygate.providers.gemini.response import finish_reason, openai_usage, read_parts, response_id
from relaygate.providers.gemini.tool_ids import IdFactory, new_call_id
from relaygate.wire_types import JSON


class _Choice:
    __slots__ = ("tool_index", "finished")

    def __init__(self) -> None:
        self.tool_index = 0
        self.finished = False


class GeminiStreamTranslator:
    """Gemini SSE bytes in (any split), OpenAI SSE events out."""

    __slots__ = (
        "_model",
        "_include_reasoning",
        "_created",
        "_new_id",
        "_id",
        "_sse",
        "_choices",
        "_usage",
        "_failed",
        "_events",
    )

    def __init__(
        self,
        model: str,
        *,
        include_reasoning: bool = False,
        created: int | None = None,
        new_id: IdFactory = new_call_id,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self._model = model
        self._include_reasoning = include_reasoning
        self._created = created if created is not None else int(time.time())
        self._new_id = new_id
        self._id: str | None = None
        self._sse = SSEBuffer(max_event_bytes)
        self._choices: dict[int, _Choice] = {}
        self._usage: object = None
        self._failed = False
        self._events = 0

    def feed(self, chunk: bytes) -> bytes:
        if self._failed:
            return b""
        events = self._sse.take_events(chunk)
        return b"".join([self._event(event) for event in events if event.strip()]) if events else b""

    def finish(self) -> bytes:
        if self._failed:
            return b""
        rest = self._sse.take_rest()
        out = [self._event(rest)] if rest.strip() else []
        if self._failed:
            return b"".join(out)
        if not self._events:
            self._failed = True
            error = {
                "message": f"the upstream of model {self._model} ended its stream without an answer",
                "type": "upstream_error",
                "code": "empty_stream",
                "param": None,
            }
            return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
        for index, choice in sorted(self._choices.items()):
            if not choice.finished:  # ended without a finishReason: close the choice anyway
                out.append(self._finish(index, choice, "stop"))
        usage_chunk = self._base() | {"choices": [], "usage": openai_usage(self._usage)}
        out.append(_sse(usage_chunk))
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)

    # -- one Gemini event ---------------------------------------------------------------------------

    def _event(self, event: bytes) -> bytes:
        lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
        if not lines:
            return b""  # a comment or keep-alive
        try:
            payload = orjson.loads(b"".join(lines))
        except orjson.JSONDecodeError:
            return self._error({"message": "the upstream sent a malformed stream event", "status": "INTERNAL"})
        if isinstance(payload, list) and payload:
            payload = payload[0]
        if not isinstance(payload, dict):
            return b""
        payload = camel_keys(payload)
        if isinstance(payload.get("error"), dict):
            return self._error(payload["error"])
        self._events += 1
        if self._id is None:
            self._id = response_id(payload, self._new_id)
        if payload.get("usageMetadata") is not None:
            self._usage = payload["usageMetadata"]
        out: list[bytes] = []
        candidates = payload.get("candidates")
        for position, candidate in enumerate(candidates if isinstance(candidates, list) else ()):
            if isinstance(candidate, dict):
                index = candidate.get("index")
                out.extend(self._candidate(index if isinstance(index, int) else position, candidate))
        feedback = payload.get("promptFeedback")
        if not candidates and isinstance(feedback, dict) and feedback.get("blockReason"):
            choice = self._start(0, out)
            if not choice.finished:
                out.append(self._finish(0, choice, "content_filter"))
        return b"".join(out)

    def _candidate(self, index: int, candidate: JSON) -> list[bytes]:
        out: list[bytes] = []
        choice = self._start(index, out)
        if choice.finished:
            return out
        parts = read_parts(candidate.get("content"), self._new_id)
        if self._include_reasoning and parts.reasoning:
            out.append(self._delta(index, {"reasoning_content": "".join(parts.reasoning)}))
        if parts.text:
            logprobs = to_openai_logprobs(candidate.get("logprobsResult"))
            out.append(self._delta(index, {"content": "".join(parts.text)}, logprobs=logprobs))
        for call in parts.tool_calls:
            out.append(self._delta(index, {"tool_calls": [{"index": choice.tool_index, **call}]}))
            choice.tool_index += 1
        reason = candidate.get("finishReason")
        if reason:
            out.append(self._finish(index, choice, finish_reason(reason, choice.tool_index > 0)))
        return out

    # -- OpenAI chunks ------------------------------------------------------------------------------

    def _start(self, index: int, out: list[bytes]) -> _Choice:
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = _Choice()
            out.append(self._delta(index, {"role": "assistant", "content": ""}))
        return choice

    def _base(self) -> JSON:
        if self._id is None:
            self._id = response_id({}, self._new_id)
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _delta(self, index: int, delta: JSON, reason: str | None = None, logprobs: JSON | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": reason}
        return _sse(self._base() | {"choices": [choice]})

    def _finish(self, index: int, choice: _Choice, reason: str) -> bytes:
        choice.finished = True
        return self._delta(index, {}, reason)

    def _error(self, error: JSON) -> bytes:
        self._failed = True
        _, body = openai_error(error, 502)
        return b"data: " + orjson.dumps({"error": body}) + b"\n\n"


def _sse(payload: JSON) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
