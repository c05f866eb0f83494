"""Turning a resolved model into an attempt plan, and reporting what the router did.

A plain model is a one-target plan (so `x-tfy-retry-config` retries work everywhere); a virtual model
is filtered (metadata_match, access, model type), ordered by its strategy, sticky sessions honoured.
The same `run_plan` then serves both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.auth.access import may_call
from relaygate.errors import BadRequest, Forbidden, GatewayError
from relaygate.http.headers import header, parse_timeout_ms
from relaygate.routing.health import HealthTracker
from relaygate.routing.plan import PlannedAttempt, RetryPolicy, RouteTarget, plan_attempts
from relaygate.routing.router import RouteResult
from relaygate.routing.stats import SLA_WINDOW
from relaygate.routing.strategies import STRATEGIES, LatencyStrategy
from relaygate.runtime.virtual import TargetOverrides, VirtualModel

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.http.types import Scope
    from relaygate.runtime.targets import Target


@dataclass(slots=True)
class Routing:
    plan: list[PlannedAttempt]
    health: HealthTracker
    deadline: float
    virtual: VirtualModel | None = None
    sticky_key: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Controls:
    """The caller's `x-tfy-*` routing controls for one request."""

    caller_timeout: float | None  # x-tfy-request-timeout, seconds per attempt
    ttft_timeout: float | None  # x-tfy-ttft-timeout-ms, seconds to the first streamed token
    retry_override: RetryPolicy | None  # x-tfy-retry-config


NO_CONTROLS = Controls(None, None, None)


def parse_controls(scope: Scope) -> Controls:
    """Read (and check: 400 when malformed) the routing headers of a request."""
    request_timeout = header(scope, b"x-tfy-request-timeout")
    ttft_timeout = header(scope, b"x-tfy-ttft-timeout-ms")
    retry_config = header(scope, b"x-tfy-retry-config")
    if request_timeout is None and ttft_timeout is None and retry_config is None:
        return NO_CONTROLS  # most requests set none
    return Controls(
        parse_timeout_ms(request_timeout, "x-tfy-request-timeout"),
        parse_timeout_ms(ttft_timeout, "x-tfy-ttft-timeout-ms"),
        parse_retry_config(retry_config),
    )


def parse_retry_config(raw: bytes | None) -> RetryPolicy | None:
    """`x-tfy-retry-config: {"attempts", "onStatusCodes", "useRetryAfterHeader"}` for this request."""
    if raw is None or not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise BadRequest("x-tfy-retry-config must be a JSON object", code="invalid_header", param="x-tfy-retry-config")
    attempts = value.get("attempts", 0)
    codes = value.get("onStatusCodes", [429, 500, 502, 503])
    delay = value.get("delay", 100)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 0 <= attempts <= 10:
        raise BadRequest(
            "x-tfy-retry-config.attempts must be an integer from 0 to 10",
            code="invalid_header",
            param="x-tfy-retry-config",
        )
    if not isinstance(codes, list) or not all(isinstance(c, int | str) and str(c).isdigit() for c in codes):
        raise BadRequest(
            "x-tfy-retry-config.onStatusCodes must be a list of status codes",
            code="invalid_header",
            param="x-tfy-retry-config",
        )
    if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
        raise BadRequest(
            "x-tfy-retry-config.delay must be milliseconds >= 0", code="invalid_header", param="x-tfy-retry-config"
        )
    return RetryPolicy(
        attempts=attempts,
        delay=float(delay) / 1000.0,
        on_status_codes=frozenset(int(c) for c in codes),
        use_retry_after=value.get("useRetryAfterHeader") is True,
    )


def plan_for(
    gateway: Gateway,
    principal: Principal,
    found: Target | VirtualModel,
    ctx: RequestContext,
    scope: Scope,
    retry_override: RetryPolicy | None,
) -> Routing:
    """The attempt plan for this request (403 when a virtual model leaves no target this caller may use)."""
    deadline = time.monotonic() + gateway.settings.request_timeout
    if not isinstance(found, VirtualModel):
        route = gateway.snapshot.direct_routes[found.name]
        if retry_override is not None:
            route = replace(route, retry=retry_override)
        return Routing([PlannedAttempt(route, False)], gateway.model_health, deadline)
    eligible: list[RouteTarget] = []
    denied = 0
    for route in found.targets:
        overrides: TargetOverrides = route.payload
        target = overrides.target
        if ctx.model_type not in target.model_types or not overrides.matches(ctx.metadata):
            continue
        if not may_call(principal, target.name, target.account, target.access):
            denied += 1  # never reach through a virtual model what you may not call directly
            continue
        eligible.append(replace(route, retry=retry_override) if retry_override is not None else route)
    if not eligible:
        if denied:
            raise Forbidden(f"your token may not call any target of '{found.name}'", code="model_access_denied")
        raise BadRequest(
            f"no target of virtual model '{found.name}' matches this request's metadata", code="no_eligible_target"
        )
    strategy = LatencyStrategy(gateway.latency) if found.strategy == "latency" else STRATEGIES[found.strategy]
    sticky_key = _sticky_key(found, scope, ctx)
    preferred = gateway.sticky.get(sticky_key) if sticky_key is not None else None
    plan = plan_attempts(
        eligible,
        strategy,
        gateway.model_health,
        gateway.rng,
        preferred=preferred,
        unhealthy=_over_sla(gateway) if found.strategy == "priority" else None,
    )
    return Routing(plan, gateway.model_health, deadline, found, sticky_key)


def _over_sla(gateway: Gateway) -> Any:
    def unhealthy(route: RouteTarget) -> bool:
        cutoff = route.payload.sla_cutoff_ms
        if cutoff is None:
            return False
        tpot = gateway.latency.tpot(route.key, SLA_WINDOW)
        return tpot is not None and tpot > cutoff

    return unhealthy


