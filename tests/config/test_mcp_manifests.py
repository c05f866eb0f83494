"""MCP server manifests through the loader, the compiler and `relaygate check`: what loads and what the
request path then decides (who may use a server, which tools each caller may see and call, which limits
an MCP call falls under), what is refused (naming the field), and what is warned about."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from relaygate.auth.access import Principal
from relaygate.cli import main
from relaygate.config.compile import compile_manifests
from relaygate.config.loader import load_text
from relaygate.config.masking import snapshot_secrets
from relaygate.config.problems import ConfigError
from relaygate.runtime.mcp import McpServer, VirtualMcpServer
from relaygate.runtime.snapshot import Snapshot
from tests.runtime.test_pydantic_free import _pydantic, _reachable

TOKEN = "ghp-upstream-secret-value"
ENV = {"GITHUB_TOKEN": TOKEN}

TEAMS = """
type: team
name: eng
members: [alice@example.com, bob@example.com]
---
type: team
name: support
members: [sam@example.com]
---
"""
IDENTITIES = TEAMS + "type: virtual-account\nname: agent\nallowed_mcp_servers: [github]\n---\n"

GITHUB = """
type: mcp-server/remote
name: github
url: https://api.githubcopilot.com/mcp/
auth_data: {type: header, headers: {Authorization: "Bearer ${GITHUB_TOKEN}"}}
forward_headers: [X-Tenant-Id]
allow_client_headers: true
tools: {exclude: ["delete_*"]}
collaborators:
  - {subject: team:eng, role_id: mcp-server-user}
  - {subject: team:support, role_id: mcp-server-user}
  - {subject: user:carol@example.com, role_id: mcp-server-manager}
access_rules:
  - {subjects: {in: [team:eng], not_in: [user:bob@example.com]}, tools: ["*"], action: allow}
  - {subjects: [team:support], tools: [search_issues, "get_*"], action: allow}
  - {tools: [search_issues], action: allow}
default_action: deny
timeout_ms: 30000
cost_per_call_usd: 0.01
---
"""

JIRA = """
type: mcp-server/remote
name: jira
url: http://jira.internal:8080/mcp
transport: sse
---
"""

DEV_TOOLS = """
type: mcp-server/virtual
name: dev-tools
mcp_servers:
  - {mcp_server_id: github, tools: [search_issues, get_issue, create_issue]}
  - {mcp_server_id: jira, tools: ["*"]}
collaborators: [{subject: team:everyone, role_id: mcp-server-user}]
access_rules:
  - {subjects: [team:support], tools: ["jira__*"], action: deny}
