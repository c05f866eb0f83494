"""The gateway's response cache: the store the config picks, single-flight, writes, counts.

One per process (`Gateway.cache`). The store is built on first use for the backend the served config
names (memory with its byte cap, or Redis with its own pool at `--cache-redis-url`, else
`--redis-url`) and rebuilt when a reload changes the backend or the cap. A write happens after the
answer has gone out (the client never waits for it) and before the request's single-flight ends; a
store that fails is counted (`write_errors`), never raised.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from relaygate.cache.errors import CacheBackendError
from relaygate.cache.memory import MemoryCache
from relaygate.cache.redis_store import RedisCache
from relaygate.cache.semantic_redis import RedisSemanticIndex
from relaygate.cache.singleflight import SingleFlight
from relaygate.cache.vector_index import SemanticIndex, VectorIndex

if TYPE_CHECKING:
    from relaygate.cache.key import CacheKey
    from relaygate.cache.store import CacheStore
    from relaygate.runtime.cache import CachePolicy


class ResponseCache:
    """Stores, flights and counters of one process."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis_url = redis_url
        self._store: CacheStore | None = None
        self._shape: tuple[str, int] | None = None
        self._index: VectorIndex | None = None
        self._index_backend: str | None = None
        self._retired: list[CacheStore] = []
        self._retired_indexes: list[VectorIndex] = []
        self.flights: SingleFlight[bytes] = SingleFlight()
        self.counts: dict[str, int] = {"hit": 0, "miss": 0, "error": 0, "bypass": 0, "stored": 0, "write_errors": 0}
        self.saved_usd = 0.0

    def store_for(self, policy: CachePolicy) -> CacheStore:
        """The store the served config asks for (memory unless it says redis and a URL is known)."""
        backend = policy.backend if (policy.backend != "redis" or self._redis_url) else "memory"
        shape = (backend, policy.memory_max_bytes)
        if self._store is None or self._shape != shape:
            if self._store is not None:
                self._retired.append(self._store)
            if backend == "redis":
                assert self._redis_url is not None
                self._store = RedisCache(self._redis_url)
            else:
                self._store = MemoryCache(policy.memory_max_bytes)
            self._shape = shape
        return self._store

    def index_for(self, policy: CachePolicy) -> VectorIndex:
        """The semantic index beside the store: in process, or shared by replicas through Redis."""
        backend = policy.backend if (policy.backend != "redis" or self._redis_url) else "memory"
        if self._index is None or self._index_backend != backend:
            if self._index is not None:
                self._retired_indexes.append(self._index)
            if backend == "redis":
                assert self._redis_url is not None
                self._index = RedisSemanticIndex(self._redis_url)
            else:
                self._index = SemanticIndex()
            self._index_backend = backend
        return self._index

    def count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1

    async def write(
        self,
        store: CacheStore,
        key: CacheKey,
        request_id: str,
        encoded: bytes,
        ttl: int,
        semantic: tuple[VectorIndex, str, list[float]] | None,
    ) -> None:
        """Store an encoded entry and index it (by the request that made it, and by its vector for
        semantic lookups); a store that fails is counted, never raised."""
        try:
            await store.set(key.storage_key, encoded, ttl)
            await store.index_request(request_id, key.storage_key, ttl)
            if semantic is not None:
                index, partition, vector = semantic
                await index.add(partition, vector, key.storage_key, time.time() + ttl)
            self.counts["stored"] += 1
        except CacheBackendError:
            self.counts["write_errors"] += 1

    async def close(self) -> None:
        for store in (*self._retired, *((self._store,) if self._store is not None else ())):
            await store.close()
        for index in (*self._retired_indexes, *((self._index,) if self._index is not None else ())):
            await index.close()
