"""A small MCP server to put behind Relaygate: three tools over Streamable HTTP on port 9000.

    pip install "mcp>=2"          # the official Python SDK (FastMCP is `MCPServer` in 2.x)
    NOTES_TOKEN=notes-secret python examples/mcp/server.py

It refuses requests without `Authorization: Bearer $NOTES_TOKEN`: the credential lives in the
gateway's manifest (`auth_data`), never in the clients (examples/mcp/relaygate.yaml).
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import Receive, Scope, Send

notes: dict[str, str] = {}
server: MCPServer[Any] = MCPServer("notes", version="1.0.0")


@server.tool()
def add_note(title: str, text: str) -> str:
    """Keep a note under a title."""
    notes[title] = text
    return f"saved {title!r}"


@server.tool(name="notes.read")
def read_note(title: str) -> str:
    """Read a note back (a dotted name: listed as notes_read by a virtual server)."""
    return notes.get(title, f"no note called {title!r}")


@server.tool()
def delete_all_notes() -> str:
    """Forget every note (the manifest leaves this tool out for everyone)."""
    notes.clear()
    return "deleted"


def require_token(app: Any, token: str) -> Any:
    """Answer 401 unless the request carries the server's own token (what the gateway's auth_data sends)."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != f"Bearer {token}".encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return guarded


if __name__ == "__main__":
    app = server.streamable_http_app(streamable_http_path="/mcp")
    uvicorn.run(require_token(app, os.environ.get("NOTES_TOKEN", "notes-secret")), host="127.0.0.1", port=9000)
