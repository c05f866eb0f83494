"""The `required_metadata` check: all or any of the listed keys, empty values counting as missing."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.guardrails.checks.required_metadata import compile_required_metadata


def test_operator_all_names_the_missing_keys() -> None:
    check = compile_required_metadata({"keys": ["team", "ticket"]})
    assert not check.evaluate_metadata({"team": "search", "ticket": "OPS-1", "other": "x"}).violated
    result = check.evaluate_metadata({"team": "search"})
    assert result.violated and result.reason == "missing metadata: ticket"
    assert check.evaluate_metadata({}).reason == "missing metadata: team, ticket"


def test_an_empty_value_is_missing() -> None:
    check = compile_required_metadata({"keys": ["team"]})
    assert check.evaluate_metadata({"team": ""}).violated


def test_operator_any_needs_one_key() -> None:
    check = compile_required_metadata({"keys": ["team", "user"], "operator": "any"})
    assert not check.evaluate_metadata({"user": "ada"}).violated
    result = check.evaluate_metadata({"unrelated": "x"})
    assert result.violated and result.reason == "missing metadata: one of team, user"


def test_reasons_never_carry_values() -> None:
    check = compile_required_metadata({"keys": ["team", "ticket"]})
    assert "secret-value" not in check.evaluate_metadata({"team": "secret-value"}).reason


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "keys"),
        ({"keys": []}, "keys"),
        ({"keys": [""]}, "keys[0]"),
        ({"keys": ["a"], "operator": "one"}, "operator"),
    ],
)
def test_config_errors_name_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as caught:
        compile_required_metadata(config)
    assert str(caught.value).startswith(f"{field}: ")
