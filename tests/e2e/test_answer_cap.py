"""The read cap on non-streaming LLM answers (`--max-answer-bytes`, default 64 MiB).

An answer larger than the cap is a 502 (`upstream_answer_too_large`, the message names the cap) as
soon as the cap is passed, with the gateway's memory bounded by the cap, not by the answer: the
upstream (`HoldingUpstream`) writes a 300 MiB answer lazily and sees the gateway close the connection
long before the end. A declared Content-Length over the cap is refused before reading. Error answers
are kept up to 1 MiB and relayed with their own status. A virtual model falls back from such an answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import _factory
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import GatewayProcess, HttpResult
from tests.upstreams.holding_upstream import HoldingUpstream, chunk, head

MIB = 1 << 20
HUGE = 300 * MIB


def completion(content: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-cap",
            "object": "chat.completion",
            "created": 1,
            "model": "cap-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    )


def endless_json(size: int, status: int = 200) -> Iterator[bytes]:
    """A chunked JSON body of `size` bytes (one huge string), written 1 MiB at a time."""
    yield head(status, "application/json")
    yield chunk(b'{"id": "chatcmpl-huge", "pad": "')
    piece = chunk(b"x" * MIB)
    for _ in range(size // MIB):
        yield piece
    yield chunk(b'"}') + b"0\r\n\r\n"


def answer(path: str, body: bytes) -> bytes | Iterable[bytes]:
    prompt = body.decode()
    if path.startswith("/good/"):
        good = completion("fine")
        return head(200, length=len(good)) + good
    if "two-mib" in prompt:
        big = completion("z" * (2 * MIB))
        return head(200, length=len(big)) + big
    if "declared-huge" in prompt:
        return [
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n".encode(),
            *(b"x" * MIB for _ in range(HUGE // MIB)),
        ]
    if "huge-error" in prompt:
        return endless_json(20 * MIB, status=500)
    return endless_json(HUGE)


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
  - name: huge-then-good
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{target: cap-oai/model, priority: 0}, {target: good-oai/model, priority: 1}]
"""


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
    yield from start_gateway(tmp_path_factory.mktemp("answer-cap"), upstream)


def rss_kib(gw: GatewayProcess) -> int:
    assert gw.process is not None
    for line in Path(f"/proc/{gw.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def call(
    gw: GatewayProcess, token: str, model: str, prompt: str, path: str = "/api/llm/chat/completions"
) -> HttpResult:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if path.endswith("/messages"):
        body["max_tokens"] = 64
    return gw.request("POST", path, token=token, json=body, headers={"anthropic-version": "2023-06-01"}, timeout=60)


def test_an_answer_over_the_cap_is_a_502_with_memory_bounded_by_the_cap(
    gateway: tuple[GatewayProcess, str], upstream: HoldingUpstream
) -> None:
    gw, token = gateway
    assert call(gw, token, "good-oai/model", "warm up").status == 200
    before = rss_kib(gw)
    seen = upstream.mark()
    result = call(gw, token, "cap-oai/model", "a 300 MiB answer")
    held = upstream.request_since(seen, "/v1/chat/completions")

    assert result.status == 502, result.body[:300]
    assert result.headers.get("x-request-id")
    error = assert_error_shape(result.json())
    assert error["code"] == "upstream_answer_too_large"
    assert str(64 * MIB) in error["message"] and "max_answer_bytes" in error["message"]
    assert held.closed.wait(15) and held.closed_at is not None, "the gateway kept reading past the cap"
    assert held.sent < 100 * MIB, f"the upstream wrote {held.sent} bytes before the gateway stopped reading"
    grown = rss_kib(gw) - before
    assert grown < 150 * 1024, f"gateway RSS grew by {grown} KiB for a 300 MiB answer capped at 64 MiB"
    row = gw.wait_for_log(str(result.headers["x-request-id"]))
    assert row["status"] == 502


def test_a_declared_length_over_the_cap_is_refused_before_reading(
    gateway: tuple[GatewayProcess, str], upstream: HoldingUpstream
) -> None:
    gw, token = gateway
    seen = upstream.mark()
    result = call(gw, token, "cap-oai/model", "declared-huge")
    held = upstream.request_since(seen, "/v1/chat/completions")
    assert result.status == 502
    assert assert_error_shape(result.json())["code"] == "upstream_answer_too_large"
    assert held.closed.wait(15) and held.closed_at is not None
    assert held.sent < 32 * MIB, f"the upstream wrote {held.sent} bytes of an answer refused by its length"


def test_an_answer_over_the_cap_on_the_messages_route_is_an_anthropic_502(gateway: tuple[GatewayProcess, str]) -> None:
    gw, token = gateway
    for model in ("cap-claude/sonnet", "cap-oai/model"):  # native, translated
        result = call(gw, token, model, "a 300 MiB answer", path="/api/llm/messages")
        assert result.status == 502, (model, result.body[:300])
        payload = result.json()
        assert payload["type"] == "error" and payload["error"]["type"] == "api_error", payload
        assert "max_answer_bytes" in payload["error"]["message"]


def test_a_virtual_model_falls_back_from_an_answer_over_the_cap(gateway: tuple[GatewayProcess, str]) -> None:
    gw, token = gateway
    result = call(gw, token, "vmod/huge-then-good", "a 300 MiB answer")
    assert result.status == 200, result.body[:300]
    assert result.json()["choices"][0]["message"]["content"] == "fine"
    assert result.headers.get("x-tfy-resolved-model") == "good-oai/model"


def test_a_large_error_answer_keeps_its_status_and_is_read_only_in_part(
    gateway: tuple[GatewayProcess, str], upstream: HoldingUpstream
) -> None:
    gw, token = gateway
    seen = upstream.mark()
    result = call(gw, token, "cap-oai/model", "huge-error")
    held = upstream.request_since(seen, "/v1/chat/completions")
    assert result.status == 500, result.body[:300]
    assert len(result.body) < 2 * MIB
    assert held.closed.wait(15) and held.closed_at is not None
    assert held.sent < 16 * MIB, f"the upstream wrote {held.sent} bytes of an error answer the gateway keeps 1 MiB of"


def test_the_cap_is_configurable(
    tmp_path: Path, gateway: tuple[GatewayProcess, str], upstream: HoldingUpstream
) -> None:
    gw, token = gateway
    result = call(gw, token, "cap-oai/model", "two-mib")
    assert result.status == 200 and len(result.json()["choices"][0]["message"]["content"]) == 2 * MIB
    for small, small_token in start_gateway(tmp_path, upstream, "--max-answer-bytes", str(MIB)):
        result = call(small, small_token, "cap-oai/model", "two-mib")
        assert result.status == 502
        error = assert_error_shape(result.json())
        assert error["code"] == "upstream_answer_too_large" and str(MIB) in error["message"]
