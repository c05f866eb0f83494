"""The LLM request pipeline, once for every caller-facing API (OpenAI-compatible and Anthropic Messages).

authenticate -> logging headers -> `x-tfy-*` controls -> read the body (the frontend) -> resolve the
model -> plan the attempts -> admit against the limits (last: after every check the gateway makes
itself) -> exchange (attempts, fallbacks, relay) -> settle the reservation. A `Frontend` says only what
its wire format decides: which token, how the body is read, which dialect streams, what is counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from relaygate.cache.entry import CacheEntry
from relaygate.dialects.answer import UsageReader
from relaygate.pipeline.admission import admit, settle_later
from relaygate.pipeline.attempts import CallSpec
from relaygate.pipeline.authenticate import authenticate, read_logging_headers
from relaygate.pipeline.cache_decide import decide
from relaygate.pipeline.cache_record import CacheRecord
from relaygate.pipeline.cache_step import answer_hit, lookup, note, semantic_lookup, status_headers
from relaygate.pipeline.exchange import exchange
from relaygate.pipeline.guard import exchange_beside_validators, guard_input
from relaygate.pipeline.internal import is_internal
from relaygate.pipeline.ngrok import ngrok_routing
from relaygate.pipeline.planning import Controls, Routing, parse_controls, plan_for
from relaygate.pipeline.resolve import limited_as, price_of, resolve

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.http.types import RawHeaders, Send
    from relaygate.pipeline.cache_decide import CacheDecision
    from relaygate.pipeline.call import Call
    from relaygate.pipeline.guard import Guarded
    from relaygate.pipeline.planning import Routing
    from relaygate.providers.base import Operation
    from relaygate.runtime.targets import Target
    from relaygate.runtime.virtual import VirtualModel


@dataclass(slots=True)
class LLMRequest:
    """The caller's request as its frontend read it."""

    operation: Operation
    model: object  # the body's `model`, checked by `resolve`
    payload: dict[str, Any] | None  # the parsed JSON body (None: multipart, relayed as bytes)
    body: bytes  # as received
    content_type: bytes | None = None
    boundary: bytes | None = None  # multipart bodies
    stream: bool = False
    wants_usage: bool = False  # the caller asked for a usage chunk (the gateway always does)


class Frontend(Protocol):
    """What one caller-facing wire format decides; everything else is the pipeline's."""

    def caller_token(self, call: Call) -> str | None:
        """The token to authenticate (None: the bearer token)."""

    async def read(self, call: Call, operation: Operation) -> LLMRequest:
        """Read and parse the body (one parse), noting it in the context for the log row."""

    def narrow(self, routing: Routing, request: LLMRequest) -> Routing:
        """Drop targets that cannot serve this request (400 when none can)."""

    def complete_spec(self, spec: CallSpec, call: Call, request: LLMRequest, routing: Routing) -> None:
        """Set what this format changes in the attempts (dialect, opener, strictness)."""

    def response_headers(self, call: Call) -> RawHeaders:
        """Headers on every answer of this request."""

    def reserves(self, request: LLMRequest) -> bool:
        """Whether the request counts against the limits."""

    def usage_reader(self, request: LLMRequest) -> UsageReader | None:
        """Where a non-streaming answer keeps its usage (None: it has none)."""


