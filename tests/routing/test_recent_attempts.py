"""RecentAttempts: the admin API's per-target count, latency p50 and error rate over the last 5 minutes."""

from __future__ import annotations

from relaygate.routing.stats import RECENT_SAMPLES, RECENT_WINDOW, RecentAttempts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_p50_and_error_rate_over_the_window() -> None:
    clock = Clock()
    recent = RecentAttempts(clock)
    for ms, failed in ((10.0, False), (30.0, True), (20.0, False), (40.0, False)):
        recent.record("model:a/b", ms, failed)
    assert recent.summary("model:a/b") == (4, 25.0, 0.25)
    assert recent.summary("model:other") == (0, None, None)


def test_old_attempts_leave_the_window() -> None:
    clock = Clock()
    recent = RecentAttempts(clock)
    recent.record("k", 100.0, True)
    clock.now += RECENT_WINDOW / 2
    recent.record("k", 10.0, False)
    clock.now += RECENT_WINDOW / 2 + 1
    assert recent.summary("k") == (1, 10.0, 0.0)


def test_samples_per_target_are_bounded_and_keys_combine() -> None:
    recent = RecentAttempts(Clock())
    for i in range(RECENT_SAMPLES * 3):
        recent.record("a", float(i), False)
    recent.record("b", 1.0, True)
    count, _, rate = recent.summary("a", "b")
    assert count == RECENT_SAMPLES + 1 and rate is not None and 0 < rate < 0.01
