"""The ngrok `ai-gateway` dialect as data: providers, their models and keys, the compiled strategies.

Built once per config by `config/compile_ngrok.py`; `routing/ngrok.py` turns a request's model names
into routes over it (pass-through models are built there, per request, from an upstream's values).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relaygate.runtime.targets import Target

if TYPE_CHECKING:
    from relaygate.providers.usage import Price
    from relaygate.routing.cel import SelectionProgram
    from relaygate.routing.plan import RouteTarget


@dataclass(frozen=True, slots=True)
class NgrokModel:
    """One model on one provider, with one route per provider key (in key order)."""

    provider_id: str
    id: str
    routes: tuple[RouteTarget, ...]
    cel: Any  # the `ai.models` entry strategies see
    configured: bool = True

    @property
    def name(self) -> str:
        return f"{self.provider_id}:{self.id}"


@dataclass(frozen=True, slots=True)
class NgrokUpstream:
    """A provider: where it lives, one header set per key, and its configured models by id and alias."""

    id: str
    aliases: tuple[str, ...]
    kind: str  # "openai", "groq", ... for known providers, else "self-hosted-model"
    # Every model's targets are this one with the model's name, id, key headers and price filled in.
    template: Target
    price_of: Callable[[str], Price | None]  # list price of a model id (None: unknown, or no price table)
    base_url: str
    key_headers: tuple[tuple[tuple[str, str], ...], ...]  # never empty: () when keyless
    secrets: tuple[bytes, ...]
    metadata: Mapping[str, Any]
    models: Mapping[str, NgrokModel]  # configured models by id and by alias
    model_order: tuple[NgrokModel, ...] = ()


@dataclass(frozen=True, slots=True)
class NgrokGateway:
    """The compiled dialect. Read-only per request; strategies memoise pure answers internally."""

    name: str  # the policy identity, "<file stem>#<n>"
    providers: Mapping[str, NgrokUpstream]  # by id and by alias
    provider_order: tuple[NgrokUpstream, ...]
    bare: Mapping[str, tuple[NgrokModel, ...]]  # model id or alias -> every provider serving it, config order
    strategies: tuple[SelectionProgram, ...]
    per_request_timeout: float  # seconds, one attempt
    total_timeout: float  # seconds, the whole request including failover
    only_allow_configured_providers: bool
    only_allow_configured_models: bool
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    metadata_allowed_hosts: frozenset[str] = frozenset()  # providers with allow_metadata_destinations

    @property
    def model_names(self) -> list[str]:
        """Every configured `provider:model` (for model listings)."""
        return [m.name for p in self.provider_order for m in p.model_order]
