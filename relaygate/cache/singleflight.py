"""In-process stampede control (§4.6 point 11): concurrent identical misses make one upstream call.

    async with flights.lead_or_follow(key) as flight:
        if flight.is_leader:
            entry = await call_upstream()            # the only upstream call for this key right now
            flight.publish(entry.encode() if cacheable else None)
        else:
            shared = await flight.wait()             # the leader's value, or None
            if shared is None:
                ...                                  # proceed as a plain miss (call upstream yourself)

- The first caller for a key leads; callers arriving while it works follow and wait for what it
  publishes, at most `timeout` seconds (then they proceed as a plain miss).
- The leader publishing None ("nothing to share": an error, an uncacheable answer), leaving the
  block without publishing, raising, or being cancelled all release the followers with None, so
  they call upstream themselves. A follower being cancelled or timing out affects nobody else.
- A flight leaves the table as soon as its leader publishes or leaves the block, so the next miss
  for the key starts a new flight; followers already waiting hold the future, not the table. The
  future only ever gets a result (never an exception), so nothing is left unretrieved.

Per process only: replicas do not coordinate (no cross-replica lock in the minimal version).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


class Flight(Generic[T]):
    """One caller's part in a flight: the leader publishes, followers wait."""

    __slots__ = ("is_leader", "_owner", "_key", "_future")

    def __init__(
        self, owner: SingleFlight[T], key: Hashable, future: asyncio.Future[T | None], is_leader: bool
    ) -> None:
        self.is_leader = is_leader
        self._owner = owner
        self._key = key
        self._future = future

    def publish(self, value: T | None) -> None:
        """Leader only: hand `value` (None = nothing to share) to every follower; later calls are ignored."""
        if not self.is_leader:
            raise RuntimeError("only the leader of a flight publishes")
        self._owner._land(self._key, self._future, value)

    async def wait(self, timeout: float | None = None) -> T | None:
        """Follower only: the leader's value, or None when it shares nothing or `timeout` passes first."""
        if self.is_leader:
            raise RuntimeError("the leader of a flight does not wait for itself")
        if not self._future.done():
            # asyncio.wait never cancels the shared future, whatever happens to this waiter.
            await asyncio.wait((self._future,), timeout=self._owner.timeout if timeout is None else timeout)
        return self._future.result() if self._future.done() else None


class SingleFlight(Generic[T]):
    """The table of flights in progress, by key; one per process (held by the app)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout  # how long a follower waits by default (about one upstream call)
        self._flights: dict[Hashable, asyncio.Future[T | None]] = {}

    def __len__(self) -> int:
        """Flights in progress (0 when idle: nothing is left behind)."""
        return len(self._flights)

    @asynccontextmanager
    async def lead_or_follow(self, key: Hashable) -> AsyncIterator[Flight[T]]:
        """Lead the flight for `key` if none is in progress, else follow it (see the module docstring)."""
        future = self._flights.get(key)
        if future is not None:
            yield Flight(self, key, future, is_leader=False)
            return
        future = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        try:
            yield Flight(self, key, future, is_leader=True)
        finally:  # raised, cancelled, or simply never published: followers get None
            self._land(key, future, None)

    def _land(self, key: Hashable, future: asyncio.Future[T | None], value: T | None) -> None:
        """End a flight: off the table (so the next miss starts anew), its followers released with `value`."""
        if self._flights.get(key) is future:
            del self._flights[key]
        if not future.done():
            future.set_result(value)
