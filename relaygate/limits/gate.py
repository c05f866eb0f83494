"""Where requests meet the limits: reserve before the upstream call, settle after the answer.

Handlers call `admit` once the caller, the model and the metadata are known, and `settle_later`
when the request is over (answered, failed, cut or abandoned). A request no rule matches pays one
dict lookup. Settling runs after the answer is on its way, off the request's critical path.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.limits.backend import Refusal, Reservation
from relaygate.limits.budgets import estimate_cost
from relaygate.limits.estimate import estimate_tokens

if TYPE_CHECKING:
    from relaygate.app import Gateway
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.providers.usage import Price

# Operations that produce no output tokens: estimate the input only.
_NO_COMPLETION = frozenset({"embedding", "rerank", "moderation"})


async def admit(gateway: Gateway, ctx: RequestContext, principal: Principal, model: str,
                payload: dict[str, Any] | None, price: Price | None) -> Reservation | None:
    """Reserve the request against every matching rule, or raise the first refusal (429/503)."""
    rules = gateway.snapshot.limits
    if not rules:
        return None
    plan = rules.match(principal, model, ctx.metadata)
    if not plan:
        return None
    started = time.perf_counter()
    tokens, cost = 0, 0.0
    if (plan.needs_tokens or plan.needs_cost) and payload is not None:
        estimate = estimate_tokens(payload, default_completion=0 if ctx.model_type in _NO_COMPLETION else 256)
        tokens = estimate.total
        if plan.needs_cost:
            cost = estimate_cost(price, estimate.input_tokens, estimate.output_tokens)
    decision = await gateway.limits.reserve(plan, tokens=tokens, cost=cost)
    elapsed = (time.perf_counter() - started) * 1000.0
    if plan.rate_limit_ids:
        ctx.timings.ratelimit = elapsed
    else:
        ctx.timings.budget = elapsed
    if isinstance(decision, Refusal):
        error = decision.error()
        if decision.rule_id is not None:
            kind = "rate_limit" if decision.reason == "rate_limit" else "budget"
            ctx.extra["limits"] = {kind: [decision.rule_id], "refused": decision.rule_id}
            error.headers["x-tfy-applied-configurations"] = orjson.dumps(
                {kind: {"rule_ids": [decision.rule_id], "refused": True}}).decode()
        raise error
    applied: dict[str, Any] = {}
    if decision.rate_limit_ids:
        applied["rate_limit"] = list(decision.rate_limit_ids)
    if decision.budget_ids or decision.audit_ids:
        applied["budget"] = [*decision.budget_ids, *decision.audit_ids]
    if decision.audit_ids:
        applied["budget_audit"] = list(decision.audit_ids)
    if decision.degraded:
        applied["limits_degraded"] = True  # admitted without the shared backend (on_backend_error: allow)
    ctx.extra["limits"] = applied
    return decision


def applied_limits(ctx: RequestContext) -> dict[str, Any]:
    """For `x-tfy-applied-configurations`: `rate_limit` and `budget` rule ids that applied."""
    applied = ctx.extra.get("limits")
    if not applied:
        return {}
    return {key: {"rule_ids": applied[key]} for key in ("rate_limit", "budget") if key in applied}


def settle_later(gateway: Gateway, reservation: Reservation | None, ctx: RequestContext) -> None:
    """Correct the reservation to what the request really used, in the background.

    A request that completed settles exactly to the usage it reported. One that did not (a stream
    cut short, a client that left) may have used more than the usage seen so far (Anthropic streams
    report input tokens and 1 output token up front), so it is settled to that usage or its estimate,
    whichever is larger; without any usage it keeps the estimate. A request that failed before any
    upstream work gives the estimate back.
    """
    if reservation is None:
        return
    usage = ctx.usage
    incomplete = ctx.status == 499 or ctx.truncated
    tokens: int | None
    cost: float | None = None
    if usage.input_tokens is not None or usage.output_tokens is not None:
        tokens = (usage.input_tokens or 0) + (usage.output_tokens or 0)
        target = ctx.target
        if target is not None and target.price is not None:
            cost = target.price.cost(usage.input_tokens or 0, usage.output_tokens or 0,
                                     usage.cached_tokens or 0, usage.cache_write_tokens or 0)
        elif target is not None and target.cost_known:
            cost = 0.0
        if incomplete:  # partial usage: the upstream may have produced more than it reported
            tokens = max(tokens, reservation.tokens)
            cost = None if cost is None else max(cost, reservation.cost)
    elif ctx.status >= 400 and not incomplete:
        tokens, cost = 0, 0.0  # failed without producing anything: give the estimate back
    else:
        tokens = None
    if tokens is None and cost is None:
        return  # keep the estimate: nothing to correct
    task = asyncio.get_running_loop().create_task(gateway.limits.settle(reservation, tokens=tokens, cost=cost))
    gateway.background.add(task)
    task.add_done_callback(gateway.background.discard)
