"""OpenAI embeddings <-> Cohere Embed v2 (`POST /v2/embed`).

Cohere needs `input_type` (search_document, search_query, classification, clustering, image); callers
may pass it as an extra body field, otherwise documents are assumed (`search_document`), the usual
case for what gets embedded and stored. `embedding_types` is always `["float"]`: for
`encoding_format: base64` the gateway packs the floats as little-endian float32 itself, which is
exactly what OpenAI's base64 encoding is. `dimensions` -> `output_dimension` (embed-v4 and newer),
`truncate` (NONE/START/END) passes through. Usage comes from `meta.billed_units.input_tokens`.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from relaygate.errors import BadGateway, BadRequest
from relaygate.providers.cohere.chat import as_object

JSON = dict[str, Any]


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest("'input' must be a string or a non-empty list of strings for Cohere models "
                     "(token arrays are not accepted)", param="input")


def encoding_format_of(payload: JSON) -> str:
    fmt = payload.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be float or base64", param="encoding_format")
    return str(fmt)


def to_cohere_embed_request(payload: JSON) -> JSON:
    """The Cohere v2 embed body for an OpenAI embeddings request."""
    encoding_format_of(payload)
    input_type = payload.get("input_type", "search_document")
    if not isinstance(input_type, str) or not input_type:
        raise BadRequest("'input_type' must be a string such as search_document or search_query",
                         param="input_type")
    body: JSON = {"model": payload.get("model"), "texts": _texts(payload.get("input")), "input_type": input_type,
                  "embedding_types": ["float"]}
    if payload.get("dimensions") is not None:
        body["output_dimension"] = payload["dimensions"]
    if payload.get("truncate") is not None:
        body["truncate"] = str(payload["truncate"]).upper()
    return body


def _base64_float32(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def from_cohere_embed_response(body: Any, model: str, *, encoding_format: str) -> JSON:
    """The OpenAI embeddings list for a Cohere v2 embed response."""
    embeddings = body.get("embeddings") if isinstance(body, dict) else None
    vectors = embeddings.get("float") if isinstance(embeddings, dict) else embeddings
    if not isinstance(vectors, list):
        raise BadGateway("Cohere sent an embed answer without float embeddings")
    data = [
        {"object": "embedding", "index": index,
         "embedding": _base64_float32(vector) if encoding_format == "base64" else vector}
        for index, vector in enumerate(vectors)
    ]
    tokens = as_object(as_object(body.get("meta")).get("billed_units")).get("input_tokens")
    count = int(tokens) if isinstance(tokens, int | float) and not isinstance(tokens, bool) else 0
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": count, "total_tokens": count}}
