"""The log sink: never blocks or raises on submit, batches writes, flushes on close."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from relaygate.observe.record import LogRecord
from relaygate.observe.sink import LogSink
from relaygate.observe.store.sqlite import SQLiteLogStore


def _record(n: int) -> LogRecord:
    return LogRecord(request_id=f"req-{n}", time=1_700_000_000.0 + n, method="POST", path="/v1/x")


def _store(tmp_path: Path) -> SQLiteLogStore:
    return SQLiteLogStore(f"sqlite:///{tmp_path / 'logs.db'}")


class BlockingStore(SQLiteLogStore):
    """A real store whose writes wait until the test lets them through."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.finished = threading.Event()
        self.batch_sizes: list[int] = []

    def write_many(self, records: Sequence[LogRecord]) -> None:
        self.entered.set()
        self.release.wait(10)
        self.batch_sizes.append(len(records))
        try:
            super().write_many(records)
        finally:
            self.finished.set()


class FailingStore(SQLiteLogStore):
    """A real store that is down: every write raises."""

    def write_many(self, records: Sequence[LogRecord]) -> None:
        raise sqlite3.OperationalError("disk I/O error")


async def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_records_are_written(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sink = LogSink(store, flush_interval=0.01)
    await sink.start()
    for n in range(20):
        sink.submit(_record(n))
    await _wait_for(lambda: sink.written == 20)
    await sink.close()
    assert len(store.query(limit=100)) == 20
    assert (sink.submitted, sink.dropped, sink.failed, sink.queue_depth) == (20, 0, 0, 0)
    store.close()


async def test_close_flushes_everything_queued(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sink = LogSink(store, batch_size=7)
    await sink.start()
    for n in range(1000):
        sink.submit(_record(n))
    await sink.close()
    assert sink.written == 1000
    assert len(store.query(limit=2000)) == 1000
    store.close()


async def test_close_without_start_still_flushes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sink = LogSink(store)
    sink.submit(_record(1))
    await sink.close()
    assert [r["request_id"] for r in store.query()] == ["req-1"]
    store.close()


async def test_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    store = BlockingStore(f"sqlite:///{tmp_path / 'logs.db'}")
    sink = LogSink(store, max_queue=3, batch_size=2)
    await sink.start()
    sink.submit(_record(0))
    await asyncio.to_thread(store.entered.wait, 5)  # writer holds record 0 in the store
    started = time.perf_counter()
    for n in range(1, 11):
        sink.submit(_record(n))
    assert time.perf_counter() - started < 0.05
    assert sink.queue_depth == 3
    assert sink.dropped == 7
    store.release.set()
    await sink.close()
    assert sink.written == 4
    assert sink.submitted == sink.written + sink.dropped + sink.failed
    store.close()


async def test_dropped_rows_are_logged_at_warning_once_per_interval_with_the_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "relaygate")
    store = BlockingStore(f"sqlite:///{tmp_path / 'logs.db'}")
    sink = LogSink(store, max_queue=2, batch_size=1)
    await sink.start()
    sink.submit(_record(0))
    await asyncio.to_thread(store.entered.wait, 5)
    for n in range(1, 8):
        sink.submit(_record(n))  # 2 queued, 5 dropped
    drops = [r for r in caplog.records if "request log queue full" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in drops] == [
        (logging.WARNING, "request log queue full (2 rows): 1 rows dropped since the last report, 1 in all")
    ]
    store.release.set()
    await sink.close()
    assert any("request log: 4 more rows dropped (queue full); 5 in all" in r.getMessage() for r in caplog.records)
    assert "req-" not in caplog.text, "no row contents in the warnings"
    store.close()


async def test_batches_drain_up_to_batch_size(tmp_path: Path) -> None:
    store = BlockingStore(f"sqlite:///{tmp_path / 'logs.db'}")
    sink = LogSink(store, batch_size=4)
    await sink.start()
    sink.submit(_record(0))
    await asyncio.to_thread(store.entered.wait, 5)
    for n in range(1, 10):
        sink.submit(_record(n))
    store.release.set()
    await sink.close()
    assert store.batch_sizes == [1, 4, 4, 1]
    store.close()


async def test_failing_store_counts_failed_and_keeps_running(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FailingStore(f"sqlite:///{tmp_path / 'logs.db'}")
    sink = LogSink(store, batch_size=2, flush_interval=0.0)
    await sink.start()
    with caplog.at_level(logging.ERROR, logger="relaygate.observe"):
        for n in range(5):
            sink.submit(_record(n))
        await _wait_for(lambda: sink.failed == 5)
        sink.submit(_record(99))
        await sink.close()
    assert sink.failed == 6 and sink.written == 0 and sink.dropped == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "relaygate.observe"]
    assert len(messages) == 1  # rate-limited to once per 10 s
    assert "OperationalError: disk I/O error" in messages[0]
    assert "req-" not in messages[0]
    store.close()


async def test_store_error_never_reaches_submit_or_close(tmp_path: Path) -> None:
    store = FailingStore(f"sqlite:///{tmp_path / 'logs.db'}")
    sink = LogSink(store)
    await sink.start()
    sink.submit(_record(1))
    await sink.close()
    assert sink.failed == 1
    store.close()


async def test_submit_after_close_drops(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sink = LogSink(store)
    await sink.start()
    await sink.close()
    sink.submit(_record(1))
    assert sink.dropped == 1 and sink.queue_depth == 0
    store.close()


async def test_close_times_out_on_hung_store(tmp_path: Path) -> None:
    store = BlockingStore(f"sqlite:///{tmp_path / 'logs.db'}")
    sink = LogSink(store, batch_size=1)
    await sink.start()
    sink.submit(_record(1))
    sink.submit(_record(2))
    await asyncio.to_thread(store.entered.wait, 5)
    started = time.monotonic()
    await sink.close(timeout=0.2)
    assert time.monotonic() - started < 2
    assert sink.dropped == 1  # record 2 never reached the store
    store.release.set()
    await asyncio.to_thread(store.finished.wait, 5)  # the abandoned write still completes
    store.close()
