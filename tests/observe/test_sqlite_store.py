"""The SQLite request log: schema, batch writes, filters and decoding."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.observe.store.sqlite import COLUMNS, SCHEMA_VERSION, SQLiteLogStore
from tests.helpers.log_records import log_record


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteLogStore]:
    s = SQLiteLogStore(f"sqlite:///{tmp_path / 'logs.db'}")
    yield s
    s.close()


def test_schema_has_every_field_and_version(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    SQLiteLogStore(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(request_logs)")]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(request_logs)")}
    conn.close()
    assert columns == ["id", *COLUMNS]
    assert version == SCHEMA_VERSION
    assert {"request_logs_time", "request_logs_subject", "request_logs_requested_model"} <= indexes


def test_reopen_keeps_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    first = SQLiteLogStore(url)
    first.write_many([log_record(1)])
    first.close()
    second = SQLiteLogStore(url)
    assert [r["request_id"] for r in second.query()] == ["req-1"]
    second.close()


def test_round_trip_decodes_every_field(store: SQLiteLogStore) -> None:
    record = log_record(
        1,
        streaming=True,
        input_tokens=10,
        output_tokens=20,
        cost_usd=0.001,
        cost_unknown=False,
        latency_ms=12.5,
        metadata={"team": "ml"},
        request_body=b'{"model":"x"}',
        response_body=b"\xff\xfeok",
        truncated=True,
        extra={"attempts": [1, 2]},
    )
    store.write_many([record])
    (row,) = store.query()
    assert set(row) == set(COLUMNS)
    assert row["streaming"] is True and row["truncated"] is True and row["cost_unknown"] is False
    assert row["metadata"] == {"team": "ml"}
    assert row["extra"] == {"attempts": [1, 2]}
    assert row["request_body"] == '{"model":"x"}'
    assert row["response_body"] == "\ufffd\ufffdok"
    assert row["input_tokens"] == 10 and row["latency_ms"] == 12.5


def test_bodies_are_none_when_logging_was_off(store: SQLiteLogStore) -> None:
    store.write_many([log_record(1)])
    (row,) = store.query()
    assert row["request_body"] is None and row["response_body"] is None


def test_newest_first_and_limit(store: SQLiteLogStore) -> None:
    store.write_many([log_record(n) for n in (2, 1, 3)])
    assert [r["request_id"] for r in store.query(limit=2)] == ["req-3", "req-2"]


def test_model_matches_requested_or_resolved(store: SQLiteLogStore) -> None:
    store.write_many(
        [
            log_record(1, requested_model="group/chat", resolved_model="openai-main/gpt-4o"),
            log_record(2, requested_model="anthropic/claude", resolved_model="anthropic/claude"),
        ]
    )
    assert [r["request_id"] for r in store.query(model="group/chat")] == ["req-1"]
    assert [r["request_id"] for r in store.query(model="openai-main/gpt-4o")] == ["req-1"]


def test_user_matches_bare_email_or_full_subject(store: SQLiteLogStore) -> None:
    store.write_many(
        [
            log_record(1, subject="user:alice@x.com"),
            log_record(2, subject="user:bob@x.com"),
            log_record(3, subject="virtualaccount:bot"),
        ]
    )
    assert [r["request_id"] for r in store.query(user="alice@x.com")] == ["req-1"]
    assert [r["request_id"] for r in store.query(user="user:alice@x.com")] == ["req-1"]
    assert [r["request_id"] for r in store.query(user="virtualaccount:bot")] == ["req-3"]
    assert [r["request_id"] for r in store.query(user="virtual-account:bot")] == ["req-3"]


def test_metadata_pairs_must_all_match(store: SQLiteLogStore) -> None:
    store.write_many(
        [
            log_record(1, metadata={"team": "ml", "env": "prod"}),
            log_record(2, metadata={"team": "ml", "env": "dev"}),
            log_record(3, metadata={"a.b": "1", 'q"x': "2"}),
        ]
    )
    assert [r["request_id"] for r in store.query(metadata={"team": "ml"})] == ["req-2", "req-1"]
    assert [r["request_id"] for r in store.query(metadata={"team": "ml", "env": "prod"})] == ["req-1"]
    assert [r["request_id"] for r in store.query(metadata={"a.b": "1", 'q"x': "2"})] == ["req-3"]


def test_filters_combine(store: SQLiteLogStore) -> None:
    store.write_many(
        [
            log_record(1, subject="user:alice@x.com", metadata={"env": "prod"}),
            log_record(2, subject="user:bob@x.com", metadata={"env": "prod"}),
        ]
    )
    rows = store.query(user="bob@x.com", model="openai-main/gpt-4o", metadata={"env": "prod"})
    assert [r["request_id"] for r in rows] == ["req-2"]


def test_trace_id_finds_its_row_in_any_case(store: SQLiteLogStore) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    store.write_many([log_record(1, trace_id=trace), log_record(2, trace_id="0" * 31 + "1"), log_record(3)])
    assert [r["request_id"] for r in store.query(trace_id=trace)] == ["req-1"]
    assert [r["request_id"] for r in store.query(trace_id=trace.upper())] == ["req-1"]
    assert store.query(trace_id="f" * 32) == []


def test_unserializable_extra_does_not_fail_batch(store: SQLiteLogStore) -> None:
    store.write_many([log_record(1, extra={"when": object}), log_record(2)])
    assert len(store.query()) == 2


def test_failed_batch_writes_nothing(store: SQLiteLogStore) -> None:
    bad = log_record(2)
    bad.method = None  # type: ignore[assignment]  # violates NOT NULL
    with pytest.raises(sqlite3.IntegrityError):
        store.write_many([log_record(1), bad])
    assert store.query() == []


def test_reader_and_writer_threads_run_together(store: SQLiteLogStore) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for start in range(0, 500, 50):
                store.write_many([log_record(n) for n in range(start, start + 50)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    while thread.is_alive():
        store.query(limit=10, metadata={"team": "none"})
    thread.join()
    assert not errors
    assert len(store.query(limit=1000)) == 500


def test_memory_url_works(tmp_path: Path) -> None:
    s = SQLiteLogStore("sqlite://:memory:")
    s.write_many([log_record(1)])
    assert [r["request_id"] for r in s.query()] == ["req-1"]
    s.close()
