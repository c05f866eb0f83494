"""Cooldowns and revocations shared through real Redis (127.0.0.1:6379; `.ci/run` starts it)."""

from __future__ import annotations

import asyncio
import os

import pytest
import redis

from relaygate.routing.health import CooldownPolicy, HealthTracker
from relaygate.shared_state import COOLDOWN_PREFIX, SharedState, publish_revocation
from tests.helpers.redis_check import redis_answers

REDIS_URL = os.environ.get("RELAYGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


pytestmark = pytest.mark.skipif(not redis_answers(REDIS_URL), reason="Redis at 127.0.0.1:6379 is not reachable")


def _tracker() -> HealthTracker:
    return HealthTracker(CooldownPolicy(threshold=1, window=60.0, base_cooldown=30.0, max_cooldown=300.0))


async def _replica(key_space: str) -> tuple[SharedState, HealthTracker, list[str]]:
    tracker = _tracker()
    revoked: list[str] = []
    shared = SharedState(REDIS_URL, {key_space: tracker}, revoked.append)
    await shared.start()
    await asyncio.wait_for(shared.connected.wait(), 5)
    return shared, tracker, revoked


async def _eventually(check: object, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def _clean() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(match=f"{COOLDOWN_PREFIX}test-*"):
        client.delete(name)


async def test_a_cooldown_on_one_replica_is_seen_by_the_other() -> None:
    one, tracker_one, _ = await _replica("test-a")
    two, tracker_two, _ = await _replica("test-a")
    try:
        assert tracker_one.record_failure("model:acct/x") is True
        await _eventually(lambda: tracker_two.is_cooled("model:acct/x"))
        assert 25 < tracker_two.cooled_until("model:acct/x") - tracker_two.now() <= 30
        assert not tracker_two.is_cooled("model:acct/other")
    finally:
        await one.stop()
        await two.stop()


async def test_a_replica_starting_later_loads_running_cooldowns() -> None:
    one, tracker_one, _ = await _replica("test-b")
    try:
        tracker_one.record_failure("proxy:acct/ep", retry_after=90.0)
        client = redis.Redis.from_url(REDIS_URL)
        await _eventually(lambda: client.exists(f"{COOLDOWN_PREFIX}test-b:proxy:acct/ep") == 1)
        late, tracker_late, _ = await _replica("test-b")
        try:
            assert tracker_late.is_cooled("proxy:acct/ep")
            assert 80 < tracker_late.cooled_until("proxy:acct/ep") - tracker_late.now() <= 90
        finally:
            await late.stop()
    finally:
        await one.stop()


async def test_a_published_revocation_reaches_every_replica() -> None:
    one, _, revoked_one = await _replica("test-c")
    two, _, revoked_two = await _replica("test-c")
    try:
        await asyncio.to_thread(publish_revocation, REDIS_URL, "abcdef123456")
        await _eventually(lambda: revoked_one == ["abcdef123456"] and revoked_two == ["abcdef123456"])
    finally:
        await one.stop()
        await two.stop()


async def test_redis_down_keeps_local_cooldowns_working() -> None:
    tracker = _tracker()
    shared = SharedState("redis://127.0.0.1:1/0", {"test-d": tracker}, lambda _: None)
    await shared.start()
    try:
        assert tracker.record_failure("model:acct/y") is True
        assert tracker.is_cooled("model:acct/y")
        await _eventually(lambda: shared.dropped == 1)
    finally:
        await shared.stop()
