"""Run a routed LLM call and send its answer: shared by the OpenAI-compatible and Messages endpoints.

The two inbound APIs differ in how they build the plan and the call, and in where the usage sits
in a non-streaming body; from the plan on they are the same: stream (fall back until first content,
then relay) or answer, client disconnect as 499, speed samples for latency routing, routing headers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.handlers.llm_attempts import CallSpec, attempt_answer, attempt_stream, discard, relay_stream
from relaygate.handlers.llm_routing import Routing, final_or_raise, record_speed, routing_headers, settle, wants_speed
from relaygate.http.disconnect import DisconnectWatcher
from relaygate.http.responses import send_bytes
from relaygate.routing.router import run_plan

if TYPE_CHECKING:
    from relaygate.app import Gateway
    from relaygate.context import RequestContext, Usage
    from relaygate.http.types import RawHeaders, Receive, Send

UsageReader = Callable[[Any, "Usage"], None]  # the body's `usage` value -> ctx.usage


async def exchange(gateway: Gateway, receive: Receive, send: Send, spec: CallSpec, routing: Routing,
                   ctx: RequestContext, headers: RawHeaders, read_usage: UsageReader | None) -> None:
    """Call through the plan and send the answer; `read_usage` None: the body carries no usage (binary)."""
    model_started = time.perf_counter()
    watcher = DisconnectWatcher(receive)
    try:
        if spec.stream:
            streamed = await run_plan(routing.plan, lambda rt: attempt_stream(gateway, spec, rt.payload),
                                      routing.health, discard, deadline=routing.deadline)
            settle(gateway, ctx, streamed, routing, model_started)
            start = final_or_raise(streamed)
            ctx.status = start.status
            ctx.ttft_ms = ctx.elapsed_ms()
            await send({
                "type": "http.response.start",
                "status": start.status,
                "headers": [(b"content-type", start.response.content_type.encode("latin-1")),
                            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"),
                            *headers, *routing_headers(streamed, ctx)],
            })
            await relay_stream(gateway, send, start, ctx)
            if wants_speed(gateway, streamed):
                record_speed(gateway, streamed, ctx, model_started)
            return
        answered = await run_plan(routing.plan, lambda rt: attempt_answer(gateway, spec, rt.payload),
                                  routing.health, discard, deadline=routing.deadline)
    except asyncio.CancelledError:
        if not watcher.disconnected:
            raise
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        ctx.status = 499
        ctx.error_type = "client_disconnected"
        return
    finally:
        watcher.stop()
    settle(gateway, ctx, answered, routing, model_started)
    answer = final_or_raise(answered)
    ctx.status = answer.status
    if read_usage is not None and answer.body[:1] == b"{":
        try:
            parsed = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            read_usage(parsed.get("usage"), ctx.usage)
    if wants_speed(gateway, answered):
        record_speed(gateway, answered, ctx, model_started)
    ctx.response_body = answer.body
    out = [*headers, *routing_headers(answered, ctx),
           (b"server-timing", ctx.timings.header(ctx.elapsed_ms(), answered.attempts))]
    await send_bytes(send, answer.status, answer.body, answer.content_type.encode("latin-1"), out)
