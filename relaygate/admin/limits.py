"""`GET /limits`: every rate-limit and budget rule of the served config with what each bucket counts now.

Rules come from the snapshot (`limits.rules.LimitRules`); consumption from the live backend
(`Backend.usage`: the process's memory, or Redis shared by every replica), read-only. Budgets show
spend in USD against their limit for the current calendar window; rate limits the sliding window's
count and when it has fully drained.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from relaygate.admin.operation import AdminRequest, Operation, param
from relaygate.limits.backend import MAX_USAGE_BUCKETS
from relaygate.limits.rules import bucket_parts

if TYPE_CHECKING:
    from relaygate.limits.backend import BucketUsage
    from relaygate.limits.rules import Rule

log = logging.getLogger("relaygate.admin")
USAGE_TIMEOUT = 5.0  # seconds for reading every rule's buckets from the backend

BUCKET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", "parts", "used", "remaining", "resets_at"],
    "properties": {
        "key": {"type": "string", "description": "the bucket, e.g. `user=user:alice@example.com` or `(all)`"},
        "parts": {
            "type": "object",
            "additionalProperties": {"type": ["string", "null"]},
            "description": "applies_per dimension -> value (null: requests without it share this bucket)",
        },
        "used": {"type": "number", "description": "requests, tokens or USD counted now (in flight included)"},
        "remaining": {"type": "number", "description": "limit - used (negative for an overspent audit budget)"},
        "resets_at": {"type": "number", "description": "unix seconds: window end (budgets) or fully drained"},
    },
    "additionalProperties": False,
}
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "config", "kind", "unit", "measure", "limit", "window", "when", "applies_per", "buckets"],
    "properties": {
        "id": {"type": "string"},
        "config": {"type": "string", "description": "the manifest holding the rule"},
        "kind": {"type": "string", "enum": ["rate_limit", "budget"]},
        "unit": {"type": "string"},
        "measure": {"type": "string", "enum": ["requests", "tokens", "cost"]},
        "limit": {"type": "number"},
        "window": {"type": "string", "enum": ["minute", "hour", "day", "week", "month"]},
        "sliding": {"type": "boolean", "description": "rate limits slide; budgets reset on UTC calendar bounds"},
        "audit_mode": {"type": "boolean", "description": "budgets: counted, never refuses"},
        "when": {
            "type": "object",
            "description": "as configured: only the conditions the rule sets (none: every request)",
            "properties": {
                "subjects": {"type": "array", "items": {"type": "string"}},
                "models": {"type": "array", "items": {"type": "string"}},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "applies_per": {"type": "array", "items": {"type": "string"}},
        "buckets": {"type": "array", "items": BUCKET_SCHEMA},
        "spent": {"type": ["number", "null"], "description": "budgets: USD spent in the window, all buckets"},
    },
    "additionalProperties": False,
}
LIMITS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data", "backend", "backend_error"],
    "properties": {
        "data": {"type": "array", "items": RULE_SCHEMA},
        "backend": {"type": "string", "enum": ["memory", "redis"]},
        "backend_error": {"type": ["string", "null"], "description": "why consumption could not be read"},
    },
    "additionalProperties": False,
}


def _bucket(rule: Rule, usage: BucketUsage) -> dict[str, Any]:
    parts = bucket_parts(rule, usage.key)
    label = ", ".join(f"{d}={'(none)' if v is None else v}" for d, v in parts.items()) or "(all)"
    return {
        "key": label,
        "parts": parts,
        "used": usage.used,
        "remaining": rule.limit - usage.used,
        "resets_at": usage.resets_at,
    }


def _when(rule: Rule) -> dict[str, Any]:
    when: dict[str, Any] = {}
    if rule.subjects is not None:
        when["subjects"] = sorted(rule.subjects)
    if rule.models is not None:
        when["models"] = sorted(rule.models)
    if rule.metadata:
        when["metadata"] = dict(rule.metadata)
    return when


def _rule(rule: Rule, buckets: list[BucketUsage]) -> dict[str, Any]:
    return {
        "id": rule.id,
        "config": rule.config,
        "kind": rule.kind,
        "unit": rule.unit,
        "measure": rule.measure,
        "limit": rule.limit,
        "window": rule.period,
        "sliding": rule.sliding,
        "audit_mode": rule.audit,
        "when": _when(rule),
        "applies_per": list(rule.applies_per),
        "buckets": [_bucket(rule, b) for b in buckets],
        "spent": sum(b.used for b in buckets) if rule.kind == "budget" else None,
    }


async def list_limits(request: AdminRequest) -> dict[str, Any]:
    gateway = request.call.gateway
    per_rule = request.query.integer("buckets", default=MAX_USAGE_BUCKETS, low=1, high=1000)
    assert per_rule is not None
    rules = gateway.snapshot.limits.rules
    backend = gateway.limits
    error = None
    usages: list[list[BucketUsage]] = [[] for _ in rules]
    try:
        async with asyncio.timeout(USAGE_TIMEOUT):
            usages = [await backend.usage(rule, limit=per_rule) for rule in rules]
    except Exception as exc:  # a down Redis: list the rules anyway, say why consumption is missing
        log.warning("admin /limits: cannot read consumption from the limits backend: %s", type(exc).__name__)
        error = f"the limits backend could not be read ({type(exc).__name__})"
    return {
        "data": [_rule(rule, buckets) for rule, buckets in zip(rules, usages, strict=True)],
        "backend": "redis" if gateway.settings.redis_url else "memory",
        "backend_error": error,
    }


OPERATIONS = (
    Operation(
        "GET",
        "/limits",
        list_limits,
        "viewer",
        "Rate limits and budgets: each rule (id, manifest, kind, unit, limit, window, when) with its busiest "
        "buckets' current consumption and reset time, from the live backend (memory or Redis)",
        "limits",
        parameters=(
            param(
                "buckets",
                f"buckets listed per rule, busiest first (default {MAX_USAGE_BUCKETS})",
                {"type": "integer", "minimum": 1, "maximum": 1000},
            ),
        ),
        response=LIMITS_SCHEMA,
    ),
)
