"""CEL model-selection strategies: filtering, ordering, first non-empty answer, never adding models."""

from __future__ import annotations

import logging
import random

import pytest

from relaygate.routing.cel import CelError, compile_strategy, to_cel
from relaygate.routing.ngrok import plan
from relaygate.runtime.ngrok import NgrokGateway
from tests.ngrok.policy_builder import gateway, route_keys

PROVIDERS = """
on_http_request:
  - type: ai-gateway
    config:
      providers:
        - id: my-provider
          base_url: http://127.0.0.1:8001/v1
          metadata: {tier: self-hosted}
          models:
            - {id: llama3, metadata: {gpu: A100, max_context: 8192}}
            - {id: mistral, metadata: {gpu: T4}}
        - id: inference-2
          base_url: http://127.0.0.1:8002/v1
          metadata: {tier: self-hosted}
          models: [{id: llama3}]
        - id: openai
          base_url: https://api.openai.com/v1
          metadata: {tier: cloud}
          api_keys: [{value: sk-one}]
          models: [{id: gpt-4o}]
      model_selection:
        strategy:
"""


def build(*strategies: str) -> NgrokGateway:
    return gateway(PROVIDERS + "".join(f'          - "{s}"\n' for s in strategies))


def names(
    g: NgrokGateway,
    requested: str,
    body: list[str] | None = None,
    metadata: dict[str, str] | None = None,
    rng: random.Random | None = None,
) -> list[str]:
    routes = plan(g, requested, body, metadata or {}, rng=rng)
    return list(dict.fromkeys(r.name for r in routes))


def test_filter_by_provider() -> None:
    g = build("ai.models.filter(m, m.provider_id == 'inference-2')")
    assert names(g, "llama3") == ["inference-2:llama3"]


def test_filter_by_model_metadata() -> None:
    g = build("ai.models.filter(m, 'gpu' in m.metadata && m.metadata.gpu == 'A100')")
    assert names(g, "my-provider:mistral", ["my-provider:mistral", "llama3"]) == ["my-provider:llama3"]


def test_filter_by_numeric_metadata() -> None:
    g = build("ai.models.filter(m, has(m.metadata.max_context) && m.metadata.max_context >= 8000)")
    assert names(g, "llama3") == ["my-provider:llama3"]


def test_filter_by_provider_metadata() -> None:
    g = build("ai.models.filter(m, m.provider_metadata.tier == 'cloud')")
    assert names(g, "llama3", ["llama3", "gpt-4o"]) == ["openai:gpt-4o"]


def test_first_non_empty_strategy_wins() -> None:
    g = build(
        "ai.models.filter(m, m.provider_id == 'nobody')", "ai.models.filter(m, m.provider_id == 'openai')", "ai.models"
    )
    assert names(g, "llama3", ["llama3", "gpt-4o"]) == ["openai:gpt-4o"]


def test_custom_provider_first_cloud_only_when_it_has_nothing() -> None:
    g = build("ai.models.filter(m, m.provider_id == 'my-provider')", "ai.models.filter(m, m.provider_id == 'openai')")
    assert names(g, "llama3", ["llama3", "gpt-4o"]) == ["my-provider:llama3"]
    assert names(g, "gpt-4o") == ["openai:gpt-4o"]


def test_all_strategies_empty_leaves_nothing_to_route() -> None:
    g = build("ai.models.filter(m, m.provider_id == 'nobody')")
    assert names(g, "llama3") == []


def test_a_strategy_never_adds_a_model() -> None:
    # `ai.models` holds only the request's candidates: the strategy cannot reach gpt-4o here.
    g = build("ai.models.filter(m, m.provider_id == 'openai')", "ai.models")
    assert names(g, "mistral") == ["my-provider:mistral"]


def test_a_strategy_answer_naming_a_non_candidate_is_ignored() -> None:
    program = compile_strategy("ai.models + [{'provider_id': 'openai', 'id': 'gpt-4o'}]")
    models = [to_cel({"provider_id": "a", "id": "x"})]
    assert program.select(models, ["a:x"], random.Random(1)) == (0,)


def test_a_strategy_may_reorder_candidates() -> None:
    g = build(
        "ai.models.filter(m, m.provider_id == 'inference-2') + ai.models.filter(m, m.provider_id != 'inference-2')"
    )
    assert names(g, "llama3") == ["inference-2:llama3", "my-provider:llama3"]


