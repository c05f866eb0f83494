"""`AiohttpServer`: an aiohttp test server on a free port, served in the running loop or from a thread.

Start one from async code in the running loop (`async with Server() as server:`, or `await
server.start()` / `await server.stop()`) or from sync code in a background thread with its own loop
(`with Server().running() as server:`, or `start_in_thread()` / `stop_thread()`: see `ThreadedServer`).
A subclass sets `host` (and `ssl_context`, `client_max_size` where it needs to) and answers every
request in `_handle`, or routes its own in `_routes`.
"""

from __future__ import annotations

import socket
import ssl
from typing import Self

from aiohttp import web

from tests.upstreams.threaded_server import ThreadedServer


class AiohttpServer(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0  # the bound port, once started
    ssl_context: ssl.SSLContext | None = None
    client_max_size: int = 64 * 1024 * 1024
    _runner: web.AppRunner | None = None
    _sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """The origin: `http://127.0.0.1:PORT` (`https` with an SSL context, brackets around IPv6 hosts)."""
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application(client_max_size=self.client_max_size)
        self._routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        self._sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self.port = self._sock.getsockname()[1]
        await web.SockSite(self._runner, self._sock, ssl_context=self.ssl_context).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _thread_start(self) -> None:
        await self.start()

    async def _thread_stop(self) -> None:
        await self.stop()
