"""The in-process store: an LRU bounded in bytes, with TTLs, prefix purge and the request index."""

from __future__ import annotations

import pytest

from relaygate.cache.key import namespace_prefix, request_index_key
from relaygate.cache.memory import MemoryCache


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_set_get_delete(clock: Clock) -> None:
    cache = MemoryCache(1024, clock=clock)
    assert await cache.get("k") is None
    await cache.set("k", b"value", 60)
    assert await cache.get("k") == b"value"
    await cache.set("k", b"other", 60)  # replaces, and is counted once
    assert await cache.get("k") == b"other"
    assert cache.stats() == {"entries": 1, "bytes": len("k") + len(b"other"), "evictions": 0, "expirations": 0}
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert await cache.get("k") is None
    assert cache.stats()["bytes"] == 0


async def test_least_recently_used_goes_first_when_bytes_run_out(clock: Clock) -> None:
    cache = MemoryCache(3 * (2 + 10), clock=clock)  # room for three 2-char keys with 10-byte values
    for key in ("k1", "k2", "k3"):
        await cache.set(key, b"x" * 10, 60)
    assert await cache.get("k1") is not None  # k1 is now the most recently used; k2 the least
    await cache.set("k4", b"y" * 10, 60)
    assert await cache.get("k2") is None
    assert [await cache.get(k) is not None for k in ("k1", "k3", "k4")] == [True, True, True]
    assert cache.stats() == {"entries": 3, "bytes": 36, "evictions": 1, "expirations": 0}
    await cache.set("k5", b"z" * 22, 60)  # needs two slots' worth: the two least recent go
    assert await cache.get("k1") is None and await cache.get("k3") is None
    assert await cache.get("k4") == b"y" * 10 and await cache.get("k5") == b"z" * 22
    assert cache.stats()["bytes"] == 12 + 24 <= cache.max_bytes
    assert cache.stats()["evictions"] == 3


async def test_a_value_larger_than_the_cache_is_not_stored(clock: Clock) -> None:
    cache = MemoryCache(100, clock=clock)
    await cache.set("small", b"s", 60)
    await cache.set("big", b"b" * 100, 60)  # 3 + 100 > 100
    assert await cache.get("big") is None
    assert await cache.get("small") == b"s"  # and nothing was evicted for it
    assert cache.stats()["evictions"] == 0


async def test_entries_expire_after_their_ttl(clock: Clock) -> None:
    cache = MemoryCache(1024, clock=clock)
    await cache.set("short", b"1", 5)
    await cache.set("long", b"2", 50)
    clock.now += 4.9
    assert await cache.get("short") == b"1"
    clock.now += 0.2
    assert await cache.get("short") is None
    assert await cache.get("long") == b"2"
    assert cache.stats() == {"entries": 1, "bytes": 5, "evictions": 0, "expirations": 1}
    assert await cache.delete("long") is True
    await cache.set("gone", b"3", 0)  # a TTL of zero stores nothing
    assert await cache.get("gone") is None


async def test_an_expired_entry_does_not_count_as_deleted_or_purged(clock: Clock) -> None:
    cache = MemoryCache(1024, clock=clock)
    await cache.set("p:a", b"1", 1)
    await cache.set("p:b", b"2", 100)
    clock.now += 2
    assert await cache.purge("p:") == 1
    await cache.set("q", b"1", 1)
    clock.now += 2
    assert await cache.delete("q") is False
    assert cache.stats()["entries"] == 0


async def test_expired_entries_are_dropped_first_when_making_room(clock: Clock) -> None:
    cache = MemoryCache(2 * (2 + 10), clock=clock)
    await cache.set("k1", b"x" * 10, 1)
    await cache.set("k2", b"x" * 10, 100)
    clock.now += 5
    await cache.set("k3", b"x" * 10, 100)  # k1 is the oldest and already expired
    assert cache.stats() == {"entries": 2, "bytes": 24, "evictions": 0, "expirations": 1}


async def test_purge_removes_exactly_the_keys_under_a_prefix(clock: Clock) -> None:
    cache = MemoryCache(1 << 20, clock=clock)
    team_a, team_b = namespace_prefix("team-a"), namespace_prefix("team-b")
    for i in range(5):
        await cache.set(f"{team_a}{i:064x}", b"a", 60)
        await cache.set(f"{team_b}{i:064x}", b"b", 60)
    await cache.index_request("req-1", f"{team_a}{0:064x}", 60)
    assert await cache.purge(team_a) == 5
    assert await cache.purge(team_a) == 0
    assert await cache.get(f"{team_b}{3:064x}") == b"b"
    assert await cache.get(f"{team_a}{3:064x}") is None
    assert await cache.key_for_request("req-1") == f"{team_a}{0:064x}"  # the index is not under a namespace
    assert cache.stats()["entries"] == 6
    with pytest.raises(ValueError):
        await cache.purge("")


async def test_request_index_finds_the_entry_a_request_produced(clock: Clock) -> None:
    cache = MemoryCache(1 << 20, clock=clock)
    storage_key = namespace_prefix("") + "ab" * 32
    await cache.set(storage_key, b"entry", 60)
    await cache.index_request("req-42", storage_key, 60)
    assert await cache.get(request_index_key("req-42")) == storage_key.encode()
    found = await cache.key_for_request("req-42")
    assert found == storage_key
    assert await cache.delete(found) is True
    assert await cache.key_for_request("req-unknown") is None
    clock.now += 61
    assert await cache.key_for_request("req-42") is None


async def test_close_empties_the_cache(clock: Clock) -> None:
    cache = MemoryCache(1024, clock=clock)
    await cache.set("k", b"v", 60)
    await cache.close()
    assert cache.stats()["entries"] == 0 and cache.stats()["bytes"] == 0
