"""Reading `/metrics` the way Prometheus does: prometheus-client's own text parser, samples by name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.gateway import http_request


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    """One parsed exposition."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [Sample(s.name, dict(s.labels), s.value) for f in self.families.values() for s in f.samples]

    def select(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample of `name` whose labels include `labels`."""
        return sum(s.value for s in self.select(name, **labels))

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.select(name) if label in s.labels}


def scrape(base_url: str, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    result = http_request("GET", base_url + "/metrics", headers=headers)
    assert result.status == 200, result.body[:300]
    return Scrape(result.body.decode())


def names_in(text: Iterable[str]) -> set[str]:
    """Metric names of an exposition's samples, with the histogram/counter suffixes removed."""
    out = set()
    for line in text:
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            for suffix in ("_bucket", "_count", "_sum", "_created"):
                name = name.removesuffix(suffix)
            out.add(name)
    return out
