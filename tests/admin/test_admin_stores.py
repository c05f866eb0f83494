"""The store side of the admin API on SQLite and PostgreSQL alike: log search with cursor pages, one
row with or without bodies, and token pages, metadata and expiry (rotation's grace period)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.auth.store import SQLiteTokenStore, TokenStore
from relaygate.observe.record import LogRecord
from relaygate.observe.store.base import LogStore
from relaygate.observe.store.search import (
    LogFilter,
    Owner,
    PageCursor,
    decode_cursor,
    encode_cursor,
    record_row,
)
from relaygate.observe.store.sqlite import SQLiteLogStore
from tests.helpers.log_records import log_record

BACKENDS = ["sqlite", "postgres"]


def _url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'relaygate.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=BACKENDS)
def log_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    url = _url(request.param, request, tmp_path)
    if request.param == "sqlite":
        store: LogStore = SQLiteLogStore(url)
    else:
        from relaygate.observe.store.postgres import PostgresLogStore

        store = PostgresLogStore(url)
    yield store
    store.close()


@pytest.fixture(params=BACKENDS)
def token_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenStore]:
    url = _url(request.param, request, tmp_path)
    if request.param == "sqlite":
        store: TokenStore = SQLiteTokenStore(url)
    else:
        from relaygate.auth.store_postgres import PostgresTokenStore

        store = PostgresTokenStore(url)
    yield store
    store.close()


def _rows(n: int) -> list[LogRecord]:
    rows = []
    for i in range(n):
        rows.append(
            log_record(
                i,
                subject="user:alice@x.com" if i % 3 else "user:bob@x.com",
                team="ml" if i % 3 == 0 else None,
                provider="mock",
                status=200 if i % 4 else 502,
                streaming=i % 2 == 0,
                input_tokens=i,
                output_tokens=10,
                cost_usd=i / 100,
                latency_ms=float(i * 10),
                metadata={"app": "a" if i % 2 else "b", "env": "prod"},
                error_type=None if i % 4 else "upstream_error",
                token_id="rg-aaaaaaaaaaaa" if i < 5 else "rg-bbbbbbbbbbbb",
                request_body=b'{"secret": "body"}',
                response_body=b"answer",
                trace_id=f"{i:032x}",
            )
        )
    # Two rows in the same second: the cursor's id breaks the tie.
    rows.append(log_record(100, time=1_700_000_010.0, request_id="tie-1"))
    rows.append(log_record(101, time=1_700_000_010.0, request_id="tie-2"))
    return rows


def _all_pages(store: LogStore, flt: LogFilter, limit: int) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        page = store.search(flt, cursor, limit + 1)
        seen += page[:limit]
        if len(page) <= limit:
            return seen
        last = page[limit - 1]
        decoded = decode_cursor(encode_cursor(PageCursor(float(last["time"]), int(last["id"]))))  # type: ignore[arg-type]
        assert decoded is not None
        cursor = decoded.key


def test_search_pages_cover_every_row_once_newest_first_without_bodies(log_store: LogStore) -> None:
    log_store.write_many(_rows(30))
    everything = _all_pages(log_store, LogFilter(), 7)
    assert len(everything) == 32
    assert len({r["request_id"] for r in everything}) == 32
    keys = [(r["time"], r["id"]) for r in everything]
    assert keys == sorted(keys, reverse=True)
    for row in everything:
        assert "request_body" not in row and "response_body" not in row
    assert {r["request_id"] for r in everything if not r["has_bodies"]} == {"tie-1", "tie-2"}


def test_search_filters(log_store: LogStore) -> None:
    log_store.write_many(_rows(30))

    def ids(**conditions: object) -> set[str]:
        return {str(r["request_id"]) for r in log_store.search(LogFilter(**conditions), None, 500)}  # type: ignore[arg-type]

    assert ids(metadata={"app": "a"}) == {f"req-{i}" for i in range(30) if i % 2}
    assert ids(metadata={"app": "a", "env": "prod"}) == {f"req-{i}" for i in range(30) if i % 2}
    assert ids(metadata={"app": "zzz"}) == set()
    assert ids(subjects=("user:bob@x.com",)) == {f"req-{i}" for i in range(30) if i % 3 == 0}
    assert ids(team="ml") == {f"req-{i}" for i in range(30) if i % 3 == 0}
    assert ids(status_class="5xx") == {f"req-{i}" for i in range(30) if i % 4 == 0}
    assert ids(status=502, error_type="upstream_error") == {f"req-{i}" for i in range(30) if i % 4 == 0}
    assert ids(streaming=True, provider="mock") == {f"req-{i}" for i in range(30) if i % 2 == 0}
    assert ids(min_latency_ms=100, max_latency_ms=120) == {"req-10", "req-11", "req-12"}
    assert ids(min_cost=0.285) == {"req-29"}
    assert ids(max_tokens=11) == {"req-0", "req-1", "tie-1", "tie-2"}  # no usage counts as 0 tokens
    assert ids(token_id="rg-aaaaaaaaaaaa") == {f"req-{i}" for i in range(5)}
    assert ids(request_id="req-7") == {"req-7"}
    assert ids(trace_id=f"{7:032X}") == {"req-7"}
    assert ids(model="openai-main/gpt-4o", start=1_700_000_028.0) == {"req-28", "req-29"}
    assert ids(end=1_700_000_001.0) == {"req-0", "req-1"}
    # An ordinary user: their own rows or their team's.
    assert ids(owner=Owner("user:alice@x.com")) == {f"req-{i}" for i in range(30) if i % 3} | {"tie-1", "tie-2"}
    assert ids(owner=Owner("user:carol@x.com", ("ml",))) == {f"req-{i}" for i in range(30) if i % 3 == 0}


def test_matches_agrees_with_the_sql(log_store: LogStore) -> None:
    records = _rows(30)
    log_store.write_many(records)
    filters = [
        LogFilter(metadata={"app": "a"}),
        LogFilter(status_class="5xx", streaming=True),
        LogFilter(owner=Owner("user:carol@x.com", ("ml",))),
        LogFilter(min_tokens=20, max_latency_ms=200),
        LogFilter(min_cost=0.1, token_id="rg-bbbbbbbbbbbb"),
    ]
    for flt in filters:
        stored = {r["request_id"] for r in log_store.search(flt, None, 500)}
        assert stored == {r.request_id for r in records if flt.matches(r)}, flt


def test_find_gives_bodies_only_when_asked_and_honours_the_owner(log_store: LogStore) -> None:
    log_store.write_many(_rows(6))
    plain = log_store.find("req-1")
    assert plain is not None and "request_body" not in plain and plain["has_bodies"] is True
    full = log_store.find("req-1", bodies=True)
    assert full is not None and full["request_body"] == '{"secret": "body"}' and full["response_body"] == "answer"
    assert log_store.find("req-1", Owner("user:bob@x.com")) is None
    assert log_store.find("req-0", Owner("user:bob@x.com")) is not None
    assert log_store.find("nope") is None


def test_cursor_is_opaque_and_checked() -> None:
    assert decode_cursor(encode_cursor(PageCursor(1_700_000_000.5, 42))) == PageCursor(1_700_000_000.5, 42)
    kept = PageCursor(1_700_000_000.5, 42, 1_699_990_000.0)
    assert decode_cursor(encode_cursor(kept)) == kept
    for bad in (
        "",
        "not-a-cursor",
        encode_cursor(kept)[:-3] + "!!!",
        "WzEsMiwzXQ",
        "eyJ0IjoxfQ",
        "eyJ0IjoxLCJpIjp0cnVlfQ",
    ):
        assert decode_cursor(bad) is None


def test_record_row_has_no_bodies() -> None:
    row = record_row(log_record(1, request_body=b"x", response_body=b"y"))
    assert "request_body" not in row and "response_body" not in row and row["has_bodies"] is True


def test_token_pages_metadata_and_expiry(token_store: TokenStore) -> None:
    created = []
    for i in range(7):
        subject = "user:alice@x.com" if i % 2 else "user:bob@x.com"
        _, record = token_store.create("personal", subject, f"t{i}", None, {"n": str(i)})
        created.append(record)
    token_store.revoke(created[0].id)
    seen = []
    after = None
    while True:
        page = token_store.page(after=after, limit=3)
        seen += page
        if len(page) < 3:
            break
        after = (page[-1].created_at, page[-1].id)
    assert sorted(r.id for r in seen) == sorted(r.id for r in created)
    assert [(r.created_at, r.id) for r in seen] == sorted(((r.created_at, r.id) for r in seen), reverse=True)
    assert {r.id for r in token_store.page(subjects=["user:alice@x.com"])} == {
        r.id for r in created if r.subject.startswith("user:alice")
    }
    assert token_store.page(subjects=[]) == []
    assert [r.id for r in token_store.page(revoked=True)] == [created[0].id]
    assert len(token_store.page(revoked=False)) == 6
    fetched = token_store.get(created[3].id)
    assert fetched is not None and fetched.metadata == {"n": "3"} and fetched == created[3]
    soon = created[3].created_at + 1000
    updated = token_store.set_expiry(created[3].id, soon)
    assert updated is not None and updated.expires_at == soon
    later = token_store.set_expiry(created[3].id, soon + 1000)  # never pushed later
    assert later is not None and later.expires_at == soon
    assert token_store.set_expiry("zzzzzzzzzzzz", soon) is None
