"""The response cache's decision for one request (docs/cache.md): which rule, which controls, which key.

`decide` reads the request's rule (the first cache rule it matches, else the `x-tfy-cache-config`
header alone when the config allows it) and the header's controls, which may only narrow the rule:
a shorter TTL, a namespace, a refresh, no-store, a maximum age, a higher similarity threshold. The key
holds the caller's scope (subject by default; `global` only where config says so), so no header can
reach another caller's entries. `decide_for` is the same decision without a live request (the admin
API's explain).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.cache.entry import EntryKind
from relaygate.cache.key import CacheKey, cache_key
from relaygate.errors import BadRequest

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.cache.vector_index import VectorIndex
    from relaygate.pipeline.call import Call
    from relaygate.runtime.cache import CachePolicy, CacheRule

# Operation -> what an entry of it is (how it streams, if it does).
ENTRY_KINDS: dict[str, EntryKind] = {
    "chat": "openai_chat",
    "completions": "openai_completions",
    "messages": "anthropic_messages",
    "embeddings": "json",
    "rerank": "json",
    "moderations": "json",
    "messages_count_tokens": "json",
}
_KEY_HEADERS = (b"x-tfy-provider-name", b"x-tfy-strict-openai", b"anthropic-version", b"anthropic-beta")
_HEADER_FIELDS = frozenset(("type", "ttl", "namespace", "force_refresh", "no_store", "max_age", "similarity_threshold"))


@dataclass(slots=True)
class CacheDecision:
    """How this request uses the cache."""

    rule: CacheRule
    key: CacheKey
    kind: EntryKind
    ttl: int
    namespace: str
    force_refresh: bool
    no_store: bool
    max_age: float | None
    threshold: float = 0.9  # semantic: the least cosine similarity that counts as a hit
    scope: str = ""
    status: str = "miss"  # hit | miss | error | bypass, for the header and the log row
    similarity: float | None = None  # semantic hits: the score
    semantic_at: tuple[VectorIndex, str, list[float]] | None = None  # where a semantic miss's answer is indexed
    lookup_ms: float | None = None
    lookup_started: float = 0.0

    @property
    def semantic(self) -> bool:
        return self.rule.type == "semantic"


def read_header(call: Call) -> dict[str, Any] | None:
    """`x-tfy-cache-config` as a JSON object (400 when it is not one); None when absent."""
    return parse_header(call.header(b"x-tfy-cache-config"))


def parse_header(raw: bytes | None) -> dict[str, Any] | None:
    """An `x-tfy-cache-config` value as a JSON object (400 when it is not one); None when absent."""
    if raw is None or not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise BadRequest("x-tfy-cache-config must be a JSON object", code="invalid_header", param="x-tfy-cache-config")
    unknown = set(value) - _HEADER_FIELDS
    if unknown:
        raise BadRequest(
            f"x-tfy-cache-config has an unknown field {sorted(unknown)[0][:64]!r} "
            f"(known: {', '.join(sorted(_HEADER_FIELDS))})",
            code="invalid_header",
            param="x-tfy-cache-config",
        )
    return value


def decide(
    call: Call, operation: str, model: str, payload: dict[str, Any] | None, principal: Principal
) -> CacheDecision | None:
    """The request's cache use, or None (no rule, no header, or an endpoint that is never cached)."""
    policy = call.gateway.snapshot.cache
    header = read_header(call) if (policy.rules or policy.header_opt_in) else None
    ctx = call.ctx
    decision = decide_for(
        policy, operation, model, payload, principal, header, ctx.subjects, ctx.metadata, ctx.team, call.header
    )
    if decision is None and header is not None:
        ctx.extra["cache"] = {"status": "bypass", "reason": bypass_reason(operation, payload)}
    return decision


def bypass_reason(operation: str, payload: dict[str, Any] | None) -> str:
    """Why a request that sent `x-tfy-cache-config` does not use the cache (`decide_for` gave None)."""
    if ENTRY_KINDS.get(operation) is None or payload is None:
        return "endpoint is not cached"
    return "no cache rule allows this request"


