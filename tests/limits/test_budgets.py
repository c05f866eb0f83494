"""Budgets: USD per UTC day / week (from Monday) / month (from the 1st), audit mode, error mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from relaygate.errors import BudgetExceeded
from relaygate.limits.backend import Backend, Refusal, Reservation
from relaygate.limits.budgets import calendar_window
from tests.limits.conftest import FakeClock, compile_, user

MODEL = "openai-main/gpt-4o"


def budget(limit: float, unit: str = "cost_per_day", **extra: object):  # type: ignore[no-untyped-def]
    return compile_(budgets=[{"id": "spend", "limit_to": limit, "unit": unit, **extra}]).match(user(), MODEL, {})


def ts(*args: int) -> float:
    hour, minute = (*args[3:], 0, 0)[:2]
    return datetime(args[0], args[1], args[2], hour, minute, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "when", "start", "end"),
    [
        ("day", (2024, 3, 5, 13, 30), (2024, 3, 5), (2024, 3, 6)),
        ("week", (2024, 3, 10, 23, 59), (2024, 3, 4), (2024, 3, 11)),  # Sunday -> the Monday before
        ("week", (2024, 3, 11, 0, 0), (2024, 3, 11), (2024, 3, 18)),  # Monday 00:00 starts a week
        ("month", (2024, 2, 29, 12, 0), (2024, 2, 1), (2024, 3, 1)),  # leap year
        ("month", (2024, 12, 31, 23, 59), (2024, 12, 1), (2025, 1, 1)),
    ],
)
def test_calendar_windows_are_utc(
    period: str, when: tuple[int, ...], start: tuple[int, ...], end: tuple[int, ...]
) -> None:
    assert calendar_window(period, ts(*when)) == (ts(*start), ts(*end))


async def spend(backend: Backend, plan, usd: float) -> Reservation | Refusal:  # type: ignore[no-untyped-def]
    decision = await backend.reserve(plan, cost=usd)
    if isinstance(decision, Reservation):
        await backend.settle(decision, cost=usd)
    return decision


async def test_daily_budget_refuses_until_utc_midnight(backend: Backend, clock: FakeClock) -> None:
    plan = budget(1.0)
    clock.set(datetime(2024, 1, 1, 23, 0, tzinfo=UTC))
    assert isinstance(await spend(backend, plan, 0.6), Reservation)
    assert isinstance(await spend(backend, plan, 0.4), Reservation)
    refusal = await spend(backend, plan, 0.01)
    assert isinstance(refusal, Refusal)
    assert (refusal.reason, refusal.rule_id, refusal.retry_after) == ("budget", "spend", 3600)
    clock.set(datetime(2024, 1, 2, 0, 0, tzinfo=UTC))
    assert isinstance(await spend(backend, plan, 0.9), Reservation)


async def test_weekly_budget_resets_on_monday(backend: Backend, clock: FakeClock) -> None:
    plan = budget(1.0, "cost_per_week")
    clock.set(datetime(2024, 1, 2, tzinfo=UTC))  # Tuesday
    assert isinstance(await spend(backend, plan, 1.0), Reservation)
    clock.set(datetime(2024, 1, 7, 23, 59, 59, tzinfo=UTC))  # Sunday night
    refusal = await spend(backend, plan, 0.1)
    assert isinstance(refusal, Refusal) and refusal.retry_after == 1
    clock.set(datetime(2024, 1, 8, tzinfo=UTC))  # Monday
    assert isinstance(await spend(backend, plan, 1.0), Reservation)


async def test_monthly_budget_resets_on_the_first(backend: Backend, clock: FakeClock) -> None:
    plan = budget(5.0, "cost_per_month")
    clock.set(datetime(2024, 1, 3, tzinfo=UTC))
    assert isinstance(await spend(backend, plan, 5.0), Reservation)
    clock.set(datetime(2024, 1, 31, 12, tzinfo=UTC))
    refusal = await spend(backend, plan, 0.1)
    assert isinstance(refusal, Refusal) and refusal.retry_after == 12 * 3600
    clock.set(datetime(2024, 2, 1, tzinfo=UTC))
    assert isinstance(await spend(backend, plan, 4.0), Reservation)


async def test_settle_corrects_the_estimated_cost(backend: Backend) -> None:
    plan = budget(1.0)
    reservation = await backend.reserve(plan, cost=1.0)
    assert isinstance(reservation, Reservation)
    assert isinstance(await backend.reserve(plan, cost=0.01), Refusal)
    await backend.settle(reservation, cost=0.25)
    corrected = await backend.reserve(plan, cost=0.75)
    assert isinstance(corrected, Reservation) and corrected.remaining == (0.0,)  # exactly $0.75 came back
    assert isinstance(await backend.reserve(plan, cost=0.01), Refusal)


async def test_cost_estimate_must_fit_in_what_is_left(backend: Backend) -> None:
    plan = budget(1.0)
    assert isinstance(await backend.reserve(plan, cost=0.75), Reservation)
    refused = await backend.reserve(plan, cost=0.5)  # $0.25 left: $0.5 does not fit
    assert isinstance(refused, Refusal) and refused.reason == "budget" and not refused.never_fits
    assert refused.error().status == 429 and refused.error().headers["retry-after"]
    exact = await backend.reserve(plan, cost=0.25)  # exactly what is left: fits
    assert isinstance(exact, Reservation) and exact.remaining == (0.0,)
    assert isinstance(await backend.reserve(plan, cost=0.0), Refusal)  # spent: even unknown cost is refused


async def test_sequential_calls_never_spend_past_the_budget(backend: Backend) -> None:
    # The case: $1/day, calls of $0.14 each (estimate = actual). "Admitted while spent < $1"
    # let an 8th call in ($1.12); the estimate must fit, so 7 calls ($0.98) and the 8th is refused.
    plan = budget(1.0)
    spent, admitted = 0.0, 0
    for _ in range(20):
        decision = await backend.reserve(plan, cost=0.14)
        if isinstance(decision, Refusal):
            break
        await backend.settle(decision, cost=0.14)
        spent += 0.14
        admitted += 1
    assert admitted == 7 and spent <= 1.0
    # Float sums of dollars at the edge: ten $0.1 calls fill a $1 budget exactly, the 11th is refused.
    tenths = budget(1.0, unit="cost_per_week")  # another counter
    decisions = [isinstance(await backend.reserve(tenths, cost=0.1), Reservation) for _ in range(11)]
    assert decisions == [True] * 10 + [False]


async def test_unknown_cost_is_refused_once_the_budget_is_spent(backend: Backend) -> None:
    plan = budget(1.0)
    assert isinstance(await spend(backend, plan, 0.0), Reservation)
    assert isinstance(await spend(backend, plan, 1.0), Reservation)
    assert isinstance(await spend(backend, plan, 0.0), Refusal)


async def test_every_matching_budget_must_pass_and_counts_the_spend(backend: Backend) -> None:
    rules = compile_(
        budgets=[
            {"id": "team-day", "limit_to": 10, "unit": "cost_per_day"},
            {"id": "per-user", "limit_to": 1, "unit": "cost_per_day", "budget_applies_per": "user"},
        ]
    )
    alice, bob = rules.match(user("alice@x.com"), MODEL, {}), rules.match(user("bob@x.com"), MODEL, {})
    assert isinstance(await spend(backend, alice, 1.0), Reservation)
    refusal = await spend(backend, alice, 0.5)
    assert isinstance(refusal, Refusal) and refusal.rule_id == "per-user"
    assert isinstance(await spend(backend, bob, 1.0), Reservation)
    reservation = await backend.reserve(rules.match(user("carol@x.com"), MODEL, {}), cost=0.5)
    assert isinstance(reservation, Reservation)
    assert reservation.remaining == (7.5, 0.5)  # team-day holds alice's and bob's spend


async def test_audit_mode_records_but_never_refuses(backend: Backend) -> None:
    plan = budget(1.0, audit_mode=True)
    for _ in range(3):
        assert isinstance(await spend(backend, plan, 0.8), Reservation)
    reservation = await backend.reserve(plan, cost=0.1)
    assert isinstance(reservation, Reservation)
    assert reservation.remaining[0] == pytest.approx(1.0 - 2.5)
    assert (reservation.audit_ids, reservation.budget_ids) == (("spend",), ())


async def test_audit_rule_beside_an_enforced_rule(backend: Backend) -> None:
    rules = compile_(
        budgets=[
            {"id": "watch", "limit_to": 0.5, "unit": "cost_per_day", "audit_mode": True},
            {"id": "cap", "limit_to": 1.0, "unit": "cost_per_day"},
        ]
    )
    plan = rules.match(user(), MODEL, {})
    assert isinstance(await spend(backend, plan, 1.0), Reservation)
    refusal = await spend(backend, plan, 0.1)
    assert isinstance(refusal, Refusal) and refusal.rule_id == "cap"


async def test_rate_limit_and_budget_reserve_together_all_or_nothing(backend: Backend) -> None:
    rules = compile_(
        [{"id": "rpm", "limit_to": 3, "unit": "requests_per_minute"}],
        budgets=[{"id": "cap", "limit_to": 1.0, "unit": "cost_per_day"}],
    )
    plan = rules.match(user(), MODEL, {})
    assert isinstance(await spend(backend, plan, 1.0), Reservation)
    refusal = await spend(backend, plan, 0.5)
    assert isinstance(refusal, Refusal) and refusal.rule_id == "cap"
    reservation = await backend.reserve(plan, cost=0.0)  # refused budget took no request from rpm...
    assert isinstance(reservation, Refusal)  # ...but the budget is spent, so this is refused too
    rpm_only = compile_([{"id": "rpm", "limit_to": 3, "unit": "requests_per_minute"}]).match(user(), MODEL, {})
    assert isinstance(await backend.reserve(rpm_only), Reservation)
    assert isinstance(await backend.reserve(rpm_only), Reservation)
    assert isinstance(await backend.reserve(rpm_only), Refusal)


def test_refusals_map_to_openai_errors_with_retry_after() -> None:
    rate = Refusal("rate_limit", 7, "rpm", 10, "requests_per_minute").error()
    assert (rate.status, rate.type, rate.headers) == (429, "rate_limit_exceeded", {"retry-after": "7"})
    assert "rpm" in rate.message
    spent = Refusal("budget", 60, "cap", 2.5, "cost_per_day").error()
    assert isinstance(spent, BudgetExceeded)
    assert (spent.status, orjson.loads(spent.body())["error"]["type"]) == (429, "budget_exceeded")
    assert "cap" in spent.message and "$2.5" in spent.message
    down = Refusal("backend_unavailable", 1).error()
    assert (down.status, down.headers) == (503, {"retry-after": "1"})


def test_refusal_message_names_the_limit_in_words() -> None:
    assert (
        "allows 100 requests per minute. Retry after 7s."
        in Refusal("rate_limit", 7, "rpm", 100, "requests_per_minute").error().message
    )
    assert "allows 1 request per hour." in Refusal("rate_limit", 7, "rph", 1, "requests_per_hour").error().message
    assert "allows 1 token per day." in Refusal("rate_limit", 7, "tpd", 1, "tokens_per_day").error().message
