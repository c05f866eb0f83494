"""Where tokens live: records keyed by public id, secrets kept only as hashes.

`TokenStore` is the protocol the authenticator and the CLI use; `SQLiteTokenStore` is the embedded
implementation and `store_postgres.PostgresTokenStore` the shared one for several replicas;
`open_store.open_token_store(url)` picks by URL. Store methods block: the authenticator calls them through
`asyncio.to_thread`, the CLI calls them directly.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from relaygate.auth.tokens import new_token
from relaygate.database import connect_sqlite

KIND_PERSONAL = "personal"
KIND_VIRTUAL_ACCOUNT = "virtual-account"
# The subject prefix each token kind must carry (see docs/SCHEMAS.md "Tokens, subjects and access").
_SUBJECT_PREFIX = {KIND_PERSONAL: "user:", KIND_VIRTUAL_ACCOUNT: "virtualaccount:"}

TOKENS_SCHEMA_VERSION = 2  # 2: the `metadata` column
_META_KEY = "tokens_schema"
_ID_ATTEMPTS = 5


class TokenStoreError(RuntimeError):
    """The token database cannot be used (e.g. written by a newer Relaygate)."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One token as stored. Holds the secret's hash only, so it is safe to cache, list and log."""

    id: str
    kind: str  # "personal" | "virtual-account"
    subject: str  # "user:alice@x.com" | "virtualaccount:bot"
    name: str | None
    secret_hash: str
    created_at: float  # unix seconds
    expires_at: float | None  # unix seconds; None = never
    revoked_at: float | None  # unix seconds; None = live
    metadata: dict[str, str] = field(default_factory=dict, hash=False)  # free-form labels (admin API)

    def active(self, now: float) -> bool:
        """Whether the token may be used at wall-clock time `now`."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


class TokenStore(Protocol):
    """What the authenticator, the CLI and the admin API need from a token backend (SQLite or PostgreSQL)."""

    def create(
        self,
        kind: str,
        subject: str,
        name: str | None,
        expires_at: float | None,
        metadata: dict[str, str] | None = None,
    ) -> tuple[str, TokenRecord]: ...

    def get(self, token_id: str) -> TokenRecord | None: ...

    def list(self) -> builtins.list[TokenRecord]: ...

    def page(
        self,
        *,
        subjects: Sequence[str] | None = None,
        revoked: bool | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 50,
    ) -> builtins.list[TokenRecord]:
        """Newest first (created_at, id), strictly after the `after` cursor; `subjects`: only these owners;
        `revoked`: only revoked (True) or unrevoked (False) tokens."""
        ...

    def set_expiry(self, token_id: str, expires_at: float) -> TokenRecord | None:
        """Make a token expire at `expires_at` (never later than it already would): rotation's grace
        period. The updated record, or None when the id is unknown."""
        ...

    def revoke(self, token_id: str) -> bool: ...

    def revoked_since(self, since: float) -> builtins.list[tuple[str, float]]: ...

    def close(self) -> None: ...


def normalize_subject(kind: str, subject: str) -> str:
    """Check that the subject fits the kind; `virtual-account:x` is accepted as `virtualaccount:x`."""
    prefix = _SUBJECT_PREFIX.get(kind)
    if prefix is None:
        raise ValueError(f"unknown token kind {kind!r}; use 'personal' or 'virtual-account'")
    subject = subject.strip()
    if kind == KIND_VIRTUAL_ACCOUNT and subject.startswith("virtual-account:"):
        subject = prefix + subject[len("virtual-account:") :]
    if not subject.startswith(prefix) or not subject[len(prefix) :].strip():
        raise ValueError(f"a {kind} token needs a subject of the form '{prefix}<name>', got {subject!r}")
    return subject


_CREATE_TABLES = """
CREATE TABLE IF NOT EXISTS relaygate_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    name TEXT,
    secret_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS tokens_subject ON tokens (subject);
