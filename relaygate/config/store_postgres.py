"""Config in PostgreSQL, shared by every replica: the `ConfigStore` protocol over async psycopg.

Same semantics as `SQLiteConfigStore`. A write locks the revision row (`SELECT ... FOR UPDATE`), so
two applies racing cannot both commit against the same revision: the second gets `ConfigConflict`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from relaygate.config.store import (
    CLI_APPLIER,
    MAX_SUMMARY,
    AppliedRevision,
    ConfigConflict,
    Identity,
    StoredConfig,
    StoredManifest,
)
from relaygate.database import PostgresDatabase

_REVISION = "SELECT revision FROM config_revision WHERE id = 1"
_UPSERT = (
    "INSERT INTO manifests (type, name, body, updated_at) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (type, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
)
TIMEOUT = 10.0


class PostgresConfigStore:
    """`ConfigStore` on the `manifests` and `config_revision` tables (migrated on open)."""

    def __init__(self, database_url: str, *, timeout: float = TIMEOUT) -> None:
        self._timeout = timeout
        self._db = PostgresDatabase(database_url, name="relaygate-config", max_size=1, timeout=timeout)

    def revision(self) -> int:
        async def read(conn: AsyncConnection[Any]) -> int:
            row = await (await conn.execute(_REVISION)).fetchone()
            return int(row[0]) if row else 0

        return self._db.call(read, timeout=self._timeout)

    def load(self) -> StoredConfig:
        async def read(conn: AsyncConnection[Any]) -> StoredConfig:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                row = await (await conn.execute(_REVISION)).fetchone()
                cursor = await conn.execute("SELECT type, name, body FROM manifests ORDER BY type, name")
                rows = await cursor.fetchall()
            return StoredConfig(int(row[0]) if row else 0, tuple(StoredManifest(*r) for r in rows))

        return self._db.call(read, timeout=self._timeout)

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

        async def update(conn: AsyncConnection[Any]) -> int:
            async with conn.transaction():
                row = await (await conn.execute(_REVISION + " FOR UPDATE")).fetchone()
                current = int(row[0]) if row else 0
                if current != expected_revision:
                    raise ConfigConflict(
                        f"the stored config changed meanwhile (revision {current}, "
                        f"expected {expected_revision}); run the command again"
                    )
                async with conn.cursor() as cursor:
                    if deletes:
                        await cursor.executemany("DELETE FROM manifests WHERE type = %s AND name = %s", list(deletes))
                    if upserts:
                        await cursor.executemany(_UPSERT, [(m.type, m.name, m.body, now) for m in upserts])
                await conn.execute(
                    "UPDATE config_revision SET revision = %s, updated_at = %s WHERE id = 1", (current + 1, now)
                )
                await conn.execute(
                    "INSERT INTO config_history (revision, applied_at, applied_by, summary) VALUES (%s, %s, %s, %s)",
                    (current + 1, now, applied_by, summary[:MAX_SUMMARY]),
                )
            return current + 1

        return self._db.call(update, timeout=self._timeout)

    def history(self, limit: int = 100) -> list[AppliedRevision]:
        async def read(conn: AsyncConnection[Any]) -> list[AppliedRevision]:
            cursor = await conn.execute(
                "SELECT revision, applied_at, applied_by, summary FROM config_history ORDER BY revision DESC LIMIT %s",
                (limit,),
            )
            rows = await cursor.fetchall()
            return [AppliedRevision(int(r[0]), float(r[1]), str(r[2]), str(r[3])) for r in rows]

        return self._db.call(read, timeout=self._timeout)

    def close(self) -> None:
        self._db.close()
