"""Who is calling the admin API, and with which role.

Three ways in, checked in this order: the dashboard's session cookie, `RELAYGATE_ADMIN_TOKEN`
(constant-time compare; headless bootstrap), and an ordinary Relaygate token. The role comes from
the token's subject and teams under the served `gateway-admin-config`; virtual-account tokens are
refused outright (they act for a service, never for a person administering the gateway).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from relaygate.admin.session import cookie_value
from relaygate.errors import Forbidden
from relaygate.http.headers import bearer_token
from relaygate.pipeline.authenticate import authenticate

if TYPE_CHECKING:
    from relaygate.admin.session import SessionSigner
    from relaygate.pipeline.call import Call
    from relaygate.runtime.admin import Role

BOOTSTRAP_SUBJECT = "admin:bootstrap"
Via = Literal["token", "session", "bootstrap"]


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller of one admin request."""

    subject: str  # "user:<email>" or "admin:bootstrap"
    teams: tuple[str, ...]  # team names (no `team:` prefix), sorted
    role: Role
    token_id: str | None  # public id (no secret); None for the bootstrap token
    via: Via
    session_cookie: str | None = None  # set when the session cookie authenticated the call

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_view(self) -> bool:
        """Admins and viewers see everyone's rows; ordinary users only their own."""
        return self.role in ("admin", "viewer")

    @property
    def own_subjects(self) -> frozenset[str]:
        """The subjects whose rows an ordinary user may read: themselves (their teams via `teams`)."""
        return frozenset({self.subject})


def _identity_of(
    call: Call, subjects: frozenset[str], subject: str, token_id: str, via: Via, cookie: str | None
) -> Identity:
    if subject.startswith("virtualaccount:"):
        raise Forbidden("virtual-account tokens cannot use the admin API; use a personal token", code="admin_forbidden")
    role = call.gateway.snapshot.admin.role_of(subjects)
    teams = tuple(sorted(s.partition(":")[2] for s in subjects if s.startswith("team:") and s != "team:everyone"))
    return Identity(subject, teams, role, token_id, via, cookie)


def bootstrap_session_id(admin_token: str | None) -> str | None:
    """What a bootstrap session's cookie names instead of a token id: bound to the current
    `RELAYGATE_ADMIN_TOKEN`, so changing or unsetting it ends those sessions."""
    if not admin_token:
        return None
    return "!bootstrap:" + hashlib.sha256(admin_token.encode("utf-8")).hexdigest()[:24]


async def resolve_identity(call: Call, signer: SessionSigner, *, token: str | None = None) -> Identity:
    """The caller, or `Unauthorized`/`Forbidden`; a bearer token wins over a cookie when both are sent.
    `token` (the login form's) is checked instead of the request's bearer token and cookie."""
    gateway = call.gateway
    use_cookie = token is None
    if token is None:
        token = bearer_token(call.scope)
    if token is None and use_cookie:
        cookie = cookie_value(call.header(b"cookie"))
        token_id = signer.verify(cookie) if cookie else None
        if cookie and token_id is not None and token_id == bootstrap_session_id(gateway.settings.admin_token):
            return Identity(BOOTSTRAP_SUBJECT, (), "admin", None, "bootstrap", cookie)
        if cookie and token_id is not None and not token_id.startswith("!"):
            record = await gateway.authenticator.live_record(token_id)
            principal = gateway.snapshot.principal(record)
            return _identity_of(call, principal.subjects, principal.subject, record.id, "session", cookie)
    expected = gateway.settings.admin_token
    if (
        token is not None
        and expected
        and hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))
    ):
        return Identity(BOOTSTRAP_SUBJECT, (), "admin", None, "bootstrap")
    principal = await authenticate(call, token)
    return _identity_of(call, principal.subjects, principal.subject, principal.token_id, "token", None)
