"""Authenticator: cache, failure rules and coalescing, over a real SQLite store."""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.auth.authenticator import Authenticator
from relaygate.auth.store import SQLiteTokenStore, TokenRecord
from relaygate.auth.tokens import SECRET_LENGTH, format_token
from relaygate.errors import ServiceUnavailable, Unauthorized
from relaygate.http.headers import bearer_token


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """Wraps a real store: counts `get` calls, can fail, can hold reads until released."""

    def __init__(self, inner: SQLiteTokenStore) -> None:
        self.inner = inner
        self.gets = 0
        self.fail = False
        self.gate: threading.Event | None = None
        self.hidden: set[str] = set()

    def create(self, kind: str, subject: str, name: str | None, expires_at: float | None) -> tuple[str, TokenRecord]:
        return self.inner.create(kind, subject, name, expires_at)

    def get(self, token_id: str) -> TokenRecord | None:
        self.gets += 1
        if self.gate is not None:
            assert self.gate.wait(5), "test never released the store"
        if self.fail:
            raise sqlite3.OperationalError("unable to open database file")
        return None if token_id in self.hidden else self.inner.get(token_id)

    def list(self) -> builtins.list[TokenRecord]:
        return self.inner.list()

    def revoke(self, token_id: str) -> bool:
        return self.inner.revoke(token_id)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def mono() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def store(tmp_path: Path, wall: FakeClock) -> Iterator[CountingStore]:
    s = CountingStore(SQLiteTokenStore(f"sqlite:///{tmp_path / 'tokens.db'}", clock=wall))
    yield s
    s.close()


@pytest.fixture
def auth(store: CountingStore, mono: FakeClock, wall: FakeClock) -> Authenticator:
    return Authenticator(store, cache_ttl=10.0, clock=mono, wall=wall)


def personal(store: CountingStore, expires_at: float | None = None) -> tuple[str, TokenRecord]:
    return store.create("personal", "user:alice@x.com", "laptop", expires_at)


async def test_valid_bearer_token_authenticates(auth: Authenticator, store: CountingStore) -> None:
    token, record = personal(store)
    assert await auth.authenticate_token(authorization(f"Bearer {token}")) == record


async def test_bearer_scheme_is_case_insensitive(auth: Authenticator, store: CountingStore) -> None:
    token, record = personal(store)
    assert await auth.authenticate_token(authorization(f"bearer   {token} ")) == record


async def test_raw_token_authenticates(auth: Authenticator, store: CountingStore) -> None:
    token, record = personal(store)
    assert await auth.authenticate_token(token) == record


def authorization(value: str | None) -> str | None:
    """The token the gateway takes from an `Authorization` header with this value (None: no header)."""
    headers = [] if value is None else [(b"authorization", value.encode("latin-1"))]
    return bearer_token({"headers": headers})  # type: ignore[typeddict-item]


def test_bearer_token_extraction() -> None:
    assert authorization("Bearer abc") == "abc"
    assert authorization("Basic abc") is None
    assert authorization("Bearer") is None
    assert authorization("Bearer   ") is None
    assert authorization(None) is None


async def test_every_bad_token_gets_identical_401(auth: Authenticator, store: CountingStore, wall: FakeClock) -> None:
    good, _ = personal(store)
    good_id = good[3:15]
    expiring, _ = personal(store, expires_at=wall.now + 60)
    revoked, revoked_record = personal(store)
    store.revoke(revoked_record.id)
    headers: list[str | None] = [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-token",
        f"Bearer {format_token('zzzzzzzzzzzz', 'a' * SECRET_LENGTH)}",  # unknown id
        f"Bearer {format_token(good_id, 'a' * SECRET_LENGTH)}",  # wrong secret
        f"Bearer {revoked}",
    ]
    bodies = set()
    for header in headers:
        with pytest.raises(Unauthorized) as caught:
            await auth.authenticate_token(authorization(header))
        assert caught.value.status == 401
        bodies.add(caught.value.body())
    wall.now += 61
    with pytest.raises(Unauthorized) as caught:
        await auth.authenticate_token(authorization(f"Bearer {expiring}"))
    bodies.add(caught.value.body())
    assert bodies == {Unauthorized().body()}


async def test_expired_token_refused_even_when_cached(
    auth: Authenticator, store: CountingStore, wall: FakeClock
) -> None:
    token, _ = personal(store, expires_at=wall.now + 60)
    await auth.authenticate_token(token)
    wall.now += 60
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(token)
    assert store.gets == 1  # decided from the cached record, by wall-clock time


async def test_cache_hit_does_not_touch_store(auth: Authenticator, store: CountingStore) -> None:
    token, _ = personal(store)
    for _ in range(50):
        await auth.authenticate_token(token)
    assert store.gets == 1


async def test_wrong_secret_on_cached_id_is_refused_without_store_read(
    auth: Authenticator, store: CountingStore
) -> None:
    token, record = personal(store)
    await auth.authenticate_token(token)
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(format_token(record.id, "b" * SECRET_LENGTH))
    assert store.gets == 1


