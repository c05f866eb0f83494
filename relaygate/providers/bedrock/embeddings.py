"""OpenAI embeddings <-> Bedrock InvokeModel bodies for Amazon Titan and Cohere Embed.

Titan text embeddings take one `inputText` per call (the adapter makes one call per input, at most
`TITAN_MAX_INPUTS` of them, a few at a time) and report `inputTextTokenCount`; v2 also takes
`dimensions`. Cohere Embed takes up to 96 `texts` in one call with an `input_type` (default
`search_document`; callers may send `input_type` in the body) and reports tokens in the
`X-Amzn-Bedrock-Input-Token-Count` header. Both come back as the OpenAI list shape, floats or
base64 little-endian float32 (`encoding_format: base64`, what the OpenAI SDK asks for by default).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from relaygate.errors import BadRequest
from relaygate.wire_types import JSON

TITAN_MAX_INPUTS = 128  # one upstream call each
COHERE_MAX_TEXTS = 96  # Bedrock's per-call limit for Cohere Embed
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


def embedding_family(model_id: str) -> str:
    """ "titan-v2", "titan-v1" or "cohere" from a model id, inference profile id or ARN."""
    lowered = model_id.lower()
    if "cohere.embed" in lowered:
        return "cohere"
    if "titan-embed-text-v2" in lowered:
        return "titan-v2"
    if "titan-embed" in lowered:
        return "titan-v1"
    raise BadRequest(
        f"model {model_id!r} is not a Bedrock embedding model this gateway speaks to "
        "(Amazon Titan text embeddings or Cohere Embed)",
        param="model",
    )


def embedding_texts(payload: JSON) -> list[str]:
    """The `input` as texts; Bedrock embeds text, so token arrays are refused."""
    value = payload.get("input")
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        texts = list(value)
    else:
        raise BadRequest(
            "'input' must be a string or a non-empty array of strings for Bedrock embedding "
            "models (token arrays are not accepted)",
            param="input",
        )
    for index, text in enumerate(texts):
        if not text:
            raise BadRequest(f"input[{index}] is empty", param="input")
    return texts


def _encoding(payload: JSON) -> str:
    fmt = payload.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise BadRequest(f"encoding_format {fmt!r} must be 'float' or 'base64'", param="encoding_format")
    return str(fmt)


def to_titan_embedding_requests(payload: JSON, family: str) -> list[JSON]:
    """One Titan InvokeModel body per input text."""
    _encoding(payload)
    texts = embedding_texts(payload)
    if len(texts) > TITAN_MAX_INPUTS:
        raise BadRequest(
            f"Titan embeddings take one text per upstream call; send at most {TITAN_MAX_INPUTS} inputs per request",
            param="input",
        )
    dimensions = payload.get("dimensions")
    if dimensions is not None and family != "titan-v2":
        raise BadRequest("'dimensions' is supported by Titan Text Embeddings V2 only", param="dimensions")
    extra: JSON = {"dimensions": dimensions} if dimensions is not None else {}
    return [{"inputText": text, **extra} for text in texts]


def to_cohere_embedding_request(payload: JSON, model_id: str) -> JSON:
    """The Cohere Embed InvokeModel body for all inputs."""
    _encoding(payload)
    texts = embedding_texts(payload)
    if len(texts) > COHERE_MAX_TEXTS:
        raise BadRequest(f"Cohere Embed on Bedrock takes at most {COHERE_MAX_TEXTS} texts per request", param="input")
    input_type = payload.get("input_type") or "search_document"
    if input_type not in COHERE_INPUT_TYPES:
        raise BadRequest(f"input_type must be one of {', '.join(COHERE_INPUT_TYPES)}", param="input_type")
    body: JSON = {"texts": texts, "input_type": input_type}
    if payload.get("truncate") in ("NONE", "START", "END"):
        body["truncate"] = payload["truncate"]
    dimensions = payload.get("dimensions")
    if dimensions is not None:
        if "embed-v4" not in model_id.lower():
            raise BadRequest("'dimensions' is supported by Cohere Embed v4 only", param="dimensions")
        body["output_dimension"] = dimensions
    return body


def _encode(vector: list[float], fmt: str) -> Any:
    if fmt == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def _listing(vectors: list[list[float]], model: str, fmt: str, tokens: int) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": _encode(v, fmt)} for i, v in enumerate(vectors)]
    return orjson.dumps(
        {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    )


def from_titan_embedding_responses(bodies: list[bytes], payload: JSON) -> bytes:
    """The OpenAI list for the Titan answers (in input order)."""
    vectors: list[list[float]] = []
    tokens = 0
    for raw in bodies:
        parsed = orjson.loads(raw)
        vector = parsed.get("embedding") if isinstance(parsed, dict) else None
        if not isinstance(vector, list):
            by_type = parsed.get("embeddingsByType") if isinstance(parsed, dict) else None
            vector = by_type.get("float") if isinstance(by_type, dict) else None
        if not isinstance(vector, list):
            raise ValueError("Titan answered without an embedding")
        vectors.append(vector)
        count = parsed.get("inputTextTokenCount")
        tokens += count if isinstance(count, int) else 0
    return _listing(vectors, str(payload.get("model", "")), _encoding(payload), tokens)


def from_cohere_embedding_response(raw: bytes, payload: JSON, header_tokens: str | None) -> bytes:
    """The OpenAI list for a Cohere Embed answer (`embeddings_floats` or `embeddings_by_type`)."""
    parsed = orjson.loads(raw)
    embeddings = parsed.get("embeddings") if isinstance(parsed, dict) else None
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list):
        raise ValueError("Cohere Embed answered without float embeddings")
    tokens = int(header_tokens) if header_tokens and header_tokens.isdigit() else 0
    if not header_tokens:
        billed = (parsed.get("meta") or {}).get("billed_units") or {}
        count = billed.get("input_tokens") if isinstance(billed, dict) else None
        tokens = count if isinstance(count, int) else 0
    return _listing(embeddings, str(payload.get("model", "")), _encoding(payload), tokens)
