"""Config held in the database: plan an apply, commit it, and load what is stored.

`plan_apply` validates the file together with the stored manifests it does not replace, exactly as
a replica will load them (YAML, schema, secret references against this environment, cross-manifest
references, compile), and lists the changes; nothing is written. `commit` writes the plan in one
transaction, refused if another apply committed since the plan read the store. `load_stored`
builds the snapshot a replica serves from the stored manifests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relaygate.config.compile import compile_manifests, empty_snapshot
from relaygate.config.diff import Change, compare, manifest_yaml
from relaygate.config.loader import load_sources, split_manifests
from relaygate.config.outbound import GatewayAddress
from relaygate.config.store import CLI_APPLIER, ConfigStore, Identity, StoredConfig, StoredManifest
from relaygate.runtime.snapshot import Snapshot

DATABASE_SOURCE = "(database)"  # how problems and logs name the stored config


@dataclass(frozen=True, slots=True)
class ApplyPlan:
    """What an apply would do, checked against the store at `base_revision`."""

    base_revision: int
    changes: tuple[Change, ...]
    upserts: tuple[StoredManifest, ...]
    deletes: tuple[Identity, ...]
    snapshot: Snapshot  # the config replicas will serve afterwards

    @property
    def changed(self) -> bool:
        return bool(self.upserts or self.deletes)


def plan_apply(
    store: ConfigStore, sources: Sequence[tuple[str, str]], *, prune: bool = False, env: Mapping[str, str] | None = None
) -> ApplyPlan:
    """Validate the `(text, filename)` sources with the stored config they leave in place;
    `ConfigError` lists every problem, naming each file (and `(database)` for stored manifests)."""
    return plan_changes(store.load(), sources, prune=prune, env=env)


def plan_changes(
    stored: StoredConfig,
    sources: Sequence[tuple[str, str]],
    *,
    prune: bool = False,
    env: Mapping[str, str] | None = None,
    gateway: GatewayAddress | None = None,
    stored_source: str = DATABASE_SOURCE,
) -> ApplyPlan:
    """`plan_apply` against manifests already read (the database's, or the ones a gateway serves from
    files, named `stored_source` in problems); `gateway` refuses base URLs that loop back into it."""
    raw = [m for text, filename in sources for m in split_manifests(text, filename)]
    replaced = {m.identity for m in raw}
    kept = [] if prune else [m for m in stored.manifests if m.identity not in replaced]
    manifests = load_sources([(_joined(kept), stored_source), *sources], env)
    snapshot = compile_manifests(manifests, source=sources[0][1] if sources else stored_source, gateway=gateway)
    incoming = [StoredManifest(m.type, m.name, manifest_yaml(m.data)) for m in raw]  # valid: safe to store
    changes = compare(stored.manifests, incoming, prune=prune)
    upserts = tuple(m for m, c in _paired(incoming, changes) if c.kind != "unchanged")
    deletes = tuple(c.identity for c in changes if c.kind == "delete")
    return ApplyPlan(stored.revision, tuple(changes), upserts, deletes, snapshot)


def commit(store: ConfigStore, plan: ApplyPlan, applied_by: str = CLI_APPLIER) -> int:
    """Write the plan atomically, with a history row naming `applied_by` ("cli" or an admin subject);
    returns the new revision (`ConfigConflict` if the store moved on)."""
    return store.write(
        plan.upserts, plan.deletes, plan.base_revision, applied_by=applied_by, summary=change_summary(plan.changes)
    )


def change_summary(changes: Sequence[Change]) -> str:
    """`+ team sre, ~ provider-account/mock mock, - ...`: the changed manifests by identity only."""
    sign = {"create": "+", "update": "~", "delete": "-"}
    return ", ".join(f"{sign[c.kind]} {c.label}" for c in changes if c.kind != "unchanged") or "no changes"


def load_stored(
    stored: StoredConfig, env: Mapping[str, str] | None = None, gateway: GatewayAddress | None = None
) -> Snapshot:
    """The snapshot the stored manifests compile to (empty when nothing was applied yet); `gateway`,
    this replica's own address, refuses base URLs that would loop back into it."""
    if not stored.manifests:
        return empty_snapshot()
    manifests = load_sources([(_joined(stored.manifests), DATABASE_SOURCE)], env)
    return compile_manifests(manifests, source=DATABASE_SOURCE, gateway=gateway)


def _joined(manifests: list[StoredManifest] | tuple[StoredManifest, ...]) -> str:
    return "".join(f"---\n{m.body}" for m in manifests)


def _paired(incoming: list[StoredManifest], changes: list[Change]) -> list[tuple[StoredManifest, Change]]:
    by_identity = {c.identity: c for c in changes}
    return [(m, by_identity[m.identity]) for m in incoming]
