"""JSON-RPC batches, which only protocol 2025-03-26 has, through a real gateway.

In a 2025-03-26 session a POSTed array is served message by message and answered with the JSON array
of the responses in order (the response out of an SSE answer, without its progress notifications),
each `tools/call` its own log row; an array of notifications only is 202. A later version's session,
the stateless era, a batch with `initialize` and one over 100 messages are 400 with -32600.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.helpers.gateway import GatewayHandle
from tests.mcp.gateway_client import ACCEPT, initialize
from tests.upstreams.mcp_servers import McpTestServer

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
name: dev-tools
mcp_servers:
  - {mcp_server_id: alpha, tools: ["*"]}
  - {mcp_server_id: beta, tools: ["*"]}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
"""
OLD = "2025-03-26"


@pytest.fixture
def gateway(gateway_factory: Any, alpha: McpTestServer, beta: McpTestServer) -> GatewayHandle:
    handle: GatewayHandle = gateway_factory(CONFIG, alpha_url=alpha.url, beta_url=beta.url)
    return handle


def send(url: str, token: str, body: Any, session_id: str | None = None, version: str | None = None) -> httpx.Response:
    """A raw POST as a 2025-03-26 client makes it: no MCP-Protocol-Version unless `version` is given."""
    headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT, "Content-Type": "application/json"}
    if session_id is not None:
        headers["Mcp-Session-Id"] = session_id
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    return httpx.post(url, content=orjson.dumps(body), headers=headers, timeout=30.0)


def old_session(url: str, token: str) -> str:
    """A session opened at protocol 2025-03-26 (answered with that version)."""
    params = {"protocolVersion": OLD, "capabilities": {}, "clientInfo": {"name": "old", "version": "0"}}
    answer = send(url, token, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["protocolVersion"] == OLD
    session_id = answer.headers["mcp-session-id"]
    assert send(url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session_id).status_code == 202
    return session_id


def request(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def test_a_2025_03_26_batch_is_answered_with_the_array_of_its_responses(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/alpha"
    session_id = old_session(endpoint, token)
    echo = {"name": "sleep_then_echo", "arguments": {"seconds": 0, "text": "batched"}, "_meta": {"progressToken": 7}}
    batch = [
        request(1, "ping"),
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}},
        request(2, "tools/list"),
        request(3, "tools/call", echo),
        request(4, "tools/call", {"name": "no_such_tool", "arguments": {}}),
    ]
    answer = send(endpoint, token, batch, session_id)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    responses = answer.json()
    assert [r["id"] for r in responses] == [1, 2, 3, 4]  # batch order; the notification has none
    assert responses[0]["result"] == {}
    assert "echo" in [tool["name"] for tool in responses[1]["result"]["tools"]]
    assert responses[2]["result"]["content"][0]["text"] == "batched"  # out of an SSE answer, no progress
    assert responses[3]["error"] == {"code": -32602, "message": "Unknown tool"}
    request_id = answer.headers["x-request-id"]
    for index, outcome in ((3, "ok"), (4, "denied")):  # one row per tools/call
        row = gateway.wait_for_log(f"{request_id}-{index}")
        assert row["extra"]["mcp"]["outcome"] == outcome and row["model_type"] == "mcp"
        assert orjson.loads(row["request_body"]) == batch[index]
    # A virtual server's batch: JSON answers from both members.
    virtual = gateway.url + "/mcp/dev-tools"
    virtual_session = old_session(virtual, token)
    calls = [
        request(5, "tools/call", {"name": "beta__multiply", "arguments": {"a": 6, "b": 7}}),
        request(6, "tools/call", {"name": "alpha__add", "arguments": {"a": 1, "b": 2}}),
    ]
    results = send(virtual, token, calls, virtual_session, version=OLD).json()
    assert [(r["id"], r["result"]["content"][0]["text"]) for r in results] == [(5, "42"), (6, "3")]


def test_a_batch_of_notifications_only_is_accepted(gateway: GatewayHandle, alpha: McpTestServer) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/alpha"
    session_id = old_session(endpoint, token)
    notes = [{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": n}} for n in (41, 42)]
    answer = send(endpoint, token, notes, session_id)
    assert answer.status_code == 202 and answer.content == b""
    forwarded = [(r.message() or {}).get("params") for r in alpha.requests if r.method == "POST"]
    assert {"requestId": 41} in forwarded and {"requestId": 42} in forwarded


def test_batches_are_refused_where_the_protocol_has_none(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/alpha"

    def refused(answer: httpx.Response, words: str) -> None:
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == -32600 and words in error["message"], error

    modern = initialize(endpoint, token)  # 2025-11-25
    refused(send(endpoint, token, [request(1, "ping")], modern, version="2025-11-25"), "not supported")
    refused(send(endpoint, token, [request(1, "ping")], modern), "not supported")  # the session's own version
    meta = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
    stateless = send(endpoint, token, [request(1, "tools/list", meta)], version="2026-07-28")
    refused(stateless, "2026-07-28")
    old = old_session(endpoint, token)
    refused(send(endpoint, token, [request(n, "ping") for n in range(101)], old), "at most 100")
    opening = request(9, "initialize", {"protocolVersion": OLD, "capabilities": {}})
    refused(send(endpoint, token, [opening, request(10, "ping")], old), "initialize")
    assert len(send(endpoint, token, [request(n, "ping") for n in range(100)], old).json()) == 100
