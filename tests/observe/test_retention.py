"""Log retention: `LogStore.purge` on SQLite and PostgreSQL, and the background purger.

The same cases run against both stores: rows older than the cut-off go (in batches), newer ones stay,
and the count returned is exact.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.observe.retention import RetentionPurger, purge_interval
from relaygate.observe.store.base import LogStore
from relaygate.observe.store.postgres import PostgresLogStore
from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.helpers.log_records import log_record

DAY = 86_400.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    if request.param == "sqlite":
        opened: LogStore = SQLiteLogStore(f"sqlite:///{tmp_path / 'logs.db'}")
    else:
        opened = PostgresLogStore(request.getfixturevalue("pg_url"))
    yield opened
    opened.close()


def _ids(store: LogStore) -> set[str]:
    return {row["request_id"] for row in store.query(limit=100_000)}


def _seed(store: LogStore, now: float, ages_in_days: list[float]) -> None:
    store.write_many([log_record(n, time=now - age * DAY) for n, age in enumerate(ages_in_days)])


def test_purge_deletes_only_rows_older_than_the_cutoff(store: LogStore) -> None:
    now = time.time()
    _seed(store, now, [40, 31, 30.01, 29.99, 1, 0])
    assert store.purge(now - 30 * DAY) == 3
    assert _ids(store) == {"req-3", "req-4", "req-5"}
    assert store.purge(now - 30 * DAY) == 0


def test_purge_works_through_many_batches(store: LogStore) -> None:
    now = time.time()
    _seed(store, now, [10.0] * 23 + [0.0] * 4)
    assert store.purge(now - DAY, batch=5) == 23  # type: ignore[call-arg]
    assert len(_ids(store)) == 4


def test_purge_of_an_empty_log_deletes_nothing(store: LogStore) -> None:
    assert store.purge(time.time()) == 0


def test_purge_interval_is_hourly_for_long_retention_and_bounded_below() -> None:
    assert purge_interval(30) == 3600.0
    assert purge_interval(1) == 3600.0
    assert purge_interval(1 / 24) == 150.0  # an hour's retention: every 2.5 minutes
    assert purge_interval(0.00001) == 1.0


async def test_purger_runs_at_start_and_again_every_interval(tmp_path: Path) -> None:
    store = SQLiteLogStore(f"sqlite:///{tmp_path / 'logs.db'}")
    now = time.time()
    _seed(store, now, [0.2, 0.0])  # ~4.8 hours old, and new
    purger = RetentionPurger(store, days=0.0001)  # 8.6 s retention: a pass every second
    assert purger.interval == 1.0
    purger.start()
    try:
        deadline = time.monotonic() + 10
        while _ids(store) != {"req-1"} and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _ids(store) == {"req-1"}
        store.write_many([log_record(7, time=time.time() - 3600)])  # arrives old while running
        deadline = time.monotonic() + 10
        while "req-7" in _ids(store) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _ids(store) == {"req-1"}
        assert purger.deleted == 2 and purger.passes >= 2
    finally:
        await purger.stop()
        store.close()


class _SlowStore:
    """A store whose purge blocks its thread for a while (a large delete)."""

    def __init__(self) -> None:
        self.thread: str | None = None

    def purge(self, before: float) -> int:
        self.thread = threading.current_thread().name
        time.sleep(0.6)
        return 0


async def test_purger_never_blocks_the_event_loop() -> None:
    slow = _SlowStore()
    purger = RetentionPurger(slow, days=30)  # type: ignore[arg-type]
    purger.start()
    try:
        started = time.monotonic()
        ticks = 0
        while time.monotonic() - started < 0.5:  # the blocking purge runs during these ticks
            await asyncio.sleep(0.01)
            ticks += 1
        assert slow.thread is not None and slow.thread != threading.current_thread().name
        assert ticks > 10  # measured ~45; a purge on the loop would allow 1
    finally:
        await purger.stop()


async def test_purger_survives_a_failing_store() -> None:
    class Failing:
        calls = 0

        def purge(self, before: float) -> int:
            Failing.calls += 1
            raise RuntimeError("database is down")

    purger = RetentionPurger(Failing(), days=0.00001)  # type: ignore[arg-type]
    purger.start()
    try:
        deadline = time.monotonic() + 10
        while Failing.calls < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert Failing.calls >= 2  # the task lived on and tried again
    finally:
        await purger.stop()


def test_retention_of_zero_days_is_refused() -> None:
    with pytest.raises(ValueError):
        RetentionPurger(_SlowStore(), days=0)  # type: ignore[arg-type]
