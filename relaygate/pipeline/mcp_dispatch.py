"""One session-era message in an open session, sent to the step of its method.

`ping` is answered here, `tools/list` and `tools/call` go through the access checks (`mcp_tools.py`,
`mcp_call.py`); on a single remote server every other request (prompts, resources, completion) passes
through, on a virtual server it is -32601. Notifications and client responses are forwarded and
accepted with 202. Shared by a POST of one message and by each message of a 2025-03-26 batch.
"""

from __future__ import annotations

from relaygate.mcp.jsonrpc import METHOD_NOT_FOUND, JsonRpcMessage, MessageKind, error_response, result_response
from relaygate.pipeline.mcp_call import call_tool
from relaygate.pipeline.mcp_forward import accept, pass_through
from relaygate.pipeline.mcp_reply import send_json
from relaygate.pipeline.mcp_request import McpRequest
from relaygate.pipeline.mcp_tools import list_tools


async def dispatch(req: McpRequest, message: JsonRpcMessage) -> None:
    """Serve one message of the request's open session (never `initialize`)."""
    call = req.call
    if message.kind is not MessageKind.REQUEST:
        await accept(req, message)
        return
    assert message.id is not None
    if message.method == "ping":
        await send_json(call, result_response(message.id, {}))
    elif message.method == "tools/list":
        await list_tools(req, message)
    elif message.method == "tools/call":
        await call_tool(req, message)
    elif not req.virtual:
        await pass_through(req, message)
    else:
        text = f"Method not found: {message.method} (a virtual MCP server serves tools only)"
        await send_json(call, error_response(message.id, METHOD_NOT_FOUND, text))
