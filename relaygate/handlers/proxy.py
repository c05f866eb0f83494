"""Custom endpoints: the transparent proxy at `/proxy-api/{account}/{endpoint-or-slug}/{path}`.

Bytes in, bytes out: the body is never parsed; method, path, query, headers and body go upstream
with the endpoint's credentials injected and the caller's token removed; the answer (redirects and
compressed bodies included) comes back as received. Slug URLs run the account's pool through the
shared router (weight/priority, fallback, cooldown).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from relaygate.auth.access import Principal
from relaygate.errors import BadGateway, Forbidden, GatewayTimeout, NotFound, PayloadTooLarge, scrub
from relaygate.http.body import ClientDisconnected
from relaygate.http.disconnect import DisconnectWatcher
from relaygate.http.forwarding import query_without_token, request_headers, response_headers
from relaygate.http.headers import bearer_token, header, parse_timeout_ms
from relaygate.http.paths import ProxyPath, split_proxy_path
from relaygate.http.redaction import ERROR_BODY_LIMIT, error_body_scrubbable, read_capped, scrub_headers, with_length
from relaygate.pipeline.admission import admit, settle_later
from relaygate.pipeline.authenticate import authenticate, read_logging_headers
from relaygate.routing.plan import PlannedAttempt, RouteTarget, plan_attempts
from relaygate.routing.router import Outcome, RouteResult, attempt_limit, deadline_outcome, run_plan
from relaygate.upstream.errors import NETWORK_ERRORS, endpoint_broke_message, endpoint_open_error
from relaygate.upstream.hops import chained_via
from relaygate.upstream.request_body import RequestBody
from relaygate.upstream.retry_after import parse_retry_after

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.http.types import RawHeaders, Send
    from relaygate.pipeline.call import Call
    from relaygate.runtime.proxy import ProxyAccount, ProxyEndpoint

_SMALL_BODY = 64 * 1024  # answers up to this size (with a Content-Length) are read whole and sent at once
# aiohttp adds these when the caller did not send them; a transparent proxy must not.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type")


def endpoint_url(endpoint: ProxyEndpoint, remaining_path: bytes, query: bytes) -> URL:
    """`base_url` + the remaining path (from its leading `/`) byte for byte + the query unchanged.

    Built from parts, so no path or query content can move the request to another host.
    """
    path = (endpoint.base_path + remaining_path.decode("latin-1")) or "/"
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host  # an IPv6 literal, bracketed when encoded
    return URL.build(
        scheme=endpoint.scheme,
        host=host,
        port=endpoint.port,
        path=path,
        query_string=query.decode("latin-1"),
        encoded=True,
    )


def _may_use(principal: Principal, account: ProxyAccount, endpoint: ProxyEndpoint | None, second: str) -> bool:
    """Account-level access (collaborators, or a virtual account's `allowed_endpoints` listing), narrowed
    on endpoint URLs by the endpoint's `authorized_subjects` (not consulted for slug URLs)."""
    if principal.is_virtual_account:
        grant = principal.grant
        if grant is None or not (
            account.name in grant.endpoint_accounts or f"{account.name}/{second}" in grant.endpoints
        ):
            return False
    else:
        collaborators = account.access.collaborators
        if collaborators is not None and principal.subjects.isdisjoint(collaborators):
            return False
    return (
        endpoint is None
        or endpoint.authorized_subjects is None
        or not principal.subjects.isdisjoint(endpoint.authorized_subjects)
    )


async def handle(call: Call) -> None:
    """Serve one custom-endpoint request; gateway errors propagate to the dispatcher."""
    gateway, scope, ctx = call.gateway, call.scope, call.ctx
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    path = split_proxy_path(raw_path)
    principal = await authenticate(call)
    ctx.operation = "proxy"
    ctx.requested_model = f"{path.account}/{path.second}"
    ctx.provider = "custom-endpoint"
    account = gateway.snapshot.proxies.get(path.account)
    if account is None:
        raise NotFound(f"custom endpoint account '{path.account}' is not configured", code="endpoint_not_found")
    ctx.extra["endpoint_type"] = account.endpoint_type  # tracking only (the reference): on every row of the account
    pooled = account.slug is not None and path.second == account.slug
    endpoint = None if pooled else account.endpoints.get(path.second)
    if not pooled and endpoint is None:
        raise NotFound(f"endpoint '{path.second}' is not configured in '{path.account}'", code="endpoint_not_found")
    if not _may_use(principal, account, endpoint, path.second):
        raise Forbidden(f"your token may not call '{path.account}/{path.second}'", code="endpoint_access_denied")
    # Proxied bodies are arbitrary bytes: never logged (the row keeps sizes, not contents).
    read_logging_headers(call, bodies_allowed=False)
    # Custom-endpoint traffic counts under `{account}/{endpoint-or-slug}` (requests only: bodies are opaque).
    reservation = await admit(gateway, ctx, principal, ctx.requested_model, None, None)
    try:
        await _serve(call, path, account, endpoint, pooled)
    finally:
        settle_later(gateway, reservation, ctx)


async def _serve(
    call: Call, path: ProxyPath, account: ProxyAccount, endpoint: ProxyEndpoint | None, pooled: bool
) -> None:
    """Call the endpoint (or the pool) and relay its answer."""
    gateway, scope, receive, ctx = call.gateway, call.scope, call.receive, call.ctx
    caller_timeout = parse_timeout_ms(header(scope, b"x-tfy-request-timeout"), "x-tfy-request-timeout")
    timeout = caller_timeout or gateway.settings.request_timeout

    body = RequestBody(scope, receive, gateway.settings.max_request_body_bytes)
    await body.prepare()
    token = bearer_token(scope)
    token_bytes = token.encode("latin-1") if token else None
    query = query_without_token(scope.get("query_string", b""), token_bytes)
    session = gateway.session
    assert session is not None
    # One overall deadline for every attempt, as for virtual models (llm_routing.plan_for).
    deadline = time.monotonic() + gateway.settings.request_timeout

    def refused_body() -> None:
        """The body's own failures end the request, whichever endpoint was being tried."""
        if body.too_large:
            raise PayloadTooLarge(f"request body exceeds the limit of {body.limit} bytes")
        if body.disconnected:
            raise ClientDisconnected()

    async def attempt(target: RouteTarget) -> Outcome[aiohttp.ClientResponse]:
        chosen = account.endpoints[target.name]
        if not body.replayable:
            return Outcome(
                error=BadGateway("the request body was streamed to a failed endpoint and cannot be replayed"),
                replayable=False,
            )
        headers = request_headers(scope["headers"], token_bytes, chosen.headers, chosen.header_names)
        if (via := chained_via()) is not None:  # it arrived with a Via chain: this gateway joins it (hops.py)
            headers = [(name, value) for name, value in headers if name.lower() != "via"]
            headers.append(("Via", via))
        if body.held is None and body.declared is not None and not body.chunked:
            headers.append(("Content-Length", str(body.declared)))  # streamed with the length it arrived with
        limit, by_deadline = attempt_limit(timeout, deadline)
        try:
            async with asyncio.timeout(limit):
                response = await session.request(
                    scope["method"],
                    endpoint_url(chosen, path.remaining, query),
                    headers=headers,
                    data=body.payload(),
                    allow_redirects=False,
                    auto_decompress=False,
                    ssl=chosen.ssl,
                    skip_auto_headers=_NO_AUTO_HEADERS,
                )
        except TimeoutError:
            refused_body()
            if by_deadline:
                return deadline_outcome()
            # A caller-set deadline falls back but says nothing about the endpoint's health.
            return Outcome(
                error=GatewayTimeout(f"endpoint {chosen.account}/{chosen.name} did not answer within {timeout:g}s"),
                network_error=caller_timeout is None,
                always_fallback=True,
                replayable=body.replayable,
            )
        except NETWORK_ERRORS as exc:
            refused_body()
            return Outcome(
                error=endpoint_open_error(exc, f"{chosen.account}/{chosen.name}"),
                network_error=True,
                replayable=body.replayable,
            )
        if body.too_large:
            response.close()
            refused_body()
        if not 100 <= response.status <= 599:
            # Not HTTP (no reason phrase, no client knows it): a broken upstream, as a garbage status line is.
            response.close()
            return Outcome(
                error=BadGateway(
                    f"endpoint {chosen.account}/{chosen.name} answered with status {response.status}, outside 100-599"
                ),
                network_error=True,
                replayable=body.replayable,
            )
        return Outcome(
            status=response.status,
            result=response,
            replayable=body.replayable,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    health = gateway.health
    if pooled:
        assert account.strategy is not None
        plan = plan_attempts(account.pool, account.strategy, health, gateway.rng)
    else:
        assert endpoint is not None
        plan = [PlannedAttempt(endpoint.route, health.is_cooled(endpoint.route.key))]
    # A caller that goes away cancels the attempts and the relay (logged as 499), in every phase. A held
    # body leaves `receive` free at once; a streamed one hands it over after its last byte, or passes
    # on the disconnect its reader saw mid-upload (the upstream may have answered already).
    watcher = DisconnectWatcher(receive if body.complete else body.receive_after_body)
    relaying = False
    try:
        route = await run_plan(plan, attempt, health, discard=_discard, deadline=deadline)
        _annotate(ctx, account, path.second if pooled else None, route, body.size)
        outcome = route.outcome
        if outcome.result is None:
            raise outcome.error or BadGateway("no endpoint answered")
        relaying = True
        await _relay(call.send, outcome.result, ctx, call.base_headers, account.secrets)
    except asyncio.CancelledError:
        if not watcher.disconnected:
            raise
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        if not relaying:
            raise ClientDisconnected() from None
        ctx.status = 499
        ctx.error_type = "client_disconnected"
    finally:
        watcher.stop()


def _discard(response: aiohttp.ClientResponse) -> None:
    """A fallen-back-from answer: drop it without reading (the connection is not reused)."""
    response.close()


def _annotate(
    ctx: RequestContext, account: ProxyAccount, slug: str | None, route: RouteResult[Any], bytes_in: int
) -> None:
    """The reference's tracing attributes, kept on the log row for the trace exporter."""
    final = route.final.name if route.final is not None else None
    ctx.resolved_model = f"{account.name}/{final}" if final else None
    ctx.attempts = route.attempts
    ctx.upstream_ms = sum(a.duration_ms for a in route.attempts)
    ctx.extra.update(
        {
            "bytes_in": bytes_in,
            "custom_proxy_endpoint_name": final,
            "loadbalance_target_attempt_count": len(route.attempts),
            "loadbalance_first_target": route.attempts[0].target if route.attempts else None,
            "loadbalance_final_target": final,
            "attempts": [
                {"target": a.target, "status": a.status, "error": a.error, "ms": a.duration_ms} for a in route.attempts
            ],
        }
    )
    if slug is not None:
        ctx.extra.update(
            {
                "custom_proxy_routing_type": account.routing_type,
                "custom_proxy_slug": slug,
                "custom_proxy_target_was_cooled_down": route.used_cooled_target,
            }
        )


async def _relay(
    send: Send,
    response: aiohttp.ClientResponse,
    ctx: RequestContext,
    base_headers: RawHeaders,
    secrets: tuple[bytes, ...],
) -> None:
    """Relay the upstream answer as received, credentials scrubbed (http/redaction.py); a broken
    upstream body aborts the client connection.

    Small answers that arrived whole with their headers go out in one write; the rest (slow drips
    included) stream chunk by chunk as they come.
    """
    ctx.status = response.status
    headers = [*scrub_headers(response_headers(response.raw_headers), secrets), *base_headers]
    bytes_out = 0
    relay_started = ctx.elapsed_ms()
    length = response.content_length
    try:
        first = b""
        if secrets and error_body_scrubbable(response.status, response.headers, length):
            first, whole = await read_capped(response.content, ERROR_BODY_LIMIT)
            if whole:
                body = scrub(first, secrets)
                if body != first:
                    headers = with_length(headers, len(body))
                bytes_out = len(body)
                ctx.ttft_ms = ctx.elapsed_ms()
                await send({"type": "http.response.start", "status": response.status, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        elif length is not None and length <= _SMALL_BODY and response.content.is_eof():
            body = await response.read()  # already all here: one write, no chunk loop
            bytes_out = len(body)
            ctx.ttft_ms = ctx.elapsed_ms()
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if first:  # an error body past the scrub limit: relayed unchanged, as the rest will be
            ctx.ttft_ms = ctx.elapsed_ms()
            bytes_out = len(first)
            await send({"type": "http.response.body", "body": first, "more_body": True})
        async for chunk in response.content.iter_any():
            if ctx.ttft_ms is None:
                ctx.ttft_ms = ctx.elapsed_ms()
            bytes_out += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except NETWORK_ERRORS as exc:  # TimeoutError included
        # Headers are gone already: end the connection without a final chunk so the client sees a cut.
        ctx.truncated = True
        ctx.error_type = "upstream_error"
        ctx.error_message = endpoint_broke_message(exc)
    finally:
        ctx.extra["bytes_out"] = bytes_out
        ctx.last_chunk_ms = ended = ctx.elapsed_ms()
        ctx.upstream_ms = (ctx.upstream_ms or 0.0) + ended - relay_started
        if response.content.at_eof():
            response.release()  # keep the pooled connection
        else:
            response.close()
