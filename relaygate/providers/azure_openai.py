"""Azure OpenAI: deployment URLs, the `api-version` query and the `api-key` header."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from relaygate.providers.base import ALL_OPERATIONS, UpstreamCall, UpstreamResponse
from relaygate.providers.openai_compat import OPENAI_MAX_CHOICES, encode_body
from relaygate.upstream import relay

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIAdapter:
    """`{base_url}/openai/deployments/{deployment}/{operation}?api-version=...`."""

    __slots__ = ()
    kind = "azure-openai"
    operations = ALL_OPERATIONS
    max_choices = OPENAI_MAX_CHOICES

    def integration_options(self, account: Any, integration: Any) -> dict[str, Any]:
        """The integration's `api_version`, else the account's (read once, at load)."""
        return {"api_version": integration.api_version or account.api_version}

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        target = call.target
        body, headers = encode_body(call)
        headers.update(target.headers)
        version = quote(str(target.options.get("api_version", DEFAULT_API_VERSION)), safe="")
        url = (
            f"{target.base_url}/openai/deployments/{quote(target.model_id, safe='')}/{call.operation.path}"
            f"?api-version={version}"
        )
        return await relay.send(session, "POST", url, headers=headers, data=body, model=target.name, caps=call.caps)
