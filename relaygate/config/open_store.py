"""Opening the config store a database URL names: SQLite (the embedded default) or PostgreSQL.

Apart from both implementations so that neither imports the other.
"""

from __future__ import annotations

from relaygate.config.store import ConfigStore, SQLiteConfigStore
from relaygate.database import is_postgres_url


def open_config_store(database_url: str) -> ConfigStore:
    """The config store a database URL names (created or migrated, ready)."""
    if is_postgres_url(database_url):
        from relaygate.config.store_postgres import PostgresConfigStore  # psycopg only when asked for

        return PostgresConfigStore(database_url)
    return SQLiteConfigStore(database_url)
