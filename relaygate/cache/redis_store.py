"""The shared cache store on Redis (§4.6 point 10): one value per key, `SET key value PX ttl`.

It has its own connection pool (never the limits backend's), so a burst of cache traffic cannot
starve rate limiting of connections (LiteLLM PR #32635); point it at a separate `--cache-redis-url`
to separate the servers too. Timeouts are short and there are no client-side retries: a slow or
dead Redis costs a request at most `socket_timeout`, and every failure surfaces as
CacheBackendError, which the caller counts and treats as a miss (the pool, timeouts and error
handling are `RedisClient`'s). Purging scans `prefix*` (SCAN, so Redis is never blocked) and
UNLINKs in batches (memory freed off the main thread). The request
index is `relaygate:cache:v1:req:{request_id}` -> storage key, with the entry's TTL.
"""

from __future__ import annotations

import math

from relaygate.cache.key import request_index_key
from relaygate.cache.redis_client import RedisClient


def _ttl_ms(ttl_seconds: float) -> int:
    """A TTL for PX: whole milliseconds, at least 1."""
    return max(1, math.ceil(ttl_seconds * 1000))


class RedisCache:
    """CacheStore on Redis; construct once per app, `close()` at shutdown."""

    def __init__(self, url: str, *, max_connections: int = 32, socket_timeout: float = 0.25) -> None:
        self._redis = RedisClient(
            url, what="redis cache", max_connections=max_connections, socket_timeout=socket_timeout
        )
        self._client = self._redis.client

    async def get(self, key: str) -> bytes | None:
        """GET; None when absent (Redis has already expired it)."""
        value = await self._redis.call(self._client.get(key))
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """SET key value PX ttl; a TTL <= 0 deletes the key instead."""
        if ttl_seconds <= 0:
            await self.delete(key)
            return
        await self._redis.call(self._client.set(key, value, px=_ttl_ms(ttl_seconds)))

    async def delete(self, key: str) -> bool:
        """UNLINK one key; whether it existed."""
        return bool(await self._redis.call(self._client.unlink(key)))

    async def purge(self, prefix: str) -> int:
        """SCAN MATCH prefix* and UNLINK in batches of PURGE_BATCH; how many keys were removed.

        An empty prefix is refused: on a Redis shared with the limits backend it would empty the database.
        """
        if not prefix:
            raise ValueError("purge needs a non-empty key prefix")
        removed = 0
        async with self._redis.guard():
            async for batch in self._redis.scan_batches(prefix):
                removed += int(await self._client.unlink(*batch))
        return removed

    async def index_request(self, request_id: str, key: str, ttl_seconds: float) -> None:
        """SET relaygate:cache:v1:req:{request_id} key PX ttl."""
        await self.set(request_index_key(request_id), key.encode(), ttl_seconds)

    async def key_for_request(self, request_id: str) -> str | None:
        """The key `request_id` produced, while its index entry lives."""
        value = await self.get(request_index_key(request_id))
        return None if value is None else value.decode()

    def stats(self) -> dict[str, int]:
        """Backend errors raised so far."""
        return {"errors": self._redis.errors}

    async def close(self) -> None:
        """Close the client and its pool."""
        await self._redis.close()
