"""What the `gateway-admin-config` manifest decides, compiled: who is an admin or a viewer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "viewer", "user"]


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    """Admin and viewer subjects (`user:<email>`, `team:<name>`) and whether `/ui` is served."""

    admins: frozenset[str] = frozenset()
    viewers: frozenset[str] = frozenset()
    ui_enabled: bool = True

    def role_of(self, subjects: frozenset[str]) -> Role:
        """A caller's role from its subject and teams; admin wins over viewer."""
        if not subjects.isdisjoint(self.admins):
            return "admin"
        if not subjects.isdisjoint(self.viewers):
            return "viewer"
        return "user"


NO_ADMINS = AdminPolicy()
