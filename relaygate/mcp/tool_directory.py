"""Listed tool name -> `(member server, upstream tool)`, remembered from listings for `tools/call`.

A listed name is a pure function of the server, the member and the upstream name (`names.py`), but the
way back is not: `files_read` may be `files.read` upstream, and a 64-character name ends in a hash. So
each listing records its names here, and a call looks its name up; a name this process has not seen
(listed on another replica, or before a restart) makes the caller list the upstream once to learn it.
Bounded: it starts over past `limit` names.
"""

from __future__ import annotations

from relaygate.mcp.names import ToolNames

DEFAULT_LIMIT = 50_000


class ToolDirectory:
    """Per process: (server the caller speaks to, listed name) -> (member server, upstream tool name)."""

    __slots__ = ("_names", "limit")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._names: dict[tuple[str, str], tuple[str, str]] = {}
        self.limit = limit

    def learn(self, server: str, names: ToolNames, listed: list[str]) -> None:
        """Remember the way back of every name in one listing of `server`."""
        if len(self._names) + len(listed) > self.limit:
            self._names.clear()
        for name in listed:
            target = names.resolve(name)
            if target is not None:
                self._names[(server, name)] = target

    def resolve(self, server: str, listed: str) -> tuple[str, str] | None:
        """The upstream tool behind `listed` on `server`, if a listing taught it."""
        return self._names.get((server, listed))
