"""Run a routed LLM call and send its answer: shared by the OpenAI-compatible and Messages endpoints.

The two inbound APIs differ in how they build the plan and the call, and in where the usage sits
in a non-streaming body; from the plan on they are the same: stream (fall back until first content,
then relay) or answer, client disconnect as 499, speed samples for latency routing, routing headers.

A cancellation that is not the caller leaving is the server stopping the request: uvicorn cancels
what still runs when the shutdown drain period (`shutdown_grace_seconds`) is over. The caller is then
told so, as a 503 before the answer started or as the dialect's error event ending a stream (no
`[DONE]`/`message_stop`, log row truncated), instead of a connection cut silently.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from relaygate.dialects.answer import UsageReader, read_answer
from relaygate.errors import ServiceUnavailable
from relaygate.http.disconnect import DisconnectWatcher
from relaygate.http.model_field import stream_renamer
from relaygate.http.responses import send_bytes
from relaygate.observe.record import record_from_context
from relaygate.pipeline.attempts import (
    CallSpec,
    StreamStart,
    attempt_answer,
    attempt_stream,
    discard,
    relay_stream,
)
from relaygate.pipeline.guard_stream import tap_for
from relaygate.pipeline.planning import (
    ParamsOf,
    Routing,
    final_or_raise,
    note_route,
    record_speed,
    routing_headers,
    wants_speed,
)
from relaygate.routing.router import run_plan

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.http.types import RawHeaders, Receive, Send
    from relaygate.pipeline.cache_record import CacheRecord
    from relaygate.pipeline.guard import Guarded

SHUTDOWN_MESSAGE = (
    "the gateway is shutting down and its drain period (shutdown_grace_seconds) ended before "
    "this request finished; retry it"
)


async def exchange(
    gateway: Gateway,
    receive: Receive,
    send: Send,
    spec: CallSpec,
    routing: Routing,
    ctx: RequestContext,
    headers: RawHeaders,
    read_usage: UsageReader | None,
    guarded: Guarded | None = None,
    record: CacheRecord | None = None,
) -> None:
    """Call through the plan and send the answer; `read_usage` None: the body carries no usage (binary)."""
    model_started = time.perf_counter()
    watcher = DisconnectWatcher(receive)
    opened: StreamStart | None = None  # the stream being answered with
    started = False  # its response has started
    try:
        if spec.stream:
            streamed = await run_plan(
                routing.plan,
                lambda rt: attempt_stream(gateway, spec, rt.payload),
                routing.health,
                discard,
                deadline=routing.deadline,
            )
            note_route(gateway, ctx, streamed, routing, model_started, _params_of(spec))
            start = opened = final_or_raise(streamed)
            ctx.status = start.status
            ctx.ttft_ms = ctx.elapsed_ms()
            renamed = _caller_named_stream(start, ctx)
            await send(
                {
                    "type": "http.response.start",
                    "status": start.status,
                    "headers": [
                        (b"content-type", start.response.content_type.encode("latin-1")),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        *headers,
                        *routing_headers(streamed, ctx),
                        *renamed,
                        *guard_headers(guarded),
                    ],
                }
            )
            started = True
            active = gateway.metrics.active
            active.streams += 1
            try:
                await relay_stream(gateway, send, start, ctx, record, tap_for(guarded, ctx.operation))
                if record is not None:
                    record.stream_ended(_flagged(guarded))
            finally:
                active.streams -= 1
            if wants_speed(gateway, streamed):
                record_speed(gateway, streamed, ctx, model_started)
            return
        answered = await run_plan(
            routing.plan,
            lambda rt: attempt_answer(gateway, spec, rt.payload),
            routing.health,
            discard,
            deadline=routing.deadline,
        )
    except asyncio.CancelledError:
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        if opened is not None:
            opened.response.close()
        if watcher.disconnected:
            ctx.status = 499
            ctx.error_type = "client_disconnected"
            return
        error = ServiceUnavailable(SHUTDOWN_MESSAGE, code="server_shutting_down")
        if opened is None or not started:
            raise error from None
        ctx.truncated = True
        ctx.error_type = error.type
        ctx.error_message = error.message
        await send({"type": "http.response.body", "body": opened.dialect.error_event(error), "more_body": False})
        return
    finally:
        watcher.stop()
    note_route(gateway, ctx, answered, routing, model_started, _params_of(spec))
    answer = final_or_raise(answered)
    ctx.status = answer.status
    body = answer.body
    named: list[tuple[bytes, bytes]] = []
    if read_usage is not None:  # usage and model: one parse at most (none for translated or large answers)
        body, provider_model = read_answer(body, answer.parsed, read_usage, ctx.usage, ctx.requested_model)
        named = _provider_model(ctx, provider_model)
    if wants_speed(gateway, answered):
        record_speed(gateway, answered, ctx, model_started)
    if guarded is not None and answer.status == 200:
        body = await guarded.check_answer(body)  # 400 guardrail_blocked when an output guardrail blocks
        found = guarded.header()
        if found is not None:
            named.append(found)
    ctx.response_body = body
    logging_started = time.perf_counter()  # the row is built now, so server-timing can say what it took
    ctx.log_record = record_from_context(ctx, gateway.settings.log_body_max_bytes)
    ctx.timings.logging = (time.perf_counter() - logging_started) * 1000.0
    out = [
        *headers,
        *routing_headers(answered, ctx),
        *named,
        (b"server-timing", ctx.timings.header(ctx.elapsed_ms(), answered.attempts)),
    ]
    await send_bytes(send, answer.status, body, answer.content_type.encode("latin-1"), out)
    if record is not None and answer.status == 200:  # stored after the answer went out
        record.answer(body, answer.content_type, _flagged(guarded))


def _flagged(guarded: Guarded | None) -> bool:
    """A guardrail flagged (or blocked) this request: its answer is never cached."""
    return guarded is not None and any(v.result in ("flag", "block") for v in guarded.verdicts)


def guard_headers(guarded: Guarded | None) -> list[tuple[bytes, bytes]]:
    """`x-relaygate-guardrails` with what the guardrails said so far (none without guardrails)."""
    found = guarded.header() if guarded is not None else None
    return [found] if found is not None else []


def _params_of(spec: CallSpec) -> ParamsOf | None:
    """Which `override_params` keys the call sends: the opener's say (Messages API) or all (JSON bodies);
    multipart bodies get none."""
    opener_params = getattr(spec.opener, "applied_params", None)
    if opener_params is not None:
        return lambda overrides: opener_params(spec.operation, overrides)
    return None if spec.payload is not None else (lambda overrides: ())


def _provider_model(ctx: RequestContext, provider_model: str | None) -> list[tuple[bytes, bytes]]:
    """The provider's own model id, for the log row and the `x-tfy-provider-model` header."""
    if provider_model is None:
        return []
    ctx.extra["provider_model"] = provider_model
    if len(provider_model) > 256 or not (provider_model.isascii() and provider_model.isprintable()):
        return []  # not a model id a header can carry as it is (the log row still has it)
    return [(b"x-tfy-provider-model", provider_model.encode("ascii"))]


def _caller_named_stream(start: StreamStart, ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """Rename the stream's `model` to the caller's name from here on; the provider's id as a header."""
    if ctx.requested_model is None:
        return []
    renamer, provider_model = stream_renamer(start.first, start.filter, ctx.requested_model)
    if renamer is not None:
        start.first = renamer.rename(start.first)
        start.filter = renamer
    return _provider_model(ctx, provider_model)
