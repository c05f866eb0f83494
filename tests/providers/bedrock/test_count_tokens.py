"""Bedrock CountTokens: the request body (checked against the botocore model and the mock) and the answer."""

from __future__ import annotations

from typing import Any

import botocore.session
import orjson
import pytest

from relaygate.errors import BadRequest
from relaygate.providers.bedrock.converse_request import to_bedrock_converse_request
from relaygate.providers.bedrock.count_tokens import from_bedrock_count_tokens_response, to_bedrock_count_tokens_request
from tests.upstreams.bedrock_mock import BedrockError, input_tokens, validate_count_tokens

TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PAYLOAD: dict[str, Any] = {
    "model": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "max_tokens": 64,
    "temperature": 0.3,
    "top_k": 5,
    "tools": [TOOL],
    "tool_choice": "auto",
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather in Paris"}],
}


def test_body_holds_the_converse_prompt_fields() -> None:
    converse = to_bedrock_converse_request(PAYLOAD)
    assert to_bedrock_count_tokens_request(PAYLOAD) == {
        "input": {
            "converse": {
                "messages": converse["messages"],
                "system": converse["system"],
                "toolConfig": converse["toolConfig"],
            }
        }
    }


def test_inference_and_model_fields_are_not_sent() -> None:
    converse = to_bedrock_converse_request(PAYLOAD)
    assert "inferenceConfig" in converse and "additionalModelRequestFields" in converse
    assert set(to_bedrock_count_tokens_request(PAYLOAD)["input"]["converse"]) == {"messages", "system", "toolConfig"}


def test_a_plain_prompt_sends_messages_only() -> None:
    body = to_bedrock_count_tokens_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert body == {"input": {"converse": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}}}


def test_body_matches_the_count_tokens_service_model() -> None:
    operation = botocore.session.get_session().get_service_model("bedrock-runtime").operation_model("CountTokens")
    assert operation.http["requestUri"] == "/model/{modelId}/count-tokens"
    body = to_bedrock_count_tokens_request(PAYLOAD)
    assert set(body) <= set(operation.input_shape.members)
    converse_shape = operation.input_shape.members["input"].members["converse"]
    assert set(body["input"]["converse"]) <= set(converse_shape.members)
    assert "inputTokens" in operation.output_shape.members


def test_mock_accepts_the_body_and_counts_the_converse_prompt() -> None:
    counted = validate_count_tokens(orjson.loads(orjson.dumps(to_bedrock_count_tokens_request(PAYLOAD))))
    assert input_tokens(counted) == input_tokens(to_bedrock_converse_request(PAYLOAD)) == 2 + 2 + 3


def test_untranslatable_input_is_refused_as_for_chat() -> None:
    with pytest.raises(BadRequest):
        to_bedrock_count_tokens_request({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2})


def test_answer_becomes_input_tokens() -> None:
    assert orjson.loads(from_bedrock_count_tokens_response(b'{"inputTokens": 17}')) == {"input_tokens": 17}


@pytest.mark.parametrize("raw", [b"{}", b"[]", b'{"inputTokens": true}', b'{"inputTokens": -1}'])
def test_answer_without_a_count_is_malformed(raw: bytes) -> None:
    with pytest.raises(ValueError):
        from_bedrock_count_tokens_response(raw)


# -- the mock refuses what CountTokens refuses (so the e2e tests prove the body is right) --------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"converse": {"messages": [{"role": "user", "content": [{"text": "x"}]}]}}, "Unknown field: converse"),
        ({}, "Value null at 'input'"),
        ({"input": {}}, "exactly one of converse or invokeModel"),
        ({"input": {"converse": {"messages": []}, "invokeModel": {"body": "{}"}}}, "exactly one of"),
        (
            {
                "input": {
                    "converse": {
                        "messages": [{"role": "user", "content": [{"text": "x"}]}],
                        "inferenceConfig": {"maxTokens": 5},
                    }
                }
            },
            "Unknown field: input.converse.inferenceConfig",
        ),
        (
            {"input": {"converse": {"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}}},
            "start with a user",
        ),
    ],
)
def test_mock_refuses_what_count_tokens_refuses(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BedrockError) as caught:
        validate_count_tokens(body)
    assert caught.value.error_type == "ValidationException" and message in caught.value.message
