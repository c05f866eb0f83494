"""Reading which text an event adds to which channel, and rewriting an event's text in its own framing."""

from __future__ import annotations

import orjson

from relaygate.guardrails.stream.events import (
    NO_TEXT,
    EventSplitter,
    EventText,
    TextPiece,
    read_event,
    rebuild_event,
)
from tests.guardrails.stream.streams import (
    COMMENT,
    DONE,
    MESSAGE_STOP,
    PING,
    block_delta,
    block_start,
    block_stop,
    chat_chunk,
    chat_usage,
    completion_chunk,
    message_start,
)


def test_chat_content_reasoning_refusal_and_tool_arguments_are_channels() -> None:
    delta = {
        "content": "Hi",
        "refusal": "no",
        "reasoning_content": "think",
        "tool_calls": [
            {"index": 1, "function": {"arguments": '{"a"'}},
            {"index": 0, "function": {"name": "f", "arguments": "[1"}},
        ],
        "function_call": {"arguments": "{}"},
    }
    assert read_event("openai_chat", chat_chunk(delta, index=2)).pieces == (
        TextPiece(("content", 2), "content", "Hi"),
        TextPiece(("refusal", 2), "content", "no"),
        TextPiece(("reasoning", 2), "reasoning", "think"),
        TextPiece(("tool_args", 2, 1), "tool_args", '{"a"'),
        TextPiece(("tool_args", 2, 0), "tool_args", "[1"),
        TextPiece(("function_args", 2), "tool_args", "{}"),
    )


def test_reasoning_under_two_different_names_is_one_channel_in_order() -> None:
    event = chat_chunk({"reasoning_content": "ab", "reasoning": "cd"})
    assert read_event("openai_chat", event).pieces == (TextPiece(("reasoning", 0), "reasoning", "abcd"),)
    rebuilt = orjson.loads(rebuild_event("openai_chat", event, {("reasoning", 0): "X"})[6:])
    assert rebuilt["choices"][0]["delta"] == {"reasoning_content": "X", "reasoning": ""}


def test_ends_of_groups_and_streams() -> None:
    assert read_event("openai_chat", chat_chunk({}, index=1, finish="stop")) == EventText(closes=(1,))
    assert read_event("openai_chat", chat_chunk({"content": "."}, finish="length")).closes == (0,)
    assert read_event("openai_chat", chat_chunk({"content": "."})).closes == ()
    assert read_event("openai_chat", DONE).terminal
    assert read_event("openai_completions", completion_chunk("", finish="stop")).closes == (0,)
    assert read_event("anthropic_messages", block_stop(3)) == EventText(closes=(3,))
    assert read_event("anthropic_messages", MESSAGE_STOP).terminal


def test_text_less_events() -> None:
    for kind, event in [
        ("openai_chat", COMMENT),
        ("openai_chat", chat_usage()),
        ("openai_chat", b'data: {"error": {"message": "overloaded"}}\n\n'),
        ("openai_chat", b'data: not json, "content"\n\n'),
        ("anthropic_messages", PING),
        ("anthropic_messages", message_start()),
        ("anthropic_messages", block_start(1, {"type": "tool_use", "id": "t", "name": "f", "input": {}})),
        ("anthropic_messages", block_delta(0, {"type": "signature_delta", "signature": "abc"})),
    ]:
        assert read_event(kind, event) == NO_TEXT, event  # type: ignore[arg-type]


def test_completions_and_anthropic_text() -> None:
    assert read_event("openai_completions", completion_chunk("Hey")).pieces == (
        TextPiece(("content", 0), "content", "Hey"),
    )
    cases = [
        ({"type": "text_delta", "text": "a"}, "content", "a"),
        ({"type": "thinking_delta", "thinking": "b"}, "reasoning", "b"),
        ({"type": "input_json_delta", "partial_json": '{"c'}, "tool_args", '{"c'),
    ]
    for delta, part, text in cases:
        assert read_event("anthropic_messages", block_delta(4, delta)).pieces == (TextPiece(("block", 4), part, text),)  # type: ignore[arg-type]
    started = block_start(0, {"type": "text", "text": "Already"})
    assert read_event("anthropic_messages", started).pieces == (TextPiece(("block", 0), "content", "Already"),)


def test_an_escaped_key_still_carries_text() -> None:
    event = b'data: {"choices":[{"index":0,"delta":{"\\u0063ontent":"hidden"}}]}\n\n'
    assert read_event("openai_chat", event).pieces == (TextPiece(("content", 0), "content", "hidden"),)
    escaped_type = (
        b'event: x\ndata: {"type":"content\\u005fblock_delta","index":0,"delta":{"type":"text_delta","text":"t"}}\n\n'
    )
    assert read_event("anthropic_messages", escaped_type).pieces == (TextPiece(("block", 0), "content", "t"),)


def test_a_lone_surrogate_is_read_and_rewritten() -> None:
    event = b'data: {"choices":[{"index":0,"delta":{"content":"a\\ud800b"}}]}\n\n'
    assert read_event("openai_chat", event).pieces[0].text == "a\ud800b"
    rebuilt = rebuild_event("openai_chat", event, {("content", 0): "\ud800!"})
    assert rebuilt == b'data: {"choices":[{"index":0,"delta":{"content":"\\ud800!"}}]}\n\n'


def test_rebuild_keeps_the_framing_and_only_the_named_channel_changes() -> None:
    event = block_delta(2, {"type": "text_delta", "text": "old"})
    rebuilt = rebuild_event("anthropic_messages", event, {("block", 2): "new", ("block", 9): "ignored"})
    assert rebuilt == (
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"new"}}\n\n'
    )
    split_data = b'id: 7\ndata: {"choices":[{"index":0,\ndata: "delta":{"content":"x"}}]}\n\n'
    assert read_event("openai_chat", split_data).pieces[0].text == "x"
    assert rebuild_event("openai_chat", split_data, {("content", 0): "y"}) == (
        b'id: 7\ndata: {"choices":[{"index":0,"delta":{"content":"y"}}]}\n\n'
    )
    assert rebuild_event("openai_chat", COMMENT, {("content", 0): "y"}) == COMMENT


def test_splitter_keeps_partial_events_and_every_byte() -> None:
    splitter = EventSplitter()
    data = COMMENT + DONE + b"data: {}\n\n\n\ndata: par"
    events = [event for i in range(len(data)) for event in splitter.take(data[i : i + 1])]
    assert b"".join(events) + splitter.take_rest() == data
    assert events[:2] == [COMMENT, DONE] and splitter.pending_bytes == 0
