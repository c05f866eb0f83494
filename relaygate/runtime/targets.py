"""A callable model: one provider account's integration, resolved at load into plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relaygate.auth.access import AccessRule
    from relaygate.providers.base import Adapter
    from relaygate.providers.usage import Price


@dataclass(frozen=True, slots=True)
class Target:
    """One callable model, compiled from a provider account and one of its integrations."""

    name: str  # "{account}/{integration}", what callers send as `model`
    account: str
    integration: str
    provider: str  # provider kind, e.g. "openai", "azure-openai", "mock"
    model_id: str  # the provider's own model id (or Azure deployment)
    model_types: frozenset[str]
    adapter: Adapter
    base_url: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # auth and custom headers sent upstream
    secrets: tuple[bytes, ...] = ()  # credential values, scrubbed from anything relayed back
    price: Price | None = None
    cost_known: bool = False
    access: AccessRule | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # adapter-specific (api_version, latency_ms)
