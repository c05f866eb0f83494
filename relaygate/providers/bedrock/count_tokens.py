"""Bedrock `CountTokens` (`POST /model/{modelId}/count-tokens`): the request body and the answer.

The request counts what a Converse call would send as its prompt: the `messages`, `system` and
`toolConfig` that `converse_request.to_bedrock_converse_request` builds (its `inferenceConfig` and
other fields do not change the count and are not sent), inside
`{"input": {"converse": {...}}}`. The answer `{"inputTokens": N}` becomes Anthropic's
`{"input_tokens": N}`; an answer without an integer `inputTokens` is malformed (ValueError).
"""

from __future__ import annotations

import orjson

from relaygate.providers.bedrock.converse_request import to_bedrock_converse_request
from relaygate.wire_types import JSON

COUNTED = ("messages", "system", "toolConfig")  # the Converse fields CountTokens takes that hold tokens


def to_bedrock_count_tokens_request(payload: JSON) -> JSON:
    """The CountTokens body for an OpenAI chat payload (the model id travels in the URL)."""
    converse = to_bedrock_converse_request(payload)
    return {"input": {"converse": {name: converse[name] for name in COUNTED if name in converse}}}


def from_bedrock_count_tokens_response(raw: bytes) -> bytes:
    """`{"input_tokens": N}` for a CountTokens answer (ValueError when it holds no count)."""
    parsed = orjson.loads(raw)
    tokens = parsed.get("inputTokens") if isinstance(parsed, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        raise ValueError("no inputTokens")
    return orjson.dumps({"input_tokens": tokens})
