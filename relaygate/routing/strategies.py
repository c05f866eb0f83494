"""Ordering targets for one request: weight-based and priority-based.

A strategy only orders; eligibility, cooldown and fallback candidacy are applied by the planner,
so every strategy (custom-endpoint pools, virtual models, the ngrok dialect) shares them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from relaygate.routing.plan import RouteTarget

T = TypeVar("T", bound=RouteTarget)


class Strategy(Protocol):
    name: str

    def order(self, targets: Sequence[T], rng: random.Random) -> list[T]:
        """All targets, most preferred first."""
        ...


class WeightStrategy:
    """Primary drawn in proportion to weight; fallbacks in weighted order without replacement."""

    name = "weight"

    def order(self, targets: Sequence[T], rng: random.Random) -> list[T]:
        remaining = list(targets)
        ordered: list[T] = []
        while remaining:
            total = sum(max(t.weight or 0, 0) for t in remaining)
            if total <= 0:
                ordered.extend(remaining)  # zero-weight targets only ever serve as fallbacks
                break
            point = rng.random() * total
            chosen = -1
            for index, target in enumerate(remaining):
                weight = max(target.weight or 0, 0)
                if weight <= 0:
                    continue
                chosen = index  # float rounding at the very top of the range keeps the last weighted one
                point -= weight
                if point < 0:
                    break
            ordered.append(remaining.pop(chosen))
        return ordered


class PriorityStrategy:
    """Lowest `priority` number first (0 is highest); equal priorities keep config order."""

    name = "priority"

    def order(self, targets: Sequence[T], rng: random.Random) -> list[T]:
        return sorted(targets, key=lambda t: (t.priority is None, t.priority or 0))  # stable: ties keep order


STRATEGIES: dict[str, Strategy] = {"weight": WeightStrategy(), "priority": PriorityStrategy()}
