"""Google Gemini API (`google-gemini`) and Vertex AI (`google-vertex`): URLs, auth, translation wiring.

Both speak the same GenerateContent body (`request`, `response`, `stream` translate it), differ in
where and how:

- google-gemini: `{base}/v1beta/models/{model}:generateContent` (`:streamGenerateContent?alt=sse`,
  `:batchEmbedContents`, `:countTokens`), base https://generativelanguage.googleapis.com, key in
  `x-goog-api-key` (auth api-key; bearer-auth sends an OAuth token instead).
- google-vertex: `{base}/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:...`
  (embeddings through `:predict`, token counts through `:countTokens`), base
  https://{region}-aiplatform.googleapis.com (the `global` region: https://aiplatform.googleapis.com).
  Auth: a service-account key (one cached access token per account, see `auth`; a 401 drops the token
  and the call is sent once more with a fresh one) or a fixed bearer token. A model id that is a full
  resource name (`projects/.../endpoints/...`) is used as the path as is.

`count_tokens` (the Messages API's `/messages/count_tokens`) asks `:countTokens` for the prompt the chat
call would send (`count_tokens` builds the bodies); its errors are classified as chat errors are.

A 429 without a `Retry-After` header takes its wait from Google's `RetryInfo.retryDelay` (what the
Gemini API sends when a quota runs out), so cooldown and `useRetryAfterHeader` retries honour it.
"""

from __future__ import annotations

import weakref
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from relaygate.errors import UnsupportedModelType
from relaygate.providers.base import UpstreamCall, UpstreamResponse
from relaygate.providers.credentials import secret_value
from relaygate.providers.gemini.auth import ServiceAccountTokens
from relaygate.providers.gemini.count_tokens import (
    count_tokens_translator,
    to_gemini_count_tokens_request,
    to_vertex_count_tokens_request,
)
from relaygate.providers.gemini.embeddings import (
    embeddings_translator,
    to_gemini_embed_request,
    to_vertex_predict_request,
)
from relaygate.providers.gemini.errors import classify, retry_delay
from relaygate.providers.gemini.request import to_gemini_request
from relaygate.providers.gemini.response import body_translator
from relaygate.providers.gemini.stream import GeminiStreamTranslator
from relaygate.providers.translated import BodyTranslator, StreamTranslator, TranslatedResponse
from relaygate.runtime.targets import Target
from relaygate.upstream import relay
from relaygate.upstream.caps import AnswerCaps

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_VERTEX_REGION = "us-central1"


