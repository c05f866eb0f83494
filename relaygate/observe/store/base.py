"""The request-log store contract shared by the SQLite and PostgreSQL backends, and their common codec.

Stores are blocking on purpose: the sink calls `write_many` in a worker thread, and the CLI calls
`query` directly. (The PostgreSQL store does its I/O with async psycopg on a loop thread of its own.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from relaygate.observe.record import LogRecord

if TYPE_CHECKING:
    from relaygate.observe.rollup import Rollup
    from relaygate.observe.store.search import LogFilter, Owner
    from relaygate.observe.usage import UsagePlan

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LogRecord))
BOOL_COLUMNS = frozenset({"streaming", "cost_unknown", "truncated"})
JSON_COLUMNS = frozenset({"metadata", "extra"})
BODY_COLUMNS = frozenset({"request_body", "response_body"})
PURGE_BATCH = 5_000  # rows per DELETE: one short transaction each, so the sink's batches interleave


def dump_json(value: dict[str, Any]) -> str:
    """JSON text for metadata/extra; odd values become strings so one row never fails a batch."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def decode_body(value: bytes | memoryview | str | None) -> str | None:
    """Bodies come back as text for display and JSON output; invalid UTF-8 is replaced, not fatal."""
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", errors="replace")


def row_as_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A stored row (`COLUMNS` order) as a dict keyed by `LogRecord` field names: booleans as bools,
    metadata/extra as dicts (JSON text from SQLite, already decoded jsonb from PostgreSQL), bodies as text."""
    out: dict[str, Any] = {}
    for name, value in zip(COLUMNS, row, strict=True):
        if name in BOOL_COLUMNS:
            out[name] = bool(value)
        elif name in JSON_COLUMNS:
            out[name] = (orjson.loads(value) if value else {}) if isinstance(value, str | bytes) else (value or {})
        elif name in BODY_COLUMNS:
            out[name] = decode_body(value)
        else:
            out[name] = value
    return out


class LogStore(Protocol):
    """Where request-log rows end up; the sink is its only writer on the serving path."""

    def write_many(self, records: Sequence[LogRecord]) -> None:
        """Persist a batch in one transaction; raise on failure (the sink counts and drops it)."""
        ...

    def query(
        self,
        *,
        limit: int = 50,
        model: str | None = None,
        user: str | None = None,
        metadata: dict[str, str] | None = None,
        trace_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest rows first, as dicts keyed by `LogRecord` field names with bodies as text."""
        ...

    def search(
        self, filters: LogFilter, cursor: tuple[float, int] | None = None, limit: int = 50, *, bodies: bool = False
    ) -> list[dict[str, Any]]:
        """The admin API's log page: rows matching `filters`, newest first strictly after the `(time, id)`
        cursor, at most `limit`, each with its store `id` and `has_bodies`; the bodies (as text) only
        with `bodies=True`, which the admin API's lists never pass."""
        ...

    def find(self, request_id: str, owner: Owner | None = None, *, bodies: bool = False) -> dict[str, Any] | None:
        """The newest row with this request id (among `owner`'s rows when given); bodies only when asked."""
        ...

    def purge(self, before: float) -> int:
        """Delete rows whose `time` is before `before` (unix seconds), in small batches by the time
        index so writers are never held up for long; return how many were deleted."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


@runtime_checkable
class UsageStore(Protocol):
    """A log store that also keeps the usage rollups (SQLite and PostgreSQL both do)."""

    def configure_rollups(self, metadata_keys: Callable[[], Sequence[str]]) -> None:
        """Where the rolled-up metadata keys come from (read once per batch)."""
        ...

    def write_rollups(self, minutes: Rollup) -> None:
        """Add a per-minute rollup (and its hourly sums) in one transaction."""
        ...

    def purge_rollups(self, table: str, before: float) -> int:
        """Delete `table` ("1m" or "1h") buckets that ended before `before`; how many rows went."""
        ...

    def usage_query(self, plan: UsagePlan) -> dict[str, Any]:
        """Run a planned usage query and return its answer."""
        ...
