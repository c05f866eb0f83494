"""The OpenAI-compatible endpoints (chat, completions, embeddings, images, audio, rerank, moderations).

A thin frontend over the LLM pipeline (`pipeline/llm.py`): one parse of the JSON body (orjson), or the
`model` field of a multipart body; the upstream body is the same dict with `model` rewritten. A stream
always asks the upstream for usage (tokens and cost stay exact) and shows it to the caller only when
the caller asked for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from relaygate.dialects.openai import OPENAI
from relaygate.http import multipart
from relaygate.http.body import parse_json_object, read_body
from relaygate.http.headers import parse_strict_openai
from relaygate.pipeline.llm import LLMRequest, serve
from relaygate.wire_types import OpenAIRequestFields, StreamOptions

if TYPE_CHECKING:
    from relaygate.dialects.answer import UsageReader
    from relaygate.http.types import RawHeaders
    from relaygate.pipeline.attempts import CallSpec
    from relaygate.pipeline.call import Call
    from relaygate.pipeline.planning import Routing
    from relaygate.providers.base import Operation


class OpenAIFrontend:
    """The OpenAI wire format: bearer token, JSON or multipart bodies, OpenAI chunks and errors."""

    __slots__ = ()

    def caller_token(self, call: Call) -> str | None:
        return None

    async def read(self, call: Call, operation: Operation) -> LLMRequest:
        body = await read_body(call.scope, call.receive, call.gateway.settings.max_request_body_bytes)
        call.ctx.request_body = body
        content_type = call.header(b"content-type")
        if operation.multipart:
            boundary = multipart.boundary_of(content_type)
            model = multipart.read_field(body, boundary, b"model")
            return LLMRequest(operation, model, None, body, content_type, boundary)
        payload = parse_json_object(body)
        fields = cast(OpenAIRequestFields, payload)  # the keys read here (values still checked)
        request = LLMRequest(operation, fields.get("model"), payload, body, content_type)
        if operation.streams and fields.get("stream") is True:
            request.stream = True
            given: object = fields.get("stream_options")
            options = cast(StreamOptions, dict(given) if isinstance(given, dict) else {})
            request.wants_usage = options.get("include_usage") is True
            options["include_usage"] = True  # always: tokens and cost stay exact
            fields["stream_options"] = options
        return request

    def narrow(self, routing: Routing, request: LLMRequest) -> Routing:
        return routing

    def complete_spec(self, spec: CallSpec, call: Call, request: LLMRequest, routing: Routing) -> None:
        spec.single_target = len(routing.plan) == 1  # the payload may then be changed in place
        spec.strict_openai = parse_strict_openai(call.header(b"x-tfy-strict-openai"))

    def response_headers(self, call: Call) -> RawHeaders:
        return call.base_headers

    def reserves(self, request: LLMRequest) -> bool:
        return True

    def usage_reader(self, request: LLMRequest) -> UsageReader | None:
        return None if request.operation.binary_response else OPENAI.read_usage


FRONTEND = OpenAIFrontend()


def handler_for(operation: Operation) -> Callable[[Call], Awaitable[None]]:
    """The route handler of one OpenAI-compatible operation."""

    return partial(serve, operation=operation, frontend=FRONTEND)  # no frame of its own per await
