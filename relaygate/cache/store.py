"""The interface both cache stores implement, so the pipeline holds one without knowing which.

Keys are storage keys (`CacheKey.storage_key`, or `request_index_key` for the request index) and
values opaque bytes (an encoded CacheEntry). Every method may raise CacheBackendError (only the
Redis store does); the caller counts it and proceeds as on a miss.
"""

from __future__ import annotations

from typing import Protocol


class CacheStore(Protocol):
    """Bytes by key with a TTL, purge by key prefix, and a request-id -> key index."""

    async def get(self, key: str) -> bytes | None:
        """The live value, or None (absent or expired)."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store `value` for `ttl_seconds` (a non-positive TTL removes the key instead)."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove one key; whether it existed."""
        ...

    async def purge(self, prefix: str) -> int:
        """Remove every key starting with `prefix`; how many were removed. An empty prefix is a ValueError."""
        ...

    async def index_request(self, request_id: str, key: str, ttl_seconds: float) -> None:
        """Remember that `request_id` produced the entry at `key` (for as long as the entry lives)."""
        ...

    async def key_for_request(self, request_id: str) -> str | None:
        """The key `request_id` produced, if still indexed."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for metrics (which ones depends on the store)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