default_action: allow
"""

ALICE = frozenset({"user:alice@example.com", "team:eng", "team:everyone"})
BOB = frozenset({"user:bob@example.com", "team:eng", "team:everyone"})
SAM = frozenset({"user:sam@example.com", "team:support", "team:everyone"})
DAVE = frozenset({"user:dave@example.com", "team:everyone"})
AGENT = frozenset({"virtualaccount:agent"})


def _snapshot(text: str, env: dict[str, str] | None = None) -> Snapshot:
    return compile_manifests(load_text(text, "mcp.yaml", env=ENV if env is None else env))


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        compile_manifests(load_text(text, "mcp.yaml", env=ENV))
    return [f"{p.field}: {p.rule}" for p in caught.value.problems]


def _principal(snapshot: Snapshot, subject: str) -> Principal:
    return snapshot.principal(SimpleNamespace(id=f"tok-{subject}", subject=subject))


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return _snapshot(IDENTITIES + GITHUB + JIRA + DEV_TOOLS)


# --- compiled servers --------------------------------------------------------------------------------


def test_a_remote_server_compiles_to_plain_resolved_values(snapshot: Snapshot) -> None:
    github = snapshot.mcp.server("github")
    assert isinstance(github, McpServer)
    assert github.url == "https://api.githubcopilot.com/mcp/"  # the trailing slash of an MCP path is kept
    assert github.transport == "streamable-http"  # the default
    assert github.headers == (("Authorization", f"Bearer {TOKEN}"),)
    assert TOKEN.encode() in github.secrets  # scrubbed from anything relayed back
    assert github.forward_headers == frozenset({"x-tenant-id"})
    assert github.allow_client_headers is True
    assert github.timeout_s == 30.0 and github.cost_per_call_usd == 0.01
    assert github.managers == frozenset({"user:carol@example.com"})
    assert github.users == frozenset({"team:eng", "team:support", "user:carol@example.com"})


def test_defaults_of_a_bare_remote_server(snapshot: Snapshot) -> None:
    jira = snapshot.mcp.server("jira")
    assert isinstance(jira, McpServer)
    assert jira.transport == "sse"
    assert jira.headers == () and jira.secrets == () and jira.forward_headers == frozenset()
    assert jira.allow_client_headers is False
    assert jira.timeout_s == 60.0 and jira.cost_per_call_usd == 0.0


def test_a_virtual_server_compiles_its_members_in_order(snapshot: Snapshot) -> None:
    dev = snapshot.mcp.server("dev-tools")
    assert isinstance(dev, VirtualMcpServer)
    assert [(m.server, m.tools) for m in dev.members] == [
        ("github", frozenset({"search_issues", "get_issue", "create_issue"})),
        ("jira", None),
    ]
    assert snapshot.mcp.server("nope") is None


def test_the_compiled_policy_holds_no_pydantic_object(snapshot: Snapshot) -> None:
    assert _pydantic(list(_reachable(snapshot.mcp))) == []
    assert _pydantic(list(_reachable(snapshot.virtual_accounts["agent"]))) == []


def test_an_mcp_only_config_serves_something() -> None:
    snapshot = _snapshot(
        JIRA.replace("---\n", "") + "collaborators: [{subject: team:everyone, role_id: mcp-server-user}]\n"
    )
    assert snapshot.serves_anything
    assert not [w for w in snapshot.warnings if "nothing to serve" in w]
    assert "1 MCP servers" in snapshot.summary()


# --- who may use a server ----------------------------------------------------------------------------


def test_collaborators_of_either_role_may_use_a_server(snapshot: Snapshot) -> None:
    mcp = snapshot.mcp
    assert mcp.may_use("github", ALICE)
    assert mcp.may_use("github", SAM)
    assert mcp.may_use("github", frozenset({"user:carol@example.com", "team:everyone"}))  # a manager
    assert not mcp.may_use("github", DAVE)
    assert not mcp.may_use("jira", ALICE)  # no collaborators: nobody but virtual accounts listing it
    assert mcp.may_use("dev-tools", DAVE)  # team:everyone
    assert not mcp.may_use("unknown", ALICE)


def test_a_virtual_account_may_use_what_allowed_mcp_servers_lists(snapshot: Snapshot) -> None:
    agent = _principal(snapshot, "virtualaccount:agent")
    assert agent.grant is not None and agent.grant.mcp_servers == frozenset({"github"})
    assert snapshot.mcp.may_use("github", agent.subjects, agent.grant)
    assert not snapshot.mcp.may_use("dev-tools", agent.subjects, agent.grant)  # team:everyone holds users only
    assert not snapshot.mcp.may_use("jira", agent.subjects, agent.grant)


# --- which tools: one decision for listing and calling -----------------------------------------------


def test_exclude_wins_over_every_allow_rule(snapshot: Snapshot) -> None:
    assert snapshot.mcp.tool_allowed("github", "create_issue", ALICE)
    assert not snapshot.mcp.tool_allowed("github", "delete_repo", ALICE)


def test_access_rules_first_match_wins_then_the_default(snapshot: Snapshot) -> None:
    mcp = snapshot.mcp
    assert mcp.tool_allowed("github", "create_issue", ALICE)  # rule 0
    assert not mcp.tool_allowed("github", "create_issue", BOB)  # not_in excludes bob from rule 0
    assert mcp.tool_allowed("github", "search_issues", BOB)  # rule 2: every caller
    assert mcp.tool_allowed("github", "get_pull_request", SAM)  # rule 1 glob
    assert not mcp.tool_allowed("github", "create_issue", SAM)  # no rule: default deny
    assert mcp.tool_allowed("github", "search_issues", DAVE)
    assert not mcp.tool_allowed("github", "get_issue", DAVE)


def test_the_default_is_deny_with_rules_and_allow_without() -> None:
    base = TEAMS + JIRA.replace("---\n", "")
    open_server = _snapshot(base).mcp
    assert open_server.tool_allowed("jira", "anything", DAVE)
    ruled = _snapshot(base + "access_rules: [{subjects: [team:eng], tools: [search], action: allow}]\n").mcp
    assert ruled.tool_allowed("jira", "search", ALICE)
    assert not ruled.tool_allowed("jira", "search", DAVE)
    assert not ruled.tool_allowed("jira", "other", ALICE)
    explicit = _snapshot(
        base + "access_rules: [{subjects: [team:support], tools: ['*'], action: deny}]\ndefault_action: allow\n"
    ).mcp
    assert explicit.tool_allowed("jira", "search", ALICE)
    assert not explicit.tool_allowed("jira", "search", SAM)


def test_a_virtual_server_serves_only_its_listed_tools_within_the_remote_rules(snapshot: Snapshot) -> None:
    mcp = snapshot.mcp
    assert mcp.tool_allowed("dev-tools", "search_issues", DAVE, member="github")
    assert not mcp.tool_allowed("dev-tools", "get_issue", DAVE, member="github")  # github's rules deny dave
    assert mcp.tool_allowed("dev-tools", "get_issue", SAM, member="github")
    assert not mcp.tool_allowed("dev-tools", "list_repos", ALICE, member="github")  # not in the virtual list
    assert mcp.tool_allowed("dev-tools", "anything", ALICE, member="jira")  # "*"
    assert not mcp.tool_allowed("dev-tools", "anything", SAM, member="jira")  # the virtual server's own rule
    assert not mcp.tool_allowed("dev-tools", "search_issues", ALICE)  # a virtual server needs the member
    assert not mcp.tool_allowed("dev-tools", "search_issues", ALICE, member="slack")  # not a member
    assert not mcp.tool_allowed("github", "search_issues", ALICE, member="jira")  # a remote is its own member
    assert not mcp.tool_allowed("nope", "search_issues", ALICE)


def test_decisions_are_memoised_and_stay_the_same(snapshot: Snapshot) -> None:
    mcp = snapshot.mcp
    first = [mcp.tool_allowed("github", tool, BOB) for tool in ("search_issues", "create_issue", "delete_x")]
    again = [mcp.tool_allowed("github", tool, BOB) for tool in ("search_issues", "create_issue", "delete_x")]
    assert first == again == [True, False, False]


# --- limits on MCP calls ------------------------------------------------------------------------------

LIMITS = """
---
type: gateway-rate-limiting-config
name: limits
rules:
  - {id: models-only, limit_to: 100, unit: requests_per_minute}
  - {id: every-mcp, when: {mcp_servers: ["*"]}, limit_to: 1000, unit: requests_per_minute}
  - id: github-search
    when: {mcp_servers: ["github:search_issues"], subjects: [team:eng]}
    limit_to: 10
    unit: requests_per_minute
    rate_limit_applies_per: [user, model]
  - {id: via-dev-tools, when: {mcp_servers: [dev-tools]}, limit_to: 50, unit: requests_per_hour}
  - {id: jira-all, when: {mcp_servers: [jira], metadata: {env: prod}}, limit_to: 5, unit: requests_per_day}
