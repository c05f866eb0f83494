"""The access log: one line per finished request on stdout (`--access-log text|json|off`).

Off the request path: the recorder appends the record to a bounded deque and returns; a daemon thread
formats and writes whole batches (one write and one flush each). A full queue drops the line and counts
it (`dropped`, exported as a metric), so a stdout nobody reads (a full pipe) can cost lines, never a
request. The writer is a thread rather than a task so that a blocked stdout cannot hold the event loop,
a worker of its default executor, or the process's exit.

Counters: `submitted` counts every line offered; after a clean `close`, `submitted == written + dropped`.
Drops are logged at WARNING at most once per `DROP_LOG_INTERVAL` seconds, with how many.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from relaygate.observe.access_format import access_fields, json_line, text_line
from relaygate.observe.record import LogRecord
from relaygate.observe.throttle import Throttle

if TYPE_CHECKING:
    from relaygate.context import RequestContext

logger = logging.getLogger("relaygate.access")

MODES = ("text", "json", "off")
DROP_LOG_INTERVAL = 10.0
FLUSH_INTERVAL = 0.05  # seconds a line may wait for its batch
_DROPPED = "dropped"
_FAILED = "failed"


class AccessLog:
    """Bounded queue + one writer thread in front of stdout. `record` is the gateway's recorder.

    `stream`: where lines go (default: `sys.stdout` as it is when a batch is written).
    """

    def __init__(
        self,
        mode: str,
        *,
        max_queue: int = 10_000,
        batch_size: int = 512,
        stream: IO[Any] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"access log mode must be one of {', '.join(MODES)}, got {mode!r}")
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        self.mode = mode
        self._format = json_line if mode == "json" else text_line
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._stream = stream
        self._queue: deque[tuple[str, LogRecord]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        clocked: dict[str, Any] = {"clock": clock} if clock is not None else {}
        self._drops = Throttle(DROP_LOG_INTERVAL, **clocked)  # the event loop's thread
        self._failures = Throttle(DROP_LOG_INTERVAL, **clocked)  # the writer thread
        self.submitted = 0
        self.written = 0
        self._dropped_full = 0  # incremented on the event loop's thread only
        self._dropped_failed = 0  # incremented on the writer thread only

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def dropped(self) -> int:
        """Lines that never reached stdout: the queue was full (or closed), or the write failed."""
        return self._dropped_full + self._dropped_failed

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def record(self, ctx: RequestContext, record: LogRecord) -> None:
        """Queue the request's line without waiting (the gateway's recorder, pipeline/finish.py)."""
        self.submitted += 1
        if self._closed or len(self._queue) >= self._max_queue:
            self._dropped_full += 1
            self._report_drops()
            return
        self._queue.append((ctx.route, record))
        if len(self._queue) >= self._batch_size:  # else the writer's next tick takes it: no wake-up per line
            self._wake.set()

    def start(self) -> None:
        """Start the writer thread (idempotent; nothing to start when the mode is off)."""
        if self.enabled and self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name="relaygate-access-log", daemon=True)
            self._thread.start()

    async def close(self, timeout: float = 5.0) -> None:
        """Write every queued line, then stop the writer; lines still queued after `timeout` are dropped."""
        if self._closed:
            return
        self._closed = True  # from now on `record` drops
        if self._queue:
            self.start()  # lines recorded before `start` (a gateway that stopped early) are still written
        thread = self._thread
        self._stopping = True
        self._wake.set()
        if thread is not None:
            await asyncio.to_thread(thread.join, timeout)
            if thread.is_alive():  # stdout blocked: the daemon thread is left to the process's exit
                lost = len(self._queue)
                self._queue.clear()
                self._dropped_full += lost
                logger.warning("access log flush timed out after %.1fs; %d queued lines dropped", timeout, lost)
        held = self._drops.pending(_DROPPED)
        if held:
            logger.warning("access log: %d more lines dropped (queue full); %d in all", held, self.dropped)

    def _run(self) -> None:
        """Every `FLUSH_INTERVAL` (sooner when a batch is full or on close) write what is queued.

        Waking per line cost a thread switch and a write per request (~25% of a chat request's CPU
        under load); on a tick, lines go out in batches, at most `FLUSH_INTERVAL` late."""
        queue = self._queue
        while True:
            if not queue or (len(queue) < self._batch_size and not self._stopping):
                if not queue and self._stopping:
                    return
                self._wake.clear()
                self._wake.wait(FLUSH_INTERVAL)
                if not queue:
                    continue
            batch: list[tuple[str, LogRecord]] = []
            while queue and len(batch) < self._batch_size:
                batch.append(queue.popleft())
            self._write(batch)

    def _write(self, batch: list[tuple[str, LogRecord]]) -> None:
        """Format and write one batch with one flush; a failed write counts its lines as dropped."""
        try:
            data = b"".join(self._format(access_fields(route, record)) for route, record in batch)
            stream = self._stream if self._stream is not None else sys.stdout
            binary = getattr(stream, "buffer", None)
            if binary is not None:
                stream.flush()  # anything printed through the text layer goes first, whole
                binary.write(data)
                binary.flush()
            else:
                stream.write(data.decode("utf-8"))
                stream.flush()
        except Exception as exc:  # a closed or broken stdout must not kill the writer
            self._dropped_failed += len(batch)
            held = self._failures.allow(_FAILED)
            if held is not None:
                logger.warning(
                    "access log: stdout write failed (%s): %d lines dropped, %d writes failed since the last report",
                    type(exc).__name__,
                    len(batch),
                    held + 1,
                )
        else:
            self.written += len(batch)

    def _report_drops(self) -> None:
        held = self._drops.allow(_DROPPED)
        if held is not None:
            logger.warning(
                "access log queue full (%d lines): %d lines dropped since the last report, %d in all",
                self._max_queue,
                held + 1,
                self.dropped,
            )
