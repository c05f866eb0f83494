"""`provider-account/virtual-model` manifests -> runtime virtual models (one name, many targets).

Targets are resolved to compiled `Target`s here, once per config, with their routing knobs
(`RouteTarget`) and per-target request changes (`TargetOverrides`), so a request only filters
and orders a ready table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from relaygate.auth.access import AccessRule
from relaygate.config.problems import Problem
from relaygate.http.forwarding import merge_headers
from relaygate.providers.base import Target
from relaygate.routing.plan import RetryPolicy, RouteTarget

STRATEGY_OF = {
    "weight-based-routing": "weight",
    "latency-based-routing": "latency",
    "priority-based-routing": "priority",
}


@dataclass(frozen=True, slots=True)
class TargetOverrides:
    """What a virtual model changes for one of its targets."""

    target: Target
    metadata_match: tuple[tuple[str, str], ...] = ()
    headers_set: tuple[tuple[str, str], ...] = ()
    headers_remove: frozenset[str] = frozenset()
    override_params: Mapping[str, Any] = field(default_factory=dict)
    sla_cutoff_ms: float | None = None  # priority-based: unhealthy above this time per output token

    def matches(self, metadata: Mapping[str, str]) -> bool:
        """Eligible only when every `metadata_match` pair is in the request's metadata."""
        return all(metadata.get(key) == value for key, value in self.metadata_match)


@dataclass(frozen=True, slots=True)
class StickyConfig:
    ttl_seconds: float
    identifiers: tuple[tuple[str, str], ...]  # (source "headers"|"metadata", key lower-cased for headers)


@dataclass(frozen=True, slots=True)
class VirtualModel:
    """A callable model name whose requests are routed over several real models."""

    name: str
    account: str
    integration: str
    model_types: frozenset[str]
    strategy: str  # "weight" | "latency" | "priority"
    targets: tuple[RouteTarget, ...]  # payload: TargetOverrides
    access: AccessRule
    sticky: StickyConfig | None = None


def _retry(config: Any) -> RetryPolicy | None:
    if config is None:
        return None
    return RetryPolicy(
        attempts=int(config.attempts),
        delay=float(config.delay) / 1000.0,
        on_status_codes=frozenset(int(code) for code in config.on_status_codes),
    )


def _with_headers(target: Target, set_: dict[str, str], remove: set[str]) -> Target:
    """The target as this virtual model calls it: `headers_override` applied once, at load."""
    kept = {name: value for name, value in target.headers if name.lower() not in remove}
    return replace(target, headers=merge_headers(kept, set_))


def compile_virtual_account(
    account: Any, models: Mapping[str, Target], file: str
) -> tuple[list[VirtualModel], list[Problem]]:
    """The account's virtual models; targets must be compiled real models."""
    problems: list[Problem] = []
    out: list[VirtualModel] = []
    collaborators = frozenset(c.subject for c in account.collaborators) if account.collaborators else None
    for index, integration in enumerate(account.integrations):
        config = integration.routing_config
        targets: list[RouteTarget] = []
        for t_index, spec in enumerate(config.load_balance_targets):
            target = models.get(spec.target)
            if target is None:
                problems.append(
                    Problem(
                        file,
                        f"{account.type} {account.name}",
                        f"integrations[{index}].routing_config.load_balance_targets[{t_index}].target",
                        "must name a configured (non-virtual) model",
                    )
                )
                continue
            override = spec.headers_override
            if override is not None:
                target = _with_headers(target, dict(override.set), {h.lower() for h in override.remove})
            targets.append(
                RouteTarget(
                    key=f"model:{target.name}",
                    name=target.name,
                    payload=TargetOverrides(
                        target=target,
                        metadata_match=tuple(sorted(spec.metadata_match.items())),
                        headers_set=tuple(override.set.items()) if override else (),
                        headers_remove=frozenset(h.lower() for h in override.remove) if override else frozenset(),
                        override_params=dict(spec.override_params),
                        sla_cutoff_ms=spec.sla_cutoff.time_per_output_token_ms if spec.sla_cutoff else None,
                    ),
                    weight=spec.weight,
                    priority=spec.priority,
                    fallback_status_codes=frozenset(int(code) for code in spec.fallback_status_codes),
                    fallback_candidate=spec.fallback_candidate,
                    retry=_retry(spec.retry_config),
                )
            )
        sticky = None
        if config.sticky_routing is not None:
            sticky = StickyConfig(
                ttl_seconds=float(config.sticky_routing.ttl_seconds),
                identifiers=tuple(
                    (s.source, s.key.lower() if s.source == "headers" else s.key)
                    for s in config.sticky_routing.session_identifiers
                ),
            )
        out.append(
            VirtualModel(
                name=f"{account.name}/{integration.name}",
                account=account.name,
                integration=integration.name,
                model_types=frozenset(integration.model_types),
                strategy=STRATEGY_OF[config.type],
                targets=tuple(targets),
                access=AccessRule(collaborators),
                sticky=sticky,
            )
        )
    return out, problems
