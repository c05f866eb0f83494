"""A recorded stream assembles into the non-streaming body it stands for, or None when incomplete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from relaygate.cache.assemble import assemble
from tests.cache.sdk_oracle import anthropic_sdk_final, drop_none, openai_sdk_final
from tests.cache.streams import (
    ANTHROPIC_ASSEMBLED,
    ANTHROPIC_EVENTS,
    CHAT_ASSEMBLED,
    CHAT_EVENTS,
    CHAT_EVENTS_NO_USAGE,
    COMPLETION_ASSEMBLED,
    COMPLETION_EVENTS,
    DONE,
    GOLDEN,
    chat_chunk,
    data,
    golden_events,
    named,
)


def assembled(kind: Any, events: Any) -> dict[str, Any]:
    body = assemble(kind, events)
    assert body is not None
    return orjson.loads(body)  # type: ignore[no-any-return]


def test_openai_chat_with_reasoning_and_two_parallel_tool_calls() -> None:
    assert assembled("openai_chat", CHAT_EVENTS) == CHAT_ASSEMBLED


def test_openai_chat_agrees_with_the_openai_sdk() -> None:
    ours = drop_none(assembled("openai_chat", CHAT_EVENTS))
    sdk = openai_sdk_final(CHAT_EVENTS)
    assert ours["choices"][0]["message"] == sdk["choices"][0]["message"]
    assert ours["choices"][0]["finish_reason"] == sdk["choices"][0]["finish_reason"]
    assert ours["usage"] == sdk["usage"]


def test_openai_chat_recorded_without_usage_assembles_with_null_usage() -> None:
    assert assembled("openai_chat", CHAT_EVENTS_NO_USAGE) == {**CHAT_ASSEMBLED, "usage": None}


def test_openai_completions_with_interleaved_choices() -> None:
    assert assembled("openai_completions", COMPLETION_EVENTS) == COMPLETION_ASSEMBLED


def test_chat_logprobs_refusal_and_keepalive_comments() -> None:
    token = {"token": "No", "logprob": -0.1, "bytes": [78, 111], "top_logprobs": []}
    events = [
        b": keep-alive\n\n",
        data(chat_chunk({"role": "assistant", "content": "", "refusal": None})),
        b"data: "
        + orjson.dumps(
            {
                **chat_chunk({"content": "No"}),
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": "No"},
                        "logprobs": {"content": [token], "refusal": None},
                        "finish_reason": None,
                    }
                ],
            }
        )
        + b"\r\n\r\n",
        data(chat_chunk({"content": "pe"})),
        data(chat_chunk(finish="stop")),
        DONE,
    ]
    choice = assembled("openai_chat", events)["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Nope", "refusal": None}
    assert choice["logprobs"] == {"content": [token], "refusal": None}
    assert choice["finish_reason"] == "stop"


def test_anthropic_with_thinking_text_and_tool_use() -> None:
    assert assembled("anthropic_messages", ANTHROPIC_EVENTS) == ANTHROPIC_ASSEMBLED


def test_anthropic_agrees_with_the_anthropic_sdk() -> None:
    assert drop_none(assembled("anthropic_messages", ANTHROPIC_EVENTS)) == anthropic_sdk_final(ANTHROPIC_EVENTS)


def test_anthropic_message_delta_usage_overrides_only_what_it_carries() -> None:
    events = list(ANTHROPIC_EVENTS)
    events[-2] = named(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"input_tokens": None, "output_tokens": 90, "server_tool_use": {"web_search_requests": 1}},
        }
    )
    usage = assembled("anthropic_messages", events)["usage"]
    assert usage == {
        "input_tokens": 472,  # message_start's, as the delta's is null
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 128,
        "output_tokens": 90,
        "server_tool_use": {"web_search_requests": 1},
    }


COMPLETE_GOLDEN = [
    *sorted((GOLDEN / "openai-to-anthropic").glob("stream_*.anthropic.sse")),
    *sorted((GOLDEN / "openai-to-gemini" / "streams").glob("*.openai.sse")),
    *sorted((GOLDEN / "anthropic-to-openai" / "stream").glob("*.in.sse")),
]


@pytest.mark.parametrize("path", COMPLETE_GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_streams_assemble_like_the_sdks_or_are_incomplete(path: Path) -> None:
    """Every golden recording: a complete one assembles to what the SDK accumulates; others to None."""
    events = golden_events(path)
    anthropic = path.name.endswith(".anthropic.sse")
    kind = "anthropic_messages" if anthropic else "openai_chat"
    terminal = b"message_stop" if anthropic else b"[DONE]"
    failed = any(b"error" in e.split(b"\n", 1)[0] or b'data: {"error"' in e for e in events)
    body = assemble(kind, events)
    if failed or not any(terminal in e for e in events):
        assert body is None
        return
    assert body is not None
    ours = drop_none(orjson.loads(body))
    if anthropic:
        sdk = anthropic_sdk_final(events)
        if b'"usage"' not in events[0]:  # a message_start without usage (the SDK was handed zeros)
            sdk.pop("usage")
        assert ours == sdk
    else:
        sdk = openai_sdk_final(events)
        assert [c["message"] for c in ours["choices"]] == [c["message"] for c in sdk["choices"]]
        assert [c["finish_reason"] for c in ours["choices"]] == [c["finish_reason"] for c in sdk["choices"]]
        assert ours.get("usage") == sdk.get("usage")


def test_golden_error_and_truncated_streams_are_in_the_parametrised_set() -> None:
    names = {p.name for p in COMPLETE_GOLDEN}
    assert {
        "stream_overloaded_error.anthropic.sse",
        "stream_truncated.anthropic.sse",
        "error_mid_stream.openai.sse",
    } <= names


@pytest.mark.parametrize(
    ("kind", "events"),
    [
        ("openai_chat", CHAT_EVENTS[:-1]),  # no [DONE]
        ("openai_chat", (DONE,)),  # [DONE] and nothing before it
        ("openai_chat", ()),
        (
            "openai_chat",
            (*CHAT_EVENTS[:5], data({"error": {"message": "upstream died", "type": "server_error"}}), DONE),
        ),
        ("openai_chat", (*CHAT_EVENTS[:5], b"event: error\ndata: {}\n\n", DONE)),
        ("openai_chat", (*CHAT_EVENTS[:5], b"data: {not json\n\n", DONE)),
        ("openai_chat", (*CHAT_EVENTS[:5], b"data: [1, 2]\n\n", DONE)),
        ("openai_completions", COMPLETION_EVENTS[:-1]),
        ("anthropic_messages", ANTHROPIC_EVENTS[:-1]),  # no message_stop
        ("anthropic_messages", ANTHROPIC_EVENTS[1:]),  # no message_start
        ("anthropic_messages", ()),
        (
            "anthropic_messages",
            (*ANTHROPIC_EVENTS[:5], named({"type": "error", "error": {"type": "overloaded_error", "message": "x"}})),
        ),
        (
            "anthropic_messages",
            (*ANTHROPIC_EVENTS[:-4], named({"type": "content_block_stop", "index": 2}), *ANTHROPIC_EVENTS[-2:]),
        ),
        (
            "anthropic_messages",
            (*ANTHROPIC_EVENTS[:3], b"event: content_block_delta\ndata: {oops\n\n", ANTHROPIC_EVENTS[-1]),
        ),
        ("openai_chat", (data({**chat_chunk(), "choices": [{"index": [0], "delta": {}}]}), DONE)),
        (
            "anthropic_messages",
            (
                ANTHROPIC_EVENTS[0],
                named({"type": "content_block_start", "index": {}, "content_block": {"type": "text", "text": ""}}),
                ANTHROPIC_EVENTS[-1],
            ),
        ),
        ("json", (DONE,)),
    ],
    ids=[
        "chat-no-done",
        "chat-only-done",
        "chat-empty",
        "chat-error-chunk",
        "chat-error-event",
        "chat-bad-json",
        "chat-not-an-object",
        "completions-no-done",
        "anthropic-no-stop",
        "anthropic-no-start",
        "anthropic-empty",
        "anthropic-error",
        "anthropic-truncated-tool-json",
        "anthropic-bad-json",
        "chat-unhashable-index",
        "anthropic-unhashable-index",
        "json-kind",
    ],
)
def test_incomplete_or_broken_streams_assemble_to_none(kind: Any, events: Any) -> None:
    assert assemble(kind, events) is None
