"""Opt-in identity and metadata labels, their per-label cap, and the closed `error_type` list."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaygate.observe.error_types import ERROR_TYPES, error_type_of
from relaygate.observe.series import OTHER, Family, LabelBudget
from relaygate.routing.router import AttemptRecord
from tests.conftest import GatewayFactory
from tests.helpers import manifests
from tests.helpers.gateway import run_cli
from tests.helpers.prometheus import scrape

OBSERVABILITY = """\
type: gateway-observability-config
name: observability
metrics:
  labels:
    identity: [user, team, virtual_account]
    metadata: [app]
    max_values_per_label: 2
  series_ttl: 1h
"""
HELLO = [{"role": "user", "content": "label me"}]
IDENTITIES = """\
type: team
name: ml-team
members: [alice@example.com]
---
type: virtual-account
name: mock-bot
allowed_models: [mock/*]
"""


def test_identity_and_metadata_labels_appear_only_when_configured(gateway_factory: GatewayFactory) -> None:
    plain = gateway_factory(manifests.MOCK_ONLY + "---\n" + IDENTITIES)
    token = plain.create_token(user=manifests.ALICE)
    plain.client(token).chat.completions.create(model="mock/echo", messages=HELLO)
    metrics = scrape(plain.url)
    labels = {name for s in metrics.select("relaygate_requests_total") for name in s.labels}
    assert labels == {"route", "operation", "status_class", "error_type"}
    assert manifests.ALICE not in metrics.text


def test_label_values_past_the_cap_fold_into_other_and_are_counted(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(manifests.MOCK_ONLY + "---\n" + IDENTITIES + "---\n" + OBSERVABILITY)
    alice = gateway.create_token(user=manifests.ALICE)
    client = gateway.client(alice)
    for app in ("billing", "search", "chatbot", "reports"):
        client.chat.completions.create(
            model="mock/echo", messages=HELLO, extra_headers={"x-tfy-metadata": f'{{"app": "{app}"}}'}
        )
    bot = gateway.create_token(virtual_account="mock-bot")
    gateway.request("POST", "/api/llm/chat/completions", token=bot, json={"model": "mock/echo", "messages": HELLO})
    metrics = scrape(gateway.url)
    samples = metrics.select("relaygate_requests_total", user=manifests.ALICE)
    assert {s.labels["team"] for s in samples} == {"ml-team"}
    apps = {s.labels["metadata_app"]: s.value for s in samples}
    assert apps == {"billing": 1, "search": 1, OTHER: 2}  # two values allowed, the rest fold
    assert metrics.total("relaygate_requests_total", virtual_account="mock-bot") == 1
    assert metrics.total("relaygate_metrics_series_dropped_total") >= 2
    assert "chatbot" not in metrics.text and "reports" not in metrics.text


def test_check_refuses_a_second_observability_config_and_bad_keys(tmp_path: Path) -> None:
    config = tmp_path / "obs.yaml"
    config.write_text(OBSERVABILITY + "---\n" + OBSERVABILITY.replace("name: observability", "name: second"))
    result = run_cli("check", "-f", str(config))
    assert result.returncode == 1
    assert "only one gateway-observability-config may be applied" in result.stdout + result.stderr
    config.write_text(OBSERVABILITY.replace("metadata: [app]", "metadata: [app-name]"))
    result = run_cli("check", "-f", str(config))
    assert result.returncode == 1
    assert "metrics.labels.metadata[0]" in result.stdout + result.stderr
    config.write_text(OBSERVABILITY.replace("series_ttl: 1h", "series_ttl: soon"))
    result = run_cli("check", "-f", str(config))
    assert "metrics.series_ttl" in result.stdout + result.stderr


def test_budget_folds_values_past_the_cap_and_frees_places_on_eviction() -> None:
    family = Family("x_total", "x", "counter", ("route", "user"), budget=LabelBudget(((1, 2),)))
    for user in ("a", "b", "c", "d"):
        family.inc(("/r", user), 1.0, now=10.0)
    assert dict(family.samples()) == {("/r", "a"): [1.0], ("/r", "b"): [1.0], ("/r", OTHER): [2.0]}
    family.inc(("/r", "a"), 1.0, now=100.0)
    assert family.evict_idle(before=50.0) == 2  # b and _OTHER went idle
    family.inc(("/r", "e"), 1.0, now=101.0)
    assert ("/r", "e") in family.values


def _attempt(status: int | None, error: str | None = None) -> AttemptRecord:
    return AttemptRecord("acct/model", status, error, 1.0, False, "openai", "error")


@pytest.mark.parametrize(
    ("status", "error_type", "truncated", "attempts", "expected"),
    [
        (200, None, False, (), ""),
        (401, "authentication_error", False, (), "unauthorized"),
        (403, "permission_denied", False, (), "forbidden"),
        (429, "rate_limit_exceeded", False, (), "rate_limited"),
        (429, "budget_exceeded", False, (), "budget_exceeded"),
        (404, "not_found_error", False, (), "invalid_request"),
        (400, "invalid_request_error", False, (), "invalid_request"),
        (499, "client_disconnected", False, (), "cancelled"),
        (200, "client_disconnected", True, (), "cancelled"),
        (200, "upstream_error", True, (), "upstream_reset"),
        (502, "upstream_error", False, (_attempt(None, "upstream_error"),), "connection_failure"),
        (504, "upstream_timeout", False, (_attempt(None, "upstream_timeout"),), "timeout"),
        (500, "upstream_error", False, (_attempt(500),), "upstream_500"),
        (429, "upstream_error", False, (_attempt(429),), "upstream_429"),
        (503, None, False, (_attempt(503),), "upstream_503"),  # a custom endpoint relays the upstream's status
        (500, "internal_error", False, (), "internal"),
        (508, "loop_detected", False, (), "_OTHER"),
        (400, "some upstream's own error type", False, (), "_OTHER"),
    ],
)
def test_error_type_is_a_closed_list(
    status: int, error_type: str | None, truncated: bool, attempts: tuple[AttemptRecord, ...], expected: str
) -> None:
    found = error_type_of(status, error_type, truncated, attempts)
    assert found == expected
    assert found in ERROR_TYPES or (found.startswith("upstream_") and 100 <= int(found[9:]) <= 599)


def test_latest_semconv_switch_emits_the_inference_names_instead() -> None:
    from relaygate.config.compile import empty_snapshot
    from relaygate.observe.request_metrics import RequestMetrics

    snapshot = empty_snapshot()
    released = {f.name for f in RequestMetrics(lambda: snapshot).families}
    latest = {f.name for f in RequestMetrics(lambda: snapshot, latest_semconv=True).families}
    assert "gen_ai_client_token_usage" in released and "gen_ai_client_operation_duration_seconds" in released
    assert not any(name.startswith("gen_ai_client_operation") or name == "gen_ai_client_token_usage" for name in latest)
    assert {
        "gen_ai_client_inference_duration_seconds",
        "gen_ai_client_inference_operation_input_tokens",
        "gen_ai_client_inference_usage_cache_write_input_tokens_total",
    } <= latest
