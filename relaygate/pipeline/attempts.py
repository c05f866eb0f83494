"""One attempt of an LLM call against one target, as the router sees it (an `Outcome`).

A non-streaming attempt reads the whole answer. A streaming attempt opens the stream and reads up
to its first content bytes: until then a failure is still an outcome the router may retry or fall
back from; after that the stream belongs to the caller (see `relay_stream`).

The caller's wire dialect (OpenAI chat chunks, or Anthropic Messages events for `/messages`) is a
`Dialect` (`relaygate/dialects/`): how a stream is filtered (usage, error events), what counts as its
first content, and how a failure after content is said. A `CallSpec.opener` replaces the default "build the call,
open the adapter" when one request needs different upstream calls per target (the Messages API).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.dialects.base import Dialect, SSEFilter
from relaygate.dialects.openai import OPENAI
from relaygate.errors import BadGateway, GatewayError, GatewayTimeout, RequestTimeout, UpstreamError, scrub
from relaygate.guardrails.stream.buffer import KEEP_ALIVE
from relaygate.http import multipart
from relaygate.providers.base import Operation, UpstreamCall, UpstreamResponse
from relaygate.routing.router import Outcome, attempt_limit, deadline_outcome
from relaygate.upstream.caps import AnswerCaps
from relaygate.upstream.relay import ERROR_BODY_LIMIT
from relaygate.upstream.retry_after import parse_retry_after

KEEP_ALIVE_SECONDS = 5.0

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.http.types import Send
    from relaygate.pipeline.cache_record import CacheRecord
    from relaygate.pipeline.guard_stream import StreamTap
    from relaygate.runtime.targets import Target
    from relaygate.runtime.virtual import TargetOverrides


@dataclass(slots=True)
class Answer:
    """A complete non-streaming answer."""

    status: int
    content_type: str
    body: bytes
    parsed: dict[str, Any] | None = None  # the object a translating adapter serialised `body` from


@dataclass(slots=True)
class StreamStart:
    """An open stream whose first content bytes are already read."""

    response: UpstreamResponse
    chunks: AsyncIterator[bytes]
    first: bytes
    filter: SSEFilter
    dialect: Dialect

    @property
    def status(self) -> int:
        return self.response.status


@dataclass(slots=True)
class CallSpec:
    """Everything about the request that is the same for every attempt."""

    operation: Operation
    payload: dict[str, Any] | None  # parsed JSON body, stream options already set
    raw_body: bytes  # multipart body as received
    boundary: bytes | None
    content_type: bytes | None
    stream: bool
    wants_usage: bool
    attempt_timeout: float
    caller_timeout: bool  # the attempt timeout came from x-tfy-request-timeout
    ttft_timeout: float | None
    request_id: str
    single_target: bool  # the payload may be changed in place (no second attempt needs it)
    # `time.monotonic()` by which every attempt must be over: the routing's overall deadline
    # (`Routing.deadline`), so retries and fallbacks together never outlast it. None: attempts are
    # bounded by `attempt_timeout` only (the router still checks its deadline between attempts).
    deadline: float | None = None
    strict_openai: bool = True  # x-tfy-strict-openai (false: provider extras such as thinking blocks)
    dialect: Dialect | None = None  # None: OpenAI chat chunks
    # How one attempt opens its target; None: `build_call` and the target's adapter.
    opener: Callable[[Gateway, CallSpec, TargetOverrides], Awaitable[UpstreamResponse]] | None = None

    def limit(self) -> tuple[float, bool]:
        """Seconds this attempt may take, and whether the overall deadline (not the attempt timeout) set it."""
        return attempt_limit(self.attempt_timeout, self.deadline)

    def upstream_call(
        self,
        target: Target,
        payload: dict[str, Any] | None,
        caps: AnswerCaps,
        *,
        operation: Operation | None = None,
        stream: bool | None = None,
        raw_body: bytes = b"",
        strict_openai: bool = True,
        inbound_headers: tuple[tuple[str, str], ...] = (),
    ) -> UpstreamCall:
        """One attempt's call to `target`: this request's timeout, id and content type, the rest as given
        (the operation and streaming default to the request's own)."""
        return UpstreamCall(
            target,
            self.operation if operation is None else operation,
            payload,
            raw_body,
            self.content_type,
            self.stream if stream is None else stream,
            self.attempt_timeout,
            self.request_id,
            strict_openai,
            inbound_headers,
            caps,
        )


def build_call(spec: CallSpec, overrides: TargetOverrides, caps: AnswerCaps) -> UpstreamCall:
    """The upstream call for one target: model id rewritten, `override_params` applied."""
    target = overrides.target
    if spec.payload is not None:
        payload = spec.payload if spec.single_target else dict(spec.payload)
        payload["model"] = target.model_id
        if overrides.override_params:
            payload.update(overrides.override_params)
        return spec.upstream_call(target, payload, caps, strict_openai=spec.strict_openai)
    assert spec.boundary is not None
    raw = multipart.replace_field(spec.raw_body, spec.boundary, b"model", target.model_id)
    return spec.upstream_call(target, None, caps, stream=False, raw_body=raw)


async def _open(gateway: Gateway, spec: CallSpec, overrides: TargetOverrides) -> UpstreamResponse:
    if spec.opener is not None:
        return await spec.opener(gateway, spec, overrides)
    return await gateway.adapter_open(build_call(spec, overrides, gateway.answer_caps))


async def _error_outcome(response: UpstreamResponse, overrides: TargetOverrides) -> Outcome[Any]:
    raw = await response.read()  # an error answer is read up to ERROR_BODY_LIMIT (see relay.HTTPUpstreamResponse)
    response.close()
    error = UpstreamError(
        response.status, scrub(raw[:ERROR_BODY_LIMIT], overrides.target.secrets), response.content_type
    )
    retry_after = parse_retry_after(response.retry_after)
    if retry_after is not None and response.retry_after:
        error.headers["retry-after"] = response.retry_after  # the caller's SDK backs off by it too
    return Outcome(status=response.status, error=error, retry_after=retry_after)


def _timeout_outcome(spec: CallSpec, overrides: TargetOverrides, error: GatewayError) -> Outcome[Any]:
    # A timeout the caller chose still falls back, but says nothing about the target's health.
    if spec.caller_timeout or isinstance(error, RequestTimeout):
        return Outcome(
            status=error.status if isinstance(error, RequestTimeout) else None, error=error, always_fallback=True
        )
    return Outcome(error=error, network_error=True)


def _abandon(response: UpstreamResponse | None) -> None:
    """The attempt was cancelled (the caller left, or the server's drain period ran out) in any phase:
    waiting for the upstream's headers (aiohttp closes that connection itself), or with headers but
    no body or first event yet: the upstream connection is closed now, not when its first byte comes."""
    if response is not None:
        response.close()


def _transport_failure(response: UpstreamResponse | None, exc: GatewayError) -> Outcome[Any]:
    """A failure before an answer existed (connect, reset, broken framing): network errors fall back."""
    if response is not None:
        response.close()
    return Outcome(error=exc, network_error=exc.status in (502, 503, 504))


async def attempt_answer(gateway: Gateway, spec: CallSpec, overrides: TargetOverrides) -> Outcome[Answer]:
    """A non-streaming attempt: the whole answer, or why there is none."""
    limit, by_deadline = spec.limit()
    response: UpstreamResponse | None = None
    try:
        async with asyncio.timeout(limit):
            response = await _open(gateway, spec, overrides)
            if response.status >= 400:
                return await _error_outcome(response, overrides)
            body = await response.read()
    except TimeoutError:
        if response is not None:
            response.close()
        if by_deadline:
            return deadline_outcome()
        name = overrides.target.name
        return _timeout_outcome(
            spec,
            overrides,
            GatewayTimeout(f"the upstream of model {name} did not answer within {spec.attempt_timeout:g}s"),
        )
    except GatewayError as exc:
        return _transport_failure(response, exc)
    except BaseException:
        _abandon(response)
        raise
    response.close()
    return Outcome(status=response.status, result=Answer(response.status, response.content_type, body, response.parsed))


async def attempt_stream(gateway: Gateway, spec: CallSpec, overrides: TargetOverrides) -> Outcome[StreamStart]:
    """A streaming attempt up to its first content bytes (408 past the TTFT limit)."""
    limit, by_deadline = spec.limit()
    ttft = spec.ttft_timeout
    first_limit = limit if ttft is None else min(ttft, limit)
    dialect = spec.dialect or OPENAI
    stream_filter = dialect.new_filter(spec.wants_usage, gateway.answer_caps.sse_line_bytes)
    response: UpstreamResponse | None = None
    name = overrides.target.name
    try:
        async with asyncio.timeout(first_limit):
            response = await _open(gateway, spec, overrides)
            if response.status >= 400:
                return await _error_outcome(response, overrides)
            chunks = response.iter_chunks().__aiter__()
            first, failed = await _first_output(chunks, stream_filter, dialect.first_verdict)
    except TimeoutError:
        if response is not None:
            response.close()
        if ttft is not None and ttft <= limit:
            return _timeout_outcome(
                spec, overrides, RequestTimeout(f"model {name} sent no first token within {ttft * 1000:g} ms")
            )
        if by_deadline:
            return deadline_outcome()
        return _timeout_outcome(
            spec, overrides, GatewayTimeout(f"the upstream of model {name} did not answer within {limit:g}s")
        )
    except GatewayError as exc:
        return _transport_failure(response, exc)
    except BaseException:
        _abandon(response)
        raise
    if failed:  # an error event (or the end) before any content: nothing reached the client
        response.close()
        if stream_filter.error is None:
            return Outcome(
                error=BadGateway(f"the upstream of model {name} ended its stream before any content"),
                network_error=True,
            )
        body = scrub(orjson.dumps({"error": stream_filter.error}), overrides.target.secrets)
        status = stream_error_status(stream_filter.error)
        if status is None:  # an unnamed failure: as a broken connection would be
            return Outcome(error=UpstreamError(502, body), network_error=True)
        # A named error (rate limited, overloaded, bad request...) is what that HTTP status would be:
        # the same retries, fallbacks and cooldowns, and the caller gets that status.
        return Outcome(status=status, error=UpstreamError(status, body))
    return Outcome(status=response.status, result=StreamStart(response, chunks, first, stream_filter, dialect))


# Error `code`s and `type`s that stream error events carry (OpenAI's, and those the adapters translate
# Anthropic, Google, Bedrock and Cohere errors to), lower-cased -> the HTTP status they stand for.
_STREAM_ERROR_STATUS = {
    **dict.fromkeys(
        (
            "rate_limit_error",
            "rate_limit_exceeded",
            "resource_exhausted",
            "throttlingexception",
            "too_many_requests",
            "insufficient_quota",
        ),
        429,
    ),
    **dict.fromkeys(
        (
            "overloaded_error",
            "service_unavailable",
            "unavailable",
            "serviceunavailableexception",
            "modelnotreadyexception",
        ),
        503,
    ),
    **dict.fromkeys(("timeout_error", "upstream_timeout", "deadline_exceeded", "modeltimeoutexception"), 504),
    **dict.fromkeys(
        ("invalid_request_error", "invalid_argument", "validationexception", "context_length_exceeded"), 400
    ),
    **dict.fromkeys(("authentication_error", "unauthenticated", "invalid_api_key"), 401),
    **dict.fromkeys(("permission_error", "permission_denied", "accessdeniedexception"), 403),
    **dict.fromkeys(("not_found_error", "not_found", "resourcenotfoundexception", "model_not_found"), 404),
}


def stream_error_status(error: dict[str, object]) -> int | None:
    """The HTTP status a stream's error event stands for, by its `code` (more specific) then its
    `type`; None when neither names a known error."""
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str):
            status = _STREAM_ERROR_STATUS.get(value.lower())
            if status is not None:
                return status
    return None


