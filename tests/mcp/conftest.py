"""Shared MCP fixtures: the SDK test servers (tests/upstreams/mcp_servers.py), one per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.upstreams.mcp_servers import McpTestServer

UPSTREAM_SECRET = "Bearer upstream-secret"


@pytest.fixture(scope="module")
def alpha() -> Iterator[McpTestServer]:
    """The full tool set, answering with SSE streams (the SDK's default)."""
    with McpTestServer().running() as server:
        yield server


@pytest.fixture(scope="module")
def alpha_json() -> Iterator[McpTestServer]:
    """The same tools, answering each request with one JSON message."""
    with McpTestServer(json_response=True).running() as server:
        yield server


@pytest.fixture(scope="module")
def stateless() -> Iterator[McpTestServer]:
    """No sessions: every request stands alone."""
    with McpTestServer(stateless=True, json_response=True).running() as server:
        yield server


@pytest.fixture(scope="module")
def beta() -> Iterator[McpTestServer]:
    """The second server: tool names that overlap alpha's."""
    with McpTestServer("beta", json_response=True).running() as server:
        yield server


@pytest.fixture(scope="module")
def guarded() -> Iterator[McpTestServer]:
    """Answers 401 unless the upstream credential is present."""
    with McpTestServer(required_headers={"Authorization": UPSTREAM_SECRET}).running() as server:
        yield server
