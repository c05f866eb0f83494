"""Folding streamed pieces into one JSON value, the way the APIs' own SDKs accumulate deltas.

Strings concatenate (content, reasoning, arguments, logprob-free text), lists extend (logprobs,
annotations), objects merge field by field, and a null never erases a value already seen (it only
records that the field exists, as a non-streaming answer would show it).
"""

from __future__ import annotations

from typing import Any


def merge_piece(target: dict[str, Any], piece: dict[str, Any], *, replace: frozenset[str] = frozenset()) -> None:
    """Fold `piece` into `target` in place; fields named in `replace` take the newest non-null value instead."""
    for name, value in piece.items():
        current = target.get(name)
        if value is None:
            target.setdefault(name, None)
        elif name in replace:
            target[name] = copy_json(value)
        elif isinstance(value, str) and isinstance(current, str):
            target[name] = current + value
        elif isinstance(value, list) and isinstance(current, list):
            current.extend(copy_json(value))
        elif isinstance(value, dict) and isinstance(current, dict):
            merge_piece(current, value)
        else:
            target[name] = copy_json(value)


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value, so merging never mutates the pieces it read."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value