async def _first_output(
    chunks: AsyncIterator[bytes], stream_filter: SSEFilter, verdict_of: Callable[[bytes], str | None]
) -> tuple[bytes, bool]:
    """Read until the client can be sent content: (bytes to send, whether the stream failed before content).

    Preamble events (the role-only first delta, Azure's prompt-filter chunk) are held back with the
    first content, so an upstream that fails right after its preamble can still be fallen back from.
    An error event before any content is such a failure (the upstream said 200, then gave up).
    """
    pending: list[bytes] = []
    async for chunk in chunks:
        out = stream_filter.feed(chunk)
        if not out:
            continue
        pending.append(out)
        verdict = verdict_of(out)
        if verdict is not None:
            return b"".join(pending), verdict == "error"
    pending.append(stream_filter.flush())
    # ended (cleanly) before any content or [DONE]
    return b"".join(pending), not any(verdict_of(out) == "content" for out in pending)


def discard(result: Answer | StreamStart) -> None:
    """Drop an outcome the router moved past."""
    if isinstance(result, StreamStart):
        result.response.close()


async def relay_stream(
    gateway: Gateway,
    send: Send,
    start: StreamStart,
    ctx: RequestContext,
    record: CacheRecord | None = None,
    tap: StreamTap | None = None,
) -> None:
    """Relay the rest of a stream; failures after content end it with an error event, no [DONE].
    `record` keeps a copy of what was sent for the response cache; `tap` is the output guardrails'
    say on what is sent (`pipeline/guard_stream.py`)."""
    stream_filter = start.filter
    ctx.usage = stream_filter.usage
    log_chunks: list[bytes] | None = [] if ctx.log_bodies else None
    logged = 0
    limit = gateway.settings.log_body_max_bytes
    relay_started = ctx.elapsed_ms()

    def passed(out: bytes) -> bytes:
        """`out` through the output guardrails (raising their block), then kept for the log and the cache."""
        nonlocal logged
        if tap is not None:
            out = tap.feed(out)
            if tap.blocked is not None:
                raise tap.blocked
        if out:
            if log_chunks is not None and logged < limit:
                log_chunks.append(out)
                logged += len(out)
            if record is not None:
                record.add(out)
        return out

    try:
        if start.first and (out := passed(start.first)):
            await send({"type": "http.response.body", "body": out, "more_body": True})
        if tap is None and record is None:  # the common path, as lean as before guardrails and the cache
            async for chunk in start.chunks:
                out = stream_filter.feed(chunk)
                if out:
                    if log_chunks is not None and logged < limit:
                        log_chunks.append(out)
                        logged += len(out)
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        else:
            chunks: AsyncIterator[bytes | None] = (
                start.chunks if tap is None or not tap.holding else _with_keep_alives(start.chunks, send)
            )
            async for piece in chunks:  # None: a keep-alive went out
                if piece is not None and (out := stream_filter.feed(piece)) and (out := passed(out)):
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        tail = stream_filter.flush()
        if tail and (out := passed(tail)):
            await send({"type": "http.response.body", "body": out, "more_body": True})
        if tap is not None and stream_filter.error is None:
            rest = await tap.finish()
            if tap.blocked is not None:
                raise tap.blocked
            tap = None  # the tap already decided these bytes
            if rest and (out := passed(rest)):
                await send({"type": "http.response.body", "body": out, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if stream_filter.error is not None:
            ctx.truncated = True
            ctx.error_type = str(stream_filter.error.get("type") or "upstream_error")
            ctx.error_message = str(stream_filter.error.get("message") or "upstream error event mid-stream")
    except GatewayError as exc:
        ctx.truncated = True
        ctx.error_type = exc.type
        ctx.error_message = exc.message
        event = start.dialect.error_event(exc)
        await send({"type": "http.response.body", "body": event, "more_body": False})
    finally:
        start.response.close()
        ctx.last_chunk_ms = ended = ctx.elapsed_ms()
        ctx.upstream_ms = (ctx.upstream_ms or 0.0) + ended - relay_started  # the relay waits on the upstream
        if log_chunks is not None:
            ctx.response_body = b"".join(log_chunks)


async def _with_keep_alives(chunks: AsyncIterator[bytes], send: Send) -> AsyncIterator[bytes | None]:
    """The upstream's chunks; while none comes for KEEP_ALIVE_SECONDS, an SSE comment goes to the client
    (a stream held whole for its guardrails must not look dead to proxies), and None is yielded."""
    iterator = chunks.__aiter__()
    pending: asyncio.Task[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait((pending,), timeout=KEEP_ALIVE_SECONDS)
            if not done:
                await send({"type": "http.response.body", "body": KEEP_ALIVE, "more_body": True})
                yield None
                continue
            task, pending = pending, None
            try:
                chunk = task.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
