"""`POST /cache/explain`: how one request would use the response cache, decided by the pipeline's own
code (`pipeline.cache_step.decide_for`), so the answer cannot drift from what a real request does.

The caller describes the request (operation, model, body, headers) and whose it is (`subject`,
default the caller); the answer names the rule, the scope, the key object, its digest, the storage
key, and whether an entry exists now. That last fact is an oracle ("did alice ask this?"), so only
admins get it for someone else's subject; viewers see it for their own requests only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from relaygate.admin.params import body_object, field
from relaygate.auth.access import Principal, user_subjects
from relaygate.cache.entry import CacheEntry
from relaygate.cache.errors import CacheBackendError
from relaygate.cache.invalidate import backend_of
from relaygate.errors import BadRequest
from relaygate.http.headers import parse_logging_config, parse_metadata
from relaygate.pipeline.cache_decide import ENTRY_KINDS, bypass_reason, decide_for, parse_header
from relaygate.providers.base import MESSAGES, MESSAGES_COUNT_TOKENS, OPERATIONS

if TYPE_CHECKING:
    from relaygate.admin.operation import AdminRequest
    from relaygate.cache.store import CacheStore
    from relaygate.runtime.cache import CacheRule
    from relaygate.runtime.snapshot import Snapshot

KNOWN_OPERATIONS: tuple[str, ...] = tuple(op.name for op in (*OPERATIONS, MESSAGES, MESSAGES_COUNT_TOKENS))
MAX_HEADERS = 64


def principal_of(snapshot: Snapshot, subject: str) -> Principal:
    """The identity a token of `subject` has under the served config (its teams included)."""
    kind, _, name = subject.partition(":")
    if kind == "user" and "@" in name:
        teams = snapshot.teams_by_member.get(name.lower(), frozenset())
        return Principal(subject, "", user_subjects(name.lower(), teams), team=min(teams) if teams else None)
    if kind == "virtualaccount" and name:
        return Principal(subject, "", frozenset({subject}), snapshot.virtual_accounts.get(name))
    raise BadRequest("subject must be user:<email> or virtualaccount:<name>", param="subject", code="invalid_parameter")


def _headers(raw: Any) -> dict[bytes, bytes]:
    """The request's headers, by lower-case name, as the pipeline reads them."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_HEADERS:
        raise BadRequest(
            f"headers must be an object of at most {MAX_HEADERS} names", param="headers", code="invalid_parameter"
        )
    out: dict[bytes, bytes] = {}
    for name, value in raw.items():
        if not isinstance(value, str):
            raise BadRequest(f"headers.{str(name)[:40]} must be a string", param="headers", code="invalid_parameter")
        try:
            out[name.lower().encode("latin-1")] = value.encode("latin-1")
        except UnicodeEncodeError:
            raise BadRequest("header names and values must be latin-1", param="headers", code="invalid_parameter")
    return out


def _metadata(headers: dict[bytes, bytes]) -> dict[str, str]:
    """`x-tfy-metadata` with `x-tfy-logging-config` tags under it, as `read_logging_headers` builds it."""
    metadata = parse_metadata(headers.get(b"x-tfy-metadata"))
    _, tags = parse_logging_config(headers.get(b"x-tfy-logging-config"))
    return {**tags, **metadata} if tags else metadata


async def _entry_facts(store: CacheStore, storage_key: str) -> dict[str, Any]:
    """Whether an entry is stored under the key now, and which request produced it when."""
    try:
        raw = await store.get(storage_key)
    except CacheBackendError:
        return {"exists": None, "entry": None, "backend_error": "the cache's Redis could not be read"}
    if raw is None:
        return {"exists": False, "entry": None, "backend_error": None}
    try:
        entry = CacheEntry.decode(raw)
    except ValueError:
        return {"exists": True, "entry": None, "backend_error": "the stored value is not a cache entry"}
    facts = {
        "request_id": entry.request_id,
        "created": entry.created,
        "age_s": max(0, int(time.time() - entry.created)),
    }
    return {"exists": True, "entry": facts, "backend_error": None}


