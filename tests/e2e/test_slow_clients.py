"""Slow clients: heads and bodies that do not arrive in time get 408 and a closed connection.

A real `relaygate serve` and raw sockets: a head not complete within `--header-timeout`, a body
silent for `--body-idle-timeout`, or slower than `--min-body-rate` after `--min-body-rate-grace`
(240 bytes/s after 5 s by default, so a 1 byte/s drip cannot hold a connection). Requests that are
merely slow to answer, and idle keep-alive connections, are not slow clients. 200 slow sockets held
open do not delay anyone else's requests.
"""

from __future__ import annotations

import http.client
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.helpers.error_shape import assert_error_shape
from tests.helpers.gateway import GatewayProcess, render
from tests.helpers.manifests import OPENAI_ACCOUNT, OPENAI_KEY
from tests.helpers.raw_http import exchange, parse, read_to_close
from tests.upstreams.openai_mock import OpenAIMock
from tests.upstreams.recording_upstream import RecordingUpstream

CONFIG = (
    OPENAI_ACCOUNT
    + """\
---
type: provider-account/custom-endpoint
name: rec
integrations:
  - {type: integration/model/custom-endpoint, name: origin, base_url: "{rec_url}"}
"""
)
CHAT = "/api/llm/chat/completions"
CHAT_BODY = orjson.dumps({"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})


@dataclass
class Slow:
    gateway: GatewayProcess
    openai: OpenAIMock
    rec: RecordingUpstream
    token: str

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.gateway.port), timeout=30)

    def chat_head(self, length: int, *extra: str) -> bytes:
        lines = [
            f"POST {CHAT} HTTP/1.1",
            "Host: x",
            f"Authorization: Bearer {self.token}",
            "Content-Type: application/json",
            f"Content-Length: {length}",
            *extra,
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def start(root: Path, openai: OpenAIMock, rec: RecordingUpstream, flags: list[str]) -> Slow:
    gateway = GatewayProcess(root, render(CONFIG, port=openai.port, rec_url=rec.url))
    gateway.serve_args = flags
    gateway.start()
    return Slow(gateway, openai, rec, gateway.create_token(user="alice@example.com"))


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[OpenAIMock, RecordingUpstream]]:
    with OpenAIMock(OPENAI_KEY).running() as openai, RecordingUpstream("rec").running() as rec:
        yield openai, rec


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[OpenAIMock, RecordingUpstream]) -> Iterator[Slow]:
    """Timeouts of 1 s (head, body idle) and 240 bytes/s after a 1 s grace."""
    stack = start(
        tmp_path_factory.mktemp("quick"),
        *upstreams,
        flags=["--header-timeout", "1", "--body-idle-timeout", "1", "--min-body-rate-grace", "1"],
    )
    try:
        yield stack
    finally:
        stack.gateway.stop()


@pytest.fixture
def slow(quick: Slow) -> Slow:
    quick.openai.reset()
    quick.rec.reset()
    return quick


def assert_408(raw: bytes, code: str) -> None:
    response = parse(raw)
    assert response.status == 408, raw[:300]
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert response.headers.get("x-request-id")
    assert assert_error_shape(orjson.loads(response.body))["code"] == code
    assert response.rest == b""


# -- heads ----------------------------------------------------------------------------------------------


def test_connection_that_sends_nothing_gets_408_after_the_header_timeout(slow: Slow) -> None:
    with slow.connect() as sock:
        started = time.monotonic()
        raw = read_to_close(sock)
        elapsed = time.monotonic() - started
    assert_408(raw, "header_timeout")
    assert 0.8 < elapsed < 10