def _sticky_key(model: VirtualModel, scope: Scope, ctx: RequestContext) -> tuple[str, str] | None:
    if model.sticky is None:
        return None
    parts: list[str] = []
    for source, key in model.sticky.identifiers:
        if source == "headers":
            wanted = key.encode("latin-1")
            value = next((v.decode("latin-1") for k, v in scope["headers"] if k == wanted), None)
        else:
            value = ctx.metadata.get(key)
        if value is None:
            return None
        parts.append(value)
    return (model.name, "\x1f".join(parts))


def final_or_raise(route: RouteResult[Any]) -> Any:
    """The answer to relay, or the error of the last attempt (upstream errors keep their status)."""
    if route.outcome.result is None:
        raise route.outcome.error or GatewayError("no target answered")
    return route.outcome.result


ParamsOf = Callable[[TargetOverrides], Iterable[str]]  # the `override_params` keys a call really sends


def note_route(
    gateway: Gateway,
    ctx: RequestContext,
    route: RouteResult[Any],
    routing: Routing,
    model_started: float,
    params_of: ParamsOf | None = None,
) -> None:
    """Note on the context which target answered and what routing did (for headers and the log).

    `params_of` says which of a target's `override_params` the call sent (default: all of them).
    """
    ctx.timings.model = (time.perf_counter() - model_started) * 1000.0
    ctx.attempts = route.attempts
    ctx.upstream_ms = sum(a.duration_ms for a in route.attempts)
    if route.final is not None:
        target = route.final.payload.target
        ctx.target = target
        ctx.resolved_model = target.name
        ctx.provider = target.provider
        configuration = model_configuration(route.final.payload, params_of)
        if configuration is not None:
            ctx.extra["model_configuration"] = configuration
    if routing.virtual is not None or len(route.attempts) > 1:
        ctx.extra["routing"] = applied_configuration(route, routing)
    if len(route.attempts) > 1 and (fallbacks := fallback_entries(route)):
        ctx.extra["fallback"] = fallbacks
    if routing.sticky_key is not None and route.outcome.result is not None and route.final is not None:
        assert routing.virtual is not None and routing.virtual.sticky is not None
        gateway.sticky.remember(routing.sticky_key, route.final.name, routing.virtual.sticky.ttl_seconds)


def applied_configuration(route: RouteResult[Any], routing: Routing) -> dict[str, Any]:
    """What `x-tfy-applied-configurations` reports about load balancing, fallback and retries."""
    entry: dict[str, Any] = {
        "targets_tried": [a.target for a in route.attempts],
        "attempts": [
            {"target": a.target, "status": a.status, "error": a.error, "ms": a.duration_ms} for a in route.attempts
        ],
        "fallbacks": route.fallbacks,
        "retries": route.retries,
    }
    if routing.virtual is not None:
        entry = {"virtual_model": routing.virtual.name, "strategy": routing.virtual.strategy, **entry}
    return entry


def model_configuration(overrides: TargetOverrides, params_of: ParamsOf | None = None) -> dict[str, Any] | None:
    """What a virtual-model target changed in the call: `override_params` keys and `headers_override`
    header names (never values: they may be credentials); None when it changed nothing."""
    if not (overrides.override_params or overrides.header_changes):
        return None  # the usual target: nothing to sort or build
    params = sorted(params_of(overrides) if params_of is not None else overrides.override_params)
    entry: dict[str, Any] = {"target": overrides.target.name}
    if params:
        entry["override_params"] = params
    if overrides.header_changes:
        entry["headers_override"] = {kind: list(names) for kind, names in overrides.header_changes}
    return entry if len(entry) > 1 else None


def fallback_entries(route: RouteResult[Any]) -> list[dict[str, Any]]:
    """One entry per fallback: the target left, the next one, and the status (or error) that caused it."""
    entries: list[dict[str, Any]] = []
    for left, next_ in zip(route.attempts, route.attempts[1:], strict=False):
        if left.target != next_.target:  # same target again is a retry
            cause: dict[str, Any] = {"status": left.status} if left.status is not None else {"error": left.error}
            entries.append({"from": left.target, "to": next_.target, **cause})
    return entries


def routing_headers(route: RouteResult[Any], ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """`x-tfy-resolved-model` and `x-tfy-applied-configurations` (what `note_route` recorded) for the answer."""
    headers: list[tuple[bytes, bytes]] = []
    if route.final is not None:
        headers.append((b"x-tfy-resolved-model", route.final.name.encode()))
    applied = ctx.applied_configurations()
    if applied:
        headers.append((b"x-tfy-applied-configurations", orjson.dumps(applied)))
    return headers


def record_speed(gateway: Gateway, route: RouteResult[Any], ctx: RequestContext, model_started: float) -> None:
    """Feed latency-based routing and SLA cutoffs: time per output token of the answering target."""
    if route.final is None or route.outcome.result is None:
        return
    if ctx.ttft_ms is not None and ctx.streaming:
        duration_ms = max(ctx.elapsed_ms() - ctx.ttft_ms, 0.0)
    elif route.attempts:
        # Only the answering attempt: failed tries and fallbacks before it are other targets' time.
        duration_ms = route.attempts[-1].duration_ms
    else:
        duration_ms = (time.perf_counter() - model_started) * 1000.0
    gateway.latency.record(route.final.key, duration_ms, ctx.usage.output_tokens)


def wants_speed(gateway: Gateway, route: RouteResult[Any]) -> bool:
    """Only targets that a latency-based or SLA-cut virtual model reads are timed."""
    return route.final is not None and route.final.key in gateway.snapshot.speed_tracked
