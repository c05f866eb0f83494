"""Rate limits and budgets through a real `relaygate serve` (in-memory backend unless a test names Redis), driven by the
OpenAI SDK and raw HTTP."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import socket
import time
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.helpers.gateway_thread import GatewayThread
from tests.helpers.manifests import ALICE, BOB
from tests.upstreams.anthropic_mock import AnthropicMock
from tests.upstreams.httpbin_server import HttpbinServer

MODELS = """\
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat, embedding]}
  - {name: other, type: integration/model/mock, model_id: echo-2, model_types: [chat]}
  - {name: priced, type: integration/model/mock, model_id: echo-3, model_types: [chat],
     cost: {input_per_million_tokens: 1000000, output_per_million_tokens: 1000000}}
"""
HELLO = [{"role": "user", "content": "hello there"}]


def _limits(rules: str, kind: str = "gateway-rate-limiting-config") -> str:
    return f"{MODELS}---\ntype: {kind}\nname: limits\nrules:\n{rules}"


def _client(gateway: GatewayThread, user: str = ALICE) -> openai.OpenAI:
    return gateway.client(gateway.create_token(user=user))


def _applied(headers: object) -> dict[str, object]:
    return json.loads(headers["x-tfy-applied-configurations"])  # type: ignore[index]


def test_requests_per_minute_refuses_the_next_request_with_retry_after_and_rule_id(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory(
        _limits("  - {id: echo-rpm, when: {models: [mock/echo]}, limit_to: 3, unit: requests_per_minute}\n")
    )
    client = _client(gateway)
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="mock/echo", messages=HELLO)
        assert _applied(raw.headers)["rate_limit"] == {"rule_ids": ["echo-rpm"]}
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="mock/echo", messages=HELLO)
    error = caught.value
    assert error.body["type"] == "rate_limit_exceeded" and "echo-rpm" in error.body["message"]
    assert 1 <= int(error.response.headers["retry-after"]) <= 60
    assert _applied(error.response.headers)["rate_limit"] == {"rule_ids": ["echo-rpm"], "refused": True}
    # Another model is not matched by the rule.
    assert client.chat.completions.create(model="mock/other", messages=HELLO).choices


def test_applies_per_user_gives_each_user_a_bucket(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        _limits(
            "  - {id: per-user, when: {}, limit_to: 1, unit: requests_per_minute, rate_limit_applies_per: [user]}\n"
        )
    )
    alice, bob = _client(gateway, ALICE), _client(gateway, BOB)
    alice.chat.completions.create(model="mock/echo", messages=HELLO)
    bob.chat.completions.create(model="mock/echo", messages=HELLO)
    with pytest.raises(openai.RateLimitError):
        alice.chat.completions.create(model="mock/echo", messages=HELLO)


def test_metadata_when_and_applies_per_metadata_key(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        _limits(
            "  - {id: dev-only, when: {metadata: {env: dev}}, limit_to: 1, unit: requests_per_hour,\n"
            "     rate_limit_applies_per: ['metadata.app']}\n"
        )
    )
    client = _client(gateway)

    def call(metadata: dict[str, str]) -> None:
        client.chat.completions.create(
            model="mock/echo", messages=HELLO, extra_headers={"x-tfy-metadata": json.dumps(metadata)}
        )

    call({"env": "dev", "app": "a"})
    call({"env": "dev", "app": "b"})  # its own bucket
    for _ in range(3):
        call({"env": "prod", "app": "a"})  # not matched
    with pytest.raises(openai.RateLimitError):
        call({"env": "dev", "app": "a"})


def test_tokens_per_minute_settles_on_actual_usage_including_streams(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(_limits("  - {id: tpm, when: {}, limit_to: 400, unit: tokens_per_minute}\n"))
    client = _client(gateway)
    used, calls = 0, 0
    with pytest.raises(openai.RateLimitError) as caught:
        for calls in range(1, 100):
            if calls % 2:
                stream = client.chat.completions.create(
                    model="mock/echo",
                    messages=HELLO,
                    stream=True,
                    max_tokens=100,
                    stream_options={"include_usage": True},
                )
                usage = [chunk.usage for chunk in stream if chunk.usage is not None][0]
            else:
                usage = client.chat.completions.create(model="mock/echo", messages=HELLO, max_tokens=100).usage
            assert usage is not None
            used += usage.total_tokens
    assert "tpm" in caught.value.body["message"]
    # Each call reserves ~107 tokens (max_tokens + prompt) but uses far fewer: settled on actual usage,
    # many more than 400 / 107 = 3 calls fit; refused once the next estimate no longer fits in what is left.
    assert calls > 10
    assert 400 - 107 < used <= 400


def test_budget_refuses_with_budget_exceeded_after_spend(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        _limits(
            "  - {id: daily-spend, when: {models: [mock/priced]}, limit_to: 25, unit: cost_per_day}\n",
            kind="gateway-budget-config",
        )
    )
    client = _client(gateway)
    spent = 0.0
    with pytest.raises(openai.RateLimitError) as caught:
        for _ in range(10):
            raw = client.chat.completions.with_raw_response.create(model="mock/priced", messages=HELLO, max_tokens=8)
            usage = raw.parse().usage
            assert usage is not None
            spent += usage.total_tokens * 1.0  # $1 per token in and out
            assert _applied(raw.headers)["budget"] == {"rule_ids": ["daily-spend"]}
    assert caught.value.body["type"] == "budget_exceeded" and "daily-spend" in caught.value.body["message"]
    # Admitted only while the estimate (~$15: $1 a token, 7 in + max_tokens 8) fits in what is left:
    # sequential calls never spend past the budget.
    assert 25 - 15 < spent <= 25
    assert client.chat.completions.create(model="mock/echo", messages=HELLO).choices  # other models free


def test_audit_mode_budget_records_but_never_refuses(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        _limits(
            "  - {id: watch-spend, when: {}, limit_to: 1, unit: cost_per_day, audit_mode: true}\n",
            kind="gateway-budget-config",
        )
    )
    client = _client(gateway)
    for _ in range(4):
        raw = client.chat.completions.with_raw_response.create(model="mock/priced", messages=HELLO)
        assert _applied(raw.headers)["budget"] == {"rule_ids": ["watch-spend"]}


def test_every_matching_rule_applies(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        _limits(
            "  - {id: wide, when: {}, limit_to: 100, unit: requests_per_minute}\n"
            "  - {id: narrow, when: {subjects: ['user:alice@example.com']}, limit_to: 2, unit: requests_per_minute}\n"
        )
    )
    alice, bob = _client(gateway, ALICE), _client(gateway, BOB)
    raw = alice.chat.completions.with_raw_response.create(model="mock/echo", messages=HELLO)
    assert _applied(raw.headers)["rate_limit"] == {"rule_ids": ["wide", "narrow"]}
    alice.chat.completions.create(model="mock/echo", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        alice.chat.completions.create(model="mock/echo", messages=HELLO)
    assert "narrow" in caught.value.body["message"]
    assert _applied(bob.chat.completions.with_raw_response.create(model="mock/echo", messages=HELLO).headers)[
        "rate_limit"
    ] == {"rule_ids": ["wide"]}


@pytest.fixture(scope="module")
def httpbin() -> Iterator[HttpbinServer]:
    with HttpbinServer().running() as server:
        yield server


def test_custom_endpoint_traffic_counts_under_account_and_endpoint(
    gateway_factory: GatewayFactory,
    httpbin: HttpbinServer,
) -> None:
    config = _limits("  - {id: proxy-rpm, when: {models: [tools/bin]}, limit_to: 2, unit: requests_per_minute}\n")
    config += f"""---
