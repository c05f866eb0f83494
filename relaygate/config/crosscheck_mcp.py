"""Rules across MCP server manifests and the manifests that name them, and their warnings.

Problems (the config is refused), each at its field:
- a name used by both a remote and a virtual server (one namespace: `/mcp/{name}`);
- a virtual server drawing from a server that is not a declared remote server, naming a tool its
  remote server's `tools` selector excludes (it could never be listed), or listing two tools whose
  `{server}__{tool}` names collide after normalisation (both are named);
- `allowed_mcp_servers` of a virtual account, and `when.mcp_servers` of a limit rule, naming an
  undeclared server (`server:tool` must name a remote server, whose selector must serve the tool).
Subjects of collaborators and access rules are checked with every other subject (`crosscheck`).
Warnings (`relaygate check` says them, the config loads): a server nobody may use (no collaborator,
no virtual account listing it, no virtual server drawing from it), and a guardrail rule whose
`mcpServers` names no declared server.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relaygate.config.problems import Loc, Problem, format_path
from relaygate.config.schema_governance import VirtualAccount
from relaygate.config.schema_guardrails import GuardrailsConfig
from relaygate.config.schema_mcp import McpRemoteServer, McpVirtualServer, ToolSelector
from relaygate.mcp.names import ToolNameCollision, ToolNames

if TYPE_CHECKING:
    from relaygate.config.crosscheck import Located

REMOTE = "mcp-server/remote"
VIRTUAL = "mcp-server/virtual"


def selects(selector: ToolSelector, tool: str) -> bool:
    """Whether a remote server's `tools` selector serves `tool` (exclude wins; no include: all)."""
    if any(fnmatch.fnmatchcase(tool, pattern) for pattern in selector.exclude):
        return False
    return not selector.include or any(fnmatch.fnmatchcase(tool, pattern) for pattern in selector.include)


def _not_served(server: str, tool: str) -> str:
    return f"MCP server {server!r} does not serve tool {tool!r} (its tools selector leaves it out)"


@dataclass(frozen=True, slots=True)
class McpNames:
    """The MCP servers of a load by name, and the names of those refused on their own."""

    remote: Mapping[str, McpRemoteServer]
    virtual: Mapping[str, McpVirtualServer]
    broken: frozenset[str]

    def known(self, name: str) -> bool:
        return name in self.remote or name in self.virtual or name in self.broken

    def server_reference(self, name: str, loc: Loc) -> list[tuple[Loc, str]]:
        """`allowed_mcp_servers` entries: a declared remote or virtual server."""
        if self.known(name):
            return []
        return [(loc, f"MCP server {name!r} is not declared (add a mcp-server/remote or mcp-server/virtual manifest)")]

    def limit_target(self, target: str, loc: Loc) -> list[tuple[Loc, str]]:
        """`when.mcp_servers` entries: `*`, a declared server, or `remote:tool` for a tool it serves."""
        if target == "*":
            return []
        name, sep, tool = target.partition(":")
        if not sep:
            return self.server_reference(name, loc)
        if name in self.broken:
            return []
        if name in self.virtual:
            return [
                (
                    loc,
                    f"{name!r} is a virtual server: a tool-level rule names the remote server the tool "
                    "comes from (server:tool), and applies wherever the tool is reached",
                )
            ]
        remote = self.remote.get(name)
        if remote is None:
            return self.server_reference(name, loc)
        if not selects(remote.tools, tool):
            return [(loc, _not_served(name, tool))]
        return []


def mcp_names(entries: Sequence[Located], broken: Iterable[tuple[str, str]]) -> McpNames:
    """The index `crosscheck` and the checks here share."""
    remote: dict[str, McpRemoteServer] = {}
    virtual: dict[str, McpVirtualServer] = {}
    for entry in entries:
        m = entry.manifest
        if isinstance(m, McpRemoteServer):
            remote.setdefault(m.name, m)
        elif isinstance(m, McpVirtualServer):
            virtual.setdefault(m.name, m)
    refused = frozenset(name for kind, name in broken if kind in (REMOTE, VIRTUAL))
    return McpNames(remote, virtual, refused)


def mcp_problems(entries: Sequence[Located], names: McpNames) -> list[Problem]:
    """Shared names, and the members of every virtual server."""
    problems: list[Problem] = []
    first: dict[str, Located] = {}
    for entry in entries:
        m = entry.manifest
        if not isinstance(m, McpRemoteServer | McpVirtualServer):
            continue
        seen = first.setdefault(m.name, entry)
        if seen.manifest.type != m.type:
            rule = (
                f"MCP server name already used by {seen.label} in {seen.file} "
                "(remote and virtual servers share one namespace: /mcp/{name})"
            )
            problems.append(Problem(entry.file, entry.label, "name", rule))
        if isinstance(m, McpVirtualServer):
            problems += [Problem(entry.file, entry.label, format_path(loc), rule) for loc, rule in _members(m, names)]
    return problems


def _members(server: McpVirtualServer, names: McpNames) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    listed = ToolNames(prefixed=True)
    where: dict[tuple[str, str], Loc] = {}
    for i, member in enumerate(server.mcp_servers):
        loc: Loc = ("mcp_servers", i)
        remote = names.remote.get(member.mcp_server_id)
        if remote is None:
            if member.mcp_server_id in names.virtual:
                rule = "must name a remote server (a virtual server cannot draw from another)"
                out.append(((*loc, "mcp_server_id"), rule))
            elif member.mcp_server_id not in names.broken:
                rule = f"MCP server {member.mcp_server_id!r} is not declared (add a mcp-server/remote manifest)"
                out.append(((*loc, "mcp_server_id"), rule))
            continue
        if member.every_tool:
            continue
        for j, tool in enumerate(member.tools):
            tool_loc: Loc = (*loc, "tools", j)
            if not selects(remote.tools, tool):
                out.append((tool_loc, _not_served(remote.name, tool)))
                continue
            try:
                listed.add(remote.name, tool)
            except ToolNameCollision as collision:
                out.append((tool_loc, f"{collision} (the other is at {format_path(where[collision.first])})"))
                continue
            where[(remote.name, tool)] = tool_loc
    return out


def mcp_warnings(entries: Sequence[Located]) -> list[Problem]:
    """Servers nobody may use, and guardrail rules naming no declared server."""
    names = mcp_names(entries, ())
    granted = {n for e in entries if isinstance(e.manifest, VirtualAccount) for n in e.manifest.allowed_mcp_servers}
    members = {m.mcp_server_id for v in names.virtual.values() for m in v.mcp_servers}
    warnings: list[Problem] = []
    for entry in entries:
        m = entry.manifest
        if isinstance(m, McpRemoteServer | McpVirtualServer):
            if not m.collaborators and m.name not in granted and m.name not in members:
                warnings.append(
                    Problem(
                        entry.file,
                        entry.label,
                        "collaborators",
                        "nobody may use this server: add collaborators (role_id mcp-server-user), list it in "
                        "a virtual account's allowed_mcp_servers, or draw from it in a virtual server",
                    )
                )
        if isinstance(m, GuardrailsConfig):
            for i, rule in enumerate(m.rules):
                target = rule.when.target
                servers = target.conditions.mcpServers if target is not None else None
                for j, ref in enumerate(servers or ()):
                    name = ref.partition(":")[0]
                    if not names.known(name):
                        warnings.append(
                            Problem(
                                entry.file,
                                entry.label,
                                format_path(("rules", i, "when", "target", "conditions", "mcpServers", j)),
                                f"MCP server {name!r} is not declared: this condition never matches a tool call",
                            )
                        )
    return warnings
