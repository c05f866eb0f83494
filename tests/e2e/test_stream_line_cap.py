"""The SSE line cap (`--max-sse-line-bytes`, default 1 MiB): an upstream stream event line longer than it
ends the stream, with bounded memory however long the line grows.

After content has reached the caller, the stream ends with the caller dialect's error event (OpenAI
`data: {"error": ...}` without `[DONE]`; Messages `event: error` without `message_stop`) and the log row
says truncated. Before any content the attempt fails as a 502, so a virtual model falls back. The
upstream (`HoldingUpstream`) writes an endless line lazily; the gateway must stop reading it (close the
connection) soon after the cap, and its RSS must not grow with the line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import _factory
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import GatewayProcess, HttpResult
from tests.upstreams.holding_upstream import Held, HoldingUpstream, chunk, head

MIB = 1 << 20
ENDLESS = 64 * MIB  # how much of the over-long line the upstream is prepared to write

OPENAI_CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"%s"},"finish_reason":null}]}\n\n'
)
OPENAI_END = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\ndata: [DONE]\n\n'
)
ANTHROPIC_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"claude-cap","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hello"}}\n\n'
)

CONFIG = """\
type: provider-account/openai
name: cap-oai
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-cap-oai-key}
integrations:
  - {name: model, type: integration/model/openai, model_id: cap-model, model_types: [chat]}
---
type: provider-account/openai
name: good-oai
base_url: http://127.0.0.1:{port}/good/v1
auth_data: {type: api-key, api_key: sk-good-oai-key}
integrations:
  - {name: model, type: integration/model/openai, model_id: good-model, model_types: [chat]}
---
type: provider-account/anthropic
name: cap-claude
base_url: http://127.0.0.1:{port}
auth_data: {type: api-key, api_key: sk-ant-cap-key}
integrations:
  - {name: sonnet, type: integration/model/anthropic, model_id: claude-cap, model_types: [chat]}
---
type: provider-account/virtual-model
name: vmod
integrations:
  - name: long-then-good
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{target: cap-oai/model, priority: 0}, {target: good-oai/model, priority: 1}]
"""


def endless_line(prefix: bytes) -> Iterator[bytes]:
    """A chunked body piece by piece: `prefix`, then one line that never ends (until ENDLESS bytes)."""
    yield chunk(prefix + b"data: ")
    piece = chunk(b"x" * (256 * 1024))
    for _ in range(ENDLESS // (256 * 1024)):
        yield piece


def answer(path: str, body: bytes) -> bytes | Iterable[bytes]:
    """The caller's prompt names the case: where the long line comes and how long it is."""
    prompt = body.decode()
    sse = head(200, "text/event-stream")
    if path.startswith("/good/"):
        return sse + chunk(OPENAI_CHUNK % b"fine" + OPENAI_END) + b"0\r\n\r\n"
    if "line-of-10k" in prompt:  # a 10 KB line between two content events, then a clean end
        line = (
            b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
            b'[{"index":0,"delta":{"content":"' + b"y" * 10_000 + b'"},"finish_reason":null}]}\n\n'
        )
        return sse + chunk(OPENAI_CHUNK % b"Hello" + line + OPENAI_END) + b"0\r\n\r\n"
    if "long-first" in prompt:
        return [sse, *endless_line(b"")]
    first = ANTHROPIC_START if path == "/v1/messages" else OPENAI_CHUNK % b"Hello"
    return [sse, *endless_line(first)]


@pytest.fixture(scope="module")
def upstream() -> Iterator[HoldingUpstream]:
    with HoldingUpstream(answer, hold=10).running() as server:
        yield server


def start_gateway(root: Path, upstream: HoldingUpstream, *flags: str) -> Iterator[tuple[GatewayProcess, str]]:
    factory, started = _factory(root, GatewayProcess)
    try:
        gw = factory(CONFIG, start=False, port=upstream.port)
        gw.serve_args = list(flags)
        gw.start()
        yield gw, gw.create_token(user="alice@example.com")
    finally:
        for gw in started:
            gw.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: HoldingUpstream
) -> Iterator[tuple[GatewayProcess, str]]:
    yield from start_gateway(tmp_path_factory.mktemp("line-cap"), upstream)


