"""Endpoints about the gateway itself: liveness, readiness and the caller's model list."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING
from urllib.parse import unquote

from relaygate.auth.access import may_call
from relaygate.errors import NotFound, Unauthorized
from relaygate.http.dispatch import model_path_id
from relaygate.http.headers import bearer_token
from relaygate.http.responses import send_bytes, send_json
from relaygate.observe.exposition import CONTENT_TYPE
from relaygate.pipeline.authenticate import authenticate

if TYPE_CHECKING:
    from relaygate.pipeline.call import Call
    from relaygate.runtime.targets import Target


async def health(call: Call) -> None:
    """Liveness: the process answers."""
    await send_json(call.send, 200, {"status": "ok"}, call.base_headers)


async def ready(call: Call) -> None:
    """Readiness: config compiled, upstream pool and log writer running."""
    gateway, send, headers = call.gateway, call.send, call.base_headers
    problems = gateway.readiness_problems()
    if problems:
        await send_json(send, 503, {"status": "not ready", "problems": problems}, headers)
    else:
        await send_json(send, 200, {"status": "ready", "models": len(gateway.snapshot.models)}, headers)


async def metrics(call: Call) -> None:
    """Prometheus text exposition (summed over workers); open unless `--metrics-token` is set."""
    gateway = call.gateway
    expected = gateway.settings.metrics_token
    if expected is not None:
        given = bearer_token(call.scope) or ""
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8")):
            raise Unauthorized()  # the one message every bad token gets
    await send_bytes(call.send, 200, await gateway.metrics.exposition(), CONTENT_TYPE, call.base_headers)


def _model_card(target: Target, created: int) -> dict[str, object]:
    return {
        "id": target.name,
        "object": "model",
        "created": created,
        "owned_by": target.account,
        "provider": target.provider,
        "model_types": sorted(target.model_types),
    }


async def model(call: Call) -> None:
    """`GET /models/{account}/{integration}`: one model, 404 when unknown or not callable by this token."""
    gateway, send, ctx, headers = call.gateway, call.send, call.ctx, call.base_headers
    model_id = model_path_id(call.scope["path"]) or ""
    principal = await authenticate(call)
    snapshot = gateway.snapshot
    target = snapshot.models.get(unquote(model_id))
    if target is None or not may_call(principal, target.name, target.account, target.access):
        raise NotFound(f"model '{unquote(model_id)}' is not available to this token", code="model_not_found")
    ctx.status = 200
    await send_json(send, 200, _model_card(target, snapshot.created), headers)


async def models(call: Call) -> None:
    """`GET /models`: only the models this token may call, in OpenAI's list shape."""
    gateway, send, ctx, headers = call.gateway, call.send, call.ctx, call.base_headers
    principal = await authenticate(call)
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