---
type: gateway-budget-config
name: budgets
rules:
  - {id: github-spend, when: {mcp_servers: [github]}, limit_to: 5, unit: cost_per_day}
"""


def test_mcp_rules_match_mcp_calls_and_model_rules_match_model_calls() -> None:
    snapshot = _snapshot(IDENTITIES + GITHUB + JIRA + DEV_TOOLS + LIMITS)
    alice = _principal(snapshot, "user:alice@example.com")
    limits = snapshot.limits
    assert limits.match(alice, "openai-main/gpt-4o", {}).rate_limit_ids == ("models-only",)
    plan = limits.match_mcp("github", "search_issues", alice, {})
    assert plan.rate_limit_ids == ("every-mcp", "github-search")
    assert plan.budget_ids == ("github-spend",) and plan.needs_cost and not plan.needs_tokens
    hit = next(h for h in plan.hits if h.rule.id == "github-search")
    assert hit.key.endswith(":22=user:alice@example.com:20=github/search_issues")  # `model` is server/tool
    assert limits.match_mcp("github", "create_issue", alice, {}).rate_limit_ids == ("every-mcp",)
    through = limits.match_mcp("github", "search_issues", alice, {}, virtual="dev-tools")
    assert through.rate_limit_ids == ("every-mcp", "github-search", "via-dev-tools")
    assert limits.match_mcp("jira", "x", alice, {}).rate_limit_ids == ("every-mcp",)
    assert limits.match_mcp("jira", "x", alice, {"env": "prod"}).rate_limit_ids == ("every-mcp", "jira-all")
    sam = _principal(snapshot, "user:sam@example.com")
    assert limits.match_mcp("github", "search_issues", sam, {}).rate_limit_ids == ("every-mcp",)


def test_without_mcp_rules_an_mcp_call_matches_nothing() -> None:
    snapshot = _snapshot(
        IDENTITIES + GITHUB + "type: gateway-rate-limiting-config\nname: l\n"
        "rules: [{id: all, limit_to: 1, unit: requests_per_minute}]\n"
    )
    alice = _principal(snapshot, "user:alice@example.com")
    assert not snapshot.limits.match_mcp("github", "search_issues", alice, {})
    assert snapshot.limits.match(alice, "any/model", {}).rate_limit_ids == ("all",)


# --- refused, at the field ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("name: GitHub\nurl: https://x.example/mcp\n", "name: must be 1-32 lowercase letters"),
        ("name: " + "a" * 33 + "\nurl: https://x.example/mcp\n", "name: must be 1-32 lowercase letters"),
        ("name: g\nurl: ftp://x.example/mcp\n", "url: must be an http:// or https:// URL"),
        ("name: g\nurl: https://x.example/mcp?key=1\n", "url: must not have a query string"),
        ("name: g\nurl: https://x.example/mcp\ntransport: stdio\n", "transport: must be one of streamable-http, sse"),
        ("name: g\nurl: https://x.example/mcp\nauth_data: {type: bearer-auth, bearer_token: x}\n", "auth_data.type"),
        (
            "name: g\nurl: https://x.example/mcp\nauth_data: {type: header, headers: {Mcp-Session-Id: x}}\n",
            "auth_data.headers.Mcp-Session-Id: Mcp-Session-Id is reserved",
        ),
        ("name: g\nurl: https://x.example/mcp\ntimeout_ms: 0\n", "timeout_ms: must be > 0"),
        ("name: g\nurl: https://x.example/mcp\ncost_per_call_usd: -1\n", "cost_per_call_usd: must be >= 0"),
        (
            "name: g\nurl: https://x.example/mcp\n"
            "collaborators: [{subject: team:eng, role_id: provider-account-access}]\n",
            "collaborators[0].role_id: must be one of mcp-server-user, mcp-server-manager",
        ),
        (
            "name: g\nurl: https://x.example/mcp\ncollaborators: [{subject: team:eng, role_id: mcp-server-user},"
            " {subject: team:eng, role_id: mcp-server-manager}]\n",
            "collaborators[1].subject: duplicate subject",
        ),
        (
            "name: g\nurl: https://x.example/mcp\naccess_rules: [{tools: ['*'], action: maybe}]\n",
            "access_rules[0].action",
        ),
        ("name: g\nurl: https://x.example/mcp\ntools: {include: ['a b']}\n", "tools.include[0]: must be 1-128"),
        ("name: g\nurl: https://x.example/mcp\ndefault_action: block\n", "default_action: must be one of allow, deny"),
    ],
)
def test_a_remote_server_field_is_refused_at_its_path(fragment: str, expected: str) -> None:
    problems = _problems(f"type: mcp-server/remote\n{fragment}")
    assert any(p.startswith(expected) for p in problems), problems


def test_forward_headers_refuse_credential_and_transport_names() -> None:
    refused = ["Authorization", "cookie", "Host", "Content-Length", "Mcp-Session-Id", "MCP-Protocol-Version"]
    refused += ["X-Relaygate-Hop", "x-api-key", "x-tfy-metadata"]
    names = ", ".join(refused)
    problems = _problems(
        f"type: mcp-server/remote\nname: g\nurl: https://x.example/mcp\nforward_headers: [{names}, X-Ok]\n"
    )
    for i, name in enumerate(refused):
        assert any(p.startswith(f"forward_headers[{i}]: {name} ") for p in problems), (name, problems)
    assert not any(p.startswith(f"forward_headers[{len(refused)}]") for p in problems)
    duplicate = _problems("type: mcp-server/remote\nname: g\nurl: https://x.example/mcp\nforward_headers: [X-A, x-a]\n")
    assert duplicate == ["forward_headers[1]: duplicate header name (same as forward_headers[0]; names ignore case)"]


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ("[]", "mcp_servers: must have at least 1 item"),
        (
            "[{mcp_server_id: github, tools: ['*', search_issues]}]",
            'mcp_servers[0].tools: "*" already takes every tool',
        ),
        ("[{mcp_server_id: github, tools: ['search_*']}]", "mcp_servers[0].tools[0]: must be a tool name"),
        (
            "[{mcp_server_id: github, tools: [a]}, {mcp_server_id: github, tools: [b]}]",
            "mcp_servers[1].mcp_server_id: duplicate server",
        ),
    ],
)
def test_a_virtual_server_field_is_refused_at_its_path(members: str, expected: str) -> None:
    problems = _problems(IDENTITIES + GITHUB + f"type: mcp-server/virtual\nname: v\nmcp_servers: {members}\n")
    assert any(p.startswith(expected) for p in problems), problems


def test_virtual_servers_name_declared_remote_servers_and_tools_they_serve() -> None:
    problems = _problems(
        IDENTITIES
        + GITHUB
        + DEV_TOOLS
        + """
