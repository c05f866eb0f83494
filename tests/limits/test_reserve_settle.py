"""Reserve all-or-nothing across rules, and token settlement (refund, overcharge, unknown usage)."""

from __future__ import annotations

from relaygate.limits.backend import Backend, Refusal, Reservation
from tests.limits.conftest import FakeClock, compile_, user

MODEL = "openai-main/gpt-4o"


def tpm(limit: int, *extra_rules: dict):  # type: ignore[no-untyped-def, type-arg]
    return compile_([{"id": "tpm", "limit_to": limit, "unit": "tokens_per_minute"}, *extra_rules]).match(
        user(), MODEL, {}
    )


async def reserve_ok(backend: Backend, plan, **kwargs: object) -> Reservation:  # type: ignore[no-untyped-def]
    decision = await backend.reserve(plan, **kwargs)  # type: ignore[arg-type]
    assert isinstance(decision, Reservation), decision
    return decision


async def test_refusal_takes_nothing_from_the_other_rules(backend: Backend) -> None:
    rules = compile_(
        [
            {"id": "shared", "limit_to": 2, "unit": "requests_per_minute"},
            {"id": "per-user", "limit_to": 1, "unit": "requests_per_minute", "rate_limit_applies_per": "user"},
        ]
    )
    alice, bob, carol = (rules.match(user(f"{n}@x.com"), MODEL, {}) for n in ("alice", "bob", "carol"))
    await reserve_ok(backend, alice)
    refused = await backend.reserve(alice)
    assert isinstance(refused, Refusal) and refused.rule_id == "per-user"
    await reserve_ok(backend, bob)  # "shared" still had room: alice's refused request took nothing
    refused = await backend.reserve(carol)
    assert isinstance(refused, Refusal) and refused.rule_id == "shared"


async def test_first_exceeded_rule_in_order_answers(backend: Backend) -> None:
    rules = compile_(
        [
            {"id": "first", "limit_to": 1, "unit": "requests_per_minute"},
            {"id": "second", "limit_to": 1, "unit": "requests_per_hour"},
        ]
    )
    plan = rules.match(user(), MODEL, {})
    await reserve_ok(backend, plan)
    refused = await backend.reserve(plan)
    assert isinstance(refused, Refusal) and refused.rule_id == "first"


async def test_reservation_reports_remaining_per_rule(backend: Backend) -> None:
    plan = tpm(1000, {"id": "rpm", "limit_to": 5, "unit": "requests_per_minute"})
    reservation = await reserve_ok(backend, plan, tokens=300)
    assert reservation.remaining == (700.0, 4.0)
    assert reservation.rate_limit_ids == ("tpm", "rpm")


async def test_tokens_reserved_from_the_estimate(backend: Backend) -> None:
    plan = tpm(1000)
    assert (await reserve_ok(backend, plan, tokens=1000)).remaining == (0.0,)
    refused = await backend.reserve(plan, tokens=1)  # the whole estimate was taken at once
    assert isinstance(refused, Refusal) and refused.rule_id == "tpm"


async def test_estimate_must_fit_in_what_is_left(backend: Backend) -> None:
    plan = tpm(1000)
    await reserve_ok(backend, plan, tokens=600)
    refused = await backend.reserve(plan, tokens=401)  # 400 left
    assert isinstance(refused, Refusal) and refused.rule_id == "tpm" and not refused.never_fits
    assert 1 <= refused.retry_after <= 60  # it fits once the 600 slide out
    assert (await reserve_ok(backend, plan, tokens=400)).remaining == (0.0,)  # exactly what is left
    assert isinstance(await backend.reserve(plan, tokens=1), Refusal)  # the limit is reached


async def test_retry_after_is_when_enough_has_slid_out_for_the_estimate(backend: Backend, clock: FakeClock) -> None:
    plan = tpm(1000)
    await reserve_ok(backend, plan, tokens=300)  # slot 0
    clock.advance(20)
    await reserve_ok(backend, plan, tokens=300)  # slot 20
    clock.advance(20)
    await reserve_ok(backend, plan, tokens=300)  # slot 40; 100 left
    small = await backend.reserve(plan, tokens=200)  # fits once the first 300 leave: at 60 s, 20 s from now
    large = await backend.reserve(plan, tokens=600)  # needs the second 300 gone too: at 80 s
    assert isinstance(small, Refusal) and isinstance(large, Refusal)
    assert small.retry_after == 20 and large.retry_after == 40
    clock.advance(20)
    await reserve_ok(backend, plan, tokens=200)


