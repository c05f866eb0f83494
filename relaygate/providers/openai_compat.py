"""OpenAI and every OpenAI-shaped upstream (Groq, DeepSeek, OpenRouter, vLLM/TGI/Ollama...): no translation.

Vendors are rows in `providers.registry`, not classes: one adapter instance per kind. The request body
goes out as the caller sent it with `model` rewritten; the answer comes back byte for byte.
"""

from __future__ import annotations

import aiohttp
import orjson

from relaygate.providers.base import ALL_OPERATIONS, UpstreamCall, UpstreamResponse
from relaygate.upstream import relay

# OpenAI's API accepts `n` from 1 to 128: the most choices an estimate need reserve for.
OPENAI_MAX_CHOICES = 128


def encode_body(call: UpstreamCall) -> tuple[bytes, dict[str, str]]:
    """The upstream body and its content type: JSON re-serialised once, multipart relayed."""
    if call.payload is not None:
        return orjson.dumps(call.payload), {"Content-Type": "application/json"}
    headers = {"Content-Type": call.content_type.decode("latin-1")} if call.content_type else {}
    return call.raw_body, headers


class OpenAICompatibleAdapter:
    """Adapter for upstreams that already speak the OpenAI API under `base_url`."""

    __slots__ = ("kind", "max_choices")
    operations = ALL_OPERATIONS  # whatever the server implements; it answers what it does not

    def __init__(self, kind: str, max_choices: int = OPENAI_MAX_CHOICES) -> None:
        self.kind = kind
        self.max_choices = max_choices  # most choices (`n`) the vendor returns; its registry row says

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        target = call.target
        body, headers = encode_body(call)
        headers.update(target.headers)
        url = f"{target.base_url}/{call.operation.path}"
        return await relay.send(session, "POST", url, headers=headers, data=body, model=target.name, caps=call.caps)
