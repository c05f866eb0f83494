"""From the body's `model` to what serves it: a model, a virtual model, or the ngrok dialect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaygate.auth.access import may_call
from relaygate.errors import BadRequest, Forbidden, NotFound, UnsupportedModelType
from relaygate.pipeline.hints import unknown_model_hint
from relaygate.providers.base import Operation
from relaygate.runtime.targets import Target
from relaygate.runtime.virtual import VirtualModel

if TYPE_CHECKING:
    from relaygate.auth.access import Principal
    from relaygate.context import RequestContext
    from relaygate.gateway import Gateway
    from relaygate.providers.usage import Price


def resolve(
    gateway: Gateway, principal: Principal, model: object, operation: Operation
) -> Target | VirtualModel | None:
    """The model or virtual model for `model`: 404 unknown, 400 wrong type, 403 not allowed.

    None means it is no manifest model, but the ngrok dialect (configured) may serve it.
    """
    if not isinstance(model, str) or not model:
        raise BadRequest(
            "'model' is required: name a model as {account}/{integration}", param="model", code="missing_model"
        )
    snapshot = gateway.snapshot
    found: Target | VirtualModel | None = (
        snapshot.models.get(model) or snapshot.virtual_models.get(model) or snapshot.aliases.get(model)
    )  # an integration's `aliases`
    if found is None:
        if snapshot.ngrok is not None:
            return None
        raise NotFound(
            f"model '{model}' is not configured on this gateway"
            f"{unknown_model_hint(snapshot, principal, model, operation.model_type)}",
            code="model_not_found",
        )
    if operation.model_type not in found.model_types:
        raise UnsupportedModelType(
            f"model '{model}' does not support {operation.model_type} (it lists: "
            f"{', '.join(sorted(found.model_types))})",
            param="model",
        )
    access = found.access
    if not may_call(principal, found.name, found.account, access):
        raise Forbidden(f"your token may not call model '{model}'", code="model_access_denied")
    return found


def limited_as(ctx: RequestContext, found: Target | VirtualModel | None, model: str) -> str:
    """The model name limits match: the one an alias names (recorded in the log row's `extra.alias_of`)."""
    if found is None or found.name == model:
        return model
    ctx.extra["alias_of"] = found.name
    return found.name


def price_of(found: Target | VirtualModel | None) -> Price | None:
    """The price a budget reserves against before routing: a model's own, a virtual model's dearest target."""
    if isinstance(found, Target):
        return found.price
    if isinstance(found, VirtualModel):
        prices = [route.payload.target.price for route in found.targets if route.payload.target.price is not None]
        return max(prices, key=lambda p: p.input_per_million + p.output_per_million) if prices else None
    return None
