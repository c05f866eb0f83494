"""`gateway-admin-config`: who may use the admin API and dashboard (docs/admin.md).

Roles come from a token's subject and teams: `admins` and `viewers` list `user:<email>` and
`team:<name>` subjects. Virtual-account tokens never qualify, so they are refused here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator

from relaygate.config.problems import RuleViolation
from relaygate.config.schema_common import (
    EMAIL_RE,
    RESOURCE_NAME_RE,
    ManifestBase,
    ResourceName,
    StrictModel,
    no_duplicates,
)

_TEAM_RE = re.compile(RESOURCE_NAME_RE.pattern)


def _admin_subject(value: str) -> str:
    """`user:<email>` (lower-cased, as tokens carry it) or `team:<name>`."""
    kind, sep, name = value.strip().partition(":")
    if sep and kind == "user" and EMAIL_RE.match(name):
        return f"user:{name.lower()}"
    if sep and kind == "team" and _TEAM_RE.match(name):
        return f"team:{name}"
    if kind in ("virtualaccount", "virtual-account"):
        raise ValueError("virtual accounts cannot administer the gateway; list user:<email> or team:<name>")
    raise ValueError("must be user:<email> or team:<name>")


Subject = Annotated[str, AfterValidator(_admin_subject)]


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    violations = no_duplicates(values, "subject")
    if violations:
        raise RuleViolation(violations)
    return values


class UiSettings(StrictModel):
    enabled: bool | None = None  # None: on when any admin is declared


class AdminConfig(ManifestBase):
    """At most one per config."""

    type: Literal["gateway-admin-config"]
    name: ResourceName = "gateway-admin"
    admins: Annotated[tuple[Subject, ...], AfterValidator(_unique)] = ()
    viewers: Annotated[tuple[Subject, ...], AfterValidator(_unique)] = ()
    ui: UiSettings = UiSettings()
