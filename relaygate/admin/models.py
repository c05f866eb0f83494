"""Models, virtual models and custom endpoints as the served config defines them, with live health.

`GET /models`: every model and virtual model (an ordinary user sees those `GET /api/llm/models` would
list for them: `auth.access.may_call`), with provider, types, price per 1M tokens, access and, for
virtual models, their targets. `GET /endpoints`: custom endpoints with the gateway URL that reaches
them. Health is read from the gateway's trackers: cooldowns (`routing.health`) and the last five
minutes of attempts (`routing.stats.RecentAttempts`). Nothing here reads a credential: targets'
headers and secrets are never touched, and upstream URLs are rebuilt from scheme, host, port and path.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from relaygate.admin.operation import AdminRequest, Operation
from relaygate.auth.access import EVERYONE, Principal, may_call

if TYPE_CHECKING:
    from relaygate.admin.identity import Identity
    from relaygate.gateway import Gateway
    from relaygate.routing.health import HealthTracker
    from relaygate.routing.plan import RouteTarget
    from relaygate.runtime.ngrok import NgrokGateway
    from relaygate.runtime.proxy import ProxyAccount, ProxyEndpoint
    from relaygate.runtime.targets import Target

NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
SUBJECTS_OR_NULL: dict[str, Any] = {
    "type": ["array", "null"],
    "items": {"type": "string"},
    "description": "collaborator subjects (user:<email>, team:<name>); null when open to every user",
}
HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["cooldown_until", "latency_p50_ms", "error_rate", "requests"],
    "properties": {
        "cooldown_until": {**NUMBER_OR_NULL, "description": "unix seconds; null when not cooled down"},
        "latency_p50_ms": {**NUMBER_OR_NULL, "description": "median attempt time over the last 5 minutes"},
        "error_rate": {**NUMBER_OR_NULL, "minimum": 0, "maximum": 1},
        "requests": {"type": "integer", "minimum": 0, "description": "upstream attempts in the last 5 minutes"},
    },
    "additionalProperties": False,
}
ROUTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "weight", "priority", "cooldown_until", "latency_p50_ms", "error_rate"],
    "properties": {
        "name": {"type": "string"},
        "weight": {"type": ["integer", "null"]},
        "priority": {"type": ["integer", "null"]},
        "cooldown_until": NUMBER_OR_NULL,
        "latency_p50_ms": NUMBER_OR_NULL,
        "error_rate": NUMBER_OR_NULL,
        "requests": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}
MODEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "name",
        "display_name",
        "kind",
        "provider",
        "account",
        "model_types",
        "price",
        "access",
        "targets",
        "health",
    ],
    "properties": {
        "name": {"type": "string", "description": "what callers send as `model`"},
        "display_name": {"type": "string"},
        "kind": {"type": "string", "enum": ["model", "virtual-model"]},
        "provider": {"type": "string"},
        "account": {"type": "string"},
        "integration": {"type": "string"},
        "model_id": {"type": ["string", "null"], "description": "the provider's own model id"},
        "model_types": {"type": "array", "items": {"type": "string"}},
        "strategy": {"type": ["string", "null"], "enum": ["weight", "latency", "priority", None]},
        "price": {
            "type": ["object", "null"],
            "required": ["input_per_million", "output_per_million"],
            "properties": {
                "input_per_million": {"type": "number"},
                "output_per_million": {"type": "number"},
                "cache_read_per_million": NUMBER_OR_NULL,
                "cache_write_per_million": NUMBER_OR_NULL,
            },
            "additionalProperties": False,
        },
        "access": SUBJECTS_OR_NULL,
        "targets": {"type": "array", "items": ROUTE_SCHEMA},
        "health": HEALTH_SCHEMA,
    },
    "additionalProperties": False,
}
ENDPOINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "kind", "account", "endpoint", "url", "upstream", "pool", "access", "cooldowns", "health"],
    "properties": {
        "name": {"type": "string", "description": "account/endpoint (or account/slug for a pool)"},
        "kind": {"type": "string", "enum": ["endpoint", "pool"]},
        "account": {"type": "string"},
        "endpoint": {"type": "string"},
        "url": {"type": "string", "description": "this gateway's URL for it: <base>/proxy-api/<account>/<endpoint>"},
        "upstream": {"type": ["string", "null"], "description": "scheme://host[:port]/path; never credentials"},
        "endpoint_type": {"type": ["string", "null"]},
        "strategy": {"type": ["string", "null"]},
        "pool": {"type": "array", "items": ROUTE_SCHEMA},
        "access": SUBJECTS_OR_NULL,
        "authorized_subjects": {"type": ["array", "null"], "items": {"type": "string"}},
        "cooldowns": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["target", "cooldown_until"],
                "properties": {"target": {"type": "string"}, "cooldown_until": {"type": "number"}},
                "additionalProperties": False,
            },
        },
        "health": HEALTH_SCHEMA,
    },
    "additionalProperties": False,
}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": item}},
        "additionalProperties": False,
    }


def cooldown_until(health: HealthTracker, key: str) -> float | None:
    """A target's cooldown end as unix seconds (the tracker keeps a monotonic clock); None when not cooled."""
    until = health.cooled_until(key)
    now = health.now()
    return round(time.time() + (until - now), 3) if until > now else None


