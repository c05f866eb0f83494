"""Legacy HTTP+SSE MCP servers for tests: the official SDK's `MCPServer(...).sse_app()` (MCP 2024-11-05).

The same tools as `mcp_servers.py` (`alpha_server()`, `beta_server()`), served over the transport the
gateway reaches with `transport: sse`: `GET /sse` opens the stream (its first event, `endpoint`, names
`/messages/?session_id=...`), each message is POSTed there (202) and answered on the stream. Requests
are recorded like `McpTestServer`'s (headers and bodies, and the optional 401 without credentials),
and `restart()` serves again on the same port after a stop (every session forgotten: a backend restart).
`MisbehavingSse` serves SSE URLs that go wrong (an endpoint on another origin, a redirect, ...).

    with LegacySseTestServer().running() as server:
        server.url          # http://127.0.0.1:PORT/sse
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from starlette.types import ASGIApp

from tests.upstreams.aiohttp_server import AiohttpServer
from tests.upstreams.mcp_servers import McpTestServer, _RecordHeaders, alpha_server, beta_server

SSE_PATH = "/sse"
MESSAGE_PATH = "/messages/"


class LegacySseTestServer(McpTestServer):
    """An SDK server on the legacy HTTP+SSE transport, under uvicorn on a background thread."""

    @property
    def url(self) -> str:
        """The SSE URL (`http://127.0.0.1:PORT/sse`): what a `transport: sse` manifest names."""
        return f"http://127.0.0.1:{self.port}{SSE_PATH}"

    def restart(self) -> None:
        """Stop (open streams are cut) and serve again on the same port, knowing no session."""
        self.stop()
        self.start()

    def posts(self) -> list[dict[str, object]]:
        """The JSON-RPC messages POSTed so far, in order."""
        return [request.message() for request in self.requests_with("POST") if request.body]

    def _app(self) -> ASGIApp:
        mcp = alpha_server(self._gates) if self.kind == "alpha" else beta_server()
        return _RecordHeaders(
            mcp.sse_app(sse_path=SSE_PATH, message_path=MESSAGE_PATH), self.requests, self.required_headers
        )


class MisbehavingSse(AiohttpServer):
    """Legacy SSE URLs that go wrong: an endpoint on another origin, a redirect, no endpoint, no stream."""

    posts = 0

    def _routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/other-origin", self._other_origin)
        router.add_get("/other-port", self._other_port)
        router.add_get("/redirect", self._redirect)
        router.add_get("/no-endpoint", self._no_endpoint)
        router.add_get("/json", self._json)
        router.add_post("/{tail:.*}", self._post)

    async def _stream(self, request: web.Request, *events: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await asyncio.sleep(30)
        return response

    async def _other_origin(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, b"event: endpoint\ndata: http://attacker.example/messages/?s=1\n\n")

    async def _other_port(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, b"event: endpoint\ndata: //127.0.0.1:1/messages/?s=1\n\n")

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "http://attacker.example/sse"})

    async def _no_endpoint(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, b": ping\n\n")

    async def _json(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"hello": "world"})

    async def _post(self, request: web.Request) -> web.StreamResponse:
        self.posts += 1
        return web.Response(status=202)
