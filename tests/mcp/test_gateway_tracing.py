"""A traced `tools/call` tells its backend where it sits in the trace.

With tracing on, the forwarded call carries `params._meta.traceparent` and the HTTP `traceparent`
header, both naming the request's trace and the id the exported `tools/call {tool}` span has, so the
backend's spans hang under it (a caller's unsampled trace stays unsampled downstream). With tracing
off, the call goes upstream as the client sent it: no `_meta` added, no header.
"""

from __future__ import annotations

from typing import Any

from tests.helpers.gateway import GatewayHandle
from tests.helpers.otlp_receiver import OTLPReceiver
from tests.mcp.gateway_client import initialize, post, rpc
from tests.upstreams.mcp_servers import McpTestServer, RecordedRequest

CONFIG = """
type: mcp-server/remote
name: alpha
url: {alpha_url}
forward_headers: [traceparent]
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
"""
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


def tool_call(request_id: int, text: str) -> dict[str, Any]:
    params = {"name": "echo", "arguments": {"text": text}, "_meta": {"progressToken": f"p{request_id}"}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def forwarded(alpha: McpTestServer, text: str) -> RecordedRequest:
    """The upstream's record of the tools/call that echoed `text`."""
    return next(
        r
        for r in alpha.requests
        if (r.message() or {}).get("method") == "tools/call" and r.message()["params"]["arguments"]["text"] == text
    )


def test_traceparent_names_the_exported_tool_call_span(gateway_factory: Any, alpha: McpTestServer) -> None:
    with OTLPReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "20"}
        gateway: GatewayHandle = gateway_factory(CONFIG, alpha_url=alpha.url, env=env)
        token = gateway.create_token(user="alice@example.com")
        endpoint = gateway.url + "/mcp/alpha"
        session_id = initialize(endpoint, token)
        response = post(endpoint, token, tool_call(2, "traced"), session_id=session_id)
        assert rpc(response)["result"]["content"][0]["text"] == "traced"
        trace_id = response.headers["x-relaygate-trace-id"]
        spans = receiver.trace(trace_id, count=2)
        # A caller's sampled trace is continued; an unsampled one is not exported and says so downstream.
        sampled = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
        continued = post(
            endpoint, token, tool_call(3, "continued"), session_id=session_id, headers={"traceparent": sampled}
        )
        unsampled = f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"
        dropped = post(
            endpoint, token, tool_call(4, "dropped"), session_id=session_id, headers={"traceparent": unsampled}
        )
        assert continued.status_code == dropped.status_code == 200
    span = next(s for s in spans if s.name == "tools/call echo")
    root = next(s for s in spans if s.parent_span_id == "")
    assert span.kind == "CLIENT" and span.parent_span_id == root.span_id
    call = forwarded(alpha, "traced")
    parent = f"00-{trace_id}-{span.span_id}-01"
    assert call.message()["params"]["_meta"] == {"progressToken": "p2", "traceparent": parent}
    assert call.headers["traceparent"] == parent
    # The caller's traceparent, although a forwarded header here, is replaced by the gateway's own.
    continued_parent = forwarded(alpha, "continued").headers["traceparent"]
    assert continued_parent.startswith(f"00-{CALLER_TRACE}-") and continued_parent.endswith("-01")
    assert CALLER_SPAN not in continued_parent
    assert forwarded(alpha, "continued").message()["params"]["_meta"]["traceparent"] == continued_parent
    dropped_parent = forwarded(alpha, "dropped").headers["traceparent"]
    assert dropped_parent.startswith(f"00-{CALLER_TRACE}-") and dropped_parent.endswith("-00")


def test_without_tracing_the_call_is_forwarded_unchanged(gateway_factory: Any, alpha: McpTestServer) -> None:
    gateway: GatewayHandle = gateway_factory(CONFIG, alpha_url=alpha.url)
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/alpha"
    session_id = initialize(endpoint, token)
    sent = tool_call(2, "untraced")
    assert rpc(post(endpoint, token, sent, session_id=session_id))["result"]["content"][0]["text"] == "untraced"
    call = forwarded(alpha, "untraced")
    assert call.message() == sent
    assert "traceparent" not in call.headers
