"""Many concurrent reserves against a limit of N admit exactly N (memory, Redis, two Redis "replicas")."""

from __future__ import annotations

import asyncio

from relaygate.limits.backend import Backend, Refusal, Reservation
from relaygate.limits.memory import MemoryBackend
from relaygate.limits.redis import RedisBackend
from tests.limits.conftest import FakeClock, compile_, make_redis_backend, needs_redis, user

MODEL = "openai-main/gpt-4o"


async def admitted_concurrently(backends: list[Backend], plan, count: int, **kwargs: object) -> int:  # type: ignore[no-untyped-def]
    decisions = await asyncio.gather(
        *(backends[i % len(backends)].reserve(plan, **kwargs) for i in range(count))  # type: ignore[arg-type]
    )
    return sum(isinstance(d, Reservation) for d in decisions)


def plan_with(rates=(), budgets=()):  # type: ignore[no-untyped-def]
    return compile_(rates, budgets).match(user(), MODEL, {})


async def test_concurrent_requests_admit_exactly_n(backend: Backend) -> None:
    plan = plan_with([{"id": "rpm", "limit_to": 50, "unit": "requests_per_minute"}])
    assert await admitted_concurrently([backend], plan, 300) == 50


async def test_concurrent_token_reservations_stop_once_the_limit_is_reached(backend: Backend) -> None:
    plan = plan_with([{"id": "tpm", "limit_to": 10_000, "unit": "tokens_per_minute"}])
    decisions = await asyncio.gather(*(backend.reserve(plan, tokens=300) for _ in range(200)))
    reservations = [d for d in decisions if isinstance(d, Reservation)]
    # The estimate must fit: 33 x 300 = 9_900, and a 34th would need 10_200; never past the limit.
    assert len(reservations) == 33
    # Each reservation saw every earlier estimate at once: the counts it was admitted at are exactly
    # 0, 300, ..., 9_600 (no two requests were admitted against the same count).
    used_before = sorted(10_000 - r.remaining[0] - 300 for r in reservations)
    assert used_before == [300.0 * i for i in range(33)]
    refusals = [d for d in decisions if isinstance(d, Refusal)]
    assert len(refusals) == 167 and {r.rule_id for r in refusals} == {"tpm"}


async def test_estimates_in_flight_count_against_concurrent_requests(backend: Backend) -> None:
    plan = plan_with([{"id": "tpm", "limit_to": 1000, "unit": "tokens_per_minute"}])
    decisions = await asyncio.gather(*(backend.reserve(plan, tokens=600) for _ in range(3)))
    # The first takes its whole estimate at once: 400 are left, so 600 fits for neither of the others.
    assert sorted(type(d).__name__ for d in decisions) == ["Refusal", "Refusal", "Reservation"]
    assert [d.remaining[0] for d in decisions if isinstance(d, Reservation)] == [400.0]


async def test_concurrent_budget_spend_stops_at_the_limit(backend: Backend) -> None:
    plan = plan_with(budgets=[{"id": "cap", "limit_to": 1.0, "unit": "cost_per_day"}])
    assert await admitted_concurrently([backend], plan, 100, cost=0.125) == 8


async def test_memory_backend_interleaved_with_settles(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    plan = plan_with([{"id": "tpm", "limit_to": 1000, "unit": "tokens_per_minute"}])

    async def call() -> bool:
        decision = await backend.reserve(plan, tokens=100)
        if not isinstance(decision, Reservation):
            return False
        await asyncio.sleep(0)
        await backend.settle(decision, tokens=100)
        return True

    assert sum(await asyncio.gather(*(call() for _ in range(50)))) == 10


@needs_redis
async def test_two_replicas_share_one_limit(clock: FakeClock, prefix: str, redis_client: object) -> None:
    replicas: list[Backend] = [make_redis_backend(prefix, clock), make_redis_backend(prefix, clock)]
    try:
        plan = plan_with(
            [{"id": "rpm", "limit_to": 40, "unit": "requests_per_minute", "rate_limit_applies_per": "user"}],
            [{"id": "cap", "limit_to": 100.0, "unit": "cost_per_day"}],
        )
        assert await admitted_concurrently(replicas, plan, 400, cost=0.01) == 40
        assert all(isinstance(r, RedisBackend) and r.stats.backend_errors_total == 0 for r in replicas)
    finally:
        for replica in replicas:
            await replica.aclose()
