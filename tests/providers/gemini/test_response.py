"""Gemini response -> OpenAI chat.completion: finish reasons, usage and malformed answers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.errors import BadGateway
from relaygate.providers.gemini.response import body_translator, finish_reason, from_gemini_response, openai_usage


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "stop"),
        ("LANGUAGE", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reason_mapping(reason: str | None, expected: str) -> None:
    assert finish_reason(reason, False) == expected


def test_function_calls_turn_stop_into_tool_calls_but_not_length() -> None:
    assert finish_reason("STOP", True) == "tool_calls"
    assert finish_reason("MAX_TOKENS", True) == "length"
    assert finish_reason("SAFETY", True) == "content_filter"


def test_usage_counts_reasoning_as_output_and_tool_prompts_as_input() -> None:
    usage = openai_usage(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 25,
            "toolUsePromptTokenCount": 5,
            "totalTokenCount": 140,
        }
    )
    assert usage == {
        "prompt_tokens": 105,
        "completion_tokens": 35,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 60},
        "completion_tokens_details": {"reasoning_tokens": 25},
    }


def test_usage_without_metadata_is_zero_and_has_no_details() -> None:
    assert openai_usage(None) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_reasoning_content_only_when_asked() -> None:
    body: dict[str, Any] = {
        "candidates": [
            {"content": {"parts": [{"text": "hmm", "thought": True}, {"text": "ok"}]}, "finishReason": "STOP"}
        ]
    }
    plain = from_gemini_response(body, "m")["choices"][0]["message"]
    assert plain == {"role": "assistant", "content": "ok", "refusal": None}
    asked = from_gemini_response(body, "m", include_reasoning=True)["choices"][0]["message"]
    assert asked["reasoning_content"] == "hmm"


def test_tool_call_ids_are_unique_openai_ids() -> None:
    call = {"functionCall": {"name": "f", "args": {}}}
    body = {"candidates": [{"content": {"parts": [call, call]}, "finishReason": "STOP"}]}
    ids = [c["id"] for c in from_gemini_response(body, "m")["choices"][0]["message"]["tool_calls"]]
    assert len(set(ids)) == 2 and all(i.startswith("call_") and len(i) == 29 for i in ids)


def test_body_translator_outputs_openai_json() -> None:
    raw = orjson.dumps(
        {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}], "responseId": "abc"}
    )
    out = body_translator("gemini-x", False)(raw)
    assert out["id"] == "chatcmpl-abc" and out["model"] == "gemini-x" and out["object"] == "chat.completion"


@pytest.mark.parametrize("raw", [b"<html>oops</html>", b"[1, 2]", b""])
def test_body_translator_refuses_non_gemini_answers(raw: bytes) -> None:
    with pytest.raises(BadGateway):
        body_translator("gemini-x", False)(raw)


def test_snake_case_answer_reads_like_camel_case() -> None:
    call = {"function_call": {"name": "f", "args": {"city_name": "Paris"}}, "thought_signature": "c2ln"}
    body = {
        "response_id": "r1",
        "candidates": [{"finish_reason": "MAX_TOKENS", "content": {"parts": [{"text": "partial"}, call]}}],
        "usage_metadata": {
            "prompt_token_count": 4,
            "candidates_token_count": 2,
            "thoughts_token_count": 1,
            "cached_content_token_count": 3,
            "total_token_count": 7,
        },
    }
    out = from_gemini_response(body, "m", new_id=lambda: "call_x")
    choice = out["choices"][0]
    assert out["id"] == "chatcmpl-r1" and choice["finish_reason"] == "length"
    assert choice["message"]["content"] == "partial"
    assert choice["message"]["tool_calls"][0]["id"] == "call_x__thought__c2ln"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"city_name":"Paris"}'
    assert out["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 3,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }


def test_google_function_call_ids_become_the_tool_call_ids() -> None:
    parts = [
        {"functionCall": {"id": "fc-a", "name": "f", "args": {}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"id": "fc-b", "name": "f", "args": {}}},
    ]
    body = {"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]}
    calls = from_gemini_response(body, "m")["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["fc-a__thought__c2ln", "fc-b"]
