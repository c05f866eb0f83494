"""Every stream parser the gateway splits upstream bytes with enforces the SSE line cap (a 502).

The OpenAI and Messages pass-through filters and each provider's stream translator hold at most one
partial event; given a cap, an event line longer than it raises `sse_line_too_long` however the bytes
are split, after handing out the whole events that came before it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from relaygate.context import Usage
from relaygate.dialects.anthropic_messages.from_openai import MessagesStreamFromOpenAI
from relaygate.dialects.anthropic_messages.stream import MessagesStreamFilter
from relaygate.dialects.openai.stream import StreamFilter
from relaygate.errors import BadGateway
from relaygate.providers.anthropic.stream import AnthropicStreamTranslator
from relaygate.providers.cohere.stream import CohereStreamTranslator
from relaygate.providers.gemini.stream import GeminiStreamTranslator

CAP = 4096
OPENAI_EVENT = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
)
ANTHROPIC_EVENT = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
)
ANTHROPIC_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
    b'"model":"m","usage":{"input_tokens":1}}}\n\nevent: content_block_start\ndata: {"type":'
    b'"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
)
GEMINI_EVENT = b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]},"index":0}]}\r\n\r\n'
COHERE_EVENT = (
    b'event: message-start\ndata: {"type":"message-start","id":"x"}\n\nevent: content-delta\n'
    b'data: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Hi"}}}}\n\n'
)

Parser = Callable[[bytes], bytes]
PARSERS: dict[str, tuple[Callable[[], Parser], bytes]] = {
    "openai-filter": (lambda: StreamFilter(True, Usage(), CAP).feed, OPENAI_EVENT),
    "messages-filter": (lambda: MessagesStreamFilter(Usage(), CAP).feed, ANTHROPIC_EVENT),
    "anthropic": (lambda: AnthropicStreamTranslator("m", max_event_bytes=CAP).feed, ANTHROPIC_START + ANTHROPIC_EVENT),
    "gemini": (lambda: GeminiStreamTranslator("m", max_event_bytes=CAP).feed, GEMINI_EVENT),
    "cohere": (lambda: CohereStreamTranslator("m", max_event_bytes=CAP).feed, COHERE_EVENT),
    "messages-from-openai": (lambda: MessagesStreamFromOpenAI("m", None, CAP).feed, OPENAI_EVENT),
}


@pytest.mark.parametrize("name", list(PARSERS))
def test_a_line_longer_than_the_cap_raises_after_the_events_before_it(name: str) -> None:
    new, event = PARSERS[name]
    feed = new()
    assert b"Hi" in feed(event)
    with pytest.raises(BadGateway) as raised:
        for _ in range(CAP // 512 + 2):
            feed(b"data: " + b"x" * 512)
    assert raised.value.code == "sse_line_too_long" and f"{CAP} bytes" in raised.value.message


@pytest.mark.parametrize("name", list(PARSERS))
def test_lines_within_the_cap_pass(name: str) -> None:
    new, event = PARSERS[name]
    feed = new()
    out = b"".join(feed(event[i : i + 3]) for i in range(0, len(event), 3))
    assert b"Hi" in out
