"""OpenAI embeddings <-> Bedrock InvokeModel bodies for Amazon Titan and Cohere Embed."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from relaygate.errors import BadRequest
from relaygate.providers.bedrock import embeddings
from tests.providers.bedrock.golden import GOLDEN, assert_golden_json


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("amazon.titan-embed-text-v2:0", "titan-v2"),
        ("amazon.titan-embed-text-v1", "titan-v1"),
        ("amazon.titan-embed-g1-text-02", "titan-v1"),
        ("cohere.embed-english-v3", "cohere"),
        ("arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-multilingual-v3", "cohere"),
    ],
)
def test_family_from_model_id(model: str, family: str) -> None:
    assert embeddings.embedding_family(model) == family


def test_unknown_embedding_model_is_400() -> None:
    with pytest.raises(BadRequest) as caught:
        embeddings.embedding_family("meta.llama3-8b-instruct-v1:0")
    assert caught.value.param == "model"


def test_titan_request_matches_golden_file() -> None:
    payload = GOLDEN.read_json("embeddings-titan-v2.openai-request.json")
    assert_golden_json(
        "embeddings-titan-v2.bedrock-requests.json", embeddings.to_titan_embedding_requests(payload, "titan-v2")
    )


def test_titan_response_matches_golden_file() -> None:
    payload = GOLDEN.read_json("embeddings-titan-v2.openai-request.json")
    bodies = [orjson.dumps(b) for b in GOLDEN.read_json("embeddings-titan-v2.bedrock-responses.json")]
    assert_golden_json(
        "embeddings-titan-v2.openai-response.json",
        orjson.loads(embeddings.from_titan_embedding_responses(bodies, payload)),
    )


def test_cohere_request_matches_golden_file() -> None:
    payload = GOLDEN.read_json("embeddings-cohere.openai-request.json")
    assert_golden_json(
        "embeddings-cohere.bedrock-request.json", embeddings.to_cohere_embedding_request(payload, payload["model"])
    )


def test_cohere_response_matches_golden_file() -> None:
    payload = GOLDEN.read_json("embeddings-cohere.openai-request.json")
    raw = GOLDEN.path("embeddings-cohere.bedrock-response.json").read_bytes()
    assert_golden_json(
        "embeddings-cohere.openai-response.json",
        orjson.loads(embeddings.from_cohere_embedding_response(raw, payload, "4")),
    )


def test_base64_encoding_is_little_endian_float32() -> None:
    payload = GOLDEN.read_json("embeddings-cohere.openai-request.json")
    raw = GOLDEN.path("embeddings-cohere.bedrock-response.json").read_bytes()
    data = orjson.loads(embeddings.from_cohere_embedding_response(raw, payload, "4"))["data"]
    decoded = struct.unpack("<4f", base64.b64decode(data[1]["embedding"]))
    assert list(decoded) == [-0.0625, 0.125, -0.5, 1.0]


def test_cohere_input_type_defaults_to_search_document() -> None:
    body = embeddings.to_cohere_embedding_request({"input": "x"}, "cohere.embed-english-v3")
    assert body == {"texts": ["x"], "input_type": "search_document"}


def test_cohere_tokens_fall_back_to_billed_units_without_header() -> None:
    raw = orjson.dumps(
        {
            "embeddings": [[0.5]],
            "id": "i",
            "response_type": "embeddings_floats",
            "texts": ["a"],
            "meta": {"billed_units": {"input_tokens": 9}},
        }
    )
    usage = orjson.loads(embeddings.from_cohere_embedding_response(raw, {"model": "m"}, None))["usage"]
    assert usage == {"prompt_tokens": 9, "total_tokens": 9}


def test_cohere_embeddings_by_type_answer_is_read() -> None:
    raw = orjson.dumps(
        {"embeddings": {"float": [[0.25, 0.5]]}, "id": "i", "response_type": "embeddings_by_type", "texts": ["a"]}
    )
    data = orjson.loads(embeddings.from_cohere_embedding_response(raw, {"model": "m"}, "2"))["data"]
    assert data == [{"object": "embedding", "index": 0, "embedding": [0.25, 0.5]}]


def test_cohere_v4_dimensions_become_output_dimension() -> None:
    body = embeddings.to_cohere_embedding_request({"input": "x", "dimensions": 512}, "cohere.embed-v4:0")
    assert body["output_dimension"] == 512


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": []}, "input"),
        ({"input": ["ok", ""]}, "input"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "dimensions": 256}, "dimensions"),
    ],
)
def test_titan_v1_refuses_what_it_cannot_take(payload: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        embeddings.to_titan_embedding_requests(payload, "titan-v1")
    assert caught.value.param == param


def test_titan_input_limit_is_enforced() -> None:
    with pytest.raises(BadRequest) as caught:
        embeddings.to_titan_embedding_requests({"input": ["x"] * (embeddings.TITAN_MAX_INPUTS + 1)}, "titan-v2")
    assert str(embeddings.TITAN_MAX_INPUTS) in caught.value.message


def test_cohere_text_limit_is_enforced() -> None:
    with pytest.raises(BadRequest):
        embeddings.to_cohere_embedding_request({"input": ["x"] * 97}, "cohere.embed-english-v3")


def test_cohere_unknown_input_type_is_400() -> None:
    with pytest.raises(BadRequest) as caught:
        embeddings.to_cohere_embedding_request({"input": "x", "input_type": "image"}, "cohere.embed-english-v3")
    assert caught.value.param == "input_type"
