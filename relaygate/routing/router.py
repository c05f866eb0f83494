"""The one attempt loop: retries on the same target, fallback to the next, cooldown bookkeeping.

Custom-endpoint pools, virtual models and the ngrok dialect all run their plans through `run_plan`;
they differ only in how one attempt is made (the `attempt` callable) and how targets are compiled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from relaygate.errors import GatewayError, GatewayTimeout
from relaygate.routing.health import HealthTracker, counts_toward_cooldown
from relaygate.routing.plan import PlannedAttempt, RouteTarget

R = TypeVar("R")


@dataclass(slots=True)
class Outcome(Generic[R]):
    """What one attempt produced: an upstream response (`result`) or an error before one existed."""

    status: int | None = None
    result: R | None = None
    error: GatewayError | None = None
    network_error: bool = False  # connect failure, reset, timeout: always eligible for fallback
    always_fallback: bool = False  # e.g. 408 from a TTFT timeout
    caller_fault: bool = False  # the caller went away: no cooldown, no fallback (caller timeouts use always_fallback)
    retry_after: float | None = None
    replayable: bool = True  # False once a streamed request body was partly sent upstream


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One upstream try, as headers, the log row, metrics and trace spans report it."""

    target: str
    status: int | None
    error: str | None
    duration_ms: float
    cooled: bool
    provider: str = ""
    outcome: str = "success"  # success | retry | fallback | error (what the router did next)
    started: float = 0.0  # the router's clock (time.monotonic) when the try began


def _outcome_of(outcome: Outcome[Any]) -> str:
    """`success` or `error` for a try that ended the request (a retried or fallen-back try says so)."""
    if outcome.result is not None and outcome.status is not None and outcome.status < 400:
        return "success"
    return "error"


@dataclass(slots=True)
class RouteResult(Generic[R]):
    outcome: Outcome[R]
    attempts: list[AttemptRecord] = field(default_factory=list)
    final: RouteTarget | None = None
    retries: int = 0
    fallbacks: int = 0

    @property
    def used_cooled_target(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].cooled


def attempt_limit(
    attempt_timeout: float, deadline: float | None, clock: Callable[[], float] = time.monotonic
) -> tuple[float, bool]:
    """Seconds one attempt may take, and whether the overall deadline (not the attempt timeout) set it.

    `deadline` is the `clock()` time by which every attempt of the request must be over, so retries
    and fallbacks together never outlast it; None: only `attempt_timeout` bounds an attempt.
    """
    if deadline is None:
        return attempt_timeout, False
    remaining = max(deadline - clock(), 0.0)
    return (remaining, True) if remaining < attempt_timeout else (attempt_timeout, False)


def deadline_outcome() -> Outcome[Any]:
    """An attempt cut by the overall deadline: the request as a whole is out of time, so there is
    nothing to retry or fall back to, and the target that happened to be running is not to blame."""
    return Outcome(
        error=GatewayTimeout("the request did not complete within the gateway's request timeout"), caller_fault=True
    )


def _falls_back(target: RouteTarget, outcome: Outcome[Any]) -> bool:
    if outcome.caller_fault or not outcome.replayable:
        return False
    if outcome.network_error or outcome.always_fallback:
        return True
    return outcome.status is not None and outcome.status in target.fallback_status_codes


async def run_plan(
    plan: list[PlannedAttempt],
    attempt: Callable[[RouteTarget], Awaitable[Outcome[R]]],
    health: HealthTracker,
    discard: Callable[[R], None],
    *,
    deadline: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RouteResult[R]:
    """Try the plan in order; the first outcome that is not retried or fallen back from is final."""
    if not plan:
        raise GatewayError("no target to route to")
    route: RouteResult[R] = RouteResult(Outcome())
    for index, planned in enumerate(plan):
        target = planned.target
        retry = target.retry
        tries = 1 + (max(retry.attempts, 0) if retry is not None else 0)
        outcome: Outcome[R] = Outcome()
        for try_index in range(tries):
            started = clock()
            outcome = await attempt(target)
            record = AttemptRecord(
                target.name,
                outcome.status,
                outcome.error.type if outcome.error else None,
                round((clock() - started) * 1000.0, 3),
                planned.cooled,
                target.provider,
                _outcome_of(outcome),
                started,
            )
            route.attempts.append(record)
            _record_health(health, target, outcome)
            if retry is None or try_index == tries - 1 or not _retryable(retry.on_status_codes, outcome):
                break
            wait = retry.delay
            if retry.use_retry_after and outcome.retry_after is not None:
                wait = max(wait, outcome.retry_after)
            if deadline is not None and clock() + wait >= deadline:
                break
            if outcome.result is not None:
                discard(outcome.result)
            route.retries += 1
            route.attempts[-1] = replace(record, outcome="retry")
            await sleep(wait)
        route.outcome = outcome
        route.final = target
        last = index == len(plan) - 1
        out_of_time = deadline is not None and clock() >= deadline
        if last or out_of_time or not _falls_back(target, outcome):
            return route
        if outcome.result is not None:
            discard(outcome.result)
        route.fallbacks += 1
        route.attempts[-1] = replace(route.attempts[-1], outcome="fallback")
    return route


def _retryable(on_status_codes: frozenset[int], outcome: Outcome[Any]) -> bool:
    if outcome.caller_fault or not outcome.replayable:
        return False
    return outcome.network_error or (outcome.status is not None and outcome.status in on_status_codes)


def _record_health(health: HealthTracker, target: RouteTarget, outcome: Outcome[Any]) -> None:
    if outcome.caller_fault:
        return
    if counts_toward_cooldown(outcome.status, outcome.network_error):
        health.record_failure(target.key, outcome.retry_after if outcome.status == 429 else None)
    elif outcome.status is not None and outcome.status < 400:
        health.record_success(target.key)
