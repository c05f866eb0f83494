"""MCP server manifests -> `runtime.mcp.McpPolicy`, once per config load.

Globs become compiled regexes, credentials plain header values (and the raw values to scrub), the
`default_action` its effective value (docs/mcp.md), and each URL passes the same outbound check as
every other upstream (no metadata address, not the gateway itself).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from relaygate.config.outbound import OutboundCheck
from relaygate.config.problems import Problem
from relaygate.config.schema import Manifests
from relaygate.config.schema_common import secret_value
from relaygate.config.schema_mcp import AccessRule, McpCollaborator, McpRemoteServer, McpVirtualServer, ToolSelector
from relaygate.runtime.matching import glob_pattern
from relaygate.runtime.mcp import (
    NO_MCP,
    McpPolicy,
    McpServer,
    ToolAccess,
    ToolRule,
    VirtualMcpServer,
    VirtualMember,
)
from relaygate.runtime.mcp import ToolSelector as CompiledSelector

FileOf = Callable[[McpRemoteServer | McpVirtualServer], str]


def compile_mcp(manifests: Manifests, outbound: OutboundCheck, file_of: FileOf) -> tuple[McpPolicy, list[Problem]]:
    """The config's MCP servers, and the URLs the outbound check refuses."""
    if not manifests.mcp_servers and not manifests.virtual_mcp_servers:
        return NO_MCP, []
    problems: list[Problem] = []
    servers: dict[str, McpServer] = {}
    for server in manifests.mcp_servers:
        rule = outbound.problem(server.url)
        if rule is not None:
            problems.append(Problem(file_of(server), f"{server.type} {server.name}", "url", rule))
            continue
        servers[server.name] = _remote(server)
    virtual = {server.name: _virtual(server) for server in manifests.virtual_mcp_servers}
    return McpPolicy(servers=servers, virtual_servers=virtual), problems


def _remote(server: McpRemoteServer) -> McpServer:
    auth = server.auth_data.headers if server.auth_data is not None else {}
    headers = tuple((name, secret_value(value)) for name, value in auth.items())
    users, managers = _roles(server.collaborators)
    return McpServer(
        name=server.name,
        url=server.url,
        transport=server.transport,
        headers=headers,
        secrets=_secrets(value for _, value in headers),
        forward_headers=frozenset(h.lower() for h in server.forward_headers),
        allow_client_headers=server.allow_client_headers,
        tools=_selector(server.tools),
        access=_access(server.access_rules, server.effective_default),
        users=users,
        managers=managers,
        timeout_s=server.timeout_ms / 1000.0,
        cost_per_call_usd=server.cost_per_call_usd,
    )


def _secrets(values: Iterable[str]) -> tuple[bytes, ...]:
    """Each credential value, and the token of a `<scheme> <token>` value (an upstream may echo the bare
    token), longest first so a value containing another is scrubbed whole."""
    found: set[bytes] = set()
    for value in values:
        for part in (value, value.partition(" ")[2].strip()):
            if len(part) >= 4:
                found.add(part.encode())
    return tuple(sorted(found, key=len, reverse=True))


def _virtual(server: McpVirtualServer) -> VirtualMcpServer:
    users, managers = _roles(server.collaborators)
    return VirtualMcpServer(
        name=server.name,
        members=tuple(
            VirtualMember(m.mcp_server_id, None if m.every_tool else frozenset(m.tools)) for m in server.mcp_servers
        ),
        access=_access(server.access_rules, server.effective_default),
        users=users,
        managers=managers,
    )


def _roles(collaborators: Iterable[McpCollaborator]) -> tuple[frozenset[str], frozenset[str]]:
    """(every collaborator subject, the managers): a manager may use the server too."""
    listed = tuple(collaborators)
    return (
        frozenset(c.subject for c in listed),
        frozenset(c.subject for c in listed if c.role_id == "mcp-server-manager"),
    )


def _selector(selector: ToolSelector) -> CompiledSelector:
    return CompiledSelector(
        include=glob_pattern(selector.include) if selector.include else None,
        exclude=glob_pattern(selector.exclude) if selector.exclude else None,
    )


def _access(rules: Iterable[AccessRule], default: str) -> ToolAccess:
    return ToolAccess(
        rules=tuple(
            ToolRule(
                tools=glob_pattern(rule.tools),
                allow=rule.action == "allow",
                subjects_in=frozenset(rule.subjects.in_)
                if rule.subjects is not None and rule.subjects.in_ is not None
                else None,
                subjects_not_in=frozenset(rule.subjects.not_in) if rule.subjects is not None else frozenset(),
            )
            for rule in rules
        ),
        default_allow=default == "allow",
    )
