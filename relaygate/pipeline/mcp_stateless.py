"""The stateless 2026-07-28 era: no session, every request stands alone (to be completed)."""

from __future__ import annotations

from relaygate.mcp.jsonrpc import METHOD_NOT_FOUND, JsonRpcMessage, error_response
from relaygate.pipeline.mcp_reply import send_empty, send_json
from relaygate.pipeline.mcp_request import McpRequest


async def serve_stateless(req: McpRequest, message: JsonRpcMessage) -> None:
    """Not served yet: -32601 for requests, 202 for notifications."""
    if message.id is None:
        await send_empty(req.call, 202)
        return
    await send_json(req.call, error_response(message.id, METHOD_NOT_FOUND, "the 2026-07-28 era is not served yet"))
