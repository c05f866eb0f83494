"""The manifest types Relaygate accepts (docs/SCHEMAS.md) and `Manifests`, what a load produces.

Pydantic lives in `config/` only: the compiler turns `Manifests` into the runtime `Snapshot` and the
hot path never sees these models. The models are split by family across `schema_*.py`; this module is
the one import point (`from relaygate.config.schema import ...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from relaygate.config.problems import Problem
from relaygate.config.schema_admin import AdminConfig
from relaygate.config.schema_cache import CacheConfig, CacheRule
from relaygate.config.schema_common import (
    ApiKeyAuth,
    AuthData,
    AwsAuth,
    BearerAuth,
    Collaborator,
    Cost,
    GcpServiceAccountAuth,
    HeaderAuth,
    IntegrationBase,
    ManifestBase,
    ModelType,
    ProviderAccountBase,
    normalise_subject,
)
from relaygate.config.schema_custom import (
    CustomEndpointAccount,
    CustomEndpointIntegration,
    LoadBalancingConfig,
    TlsSettings,
)
from relaygate.config.schema_governance import (
    EVERYONE_TEAM,
    BudgetConfig,
    BudgetRule,
    LimitRule,
    RateLimitConfig,
    RateLimitRule,
    Team,
    VirtualAccount,
    When,
)
from relaygate.config.schema_guardrails import (
    GuardrailConfigGroup,
    GuardrailIntegration,
    GuardrailRule,
    GuardrailsConfig,
)
from relaygate.config.schema_mcp import McpRemoteServer, McpVirtualServer
from relaygate.config.schema_ngrok import (
    AiGatewayAction,
    AiGatewayConfig,
    AiGatewayDocument,
    AiGatewayPolicy,
    ApiKey,
    ModelSelection,
    NgrokModel,
    NgrokProvider,
)
from relaygate.config.schema_observability import ObservabilityConfig
from relaygate.config.schema_providers import (
    AZURE_API_VERSION,
    MODEL_ACCOUNTS,
    MODEL_ACCOUNTS_BY_KIND,
    AwsBedrockAccount,
    AzureOpenAIAccount,
    AzureOpenAIIntegration,
    CloudAccount,
    GoogleVertexAccount,
    KeylessCloudAccount,
    MockAccount,
    MockIntegration,
    ModelAccount,
    ModelIntegration,
    SelfHostedAccount,
    SelfHostedIntegration,
)
from relaygate.config.schema_virtual import (
    HeadersOverride,
    LoadBalanceTarget,
    RetryConfig,
    RoutingConfig,
    SlaCutoff,
    StickyRouting,
    VirtualModelAccount,
    VirtualModelIntegration,
)

ProviderAccount = ModelAccount | CustomEndpointAccount | VirtualModelAccount
Manifest = (
    ProviderAccount
    | Team
    | VirtualAccount
    | RateLimitConfig
    | BudgetConfig
    | ObservabilityConfig
    | AdminConfig
    | GuardrailConfigGroup
    | GuardrailsConfig
    | CacheConfig
    | McpRemoteServer
    | McpVirtualServer
)

# `type` -> model, for every manifest that carries `type` and `name` (the ngrok dialect does not).
_NAMED_MODELS: tuple[type[ManifestBase], ...] = (
    *MODEL_ACCOUNTS,
    CustomEndpointAccount,
    VirtualModelAccount,
    Team,
    VirtualAccount,
    RateLimitConfig,
    BudgetConfig,
    ObservabilityConfig,
    AdminConfig,
    GuardrailConfigGroup,
    GuardrailsConfig,
    CacheConfig,
    McpRemoteServer,
    McpVirtualServer,
)
MANIFEST_MODELS: dict[str, type[ManifestBase]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in _NAMED_MODELS
}
AI_GATEWAY_TYPE = "ai-gateway"


@dataclass(frozen=True, slots=True)
class Manifests:
    """Everything one load produced, validated as a whole; in file order, then document order."""

    provider_accounts: tuple[ProviderAccount, ...] = ()
    teams: tuple[Team, ...] = ()
    virtual_accounts: tuple[VirtualAccount, ...] = ()
    rate_limit_configs: tuple[RateLimitConfig, ...] = ()
    budget_configs: tuple[BudgetConfig, ...] = ()
    ai_gateway_policies: tuple[AiGatewayPolicy, ...] = ()
    observability_configs: tuple[ObservabilityConfig, ...] = ()  # at most one (crosscheck)
    admin_configs: tuple[AdminConfig, ...] = ()  # at most one (crosscheck)
    guardrail_groups: tuple[GuardrailConfigGroup, ...] = ()
    guardrails_configs: tuple[GuardrailsConfig, ...] = ()  # at most one (crosscheck)
    cache_configs: tuple[CacheConfig, ...] = ()  # at most one (crosscheck)
    mcp_servers: tuple[McpRemoteServer, ...] = ()
    virtual_mcp_servers: tuple[McpVirtualServer, ...] = ()
    sources: tuple[str, ...] = ()  # files read, in the order read
    origins: Mapping[tuple[str, str], str] = field(default_factory=dict)  # identity -> file
    warnings: tuple[Problem, ...] = ()  # valid but worth saying: literal credentials, no manifests
    # Each valid manifest as written (file, type, name, data; references unresolved), and every value
    # resolved from the environment: the admin API shows the first with the second masked.
    raw: tuple[tuple[str, str, str, dict[str, Any]], ...] = ()
    resolved: frozenset[str] = frozenset()

    def account(self, name: str) -> ProviderAccount | None:
        """The provider account called `name` (names are unique across kinds)."""
        return next((a for a in self.provider_accounts if a.name == name), None)

    def file_of(self, manifest: ManifestBase | AiGatewayPolicy) -> str | None:
        """The file a manifest was read from, so later stages can word problems like the loader."""
        return self.origins.get(manifest.identity)


__all__ = [
    "AI_GATEWAY_TYPE",
    "AZURE_API_VERSION",
    "EVERYONE_TEAM",
    "MANIFEST_MODELS",
    "MODEL_ACCOUNTS_BY_KIND",
    "AiGatewayAction",
    "AiGatewayConfig",
    "AiGatewayDocument",
    "AiGatewayPolicy",
    "ApiKey",
    "ApiKeyAuth",
    "AuthData",
    "AwsAuth",
    "AwsBedrockAccount",
    "AzureOpenAIAccount",
    "AzureOpenAIIntegration",
    "BearerAuth",
    "BudgetConfig",
    "BudgetRule",
    "CacheConfig",
    "CacheRule",
    "GuardrailConfigGroup",
    "GuardrailIntegration",
    "GuardrailRule",
    "GuardrailsConfig",
    "CloudAccount",
    "Collaborator",
    "Cost",
    "CustomEndpointAccount",
    "CustomEndpointIntegration",
    "GcpServiceAccountAuth",
    "GoogleVertexAccount",
    "HeaderAuth",
    "HeadersOverride",
    "IntegrationBase",
    "KeylessCloudAccount",
    "LimitRule",
    "LoadBalanceTarget",
    "LoadBalancingConfig",
    "McpRemoteServer",
    "McpVirtualServer",
    "Manifest",
    "ManifestBase",
    "Manifests",
    "MockAccount",
    "MockIntegration",
    "ModelAccount",
    "ModelIntegration",
    "ModelSelection",
    "ModelType",
    "NgrokModel",
    "NgrokProvider",
    "ProviderAccount",
    "ProviderAccountBase",
    "ObservabilityConfig",
    "AdminConfig",
    "RateLimitConfig",
    "RateLimitRule",
    "RetryConfig",
    "RoutingConfig",
    "SelfHostedAccount",
    "SelfHostedIntegration",
    "SlaCutoff",
    "StickyRouting",
    "Team",
    "TlsSettings",
    "VirtualAccount",
    "VirtualModelAccount",
    "VirtualModelIntegration",
    "When",
    "normalise_subject",
]
