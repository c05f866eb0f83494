"""Dropping cache entries on purpose (docs/cache.md "Invalidation"): a namespace, the entry one request
produced, or everything, on whichever store holds them.

The admin API (`DELETE /api/admin/v1/cache`) and `relaygate cache purge` share this, so both count
alike: the answer is a number of *entries*, never of the request-index keys that point at them
(those are dropped too, or left to expire with the entry they name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from relaygate.cache.key import KEY_PREFIX, REQUEST_INDEX_PREFIX, namespace_prefix, request_index_key
from relaygate.cache.redis_store import RedisCache

if TYPE_CHECKING:
    from relaygate.cache.store import CacheStore


@dataclass(frozen=True, slots=True)
class Purge:
    """What to drop: one namespace (`""` is the default one), one request's entry, or (neither) all."""

    namespace: str | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        if self.namespace is not None and self.request_id is not None:
            raise ValueError("give a namespace or a request id, not both")

    def describe(self) -> str:
        """For messages: `namespace 'team-a'`, `the entry of request abc`, `every entry`."""
        if self.request_id is not None:
            return f"the entry of request {self.request_id}"
        if self.namespace is not None:
            return f"namespace {self.namespace!r}" if self.namespace else "the default namespace"
        return "every entry"


def backend_of(store: CacheStore) -> str:
    """`redis` or `memory`: where the live store keeps entries (a `redis` config without a Redis URL
    runs on memory), so answers say whether a purge reached every replica or one process."""
    return "redis" if isinstance(store, RedisCache) else "memory"


async def purge(store: CacheStore, what: Purge) -> int:
    """Drop what `what` names from `store`; how many entries went. May raise CacheBackendError."""
    if what.request_id is not None:
        key = await store.key_for_request(what.request_id)
        if key is None:
            return 0
        deleted = await store.delete(key)
        await store.delete(request_index_key(what.request_id))
        return int(deleted)
    if what.namespace is not None:
        return await store.purge(namespace_prefix(what.namespace))
    await store.purge(REQUEST_INDEX_PREFIX)  # the index first, so the count below is entries only
    return await store.purge(KEY_PREFIX)
