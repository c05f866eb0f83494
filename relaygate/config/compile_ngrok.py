"""The ngrok `ai-gateway` dialect -> one frozen `NgrokGateway` that turns a request's model names
into an ordered list of route targets (spec/custom-providers-ngrok.txt, docs/SCHEMAS.md "ngrok dialect").

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
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from relaygate.auth.access import AccessRule
from relaygate.config.compile_virtual import TargetOverrides
from relaygate.config.outbound import OutboundCheck, url_host
from relaygate.config.problems import Problem
from relaygate.config.schema_common import secret_value
from relaygate.config.schema_ngrok import AiGatewayConfig, AiGatewayPolicy, NgrokProvider
from relaygate.errors import BadRequest
from relaygate.providers.base import OPERATIONS, Target
from relaygate.providers.registry import ADAPTERS, CUSTOM_OPENAI_KIND, PRICED, PROVIDERS, default_base_url
from relaygate.providers.usage import lookup_price, resolve_price
from relaygate.routing.cel import CelError, SelectionProgram, compile_strategy, to_cel
from relaygate.routing.plan import RouteTarget

# Key failover needs 401/403/429; 408 and 5xx are the usual transient failures.
FALLBACK_STATUS_CODES = frozenset({401, 403, 408, 429, 500, 502, 503, 504})
MODEL_TYPES = frozenset(op.model_type for op in OPERATIONS)
MAX_BODY_MODELS = 32
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


@dataclass(frozen=True, slots=True)
class NgrokModel:
    """One model on one provider, with one route per provider key (in key order)."""

    provider_id: str
    id: str
    routes: tuple[RouteTarget, ...]
    cel: Any  # the `ai.models` entry strategies see
    configured: bool = True

    @property
    def name(self) -> str:
        return f"{self.provider_id}:{self.id}"


@dataclass(frozen=True, slots=True)
class NgrokUpstream:
    """A provider: where it lives, one header set per key, and its configured models by id and alias."""

    id: str
    aliases: tuple[str, ...]
    kind: str  # "openai", "groq", ... for known providers, else "self-hosted-model"
    base_url: str
    key_headers: tuple[tuple[tuple[str, str], ...], ...]  # never empty: () when keyless
    secrets: tuple[bytes, ...]
    metadata: Mapping[str, Any]
    models: Mapping[str, NgrokModel]  # configured models by id and by alias
    model_order: tuple[NgrokModel, ...] = ()

    def model(
        self,
        model_id: str,
        metadata: Mapping[str, Any] | None = None,
        aliases: Sequence[str] = (),
        *,
        configured: bool = True,
    ) -> NgrokModel:
        """This provider serving `model_id` (configured at load, or a pass-through per request)."""
        price = resolve_price(self.kind, model_id) if self.kind in PRICED else None
        routes = tuple(
            RouteTarget(
                key=f"ngrok:{self.id}:{model_id}:{index}",
                name=f"{self.id}:{model_id}",
                payload=TargetOverrides(
                    Target(
                        name=f"{self.id}:{model_id}",
                        account=self.id,
                        integration=model_id,
                        provider=self.kind,
                        model_id=model_id,
                        model_types=MODEL_TYPES,
                        adapter=ADAPTERS[self.kind],
                        base_url=self.base_url,
                        headers=headers,
                        secrets=self.secrets,
                        price=price,
                        access=_OPEN,
                    )
                ),
                fallback_status_codes=FALLBACK_STATUS_CODES,
                fallback_candidate=True,
            )
            for index, headers in enumerate(self.key_headers)
        )
        cel = to_cel(
            {
                "id": model_id,
                "id_aliases": list(aliases),
                "provider_id": self.id,
                "provider_id_aliases": list(self.aliases),
                "metadata": dict(metadata or {}),
                "provider_metadata": dict(self.metadata),
                "configured": configured,
            }
        )
        return NgrokModel(self.id, model_id, routes, cel, configured)


@dataclass(frozen=True, slots=True)
class NgrokGateway:
    """The compiled dialect. Read-only per request; strategies memoise pure answers internally."""

    name: str  # the policy identity, "<file stem>#<n>"
    providers: Mapping[str, NgrokUpstream]  # by id and by alias
    provider_order: tuple[NgrokUpstream, ...]
    bare: Mapping[str, tuple[NgrokModel, ...]]  # model id or alias -> every provider serving it, config order
    strategies: tuple[SelectionProgram, ...]
    per_request_timeout: float  # seconds, one attempt
    total_timeout: float  # seconds, the whole request including failover
    only_allow_configured_providers: bool
    only_allow_configured_models: bool
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    metadata_allowed_hosts: frozenset[str] = frozenset()  # providers with allow_metadata_destinations

    @property
    def model_names(self) -> list[str]:
        """Every configured `provider:model` (for model listings)."""
        return [m.name for p in self.provider_order for m in p.model_order]

    def resolve(self, name: str) -> list[NgrokModel]:
        """`provider:model`, a bare id or an alias -> the models it names (may be several, or none)."""
        prefix, sep, rest = name.partition(":")
        provider = self.providers.get(prefix) if sep else None
        if provider is not None:
            found = provider.models.get(rest)
            if found is not None:
                return [found]
        configured = self.bare.get(name)
        if configured:
            return list(configured)  # includes ids that themselves contain ':' (e.g. "llama3:8b")
        if self.only_allow_configured_models or not name:
            return []
        if provider is not None:
            return [provider.model(rest, configured=False)] if rest else []
        if sep:
            return []  # an unconfigured provider prefix: never routable
        return [
            p.model(name, configured=False)
            for p in self.provider_order
            if p.kind in PRICED and lookup_price(p.kind, name) is not None
        ]

    def candidates(self, requested: str, body_models: Sequence[str] | None) -> list[NgrokModel]:
        """Models to try, in the caller's order: the body's `models` list, with `model` first unless
        it is already in the list (then it keeps its place). Duplicates keep their first position."""
        names = list(body_models or ())
        if requested and requested not in names:
            names.insert(0, requested)
        seen: set[str] = set()
        out: list[NgrokModel] = []
        for name in names:
            for model in self.resolve(name):
                if model.name not in seen:
                    seen.add(model.name)
                    out.append(model)
        return out

    def select(
        self, candidates: list[NgrokModel], metadata: Mapping[str, str], rng: random.Random | None = None
    ) -> list[NgrokModel]:
        """Strategies in order over the candidates; the first non-empty answer wins (none: empty)."""
        if not self.strategies or not candidates:
            return candidates
        cel_models = [m.cel for m in candidates]
        keys = [m.name for m in candidates]
        for program in self.strategies:
            picked = program.select(cel_models, keys, rng or self.rng, metadata)
            if picked:
                return [candidates[i] for i in picked]
        return []

    def plan(
        self,
        requested: str,
        body_models: Sequence[str] | None,
        metadata: Mapping[str, str],
        *,
        rng: random.Random | None = None,
    ) -> list[RouteTarget]:
        """Routes in failover order: each model in order, each provider serving it, each of its keys.

        Empty when nothing is routable (unknown name, `only_allow_*`, strategies chose nothing): 404.
        """
        return self.plan_with_candidates(requested, body_models, metadata, rng=rng)[0]

    def plan_with_candidates(
        self,
        requested: str,
        body_models: Sequence[str] | None,
        metadata: Mapping[str, str],
        *,
        rng: random.Random | None = None,
    ) -> tuple[list[RouteTarget], int]:
        """`plan`, and how many candidate models the strategies were given: an empty plan with
        candidates means the strategies chose none (a different error than an unknown model)."""
        candidates = self.candidates(requested, body_models)
        chosen = self.select(candidates, metadata, rng)
        return [route for model in chosen for route in model.routes], len(candidates)


def take_body_models(payload: dict[str, Any]) -> list[str] | None:
    """Remove the body's `models` failover list (upstreams reject unknown fields) and check it."""
    if "models" not in payload:
        return None
    value = payload.pop("models")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_BODY_MODELS
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise BadRequest(
            f"'models' must be a list of 1 to {MAX_BODY_MODELS} model names", param="models", code="invalid_models"
        )
    return value


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
    upstream = NgrokUpstream(
        id=spec.id,
        aliases=spec.id_aliases,
        kind=spec.id if known else CUSTOM_OPENAI_KIND,
        base_url=base_url,
        key_headers=tuple(_headers(config_headers, k) for k in keys) or (_headers(config_headers, None),),
        secrets=tuple(sorted({v.encode() for v in values if len(v) >= 4}, key=len, reverse=True)),
        metadata=dict(spec.metadata),
        models={},
    )
    models = [upstream.model(m.id, m.metadata, m.id_aliases) for m in spec.models]
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
