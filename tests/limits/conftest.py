"""Fixtures for the limits engine: an injectable clock, rule builders, and both backends.

Redis tests use the real server on 127.0.0.1:6379 (`.ci/run` starts it) under a unique key prefix
per test, deleted afterwards; they are skipped only when nothing answers there.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from relaygate.auth.access import Principal, VirtualAccountGrant, user_subjects
from relaygate.config.compile_limits import compile_rules
from relaygate.config.schema_governance import BudgetConfig, RateLimitConfig
from relaygate.limits.backend import Backend
from relaygate.limits.memory import MemoryBackend
from relaygate.limits.redis import RedisBackend
from relaygate.limits.rules import LimitRules

REDIS_URL = "redis://127.0.0.1:6379/0"
# A Monday, 00:00 UTC, and the first of a month: every window boundary is easy to reach from here.
T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not redis_reachable(), reason="Redis is not reachable on 127.0.0.1:6379")


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()


def user(email: str = "alice@example.com", teams: Iterable[str] = ()) -> Principal:
    return Principal(subject=f"user:{email}", token_id="tok-" + email, subjects=user_subjects(email, frozenset(teams)))


def virtual_account(name: str = "ci-bot") -> Principal:
    subject = f"virtualaccount:{name}"
    grant = VirtualAccountGrant(name=name, models=frozenset(), accounts=frozenset())
    return Principal(subject=subject, token_id="tok-" + name, subjects=frozenset({subject}), grant=grant)


def rate_rules(*rules: Mapping[str, Any]) -> list[RateLimitConfig]:
    return [RateLimitConfig.model_validate({"type": "gateway-rate-limiting-config", "name": "rl", "rules": rules})]


def budget_rules(*rules: Mapping[str, Any]) -> list[BudgetConfig]:
    return [BudgetConfig.model_validate({"type": "gateway-budget-config", "name": "bg", "rules": rules})]


def compile_(rates: Iterable[Mapping[str, Any]] = (), budgets: Iterable[Mapping[str, Any]] = ()) -> LimitRules:
    return compile_rules(rate_rules(*rates), budget_rules(*budgets))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prefix() -> str:
    return f"rgtest:{uuid.uuid4().hex[:12]}:"


async def cleanup(prefix: str) -> None:
    """Delete every key a test created under its prefix."""
    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def make_redis_backend(prefix: str, clock: FakeClock, **kwargs: Any) -> RedisBackend:
    kwargs.setdefault("socket_timeout", 1.0)  # a loaded CI machine must not turn into backend errors
    kwargs.setdefault("connect_timeout", 1.0)
    return RedisBackend(REDIS_URL, prefix=prefix, clock=clock, **kwargs)


@pytest.fixture
async def redis_client(prefix: str) -> AsyncIterator[Redis]:
    if not redis_reachable():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()
    await cleanup(prefix)


@pytest.fixture
async def redis_backend(redis_client: Redis, prefix: str, clock: FakeClock) -> AsyncIterator[RedisBackend]:
    backend = make_redis_backend(prefix, clock)
    yield backend
    await backend.aclose()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, clock: FakeClock, prefix: str) -> AsyncIterator[Backend]:
    """Every behavioural test runs against both backends: they must agree."""
    if request.param == "memory":
        yield MemoryBackend(clock=clock)
        return
    if not redis_reachable():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    redis_backend = make_redis_backend(prefix, clock)
    yield redis_backend
    await redis_backend.aclose()
    await cleanup(prefix)