---
type: mcp-server/virtual
name: broken
mcp_servers:
  - {mcp_server_id: gitlab, tools: [a]}
  - {mcp_server_id: dev-tools}
  - {mcp_server_id: github, tools: [search_issues, delete_repo]}
"""
    )
    assert (
        "mcp_servers[0].mcp_server_id: MCP server 'gitlab' is not declared (add a mcp-server/remote manifest)"
        in problems
    )
    assert any(p.startswith("mcp_servers[1].mcp_server_id: must name a remote server") for p in problems), problems
    assert any(
        p.startswith("mcp_servers[2].tools[1]: MCP server 'github' does not serve tool 'delete_repo'") for p in problems
    ), problems
    assert len(problems) == 4, problems  # and jira, which dev-tools draws from, is not declared here


def test_explicit_tools_colliding_after_normalisation_are_refused_naming_both() -> None:
    problems = _problems(
        IDENTITIES
        + GITHUB
        + """type: mcp-server/virtual
name: v
collaborators: [{subject: team:eng, role_id: mcp-server-user}]
mcp_servers: [{mcp_server_id: github, tools: [issues.search, ok, issues_search]}]
"""
    )
    (problem,) = problems
    assert problem.startswith("mcp_servers[0].tools[2]: tools github/issues.search and github/issues_search")
    assert "'github__issues_search'" in problem and "mcp_servers[0].tools[0]" in problem


def test_a_name_used_by_a_remote_and_a_virtual_server_is_refused() -> None:
    problems = _problems(
        IDENTITIES + GITHUB + "type: mcp-server/virtual\nname: github\nmcp_servers: [{mcp_server_id: github}]\n"
    )
    assert any(p.startswith("name: MCP server name already used by mcp-server/remote github") for p in problems), (
        problems
    )


def test_subjects_of_collaborators_and_access_rules_must_be_declared() -> None:
    problems = _problems(
        TEAMS
        + """type: mcp-server/remote
