"""Who may call what: principals (a token's identity under the current config) and access rules.

Decisions are set lookups, prepared when the config is compiled; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

EVERYONE = "team:everyone"


@dataclass(frozen=True, slots=True)
class AccessRule:
    """A provider account's grant: `collaborators` subjects, or None when open to every user."""

    collaborators: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class VirtualAccountGrant:
    """The models a virtual account lists: exact `account/integration` names and `account/*` wildcards;
    and the MCP servers (remote or virtual) it lists in `allowed_mcp_servers`."""

    name: str
    models: frozenset[str]
    accounts: frozenset[str]
    endpoints: frozenset[str] = frozenset()
    endpoint_accounts: frozenset[str] = frozenset()
    mcp_servers: frozenset[str] = frozenset()

    def allows_model(self, model: str, account: str) -> bool:
        return model in self.models or account in self.accounts


@dataclass(frozen=True, slots=True)
class Principal:
    """A token's identity as the current config sees it."""

    subject: str  # "user:<email>" or "virtualaccount:<name>"
    token_id: str
    subjects: frozenset[str]  # the subject itself plus its teams
    grant: VirtualAccountGrant | None = None  # set for virtual-account tokens
    known: bool = True  # False when a virtual account was removed from the config
    team: str | None = None  # the first of the user's teams by name: the log row's and rollups' `team`

    @property
    def is_virtual_account(self) -> bool:
        return self.subject.startswith("virtualaccount:")


def may_call(principal: Principal, model: str, account: str, rule: AccessRule | None) -> bool:
    """Personal tokens need a collaborator match (or an open account); virtual accounts need a listing."""
    if principal.is_virtual_account:
        return principal.grant is not None and principal.grant.allows_model(model, account)
    if rule is None or rule.collaborators is None:
        return True
    return not principal.subjects.isdisjoint(rule.collaborators)


def user_subjects(email: str, teams: frozenset[str]) -> frozenset[str]:
    """A user's subjects: the user, team `everyone` and the teams listing them."""
    return frozenset({f"user:{email}", EVERYONE, *(f"team:{team}" for team in teams)})
