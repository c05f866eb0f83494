"""The PostgreSQL request log against the real server: schema, COPY batches, filters, and parity with SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from relaygate.errors import DatabaseError
from relaygate.observe.sink import LogSink
from relaygate.observe.store import open_log_store
from relaygate.observe.store.base import COLUMNS
from relaygate.observe.store.postgres import PostgresLogStore
from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.helpers.gateway import run_cli
from tests.helpers.log_records import log_record


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresLogStore]:
    s = PostgresLogStore(pg_url)
    yield s
    s.close()


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["request_id"] for r in rows]


def test_open_log_store_picks_postgres(pg_url: str) -> None:
    opened = open_log_store(pg_url)
    try:
        assert isinstance(opened, PostgresLogStore)
    finally:
        opened.close()


def test_schema_has_every_field_jsonb_and_indexes(store: PostgresLogStore, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'request_logs' AND table_schema = current_schema() ORDER BY ordinal_position"
        ).fetchall()
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'request_logs' AND schemaname = current_schema()"
            )
        }
    assert [name for name, _ in columns] == ["id", *COLUMNS]
    types: dict[str, str] = dict(columns)
    assert types["metadata"] == types["extra"] == "jsonb"
    assert types["request_body"] == "bytea" and types["streaming"] == "boolean"
    assert {
        "request_logs_time",
        "request_logs_subject",
        "request_logs_requested_model",
        "request_logs_resolved_model",
        "request_logs_metadata",
    } <= indexes


def test_round_trip_decodes_every_field(store: PostgresLogStore) -> None:
    record = log_record(
        1,
        streaming=True,
        input_tokens=10,
        output_tokens=20,
        cost_usd=0.001,
        cost_unknown=False,
        latency_ms=12.5,
        ttft_ms=3.25,
        metadata={"team": "ml"},
        request_body=b'{"model":"x"}',
        response_body=b"\xff\xfeok",
        truncated=True,
        extra={"attempts": [1, 2]},
        error_type="upstream_error",
        error_message="boom",
    )
    store.write_many([record])
    (row,) = store.query()
    assert set(row) == set(COLUMNS)
    assert row["streaming"] is True and row["truncated"] is True and row["cost_unknown"] is False
    assert row["metadata"] == {"team": "ml"}
    assert row["extra"] == {"attempts": [1, 2]}
    assert row["request_body"] == '{"model":"x"}'
    assert row["response_body"] == "\ufffd\ufffdok"
    assert row["input_tokens"] == 10 and row["latency_ms"] == 12.5 and row["ttft_ms"] == 3.25
    assert row["time"] == record.time and row["cost_usd"] == 0.001


def test_bodies_are_none_when_logging_was_off(store: PostgresLogStore) -> None:
    store.write_many([log_record(1)])
    (row,) = store.query()
    assert row["request_body"] is None and row["response_body"] is None


def test_newest_first_and_limit(store: PostgresLogStore) -> None:
    store.write_many([log_record(n) for n in (2, 1, 3)])
    assert ids(store.query(limit=2)) == ["req-3", "req-2"]


def test_model_matches_requested_or_resolved(store: PostgresLogStore) -> None:
    store.write_many(
        [
            log_record(1, requested_model="group/chat", resolved_model="openai-main/gpt-4o"),
            log_record(2, requested_model="anthropic/claude", resolved_model="anthropic/claude"),
        ]
    )
    assert ids(store.query(model="group/chat")) == ["req-1"]
    assert ids(store.query(model="openai-main/gpt-4o")) == ["req-1"]


def test_user_matches_bare_email_or_full_subject(store: PostgresLogStore) -> None:
    store.write_many(
        [
            log_record(1, subject="user:alice@x.com"),
            log_record(2, subject="user:bob@x.com"),
            log_record(3, subject="virtualaccount:bot"),
        ]
    )
    assert ids(store.query(user="alice@x.com")) == ["req-1"]
    assert ids(store.query(user="user:alice@x.com")) == ["req-1"]
    assert ids(store.query(user="virtualaccount:bot")) == ["req-3"]
    assert ids(store.query(user="virtual-account:bot")) == ["req-3"]


def test_metadata_pairs_must_all_match(store: PostgresLogStore) -> None:
    store.write_many(
        [
            log_record(1, metadata={"team": "ml", "env": "prod"}),
            log_record(2, metadata={"team": "ml", "env": "dev"}),
            log_record(3, metadata={"a.b": "1", 'q"x': "2"}),
        ]
    )
    assert ids(store.query(metadata={"team": "ml"})) == ["req-2", "req-1"]
    assert ids(store.query(metadata={"team": "ml", "env": "prod"})) == ["req-1"]
    assert ids(store.query(metadata={"a.b": "1", 'q"x': "2"})) == ["req-3"]


def test_filters_combine(store: PostgresLogStore) -> None:
    store.write_many(
        [
            log_record(1, subject="user:alice@x.com", metadata={"env": "prod"}),
            log_record(2, subject="user:bob@x.com", metadata={"env": "prod"}),
        ]
    )
    rows = store.query(user="bob@x.com", model="openai-main/gpt-4o", metadata={"env": "prod"})
    assert ids(rows) == ["req-2"]


def test_trace_id_finds_its_row_in_any_case(store: PostgresLogStore) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    store.write_many([log_record(1, trace_id=trace), log_record(2, trace_id="0" * 31 + "1"), log_record(3)])
    assert ids(store.query(trace_id=trace)) == ["req-1"]
    assert ids(store.query(trace_id=trace.upper())) == ["req-1"]
    assert store.query(trace_id="f" * 32) == []


def test_nul_characters_do_not_fail_batch(store: PostgresLogStore) -> None:
    store.write_many(
        [
            log_record(
                1,
                requested_model="bad\x00model",
                error_message="a\x00b",
                metadata={"k\x00": "v\x00"},
                extra={"nested": ["x\x00"]},
                request_body=b"raw\x00bytes",
            ),
            log_record(2),
        ]
    )
    row = store.query(limit=5)[1]
    assert row["requested_model"] == "bad\ufffdmodel" and row["error_message"] == "a\ufffdb"
    assert row["metadata"] == {"k\ufffd": "v\ufffd"} and row["extra"] == {"nested": ["x\ufffd"]}
    assert row["request_body"] == "raw\x00bytes"


def test_unserializable_extra_does_not_fail_batch(store: PostgresLogStore) -> None:
    store.write_many([log_record(1, extra={"when": object}), log_record(2)])
    assert len(store.query()) == 2


def test_failed_batch_writes_nothing(store: PostgresLogStore) -> None:
    bad = log_record(2)
    bad.method = None  # type: ignore[assignment]  # violates NOT NULL
    with pytest.raises(DatabaseError):
        store.write_many([log_record(1), bad])
    assert store.query() == []
    store.write_many([log_record(3)])  # a rejected batch does not take the store down
    assert ids(store.query()) == ["req-3"]


def test_large_batch_in_one_copy(store: PostgresLogStore) -> None:
    store.write_many([log_record(n, metadata={"n": str(n)}) for n in range(1000)])
    assert len(store.query(limit=5000)) == 1000
    assert ids(store.query(metadata={"n": "999"})) == ["req-999"]


def test_reader_and_writer_threads_run_together(store: PostgresLogStore) -> None:
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


def test_answers_match_the_sqlite_store(store: PostgresLogStore, tmp_path: Path) -> None:
    records = [
        log_record(1, metadata={"team": "ml"}, request_body=b"{}", cost_usd=0.5, input_tokens=3),
        log_record(2, subject="virtualaccount:bot", requested_model="group/x", streaming=True, cost_unknown=True),
        log_record(3, subject="user:bob@x.com", extra={"routing": {"attempts": 2}}, error_type="e", status=502),
    ]
    sqlite = SQLiteLogStore(f"sqlite:///{tmp_path / 'logs.db'}")
    try:
        sqlite.write_many(records)
        store.write_many(records)
        queries: list[dict[str, Any]] = [
            {},
            {"limit": 1},
            {"model": "group/x"},
            {"user": "bob@x.com"},
            {"user": "virtual-account:bot"},
            {"metadata": {"team": "ml"}},
            {"metadata": {"team": "none"}},
        ]
        for query in queries:
            assert store.query(**query) == sqlite.query(**query), query
    finally:
        sqlite.close()


async def test_sink_writes_batches_to_postgres(store: PostgresLogStore) -> None:
    sink = LogSink(store, batch_size=50, flush_interval=0.01)
    await sink.start()
    for n in range(120):
        sink.submit(log_record(n))
    await sink.close()
    assert (sink.written, sink.failed, sink.dropped) == (120, 0, 0)
    assert len(store.query(limit=500)) == 120


async def test_sink_counts_failures_when_postgres_is_unusable(pg_url: str) -> None:
    store = PostgresLogStore(pg_url)
    store.close()
    sink = LogSink(store, batch_size=10, flush_interval=0.0)
    await sink.start()
    for n in range(25):
        sink.submit(log_record(n))
    await sink.close()
    assert sink.failed == 25 and sink.written == 0


def test_logs_command_reads_postgres(store: PostgresLogStore, pg_url: str) -> None:
    store.write_many([log_record(1, metadata={"env": "ci"}), log_record(2, subject="user:bob@x.com")])
    as_json = run_cli("logs", "--json", "--database-url", pg_url)
    assert as_json.returncode == 0, as_json.stderr
    rows = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert ids(rows) == ["req-2", "req-1"]
    filtered = run_cli("logs", "--json", "--database-url", pg_url, "--user", "alice@x.com", "--metadata", "env=ci")
    assert ids([orjson.loads(line) for line in filtered.stdout.splitlines()]) == ["req-1"]
    table = run_cli("logs", "--database-url", pg_url)
    assert table.returncode == 0 and "req-1" in table.stdout and "req-2" in table.stdout


def test_logs_command_filters_by_trace_id(store: PostgresLogStore, pg_url: str) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    store.write_many([log_record(1, trace_id=trace), log_record(2, trace_id="1" * 32)])
    result = run_cli("logs", "--json", "--database-url", pg_url, "--trace-id", trace)
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert ids(rows) == ["req-1"] and rows[0]["trace_id"] == trace
