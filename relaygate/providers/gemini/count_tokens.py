"""Gemini and Vertex AI `countTokens`: the request bodies, and the answer as Anthropic's `{"input_tokens": N}`.

Both count what a generateContent call would send as its prompt: the `contents`, `systemInstruction` and
`tools` that `request.to_gemini_request` builds (its `generationConfig` and `toolConfig` do not change the
count and are not sent):

- Gemini API, `POST {base}/v1beta/models/{model}:countTokens`: the request goes inside
  `{"generateContentRequest": {"model": "models/{model}", "contents", "systemInstruction"?, "tools"?}}`
  (the API refuses `contents` beside `generateContentRequest`, and counts only `contents` without it).
- Vertex AI, `POST .../publishers/google/models/{model}:countTokens`: `{"contents", "systemInstruction"?,
  "tools"?}` itself.

The answer is `{"totalTokens": N, ...}` (Vertex adds `totalBillableCharacters`; proto field names such as
`total_tokens` are read too, see `casing`). Protobuf's JSON mapping leaves out a zero, so an answer object
without `totalTokens` counts 0; anything else is a malformed answer (502).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from relaygate.errors import BadGateway
from relaygate.providers.gemini.casing import camel_keys
from relaygate.providers.gemini.request import to_gemini_request
from relaygate.wire_types import JSON

COUNTED = ("contents", "systemInstruction", "tools")  # the GenerateContentRequest fields that hold tokens


def _counted(payload: JSON, vertex: bool) -> JSON:
    body = to_gemini_request(payload, vertex=vertex)
    return {name: body[name] for name in COUNTED if name in body}


def to_gemini_count_tokens_request(payload: JSON, model_name: str) -> JSON:
    """The Gemini API `countTokens` body for an OpenAI chat request; `model_name` is `models/{model}`."""
    return {"generateContentRequest": {"model": model_name, **_counted(payload, vertex=False)}}


def to_vertex_count_tokens_request(payload: JSON) -> JSON:
    """The Vertex AI `countTokens` body for an OpenAI chat request."""
    return _counted(payload, vertex=True)


def count_tokens_translator(model: str) -> Callable[[bytes], bytes]:
    """Google's `countTokens` answer -> `{"input_tokens": N}` (502 naming `model` when malformed)."""

    def translate(raw: bytes) -> bytes:
        try:
            parsed = camel_keys(orjson.loads(raw))
        except orjson.JSONDecodeError:
            parsed = None
        total = parsed.get("totalTokens", 0) if isinstance(parsed, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise BadGateway(f"the upstream of model {model} answered countTokens without a token count")
        return orjson.dumps({"input_tokens": total})

    return translate