def test_head_trickling_in_gets_408_although_bytes_keep_coming(slow: Slow) -> None:
    """The timeout bounds the whole head, not the silence between its bytes."""
    with slow.connect() as sock:
        sock.sendall(f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
        started = time.monotonic()
        sock.settimeout(0.2)
        raw = b""
        while time.monotonic() - started < 10 and not raw:
            try:
                sock.sendall(b"s")
                raw = sock.recv(65536, socket.MSG_PEEK)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        elapsed = time.monotonic() - started
        sock.settimeout(10)
        raw = read_to_close(sock)
    assert_408(raw, "header_timeout")
    assert elapsed < 10
    assert not slow.openai.requests


def test_idle_keep_alive_connection_is_not_a_slow_client(slow: Slow) -> None:
    """Between requests the keep-alive timeout applies, not the header timeout."""
    conn = http.client.HTTPConnection("127.0.0.1", slow.gateway.port, timeout=30)
    try:
        for _ in range(2):
            conn.request(
                "POST",
                CHAT,
                body=CHAT_BODY,
                headers={"Authorization": f"Bearer {slow.token}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            time.sleep(2.0)  # twice the header timeout, idle
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_request_slow_to_answer_is_not_a_slow_client(slow: Slow) -> None:
    """The head and body arrived: an upstream taking longer than every client timeout is waited for."""
    slow.rec.answer_next(delay=2.5)
    raw = exchange(
        slow.gateway.port,
        (
            f"GET /proxy-api/rec/origin/slow HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {slow.token}\r\nConnection: close\r\n\r\n"
        ).encode(),
    )
    assert parse(raw).status == 200


# -- bodies ---------------------------------------------------------------------------------------------


def test_stalled_body_gets_408_after_the_body_idle_timeout(slow: Slow) -> None:
    with slow.connect() as sock:
        sock.sendall(slow.chat_head(len(CHAT_BODY)) + CHAT_BODY[:10])
        started = time.monotonic()
        raw = read_to_close(sock)
        elapsed = time.monotonic() - started
    assert_408(raw, "body_idle_timeout")
    assert 0.8 < elapsed < 10
    assert not slow.openai.requests


def test_drip_fed_body_gets_408_with_the_default_rate(
    tmp_path: Path, upstreams: tuple[OpenAIMock, RecordingUpstream]
) -> None:
    """Defaults: 240 bytes/s after 5 s. One byte a second never goes silent but is cut after the grace."""
    stack = start(tmp_path, *upstreams, flags=[])
    try:
        with stack.connect() as sock:
            sock.sendall(stack.chat_head(10_000))
            started = time.monotonic()
            sock.settimeout(1.0)
            raw = b""
            while time.monotonic() - started < 20 and not raw:
                try:
                    sock.sendall(b" ")
                    raw = sock.recv(65536, socket.MSG_PEEK)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            elapsed = time.monotonic() - started
            sock.settimeout(10)
            raw = read_to_close(sock)
        assert_408(raw, "body_too_slow")
        assert 4.5 < elapsed < 15  # the 5 s grace, then the first check
        assert not upstreams[0].requests
    finally:
        stack.gateway.stop()


def test_body_at_a_fair_rate_with_short_pauses_is_served(slow: Slow) -> None:
    """Pauses shorter than the idle timeout and an average above the rate: the request goes through."""
    body = orjson.dumps({"model": "openai-main/gpt-4o", "messages": [{"role": "user", "content": "x" * 3000}]})
    with slow.connect() as sock:
        sock.sendall(slow.chat_head(len(body), "Connection: close"))
        for start in range(0, len(body), 400):
            sock.sendall(body[start : start + 400])
            time.sleep(0.3)  # ~1.3 KB/s, silences of 0.3 s
        raw = read_to_close(sock)
    assert parse(raw).status == 200
    assert len(slow.openai.requests) == 1


def test_body_the_gateway_is_not_reading_yet_is_not_slow(slow: Slow) -> None:
    """Expect: 100-continue: the client waits for the gateway, so the body clock does not run."""
    with slow.connect() as sock:
        sock.sendall(slow.chat_head(len(CHAT_BODY), "Expect: 100-continue", "Connection: close"))
        sock.settimeout(10)
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        time.sleep(0.5)
        sock.sendall(CHAT_BODY)
        raw = read_to_close(sock)
    assert parse(raw).status == 200


# -- many slow sockets ---------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed_requests(stack: Slow, count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=30)
    headers = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}
    latencies = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            conn.request("POST", CHAT, body=CHAT_BODY, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            latencies.append(time.perf_counter() - started)
    finally:
        conn.close()
    return latencies


def test_200_slow_sockets_leave_other_requests_prompt(
    tmp_path: Path, upstreams: tuple[OpenAIMock, RecordingUpstream]
) -> None:
    """100 trickling heads and 100 drip-fed bodies stay open (long timeouts here) while requests run."""
    stack = start(tmp_path, *upstreams, flags=["--header-timeout", "120", "--min-body-rate-grace", "120"])
    stop = threading.Event()
    sockets: list[socket.socket] = []
    try:
        timed_requests(stack, 50)  # warm-up
        baseline = timed_requests(stack, 200)
        for i in range(200):
            sock = stack.connect()
            sock.sendall(stack.chat_head(100_000) if i % 2 else f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
            sockets.append(sock)

        def drip() -> None:
            while not stop.wait(0.5):
                for sock in sockets:
                    sock.send(b"d")

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        time.sleep(1.0)
        loaded = timed_requests(stack, 200)
        stop.set()
        dripper.join(5)
        base_p99, loaded_p99 = percentile(baseline, 0.99), percentile(loaded, 0.99)
        print(
            f"p50 {statistics.median(baseline) * 1000:.1f} -> {statistics.median(loaded) * 1000:.1f} ms, "
            f"p99 {base_p99 * 1000:.1f} -> {loaded_p99 * 1000:.1f} ms with 200 slow sockets"
        )
        assert loaded_p99 < max(1.0, 10 * base_p99)  # generous: a shared 2-core VM; measured ~equal
        for sock in sockets:  # every slow socket is still open: no answer, no EOF yet
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        stack.gateway.stop()
