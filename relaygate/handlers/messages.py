"""The Anthropic Messages API inbound (`/messages`, `/messages/count_tokens`) for every configured model.

Same pipeline as the OpenAI endpoints (`llm.py`: authenticate, resolve, plan, `run_plan`, `note_route`, the
`x-tfy-*` controls); only each attempt differs by its target. An Anthropic target gets the caller's
body as it is (model rewritten, `anthropic-version`/`anthropic-beta` forwarded) and its answer is
relayed natively; any other target gets the body translated to an OpenAI chat request through its
normal adapter, and the answer translated back. `count_tokens` goes only to targets that can count:
Anthropic ones natively, and those whose adapter is a `TokenCounter` (Gemini, Vertex, Bedrock), which
count the translated request with their provider's own API; a model with neither is a 400. Every
attempt therefore yields Anthropic-shaped bytes, so fallback, usage capture and error events work
across a virtual model mixing both kinds. Errors on these routes are Anthropic-shaped too
(`dialects.anthropic_messages.send_error`, used by the app for the "messages" routes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from relaygate.auth.tokens import parse_token
from relaygate.dialects.anthropic_messages import ANTHROPIC_MESSAGES
from relaygate.dialects.anthropic_messages.errors import OVERLOADED
from relaygate.dialects.anthropic_messages.from_openai import MessagesFromOpenAI
from relaygate.dialects.anthropic_messages.translation import openai_request_from_messages
from relaygate.errors import BadRequest
from relaygate.http.body import parse_json_object, read_body
from relaygate.http.headers import bearer_token, header
from relaygate.pipeline.llm import LLMRequest, serve
from relaygate.pipeline.planning import Routing
from relaygate.providers.base import (
    MESSAGES,
    OPERATIONS,
    Operation,
    UpstreamResponse,
    token_counter,
)
from relaygate.providers.registry import ADAPTERS
from relaygate.runtime.targets import Target

if TYPE_CHECKING:
    from relaygate.dialects.answer import UsageReader
    from relaygate.gateway import Gateway
    from relaygate.http.types import RawHeaders, Scope
    from relaygate.pipeline.attempts import CallSpec
    from relaygate.pipeline.call import Call
    from relaygate.runtime.virtual import TargetOverrides

ANTHROPIC = "anthropic"
CHAT = next(op for op in OPERATIONS if op.name == "chat")
FORWARDED_HEADERS = (b"anthropic-version", b"anthropic-beta")
# A virtual model's `override_params` reach an Anthropic target only where they are Messages parameters.
ANTHROPIC_PARAMS = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "metadata",
        "system",
        "thinking",
        "tool_choice",
        "tools",
        "service_tier",
    }
)
# The provider kinds whose models serve count_tokens (named in the 400 for the others).
COUNTING_PROVIDERS = tuple(sorted({ANTHROPIC, *(kind for kind, a in ADAPTERS.items() if token_counter(a))}))


class MessagesOpener:
    """Opens one attempt for a Messages request: native for Anthropic targets, translated otherwise."""

    __slots__ = ("model", "inbound_headers", "_translated")

    def __init__(self, model: str, inbound_headers: tuple[tuple[str, str], ...]) -> None:
        self.model = model  # what the caller asked for: the model translated answers report
        self.inbound_headers = inbound_headers
        self._translated: dict[str, Any] | None = None  # the OpenAI request, built on first need

    def applied_params(self, operation: Operation, overrides: TargetOverrides) -> list[str]:
        """The `override_params` keys `__call__` sends (for `x-tfy-applied-configurations`)."""
        if operation is not MESSAGES:
            return []  # count_tokens: never
        if overrides.target.provider == ANTHROPIC:
            return [key for key in overrides.override_params if key in ANTHROPIC_PARAMS]
        return list(overrides.override_params)

    async def __call__(self, gateway: Gateway, spec: CallSpec, overrides: TargetOverrides) -> UpstreamResponse:
        target = overrides.target
        assert spec.payload is not None
        if target.provider == ANTHROPIC:
            payload = dict(spec.payload)
            payload["model"] = target.model_id
            if spec.operation is MESSAGES:
                payload.update((k, v) for k, v in overrides.override_params.items() if k in ANTHROPIC_PARAMS)
            native = await gateway.adapter_open(
                spec.upstream_call(target, payload, gateway.answer_caps, inbound_headers=self.inbound_headers)
            )
            if native.status == OVERLOADED:
                native.status = 503  # retry and fall back as for any overloaded upstream; the body says overloaded
            return native
        counting = spec.operation is not MESSAGES
        counter = token_counter(target.adapter) if counting else None
        if counting and counter is None:
            raise BadRequest(
                _cannot_count(f"model {target.name} is served by provider {target.provider}"),
                code="unsupported_operation",
            )
        if self._translated is None:
            self._translated = openai_request_from_messages(spec.payload, count_only=counting)
            if spec.stream:
                self._translated["stream_options"] = {"include_usage": True}
        payload = dict(self._translated)
        payload["model"] = target.model_id
        if counter is not None:  # as for Anthropic targets, a virtual model's override_params do not apply
            assert gateway.session is not None
            return await counter.count_tokens(
                gateway.session,
                spec.upstream_call(target, payload, gateway.answer_caps, stream=False),
            )
        payload.update(overrides.override_params)
        response = await gateway.adapter_open(spec.upstream_call(target, payload, gateway.answer_caps, operation=CHAT))
        return MessagesFromOpenAI(response, self.model, spec.stream, gateway.answer_caps.sse_line_bytes)


def _caller_token(scope: Scope) -> str | None:
    """The Relaygate token of a Messages call: `Authorization: Bearer` or `x-api-key`, whichever holds one.

    Anthropic clients may send both (the SDK with `api_key` and `auth_token`, Claude Code with
    ANTHROPIC_API_KEY and ANTHROPIC_AUTH_TOKEN), the other one being some Anthropic credential.
    """
    bearer = bearer_token(scope)
    if bearer is not None and parse_token(bearer) is not None:
        return bearer
    api_key = header(scope, b"x-api-key")
    token = api_key.decode("latin-1").strip() if api_key is not None else ""
    return token if parse_token(token) is not None else bearer


def _inbound_headers(scope: Scope) -> tuple[tuple[str, str], ...]:
    found = []
    for name in FORWARDED_HEADERS:
        value = header(scope, name)
        if value is not None:
            found.append((name.decode(), value.decode("latin-1")))
    return tuple(found)


def _can_count(target: Target) -> bool:
    return target.provider == ANTHROPIC or token_counter(target.adapter) is not None


def _cannot_count(why: str) -> str:
    return f"count_tokens is only available for models of providers {', '.join(COUNTING_PROVIDERS)}; {why}"


def _counting_only(routing: Routing, model: str) -> Routing:
    """count_tokens: only targets that can count are tried (400 when the model has none)."""
    plan = [p for p in routing.plan if _can_count(p.target.payload.target)]
    if not plan:
        raise BadRequest(_cannot_count(f"'{model}' is not served by one"), param="model", code="unsupported_operation")
    routing.plan = plan
    return routing


class MessagesFrontend:
    """The Anthropic Messages wire format: `x-api-key` or bearer token, JSON bodies, Messages events and errors."""

    __slots__ = ()

    def caller_token(self, call: Call) -> str | None:
        return _caller_token(call.scope)

    async def read(self, call: Call, operation: Operation) -> LLMRequest:
        body = await read_body(call.scope, call.receive, call.gateway.settings.max_request_body_bytes)
        call.ctx.request_body = body
        payload = parse_json_object(body)
        stream = operation is MESSAGES and payload.get("stream") is True
        return LLMRequest(
            operation, payload.get("model"), payload, b"", call.header(b"content-type"), stream=stream, wants_usage=True
        )

    def narrow(self, routing: Routing, request: LLMRequest) -> Routing:
        if request.operation is MESSAGES:
            return routing
        assert isinstance(request.model, str)
        return _counting_only(routing, request.model)  # count_tokens

    def complete_spec(self, spec: CallSpec, call: Call, request: LLMRequest, routing: Routing) -> None:
        assert isinstance(request.model, str)
        spec.dialect = ANTHROPIC_MESSAGES
        spec.opener = MessagesOpener(request.model, _inbound_headers(call.scope))

    def response_headers(self, call: Call) -> RawHeaders:
        return [*call.base_headers, (b"request-id", call.ctx.request_id.encode("latin-1"))]

    def reserves(self, request: LLMRequest) -> bool:
        return request.operation is MESSAGES  # counting is free

    def usage_reader(self, request: LLMRequest) -> UsageReader | None:
        return ANTHROPIC_MESSAGES.read_usage if request.operation is MESSAGES else None


FRONTEND = MessagesFrontend()


def handler_for(operation: Operation) -> Callable[[Call], Awaitable[None]]:
    """The route handler of `/messages` or `/messages/count_tokens`."""

    return partial(serve, operation=operation, frontend=FRONTEND)  # no frame of its own per await
