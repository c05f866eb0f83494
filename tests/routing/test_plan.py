"""Attempt plans: strategy order, healthy before cooled, all cooled still tried, non-candidates only first."""

from __future__ import annotations

import random

from relaygate.routing.health import CooldownPolicy, HealthTracker
from relaygate.routing.plan import PlannedAttempt, RouteTarget, plan_attempts
from relaygate.routing.strategies import PriorityStrategy, WeightStrategy


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def target(name: str, priority: int, *, candidate: bool = True) -> RouteTarget:
    return RouteTarget(
        key=f"proxy:acct/{name}", name=name, payload=name, priority=priority, fallback_candidate=candidate
    )


def tracker(*cooled: str) -> HealthTracker:
    health = HealthTracker(CooldownPolicy(threshold=1), clock=Clock(100.0))
    for name in cooled:
        health.record_failure(f"proxy:acct/{name}")
    return health


def plan(targets: list[RouteTarget], health: HealthTracker) -> list[PlannedAttempt]:
    return plan_attempts(targets, PriorityStrategy(), health, random.Random(0))


def steps(planned: list[PlannedAttempt]) -> list[tuple[str, bool]]:
    return [(p.target.name, p.cooled) for p in planned]


def test_all_healthy_follows_strategy_order() -> None:
    targets = [target("b", 1), target("a", 0), target("c", 2)]
    assert steps(plan(targets, tracker())) == [("a", False), ("b", False), ("c", False)]


def test_healthy_targets_go_before_cooled_ones() -> None:
    targets = [target("a", 0), target("b", 1), target("c", 2)]
    assert steps(plan(targets, tracker("a"))) == [("b", False), ("c", False), ("a", True)]


def test_cooled_targets_keep_strategy_order_among_themselves() -> None:
    targets = [target("a", 0), target("b", 1), target("c", 2)]
    assert steps(plan(targets, tracker("b", "a"))) == [("c", False), ("a", True), ("b", True)]


def test_all_cooled_targets_are_still_planned() -> None:
    targets = [target("a", 0), target("b", 1)]
    assert steps(plan(targets, tracker("a", "b"))) == [("a", True), ("b", True)]


def test_target_recovers_once_cooldown_ends() -> None:
    clock = Clock(0.0)
    health = HealthTracker(CooldownPolicy(threshold=1, base_cooldown=30.0), clock=clock)
    health.record_failure("proxy:acct/a")
    clock.now = 30.0
    assert steps(plan([target("a", 0), target("b", 1)], health)) == [("a", False), ("b", False)]


def test_non_candidate_primary_is_kept_first() -> None:
    targets = [target("a", 0, candidate=False), target("b", 1)]
    assert steps(plan(targets, tracker())) == [("a", False), ("b", False)]


def test_non_candidate_is_dropped_when_not_first() -> None:
    targets = [target("a", 0), target("b", 1, candidate=False), target("c", 2)]
    assert steps(plan(targets, tracker())) == [("a", False), ("c", False)]


def test_cooled_non_candidate_primary_is_dropped_when_a_healthy_target_leads() -> None:
    targets = [target("a", 0, candidate=False), target("b", 1)]
    assert steps(plan(targets, tracker("a"))) == [("b", False)]


def test_non_candidate_leads_when_higher_priorities_are_cooled() -> None:
    targets = [target("a", 0), target("b", 1, candidate=False)]
    assert steps(plan(targets, tracker("a"))) == [("b", False), ("a", True)]


def test_all_cooled_non_candidate_primary_is_kept_first() -> None:
    targets = [target("a", 0, candidate=False), target("b", 1, candidate=False), target("c", 2)]
    assert steps(plan(targets, tracker("a", "b", "c"))) == [("a", True), ("c", True)]


def test_non_candidate_is_never_planned_after_the_first_attempt() -> None:
    rng = random.Random(11)
    targets = [
        RouteTarget(key=f"proxy:acct/{n}", name=n, payload=n, weight=w, fallback_candidate=n != "x")
        for n, w in (("x", 40), ("y", 30), ("z", 30))
    ]
    for _ in range(500):
        planned = plan_attempts(targets, WeightStrategy(), tracker("y"), rng)
        assert all(p.target.fallback_candidate for p in planned[1:])


def test_weighted_plan_is_deterministic_for_a_seed() -> None:
    targets = [RouteTarget(key=f"proxy:acct/{n}", name=n, payload=n, weight=w) for n, w in (("a", 70), ("b", 30))]
    first = [
        steps(plan_attempts(targets, WeightStrategy(), tracker(), rng)) for rng in [random.Random(8)] for _ in range(20)
    ]
    again = [
        steps(plan_attempts(targets, WeightStrategy(), tracker(), rng)) for rng in [random.Random(8)] for _ in range(20)
    ]
    assert first == again


def test_empty_pool_plans_nothing() -> None:
    assert plan([], tracker()) == []


def test_preferred_sticky_target_goes_first_while_healthy() -> None:
    targets = [target("a", 0), target("b", 1), target("c", 2)]
    planned = plan_attempts(targets, PriorityStrategy(), tracker(), random.Random(0), preferred="c")
    assert steps(planned) == [("c", False), ("a", False), ("b", False)]


def test_preferred_sticky_target_in_cooldown_goes_last() -> None:
    targets = [target("a", 0), target("b", 1)]
    planned = plan_attempts(targets, PriorityStrategy(), tracker("b"), random.Random(0), preferred="b")
    assert steps(planned) == [("a", False), ("b", True)]


def test_unhealthy_targets_go_after_healthy_ones() -> None:
    targets = [target("a", 0), target("b", 1)]
    planned = plan_attempts(targets, PriorityStrategy(), tracker(), random.Random(0), unhealthy=lambda t: t.name == "a")
    assert steps(planned) == [("b", False), ("a", True)]
