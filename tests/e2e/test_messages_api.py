"""The inbound Anthropic Messages API, driven by the real `anthropic` SDK through a real `relaygate serve`.

Non-Anthropic models (the built-in mock, the OpenAI mock, a scripted tool-calling OpenAI upstream) are
reached by translation; Anthropic models (the Anthropic mock) natively; virtual models fall back across
both kinds. The rig is in tests/dialects/anthropic_messages/messages_rig.py.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import anthropic
import orjson
import pytest
from anthropic._constants import ANTHROPIC_API_VERSION

from tests.dialects.anthropic_messages.messages_rig import ANTHROPIC_KEY, Rig, running_rig
from tests.dialects.anthropic_messages.tool_upstream import USAGE, Script
from tests.helpers.manifests import OPENAI_KEY
from tests.upstreams.anthropic_mock import count_input_tokens, echo_reply
from tests.upstreams.openai_mock import RecordedRequest, chat_reply, png_image

HELLO: list[Any] = [{"role": "user", "content": "hello messages api"}]
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def rig_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    yield from running_rig(tmp_path_factory.mktemp("messages"))


@pytest.fixture
def rig(rig_module: Rig) -> Rig:
    return rig_module.reset()


def usage_of(recorded: RecordedRequest) -> dict[str, int]:
    """The usage a mock answered a recorded request with."""
    assert recorded.usage is not None
    return recorded.usage


def create(client: Any, model: str = "mock/echo", **options: Any) -> Any:
    options.setdefault("messages", HELLO)
    return client.messages.create(model=model, max_tokens=256, **options)


# -- translated: built-in mock and OpenAI upstreams ------------------------------------------------------


def test_create_against_mock_provider(rig: Rig) -> None:
    message = create(rig.client())
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "mock/echo"
    assert message.id.startswith("msg_")
    assert [(b.type, b.text) for b in message.content] == [("text", "hello messages api")]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 3


def test_stream_helper_against_mock_provider(rig: Rig) -> None:
    with rig.client().messages.stream(model="mock/echo", max_tokens=256, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "hello messages api"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


def test_raw_stream_events_come_in_anthropic_order(rig: Rig) -> None:
    events = list(create(rig.client(), "oai/gpt-4o", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == chat_reply(HELLO)
    recorded = rig.openai.last("/chat/completions")
    assert events[-2].usage.output_tokens == usage_of(recorded)["completion_tokens"]
    assert events[-2].usage.input_tokens == usage_of(recorded)["prompt_tokens"]


@pytest.mark.parametrize("prefix", ["", "/api/llm"])
def test_sdk_base_urls_reach_messages(rig: Rig, prefix: str) -> None:
    assert create(rig.client(prefix)).content[0].text == "hello messages api"


def test_messages_path_without_v1(rig: Rig) -> None:
    result = rig.gateway.request(
        "POST", "/api/llm/messages", token=rig.token, json={"model": "mock/echo", "max_tokens": 10, "messages": HELLO}
    )
    assert result.status == 200 and result.json()["content"][0]["text"] == "hello messages api"


def test_openai_upstream_receives_translated_request(rig: Rig) -> None:
    # This SDK version no longer has `temperature`; older clients and Claude Code still send it.
    message = create(
        rig.client(),
        "oai/gpt-4o",
        system="be brief",
        stop_sequences=["STOP"],
        metadata={"user_id": "user-42"},
        extra_body={"temperature": 0.5},
    )
    assert message.content[0].text == chat_reply(HELLO)
    recorded = rig.openai.last("/chat/completions")
    assert recorded.header("Authorization") == f"Bearer {OPENAI_KEY}"
    assert rig.token not in str(dict(recorded.headers))
    assert recorded.json == {
        "model": "gpt-4o",
        "max_tokens": 256,
        "temperature": 0.5,
        "stop": ["STOP"],
        "user": "user-42",
        "messages": [{"role": "system", "content": "be brief"}, *HELLO],
    }


def test_stream_asks_openai_upstream_for_usage(rig: Rig) -> None:
    list(create(rig.client(), "oai/gpt-4o", stream=True))
    sent = rig.openai.last("/chat/completions").json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_bearer_token_authenticates_too(rig: Rig) -> None:
    client: Any = anthropic.Anthropic(auth_token=rig.token, base_url=rig.gateway.url, max_retries=0)
    assert create(client).content[0].text == "hello messages api"


def test_image_input_reaches_upstream_as_image_url(rig: Rig) -> None:
    data = base64.b64encode(png_image()).decode()
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "what colour"},
    ]
    message = create(rig.client(), "oai/gpt-4o", messages=[{"role": "user", "content": content}])
    sent = rig.openai.last("/chat/completions").json["messages"]
    assert message.content[0].text == chat_reply(sent)
    assert sent[0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
        {"type": "text", "text": "what colour"},
    ]


# -- tools -------------------------------------------------------------------------------------------


def test_tool_use_answer(rig: Rig) -> None:
    rig.tools.reset(Script("Checking.", [("call_w1", "get_weather", '{"city": "Paris"}')]))
    message = create(rig.client(), "tools/gpt-4o", tools=[WEATHER_TOOL], tool_choice={"type": "any"})
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "text" and message.content[0].text == "Checking."
    tool = message.content[1]
    assert (tool.type, tool.id, tool.name, tool.input) == ("tool_use", "call_w1", "get_weather", {"city": "Paris"})
    sent = rig.tools.requests[-1]
    assert sent["tool_choice"] == "required"
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert message.usage.input_tokens == 40 - 16 and message.usage.cache_read_input_tokens == 16  # see USAGE


def test_tool_use_stream_with_arguments_split_across_chunks(rig: Rig) -> None:
    arguments = '{"city": "Paris", "units": "metric"}'
    rig.tools.reset(
        Script("Let me see.", [("call_a", "get_weather", arguments), ("call_b", "get_weather", '{"city": "Oslo"}')])
    )
    with rig.client().messages.stream(
        model="tools/gpt-4o", max_tokens=256, messages=HELLO, tools=[WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta" and e.index == 1
    ]
    assert len(fragments) > 3 and "".join(fragments) == arguments
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Let me see."
    assert final.content[1].input == {"city": "Paris", "units": "metric"}
    assert final.content[2].input == {"city": "Oslo"} and final.content[2].id == "call_b"
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == USAGE["completion_tokens"]


def test_tool_results_reach_upstream_as_tool_messages(rig: Rig) -> None:
    rig.tools.reset(Script("It is sunny."))
    history = [
        *HELLO,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_w1", "name": "get_weather", "input": {"city": "Paris"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_w1", "content": "sunny, 21C"}]},
    ]
    message = create(rig.client(), "tools/gpt-4o", tools=[WEATHER_TOOL], messages=history)
    assert message.content[0].text == "It is sunny." and message.stop_reason == "end_turn"
    sent = rig.tools.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0] == {
        "id": "call_w1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 21C"}


# -- errors ------------------------------------------------------------------------------------------


def test_bad_token_is_authentication_error(rig: Rig) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        create(rig.client(api_key="rg-not-a-real-token"))
    body = caught.value.body
    assert caught.value.status_code == 401
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "authentication_error" and body["error"]["message"]


def test_unknown_model_is_not_found_error(rig: Rig) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        create(rig.client(), "nope/nothing")
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "nope/nothing" in caught.value.message


def test_untranslatable_request_is_invalid_request_error(rig: Rig) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(rig.client(), "oai/gpt-4o", tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "web_search_20250305" in caught.value.message
    assert rig.openai.requests_to("/chat/completions") == []


def test_upstream_error_keeps_status_and_message(rig: Rig) -> None:
    rig.openai.fail_next(429, message="slow down please")
    with pytest.raises(anthropic.RateLimitError) as caught:
        create(rig.client(), "oai/gpt-4o")
    assert caught.value.body["error"] == {
        "type": "rate_limit_error",
        "message": "slow down please",  # type: ignore[index]
        "code": "rate_limit_exceeded",
    }


def test_error_after_content_ends_stream_with_error_event(rig: Rig) -> None:
    rig.openai.fail_stream_after(3, message="upstream fell over")
    with pytest.raises(anthropic.APIStatusError) as caught:
        list(create(rig.client(), "oai/gpt-4o", stream=True, messages=[{"role": "user", "content": "a b c d e f"}]))
    assert caught.value.body["error"]["message"] == "upstream fell over"  # type: ignore[index]


def test_wrong_method_is_anthropic_shaped(rig: Rig) -> None:
    result = rig.gateway.request("GET", "/v1/messages", token=rig.token)
    assert result.status == 405
    assert result.json()["type"] == "error" and result.json()["error"]["type"] == "invalid_request_error"


def test_rate_limit_refusal_is_anthropic_shaped(rig: Rig) -> None:
    assert create(rig.client(), "mock/limited").content[0].text == "hello messages api"
    with pytest.raises(anthropic.RateLimitError) as caught:
        create(rig.client(), "mock/limited")
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "one-per-minute" in caught.value.response.headers["x-tfy-applied-configurations"]


@pytest.mark.parametrize("model", ["oai/gpt-4o", "mock/echo"])
def test_count_tokens_needs_a_model_whose_provider_can_count(rig: Rig, model: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        rig.client().messages.count_tokens(model=model, messages=HELLO)
    assert caught.value.body["error"]["message"] == (  # type: ignore[index]
        "count_tokens is only available for models of providers anthropic, aws-bedrock, google-gemini, "
        f"google-vertex; '{model}' is not served by one"
    )
    assert rig.openai.requests == []


# -- routing and the request log ----------------------------------------------------------------------


def test_virtual_model_falls_back_from_dead_anthropic_to_openai(rig: Rig) -> None:
    raw = rig.client().messages.with_raw_response.create(model="vmod/claude-then-gpt", max_tokens=64, messages=HELLO)
    assert raw.headers["x-tfy-resolved-model"] == "oai/gpt-4o"
    assert raw.parse().content[0].text == chat_reply(HELLO)
    with rig.client().messages.stream(model="vmod/claude-then-gpt", max_tokens=64, messages=HELLO) as stream:
        assert "".join(stream.text_stream) == chat_reply(HELLO)


def test_stream_error_before_content_falls_back(rig: Rig) -> None:
    rig.openai.fail_stream_after(1)  # the role chunk, then an error event
    raw = rig.client().messages.with_raw_response.create(
        model="vmod/gpt-then-echo", max_tokens=64, messages=HELLO, stream=True
    )
    assert raw.headers["x-tfy-resolved-model"] == "mock/echo"
    text = "".join(e.delta.text for e in raw.parse() if e.type == "content_block_delta")
    assert text == "hello messages api"
    applied = orjson.loads(raw.headers["x-tfy-applied-configurations"])["load_balancing"]
    assert applied["targets_tried"] == ["oai/gpt-4o-fb", "mock/echo"]


def test_ttft_timeout_falls_back(rig: Rig) -> None:
    rig.openai.chunk_delay = 1.0  # the first content chunk comes a second after the role chunk
    raw = rig.client().messages.with_raw_response.create(
        model="vmod/slow-then-echo",
        max_tokens=64,
        messages=HELLO,
        stream=True,
        extra_headers={"x-tfy-ttft-timeout-ms": "300"},
    )
    assert raw.headers["x-tfy-resolved-model"] == "mock/echo"
    assert "".join(e.delta.text for e in raw.parse() if e.type == "content_block_delta") == "hello messages api"


def test_request_log_has_tokens_for_messages(rig: Rig) -> None:
    raw = rig.client().messages.with_raw_response.create(model="oai/gpt-4o", max_tokens=64, messages=HELLO)
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    recorded = rig.openai.last("/chat/completions")
    assert row["status"] == 200 and row["requested_model"] == "oai/gpt-4o" and row["provider"] == "openai"
    assert row["input_tokens"] == usage_of(recorded)["prompt_tokens"]
    assert row["output_tokens"] == usage_of(recorded)["completion_tokens"]
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


def test_request_log_has_tokens_for_streamed_messages(rig: Rig) -> None:
    rig.tools.reset(Script("streamed words"))
    raw = rig.client().messages.with_raw_response.create(
        model="tools/gpt-4o", max_tokens=64, messages=HELLO, stream=True
    )
    list(raw.parse())
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["streaming"] is True and row["ttft_ms"] is not None
    assert row["input_tokens"] == USAGE["prompt_tokens"] and row["output_tokens"] == USAGE["completion_tokens"]


def test_request_log_marks_truncated_stream(rig: Rig) -> None:
    rig.openai.fail_stream_after(3)
    raw = rig.client().messages.with_raw_response.create(
        model="oai/gpt-4o", max_tokens=64, stream=True, messages=[{"role": "user", "content": "a b c d e f"}]
    )
    with pytest.raises(anthropic.APIStatusError):
        list(raw.parse())
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["error_type"] == "api_error"


# -- native relay to Anthropic -------------------------------------------------------------------------


def test_native_create_relays_the_callers_body(rig: Rig) -> None:
    message = create(rig.client(), "claude/sonnet", system="be brief", stop_sequences=["never"])
    assert message.content[0].text == echo_reply("hello messages api")
    assert message.model == "claude/sonnet"  # the name the caller used, as for translated answers
    recorded = rig.claude.last()
    assert recorded.json == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": HELLO,
        "system": "be brief",
        "stop_sequences": ["never"],
    }
    assert recorded.header("x-api-key") == ANTHROPIC_KEY and rig.token not in str(dict(recorded.headers))
    assert message.usage.input_tokens == usage_of(recorded)["input_tokens"]


def test_native_answers_name_the_model_as_the_caller_did(rig: Rig) -> None:
    raw = rig.client().messages.with_raw_response.create(
        model="claude/sonnet", max_tokens=64, messages=HELLO, stream=True
    )
    events = list(raw.parse())
    assert events[0].type == "message_start" and events[0].message.model == "claude/sonnet"
    assert raw.headers["x-tfy-provider-model"] == "claude-sonnet-4-5"
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["extra"]["provider_model"] == "claude-sonnet-4-5"


def test_native_forwards_anthropic_version_and_beta(rig: Rig) -> None:
    create(rig.client(), "claude/sonnet", extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
    recorded = rig.claude.last()
    assert recorded.header("anthropic-version") == ANTHROPIC_API_VERSION  # what the SDK sent
    assert recorded.header("anthropic-beta") == "context-1m-2025-08-07"


def test_native_relays_sampling_params_under_the_callers_older_version(rig: Rig) -> None:
    # Claude Code and older SDKs send anthropic-version 2023-06-01 with temperature; both reach the upstream.
    create(
        rig.client(),
        "claude/sonnet",
        extra_headers={"anthropic-version": "2023-06-01"},
        extra_body={"temperature": 0.3},
    )
    recorded = rig.claude.last()
    assert recorded.header("anthropic-version") == "2023-06-01" and recorded.json["temperature"] == 0.3


def test_native_stream_with_tool_use(rig: Rig) -> None:
    with rig.client().messages.stream(
        model="claude/sonnet", max_tokens=256, tools=[WEATHER_TOOL], tool_choice={"type": "any"}, messages=HELLO
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[-1].type == "tool_use"
    assert final.content[-1].input == {"city": "hello messages api"}
    assert sum(1 for e in events if e.type == "content_block_delta") > 2
    assert final.usage.output_tokens == usage_of(rig.claude.last())["output_tokens"]


def test_native_count_tokens(rig: Rig) -> None:
    counted = rig.client().messages.count_tokens(model="claude/sonnet", messages=HELLO)
    recorded = rig.claude.last("/count_tokens")
    assert recorded.json == {"model": "claude-sonnet-4-5", "messages": HELLO}
    assert counted.input_tokens == count_input_tokens(recorded.json)


def test_native_error_keeps_anthropic_body_and_status(rig: Rig) -> None:
    rig.claude.fail_next(400, message="messages.0.content: text content blocks must be non-empty")
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(rig.client(), "claude/sonnet")
    assert caught.value.body["error"] == {  # type: ignore[index]
        "type": "invalid_request_error",
        "message": "messages.0.content: text content blocks must be non-empty",
    }


def test_native_overloaded_falls_back_to_openai(rig: Rig) -> None:
    rig.claude.fail_next(529)
    raw = rig.client().messages.with_raw_response.create(
        model="vmod/overloaded-then-gpt", max_tokens=64, messages=HELLO
    )
    assert raw.headers["x-tfy-resolved-model"] == "oai/gpt-4o"
    assert raw.parse().content[0].text == chat_reply(HELLO)
    assert len(rig.claude.requests_to("/v1/messages")) == 1


def test_native_stream_error_before_content_falls_back_to_openai(rig: Rig) -> None:
    rig.claude.fail_stream_after(1)  # message_start, then an overloaded error event
    with rig.client().messages.stream(model="vmod/stream-error-then-gpt", max_tokens=64, messages=HELLO) as stream:
        assert "".join(stream.text_stream) == chat_reply(HELLO)
    assert len(rig.claude.requests_to("/v1/messages")) == 1  # tried first, failed before content
    assert rig.openai.last("/chat/completions").json["stream"] is True


def test_native_stream_error_after_content_reaches_the_caller(rig: Rig) -> None:
    rig.claude.fail_stream_after(5)
    raw = rig.client().messages.with_raw_response.create(
        model="claude/sonnet", max_tokens=64, messages=HELLO, stream=True
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        list(raw.parse())
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}  # type: ignore[index]
    row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
    assert row["error_type"] == "overloaded_error"


def test_native_usage_with_cache_tokens_lands_in_the_log(rig: Rig) -> None:
    system = [{"type": "text", "text": "a long stable system prompt " * 20, "cache_control": {"type": "ephemeral"}}]
    rows = []
    for stream in (False, True):
        raw = rig.client().messages.with_raw_response.create(
            model="claude/sonnet", max_tokens=64, system=system, messages=HELLO, stream=stream
        )
        if stream:
            list(raw.parse())  # the log row is written once the stream is consumed
        usage = usage_of(rig.claude.last())
        row = rig.gateway.wait_for_log(raw.headers["x-request-id"])
        total = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
        assert (row["input_tokens"], row["output_tokens"]) == (total, usage["output_tokens"])
        assert row["extra"]["usage_details"] == {
            "cached_tokens": usage["cache_read_input_tokens"],
            "cache_write_tokens": usage["cache_creation_input_tokens"],
        }
        assert row["cost_usd"] is not None and row["cost_usd"] > 0
        rows.append(usage)
    assert rows[0]["cache_creation_input_tokens"] > 0 and rows[1]["cache_read_input_tokens"] > 0
