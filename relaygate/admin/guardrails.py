"""`GET /guardrails`: the served config's guardrail integrations and rules, and what each said so far.

Integrations show how they act (type, operation, enforcing strategy, priority, timeout, logging_only)
and never their configuration: a webhook's URL, headers and `auth_data` are credentials or lead to
them. Rules show their `when` as written in the manifest (normalised: TrueFoundry's nested `target`
and a plain `models` list read alike), which the compiled matcher no longer holds. Verdict counts come
from this process's `relaygate_guardrail_verdicts_total` series: free to read, per process, since
start (null with `--metrics off`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from relaygate.admin.operation import Operation
from relaygate.config.schema_guardrails import GuardrailWhen

if TYPE_CHECKING:
    from relaygate.admin.operation import AdminRequest
    from relaygate.gateway import Gateway
    from relaygate.runtime.guardrails import Guardrail, GuardrailRule
    from relaygate.runtime.snapshot import Snapshot

RULES_MANIFEST = "gateway-guardrails-config"
Counts = dict[str, dict[str, dict[str, int]]]  # guardrail -> stage -> result -> count


def when_of(raw: Any) -> dict[str, Any]:
    """A rule's `when` as written, in one shape: models, mcp_servers, subjects, metadata (only those set)."""
    try:
        when = GuardrailWhen.model_validate(raw if isinstance(raw, Mapping) else {})
    except ValidationError:
        return {}
    out: dict[str, Any] = {}
    models = when.models
    if when.target is not None:
        models = models if models is not None else when.target.conditions.model
        if when.target.conditions.mcpServers is not None:
            out["mcp_servers"] = list(when.target.conditions.mcpServers)
    if models is not None:
        out["models"] = list(models)
    if when.subjects is not None:
        conditions = when.subjects.conditions
        out["subjects"] = {
            "operator": when.subjects.operator,
            "in": None if conditions.in_ is None else list(conditions.in_),
            "not_in": list(conditions.not_in or ()),
        }
    if when.metadata:
        out["metadata"] = {k: [v] if isinstance(v, str) else list(v) for k, v in when.metadata.items()}
    return out


def _written_whens(snapshot: Snapshot) -> dict[str, Any]:
    """Rule id -> its `when` as the served rules manifest holds it."""
    for manifest in snapshot.served.manifests:
        if manifest.type == RULES_MANIFEST:
            rules = manifest.data.get("rules") or []
            return {r["id"]: r.get("when") for r in rules if isinstance(r, Mapping) and isinstance(r.get("id"), str)}
    return {}


def verdict_counts(gateway: Gateway) -> Counts | None:
    """This process's verdicts by guardrail, stage and result (None when request metrics are off)."""
    metrics = gateway.metrics.requests
    if metrics is None:
        return None
    counts: Counts = {}
    for (guardrail, stage, result), values in metrics.guardrail_verdicts.samples():
        by_result = counts.setdefault(guardrail, {}).setdefault(stage, {})
        by_result[result] = by_result.get(result, 0) + int(values[0])
    return counts


def _integration(guardrail: Guardrail, counts: Counts | None) -> dict[str, Any]:
    return {
        "ref": guardrail.ref,
        "type": guardrail.type,
        "operation": guardrail.operation,
        "enforcing_strategy": guardrail.strategy,
        "priority": guardrail.priority,
        "timeout_ms": round(guardrail.timeout_s * 1000),
        "logging_only": guardrail.logging_only,
        "verdicts": None if counts is None else counts.get(guardrail.ref, {}),
    }


def _rule(rule: GuardrailRule, written_when: Any) -> dict[str, Any]:
    return {
        "id": rule.id,
        "when": when_of(written_when),
        "llm_input_guardrails": list(rule.input),
        "llm_output_guardrails": list(rule.output),
        "mcp_tool_pre_invoke_guardrails": list(rule.mcp_pre),
        "mcp_tool_post_invoke_guardrails": list(rule.mcp_post),
        "stream_mode": rule.stream_mode,
        "window_chars": rule.window_chars,
        "overlap_chars": rule.overlap_chars,
        "scope": rule.scope,
        "include_system": rule.include_system,
        "include_tool_results": rule.include_tool_results,
        "include_reasoning": rule.include_reasoning,
    }


