"""The request log's way off the hot path: a bounded queue drained by one batch writer.

`submit` is a `put_nowait`: it never waits and never raises, so a slow or down log store can only
cost log rows (counted in `dropped` / `failed`), never a request. One background task takes a batch
and hands it to the blocking store in a worker thread.

Failure policy: a batch the store rejects is counted in `failed` and dropped, not retried. Retrying
would let a store that is down for minutes fill the queue and then shed the newest rows instead;
dropping keeps the writer current and the counters honest. Errors are logged at most once per
`ERROR_LOG_INTERVAL` seconds with the exception type and message only, never record contents.

Counters: `submitted` counts every `submit` call; after a clean `close`,
`submitted == written + dropped + failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from relaygate.observe.record import LogRecord
from relaygate.observe.store.base import LogStore
from relaygate.observe.throttle import Throttle

logger = logging.getLogger("relaygate.observe")

ERROR_LOG_INTERVAL = 10.0
DROP_LOG_INTERVAL = 10.0
_DROPPED = "dropped"


class LogSink:
    """Bounded queue + one batch-writing task in front of a blocking `LogStore`.

    `submit` must be called from the event loop's thread (asyncio queues are not thread-safe).
    """

    def __init__(
        self,
        store: LogStore,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.25,
    ) -> None:
        """`flush_interval`: after a partial batch, how long the writer lingers for more records
        (cut short once `batch_size` are waiting or on close), so a trickle of requests becomes
        a few transactions per second rather than one per request."""
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        self._store = store
        self._queue: asyncio.Queue[LogRecord] = asyncio.Queue(maxsize=max_queue)
        self._batch_size = batch_size
        self._flush_interval = max(flush_interval, 0.0)
        self._batch_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._last_error_log = float("-inf")
        self._errors_since_log = 0
        self._drops = Throttle(DROP_LOG_INTERVAL)
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        self.failed = 0

    @property
    def running(self) -> bool:
        """True while the writer task is alive (readiness)."""
        return self._task is not None and not self._task.done()

    @property
    def queue_depth(self) -> int:
        """Records accepted but not yet handed to the store."""
        return self._queue.qsize()

    def submit(self, record: LogRecord) -> None:
        """Queue a record without waiting; a full queue (or a closed sink) drops and counts it."""
        self.submitted += 1
        if self._closed:
            self._drop()
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop()
            return
        except Exception:  # never let logging fail a request
            self._drop()
            return
        if self._queue.qsize() >= self._batch_size:
            self._batch_ready.set()

    def _drop(self) -> None:
        """Count a row not queued; WARNING at most once per `DROP_LOG_INTERVAL` with how many."""
        self.dropped += 1
        held = self._drops.allow(_DROPPED)
        if held is not None:
            logger.warning(
                "request log queue full (%d rows): %d rows dropped since the last report, %d in all",
                self._queue.maxsize,
                held + 1,
                self.dropped,
            )

    async def start(self) -> None:
        """Start the writer task (idempotent)."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name="relaygate-log-sink")

    async def close(self, timeout: float = 10.0) -> None:
        """Write everything accepted so far, then stop the writer.

        Records still queued when `timeout` runs out (a store that hangs) are counted as dropped.
        """
        if self._closed:
            return
        if self._task is None:
            await self.start()
        self._closing = True
        self._batch_ready.set()  # cut any linger short
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            lost = self._queue.qsize()
            self.dropped += lost
            logger.warning("request log flush timed out after %.1fs; %d queued records dropped", timeout, lost)
        self._closed = True
        held = self._drops.pending(_DROPPED)
        if held:
            logger.warning("request log: %d more rows dropped (queue full); %d in all", held, self.dropped)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        """Take a batch (wait for the first record, drain the rest without waiting), write, repeat."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            await self._write(batch)
            if len(batch) < self._batch_size:
                await self._linger()

    async def _write(self, batch: list[LogRecord]) -> None:
        """Hand one batch to the store in a thread; count the outcome, never raise."""
        try:
            await asyncio.to_thread(self._store.write_many, batch)
        except Exception as exc:
            self.failed += len(batch)
            self._report(exc)
        else:
            self.written += len(batch)
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _linger(self) -> None:
        """Wait up to `flush_interval` for a full batch to build up, unless closing."""
        if self._closing or self._flush_interval <= 0:
            return
        self._batch_ready.clear()
        if self._queue.qsize() >= self._batch_size:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._flush_interval):
                await self._batch_ready.wait()

    def _report(self, exc: Exception) -> None:
        """Log a store failure at most once per interval: type and message, no record contents."""
        self._errors_since_log += 1
        now = time.monotonic()
        if now - self._last_error_log < ERROR_LOG_INTERVAL:
            return
        logger.error(
            "request log store failed (%d failures since last report, %d records dropped so far): %s: %s",
            self._errors_since_log,
            self.failed,
            type(exc).__name__,
            exc,
        )
        self._last_error_log = now
        self._errors_since_log = 0
