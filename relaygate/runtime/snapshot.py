"""One compiled config: every table a request reads, swapped whole on reload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from relaygate.runtime.admin import NO_ADMINS, AdminPolicy
from relaygate.runtime.cache import DEFAULT_CACHE, CachePolicy
from relaygate.runtime.guardrails import NO_GUARDRAILS, GuardrailPolicy
from relaygate.runtime.mcp import NO_MCP, McpPolicy
from relaygate.runtime.ngrok import NgrokGateway
from relaygate.runtime.observability import DEFAULT_OBSERVABILITY, Observability
from relaygate.runtime.proxy import ProxyAccount
from relaygate.runtime.served import NOTHING_SERVED, ServedConfig
from relaygate.runtime.targets import Target
from relaygate.runtime.virtual import VirtualModel

if TYPE_CHECKING:
    from relaygate.auth.access import Principal, VirtualAccountGrant
    from relaygate.limits.rules import LimitRules
    from relaygate.routing.plan import RouteTarget


class PrincipalSource(Protocol):
    """Token record -> the caller's identity under one config (`auth.principals.PrincipalMemo`)."""

    def principal(self, record: Any) -> Principal: ...


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """One compiled config, built by `config.compile`. Read-only for requests."""

    models: Mapping[str, Target]
    teams_by_member: Mapping[str, frozenset[str]]
    virtual_accounts: Mapping[str, VirtualAccountGrant]
    principals: PrincipalSource  # a pure cache over `teams_by_member` and `virtual_accounts`
    limits: LimitRules  # rate limits and budgets, matched per request
    proxies: Mapping[str, ProxyAccount]
    virtual_models: Mapping[str, VirtualModel]
    ngrok: NgrokGateway | None
    aliases: Mapping[str, Target | VirtualModel]  # integration `aliases` -> the model or virtual model they name
    # A one-target route per model, built once: plain calls share the router with virtual models.
    direct_routes: Mapping[str, RouteTarget]
    # Target keys whose speed some virtual model reads (latency-based, or priority with an SLA cutoff).
    speed_tracked: frozenset[str]
    # Hosts whose base URLs set allow_metadata_destinations (checked by the connect-time guard).
    metadata_allowed_hosts: frozenset[str]
    # What the load found worth a warning (literal credentials, nothing to serve), as text; never values.
    warnings: tuple[str, ...]
    created: int  # unix seconds, the `created` of model listings
    observability: Observability = DEFAULT_OBSERVABILITY  # opt-in metric labels, trace content
    admin: AdminPolicy = NO_ADMINS  # who may use the admin API and dashboard
    served: ServedConfig = NOTHING_SERVED  # the manifests as written (the admin API's config view)
    guardrails: GuardrailPolicy = NO_GUARDRAILS  # which guardrails run on which requests
    cache: CachePolicy = DEFAULT_CACHE  # which answers the response cache keeps and serves
    mcp: McpPolicy = NO_MCP  # MCP servers (remote and virtual) and who may use which of their tools

    @property
    def serves_anything(self) -> bool:
        """False when no request could reach an upstream: no models, virtual models, custom endpoints,
        ai-gateway providers or MCP servers (teams and limits alone serve nothing)."""
        return bool(
            self.models
            or self.virtual_models
            or self.proxies
            or (self.ngrok is not None and self.ngrok.provider_order)
            or self.mcp
        )

    def principal(self, record: Any) -> Principal:
        """The identity of a token record under this config (memoised per token id)."""
        return self.principals.principal(record)

    def summary(self) -> str:
        return (
            f"{len(self.models)} models, {len(self.virtual_models)} virtual models, "
            f"{len(self.proxies)} custom-endpoint accounts, "
            f"{len(self.virtual_accounts)} virtual accounts, "
            f"{len(self.mcp.servers) + len(self.mcp.virtual_servers)} MCP servers, "
            f"{len({t for teams in self.teams_by_member.values() for t in teams})} teams"
        )
