"""A legacy HTTP+SSE backend (`transport: sse`) through a real gateway, the official SDK's Streamable HTTP
client as the caller.

The caller never sees the backend's transport: initialize, tools/list and tools/call (progress relayed
as it arrives) pass through; the backend gets its `auth_data` credential on the GET and every POST and
never the caller's token; a virtual server mixes a streamable and a legacy member; a GET stream carries
what the backend sends on its own; DELETE closes the held connection; a restarted backend is
initialized again without the caller noticing; an endpoint on another origin is refused.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.helpers.gateway import GatewayHandle
from tests.mcp.gateway_client import initialize, post, rpc, sdk_session
from tests.upstreams.mcp_servers import McpTestServer
from tests.upstreams.mcp_sse_servers import LegacySseTestServer, MisbehavingSse

LEGACY_SECRET = "Bearer legacy-upstream-secret"
CONFIG = """
type: mcp-server/remote
name: legacy
url: {legacy_url}
transport: sse
auth_data: {type: header, headers: {Authorization: "${MCP_LEGACY_AUTH}"}}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
---
type: mcp-server/remote
name: beta
url: {beta_url}
---
type: mcp-server/virtual
name: mixed
mcp_servers:
  - {mcp_server_id: legacy, tools: ["*"]}
  - {mcp_server_id: beta, tools: ["*"]}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
