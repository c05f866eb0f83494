"""The mock Anthropic API is wire-faithful: the real `anthropic` SDK parses it, and it refuses what the API refuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.helpers.gateway import http_request
from tests.upstreams.anthropic_mock import (
    AnthropicMock,
    echo_reply,
    instance_for_schema,
    signature_for,
    thinking_text,
    tool_reply,
)

KEY = "sk-ant-mock-test"
MODEL = "claude-sonnet-4-6"
WEATHER: Any = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}


@pytest.fixture(scope="module")
def server() -> Iterator[AnthropicMock]:
    with AnthropicMock(KEY).running() as mock:
        yield mock


@pytest.fixture
def mock(server: AnthropicMock) -> AnthropicMock:
    server.reset()
    return server


_OPENED: list[anthropic.Anthropic] = []  # SDK clients of the running test, closed after it (their sockets too)


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def client(mock: AnthropicMock, **options: Any) -> anthropic.Anthropic:
    made = anthropic.Anthropic(api_key=options.pop("api_key", KEY), base_url=mock.url, max_retries=0, **options)
    _OPENED.append(made)
    return made


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def bad_request(mock: AnthropicMock, **params: Any) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(mock).messages.create(**{"model": MODEL, "max_tokens": 100, "messages": user("hi"), **params})
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


def test_sdk_parses_a_text_answer(mock: AnthropicMock) -> None:
    message = client(mock).messages.create(model=MODEL, max_tokens=100, messages=user("hello mock"))
    assert message.content[0].type == "text" and message.content[0].text == echo_reply("hello mock")
    assert message.stop_reason == "end_turn" and message.usage.input_tokens > 0
    assert mock.last().usage == {
        "input_tokens": message.usage.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": message.usage.output_tokens,
    }


def test_sdk_stream_accumulates_to_the_same_answer_with_split_tool_input(mock: AnthropicMock) -> None:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 300,
        "tools": [WEATHER],
        "messages": user("get_weather for Paris please"),
        "thinking": {"type": "adaptive"},
    }
    plain = client(mock).messages.create(**params)
    with client(mock).messages.stream(**params) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"] == [b.type for b in plain.content]
    tool = final.content[2]
    assert tool.type == "tool_use" and tool.input == {"location": "get_weather for Paris please"}
    json_deltas = [e for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
    assert len(json_deltas) > 3, "tool input must arrive in several small pieces"
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.signature == signature_for(
        thinking_text("get_weather for Paris please")
    )
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == plain.usage.output_tokens


def test_tool_results_are_answered(mock: AnthropicMock) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "get_weather in Oslo"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Oslo"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"}]},
    ]
    message = client(mock).messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=messages)
    assert message.content[0].type == "text" and message.content[0].text == tool_reply("rain")


def test_structured_output_follows_the_schema(mock: AnthropicMock) -> None:
    schema: Any = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    message = client(mock).messages.create(
        model=MODEL,
        max_tokens=100,
        messages=user("Ann"),
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.content[0].type == "text"
    assert (
        message.content[0].text
        == '{"name":"Ann","age":1}'
        == __import__("orjson").dumps(instance_for_schema(schema, "Ann")).decode()
    )


def test_missing_and_wrong_keys_are_401(mock: AnthropicMock) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(mock, api_key="sk-wrong").messages.create(model=MODEL, max_tokens=5, messages=user("x"))
    assert caught.value.body["error"]["message"] == "invalid x-api-key"  # type: ignore[index]
    result = http_request(
        "POST", mock.url + "/v1/messages", json={"model": MODEL}, headers={"anthropic-version": "2023-06-01"}
    )
    assert result.status == 401 and result.json()["error"]["message"] == "x-api-key header is required"


def test_x_api_key_wins_over_bearer(mock: AnthropicMock) -> None:
    result = http_request(
        "POST",
        mock.url + "/v1/messages",
        json={"model": MODEL, "max_tokens": 5, "messages": user("x")},
        headers={"x-api-key": KEY, "Authorization": "Bearer nope", "anthropic-version": "2023-06-01"},
    )
    assert result.status == 200


def test_missing_version_header_is_400(mock: AnthropicMock) -> None:
    result = http_request(
        "POST",
        mock.url + "/v1/messages",
        json={"model": MODEL, "max_tokens": 5, "messages": user("x")},
        headers={"x-api-key": KEY},
    )
    assert result.status == 400
    assert result.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"},
        "request_id": result.json()["request_id"],
    }


def test_openai_only_fields_are_refused(mock: AnthropicMock) -> None:
    message = bad_request(mock, extra_body={"stream_options": {"include_usage": True}})
    assert message == "stream_options: Extra inputs are not permitted"


def test_max_tokens_is_required(mock: AnthropicMock) -> None:
    result = http_request(
        "POST",
        mock.url + "/v1/messages",
        json={"model": MODEL, "messages": user("x")},
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    )
    assert result.json()["error"]["message"] == "max_tokens: Field required"


def test_system_role_in_messages_is_refused_except_on_models_that_take_it(mock: AnthropicMock) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}]
    assert 'Unexpected role "system"' in bad_request(mock, messages=messages)
    ok = client(mock).messages.create(model="claude-opus-4-8", max_tokens=20, messages=messages)  # type: ignore[arg-type]
    assert ok.stop_reason == "end_turn"


def test_tool_role_is_refused(mock: AnthropicMock) -> None:
    messages = [{"role": "tool", "content": "x"}]
    assert bad_request(mock, messages=messages) == "messages.0.role: Input should be 'user' or 'assistant'"


def test_sampling_parameters_depend_on_the_api_version(mock: AnthropicMock) -> None:
    assert bad_request(mock, extra_body={"temperature": 0.5}) == "temperature: Extra inputs are not permitted"
    old = client(mock, default_headers={"anthropic-version": "2023-06-01"})
    assert old.messages.create(model=MODEL, max_tokens=5, messages=user("x"), extra_body={"temperature": 0.5})
    with pytest.raises(anthropic.BadRequestError):
        old.messages.create(model=MODEL, max_tokens=5, messages=user("x"), extra_body={"temperature": 1.5})


def test_unanswered_tool_use_is_refused(mock: AnthropicMock) -> None:
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": "no result"},
    ]
    message = bad_request(mock, messages=messages, tools=[WEATHER])
    assert message.startswith("messages.1: `tool_use` ids were found without `tool_result` blocks immediately after:")


def test_empty_text_and_bad_images_are_refused(mock: AnthropicMock) -> None:
    assert (
        bad_request(mock, messages=[{"role": "user", "content": ""}])
        == "messages.0: user messages must have non-empty content"
    )
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "Qk0="}}
    assert "media_type" in bad_request(mock, messages=[{"role": "user", "content": [image]}])


def test_thinking_budget_must_stay_below_max_tokens(mock: AnthropicMock) -> None:
    message = bad_request(mock, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 4000})
    assert message.startswith("`max_tokens` must be greater than `thinking.budget_tokens`")


def test_temperature_with_top_p_is_refused_from_claude_4_1_on(mock: AnthropicMock) -> None:
    old = client(mock, default_headers={"anthropic-version": "2023-06-01"})
    pair = {"temperature": 0.5, "top_p": 0.9}
    with pytest.raises(anthropic.BadRequestError) as caught:
        old.messages.create(model=MODEL, max_tokens=5, messages=user("x"), extra_body=pair)
    assert "`temperature` and `top_p` cannot both be specified" in caught.value.message
    assert old.messages.create(model="claude-3-7-sonnet-20250219", max_tokens=5, messages=user("x"), extra_body=pair)


def test_adaptive_thinking_is_refused_before_claude_4_6(mock: AnthropicMock) -> None:
    message = bad_request(mock, model="claude-sonnet-4-5-20250929", thinking={"type": "adaptive"})
    assert "adaptive" in message
    budget = client(mock).messages.create(
        model="claude-haiku-4-5",
        max_tokens=2000,
        messages=user("x"),
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert budget.content[0].type == "thinking"


def test_thinking_beside_a_forced_tool_is_refused(mock: AnthropicMock) -> None:
    message = bad_request(
        mock,
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[WEATHER],
        tool_choice={"type": "any"},
    )
    assert message == "Thinking may not be enabled when tool_choice forces tool use."


def test_whitespace_stop_sequences_are_refused(mock: AnthropicMock) -> None:
    assert bad_request(mock, stop_sequences=["\n"]) == "stop_sequences: each stop sequence must contain non-whitespace"
    assert bad_request(mock, stop_sequences=[""]) == "stop_sequences: each stop sequence must be non-empty"


def test_prompt_cache_is_written_then_read(mock: AnthropicMock) -> None:
    system: Any = [{"type": "text", "text": "a long shared context " * 20, "cache_control": {"type": "ephemeral"}}]
    first = client(mock).messages.create(model=MODEL, max_tokens=50, system=system, messages=user("q1"))
    second = client(mock).messages.create(model=MODEL, max_tokens=50, system=system, messages=user("q2"))
    assert first.usage.cache_creation_input_tokens == 80 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == 80 and second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens


def test_count_tokens_matches_the_uncached_prompt(mock: AnthropicMock) -> None:
    counted = client(mock).messages.count_tokens(model=MODEL, messages=user("four words right here"))
    answered = client(mock).messages.create(model=MODEL, max_tokens=50, messages=user("four words right here"))
    assert counted.input_tokens == answered.usage.input_tokens
    with pytest.raises(anthropic.BadRequestError):
        client(mock).messages.count_tokens(model=MODEL, messages=user("x"), extra_body={"max_tokens": 5})


def test_stop_sequences_and_max_tokens(mock: AnthropicMock) -> None:
    stopped = client(mock).messages.create(
        model=MODEL, max_tokens=50, messages=user("one two three"), stop_sequences=[" two"]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == " two"
    assert stopped.content[0].type == "text" and stopped.content[0].text == "echo: one"
    cut = client(mock).messages.create(model=MODEL, max_tokens=2, messages=user("one two three"))
    assert cut.stop_reason == "max_tokens" and cut.content[0].type == "text" and cut.content[0].text == "echo: one "


def test_injected_overload_is_a_529(mock: AnthropicMock) -> None:
    mock.fail_next(529)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client(mock).messages.create(model=MODEL, max_tokens=5, messages=user("x"))
    assert caught.value.status_code == 529
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}  # type: ignore[index]


def test_injected_error_event_mid_stream(mock: AnthropicMock) -> None:
    mock.fail_stream_after(3)
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client(mock).messages.stream(model=MODEL, max_tokens=50, messages=user("a b c d")) as stream:
            list(stream)
    assert "overloaded_error" in str(caught.value)


def test_injected_refusal(mock: AnthropicMock) -> None:
    mock.refuse_next()
    message = client(mock).messages.create(model=MODEL, max_tokens=50, messages=user("x"))
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None and message.stop_details.type == "refusal"
