"""`provider-account/virtual-model` manifests -> runtime virtual models (one name, many targets).

Targets are resolved to compiled `Target`s here, once per config, with their routing knobs
(`RouteTarget`) and per-target request changes (`TargetOverrides`), so a request only filters
and orders a ready table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from relaygate.auth.access import AccessRule
from relaygate.config.problems import Problem
from relaygate.http.forwarding import merge_headers
from relaygate.routing.plan import RetryPolicy, RouteTarget
from relaygate.runtime.targets import Target
from relaygate.runtime.virtual import StickyConfig, TargetOverrides, VirtualModel

STRATEGY_OF = {
    "weight-based-routing": "weight",
    "latency-based-routing": "latency",
    "priority-based-routing": "priority",
}


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


def headers_override_names(override: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`headers_override` by name only (values may be credentials), as `x-tfy-applied-configurations`
    reports it: names set in config order, names removed lower-cased and sorted; empty parts left out."""
    if override is None:
        return ()
    changes = (("set", tuple(override.set)), ("remove", tuple(sorted({h.lower() for h in override.remove}))))
    return tuple((kind, names) for kind, names in changes if names)


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
                    provider=target.provider,
                    payload=TargetOverrides(
                        target=target,
                        metadata_match=tuple(sorted(spec.metadata_match.items())),
                        header_changes=headers_override_names(override),
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
