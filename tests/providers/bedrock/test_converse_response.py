"""Bedrock Converse answers -> OpenAI chat.completion: golden files, finish reasons, normalised usage."""

from __future__ import annotations

import pytest

from relaygate.providers.bedrock.converse_response import finish_reason, from_bedrock_converse_response, openai_usage
from tests.providers.bedrock.golden import GOLDEN, assert_golden_json

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


def translate(case: str, *, strict: bool = True) -> dict[str, object]:
    return from_bedrock_converse_response(
        GOLDEN.read_json(f"{case}.bedrock-response.json"),
        model=MODEL,
        response_id="chatcmpl-golden",
        created=1700000000,
        strict_openai=strict,
    )


@pytest.mark.parametrize(
    "case", ["converse-text", "converse-tool-use", "converse-cache", "converse-guardrail", "converse-reasoning"]
)
def test_response_matches_golden_file(case: str) -> None:
    assert_golden_json(f"{case}.openai-response.json", translate(case))


def test_reasoning_is_exposed_only_outside_strict_openai_mode() -> None:
    assert "reasoning_content" not in translate("converse-reasoning")["choices"][0]["message"]  # type: ignore[index]
    loose = translate("converse-reasoning", strict=False)["choices"][0]["message"]  # type: ignore[index]
    assert loose["reasoning_content"] == "The user asks for 2+2. That is 4."


def test_tool_use_answer_has_tool_calls_with_json_string_arguments() -> None:
    message = translate("converse-tool-use")["choices"][0]["message"]  # type: ignore[index]
    assert message["tool_calls"] == [
        {
            "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
            "type": "function",
            "function": {"name": "top_song", "arguments": '{"sign":"WZPZ"}'},
        }
    ]


def test_tool_only_answer_has_null_content() -> None:
    body = GOLDEN.read_json("converse-tool-use.bedrock-response.json")
    body["output"]["message"]["content"] = body["output"]["message"]["content"][1:]
    result = from_bedrock_converse_response(body, model=MODEL, response_id="x", created=1)
    assert result["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reasons_map_to_openai_finish_reasons(stop: object, finish: str) -> None:
    assert finish_reason(stop) == finish


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    usage = openai_usage(
        {
            "inputTokens": 12,
            "outputTokens": 9,
            "totalTokens": 1845,
            "cacheReadInputTokens": 1024,
            "cacheWriteInputTokens": 800,
        }
    )
    assert usage == {
        "prompt_tokens": 1836,
        "completion_tokens": 9,
        "total_tokens": 1845,
        "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 800, "cache_creation_tokens": 800},
    }


def test_usage_without_cache_fields_has_no_details() -> None:
    assert openai_usage({"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}) == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
    }


def test_missing_usage_counts_zero() -> None:
    assert openai_usage(None) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
