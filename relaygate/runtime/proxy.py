"""Custom-endpoint accounts (`/proxy-api/...`): each endpoint's upstream, headers and access, and
the account's pool when it load-balances."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relaygate.auth.access import AccessRule
    from relaygate.routing.plan import RouteTarget
    from relaygate.routing.strategies import Strategy


@dataclass(frozen=True, slots=True)
class ProxyEndpoint:
    """One upstream of a custom-endpoint account."""

    account: str
    name: str
    scheme: str
    host: str
    port: int | None
    base_path: str  # percent-encoded path prefix, no trailing slash ("" for an origin)
    headers: tuple[tuple[str, str], ...]  # injected upstream, replacing caller headers of the same name
    header_names: frozenset[str]  # lower-case names of `headers`
    ssl: ssl.SSLContext | bool  # True: default verification; False: reject_unauthorized off
    authorized_subjects: frozenset[str] | None
    allow_metadata: bool
    route: RouteTarget


@dataclass(frozen=True, slots=True)
class ProxyAccount:
    """A custom-endpoint provider account; a pool when `slug` and `strategy` are set."""

    name: str
    endpoints: dict[str, ProxyEndpoint]
    access: AccessRule
    endpoint_type: str | None = None  # tracking only: recorded in the log rows
    secrets: tuple[bytes, ...] = ()  # every credential configured in the account (`credential_values`)
    slug: str | None = None
    routing_type: str | None = None
    strategy: Strategy | None = None
    pool: tuple[RouteTarget, ...] = ()
