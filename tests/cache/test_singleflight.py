"""Single-flight: concurrent identical misses make one upstream call, and nothing is left behind."""

from __future__ import annotations

import asyncio

import pytest

from relaygate.cache.singleflight import SingleFlight


class Upstream:
    """A fake upstream call the test holds open until it says so."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()

    async def call(self) -> bytes:
        self.calls += 1
        await self.gate.wait()
        return b"answer-%d" % self.calls


async def serve(flights: SingleFlight[bytes], key: str, upstream: Upstream, *, fail: bool = False) -> bytes:
    """What the request path does on a miss: lead (call upstream, publish) or follow (wait, else call)."""
    async with flights.lead_or_follow(key) as flight:
        if flight.is_leader:
            value = await upstream.call()
            if fail:
                raise RuntimeError("upstream broke")
            flight.publish(value)
            return value
        shared = await flight.wait()
    return shared if shared is not None else await upstream.call()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_ten_followers_get_the_leaders_value_from_one_upstream_call() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=5)
    upstream = Upstream()
    tasks = [asyncio.create_task(serve(flights, "k", upstream)) for _ in range(11)]
    await settle()
    assert len(flights) == 1 and upstream.calls == 1
    upstream.gate.set()
    assert await asyncio.gather(*tasks) == [b"answer-1"] * 11
    assert upstream.calls == 1
    assert len(flights) == 0


async def test_a_failing_leader_releases_followers_to_call_upstream_themselves() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=5)
    upstream = Upstream()
    leader = asyncio.create_task(serve(flights, "k", upstream, fail=True))
    await settle()
    followers = [asyncio.create_task(serve(flights, "k", upstream)) for _ in range(3)]
    await settle()
    assert upstream.calls == 1
    upstream.gate.set()
    with pytest.raises(RuntimeError, match="upstream broke"):
        await leader
    assert sorted(await asyncio.gather(*followers)) == [b"answer-2", b"answer-3", b"answer-4"]
    assert len(flights) == 0


async def test_a_cancelled_leader_releases_followers_with_nothing() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=5)
    upstream = Upstream()
    leader = asyncio.create_task(serve(flights, "k", upstream))
    await settle()

    async def follow() -> bytes | None:
        async with flights.lead_or_follow("k") as flight:
            assert not flight.is_leader
            return await flight.wait()

    followers = [asyncio.create_task(follow()) for _ in range(3)]
    await settle()
    leader.cancel()
    assert await asyncio.gather(*followers) == [None, None, None]
    assert leader.cancelled()
    assert len(flights) == 0


async def test_a_leader_leaving_without_publishing_shares_nothing() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=5)
    async with flights.lead_or_follow("k") as leader:
        assert leader.is_leader
        async with flights.lead_or_follow("k") as follower:
            waiting = asyncio.create_task(follower.wait())
            await settle()
            assert not waiting.done()
    assert await waiting is None
    assert len(flights) == 0


async def test_a_follower_stops_waiting_at_its_timeout() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=0.05)
    async with flights.lead_or_follow("k") as leader:
        async with flights.lead_or_follow("k") as follower:
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await follower.wait() is None
            assert loop.time() - started >= 0.04
            assert await follower.wait(timeout=0.01) is None  # a per-call timeout
        leader.publish(b"late")  # nobody is hurt by a publish after followers gave up
    assert len(flights) == 0


async def test_a_cancelled_follower_does_not_disturb_the_flight() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=5)
    async with flights.lead_or_follow("k") as leader:
        async with flights.lead_or_follow("k") as first, flights.lead_or_follow("k") as second:
            doomed, patient = asyncio.create_task(first.wait()), asyncio.create_task(second.wait())
            await settle()
            doomed.cancel()
            await settle()
            leader.publish(b"value")
            assert await patient == b"value"
            assert doomed.cancelled()
    assert len(flights) == 0


async def test_after_a_publish_the_next_miss_starts_a_new_flight() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=5)
    async with flights.lead_or_follow("k") as first:
        first.publish(b"one")
        first.publish(b"ignored")  # only the first publish counts
        assert len(flights) == 0
        async with flights.lead_or_follow("k") as second:
            assert second.is_leader
            second.publish(b"two")
    assert len(flights) == 0


async def test_keys_fly_independently() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=5)
    async with flights.lead_or_follow("a") as a, flights.lead_or_follow("b") as b:
        assert a.is_leader and b.is_leader
        assert len(flights) == 2
    assert len(flights) == 0


async def test_roles_are_enforced() -> None:
    flights: SingleFlight[bytes] = SingleFlight(timeout=5)
    async with flights.lead_or_follow("k") as leader, flights.lead_or_follow("k") as follower:
        with pytest.raises(RuntimeError):
            await leader.wait()
        with pytest.raises(RuntimeError):
            follower.publish(b"x")
    assert len(flights) == 0
