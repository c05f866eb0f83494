"""Request-log stores: SQLite (embedded default) and PostgreSQL (shared by replicas)."""

from __future__ import annotations

from relaygate.database import is_postgres_url
from relaygate.observe.store.base import LogStore


def open_log_store(database_url: str) -> LogStore:
    """The log store a database URL names (migrated and ready); raises on a bad or unreachable one."""
    if is_postgres_url(database_url):
        from relaygate.observe.store.postgres import PostgresLogStore

        return PostgresLogStore(database_url)
    from relaygate.observe.store.sqlite import SQLiteLogStore

    return SQLiteLogStore(database_url)
