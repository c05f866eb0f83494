"""The shared request log: `request_logs` in PostgreSQL, written by every replica's sink in batches.

Same columns and query semantics as the SQLite store (`relaygate logs` cannot tell them apart);
booleans are booleans, metadata/extra are jsonb and bodies bytea. A batch is one `COPY ... FROM
STDIN` in one transaction: all rows land or none do. The I/O is async psycopg on the
`PostgresDatabase` loop thread; the sink still calls the blocking `write_many` from a worker thread,
and while PostgreSQL is down a batch fails at once (the sink counts and drops it, never a request).

PostgreSQL refuses NUL characters in text and jsonb, which SQLite stores happily: they are replaced
by U+FFFD so one odd caller-supplied string cannot fail a whole batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from relaygate.database import PostgresDatabase
from relaygate.observe.record import LogRecord
from relaygate.observe.store.base import (
    BOOL_COLUMNS,
    COLUMNS,
    JSON_COLUMNS,
    PURGE_BATCH,
    dump_json,
    row_as_dict,
    subject_candidates,
)
from relaygate.observe.store.search import LogFilter, Owner, decode_row, find_sql, search_sql

_QUOTED = tuple(f'"{name}"' for name in COLUMNS)  # `time` is a keyword: quote every column
_COPY = f"COPY request_logs ({', '.join(_QUOTED)}) FROM STDIN"
_SELECT = f"SELECT {', '.join(_QUOTED)} FROM request_logs"
_PURGE = 'DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs WHERE "time" < %s ORDER BY "time" LIMIT %s)'
_SLICE = 64
_NUL = "\x00"
_REPLACEMENT = "\ufffd"

WRITE_TIMEOUT = 10.0  # seconds for one batch
QUERY_TIMEOUT = 30.0


def _clean(value: Any) -> Any:
    """`value` with NUL characters replaced in every string, recursively (dict keys too)."""
    if isinstance(value, str):
        return value.replace(_NUL, _REPLACEMENT)
    if isinstance(value, dict):
        return {_clean(k) if isinstance(k, str) else k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _json_text(value: dict[str, Any] | None) -> str:
    """JSON text fit for jsonb (which refuses \\u0000)."""
    text = dump_json(value or {})
    if "\\u0000" in text:
        text = dump_json(_clean(value or {}))
    return text


def _to_row(record: LogRecord) -> tuple[Any, ...]:
    """Column values in `COLUMNS` order, as COPY sends them."""
    row: list[Any] = []
    for name in COLUMNS:
        value = getattr(record, name)
        if name in BOOL_COLUMNS:
            value = bool(value)
        elif name in JSON_COLUMNS:
            value = _json_text(value)
        elif isinstance(value, str) and _NUL in value:
            value = value.replace(_NUL, _REPLACEMENT)
        row.append(value)
    return tuple(row)


def build_query(
    *,
    limit: int = 50,
    model: str | None = None,
    user: str | None = None,
    metadata: dict[str, str] | None = None,
    trace_id: str | None = None,
) -> tuple[str, list[Any]]:
    """SQL and parameters for `query`: newest first, every given filter must match.

    `model` matches requested or resolved; `user` a bare email or a full subject; all metadata pairs
    must be present with exactly those string values (one jsonb containment, served by the GIN index).
    """
    where: list[str] = []
    params: list[Any] = []
    if model:
        where.append("(requested_model = %s OR resolved_model = %s)")
        params += [model, model]
    if user:
        where.append("subject = ANY(%s)")
        params.append(subject_candidates(user))
    if metadata:
        where.append("metadata @> %s")
        params.append(Jsonb({str(k): str(v) for k, v in metadata.items()}))
    if trace_id:
        where.append("trace_id = %s")
        params.append(trace_id.lower())
    sql = _SELECT
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += ' ORDER BY "time" DESC, id DESC LIMIT %s'
    params.append(max(int(limit), 0))
    return sql, params


class PostgresLogStore:
    """`LogStore` on the `request_logs` table of a PostgreSQL database (migrated on open)."""

    def __init__(self, database_url: str, *, max_connections: int = 2) -> None:
        self._db = PostgresDatabase(
            database_url, name="relaygate-logs", max_size=max_connections, timeout=WRITE_TIMEOUT
        )

    @property
    def database(self) -> PostgresDatabase:
        return self._db

    def write_many(self, records: Sequence[LogRecord]) -> None:
        """COPY the batch in one transaction; raises `DatabaseError` (the sink counts the failure)."""
        if not records:
            return
        rows: list[tuple[Any, ...]] = []
        # Small slices with a GIL hand-back between them, as in the SQLite store: converting a large
        # batch in one go would show up as request tail latency on the event loop thread.
        for start in range(0, len(records), _SLICE):
            rows.extend(_to_row(r) for r in records[start : start + _SLICE])
            time.sleep(0)

        async def copy(conn: AsyncConnection[Any]) -> None:
            async with conn.transaction(), conn.cursor() as cursor, cursor.copy(_COPY) as writer:
                for row in rows:
                    await writer.write_row(row)

        self._db.call(copy, timeout=WRITE_TIMEOUT)

    def query(
        self,
        *,
        limit: int = 50,
        model: str | None = None,
        user: str | None = None,
        metadata: dict[str, str] | None = None,
        trace_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; every given filter must match (model: requested or resolved)."""
        sql, params = build_query(limit=limit, model=model, user=user, metadata=metadata, trace_id=trace_id)

        async def select(conn: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

        rows: list[tuple[Any, ...]] = self._db.call(select, timeout=QUERY_TIMEOUT)
        return [row_as_dict(row) for row in rows]

    def search(
        self, filters: LogFilter, cursor: tuple[float, int] | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """One page of rows for the admin API, newest first after `cursor`; never bodies (search.py)."""
        sql, params = search_sql(filters, cursor, limit, "postgres")

        async def select(conn: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

        rows: list[tuple[Any, ...]] = self._db.call(select, timeout=QUERY_TIMEOUT)
        return [decode_row(row) for row in rows]

    def find(self, request_id: str, owner: Owner | None = None, *, bodies: bool = False) -> dict[str, Any] | None:
        """The newest row with this request id (within `owner`'s rows when given), bodies when asked."""
        sql, params = find_sql(request_id, owner, bodies=bodies, dialect="postgres")

        async def select(conn: AsyncConnection[Any]) -> tuple[Any, ...] | None:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

        row: tuple[Any, ...] | None = self._db.call(select, timeout=QUERY_TIMEOUT)
        return None if row is None else decode_row(row)

    def purge(self, before: float, *, batch: int = PURGE_BATCH) -> int:
        """Delete rows older than `before`, `batch` rows per statement (autocommit: each is its own short
        transaction, found through the ("time", id) index); replicas purging at once just find less."""

        async def delete(conn: AsyncConnection[Any]) -> int:
            cursor = await conn.execute(_PURGE, (before, batch))
            return max(cursor.rowcount, 0)

        deleted = 0
        while True:
            count: int = self._db.call(delete, timeout=QUERY_TIMEOUT)
            deleted += count
            if count < batch:
                return deleted

    def close(self) -> None:
        """Close the pool; safe to call twice."""
        self._db.close()
