"""Anthropic Messages request -> OpenAI chat request: the mappings golden files do not pin down."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.dialects.anthropic_messages.translation import openai_request_from_messages
from relaygate.errors import BadRequest


def request(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return body


TOOL = {"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "lookup"}, {"type": "function", "function": {"name": "lookup"}}),
    ],
)
def test_tool_choice_maps_to_openai(choice: dict[str, Any], expected: object) -> None:
    out = openai_request_from_messages(request(tools=[TOOL], tool_choice=choice))
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


def test_disable_parallel_tool_use_turns_off_parallel_calls() -> None:
    out = openai_request_from_messages(
        request(tools=[TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    )
    assert out["parallel_tool_calls"] is False


def test_tool_choice_without_tools_is_not_sent() -> None:
    # OpenAI rejects tool_choice and parallel_tool_calls when no tools are given.
    out = openai_request_from_messages(request(tool_choice={"type": "any", "disable_parallel_tool_use": True}))
    assert "tool_choice" not in out and "parallel_tool_calls" not in out and "tools" not in out


def test_tool_without_schema_gets_an_empty_object_schema() -> None:
    out = openai_request_from_messages(request(tools=[{"name": "ping"}]))
    assert out["tools"] == [
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
    ]


def test_server_tool_is_refused_with_its_field() -> None:
    with pytest.raises(BadRequest) as caught:
        openai_request_from_messages(request(tools=[TOOL, {"type": "web_search_20250305", "name": "web_search"}]))
    assert caught.value.param == "tools.1.type"
    assert "only Anthropic models" in caught.value.message


def test_unknown_tool_choice_is_refused() -> None:
    with pytest.raises(BadRequest) as caught:
        openai_request_from_messages(request(tools=[TOOL], tool_choice={"type": "sometimes"}))
    assert caught.value.param == "tool_choice.type"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "max_tokens": 5}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ],
)
def test_invalid_request_names_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        openai_request_from_messages(body)
    assert caught.value.param == param


def test_file_image_source_is_refused() -> None:
    content = [{"type": "image", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}}]
    with pytest.raises(BadRequest) as caught:
        openai_request_from_messages(request(messages=[{"role": "user", "content": content}]))
    assert caught.value.param == "messages.0.content.0.source"


def test_server_tool_blocks_in_history_are_refused() -> None:
    content = [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}}]
    with pytest.raises(BadRequest) as caught:
        openai_request_from_messages(
            request(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": content}])
        )
    assert caught.value.param == "messages.1.content.0.type"


def test_tool_use_in_a_user_message_is_refused() -> None:
    content = [{"type": "tool_use", "id": "t", "name": "lookup", "input": {}}]
    with pytest.raises(BadRequest):
        openai_request_from_messages(request(messages=[{"role": "user", "content": content}]))


def test_pdf_document_becomes_a_file_part_and_text_document_text() -> None:
    content = [
        {
            "type": "document",
            "title": "report.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"},
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
        {"type": "text", "text": "Summarise."},
    ]
    out = openai_request_from_messages(request(messages=[{"role": "user", "content": content}]))
    assert out["messages"][0]["content"] == [
        {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}},
        {"type": "text", "text": "plain words"},
        {"type": "text", "text": "Summarise."},
    ]


def test_user_turn_of_only_tool_results_adds_no_user_message() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1"}]},
    ]
    out = openai_request_from_messages(request(messages=messages))
    assert out["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": ""}
    assert out["messages"][1]["content"] is None


def test_empty_system_is_not_sent() -> None:
    assert openai_request_from_messages(request(system=""))["messages"][0]["role"] == "user"
    assert openai_request_from_messages(request(system=[]))["messages"][0]["role"] == "user"


def test_stream_false_and_unknown_fields_are_not_forwarded() -> None:
    out = openai_request_from_messages(
        request(stream=False, top_k=5, service_tier="auto", thinking={"type": "enabled", "budget_tokens": 2048})
    )
    assert set(out) == {"model", "messages", "max_tokens"}


def test_structured_output_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    out = openai_request_from_messages(
        request(output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"})
    )
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def test_count_tokens_body_needs_no_max_tokens_and_sends_none() -> None:
    body = {"model": "m", "system": "be brief", "messages": [{"role": "user", "content": "hi"}], "tools": [TOOL]}
    out = openai_request_from_messages(body, count_only=True)
    assert out["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert out["tools"][0]["function"]["name"] == "lookup"
    assert "max_tokens" not in out


def test_count_tokens_body_still_needs_messages() -> None:
    with pytest.raises(BadRequest) as caught:
        openai_request_from_messages({"model": "m", "messages": []}, count_only=True)
    assert caught.value.param == "messages"