def test_random_yields_varied_orders_over_seeds() -> None:
    g = build("ai.models.random()")
    orders = {tuple(names(g, "llama3", ["llama3", "mistral", "gpt-4o"], rng=random.Random(seed))) for seed in range(40)}
    assert len(orders) > 3
    assert all(
        sorted(o) == ["inference-2:llama3", "my-provider:llama3", "my-provider:mistral", "openai:gpt-4o"]
        for o in orders
    )


def test_random_keeps_each_providers_keys_together_in_order() -> None:
    g = gateway(
        PROVIDERS.replace("api_keys: [{value: sk-one}]", "api_keys: [{value: sk-one}, {value: sk-two}]")
        + '          - "ai.models.random()"\n'
    )
    for seed in range(10):
        keys = route_keys(plan(g, "llama3", ["llama3", "gpt-4o"], {}, rng=random.Random(seed)))
        start = keys.index("ngrok:openai:gpt-4o:0")
        assert keys[start + 1] == "ngrok:openai:gpt-4o:1"


def test_random_after_filter() -> None:
    g = build("ai.models.filter(m, m.provider_metadata.tier == 'self-hosted').random()")
    seen = {tuple(names(g, "llama3", ["llama3", "gpt-4o"], rng=random.Random(s))) for s in range(30)}
    assert seen == {("my-provider:llama3", "inference-2:llama3"), ("inference-2:llama3", "my-provider:llama3")}


def test_only_and_ignore_by_model_id() -> None:
    assert names(build("ai.models.only(['gpt-4o'])"), "llama3", ["llama3", "gpt-4o"]) == ["openai:gpt-4o"]
    assert names(build("ai.models.ignore(['llama3'])"), "llama3", ["llama3", "gpt-4o"]) == ["openai:gpt-4o"]


def test_only_and_ignore_providers() -> None:
    g = build("ai.models.onlyProviders(['inference-2', 'openai'])")
    assert names(g, "llama3", ["llama3", "gpt-4o"]) == ["inference-2:llama3", "openai:gpt-4o"]
    g = build("ai.models.ignoreProviders(['my-provider'])")
    assert names(g, "llama3") == ["inference-2:llama3"]


def test_request_metadata_is_visible_to_strategies() -> None:
    g = build("ai.request.metadata.region == 'eu' ? ai.models.filter(m, m.provider_id == 'inference-2') : ai.models")
    assert names(g, "llama3", metadata={"region": "eu"}) == ["inference-2:llama3"]
    assert names(g, "llama3", metadata={"region": "us"}) == ["my-provider:llama3", "inference-2:llama3"]


def test_strategy_that_fails_at_runtime_counts_as_empty_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    g = build("ai.models.filter(m, m.metadata.gpu == 'A100')", "ai.models")  # inference-2 has no gpu key
    with caplog.at_level(logging.WARNING, logger="relaygate.routing.cel"):
        assert names(g, "llama3") == ["my-provider:llama3", "inference-2:llama3"]
        assert names(g, "llama3", ["llama3", "mistral"]) == [
            "my-provider:llama3",
            "inference-2:llama3",
            "my-provider:mistral",
        ]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_non_list_answer_counts_as_empty() -> None:
    g = build("ai.models.size()", "ai.models")
    assert names(g, "gpt-4o") == ["openai:gpt-4o"]


def test_deterministic_answers_are_memoised_per_candidate_list() -> None:
    program = compile_strategy("ai.models.filter(m, m.id == 'x')")
    assert not program.volatile
    models = [to_cel({"provider_id": "a", "id": "x"}), to_cel({"provider_id": "b", "id": "y"})]
    assert program.select(models, ["a:x", "b:y"], random.Random()) == (0,)
    assert program.select([], ["a:x", "b:y"], random.Random()) == (0,)  # memo hit: not evaluated again
    assert compile_strategy("ai.models.random()").volatile
    assert compile_strategy("ai.request.metadata.size() > 0 ? ai.models : []").volatile


@pytest.mark.parametrize("source", ["ai.models.filter(m, ", "ai.models.sortBy(m, m.id)", "nope(ai.models)"])
def test_bad_strategies_do_not_compile(source: str) -> None:
    with pytest.raises(CelError):
        compile_strategy(source)