type: provider-account/custom-endpoint
name: tools
integrations:
  - {{name: bin, type: integration/model/custom-endpoint, base_url: "{httpbin.url}"}}
"""
    gateway = gateway_factory(config)
    token = gateway.create_token(user=ALICE)
    for _ in range(2):
        assert gateway.request("GET", "/proxy-api/tools/bin/get", token=token).status == 200
    refused = gateway.request("GET", "/proxy-api/tools/bin/get", token=token)
    assert refused.status == 429 and "proxy-rpm" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"]


def test_metrics_count_refusals_and_backend_errors(gateway_factory: GatewayFactory) -> None:
    # A Redis that is not there, with on_backend_error allow: admitted unchecked, counted in /metrics.
    gateway = gateway_factory(
        _limits("  - {id: rpm, when: {}, limit_to: 5, unit: requests_per_minute}\n"),
        env={"RELAYGATE_REDIS_URL": "redis://127.0.0.1:1/0", "RELAYGATE_LIMITS_ON_BACKEND_ERROR": "allow"},
    )
    client = _client(gateway)
    for _ in range(2):
        assert client.chat.completions.create(model="mock/echo", messages=HELLO).choices
    text = gateway.request("GET", "/metrics").body.decode()
    assert 'relaygate_limits_allowed_on_error_total{backend="redis"} 2.0' in text
    assert 'relaygate_limits_backend_errors_total{backend="redis"}' in text


def test_backend_error_with_deny_is_503_with_retry_after(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        _limits("  - {id: rpm, when: {}, limit_to: 5, unit: requests_per_minute}\n"),
        env={"RELAYGATE_REDIS_URL": "redis://127.0.0.1:1/0", "RELAYGATE_LIMITS_ON_BACKEND_ERROR": "deny"},
    )
    with pytest.raises(openai.InternalServerError) as caught:
        _client(gateway).chat.completions.create(model="mock/echo", messages=HELLO)
    assert caught.value.status_code == 503 and caught.value.response.headers["retry-after"]
    assert caught.value.body["code"] == "limits_unavailable"
    text = gateway.request("GET", "/metrics").body.decode()
    assert 'relaygate_limits_denied_on_error_total{backend="redis"} 1.0' in text


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_retry_after_of_a_per_minute_limit_is_within_the_minute(gateway_factory: GatewayFactory, backend: str) -> None:
    if backend == "redis" and not _redis_up():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    env = (
        {}
        if backend == "memory"
        else {
            "RELAYGATE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "RELAYGATE_LIMITS_KEY_PREFIX": f"rgtest-e2e:{secrets.token_hex(6)}:",
        }
    )
    gateway = gateway_factory(
        _limits("  - {id: five-a-minute, when: {models: [mock/echo]}, limit_to: 5, unit: requests_per_minute}\n"),
        env=env,
    )
    client = _client(gateway)
    for _ in range(5):
        client.chat.completions.create(model="mock/echo", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="mock/echo", messages=HELLO)
    retry_after = int(caught.value.response.headers["retry-after"])
    assert 50 <= retry_after <= 60  # the burst just happened; the window is 60 s, never 61
    assert re.search(rf"Retry after {retry_after}s\.", caught.value.body["message"])


def test_manifest_on_backend_error_deny_answers_503_with_retry_after(gateway_factory: GatewayFactory) -> None:
    config = f"""{MODELS}---
