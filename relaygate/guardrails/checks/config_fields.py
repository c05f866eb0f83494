"""Reading a check's `config` mapping (as parsed from YAML) with errors that name the field.

Every compile function refuses what it does not understand: a misspelt key (`case_sensitve`) would
otherwise silently fall back to a default and weaken the check. Each error is a `ValueError` whose
message starts with the field's path (`patterns[1].flags: ...`), so the config loader can point at it.
Messages quote config values (an operator's own pattern or word), never request text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from relaygate.guardrails.checks.base import Action

_Choice = TypeVar("_Choice", bound=str)

ACTIONS: tuple[Action, ...] = ("block", "mask")
MAX_FORMAT_CHARS = 200  # a redaction text longer than this is a mistake, not a label


def require_fields(config: Mapping[str, Any], allowed: Collection[str], where: str = "") -> None:
    """Refuse a non-mapping config and any key outside `allowed` (`where`: the path prefix, "patterns[0].")."""
    if not isinstance(config, Mapping):
        raise ValueError(f"{where.rstrip('.') or 'config'}: must be a mapping, not {type(config).__name__}")
    unknown = sorted(str(key) for key in config if key not in allowed)
    if unknown:
        expected = ", ".join(sorted(allowed))
        raise ValueError(f"{where}{unknown[0]}: unknown field (expected one of: {expected})")


def read_choice(
    config: Mapping[str, Any], field: str, choices: tuple[_Choice, ...], default: _Choice, where: str = ""
) -> _Choice:
    """One of `choices` (a YAML string), `default` when absent."""
    value = config.get(field, default)
    for choice in choices:
        if value == choice:
            return choice
    raise ValueError(f"{where}{field}: must be one of {', '.join(choices)}, not {value!r}")


def read_action(config: Mapping[str, Any]) -> Action:
    """`action: block|mask`, default block."""
    return read_choice(config, "action", ACTIONS, "block")


def read_bool(config: Mapping[str, Any], field: str, default: bool) -> bool:
    """A YAML boolean (`true`/`false`): a string such as "false" is refused, not read as truthy."""
    value = config.get(field, default)
    if not isinstance(value, bool):
        raise ValueError(f"{field}: must be true or false, not {value!r}")
    return value


def read_positive_int(config: Mapping[str, Any], field: str) -> int | None:
    """An integer > 0, None when absent (YAML booleans are not integers here)."""
    value = config.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{field}: must be an integer > 0, not {value!r}")
    return value


def read_string_list(value: Any, field: str, max_items: int, max_chars: int) -> list[str]:
    """A non-empty list of non-blank strings, each at most `max_chars` long."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field}: must be a non-empty list")
    if len(value) > max_items:
        raise ValueError(f"{field}: at most {max_items} items, not {len(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{field}[{index}]: must be a non-empty string, not {item!r}")
        if len(item) > max_chars:
            raise ValueError(f"{field}[{index}]: at most {max_chars} characters, not {len(item)}")
    return list(value)


def read_choice_list(
    config: Mapping[str, Any], field: str, choices: tuple[_Choice, ...], default: tuple[_Choice, ...]
) -> tuple[_Choice, ...]:
    """A non-empty subset of `choices`, in `choices` order (so the order written does not matter)."""
    if field not in config:
        return default
    value = config[field]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field}: must be a non-empty list of: {', '.join(choices)}")
    for index, item in enumerate(value):
        if item not in choices:
            raise ValueError(f"{field}[{index}]: unknown value {item!r} (expected one of: {', '.join(choices)})")
    return tuple(choice for choice in choices if choice in value)


def read_redaction_format(config: Mapping[str, Any], field: str, default: str) -> str:
    """The redaction text: a string in which a `{PLACEHOLDER}` (see `render_format`) stands for the label.

    Substituted with `str.replace`, not `str.format`: other braces are kept literally, and nothing
    in the format can reach attributes or fail at request time.
    """
    value = config.get(field, default)
    if not isinstance(value, str):
        raise ValueError(f"{field}: must be a string, not {value!r}")
    if len(value) > MAX_FORMAT_CHARS:
        raise ValueError(f"{field}: at most {MAX_FORMAT_CHARS} characters, not {len(value)}")
    return value


def render_format(format_text: str, placeholder: str, label: str) -> str:
    """`format_text` with `{placeholder}` replaced by `label`."""
    return format_text.replace("{" + placeholder + "}", label)
