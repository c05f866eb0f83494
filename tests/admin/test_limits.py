"""GET /limits: every rule with its buckets' live consumption, from memory or Redis."""

from __future__ import annotations

import secrets
import socket
import time
from typing import Any

import pytest

from tests.admin.admin_config import ADMIN, USER, VIEWER, get, start
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle

HELLO = [{"role": "user", "content": "hi"}]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _rules(gateway: GatewayHandle, token: str) -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in get(gateway, "/limits", token)["data"]}


@pytest.fixture(params=["memory", "redis"])
def gateway(request: pytest.FixtureRequest, gateway_factory: GatewayFactory) -> GatewayHandle:
    if request.param == "memory":
        return start(gateway_factory)
    if not _redis_up():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    return start(
        gateway_factory,
        RELAYGATE_REDIS_URL="redis://127.0.0.1:6379/0",
        RELAYGATE_LIMITS_KEY_PREFIX=f"rgtest-admin:{secrets.token_hex(6)}:",
    )


def test_rules_are_listed_with_config_kind_unit_window_and_when(gateway: GatewayHandle) -> None:
    rules = _rules(gateway, gateway.create_token(user=VIEWER))
    assert set(rules) == {"echo-rpm", "tokens-hour", "daily-spend"}
    rpm = rules["echo-rpm"]
    assert (rpm["config"], rpm["kind"], rpm["unit"], rpm["limit"], rpm["window"]) == (
        "limits",
        "rate_limit",
        "requests_per_minute",
        100.0,
        "minute",
    )
    assert rpm["when"] == {"models": ["mock/echo"]} and rpm["audit_mode"] is False
    assert rules["tokens-hour"]["when"]["subjects"] == ["team:ml"]
    budget = rules["daily-spend"]
    assert budget["kind"] == "budget" and budget["config"] == "spend" and budget["window"] == "day"
    assert budget["spent"] == 0 and budget["buckets"] == []


def test_consumption_per_bucket_after_real_requests(gateway: GatewayHandle) -> None:
    alice, bob = gateway.create_token(user=ADMIN), gateway.create_token(user=USER)
    for token, count in ((alice, 3), (bob, 2)):
        for _ in range(count):
            body = {"model": "mock/echo", "messages": HELLO}
            assert gateway.request("POST", "/api/llm/chat/completions", token=token, json=body).status == 200
    body = {"model": "mock/priced", "messages": HELLO, "max_tokens": 4}
    assert gateway.request("POST", "/api/llm/chat/completions", token=bob, json=body).status == 200
    deadline = time.monotonic() + 5
    while True:  # settles run after the answers
        rules = _rules(gateway, alice)
        if rules["daily-spend"]["spent"] and rules["tokens-hour"]["buckets"]:
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.05)
    buckets = {b["key"]: b for b in rules["echo-rpm"]["buckets"]}
    assert set(buckets) == {"user=user:alice@example.com", "user=user:bob@example.com"}
    first = buckets["user=user:alice@example.com"]
    assert first["used"] == 3 and first["remaining"] == 97 and first["parts"] == {"user": "user:alice@example.com"}
    assert time.time() < first["resets_at"] <= time.time() + 61
    assert rules["echo-rpm"]["buckets"][0]["key"] == "user=user:alice@example.com"  # busiest first
    tokens = rules["tokens-hour"]["buckets"]
    assert len(tokens) == 1 and tokens[0]["key"] == "(all)" and tokens[0]["used"] > 0  # bob is in team ml
    budget = rules["daily-spend"]
    assert budget["spent"] > 0 and budget["buckets"][0]["remaining"] == pytest.approx(25 - budget["spent"])
    day = 86_400
    assert budget["buckets"][0]["resets_at"] == (time.time() // day + 1) * day


def test_users_may_not_read_limits(gateway: GatewayHandle) -> None:
    assert gateway.request("GET", "/api/admin/v1/limits", token=gateway.create_token(user=USER)).status == 403


def test_a_down_redis_still_lists_the_rules_and_says_why_buckets_are_missing(gateway_factory: GatewayFactory) -> None:
    gateway = start(gateway_factory, RELAYGATE_REDIS_URL="redis://127.0.0.1:1/0")
    answer = get(gateway, "/limits", gateway.create_token(user=ADMIN))
    assert answer["backend"] == "redis" and "could not be read" in answer["backend_error"]
    assert {rule["id"] for rule in answer["data"]} == {"echo-rpm", "tokens-hour", "daily-spend"}
