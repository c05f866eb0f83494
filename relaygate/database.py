"""Database URLs and SQLite connections shared by the token store and the request log.

SQLite is the embedded default (`sqlite:///./relaygate.db`); PostgreSQL arrives with the
scale-out work and is refused with a clear message until then.
"""

from __future__ import annotations

import os
import sqlite3

DEFAULT_DATABASE_URL = "sqlite:///./relaygate.db"


class DatabaseURLError(ValueError):
    """A database URL Relaygate cannot use."""


def sqlite_path(url: str) -> str:
    """File path of a `sqlite://` URL: `sqlite:///rel.db` is relative, `sqlite:////abs.db` absolute."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise DatabaseURLError("sqlite URL has no file path; use sqlite:///./relaygate.db")
        return path
    if url in ("sqlite://", "sqlite://:memory:", "sqlite:///:memory:"):
        return ":memory:"
    scheme = url.split(":", 1)[0] if ":" in url else url
    if scheme in ("postgres", "postgresql"):
        raise DatabaseURLError("PostgreSQL storage is not available yet; use a sqlite:/// URL")
    raise DatabaseURLError(f"unsupported database URL scheme {scheme!r}; use sqlite:///PATH")


def connect_sqlite(url: str) -> sqlite3.Connection:
    """Open a connection tuned for one writer and many readers (WAL, busy timeout)."""
    path = sqlite_path(url)
    if path != ":memory:":
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn
