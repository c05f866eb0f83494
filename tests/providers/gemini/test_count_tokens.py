"""Gemini / Vertex `countTokens`: the request bodies (checked against the mock's validation) and the answer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.errors import BadGateway, BadRequest
from relaygate.providers.gemini.count_tokens import (
    count_tokens_translator,
    to_gemini_count_tokens_request,
    to_vertex_count_tokens_request,
)
from relaygate.providers.gemini.request import to_gemini_request
from tests.upstreams.gemini_mock import GeminiRoute, counted_request, prompt_tokens

TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PAYLOAD: dict[str, Any] = {
    "model": "gemini-2.5-flash",
    "temperature": 0.2,
    "stop": ["END"],
    "tool_choice": "auto",
    "tools": [TOOL],
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather in Paris please"}],
}
GEMINI_ROUTE = GeminiRoute(False, "gemini-2.5-flash", "countTokens")
VERTEX_ROUTE = GeminiRoute(True, "gemini-2.5-flash", "countTokens", "mock-project", "us-central1")


def test_gemini_body_wraps_the_generate_request_with_its_model() -> None:
    chat = to_gemini_request(PAYLOAD)
    assert to_gemini_count_tokens_request(PAYLOAD, "models/gemini-2.5-flash") == {
        "generateContentRequest": {
            "model": "models/gemini-2.5-flash",
            "contents": chat["contents"],
            "systemInstruction": chat["systemInstruction"],
            "tools": chat["tools"],
        }
    }


def test_vertex_body_is_the_counted_fields_themselves() -> None:
    chat = to_gemini_request(PAYLOAD, vertex=True)
    assert to_vertex_count_tokens_request(PAYLOAD) == {
        "contents": chat["contents"],
        "systemInstruction": chat["systemInstruction"],
        "tools": chat["tools"],
    }


def test_sampling_and_tool_choice_are_not_sent() -> None:
    chat = to_gemini_request(PAYLOAD)
    assert "generationConfig" in chat and "toolConfig" in chat  # what a chat call sends, and counting does not
    inner = to_gemini_count_tokens_request(PAYLOAD, "models/gemini-2.5-flash")["generateContentRequest"]
    assert set(inner) == {"model", "contents", "systemInstruction", "tools"}
    assert set(to_vertex_count_tokens_request(PAYLOAD)) == {"contents", "systemInstruction", "tools"}


def test_a_plain_prompt_sends_contents_only() -> None:
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert to_vertex_count_tokens_request(payload) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_bodies_are_what_each_api_accepts_and_count_the_chat_prompt() -> None:
    chat_prompt = prompt_tokens(to_gemini_request(PAYLOAD))
    for body, route in (
        (to_gemini_count_tokens_request(PAYLOAD, "models/gemini-2.5-flash"), GEMINI_ROUTE),
        (to_vertex_count_tokens_request(PAYLOAD), VERTEX_ROUTE),
    ):
        counted, problem = counted_request(body, route)
        assert problem is None
        assert prompt_tokens(counted) == chat_prompt == 6  # "be brief" + "weather in Paris please"


def test_each_api_refuses_the_others_body() -> None:
    assert counted_request(to_vertex_count_tokens_request(PAYLOAD), GEMINI_ROUTE)[1] is not None
    assert counted_request(to_gemini_count_tokens_request(PAYLOAD, "models/x"), VERTEX_ROUTE)[1] is not None


def test_untranslatable_input_is_refused_as_for_chat() -> None:
    with pytest.raises(BadRequest):
        to_vertex_count_tokens_request({"model": "m", "messages": []})


@pytest.mark.parametrize(
    "answer", [{"totalTokens": 42, "totalBillableCharacters": 180}, {"total_tokens": 42, "prompt_tokens_details": []}]
)
def test_answer_becomes_input_tokens(answer: dict[str, Any]) -> None:
    assert orjson.loads(count_tokens_translator("g/flash")(orjson.dumps(answer))) == {"input_tokens": 42}


def test_answer_without_a_count_is_zero_as_protobuf_json_omits_it() -> None:
    assert orjson.loads(count_tokens_translator("g/flash")(b"{}")) == {"input_tokens": 0}


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"totalTokens": "many"}'])
def test_malformed_answer_is_a_bad_gateway_naming_the_model(raw: bytes) -> None:
    with pytest.raises(BadGateway) as caught:
        count_tokens_translator("g/flash")(raw)
    assert "g/flash" in caught.value.message


# -- the mock refuses what each API refuses (so the e2e tests prove the bodies are right) --------------


def test_mock_refuses_contents_beside_generate_content_request() -> None:
    body = to_gemini_count_tokens_request(PAYLOAD, "models/gemini-2.5-flash")
    body["contents"] = body["generateContentRequest"]["contents"]
    assert "cannot both be set" in str(counted_request(body, GEMINI_ROUTE)[1])


@pytest.mark.parametrize("model", [None, "gemini-2.5-flash", "models/"])
def test_mock_wants_a_models_name_in_generate_content_request(model: str | None) -> None:
    inner: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    if model is not None:
        inner["model"] = model
    assert "model name format" in str(counted_request({"generateContentRequest": inner}, GEMINI_ROUTE)[1])


def test_mock_counts_bare_contents_on_the_gemini_api() -> None:
    counted, problem = counted_request({"contents": [{"parts": [{"text": "two words"}]}]}, GEMINI_ROUTE)
    assert problem is None and prompt_tokens(counted) == 2


def test_mock_validates_the_wrapped_request_as_generate_content() -> None:
    body = {"generateContentRequest": {"model": "models/m", "contents": [{"role": "user", "parts": [{"txt": "x"}]}]}}
    assert "Cannot find field" in str(counted_request(body, GEMINI_ROUTE)[1])


def test_mock_vertex_refuses_tool_config() -> None:
    body = {**to_vertex_count_tokens_request(PAYLOAD), "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}}
    assert 'Unknown name "toolConfig"' in str(counted_request(body, VERTEX_ROUTE)[1])
