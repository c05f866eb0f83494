"""Metrics summed over `--workers N` processes: each worker answers its siblings on a Unix socket.

The master makes one directory per `relaygate serve` (so two gateways on one host never mix) and
removes it at exit. In it, every worker listens on `<pid>.sock` and hands over its current state when
asked; the worker answering a scrape asks every sibling and adds their states to its own, so each
scrape is exact at that moment, and nothing is written on the request path. A worker that stops
cleanly leaves its counters in `<pid>.final.json`, so totals do not drop when it exits; a worker
killed outright takes its counts with it (Prometheus reads that as a counter reset).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import orjson

from relaygate.observe.exposition import State

log = logging.getLogger("relaygate")
ASK_TIMEOUT = 2.0  # seconds to wait for one sibling's state
_MAX_STATE_BYTES = 64 * 1024 * 1024


class WorkerMetrics:
    """This worker's end of the exchange: serve its own state, gather the siblings'."""

    def __init__(self, directory: str, own_state: Callable[[], State]) -> None:
        self._directory = Path(directory)
        self._own_state = own_state
        self._socket = self._directory / f"{os.getpid()}.sock"
        self._server: asyncio.AbstractServer | None = None
        self.unreachable = 0  # siblings that did not answer a scrape (counted, never fatal)

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._answer, path=str(self._socket))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(orjson.dumps(self._own_state()))
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def siblings(self) -> list[State]:
        """Every other live worker's state, plus what stopped workers left behind."""
        asks = [self._ask(path) for path in self._directory.glob("*.sock") if path != self._socket]
        states = [state for state in await asyncio.gather(*asks) if state is not None]
        for path in self._directory.glob("*.final.json"):
            try:
                states.append(orjson.loads(path.read_bytes()))
            except (OSError, orjson.JSONDecodeError):
                continue
        return states

    async def _ask(self, path: Path) -> State | None:
        try:
            async with asyncio.timeout(ASK_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(str(path), limit=_MAX_STATE_BYTES)
                try:
                    data = await reader.read(-1)
                finally:
                    writer.close()
            state: State = orjson.loads(data)
            return state
        except (TimeoutError, OSError, orjson.JSONDecodeError):
            self.unreachable += 1
            return None

    async def stop(self) -> None:
        """Stop answering and leave this worker's counters for the siblings that go on."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        final = {
            name: family
            for name, family in self._own_state().items()
            if family["kind"] != "gauge" and not name.startswith("process_")
        }
        try:
            self._socket.unlink(missing_ok=True)
            temporary = self._directory / f"{os.getpid()}.final.tmp"
            temporary.write_bytes(orjson.dumps(final))
            temporary.rename(self._directory / f"{os.getpid()}.final.json")
        except OSError as exc:  # the master removed the directory already: nothing left to sum into
            log.debug("worker metrics not left behind: %s", exc)