async def explain(request: AdminRequest) -> dict[str, Any]:
    """The cache decision for the described request (400 where the pipeline would refuse it)."""
    body = body_object(request.body)
    operation = field(body, "operation", str, required=True)
    if operation not in KNOWN_OPERATIONS:
        raise BadRequest(
            f"operation must be one of {', '.join(KNOWN_OPERATIONS)}", param="operation", code="invalid_parameter"
        )
    model = field(body, "model", str, required=True)
    payload = field(body, "body", dict, required=True)
    headers = _headers(body.get("headers"))
    caller = request.caller
    subject = field(body, "subject", str)
    if subject is None and caller.via == "bootstrap":
        raise BadRequest("the bootstrap token has no subject of its own: give `subject`", param="subject")
    subject = subject or caller.subject
    gateway = request.call.gateway
    snapshot = gateway.snapshot
    principal = principal_of(snapshot, subject)
    policy = snapshot.cache
    header = parse_header(headers.get(b"x-tfy-cache-config"))
    metadata = _metadata(headers)
    decision = decide_for(
        policy, operation, model, payload, principal, header, principal.subjects, metadata, principal.team, headers.get
    )
    store = gateway.cache.store_for(policy)
    answer: dict[str, Any] = {
        "subject": subject,
        "backend": backend_of(store),
        "cached_endpoint": operation in ENTRY_KINDS,
    }
    if decision is None:
        matched = policy.rule_for(model, principal.subjects, metadata) if policy.rules else None
        return {
            **answer,
            "rule": matched.id if matched is not None else None,
            "eligible": False,
            "reason": _ineligible(operation, payload, matched, header is not None),
            **dict.fromkeys(("scope", "namespace", "ttl", "key_object", "digest", "storage_key", "key_prefix")),
            "exists": False,
            "entry": None,
            "backend_error": None,
        }
    key = decision.key
    answer.update(
        {
            "rule": decision.rule.id,
            "eligible": True,
            "reason": None,
            "scope": key.key_object["scope"],
            "namespace": decision.namespace,
            "ttl": decision.ttl,
            "key_object": key.key_object,
            "digest": key.digest,
            "storage_key": key.storage_key,
            "key_prefix": key.short,
        }
    )
    if caller.is_admin or subject == caller.subject:
        answer.update(await _entry_facts(store, key.storage_key))
    else:
        answer.update({"exists": None, "entry": None, "backend_error": None})
    return answer


def _ineligible(operation: str, payload: Any, matched: CacheRule | None, header_sent: bool) -> str:
    """Why the request would not use the cache (the pipeline's `bypass` reason, made specific)."""
    if ENTRY_KINDS.get(operation) is None or payload is None:
        return bypass_reason(operation, payload)
    if matched is not None:  # it matched, so only its opt_in mode can have turned the request away
        return f"cache rule {matched.id!r} is opt_in: the request must send x-tfy-cache-config"
    if not header_sent:
        return "no cache rule matches, and the request sends no x-tfy-cache-config"
    return bypass_reason(operation, payload)  # the config turns header_opt_in off


_NULLABLE_STRING = {"type": ["string", "null"]}
EXPLAIN_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["operation", "model", "body"],
    "properties": {
        "operation": {"type": "string", "enum": list(KNOWN_OPERATIONS), "description": "chat, messages, ..."},
        "model": {"type": "string", "description": "the model name the caller sends"},
        "body": {"type": "object", "description": "the request body as the caller sends it"},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "maxProperties": MAX_HEADERS,
            "description": "request headers (x-tfy-cache-config, x-tfy-metadata, anthropic-version, ...)",
        },
        "subject": {"type": "string", "description": "user:<email> or virtualaccount:<name> (default: the caller)"},
    },
}
EXPLAIN_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["rule", "eligible", "scope", "key_object", "digest", "storage_key", "exists"],
    "properties": {
        "subject": {"type": "string"},
        "backend": {"type": "string", "enum": ["memory", "redis"]},
        "cached_endpoint": {"type": "boolean", "description": "whether this operation is ever cached"},
        "rule": {**_NULLABLE_STRING, "description": "the deciding rule (`x-tfy-cache-config`: the header alone)"},
        "eligible": {"type": "boolean"},
        "reason": {**_NULLABLE_STRING, "description": "why not, when not eligible"},
        "scope": {**_NULLABLE_STRING, "description": "whose entries: user:<email>, team:<name>, ..., global"},
        "namespace": _NULLABLE_STRING,
        "ttl": {"type": ["integer", "null"]},
        "key_object": {"type": ["object", "null"], "description": "what the digest is computed over"},
        "digest": _NULLABLE_STRING,
        "storage_key": _NULLABLE_STRING,
        "key_prefix": {**_NULLABLE_STRING, "description": "as log rows' extra.cache.key_prefix"},
        "exists": {
            "type": ["boolean", "null"],
            "description": "an entry is stored now (null: not shown to a viewer for another subject, or unreadable)",
        },
        "entry": {
            "type": ["object", "null"],
            "properties": {
                "request_id": {"type": "string"},
                "created": {"type": "number"},
                "age_s": {"type": "integer"},
            },
        },
        "backend_error": _NULLABLE_STRING,
    },
}