def rss_kib(gw: GatewayProcess) -> int:
    assert gw.process is not None
    for line in Path(f"/proc/{gw.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def call(gw: GatewayProcess, token: str, path: str, model: str, prompt: str) -> HttpResult:
    body: dict[str, Any] = {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    if path.endswith("/messages"):
        body["max_tokens"] = 64
    return gw.request("POST", path, token=token, json=body, headers={"anthropic-version": "2023-06-01"})


def sse_events(body: bytes) -> list[tuple[str | None, Any]]:
    events = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, b""
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if data:
            events.append((name, data if data == b"[DONE]" else orjson.loads(data)))
    return events


def assert_logged_truncated(gw: GatewayProcess, result: HttpResult) -> None:
    row = gw.wait_for_log(str(result.headers["x-request-id"]))
    assert row["status"] == 200 and row["truncated"] is True, row
    assert row["error_type"] == "upstream_error" and "max_sse_line_bytes" in row["error_message"], row


def test_endless_line_after_content_ends_an_openai_stream_with_an_error_event_and_bounded_memory(
    gateway: tuple[GatewayProcess, str], upstream: HoldingUpstream
) -> None:
    gw, token = gateway
    call(gw, token, "/api/llm/chat/completions", "good-oai/model", "warm up")
    before = rss_kib(gw)
    seen = upstream.mark()
    result = call(gw, token, "/api/llm/chat/completions", "cap-oai/model", "endless line " + os.urandom(4).hex())
    held = upstream.request_since(seen, "/v1/chat/completions")

    assert result.status == 200
    events = sse_events(result.body)
    assert events[0][1]["choices"][0]["delta"]["content"] == "Hello"
    assert b"[DONE]" not in [data for _, data in events]
    error = assert_error_shape(events[-1][1])
    assert error["code"] == "sse_line_too_long" and str(MIB) in error["message"], error
    assert_logged_truncated(gw, result)

    assert_stopped_reading(held)
    grown = rss_kib(gw) - before
    assert grown < 24 * 1024, f"gateway RSS grew by {grown} KiB while the line grew"


@pytest.mark.parametrize("native", [True, False], ids=["native", "translated"])
def test_endless_line_after_content_ends_a_messages_stream_with_an_error_event(
    gateway: tuple[GatewayProcess, str], native: bool
) -> None:
    gw, token = gateway
    result = call(gw, token, "/api/llm/messages", "cap-claude/sonnet" if native else "cap-oai/model", "endless")
    assert result.status == 200
    events = sse_events(result.body)
    names = [name for name, _ in events]
    assert "content_block_delta" in names and "message_stop" not in names, names
    assert names[-1] == "error", names
    payload = events[-1][1]
    assert payload["type"] == "error" and payload["error"]["type"] == "api_error", payload
    assert "max_sse_line_bytes" in payload["error"]["message"]
    assert_logged_truncated(gw, result)


def test_endless_line_after_content_ends_a_chat_stream_translated_from_anthropic(
    gateway: tuple[GatewayProcess, str],
) -> None:
    gw, token = gateway
    result = call(gw, token, "/api/llm/chat/completions", "cap-claude/sonnet", "endless")
    assert result.status == 200
    events = sse_events(result.body)
    assert any(e[1].get("choices") and e[1]["choices"][0]["delta"].get("content") == "Hello" for e in events[:-1])
    assert b"[DONE]" not in [data for _, data in events]
    assert assert_error_shape(events[-1][1])["code"] == "sse_line_too_long"
    assert_logged_truncated(gw, result)


def assert_stopped_reading(held: Held) -> None:
    assert held.closed.wait(15) and held.closed_at is not None, "the gateway kept reading the endless line"
    assert held.sent < 16 * MIB, f"the gateway read {held.sent} bytes of a line capped at 1 MiB"


def test_long_line_before_any_content_is_a_502(gateway: tuple[GatewayProcess, str], upstream: HoldingUpstream) -> None:
    gw, token = gateway
    seen = upstream.mark()
    result = call(gw, token, "/api/llm/chat/completions", "cap-oai/model", "long-first")
    assert result.status == 502, result.body[:300]
    assert result.headers.get("x-request-id")
    assert assert_error_shape(result.json())["code"] == "sse_line_too_long"
    assert_stopped_reading(upstream.request_since(seen, "/v1/chat/completions"))


def test_long_line_before_any_content_falls_back_to_the_next_target(
    gateway: tuple[GatewayProcess, str], upstream: HoldingUpstream
) -> None:
    gw, token = gateway
    seen = upstream.mark()
    result = call(gw, token, "/api/llm/chat/completions", "vmod/long-then-good", "long-first")
    assert_stopped_reading(upstream.request_since(seen, "/v1/chat/completions"))
    assert result.status == 200, result.body[:300]
    assert result.headers.get("x-tfy-resolved-model") == "good-oai/model"
    events = sse_events(result.body)
    assert events[-1][1] == b"[DONE]"
    assert events[0][1]["choices"][0]["delta"]["content"] == "fine"


def test_the_cap_is_configurable(
    tmp_path: Path, gateway: tuple[GatewayProcess, str], upstream: HoldingUpstream
) -> None:
    gw, token = gateway
    assert call(gw, token, "/api/llm/chat/completions", "cap-oai/model", "line-of-10k").body.endswith(
        b"data: [DONE]\n\n"
    ), "a 10 KB line is well within the default cap"
    for small, small_token in start_gateway(tmp_path, upstream, "--max-sse-line-bytes", "4096"):
        result = call(small, small_token, "/api/llm/chat/completions", "cap-oai/model", "line-of-10k")
        events = sse_events(result.body)
        assert b"[DONE]" not in [data for _, data in events]
        error = assert_error_shape(events[-1][1])
        assert error["code"] == "sse_line_too_long" and "4096 bytes" in error["message"]
