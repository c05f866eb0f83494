"""Endpoints about the gateway itself: liveness, readiness and the caller's model list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaygate.auth.access import may_call
from relaygate.handlers.llm import authenticate
from relaygate.http.responses import send_json

if TYPE_CHECKING:
    from relaygate.app import Gateway
    from relaygate.context import RequestContext
    from relaygate.http.types import RawHeaders, Scope, Send


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


async def models(gateway: Gateway, scope: Scope, send: Send, ctx: RequestContext, headers: RawHeaders) -> None:
    """`GET /models`: only the models this token may call, in OpenAI's list shape."""
    principal = await authenticate(gateway, scope, ctx)
    snapshot = gateway.snapshot
    data = [
        {
            "id": target.name,
            "object": "model",
            "created": snapshot.created,
            "owned_by": target.account,
            "provider": target.provider,
            "model_types": sorted(target.model_types),
        }
        for target in snapshot.models.values()
        if may_call(principal, target.name, target.account, target.access)
    ]
    ctx.status = 200
    await send_json(send, 200, {"object": "list", "data": data}, headers)
