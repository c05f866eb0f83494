"""GET /guardrails through HTTP: the served integrations and rules, never a webhook's credentials, and
the verdicts real requests produced (this process's counts)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.admin.admin_config import ADMIN, CONFIG, USER, VIEWER, get, start
from tests.admin.guardrails_config import EMAIL, GUARDRAILS, SECRET
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> GatewayHandle:
    return start(gateway_factory, CONFIG + GUARDRAILS)


def _chat(gateway: GatewayHandle, token: str, text: str, model: str = "mock/echo") -> int:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return gateway.request("POST", "/api/llm/chat/completions", token=token, json=body).status


def test_integrations_and_rules_are_listed_without_any_credential(gateway: GatewayHandle) -> None:
    answer = get(gateway, "/guardrails", gateway.create_token(user=VIEWER))  # get() scans for every secret
    assert answer["match"] == "all" and answer["allow_request_guardrails"] is False
    by_ref = {g["ref"]: g for g in answer["guardrails"]}
    assert list(by_ref) == ["safety/no-secrets", "safety/pii-mask", "safety/watch", "safety/hook"]
    assert by_ref["safety/pii-mask"] | {"verdicts": None} == {
        "ref": "safety/pii-mask",
        "type": "pii",
        "operation": "mutate",
        "enforcing_strategy": "enforce",
        "priority": 1,
        "timeout_ms": 5000,
        "logging_only": False,
        "verdicts": None,
    }
    assert by_ref["safety/watch"]["enforcing_strategy"] == "audit" and by_ref["safety/watch"]["timeout_ms"] == 1500
    hook = by_ref["safety/hook"]
    assert hook["type"] == "webhook" and set(hook) == set(by_ref["safety/pii-mask"])  # no url, headers, auth_data
    rules = {r["id"]: r for r in answer["rules"]}
    assert list(rules) == ["echo-input", "hooked", "listed-only"]
    assert rules["echo-input"]["when"] == {
        "models": ["mock/echo"],
        "subjects": {"operator": "and", "in": ["team:everyone"], "not_in": ["user:nobody@example.com"]},
    }
    assert rules["echo-input"]["llm_input_guardrails"] == ["safety/pii-mask", "safety/no-secrets", "safety/watch"]
    assert rules["hooked"]["when"] == {"models": ["mock/priced"]} and rules["hooked"]["stream_mode"] == "window"
    listed = rules["listed-only"]
    assert listed["when"] == {"models": ["nowhere/*"], "metadata": {"env": ["prod"]}}
    assert listed["llm_output_guardrails"] == ["safety/watch"] and listed["stream_mode"] == "post_hoc"


def test_verdict_counts_follow_real_requests(gateway: GatewayHandle) -> None:
    user = gateway.create_token(user=USER)
    assert _chat(gateway, user, f"mail {EMAIL} please") == 200
    assert _chat(gateway, user, f"key {SECRET}") == 400
    assert _chat(gateway, user, "the watchlist topic") == 200
    assert _chat(gateway, user, "hello", model="mock/priced") == 200  # the webhook fails: ignored on error
    admin = gateway.create_token(user=ADMIN)
    deadline = time.monotonic() + 5
    while True:  # metrics are recorded when each request finishes, after its answer
        answer: dict[str, Any] = get(gateway, "/guardrails", admin)
        verdicts = {g["ref"]: g["verdicts"] for g in answer["guardrails"]}
        if verdicts["safety/hook"]:
            break
        assert time.monotonic() < deadline, verdicts
        time.sleep(0.05)
    assert answer["verdicts_counted"] is True
    assert verdicts["safety/pii-mask"]["input"] == {"mutate": 1, "pass": 2}
    assert verdicts["safety/no-secrets"]["input"] == {"pass": 2, "block": 1}
    assert verdicts["safety/watch"]["input"] == {"pass": 2, "flag": 1}
    assert verdicts["safety/hook"] == {"input": {"error": 1}}


def test_metrics_off_lists_the_config_without_counts(gateway_factory: GatewayFactory) -> None:
    gateway = start(gateway_factory, CONFIG + GUARDRAILS, RELAYGATE_METRICS="off")
    answer = get(gateway, "/guardrails", gateway.create_token(user=ADMIN))
    assert answer["verdicts_counted"] is False
    assert all(g["verdicts"] is None for g in answer["guardrails"])


def test_ordinary_users_may_not_read_guardrails(gateway: GatewayHandle) -> None:
    answer = gateway.request("GET", "/api/admin/v1/guardrails", token=gateway.create_token(user=USER))
    assert answer.status == 403


def test_a_config_without_guardrails_lists_nothing(gateway_factory: GatewayFactory) -> None:
    gateway = start(gateway_factory)
    answer = get(gateway, "/guardrails", gateway.create_token(user=ADMIN))
    assert answer["guardrails"] == [] and answer["rules"] == [] and answer["match"] == "first"
