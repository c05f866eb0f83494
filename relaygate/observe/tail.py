"""The live tail of the request log: finished records fanned out to `GET /logs/stream` subscribers.

`LogTail.record` is a recorder that sits in `gateway.recorders` only while someone subscribes (and
returns after one truth test if called with none), so a gateway nobody tails pays nothing.

Each subscriber holds its own filter and a token bucket of `EVENTS_PER_SECOND`: a matching record is
queued only when the bucket has a token (one is kept back for the `dropped` report while drops are
pending); anything else is counted as dropped. The queue is bounded too (a client that stops reading
loses rows, never gateway memory), and records become rows (without bodies) in the subscriber's own
task, off the request path.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from relaygate.observe.record import LogRecord

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.observe.store.search import LogFilter

EVENTS_PER_SECOND = 5.0  # log and dropped events together, per client
MAX_QUEUE = 64  # records waiting for a slow client
MAX_SUBSCRIBERS = 256


class Subscriber:
    """One client's filtered, rate-limited queue of records."""

    __slots__ = ("filter", "queue", "dropped", "closed", "_wake", "_tokens", "_refilled", "_clock")

    def __init__(self, flt: LogFilter, clock: Callable[[], float] = time.monotonic) -> None:
        self.filter = flt
        self.queue: deque[LogRecord] = deque()
        self.dropped = 0  # matching records not sent since the last `dropped` report
        self.closed = False
        self._wake = asyncio.Event()
        self._clock = clock
        self._tokens = EVENTS_PER_SECOND
        self._refilled = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(EVENTS_PER_SECOND, self._tokens + (now - self._refilled) * EVENTS_PER_SECOND)
        self._refilled = now

    def offer(self, record: LogRecord) -> None:
        """Queue a record when it matches and the rate allows; else count it as dropped."""
        if self.closed or not self.filter.matches(record):
            return
        self._refill()
        reserve = 1.0 if self.dropped else 0.0  # leave a token for the `dropped` report
        if self._tokens >= 1.0 + reserve and len(self.queue) < MAX_QUEUE:
            self._tokens -= 1.0
            self.queue.append(record)
        else:
            self.dropped += 1
        self._wake.set()

    def take_drop_report(self) -> int:
        """The dropped count to report now (0 when none, or when the rate allows no event yet)."""
        if not self.dropped:
            return 0
        self._refill()
        if self._tokens < 1.0:
            return 0
        self._tokens -= 1.0
        count, self.dropped = self.dropped, 0
        return count

    def seconds_to_next_token(self) -> float:
        self._refill()
        return max(0.0, (1.0 - self._tokens) / EVENTS_PER_SECOND)

    async def wait(self, timeout: float) -> None:
        """Until something was offered, the tail closed, or `timeout` seconds passed."""
        if self.queue or self.closed:
            return
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    def close(self) -> None:
        self.closed = True
        self._wake.set()


class LogTail:
    """The subscribers of one gateway; `record` is its recorder, listed in `recorders` while any."""

    def __init__(self, recorders: list[Callable[[RequestContext, LogRecord], None]]) -> None:
        self._recorders = recorders
        self._subscribers: set[Subscriber] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def record(self, ctx: RequestContext, record: LogRecord) -> None:
        """Recorder: hand the finished record to every subscriber (nothing to do without any)."""
        if not self._subscribers:
            return
        for subscriber in tuple(self._subscribers):
            subscriber.offer(record)

    def subscribe(self, flt: LogFilter) -> Subscriber | None:
        """A new subscriber, or None when the tail is closed (gateway stopping) or full."""
        if self.closed or len(self._subscribers) >= MAX_SUBSCRIBERS:
            return None
        subscriber = Subscriber(flt)
        self._subscribers.add(subscriber)
        if self.record not in self._recorders:
            self._recorders.append(self.record)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscriber.close()
        self._subscribers.discard(subscriber)
        if not self._subscribers and self.record in self._recorders:
            self._recorders.remove(self.record)

    def close(self) -> None:
        """End every stream (gateway stop): their handlers finish their answers and return."""
        self.closed = True
        for subscriber in tuple(self._subscribers):
            subscriber.close()
