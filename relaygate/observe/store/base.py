"""The request-log store contract shared by the SQLite (and later PostgreSQL) backends.

Stores are blocking on purpose: the sink calls `write_many` in a worker thread, and the CLI calls
`query` directly, so neither needs an async driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from relaygate.observe.record import LogRecord


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
    ) -> list[dict[str, Any]]:
        """Newest rows first, as dicts keyed by `LogRecord` field names with bodies as text."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
