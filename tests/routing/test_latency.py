"""Latency-based ordering, TPOT statistics and sticky sessions (injected clocks, seeded randomness)."""

import random

from relaygate.routing.plan import RouteTarget
from relaygate.routing.stats import LATENCY_WINDOW, LatencyStats
from relaygate.routing.sticky import StickySessions
from relaygate.routing.strategies import LatencyStrategy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _targets(*names: str) -> list[RouteTarget]:
    return [RouteTarget(key=f"model:{n}", name=n, payload=None) for n in names]


def _measure(stats: LatencyStats, name: str, tpot_ms: float, samples: int = 3) -> None:
    for _ in range(samples):
        stats.record(f"model:{name}", duration_ms=tpot_ms * 100, output_tokens=100)


def test_tpot_is_duration_per_output_token() -> None:
    stats = LatencyStats(Clock())
    stats.record("k", duration_ms=500, output_tokens=50)
    assert stats.tpot("k") == 10.0


def test_answers_without_output_tokens_are_not_samples() -> None:
    stats = LatencyStats(Clock())
    stats.record("k", duration_ms=500, output_tokens=0)
    stats.record("k", duration_ms=500, output_tokens=None)
    assert stats.tpot("k") is None


def test_samples_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    stats = LatencyStats(clock)
    stats.record("k", duration_ms=100, output_tokens=10)
    clock.now += LATENCY_WINDOW
    assert stats.count("k") == 0


def test_undersampled_targets_go_first() -> None:
    stats = LatencyStats(Clock())
    _measure(stats, "fast", 5)
    _measure(stats, "new", 50, samples=2)
    order = LatencyStrategy(stats).order(_targets("fast", "new"), random.Random(1))
    assert [t.name for t in order] == ["new", "fast"]


def test_fastest_first_and_slow_targets_last() -> None:
    stats = LatencyStats(Clock())
    _measure(stats, "fast", 5)
    _measure(stats, "slow", 20)
    for seed in range(20):
        order = LatencyStrategy(stats).order(_targets("slow", "fast"), random.Random(seed))
        assert [t.name for t in order] == ["fast", "slow"]


def test_targets_within_the_band_share_the_lead() -> None:
    stats = LatencyStats(Clock())
    _measure(stats, "a", 10)
    _measure(stats, "b", 11.5)  # within 1.2x of the fastest
    firsts = {LatencyStrategy(stats).order(_targets("a", "b"), random.Random(seed))[0].name for seed in range(40)}
    assert firsts == {"a", "b"}


def test_sticky_session_expires_after_its_ttl() -> None:
    clock = Clock()
    sessions = StickySessions(clock)
    sessions.remember(("vm", "s1"), "target-a", ttl=60)
    assert sessions.get(("vm", "s1")) == "target-a"
    clock.now += 60
    assert sessions.get(("vm", "s1")) is None


def test_sticky_sessions_are_bounded() -> None:
    sessions = StickySessions(Clock(), limit=3)
    for i in range(5):
        sessions.remember(("vm", str(i)), "t", ttl=60)
    assert sessions.get(("vm", "0")) is None and sessions.get(("vm", "4")) == "t"
