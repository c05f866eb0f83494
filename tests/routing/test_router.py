"""The attempt loop: fallback decisions, retries on one target, discards, counters, deadline, health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from relaygate.errors import BadGateway, GatewayError, GatewayTimeout
from relaygate.routing.health import CooldownPolicy, HealthTracker
from relaygate.routing.plan import PlannedAttempt, RetryPolicy, RouteTarget
from relaygate.routing.router import Outcome, RouteResult, run_plan

FALLBACK = frozenset({429, 500, 502, 503})


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Response:
    """Stands in for an upstream response object."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"Response({self.label})"


def ok(label: str = "ok", status: int = 200) -> Outcome[Response]:
    return Outcome(status=status, result=Response(label))


def answer(status: int, label: str | None = None, *, retry_after: float | None = None) -> Outcome[Response]:
    return Outcome(status=status, result=Response(label or str(status)), retry_after=retry_after)


def network_error(*, replayable: bool = True) -> Outcome[Response]:
    return Outcome(error=BadGateway("connect failed"), network_error=True, replayable=replayable)


def target(name: str, *, codes: frozenset[int] = FALLBACK, retry: RetryPolicy | None = None) -> RouteTarget:
    return RouteTarget(key=f"proxy:acct/{name}", name=name, payload=name, fallback_status_codes=codes, retry=retry)


def planned(*targets: RouteTarget, cooled: Iterable[str] = ()) -> list[PlannedAttempt]:
    cooled_names = set(cooled)
    return [PlannedAttempt(t, t.name in cooled_names) for t in targets]


class Upstream:
    """Scripted attempts per target name; records calls, discards and sleeps; may advance the clock."""

    def __init__(self, clock: Clock | None = None, step: float = 0.0, **script: list[Outcome[Response]]) -> None:
        self.script = {name: list(outcomes) for name, outcomes in script.items()}
        self.calls: list[str] = []
        self.discarded: list[Response] = []
        self.sleeps: list[float] = []
        self.clock = clock or Clock()
        self.step = step

    async def attempt(self, target: RouteTarget) -> Outcome[Response]:
        self.calls.append(target.name)
        self.clock.now += self.step
        return self.script[target.name].pop(0)

    def discard(self, response: Response) -> None:
        self.discarded.append(response)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.now += seconds


def health_for(clock: Clock, **policy: Any) -> HealthTracker:
    return HealthTracker(CooldownPolicy(**policy), clock=clock)


async def run(
    upstream: Upstream,
    plan: list[PlannedAttempt],
    health: HealthTracker | None = None,
    *,
    deadline: float | None = None,
) -> RouteResult[Response]:
    sleep: Callable[[float], Awaitable[None]] = upstream.sleep
    return await run_plan(
        plan,
        upstream.attempt,
        health or health_for(upstream.clock),
        upstream.discard,
        deadline=deadline,
        sleep=sleep,
        clock=upstream.clock,
    )


def label(route: RouteResult[Response]) -> str | None:
    return route.outcome.result.label if route.outcome.result is not None else None


# -- fallback decisions --------------------------------------------------------------------------


