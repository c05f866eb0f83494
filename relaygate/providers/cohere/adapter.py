"""Cohere (`provider-account/cohere`): chat, embeddings and rerank through Cohere's v2 API.

Wiring only: the base URL the Cohere SDK uses, the bearer credential, and which translation serves
which operation. The translations themselves are pure functions in the sibling modules.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson

from relaygate.errors import BadGateway, BadRequest, UnsupportedModelType
from relaygate.providers.base import UpstreamCall, UpstreamResponse
from relaygate.providers.cohere.chat import from_cohere_chat_response, to_cohere_chat_request
from relaygate.providers.cohere.embed import (
    embedding_type_of,
    encoding_format_of,
    from_cohere_embed_response,
    to_cohere_embed_request,
)
from relaygate.providers.cohere.errors import classify, map_status
from relaygate.providers.cohere.rerank import documents_of, from_cohere_rerank_response, to_cohere_rerank_request
from relaygate.providers.cohere.stream import CohereStreamTranslator
from relaygate.providers.credentials import secret_value
from relaygate.providers.translated import BodyTranslator, StreamTranslator, TranslatedResponse
from relaygate.upstream import relay

DEFAULT_BASE_URL = "https://api.cohere.com"
PATHS = {"chat": "/v2/chat", "embeddings": "/v2/embed", "rerank": "/v2/rerank"}


def _parsed(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadGateway("Cohere sent an answer that is not JSON")


def _plan(
    call: UpstreamCall, payload: dict[str, Any], model: str
) -> tuple[dict[str, Any], BodyTranslator | None, StreamTranslator | None]:
    """(Cohere body, answer translator, stream translator) for one call."""
    operation = call.operation.name
    if operation == "chat":
        body = to_cohere_chat_request(payload, stream=call.stream)
        strict = call.strict_openai
        if call.stream:
            return (
                body,
                None,
                CohereStreamTranslator(model, strict_openai=strict, max_event_bytes=call.caps.sse_line_bytes),
            )
        created = int(time.time())
        return (
            body,
            lambda raw: from_cohere_chat_response(_parsed(raw), model, created=created, strict_openai=strict),
            None,
        )
    if operation == "embeddings":
        fmt, kind = encoding_format_of(payload), embedding_type_of(payload)
        return (
            to_cohere_embed_request(payload),
            lambda raw: from_cohere_embed_response(_parsed(raw), model, encoding_format=fmt, embedding_type=kind),
            None,
        )
    if operation == "rerank":
        body = to_cohere_rerank_request(payload)
        echoed = documents_of(payload) if payload.get("return_documents", True) is not False else None
        return body, lambda raw: from_cohere_rerank_response(_parsed(raw), model, documents=echoed), None
    raise UnsupportedModelType(f"cohere does not serve {operation}")


class CohereAdapter:
    """Chat v2, Embed v2 and Rerank v2 under `{base_url}/v2/...`, `Authorization: Bearer <key>`."""

    __slots__ = ()
    kind = "cohere"
    max_choices = 1  # Chat v2 returns one choice: n > 1 is refused (before any limit reserves it)
    operations: frozenset[str] = frozenset(PATHS)

    def configure(self, account: Any, auth: Any) -> tuple[dict[str, str], dict[str, Any]]:
        """The bearer header from an api-key or bearer-auth credential (header auth is sent as given)."""
        if auth is None:
            raise ValueError("a Cohere account needs auth_data (api-key or bearer-auth)")
        if auth.type == "api-key":
            return {"Authorization": f"Bearer {secret_value(auth.api_key)}"}, {}
        if auth.type == "bearer-auth":
            return {"Authorization": f"Bearer {secret_value(auth.bearer_token)}"}, {}
        if auth.type == "header":
            return {name: secret_value(value) for name, value in auth.headers.items()}, {}
        raise ValueError(f"Cohere takes api-key or bearer-auth credentials, not {auth.type}")

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        payload = call.payload
        if payload is None:
            raise BadRequest("Cohere requests must be JSON")
        model = str(payload.get("model") or call.target.model_id)
        body, answer, stream = _plan(call, payload, model)
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream is not None else "application/json",
        }
        headers.update(call.target.headers)
        url = f"{call.target.base_url}{PATHS[call.operation.name]}"
        response = await relay.send(
            session, "POST", url, headers=headers, data=orjson.dumps(body), model=call.target.name, caps=call.caps
        )
        return TranslatedResponse(response, body=answer, stream=stream, classify=classify, status=map_status)
