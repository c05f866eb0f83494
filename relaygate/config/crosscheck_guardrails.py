"""Rules across guardrail and cache manifests that no single manifest can check, and their warnings.

Problems (the config is refused): a rule naming a guardrail no group declares; an output guardrail
that a rule's stream mode cannot run (`window` takes span checks with a bounded match length only,
`post_hoc` takes `audit` guardrails only); a second rules or cache manifest.
Warnings (`relaygate check` says them, the config loads): a rule that `match: first` shadows, and a
cache rule with `scope: global` (one caller's answers served to another, and an oracle telling
whether anyone sent a prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from relaygate.config.problems import Loc, Problem, format_path
from relaygate.config.schema_cache import CacheConfig
from relaygate.config.schema_guardrails import (
    WINDOW_TYPES,
    GuardrailConfigGroup,
    GuardrailIntegration,
    GuardrailRule,
    GuardrailsConfig,
    GuardrailWhen,
)

if TYPE_CHECKING:
    from relaygate.config.crosscheck import Located

_STAGES = (
    "llm_input_guardrails",
    "llm_output_guardrails",
    "mcp_tool_pre_invoke_guardrails",
    "mcp_tool_post_invoke_guardrails",
)


def guardrail_problems(entries: Sequence[Located], broken: frozenset[tuple[str, str]]) -> list[Problem]:
    """Unknown references and stream modes a guardrail cannot run in."""
    integrations = _integrations(entries)
    broken_groups = {name for kind, name in broken if kind == "provider-account/guardrail-config-group"}
    problems: list[Problem] = []
    for entry in entries:
        config = entry.manifest
        if not isinstance(config, GuardrailsConfig):
            continue
        for i, rule in enumerate(config.rules):
            for loc, text in _rule_problems(rule, integrations, broken_groups):
                problems.append(Problem(entry.file, entry.label, format_path(("rules", i, *loc)), text))
    return problems


def guardrail_warnings(entries: Sequence[Located]) -> list[Problem]:
    """Shadowed guardrail rules and globally scoped cache rules."""
    warnings: list[Problem] = []
    for entry in entries:
        config = entry.manifest
        if isinstance(config, GuardrailsConfig) and config.match == "first":
            for i, j in _shadowed(config.rules):
                warnings.append(
                    Problem(
                        entry.file,
                        entry.label,
                        format_path(("rules", j)),
                        f"rule {config.rules[j].id!r} never applies under match: first: rule "
                        f"{config.rules[i].id!r} before it matches every request it matches "
                        "(reorder the rules, or set match: all)",
                    )
                )
        if isinstance(config, CacheConfig):
            for i, rule in enumerate(config.rules):
                if rule.scope == "global":
                    warnings.append(
                        Problem(
                            entry.file,
                            entry.label,
                            format_path(("rules", i, "scope")),
                            "scope: global shares cached answers between every caller the rule matches, "
                            "and tells any of them whether someone else sent the same request",
                        )
                    )
    return warnings


def _integrations(entries: Sequence[Located]) -> dict[str, GuardrailIntegration]:
    return {
        f"{entry.manifest.name}/{integration.name}": integration
        for entry in entries
        if isinstance(entry.manifest, GuardrailConfigGroup)
        for integration in entry.manifest.integrations
    }


def _rule_problems(
    rule: GuardrailRule, integrations: dict[str, GuardrailIntegration], broken_groups: set[str]
) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for stage in _STAGES:
        for j, ref in enumerate(getattr(rule, stage)):
            if ref not in integrations:
                if ref.partition("/")[0] not in broken_groups:
                    out.append(((stage, j), f"guardrail {ref!r} is not declared by any guardrail-config-group"))
                continue
            if stage == "llm_output_guardrails":
                out += [((stage, j), text) for text in _stream_mode_problems(rule, integrations[ref])]
    return out


def _stream_mode_problems(rule: GuardrailRule, integration: GuardrailIntegration) -> list[str]:
    if rule.stream_mode == "window":
        if integration.type not in WINDOW_TYPES:
            return [
                f"a {integration.type} guardrail needs the whole answer: stream_mode window takes "
                f"{', '.join(WINDOW_TYPES)} only (use stream_mode: buffer)"
            ]
        from relaygate.guardrails.compile import compile_check

        check = compile_check(integration.type, integration.config)
        if getattr(check, "max_match_chars", None) is None:
            return [
                "a pattern of unbounded length (such as `+` or `*`) can span any window: stream_mode window "
                "needs patterns with a bounded match length (use {m,n}, or stream_mode: buffer)"
            ]
    if rule.stream_mode == "post_hoc" and integration.enforcing_strategy != "audit":
        return [
            "stream_mode post_hoc checks after the answer was sent, so it can only audit: use enforcing_strategy: audit"
        ]
    return []


def _shadowed(rules: Sequence[GuardrailRule]) -> list[tuple[int, int]]:
    """(i, j) pairs where rule i, earlier, matches every request rule j matches."""
    pairs: list[tuple[int, int]] = []
    for j, later in enumerate(rules):
        for i in range(j):
            if _covers(rules[i].when, later.when):
                pairs.append((i, j))
                break
    return pairs


def _covers(first: GuardrailWhen, later: GuardrailWhen) -> bool:
    """A sound (never wrong, sometimes silent) test that `first` matches everything `later` does."""
    first_models, later_models = _models(first), _models(later)
    if first_models is not None and first_models != ("*",):
        if later_models is None or not set(later_models) <= set(first_models):
            return False
    if first.subjects is not None and first.subjects != later.subjects:
        return False
    if first.metadata and first.metadata != later.metadata:
        return False
    return not (first.target is not None and first.target.conditions.mcpServers is not None)


def _models(when: GuardrailWhen) -> tuple[str, ...] | None:
    if when.models is not None:
        return when.models
    if when.target is not None:
        return when.target.conditions.model
    return None
