"""OpenAI chat.completion -> Anthropic message: edge cases beyond the golden files."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.dialects.anthropic_messages.translation import (
    message_id_from,
    messages_response_from_openai,
    stop_reason_from,
    tool_input_from,
    usage_from_openai,
)


def completion(message: dict[str, Any], finish: str | None = "stop", usage: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        ("   ", {}),
        ("[1, 2]", {}),
        ("{broken", {}),
        ({"already": "parsed"}, {"already": "parsed"}),
    ],
)
def test_tool_arguments_become_an_input_object(arguments: object, expected: dict[str, Any]) -> None:
    assert tool_input_from(arguments) == expected


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("weird", "end_turn"),
    ],
)
def test_finish_reason_maps_to_stop_reason(finish: str | None, reason: str) -> None:
    assert stop_reason_from(finish) == (reason, None)


def test_empty_answer_has_empty_content_and_zero_usage() -> None:
    message = messages_response_from_openai(completion({"role": "assistant", "content": None}), "m")
    assert message["content"] == []
    assert message["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_content_parts_answer_is_joined_into_one_text_block() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    message = messages_response_from_openai(completion({"role": "assistant", "content": parts}), "m")
    assert message["content"] == [{"type": "text", "text": "ab"}]


def test_tool_call_without_id_gets_one() -> None:
    call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    message = messages_response_from_openai(
        completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"), "m"
    )
    assert message["content"][0]["id"].startswith("toolu_")
    assert message["stop_reason"] == "tool_use"


def test_usage_never_goes_negative_when_cache_counts_exceed_prompt() -> None:
    usage = usage_from_openai(
        {"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 9}}
    )
    assert usage["input_tokens"] == 0 and usage["cache_read_input_tokens"] == 9


def test_reasoning_tokens_become_thinking_tokens_inside_output_tokens() -> None:
    usage = usage_from_openai(
        {"prompt_tokens": 5, "completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 24}}
    )
    assert usage["output_tokens"] == 30 and usage["output_tokens_details"] == {"thinking_tokens": 24}
    zero = usage_from_openai(
        {"prompt_tokens": 5, "completion_tokens": 3, "completion_tokens_details": {"reasoning_tokens": 0}}
    )
    assert "output_tokens_details" not in zero


def test_openai_cache_write_tokens_are_cache_creation_input_tokens() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 100,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 60},
        }
    )
    assert (usage["input_tokens"], usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (
        30,
        10,
        60,
    )


def test_message_id_keeps_an_anthropic_id_and_invents_one_when_missing() -> None:
    assert message_id_from("msg_01abc") == "msg_01abc"
    assert message_id_from("chatcmpl-xyz") == "msg_xyz"
    invented = message_id_from(None)
    assert invented.startswith("msg_") and len(invented) > 10