def _health(gateway: Gateway, tracker: HealthTracker, keys: tuple[str, ...]) -> dict[str, Any]:
    requests, p50, error_rate = gateway.recent.summary(*keys)
    cooled = [c for c in (cooldown_until(tracker, k) for k in keys) if c is not None]
    # A model is "cooled" while it is (a virtual model while every target is: until the first recovers).
    until = min(cooled) if cooled and len(cooled) == len(keys) else None
    return {"cooldown_until": until, "latency_p50_ms": p50, "error_rate": error_rate, "requests": requests}


def _route(gateway: Gateway, tracker: HealthTracker, route: RouteTarget, name: str) -> dict[str, Any]:
    requests, p50, error_rate = gateway.recent.summary(route.key)
    return {
        "name": name,
        "weight": route.weight,
        "priority": route.priority,
        "cooldown_until": cooldown_until(tracker, route.key),
        "latency_p50_ms": p50,
        "error_rate": error_rate,
        "requests": requests,
    }


def _subjects(collaborators: frozenset[str] | None) -> list[str] | None:
    return None if collaborators is None else sorted(collaborators)


def _price(target: Target) -> dict[str, Any] | None:
    price = target.price
    if price is None:
        return None
    return {
        "input_per_million": price.input_per_million,
        "output_per_million": price.output_per_million,
        "cache_read_per_million": price.cache_read_per_million,
        "cache_write_per_million": price.cache_write_per_million,
    }


def caller_principal(identity: Identity) -> Principal:
    """The admin caller as the request path would see them (their subject, `team:everyone` and teams)."""
    subjects = frozenset({identity.subject, EVERYONE, *(f"team:{team}" for team in identity.teams)})
    return Principal(identity.subject, identity.token_id or "", subjects)


def model_entries(gateway: Gateway, identity: Identity) -> list[dict[str, Any]]:
    """Every model and virtual model this caller may see (viewers and admins: all of them)."""
    snapshot = gateway.snapshot
    principal = None if identity.may_view else caller_principal(identity)
    out: list[dict[str, Any]] = []
    for target in snapshot.models.values():
        if principal is not None and not may_call(principal, target.name, target.account, target.access):
            continue
        key = f"model:{target.name}"
        out.append(
            {
                "name": target.name,
                "display_name": target.integration,
                "kind": "model",
                "provider": target.provider,
                "account": target.account,
                "integration": target.integration,
                "model_id": target.model_id,
                "model_types": sorted(target.model_types),
                "strategy": None,
                "price": _price(target),
                "access": _subjects(target.access.collaborators if target.access is not None else None),
                "targets": [],
                "health": _health(gateway, gateway.model_health, (key,)),
            }
        )
    for vm in snapshot.virtual_models.values():
        if principal is not None and not may_call(principal, vm.name, vm.account, vm.access):
            continue
        targets = [_route(gateway, gateway.model_health, route, route.payload.target.name) for route in vm.targets]
        out.append(
            {
                "name": vm.name,
                "display_name": vm.integration,
                "kind": "virtual-model",
                "provider": "virtual-model",
                "account": vm.account,
                "integration": vm.integration,
                "model_id": None,
                "model_types": sorted(vm.model_types),
                "strategy": vm.strategy,
                "price": None,
                "access": _subjects(vm.access.collaborators),
                "targets": targets,
                "health": _health(gateway, gateway.model_health, tuple(r.key for r in vm.targets)),
            }
        )
    if snapshot.ngrok is not None:  # the ai-gateway dialect's configured `provider:model` names (open to users)
        out += _ngrok_entries(gateway, snapshot.ngrok)
    out.sort(key=lambda m: (m["kind"], m["name"]))
    return out


def _ngrok_entries(gateway: Gateway, ngrok: NgrokGateway) -> list[dict[str, Any]]:
    out = []
    for upstream in ngrok.provider_order:
        for model in upstream.model_order:
            keys = tuple(route.key for route in model.routes)
            cooled = [c for c in (cooldown_until(gateway.model_health, k) for k in keys) if c is not None]
            requests, p50, error_rate = gateway.recent.summary(f"model:{model.name}")
            price = upstream.price_of(model.id)
            out.append(
                {
                    "name": model.name,
                    "display_name": model.id,
                    "kind": "model",
                    "provider": upstream.kind,
                    "account": upstream.id,
                    "integration": model.id,
                    "model_id": model.id,
                    "model_types": sorted(upstream.template.model_types),
                    "strategy": None,
                    "price": None
                    if price is None
                    else {
                        "input_per_million": price.input_per_million,
                        "output_per_million": price.output_per_million,
                        "cache_read_per_million": price.cache_read_per_million,
                        "cache_write_per_million": price.cache_write_per_million,
                    },
                    "access": None,
                    "targets": [],
                    "health": {
                        "cooldown_until": min(cooled) if keys and len(cooled) == len(keys) else None,
                        "latency_p50_ms": p50,
                        "error_rate": error_rate,
                        "requests": requests,
                    },
                }
            )
    return out


