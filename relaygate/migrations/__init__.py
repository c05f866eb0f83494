"""The versioned PostgreSQL schema: numbered SQL steps, applied once each, in order.

Steps are the files `postgres/NNNN_name.sql` beside this module (versions 1, 2, 3... without gaps);
a released step is never edited, a change is a new step. `migrate_postgres(conn)` runs in one
transaction: it takes a transaction-scoped advisory lock (so replicas starting together queue up
instead of racing), creates `relaygate_schema_version` if missing, applies every step not recorded
there, records each, and commits. Running it again is a no-op; a failed step rolls everything back.

A database that records a version this code does not know was migrated by a newer Relaygate and is
refused, as the SQLite stores refuse a newer schema.

SQLite keeps its own per-store versioning (`relaygate_meta` for tokens, `PRAGMA user_version` for the
request log) in the store modules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from relaygate.errors import DatabaseError

if TYPE_CHECKING:
    from psycopg import AsyncConnection

SCHEMA_TABLE = "relaygate_schema_version"
# pg_advisory_xact_lock key: the bytes "rgmigrat" as a signed 64-bit integer.
LOCK_KEY = int.from_bytes(b"rgmigrat", "big", signed=True)
_STEP_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(DatabaseError):
    """The schema cannot be brought to this code's version (newer database, broken step list)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One schema change: its version number, a name for people, and the SQL it runs."""

    version: int
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """What one `migrate_postgres` call did: the versions it applied and the version now in place."""

    applied: tuple[int, ...]
    version: int


def postgres_steps() -> tuple[Step, ...]:
    """The packaged steps in version order; checks that versions run 1..N without gaps."""
    folder = resources.files(__package__).joinpath("postgres")
    steps = []
    for entry in folder.iterdir():
        match = _STEP_FILE.match(entry.name)
        if match:
            steps.append(Step(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    steps.sort(key=lambda s: s.version)
    versions = [s.version for s in steps]
    if versions != list(range(1, len(steps) + 1)):
        raise MigrationError(f"migration steps must be numbered 1..N without gaps, found {versions}")
    return tuple(steps)


def latest_version(steps: Sequence[Step] | None = None) -> int:
    """The schema version this code writes."""
    steps = postgres_steps() if steps is None else steps
    return max((s.version for s in steps), default=0)


async def migrate_postgres(conn: AsyncConnection[Any], steps: Sequence[Step] | None = None) -> MigrationResult:
    """Bring the schema up to date under an advisory lock, in one transaction (see the module doc).

    `conn` must be in autocommit mode (no transaction open); the lock is released at commit.
    """
    steps = postgres_steps() if steps is None else tuple(steps)
    known = {s.version for s in steps}
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute(f"SELECT version FROM {SCHEMA_TABLE}")
        present = {int(row[0]) for row in await cursor.fetchall()}
        unknown = sorted(present - known)
        if unknown:
            raise MigrationError(
                f"the database schema has version(s) {unknown}, newer than this Relaygate knows "
                f"(up to {latest_version(steps)}); upgrade Relaygate"
            )
        for step in steps:
            if step.version in present:
                continue
            await conn.execute(step.sql)  # packaged SQL, never caller input
            await conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version, name) VALUES (%s, %s)", (step.version, step.name))
            applied.append(step.version)
    return MigrationResult(tuple(applied), max(present | set(applied), default=0))


async def schema_version(conn: AsyncConnection[Any]) -> int:
    """The highest applied version (0 when the database was never migrated)."""
    cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,))
    row = await cursor.fetchone()
    if not row or not row[0]:
        return 0
    cursor = await conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}")
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
