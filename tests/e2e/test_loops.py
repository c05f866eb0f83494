"""Request loops: the `Via` hop marker every upstream request carries stops a loop at its second hop (508).

Loops are built from real gateways: a provider whose base URL reaches the gateway itself through a
TCP relay (what a DNS alias or a load balancer looks like: no config check can see it), two gateways
whose custom endpoints point at each other's proxy, and two whose models point at each other's
`/api/llm/v1` (the LLM path builds fresh upstream headers, so the chain must be carried over).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Stack
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import GatewayProcess, HttpResult
from tests.helpers.manifests import ALICE, MOCK_ACCOUNT
from tests.upstreams.tcp_relay import TcpRelay

CHAT_BODY = {"model": "loop/chat", "messages": [{"role": "user", "content": "round and round"}]}
SelfLoop = Callable[..., tuple[GatewayProcess, str, TcpRelay]]
LOOP_BOUND_SECONDS = 10.0  # a loop runs until the 600 s request timeout without the marker; 508 takes ms


def _self_loop_config(relay_port: int) -> str:
    return f"""\
type: provider-account/openai
name: loop
base_url: http://127.0.0.1:{relay_port}/api/llm/v1
auth_data: {{type: api-key, api_key: "${{LOOP_TOKEN}}"}}
integrations:
  - {{name: chat, type: integration/model/openai, model_id: loop/chat, model_types: [chat]}}
