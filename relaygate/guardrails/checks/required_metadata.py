"""The `required_metadata` check: a request must carry the listed metadata keys (a team, a cost
centre, a ticket), all of them or at least one, so that usage can be attributed.

A key with an empty value counts as missing: `"team": ""` attributes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from relaygate.guardrails.checks.base import PASSED, Evaluation
from relaygate.guardrails.checks.config_fields import read_choice, read_string_list, require_fields

Operator = Literal["all", "any"]
OPERATORS: tuple[Operator, ...] = ("all", "any")

MAX_KEYS = 100
MAX_KEY_CHARS = 256
_FIELDS = ("keys", "operator")


class RequiredMetadataCheck:
    """A compiled `required_metadata` check."""

    __slots__ = ("keys", "operator")

    def __init__(self, keys: tuple[str, ...], operator: Operator) -> None:
        self.keys = keys
        self.operator: Operator = operator

    def evaluate_metadata(self, metadata: Mapping[str, str]) -> Evaluation:
        """Whether `metadata` has the keys (the reason names the missing keys, never values)."""
        missing = [key for key in self.keys if not metadata.get(key)]
        if not missing or (self.operator == "any" and len(missing) < len(self.keys)):
            return PASSED
        if self.operator == "any":
            return Evaluation(True, f"missing metadata: one of {', '.join(self.keys)}")
        return Evaluation(True, f"missing metadata: {', '.join(missing)}")


def compile_required_metadata(config: Mapping[str, Any]) -> RequiredMetadataCheck:
    """A `required_metadata` check from its config: `keys` (required), `operator` all|any (default all)."""
    require_fields(config, _FIELDS)
    keys = read_string_list(config.get("keys"), "keys", MAX_KEYS, MAX_KEY_CHARS)
    operator = read_choice(config, "operator", OPERATORS, "all")
    return RequiredMetadataCheck(tuple(dict.fromkeys(keys)), operator)
