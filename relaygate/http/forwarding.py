"""What crosses the proxy: request headers and query sent upstream, response headers sent back.

Removed going up: hop-by-hop headers (and those `Connection` names), `Host`, `Content-Length` and
`Expect` (the upstream hop frames the body it actually sends), `x-tfy-*`, and the
caller's Relaygate token wherever it appears (any header value, query parameter, cookie). Added:
the endpoint's own headers, replacing caller headers of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote_from_bytes, unquote_to_bytes

from relaygate.errors import BadRequest

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)
_REPLACED_IN_RESPONSE = frozenset({b"date", b"x-request-id"})
# Set for the upstream hop by the client library (the body's framing is the gateway's, not the caller's).
# `Expect: 100-continue` was answered by the gateway's server already; passed on, the client library
# would wait for an upstream 100 that an upstream may never send.
_REFRAMED = frozenset({b"host", b"content-length", b"expect"})


def _connection_listed(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Names a `Connection` header declares hop-by-hop (usually none: no allocation then)."""
    listed: set[bytes] | None = None
    for name, value in headers:
        if name == b"connection":
            listed = listed or set()
            listed.update(part.strip().lower() for part in value.split(b",") if part.strip())
    return frozenset(listed) if listed else frozenset()


def request_headers(
    headers: list[tuple[bytes, bytes]],
    token: bytes | None,
    injected: tuple[tuple[str, str], ...],
    injected_names: frozenset[str],
) -> list[tuple[str, str]]:
    """Caller headers minus what must not travel, plus the endpoint's headers."""
    listed = _connection_listed(headers)
    drop = HOP_BY_HOP | listed if listed else HOP_BY_HOP
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if b"\r" in value or b"\n" in value or b"\x00" in value:
            raise BadRequest("header values may not contain CR, LF or NUL", code="invalid_header")
        if name in drop or name in _REFRAMED or name.startswith(b"proxy-") or name.startswith(b"x-tfy-"):
            continue
        text_name = name.decode("latin-1")
        if text_name in injected_names:
            continue
        if token and token in value:
            if name == b"cookie":
                value = _without_token_cookies(value, token)
                if not value:
                    continue
            else:
                continue
        out.append((text_name, value.decode("latin-1")))
    out.extend(injected)
    return out


def _without_token_cookies(value: bytes, token: bytes) -> bytes:
    kept = [part.strip() for part in value.split(b";") if part.strip() and token not in part]
    return b"; ".join(kept)


def query_without_token(query: bytes, token: bytes | None) -> bytes:
    """The query string unchanged, except parameters carrying the caller's token are dropped."""
    if not token or not query:
        return query
    encoded = quote_from_bytes(token, safe="").encode()
    if token not in query and encoded not in query and token not in unquote_to_bytes(query):
        return query
    kept = [pair for pair in query.split(b"&") if token not in unquote_to_bytes(pair.replace(b"+", b" "))]
    return b"&".join(kept)


def response_headers(raw: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """Upstream response headers minus hop-by-hop ones and those the gateway sets itself (`Date`,
    `x-request-id`: the server adds its own, and two of either is malformed). Bodies go as received."""
    lowered = [(name.lower(), value) for name, value in raw]
    drop = HOP_BY_HOP | _REPLACED_IN_RESPONSE | _connection_listed(lowered)
    return [(name, value) for name, value in lowered if name not in drop]


def merge_headers(*layers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Configured upstream headers: later layers win, names compared case-insensitively."""
    merged: dict[str, tuple[str, str]] = {}
    for layer in layers:
        for name, value in layer.items():
            merged[name.lower()] = (name, value)
    return tuple(merged.values())
