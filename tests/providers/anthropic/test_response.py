"""Anthropic Message -> chat completion: finish reasons, usage normalisation, thinking exposure."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.errors import BadGateway
from relaygate.providers.anthropic.response import (
    finish_reason,
    from_anthropic_response,
    to_openai_usage,
    translate_body,
)


def message(*blocks: dict[str, Any], stop_reason: str = "end_turn", **usage: Any) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": list(blocks),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


@pytest.mark.parametrize(
    "stop_reason, expected",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
        ("some_future_reason", "stop"),
    ],
)
def test_finish_reason_mapping(stop_reason: str | None, expected: str) -> None:
    assert finish_reason(stop_reason) == expected


def test_prompt_tokens_include_cache_reads_and_writes() -> None:
    usage = to_openai_usage(
        {"input_tokens": 50, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200, "output_tokens": 30}
    )
    assert usage == {
        "prompt_tokens": 1250,
        "completion_tokens": 30,
        "total_tokens": 1280,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 200, "cache_creation_tokens": 200},
    }


def test_usage_details_only_for_reported_keys() -> None:
    assert "prompt_tokens_details" not in to_openai_usage({"input_tokens": 1, "output_tokens": 1})
    assert to_openai_usage({"input_tokens": 1, "cache_read_input_tokens": 4, "output_tokens": 1})[
        "prompt_tokens_details"
    ] == {"cached_tokens": 4}


def test_thinking_tokens_become_reasoning_tokens_inside_completion_tokens() -> None:
    usage = to_openai_usage({"input_tokens": 1, "output_tokens": 90, "output_tokens_details": {"thinking_tokens": 60}})
    assert usage["completion_tokens"] == 90
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 60}


def test_several_text_blocks_are_joined() -> None:
    body = message({"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"})
    assert from_anthropic_response(body, "m")["choices"][0]["message"]["content"] == "Hello, world"


def test_tool_only_answer_has_null_content_and_json_string_arguments() -> None:
    body = message(
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2], "b": "é"}}, stop_reason="tool_use"
    )
    choice = from_anthropic_response(body, "m")["choices"][0]
    assert choice["message"]["content"] is None
    assert orjson.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"a": [1, 2], "b": "é"}
    assert choice["finish_reason"] == "tool_calls"


def test_thinking_is_hidden_in_strict_mode() -> None:
    body = message({"type": "thinking", "thinking": "secret", "signature": "sig"}, {"type": "text", "text": "hi"})
    msg = from_anthropic_response(body, "m")["choices"][0]["message"]
    assert "reasoning_content" not in msg and "thinking_blocks" not in msg
    assert "secret" not in orjson.dumps(from_anthropic_response(body, "m")).decode()


def test_thinking_is_exposed_when_not_strict() -> None:
    body = message({"type": "thinking", "thinking": "step 1", "signature": "sig"}, {"type": "text", "text": "hi"})
    msg = from_anthropic_response(body, "m", strict_openai=False)["choices"][0]["message"]
    assert msg["reasoning_content"] == "step 1"
    assert msg["thinking_blocks"] == [{"type": "thinking", "thinking": "step 1", "signature": "sig"}]


def test_model_falls_back_to_the_requested_one() -> None:
    body = message({"type": "text", "text": "x"})
    del body["model"]
    assert from_anthropic_response(body, "claude-fallback")["model"] == "claude-fallback"


def test_translate_body_refuses_what_is_not_a_message() -> None:
    with pytest.raises(BadGateway):
        translate_body(b"<html>oops</html>", "m")


def test_translate_body_round_trip() -> None:
    out = orjson.loads(translate_body(orjson.dumps(message({"type": "text", "text": "ok"})), "m"))
    assert out["object"] == "chat.completion" and out["choices"][0]["message"]["content"] == "ok"
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
