"""Model-safe tool names: what a client sees for an upstream tool, and the way back.

Model APIs accept tool names matching `^[A-Za-z0-9_-]{1,64}$`, while MCP allows dots and up to 128
characters, and an aggregated `{server}__{tool}` name is longer still. Peers drop such tools or break
clients; Relaygate rewrites the name deterministically instead (next-capabilities §5.8 step 10):
characters outside `[A-Za-z0-9_-]` become `_`, and a result over 64 characters keeps its first 55
characters plus `_` plus 8 hex digits of the SHA-256 of the original name. The same input always gives
the same name on every replica, so no mapping has to be stored; `ToolNames` records the way back for
one listing and refuses two tools that would share a name (never silently dropping one).
"""

from __future__ import annotations

import hashlib
import re

MAX_TOOL_NAME = 64
_KEPT = 55  # characters kept before `_` and the 8-hex-digit hash when a name is too long
_HASH_DIGITS = 8
_OUTSIDE = re.compile(r"[^A-Za-z0-9_-]")
SEPARATOR = "__"  # between the server name and the tool name of an aggregated tool


def normalise_tool_name(name: str) -> str:
    """`name` rewritten to `[A-Za-z0-9_-]{..64}`; a name already safe is returned unchanged."""
    safe = _OUTSIDE.sub("_", name)
    if len(safe) <= MAX_TOOL_NAME:
        return safe
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]
    return f"{safe[:_KEPT]}_{digest}"


def prefixed_tool_name(server: str, tool: str) -> str:
    """The name a virtual server lists for `tool` of `server`: `{server}__{tool}`, normalised."""
    return normalise_tool_name(f"{server}{SEPARATOR}{tool}")


class ToolNameCollision(ValueError):
    """Two upstream tools would be listed under one name; says which two, so neither is lost silently."""

    def __init__(self, name: str, first: tuple[str, str], second: tuple[str, str]) -> None:
        self.name = name
        self.first = first
        self.second = second
        super().__init__(
            f"tools {first[0]}/{first[1]} and {second[0]}/{second[1]} would both be listed as {name!r} "
            "(names are normalised to [A-Za-z0-9_-], at most 64 characters); rename one upstream or "
            "leave one out of the server's tools"
        )


class ToolNames:
    """The listed name -> `(server, tool)` of one listing, built as the listing is assembled.

    `prefixed` (virtual servers) lists `{server}__{tool}`; otherwise (a single remote server) the tool
    name alone, normalised the same way so a model can still call it.
    """

    __slots__ = ("prefixed", "_by_name", "_by_tool")

    def __init__(self, *, prefixed: bool = True) -> None:
        self.prefixed = prefixed
        self._by_name: dict[str, tuple[str, str]] = {}
        self._by_tool: dict[tuple[str, str], str] = {}

    def add(self, server: str, tool: str) -> str:
        """Record `tool` of `server` and return the name to list; raises `ToolNameCollision` when
        another tool already has that name (adding the same tool twice returns its name again)."""
        key = (server, tool)
        known = self._by_tool.get(key)
        if known is not None:
            return known
        name = prefixed_tool_name(server, tool) if self.prefixed else normalise_tool_name(tool)
        first = self._by_name.get(name)
        if first is not None:
            raise ToolNameCollision(name, first, key)
        self._by_name[name] = key
        self._by_tool[key] = name
        return name

    def resolve(self, name: str) -> tuple[str, str] | None:
        """`(server, tool)` of a listed name; None for a name this listing does not hold."""
        return self._by_name.get(name)

    def name_of(self, server: str, tool: str) -> str | None:
        """The listed name of an upstream tool, if it was added."""
        return self._by_tool.get((server, tool))

    def listed(self) -> list[str]:
        """Every listed name, in the order added."""
        return list(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
