"""Reading a backend's answer to one request, and turning a backend failure into a JSON-RPC error.

Used where the gateway must read an answer rather than relay it (a listing it filters, an initialize
it merges): `answer_of` takes the JSON message, or the matching response out of an event stream
(progress notifications before it are dropped). `failure_answer` is what the client gets instead:
-32603 with `data.upstream_status`, or the upstream's own JSON-RPC error when it sent one. Neither
ever quotes a header or the backend's URL.
"""

from __future__ import annotations

from typing import Any

from relaygate.mcp.jsonrpc import INTERNAL_ERROR, RequestId, error_response
from relaygate.mcp.upstream import BackendError, UpstreamReply
from relaygate.wire_types import JSON


async def answer_of(reply: UpstreamReply, request_id: RequestId) -> JSON:
    """The response to `request_id` in `reply` (BackendError if the stream ends without one)."""
    if reply.events is None:
        assert reply.message is not None
        return reply.message
    async with reply:
        async for event in reply.events:
            message = event.message
            if isinstance(message, dict) and message.get("id") == request_id and "method" not in message:
                return message
    raise BackendError(None, "the MCP server's stream ended without an answer", kind="malformed")


def failure_answer(request_id: RequestId | None, exc: BackendError, server: str) -> bytes:
    """The JSON-RPC error answering a request whose backend failed."""
    upstream: Any = exc.message
    if isinstance(upstream, dict) and isinstance(upstream.get("error"), dict):
        error = upstream["error"]
        code = error.get("code")
        if isinstance(code, int) and isinstance(error.get("message"), str):
            return error_response(request_id, code, error["message"], error.get("data"))
    data = {"upstream_status": exc.status, "mcp_server": server, "reason": exc.kind}
    return error_response(request_id, INTERNAL_ERROR, f"MCP server {server}: {exc.reason}", data)


def error_code(message: JSON) -> int | None:
    """The JSON-RPC error code of a response, None for a result."""
    error = message.get("error") if isinstance(message, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None
