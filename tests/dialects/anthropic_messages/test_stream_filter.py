"""The gateway's Anthropic stream filter: usage and error events read, bytes relayed unchanged."""

from __future__ import annotations

import orjson

from relaygate.context import Usage
from relaygate.dialects.anthropic_messages.stream import (
    MessagesStreamFilter,
    messages_first_verdict,
    read_messages_usage,
)

START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,'
    b'"output_tokens":1}}}\n\n'
)
BLOCK = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
)
PING = b'event: ping\ndata: {"type": "ping"}\n\n'
DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
)
STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
MESSAGE_DELTA = (
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
    b'"stop_sequence":null},"usage":{"output_tokens":15}}\n\n'
)
MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
ERROR = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
STREAM = START + BLOCK + PING + DELTA + STOP + MESSAGE_DELTA + MESSAGE_STOP


def test_filter_relays_bytes_unchanged_whatever_the_split() -> None:
    for step in (1, 3, 50, len(STREAM)):
        stream_filter = MessagesStreamFilter(Usage())
        out = b"".join(stream_filter.feed(STREAM[i : i + step]) for i in range(0, len(STREAM), step))
        assert out + stream_filter.flush() == STREAM
        assert stream_filter.error is None


def test_usage_counts_cache_reads_and_writes_as_input() -> None:
    stream_filter = MessagesStreamFilter(Usage())
    stream_filter.feed(STREAM)
    assert stream_filter.usage == Usage(input_tokens=135, output_tokens=15, cached_tokens=100, cache_write_tokens=10)


def test_cumulative_usage_in_message_delta_overrides_message_start() -> None:
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 30, "cache_read_input_tokens": 0, "output_tokens": 20},
    }
    stream_filter = MessagesStreamFilter(Usage())
    stream_filter.feed(START + b"event: message_delta\ndata: " + orjson.dumps(delta) + b"\n\n")
    assert stream_filter.usage == Usage(input_tokens=40, output_tokens=20, cached_tokens=0, cache_write_tokens=10)


def test_error_event_is_recorded() -> None:
    stream_filter = MessagesStreamFilter(Usage())
    stream_filter.feed(START + DELTA + ERROR)
    assert stream_filter.error == {"type": "overloaded_error", "message": "Overloaded"}


def test_text_mentioning_error_is_not_an_error() -> None:
    text = DELTA.replace(b'"Hi"', b'"an error occurred"')
    stream_filter = MessagesStreamFilter(Usage())
    stream_filter.feed(text)
    assert stream_filter.error is None


def test_unterminated_last_event_is_flushed_and_read() -> None:
    stream_filter = MessagesStreamFilter(Usage())
    stream_filter.feed(START + MESSAGE_DELTA[:-2])
    assert stream_filter.flush() == MESSAGE_DELTA
    assert stream_filter.usage.output_tokens == 15


def test_first_verdict_skips_preamble_events() -> None:
    assert messages_first_verdict(START + BLOCK + PING) is None
    assert messages_first_verdict(START + BLOCK + DELTA) == "content"
    assert messages_first_verdict(START + ERROR) == "error"
    assert messages_first_verdict(START + MESSAGE_DELTA) == "content"  # an empty answer is still an answer


def test_thinking_tokens_are_reasoning_tokens() -> None:
    usage = Usage()
    read_messages_usage(
        {"input_tokens": 3, "output_tokens": 40, "output_tokens_details": {"thinking_tokens": 25}}, usage
    )
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (3, 40, 25)
