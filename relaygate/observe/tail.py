"""The live tail of the request log: finished records fanned out to `GET /logs/stream` subscribers.

`LogTail.record` is a recorder that sits in `gateway.recorders` only while someone subscribes (and
returns after one truth test if called with none), so a gateway nobody tails pays nothing.

Each subscriber holds its own filter and a sliding one-second window of `EVENTS_PER_SECOND`: a
matching record is queued only when the window has room (one slot is kept for the `dropped` report
while drops are pending); anything else is counted as dropped. The queue is bounded too (a client that stops reading
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

EVENTS_PER_SECOND = 5  # log and dropped events together, per client, in any one-second window
WINDOW_SECONDS = 1.0
MAX_QUEUE = 64  # records waiting for a slow client
MAX_SUBSCRIBERS = 256


class Subscriber:
    """One client's filtered, rate-limited queue of records.

    Two sliding one-second windows: admissions (records queued plus `dropped` reports) decide what
    is sampled, so the queue never holds more than the client may be sent; send times (kept by the
    handler through `send_delay`/`sent`) make the limit exact on the wire, whatever the scheduling.
    """

    __slots__ = ("filter", "queue", "dropped", "closed", "_wake", "_admitted", "_sent", "_clock")

    def __init__(self, flt: LogFilter, clock: Callable[[], float] = time.monotonic) -> None:
        self.filter = flt
        self.queue: deque[LogRecord] = deque()
        self.dropped = 0  # matching records not sent since the last `dropped` report
        self.closed = False
        self._wake = asyncio.Event()
        self._clock = clock
        self._admitted: deque[float] = deque()
        self._sent: deque[float] = deque(maxlen=EVENTS_PER_SECOND)

    def _recent(self, now: float) -> int:
        admitted = self._admitted
        while admitted and now - admitted[0] >= WINDOW_SECONDS:
            admitted.popleft()
        return len(admitted)

    def offer(self, record: LogRecord) -> None:
        """Queue a record when it matches and the rate allows; else count it as dropped (one slot
        of the window stays free for the `dropped` report while drops are pending)."""
        if self.closed or not self.filter.matches(record):
            return
        now = self._clock()
        room = EVENTS_PER_SECOND - (1 if self.dropped else 0)
        if self._recent(now) < room and len(self.queue) < MAX_QUEUE:
            self._admitted.append(now)
            self.queue.append(record)
        else:
            self.dropped += 1
        self._wake.set()

    def take_drop_report(self) -> int:
        """The dropped count to report now (0 when none, or when the window has no room yet)."""
        if not self.dropped:
            return 0
        now = self._clock()
        if self._recent(now) >= EVENTS_PER_SECOND:
            return 0
        self._admitted.append(now)
        count, self.dropped = self.dropped, 0
        return count

    def seconds_to_room(self) -> float:
        """How long until the admission window has room (for a pending drop report)."""
        now = self._clock()
        if self._recent(now) < EVENTS_PER_SECOND:
            return 0.0
        return max(0.0, self._admitted[0] + WINDOW_SECONDS - now)

    def send_delay(self) -> float:
        """Seconds to wait before the next event may go out (0: now)."""
        if len(self._sent) < EVENTS_PER_SECOND:
            return 0.0
        return max(0.0, self._sent[0] + WINDOW_SECONDS - self._clock())

    def sent(self) -> None:
        """Note that an event went out now."""
        self._sent.append(self._clock())

    async def wait(self, timeout: float) -> None:
        """Until something was offered, the tail closed, or `timeout` seconds passed."""
        if self.queue or self.closed:
            return
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    async def pause(self, seconds: float) -> None:
        """Sleep, cut short when the tail closes."""
        if seconds <= 0 or self.closed:
            return
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass
        if not self.closed:  # woken by an offer: finish the pause (the rate holds)
            rest = self.send_delay()
            if rest > 0:
                await asyncio.sleep(rest)

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