type: gateway-rate-limiting-config
name: strict-limits
on_backend_error: deny
rules:
  - {{id: strict, when: {{models: [mock/echo]}}, limit_to: 5, unit: requests_per_minute}}
---
type: gateway-rate-limiting-config
name: lenient-limits
rules:
  - {{id: lenient, when: {{models: [mock/other]}}, limit_to: 5, unit: requests_per_minute}}
"""
    # Redis is not there and the process setting is the default (allow): the manifest decides for its rules.
    gateway = gateway_factory(config, env={"RELAYGATE_REDIS_URL": "redis://127.0.0.1:1/0"})
    client = _client(gateway)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="mock/echo", messages=HELLO)
    assert caught.value.status_code == 503 and caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body["code"] == "limits_unavailable"
    assert client.chat.completions.create(model="mock/other", messages=HELLO).choices  # allow: admitted unchecked


def test_a_messages_stream_the_client_left_keeps_its_token_reservation(gateway_factory: GatewayFactory) -> None:
    # Anthropic streams report input tokens (and 1 output token) in their first event. A caller that
    # leaves after it must not settle to that: the upstream went on writing until it was cancelled.
    with AnthropicMock("sk-ant-test").running() as mock:
        mock.chunk_delay = 0.2
        gateway = gateway_factory(f"""type: provider-account/anthropic
name: anth
auth_data: {{type: api-key, api_key: sk-ant-test}}
base_url: {mock.url}
integrations:
  - {{name: claude, type: integration/model/anthropic, model_id: claude-sonnet-4-5, model_types: [chat]}}
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {{id: tpm, when: {{}}, limit_to: 2500, unit: tokens_per_minute}}
""")
        token = gateway.create_token(user=ALICE)
        body = {
            "model": "anth/claude",
            "max_tokens": 2000,
            "stream": True,
            "messages": [{"role": "user", "content": " ".join(["word"] * 200)}],
        }
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
        conn.request(
            "POST",
            "/api/llm/messages",
            body=json.dumps(body),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "anthropic-version": "2023-06-01",
            },
        )
        response = conn.getresponse()
        assert response.status == 200 and b"message_start" in response.read1(4096)
        conn.close()  # leave mid-stream
        time.sleep(1.0)  # the gateway sees the disconnect, cancels upstream and settles
        # The reservation (2,254 tokens: 254 for 200 words + max_tokens) stays: the next estimate (259) no
        # longer fits in the 2,500.
        refused = gateway.request(
            "POST",
            "/api/llm/messages",
            token=token,
            headers={"anthropic-version": "2023-06-01"},
            json={**body, "stream": False, "max_tokens": 5},
        )
        assert refused.status == 429, refused.body[:300]