name: g
url: https://x.example/mcp
collaborators: [{subject: team:nope, role_id: mcp-server-user}]
access_rules:
  - {subjects: {in: [team:eng, virtualaccount:ghost], not_in: [team:gone]}, tools: ['*'], action: allow}
"""
    )
    assert "collaborators[0].subject: team 'nope' is not declared (add a `type: team` manifest)" in problems
    assert any(
        p.startswith("access_rules[0].subjects.in[1]: virtual account 'ghost' is not declared") for p in problems
    )
    assert any(p.startswith("access_rules[0].subjects.not_in[0]: team 'gone' is not declared") for p in problems)
    assert len(problems) == 3, problems


def test_allowed_mcp_servers_must_name_declared_servers() -> None:
    problems = _problems(TEAMS + GITHUB + "type: virtual-account\nname: bot\nallowed_mcp_servers: [github, gitlab]\n")
    assert problems == [
        "allowed_mcp_servers[1]: MCP server 'gitlab' is not declared "
        "(add a mcp-server/remote or mcp-server/virtual manifest)"
    ]


def test_limit_rules_name_declared_servers_and_servable_tools() -> None:
    problems = _problems(
        IDENTITIES
        + GITHUB
        + DEV_TOOLS.replace('  - {mcp_server_id: jira, tools: ["*"]}\n', "")
        + """
