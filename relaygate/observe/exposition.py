"""Metric states as plain data: taken from series, summed over worker processes, rendered as text.

A state is `{family name: FamilyState}`, JSON-safe, so a worker can hand its own to the worker that
answers a scrape (observe/workers.py). prometheus-client renders the text format.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypedDict

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from relaygate.observe.series import Family

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class FamilyState(TypedDict):
    help: str
    kind: str  # counter | gauge | histogram
    labelnames: list[str]
    buckets: list[float]
    merge: str  # how workers combine a gauge: sum | max
    series: list[list[Any]]  # [label values, values]; histogram values: counts per bucket, +Inf, sum


State = dict[str, FamilyState]


def family_state(family: Family) -> FamilyState:
    return {
        "help": family.help,
        "kind": family.kind,
        "labelnames": list(family.labelnames),
        "buckets": list(family.buckets),
        "merge": family.merge,
        "series": [[list(labels), values] for labels, values in family.samples()],
    }


def simple_family(name: str, help_text: str, kind: str, value: float, merge: str = "sum") -> tuple[str, FamilyState]:
    """An unlabelled counter or gauge read at scrape time."""
    return name, {
        "help": help_text,
        "kind": kind,
        "labelnames": [],
        "buckets": [],
        "merge": merge,
        "series": [[[], [float(value)]]],
    }


def labelled_family(
    name: str,
    help_text: str,
    kind: str,
    labelnames: list[str],
    rows: Iterable[tuple[list[str], float]],
    merge: str = "sum",
) -> tuple[str, FamilyState]:
    """A family read at scrape time with labels: `rows` of (label values, value)."""
    return name, {
        "help": help_text,
        "kind": kind,
        "labelnames": labelnames,
        "buckets": [],
        "merge": merge,
        "series": [[labels, [float(value)]] for labels, value in rows],
    }


def merge_states(states: Iterable[State]) -> State:
    """Sum every family over worker states (gauges marked `max` take the largest)."""
    merged: State = {}
    index: dict[str, dict[tuple[str, ...], list[float]]] = {}
    for state in states:
        for name, family in state.items():
            target = merged.get(name)
            if target is None:
                merged[name] = target = {**family, "series": []}
                index[name] = {}
            by_labels = index[name]
            use_max = family["kind"] == "gauge" and family["merge"] == "max"
            for labels, values in family["series"]:
                key = tuple(labels)
                found = by_labels.get(key)
                if found is None:
                    copied = list(values)
                    by_labels[key] = copied
                    target["series"].append([labels, copied])
                elif use_max:
                    found[0] = max(found[0], values[0])
                elif len(found) == len(values):
                    for i, value in enumerate(values):
                        found[i] += value
    return merged


class _StateCollector(Collector):
    def __init__(self, state: State) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        for name, family in self._state.items():
            labelnames = family["labelnames"]
            kind = family["kind"]
            metric: CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
            if kind == "histogram":
                metric = HistogramMetricFamily(name, family["help"], labels=labelnames)
                bounds = [*(_bound(b) for b in family["buckets"]), "+Inf"]
                for labels, values in family["series"]:
                    cumulative, running = [], 0.0
                    for bound, count in zip(bounds, values, strict=False):
                        running += count
                        cumulative.append((bound, running))
                    metric.add_metric(labels, cumulative, values[-1])
            elif kind == "counter":
                metric = CounterMetricFamily(name, family["help"], labels=labelnames)
                for labels, values in family["series"]:
                    metric.add_metric(labels, values[0])
            else:
                metric = GaugeMetricFamily(name, family["help"], labels=labelnames)
                for labels, values in family["series"]:
                    metric.add_metric(labels, values[0])
            yield metric


def _bound(value: float) -> str:
    return repr(float(value))


def render(state: State) -> bytes:
    """The Prometheus text exposition of a state."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StateCollector(state))
    return generate_latest(registry)
