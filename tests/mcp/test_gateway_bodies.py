"""The log row of a `tools/call` keeps its bodies as the logging config says, never a credential.

By default the row holds the JSON-RPC request and the answer the client got: the JSON message, or out
of an SSE answer the response to the request (not the progress notifications before it). Any value of
a server's `auth_data` is scrubbed from both, as from the relayed answer. `--log-bodies off` and a
request's `x-tfy-logging-config: {"enabled": false}` keep the row without either body.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.helpers.gateway import GatewayHandle
from tests.mcp.conftest import UPSTREAM_SECRET
from tests.mcp.gateway_client import initialize, post, rpc
from tests.upstreams.mcp_servers import McpTestServer

CONFIG = """
type: mcp-server/remote
name: alpha
url: {alpha_url}
auth_data: {type: header, headers: {Authorization: "${MCP_ALPHA_AUTH}"}}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
---
type: mcp-server/remote
name: plain
url: {plain_url}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
"""
WITH_SECRET = f"the upstream key is {UPSTREAM_SECRET}"


def make_gateway(
    gateway_factory: Any, guarded: McpTestServer, alpha_json: McpTestServer, serve_args: list[str] | None = None
) -> GatewayHandle:
    gateway: GatewayHandle = gateway_factory(
        CONFIG, start=False, env={"MCP_ALPHA_AUTH": UPSTREAM_SECRET}, alpha_url=guarded.url, plain_url=alpha_json.url
    )
    gateway.serve_args = serve_args or []
    return gateway.start()


def tool_call(request_id: int, name: str, arguments: dict[str, Any], progress: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress is not None:
        params["_meta"] = {"progressToken": progress}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def test_bodies_are_kept_by_default_without_credentials(
    gateway_factory: Any, guarded: McpTestServer, alpha_json: McpTestServer
) -> None:
    gateway = make_gateway(gateway_factory, guarded, alpha_json)
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/alpha"
    session_id = initialize(endpoint, token)
    # An SSE answer: progress notifications, then the result (which echoes the credential).
    sent = tool_call(2, "sleep_then_echo", {"seconds": 0, "text": WITH_SECRET}, progress="p2")
    response = post(endpoint, token, sent, session_id=session_id)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "notifications/progress" in response.text and UPSTREAM_SECRET not in response.text
    row = gateway.wait_for_log(response.headers["x-request-id"])
    assert UPSTREAM_SECRET not in orjson.dumps(row).decode()
    scrubbed = WITH_SECRET.replace(UPSTREAM_SECRET, "***")
    request = orjson.loads(row["request_body"])
    assert request == tool_call(2, "sleep_then_echo", {"seconds": 0, "text": scrubbed}, progress="p2")
    answer = orjson.loads(row["response_body"])
    assert answer == rpc(response)  # the response to the request, as the client got it
    assert answer["id"] == 2 and answer["result"]["content"][0]["text"] == scrubbed
    # A JSON answer is kept as the client got it; so is the gateway's own "Unknown tool".
    plain = gateway.url + "/mcp/plain"
    plain_session = initialize(plain, token)
    echoed = post(plain, token, tool_call(3, "echo", {"text": "hi"}), session_id=plain_session)
    assert echoed.headers["content-type"].startswith("application/json")
    row = gateway.wait_for_log(echoed.headers["x-request-id"])
    assert orjson.loads(row["request_body"]) == tool_call(3, "echo", {"text": "hi"})
    assert row["response_body"] == echoed.text
    unknown = post(plain, token, tool_call(4, "no_such_tool", {}), session_id=plain_session)
    row = gateway.wait_for_log(unknown.headers["x-request-id"])
    assert orjson.loads(row["request_body"])["params"]["name"] == "no_such_tool"
    assert orjson.loads(row["response_body"])["error"]["code"] == -32602


@pytest.mark.parametrize("how", ["--log-bodies off", "x-tfy-logging-config"])
def test_bodies_stay_out_when_logging_says_so(
    gateway_factory: Any, guarded: McpTestServer, alpha_json: McpTestServer, how: str
) -> None:
    serve_args = ["--log-bodies", "off"] if how == "--log-bodies off" else None
    headers = {"x-tfy-logging-config": '{"enabled": false}'} if how == "x-tfy-logging-config" else None
    gateway = make_gateway(gateway_factory, guarded, alpha_json, serve_args)
    token = gateway.create_token(user="alice@example.com")
    for name in ("alpha", "plain"):
        endpoint = f"{gateway.url}/mcp/{name}"
        session_id = initialize(endpoint, token)
        call = tool_call(2, "echo", {"text": "not to be kept"})
        response = post(endpoint, token, call, session_id=session_id, headers=headers)
        assert rpc(response)["result"]["content"][0]["text"] == "not to be kept"
        row = gateway.wait_for_log(response.headers["x-request-id"])
        assert row["status"] == 200 and row["extra"]["mcp"]["outcome"] == "ok"
        assert row["request_body"] is None and row["response_body"] is None
        assert "not to be kept" not in orjson.dumps(row).decode()


@pytest.mark.parametrize("logged", ["", "tools/call", "tools/list", "*"])
def test_other_methods_write_a_row_only_where_relaygate_mcp_log_methods_says(
    gateway_factory: Any, alpha_json: McpTestServer, logged: str
) -> None:
    """`tools/call` always writes a row; `initialize`, `tools/list` and the rest only when named."""
    gateway: GatewayHandle = gateway_factory(
        CONFIG,
        start=False,
        env={"MCP_ALPHA_AUTH": UPSTREAM_SECRET, "RELAYGATE_MCP_LOG_METHODS": logged},
        alpha_url=alpha_json.url,
        plain_url=alpha_json.url,
    ).start()
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/plain"
    session_id = initialize(endpoint, token)
    listed = post(endpoint, token, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, session_id=session_id)
    called = post(endpoint, token, tool_call(2, "echo", {"text": "hi"}), session_id=session_id)
    gateway.wait_for_log(called.headers["x-request-id"])  # rows are written in order: the others are in by now
    rows = {row["request_id"]: row for row in gateway.logs()}
    assert called.headers["x-request-id"] in rows
    list_row = rows.get(listed.headers["x-request-id"])
    if logged in ("tools/list", "*"):
        assert list_row is not None and list_row["requested_model"] == "plain/tools/list"
        assert list_row["model_type"] == "mcp" and list_row["extra"]["mcp"]["method"] == "tools/list"
    else:
        assert list_row is None
    initialize_rows = [row for row in rows.values() if row["requested_model"] == "plain/initialize"]
    assert len(initialize_rows) == (1 if logged == "*" else 0)
