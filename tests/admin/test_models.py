"""GET /models and /endpoints: what the served config defines, who sees what, live health, no credential."""

from __future__ import annotations

import time

import pytest

from tests.admin.admin_config import ADMIN, BOOTSTRAP, OUTSIDER, USER, VIEWER, assert_no_secret, get, start
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> GatewayHandle:
    return start(gateway_factory)


def _by_name(data: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(item["name"]): item for item in data}


def test_viewer_sees_every_model_with_provider_types_price_and_access(gateway: GatewayHandle) -> None:
    viewer = gateway.create_token(user=VIEWER)
    models = _by_name(get(gateway, "/models", viewer)["data"])
    assert set(models) == {"mock/echo", "mock/priced", "closed/gpt", "literal/gpt", "router/chat"}
    priced = models["mock/priced"]
    assert priced["kind"] == "model" and priced["provider"] == "mock" and priced["model_types"] == ["chat"]
    assert priced["price"] == {
        "input_per_million": 1000.0,
        "output_per_million": 2000.0,
        "cache_read_per_million": None,
        "cache_write_per_million": None,
    }
    assert models["closed/gpt"]["access"] == ["team:ml"]
    assert models["mock/echo"]["access"] is None  # open to every user
    assert models["mock/echo"]["display_name"] == "echo"


def test_virtual_model_lists_its_targets_with_weights(gateway: GatewayHandle) -> None:
    admin = gateway.create_token(user=ADMIN)
    router = _by_name(get(gateway, "/models", admin)["data"])["router/chat"]
    assert router["kind"] == "virtual-model" and router["strategy"] == "weight"
    assert [(t["name"], t["weight"], t["priority"]) for t in router["targets"]] == [
        ("mock/echo", 70, None),
        ("mock/priced", 30, None),
    ]


def test_a_user_sees_only_the_models_they_may_call(gateway: GatewayHandle) -> None:
    bob = gateway.create_token(user=USER)  # team ml: may call closed/gpt, not literal/gpt
    olga = gateway.create_token(user=OUTSIDER)
    assert set(_by_name(get(gateway, "/models", bob)["data"])) == {
        "mock/echo",
        "mock/priced",
        "closed/gpt",
        "router/chat",
    }
    assert set(_by_name(get(gateway, "/models", olga)["data"])) == {"mock/echo", "mock/priced", "router/chat"}
    # the same set GET /api/llm/models gives each of them
    listed = gateway.request("GET", "/api/llm/models", token=olga).json()["data"]
    assert {m["id"] for m in listed} == {"mock/echo", "mock/priced", "router/chat"}


def test_live_health_shows_requests_latency_errors_and_cooldown(gateway: GatewayHandle) -> None:
    bob = gateway.create_token(user=USER)
    for _ in range(3):
        body = {"model": "mock/echo", "messages": HELLO}
        assert gateway.request("POST", "/api/llm/chat/completions", token=bob, json=body).status == 200
    for _ in range(2):  # a closed port: network errors, 2 within 2 minutes cool the model down
        body = {"model": "closed/gpt", "messages": HELLO}
        assert gateway.request("POST", "/api/llm/chat/completions", token=bob, json=body).status >= 500
    deadline = time.monotonic() + 5
    while True:  # recorders run after the answer is sent
        models = _by_name(get(gateway, "/models", BOOTSTRAP)["data"])
        if models["closed/gpt"]["health"]["requests"] >= 2 and models["mock/echo"]["health"]["requests"] >= 3:
            break
        assert time.monotonic() < deadline, models
        time.sleep(0.05)
    echo, closed = models["mock/echo"]["health"], models["closed/gpt"]["health"]
    assert echo["error_rate"] == 0 and echo["latency_p50_ms"] is not None and echo["cooldown_until"] is None
    assert closed["error_rate"] == 1.0
    assert closed["cooldown_until"] is not None and closed["cooldown_until"] > time.time()
    router = models["router/chat"]
    assert router["health"]["requests"] >= 3  # its targets' attempts, direct calls included


def test_endpoints_give_the_gateway_url_upstream_without_credentials_and_pools(gateway: GatewayHandle) -> None:
    viewer = gateway.create_token(user=VIEWER)
    answer = gateway.request(
        "GET", "/api/admin/v1/endpoints", token=viewer, headers={"Host": "gw.example.com", "X-Forwarded-Proto": "https"}
    )
    assert answer.status == 200, answer.body
    assert_no_secret(answer)
    endpoints = _by_name(answer.json()["data"])
    search = endpoints["tools/search"]
    assert search["url"] == "https://gw.example.com/proxy-api/tools/search"
    assert search["upstream"].startswith("http://127.0.0.1:") and search["upstream"].endswith("/search/v2")
    assert search["access"] == ["team:everyone"] and search["kind"] == "endpoint"
    pool = endpoints["pool/main"]
    assert pool["kind"] == "pool" and pool["strategy"] == "priority" and pool["upstream"] is None
    assert [(m["name"], m["priority"]) for m in pool["pool"]] == [("primary", 0), ("backup", 1)]
    assert {"pool/primary", "pool/backup"} <= set(endpoints)


def test_endpoint_cooldowns_after_upstream_failures(gateway: GatewayHandle) -> None:
    bob = gateway.create_token(user=USER)
    for _ in range(3):  # the default custom-endpoint policy: 3 failures in 60 s
        assert gateway.request("GET", "/proxy-api/tools/search/q", token=bob).status >= 500
    deadline = time.monotonic() + 5
    while True:
        search = _by_name(get(gateway, "/endpoints", BOOTSTRAP)["data"])["tools/search"]
        if search["cooldowns"]:
            break
        assert time.monotonic() < deadline, search
        time.sleep(0.05)
    assert search["cooldowns"][0]["target"] == "search" and search["cooldowns"][0]["cooldown_until"] > time.time()
    assert search["health"]["error_rate"] == 1.0


def test_users_cannot_list_endpoints_and_virtual_accounts_nothing(gateway: GatewayHandle) -> None:
    assert gateway.request("GET", "/api/admin/v1/endpoints", token=gateway.create_token(user=USER)).status == 403
    bot = gateway.create_token(virtual_account="bot")
    assert gateway.request("GET", "/api/admin/v1/models", token=bot).status == 403


NGROK = """\
type: gateway-admin-config
admins: [user:alice@example.com]
---
on_http_request:
  - type: ai-gateway
    config:
      providers:
        - id: keyed
          base_url: http://127.0.0.1:{closed_port}/v1
          api_keys: [{value: sk-ngrok-literal-key-0008}]
          models: [{id: gpt-4o-mini}]
"""


def test_ai_gateway_models_are_listed_and_their_keys_never_shown(gateway_factory: GatewayFactory) -> None:
    from tests.helpers.gateway import free_port

    gateway = gateway_factory(NGROK, closed_port=free_port())
    alice = gateway.create_token(user=ADMIN)
    models = _by_name(get(gateway, "/models", alice)["data"])
    assert set(models) == {"keyed:gpt-4o-mini"}
    assert models["keyed:gpt-4o-mini"]["account"] == "keyed" and models["keyed:gpt-4o-mini"]["kind"] == "model"
    config = gateway.request("GET", "/api/admin/v1/config", token=alice)
    assert config.status == 200 and b"sk-ngrok-literal-key-0008" not in config.body
    assert b"0008" not in config.body
