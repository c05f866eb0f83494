"""GET /logs/stream: the live tail applies the filters and the user restriction of GET /logs, sends at
most 5 events a second and reports what it drops, never carries bodies, costs nothing without
subscribers, and ends on client disconnect and on gateway stop."""

from __future__ import annotations

import contextlib
import http.client
import queue
import socket
import threading
import time
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from relaygate.gateway import Gateway
from tests.admin.test_logs import CONFIG, Roles, chat
from tests.conftest import GatewayFactory
from tests.helpers.gateway import GatewayHandle

Event = tuple[str, Any, float]  # (event name, data, arrival time)


class Tail:
    """One SSE connection read by a thread into a queue of events."""

    def __init__(self, gateway: GatewayHandle, token: str, **params: Any) -> None:
        query = urlencode(params)
        self.conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
        self.conn.request(
            "GET",
            "/api/admin/v1/logs/stream" + (f"?{query}" if query else ""),
            headers={"Authorization": f"Bearer {token}"},
        )
        self.sock = self.conn.sock
        self.response = self.conn.getresponse()
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.comments: list[str] = []
        self.raw: list[bytes] = []
        if self.response.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        name, data = "message", b""
        try:
            while True:
                line = self.response.readline()
                if not line:
                    break
                self.raw.append(line)
                line = line.rstrip(b"\r\n")
                if not line:
                    if data:
                        self.events.put((name, orjson.loads(data), time.monotonic()))
                    name, data = "message", b""
                elif line.startswith(b":"):
                    self.comments.append(line.decode())
                elif line.startswith(b"event: "):
                    name = line[7:].decode()
                elif line.startswith(b"data: "):
                    data += line[6:]
        except (OSError, ValueError, AttributeError, http.client.HTTPException):  # closed under us
            pass
        self.events.put(None)  # the stream ended

    def collect(self, seconds: float) -> list[Event]:
        out: list[Event] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                self.events.put(None)
                break
            out.append(event)
        return out

    def ended(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if self.events.get(timeout=max(deadline - time.monotonic(), 0.01)) is None:
                    return True
            except queue.Empty:
                return False
        return False

    def close(self) -> None:
        """Hang up (the reader thread holds the socket open otherwise)."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def served(handle: GatewayHandle) -> Gateway:
    gateway = handle._server.config.app.gateway  # type: ignore[attr-defined]
    assert isinstance(gateway, Gateway)
    return gateway


def wait_subscribers(handle: GatewayHandle, count: int) -> None:
    deadline = time.monotonic() + 5
    while served(handle).tail.subscribers != count:
        assert time.monotonic() < deadline, f"{served(handle).tail.subscribers} subscribers, want {count}"
        time.sleep(0.02)


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> GatewayHandle:
    return gateway_factory(CONFIG)


@pytest.fixture
def roles(gateway: GatewayHandle) -> Roles:
    return Roles(gateway)


def test_stream_applies_filters_and_the_user_restriction(gateway: GatewayHandle, roles: Roles) -> None:
    recorders_before = list(served(gateway).recorders)
    admin = Tail(gateway, roles.alice, **{"metadata.app": "billing"})
    bob = Tail(gateway, roles.bob)
    carol = Tail(gateway, roles.carol, streaming="true")
    assert admin.response.status == 200 and admin.response.getheader("content-type").startswith("text/event-stream")
    wait_subscribers(gateway, 3)
    billing = chat(gateway, roles.bob, {"app": "billing"})
    time.sleep(0.25)
    chat(gateway, roles.bob, {"app": "search"})
    time.sleep(0.25)
    carol_billing = chat(gateway, roles.carol, {"app": "billing"}, stream=True)
    time.sleep(0.25)
    chat(gateway, roles.carol, {"app": "billing"})
    admin_events = admin.collect(1.5)
    bob_events = bob.collect(0.5)
    carol_events = carol.collect(0.5)
    for tail in (admin, bob, carol):
        tail.close()
    assert [e[0] for e in admin_events] == ["log"] * 3
    assert [e[1]["request_id"] for e in admin_events][:2] == [billing, carol_billing]
    assert all(e[1]["metadata"]["app"] == "billing" for e in admin_events)
    assert {e[1]["user"] for e in bob_events} == {"bob@example.com"} and len(bob_events) == 2
    assert [e[1]["request_id"] for e in carol_events] == [carol_billing]
    for events in (admin_events, bob_events, carol_events):
        for _, row, _ in events:
            assert "request_body" not in row and "response_body" not in row
    for tail in (admin, bob, carol):
        assert b"hello log" not in b"".join(tail.raw)
    wait_subscribers(gateway, 0)
    assert served(gateway).recorders == recorders_before  # no subscriber: no recorder


def test_stream_sends_at_most_five_events_a_second_and_reports_drops(gateway: GatewayHandle, roles: Roles) -> None:
    tail = Tail(gateway, roles.alice)
    wait_subscribers(gateway, 1)
    sent = [chat(gateway, roles.bob) for _ in range(25)]
    events = tail.collect(3.0)
    tail.close()
    logs = [e for e in events if e[0] == "log"]
    dropped = [e for e in events if e[0] == "dropped"]
    assert dropped, [e[0] for e in events]
    assert len(logs) + sum(e[1]["count"] for e in dropped) == len(sent)
    assert len(logs) < len(sent)
    assert {e[1]["request_id"] for e in logs} <= set(sent)
    times = [e[2] for e in events]
    for i, start in enumerate(times):  # any one-second window holds at most 5 events (small read jitter)
        assert sum(1 for t in times[i:] if t - start < 0.95) <= 5


def test_stream_ends_on_client_disconnect_and_on_gateway_stop(gateway_factory: GatewayFactory) -> None:
    handle = gateway_factory(CONFIG)
    roles = Roles(handle)
    first = Tail(handle, roles.alice)
    wait_subscribers(handle, 1)
    first.close()
    wait_subscribers(handle, 0)
    assert served(handle).tail.record not in served(handle).recorders

    second = Tail(handle, roles.bob)
    wait_subscribers(handle, 1)
    started = time.monotonic()
    handle.stop()
    assert time.monotonic() - started < 10  # the tail did not hold the drain for its 30 s
    assert second.ended(within=2.0)
    second.close()


def test_virtual_accounts_and_bad_filters_are_refused(gateway: GatewayHandle, roles: Roles) -> None:
    bot = Tail(gateway, roles.bot)
    assert bot.response.status == 403
    bot.close()
    bad = Tail(gateway, roles.alice, status_class="9xx")
    assert bad.response.status == 400
    bad.close()


def test_heartbeat_comment_keeps_an_idle_stream_alive(
    gateway: GatewayHandle, roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relaygate.admin import logs

    monkeypatch.setattr(logs, "HEARTBEAT_SECONDS", 0.3)
    tail = Tail(gateway, roles.alice)
    wait_subscribers(gateway, 1)
    time.sleep(1.0)
    tail.close()
    assert any("heartbeat" in c for c in tail.comments), tail.comments


def test_a_subscriber_admits_at_most_five_a_second_and_keeps_a_slot_for_the_drop_report() -> None:
    from relaygate.observe.store.search import LogFilter
    from relaygate.observe.tail import Subscriber
    from tests.helpers.log_records import log_record

    now = [1000.0]
    subscriber = Subscriber(LogFilter(metadata={"app": "a"}), clock=lambda: now[0])
    for i in range(20):
        subscriber.offer(log_record(i, metadata={"app": "a"}))
    subscriber.offer(log_record(99, metadata={"app": "b"}))  # filtered out: neither queued nor dropped
    assert len(subscriber.queue) == 5 and subscriber.dropped == 15
    assert subscriber.take_drop_report() == 0  # the window is full: the report waits
    assert subscriber.seconds_to_room() == pytest.approx(1.0)
    now[0] += 1.0
    subscriber.offer(log_record(20, metadata={"app": "a"}))
    assert len(subscriber.queue) == 6  # a new window; drops pending: one slot kept for the report
    for i in range(21, 30):
        subscriber.offer(log_record(i, metadata={"app": "a"}))
    assert len(subscriber.queue) == 5 + 4 and subscriber.dropped == 15 + 6
    assert subscriber.take_drop_report() == 21 and subscriber.dropped == 0
    assert subscriber.take_drop_report() == 0
    # Sending: at most five events in any one-second window on the wire.
    for _ in range(5):
        assert subscriber.send_delay() == 0
        subscriber.sent()
    assert subscriber.send_delay() == pytest.approx(1.0)
    now[0] += 0.4
    assert subscriber.send_delay() == pytest.approx(0.6)
