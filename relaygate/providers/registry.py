"""Provider kind -> adapter instance (adapters are stateless; one instance serves every target)."""

from __future__ import annotations

from typing import Any

from relaygate.providers.anthropic.adapter import AnthropicAdapter
from relaygate.providers.azure_openai import AzureOpenAIAdapter
from relaygate.providers.base import Adapter
from relaygate.providers.bedrock.adapter import BedrockAdapter
from relaygate.providers.cohere import CohereAdapter
from relaygate.providers.gemini.adapter import GeminiAdapter, VertexAdapter
from relaygate.providers.mock import MockAdapter
from relaygate.providers.openai_compat import DEFAULT_BASE_URLS, OpenAICompatibleAdapter

ADAPTERS: dict[str, Adapter] = {
    **{kind: OpenAICompatibleAdapter(kind) for kind in DEFAULT_BASE_URLS},
    "azure-openai": AzureOpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "aws-bedrock": BedrockAdapter(),
    "google-gemini": GeminiAdapter(),
    "google-vertex": VertexAdapter(),
    "cohere": CohereAdapter(),
    "mock": MockAdapter(),
}


def default_base_url(kind: str, account: Any = None) -> str:
    """The provider's public API base (some depend on the account's region), or "" when the manifest must give one."""
    adapter_default = getattr(ADAPTERS.get(kind), "default_base_url", None)
    if adapter_default is not None:
        return str(adapter_default(account))
    return DEFAULT_BASE_URLS.get(kind, "")
