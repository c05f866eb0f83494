"""Metric series kept by the gateway itself: counters and histograms updated once per finished request.

Why not prometheus-client's own metric objects: a labelled `observe()` there takes a lock per call and
walks every bucket (~3-5 us); these are a dict lookup and a bisect (well under 1 us), and they carry
what the cardinality budget needs: a cap on distinct values per label (the rest fold into `_OTHER`)
and eviction of series idle past a TTL. prometheus-client still renders the text format
(observe/exposition.py), and worker processes exchange these states to sum them (observe/workers.py).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Literal

OTHER = "_OTHER"
Kind = Literal["counter", "gauge", "histogram"]
Labels = tuple[str, ...]


@dataclass(slots=True)
class LabelBudget:
    """Distinct values allowed per label position of one family; values past a cap become `_OTHER`.

    `caps` pairs label positions with their cap: the opt-in identity and metadata labels get the
    configured `max_values_per_label`, labels from config a wide safety cap, the rest none.
    """

    caps: tuple[tuple[int, int], ...]  # (label position, distinct values allowed)
    seen: list[set[str]] = field(default_factory=list)
    folded: int = 0  # values turned into `_OTHER` (counted in relaygate_metrics_series_dropped_total)

    def __post_init__(self) -> None:
        self.seen = [set() for _ in self.caps]

    def apply(self, labels: Labels) -> Labels:
        changed: list[str] | None = None
        for slot, (position, cap) in enumerate(self.caps):
            value = labels[position]
            seen = self.seen[slot]
            if value in seen or value == OTHER:
                continue
            if len(seen) < cap:
                seen.add(value)
                continue
            if changed is None:
                changed = list(labels)
            changed[position] = OTHER
            self.folded += 1
        return labels if changed is None else tuple(changed)

    def rebuild(self, remaining: list[Labels]) -> None:
        """After eviction: only values of surviving series hold a place under the cap."""
        self.seen = [{labels[p] for labels in remaining} for p, _ in self.caps]


class Family:
    """One metric family: its series by label values, each ending with the time it was last updated."""

    __slots__ = ("name", "help", "kind", "labelnames", "buckets", "budget", "values", "merge")

    def __init__(
        self,
        name: str,
        help_text: str,
        kind: Kind,
        labelnames: Labels,
        *,
        buckets: tuple[float, ...] = (),
        budget: LabelBudget | None = None,
        merge: Literal["sum", "max"] = "sum",
    ) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.labelnames = labelnames
        self.buckets = buckets
        self.budget = budget
        self.merge = merge  # how workers combine a gauge (counters and histograms always add)
        # counter/gauge: [value, touched]; histogram: [count per bucket..., +Inf count, sum, touched]
        # (bucket counts not cumulative; `touched` is the monotonic time of the last update).
        self.values: dict[Labels, list[float]] = {}

    def _new(self, labels: Labels) -> list[float]:
        if self.budget is not None:
            labels = self.budget.apply(labels)
            found = self.values.get(labels)
            if found is not None:
                return found
        size = len(self.buckets) + 3 if self.kind == "histogram" else 2
        series = self.values[labels] = [0.0] * size
        return series

    def inc(self, labels: Labels, amount: float, now: float) -> None:
        series = self.values.get(labels) or self._new(labels)
        series[0] += amount
        series[1] = now

    def set(self, labels: Labels, value: float, now: float) -> None:
        series = self.values.get(labels) or self._new(labels)
        series[0] = value
        series[1] = now

    def observe(self, labels: Labels, value: float, now: float) -> None:
        series = self.values.get(labels) or self._new(labels)
        series[bisect_left(self.buckets, value)] += 1  # le semantics: value == bound lands in that bucket
        series[-2] += value
        series[-1] = now

    def samples(self) -> list[tuple[Labels, list[float]]]:
        """Each series' values without its update time."""
        return [(labels, series[:-1]) for labels, series in self.values.items()]

    def evict_idle(self, before: float) -> int:
        """Drop series not updated since `before`; how many were dropped."""
        idle = [labels for labels, series in self.values.items() if series[-1] < before]
        for labels in idle:
            del self.values[labels]
        if idle and self.budget is not None:
            self.budget.rebuild(list(self.values))
        return len(idle)
