"""Golden translations for the inbound Messages API: Anthropic request -> OpenAI request, and back."""

from __future__ import annotations

import pytest

from relaygate.dialects.anthropic_messages.from_openai import MessagesStreamFromOpenAI
from relaygate.dialects.anthropic_messages.translation import (
    messages_response_from_openai,
    openai_request_from_messages,
)
from tests.dialects.anthropic_messages.golden import GOLDEN, cases


@pytest.mark.parametrize("name", cases("request", "json"))
def test_request_translation_matches_golden(name: str) -> None:
    body = GOLDEN.read_json(f"request/{name}.in.json")
    GOLDEN.check_json(f"request/{name}.out.json", openai_request_from_messages(body))


@pytest.mark.parametrize("name", cases("response", "json"))
def test_response_translation_matches_golden(name: str) -> None:
    body = GOLDEN.read_json(f"response/{name}.in.json")
    GOLDEN.check_json(f"response/{name}.out.json", messages_response_from_openai(body, "relay/model"))


def translate_stream(raw: bytes, step: int | None = None) -> bytes:
    """Feed `raw` whole (step None) or in `step`-byte pieces; the events out, finish included."""
    translator = MessagesStreamFromOpenAI("relay/model")
    if step is None:
        return translator.feed(raw) + translator.finish()
    out = b"".join(translator.feed(raw[i : i + step]) for i in range(0, len(raw), step))
    return out + translator.finish()


@pytest.mark.parametrize("name", cases("stream", "sse"))
def test_stream_translation_matches_golden(name: str) -> None:
    raw = GOLDEN.read_bytes(f"stream/{name}.in.sse")
    GOLDEN.check_bytes(f"stream/{name}.out.sse", translate_stream(raw))


@pytest.mark.parametrize("name", cases("stream", "sse"))
@pytest.mark.parametrize("step", [1, 7, 64])
def test_stream_translation_is_independent_of_chunking(name: str, step: int) -> None:
    raw = GOLDEN.read_bytes(f"stream/{name}.in.sse")
    assert translate_stream(raw, step) == translate_stream(raw)


def test_stream_translation_accepts_crlf_framing() -> None:
    raw = GOLDEN.read_bytes("stream/text.in.sse")
    assert translate_stream(raw.replace(b"\n", b"\r\n"), 5) == translate_stream(raw)
