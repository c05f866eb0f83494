"""Anthropic behind the gateway: a real `relaygate serve` in front of the mock Messages API, driven by the
real `openai` SDK (chat, streams, tools with split arguments, images, errors, fallback, usage in the log)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import token_secret_of
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import ALICE
from tests.upstreams.anthropic_mock import AnthropicMock, echo_reply, instance_for_schema, thinking_text, tool_reply
from tests.upstreams.openai_mock import count_tokens, png_image

KEY = "sk-ant-e2e-upstream-secret"
SONNET = "claude/sonnet"
CONFIG = """
type: provider-account/anthropic
name: claude
base_url: http://127.0.0.1:{port}
auth_data: {type: api-key, api_key: sk-ant-e2e-upstream-secret}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-sonnet-4-6, model_types: [chat]}
  - {name: haiku, type: integration/model/anthropic, model_id: claude-haiku-4-5, model_types: [chat]}
  - {name: limited, type: integration/model/anthropic, model_id: claude-sonnet-4-6, model_types: [chat]}
---
type: provider-account/virtual-model
name: vmod
integrations:
  - name: claude-fallback
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets:
        - {target: claude/sonnet, priority: 0}
        - {target: claude/haiku, priority: 1}
"""
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["location"],
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}},
}


@dataclass
class Rig:
    gateway: GatewayThread
    mock: AnthropicMock
    token: str

    def client(self, **options: Any) -> openai.OpenAI:
        return self.gateway.client(self.token, **options)

    def chat(self, text: str, model: str = SONNET, **options: Any) -> Any:
        return self.client().chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}], **options
        )

    def stream(self, text: str, model: str = SONNET, **options: Any) -> list[Any]:
        return list(self.chat(text, model, stream=True, **options))


@pytest.fixture(scope="module")
def module_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    mock = AnthropicMock(KEY).start_in_thread()
    gateway = GatewayThread(tmp_path_factory.mktemp("anthropic"), CONFIG.replace("{port}", str(mock.port)))
    try:
        gateway.start()
        yield Rig(gateway, mock, gateway.create_token(user=ALICE))
    finally:
        gateway.stop()
        mock.stop_thread()


@pytest.fixture
def rig(module_rig: Rig) -> Rig:
    module_rig.mock.reset()
    return module_rig


def content_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- chat ----------------------------------------------------------------------------------------------


def test_chat_answer_comes_back_openai_shaped(rig: Rig) -> None:
    completion = rig.chat("hello claude")
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == echo_reply("hello claude")
    assert completion.choices[0].finish_reason == "stop"
    sent = rig.mock.last().usage
    assert sent is not None and completion.usage is not None
    assert completion.usage.prompt_tokens == sent["input_tokens"]
    assert completion.usage.completion_tokens == sent["output_tokens"]


def test_upstream_gets_a_messages_request_with_provider_key_not_caller_token(rig: Rig) -> None:
    rig.client().chat.completions.create(
        model=SONNET, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    )
    recorded = rig.mock.last()
    assert recorded.path == "/v1/messages"
    assert recorded.json == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 4096,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert recorded.header("x-api-key") == KEY and recorded.header("anthropic-version") == "2023-06-01"
    for secret in (rig.token, token_secret_of(rig.token)):
        assert all(secret not in value for value in recorded.headers.values())


def test_stream_relays_content_then_finish(rig: Rig) -> None:
    chunks = rig.stream("stream these words please")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert content_of(chunks) == echo_reply("stream these words please")
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks), "usage was not asked for"
    assert "stream_options" not in rig.mock.last().json


def test_stream_usage_chunk_when_asked(rig: Rig) -> None:
    chunks = rig.stream("count me", stream_options={"include_usage": True})
    sent = rig.mock.last().usage
    assert sent is not None and chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == sent["input_tokens"]
    assert chunks[-1].usage.completion_tokens == sent["output_tokens"]


# -- tools ---------------------------------------------------------------------------------------------


def test_tool_call_answer(rig: Rig) -> None:
    completion = rig.chat("use get_weather for Rome", tools=[WEATHER])
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content == "Calling get_weather."
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("toolu_")
    expected = instance_for_schema(WEATHER["function"]["parameters"], "use get_weather for Rome")
    assert orjson.loads(call.function.arguments) == expected


def test_streamed_tool_arguments_split_across_chunks_reassemble(rig: Rig) -> None:
    chunks = rig.stream("get_weather and get_time for Tokyo", tools=[WEATHER, TIME], tool_choice="auto")
    calls: dict[int, dict[str, Any]] = {}
    fragments = 0
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            if delta.id:
                entry["id"], entry["name"] = delta.id, delta.function.name
            if delta.function and delta.function.arguments:
                entry["arguments"] += delta.function.arguments
                fragments += 1
    assert sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert fragments > 6, "arguments must have arrived in many pieces"
    text = "get_weather and get_time for Tokyo"
    assert orjson.loads(calls[0]["arguments"]) == instance_for_schema(WEATHER["function"]["parameters"], text)
    assert orjson.loads(calls[1]["arguments"]) == instance_for_schema(TIME["function"]["parameters"], text)
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "tool_calls"


def test_tool_results_go_back_as_tool_result_blocks(rig: Rig) -> None:
    first = rig.chat("get_weather in Lima", tools=[WEATHER], parallel_tool_calls=False)
    call = first.choices[0].message.tool_calls[0]
    followup = rig.client().chat.completions.create(
        model=SONNET,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "get_weather in Lima"},
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24C"},
        ],
    )
    assert followup.choices[0].message.content == tool_reply("sunny, 24C")
    sent = rig.mock.last().json
    assert sent["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 24C"}],
    }
    assert rig.mock.requests[0].json["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


# -- images and structured output ---------------------------------------------------------------------


def test_images_become_base64_and_url_sources(rig: Rig) -> None:
    data = base64.b64encode(png_image()).decode()
    completion = rig.client().chat.completions.create(
        model=SONNET,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == echo_reply("what is in these?")
    blocks = rig.mock.last().json["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


def test_json_schema_uses_structured_outputs(rig: Rig) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    completion = rig.chat(
        "Paris", response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    )
    assert orjson.loads(completion.choices[0].message.content or "") == {"city": "Paris"}
    assert rig.mock.last().json["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_json_object_comes_back_as_content_through_the_forced_tool(rig: Rig) -> None:
    completion = rig.chat("a colour", response_format={"type": "json_object"})
    assert orjson.loads(completion.choices[0].message.content or "") == {"echo": "a colour"}
    assert completion.choices[0].finish_reason == "stop" and completion.choices[0].message.tool_calls is None
    chunks = rig.stream("a colour", response_format={"type": "json_object"})
    assert orjson.loads(content_of(chunks)) == {"echo": "a colour"}


# -- thinking ------------------------------------------------------------------------------------------


def test_thinking_is_hidden_by_default_and_exposed_when_not_strict(rig: Rig) -> None:
    hidden = rig.chat("think about it", reasoning_effort="high")
    assert rig.mock.last().json["thinking"] == {"type": "adaptive"}
    assert "reasoning_content" not in (hidden.choices[0].message.model_extra or {})
    shown = rig.client().chat.completions.create(
        model=SONNET,
        messages=[{"role": "user", "content": "think about it"}],
        reasoning_effort="high",
        extra_headers={"x-tfy-strict-openai": "false"},
    )
    extra = shown.choices[0].message.model_extra or {}
    assert extra["reasoning_content"] == thinking_text("think about it")
    assert extra["thinking_blocks"][0]["type"] == "thinking" and extra["thinking_blocks"][0]["signature"]
    assert shown.usage is not None and shown.usage.completion_tokens_details is not None
    assert shown.usage.completion_tokens_details.reasoning_tokens == count_tokens(thinking_text("think about it"))


def test_reasoning_effort_on_a_model_without_adaptive_thinking_sends_a_budget(rig: Rig) -> None:
    shown = rig.client().chat.completions.create(
        model="claude/haiku",
        messages=[{"role": "user", "content": "think it over"}],
        reasoning_effort="medium",
        extra_headers={"x-tfy-strict-openai": "false"},
    )
    sent = rig.mock.last().json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048} and "output_config" not in sent
    assert sent["max_tokens"] > 2048
    assert (shown.choices[0].message.model_extra or {})["reasoning_content"] == thinking_text("think it over")


# -- sampling and stop sequences -----------------------------------------------------------------------


def test_temperature_with_top_p_reaches_the_model_as_temperature_only(rig: Rig) -> None:
    completion = rig.chat("sample me", temperature=0.4, top_p=0.9)
    assert completion.choices[0].message.content == echo_reply("sample me")
    sent = rig.mock.last().json
    assert sent["temperature"] == 0.4 and "top_p" not in sent


def test_whitespace_stop_sequence_is_a_400_naming_stop_without_an_upstream_call(rig: Rig) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        rig.chat("stop at newlines", stop=["END", "\n"])
    assert assert_error_shape(caught.value.response.json())["param"] == "stop"
    assert rig.mock.requests == []


# -- errors and fallback -------------------------------------------------------------------------------


def test_rate_limit_keeps_the_upstreams_retry_after(rig: Rig) -> None:
    rig.mock.fail_next(429, headers={"retry-after": "7"})  # cools claude/limited down: no other test uses it
    with pytest.raises(openai.RateLimitError) as caught:
        rig.chat("too fast", model="claude/limited")
    assert caught.value.response.headers["retry-after"] == "7"
    assert assert_error_shape(caught.value.response.json())["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    "status, error_type, exception, expected_status",
    [
        (400, "invalid_request_error", openai.BadRequestError, 400),
        (404, "not_found_error", openai.NotFoundError, 404),
        (429, "rate_limit_error", openai.RateLimitError, 429),
        (529, "overloaded_error", openai.InternalServerError, 503),
    ],
)
def test_upstream_errors_are_openai_shaped(
    rig: Rig, status: int, error_type: str, exception: type[Exception], expected_status: int
) -> None:
    rig.mock.fail_next(status, message=f"upstream says {error_type}")
    with pytest.raises(exception) as caught:
        rig.chat("fail me")
    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == expected_status
    error = assert_error_shape(caught.value.response.json())
    assert error["message"] == f"upstream says {error_type}"
    assert KEY not in caught.value.response.text


def test_overloaded_is_retried_as_a_503(rig: Rig) -> None:
    rig.mock.fail_next(529)
    completion = rig.client().chat.completions.create(
        model=SONNET,
        messages=[{"role": "user", "content": "retry me"}],
        extra_headers={"x-tfy-retry-config": '{"attempts": 1, "onStatusCodes": [503]}'},
    )
    assert completion.choices[0].message.content == echo_reply("retry me")
    assert len(rig.mock.requests) == 2


def test_overloaded_falls_back_to_the_next_target(rig: Rig) -> None:
    rig.mock.fail_next(529)
    raw = rig.client().chat.completions.with_raw_response.create(
        model="vmod/claude-fallback", messages=[{"role": "user", "content": "fall back"}]
    )
    assert raw.parse().choices[0].message.content == echo_reply("fall back")
    assert raw.headers["x-tfy-resolved-model"] == "claude/haiku"
    assert [r.json["model"] for r in rig.mock.requests] == ["claude-sonnet-4-6", "claude-haiku-4-5"]


def test_error_event_before_content_falls_back_in_a_stream(rig: Rig) -> None:
    rig.mock.fail_stream_after(1)  # message_start, then overloaded_error
    chunks = rig.stream("stream fallback", model="vmod/claude-fallback")
    assert content_of(chunks) == echo_reply("stream fallback")
    assert [r.json["model"] for r in rig.mock.requests] == ["claude-sonnet-4-6", "claude-haiku-4-5"]


def test_error_event_after_content_reaches_the_client_without_done(rig: Rig) -> None:
    rig.mock.fail_stream_after(4)  # message_start, block start, ping, first word
    with rig.client().chat.completions.with_streaming_response.create(
        model=SONNET, messages=[{"role": "user", "content": "a b c d e"}], stream=True
    ) as response:
        body = response.read()
    events = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert b"[DONE]" not in events
    assert orjson.loads(events[-1])["error"]["code"] == "overloaded_error"
    assert orjson.loads(events[1])["choices"][0]["delta"] == {"content": "echo: "}


def test_untranslatable_request_is_a_400_without_an_upstream_call(rig: Rig) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        rig.chat("two please", n=2)
    assert assert_error_shape(caught.value.response.json())["param"] == "n"
    assert rig.mock.requests == []


# -- usage in the request log --------------------------------------------------------------------------


def cached_call(rig: Rig, question: str, **options: Any) -> tuple[str, Any]:
    system: Any = [{"type": "text", "text": "shared reference text " * 30, "cache_control": {"type": "ephemeral"}}]
    messages: Any = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    raw = rig.client().chat.completions.with_raw_response.create(model=SONNET, messages=messages, **options)
    parsed = raw.parse()
    return str(raw.headers["x-request-id"]), list(parsed) if options.get("stream") else parsed


def test_cache_tokens_are_counted_and_logged(rig: Rig) -> None:
    first_id, first = cached_call(rig, "first question")
    second_id, second = cached_call(rig, "second question")
    sent = rig.mock.requests[1].usage
    assert sent is not None and sent["cache_read_input_tokens"] == 90
    assert first.usage.prompt_tokens_details.model_extra["cache_creation_tokens"] == 90
    assert second.usage.prompt_tokens_details.cached_tokens == 90
    assert second.usage.prompt_tokens == sent["input_tokens"] + 90
    row = rig.gateway.wait_for_log(second_id)
    assert row["provider"] == "anthropic" and row["status"] == 200
    assert row["input_tokens"] == second.usage.prompt_tokens
    assert row["output_tokens"] == second.usage.completion_tokens
    assert row["extra"]["usage_details"] == {"cached_tokens": 90, "cache_write_tokens": 0}
    assert rig.gateway.wait_for_log(first_id)["extra"]["usage_details"] == {
        "cached_tokens": 0,
        "cache_write_tokens": 90,
    }


def test_streamed_usage_is_logged(rig: Rig) -> None:
    cached_call(rig, "warm the cache")
    request_id, _ = cached_call(rig, "streamed question", stream=True)
    sent = rig.mock.last().usage
    assert sent is not None
    row = rig.gateway.wait_for_log(request_id)
    assert row["streaming"] is True
    assert row["input_tokens"] == sent["input_tokens"] + sent["cache_read_input_tokens"]
    assert row["output_tokens"] == sent["output_tokens"]
    assert row["extra"]["usage_details"]["cached_tokens"] == 90
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


def test_check_refuses_anthropic_embeddings(gateway_factory: GatewayFactory) -> None:
    account = CONFIG.split("---")[0]
    text = account.replace("{port}", "1").replace("model_types: [chat]}", "model_types: [embedding]}", 1)
    gateway = gateway_factory(text, start=False)
    result = gateway.check(gateway.config_path)
    assert result.returncode != 0 and "does not serve embedding" in result.stdout + result.stderr
