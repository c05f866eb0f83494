"""Proxy URL shape and path safety: `/proxy-api/{account}/{endpoint-or-slug}/{remaining path}`.

The remaining path goes upstream byte for byte, so it is checked here: no `.`/`..` segment, raw or
percent-encoded (any case, encoded any number of times, or behind an encoded `/` or `\\`), may leave
`base_url`'s path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

from relaygate.errors import BadRequest, NotFound

PROXY_PREFIX = b"/proxy-api/"
_SEPARATORS = re.compile(rb"[/\\]")


@dataclass(frozen=True, slots=True)
class ProxyPath:
    account: str
    second: str  # endpoint name or pool slug
    remaining: bytes  # from its leading "/" (or b""), percent-encoding as received


def split_proxy_path(raw_path: bytes) -> ProxyPath:
    """Split a raw `/proxy-api/...` path; 404 when the account or endpoint segment is missing."""
    rest = raw_path[len(PROXY_PREFIX) :]
    account, _, tail = rest.partition(b"/")
    second, slash, remaining = tail.partition(b"/")
    if not account or not second:
        raise NotFound("custom endpoint URLs look like /proxy-api/{account}/{endpoint}/{path}", code="unknown_url")
    check_remaining_path(remaining)
    return ProxyPath(
        unquote(account.decode("latin-1")), unquote(second.decode("latin-1")), slash + remaining if slash else b""
    )


def _is_dot(segment: bytes) -> bool:
    return segment in (b".", b"..")


def check_remaining_path(path: bytes) -> None:
    """400 for any dot segment that could climb out of the endpoint's base path, however many times
    it was percent-encoded (each segment is decoded until it stops changing)."""
    for segment in _SEPARATORS.split(path):
        current = segment
        while True:
            if any(_is_dot(piece) for piece in _SEPARATORS.split(current)):
                raise BadRequest(
                    "path segments '.' and '..' are not allowed in custom endpoint paths", code="invalid_path"
                )
            decoded = unquote_to_bytes(current) if b"%" in current else current
            if decoded == current:
                break
            current = decoded  # strictly shorter: the loop ends
