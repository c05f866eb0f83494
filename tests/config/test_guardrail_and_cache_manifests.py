"""`relaygate check` on guardrail and cache manifests: what loads, what is refused (naming the field),
and what is warned about (a shadowed rule under match: first, a globally scoped cache rule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaygate.cli import main
from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text
from relaygate.config.problems import ConfigError

GROUP = """
type: provider-account/guardrail-config-group
name: safety
integrations:
  - {name: pii, type: integration/guardrail-config/pii, operation: mutate, config: {action: mask}}
  - {name: schema, type: json_schema, config: {schema: {type: object}}}
  - {name: open-ended, type: regex, config: {patterns: [{name: any, pattern: "secret[0-9]+"}]}}
  - {name: bounded, type: regex, config: {patterns: [{name: code, pattern: "secret[0-9]{4}"}]}}
---
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text(GROUP + text, "test.yaml", env={})
    return [f"{p.field}: {p.rule}" for p in caught.value.problems]


def test_a_valid_config_compiles_to_policies() -> None:
    manifests = load_text(
        GROUP
        + """type: gateway-guardrails-config
name: guardrails
rules:
  - id: a
    when: {models: ["openai-main/*"]}
    llm_input_guardrails: [safety/pii]
    llm_output_guardrails: [safety/bounded]
    stream_mode: window
---
type: gateway-cache-config
name: cache
rules: [{id: c, when: {models: [mock/echo]}, ttl: 60}]
""",
        "ok.yaml",
        env={},
    )
    snapshot = compile_manifests(manifests)
    policy = snapshot.guardrails
    assert [r.id for r in policy.rules] == ["a"]
    selection = policy.select("openai-main/gpt-4o", frozenset({"user:x"}), {}, {})
    assert selection is not None and [g.ref for g in selection.input] == ["safety/pii"]
    assert policy.select("other/model", frozenset({"user:x"}), {}, {}) is None
    assert snapshot.cache.rules[0].ttl == 60


def test_an_unknown_reference_is_refused() -> None:
    problems = _problems(
        "type: gateway-guardrails-config\nname: g\nrules: [{id: a, llm_input_guardrails: [safety/nope]}]\n"
    )
    assert any("rules[0].llm_input_guardrails[0]" in p and "not declared" in p for p in problems), problems


def test_window_mode_refuses_a_whole_answer_check_and_an_unbounded_pattern() -> None:
    problems = _problems(
        """type: gateway-guardrails-config
name: g
rules:
  - {id: a, llm_output_guardrails: [safety/schema, safety/open-ended], stream_mode: window}
"""
    )
    assert any("llm_output_guardrails[0]" in p and "whole answer" in p for p in problems), problems
    assert any("llm_output_guardrails[1]" in p and "unbounded" in p for p in problems), problems


def test_post_hoc_needs_audit() -> None:
    problems = _problems(
        "type: gateway-guardrails-config\nname: g\n"
        "rules: [{id: a, llm_output_guardrails: [safety/pii], stream_mode: post_hoc}]\n"
    )
    assert any("audit" in p for p in problems), problems


def test_a_bad_check_config_is_reported_at_its_field() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(
            "type: provider-account/guardrail-config-group\nname: g\nintegrations:\n"
            "  - {name: r, type: regex, config: {patterns: [{name: x, pattern: '(unclosed'}]}}\n",
            "bad.yaml",
            env={},
        )
    (problem,) = caught.value.problems
    assert problem.field.startswith("integrations[0].config"), problem


def test_an_unknown_type_lists_the_built_in_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(
            "type: provider-account/guardrail-config-group\nname: g\nintegrations:\n  - {name: r, type: tfy-pii}\n",
            "bad.yaml",
            env={},
        )
    assert "built in: regex, keywords, pii" in str(caught.value)


def test_semantic_cache_needs_an_embedding_model() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text("type: gateway-cache-config\nname: c\nrules: [{id: s, type: semantic}]\n", "c.yaml", env={})
    assert "embedding_model" in str(caught.value)


def test_check_warns_about_a_shadowed_rule_and_a_global_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        GROUP
        + """type: gateway-guardrails-config
name: guardrails
rules:
  - {id: broad, when: {models: ["*"]}, llm_input_guardrails: [safety/pii]}
  - {id: narrow, when: {models: [mock/echo]}, llm_input_guardrails: [safety/bounded]}
---
type: gateway-cache-config
name: cache
rules: [{id: shared, scope: global}]
"""
    )
    assert main(["check", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert "rule 'narrow' never applies under match: first" in out
    assert "scope: global shares cached answers" in out
    assert "warning(s)" in out


def test_match_all_has_no_shadowing_and_unions_the_rules() -> None:
    manifests = load_text(
        GROUP
        + """type: gateway-guardrails-config
name: guardrails
match: all
rules:
  - {id: broad, when: {models: ["*"]}, llm_input_guardrails: [safety/pii]}
  - {id: narrow, when: {models: [mock/echo]}, llm_input_guardrails: [safety/bounded, safety/pii]}
""",
        "all.yaml",
        env={},
    )
    assert not [w for w in manifests.warnings if "never applies" in w.rule]
    selection = compile_manifests(manifests).guardrails.select("mock/echo", frozenset(), {}, {})
    assert selection is not None
    assert selection.rule_ids == ("broad", "narrow")
    assert [g.ref for g in selection.input] == ["safety/pii", "safety/bounded"]  # each once


def test_subject_conditions_in_and_not_in() -> None:
    manifests = load_text(
        GROUP
        + """type: gateway-guardrails-config
name: guardrails
rules:
  - id: team-but-not-ops
    when: {subjects: {operator: and, conditions: {in: [team:ml], not_in: [user:ops@example.com]}}}
    llm_input_guardrails: [safety/pii]
""",
        "subjects.yaml",
        env={},
    )
    policy = compile_manifests(manifests).guardrails
    assert policy.select("m/x", frozenset({"user:a@example.com", "team:ml"}), {}, {}) is not None
    assert policy.select("m/x", frozenset({"user:ops@example.com", "team:ml"}), {}, {}) is None
    assert policy.select("m/x", frozenset({"user:a@example.com"}), {}, {}) is None
