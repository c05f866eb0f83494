"""Turn a presented token into a `TokenRecord`, in memory on the hot path.

Per request the cost is a dict lookup, one SHA-256 of the secret and a constant-time compare. The store
is read only when a token id is not cached or its entry is older than `cache_ttl` (so revocations
made elsewhere are honoured within the TTL; `invalidate` makes a local one immediate).

Failure rules (docs/SCHEMAS.md "Token cache"):
- every bad token, for whatever reason, gets the identical `Unauthorized` so callers cannot probe;
- if the store is unreachable, a token whose record is cached keeps working even past the TTL, and an
  uncached one gets 503 `ServiceUnavailable`, never 401 (we do not know it is bad).

Unknown ids are cached negatively for only a second (tokens minted by the CLI must start working
quickly) in a bounded, oldest-evicted map so floods of random tokens cannot grow memory.
A verified-token cache keyed by a hash of the full token is deliberately absent: computing that key
costs the same SHA-256 as checking the secret against the cached record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from relaygate.auth.store import TokenRecord, TokenStore
from relaygate.auth.tokens import parse_token, secret_matches
from relaygate.errors import ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)


class _Unavailable:
    """Marker result of a store read that failed with nothing cached to fall back on."""


_UNAVAILABLE: Final = _Unavailable()
_Lookup: TypeAlias = TokenRecord | None | _Unavailable


@dataclass(slots=True)
class _Entry:
    """A cached record and the monotonic time until which it is served without asking the store."""

    record: TokenRecord
    fresh_until: float


class Authenticator:
    """Validates tokens against a `TokenStore` through a short-lived in-memory cache."""

    def __init__(
        self,
        store: TokenStore,
        *,
        cache_ttl: float = 10.0,
        negative_ttl: float = 1.0,
        negative_cache_size: int = 10_000,
        store_retry: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._ttl = cache_ttl
        self._negative_ttl = negative_ttl
        self._negative_size = negative_cache_size
        self._store_retry = min(store_retry, cache_ttl)
        self._clock = clock
        self._wall = wall
        self._cache: dict[str, _Entry] = {}
        self._negative: OrderedDict[str, float] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[_Lookup]] = {}

    async def authenticate_token(self, token: str | None) -> TokenRecord:
        """Authenticate a token (from `Authorization: Bearer` or `x-api-key`, http/headers.bearer_token); raises
        `Unauthorized` for every kind of bad token, `ServiceUnavailable` when the store cannot be read."""
        if not token:
            raise Unauthorized()
        parsed = parse_token(token)
        if parsed is None:
            raise Unauthorized()
        token_id, secret = parsed
        record = await self._lookup(token_id)
        if record is None or not secret_matches(secret, record.secret_hash):
            raise Unauthorized()
        if not record.active(self._wall()):
            raise Unauthorized()
        return record

    async def live_record(self, token_id: str) -> TokenRecord:
        """The live record of a token known by its public id (a dashboard session re-checks its token
        on every call this way, so a revocation ends the session); `Unauthorized` when gone."""
        record = await self._lookup(token_id)
        if record is None or not record.active(self._wall()):
            raise Unauthorized()
        return record

    def would_read_store(self, token: str | None) -> bool:
        """Whether authenticating `token` now would read the store (a cache miss: the trace's auth span)."""
        parsed = parse_token(token) if token else None
        return parsed is not None and not self._cached(parsed[0], self._clock())[0]

    def _cached(self, token_id: str, now: float) -> tuple[bool, TokenRecord | None]:
        """(True, record or None for a known-unknown id) when the caches answer for `token_id` now."""
        entry = self._cache.get(token_id)
        if entry is not None and now < entry.fresh_until:
            return True, entry.record
        negative_until = self._negative.get(token_id)
        return (negative_until is not None and now < negative_until), None

    def invalidate(self, token_id: str) -> None:
        """Forget a token id (called on revoke) so the next request re-reads the store."""
        self._cache.pop(token_id, None)
        self._negative.pop(token_id, None)
        # A read already under way may predate the revoke: detach it so it cannot refill the cache.
        self._inflight.pop(token_id, None)

    async def _lookup(self, token_id: str) -> TokenRecord | None:
        """The record for an id from cache, else from one (shared) store read."""
        answered, record = self._cached(token_id, self._clock())
        if answered:
            return record
        self._negative.pop(token_id, None)  # expired, if there at all
        task = self._inflight.get(token_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(token_id))
            self._inflight[token_id] = task
        # Shielded: one caller disconnecting must not cancel the read the others are waiting on.
        result = await asyncio.shield(task)
        if isinstance(result, _Unavailable):
            raise ServiceUnavailable("token store unavailable; retry shortly", headers={"retry-after": "1"})
        return result

    async def _fetch(self, token_id: str) -> _Lookup:
        """Read one id from the store and update the caches (unless `invalidate` detached us)."""
        me = asyncio.current_task()
        started = self._clock()
        try:
            try:
                record = await asyncio.to_thread(self._store.get, token_id)
            except Exception as exc:
                return self._fallback(token_id, exc, me)
            if self._inflight.get(token_id) is me:
                if record is None:
                    self._remember_missing(token_id, started)
                else:
                    self._cache[token_id] = _Entry(record, started + self._ttl)
            return record
        finally:
            if self._inflight.get(token_id) is me:
                del self._inflight[token_id]

    def _fallback(self, token_id: str, exc: Exception, me: asyncio.Task[object] | None) -> _Lookup:
        """Store failed: serve the cached record if any (retrying the store shortly), else 503."""
        stale = self._cache.get(token_id)
        if stale is None:
            log.warning("token store unavailable; cannot validate token %s: %r", token_id, exc)
            return _UNAVAILABLE
        log.warning("token store unavailable; serving cached token %s: %r", token_id, exc)
        if self._inflight.get(token_id) is me:
            stale.fresh_until = self._clock() + self._store_retry
        return stale.record

    def _remember_missing(self, token_id: str, now: float) -> None:
        """Cache an unknown id briefly, evicting the oldest entries beyond the size bound."""
        self._negative[token_id] = now + self._negative_ttl
        self._negative.move_to_end(token_id)
        while len(self._negative) > self._negative_size:
            self._negative.popitem(last=False)
