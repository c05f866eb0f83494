"""Who may call what, and how much: teams, virtual accounts, rate-limit and budget configs.

Token secrets never appear here (they are created by `relaygate tokens create` and stored hashed);
these manifests only declare identities and the rules that apply to them.

A limit rule applies to model calls or to MCP tool calls, never both: a rule whose `when` lists
`mcp_servers` applies to MCP `tools/call` requests only (`*` for every MCP server, `name` for every tool
of a server, `name:tool` for one tool), and a rule without `mcp_servers` applies to model calls exactly
as before (so adding MCP servers changes no existing limit). `models` and `mcp_servers` therefore never
appear together, and an MCP rule counts requests (rate limits) or cost (budgets: the server's
`cost_per_call_usd`), never tokens.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from relaygate.config.problems import Loc, RuleViolation
from relaygate.config.schema_common import (
    Email,
    ManifestBase,
    ModelPattern,
    ResourceName,
    StrictModel,
    Subject,
    no_duplicates,
)
from relaygate.config.schema_mcp import MCP_SERVER_NAME_RE, McpServerNames

EVERYONE_TEAM = "everyone"


def _not_reserved(value: str) -> str:
    if value == EVERYONE_TEAM:
        raise ValueError("'everyone' is built in (it holds every user) and cannot be declared")
    return value


def _unique_items(values: tuple[Any, ...]) -> tuple[Any, ...]:
    violations = no_duplicates(values, "entry")
    if violations:
        raise RuleViolation(violations)
    return values


class Team(ManifestBase):
    """A named group of users; `team:<name>` subjects match its members."""

    type: Literal["team"]
    name: Annotated[ResourceName, AfterValidator(_not_reserved)]
    members: Annotated[tuple[Email, ...], AfterValidator(_unique_items)] = ()


class VirtualAccount(ManifestBase):
    """A non-human caller (an application); its tokens may call only what is listed here."""

    type: Literal["virtual-account"]
    name: ResourceName
    allowed_models: Annotated[tuple[ModelPattern, ...], AfterValidator(_unique_items)] = ()
    allowed_endpoints: Annotated[tuple[ModelPattern, ...], AfterValidator(_unique_items)] = ()
    allowed_mcp_servers: McpServerNames = ()  # remote or virtual MCP servers its tokens may use


# --- limit rules -------------------------------------------------------------------------------------

RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
APPLIES_PER_RE = re.compile(r"^(user|model|virtualaccount|metadata\.[A-Za-z0-9_.-]+)$")


def _rule_id(value: str) -> str:
    if not RULE_ID_RE.match(value):
        raise ValueError("must be 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit")
    return value


def _one_or_many(value: Any) -> Any:
    """`rate_limit_applies_per: user` is read as `[user]`."""
    return [value] if isinstance(value, str) else value


def _applies_per(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[tuple[Loc, str]] = [
        ((i,), "must be user, model, virtualaccount or metadata.<key>")
        for i, v in enumerate(values)
        if not APPLIES_PER_RE.match(v)
    ]
    out += no_duplicates(values, "entry")
    if len(values) > 2:
        out.append(((), "may list at most two of user, model, virtualaccount, metadata.<key>"))
    if out:
        raise RuleViolation(out)
    return values


def _mcp_target(value: str) -> str:
    """`*`, `server` or `server:tool` (the upstream tool name)."""
    server, sep, tool = value.partition(":")
    if value == "*" or (MCP_SERVER_NAME_RE.match(server) and (not sep or re.fullmatch(r"[^\s*?\[]{1,128}", tool))):
        return value
    raise ValueError('must be "*", an MCP server name or server:tool (e.g. github or github:search_issues)')


RuleId = Annotated[str, AfterValidator(_rule_id)]
McpTarget = Annotated[str, AfterValidator(_mcp_target)]
AppliesPer = Annotated[tuple[str, ...], BeforeValidator(_one_or_many), AfterValidator(_applies_per)]
ModelName = Annotated[str, Field(min_length=1)]


class When(StrictModel):
    """Which requests a rule matches; fields AND together, a missing field matches everything."""

    subjects: tuple[Subject, ...] | None = None
    models: tuple[ModelName, ...] | None = None
    metadata: dict[str, str] | None = None
    # Set: the rule applies to MCP tool calls only (see the module docstring); unset: to model calls.
    mcp_servers: Annotated[tuple[McpTarget, ...], Field(min_length=1), AfterValidator(_unique_items)] | None = None

    @model_validator(mode="after")
    def _models_or_mcp(self) -> Self:
        if self.models is not None and self.mcp_servers is not None:
            rule = "a rule applies to model calls (models) or to MCP tool calls (mcp_servers), not both"
            raise RuleViolation([(("mcp_servers",), rule)])
        return self


class LimitRule(StrictModel):
    """Shared by rate-limit and budget rules."""

    id: RuleId
    when: When = When()


class RateLimitRule(LimitRule):
    limit_to: int = Field(gt=0)
    unit: Literal[
        "requests_per_minute",
        "requests_per_hour",
        "requests_per_day",
        "tokens_per_minute",
        "tokens_per_hour",
        "tokens_per_day",
    ]
    rate_limit_applies_per: AppliesPer = ()

    @model_validator(mode="after")
    def _mcp_counts_requests(self) -> Self:
        if self.when.mcp_servers is not None and self.unit.startswith("tokens_"):
            raise RuleViolation(
                [(("unit",), "MCP tool calls have no tokens: a rule with when.mcp_servers counts requests_per_*")]
            )
        return self

    @property
    def applies_per(self) -> tuple[str, ...]:
        return self.rate_limit_applies_per


class BudgetRule(LimitRule):
    limit_to: float = Field(gt=0)  # USD
    unit: Literal["cost_per_day", "cost_per_week", "cost_per_month"]
    budget_applies_per: AppliesPer = ()
    audit_mode: bool = False  # record spend, never refuse

    @property
    def applies_per(self) -> tuple[str, ...]:
        return self.budget_applies_per


def _unique_rule_ids(rules: tuple[LimitRule, ...]) -> list[tuple[Loc, str]]:
    return no_duplicates([r.id for r in rules], "rule id", ("rules",), ("id",))


class _RuleSet(ManifestBase):
    """A named list of limit rules whose ids must be unique."""

    name: ResourceName
    # While the shared limits backend (Redis) is unreachable, requests these rules match are admitted
    # unchecked (allow) or refused with 503 (deny); unset: the process setting (--limits-on-backend-error).
    on_backend_error: Literal["allow", "deny"] | None = None
    rules: tuple[LimitRule, ...] = ()

    @model_validator(mode="after")
    def _check_ids(self) -> Self:
        violations = _unique_rule_ids(self.rules)
        if violations:
            raise RuleViolation(violations)
        return self


class RateLimitConfig(_RuleSet):
    """Every matching rule applies; the first exceeded answers 429 with its id."""

    type: Literal["gateway-rate-limiting-config"]
    rules: tuple[RateLimitRule, ...] = ()


class BudgetConfig(_RuleSet):
    """Spend caps in USD per day/week/month; every matching rule must pass."""

    type: Literal["gateway-budget-config"]
    rules: tuple[BudgetRule, ...] = ()
