"""The cursor of a virtual server's `tools/list`: where each member's own listing stands.

A virtual server merges listings that each member pages by its own cursors, so its `nextCursor` is
the set of member cursors still open: unpadded base64url of the JSON `{"s": server, "c": [[member,
upstream cursor], ...]}`, members in order. MCP cursors are opaque to clients; this one is not sealed
because it holds nothing the client may not see (upstream cursors are strings a server hands out to
be sent back), and a forged one can only name members of the virtual server it was made for, which
the caller then checks. A cursor that does not decode to that shape is `InvalidCursor` (-32602).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import orjson

MAX_CURSOR_CHARS = 64 << 10  # a client's cursor longer than this was not made by the gateway
MAX_MEMBER_CURSOR_CHARS = 4096  # an upstream cursor longer than this ends that member's listing


class InvalidCursor(ValueError):
    """A cursor the gateway did not make for this server (garbled, truncated, or another server's)."""


def encode_cursor(server: str, open_members: Sequence[tuple[str, str]]) -> str | None:
    """The cursor of the next page: the members still open and their upstream cursors (None: done)."""
    if not open_members:
        return None
    payload = orjson.dumps({"s": server, "c": [[member, cursor] for member, cursor in open_members]})
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def decode_cursor(server: str, cursor: object) -> dict[str, str]:
    """Member -> upstream cursor from a client's cursor for `server`, in member order."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("not a cursor this server made")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        raise InvalidCursor("not a cursor this server made") from None
    if not isinstance(value, dict) or value.get("s") != server or not isinstance(value.get("c"), list):
        raise InvalidCursor("not a cursor this server made")
    members: dict[str, str] = {}
    for item in value["c"]:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(part, str) and part for part in item)
            or item[0] in members
        ):
            raise InvalidCursor("not a cursor this server made")
        members[item[0]] = item[1]
    if not members:
        raise InvalidCursor("not a cursor this server made")
    return members


def member_cursor(value: object) -> str | None:
    """An upstream's `nextCursor` worth following: a non-empty string of bounded length."""
    if isinstance(value, str) and 0 < len(value) <= MAX_MEMBER_CURSOR_CHARS:
        return value
    return None
