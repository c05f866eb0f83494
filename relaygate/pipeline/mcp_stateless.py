"""The stateless 2026-07-28 era: no session id, every request stands alone and names its version.

The routing headers were checked against the body before this step (`protocol.check_method_headers`).
The request is served like a session-era one over a session made for it alone (each backend spoken to
in the same era, with the client's `_meta` and the mirrored `Mcp-Method`/`Mcp-Name` headers):
`server/discover` passes through on a single remote server and is answered by the gateway on a virtual
one, `ping` is answered here, `tools/list` and `tools/call` go through the same access checks, and the
rest passes through on single remote servers (-32601 on virtual ones).
"""

from __future__ import annotations

from typing import Any

from relaygate.mcp.jsonrpc import METHOD_NOT_FOUND, JsonRpcMessage, MessageKind, error_response, result_response
from relaygate.mcp.protocol import STATELESS_VERSION, meta_version
from relaygate.mcp.session import BackendSession, McpSession
from relaygate.pipeline.mcp_call import call_tool
from relaygate.pipeline.mcp_forward import accept, pass_through
from relaygate.pipeline.mcp_reply import send_json
from relaygate.pipeline.mcp_request import McpRequest
from relaygate.pipeline.mcp_sessions import GATEWAY_VERSION
from relaygate.pipeline.mcp_tools import list_tools


async def serve_stateless(req: McpRequest, message: JsonRpcMessage) -> None:
    """Serve one stateless-era message (its version and headers already checked)."""
    req.stateless = True
    meta = message.params.get("_meta")
    req.meta = dict(meta) if isinstance(meta, dict) else None
    assert meta_version(message.body) == STATELESS_VERSION
    principal = req.principal
    req.session = McpSession(
        req.name,
        principal.subject,
        principal.token_id,
        0,
        STATELESS_VERSION,
        {server.name: BackendSession(None, STATELESS_VERSION) for server in req.members()},
    )
    call = req.call
    if message.kind is not MessageKind.REQUEST:
        await accept(req, message)
        return
    assert message.id is not None
    method = message.method
    if method == "ping":
        await send_json(call, result_response(message.id, {}))
    elif method == "tools/list":
        await list_tools(req, message)
    elif method == "tools/call":
        await call_tool(req, message)
    elif method == "server/discover" and req.virtual:
        await send_json(call, result_response(message.id, discover_result(req.name)))
    elif not req.virtual:
        await pass_through(req, message)
    else:
        text = f"Method not found: {method} (a virtual MCP server serves tools only)"
        await send_json(call, error_response(message.id, METHOD_NOT_FOUND, text))


def discover_result(name: str) -> dict[str, Any]:
    """A virtual server's `server/discover` answer: the stateless version, tools only."""
    return {
        "supportedVersions": [STATELESS_VERSION],
        "capabilities": {"tools": {"listChanged": True}},
        "resultType": "complete",
        "_meta": {"io.modelcontextprotocol/serverInfo": {"name": f"relaygate/{name}", "version": GATEWAY_VERSION}},
    }
