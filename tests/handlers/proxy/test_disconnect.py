"""A caller that leaves closes the upstream connection within a second, in every phase: before the
upstream's response headers, after them, mid-body; and mid-upload. For bodies held in memory (GET,
a small POST) and streamed ones (past the 1 MiB hold limit), on endpoint URLs and in pools.

The upstream (`HoldingUpstream`) holds its answer in the phase the path names and records when the
gateway closes the connection; the caller is a raw socket that closes at a known moment.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.handlers.proxy.conftest import start_gateway
from tests.helpers.gateway import free_port
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.holding_upstream import HoldingUpstream, phased_answer

CLOSE_WITHIN = 1.0  # seconds from the caller leaving to the upstream connection closing (measured: 0-3 ms)
HELD_BODY = 1024
STREAMED_BODY = 3 << 20  # past the 1 MiB a pool holds for replay: streamed upstream as it arrives

CONFIG = """\
type: provider-account/custom-endpoint
name: held
integrations:
  - {type: integration/model/custom-endpoint, name: up, base_url: "{hold_url}"}
---
type: provider-account/custom-endpoint
name: heldpool
routing_type: priority
slug: pool
integrations:
  - type: integration/model/custom-endpoint
    name: refused
    base_url: "{closed_url}"
    loadbalancing_config: {priority: 0}
  - type: integration/model/custom-endpoint
    name: holding
    base_url: "{hold_url}"
    loadbalancing_config: {priority: 1}
"""


@dataclass
class Stack:
    gateway: GatewayThread
    upstream: HoldingUpstream
    token: str


@pytest.fixture(scope="module")
def stack_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with HoldingUpstream(phased_answer, answer_at_head=True).running() as upstream:
        # The refusing pool member (a network error before any body byte: the body stays replayable)
        # must stay first in every test: no cooldown.
        gateway = start_gateway(
            tmp_path_factory.mktemp("disconnect"),
            CONFIG,
            hold_url=upstream.url,
            closed_url=f"http://127.0.0.1:{free_port()}",
            env={"RELAYGATE_COOLDOWN_THRESHOLD": "100000"},
        )
        try:
            yield Stack(gateway, upstream, gateway.create_token(user="alice@example.com"))
        finally:
            gateway.stop()


@pytest.fixture
def stack(stack_module: Stack) -> Stack:
    stack_module.upstream.reset()
    return stack_module


def start_request(
    stack: Stack, target: str, body_size: int, *, send_body: int | None = None
) -> tuple[socket.socket, str]:
    """Send a request (and `send_body` of its `body_size` body bytes); the socket and its request id."""
    request_id = f"gone-{uuid.uuid4().hex}"
    method = "POST" if body_size else "GET"
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.token}\r\n"
        f"x-request-id: {request_id}\r\n" + (f"Content-Length: {body_size}\r\n" if body_size else "") + "\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=10)
    sock.sendall(head.encode())
    sent = body_size if send_body is None else send_body
    if sent:
        sock.sendall(b"b" * sent)
    return sock, request_id


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        piece = sock.recv(65536)
        assert piece, f"connection closed before {marker!r}: {received!r}"
        received += piece
    return received


def leave(sock: socket.socket) -> float:
    """The caller goes away (FIN): the moment it did."""
    sock.close()
    return time.monotonic()


def assert_upstream_closed_soon(stack: Stack, left: float, request_id: str) -> None:
    held = stack.upstream.wait_for("closed", timeout=CLOSE_WITHIN + 5)
    after = held[-1].closed_at - left
    assert after < CLOSE_WITHIN, f"the upstream connection closed {after:.3f} s after the caller left"
    assert stack.gateway.wait_for_log(request_id)["status"] == 499


ROUTES = {"endpoint": "/proxy-api/held/up", "pool": "/proxy-api/heldpool/pool"}
BODIES = {"get": 0, "held": HELD_BODY, "streamed": STREAMED_BODY}


def upstream_has_request(stack: Stack, body_size: int) -> None:
    """The holding endpoint got the head and the whole body; the gateway now waits on it."""
    stack.upstream.wait_for(f"body:{body_size}")
    time.sleep(0.2)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", BODIES)
def test_leaving_before_the_upstream_headers_closes_the_upstream(stack: Stack, route: str, body: str) -> None:
    sock, request_id = start_request(stack, ROUTES[route] + "/hold-head", BODIES[body])
    upstream_has_request(stack, BODIES[body])
    assert_upstream_closed_soon(stack, leave(sock), request_id)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", BODIES)
def test_leaving_after_the_upstream_headers_closes_the_upstream(stack: Stack, route: str, body: str) -> None:
    sock, request_id = start_request(stack, ROUTES[route] + "/hold-body", BODIES[body])
    assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 200")
    time.sleep(0.2)
    assert_upstream_closed_soon(stack, leave(sock), request_id)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", BODIES)
def test_leaving_mid_body_closes_the_upstream(stack: Stack, route: str, body: str) -> None:
    sock, request_id = start_request(stack, ROUTES[route] + "/hold-mid", BODIES[body])
    read_until(sock, b"first\n")
    time.sleep(0.2)
    assert_upstream_closed_soon(stack, leave(sock), request_id)


@pytest.mark.parametrize("route", ROUTES)
def test_leaving_mid_upload_closes_the_upstream(stack: Stack, route: str) -> None:
    sock, request_id = start_request(stack, ROUTES[route] + "/hold-head", STREAMED_BODY, send_body=STREAMED_BODY // 2)
    stack.upstream.wait_for(f"body:{STREAMED_BODY // 4}")
    time.sleep(0.2)
    assert_upstream_closed_soon(stack, leave(sock), request_id)


def test_leaving_mid_upload_after_the_upstream_answered_closes_the_upstream(stack: Stack) -> None:
    # The upstream sends its headers before reading the body: the relay has begun while the upload goes on.
    sock, request_id = start_request(stack, "/proxy-api/held/up/hold-body", STREAMED_BODY, send_body=STREAMED_BODY // 2)
    read_until(sock, b"\r\n\r\n")
    time.sleep(0.2)
    assert_upstream_closed_soon(stack, leave(sock), request_id)
