"""Refusals of the MCP endpoints as `GatewayError`s, so the app's error boundary answers them.

The MCP routes answer every refusal with a JSON-RPC error body (what an MCP client can read) and the
HTTP status the transport rules ask for; `McpRefused` carries both, built from a `protocol.Refusal`
or directly. The handler's renderer (`handlers/mcp.py`) writes it.
"""

from __future__ import annotations

from relaygate.errors import GatewayError
from relaygate.mcp.jsonrpc import INVALID_REQUEST, RequestId
from relaygate.mcp.protocol import Refusal


class McpRefused(GatewayError):
    """An MCP request refused before any upstream call: an HTTP status and a JSON-RPC error."""

    type = "invalid_request_error"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        rpc_code: int = INVALID_REQUEST,
        request_id: RequestId | None = None,
        data: object = None,
        headers: dict[str, str] | None = None,
        code: str = "mcp_refused",
    ) -> None:
        super().__init__(message, code=code, headers=headers)
        self.status = status
        self.rpc_code = rpc_code
        self.request_id = request_id
        self.data = data

    @classmethod
    def of(cls, refusal: Refusal, request_id: RequestId | None = None) -> McpRefused:
        """The error answering a transport-rule refusal (a 405 names the methods allowed)."""
        headers = {"allow": refusal.allow} if refusal.allow else None
        data = dict(refusal.data) if refusal.data is not None else None
        return cls(
            refusal.status, refusal.message, rpc_code=refusal.code, request_id=request_id, data=data, headers=headers
        )


def session_not_found() -> McpRefused:
    """404: the session id is unknown, expired, another caller's or its token's is revoked (re-initialize)."""
    return McpRefused(404, "Session not found", rpc_code=-32001, code="mcp_session_not_found")
