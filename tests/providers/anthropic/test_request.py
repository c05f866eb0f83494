"""OpenAI chat body -> Messages API body: the rules the golden cases do not spell out one by one."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.errors import BadRequest
from relaygate.providers.anthropic.request import (
    DEFAULT_MAX_TOKENS,
    has_adaptive_thinking,
    to_anthropic_request,
    uses_json_tool,
)

USER = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


def translate(**fields: Any) -> dict[str, Any]:
    return to_anthropic_request({"model": "claude-sonnet-4-6", "messages": USER, **fields})


def refused(**fields: Any) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        translate(**fields)
    return caught.value


def test_max_tokens_defaults_when_absent() -> None:
    assert translate()["max_tokens"] == DEFAULT_MAX_TOKENS == 4096


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert translate(max_tokens=10, max_completion_tokens=20)["max_tokens"] == 20


def test_default_max_tokens_leaves_room_above_a_native_thinking_budget() -> None:
    body = translate(thinking={"type": "enabled", "budget_tokens": 8000})
    assert body["max_tokens"] == 8000 + DEFAULT_MAX_TOKENS


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "100"])
def test_invalid_max_tokens_is_a_400_naming_it(value: object) -> None:
    assert refused(max_tokens=value).param == "max_tokens"


def test_n_above_one_is_refused() -> None:
    error = refused(n=2)
    assert error.status == 400 and error.param == "n"
    assert "one choice" in error.message


@pytest.mark.parametrize(
    "name, value",
    [
        ("logprobs", True),
        ("top_logprobs", 3),
        ("frequency_penalty", 0.5),
        ("presence_penalty", -1),
        ("logit_bias", {"50256": -100}),
        ("seed", 7),
        ("modalities", ["text", "audio"]),
        ("audio", {"voice": "alloy"}),
        ("prediction", {"type": "content", "content": "x"}),
        ("web_search_options", {}),
        ("verbosity", "low"),
        ("functions", [{"name": "f"}]),
        ("made_up_field", 1),
    ],
)
def test_unsupported_parameters_are_a_400_naming_them(name: str, value: object) -> None:
    error = refused(**{name: value})
    assert error.param == name and name in error.message


@pytest.mark.parametrize(
    "name, value",
    [
        ("n", 1),
        ("logprobs", False),
        ("frequency_penalty", 0),
        ("presence_penalty", 0.0),
        ("logit_bias", {}),
        ("seed", None),
        ("modalities", ["text"]),
        ("stream_options", {"include_usage": True}),
        ("store", True),
        ("metadata", {"app": "x"}),
        ("prompt_cache_key", "k"),
    ],
)
def test_fields_without_effect_are_dropped(name: str, value: object) -> None:
    body = translate(**{name: value})
    assert name not in body and "stream_options" not in body


@pytest.mark.parametrize("name", ["temperature", "top_p"])
def test_sampling_above_one_is_refused_because_anthropic_caps_at_one(name: str) -> None:
    assert refused(**{name: 1.5}).param == name


def test_temperature_and_top_p_together_send_temperature_only() -> None:
    body = translate(temperature=0.3, top_p=0.8)
    assert body["temperature"] == 0.3 and "top_p" not in body
    assert translate(top_p=0.8)["top_p"] == 0.8


@pytest.mark.parametrize("stop", ["\n", [" "], ["END", "\n\n"], [""]])
def test_whitespace_only_stop_sequences_are_refused_naming_stop(stop: object) -> None:
    error = refused(stop=stop)
    assert error.param == "stop" and "non-whitespace" in error.message


def test_stop_list_becomes_stop_sequences() -> None:
    assert translate(stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert refused(stop=[1]).param == "stop"


def test_user_and_safety_identifier_become_metadata_user_id() -> None:
    assert translate(user="u-1")["metadata"] == {"user_id": "u-1"}
    assert translate(safety_identifier="hash-9")["metadata"] == {"user_id": "hash-9"}


def test_stream_true_is_sent_and_false_left_out() -> None:
    assert translate(stream=True)["stream"] is True
    assert "stream" not in translate(stream=False)


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    body = translate(tools=[{"type": "function", "function": {"name": "ping"}}])
    assert body["tools"] == [{"name": "ping", "input_schema": {"type": "object", "properties": {}}}]


def test_non_function_tools_are_refused() -> None:
    assert refused(tools=[{"type": "custom", "custom": {"name": "x"}}]).param == "tools[0]"


@pytest.mark.parametrize(
    "choice, expected",
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "lookup"}}, {"type": "tool", "name": "lookup"}),
    ],
)
def test_tool_choice_mapping(choice: object, expected: dict[str, Any]) -> None:
    assert translate(tools=[TOOL], tool_choice=choice)["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use_under_auto() -> None:
    body = translate(tools=[TOOL], parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_parallel_tool_calls_false_with_tool_choice_none_stays_none() -> None:
    assert translate(tools=[TOOL], tool_choice="none", parallel_tool_calls=False)["tool_choice"] == {"type": "none"}


def test_tool_choice_without_tools() -> None:
    assert "tool_choice" not in translate(tool_choice="auto")
    assert refused(tool_choice="required").param == "tool_choice"


def test_json_object_uses_the_forced_tool_and_refuses_caller_tools() -> None:
    body = translate(response_format={"type": "json_object"})
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert uses_json_tool({"response_format": {"type": "json_object"}})
    assert refused(response_format={"type": "json_object"}, tools=[TOOL]).param == "response_format"


@pytest.mark.parametrize(
    "fields", [{"reasoning_effort": "low"}, {"thinking": {"type": "enabled", "budget_tokens": 2048}}]
)
def test_json_object_beside_thinking_is_refused(fields: dict[str, Any]) -> None:
    assert refused(response_format={"type": "json_object"}, **fields).param == "response_format"


def test_text_response_format_changes_nothing() -> None:
    assert translate(response_format={"type": "text"}) == translate()


def test_json_schema_without_schema_is_refused() -> None:
    assert (
        refused(response_format={"type": "json_schema", "json_schema": {"name": "x"}}).param
        == "response_format.json_schema"
    )


@pytest.mark.parametrize("effort, expected", [("minimal", "low"), ("low", "low"), ("high", "high"), ("xhigh", "xhigh")])
def test_reasoning_effort_maps_to_adaptive_thinking_and_effort(effort: str, expected: str) -> None:
    body = translate(reasoning_effort=effort)
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": expected}


@pytest.mark.parametrize(
    "model, adaptive",
    [
        ("claude-opus-4-6", True),
        ("claude-sonnet-4-6", True),
        ("claude-opus-4-7", True),
        ("claude-opus-4-10", True),
        ("claude-mythos-preview", True),
        ("claude-sonnet-5", True),
        ("claude-sonnet-4-5-20250929", False),
        ("claude-haiku-4-5", False),
        ("claude-opus-4-1-20250805", False),
        ("claude-opus-4-20250514", False),
        ("claude-3-7-sonnet-20250219", False),
        ("claude-3-opus-20240229", False),
    ],
)
def test_adaptive_thinking_is_known_from_the_model_version(model: str, adaptive: bool) -> None:
    assert has_adaptive_thinking(model) is adaptive


@pytest.mark.parametrize("effort, budget", [("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096)])
def test_reasoning_effort_on_a_model_without_adaptive_thinking_is_a_thinking_budget(effort: str, budget: int) -> None:
    body = to_anthropic_request({"model": "claude-haiku-4-5", "messages": USER, "reasoning_effort": effort})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + DEFAULT_MAX_TOKENS
    assert "output_config" not in body


def test_reasoning_effort_budget_keeps_the_callers_max_tokens() -> None:
    body = to_anthropic_request(
        {"model": "claude-sonnet-4-5", "messages": USER, "reasoning_effort": "low", "max_tokens": 3000}
    )
    assert body["max_tokens"] == 3000 and body["thinking"]["budget_tokens"] == 1024


def test_reasoning_effort_budget_shrinks_below_a_smaller_max_tokens() -> None:
    body = to_anthropic_request(
        {"model": "claude-sonnet-4-5", "messages": USER, "reasoning_effort": "high", "max_completion_tokens": 3000}
    )
    assert body["max_tokens"] == 3000 and body["thinking"]["budget_tokens"] == 2999


def test_reasoning_effort_with_max_tokens_too_small_to_think_is_refused() -> None:
    with pytest.raises(BadRequest) as caught:
        to_anthropic_request(
            {"model": "claude-haiku-4-5", "messages": USER, "reasoning_effort": "low", "max_tokens": 1024}
        )
    assert caught.value.param == "max_tokens"


def test_reasoning_effort_none_means_no_thinking() -> None:
    body = translate(reasoning_effort="none")
    assert "thinking" not in body and "output_config" not in body


def test_native_thinking_is_kept_when_reasoning_effort_is_also_given() -> None:
    body = translate(reasoning_effort="low", thinking={"type": "enabled", "budget_tokens": 2048})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_unknown_reasoning_effort_is_refused() -> None:
    assert refused(reasoning_effort="extreme").param == "reasoning_effort"


def test_service_tier_default_is_standard_only() -> None:
    assert translate(service_tier="default")["service_tier"] == "standard_only"
    assert refused(service_tier="flex").param == "service_tier"


# -- messages --------------------------------------------------------------------------------------


def messages(*items: dict[str, Any]) -> dict[str, Any]:
    return to_anthropic_request({"model": "m", "messages": list(items)})


def refused_messages(*items: dict[str, Any]) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        messages(*items)
    return caught.value


def test_only_system_messages_is_refused() -> None:
    assert refused_messages({"role": "system", "content": "x"}).param == "messages"


def test_legacy_function_role_is_refused() -> None:
    assert refused_messages({"role": "function", "name": "f", "content": "x"}).param == "messages[0].role"


def test_invalid_tool_arguments_are_refused_naming_the_path() -> None:
    error = refused_messages(
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}],
        },
    )
    assert error.param == "messages[1].tool_calls[0].function.arguments"


def test_tool_arguments_must_be_an_object() -> None:
    error = refused_messages(
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}],
        },
    )
    assert "JSON object" in error.message


def test_empty_arguments_become_an_empty_input() -> None:
    body = messages(
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    )
    assert body["messages"][1]["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]


def test_consecutive_tool_results_merge_into_one_user_turn() -> None:
    body = messages(
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "b", "content": "2"},
    )
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "a", "content": "1"},
        {"type": "tool_result", "tool_use_id": "b", "content": "2"},
    ]


def test_empty_text_parts_and_empty_assistant_turns_are_left_out() -> None:
    body = messages(
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "x"}]},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "y"},
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}
    ]


def test_image_with_unsupported_type_is_refused() -> None:
    error = refused_messages(
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}
    )
    assert error.param == "messages[0].content[0].image_url.url" and "image/bmp" in error.message


@pytest.mark.parametrize("url", ["data:image/png,notbase64", "data:image/png;base64,@@@", "ftp://x/y.png", ""])
def test_unusable_image_urls_are_refused(url: str) -> None:
    error = refused_messages({"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]})
    assert error.param == "messages[0].content[0].image_url.url"


def test_audio_input_is_refused() -> None:
    error = refused_messages(
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}
    )
    assert "audio" in error.message


def test_file_by_id_is_refused() -> None:
    error = refused_messages({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]})
    assert error.param == "messages[0].content[0].file"


def test_images_in_system_messages_are_refused() -> None:
    error = refused_messages(
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]},
        {"role": "user", "content": "x"},
    )
    assert error.param == "messages[0].content[0]"


def test_thinking_blocks_without_signature_are_not_sent_back() -> None:
    body = messages(
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": "y",
            "reasoning_content": "hmm",
            "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": None}],
        },
        {"role": "user", "content": "z"},
    )
    assert body["messages"][1]["content"] == [{"type": "text", "text": "y"}]


def test_tool_call_ids_from_other_providers_are_made_safe_on_both_sides() -> None:
    body = messages(
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "call:1/a.b", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "call:1/a.b", "content": "ok"},
    )
    assert body["messages"][1]["content"][0]["id"] == "call_1_a_b"
    assert body["messages"][2]["content"][0]["tool_use_id"] == "call_1_a_b"
