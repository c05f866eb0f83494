"""Config problems: what is wrong, where, reported all at once.

Every load step (YAML parsing, secret interpolation, schema validation, cross-manifest checks) turns
what it finds into `Problem`s; the loader raises one `ConfigError` holding all of them, so an operator
fixes a whole file in one pass instead of one error per restart. Rules are written from names, paths
and expected values only: a rule never echoes the offending value, which may be a resolved secret.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr, ValidationError

from relaygate.config.suggest import unknown_field_rule

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: file, manifest (e.g. "provider-account/openai openai-main"), field path, rule."""

    file: str
    manifest: str
    field: str
    rule: str
    line: int | None = None  # 1-based, when known (YAML errors)

    def __str__(self) -> str:
        return f"{self.file}: {self.manifest}: {self.field or '-'}: {self.rule}"


class ConfigError(Exception):
    """The config was refused; nothing of it is applied. `str()` is one problem per line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class ConfigNotFound(ConfigError):
    """A config path that does not exist: one clear line, not a list of problems."""


class RuleViolation(ValueError):
    """Raised by schema validators for rules spanning fields, naming the exact sub-path of each break.

    Pydantic would report such a rule at the validator's level only; the path carried here is appended
    to pydantic's location so the problem points at e.g. `integrations[1].loadbalancing_config.weight`.
    """

    def __init__(self, violations: Sequence[tuple[Loc, str]]) -> None:
        self.violations: tuple[tuple[Loc, str], ...] = tuple(violations)
        super().__init__("; ".join(rule for _, rule in self.violations))


def format_path(loc: Sequence[str | int]) -> str:
    """`("integrations", 0, "model_types", 1)` -> `integrations[0].model_types[1]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def data_path(loc: Sequence[str | int], data: Any) -> Loc:
    """Pydantic's loc with discriminated-union tags removed, by walking the input it describes.

    A tagged union adds the tag (e.g. "api-key") to the loc; it is recognisable as the `type` value of
    the mapping being walked that is not also one of its keys.
    """
    path: list[str | int] = []
    current: Any = data
    for part in loc:
        if isinstance(current, Mapping) and part not in current and current.get("type") == part:
            continue
        path.append(part)
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            current = None
    return tuple(path)


def _expected(text: str) -> str:
    """Pydantic's "'a', 'b' or 'c'" -> "one of a, b, c" (or just "a")."""
    items = re.findall(r"'([^']*)'", text)
    if len(items) == 1:
        return str(items[0])
    return "one of " + ", ".join(items) if items else text


_SIMPLE_RULES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field (check the spelling)",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be a string",
}


def _rule(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "string_type" and isinstance(error.get("input"), int | float | bool | datetime.date):
        return "must be a string (quote it in YAML)"
    if kind in _SIMPLE_RULES:
        return _SIMPLE_RULES[kind]
    if kind == "literal_error":
        return f"must be {_expected(str(ctx.get('expected', '')))}"
    if kind in ("too_short", "string_too_short"):
        n = ctx.get("min_length", 1)
        if kind == "string_too_short" or isinstance(error.get("input"), str | SecretStr):
            return "must not be empty" if n == 1 else f"must be at least {n} characters"
        return f"must have at least {n} item{'s' if n != 1 else ''}"
    if kind in ("too_long", "string_too_long"):
        unit = "characters" if kind == "string_too_long" else "items"
        return f"must have at most {ctx.get('max_length')} {unit}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next((v for k, v in ctx.items() if k in ("gt", "ge", "lt", "le")), "")
        return f"must be {bounds[kind]} {limit}"
    if kind in ("value_error", "assertion_error") and ctx.get("error") is not None:
        return str(ctx["error"])
    msg = str(error.get("msg", "is invalid"))
    msg = msg.removeprefix("Value error, ").replace("Input should be", "must be")
    return msg[:1].lower() + msg[1:]


def problems_from_validation(
    err: ValidationError, data: Any, *, file: str, manifest: str, model: type[Any] | None = None
) -> list[Problem]:
    """Pydantic errors as Problems with readable field paths; the offending input is never quoted.
    With the validated `model`, an unknown field names the closest known one (a likely typo)."""
    out: list[Problem] = []
    errors = err.errors()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and _has_item_errors(loc, errors):
            continue  # pydantic counts failed items as missing; the item errors say it better
        ctx = error.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, RuleViolation):
            for sub, rule in cause.violations:
                path = data_path(loc + tuple(sub), data)
                out.append(Problem(file, manifest, format_path(path), rule))
            continue
        if error["type"] in ("union_tag_invalid", "union_tag_not_found") and isinstance(error.get("input"), Mapping):
            loc = loc + ("type",)
            tags = ctx.get("expected_tags")
            rule = f"must be {_expected(str(tags))}" if error["type"] == "union_tag_invalid" else "is required"
        elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            rule = "must be a mapping"
        elif error["type"] == "extra_forbidden" and model is not None:
            rule = unknown_field_rule(model, loc)
        else:
            rule = _rule(error)
        out.append(Problem(file, manifest, format_path(data_path(loc, data)), rule))
    return out


def _has_item_errors(loc: Loc, errors: Sequence[Mapping[str, Any]]) -> bool:
    n = len(loc)
    return any(len(e["loc"]) > n and tuple(e["loc"][:n]) == loc for e in errors)
