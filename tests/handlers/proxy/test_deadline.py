"""Custom-endpoint pools honour the one overall deadline, as virtual models do: `x-tfy-request-timeout`
bounds each attempt, `RELAYGATE_REQUEST_TIMEOUT` the whole request (fallbacks included). Five
endpoints that never answer, a 1 s attempt timeout and a 2.5 s deadline answer 504 at 2.5 s (not
after the 5 s the five attempts would take), and the attempt the deadline cut is closed upstream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.handlers.proxy.conftest import start_gateway
from tests.handlers.proxy.wire import WireAnswer, send
from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway_thread import GatewayThread
from tests.upstreams.holding_upstream import HoldingUpstream, phased_answer

DEADLINE = 2.5
# The deadline starts after the gateway got the request, so it cannot fire earlier than this from
# the caller's view; the upper bound leaves room for a loaded machine and is still far from 5 s.
EARLIEST, LATEST = DEADLINE - 0.05, DEADLINE + 1.2

ENDPOINTS = 5
CONFIG = """\
type: provider-account/custom-endpoint
name: hanging
routing_type: priority
slug: pool
integrations:
""" + "".join(
    f"""\
  - type: integration/model/custom-endpoint
    name: e{index}
    base_url: "{{hold_url}}"
    loadbalancing_config: {{priority: {index}}}
"""
    for index in range(ENDPOINTS)
)


@dataclass
class Stack:
    gateway: GatewayThread
    upstream: HoldingUpstream
    token: str

    def call(self, headers: dict[str, str] | None = None) -> tuple[WireAnswer, float]:
        started = time.monotonic()
        answer = send(
            self.gateway.port, "GET", "/proxy-api/hanging/pool/hold-head", token=self.token, headers=headers, timeout=15
        )
        return answer, time.monotonic() - started


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with HoldingUpstream(phased_answer, answer_at_head=True).running() as upstream:
        env = {"RELAYGATE_REQUEST_TIMEOUT": str(DEADLINE), "RELAYGATE_COOLDOWN_THRESHOLD": "100000"}
        gateway = start_gateway(tmp_path_factory.mktemp("deadline"), CONFIG, hold_url=upstream.url, env=env)
        try:
            yield Stack(gateway, upstream, gateway.create_token(user="alice@example.com"))
        finally:
            gateway.stop()


def test_pool_of_hanging_endpoints_answers_504_at_the_overall_deadline(stack: Stack) -> None:
    stack.upstream.reset()
    answer, took = stack.call({"x-tfy-request-timeout": "1000"})
    assert answer.status == 504
    assert assert_error_shape(answer.json())["type"]
    assert answer.header("x-request-id")
    assert EARLIEST <= took < LATEST, f"answered after {took:.3f} s"
    # 1 s, 1 s, then the 0.5 s left: three endpoints tried, every connection closed.
    closed = stack.upstream.wait_for("closed", count=3)
    assert len(stack.upstream.connections) == 3 and len(closed) == 3
    row = stack.gateway.wait_for_log(answer.header("x-request-id") or "")
    assert row["status"] == 504
    assert row["extra"]["loadbalance_target_attempt_count"] == 3
    assert [a["target"] for a in row["extra"]["attempts"]] == ["e0", "e1", "e2"]


def test_without_an_attempt_timeout_the_first_attempt_ends_at_the_deadline(stack: Stack) -> None:
    stack.upstream.reset()
    answer, took = stack.call()
    assert answer.status == 504
    assert EARLIEST <= took < LATEST, f"answered after {took:.3f} s"
    assert len(stack.upstream.wait_for("closed")) == 1
