"""Tokens in PostgreSQL, shared by every replica: the `TokenStore` protocol over async psycopg.

Behaves as `SQLiteTokenStore` does (same records, same errors, same revoke semantics). Each method
is one coroutine run on the `PostgresDatabase` loop thread, so callers keep the blocking protocol
while the I/O is async. Reads are bounded by `timeout` seconds and fail fast while PostgreSQL is
down: the authenticator then serves cached tokens and answers 503 for unknown ones.

A token created on any replica (or by the CLI) is visible to all at once; a revocation reaches every
replica's cache through `revoked_since`, which each gateway polls every second.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from relaygate.auth.store import (
    _ID_ATTEMPTS,
    TokenRecord,
    TokenStoreError,
    normalize_subject,
    page_clauses,
    record_of,
)
from relaygate.auth.tokens import new_token
from relaygate.database import PostgresDatabase
from relaygate.errors import DatabaseError

_COLUMNS = "id, kind, subject, name, secret_hash, created_at, expires_at, revoked_at, metadata"
_INSERT = f"INSERT INTO tokens ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, %s) ON CONFLICT (id) DO NOTHING"
_SET_EXPIRY = "UPDATE tokens SET expires_at = %s WHERE id = %s AND (expires_at IS NULL OR expires_at > %s)"
_GET = f"SELECT {_COLUMNS} FROM tokens WHERE id = %s"
_LIST = f"SELECT {_COLUMNS} FROM tokens ORDER BY created_at, id"
_REVOKE = "UPDATE tokens SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL"
_EXISTS = "SELECT 1 FROM tokens WHERE id = %s"
_REVOKED_SINCE = "SELECT id, revoked_at FROM tokens WHERE revoked_at >= %s"


class PostgresTokenStoreError(TokenStoreError, DatabaseError):
    """The token database failed or is unreachable (message without password)."""


DEFAULT_TIMEOUT = 2.0  # seconds for one store call: an unknown token waits at most this for its 503


class PostgresTokenStore:
    """`TokenStore` on the `tokens` table of a PostgreSQL database (migrated on open)."""

    def __init__(
        self,
        database_url: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 4,
    ) -> None:
        self._clock = clock
        self._timeout = timeout
        self._db = PostgresDatabase(database_url, name="relaygate-tokens", max_size=max_connections, timeout=timeout)

    @property
    def database(self) -> PostgresDatabase:
        """The pool behind this store (tests use it to watch outages)."""
        return self._db

    def _call(self, operation: Callable[[AsyncConnection[Any]], Any]) -> Any:
        try:
            return self._db.call(operation, timeout=self._timeout)
        except DatabaseError as exc:
            raise PostgresTokenStoreError(str(exc)) from None

    def create(
        self,
        kind: str,
        subject: str,
        name: str | None,
        expires_at: float | None,
        metadata: dict[str, str] | None = None,
    ) -> tuple[str, TokenRecord]:
        """Mint and store a token; the full token is returned here once and only its hash is kept."""
        subject = normalize_subject(kind, subject)
        now = self._clock()
        if expires_at is not None and expires_at <= now:
            raise ValueError("expires_at is in the past")
        labels = dict(metadata or {})

        async def insert(conn: AsyncConnection[Any]) -> tuple[str, TokenRecord] | None:
            for _ in range(_ID_ATTEMPTS):
                token, token_id, secret_hash = new_token()
                cursor = await conn.execute(
                    _INSERT, (token_id, kind, subject, name, secret_hash, now, expires_at, Jsonb(labels))
                )
                if cursor.rowcount == 1:
                    return token, TokenRecord(token_id, kind, subject, name, secret_hash, now, expires_at, None, labels)
            return None  # id collisions every time: astronomically rare

        created: tuple[str, TokenRecord] | None = self._call(insert)
        if created is None:
            raise PostgresTokenStoreError("could not allocate a unique token id")
        return created

    def get(self, token_id: str) -> TokenRecord | None:
        """The record for a public id, or None when unknown."""

        async def select(conn: AsyncConnection[Any]) -> TokenRecord | None:
            cursor = await conn.execute(_GET, (token_id,), prepare=True)
            row = await cursor.fetchone()
            return None if row is None else record_of(row)

        record: TokenRecord | None = self._call(select)
        return record

    def list(self) -> builtins.list[TokenRecord]:
        """Every token, oldest first (revoked and expired included, for `relaygate tokens list`)."""

        async def select(conn: AsyncConnection[Any]) -> builtins.list[TokenRecord]:
            cursor = await conn.execute(_LIST)
            return [record_of(row) for row in await cursor.fetchall()]

        records: builtins.list[TokenRecord] = self._call(select)
        return records

    def page(
        self,
        *,
        subjects: Sequence[str] | None = None,
        revoked: bool | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 50,
    ) -> builtins.list[TokenRecord]:
        """Newest first after the `after` cursor (see `TokenStore.page`)."""
        where, params = page_clauses(subjects, revoked, after, "%s")
        sql = f"SELECT {_COLUMNS} FROM tokens{where} ORDER BY created_at DESC, id DESC LIMIT %s"

        async def select(conn: AsyncConnection[Any]) -> builtins.list[TokenRecord]:
            cursor = await conn.execute(sql, [*params, max(int(limit), 0)])
            return [record_of(row) for row in await cursor.fetchall()]

        records: builtins.list[TokenRecord] = self._call(select)
        return records

    def set_expiry(self, token_id: str, expires_at: float) -> TokenRecord | None:
        """Bring a token's expiry forward to `expires_at` (never later); the record, None when unknown."""

        async def update(conn: AsyncConnection[Any]) -> TokenRecord | None:
            async with conn.transaction():
                await conn.execute(_SET_EXPIRY, (expires_at, token_id, expires_at))
                cursor = await conn.execute(_GET, (token_id,))
                row = await cursor.fetchone()
            return None if row is None else record_of(row)

        record: TokenRecord | None = self._call(update)
        return record

    def revoke(self, token_id: str) -> bool:
        """Mark a token revoked; False if the id is unknown. Revoking twice keeps the first time."""
        revoked_at = self._clock()

        async def update(conn: AsyncConnection[Any]) -> bool:
            cursor = await conn.execute(_REVOKE, (revoked_at, token_id))
            if cursor.rowcount:
                return True
            cursor = await conn.execute(_EXISTS, (token_id,))
            return await cursor.fetchone() is not None

        found: bool = self._call(update)
        return found

    def revoked_since(self, since: float) -> builtins.list[tuple[str, float]]:
        """(id, revoked_at) of tokens revoked at or after `since` (each replica polls this every second)."""

        async def select(conn: AsyncConnection[Any]) -> builtins.list[tuple[str, float]]:
            cursor = await conn.execute(_REVOKED_SINCE, (since,), prepare=True)
            return [(str(r[0]), float(r[1])) for r in await cursor.fetchall()]

        revoked: builtins.list[tuple[str, float]] = self._call(select)
        return revoked

    def close(self) -> None:
        """Close the pool; later calls raise `TokenStoreError`. Closing twice is harmless."""
        self._db.close()
