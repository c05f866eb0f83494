"""Model names split at their first '/': integration names may hold '/' (`together/meta-llama/Meta-Llama-3.1-70B`),
and integration `aliases` are unique across the config."""

from __future__ import annotations

import pytest

from relaygate.config.compile import compile_manifests
from relaygate.config.loader import ConfigError, load_text
from relaygate.config.problems import Problem

TOGETHER = """
type: provider-account/together
name: together
auth_data: {type: api-key, api_key: "${KEY}"}
integrations:
  - {name: meta-llama/Meta-Llama-3.1-70B, type: integration/model/together,
     model_id: meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo, model_types: [chat]}
"""
REFERENCES = """
type: provider-account/virtual-model
name: routed
integrations:
  - name: llama/balanced
    type: integration/model/virtual
    model_types: [chat]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{target: together/meta-llama/Meta-Llama-3.1-70B, priority: 0}]
---
type: virtual-account
name: ci-bot
allowed_models: [together/meta-llama/Meta-Llama-3.1-70B, routed/llama/balanced]
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {id: llama, when: {models: [together/meta-llama/Meta-Llama-3.1-70B]}, limit_to: 5, unit: requests_per_minute}
"""
ENV = {"KEY": "k"}


def problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        compile_manifests(load_text(text, "gw.yaml", env=ENV))
    return list(caught.value.problems)


def test_an_integration_name_may_hold_slashes_and_every_reference_finds_it() -> None:
    snapshot = compile_manifests(load_text(TOGETHER + "---" + REFERENCES, "gw.yaml", env=ENV))
    target = snapshot.models["together/meta-llama/Meta-Llama-3.1-70B"]
    assert (target.account, target.integration) == ("together", "meta-llama/Meta-Llama-3.1-70B")
    assert target.model_id == "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"
    assert [r.name for r in snapshot.virtual_models["routed/llama/balanced"].targets] == [
        "together/meta-llama/Meta-Llama-3.1-70B"
    ]
    assert snapshot.virtual_accounts["ci-bot"].models == {
        "together/meta-llama/Meta-Llama-3.1-70B",
        "routed/llama/balanced",
    }
    assert [r.id for r in snapshot.limits.rules if "together/meta-llama/Meta-Llama-3.1-70B" in (r.models or ())] == [
        "llama"
    ]


def test_a_reference_to_a_missing_slashed_integration_names_it() -> None:
    [problem] = problems(TOGETHER + "---" + REFERENCES.replace("Meta-Llama-3.1-70B, priority", "Other, priority"))
    assert problem.field.endswith("load_balance_targets[0].target")
    assert "has no integration 'meta-llama/Other'" in problem.rule


@pytest.mark.parametrize(
    "name", ["meta-llama//x", "meta-llama/", "/meta-llama", "a/../b", "a/./b", "9lives/x", "x" * 30 + "/" + "y" * 32]
)
def test_malformed_slashed_names_are_refused(name: str) -> None:
    [problem] = problems(TOGETHER.replace("name: meta-llama/Meta-Llama-3.1-70B", f"name: '{name}'"))
    assert problem.field == "integrations[0].name"


def test_custom_endpoint_names_stay_one_url_segment() -> None:
    text = """
type: provider-account/custom-endpoint
name: speech
integrations:
  - {type: integration/model/custom-endpoint, name: east/us, base_url: "https://east.example.com"}
"""
    [problem] = problems(text)
    assert problem.field == "integrations[0].name"


# -- aliases ------------------------------------------------------------------------------------------

ANTHROPIC = """
type: provider-account/anthropic
name: claude
auth_data: {{type: api-key, api_key: "${{KEY}}"}}
integrations:
  - {{name: sonnet, type: integration/model/anthropic, model_id: claude-sonnet-4-5-20250929, model_types: [chat],
     aliases: [{sonnet}]}}
  - {{name: haiku, type: integration/model/anthropic, model_id: claude-haiku-4-5-20251001, model_types: [chat],
     aliases: [{haiku}]}}
"""


def test_aliases_name_their_integration_model() -> None:
    text = ANTHROPIC.format(sonnet="claude-sonnet-4-5-20250929, claude-sonnet-4-5", haiku="claude-haiku-4-5-20251001")
    snapshot = compile_manifests(load_text(text, "gw.yaml", env=ENV))
    assert snapshot.aliases["claude-sonnet-4-5"] is snapshot.models["claude/sonnet"]
    assert snapshot.aliases["claude-sonnet-4-5-20250929"] is snapshot.models["claude/sonnet"]
    assert snapshot.aliases["claude-haiku-4-5-20251001"] is snapshot.models["claude/haiku"]


def test_virtual_models_may_have_aliases() -> None:
    text = (
        ANTHROPIC.format(sonnet="claude-sonnet-4-5", haiku="claude-haiku-4-5")
        + """---
type: provider-account/virtual-model
name: vmodels
integrations:
  - name: claude
    type: integration/model/virtual
    model_types: [chat]
    aliases: [claude-opus-4-1]
    routing_config:
      type: priority-based-routing
      load_balance_targets: [{target: claude/sonnet, priority: 0}, {target: claude/haiku, priority: 1}]
"""
    )
    snapshot = compile_manifests(load_text(text, "gw.yaml", env=ENV))
    assert snapshot.aliases["claude-opus-4-1"] is snapshot.virtual_models["vmodels/claude"]


def test_an_alias_used_twice_names_both_integrations() -> None:
    [problem] = problems(ANTHROPIC.format(sonnet="claude-4", haiku="claude-4"))
    assert problem.field == "integrations[1].aliases[0]"
    assert "alias 'claude-4' of claude/haiku is already an alias of claude/sonnet" in problem.rule
    assert "provider-account/anthropic claude in gw.yaml" in problem.rule


def test_an_alias_equal_to_a_model_name_names_both() -> None:
    [problem] = problems(ANTHROPIC.format(sonnet="claude-sonnet-4-5", haiku="claude/sonnet"))
    assert problem.field == "integrations[1].aliases[0]"
    assert "alias 'claude/sonnet' of claude/haiku is already the name of the model of" in problem.rule


def test_an_alias_equal_to_an_ai_gateway_model_is_refused() -> None:
    text = (
        ANTHROPIC.format(sonnet="llama3", haiku="local:llama")
        + """---
on_http_request:
  - type: ai-gateway
    config:
      providers:
        - {id: local, base_url: "http://127.0.0.1:11434/v1", models: [{id: llama3, id_aliases: [llama]}]}
"""
    )
    found = {(p.field, p.rule.split(" is already")[0]) for p in problems(text)}
    assert found == {
        ("integrations[0].aliases[0]", "alias 'llama3' of claude/sonnet"),
        ("integrations[1].aliases[0]", "alias 'local:llama' of claude/haiku"),
    }


def test_duplicate_alias_within_one_integration_is_refused() -> None:
    [problem] = problems(ANTHROPIC.format(sonnet="a-one, a-one", haiku="b-one"))
    assert problem.field == "integrations[0].aliases[1]"


@pytest.mark.parametrize("alias", ["", "has space", "-leading-dash", "x" * 129])
def test_malformed_aliases_are_refused(alias: str) -> None:
    [problem] = problems(ANTHROPIC.format(sonnet=f"'{alias}'", haiku="ok"))
    assert problem.field == "integrations[0].aliases[0]"
