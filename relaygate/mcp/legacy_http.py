"""The HTTP rules of the legacy HTTP+SSE transport (MCP 2024-11-05): headers, the endpoint's origin, errors.

A legacy server is reached with two kinds of request: one long `GET` of its SSE URL (the stream every
answer comes back on) and one `POST` per message to the endpoint URL the stream's first `endpoint`
event names. Both carry the same headers: the caller's per-call headers (allow-listed client headers,
`x-tfy-mcp-headers`) under the server's `auth_data` headers, minus every transport or reserved name
(`header_names.transport_header_reason`), so the caller's Relaygate token never travels.

The endpoint must be on the configured URL's origin (scheme, host and port): a server that named
another host would have the gateway send its `auth_data` credentials there, so it is refused, as
redirects are (never followed). Failures become the same typed `BackendError`s as `McpBackend`'s,
never quoting a header value or the URL (a server may take its key in the query string).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

import aiohttp
from multidict import CIMultiDict

from relaygate.mcp.header_names import transport_header_reason
from relaygate.mcp.upstream import BackendError, error_message

MAX_ENDPOINT_CHARS = 2048  # the endpoint event's data: a path and a session query, never a document
_DEFAULT_PORTS = {"http": 80, "https": 443}


def legacy_headers(static: Mapping[str, str], extra: Mapping[str, str] | None) -> CIMultiDict[str]:
    """Per-call headers < the server's `auth_data` headers; transport and reserved names dropped from both."""
    headers: CIMultiDict[str] = CIMultiDict()
    for source in (extra or {}, static):
        for name, value in source.items():
            if transport_header_reason(name) is None:
                headers[name] = value
    return headers


def endpoint_url(base: str, data: bytes) -> str:
    """The POST URL an `endpoint` event names, resolved against the SSE URL; refused off its origin."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BackendError(None, "the endpoint event is not UTF-8", kind="malformed") from None
    if not text or len(text) > MAX_ENDPOINT_CHARS or any(c in text for c in "\r\n\0"):
        raise BackendError(None, "the endpoint event does not name a URL", kind="malformed")
    url = urljoin(base, text)
    if _origin(url) != _origin(base):
        raise BackendError(None, "the server named a message endpoint on another origin", kind="malformed")
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", "", None)
    scheme = parts.scheme.lower()
    return (scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme))


async def status_error(response: aiohttp.ClientResponse, what: str) -> BackendError:
    """An error status (or a redirect) to `what`, with the server's JSON-RPC message if it sent one."""
    status = response.status
    message = await error_message(response)
    if 300 <= status < 400:
        return BackendError(status, f"the server redirected the {what}", kind="http_status", message=message)
    reason = f"the server answered the {what} with an error status"
    return BackendError(status, reason, kind="http_status", message=message)
