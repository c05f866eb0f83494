"""`gateway-cache-config`: which requests the response cache serves, where entries live (docs/cache.md).

The first matching rule decides; without a rule (and without the `x-tfy-cache-config` header where a
rule allows opting in) nothing is cached. Entries are scoped to the caller by default: `scope: global`
must be written here (`relaygate check` warns about it) and no header can widen a scope.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from relaygate.config.problems import RuleViolation
from relaygate.config.schema_common import ManifestBase, ResourceName, StrictModel, no_duplicates
from relaygate.config.schema_governance import RuleId
from relaygate.config.schema_guardrails import GuardrailWhen

ClientControl = Literal["ttl", "namespace", "force_refresh", "no_store", "max_age"]
CLIENT_CONTROLS: tuple[ClientControl, ...] = ("ttl", "namespace", "force_refresh", "no_store", "max_age")


class CacheRule(StrictModel):
    id: RuleId
    when: GuardrailWhen = GuardrailWhen()  # models, subjects, metadata: the guardrail rules' shape
    type: Literal["exact-match", "semantic"] = "exact-match"
    ttl: int = Field(default=3600, gt=0, le=30 * 86400)  # seconds; a header may only shorten it
    scope: Literal["subject", "team", "virtual_account", "global"] = "subject"
    mode: Literal["default_on", "opt_in"] = "default_on"
    allow_client_controls: tuple[ClientControl, ...] = CLIENT_CONTROLS
    key_includes_user: bool = False  # the body's `user` field is part of the key
    cache_truncated: bool = False  # also store answers cut by max_tokens (finish_reason: length)
    # Semantic matching: the model that embeds the last user message, the cosine threshold, and the
    # longest conversation still looked up (long conversations rarely repeat).
    embedding_model: str | None = None
    similarity_threshold: float = Field(default=0.9, gt=0.0, le=1.0)
    max_messages: int = Field(default=4, ge=1, le=64)


def _semantic_needs_a_model(rule: CacheRule) -> CacheRule:
    if rule.type == "semantic" and not rule.embedding_model:
        raise RuleViolation([(("embedding_model",), "type semantic needs embedding_model (a model on this gateway)")])
    return rule


def _unique_rule_ids(values: tuple[CacheRule, ...]) -> tuple[CacheRule, ...]:
    violations = no_duplicates([r.id for r in values], "rule id", (), ("id",))
    if violations:
        raise RuleViolation(violations)
    return values


class CacheConfig(ManifestBase):
    """At most one per config."""

    type: Literal["gateway-cache-config"]
    name: ResourceName = "cache"
    backend: Literal["memory", "redis"] = "memory"
    max_entry_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    memory_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    rules: Annotated[
        tuple[Annotated[CacheRule, AfterValidator(_semantic_needs_a_model)], ...], AfterValidator(_unique_rule_ids)
    ] = ()
    # A request no rule matches may still opt in with `x-tfy-cache-config` (TrueFoundry's way), under
    # the defaults: caller scope, exact match, at most `header_max_ttl` seconds.
    header_opt_in: bool = True
    header_max_ttl: int = Field(default=86400, gt=0, le=30 * 86400)