async def test_first_success_is_returned_without_trying_others() -> None:
    upstream = Upstream(a=[ok("a")], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b")))
    assert (label(route), upstream.calls) == ("a", ["a"])


async def test_returns_first_outcome_that_does_not_fall_back() -> None:
    upstream = Upstream(a=[answer(503)], b=[answer(502)], c=[ok("c")])
    route = await run(upstream, planned(target("a"), target("b"), target("c")))
    assert (label(route), upstream.calls) == ("c", ["a", "b", "c"])


async def test_status_outside_fallback_codes_is_final_at_once() -> None:
    upstream = Upstream(a=[answer(404)], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b")))
    assert (route.outcome.status, upstream.calls) == (404, ["a"])


async def test_target_own_fallback_codes_decide() -> None:
    upstream = Upstream(a=[answer(503)], b=[ok("b")])
    route = await run(upstream, planned(target("a", codes=frozenset({429})), target("b")))
    assert (route.outcome.status, upstream.calls) == (503, ["a"])


async def test_network_error_falls_back_even_without_fallback_codes() -> None:
    upstream = Upstream(a=[network_error()], b=[ok("b")])
    route = await run(upstream, planned(target("a", codes=frozenset()), target("b")))
    assert (label(route), upstream.calls) == ("b", ["a", "b"])


async def test_always_fallback_outcome_falls_back_when_status_is_not_listed() -> None:
    ttft = Outcome[Response](status=408, error=GatewayTimeout("no first token"), always_fallback=True)
    upstream = Upstream(a=[ttft], b=[ok("b")])
    route = await run(upstream, planned(target("a", codes=frozenset({503})), target("b")))
    assert (label(route), upstream.calls) == ("b", ["a", "b"])


async def test_unlisted_408_without_always_fallback_is_final() -> None:
    upstream = Upstream(a=[answer(408)], b=[ok("b")])
    route = await run(upstream, planned(target("a", codes=frozenset({503})), target("b")))
    assert (route.outcome.status, upstream.calls) == (408, ["a"])


async def test_caller_fault_does_not_fall_back() -> None:
    gone = Outcome[Response](error=GatewayError("client went away"), network_error=True, caller_fault=True)
    upstream = Upstream(a=[gone], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b")))
    assert (route.outcome.caller_fault, upstream.calls) == (True, ["a"])


async def test_caller_fault_does_not_cool_the_target() -> None:
    clock = Clock()
    health = health_for(clock, threshold=1)
    gone = Outcome[Response](error=GatewayError("short caller timeout"), network_error=True, caller_fault=True)
    await run(Upstream(clock, a=[gone]), planned(target("a")), health)
    assert not health.is_cooled("proxy:acct/a")


async def test_non_replayable_outcome_stops_even_on_network_error() -> None:
    upstream = Upstream(a=[network_error(replayable=False)], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b")))
    assert (route.outcome.replayable, upstream.calls) == (False, ["a"])


async def test_non_replayable_fallback_status_stops() -> None:
    cut = Outcome(status=503, result=Response("a"), replayable=False)
    upstream = Upstream(a=[cut], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b")))
    assert (label(route), upstream.calls, upstream.discarded) == ("a", ["a"], [])


async def test_last_target_fallback_response_goes_to_the_caller() -> None:
    upstream = Upstream(a=[answer(503, "a")], b=[answer(502, "b")])
    route = await run(upstream, planned(target("a"), target("b")))
    assert label(route) == "b"
    assert [r.label for r in upstream.discarded] == ["a"]


async def test_single_target_fallback_response_is_not_discarded() -> None:
    upstream = Upstream(a=[answer(503, "a")])
    route = await run(upstream, planned(target("a")))
    assert (label(route), upstream.discarded) == ("a", [])


async def test_last_target_network_error_is_returned() -> None:
    upstream = Upstream(a=[answer(503)], b=[network_error()])
    route = await run(upstream, planned(target("a"), target("b")))
    assert route.outcome.network_error and isinstance(route.outcome.error, BadGateway)


async def test_empty_plan_raises() -> None:
    with pytest.raises(GatewayError):
        await run(Upstream(), [])


# -- retries on one target -----------------------------------------------------------------------


async def test_retry_repeats_the_same_target() -> None:
    policy = RetryPolicy(attempts=2)
    upstream = Upstream(a=[answer(503), answer(503), ok("a")], b=[ok("b")])
    route = await run(upstream, planned(target("a", retry=policy), target("b")))
    assert (label(route), upstream.calls, route.retries) == ("a", ["a", "a", "a"], 2)


async def test_retries_exhausted_then_falls_back() -> None:
    policy = RetryPolicy(attempts=1)
    upstream = Upstream(a=[answer(503), answer(503)], b=[ok("b")])
    route = await run(upstream, planned(target("a", retry=policy), target("b")))
    assert (label(route), upstream.calls, route.retries, route.fallbacks) == ("b", ["a", "a", "b"], 1, 1)


async def test_retry_waits_the_delay_through_injected_sleep() -> None:
    policy = RetryPolicy(attempts=2, delay=0.5)
    upstream = Upstream(a=[answer(503), answer(503), ok("a")])
    await run(upstream, planned(target("a", retry=policy)))
    assert upstream.sleeps == [0.5, 0.5]


async def test_retry_only_on_its_status_codes() -> None:
    policy = RetryPolicy(attempts=3, on_status_codes=frozenset({429}))
    upstream = Upstream(a=[answer(503)], b=[ok("b")])
    route = await run(upstream, planned(target("a", retry=policy), target("b")))
    assert (upstream.calls, route.retries) == (["a", "b"], 0)


async def test_retry_on_network_error() -> None:
    policy = RetryPolicy(attempts=1, on_status_codes=frozenset())
    upstream = Upstream(a=[network_error(), ok("a")])
    route = await run(upstream, planned(target("a", retry=policy)))
    assert (label(route), route.retries) == ("a", 1)


async def test_retry_uses_retry_after_when_longer_than_delay() -> None:
    policy = RetryPolicy(attempts=1, delay=1.0, use_retry_after=True)
    upstream = Upstream(a=[answer(429, retry_after=7.0), ok("a")])
    await run(upstream, planned(target("a", retry=policy)))
    assert upstream.sleeps == [7.0]


async def test_retry_keeps_delay_when_retry_after_is_shorter() -> None:
    policy = RetryPolicy(attempts=1, delay=3.0, use_retry_after=True)
    upstream = Upstream(a=[answer(429, retry_after=1.0), ok("a")])
    await run(upstream, planned(target("a", retry=policy)))
    assert upstream.sleeps == [3.0]


async def test_retry_ignores_retry_after_unless_asked() -> None:
    policy = RetryPolicy(attempts=1, delay=1.0)
    upstream = Upstream(a=[answer(429, retry_after=7.0), ok("a")])
    await run(upstream, planned(target("a", retry=policy)))
    assert upstream.sleeps == [1.0]


async def test_caller_fault_is_not_retried() -> None:
    policy = RetryPolicy(attempts=3)
    gone = Outcome[Response](error=GatewayError("client went away"), network_error=True, caller_fault=True)
    upstream = Upstream(a=[gone])
    route = await run(upstream, planned(target("a", retry=policy)))
    assert (upstream.calls, route.retries) == (["a"], 0)


async def test_non_replayable_outcome_is_not_retried() -> None:
    policy = RetryPolicy(attempts=3)
    upstream = Upstream(a=[network_error(replayable=False)])
    route = await run(upstream, planned(target("a", retry=policy)))
    assert (upstream.calls, route.retries) == (["a"], 0)


async def test_negative_retry_attempts_still_try_once() -> None:
    upstream = Upstream(a=[ok("a")])
    route = await run(upstream, planned(target("a", retry=RetryPolicy(attempts=-2))))
    assert (label(route), upstream.calls) == ("a", ["a"])


async def test_last_retry_response_of_last_target_goes_to_the_caller() -> None:
    policy = RetryPolicy(attempts=1)
    upstream = Upstream(a=[answer(503, "first"), answer(503, "second")])
    route = await run(upstream, planned(target("a", retry=policy)))
    assert label(route) == "second"
    assert [r.label for r in upstream.discarded] == ["first"]


# -- discards and counters -----------------------------------------------------------------------


async def test_every_dropped_response_is_discarded_once() -> None:
    policy = RetryPolicy(attempts=1)
    upstream = Upstream(
        a=[answer(503, "a1"), answer(503, "a2")], b=[network_error()], c=[answer(429, "c1")], d=[ok("d")]
    )
    route = await run(upstream, planned(target("a", retry=policy), target("b"), target("c"), target("d")))
    assert [r.label for r in upstream.discarded] == ["a1", "a2", "c1"]
    assert label(route) == "d"


async def test_final_response_is_never_discarded() -> None:
    upstream = Upstream(a=[answer(503, "a")], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b")))
    assert route.outcome.result not in upstream.discarded


async def test_route_result_counts_retries_and_fallbacks() -> None:
    policy = RetryPolicy(attempts=2)
    upstream = Upstream(a=[answer(503), answer(503), answer(503)], b=[network_error()], c=[ok("c")])
    route = await run(upstream, planned(target("a", retry=policy), target("b"), target("c")))
    assert (route.retries, route.fallbacks, len(route.attempts)) == (2, 2, 5)


async def test_route_result_records_each_attempt() -> None:
    upstream = Upstream(a=[answer(503)], b=[network_error()], c=[ok("c")])
    route = await run(upstream, planned(target("a"), target("b"), target("c"), cooled=["c"]))
    assert [(a.target, a.status, a.error, a.cooled) for a in route.attempts] == [
        ("a", 503, None, False),
        ("b", None, "upstream_error", False),
        ("c", 200, None, True),
    ]


async def test_attempt_duration_comes_from_the_injected_clock() -> None:
    upstream = Upstream(Clock(), 0.25, a=[ok("a")])
    route = await run(upstream, planned(target("a")))
    assert route.attempts[0].duration_ms == 250.0


async def test_route_result_final_target_is_the_one_that_answered() -> None:
    b = target("b")
    upstream = Upstream(a=[answer(503)], b=[ok("b")])
    route = await run(upstream, planned(target("a"), b))
    assert route.final is b


async def test_used_cooled_target_when_final_attempt_was_cooled() -> None:
    upstream = Upstream(a=[answer(503)], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b"), cooled=["a", "b"]))
    assert route.used_cooled_target


async def test_not_used_cooled_target_when_a_healthy_target_answered() -> None:
    upstream = Upstream(a=[ok("a")], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b"), cooled=["b"]))
    assert not route.used_cooled_target


# -- deadline ------------------------------------------------------------------------------------


async def test_deadline_stops_further_fallbacks() -> None:
    upstream = Upstream(Clock(), 5.0, a=[answer(503, "a")], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b")), deadline=5.0)
    assert (label(route), upstream.calls, upstream.discarded) == ("a", ["a"], [])


async def test_fallback_continues_before_the_deadline() -> None:
    upstream = Upstream(Clock(), 1.0, a=[answer(503)], b=[ok("b")])
    route = await run(upstream, planned(target("a"), target("b")), deadline=5.0)
    assert (label(route), upstream.calls) == ("b", ["a", "b"])


async def test_deadline_skips_a_retry_whose_wait_would_cross_it() -> None:
    policy = RetryPolicy(attempts=3, delay=2.0)
    upstream = Upstream(Clock(), 1.0, a=[answer(503, "a1"), answer(503, "a2")])
    route = await run(upstream, planned(target("a", retry=policy)), deadline=4.5)
    assert (upstream.calls, upstream.sleeps, label(route)) == (["a", "a"], [2.0], "a2")


async def test_deadline_reached_during_retries_stops_fallback() -> None:
    policy = RetryPolicy(attempts=5)
    upstream = Upstream(Clock(), 2.0, a=[answer(503, "a1"), answer(503, "a2")], b=[ok("b")])
    route = await run(upstream, planned(target("a", retry=policy), target("b")), deadline=4.0)
    assert (upstream.calls, label(route), [r.label for r in upstream.discarded]) == (["a", "a"], "a2", ["a1"])


async def test_skipped_retry_still_falls_back_while_time_remains() -> None:
    policy = RetryPolicy(attempts=5, delay=1.0)
    upstream = Upstream(Clock(), 1.0, a=[answer(503)] * 2, b=[ok("b")])
    route = await run(upstream, planned(target("a", retry=policy), target("b")), deadline=4.0)
    assert (upstream.calls, upstream.sleeps, label(route)) == (["a", "a", "b"], [1.0], "b")


# -- health bookkeeping --------------------------------------------------------------------------


async def test_counted_failures_cool_the_target() -> None:
    clock = Clock()
    health = health_for(clock, threshold=2)
    policy = RetryPolicy(attempts=1)
    await run(Upstream(clock, a=[answer(503), answer(503)]), planned(target("a", retry=policy)), health)
    assert health.is_cooled("proxy:acct/a")


async def test_network_errors_cool_the_target() -> None:
    clock = Clock()
    health = health_for(clock, threshold=1)
    await run(Upstream(clock, a=[network_error()], b=[ok("b")]), planned(target("a"), target("b")), health)
    assert health.is_cooled("proxy:acct/a")


async def test_caller_error_status_does_not_cool_the_target() -> None:
    clock = Clock()
    health = health_for(clock, threshold=1)
    await run(Upstream(clock, a=[answer(422)]), planned(target("a")), health)
    assert not health.is_cooled("proxy:acct/a")


async def test_ttft_408_falls_back_without_cooling() -> None:
    clock = Clock()
    health = health_for(clock, threshold=1)
    ttft = Outcome[Response](status=408, error=GatewayTimeout("no first token"), always_fallback=True)
    await run(Upstream(clock, a=[ttft], b=[ok("b")]), planned(target("a"), target("b")), health)
    assert not health.is_cooled("proxy:acct/a")


async def test_429_retry_after_cools_the_target_that_long() -> None:
    clock = Clock(10.0)
    health = health_for(clock)
    await run(Upstream(clock, a=[answer(429, retry_after=20.0)]), planned(target("a")), health)
    assert health.cooled_until("proxy:acct/a") == 30.0


async def test_success_resets_the_target_streak() -> None:
    clock = Clock()
    health = health_for(clock, threshold=2)
    health.record_failure("proxy:acct/a")
    await run(Upstream(clock, a=[ok("a")]), planned(target("a")), health)
    health.record_failure("proxy:acct/a")
    assert not health.is_cooled("proxy:acct/a")
