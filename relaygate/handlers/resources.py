"""OpenAI's stateful resources — `/responses`, `/files`, `/batches` — relayed to one provider account.

These calls name no model the gateway can route (a file id, a batch id) or keep state at the
provider (a stored response), so the account is chosen by `x-tfy-provider-name` (an account name,
or a provider kind with exactly one account), or for `POST /responses` by a `{account}/{integration}`
model. Only OpenAI-shaped accounts serve them. Bodies are relayed as bytes except `POST /responses`,
whose JSON is parsed once to rewrite the model and whose usage is read for tokens and cost (on the
way, with bounded memory: `dialects/openai/responses.py`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from relaygate.auth.access import may_call
from relaygate.dialects.openai.responses import ResponsesUsageReader
from relaygate.errors import BadGateway, BadRequest, Forbidden, NotFound, UpstreamError, scrub
from relaygate.http.body import parse_json_object, read_body
from relaygate.http.dispatch import API_PREFIXES
from relaygate.http.forwarding import query_without_token
from relaygate.http.headers import bearer_token, header
from relaygate.pipeline.admission import admit, settle_later
from relaygate.pipeline.authenticate import authenticate, read_logging_headers
from relaygate.providers.azure_openai import DEFAULT_API_VERSION
from relaygate.providers.registry import OPENAI_SHAPED
from relaygate.upstream.errors import NETWORK_ERRORS, account_broke_message, account_open_error
from relaygate.upstream.hops import chained_via
from relaygate.upstream.relay import HTTPUpstreamResponse

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.http.types import RawHeaders, Scope, Send
    from relaygate.pipeline.call import Call
    from relaygate.runtime.targets import Target

RESOURCE_ROOTS = frozenset({"responses", "files", "batches"})
RESOURCE_METHODS = frozenset({"GET", "HEAD", "POST", "DELETE"})
# Caller headers that mean something to the provider; everything else (auth above all) stays here.
_FORWARDED_REQUEST = (b"content-type", b"accept", b"openai-beta", b"idempotency-key")
# Provider headers worth relaying; framing headers are the gateway's (bodies arrive decompressed).
_RELAYED_RESPONSE = frozenset({b"content-type", b"content-disposition", b"openai-processing-ms", b"openai-version"})


def resource_path(path: str) -> str | None:
    """`responses/...`, `files/...` or `batches/...` after an API prefix; None for other paths."""
    for prefix in API_PREFIXES:
        if path.startswith(prefix):
            rest = path[len(prefix) :].strip("/")
            return rest if rest.partition("/")[0] in RESOURCE_ROOTS else None
    return None


def _account_target(gateway: Gateway, name: str) -> Target:
    """The account `x-tfy-provider-name` names: an account name, else a kind with one account."""
    snapshot = gateway.snapshot
    by_account = {t.account: t for t in snapshot.models.values()}
    found = by_account.get(name)
    if found is None:
        of_kind = {t.account: t for t in by_account.values() if t.provider == name}
        if len(of_kind) == 1:
            found = next(iter(of_kind.values()))
        elif len(of_kind) > 1:
            raise BadRequest(
                f"x-tfy-provider-name '{name}' matches several accounts ({', '.join(sorted(of_kind))});"
                " name the account",
                param="x-tfy-provider-name",
                code="ambiguous_provider",
            )
    if found is None:
        raise NotFound(
            f"no provider account '{name}' is configured", param="x-tfy-provider-name", code="provider_not_found"
        )
    return found


def _may_use_account(principal: Principal, target: Target, gateway: Gateway) -> bool:
    """Account-level use: a collaborator match, or a virtual account listing the account or one of its models."""
    if principal.is_virtual_account:
        grant = principal.grant
        return grant is not None and (
            target.account in grant.accounts
            or any(t.account == target.account and t.name in grant.models for t in gateway.snapshot.models.values())
        )
    return may_call(principal, target.name, target.account, target.access)


def _choose(gateway: Gateway, principal: Principal, scope: Scope, payload: dict[str, Any] | None) -> Target:
    """The account (as one of its targets) the call goes to; for `POST /responses` a configured model wins."""
    model = payload.get("model") if payload is not None else None
    snapshot = gateway.snapshot
    if isinstance(model, str) and model in snapshot.models:
        target = snapshot.models[model]
        if not target.model_types & {"chat", "responses"}:
            raise BadRequest(
                f"model '{model}' does not support responses", param="model", code="unsupported_model_type"
            )
        if not may_call(principal, target.name, target.account, target.access):
            raise Forbidden(f"your token may not call model '{model}'", code="model_access_denied")
        assert payload is not None
        payload["model"] = target.model_id
        return target
    if isinstance(model, str) and model in snapshot.virtual_models:
        raise BadRequest(
            "the Responses API keeps state at one provider: call a model, not a virtual model",
            param="model",
            code="unsupported_model_type",
        )
    raw = header(scope, b"x-tfy-provider-name")
    if raw is None or not raw.strip():
        raise BadRequest(
            "x-tfy-provider-name is required for the Responses, Files and Batches APIs: name the provider account",
            param="x-tfy-provider-name",
            code="missing_provider_name",
        )
    target = _account_target(gateway, raw.decode("latin-1").strip())
    if not _may_use_account(principal, target, gateway):
        raise Forbidden(f"your token may not use provider account '{target.account}'", code="account_access_denied")
    return target


def _upstream_url(target: Target, rest: str, query: bytes) -> str:
    path = "/".join(quote(part, safe="") for part in rest.split("/"))
    if target.provider == "azure-openai":
        version = quote(str(target.options.get("api_version", DEFAULT_API_VERSION)), safe="")
        extra = f"&{query.decode('latin-1')}" if query else ""
        return f"{target.base_url}/openai/{path}?api-version={version}{extra}"
    return f"{target.base_url}/{path}" + (f"?{query.decode('latin-1')}" if query else "")


async def handle(call: Call) -> None:
    """Relay one resource call; gateway errors propagate to the dispatcher."""
    gateway, scope, ctx = call.gateway, call.scope, call.ctx
    rest = resource_path(scope["path"])
    assert rest is not None  # the route matched it
    principal = await authenticate(call)
    read_logging_headers(call)
    root = rest.partition("/")[0]
    ctx.model_type = ctx.operation = root
    body = await read_body(scope, call.receive, gateway.settings.max_request_body_bytes)
    payload: dict[str, Any] | None = None
    if scope["method"] == "POST" and rest == "responses":
        payload = parse_json_object(body)
        ctx.requested_model = payload.get("model") if isinstance(payload.get("model"), str) else None
        ctx.streaming = payload.get("stream") is True
    ctx.request_body = body if root != "files" else None  # uploaded files are not copied into logs
    target = _choose(gateway, principal, scope, payload)
    if target.provider not in OPENAI_SHAPED:
        raise BadRequest(
            f"provider account '{target.account}' ({target.provider}) does not serve /{root}; "
            "the Responses, Files and Batches APIs need an OpenAI-shaped account",
            param="x-tfy-provider-name",
            code="unsupported_provider",
        )
    ctx.provider = target.provider
    if payload is not None and ctx.requested_model in gateway.snapshot.models:
        ctx.resolved_model = target.name
        ctx.target = target
        body = orjson.dumps(payload)
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _FORWARDED_REQUEST
    }
    headers.update(target.headers)
    if (via := chained_via()) is not None:  # it arrived with a Via chain: send it on (upstream/hops.py)
        headers["Via"] = via
    token = bearer_token(scope)
    query = query_without_token(scope.get("query_string", b""), token.encode("latin-1") if token else None)
    url = _upstream_url(target, rest, query)
    # Limits see a Responses call under its model (or the account's name for a provider's own model id).
    limited_as = ctx.resolved_model or (f"{target.account}/{payload.get('model')}" if payload is not None else None)
    reservation = await admit(gateway, ctx, principal, limited_as, payload, target.price) if limited_as else None
    started = time.perf_counter()
    try:
        await _relay(gateway, scope["method"], url, headers, body, target, ctx, call.send, call.base_headers)
    finally:
        ctx.upstream_ms = (time.perf_counter() - started) * 1000.0  # the whole relay waits on the upstream
        settle_later(gateway, reservation, ctx)


async def _relay(
    gateway: Gateway,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    target: Target,
    ctx: RequestContext,
    send: Send,
    base_headers: RawHeaders,
) -> None:
    session = gateway.session
    assert session is not None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(gateway.settings.request_timeout):
            response = await session.request(method, url, headers=headers, data=body or None, allow_redirects=False)
    except NETWORK_ERRORS as exc:  # TimeoutError included
        raise account_open_error(exc, target.account)
    ctx.timings.model = (time.perf_counter() - started) * 1000.0
    try:
        if not 100 <= response.status <= 599:  # not relayable: a broken upstream
            raise BadGateway(
                f"provider account {target.account} answered with HTTP status {response.status}, "
                "which is not a valid status",
                code="invalid_upstream_status",
            )
        ctx.status = response.status
        if response.status >= 400:
            raw = await HTTPUpstreamResponse(response, target.account).read()  # at most ERROR_BODY_LIMIT
            raise UpstreamError(
                response.status, scrub(raw, target.secrets), response.headers.get("Content-Type", "application/json")
            )
        relayed = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.items()
            if k.lower().encode("latin-1") in _RELAYED_RESPONSE
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": [*base_headers, *relayed]})
        settings = gateway.settings
        watched = (  # usage read on the way, bounded memory; relayed at any size
            ResponsesUsageReader(
                ctx.usage, settings.max_answer_bytes, gateway.answer_caps.sse_line_bytes, settings.log_body_max_bytes
            )
            if ctx.model_type == "responses"
            else None
        )
        async for chunk in response.content.iter_any():
            if watched is not None:
                watched.feed(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if watched is not None:
            ctx.response_body = watched.finish()
    except NETWORK_ERRORS as exc:
        ctx.truncated = True
        ctx.error_type = "upstream_error"
        ctx.error_message = account_broke_message(exc)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        response.release()
