"""Ordering targets for one request: weight-based and priority-based.

A strategy only orders; eligibility, cooldown and fallback candidacy are applied by the planner,
so every strategy (custom-endpoint pools, virtual models, the ngrok dialect) shares them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from relaygate.routing.plan import RouteTarget
from relaygate.routing.stats import LatencyStats

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


class LatencyStrategy:
    """Fastest time per output token first (last 20 minutes).

    Targets with fewer than `MIN_SAMPLES` recent answers go first (so they get measured); targets
    within `BAND`x of the fastest count as equally fast and are shuffled; slower ones follow by speed.
    """

    name = "latency"
    MIN_SAMPLES = 3
    BAND = 1.2

    def __init__(self, stats: LatencyStats) -> None:
        self._stats = stats

    def order(self, targets: Sequence[T], rng: random.Random) -> list[T]:
        measured: list[tuple[float, T]] = []
        unmeasured: list[T] = []
        for target in targets:
            tpot = self._stats.tpot(target.key)
            if tpot is None or self._stats.count(target.key) < self.MIN_SAMPLES:
                unmeasured.append(target)
            else:
                measured.append((tpot, target))
        rng.shuffle(unmeasured)
        if not measured:
            return unmeasured
        measured.sort(key=lambda pair: pair[0])
        fastest = measured[0][0]
        band = [t for tpot, t in measured if tpot <= fastest * self.BAND]
        rest = [t for tpot, t in measured if tpot > fastest * self.BAND]
        rng.shuffle(band)
        return [*unmeasured, *band, *rest]


STRATEGIES: dict[str, Strategy] = {"weight": WeightStrategy(), "priority": PriorityStrategy()}
