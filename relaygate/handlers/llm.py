"""The OpenAI-compatible endpoints: authenticate, resolve the model, check access, call, relay, log.

One parse of the request body (orjson); the upstream body is the same dict with `model` rewritten.
Streams are relayed chunk by chunk; the log row is queued after the answer is on its way.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.auth.access import may_call
from relaygate.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    GatewayTimeout,
    NotFound,
    RequestTimeout,
    UnsupportedModelType,
    UpstreamError,
    scrub,
)
from relaygate.http import multipart
from relaygate.http.body import read_body
from relaygate.http.disconnect import DisconnectWatcher
from relaygate.http.headers import header, parse_logging_enabled, parse_metadata, parse_timeout_ms
from relaygate.http.responses import send_bytes
from relaygate.http.sse import StreamFilter, read_usage
from relaygate.providers.base import Operation, Target, UpstreamCall, UpstreamResponse

if TYPE_CHECKING:
    from relaygate.app import Gateway
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.http.types import RawHeaders, Receive, Scope, Send

ERROR_BODY_LIMIT = 1 << 20


async def authenticate(gateway: Gateway, scope: Scope, ctx: RequestContext) -> Principal:
    """The caller's principal under the current config (401 for every kind of bad token)."""
    from relaygate.http.headers import bearer_token

    started = time.perf_counter()
    record = await gateway.authenticator.authenticate_token(bearer_token(scope))
    principal = gateway.snapshot.principal(record)
    ctx.subject = principal.subject
    ctx.token_id = f"rg-{principal.token_id}"  # the public id `tokens list` shows, never the secret
    ctx.timings.auth = (time.perf_counter() - started) * 1000.0
    return principal


def _parse_json_body(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("request body must be valid JSON", code="invalid_json")
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return payload


def resolve(gateway: Gateway, principal: Principal, model: object, operation: Operation) -> Target:
    """The target for `model`: 404 unknown, 400 wrong type, 403 not allowed."""
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: name a model as {account}/{integration}", param="model",
                         code="missing_model")
    target = gateway.snapshot.models.get(model)
    if target is None:
        raise NotFound(f"model '{model}' is not configured on this gateway", code="model_not_found")
    if operation.model_type not in target.model_types:
        raise UnsupportedModelType(
            f"model '{model}' does not support {operation.model_type} (it lists: "
            f"{', '.join(sorted(target.model_types))})",
            param="model",
        )
    if not may_call(principal, target.name, target.account, target.access):
        raise Forbidden(f"your token may not call model '{model}'", code="model_access_denied")
    return target


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
    ctx.metadata = parse_metadata(header(scope, b"x-tfy-metadata"))
    ctx.log_bodies = parse_logging_enabled(header(scope, b"x-tfy-logging-config"))
    timeout = parse_timeout_ms(header(scope, b"x-tfy-request-timeout"), "x-tfy-request-timeout")
    ttft_timeout = parse_timeout_ms(header(scope, b"x-tfy-ttft-timeout-ms"), "x-tfy-ttft-timeout-ms")
    body = await read_body(scope, receive, gateway.settings.max_request_body_bytes)
    ctx.request_body = body

    started = time.perf_counter()
    payload: dict[str, Any] | None
    content_type = header(scope, b"content-type")
    if operation.multipart:
        boundary = multipart.boundary_of(content_type)
        model: object = multipart.read_field(body, boundary, b"model")
        payload = None
    else:
        payload = _parse_json_body(body)
        model = payload.get("model")
    ctx.requested_model = model if isinstance(model, str) else None
    target = resolve(gateway, principal, model, operation)
    ctx.target = target
    ctx.resolved_model = target.name
    ctx.provider = target.provider
    ctx.model_type = operation.model_type

    wants_usage = False
    raw_body = b""
    if payload is not None:
        payload["model"] = target.model_id
        stream = operation.streams and payload.get("stream") is True
        if stream:
            options = payload.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            wants_usage = options.get("include_usage") is True
            options["include_usage"] = True
            payload["stream_options"] = options
    else:
        stream = False
        raw_body = multipart.replace_field(body, boundary, b"model", target.model_id)
    ctx.streaming = stream
    call = UpstreamCall(target, operation, payload, raw_body, content_type, stream,
                        timeout or gateway.settings.request_timeout, ctx.request_id)
    ctx.timings.loadbalance = (time.perf_counter() - started) * 1000.0
    headers = [*base_headers, (b"x-tfy-resolved-model", target.name.encode())]

    model_started = time.perf_counter()
    if stream:
        await _stream(gateway, receive, send, call, ctx, headers, wants_usage, ttft_timeout)
        return
    try:
        async with asyncio.timeout(call.timeout):
            response = await gateway.adapter_open(call)
            try:
                await _check_status(response, target)
                answer = await response.read()
            finally:
                response.close()
    except TimeoutError:
        raise GatewayTimeout(f"the upstream of model {target.name} did not answer within {call.timeout:g}s")
    ctx.timings.model = (time.perf_counter() - model_started) * 1000.0
    ctx.status = response.status
    if not operation.binary_response and answer[:1] == b"{":
        try:
            parsed = orjson.loads(answer)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            read_usage(parsed.get("usage"), ctx.usage)
    ctx.response_body = answer
    headers.append((b"server-timing", ctx.timings.header(ctx.elapsed_ms())))
    await send_bytes(send, response.status, answer, response.content_type.encode("latin-1"), headers)


