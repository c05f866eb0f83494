"""`McpRequest`: one MCP request as the MCP steps see it, and how to reach its backends.

Built once the caller is authenticated and may use the server: the server (remote or virtual), the
request's headers (lower-case, `protocol.header_map`), the caller's `x-tfy-mcp-headers`, and, in the
session era, the opened session. `backend(member)` gives the `McpBackend` of a remote server and the
per-call headers this caller adds for it: a legacy HTTP+SSE server (`transport: sse`) gets a
`LegacySseBackend`, which offers the same calls.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from relaygate.mcp.client_headers import upstream_headers
from relaygate.mcp.legacy_sse import LegacySseBackend
from relaygate.mcp.protocol import NAMED_METHODS
from relaygate.mcp.upstream import McpBackend
from relaygate.runtime.mcp import McpServer, VirtualMcpServer

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.mcp.session import McpSession
    from relaygate.pipeline.call import Call
    from relaygate.runtime.mcp import McpPolicy


@dataclass(slots=True)
class McpRequest:
    """The caller, the server it speaks to and what it sent (see the module docstring)."""

    call: Call
    principal: Principal
    name: str
    target: McpServer | VirtualMcpServer
    policy: McpPolicy
    headers: dict[str, str]
    client_headers: dict[str, dict[str, str]]
    session: McpSession | None = None
    method: str = ""  # the JSON-RPC method once the body is read (the metrics' label), else the HTTP one
    stateless: bool = False  # the 2026-07-28 era: no session; backends spoken to in the same era
    meta: dict[str, object] | None = None  # the client's `_meta` (stateless: every request carries it)

    @property
    def virtual(self) -> bool:
        """Whether the caller speaks to a virtual server (prefixed names, fanned-out initialize)."""
        return isinstance(self.target, VirtualMcpServer)

    @property
    def http(self) -> aiohttp.ClientSession:
        """The gateway's pooled upstream session."""
        session = self.call.gateway.session
        assert session is not None
        return session

    def members(self) -> list[McpServer]:
        """The remote servers behind the target, in order (the target itself for a remote server)."""
        if isinstance(self.target, McpServer):
            return [self.target]
        servers = self.policy.servers
        return [servers[m.server] for m in self.target.members if m.server in servers]

    def remote(self, member: str) -> McpServer | None:
        """A remote server of this request by name (None: not one of the target's)."""
        return next((server for server in self.members() if server.name == member), None)

    def backend(self, server: McpServer) -> tuple[McpBackend | LegacySseBackend, dict[str, str]]:
        """The server's client (by its transport, made once per config) and the headers this caller adds
        for it (never the caller's token)."""
        extra = upstream_headers(server, self.headers, self.client_headers)
        client = self.policy.clients.get(server.name)
        if isinstance(client, McpBackend | LegacySseBackend):
            return client, extra
        if server.transport == "sse":
            legacy = self.call.gateway.mcp_legacy
            made: McpBackend | LegacySseBackend = LegacySseBackend(
                server.name, server.url, dict(server.headers), server.timeout_s, legacy
            )
        else:
            made = McpBackend(server.url, dict(server.headers), server.timeout_s)
        self.policy.clients[server.name] = made
        return made, extra

    def routed(self, message: Mapping[str, Any], extra: dict[str, str]) -> dict[str, str]:
        """`extra`, plus the stateless era's `Mcp-Method`/`Mcp-Name` mirrored from `message` (which
        must then carry the client's `_meta`; `with_meta` adds it to the gateway's own requests)."""
        if not self.stateless:
            return extra
        routed = {**extra, "Mcp-Method": str(message.get("method", ""))}
        field = NAMED_METHODS.get(routed["Mcp-Method"])
        params = message.get("params")
        if field is not None and isinstance(params, Mapping) and isinstance(params.get(field), str):
            routed["Mcp-Name"] = encode_header_value(params[field])
        return routed

    def with_meta(self, params: dict[str, Any]) -> dict[str, Any]:
        """A request's params for a backend: the client's `_meta` added in the stateless era."""
        if self.stateless and self.meta is not None:
            return {**params, "_meta": self.meta}
        return params


def encode_header_value(value: str) -> str:
    """A mirrored header's value: plain when it is visible ASCII, else the `=?base64?…?=` form."""
    if all(" " <= char <= "~" for char in value) and value == value.strip() and not value.startswith("=?"):
        return value
    return "=?base64?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def upstream_host(server: McpServer) -> str:
    """The backend's host, the row's `resolved_model` (never the URL: it may carry a key in its path)."""
    return urlsplit(server.url).hostname or server.name


def time_operation(call: Call, server: str, method: str, started: float) -> None:
    """One MCP request's duration in `relaygate_mcp_operation_duration_seconds`, its error type from the
    call's status (`tools/call` times itself, with its outcome)."""
    metrics = call.gateway.metrics.requests
    if metrics is None or method == "tools/call":
        return
    ctx = call.ctx
    error = "" if 0 < ctx.status < 400 else (ctx.error_type or "error")
    metrics.mcp_operation(server, method, error, time.perf_counter() - started)
