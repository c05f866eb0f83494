"""Golden translations: OpenAI request -> Messages body, Anthropic Message -> chat completion, SSE -> chunks."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.providers.anthropic.request import to_anthropic_request
from relaygate.providers.anthropic.response import from_anthropic_response
from relaygate.providers.anthropic.stream import AnthropicStreamTranslator, from_anthropic_stream
from tests.helpers.golden import CREATED
from tests.helpers.sse import sse_events
from tests.providers.anthropic.golden import GOLDEN

MODEL = "claude-requested"  # what the adapter passes as the fallback model name


@pytest.mark.parametrize("name", GOLDEN.names("request_*.json"))
def test_request_translation(name: str) -> None:
    GOLDEN.check_case(name, "anthropic", to_anthropic_request(GOLDEN.case(name)["openai"]))


@pytest.mark.parametrize("name", GOLDEN.names("response_*.json"))
def test_response_translation(name: str) -> None:
    data = GOLDEN.case(name)
    options: dict[str, Any] = data.get("options") or {}
    GOLDEN.check_case(name, "openai", from_anthropic_response(data["anthropic"], MODEL, created=CREATED, **options))


@pytest.mark.parametrize("name", GOLDEN.names("stream_*.json"))
def test_stream_translation(name: str) -> None:
    data = GOLDEN.case(name)
    out = from_anthropic_stream(GOLDEN.read_bytes(data["sse"]), MODEL, created=CREATED, **data["options"])
    GOLDEN.check_case(name, "events", sse_events(out))


@pytest.mark.parametrize("name", GOLDEN.names("stream_*.json"))
def test_stream_translation_does_not_depend_on_how_bytes_are_split(name: str) -> None:
    data = GOLDEN.case(name)
    source = GOLDEN.read_bytes(data["sse"])
    whole = from_anthropic_stream(source, MODEL, created=CREATED, **data["options"])
    byte_by_byte = from_anthropic_stream(
        [source[i : i + 1] for i in range(len(source))], MODEL, created=CREATED, **data["options"]
    )
    uneven = [source[i : i + 13] for i in range(0, len(source), 13)]
    assert byte_by_byte == whole
    assert from_anthropic_stream(uneven, MODEL, created=CREATED, **data["options"]) == whole


def test_stream_feed_returns_events_as_soon_as_they_complete() -> None:
    source = GOLDEN.read_bytes("stream_basic.anthropic.sse")
    translator = AnthropicStreamTranslator(MODEL, created=CREATED)
    first_event_end = source.index(b"\n\n") + 2
    out = translator.feed(source[:first_event_end])
    assert sse_events(out)[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert translator.feed(b'event: content_block_start\ndata: {"type":') == b"", "a partial event must wait"
