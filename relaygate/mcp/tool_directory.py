"""Listed tool name -> `(member server, upstream tool)`, remembered from listings for `tools/call`.

A listed name is a pure function of the server, the member and the upstream name (`names.py`), but the
way back is not: `files_read` may be `files.read` upstream, and a 64-character name ends in a hash. So
each listing records its names here, and a call looks its name up; a name this process has not seen
(listed on another replica, or before a restart) makes the caller list the upstream once to learn it,
unless a listing of that server is fresher than `FRESH_SECONDS` (so guessed names cannot make every
call a listing). Bounded: it starts over past `limit` names.
"""

from __future__ import annotations

import time

from relaygate.mcp.names import ToolNames

DEFAULT_LIMIT = 50_000
FRESH_SECONDS = 30.0  # a name missing from a listing this recent is unknown: no new listing to look for it


class ToolDirectory:
    """Per process: (server the caller speaks to, listed name) -> (member server, upstream tool name)."""

    __slots__ = ("_names", "_learnt", "limit")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._names: dict[tuple[str, str], tuple[str, str]] = {}
        self._learnt: dict[str, float] = {}  # server -> when a listing last taught its names (monotonic)
        self.limit = limit

    def learn(self, server: str, names: ToolNames, listed: list[str], *, complete: bool = False) -> None:
        """Remember the way back of every name in one listing of `server`; `complete`: the listing held
        every tool (not one caller's filtered view), so a name missing from it is unknown for a while."""
        if len(self._names) + len(listed) > self.limit:
            self._names.clear()
            self._learnt.clear()
        if complete:
            self._learnt[server] = time.monotonic()
        for name in listed:
            target = names.resolve(name)
            if target is not None:
                self._names[(server, name)] = target

    def resolve(self, server: str, listed: str) -> tuple[str, str] | None:
        """The upstream tool behind `listed` on `server`, if a listing taught it."""
        return self._names.get((server, listed))

    def fresh(self, server: str) -> bool:
        """Whether a listing of `server` taught its names within the last FRESH_SECONDS."""
        learnt = self._learnt.get(server)
        return learnt is not None and time.monotonic() - learnt < FRESH_SECONDS
