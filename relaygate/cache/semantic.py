"""The semantic cache's lookup side (§4.6 point 13): which requests may share an answer by meaning.

A semantic hit needs two things. Every key part but the last user message must hash-equal: that
is the *partition*, built from `cache_key`'s own key object with the last user text masked. And the
last user text's embedding must lie close enough to one already stored in that partition. This
module computes the partition and the text to embed, and keeps the vectors: `SemanticIndex`
in-process (brute-force cosine over the partition's newest `max_per_partition` vectors) and
`RedisSemanticIndex`, which shares them across replicas through one Redis list per partition and
answers from an in-process copy refreshed at most every `refresh_seconds`. The caller embeds
(through the gateway, so the embedding's cost is logged), skips long conversations
(`conversation_length`), applies the similarity threshold, and keeps answers in the ordinary
CacheStore under the storage key the index returns.

Partitions are named `{namespace digest}:sem:{digest}`, so a partition's Redis keys
(`relaygate:cache:v1:{namespace digest}:sem:...`) fall under `namespace_prefix(namespace)` and a
purge of the namespace removes them too. `expires_at` is Unix time (seconds), the one clock that
replicas share.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import sys
import time
from array import array
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from operator import mul
from typing import Any, Protocol, TypeVar

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from relaygate.cache.errors import CacheBackendError
from relaygate.cache.key import KEY_PREFIX, cache_key, canonical_json, namespace_digest

SEMANTIC_VERSION = 1
# Stands where the last user text was, so the partition hashes everything else. Not a string a client sends.
LAST_USER_TEXT_PLACEHOLDER = "\x00relaygate:semantic:last-user-text\x00"

Clock = Callable[[], float]
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------------
# The partition and the text to embed.


def _is_text_part(part: Any) -> bool:
    """An OpenAI text content part or an Anthropic text block: `{"type": "text", "text": "..."}`."""
    return isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)


def _content_text(content: Any) -> str | None:
    """A message content's text: the string itself, or its text parts joined by newlines (None: not text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if _is_text_part(part))
    return None


def _masked_content(content: str | list[Any]) -> str | list[Any]:
    """The content with its text replaced by the placeholder; images and other parts stay (they key the partition)."""
    if isinstance(content, str):
        return LAST_USER_TEXT_PLACEHOLDER
    return [{**part, "text": LAST_USER_TEXT_PLACEHOLDER} if _is_text_part(part) else part for part in content]


