"""The OTLP/HTTP sender (`http.client`, one kept-alive connection): headers and gzip from the standard
variables, retries of 503 and of a connection the collector closed, and no retry of a 400."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from relaygate.observe.tracing.exporter import HttpSpanSender, _proxy
from tests.observe.tracing.test_wire import CASES, draws


class Collector:
    """Answers each POST with the next status of `statuses` (then 200); HTTP/1.1 keep-alive unless
    `close_after_each` (then it closes the connection after answering, without saying so)."""

    def __init__(self, statuses: list[int], close_after_each: bool = False) -> None:
        self.statuses = statuses
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.connections: set[int] = set()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                collector.connections.add(self.client_address[1])
                collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                collector.bodies.append(gzip.decompress(body) if self.headers.get("content-encoding") else body)
                status = collector.statuses.pop(0) if collector.statuses else 200
                self.send_response(status)
                if status == 503:
                    self.send_header("retry-after", "0")
                self.send_header("content-length", "0")
                self.end_headers()
                if close_after_each:
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector(request: pytest.FixtureRequest) -> Iterator[Collector]:
    statuses, close = getattr(request, "param", ([], False))
    running = Collector(list(statuses), close)
    yield running
    running.close()


SENDERS: list[HttpSpanSender] = []


@pytest.fixture(autouse=True)
def _close_senders() -> Iterator[None]:
    yield
    while SENDERS:
        SENDERS.pop().shutdown()


def sender(endpoint: str, **env: str) -> HttpSpanSender:
    variables = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT": "5", **env}
    SENDERS.append(HttpSpanSender(variables, Resource.create({}), InstrumentationScope("relaygate"), draws(1)))
    return SENDERS[-1]


def spans_in(body: bytes) -> int:
    decoded = ExportTraceServiceRequest()
    decoded.ParseFromString(body)
    return len(decoded.resource_spans[0].scope_spans[0].spans)


def test_headers_and_gzip_from_the_variables(collector: Collector) -> None:
    traces = [CASES["chat"], CASES["custom endpoint"]]
    exporting = sender(
        collector.endpoint, OTEL_EXPORTER_OTLP_HEADERS="x-team=blue,x-key=k%3D1", OTEL_EXPORTER_OTLP_COMPRESSION="gzip"
    )
    assert exporting.send(traces) and exporting.send(traces)
    headers = collector.headers[0]
    assert headers["x-team"] == "blue" and headers["x-key"] == "k=1" and headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/x-protobuf"
    assert [spans_in(body) for body in collector.bodies] == [5, 5]
    assert len(collector.connections) == 1  # kept alive


@pytest.mark.parametrize("collector", [([503, 503], False)], indirect=True)
def test_unavailable_is_retried(collector: Collector) -> None:
    assert sender(collector.endpoint).send([CASES["chat"]])
    assert len(collector.bodies) == 3


@pytest.mark.parametrize("collector", [([400], False)], indirect=True)
def test_a_refusal_is_not_retried(collector: Collector) -> None:
    assert not sender(collector.endpoint).send([CASES["chat"]])
    assert len(collector.bodies) == 1


@pytest.mark.parametrize("collector", [([], True)], indirect=True)
def test_a_connection_the_collector_closed_is_replaced_at_once(collector: Collector) -> None:
    exporting = sender(collector.endpoint)
    for _ in range(3):
        assert exporting.send([CASES["chat"]])
    assert len(collector.bodies) == 3 and len(collector.connections) == 3


def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "collector.local")
    host, port, authorization = _proxy("https", "otel.example.com") or ("", 0, "")
    assert (host, port) == ("proxy.internal", 3128) and authorization == "Basic dXNlcjpwQHNz"
    assert _proxy("https", "collector.local") is None
    assert _proxy("http", "otel.example.com") is None
