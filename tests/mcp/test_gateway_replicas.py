"""Two `relaygate serve` processes sharing `RELAYGATE_MCP_SESSION_SECRET` and one token database: a
session initialized on one is served by the other (no session store), and a gateway with another
secret does not know it (404: the client initializes again)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.gateway import GatewayProcess
from tests.mcp.gateway_client import initialize, post, rpc
from tests.upstreams.mcp_servers import McpTestServer

CONFIG = """
type: mcp-server/remote
name: alpha
url: {alpha_url}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
"""
SECRET = "replica-secret-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def replicas(tmp_path: Path, alpha: McpTestServer) -> Iterator[tuple[GatewayProcess, GatewayProcess, GatewayProcess]]:
    config = CONFIG.replace("{alpha_url}", alpha.url)
    first = GatewayProcess(tmp_path / "one", config, env={"RELAYGATE_MCP_SESSION_SECRET": SECRET})
    second = GatewayProcess(tmp_path / "two", config, env={"RELAYGATE_MCP_SESSION_SECRET": SECRET})
    stranger = GatewayProcess(tmp_path / "three", config, env={"RELAYGATE_MCP_SESSION_SECRET": "other-" + "x" * 40})
    second.db_path = stranger.db_path = first.db_path  # one token database, as replicas share one
    started = []
    try:
        for gateway in (first, second, stranger):
            gateway.start()
            started.append(gateway)
        yield first, second, stranger
    finally:
        for gateway in started:
            gateway.stop()


def test_a_session_started_on_one_replica_is_served_by_another(
    replicas: tuple[GatewayProcess, GatewayProcess, GatewayProcess],
) -> None:
    first, second, stranger = replicas
    token = first.create_token(user="alice@example.com")
    session_id = initialize(first.url + "/mcp/alpha", token)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hop"}}}
    answer = rpc(post(second.url + "/mcp/alpha", token, call, session_id=session_id))
    assert answer["result"]["content"][0]["text"] == "hop"
    assert post(stranger.url + "/mcp/alpha", token, call, session_id=session_id).status_code == 404


def test_workers_share_the_generated_secret(tmp_path: Path, alpha: McpTestServer) -> None:
    """Without RELAYGATE_MCP_SESSION_SECRET, `serve --workers 2` makes one for all its workers (and
    warns that replicas need it set): a session works on whichever worker takes the request."""
    gateway = GatewayProcess(tmp_path / "workers", CONFIG.replace("{alpha_url}", alpha.url))
    gateway.serve_args = ["--workers", "2"]
    gateway.start()
    try:
        token = gateway.create_token(user="alice@example.com")
        session_id = initialize(gateway.url + "/mcp/alpha", token)
        ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
        for _ in range(12):  # a new connection each time: both workers serve some
            assert post(gateway.url + "/mcp/alpha", token, ping, session_id=session_id).status_code == 200
    finally:
        gateway.stop()
    assert "RELAYGATE_MCP_SESSION_SECRET is not set" in gateway.output()
