"""Requests for models of the ngrok `ai-gateway` dialect (`provider:model`, bare ids, aliases).

Its plan is already in failover order (next key, next provider serving the model, next model), so
it is planned with the order kept; cooled keys move to the end like any other target.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from relaygate.errors import Forbidden, NotFound
from relaygate.pipeline.planning import Routing
from relaygate.routing.ngrok import plan_with_candidates, take_body_models
from relaygate.routing.plan import RetryPolicy, plan_attempts
from relaygate.routing.strategies import PriorityStrategy

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.runtime.ngrok import NgrokGateway

_KEEP_ORDER = PriorityStrategy()  # every dialect target has no priority: the plan's order is kept


def ngrok_routing(
    gateway: Gateway,
    ngrok: NgrokGateway,
    principal: Principal,
    model: str,
    payload: dict[str, Any] | None,
    ctx: RequestContext,
    retry_override: RetryPolicy | None,
) -> Routing:
    """The dialect's plan for this request; 404 when nothing serves it (or the strategies chose none of the
    candidates), 403 when the token may not."""
    body_models = take_body_models(payload) if payload is not None else None
    routes, candidates = plan_with_candidates(ngrok, model, body_models, ctx.metadata, rng=gateway.rng)
    if not routes and candidates:
        raise NotFound(
            f"no model matched the selection strategies for model '{model}' ({candidates} configured "
            f"candidate{'s' if candidates != 1 else ''}; every model_selection strategy returned none)",
            code="no_model_matched",
        )
    if not routes:
        raise NotFound(f"model '{model}' is not configured on this gateway", code="model_not_found")
    if principal.is_virtual_account:
        grant = principal.grant
        routes = [r for r in routes if grant is not None and grant.allows_model(r.name, r.payload.target.account)]
        if not routes:
            raise Forbidden(f"your token may not call model '{model}'", code="model_access_denied")
    if retry_override is not None:
        routes = [replace(r, retry=retry_override) for r in routes]
    plan = plan_attempts(routes, _KEEP_ORDER, gateway.model_health, gateway.rng)
    return Routing(plan, gateway.model_health, time.monotonic() + ngrok.total_timeout)