async def list_guardrails(request: AdminRequest) -> dict[str, Any]:
    gateway = request.call.gateway
    snapshot = gateway.snapshot
    policy = snapshot.guardrails
    counts = verdict_counts(gateway)
    whens = _written_whens(snapshot)
    return {
        "match": policy.match,
        "allow_request_guardrails": policy.allow_request_guardrails,
        "parallel_with_model": policy.parallel_with_model,
        "max_buffer_bytes": policy.max_buffer_bytes,
        "guardrails": [_integration(g, counts) for g in policy.guardrails.values()],
        "rules": [_rule(rule, whens.get(rule.id)) for rule in policy.rules],
        "verdicts_counted": counts is not None,
    }


_REFS = {"type": "array", "items": {"type": "string"}}
_BY_RESULT = {"type": "object", "additionalProperties": {"type": "integer"}}
INTEGRATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ref", "type", "operation", "enforcing_strategy", "priority", "timeout_ms", "logging_only"],
    "properties": {
        "ref": {"type": "string", "description": "group/integration, as rules name it"},
        "type": {"type": "string", "description": "regex, keywords, pii, secrets, json_schema, length, ..."},
        "operation": {"type": "string", "enum": ["validate", "mutate"]},
        "enforcing_strategy": {"type": "string", "enum": ["enforce", "enforce_but_ignore_on_error", "audit"]},
        "priority": {"type": "integer"},
        "timeout_ms": {"type": "integer"},
        "logging_only": {"type": "boolean"},
        "verdicts": {
            "type": ["object", "null"],
            "additionalProperties": _BY_RESULT,
            "description": "stage -> result -> count, this process since start (null: --metrics off)",
        },
    },
    "additionalProperties": False,
}
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "when", "llm_input_guardrails", "llm_output_guardrails", "stream_mode"],
    "properties": {
        "id": {"type": "string"},
        "when": {
            "type": "object",
            "description": "as configured, normalised: only the parts the rule sets (none: every request)",
            "properties": {
                "models": _REFS,
                "mcp_servers": _REFS,
                "subjects": {
                    "type": "object",
                    "properties": {
                        "operator": {"type": "string", "enum": ["and", "or"]},
                        "in": {"type": ["array", "null"], "items": {"type": "string"}},
                        "not_in": _REFS,
                    },
                },
                "metadata": {"type": "object", "additionalProperties": _REFS},
            },
            "additionalProperties": False,
        },
        "llm_input_guardrails": _REFS,
        "llm_output_guardrails": _REFS,
        "mcp_tool_pre_invoke_guardrails": _REFS,
        "mcp_tool_post_invoke_guardrails": _REFS,
        "stream_mode": {"type": "string", "enum": ["buffer", "window", "post_hoc"]},
        "window_chars": {"type": "integer"},
        "overlap_chars": {"type": "integer"},
        "scope": {"type": "string", "enum": ["last_user", "user", "all"]},
        "include_system": {"type": "boolean"},
        "include_tool_results": {"type": "boolean"},
        "include_reasoning": {"type": "boolean"},
    },
    "additionalProperties": False,
}
GUARDRAILS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["match", "guardrails", "rules", "verdicts_counted"],
    "properties": {
        "match": {"type": "string", "enum": ["first", "all"], "description": "first matching rule, or every one"},
        "allow_request_guardrails": {"type": "boolean"},
        "parallel_with_model": {"type": "boolean"},
        "max_buffer_bytes": {"type": "integer"},
        "guardrails": {"type": "array", "items": INTEGRATION_SCHEMA},
        "rules": {"type": "array", "items": RULE_SCHEMA},
        "verdicts_counted": {"type": "boolean", "description": "false: --metrics off, no verdict counts"},
    },
    "additionalProperties": False,
}

OPERATIONS = (
    Operation(
        "GET",
        "/guardrails",
        list_guardrails,
        "viewer",
        "Guardrail integrations (how each acts; never its config or credentials) and rules (when, which "
        "guardrails per stage, stream mode) of the served config, with this process's verdict counts",
        "guardrails",
        response=GUARDRAILS_SCHEMA,
    ),
)
