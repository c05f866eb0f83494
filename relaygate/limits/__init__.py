"""Rate limits and budgets: rules compiled per config load, reserved before and settled after a call.

    rules = snapshot.limits   # per config load: config/compile_limits.py builds them from the manifests
    backend = MemoryBackend() | RedisBackend(url, prefix=..., on_backend_error="allow")  # per app
    plan = rules.match(principal, model, metadata)      # falsy when no rule applies: skip the rest
    decision = await backend.reserve(plan, tokens=estimate.total, cost=usd)
    if isinstance(decision, Refusal): raise decision.error()
    await backend.settle(decision, tokens=actual_tokens, cost=actual_usd)

`redis.py` is imported lazily by callers that configure Redis (`from relaygate.limits.redis import
RedisBackend`) so a process without Redis never imports the client.
"""

from relaygate.errors import BudgetExceeded
from relaygate.limits.backend import Backend, BackendStats, Refusal, Reservation
from relaygate.limits.budgets import calendar_window, estimate_cost
from relaygate.limits.estimate import TokenEstimate, estimate_tokens
from relaygate.limits.memory import MemoryBackend
from relaygate.limits.rules import EMPTY_PLAN, NO_RULES, Hit, LimitRules, Plan, Rule

__all__ = [
    "EMPTY_PLAN",
    "NO_RULES",
    "Backend",
    "BackendStats",
    "BudgetExceeded",
    "Hit",
    "LimitRules",
    "MemoryBackend",
    "Plan",
    "Refusal",
    "Reservation",
    "Rule",
    "TokenEstimate",
    "calendar_window",
    "estimate_cost",
    "estimate_tokens",
]
