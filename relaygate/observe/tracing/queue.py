"""A bounded span queue exported in batches from its own thread: a slow or dead collector never blocks
or slows a request, and a full queue drops and counts instead of growing.

Used instead of the SDK's BatchSpanProcessor: that one logs a warning for every span it drops
(thousands of lines a second while a collector is down, on the request path) and keeps its drop count
in private state; this one logs once per outage and exposes `dropped` for metrics. It queues one item
per request (a `CapturedTrace` of plain values, counted as its spans against the bound), so the
request's thread only captures: spans are encoded on the export thread, a batch at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger("relaygate.tracing")


class BatchSender(Protocol):
    """Delivers one batch of queued items (False: not delivered); `shutdown` aborts a retry under way."""

    def send(self, batch: Sequence[Any]) -> bool: ...

    def shutdown(self) -> None: ...


class SpanQueue:
    """Finished spans wait here (at most `max_queue`); a worker thread sends them about `batch_size` at
    a time (the items of one batch hold at most `batch_size` spans, or one item that holds more)."""

    def __init__(self, sender: BatchSender, max_queue: int, batch_size: int, schedule_delay: float) -> None:
        self._sender = sender
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._delay = schedule_delay
        self._items: deque[tuple[Any, int]] = deque()  # (item, its spans)
        # Spans ever queued and ever taken out: each written by one thread only (`put`'s, the worker).
        self._queued = 0
        self._taken = 0
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._stopped = False
        self._flush = False  # force_flush asked for everything queued, not just full batches
        self._full = False  # logged once per outage, not per span
        self.dropped = 0  # spans refused because the queue was full (relaygate_otel_spans_dropped_total)
        self.exported = 0
        self.failed = 0  # spans in batches the exporter could not deliver
        self._thread = threading.Thread(target=self._run, name="relaygate-otlp-export", daemon=True)
        self._thread.start()

    def put(self, item: Any, spans: int = 1) -> None:
        """Queue an item of `spans` spans, or drop and count them when the queue is full (never waits)."""
        waiting = self._queued - self._taken
        if waiting + spans > self._max_queue and waiting:  # an empty queue takes even a tree bigger than it
            self.dropped += spans
            if not self._full:
                self._full = True
                log.warning(
                    "trace export queue full (%d spans): dropping spans until the collector catches up", self._max_queue
                )
            return
        self._items.append((item, spans))
        self._queued += spans
        if waiting + spans >= self._batch_size:
            self._wake.set()

    def _run(self) -> None:
        due = time.monotonic() + self._delay
        while True:
            self._wake.wait(max(due - time.monotonic(), 0.0))
            self._wake.clear()
            self._idle.clear()
            everything = self._stopping or time.monotonic() >= due
            if self._flush:  # cleared only once seen: a flush asked meanwhile is not lost
                self._flush = False
                everything = True
            self._export_queued(everything)
            if everything:
                due = time.monotonic() + self._delay
            self._idle.set()
            if self._stopping:
                return

    def _export_queued(self, everything: bool) -> None:
        """Send full batches; the rest too when `everything` (the schedule delay passed, a flush, shutdown).
        Spans that arrive while a batch is sent wait for the next full batch or the next delay: draining
        the queue until empty sent a small batch per post under load, and a post costs as much as the
        spans of a hundred requests."""
        goal = self._queued if everything else 0  # what is queued now goes, not what arrives meanwhile
        while self._items and (self._taken < goal or self._queued - self._taken >= self._batch_size):
            batch: list[Any] = []
            spans = 0
            while self._items and (not batch or spans + self._items[0][1] <= self._batch_size):
                item, count = self._items.popleft()
                batch.append(item)
                spans += count
            self._taken += spans
            try:
                delivered = self._sender.send(batch)
            except Exception as exc:  # a sender bug must not kill the worker
                log.warning("trace export failed: %r", exc)
                delivered = False
            if delivered:
                self.exported += spans
            else:
                self.failed += spans
        self._full = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is queued now; False if that did not finish within the timeout."""
        deadline = time.monotonic() + timeout_millis / 1000.0
        goal = self._queued
        self._flush = True
        self._wake.set()
        while self._taken < goal or not self._idle.is_set():
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.005)
        return True

    def shutdown(self, timeout: float = 3.0) -> None:
        """Export what is queued (for at most `timeout` seconds), then close the exporter; once."""
        if self._stopped:
            return
        self._stopped = self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self._sender.shutdown()  # also aborts an export still retrying against a dead collector
