"""`StreamText`: per-channel text and the whole output in a fixed order."""

from __future__ import annotations

from typing import Any

from relaygate.guardrails.stream.text import StreamText
from tests.guardrails.stream.streams import block_delta, block_start, chat_chunk, message_start


def test_channels_are_joined_content_then_reasoning_then_tool_arguments() -> None:
    text = StreamText("openai_chat")
    deltas: list[tuple[dict[str, Any], int]] = [
        ({"tool_calls": [{"index": 1, "function": {"arguments": "{B"}}]}, 0),
        ({"reasoning_content": "think"}, 0),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "{A"}}]}, 0),
        ({"content": "second"}, 1),
        ({"content": "Hel"}, 0),
        ({"content": "lo"}, 0),
        ({"tool_calls": [{"index": 1, "function": {"arguments": "}"}}]}, 0),
    ]
    for delta, index in deltas:
        text.feed_event(chat_chunk(delta, index=index))
    assert text.channels == (("content", 0), ("content", 1), ("reasoning", 0), ("tool_args", 0, 0), ("tool_args", 0, 1))
    assert text.text_of(("content", 0)) == "Hello"
    assert text.text_of(("tool_args", 0, 1)) == "{B}"
    assert text.text_of(("content", 7)) == ""
    assert text.output_text() == "Hello\nsecond\nthink\n{A\n{B}"
    assert text.output_text(include_reasoning=False) == "Hello\nsecond\n{A\n{B}"
    assert text.part_of(("reasoning", 0)) == "reasoning"
    assert text.total_chars == len("Hello" + "second" + "think" + "{A" + "{B}")


def test_anthropic_thinking_blocks_are_reasoning() -> None:
    text = StreamText("anthropic_messages")
    for event in [
        message_start(),
        block_start(0, {"type": "thinking", "thinking": ""}),
        block_delta(0, {"type": "thinking_delta", "thinking": "hmm"}),
        block_start(1, {"type": "text", "text": ""}),
        block_delta(1, {"type": "text_delta", "text": "Answer"}),
        block_delta(2, {"type": "input_json_delta", "partial_json": "{}"}),
    ]:
        text.feed_event(event)
    assert text.output_text() == "Answer\nhmm\n{}"
    assert text.output_text(include_reasoning=False) == "Answer\n{}"
