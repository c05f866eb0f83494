"""`tools/list` as a caller sees it: only the tools it may call, under names a model accepts.

Both functions take the upstream's `tools` arrays and ask `McpPolicy.tool_allowed` (the one decision
`tools/call` asks too), so a tool a caller may not use is never listed. A single remote server keeps
its tools' names (normalised only when a model could not call them); a virtual server lists
`{server}__{tool}` in member order, then upstream order. Two tools that would share a listed name are
refused by `ToolNames`: the second is left out and reported, never dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from relaygate.mcp.names import ToolNameCollision, ToolNames
from relaygate.runtime.mcp import McpPolicy

log = logging.getLogger("relaygate.mcp")


def listed_tools(
    policy: McpPolicy,
    name: str,
    subjects: frozenset[str],
    listings: Sequence[tuple[str, Sequence[Any]]],
    *,
    prefixed: bool,
) -> tuple[list[dict[str, Any]], ToolNames]:
    """The tools to list from `(member server, tools)` pairs, renamed, and the names' way back.

    `name` is the server the caller speaks to (a remote server, or a virtual one when `prefixed`).
    """
    names = ToolNames(prefixed=prefixed)
    out: list[dict[str, Any]] = []
    for member, tools in listings:
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            upstream = tool["name"]
            if not policy.tool_allowed(name, upstream, subjects, member if prefixed else None):
                continue
            try:
                listed = names.add(member, upstream)
            except ToolNameCollision as exc:
                log.warning("MCP server %s: %s; the second is not listed", name, exc)
                continue
            out.append(tool if listed == upstream else {**tool, "name": listed})
    return out, names


def every_name(listings: Sequence[tuple[str, Sequence[Any]]], *, prefixed: bool) -> ToolNames:
    """The names of every tool of a listing, whoever may use them (how a call finds its tool; access
    is then asked for that one caller); a collision keeps the first, as a listing does."""
    names = ToolNames(prefixed=prefixed)
    for member, tools in listings:
        for tool in tools:
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                try:
                    names.add(member, tool["name"])
                except ToolNameCollision:
                    continue
    return names
