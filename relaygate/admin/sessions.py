"""`whoami`, the dashboard login (`POST /session`: a token for a cookie) and logout."""

from __future__ import annotations

from typing import Any

from relaygate.admin.identity import BOOTSTRAP_SUBJECT, Identity, bootstrap_session_id, resolve_identity
from relaygate.admin.operation import AdminRequest, Operation, Reply
from relaygate.admin.params import body_object, field
from relaygate.admin.session import set_cookie_header
from relaygate.errors import Unauthorized
from relaygate.http.headers import bearer_token
from relaygate.observe.metrics import build_version

IDENTITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["subject", "teams", "role", "version"],
    "properties": {
        "subject": {"type": "string"},
        "teams": {"type": "array", "items": {"type": "string"}},
        "role": {"type": "string", "enum": ["admin", "viewer", "user"]},
        "token_id": {"type": ["string", "null"]},
        "via": {"type": "string", "enum": ["token", "session", "bootstrap"]},
        "version": {"type": "string"},
        "ui_enabled": {"type": "boolean"},
        "config_writes": {"type": "boolean"},
    },
}


def identity_payload(request: AdminRequest, identity: Identity) -> dict[str, Any]:
    gateway = request.call.gateway
    return {
        "subject": identity.subject,
        "teams": list(identity.teams),
        "role": identity.role,
        "token_id": f"rg-{identity.token_id}" if identity.token_id else None,
        "via": identity.via,
        "version": build_version(),
        "ui_enabled": gateway.snapshot.admin.ui_enabled,
        "config_writes": bool(gateway.settings.admin_config_writes and gateway.config_store is not None),
    }


async def whoami(request: AdminRequest) -> dict[str, Any]:
    return identity_payload(request, request.caller)


async def login(request: AdminRequest) -> Reply:
    """Exchange a token (in the body, or as the bearer token) for an 8-hour session cookie."""
    body = body_object(request.body if request.body is not None else {})
    call = request.call
    token = field(body, "token", str) or bearer_token(call.scope)
    if not token:
        raise Unauthorized()  # a session cannot mint a session: log in with a token
    identity = await resolve_identity(call, request.signer, token=token)
    session_id = (
        bootstrap_session_id(call.gateway.settings.admin_token)
        if identity.subject == BOOTSTRAP_SUBJECT
        else identity.token_id
    )
    assert session_id is not None
    cookie, csrf, _ = request.signer.issue(session_id)
    secure = call.scope.get("scheme") == "https" or call.header(b"x-forwarded-proto") == b"https"
    return Reply(
        {**identity_payload(request, identity), "csrf_token": csrf, "expires_in": int(request.signer.lifetime)},
        headers=((b"set-cookie", set_cookie_header(cookie, int(request.signer.lifetime), secure=secure)),),
    )


async def logout(request: AdminRequest) -> Reply:
    """Clear the cookie (it also stops working when its token is revoked or after 8 hours)."""
    return Reply({"logged_out": True}, headers=((b"set-cookie", set_cookie_header("", 0, secure=False)),))


OPERATIONS = (
    Operation(
        "GET",
        "/whoami",
        whoami,
        "user",
        "The caller: subject, teams, role and gateway version",
        "session",
        response=IDENTITY_SCHEMA,
    ),
    Operation(
        "POST",
        "/session",
        login,
        "none",
        "Log in to the dashboard: a token (body `token`, or the bearer token) for an HttpOnly SameSite=Strict "
        "session cookie; the answer carries the CSRF token writes must send in x-relaygate-csrf",
        "session",
        request={"type": "object", "properties": {"token": {"type": "string"}}, "additionalProperties": False},
        response=IDENTITY_SCHEMA,
        body_limit=4096,
    ),
    Operation("POST", "/session/logout", logout, "none", "Log out: clear the session cookie", "session"),
)
