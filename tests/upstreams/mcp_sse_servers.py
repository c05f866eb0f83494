"""Legacy HTTP+SSE MCP servers for tests: the official SDK's `MCPServer(...).sse_app()` (MCP 2024-11-05).

The same tools as `mcp_servers.py` (`alpha_server()`, `beta_server()`), served over the transport the
gateway reaches with `transport: sse`: `GET /sse` opens the stream (its first event, `endpoint`, names
`/messages/?session_id=...`), each message is POSTed there (202) and answered on the stream. Requests
are recorded like `McpTestServer`'s (headers and bodies, and the optional 401 without credentials),
and `restart()` serves again on the same port after a stop (every session forgotten: a backend restart).

    with LegacySseTestServer().running() as server:
        server.url          # http://127.0.0.1:PORT/sse
"""

from __future__ import annotations

from starlette.types import ASGIApp

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
