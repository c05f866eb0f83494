"""A caller that leaves closes the upstream connection within a second, in every phase of the exchange.

Phases, as the upstream (`HoldingUpstream`) sees them: the request arrived but no answer yet (before
headers); the response head was sent but no event or body byte (after headers, the case that used to
wait for the upstream's first byte); the first event or part of the body was sent (mid-answer). Routes:
chat completions and completions (OpenAI upstream), chat to an Anthropic upstream (translated), and the
Messages API both native (Anthropic upstream) and translated (OpenAI upstream); each streaming and not.
The caller is a raw socket that closes at the chosen moment; every such request is logged 499.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import _factory
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.holding_upstream import HoldingUpstream, chunk, head

CANCEL_WITHIN = 1.0  # seconds from the caller leaving to the upstream connection closing
SETTLE = 0.3  # seconds the gateway is given to be waiting on the upstream before the caller leaves

CONFIG = """\
type: provider-account/openai
name: held-oai
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-held-oai-key}
integrations:
  - {name: model, type: integration/model/openai, model_id: held-model, model_types: [chat, completion]}
---
type: provider-account/anthropic
name: held-claude
base_url: http://127.0.0.1:{port}
auth_data: {type: api-key, api_key: sk-ant-held-key}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-held, model_types: [chat]}
"""

OPENAI_CHAT_EVENT = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"held-model",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n'
)
OPENAI_TEXT_EVENT = (
    b'data: {"id":"c1","object":"text_completion","created":1,"model":"held-model",'
    b'"choices":[{"index":0,"text":"Hel","logprobs":null,"finish_reason":null}]}\n\n'
)
ANTHROPIC_EVENTS = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"claude-held","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hel"}}\n\n'
)
FIRST_EVENTS = {
    "/v1/chat/completions": OPENAI_CHAT_EVENT,
    "/v1/completions": OPENAI_TEXT_EVENT,
    "/v1/messages": ANTHROPIC_EVENTS,
}


def answer(path: str, body: bytes) -> bytes:
    """What the upstream writes before holding: the phase is named in the caller's prompt."""
    stream = orjson.loads(body).get("stream") is True
    if b"phase-before-headers" in body:
        return b""
    if b"phase-after-headers" in body:
        return head(200, "text/event-stream") if stream else head(200, length=1000)
    if stream:
        return head(200, "text/event-stream") + chunk(FIRST_EVENTS[path])
    return head(200, length=1000) + b'{"id": "partial-answer", "object": "chat.com'


# route -> (gateway path, model, upstream path)
ROUTES = {
    "chat": ("/api/llm/chat/completions", "held-oai/model", "/v1/chat/completions"),
    "completions": ("/api/llm/completions", "held-oai/model", "/v1/completions"),
    "chat-to-anthropic": ("/api/llm/chat/completions", "held-claude/sonnet", "/v1/messages"),
    "messages-native": ("/api/llm/messages", "held-claude/sonnet", "/v1/messages"),
    "messages-translated": ("/api/llm/messages", "held-oai/model", "/v1/chat/completions"),
}
PHASES = ("before-headers", "after-headers", "mid-answer")


def request_body(route: str, model: str, phase: str, stream: bool) -> dict[str, Any]:
    prompt = f"phase-{phase} please answer"
    body: dict[str, Any] = {"model": model, "stream": stream}
    if route == "completions":
        body["prompt"] = prompt
    else:
        body["messages"] = [{"role": "user", "content": prompt}]
    if route.startswith("messages"):
        body["max_tokens"] = 64
    return body


@pytest.fixture(scope="module")
def upstream() -> Iterator[HoldingUpstream]:
    with HoldingUpstream(answer).running() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: HoldingUpstream) -> Iterator[tuple[GatewayThread, str]]:
    factory, started = _factory(tmp_path_factory.mktemp("disconnect"))
    try:
        gw = factory(CONFIG, port=upstream.port)
        yield gw, gw.create_token(user="alice@example.com")
    finally:
        for gw in started:
            gw.stop()


def open_request(gw: GatewayThread, token: str, path: str, body: dict[str, Any], request_id: str) -> socket.socket:
    """Send the request on a raw socket and return it (the caller decides when to leave)."""
    data = orjson.dumps(body)
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\nx-request-id: {request_id}\r\n"
        f"anthropic-version: 2023-06-01\r\n\r\n".encode("latin-1")
        + data
    )
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    received = b""
    while marker not in received:
        piece = sock.recv(65536)
        assert piece, f"the gateway closed before sending {marker!r}: {received[:500]!r}"
        received += piece
    return received


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_caller_leaving_closes_the_upstream_within_a_second_and_logs_499(
    gateway: tuple[GatewayThread, str], upstream: HoldingUpstream, route: str, stream: bool, phase: str
) -> None:
    gw, token = gateway
    path, model, upstream_path = ROUTES[route]
    request_id = f"leave-{route}-{phase}-{'s' if stream else 'n'}-{os.urandom(4).hex()}"
    seen = upstream.mark()
    sock = open_request(gw, token, path, request_body(route, model, phase, stream), request_id)
    held = upstream.request_since(seen, upstream_path)
    assert held.answered.wait(10), "the upstream never answered its part"
    if phase == "mid-answer" and stream:
        read_until(sock, b"Hel")  # the first content reached the caller: the stream is being relayed
    else:
        time.sleep(SETTLE)  # the gateway is now waiting on the upstream (headers, first event or body)
    sock.close()
    left_at = time.monotonic()

    assert held.closed.wait(upstream.hold + 5)
    assert held.closed_at is not None, f"the upstream connection was held {upstream.hold}s after the caller left"
    assert held.closed_at - left_at < CANCEL_WITHIN, (
        f"the upstream connection closed {held.closed_at - left_at:.2f}s after the caller left"
    )
    row = gw.wait_for_log(request_id)
    assert row["status"] == 499, row
