"""MCP servers as the request path reads them (docs/mcp.md): compiled by `config/compile_mcp.py`.

`McpPolicy` answers the two access questions, so listing and calling cannot disagree:
- `may_use`: may this caller use this server at all (a collaborator subject, or a virtual account that
  lists the server in `allowed_mcp_servers`)?
- `tool_allowed`: may this caller use this tool of this server? The remote server's `tools` selector,
  a virtual server's own list, then the access rules (the first rule whose subjects and tools match
  decides, else the default). A tool reached through a virtual server must pass the remote server's
  selector and rules too, and then the virtual server's rules (over `{server}__{tool}`).
Decisions are memoised per snapshot in a bounded dict, so a listing of many tools by one caller costs
a dict lookup per tool after the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from relaygate.auth.access import VirtualAccountGrant

Transport = Literal["streamable-http", "sse"]
MEMO_LIMIT = 100_000  # decisions kept per snapshot before the memo starts over


@dataclass(frozen=True, slots=True)
class ToolSelector:
    """Compiled `tools: {include, exclude}` globs: exclude wins; without include every tool is selected."""

    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    def selects(self, tool: str) -> bool:
        if self.exclude is not None and self.exclude.match(tool):
            return False
        return self.include is None or self.include.match(tool) is not None


EVERY_TOOL = ToolSelector()


@dataclass(frozen=True, slots=True)
class ToolRule:
    """One access rule: callers with a subject in `subjects_in` (None: every caller) and none in
    `subjects_not_in`, tools matching `tools`; `allow` or deny."""

    tools: re.Pattern[str]
    allow: bool
    subjects_in: frozenset[str] | None = None
    subjects_not_in: frozenset[str] = frozenset()

    def applies(self, tool: str, subjects: frozenset[str]) -> bool:
        if self.subjects_in is not None and self.subjects_in.isdisjoint(subjects):
            return False
        if not self.subjects_not_in.isdisjoint(subjects):
            return False
        return self.tools.match(tool) is not None


@dataclass(frozen=True, slots=True)
class ToolAccess:
    """A server's access rules, first match wins, and what applies when none matches."""

    rules: tuple[ToolRule, ...] = ()
    default_allow: bool = True

    def allows(self, tool: str, subjects: frozenset[str]) -> bool:
        for rule in self.rules:
            if rule.applies(tool, subjects):
                return rule.allow
        return self.default_allow


OPEN_ACCESS = ToolAccess()


@dataclass(frozen=True, slots=True)
class McpServer:
    """A remote MCP server, resolved: where it is, what the gateway sends it, who may use which tools."""

    name: str
    url: str
    transport: Transport = "streamable-http"
    headers: tuple[tuple[str, str], ...] = ()  # `auth_data` headers, values resolved
    secrets: tuple[bytes, ...] = ()  # those values, scrubbed from anything relayed back
    forward_headers: frozenset[str] = frozenset()  # lower-case names copied from the client
    allow_client_headers: bool = False  # this server's entry of `x-tfy-mcp-headers` is accepted
    tools: ToolSelector = EVERY_TOOL
    access: ToolAccess = OPEN_ACCESS
    users: frozenset[str] = frozenset()  # collaborator subjects of either role (managers use it too)
    managers: frozenset[str] = frozenset()  # collaborator subjects with mcp-server-manager
    timeout_s: float = 60.0  # upstream inactivity timeout (not a bound on a call's total duration)
    cost_per_call_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class VirtualMember:
    """The tools a virtual server takes from one remote server (`tools` None: every tool it serves)."""

    server: str
    tools: frozenset[str] | None = None

    def lists(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools


@dataclass(frozen=True, slots=True)
class VirtualMcpServer:
    """Tools of several remote servers behind one name; listed as `{server}__{tool}`, in member order."""

    name: str
    members: tuple[VirtualMember, ...]
    access: ToolAccess = OPEN_ACCESS  # over `{server}__{tool}` (the upstream tool name)
    users: frozenset[str] = frozenset()
    managers: frozenset[str] = frozenset()

    def member(self, server: str) -> VirtualMember | None:
        return next((m for m in self.members if m.server == server), None)


@dataclass(frozen=True, slots=True, eq=False)
class McpPolicy:
    """Every MCP server of one config, by name (remote and virtual names never clash)."""

    servers: Mapping[str, McpServer] = field(default_factory=dict)
    virtual_servers: Mapping[str, VirtualMcpServer] = field(default_factory=dict)
    _decisions: dict[tuple[str, str | None, str, frozenset[str]], bool] = field(
        default_factory=dict, repr=False, compare=False
    )
    # Each remote server's transport client, made once per config by the MCP pipeline (which types it):
    # it holds the server's static headers and timeouts, so no request rebuilds them.
    clients: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.servers or self.virtual_servers)

    def server(self, name: str) -> McpServer | VirtualMcpServer | None:
        """The remote or virtual server called `name` (None: no such server)."""
        return self.servers.get(name) or self.virtual_servers.get(name)

    def may_use(self, name: str, subjects: frozenset[str], grant: VirtualAccountGrant | None = None) -> bool:
        """Whether a caller may use server `name` at all: one of its subjects is a collaborator, or its
        virtual-account grant lists the server in `allowed_mcp_servers`."""
        server = self.server(name)
        if server is None:
            return False
        if grant is not None and name in grant.mcp_servers:
            return True
        return not server.users.isdisjoint(subjects)

    def tool_allowed(self, name: str, tool: str, subjects: frozenset[str], member: str | None = None) -> bool:
        """Whether a caller with `subjects` may see and call `tool` on server `name`: THE decision for both
        `tools/list` and `tools/call`. `tool` is the upstream tool name; on a virtual server `member`
        names the remote server it comes from (required there, and `name` itself or None on a remote)."""
        if name not in self.servers and name not in self.virtual_servers:
            return False  # not memoised: guessed server names must not crowd out real decisions
        key = (name, member, tool, subjects)
        decided = self._decisions.get(key)
        if decided is None:
            decided = self._decide(name, tool, subjects, member)
            if len(self._decisions) >= MEMO_LIMIT:
                self._decisions.clear()
            self._decisions[key] = decided
        return decided

    def _decide(self, name: str, tool: str, subjects: frozenset[str], member: str | None) -> bool:
        remote = self.servers.get(name)
        if remote is not None:
            return member in (None, name) and _remote_allows(remote, tool, subjects)
        virtual = self.virtual_servers.get(name)
        if virtual is None or member is None:
            return False
        entry = virtual.member(member)
        backend = self.servers.get(member)
        if entry is None or backend is None or not entry.lists(tool):
            return False
        return _remote_allows(backend, tool, subjects) and virtual.access.allows(f"{member}__{tool}", subjects)


def _remote_allows(server: McpServer, tool: str, subjects: frozenset[str]) -> bool:
    return server.tools.selects(tool) and server.access.allows(tool, subjects)


NO_MCP = McpPolicy()