async def test_revocation_honoured_after_ttl(auth: Authenticator, store: CountingStore, mono: FakeClock) -> None:
    token, record = personal(store)
    await auth.authenticate_token(token)
    store.revoke(record.id)
    mono.now += 9.9
    await auth.authenticate_token(token)  # still cached: within the TTL
    mono.now += 0.2
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(token)
    assert store.gets == 2


async def test_invalidate_makes_revocation_immediate(auth: Authenticator, store: CountingStore) -> None:
    token, record = personal(store)
    await auth.authenticate_token(token)
    store.revoke(record.id)
    auth.invalidate(record.id)
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(token)


async def test_unknown_id_cached_negatively_for_one_second(
    auth: Authenticator, store: CountingStore, mono: FakeClock
) -> None:
    unknown = format_token("zzzzzzzzzzzz", "a" * SECRET_LENGTH)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await auth.authenticate_token(unknown)
    assert store.gets == 1
    mono.now += 1.0
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(unknown)
    assert store.gets == 2


async def test_token_created_while_running_works_after_negative_ttl(
    auth: Authenticator, store: CountingStore, mono: FakeClock
) -> None:
    token, record = personal(store)
    store.hidden.add(record.id)  # looked up before `relaygate tokens create` wrote it
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(token)
    store.hidden.clear()
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(token)  # still negatively cached
    mono.now += 1.0
    assert await auth.authenticate_token(token) == record


async def test_negative_cache_is_bounded(store: CountingStore, mono: FakeClock) -> None:
    auth = Authenticator(store, negative_cache_size=2, clock=mono)
    ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"]
    for token_id in ids:
        with pytest.raises(Unauthorized):
            await auth.authenticate_token(format_token(token_id, "a" * SECRET_LENGTH))
    assert store.gets == 3
    for token_id in ids[1:]:  # still cached
        with pytest.raises(Unauthorized):
            await auth.authenticate_token(format_token(token_id, "a" * SECRET_LENGTH))
    assert store.gets == 3
    with pytest.raises(Unauthorized):  # oldest was evicted
        await auth.authenticate_token(format_token(ids[0], "a" * SECRET_LENGTH))
    assert store.gets == 4


async def test_store_down_cached_token_keeps_working_past_ttl(
    auth: Authenticator, store: CountingStore, mono: FakeClock
) -> None:
    token, record = personal(store)
    await auth.authenticate_token(token)
    store.fail = True
    mono.now += 60
    assert await auth.authenticate_token(token) == record
    assert await auth.authenticate_token(token) == record
    assert store.gets == 2  # the failed read is not retried on every request


async def test_store_down_retries_and_picks_up_revocation_on_recovery(
    auth: Authenticator, store: CountingStore, mono: FakeClock
) -> None:
    token, record = personal(store)
    await auth.authenticate_token(token)
    store.fail = True
    mono.now += 60
    await auth.authenticate_token(token)
    store.revoke(record.id)
    store.fail = False
    mono.now += 1.0
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(token)


async def test_store_down_unknown_token_gets_503(auth: Authenticator, store: CountingStore) -> None:
    token, _ = personal(store)
    store.fail = True
    with pytest.raises(ServiceUnavailable) as caught:
        await auth.authenticate_token(token)
    assert caught.value.status == 503
    assert b"token store unavailable" in caught.value.body()
    assert token.encode() not in caught.value.body()
    assert caught.value.headers["retry-after"] == "1"


async def test_malformed_token_is_401_even_when_store_down(auth: Authenticator, store: CountingStore) -> None:
    store.fail = True
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(authorization("Bearer nonsense"))
    assert store.gets == 0


async def test_concurrent_misses_coalesce_into_one_read(auth: Authenticator, store: CountingStore) -> None:
    token, record = personal(store)
    store.gate = threading.Event()
    calls = [asyncio.create_task(auth.authenticate_token(token)) for _ in range(25)]
    await asyncio.sleep(0.05)
    store.gate.set()
    results = await asyncio.gather(*calls)
    assert results == [record] * 25
    assert store.gets == 1


async def test_cancelled_waiter_does_not_cancel_shared_read(auth: Authenticator, store: CountingStore) -> None:
    token, record = personal(store)
    store.gate = threading.Event()
    first = asyncio.create_task(auth.authenticate_token(token))
    second = asyncio.create_task(auth.authenticate_token(token))
    await asyncio.sleep(0.05)
    first.cancel()
    store.gate.set()
    assert await second == record
    with pytest.raises(asyncio.CancelledError):
        await first
    assert store.gets == 1


async def test_concurrent_misses_with_store_down_all_get_503(auth: Authenticator, store: CountingStore) -> None:
    token, _ = personal(store)
    store.fail = True
    store.gate = threading.Event()
    calls = [asyncio.create_task(auth.authenticate_token(token)) for _ in range(10)]
    await asyncio.sleep(0.05)
    store.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    assert store.gets == 1
