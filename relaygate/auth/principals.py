"""Token records -> principals under one config, memoised: a request's identity is a dict hit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relaygate.auth.access import Principal, VirtualAccountGrant, user_subjects

PRINCIPAL_MEMO_LIMIT = 50_000


class PrincipalMemo:
    """The principals of one snapshot's teams and virtual accounts; a pure cache, rebuilt on reload."""

    __slots__ = ("_teams_by_member", "_virtual_accounts", "_principals")

    def __init__(
        self, teams_by_member: Mapping[str, frozenset[str]], virtual_accounts: Mapping[str, VirtualAccountGrant]
    ) -> None:
        self._teams_by_member = teams_by_member
        self._virtual_accounts = virtual_accounts
        self._principals: dict[str, Principal] = {}

    def principal(self, record: Any) -> Principal:
        """The identity of a token record under this config (memoised per token id)."""
        cached = self._principals.get(record.id)
        if cached is not None and cached.subject == record.subject:
            return cached
        subject: str = record.subject
        if subject.startswith("virtualaccount:"):
            grant = self._virtual_accounts.get(subject.partition(":")[2])
            principal = Principal(subject, record.id, frozenset({subject}), grant, known=grant is not None)
        else:
            email = subject.partition(":")[2].lower()
            teams = self._teams_by_member.get(email, frozenset())
            principal = Principal(subject, record.id, user_subjects(email, teams), team=min(teams) if teams else None)
        if len(self._principals) >= PRINCIPAL_MEMO_LIMIT:
            self._principals.clear()
        self._principals[record.id] = principal
        return principal
