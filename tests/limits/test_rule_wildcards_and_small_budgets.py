"""`account/*` in `when.models`, and budgets smaller than a single request's estimate."""

from __future__ import annotations

from relaygate.limits.backend import Refusal, Reservation
from relaygate.limits.memory import MemoryBackend
from tests.limits.conftest import FakeClock, compile_, user

RPM = {"limit_to": 10, "unit": "requests_per_minute"}


def test_account_wildcard_matches_every_model_of_the_account() -> None:
    rules = compile_(
        [
            {"id": "all-openai", "when": {"models": ["openai-main/*"]}, **RPM},
            {"id": "one", "when": {"models": ["openai-main/gpt-4o"]}, **RPM},
        ]
    )
    assert [h.rule.id for h in rules.match(user(), "openai-main/gpt-4o", {}).hits] == ["all-openai", "one"]
    assert [h.rule.id for h in rules.match(user(), "openai-main/other", {}).hits] == ["all-openai"]
    assert not rules.match(user(), "anthropic/claude", {})


async def test_a_budget_below_one_estimate_refuses_it_as_never_fitting() -> None:
    # $0.5 a day, a request estimated at $2.6 can never fit: 400, not a 429 to retry; a smaller one fits.
    rules = compile_(budgets=[{"id": "tiny", "when": {}, "limit_to": 0.5, "unit": "cost_per_day"}])
    backend = MemoryBackend(clock=FakeClock())
    plan = rules.match(user(), "m/x", {})
    refused = await backend.reserve(plan, cost=2.6)
    assert isinstance(refused, Refusal) and refused.never_fits
    error = refused.error()
    assert error.status == 400 and error.code == "exceeds_limit" and "retry-after" not in error.headers
    assert "budget 'tiny'" in error.message and "$2.6" in error.message and "$0.5 per day" in error.message
    assert isinstance(await backend.reserve(plan, cost=0.5), Reservation)


async def test_an_audit_budget_never_refuses_even_an_estimate_beyond_it() -> None:
    rules = compile_(budgets=[{"id": "watch", "when": {}, "limit_to": 0.5, "unit": "cost_per_day", "audit_mode": True}])
    backend = MemoryBackend(clock=FakeClock())
    assert isinstance(await backend.reserve(rules.match(user(), "m/x", {}), cost=2.6), Reservation)
