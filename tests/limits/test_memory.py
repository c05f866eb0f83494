"""The in-process backend keeps memory bounded: idle buckets are swept by themselves."""

from __future__ import annotations

from relaygate.limits.backend import Reservation
from relaygate.limits.budgets import SETTLE_GRACE
from relaygate.limits.memory import MemoryBackend
from tests.limits.conftest import FakeClock, compile_, user

MODEL = "openai-main/gpt-4o"
PER_CUSTOMER = [
    {"id": "rpm", "limit_to": 5, "unit": "requests_per_minute", "rate_limit_applies_per": "metadata.customer"}
]


async def test_idle_sliding_buckets_are_swept(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock, sweep_interval=60)
    rules = compile_(PER_CUSTOMER)
    for i in range(1000):
        assert isinstance(await backend.reserve(rules.match(user(), MODEL, {"customer": f"c{i}"})), Reservation)
    assert len(backend) == 1000
    clock.advance(62)  # every bucket's last slot has left its window
    await backend.reserve(rules.match(user(), MODEL, {"customer": "new"}))
    assert len(backend) == 1


async def test_active_buckets_survive_a_sweep(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    plan = compile_(PER_CUSTOMER).match(user(), MODEL, {"customer": "busy"})
    for _ in range(5):
        assert isinstance(await backend.reserve(plan), Reservation)
    clock.advance(30)
    backend.sweep()
    assert not isinstance(await backend.reserve(plan), Reservation)


async def test_budget_counters_are_swept_after_their_window_and_grace(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    plan = compile_(budgets=[{"id": "cap", "limit_to": 1, "unit": "cost_per_day"}]).match(user(), MODEL, {})
    assert isinstance(await backend.reserve(plan, cost=0.5), Reservation)
    clock.advance(86_400 + SETTLE_GRACE - 1)
    backend.sweep()
    assert len(backend) == 1
    clock.advance(1)
    backend.sweep()
    assert len(backend) == 0
