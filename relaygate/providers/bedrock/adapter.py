"""AWS Bedrock: chat through Converse / ConverseStream, embeddings through InvokeModel (Titan, Cohere),
token counts (the Messages API's `count_tokens`) through CountTokens.

Requests go to `{base}/model/{modelId}/{converse|converse-stream|invoke|count-tokens}` with the model id
percent-encoded as one path segment exactly as the AWS SDKs send it (`us.anthropic...v2%3A0`, ARNs with
`%2F`). Each request is signed with SigV4 over the exact bytes and URL sent (the URL goes out with
`encoded=True`, so aiohttp cannot re-normalise the escapes after signing), or carries a Bedrock API
key as a bearer token. Answers come back OpenAI-shaped through `TranslatedResponse` (streams through
`converse_stream.open_converse_stream`); errors through `errors.classify_error`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from relaygate.errors import BadGateway, GatewayError, UnsupportedModelType
from relaygate.providers.base import BufferedResponse, UpstreamCall, UpstreamResponse
from relaygate.providers.bedrock import embeddings
from relaygate.providers.bedrock.converse_request import to_bedrock_converse_request
from relaygate.providers.bedrock.converse_response import from_bedrock_converse_response
from relaygate.providers.bedrock.converse_stream import BedrockStreamTranslator, open_converse_stream
from relaygate.providers.bedrock.count_tokens import from_bedrock_count_tokens_response, to_bedrock_count_tokens_request
from relaygate.providers.bedrock.errors import classifier, error_type_name, mapped_status
from relaygate.providers.bedrock.signing import account_region, configure_auth
from relaygate.providers.translated import TranslatedResponse
from relaygate.runtime.targets import Target
from relaygate.upstream import relay
from relaygate.upstream.caps import DEFAULT_CAPS, AnswerCaps
from relaygate.upstream.relay import HTTPUpstreamResponse

TITAN_CONCURRENCY = 8  # Titan calls in flight for one embeddings request
EVENT_STREAM = "application/vnd.amazon.eventstream"


class BedrockAdapter:
    """`provider-account/aws-bedrock`: chat and embeddings."""

    __slots__ = ()
    kind = "aws-bedrock"
    max_choices = 1  # Converse returns one choice: n > 1 is refused (before any limit reserves it)
    operations: frozenset[str] = frozenset({"chat", "embeddings"})

    def default_base_url(self, account: Any) -> str:
        region = account_region(account, getattr(account, "auth_data", None)) if account is not None else None
        return f"https://bedrock-runtime.{region}.amazonaws.com" if region else ""

    def configure(self, account: Any, auth: Any) -> tuple[dict[str, str], dict[str, Any]]:
        return configure_auth(account, auth)

    async def open(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        if call.payload is None or call.operation.name not in self.operations:
            raise UnsupportedModelType(f"{self.kind} serves chat and embeddings, not {call.operation.name}")
        if call.operation.name == "embeddings":
            return await _open_embeddings(session, call)
        return await _open_chat(session, call)

    async def count_tokens(self, session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
        """CountTokens for the prompt of an OpenAI chat request; 200 answers `{"input_tokens": N}`."""
        assert call.payload is not None
        body = orjson.dumps(to_bedrock_count_tokens_request(call.payload))
        response = await _post(session, call.target, "count-tokens", body, caps=call.caps)
        return _translated(response, body=_guarded(from_bedrock_count_tokens_response, call.target.name))


# -- chat -------------------------------------------------------------------------------------------


async def _open_chat(session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
    assert call.payload is not None
    target = call.target
    body = orjson.dumps(to_bedrock_converse_request(call.payload))
    action = "converse-stream" if call.stream else "converse"
    response = await _post(session, target, action, body, accept=EVENT_STREAM if call.stream else None, caps=call.caps)
    response_id = f"chatcmpl-{call.request_id}"
    created = int(time.time())
    model = target.model_id
    strict = call.strict_openai

    def translate(raw: bytes) -> bytes:
        parsed = orjson.loads(raw)
        if not isinstance(parsed, dict):
            raise ValueError("not an object")
        return orjson.dumps(
            from_bedrock_converse_response(
                parsed, model=model, response_id=response_id, created=created, strict_openai=strict
            )
        )

    if call.stream and response.status < 400:
        return await open_converse_stream(
            response,
            BedrockStreamTranslator(
                model, response_id, created, strict_openai=strict, max_event_bytes=call.caps.sse_line_bytes
            ),
        )
    return _translated(response, body=_guarded(translate, target.name))


# -- embeddings -------------------------------------------------------------------------------------


async def _open_embeddings(session: aiohttp.ClientSession, call: UpstreamCall) -> UpstreamResponse:
    assert call.payload is not None
    payload = call.payload
    target = call.target
    family = embeddings.embedding_family(target.model_id)
    if family == "cohere":
        request = orjson.dumps(embeddings.to_cohere_embedding_request(payload, target.model_id))
        response = await _post(session, target, "invoke", request, caps=call.caps)
        tokens = response_header(response, "X-Amzn-Bedrock-Input-Token-Count")

        def translate(raw: bytes) -> bytes:
            return embeddings.from_cohere_embedding_response(raw, payload, tokens)

        return _translated(response, body=_guarded(translate, target.name))
    bodies = [orjson.dumps(b) for b in embeddings.to_titan_embedding_requests(payload, family)]
    return await _titan_calls(session, target, payload, bodies, call.caps)


class _Failed(Exception):
    """One Titan call answered with an error: stop the others and answer with that error."""

    def __init__(self, response: HTTPUpstreamResponse) -> None:
        super().__init__("titan call failed")
        self.response = response


async def _titan_calls(
    session: aiohttp.ClientSession, target: Target, payload: dict[str, Any], bodies: list[bytes], caps: AnswerCaps
) -> UpstreamResponse:
    """One InvokeModel call per input, `TITAN_CONCURRENCY` at a time; the first error answers for all."""
    limit = asyncio.Semaphore(TITAN_CONCURRENCY)
    opened: list[HTTPUpstreamResponse] = []
    raws: list[bytes] = [b""] * len(bodies)

    async def one(index: int, body: bytes) -> None:
        async with limit:
            response = await _post(session, target, "invoke", body, caps=caps)
            opened.append(response)
            if response.status >= 400:
                raise _Failed(response)
            raws[index] = await response.read()
            response.close()

    failed: HTTPUpstreamResponse | None = None
    try:
        async with asyncio.TaskGroup() as group:
            for index, body in enumerate(bodies):
                group.create_task(one(index, body))
    except BaseException as exc:
        inner = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else [exc]
        failed = next((e.response for e in inner if isinstance(e, _Failed)), None)
        if failed is None:
            _close_all(opened, keep=None)
            error = next((e for e in inner if isinstance(e, GatewayError)), None)
            if error is not None:
                raise error
            raise
    if failed is not None:
        _close_all(opened, keep=failed)
        return _translated(failed, body=None)
    try:
        return BufferedResponse(200, embeddings.from_titan_embedding_responses(raws, payload))
    except (ValueError, TypeError, KeyError):
        raise BadGateway(f"the upstream of model {target.name} sent a malformed answer")


def _close_all(responses: list[HTTPUpstreamResponse], keep: HTTPUpstreamResponse | None) -> None:
    for response in responses:
        if response is not keep:
            response.close()


# -- transport --------------------------------------------------------------------------------------


def model_url(base_url: str, model_id: str, action: str) -> str:
    """The URL exactly as it goes on the wire and is signed: the model id is one path segment,
    percent-encoded the way the AWS SDKs encode a URI label (`:` as %3A, `/` as %2F), so SigV4's
    canonical path double-encodes it (%253A) just as AWS computes it on its side."""
    return f"{base_url}/model/{quote(model_id, safe='')}/{action}"


async def _post(
    session: aiohttp.ClientSession,
    target: Target,
    action: str,
    body: bytes,
    accept: str | None = None,
    caps: AnswerCaps = DEFAULT_CAPS,
) -> HTTPUpstreamResponse:
    url = model_url(target.base_url, target.model_id, action)
    headers = {"Content-Type": "application/json", "Accept": accept or "application/json"}
    signer = target.options.get("signer")
    if signer is not None:
        headers = signer.sign(url, body, headers)
    sent = dict(target.headers)
    sent.update(headers)
    # encoded=True: aiohttp would otherwise re-normalise %3A back to ':' and break the signature.
    return await relay.send(
        session, "POST", URL(url, encoded=True), headers=sent, data=body, model=target.name, caps=caps
    )


def response_header(response: HTTPUpstreamResponse, name: str) -> str | None:
    """A header of the upstream answer (error types, token counts)."""
    value = response.headers.get(name)
    return str(value) if value is not None else None


def _translated(response: HTTPUpstreamResponse, *, body: Callable[[bytes], bytes] | None) -> TranslatedResponse:
    """A JSON answer (streams that started are `StartedStream`s); errors classified by `x-amzn-ErrorType`."""
    error_type = error_type_name(response_header(response, "x-amzn-ErrorType")) if response.status >= 400 else None
    return TranslatedResponse(
        response,
        body=body,
        stream=None,
        classify=classifier(error_type),
        status=lambda status: mapped_status(error_type, status) if status >= 400 else status,
    )


def _guarded(translate: Callable[[bytes], bytes], model: str) -> Callable[[bytes], bytes]:
    """A body translator whose failure on a malformed upstream answer is a 502, not a crash."""

    def run(raw: bytes) -> bytes:
        try:
            return translate(raw)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise BadGateway(f"the upstream of model {model} sent a malformed answer")

    return run
