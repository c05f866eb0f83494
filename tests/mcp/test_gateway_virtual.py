"""A virtual MCP server over two upstreams (alpha, beta) through a real gateway and the SDK client.

Tools are listed as `{server}__{tool}`, member order then upstream order; the overlapping names of the
two servers both stay callable; a 100-character and a dotted tool name round-trip (listed model-safe,
called back to the right upstream tool); a member that is down is left out and named in `instructions`;
GET is 405; prompts are -32601.
"""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.mcp.names import prefixed_tool_name
from tests.helpers.gateway import GatewayHandle
from tests.mcp.gateway_client import initialize, post, rpc, sdk_session
from tests.upstreams.mcp_servers import DOTTED_TOOL_NAME, LONG_TOOL_NAME, McpTestServer

CONFIG = """
type: mcp-server/remote
name: alpha
url: {alpha_url}
---
type: mcp-server/remote
name: beta
url: {beta_url}
---
type: mcp-server/remote
name: down
url: http://127.0.0.1:{closed_port}/mcp
---
type: mcp-server/virtual
name: dev-tools
mcp_servers:
  - {mcp_server_id: alpha, tools: ["*"]}
  - {mcp_server_id: down, tools: ["*"]}
  - {mcp_server_id: beta, tools: ["*"]}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
access_rules:
  - {tools: ["alpha__fail"], action: deny}
default_action: allow
"""


@pytest.fixture
def gateway(gateway_factory: Any, alpha: McpTestServer, beta: McpTestServer, free_port: int) -> GatewayHandle:
    handle: GatewayHandle = gateway_factory(CONFIG, alpha_url=alpha.url, beta_url=beta.url, closed_port=free_port)
    return handle


async def test_virtual_server_lists_prefixed_names_and_calls_map_back(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    async with sdk_session(gateway.url + "/mcp/dev-tools", token) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        long_name = prefixed_tool_name("alpha", LONG_TOOL_NAME)
        dotted = prefixed_tool_name("alpha", DOTTED_TOOL_NAME)
        assert len(long_name) == 64 and dotted == "alpha__files_read"
        assert {"alpha__add", "alpha__echo", "beta__add", "beta__echo", "beta__multiply", long_name, dotted} <= set(
            names
        )
        assert "alpha__fail" not in names
        assert names.index("alpha__add") < names.index("beta__add")  # member order
        assert all(len(name) <= 64 for name in names)
        assert (await session.call_tool("beta__multiply", {"a": 6, "b": 7})).content[0].text == "42"  # type: ignore[union-attr]
        alpha_add = await session.call_tool("alpha__add", {"a": 1, "b": 2})
        beta_add = await session.call_tool("beta__add", {"a": 1, "b": 2})
        assert alpha_add.content[0].text == "3"  # type: ignore[union-attr]
        assert not beta_add.is_error
        long_result = await session.call_tool(long_name, {"text": "long"})
        assert not long_result.is_error and "long" in long_result.content[0].text  # type: ignore[union-attr]
        dotted_result = await session.call_tool(dotted, {"path": "/a"})
        assert not dotted_result.is_error


def test_failing_member_left_out_and_named(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    answer = post(gateway.url + "/mcp/dev-tools", token, message)
    result = answer.json()["result"]
    assert result["serverInfo"]["name"] == "relaygate/dev-tools"
    assert "down" in result["instructions"]
    assert result["capabilities"] == {"tools": {"listChanged": True}}


def test_denied_tool_on_a_virtual_server_and_other_methods(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/dev-tools"
    session_id = initialize(endpoint, token)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "alpha__fail", "arguments": {}}}
    assert rpc(post(endpoint, token, call, session_id=session_id))["error"]["code"] == -32602
    prompts = {"jsonrpc": "2.0", "id": 3, "method": "prompts/list"}
    assert rpc(post(endpoint, token, prompts, session_id=session_id))["error"]["code"] == -32601
    import httpx2 as httpx

    get = httpx.get(
        endpoint,
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "Mcp-Session-Id": session_id},
    )
    assert get.status_code == 405
