"""MCP server manifests (docs/mcp.md "Manifests"), TrueFoundry's names, next-capabilities §5.8.

- `mcp-server/remote`: one upstream MCP server: its URL and transport, the credentials the gateway
  sends it (`auth_data`, never the caller's token), which client headers it may receive
  (`forward_headers`, `allow_client_headers`), which of its tools are served at all (`tools`), who may
  use it (`collaborators`) and which tools each caller may use (`access_rules`, `default_action`).
- `mcp-server/virtual`: tools drawn from several remote servers, listed as `{server}__{tool}`.

Access, in order (one function, `runtime.mcp.McpPolicy`, decides both listing and calling):
1. the server: a collaborator subject (`mcp-server-user` or `mcp-server-manager`), or a virtual
   account listing the server in `allowed_mcp_servers`;
2. the tool: the remote server's `tools` selector (`exclude` wins over `include`; an empty `include`
   selects every tool), a virtual server's own list, then `access_rules`, the first rule whose
   subjects and tools match deciding, else `default_action`.
`default_action` defaults to `deny` when `access_rules` are written (rules then say what is allowed,
as Envoy's `authorization` does) and to `allow` when none are (the collaborators alone decide), so a
server without rules serves every selected tool to whoever may use it, and adding one allow rule
never opens tools to callers it does not name. A remote server's rules also apply when its tools are
reached through a virtual server (a virtual server narrows, it never widens).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from relaygate.config.problems import Loc, RuleViolation
from relaygate.config.schema_common import (
    HeaderAuth,
    HeaderName,
    ManifestBase,
    StrictModel,
    Subject,
    check_http_url,
    no_duplicates,
)
from relaygate.mcp.header_names import forward_header_reason, transport_header_reason

MCP_SERVER_NAME_RE = re.compile(r"^[a-z0-9-]{1,32}$")
# A tool name or glob as written: MCP names are 1-128 characters; anything printable but spaces.
_TOOL_TEXT_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")
DEFAULT_TIMEOUT_MS = 60_000


def _server_name(value: str) -> str:
    if not MCP_SERVER_NAME_RE.match(value):
        raise ValueError(
            "must be 1-32 lowercase letters, digits or hyphens (^[a-z0-9-]{1,32}$): it prefixes tool names"
        )
    return value


def _tool_text(value: str) -> str:
    if not _TOOL_TEXT_RE.match(value):
        raise ValueError("must be 1-128 characters without spaces or control characters")
    return value


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    violations = no_duplicates(values, "entry")
    if violations:
        raise RuleViolation(violations)
    return values


def _mcp_url(value: str) -> str:
    """An http(s) URL as written: a trailing slash is kept (an MCP endpoint's path is exact)."""
    check_http_url(value)
    return value


McpServerName = Annotated[str, AfterValidator(_server_name)]
ToolGlob = Annotated[str, AfterValidator(_tool_text)]
ToolGlobs = Annotated[tuple[ToolGlob, ...], AfterValidator(_unique)]
McpServerNames = Annotated[tuple[McpServerName, ...], AfterValidator(_unique)]


def _forward_headers(values: tuple[str, ...]) -> tuple[str, ...]:
    violations: list[tuple[Loc, str]] = []
    for i, name in enumerate(values):
        reason = forward_header_reason(name)
        if reason is not None:
            violations.append(((i,), reason))
    first: dict[str, int] = {}
    for i, name in enumerate(values):
        seen = first.setdefault(name.lower(), i)
        if seen != i:
            violations.append(((i,), f"duplicate header name (same as forward_headers[{seen}]; names ignore case)"))
    if violations:
        raise RuleViolation(violations)
    return values


def _upstream_auth(auth: HeaderAuth) -> HeaderAuth:
    violations: list[tuple[Loc, str]] = []
    for name in auth.headers:
        reason = transport_header_reason(name)
        if reason is not None:
            violations.append((("headers", name), reason))
    if violations:
        raise RuleViolation(violations)
    return auth


class ToolSelector(StrictModel):
    """Which upstream tools the gateway serves at all (globs; `exclude` wins; no `include`: every tool)."""

    include: ToolGlobs = ()
    exclude: ToolGlobs = ()


class SubjectMatch(StrictModel):
    """A rule's callers: any subject in `in` (absent: everyone) and none in `not_in`."""

    in_: Annotated[tuple[Subject, ...], AfterValidator(_unique)] | None = Field(default=None, alias="in")
    not_in: Annotated[tuple[Subject, ...], AfterValidator(_unique)] = ()


def _subjects_shape(value: Any) -> Any:
    """A plain list of subjects means `{in: [...]}`."""
    if isinstance(value, list | tuple):
        return {"in": list(value)}
    return value


class AccessRule(StrictModel):
    """One tool-level rule: these callers, these tools, allowed or denied. The first match decides."""

    subjects: Annotated[SubjectMatch | None, BeforeValidator(_subjects_shape)] = None  # None: every caller
    tools: Annotated[ToolGlobs, Field(min_length=1)] = ("*",)
    action: Literal["allow", "deny"]


class McpCollaborator(StrictModel):
    """Who may use (`mcp-server-user`) or also manage (`mcp-server-manager`) an MCP server."""

    subject: Subject
    role_id: Literal["mcp-server-user", "mcp-server-manager"]


class _McpServerBase(ManifestBase):
    """What remote and virtual servers share: the name (one namespace), who may use it, tool rules."""

    name: McpServerName
    description: str | None = None
    collaborators: tuple[McpCollaborator, ...] = ()
    access_rules: tuple[AccessRule, ...] = ()
    default_action: Literal["allow", "deny"] | None = None  # None: deny with access_rules, else allow

    @property
    def effective_default(self) -> Literal["allow", "deny"]:
        """`default_action` as written, else deny when rules are written and allow when none are."""
        if self.default_action is not None:
            return self.default_action
        return "deny" if self.access_rules else "allow"

    @model_validator(mode="after")
    def _check_collaborators(self) -> Self:
        subjects = [c.subject for c in self.collaborators]
        violations = no_duplicates(subjects, "subject", ("collaborators",), ("subject",))
        if violations:
            raise RuleViolation(violations)
        return self


class McpRemoteServer(_McpServerBase):
    """One upstream MCP server, reached over Streamable HTTP (or the legacy HTTP+SSE transport)."""

    type: Literal["mcp-server/remote"]
    url: Annotated[str, AfterValidator(_mcp_url)]
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    auth_data: Annotated[HeaderAuth, AfterValidator(_upstream_auth)] | None = None
    forward_headers: Annotated[tuple[HeaderName, ...], AfterValidator(_forward_headers)] = ()
    allow_client_headers: bool = False  # accept this server's entry of `x-tfy-mcp-headers`
    tools: ToolSelector = ToolSelector()
    timeout_ms: int = Field(default=DEFAULT_TIMEOUT_MS, gt=0, le=3_600_000)  # silence, not total duration
    cost_per_call_usd: float = Field(default=0.0, ge=0)


class VirtualMember(StrictModel):
    """The tools a virtual server takes from one remote server: names, or `"*"` for all it serves."""

    mcp_server_id: McpServerName
    tools: Annotated[ToolGlobs, Field(min_length=1)] = ("*",)

    @model_validator(mode="after")
    def _star_alone(self) -> Self:
        if "*" in self.tools and len(self.tools) > 1:
            raise RuleViolation([(("tools",), '"*" already takes every tool: list names or "*" alone')])
        bad = [
            (("tools", i), 'must be a tool name or "*" alone (globs are written in the remote server\'s tools)')
            for i, tool in enumerate(self.tools)
            if tool != "*" and any(c in tool for c in "*?[")
        ]
        if bad:
            raise RuleViolation(bad)
        return self

    @property
    def every_tool(self) -> bool:
        return self.tools == ("*",)


class McpVirtualServer(_McpServerBase):
    """Tools of several remote servers behind one endpoint, each listed as `{server}__{tool}`.

    Its `access_rules` match tools by `{server}__{tool}` with the upstream tool name (before the listed
    name is normalised), so `github__*` covers every tool it takes from `github`."""

    type: Literal["mcp-server/virtual"]
    mcp_servers: Annotated[tuple[VirtualMember, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _each_server_once(self) -> Self:
        servers = [m.mcp_server_id for m in self.mcp_servers]
        what = "server (list its tools in one entry)"
        violations = no_duplicates(servers, what, ("mcp_servers",), ("mcp_server_id",))
        if violations:
            raise RuleViolation(violations)
        return self