---
{MOCK_ACCOUNT}"""


def _peer_config(peer_port: int) -> str:
    """A model and a custom endpoint that both lead to the peer gateway (with the peer's token)."""
    return f"""\
type: provider-account/openai
name: loop
base_url: http://127.0.0.1:{peer_port}/api/llm/v1
auth_data: {{type: api-key, api_key: "${{PEER_TOKEN}}"}}
integrations:
  - {{name: chat, type: integration/model/openai, model_id: loop/chat, model_types: [chat]}}
---
type: provider-account/custom-endpoint
name: ring
auth_data: {{type: header, headers: {{Authorization: "Bearer ${{PEER_TOKEN}}"}}}}
integrations:
  - {{type: integration/model/custom-endpoint, name: next, base_url: "http://127.0.0.1:{peer_port}/proxy-api/ring/next"}}
"""


def _prepared(root: Path) -> tuple[GatewayProcess, str]:
    """A gateway (not started) and a token for it, created before its real config is written."""
    gateway = GatewayProcess(root, MOCK_ACCOUNT)
    token = gateway.create_token(user=ALICE)
    return gateway, token


def _loop_rows(gateway: GatewayProcess, request_id: str) -> list[dict[str, object]]:
    gateway.wait_for_log(request_id)
    time.sleep(0.3)  # any row the loop would add arrives by now (rows are written in 0.25 s batches)
    return gateway.logs(limit=1000)


def _assert_loop_detected(result: HttpResult, elapsed: float) -> None:
    assert result.status == 508, result.body
    error = assert_error_shape(result.json())
    assert error["code"] == "loop_detected", error
    assert elapsed < LOOP_BOUND_SECONDS, elapsed


@pytest.fixture
def self_loop(tmp_path: Path) -> Iterator[SelfLoop]:
    """`start(*serve_args)`: a gateway whose model `loop/chat` reaches itself through a TCP relay."""
    started: list[tuple[GatewayProcess, TcpRelay]] = []

    def start(*serve_args: str) -> tuple[GatewayProcess, str, TcpRelay]:
        gateway, token = _prepared(tmp_path / f"self-{len(started)}")
        relay = TcpRelay(gateway.port).start_in_thread()
        started.append((gateway, relay))
        gateway.extra_env["LOOP_TOKEN"] = token
        gateway.serve_args = list(serve_args)
        gateway.write_config(_self_loop_config(relay.port))
        gateway.start()
        return gateway, token, relay

    yield start
    for gateway, relay in started:
        gateway.stop()
        relay.stop_thread()


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[tuple[GatewayProcess, GatewayProcess, str]]:
    """Gateways A and B, each with `loop/chat` and `ring/next` leading to the other; a token for A."""
    a, token_a = _prepared(tmp_path / "a")
    b, token_b = _prepared(tmp_path / "b")
    a.extra_env["PEER_TOKEN"], b.extra_env["PEER_TOKEN"] = token_b, token_a
    a.write_config(_peer_config(b.port))
    b.write_config(_peer_config(a.port))
    try:
        a.start()
        b.start()
        yield a, b, token_a
    finally:
        a.stop()
        b.stop()


def test_upstream_requests_carry_the_hop_marker(stack: Stack) -> None:
    result = stack.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=stack.alice,
        json={"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert result.status == 200, result.body
    via = stack.openai.last("/chat/completions").header("via")
    assert via is not None and via.startswith("1.1 relaygate-"), via


def test_hop_marker_is_appended_to_the_incoming_via_chain(stack: Stack) -> None:
    result = stack.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=stack.alice,
        headers={"Via": "1.1 edge-proxy"},
        json={"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert result.status == 200, result.body
    via = stack.openai.last("/chat/completions").header("via")
    assert via is not None and via.startswith("1.1 edge-proxy, 1.1 relaygate-"), via


def test_a_request_that_already_passed_this_gateway_is_508_on_every_route(stack: Stack) -> None:
    # Learn this gateway's marker from what its upstream received, then send it back.
    stack.gateway.request(
        "POST",
        "/api/llm/chat/completions",
        token=stack.alice,
        json={"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    marker = stack.openai.last("/chat/completions").header("via")
    assert marker is not None
    stack.reset()
    for method, path in (
        ("POST", "/api/llm/chat/completions"),
        ("POST", "/v1/messages"),
        ("GET", "/proxy-api/anything/x"),
        ("GET", "/api/llm/models"),
        ("GET", "/nowhere"),
    ):
        body = {"model": "openai-main/gpt-4o", "messages": []} if method == "POST" else None
        result = stack.gateway.request(
            method, path, token=stack.alice, headers={"Via": f"1.0 other, {marker}"}, json=body
        )
        assert result.status == 508, (path, result.status, result.body)
        assert result.headers.get("x-request-id"), path
        error = result.json()["error"]
        assert error["type"] == "loop_detected" or error.get("code") == "loop_detected", (path, error)
    assert not stack.openai.requests


def test_a_provider_leading_back_to_the_gateway_stops_at_the_second_hop(self_loop: SelfLoop) -> None:
    gateway, token, relay = self_loop()
    started = time.monotonic()
    result = gateway.request("POST", "/api/llm/chat/completions", token=token, json=CHAT_BODY)
    _assert_loop_detected(result, time.monotonic() - started)
    rows = _loop_rows(gateway, result.headers["x-request-id"])
    assert sorted(row["status"] for row in rows) == [508, 508], rows  # the caller's request and its one echo
    assert relay.connections == 1


def test_a_loop_between_workers_of_one_gateway_stops_too(self_loop: SelfLoop) -> None:
    gateway, token, relay = self_loop("--workers", "2")
    for _ in range(6):  # the echo lands on either worker: each must know the other's marker
        started = time.monotonic()
        result = gateway.request("POST", "/api/llm/chat/completions", token=token, json=CHAT_BODY)
        _assert_loop_detected(result, time.monotonic() - started)
    rows = _loop_rows(gateway, result.headers["x-request-id"])
    assert len(rows) == 12, [row["status"] for row in rows]


def test_custom_endpoints_pointing_at_each_other_stop_at_the_second_hop(
    peers: tuple[GatewayProcess, GatewayProcess, str],
) -> None:
    a, b, token_a = peers
    started = time.monotonic()
    result = a.request(
        "POST",
        "/proxy-api/ring/next/v1/anything",
        token=token_a,
        data=b'{"x": 1}',
        headers={"Content-Type": "application/json"},
    )
    _assert_loop_detected(result, time.monotonic() - started)
    assert len(_loop_rows(a, result.headers["x-request-id"])) == 2  # the caller's request, then the echo from B
    assert len(b.logs(limit=1000)) == 1


def test_models_pointing_at_each_other_stop_at_the_second_hop(
    peers: tuple[GatewayProcess, GatewayProcess, str],
) -> None:
    a, b, token_a = peers
    started = time.monotonic()
    result = a.request("POST", "/api/llm/chat/completions", token=token_a, json=CHAT_BODY)
    _assert_loop_detected(result, time.monotonic() - started)
    assert len(_loop_rows(a, result.headers["x-request-id"])) == 2
    assert len(b.logs(limit=1000)) == 1
