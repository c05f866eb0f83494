"""A bounded span queue exported in batches from its own thread: a slow or dead collector never blocks
or slows a request, and a full queue drops and counts instead of growing.

Used instead of the SDK's BatchSpanProcessor: that one logs a warning for every span it drops
(thousands of lines a second while a collector is down, on the request path) and keeps its drop count
in private state; this one logs once per outage and exposes `dropped` for metrics. And it queues what
the sender wants: OTLP/HTTP spans are encoded when they end, so the queue holds bytes, which the
garbage collector never scans (hundreds of live span objects per batch cost more in GC passes than
their encoding).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger("relaygate.tracing")


class BatchSender(Protocol):
    """Delivers one batch of queued items (False: not delivered); `shutdown` aborts a retry under way."""

    def send(self, batch: Sequence[Any]) -> bool: ...

    def shutdown(self) -> None: ...


class SpanQueue:
    """Finished spans wait here (at most `max_queue`); a worker thread sends them `batch_size` at a time."""

    def __init__(
        self,
        sender: BatchSender,
        max_queue: int,
        batch_size: int,
        schedule_delay: float,
        prepare: Callable[[Any], Any] | None = None,
    ) -> None:
        self._sender = sender
        self._prepare = prepare  # what a span becomes in the queue (its encoding), on the request's thread
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._delay = schedule_delay
        self._spans: deque[Any] = deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._stopped = False
        self._full = False  # logged once per outage, not per span
        self.dropped = 0  # spans refused because the queue was full (relaygate_otel_spans_dropped_total)
        self.exported = 0
        self.failed = 0  # spans in batches the exporter could not deliver
        self._thread = threading.Thread(target=self._run, name="relaygate-otlp-export", daemon=True)
        self._thread.start()

    def put(self, span: Any) -> None:
        """Queue the span, or drop and count it when the queue is full (never waits)."""
        if len(self._spans) >= self._max_queue:
            self.dropped += 1
            if not self._full:
                self._full = True
                log.warning(
                    "trace export queue full (%d spans): dropping spans until the collector catches up", self._max_queue
                )
            return
        self._spans.append(span if self._prepare is None else self._prepare(span))
        if len(self._spans) >= self._batch_size:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._idle.clear()
            self._export_queued()
            self._idle.set()
            if self._stopping:
                return

    def _export_queued(self) -> None:
        while self._spans:
            batch = [self._spans.popleft() for _ in range(min(self._batch_size, len(self._spans)))]
            try:
                delivered = self._sender.send(batch)
            except Exception as exc:  # a sender bug must not kill the worker
                log.warning("trace export failed: %r", exc)
                delivered = False
            if delivered:
                self.exported += len(batch)
            else:
                self.failed += len(batch)
        self._full = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is queued now; False if that did not finish within the timeout."""
        deadline = time.monotonic() + timeout_millis / 1000.0
        self._wake.set()
        while self._spans or not self._idle.is_set():
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
