"""Noticing a caller that went away, so the upstream work done for it stops at once.

Watching costs a task per request, which is most of a fast request's overhead; so the task only
starts once the request has run for `delay` seconds (a timer is far cheaper than a task). A caller
that disconnects is still noticed within `delay` plus a loop turn.
"""

from __future__ import annotations

import asyncio

from relaygate.http.types import Receive

WATCH_DELAY = 0.05


class DisconnectWatcher:
    """Waits for `http.disconnect` and cancels the relaying task."""

    __slots__ = ("disconnected", "_task", "_owner", "_receive", "_timer")

    def __init__(self, receive: Receive, delay: float = WATCH_DELAY) -> None:
        self.disconnected = False
        self._owner = asyncio.current_task()
        self._receive = receive
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self._owner is not None:
                    self._owner.cancel()
                return

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
