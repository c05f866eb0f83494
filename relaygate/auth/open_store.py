"""Opening the token store a database URL names: SQLite (the embedded default) or PostgreSQL.

Apart from both implementations so that neither imports the other (`store.py` holds the protocol, the
records and SQLite; `store_postgres.py` PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from relaygate.auth.store import SQLiteTokenStore, TokenStore
from relaygate.database import is_postgres_url


def open_token_store(database_url: str, *, clock: Callable[[], float] = time.time) -> TokenStore:
    """The token store a database URL names (migrated and ready); raises on a bad or unreachable one."""
    if is_postgres_url(database_url):
        from relaygate.auth.store_postgres import PostgresTokenStore  # psycopg only when asked for

        return PostgresTokenStore(database_url, clock=clock)
    return SQLiteTokenStore(database_url, clock=clock)