async def _check_status(response: UpstreamResponse, target: Target) -> None:
    """Upstream errors pass through with their status and message, credentials scrubbed."""
    if response.status < 400:
        return
    raw = await response.read()
    raise UpstreamError(response.status, scrub(raw[:ERROR_BODY_LIMIT], target.secrets), response.content_type)


async def _stream(
    gateway: Gateway,
    receive: Receive,
    send: Send,
    call: UpstreamCall,
    ctx: RequestContext,
    headers: RawHeaders,
    wants_usage: bool,
    ttft_timeout: float | None,
) -> None:
    """Relay SSE as it arrives. Nothing is sent before the first content bytes exist, so until then
    every failure is a plain error response (408 past the TTFT limit, 504 past the attempt timeout).
    A caller that goes away cancels the upstream read (logged as 499)."""
    target = call.target
    stream_filter = StreamFilter(wants_usage, ctx.usage)
    watcher = DisconnectWatcher(receive)
    response: UpstreamResponse | None = None
    try:
        first_deadline = call.timeout if ttft_timeout is None else min(ttft_timeout, call.timeout or ttft_timeout)
        try:
            async with asyncio.timeout(first_deadline):
                response = await gateway.adapter_open(call)
                await _check_status(response, target)
                chunks = response.iter_chunks().__aiter__()
                first = await _first_output(chunks, stream_filter)
        except TimeoutError:
            if ttft_timeout is not None and ttft_timeout <= (call.timeout or ttft_timeout):
                raise RequestTimeout(f"model {target.name} sent no first token within {ttft_timeout * 1000:g} ms")
            raise GatewayTimeout(f"the upstream of model {target.name} did not answer within {call.timeout:g}s")
        ctx.status = response.status
        ctx.ttft_ms = ctx.elapsed_ms()
        ctx.timings.model = ctx.ttft_ms
        await send({
            "type": "http.response.start",
            "status": response.status,
            "headers": [(b"content-type", response.content_type.encode("latin-1")),
                        (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"), *headers],
        })
        await _relay_rest(gateway, send, chunks, first, stream_filter, ctx)
    except asyncio.CancelledError:
        if not watcher.disconnected:
            raise
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        ctx.status = 499
        ctx.error_type = "client_disconnected"
    finally:
        watcher.stop()
        if response is not None:
            response.close()


async def _first_output(chunks: Any, stream_filter: StreamFilter) -> bytes:
    """Read until the filter yields bytes for the client (or the stream ends)."""
    async for chunk in chunks:
        out = stream_filter.feed(chunk)
        if out:
            return out
    return stream_filter.flush()


async def _relay_rest(
    gateway: Gateway,
    send: Send,
    chunks: Any,
    first: bytes,
    stream_filter: StreamFilter,
    ctx: RequestContext,
) -> None:
    """Relay the stream after its first bytes; failures end it with an error event and no [DONE]."""
    log_chunks: list[bytes] | None = [first] if ctx.log_bodies else None
    logged = len(first)
    limit = gateway.settings.log_body_max_bytes
    try:
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        async for chunk in chunks:
            out = stream_filter.feed(chunk)
            if out:
                if log_chunks is not None and logged < limit:
                    log_chunks.append(out)
                    logged += len(out)
                await send({"type": "http.response.body", "body": out, "more_body": True})
        tail = stream_filter.flush()
        if tail:
            await send({"type": "http.response.body", "body": tail, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if stream_filter.error is not None:
            ctx.truncated = True
            ctx.error_type = str(stream_filter.error.get("type") or "upstream_error")
            ctx.error_message = str(stream_filter.error.get("message") or "upstream error event mid-stream")
    except GatewayError as exc:
        # Content is already with the client: end the stream with an error event, no [DONE].
        ctx.truncated = True
        ctx.error_type = exc.type
        ctx.error_message = exc.message
        event = b"data: " + exc.body() + b"\n\n"
        await send({"type": "http.response.body", "body": event, "more_body": False})
    finally:
        if log_chunks is not None:
            ctx.response_body = b"".join(log_chunks)
