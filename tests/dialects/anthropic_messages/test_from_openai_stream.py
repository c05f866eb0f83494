"""The OpenAI -> Anthropic stream translator: behaviours beyond the golden streams."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.dialects.anthropic_messages.from_openai import MessagesStreamFromOpenAI


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    payload: dict[str, Any] = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "x",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs, checking that each data `type` equals its event name."""
    found = []
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        name_line, data_line = block.split(b"\n")
        name = name_line.removeprefix(b"event: ").decode()
        data = orjson.loads(data_line.removeprefix(b"data: "))
        assert data["type"] == name
        found.append((name, data))
    return found


def run(*chunks: bytes, done: bool = True) -> list[tuple[str, dict[str, Any]]]:
    translator = MessagesStreamFromOpenAI("gw/model")
    out = b"".join(translator.feed(c) for c in chunks)
    if done:
        out += translator.feed(b"data: [DONE]\n\n")
    return events(out + translator.finish())


def test_stream_that_ends_without_finishing_ends_with_an_error_event() -> None:
    found = run(chunk({"role": "assistant", "content": "Hel"}), done=False)
    assert [name for name, _ in found] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert found[-1][1]["error"]["type"] == "api_error"


def test_done_without_finish_reason_still_closes_the_message() -> None:
    found = run(chunk({"content": "ok"}))
    assert [name for name, _ in found][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert found[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_text_after_a_tool_call_opens_a_new_block() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    found = run(chunk({"tool_calls": [call]}), chunk({"content": "after"}), chunk(finish="tool_calls"))
    starts = [(d["index"], d["content_block"]["type"]) for n, d in found if n == "content_block_start"]
    stops = [d["index"] for n, d in found if n == "content_block_stop"]
    assert starts == [(0, "tool_use"), (1, "text")]
    assert stops == [0, 1]


def test_tool_call_sent_whole_in_one_chunk() -> None:
    # Some servers (e.g. Gemini's OpenAI endpoint) send id, name and all arguments at once, without index.
    call = {"id": "call_x", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    found = run(chunk({"tool_calls": [call, {**call, "id": "call_y"}]}), chunk(finish="tool_calls"))
    tool_blocks = [d["content_block"]["id"] for n, d in found if n == "content_block_start"]
    deltas = [d["delta"]["partial_json"] for n, d in found if n == "content_block_delta"]
    assert tool_blocks == ["call_x", "call_y"]
    assert deltas == ['{"a": 1}', '{"a": 1}']


def test_other_choices_are_ignored() -> None:
    payload = {
        "id": "c",
        "choices": [
            {"index": 1, "delta": {"content": "second"}, "finish_reason": None},
            {"index": 0, "delta": {"content": "first"}, "finish_reason": None},
        ],
    }
    found = run(b"data: " + orjson.dumps(payload) + b"\n\n", chunk(finish="stop"))
    texts = [d["delta"]["text"] for n, d in found if n == "content_block_delta"]
    assert texts == ["first"]


def test_refusal_delta_is_text() -> None:
    found = run(chunk({"refusal": "I can't."}), chunk(finish="content_filter"))
    assert [d["delta"]["text"] for n, d in found if n == "content_block_delta"] == ["I can't."]
    assert found[-2][1]["delta"]["stop_reason"] == "refusal"


def test_usage_on_the_finishing_chunk_is_used() -> None:
    found = run(chunk({"content": "x"}, "stop", usage={"prompt_tokens": 7, "completion_tokens": 2}))
    assert found[-2][1]["usage"] == {
        "input_tokens": 7,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_nothing_follows_an_error_event() -> None:
    error = b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n'
    found = run(chunk({"content": "x"}), error, chunk({"content": "late"}))
    assert found[-1][0] == "error"
    assert found[-1][1]["error"] == {"type": "api_error", "message": "boom"}


def test_message_start_uses_the_upstream_id_and_the_callers_model() -> None:
    found = run(chunk({"content": "x"}, "stop"))
    message = found[0][1]["message"]
    assert message["id"] == "msg_9" and message["model"] == "gw/model" and message["content"] == []
