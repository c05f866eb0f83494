"""The semantic cache's vector indexes: the `VectorIndex` interface and the in-process `SemanticIndex`.

An index keeps unit vectors by partition (`semantic_partition`), each pointing at the storage key
of a cached answer until it expires (`expires_at` is Unix time, seconds: the one clock replicas
share), and answers with the nearest live one by cosine. `SemanticIndex` does this in-process, by
brute force over each partition's newest `max_per_partition` vectors; `RedisSemanticIndex`
(`semantic_redis`) shares the vectors across replicas and answers from a `SemanticIndex` copy.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import mul
from typing import Protocol

from relaygate.cache.semantic_partition import partition_namespace_prefix, unit_vector

Clock = Callable[[], float]


class VectorIndex(Protocol):
    """Unit vectors by partition, each pointing at a storage key until it expires; nearest by cosine."""

    async def add(self, partition: str, vector: Sequence[float], storage_key: str, expires_at: float) -> None:
        """Remember that `storage_key` answers the text embedded as `vector`, until `expires_at` (Unix time)."""
        ...

    async def best(self, partition: str, vector: Sequence[float]) -> tuple[str, float] | None:
        """The live storage key whose vector is nearest (highest cosine) and that cosine; None if none."""
        ...

    async def discard(self, partition: str, storage_key: str) -> None:
        """Forget `storage_key` (the caller found it gone from the store), so it stops shadowing live entries."""
        ...

    async def purge_namespace(self, namespace: str) -> int:
        """Drop every partition of `namespace` (the admin purge); how many were dropped."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for metrics."""
        ...

    async def close(self) -> None:
        """Release connections; the index is unusable afterwards."""
        ...


# ---------------------------------------------------------------------------------------------------
# In-process.


@dataclass(slots=True)
class IndexedVector:
    """One remembered embedding: a unit float32 vector, the storage key it points at, and its expiry."""

    vector: array[float]
    storage_key: str
    expires_at: float


class SemanticIndex:
    """The in-process VectorIndex: brute-force cosine over each partition's newest vectors.

    Each partition keeps its newest `max_per_partition` vectors; past `max_entries` in all, the
    oldest vectors of the least recently used partitions go first (memory: about
    `max_entries * dimensions * 4` bytes). Expired vectors are dropped when a lookup meets them.
    Pure Python: a lookup over 256 vectors of 384 dimensions takes a few milliseconds. Nothing
    awaits inside a method, so on one event loop each runs whole and needs no lock.
    """

    def __init__(self, max_per_partition: int = 256, *, max_entries: int = 16_384, clock: Clock = time.time) -> None:
        if max_per_partition < 1 or max_entries < 1:
            raise ValueError("max_per_partition and max_entries must be at least 1")
        self.max_per_partition = max_per_partition
        self.max_entries = max_entries
        self._clock = clock
        self._partitions: OrderedDict[str, deque[IndexedVector]] = OrderedDict()
        self._size = 0
        self._evictions = 0
        self._expirations = 0

    def insert(self, partition: str, entry: IndexedVector) -> None:
        """Add an already-normalised vector as the partition's newest (replacing one for the same key)."""
        self.forget(partition, entry.storage_key)  # drops the partition if that was its only vector
        entries = self._partitions.get(partition)
        if entries is None:
            entries = self._partitions[partition] = deque()
        else:
            self._partitions.move_to_end(partition)
        entries.append(entry)
        self._size += 1
        if len(entries) > self.max_per_partition:
            entries.popleft()
            self._size -= 1
            self._evictions += 1
        while self._size > self.max_entries:
            oldest_partition, oldest_entries = next(iter(self._partitions.items()))
            oldest_entries.popleft()
            self._size -= 1
            self._evictions += 1
            if not oldest_entries:
                del self._partitions[oldest_partition]

    def holds(self, partition: str) -> bool:
        """Whether any vector of `partition` is held (expired ones included until a lookup meets them)."""
        return partition in self._partitions

    def replace(self, partition: str, entries: Iterable[IndexedVector]) -> None:
        """Make `entries` (oldest first) the partition's whole content: what a full refresh from Redis does."""
        self._drop(partition)
        now = self._clock()
        for entry in entries:
            if entry.expires_at > now:
                self.insert(partition, entry)

    def forget(self, partition: str, storage_key: str) -> None:
        """Remove the vector pointing at `storage_key`, if any."""
        entries = self._partitions.get(partition)
        if entries is not None:
            self._remove_key(partition, entries, storage_key)

    def nearest(self, partition: str, vector: Sequence[float]) -> tuple[str, float] | None:
        """The synchronous `best`: one pass over the partition, dropping the expired vectors it meets."""
        entries = self._partitions.get(partition)
        if entries is None:
            return None
        self._partitions.move_to_end(partition)
        query = unit_vector(vector).tolist()  # floats made once, not once per stored vector
        now = self._clock()
        best_key: str | None = None
        best_score = -math.inf
        expired = 0
        for entry in entries:
            if entry.expires_at <= now:
                expired += 1
            elif len(entry.vector) == len(query):  # another dimension: another model's vector, not comparable
                score = sum(map(mul, query, entry.vector))
                if score > best_score:
                    best_key, best_score = entry.storage_key, score
        if expired:
            live = [entry for entry in entries if entry.expires_at > now]
            entries.clear()
            entries.extend(live)
            self._size -= expired
            self._expirations += expired
            if not entries:
                del self._partitions[partition]
        if best_key is None:
            return None
        return best_key, max(-1.0, min(1.0, best_score))  # float32 rounding can step just past ±1

    def drop_prefix(self, prefix: str) -> int:
        """Drop every partition whose name starts with `prefix`; how many."""
        doomed = [name for name in self._partitions if name.startswith(prefix)]
        for name in doomed:
            self._drop(name)
        return len(doomed)

    def _drop(self, partition: str) -> None:
        entries = self._partitions.pop(partition, None)
        if entries is not None:
            self._size -= len(entries)

    def _remove_key(self, partition: str, entries: deque[IndexedVector], storage_key: str) -> None:
        kept = [entry for entry in entries if entry.storage_key != storage_key]
        if len(kept) == len(entries):
            return
        self._size -= len(entries) - len(kept)
        entries.clear()
        entries.extend(kept)
        if not entries:
            del self._partitions[partition]

    async def add(self, partition: str, vector: Sequence[float], storage_key: str, expires_at: float) -> None:
        """Normalise `vector` and insert it (an already expired one is ignored)."""
        if expires_at > self._clock():
            self.insert(partition, IndexedVector(unit_vector(vector), storage_key, expires_at))

    async def best(self, partition: str, vector: Sequence[float]) -> tuple[str, float] | None:
        """The live storage key with the highest cosine to `vector`, and that cosine (the threshold is the caller's)."""
        return self.nearest(partition, vector)

    async def discard(self, partition: str, storage_key: str) -> None:
        """Forget `storage_key` in `partition`."""
        self.forget(partition, storage_key)

    async def purge_namespace(self, namespace: str) -> int:
        """Drop the namespace's partitions; how many."""
        return self.drop_prefix(partition_namespace_prefix(namespace))

    def stats(self) -> dict[str, int]:
        """Partitions and vectors held now; evictions (for size) and expirations seen so far."""
        return {
            "partitions": len(self._partitions),
            "entries": self._size,
            "evictions": self._evictions,
            "expirations": self._expirations,
        }

    async def close(self) -> None:
        """Drop everything (nothing to release)."""
        self._partitions.clear()
        self._size = 0
