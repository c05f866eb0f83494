"""`provider-account/virtual-model`: one model name routed over several real models.

The per-strategy rules (weights sum to 100, priorities present, SLA cutoff only with priorities) are
checked here; whether each target exists and is a real (non-virtual) model needs the other manifests
and lives in `crosscheck`.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, JsonValue, field_validator, model_validator

from relaygate.config.problems import Loc, RuleViolation
from relaygate.config.schema_common import (
    HeaderName,
    Headers,
    IntegrationBase,
    ModelAliases,
    ModelIntegrationName,
    ModelRef,
    ModelTypes,
    ProviderAccountBase,
    StatusCodes,
    StrictModel,
)

RETRY_STATUS_CODES = ("429", "500", "502", "503")
VIRTUAL_FALLBACK_CODES = ("401", "403", "404", "429", "500", "502", "503")
GATEWAY_OWNED_PARAMS = frozenset({"model", "stream"})


class SessionIdentifier(StrictModel):
    """Where the sticky-session key is read from."""

    key: str = Field(min_length=1)
    source: Literal["headers", "metadata"]


class StickyRouting(StrictModel):
    """Keep a session on the target it first got, so provider-side prompt caches stay warm."""

    ttl_seconds: int = Field(default=3600, gt=0)
    session_identifiers: tuple[SessionIdentifier, ...] = Field(min_length=1)


class RetryConfig(StrictModel):
    """Retries of the same target before falling back; `delay` in milliseconds."""

    attempts: int = Field(default=2, ge=0, le=10)
    delay: int = Field(default=100, ge=0)
    on_status_codes: StatusCodes = RETRY_STATUS_CODES


class SlaCutoff(StrictModel):
    """A priority target slower than this (average time per output token) is skipped until it recovers."""

    time_per_output_token_ms: float = Field(gt=0)


class HeadersOverride(StrictModel):
    """Headers set on / removed from the upstream request for this target."""

    set: Headers = Field(default_factory=dict)
    remove: tuple[HeaderName, ...] = ()


class LoadBalanceTarget(StrictModel):
    """One real model the virtual model may send a request to."""

    target: ModelRef
    weight: int | None = Field(default=None, ge=0, le=100)
    priority: int | None = Field(default=None, ge=0)
    retry_config: RetryConfig | None = None
    fallback_status_codes: StatusCodes = VIRTUAL_FALLBACK_CODES
    fallback_candidate: bool = True
    sla_cutoff: SlaCutoff | None = None
    metadata_match: dict[str, str] = Field(default_factory=dict)
    headers_override: HeadersOverride | None = None
    override_params: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("override_params")
    @classmethod
    def _no_gateway_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [(k,) for k in value if k in GATEWAY_OWNED_PARAMS]
        if bad:
            raise RuleViolation([(loc, "is set by the gateway and cannot be overridden") for loc in bad])
        return value


Strategy = Literal["weight-based-routing", "latency-based-routing", "priority-based-routing"]


class RoutingConfig(StrictModel):
    """How a request picks among `load_balance_targets`."""

    type: Strategy
    sticky_routing: StickyRouting | None = None
    load_balance_targets: tuple[LoadBalanceTarget, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_strategy(self) -> Self:
        out: list[tuple[Loc, str]] = []
        field = {"weight-based-routing": "weight", "priority-based-routing": "priority"}.get(self.type)
        for i, target in enumerate(self.load_balance_targets):
            if field and getattr(target, field) is None:
                out.append((("load_balance_targets", i, field), f"is required for {self.type}"))
            if target.sla_cutoff is not None and self.type != "priority-based-routing":
                out.append((("load_balance_targets", i, "sla_cutoff"), "is only allowed with priority-based-routing"))
        weights = [t.weight for t in self.load_balance_targets]
        if self.type == "weight-based-routing" and None not in weights:
            total = sum(w or 0 for w in weights)
            if total != 100:
                out.append((("load_balance_targets",), f"weights must sum to 100 (they sum to {total})"))
        if out:
            raise RuleViolation(out)
        return self


class VirtualModelIntegration(IntegrationBase):
    """A routed model name, called as `{account}/{name}` like any real model."""

    type: Literal["integration/model/virtual"]
    name: ModelIntegrationName
    aliases: ModelAliases = ()
    model_types: ModelTypes
    routing_config: RoutingConfig


class VirtualModelAccount(ProviderAccountBase):
    """A group of virtual models; it holds no credentials (its targets' accounts do)."""

    type: Literal["provider-account/virtual-model"]
    integrations: tuple[VirtualModelIntegration, ...] = ()
