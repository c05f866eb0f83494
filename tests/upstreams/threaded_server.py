"""`ThreadedServer`: serve an asyncio (aiohttp) test server from a background thread with its own loop.

For sync tests. A subclass provides `_thread_start()` (bind and start serving, on the thread's loop)
and `_thread_stop()` (clean up, run on the same loop after it stops), and may name its thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self


class ThreadedServer:
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def _thread_start(self) -> None:
        raise NotImplementedError

    async def _thread_stop(self) -> None:
        raise NotImplementedError

    def _thread_name(self) -> str:
        return f"{type(self).__name__}-{id(self)}"

    def start_in_thread(self) -> Self:
        """Serve from a background thread with its own event loop (for sync tests)."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._thread_start())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._thread_stop())
            _finish_tasks(loop)
            loop.close()

        self._thread = threading.Thread(target=run, name=self._thread_name(), daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread.join(10)
            self._thread = None
            self._loop = None
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None
        self._loop = None

    @contextmanager
    def running(self) -> Iterator[Self]:
        self.start_in_thread()
        try:
            yield self
        finally:
            self.stop_thread()


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still running (handlers of connections a client left open) and let it end, so no
    task is destroyed pending when the loop closes."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
