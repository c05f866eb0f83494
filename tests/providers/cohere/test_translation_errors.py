"""What Cohere cannot carry is refused with a 400 naming the field, never silently dropped."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.errors import BadRequest
from relaygate.providers.cohere.chat import to_cohere_chat_request
from relaygate.providers.cohere.embed import to_cohere_embed_request
from relaygate.providers.cohere.rerank import to_cohere_rerank_request

USER = {"role": "user", "content": "hi"}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "command-a-03-2025", "messages": [USER], **fields}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m"}, "messages"),
        (_chat(n=2), "n"),
        (_chat(logprobs=True), "logprobs"),
        (_chat(logit_bias={"50256": -100}), "logit_bias"),
        (_chat(functions=[{"name": "f"}]), "functions"),
        (_chat(modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"}), "audio"),
        (_chat(messages=[{"role": "function", "name": "f", "content": "x"}]), "messages[0].role"),
        (_chat(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (
            _chat(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
            "messages[0].content[0].type",
        ),
        (
            _chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            "messages[0].content[0].image_url",
        ),
        (
            _chat(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
            "messages[0].content[0].type",
        ),
        (
            _chat(messages=[USER, {"role": "assistant", "tool_calls": [{"id": "1", "type": "function"}]}]),
            "messages[1].tool_calls[0].function",
        ),
        (_chat(tools=[{"type": "web_search"}]), "tools[0]"),
        (_chat(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "other"}}), "tool_choice"),
        (_chat(tool_choice="required"), "tool_choice"),
        (_chat(tools=[WEATHER], tool_choice="sometimes"), "tool_choice"),
        (_chat(response_format={"type": "yaml"}), "response_format"),
        (_chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}), "response_format.json_schema"),
        (_chat(stop=[1, 2]), "stop"),
    ],
)
def test_untranslatable_chat_input_is_a_bad_request_naming_the_field(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as raised:
        to_cohere_chat_request(payload, stream=False)
    assert raised.value.status == 400
    assert raised.value.param == param


def test_assistant_text_without_tool_calls_stays_content() -> None:
    body = to_cohere_chat_request(_chat(messages=[USER, {"role": "assistant", "content": "hello"}, USER]), stream=False)
    assert body["messages"][1] == {"role": "assistant", "content": "hello"}


def test_tool_choice_none_and_auto_translate() -> None:
    assert to_cohere_chat_request(_chat(tools=[WEATHER], tool_choice="none"), stream=False)["tool_choice"] == "NONE"
    assert "tool_choice" not in to_cohere_chat_request(_chat(tools=[WEATHER], tool_choice="auto"), stream=False)


def test_stream_flag_follows_the_call_and_stream_options_never_leak() -> None:
    body = to_cohere_chat_request(_chat(stream=True, stream_options={"include_usage": True}), stream=True)
    assert body["stream"] is True
    assert "stream_options" not in body


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "e", "input": [[1, 2, 3]]}, "input"),
        ({"model": "e", "input": []}, "input"),
        ({"model": "e", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "e", "input": "x", "input_type": 3}, "input_type"),
        ({"model": "e", "input": "x", "embedding_types": ["float", "int8"]}, "embedding_types"),
        ({"model": "e", "input": "x", "embedding_types": ["base64"]}, "embedding_types"),
    ],
)
def test_untranslatable_embeddings_input_is_a_bad_request(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as raised:
        to_cohere_embed_request(payload)
    assert raised.value.param == param


def test_embeddings_pass_the_callers_input_type_and_truncate() -> None:
    body = to_cohere_embed_request({"model": "e", "input": "q", "input_type": "search_query", "truncate": "start"})
    assert body == {
        "model": "e",
        "texts": ["q"],
        "input_type": "search_query",
        "embedding_types": ["float"],
        "truncate": "START",
    }


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "r", "documents": ["a"]}, "query"),
        ({"model": "r", "query": "q", "documents": []}, "documents"),
        ({"model": "r", "query": "q", "documents": ["a", {"title": "no text"}]}, "documents[1]"),
    ],
)
def test_untranslatable_rerank_input_is_a_bad_request(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as raised:
        to_cohere_rerank_request(payload)
    assert raised.value.param == param


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    body = to_cohere_chat_request(_chat(tools=[{"type": "function", "function": {"name": "now"}}]), stream=False)
    assert body["tools"] == [
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    ]
