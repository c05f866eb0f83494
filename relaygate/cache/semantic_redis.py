"""The semantic cache's vectors shared across replicas through Redis: `RedisSemanticIndex`.

Each partition is one Redis list of numbered entries (`{key_prefix}{partition}`) plus its counter
(the list key plus `:n`), both expiring with their newest entry; a replica answers lookups from an
in-process `SemanticIndex` copy that it catches up at most every `refresh_seconds`, fetching only
the entries numbered after those it holds. The connection pool, timeouts and failure handling are
the Redis cache store's (`RedisClient`): every Redis failure is a counted CacheBackendError.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from relaygate.cache.key import KEY_PREFIX
from relaygate.cache.redis_client import RedisClient
from relaygate.cache.semantic_partition import decode_vector, encode_vector, partition_namespace_prefix, unit_vector
from relaygate.cache.vector_index import Clock, IndexedVector, SemanticIndex

# KEYS: list, counter. ARGV: entry payload, cap, TTL in ms. Numbers the entry (the counter), appends it,
# trims the list to the newest `cap`, and extends both keys' TTL to the entry's when it is longer.
_ADD_SCRIPT = """
local seq = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], string.format('%d', seq) .. '|' .. ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
local ttl = tonumber(ARGV[3])
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
return seq
"""

# KEYS: list, counter. ARGV: the last entry number the caller holds, cap. Returns {seq} when nothing is new,
# {seq, 0, newer entries} when the caller can append them, {seq, 1, all entries} when it must start over.
_REFRESH_SCRIPT = """
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local known = tonumber(ARGV[1])
if seq == known then return {seq} end
local count = seq - known
if known == 0 or count < 0 or count > tonumber(ARGV[2]) then
  return {seq, 1, redis.call('LRANGE', KEYS[1], 0, -1)}
end
return {seq, 0, redis.call('LRANGE', KEYS[1], -count, -1)}
"""

COUNTER_SUFFIX = ":n"


@dataclass(slots=True)
class _SyncState:
    """How far this replica's copy of a partition has caught up with Redis."""

    refreshed_at: float  # monotonic
    seq: int  # the number of the newest entry held (0: nothing known)


def encode_entry(entry: IndexedVector) -> bytes:
    """One list element's payload (the add script prefixes it with `{seq}|`)."""
    return orjson.dumps({"k": entry.storage_key, "e": entry.expires_at, "v": encode_vector(entry.vector)})


def decode_element(element: bytes) -> tuple[int, IndexedVector] | None:
    """(number, entry) of one list element; None for anything malformed (skipped, never fatal)."""
    seq_text, sep, payload = element.partition(b"|")
    try:
        fields = orjson.loads(payload)
        seq = int(seq_text)
        vector = decode_vector(fields["v"])
        storage_key, expires_at = fields["k"], float(fields["e"])
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        return None
    if not sep or not isinstance(storage_key, str) or not vector:
        return None
    return seq, IndexedVector(vector, storage_key, expires_at)


