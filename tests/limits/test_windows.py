"""Sliding rate-limit windows, on both backends, with the injected clock.

Slots are 1 s for per-minute rules and remember their latest reservation: a slot is counted until
that reservation is 60 s old, so "T0 + 60" is when a burst at T0 has fully left the window.
"""

from __future__ import annotations

import random

from relaygate.limits.backend import Backend, Refusal, Reservation
from tests.limits.conftest import FakeClock, compile_, user

MODEL = "openai-main/gpt-4o"


def rpm(limit: int, unit: str = "requests_per_minute", **extra: object):  # type: ignore[no-untyped-def]
    return compile_([{"id": "rpm", "limit_to": limit, "unit": unit, **extra}]).match(user(), MODEL, {})


async def admitted(backend: Backend, plan, count: int, **kwargs: object) -> int:  # type: ignore[no-untyped-def]
    results = [await backend.reserve(plan, **kwargs) for _ in range(count)]  # type: ignore[arg-type]
    return sum(isinstance(r, Reservation) for r in results)


async def test_limit_admits_n_then_refuses_with_rule_id_and_retry_after(backend: Backend) -> None:
    plan = rpm(3)
    assert await admitted(backend, plan, 3) == 3
    refusal = await backend.reserve(plan)
    assert isinstance(refusal, Refusal)
    assert (refusal.reason, refusal.rule_id, refusal.retry_after) == ("rate_limit", "rpm", 60)


async def test_no_double_burst_at_a_window_boundary(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(5)
    clock.advance(59.5)  # the end of a clock minute
    assert await admitted(backend, plan, 5) == 5
    clock.advance(1.0)  # a fixed window would have reset here
    assert await admitted(backend, plan, 5) == 0


async def test_window_recovers_once_the_burst_has_slid_out(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(5)
    clock.advance(59.5)
    assert await admitted(backend, plan, 5) == 5
    clock.advance(59.9)  # 119.4: the burst at 59.5 is still within the last 60 s
    assert await admitted(backend, plan, 1) == 0
    clock.advance(0.1)  # 119.5: it has left
    assert await admitted(backend, plan, 6) == 5


async def test_retry_after_is_when_the_request_fits_again(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(2)
    assert await admitted(backend, plan, 1) == 1  # T0
    clock.advance(30)
    assert await admitted(backend, plan, 1) == 1  # T0 + 30
    clock.advance(5)
    refusal = await backend.reserve(plan)
    assert isinstance(refusal, Refusal)
    assert refusal.retry_after == 25  # the T0 request leaves at T0 + 60
    clock.advance(refusal.retry_after - 1)
    assert isinstance(await backend.reserve(plan), Refusal)
    clock.advance(1)
    assert isinstance(await backend.reserve(plan), Reservation)


async def test_requests_spread_over_the_window_slide_out_one_by_one(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(6)
    for _ in range(6):
        assert await admitted(backend, plan, 1) == 1
        clock.advance(10)  # requests at 0, 10, ..., 50
    assert clock.now % 60 == 0  # T0 + 60
    clock.advance(-0.001)
    assert await admitted(backend, plan, 1) == 0
    clock.advance(0.001)  # T0 + 60: only the request at T0 left
    assert await admitted(backend, plan, 2) == 1
    clock.advance(10)  # T0 + 70: the one at T0 + 10 left
    assert await admitted(backend, plan, 2) == 1


async def test_long_idle_period_forgets_everything(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(4)
    assert await admitted(backend, plan, 4) == 4
    clock.advance(3600)
    assert await admitted(backend, plan, 5) == 4


async def test_per_hour_window_slides_in_one_minute_slots(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(2, "requests_per_hour")
    assert await admitted(backend, plan, 3) == 2
    clock.advance(3599)
    assert await admitted(backend, plan, 1) == 0  # still within the hour
    clock.advance(1)
    assert await admitted(backend, plan, 3) == 2


async def test_per_day_window(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(1, "requests_per_day")
    assert await admitted(backend, plan, 2) == 1
    clock.advance(86_400 - 60)
    refusal = await backend.reserve(plan)
    assert isinstance(refusal, Refusal) and 0 < refusal.retry_after <= 1440 + 60
    clock.advance(refusal.retry_after)
    assert await admitted(backend, plan, 1) == 1


async def test_buckets_are_independent(backend: Backend) -> None:
    rules = compile_(
        [{"id": "per-user", "limit_to": 1, "unit": "requests_per_minute", "rate_limit_applies_per": "user"}]
    )
    alice, bob = rules.match(user("alice@x.com"), MODEL, {}), rules.match(user("bob@x.com"), MODEL, {})
    assert await admitted(backend, alice, 2) == 1
    assert await admitted(backend, bob, 2) == 1


async def test_empty_plan_reserves_nothing(backend: Backend) -> None:
    plan = compile_().match(user(), MODEL, {})
    reservation = await backend.reserve(plan)
    assert isinstance(reservation, Reservation) and reservation.keys == ()
    await backend.settle(reservation, tokens=10, cost=1.0)
    assert backend.stats.reserves_total == 0


async def test_clock_going_backwards_does_not_reopen_the_window(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(2)
    clock.advance(100)
    assert await admitted(backend, plan, 2) == 2
    clock.advance(-90)  # another replica's clock, 90 s behind
    assert await admitted(backend, plan, 1) == 0


async def test_retry_after_never_exceeds_the_window(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(5)
    clock.advance(0.3)  # mid-second: the slot began 0.3 s before the burst
    assert await admitted(backend, plan, 5) == 5
    clock.advance(0.5)
    refusal = await backend.reserve(plan)
    assert isinstance(refusal, Refusal) and refusal.retry_after == 60  # 59.5 s, not 60.5 s (61)
    clock.advance(59.49)
    assert isinstance(await backend.reserve(plan), Refusal)
    clock.advance(0.01)  # T0 + 60.3: the burst is 60 s old
    assert await admitted(backend, plan, 6) == 5


async def test_a_slot_leaves_with_its_latest_request(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(2)
    clock.advance(0.1)
    assert await admitted(backend, plan, 1) == 1
    clock.advance(0.8)  # T0 + 0.9, the same 1 s slot
    assert await admitted(backend, plan, 1) == 1
    clock.advance(60.0)  # T0 + 60.9: both have left
    assert await admitted(backend, plan, 3) == 2


async def test_no_span_of_one_window_ever_holds_more_than_the_limit(backend: Backend, clock: FakeClock) -> None:
    plan = rpm(5)
    rng = random.Random(6)
    times: list[float] = []
    for _ in range(400):
        clock.advance(rng.choice((0.125, 0.25, 0.75, 1.0, 2.5, 9.0)))  # exact in binary: no float drift
        if isinstance(await backend.reserve(plan), Reservation):
            times.append(clock.now)
    assert len(times) > 25  # the window did keep reopening
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 60) <= 5


async def test_retry_after_stays_within_the_window_when_a_caller_clock_lags(backend: Backend, clock: FakeClock) -> None:
    # Replicas (and concurrent requests) read the clock before their call: a refused request's "now"
    # may be a few ms behind the reservations that filled the window.
    plan = rpm(1)
    clock.advance(0.5)
    assert await admitted(backend, plan, 1) == 1
    clock.advance(-0.005)
    refusal = await backend.reserve(plan)
    assert isinstance(refusal, Refusal) and refusal.retry_after == 60
