"""Log retention: a background task that deletes request-log rows older than N days.

The store's `purge` is blocking and deletes in small batches through the time index; it runs in a
worker thread, so the event loop never waits on it. The first pass runs at start-up, then one every
`purge_interval(days)`: a twenty-fourth of the retention period, between 1 second and 1 hour (an
hourly pass for any retention of a day or more, so a row outlives its retention by at most an hour).
A failing store is retried on the next pass and reported once per outage, never failing a request.
Every replica (and every worker) runs its own task: concurrent purges just find less to delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from relaygate.observe.store.base import LogStore

log = logging.getLogger("relaygate.observe")

DAY = 86_400.0
MIN_INTERVAL = 1.0
MAX_INTERVAL = 3_600.0


def purge_interval(days: float) -> float:
    """Seconds between purge passes for a retention of `days`."""
    return min(MAX_INTERVAL, max(MIN_INTERVAL, days * DAY / 24.0))


class RetentionPurger:
    """Deletes rows older than `days` from `store`, at start and then every `purge_interval(days)`."""

    def __init__(
        self,
        store: LogStore,
        days: float,
        *,
        purge: Callable[[float], int] | None = None,
        what: str = "request-log rows",
    ) -> None:
        """`purge` (default `store.purge`) deletes what is older than the unix time it is given;
        `what` names it in log lines (the usage rollups have purgers of their own)."""
        if not days > 0:
            raise ValueError("retention must be more than 0 days")
        self._store = store
        self._purge = purge or store.purge
        self.what = what
        self.days = days
        self.interval = purge_interval(days)
        self._task: asyncio.Task[None] | None = None
        self._pass: asyncio.Future[int] | None = None  # the purge running in a worker thread
        self.deleted = 0  # rows deleted by this process since start
        self.passes = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="relaygate-log-retention")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the task; a pass in progress gets `timeout` seconds to finish before the store closes."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pass is not None and not self._pass.done():
            await asyncio.wait([self._pass], timeout=timeout)

    async def _run(self) -> None:
        failing = False
        while True:
            self._pass = asyncio.ensure_future(asyncio.to_thread(self._purge, time.time() - self.days * DAY))
            self._pass.add_done_callback(_retrieve)
            try:
                deleted = await asyncio.shield(self._pass)
            except Exception as exc:  # a store outage: try again next pass, say so once
                if not failing:
                    log.warning(
                        "log retention: purging %s older than %g days failed (retrying every %gs): %s: %s",
                        self.what,
                        self.days,
                        self.interval,
                        type(exc).__name__,
                        exc,
                    )
                failing = True
            else:
                if failing:
                    log.warning("log retention: purging works again")
                failing = False
                self.passes += 1
                self.deleted += deleted
                if deleted:
                    log.info("log retention: deleted %d %s older than %g days", deleted, self.what, self.days)
            await asyncio.sleep(self.interval)


def _retrieve(future: asyncio.Future[int]) -> None:
    """Mark a pass's outcome seen (a pass left running at shutdown may fail once the store closes)."""
    if not future.cancelled():
        future.exception()
