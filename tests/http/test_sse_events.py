"""SSEBuffer: whole events out of any split of the bytes, CRLF normalised, the tail handed over at the end,
and no event (or line) longer than the cap."""

import pytest

from relaygate.errors import BadGateway
from relaygate.http.sse_events import SSEBuffer

STREAM = b"event: a\ndata: 1\n\ndata: 2\n\n: keep-alive\n\ndata: 3\n\n"
EVENTS = [b"event: a\ndata: 1", b"data: 2", b": keep-alive", b"data: 3"]


def test_take_returns_whole_events_with_their_blank_lines() -> None:
    buffer = SSEBuffer()
    assert buffer.take(STREAM[:12]) == b""
    assert buffer.take(STREAM[12:]) == STREAM
    assert buffer.take_rest() == b""


def test_take_events_gives_the_same_events_for_every_split() -> None:
    for cut in range(len(STREAM) + 1):
        buffer = SSEBuffer()
        events = buffer.take_events(STREAM[:cut]) + buffer.take_events(STREAM[cut:])
        assert events == EVENTS, cut


def test_crlf_split_between_chunks_is_normalised() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    for cut in range(len(crlf) + 1):
        buffer = SSEBuffer()
        assert buffer.take(crlf[:cut]) + buffer.take(crlf[cut:]) == STREAM, cut


def test_take_rest_hands_over_an_unterminated_tail_once() -> None:
    buffer = SSEBuffer()
    assert buffer.take_events(b"data: 1\n\ndata: [DONE]") == [b"data: 1"]
    assert buffer.take_rest() == b"data: [DONE]"
    assert buffer.take_rest() == b""


# -- the SSE line cap (max_sse_line_bytes) ---------------------------------------------------------


def test_a_line_growing_past_the_cap_raises_before_the_buffer_holds_much_more() -> None:
    buffer = SSEBuffer(1000)
    assert buffer.take(b"data: 1\n\n") == b"data: 1\n\n"
    fed = 0
    with pytest.raises(BadGateway) as raised:
        for _ in range(100):  # an endless line, 100 bytes at a time
            buffer.take(b"x" * 100)
            fed += 100
    assert fed <= 1000, "the line was buffered well past the cap"
    assert raised.value.status == 502 and raised.value.code == "sse_line_too_long"
    assert "1000 bytes" in raised.value.message
    with pytest.raises(BadGateway):
        buffer.take_rest()  # the stream cannot end cleanly after an over-long line


def test_an_over_long_event_in_one_chunk_raises_after_the_events_before_it() -> None:
    buffer = SSEBuffer(1000)
    assert buffer.take(b"data: 1\n\ndata: " + b"x" * 1000 + b"\n\ndata: 2\n\n") == b"data: 1\n\n"
    with pytest.raises(BadGateway):
        buffer.take(b"data: 3\n\n")
    with pytest.raises(BadGateway):
        SSEBuffer(1000).take(b"data: " + b"x" * 1000 + b"\n\ndata: 2\n\n")


def test_many_short_events_in_one_chunk_pass_whatever_their_total() -> None:
    buffer = SSEBuffer(1000)
    stream = b"data: " + b"y" * 500 + b"\n\n"
    assert buffer.take(stream * 10) == stream * 10


def test_an_event_exactly_at_the_cap_passes() -> None:
    event = b"data: " + b"z" * 994  # 1000 bytes before its blank line
    buffer = SSEBuffer(1000)
    assert buffer.take(event[:600]) == b""
    assert buffer.take(event[600:] + b"\n\n") == event + b"\n\n"
    with pytest.raises(BadGateway):
        SSEBuffer(1000).take(event + b"!\n\n")


def test_crlf_events_are_measured_after_normalising() -> None:
    event = b"data: " + b"z" * 990 + b"\r\n\r\n"  # a 996-byte line, 997 with its \r
    assert SSEBuffer(996).take(event) == event.replace(b"\r\n", b"\n")
