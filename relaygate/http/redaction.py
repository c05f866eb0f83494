"""Configured upstream credentials kept out of what the transparent proxy relays back.

Response headers are scrubbed always (names and values). Bodies only when they are small error
answers: status >= 400, text or JSON (or no `Content-Type`), no `Content-Encoding` (other than
`identity`), at most `ERROR_BODY_LIMIT` bytes. Larger, binary or compressed error bodies pass
unchanged, streamed, and so do event streams (holding one back to scrub it would stop it being a
stream); success bodies are never read or touched (byte-exact, at no cost). A scrubbed body is sent
whole with its new `Content-Length`.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from relaygate.errors import scrub

ERROR_BODY_LIMIT = 64 * 1024
# `application/<subtype>` that is text; `+json` and `+xml` suffixes (problem+json, soap+xml) are too.
_TEXT_SUBTYPES = frozenset(
    {
        "json",
        "xml",
        "x-www-form-urlencoded",
        "javascript",
        "x-javascript",
        "ecmascript",
        "x-ndjson",
        "ndjson",
        "graphql",
        "yaml",
        "x-yaml",
    }
)


def scrub_headers(headers: list[tuple[bytes, bytes]], secrets: tuple[bytes, ...]) -> list[tuple[bytes, bytes]]:
    """The headers with every secret replaced by `***` (one joined search first: a clean answer, the
    usual case, costs one join and a substring search per secret)."""
    if not secrets or not headers:
        return headers
    joined = b"\n".join(map(b"\n".join, headers))
    for secret in secrets:
        if secret in joined:
            return [(scrub(name, secrets), scrub(value, secrets)) for name, value in headers]
    return headers


def is_text(content_type: str | None) -> bool:
    """Text, JSON, XML and friends, read whole to be scrubbed; a missing type counts as text (plain
    error pages often have none). Not `text/event-stream`: a stream is relayed as it comes."""
    if not content_type:
        return True
    mime = content_type.partition(";")[0].strip().lower()
    if not mime:
        return True
    top, _, sub = mime.partition("/")
    if top == "text":
        return sub != "event-stream"
    return top == "application" and (sub in _TEXT_SUBTYPES or sub.endswith(("+json", "+xml")))


def error_body_scrubbable(status: int, headers: Mapping[str, str], content_length: int | None) -> bool:
    """Whether an answer's body is read (up to the limit) and scrubbed before it is relayed."""
    if status < 400 or (content_length is not None and content_length > ERROR_BODY_LIMIT):
        return False
    encoding = headers.get("Content-Encoding")
    if encoding and encoding.strip().lower() != "identity":
        return False  # compressed bytes are binary to us: scrubbing them would corrupt, not redact
    return is_text(headers.get("Content-Type"))


async def read_capped(content: aiohttp.StreamReader, cap: int) -> tuple[bytes, bool]:
    """Up to a little past `cap` bytes, and whether that was the whole body."""
    parts: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = await content.readany()
        if not chunk:
            return b"".join(parts), True
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), False


def with_length(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    """The headers framing a body of `length` bytes (a scrubbed body's length changed)."""
    kept = [(name, value) for name, value in headers if name != b"content-length"]
    kept.append((b"content-length", str(length).encode("ascii")))
    return kept
