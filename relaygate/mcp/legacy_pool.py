"""`LegacyConnections`: the legacy HTTP+SSE sessions this process holds open, bounded and expiring.

A gateway session is a sealed token any replica can serve, but a legacy backend session is a live
connection one process holds. So each process keeps its own table, keyed by (server name, the
connection id minted when the gateway session was initialized, carried in the gateway's token):
- at most `max_connections` entries; opening one more closes the least recently used;
- an entry with no request in flight and no GET stream for `idle_seconds` is closed by a sweeper;
- concurrent requests that miss the same key share one opening (one GET, one initialize);
- a connection whose stream ends removes itself, so the next request opens a new one.
A replica (or a restarted process) that does not hold a session's connection opens it again
(`legacy_sse.LegacySseBackend`); the gateway's `stop` closes them all (`aclose`).

Messages the server sends with no caller stream to take them are dropped and counted in `dropped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from relaygate.mcp.legacy_connection import ConnectionHooks, LegacyConnection
from relaygate.mcp.upstream import BackendError
from relaygate.wire_types import JSON

log = logging.getLogger("relaygate.mcp")
MAX_CONNECTIONS = 256  # each holds a socket to its server, out of the upstream pool's 1000 per host
IDLE_SECONDS = 600.0

Key = tuple[str, str]  # (server name, connection id)
Opener = Callable[[ConnectionHooks], Awaitable[LegacyConnection]]


class LegacyConnections:
    """The process's table of open legacy SSE connections (see the module docstring)."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS, idle_seconds: float = IDLE_SECONDS) -> None:
        self.max_connections = max_connections
        self.idle_seconds = idle_seconds
        self.dropped = 0
        self._open: OrderedDict[Key, LegacyConnection] = OrderedDict()
        self._opening: dict[Key, asyncio.Task[LegacyConnection]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._stopped = False

    def __len__(self) -> int:
        return len(self._open)

    def held(self, key: Key) -> LegacyConnection | None:
        """The live connection of `key` this process holds, if any (it becomes the most recently used)."""
        connection = self._open.get(key)
        if connection is None:
            return None
        if not connection.alive:
            del self._open[key]
            return None
        self._open.move_to_end(key)
        return connection

    async def connection(self, key: Key, opener: Opener) -> LegacyConnection:
        """The connection of `key`: the one held, or one `opener` opens (once, however many ask at a time)."""
        held = self.held(key)
        if held is not None:
            return held
        if self._stopped:
            raise BackendError(None, "the gateway is shutting down", kind="disconnected")
        task = self._opening.get(key)
        if task is None:
            task = asyncio.create_task(self._open_one(key, opener), name="relaygate-mcp-legacy-open")
            task.add_done_callback(_retrieve)
            self._opening[key] = task
        return await asyncio.shield(task)

    def close(self, key: Key, only: LegacyConnection | None = None) -> bool:
        """Close the connection of `key` if this process holds it (DELETE of the gateway session); with
        `only`, just when it is still that one (a caller that saw it fail must not close its successor)."""
        connection = self._open.get(key)
        if connection is None or (only is not None and connection is not only):
            if only is not None:
                only.close()
            return False
        del self._open[key]
        connection.close()
        return True

    async def aclose(self) -> None:
        """Close every connection (the gateway is stopping); later requests are refused."""
        self._stopped = True
        for task in (*self._opening.values(), *self._tasks):
            task.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
        connections = list(self._open.values())
        self._open.clear()
        for connection in connections:
            await connection.aclose()
        for task in (*self._opening.values(), *self._tasks):
            with contextlib.suppress(asyncio.CancelledError, BackendError):
                await task

    async def _open_one(self, key: Key, opener: Opener) -> LegacyConnection:
        try:
            hooks = ConnectionHooks(self._drop, lambda connection: self._forget(key, connection), self._tasks)
            connection = await opener(hooks)
            if self._stopped:
                connection.close()
                raise BackendError(None, "the gateway is shutting down", kind="disconnected")
            self._insert(key, connection)
            return connection
        finally:
            self._opening.pop(key, None)

    def _insert(self, key: Key, connection: LegacyConnection) -> None:
        previous = self._open.pop(key, None)
        if previous is not None and previous is not connection:
            previous.close()
        while len(self._open) >= self.max_connections:
            _, oldest = self._open.popitem(last=False)
            log.info("MCP legacy SSE: %d connections open, closing the least recently used", self.max_connections)
            oldest.close()
        self._open[key] = connection
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="relaygate-mcp-legacy-sweeper")

    def _forget(self, key: Key, connection: LegacyConnection) -> None:
        if self._open.get(key) is connection:
            del self._open[key]

    def _drop(self, message: JSON) -> None:
        self.dropped += 1
        log.debug("MCP legacy SSE: dropped %s: no caller stream to relay it to", message.get("method") or "a response")

    async def _sweep(self) -> None:
        """Close idle connections every so often; ends when the table is empty (the next insert restarts it)."""
        try:
            while self._open:
                await asyncio.sleep(min(max(self.idle_seconds / 4, 0.05), 60.0))
                now = time.monotonic()
                for connection in list(self._open.values()):
                    if not connection.busy and now - connection.last_used > self.idle_seconds:
                        connection.close()
        finally:
            self._sweeper = None


def _retrieve(task: asyncio.Task[LegacyConnection]) -> None:
    """Mark an opening's failure as seen (every waiter may have left before it ended)."""
    if not task.cancelled():
        task.exception()
