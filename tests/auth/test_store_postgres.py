"""PostgresTokenStore against the real PostgreSQL: the SQLite store's behaviour, shared by replicas.

Each module gets a fresh database (dropped afterwards) and each test a fresh schema in it, so tests
are independent and can run in parallel. Skipped only when PostgreSQL cannot be reached at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from relaygate.auth.open_store import open_token_store
from relaygate.auth.store import TokenRecord, TokenStore, TokenStoreError
from relaygate.auth.store_postgres import PostgresTokenStore
from relaygate.auth.tokens import parse_token, secret_matches
from relaygate.errors import DatabaseError


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(pg_url: str, clock: FakeClock) -> Iterator[PostgresTokenStore]:
    s = PostgresTokenStore(pg_url, clock=clock)
    yield s
    s.close()


def test_postgres_store_satisfies_protocol(store: PostgresTokenStore) -> None:
    typed: TokenStore = store
    assert typed is store


def test_open_token_store_picks_postgres_for_both_schemes(pg_url: str) -> None:
    for url in (pg_url, "postgres" + pg_url[len("postgresql") :]):
        opened = open_token_store(url)
        try:
            assert isinstance(opened, PostgresTokenStore)
        finally:
            opened.close()


def test_create_returns_token_and_record(store: PostgresTokenStore, clock: FakeClock) -> None:
    token, record = store.create("personal", "user:alice@x.com", "laptop", clock.now + 3600)
    parsed = parse_token(token)
    assert parsed is not None
    assert parsed[0] == record.id
    assert secret_matches(parsed[1], record.secret_hash)
    assert record == TokenRecord(
        record.id, "personal", "user:alice@x.com", "laptop", record.secret_hash, clock.now, clock.now + 3600, None
    )


def test_get_returns_stored_record(store: PostgresTokenStore) -> None:
    _, record = store.create("virtual-account", "virtualaccount:bot", None, None)
    assert store.get(record.id) == record


def test_get_unknown_is_none(store: PostgresTokenStore) -> None:
    assert store.get("aaaaaaaaaaaa") is None


def test_list_returns_all_oldest_first(store: PostgresTokenStore, clock: FakeClock) -> None:
    _, first = store.create("personal", "user:a@x.com", None, None)
    clock.now += 1
    _, second = store.create("personal", "user:b@x.com", None, None)
    assert store.list() == [first, second]


def test_revoke_marks_record(store: PostgresTokenStore, clock: FakeClock) -> None:
    _, record = store.create("personal", "user:a@x.com", None, None)
    clock.now += 5
    assert store.revoke(record.id) is True
    revoked = store.get(record.id)
    assert revoked is not None and revoked.revoked_at == clock.now
    assert not revoked.active(clock.now)


def test_revoke_is_idempotent_and_keeps_first_time(store: PostgresTokenStore, clock: FakeClock) -> None:
    _, record = store.create("personal", "user:a@x.com", None, None)
    first_time = clock.now
    assert store.revoke(record.id)
    clock.now += 10
    assert store.revoke(record.id)
    again = store.get(record.id)
    assert again is not None and again.revoked_at == first_time


def test_revoke_unknown_is_false(store: PostgresTokenStore) -> None:
    assert store.revoke("aaaaaaaaaaaa") is False


def test_virtual_account_subject_alias_is_normalized(store: PostgresTokenStore) -> None:
    _, record = store.create("virtual-account", "virtual-account:bot", None, None)
    assert record.subject == "virtualaccount:bot"


def test_create_rejects_kind_subject_mismatch(store: PostgresTokenStore) -> None:
    with pytest.raises(ValueError):
        store.create("personal", "virtualaccount:bot", None, None)


def test_create_rejects_past_expiry(store: PostgresTokenStore, clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        store.create("personal", "user:a@x.com", None, clock.now - 1)


def test_revoked_since_lists_only_recent_revocations(store: PostgresTokenStore, clock: FakeClock) -> None:
    _, old = store.create("personal", "user:a@x.com", None, None)
    _, new = store.create("personal", "user:b@x.com", None, None)
    _, live = store.create("personal", "user:c@x.com", None, None)
    store.revoke(old.id)
    clock.now += 100
    store.revoke(new.id)
    assert store.revoked_since(clock.now - 1) == [(new.id, clock.now)]
    assert {token_id for token_id, _ in store.revoked_since(0)} == {old.id, new.id}
    assert live.id not in {token_id for token_id, _ in store.revoked_since(0)}


def test_token_created_by_one_replica_is_seen_by_another(pg_url: str, store: PostgresTokenStore) -> None:
    other = PostgresTokenStore(pg_url)
    try:
        token, record = store.create("personal", "user:a@x.com", None, None)
        assert other.get(record.id) == record
    finally:
        other.close()


def test_revocation_by_one_replica_shows_in_anothers_revoked_since(
    pg_url: str, store: PostgresTokenStore, clock: FakeClock
) -> None:
    other = PostgresTokenStore(pg_url, clock=clock)
    try:
        _, record = store.create("personal", "user:a@x.com", None, None)
        assert other.revoke(record.id)
        assert store.revoked_since(clock.now - 1.0) == [(record.id, clock.now)]
    finally:
        other.close()


def test_database_never_contains_secret(store: PostgresTokenStore, pg_url: str) -> None:
    token, record = store.create("personal", "user:a@x.com", None, None)
    secret = token.split("-", 2)[2]
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT * FROM tokens").fetchall()
    assert secret not in repr(rows)
    assert record.secret_hash in repr(rows)


def test_records_survive_reopen(pg_url: str, clock: FakeClock) -> None:
    first = PostgresTokenStore(pg_url, clock=clock)
    _, record = first.create("personal", "user:a@x.com", "n", None)
    first.close()
    second = PostgresTokenStore(pg_url, clock=clock)
    try:
        assert second.get(record.id) == record
    finally:
        second.close()


def test_closed_store_raises(pg_url: str) -> None:
    s = PostgresTokenStore(pg_url)
    s.close()
    s.close()
    with pytest.raises(TokenStoreError):
        s.get("aaaaaaaaaaaa")
    with pytest.raises(DatabaseError):
        s.list()


def test_concurrent_creates_from_threads(store: PostgresTokenStore) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            _, record = store.create("personal", "user:a@x.com", None, None)
            with lock:
                ids.append(record.id)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 80
    assert len(store.list()) == 80
