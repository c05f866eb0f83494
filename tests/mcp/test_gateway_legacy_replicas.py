"""Two `relaygate serve` processes sharing `RELAYGATE_MCP_SESSION_SECRET` in front of one legacy HTTP+SSE
backend: each process holds its own connection for a session (a live stream cannot be shared), so the
replica that did not initialize opens one and initializes the backend again, with the client's
params, then serves the request; the first keeps using its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.gateway import GatewayProcess
from tests.mcp.gateway_client import post, rpc
from tests.upstreams.mcp_sse_servers import LegacySseTestServer

CONFIG = """
type: mcp-server/remote
name: legacy
url: {legacy_url}
transport: sse
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
"""
SECRET = "legacy-replica-secret-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def legacy() -> Iterator[LegacySseTestServer]:
    with LegacySseTestServer().running() as server:
        yield server


@pytest.fixture
def replicas(tmp_path: Path, legacy: LegacySseTestServer) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    config = CONFIG.replace("{legacy_url}", legacy.url)
    first = GatewayProcess(tmp_path / "one", config, env={"RELAYGATE_MCP_SESSION_SECRET": SECRET})
    second = GatewayProcess(tmp_path / "two", config, env={"RELAYGATE_MCP_SESSION_SECRET": SECRET})
    second.db_path = first.db_path  # one token database, as replicas share one
    started = []
    try:
        for gateway in (first, second):
            gateway.start()
            started.append(gateway)
        yield first, second
    finally:
        for gateway in started:
            gateway.stop()


def test_a_legacy_session_started_on_one_replica_is_served_by_another(
    replicas: tuple[GatewayProcess, GatewayProcess], legacy: LegacySseTestServer
) -> None:
    first, second = replicas
    token = first.create_token(user="alice@example.com")
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"roots": {"listChanged": True}},
            "clientInfo": {"name": "replica-client", "version": "3"},
        },
    }
    response = post(first.url + "/mcp/legacy", token, init)
    assert rpc(response)["result"]["serverInfo"]["name"] == "alpha"
    session_id = response.headers["mcp-session-id"]
    gets = len(legacy.requests_with("GET"))

    def echo(gateway: GatewayProcess, request_id: int, text: str) -> str:
        message = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}},
        }
        answer = rpc(post(gateway.url + "/mcp/legacy", token, message, session_id=session_id))
        return str(answer["result"]["content"][0]["text"])

    assert echo(second, 2, "hop") == "hop"
    assert len(legacy.requests_with("GET")) == gets + 1  # the second replica opened its own stream
    reinit = [message for message in legacy.posts() if message.get("method") == "initialize"][-1]
    assert reinit["params"]["protocolVersion"] == "2025-06-18"
    assert reinit["params"]["clientInfo"] == {"name": "replica-client", "version": "3"}
    assert reinit["params"]["capabilities"] == {"roots": {"listChanged": True}}
    assert echo(first, 3, "home") == "home"
    assert echo(second, 4, "again") == "again"
    assert len(legacy.requests_with("GET")) == gets + 1  # each replica keeps its own connection
