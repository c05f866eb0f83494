"""Realistic upstream streams of the three kinds, and a client-side reader that assembles what a client sees.

Builders write JSON with spaces after `:` and `,` (as some upstreams do), so an event the guard re-serialised
would not be byte-identical to its input: tests of untouched events can tell. The reader parses the bytes
independently of the code under test, checks every event's framing and JSON, and assembles text per
channel the way an SDK does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from relaygate.guardrails.stream.events import StreamKind

KINDS: tuple[StreamKind, ...] = ("openai_chat", "openai_completions", "anthropic_messages")
DONE = b"data: [DONE]\n\n"
COMMENT = b": OPENROUTER PROCESSING\n\n"


def _data(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _anthropic(payload: dict[str, Any]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\n" + _data(payload)


def chat_chunk(delta: dict[str, Any], *, index: int = 0, finish: str | None = None) -> bytes:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return _data(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [choice],
            "usage": None,
        }
    )


def chat_usage() -> bytes:
    usage = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    return _data(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [],
            "usage": usage,
        }
    )


def completion_chunk(text: str, *, finish: str | None = None) -> bytes:
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
    return _data(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": "gpt-3.5-turbo-instruct",
            "choices": [choice],
        }
    )


def message_start() -> bytes:
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1},
    }
    return _anthropic({"type": "message_start", "message": message})


def block_start(index: int, block: dict[str, Any]) -> bytes:
    return _anthropic({"type": "content_block_start", "index": index, "content_block": block})


def block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return _anthropic({"type": "content_block_delta", "index": index, "delta": delta})


def block_stop(index: int) -> bytes:
    return _anthropic({"type": "content_block_stop", "index": index})


PING = b'event: ping\ndata: {"type": "ping"}\n\n'
MESSAGE_DELTA = _anthropic(
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 12},
    }
)
MESSAGE_STOP = _anthropic({"type": "message_stop"})


def text_stream(kind: StreamKind, deltas: Sequence[str]) -> list[bytes]:
    """A whole answer of `kind` whose one text channel is `deltas`, with the dialect's usual framing events.

    A comment sits before the first text delta and another after the third, to check text-less events keep
    their place.
    """
    events: list[bytes]
    if kind == "openai_chat":
        texts = [chat_chunk({"content": delta}) for delta in deltas]
        events = [COMMENT, chat_chunk({"role": "assistant", "content": ""}), *texts[:3], COMMENT, *texts[3:]]
        return [*events, chat_chunk({}, finish="stop"), chat_usage(), DONE]
    if kind == "openai_completions":
        texts = [completion_chunk(delta) for delta in deltas]
        events = [COMMENT, *texts[:3], COMMENT, *texts[3:]]
        return [*events, completion_chunk("", finish="stop"), DONE]
    texts = [block_delta(0, {"type": "text_delta", "text": delta}) for delta in deltas]
    events = [message_start(), block_start(0, {"type": "text", "text": ""}), PING, *texts[:3], PING, *texts[3:]]
    return [*events, block_stop(0), MESSAGE_DELTA, MESSAGE_STOP]


def text_channel(kind: StreamKind) -> str:
    """The reader's name for `text_stream`'s one text channel."""
    return "block:0" if kind == "anthropic_messages" else "content:0"


def split_events(data: bytes) -> list[bytes]:
    """Whole events, each with its blank line; asserts the bytes end on an event boundary."""
    assert data == b"" or data.endswith(b"\n\n"), data[-60:]
    return [event + b"\n\n" for event in data[:-2].split(b"\n\n")] if data else []


def read_stream(kind: StreamKind, data: bytes) -> tuple[dict[str, str], list[bytes]]:
    """What a client assembles from `data`: text per channel (`content:0`, `tool:0:1`, `block:2`...) and the events.

    Every event must be a comment or well-formed for its dialect: `data:` JSON (or `[DONE]`), and for Anthropic an
    `event:` line naming the payload's type.
    """
    texts: dict[str, str] = {}
    events = split_events(data)
    for event in events:
        lines = event[:-2].split(b"\n")
        if all(line.startswith(b":") for line in lines):
            continue
        data_lines = [line for line in lines if line.startswith(b"data: ")]
        assert len(data_lines) == 1, event
        body = data_lines[0][6:]
        if body == b"[DONE]":
            assert kind != "anthropic_messages"
            continue
        payload = json.loads(body)
        if kind == "anthropic_messages":
            assert lines[0] == b"event: " + payload["type"].encode(), event
            _read_anthropic(payload, texts)
        else:
            _read_openai(kind, payload, texts)
    return texts, events


def _add(texts: dict[str, str], name: str, text: object) -> None:
    if isinstance(text, str):
        texts[name] = texts.get(name, "") + text


def _read_openai(kind: StreamKind, payload: dict[str, Any], texts: dict[str, str]) -> None:
    for choice in payload["choices"]:
        index = choice["index"]
        if kind == "openai_completions":
            _add(texts, f"content:{index}", choice["text"])
            continue
        delta = choice["delta"]
        _add(texts, f"content:{index}", delta.get("content"))
        _add(texts, f"reasoning:{index}", delta.get("reasoning_content"))
        for call in delta.get("tool_calls") or ():
            _add(texts, f"tool:{index}:{call['index']}", call.get("function", {}).get("arguments"))


def _read_anthropic(payload: dict[str, Any], texts: dict[str, str]) -> None:
    if payload["type"] != "content_block_delta":
        return
    delta = payload["delta"]
    field = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}.get(delta["type"])
    if field is not None:  # a signature_delta carries no text
        _add(texts, f"block:{payload['index']}", delta[field])


def first_event_reaching(kind: StreamKind, events: Sequence[bytes], channel: str, offset: int) -> int:
    """The index of the first event whose text in `channel` goes past `offset` (holds its character)."""
    position = 0
    for index, event in enumerate(events):
        position += len(read_stream(kind, event)[0].get(channel, ""))
        if position > offset:
            return index
    raise AssertionError(f"{channel} never reaches {offset}")
