"""OTLP/HTTP protobuf export of span batches, from the export queue's thread.

Captured traces are encoded here, a batch at a time, by `wire.py` (the exporter package's encoder costs
several times more CPU a span); batches are posted on one kept-alive `http.client` connection (a
`requests` post cost ~3.4 million instructions, as much as encoding the spans of ~60 requests; this
one ~0.4 million), through the proxy of `HTTPS_PROXY`/`HTTP_PROXY` unless `NO_PROXY` exempts the
collector. Reads the standard variables from the gateway's environment:
`OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,CERTIFICATE,CLIENT_CERTIFICATE,
CLIENT_KEY}`. Transient failures (connection errors, 429, 502, 503, 504) are retried with exponential
backoff and jitter until the timeout, as the OTLP specification says; shutdown aborts a retry.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import logging
import random
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.re import parse_env_headers

from relaygate.observe.tracing.spans import CapturedTrace
from relaygate.observe.tracing.wire import TraceEncoder, encode_batch

log = logging.getLogger("relaygate.tracing")
DEFAULT_ENDPOINT = "http://localhost:4318"
RETRYABLE = frozenset({429, 502, 503, 504})
MAX_RETRIES = 6


def _setting(env: Mapping[str, str], name: str) -> str:
    """`OTEL_EXPORTER_OTLP_TRACES_<name>`, else `OTEL_EXPORTER_OTLP_<name>`."""
    return (env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}") or "").strip()


def traces_url(env: Mapping[str, str]) -> str:
    """The signal endpoint is used as it is; the generic one gets `/v1/traces` appended."""
    specific = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_ENDPOINT
    return base.rstrip("/") + "/v1/traces"


class HttpSpanSender:
    """Posts `ExportTraceServiceRequest`s to one collector (a `queue.BatchSender`)."""

    def __init__(
        self, env: Mapping[str, str], resource: Resource, scope: InstrumentationScope, span_id: Callable[[], int]
    ) -> None:
        self.url = traces_url(env)
        self._resource = resource
        self._scope = scope
        self._encoder = TraceEncoder(span_id)
        self._headers = {"content-type": "application/x-protobuf", "user-agent": "relaygate-otlp"}
        self._headers.update(parse_env_headers(_setting(env, "HEADERS"), liberal=True))
        self._gzip = _setting(env, "COMPRESSION").lower() == "gzip"
        if self._gzip:
            self._headers["content-encoding"] = "gzip"
        try:
            self._timeout = float(_setting(env, "TIMEOUT") or 10.0)
        except ValueError:
            self._timeout = 10.0
        parts = urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._tls: ssl.SSLContext | None = None
        if self._https:
            # Without OTEL_EXPORTER_OTLP_CERTIFICATE, certifi's bundle, as `requests` (and the SDK) use.
            self._tls = ssl.create_default_context(cafile=_setting(env, "CERTIFICATE") or _certifi_bundle())
            client_certificate, client_key = _setting(env, "CLIENT_CERTIFICATE"), _setting(env, "CLIENT_KEY")
            if client_certificate:
                self._tls.load_cert_chain(client_certificate, client_key or None)
        self._proxy = _proxy(parts.scheme, self._host)
        if self._proxy is not None and not self._https:  # HTTPS goes through a tunnel (`_connect`)
            self._target = self.url  # a plain-HTTP proxy takes the absolute URL
            if self._proxy[2]:
                self._headers["proxy-authorization"] = self._proxy[2]
        self._connection: http.client.HTTPConnection | None = None
        self._stop = threading.Event()
        self._rng = random.Random()

    def send(self, traces: Sequence[CapturedTrace]) -> bool:
        """Encode and send one batch of traces; False after a permanent error, the timeout, or shutdown."""
        encode = self._encoder.encode
        data = encode_batch(self._resource, self._scope, [encode(captured) for captured in traces])
        if self._gzip:
            data = gzip.compress(data)
        deadline = time.monotonic() + self._timeout
        problem = "shutting down"
        for retry in range(MAX_RETRIES):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                break
            retry_after = None
            try:
                status, retry_after = self._post(data, remaining)
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, not HTTP
                problem = repr(exc)
            else:
                if 200 <= status < 300:
                    return True
                problem = f"HTTP {status}"
                if status not in RETRYABLE:
                    log.warning("trace export to %s refused: %s", self.url, problem)
                    return False
            backoff = _seconds(retry_after) or 2**retry * self._rng.uniform(0.8, 1.2)
            if backoff > deadline - time.monotonic() or self._stop.wait(backoff):
                break
        spans = sum(captured.span_count for captured in traces)
        log.warning("trace export to %s failed (%d spans dropped): %s", self.url, spans, problem)
        return False

    def _post(self, data: bytes, timeout: float) -> tuple[int, str | None]:
        """(status, Retry-After) of one post, on the kept-alive connection if it still works (a collector
        may close an idle one: that is retried at once on a new connection)."""
        for fresh in (self._connection is None, True):
            connection = self._connection if not fresh else self._connect(timeout)
            assert connection is not None
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            try:
                connection.request("POST", self._target, data, self._headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                self._connection = None
                if fresh:
                    raise
                continue
            if response.will_close:
                connection.close()
                self._connection = None
            return response.status, response.getheader("retry-after")
        raise AssertionError("unreachable")

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        host, port = (self._proxy[0], self._proxy[1]) if self._proxy is not None else (self._host, self._port)
        if self._https:
            connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
            if self._proxy is not None:
                tunnel_headers = {"proxy-authorization": self._proxy[2]} if self._proxy[2] else None
                connection.set_tunnel(self._host, self._port, headers=tunnel_headers)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        self._connection = connection
        return connection

    def shutdown(self) -> None:
        """Abort a retry under way and close the connection."""
        self._stop.set()
        connection = self._connection
        if connection is not None:
            connection.close()


def _certifi_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # the system's CA store then
        return None
    return str(certifi.where())


def _proxy(scheme: str, host: str) -> tuple[str, int, str] | None:
    """(host, port, Proxy-Authorization or "") of the proxy the environment names for the collector."""
    url = urllib.request.getproxies().get(scheme)
    if not url or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        return None
    credentials = ""
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        credentials = "Basic " + base64.b64encode(pair).decode()
    return parts.hostname, parts.port or 80, credentials


def _seconds(retry_after: str | None) -> float | None:
    """A `Retry-After` in seconds (the HTTP-date form is ignored: backoff applies)."""
    try:
        return max(float(retry_after), 0.0) if retry_after else None
    except ValueError:
        return None
