"""Validated manifests -> an immutable `runtime.Snapshot` the hot path reads without further checks.

Everything that can be decided at load time is: upstream URLs and auth headers, prices, access
rules, team membership. Reload builds a new snapshot and the app swaps one reference.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from relaygate.auth.access import AccessRule, VirtualAccountGrant
from relaygate.auth.principals import PrincipalMemo
from relaygate.config.compile_guardrails import compile_cache, compile_guardrails
from relaygate.config.compile_limits import compile_rules
from relaygate.config.compile_mcp import compile_mcp
from relaygate.config.compile_ngrok import compile_ai_gateway, internal_host_matcher
from relaygate.config.compile_proxy import compile_proxy_accounts
from relaygate.config.compile_virtual import compile_virtual_account
from relaygate.config.loader import NO_MANIFESTS, Manifests, load_path
from relaygate.config.options import LoadOptions
from relaygate.config.outbound import GatewayAddress, OutboundCheck, url_host
from relaygate.config.problems import ConfigError, Problem
from relaygate.config.schema import CustomEndpointAccount
from relaygate.config.schema_common import secret_value
from relaygate.http.forwarding import merge_headers
from relaygate.limits.rules import NO_RULES, LimitRules
from relaygate.providers.base import OPERATIONS, ConfiguresAuth, IntegrationOptions
from relaygate.providers.prices import resolve_price
from relaygate.providers.registry import PROVIDERS, AuthScheme, ProviderSpec, default_base_url
from relaygate.routing.plan import RouteTarget
from relaygate.runtime.admin import NO_ADMINS, AdminPolicy
from relaygate.runtime.cache import DEFAULT_CACHE
from relaygate.runtime.guardrails import NO_GUARDRAILS
from relaygate.runtime.mcp import NO_MCP, McpPolicy
from relaygate.runtime.ngrok import NgrokGateway
from relaygate.runtime.observability import DEFAULT_OBSERVABILITY, Observability
from relaygate.runtime.proxy import ProxyAccount
from relaygate.runtime.served import NOTHING_SERVED, ServedConfig, ServedManifest
from relaygate.runtime.snapshot import Snapshot
from relaygate.runtime.targets import Target
from relaygate.runtime.virtual import TargetOverrides, VirtualModel


def build_snapshot(
    models: dict[str, Target],
    teams_by_member: dict[str, frozenset[str]],
    virtual_accounts: dict[str, VirtualAccountGrant],
    manifests: Manifests | None,
    proxies: dict[str, ProxyAccount] | None = None,
    virtual_models: dict[str, VirtualModel] | None = None,
    ngrok: NgrokGateway | None = None,
    limits: LimitRules | None = None,
    aliases: dict[str, Target | VirtualModel] | None = None,
    metadata_allowed_hosts: frozenset[str] = frozenset(),
    observability: Observability = DEFAULT_OBSERVABILITY,
    admin: AdminPolicy = NO_ADMINS,
    mcp: McpPolicy = NO_MCP,
) -> Snapshot:
    """The runtime snapshot of compiled tables; of `manifests` only their warnings are kept, as text."""
    virtual_models = virtual_models or {}
    proxies = proxies or {}
    serves = bool(models or virtual_models or proxies or (ngrok is not None and ngrok.provider_order) or mcp)
    return Snapshot(
        models=models,
        teams_by_member=teams_by_member,
        virtual_accounts=virtual_accounts,
        principals=PrincipalMemo(teams_by_member, virtual_accounts),
        limits=limits if limits is not None else NO_RULES,
        proxies=proxies,
        virtual_models=virtual_models,
        ngrok=ngrok,
        aliases=aliases or {},
        direct_routes={
            name: RouteTarget(key=f"model:{name}", name=name, payload=TargetOverrides(target), provider=target.provider)
            for name, target in models.items()
        },
        speed_tracked=frozenset(
            route.key
            for vm in virtual_models.values()
            for route in vm.targets
            if vm.strategy == "latency" or route.payload.sla_cutoff_ms is not None
        ),
        metadata_allowed_hosts=metadata_allowed_hosts
        | frozenset(e.host for p in proxies.values() for e in p.endpoints.values() if e.allow_metadata),
        warnings=tuple(str(w) for w in _warnings(manifests, serves)),
        created=int(time.time()),
        observability=observability,
        admin=admin,
        served=_served(manifests),
        guardrails=compile_guardrails(manifests) if manifests is not None else NO_GUARDRAILS,
        cache=compile_cache(manifests) if manifests is not None else DEFAULT_CACHE,
        mcp=mcp,
    )


def _served(manifests: Manifests | None) -> ServedConfig:
    if manifests is None:
        return NOTHING_SERVED
    return ServedConfig(
        tuple(ServedManifest(kind, name, file, data) for file, kind, name, data in manifests.raw),
        manifests.sources,
        manifests.resolved,
    )


def _warnings(manifests: Manifests | None, serves_anything: bool) -> tuple[Problem, ...]:
    """What the load found worth a warning (literal credentials, nothing to serve); never values."""
    if manifests is None:
        return ()
    warnings = manifests.warnings
    if not serves_anything and not any(w.rule == NO_MANIFESTS for w in warnings):
        where = ", ".join(manifests.sources) or "the config"
        warnings += (
            Problem(
                where,
                "-",
                "-",
                "defines no models, virtual models, custom endpoints, ai-gateway "
                "providers or MCP servers: the gateway has nothing to serve",
            ),
        )
    return warnings


def empty_snapshot() -> Snapshot:
    return build_snapshot({}, {}, {}, None)


def load_snapshot(path: str | Sequence[str], options: LoadOptions | None = None) -> Snapshot:
    """Load, validate and compile the manifests under `path` (or several paths, as one config);
    ConfigError lists every problem."""
    options = options or LoadOptions()
    manifests = load_path(path, max_bytes=options.max_config_bytes)
    source = path if isinstance(path, str) else (path[0] if path else "<config>")
    return compile_manifests(manifests, source=source, gateway=options.gateway)


def _auth_headers(auth: Any, scheme: AuthScheme) -> dict[str, str]:
    """Upstream auth headers from `auth_data`: an api-key goes in `api-key` (Azure) or as a bearer token."""
    if auth is None or scheme == "none":
        return {}
    if auth.type == "api-key":
        key = secret_value(auth.api_key)
        return {"api-key": key} if scheme == "api-key" else {"Authorization": f"Bearer {key}"}
    if auth.type == "bearer-auth":
        return {"Authorization": f"Bearer {secret_value(auth.bearer_token)}"}
    if auth.type == "header":
        return {name: secret_value(value) for name, value in auth.headers.items()}
    return {}


def _secret_values(auth: Any) -> tuple[bytes, ...]:
    """Raw credential values (not header values) so an upstream echoing a bare key is scrubbed too."""
    if auth is None:
        return ()
    values: list[str] = []
    for field_name in ("api_key", "bearer_token", "secret_access_key", "session_token", "key_json"):
        value = getattr(auth, field_name, None)
        if value is not None:
            values.append(secret_value(value))
    if auth.type == "header":
        values.extend(secret_value(v) for v in auth.headers.values())
    if auth.type == "gcp-service-account":  # the key's parts travel separately (a JWT is signed with them)
        try:
            info = json.loads(secret_value(auth.key_json))
        except ValueError:
            info = None
        if isinstance(info, dict):
            values.extend(str(info[k]) for k in ("private_key", "private_key_id") if info.get(k))
    # Longest first, so a value containing another is replaced whole.
    return tuple(sorted({v.encode() for v in values if len(v) >= 4}, key=len, reverse=True))


def without_version_suffix(spec: ProviderSpec, base_url: str) -> str:
    """A base URL without the API version the adapter appends itself (`.../v1` for Anthropic), so
    both the SDK's base (`https://api.anthropic.com`) and one ending in the version work."""
    url = base_url.rstrip("/")
    for suffix in spec.base_url_version_suffixes:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def _unserved_types(spec: ProviderSpec, model_types: Iterable[str]) -> list[str]:
    """Model types of an integration that no operation of its adapter serves (refused at load)."""
    types_served = {op.model_type for op in OPERATIONS if op.name in spec.operations}
    if "chat" in types_served:
        types_served.add("responses")  # /responses is relayed by account, not translated
    return sorted(t for t in model_types if t not in types_served)


