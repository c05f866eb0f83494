"""Guardrail and cache manifests -> the runtime policies (`runtime/guardrails.py`, `runtime/cache.py`)."""

from __future__ import annotations

from relaygate.config.schema import CacheConfig, GuardrailConfigGroup, GuardrailsConfig, Manifests
from relaygate.config.schema_guardrails import GuardrailWhen
from relaygate.guardrails.compile import compile_check
from relaygate.runtime.cache import DEFAULT_CACHE, CachePolicy, CacheRule
from relaygate.runtime.guardrails import DEFAULT_TIMEOUT_S, NO_GUARDRAILS, Guardrail, GuardrailPolicy, GuardrailRule
from relaygate.runtime.matching import RequestMatcher, glob_pattern


def compile_guardrails(manifests: Manifests) -> GuardrailPolicy:
    """The one rules manifest with every group's integrations (no rules: no guardrails)."""
    guardrails = _guardrails(manifests.guardrail_groups)
    if not manifests.guardrails_configs:
        return NO_GUARDRAILS
    config: GuardrailsConfig = manifests.guardrails_configs[0]
    rules = tuple(
        GuardrailRule(
            id=rule.id,
            matcher=matcher(rule.when),
            input=rule.llm_input_guardrails,
            output=rule.llm_output_guardrails,
            mcp_pre=rule.mcp_tool_pre_invoke_guardrails,
            mcp_post=rule.mcp_tool_post_invoke_guardrails,
            stream_mode=rule.stream_mode,
            window_chars=rule.window_chars,
            overlap_chars=rule.overlap_chars,
            scope=rule.scope,
            include_system=rule.include_system,
            include_tool_results=rule.include_tool_results,
            include_reasoning=rule.include_reasoning,
        )
        for rule in config.rules
    )
    return GuardrailPolicy(
        match=config.match,
        rules=rules,
        guardrails=guardrails,
        parallel_with_model=config.parallel_with_model,
        allow_request_guardrails=config.allow_request_guardrails,
        max_buffer_bytes=config.max_buffer_bytes,
    )


def _guardrails(groups: tuple[GuardrailConfigGroup, ...]) -> dict[str, Guardrail]:
    out: dict[str, Guardrail] = {}
    for group in groups:
        for integration in group.integrations:
            ref = f"{group.name}/{integration.name}"
            out[ref] = Guardrail(
                ref=ref,
                type=integration.type,
                operation=integration.operation,
                strategy=integration.enforcing_strategy,
                priority=integration.priority,
                order=len(out),
                timeout_s=(integration.timeout_ms / 1000.0) if integration.timeout_ms else DEFAULT_TIMEOUT_S,
                check=compile_check(integration.type, integration.config),
                logging_only=integration.logging_only,
                headers=tuple((k, v.get_secret_value()) for k, v in (integration.auth_data or {}).items()),
            )
    return out


def matcher(when: GuardrailWhen) -> RequestMatcher:
    """A rule's `when` as the request path tests it."""
    models = when.models
    servers = None
    if when.target is not None:
        models = models if models is not None else when.target.conditions.model
        servers = when.target.conditions.mcpServers
    subjects_in = subjects_not_in = None
    any_of = False
    if when.subjects is not None:
        conditions = when.subjects.conditions
        subjects_in = frozenset(conditions.in_) if conditions.in_ is not None else None
        subjects_not_in = frozenset(conditions.not_in or ())
        any_of = when.subjects.operator == "or"
    metadata = tuple(
        (key, frozenset((value,) if isinstance(value, str) else value)) for key, value in (when.metadata or {}).items()
    )
    return RequestMatcher(
        models=glob_pattern(models) if models is not None else None,
        mcp_servers=servers,
        subjects_in=subjects_in,
        subjects_not_in=subjects_not_in or frozenset(),
        subjects_any=any_of,
        metadata=metadata,
    )


def compile_cache(manifests: Manifests) -> CachePolicy:
    """The one cache manifest (none: the header alone may opt a request in, in memory)."""
    if not manifests.cache_configs:
        return DEFAULT_CACHE
    config: CacheConfig = manifests.cache_configs[0]
    rules = tuple(
        CacheRule(
            id=rule.id,
            matcher=matcher(rule.when),
            type=rule.type,
            ttl=rule.ttl,
            scope=rule.scope,
            opt_in=rule.mode == "opt_in",
            client_controls=frozenset(rule.allow_client_controls),
            key_includes_user=rule.key_includes_user,
            cache_truncated=rule.cache_truncated,
            embedding_model=rule.embedding_model,
            similarity_threshold=rule.similarity_threshold,
            max_messages=rule.max_messages,
        )
        for rule in config.rules
    )
    return CachePolicy(
        backend=config.backend,
        max_entry_bytes=config.max_entry_bytes,
        memory_max_bytes=config.memory_max_bytes,
        rules=rules,
        header_opt_in=config.header_opt_in,
        header_rule=CacheRule(
            id="x-tfy-cache-config", matcher=RequestMatcher(), ttl=config.header_max_ttl, opt_in=True
        ),
    )