---
type: gateway-rate-limiting-config
name: l
rules:
  - id: a
    when: {mcp_servers: [gitlab, "github:delete_repo", "dev-tools:search_issues", "GitHub"]}
    limit_to: 1
    unit: requests_per_minute
  - {id: b, when: {mcp_servers: [github], models: [x/y]}, limit_to: 1, unit: requests_per_minute}
  - {id: c, when: {mcp_servers: [github]}, limit_to: 1, unit: tokens_per_minute}
"""
    )
    assert any(p.startswith('rules[0].when.mcp_servers[3]: must be "*", an MCP server name') for p in problems), (
        problems
    )
    assert any(p.startswith("rules[1].when.mcp_servers: a rule applies to model calls") for p in problems), problems
    assert any(p.startswith("rules[2].unit: MCP tool calls have no tokens") for p in problems), problems
    # The first rule's names are checked once the rule is valid on its own:
    problems = _problems(
        IDENTITIES
        + GITHUB
        + DEV_TOOLS.replace('  - {mcp_server_id: jira, tools: ["*"]}\n', "")
        + """
---
type: gateway-rate-limiting-config
name: l
rules:
  - id: a
    when: {mcp_servers: [gitlab, "github:delete_repo", "dev-tools:search_issues"]}
    limit_to: 1
    unit: requests_per_minute
