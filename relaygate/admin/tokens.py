"""Tokens: list by cursor, create (the secret shown once), revoke (as `relaygate tokens revoke` does,
Redis announcement included) and rotate with a grace period.

Admins manage every token; any other caller lists, creates, revokes and rotates only their own
personal tokens. Answers carry ids, names and owners, never a secret or its hash (except the one new
secret in a create or rotate answer). Token *policy* (models, limits) stays in config manifests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.admin.operation import Operation, Reply, param
from relaygate.admin.params import body_object, field, parse_time
from relaygate.auth.store import KIND_PERSONAL, KIND_VIRTUAL_ACCOUNT, TokenRecord
from relaygate.auth.tokens import ID_LENGTH, TOKEN_PREFIX, parse_duration
from relaygate.errors import BadRequest, Forbidden, NotFound
from relaygate.observe.record import subject_candidates

if TYPE_CHECKING:
    from relaygate.admin.identity import Identity
    from relaygate.admin.operation import AdminRequest
    from relaygate.gateway import Gateway

log = logging.getLogger("relaygate.admin")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_GRACE_SECONDS = 30 * 86400.0
MAX_METADATA_KEYS = 32
MAX_LIFETIME_SECONDS = 100 * 365 * 86400.0


def _status(record: TokenRecord, now: float) -> str:
    if record.revoked_at is not None:
        return "revoked"
    return "active" if record.active(now) else "expired"


def token_payload(gateway: Gateway, record: TokenRecord, now: float | None = None) -> dict[str, Any]:
    """A token as the API shows it: public id, name, owner and state; never the secret or its hash."""
    kind, _, owner = record.subject.partition(":")
    teams = sorted(gateway.snapshot.teams_by_member.get(owner.lower(), frozenset())) if kind == "user" else []
    return {
        "id": f"{TOKEN_PREFIX}{record.id}",
        "name": record.name,
        "kind": record.kind,
        "subject": record.subject,
        "owner_name": owner,
        "teams": teams,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "metadata": dict(record.metadata),
        "status": _status(record, time.time() if now is None else now),
    }


def _bare_id(text: str) -> str:
    """The store id from `rg-<id>`, `<id>` or a whole token (only its id part is used, never echoed)."""
    bare = text[len(TOKEN_PREFIX) :] if text.startswith(TOKEN_PREFIX) else text
    return bare[:ID_LENGTH]


def _encode_cursor(record: TokenRecord) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([record.created_at, record.id])).decode("ascii").rstrip("=")


def _decode_cursor(text: str) -> tuple[float, str]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        value = None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int | float)
        and not isinstance(value[0], bool)
        and isinstance(value[1], str)
    ):
        return float(value[0]), value[1]
    raise BadRequest("cursor is not one this API gave out", param="cursor", code="invalid_parameter")


def _no_control(value: str, name: str) -> str:
    """Text stored or matched in the database: control characters (NUL breaks PostgreSQL) are a 400."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadRequest(f"{name} contains control characters", param=name, code="invalid_parameter")
    return value


def _team_subjects(gateway: Gateway, team: str) -> set[str]:
    return {f"user:{email}" for email, teams in gateway.snapshot.teams_by_member.items() if team in teams}


async def list_tokens(request: AdminRequest) -> dict[str, Any]:
    q = request.query
    identity = request.caller
    gateway = request.call.gateway
    subjects: set[str] | None = None

    def narrow(allowed: set[str]) -> None:
        nonlocal subjects
        subjects = allowed if subjects is None else subjects & allowed

    owner, team, account = q.text("owner"), q.text("team"), q.text("virtual_account")
    for name, value in (("owner", owner), ("team", team), ("virtual_account", account)):
        if value is not None:
            _no_control(value, name)
    if owner:
        narrow(set(subject_candidates(owner)))
    if team:
        narrow(_team_subjects(gateway, team))
    if account:
        narrow({f"virtualaccount:{account}"})
    if not identity.may_view:
        narrow({identity.subject})
    limit = q.integer("limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    assert limit is not None
    raw_cursor = q.text("cursor", max_length=200)
    after = _decode_cursor(raw_cursor) if raw_cursor is not None else None
    store = gateway.token_store
    records = await asyncio.to_thread(
        lambda: store.page(
            subjects=None if subjects is None else sorted(subjects),
            revoked=q.boolean("revoked"),
            after=after,
            limit=limit + 1,
        )
    )
    next_cursor = None
    if len(records) > limit:
        records = records[:limit]
        next_cursor = _encode_cursor(records[-1])
    now = time.time()
    return {"data": [token_payload(gateway, r, now) for r in records], "next_cursor": next_cursor}


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    raw = field(body, "metadata", dict)
    if raw is None:
        return {}
    if len(raw) > MAX_METADATA_KEYS:
        raise BadRequest(f"metadata has more than {MAX_METADATA_KEYS} keys", param="metadata", code="invalid_parameter")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str) or not key or len(key) > 64 or len(value) > 256 or "\x00" in key + value:
            raise BadRequest(
                "metadata must map keys (1-64 characters) to strings (at most 256 characters)",
                param="metadata",
                code="invalid_parameter",
            )
        out[key] = value
    return out