async def serve(call: Call, operation: Operation, frontend: Frontend) -> None:
    """Serve one LLM call; gateway errors propagate to the dispatcher, which renders them."""
    gateway, ctx = call.gateway, call.ctx
    ctx.operation = operation.name
    principal = await authenticate(call, frontend.caller_token(call))
    read_logging_headers(call)
    controls = parse_controls(call.scope)
    request = await frontend.read(call, operation)
    model = request.model
    ctx.requested_model = model if isinstance(model, str) else None
    ctx.model_type = operation.model_type
    found = resolve(gateway, principal, model, operation)
    assert isinstance(model, str)  # resolve refused anything else
    started = time.perf_counter()
    ctx.streaming = request.stream
    routing, attempt_timeout = _routing(call, principal, found, model, request.payload, controls)
    routing = frontend.narrow(routing, request)
    spec = CallSpec(
        operation,
        request.payload,
        request.body,
        request.boundary,
        request.content_type,
        request.stream,
        request.wants_usage,
        attempt_timeout,
        controls.caller_timeout is not None,
        controls.ttft_timeout,
        ctx.request_id,
        single_target=False,
        deadline=routing.deadline,
    )
    frontend.complete_spec(spec, call, request, routing)
    ctx.timings.loadbalance = (time.perf_counter() - started) * 1000.0
    reservation = (
        await admit(
            gateway, ctx, principal, limited_as(ctx, found, model), request.payload, price_of(found), routing.plan
        )
        if frontend.reserves(request)
        else None
    )
    try:
        guarded = decision = None
        # Guardrails and the cache, unless the gateway has neither and the request asks for neither (the
        # common case costs two attribute reads and two header look-ups), or it is the gateway's own call
        # (a judge, an embedding).
        snapshot = gateway.snapshot
        if (
            snapshot.guardrails
            or snapshot.cache.rules
            or call.header(b"x-tfy-cache-config") is not None
            or call.header(b"x-tfy-guardrails") is not None
        ) and not is_internal(call):
            guarded = await guard_input(call, operation.name, model, request.payload)
            decision = decide(call, operation.name, model, request.payload, principal)
        headers = frontend.response_headers(call)
        if decision is None and "cache" in ctx.extra:  # caching asked for, but not applicable here
            headers = [*headers, *status_headers(None, ctx.extra)]
        if guarded is not None and guarded.pending is not None:  # parallel_with_model
            await exchange_beside_validators(
                guarded, call, partial(_answer, call, decision, request, spec, routing, headers, frontend, guarded)
            )
        elif decision is None:
            reader = frontend.usage_reader(request)
            await exchange(gateway, call.receive, call.send, spec, routing, ctx, headers, reader, guarded)
        else:
            await _cached(call, call.send, decision, request, spec, routing, headers, frontend, guarded)
    finally:
        settle_later(gateway, reservation, ctx)


async def _answer(
    call: Call,
    decision: CacheDecision | None,
    request: LLMRequest,
    spec: CallSpec,
    routing: Routing,
    headers: RawHeaders,
    frontend: Frontend,
    guarded: Guarded | None,
    send: Send,
) -> None:
    """The exchange, through the cache when a cache rule applies."""
    if decision is None:
        reader = frontend.usage_reader(request)
        await exchange(call.gateway, call.receive, send, spec, routing, call.ctx, headers, reader, guarded)
    else:
        await _cached(call, send, decision, request, spec, routing, headers, frontend, guarded)


async def _cached(
    call: Call,
    send: Send,
    decision: CacheDecision,
    request: LLMRequest,
    spec: CallSpec,
    routing: Routing,
    headers: RawHeaders,
    frontend: Frontend,
    guarded: Guarded | None,
) -> None:
    """Answer from the cache, or call through (one call per key at a time in this process) and record."""
    gateway, ctx = call.gateway, call.ctx
    policy = gateway.snapshot.cache
    store = gateway.cache.store_for(policy)
    entry = await lookup(store, decision)
    if entry is None and decision.semantic and request.payload is not None and not decision.force_refresh:
        entry = await semantic_lookup(call, store, decision, request.payload)
    if entry is not None:
        await answer_hit(call, send, decision, entry, request.stream, request.wants_usage, headers)
        return
    async with gateway.cache.flights.lead_or_follow(decision.key.digest) as flight:
        if not flight.is_leader:
            shared = await flight.wait()
            if shared is not None:
                await answer_hit(
                    call, send, decision, CacheEntry.decode(shared), request.stream, request.wants_usage, headers
                )
                return
        note(call, decision)
        record = CacheRecord(call, decision, store, policy.max_entry_bytes)
        try:
            await exchange(
                gateway,
                call.receive,
                send,
                spec,
                routing,
                ctx,
                [*headers, *status_headers(decision, ctx.extra)],
                frontend.usage_reader(request),
                guarded,
                record,
            )
            await record.write()
        finally:
            if flight.is_leader:
                flight.publish(record.encoded)


def _routing(
    call: Call,
    principal: Principal,
    found: Target | VirtualModel | None,
    model: str,
    payload: dict[str, Any] | None,
    controls: Controls,
) -> tuple[Routing, float]:
    """The attempt plan and the per-attempt timeout (the caller's, else the model's or the gateway's)."""
    gateway = call.gateway
    if found is None:  # the ngrok dialect serves it
        ngrok = gateway.snapshot.ngrok
        assert ngrok is not None
        routing = ngrok_routing(gateway, ngrok, principal, model, payload, call.ctx, controls.retry_override)
        return routing, controls.caller_timeout or ngrok.per_request_timeout
    routing = plan_for(gateway, principal, found, call.ctx, call.scope, controls.retry_override)
    return routing, controls.caller_timeout or gateway.settings.request_timeout
