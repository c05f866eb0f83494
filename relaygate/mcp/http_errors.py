"""Refusals of the MCP endpoints as `GatewayError`s, so the app's error boundary answers them.

The MCP routes answer every refusal with a JSON-RPC error body (what an MCP client can read) and the
HTTP status the transport rules ask for; `McpRefused` carries both, built from a `protocol.Refusal`
or directly. `error_body` is the JSON-RPC error of any `GatewayError`: the handler's renderer
(`handlers/mcp.py`) writes it, and a batch (`pipeline/mcp_batch.py`) puts it in its array.
"""

from __future__ import annotations

from relaygate.errors import GatewayError, Unauthorized
from relaygate.mcp.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, RequestId, error_response
from relaygate.mcp.protocol import Refusal

UNAUTHORIZED_CODE = -32001  # the MCP SDKs' "unauthorized" convention; the HTTP status says it too


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


def error_body(error: GatewayError, request_id: RequestId | None = None) -> bytes:
    """The JSON-RPC error answering `error`: a refusal's own code, -32001 for a bad token, else -32603
    for a gateway failure (5xx) and -32600 for the rest; id null unless a refusal or `request_id` names it."""
    if isinstance(error, McpRefused):
        return error_response(
            error.request_id if request_id is None else request_id, error.rpc_code, error.message, error.data
        )
    if isinstance(error, Unauthorized):
        return error_response(request_id, UNAUTHORIZED_CODE, error.message)
    return error_response(request_id, INTERNAL_ERROR if error.status >= 500 else INVALID_REQUEST, error.message)
