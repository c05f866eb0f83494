"""OpenAI embeddings <-> Gemini API `batchEmbedContents` and Vertex AI `predict` (text-embedding models).

Gemini API: `{"requests": [{"model": "models/<id>", "content": {"parts": [{"text": ...}]},
"outputDimensionality"?}]}` -> `{"embeddings": [{"values": [...]}], "usageMetadata"?: {"promptTokenCount"}}`
(older answers carry no usage: tokens are then reported as 0).
Vertex AI: `{"instances": [{"content": ...}], "parameters"?: {"outputDimensionality"}}` ->
`{"predictions": [{"embeddings": {"values": [...], "statistics": {"token_count", "truncated"}}}]}`;
prompt tokens are the sum of token_count (`tokenCount` is read too).

`dimensions` -> outputDimensionality; `encoding_format: base64` is produced here (little-endian
float32, as OpenAI encodes). Token-id inputs (arrays of integers) have no Gemini equivalent: 400.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable

from relaygate.errors import BadGateway, BadRequest
from relaygate.providers.gemini.casing import camel_keys
from relaygate.providers.translated import json_object_answer
from relaygate.wire_types import JSON


def embedding_texts(payload: JSON) -> list[str]:
    """The `input` of an OpenAI embeddings request as a list of texts."""
    value = payload.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise BadRequest("'input' must be a string or a non-empty array of strings", param="input")
    if not all(isinstance(t, str) for t in texts):
        raise BadRequest("'input' must be text: Gemini embedding models do not take token ids", param="input")
    return texts


def _dimensions(payload: JSON) -> int | None:
    dims = payload.get("dimensions")
    if dims is None:
        return None
    if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
        raise BadRequest("'dimensions' must be a positive integer", param="dimensions")
    return dims


def _encoding(payload: JSON) -> str:
    fmt = payload.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be float or base64", param="encoding_format")
    return str(fmt)


def to_gemini_embed_request(payload: JSON, model: str) -> JSON:
    """The batchEmbedContents body; every request names the model, as the API requires."""
    name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    dims = _dimensions(payload)
    _encoding(payload)
    requests = []
    for text in embedding_texts(payload):
        request: JSON = {"model": name, "content": {"parts": [{"text": text}]}}
        if dims is not None:
            request["outputDimensionality"] = dims
        requests.append(request)
    return {"requests": requests}


def to_vertex_predict_request(payload: JSON) -> JSON:
    """The Vertex `:predict` body for a text-embedding model."""
    dims = _dimensions(payload)
    _encoding(payload)
    body: JSON = {"instances": [{"content": text} for text in embedding_texts(payload)]}
    if dims is not None:
        body["parameters"] = {"outputDimensionality": dims}
    return body


def _openai_list(vectors: list[list[float]], model: str, tokens: int, encoding: str) -> JSON:
    data = []
    for index, values in enumerate(vectors):
        embedding: object = values
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _values(item: object) -> list[float] | None:
    values = item.get("values") if isinstance(item, dict) else None
    if isinstance(values, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values]
    return None


def from_gemini_embed_response(body: JSON, model: str, encoding: str = "float") -> JSON:
    """OpenAI embeddings for a batchEmbedContents answer (either JSON name style)."""
    body = camel_keys(body)
    items = body.get("embeddings")
    vectors = [_values(item) for item in items] if isinstance(items, list) else []
    if not vectors or any(v is None for v in vectors):
        raise BadGateway(f"the upstream of model {model} answered without embeddings")
    meta = body.get("usageMetadata")
    tokens = meta.get("promptTokenCount") if isinstance(meta, dict) else None
    return _openai_list(
        [v for v in vectors if v is not None], model, tokens if isinstance(tokens, int) else 0, encoding
    )


def from_vertex_predict_response(body: JSON, model: str, encoding: str = "float") -> JSON:
    """OpenAI embeddings for a Vertex text-embedding `:predict` answer."""
    predictions = body.get("predictions")
    vectors: list[list[float]] = []
    tokens = 0
    for prediction in predictions if isinstance(predictions, list) else ():
        embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
        values = _values(embeddings)
        if values is None or not isinstance(embeddings, dict):
            raise BadGateway(f"the upstream of model {model} answered without embeddings")
        vectors.append(values)
        statistics = embeddings.get("statistics")
        count = statistics.get("token_count", statistics.get("tokenCount")) if isinstance(statistics, dict) else None
        if isinstance(count, int | float) and not isinstance(count, bool):
            tokens += int(count)
    if not vectors:
        raise BadGateway(f"the upstream of model {model} answered without embeddings")
    return _openai_list(vectors, model, tokens, encoding)


def embeddings_translator(payload: JSON, model: str, vertex: bool) -> Callable[[bytes], JSON]:
    """The `TranslatedResponse` body hook for an embeddings call."""
    encoding = _encoding(payload)
    translate = from_vertex_predict_response if vertex else from_gemini_embed_response

    def body(raw: bytes) -> JSON:
        parsed = json_object_answer(raw, model, "something other than embeddings")
        return translate(parsed, model, encoding)

    return body
