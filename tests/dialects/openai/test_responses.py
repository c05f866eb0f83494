"""The Responses API usage reader: usage from `response.completed` in any split, memory bounded."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from relaygate.context import Usage
from relaygate.dialects.openai.responses import ResponsesUsageReader, last_usage_object

USAGE = {
    "input_tokens": 7,
    "input_tokens_details": {"cached_tokens": 2},
    "output_tokens": 11,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 18,
}
MiB = 1 << 20


def event(payload: dict[str, Any], crlf: bool = False) -> bytes:
    end = b"\r\n" if crlf else b"\n"
    return b"event: " + payload["type"].encode() + end + b"data: " + orjson.dumps(payload) + end + end


def stream(text: str, crlf: bool = False, usage: object = USAGE) -> bytes:
    """A Responses stream as OpenAI sends it: the whole text again in the `.done` and completed events."""
    answer = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": text}]}],
        "tools": [{"type": "function", "parameters": {"properties": {"usage": {"type": "object"}}}}],
        "usage": usage,
        "user": None,
        "metadata": {"note": 'the "usage": {"input_tokens": 999} here is text'},
    }
    events = [{"type": "response.created", "response": {**answer, "usage": None, "output": []}}]
    events += [{"type": "response.output_text.delta", "delta": text[i : i + 4096]} for i in range(0, len(text), 4096)]
    events += [{"type": "response.output_text.done", "text": text}, {"type": "response.completed", "response": answer}]
    return b"".join(event(e, crlf) for e in events)


def read(
    data: bytes, sizes: list[int], *, line_cap: int = MiB, answer_cap: int = 64 * MiB
) -> tuple[Usage, bytes | None]:
    usage = Usage()
    reader = ResponsesUsageReader(usage, answer_cap, line_cap, 4096)
    at = 0
    for size in sizes:
        reader.feed(data[at : at + size])
        at += size
    reader.feed(data[at:])
    return usage, reader.finish()


def splits(length: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 300) for _ in range(length // 150)]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("crlf", [False, True])
def test_usage_is_read_from_the_completed_event_in_any_split(seed: int, crlf: bool) -> None:
    data = stream("hello there " * 50, crlf)
    usage, logged = read(data, splits(len(data), seed))
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.reasoning_tokens) == (7, 11, 2, 3)
    assert logged == data[:4096]


def test_a_stream_without_a_final_line_end_is_still_read() -> None:
    data = stream("short").rstrip(b"\n")
    usage, _ = read(data, [])
    assert usage.output_tokens == 11


def test_over_long_lines_are_never_held_and_usage_comes_from_the_tail() -> None:
    """A 3 MiB text: the `.done` and completed lines are past the 1 MiB cap; 64 KiB chunks as aiohttp gives them."""
    data = stream("x" * (3 * MiB))
    usage = Usage()
    reader = ResponsesUsageReader(usage, 64 * MiB, MiB, 4096)
    most = 0
    for at in range(0, len(data), 64 << 10):
        reader.feed(data[at : at + (64 << 10)])
        most = max(most, reader.held)
    assert reader.finish() == data[:4096]
    assert most <= MiB + 4096  # the line cap and the logged head, never the stream
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.reasoning_tokens) == (7, 11, 2, 3)


def test_a_long_line_that_is_not_the_completed_event_is_not_read() -> None:
    data = event({"type": "response.output_text.done", "text": "y" * (2 * MiB), "usage": USAGE})
    usage, _ = read(data, [MiB, MiB])
    assert usage.output_tokens is None


def test_json_answers_are_kept_whole_and_parsed_once() -> None:
    body = orjson.dumps({"id": "resp_1", "output": [{"text": '"usage": {"output_tokens": 1}'}], "usage": USAGE})
    usage, logged = read(body, [5, 17])
    assert logged == body and (usage.input_tokens, usage.output_tokens) == (7, 11)


def test_past_the_answer_cap_nothing_is_logged() -> None:
    body = orjson.dumps({"usage": USAGE, "pad": "p" * 5000})
    usage, logged = read(body, [100], answer_cap=1000)
    assert logged is None and usage.input_tokens is None  # a JSON answer that large is not kept to be parsed
    data = stream("z" * 5000)
    usage, logged = read(data, [100], answer_cap=1000)
    assert logged is None and usage.output_tokens == 11  # a stream's usage is read all the same


def test_last_usage_object_skips_usage_in_strings() -> None:
    fragment = b'text":"say \\"usage\\": {\\"x\\": 1}"},"usage":{"input_tokens":5,"s":"}"},"user":"\\"usage\\""}}'
    assert last_usage_object(fragment) == {"input_tokens": 5, "s": "}"}
    assert last_usage_object(b'"usage": {"cut') is None
    assert last_usage_object(b"nothing here") is None
