"""PostgreSQL going away under a running gateway: cached tokens keep working, unknown ones get 503.

The store reaches PostgreSQL through a TCP proxy the test can cut (every connection reset, new ones
refused) and restore, which is what a database restart or a network partition looks like to it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from relaygate.auth.authenticator import Authenticator
from relaygate.auth.store import TokenStoreError
from relaygate.auth.store_postgres import PostgresTokenStore
from relaygate.errors import ServiceUnavailable, Unauthorized
from tests.helpers.gateway import free_port

CACHE_TTL = 0.2


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `cut()` drops every connection and stops listening."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _close(sock)

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(pg_url)
    p = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    p.start()
    yield p
    p.cut()


def via(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{netloc[0]}{netloc[1]}127.0.0.1:{proxy.port}").geturl()


@pytest.fixture
def direct(pg_url: str) -> Iterator[PostgresTokenStore]:
    """A store that always reaches PostgreSQL (to mint tokens while the proxied one cannot)."""
    s = PostgresTokenStore(pg_url)
    yield s
    s.close()


@pytest.fixture
def proxied(pg_url: str, proxy: TcpProxy) -> Iterator[PostgresTokenStore]:
    s = PostgresTokenStore(via(proxy, pg_url))
    yield s
    s.close()


async def test_cached_token_keeps_working_past_ttl_while_store_is_down(
    direct: PostgresTokenStore, proxied: PostgresTokenStore, proxy: TcpProxy
) -> None:
    auth = Authenticator(proxied, cache_ttl=CACHE_TTL)
    token, record = direct.create("personal", "user:alice@x.com", None, None)
    assert (await auth.authenticate_token(token)).id == record.id
    proxy.cut()
    await asyncio.sleep(CACHE_TTL * 2)
    for _ in range(5):
        assert (await auth.authenticate_token(token)).id == record.id
        await asyncio.sleep(CACHE_TTL)


async def test_unknown_token_gets_503_quickly_while_store_is_down(
    direct: PostgresTokenStore, proxied: PostgresTokenStore, proxy: TcpProxy
) -> None:
    auth = Authenticator(proxied, cache_ttl=CACHE_TTL)
    token, _ = direct.create("personal", "user:alice@x.com", None, None)
    proxy.cut()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await auth.authenticate_token(token)
    first = time.monotonic() - started
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await auth.authenticate_token(token)
    again = time.monotonic() - started
    assert first < 1.0, "a refused connection is noticed at once, not after the pool timeout"
    assert again < 0.1, "while down, the store fails fast"


async def test_bad_secret_is_still_401_for_cached_id_while_store_is_down(
    direct: PostgresTokenStore, proxied: PostgresTokenStore, proxy: TcpProxy
) -> None:
    auth = Authenticator(proxied, cache_ttl=CACHE_TTL)
    token, _ = direct.create("personal", "user:alice@x.com", None, None)
    await auth.authenticate_token(token)
    proxy.cut()
    await asyncio.sleep(CACHE_TTL * 2)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthorized):
        await auth.authenticate_token(forged)


async def test_store_recovers_when_postgres_is_back(
    direct: PostgresTokenStore, proxied: PostgresTokenStore, proxy: TcpProxy
) -> None:
    auth = Authenticator(proxied, cache_ttl=CACHE_TTL)
    proxy.cut()
    token, record = direct.create("personal", "user:alice@x.com", None, None)
    with pytest.raises(ServiceUnavailable):
        await auth.authenticate_token(token)
    assert not proxied.database.available
    proxy.start()
    deadline = time.monotonic() + 5.0
    while True:
        try:
            assert (await auth.authenticate_token(token)).id == record.id
            break
        except ServiceUnavailable:
            assert time.monotonic() < deadline, "the store did not recover within 5 s"
            await asyncio.sleep(0.1)
    assert proxied.database.available


async def test_revocation_after_recovery_is_seen(
    direct: PostgresTokenStore, proxied: PostgresTokenStore, proxy: TcpProxy
) -> None:
    proxy.cut()
    with pytest.raises(TokenStoreError):
        await asyncio.to_thread(proxied.revoked_since, 0.0)
    _, record = direct.create("personal", "user:alice@x.com", None, None)
    direct.revoke(record.id)
    proxy.start()
    deadline = time.monotonic() + 5.0
    while True:
        try:
            revoked = await asyncio.to_thread(proxied.revoked_since, 0.0)
            break
        except TokenStoreError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    assert [token_id for token_id, _ in revoked] == [record.id]


async def test_closed_pool_serves_cached_tokens_and_503_for_unknown(direct: PostgresTokenStore, pg_url: str) -> None:
    store = PostgresTokenStore(pg_url)
    auth = Authenticator(store, cache_ttl=CACHE_TTL)
    cached, _ = direct.create("personal", "user:alice@x.com", None, None)
    unknown, _ = direct.create("personal", "user:bob@x.com", None, None)
    await auth.authenticate_token(cached)
    store.close()
    await asyncio.sleep(CACHE_TTL * 2)
    assert (await auth.authenticate_token(cached)).subject == "user:alice@x.com"
    with pytest.raises(ServiceUnavailable):
        await auth.authenticate_token(unknown)
