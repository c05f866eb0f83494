"""Attempt plans: which targets one request may try, in what order.

Built once per request from targets compiled at config load: the strategy orders them, healthy
targets go before cooled ones (all cooled: still tried, as a last resort), and only the first
target may be one with `fallback_candidate: false`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relaygate.routing.health import HealthTracker
    from relaygate.routing.strategies import Strategy


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of the same target before falling back (`retry_config`)."""

    attempts: int = 0  # extra tries after the first
    delay: float = 0.0  # seconds between tries
    on_status_codes: frozenset[int] = frozenset({429, 500, 502, 503})
    use_retry_after: bool = False


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """One routable upstream with its routing knobs; `payload` is what the caller executes."""

    key: str  # health key, unique across kinds: "proxy:acct/endpoint", "model:acct/integration"
    name: str  # shown in headers, logs and traces
    payload: Any
    provider: str = ""  # the provider kind behind it (metrics and traces label attempts with it)
    weight: int | None = None
    priority: int | None = None
    fallback_status_codes: frozenset[int] = frozenset()
    fallback_candidate: bool = True
    retry: RetryPolicy | None = None


@dataclass(frozen=True, slots=True)
class PlannedAttempt:
    target: RouteTarget
    cooled: bool  # in cooldown when planned (tried only because nothing healthier was left)


def plan_attempts(
    targets: Sequence[RouteTarget],
    strategy: Strategy,
    health: HealthTracker,
    rng: random.Random,
    *,
    unhealthy: Callable[[RouteTarget], bool] | None = None,
    preferred: str | None = None,
) -> list[PlannedAttempt]:
    """Order targets for one request: strategy order, healthy before cooled, candidates after the first.

    `unhealthy` marks targets to try only after the healthy ones (e.g. over their SLA cutoff);
    `preferred` (a sticky session's target name) goes first while it is healthy.
    """
    if len(targets) == 1:  # nothing to order or fall back to
        only = targets[0]
        return [PlannedAttempt(only, health.is_cooled(only.key))]
    ordered = strategy.order(targets, rng)
    if preferred is not None:
        ordered.sort(key=lambda t: t.name != preferred)  # stable: only the preferred one moves
    now = health.now()

    def degraded(target: RouteTarget) -> bool:
        return health.is_cooled(target.key, now) or (unhealthy is not None and unhealthy(target))

    flags = [degraded(t) for t in ordered]
    healthy = [t for t, bad in zip(ordered, flags, strict=True) if not bad]
    cooled = [t for t, bad in zip(ordered, flags, strict=True) if bad]
    # Cooled targets keep their strategy order among themselves; the soonest to recover could go
    # first, but strategy order keeps a priority pool's backup behind its primary.
    sequence = [PlannedAttempt(t, False) for t in healthy] + [PlannedAttempt(t, True) for t in cooled]
    if not sequence:
        return []
    first, rest = sequence[0], sequence[1:]
    return [first, *(p for p in rest if p.target.fallback_candidate)]
