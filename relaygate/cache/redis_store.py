"""The shared cache store on Redis (§4.6 point 10): one value per key, `SET key value PX ttl`.

It has its own connection pool (never the limits backend's), so a burst of cache traffic cannot
starve rate limiting of connections (LiteLLM PR #32635); point it at a separate `--cache-redis-url`
to separate the servers too. Timeouts are short and there are no client-side retries: a slow or
dead Redis costs a request at most `socket_timeout`, and every failure surfaces as
CacheBackendError, which the caller counts and treats as a miss. Purging scans `prefix*` (SCAN, so
Redis is never blocked) and UNLINKs in batches (memory freed off the main thread). The request
index is `relaygate:cache:v1:req:{request_id}` -> storage key, with the entry's TTL.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from relaygate.cache.errors import CacheBackendError
from relaygate.cache.key import request_index_key

PURGE_BATCH = 500
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
T = TypeVar("T")


def _ttl_ms(ttl_seconds: float) -> int:
    """A TTL for PX: whole milliseconds, at least 1."""
    return max(1, math.ceil(ttl_seconds * 1000))


class RedisCache:
    """CacheStore on Redis; construct once per app, `close()` at shutdown."""

    def __init__(self, url: str, *, max_connections: int = 32, socket_timeout: float = 0.25) -> None:
        # A blocking pool waits for a free connection at most socket_timeout, then fails: a miss, not a queue.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # redis-py's default retries would turn one failure into seconds
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._client: Redis = Redis.from_pool(pool)
        self._errors = 0

    async def _call(self, operation: Awaitable[T]) -> T:
        """Await one Redis operation, turning any failure into CacheBackendError (and counting it)."""
        try:
            return await operation
        except _ERRORS as exc:
            self._errors += 1
            raise CacheBackendError(f"redis cache: {exc.__class__.__name__}: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        """GET; None when absent (Redis has already expired it)."""
        value = await self._call(self._client.get(key))
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """SET key value PX ttl; a TTL <= 0 deletes the key instead."""
        if ttl_seconds <= 0:
            await self.delete(key)
            return
        await self._call(self._client.set(key, value, px=_ttl_ms(ttl_seconds)))

    async def delete(self, key: str) -> bool:
        """UNLINK one key; whether it existed."""
        return bool(await self._call(self._client.unlink(key)))

    async def purge(self, prefix: str) -> int:
        """SCAN MATCH prefix* and UNLINK in batches of PURGE_BATCH; how many keys were removed.

        An empty prefix is refused: on a Redis shared with the limits backend it would empty the database.
        """
        if not prefix:
            raise ValueError("purge needs a non-empty key prefix")
        removed = 0
        async with self._errors_as_backend_error():
            batch: list[bytes] = []
            async for key in self._client.scan_iter(match=prefix.translate(_GLOB_SPECIAL) + "*", count=PURGE_BATCH):
                batch.append(key)
                if len(batch) >= PURGE_BATCH:
                    removed += int(await self._client.unlink(*batch))
                    batch.clear()
            if batch:
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
        return {"errors": self._errors}

    async def close(self) -> None:
        """Close the client and its pool."""
        await self._client.aclose()

    @asynccontextmanager
    async def _errors_as_backend_error(self) -> AsyncIterator[None]:
        """For multi-step operations (purge): any Redis failure inside becomes CacheBackendError."""
        try:
            yield
        except _ERRORS as exc:
            self._errors += 1
            raise CacheBackendError(f"redis cache: {exc.__class__.__name__}: {exc}") from exc