def _expiry(body: dict[str, Any]) -> float | None:
    expires_at, expires_in = body.get("expires_at"), field(body, "expires_in", str)
    if expires_at is not None and expires_in is not None:
        raise BadRequest("give expires_at or expires_in, not both", param="expires_in", code="invalid_parameter")
    if expires_at is not None:
        value = parse_time(expires_at, "expires_at")
        if value <= time.time():
            raise BadRequest("expires_at is in the past", param="expires_at", code="invalid_parameter")
        return value
    if expires_in is not None:
        try:
            seconds = parse_duration(expires_in[:40])
        except ValueError as exc:
            raise BadRequest(str(exc), param="expires_in", code="invalid_parameter") from None
        if seconds > MAX_LIFETIME_SECONDS:
            raise BadRequest("expires_in is more than 100 years", param="expires_in", code="invalid_parameter")
        return time.time() + seconds
    return None


def _subject_to_create(request: AdminRequest, body: dict[str, Any]) -> tuple[str, str]:
    """(kind, subject) of the token to create; 403 when the caller may not create it."""
    identity = request.caller
    user, account = field(body, "user", str), field(body, "virtual_account", str)
    for name, value in (("user", user), ("virtual_account", account)):
        if value is not None:
            _no_control(value, name)
    if (user is None) == (account is None):
        raise BadRequest("give exactly one of user or virtual_account", param="user", code="invalid_parameter")
    if account is not None:
        if not identity.is_admin:
            raise Forbidden("only admins create virtual-account tokens", code="admin_forbidden")
        if account not in request.call.gateway.snapshot.virtual_accounts:
            raise BadRequest(
                f"virtual account '{account[:100]}' is not declared in the served config",
                param="virtual_account",
                code="unknown_virtual_account",
            )
        return KIND_VIRTUAL_ACCOUNT, f"virtualaccount:{account}"
    assert user is not None
    if "@" not in user or len(user) > 320 or user != user.strip():
        raise BadRequest("user takes an email address", param="user", code="invalid_parameter")
    subject = f"user:{user}"
    if not identity.is_admin:
        if subject.lower() != identity.subject.lower():
            raise Forbidden("you may create tokens only for yourself", code="admin_forbidden")
        subject = identity.subject
    return KIND_PERSONAL, subject


async def create_token(request: AdminRequest) -> Reply:
    body = body_object(request.body)
    kind, subject = _subject_to_create(request, body)
    name = field(body, "name", str)
    if name is not None and len(name) > 200:
        raise BadRequest("name is longer than 200 characters", param="name", code="invalid_parameter")
    if name is not None:
        _no_control(name, "name")
    expires_at = _expiry(body)
    metadata = _metadata(body)
    gateway = request.call.gateway
    store = gateway.token_store
    try:
        token, record = await asyncio.to_thread(store.create, kind, subject, name, expires_at, metadata)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_parameter") from None
    return Reply({"token": token, "record": token_payload(gateway, record)}, status=201)


async def _own_record(request: AdminRequest, identity: Identity) -> TokenRecord:
    """The token named by the body's `id`, if the caller may manage it (404 otherwise: no probing)."""
    body = body_object(request.body)
    raw = _no_control(field(body, "id", str, required=True), "id")
    gateway = request.call.gateway
    record = await asyncio.to_thread(gateway.token_store.get, _bare_id(raw))
    if record is None or (not identity.is_admin and record.subject != identity.subject):
        raise NotFound("no token with that id (among the tokens you may manage)", param="id", code="not_found")
    return record


async def _announce(gateway: Gateway, token_id: str) -> None:
    """Drop the token from this process's cache now and, with Redis, from every replica's (as the CLI
    does); without Redis the others see a revocation through their 1 s poll of the store."""
    gateway.authenticator.invalidate(token_id)
    redis_url = gateway.settings.redis_url
    if not redis_url:
        return
    from relaygate.shared_state import publish_revocation

    try:
        await asyncio.to_thread(publish_revocation, redis_url, token_id)
    except Exception as exc:  # committed in the store already; replicas still poll it
        log.warning("token %s: could not announce through Redis (%s)", token_id, type(exc).__name__)


