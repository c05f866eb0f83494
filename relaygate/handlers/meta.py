"""Endpoints about the gateway itself: liveness, readiness and the caller's model list."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from relaygate.auth.access import may_call
from relaygate.errors import NotFound
from relaygate.handlers.llm import authenticate
from relaygate.http.responses import send_bytes, send_json
from relaygate.observe.metrics import CONTENT_TYPE, exposition

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.http.types import RawHeaders, Scope, Send
    from relaygate.runtime.targets import Target


async def health(send: Send, headers: RawHeaders) -> None:
    """Liveness: the process answers."""
    await send_json(send, 200, {"status": "ok"}, headers)


async def ready(gateway: Gateway, send: Send, headers: RawHeaders) -> None:
    """Readiness: config compiled, upstream pool and log writer running."""
    problems = gateway.readiness_problems()
    if problems:
        await send_json(send, 503, {"status": "not ready", "problems": problems}, headers)
    else:
        await send_json(send, 200, {"status": "ready", "models": len(gateway.snapshot.models)}, headers)


async def metrics(gateway: Gateway, send: Send, headers: RawHeaders) -> None:
    """Prometheus text exposition of this process's counters (unauthenticated, like /health)."""
    await send_bytes(send, 200, exposition(gateway.metrics), CONTENT_TYPE, headers)


def _model_card(target: Target, created: int) -> dict[str, object]:
    return {
        "id": target.name,
        "object": "model",
        "created": created,
        "owned_by": target.account,
        "provider": target.provider,
        "model_types": sorted(target.model_types),
    }


async def model(
    gateway: Gateway, scope: Scope, send: Send, ctx: RequestContext, headers: RawHeaders, model_id: str
) -> None:
    """`GET /models/{account}/{integration}`: one model, 404 when unknown or not callable by this token."""
    principal = await authenticate(gateway, scope, ctx)
    snapshot = gateway.snapshot
    target = snapshot.models.get(unquote(model_id))
    if target is None or not may_call(principal, target.name, target.account, target.access):
        raise NotFound(f"model '{unquote(model_id)}' is not available to this token", code="model_not_found")
    ctx.status = 200
    await send_json(send, 200, _model_card(target, snapshot.created), headers)


async def models(gateway: Gateway, scope: Scope, send: Send, ctx: RequestContext, headers: RawHeaders) -> None:
    """`GET /models`: only the models this token may call, in OpenAI's list shape."""
    principal = await authenticate(gateway, scope, ctx)
    snapshot = gateway.snapshot
    data = [
        _model_card(target, snapshot.created)
        for target in snapshot.models.values()
        if may_call(principal, target.name, target.account, target.access)
    ]
    data.extend(
        {
            "id": vm.name,
            "object": "model",
            "created": snapshot.created,
            "owned_by": vm.account,
            "provider": "virtual-model",
            "model_types": sorted(vm.model_types),
        }
        for vm in snapshot.virtual_models.values()
        if may_call(principal, vm.name, vm.account, vm.access)
    )
    if snapshot.ngrok is not None:
        for name in snapshot.ngrok.model_names:
            provider = name.partition(":")[0]
            if principal.is_virtual_account and not (principal.grant and principal.grant.allows_model(name, provider)):
                continue
            data.append({"id": name, "object": "model", "created": snapshot.created, "owned_by": provider})
    ctx.status = 200
    await send_json(send, 200, {"object": "list", "data": data}, headers)
