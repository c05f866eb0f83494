"""Where requests meet the limits: reserve before the upstream call, settle after the answer.

Handlers validate first and reserve last: `admit` runs once the caller, the model, access, the
metadata and the attempt plan are known (so a request the gateway refuses itself before calling
upstream takes nothing from any rule), right before the first upstream call; `settle_later` runs
when the request is over (answered, failed, cut or abandoned). A request no rule matches pays one
dict lookup. Settling runs after the answer is on its way, off the request's critical path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.errors import BadRequest
from relaygate.limits.backend import Refusal, Reservation
from relaygate.limits.budgets import estimate_cost
from relaygate.limits.estimate import MAX_CHOICES, estimate_tokens

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.limits.rules import Plan
    from relaygate.providers.usage import Price
    from relaygate.routing.plan import PlannedAttempt

# Operations that produce no output tokens: estimate the input only.
_NO_COMPLETION = frozenset({"embedding", "rerank", "moderation"})


async def admit(
    gateway: Gateway,
    ctx: RequestContext,
    principal: Principal,
    model: str,
    payload: dict[str, Any] | None,
    price: Price | None,
    attempts: Sequence[PlannedAttempt] = (),
) -> Reservation | None:
    """Reserve the request against every matching rule, or raise the first refusal (429/503, or 400
    when it can never fit). `attempts` (the routing plan) bounds `n` by what its targets accept."""
    rules = gateway.snapshot.limits
    if not rules:
        return None
    plan = rules.match(principal, model, ctx.metadata)
    if not plan:
        return None
    started = time.perf_counter()
    tokens, cost = 0, 0.0
    if (plan.needs_tokens or plan.needs_cost) and payload is not None:
        estimate = estimate_tokens(
            payload,
            default_completion=0 if ctx.model_type in _NO_COMPLETION else 256,
            max_choices=_most_choices(payload, attempts, model),
        )
        tokens = estimate.total
        if plan.needs_cost:
            cost = estimate_cost(price, estimate.input_tokens, estimate.output_tokens)
    return await _reserve(gateway, ctx, plan, tokens, cost, started)


async def admit_mcp(
    gateway: Gateway,
    ctx: RequestContext,
    principal: Principal,
    server: str,
    tool: str,
    cost: float,
    virtual: str | None = None,
) -> Reservation | None:
    """Reserve an MCP `tools/call` of `tool` on remote `server` (reached through `virtual` if any) against
    the rules whose `when.mcp_servers` match it: one request, and the server's `cost_per_call_usd`."""
    rules = gateway.snapshot.limits
    if not rules:
        return None
    plan = rules.match_mcp(server, tool, principal, ctx.metadata, virtual=virtual)
    if not plan:
        return None
    return await _reserve(gateway, ctx, plan, 0, cost, time.perf_counter())


async def _reserve(
    gateway: Gateway, ctx: RequestContext, plan: Plan, tokens: int, cost: float, started: float
) -> Reservation | None:
    """Reserve `plan`, note what applied on the context, or raise the refusal."""
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
                {kind: {"rule_ids": [decision.rule_id], "refused": True}}
            ).decode()
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
    ctx.limit_usage = tuple(
        (hit.rule.kind, hit.rule.id, (hit.rule.limit - remaining) / hit.rule.limit)
        for hit, remaining in zip(decision.plan.hits, decision.remaining, strict=False)
        if hit.rule.limit > 0
    )
    return decision


def _most_choices(payload: dict[str, Any], attempts: Sequence[PlannedAttempt], model: str) -> int:
    """The most choices (`n`) any planned target returns; 400 when the request asks more than one of
    targets that all return exactly one (their adapter would refuse it: refuse before reserving)."""
    n = payload.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n <= 1 or not attempts:
        return MAX_CHOICES
    most = 0
    providers = []
    for attempt in attempts:
        target = attempt.target.payload.target
        most = max(most, target.adapter.max_choices)
        providers.append(target.provider)
    if most <= 1:
        raise BadRequest(
            f"'n' must be 1 for model '{model}': its provider ({', '.join(sorted(set(providers)))}) "
            "returns one choice per request",
            param="n",
            code="unsupported_parameter",
        )
    return most


def settle_later(gateway: Gateway, reservation: Reservation | None, ctx: RequestContext) -> None:
    """Correct the reservation to what the request really used, in the background.

    A request that completed settles exactly to the usage it reported. One cut after its answer began
    (a stream cut short, a client that left mid-stream) may have used more than the usage seen so far
    (Anthropic streams report input tokens and 1 output token up front), so it is settled to that
    usage or its estimate, whichever is larger; an answered request without any usage keeps the
    estimate. A request that failed before any of its answer reached the caller (refused by the
    gateway or an adapter, an upstream error status, an unreachable or timed-out upstream, a stream
    that failed before content, every fallback target failing, the caller leaving first) and reported
    no usage gives the whole estimate back.

    Runs in the handler's `finally`, before the dispatcher turns a raised error into `ctx.status`: a
    status of 0 there means no answer was started, i.e. the request is failing.
    """
    if reservation is None:
        return
    usage = ctx.usage
    answered = 0 < ctx.status < 400 or ctx.ttft_ms is not None  # some of the answer is on its way
    incomplete = ctx.status == 499 or ctx.truncated or not answered
    tokens: int | None
    cost: float | None = None
    if ctx.cache_hit:  # served from the cache: request limits counted it, tokens and budgets do not
        tokens, cost = 0, 0.0
    elif usage.input_tokens is not None or usage.output_tokens is not None:
        tokens = (usage.input_tokens or 0) + (usage.output_tokens or 0)
        cost = ctx.cost()[0]
        if incomplete:  # partial usage: the upstream may have produced more than it reported
            tokens = max(tokens, reservation.tokens)
            cost = None if cost is None else max(cost, reservation.cost)
    elif not answered:
        tokens, cost = 0, 0.0  # failed without producing anything: give the estimate back
    else:
        tokens = None
    if tokens is None and cost is None:
        return  # keep the estimate: nothing to correct
    task = asyncio.get_running_loop().create_task(gateway.limits.settle(reservation, tokens=tokens, cost=cost))
    gateway.background.add(task)
    task.add_done_callback(gateway.background.discard)
