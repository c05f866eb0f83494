"""Embeddings translation: inputs Gemini cannot take, and upstream answers without vectors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from relaygate.errors import BadGateway, BadRequest
from relaygate.providers.gemini.embeddings import (
    embeddings_translator,
    to_gemini_embed_request,
    to_vertex_predict_request,
)


@pytest.mark.parametrize(
    ("field", "value"),
    [("input", [1, 2, 3]), ("input", []), ("input", None), ("dimensions", 0), ("encoding_format", "int8")],
)
def test_unusable_inputs_are_refused(field: str, value: Any) -> None:
    payload = {"model": "e", "input": "x", field: value}
    for build in (lambda: to_gemini_embed_request(payload, "e"), lambda: to_vertex_predict_request(payload)):
        with pytest.raises(BadRequest) as caught:
            build()
        assert caught.value.param == field


def test_tuned_model_names_are_kept() -> None:
    body = to_gemini_embed_request({"input": "x"}, "tunedModels/my-embedder")
    assert body["requests"][0]["model"] == "tunedModels/my-embedder"


def test_base64_is_little_endian_float32() -> None:
    raw = orjson.dumps({"embeddings": [{"values": [0.5, -2.0]}]})
    out = embeddings_translator({"input": "x", "encoding_format": "base64"}, "e", False)(raw)
    assert struct.unpack("<2f", base64.b64decode(out["data"][0]["embedding"])) == (0.5, -2.0)


@pytest.mark.parametrize(
    ("vertex", "body"),
    [
        (False, {"embeddings": []}),
        (False, {"embeddings": [{"values": ["x"]}]}),
        (False, {}),
        (True, {"predictions": []}),
        (True, {"predictions": [{"embeddings": {}}]}),
    ],
)
def test_answers_without_vectors_are_bad_gateway(vertex: bool, body: dict[str, Any]) -> None:
    with pytest.raises(BadGateway):
        embeddings_translator({"input": "x"}, "e", vertex)(orjson.dumps(body))


def test_non_json_answer_is_bad_gateway() -> None:
    with pytest.raises(BadGateway):
        embeddings_translator({"input": "x"}, "e", True)(b"<html>")


def test_snake_case_batch_embed_answer_is_read() -> None:
    raw = orjson.dumps({"embeddings": [{"values": [0.5, 1]}], "usage_metadata": {"prompt_token_count": 6}})
    out = embeddings_translator({"input": "x"}, "e", False)(raw)
    assert out["data"][0]["embedding"] == [0.5, 1.0] and out["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
