"""Compiling manifests into the runtime snapshot: URLs, auth headers, prices, access and principals."""

import pytest

from relaygate.auth.access import may_call
from relaygate.auth.store import TokenRecord
from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text

CONFIG = """
type: provider-account/openai
name: openai-main
auth_data: {type: api-key, api_key: "${KEY}"}
collaborators: [{subject: "team:ml", role_id: provider-account-access}]
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat],
     headers: {X-Extra: "1", authorization: "overridden"}}
---
type: provider-account/azure-openai
name: azure-main
base_url: https://res.openai.azure.com/
api_version: "2024-06-01"
auth_data: {type: api-key, api_key: azure-key}
integrations:
  - {name: dep, type: integration/model/azure-openai, model_id: my-dep, model_types: [chat]}
  - {name: dep2, type: integration/model/azure-openai, model_id: my-dep, model_types: [chat], api_version: "2025-01-01"}
---
type: provider-account/self-hosted-model
name: vllm
integrations:
  - {name: llama, type: integration/model/self-hosted-model, hosted_model_name: meta/llama, url: "http://h:8000/v1/",
     model_server: openai-compatible, model_types: [chat],
     cost: {input_per_million_tokens: 1, output_per_million_tokens: 2}}
  - {name: bare, type: integration/model/self-hosted-model, hosted_model_name: meta/llama, url: "http://h:8000/v1",
     model_server: openai-compatible, model_types: [chat]}
---
type: team
name: ml
members: [Alice@Example.com]
---
type: virtual-account
name: bot
allowed_models: [vllm/*, openai-main/gpt-4o]
"""


def _snapshot():  # type: ignore[no-untyped-def]
    return compile_manifests(load_text(CONFIG, env={"KEY": "sk-secret"}))


def _record(subject: str) -> TokenRecord:
    return TokenRecord(
        id="abcdefghijkl",
        kind="personal",
        subject=subject,
        name=None,
        secret_hash="x",
        created_at=0.0,
        expires_at=None,
        revoked_at=None,
    )


def test_openai_target_has_default_url_and_bearer_auth_winning_over_custom_headers() -> None:
    target = _snapshot().models["openai-main/gpt-4o"]
    assert target.base_url == "https://api.openai.com/v1"
    headers = {k.lower(): v for k, v in target.headers}
    assert headers["authorization"] == "Bearer sk-secret"
    assert headers["x-extra"] == "1"
    assert b"sk-secret" in b"".join(target.secrets)


def test_azure_uses_api_key_header_and_api_version_per_integration() -> None:
    snapshot = _snapshot()
    dep = snapshot.models["azure-main/dep"]
    assert dict(dep.headers) == {"api-key": "azure-key"}
    assert dep.base_url == "https://res.openai.azure.com"
    assert dep.options["api_version"] == "2024-06-01"
    assert snapshot.models["azure-main/dep2"].options["api_version"] == "2025-01-01"


def test_self_hosted_uses_its_url_and_model_name_with_cost_override() -> None:
    snapshot = _snapshot()
    llama = snapshot.models["vllm/llama"]
    assert (llama.base_url, llama.model_id) == ("http://h:8000/v1", "meta/llama")
    assert llama.price is not None and llama.price.cost(1_000_000, 1_000_000) == pytest.approx(3.0)
    assert snapshot.models["vllm/bare"].price is None


def test_table_price_for_known_openai_model() -> None:
    price = _snapshot().models["openai-main/gpt-4o"].price
    assert price is not None and price.input_per_million == pytest.approx(2.5)


def test_team_membership_grants_collaborator_access() -> None:
    snapshot = _snapshot()
    target = snapshot.models["openai-main/gpt-4o"]
    alice = snapshot.principal(_record("user:alice@example.com"))
    carol = snapshot.principal(_record("user:carol@example.com"))
    assert may_call(alice, target.name, target.account, target.access)
    assert not may_call(carol, target.name, target.account, target.access)
    open_target = snapshot.models["vllm/llama"]
    assert may_call(carol, open_target.name, open_target.account, open_target.access)


def test_virtual_account_reaches_only_listed_models() -> None:
    snapshot = _snapshot()
    bot = snapshot.principal(_record("virtualaccount:bot"))
    for name, allowed in (("vllm/llama", True), ("openai-main/gpt-4o", True), ("azure-main/dep", False)):
        target = snapshot.models[name]
        assert may_call(bot, target.name, target.account, target.access) is allowed


def test_unknown_virtual_account_reaches_nothing() -> None:
    snapshot = _snapshot()
    ghost = snapshot.principal(_record("virtualaccount:ghost"))
    target = snapshot.models["vllm/llama"]
    assert not may_call(ghost, target.name, target.account, target.access)


def test_rate_limit_and_budget_configs_compile_into_the_snapshot() -> None:
    text = """
type: gateway-rate-limiting-config
name: limits
rules:
  - {id: r1, when: {}, limit_to: 10, unit: requests_per_minute}
---
type: gateway-budget-config
name: budgets
rules:
  - {id: b1, when: {}, limit_to: 5, unit: cost_per_day}
"""
    snapshot = compile_manifests(load_text(text))
    assert [rule.id for rule in snapshot.limits.rules] == ["r1", "b1"]


@pytest.mark.parametrize(
    ("kind", "base_url", "expected"),
    [
        ("anthropic", "http://h:1/v1/", "http://h:1"),
        ("anthropic", "http://h:1", "http://h:1"),
        ("cohere", "http://h:1/v2", "http://h:1"),
        ("google-gemini", "http://h:1/v1beta", "http://h:1"),
        ("openai", "http://h:1/v1", "http://h:1/v1"),  # OpenAI-shaped bases keep their version
    ],
)
def test_base_url_may_end_in_the_version_the_adapter_appends(kind: str, base_url: str, expected: str) -> None:
    auth = "{type: api-key, api_key: k}"
    text = f"""
type: provider-account/{kind}
name: acct
base_url: {base_url}
auth_data: {auth}
integrations:
  - {{name: m1, type: integration/model/{kind}, model_id: m, model_types: [chat]}}
"""
    assert compile_manifests(load_text(text)).models["acct/m1"].base_url == expected
