"""MCP tool guardrails through a real gateway: pre-invoke on the arguments (a mask reaches the tool, and
the row's request body, masked; a block never reaches it), post-invoke on the result (a block becomes
`isError: true` with an explanation), both on the row and in the guardrail metrics; a rule for models
only never applies."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.helpers.gateway import GatewayHandle
from tests.mcp.gateway_client import initialize, post, rpc
from tests.upstreams.mcp_servers import McpTestServer

CONFIG = """
type: mcp-server/remote
name: alpha
url: {alpha_url}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
---
type: provider-account/guardrail-config-group
name: safety
integrations:
  - name: pii-mask
    type: integration/guardrail-config/pii
    operation: mutate
    config: {entities: [email], action: mask}
  - {name: no-forbidden, type: integration/guardrail-config/keywords, config: {words: [forbidden-topic]}}
  - name: no-answer-42
    type: integration/guardrail-config/regex
    config: {patterns: [{name: answer, pattern: "^42$"}]}
---
type: gateway-guardrails-config
name: guardrails
match: first
rules:
  - id: models-only
    when: {models: ["some/model"]}
    llm_input_guardrails: [safety/no-forbidden]
  - id: alpha-tools
    when: {target: {conditions: {mcpServers: [alpha]}}}
    mcp_tool_pre_invoke_guardrails: [safety/pii-mask, safety/no-forbidden]
    mcp_tool_post_invoke_guardrails: [safety/pii-mask, safety/no-answer-42]
"""


@pytest.fixture
def gateway(gateway_factory: Any, alpha: McpTestServer) -> GatewayHandle:
    handle: GatewayHandle = gateway_factory(CONFIG, alpha_url=alpha.url)
    return handle


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def test_tool_guardrails(gateway: GatewayHandle, alpha: McpTestServer) -> None:
    token = gateway.create_token(user="alice@example.com")
    endpoint = gateway.url + "/mcp/alpha"
    session_id = initialize(endpoint, token)

    answer = post(endpoint, token, call(2, "echo", {"text": "mail bob@example.com"}), session_id=session_id)
    masked = rpc(answer)
    text = masked["result"]["content"][0]["text"]
    assert "bob@example.com" not in text and "mail " in text
    sent = [r.message() for r in alpha.requests if (r.message() or {}).get("method") == "tools/call"]
    assert "bob@example.com" not in str(sent[-1])
    row = gateway.wait_for_log(answer.headers["x-request-id"])  # the row keeps the arguments masked too
    assert "bob@example.com" not in row["request_body"] and '"mail ' in row["request_body"]
    assert orjson.loads(row["request_body"])["params"]["name"] == "echo"

    calls_before = len(sent)
    blocked = post(endpoint, token, call(3, "echo", {"text": "about forbidden-topic"}), session_id=session_id)
    result = rpc(blocked)["result"]
    assert result["isError"] is True
    assert "safety/no-forbidden" in result["content"][0]["text"] and "not made" in result["content"][0]["text"]
    assert len([r for r in alpha.requests if (r.message() or {}).get("method") == "tools/call"]) == calls_before
    row = gateway.wait_for_log(blocked.headers["x-request-id"])
    assert row["extra"]["mcp"]["outcome"] == "denied"
    assert any(v["name"] == "safety/no-forbidden" and v["result"] == "block" for v in row["extra"]["guardrails"])

    withheld = rpc(post(endpoint, token, call(4, "add", {"a": 40, "b": 2}), session_id=session_id))["result"]
    assert withheld["isError"] is True and "withheld" in withheld["content"][0]["text"]
    assert (
        rpc(post(endpoint, token, call(5, "add", {"a": 1, "b": 2}), session_id=session_id))["result"]["content"][0][
            "text"
        ]
        == "3"
    )

    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'relaygate_guardrail_checks_total{guardrail="safety/no-forbidden",result="block",stage="mcp_pre"}' in metrics