class _GoogleAdapter:
    """The shared request flow; subclasses say where the model lives and how to authenticate."""

    __slots__ = ()
    kind = ""
    vertex = False
    max_choices = 8  # generationConfig.candidateCount accepts 1 to 8
    operations: frozenset[str] = frozenset({"chat", "embeddings"})

    def model_url(self, target: Target, method: str) -> str:
        raise NotImplementedError

    async def auth_headers(self, target: Target) -> dict[str, str]:
        return {}

    def count_tokens_request(self, payload: dict[str, Any], target: Target) -> dict[str, Any]:
        raise NotImplementedError

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        target = call.target
        payload = call.payload
        if payload is None or call.operation.name not in self.operations:
            raise UnsupportedModelType(f"{self.kind} does not serve {call.operation.name}")
        model = str(payload.get("model") or target.model_id)
        if call.operation.name == "embeddings":
            if self.vertex:
                body = to_vertex_predict_request(payload)
                url = self.model_url(target, "predict")
            else:
                body = to_gemini_embed_request(payload, target.model_id)
                url = self.model_url(target, "batchEmbedContents")
            stream = None
            translate = embeddings_translator(payload, model, self.vertex)
        else:
            reasoning = not call.strict_openai
            body = to_gemini_request(payload, vertex=self.vertex, include_thoughts=reasoning)
            if call.stream:
                url = self.model_url(target, "streamGenerateContent") + "?alt=sse"
                stream = GeminiStreamTranslator(
                    model, include_reasoning=reasoning, max_event_bytes=call.caps.sse_line_bytes
                )
            else:
                url = self.model_url(target, "generateContent")
                stream = None
            translate = body_translator(model, reasoning)
        response = await self._send(session, target, url, orjson.dumps(body), call.caps)
        return await _translated(response, translate, stream)

    async def count_tokens(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        """`:countTokens` for the prompt of an OpenAI chat request; 200 answers `{"input_tokens": N}`."""
        assert call.payload is not None
        target = call.target
        body = self.count_tokens_request(call.payload, target)
        response = await self._send(
            session, target, self.model_url(target, "countTokens"), orjson.dumps(body), call.caps
        )
        return await _translated(response, count_tokens_translator(target.name), None)

    async def _send(
        self, session: aiohttp.ClientSession, target: Target, url: str, data: bytes, caps: AnswerCaps
    ) -> relay.HTTPUpstreamResponse:
        headers = {"Content-Type": "application/json", **dict(target.headers), **await self.auth_headers(target)}
        response = await relay.send(session, "POST", url, headers=headers, data=data, model=target.name, caps=caps)
        tokens = target.options.get("tokens")
        if response.status != 401 or not isinstance(tokens, ServiceAccountTokens):
            return response
        # Google refused our cached access token (revoked, or expired early): retry once with a new one.
        response.close()
        tokens.invalidate(headers["Authorization"].removeprefix("Bearer "))
        headers = {**headers, **await self.auth_headers(target)}
        return await relay.send(session, "POST", url, headers=headers, data=data, model=target.name, caps=caps)


async def _translated(
    response: relay.HTTPUpstreamResponse, translate: BodyTranslator, stream: StreamTranslator | None
) -> TranslatedResponse:
    """The answer through `translate` (or `stream`), errors through `classify`; a 429 without a
    Retry-After header waits as long as its RetryInfo says."""
    translated = TranslatedResponse(response, body=translate, stream=stream, classify=classify)
    if response.status == 429 and translated.retry_after is None:
        try:
            translated.retry_after = retry_delay(await response.read())  # the body stays readable
        except BaseException:  # the caller left (or the read broke): no connection is left open
            response.close()
            raise
    return translated


class GeminiAdapter(_GoogleAdapter):
    """The Gemini API (Google AI Studio keys)."""

    __slots__ = ()
    kind = "google-gemini"

    def configure(self, account: Any, auth: Any) -> tuple[dict[str, str], dict[str, Any]]:
        if auth is None:
            raise ValueError("google-gemini needs auth_data (an api-key)")
        if auth.type == "api-key":
            return {"x-goog-api-key": secret_value(auth.api_key)}, {}
        if auth.type == "bearer-auth":
            return {"Authorization": f"Bearer {secret_value(auth.bearer_token)}"}, {}
        if auth.type == "header":
            return {name: secret_value(value) for name, value in auth.headers.items()}, {}
        raise ValueError(f"google-gemini cannot use auth_data of type {auth.type}")

    def model_name(self, target: Target) -> str:
        """The model's resource name: `models/{model}` (or the `models/...`, `tunedModels/...` id as given)."""
        model = target.model_id
        return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"

    def model_url(self, target: Target, method: str) -> str:
        return f"{target.base_url}/v1beta/{quote(self.model_name(target), safe='/')}:{method}"

    def count_tokens_request(self, payload: dict[str, Any], target: Target) -> dict[str, Any]:
        return to_gemini_count_tokens_request(payload, self.model_name(target))


class VertexAdapter(_GoogleAdapter):
    """Gemini on Vertex AI (Google Cloud projects).

    Every model of an account shares one token source (one exchange and one cached token per service
    account, not per model): `configure` runs once per integration with the account's `auth_data`
    object, so sources are remembered by that object's identity for as long as it lives.
    """

    __slots__ = ("_sources",)
    kind = "google-vertex"
    vertex = True

    def __init__(self) -> None:
        self._sources: dict[int, ServiceAccountTokens] = {}

    def _token_source(self, auth: Any) -> ServiceAccountTokens:
        """The token source for this `auth_data` object (made on first use, forgotten when it is freed)."""
        key = id(auth)
        tokens = self._sources.get(key)
        if tokens is None:
            tokens = ServiceAccountTokens.from_key_json(secret_value(auth.key_json))
            self._sources[key] = tokens
            weakref.finalize(auth, self._sources.pop, key, None)
        return tokens

    def default_base_url(self, account: Any) -> str:
        region = getattr(account, "region", None) or DEFAULT_VERTEX_REGION
        if region == "global":
            return "https://aiplatform.googleapis.com"
        return f"https://{region}-aiplatform.googleapis.com"

    def configure(self, account: Any, auth: Any) -> tuple[dict[str, str], dict[str, Any]]:
        region = getattr(account, "region", None) or DEFAULT_VERTEX_REGION
        project = getattr(account, "project_id", None)
        if auth is None:
            raise ValueError("google-vertex needs auth_data (gcp-service-account or bearer-auth)")
        if auth.type == "gcp-service-account":
            tokens = self._token_source(auth)
            project = project or tokens.project_id
            if not project:
                raise ValueError("project_id is required: the service-account key names no project_id")
            return {}, {"project": project, "region": region, "tokens": tokens}
        if auth.type == "bearer-auth":
            if not project:
                raise ValueError("project_id is required with bearer-auth")
            return {"Authorization": f"Bearer {secret_value(auth.bearer_token)}"}, {
                "project": project,
                "region": region,
            }
        raise ValueError(f"google-vertex cannot use auth_data of type {auth.type}")

    def model_url(self, target: Target, method: str) -> str:
        model = target.model_id
        if model.startswith("projects/"):
            path = model
        else:
            project, region = target.options["project"], target.options["region"]
            path = f"projects/{project}/locations/{region}/publishers/google/models/{model}"
        return f"{target.base_url}/v1/{quote(path, safe='/')}:{method}"

    def count_tokens_request(self, payload: dict[str, Any], target: Target) -> dict[str, Any]:
        return to_vertex_count_tokens_request(payload)

    async def auth_headers(self, target: Target) -> dict[str, str]:
        tokens = target.options.get("tokens")
        if isinstance(tokens, ServiceAccountTokens):
            return {"Authorization": f"Bearer {await tokens.token(target.name)}"}
        return {}
