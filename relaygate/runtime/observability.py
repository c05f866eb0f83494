"""What the `gateway-observability-config` manifest decides, compiled for the request path."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Observability:
    """Opt-in metric labels, their cardinality budget, and whether spans may carry content."""

    identity_labels: tuple[str, ...] = ()  # user, team, virtual_account
    metadata_labels: tuple[str, ...] = ()  # x-tfy-metadata keys
    max_values_per_label: int = 100
    series_ttl: float = 3600.0  # seconds a series may stay idle before it is evicted
    capture_content: bool = False
    # The Prometheus label names the opt-in labels add (metadata keys as `metadata_<key>`).
    extra_labels: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        names = (*self.identity_labels, *(f"metadata_{key}" for key in self.metadata_labels))
        object.__setattr__(self, "extra_labels", names)


DEFAULT_OBSERVABILITY = Observability()
