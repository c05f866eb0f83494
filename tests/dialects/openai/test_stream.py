"""The SSE filter: whole events relayed, usage read, the unasked usage chunk withheld."""

import orjson

from relaygate.context import Usage
from relaygate.dialects.openai.stream import StreamFilter, has_usage_object, read_usage


def _event(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


CONTENT = _event({"choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None})
USAGE = _event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})
DONE = b"data: [DONE]\n\n"


def test_usage_null_is_not_a_usage_object() -> None:
    assert not has_usage_object(b'{"usage": null}')
    assert has_usage_object(b'{"usage" :  {"prompt_tokens": 1}}')


def test_content_events_pass_through_byte_for_byte() -> None:
    f = StreamFilter(wants_usage=False, usage=Usage())
    assert f.feed(CONTENT) == CONTENT


def test_partial_event_waits_for_its_end() -> None:
    f = StreamFilter(wants_usage=True, usage=Usage())
    assert f.feed(CONTENT[:10]) == b""
    assert f.feed(CONTENT[10:]) == CONTENT


def test_usage_chunk_withheld_when_not_asked_but_counted() -> None:
    usage = Usage()
    f = StreamFilter(wants_usage=False, usage=usage)
    out = f.feed(CONTENT + USAGE + DONE)
    assert out == CONTENT + DONE
    assert (usage.input_tokens, usage.output_tokens) == (7, 3)


def test_usage_chunk_relayed_when_asked() -> None:
    usage = Usage()
    f = StreamFilter(wants_usage=True, usage=usage)
    assert f.feed(CONTENT + USAGE + DONE) == CONTENT + USAGE + DONE
    assert usage.output_tokens == 3


def test_usage_on_a_content_chunk_is_stripped_when_not_asked() -> None:
    usage = Usage()
    f = StreamFilter(wants_usage=False, usage=usage)
    mixed = _event(
        {"choices": [{"index": 0, "delta": {"content": "x"}}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    )
    out = f.feed(mixed)
    assert b'"usage"' not in out and b'"content":"x"' in out
    assert usage.input_tokens == 2


def test_crlf_framing_is_normalised() -> None:
    f = StreamFilter(wants_usage=True, usage=Usage())
    assert f.feed(CONTENT.replace(b"\n", b"\r\n")) == CONTENT


def test_flush_returns_an_unterminated_tail() -> None:
    f = StreamFilter(wants_usage=True, usage=Usage())
    assert f.feed(b"data: [DONE]") == b""
    assert f.flush() == DONE


def test_read_usage_takes_cache_and_reasoning_details() -> None:
    usage = Usage()
    read_usage(
        {
            "prompt_tokens": 120,
            "completion_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 30},
        },
        usage,
    )
    assert (usage.input_tokens, usage.output_tokens) == (120, 40)
    assert usage.details() == {"cached_tokens": 100, "cache_write_tokens": 10, "reasoning_tokens": 30}


def test_read_usage_takes_responses_api_details() -> None:
    usage = Usage()
    read_usage(
        {
            "input_tokens": 50,
            "output_tokens": 9,
            "input_tokens_details": {"cached_tokens": 20},
            "output_tokens_details": {"reasoning_tokens": 4},
        },
        usage,
    )
    assert (usage.input_tokens, usage.cached_tokens, usage.reasoning_tokens) == (50, 20, 4)
