"""OpenAI and every OpenAI-shaped upstream (Groq, Mistral, Together, vLLM/TGI/Ollama): no translation.

Presets are rows, not classes: a kind, its public default base URL. The request body goes out as the
caller sent it with `model` rewritten; the answer comes back byte for byte.
"""

from __future__ import annotations

import aiohttp
import orjson

from relaygate.providers.base import UpstreamCall, UpstreamResponse
from relaygate.upstream import relay

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "together": "https://api.together.xyz/v1",
    "self-hosted-model": "",
}


def encode_body(call: UpstreamCall) -> tuple[bytes, dict[str, str]]:
    """The upstream body and its content type: JSON re-serialised once, multipart relayed."""
    if call.payload is not None:
        return orjson.dumps(call.payload), {"Content-Type": "application/json"}
    headers = {"Content-Type": call.content_type.decode("latin-1")} if call.content_type else {}
    return call.raw_body, headers


class OpenAICompatibleAdapter:
    """Adapter for upstreams that already speak the OpenAI API under `base_url`."""

    __slots__ = ("kind", "max_choices")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        # Most choices (`n`) the API returns: OpenAI's accepts 1 to 128; Groq's only 1.
        self.max_choices = 1 if kind == "groq" else 128

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        target = call.target
        body, headers = encode_body(call)
        headers.update(target.headers)
        url = f"{target.base_url}/{call.operation.path}"
        return await relay.send(session, "POST", url, headers=headers, data=body, model=target.name, caps=call.caps)
