"""The MCP gateway's endpoints: `/mcp/{name}` and TrueFoundry's `/api/llm/mcp/{name}/server` and
`/mcp/v1/{name}/mcp` (Streamable HTTP: POST, GET, DELETE), served by `pipeline/mcp_serve.py`.

Errors leave as JSON-RPC error bodies (what an MCP client reads) with the HTTP status the transport
asks for; a 401 carries `WWW-Authenticate: Bearer` so a client knows to send a token.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from relaygate.errors import Unauthorized
from relaygate.mcp.http_errors import error_body
from relaygate.pipeline.mcp_serve import serve

if TYPE_CHECKING:
    from relaygate.errors import GatewayError
    from relaygate.http.types import RawHeaders, Send
    from relaygate.pipeline.call import Call

METHODS = frozenset({"POST", "GET", "DELETE"})
TEMPLATE = "/mcp/{name}"
_PATHS = re.compile(r"^(?:/mcp/(?:v1/(?P<v1>[^/]+)/mcp|(?P<plain>[^/]+))|/api/llm/mcp/(?P<tfy>[^/]+)/server)/?$")


def server_name(path: str) -> str | None:
    """The MCP server a path names, or None when it is not an MCP endpoint."""
    match = _PATHS.match(path)
    if match is None:
        return None
    return match.group("v1") or match.group("plain") or match.group("tfy")


async def handle(call: Call) -> None:
    """Serve one MCP request."""
    name = server_name(call.scope["path"])
    assert name is not None  # the route only matches MCP paths
    await serve(call, name)


async def send_error(send: Send, error: GatewayError, base_headers: RawHeaders) -> None:
    """An error as a JSON-RPC error response (id null unless the refusal knew it)."""
    headers = [(b"content-type", b"application/json"), *base_headers]
    headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items())
    if isinstance(error, Unauthorized):
        headers.append((b"www-authenticate", b"Bearer"))
    body = error_body(error)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
