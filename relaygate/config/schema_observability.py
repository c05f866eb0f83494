"""`gateway-observability-config`: which identity and metadata labels metrics carry, and trace content.

Metric labels are bounded by config: identity (`user`, `team`, `virtual_account`) and metadata keys
are added only when listed here, each capped at `max_values_per_label` distinct values (the rest
count under `_OTHER`), and series idle for `series_ttl` are evicted.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from relaygate.config.problems import RuleViolation
from relaygate.config.schema_common import ManifestBase, ResourceName, StrictModel, no_duplicates

IdentityLabel = Literal["user", "team", "virtual_account"]
_METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _metadata_key(value: str) -> str:
    if not _METADATA_KEY.match(value):
        raise ValueError(
            "must be a metadata key usable as a Prometheus label: letters, digits and _, "
            "not starting with a digit, at most 64 characters"
        )
    return value


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    violations = no_duplicates(values, "entry")
    if violations:
        raise RuleViolation(violations)
    return values


def _duration_seconds(value: Any) -> Any:
    """`3600`, `"90s"`, `"30m"`, `"1h"`, `"2d"` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 3600, '30m', '1h' or '1d'")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError("must be a duration such as 3600, '30m', '1h' or '1d'")


class MetricLabels(StrictModel):
    identity: Annotated[tuple[IdentityLabel, ...], AfterValidator(_unique)] = ()
    metadata: Annotated[tuple[Annotated[str, AfterValidator(_metadata_key)], ...], AfterValidator(_unique)] = ()
    max_values_per_label: Annotated[int, Field(ge=1, le=100_000)] = 100


class MetricsSettings(StrictModel):
    labels: MetricLabels = MetricLabels()
    series_ttl: Annotated[float, BeforeValidator(_duration_seconds), Field(ge=60, le=30 * 86400)] = 3600.0


class TracingSettings(StrictModel):
    capture_content: bool = False  # gen_ai.input/output messages on spans (x-tfy-logging-config still wins)


class ObservabilityConfig(ManifestBase):
    """At most one per config."""

    type: Literal["gateway-observability-config"]
    name: ResourceName
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()
