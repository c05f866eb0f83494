"""OTLP/HTTP protobuf export of span batches, from the export queue's thread.

Captured traces are encoded here, a batch at a time, by `wire.py` (the exporter package's encoder costs
several times more CPU a span); batches are posted with one pooled `requests` session. Reads the
standard variables from the gateway's environment:
`OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,CERTIFICATE,CLIENT_CERTIFICATE,
CLIENT_KEY}`. Transient failures (connection errors, 429, 502, 503, 504) are retried with exponential
backoff and jitter until the timeout, as the OTLP specification says; shutdown aborts a retry.
"""

from __future__ import annotations

import gzip
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import requests
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
        self._session = requests.Session()
        self._session.verify = _setting(env, "CERTIFICATE") or True
        client_certificate, client_key = _setting(env, "CLIENT_CERTIFICATE"), _setting(env, "CLIENT_KEY")
        if client_certificate:
            self._session.cert = (client_certificate, client_key) if client_key else client_certificate
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
                response = self._session.post(self.url, data=data, headers=self._headers, timeout=remaining)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = repr(exc)
            else:
                status, retry_after = response.status_code, response.headers.get("retry-after")
                response.close()
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

    def shutdown(self) -> None:
        """Abort a retry under way and close the connection pool."""
        self._stop.set()
        self._session.close()


def _seconds(retry_after: str | None) -> float | None:
    """A `Retry-After` in seconds (the HTTP-date form is ignored: backoff applies)."""
    try:
        return max(float(retry_after), 0.0) if retry_after else None
    except ValueError:
        return None
