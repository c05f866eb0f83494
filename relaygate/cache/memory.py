"""The per-process cache store: an LRU bounded in bytes, with per-key TTLs (§4.6 point 10).

Size counts every stored value plus its key (index entries included), so `max_bytes` bounds what
the cache holds, not a number of entries. One OrderedDict gives O(1) get/set/delete: a hit moves
the key to the recent end, and inserts evict from the old end until the total fits. Expired keys
are dropped when read or when they reach the old end; nothing sweeps in the background. Nothing
awaits inside a method, so on one event loop each runs whole and needs no lock. Separate processes
do not share this cache; use the Redis store for that.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from relaygate.cache.key import request_index_key

Clock = Callable[[], float]


class MemoryCache:
    """A byte-bounded LRU with TTLs; implements CacheStore."""

    def __init__(self, max_bytes: int, *, clock: Clock = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # key -> (value, expires at)
        self._bytes = 0
        self._evictions = 0
        self._expirations = 0

    def _remove(self, key: str) -> bytes | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self._bytes -= len(key) + len(item[0])
        return item[0]

    def _live(self, key: str) -> bytes | None:
        """The value if present and unexpired (an expired one is dropped on the way)."""
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            self._remove(key)
            self._expirations += 1
            return None
        return item[0]

    async def get(self, key: str) -> bytes | None:
        """The live value (now the most recently used), or None."""
        value = self._live(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store for `ttl_seconds`; a value that alone exceeds `max_bytes`, or a TTL <= 0, stores nothing."""
        self._remove(key)
        size = len(key) + len(value)
        if ttl_seconds <= 0 or size > self.max_bytes:
            return
        now = self._clock()
        self._items[key] = (value, now + ttl_seconds)
        self._bytes += size
        while self._bytes > self.max_bytes:
            old_key, (_, expires) = next(iter(self._items.items()))
            self._remove(old_key)
            if expires <= now:
                self._expirations += 1
            else:
                self._evictions += 1

    async def delete(self, key: str) -> bool:
        """Remove one key; whether a live value was there."""
        return self._live(key) is not None and self._remove(key) is not None

    async def purge(self, prefix: str) -> int:
        """Remove every key starting with `prefix` (a scan: an admin operation); how many live ones."""
        if not prefix:
            raise ValueError("purge needs a non-empty key prefix")  # as the Redis store, where it matters
        now = self._clock()
        doomed = [(k, expires) for k, (_, expires) in self._items.items() if k.startswith(prefix)]
        for key, _ in doomed:
            self._remove(key)
        return sum(1 for _, expires in doomed if expires > now)

    async def index_request(self, request_id: str, key: str, ttl_seconds: float) -> None:
        """Record which key `request_id` produced, as a small entry of its own with the same TTL."""
        await self.set(request_index_key(request_id), key.encode(), ttl_seconds)

    async def key_for_request(self, request_id: str) -> str | None:
        """The key `request_id` produced, while its index entry lives."""
        value = await self.get(request_index_key(request_id))
        return None if value is None else value.decode()

    def stats(self) -> dict[str, int]:
        """entries and bytes held now; evictions (for size) and expirations seen so far."""
        return {
            "entries": len(self._items),
            "bytes": self._bytes,
            "evictions": self._evictions,
            "expirations": self._expirations,
        }

    async def close(self) -> None:
        """Drop everything (nothing to release)."""
        self._items.clear()
        self._bytes = 0
