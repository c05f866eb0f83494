"""The ngrok `ai-gateway` dialect -> one frozen `runtime.ngrok.NgrokGateway`, over which `routing.ngrok`
turns a request's model names into an ordered list of route targets (spec/custom-providers-ngrok.txt,
docs/SCHEMAS.md "ngrok dialect").

Everything static is built here, once per config: provider and model tables (ids and aliases), one
`Target` per provider key (so key failover is ordinary fallback), and the compiled CEL strategies.
A request only looks names up, runs the strategies and concatenates prebuilt routes.

Decisions the references leave open:
- One `ai-gateway` action per gateway. Timeouts, `only_allow_*` and strategies are global, so two
  documents cannot be merged without one silently overriding the other: a second one is refused.
- `ai.models` holds the request's candidates (not every configured model), which makes "a strategy
  may filter or reorder, never add" hold by construction.
- `provider:model` with a configured provider but an unlisted model passes through to that provider
  unless `only_allow_configured_models`. A bare unlisted id goes to configured providers whose public
  price table lists it (the catalog ngrok consults), again unless `only_allow_configured_models`.
- Relaygate holds no managed provider keys, so only configured providers are ever routable:
  `only_allow_configured_providers` is accepted and always in force.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from urllib.parse import urlsplit

from relaygate.auth.access import AccessRule
from relaygate.config.outbound import OutboundCheck, url_host
from relaygate.config.problems import Problem
from relaygate.config.schema_common import secret_value
from relaygate.config.schema_ngrok import AiGatewayConfig, AiGatewayPolicy, NgrokProvider
from relaygate.providers.base import OPERATIONS
from relaygate.providers.prices import lookup_price, resolve_price
from relaygate.providers.registry import ADAPTERS, CUSTOM_OPENAI_KIND, PRICED, PROVIDERS, default_base_url
from relaygate.providers.usage import Price
from relaygate.routing.cel import CelError, SelectionProgram, compile_strategy
from relaygate.routing.ngrok import upstream_model
from relaygate.runtime.ngrok import NgrokGateway, NgrokModel, NgrokUpstream
from relaygate.runtime.targets import Target

MODEL_TYPES = frozenset(op.model_type for op in OPERATIONS)
_OPEN = AccessRule(None)


def is_ngrok_internal(host: str) -> bool:
    """`*.internal`: ngrok internal endpoints, reachable over http:// as the reference allows."""
    return host.strip("[]").lower().rstrip(".").endswith(".internal")


def is_loopback(host: str) -> bool:
    """localhost, *.localhost, 127.0.0.0/8 and ::1: always allowed over http://."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def internal_host_matcher(entries: Iterable[str]) -> Callable[[str], bool]:
    """An allow-list as a predicate: exact hosts, `*.suffix` (or `.suffix`) and CIDR ranges."""
    exact: set[str] = set()
    suffixes: list[str] = []
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in entries:
        item = entry.strip().lower().rstrip(".")
        if item.startswith(("*.", ".")):
            suffixes.append("." + item.lstrip("*."))
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            exact.add(item)

    def allowed(host: str) -> bool:
        host = host.strip("[]").lower().rstrip(".")
        if host in exact or any(host.endswith(s) for s in suffixes):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in n for n in networks)

    return allowed


def _price_of(kind: str) -> Callable[[str], Price | None]:
    """List prices of `kind`'s models from its public price table (none for a custom upstream)."""
    if kind not in PRICED:
        return _no_price
    return partial(resolve_price, kind)


def _no_price(model_id: str) -> Price | None:
    return None


def _headers(config_headers: Mapping[str, str], key: str | None) -> tuple[tuple[str, str], ...]:
    """The config's headers, then the key's bearer auth (names case-insensitive, the key wins)."""
    merged = {name.lower(): (name, value) for name, value in config_headers.items()}
    if key is not None:
        merged["authorization"] = ("Authorization", f"Bearer {key}")
    return tuple(merged.values())


