"""Every provider kind as one `ProviderSpec` row: the one place that lists kinds.

Config reads the rows (default base URL, auth scheme, where the upstream URL comes from, price ids,
version suffixes) and the schema generates `provider-account/<kind>` for plain vendors from them;
handlers read `openai_shaped`. An OpenAI-compatible vendor is one `_openai_compatible(...)` line
(docs/adding-a-provider.md). Adapters are stateless: one instance serves every target of its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from relaygate.providers.anthropic.adapter import DEFAULT_BASE_URL as ANTHROPIC_BASE_URL
from relaygate.providers.anthropic.adapter import AnthropicAdapter
from relaygate.providers.azure_openai import AzureOpenAIAdapter
from relaygate.providers.base import Adapter, RegionalBaseUrl
from relaygate.providers.bedrock.adapter import BedrockAdapter
from relaygate.providers.cohere import CohereAdapter
from relaygate.providers.cohere.adapter import DEFAULT_BASE_URL as COHERE_BASE_URL
from relaygate.providers.gemini.adapter import GEMINI_BASE_URL, GeminiAdapter, VertexAdapter
from relaygate.providers.mock import MockAdapter
from relaygate.providers.openai_compat import OPENAI_MAX_CHOICES, OpenAICompatibleAdapter

# How an `api-key` credential reaches the provider. Compile builds the headers for "bearer" and
# "api-key"; adapters with their own `configure` (ConfiguresAuth) implement the others.
AuthScheme = Literal["bearer", "api-key", "x-api-key", "x-goog-api-key", "sigv4", "google", "none"]
# Where a target's upstream URL comes from: the account (`base_url`, else the row's default), each
# integration's own `url` (self-hosted servers), or nowhere (the in-process mock).
Endpoint = Literal["account", "integration", "in-process"]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """What the gateway knows about one provider kind, beyond what its adapter does per call."""

    kind: str  # `provider-account/<kind>`, `integration/model/<kind>`
    title: str  # the vendor's name: docs, and generated schema class names ("Groq" -> GroqAccount)
    adapter: Adapter
    base_url: str = ""  # public API base; "" when the manifest must give one (or RegionalBaseUrl derives it)
    auth: AuthScheme = "bearer"
    openai_shaped: bool = False  # speaks the OpenAI API itself: bodies relayed, resource routes served
    price_ids: tuple[str, ...] = ()  # genai-prices provider ids, tried in order; () = no public price
    base_url_version_suffixes: tuple[str, ...] = ()  # a manifest base_url may end in what the adapter appends
    endpoint: Endpoint = "account"
    key_required: bool = True  # a plain vendor account must carry auth_data
    cost_known: bool = False  # cost is never "unknown": configured, else zero (the mock)

    @property
    def operations(self) -> frozenset[str]:
        """Operation names the adapter serves."""
        return self.adapter.operations

    @property
    def max_choices(self) -> int:
        """The most choices (`n`) the provider returns; 1 refuses n > 1 before reserving."""
        return self.adapter.max_choices


def _openai_compatible(
    kind: str,
    title: str,
    base_url: str,
    price_id: str | None,
    *,
    max_choices: int = 1,
    key_required: bool = True,
) -> ProviderSpec:
    """A vendor serving the OpenAI API under `base_url`: relayed as-is, key sent as a bearer token.

    `max_choices` stays 1 unless the vendor documents `n` > 1, so a request it would refuse is
    refused before any limit reserves tokens for it.
    """
    return ProviderSpec(
        kind,
        title,
        OpenAICompatibleAdapter(kind, max_choices),
        base_url=base_url,
        openai_shaped=True,
        price_ids=(price_id,) if price_id else (),
        key_required=key_required,
    )


_ROWS: tuple[ProviderSpec, ...] = (
    _openai_compatible("openai", "OpenAI", "https://api.openai.com/v1", "openai", max_choices=OPENAI_MAX_CHOICES),
    ProviderSpec(
        "azure-openai",
        "Azure OpenAI",
        AzureOpenAIAdapter(),
        auth="api-key",
        openai_shaped=True,
        price_ids=("azure", "openai"),
    ),
    ProviderSpec(
        "anthropic",
        "Anthropic",
        AnthropicAdapter(),
        base_url=ANTHROPIC_BASE_URL,
        auth="x-api-key",
        price_ids=("anthropic",),
        base_url_version_suffixes=("/v1",),
    ),
    ProviderSpec("aws-bedrock", "AWS Bedrock", BedrockAdapter(), auth="sigv4", price_ids=("aws",)),
    ProviderSpec(
        "google-gemini",
        "Google Gemini",
        GeminiAdapter(),
        base_url=GEMINI_BASE_URL,
        auth="x-goog-api-key",
        price_ids=("google",),
        base_url_version_suffixes=("/v1beta", "/v1"),
    ),
    ProviderSpec(
        "google-vertex",
        "Google Vertex",
        VertexAdapter(),
        auth="google",
        price_ids=("google",),
        base_url_version_suffixes=("/v1",),
    ),
    ProviderSpec(
        "cohere",
        "Cohere",
        CohereAdapter(),
        base_url=COHERE_BASE_URL,
        price_ids=("cohere",),
        base_url_version_suffixes=("/v2", "/v1"),
    ),
    _openai_compatible("mistral", "Mistral", "https://api.mistral.ai/v1", "mistral", max_choices=OPENAI_MAX_CHOICES),
    _openai_compatible("groq", "Groq", "https://api.groq.com/openai/v1", "groq"),
    _openai_compatible(
        "together", "Together", "https://api.together.xyz/v1", "together", max_choices=OPENAI_MAX_CHOICES
    ),
    _openai_compatible("deepseek", "DeepSeek", "https://api.deepseek.com/v1", "deepseek"),
    _openai_compatible(
        "fireworks", "Fireworks", "https://api.fireworks.ai/inference/v1", "fireworks", max_choices=OPENAI_MAX_CHOICES
    ),
    _openai_compatible("openrouter", "OpenRouter", "https://openrouter.ai/api/v1", "openrouter"),
    _openai_compatible("xai", "xAI", "https://api.x.ai/v1", "x-ai", max_choices=OPENAI_MAX_CHOICES),
    _openai_compatible("perplexity", "Perplexity", "https://api.perplexity.ai", "perplexity"),
    _openai_compatible("cerebras", "Cerebras", "https://api.cerebras.ai/v1", "cerebras"),
    _openai_compatible("nvidia", "NVIDIA", "https://integrate.api.nvidia.com/v1", None),
    _openai_compatible("ollama", "Ollama", "http://localhost:11434/v1", None, key_required=False),
    ProviderSpec(
        "self-hosted-model",
        "Self-hosted",
        OpenAICompatibleAdapter("self-hosted-model", OPENAI_MAX_CHOICES),
        openai_shaped=True,
        endpoint="integration",
        key_required=False,
    ),
    ProviderSpec(
        "mock", "Mock", MockAdapter(), auth="none", endpoint="in-process", key_required=False, cost_known=True
    ),
)
PROVIDERS: dict[str, ProviderSpec] = {row.kind: row for row in _ROWS}
# The kind an OpenAI-compatible upstream that is no known vendor is served as (ngrok's custom providers).
CUSTOM_OPENAI_KIND = "self-hosted-model"

# Derived tables, for readers that want one column.
ADAPTERS: dict[str, Adapter] = {kind: row.adapter for kind, row in PROVIDERS.items()}
OPENAI_SHAPED: frozenset[str] = frozenset(kind for kind, row in PROVIDERS.items() if row.openai_shaped)
PRICED: frozenset[str] = frozenset(kind for kind, row in PROVIDERS.items() if row.price_ids)


def default_base_url(kind: str, account: Any = None) -> str:
    """The provider's public API base (some depend on the account's region), or "" when the manifest must give one."""
    row = PROVIDERS.get(kind)
    if row is None:
        return ""
    if isinstance(row.adapter, RegionalBaseUrl):
        return row.adapter.default_base_url(account)
    return row.base_url


def price_ids(kind: str) -> tuple[str, ...]:
    """The genai-prices provider ids to look `kind`'s models up under, in order (() when unpriced)."""
    row = PROVIDERS.get(kind)
    return row.price_ids if row is not None else ()
