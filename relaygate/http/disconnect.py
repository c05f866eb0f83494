"""Noticing a caller that went away, so the upstream work done for it stops at once."""

from __future__ import annotations

import asyncio

from relaygate.http.types import Receive


class DisconnectWatcher:
    """Waits for `http.disconnect` and cancels the relaying task (one task per stream, not per chunk)."""

    __slots__ = ("disconnected", "_task", "_owner")

    def __init__(self, receive: Receive) -> None:
        self.disconnected = False
        self._owner = asyncio.current_task()
        self._task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self._owner is not None:
                    self._owner.cancel()
                return

    def stop(self) -> None:
        self._task.cancel()