async def test_settle_refunds_unused_tokens(backend: Backend) -> None:
    plan = tpm(1000)
    reservation = await reserve_ok(backend, plan, tokens=1000)
    assert isinstance(await backend.reserve(plan, tokens=1), Refusal)
    await backend.settle(reservation, tokens=100)
    assert (await reserve_ok(backend, plan, tokens=900)).remaining == (0.0,)  # exactly 900 came back
    assert isinstance(await backend.reserve(plan, tokens=1), Refusal)


async def test_settle_charges_tokens_beyond_the_estimate(backend: Backend) -> None:
    plan = tpm(1000)
    reservation = await reserve_ok(backend, plan, tokens=100)
    await backend.settle(reservation, tokens=950)
    assert isinstance(await backend.reserve(plan, tokens=51), Refusal)  # 950 counted, not 100
    assert (await reserve_ok(backend, plan, tokens=50)).remaining == (0.0,)
    refused = await backend.reserve(plan, tokens=1)
    assert isinstance(refused, Refusal) and refused.rule_id == "tpm"


async def test_settle_with_unknown_usage_keeps_the_estimate(backend: Backend) -> None:
    plan = tpm(1000)
    reservation = await reserve_ok(backend, plan, tokens=700)
    await backend.settle(reservation, tokens=None)  # stream cut before usage arrived
    assert (await reserve_ok(backend, plan, tokens=300)).remaining == (0.0,)  # the 700 still counts
    assert isinstance(await backend.reserve(plan, tokens=1), Refusal)


async def test_settle_twice_refunds_once(backend: Backend) -> None:
    plan = tpm(1000)
    await reserve_ok(backend, plan, tokens=500)
    reservation = await reserve_ok(backend, plan, tokens=500)
    await backend.settle(reservation, tokens=0)
    await backend.settle(reservation, tokens=0)
    await reserve_ok(backend, plan, tokens=500)
    assert isinstance(await backend.reserve(plan, tokens=1), Refusal)


async def test_settle_never_changes_request_counts(backend: Backend) -> None:
    plan = compile_([{"id": "rpm", "limit_to": 1, "unit": "requests_per_minute"}]).match(user(), MODEL, {})
    reservation = await reserve_ok(backend, plan, tokens=10)
    await backend.settle(reservation, tokens=0, cost=0.0)
    assert isinstance(await backend.reserve(plan), Refusal)


async def test_estimate_larger_than_the_whole_limit_is_refused_as_never_fitting(backend: Backend) -> None:
    plan = tpm(1000, {"id": "rpm", "limit_to": 5, "unit": "requests_per_minute"})
    refused = await backend.reserve(plan, tokens=1001)
    assert isinstance(refused, Refusal) and refused.never_fits and refused.rule_id == "tpm"
    error = refused.error()
    assert error.status == 400 and error.type == "invalid_request_error" and error.code == "exceeds_limit"
    assert "retry-after" not in error.headers
    assert "never fit" in error.message and "'tpm'" in error.message and "1,001" in error.message
    assert "1,000 tokens per minute" in error.message and "max_tokens" in error.message
    # It took nothing, from any rule: the whole limit and all 5 requests are still there.
    assert (await reserve_ok(backend, plan, tokens=1000)).remaining == (0.0, 4.0)
    assert isinstance(await backend.reserve(plan, tokens=1001), Refusal)


async def test_estimate_equal_to_the_whole_limit_fits_an_empty_window(backend: Backend) -> None:
    plan = tpm(1000)
    reservation = await reserve_ok(backend, plan, tokens=1000)
    refused = await backend.reserve(plan, tokens=1000)
    assert isinstance(refused, Refusal) and not refused.never_fits  # full now, fits later: 429
    await backend.settle(reservation, tokens=200)  # settle corrects the pessimistic estimate
    assert (await reserve_ok(backend, plan, tokens=800)).remaining == (0.0,)


async def test_overage_of_a_request_longer_than_the_window_lands_now(backend: Backend, clock: FakeClock) -> None:
    plan = tpm(1000)
    reservation = await reserve_ok(backend, plan, tokens=100)
    clock.advance(200)  # a very long stream: the reservation's slot (and key) have expired
    await backend.settle(reservation, tokens=1100)  # the 1000 beyond the estimate count from now
    refused = await backend.reserve(plan, tokens=1)
    assert isinstance(refused, Refusal) and refused.retry_after == 60  # counted from now, not from the old slot
    clock.advance(60)
    assert (await reserve_ok(backend, plan, tokens=1)).remaining == (999.0,)


async def test_refund_after_the_reservation_slid_out_is_ignored(backend: Backend, clock: FakeClock) -> None:
    plan = tpm(1000)
    reservation = await reserve_ok(backend, plan, tokens=500)
    clock.advance(61)
    await reserve_ok(backend, plan, tokens=1000)
    await backend.settle(reservation, tokens=0)  # its slot is gone; must not refund the new one
    assert isinstance(await backend.reserve(plan, tokens=1), Refusal)
