"""The embedded request log: one SQLite table written in batches by the sink's worker thread.

The writer and readers (the CLI, the admin API) use separate connections, each behind its own lock,
so a long query never holds up a batch and WAL lets both run at once. An in-memory database cannot
be shared between connections, so there one connection and one lock serve both.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from relaygate.database import connect_sqlite, sqlite_path
from relaygate.observe import rollup, usage
from relaygate.observe.record import LogRecord, subject_candidates
from relaygate.observe.store.base import (
    BOOL_COLUMNS,
    COLUMNS,
    JSON_COLUMNS,
    PURGE_BATCH,
    dump_json,
    row_as_dict,
)
from relaygate.observe.store.search import SQLITE_SEARCH_INDEXES, LogFilter, Owner, decode_row, find_sql, search_sql

# Bump with a migration step in `_migrate` whenever the table changes shape.
SCHEMA_VERSION = 4  # 4: usage_rollup_1m and usage_rollup_1h (relaygate/observe/rollup.py)

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS request_logs (
    id              INTEGER PRIMARY KEY,
    request_id      TEXT NOT NULL,
    time            REAL NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    subject         TEXT,
    token_id        TEXT,
    requested_model TEXT,
    resolved_model  TEXT,
    provider        TEXT,
    model_type      TEXT,
    status          INTEGER NOT NULL,
    streaming       INTEGER NOT NULL,
    input_tokens    INTEGER,
    output_tokens   INTEGER,
    cost_usd        REAL,
    cost_unknown    INTEGER NOT NULL,
    latency_ms      REAL,
    ttft_ms         REAL,
    metadata        TEXT NOT NULL,
    error_type      TEXT,
    error_message   TEXT,
    request_body    BLOB,
    response_body   BLOB,
    truncated       INTEGER NOT NULL,
    extra           TEXT NOT NULL,
    trace_id        TEXT,
    team            TEXT
)
"""
_CREATE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS request_logs_time ON request_logs (time)",
    "CREATE INDEX IF NOT EXISTS request_logs_requested_model ON request_logs (requested_model)",
    "CREATE INDEX IF NOT EXISTS request_logs_resolved_model ON request_logs (resolved_model)",
    "CREATE INDEX IF NOT EXISTS request_logs_subject ON request_logs (subject)",
    "CREATE INDEX IF NOT EXISTS request_logs_trace_id ON request_logs (trace_id)",
)
# Columns added after version 1, by the version that added them (`ALTER TABLE` on open).
_ADDED_COLUMNS: tuple[tuple[int, str, str], ...] = ((2, "trace_id", "TEXT"), (3, "team", "TEXT"))
_SLICE = 16
_ROLLUP_SLICE = 64  # rows aggregated between GIL hand-backs
_INSERT = f"INSERT INTO request_logs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM request_logs"
_PURGE = "DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs WHERE time < ? LIMIT ?)"
_ROLLUP_DDL = tuple(
    statement for t in rollup.ROLLUP_TABLES for statement in (t.ddl(integer="INTEGER", real="REAL"), *t.index_ddl())
)
_ROLLUP_UPSERT = {t.name: t.upsert_sql("?") for t in rollup.ROLLUP_TABLES}
_ROLLUP_PURGE = {
    t.name: f"DELETE FROM {t.name} WHERE rowid IN (SELECT rowid FROM {t.name} WHERE bucket_start < ? LIMIT ?)"
    for t in rollup.ROLLUP_TABLES
}


_ALL_COLUMNS = attrgetter(*COLUMNS)  # one C call reads every field in column order
_BOOL_INDEXES = tuple(i for i, name in enumerate(COLUMNS) if name in BOOL_COLUMNS)
_JSON_INDEXES = tuple(i for i, name in enumerate(COLUMNS) if name in JSON_COLUMNS)


def _to_row(record: LogRecord) -> list[Any]:
    """Column values in `COLUMNS` order: booleans as ints, metadata/extra as JSON text.

    The writer thread converts every row of every request: one attribute read per column in C, then
    only the few columns that need converting (a Python loop over all columns cost ~4 us a row).
    """
    row: list[Any] = list(_ALL_COLUMNS(record))
    for i in _BOOL_INDEXES:
        row[i] = int(row[i])
    for i in _JSON_INDEXES:
        row[i] = dump_json(row[i] or {})
    return row