def decide_for(
    policy: CachePolicy,
    operation: str,
    model: str,
    payload: dict[str, Any] | None,
    principal: Principal,
    header: dict[str, Any] | None,
    subjects: frozenset[str],
    metadata: Mapping[str, str],
    team: str | None,
    header_of: Callable[[bytes], bytes | None],
) -> CacheDecision | None:
    """`decide` without a live request, so the admin API's `cache/explain` runs the same code:
    `header` is the parsed `x-tfy-cache-config`, `header_of` reads a request header by lower-case name."""
    kind = ENTRY_KINDS.get(operation)
    if kind is None or payload is None:
        return None
    rule = policy.rule_for(model, subjects, metadata) if policy.rules else None
    if rule is None and header is not None and policy.header_opt_in:
        rule = policy.header_rule
    if rule is None or (rule.opt_in and header is None):
        return None
    controls = _controls(header or {}, rule)
    if controls["type"] != rule.type:
        wanted = controls["type"]
        raise BadRequest(
            f"x-tfy-cache-config.type {wanted!r} is not what this gateway's cache rule {rule.id!r} offers "
            f"({rule.type})"
            + (": semantic caching needs a cache rule with type: semantic" if wanted == "semantic" else ""),
            code="cache_type_unsupported",
            param="x-tfy-cache-config",
        )
    namespace = controls["namespace"]
    key = cache_key(
        api=f"{operation}",
        model=model,
        body=payload,
        headers=_key_headers(header_of),
        scope=_scope(rule, principal, team),
        namespace=namespace,
        include_user=rule.key_includes_user,
    )
    return CacheDecision(
        rule,
        key,
        kind,
        controls["ttl"],
        namespace,
        controls["force_refresh"],
        controls["no_store"],
        controls["max_age"],
        threshold=max(rule.similarity_threshold, controls["similarity_threshold"]),
        scope=key.key_object["scope"],
    )


def _controls(header: dict[str, Any], rule: CacheRule) -> dict[str, Any]:
    """The header's controls the rule allows; a control it does not allow is refused (400), and a
    TTL longer than the rule's is cut to it (a header narrows, never widens)."""
    allowed = rule.client_controls
    for name in ("ttl", "namespace", "force_refresh", "no_store", "max_age"):
        if name in header and name not in allowed:
            raise BadRequest(
                f"x-tfy-cache-config.{name} is not allowed by cache rule {rule.id!r}",
                code="invalid_header",
                param="x-tfy-cache-config",
            )
    ttl = header.get("ttl", rule.ttl)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        raise BadRequest("x-tfy-cache-config.ttl must be a positive integer (seconds)", code="invalid_header")
    namespace = header.get("namespace", "")
    if not isinstance(namespace, str) or len(namespace) > 128:
        raise BadRequest(
            "x-tfy-cache-config.namespace must be a string of at most 128 characters", code="invalid_header"
        )
    max_age = header.get("max_age")
    if max_age is not None and (not isinstance(max_age, int | float) or isinstance(max_age, bool) or max_age < 0):
        raise BadRequest("x-tfy-cache-config.max_age must be a number of seconds", code="invalid_header")
    threshold = header.get("similarity_threshold", 0.0)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0:
        raise BadRequest("x-tfy-cache-config.similarity_threshold must be a number from 0 to 1", code="invalid_header")
    flags = {name: header.get(name, False) for name in ("force_refresh", "no_store")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise BadRequest(f"x-tfy-cache-config.{name} must be true or false", code="invalid_header")
    kind = header.get("type", rule.type)
    if kind not in ("exact-match", "semantic"):
        raise BadRequest(
            "x-tfy-cache-config.type must be exact-match or semantic", code="invalid_header", param="x-tfy-cache-config"
        )
    return {
        "type": kind,
        "ttl": min(ttl, rule.ttl),
        "namespace": namespace,
        "max_age": max_age,
        "similarity_threshold": float(threshold),  # a header may only raise it (narrower)
        **flags,
    }


def _scope(rule: CacheRule, principal: Principal, team: str | None) -> str:
    """Whose entries these are: the caller (default), its team, its virtual account, or everyone."""
    if rule.scope == "global":
        return "global"
    if rule.scope == "team" and team is not None:
        return f"team:{team}"
    if rule.scope == "virtual_account" and principal.is_virtual_account:
        return principal.subject
    return principal.subject  # subject; a team or virtual-account scope the caller lacks falls back to it


def _key_headers(header_of: Callable[[bytes], bytes | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _KEY_HEADERS:
        value = header_of(name)
        if value is not None:
            out[name.decode()] = value.decode("latin-1")
    return out
