"""`BufferedStream`: held whole, replayed unchanged or with a channel's text rewritten."""

from __future__ import annotations

import json

import pytest

from relaygate.guardrails.stream import KEEP_ALIVE, BufferedStream, StreamKind
from tests.guardrails.stream.streams import KINDS, chat_chunk, read_stream, split_events, text_channel, text_stream

DELTAS = ["Please write to ", "alice@exa", "mple.com", " if you need anything", " else."]
ORIGINAL = "".join(DELTAS)
CHANNELS = {"openai_chat": ("content", 0), "openai_completions": ("content", 0), "anthropic_messages": ("block", 0)}


def _buffered(kind: StreamKind, events: list[bytes], step: int = 5) -> BufferedStream:
    buffer = BufferedStream(kind, max_bytes=1 << 20)
    data = b"".join(events)
    for i in range(0, len(data), step):
        buffer.feed(data[i : i + step])
    buffer.finish()
    return buffer


@pytest.mark.parametrize("kind", KINDS)
def test_replay_without_changes_is_byte_identical(kind: StreamKind) -> None:
    events = text_stream(kind, DELTAS)
    buffer = _buffered(kind, events)
    assert buffer.events == events
    assert buffer.text.output_text() == ORIGINAL
    assert buffer.replay() == b"".join(events)
    assert buffer.replay({CHANNELS[kind]: ORIGINAL}) == b"".join(events)


@pytest.mark.parametrize("kind", KINDS)
def test_replay_with_a_mask_spells_the_new_text(kind: StreamKind) -> None:
    events = text_stream(kind, DELTAS)
    new = ORIGINAL.replace("alice@example.com", "[EMAIL_REDACTED]")
    out = _buffered(kind, events).replay({CHANNELS[kind]: new})
    texts, released = read_stream(kind, out)
    assert texts == {text_channel(kind): new}
    assert len(released) == len(events)
    changed = [i for i, (before, after) in enumerate(zip(events, released, strict=True)) if before != after]
    assert [read_stream(kind, released[i])[0][text_channel(kind)] for i in changed] == ["[EMAIL_REDACTED]", ""]


@pytest.mark.parametrize(
    "new",
    ["", "Please write to us.", ORIGINAL + " Thanks!", "Hi! " + ORIGINAL, "X"],
    ids=["emptied", "shortened", "appended", "prepended", "replaced"],
)
def test_replay_handles_any_new_text(new: str) -> None:
    events = text_stream("openai_chat", DELTAS)
    texts, released = read_stream("openai_chat", _buffered("openai_chat", events).replay({("content", 0): new}))
    assert texts == {"content:0": new} and len(released) == len(events)


def test_a_new_text_for_a_channel_that_was_never_sent_is_refused() -> None:
    buffer = _buffered("openai_chat", text_stream("openai_chat", DELTAS))
    with pytest.raises(ValueError):
        buffer.replay({("content", 1): "x"})


def test_tool_arguments_are_rewritten_in_their_own_deltas() -> None:
    args = ['{"to": "al', 'ice@example.com"}']
    events = [chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in args]
    events.insert(1, chat_chunk({"content": "Sending."}))
    buffer = _buffered("openai_chat", events)
    assert buffer.text.output_text() == 'Sending.\n{"to": "alice@example.com"}'
    texts, _ = read_stream("openai_chat", buffer.replay({("tool_args", 0, 0): '{"to": "[EMAIL_REDACTED]"}'}))
    assert texts == {"content:0": "Sending.", "tool:0:0": '{"to": "[EMAIL_REDACTED]"}'}
    assert json.loads(texts["tool:0:0"]) == {"to": "[EMAIL_REDACTED]"}


def test_a_stream_longer_than_the_buffer_overflows_and_keeps_nothing() -> None:
    events = text_stream("openai_chat", DELTAS)
    buffer = BufferedStream("openai_chat", max_bytes=len(b"".join(events)) - 1)
    for event in events:
        buffer.feed(event)
    buffer.finish()
    assert buffer.overflowed and buffer.events == [] and buffer.text.output_text() == ""
    assert buffer.replay() == b""


def test_a_last_event_without_its_blank_line_is_kept_at_finish() -> None:
    events = text_stream("openai_completions", DELTAS)[:-1]
    buffer = BufferedStream("openai_completions", max_bytes=1 << 20)
    buffer.feed(b"".join(events)[:-2])
    assert len(buffer.events) == len(events) - 1
    buffer.finish()
    assert buffer.replay() == b"".join(events)[:-2] and buffer.text.output_text() == ORIGINAL


def test_keep_alive_is_a_comment_clients_ignore() -> None:
    assert KEEP_ALIVE == b": keep-alive\n\n"
    for kind in KINDS:
        assert read_stream(kind, KEEP_ALIVE) == ({}, [KEEP_ALIVE])
        assert split_events(KEEP_ALIVE) == [KEEP_ALIVE]
