"""Which header names may travel to an MCP upstream from a manifest or a client, and why not.

Header forwarding is a security boundary (next-capabilities §5.7, §5.8 step 14): the caller's
Relaygate token must never go upstream (the MCP spec forbids token passthrough), the transport's own
headers belong to the gateway's connection to the upstream, and `X-Relaygate-*` / `x-tfy-*` are the
gateway's namespace. One place decides, so `relaygate check` (manifest `forward_headers`, `auth_data`)
and the request path (`x-tfy-mcp-headers`) refuse the same names. Names compare case-insensitively.
"""

from __future__ import annotations

# The HTTP connection and the MCP transport: set by the gateway for each upstream request.
_TRANSPORT = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "accept",
        "accept-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "last-event-id",
    }
)
_TRANSPORT_PREFIXES = ("mcp-", "x-relaygate-")
# Headers a client authenticates to the gateway with (its Relaygate token travels in the first and
# the last two), and cookies: copying them upstream would hand the caller's credentials to a server.
_CLIENT_CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
_GATEWAY_PREFIX = "x-tfy-"


def transport_header_reason(name: str) -> str | None:
    """Why `name` may not be sent upstream at all (None: it may): a transport or reserved header."""
    lower = name.lower()
    if lower in _TRANSPORT:
        return f"{name} is set by the gateway for each upstream request (a transport header)"
    if lower.startswith(_TRANSPORT_PREFIXES):
        return f"{name} is reserved: Mcp-* headers belong to the MCP transport, X-Relaygate-* to the gateway"
    return None


def forward_header_reason(name: str) -> str | None:
    """Why `name` may not be copied from the client (None: it may): transport and reserved headers, the
    client's own credentials and the gateway's `x-tfy-*` controls."""
    reason = transport_header_reason(name)
    if reason is not None:
        return reason
    lower = name.lower()
    if lower in _CLIENT_CREDENTIALS:
        return (
            f"{name} carries the client's credentials to the gateway and is never forwarded; "
            "put upstream credentials in auth_data (or allow_client_headers with x-tfy-mcp-headers)"
        )
    if lower.startswith(_GATEWAY_PREFIX):
        return f"{name} is a gateway control header (x-tfy-*) and is never forwarded"
    return None
