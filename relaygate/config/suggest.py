"""Which field a misspelt manifest key probably meant, from the manifest's schema.

Pydantic reports an unknown key (`extra_forbidden`) without the fields that were allowed there;
this walks the model along the error's location (fields, list items, mapping values, union members
and discriminator tags) to the model that refused the key, and picks the closest of its fields.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

_SEQUENCES = (tuple, list, frozenset, set)


def _concrete(annotation: Any) -> list[Any]:
    """`Annotated[X, ...]` -> X; `X | Y | None` -> X, Y; anything else as is."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _concrete(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [c for arg in typing.get_args(annotation) for c in _concrete(arg)]
    return [annotation] if annotation is not type(None) else []


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("type")
    if field is None or typing.get_origin(field.annotation) is not Literal:
        return ()
    return typing.get_args(field.annotation)


def _step(annotation: Any, part: str | int) -> list[Any]:
    out: list[Any] = []
    for kind in _concrete(annotation):
        origin = typing.get_origin(kind)
        args = typing.get_args(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if isinstance(part, str) and part in kind.model_fields:
                out.append(kind.model_fields[part].annotation)
            elif part in _tags(kind) or part == kind.__name__:
                out.append(kind)  # a union member named in the location: same level
        elif origin in _SEQUENCES and isinstance(part, int) and args:
            out.append(args[0])
        elif origin is dict and isinstance(part, str) and len(args) == 2:
            out.append(args[1])
    return out


def known_fields(model: type[BaseModel], parent: Sequence[str | int]) -> set[str]:
    """The field names accepted at `parent` (a pydantic location) in `model`; empty when unknown."""
    current: list[Any] = [model]
    for part in parent:
        current = [nxt for annotation in current for nxt in _step(annotation, part)]
    fields: set[str] = set()
    for annotation in current:
        for kind in _concrete(annotation):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                fields.update(kind.model_fields)
    return fields


def unknown_field_rule(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    """`is not a known field (did you mean 'model_id'?)`, or the fields allowed there."""
    if not loc or not isinstance(loc[-1], str):
        return "is not a known field (check the spelling)"
    fields = known_fields(model, loc[:-1])
    close = difflib.get_close_matches(loc[-1], sorted(fields), n=1, cutoff=0.6)
    if close:
        return f"is not a known field (did you mean '{close[0]}'?)"
    if fields and len(fields) <= 12:
        return f"is not a known field (known fields here: {', '.join(sorted(fields))})"
    return "is not a known field (check the spelling)"
