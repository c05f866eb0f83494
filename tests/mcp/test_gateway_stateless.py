"""The stateless 2026-07-28 era through a real gateway, in raw JSON-RPC (no session id anywhere):
`server/discover`, `tools/list` and `tools/call` on a remote and on a virtual server, the routing
headers checked against the body (-32020), and the row of a stateless call."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.helpers.gateway import GatewayHandle
from tests.mcp.gateway_client import ACCEPT, rpc
from tests.upstreams.mcp_servers import DOTTED_TOOL_NAME, McpTestServer

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
}
CONFIG = """
type: mcp-server/remote
name: alpha
url: {alpha_url}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
---
type: mcp-server/remote
name: beta
url: {beta_url}
---
type: mcp-server/virtual
name: both
mcp_servers: [{mcp_server_id: alpha}, {mcp_server_id: beta}]
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
"""


@pytest.fixture
def gateway(gateway_factory: Any, alpha: McpTestServer, beta: McpTestServer) -> GatewayHandle:
    handle: GatewayHandle = gateway_factory(CONFIG, alpha_url=alpha.url, beta_url=beta.url)
    return handle


def send(
    gateway: GatewayHandle, server: str, token: str, method: str, params: dict[str, Any], name: str | None = None
) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": ACCEPT,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    if name is not None:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": META}}
    return httpx.post(f"{gateway.url}/mcp/{server}", json=body, headers=headers, timeout=30)


def test_stateless_remote_server(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    discovered = send(gateway, "alpha", token, "server/discover", {})
    assert "mcp-session-id" not in discovered.headers
    assert MODERN in rpc(discovered)["result"]["supportedVersions"]
    names = [tool["name"] for tool in rpc(send(gateway, "alpha", token, "tools/list", {}))["result"]["tools"]]
    assert "add" in names and "files_read" in names
    called = send(
        gateway, "alpha", token, "tools/call", {"name": "files_read", "arguments": {"path": "/s"}}, "files_read"
    )
    assert rpc(called)["result"]["content"][0]["text"] == "contents of /s"
    row = gateway.wait_for_log(called.headers["x-request-id"])
    assert row["requested_model"] == f"alpha/{DOTTED_TOOL_NAME}"
    assert row["extra"]["mcp"]["session_era"] == "stateless"
    mismatch = send(gateway, "alpha", token, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}, "echo")
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == -32020


def test_stateless_virtual_server(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    discovered = rpc(send(gateway, "both", token, "server/discover", {}))["result"]
    assert discovered["supportedVersions"] == [MODERN]
    names = [tool["name"] for tool in rpc(send(gateway, "both", token, "tools/list", {}))["result"]["tools"]]
    assert "alpha__add" in names and "beta__multiply" in names
    called = send(
        gateway,
        "both",
        token,
        "tools/call",
        {"name": "beta__multiply", "arguments": {"a": 3, "b": 4}},
        "beta__multiply",
    )
    assert rpc(called)["result"]["content"][0]["text"] == "12"


def test_get_and_delete_are_405_in_the_stateless_era(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "MCP-Protocol-Version": MODERN}
    for method in ("GET", "DELETE"):
        response = httpx.request(method, f"{gateway.url}/mcp/alpha", headers=headers, timeout=30)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
