"""Compiling and matching rules: `when` fields, their AND, decision order and bucket keys."""

from __future__ import annotations

from relaygate.config.compile_limits import compile_rules
from relaygate.limits.rules import EMPTY_PLAN, NO_RULES
from tests.limits.conftest import compile_, user, virtual_account

MODEL = "openai-main/gpt-4o"
RPM = {"limit_to": 10, "unit": "requests_per_minute"}


def test_no_rules_match_nothing() -> None:
    assert not NO_RULES
    assert NO_RULES.match(user(), MODEL, {}) is EMPTY_PLAN
    assert not compile_rules()


def test_rule_without_when_matches_every_request() -> None:
    rules = compile_([{"id": "all", **RPM}])
    assert [h.rule.id for h in rules.match(virtual_account(), "any/model", {"a": "b"}).hits] == ["all"]


def test_subjects_match_any_of_the_callers_subjects() -> None:
    rules = compile_([{"id": "eng", "when": {"subjects": ["team:eng"]}, **RPM}])
    assert rules.match(user("a@x.com", teams=["eng"]), MODEL, {})
    assert not rules.match(user("b@x.com", teams=["ops"]), MODEL, {})


def test_subjects_match_the_user_itself_and_team_everyone() -> None:
    rules = compile_(
        [
            {"id": "me", "when": {"subjects": ["user:A@x.com"]}, **RPM},
            {"id": "all-users", "when": {"subjects": ["team:everyone"]}, **RPM},
        ]
    )
    assert rules.match(user("a@x.com"), MODEL, {}).rate_limit_ids == ("me", "all-users")
    assert not rules.match(virtual_account(), MODEL, {})  # everyone holds users, not virtual accounts


def test_subjects_match_a_virtual_account() -> None:
    rules = compile_([{"id": "bot", "when": {"subjects": ["virtual-account:ci-bot"]}, **RPM}])
    assert rules.match(virtual_account("ci-bot"), MODEL, {})
    assert not rules.match(virtual_account("other"), MODEL, {})


def test_models_match_the_requested_model_name() -> None:
    rules = compile_([{"id": "gpt", "when": {"models": [MODEL, "my-endpoints/search"]}, **RPM}])
    assert rules.match(user(), MODEL, {})
    assert rules.match(user(), "my-endpoints/search", {})  # custom endpoints: {account}/{endpoint-or-slug}
    assert not rules.match(user(), "openai-main/gpt-4o-mini", {})


def test_metadata_needs_every_key_equal() -> None:
    rules = compile_([{"id": "dev", "when": {"metadata": {"env": "dev", "app": "bot"}}, **RPM}])
    assert rules.match(user(), MODEL, {"env": "dev", "app": "bot", "extra": "x"})
    assert not rules.match(user(), MODEL, {"env": "dev"})
    assert not rules.match(user(), MODEL, {"env": "prod", "app": "bot"})


def test_when_fields_and_together() -> None:
    rules = compile_(
        [{"id": "r", "when": {"subjects": ["team:eng"], "models": [MODEL], "metadata": {"env": "dev"}}, **RPM}]
    )
    eng = user(teams=["eng"])
    assert rules.match(eng, MODEL, {"env": "dev"})
    assert not rules.match(user(), MODEL, {"env": "dev"})
    assert not rules.match(eng, "other/model", {"env": "dev"})
    assert not rules.match(eng, MODEL, {"env": "prod"})


def test_every_matching_rule_applies_rate_limits_first_in_config_order() -> None:
    rules = compile_(
        [
            {"id": "specific", "when": {"models": [MODEL]}, **RPM},
            {"id": "general", **RPM},
            {"id": "other-model", "when": {"models": ["x/y"]}, **RPM},
        ],
        budgets=[{"id": "spend", "limit_to": 5, "unit": "cost_per_day"}],
    )
    plan = rules.match(user(), MODEL, {})
    assert [h.rule.id for h in plan.hits] == ["specific", "general", "spend"]
    assert [h.rule.id for h in rules.match(user(), "x/y", {}).hits] == ["general", "other-model", "spend"]
    assert [h.rule.id for h in rules.match(user(), "un/listed", {}).hits] == ["general", "spend"]