"""
    )
    assert problems == [
        "rules[0].when.mcp_servers[0]: MCP server 'gitlab' is not declared "
        "(add a mcp-server/remote or mcp-server/virtual manifest)",
        "rules[0].when.mcp_servers[1]: MCP server 'github' does not serve tool 'delete_repo' "
        "(its tools selector leaves it out)",
        "rules[0].when.mcp_servers[2]: 'dev-tools' is a virtual server: a tool-level rule names the remote server "
        "the tool comes from (server:tool), and applies wherever the tool is reached",
    ]


def test_a_url_at_a_metadata_address_is_refused_at_compile() -> None:
    problems = _problems("type: mcp-server/remote\nname: g\nurl: http://169.254.169.254/mcp\n")
    assert any(p.startswith("url: points at a link-local/cloud-metadata address") for p in problems), problems


def test_an_unset_credential_is_named_and_a_resolved_one_never_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(GITHUB, "mcp.yaml", env={})
    assert any("GITHUB_TOKEN" in str(p) and p.field == "auth_data.headers.Authorization" for p in caught.value.problems)
    with pytest.raises(ConfigError) as caught:
        load_text(
            GITHUB.replace("forward_headers: [X-Tenant-Id]", "forward_headers: [Authorization]"), "m.yaml", env=ENV
        )
    assert TOKEN not in str(caught.value)


# --- warnings and relaygate check -------------------------------------------------------------------


def test_warnings_for_a_server_nobody_may_use_and_a_guardrail_naming_no_server() -> None:
    manifests = load_text(
        JIRA
        + """type: provider-account/guardrail-config-group
name: safety
integrations: [{name: words, type: keywords, config: {words: [x]}}]
---
type: gateway-guardrails-config
name: guardrails
rules:
  - id: tools
    when: {target: {conditions: {mcpServers: {values: [jira, "gitlab:search"], condition: in}}}}
    mcp_tool_pre_invoke_guardrails: [safety/words]
""",
        "w.yaml",
        env=ENV,
    )
    rules = [(w.field, w.rule) for w in manifests.warnings]
    assert ("collaborators", next(r for f, r in rules if f == "collaborators")) in rules
    assert any(r.startswith("nobody may use this server") for _, r in rules), rules
    assert (
        "rules[0].when.target.conditions.mcpServers[1]",
        "MCP server 'gitlab' is not declared: this condition never matches a tool call",
    ) in rules
    assert not any(f.endswith("mcpServers[0]") for f, _ in rules)


def test_a_server_reached_through_a_virtual_server_or_account_is_not_warned_about(snapshot: Snapshot) -> None:
    manifests = load_text(IDENTITIES + GITHUB + JIRA + DEV_TOOLS, "ok.yaml", env=ENV)
    assert not [w for w in manifests.warnings if "nobody may use" in w.rule]


def test_check_accepts_a_valid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    path = tmp_path / "mcp.yaml"
    path.write_text(IDENTITIES + GITHUB + JIRA + DEV_TOOLS + LIMITS)
    assert main(["check", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert "is valid" in out and "3 MCP servers" in out
    assert TOKEN not in out


def test_check_refuses_with_every_problem_at_its_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    path = tmp_path / "mcp.yaml"
    path.write_text(
        IDENTITIES
        + GITHUB.replace("forward_headers: [X-Tenant-Id]", "forward_headers: [X-Tenant-Id, Cookie]")
        + "type: mcp-server/virtual\nname: v\nmcp_servers: [{mcp_server_id: gitlab}]\n"
    )
    assert main(["check", "-f", str(path)]) != 0
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "mcp-server/remote github: forward_headers[1]: Cookie carries the client's credentials" in output
    assert "mcp-server/virtual v: mcp_servers[0].mcp_server_id: MCP server 'gitlab' is not declared" in output
    assert TOKEN not in output


def test_a_literal_credential_is_warned_about_and_masked_wherever_shown() -> None:
    literal = GITHUB.replace("${GITHUB_TOKEN}", "literal-upstream-token")
    manifests = load_text(TEAMS + literal, "literal.yaml", env={})
    assert [w.field for w in manifests.warnings if "literal credential" in w.rule] == [
        "auth_data.headers.Authorization"
    ]
    secrets = snapshot_secrets(compile_manifests(manifests))
    assert "literal-upstream-token" in secrets  # the admin API's config view and diffs mask it
