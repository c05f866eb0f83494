"""Strategies only order targets: weighted draws without replacement, priority with stable ties."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from relaygate.routing.plan import RouteTarget
from relaygate.routing.strategies import STRATEGIES, PriorityStrategy, WeightStrategy

DRAWS = 20_000


def target(name: str, *, weight: int | None = None, priority: int | None = None) -> RouteTarget:
    return RouteTarget(key=f"proxy:acct/{name}", name=name, payload=name, weight=weight, priority=priority)


def weighted(*weights: int) -> list[RouteTarget]:
    return [target(chr(ord("a") + n), weight=w) for n, w in enumerate(weights)]


def primary_shares(targets: Sequence[RouteTarget], seed: int = 1234) -> dict[str, float]:
    rng = random.Random(seed)
    strategy = WeightStrategy()
    counts = Counter(strategy.order(targets, rng)[0].name for _ in range(DRAWS))
    return {name: 100.0 * count / DRAWS for name, count in counts.items()}


def names(targets: Sequence[RouteTarget]) -> list[str]:
    return [t.name for t in targets]


class TopOfRange(random.Random):
    """A generator stuck at the very top of its range, where float rounding bites."""

    def random(self) -> float:
        return 1.0


# -- weight --------------------------------------------------------------------------------------


def test_weight_70_30_primary_share_within_two_points() -> None:
    shares = primary_shares(weighted(70, 30))
    assert shares["a"] == pytest.approx(70.0, abs=2.0)
    assert shares["b"] == pytest.approx(30.0, abs=2.0)


def test_weight_50_25_25_primary_share_within_two_points() -> None:
    shares = primary_shares(weighted(50, 25, 25))
    assert shares["a"] == pytest.approx(50.0, abs=2.0)
    assert shares["b"] == pytest.approx(25.0, abs=2.0)
    assert shares["c"] == pytest.approx(25.0, abs=2.0)


def test_weight_second_place_follows_remaining_weights() -> None:
    rng = random.Random(99)
    targets = weighted(50, 25, 25)
    seconds = Counter(
        order[1].name for order in (WeightStrategy().order(targets, rng) for _ in range(DRAWS)) if order[0].name == "a"
    )
    total = sum(seconds.values())
    assert 100.0 * seconds["b"] / total == pytest.approx(50.0, abs=2.0)


def test_weight_order_is_a_permutation_of_all_targets() -> None:
    targets = weighted(50, 25, 25, 0)
    order = WeightStrategy().order(targets, random.Random(7))
    assert sorted(names(order)) == names(targets)


def test_weight_same_seed_same_order() -> None:
    targets = weighted(40, 30, 20, 10)
    first = [names(WeightStrategy().order(targets, rng)) for rng in [random.Random(5)] for _ in range(50)]
    again = [names(WeightStrategy().order(targets, rng)) for rng in [random.Random(5)] for _ in range(50)]
    assert first == again


def test_zero_weight_target_is_never_primary() -> None:
    shares = primary_shares(weighted(100, 0))
    assert shares == {"a": 100.0}


def test_zero_weight_targets_come_after_every_weighted_target() -> None:
    targets = [target("z1", weight=0), target("a", weight=60), target("z2", weight=0), target("b", weight=40)]
    rng = random.Random(3)
    for _ in range(500):
        assert names(WeightStrategy().order(targets, rng))[2:] == ["z1", "z2"]


def test_missing_and_negative_weights_count_as_zero() -> None:
    targets = [target("none"), target("neg", weight=-5), target("a", weight=10)]
    assert names(WeightStrategy().order(targets, random.Random(0))) == ["a", "none", "neg"]


def test_all_zero_weights_keep_config_order() -> None:
    assert names(WeightStrategy().order(weighted(0, 0, 0), random.Random(0))) == ["a", "b", "c"]


def test_top_of_range_draw_never_picks_a_zero_weight_target() -> None:
    order = WeightStrategy().order(weighted(100, 0), TopOfRange())
    assert names(order) == ["a", "b"]


def test_weight_of_empty_pool_is_empty() -> None:
    assert WeightStrategy().order([], random.Random(0)) == []


# -- priority ------------------------------------------------------------------------------------


def test_priority_lowest_number_first() -> None:
    targets = [target("backup", priority=2), target("primary", priority=0), target("second", priority=1)]
    assert names(PriorityStrategy().order(targets, random.Random(0))) == ["primary", "second", "backup"]


def test_priority_ties_keep_config_order() -> None:
    targets = [target("c", priority=1), target("a", priority=0), target("b", priority=1), target("d", priority=0)]
    assert names(PriorityStrategy().order(targets, random.Random(0))) == ["a", "d", "c", "b"]


def test_priority_missing_goes_last_even_after_huge_numbers() -> None:
    targets = [target("none"), target("huge", priority=2**40), target("zero", priority=0)]
    assert names(PriorityStrategy().order(targets, random.Random(0))) == ["zero", "huge", "none"]


def test_priority_ignores_the_random_generator() -> None:
    targets = [target("a", priority=1), target("b", priority=0)]
    orders = {tuple(names(PriorityStrategy().order(targets, random.Random(seed)))) for seed in range(20)}
    assert orders == {("b", "a")}


# -- registry ------------------------------------------------------------------------------------


def test_strategies_are_registered_under_their_names() -> None:
    assert {name: s.name for name, s in STRATEGIES.items()} == {"weight": "weight", "priority": "priority"}