def _allows_metadata(account: Any, integration: Any) -> bool:
    """An integration's own `allow_metadata_destinations` (self-hosted), else its account's."""
    own = getattr(integration, "allow_metadata_destinations", None)
    return bool(own if own is not None else getattr(account, "allow_metadata_destinations", False))


def _compile_account(
    account: Any,
    spec: ProviderSpec,
    problems: list[Problem],
    source: str,
    outbound: OutboundCheck,
    allowed_hosts: set[str],
) -> Iterable[Target]:
    kind, adapter = spec.kind, spec.adapter
    collaborators = frozenset(c.subject for c in account.collaborators) if account.collaborators else None
    access = AccessRule(collaborators)
    label = f"{account.type} {account.name}"
    if spec.endpoint == "account" and getattr(account, "base_url", None):
        rule = outbound.problem(account.base_url, allow_metadata=_allows_metadata(account, None))
        if rule is not None:
            problems.append(Problem(source, label, "base_url", rule))
            return
    for index, integration in enumerate(account.integrations):
        name = f"{account.name}/{integration.name}"
        auth = getattr(integration, "auth_data", None) or getattr(account, "auth_data", None)
        if spec.endpoint == "integration":
            base_url = str(integration.url)
            model_id = str(integration.hosted_model_name)
            rule = outbound.problem(base_url, allow_metadata=_allows_metadata(account, integration))
            if rule is not None:
                problems.append(Problem(source, label, f"integrations[{index}].url", rule))
                continue
        else:
            base_url = without_version_suffix(
                spec, str(getattr(account, "base_url", None) or default_base_url(kind, account))
            )
            model_id = str(integration.model_id)
        upstream = spec.endpoint != "in-process"
        if upstream and not base_url:
            problems.append(Problem(source, label, "base_url", "is required for this provider"))
            continue
        if upstream and _allows_metadata(account, integration):
            allowed_hosts.add(url_host(base_url))
        unserved = _unserved_types(spec, integration.model_types)
        if unserved:
            problems.append(
                Problem(
                    source,
                    f"{account.type} {account.name}",
                    f"integrations.{integration.name}.model_types",
                    f"{kind} does not serve {', '.join(unserved)} in this version",
                )
            )
            continue
        options: dict[str, Any] = {}
        if isinstance(adapter, ConfiguresAuth):
            try:
                auth_headers, extra = adapter.configure(account, auth)
            except ValueError as exc:
                problems.append(Problem(source, f"{account.type} {account.name}", "auth_data", str(exc)))
                continue
            options.update(extra)
        else:
            auth_headers = _auth_headers(auth, spec.auth)
        headers = merge_headers(dict(getattr(integration, "headers", None) or {}), auth_headers)
        cost = getattr(integration, "cost", None)
        price = resolve_price(kind, model_id, cost.model_dump() if cost is not None else None)
        if isinstance(adapter, IntegrationOptions):
            options.update(adapter.integration_options(account, integration))
        yield Target(
            name=name,
            account=account.name,
            integration=integration.name,
            provider=kind,
            model_id=model_id,
            model_types=frozenset(integration.model_types),
            adapter=adapter,
            base_url=base_url.rstrip("/"),
            headers=headers,
            secrets=_secret_values(auth),
            price=price,
            cost_known=spec.cost_known,
            access=access,
            options=options,
        )


