"""The headers a caller's request adds for one MCP upstream: `forward_headers` and `x-tfy-mcp-headers`.

Two sources, both opt-in per server (docs/mcp.md):
- `forward_headers`: header names the manifest allow-lists, copied from the client's request;
- `x-tfy-mcp-headers`: a JSON object keyed by server name, `{"github": {"Authorization": "Bearer ..."}}`,
  honoured only for servers with `allow_client_headers` (per-user upstream credentials). Names the
  transport owns (`header_names.transport_header_reason`) are refused with a 400.
The server's `auth_data` headers win on a conflict: `McpBackend` lays its static headers over these.
The caller's own `Authorization` is never among them unless the caller put an upstream credential
for this server in `x-tfy-mcp-headers` on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from relaygate.mcp.header_names import transport_header_reason
from relaygate.mcp.http_errors import McpRefused
from relaygate.runtime.mcp import McpServer

CLIENT_HEADERS = "x-tfy-mcp-headers"
MAX_CLIENT_HEADERS_BYTES = 16 << 10


def parse_client_headers(raw: str | None) -> dict[str, dict[str, str]]:
    """`x-tfy-mcp-headers` as server name -> {header: value}; absent is empty; malformed is a 400."""
    if raw is None or not raw.strip():
        return {}
    if len(raw) > MAX_CLIENT_HEADERS_BYTES:
        raise McpRefused(400, f"{CLIENT_HEADERS} is longer than {MAX_CLIENT_HEADERS_BYTES} bytes")
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise McpRefused(400, f"{CLIENT_HEADERS} is not JSON") from None
    if not isinstance(value, dict):
        raise McpRefused(400, f"{CLIENT_HEADERS} must be a JSON object keyed by MCP server name")
    parsed: dict[str, dict[str, str]] = {}
    for server, headers in value.items():
        if not isinstance(headers, dict) or not all(
            isinstance(name, str) and isinstance(text, str) for name, text in headers.items()
        ):
            raise McpRefused(400, f"{CLIENT_HEADERS}: the entry of {server[:40]!r} must map header names to strings")
        for name, text in headers.items():
            reason = transport_header_reason(name)
            if reason is not None:
                raise McpRefused(400, f"{CLIENT_HEADERS}: {reason}")
            if not name or any(c in text for c in "\r\n\0"):
                raise McpRefused(400, f"{CLIENT_HEADERS}: a header name is empty or a value holds a line break")
        parsed[server] = headers
    return parsed


def upstream_headers(
    server: McpServer, request_headers: Mapping[str, str], client_headers: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The per-call headers for `server`: its allow-listed client headers, then its `x-tfy-mcp-headers`
    entry when the manifest allows it (`auth_data` is laid over both by `McpBackend`)."""
    extra = {name: request_headers[name] for name in server.forward_headers if name in request_headers}
    if server.allow_client_headers:
        extra.update(client_headers.get(server.name, {}))
    return extra
