"""SQLiteTokenStore against real SQLite files."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.auth.store import SQLiteTokenStore, TokenRecord, TokenStore, TokenStoreError
from relaygate.auth.tokens import parse_token, secret_matches


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "relaygate.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[SQLiteTokenStore]:
    s = SQLiteTokenStore(f"sqlite:///{db_path}", clock=clock)
    yield s
    s.close()


def secret_of(token: str) -> str:
    parsed = parse_token(token)
    assert parsed is not None
    return parsed[1]


def test_sqlite_store_satisfies_protocol(store: SQLiteTokenStore) -> None:
    typed: TokenStore = store
    assert typed is store


def test_create_returns_token_and_record(store: SQLiteTokenStore, clock: FakeClock) -> None:
    token, record = store.create("personal", "user:alice@x.com", "laptop", clock.now + 3600)
    parsed = parse_token(token)
    assert parsed is not None
    assert parsed[0] == record.id
    assert secret_matches(parsed[1], record.secret_hash)
    assert record == TokenRecord(
        record.id,
        "personal",
        "user:alice@x.com",
        "laptop",
        record.secret_hash,
        clock.now,
        clock.now + 3600,
        None,
    )


def test_get_returns_stored_record(store: SQLiteTokenStore) -> None:
    _, record = store.create("virtual-account", "virtualaccount:bot", None, None)
    assert store.get(record.id) == record


def test_get_unknown_is_none(store: SQLiteTokenStore) -> None:
    assert store.get("aaaaaaaaaaaa") is None


def test_list_returns_all_oldest_first(store: SQLiteTokenStore, clock: FakeClock) -> None:
    _, first = store.create("personal", "user:a@x.com", "one", None)
    clock.now += 10
    _, second = store.create("virtual-account", "virtualaccount:bot", "two", None)
    assert store.list() == [first, second]


def test_revoke_marks_record(store: SQLiteTokenStore, clock: FakeClock) -> None:
    _, record = store.create("personal", "user:a@x.com", None, None)
    clock.now += 5
    assert store.revoke(record.id) is True
    revoked = store.get(record.id)
    assert revoked is not None and revoked.revoked_at == clock.now
    assert not revoked.active(clock.now)


def test_revoke_is_idempotent_and_keeps_first_time(store: SQLiteTokenStore, clock: FakeClock) -> None:
    _, record = store.create("personal", "user:a@x.com", None, None)
    store.revoke(record.id)
    first_time = clock.now
    clock.now += 100
    assert store.revoke(record.id) is True
    again = store.get(record.id)
    assert again is not None and again.revoked_at == first_time


def test_revoke_unknown_is_false(store: SQLiteTokenStore) -> None:
    assert store.revoke("aaaaaaaaaaaa") is False


def test_virtual_account_subject_alias_is_normalized(store: SQLiteTokenStore) -> None:
    _, record = store.create("virtual-account", "virtual-account:bot", None, None)
    assert record.subject == "virtualaccount:bot"


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("admin", "user:a@x.com"),
        ("personal", "virtualaccount:bot"),
        ("virtual-account", "user:a@x.com"),
        ("personal", "user:"),
        ("personal", "alice"),
    ],
)
def test_create_rejects_kind_subject_mismatch(store: SQLiteTokenStore, kind: str, subject: str) -> None:
    with pytest.raises(ValueError):
        store.create(kind, subject, None, None)


def test_create_rejects_past_expiry(store: SQLiteTokenStore, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="past"):
        store.create("personal", "user:a@x.com", None, clock.now - 1)


def test_active_honours_expiry() -> None:
    record = TokenRecord("aaaaaaaaaaaa", "personal", "user:a@x.com", None, "h", 0.0, 100.0, None)
    assert record.active(99.9)
    assert not record.active(100.0)


def test_database_never_contains_secret(store: SQLiteTokenStore, db_path: Path) -> None:
    tokens = [store.create("personal", f"user:u{i}@x.com", f"t{i}", None)[0] for i in range(20)]
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    blob = b"".join(p.read_bytes() for p in files)
    store.close()
    blob += db_path.read_bytes()
    for token in tokens:
        assert token.encode() not in blob
        assert secret_of(token).encode() not in blob


def test_records_survive_reopen(db_path: Path, clock: FakeClock) -> None:
    first = SQLiteTokenStore(f"sqlite:///{db_path}", clock=clock)
    _, record = first.create("personal", "user:a@x.com", None, None)
    first.close()
    second = SQLiteTokenStore(f"sqlite:///{db_path}", clock=clock)
    try:
        assert second.get(record.id) == record
    finally:
        second.close()


def test_schema_version_is_recorded_in_meta_table(store: SQLiteTokenStore, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        row = conn.execute("SELECT value FROM relaygate_meta WHERE key = 'tokens_schema'").fetchone()
        assert row == ("2",)
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)
    finally:
        conn.close()


def test_version_1_tables_gain_metadata_and_keep_their_tokens(db_path: Path, clock: FakeClock) -> None:
    conn = sqlite3.connect(db_path)
    conn.executescript(
        "CREATE TABLE relaygate_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO relaygate_meta VALUES ('tokens_schema', '1');"
        "CREATE TABLE tokens (id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, name TEXT,"
        " secret_hash TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL, revoked_at REAL);"
        "INSERT INTO tokens VALUES ('aaaaaaaaaaaa', 'personal', 'user:a@x.com', 'old', 'h', 1.0, NULL, NULL);"
    )
    conn.commit()
    conn.close()
    store = SQLiteTokenStore(f"sqlite:///{db_path}", clock=clock)
    try:
        old = store.get("aaaaaaaaaaaa")
        assert old is not None and old.name == "old" and old.metadata == {}
        _, new = store.create("personal", "user:b@x.com", None, None, {"env": "prod"})
        assert store.get(new.id) == new and new.metadata == {"env": "prod"}
    finally:
        store.close()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT value FROM relaygate_meta WHERE key = 'tokens_schema'").fetchone() == ("2",)
    finally:
        conn.close()


def test_newer_schema_is_refused(db_path: Path) -> None:
    SQLiteTokenStore(f"sqlite:///{db_path}").close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE relaygate_meta SET value = '99' WHERE key = 'tokens_schema'")
    conn.commit()
    conn.close()
    with pytest.raises(TokenStoreError, match="newer"):
        SQLiteTokenStore(f"sqlite:///{db_path}")


def test_closed_store_raises(db_path: Path) -> None:
    s = SQLiteTokenStore(f"sqlite:///{db_path}")
    s.close()
    s.close()
    with pytest.raises(TokenStoreError):
        s.get("aaaaaaaaaaaa")


def test_concurrent_creates_from_threads(store: SQLiteTokenStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                _, rec = store.create("personal", f"user:t{n}-{i}@x.com", None, None)
                assert store.get(rec.id) == rec
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list()) == 160


def test_revoked_since_lists_only_recent_revocations(tmp_path: Path) -> None:
    store = SQLiteTokenStore(f"sqlite:///{tmp_path}/tokens.db")
    _, old = store.create("personal", "user:a@example.com", None, None)
    _, new = store.create("personal", "user:b@example.com", None, None)
    store.revoke(old.id)
    cutoff = time.time() + 0.001
    time.sleep(0.01)
    store.revoke(new.id)
    assert [token_id for token_id, _ in store.revoked_since(cutoff)] == [new.id]