def split_last_user_text(body: Mapping[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The body with the last user message's text masked, and that text; None when there is no user text.

    Chat (`messages`, OpenAI or Anthropic: a string content, or text parts/blocks joined by newlines)
    or legacy completions (a string `prompt`). Only the path to the masked text is copied; the rest
    shares the request's values.
    """
    messages = body.get("messages")
    if isinstance(messages, list):
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if not (isinstance(message, dict) and message.get("role") == "user"):
                continue
            content: Any = message.get("content")
            text = _content_text(content)
            if text is None or not text.strip():
                return None
            masked = list(messages)
            masked[index] = {**message, "content": _masked_content(content)}
            return {**body, "messages": masked}, text
        return None
    prompt = body.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return {**body, "prompt": LAST_USER_TEXT_PLACEHOLDER}, prompt
    return None


def semantic_partition(
    *,
    api: str,
    model: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    scope: str,
    namespace: str,
    include_user: bool = False,
    embedding_model: str = "",
) -> tuple[str, str] | None:
    """(partition, text to embed) of a request, or None when it has no user text to embed.

    The partition digests `cache_key`'s key object of the body with the last user text masked (so
    transport fields, `n == 1` and headers are treated exactly as the exact-match key treats them),
    plus `embedding_model`: vectors of different models never meet. Arguments are `cache_key`'s.
    """
    split = split_last_user_text(body)
    if split is None:
        return None
    masked_body, text = split
    key = cache_key(
        api=api,
        model=model,
        body=masked_body,
        headers=headers,
        scope=scope,
        namespace=namespace,
        include_user=include_user,
    )
    partition_object = {"semantic": SEMANTIC_VERSION, "embedding_model": embedding_model, "key": key.key_object}
    digest = hashlib.sha256(canonical_json(partition_object)).hexdigest()
    return f"{namespace_digest(namespace)}:sem:{digest}", text


def partition_namespace_prefix(namespace: str) -> str:
    """Every partition of a namespace starts with this (what `purge_namespace` drops)."""
    return f"{namespace_digest(namespace)}:sem:"


def conversation_length(body: Mapping[str, Any]) -> int:
    """How many messages the request carries (a completions prompt is one), for the `max_messages` skip."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return len(messages)
    return 1 if "prompt" in body else 0


# ---------------------------------------------------------------------------------------------------
# Vectors.


def unit_vector(vector: Sequence[float]) -> array[float]:
    """`vector` scaled to length 1, as float32 (what Redis stores, so every replica scores alike).

    A zero-length or non-finite vector is a ValueError: it has no direction to compare.
    """
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0 or not math.isfinite(norm):
        raise ValueError("an embedding needs finite components and a non-zero length")
    return array("f", [x / norm for x in vector])


def encode_vector(vector: array[float]) -> str:
    """float32 little-endian, base64 (as OpenAI's `encoding_format: base64`), whatever the host's byte order."""
    little = array("f", vector)
    if sys.byteorder == "big":  # pragma: no cover - no big-endian host runs the tests
        little.byteswap()
    return base64.b64encode(little.tobytes()).decode()


def decode_vector(encoded: str) -> array[float]:
    """The inverse of `encode_vector`."""
    vector = array("f")
    vector.frombytes(base64.b64decode(encoded))
    if sys.byteorder == "big":  # pragma: no cover - no big-endian host runs the tests
        vector.byteswap()
    return vector


# ---------------------------------------------------------------------------------------------------
# The interface both indexes implement.


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


# ---------------------------------------------------------------------------------------------------
# Shared through Redis.

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

_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
COUNTER_SUFFIX = ":n"
PURGE_BATCH = 500


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
    the Redis cache store's.
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
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._client: Redis = Redis.from_pool(pool)
        self._add_script = self._client.register_script(_ADD_SCRIPT)
        self._refresh_script = self._client.register_script(_REFRESH_SCRIPT)
        self.refresh_seconds = refresh_seconds
        self.key_prefix = key_prefix
        self._clock = clock
        self._monotonic = monotonic
        self._local = SemanticIndex(max_per_partition, max_entries=max_entries, clock=clock)
        self._synced: OrderedDict[str, _SyncState] = OrderedDict()
        self._max_synced = max_entries
        self._errors = 0
        self._refreshes = 0

    def list_key(self, partition: str) -> str:
        """The Redis list holding a partition's entries (its counter is this plus `:n`)."""
        return self.key_prefix + partition

    async def _call(self, operation: Awaitable[T]) -> T:
        """Await one Redis operation, turning any failure into CacheBackendError (and counting it)."""
        try:
            return await operation
        except _ERRORS as exc:
            self._errors += 1
            raise CacheBackendError(f"redis semantic index: {exc.__class__.__name__}: {exc}") from exc

    @asynccontextmanager
    async def _errors_as_backend_error(self) -> AsyncIterator[None]:
        """For multi-step operations (purge): any Redis failure inside becomes CacheBackendError (counted)."""
        try:
            yield
        except _ERRORS as exc:
            self._errors += 1
            raise CacheBackendError(f"redis semantic index: {exc.__class__.__name__}: {exc}") from exc

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
        keys = [self.list_key(partition), self.list_key(partition) + COUNTER_SUFFIX]
        args: list[bytes | int] = [encode_entry(entry), self._local.max_per_partition, ttl_ms]
        seq = int(await self._call(self._add_script(keys=keys, args=args)))
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
        keys = [self.list_key(partition), self.list_key(partition) + COUNTER_SUFFIX]
        cap = self._local.max_per_partition
        if not self._local.holds(partition):  # evicted here for size, or all expired: only the whole list rebuilds it
            state.seq = 0
        reply = await self._call(self._refresh_script(keys=keys, args=[state.seq, cap]))
        seq = int(reply[0])
        if len(reply) == 1:
            return
        full = int(reply[1]) == 1
        decoded = [item for item in map(decode_element, reply[2]) if item is not None]
        if not full and [number for number, _ in decoded] != list(range(state.seq + 1, seq + 1)):
            # Not the run that follows what is held (a purge raced a refill): start over from the whole list.
            reply = await self._call(self._refresh_script(keys=keys, args=[0, cap]))
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
        pattern = (self.key_prefix + prefix).translate(_GLOB_SPECIAL) + "*"
        lists_removed = 0
        batch: list[bytes] = []
        async with self._errors_as_backend_error():
            async for key in self._client.scan_iter(match=pattern, count=PURGE_BATCH):
                batch.append(key)
                if len(batch) >= PURGE_BATCH:
                    lists_removed += await self._unlink(batch)
            if batch:
                lists_removed += await self._unlink(batch)
        return lists_removed

    async def _unlink(self, batch: list[bytes]) -> int:
        """UNLINK a batch of a partition's keys and empty it; how many of them were lists (not counters)."""
        await self._client.unlink(*batch)
        lists = sum(1 for key in batch if not key.endswith(COUNTER_SUFFIX.encode()))
        batch.clear()
        return lists

    def stats(self) -> dict[str, int]:
        """The local copy's counters, plus refreshes attempted and backend errors raised."""
        return {**self._local.stats(), "refreshes": self._refreshes, "errors": self._errors}

    async def close(self) -> None:
        """Close the client and its pool."""
        await self._client.aclose()
