"""A virtual server's `tools/list` in pages: the gateway's cursor carries each member's own cursor.

Two members page their listings (the SDK's low-level server: seven tools three to a page, four tools two
to a page) around one that lists everything at once. Each gateway page holds the next upstream page of
every member still listing, in member order; the official SDK client paging with `list_tools(cursor)`
sees every tool it may use exactly once, a denied one never; a tool of a later page is callable even
before it was listed; a cursor the gateway did not make is -32602.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from tests.helpers.gateway import GatewayHandle
from tests.mcp.gateway_client import initialize, post, rpc, sdk_session
from tests.upstreams.mcp_servers import McpTestServer

CONFIG = """
type: mcp-server/remote
name: pa
url: {pa_url}
---
type: mcp-server/remote
name: beta
url: {beta_url}
---
type: mcp-server/remote
name: pb
url: {pb_url}
---
type: mcp-server/virtual
name: paged
mcp_servers:
  - {mcp_server_id: pa, tools: ["*"]}
  - {mcp_server_id: beta, tools: ["*"]}
  - {mcp_server_id: pb, tools: ["*"]}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
access_rules:
  - {tools: ["pa__a4"], action: deny}
default_action: allow
"""

# Page by page: each member's next page, member order (pa's a4 is denied; beta lists all at once).
PAGES = [
    ["pa__a0", "pa__a1", "pa__a2", "beta__echo", "beta__add", "beta__multiply", "pb__b0", "pb__b1"],
    ["pa__a3", "pa__a5", "pb__b2", "pb__b3"],
    ["pa__a6"],
]


@pytest.fixture(scope="module")
def paged_a() -> Iterator[McpTestServer]:
    with McpTestServer("paged", tools=7, page_size=3, prefix="a").running() as server:
        yield server


@pytest.fixture(scope="module")
def paged_b() -> Iterator[McpTestServer]:
    with McpTestServer("paged", tools=4, page_size=2, prefix="b", json_response=True).running() as server:
        yield server


@pytest.fixture
def gateway(gateway_factory: Any, paged_a: McpTestServer, beta: McpTestServer, paged_b: McpTestServer) -> GatewayHandle:
    handle: GatewayHandle = gateway_factory(CONFIG, pa_url=paged_a.url, beta_url=beta.url, pb_url=paged_b.url)
    return handle


def cursors_sent(server: McpTestServer) -> list[str | None]:
    """The cursor of each tools/list the upstream received, in order."""
    listings = [r.message() for r in server.requests if (r.message() or {}).get("method") == "tools/list"]
    return [(message.get("params") or {}).get("cursor") for message in listings]


async def test_sdk_pages_through_every_allowed_tool_once_in_order(
    gateway: GatewayHandle, paged_a: McpTestServer, paged_b: McpTestServer
) -> None:
    token = gateway.create_token(user="alice@example.com")
    before_a, before_b = len(cursors_sent(paged_a)), len(cursors_sent(paged_b))
    pages: list[list[str]] = []
    async with sdk_session(gateway.url + "/mcp/paged", token) as session:
        cursor: str | None = None
        while True:
            params = None if cursor is None else types.PaginatedRequestParams(cursor=cursor)
            listing = await session.list_tools(params=params)
            pages.append([tool.name for tool in listing.tools])
            cursor = listing.next_cursor
            if cursor is None:
                break
            assert len(pages) < 10, "the cursor never ends"
        assert pages == PAGES
        last_page = await session.call_tool("pa__a6", {})
        assert last_page.content[0].text == "paged-a:a6"  # type: ignore[union-attr]
        assert (await session.call_tool("pb__b3", {})).content[0].text == "paged-b:b3"  # type: ignore[union-attr]
    # Each member was asked for its own next page, and only while it had one.
    assert cursors_sent(paged_a)[before_a:] == [None, "offset-3", "offset-6"]
    assert cursors_sent(paged_b)[before_b:] == [None, "offset-2"]


def test_a_later_pages_tool_is_callable_before_it_was_listed(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/paged"
    session_id = initialize(endpoint, token)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "pa__a6", "arguments": {}}}
    assert rpc(post(endpoint, token, call, session_id=session_id))["result"]["content"][0]["text"] == "paged-a:a6"
    denied = {**call, "params": {"name": "pa__a4", "arguments": {}}}
    assert rpc(post(endpoint, token, denied, session_id=session_id))["error"] == {
        "code": -32602,
        "message": "Unknown tool",
    }


def encoded(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


def test_a_cursor_the_gateway_did_not_make_is_invalid_params(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/paged"
    session_id = initialize(endpoint, token)
    for cursor in (
        "garbage!!",
        "",
        17,
        encoded({"s": "other", "c": [["pa", "offset-3"]]}),  # another server's
        encoded({"s": "paged", "c": []}),
        encoded({"s": "paged", "c": [["pa", 3]]}),
        encoded(["pa", "offset-3"]),
    ):
        listing = {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": cursor}}
        answer = rpc(post(endpoint, token, listing, session_id=session_id))
        assert answer["id"] == 3, cursor
        assert answer["error"]["code"] == -32602 and "cursor is invalid" in answer["error"]["message"], cursor


async def test_sdk_client_sees_a_garbled_cursor_as_invalid_params(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    async with sdk_session(gateway.url + "/mcp/paged", token) as session:
        first = await session.list_tools()
        assert first.next_cursor is not None
        with pytest.raises(MCPError) as caught:
            await session.list_tools(params=types.PaginatedRequestParams(cursor=first.next_cursor[:-6] + "xx"))
        assert caught.value.error.code == -32602