def _env_internal_hosts() -> Callable[[str], bool]:
    """Hosts that may be reached over plain http by the ngrok dialect: loopback plus
    RELAYGATE_INTERNAL_HOSTS (comma-separated names, `*.suffix` patterns or CIDRs)."""
    entries = [e.strip() for e in os.environ.get("RELAYGATE_INTERNAL_HOSTS", "").split(",") if e.strip()]
    return internal_host_matcher(entries)


def compile_manifests(
    manifests: Manifests,
    source: str = "<config>",
    internal_hosts: Callable[[str], bool] | None = None,
    gateway: GatewayAddress | None = None,
) -> Snapshot:
    """Build the runtime tables; refuses manifests whose feature this version does not serve, and base
    URLs that point at metadata addresses or (when `gateway` is known) at this gateway itself."""
    problems: list[Problem] = []
    models: dict[str, Target] = {}
    outbound = OutboundCheck(gateway)
    allowed_hosts: set[str] = set()
    custom = [a for a in manifests.provider_accounts if isinstance(a, CustomEndpointAccount)]
    for endpoints in custom:
        for index, endpoint in enumerate(endpoints.integrations):
            rule = outbound.problem(endpoint.base_url, allow_metadata=True)  # compile_proxy checks metadata
            if rule is not None:
                problems.append(
                    Problem(
                        _file_of(manifests, endpoints, source),
                        f"{endpoints.type} {endpoints.name}",
                        f"integrations[{index}].base_url",
                        rule,
                    )
                )
    proxies, proxy_problems = compile_proxy_accounts((a, _file_of(manifests, a, source)) for a in custom)
    problems.extend(proxy_problems)
    for account in manifests.provider_accounts:
        spec = PROVIDERS.get(account.type.partition("/")[2])
        if spec is None:
            continue  # custom endpoints and virtual models are compiled apart
        for target in _compile_account(
            account, spec, problems, _file_of(manifests, account, source), outbound, allowed_hosts
        ):
            models[target.name] = target
    ngrok, ngrok_problems = compile_ai_gateway(
        manifests.ai_gateway_policies,
        lambda p: _file_of(manifests, p, source),
        internal_hosts or _env_internal_hosts(),
        outbound,
    )
    problems.extend(ngrok_problems)
    mcp, mcp_problems = compile_mcp(manifests, outbound, lambda m: _file_of(manifests, m, source))
    problems.extend(mcp_problems)
    if ngrok is not None:
        allowed_hosts.update(ngrok.metadata_allowed_hosts)
    virtual_models: dict[str, VirtualModel] = {}
    for account in manifests.provider_accounts:
        if account.type == "provider-account/virtual-model":
            compiled, found = compile_virtual_account(account, models, _file_of(manifests, account, source))
            problems.extend(found)
            virtual_models.update((vm.name, vm) for vm in compiled)
    if problems:
        raise ConfigError(problems)
    aliases: dict[str, Target | VirtualModel] = {}
    for account in manifests.provider_accounts:
        for integration in account.integrations:
            found_model = models.get(f"{account.name}/{integration.name}") or virtual_models.get(
                f"{account.name}/{integration.name}"
            )
            if found_model is not None:
                aliases.update((alias, found_model) for alias in getattr(integration, "aliases", ()))
    teams: dict[str, set[str]] = {}
    for team in manifests.teams:
        for member in team.members:
            teams.setdefault(member.lower(), set()).add(team.name)
    grants = {
        va.name: _grant(
            va.name, tuple(va.allowed_models or ()), tuple(va.allowed_endpoints or ()), va.allowed_mcp_servers
        )
        for va in manifests.virtual_accounts
    }
    limits = compile_rules(manifests.rate_limit_configs, manifests.budget_configs)
    return build_snapshot(
        models,
        {k: frozenset(v) for k, v in teams.items()},
        grants,
        manifests,
        proxies,
        virtual_models,
        ngrok,
        limits,
        aliases,
        frozenset(allowed_hosts),
        _observability(manifests),
        _admin(manifests),
        mcp,
    )


