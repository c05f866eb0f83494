"""Reading and rewriting one field of a multipart/form-data body without touching the rest.

The gateway only needs the `model` field of uploads (images/edits, audio/transcriptions): it reads
it to route the call and rewrites it to the provider's model id; every other byte is relayed as is.
"""

from __future__ import annotations

import re

from relaygate.errors import BadRequest

_BOUNDARY = re.compile(rb'boundary=(?:"([^"]+)"|([^\s;]+))', re.IGNORECASE)
_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)


def boundary_of(content_type: bytes | None) -> bytes:
    """The boundary of a multipart/form-data content type, or 400."""
    if not content_type or not content_type.lower().startswith(b"multipart/form-data"):
        raise BadRequest("this endpoint expects a multipart/form-data body", code="invalid_content_type")
    match = _BOUNDARY.search(content_type)
    if not match:
        raise BadRequest("multipart/form-data body has no boundary", code="invalid_content_type")
    return match.group(1) or match.group(2)


def _field_span(body: bytes, boundary: bytes, name: bytes) -> tuple[int, int] | None:
    """Start and end offsets of the value of form field `name` (first occurrence)."""
    delimiter = b"--" + boundary
    pos = body.find(delimiter)
    while pos != -1:
        head_start = pos + len(delimiter)
        if body[head_start : head_start + 2] == b"--":
            return None  # closing delimiter
        head_end = body.find(b"\r\n\r\n", head_start)
        if head_end == -1:
            return None
        headers = body[head_start:head_end]
        next_pos = body.find(b"\r\n" + delimiter, head_end + 4)
        if next_pos == -1:
            return None
        for line in headers.split(b"\r\n"):
            if line.lower().startswith(b"content-disposition:"):
                match = _NAME.search(line)
                if match and match.group(1) == name:
                    return head_end + 4, next_pos
        pos = next_pos + 2
    return None


def read_field(body: bytes, boundary: bytes, name: bytes) -> str | None:
    """The text value of a form field, or None when absent."""
    span = _field_span(body, boundary, name)
    if span is None:
        return None
    return body[span[0] : span[1]].decode("utf-8", "replace")


def replace_field(body: bytes, boundary: bytes, name: bytes, value: str) -> bytes:
    """The body with one field's value replaced; the caller has checked the field exists."""
    span = _field_span(body, boundary, name)
    if span is None:
        return body
    return body[: span[0]] + value.encode("utf-8") + body[span[1] :]
