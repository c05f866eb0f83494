"""The official SDK client pointed at a gateway's MCP endpoint, plus raw JSON-RPC helpers.

`sdk_session(url, token)` is what Claude Code or an agent does: `streamable_http_client` with a static
`Authorization: Bearer <relaygate token>` header (and any extra headers), then `ClientSession`.
`post(url, token, message)` sends one raw JSON-RPC message (for what the SDK cannot be made to do:
a guessed tool name, a session id of another token, a replayed session id after revocation).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

ACCEPT = "application/json, text/event-stream"


@asynccontextmanager
async def sdk_session(url: str, token: str, headers: Mapping[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """An initialized SDK session through the gateway."""
    sent = {"Authorization": f"Bearer {token}", **(headers or {})}
    async with httpx.AsyncClient(headers=sent, timeout=httpx.Timeout(30.0, read=60.0)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def post(
    url: str,
    token: str | None,
    message: Any,
    *,
    session_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One raw JSON-RPC POST (session era, protocol 2025-11-25 after initialize)."""
    sent = {"Accept": ACCEPT, "Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if session_id is not None:
        sent["Mcp-Session-Id"] = session_id
        sent.setdefault("MCP-Protocol-Version", "2025-11-25")
    return httpx.post(url, json=message, headers=sent, timeout=30.0)


def initialize(url: str, token: str) -> str:
    """A raw initialize; returns the gateway's session id."""
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    response = post(url, token, message)
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    assert (
        post(url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session_id=session_id).status_code
        == 202
    )
    return session_id


def rpc(response: httpx.Response) -> Any:
    """The JSON-RPC message of an answer, JSON or a one-message SSE stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                import orjson

                message = orjson.loads(line[5:].strip())
                if "id" in message and "method" not in message:
                    return message
        raise AssertionError(f"no response in the stream: {response.text!r}")
    return response.json()
