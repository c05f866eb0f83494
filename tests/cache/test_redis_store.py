"""The Redis store against the real server on 127.0.0.1:6379, and what it raises when Redis is gone.

Keys are written under a prefix unique to each test (storage keys are opaque to the store) and the
request index under unique request ids; everything is deleted afterwards. Tests that need the server
skip when nothing answers there; the failure tests need no server.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relaygate.cache.errors import CacheBackendError
from relaygate.cache.key import request_index_key
from relaygate.cache.redis_client import PURGE_BATCH
from relaygate.cache.redis_store import RedisCache
from tests.helpers.gateway import free_port
from tests.helpers.redis_check import redis_answers

REDIS_URL = os.environ.get("RELAYGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix() -> str:
    return f"rgtest:cache:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def request_id() -> str:
    return f"rgtest-{uuid.uuid4().hex}"


@pytest.fixture
async def raw(prefix: str, request_id: str) -> AsyncIterator[Redis]:
    """A plain client for checking what the store wrote; deletes the test's keys afterwards."""
    if not redis_answers():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (.ci/run starts it)")
    client = Redis.from_url(REDIS_URL)
    yield client
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    await client.delete(request_index_key(request_id), *keys)
    await client.aclose()


@pytest.fixture
async def store(raw: Redis) -> AsyncIterator[RedisCache]:
    cache = RedisCache(REDIS_URL, socket_timeout=2.0)  # a loaded CI machine must not turn into backend errors
    yield cache
    await cache.close()


async def test_set_get_delete(store: RedisCache, raw: Redis, prefix: str) -> None:
    key = prefix + "entry"
    assert await store.get(key) is None
    value = bytes(range(256)) * 4  # binary-safe
    await store.set(key, value, 30)
    assert await store.get(key) == value
    assert await raw.get(key) == value
    assert await store.delete(key) is True
    assert await store.delete(key) is False
    assert await store.get(key) is None


async def test_values_carry_the_ttl_in_milliseconds(store: RedisCache, raw: Redis, prefix: str) -> None:
    await store.set(prefix + "a", b"v", 600)
    assert 599_000 < await raw.pttl(prefix + "a") <= 600_000
    await store.set(prefix + "b", b"v", 0.25)
    assert 0 < await raw.pttl(prefix + "b") <= 250
    await asyncio.sleep(0.35)
    assert await store.get(prefix + "b") is None
    await store.set(prefix + "a", b"v", 0)  # a TTL of zero removes the key
    assert await raw.exists(prefix + "a") == 0


async def test_purge_removes_every_key_under_a_prefix_in_batches(store: RedisCache, raw: Redis, prefix: str) -> None:
    doomed, kept = prefix + "ns1:", prefix + "ns2:"
    count = PURGE_BATCH * 2 + 17  # more than one UNLINK batch
    async with raw.pipeline(transaction=False) as pipe:
        for i in range(count):
            pipe.set(f"{doomed}{i}", b"x", px=60_000)
        pipe.set(kept + "0", b"y", px=60_000)
        await pipe.execute()
    assert await store.purge(doomed) == count
    assert [k async for k in raw.scan_iter(match=doomed + "*")] == []
    assert await raw.get(kept + "0") == b"y"
    assert await store.purge(doomed) == 0
    with pytest.raises(ValueError):  # never "everything": this Redis may hold the limits' keys
        await store.purge("")
    assert await raw.get(kept + "0") == b"y"


async def test_purge_treats_glob_characters_in_the_prefix_literally(store: RedisCache, raw: Redis, prefix: str) -> None:
    await raw.set(prefix + "a*b:1", b"1", px=60_000)
    await raw.set(prefix + "axxb:1", b"2", px=60_000)
    assert await store.purge(prefix + "a*b:") == 1
    assert await raw.get(prefix + "axxb:1") == b"2"


async def test_request_index(store: RedisCache, raw: Redis, prefix: str, request_id: str) -> None:
    storage_key = prefix + "entry"
    await store.index_request(request_id, storage_key, 120)
    assert await raw.get(f"relaygate:cache:v1:req:{request_id}") == storage_key.encode()
    assert 119_000 < await raw.pttl(f"relaygate:cache:v1:req:{request_id}") <= 120_000
    assert await store.key_for_request(request_id) == storage_key
    assert await store.key_for_request(request_id + "-unknown") is None


async def test_the_store_has_its_own_pool(store: RedisCache) -> None:
    other = RedisCache(REDIS_URL)
    try:
        assert store._client.connection_pool is not other._client.connection_pool
        assert store._client.connection_pool.max_connections == 32
    finally:
        await other.close()


async def test_an_unreachable_redis_raises_cache_backend_error_quickly() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0")
    try:
        started = time.monotonic()
        calls = [
            cache.get("k"),
            cache.set("k", b"v", 10),
            cache.delete("k"),
            cache.purge("p:"),
            cache.index_request("r", "k", 10),
            cache.key_for_request("r"),
        ]
        for call in calls:
            with pytest.raises(CacheBackendError):
                await call
        assert time.monotonic() - started < 2.0
        assert cache.stats() == {"errors": len(calls)}
    finally:
        await cache.close()


async def test_a_blackholed_redis_times_out_as_cache_backend_error() -> None:
    """A server that accepts and never answers costs one socket_timeout, then a CacheBackendError."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", socket_timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(CacheBackendError):
            await cache.get("k")
        assert 0.15 < time.monotonic() - started < 1.5
    finally:
        await cache.close()
        server.close()
        await server.wait_closed()
