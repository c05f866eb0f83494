"""ConverseStream binary event-stream bytes -> OpenAI chat.completion.chunk SSE events."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer
from openai.types.chat import ChatCompletionChunk

from relaygate.errors import BadGateway
from relaygate.providers.bedrock.converse_stream import BedrockStreamTranslator
from tests.helpers.golden import REGENERATE
from tests.providers.bedrock.golden import GOLDEN
from tests.upstreams.aws_eventstream import encode_frame, event_frame, exception_frame

MODEL = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
CASES = ["stream-text", "stream-tool-use", "stream-exception", "stream-reasoning"]


def frame_of(item: dict[str, Any]) -> bytes:
    if "exception" in item:
        headers = {
            ":exception-type": item["exception"],
            ":content-type": "application/json",
            ":message-type": "exception",
        }
    else:
        headers = {":event-type": item["event"], ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, orjson.dumps(item["body"]))


def eventstream(case: str) -> bytes:
    """The golden binary frames of a case (built from its events.json when regenerating)."""
    if REGENERATE:
        frames = b"".join(frame_of(item) for item in GOLDEN.read_json(f"{case}.events.json"))
        GOLDEN.path(f"{case}.eventstream").write_bytes(frames)
    return GOLDEN.path(f"{case}.eventstream").read_bytes()


def translator(strict: bool = True) -> BedrockStreamTranslator:
    return BedrockStreamTranslator(MODEL, "chatcmpl-golden", 1700000000, strict_openai=strict)


def run(data: bytes, *, strict: bool = True, split: int | None = None) -> bytes:
    t = translator(strict)
    step = split or len(data) or 1
    out = b"".join(t.feed(data[i : i + step]) for i in range(0, len(data), step))
    return out + t.finish()


def events(sse: bytes) -> list[Any]:
    """The data payloads of an SSE byte string ("[DONE]" kept as a string)."""
    out: list[Any] = []
    for event in sse.split(b"\n\n"):
        if event:
            assert event.startswith(b"data: "), event
            data = event[6:]
            out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return out


@pytest.mark.parametrize("case", CASES)
def test_golden_eventstream_decodes_with_botocore_to_its_events(case: str) -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(eventstream(case))
    decoded = []
    for message in buffer:
        name = message.headers.get(":event-type") or message.headers[":exception-type"]
        decoded.append((message.headers[":message-type"], name, orjson.loads(message.payload)))
    expected = [
        ("exception" if "exception" in i else "event", i.get("event") or i["exception"], i["body"])
        for i in GOLDEN.read_json(f"{case}.events.json")
    ]
    assert decoded == expected


@pytest.mark.parametrize("case", CASES)
def test_stream_matches_golden_sse(case: str) -> None:
    GOLDEN.check_bytes(f"{case}.sse", run(eventstream(case), strict=case != "stream-reasoning"))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("split", [1, 7, 64])
def test_any_split_of_the_upstream_bytes_gives_the_same_events(case: str, split: int) -> None:
    strict = case != "stream-reasoning"
    assert run(eventstream(case), strict=strict, split=split) == run(eventstream(case), strict=strict)


@pytest.mark.parametrize("case", ["stream-text", "stream-tool-use", "stream-reasoning"])
def test_every_chunk_is_a_valid_openai_chunk(case: str) -> None:
    payloads = events(run(eventstream(case), strict=False))
    assert payloads[-1] == "[DONE]"
    for payload in payloads[:-1]:
        ChatCompletionChunk.model_validate(payload)


def test_first_chunk_carries_the_role_and_the_last_two_are_finish_then_usage() -> None:
    payloads = events(run(eventstream("stream-text")))
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-3]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert payloads[-2]["choices"] == [] and payloads[-2]["usage"]["total_tokens"] == 33
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads[:-2])
    assert text == "Madrid is the capital of Spain."


def test_tool_calls_are_indexed_from_zero_and_arguments_reassemble() -> None:
    payloads = events(run(eventstream("stream-tool-use")))
    calls: dict[int, dict[str, Any]] = {}
    fragments = 0
    for payload in payloads[:-1]:
        for call in (payload["choices"] or [{}])[0].get("delta", {}).get("tool_calls", []):
            entry = calls.setdefault(call["index"], {"arguments": ""})
            if "id" in call:
                entry.update(id=call["id"], name=call["function"]["name"])
            else:
                fragments += 1
            entry["arguments"] += call["function"]["arguments"]
    assert sorted(calls) == [0, 1]
    assert calls[0] == {"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "top_song", "arguments": '{"sign": "WZPZ"}'}
    assert orjson.loads(calls[1]["arguments"]) == {"sign": "WKRP"}
    assert fragments == 4, "each non-empty input fragment is its own chunk"
    assert payloads[-3]["choices"][0]["finish_reason"] == "tool_calls"


def test_usage_chunk_includes_cache_reads_in_prompt_tokens() -> None:
    usage = events(run(eventstream("stream-tool-use")))[-2]["usage"]
    assert usage == {
        "prompt_tokens": 375,
        "completion_tokens": 88,
        "total_tokens": 463,
        "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 0, "cache_creation_tokens": 0},
    }


def test_exception_event_becomes_openai_error_event_without_done() -> None:
    payloads = events(run(eventstream("stream-exception")))
    assert "[DONE]" not in payloads
    assert payloads[-1] == {
        "error": {
            "message": "Model stream error: the model returned an error while streaming.",
            "type": "upstream_error",
            "code": "ModelStreamErrorException",
            "param": None,
        }
    }
    assert not any("never arrives" in orjson.dumps(p).decode() for p in payloads)


def test_throttling_exception_mid_stream_is_a_rate_limit_error() -> None:
    data = event_frame("messageStart", {"role": "assistant"}) + exception_frame("throttlingException", "slow down")
    error = events(run(data))[-1]["error"]
    assert (error["type"], error["code"], error["message"]) == (
        "rate_limit_exceeded",
        "ThrottlingException",
        "slow down",
    )


def test_error_message_type_uses_error_code_and_message_headers() -> None:
    frame = encode_frame(
        {
            ":message-type": "error",
            ":error-code": "InternalFailure",
            ":error-message": "We encountered an internal error.",
        },
        b"",
    )
    error = events(run(event_frame("messageStart", {"role": "assistant"}) + frame))[-1]["error"]
    assert error["message"] == "We encountered an internal error." and error["code"] == "InternalFailure"


def test_stream_ending_before_message_stop_is_an_error_not_done() -> None:
    data = event_frame("messageStart", {"role": "assistant"}) + event_frame(
        "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "cut"}}
    )
    payloads = events(run(data))
    assert payloads[-1]["error"]["code"] == "truncated_stream"
    assert "[DONE]" not in payloads


def test_corrupt_frame_crc_is_an_error_event() -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF
    payloads = events(run(bytes(frame)))
    assert payloads == [
        {
            "error": {
                "message": "Bedrock sent a malformed event stream (ChecksumMismatch)",
                "type": "upstream_error",
                "code": "bad_event_stream",
                "param": None,
            }
        }
    ]


def test_nothing_is_emitted_after_an_error() -> None:
    t = translator()
    t.feed(exception_frame("internalServerException", "boom"))
    assert t.feed(event_frame("messageStart", {"role": "assistant"})) == b""
    assert t.finish() == b""


def test_partial_frame_waits_for_the_rest() -> None:
    frame = event_frame("messageStart", {"role": "assistant"})
    t = translator()
    assert t.feed(frame[:5]) == b""
    assert t.feed(frame[5:-1]) == b""
    assert b'"role":"assistant"' in t.feed(frame[-1:])


def test_reasoning_deltas_are_dropped_in_strict_mode() -> None:
    payloads = events(run(eventstream("stream-reasoning"), strict=True))
    assert not any("reasoning_content" in orjson.dumps(p).decode() for p in payloads)
    assert [p["choices"][0]["delta"].get("content") for p in payloads[1:-3]] == ["4"]


def test_text_delta_before_message_start_still_gets_a_role_chunk() -> None:
    data = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}) + event_frame(
        "messageStop", {"stopReason": "end_turn"}
    )
    payloads = events(run(data))
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[1]["choices"][0]["delta"] == {"content": "hi"}


def test_frame_prelude_is_big_endian_lengths_with_crc() -> None:
    frame = encode_frame({":event-type": "x"}, b"{}")
    total, headers = struct.unpack(">II", frame[:8])
    assert total == len(frame) and headers == len(frame) - 12 - 2 - 4


def _tool_start(index: int, tool_id: str, name: str) -> bytes:
    return event_frame(
        "contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": tool_id, "name": name}}}
    )


def test_tool_call_without_input_gets_empty_object_arguments() -> None:
    data = (
        event_frame("messageStart", {"role": "assistant"})
        + _tool_start(0, "t1", "now")
        + event_frame("contentBlockStop", {"contentBlockIndex": 0})
        + event_frame("messageStop", {"stopReason": "tool_use"})
    )
    calls = [c for p in events(run(data))[:-1] if p["choices"] for c in p["choices"][0]["delta"].get("tool_calls", [])]
    assert "".join(c["function"]["arguments"] for c in calls) == "{}"


def test_tool_call_without_input_or_block_stop_still_gets_arguments_before_the_finish() -> None:
    data = (
        event_frame("messageStart", {"role": "assistant"})
        + _tool_start(0, "t1", "now")
        + event_frame("messageStop", {"stopReason": "tool_use"})
    )
    payloads = events(run(data))
    assert payloads[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert payloads[-4]["choices"][0]["delta"] == {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}


def test_role_chunk_is_not_content_but_text_is() -> None:
    t = translator()
    t.feed(event_frame("messageStart", {"role": "assistant"}))
    assert not t.content_sent
    t.feed(event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}))
    assert t.content_sent and t.error_status is None


def test_exception_event_records_its_status() -> None:
    t = translator()
    t.feed(event_frame("messageStart", {"role": "assistant"}) + exception_frame("throttlingException", "slow"))
    assert t.error_status == 429 and not t.content_sent


def test_a_frame_longer_than_the_event_cap_raises_before_it_is_buffered_whole() -> None:
    small = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
    big = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x" * 5000}})
    t = BedrockStreamTranslator(MODEL, "chatcmpl-cap", 1700000000, max_event_bytes=2000)
    assert b'"Hi"' in t.feed(event_frame("messageStart", {"role": "assistant"}) + small)
    with pytest.raises(BadGateway) as raised:
        for i in range(0, 2500, 500):
            t.feed(big[i : i + 500])
    assert raised.value.code == "sse_line_too_long"
    assert i < 2500, "the frame was fed whole before the cap was noticed"
    with pytest.raises(BadGateway):
        t.finish()


def test_frames_before_an_over_long_frame_go_out_first() -> None:
    t = BedrockStreamTranslator(MODEL, "chatcmpl-cap", 1700000000, max_event_bytes=2000)
    small = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
    big = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x" * 5000}})
    assert b'"Hi"' in t.feed(event_frame("messageStart", {"role": "assistant"}) + small + big[:2500])
    with pytest.raises(BadGateway):
        t.feed(big[2500:])


def test_frames_within_the_event_cap_pass_in_any_split() -> None:
    data = eventstream("stream-text")
    longest = max(len(frame) for frame in split_frames(data))
    t = BedrockStreamTranslator(MODEL, "chatcmpl-golden", 1700000000, max_event_bytes=longest)
    out = b"".join(t.feed(data[i : i + 7]) for i in range(0, len(data), 7)) + t.finish()
    assert out == run(data)


def split_frames(data: bytes) -> list[bytes]:
    """The frames of an event stream (each starts with its big-endian total length)."""
    frames = []
    while data:
        length = struct.unpack(">I", data[:4])[0]
        frames.append(data[:length])
        data = data[length:]
    return frames