class RedisSemanticIndex:
    """VectorIndex shared across replicas: a Redis list per partition, answered from an in-process copy.

    `add` numbers the entry with the partition's counter and appends it to the list
    `{key_prefix}{partition}` (trimmed to `max_per_partition`, TTL extended to the newest entry's),
    and adds it to the local copy. `best` answers from the local copy, first catching a partition
    up when it was last refreshed more than `refresh_seconds` ago: one script call that returns
    only the entries numbered after those already held (or the whole list when the copy cannot be
    extended, after a purge or when more than the cap arrived). A refresh is marked before it is
    awaited, so concurrent lookups use the copy as it is, and a failed one is not retried for
    `refresh_seconds`. Failures raise CacheBackendError; the pool, timeouts and no-retry policy are
    the Redis cache store's (one `RedisClient` each).
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 8,
        socket_timeout: float = 0.25,
        refresh_seconds: float = 1.0,
        max_per_partition: int = 256,
        max_entries: int = 16_384,
        key_prefix: str = KEY_PREFIX,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._redis = RedisClient(
            url, what="redis semantic index", max_connections=max_connections, socket_timeout=socket_timeout
        )
        self._client = self._redis.client
        self._add_script = self._client.register_script(_ADD_SCRIPT)
        self._refresh_script = self._client.register_script(_REFRESH_SCRIPT)
        self.refresh_seconds = refresh_seconds
        self.key_prefix = key_prefix
        self._clock = clock
        self._monotonic = monotonic
        self._local = SemanticIndex(max_per_partition, max_entries=max_entries, clock=clock)
        self._synced: OrderedDict[str, _SyncState] = OrderedDict()
        self._max_synced = max_entries
        self._refreshes = 0

    def list_key(self, partition: str) -> str:
        """The Redis list holding a partition's entries (its counter is this plus `:n`)."""
        return self.key_prefix + partition

    def _keys(self, partition: str) -> list[str]:
        """The scripts' KEYS: the partition's list and its counter."""
        return [self.list_key(partition), self.list_key(partition) + COUNTER_SUFFIX]

    def _state(self, partition: str) -> _SyncState:
        """The partition's sync state (created never-refreshed), bounded like the local copy."""
        state = self._synced.get(partition)
        if state is None:
            state = self._synced[partition] = _SyncState(refreshed_at=-math.inf, seq=0)
            while len(self._synced) > self._max_synced:
                self._synced.popitem(last=False)
        else:
            self._synced.move_to_end(partition)
        return state

    async def add(self, partition: str, vector: Sequence[float], storage_key: str, expires_at: float) -> None:
        """Add to the local copy, then append to the partition's Redis list (an already expired vector is ignored).

        When Redis fails the CacheBackendError propagates, but the local copy keeps the vector: this
        replica can still answer from it.
        """
        ttl_ms = math.ceil((expires_at - self._clock()) * 1000)
        if ttl_ms <= 0:
            return
        entry = IndexedVector(unit_vector(vector), storage_key, expires_at)
        self._local.insert(partition, entry)
        args: list[bytes | int] = [encode_entry(entry), self._local.max_per_partition, ttl_ms]
        seq = int(await self._redis.call(self._add_script(keys=self._keys(partition), args=args)))
        state = self._state(partition)
        if state.seq == seq - 1:  # nothing else arrived in between: the copy is current without a refresh
            state.seq = seq

    async def best(self, partition: str, vector: Sequence[float]) -> tuple[str, float] | None:
        """Catch the partition up when its copy is older than `refresh_seconds`, then search the copy."""
        state = self._state(partition)
        now = self._monotonic()
        if now - state.refreshed_at >= self.refresh_seconds:
            state.refreshed_at = now
            await self._refresh(partition, state)
        return self._local.nearest(partition, vector)

    async def _refresh(self, partition: str, state: _SyncState) -> None:
        """Fetch the entries numbered after `state.seq` (or all of them) and fold them into the local copy."""
        self._refreshes += 1
        keys = self._keys(partition)
        cap = self._local.max_per_partition
        if not self._local.holds(partition):  # evicted here for size, or all expired: only the whole list rebuilds it
            state.seq = 0
        reply = await self._redis.call(self._refresh_script(keys=keys, args=[state.seq, cap]))
        seq = int(reply[0])
        if len(reply) == 1:
            return
        full = int(reply[1]) == 1
        decoded = [item for item in map(decode_element, reply[2]) if item is not None]
        if not full and [number for number, _ in decoded] != list(range(state.seq + 1, seq + 1)):
            # Not the run that follows what is held (a purge raced a refill): start over from the whole list.
            reply = await self._redis.call(self._refresh_script(keys=keys, args=[0, cap]))
            seq, full = int(reply[0]), True
            decoded = [item for item in map(decode_element, reply[2] if len(reply) > 1 else []) if item is not None]
        if full:
            self._local.replace(partition, (entry for _, entry in decoded))
        else:
            now = self._clock()
            for _, entry in decoded:
                if entry.expires_at > now:
                    self._local.insert(partition, entry)
        state.seq = seq

    async def discard(self, partition: str, storage_key: str) -> None:
        """Forget `storage_key` in this replica's copy (each replica finds a vanished entry for itself)."""
        self._local.forget(partition, storage_key)

    async def purge_namespace(self, namespace: str) -> int:
        """Drop the namespace's partitions here and in Redis (SCAN, UNLINK); how many Redis lists were removed."""
        prefix = partition_namespace_prefix(namespace)
        self._local.drop_prefix(prefix)
        for name in [name for name in self._synced if name.startswith(prefix)]:
            del self._synced[name]
        lists_removed = 0
        async with self._redis.guard():
            async for batch in self._redis.scan_batches(self.key_prefix + prefix):
                await self._client.unlink(*batch)
                lists_removed += sum(1 for key in batch if not key.endswith(COUNTER_SUFFIX.encode()))
        return lists_removed

    def stats(self) -> dict[str, int]:
        """The local copy's counters, plus refreshes attempted and backend errors raised."""
        return {**self._local.stats(), "refreshes": self._refreshes, "errors": self._redis.errors}

    async def close(self) -> None:
        """Close the client and its pool."""
        await self._redis.close()
