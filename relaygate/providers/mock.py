"""The built-in `mock` provider: a local model for trying the gateway and for load tests.

It echoes the last user message deterministically, counts tokens the way a real tokenizer roughly
would (words and punctuation), streams word by word, and waits `latency_ms` before answering. Input
the OpenAI API would refuse gets OpenAI's 400 (`mock_checks`), streaming requests included.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from relaygate.errors import UnsupportedModelType
from relaygate.providers.base import ALL_OPERATIONS, UpstreamCall, UpstreamResponse
from relaygate.providers.mock_checks import InvalidInput, check_chat, check_input, check_n

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
EMBEDDING_DIMENSIONS = 16


def count_tokens(text: str) -> int:
    """A tokenizer-like count: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def _text_of(content: Any) -> str:
    """Text of a message content: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text_of(message.get("content"))
    return ""


def _prompt_tokens(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    # ~3 tokens of per-message overhead, as OpenAI's chat format adds.
    return sum(count_tokens(_text_of(m.get("content"))) + 3 for m in messages if isinstance(m, dict)) + 3


def _embedding(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    raw = [struct.unpack_from(">h", digest, i * 2)[0] / 32768.0 for i in range(EMBEDDING_DIMENSIONS)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


class MockResponse:
    """A complete in-process answer, shaped exactly like OpenAI's."""

    __slots__ = ("status", "content_type", "retry_after", "_body", "_chunks")
    parsed: dict[str, Any] | None = None  # the body is parsed by whoever needs it, as a real upstream's is

    def __init__(self, body: bytes | None, chunks: list[bytes] | None, status: int = 200) -> None:
        self.status = status
        self.retry_after: str | None = None
        self.content_type = "text/event-stream" if chunks is not None else "application/json"
        self._body = body or b""
        self._chunks = chunks or []

    async def read(self) -> bytes:
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    def close(self) -> None:
        return None


def _sse(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class MockAdapter:
    """Answers chat, completions, embeddings and moderations without any upstream."""

    __slots__ = ()
    kind = "mock"
    operations = ALL_OPERATIONS  # the model types say which it answers; the others are a 4xx at call time
    max_choices = 128  # writes one choice but accepts any `n`, as models without `n` support answer

    def integration_options(self, account: Any, integration: Any) -> dict[str, Any]:
        """The integration's `latency_ms`, applied before the answer and each stream chunk."""
        return {"latency_ms": integration.latency_ms or 0}

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        latency = float(call.target.options.get("latency_ms", 0)) / 1000.0
        if latency:
            await asyncio.sleep(latency)
        body = call.payload or {}
        name = call.operation.name
        try:
            if name == "chat":
                check_chat(body)
            elif name == "completions":
                check_n(body)
            elif name in ("embeddings", "moderations"):
                check_input(body)
        except InvalidInput as invalid:
            return MockResponse(orjson.dumps(invalid.error()), None, status=400)
        if name == "chat":
            return self._chat(call, body)
        if name == "completions":
            return self._completion(call, body)
        if name == "embeddings":
            return self._embeddings(call, body)
        if name == "moderations":
            return self._moderations(call, body)
        raise UnsupportedModelType(f"the mock provider does not implement {call.operation.path}")

    def _chat(self, call: UpstreamCall, body: dict[str, Any]) -> MockResponse:
        text = _last_user_text(body.get("messages"))
        usage = {
            "prompt_tokens": _prompt_tokens(body.get("messages")),
            "completion_tokens": count_tokens(text),
            "total_tokens": 0,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        ident = f"chatcmpl-{call.request_id}"
        created = int(time.time())
        model = call.target.model_id
        if not call.stream:
            payload = {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
                "system_fingerprint": "relaygate-mock",
            }
            return MockResponse(orjson.dumps(payload), None)
        base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
        chunks = [
            _sse(
                {
                    **base,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                    "usage": None,
                }
            )
        ]
        for piece in re.findall(r"\S+\s*", text) or [""]:
            chunks.append(
                _sse(
                    {
                        **base,
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                        "usage": None,
                    }
                )
            )
        chunks.append(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None}))
        chunks.append(_sse({**base, "choices": [], "usage": usage}))
        chunks.append(b"data: [DONE]\n\n")
        return MockResponse(None, chunks)

    def _completion(self, call: UpstreamCall, body: dict[str, Any]) -> MockResponse:
        prompt = body.get("prompt", "")
        prompt_text = prompt if isinstance(prompt, str) else " ".join(str(p) for p in prompt or [])
        usage = {"prompt_tokens": count_tokens(prompt_text), "completion_tokens": count_tokens(prompt_text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        ident = f"cmpl-{call.request_id}"
        created = int(time.time())
        model = call.target.model_id
        if not call.stream:
            payload = {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "text": prompt_text, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            }
            return MockResponse(orjson.dumps(payload), None)
        base = {"id": ident, "object": "text_completion", "created": created, "model": model}
        chunks = [
            _sse({**base, "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}]})
            for piece in re.findall(r"\S+\s*", prompt_text) or [""]
        ]
        chunks.append(_sse({**base, "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]}))
        chunks.append(_sse({**base, "choices": [], "usage": usage}))
        chunks.append(b"data: [DONE]\n\n")
        return MockResponse(None, chunks)

    def _embeddings(self, call: UpstreamCall, body: dict[str, Any]) -> MockResponse:
        raw = body.get("input", "")
        inputs = [raw] if isinstance(raw, str) else [str(item) for item in raw or []]
        data: list[dict[str, Any]] = []
        for index, text in enumerate(inputs):
            vector = _embedding(text)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count_tokens(t) for t in inputs)
        payload = {
            "object": "list",
            "data": data,
            "model": call.target.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return MockResponse(orjson.dumps(payload), None)

    def _moderations(self, call: UpstreamCall, body: dict[str, Any]) -> MockResponse:
        raw = body.get("input", "")
        inputs = [raw] if isinstance(raw, str) else list(raw or [])
        payload = {
            "id": f"modr-{call.request_id}",
            "model": call.target.model_id,
            "results": [{"flagged": False, "categories": {}, "category_scores": {}} for _ in inputs],
        }
        return MockResponse(orjson.dumps(payload), None)
