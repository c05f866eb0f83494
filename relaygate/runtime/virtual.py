"""Virtual models: a callable name routed over several real targets, each with its own changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relaygate.runtime.targets import Target

if TYPE_CHECKING:
    from relaygate.auth.access import AccessRule
    from relaygate.routing.plan import RouteTarget


@dataclass(frozen=True, slots=True)
class TargetOverrides:
    """What a virtual model changes for one of its targets (`headers_override` is already in
    `target.headers`: applied once, at load)."""

    target: Target
    metadata_match: tuple[tuple[str, str], ...] = ()
    # `headers_override` by header name only, for `x-tfy-applied-configurations` (values may be
    # credentials): ("set", names in config order) and ("remove", lower-cased names sorted), when non-empty.
    header_changes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    override_params: Mapping[str, Any] = field(default_factory=dict)
    sla_cutoff_ms: float | None = None  # priority-based: unhealthy above this time per output token

    def matches(self, metadata: Mapping[str, str]) -> bool:
        """Eligible only when every `metadata_match` pair is in the request's metadata."""
        return all(metadata.get(key) == value for key, value in self.metadata_match)


@dataclass(frozen=True, slots=True)
class StickyConfig:
    ttl_seconds: float
    identifiers: tuple[tuple[str, str], ...]  # (source "headers"|"metadata", key lower-cased for headers)


@dataclass(frozen=True, slots=True)
class VirtualModel:
    """A callable model name whose requests are routed over several real models."""

    name: str
    account: str
    integration: str
    model_types: frozenset[str]
    strategy: str  # "weight" | "latency" | "priority"
    targets: tuple[RouteTarget, ...]  # payload: TargetOverrides
    access: AccessRule
    sticky: StickyConfig | None = None
