"""What an apply would change in the stored config, shown to people before it happens.

Manifests are compared by identity `(type, name)` and by their YAML text. Shown text never holds a
credential: every string inside `auth_data`, and every `headers` value whose name looks like a
credential (authorization, *key*, *token*, *secret*...), is masked unless it is purely a secret
reference, so `relaygate diff` output is safe to paste into a review.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from relaygate.config.store import Identity, StoredManifest

ChangeKind = Literal["create", "update", "delete", "unchanged"]
MASK = "***"
_PURE_REFERENCE = re.compile(r"^(\$\{[^}]*\})+$")
_SECRET_PARENTS = frozenset({"auth_data"})
_VISIBLE_IN_SECRETS = frozenset({"type", "region"})  # auth_data fields that name, not prove
_CREDENTIAL_HEADER = re.compile(r"authorization|key|token|secret|password|cookie|signature", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Change:
    """One manifest's fate: created, updated, deleted (with --prune) or unchanged."""

    kind: ChangeKind
    identity: Identity
    old: str | None  # stored YAML
    new: str | None  # YAML to store

    @property
    def label(self) -> str:
        return f"{self.identity[0]} {self.identity[1]}"


def manifest_yaml(data: dict[str, Any]) -> str:
    """The stored form of a manifest: YAML in the author's key order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def compare(stored: Iterable[StoredManifest], wanted: Iterable[StoredManifest], *, prune: bool) -> list[Change]:
    """Changes from the stored manifests to `wanted`; without `prune`, manifests absent from
    `wanted` are kept (and not listed)."""
    before = {m.identity: m for m in stored}
    after = {m.identity: m for m in wanted}
    changes = []
    for identity, manifest in after.items():
        old = before.get(identity)
        if old is None:
            changes.append(Change("create", identity, None, manifest.body))
        else:
            kind: ChangeKind = "unchanged" if old.body == manifest.body else "update"
            changes.append(Change(kind, identity, old.body, manifest.body))
    if prune:
        changes += [Change("delete", i, m.body, None) for i, m in before.items() if i not in after]
    order = {"delete": 0, "update": 1, "create": 2, "unchanged": 3}
    return sorted(changes, key=lambda c: (order[c.kind], c.identity))


def render(changes: Iterable[Change], *, show_diff: bool) -> str:
    """One line per changed manifest (`+` create, `~` update, `-` delete), then a summary; with
    `show_diff`, a unified diff of each change's masked YAML."""
    lines: list[str] = []
    counts = {"create": 0, "update": 0, "delete": 0, "unchanged": 0}
    sign = {"create": "+", "update": "~", "delete": "-"}
    for change in changes:
        counts[change.kind] += 1
        if change.kind == "unchanged":
            continue
        lines.append(f"{sign[change.kind]} {change.label}")
        if show_diff:
            old = masked_yaml(change.old).splitlines(keepends=True) if change.old else []
            new = masked_yaml(change.new).splitlines(keepends=True) if change.new else []
            for line in difflib.unified_diff(old, new, f"stored/{change.label}", f"applied/{change.label}"):
                lines.append("    " + line.rstrip("\n"))
    lines.append(
        f"{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete, "
        f"{counts['unchanged']} unchanged"
    )
    return "\n".join(lines)


def masked_yaml(text: str) -> str:
    """A manifest's YAML with literal credentials replaced by `***` (references stay readable)."""
    data = yaml.safe_load(text)
    return manifest_yaml(_mask(data, secret=False)) if isinstance(data, dict) else text


def _mask(value: Any, *, secret: bool) -> Any:
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if secret and k in _VISIBLE_IN_SECRETS and isinstance(v, str):
                out[k] = v
            elif k == "headers" and isinstance(v, dict) and not secret:
                out[k] = {h: _mask(hv, secret=bool(_CREDENTIAL_HEADER.search(str(h)))) for h, hv in v.items()}
            else:
                out[k] = _mask(v, secret=secret or k in _SECRET_PARENTS)
        return out
    if isinstance(value, list):
        return [_mask(v, secret=secret) for v in value]
    if secret and isinstance(value, str) and not _PURE_REFERENCE.match(value.strip()):
        return MASK
    return value
