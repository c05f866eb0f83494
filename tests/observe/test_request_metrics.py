"""Per-request metrics against the request log after a mixed load: the two are one record, so they agree.

A real gateway (its own server), the OpenAI mock upstream, the `openai` SDK and raw HTTP as clients;
`/metrics` parsed with prometheus-client's parser.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.helpers import manifests
from tests.helpers.gateway import GatewayHandle, free_port
from tests.helpers.prometheus import Scrape, scrape
from tests.upstreams.openai_mock import OpenAIMock

VIRTUAL = """\
type: provider-account/virtual-model
name: vms
integrations:
  - name: fallback
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets:
        - {target: unreachable/gpt-4o, priority: 0}
        - {target: openai-main/gpt-4o-priced, priority: 1}
"""
HELLO = [{"role": "user", "content": "hello metrics"}]
PRICED = "openai-main/gpt-4o-priced"


@contextmanager
def _open_stream(gateway: GatewayHandle, token: str) -> Iterator[Iterator[bytes]]:
    """A streamed chat answer, read through one iterator (a dropped iterator closes the response)."""
    with httpx2.Client(timeout=10) as raw:
        with raw.stream(
            "POST",
            gateway.url + "/api/llm/chat/completions",
            headers={"Authorization": f"Bearer {token}"},
            json={"model": PRICED, "messages": HELLO, "stream": True},
        ) as response:
            assert response.status_code == 200
            yield response.iter_bytes()


def _wait_for_rows(gateway: GatewayHandle, count: int) -> list[dict[str, Any]]:
    rows = gateway.wait_for_logs(count, limit=1000)
    assert len(rows) == count, f"expected {count} log rows, found {len(rows)}"
    return rows


def _mixed_load(gateway: GatewayHandle, upstream: OpenAIMock, alice: str) -> int:
    """Answers, streams, gateway errors, upstream errors, fallbacks and a disconnect; how many requests."""
    client = gateway.client(alice, max_retries=0)
    sent = 0
    for _ in range(3):
        client.chat.completions.create(model=PRICED, messages=HELLO)
        sent += 1
    for _ in range(2):
        chunks = list(client.chat.completions.create(model=PRICED, messages=HELLO, stream=True))
        assert chunks
        sent += 1
    for _ in range(2):
        assert gateway.request("POST", "/api/llm/chat/completions", token="rg-bogus-token", json={}).status == 401
        sent += 1
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nobody/made-up-model", messages=HELLO)
    sent += 1
    for _ in range(2):
        client.chat.completions.create(model="vms/fallback", messages=HELLO)
        sent += 1
    with pytest.raises(openai.APIStatusError) as unreachable:
        client.chat.completions.create(model="unreachable/gpt-4o", messages=HELLO)
    assert unreachable.value.status_code == 502
    sent += 1
    upstream.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="openai-main/gpt-4o", messages=HELLO)
    sent += 1
    # A caller that leaves mid-stream: logged 499, counted `cancelled`.
    upstream.chunk_delay = 0.3
    with _open_stream(gateway, alice) as chunks:
        next(chunks)
    sent += 1
    upstream.chunk_delay = 0.0
    return sent


@pytest.fixture
def gateway(gateway_factory: GatewayFactory, openai_upstream: OpenAIMock, vllm_upstream: OpenAIMock) -> GatewayHandle:
    return gateway_factory(
        manifests.STANDARD + "---\n" + VIRTUAL,
        port=openai_upstream.port,
        vllm_port=vllm_upstream.port,
        closed_port=free_port(),
    )


def test_metrics_match_the_request_log_after_a_mixed_load(gateway: GatewayHandle, openai_upstream: OpenAIMock) -> None:
    alice = gateway.create_token(user=manifests.ALICE)
    sent = _mixed_load(gateway, openai_upstream, alice)
    rows = _wait_for_rows(gateway, sent)
    metrics = scrape(gateway.url)

    assert metrics.total("relaygate_requests_total") == sent == len(rows)
    by_class = Counter(f"{row['status'] // 100}xx" for row in rows)
    for status_class, count in by_class.items():
        assert metrics.total("relaygate_requests_total", status_class=status_class) == count, status_class
    logged_cost = sum(row["cost_usd"] or 0.0 for row in rows)
    assert logged_cost > 0
    assert metrics.total("relaygate_cost_usd_total") == pytest.approx(logged_cost, rel=1e-9, abs=1e-12)
    assert metrics.total("relaygate_tokens_total", type="input") == sum(row["input_tokens"] or 0 for row in rows)
    assert metrics.total("relaygate_tokens_total", type="output") == sum(row["output_tokens"] or 0 for row in rows)

    errors = {s.labels["error_type"]: s.value for s in metrics.select("relaygate_requests_total") if s.value}
    assert errors == {
        "": 7,  # 3 answers, 2 streams, 2 virtual-model calls answered after a fallback
        "unauthorized": 2,
        "invalid_request": 1,
        "connection_failure": 1,
        "upstream_500": 1,
        "cancelled": 1,
    }
    assert (
        metrics.total("relaygate_fallbacks_total", virtual_model="vms/fallback", from_target="unreachable/gpt-4o") == 2
    )
    assert metrics.total("relaygate_upstream_attempts_total", target="unreachable/gpt-4o", outcome="fallback") == 2
    assert metrics.total("relaygate_upstream_attempts_total", target="unreachable/gpt-4o", outcome="error") == 1
    assert metrics.total("relaygate_upstream_attempts_total", target=PRICED, outcome="success") == 8
    # Nothing secret or caller-written reaches a label: not the token, not the upstream key, not content.
    assert "rg-" not in metrics.text  # no token and no token id
    for secret in (manifests.OPENAI_KEY, "hello metrics"):
        assert secret not in metrics.text


def test_genai_families_carry_the_semconv_labels(gateway: GatewayHandle) -> None:
    alice = gateway.create_token(user=manifests.ALICE)
    client = gateway.client(alice, max_retries=0)
    client.chat.completions.create(model=PRICED, messages=HELLO)
    list(client.chat.completions.create(model=PRICED, messages=HELLO, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nobody/secret-project-name", messages=HELLO)
    client.embeddings.create(model="openai-main/embed", input="vector me")
    _wait_for_rows(gateway, 4)
    metrics = scrape(gateway.url)
    labels = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": PRICED}
    assert metrics.total("gen_ai_client_operation_duration_seconds_count", **labels, error_type="") == 2
    assert metrics.total("gen_ai_client_operation_time_to_first_chunk_seconds_count", **labels) == 1
    assert metrics.total("gen_ai_client_token_usage_count", **labels, gen_ai_token_type="input") == 2
    assert metrics.total("gen_ai_client_operation_duration_seconds_count", gen_ai_operation_name="embeddings") == 1
    # A model name the caller made up never becomes a label value.
    assert "nobody/secret-project-name" not in metrics.text
    # Requests that never reached a model (the unknown name: 404) are in relaygate_requests_total only.
    assert metrics.total("gen_ai_client_operation_duration_seconds_count") == 3
    assert metrics.total("relaygate_requests_total") == 4
    # Histograms are cumulative and end at +Inf with the count.
    family = metrics.families["gen_ai_client_operation_duration_seconds"]
    buckets = [
        s for s in family.samples if s.name.endswith("_bucket") and s.labels.get("gen_ai_request_model") == PRICED
    ]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 2


def test_active_requests_and_streams_go_up_and_back_down(gateway: GatewayHandle, openai_upstream: OpenAIMock) -> None:
    alice = gateway.create_token(user=manifests.ALICE)
    openai_upstream.chunk_delay = 0.3
    with _open_stream(gateway, alice) as chunks:
        next(chunks)
        during = scrape(gateway.url)
        assert during.total("relaygate_active_streams") == 1
        assert during.total("relaygate_active_requests", route="/api/llm/chat/completions") == 1
        for _ in chunks:
            pass
    openai_upstream.chunk_delay = 0.0
    _wait_for_rows(gateway, 1)
    after = scrape(gateway.url)
    assert after.total("relaygate_active_streams") == 0
    assert after.total("relaygate_active_requests") == 0


def test_operational_families_are_exported(gateway: GatewayHandle) -> None:
    metrics = scrape(gateway.url)
    for name in (
        "relaygate_build_info",
        "relaygate_config_revision",
        "relaygate_config_reloads_total",
        "relaygate_config_reload_failures_total",
        "relaygate_log_rows_dropped_total",
        "relaygate_limits_reserves_total",
        "relaygate_metrics_series_dropped_total",
        "relaygate_active_streams",
        "process_resident_memory_bytes",
    ):
        assert metrics.select(name), name
    assert metrics.total("relaygate_config_revision") == 1


def test_cooldowns_are_counted_and_the_cooled_target_shows(
    gateway_factory: GatewayFactory, openai_upstream: OpenAIMock
) -> None:
    gateway = gateway_factory(
        manifests.OPENAI_ACCOUNT + "---\n" + manifests.UNREACHABLE_ACCOUNT + "---\n" + VIRTUAL,
        port=openai_upstream.port,
        closed_port=free_port(),
    )
    alice = gateway.create_token(user=manifests.ALICE)
    client = gateway.client(alice, max_retries=0)
    for _ in range(2):  # two failures of a virtual-model target within two minutes cool it
        client.chat.completions.create(model="vms/fallback", messages=HELLO)
    metrics = scrape(gateway.url)
    assert metrics.total("relaygate_target_cooldowns_total", target="unreachable/gpt-4o") == 1
    assert metrics.total("relaygate_target_cooled_down", target="unreachable/gpt-4o") == 1


def test_metrics_token_guards_the_endpoint(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(manifests.MOCK_ONLY, start=False)
    gateway.serve_args += ["--metrics-token", "scrape-secret-1"]
    gateway.start()
    assert gateway.request("GET", "/metrics").status == 401
    assert gateway.request("GET", "/metrics", token="wrong").status == 401
    assert gateway.request("GET", "/metrics", token="scrape-secret-1").status == 200
    assert "scrape-secret-1" not in gateway.output()


def test_metrics_off_keeps_only_the_operational_families(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(manifests.MOCK_ONLY, env={"RELAYGATE_METRICS": "off"})
    alice = gateway.create_token(user=manifests.ALICE)
    gateway.client(alice).chat.completions.create(model="mock/echo", messages=HELLO)
    metrics: Scrape = scrape(gateway.url)
    assert not metrics.select("relaygate_requests_total")
    assert metrics.select("relaygate_log_rows_submitted_total")


def test_series_that_stay_idle_past_the_ttl_are_evicted() -> None:
    from relaygate.observe.series import Family

    family = Family("x_total", "x", "counter", ("a",))
    family.inc(("old",), 1.0, now=100.0)
    family.inc(("new",), 1.0, now=200.0)
    assert family.evict_idle(before=150.0) == 1
    assert list(family.values) == [("new",)]


RATE_LIMIT = """\
type: gateway-rate-limiting-config
name: metric-limits
rules:
  - id: echo-4-per-minute
    when: {models: [mock/echo]}
    limit_to: 4
    unit: requests_per_minute
"""


def test_limit_decisions_and_usage_ratio(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(manifests.MOCK_ONLY + "---\n" + RATE_LIMIT)
    alice = gateway.create_token(user=manifests.ALICE)
    body = {"model": "mock/echo", "messages": HELLO}
    statuses = [gateway.request("POST", "/api/llm/chat/completions", token=alice, json=body).status for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    metrics = scrape(gateway.url)
    labels = {"kind": "rate_limit", "rule_id": "echo-4-per-minute"}
    assert metrics.total("relaygate_limits_decisions_total", decision="allow", **labels) == 4
    assert metrics.total("relaygate_limits_decisions_total", decision="deny", **labels) == 1
    assert metrics.total("relaygate_limit_usage_ratio", **labels) == 1.0  # 4 of 4 used
    assert metrics.total("relaygate_requests_total", error_type="rate_limited") == 1
