"""OpenAI embeddings <-> Cohere Embed v2 (`POST /v2/embed`).

Cohere needs `input_type` (search_document, search_query, classification, clustering, image); callers
may pass it as an extra body field, otherwise documents are assumed (`search_document`), the usual
case for what gets embedded and stored. `embedding_types` is `["float"]` unless the caller names one
type itself (`int8`, `uint8`, `binary`, `ubinary`: those vectors come back as integer lists whatever the
`encoding_format`). For floats with `encoding_format: base64` the gateway packs them as little-endian
float32 itself, which is exactly what OpenAI's base64 encoding is. `dimensions` -> `output_dimension`
(embed-v4 and newer), `truncate` (NONE/START/END) passes through. Usage comes from
`meta.billed_units.input_tokens`.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from relaygate.errors import BadGateway, BadRequest
from relaygate.providers.cohere.chat import as_object
from relaygate.wire_types import JSON


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest(
        "'input' must be a string or a non-empty list of strings for Cohere models (token arrays are not accepted)",
        param="input",
    )


def encoding_format_of(payload: JSON) -> str:
    fmt = payload.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be float or base64", param="encoding_format")
    return str(fmt)


EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary")


def embedding_type_of(payload: JSON) -> str:
    """The one Cohere embedding type to ask for: the caller's `embedding_types` (one of them), else float."""
    value = payload.get("embedding_types")
    if value is None:
        return "float"
    types = [value] if isinstance(value, str) else value
    if not isinstance(types, list) or len(types) != 1 or types[0] not in EMBEDDING_TYPES:
        raise BadRequest(
            f"'embedding_types' must name one of {', '.join(EMBEDDING_TYPES)} (an OpenAI embedding "
            "holds one vector; for base64 use encoding_format)",
            param="embedding_types",
        )
    return str(types[0])


def to_cohere_embed_request(payload: JSON) -> JSON:
    """The Cohere v2 embed body for an OpenAI embeddings request."""
    encoding_format_of(payload)
    input_type = payload.get("input_type", "search_document")
    if not isinstance(input_type, str) or not input_type:
        raise BadRequest("'input_type' must be a string such as search_document or search_query", param="input_type")
    body: JSON = {
        "model": payload.get("model"),
        "texts": _texts(payload.get("input")),
        "input_type": input_type,
        "embedding_types": [embedding_type_of(payload)],
    }
    if payload.get("dimensions") is not None:
        body["output_dimension"] = payload["dimensions"]
    if payload.get("truncate") is not None:
        body["truncate"] = str(payload["truncate"]).upper()
    return body


def _base64_float32(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def from_cohere_embed_response(body: Any, model: str, *, encoding_format: str, embedding_type: str = "float") -> JSON:
    """The OpenAI embeddings list for a Cohere v2 embed response (vectors of `embedding_type`)."""
    embeddings = body.get("embeddings") if isinstance(body, dict) else None
    vectors = embeddings.get(embedding_type) if isinstance(embeddings, dict) else embeddings
    if not isinstance(vectors, list):
        raise BadGateway(f"Cohere sent an embed answer without {embedding_type} embeddings")
    packed = encoding_format == "base64" and embedding_type == "float"
    data = [
        {"object": "embedding", "index": index, "embedding": _base64_float32(vector) if packed else vector}
        for index, vector in enumerate(vectors)
    ]
    tokens = as_object(as_object(body.get("meta")).get("billed_units")).get("input_tokens")
    count = int(tokens) if isinstance(tokens, int | float) and not isinstance(tokens, bool) else 0
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": count, "total_tokens": count}}
