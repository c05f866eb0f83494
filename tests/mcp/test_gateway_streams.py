"""Long tool calls through the gateway: SSE answers relayed as they arrive, keep-alive comments while
the upstream is quiet, no total timeout (only the server's inactivity timeout), and the GET stream of a
single remote server proxied; plus the limits and metrics of tools/call."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from relaygate.pipeline import mcp_reply
from tests.helpers.gateway import GatewayHandle
from tests.mcp.gateway_client import ACCEPT, initialize, post, rpc
from tests.upstreams.mcp_servers import McpTestServer

CONFIG = """
type: mcp-server/remote
name: alpha
url: {alpha_url}
timeout_ms: 700
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
---
type: gateway-rate-limiting-config
name: mcp-limits
rules:
  - id: two-adds
    when: {mcp_servers: ["alpha:add"]}
    limit_to: 2
    unit: requests_per_minute
    rate_limit_applies_per: [user]
"""


@pytest.fixture
def gateway(gateway_factory: Any, alpha: McpTestServer) -> GatewayHandle:
    handle: GatewayHandle = gateway_factory(CONFIG, alpha_url=alpha.url)
    return handle


def tool_call(request_id: int, name: str, arguments: dict[str, Any], progress: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress is not None:
        params["_meta"] = {"progressToken": progress}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def stream_headers(token: str, session_id: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": ACCEPT,
        "Content-Type": "application/json",
        "Mcp-Session-Id": session_id,
        "MCP-Protocol-Version": "2025-11-25",
    }


async def test_progress_is_relayed_before_the_answer(gateway: GatewayHandle, alpha: McpTestServer) -> None:
    token = gateway.create_token(user="alice@example.com")
    session_id = await asyncio.to_thread(initialize, gateway.url + "/mcp/alpha", token)
    body = tool_call(2, "gated_echo", {"text": "late", "gate": "g1"}, progress="p1")
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream(
            "POST", gateway.url + "/mcp/alpha", json=body, headers=stream_headers(token, session_id)
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            async for line in lines:
                if line.startswith("data:"):
                    first = orjson.loads(line[5:])
                    break
            assert first["method"] == "notifications/progress"  # arrived while the tool still waits
            alpha.open_gate("g1")
            rest = [line async for line in lines]
    answer = next(orjson.loads(line[5:]) for line in rest if line.startswith("data:") and '"result"' in line)
    assert answer["result"]["content"][0]["text"] == "late"


def test_keep_alive_while_quiet_and_no_total_timeout(gateway: GatewayHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcp_reply, "KEEPALIVE_SECONDS", 0.1)
    token = gateway.create_token(user="alice@example.com")
    session_id = initialize(gateway.url + "/mcp/alpha", token)
    # 2 s in total, never silent for the 0.7 s inactivity timeout: served in full.
    body = tool_call(3, "ticking_echo", {"ticks": 8, "interval_s": 0.25, "text": "ticked"}, progress="p2")
    response = httpx.post(gateway.url + "/mcp/alpha", json=body, headers=stream_headers(token, session_id), timeout=30)
    assert ": keep-alive" in response.text
    assert rpc(response)["result"]["content"][0]["text"] == "ticked"
    # Silent for longer than the inactivity timeout: cut, and the row says so.
    silent = tool_call(4, "sleep_then_echo", {"seconds": 2, "text": "never"}, progress="p3")
    cut = httpx.post(gateway.url + "/mcp/alpha", json=silent, headers=stream_headers(token, session_id), timeout=30)
    assert '"never"' not in cut.text
    error = rpc(cut)["error"]
    assert error["code"] == -32603 and error["data"]["reason"] == "timeout"
    row = gateway.wait_for_log(cut.headers["x-request-id"])
    assert row["extra"]["mcp"]["tool"] == "sleep_then_echo"
    assert row["extra"]["mcp"]["outcome"] == "protocol_error"


def test_rate_limit_and_metrics_of_tool_calls(gateway: GatewayHandle) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/alpha"
    session_id = initialize(endpoint, token)
    statuses = [
        post(endpoint, token, tool_call(i, "add", {"a": i, "b": 1}), session_id=session_id).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert post(endpoint, token, tool_call(9, "echo", {"text": "free"}), session_id=session_id).status_code == 200
    post(endpoint, token, tool_call(10, "no_such", {}), session_id=session_id)
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'relaygate_mcp_tool_calls_total{mcp_server="alpha",outcome="ok",tool="add"} 2.0' in metrics
    assert 'relaygate_mcp_tool_calls_total{mcp_server="alpha",outcome="denied",tool="no_such"} 1.0' in metrics
    initialized = 'relaygate_mcp_operation_duration_seconds_count{error_type="",mcp_method_name="initialize"'
    assert initialized in metrics
    assert 'mcp_method_name="POST"' not in metrics
    assert 'relaygate_mcp_sessions_started_total{mcp_server="alpha"} 1.0' in metrics


async def test_get_stream_is_proxied_and_delete_ends_the_backend_session(
    gateway: GatewayHandle, alpha: McpTestServer
) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/alpha"
    session_id = await asyncio.to_thread(initialize, endpoint, token)
    get_headers = {**stream_headers(token, session_id), "Accept": "text/event-stream"}
    del get_headers["Content-Type"]
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("GET", endpoint, headers=get_headers) as stream:
            assert stream.status_code == 200
            assert stream.headers["x-accel-buffering"] == "no"
            await asyncio.to_thread(post, endpoint, token, tool_call(2, "announce", {}), session_id=session_id)
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    assert orjson.loads(line[5:])["method"] == "notifications/tools/list_changed"
                    break
    deletes = len(alpha.requests_with("DELETE"))
    ended = httpx.delete(endpoint, headers={"Authorization": f"Bearer {token}", "Mcp-Session-Id": session_id})
    assert ended.status_code == 204
    assert len(alpha.requests_with("DELETE")) == deletes + 1


async def test_a_caller_that_leaves_ends_the_upstream_call(gateway: GatewayHandle, alpha: McpTestServer) -> None:
    token = gateway.create_token(user="alice@example.com")
    session_id = await asyncio.to_thread(initialize, gateway.url + "/mcp/alpha", token)
    body = tool_call(5, "gated_echo", {"text": "unread", "gate": "never-opened"}, progress="p5")
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream(
            "POST", gateway.url + "/mcp/alpha", json=body, headers=stream_headers(token, session_id)
        ) as response:
            request_id = response.headers["x-request-id"]
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    break  # the progress event: the call is running; leave now
    row = await asyncio.to_thread(gateway.wait_for_log, request_id)
    assert row["status"] == 499


def test_tool_call_span_when_tracing(gateway_factory: Any, alpha: McpTestServer) -> None:
    from tests.helpers.otlp_receiver import OTLPReceiver

    with OTLPReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "20"}
        gateway: GatewayHandle = gateway_factory(CONFIG, alpha_url=alpha.url, env=env)
        token = gateway.create_token(user="alice@example.com")
        session_id = initialize(gateway.url + "/mcp/alpha", token)
        response = post(gateway.url + "/mcp/alpha", token, tool_call(2, "echo", {"text": "t"}), session_id=session_id)
        spans = receiver.trace(response.headers["x-relaygate-trace-id"], count=2)
    span = next(s for s in spans if s.name == "tools/call echo")
    assert span.kind.endswith("CLIENT")
    assert span.attributes["gen_ai.tool.name"] == "echo"
    assert span.attributes["mcp.method.name"] == "tools/call"
    assert session_id not in str(span.attributes)