def test_plan_says_which_estimates_are_needed() -> None:
    rules = compile_(
        [
            {"id": "rpm", **RPM},
            {"id": "tpm", "when": {"models": [MODEL]}, "limit_to": 1000, "unit": "tokens_per_minute"},
        ],
        budgets=[{"id": "b", "when": {"models": ["x/y"]}, "limit_to": 5, "unit": "cost_per_day"}],
    )
    plan = rules.match(user(), MODEL, {})
    assert (plan.needs_tokens, plan.needs_cost) == (True, False)
    plan = rules.match(user(), "x/y", {})
    assert (plan.needs_tokens, plan.needs_cost) == (False, True)


def test_plan_reports_applied_ids_by_kind() -> None:
    rules = compile_(
        [{"id": "rpm", **RPM}],
        budgets=[
            {"id": "hard", "limit_to": 5, "unit": "cost_per_day"},
            {"id": "watch", "limit_to": 1, "unit": "cost_per_day", "audit_mode": True},
        ],
    )
    plan = rules.match(user(), MODEL, {})
    assert (plan.rate_limit_ids, plan.budget_ids, plan.audit_ids) == (("rpm",), ("hard",), ("watch",))


def _key(rules_applies_per: list[str], principal=None, model: str = MODEL, metadata=None) -> str:  # type: ignore[no-untyped-def]
    rules = compile_([{"id": "r", "rate_limit_applies_per": rules_applies_per, **RPM}])
    return rules.match(principal or user(), model, metadata or {}).hits[0].key


def test_without_applies_per_the_rule_is_one_shared_pool() -> None:
    assert _key([], user("a@x.com")) == _key([], user("b@x.com")) == "rl:r:requests_per_minute"


def test_applies_per_user_gives_each_user_a_bucket() -> None:
    assert _key(["user"], user("a@x.com")) != _key(["user"], user("b@x.com"))
    assert _key(["user"], user("a@x.com"), model="m/1") == _key(["user"], user("a@x.com"), model="m/2")


def test_applies_per_user_gives_a_virtual_account_its_own_bucket() -> None:
    keys = {_key(["user"], virtual_account("a")), _key(["user"], virtual_account("b")), _key(["user"], user())}
    assert len(keys) == 3


def test_applies_per_virtualaccount_puts_personal_tokens_in_one_none_bucket() -> None:
    assert _key(["virtualaccount"], virtual_account("a")) != _key(["virtualaccount"], virtual_account("b"))
    assert _key(["virtualaccount"], user("a@x.com")) == _key(["virtualaccount"], user("b@x.com"))
    assert _key(["virtualaccount"], user()).endswith(":-")


def test_applies_per_metadata_missing_key_is_its_own_bucket() -> None:
    missing = _key(["metadata.customer"], metadata={})
    assert missing == _key(["metadata.customer"], metadata={"other": "x"})
    assert missing != _key(["metadata.customer"], metadata={"customer": "-"})
    assert missing != _key(["metadata.customer"], metadata={"customer": "(none)"})
    assert _key(["metadata.customer"], metadata={"customer": "a"}) != _key(
        ["metadata.customer"], metadata={"customer": "b"}
    )


def test_applies_per_two_dimensions_combine() -> None:
    per = ["user", "model"]
    keys = {
        _key(per, user("a@x.com"), "m/1"),
        _key(per, user("a@x.com"), "m/2"),
        _key(per, user("b@x.com"), "m/1"),
    }
    assert len(keys) == 3


def test_bucket_keys_cannot_collide_whatever_the_metadata_values() -> None:
    per = ["metadata.a", "metadata.b"]
    first = _key(per, metadata={"a": "x:1=y", "b": "z"})
    second = _key(per, metadata={"a": "x", "b": "1=y:z"})
    third = _key(per, metadata={"a": "x:1=y:1=z"})
    assert len({first, second, third}) == 3


def test_rate_limit_and_budget_with_the_same_id_use_different_counters() -> None:
    rules = compile_([{"id": "same", **RPM}], budgets=[{"id": "same", "limit_to": 5, "unit": "cost_per_day"}])
    keys = [h.key for h in rules.match(user(), MODEL, {}).hits]
    assert len(set(keys)) == 2


def test_empty_subjects_list_matches_nobody() -> None:
    rules = compile_([{"id": "none", "when": {"subjects": []}, **RPM}])
    assert not rules.match(user(), MODEL, {})