async def revoke_token(request: AdminRequest) -> dict[str, Any]:
    identity = request.caller
    record = await _own_record(request, identity)
    gateway = request.call.gateway
    await asyncio.to_thread(gateway.token_store.revoke, record.id)
    await _announce(gateway, record.id)
    updated = await asyncio.to_thread(gateway.token_store.get, record.id)
    return {"record": token_payload(gateway, updated or record)}


async def rotate_token(request: AdminRequest) -> Reply:
    """A new token with the same owner, name and metadata; the old one keeps working for
    `grace_seconds` (0: it stops now), then expires."""
    identity = request.caller
    body = body_object(request.body)
    grace = field(body, "grace_seconds", (int, float))
    grace = 0.0 if grace is None else float(grace)
    if not 0 <= grace <= MAX_GRACE_SECONDS:
        raise BadRequest(
            f"grace_seconds must be between 0 and {int(MAX_GRACE_SECONDS)}",
            param="grace_seconds",
            code="invalid_parameter",
        )
    old = await _own_record(request, identity)
    now = time.time()
    if not old.active(now):
        raise BadRequest("a revoked or expired token cannot be rotated", param="id", code="token_inactive")
    gateway = request.call.gateway
    store = gateway.token_store
    token, new = await asyncio.to_thread(
        store.create, old.kind, old.subject, old.name, old.expires_at, dict(old.metadata)
    )
    previous = await asyncio.to_thread(store.set_expiry, old.id, now + grace)
    await _announce(gateway, old.id)  # caches everywhere re-read its new expiry
    return Reply(
        {
            "token": token,
            "record": token_payload(gateway, new, now),
            "previous": token_payload(gateway, previous or old, now),
        },
        status=201,
    )


_TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "kind", "subject", "owner_name", "created_at", "status"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "kind": {"type": "string", "enum": [KIND_PERSONAL, KIND_VIRTUAL_ACCOUNT]},
        "subject": {"type": "string"},
        "owner_name": {"type": "string"},
        "teams": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "number"},
        "expires_at": {"type": ["number", "null"]},
        "revoked_at": {"type": ["number", "null"]},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
    },
}
_ID_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string", "description": "rg-<id> as listed"}},
}

OPERATIONS = (
    Operation(
        "GET",
        "/tokens",
        list_tokens,
        "user",
        "Tokens, newest first, by cursor; never a secret (ordinary users: their own)",
        "tokens",
        parameters=(
            param("owner", "The owner's email (or a full subject)"),
            param("team", "Owners in this team"),
            param("virtual_account", "A virtual account's name"),
            param("revoked", "Only revoked (true) or unrevoked (false) tokens", {"type": "boolean"}),
            param("cursor", "`next_cursor` of the previous page"),
            param("limit", "Tokens per page (default 50)", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        ),
        response={
            "type": "object",
            "required": ["data", "next_cursor"],
            "properties": {
                "data": {"type": "array", "items": _TOKEN_SCHEMA},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
    ),
    Operation(
        "POST",
        "/tokens",
        create_token,
        "user",
        "Create a token (admins: for anyone; others: for themselves); the secret is in this answer only",
        "tokens",
        request={
            "type": "object",
            "properties": {
                "user": {"type": "string", "description": "an email"},
                "virtual_account": {"type": "string"},
                "name": {"type": "string", "maxLength": 200},
                "expires_at": {"type": ["number", "string"], "description": "unix seconds or ISO-8601"},
                "expires_in": {"type": "string", "description": "30d, 12h, 90m ..."},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        response={
            "type": "object",
            "required": ["token", "record"],
            "properties": {"token": {"type": "string"}, "record": _TOKEN_SCHEMA},
        },
        writes=True,
        body_limit=16 * 1024,
    ),
    Operation(
        "POST",
        "/tokens/revoke",
        revoke_token,
        "user",
        "Revoke a token now, on every replica (admins: any; others: their own)",
        "tokens",
        request=_ID_BODY,
        response={"type": "object", "required": ["record"], "properties": {"record": _TOKEN_SCHEMA}},
        writes=True,
        body_limit=4096,
    ),
    Operation(
        "POST",
        "/tokens/rotate",
        rotate_token,
        "user",
        "Replace a token: a new secret with the same owner, name and metadata; the old one expires after grace_seconds",
        "tokens",
        request={
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "grace_seconds": {"type": "number", "minimum": 0, "maximum": MAX_GRACE_SECONDS},
            },
        },
        response={
            "type": "object",
            "required": ["token", "record", "previous"],
            "properties": {"token": {"type": "string"}, "record": _TOKEN_SCHEMA, "previous": _TOKEN_SCHEMA},
        },
        writes=True,
        body_limit=4096,
    ),
)