"""

_COLUMNS = "id, kind, subject, name, secret_hash, created_at, expires_at, revoked_at, metadata"


def encode_metadata(metadata: dict[str, str] | None) -> str:
    return orjson.dumps(metadata or {}).decode()


def record_of(row: Sequence[Any]) -> TokenRecord:
    """A stored row (`_COLUMNS` order) as a record; metadata from JSON text (SQLite) or jsonb (PostgreSQL)."""
    raw = row[8]
    metadata = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    labels = {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    id_, kind, subject, name, secret_hash, created_at, expires_at, revoked_at = row[:8]
    return TokenRecord(
        str(id_),
        str(kind),
        str(subject),
        None if name is None else str(name),
        str(secret_hash),
        float(created_at),
        None if expires_at is None else float(expires_at),
        None if revoked_at is None else float(revoked_at),
        labels,
    )


def page_clauses(
    subjects: Sequence[str] | None, revoked: bool | None, after: tuple[float, str] | None, placeholder: str
) -> tuple[str, builtins.list[object]]:
    """The WHERE text (maybe empty) and parameters of a `page` query, for either store."""
    where: builtins.list[str] = []
    params: builtins.list[object] = []
    if subjects is not None:
        if not subjects:
            where.append("1 = 0")
        else:
            where.append(f"subject IN ({', '.join(placeholder for _ in subjects)})")
            params.extend(subjects)
    if revoked is not None:
        where.append("revoked_at IS NOT NULL" if revoked else "revoked_at IS NULL")
    if after is not None:
        where.append(f"(created_at < {placeholder} OR (created_at = {placeholder} AND id < {placeholder}))")
        params.extend([after[0], after[0], after[1]])
    return (" WHERE " + " AND ".join(where)) if where else "", params


class SQLiteTokenStore:
    """Tokens in a SQLite file, safe to share between the event loop's worker threads."""

    def __init__(self, database_url: str, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = connect_sqlite(database_url)
        try:
            self._migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Create the tables once; refuse a schema newer than this code understands.

        The version lives in our own `relaygate_meta` row, not `PRAGMA user_version`, because the
        request-log store may share this database file and version itself independently.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _CREATE_TABLES.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT value FROM relaygate_meta WHERE key = ?", (_META_KEY,)).fetchone()
            if row is not None and int(row[0]) > TOKENS_SCHEMA_VERSION:
                raise TokenStoreError(
                    f"token tables are at schema {row[0]}, newer than this Relaygate supports "
                    f"({TOKENS_SCHEMA_VERSION}); upgrade Relaygate"
                )
            # Version 2: token metadata (a table made by version 1 gets the column).
            present = {r[1] for r in conn.execute("PRAGMA table_info(tokens)")}
            if "metadata" not in present:
                conn.execute("ALTER TABLE tokens ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'")
            conn.execute("CREATE INDEX IF NOT EXISTS tokens_created ON tokens (created_at, id)")
            conn.execute(
                "INSERT INTO relaygate_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_META_KEY, str(TOKENS_SCHEMA_VERSION)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise TokenStoreError("token store is closed")
        return self._conn

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
        with self._lock:
            conn = self._connection()
            for _ in range(_ID_ATTEMPTS):
                token, token_id, secret_hash = new_token()
                record = TokenRecord(token_id, kind, subject, name, secret_hash, now, expires_at, None, labels)
                try:
                    conn.execute(
                        f"INSERT INTO tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (token_id, kind, subject, name, secret_hash, now, expires_at, None, encode_metadata(labels)),
                    )
                except sqlite3.IntegrityError:
                    continue  # id collision: astronomically rare, just draw again
                return token, record
        raise TokenStoreError("could not allocate a unique token id")

    def get(self, token_id: str) -> TokenRecord | None:
        """The record for a public id, or None when unknown."""
        with self._lock:
            row = self._connection().execute(f"SELECT {_COLUMNS} FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return None if row is None else record_of(row)

    def list(self) -> builtins.list[TokenRecord]:
        """Every token, oldest first (revoked and expired included, for `relaygate tokens list`)."""
        with self._lock:
            rows = self._connection().execute(f"SELECT {_COLUMNS} FROM tokens ORDER BY created_at, id").fetchall()
        return [record_of(row) for row in rows]

    def page(
        self,
        *,
        subjects: Sequence[str] | None = None,
        revoked: bool | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 50,
    ) -> builtins.list[TokenRecord]:
        """Newest first after the `after` cursor (see `TokenStore.page`)."""
        where, params = page_clauses(subjects, revoked, after, "?")
        sql = f"SELECT {_COLUMNS} FROM tokens{where} ORDER BY created_at DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._connection().execute(sql, [*params, max(int(limit), 0)]).fetchall()
        return [record_of(row) for row in rows]

    def set_expiry(self, token_id: str, expires_at: float) -> TokenRecord | None:
        """Bring a token's expiry forward to `expires_at` (never later); the record, None when unknown."""
        with self._lock:
            conn = self._connection()
            conn.execute(
                "UPDATE tokens SET expires_at = ? WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)",
                (expires_at, token_id, expires_at),
            )
            row = conn.execute(f"SELECT {_COLUMNS} FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return None if row is None else record_of(row)

    def revoke(self, token_id: str) -> bool:
        """Mark a token revoked; False if the id is unknown. Revoking twice keeps the first time."""
        with self._lock:
            conn = self._connection()
            cursor = conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._clock(), token_id),
            )
            if cursor.rowcount:
                return True
            return conn.execute("SELECT 1 FROM tokens WHERE id = ?", (token_id,)).fetchone() is not None

    def revoked_since(self, since: float) -> builtins.list[tuple[str, float]]:
        """(id, revoked_at) of tokens revoked at or after `since`: lets a running gateway drop them
        from its cache within a poll interval instead of the cache TTL."""
        with self._lock:
            rows = (
                self._connection()
                .execute("SELECT id, revoked_at FROM tokens WHERE revoked_at >= ?", (since,))
                .fetchall()
            )
        return [(str(r[0]), float(r[1])) for r in rows]

    def close(self) -> None:
        """Close the connection; later calls raise `TokenStoreError`. Closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