def _metadata_clause(key: str, value: str) -> tuple[str, list[Any]]:
    """One metadata condition; json_each handles keys a JSON path cannot quote (those with `"`)."""
    if '"' in key:
        return (
            "EXISTS (SELECT 1 FROM json_each(request_logs.metadata) AS m WHERE m.key = ? AND m.value = ?)",
            [key, value],
        )
    return "json_extract(metadata, ?) = ?", [f'$."{key}"', value]


class SQLiteLogStore:
    """`LogStore` on a `request_logs` table in a SQLite file (created and migrated on open)."""

    def __init__(self, database_url: str) -> None:
        self._memory = sqlite_path(database_url) == ":memory:"
        self._write_conn = connect_sqlite(database_url)
        self._write_lock = threading.Lock()
        self._migrate()
        if self._memory:
            self._read_conn = self._write_conn
            self._read_lock = self._write_lock
        else:
            self._read_conn = connect_sqlite(database_url)
            self._read_lock = threading.Lock()
        self._closed = False
        self._rollups = rollup.rollups_enabled()
        self._rollup_metadata: Callable[[], Sequence[str]] = tuple

    def _migrate(self) -> None:
        """Create the table and indexes if missing and record the schema version.

        The version lives in `PRAGMA user_version`; future changes add steps keyed on it.
        """
        conn = self._write_conn
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.execute(_CREATE_TABLE)
                present = {row[1] for row in conn.execute("PRAGMA table_info(request_logs)")}
                for added_in, column, sql_type in _ADDED_COLUMNS:
                    if version < added_in and column not in present:
                        conn.execute(f"ALTER TABLE request_logs ADD COLUMN {column} {sql_type}")
                        present.add(column)
                for statement in (*_CREATE_INDEXES, *SQLITE_SEARCH_INDEXES):
                    conn.execute(statement)
                for statement in _ROLLUP_DDL:  # schema 4; IF NOT EXISTS, so also on every open
                    conn.execute(statement)
                missing = [c for c in COLUMNS if c not in present]
                if missing:
                    raise RuntimeError(
                        f"request_logs (schema version {version}) lacks columns {missing}; "
                        "it was created by another program or needs a migration"
                    )
                if version < SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def write_many(self, records: Sequence[LogRecord]) -> None:
        """Insert the batch in one transaction: all rows land or none do."""
        if not records:
            return
        with self._write_lock:
            conn = self._write_conn
            conn.execute("BEGIN")
            try:
                # Small slices with a GIL hand-back between them: a 500-row batch converted and
                # inserted in one go holds the GIL for ~3 ms and shows up as request tail latency.
                for start in range(0, len(records), _SLICE):
                    conn.executemany(_INSERT, [_to_row(r) for r in records[start : start + _SLICE]])
                    time.sleep(0)
                if self._rollups:
                    self._upsert_rollups(conn, records)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

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
        where: list[str] = []
        params: list[Any] = []
        if model:
            where.append("(requested_model = ? OR resolved_model = ?)")
            params += [model, model]
        if user:
            candidates = subject_candidates(user)
            where.append(f"subject IN ({', '.join('?' for _ in candidates)})")
            params += candidates
        for key, value in (metadata or {}).items():
            clause, clause_params = _metadata_clause(key, value)
            where.append(clause)
            params += clause_params
        if trace_id:
            where.append("trace_id = ?")
            params.append(trace_id.lower())
        sql = _SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        params.append(max(int(limit), 0))
        with self._read_lock:
            rows = self._read_conn.execute(sql, params).fetchall()
        return [row_as_dict(row) for row in rows]

    def search(
        self, filters: LogFilter, cursor: tuple[float, int] | None = None, limit: int = 50, *, bodies: bool = False
    ) -> list[dict[str, Any]]:
        """One page of rows, newest first after `cursor`; bodies only when asked (search.py)."""
        sql, params = search_sql(filters, cursor, limit, "sqlite", bodies=bodies)
        with self._read_lock:
            rows = self._read_conn.execute(sql, params).fetchall()
        return [decode_row(row) for row in rows]

    def find(self, request_id: str, owner: Owner | None = None, *, bodies: bool = False) -> dict[str, Any] | None:
        """The newest row with this request id (within `owner`'s rows when given), bodies when asked."""
        sql, params = find_sql(request_id, owner, bodies=bodies, dialect="sqlite")
        with self._read_lock:
            row = self._read_conn.execute(sql, params).fetchone()
        return None if row is None else decode_row(row)

    def purge(self, before: float, *, batch: int = PURGE_BATCH) -> int:
        """Delete rows older than `before`, `batch` rows per transaction (found through the time index),
        handing the write lock back between batches so the sink is never held up for long."""
        deleted = 0
        while True:
            with self._write_lock:
                count = self._write_conn.execute(_PURGE, (before, batch)).rowcount
            deleted += max(count, 0)
            if count < batch:
                return deleted
            time.sleep(0)

    # -- usage rollups (relaygate/observe/rollup.py) and usage queries (relaygate/observe/usage.py) --

    def configure_rollups(self, metadata_keys: Callable[[], Sequence[str]]) -> None:
        """Where the rolled-up metadata keys come from: the served observability config's
        `metrics.labels.metadata`, read once per batch."""
        self._rollup_metadata = metadata_keys

    def _upsert_rollups(self, conn: sqlite3.Connection, records: Sequence[LogRecord]) -> None:
        """Aggregate the batch per minute (one accumulator per key), then one upsert per key and table."""
        minutes = rollup.Rollup(tuple(self._rollup_metadata()), rollup.WIDTHS["1m"])
        for start in range(0, len(records), _ROLLUP_SLICE):
            minutes.add_all(records[start : start + _ROLLUP_SLICE])
            time.sleep(0)
        self._write_rollup(conn, minutes)

    @staticmethod
    def _write_rollup(conn: sqlite3.Connection, minutes: rollup.Rollup) -> None:
        for table, rows in minutes.table_rows():
            for start in range(0, len(rows), _ROLLUP_SLICE):  # GIL hand-backs, as for the rows
                conn.executemany(_ROLLUP_UPSERT[table.name], rows[start : start + _ROLLUP_SLICE])
                time.sleep(0)

    def write_rollups(self, minutes: rollup.Rollup) -> None:
        """Add a per-minute `Rollup` (and its hourly sums) in one transaction, as `write_many` does
        for its batch; bench/admin_queries.py fills the tables of a bulk-loaded log this way."""
        with self._write_lock:
            conn = self._write_conn
            conn.execute("BEGIN")
            try:
                self._write_rollup(conn, minutes)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def purge_rollups(self, table: str, before: float, *, batch: int = PURGE_BATCH) -> int:
        """Delete `table` ("1m" or "1h") buckets that ended before `before`, in batches like `purge`."""
        last_start = int(before) - rollup.WIDTHS[table]
        deleted = 0
        for target in rollup.ROLLUP_TABLES:
            if target.width != table:
                continue
            while True:
                with self._write_lock:
                    count = self._write_conn.execute(_ROLLUP_PURGE[target.name], (last_start + 1, batch)).rowcount
                deleted += max(count, 0)
                if count < batch:
                    break
                time.sleep(0)
        return deleted

    def usage_query(self, plan: usage.UsagePlan) -> dict[str, Any]:
        """Run a planned usage query (rollups, or a raw scan through the same aggregation) and shape it."""
        if plan.source == "raw":
            sql, params = usage.raw_sql(plan, "sqlite")
            agg = usage.raw_rollup(plan)
            with self._read_lock:
                cursor = self._read_conn.execute(sql, params)
                while chunk := cursor.fetchmany(5000):
                    agg.add_all(usage.raw_record(row) for row in chunk)
            return usage.shape(plan, usage.rows_from_rollup(plan, agg))

        def fetch(sql: str, params: list[Any]) -> list[Any]:
            with self._read_lock:
                return self._read_conn.execute(sql, params).fetchall()

        return usage.run_rollup_query(plan, "sqlite", fetch)

    def close(self) -> None:
        """Close both connections; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            self._write_conn.close()
        if not self._memory:
            with self._read_lock:
                self._read_conn.close()
