"""`account/*` in `when.models`, and budgets smaller than a single request's estimate."""

from __future__ import annotations

from relaygate.limits.backend import Refusal, Reservation
from relaygate.limits.memory import MemoryBackend
from tests.limits.conftest import FakeClock, compile_, user

RPM = {"limit_to": 10, "unit": "requests_per_minute"}


def test_account_wildcard_matches_every_model_of_the_account() -> None:
    rules = compile_([{"id": "all-openai", "when": {"models": ["openai-main/*"]}, **RPM},
                      {"id": "one", "when": {"models": ["openai-main/gpt-4o"]}, **RPM}])
    assert [h.rule.id for h in rules.match(user(), "openai-main/gpt-4o", {}).hits] == ["all-openai", "one"]
    assert [h.rule.id for h in rules.match(user(), "openai-main/other", {}).hits] == ["all-openai"]
    assert not rules.match(user(), "anthropic/claude", {})


async def test_a_budget_below_one_estimate_admits_until_spent() -> None:
    # $0.5 a day, each request estimated at $2.6: the first is admitted (nothing spent yet),
    # it really costs $0.7, so the budget is spent and the next one is refused.
    rules = compile_(budgets=[{"id": "tiny", "when": {}, "limit_to": 0.5, "unit": "cost_per_day"}])
    backend = MemoryBackend(clock=FakeClock())
    plan = rules.match(user(), "m/x", {})
    first = await backend.reserve(plan, cost=2.6)
    assert isinstance(first, Reservation)
    await backend.settle(first, cost=0.7)
    assert isinstance(await backend.reserve(plan, cost=2.6), Refusal)
