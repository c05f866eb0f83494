"""Planning over the ngrok `ai-gateway` dialect: a request's model names -> routes in failover order.

The dialect's data is `runtime.ngrok.NgrokGateway`, built once per config; here a request only looks
names up, runs the strategies and concatenates prebuilt routes (a pass-through model, one the config
does not list, gets its routes built here from its provider's values).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from relaygate.errors import BadRequest
from relaygate.routing.cel import to_cel
from relaygate.routing.plan import RouteTarget
from relaygate.runtime.ngrok import NgrokGateway, NgrokModel, NgrokUpstream
from relaygate.runtime.virtual import TargetOverrides

# Key failover needs 401/403/429; 408 and 5xx are the usual transient failures.
FALLBACK_STATUS_CODES = frozenset({401, 403, 408, 429, 500, 502, 503, 504})
MAX_BODY_MODELS = 32


def upstream_model(
    upstream: NgrokUpstream,
    model_id: str,
    metadata: Mapping[str, Any] | None = None,
    aliases: Sequence[str] = (),
    *,
    configured: bool = True,
) -> NgrokModel:
    """`upstream` serving `model_id` (configured at load, or a pass-through per request)."""
    price = upstream.price_of(model_id)
    routes = tuple(
        RouteTarget(
            key=f"ngrok:{upstream.id}:{model_id}:{index}",
            name=f"{upstream.id}:{model_id}",
            provider=upstream.template.provider,
            payload=TargetOverrides(
                replace(
                    upstream.template,
                    name=f"{upstream.id}:{model_id}",
                    integration=model_id,
                    model_id=model_id,
                    headers=headers,
                    price=price,
                )
            ),
            fallback_status_codes=FALLBACK_STATUS_CODES,
            fallback_candidate=True,
        )
        for index, headers in enumerate(upstream.key_headers)
    )
    cel = to_cel(
        {
            "id": model_id,
            "id_aliases": list(aliases),
            "provider_id": upstream.id,
            "provider_id_aliases": list(upstream.aliases),
            "metadata": dict(metadata or {}),
            "provider_metadata": dict(upstream.metadata),
            "configured": configured,
        }
    )
    return NgrokModel(upstream.id, model_id, routes, cel, configured)


def resolve(gateway: NgrokGateway, name: str) -> list[NgrokModel]:
    """`provider:model`, a bare id or an alias -> the models it names (may be several, or none)."""
    prefix, sep, rest = name.partition(":")
    provider = gateway.providers.get(prefix) if sep else None
    if provider is not None:
        found = provider.models.get(rest)
        if found is not None:
            return [found]
    configured = gateway.bare.get(name)
    if configured:
        return list(configured)  # includes ids that themselves contain ':' (e.g. "llama3:8b")
    if gateway.only_allow_configured_models or not name:
        return []
    if provider is not None:
        return [upstream_model(provider, rest, configured=False)] if rest else []
    if sep:
        return []  # an unconfigured provider prefix: never routable
    # A bare unlisted id goes to the configured providers whose public price table lists it.
    return [upstream_model(p, name, configured=False) for p in gateway.provider_order if p.price_of(name) is not None]


def candidates(gateway: NgrokGateway, requested: str, body_models: Sequence[str] | None) -> list[NgrokModel]:
    """Models to try, in the caller's order: the body's `models` list, with `model` first unless
    it is already in the list (then it keeps its place). Duplicates keep their first position."""
    names = list(body_models or ())
    if requested and requested not in names:
        names.insert(0, requested)
    seen: set[str] = set()
    out: list[NgrokModel] = []
    for name in names:
        for model in resolve(gateway, name):
            if model.name not in seen:
                seen.add(model.name)
                out.append(model)
    return out


def select(
    gateway: NgrokGateway,
    found: list[NgrokModel],
    metadata: Mapping[str, str],
    rng: random.Random | None = None,
) -> list[NgrokModel]:
    """Strategies in order over the candidates; the first non-empty answer wins (none: empty)."""
    if not gateway.strategies or not found:
        return found
    cel_models = [m.cel for m in found]
    keys = [m.name for m in found]
    for program in gateway.strategies:
        picked = program.select(cel_models, keys, rng or gateway.rng, metadata)
        if picked:
            return [found[i] for i in picked]
    return []


def plan(
    gateway: NgrokGateway,
    requested: str,
    body_models: Sequence[str] | None,
    metadata: Mapping[str, str],
    *,
    rng: random.Random | None = None,
) -> list[RouteTarget]:
    """Routes in failover order: each model in order, each provider serving it, each of its keys.

    Empty when nothing is routable (unknown name, `only_allow_*`, strategies chose nothing): 404.
    """
    return plan_with_candidates(gateway, requested, body_models, metadata, rng=rng)[0]


def plan_with_candidates(
    gateway: NgrokGateway,
    requested: str,
    body_models: Sequence[str] | None,
    metadata: Mapping[str, str],
    *,
    rng: random.Random | None = None,
) -> tuple[list[RouteTarget], int]:
    """`plan`, and how many candidate models the strategies were given: an empty plan with
    candidates means the strategies chose none (a different error than an unknown model)."""
    found = candidates(gateway, requested, body_models)
    chosen = select(gateway, found, metadata, rng)
    return [route for model in chosen for route in model.routes], len(found)


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
