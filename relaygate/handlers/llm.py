"""The OpenAI-compatible endpoints: authenticate, resolve the model, check access, call, relay, log.

One parse of the request body (orjson); the upstream body is the same dict with `model` rewritten.
Streams are relayed chunk by chunk; the log row is queued after the answer is on its way.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from relaygate.auth.access import may_call
from relaygate.config.compile_virtual import VirtualModel
from relaygate.dialects.openai.usage import read_usage
from relaygate.errors import BadRequest, Forbidden, NotFound, UnsupportedModelType
from relaygate.handlers.llm_attempts import CallSpec
from relaygate.handlers.llm_exchange import exchange
from relaygate.handlers.llm_hints import unknown_model_hint
from relaygate.handlers.llm_ngrok import ngrok_routing
from relaygate.handlers.llm_routing import (
    Controls,
    parse_controls,
    plan_for,
)
from relaygate.http import multipart
from relaygate.http.body import parse_json_object, read_body
from relaygate.http.headers import (
    bearer_token,
    header,
    parse_logging_headers,
    parse_strict_openai,
)
from relaygate.limits.gate import admit, settle_later
from relaygate.providers.base import Operation, Target

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.http.types import RawHeaders, Receive, Scope, Send
    from relaygate.providers.usage import Price


async def authenticate(gateway: Gateway, scope: Scope, ctx: RequestContext, token: str | None = None) -> Principal:
    """The caller's principal under the current config (401 for every kind of bad token); `token` overrides
    the one `bearer_token` finds."""
    started = time.perf_counter()
    record = await gateway.authenticator.authenticate_token(token if token is not None else bearer_token(scope))
    principal = gateway.snapshot.principal(record)
    ctx.subject = principal.subject
    ctx.token_id = f"rg-{principal.token_id}"  # the public id `tokens list` shows, never the secret
    ctx.timings.auth = (time.perf_counter() - started) * 1000.0
    return principal


def resolve(
    gateway: Gateway, principal: Principal, model: object, operation: Operation
) -> Target | VirtualModel | None:
    """The model or virtual model for `model`: 404 unknown, 400 wrong type, 403 not allowed.

    None means it is no manifest model, but the ngrok dialect (configured) may serve it.
    """
    if not isinstance(model, str) or not model:
        raise BadRequest(
            "'model' is required: name a model as {account}/{integration}", param="model", code="missing_model"
        )
    snapshot = gateway.snapshot
    found: Target | VirtualModel | None = (
        snapshot.models.get(model) or snapshot.virtual_models.get(model) or snapshot.aliases.get(model)
    )  # an integration's `aliases`
    if found is None:
        if snapshot.ngrok is not None:
            return None
        raise NotFound(
            f"model '{model}' is not configured on this gateway"
            f"{unknown_model_hint(snapshot, principal, model, operation.model_type)}",
            code="model_not_found",
        )
    if operation.model_type not in found.model_types:
        raise UnsupportedModelType(
            f"model '{model}' does not support {operation.model_type} (it lists: "
            f"{', '.join(sorted(found.model_types))})",
            param="model",
        )
    access = found.access
    if not may_call(principal, found.name, found.account, access):
        raise Forbidden(f"your token may not call model '{model}'", code="model_access_denied")
    return found


def limited_as(ctx: RequestContext, found: Target | VirtualModel | None, model: str) -> str:
    """The model name limits match: the one an alias names (recorded in the log row's `extra.alias_of`)."""
    if found is None or found.name == model:
        return model
    ctx.extra["alias_of"] = found.name
    return found.name


def price_of(found: Target | VirtualModel | None) -> Price | None:
    """The price a budget reserves against before routing: a model's own, a virtual model's dearest target."""
    if isinstance(found, Target):
        return found.price
    if isinstance(found, VirtualModel):
        prices = [route.payload.target.price for route in found.targets if route.payload.target.price is not None]
        return max(prices, key=lambda p: p.input_per_million + p.output_per_million) if prices else None
    return None


async def handle(
    gateway: Gateway,
    scope: Scope,
    receive: Receive,
    send: Send,
    operation: Operation,
    ctx: RequestContext,
    base_headers: RawHeaders,
) -> None:
    """Serve one OpenAI-compatible call; gateway errors propagate to the dispatcher."""
    principal = await authenticate(gateway, scope, ctx)
    ctx.metadata, ctx.log_bodies = parse_logging_headers(scope, gateway.settings.log_bodies)
    controls = parse_controls(scope)
    body = await read_body(scope, receive, gateway.settings.max_request_body_bytes)
    ctx.request_body = body

    payload: dict[str, Any] | None
    content_type = header(scope, b"content-type")
    boundary: bytes | None = None
    if operation.multipart:
        boundary = multipart.boundary_of(content_type)
        model: object = multipart.read_field(body, boundary, b"model")
        payload = None
    else:
        payload = parse_json_object(body)
        model = payload.get("model")
    ctx.requested_model = model if isinstance(model, str) else None
    ctx.model_type = operation.model_type
    found = resolve(gateway, principal, model, operation)
    await _call(
        gateway,
        scope,
        receive,
        send,
        operation,
        ctx,
        base_headers,
        principal,
        found,
        payload,
        body,
        boundary,
        content_type,
        controls,
    )


async def _call(
    gateway: Gateway,
    scope: Scope,
    receive: Receive,
    send: Send,
    operation: Operation,
    ctx: RequestContext,
    base_headers: RawHeaders,
    principal: Principal,
    found: Target | VirtualModel | None,
    payload: dict[str, Any] | None,
    body: bytes,
    boundary: bytes | None,
    content_type: bytes | None,
    controls: Controls,
) -> None:
    """Route, reserve against the limits (last: after every check the gateway makes itself), call and relay."""
    started = time.perf_counter()
    model = ctx.requested_model
    stream = False
    wants_usage = False
    if payload is not None and operation.streams and payload.get("stream") is True:
        stream = True
        options = payload.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        wants_usage = options.get("include_usage") is True
        options["include_usage"] = True  # always: tokens and cost stay exact
        payload["stream_options"] = options
    ctx.streaming = stream

    caller_timeout = controls.caller_timeout
    attempt_timeout = caller_timeout or gateway.settings.request_timeout
    if found is None:
        ngrok = gateway.snapshot.ngrok
        assert ngrok is not None and isinstance(model, str)
        routing = ngrok_routing(gateway, ngrok, principal, model, payload, ctx, controls.retry_override)
        attempt_timeout = caller_timeout or ngrok.per_request_timeout
    else:
        routing = plan_for(gateway, principal, found, ctx, scope, controls.retry_override)
    spec = CallSpec(
        operation,
        payload,
        body,
        boundary,
        content_type,
        stream,
        wants_usage,
        attempt_timeout,
        caller_timeout is not None,
        controls.ttft_timeout,
        ctx.request_id,
        single_target=len(routing.plan) == 1,
        deadline=routing.deadline,
        strict_openai=parse_strict_openai(header(scope, b"x-tfy-strict-openai")),
    )
    ctx.timings.loadbalance = (time.perf_counter() - started) * 1000.0

    usage_reader = None if operation.binary_response else read_usage
    reservation = (
        await admit(gateway, ctx, principal, limited_as(ctx, found, model), payload, price_of(found), routing.plan)
        if model is not None
        else None
    )
    try:
        await exchange(gateway, receive, send, spec, routing, ctx, base_headers, usage_reader)
    finally:
        settle_later(gateway, reservation, ctx)
