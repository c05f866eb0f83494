"""Anthropic SSE -> OpenAI chunks: the stream rules beyond the golden cases."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.providers.anthropic.stream import AnthropicStreamTranslator, from_anthropic_stream
from tests.helpers.sse import sse_events


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


START: dict[str, Any] = {
    "type": "message_start",
    "message": {
        "id": "msg_x",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-6",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 1},
    },
}
STOP = {"type": "message_stop"}


def delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


def tool_block(index: int, tool_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}},
    }


def end(reason: str, output_tokens: int = 3) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }


def test_tool_arguments_split_across_many_events_reassemble_to_the_input() -> None:
    arguments = '{"location": "San Francisco, CA", "unit": "celsius", "days": [1, 2, 3]}'
    pieces = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
    out = from_anthropic_stream(
        sse(
            START,
            tool_block(0, "toolu_a", "get_weather"),
            *(delta(0, type="input_json_delta", partial_json=p) for p in pieces),
            {"type": "content_block_stop", "index": 0},
            end("tool_use"),
            STOP,
        ),
        "m",
    )
    events = [e for e in sse_events(out) if e != "[DONE]" and e["choices"]]
    fragments = [tc["function"]["arguments"] for e in events for tc in e["choices"][0]["delta"].get("tool_calls", [])]
    assert len(fragments) == len(pieces) + 1  # the header carries "" then one fragment per event
    assert orjson.loads("".join(fragments)) == orjson.loads(arguments)
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_indexes_count_tool_calls_only() -> None:
    out = from_anthropic_stream(
        sse(
            START,
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            delta(0, type="text_delta", text="Let me look."),
            {"type": "content_block_stop", "index": 0},
            tool_block(1, "toolu_a", "a"),
            delta(1, type="input_json_delta", partial_json="{}"),
            {"type": "content_block_stop", "index": 1},
            tool_block(2, "toolu_b", "b"),
            delta(2, type="input_json_delta", partial_json="{}"),
            {"type": "content_block_stop", "index": 2},
            end("tool_use"),
            STOP,
        ),
        "m",
    )
    calls = [
        tc
        for e in sse_events(out)
        if e != "[DONE]" and e["choices"]
        for tc in e["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert [(c["index"], c.get("id")) for c in calls] == [(0, "toolu_a"), (0, None), (1, "toolu_b"), (1, None)]


def test_first_chunk_is_the_role_and_every_chunk_shares_id_and_model() -> None:
    out = from_anthropic_stream(
        sse(
            START,
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            delta(0, type="text_delta", text="hi"),
            end("end_turn"),
            STOP,
        ),
        "m",
        created=5,
    )
    events = [e for e in sse_events(out) if e != "[DONE]"]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {(e["id"], e["model"], e["created"], e["object"]) for e in events} == {
        ("msg_x", "claude-sonnet-4-6", 5, "chat.completion.chunk")
    }


def test_stream_ends_with_usage_chunk_then_done() -> None:
    usage_start = {
        **START,
        "message": {
            **START["message"],
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 90,
                "cache_creation_input_tokens": 5,
                "output_tokens": 1,
            },
        },
    }
    events = sse_events(from_anthropic_stream(sse(usage_start, end("end_turn", 42), STOP), "m"))
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == []
    assert events[-2]["usage"] == {
        "prompt_tokens": 105,
        "completion_tokens": 42,
        "total_tokens": 147,
        "prompt_tokens_details": {"cached_tokens": 90, "cache_write_tokens": 5, "cache_creation_tokens": 5},
    }


def test_error_event_ends_the_stream_without_done_and_ignores_what_follows() -> None:
    translator = AnthropicStreamTranslator("m")
    out = translator.feed(
        sse(
            START,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            end("end_turn"),
            STOP,
        )
    )
    out += translator.finish()
    events = sse_events(out)
    assert events[-1] == {
        "error": {"message": "Overloaded", "type": "server_error", "code": "overloaded_error", "param": None}
    }
    assert "[DONE]" not in events


def test_error_event_for_rate_limits_keeps_the_openai_code() -> None:
    events = sse_events(
        from_anthropic_stream(
            sse(START, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}), "m"
        )
    )
    assert events[-1]["error"]["code"] == "rate_limit_exceeded"


def test_ping_and_unknown_events_produce_nothing() -> None:
    translator = AnthropicStreamTranslator("m")
    translator.feed(sse(START))
    assert translator.feed(sse({"type": "ping"}, {"type": "some_future_event", "x": 1})) == b""
    assert translator.feed(b"event: ping\ndata: not json\n\n") == b""


def test_thinking_without_strict_streams_reasoning_then_the_signed_block() -> None:
    out = from_anthropic_stream(
        sse(
            START,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
            delta(0, type="thinking_delta", thinking="a"),
            delta(0, type="thinking_delta", thinking="b"),
            delta(0, type="signature_delta", signature="SIG"),
            {"type": "content_block_stop", "index": 0},
            {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "RED"}},
            {"type": "content_block_stop", "index": 1},
            end("end_turn"),
            STOP,
        ),
        "m",
        strict_openai=False,
    )
    deltas = [e["choices"][0]["delta"] for e in sse_events(out) if e != "[DONE]" and e["choices"]]
    assert [d.get("reasoning_content") for d in deltas if "reasoning_content" in d] == ["a", "b"]
    assert [d["thinking_blocks"] for d in deltas if "thinking_blocks" in d] == [
        [{"type": "thinking", "thinking": "ab", "signature": "SIG"}],
        [{"type": "redacted_thinking", "data": "RED"}],
    ]


def test_thinking_never_leaks_in_strict_mode() -> None:
    out = from_anthropic_stream(
        sse(
            START,
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
            delta(0, type="thinking_delta", thinking="private plan"),
            delta(0, type="signature_delta", signature="S"),
            {"type": "content_block_stop", "index": 0},
            end("end_turn"),
            STOP,
        ),
        "m",
    )
    assert b"private plan" not in out and b"thinking" not in out


def test_stream_cut_before_message_stop_ends_with_an_error_event() -> None:
    translator = AnthropicStreamTranslator("m")
    translator.feed(sse(START, end("end_turn")))
    events = sse_events(translator.finish())
    assert events == [
        {
            "error": {
                "message": "the Anthropic stream ended before message_stop",
                "type": "upstream_error",
                "code": "incomplete_stream",
                "param": None,
            }
        }
    ]


def test_last_event_without_blank_line_is_still_read_at_the_end() -> None:
    source = sse(START, end("end_turn")) + b'event: message_stop\ndata: {"type":"message_stop"}'
    events = sse_events(from_anthropic_stream(source, "m"))
    assert events[-1] == "[DONE]"