def _compile_provider(
    spec: NgrokProvider,
    config: AiGatewayConfig,
    where: str,
    problem: Callable[[str, str], None],
    internal_host: Callable[[str], bool],
    outbound: OutboundCheck,
) -> NgrokUpstream | None:
    known = default_base_url(spec.id)
    base_url = (spec.base_url or known).rstrip("/")
    if not base_url:
        problem(
            f"{where}.base_url",
            f"is required: '{spec.id}' is not a provider with a built-in base URL "
            f"(built in: {', '.join(k for k in PROVIDERS if default_base_url(k))})",
        )
        return None
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme == "http" and not (is_loopback(host) or is_ngrok_internal(host) or internal_host(host)):
        problem(
            f"{where}.base_url",
            "must use https:// (http:// is allowed only for ngrok internal endpoints "
            "(*.internal), loopback and hosts on the RELAYGATE_INTERNAL_HOSTS allow-list)",
        )
        return None
    rule = outbound.problem(base_url, allow_metadata=spec.allow_metadata_destinations)
    if rule is not None:
        problem(f"{where}.base_url", rule)
        return None
    config_headers = {name: secret_value(value) for name, value in config.headers.items()}
    keys = [secret_value(k.value) for k in spec.api_keys]
    values = [*keys, *config_headers.values()]
    kind = spec.id if known else CUSTOM_OPENAI_KIND
    secrets = tuple(sorted({v.encode() for v in values if len(v) >= 4}, key=len, reverse=True))
    upstream = NgrokUpstream(
        id=spec.id,
        aliases=spec.id_aliases,
        kind=kind,
        template=Target(
            name=spec.id,
            account=spec.id,
            integration="",
            provider=kind,
            model_id="",
            model_types=MODEL_TYPES,
            adapter=ADAPTERS[kind],
            base_url=base_url,
            secrets=secrets,
            access=_OPEN,
        ),
        price_of=_price_of(kind),
        base_url=base_url,
        key_headers=tuple(_headers(config_headers, k) for k in keys) or (_headers(config_headers, None),),
        secrets=secrets,
        metadata=dict(spec.metadata),
        models={},
    )
    models = [upstream_model(upstream, m.id, m.metadata, m.id_aliases) for m in spec.models]
    table = {name: model for model, m in zip(models, spec.models, strict=True) for name in (m.id, *m.id_aliases)}
    return replace(upstream, models=table, model_order=tuple(models))


def compile_ai_gateway(
    policies: Sequence[AiGatewayPolicy],
    file_of: Callable[[AiGatewayPolicy], str],
    internal_host: Callable[[str], bool],
    outbound: OutboundCheck | None = None,
) -> tuple[NgrokGateway | None, list[Problem]]:
    """The gateway for the one `ai-gateway` action (None without any), and every problem found.

    `internal_host(host)` says whether `http://` may reach `host`; loopback and `*.internal` always
    may. `outbound` refuses metadata destinations and the gateway's own address.
    A second `ai-gateway` action, in the same document or another, is refused (see module docstring).
    """
    problems: list[Problem] = []
    actions = [(policy, index, config) for policy in policies for index, config in enumerate(policy.configs)]
    if not actions:
        return None, problems
    first_policy = actions[0][0]
    for policy, index, _ in actions[1:]:
        problems.append(
            Problem(
                file_of(policy),
                f"ai-gateway {policy.name}",
                f"on_http_request[{index}]",
                "only one ai-gateway action is supported per gateway (the first is "
                f"ai-gateway {first_policy.name} in {file_of(first_policy)}); "
                "merge its providers into that one",
            )
        )
    policy, index, config = actions[0]
    file, label, base = file_of(policy), f"ai-gateway {policy.name}", f"on_http_request[{index}].config"

    def problem(path: str, rule: str) -> None:
        problems.append(Problem(file, label, path, rule))

    upstreams: list[NgrokUpstream] = []
    outbound = outbound or OutboundCheck()
    allowed_hosts: set[str] = set()
    for p_index, spec in enumerate(config.providers):
        if spec.disabled:
            continue
        upstream = _compile_provider(spec, config, f"{base}.providers[{p_index}]", problem, internal_host, outbound)
        if upstream is not None:
            upstreams.append(upstream)
            if spec.allow_metadata_destinations:
                allowed_hosts.add(url_host(upstream.base_url))
    strategies: list[SelectionProgram] = []
    for s_index, source in enumerate(config.model_selection.strategy):
        try:
            strategies.append(compile_strategy(source))
        except CelError as exc:
            problem(f"{base}.model_selection.strategy[{s_index}]", str(exc))
    if problems:
        return None, problems
    bare: dict[str, list[NgrokModel]] = {}
    for upstream in upstreams:
        if upstream.kind in PRICED:
            lookup_price(upstream.kind, "")  # imports the price table now, not on the first request
        for name, model in upstream.models.items():
            bare.setdefault(name, []).append(model)
    by_name = {name: u for u in upstreams for name in (u.id, *u.aliases)}
    return NgrokGateway(
        name=policy.name,
        providers=by_name,
        provider_order=tuple(upstreams),
        bare={name: tuple(models) for name, models in bare.items()},
        strategies=tuple(strategies),
        per_request_timeout=config.per_request_timeout,
        total_timeout=config.total_timeout,
        only_allow_configured_providers=config.only_allow_configured_providers,
        only_allow_configured_models=config.only_allow_configured_models,
        metadata_allowed_hosts=frozenset(allowed_hosts),
    ), problems
