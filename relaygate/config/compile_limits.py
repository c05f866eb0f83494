"""Rate-limit and budget manifests -> `limits.rules.LimitRules`, once per config load.

The request path only matches the frozen `Rule`s built here (`limits/rules.py` says how).
"""

from __future__ import annotations

from collections.abc import Iterable

from relaygate.config.schema_governance import BudgetConfig, RateLimitConfig
from relaygate.limits.rules import SLOTS, LimitRules, Measure, Rule

_RATE_UNITS: dict[str, tuple[Measure, str, int]] = {
    "requests_per_minute": ("requests", "minute", 60),
    "requests_per_hour": ("requests", "hour", 3_600),
    "requests_per_day": ("requests", "day", 86_400),
    "tokens_per_minute": ("tokens", "minute", 60),
    "tokens_per_hour": ("tokens", "hour", 3_600),
    "tokens_per_day": ("tokens", "day", 86_400),
}
_BUDGET_PERIODS = {"cost_per_day": "day", "cost_per_week": "week", "cost_per_month": "month"}


def compile_rules(
    rate_limit_configs: Iterable[RateLimitConfig] = (), budget_configs: Iterable[BudgetConfig] = ()
) -> LimitRules:
    """Validated manifests -> LimitRules; call once per config load and keep it in the snapshot."""
    rules: list[Rule] = []
    for config in rate_limit_configs:
        for r in config.rules:
            measure, period, seconds = _RATE_UNITS[r.unit]
            window_ms = seconds * 1000
            rules.append(
                Rule(
                    id=r.id,
                    kind="rate_limit",
                    unit=r.unit,
                    measure=measure,
                    limit=float(r.limit_to),
                    period=period,
                    audit=False,
                    applies_per=r.rate_limit_applies_per,
                    subjects=_frozen(r.when.subjects),
                    models=_frozen(r.when.models),
                    metadata=tuple(sorted((r.when.metadata or {}).items())),
                    mcp_servers=_frozen(r.when.mcp_servers),
                    stem=f"rl:{r.id}:{r.unit}",
                    window_ms=window_ms,
                    slot_ms=window_ms // SLOTS,
                    on_backend_error=config.on_backend_error,
                    config=config.name,
                )
            )
    for budget_config in budget_configs:
        for b in budget_config.rules:
            rules.append(
                Rule(
                    id=b.id,
                    kind="budget",
                    unit=b.unit,
                    measure="cost",
                    limit=float(b.limit_to),
                    period=_BUDGET_PERIODS[b.unit],
                    audit=b.audit_mode,
                    applies_per=b.budget_applies_per,
                    subjects=_frozen(b.when.subjects),
                    models=_frozen(b.when.models),
                    metadata=tuple(sorted((b.when.metadata or {}).items())),
                    mcp_servers=_frozen(b.when.mcp_servers),
                    stem=f"bg:{b.id}:{b.unit}",
                    window_ms=0,
                    slot_ms=0,
                    on_backend_error=budget_config.on_backend_error,
                    config=budget_config.name,
                )
            )
    return LimitRules(rules)


def _frozen(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)