async def list_models(request: AdminRequest) -> dict[str, Any]:
    return {"data": model_entries(request.call.gateway, request.caller)}


def gateway_base(request: AdminRequest) -> str:
    """This gateway's base URL as the caller reached it: the scheme (or x-forwarded-proto) and Host."""
    call = request.call
    forwarded = call.header(b"x-forwarded-proto")
    scheme = forwarded.decode("latin-1").strip().lower() if forwarded else str(call.scope.get("scheme") or "http")
    if scheme not in ("http", "https"):
        scheme = "http"
    raw_host = call.header(b"host")
    host = raw_host.decode("latin-1").strip() if raw_host else ""
    if not host or any(c in host for c in "/\\@?# \t"):
        server = call.scope.get("server") or ("127.0.0.1", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    return f"{scheme}://{host}"


def upstream_url(endpoint: ProxyEndpoint) -> str:
    """scheme://host[:port]/base-path: no user info, no query, no fragment."""
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    default_port = {"http": 80, "https": 443}.get(endpoint.scheme)
    port = f":{endpoint.port}" if endpoint.port is not None and endpoint.port != default_port else ""
    return f"{endpoint.scheme}://{host}{port}{endpoint.base_path}"


def _cooldowns(gateway: Gateway, routes: list[tuple[str, str]]) -> list[dict[str, Any]]:
    out = []
    for name, key in routes:
        until = cooldown_until(gateway.health, key)
        if until is not None:
            out.append({"target": name, "cooldown_until": until})
    return out


def endpoint_entries(gateway: Gateway, base: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for account in gateway.snapshot.proxies.values():
        out += _account_entries(gateway, account, base)
    out.sort(key=lambda e: e["name"])
    return out


def _account_entries(gateway: Gateway, account: ProxyAccount, base: str) -> list[dict[str, Any]]:
    access = _subjects(account.access.collaborators)
    strategy = account.routing_type
    out: list[dict[str, Any]] = []
    for endpoint in account.endpoints.values():
        key = endpoint.route.key
        out.append(
            {
                "name": f"{account.name}/{endpoint.name}",
                "kind": "endpoint",
                "account": account.name,
                "endpoint": endpoint.name,
                "url": f"{base}/proxy-api/{account.name}/{endpoint.name}",
                "upstream": upstream_url(endpoint),
                "endpoint_type": account.endpoint_type,
                "strategy": None,
                "pool": [],
                "access": access,
                "authorized_subjects": _subjects(endpoint.authorized_subjects),
                "cooldowns": _cooldowns(gateway, [(endpoint.name, key)]),
                "health": _health(gateway, gateway.health, (key,)),
            }
        )
    if account.slug is not None:
        keys = tuple(route.key for route in account.pool)
        out.append(
            {
                "name": f"{account.name}/{account.slug}",
                "kind": "pool",
                "account": account.name,
                "endpoint": account.slug,
                "url": f"{base}/proxy-api/{account.name}/{account.slug}",
                "upstream": None,
                "endpoint_type": account.endpoint_type,
                "strategy": strategy,
                "pool": [_route(gateway, gateway.health, route, route.name) for route in account.pool],
                "access": access,
                "authorized_subjects": None,
                "cooldowns": _cooldowns(gateway, [(route.name, route.key) for route in account.pool]),
                "health": _health(gateway, gateway.health, keys),
            }
        )
    return out


async def list_endpoints(request: AdminRequest) -> dict[str, Any]:
    return {"data": endpoint_entries(request.call.gateway, gateway_base(request))}


OPERATIONS = (
    Operation(
        "GET",
        "/models",
        list_models,
        "user",
        "Models and virtual models: provider, types, price per 1M tokens, access, targets and live health "
        "(cooldown, latency p50 and error rate over the last 5 minutes); a user sees the models they may call",
        "models",
        response=_list_of(MODEL_SCHEMA),
    ),
    Operation(
        "GET",
        "/endpoints",
        list_endpoints,
        "viewer",
        "Custom endpoints and pools: this gateway's URL for each, the upstream (no credentials), access and cooldowns",
        "models",
        response=_list_of(ENDPOINT_SCHEMA),
    ),
)
