"""Database URLs, SQLite connections, and the PostgreSQL pool behind the token store and request log.

SQLite is the embedded default (`sqlite:///./relaygate.db`). A `postgresql://` (or `postgres://`) URL
puts tokens and request logs in PostgreSQL so several replicas share them.

Secrets: a URL may carry a password (`postgresql://user:pw@host/db` or `?password=pw`). Text built from
a URL or from a driver error goes through `redact_url` / `scrub` first, and driver exceptions are
re-raised as `DatabaseError` without their chain, so the password reaches no log, error or traceback.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from relaygate.errors import DatabaseError

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    from relaygate.migrations import MigrationResult

DEFAULT_DATABASE_URL = "sqlite:///./relaygate.db"
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
REDACTED = "***"

log = logging.getLogger("relaygate.database")
T = TypeVar("T")
_QUERY_PASSWORD = re.compile(r"(^|&)(password=)([^&]*)", re.IGNORECASE)


class DatabaseURLError(ValueError):
    """A database URL Relaygate cannot use."""


def url_scheme(url: str) -> str:
    """The lower-cased scheme of a URL (`postgres` for `postgres://...`)."""
    return url.split(":", 1)[0].lower() if ":" in url else url.lower()


def is_postgres_url(url: str) -> bool:
    return url_scheme(url) in POSTGRES_SCHEMES


def database_kind(url: str) -> Literal["sqlite", "postgres"]:
    """Which backend a URL selects; raises `DatabaseURLError` for anything else."""
    if is_postgres_url(url):
        if "://" not in url:
            raise DatabaseURLError("PostgreSQL URLs look like postgresql://USER@HOST:PORT/DATABASE")
        return "postgres"
    sqlite_path(url)
    return "sqlite"


def sqlite_path(url: str) -> str:
    """File path of a `sqlite://` URL: `sqlite:///rel.db` is relative, `sqlite:////abs.db` absolute."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise DatabaseURLError("sqlite URL has no file path; use sqlite:///./relaygate.db")
        return path
    if url in ("sqlite://", "sqlite://:memory:", "sqlite:///:memory:"):
        return ":memory:"
    scheme = url_scheme(url)
    if scheme in POSTGRES_SCHEMES:
        raise DatabaseURLError(f"{redact_url(url)} is a PostgreSQL URL, not a SQLite one")
    raise DatabaseURLError(
        f"unsupported database URL scheme {scheme!r}; use sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    )


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


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***` (in the user info and in a `password=` parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    redacted = url
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        user = userinfo.partition(":")[0]
        redacted = redacted.replace(f"//{userinfo}@", f"//{user}:{REDACTED}@", 1)
    if parts.query:
        query = _QUERY_PASSWORD.sub(lambda m: m.group(1) + m.group(2) + REDACTED, parts.query)
        redacted = redacted.replace(f"?{parts.query}", f"?{query}", 1)
    return redacted


def url_secrets(url: str) -> list[str]:
    """Every spelling of the password(s) a URL carries, raw and percent-decoded, longest first."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    for match in _QUERY_PASSWORD.finditer(parts.query):
        found.add(match.group(3))
    found |= {unquote(s) for s in found}
    found.discard("")
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` (an error message, say) with the URL redacted and its password removed wherever it appears."""
    text = text.replace(url, redact_url(url))
    for secret in url_secrets(url):
        text = text.replace(secret, REDACTED)
    return text


def describe_error(exc: BaseException, url: str) -> str:
    """A one-line, password-free description of a driver exception."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return scrub(message, url)


MIGRATION_SECONDS = 3600.0  # the longest opening may take when it applies migrations


class PostgresDatabase:
    """A psycopg async connection pool driven by a private event-loop thread, for blocking callers.

    The stores keep the blocking protocols their callers use (the authenticator and the log sink call
    them through `asyncio.to_thread`, the CLI directly). Each call runs a coroutine on this object's
    own loop, so PostgreSQL I/O is async psycopg and the gateway's event loop never waits on it.

    Opening connects once directly (a clear error if PostgreSQL is unreachable or the URL is wrong),
    applies the schema migrations, then opens the pool.

    Outages: a failed connection attempt (the pool's own, or one replacing a connection found broken),
    a failed query or a timeout marks the database down. Calls waiting for a pooled connection stop
    waiting at once, and until a probe (a fresh connection every `PROBE_INTERVAL` seconds) succeeds,
    calls fail immediately with `DatabaseError` instead of each waiting out the timeout. On recovery
    the pool is rebuilt, so its reconnect backoff cannot delay service.
    """

    PROBE_INTERVAL = 0.5
    CONNECT_TIMEOUT = 5  # seconds; libpq's connect_timeout (at least 2)

    def __init__(self, url: str, *, name: str, max_size: int = 4, timeout: float = 5.0, migrate: bool = True) -> None:
        if database_kind(url) != "postgres":
            raise DatabaseURLError(f"{redact_url(url)} is not a PostgreSQL URL")
        self._url = url
        self.safe_url = redact_url(url)
        self._name = name
        self._max_size = max(max_size, 1)
        self._timeout = timeout
        self._pool: AsyncConnectionPool | None = None
        self._generation = 0  # of the pool in use; connection failures of a replaced pool are ignored
        self._down = False
        self._outage: asyncio.Event | None = None  # set when the database goes down (on the loop)
        self._closed = False
        self._probe: asyncio.Task[None] | None = None
        self.migration: MigrationResult | None = None  # what opening applied (None: not migrated)
        self._loop = asyncio.SelectorEventLoop()  # psycopg's async mode needs a selector loop
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{name}-postgres", daemon=True)
        self._thread.start()
        try:
            # Migrations may build indexes on a large request log (minutes at 10 M rows): give them time;
            # an unreachable server still fails within CONNECT_TIMEOUT inside `_open`.
            self._submit(self._open(migrate), self.CONNECT_TIMEOUT + (MIGRATION_SECONDS if migrate else 60.0))
        except BaseException:
            self._closed = True
            self._stop_loop()
            raise

    # -- blocking API (any thread but the private loop's) ---------------------------------------------

    def call(self, operation: Callable[[AsyncConnection[Any]], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run `operation(conn)` on a pooled autocommit connection and return its result (blocking)."""
        if self._closed:
            raise DatabaseError(f"{self._name}: database connection is closed")
        limit = self._timeout if timeout is None else timeout
        return self._submit(self._run(operation, limit), limit + 5.0)

    @property
    def available(self) -> bool:
        """False while an outage is being waited out (calls fail fast)."""
        return not self._down and not self._closed

    def close(self) -> None:
        """Close the pool and stop the loop thread; later calls raise `DatabaseError`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(self._shutdown(), 15.0)
        except Exception as exc:  # closing must not fail shutdown
            log.warning("%s: closing the PostgreSQL pool failed: %s", self._name, describe_error(exc, self._url))
        finally:
            self._stop_loop()

    def _submit(self, coro: Awaitable[T], wait: float) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("PostgresDatabase blocking call made from its own event loop")
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self._loop)
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise DatabaseError(f"PostgreSQL at {self.safe_url} did not answer within {wait:.0f}s") from None

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10.0)
        if not self._thread.is_alive():
            self._loop.close()

    # -- on the private loop --------------------------------------------------------------------------

    async def _connect(self) -> AsyncConnection[Any]:
        import psycopg

        return await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=self.CONNECT_TIMEOUT, application_name="relaygate"
        )

    async def _open(self, migrate: bool) -> None:
        import psycopg

        try:
            conn = await self._connect()
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {self.safe_url}: {describe_error(exc, self._url)}"
            ) from None
        try:
            if migrate:
                from relaygate.migrations import migrate_postgres

                self.migration = await migrate_postgres(conn)
        except psycopg.Error as exc:
            raise DatabaseError(
                f"migrating PostgreSQL at {self.safe_url} failed: {describe_error(exc, self._url)}"
            ) from None
        finally:
            await conn.close()
        self._outage = asyncio.Event()
        self._pool = await self._new_pool(1)
        self._generation = 1

    def _connection_class(self, generation: int) -> type[AsyncConnection[Any]]:
        """The pool's connection class: reports failed connection attempts so waiters stop at once."""
        import psycopg

        database = self

        class ReportingConnection(psycopg.AsyncConnection[Any]):
            @classmethod
            async def connect(cls, *args: Any, **kwargs: Any) -> Any:
                try:
                    return await super().connect(*args, **kwargs)
                except psycopg.OperationalError as exc:
                    if generation == database._generation:
                        database._mark_down(exc)
                    raise

        return ReportingConnection

    async def _new_pool(self, generation: int) -> AsyncConnectionPool:
        from psycopg_pool import AsyncConnectionPool

        pool: AsyncConnectionPool = AsyncConnectionPool(
            self._url,
            connection_class=self._connection_class(generation),
            min_size=1,
            max_size=self._max_size,
            open=False,
            name=self._name,
            timeout=self._timeout,
            check=AsyncConnectionPool.check_connection,  # a connection broken while idle is replaced
            kwargs={"autocommit": True, "connect_timeout": self.CONNECT_TIMEOUT, "application_name": "relaygate"},
        )
        try:
            await pool.open(wait=True, timeout=self.CONNECT_TIMEOUT + self._timeout)
        except Exception as exc:
            await pool.close(timeout=1.0)
            raise DatabaseError(
                f"cannot open a PostgreSQL pool to {self.safe_url}: {describe_error(exc, self._url)}"
            ) from None
        return pool

    async def _run(self, operation: Callable[[AsyncConnection[Any]], Awaitable[T]], timeout: float) -> T:
        import psycopg

        pool = self._pool
        if self._down or pool is None:
            raise DatabaseError(f"PostgreSQL at {self.safe_url} is unreachable")
        try:
            async with asyncio.timeout(timeout):
                conn = await self._getconn(pool)
                try:
                    return await operation(conn)
                finally:
                    await pool.putconn(conn)
        except (psycopg.OperationalError, TimeoutError) as exc:  # includes PoolTimeout and PoolClosed
            self._mark_down(exc)
            raise DatabaseError(f"PostgreSQL at {self.safe_url} failed: {describe_error(exc, self._url)}") from None
        except psycopg.Error as exc:
            raise DatabaseError(f"PostgreSQL at {self.safe_url}: {describe_error(exc, self._url)}") from None

    async def _getconn(self, pool: AsyncConnectionPool) -> AsyncConnection[Any]:
        """A pooled connection, unless the database goes down while we wait for one."""
        import psycopg

        assert self._outage is not None
        getting = asyncio.ensure_future(pool.getconn())
        outage = asyncio.ensure_future(self._outage.wait())
        try:
            await asyncio.wait((getting, outage), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled (the call timed out): stop waiting
            _abandon(getting, pool)
            raise
        finally:
            outage.cancel()
        if getting.done():
            conn: AsyncConnection[Any] = getting.result()
            return conn
        _abandon(getting, pool)
        raise psycopg.OperationalError("the database went down while waiting for a pooled connection")

    def _mark_down(self, exc: BaseException) -> None:
        if self._down or self._closed:
            return
        self._down = True
        if self._outage is not None:
            self._outage.set()
        log.warning(
            "%s: PostgreSQL at %s unavailable (%s); failing fast until it answers again",
            self._name,
            self.safe_url,
            describe_error(exc, self._url),
        )
        self._probe = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        """Probe with a fresh connection until one works, then replace the pool."""
        while not self._closed:
            await asyncio.sleep(self.PROBE_INTERVAL)
            try:
                conn = await self._connect()
                await conn.close()
                pool = await self._new_pool(self._generation + 1)
            except Exception:
                continue
            old, self._pool = self._pool, pool
            self._generation += 1
            self._outage = asyncio.Event()
            self._down = False
            log.warning("%s: PostgreSQL at %s is reachable again", self._name, self.safe_url)
            if old is not None:
                await old.close(timeout=1.0)
            return

    async def _shutdown(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        if self._pool is not None:
            await self._pool.close(timeout=5.0)


def _abandon(getting: asyncio.Future[Any], pool: AsyncConnectionPool) -> None:
    """Cancel a pending `getconn`; a connection it still delivers goes back to the pool."""

    def give_back(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            asyncio.ensure_future(pool.putconn(future.result()))

    getting.cancel()
    getting.add_done_callback(give_back)


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
