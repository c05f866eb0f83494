"""What the MCP endpoints write back: one JSON message, an empty 202/204, or an SSE stream relayed live.

An upstream's SSE answer is relayed event by event as it arrives (a long `tools/call` shows its
progress at once), with a `: keep-alive` comment every `KEEPALIVE_SECONDS` while the upstream is
quiet, so proxies between the client and the gateway do not cut a long call; the only limit on the
upstream is its server's inactivity timeout (`McpBackend`), never a total duration. A caller that
goes away closes the upstream stream (in the 2026-07-28 era that is how a request is cancelled). The
server's `auth_data` values are scrubbed from everything relayed.

On a request that writes a log row (`tools/call`), the answer the client got is the row's response
body when bodies are kept: the JSON message, or out of an SSE stream the response to the request (not
the progress notifications before it), scrubbed as relayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from relaygate.errors import scrub
from relaygate.http.disconnect import DisconnectWatcher
from relaygate.mcp.jsonrpc import RequestId, is_response, result_response
from relaygate.mcp.sse_reader import SseEvent
from relaygate.mcp.upstream import BackendError, SseEventStream
from relaygate.wire_types import JSON

if TYPE_CHECKING:
    from relaygate.pipeline.call import Call

KEEPALIVE_SECONDS = 15.0
KEEPALIVE = b": keep-alive\n\n"
_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


def _headers(call: Call, base: list[tuple[bytes, bytes]], extra: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    headers = [*base, *call.base_headers]
    for name, value in (extra or {}).items():
        headers.append((name.encode("latin-1"), value.encode("latin-1")))
    return headers


async def send_json(call: Call, body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
    """One JSON-RPC message (or an error body) as `application/json`."""
    call.ctx.status = status
    if call.row and call.ctx.log_bodies:
        call.ctx.response_body = body
    sized = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]  # whole: not sent chunked
    await call.send({"type": "http.response.start", "status": status, "headers": _headers(call, sized, headers)})
    await call.send({"type": "http.response.body", "body": body, "more_body": False})


async def send_message(call: Call, message: JSON, secrets: tuple[bytes, ...] = (), raw: bytes | None = None) -> None:
    """A JSON-RPC message from an upstream, scrubbed of its credentials; `raw`, the bytes it was parsed
    from, is relayed as it came rather than serialised again."""
    await send_json(call, scrub(orjson.dumps(message) if raw is None else raw, secrets))


async def send_result(call: Call, request_id: RequestId, result: object) -> None:
    """A JSON-RPC result the gateway makes itself."""
    await send_json(call, result_response(request_id, result))


async def send_empty(call: Call, status: int) -> None:
    """202 (a notification or a response accepted) or 204 (a session ended): no body."""
    call.ctx.status = status
    await call.send({"type": "http.response.start", "status": status, "headers": list(call.base_headers)})
    await call.send({"type": "http.response.body", "body": b"", "more_body": False})


async def relay_events(
    call: Call,
    events: SseEventStream,
    secrets: tuple[bytes, ...] = (),
    on_message: Callable[[JSON], None] | None = None,
    failure: Callable[[BackendError], bytes] | None = None,
    rewrite: Callable[[JSON], Awaitable[JSON | None]] | None = None,
) -> None:
    """Relay an upstream event stream as it arrives, with keep-alive comments while it is quiet.

    `on_message` sees each JSON-RPC message (the answer's outcome is read from it). When the upstream
    breaks or goes silent for its inactivity timeout, `failure` gives the JSON-RPC error that ends the
    client's stream as one last event (so the client's request fails cleanly instead of hanging);
    without it the stream is cut. Either way the row is marked truncated and the upstream connection
    is released. `rewrite` may replace a message (the post-invoke guardrails' verdict on a result):
    the event is then sent as that message instead.
    """
    ctx = call.ctx
    ctx.status = 200
    ctx.streaming = True
    keep_answer = call.row and ctx.log_bodies
    await call.send({"type": "http.response.start", "status": 200, "headers": _headers(call, _SSE_HEADERS, None)})
    pending: asyncio.Future[SseEvent] | None = None
    watcher = DisconnectWatcher(call.receive)  # a caller that leaves ends the upstream stream too
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait((pending,), timeout=KEEPALIVE_SECONDS)
            if not done:
                await call.send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
                continue
            pending = None
            try:
                event = done.pop().result()
            except StopAsyncIteration:
                break
            if ctx.ttft_ms is None:
                ctx.ttft_ms = ctx.elapsed_ms()
            raw = event.raw
            if isinstance(event.message, dict):
                if on_message is not None:
                    on_message(event.message)
                replaced = await rewrite(event.message) if rewrite is not None else None
                data = event.data if replaced is None else orjson.dumps(replaced)
                if replaced is not None:
                    raw = _event(data)
                if keep_answer and is_response(event.message):
                    ctx.response_body = scrub(data, secrets)
            await call.send({"type": "http.response.body", "body": scrub(raw, secrets), "more_body": True})
        await call.send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not watcher.disconnected:
            raise
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        ctx.status = 499
        ctx.error_type = "client_disconnected"
    except BackendError as exc:
        ctx.truncated = True
        ctx.error_type = "upstream_error"
        ctx.error_message = exc.reason
        if failure is not None:
            answer = failure(exc)
            if keep_answer:
                ctx.response_body = answer
            await call.send({"type": "http.response.body", "body": _event(answer), "more_body": False})
    finally:
        watcher.stop()
        if pending is not None:
            pending.cancel()
        await events.aclose()
        ctx.last_chunk_ms = ctx.elapsed_ms()


def _event(data: bytes) -> bytes:
    """One JSON-RPC message as an SSE `message` event."""
    return b"event: message\ndata: " + data + b"\n\n"