---
type: mcp-server/remote
name: astray
url: {astray_url}
transport: sse
timeout_ms: 2000
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
"""
# The SDK's SSE server, stopped with a stream open, leaves its per-connection memory streams unclosed.
SDK_SHUTDOWN_LEAK = "ignore:Exception ignored in.*MemoryObject:pytest.PytestUnraisableExceptionWarning"


@pytest.fixture(scope="module")
def legacy() -> Iterator[LegacySseTestServer]:
    with LegacySseTestServer(required_headers={"Authorization": LEGACY_SECRET}).running() as server:
        yield server


@pytest.fixture(scope="module")
def astray() -> Iterator[MisbehavingSse]:
    with MisbehavingSse().running() as server:
        yield server


@pytest.fixture
def gateway(
    gateway_factory: Any,
    legacy: LegacySseTestServer,
    beta: McpTestServer,
    astray: MisbehavingSse,
    monkeypatch: pytest.MonkeyPatch,
) -> GatewayHandle:
    monkeypatch.setenv("MCP_LEGACY_AUTH", LEGACY_SECRET)
    handle: GatewayHandle = gateway_factory(
        CONFIG, legacy_url=legacy.url, beta_url=beta.url, astray_url=astray.url + "/other-origin"
    )
    return handle


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def test_sdk_initialize_list_and_call_through_a_legacy_backend(
    gateway: GatewayHandle, legacy: LegacySseTestServer
) -> None:
    token = gateway.create_token(user="alice@example.com")
    before = len(legacy.requests)
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with sdk_session(gateway.url + "/mcp/legacy", token) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "add" in names and "ticking_echo" in names
        added = await session.call_tool("add", {"a": 2, "b": 3})
        assert not added.is_error and added.content[0].text == "5"  # type: ignore[union-attr]
        failed = await session.call_tool("fail", {"message": "boom"})
        assert failed.is_error
        ticked = await session.call_tool(
            "ticking_echo", {"ticks": 3, "interval_s": 0.05, "text": "ticked"}, progress_callback=on_progress
        )
        assert ticked.content[0].text == "ticked"  # type: ignore[union-attr]
    assert progress == [0, 1, 2]
    requests = legacy.requests[before:]
    assert [request.method for request in requests][:1] == ["GET"]
    for request in requests:
        assert request.headers.get("authorization") == LEGACY_SECRET
        assert token not in orjson.dumps(request.headers).decode()


async def test_a_virtual_server_with_a_streamable_and_a_legacy_member(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    async with sdk_session(gateway.url + "/mcp/mixed", token) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "legacy__add" in names and "beta__multiply" in names
        assert names.index("legacy__add") < names.index("beta__multiply")  # member order
        legacy_echo = await session.call_tool("legacy__echo", {"text": "x"})
        beta_echo = await session.call_tool("beta__echo", {"text": "x"})
        assert legacy_echo.content[0].text == "x"  # type: ignore[union-attr]
        assert beta_echo.content[0].text == "beta:x"  # type: ignore[union-attr]


async def test_the_get_stream_relays_what_the_backend_sends_and_delete_closes_the_connection(
    gateway: GatewayHandle, legacy: LegacySseTestServer
) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/legacy"
    session_id = await asyncio.to_thread(initialize, endpoint, token)
    get_headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "text/event-stream",
        "Mcp-Session-Id": session_id,
        "MCP-Protocol-Version": "2025-11-25",
    }
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("GET", endpoint, headers=get_headers) as stream:
            assert stream.status_code == 200
            await asyncio.to_thread(post, endpoint, token, call(2, "announce", {}), session_id=session_id)
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    assert orjson.loads(line[5:])["method"] == "notifications/tools/list_changed"
                    break
    gets = len(legacy.requests_with("GET"))
    ended = httpx.delete(endpoint, headers={"Authorization": f"Bearer {token}", "Mcp-Session-Id": session_id})
    assert ended.status_code == 204
    # The connection is gone: the same (stateless) gateway session opens a new one to go on.
    answer = rpc(await asyncio.to_thread(post, endpoint, token, call(3, "echo", {"text": "on"}), session_id=session_id))
    assert answer["result"]["content"][0]["text"] == "on"
    assert len(legacy.requests_with("GET")) == gets + 1


@pytest.mark.filterwarnings(SDK_SHUTDOWN_LEAK)
def test_a_restarted_backend_is_initialized_again_by_the_gateway(
    gateway_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_LEGACY_AUTH", LEGACY_SECRET)
    with LegacySseTestServer().running() as server:
        gateway: GatewayHandle = gateway_factory(
            CONFIG, legacy_url=server.url, beta_url=server.url, astray_url="http://127.0.0.1:1/sse"
        )
        token = gateway.create_token(user="alice@example.com")
        endpoint = gateway.url + "/mcp/legacy"
        session_id = initialize(endpoint, token)
        assert rpc(post(endpoint, token, call(2, "echo", {"text": "before"}), session_id=session_id))["result"]
        server.restart()
        gc.collect()  # the SDK's leak (see SDK_SHUTDOWN_LEAK) is reported here, not in a later test
        answer = rpc(post(endpoint, token, call(3, "echo", {"text": "after"}), session_id=session_id))
        assert answer["result"]["content"][0]["text"] == "after"
        assert [message["method"] for message in server.posts()][-3:] == [
            "initialize",
            "notifications/initialized",
            "tools/call",
        ]
        assert "initialized again" in gateway.output()
        gateway.stop()  # before the server: the gateway closes its stream


def test_an_endpoint_on_another_origin_is_refused(gateway: GatewayHandle, astray: MisbehavingSse) -> None:
    token = gateway.create_token(user="alice@example.com")
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    response = post(gateway.url + "/mcp/astray", token, message)
    error = rpc(response)["error"]
    assert error["code"] == -32603 and error["data"]["reason"] == "malformed"
    assert "attacker" not in response.text
    assert astray.posts == 0


def _metric(gateway: GatewayHandle, name: str) -> float | None:
    for line in httpx.get(gateway.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_held_connections_and_dropped_messages_are_in_the_metrics(gateway: GatewayHandle) -> None:
    """A message the backend sends on its own with no GET stream open is dropped: the scrape says so."""
    assert _metric(gateway, "relaygate_mcp_legacy_connections") == 0
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/legacy"
    session_id = initialize(endpoint, token)
    assert "result" in rpc(post(endpoint, token, call(2, "announce", {}), session_id=session_id))
    assert _metric(gateway, "relaygate_mcp_legacy_connections") == 1
    deadline = time.monotonic() + 10
    while _metric(gateway, "relaygate_mcp_legacy_messages_dropped_total") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(gateway, "relaygate_mcp_legacy_messages_dropped_total") == 1
