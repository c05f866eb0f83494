"""The Redis plumbing the cache's Redis backends share: one pool and client, failures as CacheBackendError.

`RedisCache` (the store) and `RedisSemanticIndex` (the shared vectors) each own one `RedisClient`,
never the limits backend's, so a burst of cache traffic cannot starve rate limiting of connections.
The pool blocks for a free connection at most `socket_timeout` and then fails, timeouts are short
and there are no client-side retries: a slow or dead Redis costs a request at most `socket_timeout`.
Every failure surfaces as CacheBackendError naming the backend (`what`), counted in `errors`; the
caller treats it as a miss. `scan_batches` walks a key prefix with SCAN (Redis is never blocked),
in batches sized for one UNLINK each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from relaygate.cache.errors import CacheBackendError

PURGE_BATCH = 500
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
T = TypeVar("T")


class RedisClient:
    """A client with its own pool, and the count of the failures it turned into CacheBackendError."""

    def __init__(self, url: str, *, what: str, max_connections: int, socket_timeout: float) -> None:
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
        self.client: Redis = Redis.from_pool(pool)
        self.what = what
        self.errors = 0

    def _backend_error(self, exc: BaseException) -> CacheBackendError:
        """Count a failure and describe it as this backend's CacheBackendError."""
        self.errors += 1
        return CacheBackendError(f"{self.what}: {exc.__class__.__name__}: {exc}")

    async def call(self, operation: Awaitable[T]) -> T:
        """Await one Redis operation, turning any failure into CacheBackendError (and counting it)."""
        try:
            return await operation
        except _ERRORS as exc:
            raise self._backend_error(exc) from exc

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """For multi-step operations (purge): any Redis failure inside becomes CacheBackendError (counted)."""
        try:
            yield
        except _ERRORS as exc:
            raise self._backend_error(exc) from exc

    async def scan_batches(self, prefix: str) -> AsyncIterator[list[bytes]]:
        """The keys starting with `prefix` (SCAN MATCH prefix*), in batches of at most PURGE_BATCH.

        Raw Redis errors pass through: iterate inside `guard()`.
        """
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=prefix.translate(_GLOB_SPECIAL) + "*", count=PURGE_BATCH):
            batch.append(key)
            if len(batch) >= PURGE_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def close(self) -> None:
        """Close the client and its pool."""
        await self.client.aclose()