def _observability(manifests: Manifests) -> Observability:
    """The one observability config's choices (the defaults without one)."""
    if not manifests.observability_configs:
        return DEFAULT_OBSERVABILITY
    config = manifests.observability_configs[0]
    labels = config.metrics.labels
    return Observability(
        identity_labels=labels.identity,
        metadata_labels=labels.metadata,
        max_values_per_label=labels.max_values_per_label,
        series_ttl=config.metrics.series_ttl,
        capture_content=config.tracing.capture_content,
    )


def _admin(manifests: Manifests) -> AdminPolicy:
    """The one admin config's roles (nobody but `RELAYGATE_ADMIN_TOKEN` without one)."""
    if not manifests.admin_configs:
        return NO_ADMINS
    config = manifests.admin_configs[0]
    enabled = config.ui.enabled if config.ui.enabled is not None else bool(config.admins)
    return AdminPolicy(frozenset(config.admins), frozenset(config.viewers), enabled)


def _grant(
    name: str, models: tuple[str, ...], endpoints: tuple[str, ...], mcp_servers: tuple[str, ...] = ()
) -> VirtualAccountGrant:
    return VirtualAccountGrant(
        name=name,
        models=frozenset(m for m in models if not m.endswith("/*")),
        accounts=frozenset(m[:-2] for m in models if m.endswith("/*")),
        endpoints=frozenset(e for e in endpoints if not e.endswith("/*")),
        endpoint_accounts=frozenset(e[:-2] for e in endpoints if e.endswith("/*")),
        mcp_servers=frozenset(mcp_servers),
    )


def _file_of(manifests: Manifests, manifest: Any, source: str) -> str:
    return str(manifests.file_of(manifest) or Path(source))
