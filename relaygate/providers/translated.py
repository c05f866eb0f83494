"""An upstream answer in a provider's own shape, presented OpenAI-shaped to the handlers.

Adapters for providers that do not speak the OpenAI API (Anthropic, Bedrock, Gemini, Cohere) send
their request through `upstream.relay` and wrap the raw answer here with three pure pieces of their
own: a body translator, a stream translator and `classify` for errors. The handlers then relay every
provider the same way (usage capture, fallback before first content, error events). A body translator
may return the OpenAI object it built instead of its bytes: the response keeps it as `parsed`, so
the exchange reads usage and model from it instead of parsing what was just serialised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import orjson

from relaygate.errors import BadGateway
from relaygate.upstream.relay import HTTPUpstreamResponse


class StreamTranslator(Protocol):
    """Provider stream bytes in, OpenAI `chat.completion.chunk` SSE bytes out.

    `feed` gets raw upstream bytes as they arrive (any split) and returns whole OpenAI SSE events
    (`data: {...}\\n\\n`), possibly b"". `finish` runs once at the clean end of the upstream stream and
    returns the closing events: the usage chunk (`choices: []`, `usage: {...}`) and `data: [DONE]`.
    A provider error event becomes `data: {"error": {...}}\\n\\n` (OpenAI error object) with no [DONE].
    """

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


# body(raw answer) -> the OpenAI answer, as the object built (kept as `parsed`) or as bytes
BodyTranslator = Callable[[bytes], bytes | dict[str, Any]]
# classify(status, raw error body) -> (status for the caller, OpenAI error object {message, type, code, param})
Classifier = Callable[[int, bytes], tuple[int, dict[str, object]]]


async def translate_chunks(chunks: AsyncIterator[bytes], translator: StreamTranslator) -> AsyncIterator[bytes]:
    """`chunks` through `translator`: each non-empty output as it comes, then its closing events."""
    async for chunk in chunks:
        out = translator.feed(chunk)
        if out:
            yield out
    tail = translator.finish()
    if tail:
        yield tail


def json_object_answer(raw: bytes, model: str, what: str) -> dict[str, Any]:
    """A successful upstream answer's body as a JSON object; otherwise a 502 saying the upstream of
    `model` answered with `what` (e.g. "something other than a Gemini response")."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise BadGateway(f"the upstream of model {model} answered with {what}")
    return body


def error_body(error: dict[str, object]) -> bytes:
    """The OpenAI error JSON for an error object from `classify`."""
    return orjson.dumps({"error": error})


class TranslatedResponse:
    """Wraps a provider's HTTP answer; reads and streams come out OpenAI-shaped."""

    __slots__ = ("_response", "_body", "_stream", "_classify", "status", "content_type", "retry_after", "parsed")

    def __init__(
        self,
        response: HTTPUpstreamResponse,
        *,
        body: BodyTranslator | None,
        stream: StreamTranslator | None,
        classify: Classifier,
        status: Callable[[int], int] | None = None,
    ) -> None:
        self._response = response
        self._body = body
        self._stream = stream
        self._classify = classify
        # The status the router sees before any body is read (e.g. Anthropic's 529 "overloaded" is a 503).
        self.status = status(response.status) if status is not None else response.status
        self.retry_after = response.retry_after
        self.parsed: dict[str, Any] | None = None
        ok = response.status < 400
        self.content_type = "text/event-stream" if ok and stream is not None else "application/json"

    async def read(self) -> bytes:
        raw = await self._response.read()
        if self._response.status >= 400:
            self.status, error = self._classify(self._response.status, raw)
            return error_body(error)
        if self._body is None:
            return raw
        answer = self._body(raw)
        if isinstance(answer, bytes):
            return answer
        self.parsed = answer
        return orjson.dumps(answer)

    def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._stream is None or self._response.status >= 400:
            return self._whole()
        return translate_chunks(self._response.iter_chunks(), self._stream)

    async def _whole(self) -> AsyncIterator[bytes]:
        yield await self.read()

    def close(self) -> None:
        self._response.close()
