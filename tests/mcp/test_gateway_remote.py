"""A single remote MCP server through a real gateway, with the official SDK client as the caller.

Initialize, list and call pass through (SSE answers relayed); a tool the caller may not use is never
listed and calling it by name is -32602 "Unknown tool"; the caller's Relaygate token never reaches the
upstream, which gets the `auth_data` credential, the allow-listed client headers and the caller's
`x-tfy-mcp-headers` entry; a session is bound to its token and dies with it; each tools/call is one row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.helpers.gateway import GatewayHandle
from tests.mcp.conftest import UPSTREAM_SECRET
from tests.mcp.gateway_client import initialize, post, rpc, sdk_session
from tests.upstreams.mcp_servers import McpTestServer

CONFIG = """
type: team
name: eng
members: [alice@example.com, bob@example.com]
---
type: mcp-server/remote
name: alpha
url: {alpha_url}
auth_data: {type: header, headers: {Authorization: "${MCP_ALPHA_AUTH}"}}
forward_headers: [X-Tenant-Id]
allow_client_headers: true
collaborators: [{subject: team:eng, role_id: mcp-server-user}]
access_rules:
  - {subjects: [user:bob@example.com], tools: [fail, add], action: deny}
default_action: allow
"""


@pytest.fixture(scope="module")
def guarded_alpha() -> Iterator[McpTestServer]:
    """alpha (SSE answers) refusing any request without the upstream credential."""
    with McpTestServer(required_headers={"Authorization": UPSTREAM_SECRET}).running() as server:
        yield server


@pytest.fixture
def gateway(gateway_factory: Any, guarded_alpha: McpTestServer, monkeypatch: pytest.MonkeyPatch) -> GatewayHandle:
    monkeypatch.setenv("MCP_ALPHA_AUTH", UPSTREAM_SECRET)
    handle: GatewayHandle = gateway_factory(CONFIG, alpha_url=guarded_alpha.url)
    return handle


def url(gateway: GatewayHandle, path: str = "/mcp/alpha") -> str:
    return gateway.url + path


async def test_sdk_initialize_list_and_call_through_the_gateway(
    gateway: GatewayHandle, guarded_alpha: McpTestServer
) -> None:
    token = gateway.create_token(user="alice@example.com")
    async with sdk_session(url(gateway), token) as session:
        tools = await session.list_tools()
        names = [tool.name for tool in tools.tools]
        assert "add" in names and "echo" in names
        assert "files_read" in names  # a dotted name, listed model-safe
        result = await session.call_tool("add", {"a": 2, "b": 3})
        assert not result.is_error
        assert result.content[0].text == "5"  # type: ignore[union-attr]
        dotted = await session.call_tool("files_read", {"path": "/etc/x"})
        assert not dotted.is_error, dotted
        failed = await session.call_tool("fail", {"message": "boom"})
        assert failed.is_error
    # The upstream saw its credential and never the caller's token.
    assert guarded_alpha.requests
    for request in guarded_alpha.requests:
        assert request.headers.get("authorization") == UPSTREAM_SECRET
        assert token not in orjson.dumps(request.headers).decode()


async def test_the_aliases_serve_the_same_server(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    for path in ("/api/llm/mcp/alpha/server", "/mcp/v1/alpha/mcp"):
        async with sdk_session(url(gateway, path), token) as session:
            assert (await session.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]


def test_denied_tool_is_not_listed_and_calling_it_is_unknown(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="bob@example.com")
    session_id = initialize(url(gateway), token)
    listing = rpc(post(url(gateway), token, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session_id=session_id))
    names = [tool["name"] for tool in listing["result"]["tools"]]
    assert "fail" not in names and "add" not in names and "echo" in names
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    answer = rpc(post(url(gateway), token, call, session_id=session_id))
    assert answer["error"] == {"code": -32602, "message": "Unknown tool"}
    missing = {**call, "params": {"name": "no_such_tool", "arguments": {}}}
    assert rpc(post(url(gateway), token, missing, session_id=session_id))["error"]["code"] == -32602


def test_a_json_answer_is_sent_with_its_length_not_chunked(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="bob@example.com")
    session_id = initialize(url(gateway), token)
    answer = post(url(gateway), token, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, session_id=session_id)
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.content))
    assert "transfer-encoding" not in answer.headers


def test_unauthenticated_and_unknown_server(gateway: GatewayHandle) -> None:
    response = post(url(gateway), None, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == -32001
    token = gateway.create_token(user="alice@example.com")
    assert post(url(gateway, "/mcp/nope"), token, {"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 404
    outsider = gateway.create_token(user="zed@example.com")
    assert post(url(gateway), outsider, {"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 403


def test_session_is_bound_to_its_token_and_dies_with_it(gateway: GatewayHandle) -> None:
    alice = gateway.create_token(user="alice@example.com")
    other = gateway.create_token(user="alice@example.com", name="second")
    session_id = initialize(url(gateway), alice)
    ping = {"jsonrpc": "2.0", "id": 5, "method": "ping"}
    assert post(url(gateway), alice, ping, session_id=session_id).json() == {"jsonrpc": "2.0", "id": 5, "result": {}}
    assert post(url(gateway), other, ping, session_id=session_id).status_code == 404
    assert post(url(gateway, "/mcp/v1/alpha/mcp"), alice, ping, session_id="garbage").status_code == 404
    gateway.revoke_token(alice)
    deadline = time.monotonic() + 10
    while post(url(gateway), alice, ping, session_id=session_id).status_code != 401:
        assert time.monotonic() < deadline, "a revoked token's session is still served"
        time.sleep(0.2)


def test_per_user_headers_and_forwarded_headers(gateway: GatewayHandle, guarded_alpha: McpTestServer) -> None:
    token = gateway.create_token(user="alice@example.com")
    extra = {
        "X-Tenant-Id": "acme",
        "X-Not-Listed": "dropped",
        "x-tfy-mcp-headers": orjson.dumps(
            {"alpha": {"X-User-Key": "alice-key", "Authorization": "Bearer mine"}}
        ).decode(),
    }
    before = len(guarded_alpha.requests)
    session_id = initialize(url(gateway), token)
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    answer = rpc(post(url(gateway), token, call, session_id=session_id, headers=extra))
    assert answer["result"]["content"][0]["text"] == "x"
    seen = guarded_alpha.requests[before:]
    calls = [r for r in seen if (r.message() or {}).get("method") == "tools/call"]
    assert calls, seen
    headers = calls[-1].headers
    assert headers["x-tenant-id"] == "acme" and headers["x-user-key"] == "alice-key"
    assert "x-not-listed" not in headers
    assert headers["authorization"] == UPSTREAM_SECRET  # auth_data wins
    refused = {**extra, "x-tfy-mcp-headers": orjson.dumps({"alpha": {"Mcp-Session-Id": "x"}}).decode()}
    assert post(url(gateway), token, call, session_id=session_id, headers=refused).status_code == 400


def test_one_log_row_per_tool_call(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    session_id = initialize(url(gateway), token)
    post(url(gateway), token, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session_id=session_id)
    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "fail", "arguments": {"message": "m"}},
    }
    response = post(url(gateway), token, call, session_id=session_id, headers={"x-tfy-metadata": '{"app": "agent"}'})
    row = gateway.wait_for_log(response.headers["x-request-id"])
    assert row["metadata"] == {"app": "agent"}
    assert row["model_type"] == "mcp"
    assert row["requested_model"] == "alpha/fail"
    assert row["provider"] == "mcp"
    assert row["status"] == 200
    mcp = row["extra"]["mcp"]
    assert mcp["method"] == "tools/call" and mcp["tool"] == "fail" and mcp["is_error"] is True
    assert mcp["session_era"] == "session" and mcp["protocol_version"] == "2025-11-25"
    rows = gateway.logs(limit=100)
    assert all(r.get("model_type") == "mcp" and r["extra"]["mcp"]["method"] == "tools/call" for r in rows)


def test_a_wider_caller_calls_what_a_narrower_one_could_not_see(gateway: GatewayHandle) -> None:
    """The name directory is not one caller's view: bob's filtered listing must not hide `add` from alice."""
    bob = gateway.create_token(user="bob@example.com")
    alice = gateway.create_token(user="alice@example.com")
    bob_session = initialize(url(gateway), bob)
    post(url(gateway), bob, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session_id=bob_session)
    alice_session = initialize(url(gateway), alice)
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 2}}}
    assert rpc(post(url(gateway), alice, call, session_id=alice_session))["result"]["content"][0]["text"] == "4"
    guessed = {**call, "params": {"name": "guessed", "arguments": {}}}
    assert rpc(post(url(gateway), alice, guessed, session_id=alice_session))["error"]["code"] == -32602


def test_other_methods_pass_through_a_single_remote_server(
    gateway: GatewayHandle, guarded_alpha: McpTestServer
) -> None:
    token = gateway.create_token(user="alice@example.com")
    session_id = initialize(url(gateway), token)
    answer = rpc(
        post(url(gateway), token, {"jsonrpc": "2.0", "id": 4, "method": "resources/list"}, session_id=session_id)
    )
    assert answer["id"] == 4 and ("result" in answer or answer["error"]["code"] != -32601)
    assert any((r.message() or {}).get("method") == "resources/list" for r in guarded_alpha.requests)


def test_origin_rule(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    ping = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}
    foreign = post(url(gateway), token, ping, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    same = post(url(gateway), token, ping, headers={"Origin": gateway.url})
    assert same.status_code == 200
    not_acceptable = post(url(gateway), token, ping, headers={"Accept": "application/json"})
    assert not_acceptable.status_code == 406
