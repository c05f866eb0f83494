"""Provider kind -> adapter instance (adapters are stateless; one instance serves every target)."""

from __future__ import annotations

from relaygate.providers.azure_openai import AzureOpenAIAdapter
from relaygate.providers.base import Adapter
from relaygate.providers.mock import MockAdapter
from relaygate.providers.openai_compat import DEFAULT_BASE_URLS, OpenAICompatibleAdapter

ADAPTERS: dict[str, Adapter] = {
    **{kind: OpenAICompatibleAdapter(kind) for kind in DEFAULT_BASE_URLS},
    "azure-openai": AzureOpenAIAdapter(),
    "mock": MockAdapter(),
}


def default_base_url(kind: str) -> str:
    """The provider's public API base, or "" when the manifest must give one."""
    return DEFAULT_BASE_URLS.get(kind, "")
