"""The warning throttle: one line per key per interval, with the count it held back."""

from __future__ import annotations

from relaygate.observe.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_passes_then_held_back_until_the_interval_with_their_count() -> None:
    clock = Clock()
    throttle = Throttle(10.0, clock=clock)
    assert throttle.allow("a") == 0
    assert [throttle.allow("a") for _ in range(3)] == [None, None, None]
    assert throttle.allow("b") == 0, "keys are throttled apart"
    clock.now += 10.0
    assert throttle.allow("a") == 3
    assert throttle.allow("a") is None


def test_pending_reports_and_resets_the_held_back_count() -> None:
    throttle = Throttle(10.0, clock=Clock())
    throttle.allow("a")
    throttle.allow("a")
    assert throttle.pending("a") == 1 and throttle.pending("a") == 0 and throttle.pending("nope") == 0


def test_keys_are_bounded() -> None:
    throttle = Throttle(10.0, clock=Clock(), max_keys=2)
    for key in ("a", "b", "c"):
        assert throttle.allow(key) == 0
    assert throttle.allow("a") == 0, "the oldest key was forgotten"
    assert throttle.allow("c") is None
