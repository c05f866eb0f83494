"""The manifests a snapshot was compiled from, as written (secret references unresolved), for the
admin API's config view. Never read on the request path; holds no pydantic objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServedManifest:
    """One manifest as its file (or the database) holds it: references like `${NAME}` unresolved."""

    type: str
    name: str
    file: str  # the file it was read from, or "(database)"
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ServedConfig:
    """What a load read: its manifests, the files, and every value resolved from the environment
    (so the admin API can mask them wherever they appear; never shown)."""

    manifests: tuple[ServedManifest, ...] = ()
    sources: tuple[str, ...] = ()
    resolved: frozenset[str] = frozenset()


NOTHING_SERVED = ServedConfig()
