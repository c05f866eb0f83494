"""Config held in the database: manifests written by `relaygate apply`, read by every replica.

Each manifest is one row keyed by `(type, name)` holding its YAML as written: secret references
stay unresolved, so the database never holds a credential that was given as a reference, and each
replica resolves them from its own environment when it loads the config. One revision number is
bumped by every apply; replicas poll that single integer and reload when it moves.

`ConfigStore` is the protocol; `SQLiteConfigStore` is the embedded one and
`store_postgres.PostgresConfigStore` the shared one. `open_store.open_config_store(url)` picks by URL. Methods
block (the gateway calls them through `asyncio.to_thread`, the CLI directly).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from relaygate.database import connect_sqlite

Identity = tuple[str, str]  # (type, name)


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """One manifest as stored: its identity and its YAML text (references unresolved)."""

    type: str
    name: str
    body: str

    @property
    def identity(self) -> Identity:
        return (self.type, self.name)


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """Every stored manifest at one revision (0: nothing was ever applied)."""

    revision: int
    manifests: tuple[StoredManifest, ...]


@dataclass(frozen=True, slots=True)
class AppliedRevision:
    """One committed apply: the revision it made, when, by whom ("cli" or an admin subject), what changed."""

    revision: int
    applied_at: float
    applied_by: str
    summary: str


CLI_APPLIER = "cli"
MAX_SUMMARY = 2000  # characters of a revision's summary kept in the history


class ConfigConflict(RuntimeError):
    """Another apply committed between this one's read and its write; nothing was written."""


class ConfigStore(Protocol):
    """What `apply` and the gateway need from a config backend (SQLite or PostgreSQL)."""

    def revision(self) -> int: ...

    def load(self) -> StoredConfig: ...

    def write(
        self,
        upserts: Sequence[StoredManifest],
        deletes: Sequence[Identity],
        expected_revision: int,
        *,
        applied_by: str = CLI_APPLIER,
        summary: str = "",
    ) -> int:
        """Apply upserts and deletes in one transaction if the revision is still `expected_revision`;
        returns the new revision, raises `ConfigConflict` otherwise. The history gets one row."""
        ...

    def history(self, limit: int = 100) -> list[AppliedRevision]:
        """The latest applied revisions, newest first."""
        ...

    def close(self) -> None: ...


_SQLITE_TABLES = (
    """CREATE TABLE IF NOT EXISTS manifests (
        type TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (type, name)
    )""",
    """CREATE TABLE IF NOT EXISTS config_revision (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        revision INTEGER NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "INSERT OR IGNORE INTO config_revision (id, revision, updated_at) VALUES (1, 0, 0)",
    """CREATE TABLE IF NOT EXISTS config_history (
        revision INTEGER PRIMARY KEY,
        applied_at REAL NOT NULL,
        applied_by TEXT NOT NULL,
        summary TEXT NOT NULL
    )""",
)
_HISTORY_INSERT = "INSERT INTO config_history (revision, applied_at, applied_by, summary) VALUES (?, ?, ?, ?)"


class SQLiteConfigStore:
    """Manifests in the same SQLite file as tokens and the request log."""

    def __init__(self, database_url: str) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = connect_sqlite(database_url)
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for statement in _SQLITE_TABLES:
                self._conn.execute(statement)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.close()
            raise

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("config store is closed")
        return self._conn

    def revision(self) -> int:
        with self._lock:
            row = self._connection().execute("SELECT revision FROM config_revision WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def load(self) -> StoredConfig:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")  # one read snapshot: the revision and the rows it names
            try:
                row = conn.execute("SELECT revision FROM config_revision WHERE id = 1").fetchone()
                rows = conn.execute("SELECT type, name, body FROM manifests ORDER BY type, name").fetchall()
            finally:
                conn.execute("COMMIT")
        return StoredConfig(int(row[0]) if row else 0, tuple(StoredManifest(*r) for r in rows))

    def write(
        self,
        upserts: Sequence[StoredManifest],
        deletes: Sequence[Identity],
        expected_revision: int,
        *,
        applied_by: str = CLI_APPLIER,
        summary: str = "",
    ) -> int:
        now = time.time()
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT revision FROM config_revision WHERE id = 1").fetchone()
                current = int(row[0]) if row else 0
                if current != expected_revision:
                    raise ConfigConflict(
                        f"the stored config changed meanwhile (revision {current}, "
                        f"expected {expected_revision}); run the command again"
                    )
                conn.executemany("DELETE FROM manifests WHERE type = ? AND name = ?", list(deletes))
                conn.executemany(
                    "INSERT INTO manifests (type, name, body, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (type, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                    [(m.type, m.name, m.body, now) for m in upserts],
                )
                conn.execute("UPDATE config_revision SET revision = ?, updated_at = ? WHERE id = 1", (current + 1, now))
                conn.execute(_HISTORY_INSERT, (current + 1, now, applied_by, summary[:MAX_SUMMARY]))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return current + 1

    def history(self, limit: int = 100) -> list[AppliedRevision]:
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT revision, applied_at, applied_by, summary FROM config_history "
                    "ORDER BY revision DESC LIMIT ?",
                    (limit,),
                )
                .fetchall()
            )
        return [AppliedRevision(int(r[0]), float(r[1]), str(r[2]), str(r[3])) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
