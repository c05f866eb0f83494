"""SSEBuffer: whole events out of any split of the bytes, CRLF normalised, the tail handed over at the end."""

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
