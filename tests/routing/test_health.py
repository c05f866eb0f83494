"""Cooldown: which failures count, the rolling window's edges, doubling, reset, retry-after, memory bounds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from relaygate.routing import health as health_module
from relaygate.routing.health import CooldownPolicy, HealthTracker, counts_toward_cooldown

KEY = "proxy:acct/a"


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock, **policy: Any) -> HealthTracker:
    return HealthTracker(CooldownPolicy(**policy), clock=clock)


def fail_at(health: HealthTracker, clock: Clock, *times: float, key: str = KEY) -> list[bool]:
    started = []
    for t in times:
        clock.now = t
        started.append(health.record_failure(key))
    return started


def cool_once(health: HealthTracker, clock: Clock, start: float) -> float:
    """Three failures at `start`; returns how long the cooldown lasts."""
    fail_at(health, clock, start, start, start)
    return health.cooled_until(KEY) - start


# -- which failures count -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 429, 500, 502, 503, 504, 599])
def test_upstream_fault_statuses_count_toward_cooldown(status: int) -> None:
    assert counts_toward_cooldown(status, network_error=False)


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 400, 404, 408, 409, 413, 422, 600])
def test_caller_fault_and_success_statuses_do_not_count(status: int) -> None:
    assert not counts_toward_cooldown(status, network_error=False)


def test_network_error_counts_toward_cooldown() -> None:
    assert counts_toward_cooldown(None, network_error=True)


def test_no_status_and_no_network_error_does_not_count() -> None:
    assert not counts_toward_cooldown(None, network_error=False)


# -- threshold and window ------------------------------------------------------------------------


def test_unknown_target_is_not_cooled() -> None:
    health = tracker(Clock())
    assert not health.is_cooled(KEY)
    assert health.cooled_until(KEY) == 0.0


def test_failures_below_threshold_do_not_cool() -> None:
    clock = Clock()
    health = tracker(clock)
    assert fail_at(health, clock, 0.0, 1.0) == [False, False]
    assert not health.is_cooled(KEY)


def test_threshold_failures_inside_window_cool_the_target() -> None:
    clock = Clock()
    health = tracker(clock)
    assert fail_at(health, clock, 0.0, 30.0, 59.999) == [False, False, True]
    assert health.is_cooled(KEY)


def test_failure_exactly_window_old_no_longer_counts() -> None:
    clock = Clock()
    health = tracker(clock)
    assert fail_at(health, clock, 0.0, 10.0, 60.0) == [False, False, False]
    assert not health.is_cooled(KEY)


def test_failure_just_under_window_old_still_counts() -> None:
    clock = Clock()
    health = tracker(clock)
    assert fail_at(health, clock, 0.5, 10.0, 60.25) == [False, False, True]


def test_fractional_window_edge_expires_exactly() -> None:
    clock = Clock()
    health = tracker(clock, window=0.3)
    assert fail_at(health, clock, 0.1, 0.2, 0.4) == [False, False, False]


def test_cooled_until_now_plus_cooldown() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 10.0, 15.0, 20.0)
    assert health.cooled_until(KEY) == 50.0


def test_still_cooled_just_before_cooldown_ends() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 10.0, 15.0, 20.0)
    clock.now = 49.999
    assert health.is_cooled(KEY)


def test_not_cooled_exactly_when_cooldown_ends() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 10.0, 15.0, 20.0)
    clock.now = 50.0
    assert not health.is_cooled(KEY)


def test_is_cooled_accepts_an_explicit_now() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 0.0, 0.0, 0.0)
    assert health.is_cooled(KEY, now=29.0)
    assert not health.is_cooled(KEY, now=30.0)


def test_failures_while_cooled_do_not_extend_the_cooldown() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 0.0, 0.0, 0.0)
    assert fail_at(health, clock, 5.0, 6.0, 7.0) == [False, False, False]
    assert health.cooled_until(KEY) == 30.0


def test_cooldown_is_per_target() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 0.0, 0.0, 0.0)
    assert not health.is_cooled("proxy:acct/b")


def test_custom_policy_threshold_and_duration() -> None:
    clock = Clock()
    health = tracker(clock, threshold=1, base_cooldown=5.0)
    assert fail_at(health, clock, 3.0) == [True]
    assert health.cooled_until(KEY) == 8.0


# -- repeats, cap, reset --------------------------------------------------------------------------


def test_repeat_cooldown_doubles() -> None:
    clock = Clock()
    health = tracker(clock)
    assert cool_once(health, clock, 0.0) == 30.0
    assert cool_once(health, clock, 100.0) == 60.0
    assert cool_once(health, clock, 200.0) == 120.0


def test_repeat_cooldown_caps_at_five_minutes() -> None:
    clock = Clock()
    health = tracker(clock)
    durations = [cool_once(health, clock, 1000.0 * n) for n in range(7)]
    assert durations == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0, 300.0]


def test_endless_repeat_cooldowns_stay_at_the_cap() -> None:
    clock = Clock()
    health = tracker(clock)
    for n in range(2000):  # a permanently broken target over days: the doubling must not overflow
        cool_once(health, clock, 1000.0 * n)
    assert cool_once(health, clock, 1000.0 * 2000) == 300.0


def test_success_resets_the_doubling_streak() -> None:
    clock = Clock()
    health = tracker(clock)
    cool_once(health, clock, 0.0)
    cool_once(health, clock, 100.0)
    health.record_success(KEY)
    assert cool_once(health, clock, 500.0) == 30.0


def test_success_clears_counted_failures() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 0.0, 1.0)
    health.record_success(KEY)
    assert fail_at(health, clock, 2.0) == [False]
    assert not health.is_cooled(KEY)


def test_success_ends_an_active_cooldown() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 0.0, 0.0, 0.0)
    health.record_success(KEY)
    assert not health.is_cooled(KEY)


def test_success_on_unknown_target_is_harmless() -> None:
    health = tracker(Clock())
    health.record_success(KEY)
    assert health.tracked() == 0


# -- retry-after ----------------------------------------------------------------------------------


def test_retry_after_cools_a_single_failure_that_long() -> None:
    clock = Clock(10.0)
    health = tracker(clock)
    assert health.record_failure(KEY, retry_after=45.0)
    assert health.cooled_until(KEY) == 55.0


def test_retry_after_longer_than_cooldown_extends_it() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 0.0, 0.0)
    assert health.record_failure(KEY, retry_after=50.0)
    assert health.cooled_until(KEY) == 50.0


def test_retry_after_shorter_than_cooldown_does_not_shorten_it() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 0.0, 0.0)
    health.record_failure(KEY, retry_after=5.0)
    assert health.cooled_until(KEY) == 30.0


def test_retry_after_is_capped_at_max_cooldown() -> None:
    clock = Clock()
    health = tracker(clock)
    health.record_failure(KEY, retry_after=86_400.0)
    assert health.cooled_until(KEY) == 300.0


def test_retry_after_that_changes_nothing_reports_no_new_cooldown() -> None:
    clock = Clock()
    health = tracker(clock)
    health.record_failure(KEY, retry_after=86_400.0)
    assert not health.record_failure(KEY, retry_after=86_400.0)


@pytest.mark.parametrize("retry_after", [0.0, -5.0, math.nan])
def test_meaningless_retry_after_is_ignored(retry_after: float) -> None:
    clock = Clock()
    health = tracker(clock)
    assert not health.record_failure(KEY, retry_after=retry_after)
    assert not health.is_cooled(KEY)


def test_retry_after_cooldown_does_not_double_the_next_one() -> None:
    clock = Clock()
    health = tracker(clock)
    health.record_failure(KEY, retry_after=10.0)
    assert cool_once(health, clock, 100.0) == 30.0


# -- memory bounds -------------------------------------------------------------------------------


def test_tracked_targets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_module, "MAX_TRACKED_TARGETS", 3)
    clock = Clock()
    health = tracker(clock)
    for n in range(10):
        health.record_failure(f"proxy:acct/{n}")
    assert health.tracked() == 3


def test_least_recently_failed_target_is_forgotten_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_module, "MAX_TRACKED_TARGETS", 2)
    clock = Clock()
    health = tracker(clock, threshold=2)
    health.record_failure("a")
    health.record_failure("b")
    health.record_failure("a")  # "a" is cooled and now the most recent
    health.record_failure("c")  # evicts "b", not "a"
    assert health.is_cooled("a")
    assert health.tracked() == 2


def test_failure_history_per_target_is_bounded() -> None:
    clock = Clock()
    health = tracker(clock)
    fail_at(health, clock, 0.0, 0.0, 0.0)
    for n in range(10_000):  # a cooled target still tried as a last resort under load
        clock.now = 1.0 + n / 1000.0
        health.record_failure(KEY)
    assert len(health._targets[KEY].failures) <= health.policy.threshold
