"""`ProbeMock`: the OpenAI mock, plus the moment each request's connection was closed by the gateway.

The stock mock only says whether an answer was `completed`. Cancellation tests need more: that the
gateway closed the upstream connection promptly after its caller went away. A watcher task per
request polls the connection's transport while the answer is pending (delayed or still streaming)
and notes when it closed; a normally completed answer stops the watch.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from tests.upstreams.openai_mock import OpenAIMock, RecordedRequest

POLL_SECONDS = 0.01
WATCH_LIMIT_SECONDS = 30.0


class ProbeMock(OpenAIMock):
    """An `OpenAIMock` that records when the client side (the gateway) closed each request's connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closed_at: dict[int, float] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    def closed_at(self, recorded: RecordedRequest) -> float | None:
        """`time.monotonic()` when the connection carrying `recorded` closed before its answer was complete."""
        with self._lock:
            return self._closed_at.get(id(recorded))

    def wait_closed(self, recorded: RecordedRequest, timeout: float = 5.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            closed = self.closed_at(recorded)
            if closed is not None:
                return closed
            time.sleep(POLL_SECONDS)
        return None

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._closed_at.clear()

    async def _record(self, request: web.Request) -> RecordedRequest:
        recorded = await super()._record(request)
        task = asyncio.ensure_future(self._watch(request, recorded))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return recorded

    async def _watch(self, request: web.Request, recorded: RecordedRequest) -> None:
        deadline = time.monotonic() + WATCH_LIMIT_SECONDS
        while time.monotonic() < deadline and not recorded.completed:
            transport = request.transport
            if transport is None or transport.is_closing():
                with self._lock:
                    self._closed_at[id(recorded)] = time.monotonic()
                return
            await asyncio.sleep(POLL_SECONDS)

    async def stop(self) -> None:
        for task in list(self._watchers):
            task.cancel()
        await super().stop()
