"""Redis specifics: key TTLs, script reload, and what happens when Redis is unreachable or restarts."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from relaygate.limits.backend import Refusal, Reservation
from relaygate.limits.budgets import SETTLE_GRACE
from relaygate.limits.redis import RedisBackend
from tests.helpers.gateway import free_port
from tests.limits.conftest import FakeClock, compile_, user

MODEL = "openai-main/gpt-4o"


def plan_with(rates=(), budgets=()):  # type: ignore[no-untyped-def]
    return compile_(rates, budgets).match(user(), MODEL, {})


RPM = [{"id": "rpm", "limit_to": 2, "unit": "requests_per_minute", "rate_limit_applies_per": "metadata.customer"}]


async def test_sliding_keys_expire_after_two_windows(redis_backend: RedisBackend, redis_client: Redis) -> None:
    plan = compile_(RPM).match(user(), MODEL, {"customer": "c-123"})
    assert isinstance(await redis_backend.reserve(plan), Reservation)
    keys = [k async for k in redis_client.scan_iter(match=redis_backend.prefix + "*")]
    assert len(keys) == 1 and b"c-123" in keys[0]
    assert 110_000 < await redis_client.pttl(keys[0]) <= 120_000


async def test_budget_keys_expire_when_their_window_ends(
    redis_backend: RedisBackend, redis_client: Redis, clock: FakeClock
) -> None:
    clock.advance(20 * 3600)  # 20:00 UTC: the day window ends in 4 hours
    plan = plan_with(budgets=[{"id": "cap", "limit_to": 1.0, "unit": "cost_per_day"}])
    assert isinstance(await redis_backend.reserve(plan, cost=0.1), Reservation)
    keys = [k async for k in redis_client.scan_iter(match=redis_backend.prefix + "*")]
    assert len(keys) == 1
    assert (4 * 3600 + SETTLE_GRACE - 1) * 1000 < await redis_client.pttl(keys[0]) <= (4 * 3600 + SETTLE_GRACE) * 1000


async def test_settle_after_the_budget_key_expired_does_not_recreate_it(
    redis_backend: RedisBackend, redis_client: Redis
) -> None:
    plan = plan_with(budgets=[{"id": "cap", "limit_to": 1.0, "unit": "cost_per_day"}])
    reservation = await redis_backend.reserve(plan, cost=0.1)
    assert isinstance(reservation, Reservation)
    await redis_client.delete(*[k async for k in redis_client.scan_iter(match=redis_backend.prefix + "*")])
    await redis_backend.settle(reservation, cost=0.5)
    assert [k async for k in redis_client.scan_iter(match=redis_backend.prefix + "*")] == []


async def test_script_is_reloaded_after_a_script_flush(redis_server: int, clock: FakeClock) -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{redis_server}/0", clock=clock)
    plan = plan_with(RPM)
    assert isinstance(await backend.reserve(plan), Reservation)
    client = Redis(port=redis_server)
    await client.script_flush()
    assert isinstance(await backend.reserve(plan), Reservation)
    assert isinstance(await backend.reserve(plan), Refusal)
    assert backend.stats.backend_errors_total == 0
    await client.aclose()
    await backend.aclose()


@pytest.mark.parametrize("on_error", ["allow", "deny"])
async def test_unreachable_redis_is_fast_and_follows_on_backend_error(on_error: str, clock: FakeClock) -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{free_port()}/0", on_backend_error=on_error, clock=clock)  # type: ignore[arg-type]
    plan = plan_with(RPM)
    started = time.perf_counter()
    decisions = [await backend.reserve(plan) for _ in range(5)]
    assert time.perf_counter() - started < 0.25
    if on_error == "allow":
        reservations = [d for d in decisions if isinstance(d, Reservation) and d.degraded]
        assert len(reservations) == 5
        assert backend.stats.allowed_on_error_total == 5
        await backend.settle(reservations[0], tokens=10)  # a no-op, never raises
    else:
        assert all(isinstance(d, Refusal) and d.reason == "backend_unavailable" for d in decisions)
        error = decisions[0].error()  # type: ignore[union-attr]
        assert (error.status, error.headers["retry-after"]) == (503, "1")
        assert backend.stats.denied_on_error_total == 5
    assert backend.stats.backend_errors_total == 1  # the others skipped Redis until retry_interval
    await backend.aclose()


async def test_every_call_retries_when_retry_interval_is_zero(clock: FakeClock) -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{free_port()}/0", clock=clock, retry_interval=0)
    for _ in range(3):
        assert isinstance(await backend.reserve(plan_with(RPM)), Reservation)
    assert backend.stats.as_dict()["backend_errors_total"] == 3
    await backend.aclose()


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        probe = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True)
        if probe.stdout.strip() == b"PONG":
            return proc
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=5)


@pytest.fixture
def redis_server() -> Iterator[int]:
    """A private redis-server on a free port, so a test may stop and restart it."""
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = _start_redis(port)
    yield port
    _stop(proc)


async def test_backend_recovers_after_redis_restarts_without_a_new_backend(clock: FakeClock) -> None:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = _start_redis(port)
    backend = RedisBackend(f"redis://127.0.0.1:{port}/0", on_backend_error="deny", clock=clock, retry_interval=0.05)
    plan = plan_with(RPM)
    try:
        assert await backend.ping()
        assert isinstance(await backend.reserve(plan), Reservation)
        _stop(proc)
        refused = await backend.reserve(plan)
        assert isinstance(refused, Refusal) and refused.reason == "backend_unavailable"
        proc = _start_redis(port)  # empty again: counts restart from zero
        await asyncio.sleep(0.06)
        assert isinstance(await backend.reserve(plan), Reservation)
        assert isinstance(await backend.reserve(plan), Reservation)
        refused = await backend.reserve(plan)
        assert isinstance(refused, Refusal) and refused.reason == "rate_limit"
    finally:
        await backend.aclose()
        _stop(proc)


async def test_a_hung_redis_costs_one_socket_timeout_then_is_skipped(redis_server: int, clock: FakeClock) -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{redis_server}/0", clock=clock, socket_timeout=0.05)
    plan = plan_with(RPM)
    assert await backend.ping()
    info = Redis(port=redis_server)
    pid = int((await info.info("server"))["process_id"])
    await info.aclose()
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.perf_counter()
        first = await backend.reserve(plan)
        first_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        second = await backend.reserve(plan)
        second_ms = (time.perf_counter() - started) * 1000
    finally:
        os.kill(pid, signal.SIGCONT)
    assert isinstance(first, Reservation) and first.degraded and 40 <= first_ms < 500
    assert isinstance(second, Reservation) and second.degraded and second_ms < 20
    await asyncio.sleep(0.3)  # past retry_interval: Redis is tried again and answers
    assert isinstance(await backend.reserve(plan), Reservation)
    assert backend.stats.backend_errors_total == 1
    await backend.aclose()


def _manifest_plan(
    rates: list[dict[str, object]],
    budgets: list[dict[str, object]],
    rate_setting: str | None,
    budget_setting: str | None,
):  # type: ignore[no-untyped-def]
    from relaygate.config.compile_limits import compile_rules
    from relaygate.config.schema_governance import BudgetConfig, RateLimitConfig

    def extra(setting: str | None) -> dict[str, object]:
        return {} if setting is None else {"on_backend_error": setting}

    rl = RateLimitConfig.model_validate(
        {"type": "gateway-rate-limiting-config", "name": "rl", "rules": rates, **extra(rate_setting)}
    )
    bg = BudgetConfig.model_validate(
        {"type": "gateway-budget-config", "name": "bg", "rules": budgets, **extra(budget_setting)}
    )
    return compile_rules([rl], [bg]).match(user(), MODEL, {})


@pytest.mark.parametrize(
    ("process", "rate_setting", "budget_setting", "expected"),
    [
        ("allow", "deny", None, "deny"),  # the manifest's deny beats the process default
        ("deny", "allow", None, "allow"),  # the manifest's allow beats the process setting
        ("allow", "allow", "deny", "deny"),  # matched rules disagree: deny wins
        ("deny", None, None, "deny"),  # unset: the process setting
    ],
)
async def test_manifest_on_backend_error_decides_for_the_rules_it_holds(
    process: str, rate_setting: str | None, budget_setting: str | None, expected: str, clock: FakeClock
) -> None:
    plan = _manifest_plan(
        [{"id": "rpm", "limit_to": 5, "unit": "requests_per_minute"}],
        [{"id": "cap", "limit_to": 5, "unit": "cost_per_day"}],
        rate_setting,
        budget_setting,
    )
    backend = RedisBackend(
        f"redis://127.0.0.1:{free_port()}/0",
        on_backend_error=process,  # type: ignore[arg-type]
        clock=clock,
    )
    decision = await backend.reserve(plan, cost=0.1)
    if expected == "deny":
        assert isinstance(decision, Refusal) and decision.reason == "backend_unavailable"
        assert backend.stats.denied_on_error_total == 1
    else:
        assert isinstance(decision, Reservation) and decision.degraded
        assert backend.stats.allowed_on_error_total == 1
    await backend.aclose()
